//! Helpers of the Core ML export tests: `lathe export --format coreml`, running
//! `tests/coreml/check.py` (with `common::coreml_python`, set by scripts/test through
//! scripts/coreml-env.sh), and writing deliberately broken copies of an export.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{json_lines, lathe, run, stderr, stdout};
use coreml_proto::proto::Model;
use lathe_engine::export::coreml::spec;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `lathe export RUN --format coreml --precision P --out OUT --json`; returns its JSON line.
pub fn export(cache: &Path, run_dir: &Path, out_path: &Path, precision: &str) -> serde_json::Value {
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

/// `lathe predict RUN INPUTS... --json --top 1000 [extra]`, written to `file` for the checker.
pub fn predictions(cache: &Path, run_dir: &Path, inputs: &[PathBuf], extra: &[&str], file: &Path) {
    let out = run(lathe(cache)
        .args(["predict", "--json", "--top", "1000"])
        .args(extra)
        .arg(run_dir)
        .args(inputs));
    assert!(out.status.success(), "predict failed: {}", stderr(&out));
    std::fs::write(file, stdout(&out)).unwrap();
}

/// Runs the checker; returns (exit code, its JSON report).
pub fn check(
    python: &Path,
    model: &Path,
    preds: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
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

/// The checker must accept `model` to 1e-4 on ≥ 20 inputs; returns its max difference.
pub fn assert_agrees(python: &Path, model: &Path, preds: &Path, extra: &[&str], what: &str) -> f64 {
    let (code, report) = check(python, model, preds, extra);
    eprintln!("{what}: {report}");
    assert_eq!(code, 0, "{what}: checker rejected the export: {report}");
    assert!(report["inputs"].as_u64().unwrap() >= 20, "{report}");
    let d = report["max_abs_diff"].as_f64().unwrap();
    assert!(d <= 1e-4, "{what}: {d}");
    d
}

/// The checker must reject `model`.
pub fn assert_rejected(python: &Path, model: &Path, preds: &Path, extra: &[&str], what: &str) {
    let (code, report) = check(python, model, preds, extra);
    eprintln!("broken ({what}): {report}");
    assert_eq!(
        code, 1,
        "checker accepted a broken export ({what}): {report}"
    );
}

/// Writes a modified copy of `src` to `dst`.
pub fn mutate(src: &Path, dst: &Path, f: impl FnOnce(&mut Model)) {
    let mut m = spec::read(src).unwrap();
    f(&mut m);
    spec::write(dst, &m).unwrap();
}
