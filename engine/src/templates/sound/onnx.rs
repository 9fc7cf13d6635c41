//! The sound classifier as one ONNX graph over one analysis window of raw audio. Input
//! `samples`: float32 `[1, window_samples]`, mono 16 kHz samples in [-1, 1] — for `statistics`
//! and `speech` `window_frames × hop_length` samples (16,000 for the default 1 s window: a
//! shorter clip zero-padded at the end to it, exactly as Lathe pads it), for `cnn`
//! `(window_frames − 1) × hop_length + win_length` (16,240: the span of the window's log-mel
//! frames). Outputs `probabilities` `[1, labels]` and `label` (string `[1]`). Longer recordings
//! are cut into windows every `window_hop_samples` (metadata) and their probabilities averaged,
//! as Lathe does; that loop stays in app code.
//!
//! In the graph, per algorithm:
//!
//! - the log-mel front end of `data::audio_frontend` (`statistics`, `cnn`): the 25 ms
//!   Hann-windowed 512-point DFT of every frame as a `Conv` over time (stride `hop_length`, no
//!   centering) with cosine and sine kernels, squared and summed (power), the HTK mel matrix as a
//!   `MatMul`, `Log(mel + log_offset)` — the same floor as the engine;
//! - `statistics`: per band the mean, standard deviation and standard deviation of the
//!   frame-to-frame change over the window's frames, frames of digital silence (every band at
//!   the floor: zero padding) left out as the engine does — a `Greater` test per frame, then
//!   `NonZero` + `Gather` keep the sounding frames in order (all of them when none sounds), so
//!   the deltas are taken between consecutive kept frames exactly as the engine takes them;
//!   for `logmel_mfcc_stats` models (what training writes now; `logmel_stats` ones keep the graph
//!   above) also the standard deviation of each of 20 MFCCs and of their deltas: the centered
//!   kept rows and the centered deltas times the constant DCT-II matrix `[n_mels, 20]`
//!   (`MatMul`; centering first commutes with the DCT and keeps float32 off large offsets), then
//!   the same mean of squares and masked delta variance;
//! - `speech`: Google's speech embedding (`nets::speech_embedding`) with its own front end
//!   (magnitude spectrum, its 32-band mel matrix, `Log(mel + 0.001)`), its 20 convolutions,
//!   batch norm, LeakyReLU floored at −0.4 and max-pools; the rows the engine would compute on
//!   the window with its trailing digital silence trimmed (at least 0.775 s kept) are selected
//!   by comparing the row index with the count derived from the last non-zero sample, then
//!   their mean and standard deviation;
//! - `cnn`: the per-band standardization and the CNN (`nets::audio_cnn`, batch norm folded into
//!   each `Conv`, `MaxPool` 2×2, mean and max over time);
//!
//! then the head's `Gemm` layers (the input standardization is folded into the first, as the
//! model folder stores it) and `Softmax`. The CREPE (`transfer`), Whisper (`whisper`) and YAMNet
//! (`yamnet`) models give a clear `Unsupported` error naming what exports.

use crate::data::audio_frontend::{FrontEndConfig, mel_filters};
use crate::error::{Error, Result};
use crate::export::coreml::backbone::values;
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::fsutil::read_json;
use crate::nets::audio_cnn::AudioCnnConfig;
use crate::nets::head::{Head, HeadKind};
use crate::nets::speech_embedding as se;
use crate::task::Model;
use crate::templates::sound::encoder as stats_encoder;
use crate::templates::sound::model::SoundModel;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Name of the samples input.
pub const INPUT: &str = "samples";

/// Batch-norm epsilon of the CNN (`nets::audio_cnn`).
const CNN_BN_EPS: f64 = 1e-5;
/// Batch-norm epsilon of the speech embedding's `bn0`.
const SPEECH_BN_EPS: f64 = 1e-3;

/// The model folder's tensors, read by name.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::model(
                format!("missing tensor `{name}`; re-export the model"),
                self.path,
            )
        })
    }

    fn values(&self, name: &str) -> Result<Vec<f32>> {
        values(&self.tensor(name)?.to_dtype(DType::F32)?)
    }

    fn dims(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.tensor(name)?.dims().to_vec())
    }
}

/// Samples the CNN's window spans: `(window_frames − 1) × hop + win_length`.
pub fn cnn_window_samples(cfg: &FrontEndConfig) -> usize {
    cfg.window_frames.saturating_sub(1) * cfg.hop_length + cfg.win_length
}

