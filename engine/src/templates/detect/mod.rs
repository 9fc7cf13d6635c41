//! The object detector: parameters, the annotations read, checked and split (`splits`), the two
//! training phases (`train`) and the epochs of one phase (`epochs`), per-epoch checkpoints and
//! `--continue` (`resume`), the model (`model`), drawing boxes (`draw`), the Core ML network → NMS
//! pipeline (`coreml`), the ONNX graph with NMS inside (`onnx`) and a seeded generator of test sets (`synth`).

pub mod coreml;
pub mod draw;
pub mod epochs;
pub mod model;
pub mod onnx;
pub mod params;
pub mod resume;
pub mod splits;
pub mod synth;
pub mod train;
