//! ONNX export, checked in ONNX Runtime: models trained by the CLI on generated data are
//! exported with `lathe export --format onnx`, validated by `onnx.checker` (full check) and run
//! by ONNX Runtime through `tests/onnx/check.py` (the python of `scripts/onnx-env.sh`, in
//! `LATHE_ONNX_PYTHON`); their probabilities must agree with `lathe predict --json` to 1e-5
//! with the same top label on every input (regressors: the value to 1e-5 relative). The
//! Python example of docs/export.md runs on an export too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ONNX checker's Python (`scripts/onnx-env.sh` prints it), as [`fetched`].
fn onnx_python() -> Option<PathBuf> {
    fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it")
}

/// Runs `tests/onnx/check.py` on `model` (with the inputs of `spec`, when given); its JSON.
fn check(python: &Path, model: &Path, spec: Option<&Path>) -> serde_json::Value {
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/onnx/check.py")).arg(model);
    if let Some(s) = spec {
        cmd.arg("--inputs").arg(s);
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

/// Writes `values` as raw little-endian f32 and a spec naming them input `name` of `shape`.
fn f32_spec(dir: &Path, name: &str, shape: &[usize], values: &[f32]) -> PathBuf {
    let raw = dir.join(format!("{name}.f32"));
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    let spec = dir.join(format!("{name}.spec.json"));
    let json = serde_json::json!({ name: {"dtype": "float32", "shape": shape, "file": raw} });
    std::fs::write(&spec, json.to_string()).unwrap();
    spec
}

fn export_onnx(cache: &Path, run_dir: &Path, out: &Path) -> serde_json::Value {
    let o = run(lathe(cache)
        .args(["export", "--format", "onnx", "--json", "--out"])
        .arg(out)
        .arg(run_dir));
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    json_lines(&stdout(&o)).remove(0)
}

fn predictions(cache: &Path, run_dir: &Path, inputs: &[PathBuf]) -> Vec<serde_json::Value> {
    let o = run(lathe(cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(run_dir)
        .args(inputs));
    assert!(o.status.success(), "predict failed: {}", stderr(&o));
    json_lines(&stdout(&o))
}

/// Largest |Δp| between ONNX Runtime's `probabilities` (in `labels` order) and the engine's;
/// asserts the same top label on every input and ONNX's `label` output where it has one.
fn compare_probabilities(
    name: &str,
    onnx: &serde_json::Value,
    labels: &[String],
    engine: &[serde_json::Value],
    tolerance: f64,
) -> f64 {
    let probs = onnx["outputs"]["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), engine.len(), "{name}: one output per input");
    let mut worst = 0f64;
    for (i, (p, e)) in probs.iter().zip(engine).enumerate() {
        let p: Vec<f64> = p
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), labels.len(), "{name}: one probability per label");
        for (l, label) in labels.iter().enumerate() {
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p[l] - q).abs());
        }
        // The first of equal maxima, as ONNX's ArgMax and the engine pick (forests tie at 0.5).
        let mut best = 0;
        for (k, v) in p.iter().enumerate() {
            if *v > p[best] {
                best = k;
            }
        }
        let top = labels[best].clone();
        assert_eq!(
            e["label"],
            top.as_str(),
            "{name}: input {i}: top label differs"
        );
        if let Some(l) = onnx["outputs"].get("label") {
            assert_eq!(l[i], top.as_str(), "{name}: input {i}: the label output");
        }
    }
    assert!(
        worst <= tolerance,
        "{name}: |Δp| = {worst:e} > {tolerance:e}"
    );
    worst
}

// ---- tables ----

