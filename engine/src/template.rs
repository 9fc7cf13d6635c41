//! Template presets: one TOML file per template in `templates/`, embedded at build time so the
//! CLI and the app list the same templates wherever they run.

use crate::error::{Error, Result};
use crate::params::{ParamValue, layer_from_toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The TOML source of every template whose task works, in the order the picker shows them.
const SOURCES: &[(&str, &str)] = &[
    (
        "image-classifier.toml",
        include_str!("../../templates/image-classifier.toml"),
    ),
    (
        "multi-label-image-classifier.toml",
        include_str!("../../templates/multi-label-image-classifier.toml"),
    ),
    (
        "text-classifier.toml",
        include_str!("../../templates/text-classifier.toml"),
    ),
    (
        "sound-classifier.toml",
        include_str!("../../templates/sound-classifier.toml"),
    ),
    (
        "object-detector.toml",
        include_str!("../../templates/object-detector.toml"),
    ),
    (
        "tabular-classifier.toml",
        include_str!("../../templates/tabular-classifier.toml"),
    ),
    (
        "tabular-regressor.toml",
        include_str!("../../templates/tabular-regressor.toml"),
    ),
    (
        "activity-classifier.toml",
        include_str!("../../templates/activity-classifier.toml"),
    ),
];

/// A template: what the picker card shows and the defaults a new project starts from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Stable id, used in `project.toml` and `--template`.
    pub id: String,
    pub title: String,
    /// One line for the picker card.
    pub blurb: String,
    /// The task that trains it (see [`crate::task`]).
    pub task: String,
    /// Icon name for the app.
    pub icon: String,
    /// How the data must be laid out, in one line.
    pub data_layout: String,
    /// A longer hint shown next to the drop zone.
    pub data_hint: String,
    /// Parameter defaults of this preset (checked against the task's specs when used).
    #[serde(default)]
    pub params: toml::Table,
}

impl Template {
    /// All templates, parsed from the embedded TOML files.
    pub fn all() -> Vec<Template> {
        SOURCES
            .iter()
            .filter_map(|(file, text)| match toml::from_str::<Template>(text) {
                Ok(t) => Some(t),
                Err(e) => {
                    // The files are part of the build and checked by a test; never reached in a release.
                    eprintln!("warning: skipping broken template templates/{file}: {e}");
                    None
                }
            })
            .collect()
    }

    /// The template with `id`, or an error listing the ones that exist.
    pub fn get(id: &str) -> Result<Template> {
        let all = Self::all();
        all.iter().find(|t| t.id == id).cloned().ok_or_else(|| {
            let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
            Error::project(
                format!(
                    "unknown template \"{id}\"; choose one of: {} (see `lathe templates`)",
                    ids.join(", ")
                ),
                None,
            )
        })
    }

    /// The preset's parameter defaults as a layer for [`crate::params::ResolvedParams::resolve`].
    pub fn param_layer(&self) -> Result<BTreeMap<String, ParamValue>> {
        layer_from_toml(&self.params)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::params::ResolvedParams;

    #[test]
    fn every_template_parses_and_its_defaults_fit_its_task() {
        assert_eq!(Template::all().len(), SOURCES.len());
        for t in Template::all() {
            let task = crate::templates::for_template(&t.id).unwrap();
            let layer = t.param_layer().unwrap();
            ResolvedParams::resolve(&task.param_specs(), &[&layer]).unwrap();
        }
    }

    #[test]
    fn unknown_template_lists_the_known_ones() {
        let e = Template::get("nope").unwrap_err().to_string();
        assert!(e.contains("image-classifier"), "{e}");
    }
}
