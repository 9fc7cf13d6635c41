//! ONNX export of the sound classifier, checked in ONNX Runtime: models trained by the CLI on
//! generated clips (`statistics`, `speech`, `cnn`) are exported with `lathe export --format
//! onnx`, validated by `onnx.checker` (full check) and run by ONNX Runtime through
//! `tests/onnx/check.py --rows` (one window of samples per run) on the samples the engine decodes
//! from each clip, zero-padded to one window as the engine pads it; the probabilities must agree
//! with `lathe predict --json` with the same top label on every clip: |Δp| ≤ 1e-5 for the CNN,
//! 3e-5 for `statistics` and 5e-5 for `speech` — the graph's front end sums the DFT directly in
//! float32 where the engine runs realfft's FFT, and the log of quiet mel bands amplifies those
//! last-bit differences (measured on x86-64, ONNX Runtime 1.22: cnn 8.2e-6, statistics 4.4e-6,
//! the earlier statistics layout 1.1e-5, speech 2.6e-5). Clips shorter than a window exercise the digital-silence rules
//! (the statistics leave padded frames out; the speech embedding trims trailing zeros). The
//! statistics model is the current layout (`logmel_mfcc_stats`: per-band statistics then the
//! MFCC standard deviations); a model of the earlier layout (`logmel_stats`, made from it by
//! keeping the head's per-band columns) still predicts and exports with its own graph; Core ML
//! export of either is refused with a clear message. YAMNet and Whisper models (weights from
//! `LATHE_YAMNET` / `LATHE_WHISPER_TINY`, installed in the test's weights folder) are checked
//! the same way, |Δp| ≤ 1e-4, on clips whose trimmed length varies (YAMNet: 1 to 3 patches in a
//! 2 s window; Whisper: a different number of frames each). CREPE (`transfer`) models give a
//! clear error naming what exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sound_clips;

use common::*;
use lathe_engine::data::audio_decode::decode_to_vec;
use sound_clips::{CLASSES, clip, steady_or_step, wav};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ONNX checker's Python (`scripts/onnx-env.sh` prints it), as [`fetched`].
fn onnx_python() -> Option<PathBuf> {
    fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it")
}

/// Trains a small sound model with the extra `[params]` lines `params`; returns the run folder.
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
             [params]\nepochs = 4\ncnn_width = 4\nbatch_size = 8\n{params}\n"
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
    run_dir
}

fn export_onnx(cache: &Path, run_dir: &Path, out: &Path) -> std::process::Output {
    run(lathe(cache)
        .args(["export", "--format", "onnx", "--json", "--out"])
        .arg(out)
        .arg(run_dir))
}

/// The checker on `model`; with `windows` (rows of one window each), run once per row.
fn check(python: &Path, model: &Path, windows: Option<(&[Vec<f32>], &Path)>) -> serde_json::Value {
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/onnx/check.py")).arg(model);
    if let Some((rows, dir)) = windows {
        let width = rows[0].len();
        let raw = dir.join("samples.f32");
        let bytes: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&raw, bytes).unwrap();
        let spec = dir.join("samples.spec.json");
        let json = serde_json::json!({ "samples": {"dtype": "float32", "shape": [rows.len(), width], "file": raw} });
        std::fs::write(&spec, json.to_string()).unwrap();
        cmd.arg("--inputs").arg(&spec).arg("--rows");
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "check.py failed on {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check.py prints JSON")
}

/// Trains with `params`, exports, and compares ONNX Runtime with `lathe predict` on 24 clips
/// of the given lengths (each at most one window); returns the largest |Δp|.
fn agrees(name: &str, params: &str, lengths: &dyn Fn(usize) -> usize, tolerance: f64) -> f64 {
    agrees_edited(name, params, lengths, tolerance, &|_| {})
}

/// [`agrees`] with `weights` (a file and its name) installed in the weights folder first.
fn agrees_installed(
    name: &str,
    params: &str,
    weights: (&Path, &str),
    lengths: &dyn Fn(usize) -> usize,
    tolerance: f64,
) -> f64 {
    agrees_with(name, params, Some(weights), lengths, tolerance, &|_| {})
}

/// [`agrees`] with the trained run folder passed through `edit` before export and prediction.
fn agrees_edited(
    name: &str,
    params: &str,
    lengths: &dyn Fn(usize) -> usize,
    tolerance: f64,
    edit: &dyn Fn(&Path),
) -> f64 {
    agrees_with(name, params, None, lengths, tolerance, edit)
}

