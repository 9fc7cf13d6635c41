//! `Studio`: the app. `logic()` drains engine events and job results and runs the queued
//! [`Command`]s; `draw()` only draws the [`State`] and queues commands. Everything slow runs on
//! background threads ([`crate::jobs`]), and the engine wakes the UI through a repaint waker.

use crate::command::{Command, DataSlot, Screen};
use crate::file_dialog::{DialogMode, DialogPurpose, DialogRequest, NativeAnswer, NativeDialog};
use crate::frame_stats::FrameStats;
use crate::jobs::{JobResult, JobSender, Jobs, Repaint};
use crate::preview_data::{PreviewImage, PreviewKind, TableRows, Waveform};
use crate::report::{EvalView, ReportView};
use crate::state::{
    ExploreState, FileBrowser, ModelState, PreviewItem, ScanState, State, TableColumns,
    TextPreview, Unsaved,
};
use crate::thumbnails::Thumbnails;
pub use crate::ui::view::View;
use lathe_engine::explore::Step;
use lathe_engine::params::{ParamValue, ResolvedParams};
use lathe_engine::task::{self, Model, ResolvedData};
use lathe_engine::templates;
use lathe_engine::train::{Control, Event, Outcome, RunDir, RunOptions, RunState, Status};
use lathe_engine::{Project, Session, SessionOptions, Template};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// eframe storage key of the recent-projects list.
const RECENT_KEY: &str = "lathe-studio.recent";
/// Recent projects remembered.
const MAX_RECENT: usize = 8;
/// Longest time a frame spends draining engine events.
const DRAIN_BUDGET: Duration = Duration::from_millis(8);

/// Settings that do not belong in the project (from the command line or tests).
#[derive(Clone, Default)]
pub struct StudioOptions {
    /// Where runs of unsaved projects go (default `~/Lathe`); saved projects keep their runs
    /// next to `project.toml`.
    pub runs_home: Option<PathBuf>,
    /// Feature cache folder (default: the engine's).
    pub cache_dir: Option<PathBuf>,
    /// Parameter overrides applied to every run, on top of the project.
    pub overrides: BTreeMap<String, ParamValue>,
    /// Write frame-time percentiles here when the app closes.
    pub frame_stats_out: Option<PathBuf>,
    /// Close the window once a run has finished and its model is loaded (for measurements).
    pub exit_when_done: bool,
    /// Always use the built-in file browser, never the system's dialog
    /// (`LATHE_BUILTIN_DIALOGS=1`, `--builtin-dialogs`).
    pub builtin_dialogs: bool,
    /// The system's file dialog (default: rfd's); tests put a stand-in here.
    pub native_dialog: Option<NativeDialog>,
}

/// The whole app.
pub struct Studio {
    pub state: State,
    pub view: View,
    pub options: StudioOptions,
    pub frame_stats: FrameStats,
    commands: Vec<Command>,
    jobs: Jobs,
    repaint: Repaint,
    session: Option<Box<Session>>,
    scan_control: Option<Control>,
    scan_generation: u64,
    model: Arc<Mutex<Option<Box<dyn Model>>>>,
    /// Time the last `logic` took (eframe calls it apart from `ui`).
    logic_time: Duration,
    /// Things asked for on the command line, done once the app is ready for them.
    pending: Vec<Pending>,
    /// A project or run is being opened.
    opening: bool,
    /// Counts text-preview requests; only the latest one's result is shown.
    text_generation: u64,
    /// Counts row-preview requests; only the latest one's result is shown.
    row_generation: u64,
    /// Counts reads of the runs the current run continues; only the latest one's result is kept.
    earlier_generation: u64,
    /// Counts looks through the project's runs; only the latest one's result is kept.
    runs_generation: u64,
    /// Counts comparisons asked for; only the latest one's result is kept.
    compare_generation: u64,
    /// Counts export-size measurements; each uses its own scratch folder.
    measure_generation: u64,
    /// Counts explorations asked for; only the latest one's progress and result are kept.
    explore_generation: u64,
    /// Cancels the exploration under way.
    explore_control: Option<Control>,
    /// The system's file dialog showed nothing once: the built-in browser is used from then on.
    native_failed: bool,
    /// The system's file dialog is open (one at a time).
    native_open: bool,
    /// Counts the built-in browser's listings and path checks; only the latest one's result is kept.
    browse_generation: u64,
    /// What to do once the project is saved (the unsaved-changes prompt's "Save").
    after_save: Option<Unsaved>,
    /// Close the window at the next `logic` (the user quit, nothing is left unsaved).
    quit_requested: bool,
    /// The window is closing for good: its close request is not cancelled again.
    quitting: bool,
}

/// How a training session starts.
#[derive(Clone, Debug, PartialEq)]
enum Start {
    /// A new run of the open project.
    Fresh,
    /// The interrupted run in this folder, from its checkpoints.
    Resume(PathBuf),
    /// A new run that trains this finished run's model for `epochs` more epochs.
    Continue { from: PathBuf, epochs: i64 },
}

/// Something to do once its precondition holds (from the command line).
#[derive(Clone, Debug, PartialEq)]
enum Pending {
    /// Start training once the data is scanned.
    Train,
    /// Predict these files once the model is loaded.
    Predict(Vec<PathBuf>),
    /// Show a screen once the project is open.
    Show(Screen),
}

impl Studio {
    pub fn new(options: StudioOptions) -> Self {
        let repaint = Repaint::default();
        Self {
            state: State {
                templates: Template::all(),
                devices: crate::settings_layout::usable_devices(),
                ..State::default()
            },
            view: View {
                thumbnails: Thumbnails::new(repaint.clone()),
                typed_paths: BTreeMap::new(),
                typed_preview: String::new(),
                typed_text: String::new(),
                text_edited: None,
                row_values: Vec::new(),
                picked_row: None,
                preview_textures: BTreeMap::new(),
                continue_open: false,
                continue_epochs: 10,
                dialog_path: String::new(),
                dialog_name: String::new(),
                dialog_selected: Vec::new(),
                details_requested: Default::default(),
                mistakes_shown: BTreeMap::new(),
                compare_ticked: Vec::new(),
                export_form: Default::default(),
                large_images: Thumbnails::with_size(repaint.clone(), crate::thumbnails::LARGE_SIZE),
                explore_selected: None,
                explore_similarity: crate::ui::explore::DEFAULT_SIMILARITY,
                explore_shown: BTreeMap::new(),
            },
            options,
            frame_stats: FrameStats::default(),
            commands: Vec::new(),
            jobs: Jobs::new(repaint.clone()),
            repaint,
            session: None,
            scan_control: None,
            scan_generation: 0,
            model: Arc::new(Mutex::new(None)),
            logic_time: Duration::ZERO,
            pending: Vec::new(),
            opening: false,
            text_generation: 0,
            row_generation: 0,
            runs_generation: 0,
            compare_generation: 0,
            measure_generation: 0,
            explore_generation: 0,
            explore_control: None,
            earlier_generation: 0,
            native_failed: false,
            native_open: false,
            browse_generation: 0,
            after_save: None,
            quit_requested: false,
            quitting: false,
        }
    }

    /// Starts training as soon as the project's data is scanned without errors.
    pub fn start_when_ready(&mut self) {
        self.pending.push(Pending::Train);
    }

    /// Predicts `files` as soon as a model is loaded.
    pub fn predict_when_ready(&mut self, files: Vec<PathBuf>) {
        self.pending.push(Pending::Predict(files));
    }

    /// Shows `screen` once the project is open (and training started, if asked for).
    pub fn show_when_ready(&mut self, screen: Screen) {
        self.pending.push(Pending::Show(screen));
    }

