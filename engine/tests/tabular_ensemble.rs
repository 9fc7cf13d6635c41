//! The table templates' weighted ensemble and `class_weight = balanced`, end to end through the
//! `lathe` CLI on generated tables: greedy selection itself (mixing two half-right models,
//! leaving a useless one out, log loss preferring the calibrated model); the ensemble chosen on
//! a table whose signal is half a sharp step in one column (trees) and half a small linear
//! effect spread over 100 columns (linear model), saved, reloaded by `lathe predict` /
//! `lathe evaluate` with the training-time predictions, exported to ONNX and agreeing with
//! `lathe predict` in ONNX Runtime (`LATHE_ONNX_PYTHON`, from scripts/onnx-env.sh) and in Core ML
//! (the spec read by tests/coreml/check.py, `LATHE_COREML_PYTHON`); balanced class weights raising
//! the minority class's recall in every learner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::{assert_agrees, assert_rejected, export, mutate, predictions};
use lathe_engine::templates::tabular::data::TargetKind;
use lathe_engine::templates::tabular::ensemble::{self, Predictions};
use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-300);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Columns `a` (uniform in [0, 1]) and `x0..x99` (standard normal); z = ±1.5 by the sign of
/// sin(20·a) (a sharp step function: trees find it, a linear model or a small MLP does not)
/// + `coef`·Σxᵢ (a smooth effect spread thinly over 100 columns: the linear model finds it,
/// 100 rounds of trees only in part) + noise. The target `y` is z (regression) or its sign.
fn half_and_half_csv(path: &Path, rows: usize, seed: u64, coef: f64, classes: bool) {
    let mut rng = Lcg(seed);
    let mut text = String::from("a");
    for i in 0..100 {
        text += &format!(",x{i}");
    }
    text += ",y\n";
    for _ in 0..rows {
        let a = rng.next();
        let xs: Vec<f64> = (0..100).map(|_| rng.normal()).collect();
        let step = if (20.0 * a).sin() > 0.0 { 1.5 } else { -1.5 };
        let z = step + coef * xs.iter().sum::<f64>() + 0.3 * rng.normal();
        text += &format!("{a:.4}");
        for x in &xs {
            text += &format!(",{x:.4}");
        }
        if classes {
            text += if z > 0.0 { ",pos\n" } else { ",neg\n" };
        } else {
            text += &format!(",{z:.4}\n");
        }
    }
    std::fs::write(path, text).unwrap();
}

fn train(cache: &Path, template: &str, params: &[&str], data: &Path, test: &Path, out: &Path) {
    let mut cmd = lathe(cache);
    cmd.args(["train", "--json", "--template", template, "--target", "y"]);
    for p in params {
        cmd.arg("--param").arg(p);
    }
    let o = run(cmd
        .arg("--data")
        .arg(data)
        .arg("--test")
        .arg(test)
        .arg("--out")
        .arg(out));
    assert!(o.status.success(), "train failed: {}", stderr(&o));
}

fn report(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap()
}

