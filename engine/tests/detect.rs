//! The object detector end to end through the CLI, on tiny generated data (Fashion-MNIST items
//! pasted on the bundled CC0 photos and on textures): it overfits a few images (train
//! mAP@0.5 ≥ 0.9), predicts boxes as JSON, draws them, exports; bad annotations are refused or
//! warned about by `lathe check`, naming the entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json_lines, lathe, run, stderr, stdout};
use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
use std::path::{Path, PathBuf};

fn photos() -> Vec<image::RgbImage> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/photos");
    ["chelsea.png", "coffee.png"]
        .iter()
        .map(|n| image::open(dir.join(n)).unwrap().to_rgb8())
        .collect()
}

/// `n` generated 96×96 images with 1–2 objects of 3 classes.
fn generate(dir: &Path, n: usize, seed: u64) {
    let sprites = detect_synth::load_sprites(
        &common::sample().join("train"),
        &["Trouser", "Bag", "Sneaker"],
        6,
    )
    .unwrap();
    let cfg = SynthConfig {
        num_images: n,
        width: 96,
        height: 96,
        min_objects: 1,
        max_objects: 2,
        min_size: 0.3,
        max_size: 0.5,
        seed,
        extension: "png".into(),
    };
    detect_synth::generate(dir, &sprites, &photos(), &cfg).unwrap();
}

fn train(cache: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = lathe(cache);
    cmd.args([
        "train",
        "--template",
        "object-detector",
        "--json",
        "--seed",
        "3",
    ])
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    .args([
        "--param",
        "image_size=96",
        "--param",
        "head_channels=64",
        "--param",
        "validation_split=0",
        "--param",
        "batch_size=8",
        "--param",
        "learning_rate=0.005",
        "--param",
        "augment_crop=false",
        "--param",
        "augment_flip=false",
        "--param",
        "augment_color=false",
    ])
    .args(extra);
    run(&mut cmd)
}

