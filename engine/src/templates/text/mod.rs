//! The text classifier: parameters, the splits scanned and checked (`scan`), the pipeline and
//! the `auto` choice (`train`), tokenizer and TF-IDF (`features`), sparse L-BFGS logistic
//! regression (`maxent`), the model (`model`), the Core ML pipeline (`coreml`) and the ONNX
//! graph (`onnx`; the sentence-encoder model's in `onnx_encoder`).

pub mod coreml;
pub mod features;
pub mod maxent;
pub mod model;
pub mod onnx;
pub mod onnx_encoder;
pub mod params;
pub mod scan;
pub mod train;
