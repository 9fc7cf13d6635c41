//! Background work: every slow thing the app does (scanning data, loading and running models,
//! reading reports, exploring a run's data, file dialogs and the built-in browser's listings,
//! saving, exporting) runs on a named thread and reports back here; the UI thread only drains
//! results. Each result wakes the UI through [`Repaint`].

use crate::command::Command;
use crate::file_dialog::{DialogRequest, Listing, NativeAnswer, Typed};
use crate::preview_data::TableRows;
use crate::report::{EvalView, ReportView};
use crate::state::{PreviewItem, TableColumns};
use lathe_engine::Project;
use lathe_engine::Session;
use lathe_engine::data::DatasetSummary;
use lathe_engine::task::Prediction;
use lathe_engine::train::RunState;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, OnceLock};

/// Wakes the UI from any thread (a repaint request); does nothing until the first frame has
/// handed over the egui context.
#[derive(Clone, Default)]
pub struct Repaint(Arc<OnceLock<egui::Context>>);

impl Repaint {
    pub fn set(&self, ctx: &egui::Context) {
        let _ = self.0.set(ctx.clone());
    }

    pub fn wake(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint();
        }
    }
}

/// What a background job reports.
pub enum JobResult {
    /// A dialog or a job asks for a command (a chosen folder, a project to open).
    Command(Command),
    ScanProgress {
        generation: u64,
        done: u64,
        total: u64,
    },
    Scanned {
        generation: u64,
        result: Result<DatasetSummary, String>,
    },
    ProjectLoaded(Result<Box<Project>, String>),
    ProjectSaved(Result<PathBuf, String>),
    /// A session started (fresh or resumed); `replayed` holds the interrupted run's earlier events.
    SessionStarted {
        result: Result<Box<Session>, String>,
        replayed: Option<Box<RunState>>,
    },
    /// A finished run's folder was read (`OpenRun`).
    RunOpened {
        run_dir: PathBuf,
        /// The run's `project.lock.toml`, when readable.
        project: Option<Box<Project>>,
        state: Box<RunState>,
    },
    /// A run of the open project was read (`ShowRun`).
    RunShown {
        run_dir: PathBuf,
        result: Result<Box<RunState>, String>,
    },
    /// The curves of the runs the current run continues (`None`: it continues none).
    Earlier {
        generation: u64,
        earlier: Option<Box<crate::runs::EarlierRuns>>,
    },
    Report {
        run_dir: PathBuf,
        result: Result<ReportView, String>,
    },
    ModelLoaded {
        source: PathBuf,
        result: Result<Vec<String>, String>,
    },
    Evaluated {
        data: PathBuf,
        result: Result<EvalView, String>,
    },
    Predicted(Vec<PreviewItem>),
    /// What the Mistakes view shows of samples, by input.
    Details(Vec<(PathBuf, Result<String, String>)>),
    /// A sample was moved into another class folder.
    LabelFixed(Result<crate::mistakes::LabelFix, String>),
    /// How far the exploration of a run has come; `generation` tells the latest from stale ones.
    ExploreProgress {
        generation: u64,
        step: lathe_engine::explore::Step,
        done: u64,
        total: u64,
    },
    /// A run's data was explored (the Explore screen).
    Explored {
        generation: u64,
        result: Result<Box<lathe_engine::explore::Exploration>, String>,
    },
    /// A fixed sample (at `to`) was moved back.
    FixUndone {
        to: PathBuf,
        result: Result<PathBuf, String>,
    },
    /// Typed text was predicted; `generation` tells the latest request from stale ones.
    PredictedText {
        generation: u64,
        text: String,
        result: Result<Prediction, String>,
    },
    /// The rows a table preview offers were read (for the model from `source`).
    TableRows {
        source: PathBuf,
        result: Result<TableRows, String>,
    },
    /// A picked or edited table row was predicted.
    PredictedRow {
        generation: u64,
        result: Result<Prediction, String>,
    },
    Exported {
        format: String,
        result: Result<crate::export_form::ExportedFile, crate::export_form::ExportProblem>,
        /// The request, asked again with `replace` when the target exists and the user agrees.
        request: Box<crate::export_form::ExportRequest>,
    },
    /// What a format would weigh for the model from `source` (a trial export), or why it cannot
    /// be exported in it.
    ExportSize {
        source: PathBuf,
        fp16: bool,
        format: String,
        result: Result<u64, String>,
    },
    /// The two runs of a comparison were read; `generation` tells the latest from stale ones.
    Compared {
        generation: u64,
        result: Result<Box<crate::compare::Comparison>, String>,
    },
    /// The project's runs were looked through; `generation` tells the latest look from stale ones.
    Runs {
        generation: u64,
        found: crate::runs::FoundRuns,
    },
    /// The system's file dialog answered (or showed nothing).
    NativeDialog {
        request: DialogRequest,
        answer: NativeAnswer,
    },
    /// The built-in file browser's folder was listed; `generation` tells the latest from stale ones.
    Listed {
        generation: u64,
        result: Result<Listing, String>,
    },
    /// A path typed into the built-in file browser was checked.
    TypedChecked {
        generation: u64,
        result: Result<Typed, String>,
    },
    /// A table project's training table was read for its columns (with scan `generation`).
    TableColumns {
        generation: u64,
        result: Result<TableColumns, String>,
    },
    /// An activity project's training sessions were listed and the first read (scan `generation`).
    Recordings {
        generation: u64,
        result: Result<
            (
                Vec<lathe_engine::templates::activity::recording::RecordingRef>,
                Result<lathe_engine::templates::activity::recording::Recording, String>,
            ),
            String,
        >,
    },
    /// The session at `index` of the Data screen's menu was read (scan `generation`).
    RecordingRead {
        generation: u64,
        index: usize,
        result: Result<lathe_engine::templates::activity::recording::Recording, String>,
    },
    /// A job failed before it could report anything more specific.
    Failed(String),
}

/// Sends results back to the UI and wakes it.
#[derive(Clone)]
pub struct JobSender {
    tx: Sender<JobResult>,
    repaint: Repaint,
}

impl JobSender {
    pub fn send(&self, result: JobResult) {
        let _ = self.tx.send(result);
        self.repaint.wake();
    }
}

/// The results channel and the spawner.
pub struct Jobs {
    sender: JobSender,
    rx: Receiver<JobResult>,
}

impl Jobs {
    pub fn new(repaint: Repaint) -> Self {
        let (tx, rx) = channel();
        Self {
            sender: JobSender { tx, repaint },
            rx,
        }
    }

    pub fn sender(&self) -> JobSender {
        self.sender.clone()
    }

    /// Runs `work` on a thread named `lathe-<name>`.
    pub fn spawn(&self, name: &str, work: impl FnOnce(&JobSender) + Send + 'static) {
        let sender = self.sender.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("lathe-{name}"))
            .spawn(move || work(&sender));
        if let Err(e) = spawned {
            self.sender.send(JobResult::Failed(format!(
                "cannot start a background thread ({e})"
            )));
        }
    }

    /// The next finished result, without waiting.
    pub fn try_next(&self) -> Option<JobResult> {
        self.rx.try_recv().ok()
    }
}
