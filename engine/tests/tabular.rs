//! End-to-end tests of the table templates through the `lathe` CLI: train → evaluate → predict
//! → export on generated CSV and JSON-lines tables, the bundled penguins sample, and bad tables
//! (unknown target, ragged rows, non-numeric targets) that must fail with one clear line; the
//! random forest and MLP candidates end to end; `lathe check --target`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A deterministic pseudo-random stream (no dependency on the engine's RNG).
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

/// Rows of `a` (number, some NA), `b` (number), `color` (category, some empty), `flag` (yes/no),
/// `id` (row id, must be dropped), a class `kind` and a number `score` that depend on them.
fn generated_csv(path: &Path, rows: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let mut text = String::from("id,a,b,color,flag,kind,score\n");
    for i in 0..rows {
        let a = rng.next() * 10.0;
        let b = rng.next() * 4.0 - 2.0;
        let color = ["red", "green", "blue"][(rng.next() * 3.0) as usize % 3];
        let flag = rng.next() < 0.5;
        let score = a * 2.0
            + b * b * 3.0
            + if color == "blue" { 5.0 } else { 0.0 }
            + if flag { 2.0 } else { 0.0 }
            + rng.next() * 0.5;
        let kind = if score < 9.0 {
            "low"
        } else if score < 16.0 {
            "mid"
        } else {
            "high"
        };
        let a_text = if i % 17 == 5 {
            "NA".to_string()
        } else {
            format!("{a:.3}")
        };
        let color = if i % 23 == 7 { "" } else { color };
        let flag = if flag { "yes" } else { "no" };
        text += &format!("{i},{a_text},{b:.3},{color},{flag},{kind},{score:.3}\n");
    }
    std::fs::write(path, text).unwrap();
}

