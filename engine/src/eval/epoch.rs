//! `EpochMetrics`: the losses and accuracies of one epoch (or solver iteration, or boosting
//! round) — what training reports as `EpochEnd` and what the curves in `report/*.png` plot.

use serde::{Deserialize, Serialize};

/// Metrics at the end of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub train_accuracy: Option<f64>,
    pub validation_loss: Option<f64>,
    pub validation_accuracy: Option<f64>,
    pub learning_rate: f64,
    pub elapsed_secs: f64,
}
