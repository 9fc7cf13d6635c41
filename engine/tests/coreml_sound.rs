//! Core ML export of the sound classifier: a CNN trained on generated tones exports as one
//! `NeuralNetworkClassifier` over raw 16 kHz samples (log-mel front end as layers), and, when
//! `LATHE_COREML_PYTHON` is set, the independent numpy evaluator of `tests/coreml/` run on the
//! samples the engine decoded agrees with `lathe predict --json` to 1e-4 on 24 clips of exactly
//! one window; broken exports (one convolution weight, the log offset) are rejected; the fp16
//! export's difference is reported. The same for a transfer model (CREPE-tiny + head) and for
//! the log-mel statistics model (logistic and MLP heads; clips shorter than the window and
//! digital silence included).
//!
//! `sound_export_on_real_clips` (ignored; needs data) measures a trained model on real
//! recordings: `LATHE_SOUND_RUN=RUN_DIR LATHE_SOUND_CLIPS=DIR_OF_CLASS_FOLDERS cargo test -p
//! lathe-engine --test coreml_sound -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::*;
use coreml_proto::proto::{Model, model, neural_network_layer::Layer};
use lathe_engine::data::audio_decode::decode_to_vec;
use lathe_engine::data::audio_frontend::FrontEndConfig;
use lathe_engine::export::coreml::spec;
use lathe_engine::templates::sound::coreml as sound;
use std::path::{Path, PathBuf};

