//! Core ML export end to end: `formats = ["coreml"]` in a project and `lathe export --format
//! coreml` write a `NeuralNetworkClassifier` with the right interface, labels, preprocessing and
//! metadata (checked here by decoding the protobuf); and, when `LATHE_COREML_PYTHON` names a
//! Python with coremltools (scripts/test sets it), the independent numpy evaluator of
//! `tests/coreml/` runs every export on real images and must agree with `lathe predict` to 1e-4 —
//! and must reject deliberately broken exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use coreml_proto::proto::{
    Model, model, neural_network_classifier::ClassLabels, neural_network_layer::Layer,
};
use lathe_engine::export::coreml::spec;
use std::path::{Path, PathBuf};
use std::process::Command;

fn classifier(m: &Model) -> &coreml_proto::proto::NeuralNetworkClassifier {
    match &m.r#type {
        Some(model::Type::NeuralNetworkClassifier(c)) => c,
        other => panic!("not a NeuralNetworkClassifier: {other:?}"),
    }
}

fn labels_of(m: &Model) -> Vec<String> {
    match &classifier(m).class_labels {
        Some(ClassLabels::StringClassLabels(v)) => v.vector.clone(),
        other => panic!("no string labels: {other:?}"),
    }
}

fn train(cache: &Path, data: &Path, run_dir: &Path, extra: &[&str]) {
    let out = run(lathe(cache)
        .args(["train", "--template", "image-classifier", "--json"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
}

fn export(cache: &Path, run_dir: &Path, out_path: &Path, precision: &str) -> serde_json::Value {
    let out = run(lathe(cache)
        .args([
            "export",
            "--format",
            "coreml",
            "--json",
            "--precision",
            precision,
        ])
        .arg(run_dir)
        .arg("--out")
        .arg(out_path));
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    json_lines(&stdout(&out)).remove(0)
}

#[test]
fn training_and_export_write_a_classifier_with_labels_preprocessing_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = ["circles", "stripes", "bands"];
    make_dataset(&tmp.path().join("train"), &classes, 6, 0);
    std::fs::write(
        tmp.path().join("project.toml"),
        "format_version = 1\nname = \"shapes\"\ntemplate = \"image-classifier\"\n\
         [data]\ntrain = \"train\"\n[params]\nepochs = 3\nimage_size = 64\n\
         [export]\nformats = [\"safetensors\", \"coreml\"]\n",
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&cache)
        .arg("train")
        .arg(tmp.path().join("project.toml"))
        .args(["--json", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let coreml_event = events
        .iter()
        .find(|e| e["event"] == "exported" && e["format"] == "coreml")
        .unwrap_or_else(|| panic!("no Core ML export event in {events:?}"));
    let path = PathBuf::from(coreml_event["path"].as_str().unwrap());
    assert_eq!(path, run_dir.join("exports/model.mlmodel"));

    let m = spec::read(&path).unwrap();
    assert_eq!(m.specification_version, 1);
    assert_eq!(labels_of(&m), ["bands", "circles", "stripes"]);
    let desc = m.description.as_ref().unwrap();
    assert_eq!(desc.predicted_feature_name, "classLabel");
    assert_eq!(desc.predicted_probabilities_name, "classLabelProbability");
    let input = &desc.input[0];
    assert_eq!(input.name, "image");
    let Some(coreml_proto::proto::feature_type::Type::ImageType(img)) =
        input.r#type.as_ref().unwrap().r#type.as_ref()
    else {
        panic!("input is not an image")
    };
    assert_eq!((img.width, img.height, img.color_space), (64, 64, 20));
    let nn = classifier(&m);
    assert_eq!(nn.label_probability_layer_name, "classLabelProbability");
    let Some(coreml_proto::proto::neural_network_preprocessing::Preprocessor::Scaler(s)) =
        nn.preprocessing[0].preprocessor
    else {
        panic!("no image scaler")
    };
    assert!((s.channel_scale - 1.0 / 255.0).abs() < 1e-9);
    assert!((s.red_bias + 0.485).abs() < 1e-6 && (s.blue_bias + 0.406).abs() < 1e-6);
    let Some(Layer::Scale(scale)) = &nn.layers[0].layer else {
        panic!("first layer is not the 1/std scale")
    };
    assert!((scale.scale.as_ref().unwrap().float_value[1] - 1.0 / 0.224).abs() < 1e-5);
    // MobileNetV2: symmetric padding only, so no padding layers; 52 convolutions.
    let convs = nn
        .layers
        .iter()
        .filter(|l| matches!(l.layer, Some(Layer::Convolution(_))))
        .count();
    assert_eq!(convs, 52);
    assert!(
        !nn.layers
            .iter()
            .any(|l| matches!(l.layer, Some(Layer::Padding(_))))
    );
    let meta = desc.metadata.as_ref().unwrap();
    assert!(meta.short_description.contains("MobileNetV2"));
    assert!(!meta.author.is_empty() && meta.license.contains("BSD-3-Clause"));
    let user = &meta.user_defined;
    assert_eq!(user["classes"], r#"["bands","circles","stripes"]"#);
    let params: serde_json::Value = serde_json::from_str(&user["training_params"]).unwrap();
    assert_eq!(params["epochs"], 3);
    assert_eq!(user["data_blake3_train"].len(), 64);
    assert_eq!(
        user["com.apple.coreml.model.preview.type"],
        "imageClassifier"
    );

    // fp16: specification 2, about half the size, every layer weight in half precision.
    let fp16 = tmp.path().join("out/fp16.mlmodel");
    let info = export(&cache, &run_dir, &fp16, "fp16");
    assert_eq!(info["specification_version"], 2);
    let fp32_bytes = std::fs::metadata(&path).unwrap().len();
    let fp16_bytes = info["bytes"].as_u64().unwrap();
    assert_eq!(fp16_bytes, std::fs::metadata(&fp16).unwrap().len());
    assert!(
        fp16_bytes * 100 < fp32_bytes * 55,
        "fp16 {fp16_bytes} vs fp32 {fp32_bytes}"
    );
    let m16 = spec::read(&fp16).unwrap();
    for l in &classifier(&m16).layers {
        if let Some(Layer::Convolution(c)) = &l.layer {
            let w = c.weights.as_ref().unwrap();
            assert!(w.float_value.is_empty() && !w.float16_value.is_empty());
        }
    }

    // Metadata flags; --out to a folder writes model.mlmodel inside it.
    let dir = tmp.path().join("folder");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(lathe(&cache)
        .args([
            "export",
            "--format",
            "coreml",
            "--author",
            "Ada",
            "--license",
            "MIT",
        ])
        .args(["--model-version", "2.1"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = spec::read(&dir.join("model.mlmodel"))
        .unwrap()
        .description
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!(
        (
            meta.author.as_str(),
            meta.license.as_str(),
            meta.version_string.as_str()
        ),
        ("Ada", "MIT", "2.1")
    );

    // Core ML options with another format: a clear error.
    let out = run(lathe(&cache)
        .args(["export", "--format", "safetensors", "--precision", "fp16"])
        .arg(&run_dir));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("apply to --format coreml and onnx"),
        "{}",
        stderr(&out)
    );

    // Not a model: one line naming the folder, exit 1.
    let out = run(lathe(&cache)
        .args(["export", "--format", "coreml"])
        .arg(tmp.path().join("train")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not a Lathe model"), "{err}");
}

// ---- numeric checks with the independent evaluator (needs LATHE_COREML_PYTHON) ----

/// Image size of the numerically checked models: small enough for the numpy evaluator to run
/// dozens of images in seconds, and even at every stride-2 layer (as 224 is), so TensorFlow
/// "same" padding is asymmetric exactly where it is at 224.
const CHECK_SIZE: u32 = 96;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small training set of real images: the first `per_class` of 4 sample classes.
fn sample_subset(root: &Path, per_class: usize) -> Vec<&'static str> {
    let classes = vec!["Bag", "Sandal", "Trouser", "Pullover"];
    for c in &classes {
        let src = sample().join("train").join(c);
        let dst = root.join(c);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    classes
}

/// ≥ 20 real inputs at the model size: sample test images of `classes` (in class folders) and
/// the two photos, resized by the engine's own resizer so `lathe predict` sees them unchanged.
fn checker_inputs(root: &Path, classes: &[&str], per_class: usize, size: u32) -> Vec<PathBuf> {
    use lathe_engine::data::image_decode::{decode_rgb, resize};
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    for c in classes {
        let mut files: Vec<_> = std::fs::read_dir(sample().join("test").join(c))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        sources.extend(
            files
                .into_iter()
                .take(per_class)
                .map(|f| (c.to_string(), f)),
        );
    }
    for photo in ["chelsea.png", "coffee.png"] {
        sources.push(("photos".into(), repo().join("assets/photos").join(photo)));
    }
    let mut out = Vec::new();
    for (folder, src) in sources {
        let rgb = decode_rgb(&std::fs::read(&src).unwrap()).unwrap();
        let dst = root.join(folder).join(src.file_name().unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        resize(&rgb, size, size).unwrap().save(&dst).unwrap();
        out.push(dst);
    }
    out
}

/// `lathe predict --json` with every label, written as JSON lines for the checker.
fn predictions(cache: &Path, run_dir: &Path, inputs: &[PathBuf], file: &Path) {
    let out = run(lathe(cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(run_dir)
        .args(inputs));
    assert!(out.status.success(), "predict failed: {}", stderr(&out));
    std::fs::write(file, stdout(&out)).unwrap();
}

/// Runs the checker; returns (exit code, its JSON report).
fn check(python: &Path, model: &Path, preds: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(python)
        .arg(repo().join("tests/coreml/check.py"))
        .arg(model)
        .arg(preds)
        .args(extra)
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "checker printed no JSON:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (out.status.code().unwrap_or(-1), report)
}

fn assert_agrees(python: &Path, model: &Path, preds: &Path, what: &str) -> f64 {
    let (code, report) = check(python, model, preds, &[]);
    eprintln!("{what}: {report}");
    assert_eq!(code, 0, "{what}: checker rejected the export: {report}");
    assert!(report["inputs"].as_u64().unwrap() >= 20);
    report["max_abs_diff"].as_f64().unwrap()
}

/// Writes a modified copy of `src`.
fn mutate(src: &Path, dst: &Path, f: impl FnOnce(&mut Model)) {
    let mut m = spec::read(src).unwrap();
    f(&mut m);
    spec::write(dst, &m).unwrap();
}

fn nn_mut(m: &mut Model) -> &mut coreml_proto::proto::NeuralNetworkClassifier {
    match &mut m.r#type {
        Some(model::Type::NeuralNetworkClassifier(c)) => c,
        _ => panic!("not a classifier"),
    }
}

#[test]
fn mobilenet_v2_exports_agree_with_the_engine_and_broken_exports_are_caught() {
    let Some(python) = coreml_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let classes = sample_subset(&tmp.path().join("train"), 8);
    let inputs = checker_inputs(&tmp.path().join("inputs"), &classes, 5, CHECK_SIZE);
    assert!(inputs.len() >= 20);
    let size = format!("image_size={CHECK_SIZE}");
    let variants: [(&str, Vec<&str>); 3] = [
        ("logistic", vec!["--epochs", "5", "--param", &size]),
        (
            "mlp",
            vec![
                "--epochs",
                "5",
                "--param",
                &size,
                "--param",
                "head=mlp",
                "--param",
                "mlp_hidden=32",
            ],
        ),
        (
            "fine-tuned",
            vec![
                "--epochs",
                "3",
                "--param",
                &size,
                "--param",
                "fine_tune_blocks=2",
                "--param",
                "fine_tune_epochs=1",
                "--param",
                "fine_tune_batch_size=8",
            ],
        ),
    ];
    let mut logistic = None;
    for (name, args) in &variants {
        let run_dir = tmp.path().join(name);
        train(&cache, &tmp.path().join("train"), &run_dir, args);
        let preds = tmp.path().join(format!("{name}.jsonl"));
        predictions(&cache, &run_dir, &inputs, &preds);
        let model = tmp.path().join(format!("{name}.mlmodel"));
        export(&cache, &run_dir, &model, "fp32");
        let d = assert_agrees(&python, &model, &preds, &format!("MobileNetV2 {name} fp32"));
        assert!(d <= 1e-4);
        let model16 = tmp.path().join(format!("{name}-fp16.mlmodel"));
        export(&cache, &run_dir, &model16, "fp16");
        let (_, r16) = check(&python, &model16, &preds, &["--tolerance", "1"]);
        eprintln!("MobileNetV2 {name} fp16: {r16}");
        assert!(r16["max_abs_diff"].as_f64().unwrap() < 0.05, "{r16}");
        if logistic.is_none() {
            logistic = Some((model, preds));
        }
    }

    // Deliberately wrong exports must fail the check.
    let (model, preds) = logistic.unwrap();
    let broken = tmp.path().join("broken.mlmodel");
    type Breakage = Box<dyn Fn(&mut Model)>;
    let cases: [(&str, Breakage); 4] = [
        (
            "scaler dropped",
            Box::new(|m| nn_mut(m).preprocessing.clear()),
        ),
        (
            "normalization scale set to 1",
            Box::new(|m| {
                let Some(Layer::Scale(s)) = &mut nn_mut(m).layers[0].layer else {
                    panic!("first layer is not the scale")
                };
                s.scale.as_mut().unwrap().float_value = vec![1.0; 3];
            }),
        ),
        (
            "two labels swapped",
            Box::new(|m| {
                if let Some(ClassLabels::StringClassLabels(v)) = &mut nn_mut(m).class_labels {
                    v.vector.swap(0, 1);
                }
            }),
        ),
        (
            "one stem weight negated",
            Box::new(|m| {
                let conv = nn_mut(m)
                    .layers
                    .iter_mut()
                    .find_map(|l| match &mut l.layer {
                        Some(Layer::Convolution(c)) => Some(c),
                        _ => None,
                    })
                    .unwrap();
                let w = &mut conv.weights.as_mut().unwrap().float_value;
                let (i, _) = w
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap();
                w[i] = -w[i];
            }),
        ),
    ];
    for (what, f) in cases {
        mutate(&model, &broken, f);
        let (code, report) = check(&python, &broken, &preds, &[]);
        eprintln!("broken ({what}): {report}");
        assert_eq!(
            code, 1,
            "checker accepted a broken export ({what}): {report}"
        );
    }
}

/// EfficientNet-Lite0 (TF "same" padding: asymmetric padding layers) when its weights are present.
#[test]
fn efficientnet_lite0_export_agrees_with_the_engine_when_its_weights_are_present() {
    let (Some(python), Some(weights)) = (coreml_python(), efficientnet_lite0()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let classes = sample_subset(&tmp.path().join("train"), 8);
    let inputs = checker_inputs(&tmp.path().join("inputs"), &classes, 5, CHECK_SIZE);
    let run_dir = tmp.path().join("run");
    let size = format!("image_size={CHECK_SIZE}");
    let weights = weights.to_string_lossy().into_owned();
    train(
        &cache,
        &tmp.path().join("train"),
        &run_dir,
        &[
            "--epochs",
            "5",
            "--param",
            &size,
            "--param",
            "backbone=efficientnet_lite0",
            "--weights",
            &weights,
        ],
    );
    let preds = tmp.path().join("preds.jsonl");
    predictions(&cache, &run_dir, &inputs, &preds);
    let model = tmp.path().join("lite0.mlmodel");
    export(&cache, &run_dir, &model, "fp32");
    let m = spec::read(&model).unwrap();
    let pads = classifier(&m)
        .layers
        .iter()
        .filter(|l| matches!(l.layer, Some(Layer::Padding(_))))
        .count();
    // Stem and the four stride-2 depthwise layers pad one more row/column at the bottom/right.
    assert_eq!(pads, 5);
    assert!(
        m.description
            .unwrap()
            .metadata
            .unwrap()
            .license
            .contains("Apache-2.0")
    );
    let d = assert_agrees(&python, &model, &preds, "EfficientNet-Lite0 logistic fp32");
    assert!(d <= 1e-4);
}

/// The evaluator itself, against plain loops on specs written by coremltools' own builder.
#[test]
fn the_numpy_evaluator_matches_references_on_coremltools_built_specs() {
    let Some(python) = coreml_python() else {
        return;
    };
    let out = Command::new(python)
        .arg(repo().join("tests/coreml/test_eval_spec.py"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