fn train(
    cache: &Path,
    args: &[&str],
    data: &Path,
    test: Option<&Path>,
    out: &Path,
) -> std::process::Output {
    let mut cmd = lathe(cache);
    cmd.arg("train")
        .args(args)
        .arg("--json")
        .arg("--data")
        .arg(data);
    if let Some(t) = test {
        cmd.arg("--test").arg(t);
    }
    run(cmd.arg("--out").arg(out))
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn classifier_train_evaluate_predict_export() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    generated_csv(&data, 1200, 1);
    generated_csv(&test, 300, 2);
    let run_dir = tmp.path().join("run");
    let out = train(
        &cache,
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "kind",
            "--param",
            "ignore_columns=score",
        ],
        &data,
        Some(&test),
        &run_dir,
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let k = kinds(&events);
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");
    let pos = |name: &str| {
        k.iter()
            .position(|x| x == name)
            .unwrap_or_else(|| panic!("no {name}: {k:?}"))
    };
    assert!(
        pos("data") < pos("epoch_end")
            && pos("epoch_end") < pos("evaluated")
            && pos("evaluated") < pos("exported")
    );
    // The loss falls over the boosting rounds.
    let losses: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "epoch_end")
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.len() > 10 && losses.last().unwrap() < &(losses[0] * 0.5),
        "{losses:?}"
    );
    // The row id was dropped with a warning.
    assert!(
        events.iter().any(|e| e["event"] == "warning"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("`id` looks like a row id")),
        "{events:?}"
    );
    for f in [
        "report.json",
        "report/loss.png",
        "report/confusion_matrix_test.png",
        "model/model.safetensors",
        "model/config.json",
        "model/manifest.json",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let board = report["leaderboard"].as_array().unwrap();
    let names: Vec<&str> = board
        .iter()
        .map(|c| c["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "boosted_trees",
            "linear",
            "mlp",
            "random_forest",
            "ensemble"
        ],
        "{board:?}"
    );
    let chosen = board.iter().find(|c| c["chosen"] == true).unwrap();
    // Tree models (alone or weighted in the ensemble) rank the features.
    let is_trees =
        |a: &serde_json::Value| ["boosted_trees", "random_forest"].contains(&a.as_str().unwrap());
    let trees = is_trees(&chosen["algorithm"])
        || chosen["weights"]
            .as_array()
            .is_some_and(|w| w.iter().any(|m| is_trees(&m["algorithm"])));
    assert_eq!(
        run_dir.join("report/feature_importance.png").is_file(),
        trees,
        "{chosen}"
    );
    assert!(
        board
            .iter()
            .all(|c| c["value"].as_f64().unwrap() <= chosen["value"].as_f64().unwrap()),
        "{board:?}"
    );
    assert_eq!(board.iter().filter(|c| c["chosen"] == true).count(), 1);
    let test_acc = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(test_acc > 0.85, "test accuracy {test_acc}");

    // evaluate --json: one object with accuracy at top level, same as the run's test report
    let out = run(lathe(&cache)
        .arg("evaluate")
        .arg(&run_dir)
        .arg("--data")
        .arg(&test)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!((e["accuracy"].as_f64().unwrap() - test_acc).abs() < 1e-12);
    assert_eq!(e["num_examples"], 300);

    // predict --json: one object per row, named file:LINE, the target column may be absent
    let rows = tmp.path().join("rows.csv");
    std::fs::write(
        &rows,
        "b,a,color,flag\n1.5,9.0,blue,yes\n0.0,0.5,red,no\n0.1,NA,,\n",
    )
    .unwrap();
    let out = run(lathe(&cache)
        .arg("predict")
        .arg(&run_dir)
        .arg(&rows)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 3);
    assert!(preds[0]["input"].as_str().unwrap().ends_with("rows.csv:2"));
    assert!(preds[2]["input"].as_str().unwrap().ends_with("rows.csv:4"));
    assert_eq!(preds[0]["label"], "high");
    assert_eq!(preds[1]["label"], "low");
    let p: f64 = preds[0]["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4);

    // export: a self-contained folder that loads and predicts the same
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
    assert_eq!(config["lathe"]["task"], "tabular-classification");
    assert_eq!(config["target"], "kind");
    let names: Vec<&str> = config["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "color", "flag"]);
    let out2 = run(lathe(&cache)
        .arg("predict")
        .arg(&exported)
        .arg(&rows)
        .arg("--json"));
    let again = json_lines(&stdout(&out2));
    assert_eq!(again.len(), 3);
    for (a, b) in preds.iter().zip(&again) {
        assert_eq!(a["label"], b["label"]);
    }
}

#[test]
fn regressor_from_a_project_with_json_lines_data() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let csv = tmp.path().join("all.csv");
    generated_csv(&csv, 1500, 3);
    // The same table as JSON lines (numbers as numbers, NA as null).
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut jsonl = String::new();
    for l in lines {
        let mut o = serde_json::Map::new();
        for (h, v) in header.iter().zip(l.split(',')) {
            let value = match v.parse::<f64>() {
                Ok(x) => serde_json::json!(x),
                Err(_) if v == "NA" || v.is_empty() => serde_json::Value::Null,
                Err(_) => serde_json::json!(v),
            };
            o.insert(h.to_string(), value);
        }
        jsonl += &format!("{}\n", serde_json::Value::Object(o));
    }
    let data = tmp.path().join("train.jsonl");
    std::fs::write(&data, jsonl).unwrap();
    let project = tmp.path().join("proj");
    let out = run(lathe(&cache)
        .args([
            "new",
            "--template",
            "tabular-regressor",
            "--target",
            "score",
            "--data",
        ])
        .arg(&data)
        .arg(&project));
    assert!(out.status.success(), "{}", stderr(&out));
    let toml_text = std::fs::read_to_string(project.join("project.toml")).unwrap();
    assert!(toml_text.contains("target = \"score\""), "{toml_text}");
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&cache)
        .arg("train")
        .arg(project.join("project.toml"))
        .args(["--json", "--param", "ignore_columns=kind", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    assert!(
        run_dir
            .join("report/predicted_vs_actual_validation.png")
            .is_file()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let v = &report["evaluation"]["validation"];
    assert!(v["r2"].as_f64().unwrap() > 0.9, "{v}");

    let holdout = tmp.path().join("holdout.csv");
    generated_csv(&holdout, 200, 4);
    let out = run(lathe(&cache)
        .arg("evaluate")
        .arg(&run_dir)
        .arg("--data")
        .arg(&holdout)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    for k in ["rmse", "mae", "r2", "max_error"] {
        assert!(e[k].as_f64().is_some(), "no {k} in {e}");
    }
    assert!(e["rmse"].as_f64().unwrap() < 2.0, "{e}");
    let out = run(lathe(&cache)
        .arg("predict")
        .arg(&run_dir)
        .arg(&holdout)
        .arg("--json"));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 200);
    assert!(preds[0]["value"].as_f64().is_some());
    assert!(preds[0].get("probabilities").is_none());
}

#[test]
fn penguins_sample_species() {
    let tmp = tempfile::tempdir().unwrap();
    let data: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample/penguins/penguins.csv");
    let run_dir = tmp.path().join("run");
    let out = train(
        &tmp.path().join("cache"),
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "species",
            "--param",
            "validation_split=0.3",
        ],
        &data,
        None,
        &run_dir,
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let acc = report["evaluation"]["validation"]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(acc >= 0.95, "penguins validation accuracy {acc}");
    assert_eq!(
        report["labels"],
        serde_json::json!(["Adelie", "Chinstrap", "Gentoo"])
    );
    // `sex` has missing values: a categorical level of its own, not a dropped row
    assert_eq!(
        report["data"]["num_train"].as_u64().unwrap()
            + report["data"]["num_validation"].as_u64().unwrap(),
        344
    );
}

#[test]
fn bad_tables_fail_with_one_clear_line_or_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("d.csv");
    generated_csv(&data, 300, 5);
    // an unknown target names the columns
    let out = train(
        &cache,
        &["--template", "tabular-classifier", "--target", "nope"],
        &data,
        None,
        &tmp.path().join("r1"),
    );
    assert_eq!(out.status.code(), Some(1));
    let events = json_lines(&stdout(&out));
    let msg = events.last().unwrap()["outcome"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("no column `nope`") && msg.contains("kind") && msg.contains("d.csv"),
        "{msg}"
    );
    // a regressor on a text column says to use the classifier
    let out = train(
        &cache,
        &["--template", "tabular-regressor", "--target", "kind"],
        &data,
        None,
        &tmp.path().join("r2"),
    );
    assert_eq!(out.status.code(), Some(1));
    let msg = json_lines(&stdout(&out)).last().unwrap()["outcome"]["message"].to_string();
    assert!(
        msg.contains("not numeric") && msg.contains("tabular-classifier"),
        "{msg}"
    );
    // a ragged row and a bad number: warnings that name the line, training goes on
    let mut text = std::fs::read_to_string(&data).unwrap();
    text += "1,2,3\n";
    text += "999,oops,1.0,red,yes,low,3.0\n";
    let ragged = tmp.path().join("ragged.csv");
    std::fs::write(&ragged, text).unwrap();
    let out = train(
        &cache,
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "kind",
            "--param",
            "algorithm=linear",
        ],
        &ragged,
        None,
        &tmp.path().join("r3"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let warnings: Vec<String> = json_lines(&stdout(&out))
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("line 302 has 3 fields")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("\"oops\" on line 303")),
        "{warnings:?}"
    );
    // mostly broken: an error, not a crash
    let broken = tmp.path().join("broken.csv");
    std::fs::write(&broken, "a,b,kind\n1,2\n3\n4,5,x\n").unwrap();
    let out = train(
        &cache,
        &["--template", "tabular-classifier"],
        &broken,
        None,
        &tmp.path().join("r4"),
    );
    assert_eq!(out.status.code(), Some(1));
    let msg = json_lines(&stdout(&out)).last().unwrap()["outcome"]["message"].to_string();
    assert!(
        msg.contains("rows cannot be read") && msg.contains("line 2"),
        "{msg}"
    );
    // lathe check on a table shows column roles and exits 0
    let out = run(lathe(&cache).arg("check").arg(&data).args([
        "--template",
        "tabular-classifier",
        "--json",
    ]));
    // no --target: a column named like a target is missing, so check explains how to choose one
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("--target COL"), "{}", stderr(&out));
}

/// Predictions of `rows` by a run or model folder: (label, value) per row.
fn predictions(cache: &Path, model: &Path, rows: &Path) -> Vec<(String, Option<f64>)> {
    let out = run(lathe(cache)
        .arg("predict")
        .arg(model)
        .arg(rows)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&stdout(&out))
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["value"].as_f64(),
            )
        })
        .collect()
}

