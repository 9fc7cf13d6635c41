//! Runs the real `lathe` binary on the generated bad-input corpus (`tests/corpus`): `lathe check`
//! on every case and `lathe train --epochs 1` where training is cheap. Every run must end (a
//! timeout counts as a failure), never panic, and have the case's outcome: exit 1 with an error
//! line naming the file, or exit 0 (with the expected warning). Prints the count and pass rate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod corpus;

use corpus::Expect;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above what any case needs (a debug build on a loaded machine); a run past it is a hang.
const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `cmd` with a deadline; `None` when it had to be killed.
fn run_bounded(cmd: &mut Command) -> Option<(Option<i32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("lathe starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()),
        String::from_utf8_lossy(&std::fs::read(&err_path).unwrap())
    );
    Some((status.code(), text))
}

/// `Ok` when the run matches `expect`, else why not.
fn judge(expect: &Expect, result: Option<(Option<i32>, String)>) -> Result<(), String> {
    let Some((code, text)) = result else {
        return Err(format!("did not finish within {TIMEOUT:?} (a hang)"));
    };
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        return Err(format!("panicked:\n{text}"));
    }
    let has_line = |tag: &str, fragment: &str| {
        text.lines().any(|l| {
            let lower = l.to_lowercase();
            lower.contains(tag) && l.contains(fragment)
        })
    };
    match expect {
        Expect::Refused(fragment) => {
            if code != Some(1) {
                return Err(format!("expected exit 1, got {code:?}:\n{text}"));
            }
            // `lathe train --json` reports the failure in its `finished` event.
            if !has_line("error", fragment) && !has_line("\"status\":\"failed\"", fragment) {
                return Err(format!("no error line naming {fragment:?}:\n{text}"));
            }
        }
        Expect::Warned(fragment) => {
            if code != Some(0) {
                return Err(format!("expected exit 0, got {code:?}:\n{text}"));
            }
            if !has_line("warn", fragment) {
                return Err(format!("no warning naming {fragment:?}:\n{text}"));
            }
        }
        Expect::Accepted => {
            if code != Some(0) {
                return Err(format!("expected exit 0, got {code:?}:\n{text}"));
            }
        }
    }
    Ok(())
}

fn is_project(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

#[test]
fn every_bad_input_is_refused_by_name_or_warned_about_never_a_panic_or_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("corpus");
    let cache = tmp.path().join("cache");
    let cases = corpus::generate(&root);
    let only = std::env::var("LATHE_CORPUS_ONLY").ok();
    let mut runs = 0usize;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        let mut check = common::lathe(&cache);
        check.arg("check");
        if !is_project(&case.data) {
            check.args(["--template", case.template]);
        }
        check.arg(&case.data);
        runs += 1;
        if let Err(why) = judge(&case.check, run_bounded(&mut check)) {
            failures.push(format!("{} (check): {why}", case.name));
        }
        let Some(expect) = &case.train else { continue };
        let mut train = common::lathe(&cache);
        train.arg("train");
        if is_project(&case.data) {
            train.arg(&case.data);
        } else {
            train.args(["--template", case.template, "--data"]);
            train.arg(&case.data);
        }
        if !case.template.starts_with("tabular") {
            train.args(["--epochs", "1"]);
        }
        train
            .args(["--json", "--out"])
            .arg(tmp.path().join(format!("run{i}")))
            .args(&case.params);
        runs += 1;
        if let Err(why) = judge(expect, run_bounded(&mut train)) {
            failures.push(format!("{} (train): {why}", case.name));
        }
    }
    let passed = runs - failures.len();
    println!(
        "bad-input corpus: {} cases, {runs} runs of lathe, {passed} passed ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / runs.max(1) as f64
    );
    for f in &failures {
        println!("FAILED {f}\n");
    }
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed",
        failures.len()
    );
}
