//! Exports: safetensors with Hugging Face–style sidecars, and (in its own issue) Core ML.

pub mod st;
pub mod folder;