/// A deterministic pseudo-random stream.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Rows of `a` (number, some NA), `b` (number), `color` (3 levels, some empty), `shade`
/// (12 levels, unordered effect: set splits), `flag` (yes/no, some missing) and targets `kind`
/// (3 classes), `pass` (2) and `score` (a number). With `unusual`, numbers beyond the range,
/// `-inf`, unseen levels and unreadable numbers.
fn table_csv(path: &Path, rows: usize, seed: u64, unusual: bool) {
    let mut rng = Lcg(seed);
    let mut text = String::from("a,b,color,shade,flag,kind,pass,score\n");
    for i in 0..rows {
        let a = rng.next() * 10.0;
        let b = rng.next() * 4.0 - 2.0;
        let color = ["red", "green", "blue"][(rng.next() * 3.0) as usize % 3];
        let s = (rng.next() * 12.0) as usize % 12;
        let flag = rng.next() < 0.5;
        let score = a * 2.0
            + b * b * 3.0
            + if color == "blue" { 5.0 } else { 0.0 }
            + if flag { 2.0 } else { 0.0 }
            + [0.0, 4.0, 1.0, 5.0, 0.5, 3.0, 6.0, 2.0, 0.0, 4.5, 1.5, 3.5][s]
            + rng.next() * 0.5;
        let kind = if score < 11.0 {
            "low"
        } else if score < 18.0 {
            "mid"
        } else {
            "high"
        };
        let pass = if score > 14.0 { "yes" } else { "no" };
        let mut a_text = if i % 17 == 5 {
            "NA".to_string()
        } else {
            format!("{a:.3}")
        };
        let mut b_text = format!("{b:.3}");
        let mut color = if i % 23 == 7 { "" } else { color };
        let mut shade = format!("s{s}");
        let flag = match (i % 19 == 3, flag) {
            (true, _) => "",
            (false, true) => "yes",
            (false, false) => "no",
        };
        if unusual {
            match i % 10 {
                1 => a_text = "25.5".into(),
                2 => b_text = "-inf".into(),
                3 => color = "purple",
                4 => shade = "s99".into(),
                5 => a_text = "n/a".into(),
                _ => {}
            }
        }
        text += &format!("{a_text},{b_text},{color},{shade},{flag},{kind},{pass},{score:.3}\n");
    }
    std::fs::write(path, text).unwrap();
}

/// The ONNX input of the rows of `csv` as the export documents it (`metadata_props["columns"]`):
/// numbers (NaN missing), booleans 1/0/NaN, level codes (NaN when not a level).
fn table_features(csv: &Path, columns: &serde_json::Value) -> (Vec<f32>, usize) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let columns = columns.as_array().unwrap();
    let mut out = Vec::new();
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for c in columns {
            let name = c["name"].as_str().unwrap();
            let j = header.iter().position(|h| *h == name).unwrap();
            let cell = cells[j].trim();
            let v = match c["kind"].as_str().unwrap() {
                "numeric" => cell.parse::<f64>().map(|v| v as f32).unwrap_or(f32::NAN),
                "boolean" => match cell {
                    "yes" => 1.0,
                    "no" => 0.0,
                    _ => f32::NAN,
                },
                _ => c["levels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|l| l == cell)
                    .map_or(f32::NAN, |k| k as f32),
            };
            out.push(v);
        }
        rows += 1;
    }
    (out, rows)
}

/// (name, template, target, algorithm).
const TABLE_VARIANTS: [(&str, &str, &str, &str); 10] = [
    (
        "trees-multiclass",
        "tabular-classifier",
        "kind",
        "boosted_trees",
    ),
    (
        "trees-binary",
        "tabular-classifier",
        "pass",
        "boosted_trees",
    ),
    (
        "trees-regression",
        "tabular-regressor",
        "score",
        "boosted_trees",
    ),
    ("linear-multiclass", "tabular-classifier", "kind", "linear"),
    ("linear-regression", "tabular-regressor", "score", "linear"),
    (
        "forest-multiclass",
        "tabular-classifier",
        "kind",
        "random_forest",
    ),
    (
        "forest-binary",
        "tabular-classifier",
        "pass",
        "random_forest",
    ),
    (
        "forest-regression",
        "tabular-regressor",
        "score",
        "random_forest",
    ),
    ("mlp-multiclass", "tabular-classifier", "kind", "mlp"),
    ("mlp-regression", "tabular-regressor", "score", "mlp"),
];

