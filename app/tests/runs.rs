//! Runs as first-class items: a reopened project shows its newest finished run (Evaluate has its
//! report, Preview predicts with its model, Export exports it), as training it in the window
//! would have left it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, harness, make_dataset, options, wait_until};
use egui_kittest::kittest::Queryable;
use lathe_engine::train::{Outcome, RunOptions, Status};
use lathe_engine::{Project, Session, SessionOptions};
use lathe_studio::{Command, Screen, Studio};
use std::path::{Path, PathBuf};

/// Saves an image-classifier project (training and test folders) in `dir` and trains it to the
/// end with the engine. Returns the project file and the run folder.
fn trained_project(dir: &Path, cache: &Path, head: Option<&str>) -> (PathBuf, PathBuf) {
    let train = dir.join("data/train");
    let test = dir.join("data/test");
    make_dataset(&train, &["a", "b", "c"], 5, 0);
    make_dataset(&test, &["a", "b", "c"], 2, 100);
    let mut project = Project::new("image-classifier", train);
    project.data.test = Some(test);
    for (k, v) in [
        ("epochs", 3),
        ("image_size", 48),
        ("batch_size", 2),
        ("early_stopping_patience", 0),
    ] {
        project.params.insert(k.into(), toml::Value::Integer(v));
    }
    if let Some(head) = head {
        project
            .params
            .insert("head".into(), toml::Value::String(head.into()));
    }
    let file = dir.join("project.toml");
    project.save(&file).unwrap();
    let project = Project::load(&file).unwrap();
    let session = Session::start(
        project,
        SessionOptions {
            run: RunOptions {
                cache_dir: Some(cache.to_path_buf()),
                weights: None,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let run_dir = session.run_dir().to_path_buf();
    let outcome = session.run_to_end(|_| {});
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(run_dir.join("model/config.json").is_file());
    assert!(run_dir.join("report.json").is_file());
    (file, run_dir)
}

/// The test accuracy `report.json` records, as the Evaluate screen writes it.
fn test_accuracy_text(run_dir: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let accuracy = report["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    format!("{:.1}%", accuracy * 100.0)
}

#[test]
fn a_reopened_project_shows_its_last_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (file, run_dir) = trained_project(&tmp.path().join("project"), &cache, None);
    let accuracy = test_accuracy_text(&run_dir);

    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    h.state_mut().send(Command::OpenProject(file));
    wait_until(&mut h, "the last run's report and model", MINUTE, |s| {
        s.state.report.is_some() && s.state.model.loaded
    });
    let state = &h.state().state;
    assert_eq!(state.run.status, Status::Completed);
    assert_eq!(state.run.run_dir.as_ref(), Some(&run_dir));
    assert_eq!(state.model.source.as_ref(), Some(&run_dir));
    assert_eq!(state.screen, Screen::Data);
    let name = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    h.get_by_label(&format!("The last run, {name}, finished."));

    // Evaluate shows the run's report: a metrics table per split, the test accuracy.
    h.get_by_label("Evaluate").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Evaluate);
    assert_eq!(h.query_all_by_label("Accuracy").count(), 2);
    assert!(
        h.query_all_by_label(&accuracy).next().is_some(),
        "{accuracy}"
    );

    // The Train screen shows the run's curves and its end.
    h.get_by_label("Train").click();
    h.run();
    h.get_by_label_contains("Finished in");

    // Preview predicts with its model.
    let image = tmp.path().join("project/data/test/b/100.png");
    h.state_mut().send(Command::Predict(vec![image]));
    wait_until(&mut h, "the prediction", MINUTE, |s| {
        !s.state.previews.is_empty()
    });
    let prediction = h.state().state.previews[0].result.as_ref().unwrap();
    assert_eq!(prediction.ranked.len(), 3);
    h.get_by_label_contains("Prediction:");

    // Export exports it.
    h.get_by_label("Export").click();
    h.run();
    h.get_by_label("Export safetensors").click();
    wait_until(&mut h, "the export", MINUTE, |s| {
        !s.state.exports.is_empty()
    });
    let (format, folder) = h.state().state.exports[0].clone();
    assert_eq!(format, "safetensors");
    assert!(folder.join("model.safetensors").is_file());
}
