//! The data explorer of a finished run (`crate::explore` does the looking): reads the project as
//! the run locked it (relocated with a moved run folder), gathers one feature vector per sample of
//! its data from the family that trained it — the feature cache first — and explores them. Image
//! classifiers so far; the other families say so.

use crate::error::{Error, Result};
use crate::explore::{Exploration, Settings, Step};
use crate::params::{ResolvedParams, layer_from_toml};
use crate::template::Template;
use crate::train::Control;
use std::path::{Path, PathBuf};

/// Where the explorer reads cached features.
#[derive(Clone, Debug, Default)]
pub struct ExploreOptions {
    /// Feature cache folder (default: the engine's, as training uses).
    pub cache_dir: Option<PathBuf>,
}

/// Whether runs of `task` (a task id) can be explored.
pub fn supports_task(task: &str) -> bool {
    task == "image-classification"
}

/// Explores the data of the finished run in `run_dir`. `progress` gets each step's
/// `(done, total)`; `control` cancels.
pub fn explore_run(
    run_dir: &Path,
    options: &ExploreOptions,
    progress: &mut dyn FnMut(Step, u64, u64),
    control: &Control,
) -> Result<Exploration> {
    let project = crate::train::run_dir::load_lock(run_dir)?;
    let template = Template::get(&project.template)?;
    if !supports_task(&template.task) {
        return Err(Error::Unsupported(format!(
            "the data explorer works on image classifiers so far; this run is a {}",
            template.title
        )));
    }
    let task = super::by_id(&template.task)?;
    let params = ResolvedParams::resolve(
        &task.param_specs(),
        &[&template.param_layer()?, &layer_from_toml(&project.params)?],
    )?;
    let cache_dir = options
        .cache_dir
        .clone()
        .unwrap_or_else(crate::train::context::default_cache_dir);
    let (table, features) =
        super::image::explore::features(run_dir, &project, &params, &cache_dir, progress, control)?;
    let settings = Settings {
        seed: project.seed,
        ..Settings::default()
    };
    let mut exploration =
        crate::explore::explore(table, &settings, progress, &|| control.check_cancelled())?;
    exploration.features = features;
    Ok(exploration)
}
