//! `State`: everything the screens draw — the project, its scan, the run (a [`RunState`] folded
//! from engine events), evaluation, predictions and exports. Only the app's command and job
//! handlers change it; screens read it.

use crate::command::Screen;
use crate::preview_data::{PreviewImage, PreviewKind, TableRows, Waveform};
use crate::report::{EvalView, ReportView};
use crate::runs::InterruptedRun;
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
}

/// The prediction of typed text.
#[derive(Clone, Debug)]
pub struct TextPreview {
    pub text: String,
    pub result: Result<Prediction, String>,
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
    /// The current (or last) run, folded from its events.
    pub run: RunState,
    /// A session is starting or running.
    pub run_active: bool,
    pub pause_requested: bool,
    /// Interrupted runs of this project that can be resumed, newest first.
    pub resumable: Vec<InterruptedRun>,
    /// The project's newest finished run, which can be continued with more epochs.
    pub finished_run: Option<PathBuf>,
    /// Why runs of this project (its template and parameters) cannot be continued; `None`: they can.
    pub continue_blocked: Option<String>,
    /// The finished run's `report.json`.
    pub report: Option<ReportView>,
    /// An evaluation the user asked for on another folder.
    pub extra_evaluation: Option<(PathBuf, EvalView)>,
    pub evaluating: bool,
    /// Selected confusion-matrix cell: (split, true class, predicted class).
    pub selected_cell: Option<(String, usize, usize)>,
    pub model: ModelState,
    pub previews: Vec<PreviewItem>,
    pub predicting: bool,
    /// The last typed text predicted (text previews).
    pub text_preview: Option<TextPreview>,
    /// Rows to pick from (table previews), read when the model loads.
    pub table_rows: Option<Result<TableRows, String>>,
    /// The prediction of the picked or edited row (table previews).
    pub row_prediction: Option<Result<Prediction, String>>,
    /// Finished exports: (format, folder).
    pub exports: Vec<(String, PathBuf)>,
    pub exporting: bool,
    pub notice: Option<Notice>,
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
