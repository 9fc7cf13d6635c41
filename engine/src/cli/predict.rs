//! `lathe predict`: run a trained model on files.

use crate::task;
use crate::templates;
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
    /// Files to classify; for a text model also .txt / .csv / .json / .jsonl files or the text
    /// itself; for a table model CSV / JSON-lines tables (one prediction per row).
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
    /// Object detectors: write the image with its boxes drawn to this PNG (with several
    /// inputs, a folder that gets one `<name>.png` per input).
    #[arg(long, value_name = "OUT.png")]
    pub draw: Option<PathBuf>,
}

pub fn run(args: PredictArgs) -> Result<ExitCode> {
    let device = crate::device::open(&args.device)?;
    let model = templates::load_model(&args.model, &device)?;
    let results = model.predict(&args.inputs, &mut |_, _| {});
    let mut failed = 0;
    for r in results {
        match r {
            Ok(p) => {
                let p = p.top(args.top);
                if let Some(out) = &args.draw
                    && let Err(e) = draw(out, &p, args.inputs.len() > 1)
                {
                    failed += 1;
                    eprintln!("error: {e}");
                }
                if args.json {
                    println!("{}", serde_json::to_string(&p)?);
                } else if let Some(v) = p.value {
                    println!("{}: {v}", p.input);
                } else if !p.boxes.is_empty() {
                    let found: Vec<String> = p
                        .boxes
                        .iter()
                        .map(|b| {
                            format!(
                                "{} {:.1}% at ({:.0}, {:.0}) {:.0}×{:.0}",
                                b.label,
                                b.confidence * 100.0,
                                b.x,
                                b.y,
                                b.width,
                                b.height
                            )
                        })
                        .collect();
                    println!("{}: {}", p.input, found.join("; "));
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

/// Draws a detector's boxes for `--draw` (into a folder when there are several inputs).
fn draw(out: &std::path::Path, p: &task::Prediction, many: bool) -> Result<()> {
    let input = std::path::Path::new(&p.input);
    let target = if many {
        std::fs::create_dir_all(out)?;
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        out.join(format!("{stem}.png"))
    } else {
        out.to_path_buf()
    };
    templates::detect::draw::draw(input, &p.boxes, &target)?;
    Ok(())
}
