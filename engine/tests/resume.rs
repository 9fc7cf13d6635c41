//! Crash safety: a run killed with SIGKILL mid-training resumes with `lathe train --resume` and
//! reaches exactly the model an uninterrupted run with the same seed reaches.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn epochs_logged(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "checkpoint")
        .filter_map(|e| e["epoch"].as_u64())
        .max()
        .unwrap_or(0)
}

fn resumes_to_the_same_model(extra: &[&str], kill_after_epoch: u64) {
    image_run(extra, kill_after_epoch, false);
}

/// The image classifier, killed after the checkpoint of `kill_after_epoch` or (`mid_epoch`)
/// part-way through the next epoch, with a checkpoint after every step
/// (`LATHE_CHECKPOINT_SECS=0`). Returns the resumed run's events.
fn image_run(extra: &[&str], kill_after_epoch: u64, mid_epoch: bool) -> Vec<serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes", "bands"], 6, 0);
    let cache = tmp.path().join("cache");
    let args = |out: &Path| {
        let mut c = lathe(&cache);
        c.args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "30",
        ])
        .args([
            "--param",
            "image_size=48",
            "--param",
            "batch_size=4",
            "--param",
            "early_stopping_patience=0",
            "--param",
            "head=mlp",
        ])
        .args(extra)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out);
        if mid_epoch {
            c.env("LATHE_CHECKPOINT_SECS", "0");
        }
        c
    };
    if mid_epoch {
        kill_when_and_compare(
            tmp.path(),
            &cache,
            &args,
            &|run| step_logged(run, kill_after_epoch + 1).is_some_and(|s| s >= 2),
            kill_after_epoch,
        )
    } else {
        kill_resume_and_compare(tmp.path(), &cache, &args, kill_after_epoch)
    }
}

/// The largest step logged for `epoch` (steps count from 0).
fn step_logged(run: &Path, epoch: u64) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step" && e["epoch"] == epoch)
        .filter_map(|e| e["step"].as_u64())
        .max()
}

/// Trains once uninterrupted (`args(out)`), once killed with SIGKILL after the checkpoint of
/// `kill_after_epoch` and resumed; both must give the same model and the same losses.
fn kill_resume_and_compare(
    tmp: &Path,
    cache: &Path,
    args: &dyn Fn(&Path) -> std::process::Command,
    kill_after_epoch: u64,
) -> Vec<serde_json::Value> {
    kill_when_and_compare(
        tmp,
        cache,
        args,
        &|run| epochs_logged(run) >= kill_after_epoch,
        kill_after_epoch,
    )
}

/// As [`kill_resume_and_compare`], killing once `kill_now(run folder)` holds; the resumed run must
/// restore at least epoch `restored_at_least`. Returns the resumed run's events.
fn kill_when_and_compare(
    tmp: &Path,
    cache: &Path,
    args: &dyn Fn(&Path) -> std::process::Command,
    kill_now: &dyn Fn(&Path) -> bool,
    kill_after_epoch: u64,
) -> Vec<serde_json::Value> {
    let whole = tmp.join("whole");
    let out = run(&mut args(&whole));
    assert!(out.status.success(), "{}", stderr(&out));

    let killed = tmp.join("killed");
    let mut child = args(&killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !kill_now(&killed) {
        assert!(
            Instant::now() < deadline,
            "the run did not get to the kill point within 180 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!killed.join("model/model.safetensors").exists());

    let out = run(lathe(cache)
        .args(["train", "--json", "--resume"])
        .arg(&killed));
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert_eq!(events[0]["resumed"], true);
    let restored = events
        .iter()
        .filter(|e| e["event"] == "restored")
        .filter_map(|e| e["epoch"].as_u64())
        .max()
        .expect("a restored event");
    assert!(
        restored >= kill_after_epoch,
        "restored after epoch {restored}"
    );
    // Only the epochs after the checkpoint are trained again.
    let first_trained = events
        .iter()
        .filter(|e| e["event"] == "epoch_end")
        .filter_map(|e| e["epoch"].as_u64())
        .min();
    assert!(
        first_trained.is_none_or(|e| e == restored + 1),
        "resumed at epoch {first_trained:?} after restoring epoch {restored}"
    );
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");

    let a = tensors(&whole.join("model/model.safetensors"));
    let b = tensors(&killed.join("model/model.safetensors"));
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(
            va == vb,
            "tensor {ka} differs between the uninterrupted and the resumed run"
        );
    }
    let report = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap()
    };
    // Elapsed times differ between the runs; every loss must be the same.
    let strip = |v: serde_json::Value| -> Vec<(u64, f64, Option<f64>)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["epoch"].as_u64().unwrap(),
                    m["train_loss"].as_f64().unwrap(),
                    m["validation_loss"].as_f64(),
                )
            })
            .collect()
    };
    let history = strip(report(&whole)["training"]["history"].clone());
    assert!(history.len() as u64 > kill_after_epoch);
    assert_eq!(
        history,
        strip(report(&killed)["training"]["history"].clone())
    );

    // A finished run cannot be resumed.
    let out = run(lathe(cache).args(["train", "--resume"]).arg(&killed));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already finished"),
        "{}",
        stderr(&out)
    );
    events
}

