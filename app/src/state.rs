//! `State`: everything the screens draw — the project, its scan, the run (a [`RunState`] folded
//! from engine events), evaluation, predictions and exports. Only the app's command and job
//! handlers change it; screens read it.

use crate::command::Screen;
use crate::file_dialog::{DialogRequest, Listing};
use crate::mistakes::LabelFix;
use crate::preview_data::{PreviewImage, PreviewKind, TableRows, Waveform};
use crate::report::{EvalView, ReportView};
use crate::runs::{InterruptedRun, RunSummary};
use lathe_engine::data::DatasetSummary;
use lathe_engine::params::{ParamSpec, ParamValue};
use lathe_engine::task::Prediction;
use lathe_engine::train::RunState;
use lathe_engine::{Project, Template};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the background scan of the project's data stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ScanState {
    /// No training data chosen yet.
    #[default]
    Idle,
    Running {
        done: u64,
        total: u64,
    },
    Done(Box<DatasetSummary>),
    Failed(String),
}

impl ScanState {
    pub fn summary(&self) -> Option<&DatasetSummary> {
        match self {
            Self::Done(s) => Some(s),
            _ => None,
        }
    }
}

/// A message for the user (errors stay until dismissed).
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

/// The trained model the Evaluate, Preview and Export screens use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelState {
    /// The run folder (or exported model folder) it comes from.
    pub source: Option<PathBuf>,
    pub loading: bool,
    pub loaded: bool,
    pub labels: Vec<String>,
    pub error: Option<String>,
}

/// One previewed input.
#[derive(Clone, Debug)]
pub struct PreviewItem {
    pub input: PathBuf,
    pub result: Result<Prediction, String>,
    /// A sound file's waveform (sound previews).
    pub waveform: Option<Result<Waveform, String>>,
    /// The image, for drawing boxes over (detector previews).
    pub image: Option<Result<PreviewImage, String>>,
    /// The recording and its per-window predictions (activity previews).
    pub activity: Option<crate::recordings::ActivityPreview>,
}

/// The prediction of typed text.
#[derive(Clone, Debug)]
pub struct TextPreview {
    pub text: String,
    pub result: Result<Prediction, String>,
}

/// What waits for the answer of the unsaved-changes prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsaved {
    /// Close the project.
    Close,
    /// Close the window.
    Quit,
    /// Open another project.
    Open,
    /// Open a run folder.
    OpenRun,
}

/// The built-in file browser (shown where no system file dialog answers).
#[derive(Clone, Debug, PartialEq)]
pub struct FileBrowser {
    pub request: DialogRequest,
    /// The folder asked for; the listing says which one is shown.
    pub dir: PathBuf,
    /// `None` while the folder is being listed.
    pub listing: Option<Result<Listing, String>>,
    pub show_hidden: bool,
    /// Why the typed path was not taken.
    pub problem: Option<String>,
    /// An existing file the save would replace, waiting for "Replace".
    pub replace: Option<PathBuf>,
}

impl FileBrowser {
    pub fn new(request: DialogRequest, dir: PathBuf) -> Self {
        Self {
            request,
            dir,
            listing: None,
            show_hidden: false,
            problem: None,
            replace: None,
        }
    }

    /// The folder shown (the listed one, else the one asked for).
    pub fn shown_dir(&self) -> &std::path::Path {
        match &self.listing {
            Some(Ok(l)) => &l.dir,
            _ => &self.dir,
        }
    }
}

/// The Compare screen's two runs.
#[derive(Clone, Debug, PartialEq)]
pub enum CompareState {
    /// Being read.
    Loading,
    Ready(Box<crate::compare::Comparison>),
    Failed(String),
}

/// The Explore screen's exploration of a run's data.
#[derive(Clone, Debug, PartialEq)]
pub enum ExploreState {
    /// Being computed: the step under way and its progress.
    Running {
        run_dir: PathBuf,
        step: lathe_engine::explore::Step,
        done: u64,
        total: u64,
    },
    Ready {
        run_dir: PathBuf,
        exploration: Box<lathe_engine::explore::Exploration>,
    },
    Failed {
        run_dir: PathBuf,
        error: String,
    },
}

impl ExploreState {
    /// The run explored.
    pub fn run_dir(&self) -> &std::path::Path {
        match self {
            Self::Running { run_dir, .. }
            | Self::Ready { run_dir, .. }
            | Self::Failed { run_dir, .. } => run_dir,
        }
    }
}

/// What each export format would weigh for a model at a precision (measured by trial exports):
/// bytes, or why the model cannot be exported in that format.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSizes {
    pub source: PathBuf,
    pub fp16: bool,
    pub sizes: BTreeMap<String, Result<u64, String>>,
}

/// The columns of a table project's training table, for the target dropdown.
#[derive(Clone, Debug, PartialEq)]
pub struct TableColumns {
    pub columns: Vec<String>,
    /// The column the model predicts: the `target` parameter, else the first column named
    /// target, label, class or y; `None` when neither is in the table.
    pub target: Option<String>,
}

