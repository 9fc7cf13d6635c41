//! Core ML export of the object detector: a `Pipeline[NeuralNetwork → NonMaximumSuppression]`
//! (specification 3) with Vision's inputs and outputs; and, when `LATHE_COREML_PYTHON` is set,
//! the numpy evaluator's `raw_confidence` / `raw_coordinates` agree with the engine's boxes
//! before NMS (`Detector::raw_files`) to 1e-3 on 24 generated images at the model's size, the
//! whole pipeline (with NMS) is run, fp16 is measured, and broken exports are rejected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::*;
use coreml_proto::proto::{Model, NeuralNetwork, model, neural_network_layer::Layer};
use lathe_engine::export::coreml::spec;
use lathe_engine::nets::detect_head::STRIDE;
use lathe_engine::templates::detect::model::DetectorModel;
use lathe_engine::templates::detect::synth::{self as detect_synth, SynthConfig};
use std::path::{Path, PathBuf};

const SIZE: u32 = 96;
const LABELS: [&str; 3] = ["Trouser", "Bag", "Sneaker"];

/// `n` generated `SIZE`² images with 1–2 objects of 3 classes; returns the image paths.
fn generate(dir: &Path, n: usize, seed: u64) -> Vec<PathBuf> {
    let photos: Vec<image::RgbImage> = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|f| {
            image::open(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../assets/photos")
                    .join(f),
            )
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

fn pipeline(m: &mut Model) -> &mut Vec<Model> {
    match &mut m.r#type {
        Some(model::Type::Pipeline(p)) => &mut p.models,
        other => panic!("not a pipeline: {other:?}"),
    }
}

fn network(m: &mut Model) -> &mut NeuralNetwork {
    match &mut pipeline(m)[0].r#type {
        Some(model::Type::NeuralNetwork(nn)) => nn,
        other => panic!("not a NeuralNetwork: {other:?}"),
    }
}

fn layer<'a>(
    nn: &'a mut NeuralNetwork,
    name: &str,
) -> &'a mut coreml_proto::proto::NeuralNetworkLayer {
    nn.layers.iter_mut().find(|l| l.name == name).unwrap()
}

/// The engine's boxes before NMS (and its final boxes, relative) as the checker reads them.
fn engine_raw(model_dir: &Path, inputs: &[PathBuf], file: &Path, size: u32) {
    let model = DetectorModel::load(model_dir, &candle_core::Device::Cpu).unwrap();
    let det = &model.detector;
    let grid = (size as usize) / STRIDE;
    let raw = det.raw_files(inputs, &candle_core::Device::Cpu);
    let finals = det.detect_files(
        inputs,
        &det.decode,
        &candle_core::Device::Cpu,
        &mut |_, _| {},
    );
    let mut lines = String::new();
    for ((path, r), f) in inputs.iter().zip(raw).zip(finals) {
        let r = r.unwrap();
        let s = size as f32;
        let boxes: Vec<[f32; 6]> = f
            .unwrap()
            .iter()
            .map(|d| {
                let (cx, cy) = d.rect.center();
                let (w, h) = (d.rect.width, d.rect.height);
                [cx / s, cy / s, w / s, h / s, d.label as f32, d.score]
            })
            .collect();
        lines += &serde_json::json!({
            "input": path,
            "grid": [grid, grid],
            "confidence": r.confidence,
            "probability": r.probability,
            "coordinates": r.coordinates,
            "boxes": boxes,
        })
        .to_string();
        lines.push('\n');
    }
    std::fs::write(file, lines).unwrap();
}