fn predict(cache: &Path, run_dir: &Path, rows: &Path) -> Vec<serde_json::Value> {
    let o = run(lathe(cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(run_dir)
        .arg(rows));
    assert!(o.status.success(), "predict failed: {}", stderr(&o));
    json_lines(&stdout(&o))
}

/// Whether prediction `e` (named `PATH:LINE` by `lathe predict`) is of the report's sample `s`
/// (named `FILE:LINE` at training time).
fn same_row(e: &serde_json::Value, s: &serde_json::Value) -> bool {
    let (e, s) = (e["input"].as_str().unwrap(), s["input"].as_str().unwrap());
    e == s || e.ends_with(&format!("/{s}"))
}

/// Checks the ensemble's leaderboard entry: chosen, at least two members, weights summing to 1,
/// a cross-fit metric better than every single candidate's, the note saying how it was scored.
fn assert_ensemble_chosen(r: &serde_json::Value, higher_is_better: bool) {
    let board = r["leaderboard"].as_array().unwrap();
    let entry = board
        .iter()
        .find(|c| c["algorithm"] == "ensemble")
        .unwrap_or_else(|| panic!("no ensemble on the leaderboard: {board:?}"));
    assert_eq!(entry["chosen"], true, "{board:#?}");
    assert_eq!(r["algorithm"], "ensemble");
    let weights = entry["weights"].as_array().unwrap();
    assert!(weights.len() >= 2, "{weights:?}");
    let total: f64 = weights.iter().map(|w| w["weight"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "weights sum to {total}");
    assert!(entry["note"].as_str().unwrap().contains("2-fold cross-fit"));
    let value = entry["value"].as_f64().unwrap();
    // Every candidate fitted (one the time limit left out has no value and no weight).
    for c in board
        .iter()
        .filter(|c| c["algorithm"] != "ensemble" && c["skipped"].is_null())
    {
        assert_eq!(c["chosen"], false);
        let v = c["value"].as_f64().unwrap();
        if higher_is_better {
            assert!(value > v, "ensemble {value} vs {}: {v}", c["algorithm"]);
        } else {
            assert!(value < v, "ensemble {value} vs {}: {v}", c["algorithm"]);
        }
    }
}

/// The ONNX input of an all-numeric table: every column but `y`, in the order of
/// `metadata_props["columns"]`.
fn numeric_features(csv: &Path, columns: &serde_json::Value) -> (Vec<f32>, usize) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let order: Vec<usize> = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["kind"], "numeric");
            header.iter().position(|h| *h == c["name"]).unwrap()
        })
        .collect();
    let (mut out, mut rows) = (Vec::new(), 0);
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        out.extend(order.iter().map(|&j| cells[j].parse::<f32>().unwrap()));
        rows += 1;
    }
    (out, rows)
}

