//! Exporting a trained model folder to a place the user chooses, for callers that are not the CLI
//! (the app): which formats this build writes, the default destination, the metadata and weight
//! precision of an export ([`ExportOptions`]), and writes that never leave a half-written file:
//! Core ML and ONNX files go to a temporary sibling that is renamed over the target
//! (`fsutil::atomic_write`), a safetensors folder is staged beside the target and swapped in
//! (`fsutil::replace_dir`), never inside the model folder itself.

use crate::error::{Error, Result};
use crate::fsutil;
use crate::templates;
use std::path::{Path, PathBuf};

/// Export formats this build can write.
pub fn formats() -> &'static [&'static str] {
    &["safetensors", "coreml", "onnx"]
}

/// Whether this build can write `format`.
pub fn supports(format: &str) -> bool {
    formats().contains(&format)
}

/// Whether this build can write `format` for models of `task` (a task id; `None` when not
/// known, e.g. a run opened without its project).
pub fn supports_task(format: &str, task: Option<&str>) -> bool {
    match (format, task) {
        ("coreml", Some(task)) => crate::templates::coreml_supports_task(task),
        ("onnx", Some(task)) => crate::templates::onnx_supports_task(task),
        _ => supports(format),
    }
}

/// What an export writes besides the model: the metadata (Core ML's `author`, `license`,
/// `versionString` and `shortDescription`; ONNX `metadata_props` `author`, `license`, `version`,
/// `description`; a safetensors folder's `manifest.json` `metadata`) and half-precision weights
/// (Core ML and ONNX only). `None` keeps each format's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    pub fp16: bool,
    pub author: Option<String>,
    pub license: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
}

impl ExportOptions {
    /// The metadata given, as `manifest.json` keys (empty when none is).
    fn metadata(&self) -> serde_json::Map<String, serde_json::Value> {
        [
            ("author", &self.author),
            ("license", &self.license),
            ("description", &self.description),
            ("version", &self.version),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), serde_json::Value::from(v.clone()?))))
        .collect()
    }

    /// The Core ML exporter's options.
    pub fn coreml(&self) -> crate::export::coreml::Options {
        crate::export::coreml::Options {
            precision: if self.fp16 {
                crate::export::coreml::Precision::Fp16
            } else {
                crate::export::coreml::Precision::Fp32
            },
            description: self.description.clone(),
            author: self.author.clone(),
            license: self.license.clone(),
            version: self.version.clone(),
        }
    }

    /// The ONNX exporter's options.
    pub fn onnx(&self) -> crate::export::onnx::Options {
        crate::export::onnx::Options {
            fp16: self.fp16,
            description: self.description.clone(),
            author: self.author.clone(),
            license: self.license.clone(),
            version: self.version.clone(),
        }
    }
}

/// `<run>/exports/<format>` for a run's model, else a sibling `<folder>-<format>`.
pub fn default_out(model_dir: &Path, format: &str) -> PathBuf {
    match model_dir.parent() {
        Some(run)
            if model_dir.ends_with("model") && run.join(crate::train::run_dir::EVENTS).exists() =>
        {
            run.join("exports").join(format)
        }
        _ => {
            let name = model_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            model_dir.with_file_name(format!("{name}-{format}"))
        }
    }
}

/// Exports the model of a run or model folder `model` as `format` into `out` (default:
/// [`default_out`]), replacing an earlier export there. Returns the folder written — or, for
/// `coreml` / `onnx`, the `.mlmodel` / `.onnx` file (`<default_out>.mlmodel` / `.onnx` unless
/// `out` is given).
pub fn export(model: &Path, format: &str, out: Option<&Path>) -> Result<PathBuf> {
    export_with(model, format, out, &ExportOptions::default())
}