#[test]
fn kill_9_during_head_training_then_resume_gives_the_same_model() {
    resumes_to_the_same_model(&[], 8);
}

#[test]
fn kill_9_during_fine_tuning_then_resume_gives_the_same_model() {
    resumes_to_the_same_model(
        &[
            "--param",
            "fine_tune_blocks=1",
            "--param",
            "fine_tune_epochs=6",
            "--param",
            "fine_tune_batch_size=6",
        ],
        32,
    );
}

/// The detector: frozen-backbone epochs 1–4, then fine-tuning epochs 5–7, with augmentation
/// and a validation split, so shuffles, augmentations and batch-norm statistics all matter.
fn detector_resumes_to_the_same_model(kill_after_epoch: u64) {
    detector_run(kill_after_epoch, false);
}

/// The detector, killed or (`mid_epoch`) killed part-way through epoch 3 with a checkpoint after
/// every step (`LATHE_CHECKPOINT_SECS=0`, one image per step).
fn detector_run(kill_after_epoch: u64, mid_epoch: bool) -> Vec<serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    detection_data(&data, 5, &["Trouser", "Bag", "Sneaker"]);
    let cache = tmp.path().join("cache");
    let args = |out: &Path| {
        let mut c = lathe(&cache);
        c.args(["train", "--template", "object-detector", "--json"])
            .args(["--seed", "7", "--epochs", "4"])
            .args([
                "--param",
                "image_size=64",
                "--param",
                "head_channels=16",
                "--param",
                "batch_size=3",
                "--param",
                "validation_split=0.25",
                "--param",
                "fine_tune_blocks=1",
                "--param",
                "fine_tune_epochs=3",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out);
        if mid_epoch {
            c.env("LATHE_CHECKPOINT_SECS", "0")
                .args(["--param", "batch_size=1"]);
        }
        c
    };
    if mid_epoch {
        kill_when_and_compare(
            tmp.path(),
            &cache,
            &args,
            &|run| step_logged(run, kill_after_epoch + 1).is_some_and(|s| s >= 2),
            kill_after_epoch,
        )
    } else {
        kill_resume_and_compare(tmp.path(), &cache, &args, kill_after_epoch)
    }
}

#[test]
fn kill_9_during_detector_head_training_then_resume_gives_the_same_model() {
    detector_resumes_to_the_same_model(2);
}

#[test]
fn kill_9_during_detector_fine_tuning_then_resume_gives_the_same_model() {
    detector_resumes_to_the_same_model(5);
}

#[test]
fn kill_9_in_the_middle_of_a_fine_tuning_epoch_then_resume_gives_the_same_model() {
    let events = image_run(
        &[
            "--param",
            "fine_tune_blocks=1",
            "--param",
            "fine_tune_epochs=4",
            "--param",
            "fine_tune_batch_size=2",
        ],
        31,
        true,
    );
    let first = events
        .iter()
        .find(|e| e["event"] == "step")
        .expect("the resumed run trains");
    assert!(first["step"].as_u64().unwrap() >= 1, "{first}");
}

#[test]
fn kill_9_in_the_middle_of_a_detector_epoch_then_resume_gives_the_same_model() {
    let events = detector_run(2, true);
    // The checkpoint was written part-way through an epoch: the resumed run trains only that
    // epoch's remaining steps.
    let first = events
        .iter()
        .find(|e| e["event"] == "step")
        .expect("the resumed run trains");
    assert!(first["step"].as_u64().unwrap() >= 1, "{first}");
}

/// A 1 s, 16 kHz mono WAV: a low hum, a high whistle or noise (`class`), varied by `k`.
fn sound_clip(root: &Path, class: usize, k: usize) {
    let names = ["hum", "whistle", "hiss"];
    let path = root.join(names[class]).join(format!("{k:02}.wav"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    let mut x = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in 0..16_000 {
        let t = i as f32 / 16_000.0;
        let tone = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = match class {
            0 => 0.3 * tone(150.0 + 25.0 * k as f32),
            1 => 0.3 * tone(2_000.0 + 90.0 * k as f32),
            _ => 0.3 * ((x % 20_000) as f32 / 10_000.0 - 1.0),
        };
        w.write_sample((v * 32_000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The sound CNN, with augmentation and a batch size that leaves a one-window batch (skipped:
/// batch norm needs two), so the optimizer's step count is not epochs × batches.
#[test]
fn kill_9_during_sound_cnn_training_then_resume_gives_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for class in 0..3 {
        for k in 0..5 {
            sound_clip(&data, class, k);
        }
    }
    let cache = tmp.path().join("cache");
    let args = |out: &Path| {
        let mut c = lathe(&cache);
        c.args(["train", "--template", "sound-classifier", "--json"])
            .args(["--epochs", "12"])
            .args([
                "--param",
                "algorithm=cnn",
                "--param",
                "cnn_width=4",
                "--param",
                "batch_size=5",
                "--param",
                "window_secs=0.5",
                "--param",
                "early_stopping_patience=0",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out);
        c
    };
    kill_resume_and_compare(tmp.path(), &cache, &args, 5);
}
