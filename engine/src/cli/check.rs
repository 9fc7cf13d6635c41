//! `lathe check`: scan data or a project's data and report what training would find.

use crate::data::{DatasetSummary, Severity};
use crate::project::Project;
use crate::task::ResolvedData;
use crate::train::{Control, Phase};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    after_help = "Exit code 1 when the data has errors that would stop training (e.g. a class with one example)."
)]
pub struct CheckArgs {
    /// A project.toml, or a data folder.
    pub path: PathBuf,
    /// Template for a data folder (default: image-classifier).
    #[arg(long)]
    pub template: Option<String>,
    /// Test data to check alongside (finds train/test leakage).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Column to predict of a CSV / JSON table (same as `lathe train --target`).
    #[arg(long)]
    pub target: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let is_project = args.path.extension().is_some_and(|e| e == "toml") && args.path.is_file();
    let mut project = if is_project {
        Project::load(&args.path)?
    } else {
        let template = args
            .template
            .clone()
            .unwrap_or_else(|| "image-classifier".into());
        Project::new(&template, std::path::absolute(&args.path)?)
    };
    if let Some(t) = &args.test {
        project.data.test = Some(std::path::absolute(t)?);
    }
    let mut overrides = std::collections::BTreeMap::new();
    if let Some(target) = &args.target {
        let plain = crate::session::prepare(&project, &overrides)?;
        if !plain.task.param_specs().iter().any(|s| s.key == "target") {
            anyhow::bail!(
                "--target does not apply to template {}; it is for table and text templates",
                project.template
            );
        }
        overrides.insert(
            "target".to_string(),
            crate::params::ParamValue::Text(target.clone()),
        );
    }
    let prepared = crate::session::prepare(&project, &overrides)?;
    let data = ResolvedData::of(&project);
    let mut reporter = super::output::Reporter::new(super::output::Mode::detect(false));
    let summary = prepared.task.scan(
        &data,
        &prepared.params,
        &mut |d, t| reporter.progress(Phase::Scanning, d, t),
        &Control::new(),
    )?;
    reporter.finish_bar();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", describe(&summary));
    }
    Ok(if summary.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The human summary: splits with class counts as bars, then warnings and errors.
pub fn describe(s: &DatasetSummary) -> String {
    let mut out = String::new();
    for split in &s.splits {
        out += &format!(
            "{} — {} examples in {} classes ({})\n",
            split.name,
            split.num_examples,
            split.classes.len(),
            split.root.display()
        );
        let max = split
            .classes
            .iter()
            .map(|c| c.count)
            .max()
            .unwrap_or(1)
            .max(1);
        let width = split
            .classes
            .iter()
            .map(|c| c.label.chars().count())
            .max()
            .unwrap_or(5)
            .min(28);
        for c in &split.classes {
            let bar = "█".repeat((c.count * 30).div_ceil(max));
            let name: String = c.label.chars().take(width).collect();
            out += &format!("  {name:<width$} {:>7}  {bar}\n", c.count);
        }
        if split.num_skipped > 0 {
            out += &format!("  ({} files skipped)\n", split.num_skipped);
        }
        out += "\n";
    }
    let errors = s
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    let warnings = s.issues.len() - errors;
    for i in &s.issues {
        let tag = if i.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        out += &format!("{tag}: {}\n", i.line());
    }
    out += &match (errors, warnings) {
        (0, 0) => "Data looks healthy.\n".to_string(),
        (0, w) => format!("{w} warning(s); training can go ahead.\n"),
        (e, w) => format!("{e} error(s), {w} warning(s); fix the errors before training.\n"),
    };
    out
}
