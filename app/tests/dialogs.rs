//! Dialogs that always work, headless, through AccessKit labels: the built-in file browser (forced,
//! or where the system's dialog shows nothing) chooses the data folder and saves the project;
//! the unsaved-changes prompt on Close, Quit and the window's close button; the keyboard
//! shortcuts; and a table's target column chosen from the Data screen's dropdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, browse_to, harness, make_dataset, options, wait_until};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_studio::app::StudioOptions;
use lathe_studio::file_dialog::{DialogMode, DialogPurpose, NativeAnswer};
use lathe_studio::state::{ScanState, Unsaved};
use lathe_studio::{Command, DataSlot, Screen, Studio};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Test options that always use the built-in browser.
fn builtin(tmp: &Path) -> StudioOptions {
    StudioOptions {
        builtin_dialogs: true,
        ..options(tmp, 1)
    }
}

fn new_project(h: &mut Harness<'_, Studio>, title: &str) {
    h.run();
    h.get_by_label(title).click();
    h.run();
    assert_eq!(h.state().state.screen, Screen::Data);
}

#[test]
fn the_builtin_browser_chooses_the_training_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_dataset(&data.join("train"), &["cat", "dog"], 3, 0);
    std::fs::write(data.join("notes.txt"), "not data").unwrap();
    let mut h = harness(Studio::new(builtin(tmp.path())));
    new_project(&mut h, "Image Classifier");

    // The first "Choose folder…" is the training data's.
    h.get_all_by_label("Choose folder…").next().unwrap().click();
    wait_until(&mut h, "the browser's first listing", MINUTE, |s| {
        s.state
            .file_dialog
            .as_ref()
            .is_some_and(|b| b.listing.is_some())
    });
    let request = &h.state().state.file_dialog.as_ref().unwrap().request;
    assert_eq!(request.purpose, DialogPurpose::Data(DataSlot::Train));
    assert_eq!(request.mode, DialogMode::Folder);

    // Type the folder above the data, open "train" by clicking it, choose it.
    browse_to(&mut h, &data);
    h.get_by_label("notes.txt");
    h.get_by_label("train/").click();
    let train = data.join("train");
    let want = train.clone();
    wait_until(&mut h, "the train folder's listing", MINUTE, move |s| {
        s.state
            .file_dialog
            .as_ref()
            .and_then(|b| b.listing.as_ref())
            .is_some_and(|l| l.as_ref().is_ok_and(|l| l.dir == want))
    });
    h.get_by_label("cat/");
    h.get_by_label("dog/");
    h.get_by_label("Choose this folder").click();
    // (Stepped: the scan's spinner repaints until it is done.)
    h.step();
    h.step();
    assert!(h.state().state.file_dialog.is_none());
    assert_eq!(h.state().state.project.as_ref().unwrap().data.train, train);
    wait_until(&mut h, "the scan", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Done(_))
    });
    h.get_by_label_contains("2 classes");
}

#[test]
fn without_a_system_dialog_the_builtin_browser_opens_and_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let mut h = harness(Studio::new(StudioOptions {
        native_dialog: Some(Arc::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            NativeAnswer::Unavailable("the system file dialog did not open".into())
        })),
        ..options(tmp.path(), 1)
    }));
    new_project(&mut h, "Image Classifier");
    h.get_all_by_label("Choose folder…").next().unwrap().click();
    wait_until(&mut h, "the built-in browser", MINUTE, |s| {
        s.state.file_dialog.is_some()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Not silent: the notice says why.
    let notice = h.state().state.notice.clone().unwrap();
    assert!(notice.text.contains("file browser"), "{}", notice.text);
    h.get_by_label("Choose this folder");
    h.get_by_label("Cancel").click();
    h.run();
    assert!(h.state().state.file_dialog.is_none());
    assert!(
        h.state()
            .state
            .project
            .as_ref()
            .unwrap()
            .data
            .train
            .as_os_str()
            .is_empty()
    );

    // From then on the built-in browser opens at once (after the unsaved-changes prompt).
    h.get_by_label("Open project…").click();
    h.run();
    assert_eq!(h.state().state.confirm, Some(Unsaved::Open));
    h.get_by_label("Don't save").click();
    h.step();
    h.step();
    let b = h.state().state.file_dialog.as_ref().unwrap();
    assert_eq!(b.request.purpose, DialogPurpose::OpenProject);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(h.state().state.file_dialog.is_none());
}

#[test]
fn a_system_dialog_that_answers_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    make_dataset(&train, &["a", "b"], 2, 0);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (seen, answer) = (asked.clone(), train.clone());
    let mut h = harness(Studio::new(StudioOptions {
        native_dialog: Some(Arc::new(move |r| {
            seen.lock().unwrap().push(r.clone());
            NativeAnswer::Chosen(vec![answer.clone()])
        })),
        ..options(tmp.path(), 1)
    }));
    new_project(&mut h, "Image Classifier");
    h.get_all_by_label("Choose folder…").next().unwrap().click();
    wait_until(&mut h, "the chosen folder", MINUTE, |s| {
        s.state
            .project
            .as_ref()
            .is_some_and(|p| !p.data.train.as_os_str().is_empty())
    });
    assert_eq!(h.state().state.project.as_ref().unwrap().data.train, train);
    assert!(h.state().state.file_dialog.is_none());
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].mode, DialogMode::Folder);
}

