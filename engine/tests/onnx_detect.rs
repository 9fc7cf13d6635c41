//! ONNX export of the object detector, checked in ONNX Runtime: a detector trained by the CLI
//! on generated images is exported with `lathe export --format onnx`, validated by
//! `onnx.checker` (full check) and run by ONNX Runtime through `tests/onnx/check.py --rows` (one
//! image per run) on 24 generated images at the model's size; after NMS it must give the same
//! number of boxes as `lathe predict --json` on every image, with the same labels, and
//! coordinates within 1e-4 of the image size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

const SIZE: u32 = 96;
const LABELS: [&str; 3] = ["Trouser", "Bag", "Sneaker"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `n` generated `SIZE`² images with 1–2 objects of 3 classes; returns the image paths.
fn generate(dir: &Path, n: usize, seed: u64) -> Vec<PathBuf> {
    let photos: Vec<image::RgbImage> = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|f| {
            image::open(repo().join("assets/photos").join(f))
                .unwrap()
                .to_rgb8()
        })
        .collect();
    let sprites = detect_synth::load_sprites(&sample().join("train"), &LABELS, 6).unwrap();
    let cfg = SynthConfig {
        num_images: n,
        width: SIZE,
        height: SIZE,
        min_objects: 1,
        max_objects: 2,
        min_size: 0.3,
        max_size: 0.5,
        seed,
        extension: "png".into(),
    };
    detect_synth::generate(dir, &sprites, &photos, &cfg).unwrap();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn detector_agrees_with_onnx_runtime_after_nms() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, data, run_dir) = (
        tmp.path().join("cache"),
        tmp.path().join("data"),
        tmp.path().join("run"),
    );
    generate(&data, 8, 11);
    let inputs = generate(&tmp.path().join("inputs"), 24, 77);
    let out = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "object-detector",
            "--json",
            "--seed",
            "3",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run_dir)
        .args(["--param", &format!("image_size={SIZE}")])
        .args([
            "--param",
            "head_channels=32",
            "--param",
            "validation_split=0",
        ])
        .args(["--param", "batch_size=8", "--param", "learning_rate=0.005"])
        .args(["--param", "epochs=25", "--param", "fine_tune_blocks=2"])
        .args(["--param", "fine_tune_epochs=1"])
        .args(["--param", "confidence_threshold=0.1"]));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let model = tmp.path().join("det.onnx");
    let o = run(lathe(&cache)
        .args(["export", "--format", "onnx", "--json", "--out"])
        .arg(&model)
        .arg(&run_dir));
    assert!(o.status.success(), "export failed: {}", stderr(&o));

    let Some(python) = fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it") else {
        return;
    };
    // The pixels, as float [N, 3, S, S] 0–255 (the images are at the model's size).
    let mut pixels = Vec::new();
    for f in &inputs {
        let img = image::open(f).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (SIZE, SIZE));
        for c in 0..3 {
            for y in 0..SIZE {
                for x in 0..SIZE {
                    pixels.push(f32::from(img.get_pixel(x, y).0[c]));
                }
            }
        }
    }
    let raw = tmp.path().join("image.f32");
    std::fs::write(
        &raw,
        pixels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let spec = tmp.path().join("image.spec.json");
    let s = SIZE as usize;
    std::fs::write(
        &spec,
        serde_json::json!({"image": {"dtype": "float32", "shape": [inputs.len(), 3, s, s], "file": raw}})
            .to_string(),
    )
    .unwrap();
    let out = Command::new(&python)
        .arg(repo().join("tests/onnx/check.py"))
        .arg(&model)
        .arg("--inputs")
        .arg(&spec)
        .arg("--rows")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let onnx: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let meta = &onnx["metadata"];
    assert_eq!(meta["task"], "object-detection");
    assert_eq!(meta["lathe_version"], lathe_engine::VERSION);
    assert_eq!(meta["confidence_threshold"], "0.1");
    assert!(onnx["opsets"]["ai.onnx"].as_i64().unwrap() >= 17);
    let o = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .args(&inputs));
    assert!(o.status.success(), "predict failed: {}", stderr(&o));
    let engine = json_lines(&stdout(&o));
    let rows = onnx["rows"].as_array().unwrap();
    assert_eq!(rows.len(), engine.len());
    let (mut total, mut worst, mut worst_score) = (0usize, 0f64, 0f64);
    for (i, (r, e)) in rows.iter().zip(&engine).enumerate() {
        let eb = e["boxes"].as_array().unwrap();
        let ob = r["boxes"].as_array().unwrap();
        assert_eq!(ob.len(), eb.len(), "image {i}: box count ({r} vs {e})");
        total += eb.len();
        for (k, b) in eb.iter().enumerate() {
            let f = |n: &str| b[n].as_f64().unwrap() / f64::from(SIZE);
            let (cx, cy, w, h) = (f("x"), f("y"), f("width"), f("height"));
            let want = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
            for (j, v) in want.iter().enumerate() {
                worst = worst.max((ob[k][j].as_f64().unwrap() - v).abs());
            }
            assert_eq!(r["labels"][k], b["label"], "image {i} box {k}: label");
            worst_score = worst_score
                .max((r["scores"][k].as_f64().unwrap() - b["confidence"].as_f64().unwrap()).abs());
        }
    }
    eprintln!(
        "detector: {total} boxes on {} images, max |Δ| coordinates {worst:e} of the image, scores {worst_score:e}",
        rows.len()
    );
    assert!(total >= rows.len(), "too few boxes to compare: {total}");
    assert!(
        worst <= 1e-4,
        "coordinates differ by {worst:e} of the image"
    );
    assert!(worst_score <= 1e-4, "scores differ by {worst_score:e}");
}