/// Everything the screens show.
#[derive(Default)]
pub struct State {
    pub screen: Screen,
    pub templates: Vec<Template>,
    /// Recently opened or saved projects, newest first.
    pub recent: Vec<PathBuf>,
    pub project: Option<Project>,
    /// Unsaved changes.
    pub dirty: bool,
    /// The task's parameters, as the settings form shows them.
    pub specs: Vec<ParamSpec>,
    /// Each parameter's value before the project overrides it (spec default, then template).
    pub defaults: BTreeMap<String, ParamValue>,
    pub scan: ScanState,
    /// An activity project's training sessions and the one drawn on the Data screen.
    pub recordings: Option<crate::recordings::Recordings>,
    /// The current (or last) run, folded from its events.
    pub run: RunState,
    /// The current run was read from its folder (opened, or the newest finished run of a reopened
    /// project) rather than trained in this window.
    pub run_from_disk: bool,
    /// A session is starting or running.
    pub run_active: bool,
    pub pause_requested: bool,
    /// Interrupted runs of this project that can be resumed, newest first.
    pub resumable: Vec<InterruptedRun>,
    /// The project's newest finished run, which can be continued with more epochs.
    pub finished_run: Option<PathBuf>,
    /// Every run of the project (its `runs/` folder), newest first, for the runs list.
    pub runs: Vec<RunSummary>,
    /// Where the runs of a project without a file are: the folder of the run it was opened from.
    pub runs_folder: Option<PathBuf>,
    /// Why runs of this project (its template and parameters) cannot be continued; `None`: they can.
    pub continue_blocked: Option<String>,
    /// The finished run's `report.json`.
    pub report: Option<ReportView>,
    /// An evaluation the user asked for on another folder.
    pub extra_evaluation: Option<(PathBuf, EvalView)>,
    pub evaluating: bool,
    /// Selected confusion-matrix cell: (split, true class, predicted class).
    pub selected_cell: Option<(String, usize, usize)>,
    /// What the Mistakes view shows of a sample besides its name (a text excerpt, a table row, a
    /// sound's length), read in the background, by input.
    pub sample_details: BTreeMap<PathBuf, Result<String, String>>,
    /// Samples moved into another class folder ("Move to …"), which can be undone.
    pub label_fixes: Vec<LabelFix>,
    /// A sample is being moved (or moved back).
    pub fixing: bool,
    pub model: ModelState,
    pub previews: Vec<PreviewItem>,
    pub predicting: bool,
    /// The last typed text predicted (text previews).
    pub text_preview: Option<TextPreview>,
    /// Rows to pick from (table previews), read when the model loads.
    pub table_rows: Option<Result<TableRows, String>>,
    /// The prediction of the picked or edited row (table previews).
    pub row_prediction: Option<Result<Prediction, String>>,
    /// Finished exports, newest last (one per format).
    pub exports: Vec<crate::export_form::ExportedFile>,
    pub exporting: bool,
    /// What each format would weigh for the current model.
    pub export_sizes: Option<ExportSizes>,
    /// An export waiting for the answer to "replace the existing file?": the request and the
    /// existing target.
    pub export_replace: Option<(crate::export_form::ExportRequest, PathBuf)>,
    /// The two runs of the Compare screen.
    pub comparison: Option<CompareState>,
    /// The Explore screen's map and lists, for the run it names.
    pub exploration: Option<ExploreState>,
    pub notice: Option<Notice>,
    /// The built-in file browser, while open.
    pub file_dialog: Option<FileBrowser>,
    /// The unsaved-changes prompt, while open: what the user asked for.
    pub confirm: Option<Unsaved>,
    /// The training table's columns (table projects), read with each scan.
    pub table_columns: Option<Result<TableColumns, String>>,
    /// The curves of the runs the current run continues ("Continue training…"), drawn before its
    /// own; `None` when it continues none (or they are still being read).
    pub earlier: Option<Box<crate::runs::EarlierRuns>>,
    /// The devices this build can train on (the Device menu), found once at start.
    pub devices: Vec<String>,
}

impl State {
    /// The value a parameter has in this project (project override, else default).
    pub fn param(&self, key: &str) -> Option<ParamValue> {
        let from_project = self
            .project
            .as_ref()
            .and_then(|p| p.params.get(key))
            .and_then(ParamValue::from_toml);
        from_project.or_else(|| self.defaults.get(key).cloned())
    }

    /// The template of the open project.
    pub fn template(&self) -> Option<&Template> {
        let id = &self.project.as_ref()?.template;
        self.templates.iter().find(|t| &t.id == id)
    }

    /// How the Preview screen works for the open project's task.
    pub fn preview_kind(&self) -> PreviewKind {
        self.template()
            .map(|t| PreviewKind::of_task(&t.task))
            .unwrap_or(PreviewKind::Image)
    }

    /// Training data is chosen and scanned without errors.
    pub fn ready_to_train(&self) -> bool {
        match &self.scan {
            ScanState::Done(s) => !s.has_errors(),
            _ => false,
        }
    }

    /// The project's data folders (training, validation, test), where the Mistakes view moves
    /// files between class folders.
    pub fn data_folders(&self) -> Vec<PathBuf> {
        let Some(project) = &self.project else {
            return Vec::new();
        };
        let data = lathe_engine::task::ResolvedData::of(project);
        let mut folders = Vec::new();
        if !project.data.train.as_os_str().is_empty() {
            folders.push(data.train);
        }
        folders.extend(data.validation);
        folders.extend(data.test);
        folders
    }

    /// The folders a sample's label can be fixed in: the project's data folders and the folder
    /// evaluated on the Evaluate screen.
    pub fn label_folders(&self) -> Vec<PathBuf> {
        let mut folders = self.data_folders();
        if let Some((folder, _)) = &self.extra_evaluation {
            folders.push(folder.clone());
        }
        folders
    }

    /// Labels were fixed in the project's data since the run shown: training again uses them.
    pub fn needs_retraining(&self) -> bool {
        let folders = self.data_folders();
        self.label_fixes
            .iter()
            .any(|f| folders.iter().any(|d| f.from.starts_with(d)))
    }

    /// A modal (the file browser or the unsaved-changes prompt) is open.
    pub fn modal_open(&self) -> bool {
        self.file_dialog.is_some() || self.confirm.is_some() || self.export_replace.is_some()
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            error: false,
            text: text.into(),
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            error: true,
            text: text.into(),
        });
    }
}
