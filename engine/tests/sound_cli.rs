//! End-to-end test of the sound classifier through the `lathe` CLI on generated clips (tones,
//! noise and chirps at several sample rates and channel counts, plus a corrupt and an empty
//! file): train → evaluate → predict (a long file streams) → export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;

/// Writes a 16-bit WAV of `f(t)` (t in seconds) at `rate` Hz with `channels` channels.
fn wav(path: &Path, rate: u32, channels: u16, secs: f32, f: impl Fn(f32, usize) -> f32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * secs) as usize {
        let v = f(i as f32 / rate as f32, i).clamp(-1.0, 1.0);
        for _ in 0..channels {
            w.write_sample((v * 32000.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// Deterministic noise in [-1, 1].
fn hash_noise(i: usize, seed: usize) -> f32 {
    let mut x = (i as u64 ^ (seed as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 20_000) as f32 / 10_000.0 - 1.0
}

/// One clip of class `class` (0 low hum, 1 high whistle, 2 noise), varied by `k`.
fn clip(root: &Path, class: usize, k: usize) {
    let names = ["hum", "whistle", "hiss"];
    let rate = [8_000, 16_000, 22_050, 44_100][k % 4];
    let channels = 1 + (k % 2) as u16;
    let secs = 0.6 + (k % 5) as f32 * 0.4;
    let amp = 0.2 + (k % 3) as f32 * 0.15;
    let path = root.join(names[class]).join(format!("{k:03}.wav"));
    let two_pi = 2.0 * std::f32::consts::PI;
    match class {
        0 => {
            let f0 = 150.0 + 20.0 * k as f32;
            wav(&path, rate, channels, secs, |t, _| {
                amp * ((two_pi * f0 * t).sin() + 0.5 * (two_pi * 2.0 * f0 * t).sin())
            })
        }
        1 => {
            let f0 = 2_000.0 + 60.0 * k as f32;
            wav(&path, rate, channels, secs, |t, _| {
                amp * (two_pi * f0 * t).sin()
            })
        }
        _ => wav(&path, rate, channels, secs, |_, i| amp * hash_noise(i, k)),
    }
}

#[test]
fn sound_train_evaluate_predict_export() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for class in 0..3 {
        for k in 0..10 {
            clip(&train, class, k);
        }
        for k in 10..14 {
            clip(&test, class, k);
        }
    }
    // A corrupt file (valid header, cut data) and an empty one: warnings, training goes on.
    let good = std::fs::read(train.join("hum/001.wav")).unwrap();
    std::fs::write(train.join("hum/corrupt.wav"), &good[..good.len() / 3]).unwrap();
    std::fs::write(train.join("hiss/empty.wav"), b"").unwrap();

    let run_dir = tmp.path().join("run");
    let out = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "sound-classifier",
            "--json",
            "--epochs",
            "20",
            "--param",
            "algorithm=cnn",
            "--param",
            "cnn_width=8",
            "--param",
            "batch_size=8",
            "--param",
            "window_secs=0.5",
        ])
        .arg("--data")
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"finished"));
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");
    let warnings: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| format!("{} {}", e["message"], e["path"]))
        .collect();
    for name in ["corrupt.wav", "empty.wav"] {
        assert!(
            warnings.iter().any(|w| w.contains(name)),
            "no warning names {name}: {warnings:?}"
        );
    }
    assert!(
        warnings.iter().any(|w| w.contains("truncated")),
        "{warnings:?}"
    );
    assert!(kinds.contains(&"epoch_end") && kinds.contains(&"checkpoint"));
    for f in [
        "report.json",
        "checkpoints/cnn_last.safetensors",
        "checkpoints/cnn_best.safetensors",
        "report/loss.png",
        "report/accuracy.png",
        "report/confusion_matrix_test.png",
        "model/model.safetensors",
        "model/config.json",
        "model/feature_extractor_config.json",
        "model/manifest.json",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let trained = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(trained >= 0.75, "test accuracy {trained} on 3 easy classes");

    // evaluate: the exported model reproduces the training-time score.
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let accuracy = eval["accuracy"].as_f64().unwrap();
    assert!((accuracy - trained).abs() < 1e-9, "{accuracy} vs {trained}");
    assert_eq!(eval["confusion_matrix"].as_array().unwrap().len(), 3);

    // predict: a long stereo 44.1 kHz whistle (streamed) and a short hum.
    let long = tmp.path().join("long.wav");
    wav(&long, 44_100, 2, 40.0, |t, _| {
        0.3 * (2.0 * std::f32::consts::PI * 2_300.0 * t).sin()
    });
    let short = test.join("hum/010.wav");
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(&long)
        .arg(&short));
    assert!(out.status.success(), "{}", stderr(&out));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["label"], "whistle", "{}", preds[0]);
    assert_eq!(preds[1]["label"], "hum", "{}", preds[1]);
    let total: f64 = preds[0]["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4);

    // A file that is not audio: exit 1 with its path.
    let bogus = tmp.path().join("bogus.wav");
    std::fs::write(&bogus, b"RIFF....WAVEjunk").unwrap();
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(&bogus));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bogus.wav"), "{}", stderr(&out));

    // export: a self-contained folder with PyTorch names and the front-end settings.
    let exported = tmp.path().join("exported");
    let out = run(lathe(&cache)
        .args(["export", "--format", "safetensors"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&exported));
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(exported.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("features.0.conv.weight").unwrap().shape(),
        &[8, 1, 3, 3]
    );
    assert_eq!(
        st.tensor("classifier.weight").unwrap().shape(),
        &[3, 64 * 8 * 2]
    );
    assert_eq!(st.tensor("frontend.mean").unwrap().shape(), &[64]);
    let fe: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(exported.join("feature_extractor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(fe["sampling_rate"], 16_000);
    assert_eq!(fe["window_length_samples"], 400);
    assert_eq!(fe["hop_length_samples"], 160);
    assert_eq!(fe["n_mels"], 64);
    assert_eq!(fe["example_window_frames"], 50);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["lathe"]["task"], "sound-classification");
    assert_eq!(config["id2label"]["1"], "hum");
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&exported)
        .arg(&short));
    assert_eq!(json_lines(&stdout(&out))[0]["label"], "hum");
}

