//! Core ML toolkit: what every `.mlmodel` export (protobuf, `coreml-proto` types) shares —
//! `builder` writes neural-network layers, `backbone` the engine's backbones, `spec` the
//! model-level messages, `meta` the metadata; precision and options. Each template family
//! writes its own model in `templates/<family>/coreml.rs`; `templates::export_coreml`
//! dispatches on the task in `config.json`.
//!
//! Specification version: the lowest each model needs — 1 (iOS 11) for fp32 neural networks,
//! pipelines, tree ensembles and feature-engineering models; 2 (iOS 11.2) once weights are fp16;
//! 3 (iOS 12) for the detector's non-maximum suppression model.

pub mod backbone;
pub mod builder;
pub mod meta;
pub mod spec;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// File name used when no other is given.
pub const DEFAULT_FILE_NAME: &str = "model.mlmodel";

/// Precision of the stored weights (Core ML computes in fp16 or fp32 on its own terms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: numerically what the engine computes.
    #[default]
    Fp32,
    /// 16-bit floats: half the size; needs specification version 2.
    Fp16,
}

impl Precision {
    /// The lowest specification version that can hold these weights.
    pub fn specification_version(self) -> i32 {
        match self {
            Self::Fp32 => 1,
            Self::Fp16 => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" => Ok(Self::Fp32),
            "fp16" => Ok(Self::Fp16),
            other => Err(Error::project(
                format!("unknown Core ML precision \"{other}\"; use fp32 or fp16"),
                None,
            )),
        }
    }
}

/// What to write besides the network.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub precision: Precision,
    /// Metadata overrides (defaults: a generated description, "Made with Lathe", a license
    /// note naming the backbone's license, "1.0").
    pub description: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    pub version: Option<String>,
}

impl Options {
    /// Default metadata at `precision`.
    pub fn new(precision: Precision) -> Self {
        Self {
            precision,
            ..Default::default()
        }
    }
}

/// A written `.mlmodel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub path: PathBuf,
    /// File size.
    pub bytes: u64,
    pub specification_version: i32,
    /// Neural-network layers in the model.
    pub num_layers: usize,
}
