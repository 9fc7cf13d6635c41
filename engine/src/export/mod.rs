//! Exports: safetensors with Hugging Face–style sidecars, and Core ML (`.mlmodel`).

pub mod coreml;
pub mod st;