/// Exports `run_dir` to ONNX, runs `tests/onnx/check.py` (full checker + ONNX Runtime) on the
/// rows of `rows` and returns its outputs and metadata.
fn onnx_outputs(
    python: &Path,
    cache: &Path,
    run_dir: &Path,
    rows: &Path,
    tmp: &Path,
) -> serde_json::Value {
    let model = tmp.join(format!(
        "{}.onnx",
        run_dir.file_name().unwrap().to_string_lossy()
    ));
    let o = run(lathe(cache)
        .args(["export", "--format", "onnx", "--json", "--out"])
        .arg(&model)
        .arg(run_dir));
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    let check = |spec: Option<&Path>| -> serde_json::Value {
        let mut cmd = Command::new(python);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/onnx/check.py"))
            .arg(&model);
        if let Some(s) = spec {
            cmd.arg("--inputs").arg(s);
        }
        let out = cmd.output().expect("python runs");
        assert!(
            out.status.success(),
            "check.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let described = check(None);
    assert_eq!(described["metadata"]["algorithm"], "ensemble");
    let columns: serde_json::Value =
        serde_json::from_str(described["metadata"]["columns"].as_str().unwrap()).unwrap();
    let (features, n) = numeric_features(rows, &columns);
    let raw: PathBuf = tmp.join("features.f32");
    let bytes: Vec<u8> = features.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    let spec = tmp.join("features.spec.json");
    let nf = columns.as_array().unwrap().len();
    let json = serde_json::json!({"features": {"dtype": "float32", "shape": [n, nf], "file": raw}});
    std::fs::write(&spec, json.to_string()).unwrap();
    let mut result = check(Some(&spec));
    result["metadata"] = described["metadata"].clone();
    result
}

#[test]
fn greedy_selection_mixes_half_right_models_and_leaves_noise_out() {
    // a knows one half of y, b the other; c is noise.
    let n = 200;
    let (mut a, mut b, mut c, mut y) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let u = (i as f64 * 0.37).sin();
        let v = (i as f64 * 0.11).cos();
        y.push(u + v);
        a.push(2.0 * u);
        b.push(2.0 * v);
        c.push(((i * 7919) % 13) as f64 - 6.0);
    }
    let cands = [&a, &b, &c].map(|values| Predictions { values, width: 1 });
    let s = ensemble::fit(TargetKind::Regression, &cands, &y).unwrap();
    assert!((s.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!((s.weights[0] - 0.5).abs() < 0.1, "{:?}", s.weights);
    assert!((s.weights[1] - 0.5).abs() < 0.1, "{:?}", s.weights);
    assert_eq!(s.weights[2], 0.0, "{:?}", s.weights);
    let single = |p: &[f64]| {
        let rows: Vec<Vec<f64>> = p.iter().map(|v| vec![*v]).collect();
        ensemble::metric(TargetKind::Regression, &rows, &y)
    };
    assert!(
        s.cross_fit < 0.5 * single(&a).min(single(&b)),
        "cross-fit RMSE {} vs {} and {}",
        s.cross_fit,
        single(&a),
        single(&b)
    );
    // Fewer than two candidates: no ensemble.
    assert!(ensemble::fit(TargetKind::Regression, &cands[..1], &y).is_none());
}

#[test]
fn an_ensemble_must_be_clearly_better_than_the_best_single_model() {
    // Better on every row: clearly better.
    let single: Vec<f64> = (0..50).map(|i| 1.0 + (i % 5) as f64 * 0.1).collect();
    let better: Vec<f64> = single.iter().map(|l| l - 0.2).collect();
    assert!(ensemble::clearly_better(&better, &single));
    // Better on average through two lucky rows, worse on others: not clearly better.
    let mut lucky = single.clone();
    lucky[0] -= 3.0;
    lucky[1] -= 3.0;
    for l in lucky.iter_mut().skip(2).step_by(2) {
        *l += 0.1;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&lucky) < mean(&single));
    assert!(!ensemble::clearly_better(&lucky, &single));
    // Equal: not better.
    assert!(!ensemble::clearly_better(&single, &single));
}

#[test]
fn log_loss_selection_prefers_the_calibrated_model() {
    // Both put the true class first on 3 rows of 4; the first is certain (and certainly wrong on
    // the fourth), the second says 0.8.
    let n = 40;
    let (mut sure, mut calibrated, mut y) = (vec![], vec![], vec![]);
    for i in 0..n {
        let t = i % 2;
        y.push(t as f64);
        let right = i % 4 != 0;
        let p = if (t == 1) == right { 0.8 } else { 0.2 };
        calibrated.extend([1.0 - p, p]);
        let q = if (t == 1) == right { 1.0 } else { 0.0 };
        sure.extend([1.0 - q, q]);
    }
    let cands = [&sure, &calibrated].map(|values| Predictions { values, width: 2 });
    let rows: Vec<usize> = (0..n).collect();
    let counts = ensemble::select(
        TargetKind::Classification,
        &cands,
        &y,
        &rows,
        ensemble::ROUNDS,
    );
    assert_eq!(counts.iter().sum::<usize>(), ensemble::ROUNDS);
    assert_eq!(
        counts[0], 0,
        "the overconfident model was picked: {counts:?}"
    );
}

#[test]
fn ensemble_is_chosen_reloaded_and_exported_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    half_and_half_csv(&data, 2000, 1, 0.2, true);
    half_and_half_csv(&test, 400, 2, 0.2, true);
    let run_dir = tmp.path().join("run");
    train(
        &cache,
        "tabular-classifier",
        &["validation_split=0.25"],
        &data,
        &test,
        &run_dir,
    );
    let r = report(&run_dir);
    assert_ensemble_chosen(&r, true);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["model"]["type"], "weighted_ensemble");
    let members = config["model"]["members"].as_array().unwrap();
    assert!(members.len() >= 2);
    let total: f64 = members.iter().map(|m| m["weight"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9);

    // The reloaded model predicts what the model in memory predicted at training time (the
    // test report's samples: the predicted label and its probability, for every test row).
    let engine = predict(&cache, &run_dir, &test);
    let samples = r["evaluation"]["test"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 100, "{} samples", samples.len());
    for s in samples {
        let p = engine
            .iter()
            .find(|e| same_row(e, s))
            .unwrap_or_else(|| panic!("no prediction for {}", s["input"]));
        assert_eq!(p["label"], s["predicted"], "{}", s["input"]);
        let prob = p["probabilities"][s["predicted"].as_str().unwrap()]
            .as_f64()
            .unwrap();
        let want = s["confidence"].as_f64().unwrap();
        assert!(
            (prob - want).abs() < 1e-6,
            "{}: {prob} vs {want}",
            s["input"]
        );
    }
    // `lathe evaluate` on the reloaded model gives the training-time test accuracy.
    let o = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(o.status.success(), "evaluate failed: {}", stderr(&o));
    let evaluated: serde_json::Value = json_lines(&stdout(&o)).remove(0);
    assert_eq!(
        evaluated["accuracy"], r["evaluation"]["test"]["accuracy"],
        "{evaluated}"
    );

    // Core ML: every member's raw outputs in the pipeline, weighted and summed by a last
    // network; the checker (tests/coreml/check.py, the spec read in numpy) agrees with
    // `lathe predict`, and an export whose weights are swapped is caught.
    if let Some(python) = coreml_python() {
        let preds = tmp.path().join("preds.jsonl");
        let table = test.to_string_lossy().into_owned();
        predictions(&cache, &run_dir, std::slice::from_ref(&test), &[], &preds);
        let model = tmp.path().join("m.mlmodel");
        let described = export(&cache, &run_dir, &model, "fp32");
        assert!(model.is_file(), "{described}");
        let d = assert_agrees(
            &python,
            &model,
            &preds,
            &["--table", table.as_str()],
            "ensemble classifier Core ML",
        );
        eprintln!("ensemble classifier: Core ML |Δp| = {d:e}");
        let broken = tmp.path().join("broken.mlmodel");
        mutate(&model, &broken, |m| {
            let Some(coreml_proto::proto::model::Type::PipelineClassifier(p)) = &mut m.r#type
            else {
                panic!("not a pipeline classifier")
            };
            let p = p.pipeline.as_mut().expect("its pipeline");
            let Some(coreml_proto::proto::model::Type::NeuralNetworkClassifier(nn)) =
                &mut p.models.last_mut().unwrap().r#type
            else {
                panic!("the last model is not the weighting network")
            };
            // The last member left out of the sum.
            let sum = nn
                .layers
                .iter_mut()
                .find(|l| l.name == "ensemble")
                .expect("the summing layer");
            assert!(sum.input.len() >= 2, "{:?}", sum.input);
            sum.input.pop();
        });
        assert_rejected(
            &python,
            &broken,
            &preds,
            &["--table", table.as_str()],
            "a member left out of the sum",
        );
    }

    // ONNX: the weighted sum of the members' graphs agrees with `lathe predict`.
    let Some(python) = fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it") else {
        return;
    };
    let onnx = onnx_outputs(&python, &cache, &run_dir, &test, tmp.path());
    let labels: Vec<String> =
        serde_json::from_str(onnx["metadata"]["labels"].as_str().unwrap()).unwrap();
    let probs = onnx["outputs"]["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), engine.len());
    let mut worst = 0f64;
    for (i, (p, e)) in probs.iter().zip(&engine).enumerate() {
        for (l, label) in labels.iter().enumerate() {
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p[l].as_f64().unwrap() - q).abs());
        }
        assert_eq!(onnx["outputs"]["label"][i], e["label"], "row {i}");
    }
    assert!(worst <= 1e-5, "|Δp| = {worst:e}");
    eprintln!(
        "ensemble classifier: ONNX |Δp| = {worst:e} on {} rows",
        engine.len()
    );
}

