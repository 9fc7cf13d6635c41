//! `lathe export`: copy a trained model out as a safetensors folder (Core ML in its own issue).

use crate::fsutil;
use crate::task;
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
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder or an exported model folder.
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write (default: <run>/exports/<format>, or <model folder>-<format>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let model_dir = task::model_dir(&args.model)?;
    match args.format {
        Format::Safetensors => {
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
            eprintln!("Exported safetensors model to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Format::Coreml => {
            bail!(
                "Core ML export is not implemented in this build yet; export --format safetensors for now"
            )
        }
    }
}

/// `<run>/exports/<format>` for a run's model, else a sibling `<folder>-<format>`.
fn default_out(model_dir: &std::path::Path, format: &str) -> PathBuf {
    match model_dir.parent() {
        Some(run) if model_dir.ends_with("model") && run.join("events.jsonl").exists() => {
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
