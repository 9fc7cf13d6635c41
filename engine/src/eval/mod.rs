//! Evaluation: metrics and report plots.

pub mod metrics;
pub mod plots;

pub use metrics::{ClassMetrics, ClassificationReport, SampleResult};
