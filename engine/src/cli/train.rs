//! `lathe train`: from a project.toml, or straight from a data folder with `--template`.

use super::EXIT_CANCELLED;
use super::output::{Mode, Reporter};
use crate::eval::ClassificationReport;
use crate::params::ParamValue;
use crate::project::Project;
use crate::session::{Session, SessionOptions};
use crate::train::Outcome;
use anyhow::{Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  lathe train project.toml
  lathe train --template image-classifier --data photos/train --test photos/test --epochs 50
  lathe train project.toml --param head=mlp --param augment_flip=true --json > events.jsonl
  lathe train --resume runs/image-classifier-20261122-101500
  lathe train --continue runs/image-classifier-20261122-101500 --epochs 20 --data more-photos

Parameters of a template: `lathe templates --params image-classifier`.
Ctrl-C cancels cleanly and keeps the last checkpoint (exit code 130).")]
pub struct TrainArgs {
    /// A project.toml (made by `lathe new` or Lathe Studio). Omit it to train from --data.
    pub project: Option<PathBuf>,
    /// Continue an interrupted run (after Ctrl-C, a crash or a power cut) in its own folder,
    /// from its last checkpoint, with the parameters it started with.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["project", "template", "data", "validation", "test", "out", "epochs", "seed", "params", "target"])]
    pub resume: Option<PathBuf>,
    /// Continue training a finished run (Create ML's "extend"): a new run folder starts from
    /// its weights and trains --epochs more, on its data or on --data; cached features are reused.
    #[arg(long = "continue", value_name = "RUN_DIR", conflicts_with_all = ["project", "resume", "template", "validation", "seed", "target", "text_column"])]
    pub continue_from: Option<PathBuf>,
    /// Template to use without a project file.
    #[arg(long)]
    pub template: Option<String>,
    /// Training data (a folder with one subfolder per class for the image classifier).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation data; without it a stratified, seeded share of --data is held out.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    /// Test data, evaluated once after training.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Run folder to create (default: runs/<template>-<time> next to the project).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Maximum epochs (same as --param epochs=N).
    #[arg(long)]
    pub epochs: Option<i64>,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub device: Option<String>,
    /// Seed for splits, augmentation and initialization.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Set a template parameter, KEY=VALUE (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Label column of a CSV / JSON dataset (same as --param target=COL).
    #[arg(long, value_name = "COL")]
    pub target: Option<String>,
    /// Text column of a CSV / JSON text dataset (same as --param text_column=COL).
    #[arg(long, value_name = "COL")]
    pub text_column: Option<String>,
    /// Backbone weights file (safetensors) instead of the built-in or Hugging Face copy.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Feature cache folder (default: $LATHE_CACHE_DIR or the platform cache folder).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print events as JSON lines on stdout instead of progress bars.
    #[arg(long)]
    pub json: bool,
}

/// Builds the project a `train` invocation describes.
fn project_of(args: &TrainArgs) -> Result<Project> {
    let mut project = match (&args.project, &args.template, &args.data) {
        (Some(path), _, _) => {
            if args.template.is_some() {
                bail!("give either a project file or --template, not both");
            }
            let mut p = Project::load(path)?;
            if let Some(d) = &args.data {
                p.data.train = std::path::absolute(d)?;
            }
            p
        }
        (None, Some(t), Some(d)) => Project::new(t, std::path::absolute(d)?),
        (None, Some(_), None) => bail!("--template needs --data DIR (the training data)"),
        (None, None, _) => {
            bail!("give a project.toml, or --template T --data DIR (see `lathe train --help`)")
        }
    };
    if let Some(v) = &args.validation {
        project.data.validation = Some(std::path::absolute(v)?);
    }
    if let Some(t) = &args.test {
        project.data.test = Some(std::path::absolute(t)?);
    }
    if let Some(s) = args.seed {
        project.seed = s;
    }
    Ok(project)
}

/// `--param k=v` and `--epochs` parsed against the template's specs.
fn overrides(args: &TrainArgs, project: &Project) -> Result<BTreeMap<String, ParamValue>> {
    let prepared = crate::session::prepare(project, &BTreeMap::new())?;
    let specs = prepared.task.param_specs();
    let mut out = BTreeMap::new();
    for kv in &args.params {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--param takes KEY=VALUE, got \"{kv}\"");
        };
        let Some(spec) = specs.iter().find(|s| s.key == k.trim()) else {
            let keys: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
            bail!(
                "unknown parameter `{k}`; this template takes: {}",
                keys.join(", ")
            );
        };
        out.insert(spec.key.clone(), spec.parse_cli(v.trim())?);
    }
    if let Some(e) = args.epochs {
        out.insert("epochs".into(), ParamValue::Int(e));
    }
    for (key, value) in [("target", &args.target), ("text_column", &args.text_column)] {
        if let Some(v) = value {
            if !specs.iter().any(|s| s.key == key) {
                bail!(
                    "--{} does not apply to this template",
                    key.replace('_', "-")
                );
            }
            out.insert(key.into(), ParamValue::Text(v.clone()));
        }
    }
    Ok(out)
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let (project, overrides, run_dir) = match (&args.resume, &args.continue_from) {
        (Some(dir), _) => (
            crate::train::run_dir::load_lock(dir)?,
            BTreeMap::new(),
            Some(dir.clone()),
        ),
        (None, Some(from)) => {
            // A copied or moved run folder finds its data relative to itself.
            let mut project = crate::train::run_dir::load_lock(from)?;
            if let Some(d) = &args.data {
                project.data.train = std::path::absolute(d)?;
            }
            if let Some(t) = &args.test {
                project.data.test = Some(std::path::absolute(t)?);
            }
            let overrides = overrides(&args, &project)?;
            (project, overrides, args.out.clone())
        }
        (None, None) => {
            let project = project_of(&args)?;
            let overrides = overrides(&args, &project)?;
            (project, overrides, args.out.clone())
        }
    };
    let options = SessionOptions {
        run_dir,
        overrides,
        resume: args.resume.is_some(),
        continue_from: args.continue_from.clone(),
        device: args.device.clone(),
        waker: None,
        run: crate::train::RunOptions {
            cache_dir: args.cache_dir.clone(),
            weights: args.weights.clone(),
        },
        background: false,
    };
    let session = Session::start(project, options)?;
    let run_dir = session.run_dir().to_path_buf();
    let control = session.control().clone();
    let mut presses = 0u32;
    // Ctrl-C: first press cancels cleanly, a second one quits at once.
    let _ = ctrlc::set_handler(move || {
        presses += 1;
        if presses == 1 {
            eprintln!("\nCancelling… (press Ctrl-C again to quit at once)");
            control.cancel();
        } else {
            std::process::exit(i32::from(EXIT_CANCELLED));
        }
    });
    let mode = Mode::detect(args.json);
    let mut reporter = Reporter::new(mode);
    let outcome = session.run_to_end(|e| reporter.handle(e));
    match outcome {
        Outcome::Completed { .. } => {
            if mode != Mode::Json {
                print_summary(&run_dir.join("report.json"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Cancelled { .. } => Ok(ExitCode::from(EXIT_CANCELLED)),
        Outcome::Failed { .. } => Ok(ExitCode::from(1)),
    }
}

/// Prints the per-class table of the test (or validation) evaluation from `report.json`.
fn print_summary(report: &std::path::Path) {
    let Ok(value) = crate::fsutil::read_json::<serde_json::Value>(report) else {
        return;
    };
    for split in ["test", "validation"] {
        let v = &value["evaluation"][split];
        if let Ok(r) = serde_json::from_value::<crate::eval::MultiLabelReport>(v.clone()) {
            println!("{}", super::evaluate::multi_label_table(&r, split));
            return;
        }
        if let Ok(r) = serde_json::from_value::<ClassificationReport>(v.clone()) {
            println!("{}", super::evaluate::table(&r, split));
            return;
        }
        if let Ok(r) = serde_json::from_value::<crate::eval::map::DetectionReport>(v.clone()) {
            println!("{}", super::evaluate::detection_table(&r, split));
            return;
        }
        if let Ok(r) =
            serde_json::from_value::<crate::eval::regression::RegressionReport>(v.clone())
        {
            println!("{}", super::evaluate::regression_table(&r, split));
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: TrainArgs,
    }

    #[test]
    fn bad_combinations_explain_themselves() {
        let w = Wrap::parse_from(["x", "--template", "image-classifier"]);
        assert!(project_of(&w.a).unwrap_err().to_string().contains("--data"));
        let w = Wrap::parse_from(["x"]);
        assert!(
            project_of(&w.a)
                .unwrap_err()
                .to_string()
                .contains("project.toml")
        );
        let w = Wrap::parse_from([
            "x",
            "--template",
            "image-classifier",
            "--data",
            "d",
            "--param",
            "nope=1",
        ]);
        let p = project_of(&w.a).unwrap();
        assert!(
            overrides(&w.a, &p)
                .unwrap_err()
                .to_string()
                .contains("unknown parameter `nope`")
        );
        let w = Wrap::parse_from([
            "x",
            "--template",
            "image-classifier",
            "--data",
            "d",
            "--param",
            "head=mlp",
            "--epochs",
            "3",
        ]);
        let o = overrides(&w.a, &project_of(&w.a).unwrap()).unwrap();
        assert_eq!(o["head"], ParamValue::Text("mlp".into()));
        assert_eq!(o["epochs"], ParamValue::Int(3));
    }
}
