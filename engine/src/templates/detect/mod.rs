//! The object detector: parameters, the two training phases (`train`), per-epoch checkpoints and
//! `--continue` (`resume`), the model (`model`), drawing boxes (`draw`), the Core ML network → NMS
//! pipeline (`coreml`), the ONNX graph with NMS inside (`onnx`) and a seeded generator of test sets (`synth`).

pub mod coreml;
pub mod draw;
pub mod model;
pub mod onnx;
pub mod params;
pub mod resume;
pub mod synth;
pub mod train;
