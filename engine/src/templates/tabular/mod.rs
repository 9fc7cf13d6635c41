//! The table classifier and regressor: target, splits and summary (`data`), parameters,
//! candidates and leaderboard (`train`), greedy ensemble selection (`ensemble`), the model
//! (`model`: export, load, predict, evaluate), the Core ML pipelines (`coreml`, ensembles in `coreml_ensemble`) and the ONNX
//! graph (`onnx`, trees in `onnx_trees`).

mod bagging;
pub mod coreml;
mod coreml_ensemble;
pub mod data;
pub mod ensemble;
pub mod fit;
pub mod model;
pub mod onnx;
pub mod onnx_trees;
pub mod train;
