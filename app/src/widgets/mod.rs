//! Reusable widgets: drop zone, class-count bars, loss/accuracy plot, confusion matrix,
//! probability bars, the explorer's scatter map, a motion recording's plot and activity strip.

pub mod bars;
pub mod confusion;
pub mod drop_zone;
pub mod format;
pub mod metric_plot;
pub mod recording_plot;
pub mod scatter;