/// [`agrees_edited`], with an optional weights file installed in the weights folder first.
fn agrees_with(
    name: &str,
    params: &str,
    weights: Option<(&Path, &str)>,
    lengths: &dyn Fn(usize) -> usize,
    tolerance: f64,
    edit: &dyn Fn(&Path),
) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    if let Some((file, installed)) = weights {
        std::fs::create_dir_all(cache.join("weights")).unwrap();
        std::fs::copy(file, cache.join("weights").join(installed)).unwrap();
    }
    let run_dir = train(tmp.path(), &cache, params);
    edit(&run_dir);
    let model = tmp.path().join("sound.onnx");
    let o = export_onnx(&cache, &run_dir, &model);
    assert!(o.status.success(), "{name}: export failed: {}", stderr(&o));
    let exported = json_lines(&stdout(&o)).remove(0);
    eprintln!("{name}: exported {exported}");
    let Some(python) = onnx_python() else {
        return 0.0;
    };
    let described = check(&python, &model, None);
    let meta = &described["metadata"];
    let window: usize = meta["window_samples"].as_str().unwrap().parse().unwrap();
    assert_eq!(described["inputs"][0]["name"], "samples");
    assert_eq!(
        described["inputs"][0]["shape"],
        serde_json::json!(["1", window.to_string()])
    );
    assert_eq!(meta["sample_rate"], "16000");
    assert_eq!(meta["lathe_version"], lathe_engine::VERSION);
    assert!(described["opsets"]["ai.onnx"].as_i64().unwrap() >= 17);
    let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels, ["hiss", "hum", "whistle"]);

    let clips: Vec<PathBuf> = (0..24)
        .map(|i| {
            let path = tmp.path().join("clips").join(format!("{i:02}.wav"));
            let n = lengths(i).min(window);
            wav(&path, &clip(i % 3, 20 + i, n, 0.15 + 0.05 * (i % 5) as f32));
            path
        })
        .collect();
    let windows: Vec<Vec<f32>> = clips
        .iter()
        .map(|c| {
            let (mut x, _) = decode_to_vec(c, usize::MAX).unwrap();
            assert!(x.len() <= window);
            x.resize(window, 0.0);
            x
        })
        .collect();
    let onnx = check(&python, &model, Some((&windows, tmp.path())));
    let o = run(lathe(&cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(&run_dir)
        .args(&clips));
    assert!(o.status.success(), "{name}: predict failed: {}", stderr(&o));
    let engine = json_lines(&stdout(&o));
    let rows = onnx["rows"].as_array().unwrap();
    assert_eq!(rows.len(), engine.len());
    let mut worst = 0f64;
    let mut spread = 0f64;
    for (i, (r, e)) in rows.iter().zip(&engine).enumerate() {
        let p: Vec<f64> = r["probabilities"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), labels.len());
        let mut best = 0;
        for (l, label) in labels.iter().enumerate() {
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p[l] - q).abs());
            spread = spread.max(1.0 - q);
            if p[l] > p[best] {
                best = l;
            }
        }
        assert_eq!(
            e["label"],
            labels[best].as_str(),
            "{name}: clip {i}: top label"
        );
        assert_eq!(
            r["label"][0],
            labels[best].as_str(),
            "{name}: clip {i}: label output"
        );
    }
    // Not a degenerate comparison: some clip is not certain.
    assert!(spread > 1e-3, "{name}: every probability is ~1 ({spread})");
    eprintln!("{name}: max |Δp| = {worst:e} over {} clips", rows.len());
    assert!(
        worst <= tolerance,
        "{name}: |Δp| = {worst:e} > {tolerance:e}"
    );
    worst
}

