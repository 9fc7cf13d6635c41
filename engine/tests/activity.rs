//! The activity classifier end to end through the CLI on generated motion recordings (a seeded
//! gait model — see `gen_session` — since no real accelerometer set is available offline):
//! both layouts (a folder per activity of one CSV per session; one table with session and label
//! columns) train well above chance on held-out sessions, `lathe predict` gives every window and
//! the session, the CNN's Core ML export agrees with `lathe predict` to 1e-4 on 24 windows (with
//! `LATHE_COREML_PYTHON`), the trees model's Core ML export is refused with a clear message, and
//! bad recordings (ragged rows, text or NaN in a sensor column, a one-row session) are warnings
//! while training goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const ACTIVITIES: [&str; 4] = ["running", "sitting", "standing", "walking"];
const RATE: f64 = 50.0;

/// splitmix64: a tiny seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.next()
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Rows `[t, acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z]` of one session of `activity` (an
/// index into ACTIVITIES): gravity in the device frame (its direction set by the posture and a
/// per-session orientation change), plus for walking and running a periodic gait (cadence and
/// amplitude vary per subject; harmonics, a lateral sway at half the cadence), sensor noise.
fn gen_session(activity: usize, n: usize, seed: u64) -> Vec<[f64; 7]> {
    let mut r = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ activity as u64);
    let g = 9.81;
    // Posture: the gravity direction in the body frame.
    let tilt = match activity {
        1 => r.range(1.1, 1.4),  // sitting: thigh near horizontal
        _ => r.range(0.0, 0.25), // upright
    };
    let yaw = r.range(-0.4, 0.4);
    let grav = [
        g * tilt.sin() * yaw.cos(),
        g * tilt.sin() * yaw.sin(),
        g * tilt.cos(),
    ];
    let (cadence, amp) = match activity {
        0 => (r.range(2.5, 3.0), r.range(5.0, 8.0)),
        3 => (r.range(1.6, 2.1), r.range(1.5, 3.0)),
        _ => (0.0, 0.0),
    };
    let sway = match activity {
        2 => 0.15,
        1 => 0.05,
        _ => 0.4,
    };
    let phase = r.range(0.0, std::f64::consts::TAU);
    let noise = r.range(0.05, 0.15);
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE;
            let w = std::f64::consts::TAU * cadence * t + phase;
            let gait = amp * (w.sin() + 0.35 * (2.0 * w).sin() + 0.15 * (3.0 * w + 0.5).sin());
            let lateral = amp * 0.3 * (0.5 * w).sin();
            let slow = sway * (0.3 * std::f64::consts::TAU * t + phase).sin();
            [
                t,
                grav[0] + lateral + slow + noise * r.normal(),
                grav[1] + 0.2 * gait + slow * 0.5 + noise * r.normal(),
                grav[2] + gait + noise * r.normal(),
                0.3 * amp * (0.5 * w + 0.3).cos() + 0.05 * r.normal(),
                0.2 * amp * w.cos() + 0.05 * r.normal() + 0.1 * slow,
                0.1 * amp * (0.5 * w).sin() + 0.05 * r.normal(),
            ]
        })
        .collect()
}

const HEADER: &str = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z";

fn csv_of(rows: &[[f64; 7]]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{:.3},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5}",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6]
        );
    }
    s
}

/// A folder per activity with `per_class` sessions of `n` samples each.
fn folder_dataset(root: &Path, per_class: usize, n: usize, seed: u64) {
    for (a, name) in ACTIVITIES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..per_class {
            let rows = gen_session(a, n, seed + 1000 * k as u64);
            std::fs::write(dir.join(format!("s{k:02}.csv")), csv_of(&rows)).unwrap();
        }
    }
}

/// One table `session,activity,timestamp,…` of the same kind of sessions.
fn table_dataset(path: &Path, per_class: usize, n: usize, seed: u64) {
    let mut s = format!("session,activity,{HEADER}\n");
    for (a, name) in ACTIVITIES.iter().enumerate() {
        for k in 0..per_class {
            for r in gen_session(a, n, seed + 1000 * k as u64) {
                let _ = writeln!(
                    s,
                    "{name}-{seed}-{k},{name},{:.3},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5}",
                    r[0], r[1], r[2], r[3], r[4], r[5], r[6]
                );
            }
        }
    }
    std::fs::write(path, s).unwrap();
}