/// Exports the sound classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let config_path = model_dir.join(crate::train::run_dir::MODEL_CONFIG);
    let config: serde_json::Value = read_json(&config_path)?;
    let algorithm = config["algorithm"].as_str().unwrap_or_default();
    let encoder = config["encoder"].as_str();
    let mfcc = encoder == Some(stats_encoder::MFCC_STATS_ID);
    let kind = match (algorithm, encoder) {
        ("cnn", _) => "cnn",
        ("transfer", Some(stats_encoder::STATS_ID | stats_encoder::MFCC_STATS_ID)) => "statistics",
        ("transfer", Some("speech_embedding")) => "speech",
        ("transfer", Some("whisper_tiny_en")) => {
            return Err(unsupported("whisper (Whisper tiny.en encoder)"));
        }
        ("transfer", Some(stats_encoder::YAMNET_ID)) => {
            return Err(unsupported("yamnet (YAMNet encoder)"));
        }
        ("transfer", Some("crepe_tiny") | None) => {
            return Err(unsupported("transfer (CREPE-tiny)"));
        }
        _ => {
            return Err(Error::model(
                "config.json has no valid `algorithm` (cnn or transfer) and `encoder`",
                &config_path,
            ));
        }
    };
    // Loading checks the folder as prediction does (labels, front end, weights fit the network).
    let model = SoundModel::load(model_dir, &Device::Cpu)?;
    let labels = model.labels().to_vec();
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
    let w = Weights {
        tensors: &tensors,
        path: &weights_path,
    };
    let window = match kind {
        "cnn" => cnn_window_samples(&frontend),
        _ => frontend.window_frames * frontend.hop_length,
    };
    let hop_samples = frontend.window_hop_frames * frontend.hop_length;
    let mut g = Graph::new();
    g.input(
        INPUT,
        data_type::FLOAT,
        &[Dim::Fixed(1), Dim::Fixed(window as i64)],
        "one window of mono 16 kHz samples in [-1, 1]; pad a shorter clip with zeros at the end",
    );
    let (logits, what) = match kind {
        "cnn" => {
            let cnn: AudioCnnConfig = serde_json::from_value(config["cnn"].clone())
                .map_err(|_| Error::model("config.json has no valid `cnn`", &config_path))?;
            (
                cnn_network(&mut g, &frontend, &cnn, &w)?,
                format!(
                    "log-mel CNN, {} bands, width {}",
                    frontend.n_mels, cnn.width
                ),
            )
        }
        _ => {
            let head_kind: HeadKind = serde_json::from_value(config["head"].clone())
                .map_err(|_| Error::model("config.json has no valid `head`", &config_path))?;
            let head = Head::from_tensors(head_kind, &tensors)
                .map_err(|e| Error::model(format!("{e}"), &weights_path))?;
            let (features, what) = if kind == "statistics" {
                (
                    statistics(&mut g, &frontend, window, mfcc)?,
                    if mfcc {
                        "log-mel and MFCC statistics + head"
                    } else {
                        "log-mel statistics + head"
                    },
                )
            } else {
                (
                    speech(&mut g, &w, window)?,
                    "Google speech embedding + head",
                )
            };
            (head_layers(&mut g, &head, &features)?, what.to_string())
        }
    };
    let classes = labels.len() as i64;
    g.node_to(
        "Softmax",
        &[&logits],
        "probabilities",
        vec![graph::int("axis", 1)],
    );
    let index = g.node(
        "ArgMax",
        &["probabilities"],
        vec![graph::int("axis", 1), graph::int("keepdims", 0)],
    );
    let names = g.strings("labels", &labels);
    g.node_to(
        "Gather",
        &[&names, &index],
        "label",
        vec![graph::int("axis", 0)],
    );
    g.output(
        "probabilities",
        data_type::FLOAT,
        &[Dim::Fixed(1), Dim::Fixed(classes)],
        "one probability per label, in `labels` order",
    );
    g.output(
        "label",
        data_type::STRING,
        &[Dim::Fixed(1)],
        "the most probable label",
    );

    let trims = frontend.trim_silence && kind == "cnn";
    let description = format!(
        "Sound classifier ({what}) for {} labels, trained with Lathe. Input: one window of 16 kHz mono samples.",
        labels.len()
    );
    let mut extra = BTreeMap::new();
    extra.insert("algorithm".to_string(), kind.to_string());
    extra.insert("sample_rate".into(), frontend.sample_rate.to_string());
    extra.insert("window_samples".into(), window.to_string());
    extra.insert("window_hop_samples".into(), hop_samples.to_string());
    extra.insert(
        "file_prediction".into(),
        "mean of the window probabilities".into(),
    );
    extra.insert("trim_silence".into(), trims.to_string());
    let trim = if trims {
        format!(
            " The model was trained with silence trimming: first drop the quiet start and end of \
             the recording (every {} ms frame of {} ms whose RMS is below {} dBFS).",
            frontend.hop_length * 1000 / frontend.sample_rate.max(1) as usize,
            frontend.win_length * 1000 / frontend.sample_rate.max(1) as usize,
            frontend.silence_threshold_db
        )
    } else {
        String::new()
    };
    extra.insert(
        "preprocessing".into(),
        format!(
            "input `samples` float32 [1, {window}]: {window} mono samples at {} Hz in [-1, 1] ({:.3} s); \
             pad a shorter clip with zeros at the end; for a longer recording classify windows starting \
             every {hop_samples} samples (the last one ending at the end) and average their probabilities, \
             as Lathe does.{trim}",
            frontend.sample_rate,
            window as f64 / frontend.sample_rate.max(1) as f64
        ),
    );
    extra.insert(
        "frontend".into(),
        serde_json::to_string(&crate::templates::sound::model::feature_extractor_config(
            &frontend,
        ))
        .unwrap_or_default(),
    );
    let props = meta::props(
        model_dir,
        "sound-classification",
        &labels,
        description.clone(),
        options,
        extra,
    )?;
    onnx::write(
        out,
        &g.finish("lathe_sound_classifier", &description, props),
    )
}

fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!(
        "ONNX export of the {what} sound model is not available yet; the statistics, speech and cnn \
         sound models export to ONNX (train with --param algorithm=statistics, speech or cnn), and \
         this one exports to safetensors (--format safetensors) or Core ML (--format coreml, transfer only)"
    ))
}

/// `[x] → Constant int64 vector`.
fn i64s(g: &mut Graph, name: &str, v: &[i64]) -> String {
    g.ints(name, &[v.len() as i64], v)
}

/// `Slice` of `x` along `axis` from `start` to `end`.
fn slice(g: &mut Graph, x: &str, axis: i64, start: i64, end: i64) -> String {
    let s = i64s(g, "slice.start", &[start]);
    let e = i64s(g, "slice.end", &[end]);
    let a = i64s(g, "slice.axis", &[axis]);
    g.node("Slice", &[x, &s, &e, &a], vec![])
}

/// `Reshape` of `x` to `shape`.
fn reshape(g: &mut Graph, x: &str, shape: &[i64]) -> String {
    let s = i64s(g, "shape", shape);
    g.node("Reshape", &[x, &s], vec![])
}

/// The windowed DFT kernels `[2 · bins, 1, win]`: the cosine of every bin `0..=n_fft/2`, then the
/// sine of every bin (those of bin 0 and Nyquist are zero). The frame is zero-padded to `n_fft`
/// (samples past `n_fft` never reach the FFT); `window` is the analysis window.
fn dft_kernels(window: &[f64], n_fft: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let mut out = Vec::with_capacity(2 * bins * window.len());
    for part in [f64::cos, f64::sin] {
        for k in 0..bins {
            for (n, &w) in window.iter().enumerate() {
                let v = if n < n_fft {
                    let angle =
                        2.0 * std::f64::consts::PI * ((k * n) % n_fft) as f64 / n_fft as f64;
                    w * part(angle)
                } else {
                    0.0
                };
                out.push(v as f32);
            }
        }
    }
    out
}

/// Power spectrum `[1, bins, frames]` of `samples` `[1, n]`: the DFT kernels as a `Conv` over
/// time (stride `hop`), squared, the cosine and sine halves summed.
fn power_spectrum(
    g: &mut Graph,
    samples: &str,
    window: &[f64],
    n_fft: usize,
    hop: usize,
) -> String {
    let bins = (n_fft / 2 + 1) as i64;
    let win = window.len() as i64;
    let kernels = dft_kernels(window, n_fft);
    let k = g.floats("stft.kernels", &[2 * bins, 1, win], &kernels);
    let axes = i64s(g, "axes", &[1]);
    let x = g.node("Unsqueeze", &[samples, &axes], vec![]);
    let spectrum = g.node(
        "Conv",
        &[&x, &k],
        vec![
            graph::ints("kernel_shape", vec![win]),
            graph::ints("strides", vec![hop as i64]),
        ],
    );
    let squared = g.node("Mul", &[&spectrum, &spectrum], vec![]);
    let re = slice(g, &squared, 1, 0, bins);
    let im = slice(g, &squared, 1, bins, 2 * bins);
    g.node("Add", &[&re, &im], vec![])
}