#[test]
fn ensemble_is_chosen_reloaded_and_exported_regressor() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    half_and_half_csv(&data, 2000, 3, 0.15, false);
    half_and_half_csv(&test, 300, 4, 0.15, false);
    let run_dir = tmp.path().join("run");
    train(
        &cache,
        "tabular-regressor",
        &["validation_split=0.25"],
        &data,
        &test,
        &run_dir,
    );
    let r = report(&run_dir);
    assert_ensemble_chosen(&r, false);
    let engine = predict(&cache, &run_dir, &test);
    let samples = r["evaluation"]["test"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 100, "{} samples", samples.len());
    for s in samples {
        let p = engine.iter().find(|e| same_row(e, s)).unwrap();
        let (v, want) = (
            p["value"].as_f64().unwrap(),
            s["predicted"].as_f64().unwrap(),
        );
        assert!(
            (v - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{v} vs {want}"
        );
    }
    // Core ML: the pipeline's weighted sum of the members' values.
    if let Some(python) = coreml_python() {
        let preds = tmp.path().join("preds.jsonl");
        let table = test.to_string_lossy().into_owned();
        predictions(&cache, &run_dir, std::slice::from_ref(&test), &[], &preds);
        let model = tmp.path().join("m.mlmodel");
        export(&cache, &run_dir, &model, "fp32");
        let d = assert_agrees(
            &python,
            &model,
            &preds,
            &["--table", table.as_str()],
            "ensemble regressor Core ML",
        );
        eprintln!("ensemble regressor: Core ML |Δvalue| = {d:e}");
    }
    let Some(python) = fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it") else {
        return;
    };
    let onnx = onnx_outputs(&python, &cache, &run_dir, &test, tmp.path());
    let values = onnx["outputs"]["value"].as_array().unwrap();
    assert_eq!(values.len(), engine.len());
    let mut worst = 0f64;
    for (v, e) in values.iter().zip(&engine) {
        let q = e["value"].as_f64().unwrap();
        worst = worst.max((v[0].as_f64().unwrap() - q).abs() / q.abs().max(1.0));
    }
    assert!(worst <= 1e-5, "relative |Δ| = {worst:e}");
    eprintln!("ensemble regressor: ONNX relative |Δvalue| = {worst:e}");
}

