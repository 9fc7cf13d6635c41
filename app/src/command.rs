//! `Command`: the only way the UI changes the app's state. Screens push commands; the app runs
//! them between frames (starting sessions and background jobs, never blocking).

use lathe_engine::params::ParamValue;
use std::path::PathBuf;

/// The screens of a project, in workflow order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Screen {
    #[default]
    Templates,
    Data,
    Settings,
    Train,
    Evaluate,
    /// The data explorer: a map of the run's samples and lists of likely mislabels, outliers and
    /// near-duplicates.
    Explore,
    Preview,
    Export,
    /// Two runs side by side (opened from the runs list; not a tab).
    Compare,
}

impl Screen {
    /// The project screens shown as tabs.
    pub const TABS: [Screen; 7] = [
        Screen::Data,
        Screen::Settings,
        Screen::Train,
        Screen::Evaluate,
        Screen::Explore,
        Screen::Preview,
        Screen::Export,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Templates => "Templates",
            Self::Data => "Data",
            Self::Settings => "Settings",
            Self::Train => "Train",
            Self::Evaluate => "Evaluate",
            Self::Explore => "Explore",
            Self::Preview => "Preview",
            Self::Export => "Export",
            Self::Compare => "Compare",
        }
    }

    /// Parses a `--screen` argument.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Templates]
            .into_iter()
            .chain(Self::TABS)
            .chain([Self::Compare])
            .find(|s| s.title().eq_ignore_ascii_case(name))
    }
}

/// Which data folder of a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataSlot {
    Train,
    Validation,
    Test,
}

impl DataSlot {
    pub const ALL: [DataSlot; 3] = [DataSlot::Train, DataSlot::Validation, DataSlot::Test];

    pub fn title(self) -> &'static str {
        match self {
            Self::Train => "Training data",
            Self::Validation => "Validation data",
            Self::Test => "Test data",
        }
    }

    /// The split name the engine uses in summaries and reports.
    pub fn split(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Validation => "validation",
            Self::Test => "test",
        }
    }
}

/// Something the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Starts a new, unsaved project from a template.
    NewProject {
        template: String,
    },
    /// Opens a `project.toml`.
    OpenProject(PathBuf),
    /// Shows a file dialog for a `project.toml` to open.
    OpenProjectDialog,
    /// Saves the project to its file (or asks where, the first time).
    SaveProject,
    /// Asks where to save the project, then saves it there.
    SaveProjectAs,
    /// Saves the project to this file.
    SaveProjectTo(PathBuf),
    /// Back to the template picker (asking about unsaved changes first).
    CloseProject,
    /// Closes the window (asking about unsaved changes first).
    Quit,
    /// The unsaved-changes prompt: save, then do what was asked.
    ConfirmSave,
    /// The unsaved-changes prompt: do what was asked without saving.
    ConfirmDiscard,
    /// The unsaved-changes prompt: keep the project open as it is.
    ConfirmCancel,
    Show(Screen),
    /// Sets (or clears) a data folder; the data is scanned again in the background.
    SetData(DataSlot, Option<PathBuf>),
    /// Files or folders dropped on a data slot: a folder is used as is, class folders or files
    /// give the folder that holds them.
    DropData(DataSlot, Vec<PathBuf>),
    /// Shows a folder dialog for a data slot.
    ChooseData(DataSlot),
    /// Sets a parameter from the settings form (checked by the engine's spec).
    SetParam {
        key: String,
        value: ParamValue,
    },
    /// Back to the template's default for one parameter.
    ResetParam(String),
    SetSeed(u64),
    SetDevice(String),
    StartTraining,
    Pause,
    Resume,
    Cancel,
    /// Continues an interrupted run in this folder from its checkpoints.
    ResumeRun(PathBuf),
    /// Trains a finished run's model for `epochs` more epochs, in a new run folder.
    ContinueRun {
        from: PathBuf,
        epochs: i64,
    },
    /// Opens a run folder from anywhere: its project (as the run locked it) and the run, whose
    /// events, report and model the screens show.
    OpenRun(PathBuf),
    /// Shows a folder dialog for a run folder to open.
    OpenRunDialog,
    /// Makes a run of the open project the current one (the runs list): the Train screen shows its
    /// curves, Evaluate, Preview and Export its report and model.
    ShowRun(PathBuf),
    /// Compares two runs side by side (the Compare screen): the first is A, the second B.
    CompareRuns(PathBuf, PathBuf),
    /// Compares the current run with the run in this folder.
    CompareWith(PathBuf),
    /// Shows a folder dialog for a run folder to compare the current run with.
    ChooseCompareRun,
    /// Selects a confusion-matrix cell: (split, true class, predicted class).
    SelectCell {
        split: String,
        truth: usize,
        predicted: usize,
    },
    /// Reads what the Mistakes view shows of these samples (text excerpts, table rows, sound
    /// lengths).
    LoadDetails(Vec<PathBuf>),
    /// Moves a sample of a folder dataset (`input`, now in the class folder `label`) into the
    /// class folder `class` (never overwriting); the data needs training again.
    FixLabel {
        input: PathBuf,
        label: String,
        class: String,
    },
    /// Moves a fixed sample (now at this path) back where it was.
    UndoFix(PathBuf),
    /// Explores the current (finished) run's data in the background: the map and the lists of
    /// the Explore screen (again, if it was explored before).
    Explore,
    /// Evaluates the current model on a labelled folder.
    EvaluateFolder(PathBuf),
    ChooseEvaluateFolder,
    /// Draws the activity project's training session at this index of the Data screen's menu.
    ShowRecording(usize),
    /// Predicts these files with the current model.
    Predict(Vec<PathBuf>),
    ChoosePreviewFiles,
    /// Predicts typed text with the current (text) model; empty text clears the result.
    PredictText(String),
    /// Predicts one table row: a value per column of the preview table, in its order.
    PredictRow(Vec<String>),
    /// Exports the current model as asked (the Export form); an existing target is only replaced
    /// when the request says so (after asking).
    Export(crate::export_form::ExportRequest),
    /// The "replace the existing file?" question was answered no.
    KeepExisting,
    /// Measures what each export format would weigh (trial exports), with or without fp16.
    MeasureExports {
        fp16: bool,
    },
    /// Shows a folder dialog for where exports go.
    ChooseExportFolder,
    /// The folder exports go to (the Export form's "Save to").
    SetExportFolder(PathBuf),
    /// Opens a folder in the system's file manager.
    OpenFolder(PathBuf),
    /// The built-in file browser shows this folder.
    BrowseTo(PathBuf),
    /// A path typed into the built-in file browser (a folder to show, or the answer).
    BrowseTyped(String),
    /// The built-in file browser lists hidden files too (or not).
    BrowseHidden(bool),
    /// The built-in file browser's answer.
    BrowseChosen(Vec<PathBuf>),
    /// The built-in file browser was closed without an answer.
    BrowseCancel,
    DismissNotice,
}
