//! ONNX toolkit: what every `.onnx` export shares — `proto` (the protobuf messages, hand-written
//! prost types), `graph` (a small graph builder: initializers, nodes, inputs / outputs, opset
//! imports), `meta` (`metadata_props`: labels, Lathe version, template, data hashes), `ops`
//! (slices, casts, named weights, a feature head's `Gemm`s, softmax and label), `transformer`
//! (linear, layer norm, GELU, self-attention: Whisper and BERT), `backbone` and `fp16`. Each
//! template family writes its own graph in `templates/<family>/onnx.rs`;
//! `templates::export_onnx` dispatches on the task in `config.json`.
//!
//! Opsets: the default domain at 17 and `ai.onnx.ml` at 3; IR version 8.

pub mod backbone;
pub mod fp16;
pub mod graph;
pub mod meta;
pub mod ops;
pub mod proto;
pub mod transformer;

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use prost::Message;
use std::path::{Path, PathBuf};

/// File name used when no other is given.
pub const DEFAULT_FILE_NAME: &str = "model.onnx";

/// IR version written (the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;

/// Opset of the default domain.
pub const OPSET: i64 = 17;

/// Opset of `ai.onnx.ml`.
pub const ML_OPSET: i64 = 3;

/// The `ai.onnx.ml` domain.
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// What to write besides the graph.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Store the large weights as FLOAT16, cast to float in the graph ([`fp16`]).
    pub fp16: bool,
    /// Metadata overrides (`description`, `author`, `license`, `version` in `metadata_props`).
    pub description: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    pub version: Option<String>,
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    pub path: PathBuf,
    pub bytes: u64,
    /// Nodes of the graph.
    pub nodes: usize,
    /// Opset of the default domain.
    pub opset: i64,
}

/// Writes `model` to `path` atomically; returns what was written.
pub fn write(path: &Path, model: &proto::ModelProto) -> Result<Exported> {
    let bytes = model.encode_to_vec();
    atomic_write(path, &bytes)?;
    Ok(Exported {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        nodes: model.graph.as_ref().map_or(0, |g| g.node.len()),
        opset: OPSET,
    })
}

/// Reads a `.onnx` file.
pub fn read(path: &Path) -> Result<proto::ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    proto::ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::model(format!("not an ONNX model ({e})"), path))
}
