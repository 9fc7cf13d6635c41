//! `lathe evaluate`: score a trained model on labelled data.

use super::output::{Mode, Reporter};
use crate::eval::ClassificationReport;
use crate::task::Evaluation;
use crate::templates;
use crate::train::Phase;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(
    after_help = "With --json, prints ONE JSON object: accuracy, macro_f1, per_class, confusion_matrix, labels, samples, … (classifiers) or rmse, mae, r2, max_error, samples (regressors)"
)]
pub struct EvaluateArgs {
    /// A run folder or an exported model folder.
    pub model: PathBuf,
    /// Labelled data laid out as for training (one subfolder per class; a CSV / JSON-lines file for tables).
    #[arg(long)]
    pub data: PathBuf,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let device = crate::device::open(&args.device)?;
    let model = templates::load_model(&args.model, &device)?;
    let mode = Mode::detect(args.json);
    let mut reporter = Reporter::new(if mode == Mode::Json {
        Mode::Plain
    } else {
        mode
    });
    let mut warnings = Vec::new();
    let evaluation = model.evaluate(
        &args.data,
        &mut |d, t| reporter.progress(Phase::Evaluating, d, t),
        &mut |w| warnings.push(w),
    )?;
    reporter.finish_bar();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&evaluation)?);
    } else {
        match &evaluation {
            Evaluation::Classification(r) => println!("{}", table(r, "evaluation")),
            Evaluation::MultiLabel(r) => println!("{}", multi_label_table(r, "evaluation")),
            Evaluation::Detection(r) => println!("{}", detection_table(r, "evaluation")),
            Evaluation::Regression(r) => println!("{}", regression_table(r, "evaluation")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A human summary of a multi-label report: headline numbers and a per-label table.
pub fn multi_label_table(r: &crate::eval::MultiLabelReport, split: &str) -> String {
    let width = r
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 28);
    let mut s = format!(
        "\n{split}: exact match {:.2}%  label accuracy {:.2}%  micro F1 {:.3}  macro F1 {:.3}  mAP {:.3}  ({} examples, threshold {})\n\n",
        r.accuracy * 100.0,
        r.hamming_accuracy * 100.0,
        r.micro_f1,
        r.macro_f1,
        r.mean_average_precision,
        r.num_examples,
        r.threshold
    );
    s += &format!(
        "  {:<width$}  precision  recall     f1     AP  support\n",
        "label"
    );
    for c in &r.per_class {
        let name: String = c.label.chars().take(width).collect();
        s += &format!(
            "  {name:<width$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>5.3}  {:>7}\n",
            c.precision, c.recall, c.f1, c.average_precision, c.support
        );
    }
    s
}

/// A detector's summary: mAP@0.5, mAP@[.5:.95] and AP per class.
pub fn detection_table(r: &crate::eval::map::DetectionReport, split: &str) -> String {
    let width = r
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 28);
    let mut s = format!(
        "\n{split}: mAP@0.5 {:.3}  mAP@[.5:.95] {:.3}  ({} images, {} objects)\n\n",
        r.map50, r.map, r.num_images, r.num_objects
    );
    s += &format!("  {:<width$}   AP@0.5  AP@[.5:.95]  objects\n", "class");
    for c in &r.per_class {
        let name: String = c.label.chars().take(width).collect();
        s += &format!(
            "  {name:<width$}  {:>7.3}  {:>11.3}  {:>7}\n",
            c.ap50, c.ap, c.num_objects
        );
    }
    s
}

/// A human summary: headline numbers and a per-class table.
pub fn table(r: &ClassificationReport, split: &str) -> String {
    let width = r
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 28);
    // Top-5 says nothing with five classes or fewer.
    let top5 = if r.labels.len() > 5 {
        format!("  top-5 {:.2}%", r.top5_accuracy * 100.0)
    } else {
        String::new()
    };
    let mut s = format!(
        "\n{split}: accuracy {:.2}% (always answering the most frequent class: {:.2}%){top5}  balanced accuracy {:.2}%  macro F1 {:.3}  ({} examples)\n",
        r.accuracy * 100.0,
        r.majority_accuracy * 100.0,
        r.balanced_accuracy * 100.0,
        r.macro_f1,
        r.num_examples
    );
    if let Some(w) = crate::eval::usefulness::classifier_warning(r, split, "") {
        s += &format!("warning: {}\n", w.trim_end());
    }
    s += "\n";
    s += &format!("  {:<width$}  precision  recall     f1  support\n", "class");
    for c in &r.per_class {
        let name: String = c.label.chars().take(width).collect();
        s += &format!(
            "  {name:<width$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}\n",
            c.precision, c.recall, c.f1, c.support
        );
    }
    s
}

/// A human summary of a regressor's evaluation.
pub fn regression_table(r: &crate::eval::regression::RegressionReport, split: &str) -> String {
    let warning = crate::eval::usefulness::regressor_warning(r, split, "")
        .map(|w| format!("warning: {}\n", w.trim_end()))
        .unwrap_or_default();
    format!(
        "\n{split}: RMSE {:.4}  MAE {:.4}  R² {:.4}  max error {:.4}  ({} examples, target `{}`)\n{warning}",
        r.rmse, r.mae, r.r2, r.max_error, r.num_examples, r.target
    )
}
