//! The contract between the session and the templates: the [`Task`] trait (scan, parameters,
//! train, load) every template family implements, the [`Model`] trait of a trained model
//! (predict, evaluate), and what they exchange ([`Prediction`], [`Evaluation`], [`ResolvedData`]).
//! The registry of the families lives in the `templates` module.

use crate::data::DatasetSummary;
use crate::error::Result;
use crate::eval::ClassificationReport;
use crate::params::{ParamSpec, ResolvedParams};
use crate::train::{Control, RunContext};
use candle_core::Device;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Data locations of a project, resolved to absolute paths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedData {
    pub train: PathBuf,
    pub validation: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// The project seed (decides the automatic validation split).
    pub seed: u64,
}

impl ResolvedData {
    /// The data of `project`, with paths resolved against the project file.
    pub fn of(project: &crate::project::Project) -> Self {
        Self {
            train: project.resolve(&project.data.train),
            validation: project.data.validation.as_ref().map(|v| project.resolve(v)),
            test: project.data.test.as_ref().map(|v| project.resolve(v)),
            seed: project.seed,
        }
    }
}

/// Progress callback of a scan: `(done, total)`.
pub type ScanProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// A kind of model Lathe can train.
pub trait Task: Send + Sync {
    /// Task id used by templates (`image-classification`).
    fn id(&self) -> &'static str;

    /// Every tunable parameter, with defaults and help (drives the app's settings form).
    fn param_specs(&self) -> Vec<ParamSpec>;

    /// Scans and health-checks the data without training (`lathe check`, the app's data screen).
    fn scan(
        &self,
        data: &ResolvedData,
        params: &ResolvedParams,
        progress: ScanProgress<'_>,
        control: &Control,
    ) -> Result<DatasetSummary>;

    /// Runs a whole training in `ctx`, returning the exported model folder.
    fn train(&self, ctx: &RunContext) -> Result<PathBuf>;

    /// Loads an exported model folder.
    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>>;
}

/// One prediction, as `lathe predict --json` prints it. Classifiers fill `label` and
/// `probabilities`; regressors fill `value` (and put its text in `label`); other tasks may add
/// fields of their own.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Prediction {
    pub input: String,
    pub label: String,
    /// Probability per label (the top K when `--top K` is given).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f32>,
    /// A regressor's predicted number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Multi-label models: every label whose probability reaches the model's threshold, most
    /// probable first (possibly none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Labels from most to least probable (not in the JSON: the map carries the numbers).
    #[serde(skip)]
    pub ranked: Vec<(String, f32)>,
    /// An object detector's boxes, most confident first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<PredictedBox>,
}

/// One detected object: centre `x`, `y` and size in the input image's pixels (Create ML's
/// convention, as in `annotations.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PredictedBox {
    pub label: String,
    pub confidence: f32,
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Prediction {
    /// Builds a prediction from per-label probabilities.
    pub fn from_probabilities(input: String, labels: &[String], p: &[f32]) -> Self {
        let mut ranked: Vec<(String, f32)> =
            labels.iter().cloned().zip(p.iter().copied()).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let label = ranked.first().map(|r| r.0.clone()).unwrap_or_default();
        Self {
            input,
            label,
            probabilities: ranked.iter().cloned().collect(),
            ranked,
            ..Default::default()
        }
    }

    /// Sets `labels` to the labels at or above `threshold` (multi-label models).
    pub fn with_labels_at(mut self, threshold: f32) -> Self {
        self.labels = Some(
            self.ranked
                .iter()
                .filter(|(_, p)| *p >= threshold)
                .map(|(l, _)| l.clone())
                .collect(),
        );
        self
    }

    /// Keeps only the `k` most probable labels.
    pub fn top(mut self, k: usize) -> Self {
        self.ranked.truncate(k.max(1));
        self.probabilities = self.ranked.iter().cloned().collect();
        self
    }
}

/// An evaluation report of any task (serialized without a tag: the fields are the report's).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Evaluation {
    Classification(ClassificationReport),
    MultiLabel(crate::eval::MultiLabelReport),
    /// An object detector's report: `map50` and `map` at top level, AP per class.
    Detection(crate::eval::map::DetectionReport),
    Regression(crate::eval::regression::RegressionReport),
}

/// An exported model.
pub trait Model: Send {
    fn labels(&self) -> &[String];

    /// Predicts each input (a file path, or text for text models); each may fail on its own.
    /// An input that holds many examples (a CSV of rows) yields one result per example, with
    /// `input` naming the file and the row (`rows.csv:12`).
    fn predict(&self, inputs: &[String], progress: ScanProgress<'_>) -> Vec<Result<Prediction>>;

    /// Evaluates on labelled data laid out as for training. `warn` receives partial failures.
    fn evaluate(
        &self,
        data: &Path,
        progress: ScanProgress<'_>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Evaluation>;
}
