//! safetensors reading and writing with `__metadata__` (Hugging Face loaders expect at least
//! `format: pt`; candle's own helpers write none). Writes are atomic.

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Tensors and metadata of a safetensors file.
pub type Loaded = (HashMap<String, Tensor>, HashMap<String, String>);

/// Writes `tensors` with `metadata` (plus `format: pt`) atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], metadata: &[(&str, String)]) -> Result<()> {
    let mut info: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    info.entry("format".into()).or_insert_with(|| "pt".into());
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        cpu.push((name.clone(), t.to_device(&Device::Cpu)?.contiguous()?));
    }
    let bytes = safetensors::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(info))
        .map_err(|e| Error::model(format!("cannot serialize tensors ({e})"), path))?;
    atomic_write(path, &bytes)
}

/// Reads all tensors and the metadata of a safetensors file.
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| Error::model(format!("not a readable safetensors file ({e})"), path))?;
    let metadata = safetensors::SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default();
    Ok((tensors, metadata))
}