/// Two overlapping classes, `rare` about 8 % of the rows: x0, x1 shifted for the rare class,
/// x2 noise.
fn imbalanced_csv(path: &Path, rows: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let mut text = String::from("x0,x1,x2,y\n");
    for _ in 0..rows {
        let rare = rng.next() < 0.08;
        let shift = if rare { 1.2 } else { 0.0 };
        let (x0, x1, x2) = (rng.normal() + shift, rng.normal() + shift, rng.normal());
        let y = if rare { "rare" } else { "common" };
        text += &format!("{x0:.4},{x1:.4},{x2:.4},{y}\n");
    }
    std::fs::write(path, text).unwrap();
}

fn recall_of(r: &serde_json::Value, label: &str) -> f64 {
    r["evaluation"]["test"]["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == label)
        .unwrap()["recall"]
        .as_f64()
        .unwrap()
}

#[test]
fn balanced_class_weights_raise_minority_recall_in_every_learner() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    imbalanced_csv(&data, 1500, 5);
    imbalanced_csv(&test, 1500, 6);
    for algorithm in ["boosted_trees", "random_forest", "linear", "mlp"] {
        let mut recall = Vec::new();
        let mut balanced_accuracy = Vec::new();
        for weight in ["none", "balanced"] {
            let run_dir = tmp.path().join(format!("{algorithm}-{weight}"));
            let alg = format!("algorithm={algorithm}");
            let cw = format!("class_weight={weight}");
            train(
                &cache,
                "tabular-classifier",
                &[&alg, &cw, "forest_trees=30", "mlp_epochs=40"],
                &data,
                &test,
                &run_dir,
            );
            let r = report(&run_dir);
            recall.push(recall_of(&r, "rare"));
            balanced_accuracy.push(
                r["evaluation"]["test"]["balanced_accuracy"]
                    .as_f64()
                    .unwrap(),
            );
        }
        eprintln!(
            "{algorithm}: rare recall {:.3} → {:.3}, balanced accuracy {:.3} → {:.3}",
            recall[0], recall[1], balanced_accuracy[0], balanced_accuracy[1]
        );
        assert!(
            recall[1] > recall[0] + 0.1,
            "{algorithm}: rare-class recall {:.3} → {:.3}",
            recall[0],
            recall[1]
        );
        assert!(
            balanced_accuracy[1] > balanced_accuracy[0],
            "{algorithm}: balanced accuracy {:.3} → {:.3}",
            balanced_accuracy[0],
            balanced_accuracy[1]
        );
    }
    // A regressor has no such parameter.
    let o = run(lathe(&cache).args(["templates", "--params", "tabular-regressor"]));
    assert!(o.status.success());
    assert!(!stdout(&o).contains("class_weight"));
}
