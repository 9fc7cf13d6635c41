//! The table classifier and regressor: target, splits and summary (`data`), parameters,
//! candidates and leaderboard (`train`), the model (`model`: export, load, predict, evaluate)
//! and the Core ML pipelines (`coreml`).

pub mod coreml;
pub mod data;
pub mod fit;
pub mod model;
pub mod train;
