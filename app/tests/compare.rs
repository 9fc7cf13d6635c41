//! Two runs side by side: tick two runs in the Train screen's runs list and Compare — each run's
//! template, data, date, status and chosen model, the headline metrics of both splits with the
//! difference, both runs' loss and accuracy curves on one plot each (a legend entry per run and
//! curve), and the two confusion matrices. Runs of different templates are compared on what they
//! share, the rest marked "does not apply" (picked with "Compare with a run folder…").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    MINUTE, browse_to, harness, make_dataset, options, penguins, save_image_project,
    train_with_engine, wait_until,
};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::Project;
use lathe_studio::state::CompareState;
use lathe_studio::{Command, Screen, Studio};
use std::path::{Path, PathBuf};

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// `evaluation.<split>.<key>` of a run's report.json.
fn metric(run: &Path, split: &str, key: &str) -> Option<f64> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    report["evaluation"][split][key].as_f64()
}

/// A share as the Compare screen writes it, and the difference B − A in percentage points.
fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn points(a: f64, b: f64) -> String {
    let d = (b - a) * 100.0;
    let text = format!("{:.1}", d.abs());
    let sign = if text == "0.0" {
        ""
    } else if d > 0.0 {
        "+"
    } else {
        "\u{2212}"
    };
    format!("{sign}{text} pp")
}

fn wait_for_comparison(h: &mut Harness<'_, Studio>) {
    wait_until(h, "the comparison", MINUTE, |s| {
        matches!(
            s.state.comparison,
            Some(CompareState::Ready(_)) | Some(CompareState::Failed(_))
        )
    });
    if let Some(CompareState::Failed(e)) = &h.state().state.comparison {
        panic!("comparison failed: {e}");
    }
    h.run();
    assert_eq!(h.state().state.screen, Screen::Compare);
}

/// Two image-classifier runs of one project: 3 epochs, then 2 with another learning rate.
fn two_runs(project_dir: &Path, cache: &Path) -> (PathBuf, PathBuf, PathBuf) {
    make_dataset(&project_dir.join("data/train"), &["a", "b", "c"], 5, 0);
    make_dataset(&project_dir.join("data/test"), &["a", "b", "c"], 2, 100);
    let mlp = ("head", toml::Value::String("mlp".into()));
    let file = save_image_project(project_dir, std::slice::from_ref(&mlp));
    let first = train_with_engine(&file, cache);
    save_image_project(
        project_dir,
        &[
            mlp,
            ("epochs", toml::Value::Integer(2)),
            ("learning_rate", toml::Value::Float(0.0003)),
        ],
    );
    let second = train_with_engine(&file, cache);
    assert_ne!(first, second);
    (file, first, second)
}

