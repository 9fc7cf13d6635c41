//! Core ML export: a trained model folder → one `.mlmodel` (protobuf, `coreml-proto` types) that
//! an iOS / macOS app or Vision loads. [`export`] dispatches on the task in `config.json`;
//! `builder` writes neural-network layers, `backbone` the engine's backbones, `spec` the
//! model-level messages, `meta` the metadata every export shares; one file per template:
//! `image` (image classifier and multi-label), `tabular` (table classifier / regressor
//! pipelines), `text` (maxent text pipeline), `detect` (object detector: network → NMS),
//! `sound` (log-mel front end + CNN over raw samples).
//!
//! Specification version: the lowest each model needs — 1 (iOS 11) for fp32 neural networks,
//! pipelines, tree ensembles and feature-engineering models; 2 (iOS 11.2) once weights are fp16;
//! 3 (iOS 12) for the detector's non-maximum suppression model.

pub mod backbone;
pub mod builder;
pub mod detect;
pub mod image;
pub mod meta;
pub mod sound;
pub mod spec;
pub mod tabular;
pub mod text;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// File name used when no other is given.
pub const DEFAULT_FILE_NAME: &str = "model.mlmodel";

/// Precision of the stored weights (Core ML computes in fp16 or fp32 on its own terms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: numerically what the engine computes.
    #[default]
    Fp32,
    /// 16-bit floats: half the size; needs specification version 2.
    Fp16,
}

impl Precision {
    /// The lowest specification version that can hold these weights.
    pub fn specification_version(self) -> i32 {
        match self {
            Self::Fp32 => 1,
            Self::Fp16 => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" => Ok(Self::Fp32),
            "fp16" => Ok(Self::Fp16),
            other => Err(Error::project(
                format!("unknown Core ML precision \"{other}\"; use fp32 or fp16"),
                None,
            )),
        }
    }
}

/// What to write besides the network.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub precision: Precision,
    /// Metadata overrides (defaults: a generated description, "Made with Lathe", a license
    /// note naming the backbone's license, "1.0").
    pub description: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    pub version: Option<String>,
}

impl Options {
    /// Default metadata at `precision`.
    pub fn new(precision: Precision) -> Self {
        Self {
            precision,
            ..Default::default()
        }
    }
}

/// A written `.mlmodel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub path: PathBuf,
    /// File size.
    pub bytes: u64,
    pub specification_version: i32,
    /// Neural-network layers in the model.
    pub num_layers: usize,
}

/// Tasks whose models export to Core ML.
pub const TASKS: &[&str] = &[
    "image-classification",
    "multi-label-image-classification",
    "object-detection",
    "sound-classification",
    "tabular-classification",
    "tabular-regression",
    "text-classification",
];

/// Whether models of `task` (a task id, `config.json`'s `lathe.task`) export to Core ML.
pub fn supports_task(task: &str) -> bool {
    TASKS.contains(&task)
}

/// Exports the model in `model_dir` (a Lathe model folder) as a Core ML model at `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let config_path = model_dir.join("config.json");
    let config: serde_json::Value = crate::fsutil::read_json(&config_path)?;
    let task = config
        .pointer("/lathe/task")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    match task {
        "image-classification" | "multi-label-image-classification" => {
            image::export(model_dir, out, options)
        }
        "object-detection" => detect::export(model_dir, out, options),
        "tabular-classification" | "tabular-regression" => tabular::export(model_dir, out, options),
        "text-classification" => text::export(model_dir, out, options),
        "sound-classification" => sound::export(model_dir, out, options),
        "" => Err(Error::model(
            "config.json names no Lathe task (lathe.task); was it written by Lathe?",
            config_path,
        )),
        other => Err(Error::Unsupported(format!(
            "Core ML export of \"{other}\" models is not available in this build; use --format safetensors"
        ))),
    }
}

/// Where a training run writes its Core ML model: `<run>/exports/model.mlmodel`.
pub fn run_output(run_dir: &crate::train::run_dir::RunDir) -> PathBuf {
    run_dir.root.join("exports").join(DEFAULT_FILE_NAME)
}

/// The `formats = ["coreml"]` step of a training run: exports the finished model folder with
/// default options and reports it as an `Exported` event; a failure is a warning (the model
/// itself is fine and `lathe export --format coreml` can be run later).
pub fn export_run(ctx: &crate::train::RunContext, model_dir: &Path) {
    let out = run_output(&ctx.run_dir);
    match export(model_dir, &out, &Options::default()) {
        Ok(e) => ctx.emit(crate::train::Event::Exported {
            format: "coreml".into(),
            path: e.path,
        }),
        Err(e) => ctx.warn(
            format!("Core ML export failed ({e}); the model folder is complete, retry with `lathe export --format coreml`"),
            Some(model_dir),
        ),
    }
}
