//! Finding pretrained weights: an explicit `--weights PATH`, the copy embedded in this build,
//! or the Hugging Face hub (its cache first; offline with `HF_HUB_OFFLINE=1`). Errors say which
//! places were tried and how to provide the file.

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a backbone's weights can come from.
#[derive(Clone, Debug)]
pub struct WeightsSpec {
    /// Backbone id (`mobilenet_v2`).
    pub id: &'static str,
    /// Bytes compiled into this build, if any.
    pub embedded: Option<&'static [u8]>,
    /// Hugging Face repository and file, if the backbone is published there.
    pub hub: Option<(&'static str, &'static str)>,
}

/// Loaded weights and where they came from (recorded in the reproducibility manifest).
pub struct LoadedWeights {
    pub tensors: HashMap<String, Tensor>,
    /// BLAKE3 of the safetensors file: identifies the exact weights ("revision").
    pub hash: String,
    /// `embedded`, a file path, or `hf://repo/file`.
    pub source: String,
}

/// Loads weights for `spec`, trying `explicit`, then embedded bytes, then the hub.
pub fn load(spec: &WeightsSpec, explicit: Option<&Path>, device: &Device) -> Result<LoadedWeights> {
    if let Some(path) = explicit {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading weights", path, e))?;
        return from_bytes(&bytes, path.display().to_string(), device)
            .map_err(|e| Error::Weights(format!("{e}: {}", path.display())));
    }
    if let Some(bytes) = spec.embedded {
        return from_bytes(bytes, "embedded".into(), device);
    }
    let mut tried = vec![
        "no --weights given".to_string(),
        "not embedded in this build".to_string(),
    ];
    if let Some((repo, file)) = spec.hub {
        match hub_file(repo, file) {
            Ok(path) => {
                let bytes =
                    std::fs::read(&path).map_err(|e| Error::io("reading weights", &path, e))?;
                return from_bytes(&bytes, format!("hf://{repo}/{file}"), device);
            }
            Err(why) => tried.push(why),
        }
    }
    Err(Error::Weights(format!(
        "no weights for backbone \"{}\" ({}); pass --weights PATH to a safetensors file",
        spec.id,
        tried.join("; ")
    )))
}

fn from_bytes(bytes: &[u8], source: String, device: &Device) -> Result<LoadedWeights> {
    let tensors = candle_core::safetensors::load_buffer(bytes, device)
        .map_err(|e| Error::Weights(format!("not a readable safetensors file ({e})")))?;
    Ok(LoadedWeights {
        tensors,
        hash: crate::fsutil::hash_hex(bytes),
        source,
    })
}

/// Finds `file` of `repo` in the Hugging Face cache, downloading it unless offline.
#[cfg(feature = "hub")]
fn hub_file(repo: &str, file: &str) -> std::result::Result<PathBuf, String> {
    let cache = hf_hub::Cache::from_env();
    if let Some(path) = cache.model(repo.to_string()).get(file) {
        return Ok(path);
    }
    let offline = std::env::var("HF_HUB_OFFLINE")
        .map(|v| v == "1" || v == "true")
        .unwrap_or(false);
    if offline {
        return Err(format!(
            "hf://{repo}/{file} is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
        ));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(false)
        .build()
        .map_err(|e| format!("cannot start the Hugging Face client ({e})"))?;
    api.model(repo.to_string())
        .get(file)
        .map_err(|e| format!("download of hf://{repo}/{file} failed ({e}); set HF_HUB_OFFLINE=1 to use only the cache"))
}

#[cfg(not(feature = "hub"))]
fn hub_file(repo: &str, file: &str) -> std::result::Result<PathBuf, String> {
    Err(format!(
        "this build has no Hugging Face hub support, so hf://{repo}/{file} cannot be fetched"
    ))
}
