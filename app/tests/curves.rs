//! Training and plots: a finished run says why training stopped ("Stopped early: the validation
//! loss did not improve for 10 epochs; best epoch 6") instead of a bare "Finished"; the plots'
//! x axis spans the epochs run, not the epoch limit; the legend sits above the curves; a
//! continued run's curves go on after the epochs of the run it continues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, harness, make_dataset, options, wait_until};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_engine::Project;
use lathe_engine::train::{EpochMetrics, Event, Outcome, Status};
use lathe_studio::{Command, Screen, Studio};
use serde_json::json;
use std::path::Path;

/// Writes a finished run into `run_dir` that trained `ran` of `limit` epochs: its events, a
/// report saying whether it stopped early and its best epoch, and a lock file with the patience.
fn recorded_run(run_dir: &Path, data: &Path, ran: usize, limit: usize, best: usize, early: bool) {
    std::fs::create_dir_all(run_dir).unwrap();
    let mut events = vec![
        Event::Started {
            run_dir: run_dir.to_path_buf(),
            template: "image-classifier".into(),
            device: "cpu".into(),
            seed: 42,
            lathe_version: "0.1.0".into(),
            resumed: false,
        },
        Event::Data {
            num_train: 12,
            num_validation: 3,
            num_test: 0,
            labels: vec!["a".into(), "b".into(), "c".into()],
        },
    ];
    for epoch in 1..=ran {
        events.push(Event::Step {
            epoch,
            step: 1,
            steps: 1,
            loss: 1.0 / epoch as f64,
        });
        events.push(Event::EpochEnd(EpochMetrics {
            epoch,
            epochs: limit,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: Some(0.5),
            validation_loss: Some(1.2 / epoch as f64),
            validation_accuracy: Some(0.4),
            learning_rate: 0.001,
            elapsed_secs: epoch as f64,
        }));
    }
    events.push(Event::Finished {
        outcome: Outcome::Completed {
            model_dir: run_dir.join("model"),
        },
        elapsed_secs: 3.0,
    });
    let text: String = events.iter().map(|e| e.to_json() + "\n").collect();
    std::fs::write(run_dir.join("events.jsonl"), text).unwrap();
    let report = json!({
        "template": "image-classifier",
        "evaluation": {},
        "training": {"epochs_run": ran, "best_epoch": best, "stopped_early": early},
    });
    std::fs::write(run_dir.join("report.json"), report.to_string()).unwrap();
    let mut project = Project::new("image-classifier", data.to_path_buf());
    for (k, v) in [("early_stopping_patience", 10), ("epochs", limit as i64)] {
        project.params.insert(k.into(), toml::Value::Integer(v));
    }
    project.save(&run_dir.join("project.lock.toml")).unwrap();
}

fn open_on_train(h: &mut Harness<'_, Studio>, run_dir: &Path) {
    h.state_mut().send(Command::OpenRun(run_dir.to_path_buf()));
    wait_until(h, "the run and its report", MINUTE, |s| {
        s.state.run.status == Status::Completed && s.state.report.is_some()
    });
    h.state_mut().send(Command::Show(Screen::Train));
    h.run();
}

#[test]
fn an_early_stop_is_explained_and_the_plots_span_the_epochs_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["a", "b", "c"], 5, 0);
    let run_dir = tmp.path().join("runs/image-classifier-early");
    recorded_run(&run_dir, &data, 16, 40, 6, true);
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    open_on_train(&mut h, &run_dir);
    h.get_by_label(
        "Stopped early: the validation loss did not improve for 10 epochs; best epoch 6",
    );
    // 16 epochs run of 40: the x axis ends at 16.
    h.get_by_label("Loss: epochs 0 to 16");
    h.get_by_label("Accuracy: epochs 0 to 16");
    // The legend is a row of labels above the plots (train and validation, for each plot).
    assert_eq!(h.query_all_by_label("validation").count(), 2);
    assert_eq!(h.query_all_by_label("train").count(), 2);
    assert!(h.query_by_label("continued here").is_none());
}

#[test]
fn a_run_that_trained_every_epoch_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["a", "b", "c"], 5, 0);
    let run_dir = tmp.path().join("runs/image-classifier-all");
    recorded_run(&run_dir, &data, 8, 8, 7, false);
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    open_on_train(&mut h, &run_dir);
    h.get_by_label("Trained all 8 epochs; best epoch 7");
    h.get_by_label("Loss: epochs 0 to 8");
}

#[test]
fn a_continued_run_draws_its_curves_after_the_run_it_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data, &["a", "b", "c"], 5, 0);
    let first = tmp.path().join("runs/image-classifier-first");
    recorded_run(&first, &data, 16, 40, 6, true);
    let continued = tmp.path().join("runs/image-classifier-first-continued");
    recorded_run(&continued, &data, 5, 5, 3, false);
    std::fs::write(
        continued.join("continued_from.json"),
        json!({
            "run_dir": first,
            "checkpoint": first.join("checkpoints/last.safetensors"),
            "epochs_before": 16,
        })
        .to_string(),
    )
    .unwrap();
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    open_on_train(&mut h, &continued);
    wait_until(&mut h, "the earlier run's curves", MINUTE, |s| {
        s.state.earlier.is_some()
    });
    h.run();
    let earlier = h.state().state.earlier.clone().unwrap();
    assert_eq!(earlier.epochs, 16);
    assert_eq!(earlier.train_loss.points().len(), 16);
    // 16 epochs, then the 5 of the continued run.
    h.get_by_label("Loss: epochs 0 to 21");
    h.get_by_label("Accuracy: epochs 0 to 21");
    assert_eq!(h.query_all_by_label("continued here").count(), 2);
    // Epochs are counted from the first run's start.
    h.get_by_label("Trained all 5 more epochs, 21 in all; best epoch 19");
    h.get_by_label_contains("Epoch 21 (5 / 5 of this continued run)");

    // Moved elsewhere together, the pair still finds each other.
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for dir in [&first, &continued] {
        std::fs::rename(dir, moved.join(dir.file_name().unwrap())).unwrap();
    }
    let continued = moved.join(continued.file_name().unwrap());
    assert_eq!(
        lathe_studio::runs::continued_from(&continued),
        Some(moved.join(first.file_name().unwrap()))
    );
}
