//! The whole app, headless, through AccessKit labels: pick a template, drop training and test
//! folders, start training on tiny generated data, watch the plots receive points, look at the
//! evaluation (clicking a confusion-matrix cell lists its samples), preview a dropped image,
//! export, and save a project file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, drop_paths, harness, make_dataset, options, wait_until};
use egui_kittest::kittest::Queryable;
use lathe_engine::train::Status;
use lathe_studio::state::ScanState;
use lathe_studio::{Command, Screen, Studio};

#[test]
fn template_to_export_through_the_ui() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("data/train");
    let test = tmp.path().join("data/test");
    make_dataset(&train, &["apple", "banana", "cherry"], 6, 0);
    make_dataset(&test, &["apple", "banana", "cherry"], 3, 100);
    let mut h = harness(Studio::new(options(tmp.path(), 4)));
    h.run();

    // Template picker → data screen.
    h.get_by_label("Choose a template");
    h.get_by_label("Image Classifier").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Data);

    // Drop the training folder anywhere; drop the test folder on the test zone.
    drop_paths(&mut h, std::slice::from_ref(&train), None);
    wait_until(&mut h, "the training scan", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Done(_))
    });
    let test_zone = h.get_by_label("Test data").rect().center();
    drop_paths(&mut h, std::slice::from_ref(&test), Some(test_zone));
    wait_until(&mut h, "the test scan", MINUTE, |s| {
        s.state
            .scan
            .summary()
            .is_some_and(|x| x.split("test").is_some())
    });
    let project = h.state().state.project.clone().unwrap();
    assert_eq!(project.data.train, train);
    assert_eq!(project.data.test.as_deref(), Some(test.as_path()));
    h.get_by_label_contains("3 classes");
    assert!(h.query_all_by_label("apple").next().is_some());

    // Settings → Train.
    h.get_by_label("Next: Settings").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Settings);
    h.get_by_label("Next: Train").click();
    h.run();
    h.get_by_label("Start training").click();
    wait_until(&mut h, "the first epoch's points", MINUTE, |s| {
        !s.state.run.train_loss.is_empty()
    });
    h.get_by_label("Loss");
    h.get_by_label("Accuracy");
    wait_until(&mut h, "training to finish", 3 * MINUTE, |s| {
        s.state.run.status.is_finished()
    });
    let run = &h.state().state.run;
    assert_eq!(run.status, Status::Completed, "{:?}", run.error);
    assert_eq!(run.train_loss.points().len(), run.epoch);
    assert!(!run.validation_accuracy.is_empty());
    h.get_by_label_contains("Finished in");

    // Evaluate: metrics and the confusion matrix; a cell lists its samples.
    h.get_by_label("See the evaluation").click();
    wait_until(&mut h, "the report", MINUTE, |s| s.state.report.is_some());
    assert_eq!(h.state().state.screen, Screen::Evaluate);
    // One metrics table per split (validation and test).
    assert_eq!(h.query_all_by_label("Macro F1").count(), 2);
    let cell = h
        .get_all_by_label_contains("true apple, predicted apple")
        .next()
        .unwrap()
        .rect()
        .center();
    h.hover_at(cell);
    h.run();
    h.get_all_by_label_contains("true apple, predicted apple")
        .next()
        .unwrap()
        .click();
    h.run();
    let (split, t, p) = h.state().state.selected_cell.clone().unwrap();
    assert_eq!((t, p), (0, 0));
    assert!(split == "validation" || split == "test");
    h.get_by_label_contains("labelled apple, predicted apple");

    // Preview: drop an image, see the top predictions.
    h.get_by_label("Preview").click();
    wait_until(&mut h, "the model to load", MINUTE, |s| {
        s.state.model.loaded
    });
    let image = test.join("banana/100.png");
    drop_paths(&mut h, std::slice::from_ref(&image), None);
    wait_until(&mut h, "predictions", MINUTE, |s| {
        !s.state.previews.is_empty()
    });
    h.get_by_label_contains("Prediction:");
    let first = &h.state().state.previews[0];
    let prediction = first.result.as_ref().unwrap();
    assert_eq!(prediction.ranked.len(), 3);
    let total: f32 = prediction.ranked.iter().map(|r| r.1).sum();
    assert!((total - 1.0).abs() < 1e-3, "{total}");

    // Export writes a safetensors folder.
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
    assert!(folder.join("config.json").is_file());
    h.get_by_label_contains("safetensors:");

    // Save the project (the dialog's answer is a SaveProjectTo command).
    let file = tmp.path().join("proj/project.toml");
    h.state_mut().send(Command::SaveProjectTo(file.clone()));
    wait_until(&mut h, "the project file", MINUTE, |s| !s.state.dirty);
    let saved = lathe_engine::Project::load(&file).unwrap();
    assert_eq!(saved.template, "image-classifier");
    assert_eq!(saved.resolve(&saved.data.train), train);
    assert_eq!(h.state().state.recent.first(), Some(&file));
}

#[test]
fn settings_form_edits_the_project_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 2)));
    h.run();
    h.get_by_label("Image Classifier").click();
    h.run();
    h.get_by_label("Settings").click();
    h.run();
    // Every parameter of the task that applies has a row (Advanced ones once Advanced is
    // opened), with the template's default.
    h.get_by_label("Advanced").click();
    h.run();
    let template = h.state().state.project.clone().unwrap().template;
    let studio = h.state();
    let applying: Vec<_> = studio
        .state
        .specs
        .iter()
        .filter(|s| {
            lathe_studio::settings_layout::applies(&template, &s.key, &|k| studio.state.param(k))
        })
        .cloned()
        .collect();
    for spec in applying {
        assert!(
            h.query_all_by_label(&spec.label).next().is_some(),
            "{}",
            spec.label
        );
    }
    assert_eq!(
        h.state().state.param("head"),
        Some(lathe_engine::params::ParamValue::Text("auto".into()))
    );
    // A checkbox toggles a boolean parameter into the project; reset removes it.
    // Basic comes first, in the task's order: the first checkbox is its first boolean parameter.
    let specs = h.state().state.specs.clone();
    let bool_spec = specs
        .iter()
        .filter(|s| lathe_studio::settings_layout::is_basic(&template, &s.key))
        .find(|s| matches!(s.kind, lathe_engine::params::ParamKind::Bool))
        .cloned()
        .unwrap();
    h.get_all_by_role(egui::accesskit::Role::CheckBox)
        .next()
        .unwrap()
        .click();
    h.run();
    let project = h.state().state.project.clone().unwrap();
    assert!(
        project.params.contains_key(&bool_spec.key),
        "{:?}",
        project.params
    );
    h.get_by_label("Reset").click();
    h.run();
    let project = h.state().state.project.clone().unwrap();
    assert!(!project.params.contains_key(&bool_spec.key));
    // Out-of-range values are refused with the engine's message.
    h.state_mut().send(Command::SetParam {
        key: "epochs".into(),
        value: lathe_engine::params::ParamValue::Int(-3),
    });
    h.run();
    let notice = h.state().state.notice.clone().unwrap();
    assert!(notice.error && notice.text.contains("epochs"), "{notice:?}");
}