/// The model folder's `config.json` and the width of its head's first layer.
fn encoder_and_width(run_dir: &Path) -> (serde_json::Value, usize) {
    let model = run_dir.join("model");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    let tensors =
        candle_core::safetensors::load(model.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let (_, width) = tensors["classifier.1.weight"].dims2().unwrap();
    (config["encoder"].clone(), width)
}

/// Core ML export of a statistics model works for either layout (`coreml_sound.rs` checks the
/// current one numerically).
fn coreml_exports(run_dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sound.mlmodel");
    let o = run(lathe(&tmp.path().join("cache"))
        .args(["export", "--format", "coreml", "--out"])
        .arg(&out)
        .arg(run_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}

#[test]
fn statistics_sound_model_agrees_with_onnx_runtime() {
    // Lengths from 0.3 s to a full window: padded frames are left out in both. The model is
    // the current layout: 64 bands × (mean, std, delta std), then 20 MFCC stds and 20 MFCC
    // delta stds, all computed in the graph.
    agrees_edited(
        "statistics",
        "algorithm = \"statistics\"\ntransfer_head = \"logistic\"",
        &|i| 4_800 + (i * 1_733) % 11_400,
        3e-5,
        &|run_dir| {
            let (encoder, width) = encoder_and_width(run_dir);
            assert_eq!(encoder, "logmel_mfcc_stats");
            assert_eq!(width, 3 * 64 + 2 * 20);
            coreml_exports(run_dir);
        },
    );
}

/// A model saved with the earlier statistics layout (`logmel_stats`: the 192 per-band
/// statistics alone) predicts and exports as before: made here from a fresh one by naming the
/// old encoder and keeping only the head's per-band columns.
#[test]
fn legacy_statistics_sound_model_agrees_with_onnx_runtime() {
    agrees_edited(
        "statistics (logmel_stats)",
        "algorithm = \"statistics\"\ntransfer_head = \"logistic\"",
        &|i| 4_800 + (i * 1_733) % 11_400,
        3e-5,
        &|run_dir| {
            let model = run_dir.join("model");
            let config_path = model.join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
            config["encoder"] = "logmel_stats".into();
            config["feature_dim"] = (3 * 64).into();
            std::fs::write(&config_path, config.to_string()).unwrap();
            let weights = model.join("model.safetensors");
            let mut tensors =
                candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
            let w = tensors["classifier.1.weight"].narrow(1, 0, 3 * 64).unwrap();
            tensors.insert("classifier.1.weight".into(), w);
            candle_core::safetensors::save(&tensors, &weights).unwrap();
            assert_eq!(
                encoder_and_width(run_dir),
                (serde_json::json!("logmel_stats"), 3 * 64)
            );
            coreml_exports(run_dir);
        },
    );
}

#[test]
fn speech_sound_model_agrees_with_onnx_runtime() {
    // Lengths below 0.775 s (padded to it), between it and the window, and a full window.
    agrees(
        "speech",
        "algorithm = \"speech\"\ntransfer_head = \"logistic\"",
        &|i| 6_000 + (i * 2_411) % 10_001,
        5e-5,
    );
}

#[test]
fn yamnet_sound_model_agrees_with_onnx_runtime() {
    let Some(weights) = yamnet() else { return };
    // A 2 s window (1 to 3 patches of 0.96 s every 0.48 s, by where the clip's sound ends):
    // clips from 0.3 s (padded to one patch) to a whole window.
    agrees_installed(
        "yamnet",
        "algorithm = \"yamnet\"\ntransfer_head = \"logistic\"\nwindow_secs = 2.0",
        (&weights, "yamnet.safetensors"),
        &|i| 4_800 + (i * 2_609) % 27_300,
        1e-4,
    );
}

#[test]
fn whisper_sound_model_agrees_with_onnx_runtime() {
    let Some(weights) = whisper_tiny() else {
        return;
    };
    // Lengths from 0.3 s to a whole window: the graph trims the padding as the engine does, so
    // the encoder runs on a different number of frames for each.
    agrees_installed(
        "whisper",
        "algorithm = \"whisper\"\ntransfer_head = \"logistic\"",
        (&weights, "whisper_tiny_en.safetensors"),
        &|i| 4_800 + (i * 1_733) % 11_400,
        1e-4,
    );
}

#[test]
fn cnn_sound_model_agrees_with_onnx_runtime() {
    // The CNN's window is its frames' span; clips of exactly one window.
    agrees(
        "cnn",
        "algorithm = \"cnn\"\nwindow_secs = 0.5",
        &|_| usize::MAX,
        1e-5,
    );
}

/// A CREPE model does not export to ONNX yet: one clear error naming what does.
#[test]
fn crepe_sound_model_names_what_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = train(
        tmp.path(),
        &cache,
        "algorithm = \"transfer\"\ntransfer_epochs = 5",
    );
    let o = export_onnx(&cache, &run_dir, &tmp.path().join("crepe.onnx"));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("CREPE") && err.contains("yamnet, whisper and cnn"),
        "{err}"
    );
    assert!(!tmp.path().join("crepe.onnx").exists());
}

/// `auto` chooses the statistics' window by cross-validation: on clips whose class is a change
/// of loudness half-way through, it keeps a whole-clip variant (one window spanning each clip),
/// the model folder records that window, and `lathe predict` and the ONNX graph (one window per
/// run of `window_samples`, the metadata says) apply the same: clips up to a window zero-padded
/// to it, longer ones cut into windows every `window_hop_samples` (the engine's tail rule) with
/// the ONNX probabilities averaged — the same top label and |Δp| ≤ 3e-5 on every clip.
#[test]
fn auto_whole_clip_statistics_window_is_what_predict_and_onnx_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let classes = ["steady", "step"];
    let data = tmp.path().join("train");
    for (c, name) in classes.iter().enumerate() {
        for k in 0..12 {
            let secs = 2.0 + 0.1 * (k % 9) as f64;
            wav(
                &data.join(name).join(format!("{k:02}.wav")),
                &steady_or_step(c, k, secs),
            );
        }
    }
    let project = tmp.path().join("project.toml");
    std::fs::write(
        &project,
        "format_version = 1\nname = \"steps\"\ntemplate = \"sound-classifier\"\n\
         [data]\ntrain = \"train\"\n\
         [params]\nalgorithm = \"auto\"\ntransfer_head = \"logistic\"\ntransfer_epochs = 100\n",
    )
    .unwrap();
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&cache)
        .arg("train")
        .arg(&project)
        .args(["--json", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let board = report["training"]["leaderboard"].as_array().unwrap();
    let chosen = board.iter().find(|c| c["chosen"] == true).unwrap();
    let summary: Vec<String> = board
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["algorithm"], c["cv_accuracy"], c["cv_log_loss"]
            )
        })
        .collect();
    eprintln!("leaderboard (algorithm, CV accuracy, CV log loss): {summary:?}");
    assert!(
        chosen["algorithm"]
            .as_str()
            .unwrap()
            .starts_with("statistics-clip"),
        "{summary:?}"
    );
    // The window: 95 % of the training clips (2.0–2.8 s) in one, to a tenth of a second.
    let secs = chosen["window_secs"].as_f64().unwrap();
    assert!((2.7..=2.8 + 1e-9).contains(&secs), "{secs}");
    let fe: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("model/feature_extractor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(fe["example_window_frames"], (secs * 100.0).round() as u64);
    assert_eq!(report["frontend"], fe["lathe_frontend"]);

    // Clips up to a window (1.5 s to a whole window), and two longer than a window.
    let window = (secs * 16_000.0).round() as usize;
    let clips: Vec<(PathBuf, usize)> = (0..8)
        .map(|i| {
            let path = tmp.path().join("clips").join(format!("{i:02}.wav"));
            let len = match i {
                6 => 6.0,
                7 => 7.3,
                _ => (1.5 + 0.25 * i as f64).min(secs),
            };
            wav(&path, &steady_or_step(i % 2, 30 + i, len));
            (path, i % 2)
        })
        .collect();
    let o = run(lathe(&cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(&run_dir)
        .args(clips.iter().map(|c| &c.0)));
    assert!(o.status.success(), "predict failed: {}", stderr(&o));
    let engine = json_lines(&stdout(&o));
    // The whole-clip model hears the step in clips up to a window.
    let right = engine
        .iter()
        .zip(&clips)
        .take(6)
        .filter(|(e, c)| e["label"] == classes[c.1])
        .count();
    assert!(right >= 5, "{right} of 6 right: {engine:?}");

    let model = tmp.path().join("sound.onnx");
    let o = export_onnx(&cache, &run_dir, &model);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    let Some(python) = onnx_python() else {
        return;
    };
    let described = check(&python, &model, None);
    let meta = &described["metadata"];
    assert_eq!(meta["window_samples"], window.to_string());
    let hop: usize = meta["window_hop_samples"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(hop, window / 2);
    // Every clip's windows as the metadata says, one ONNX run each.
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, (path, _)) in clips.iter().enumerate() {
        let (x, _) = decode_to_vec(path, usize::MAX).unwrap();
        let windows = lathe_engine::templates::sound::transfer::sample_windows(&x, window, hop);
        assert_eq!(
            windows.len() > 1,
            i >= 6,
            "clip {i}: {} windows",
            windows.len()
        );
        owner.extend(std::iter::repeat_n(i, windows.len()));
        rows.extend(windows);
    }
    let onnx = check(&python, &model, Some((&rows, tmp.path())));
    let out_rows = onnx["rows"].as_array().unwrap();
    assert_eq!(out_rows.len(), rows.len());
    let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels, classes);
    let mut mean = vec![vec![0f64; labels.len()]; clips.len()];
    let mut count = vec![0usize; clips.len()];
    for (r, &i) in out_rows.iter().zip(&owner) {
        for (m, v) in mean[i]
            .iter_mut()
            .zip(r["probabilities"][0].as_array().unwrap())
        {
            *m += v.as_f64().unwrap();
        }
        count[i] += 1;
    }
    let (mut worst, mut spread) = (0f64, 0f64);
    for (i, e) in engine.iter().enumerate() {
        let p: Vec<f64> = mean[i].iter().map(|s| s / count[i] as f64).collect();
        let top = if p[1] > p[0] { 1 } else { 0 };
        assert_eq!(e["label"], labels[top].as_str(), "clip {i}: top label");
        for (l, label) in labels.iter().enumerate() {
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p[l] - q).abs());
            spread = spread.max(q.min(1.0 - q));
        }
    }
    // Not a degenerate comparison: some clip is not certain.
    assert!(spread > 1e-3, "every probability is ~0 or ~1 ({spread})");
    eprintln!(
        "whole-clip statistics: max |Δp| = {worst:e} over {} clips",
        clips.len()
    );
    assert!(worst <= 3e-5, "|Δp| = {worst:e}");
}
