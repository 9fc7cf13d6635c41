//! Reusable widgets: drop zone, class-count bars, loss/accuracy plot, confusion matrix,
//! probability bars.

pub mod bars;
pub mod confusion;
pub mod drop_zone;
pub mod format;
pub mod metric_plot;
