//! Training controls through the UI: Pause holds the run, Resume continues it, Cancel ends it
//! keeping its checkpoint, and "Resume training (epoch k of N)" continues the interrupted run in
//! the same folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, epochwise_options, harness, make_dataset, wait_until};
use egui_kittest::kittest::Queryable;
use lathe_engine::train::Status;
use lathe_studio::state::ScanState;
use lathe_studio::{Command, DataSlot, Studio};

#[test]
fn pause_resume_cancel_and_resume_an_interrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    make_dataset(&train, &["a", "b", "c"], 5, 0);
    // Enough epochs that the run is still going when the buttons are pressed.
    let mut h = harness(Studio::new(epochwise_options(tmp.path(), 100_000)));
    h.run();
    h.get_by_label("Image Classifier").click();
    h.run();
    h.state_mut()
        .send(Command::SetData(DataSlot::Train, Some(train.clone())));
    wait_until(&mut h, "the scan", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Done(_))
    });
    h.get_by_label("Train").click();
    h.run();
    h.get_by_label("Start training").click();
    wait_until(&mut h, "an epoch", 2 * MINUTE, |s| s.state.run.epoch >= 1);

    h.get_by_label("Pause").click();
    wait_until(&mut h, "the pause", MINUTE, |s| {
        s.state.run.status == Status::Paused
    });
    h.get_by_label("Paused");
    let epoch = h.state().state.run.epoch;
    for _ in 0..20 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(h.state().state.run.epoch, epoch, "trained while paused");

    h.get_by_label("Resume").click();
    wait_until(&mut h, "training to go on", MINUTE, |s| {
        s.state.run.status == Status::Running && s.state.run.epoch > epoch
    });

    h.get_by_label("Cancel").click();
    wait_until(&mut h, "the cancel", MINUTE, |s| {
        s.state.run.status == Status::Cancelled && !s.state.run_active
    });
    let run_dir = h.state().state.run.run_dir.clone().unwrap();
    assert!(
        run_dir
            .join("checkpoints")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    let cancelled_at = h.state().state.run.epoch;

    // The interrupted run is offered for resuming, and continues from its checkpoint.
    wait_until(&mut h, "the resumable run", MINUTE, |s| {
        s.state.resumable.iter().any(|r| r.dir == run_dir)
    });
    let button = h.state().state.resumable[0].button_text();
    assert!(button.starts_with("Resume training (epoch "), "{button}");
    h.get_by_label(&button).click();
    wait_until(&mut h, "the resumed run to train", 2 * MINUTE, |s| {
        s.state.run.status == Status::Running && s.state.run.epoch > cancelled_at
    });
    assert_eq!(h.state().state.run.run_dir.as_ref(), Some(&run_dir));
    // The replayed history continues rather than starting over.
    assert!(h.state().state.run.train_loss.points().len() > cancelled_at.min(2));
    h.get_by_label("Cancel").click();
    wait_until(&mut h, "the second cancel", MINUTE, |s| !s.state.run_active);
}