#[test]
fn table_models_agree_with_onnx_runtime() {
    let Some(python) = onnx_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let train_csv = tmp.path().join("train.csv");
    table_csv(&train_csv, 800, 1, false);
    let rows = tmp.path().join("rows.csv");
    table_csv(&rows, 40, 7, true);
    for (name, template, target, algorithm) in TABLE_VARIANTS {
        let ignore: Vec<&str> = ["kind", "pass", "score"]
            .into_iter()
            .filter(|t| *t != target)
            .collect();
        let run_dir = tmp.path().join(name);
        let o = run(lathe(&cache)
            .args([
                "train",
                "--json",
                "--template",
                template,
                "--target",
                target,
            ])
            .arg("--param")
            .arg(format!("ignore_columns={}", ignore.join(",")))
            .arg("--param")
            .arg(format!("algorithm={algorithm}"))
            .args(["--param", "forest_trees=12", "--param", "mlp_hidden=16"])
            .args(["--param", "mlp_epochs=40"])
            .arg("--data")
            .arg(&train_csv)
            .arg("--out")
            .arg(&run_dir));
        assert!(o.status.success(), "{name}: train failed: {}", stderr(&o));
        let model = tmp.path().join(format!("{name}.onnx"));
        let info = export_onnx(&cache, &run_dir, &model);
        assert_eq!(info["format"], "onnx");
        assert_eq!(info["opset"], 17);
        let described = check(&python, &model, None);
        let meta = &described["metadata"];
        assert_eq!(meta["target"], target);
        assert_eq!(meta["lathe_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(meta["template"], template);
        assert_eq!(meta["data_blake3_train"].as_str().unwrap().len(), 64);
        assert_eq!(described["opsets"]["ai.onnx"], 17);
        let columns: serde_json::Value =
            serde_json::from_str(meta["columns"].as_str().unwrap()).unwrap();
        let (features, n) = table_features(&rows, &columns);
        assert!(n >= 20);
        let spec = f32_spec(
            tmp.path(),
            "features",
            &[n, columns.as_array().unwrap().len()],
            &features,
        );
        let onnx = check(&python, &model, Some(&spec));
        let engine = predictions(&cache, &run_dir, std::slice::from_ref(&rows));
        assert_eq!(engine.len(), n);
        if template == "tabular-regressor" {
            let values = onnx["outputs"]["value"].as_array().unwrap();
            let mut worst = 0f64;
            for (v, e) in values.iter().zip(&engine) {
                let v = v[0].as_f64().unwrap();
                let q = e["value"].as_f64().unwrap();
                worst = worst.max((v - q).abs() / q.abs().max(1.0));
            }
            assert!(worst <= 1e-5, "{name}: relative |Δ| = {worst:e}");
            eprintln!("{name}: relative |Δvalue| = {worst:e} on {n} rows");
        } else {
            let labels: Vec<String> =
                serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
            let worst = compare_probabilities(name, &onnx, &labels, &engine, 1e-5);
            eprintln!("{name}: |Δp| = {worst:e} on {n} rows");
            if name == "trees-multiclass" {
                docs_example(&python, &model, &labels);
                old_model_folder_exports(&cache, &python, &run_dir, tmp.path());
            }
        }
    }
}

/// Runs the Python example of docs/export.md ("Use it from your app") on `model`: it prints a
/// label and a probability per label.
fn docs_example(python: &Path, model: &Path, labels: &[String]) {
    let doc = std::fs::read_to_string(repo().join("docs/export.md")).unwrap();
    let after = doc
        .split("<!-- onnx-example -->")
        .nth(1)
        .expect("docs/export.md has the example");
    let code = after
        .split("```python\n")
        .nth(1)
        .and_then(|c| c.split("```").next())
        .expect("a python block after the marker");
    assert!(
        code.lines().count() <= 10,
        "the example stays within 10 lines"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .arg(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the docs example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (label, rest) = text.trim().split_once(' ').unwrap();
    assert!(labels.iter().any(|l| l == label), "{text}");
    for l in labels {
        assert!(rest.contains(&format!("'{l}'")), "{text}");
    }
}

/// A model folder as older Lathe versions left it (no `manifest.json`) exports too, without the
/// provenance entries.
fn old_model_folder_exports(cache: &Path, python: &Path, run_dir: &Path, tmp: &Path) {
    let old = tmp.join("old-model");
    std::fs::create_dir_all(&old).unwrap();
    for e in std::fs::read_dir(run_dir.join("model")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "manifest.json" {
            std::fs::copy(&p, old.join(p.file_name().unwrap())).unwrap();
        }
    }
    let out = tmp.join("old.onnx");
    export_onnx(cache, &old, &out);
    let described = check(python, &out, None);
    assert!(described["metadata"].get("data_blake3_train").is_none());
    assert!(described["metadata"]["labels"].is_string());
}

// ---- images ----

/// Input size of the image tests (small to keep them fast; the export takes any size).
const IMAGE_SIZE: u32 = 96;

/// The first `per_class` training images of 4 sample classes, copied into `root`.
fn sample_subset(root: &Path, per_class: usize) -> Vec<&'static str> {
    let classes = vec!["Bag", "Sandal", "Trouser", "Pullover"];
    for c in &classes {
        let dst = root.join(c);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(sample().join("train").join(c))
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

/// Test images (sample test images of `classes` and two photos) resized by the engine to the
/// model's size and saved as PNG, so the engine and ONNX Runtime see the same pixels.
fn image_inputs(root: &Path, classes: &[&str], per_class: usize) -> Vec<PathBuf> {
    use lathe_engine::data::image_decode::{decode_rgb, resize};
    let mut sources: Vec<PathBuf> = Vec::new();
    for c in classes {
        let mut files: Vec<_> = std::fs::read_dir(sample().join("test").join(c))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        sources.extend(files.into_iter().take(per_class));
    }
    for photo in ["chelsea.png", "coffee.png"] {
        sources.push(repo().join("assets/photos").join(photo));
    }
    std::fs::create_dir_all(root).unwrap();
    let mut out = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let rgb = decode_rgb(&std::fs::read(src).unwrap()).unwrap();
        let dst = root.join(format!("{i:02}.png"));
        resize(&rgb, IMAGE_SIZE, IMAGE_SIZE)
            .unwrap()
            .save(&dst)
            .unwrap();
        out.push(dst);
    }
    out
}

/// The pixels of `files` as float `[N, 3, H, W]` values 0–255.
fn image_tensor(files: &[PathBuf]) -> Vec<f32> {
    let mut out = Vec::new();
    for f in files {
        let img = image::open(f).unwrap().to_rgb8();
        let (w, h) = img.dimensions();
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    out.push(f32::from(img.get_pixel(x, y).0[c]));
                }
            }
        }
    }
    out
}

#[test]
fn image_classifiers_agree_with_onnx_runtime() {
    let Some(python) = onnx_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let classes = sample_subset(&tmp.path().join("train"), 8);
    let inputs = image_inputs(&tmp.path().join("inputs"), &classes, 5);
    assert!(inputs.len() >= 20);
    let n = inputs.len();
    let size = format!("image_size={IMAGE_SIZE}");
    let s = IMAGE_SIZE as usize;
    let spec = f32_spec(tmp.path(), "image", &[n, 3, s, s], &image_tensor(&inputs));
    let variants: [(&str, Vec<&str>); 2] = [
        (
            "logistic",
            vec![
                "--epochs",
                "5",
                "--param",
                &size,
                "--param",
                "head=logistic",
            ],
        ),
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
    ];
    for (name, args) in &variants {
        let run_dir = tmp.path().join(name);
        let o = run(lathe(&cache)
            .args(["train", "--template", "image-classifier", "--json"])
            .args(args)
            .arg("--data")
            .arg(tmp.path().join("train"))
            .arg("--out")
            .arg(&run_dir));
        assert!(o.status.success(), "{name}: train failed: {}", stderr(&o));
        let model = tmp.path().join(format!("{name}.onnx"));
        export_onnx(&cache, &run_dir, &model);
        let onnx = check(&python, &model, Some(&spec));
        let meta = &onnx["metadata"];
        assert_eq!(meta["template"], "image-classifier");
        assert!(meta["preprocessing"].as_str().unwrap().contains("255"));
        let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
        let engine = predictions(&cache, &run_dir, &inputs);
        // MobileNetV2 in f32 through different CPU kernels (candle's and ONNX Runtime's
        // convolutions sum in other orders): 1e-4.
        let worst = compare_probabilities(name, &onnx, &labels, &engine, 1e-4);
        eprintln!("image {name}: |Δp| = {worst:e} on {n} images");
        // fp16 weights: about half the file, the same top label, |Δp| ≤ 2e-3.
        let half = tmp.path().join(format!("{name}-fp16.onnx"));
        let o = run(lathe(&cache)
            .args([
                "export",
                "--format",
                "onnx",
                "--precision",
                "fp16",
                "--json",
                "--out",
            ])
            .arg(&half)
            .arg(&run_dir));
        assert!(o.status.success(), "fp16 export failed: {}", stderr(&o));
        let described = json_lines(&stdout(&o)).remove(0);
        assert_eq!(described["precision"], "fp16");
        let (full, halved) = (
            std::fs::metadata(&model).unwrap().len(),
            std::fs::metadata(&half).unwrap().len(),
        );
        assert!(
            (halved as f64) < 0.6 * full as f64,
            "fp16 file {halved} B vs fp32 {full} B"
        );
        let onnx16 = check(&python, &half, Some(&spec));
        assert_eq!(onnx16["metadata"]["precision"], "fp16");
        let worst16 = compare_probabilities(name, &onnx16, &labels, &engine, 2e-3);
        eprintln!(
            "image {name} fp16: |Δp| = {worst16:e} on {n} images, {halved} B (fp32 {full} B)"
        );
    }
}

/// A 64² image with a red disc and/or green stripes, varied by `i`.
fn tagged_image(disc: bool, stripes: bool, i: usize) -> image::RgbImage {
    let mut rng = Lcg(i as u64 * 7 + 1);
    let cx = 16 + (rng.next() * 32.0) as i32;
    let cy = 16 + (rng.next() * 32.0) as i32;
    let r = 6 + (rng.next() * 6.0) as i32;
    image::RgbImage::from_fn(64, 64, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let n = (rng.next() * 40.0) as u8;
        if disc && (x - cx).pow(2) + (y - cy).pow(2) < r * r {
            image::Rgb([200 + n / 2, 30 + n, 30])
        } else if stripes && (x / 3) % 3 == 0 {
            image::Rgb([30, 170 + n, 40])
        } else {
            image::Rgb([20 + n, 20 + n / 2, 30])
        }
    })
}

