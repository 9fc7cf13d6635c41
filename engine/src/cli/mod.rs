//! The `lathe` command line: argument parsing (clap), dispatch, and exit codes
//! (0 ok, 1 error, 2 usage, 130 cancelled).

mod bench;
mod bench_profile;
mod bench_reference;
mod bench_sound;
mod bench_text;
mod check;
mod evaluate;
mod export;
mod features;
mod new;
mod output;
mod predict;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for a run the user cancelled (as shells do for SIGINT).
pub const EXIT_CANCELLED: u8 = 130;

const ABOUT: &str = "Lathe builds machine-learning models from folders of data: pick a template, point it at \
your data, train, evaluate, predict and export. The same project.toml trains here and in the Lathe Studio app.";

const AFTER_HELP: &str = "\
Examples:
  lathe templates
  lathe train --template image-classifier --data photos/train --test photos/test
  lathe evaluate runs/image-classifier-20261122-101500 --data photos/test
  lathe predict runs/image-classifier-20261122-101500 cat.jpg dog.png --json
  lathe export runs/image-classifier-20261122-101500 --format safetensors --out my-model

Exit codes: 0 success, 1 error, 2 wrong usage, 130 cancelled (Ctrl-C).";

#[derive(Parser, Debug)]
#[command(name = "lathe", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the templates (kinds of model) Lathe can train.
    Templates(new::TemplatesArgs),
    /// Create a project folder with a project.toml for a template.
    New(new::NewArgs),
    /// Scan data (or a project's data), print a summary and health warnings; exit 1 on errors.
    Check(check::CheckArgs),
    /// Train a model from a project.toml or straight from a data folder.
    Train(Box<train::TrainArgs>),
    /// Evaluate a trained model on labelled data.
    Evaluate(evaluate::EvaluateArgs),
    /// Predict with a trained model.
    Predict(predict::PredictArgs),
    /// Export a trained model (safetensors folder or Core ML).
    Export(export::ExportArgs),
    /// Write the backbone features of a folder of images as a CSV (embeddings for other tools).
    Features(features::FeaturesArgs),
    /// Measure decoding and feature-extraction throughput on this machine.
    Bench(bench::BenchArgs),
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Templates(a) => new::templates(a),
        Command::New(a) => new::new(a),
        Command::Check(a) => check::run(a),
        Command::Train(a) => train::run(*a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Export(a) => export::run(a),
        Command::Features(a) => features::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error_line(&e);
            ExitCode::from(1)
        }
    }
}
