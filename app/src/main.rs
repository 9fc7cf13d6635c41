//! `lathe-studio`: opens the Lathe Studio window, optionally on a project or a run folder.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use lathe_studio::app::StudioOptions;
use lathe_studio::{Command, Screen, Studio};
use std::path::PathBuf;

/// Lathe Studio: build machine-learning models from folders of data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A project.toml to open, or a run folder to show.
    path: Option<PathBuf>,
    /// Screen to show first: templates, data, settings, train, evaluate, explore, preview, export.
    #[arg(long)]
    screen: Option<String>,
    /// With a run folder as PATH: compare it (A) with this run folder (B) side by side.
    #[arg(long, value_name = "RUN_DIR")]
    compare: Option<PathBuf>,
    /// Start training the opened project right away.
    #[arg(long)]
    train: bool,
    /// Template to start a new project from (e.g. image-classifier).
    #[arg(long)]
    template: Option<String>,
    /// With --template: the training data folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// With --template: the test data folder.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Files to preview once the model is loaded (for a text model: texts to type).
    #[arg(long)]
    preview: Vec<PathBuf>,
    /// Write frame-time percentiles (JSON) here when the window closes.
    #[arg(long)]
    frame_stats: Option<PathBuf>,
    /// Close the window when the run has finished (with --train, for measurements).
    #[arg(long)]
    exit_when_done: bool,
    /// Folder for runs of unsaved projects (default ~/Lathe).
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Use Lathe's own file browser instead of the system's file dialog (also
    /// LATHE_BUILTIN_DIALOGS=1). Without it the built-in one is used where the system's does not
    /// open (no XDG desktop portal).
    #[arg(long)]
    builtin_dialogs: bool,
}

fn main() -> std::process::ExitCode {
    lathe_engine::allocator::tune();
    let args = Args::parse();
    // Decoding and feature extraction (rayon) run below the window's priority, so frames never
    // wait for a busy core.
    lathe_engine::train::priority::background_workers();
    let mut studio = Studio::new(StudioOptions {
        runs_home: args.runs.clone(),
        frame_stats_out: args.frame_stats.clone(),
        exit_when_done: args.exit_when_done,
        builtin_dialogs: args.builtin_dialogs
            || std::env::var_os("LATHE_BUILTIN_DIALOGS").is_some_and(|v| !v.is_empty() && v != "0"),
        ..Default::default()
    });
    if let Some(t) = &args.template {
        studio.send(Command::NewProject {
            template: t.clone(),
        });
        if let Some(d) = &args.data {
            studio.send(Command::SetData(
                lathe_studio::DataSlot::Train,
                Some(d.clone()),
            ));
        }
        if let Some(d) = &args.test {
            studio.send(Command::SetData(
                lathe_studio::DataSlot::Test,
                Some(d.clone()),
            ));
        }
    }
    if let Some(path) = &args.path {
        if path.is_dir() {
            studio.send(Command::OpenRun(path.clone()));
        } else {
            studio.send(Command::OpenProject(path.clone()));
        }
    }
    if let (Some(a), Some(b)) = (&args.path, &args.compare) {
        studio.send(Command::CompareRuns(a.clone(), b.clone()));
        studio.show_when_ready(Screen::Compare);
    }
    if args.train {
        studio.start_when_ready();
    }
    if !args.preview.is_empty() {
        studio.predict_when_ready(args.preview.clone());
    }
    if let Some(name) = &args.screen {
        match Screen::from_name(name) {
            Some(s) => studio.show_when_ready(s),
            None => {
                eprintln!(
                    "error: unknown screen \"{name}\"; use templates, data, settings, train, evaluate, explore, preview, export or compare"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let icon = image::load_from_memory(include_bytes!("../../icons/lathe-studio-256.png"))
        .map(|i| i.to_rgba8())
        .map(|i| egui::IconData {
            width: i.width(),
            height: i.height(),
            rgba: i.into_raw(),
        });
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Lathe Studio")
        .with_app_id("lathe-studio")
        .with_inner_size([1180.0, 820.0])
        .with_min_inner_size([720.0, 480.0])
        .with_drag_and_drop(true);
    if let Ok(icon) = icon {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    let result = eframe::run_native(
        "Lathe Studio",
        options,
        Box::new(move |cc| {
            if let Some(storage) = cc.storage {
                studio.load_storage(storage);
            }
            Ok(Box::new(studio))
        }),
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot open the window ({e}); on Linux, check that DISPLAY or WAYLAND_DISPLAY is set"
            );
            std::process::ExitCode::FAILURE
        }
    }
}
