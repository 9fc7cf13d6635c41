//! Continue training (`lathe train --continue RUN_DIR`, Create ML's "extend"): a new run folder
//! starts from a finished run's weights, trains more epochs on the same or on more data, reuses
//! the cached features, and leaves the finished run untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;

fn events(run: &Path) -> Vec<serde_json::Value> {
    json_lines(&std::fs::read_to_string(run.join("events.jsonl")).unwrap())
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn continue_a_finished_run_with_more_epochs_and_more_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes"], 6, 0);
    let cache = tmp.path().join("cache");
    let first = tmp.path().join("runs/first");
    let out = run(lathe(&cache)
        .args(["train", "--template", "image-classifier", "--json"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&first)
        .args(["--epochs", "3", "--param", "image_size=32"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let model_before = std::fs::read(first.join("model/model.safetensors")).unwrap();
    let events_before = std::fs::read(first.join("events.jsonl")).unwrap();

    // More epochs on the same data: a new folder next to the old one, the head restored from it,
    // every feature from the cache.
    let out = run(lathe(&cache)
        .args(["train", "--json", "--continue"])
        .arg(&first)
        .args(["--epochs", "4"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = tmp.path().join("runs/first-continued");
    let ev = events(&second);
    let restored = of_kind(&ev, "restored");
    assert_eq!(restored.len(), 1, "{ev:?}");
    assert!(
        restored[0]["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with("first/checkpoints/last.safetensors")
    );
    let cache_events = of_kind(&ev, "cache");
    assert!(!cache_events.is_empty(), "features come from the cache");
    for c in &cache_events {
        assert_eq!(c["reused"], c["total"], "{c}");
    }
    assert_eq!(of_kind(&ev, "epoch_end").len(), 4);
    let parent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("continued_from.json")).unwrap())
            .unwrap();
    assert!(parent["run_dir"].as_str().unwrap().ends_with("runs/first"));
    assert_eq!(parent["epochs_before"], 3);
    assert!(second.join("model/config.json").is_file());
    // The first epoch starts where the finished run ended: far better than a fresh head.
    let first_epoch = &of_kind(&ev, "epoch_end")[0];
    assert!(
        first_epoch["train_accuracy"].as_f64().unwrap() >= 0.9,
        "{first_epoch}"
    );
    // The finished run is untouched.
    assert_eq!(
        std::fs::read(first.join("model/model.safetensors")).unwrap(),
        model_before
    );
    assert_eq!(
        std::fs::read(first.join("events.jsonl")).unwrap(),
        events_before
    );

    // More data (same classes): only the new images are extracted.
    let more = tmp.path().join("more");
    make_dataset(&more, &["circles", "stripes"], 6, 0);
    make_dataset(&more, &["circles", "stripes"], 4, 100);
    let third = tmp.path().join("runs/third");
    let out = run(lathe(&cache)
        .args(["train", "--json", "--continue"])
        .arg(&first)
        .arg("--data")
        .arg(&more)
        .arg("--out")
        .arg(&third)
        .args(["--epochs", "2"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ev = events(&third);
    let reused: u64 = of_kind(&ev, "cache")
        .iter()
        .map(|c| c["reused"].as_u64().unwrap())
        .sum();
    let data_event = &of_kind(&ev, "data")[0];
    let examples =
        data_event["num_train"].as_u64().unwrap() + data_event["num_validation"].as_u64().unwrap();
    assert_eq!(examples, 20);
    assert!((10..20).contains(&reused), "reused {reused} of {examples}");
    assert_eq!(of_kind(&ev, "restored").len(), 1);

    // The run folder is never overwritten; other classes cannot continue this head.
    let out = run(lathe(&cache)
        .args(["train", "--continue"])
        .arg(&first)
        .arg("--out")
        .arg(&third));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let other = tmp.path().join("other");
    make_dataset(&other, &["circles", "stripes", "bands"], 4, 0);
    let out = run(lathe(&cache)
        .args(["train", "--json", "--continue"])
        .arg(&first)
        .arg("--data")
        .arg(&other)
        .args(["--epochs", "1"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("same classes as the run being continued"),
        "{}",
        stdout(&out)
    );
}

/// Copies a folder tree (files and folders only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A project folder (data + runs) trained in one place, copied elsewhere and the original
/// deleted: the copied run folder evaluates, predicts, exports and continues next to itself, its
/// data found relative to it (`project.lock.toml` and `events.jsonl` still name the old place).
#[test]
fn a_copied_run_folder_works_and_continues_next_to_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let original = tmp.path().join("server/project");
    let data = original.join("data");
    make_dataset(&data, &["circles", "stripes"], 6, 0);
    let first = original.join("runs/first");
    let out = run(lathe(&cache)
        .args(["train", "--template", "image-classifier", "--json"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&first)
        .args(["--epochs", "2", "--param", "image_size=32"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let moved = tmp.path().join("laptop/copy");
    copy_tree(&original, &moved);
    std::fs::remove_dir_all(tmp.path().join("server")).unwrap();
    let copy = moved.join("runs/first");
    let lock = std::fs::read_to_string(copy.join("project.lock.toml")).unwrap();
    assert!(
        lock.contains("server"),
        "the lock names the old place: {lock}"
    );

    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&copy)
        .arg("--data")
        .arg(moved.join("data")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&copy)
        .arg(moved.join("data/circles/000.png")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("circles"), "{}", stdout(&out));
    let out = run(lathe(&cache)
        .args(["export", "--format", "safetensors"])
        .arg(&copy)
        .arg("--out")
        .arg(tmp.path().join("exported")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Without --data: the recorded data folder is gone, its copy next to the run is used.
    let out = run(lathe(&cache)
        .args(["train", "--json", "--continue"])
        .arg(&copy)
        .args(["--epochs", "2"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stderr(&out),
        stdout(&out)
    );
    let continued = moved.join("runs/first-continued");
    assert!(continued.join("model/config.json").is_file());
    assert!(!tmp.path().join("server").exists());
    let lock = std::fs::read_to_string(continued.join("project.lock.toml")).unwrap();
    assert!(lock.contains("laptop"), "{lock}");
    assert!(!lock.contains("server"), "{lock}");
    let ev = events(&continued);
    let restored = of_kind(&ev, "restored");
    assert_eq!(restored.len(), 1, "{ev:?}");
    assert!(
        restored[0]["checkpoint"]
            .as_str()
            .unwrap()
            .contains("laptop/copy/runs/first/checkpoints")
    );
}

#[test]
fn continue_refuses_unfinished_runs_and_unsupported_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = run(lathe(&cache).args(["train", "--continue"]).arg(tmp.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("project.lock.toml"),
        "{}",
        stderr(&out)
    );

    let csv = tmp.path().join("t.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..40 {
        text += &format!(
            "{},{},{}\n",
            i % 7,
            i % 3,
            if i % 2 == 0 { "x" } else { "y" }
        );
    }
    std::fs::write(&csv, text).unwrap();
    let runs = tmp.path().join("tab");
    let out = run(lathe(&cache)
        .args(["train", "--template", "tabular-classifier", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&runs)
        .args(["--param", "max_iterations=5"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(lathe(&cache).args(["train", "--continue"]).arg(&runs));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not supported yet"),
        "{}",
        stderr(&out)
    );
}

/// The object detector: the continued run starts its head and its fine-tuned backbone from the
/// finished run's last checkpoint and trains both phases again; data with other classes is
/// refused.
#[test]
fn continue_a_finished_detector() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    detection_data(&data, 5, &["Trouser", "Bag", "Sneaker"]);
    let cache = tmp.path().join("cache");
    let first = tmp.path().join("runs/det");
    let out = run(lathe(&cache)
        .args(["train", "--template", "object-detector", "--json"])
        .args(["--seed", "7", "--epochs", "4"])
        .args([
            "--param",
            "image_size=64",
            "--param",
            "head_channels=16",
            "--param",
            "batch_size=3",
            "--param",
            "validation_split=0",
            "--param",
            "fine_tune_blocks=1",
            "--param",
            "fine_tune_epochs=2",
            "--param",
            "learning_rate=0.01",
            "--param",
            "augment_crop=false",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&first));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let model_before = std::fs::read(first.join("model/model.safetensors")).unwrap();
    let first_losses: Vec<f64> = of_kind(&events(&first), "epoch_end")
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert_eq!(first_losses.len(), 6);

    let out = run(lathe(&cache)
        .args(["train", "--json", "--continue"])
        .arg(&first)
        .args(["--epochs", "3"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = tmp.path().join("runs/det-continued");
    let ev = events(&second);
    let restored = of_kind(&ev, "restored");
    assert_eq!(restored.len(), 1, "{ev:?}");
    assert_eq!(restored[0]["epoch"], 0);
    assert!(
        restored[0]["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with("det/checkpoints/detector_last.safetensors")
    );
    let losses: Vec<f64> = of_kind(&ev, "epoch_end")
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert_eq!(
        losses.len(),
        3 + 2,
        "3 frozen-backbone epochs, 2 fine-tuning"
    );
    // It starts where the finished run ended, not from a fresh head: the first step's loss (before
    // any update, on the same shuffled and augmented batch, as the seed is the same) is lower.
    let first_step = |ev: &[serde_json::Value]| {
        of_kind(ev, "step")
            .first()
            .map(|e| e["loss"].as_f64().unwrap())
            .unwrap()
    };
    let (fresh, continued) = (first_step(&events(&first)), first_step(&ev));
    assert!(
        continued < 0.85 * fresh,
        "first step's loss {continued} (continued) vs {fresh} (fresh head)"
    );
    assert!(second.join("model/model.safetensors").is_file());
    let parent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("continued_from.json")).unwrap())
            .unwrap();
    assert_eq!(parent["epochs_before"], 6);
    assert_eq!(
        std::fs::read(first.join("model/model.safetensors")).unwrap(),
        model_before
    );

    // Data with other classes does not fit the finished run's head.
    let other = tmp.path().join("other");
    detection_data(&other, 6, &["Trouser", "Bag"]);
    let out = run(lathe(&cache)
        .args(["train", "--continue"])
        .arg(&first)
        .arg("--data")
        .arg(&other));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("same classes"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
