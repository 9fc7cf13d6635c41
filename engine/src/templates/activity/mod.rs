//! The activity classifier: motion-sensor recordings (one file per session in class folders, or
//! one table with session and label columns) → windows of `prediction_window` samples →
//! a statistics + boosted-trees candidate and a compact 1-D CNN; `algorithm = "auto"` keeps the
//! better on validation. Files: `scan` (both layouts, health checks, session splits; reading
//! each source in `gather`, the checks on gathered sessions in `scan_checks`), `records`
//! (a recording's rows, column roles, parsed values), `recording` (one session read for the
//! app's plots), `params`, `windows`, `features`
//! (per-window statistics), `cnn` (network, augmentation, training),
//! `train` (the task and its pipeline), `model` (model folder, load / predict / evaluate) and
//! `coreml` (the CNN as a `NeuralNetworkClassifier`) and `onnx` (either candidate as one ONNX
//! graph, the trees' window statistics computed in it).

pub mod cnn;
pub mod coreml;
pub mod features;
pub mod gather;
pub mod model;
pub mod onnx;
pub mod params;
pub mod recording;
pub mod records;
pub mod scan;
pub mod scan_checks;
pub mod train;
pub mod windows;