/// The engine's log-mel frames `[1, n_mels, frames]` of `samples` `[1, n]`.
fn log_mel(g: &mut Graph, fe: &FrontEndConfig, samples: &str) -> String {
    let window: Vec<f64> = (0..fe.win_length)
        .map(|n| {
            // The engine's periodic Hann window, rounded to f32 as it uses it.
            (0.5 - 0.5
                * (2.0 * std::f64::consts::PI * n as f64 / fe.win_length as f64).cos() as f32)
                as f64
        })
        .collect();
    let power = power_spectrum(g, samples, &window, fe.n_fft, fe.hop_length);
    let bins = fe.n_fft / 2 + 1;
    let mut mel = vec![0f32; fe.n_mels * bins];
    for (m, (first, weights)) in mel_filters(fe).iter().enumerate() {
        for (j, &wt) in weights.iter().enumerate() {
            if let Some(v) = mel.get_mut(m * bins + first + j) {
                *v = wt;
            }
        }
    }
    let mel = g.floats("mel.matrix", &[fe.n_mels as i64, bins as i64], &mel);
    let e = g.node("MatMul", &[&mel, &power], vec![]);
    let offset = g.floats("mel.log_offset", &[], &[fe.log_offset]);
    let e = g.node("Add", &[&e, &offset], vec![]);
    g.node("Log", &[&e], vec![])
}