fn train(
    cache: &Path,
    data: &Path,
    test: &Path,
    run_dir: &Path,
    params: &[&str],
) -> Vec<serde_json::Value> {
    let mut cmd = lathe(cache);
    cmd.args([
        "train",
        "--template",
        "activity-classifier",
        "--json",
        "--data",
    ])
    .arg(data)
    .arg("--test")
    .arg(test)
    .arg("--out")
    .arg(run_dir);
    for p in params {
        cmd.args(["--param", p]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    json_lines(&stdout(&out))
}

fn report(run_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn folder_layout_auto_trains_both_candidates_and_predicts_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train"), tmp.path().join("test"));
    folder_dataset(&data, 8, 300, 1);
    folder_dataset(&test, 3, 300, 777);
    let run_dir = tmp.path().join("run");
    let events = train(&cache, &data, &test, &run_dir, &[]);
    assert!(
        events.iter().any(|e| e["event"] == "epoch_end"),
        "the CNN trained"
    );
    let r = report(&run_dir);
    let board = r["training"]["leaderboard"].as_array().unwrap();
    let names: Vec<&str> = board
        .iter()
        .map(|e| e["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boosted_trees", "cnn"], "{board:?}");
    for e in board {
        assert!(e["validation_accuracy"].as_f64().unwrap() > 0.5, "{e}");
    }
    let test_eval = &r["evaluation"]["test"];
    assert_eq!(test_eval["num_examples"], 12);
    let acc = test_eval["accuracy"].as_f64().unwrap();
    eprintln!(
        "folder layout: {} chosen, test session accuracy {acc}, windows {}",
        r["training"]["algorithm"], r["window_evaluation"]["test"]["accuracy"]
    );
    assert!(acc >= 0.75, "test accuracy {acc} (chance 0.25)");
    assert!(r["window_evaluation"]["test"]["accuracy"].as_f64().unwrap() >= 0.7);
    assert_eq!(r["data"]["sample_rate"].as_f64().unwrap().round(), 50.0);
    assert!(run_dir.join("model/model.safetensors").is_file());

    // predict: every window, then the session.
    let file = test.join("running/s01.csv");
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&stdout(&out));
    // 300 samples, windows of 100 every 50: 5 windows + the session.
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[0]["input"].as_str().unwrap().ends_with("[0:100]"));
    assert_eq!(lines[5]["input"], file.to_str().unwrap());
    assert_eq!(lines[5]["label"], "running");

    // evaluate gives the same session accuracy.
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let ev: serde_json::Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(ev["num_examples"], 12);
    assert!(
        (ev["accuracy"].as_f64().unwrap() - acc).abs() < 1e-9,
        "{ev}"
    );
}

