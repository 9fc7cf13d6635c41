//! Metadata shared by every Core ML export: the user-defined provenance entries read from the
//! model folder's `manifest.json` (training parameters, seed, data hashes, when it was trained)
//! and the author / license / version defaults that `--author`, `--license`,
//! `--model-version` and `--description` override.

use crate::error::Result;
use crate::export::coreml::Options;
use crate::export::coreml::spec::ModelMetadata;
use crate::fsutil::read_json;
use std::collections::BTreeMap;
use std::path::Path;

/// User-defined entries every export carries: `classes` (JSON, when given), `training_params`
/// (JSON), `seed`, `data_blake3_<split>`, `trained`, `precision`, `lathe_version`.
pub fn provenance(
    model_dir: &Path,
    labels: &[String],
    options: &Options,
) -> Result<BTreeMap<String, String>> {
    let manifest_path = model_dir.join("manifest.json");
    let manifest: serde_json::Value = if manifest_path.is_file() {
        read_json(&manifest_path)?
    } else {
        serde_json::Value::Null
    };
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let mut user = BTreeMap::new();
    if !labels.is_empty() {
        user.insert("classes".to_string(), json(&serde_json::json!(labels)));
    }
    if let Some(params) = manifest.get("params") {
        user.insert("training_params".into(), json(params));
    }
    if let Some(seed) = manifest.get("seed") {
        user.insert("seed".into(), json(seed));
    }
    if let Some(data) = manifest.get("data").and_then(|d| d.as_object()) {
        for (split, v) in data {
            if let Some(hash) = v.get("blake3").and_then(|h| h.as_str()) {
                user.insert(format!("data_blake3_{split}"), hash.into());
            }
        }
    }
    if let Some(c) = manifest.get("created").and_then(|v| v.as_str()) {
        user.insert("trained".into(), c.into());
    }
    user.insert("precision".into(), options.precision.as_str().into());
    user.insert("lathe_version".into(), env!("CARGO_PKG_VERSION").into());
    Ok(user)
}

/// The metadata with the options' overrides applied over the defaults.
pub fn metadata(
    options: &Options,
    short_description: String,
    default_license: &str,
    user_defined: BTreeMap<String, String>,
) -> ModelMetadata {
    ModelMetadata {
        short_description: options.description.clone().unwrap_or(short_description),
        author: options
            .author
            .clone()
            .unwrap_or_else(|| "Made with Lathe".into()),
        license: options
            .license
            .clone()
            .unwrap_or_else(|| default_license.into()),
        version: options.version.clone().unwrap_or_else(|| "1.0".into()),
        user_defined,
    }
}

/// `labels` shortened for a description: the first six, then "…".
pub fn label_list(labels: &[String]) -> String {
    let shown: Vec<&str> = labels.iter().take(6).map(String::as_str).collect();
    let more = if labels.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!("{}{more}", shown.join(", "))
}