    fn run_pending(&mut self) {
        if self.pending.is_empty() || self.opening || self.state.project.is_none() {
            return;
        }
        let mut keep = Vec::new();
        let training_pending = self.pending.contains(&Pending::Train);
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Train if self.state.ready_to_train() => self.run(Command::StartTraining),
                Pending::Predict(inputs) if self.state.model.loaded => {
                    if self.state.preview_kind() == PreviewKind::Text {
                        // For a text model the inputs are texts to type.
                        let text = inputs
                            .iter()
                            .map(|p| p.to_string_lossy())
                            .collect::<Vec<_>>()
                            .join("\n");
                        self.view.typed_text = text.clone();
                        self.run(Command::PredictText(text));
                        self.state.screen = Screen::Preview;
                    } else {
                        self.run(Command::Predict(inputs))
                    }
                }
                Pending::Show(screen) if !training_pending => self.run(Command::Show(screen)),
                other => keep.push(other),
            }
        }
        self.pending.extend(keep);
    }

    /// Restores the recent-projects list from eframe storage.
    pub fn load_storage(&mut self, storage: &dyn eframe::Storage) {
        if let Some(recent) = eframe::get_value::<Vec<PathBuf>>(storage, RECENT_KEY) {
            self.state.recent = recent;
        }
    }

    /// Queues a command (the screens' only way to change anything).
    pub fn send(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// One whole frame: logic, then drawing (what eframe calls, split in two, and what kittest
    /// tests call).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let started = Instant::now();
        self.logic(ui.ctx());
        self.draw(ui);
        self.frame_stats
            .record(started.elapsed(), self.state.run_active);
    }

    /// Drains events and results, runs queued commands. No blocking, no file IO.
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.repaint.set(ctx);
        self.view.thumbnails.receive(ctx);
        self.view.large_images.receive(ctx);
        while let Some(result) = self.jobs.try_next() {
            self.on_job(result);
        }
        self.drain_session();
        let commands = std::mem::take(&mut self.commands);
        for c in commands {
            self.run(c);
        }
        self.run_pending();
        // The window's close button (or the window manager) asks to close: ask about unsaved
        // changes first.
        if !self.quitting && ctx.input(|i| i.viewport().close_requested()) && self.unsaved() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.state.confirm = Some(Unsaved::Quit);
        }
        if std::mem::take(&mut self.quit_requested) {
            self.quitting = true;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if !self.commands.is_empty() {
            ctx.request_repaint();
        }
    }

    /// Draws the current screen; clicks become commands run at the next `logic`.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let mut commands = Vec::new();
        crate::ui::studio_ui(ui, &self.state, &mut self.view, &mut commands);
        if !commands.is_empty() {
            ui.ctx().request_repaint();
        }
        self.commands.extend(commands);
    }

    /// Whether a training session is running (or starting).
    pub fn is_training(&self) -> bool {
        self.state.run_active
    }

    fn drain_session(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let started = Instant::now();
        let mut finished = None;
        let mut disconnected = false;
        loop {
            match session.events().try_recv() {
                Ok(event) => {
                    self.state.run.apply(&event);
                    match &event {
                        Event::Paused | Event::Resumed => self.state.pause_requested = false,
                        Event::Finished { outcome, .. } => finished = Some(outcome.clone()),
                        _ => {}
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
            if started.elapsed() > DRAIN_BUDGET {
                // More next frame.
                self.repaint.wake();
                break;
            }
        }
        if let Some(outcome) = finished {
            self.on_finished(&outcome);
        }
        if disconnected {
            // The training thread has ended; its handle is dropped (detached), never joined here.
            self.session = None;
            if self.state.run_active {
                self.state.run_active = false;
                if !self.state.run.status.is_finished() {
                    self.state
                        .error("training stopped without reporting an outcome");
                }
            }
        }
    }

    fn on_finished(&mut self, outcome: &Outcome) {
        self.state.run_active = false;
        self.state.pause_requested = false;
        match outcome {
            Outcome::Completed { .. } => {
                if let Some(run_dir) = self.state.run.run_dir.clone() {
                    self.load_run_outputs(&run_dir);
                }
                self.find_runs(self.state.run.run_dir.clone());
                self.state
                    .info("Training finished: see Evaluate, Preview and Export");
            }
            Outcome::Cancelled { .. } => {
                self.state
                    .info("Training cancelled; the last checkpoint is kept, so it can be resumed");
                self.find_runs(self.state.run.run_dir.clone());
            }
            Outcome::Failed { message } => {
                self.state.error(format!("Training failed: {message}"));
                self.find_runs(self.state.run.run_dir.clone());
            }
        }
    }

    fn on_job(&mut self, result: JobResult) {
        match result {
            JobResult::Command(c) => self.run(c),
            JobResult::ScanProgress {
                generation,
                done,
                total,
            } => {
                if generation == self.scan_generation {
                    self.state.scan = ScanState::Running { done, total };
                }
            }
            JobResult::Scanned { generation, result } => {
                if generation == self.scan_generation {
                    self.scan_control = None;
                    self.state.scan = match result {
                        Ok(s) => ScanState::Done(Box::new(s)),
                        Err(e) => ScanState::Failed(e),
                    };
                }
            }
            JobResult::ProjectLoaded(Ok(project)) => {
                self.opening = false;
                if let Some(file) = project.file.clone() {
                    self.remember(file);
                }
                self.set_project(*project);
                self.state.dirty = false;
            }
            JobResult::ProjectLoaded(Err(e)) | JobResult::Failed(e) => {
                self.opening = false;
                self.state.error(e);
            }
            JobResult::ProjectSaved(Ok(path)) => {
                if let Some(p) = self.state.project.as_mut() {
                    p.file = Some(path.clone());
                }
                self.state.dirty = false;
                self.state.info(format!("Saved {}", path.display()));
                self.remember(path);
                if let Some(action) = self.after_save.take() {
                    self.proceed(action);
                }
            }
            JobResult::ProjectSaved(Err(e)) => {
                self.after_save = None;
                self.state.error(e);
            }
            JobResult::NativeDialog { request, answer } => {
                self.native_open = false;
                match answer {
                    NativeAnswer::Chosen(paths) => {
                        if let Some(c) = request.answer(paths) {
                            self.run(c);
                        }
                    }
                    NativeAnswer::Cancelled => self.dialog_cancelled(&request),
                    NativeAnswer::Unavailable(why) => {
                        self.native_failed = true;
                        self.state
                            .info(format!("{why}; Lathe's own file browser is used instead"));
                        self.open_browser(request);
                    }
                }
            }
            JobResult::Listed { generation, result } => {
                if generation == self.browse_generation
                    && let Some(b) = self.state.file_dialog.as_mut()
                {
                    if let Ok(l) = &result {
                        self.view.dialog_path = l.dir.display().to_string();
                    }
                    self.view.dialog_selected.clear();
                    b.listing = Some(result);
                }
            }
            JobResult::TypedChecked { generation, result } => {
                if generation == self.browse_generation {
                    match result {
                        Ok(crate::file_dialog::Typed::Browse(dir)) => self.browse(dir),
                        Ok(crate::file_dialog::Typed::Choose(paths)) => {
                            self.run(Command::BrowseChosen(paths))
                        }
                        Ok(crate::file_dialog::Typed::Replace(path)) => {
                            if let Some(b) = self.state.file_dialog.as_mut() {
                                b.replace = Some(path);
                            }
                        }
                        Err(e) => {
                            if let Some(b) = self.state.file_dialog.as_mut() {
                                b.problem = Some(e);
                            }
                        }
                    }
                }
            }
            JobResult::TableColumns { generation, result } => {
                if generation == self.scan_generation {
                    self.state.table_columns = Some(result);
                }
            }
            JobResult::Recordings { generation, result } => {
                if generation == self.scan_generation
                    && let Some(r) = self.state.recordings.as_mut()
                {
                    match result {
                        Ok((sessions, first)) => {
                            r.sessions = Some(Ok(sessions));
                            r.selected = 0;
                            r.shown = Some(first);
                        }
                        Err(e) => r.sessions = Some(Err(e)),
                    }
                }
            }
            JobResult::RecordingRead {
                generation,
                index,
                result,
            } => {
                if generation == self.scan_generation
                    && let Some(r) = self.state.recordings.as_mut()
                    && r.selected == index
                {
                    r.shown = Some(result);
                }
            }
            JobResult::SessionStarted { result, replayed } => match result {
                Ok(session) => {
                    if let Some(state) = replayed {
                        self.state.run = *state;
                    }
                    self.session = Some(session);
                }
                Err(e) => {
                    self.state.run_active = false;
                    self.state.error(e);
                }
            },
            JobResult::RunOpened {
                run_dir,
                project,
                state,
            } => {
                self.opening = false;
                if let Some(p) = project {
                    self.set_project(*p);
                    self.state.dirty = false;
                    // The runs listed are the ones beside it; an interrupted run is offered for
                    // resuming, wherever its folder is.
                    self.state.runs_folder = run_dir.parent().map(Path::to_path_buf);
                    self.find_runs(Some(run_dir.clone()));
                }
                self.show_run(&run_dir, *state);
                self.state.screen = if self.state.run.status == Status::Completed {
                    Screen::Evaluate
                } else {
                    Screen::Train
                };
            }
            JobResult::RunShown { run_dir, result } => match result {
                Ok(state) if !self.state.run_active => self.show_run(&run_dir, *state),
                Ok(_) => {}
                Err(e) => self.state.error(e),
            },
            JobResult::Earlier {
                generation,
                earlier,
            } => {
                if generation == self.earlier_generation {
                    self.state.earlier = earlier;
                }
            }
            JobResult::Report { run_dir, result } => {
                if self.state.run.run_dir.as_deref() == Some(run_dir.as_path()) {
                    match result {
                        Ok(r) => self.state.report = Some(r),
                        Err(e) => self.state.error(e),
                    }
                }
            }
            JobResult::ModelLoaded { source, result } => {
                if self.state.model.source.as_deref() == Some(source.as_path()) {
                    self.state.model.loading = false;
                    match result {
                        Ok(labels) => {
                            self.state.model.loaded = true;
                            self.state.model.labels = labels;
                            if self.state.preview_kind() == PreviewKind::Table {
                                self.load_table_rows(source);
                            }
                        }
                        Err(e) => self.state.model.error = Some(e),
                    }
                }
            }
            JobResult::Evaluated { data, result } => {
                self.state.evaluating = false;
                match result {
                    Ok(view) => self.state.extra_evaluation = Some((data, view)),
                    Err(e) => self.state.error(e),
                }
            }
            JobResult::Details(details) => self.state.sample_details.extend(details),
            JobResult::ExploreProgress {
                generation,
                step,
                done,
                total,
            } => {
                if generation == self.explore_generation
                    && let Some(ExploreState::Running { run_dir, .. }) = &self.state.exploration
                {
                    self.state.exploration = Some(ExploreState::Running {
                        run_dir: run_dir.clone(),
                        step,
                        done,
                        total,
                    });
                }
            }
            JobResult::Explored { generation, result } => {
                if generation == self.explore_generation
                    && let Some(state) = &self.state.exploration
                {
                    self.explore_control = None;
                    let run_dir = state.run_dir().to_path_buf();
                    self.state.exploration = Some(match result {
                        Ok(exploration) => ExploreState::Ready {
                            run_dir,
                            exploration,
                        },
                        Err(error) => ExploreState::Failed { run_dir, error },
                    });
                }
            }
            JobResult::LabelFixed(result) => {
                self.state.fixing = false;
                match result {
                    Ok(fix) => {
                        let name = fix
                            .to
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let in_project = self
                            .state
                            .data_folders()
                            .iter()
                            .any(|d| fix.from.starts_with(d));
                        self.state.info(format!(
                            "Moved {name} from {} to {}{}",
                            fix.old_label,
                            fix.new_label,
                            if in_project {
                                "; the data changed: train again to use the fixed label"
                            } else {
                                ""
                            }
                        ));
                        self.state.label_fixes.push(fix);
                        if in_project {
                            self.rescan();
                        }
                    }
                    Err(e) => self.state.error(format!("The file was not moved: {e}")),
                }
            }
            JobResult::FixUndone { to, result } => {
                self.state.fixing = false;
                match result {
                    Ok(back) => {
                        self.state.label_fixes.retain(|f| f.to != to);
                        self.state.info(format!("Moved back to {}", back.display()));
                        self.rescan();
                    }
                    Err(e) => self
                        .state
                        .error(format!("The file was not moved back: {e}")),
                }
            }
            JobResult::Predicted(items) => {
                self.state.predicting = false;
                self.view.preview_textures.clear();
                self.state.previews = items;
            }
            JobResult::PredictedText {
                generation,
                text,
                result,
            } => {
                if generation == self.text_generation {
                    self.state.predicting = false;
                    self.state.text_preview = Some(TextPreview { text, result });
                }
            }
            JobResult::TableRows { source, result } => {
                if self.state.model.source.as_deref() == Some(source.as_path()) {
                    self.state.table_rows = Some(result);
                }
            }
            JobResult::PredictedRow { generation, result } => {
                if generation == self.row_generation {
                    self.state.predicting = false;
                    self.state.row_prediction = Some(result);
                }
            }
            JobResult::Exported {
                format,
                result,
                request,
            } => {
                self.state.exporting = false;
                match result {
                    Ok(done) => {
                        self.state.info(format!(
                            "Exported {} to {}",
                            crate::export_form::format_title(&format),
                            done.path.display()
                        ));
                        self.state.exports.retain(|e| e.format != format);
                        self.state.exports.push(done);
                    }
                    Err(crate::export_form::ExportProblem::Exists(path)) => {
                        // Ask before replacing; "Replace" sends the request again.
                        self.state.export_replace = Some((*request, path));
                    }
                    Err(crate::export_form::ExportProblem::Failed(e)) => self.state.error(e),
                }
            }
            JobResult::ExportSize {
                source,
                fp16,
                format,
                result,
            } => {
                if let Some(sizes) = self.state.export_sizes.as_mut()
                    && sizes.source == source
                    && sizes.fp16 == fp16
                {
                    sizes.sizes.insert(format, result);
                }
            }
            JobResult::Compared { generation, result } => {
                if generation == self.compare_generation {
                    self.state.comparison = Some(match result {
                        Ok(c) => crate::state::CompareState::Ready(c),
                        Err(e) => crate::state::CompareState::Failed(e),
                    });
                }
            }
            JobResult::Runs { generation, found } => {
                if generation == self.runs_generation {
                    self.state.resumable = found.interrupted;
                    self.state.finished_run = found.finished;
                    self.state.runs = found.all;
                    // A project just opened shows its newest finished run, as training it left it.
                    if let (Some(dir), Some(state)) =
                        (&self.state.finished_run, found.finished_state)
                        && !self.state.run_active
                        && !self.opening
                        && self.state.run.status == Status::NotStarted
                        && self.state.run.run_dir.is_none()
                    {
                        let dir = dir.clone();
                        self.show_run(&dir, *state);
                    }
                }
            }
        }
    }

    /// Runs one command.
    pub fn run(&mut self, command: Command) {
        match command {
            Command::NewProject { template } => match Template::get(&template) {
                Ok(t) => {
                    let mut project = Project::new(&t.id, PathBuf::new());
                    project.name = t.title.clone();
                    self.set_project(project);
                    self.state.dirty = true;
                }
                Err(e) => self.state.error(e.to_string()),
            },
            Command::OpenProject(path) => {
                self.opening = true;
                self.jobs.spawn("open-project", move |tx| {
                let loaded = std::path::absolute(&path)
                    .map_err(|e| format!("{e}: {}", path.display()))
                    .and_then(|p| Project::load(&p).map(Box::new).map_err(|e| e.to_string()));
                    tx.send(JobResult::ProjectLoaded(loaded));
                });
            }
            Command::OpenProjectDialog => {
                if self.unsaved() {
                    self.state.confirm = Some(Unsaved::Open);
                } else {
                    self.proceed(Unsaved::Open);
                }
            }
            Command::SaveProject => {
                let file = self.state.project.as_ref().and_then(|p| p.file.clone());
                self.run(match file {
                    Some(f) => Command::SaveProjectTo(f),
                    None => Command::SaveProjectAs,
                });
            }
            Command::SaveProjectAs => {
                if self.state.project.is_none() {
                    return;
                }
                let file = self.state.project.as_ref().and_then(|p| p.file.clone());
                let request = DialogRequest::new(
                    DialogPurpose::SaveProject,
                    DialogMode::Save,
                    "Save the Lathe project",
                )
                .extensions(&["toml"])
                .file_name(
                    &file
                        .as_ref()
                        .and_then(|f| f.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "project.toml".into()),
                )
                .start(file.as_ref().and_then(|f| f.parent()).map(Path::to_path_buf));
                self.ask(request);
            }
            Command::SaveProjectTo(path) => {
                let Some(project) = self.state.project.clone() else {
                    self.after_save = None;
                    return;
                };
                self.jobs.spawn("save-project", move |tx| {
                    let path = std::path::absolute(&path).unwrap_or(path);
                    let saved = project
                        .save(&path)
                        .map(|_| path.clone())
                        .map_err(|e| e.to_string());
                    tx.send(JobResult::ProjectSaved(saved));
                });
            }
            Command::CloseProject => {
                if self.state.project.is_none() {
                    return;
                }
                if self.state.run_active {
                    self.state
                        .error("A training is running: cancel it before closing the project");
                    return;
                }
                if self.unsaved() {
                    self.state.confirm = Some(Unsaved::Close);
                } else {
                    self.proceed(Unsaved::Close);
                }
            }
            Command::Quit => {
                if self.unsaved() {
                    self.state.confirm = Some(Unsaved::Quit);
                } else {
                    self.proceed(Unsaved::Quit);
                }
            }
            Command::ConfirmSave => {
                if let Some(action) = self.state.confirm.take() {
                    self.after_save = Some(action);
                    self.run(Command::SaveProject);
                }
            }
            Command::ConfirmDiscard => {
                if let Some(action) = self.state.confirm.take() {
                    self.proceed(action);
                }
            }
            Command::ConfirmCancel => self.state.confirm = None,
            Command::Show(screen) => self.state.screen = screen,
            Command::SetData(slot, path) => {
                let Some(project) = self.state.project.as_mut() else {
                    return;
                };
                let path = path
                    .map(crate::file_dialog::expand_home)
                    .map(|p| std::path::absolute(&p).unwrap_or(p));
                match slot {
                    DataSlot::Train => project.data.train = path.unwrap_or_default(),
                    DataSlot::Validation => project.data.validation = path,
                    DataSlot::Test => project.data.test = path,
                }
                self.state.dirty = true;
                self.rescan();
            }
            Command::DropData(slot, paths) => match data_root_from_drop(&paths) {
                Some(root) => self.run(Command::SetData(slot, Some(root))),
                None => self.state.error("Drop a folder (one subfolder per class), not single files from different places"),
            },
            Command::ChooseData(slot) => {
                let start = self.data_path(slot).or_else(|| self.data_path(DataSlot::Train));
                let request = DialogRequest::new(
                    DialogPurpose::Data(slot),
                    self.data_mode(),
                    slot.title(),
                )
                .extensions(&crate::file_dialog::TABLE_EXTENSIONS)
                .start(start.and_then(|p| p.parent().map(Path::to_path_buf)));
                self.ask(request);
            }
            Command::SetParam { key, value } => self.set_param(&key, value),
            Command::ResetParam(key) => {
                if let Some(p) = self.state.project.as_mut() {
                    p.params.remove(&key);
                    self.state.dirty = true;
                }
                self.check_continue_support();
                if scan_relevant(&key) {
                    self.rescan();
                }
            }
            Command::SetSeed(seed) => {
                if let Some(p) = self.state.project.as_mut() {
                    p.seed = seed;
                    self.state.dirty = true;
                    self.rescan();
                }
            }
            Command::SetDevice(device) => {
                if let Some(p) = self.state.project.as_mut() {
                    p.device = device;
                    self.state.dirty = true;
                }
            }
            Command::StartTraining => self.start_training(Start::Fresh),
            Command::ResumeRun(dir) => self.start_training(Start::Resume(dir)),
            Command::ContinueRun { from, epochs } => {
                self.view.continue_open = false;
                self.start_training(Start::Continue { from, epochs });
            }
            Command::Pause => {
                if let Some(s) = &self.session {
                    s.control().pause();
                    self.state.pause_requested = true;
                }
            }
            Command::Resume => {
                if let Some(s) = &self.session {
                    s.control().resume();
                    self.state.pause_requested = false;
                }
            }
            Command::Cancel => {
                if let Some(s) = &self.session {
                    s.control().cancel();
                }
            }
            Command::OpenRun(dir) => {
                self.opening = true;
                self.jobs.spawn("open-run", move |tx| {
                    let dir = crate::file_dialog::expand_home(dir);
                    let dir = std::path::absolute(&dir).unwrap_or(dir);
                    match crate::runs::replay(&dir) {
                        Ok(state) => {
                            // The lock file is the project as the run used it, its data found
                            // next to the folder when the folder was copied or moved.
                            let project = lathe_engine::train::run_dir::load_lock(&dir)
                                .ok()
                                .map(|mut p| {
                                    p.file = None;
                                    Box::new(p)
                                });
                            tx.send(JobResult::RunOpened {
                                run_dir: dir,
                                project,
                                state: Box::new(state),
                            })
                        }
                        Err(e) => tx.send(JobResult::Failed(e)),
                    }
                });
            }
            Command::OpenRunDialog => {
                if self.unsaved() {
                    self.state.confirm = Some(Unsaved::OpenRun);
                } else {
                    self.proceed(Unsaved::OpenRun);
                }
            }
            Command::ShowRun(dir) => {
                if self.state.run_active {
                    self.state
                        .error("A training is running: wait for it (or cancel it) to look at another run");
                    return;
                }
                self.jobs.spawn("show-run", move |tx| {
                    let result = crate::runs::replay(&dir).map(Box::new);
                    tx.send(JobResult::RunShown {
                        run_dir: dir,
                        result,
                    });
                });
            }
            Command::SelectCell {
                split,
                truth,
                predicted,
            } => self.state.selected_cell = Some((split, truth, predicted)),
            Command::LoadDetails(inputs) => {
                let kind = self.state.preview_kind();
                let mut tables: Vec<PathBuf> = self.state.data_folders();
                if let Some((folder, _)) = &self.state.extra_evaluation {
                    tables.push(folder.clone());
                }
                self.jobs.spawn("sample-details", move |tx| {
                    let details = inputs
                        .into_iter()
                        .map(|input| {
                            let sample = crate::mistakes::SampleKind::of(&input, kind);
                            let detail = crate::mistakes::details(&input, &sample, &tables);
                            (input, detail)
                        })
                        .collect();
                    tx.send(JobResult::Details(details));
                });
            }
            Command::FixLabel {
                input,
                label,
                class,
            } => {
                if self.state.fixing || self.state.run_active {
                    return;
                }
                let Some(root) =
                    crate::mistakes::class_root(&input, &label, &self.state.label_folders())
                else {
                    self.state.error(format!(
                        "{} is not in a class folder of this project's data, so its label cannot be changed here",
                        input.display()
                    ));
                    return;
                };
                self.state.fixing = true;
                self.jobs.spawn("fix-label", move |tx| {
                    let result = crate::mistakes::move_to_class(&input, &root, &class).map(|to| {
                        crate::mistakes::LabelFix {
                            from: input,
                            to,
                            old_label: label,
                            new_label: class,
                        }
                    });
                    tx.send(JobResult::LabelFixed(result));
                });
            }
            Command::UndoFix(to) => {
                if self.state.fixing {
                    return;
                }
                let Some(fix) = self.state.label_fixes.iter().find(|f| f.to == to).cloned() else {
                    return;
                };
                self.state.fixing = true;
                self.jobs.spawn("undo-fix", move |tx| {
                    let result = crate::mistakes::undo(&fix);
                    tx.send(JobResult::FixUndone { to, result });
                });
            }
            Command::Explore => self.explore(),
            Command::EvaluateFolder(data) => self.evaluate(data),
            Command::ChooseEvaluateFolder => {
                let start = self
                    .data_path(DataSlot::Test)
                    .or_else(|| self.data_path(DataSlot::Train));
                let request = DialogRequest::new(
                    DialogPurpose::Evaluate,
                    self.data_mode(),
                    "Labelled data to evaluate on",
                )
                .extensions(&crate::file_dialog::TABLE_EXTENSIONS)
                .start(start.and_then(|p| p.parent().map(Path::to_path_buf)));
                self.ask(request);
            }
            Command::ShowRecording(index) => self.show_recording(index),
            Command::Predict(files) => self.predict(files),
            Command::PredictText(text) => self.predict_text(text),
            Command::PredictRow(values) => self.predict_row(values),
            Command::ChoosePreviewFiles => {
                let start = self.data_path(DataSlot::Test).or_else(|| self.data_path(DataSlot::Train));
                let request =
                    DialogRequest::new(DialogPurpose::Preview, DialogMode::Files, "Files to preview")
                        .start(start);
                self.ask(request);
            }
            Command::Export(request) => self.export(request),
            Command::KeepExisting => self.state.export_replace = None,
            Command::MeasureExports { fp16 } => self.measure_exports(fp16),
            Command::ChooseExportFolder => {
                let start = self.state.model.source.as_ref().map(|s| {
                    self.view
                        .export_form
                        .folder_or(&crate::export_form::default_folder(s))
                });
                let request = DialogRequest::new(
                    DialogPurpose::ExportFolder,
                    DialogMode::Folder,
                    "Where to save the exported model",
                )
                .start(start);
                self.ask(request);
            }
            Command::SetExportFolder(folder) => {
                self.view.export_form.folder = folder.display().to_string();
            }
            Command::CompareRuns(a, b) => self.compare(a, b),
            Command::CompareWith(other) => {
                let Some(current) = self.state.run.run_dir.clone() else {
                    self.state
                        .error("Show a run first (click one in the runs list), then compare it");
                    return;
                };
                let other = crate::file_dialog::expand_home(other);
                let (a, b) = crate::compare::in_order(&self.state.runs, &current, &other);
                self.compare(a, b);
            }
            Command::ChooseCompareRun => {
                let start = self
                    .state
                    .run
                    .run_dir
                    .as_ref()
                    .and_then(|d| d.parent())
                    .map(Path::to_path_buf);
                let request = DialogRequest::new(
                    DialogPurpose::CompareRun,
                    DialogMode::Folder,
                    "A run folder to compare with",
                )
                .start(start);
                self.ask(request);
            }
            Command::OpenFolder(path) => open_folder(&path, &self.jobs.sender()),
            Command::DismissNotice => self.state.notice = None,
            Command::BrowseTo(dir) => self.browse(dir),
            Command::BrowseTyped(text) => {
                let Some(b) = self.state.file_dialog.as_mut() else {
                    return;
                };
                b.problem = None;
                b.replace = None;
                let request = b.request.clone();
                let current = b.shown_dir().to_path_buf();
                self.browse_generation += 1;
                let generation = self.browse_generation;
                self.jobs.spawn("check-path", move |tx| {
                    let result = crate::file_dialog::check_typed(&text, &current, &request);
                    tx.send(JobResult::TypedChecked { generation, result });
                });
            }
            Command::BrowseHidden(show) => {
                if let Some(b) = self.state.file_dialog.as_mut() {
                    b.show_hidden = show;
                    let dir = b.shown_dir().to_path_buf();
                    self.browse(dir);
                }
            }
            Command::BrowseChosen(paths) => {
                if let Some(b) = self.state.file_dialog.take() {
                    self.browse_generation += 1;
                    match b.request.answer(paths) {
                        Some(c) => self.run(c),
                        None => self.dialog_cancelled(&b.request),
                    }
                }
            }
            Command::BrowseCancel => {
                if let Some(b) = self.state.file_dialog.take() {
                    self.browse_generation += 1;
                    self.dialog_cancelled(&b.request);
                }
            }
        }
    }

    /// Whether the open project has changes that closing it would lose.
    fn unsaved(&self) -> bool {
        self.state.project.is_some() && self.state.dirty
    }

    /// Does what waited for the unsaved-changes prompt (or needed none).
    fn proceed(&mut self, action: Unsaved) {
        match action {
            Unsaved::Close => self.close_project(),
            Unsaved::Quit => self.quit_requested = true,
            Unsaved::Open => {
                let start = self
                    .state
                    .project
                    .as_ref()
                    .and_then(|p| p.file.as_ref())
                    .or(self.state.recent.first())
                    .and_then(|f| f.parent())
                    .map(Path::to_path_buf);
                let request = DialogRequest::new(
                    DialogPurpose::OpenProject,
                    DialogMode::File,
                    "Open a Lathe project",
                )
                .extensions(&["toml"])
                .start(start);
                self.ask(request);
            }
            Unsaved::OpenRun => {
                // Start in the folder of the run shown, else where this project's runs go.
                let start = self
                    .state
                    .run
                    .run_dir
                    .as_ref()
                    .and_then(|d| d.parent())
                    .map(Path::to_path_buf)
                    .or_else(|| {
                        self.state
                            .project
                            .is_some()
                            .then(|| self.runs_folder())
                            .filter(|d| d.is_dir())
                    });
                let request = DialogRequest::new(
                    DialogPurpose::OpenRun,
                    DialogMode::Folder,
                    "Open a Lathe run folder",
                )
                .start(start);
                self.ask(request);
            }
        }
    }

    /// Back to the template picker, keeping the templates and recent projects.
    fn close_project(&mut self) {
        if self.state.run_active {
            self.state
                .error("A training is running: cancel it before closing the project");
            return;
        }
        self.cancel_scan();
        self.stop_exploring();
        let templates = std::mem::take(&mut self.state.templates);
        let recent = std::mem::take(&mut self.state.recent);
        let devices = std::mem::take(&mut self.state.devices);
        self.state = State {
            templates,
            recent,
            devices,
            ..State::default()
        };
        self.clear_model();
    }

    /// A file dialog closed without an answer: a save that waited for it is off.
    fn dialog_cancelled(&mut self, request: &DialogRequest) {
        if request.purpose == DialogPurpose::SaveProject {
            self.after_save = None;
        }
    }

    /// Asks for files or folders: the system's dialog on a background thread (its answer comes
    /// back as a job result), or the built-in browser where that showed nothing before or the
    /// built-in one is asked for.
    fn ask(&mut self, request: DialogRequest) {
        if self.state.file_dialog.is_some() || self.native_open {
            return;
        }
        if self.options.builtin_dialogs || self.native_failed {
            self.open_browser(request);
            return;
        }
        let native = self
            .options
            .native_dialog
            .clone()
            .unwrap_or_else(|| Arc::new(crate::file_dialog::rfd_dialog));
        self.native_open = true;
        self.jobs.spawn("dialog", move |tx| {
            let answer = native(&request);
            tx.send(JobResult::NativeDialog { request, answer });
        });
    }

    /// Opens the built-in file browser in the request's folder (else the home folder).
    fn open_browser(&mut self, request: DialogRequest) {
        let dir = request
            .start
            .clone()
            .or_else(crate::file_dialog::home_dir)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        self.view.dialog_name = request.file_name.clone().unwrap_or_default();
        self.view.dialog_path = dir.display().to_string();
        self.view.dialog_selected.clear();
        self.state.file_dialog = Some(FileBrowser::new(request, dir.clone()));
        self.browse(dir);
    }

    /// Lists `dir` for the built-in browser in the background.
    fn browse(&mut self, dir: PathBuf) {
        let Some(b) = self.state.file_dialog.as_mut() else {
            return;
        };
        b.dir = dir.clone();
        b.listing = None;
        b.problem = None;
        b.replace = None;
        let request = b.request.clone();
        let show_hidden = b.show_hidden;
        self.browse_generation += 1;
        let generation = self.browse_generation;
        self.jobs.spawn("list-folder", move |tx| {
            let result = crate::file_dialog::list(&dir, &request, show_hidden);
            tx.send(JobResult::Listed { generation, result });
        });
    }

    /// A data slot's path, resolved against the project's folder.
    fn data_path(&self, slot: DataSlot) -> Option<PathBuf> {
        let project = self.state.project.as_ref()?;
        let path = match slot {
            DataSlot::Train => {
                Some(project.data.train.as_path()).filter(|p| !p.as_os_str().is_empty())
            }
            DataSlot::Validation => project.data.validation.as_deref(),
            DataSlot::Test => project.data.test.as_deref(),
        }?;
        Some(project.resolve(path))
    }

    /// What the project's data is: a table file, a folder, or (text) either.
    fn data_mode(&self) -> DialogMode {
        match self.state.preview_kind() {
            PreviewKind::Table => DialogMode::File,
            PreviewKind::Text => DialogMode::FolderOrFile,
            _ => DialogMode::Folder,
        }
    }

    fn remember(&mut self, file: PathBuf) {
        self.state.recent.retain(|f| f != &file);
        self.state.recent.insert(0, file);
        self.state.recent.truncate(MAX_RECENT);
    }

    fn set_project(&mut self, project: Project) {
        let (specs, defaults) = match param_defaults(&project.template) {
            Ok(x) => x,
            Err(e) => {
                self.state.error(e);
                return;
            }
        };
        self.cancel_scan();
        self.clear_model();
        self.state.specs = specs;
        self.state.defaults = defaults;
        self.state.project = Some(project);
        self.state.scan = ScanState::Idle;
        self.state.run = RunState::default();
        self.load_earlier(None, false);
        self.state.run_from_disk = false;
        self.state.report = None;
        self.state.extra_evaluation = None;
        self.state.selected_cell = None;
        self.stop_exploring();
        self.state.previews.clear();
        self.state.exports.clear();
        self.state.resumable.clear();
        self.state.finished_run = None;
        self.state.runs.clear();
        self.state.runs_folder = None;
        self.state.label_fixes.clear();
        self.state.sample_details.clear();
        self.view.details_requested.clear();
        self.state.table_columns = None;
        self.state.recordings = None;
        self.view.continue_open = false;
        self.state.screen = Screen::Data;
        self.rescan();
        self.find_runs(None);
        self.check_continue_support();
    }

    /// Whether runs of the open project can be continued (the engine's rule, from its template and
    /// parameters); quick, no IO.
    fn check_continue_support(&mut self) {
        let Some(project) = &self.state.project else {
            return;
        };
        self.state.continue_blocked =
            match lathe_engine::session::prepare(project, &self.options.overrides) {
                Ok(prepared) => {
                    lathe_engine::train::extend::supported(&project.template, &prepared.params)
                        .err()
                }
                Err(e) => Some(e.to_string()),
            };
    }

    fn set_param(&mut self, key: &str, value: ParamValue) {
        let Some(spec) = self.state.specs.iter().find(|s| s.key == key) else {
            return;
        };
        let checked = match spec.check(&value) {
            Ok(v) => v,
            Err(e) => {
                self.state.error(e.to_string());
                return;
            }
        };
        let is_default = self.state.defaults.get(key) == Some(&checked);
        if let Some(p) = self.state.project.as_mut() {
            if is_default {
                p.params.remove(key);
            } else {
                p.params.insert(key.to_string(), checked.to_toml());
            }
            self.state.dirty = true;
        }
        self.check_continue_support();
        if scan_relevant(key) {
            self.rescan();
        }
    }

    fn cancel_scan(&mut self) {
        if let Some(c) = self.scan_control.take() {
            c.cancel();
        }
        self.scan_generation += 1;
    }

    /// Scans the project's data again on a background thread (cancelling an earlier scan).
    fn rescan(&mut self) {
        self.cancel_scan();
        let Some(project) = self.state.project.clone() else {
            return;
        };
        if project.data.train.as_os_str().is_empty() {
            self.state.scan = ScanState::Idle;
            self.state.table_columns = None;
            self.state.recordings = None;
            return;
        }
        let control = Control::new();
        self.scan_control = Some(control.clone());
        let generation = self.scan_generation;
        self.state.scan = ScanState::Running { done: 0, total: 0 };
        let activity = self.state.preview_kind() == PreviewKind::Activity;
        self.state.recordings = activity.then(crate::recordings::Recordings::default);
        // A table's columns, for the target dropdown (read apart from the scan, which stops at a
        // missing target).
        let target = (self.state.preview_kind() == PreviewKind::Table).then(|| {
            match self.state.param("target") {
                Some(ParamValue::Text(t)) => t,
                _ => String::new(),
            }
        });
        self.jobs.spawn("scan", move |tx| {
            if let Some(target) = target {
                let result = table_columns(&ResolvedData::of(&project).train, &target);
                tx.send(JobResult::TableColumns { generation, result });
            }
            let result = scan(&project, &control, &mut |done, total| {
                tx.send(JobResult::ScanProgress {
                    generation,
                    done,
                    total,
                })
            });
            let scanned = result.is_ok();
            tx.send(JobResult::Scanned { generation, result });
            // An activity project's sessions, for the Data screen's recording plot.
            if activity && scanned {
                let result = crate::recordings::list_and_read(&project);
                tx.send(JobResult::Recordings { generation, result });
            }
        });
    }

    /// Reads the training session at `index` of the Data screen's menu in the background.
    fn show_recording(&mut self, index: usize) {
        let Some(project) = self.state.project.clone() else {
            return;
        };
        let Some(recordings) = self.state.recordings.as_mut() else {
            return;
        };
        let Some(Ok(sessions)) = &recordings.sessions else {
            return;
        };
        let Some(session) = sessions.get(index).cloned() else {
            return;
        };
        recordings.selected = index;
        recordings.shown = None;
        let generation = self.scan_generation;
        self.jobs.spawn("recording", move |tx| {
            let result = crate::recordings::read(&project, &session);
            tx.send(JobResult::RecordingRead {
                generation,
                index,
                result,
            });
        });
    }

    /// The folder runs go under (in its `runs/`): next to a saved project; for a project opened
    /// from a run in a `runs/` folder, beside that run; else the runs home.
    fn runs_base(&self) -> PathBuf {
        if let Some(file) = self.state.project.as_ref().and_then(|p| p.file.as_ref())
            && let Some(parent) = file.parent()
        {
            return parent.to_path_buf();
        }
        if let Some(folder) = &self.state.runs_folder
            && folder.file_name().is_some_and(|n| n == "runs")
            && let Some(parent) = folder.parent()
        {
            return parent.to_path_buf();
        }
        self.options
            .runs_home
            .clone()
            .unwrap_or_else(default_runs_home)
    }

    /// The folder the project's runs are listed from: `runs/` next to a saved project, else the
    /// folder of the run it was opened from, else the runs home's.
    fn runs_folder(&self) -> PathBuf {
        let saved = self
            .state
            .project
            .as_ref()
            .is_some_and(|p| p.file.is_some());
        match &self.state.runs_folder {
            Some(folder) if !saved => folder.clone(),
            _ => self.runs_base().join("runs"),
        }
    }

    /// Looks through the project's runs in the background (and `also`, an opened run folder):
    /// interrupted ones to resume, the newest finished one to continue.
    fn find_runs(&mut self, also: Option<PathBuf>) {
        let Some(project) = &self.state.project else {
            return;
        };
        let prefix = format!("{}-", project.template);
        let runs = self.runs_folder();
        self.runs_generation += 1;
        let generation = self.runs_generation;
        self.jobs.spawn("find-runs", move |tx| {
            let found = crate::runs::find(&runs, &prefix, also.as_deref());
            tx.send(JobResult::Runs { generation, found });
        });
    }

    fn start_training(&mut self, start: Start) {
        if self.state.run_active {
            return;
        }
        // A finished session whose thread is still winding down is let go (never joined here).
        self.session = None;
        let Some(project) = self.state.project.clone() else {
            return;
        };
        if start == Start::Fresh && !self.state.ready_to_train() {
            self.state
                .error("Choose training data without errors on the Data screen first");
            return;
        }
        let repaint = self.repaint.clone();
        let mut options = SessionOptions {
            run_dir: None,
            overrides: BTreeMap::new(),
            device: None,
            waker: Some(Arc::new(move || repaint.wake())),
            run: RunOptions {
                cache_dir: self.options.cache_dir.clone(),
                weights: None,
            },
            resume: false,
            continue_from: None,
            // The window's threads (and a software renderer's) must win the CPU.
            background: true,
        };
        // A resumed or continued run trains the project as that run locked it
        // (`project.lock.toml`: every parameter resolved), as `lathe train --resume/--continue` does.
        let locked_from = match &start {
            Start::Fresh => {
                options.run_dir = Some(RunDir::default_root(&self.runs_base(), &project.template));
                options.overrides = self.options.overrides.clone();
                None
            }
            Start::Resume(dir) => {
                options.run_dir = Some(dir.clone());
                options.resume = true;
                Some(dir.clone())
            }
            Start::Continue { from, epochs } => {
                options.continue_from = Some(from.clone());
                options
                    .overrides
                    .insert("epochs".into(), ParamValue::Int(*epochs));
                Some(from.clone())
            }
        };
        self.clear_model();
        self.state.run = RunState::default();
        match &start {
            Start::Fresh => self.load_earlier(None, false),
            Start::Resume(dir) => self.load_earlier(Some(dir.clone()), false),
            Start::Continue { from, .. } => self.load_earlier(Some(from.clone()), true),
        }
        self.state.run_from_disk = false;
        self.state.report = None;
        self.state.extra_evaluation = None;
        self.state.selected_cell = None;
        self.stop_exploring();
        self.state.previews.clear();
        self.state.exports.clear();
        self.state.run_active = true;
        self.state.pause_requested = false;
        self.state.notice = None;
        if let Start::Resume(dir) = &start {
            self.state.resumable.retain(|r| &r.dir != dir);
        }
        if start == Start::Fresh {
            // The moved files are the data now.
            self.state.label_fixes.clear();
        }
        self.state.screen = Screen::Train;
        self.jobs.spawn("start-session", move |tx| {
            // A resumed run first replays what it had done, so its plots continue.
            let replayed = match &start {
                Start::Resume(dir) => {
                    std::fs::read_to_string(dir.join(lathe_engine::train::run_dir::EVENTS))
                        .ok()
                        .map(|t| Box::new(RunState::replay(&t)))
                }
                _ => None,
            };
            let project = match &locked_from {
                // A copied or moved run folder finds its data relative to itself.
                Some(dir) => lathe_engine::train::run_dir::load_lock(dir),
                None => Ok(project),
            };
            let result = project
                .and_then(|p| Session::start(p, options))
                .map(Box::new)
                .map_err(|e| e.to_string());
            tx.send(JobResult::SessionStarted { result, replayed });
        });
    }

    fn clear_model(&mut self) {
        self.state.model = ModelState::default();
        self.state.previews.clear();
        self.state.text_preview = None;
        self.state.table_rows = None;
        self.state.row_prediction = None;
        self.view.preview_textures.clear();
        self.view.row_values.clear();
        self.view.picked_row = None;
        if let Ok(mut m) = self.model.try_lock() {
            *m = None;
        } else {
            // A job still uses the old model; give later jobs a fresh slot.
            self.model = Arc::new(Mutex::new(None));
        }
    }

    /// Makes the run in `dir` (its events replayed into `state`) the current one: the Train screen
    /// shows its curves, and a finished run's report and model fill Evaluate, Preview and Export.
    fn show_run(&mut self, dir: &Path, mut state: RunState) {
        state.run_dir = Some(dir.to_path_buf());
        self.clear_model();
        self.state.run = state;
        self.load_earlier(Some(dir.to_path_buf()), false);
        self.state.run_from_disk = true;
        self.state.report = None;
        self.state.extra_evaluation = None;
        self.state.selected_cell = None;
        if self
            .state
            .exploration
            .as_ref()
            .is_some_and(|e| e.run_dir() != dir)
        {
            self.stop_exploring();
        }
        self.state.exports.clear();
        self.view.continue_open = false;
        if self.state.run.status == Status::Completed {
            self.load_run_outputs(dir);
        }
    }

    /// Explores the current finished run's data on a background thread (cancelling an earlier
    /// exploration): the Explore screen's map and lists.
    fn explore(&mut self) {
        self.stop_exploring();
        let Some(run_dir) = self.state.run.run_dir.clone() else {
            return;
        };
        if self.state.run_active || self.state.run.status != Status::Completed {
            self.state
                .error("Exploring needs a finished run: train one, or pick one in the runs list");
            return;
        }
        let control = Control::new();
        self.explore_control = Some(control.clone());
        let generation = self.explore_generation;
        self.state.exploration = Some(ExploreState::Running {
            run_dir: run_dir.clone(),
            step: Step::Scanning,
            done: 0,
            total: 0,
        });
        let options = templates::explore::ExploreOptions {
            cache_dir: self.options.cache_dir.clone(),
        };
        self.jobs.spawn("explore", move |tx| {
            // The window's threads must win the CPU, as over training.
            lathe_engine::train::priority::lower_this_thread();
            let result = templates::explore::explore_run(
                &run_dir,
                &options,
                &mut |step, done, total| {
                    tx.send(JobResult::ExploreProgress {
                        generation,
                        step,
                        done,
                        total,
                    })
                },
                &control,
            )
            .map(Box::new)
            .map_err(|e| e.to_string());
            tx.send(JobResult::Explored { generation, result });
        });
    }

    /// Cancels the exploration under way and forgets the one shown.
    fn stop_exploring(&mut self) {
        if let Some(c) = self.explore_control.take() {
            c.cancel();
        }
        self.explore_generation += 1;
        self.state.exploration = None;
        self.view.explore_selected = None;
        self.view.explore_shown.clear();
    }

    /// Reads, in the background, the curves of the runs before the current one: those the run in
    /// `dir` continues, and with `through` the run in `dir` itself (a run about to continue it).
    fn load_earlier(&mut self, dir: Option<PathBuf>, through: bool) {
        self.earlier_generation += 1;
        self.state.earlier = None;
        let Some(dir) = dir else {
            return;
        };
        let generation = self.earlier_generation;
        self.jobs.spawn("read-earlier-runs", move |tx| {
            let earlier = if through {
                crate::runs::history_through(&dir)
            } else {
                crate::runs::earlier_runs(&dir)
            };
            tx.send(JobResult::Earlier {
                generation,
                earlier: earlier.map(Box::new),
            });
        });
    }

    /// Reads a finished run's report and loads its model, both in the background.
    fn load_run_outputs(&mut self, run_dir: &Path) {
        let dir = run_dir.to_path_buf();
        self.jobs.spawn("read-report", move |tx| {
            let result = ReportView::read(&dir);
            tx.send(JobResult::Report {
                run_dir: dir,
                result,
            });
        });
        self.clear_model();
        self.state.model.source = Some(run_dir.to_path_buf());
        self.state.model.loading = true;
        let slot = self.model.clone();
        let source = run_dir.to_path_buf();
        self.jobs.spawn("load-model", move |tx| {
            let result = templates::load_on::load_model_on(&source, "cpu")
                .map(|m| {
                    let labels = m.labels().to_vec();
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(m);
                    }
                    labels
                })
                .map_err(|e| e.to_string());
            tx.send(JobResult::ModelLoaded { source, result });
        });
    }

    fn evaluate(&mut self, data: PathBuf) {
        if !self.state.model.loaded {
            self.state
                .error("No model yet: train one, or open a finished run");
            return;
        }
        self.state.evaluating = true;
        let slot = self.model.clone();
        self.jobs.spawn("evaluate", move |tx| {
            let result = match slot.lock() {
                Ok(guard) => match guard.as_ref() {
                    Some(model) => model
                        .evaluate(&data, &mut |_, _| {}, &mut |_| {})
                        .map(|e| EvalView::from_evaluation(&e))
                        .map_err(|e| e.to_string()),
                    None => Err("the model is no longer loaded".into()),
                },
                Err(_) => Err("the model is unavailable after an earlier failure".into()),
            };
            tx.send(JobResult::Evaluated { data, result });
        });
    }

    fn predict(&mut self, files: Vec<PathBuf>) {
        if files.is_empty() {
            return;
        }
        if !self.state.model.loaded {
            self.state
                .error("No model yet: train one, or open a finished run");
            return;
        }
        self.state.predicting = true;
        self.state.screen = Screen::Preview;
        let slot = self.model.clone();
        let kind = self.state.preview_kind();
        if kind == PreviewKind::Activity {
            let params = crate::recordings::params(self.state.project.as_ref());
            self.jobs.spawn("predict", move |tx| {
                let items = match slot.lock() {
                    Ok(guard) => match guard.as_ref() {
                        Some(model) => files
                            .into_iter()
                            .map(|input| {
                                let (result, activity) = crate::recordings::predict_file(
                                    model.as_ref(),
                                    &input,
                                    &params,
                                );
                                PreviewItem {
                                    input,
                                    result,
                                    waveform: None,
                                    image: None,
                                    activity: Some(activity),
                                }
                            })
                            .collect(),
                        None => Vec::new(),
                    },
                    Err(_) => Vec::new(),
                };
                tx.send(JobResult::Predicted(items));
            });
            return;
        }
        self.jobs.spawn("predict", move |tx| {
            let inputs: Vec<String> = files
                .iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect();
            let results = match slot.lock() {
                Ok(guard) => match guard.as_ref() {
                    Some(model) => model.predict(&inputs, &mut |_, _| {}),
                    None => Vec::new(),
                },
                Err(_) => Vec::new(),
            };
            let items = files
                .into_iter()
                .zip(
                    results
                        .into_iter()
                        .map(|r| r.map_err(|e| e.to_string()))
                        .chain(std::iter::repeat_with(|| Err("not predicted".to_string()))),
                )
                .map(|(input, result)| PreviewItem {
                    waveform: (kind == PreviewKind::Sound).then(|| Waveform::read(&input)),
                    image: (kind == PreviewKind::Detector).then(|| PreviewImage::read(&input)),
                    activity: None,
                    input,
                    result,
                })
                .collect();
            tx.send(JobResult::Predicted(items));
        });
    }

    /// Predicts typed text in the background; a newer request makes older results stale.
    fn predict_text(&mut self, text: String) {
        self.text_generation += 1;
        if text.trim().is_empty() {
            self.state.text_preview = None;
            self.state.predicting = false;
            return;
        }
        if !self.state.model.loaded {
            return;
        }
        self.state.predicting = true;
        let generation = self.text_generation;
        let slot = self.model.clone();
        self.jobs.spawn("predict-text", move |tx| {
            let result = predict_one(&slot, &text);
            tx.send(JobResult::PredictedText {
                generation,
                text,
                result,
            });
        });
    }

    /// Reads the first rows of the project's test (else validation, else training) table.
    fn load_table_rows(&mut self, source: PathBuf) {
        let Some(project) = &self.state.project else {
            return;
        };
        let data = ResolvedData::of(project);
        let (path, split) = match (data.test, data.validation) {
            (Some(t), _) => (t, "test"),
            (None, Some(v)) => (v, "validation"),
            (None, None) => (data.train, "training"),
        };
        if path.as_os_str().is_empty() || !path.is_file() {
            self.state.table_rows = Some(Err(
                "No table to pick rows from: choose the project's data (a CSV file) first".into(),
            ));
            return;
        }
        let target = match self.state.param("target") {
            Some(ParamValue::Text(t)) => Some(t),
            _ => None,
        };
        self.jobs.spawn("read-rows", move |tx| {
            let result = TableRows::read(&path, split, target);
            tx.send(JobResult::TableRows { source, result });
        });
    }

    /// Predicts one table row (a value per column of the preview table) in the background.
    fn predict_row(&mut self, values: Vec<String>) {
        let Some(Ok(rows)) = &self.state.table_rows else {
            return;
        };
        if !self.state.model.loaded {
            self.state
                .error("No model yet: train one, or open a finished run");
            return;
        }
        let columns = rows.columns.clone();
        self.row_generation += 1;
        let generation = self.row_generation;
        self.state.predicting = true;
        let slot = self.model.clone();
        let dir = std::env::temp_dir().join(format!(
            "lathe-studio-{}-row-{generation}",
            std::process::id()
        ));
        self.jobs.spawn("predict-row", move |tx| {
            let result = crate::preview_data::write_row_csv(&dir, &columns, &values)
                .and_then(|path| predict_one(&slot, &path.to_string_lossy()));
            let _ = std::fs::remove_dir_all(&dir);
            tx.send(JobResult::PredictedRow { generation, result });
        });
    }

    fn export(&mut self, request: crate::export_form::ExportRequest) {
        self.state.export_replace = None;
        let Some(source) = self.state.model.source.clone() else {
            self.state
                .error("No model yet: train one, or open a finished run");
            return;
        };
        if self.state.exporting {
            return;
        }
        self.state.exporting = true;
        self.jobs.spawn("export", move |tx| {
            let result = crate::export_form::export(&source, &request);
            tx.send(JobResult::Exported {
                format: request.format.clone(),
                result,
                request: Box::new(request),
            });
        });
    }

    /// Measures, in the background, what each format this model's task exports to would weigh
    /// (a trial export into a scratch folder), once per model and precision.
    fn measure_exports(&mut self, fp16: bool) {
        let Some(source) = self.state.model.source.clone() else {
            return;
        };
        if self
            .state
            .export_sizes
            .as_ref()
            .is_some_and(|s| s.source == source && s.fp16 == fp16)
        {
            return;
        }
        self.state.export_sizes = Some(crate::state::ExportSizes {
            source: source.clone(),
            fp16,
            sizes: BTreeMap::new(),
        });
        let task = self.state.template().map(|t| t.task.clone());
        let formats: Vec<String> = crate::export_form::FORMATS
            .iter()
            .map(|(f, _, _)| f.to_string())
            .filter(|f| lathe_engine::templates::export::supports_task(f, task.as_deref()))
            .collect();
        self.measure_generation += 1;
        let scratch = std::env::temp_dir().join(format!(
            "lathe-studio-{}-sizes-{}",
            std::process::id(),
            self.measure_generation
        ));
        self.jobs.spawn("measure-exports", move |tx| {
            for format in formats {
                let result =
                    crate::export_form::measure(&source, &format, fp16, &scratch.join(&format));
                tx.send(JobResult::ExportSize {
                    source: source.clone(),
                    fp16,
                    format,
                    result,
                });
            }
        });
    }

    /// Reads two runs for the Compare screen in the background and shows it.
    fn compare(&mut self, a: PathBuf, b: PathBuf) {
        if a == b {
            self.state.error("Choose two different runs to compare");
            return;
        }
        self.compare_generation += 1;
        let generation = self.compare_generation;
        self.state.comparison = Some(crate::state::CompareState::Loading);
        self.state.screen = Screen::Compare;
        self.jobs.spawn("compare-runs", move |tx| {
            let result = crate::compare::Comparison::read(&a, &b).map(Box::new);
            tx.send(JobResult::Compared { generation, result });
        });
    }

    /// Writes the frame-time percentiles if asked to (`--frame-stats`).
    pub fn write_frame_stats(&self) {
        if let Some(path) = &self.options.frame_stats_out {
            let summary = self.frame_stats.summary();
            if let Err(e) = lathe_engine::fsutil::write_json(path, &summary) {
                eprintln!("warning: {e}");
            }
        }
    }
}

impl eframe::App for Studio {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        Studio::logic(self, ctx);
        self.logic_time = started.elapsed();
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let started = Instant::now();
        self.draw(ui);
        let took = started.elapsed() + self.logic_time;
        self.frame_stats.record(took, self.state.run_active);
        // CPU time of the previous whole frame (tessellation and painting included).
        if let Some(secs) = frame.info().cpu_usage {
            self.frame_stats.record_full(secs, self.state.run_active);
        }
        if self.options.exit_when_done
            && !self.state.run_active
            && self.pending.is_empty()
            && self.state.run.status.is_finished()
            && !self.state.model.loading
        {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.state.recent);
    }

    fn on_exit(&mut self) {
        if let Some(s) = &self.session {
            s.control().cancel();
        }
        self.write_frame_stats();
    }
}

