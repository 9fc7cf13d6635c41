//! The activity classifier's parameters: the specs the settings form and `--param` use, and the
//! checked [`ActivityParams`] the pipeline reads.

use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct ActivityParams {
    /// `auto`, `boosted_trees` or `cnn`.
    pub algorithm: String,
    /// Samples per prediction window.
    pub prediction_window: usize,
    /// Share of a window the next one overlaps (0 ≤ overlap < 1).
    pub window_overlap: f64,
    /// Sensor columns (empty: every numeric column but timestamp / session / label).
    pub features: Vec<String>,
    /// Session-id column of a table (empty: `session` / `session_id` if present).
    pub session_column: String,
    /// Label column of a table (empty: `label` / `activity` if present).
    pub label_column: String,
    /// Timestamp column (empty: `timestamp` / `time` … if present).
    pub timestamp_column: String,
    /// Samples per second when no timestamp column says it.
    pub sample_rate: f64,
    pub validation_split: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub cnn_width: usize,
    pub dropout: f32,
    pub augment: bool,
    pub max_iterations: usize,
}

impl ActivityParams {
    pub fn from_resolved(p: &ResolvedParams) -> Self {
        let list = |key: &str| -> Vec<String> {
            p.text(key)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Self {
            algorithm: p.text("algorithm").to_string(),
            prediction_window: p.usize("prediction_window").max(2),
            window_overlap: p.float("window_overlap").clamp(0.0, 0.95),
            features: list("features"),
            session_column: p.text("session_column").trim().to_string(),
            label_column: p.text("label_column").trim().to_string(),
            timestamp_column: p.text("timestamp_column").trim().to_string(),
            sample_rate: p.float("sample_rate"),
            validation_split: p.float("validation_split"),
            epochs: p.usize("epochs").max(1),
            batch_size: p.usize("batch_size").max(2),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            patience: p.usize("early_stopping_patience"),
            cnn_width: p.usize("cnn_width").max(2),
            dropout: p.float("dropout") as f32,
            augment: p.bool("augment"),
            max_iterations: p.usize("max_iterations").max(1),
        }
    }

    /// Samples between the starts of consecutive windows.
    pub fn hop(&self) -> usize {
        hop_of(self.prediction_window, self.window_overlap)
    }
}

/// Samples between window starts for `window` samples overlapping by `overlap`.
pub fn hop_of(window: usize, overlap: f64) -> usize {
    ((window as f64 * (1.0 - overlap)).round() as usize).clamp(1, window.max(1))
}

fn text(key: &str, label: &str, group: &str, help: &str) -> ParamSpec {
    ParamSpec::new(
        key,
        label,
        group,
        help,
        ParamKind::Text,
        ParamValue::Text(String::new()),
    )
}

/// Every parameter of the activity classifier, with defaults and help.
pub fn param_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::choice(
            "algorithm",
            "Model",
            "Model",
            "auto: train both candidates and keep the better validation accuracy; boosted_trees: per-window statistics of every sensor (mean, spread, min, max, energy, lag-1 autocorrelation, and the magnitude of x/y/z groups) through boosted trees; cnn: a compact 1-D CNN over the standardized sensor channels, trained from scratch with augmentation.",
            &["auto", "boosted_trees", "cnn"],
            "auto",
        ),
        ParamSpec::int(
            "prediction_window",
            "Prediction window (samples)",
            "Data",
            "Samples in one prediction window (100 at 50 Hz = 2 s, Create ML's default); sessions shorter than this are skipped.",
            (4, 100_000),
            100,
        ),
        ParamSpec::float(
            "window_overlap",
            "Window overlap",
            "Data",
            "Share of a window the next one overlaps (0.5: a new window every half window).",
            (0.0, 0.95),
            0.5,
        ),
        text(
            "features",
            "Sensor columns",
            "Data",
            "Comma-separated sensor columns to use; empty uses every numeric column but the timestamp, session and label columns.",
        ),
        text(
            "session_column",
            "Session column",
            "Data",
            "In a single table: the column naming each recording session; empty looks for session or session_id.",
        ),
        text(
            "label_column",
            "Label column",
            "Data",
            "In a single table: the column holding the activity; empty looks for label or activity.",
        ),
        text(
            "timestamp_column",
            "Timestamp column",
            "Data",
            "Column of sample times (seconds, or milliseconds when the steps are ≥ 1); empty looks for timestamp, time, time_s or time_ms. The sample rate is read from it.",
        ),
        ParamSpec::float(
            "sample_rate",
            "Sample rate (Hz)",
            "Data",
            "Samples per second when the recordings have no timestamp column.",
            (0.1, 100_000.0),
            50.0,
        ),
        ParamSpec::float(
            "validation_split",
            "Validation share",
            "Data",
            "Share of the training sessions (per activity) held out for validation when no validation data is given; sessions are never split across train and validation.",
            (0.0, 0.5),
            0.2,
        ),
        ParamSpec::int(
            "epochs",
            "Epochs",
            "Training",
            "Maximum passes of the CNN over the training windows.",
            (1, 10_000),
            30,
        ),
        ParamSpec::int(
            "batch_size",
            "Batch size",
            "Training",
            "Windows per CNN training step.",
            (2, 4096),
            32,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Training",
            "Peak AdamW learning rate of the CNN (warm-up, then cosine decay).",
            (1e-6, 1.0),
            3e-3,
        ),
        ParamSpec::float(
            "weight_decay",
            "Weight decay",
            "Training",
            "AdamW weight decay of the CNN.",
            (0.0, 1.0),
            1e-4,
        ),
        ParamSpec::int(
            "early_stopping_patience",
            "Early-stopping patience",
            "Training",
            "Epochs without better validation accuracy before the CNN stops (0: never stop early).",
            (0, 10_000),
            6,
        ),
        ParamSpec::int(
            "cnn_width",
            "CNN width",
            "Model",
            "Filters of the CNN's first convolution (the next two have twice as many).",
            (2, 512),
            16,
        ),
        ParamSpec::float(
            "dropout",
            "Dropout",
            "Model",
            "Dropout before the CNN's classifier.",
            (0.0, 0.9),
            0.2,
        ),
        ParamSpec::bool(
            "augment",
            "Augment",
            "Augmentation",
            "Fresh CNN augmentation every epoch: sensor jitter, per-channel scaling, a small time warp and a random rotation of each x/y/z sensor group.",
            true,
        ),
        ParamSpec::int(
            "max_iterations",
            "Boosting rounds",
            "Model",
            "Boosting rounds of the statistics + boosted-trees candidate (no early stopping).",
            (1, 10_000),
            100,
        ),
    ]
}