#[test]
fn detector_exports_a_vision_pipeline_that_agrees_with_the_engine_before_nms() {
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
        .args(["--param", "fine_tune_epochs=1"]));
    assert!(out.status.success(), "train failed: {}", stderr(&out));

    let model_path = tmp.path().join("det.mlmodel");
    let info = export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 3, "{info}");
    let mut m = spec::read(&model_path).unwrap();
    assert_eq!(m.specification_version, 3);
    let desc = m.description.clone().unwrap();
    let names = |f: &[coreml_proto::proto::FeatureDescription]| {
        f.iter().map(|f| f.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&desc.input),
        ["image", "iouThreshold", "confidenceThreshold"]
    );
    assert!(desc.input[1].r#type.as_ref().unwrap().is_optional);
    assert_eq!(names(&desc.output), ["confidence", "coordinates"]);
    let user = &desc.metadata.as_ref().unwrap().user_defined;
    assert_eq!(user["classes"], r#"["Bag","Sneaker","Trouser"]"#);
    assert_eq!(
        user["com.apple.coreml.model.preview.type"],
        "objectDetector"
    );
    let models = pipeline(&mut m);
    assert_eq!(models.len(), 2);
    let Some(model::Type::NonMaximumSuppression(nms)) = &models[1].r#type else {
        panic!("second model is not NMS")
    };
    assert_eq!(
        nms.confidence_threshold,
        f64::from(0.3f32),
        "the template's default"
    );
    let nn_out = names(&models[0].description.as_ref().unwrap().output);
    assert_eq!(nn_out, ["raw_confidence", "raw_coordinates"]);
    let m16 = tmp.path().join("det16.mlmodel");
    let info16 = export(&cache, &run_dir, &m16, "fp16");
    assert_eq!(info16["specification_version"], 3);
    let (b32, b16) = (
        info["bytes"].as_u64().unwrap(),
        info16["bytes"].as_u64().unwrap(),
    );
    eprintln!("detector export: fp32 {b32} bytes, fp16 {b16} bytes");
    assert!(b16 < b32 * 6 / 10, "fp16 {b16} vs fp32 {b32}");

    let Some(python) = coreml_python() else {
        return;
    };
    let raw = tmp.path().join("raw.jsonl");
    engine_raw(&run_dir.join("model"), &inputs, &raw, SIZE);
    let extra = ["--detector"];
    let (code, report) = check(&python, &model_path, &raw, &extra);
    eprintln!("detector fp32: {report}");
    assert_eq!(code, 0, "checker rejected the export: {report}");
    assert!(report["inputs"].as_u64().unwrap() >= 20, "{report}");
    assert!(report["max_abs_diff"].as_f64().unwrap() <= 1e-3, "{report}");
    // After NMS: every engine box is a Core ML box, except a second class peaking on the same
    // cell (Core ML labels a box by its best class).
    let boxes = &report["boxes_after_nms"];
    let n = |k: &str| boxes[k].as_u64().unwrap();
    assert!(n("engine") > 0, "{report}");
    assert_eq!(
        n("matched") + n("engine_second_class_of_a_box"),
        n("engine"),
        "{report}"
    );
    assert_eq!(n("matched"), n("coreml"), "{report}");
    let (_, r16) = check(&python, &m16, &raw, &["--detector", "--tolerance", "1"]);
    eprintln!("detector fp16: {r16}");

    // Broken: no peak test (every cell keeps its probability); the cell grid not added to the
    // offsets; two labels swapped in the NMS model.
    let broken = tmp.path().join("broken.mlmodel");
    mutate(&model_path, &broken, |m| {
        let l = layer(network(m), "peak.confidence");
        l.input.truncate(1);
        l.layer = Some(Layer::Multiply(coreml_proto::proto::MultiplyLayerParams {
            alpha: 1.0,
        }));
    });
    assert_rejected(&python, &broken, &raw, &extra, "no peak test");
    mutate(&model_path, &broken, |m| {
        let Some(Layer::Bias(b)) = &mut layer(network(m), "box.centre").layer else {
            panic!("box.centre is not a bias layer")
        };
        b.bias.as_mut().unwrap().float_value.fill(0.0);
    });
    assert_rejected(&python, &broken, &raw, &extra, "cell grid dropped");
    mutate(&model_path, &broken, |m| {
        let Some(model::Type::NonMaximumSuppression(nms)) = &mut pipeline(m)[1].r#type else {
            panic!("no NMS")
        };
        let Some(coreml_proto::proto::non_maximum_suppression::ClassLabels::StringClassLabels(v)) =
            &mut nms.class_labels
        else {
            panic!("no string labels")
        };
        v.vector.swap(0, 1);
    });
    assert_rejected(&python, &broken, &raw, &extra, "labels swapped");
}

