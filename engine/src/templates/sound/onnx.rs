//! The sound classifier as one ONNX graph over one analysis window of raw audio. Input
//! `samples`: float32 `[1, window_samples]`, mono 16 kHz samples in [-1, 1] — for `statistics`,
//! `speech`, `yamnet` and `whisper` `window_frames × hop_length` samples (16,000 for the default 1 s window: a
//! shorter clip zero-padded at the end to it, exactly as Lathe pads it), for `cnn`
//! `(window_frames − 1) × hop_length + win_length` (16,240: the span of the window's log-mel
//! frames). Outputs `probabilities` `[1, labels]` and `label` (string `[1]`). Longer recordings
//! are cut into windows every `window_hop_samples` (metadata) and their probabilities averaged,
//! as Lathe does; that loop stays in app code.
//!
//! In the graph, per algorithm:
//!
//! - the log-mel front end of `data::audio_frontend` (`statistics`, `cnn`; `onnx_frontend`): the 25 ms
//!   Hann-windowed 512-point DFT of every frame as a `Conv` over time (stride `hop_length`, no
//!   centering) with cosine and sine kernels, squared and summed (power), the HTK mel matrix as a
//!   `MatMul`, `Log(mel + log_offset)` — the same floor as the engine;
//! - `statistics` (`onnx_statistics`): per band the mean, standard deviation and standard
//!   deviation of the frame-to-frame change over the window's sounding frames, and the MFCC
//!   standard deviations of `logmel_mfcc_stats` models;
//! - `speech` (`onnx_speech`): Google's speech embedding with its own front end, pooled over the
//!   rows of the window with its trailing digital silence trimmed;
//! - `yamnet` (`onnx_yamnet`): YAMNet's front end, its 0.96 s patches of the trimmed window and
//!   the network on all of them, the mean embedding;
//! - `whisper` (`onnx_whisper`): Whisper's front end on the trimmed window (dynamic in time), the
//!   transformer encoder, the mean and standard deviation of its rows;
//! - `cnn`: the per-band standardization and the CNN (`nets::audio_cnn`, batch norm folded into
//!   each `Conv`, `MaxPool` 2×2, mean and max over time);
//!
//! then the head's `Gemm` layers (the input standardization is folded into the first, as the
//! model folder stores it) and `Softmax`. The CREPE (`transfer`) model gives a clear
//! `Unsupported` error naming what exports.

use crate::data::audio_frontend::FrontEndConfig;
use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::ops::{Weights, head_layers, i64s, reshape, softmax_and_label};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::fsutil::read_json;
use crate::nets::audio_cnn::AudioCnnConfig;
use crate::nets::head::{Head, HeadKind};
use crate::task::Model;
use crate::templates::sound::encoder as stats_encoder;
use crate::templates::sound::model::SoundModel;
use crate::templates::sound::onnx_frontend::log_mel;
use crate::templates::sound::onnx_speech::speech;
use crate::templates::sound::onnx_statistics::statistics;
use crate::templates::sound::onnx_whisper::whisper;
use crate::templates::sound::onnx_yamnet::yamnet;
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the samples input.
pub const INPUT: &str = "samples";

/// Batch-norm epsilon of the CNN (`nets::audio_cnn`).
const CNN_BN_EPS: f64 = 1e-5;

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
        ("transfer", Some("whisper_tiny_en")) => "whisper",
        ("transfer", Some(stats_encoder::YAMNET_ID)) => "yamnet",
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
            let (features, what) = match kind {
                "statistics" => (
                    statistics(&mut g, &frontend, window, mfcc)?,
                    if mfcc {
                        "log-mel and MFCC statistics + head"
                    } else {
                        "log-mel statistics + head"
                    },
                ),
                "yamnet" => (yamnet(&mut g, &w, window)?, "YAMNet embedding + head"),
                "whisper" => (
                    whisper(&mut g, &w, window)?,
                    "Whisper tiny.en encoder + head",
                ),
                _ => (
                    speech(&mut g, &w, window)?,
                    "Google speech embedding + head",
                ),
            };
            (head_layers(&mut g, &head, &features)?, what.to_string())
        }
    };
    let classes = labels.len() as i64;
    softmax_and_label(&mut g, &logits, &labels);
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
        "ONNX export of the {what} sound model is not available yet; the statistics, speech, yamnet, \
         whisper and cnn sound models export to ONNX (train with --param algorithm=statistics, speech, \
         yamnet, whisper or cnn), and this one exports to safetensors (--format safetensors) or Core ML (--format coreml, transfer only)"
    ))
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