/// `n` images cycling through {none, disc, stripes, both}, with `labels.csv`; their paths.
fn tagged_set(dir: &Path, n: usize, offset: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("image,labels\n");
    let mut paths = Vec::new();
    for i in 0..n {
        let (disc, stripes) = ((i % 4) & 1 == 1, (i % 4) & 2 == 2);
        let name = format!("img{:03}.png", i + offset);
        tagged_image(disc, stripes, i + offset)
            .save(dir.join(&name))
            .unwrap();
        paths.push(dir.join(&name));
        let labels: Vec<&str> = [(disc, "disc"), (stripes, "stripes")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, l)| l)
            .collect();
        csv += &format!("{name},{}\n", labels.join(";"));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
    paths
}

#[test]
fn multi_label_image_classifier_agrees_with_onnx_runtime() {
    let Some(python) = onnx_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    tagged_set(&tmp.path().join("train"), 32, 0);
    let inputs = tagged_set(&tmp.path().join("inputs"), 24, 500);
    let run_dir = tmp.path().join("run");
    let o = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "multi-label-image-classifier",
            "--json",
        ])
        .args(["--epochs", "20", "--param", "image_size=64", "--data"])
        .arg(tmp.path().join("train"))
        .arg("--out")
        .arg(&run_dir));
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let model = tmp.path().join("ml.onnx");
    export_onnx(&cache, &run_dir, &model);
    let n = inputs.len();
    let spec = f32_spec(tmp.path(), "image", &[n, 3, 64, 64], &image_tensor(&inputs));
    let onnx = check(&python, &model, Some(&spec));
    let meta = &onnx["metadata"];
    let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
    let threshold: f64 = meta["threshold"].as_str().unwrap().parse().unwrap();
    assert!(onnx["outputs"].get("label").is_none());
    let engine = predictions(&cache, &run_dir, &inputs);
    let probs = onnx["outputs"]["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), n);
    let mut worst = 0f64;
    for (i, (p, e)) in probs.iter().zip(&engine).enumerate() {
        for (l, label) in labels.iter().enumerate() {
            let p = p[l].as_f64().unwrap();
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p - q).abs());
            assert_eq!(p >= threshold, q >= threshold, "input {i}, label {label}");
        }
    }
    assert!(worst <= 1e-4, "multi-label: |Δp| = {worst:e}");
    eprintln!("multi-label: |Δp| = {worst:e} on {n} images");
}