#[test]
fn table_layout_trains_boosted_trees_and_refuses_coreml_for_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    table_dataset(&data, 8, 300, 3);
    table_dataset(&test, 3, 300, 999);
    let run_dir = tmp.path().join("run");
    train(&cache, &data, &test, &run_dir, &["algorithm=boosted_trees"]);
    let r = report(&run_dir);
    assert_eq!(
        r["data"]["num_train_sessions"].as_u64().unwrap()
            + r["data"]["num_validation_sessions"].as_u64().unwrap(),
        32
    );
    // session and label columns are not sensors.
    assert_eq!(
        r["data"]["columns"].as_array().unwrap().len(),
        6,
        "{}",
        r["data"]["columns"]
    );
    let acc = r["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    eprintln!("table layout, boosted trees: test session accuracy {acc}");
    assert!(acc >= 0.75, "test accuracy {acc}");
    // predict on the test table: per session (named table#id).
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let sessions: Vec<serde_json::Value> = json_lines(&stdout(&out))
        .into_iter()
        .filter(|l| !l["input"].as_str().unwrap().ends_with(']'))
        .collect();
    assert_eq!(sessions.len(), 12);
    let right = sessions
        .iter()
        .filter(|s| {
            s["input"]
                .as_str()
                .unwrap()
                .contains(&format!("#{}-", s["label"].as_str().unwrap()))
        })
        .count();
    assert!(right >= 9, "{right} of 12 sessions right");
    // Core ML: the trees model is refused with a message naming what works.
    let out = run(lathe(&cache)
        .args(["export", "--format", "coreml"])
        .arg(&run_dir)
        .arg("--out")
        .arg(tmp.path().join("m.mlmodel")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("algorithm=cnn"), "{}", stderr(&out));
}

#[test]
fn cnn_coreml_export_agrees_with_predict_on_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train"), tmp.path().join("test"));
    folder_dataset(&data, 6, 250, 5);
    folder_dataset(&test, 2, 250, 555);
    let run_dir = tmp.path().join("run");
    train(
        &cache,
        &data,
        &test,
        &run_dir,
        &["algorithm=cnn", "epochs=4"],
    );
    let model_path = tmp.path().join("activity.mlmodel");
    let info = coreml_checker::export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 1);
    let m = lathe_engine::export::coreml::spec::read(&model_path).unwrap();
    let desc = m.description.clone().unwrap();
    assert_eq!(desc.input[0].name, "windowData");
    let Some(coreml_proto::proto::feature_type::Type::MultiArrayType(a)) =
        &desc.input[0].r#type.as_ref().unwrap().r#type
    else {
        panic!("input is not a multi-array")
    };
    assert_eq!(a.shape, [1, 100, 6]);
    let Some(python) = coreml_python() else {
        return;
    };
    // 24 recordings of exactly one window (different activities and sessions).
    let mut files = Vec::new();
    for i in 0..24u64 {
        let rows = gen_session((i % 4) as usize, 100, 4242 + i);
        let path = tmp.path().join("windows").join(format!("w{i:02}.csv"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, csv_of(&rows)).unwrap();
        files.push((path, rows));
    }
    let inputs: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let raw = tmp.path().join("preds.raw.jsonl");
    coreml_checker::predictions(&cache, &run_dir, &inputs, &[], &raw);
    let mut out = String::new();
    for p in json_lines(&std::fs::read_to_string(&raw).unwrap()) {
        let input = p["input"].as_str().unwrap().to_string();
        if input.ends_with(']') {
            continue; // the window line; the session line (one window) follows
        }
        let (_, rows) = files
            .iter()
            .find(|(f, _)| f.to_str().unwrap() == input)
            .unwrap();
        // The values as the CSV holds them (what the engine parsed), one row per sample.
        let text = std::fs::read_to_string(&input).unwrap();
        let samples: Vec<f64> = text
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .skip(1)
                    .map(|v| v.parse::<f32>().unwrap() as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(samples.len(), rows.len() * 6);
        let mut p = p.clone();
        p["samples"] = serde_json::json!(samples);
        out.push_str(&serde_json::to_string(&p).unwrap());
        out.push('\n');
    }
    let preds = tmp.path().join("preds.jsonl");
    std::fs::write(&preds, out).unwrap();
    let d = coreml_checker::assert_agrees(
        &python,
        &model_path,
        &preds,
        &["--sound"],
        "activity cnn fp32",
    );
    eprintln!("activity CNN Core ML max |Δp| = {d:e}");
}

#[test]
fn bad_recordings_are_warnings_and_training_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train"), tmp.path().join("test"));
    folder_dataset(&data, 4, 220, 11);
    folder_dataset(&test, 1, 220, 12);
    let good = csv_of(&gen_session(3, 220, 99));
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    // ragged rows, text in a sensor column, NaN
    lines[5] = "0.1,0.2".into();
    let mut cells: Vec<String> = lines[12].split(',').map(str::to_string).collect();
    cells[2] = "abc".into();
    lines[12] = cells.join(",");
    let mut cells: Vec<String> = lines[20].split(',').map(str::to_string).collect();
    cells[3] = "NaN".into();
    lines[20] = cells.join(",");
    std::fs::write(data.join("walking/broken.csv"), lines.join("\n")).unwrap();
    std::fs::write(
        data.join("walking/one_row.csv"),
        format!("{HEADER}\n0,0.1,0.2,9.8,0,0,0\n"),
    )
    .unwrap();
    std::fs::write(data.join("sitting/notes.csv"), "not,a\nrecording\n").unwrap();
    let run_dir = tmp.path().join("run");
    let events = train(
        &cache,
        &data,
        &test,
        &run_dir,
        &["algorithm=boosted_trees", "max_iterations=20"],
    );
    let warnings: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| {
            format!(
                "{} {}",
                e["message"].as_str().unwrap_or(""),
                e["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    let all = warnings.join("\n");
    eprintln!("{all}");
    assert!(
        all.contains("broken.csv") && all.contains("wrong number of fields"),
        "{all}"
    );
    assert!(
        all.contains("text in a sensor column (first: line 13, column acc_y)"),
        "{all}"
    );
    assert!(all.contains("missing or NaN sensor value"), "{all}");
    assert!(
        all.contains("one_row.csv") && all.contains("shorter than one prediction window"),
        "{all}"
    );
    assert!(run_dir.join("model/config.json").is_file());
    // A training set with nothing usable is a one-line error naming the folder.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("walking")).unwrap();
    std::fs::write(
        empty.join("walking/a.csv"),
        format!("{HEADER}\n0,1,2,3,4,5,6\n"),
    )
    .unwrap();
    let out = run(lathe(&cache)
        .args(["train", "--template", "activity-classifier", "--data"])
        .arg(&empty)
        .arg("--out")
        .arg(tmp.path().join("run2")));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no usable training session"),
        "{}",
        stderr(&out)
    );
}