/// Writes mono 16 kHz samples as a 32-bit float WAV (decoded back exactly).
fn wav(path: &Path, samples: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in samples {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// Deterministic noise in [-1, 1].
fn noise(i: usize, seed: usize) -> f32 {
    let mut x = (i as u64 ^ (seed as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 20_000) as f32 / 10_000.0 - 1.0
}

/// `n` samples of class `class` (0 hum, 1 whistle, 2 hiss) varied by `k`, with a little of
/// another class mixed in when `mix` (so test probabilities are not all ~1).
fn clip(class: usize, k: usize, n: usize, mix: f32) -> Vec<f32> {
    let two_pi = 2.0 * std::f32::consts::PI;
    let amp = 0.15 + (k % 4) as f32 * 0.1;
    let tone = |c: usize, i: usize| -> f32 {
        let t = i as f32 / 16_000.0;
        match c {
            0 => {
                let f0 = 140.0 + 17.0 * k as f32;
                (two_pi * f0 * t).sin() + 0.5 * (two_pi * 2.0 * f0 * t).sin()
            }
            1 => (two_pi * (1_900.0 + 55.0 * k as f32) * t).sin(),
            _ => noise(i, k + 100 * c),
        }
    };
    (0..n)
        .map(|i| (amp * (tone(class, i) + mix * tone((class + 1 + k % 2) % 3, i))).clamp(-1.0, 1.0))
        .collect()
}

const CLASSES: [&str; 3] = ["hum", "whistle", "hiss"];

/// Trains a small model (`params`: extra TOML lines of `[params]`, with the window) from a
/// project that also asks for Core ML (`formats = ["coreml"]`); returns the run folder.
fn train(tmp: &Path, cache: &Path, params: &str) -> PathBuf {
    let data = tmp.join("train");
    for (c, name) in CLASSES.iter().enumerate() {
        for k in 0..8 {
            let n = 9_600 + 1_600 * (k % 3);
            wav(
                &data.join(name).join(format!("{k:02}.wav")),
                &clip(c, k, n, 0.0),
            );
        }
    }
    let project = tmp.join("project.toml");
    std::fs::write(
        &project,
        format!(
            "format_version = 1\nname = \"tones\"\ntemplate = \"sound-classifier\"\n\
             [data]\ntrain = \"train\"\n\
             [params]\nepochs = 4\ncnn_width = 4\nbatch_size = 8\n{params}\n\
             [export]\nformats = [\"safetensors\", \"coreml\"]\n"
        ),
    )
    .unwrap();
    let run_dir = tmp.join("run");
    let out = run(lathe(cache)
        .arg("train")
        .arg(&project)
        .args(["--json", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    // formats = ["coreml"]: training wrote the Core ML model too.
    let events = json_lines(&stdout(&out));
    let exported = events
        .iter()
        .find(|e| e["event"] == "exported" && e["format"] == "coreml")
        .unwrap_or_else(|| panic!("no Core ML export event in {events:?}"));
    assert_eq!(
        exported["path"],
        run_dir.join("exports/model.mlmodel").to_str().unwrap()
    );
    run_dir
}

/// `lathe predict` on `clips`, each line with the samples the engine decodes from the clip
/// added (what the checker's `--sound` feeds the Core ML model).
fn predictions_with_samples(cache: &Path, run_dir: &Path, clips: &[PathBuf], file: &Path) {
    let raw = file.with_extension("raw.jsonl");
    predictions(cache, run_dir, clips, &[], &raw);
    let mut out = String::new();
    for mut p in json_lines(&std::fs::read_to_string(&raw).unwrap()) {
        let path = PathBuf::from(p["input"].as_str().unwrap());
        let (samples, _) = decode_to_vec(&path, usize::MAX).unwrap();
        p["samples"] = serde_json::json!(samples);
        out.push_str(&serde_json::to_string(&p).unwrap());
        out.push('\n');
    }
    std::fs::write(file, out).unwrap();
}

fn frontend_of(run_dir: &Path) -> FrontEndConfig {
    let fe: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("model/feature_extractor_config.json")).unwrap(),
    )
    .unwrap();
    serde_json::from_value(fe["lathe_frontend"].clone()).unwrap()
}

fn window_of(run_dir: &Path) -> usize {
    let cfg = frontend_of(run_dir);
    if serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(run_dir.join("model/config.json")).unwrap(),
    )
    .unwrap()["algorithm"]
        == "transfer"
    {
        return cfg.window_frames * cfg.hop_length;
    }
    sound::window_samples(&cfg)
}

/// Whether every analysis frame of `x` is at or above the silence threshold (frame RMS in
/// dBFS, as the engine measures it), so that a model trained with `trim_silence` sees the clip
/// untrimmed.
fn all_frames_loud(x: &[f32], cfg: &FrontEndConfig) -> bool {
    let (win, hop) = (cfg.win_length, cfg.hop_length);
    (0..)
        .map(|i| i * hop)
        .take_while(|s| s + win <= x.len())
        .all(|s| {
            let e: f32 = x[s..s + win].iter().map(|v| v * v).sum();
            10.0 * (e / win as f32 + 1e-12).log10() >= cfg.silence_threshold_db
        })
}

fn layers_of(m: &mut Model) -> &mut Vec<coreml_proto::proto::NeuralNetworkLayer> {
    match &mut m.r#type {
        Some(model::Type::NeuralNetworkClassifier(c)) => &mut c.layers,
        other => panic!("not a NeuralNetworkClassifier: {other:?}"),
    }
}

#[test]
fn sound_export_agrees_with_the_engine_on_one_window_clips() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = train(tmp.path(), &cache, "algorithm = \"cnn\"\nwindow_secs = 0.5");
    let n = window_of(&run_dir);
    // 0.5 s = 50 frames of 400 samples every 160.
    assert_eq!(n, 49 * 160 + 400);

    let model_path = tmp.path().join("sound.mlmodel");
    let info = export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 1);
    let mut m = spec::read(&model_path).unwrap();
    let desc = m.description.clone().unwrap();
    assert_eq!(desc.input.len(), 1);
    assert_eq!(desc.input[0].name, "audioSamples");
    let Some(coreml_proto::proto::feature_type::Type::MultiArrayType(a)) =
        &desc.input[0].r#type.as_ref().unwrap().r#type
    else {
        panic!("input is not a multi-array")
    };
    assert_eq!(a.shape, [n as i64]);
    assert_eq!(desc.predicted_feature_name, "classLabel");
    assert_eq!(desc.predicted_probabilities_name, "classLabelProbability");
    let user = &desc.metadata.as_ref().unwrap().user_defined;
    assert_eq!(user["classes"], r#"["hiss","hum","whistle"]"#);
    assert_eq!(user["window_samples"], n.to_string());
    assert_eq!(user["window_hop_samples"], (25 * 160).to_string());
    assert_eq!(user["sample_rate"], "16000");
    // The front end is standard layers: the DFT as a convolution over time, power, mel, log.
    let kinds: Vec<&str> = layers_of(&mut m)
        .iter()
        .map(|l| match &l.layer {
            Some(Layer::Convolution(_)) => "conv",
            Some(Layer::Unary(_)) => "unary",
            Some(Layer::Reshape(_)) => "reshape",
            Some(Layer::Permute(_)) => "permute",
            Some(Layer::Bias(_)) => "bias",
            Some(Layer::Scale(_)) => "scale",
            _ => "other",
        })
        .collect();
    assert_eq!(
        &kinds[..8],
        [
            "reshape", "conv", "unary", "conv", "unary", "bias", "scale", "permute"
        ]
    );
    let m16_path = tmp.path().join("sound16.mlmodel");
    let info16 = export(&cache, &run_dir, &m16_path, "fp16");
    assert_eq!(info16["specification_version"], 2);
    let (b32, b16) = (
        std::fs::metadata(&model_path).unwrap().len(),
        std::fs::metadata(&m16_path).unwrap().len(),
    );
    eprintln!("sizes: fp32 {b32} bytes, fp16 {b16} bytes");
    assert!(b16 < b32 * 6 / 10, "{b16} vs {b32}");

    let Some(python) = coreml_python() else {
        return;
    };
    // 24 clips of exactly one window: each is one window for the engine too.
    let clips: Vec<PathBuf> = (0..24)
        .map(|i| {
            let path = tmp.path().join("clips").join(format!("{i:02}.wav"));
            wav(&path, &clip(i % 3, 20 + i, n, 0.15 + 0.05 * (i % 5) as f32));
            path
        })
        .collect();
    let preds = tmp.path().join("preds.jsonl");
    predictions_with_samples(&cache, &run_dir, &clips, &preds);
    let d = assert_agrees(&python, &model_path, &preds, &["--sound"], "sound fp32");
    eprintln!("sound fp32: max |Δp| = {d:e}");
    let (code, report) = check(&python, &m16_path, &preds, &["--sound", "--tolerance", "1"]);
    assert_eq!(code, 0, "{report}");
    eprintln!(
        "sound fp16: max |Δp| = {}, top label agrees on {} of 24",
        report["max_abs_diff"], report["top_label_agreement"]
    );

    // Broken: one weight of the first CNN convolution, and the log offset of the front end.
    let broken = tmp.path().join("broken.mlmodel");
    mutate(&model_path, &broken, |m| {
        for l in layers_of(m).iter_mut() {
            if let Some(Layer::Convolution(c)) = &mut l.layer
                && l.name == "features.0.conv"
            {
                c.weights.as_mut().unwrap().float_value[4] += 0.5;
            }
        }
    });
    assert_rejected(&python, &broken, &preds, &["--sound"], "one conv weight");
    mutate(&model_path, &broken, |m| {
        for l in layers_of(m).iter_mut() {
            if let Some(Layer::Unary(u)) = &mut l.layer
                && l.name == "logmel"
            {
                u.shift *= 10.0;
            }
        }
    });
    assert_rejected(&python, &broken, &preds, &["--sound"], "log offset");
}

/// A transfer model (CREPE-tiny embeddings + MLP head) exports too: frames cut by slicing,
/// normalized per frame, CREPE's layers along rows, mean / std over frames; the evaluator agrees
/// with `lathe predict` to 1e-4 and rejects a broken per-frame normalization.
#[test]
fn transfer_sound_export_agrees_with_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = train(
        tmp.path(),
        &cache,
        "algorithm = \"transfer\"\ntransfer_epochs = 30\nwindow_secs = 0.75",
    );
    // The transfer model's window is window_frames × hop samples (no analysis-frame overhang):
    // 12,000 samples = 18 CREPE frames, cut from 19 rows of 640 once zero-padded to 12,160 (a
    // 0.5 s window is cut down to its rows instead; 1 s fits exactly).
    let n = 12_000;
    assert_eq!(window_of(&run_dir), n);
    let model_path = tmp.path().join("transfer.mlmodel");
    let info = export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 1);
    let m = spec::read(&model_path).unwrap();
    let desc = m.description.clone().unwrap();
    let user = &desc.metadata.as_ref().unwrap().user_defined;
    assert_eq!(user["algorithm"], "transfer");
    assert_eq!(user["window_samples"], n.to_string());
    let Some(python) = coreml_python() else {
        return;
    };
    let clips: Vec<PathBuf> = (0..21)
        .map(|i| {
            let path = tmp.path().join("clips").join(format!("{i:02}.wav"));
            wav(&path, &clip(i % 3, 40 + i, n, 0.2 + 0.05 * (i % 4) as f32));
            path
        })
        .collect();
    let preds = tmp.path().join("preds.jsonl");
    predictions_with_samples(&cache, &run_dir, &clips, &preds);
    let d = assert_agrees(&python, &model_path, &preds, &["--sound"], "transfer fp32");
    eprintln!("transfer fp32: max |Δp| = {d:e}");
    let m16 = tmp.path().join("transfer16.mlmodel");
    export(&cache, &run_dir, &m16, "fp16");
    let (code, report) = check(&python, &m16, &preds, &["--sound", "--tolerance", "1"]);
    assert_eq!(code, 0, "{report}");
    eprintln!(
        "transfer fp16: max |Δp| = {}, top label agrees on {} of 21",
        report["max_abs_diff"], report["top_label_agreement"]
    );
    let broken = tmp.path().join("broken.mlmodel");
    mutate(&model_path, &broken, |m| {
        for l in layers_of(m).iter_mut() {
            if let Some(Layer::Unary(u)) = &mut l.layer
                && l.name == "frames.inv_std"
            {
                u.epsilon = 1e-2;
            }
        }
    });
    assert_rejected(
        &python,
        &broken,
        &preds,
        &["--sound"],
        "per-frame normalization",
    );
}

