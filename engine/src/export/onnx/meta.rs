//! `metadata_props` of every ONNX export: labels (JSON), Lathe version, template (from
//! `manifest.json`, else `config.json`) and task, training parameters, seed and data hashes read
//! from the model folder's `manifest.json` when it has one (old model folders may not), what the input expects, and the `--author`,
//! `--license`, `--model-version`, `--description` overrides.

use crate::error::Result;
use crate::export::onnx::Options;
use crate::export::onnx::graph::entry;
use crate::export::onnx::proto::StringStringEntryProto;
use crate::fsutil::read_json;
use std::collections::BTreeMap;
use std::path::Path;

/// The metadata of an export of the model in `model_dir`: the provenance entries, then
/// `extra` (family-specific: preprocessing, columns, …); keys sorted.
pub fn props(
    model_dir: &Path,
    task: &str,
    labels: &[String],
    description: String,
    options: &Options,
    extra: BTreeMap<String, String>,
) -> Result<Vec<StringStringEntryProto>> {
    let manifest_path = model_dir.join("manifest.json");
    let manifest: serde_json::Value = if manifest_path.is_file() {
        read_json(&manifest_path)?
    } else {
        serde_json::Value::Null
    };
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let mut m = BTreeMap::new();
    m.insert("task".to_string(), task.to_string());
    if !labels.is_empty() {
        m.insert("labels".into(), json(&serde_json::json!(labels)));
    }
    // `train::run_dir::MODEL_CONFIG`, spelled out: export/ does not import train/.
    let config_path = model_dir.join("config.json");
    let config: serde_json::Value = if config_path.is_file() {
        read_json(&config_path)?
    } else {
        serde_json::Value::Null
    };
    let template = manifest
        .get("template")
        .or_else(|| config.pointer("/lathe/template"))
        .and_then(|v| v.as_str());
    if let Some(t) = template {
        m.insert("template".into(), t.into());
    }
    if let Some(params) = manifest.get("params") {
        m.insert("training_params".into(), json(params));
    }
    if let Some(seed) = manifest.get("seed") {
        m.insert("seed".into(), json(seed));
    }
    if let Some(data) = manifest.get("data").and_then(|d| d.as_object()) {
        for (split, v) in data {
            if let Some(hash) = v.get("blake3").and_then(|h| h.as_str()) {
                m.insert(format!("data_blake3_{split}"), hash.into());
            }
        }
    }
    if let Some(c) = manifest.get("created").and_then(|v| v.as_str()) {
        m.insert("trained".into(), c.into());
    }
    m.insert("lathe_version".into(), crate::VERSION.into());
    m.insert("precision".into(), "fp32".into());
    m.insert(
        "description".into(),
        options.description.clone().unwrap_or(description),
    );
    m.insert(
        "author".into(),
        options
            .author
            .clone()
            .unwrap_or_else(|| "Made with Lathe".into()),
    );
    if let Some(l) = &options.license {
        m.insert("license".into(), l.clone());
    }
    m.insert(
        "version".into(),
        options.version.clone().unwrap_or_else(|| "1.0".into()),
    );
    m.extend(extra);
    Ok(m.iter().map(|(k, v)| entry(k, v)).collect())
}
