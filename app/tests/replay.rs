//! A recorded run replays into the screens: `events.jsonl` → `RunState` → Train, Evaluate,
//! Preview and Export draw without panicking — including an evaluation of a kind this app
//! does not know (drawn generically from its JSON) and a run whose model is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, harness, options, wait_until};
use egui_kittest::kittest::Queryable;
use lathe_engine::eval::ClassificationReport;
use lathe_engine::train::{EpochMetrics, Event, Outcome, Phase, Status};
use lathe_studio::{Command, Screen, Studio};
use serde_json::json;

fn recorded_events(run_dir: &std::path::Path, epochs: usize) -> Vec<Event> {
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
            num_train: 90,
            num_validation: 10,
            num_test: 6,
            labels: vec!["cat".into(), "dog".into()],
        },
        Event::Phase {
            phase: Phase::ExtractingFeatures,
            done: 100,
            total: 100,
            elapsed_secs: 3.0,
        },
        Event::Warning {
            message: "not an image, skipped".into(),
            path: Some("data/cat/notes.txt".into()),
        },
    ];
    for epoch in 1..=epochs {
        for step in 1..=4 {
            events.push(Event::Step {
                epoch,
                step,
                steps: 4,
                loss: 1.0 / (epoch as f64 + step as f64 / 4.0),
            });
        }
        events.push(Event::EpochEnd(EpochMetrics {
            epoch,
            epochs,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: Some(1.0 - 0.5 / epoch as f64),
            validation_loss: Some(1.1 / epoch as f64),
            validation_accuracy: Some(1.0 - 0.6 / epoch as f64),
            learning_rate: 0.01,
            elapsed_secs: epoch as f64,
        }));
    }
    events.push(Event::Evaluated {
        split: "validation".into(),
        num_examples: 10,
        metric: "accuracy".into(),
        value: 0.9,
    });
    events.push(Event::Finished {
        outcome: Outcome::Completed {
            model_dir: run_dir.join("model"),
        },
        elapsed_secs: 12.0,
    });
    events
}

#[test]
fn a_recorded_run_draws_on_every_screen() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("runs/image-classifier-recorded");
    std::fs::create_dir_all(&run_dir).unwrap();
    let epochs = 5000;
    let text: String = recorded_events(&run_dir, epochs)
        .iter()
        .map(|e| e.to_json() + "\n")
        .collect::<String>()
        + "{\"event\":\"epoch_en"; // a torn last line, as a killed run leaves
    std::fs::write(run_dir.join("events.jsonl"), text).unwrap();
    let labels = vec!["cat".to_string(), "dog".to_string()];
    let classification = ClassificationReport::compute(
        &labels,
        &[0, 0, 1, 1],
        &[
            vec![0.9, 0.1],
            vec![0.3, 0.7],
            vec![0.2, 0.8],
            vec![0.1, 0.9],
        ],
        &[
            "c1.png".into(),
            "c2.png".into(),
            "d1.png".into(),
            "d2.png".into(),
        ],
    );
    // "test" holds a report of a kind this app has no special view for.
    let report = json!({
        "template": "image-classifier",
        "evaluation": {
            "validation": classification,
            "test": {"num_examples": 6, "rmse": 0.25, "mae": 0.125, "r2": 0.9,
                     "per_target": [{"name": "price", "rmse": 0.25}]},
        },
        "training": {"epochs_run": epochs, "best_epoch": epochs, "stopped_early": false},
    });
    std::fs::write(run_dir.join("report.json"), report.to_string()).unwrap();

    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    h.state_mut().send(Command::OpenRun(run_dir.clone()));
    wait_until(&mut h, "the replay", MINUTE, |s| {
        s.state.run.status == Status::Completed
    });
    let run = &h.state().state.run;
    assert_eq!(run.epoch, epochs);
    // The history stays bounded however long the run.
    assert!(run.train_loss.points().len() < 2048);
    assert!(run.step_loss.points().len() < 2048);
    wait_until(&mut h, "the report", MINUTE, |s| s.state.report.is_some());
    // No model folder: the model fails to load, with a message instead of a panic.
    wait_until(&mut h, "the model attempt", MINUTE, |s| {
        !s.state.model.loading
    });
    // No lock file: the run shows without a project.
    assert!(h.state().state.project.is_none());
    for screen in [
        Screen::Train,
        Screen::Evaluate,
        Screen::Preview,
        Screen::Export,
    ] {
        h.state_mut().send(Command::Show(screen));
        h.run();
        assert_eq!(h.state().state.screen, screen);
        match screen {
            Screen::Train => {
                h.get_by_label_contains(&format!("Epoch {epochs} / {epochs}"));
                h.get_by_label_contains("1 warning");
            }
            Screen::Evaluate => {
                h.get_by_label("Macro F1");
                h.get_by_label("rmse");
                h.get_by_label("0.2500");
                h.get_by_label_contains("true dog, predicted dog: 2");
            }
            Screen::Preview => {
                assert!(h.query_all_by_label_contains("model").next().is_some());
            }
            _ => {}
        }
    }
}