#[test]
fn close_with_unsaved_changes_asks_and_cancel_keeps_the_project() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Studio::new(builtin(tmp.path())));
    new_project(&mut h, "Image Classifier");
    assert!(h.state().state.dirty);

    h.get_by_label("Close").click();
    h.run();
    assert_eq!(h.state().state.confirm, Some(Unsaved::Close));
    h.get_by_label("Unsaved changes");
    h.get_by_label("Cancel").click();
    h.run();
    assert_eq!(h.state().state.confirm, None);
    assert!(h.state().state.project.is_some());
    assert_eq!(h.state().state.screen, Screen::Data);

    // Ctrl+W asks too; Escape is Cancel.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::W);
    h.run();
    assert_eq!(h.state().state.confirm, Some(Unsaved::Close));
    h.key_press(egui::Key::Escape);
    h.run();
    assert_eq!(h.state().state.confirm, None);
    assert!(h.state().state.project.is_some());

    // The window's close button: the close is cancelled and the prompt shown.
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    assert!(
        saw_viewport_command(&mut h, &egui::ViewportCommand::CancelClose),
        "the window's close was not cancelled"
    );
    h.run();
    assert_eq!(h.state().state.confirm, Some(Unsaved::Quit));
    h.get_by_label("Cancel").click();
    h.run();
    assert!(h.state().state.project.is_some());

    // "Don't save" closes it.
    h.get_by_label("Close").click();
    h.run();
    h.get_by_label("Don't save").click();
    h.run();
    assert!(h.state().state.project.is_none());
    assert_eq!(h.state().state.screen, Screen::Templates);
}

/// The seed saved in a project file.
fn saved_seed(file: &Path) -> u64 {
    lathe_engine::Project::load(file).unwrap().seed
}