/// The log-mel statistics `[1, 3 · n_mels]` of a window of `window` samples; with `mfcc`, then
/// the standard deviations of the 20 MFCCs and of their deltas (`[1, 3 · n_mels + 40]`).
fn statistics(g: &mut Graph, fe: &FrontEndConfig, window: usize, mfcc: bool) -> Result<String> {
    if window < fe.win_length {
        return Err(Error::Unsupported(
            "ONNX export: the window is shorter than one analysis frame; re-train with a longer window_secs".into(),
        ));
    }
    let bands = fe.n_mels as i64;
    let mel = log_mel(g, fe, INPUT);
    // [1, bands, T] → [T, bands]
    let mel = reshape(g, &mel, &[bands, -1]);
    let rows = g.node("Transpose", &[&mel], vec![graph::ints("perm", vec![1, 0])]);
    // A frame sounds when any band is above the floor; all frames when none does.
    let peak = g.node(
        "ReduceMax",
        &[&rows],
        vec![graph::ints("axes", vec![1]), graph::int("keepdims", 0)],
    );
    let floor = g.floats("silence.floor", &[], &[fe.log_offset.ln() + 1e-3]);
    let sounding = g.node("Greater", &[&peak, &floor], vec![]);
    let sounding = g.node(
        "Cast",
        &[&sounding],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );
    let any = g.node(
        "ReduceMax",
        &[&sounding],
        vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)],
    );
    let one = g.floats("one", &[], &[1.0]);
    let none = g.node("Sub", &[&one, &any], vec![]);
    let keep = g.node("Max", &[&sounding, &none], vec![]);
    let keep = g.node(
        "Cast",
        &[&keep],
        vec![graph::int("to", data_type::BOOL as i64)],
    );
    let index = g.node("NonZero", &[&keep], vec![]);
    let index = reshape(g, &index, &[-1]);
    let rows = g.node("Gather", &[&rows, &index], vec![graph::int("axis", 0)]);
    let mean_attrs = || vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)];
    let mean = g.node("ReduceMean", &[&rows], mean_attrs());
    let centered = g.node("Sub", &[&rows, &mean], vec![]);
    let sq = g.node("Mul", &[&centered, &centered], vec![]);
    let var = g.node("ReduceMean", &[&sq], mean_attrs());
    let std = g.node("Sqrt", &[&var], vec![]);
    // Deltas between consecutive kept frames; a zero row appended (weight 0) keeps the
    // reductions off empty tensors when a single frame is kept, and the count is at least 1
    // as in the engine.
    let next = slice(g, &rows, 0, 1, i64::MAX);
    let prev = slice(g, &rows, 0, 0, -1);
    let deltas = g.node("Sub", &[&next, &prev], vec![]);
    let zero_row = g.floats("delta.pad", &[1, bands], &vec![0.0; bands as usize]);
    let deltas = g.node("Concat", &[&deltas, &zero_row], vec![graph::int("axis", 0)]);
    let shape = g.node("Shape", &[&rows], vec![]);
    let n = slice(g, &shape, 0, 0, 1);
    let n = g.node(
        "Cast",
        &[&n],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );
    let count = g.node("Sub", &[&n, &one], vec![]);
    let count = g.node("Max", &[&count, &one], vec![]);
    let axes0 = i64s(g, "axes", &[0]);
    let sum = g.node(
        "ReduceSum",
        &[&deltas, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let dmean = g.node("Div", &[&sum, &count], vec![]);
    // Weights: 1 for every real delta, 0 for the appended row.
    let ones = g.node(
        "ConstantOfShape",
        &[&shape],
        vec![graph::tensor(
            "value",
            crate::export::onnx::proto::TensorProto {
                dims: vec![1],
                data_type: data_type::FLOAT,
                raw_data: 1f32.to_le_bytes().to_vec(),
                ..Default::default()
            },
        )],
    );
    let ones = slice(g, &ones, 1, 0, 1);
    let real = slice(g, &ones, 0, 1, i64::MAX);
    let zero = g.floats("delta.pad_weight", &[1, 1], &[0.0]);
    let weight = g.node("Concat", &[&real, &zero], vec![graph::int("axis", 0)]);
    let dc = g.node("Sub", &[&deltas, &dmean], vec![]);
    let dsq = g.node("Mul", &[&dc, &dc], vec![]);
    let dsq = g.node("Mul", &[&dsq, &weight], vec![]);
    let dsum = g.node(
        "ReduceSum",
        &[&dsq, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let dvar = g.node("Div", &[&dsum, &count], vec![]);
    let dstd = g.node("Sqrt", &[&dvar], vec![]);
    if !mfcc {
        return Ok(g.node("Concat", &[&mean, &std, &dstd], vec![graph::int("axis", 1)]));
    }
    // MFCCs: rows · DCT `[bands, N_MFCC]`. The standard deviation of a linear map of the rows is
    // that of the centered rows mapped, and the deltas' centered values map the same way.
    let basis = stats_encoder::dct_matrix(fe.n_mels);
    let n_mfcc = basis.len();
    let dct: Vec<f32> = (0..fe.n_mels)
        .flat_map(|m| basis.iter().map(move |row| row[m] as f32))
        .collect();
    let dct = g.floats("mfcc.dct", &[bands, n_mfcc as i64], &dct);
    let mc = g.node("MatMul", &[&centered, &dct], vec![]);
    let msq = g.node("Mul", &[&mc, &mc], vec![]);
    let mvar = g.node("ReduceMean", &[&msq], mean_attrs());
    let mstd = g.node("Sqrt", &[&mvar], vec![]);
    let mdc = g.node("MatMul", &[&dc, &dct], vec![]);
    let mdsq = g.node("Mul", &[&mdc, &mdc], vec![]);
    let mdsq = g.node("Mul", &[&mdsq, &weight], vec![]);
    let mdsum = g.node(
        "ReduceSum",
        &[&mdsq, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let mdvar = g.node("Div", &[&mdsum, &count], vec![]);
    let mdstd = g.node("Sqrt", &[&mdvar], vec![]);
    Ok(g.node(
        "Concat",
        &[&mean, &std, &dstd, &mstd, &mdstd],
        vec![graph::int("axis", 1)],
    ))
}

/// The speech embedding's features `[1, 192]`: mean and standard deviation of the embedding
/// rows the engine computes on the window with its trailing digital silence trimmed.
fn speech(g: &mut Graph, w: &Weights, window: usize) -> Result<String> {
    let min = se::MIN_SAMPLES;
    let padded = window.max(min);
    let frame = |n: usize| (n - se::FRAME_LENGTH) / se::FRAME_STEP + 1;
    let rows_of = |frames: usize| (frames - se::WINDOW_FRAMES) / se::WINDOW_STEP_FRAMES + 1;
    let rows = rows_of(frame(padded));
    let span = (rows - 1) * se::WINDOW_STEP_FRAMES + se::WINDOW_FRAMES;
    let used = (span - 1) * se::FRAME_STEP + se::FRAME_LENGTH;
    let mut x = INPUT.to_string();
    if window < min {
        let pads = i64s(g, "pads", &[0, 0, 0, (min - window) as i64]);
        x = g.node("Pad", &[&x, &pads], vec![]);
    }
    // Rows kept: those of the trimmed clip, from its last non-zero sample.
    let nonzero = {
        let zero = g.floats("zero", &[], &[0.0]);
        let eq = g.node("Equal", &[&x, &zero], vec![]);
        let ne = g.node("Not", &[&eq], vec![]);
        g.node(
            "Cast",
            &[&ne],
            vec![graph::int("to", data_type::FLOAT as i64)],
        )
    };
    let positions: Vec<f32> = (1..=padded).map(|i| i as f32).collect();
    let positions = g.floats("speech.positions", &[1, padded as i64], &positions);
    let ends = g.node("Mul", &[&nonzero, &positions], vec![]);
    let end = g.node(
        "ReduceMax",
        &[&ends],
        vec![graph::ints("axes", vec![0, 1]), graph::int("keepdims", 0)],
    );
    let lo = g.floats("speech.min_samples", &[], &[min as f32]);
    let hi = g.floats("speech.window", &[], &[padded as f32]);
    let end = g.node("Max", &[&end, &lo], vec![]);
    let end = g.node("Min", &[&end, &hi], vec![]);
    let (fl, fs) = (se::FRAME_LENGTH as f32, se::FRAME_STEP as f32);
    let (wf, ws) = (se::WINDOW_FRAMES as f32, se::WINDOW_STEP_FRAMES as f32);
    let c_fl = g.floats("speech.frame_length", &[], &[fl]);
    let c_fs = g.floats("speech.frame_step", &[], &[fs]);
    let c_wf = g.floats("speech.window_frames", &[], &[wf]);
    let c_ws = g.floats("speech.window_step", &[], &[ws]);
    let one = g.floats("one", &[], &[1.0]);
    let t = g.node("Sub", &[&end, &c_fl], vec![]);
    let t = g.node("Div", &[&t, &c_fs], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let frames = g.node("Add", &[&t, &one], vec![]);
    let t = g.node("Sub", &[&frames, &c_wf], vec![]);
    let t = g.node("Div", &[&t, &c_ws], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let kept = g.node("Add", &[&t, &one], vec![]);
    let index: Vec<f32> = (0..rows).map(|i| i as f32).collect();
    let index = g.floats("speech.row_index", &[rows as i64, 1], &index);
    let mask = g.node("Less", &[&index, &kept], vec![]);
    let mask = g.node(
        "Cast",
        &[&mask],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );

    // Front end: magnitude of the windowed DFT, the published mel matrix, ln(mel + 0.001).
    let x = slice(g, &x, 1, 0, used as i64);
    let window: Vec<f64> = (0..se::FRAME_LENGTH)
        .map(|n| {
            0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / se::FRAME_LENGTH as f64).cos()
        })
        .collect();
    let power = power_spectrum(g, &x, &window, se::FFT_SIZE, se::FRAME_STEP);
    let magnitude = g.node("Sqrt", &[&power], vec![]);
    // [1, 257, T] → [1, T, 257] · [257, 32]
    let magnitude = g.node(
        "Transpose",
        &[&magnitude],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let mel_dims = w.dims("encoder.frontend.mel_matrix")?;
    let mel = g.floats(
        "speech.mel_matrix",
        &mel_dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
        &w.values("encoder.frontend.mel_matrix")?,
    );
    let e = g.node("MatMul", &[&magnitude, &mel], vec![]);
    let offset = g.floats("speech.log_offset", &[], &[0.001]);
    let e = g.node("Add", &[&e, &offset], vec![]);
    let e = g.node("Log", &[&e], vec![]);
    // [1, T, 32] → [1, 1, T, 32] (batch, channel, time, mel)
    let axes = i64s(g, "axes", &[1]);
    let mut h = g.node("Unsqueeze", &[&e, &axes], vec![]);

    let lo = g.floats("act.floor", &[], &[-0.4]);
    for i in 0..20 {
        let name = format!("encoder.conv{i}");
        let dims = w.dims(&format!("{name}.weight"))?;
        let [_, _, kh, kw] = dims[..] else {
            return Err(Error::model(
                format!("`{name}.weight` is not a 4-d convolution"),
                w.path,
            ));
        };
        let wt = g.floats(
            &format!("{name}.weight"),
            &dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
            &w.values(&format!("{name}.weight"))?,
        );
        let mut inputs = vec![h.clone(), wt];
        if i != 0 && i != 19 {
            let b = w.values(&format!("{name}.bias"))?;
            inputs.push(g.floats(&format!("{name}.bias"), &[b.len() as i64], &b));
        }
        let pad = if kw == 3 { 1 } else { 0 };
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        h = g.node(
            "Conv",
            &refs,
            vec![
                graph::ints("kernel_shape", vec![kh as i64, kw as i64]),
                graph::ints("pads", vec![0, pad, 0, pad]),
            ],
        );
        if i == 19 {
            break;
        }
        if i == 0 {
            h = g.node("Relu", &[&h], vec![]);
            let v = |s: &str| w.values(&format!("encoder.bn0.{s}"));
            let (gamma, beta, mean, var) = (
                v("weight")?,
                v("bias")?,
                v("running_mean")?,
                v("running_var")?,
            );
            // As the engine folds it: scale = γ / √(σ² + ε) and shift = β − μ · scale, in f32.
            let scale: Vec<f32> = gamma
                .iter()
                .zip(&var)
                .map(|(g, v)| g / (v + SPEECH_BN_EPS as f32).sqrt())
                .collect();
            let shift: Vec<f32> = beta
                .iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            let c = scale.len() as i64;
            let s = g.floats("encoder.bn0.scale", &[1, c, 1, 1], &scale);
            let t = g.floats("encoder.bn0.shift", &[1, c, 1, 1], &shift);
            h = g.node("Mul", &[&h, &s], vec![]);
            h = g.node("Add", &[&h, &t], vec![]);
        }
        h = g.node("LeakyRelu", &[&h], vec![graph::float("alpha", 0.2)]);
        h = g.node("Max", &[&h, &lo], vec![]);
        let pool = match i {
            2 | 10 | 18 => Some([2, 2]),
            6 | 14 => Some([1, 2]),
            _ => None,
        };
        if let Some(k) = pool {
            h = g.node(
                "MaxPool",
                &[&h],
                vec![
                    graph::ints("kernel_shape", k.to_vec()),
                    graph::ints("strides", k.to_vec()),
                ],
            );
        }
    }
    // [1, 96, rows, 1] → [rows, 96]
    let h = reshape(g, &h, &[se::EMBED_DIM as i64, rows as i64]);
    let rows_t = g.node("Transpose", &[&h], vec![graph::ints("perm", vec![1, 0])]);
    let axes0 = i64s(g, "axes", &[0]);
    let masked = g.node("Mul", &[&rows_t, &mask], vec![]);
    let sum = g.node(
        "ReduceSum",
        &[&masked, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let mean = g.node("Div", &[&sum, &kept], vec![]);
    let centered = g.node("Sub", &[&rows_t, &mean], vec![]);
    let sq = g.node("Mul", &[&centered, &centered], vec![]);
    let sq = g.node("Mul", &[&sq, &mask], vec![]);
    let ssum = g.node("ReduceSum", &[&sq, &axes0], vec![graph::int("keepdims", 1)]);
    let var = g.node("Div", &[&ssum, &kept], vec![]);
    let std = g.node("Sqrt", &[&var], vec![]);
    Ok(g.node("Concat", &[&mean, &std], vec![graph::int("axis", 1)]))
}

/// The head's `Gemm` layers (ReLU between) on `features`; the logits.
fn head_layers(g: &mut Graph, head: &Head, features: &str) -> Result<String> {
    let names = Head::layer_names(&head.kind);
    let last = head.layers.len().saturating_sub(1);
    let mut x = features.to_string();
    for (i, ((wt, bias), name)) in head.layers.iter().zip(names).enumerate() {
        let (out_dim, in_dim) = wt.as_tensor().dims2()?;
        let wn = g.floats(
            &format!("head.{name}.weight"),
            &[out_dim as i64, in_dim as i64],
            &values(wt.as_tensor())?,
        );
        let bn = g.floats(
            &format!("head.{name}.bias"),
            &[out_dim as i64],
            &values(bias.as_tensor())?,
        );
        x = g.node("Gemm", &[&x, &wn, &bn], vec![graph::int("transB", 1)]);
        if i < last {
            x = g.node("Relu", &[&x], vec![]);
        }
    }
    Ok(x)
}

/// The log-mel front end, the per-band standardization and the CNN; the logits.
fn cnn_network(
    g: &mut Graph,
    fe: &FrontEndConfig,
    cnn: &AudioCnnConfig,
    w: &Weights,
) -> Result<String> {
    if cnn.frames != fe.window_frames || cnn.n_mels != fe.n_mels {
        return Err(Error::model(
            "the network's input size does not match the front end; re-train the model",
            w.path,
        ));
    }
    let bands = fe.n_mels as i64;
    let mel = log_mel(g, fe, INPUT);
    // [1, bands, T] → [1, T, bands], standardized per band, → [1, 1, T, bands].
    let mel = g.node(
        "Transpose",
        &[&mel],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let mean = g.floats("frontend.mean", &[bands], &w.values("frontend.mean")?);
    let std = g.floats("frontend.std", &[bands], &w.values("frontend.std")?);
    let x = g.node("Sub", &[&mel, &mean], vec![]);
    let x = g.node("Div", &[&x, &std], vec![]);
    let axes = i64s(g, "axes", &[1]);
    let mut x = g.node("Unsqueeze", &[&x, &axes], vec![]);
    let blocks = cnn.channels().len();
    let mut channels = 1;
    let mut mels = fe.n_mels;
    for i in 0..blocks {
        let p = format!("features.{i}");
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
        let weight = w.values(&format!("{p}.conv.weight"))?;
        let bias = w.values(&format!("{p}.conv.bias"))?;
        let bn = |s: &str| w.values(&format!("{p}.bn.{s}"));
        let (gamma, beta, rm, rv) = (
            bn("weight")?,
            bn("bias")?,
            bn("running_mean")?,
            bn("running_var")?,
        );
        if [gamma.len(), beta.len(), rm.len(), rv.len(), bias.len()]
            .iter()
            .any(|&l| l != c_out)
        {
            return Err(Error::model(
                format!("`{p}` batch-norm tensors do not match the convolution"),
                w.path,
            ));
        }
        let per = c_in * 9;
        let scale: Vec<f64> = (0..c_out)
            .map(|o| gamma[o] as f64 / (rv[o] as f64 + CNN_BN_EPS).sqrt())
            .collect();
        let wf: Vec<f32> = weight
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 * scale[i / per]) as f32)
            .collect();
        let bf: Vec<f32> = (0..c_out)
            .map(|o| ((bias[o] as f64 - rm[o] as f64) * scale[o] + beta[o] as f64) as f32)
            .collect();
        let wn = g.floats(
            &format!("{p}.conv.weight"),
            &[c_out as i64, c_in as i64, 3, 3],
            &wf,
        );
        let bn = g.floats(&format!("{p}.conv.bias"), &[c_out as i64], &bf);
        x = g.node(
            "Conv",
            &[&x, &wn, &bn],
            vec![
                graph::ints("kernel_shape", vec![3, 3]),
                graph::ints("pads", vec![1, 1, 1, 1]),
            ],
        );
        x = g.node("Relu", &[&x], vec![]);
        if i + 1 < blocks {
            x = g.node(
                "MaxPool",
                &[&x],
                vec![
                    graph::ints("kernel_shape", vec![2, 2]),
                    graph::ints("strides", vec![2, 2]),
                ],
            );
            mels /= 2;
        }
        channels = c_out;
    }
    if mels != cnn.pooled_mels() {
        return Err(Error::model(
            "the window is too short for the network's poolings; re-train with a longer window_secs",
            w.path,
        ));
    }
    // [1, C, t, M]: mean and max over time → [1, C·M] each (channel-major), mean block first.
    let mean = g.node(
        "ReduceMean",
        &[&x],
        vec![graph::ints("axes", vec![2]), graph::int("keepdims", 0)],
    );
    let max = g.node(
        "ReduceMax",
        &[&x],
        vec![graph::ints("axes", vec![2]), graph::int("keepdims", 0)],
    );
    let flat = (channels * mels) as i64;
    let mean = reshape(g, &mean, &[1, flat]);
    let max = reshape(g, &max, &[1, flat]);
    let pooled = g.node("Concat", &[&mean, &max], vec![graph::int("axis", 1)]);
    let dims = w.dims("classifier.weight")?;
    let [classes, in_dim] = dims[..] else {
        return Err(Error::model("`classifier.weight` is not a matrix", w.path));
    };
    if in_dim as i64 != 2 * flat {
        return Err(Error::model(
            format!(
                "`classifier.weight` takes {in_dim} features, the network gives {}",
                2 * flat
            ),
            w.path,
        ));
    }
    let wn = g.floats(
        "classifier.weight",
        &[classes as i64, in_dim as i64],
        &w.values("classifier.weight")?,
    );
    let bn = g.floats(
        "classifier.bias",
        &[classes as i64],
        &w.values("classifier.bias")?,
    );
    Ok(g.node("Gemm", &[&pooled, &wn, &bn], vec![graph::int("transB", 1)]))
}
