//! Helpers for the app's kittest tests: tiny generated image folders and tables, a simulated file
//! drop, a harness around the real `Studio`, waiting for background work without busy-looping,
//! starting a project and training it in the app, and training a saved project with the engine.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use image::{Rgb, RgbImage};
use lathe_engine::params::ParamValue;
use lathe_engine::train::{Outcome, RunOptions, Status};
use lathe_engine::{Project, Session, SessionOptions};
use lathe_studio::app::StudioOptions;
use lathe_studio::state::ScanState;
use lathe_studio::{Command, DataSlot, Studio};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod activity;

/// One generated image of class `class` (a distinct colour and pattern per class).
pub fn class_image(class: usize, i: usize, size: u32) -> RgbImage {
    RgbImage::from_fn(size, size, |x, y| {
        let n = ((x * 31 + y * 17 + i as u32 * 101) % 23) as u8;
        match class % 3 {
            0 => {
                let d = (x as i32 - size as i32 / 2).pow(2) + (y as i32 - size as i32 / 2).pow(2);
                if d < (size as i32 / 3).pow(2) {
                    Rgb([220, 40 + n, 40])
                } else {
                    Rgb([20 + n, 20, 20])
                }
            }
            1 => {
                if (x / 4) % 2 == 0 {
                    Rgb([30, 200 - n, 30])
                } else {
                    Rgb([240, 240, 240 - n])
                }
            }
            _ => {
                if (y / 6) % 2 == 0 {
                    Rgb([30 + n, 30, 210])
                } else {
                    Rgb([10, 10 + n, 60])
                }
            }
        }
    })
}

/// Writes `root/<class>/<i>.png`.
pub fn make_dataset(root: &Path, classes: &[&str], per_class: usize, offset: usize) {
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            class_image(c, i + offset, 40)
                .save(dir.join(format!("{:03}.png", i + offset)))
                .unwrap();
        }
    }
}

/// A file or folder dropped on the window, as egui-winit reports it.
#[derive(Debug)]
pub struct FakeDrop(pub PathBuf);