/// Real recordings: the first window of up to 4 files of every class of `LATHE_SOUND_CLIPS`
/// (zero-padded to one window; for a model that trims silence, only windows without quiet
/// frames), predicted by the run in `LATHE_SOUND_RUN` and by its fp32 and fp16 Core ML exports.
#[test]
#[ignore = "needs a trained run and real clips: LATHE_SOUND_RUN, LATHE_SOUND_CLIPS"]
fn sound_export_on_real_clips() {
    let (Some(run_dir), Some(data), Some(python)) = (
        std::env::var_os("LATHE_SOUND_RUN").map(PathBuf::from),
        std::env::var_os("LATHE_SOUND_CLIPS").map(PathBuf::from),
        coreml_python(),
    ) else {
        panic!("set LATHE_SOUND_RUN, LATHE_SOUND_CLIPS and LATHE_COREML_PYTHON");
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let n = window_of(&run_dir);
    let cfg = frontend_of(&run_dir);
    // Only the log-mel path trims (the transfer model windows raw samples).
    let trims = cfg.trim_silence && n == sound::window_samples(&cfg);
    let mut clips = Vec::new();
    let mut quiet = 0;
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    for class in classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&class)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut taken = 0;
        for f in &files {
            if taken == 4 {
                break;
            }
            let Ok((mut x, _)) = decode_to_vec(f, n) else {
                continue;
            };
            x.resize(n, 0.0);
            // A model trained with trim_silence drops quiet frames at a clip's ends (the app's
            // job, before windowing): compare on clips it leaves whole.
            if trims && !all_frames_loud(&x, &cfg) {
                quiet += 1;
                continue;
            }
            taken += 1;
            let name = format!(
                "{}-{}.wav",
                class.file_name().unwrap().to_string_lossy(),
                f.file_stem().unwrap().to_string_lossy()
            );
            let path = tmp.path().join("clips").join(name);
            wav(&path, &x);
            clips.push(path);
        }
    }
    eprintln!(
        "{} clips; {quiet} skipped (quiet frames, trim_silence)",
        clips.len()
    );
    let preds = tmp.path().join("preds.jsonl");
    predictions_with_samples(&cache, &run_dir, &clips, &preds);
    for precision in ["fp32", "fp16"] {
        let path = tmp.path().join(format!("real-{precision}.mlmodel"));
        export(&cache, &run_dir, &path, precision);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let (code, report) = check(&python, &path, &preds, &["--sound", "--tolerance", "1"]);
        assert_eq!(code, 0, "{report}");
        eprintln!(
            "real {precision}: {bytes} bytes, {} clips, max |Δp| = {}, top label agrees on {}",
            report["inputs"], report["max_abs_diff"], report["top_label_agreement"]
        );
        if precision == "fp32" {
            assert!(report["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{report}");
        }
    }
}

