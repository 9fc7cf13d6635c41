//! Runs as first-class items: a reopened project shows its newest finished run (Evaluate has its
//! report, Preview predicts with its model, Export exports it), as training it in the window
//! would have left it; the runs list shows every run and a click makes one current; "Open run…"
//! (File menu, built-in folder browser) opens a run folder copied elsewhere with its data, which
//! evaluates there and continues beside itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    MINUTE, browse_to, harness, make_dataset, options, save_image_project, train_with_engine,
    wait_until,
};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use lathe_engine::train::Status;
use lathe_studio::app::StudioOptions;
use lathe_studio::{Command, Screen, Studio};
use std::path::{Path, PathBuf};

/// Saves an image-classifier project (training and test folders) in `dir` and trains it to the
/// end with the engine. Returns the project file and the run folder.
fn trained_project(dir: &Path, cache: &Path, head: Option<&str>) -> (PathBuf, PathBuf) {
    let train = dir.join("data/train");
    let test = dir.join("data/test");
    make_dataset(&train, &["a", "b", "c"], 5, 0);
    make_dataset(&test, &["a", "b", "c"], 2, 100);
    let file = save_project(dir, head);
    (file.clone(), train_with_engine(&file, cache))
}

/// Saves an image-classifier project on `dir/data/{train,test}` with `head`, when given.
fn save_project(dir: &Path, head: Option<&str>) -> PathBuf {
    let params: Vec<(&str, toml::Value)> = head
        .map(|h| ("head", toml::Value::String(h.into())))
        .into_iter()
        .collect();
    save_image_project(dir, &params)
}

/// Copies a folder tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
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
    // The default head is the logistic one fitted by L-BFGS: iterations, not epochs.
    h.get_by_label_contains("L-BFGS iterations");
    assert_eq!(h.query_all_by_label_contains("best epoch").count(), 0);

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
    let exported = h.state().state.exports[0].clone();
    let (format, folder) = (exported.format, exported.path);
    assert_eq!(format, "safetensors");
    assert!(folder.join("model.safetensors").is_file());
}

#[test]
fn the_runs_list_switches_runs_and_open_run_opens_a_copied_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let project_dir = tmp.path().join("project");
    // Two finished runs; the AdamW head, so runs can be continued.
    let (file, older) = trained_project(&project_dir, &cache, Some("mlp"));
    // Run folders are named by the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let newer = train_with_engine(&file, &cache);
    assert_ne!(older, newer);

    let mut h = harness(Studio::new(StudioOptions {
        builtin_dialogs: true,
        ..options(tmp.path(), 1)
    }));
    h.run();
    h.state_mut().send(Command::OpenProject(file));
    wait_until(&mut h, "the newest run and the runs list", MINUTE, |s| {
        s.state.report.is_some() && s.state.model.loaded && s.state.runs.len() == 2
    });
    assert_eq!(h.state().state.run.run_dir.as_ref(), Some(&newer));
    h.get_by_label("Train").click();
    h.run();
    h.get_by_label("Runs (2)");
    let name = |d: &Path| d.file_name().unwrap().to_string_lossy().into_owned();
    for run in [&older, &newer] {
        let result = format!("test accuracy {}", test_accuracy_text(run));
        assert!(h.query_all_by_label(&result).next().is_some(), "{result}");
    }
    assert_eq!(h.query_all_by_label_contains("test accuracy ").count(), 2);
    assert_eq!(h.query_all_by_label("finished").count(), 2);

    // Clicking the older run makes it the current run: Evaluate shows its report.
    h.get_by_label(&name(&older)).click();
    wait_until(&mut h, "the older run", MINUTE, |s| {
        s.state.run.run_dir.as_ref() == Some(&older)
            && s.state.report.is_some()
            && s.state.model.loaded
    });
    assert_eq!(h.state().state.model.source.as_ref(), Some(&older));
    h.get_by_label("Evaluate").click();
    h.run();
    h.get_by_label_contains(&format!("Run {}", name(&older)));
    assert_eq!(h.query_all_by_label("Accuracy").count(), 2);

    // The whole project folder copied elsewhere, the original gone: its recorded paths are stale.
    let copied = tmp.path().join("elsewhere/copied-project");
    copy_dir(&project_dir, &copied);
    std::fs::rename(&project_dir, tmp.path().join("project-gone")).unwrap();
    let copied_run = copied.join("runs").join(name(&newer));

    // File > Open run…, in the built-in folder browser.
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Open run…").click();
    wait_until(&mut h, "the browser's listing", MINUTE, |s| {
        s.state
            .file_dialog
            .as_ref()
            .is_some_and(|b| b.listing.is_some())
    });
    browse_to(&mut h, &copied_run);
    h.get_by_label("Choose this folder").click();
    wait_until(&mut h, "the copied run", MINUTE, |s| {
        s.state.run.run_dir.as_ref() == Some(&copied_run)
            && s.state.report.is_some()
            && s.state.model.loaded
    });
    let state = &h.state().state;
    assert_eq!(state.screen, Screen::Evaluate);
    assert_eq!(state.model.source.as_ref(), Some(&copied_run));
    // The project is the run's, its data found beside the copy.
    let project = state.project.as_ref().unwrap();
    assert!(
        project.data.train.starts_with(&copied),
        "{:?}",
        project.data
    );
    // The report's samples are listed where they now are.
    let report = state.report.as_ref().unwrap();
    let mut samples = 0;
    for (_, evaluation) in &report.evaluations {
        if let lathe_studio::report::EvalView::Classification(r) = evaluation {
            for s in &r.samples {
                assert!(s.input.starts_with(&copied), "{}", s.input.display());
                assert!(s.input.is_file(), "{}", s.input.display());
                samples += 1;
            }
        }
    }
    assert!(samples > 0);
    assert_eq!(h.query_all_by_label("Accuracy").count(), 2);
    h.get_by_label_contains(&format!("Run {}", name(&newer)));
    wait_until(&mut h, "the copy's runs", MINUTE, |s| {
        s.state.runs.len() == 2
    });

    // Evaluating it again on the copied test folder works too.
    h.state_mut()
        .send(Command::EvaluateFolder(copied.join("data/test")));
    wait_until(&mut h, "the evaluation", MINUTE, |s| {
        s.state.extra_evaluation.is_some()
    });

    // "Continue training…" continues the opened run, beside it.
    h.get_by_label("Train").click();
    h.run();
    h.get_by_label("Continue training…").click();
    h.run();
    h.get_by_role(Role::SpinButton).set_value_accesskit(1.0);
    h.run();
    h.get_by_label("Start continuing").click();
    wait_until(&mut h, "the continued run to start", MINUTE, |s| {
        s.state.run_active || s.state.notice.is_some()
    });
    wait_until(&mut h, "the continued run to finish", 3 * MINUTE, |s| {
        !s.state.run_active
    });
    let run = &h.state().state.run;
    assert_eq!(
        run.status,
        Status::Completed,
        "{:?} {:?}",
        run.error,
        h.state().state.notice
    );
    let continued = copied
        .join("runs")
        .join(format!("{}-continued", name(&newer)));
    assert_eq!(run.run_dir.as_ref(), Some(&continued));
    assert!(continued.join("model/config.json").is_file());
    wait_until(&mut h, "the continued run in the list", MINUTE, |s| {
        s.state.runs.len() == 3
    });
    h.get_by_label("Runs (3)");
    h.get_by_label(&name(&continued));
}
