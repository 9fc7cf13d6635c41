//! Helpers for the app's kittest tests: tiny generated image folders, a simulated file drop, a
//! harness around the real `Studio`, and waiting for background work without busy-looping.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use egui_kittest::Harness;
use image::{Rgb, RgbImage};
use lathe_engine::params::ParamValue;
use lathe_studio::Studio;
use lathe_studio::app::StudioOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
