//! A project made and saved by Lathe Studio trains headless with the `lathe` CLI: the app's
//! `project.toml` is the CLI's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use image::{Rgb, RgbImage};
use lathe_engine::params::ParamValue;
use lathe_studio::app::StudioOptions;
use lathe_studio::{Command, DataSlot, Studio};
use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

fn make_dataset(root: &Path, classes: &[&str], per_class: usize) {
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let colour = [[200u8, 30, 30], [30, 200, 30], [30, 30, 200]][c % 3];
            RgbImage::from_fn(32, 32, |x, y| {
                let n = ((x * 7 + y * 13 + i as u32 * 29) % 40) as u8;
                Rgb([colour[0] / 2 + n, colour[1] / 2 + n, colour[2] / 2 + n])
            })
            .save(dir.join(format!("{i}.png")))
            .unwrap();
        }
    }
}

/// Runs the app's logic (no window) until `done` holds.
fn pump(studio: &mut Studio, ctx: &egui::Context, done: impl Fn(&Studio) -> bool) {
    let start = Instant::now();
    while !done(studio) {
        studio.logic(ctx);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out; notice: {:?}",
            studio.state.notice
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_project_saved_by_the_app_trains_with_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let project_dir = tmp.path().join("my project");
    make_dataset(
        &project_dir.join("photos/train"),
        &["red", "green", "blue"],
        5,
    );
    make_dataset(
        &project_dir.join("photos/test"),
        &["red", "green", "blue"],
        2,
    );

    let ctx = egui::Context::default();
    let mut studio = Studio::new(StudioOptions::default());
    for c in [
        Command::NewProject {
            template: "image-classifier".into(),
        },
        Command::SetData(DataSlot::Train, Some(project_dir.join("photos/train"))),
        Command::SetData(DataSlot::Test, Some(project_dir.join("photos/test"))),
        Command::SetParam {
            key: "epochs".into(),
            value: ParamValue::Int(3),
        },
        Command::SetParam {
            key: "image_size".into(),
            value: ParamValue::Int(48),
        },
        Command::SetParam {
            key: "augment_flip".into(),
            value: ParamValue::Bool(true),
        },
        Command::SetSeed(7),
    ] {
        studio.run(c);
    }
    let file = project_dir.join("project.toml");
    studio.run(Command::SaveProjectTo(file.clone()));
    pump(&mut studio, &ctx, |s| !s.state.dirty);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("train = \"photos/train\""), "{text}");
    assert!(text.contains("epochs = 3"), "{text}");
    assert!(text.contains("seed = 7"), "{text}");

    let out = Process::new(env!("CARGO_BIN_EXE_lathe-cli"))
        .args(["train", "--json"])
        .arg(&file)
        .env("LATHE_CACHE_DIR", tmp.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lathe train failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let epochs = events.iter().filter(|e| e["event"] == "epoch_end").count();
    assert_eq!(epochs, 3);
    let finished = events.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["outcome"]["status"], "completed");
    let test_eval = events
        .iter()
        .find(|e| e["event"] == "evaluated" && e["split"] == "test")
        .unwrap();
    assert_eq!(test_eval["num_examples"], 6);
    // The run lands next to the project file, and the app opens it.
    let model_dir = Path::new(finished["outcome"]["model_dir"].as_str().unwrap()).to_path_buf();
    assert!(
        model_dir.starts_with(project_dir.join("runs")),
        "{model_dir:?}"
    );
    let lock =
        std::fs::read_to_string(model_dir.parent().unwrap().join("project.lock.toml")).unwrap();
    assert!(lock.contains("augment_flip = true"), "{lock}");
    studio.run(Command::OpenRun(model_dir.parent().unwrap().to_path_buf()));
    pump(&mut studio, &ctx, |s| {
        s.state.model.loaded && s.state.report.is_some()
    });
    assert_eq!(studio.state.model.labels, ["blue", "green", "red"]);
}