#[test]
fn detector_overfits_a_tiny_set_then_predicts_draws_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, data, run_dir) = (
        tmp.path().join("cache"),
        tmp.path().join("data"),
        tmp.path().join("run"),
    );
    generate(&data, 8, 11);
    let out = train(
        &cache,
        &data,
        &run_dir,
        &[
            "--param",
            "epochs=80",
            "--param",
            "fine_tune_blocks=2",
            "--param",
            "fine_tune_epochs=3",
            "--param",
            "fine_tune_learning_rate=0.0001",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let epochs: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "epoch_end")
        .collect();
    assert_eq!(epochs.len(), 83);
    let first = epochs.first().unwrap()["train_loss"].as_f64().unwrap();
    let last = epochs.last().unwrap()["train_loss"].as_f64().unwrap();
    assert!(last < first / 4.0, "loss {first} → {last}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "phase" && e["phase"] == "fine_tuning")
    );

    // Train mAP@0.5 of the exported model, through `lathe evaluate`.
    let out = run(lathe(&cache)
        .arg("evaluate")
        .arg(&run_dir)
        .arg("--data")
        .arg(&data)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let map50 = report["map50"].as_f64().unwrap();
    assert!(map50 >= 0.9, "train mAP@0.5 {map50}: {report}");
    assert!(report["map"].as_f64().unwrap() <= map50);
    assert_eq!(report["per_class"].as_array().unwrap().len(), 3);

    // Predict: boxes as JSON, centre-based, in the image's pixels; --draw writes a PNG.
    let image = data.join("img_00000.png");
    let drawn = tmp.path().join("drawn.png");
    let out = run(lathe(&cache)
        .arg("predict")
        .arg(&run_dir)
        .arg(&image)
        .arg("--json")
        .arg("--draw")
        .arg(&drawn));
    assert!(out.status.success(), "{}", stderr(&out));
    let p: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let boxes = p["boxes"].as_array().unwrap();
    assert!(!boxes.is_empty(), "{p}");
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("annotations.json")).unwrap())
            .unwrap();
    let first_truth = &truth[0]["annotations"][0];
    let hit = boxes.iter().any(|b| {
        b["label"] == first_truth["label"]
            && (b["x"].as_f64().unwrap() - first_truth["coordinates"]["x"].as_f64().unwrap()).abs()
                < 8.0
            && (b["y"].as_f64().unwrap() - first_truth["coordinates"]["y"].as_f64().unwrap()).abs()
                < 8.0
    });
    assert!(hit, "{p} vs {first_truth}");
    for b in boxes {
        let c = b["confidence"].as_f64().unwrap();
        assert!((0.3..=1.0).contains(&c), "{b}");
        assert!(b["width"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(
        image::open(&drawn).unwrap().to_rgb8().dimensions(),
        (96, 96)
    );
    assert_ne!(
        image::open(&drawn).unwrap().to_rgb8(),
        image::open(&image).unwrap().to_rgb8()
    );

    // Export: a safetensors folder with the config a consumer needs.
    let exported = tmp.path().join("exported");
    let out = run(lathe(&cache)
        .arg("export")
        .arg(&run_dir)
        .args(["--format", "safetensors", "--out"])
        .arg(&exported));
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["lathe"]["task"], "object-detection");
    assert_eq!(config["image_size"], 96);
    assert_eq!(config["strides"], serde_json::json!([16]));
    assert_eq!(config["id2label"]["0"], "Bag");
    assert!(
        config["confidence_threshold"].as_f64().is_some()
            && config["iou_threshold"].as_f64().is_some()
    );
    let st = std::fs::read(exported.join("model.safetensors")).unwrap();
    let names = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    assert!(names.contains(&"head.heatmap.weight".to_string()));
    assert!(names.contains(&"features.17.conv.2.weight".to_string()));
    // The exported folder predicts the same boxes.
    let again = run(lathe(&cache)
        .arg("predict")
        .arg(&exported)
        .arg(&image)
        .arg("--json"));
    let q: serde_json::Value = serde_json::from_str(stdout(&again).trim()).unwrap();
    assert_eq!(q["boxes"], p["boxes"]);
}

fn write(dir: &Path, json: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["a.png", "b.png"] {
        image::RgbImage::new(64, 48).save(dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("annotations.json"), json).unwrap();
    dir.to_path_buf()
}

#[test]
fn check_names_bad_annotation_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let ok_box =
        r#"{"label": "cat", "coordinates": {"x": 20, "y": 20, "width": 10, "height": 10}}"#;
    // A path out of the folder: an error, exit 1, naming the entry.
    let bad = write(
        &tmp.path().join("bad"),
        &format!(
            r#"[{{"image": "../secret.png", "annotations": [{ok_box}]}}, {{"image": "a.png", "annotations": [{ok_box}]}}]"#
        ),
    );
    let out = run(lathe(&cache)
        .args(["check", "--template", "object-detector"])
        .arg(&bad));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("entry 0 (\"../secret.png\")") && text.contains("leaves the dataset folder"),
        "{text}"
    );
    // Clipped box and unknown image: warnings, exit 0.
    let warn = write(
        &tmp.path().join("warn"),
        &format!(
            r#"[{{"image": "a.png", "annotations": [{ok_box}, {{"label": "cat", "coordinates": {{"x": 60, "y": 20, "width": 20, "height": 10}}}}]}}, {{"image": "nope.png", "annotations": []}}, {{"image": "b.png", "annotations": [{ok_box}]}}]"#
        ),
    );
    let out = run(lathe(&cache)
        .args(["check", "--template", "object-detector"])
        .arg(&warn));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("entry 0 (\"a.png\"), box 1 (\"cat\")") && text.contains("clipped"),
        "{text}"
    );
    assert!(
        text.contains("entry 1 (\"nope.png\")") && text.contains("does not exist"),
        "{text}"
    );
    // A label of the wrong type: training refuses with a one-line error naming the entry.
    let typed = write(
        &tmp.path().join("typed"),
        r#"[{"image": "a.png", "annotations": [{"label": ["cat"], "coordinates": {"x": 20, "y": 20, "width": 10, "height": 10}}]}]"#,
    );
    let out = train(
        &cache,
        &typed,
        &tmp.path().join("run"),
        &["--param", "epochs=1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let finished = json_lines(&stdout(&out))
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    let message = finished["outcome"]["message"].as_str().unwrap();
    assert!(
        message.contains("entry 0 (\"a.png\"), box 0: \"label\" must be a non-empty string"),
        "{message}"
    );
}