#[test]
fn random_forest_and_mlp_train_predict_export() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    generated_csv(&data, 900, 11);
    generated_csv(&test, 200, 12);
    for (template, algorithm, target, ignore, model_type) in [
        (
            "tabular-classifier",
            "random_forest",
            "kind",
            "score",
            "random_forest",
        ),
        (
            "tabular-regressor",
            "random_forest",
            "score",
            "kind",
            "random_forest",
        ),
        ("tabular-classifier", "mlp", "kind", "score", "mlp"),
        ("tabular-regressor", "mlp", "score", "kind", "mlp"),
    ] {
        let what = format!("{template} {algorithm}");
        let run_dir = tmp.path().join(format!("run-{template}-{algorithm}"));
        let out = train(
            &cache,
            &[
                "--template",
                template,
                "--target",
                target,
                "--param",
                &format!("ignore_columns={ignore}"),
                "--param",
                &format!("algorithm={algorithm}"),
                "--param",
                "forest_trees=24",
                "--param",
                "mlp_epochs=60",
                "--param",
                "mlp_batch_size=32",
            ],
            &data,
            Some(&test),
            &run_dir,
        );
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let events = json_lines(&stdout(&out));
        let losses: Vec<f64> = events
            .iter()
            .filter(|e| e["event"] == "epoch_end")
            .map(|e| e["train_loss"].as_f64().unwrap())
            .collect();
        // forests report every 8 trees (their loss need not fall), the MLP every epoch
        if algorithm == "random_forest" {
            assert_eq!(losses.len(), 3, "{what}: {losses:?}");
        } else {
            assert!(
                losses.len() >= 3 && losses.last().unwrap() < &losses[0],
                "{what}: {losses:?}"
            );
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["algorithm"], algorithm, "{what}");
        let board = report["leaderboard"].as_array().unwrap();
        assert_eq!(board.len(), 1, "{what}: {board:?}");
        let t = &report["evaluation"]["test"];
        if template == "tabular-classifier" {
            let acc = t["accuracy"].as_f64().unwrap();
            assert!(acc > 0.8, "{what}: test accuracy {acc}");
        } else {
            let r2 = t["r2"].as_f64().unwrap();
            assert!(r2 > 0.85, "{what}: test r2 {r2}");
        }
        // trees report which columns matter: `a` and `b` drive the target, `flag` least
        let importance = report["feature_importance"].as_array().unwrap();
        if algorithm == "random_forest" {
            let of = |name: &str| {
                importance.iter().find(|f| f["feature"] == name).unwrap()["importance"]
                    .as_f64()
                    .unwrap()
            };
            assert!(
                of("a") > of("flag") && of("b") > of("flag"),
                "{what}: {importance:?}"
            );
            assert!(run_dir.join("report/feature_importance.png").is_file());
        } else {
            assert!(importance.is_empty());
        }
        // predict from the run, export, predict from the export: the same outputs
        let rows = tmp.path().join("rows.csv");
        std::fs::write(
            &rows,
            "b,a,color,flag\n1.5,9.0,blue,yes\n0.0,0.5,red,no\n0.1,NA,,\n",
        )
        .unwrap();
        let from_run = predictions(&cache, &run_dir, &rows);
        assert_eq!(from_run.len(), 3, "{what}");
        if template == "tabular-classifier" {
            assert_eq!(from_run[0].0, "high", "{what}");
            assert_eq!(from_run[1].0, "low", "{what}");
        } else {
            // score = 2a + 3b² + 5·blue + 2·flag (+ up to 0.5): 31.75 and 1.0
            let (hi, lo) = (from_run[0].1.unwrap(), from_run[1].1.unwrap());
            assert!(hi > 25.0 && lo < 8.0, "{what}: {from_run:?}");
        }
        let exported = tmp.path().join(format!("export-{template}-{algorithm}"));
        let out = run(lathe(&cache)
            .arg("export")
            .arg(&run_dir)
            .args(["--format", "safetensors", "--out"])
            .arg(&exported));
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(exported.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["model"]["type"], model_type, "{what}");
        assert_eq!(config["algorithm"], algorithm, "{what}");
        assert_eq!(predictions(&cache, &exported, &rows), from_run, "{what}");
        // evaluate the exported folder: the run's own test figures
        let out = run(lathe(&cache)
            .arg("evaluate")
            .arg(&exported)
            .arg("--data")
            .arg(&test)
            .arg("--json"));
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let e: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let key = if template == "tabular-classifier" {
            "accuracy"
        } else {
            "rmse"
        };
        let (a, b) = (e[key].as_f64().unwrap(), t[key].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{what}: {a} vs {b}"
        );
    }
}

