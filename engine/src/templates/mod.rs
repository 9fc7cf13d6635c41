//! The template families — one folder each (`image/`, `detect/`, `sound/`, `text/`, `tabular/`),
//! holding its scan, parameters, training, model (load / predict / evaluate) and exports — and
//! their registry: every [`Task`] of this build, model loading by the task recorded in a model
//! folder, and Core ML and ONNX exports dispatched to the family that wrote the model.
//!
//! Adding a template: a new folder here with a type implementing [`Task`], a TOML in
//! `templates/` at the repository root, and one line in [`all`].

pub mod activity;
pub mod detect;
pub mod explore;
pub mod export;
pub mod image;
pub mod load_on;
pub mod sound;
pub mod tabular;
pub mod text;

use crate::error::{Error, Result};
use crate::export::coreml::{Exported, Options};
use crate::task::{Model, Task};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// All tasks of this build.
pub fn all() -> Vec<Box<dyn Task>> {
    vec![
        Box::new(image::classifier::ImageClassification),
        Box::new(image::multilabel::MultiLabelImageClassification),
        Box::new(text::train::TextClassification),
        Box::new(sound::train::SoundClassification),
        Box::new(detect::train::ObjectDetection),
        Box::new(tabular::train::TabularTask::classifier()),
        Box::new(tabular::train::TabularTask::regressor()),
        Box::new(activity::train::ActivityClassification),
    ]
}

/// The task with id `id`.
pub fn by_id(id: &str) -> Result<Box<dyn Task>> {
    all()
        .into_iter()
        .find(|t| t.id() == id)
        .ok_or_else(|| Error::project(format!("no task \"{id}\" in this build of Lathe"), None))
}

/// The task that trains template `template_id`.
pub fn for_template(template_id: &str) -> Result<Box<dyn Task>> {
    let template = crate::template::Template::get(template_id)?;
    by_id(&template.task)
}

/// Resolves `RUN_OR_MODEL_DIR` to the model folder (a run's `model/` or the folder itself).
pub fn model_dir(path: &Path) -> Result<PathBuf> {
    if path.join(crate::train::run_dir::MODEL_CONFIG).is_file() {
        return Ok(path.to_path_buf());
    }
    let inner = path.join("model");
    if inner.join(crate::train::run_dir::MODEL_CONFIG).is_file() {
        return Ok(inner);
    }
    if !path.exists() {
        return Err(Error::model(
            "no such folder; give a run folder or an exported model folder",
            path,
        ));
    }
    Err(Error::model(
        "not a Lathe model: no config.json here or in model/; give a finished run folder or an exported model folder",
        path,
    ))
}

/// Loads the model in a run or model folder, dispatching on the task recorded in `config.json`.
pub fn load_model(path: &Path, device: &Device) -> Result<Box<dyn Model>> {
    let dir = model_dir(path)?;
    let config: serde_json::Value =
        crate::fsutil::read_json(&dir.join(crate::train::run_dir::MODEL_CONFIG))?;
    let Some(task_id) = config.pointer("/lathe/task").and_then(|v| v.as_str()) else {
        return Err(Error::model(
            "config.json names no Lathe task (lathe.task); was it written by Lathe?",
            dir.join(crate::train::run_dir::MODEL_CONFIG),
        ));
    };
    by_id(task_id)?.load(&dir, device)
}

/// Tasks whose models export to Core ML.
pub const COREML_TASKS: &[&str] = &[
    "activity-classification",
    "image-classification",
    "multi-label-image-classification",
    "object-detection",
    "sound-classification",
    "tabular-classification",
    "tabular-regression",
    "text-classification",
];

/// Whether models of `task` (a task id, `config.json`'s `lathe.task`) export to Core ML.
pub fn coreml_supports_task(task: &str) -> bool {
    COREML_TASKS.contains(&task)
}

