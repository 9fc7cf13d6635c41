//! `lathe export`: copy a trained model out as a safetensors folder, or write it as a Core ML
//! `.mlmodel` (fp32 or fp16 weights) or an ONNX `.onnx` (fp32 or fp16 weights).

use crate::export::coreml;
use crate::fsutil;
use crate::templates;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// model.safetensors + config.json + preprocessor_config.json + manifest.json.
    Safetensors,
    /// A Core ML .mlmodel.
    Coreml,
    /// An ONNX .onnx (opset 17, ai.onnx.ml 3), for ONNX Runtime and the tools that read ONNX.
    Onnx,
}

/// Weight precision of a Core ML or ONNX export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit weights: computes what `lathe predict` computes.
    Fp32,
    /// 16-bit weights: half the size.
    Fp16,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder or an exported model folder.
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write (default: <run>/exports/<format> — model.mlmodel for Core ML, model.onnx
    /// for ONNX — or next to the model folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Weight precision: fp16 halves the file (Core ML: half-precision weights, specification 2;
    /// ONNX: FLOAT16 weights cast to float in the graph, which still computes in f32).
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: PrecisionArg,
    /// Core ML / ONNX metadata: author.
    #[arg(long)]
    pub author: Option<String>,
    /// Core ML / ONNX metadata: license.
    #[arg(long)]
    pub license: Option<String>,
    /// Core ML / ONNX metadata: model version.
    #[arg(long = "model-version")]
    pub model_version: Option<String>,
    /// Core ML / ONNX metadata: short description.
    #[arg(long)]
    pub description: Option<String>,
    /// Print one JSON object describing the written file.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let model_dir = templates::model_dir(&args.model)?;
    match args.format {
        Format::Safetensors => {
            let coreml_only = args.precision != PrecisionArg::Fp32
                || args.author.is_some()
                || args.license.is_some()
                || args.model_version.is_some()
                || args.description.is_some();
            if coreml_only {
                bail!(
                    "--precision, --author, --license, --model-version and --description apply to --format coreml and onnx, not to safetensors"
                );
            }
            let out = args
                .out
                .unwrap_or_else(|| default_out(&model_dir, "safetensors"));
            if std::path::absolute(&out)?.starts_with(std::path::absolute(&model_dir)?) {
                bail!(
                    "--out must not be inside the model folder: {}",
                    out.display()
                );
            }
            let staging = fsutil::temp_sibling(&out).with_extension("staging");
            if staging.exists() {
                std::fs::remove_dir_all(&staging)?;
            }
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            fsutil::copy_dir(&model_dir, &staging)?;
            fsutil::replace_dir(&staging, &out)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "format": "safetensors", "path": out })
                );
            }
            eprintln!("Exported safetensors model to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Format::Onnx => {
            let out = match args.out {
                Some(p) if p.is_dir() => p.join(crate::export::onnx::DEFAULT_FILE_NAME),
                Some(p) => p,
                None => default_coreml_out(&model_dir).with_extension("onnx"),
            };
            let fp16 = args.precision == PrecisionArg::Fp16;
            let precision = if fp16 { "fp16" } else { "fp32" };
            let options = crate::export::onnx::Options {
                fp16,
                description: args.description,
                author: args.author,
                license: args.license,
                version: args.model_version,
            };
            let exported = crate::templates::export_onnx(&model_dir, &out, &options)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "format": "onnx",
                        "path": exported.path,
                        "bytes": exported.bytes,
                        "precision": precision,
                        "opset": exported.opset,
                        "nodes": exported.nodes,
                    })
                );
            }
            eprintln!(
                "Exported ONNX model ({precision}, {:.1} MB, opset {}) to {}",
                exported.bytes as f64 / 1e6,
                exported.opset,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Format::Coreml => {
            let out = match args.out {
                Some(p) if p.is_dir() => p.join(coreml::DEFAULT_FILE_NAME),
                Some(p) => p,
                None => default_coreml_out(&model_dir),
            };
            let options = coreml::Options {
                precision: match args.precision {
                    PrecisionArg::Fp32 => coreml::Precision::Fp32,
                    PrecisionArg::Fp16 => coreml::Precision::Fp16,
                },
                description: args.description,
                author: args.author,
                license: args.license,
                version: args.model_version,
            };
            let exported = crate::templates::export_coreml(&model_dir, &out, &options)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "format": "coreml",
                        "path": exported.path,
                        "bytes": exported.bytes,
                        "precision": options.precision.as_str(),
                        "specification_version": exported.specification_version,
                        "layers": exported.num_layers,
                    })
                );
            }
            eprintln!(
                "Exported Core ML model ({}, {:.1} MB, specification version {}) to {}",
                options.precision.as_str(),
                exported.bytes as f64 / 1e6,
                exported.specification_version,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `<run>/exports/model.mlmodel` for a run's model, else `<model folder>.mlmodel` beside it.
fn default_coreml_out(model_dir: &std::path::Path) -> PathBuf {
    match model_dir.parent() {
        Some(run)
            if model_dir.ends_with("model") && run.join(crate::train::run_dir::EVENTS).exists() =>
        {
            run.join("exports").join(coreml::DEFAULT_FILE_NAME)
        }
        _ => {
            let name = model_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            model_dir.with_file_name(format!("{name}.mlmodel"))
        }
    }
}

/// `<run>/exports/<format>` for a run's model, else a sibling `<folder>-<format>`.
fn default_out(model_dir: &std::path::Path, format: &str) -> PathBuf {
    match model_dir.parent() {
        Some(run)
            if model_dir.ends_with("model") && run.join(crate::train::run_dir::EVENTS).exists() =>
        {
            run.join("exports").join(format)
        }
        _ => {
            let name = model_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            model_dir.with_file_name(format!("{name}-{format}"))
        }
    }
}