#[test]
fn check_takes_a_target_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("d.csv");
    generated_csv(&data, 300, 13);
    let out = run(lathe(&cache).arg("check").arg(&data).args([
        "--template",
        "tabular-classifier",
        "--target",
        "kind",
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut labels: Vec<String> = summary["splits"][0]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap().to_string())
        .collect();
    labels.sort();
    assert_eq!(labels, ["high", "low", "mid"], "{summary}");
    // an unknown column: one line naming the column, the columns there are, and the file
    let out = run(lathe(&cache).arg("check").arg(&data).args([
        "--template",
        "tabular-classifier",
        "--target",
        "nope",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no column `nope`") && err.contains("kind") && err.contains("d.csv"),
        "{err}"
    );
    // a template without a target column says so
    let out = run(lathe(&cache).arg("check").arg(tmp.path()).args([
        "--template",
        "image-classifier",
        "--target",
        "kind",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--target does not apply"),
        "{}",
        stderr(&out)
    );
}

/// Labels drawn at random, independent of the features: whatever the model, it cannot beat
/// always answering the most frequent class.
fn random_label_csv(path: &Path, rows: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let mut text = String::from("x1,x2,x3,label\n");
    for _ in 0..rows {
        let label = if rng.next() < 0.5 { "yes" } else { "no" };
        text += &format!(
            "{:.4},{:.4},{:.4},{label}\n",
            rng.next(),
            rng.next(),
            rng.next()
        );
    }
    std::fs::write(path, text).unwrap();
}

fn warnings(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_model_no_better_than_guessing_is_flagged_and_a_good_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let random = dir.path().join("random.csv");
    random_label_csv(&random, 400, 11);
    let o = train(
        &cache,
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "label",
            "--param",
            "algorithm=boosted_trees",
        ],
        &random,
        None,
        &dir.path().join("run-random"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let w = warnings(&json_lines(&stdout(&o)));
    assert!(
        w.iter().any(|m| m.contains("no better than guessing")),
        "random labels must be flagged: {w:?}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run-random/report.json")).unwrap(),
    )
    .unwrap();
    let v = &report["evaluation"]["validation"];
    assert!(v["majority_accuracy"].as_f64().unwrap() >= 0.4, "{v}");

    let learnable = dir.path().join("learnable.csv");
    generated_csv(&learnable, 400, 12);
    let o = train(
        &cache,
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "kind",
            "--param",
            "algorithm=boosted_trees",
        ],
        &learnable,
        None,
        &dir.path().join("run-good"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let w = warnings(&json_lines(&stdout(&o)));
    assert!(
        !w.iter().any(|m| m.contains("no better than guessing")),
        "a learnable table must not be flagged: {w:?}"
    );
}

#[test]
fn small_tables_boost_every_round_and_refit_on_all_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = dir.path().join("t.csv");
    // Noisy labels: validation loss wanders early, which used to stop boosting after ~20 rounds.
    random_label_csv(&data, 600, 5);
    let o = train(
        &cache,
        &[
            "--template",
            "tabular-classifier",
            "--target",
            "label",
            "--param",
            "algorithm=boosted_trees",
        ],
        &data,
        None,
        &dir.path().join("run"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let events = json_lines(&stdout(&o));
    let rounds = events.iter().filter(|e| e["event"] == "epoch_end").count();
    assert!(
        rounds >= 50,
        "a 600-row table must boost at least 50 rounds, got {rounds}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    let chosen = report["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chosen"] == true)
        .unwrap()
        .clone();
    assert_eq!(chosen["refit"], true, "{chosen}");
}

#[test]
fn auto_compares_candidates_by_cross_validation_over_every_row_on_small_tables() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = dir.path().join("t.csv");
    generated_csv(&data, 400, 11);
    let board = |run: &str, extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec![
            "--template",
            "tabular-classifier",
            "--target",
            "kind",
            "--param",
            "ignore_columns=score",
        ];
        args.extend_from_slice(extra);
        let o = train(&cache, &args, &data, None, &dir.path().join(run));
        assert!(o.status.success(), "{}", stderr(&o));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(run).join("report.json")).unwrap(),
        )
        .unwrap();
        report["leaderboard"].as_array().unwrap().clone()
    };
    // 400 rows: 360 training + 40 validation, cross-validated in 5 folds over all 400.
    let cv = board("cv", &[]);
    let singles: Vec<&serde_json::Value> =
        cv.iter().filter(|c| c["algorithm"] != "ensemble").collect();
    assert_eq!(singles.len(), 4, "{cv:?}");
    for c in &singles {
        assert_eq!(c["cv_folds"], 5, "{c}");
        let holdout = c["holdout_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&holdout), "{c}");
        // An accuracy over the 400 out-of-fold predictions: a whole number of rows.
        let rows = c["value"].as_f64().unwrap() * 400.0;
        assert!((rows - rows.round()).abs() < 1e-6, "{c}");
        assert!(rows.round() > 0.6 * 400.0, "a learnable table: {c}");
    }
    let chosen: Vec<&serde_json::Value> = cv.iter().filter(|c| c["chosen"] == true).collect();
    assert_eq!(chosen.len(), 1, "{cv:?}");
    let best = singles
        .iter()
        .map(|c| c["value"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    if chosen[0]["algorithm"] != "ensemble" {
        assert_eq!(chosen[0]["value"].as_f64().unwrap(), best, "{cv:?}");
    }
    let ensemble = cv.iter().find(|c| c["algorithm"] == "ensemble").unwrap();
    let note = ensemble["note"].as_str().unwrap();
    assert!(
        note.contains("out-of-fold predictions of the 5-fold cross-validation")
            && note.contains("400 rows"),
        "{note}"
    );
    // cv_folds = 0: compared on the validation split, as before.
    let holdout = board("holdout", &["--param", "cv_folds=0"]);
    for c in holdout.iter().filter(|c| c["algorithm"] != "ensemble") {
        assert!(c.get("cv_folds").is_none(), "{c}");
        assert!(c.get("holdout_value").is_none(), "{c}");
    }
}