/// Exports the model in `model_dir` (a Lathe model folder) as a Core ML model at `out`,
/// through the family that wrote it.
pub fn export_coreml(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let config_path = model_dir.join(crate::train::run_dir::MODEL_CONFIG);
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
            image::coreml::export(model_dir, out, options)
        }
        "object-detection" => detect::coreml::export(model_dir, out, options),
        "tabular-classification" | "tabular-regression" => {
            tabular::coreml::export(model_dir, out, options)
        }
        "text-classification" => text::coreml::export(model_dir, out, options),
        "sound-classification" => sound::coreml::export(model_dir, out, options),
        "activity-classification" => activity::coreml::export(model_dir, out, options),
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
pub fn coreml_run_output(run_dir: &crate::train::run_dir::RunDir) -> PathBuf {
    run_dir
        .root
        .join("exports")
        .join(crate::export::coreml::DEFAULT_FILE_NAME)
}

/// The `formats = ["coreml"]` step of a training run: exports the finished model folder with
/// default options and reports it as an `Exported` event; a failure is a warning (the model
/// itself is fine and `lathe export --format coreml` can be run later).
pub fn export_coreml_run(ctx: &crate::train::RunContext, model_dir: &Path) {
    let out = coreml_run_output(&ctx.run_dir);
    match export_coreml(model_dir, &out, &Options::default()) {
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

/// Tasks whose models export to ONNX.
pub const ONNX_TASKS: &[&str] = &[
    "image-classification",
    "multi-label-image-classification",
    "tabular-classification",
    "tabular-regression",
    "text-classification",
    "sound-classification",
    "object-detection",
    "activity-classification",
];

/// Whether models of `task` (a task id, `config.json`'s `lathe.task`) export to ONNX.
pub fn onnx_supports_task(task: &str) -> bool {
    ONNX_TASKS.contains(&task)
}

/// Exports the model in `model_dir` (a Lathe model folder) as an ONNX model at `out`, through
/// the family that wrote it.
pub fn export_onnx(
    model_dir: &Path,
    out: &Path,
    options: &crate::export::onnx::Options,
) -> Result<crate::export::onnx::Exported> {
    let config_path = model_dir.join(crate::train::run_dir::MODEL_CONFIG);
    let config: serde_json::Value = crate::fsutil::read_json(&config_path)?;
    let task = config
        .pointer("/lathe/task")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    let exported = match task {
        "image-classification" | "multi-label-image-classification" => {
            image::onnx::export(model_dir, out, options)
        }
        "tabular-classification" | "tabular-regression" => {
            tabular::onnx::export(model_dir, out, options)
        }
        "text-classification" => text::onnx::export(model_dir, out, options),
        "sound-classification" => sound::onnx::export(model_dir, out, options),
        "object-detection" => detect::onnx::export(model_dir, out, options),
        "activity-classification" => activity::onnx::export(model_dir, out, options),
        "" => Err(Error::model(
            "config.json names no Lathe task (lathe.task); was it written by Lathe?",
            config_path,
        )),
        other => Err(Error::Unsupported(format!(
            "ONNX export of \"{other}\" models is not available in this build yet; use --format safetensors or coreml"
        ))),
    }?;
    if !options.fp16 {
        return Ok(exported);
    }
    let mut model = crate::export::onnx::read(&exported.path)?;
    crate::export::onnx::fp16::halve_weights(&mut model);
    crate::export::onnx::write(&exported.path, &model)
}

/// Where a training run writes its ONNX model: `<run>/exports/model.onnx`.
pub fn onnx_run_output(run_dir: &crate::train::run_dir::RunDir) -> PathBuf {
    run_dir
        .root
        .join("exports")
        .join(crate::export::onnx::DEFAULT_FILE_NAME)
}

/// The `formats = ["onnx"]` step of a training run, as [`export_coreml_run`]: a failure is a
/// warning.
pub fn export_onnx_run(ctx: &crate::train::RunContext, model_dir: &Path) {
    let out = onnx_run_output(&ctx.run_dir);
    match export_onnx(model_dir, &out, &crate::export::onnx::Options::default()) {
        Ok(e) => ctx.emit(crate::train::Event::Exported {
            format: "onnx".into(),
            path: e.path,
        }),
        Err(e) => ctx.warn(
            format!("ONNX export failed ({e}); the model folder is complete, retry with `lathe export --format onnx`"),
            Some(model_dir),
        ),
    }
}
