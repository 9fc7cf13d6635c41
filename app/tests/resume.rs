//! Picking up earlier runs through the UI: a project whose run folder holds an interrupted run
//! (made with the engine's API: a session cancelled after a checkpoint) shows "Resume training
//! (epoch k of N)" when opened, as does the run folder opened directly; the click finishes the
//! run in its own folder with the plots continuing; then "Continue training…" trains the finished
//! model for extra epochs in a new run folder, which the reopened project then offers to continue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, harness, make_dataset, options, wait_until};
use egui_kittest::kittest::Queryable;
use lathe_engine::params::ParamValue;
use lathe_engine::train::{Event, RunOptions, Status};
use lathe_engine::{Project, Session, SessionOptions};
use lathe_studio::{Command, Screen, Studio};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Epochs the interrupted run was set to train.
const EPOCHS: i64 = 40;

/// Saves an image-classifier project in `dir` and starts training it with the engine, cancelling
/// once the checkpoint of epoch 2 is written. Returns the project file and the run folder.
fn interrupted_project(dir: &Path, cache: &Path) -> (PathBuf, PathBuf, usize) {
    let data = dir.join("data");
    make_dataset(&data, &["a", "b", "c"], 5, 0);
    let mut project = Project::new("image-classifier", data);
    for (k, v) in [
        ("epochs", EPOCHS),
        ("image_size", 48),
        ("batch_size", 2),
        ("early_stopping_patience", 0),
    ] {
        project.params.insert(k.into(), toml::Value::Integer(v));
    }
    // The AdamW head checkpoints every epoch, so the run can be interrupted after epoch 2.
    project
        .params
        .insert("head".into(), toml::Value::String("mlp".into()));
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
    let control = session.control().clone();
    let mut checkpoint = 0;
    let outcome = session.run_to_end(|e| {
        if let Event::Checkpoint {
            epoch, best: false, ..
        } = e
        {
            checkpoint = *epoch;
            if *epoch >= 2 {
                control.cancel();
            }
        }
    });
    assert!(
        matches!(outcome, lathe_engine::train::Outcome::Cancelled { .. }),
        "{outcome:?}"
    );
    assert!(checkpoint >= 2 && (checkpoint as i64) < EPOCHS);
    assert!(!run_dir.join("model").join("config.json").exists());
    (file, run_dir, checkpoint)
}

#[test]
fn an_interrupted_run_is_resumed_then_continued_from_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (file, run_dir, checkpoint) = interrupted_project(&tmp.path().join("project"), &cache);
    let label = format!("Resume training (epoch {checkpoint} of {EPOCHS})");
    // The app's own overrides must not change a resumed run (it trains its locked project).
    let opts = lathe_studio::app::StudioOptions {
        overrides: BTreeMap::from([("epochs".to_string(), ParamValue::Int(1))]),
        ..options(tmp.path(), 1)
    };

    // The run folder opened directly offers resuming it.
    let mut h = harness(Studio::new(opts.clone()));
    h.run();
    h.state_mut().send(Command::OpenRun(run_dir.clone()));
    wait_until(&mut h, "the run's resume banner", MINUTE, |s| {
        !s.state.resumable.is_empty()
    });
    h.get_by_label(&label);
    drop(h);

    // Opening the project shows the banner on its first screen.
    let mut h = harness(Studio::new(opts));
    h.run();
    h.state_mut().send(Command::OpenProject(file));
    wait_until(&mut h, "the project's resume banner", MINUTE, |s| {
        !s.state.resumable.is_empty()
    });
    assert_eq!(h.state().state.screen, Screen::Data);
    assert_eq!(h.state().state.resumable[0].dir, run_dir);
    h.get_by_label("Training was interrupted.");
    h.get_by_label(&label).click();
    wait_until(&mut h, "the resumed run to start", MINUTE, |s| {
        s.state.run.status == Status::Running
    });
    // The plots continue from the replayed epochs rather than starting over.
    assert!(h.state().state.run.train_loss.points().len() >= checkpoint);
    wait_until(&mut h, "the resumed run to finish", 5 * MINUTE, |s| {
        !s.state.run_active && s.state.run.status.is_finished()
    });
    let run = &h.state().state.run;
    assert_eq!(run.status, Status::Completed, "{:?}", run.error);
    assert_eq!(run.run_dir.as_ref(), Some(&run_dir));
    assert_eq!(run.epoch, EPOCHS as usize);
    let xs: Vec<f64> = run.train_loss.points().iter().map(|p| p[0]).collect();
    assert_eq!(xs, (1..=EPOCHS).map(|e| e as f64).collect::<Vec<_>>());
    assert!(run_dir.join("model").join("config.json").is_file());
    assert!(run_dir.join("model").join("model.safetensors").is_file());
    assert!(h.state().state.resumable.is_empty());
    assert!(h.query_by_label(&label).is_none());

    // "Continue training…" with 3 extra epochs: a new run folder next to the finished one.
    h.get_by_label("Continue training…").click();
    h.run();
    h.get_by_label("Extra epochs");
    h.get_by_role(egui::accesskit::Role::SpinButton)
        .set_value_accesskit(3.0);
    h.run();
    h.get_by_label("Start continuing").click();
    wait_until(&mut h, "the continued run to start", MINUTE, |s| {
        s.state.run_active || s.state.notice.is_some()
    });
    wait_until(&mut h, "the continued run to finish", 5 * MINUTE, |s| {
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
    let continued = run.run_dir.clone().unwrap();
    assert_eq!(
        continued.file_name().unwrap().to_string_lossy(),
        format!(
            "{}-continued",
            run_dir.file_name().unwrap().to_string_lossy()
        )
    );
    assert_eq!((run.epoch, run.epochs), (3, 3));
    assert!(continued.join("model").join("config.json").is_file());
    let parent: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(continued.join("continued_from.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(parent["epochs_before"], EPOCHS);
    // The first run is untouched.
    assert!(run_dir.join("model").join("config.json").is_file());
    drop(h);

    // Opened again, the project offers to continue its newest finished run (the continued one).
    let mut h = harness(Studio::new(options(tmp.path(), 1)));
    h.run();
    h.state_mut().send(Command::OpenProject(
        tmp.path().join("project").join("project.toml"),
    ));
    wait_until(&mut h, "the finished run in the banner", MINUTE, |s| {
        s.state.finished_run.is_some()
    });
    assert_eq!(h.state().state.finished_run.as_ref(), Some(&continued));
    assert!(h.state().state.resumable.is_empty());
    h.get_by_label("Continue training…");
}