/// Predicts one input with the loaded model (on a job thread).
fn predict_one(
    slot: &Mutex<Option<Box<dyn Model>>>,
    input: &str,
) -> Result<task::Prediction, String> {
    let guard = slot
        .lock()
        .map_err(|_| "the model is unavailable after an earlier failure".to_string())?;
    let model = guard
        .as_ref()
        .ok_or_else(|| "the model is no longer loaded".to_string())?;
    model
        .predict(&[input.to_string()], &mut |_, _| {})
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            Err(lathe_engine::error::Error::Unsupported(
                "no prediction".into(),
            ))
        })
        .map_err(|e| e.to_string())
}

/// A task's parameter specs and each one's value before the project.
type SpecsAndDefaults = (
    Vec<lathe_engine::params::ParamSpec>,
    BTreeMap<String, ParamValue>,
);

/// The task's parameter specs and each one's value before the project (spec, then template).
fn param_defaults(template_id: &str) -> Result<SpecsAndDefaults, String> {
    let template = Template::get(template_id).map_err(|e| e.to_string())?;
    let task = templates::by_id(&template.task).map_err(|e| e.to_string())?;
    let specs = task.param_specs();
    let layer = template.param_layer().map_err(|e| e.to_string())?;
    let resolved = ResolvedParams::resolve(&specs, &[&layer]).map_err(|e| e.to_string())?;
    Ok((specs, resolved.0))
}