#[test]
fn sound_transfer_and_auto_train_export_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for class in 0..3 {
        for k in 0..6 {
            clip(&train, class, k);
        }
        for k in 10..12 {
            clip(&test, class, k);
        }
    }
    let train_with = |algorithm: &str, out: &Path| {
        let o = run(lathe(&cache)
            .args([
                "train",
                "--template",
                "sound-classifier",
                "--json",
                "--epochs",
                "6",
            ])
            .args(["--param", &format!("algorithm={algorithm}")])
            .args(["--param", "cnn_width=4", "--param", "window_secs=0.5"])
            .args(["--param", "validation_split=0.2"])
            .arg("--data")
            .arg(&train)
            .arg("--test")
            .arg(&test)
            .arg("--out")
            .arg(out));
        assert!(o.status.success(), "{algorithm}: {}", stderr(&o));
        json_lines(&stdout(&o))
    };
    // transfer: CREPE-tiny embeddings + a head; the exported folder carries the encoder.
    let run_dir = tmp.path().join("transfer");
    train_with("transfer", &run_dir);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["training"]["algorithm"], "transfer");
    let trained = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(trained >= 0.66, "transfer test accuracy {trained}");
    let bytes = std::fs::read(run_dir.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("encoder.conv1.weight").unwrap().shape(),
        &[128, 1, 512, 1]
    );
    // The auto head on a few hundred windows: logistic regression (C by cross-validation).
    assert!(st.tensor("classifier.1.weight").is_ok());
    let selection = &report["training"]["leaderboard"][0]["head_selection"];
    assert_eq!(selection["chosen"], "logistic", "{selection}");
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // Training-time and exported (head folded, streamed) scores agree up to one of 6 files.
    assert!((eval["accuracy"].as_f64().unwrap() - trained).abs() <= 1.0 / 6.0 + 1e-9);
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(test.join("whistle/011.wav")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(json_lines(&stdout(&out))[0]["probabilities"].is_object());

    // auto: the statistics and transfer candidates are trained (the CNN only from 200 clips per
    // class), the leaderboard is recorded, and the second run reuses the cached embeddings.
    let run_dir = tmp.path().join("auto");
    let events = train_with("auto", &run_dir);
    assert!(
        events.iter().any(|e| e["event"] == "cache"),
        "embeddings not reused"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let board: Vec<&str> = report["training"]["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["validation_accuracy"].is_number())
        .map(|c| c["algorithm"].as_str().unwrap())
        .collect();
    // The statistics come in four variants (window × augmentation), cross-validated like the
    // rest: these clips (0.6–2.2 s) are longer than the 0.5 s window, so whole-clip ones too.
    assert_eq!(
        board,
        [
            "statistics",
            "statistics-noaug",
            "statistics-clip",
            "statistics-clip-noaug",
            "speech",
            "transfer"
        ]
    );
    // What auto left out, and why, is on the leaderboard too.
    let skipped: Vec<&str> = report["training"]["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            c["skipped"]
                .as_str()
                .map(|_| c["algorithm"].as_str().unwrap())
        })
        .collect();
    assert_eq!(skipped, ["yamnet", "whisper", "cnn"]);
    let algorithm = report["training"]["algorithm"].as_str().unwrap();
    // The kept candidate is chosen by k-fold cross-validation over every training + validation
    // clip, not by the few validation clips: each encoder candidate carries out-of-fold clip
    // accuracy and log loss, and the kept one has the lowest CV log loss among those within one
    // standard error of the best CV accuracy.
    let trained: Vec<(&str, f64, f64, u64)> = report["training"]["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["validation_accuracy"].is_number())
        .map(|c| {
            assert_eq!(c["selected_by"], "cross_validation", "{c}");
            assert_eq!(c["cv_folds"], 3, "{c}");
            (
                c["algorithm"].as_str().unwrap(),
                c["cv_accuracy"].as_f64().expect("a CV accuracy"),
                c["cv_log_loss"].as_f64().expect("a CV log loss"),
                c["cv_clips"].as_u64().unwrap(),
            )
        })
        .collect();
    // Every training and validation clip (6 per class) is scored out of fold, in 3 folds.
    assert!(trained.iter().all(|c| c.3 == 18), "{trained:?}");
    let best_accuracy = trained.iter().map(|c| c.1).fold(0.0, f64::max);
    let se = (best_accuracy * (1.0 - best_accuracy) / trained[0].3 as f64).sqrt();
    let best = trained
        .iter()
        .filter(|c| c.1 >= best_accuracy - se - 1e-12)
        .fold(None::<(&str, f64, f64, u64)>, |b, c| match b {
            Some(b) if b.2 <= c.2 => Some(b),
            _ => Some(*c),
        })
        .unwrap()
        .0;
    assert_eq!(algorithm, best, "{trained:?}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("model/config.json")).unwrap())
            .unwrap();
    let encoder = match algorithm {
        a if a.starts_with("statistics") => "logmel_mfcc_stats",
        "speech" => "speech_embedding",
        "transfer" => "crepe_tiny",
        other => panic!("auto chose {other}"),
    };
    assert_eq!(config["encoder"], encoder);
    // The model folder windows as the chosen candidate did (a whole-clip variant: longer).
    let entry = report["training"]["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chosen"] == true)
        .unwrap();
    let fe: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("model/feature_extractor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(fe["example_window_secs"], entry["window_secs"], "{entry}");
    assert_eq!(report["frontend"], fe["lathe_frontend"]);
    // No speaker hint in numbered files: folds of clips, and the report says why.
    assert_eq!(report["training"]["cross_validation"]["grouped_by"], "clip");

    // speech: Google's speech embedding (built in) + a head; the model folder carries the
    // encoder and reloads for evaluate.
    let run_dir = tmp.path().join("speech");
    train_with("speech", &run_dir);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["training"]["algorithm"], "speech");
    let trained = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    let bytes = std::fs::read(run_dir.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensor("encoder.conv19.weight").is_ok());
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!((eval["accuracy"].as_f64().unwrap() - trained).abs() <= 1.0 / 6.0 + 1e-9);
}

/// The Whisper encoder candidate (`scripts/fetch-whisper-tiny.sh`): trained by name with its
/// weights given, exported with the encoder inside the model folder and reloaded for evaluate
/// and predict; and `auto` runs it as a candidate once the weights are installed in the weights
/// folder (never otherwise: auto does not download).
#[test]
fn whisper_candidate_trains_exports_reloads_and_joins_auto_when_installed() {
    let Some(weights) = whisper_tiny() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for class in 0..3 {
        for k in 0..6 {
            clip(&train, class, k);
        }
        for k in 10..12 {
            clip(&test, class, k);
        }
    }
    let train_with = |extra: &[&str], out: &Path| {
        let o = run(lathe(&cache)
            .args(["train", "--template", "sound-classifier", "--json"])
            .args(extra)
            .args([
                "--param",
                "window_secs=0.5",
                "--param",
                "validation_split=0.2",
            ])
            .arg("--data")
            .arg(&train)
            .arg("--test")
            .arg(&test)
            .arg("--out")
            .arg(out));
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(out.join("report.json")).unwrap(),
        )
        .unwrap()
    };
    let run_dir = tmp.path().join("whisper");
    let weights_param = format!("whisper_weights={}", weights.display());
    let report = train_with(
        &["--param", "algorithm=whisper", "--param", &weights_param],
        &run_dir,
    );
    assert_eq!(report["training"]["algorithm"], "whisper");
    let trained = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(trained >= 0.66, "whisper test accuracy {trained}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["encoder"], "whisper_tiny_en");
    let bytes = std::fs::read(run_dir.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensor("encoder.model.encoder.conv1.weight").is_ok());
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!((eval["accuracy"].as_f64().unwrap() - trained).abs() <= 1.0 / 6.0 + 1e-9);

    // Not installed: auto leaves Whisper out. Installed: it is a candidate.
    let board = |report: &serde_json::Value| -> Vec<String> {
        report["training"]["leaderboard"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["validation_accuracy"].is_number())
            .map(|c| c["algorithm"].as_str().unwrap().to_string())
            .collect()
    };
    let without = train_with(&["--param", "algorithm=auto"], &tmp.path().join("auto0"));
    assert!(!board(&without).contains(&"whisper".to_string()));
    std::fs::create_dir_all(cache.join("weights")).unwrap();
    std::fs::copy(&weights, cache.join("weights/whisper_tiny_en.safetensors")).unwrap();
    let with = train_with(&["--param", "algorithm=auto"], &tmp.path().join("auto1"));
    assert!(
        board(&with).contains(&"whisper".to_string()),
        "{}",
        with["training"]["leaderboard"]
    );
}

/// The YAMNet candidate (`scripts/fetch-yamnet.sh`): not a candidate of `auto` until installed
/// in the weights folder (and `algorithm = yamnet` then says how to install it); once installed,
/// trained by name, exported with the network (not the AudioSet classifier) in the model folder,
/// reloaded for evaluate and predict, exported to ONNX, refused by the Core ML export with a
/// message naming what exports, and a candidate of `auto` with cross-validated scores.
#[test]
fn yamnet_candidate_trains_exports_reloads_and_joins_auto_when_installed() {
    let Some(weights) = yamnet() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for class in 0..3 {
        for k in 0..6 {
            clip(&train, class, k);
        }
        for k in 10..12 {
            clip(&test, class, k);
        }
    }
    let train_cmd = |algorithm: &str, out: &Path| {
        run(lathe(&cache)
            .args(["train", "--template", "sound-classifier", "--json"])
            .args(["--param", &format!("algorithm={algorithm}")])
            .args(["--param", "validation_split=0.2"])
            .arg("--data")
            .arg(&train)
            .arg("--test")
            .arg(&test)
            .arg("--out")
            .arg(out))
    };
    let report = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
    };
    let board = |r: &serde_json::Value| -> Vec<String> {
        r["training"]["leaderboard"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["validation_accuracy"].is_number())
            .map(|c| c["algorithm"].as_str().unwrap().to_string())
            .collect()
    };

    // Not installed: asked for by name, it says how to install it; auto leaves it out.
    let o = train_cmd("yamnet", &tmp.path().join("missing"));
    assert!(!o.status.success());
    // With --json the failure is the `finished` event on stdout.
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("scripts/fetch-yamnet.sh"), "{said}");
    let out = tmp.path().join("auto0");
    let o = train_cmd("auto", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!board(&report(&out)).contains(&"yamnet".to_string()));

    // Installed in the weights folder.
    std::fs::create_dir_all(cache.join("weights")).unwrap();
    std::fs::copy(&weights, cache.join("weights/yamnet.safetensors")).unwrap();
    let run_dir = tmp.path().join("yamnet");
    let o = train_cmd("yamnet", &run_dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&run_dir);
    assert_eq!(r["training"]["algorithm"], "yamnet");
    let trained = r["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(trained >= 0.66, "yamnet test accuracy {trained}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["encoder"], "yamnet");
    let bytes = std::fs::read(run_dir.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensor("encoder.layer14.pointwise.weight").is_ok());
    assert!(st.tensor("encoder.classifier.weight").is_err());
    let o = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!((eval["accuracy"].as_f64().unwrap() - trained).abs() <= 1.0 / 6.0 + 1e-9);
    let o = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(test.join("whistle/011.wav")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json_lines(&stdout(&o))[0]["probabilities"].is_object());
    // ONNX exports (checked against ONNX Runtime in onnx_sound.rs); Core ML refuses.
    let o = run(lathe(&cache)
        .args(["export", "--format", "onnx"])
        .arg(&run_dir)
        .arg("--out")
        .arg(tmp.path().join("model.onnx")));
    assert!(
        o.status.success(),
        "onnx export of a yamnet model: {}",
        stderr(&o)
    );
    let o = run(lathe(&cache)
        .args(["export", "--format", "coreml"])
        .arg(&run_dir)
        .arg("--out")
        .arg(tmp.path().join("model.mlmodel")));
    assert!(!o.status.success(), "coreml export of a yamnet model");
    let e = stderr(&o);
    assert!(
        e.contains("YAMNet") && e.contains("safetensors"),
        "coreml: {e}"
    );

    // auto: a candidate, scored by cross-validation like the others.
    let out = tmp.path().join("auto1");
    let o = train_cmd("auto", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&out);
    assert!(
        board(&r).contains(&"yamnet".to_string()),
        "{}",
        r["training"]["leaderboard"]
    );
    let entry = r["training"]["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["algorithm"] == "yamnet")
        .unwrap();
    assert_eq!(entry["selected_by"], "cross_validation", "{entry}");
    assert!(entry["cv_accuracy"].is_number(), "{entry}");
}

/// `lathe bench --sound`: every built-in encoder is really measured on the given clips (a
/// 0.4 s file is padded to the 1 s window), the ones whose weights are not installed are listed
/// with the script that installs them, and an unreadable file is named.
#[test]
fn bench_sound_measures_each_encoder_and_names_the_missing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    wav(&clips.join("a/tone.wav"), 16_000, 1, 1.0, |t, _| {
        0.3 * (std::f32::consts::TAU * 440.0 * t).sin()
    });
    wav(&clips.join("b/short.wav"), 44_100, 2, 0.4, |_, i| {
        0.2 * hash_noise(i, 7)
    });
    let empty_weights = tmp.path().join("no-weights");
    std::fs::create_dir_all(&empty_weights).unwrap();
    let out = run(lathe(&tmp.path().join("cache"))
        .env("LATHE_WEIGHTS_DIR", &empty_weights)
        .args(["bench", "--sound", "--count", "5", "--json", "--clips"])
        .arg(&clips));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let rows = v["sound_encoders"]["encoders"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["statistics", "speech", "transfer", "yamnet", "whisper"]
    );
    for r in &rows[..3] {
        assert_eq!(r["clips"], 2, "{r}");
        assert!(r["clips_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["features"].as_u64().unwrap() > 0, "{r}");
    }
    assert!(
        rows[3]["skipped"]
            .as_str()
            .unwrap()
            .contains("scripts/fetch-yamnet.sh"),
        "{}",
        rows[3]
    );
    assert!(
        rows[4]["skipped"]
            .as_str()
            .unwrap()
            .contains("scripts/fetch-whisper-tiny.sh"),
        "{}",
        rows[4]
    );

    std::fs::write(clips.join("b/broken.wav"), b"RIFF....WAVEnot really").unwrap();
    let out = run(lathe(&tmp.path().join("cache"))
        .env("LATHE_WEIGHTS_DIR", &empty_weights)
        .args(["bench", "--sound", "--clips"])
        .arg(&clips));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken.wav"), "{}", stderr(&out));
}

/// `auto`'s two heads trained at once (as on a GPU: `LATHE_HEADS_AT_ONCE=on` forces it on the
/// CPU) give the run that training them one after the other gives: the same choice and
/// predictions, the MLP's epochs then the logistic head's iterations on one rising epoch axis.
#[test]
fn heads_trained_at_once_match_heads_trained_in_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 1,100 short clips (the MLP joins from 1,000 training windows): two noisy tones.
    for k in 0..550 {
        for (class, hz) in [("low", 300.0f32), ("high", 340.0)] {
            wav(
                &data.join(class).join(format!("{k:03}.wav")),
                16_000,
                1,
                0.3,
                |t, i| 0.2 * (std::f32::consts::TAU * hz * t).sin() + 0.3 * hash_noise(i, k),
            );
        }
    }
    let train = |mode: &str| {
        let out = tmp.path().join(format!("run-{mode}"));
        let o = run(lathe(&tmp.path().join("cache"))
            .env("LATHE_HEADS_AT_ONCE", mode)
            .args([
                "train",
                "--template",
                "sound-classifier",
                "--json",
                "--data",
            ])
            .arg(&data)
            .args(["--param", "algorithm=statistics", "--out"])
            .arg(&out));
        assert!(o.status.success(), "{}", stderr(&o));
        let epochs: Vec<u64> = stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "epoch_end")
            .map(|e| e["epoch"].as_u64().unwrap())
            .collect();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        (epochs, report)
    };
    let (at_once, a) = train("on");
    let (in_turn, b) = train("off");
    assert_eq!(at_once, in_turn);
    assert!(at_once.windows(2).all(|w| w[0] < w[1]), "{at_once:?}");
    let heads = |r: &serde_json::Value| -> Vec<String> {
        r["training"]["leaderboard"][0]["head_selection"]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["head"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(heads(&a), ["mlp", "logistic"]);
    assert_eq!(heads(&a), heads(&b));
    for key in ["chosen", "refit_on_train_and_validation"] {
        let selection =
            |r: &serde_json::Value| r["training"]["leaderboard"][0]["head_selection"][key].clone();
        assert_eq!(selection(&a), selection(&b));
    }
    assert_eq!(
        a["evaluation"]["validation"]["accuracy"],
        b["evaluation"]["validation"]["accuracy"]
    );
}