#[test]
fn two_ticked_runs_open_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (file, first, second) = two_runs(&tmp.path().join("project"), &cache);

    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    h.state_mut().send(Command::OpenProject(file));
    wait_until(&mut h, "both runs listed", MINUTE, |s| {
        s.state.runs.len() == 2 && s.state.run.run_dir.is_some()
    });
    h.state_mut().send(Command::Show(Screen::Train));
    h.run();
    // Compare needs two ticks.
    h.get_by_label(&format!("Compare {}", name(&second)))
        .click();
    h.run();
    h.get_by_label("Tick one more run.");
    h.get_by_label(&format!("Compare {}", name(&first))).click();
    h.run();
    h.get_by_label("Compare the ticked runs").click();
    wait_for_comparison(&mut h);

    // Each run, the earlier one as A: its name, template, status, data and model.
    for run in [&first, &second] {
        assert!(h.query_all_by_label(&name(run)).count() >= 1, "{run:?}");
    }
    let Some(CompareState::Ready(c)) = &h.state().state.comparison else {
        unreachable!()
    };
    assert_eq!(c.a.dir(), first);
    assert_eq!(c.b.dir(), second);
    assert_eq!(h.query_all_by_label("Image Classifier").count(), 2);
    assert_eq!(h.query_all_by_label("finished").count(), 2);
    assert_eq!(
        h.query_all_by_label_contains("Classifier head: mlp")
            .count(),
        2
    );
    let data = tmp.path().join("project/data/train");
    assert_eq!(
        h.query_all_by_label_contains(&format!("Training: {}", data.display()))
            .count(),
        2
    );

    // Metrics of both splits, each run's value and the difference B − A.
    for (split, title) in [("validation", "Validation"), ("test", "Test")] {
        for (key, name) in [
            ("accuracy", "accuracy"),
            ("balanced_accuracy", "balanced accuracy"),
            ("macro_f1", "macro F1"),
        ] {
            h.get_by_label(&format!("{title} {name}"));
            let a = metric(&first, split, key).unwrap();
            let b = metric(&second, split, key).unwrap();
            for text in [percent(a), percent(b), points(a, b)] {
                assert!(
                    h.query_all_by_label(&text).next().is_some(),
                    "{split} {key}: {text} is not shown"
                );
            }
        }
    }
    h.get_by_label("Difference (B \u{2212} A)");

    // Both runs' curves on each plot: the legend names them, the x axis spans the longer run.
    h.get_by_label("Loss: epochs 0 to 3");
    h.get_by_label("Accuracy: epochs 0 to 3");
    for curve in ["A train", "A validation", "B train", "B validation"] {
        assert_eq!(h.query_all_by_label(curve).count(), 2, "{curve}");
    }

    // The two confusion matrices, in one class order.
    h.get_by_label("Confusion matrices (test data, one class order)");
    for class in ["a", "b", "c"] {
        let cell = format!("true {class}, predicted {class}: ");
        assert_eq!(h.query_all_by_label_contains(&cell).count(), 2, "{cell}");
    }

    // Back to the runs list.
    h.get_by_label("Back to the runs").click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Train);
}

#[test]
fn runs_of_different_templates_compare_what_they_share() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (_, image_run, _) = two_runs(&tmp.path().join("project"), &cache);
    let table_dir = tmp.path().join("table");
    std::fs::create_dir_all(&table_dir).unwrap();
    let (train, test) = penguins(&table_dir);
    let mut project = Project::new("tabular-regressor", train);
    project.data.test = Some(test);
    for (k, v) in [("target", "body_mass_g"), ("algorithm", "linear")] {
        project
            .params
            .insert(k.into(), toml::Value::String(v.into()));
    }
    let file = table_dir.join("project.toml");
    project.save(&file).unwrap();
    let table_run = train_with_engine(&file, &cache);

    // The image run is shown; "Compare with a run folder…" picks the table run in the built-in
    // folder browser.
    let mut opts = options(tmp.path(), 1);
    opts.builtin_dialogs = true;
    let mut h = harness(Studio::new(opts));
    h.run();
    h.state_mut().send(Command::OpenRun(image_run.clone()));
    wait_until(&mut h, "the image run", MINUTE, |s| {
        s.state.run.run_dir.as_deref() == Some(image_run.as_path()) && !s.state.runs.is_empty()
    });
    h.state_mut().send(Command::Show(Screen::Train));
    h.run();
    h.get_by_label("Compare with a run folder…").click();
    h.run();
    browse_to(&mut h, &table_run);
    h.get_by_label("Choose this folder").click();
    wait_for_comparison(&mut h);
    let Some(CompareState::Ready(c)) = &h.state().state.comparison else {
        unreachable!()
    };
    assert_eq!(
        (c.a.dir(), c.b.dir()),
        (image_run.as_path(), table_run.as_path())
    );
    h.get_by_label_contains("These runs are of different templates");
    h.get_by_label("Tabular Regressor");
    // Accuracy is the classifier's, R² and RMSE the regressor's: the other side does not apply.
    h.get_by_label("Test accuracy");
    h.get_by_label("Test R\u{b2}");
    h.get_by_label("Test RMSE");
    let r2 = metric(&table_run, "test", "r2").unwrap();
    assert!(h.query_all_by_label(&format!("{r2:.4}")).next().is_some());
    assert!(h.query_all_by_label("does not apply").count() >= 6);
    h.get_by_label_contains("has no confusion matrix");
}
