//! `lathe predict`: run a trained model on files.

use crate::task;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    after_help = "With --json, prints one JSON object per input: {\"input\": …, \"label\": …, \"probabilities\": {label: p, …}}; a table gives one per row (\"input\": \"rows.csv:LINE\"), and regressors add \"value\""
)]
pub struct PredictArgs {
    /// A run folder or an exported model folder.
    pub model: PathBuf,
    /// Files to classify (images), or CSV / JSON-lines tables (one prediction per row).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Show only the K most probable labels.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// One JSON object per input on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PredictArgs) -> Result<ExitCode> {
    let device = crate::device::open(&args.device)?;
    let model = task::load_model(&args.model, &device)?;
    let results = model.predict(&args.inputs, &mut |_, _| {});
    let mut failed = 0;
    for r in results {
        match r {
            Ok(p) => {
                let p = p.top(args.top);
                if args.json {
                    println!("{}", serde_json::to_string(&p)?);
                } else if let Some(v) = p.value {
                    println!("{}: {v}", p.input);
                } else {
                    let rest: Vec<String> = p
                        .ranked
                        .iter()
                        .map(|(l, q)| format!("{l} {:.1}%", q * 100.0))
                        .collect();
                    println!("{}: {}  ({})", p.input, p.label, rest.join(", "));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
