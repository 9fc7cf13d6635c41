//! ONNX export of the activity classifier, checked in ONNX Runtime: both candidates (the 1-D
//! CNN; per-window statistics + boosted trees, the statistics computed in the graph) are trained
//! by the CLI on generated motion recordings (the seeded gait generator of `activity.rs`),
//! exported with `lathe export --format onnx`, validated by `onnx.checker` (full check) and run
//! by ONNX Runtime through `tests/onnx/check.py` on 24 windows at once (`[24, window, channels]`,
//! the values as the engine parsed them from the CSVs), against `lathe predict --json` on the
//! same windows: the same top label on every window and |Δp| ≤ 1e-5. Half the windows mix two
//! activities so that the probabilities are not all ~1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const ACTIVITIES: [&str; 4] = ["running", "sitting", "standing", "walking"];
const RATE: f64 = 50.0;
const HEADER: &str = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

/// Rows `[t, acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z]` of one session of `activity`: the
/// gait model of `engine/tests/activity.rs` (gravity by posture and orientation, a periodic gait
/// for walking and running, sway, sensor noise).
fn gen_session(activity: usize, n: usize, seed: u64) -> Vec<[f64; 7]> {
    let mut r = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ activity as u64);
    let g = 9.81;
    let tilt = match activity {
        1 => r.range(1.1, 1.4),
        _ => r.range(0.0, 0.25),
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

/// Window `i` of the comparison: one activity for even `i`; for odd `i` a blend of two
/// activities (weights varying with `i`) so the models are unsure.
fn window_rows(i: usize, n: usize) -> Vec<[f64; 7]> {
    let a = gen_session(i % 4, n, 4242 + i as u64);
    if i % 2 == 0 {
        return a;
    }
    let b = gen_session((i / 2) % 4, n, 9191 + i as u64);
    let t = 0.3 + 0.4 * ((i * 7) % 10) as f64 / 10.0;
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            let mut r = *x;
            for k in 1..7 {
                r[k] = (1.0 - t) * x[k] + t * y[k];
            }
            r
        })
        .collect()
}

/// Trains, exports and compares ONNX Runtime with `lathe predict` on 24 windows; returns the
/// largest |Δp|.
fn agrees(name: &str, params: &[&str]) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (data, test) = (tmp.path().join("train"), tmp.path().join("test"));
    folder_dataset(&data, 6, 250, 5);
    folder_dataset(&test, 2, 250, 555);
    let run_dir = tmp.path().join("run");
    let mut cmd = lathe(&cache);
    cmd.args([
        "train",
        "--template",
        "activity-classifier",
        "--json",
        "--data",
    ])
    .arg(&data)
    .arg("--test")
    .arg(&test)
    .arg("--out")
    .arg(&run_dir);
    for p in params {
        cmd.args(["--param", p]);
    }
    let o = run(&mut cmd);
    assert!(o.status.success(), "{name}: train failed: {}", stderr(&o));

    let model = tmp.path().join("activity.onnx");
    let o = run(lathe(&cache)
        .args(["export", "--format", "onnx", "--json", "--out"])
        .arg(&model)
        .arg(&run_dir));
    assert!(o.status.success(), "{name}: export failed: {}", stderr(&o));
    eprintln!("{name}: exported {}", stdout(&o).trim());
    let python = fetched("LATHE_ONNX_PYTHON", "scripts/onnx-env.sh prints it")
        .expect("LATHE_ONNX_PYTHON: the ONNX checker's Python");

    // 24 recordings of exactly one window each.
    let window = 100;
    let mut files = Vec::new();
    let mut samples: Vec<f32> = Vec::new();
    for i in 0..24 {
        let path = tmp.path().join("windows").join(format!("w{i:02}.csv"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = csv_of(&window_rows(i, window));
        // The values as the engine parses them: f64, then f32.
        for line in text.lines().skip(1) {
            samples.extend(
                line.split(',')
                    .skip(1)
                    .map(|v| v.parse::<f64>().unwrap() as f32),
            );
        }
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let raw = tmp.path().join("window.f32");
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    let spec = tmp.path().join("window.spec.json");
    let json = serde_json::json!({ "window": {"dtype": "float32", "shape": [24, window, 6], "file": raw} });
    std::fs::write(&spec, json.to_string()).unwrap();
    let out = Command::new(&python)
        .arg(repo().join("tests/onnx/check.py"))
        .arg(&model)
        .arg("--inputs")
        .arg(&spec)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{name}: check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let onnx: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let meta = &onnx["metadata"];
    assert_eq!(onnx["inputs"][0]["name"], "window");
    assert_eq!(
        onnx["inputs"][0]["shape"],
        serde_json::json!(["N", "100", "6"])
    );
    assert_eq!(
        meta["columns"],
        r#"["acc_x","acc_y","acc_z","gyro_x","gyro_y","gyro_z"]"#
    );
    assert_eq!(meta["lathe_version"], lathe_engine::VERSION);
    assert!(onnx["opsets"]["ai.onnx"].as_i64().unwrap() >= 17);
    let labels: Vec<String> = serde_json::from_str(meta["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels, ACTIVITIES);

    let o = run(lathe(&cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(&run_dir)
        .args(&files));
    assert!(o.status.success(), "{name}: predict failed: {}", stderr(&o));
    // Each file: its one window, then the session (the same probabilities); keep the windows.
    let engine: Vec<serde_json::Value> = json_lines(&stdout(&o))
        .into_iter()
        .filter(|p| p["input"].as_str().unwrap().ends_with("[0:100]"))
        .collect();
    assert_eq!(engine.len(), 24, "{name}: one window per file");
    let probs = onnx["outputs"]["probabilities"].as_array().unwrap();
    let onnx_labels = onnx["outputs"]["label"].as_array().unwrap();
    assert_eq!(probs.len(), 24);
    let (mut worst, mut unsure) = (0f64, 0f64);
    for (i, e) in engine.iter().enumerate() {
        let p: Vec<f64> = probs[i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), labels.len());
        let mut best = 0;
        for (l, label) in labels.iter().enumerate() {
            let q = e["probabilities"][label].as_f64().unwrap();
            worst = worst.max((p[l] - q).abs());
            unsure = unsure.max(q.min(1.0 - q));
            if p[l] > p[best] {
                best = l;
            }
        }
        assert_eq!(e["label"], labels[best].as_str(), "{name}: window {i}");
        assert_eq!(onnx_labels[i], labels[best].as_str(), "{name}: window {i}");
    }
    // Not a degenerate comparison: some window is unsure.
    assert!(unsure > 1e-2, "{name}: every probability is ~0 or ~1");
    eprintln!("{name}: max |Δp| = {worst:e} over 24 windows");
    assert!(worst <= 1e-5, "{name}: |Δp| = {worst:e} > 1e-5");
    worst
}

#[test]
fn cnn_activity_model_agrees_with_onnx_runtime() {
    agrees("cnn", &["algorithm=cnn", "epochs=4"]);
}

#[test]
fn boosted_trees_activity_model_agrees_with_onnx_runtime() {
    agrees("boosted_trees", &["algorithm=boosted_trees"]);
}
