//! The sound classifier: scan, decoding and the run (`train`), the candidates of `algorithm`
//! (`candidates`: which, each trained, the choice), the CNN
//! from scratch (`cnn`), window encoders — log-mel statistics, CREPE, the speech embedding,
//! YAMNet, Whisper — (`encoder`, `transfer`) and the head on their features (`encoder_fit`), how
//! `auto` chooses among candidates by cross-validation over clips (`candidate_cv`), parameters,
//! the run's outputs (`outputs`), the model (`model`: streaming predict, evaluate) and the Core ML
//! export with the log-mel front end inside (`coreml`, `coreml_crepe`, `coreml_statistics`) and
//! the ONNX export (`onnx`; the front ends in `onnx_frontend`, each encoder's graph in `onnx_statistics`,
//! `onnx_speech`, `onnx_yamnet`, `onnx_whisper`).

pub mod candidate_cv;
pub mod candidates;
pub mod cnn;
pub mod coreml;
pub mod coreml_crepe;
pub mod coreml_statistics;
pub mod encoder;
pub mod encoder_fit;
pub mod model;
pub mod onnx;
pub mod onnx_frontend;
pub mod onnx_speech;
pub mod onnx_statistics;
pub mod onnx_whisper;
pub mod onnx_yamnet;
pub mod outputs;
pub mod params;
pub mod train;
pub mod transfer;