impl egui::DroppedFile for FakeDrop {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Options for fast tests: runs and the feature cache in `tmp`, tiny images, few epochs.
pub fn options(tmp: &Path, epochs: i64) -> StudioOptions {
    StudioOptions {
        runs_home: Some(tmp.join("home")),
        cache_dir: Some(tmp.join("cache")),
        overrides: BTreeMap::from([
            ("epochs".to_string(), ParamValue::Int(epochs)),
            ("image_size".to_string(), ParamValue::Int(48)),
            ("batch_size".to_string(), ParamValue::Int(2)),
            ("early_stopping_patience".to_string(), ParamValue::Int(0)),
        ]),
        ..Default::default()
    }
}

/// Options with runs and caches in `tmp` and exactly these parameter overrides.
pub fn options_with(tmp: &Path, overrides: &[(&str, ParamValue)]) -> StudioOptions {
    StudioOptions {
        runs_home: Some(tmp.join("home")),
        cache_dir: Some(tmp.join("cache")),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

/// [`options`] with the AdamW-trained MLP head, which trains (and checkpoints) epoch by epoch:
/// for tests that pause, cancel or resume mid-training (the default L-BFGS head fits at once).
pub fn epochwise_options(tmp: &Path, epochs: i64) -> StudioOptions {
    let mut o = options(tmp, epochs);
    o.overrides
        .insert("head".to_string(), ParamValue::Text("mlp".into()));
    o
}

/// The real app in a headless harness.
pub fn harness(studio: Studio) -> Harness<'static, Studio> {
    Harness::builder()
        .with_size([1280.0, 1000.0])
        .with_max_steps(64)
        .build_ui_state(|ui, studio: &mut Studio| studio.frame(ui), studio)
}

/// Steps the UI (sleeping between frames, as a window waits for the engine's waker) until
/// `done` holds; panics with `what` after `timeout`.
pub fn wait_until(
    h: &mut Harness<'_, Studio>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Studio) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h.state()) {
            h.step();
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; notice: {:?}",
            h.state().state.notice
        );
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Simulates the OS dragging `paths` over the window, then dropping them at `at`.
pub fn drop_paths(h: &mut Harness<'_, Studio>, paths: &[PathBuf], at: Option<egui::Pos2>) {
    if let Some(pos) = at {
        h.hover_at(pos);
    }
    h.input_mut().hovered_files = paths
        .iter()
        .map(|p| egui::HoveredFile {
            path: Some(p.clone()),
            mime: String::new(),
        })
        .collect();
    // Hovering files repaints every frame, so step rather than run to quiescence.
    h.run_steps(2);
    h.input_mut().hovered_files.clear();
    h.input_mut().dropped_files = paths
        .iter()
        .map(|p| Arc::new(FakeDrop(p.clone())) as egui::DroppedFileHandle)
        .collect();
    h.step();
    h.step();
}

pub const MINUTE: Duration = Duration::from_secs(60);

/// Starts a new project from `template` in the app and sets `params` on it.
pub fn new_project(h: &mut Harness<'_, Studio>, template: &str, params: &[(&str, ParamValue)]) {
    h.run();
    h.state_mut().send(Command::NewProject {
        template: template.into(),
    });
    h.run();
    for (key, value) in params {
        h.state_mut().send(Command::SetParam {
            key: key.to_string(),
            value: value.clone(),
        });
    }
}

/// Starts a project from `template` with `train` (and `test`) data and `params`, trains it to
/// the end in the app and waits for its model to load (and its report).
pub fn train_in_app(
    h: &mut Harness<'_, Studio>,
    template: &str,
    train: &Path,
    test: Option<&Path>,
    params: &[(&str, ParamValue)],
) {
    new_project(h, template, params);
    h.state_mut()
        .send(Command::SetData(DataSlot::Train, Some(train.to_path_buf())));
    if let Some(test) = test {
        h.state_mut()
            .send(Command::SetData(DataSlot::Test, Some(test.to_path_buf())));
    }
    wait_until(h, "the scan", MINUTE, |s| {
        matches!(&s.state.scan, ScanState::Done(x) if test.is_none() || x.split("test").is_some())
            || matches!(s.state.scan, ScanState::Failed(_))
    });
    if let ScanState::Failed(e) = &h.state().state.scan {
        panic!("scan failed: {e}");
    }
    h.state_mut().send(Command::StartTraining);
    wait_until(h, "training to finish", 4 * MINUTE, |s| {
        s.state.run.status.is_finished() && !s.state.run_active
    });
    let run = &h.state().state.run;
    assert_eq!(run.status, Status::Completed, "{:?}", run.error);
    wait_until(h, "the model and the report", MINUTE, |s| {
        (s.state.model.loaded && s.state.report.is_some()) || s.state.model.error.is_some()
    });
    assert_eq!(h.state().state.model.error, None);
}

/// Saves an image-classifier project on `dir/data/{train,test}` (3 epochs of 48-pixel images,
/// no early stopping, and `params`); returns the project file.
pub fn save_image_project(dir: &Path, params: &[(&str, toml::Value)]) -> PathBuf {
    let train = dir.join("data/train");
    let test = dir.join("data/test");
    let mut project = Project::new("image-classifier", train);
    project.data.test = Some(test);
    for (k, v) in [
        ("epochs", 3),
        ("image_size", 48),
        ("batch_size", 2),
        ("early_stopping_patience", 0),
    ] {
        project.params.insert(k.into(), toml::Value::Integer(v));
    }
    for (k, v) in params {
        project.params.insert(k.to_string(), v.clone());
    }
    let file = dir.join("project.toml");
    project.save(&file).unwrap();
    file
}

/// Trains the saved project to the end with the engine; returns the run folder.
pub fn train_with_engine(file: &Path, cache: &Path) -> PathBuf {
    let project = Project::load(file).unwrap();
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
    let outcome = session.run_to_end(|_| {});
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(run_dir.join("model/config.json").is_file());
    assert!(run_dir.join("report.json").is_file());
    run_dir
}

/// The bundled penguins table split in two: every 4th row for testing, the rest for training.
pub fn penguins(tmp: &Path) -> (PathBuf, PathBuf) {
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample/penguins/penguins.csv"),
    )
    .unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let (mut train, mut test) = (format!("{header}\n"), format!("{header}\n"));
    for (i, line) in lines.enumerate() {
        let out = if i % 4 == 0 { &mut test } else { &mut train };
        out.push_str(line);
        out.push('\n');
    }
    let (a, b) = (tmp.join("train.csv"), tmp.join("test.csv"));
    std::fs::write(&a, train).unwrap();
    std::fs::write(&b, test).unwrap();
    (a, b)
}

/// Types `path` into the built-in browser's path field and presses Enter; waits for the listing.
pub fn browse_to(h: &mut Harness<'_, Studio>, path: &Path) {
    // Steps, not `h.run()`: a spinner elsewhere (a scan on a loaded machine) repaints every frame
    // and would outlast the harness's settle limit.
    h.get_by_role_and_label(Role::TextInput, "Path").focus();
    h.run_steps(2);
    h.get_by_role_and_label(Role::TextInput, "Path")
        .set_text_value_accesskit(&path.display().to_string());
    h.run_steps(2);
    h.key_press(egui::Key::Enter);
    let want = path.to_path_buf();
    wait_until(h, "the folder's listing", MINUTE, move |s| {
        s.state
            .file_dialog
            .as_ref()
            .and_then(|b| b.listing.as_ref())
            .is_some_and(|l| l.as_ref().is_ok_and(|l| l.dir == want))
    });
}