#[test]
fn training_with_formats_coreml_writes_the_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    generate(&tmp.path().join("data"), 4, 5);
    std::fs::write(
        tmp.path().join("project.toml"),
        "format_version = 1\nname = \"boxes\"\ntemplate = \"object-detector\"\n\
         [data]\ntrain = \"data\"\n\
         [params]\nimage_size = 64\nhead_channels = 8\nepochs = 1\nfine_tune_blocks = 0\n\
         validation_split = 0\n\
         [export]\nformats = [\"safetensors\", \"coreml\"]\n",
    )
    .unwrap();
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&tmp.path().join("cache"))
        .arg("train")
        .arg(tmp.path().join("project.toml"))
        .args(["--json", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let exported = events
        .iter()
        .find(|e| e["event"] == "exported" && e["format"] == "coreml")
        .unwrap_or_else(|| panic!("no Core ML export event in {events:?}"));
    let path = run_dir.join("exports/model.mlmodel");
    assert_eq!(exported["path"].as_str().unwrap(), path.to_str().unwrap());
    let mut m = spec::read(&path).unwrap();
    assert_eq!(pipeline(&mut m).len(), 2);
    assert!(!events.iter().any(
        |e| e["event"] == "warning" && e["message"].as_str().unwrap_or("").contains("Core ML")
    ));
}

/// Crops of the real quokka photo (`assets/detection/quokka`, imgaug's, with its box), each
/// keeping at least half of the animal, half of them mirrored; boxes in the crop's pixels.
fn quokka_crops(n: usize, seed: u64) -> Vec<(image::RgbImage, [f32; 4])> {
    use rand::{Rng, SeedableRng};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/detection/quokka");
    let photo = image::open(dir.join("quokka.jpg")).unwrap().to_rgb8();
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("quokka_annotations.json")).unwrap(),
    )
    .unwrap();
    let b = &v["bounding_boxes"][0];
    let k = |key: &str| b[key].as_f64().unwrap() as f32;
    let (bx0, by0, bx1, by1) = (k("x1"), k("y1"), k("x2"), k("y2"));
    let (w, h) = (photo.width() as f32, photo.height() as f32);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    while out.len() < n {
        let (cw, ch) = (
            w * rng.random_range(0.55..1.0),
            h * rng.random_range(0.55..1.0),
        );
        let (x0, y0) = (
            rng.random_range(0.0..=w - cw),
            rng.random_range(0.0..=h - ch),
        );
        let (ix0, iy0, ix1, iy1) = (bx0.max(x0), by0.max(y0), bx1.min(x0 + cw), by1.min(y0 + ch));
        if (ix1 - ix0).max(0.0) * (iy1 - iy0).max(0.0) < 0.5 * (bx1 - bx0) * (by1 - by0) {
            continue;
        }
        let mut crop =
            image::imageops::crop_imm(&photo, x0 as u32, y0 as u32, cw as u32, ch as u32)
                .to_image();
        let (mut l, mut r) = (ix0 - x0.floor(), ix1 - x0.floor());
        if out.len() % 2 == 1 {
            crop = image::imageops::flip_horizontal(&crop);
            let cwf = crop.width() as f32;
            (l, r) = (cwf - r, cwf - l);
        }
        out.push((crop, [l, iy0 - y0.floor(), r, iy1 - y0.floor()]));
    }
    out
}

/// The quokka measurement recorded in docs/benchmarks.md (`## Core ML detector`): a detector
/// at the template's 416 px trained on 16 crops of the real photo, then fp32 and fp16 exports
/// checked on 24 other crops and the two bundled photos (26 real images at the model's size).
/// `cargo test -p lathe-engine --test coreml_detect -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement (minutes on a CPU); run with --ignored"]
fn quokka_measurement() {
    let Some(python) = coreml_python() else {
        return;
    };
    let size = 416u32;
    let tmp = tempfile::tempdir().unwrap();
    let (cache, data, run_dir, inputs_dir) = (
        tmp.path().join("cache"),
        tmp.path().join("data"),
        tmp.path().join("run"),
        tmp.path().join("inputs"),
    );
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&inputs_dir).unwrap();
    let mut entries = Vec::new();
    for (i, (img, [x0, y0, x1, y1])) in quokka_crops(16, 1).into_iter().enumerate() {
        let name = format!("crop{i:02}.jpg");
        img.save(data.join(&name)).unwrap();
        entries.push(
            serde_json::json!({"image": name, "annotations": [{"label": "quokka",
            "coordinates": {"x": (x0 + x1) / 2.0, "y": (y0 + y1) / 2.0,
                            "width": x1 - x0, "height": y1 - y0}}]}),
        );
    }
    std::fs::write(
        data.join("annotations.json"),
        serde_json::to_string(&entries).unwrap(),
    )
    .unwrap();
    let resize = |img: &image::RgbImage| {
        image::imageops::resize(img, size, size, image::imageops::FilterType::Triangle)
    };
    let mut inputs = Vec::new();
    for (i, (img, _)) in quokka_crops(24, 2).into_iter().enumerate() {
        let p = inputs_dir.join(format!("quokka{i:02}.png"));
        resize(&img).save(&p).unwrap();
        inputs.push(p);
    }
    for name in ["chelsea.png", "coffee.png"] {
        let photo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../assets/photos")
            .join(name);
        let p = inputs_dir.join(name);
        resize(&image::open(photo).unwrap().to_rgb8())
            .save(&p)
            .unwrap();
        inputs.push(p);
    }
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
        .args(["--param", &format!("image_size={size}")])
        .args(["--param", "validation_split=0", "--param", "epochs=20"])
        .args([
            "--param",
            "fine_tune_blocks=2",
            "--param",
            "fine_tune_epochs=3",
        ]));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let raw = tmp.path().join("raw.jsonl");
    engine_raw(&run_dir.join("model"), &inputs, &raw, size);
    for precision in ["fp32", "fp16"] {
        let path = tmp.path().join(format!("quokka-{precision}.mlmodel"));
        let info = export(&cache, &run_dir, &path, precision);
        let tolerance = if precision == "fp32" { "1e-3" } else { "1" };
        let (code, report) = check(
            &python,
            &path,
            &raw,
            &["--detector", "--tolerance", tolerance],
        );
        eprintln!("quokka {precision}: export {info}\nchecker {report}");
        assert_eq!(code, 0, "{report}");
    }
}
