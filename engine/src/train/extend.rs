//! Continue training from a finished run (Create ML's "extend"): a new run folder whose head
//! starts from the finished run's best weights (and its feature standardization) and trains for
//! more epochs, on the same or on more data. Features come from the shared feature cache, so
//! examples the first run saw are not extracted again. The new run records where it came from in
//! `continued_from.json`; the finished run is never touched.

use crate::error::{Error, Result};
use crate::export::st;
use crate::fsutil::atomic_write;
use crate::nets::head::Head;
use crate::params::{ParamValue, ResolvedParams};
use crate::train::context::RunContext;
use crate::train::event::Event;
use crate::train::run_dir::RunDir;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file in a run folder that names the run it continues.
pub const FILE: &str = "continued_from.json";

/// What `continued_from.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parent {
    /// The finished run this one continues.
    pub run_dir: PathBuf,
    /// The checkpoint whose weights the head starts from.
    pub checkpoint: PathBuf,
    /// Epochs the finished run trained.
    pub epochs_before: usize,
}

impl Parent {
    /// The checkpoint as seen from the continuing run now at `root`: the recorded path, else the
    /// same path relative to the run folder when the folders were copied or moved together.
    pub fn checkpoint_from(&self, root: &Path) -> PathBuf {
        match crate::train::run_dir::recorded_root(root) {
            Some(recorded) => crate::train::run_dir::relocate(&self.checkpoint, &recorded, root),
            None => self.checkpoint.clone(),
        }
    }
}

/// Whether a run of `template` with `params` can be continued: its model is a head fitted on
/// cached features (`train::fit`), and no backbone layers were fine-tuned.
pub fn supported(template: &str, params: &ResolvedParams) -> std::result::Result<(), String> {
    let text = |k: &str| match params.0.get(k) {
        Some(ParamValue::Text(t)) => t.clone(),
        _ => String::new(),
    };
    let int = |k: &str| match params.0.get(k) {
        Some(ParamValue::Int(i)) => *i,
        _ => 0,
    };
    match template {
        "image-classifier" | "multi-label-image-classifier" if int("fine_tune_blocks") == 0 => {
            Ok(())
        }
        "image-classifier" | "multi-label-image-classifier" => Err(
            "runs that fine-tuned backbone layers (fine_tune_blocks > 0) cannot be continued yet; train a new run".into(),
        ),
        "text-classifier" if text("algorithm") == "transfer" => Ok(()),
        "object-detector" => Ok(()),
        "sound-classifier" if text("algorithm") == "transfer" => Ok(()),
        other => Err(format!(
            "continuing a {other} run is not supported yet (image and multi-label image classifiers, text and sound classifiers with the transfer model, and object detectors can be continued); train a new run"
        )),
    }
}

/// Checks that `parent` is a finished run that can be continued and returns what the new run
/// records about it.
pub fn inspect(parent: &Path) -> Result<Parent> {
    let dir = RunDir {
        root: parent.to_path_buf(),
    };
    if !dir.lock_file().is_file() {
        return Err(Error::project(
            "not a Lathe run folder (no project.lock.toml); give the folder of a finished run",
            Some(parent),
        ));
    }
    if !dir
        .model()
        .join(crate::train::run_dir::MODEL_CONFIG)
        .is_file()
    {
        return Err(Error::project(
            "this run has not finished (no model/config.json); finish it with `lathe train --resume` first",
            Some(parent),
        ));
    }
    // The head fitter's checkpoint, or the object detector's.
    let Some(last) = [
        crate::train::run_dir::LAST_CHECKPOINT,
        crate::train::run_dir::DETECTOR_CHECKPOINT,
    ]
    .iter()
    .map(|f| dir.checkpoints().join(f))
    .find(|p| p.is_file()) else {
        return Err(Error::project(
            "this run kept no checkpoint (checkpoints/last.safetensors), so it cannot be continued",
            Some(parent),
        ));
    };
    let (_, meta) = st::load(&last, &candle_core::Device::Cpu)?;
    let epochs_before = meta
        .get("epoch")
        .and_then(|e| e.parse().ok())
        .unwrap_or_default();
    Ok(Parent {
        run_dir: std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf()),
        checkpoint: std::path::absolute(&last).unwrap_or(last),
        epochs_before,
    })
}

/// Writes `continued_from.json` into a new run folder (before training starts).
pub fn record(run_dir: &RunDir, parent: &Parent) -> Result<()> {
    let path = run_dir.root.join(FILE);
    let body = serde_json::to_vec_pretty(parent)
        .map_err(|e| Error::project(format!("cannot write {FILE} ({e})"), Some(&path)))?;
    atomic_write(&path, &body)
}

/// A fresh folder next to `parent`: `<parent>-continued`, `<parent>-continued-2`, …
pub fn default_root(parent: &Path) -> PathBuf {
    let name = parent
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let base = parent.parent().unwrap_or(Path::new("."));
    let mut candidate = base.join(format!("{name}-continued"));
    let mut n = 2;
    while candidate.exists() {
        candidate = base.join(format!("{name}-continued-{n}"));
        n += 1;
    }
    candidate
}

/// Whether this run continues a finished one (`--continue`).
pub fn is_continuation(ctx: &RunContext) -> bool {
    ctx.run_dir.root.join(FILE).is_file()
}

/// When this run continues another, loads the finished run's best head weights into `head` and
/// returns its feature standardization (mean, std); `None` for a run started from scratch.
pub fn start_head(ctx: &RunContext, head: &Head) -> Result<Option<(Tensor, Tensor)>> {
    let file = ctx.run_dir.root.join(FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io("reading", &file, e))?;
    let parent: Parent = serde_json::from_str(&text)
        .map_err(|e| Error::project(format!("not a valid {FILE} ({e})"), Some(&file)))?;
    let path = &parent.checkpoint_from(&ctx.run_dir.root);
    let (tensors, _) = st::load(path, &ctx.device)?;
    let bad = |what: String| {
        Error::model(
            format!("cannot continue from this checkpoint: {what}"),
            path,
        )
    };
    let vars = head.vars();
    // The best weights when the checkpoint has them (what the finished model uses), else the last.
    let names = Head::layer_names(&head.kind);
    let fallback: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("{n}.weight"), format!("{n}.bias")])
        .collect();
    for (i, var) in vars.iter().enumerate() {
        let t = tensors
            .get(&format!("best.{i}"))
            .or_else(|| fallback.get(i).and_then(|n| tensors.get(n)))
            .ok_or_else(|| bad(format!("it has no weights for layer {i}")))?;
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "its layer {i} has shape {:?} but this run needs {:?}; the data must have the same classes as the run being continued",
                t.dims(),
                var.dims()
            )));
        }
        var.set(t)?;
    }
    let get = |k: &str| {
        tensors
            .get(k)
            .cloned()
            .ok_or_else(|| bad(format!("it has no `{k}`")))
    };
    let (mean, std) = (get("features.mean")?, get("features.std")?);
    ctx.emit(Event::Restored {
        epoch: 0,
        checkpoint: path.clone(),
    });
    Ok(Some((mean, std)))
}