/// [`export`] with metadata and precision. fp16 applies to Core ML and ONNX: a safetensors
/// folder keeps the weights the model was trained with, so asking for it there is an error.
pub fn export_with(
    model: &Path,
    format: &str,
    out: Option<&Path>,
    options: &ExportOptions,
) -> Result<PathBuf> {
    let model_dir = templates::model_dir(model)?;
    if !supports(format) {
        return Err(Error::project(
            format!(
                "export format \"{format}\" is not available in this build; use one of: {}",
                formats().join(", ")
            ),
            None,
        ));
    }
    if format == "coreml" {
        let out = match out {
            Some(p) if p.is_dir() => p.join(crate::export::coreml::DEFAULT_FILE_NAME),
            Some(p) => p.to_path_buf(),
            None => {
                let folder = default_out(&model_dir, format);
                let name = folder
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".into());
                folder.with_file_name(format!("{name}.mlmodel"))
            }
        };
        return Ok(crate::templates::export_coreml(&model_dir, &out, &options.coreml())?.path);
    }
    if format == "onnx" {
        let out = match out {
            Some(p) if p.is_dir() => p.join(crate::export::onnx::DEFAULT_FILE_NAME),
            Some(p) => p.to_path_buf(),
            None => default_out(&model_dir, format).with_extension("onnx"),
        };
        return Ok(crate::templates::export_onnx(&model_dir, &out, &options.onnx())?.path);
    }
    if options.fp16 {
        return Err(Error::project(
            "half precision (fp16) applies to Core ML and ONNX exports; a safetensors folder keeps the weights the model was trained with",
            None,
        ));
    }
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_out(&model_dir, format));
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if abs(&out).starts_with(abs(&model_dir)) {
        return Err(Error::project(
            "the export folder must not be inside the model folder; choose another folder",
            Some(&out),
        ));
    }
    let staging = fsutil::temp_sibling(&out).with_extension("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| Error::io("removing an old staging folder", &staging, e))?;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    fsutil::copy_dir(&model_dir, &staging)?;
    let metadata = options.metadata();
    if !metadata.is_empty() {
        let manifest = staging.join("manifest.json");
        let mut value: serde_json::Value = if manifest.is_file() {
            fsutil::read_json(&manifest)?
        } else {
            serde_json::json!({})
        };
        if let Some(object) = value.as_object_mut() {
            object.insert("metadata".into(), serde_json::Value::Object(metadata));
        }
        fsutil::write_json(&manifest, &value)?;
    }
    fsutil::replace_dir(&staging, &out)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn core_ml_is_offered_for_the_tasks_that_export_it() {
        assert!(supports_task("coreml", Some("tabular-regression")));
        assert!(supports_task("coreml", Some("text-classification")));
        assert!(supports_task("coreml", Some("sound-classification")));
        assert!(supports_task("coreml", None));
        assert!(supports_task("safetensors", Some("sound-classification")));
        assert!(supports_task("onnx", Some("tabular-classification")));
    }

    #[test]
    fn copies_a_model_folder_and_refuses_to_export_into_it() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let model = run.join("model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(run.join("events.jsonl"), "").unwrap();
        std::fs::write(model.join("config.json"), "{}").unwrap();
        std::fs::write(model.join("model.safetensors"), b"weights").unwrap();
        let out = export(&run, "safetensors", None).unwrap();
        assert_eq!(out, run.join("exports/safetensors"));
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            b"weights"
        );
        // A second export replaces the first.
        std::fs::write(model.join("model.safetensors"), b"new").unwrap();
        export(&run, "safetensors", None).unwrap();
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            b"new"
        );
        let inside = model.join("copy");
        let e = export(&run, "safetensors", Some(&inside))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside the model folder"), "{e}");
        let e = export(&run, "tflite", None).unwrap_err().to_string();
        assert!(e.contains("tflite") && e.contains("safetensors"), "{e}");

        // Metadata goes into the copy's manifest.json; fp16 is refused for safetensors.
        let options = ExportOptions {
            author: Some("Ada".into()),
            version: Some("2.1".into()),
            ..Default::default()
        };
        let named = tmp.path().join("named");
        export_with(&run, "safetensors", Some(&named), &options).unwrap();
        let manifest: serde_json::Value =
            crate::fsutil::read_json(&named.join("manifest.json")).unwrap();
        assert_eq!(
            manifest["metadata"],
            serde_json::json!({"author": "Ada", "version": "2.1"})
        );
        assert!(!model.join("manifest.json").exists());
        let half = ExportOptions {
            fp16: true,
            ..Default::default()
        };
        let e = export_with(&run, "safetensors", Some(&named), &half)
            .unwrap_err()
            .to_string();
        assert!(e.contains("fp16") && e.contains("Core ML"), "{e}");
    }
}