/// `predictions_with_samples`, each clip's samples zero-padded at the end to `n` (what the
/// model's description tells an app to do with a shorter clip, and what the engine does).
fn predictions_padded(cache: &Path, run_dir: &Path, clips: &[PathBuf], n: usize, file: &Path) {
    predictions_with_samples(cache, run_dir, clips, file);
    let mut out = String::new();
    for mut p in json_lines(&std::fs::read_to_string(file).unwrap()) {
        let mut x: Vec<f32> = serde_json::from_value(p["samples"].clone()).unwrap();
        assert!(x.len() <= n, "{} samples for a window of {n}", x.len());
        x.resize(n, 0.0);
        p["samples"] = serde_json::json!(x);
        out.push_str(&serde_json::to_string(&p).unwrap());
        out.push('\n');
    }
    std::fs::write(file, out).unwrap();
}

/// The log-mel statistics model (`statistics`, logistic and MLP heads) exports as one network
/// over raw samples with the statistics as layers, and the evaluator agrees with `lathe predict`
/// to 1e-4 on 22 clips: full windows, clips shorter than the window (padding left out), digital
/// silence at the start, in the middle (deltas across the gap) and everywhere (all frames kept).
/// Breaking the silence mask or the carried rows is rejected.
#[test]
fn statistics_sound_export_agrees_with_the_engine() {
    for head in ["logistic", "mlp"] {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let run_dir = train(
            tmp.path(),
            &cache,
            &format!("algorithm = \"statistics\"\ntransfer_head = \"{head}\"\nwindow_secs = 1.0"),
        );
        let n = window_of(&run_dir);
        assert_eq!(n, 16_000);
        let model_path = tmp.path().join("statistics.mlmodel");
        let info = export(&cache, &run_dir, &model_path, "fp32");
        assert_eq!(info["specification_version"], 1);
        let m = spec::read(&model_path).unwrap();
        let desc = m.description.clone().unwrap();
        assert_eq!(desc.input[0].name, "audioSamples");
        assert_eq!(desc.predicted_feature_name, "classLabel");
        let user = &desc.metadata.as_ref().unwrap().user_defined;
        assert_eq!(user["window_samples"], n.to_string());
        let m16_path = tmp.path().join("statistics16.mlmodel");
        export(&cache, &run_dir, &m16_path, "fp16");
        let (b32, b16) = (
            std::fs::metadata(&model_path).unwrap().len(),
            std::fs::metadata(&m16_path).unwrap().len(),
        );
        eprintln!("statistics ({head}) sizes: fp32 {b32} bytes, fp16 {b16} bytes");
        let Some(python) = coreml_python() else {
            return;
        };
        let clip_dir = tmp.path().join("clips");
        let mut clips = Vec::new();
        let mut put = |name: String, x: Vec<f32>| {
            let path = clip_dir.join(format!("{name}.wav"));
            wav(&path, &x);
            clips.push(path);
        };
        for i in 0..16 {
            put(
                format!("full{i:02}"),
                clip(i % 3, 20 + i, n, 0.15 + 0.05 * (i % 5) as f32),
            );
        }
        // Shorter than the window: the engine pads with zeros and leaves those frames out.
        for (i, len) in [4_321, 8_000, 12_007].into_iter().enumerate() {
            put(format!("short{i}"), clip(i % 3, 50 + i, len, 0.2));
        }
        // Digital silence in the middle (the deltas span the gap) and at the start.
        let mut gap = clip(0, 60, n, 0.3);
        gap[5_000..8_300].fill(0.0);
        put("gap".into(), gap);
        let mut lead = clip(1, 61, n, 0.25);
        lead[..3_700].fill(0.0);
        lead[14_000..].fill(0.0);
        put("lead".into(), lead);
        // All silent: every frame is kept.
        put("silent".into(), vec![0.0; n]);
        let preds = tmp.path().join("preds.jsonl");
        predictions_padded(&cache, &run_dir, &clips, n, &preds);
        let what = format!("statistics ({head}) fp32");
        let d = assert_agrees(&python, &model_path, &preds, &["--sound"], &what);
        eprintln!("{what}: {} clips, max |Δp| = {d:e}", clips.len());
        let (code, report) = check(&python, &m16_path, &preds, &["--sound", "--tolerance", "1"]);
        assert_eq!(code, 0, "{report}");
        eprintln!(
            "statistics ({head}) fp16: max |Δp| = {}, top label agrees on {} of {}",
            report["max_abs_diff"],
            report["top_label_agreement"],
            clips.len()
        );
        if head != "logistic" {
            continue;
        }
        // Broken: silent frames counted as sounding, and the rows carried from one frame early.
        let broken = tmp.path().join("broken.mlmodel");
        let mut m = spec::read(&model_path).unwrap();
        for l in layers_of(&mut m).iter_mut() {
            if let Some(Layer::Activation(a)) = &mut l.layer
                && l.name == "mask.ramp"
                && let Some(coreml_proto::proto::activation_params::NonlinearityType::Linear(p)) =
                    &mut a.nonlinearity_type
            {
                p.beta = 1.0;
            }
        }
        spec::write(&broken, &m).unwrap();
        assert_rejected(&python, &broken, &preds, &["--sound"], "silence mask");
        mutate(&model_path, &broken, |m| {
            for l in layers_of(m).iter_mut() {
                if let Some(Layer::Convolution(c)) = &mut l.layer
                    && l.name == "carry.diff"
                {
                    for v in &mut c.bias.as_mut().unwrap().float_value {
                        *v -= 1.0;
                    }
                }
            }
        });
        assert_rejected(&python, &broken, &preds, &["--sound"], "carried rows");
    }
}
