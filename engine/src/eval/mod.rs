//! Evaluation: metrics and report plots.

pub mod metrics;
pub mod plots;
pub mod regression;
pub mod tabular_plots;

pub use metrics::{ClassMetrics, ClassificationReport, SampleResult};
