//! The table classifier and regressor: target, splits and summary (`data`), parameters
//! (`params`), candidates and leaderboard (`train`), greedy ensemble selection (`ensemble`),
//! the model (`model`: export, load, predict, evaluate; its `config.json` model object and
//! tensors in `model_format`), the Core ML pipelines (`coreml`; trees and forests in
//! `coreml_trees`, linear models and MLPs in `coreml_networks`, ensembles in
//! `coreml_ensemble`) and the ONNX graph (`onnx`, trees in `onnx_trees`).

mod bagging;
pub mod coreml;
mod coreml_ensemble;
mod coreml_networks;
mod coreml_trees;
pub mod data;
pub mod ensemble;
pub mod fit;
pub mod model;
mod model_format;
pub mod onnx;
pub mod onnx_trees;
pub mod params;
pub mod train;
