//! The activity classifier in the app, headless, through AccessKit labels, on generated motion
//! recordings (common/activity.rs): the Data screen shows the sessions per activity and draws a
//! picked recording (its channels, sample rate and duration); after training in the app, the
//! Preview draws a dropped recording with the activity predicted along its timeline and names
//! the session's prediction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::activity::{activity_folders, recording_csv};
use common::{MINUTE, drop_paths, harness, options_with, train_in_app, wait_until};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use lathe_engine::params::ParamValue;
use lathe_studio::state::ScanState;
use lathe_studio::{Command, DataSlot, Screen, Studio};

/// Tiny training: few CNN epochs and boosting rounds, a third of the sessions for validation.
fn tiny() -> Vec<(&'static str, ParamValue)> {
    vec![
        ("epochs", ParamValue::Int(3)),
        ("max_iterations", ParamValue::Int(20)),
        ("validation_split", ParamValue::Float(0.34)),
    ]
}

#[test]
fn data_screen_counts_sessions_per_activity_and_draws_a_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    activity_folders(&train, 6, 600);
    let mut h = harness(Studio::new(options_with(tmp.path(), &tiny())));
    common::new_project(&mut h, "activity-classifier", &tiny());
    h.state_mut()
        .send(Command::SetData(DataSlot::Train, Some(train.clone())));
    wait_until(&mut h, "the scan and the first recording", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Failed(_))
            || s.state
                .recordings
                .as_ref()
                .is_some_and(|r| r.shown.is_some())
    });
    if let ScanState::Failed(e) = &h.state().state.scan {
        panic!("scan failed: {e}");
    }
    assert_eq!(h.state().state.screen, Screen::Data);
    // Sessions per activity: 4 for training and 2 for validation in each of the two.
    h.get_by_label("train — 8 sessions");
    h.get_by_label("validation — 4 sessions");
    assert_eq!(h.query_all_by_label("4").count(), 2);
    assert_eq!(h.query_all_by_label("2").count(), 2);
    // The first session is drawn: sample rate from its timestamps, duration.
    h.get_by_label("Recording sitting/000.csv: 3 channels, 12.0 s");
    h.get_by_label_contains("50.0 Hz (from its timestamps) · 12.0 s (600 samples)");
    h.get_by_label("1 of 12 sessions in the training data");
    // Pick another session from the menu.
    h.get_by_role_and_label(Role::ComboBox, "Session").click();
    h.run();
    h.get_by_label("walking/003.csv").click();
    wait_until(&mut h, "the picked recording", MINUTE, |s| {
        s.state
            .recordings
            .as_ref()
            .is_some_and(|r| r.selected == 9 && r.shown.is_some())
    });
    h.get_by_label("Recording walking/003.csv: 3 channels, 12.0 s");
    h.get_by_label("10 of 12 sessions in the training data");
    let shown = h.state().state.recordings.clone().unwrap();
    let rec = shown.shown.unwrap().unwrap();
    assert_eq!(rec.columns, ["acc_x", "acc_y", "acc_z"]);
    assert_eq!(rec.len(), 600);
    assert!(rec.rate_measured);
}

#[test]
fn preview_draws_the_predicted_activity_along_a_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    activity_folders(&train, 6, 600);
    // Six seconds of walking, then six of sitting.
    let probe = tmp.path().join("probe.csv");
    std::fs::write(
        &probe,
        recording_csv(&[("walking", 300), ("sitting", 300)], 77),
    )
    .unwrap();
    let mut h = harness(Studio::new(options_with(tmp.path(), &tiny())));
    train_in_app(&mut h, "activity-classifier", &train, None, &tiny());
    h.get_by_label("Preview").click();
    wait_until(&mut h, "the Preview screen", MINUTE, |s| {
        s.state.screen == Screen::Preview
    });
    h.get_by_label_contains("Drop one or more recordings here");
    drop_paths(&mut h, std::slice::from_ref(&probe), None);
    wait_until(&mut h, "the prediction", MINUTE, |s| {
        !s.state.previews.is_empty() && !s.state.predicting
    });
    let item = h.state().state.previews[0].clone();
    let session = item.result.clone().unwrap();
    let activity = item.activity.clone().unwrap();
    let rec = activity.recording.clone().unwrap();
    assert_eq!(rec.len(), 600);
    // Windows of 100 samples every 50: 11 of them, walking first and sitting last.
    assert_eq!(activity.windows.len(), 11);
    assert_eq!(activity.windows[0].label, "walking");
    assert_eq!(activity.windows[10].label, "sitting");
    h.get_by_label("Recording probe.csv: 3 channels, 12.0 s");
    let strip = h.get_by_label_contains("Predicted activity: walking 0.0–");
    let text = strip.accesskit_node().label().unwrap_or_default();
    assert!(text.ends_with("12.0 s"), "{text}");
    assert!(text.contains("sitting"), "{text}");
    h.get_by_label(&format!(
        "Session: {} ({:.0}%)",
        session.label,
        100.0 * session.ranked[0].1
    ));
}