#[test]
fn ctrl_s_saves_and_the_prompt_saves_before_closing() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("projects");
    std::fs::create_dir(&folder).unwrap();
    let mut h = harness(Studio::new(builtin(tmp.path())));
    new_project(&mut h, "Image Classifier");

    // A new project: Ctrl+S asks where, in the built-in browser, proposing project.toml.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    wait_until(&mut h, "the save dialog", MINUTE, |s| {
        s.state.file_dialog.is_some()
    });
    let b = h.state().state.file_dialog.as_ref().unwrap();
    assert_eq!(b.request.purpose, DialogPurpose::SaveProject);
    assert_eq!(h.state().view.dialog_name, "project.toml");
    browse_to(&mut h, &folder);
    h.get_by_label("Save").click();
    let file = folder.join("project.toml");
    wait_until(&mut h, "the save", MINUTE, |s| !s.state.dirty);
    assert!(h.state().state.file_dialog.is_none());
    assert_eq!(
        h.state().state.project.as_ref().unwrap().file.as_deref(),
        Some(file.as_path())
    );
    assert!(file.is_file());

    // A saved project: Ctrl+S writes it again, no dialog.
    h.state_mut().send(Command::SetSeed(77));
    h.run();
    assert!(h.state().state.dirty);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    wait_until(&mut h, "the second save", MINUTE, |s| !s.state.dirty);
    assert!(h.state().state.file_dialog.is_none());
    assert_eq!(saved_seed(&file), 77);

    // Save as… over the existing file asks before replacing it.
    h.state_mut().send(Command::SetSeed(78));
    h.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::S,
    );
    h.run();
    wait_until(&mut h, "the save-as listing", MINUTE, |s| {
        s.state
            .file_dialog
            .as_ref()
            .is_some_and(|b| b.listing.is_some())
    });
    h.get_by_label("Save").click();
    wait_until(&mut h, "the replace question", MINUTE, |s| {
        s.state
            .file_dialog
            .as_ref()
            .is_some_and(|b| b.replace.is_some())
    });
    assert_eq!(saved_seed(&file), 77);
    h.get_by_label("Replace it").click();
    wait_until(&mut h, "the save-as", MINUTE, |s| !s.state.dirty);
    assert_eq!(saved_seed(&file), 78);

    // Changed again, then Close → Save: saved first, then closed.
    h.state_mut().send(Command::SetSeed(99));
    h.run();
    h.get_by_label("Close").click();
    h.run();
    h.get_by_label("Save").click();
    wait_until(&mut h, "save, then close", MINUTE, |s| {
        s.state.project.is_none()
    });
    assert_eq!(saved_seed(&file), 99);

    // Ctrl+Q with nothing unsaved closes the window.
    // (Pressed within one frame: kittest's key_press spreads a press over four frames, and only
    // the last frame's output can be read.)
    let events = &mut h.input_mut().events;
    events.push(egui::Event::ModifiersChanged(egui::Modifiers::COMMAND));
    for pressed in [true, false] {
        events.push(egui::Event::Key {
            key: egui::Key::Q,
            pressed,
            modifiers: egui::Modifiers::COMMAND,
            repeat: false,
            physical_key: None,
        });
    }
    events.push(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    assert!(
        saw_viewport_command(&mut h, &egui::ViewportCommand::Close),
        "Ctrl+Q did not close the window"
    );
}

/// Steps a few frames; whether one of them sent `command` to the window.
fn saw_viewport_command(h: &mut Harness<'_, Studio>, command: &egui::ViewportCommand) -> bool {
    (0..8).any(|_| {
        h.step();
        h.output()
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .is_some_and(|v| v.commands.contains(command))
    })
}

/// A copy of the bundled penguins table (its column to predict, species, has no default name).
fn penguins(tmp: &Path) -> PathBuf {
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample/penguins/penguins.csv"),
    )
    .unwrap();
    let path = tmp.join("penguins.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn choosing_the_target_column_rescans_and_the_error_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let table = penguins(tmp.path());
    let mut h = harness(Studio::new(builtin(tmp.path())));
    new_project(&mut h, "Tabular Classifier");
    h.state_mut()
        .send(Command::SetData(DataSlot::Train, Some(table.clone())));
    wait_until(&mut h, "the failed scan and the columns", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Failed(_)) && s.state.table_columns.is_some()
    });
    let columns = h.state().state.table_columns.clone().unwrap().unwrap();
    assert_eq!(columns.columns.first().map(String::as_str), Some("species"));
    assert_eq!(columns.target, None);
    h.get_by_label("Choose the column the model should predict.");
    // No command-line wording anywhere on the screen.
    assert_eq!(h.query_all_by_label_contains("--target").count(), 0);
    assert_eq!(h.query_all_by_label_contains("Pass ").count(), 0);

    h.get_by_role_and_label(Role::ComboBox, "Column to predict")
        .click();
    h.run();
    h.get_by_label("species").click();
    wait_until(&mut h, "the rescan", MINUTE, |s| {
        matches!(s.state.scan, ScanState::Done(_))
    });
    let project = h.state().state.project.clone().unwrap();
    assert_eq!(
        project.params.get("target").and_then(|v| v.as_str()),
        Some("species")
    );
    assert_eq!(
        h.state()
            .state
            .table_columns
            .as_ref()
            .and_then(|c| c.as_ref().ok())
            .and_then(|c| c.target.clone())
            .as_deref(),
        Some("species")
    );
    assert_eq!(
        h.query_all_by_label("Choose the column the model should predict.")
            .count(),
        0
    );
    h.get_by_label_contains("3 classes");
    h.get_by_label("Next: Settings").click();
    h.run();
    // Settings offers the same dropdown, with the chosen column.
    h.get_by_role_and_label(Role::ComboBox, "Column to predict");
    assert_eq!(h.query_all_by_label_contains("--target").count(), 0);
}