// ---- text ----

const TOPICS: [(&str, [&str; 6]); 3] = [
    (
        "cooking",
        ["oven", "flour", "butter", "simmer", "garlic", "recipe"],
    ),
    (
        "sports",
        ["goal", "match", "striker", "referee", "league", "coach"],
    ),
    (
        "tech",
        [
            "compiler", "kernel", "server", "python", "database", "cache",
        ],
    ),
];
const COMMON: [&str; 6] = ["the", "a", "is", "and", "today", "we"];

fn sentence(t: usize, i: usize) -> String {
    let mut rng = Lcg((t * 7919 + i * 104_729 + 17) as u64);
    let mut next = |n: usize| (rng.next() * n as f64) as usize % n;
    let mut words = Vec::new();
    for k in 0..9 {
        // Mostly the topic's words, sometimes another topic's: probabilities are not all ~1.
        let topic = if next(5) == 0 { next(3) } else { t };
        words.push(if k % 2 == 0 {
            TOPICS[topic].1[next(6)]
        } else {
            COMMON[next(6)]
        });
    }
    format!("{}.", words.join(" "))
}

#[test]
fn maxent_text_classifier_agrees_with_onnx_runtime() {
    use lathe_engine::templates::text::features::terms;
    let Some(python) = onnx_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for (t, (name, _)) in TOPICS.iter().enumerate() {
        let dir = tmp.path().join("train").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..20 {
            std::fs::write(dir.join(format!("{i:03}.txt")), sentence(t, i)).unwrap();
        }
    }
    let run_dir = tmp.path().join("run");
    let o = run(lathe(&cache)
        .args(["train", "--template", "text-classifier", "--json"])
        .args(["--param", "algorithm=maxent", "--data"])
        .arg(tmp.path().join("train"))
        .arg("--out")
        .arg(&run_dir));
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let model = tmp.path().join("text.onnx");
    export_onnx(&cache, &run_dir, &model);
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("text.tokenizer.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["input"], "counts");

    // 24 texts: new sentences of each topic, a mixed one, unknown words only, stop words only.
    let mut texts: Vec<String> = (0..7)
        .flat_map(|i| (0..3).map(move |t| sentence(t, 500 + i)))
        .collect();
    texts.push("Garlic and the KERNEL, simmer the server! Goal?".into());
    texts.push("zzz qqq unknown words only".into());
    texts.push("the the the the a".into());
    let dir = tmp.path().join("texts");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let f = dir.join(format!("{i:02}.txt"));
            std::fs::write(&f, t).unwrap();
            f
        })
        .collect();

    // The engine's own in-vocabulary term counts of every text, in vocabulary order.
    let loaded = lathe_engine::templates::text::model::TextModel::load(
        &run_dir.join("model"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let lathe_engine::templates::text::model::Classifier::Maxent { vectorizer, .. } =
        &loaded.classifier
    else {
        panic!("not a maxent model")
    };
    let dim = vectorizer.vocab.len();
    let mut counts = vec![0f32; texts.len() * dim];
    for (r, t) in texts.iter().enumerate() {
        for (term, c) in terms(t, &vectorizer.rules) {
            if let Some(j) = vectorizer.vocab.iter().position(|v| *v == term) {
                counts[r * dim + j] = c as f32;
            }
        }
    }
    let spec = f32_spec(tmp.path(), "counts", &[texts.len(), dim], &counts);
    let onnx = check(&python, &model, Some(&spec));
    let meta = &onnx["metadata"];
    let vocab: Vec<String> = serde_json::from_str(meta["vocabulary"].as_str().unwrap()).unwrap();
    assert_eq!(vocab, vectorizer.vocab);
    let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
    let engine = predictions(&cache, &run_dir, &files);
    let worst = compare_probabilities("maxent", &onnx, &labels, &engine, 1e-5);
    eprintln!("text maxent: |Δp| = {worst:e} on {} texts", texts.len());
}

// ---- the project's [export] formats ----

#[test]
fn a_project_asking_for_onnx_gets_it_after_training() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(
        &tmp.path().join("train"),
        &["circles", "stripes", "bands"],
        6,
        0,
    );
    std::fs::write(
        tmp.path().join("project.toml"),
        "format_version = 1\nname = \"shapes\"\ntemplate = \"image-classifier\"\n\
         [data]\ntrain = \"train\"\n[params]\nepochs = 3\nimage_size = 64\n\
         [export]\nformats = [\"safetensors\", \"onnx\"]\n",
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
    let exported = events
        .iter()
        .find(|e| e["event"] == "exported" && e["format"] == "onnx")
        .unwrap_or_else(|| panic!("no ONNX export event in {events:?}"));
    let path = PathBuf::from(exported["path"].as_str().unwrap());
    assert_eq!(path, run_dir.join("exports/model.onnx"));
    let m = lathe_engine::export::onnx::read(&path).unwrap();
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.opset_import[0].version, 17);
    let g = m.graph.unwrap();
    assert_eq!(g.input[0].name, "image");
    let outputs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["probabilities", "label"]);
    let labels = m.metadata_props.iter().find(|p| p.key == "labels").unwrap();
    assert_eq!(labels.value, r#"["bands","circles","stripes"]"#);
    // fp16 on request (its agreement is checked in `image_classifiers_agree_with_onnx_runtime`).
    let half = tmp.path().join("half.onnx");
    let o = run(lathe(&cache)
        .args(["export", "--format", "onnx", "--precision", "fp16", "--out"])
        .arg(&half)
        .arg(&run_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("fp16"), "{}", stderr(&o));
    let m16 = lathe_engine::export::onnx::read(&half).unwrap();
    let precision = m16
        .metadata_props
        .iter()
        .find(|p| p.key == "precision")
        .unwrap();
    assert_eq!(precision.value, "fp16");
}
