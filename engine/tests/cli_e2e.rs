//! End-to-end tests of the `lathe` CLI contract: train → evaluate → predict → export on the
//! bundled sample, exit codes, JSON forms, project files, Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;

#[test]
fn train_evaluate_predict_export_on_the_bundled_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = tmp.path().join("run");
    let sample = sample();
    // 112 px instead of 224 keeps the test fast on CI's two cores; the pipeline is the same.
    let out = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "40",
            "--param",
            "image_size=112",
        ])
        .arg("--data")
        .arg(sample.join("train"))
        .arg("--test")
        .arg(sample.join("test"))
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"started"));
    assert_eq!(kinds.last(), Some(&"finished"));
    let order = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k} event in {kinds:?}"))
    };
    assert!(
        order("data") < order("epoch_end")
            && order("epoch_end") < order("evaluated")
            && order("evaluated") < order("exported")
    );
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");

    for f in [
        "events.jsonl",
        "project.lock.toml",
        "report.json",
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
        "report/loss.png",
        "report/accuracy.png",
        "report/confusion_matrix_test.png",
        "model/model.safetensors",
        "model/config.json",
        "model/preprocessor_config.json",
        "model/manifest.json",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let logged = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert_eq!(
        json_lines(&logged).len(),
        events.len(),
        "events.jsonl differs from the stream"
    );
    let lock = std::fs::read_to_string(run_dir.join("project.lock.toml")).unwrap();
    assert!(
        lock.contains("image_size = 112") && lock.contains("learning_rate"),
        "{lock}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let trained_accuracy = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();

    // evaluate: ONE JSON object; the exported model must reproduce the training-time score.
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(sample.join("test")));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("one JSON object");
    let accuracy = eval["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.5,
        "accuracy {accuracy} on 10 classes (chance is 0.1)"
    );
    assert!(
        (accuracy - trained_accuracy).abs() <= 0.01,
        "exported model {accuracy} vs training-time {trained_accuracy}"
    );
    assert!(eval["macro_f1"].as_f64().unwrap() > 0.4);
    assert_eq!(eval["labels"].as_array().unwrap().len(), 10);
    assert_eq!(eval["per_class"].as_array().unwrap().len(), 10);
    let cm: Vec<Vec<u64>> = serde_json::from_value(eval["confusion_matrix"].clone()).unwrap();
    assert_eq!(cm.iter().flatten().sum::<u64>(), 200);

    // predict: one JSON object per input.
    let bag = sample
        .join("test/Bag")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let boot = sample
        .join("test/Ankle_boot")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(run_dir.join("model"))
        .arg(&bag)
        .arg(&boot));
    assert!(out.status.success(), "{}", stderr(&out));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 2);
    for (p, path) in preds.iter().zip([&bag, &boot]) {
        assert_eq!(p["input"].as_str().unwrap(), path.to_str().unwrap());
        let probs = p["probabilities"].as_object().unwrap();
        let top = probs
            .iter()
            .max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap())
            .unwrap();
        assert_eq!(p["label"].as_str().unwrap(), top.0);
    }
    let out = run(lathe(&cache)
        .args(["predict", "--json", "--top", "10"])
        .arg(&run_dir)
        .arg(&bag));
    let p = &json_lines(&stdout(&out))[0];
    let total: f64 = p["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");

    // export: a self-contained folder that predicts the same.
    let exported = tmp.path().join("exported");
    let out = run(lathe(&cache)
        .args(["export", "--format", "safetensors"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&exported));
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(exported.join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["format"], "pt");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("classifier.1.weight").unwrap().shape(),
        &[10, 1280]
    );
    assert!(
        st.tensor("features.0.0.weight").is_ok() && st.tensor("features.18.1.running_var").is_ok()
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["id2label"]["0"], "Ankle_boot");
    assert_eq!(config["label2id"]["Trouser"], 9);
    let pre: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(exported.join("preprocessor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(pre["size"]["height"], 112);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["seed"], 42);
    assert_eq!(manifest["backbone"]["id"], "mobilenet_v2");
    assert_eq!(
        manifest["data"]["train"]["blake3"].as_str().unwrap().len(),
        64
    );
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&exported)
        .arg(&bag));
    assert_eq!(json_lines(&stdout(&out))[0]["label"], preds[0]["label"]);

    // Core ML: by default into the run's exports/ (checked in depth in coreml_export.rs).
    let out = run(lathe(&cache)
        .args(["export", "--format", "coreml"])
        .arg(&run_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run_dir.join("exports/model.mlmodel").is_file());
}

