//! The training `Session` through the library API: event order, pause / resume / cancel, and
//! the `RunState` fold replaying a recorded `events.jsonl`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::make_dataset;
use lathe_engine::Project;
use lathe_engine::params::ParamValue;
use lathe_engine::session::{Session, SessionOptions};
use lathe_engine::train::{Event, Outcome, RunOptions, RunState, Status};
use std::collections::BTreeMap;
use std::time::Duration;

fn options(tmp: &std::path::Path, epochs: i64) -> SessionOptions {
    SessionOptions {
        run_dir: Some(tmp.join("run")),
        overrides: BTreeMap::from([
            ("epochs".to_string(), ParamValue::Int(epochs)),
            ("image_size".to_string(), ParamValue::Int(48)),
            ("batch_size".to_string(), ParamValue::Int(1)),
            ("early_stopping_patience".to_string(), ParamValue::Int(0)),
            // The AdamW head checkpoints every epoch (the default L-BFGS head fits at once).
            ("head".to_string(), ParamValue::Text("mlp".into())),
        ]),
        run: RunOptions {
            cache_dir: Some(tmp.join("cache")),
            weights: None,
        },
        ..Default::default()
    }
}

#[test]
fn pause_holds_training_and_cancel_ends_it_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(&tmp.path().join("data"), &["a", "b", "c"], 5, 0);
    let project = Project::new("image-classifier", tmp.path().join("data"));
    let session = Session::start(project, options(tmp.path(), 100_000)).unwrap();
    let mut state = RunState::default();
    let recv = |state: &mut RunState| {
        let e = session
            .events()
            .recv_timeout(Duration::from_secs(120))
            .expect("an event within 120 s");
        state.apply(&e);
        e
    };
    while !matches!(recv(&mut state), Event::EpochEnd(_)) {}
    session.control().pause();
    while !matches!(recv(&mut state), Event::Paused) {}
    assert_eq!(state.status, Status::Paused);
    let epoch = state.epoch;
    // Nothing trains while paused.
    std::thread::sleep(Duration::from_millis(400));
    while let Ok(e) = session.events().try_recv() {
        assert!(
            !matches!(e, Event::EpochEnd(_) | Event::Step { .. }),
            "trained while paused: {e:?}"
        );
        state.apply(&e);
    }
    assert_eq!(state.epoch, epoch);
    session.control().resume();
    while !matches!(recv(&mut state), Event::EpochEnd(_)) {}
    assert_eq!(state.status, Status::Running);
    assert!(state.epoch > epoch);
    session.control().cancel();
    let run_dir = session.run_dir().to_path_buf();
    let outcome = session.run_to_end(|e| state.apply(e));
    let Outcome::Cancelled {
        checkpoint: Some(ckpt),
    } = outcome
    else {
        panic!("expected a cancelled run with a checkpoint, got {outcome:?}")
    };
    assert!(ckpt.is_file());
    assert_eq!(state.status, Status::Cancelled);
    // The recorded log replays into the same state.
    let replayed =
        RunState::replay(&std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap());
    assert_eq!(replayed, state);
}

#[test]
fn events_arrive_in_order_and_fold_to_a_completed_run() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(&tmp.path().join("train"), &["a", "b"], 6, 0);
    make_dataset(&tmp.path().join("test"), &["a", "b"], 3, 100);
    let mut project = Project::new("image-classifier", tmp.path().join("train"));
    project.data.test = Some(tmp.path().join("test"));
    let session = Session::start(project, options(tmp.path(), 4)).unwrap();
    let mut state = RunState::default();
    let mut kinds = Vec::new();
    let outcome = session.run_to_end(|e| {
        state.apply(e);
        kinds.push(
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    });
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap();
    assert_eq!(kinds[0], "started");
    assert!(pos("data") < pos("epoch_end"));
    assert!(pos("epoch_end") < pos("evaluated"));
    assert_eq!(kinds.last().unwrap(), "finished");
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.train_loss.points().len(), 4);
    assert!(state.evaluation("test").is_some() && state.evaluation("validation").is_some());
    assert!(
        state
            .model_dir
            .as_ref()
            .unwrap()
            .join("model.safetensors")
            .is_file()
    );
}
