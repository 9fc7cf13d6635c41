//! `Event`: everything a training session reports, serde-tagged so `--json` prints one per line
//! and the run folder keeps them in `events.jsonl`. [`crate::train::RunState`] folds them.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A long step of a run, with progress reported as `done / total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scanning,
    Augmenting,
    ExtractingFeatures,
    /// `backbone = "auto"`: each installed backbone extracts features for a sample.
    ComparingBackbones,
    /// Choosing settings (e.g. a penalty) by cross-validation on the training rows.
    CrossValidating,
    Training,
    FineTuning,
    Evaluating,
    Exporting,
}

impl Phase {
    /// Plain words for progress bars ("Extracting features").
    pub fn title(self) -> &'static str {
        match self {
            Self::Scanning => "Scanning data",
            Self::Augmenting => "Augmenting",
            Self::ExtractingFeatures => "Extracting features",
            Self::ComparingBackbones => "Comparing backbones on a sample",
            Self::CrossValidating => "Choosing settings by cross-validation",
            Self::Training => "Training",
            Self::FineTuning => "Fine-tuning",
            Self::Evaluating => "Evaluating",
            Self::Exporting => "Exporting",
        }
    }

    /// What `done`/`total` count.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Training | Self::FineTuning => "epochs",
            Self::Exporting => "files",
            Self::CrossValidating => "fits",
            _ => "items",
        }
    }
}

pub use crate::eval::epoch::EpochMetrics;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Completed { model_dir: PathBuf },
    Cancelled { checkpoint: Option<PathBuf> },
    Failed { message: String },
}

/// One thing that happened during a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        run_dir: PathBuf,
        template: String,
        device: String,
        seed: u64,
        lathe_version: String,
        /// True when this continues an interrupted run in the same folder.
        #[serde(default)]
        resumed: bool,
    },
    /// Data is scanned and split; counts per split and the class labels.
    Data {
        num_train: usize,
        num_validation: usize,
        num_test: usize,
        labels: Vec<String>,
    },
    Phase {
        phase: Phase,
        done: u64,
        total: u64,
        /// Seconds since this phase began (so any reader can compute an ETA).
        elapsed_secs: f64,
    },
    /// A training step (sampled, not every batch).
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
    },
    EpochEnd(EpochMetrics),
    Warning {
        message: String,
        path: Option<PathBuf>,
    },
    /// Features found in the cache (a second run on the same data skips their extraction).
    Cache {
        reused: usize,
        total: usize,
        path: PathBuf,
    },
    Checkpoint {
        epoch: usize,
        path: PathBuf,
        best: bool,
    },
    Paused,
    Resumed,
    /// A resumed run (`lathe train --resume`) continues after `epoch` from `checkpoint`; epochs
    /// after it are trained again.
    Restored {
        epoch: usize,
        checkpoint: PathBuf,
    },
    /// Evaluation of the finished model on one split.
    Evaluated {
        split: String,
        num_examples: usize,
        /// Headline metric name and value (`accuracy`, `rmse`, `map50`).
        metric: String,
        value: f64,
    },
    Exported {
        format: String,
        path: PathBuf,
    },
    Finished {
        outcome: Outcome,
        elapsed_secs: f64,
    },
}

impl Event {
    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"event\":\"error\",\"message\":\"{e}\"}}"))
    }
}
