//! Exports: safetensors with Hugging Face–style sidecars, Core ML (`.mlmodel`) and ONNX (`.onnx`).

pub mod coreml;
pub mod onnx;
pub mod st;