#[test]
fn second_run_reuses_cached_features() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes", "bands"], 6, 0);
    let cache = tmp.path().join("cache");
    let train = |out: &str| {
        let o = run(lathe(&cache)
            .args([
                "train",
                "--template",
                "image-classifier",
                "--json",
                "--epochs",
                "3",
                "--param",
                "image_size=64",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(tmp.path().join(out)));
        assert!(o.status.success(), "{}", stderr(&o));
        json_lines(&stdout(&o))
    };
    let first = train("a");
    assert!(
        !first.iter().any(|e| e["event"] == "cache"),
        "fresh cache reported hits"
    );
    let second = train("b");
    let hit = second
        .iter()
        .find(|e| e["event"] == "cache")
        .expect("second run reports cache use");
    assert_eq!(hit["reused"], 18);
    assert_eq!(hit["total"], 18);
}

#[test]
fn usage_errors_exit_2_and_data_errors_exit_1_with_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = run(lathe(&cache).args(["train", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    let missing = tmp.path().join("nowhere");
    let out = run(lathe(&cache)
        .args(["train", "--template", "image-classifier", "--data"])
        .arg(&missing)
        .arg("--out")
        .arg(tmp.path().join("r")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("does not exist") && err.contains("nowhere"),
        "{err}"
    );
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{err}"
    );
    let out = run(lathe(&cache)
        .args(["train", "--template", "sound-painter", "--data"])
        .arg(tmp.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("image-classifier"),
        "{}",
        stderr(&out)
    );
    let out = run(lathe(&cache).args(["predict"]).arg(tmp.path()).arg("x.png"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a Lathe model"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn new_project_then_check_then_train_from_the_project_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("photos");
    make_dataset(&data, &["circles", "stripes"], 5, 0);
    let dir = tmp.path().join("proj");
    let out = run(lathe(&cache)
        .args(["new", "--template", "image-classifier"])
        .arg(&dir)
        .arg("--data")
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("project.toml")).unwrap();
    assert!(text.contains("template = \"image-classifier\""), "{text}");
    let out = run(lathe(&cache)
        .args(["new", "--template", "image-classifier"])
        .arg(&dir));
    assert_eq!(out.status.code(), Some(1), "overwrote a project");
    let out = run(lathe(&cache).arg("check").arg(dir.join("project.toml")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("circles") && stdout(&out).contains("healthy"),
        "{}",
        stdout(&out)
    );
    let out = run(lathe(&cache)
        .arg("train")
        .arg(dir.join("project.toml"))
        .args(["--epochs", "2", "--param", "image_size=48", "--out"])
        .arg(dir.join("run")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("run/model/model.safetensors").is_file());
    // A finished run is never overwritten.
    let out = run(lathe(&cache)
        .arg("train")
        .arg(dir.join("project.toml"))
        .arg("--out")
        .arg(dir.join("run")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("never overwritten"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn templates_lists_and_explains_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(lathe(tmp.path()).arg("templates"));
    assert!(out.status.success() && stdout(&out).contains("image-classifier"));
    let out = run(lathe(tmp.path()).args(["templates", "--params", "image-classifier", "--json"]));
    let specs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let epochs = specs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "epochs")
        .unwrap();
    assert_eq!(epochs["default"], 100);
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_cleanly_with_exit_130_and_keeps_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes"], 6, 0);
    let run_dir = tmp.path().join("run");
    let child = lathe(&tmp.path().join("cache"))
        .args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "100000",
            "--param",
            "image_size=48",
            "--param",
            "early_stopping_patience=0",
            "--param",
            "batch_size=1",
            // The AdamW head trains epoch by epoch (the L-BFGS logistic head finishes at once).
            "--param",
            "head=mlp",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !run_dir.join("checkpoints/last.safetensors").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let last = events.last().unwrap();
    assert_eq!(last["outcome"]["status"], "cancelled");
    assert!(Path::new(last["outcome"]["checkpoint"].as_str().unwrap()).is_file());
}

#[test]
fn efficientnet_lite0_backbone_trains_exports_and_reloads() {
    let Some(weights) = efficientnet_lite0() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes"], 5, 0);
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&tmp.path().join("cache"))
        .args([
            "train",
            "--template",
            "image-classifier",
            "--json",
            "--epochs",
            "3",
            "--param",
            "backbone=efficientnet_lite0",
            "--param",
            "image_size=64",
            "--weights",
        ])
        .arg(&weights)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let pre: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("model/preprocessor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(pre["image_mean"][0], 0.498);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["backbone"]["id"], "efficientnet_lite0");
    let out = run(lathe(&tmp.path().join("cache"))
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.9, "{eval}");
    // Without weights the error says how to get them.
    let out = run(lathe(&tmp.path().join("cache"))
        .args([
            "train",
            "--template",
            "image-classifier",
            "--param",
            "backbone=efficientnet_lite0",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("r2")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("fetch-efficientnet-lite0"),
        "{}",
        stderr(&out)
    );
}

/// `backbone = "auto"` (the default) compares every installed backbone on the training images and
/// keeps the best by cross-validated accuracy: with EfficientNet-Lite0 installed in the weights
/// folder both candidates are scored, the report says which won and why, and the model is built
/// on the winner. With nothing installed it takes the built-in MobileNetV2 and says so.
#[test]
fn auto_backbone_compares_the_installed_backbones_and_reports_why() {
    let Some(weights) = efficientnet_lite0() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["circles", "stripes", "checks"], 8, 0);
    let cache = tmp.path().join("cache");
    let train = |out: &Path| {
        run(lathe(&cache)
            .args([
                "train",
                "--template",
                "image-classifier",
                "--json",
                "--param",
                "image_size=64",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(out))
    };
    let selection = |run_dir: &Path| -> serde_json::Value {
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
                .unwrap();
        report["training"]["backbone_selection"].clone()
    };

    // Only the built-in backbone.
    let only = tmp.path().join("only");
    let out = train(&only);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = selection(&only);
    assert_eq!(s["chosen"], "mobilenet_v2", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("only backbone installed")
    );
    let lite2 = s["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["backbone"] == "efficientnet_lite2")
        .unwrap();
    assert!(
        lite2["skipped"]
            .as_str()
            .unwrap()
            .contains("fetch-efficientnet-lite2"),
        "{lite2}"
    );

    // Lite0 installed in the weights folder: both are scored on the same sample.
    std::fs::create_dir_all(cache.join("weights")).unwrap();
    std::fs::copy(
        &weights,
        cache.join("weights/efficientnet_lite0.safetensors"),
    )
    .unwrap();
    let both = tmp.path().join("both");
    let out = train(&both);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "phase" && e["phase"] == "comparing_backbones"),
        "no comparison phase in the events"
    );
    let s = selection(&both);
    let scored: Vec<&serde_json::Value> = s["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cv_accuracy"].is_f64())
        .collect();
    assert_eq!(scored.len(), 2, "{s}");
    assert_eq!(s["sample_images"], 21, "{s}");
    let best = scored
        .iter()
        .map(|c| c["cv_accuracy"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let chosen = scored
        .iter()
        .find(|c| c["backbone"] == s["chosen"])
        .expect("the chosen backbone was scored");
    assert_eq!(chosen["cv_accuracy"].as_f64().unwrap(), best, "{s}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(both.join("model/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["backbone"]["id"], s["chosen"]);
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&both)
        .arg("--data")
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));

    // A weights file says which backbone it is for; with auto that is ambiguous.
    let out = run(lathe(&cache)
        .args(["train", "--template", "image-classifier", "--weights"])
        .arg(&weights)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("ambiguous")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("name the backbone"),
        "{}",
        stderr(&out)
    );
}

/// `lathe features` writes one row per image — path, class (the subfolder), the backbone's pooled
/// features — for a folder of class subfolders, and for a folder of images without subfolders
/// (a multi-label folder) with an empty class; a folder without images is a clear error.
#[test]
fn features_of_class_folders_and_of_a_flat_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let classes = tmp.path().join("classes");
    make_dataset(&classes, &["a", "b"], 3, 0);
    let out = tmp.path().join("classes.csv");
    let o = run(lathe(&cache)
        .args(["features", "--image-size", "32", "--data"])
        .arg(&classes)
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert_eq!(rows.iter().filter(|r| r.contains(",a,")).count(), 3);
    // MobileNetV2's 1280 pooled features after the path and the class.
    assert_eq!(rows[0].split(',').count(), 2 + 1280);

    let flat = tmp.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..4 {
        class_image(i % 2, i, 32)
            .save(flat.join(format!("{i:03}.png")))
            .unwrap();
    }
    let out = tmp.path().join("flat.csv");
    let o = run(lathe(&cache)
        .args(["features", "--image-size", "32", "--data"])
        .arg(&flat)
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows.iter().all(|r| r.split(',').nth(1) == Some("")),
        "{text}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(lathe(&cache)
        .args(["features", "--data"])
        .arg(&empty)
        .arg("--out")
        .arg(tmp.path().join("empty.csv")));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no images found"), "{}", stderr(&o));
    assert!(!tmp.path().join("empty.csv").exists());
}