/// Parameters that change what the scan finds (the validation split, the table's target and
/// ignored columns).
fn scan_relevant(key: &str) -> bool {
    key.contains("split") || key == "target" || key == "ignore_columns"
}

/// A table's columns and the one the model predicts with the `target` parameter `wanted`.
fn table_columns(path: &Path, wanted: &str) -> Result<TableColumns, String> {
    let table = lathe_engine::data::table::read(path).map_err(|e| e.to_string())?;
    let target = templates::tabular::data::find_target(&table, wanted).ok();
    Ok(TableColumns {
        columns: table.columns,
        target,
    })
}

/// Scans a project's data as `lathe check` does.
fn scan(
    project: &Project,
    control: &Control,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<lathe_engine::data::DatasetSummary, String> {
    let prepared =
        lathe_engine::session::prepare(project, &BTreeMap::new()).map_err(|e| e.to_string())?;
    let data = ResolvedData::of(project);
    prepared
        .task
        .scan(&data, &prepared.params, progress, control)
        .map_err(|e| e.to_string())
}

/// The data folder meant by dropped paths: one folder as is; several folders (classes) or files
/// in one class folder give the folder above them.
pub fn data_root_from_drop(paths: &[PathBuf]) -> Option<PathBuf> {
    match paths {
        [] => None,
        [one] if one.is_dir() || is_table_file(one) => Some(one.clone()),
        _ => {
            let parent_of = |p: &PathBuf| {
                if p.is_dir() {
                    p.parent().map(Path::to_path_buf)
                } else {
                    p.parent().and_then(Path::parent).map(Path::to_path_buf)
                }
            };
            let first = parent_of(paths.first()?)?;
            paths
                .iter()
                .all(|p| parent_of(p).as_ref() == Some(&first))
                .then_some(first)
        }
    }
}

/// A table file (the data of table and text templates is one file, used as is when dropped).
fn is_table_file(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            ["csv", "tsv", "json", "jsonl", "ndjson"]
                .contains(&e.to_string_lossy().to_lowercase().as_str())
        })
}

/// `~/Lathe`, where runs of unsaved projects go.
pub fn default_runs_home() -> PathBuf {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join("Lathe")
}

/// Opens `path` in the file manager without waiting for it.
fn open_folder(path: &Path, tx: &JobSender) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let path = path.to_path_buf();
    let tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("lathe-open-folder".into())
        .spawn(
            move || match std::process::Command::new(program).arg(&path).status() {
                Ok(_) => {}
                Err(e) => tx.send(JobResult::Failed(format!(
                    "cannot open the folder with {program} ({e}); it is at {}",
                    path.display()
                ))),
            },
        );
    drop(spawned);
}
