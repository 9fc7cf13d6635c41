//! Two runs side by side (Create ML's model sources): what each was (template, data, date,
//! status, the model it chose), their headline metrics with the difference, their curves and
//! their confusion matrices in one class order. Read from the two run folders on a job; runs of
//! different templates are compared on what they share, and the rest is said not to apply.

use crate::report::{EvalView, ReportView};
use crate::runs::{RunStatus, RunSummary};
use lathe_engine::train::History;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The splits compared, in order.
pub const SPLITS: [&str; 2] = ["validation", "test"];

/// How a metric reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// A share shown as a percentage; differences in percentage points.
    Percent,
    /// A plain number.
    Plain,
}

/// A headline metric: its key in `report.json`, its name, how it reads, which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricKind {
    pub key: &'static str,
    pub name: &'static str,
    pub scale: Scale,
    pub lower_is_better: bool,
}

/// The metrics compared, in the order shown; a metric neither run has is left out.
pub const METRICS: [MetricKind; 9] = [
    MetricKind {
        key: "accuracy",
        name: "Accuracy",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "balanced_accuracy",
        name: "Balanced accuracy",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "macro_f1",
        name: "Macro F1",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "micro_f1",
        name: "Micro F1",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "map50",
        name: "mAP@0.5",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "map",
        name: "mAP@0.5:0.95",
        scale: Scale::Percent,
        lower_is_better: false,
    },
    MetricKind {
        key: "r2",
        name: "R\u{b2}",
        scale: Scale::Plain,
        lower_is_better: false,
    },
    MetricKind {
        key: "rmse",
        name: "RMSE",
        scale: Scale::Plain,
        lower_is_better: true,
    },
    MetricKind {
        key: "mae",
        name: "MAE",
        scale: Scale::Plain,
        lower_is_better: true,
    },
];

impl MetricKind {
    /// "93.1%" or "0.9120".
    pub fn value_text(&self, v: f64) -> String {
        match self.scale {
            Scale::Percent => format!("{:.1}%", v * 100.0),
            Scale::Plain => format!("{v:.4}"),
        }
    }

    /// B − A: "+2.0 pp", "−0.0310", "0.0 pp".
    pub fn difference_text(&self, a: f64, b: f64) -> String {
        let (d, unit) = match self.scale {
            Scale::Percent => ((b - a) * 100.0, " pp"),
            Scale::Plain => (b - a, ""),
        };
        let digits = match self.scale {
            Scale::Percent => 1,
            Scale::Plain => 4,
        };
        let text = format!("{:.*}", digits, d.abs());
        let zero = text.chars().all(|c| c == '0' || c == '.');
        let sign = if zero {
            ""
        } else if d > 0.0 {
            "+"
        } else {
            "\u{2212}"
        };
        format!("{sign}{text}{unit}")
    }

    /// Which run is better: `Some(true)` B, `Some(false)` A, `None` equal (as shown).
    pub fn b_is_better(&self, a: f64, b: f64) -> Option<bool> {
        if self.value_text(a) == self.value_text(b) {
            return None;
        }
        Some((b > a) != self.lower_is_better)
    }
}

/// One side's value of a metric on a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Value(f64),
    /// The run has no evaluation on this split (no test data, …).
    NoSplit,
    /// The run's task does not report this metric (a regressor's accuracy).
    DoesNotApply,
}

impl Cell {
    pub fn value(&self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// A row of the metrics table.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub split: &'static str,
    pub kind: MetricKind,
    pub a: Cell,
    pub b: Cell,
}

impl MetricRow {
    /// "Test accuracy".
    pub fn title(&self) -> String {
        let split = match self.split {
            "validation" => "Validation",
            "test" => "Test",
            other => other,
        };
        format!("{split} {}", lowercase_first(self.kind.name))
    }

    /// The difference B − A, when both have a value.
    pub fn difference(&self) -> Option<String> {
        Some(self.kind.difference_text(self.a.value()?, self.b.value()?))
    }
}

fn lowercase_first(s: &str) -> String {
    // Names that begin with an acronym keep it ("RMSE", "R²", "mAP").
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_string(),
    }
}

/// A run's training curves (epochs from 1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curves {
    pub train_loss: History,
    pub validation_loss: History,
    pub train_accuracy: History,
    pub validation_accuracy: History,
    /// Epochs (or boosting rounds) run.
    pub epochs: usize,
}

impl Curves {
    pub fn is_empty(&self) -> bool {
        self.train_loss.points().is_empty() && self.validation_loss.points().is_empty()
    }
}

/// One run of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    pub summary: RunSummary,
    /// The run's task (`image-classification`, …), from its template; empty when unknown.
    pub task: String,
    /// Its data: ("Training", path), ("Validation", …), ("Test", …), from its lock file.
    pub data: Vec<(String, String)>,
    /// The model it chose: ("Backbone", "mobilenet_v2"), ("Classifier head", "mlp"),
    /// ("Algorithm", "boosted_trees").
    pub model: Vec<(String, String)>,
    /// `report.json`, when it has one.
    pub report: Option<Value>,
    /// Its evaluations by split (confusion matrices), from the report.
    pub view: Option<ReportView>,
    pub curves: Curves,
}

impl Side {
    /// Reads the run in `dir`: summary, lock file, report and events.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let summary = RunSummary::read(dir).ok_or_else(|| {
            format!(
                "{} is not a Lathe run folder (it has no events.jsonl)",
                dir.display()
            )
        })?;
        let task = lathe_engine::Template::get(&summary.template)
            .map(|t| t.task)
            .unwrap_or_default();
        let lock = lathe_engine::train::run_dir::load_lock(dir).ok();
        let mut data = Vec::new();
        if let Some(p) = &lock {
            let resolved = lathe_engine::task::ResolvedData::of(p);
            if !p.data.train.as_os_str().is_empty() {
                data.push(("Training".into(), resolved.train.display().to_string()));
            }
            if let Some(v) = resolved.validation {
                data.push(("Validation".into(), v.display().to_string()));
            }
            if let Some(t) = resolved.test {
                data.push(("Test".into(), t.display().to_string()));
            }
        }
        let report = lathe_engine::fsutil::read_json::<Value>(&dir.join("report.json")).ok();
        let model = report
            .as_ref()
            .map(|r| model_of(r, lock.as_ref()))
            .unwrap_or_default();
        let view = report.as_ref().map(ReportView::from_json);
        let curves = crate::runs::replay(dir)
            .map(|run| Curves {
                train_loss: run.train_loss,
                validation_loss: run.validation_loss,
                train_accuracy: run.train_accuracy,
                validation_accuracy: run.validation_accuracy,
                epochs: run.epoch,
            })
            .unwrap_or_default();
        Ok(Self {
            summary,
            task,
            data,
            model,
            report,
            view,
            curves,
        })
    }

    pub fn name(&self) -> String {
        self.summary.name()
    }

    pub fn dir(&self) -> &Path {
        &self.summary.dir
    }

    pub fn status(&self) -> RunStatus {
        self.summary.status
    }

    /// A metric on a split.
    pub fn cell(&self, split: &str, key: &str) -> Cell {
        let Some(evaluation) = self
            .report
            .as_ref()
            .and_then(|r| r.get("evaluation"))
            .and_then(|e| e.get(split))
        else {
            return Cell::NoSplit;
        };
        match evaluation.get(key).and_then(Value::as_f64) {
            Some(v) => Cell::Value(v),
            None => Cell::DoesNotApply,
        }
    }

    /// The classification report of a split (labels and confusion matrix), when it has one.
    pub fn classification(&self, split: &str) -> Option<&lathe_engine::eval::ClassificationReport> {
        self.view
            .as_ref()?
            .evaluations
            .iter()
            .find_map(|(s, e)| match e {
                EvalView::Classification(r) if s == split => Some(r.as_ref()),
                _ => None,
            })
    }
}

/// The model a run chose, from its report (and its lock file where the report does not say).
fn model_of(report: &Value, lock: Option<&lathe_engine::Project>) -> Vec<(String, String)> {
    let training = report.get("training").unwrap_or(&Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_string);
    let param = |key: &str| {
        lock.and_then(|p| p.params.get(key))
            .and_then(|v| v.as_str())
            .filter(|v| *v != "auto")
            .map(str::to_string)
    };
    let mut model = Vec::new();
    if let Some(b) = text(&training["backbone_selection"]["chosen"])
        .or_else(|| text(&training["backbone"]))
        .or_else(|| param("backbone"))
    {
        model.push(("Backbone".to_string(), b));
    }
    if let Some(a) = text(&report["algorithm"])
        .or_else(|| text(&training["algorithm"]))
        .or_else(|| param("algorithm"))
    {
        model.push(("Algorithm".to_string(), a));
    }
    if let Some(h) = text(&training["head_selection"]["chosen"]).or_else(|| param("head")) {
        model.push(("Classifier head".to_string(), h));
    }
    model
}

/// Two runs side by side; A is the earlier.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
}

impl Comparison {
    /// Reads both runs (on a job).
    pub fn read(a: &Path, b: &Path) -> Result<Self, String> {
        Ok(Self {
            a: Side::read(a)?,
            b: Side::read(b)?,
        })
    }

    /// The two runs are of the same template.
    pub fn same_template(&self) -> bool {
        self.a.summary.template == self.b.summary.template
    }

    /// Every metric row either run has a value for, by split then metric.
    pub fn metric_rows(&self) -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for split in SPLITS {
            for kind in METRICS {
                let a = self.a.cell(split, kind.key);
                let b = self.b.cell(split, kind.key);
                if a.value().is_some() || b.value().is_some() {
                    rows.push(MetricRow { split, kind, a, b });
                }
            }
        }
        rows
    }

    /// The split whose confusion matrices are compared: test when both runs have one, else
    /// validation when both do.
    pub fn confusion_split(&self) -> Option<&'static str> {
        SPLITS
            .iter()
            .rev()
            .copied()
            .find(|s| self.a.classification(s).is_some() && self.b.classification(s).is_some())
    }

    /// The classes of both runs in one order (A's, then those only B has), and each run's
    /// confusion matrix in that order (a class a run does not have is a row and column of 0).
    pub fn aligned_confusion(&self, split: &str) -> Option<Aligned> {
        let a = self.a.classification(split)?;
        let b = self.b.classification(split)?;
        let mut labels = a.labels.clone();
        for l in &b.labels {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        let only = |x: &[String], y: &[String]| -> Vec<String> {
            x.iter().filter(|l| !y.contains(l)).cloned().collect()
        };
        Some(Aligned {
            a: reorder(&a.labels, &a.confusion_matrix, &labels),
            b: reorder(&b.labels, &b.confusion_matrix, &labels),
            only_a: only(&a.labels, &b.labels),
            only_b: only(&b.labels, &a.labels),
            labels,
        })
    }
}

/// Two confusion matrices in one class order.
#[derive(Clone, Debug, PartialEq)]
pub struct Aligned {
    pub labels: Vec<String>,
    pub a: Vec<Vec<usize>>,
    pub b: Vec<Vec<usize>>,
    /// Classes only one run has.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

/// `matrix` (rows and columns in `labels` order) in the order of `order`.
fn reorder(labels: &[String], matrix: &[Vec<usize>], order: &[String]) -> Vec<Vec<usize>> {
    let index: Vec<Option<usize>> = order
        .iter()
        .map(|l| labels.iter().position(|x| x == l))
        .collect();
    index
        .iter()
        .map(|t| {
            index
                .iter()
                .map(|p| match (t, p) {
                    (Some(t), Some(p)) => matrix
                        .get(*t)
                        .and_then(|row| row.get(*p))
                        .copied()
                        .unwrap_or(0),
                    _ => 0,
                })
                .collect()
        })
        .collect()
}

/// The pair in list order `runs` (newest first) as (earlier, later).
pub fn in_order(runs: &[RunSummary], x: &Path, y: &Path) -> (PathBuf, PathBuf) {
    let position = |d: &Path| runs.iter().position(|r| r.dir == d);
    match (position(x), position(y)) {
        (Some(i), Some(j)) if i < j => (y.to_path_buf(), x.to_path_buf()),
        _ => (x.to_path_buf(), y.to_path_buf()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn side(template: &str, task: &str, report: Value) -> Side {
        Side {
            summary: RunSummary {
                dir: PathBuf::from(format!("/runs/{template}")),
                template: template.into(),
                date: String::new(),
                status: RunStatus::Finished,
                metric: None,
            },
            task: task.into(),
            data: Vec::new(),
            model: Vec::new(),
            view: Some(ReportView::from_json(&report)),
            report: Some(report),
            curves: Curves::default(),
        }
    }

    fn classifier(labels: &[&str], matrix: Value, accuracy: f64) -> Value {
        json!({"evaluation": {"test": {
            "num_examples": 10, "accuracy": accuracy, "top5_accuracy": 1.0,
            "majority_accuracy": 0.5, "balanced_accuracy": accuracy, "macro_precision": 0.5,
            "macro_recall": 0.5, "macro_f1": 0.5, "labels": labels, "per_class": [],
            "confusion_matrix": matrix, "samples": []}}})
    }

    #[test]
    fn differences_read_in_points_and_say_which_run_is_better() {
        let accuracy = METRICS[0];
        assert_eq!(accuracy.difference_text(0.9, 0.93), "+3.0 pp");
        assert_eq!(accuracy.difference_text(0.93, 0.9), "\u{2212}3.0 pp");
        assert_eq!(accuracy.difference_text(0.9, 0.9), "0.0 pp");
        assert_eq!(accuracy.b_is_better(0.9, 0.93), Some(true));
        let rmse = METRICS.iter().find(|m| m.key == "rmse").unwrap();
        assert_eq!(rmse.difference_text(0.5, 0.25), "\u{2212}0.2500");
        assert_eq!(rmse.b_is_better(0.5, 0.25), Some(true));
        assert_eq!(rmse.b_is_better(0.5, 0.5), None);
    }

    #[test]
    fn runs_of_different_templates_share_what_they_can() {
        let image = side(
            "image-classifier",
            "image-classification",
            classifier(&["a", "b"], json!([[3, 1], [0, 4]]), 0.875),
        );
        let table = side(
            "tabular-regressor",
            "tabular-regression",
            json!({"evaluation": {"test": {"rmse": 0.5, "r2": 0.9, "mae": 0.4},
                                  "validation": {"rmse": 0.6, "r2": 0.8, "mae": 0.5}}}),
        );
        let c = Comparison { a: image, b: table };
        assert!(!c.same_template());
        let rows = c.metric_rows();
        let accuracy = rows
            .iter()
            .find(|r| r.split == "test" && r.kind.key == "accuracy")
            .unwrap();
        assert_eq!(accuracy.a, Cell::Value(0.875));
        assert_eq!(accuracy.b, Cell::DoesNotApply);
        assert_eq!(accuracy.difference(), None);
        let r2 = rows
            .iter()
            .find(|r| r.split == "validation" && r.kind.key == "r2")
            .unwrap();
        assert_eq!(r2.a, Cell::NoSplit);
        assert_eq!(r2.title(), "Validation R\u{b2}");
        assert_eq!(c.confusion_split(), None);
    }

    #[test]
    fn confusion_matrices_share_one_class_order() {
        let a = side(
            "image-classifier",
            "image-classification",
            classifier(&["cat", "dog"], json!([[3, 1], [0, 4]]), 0.875),
        );
        let b = side(
            "image-classifier",
            "image-classification",
            classifier(
                &["bird", "cat", "dog"],
                json!([[2, 0, 0], [0, 4, 0], [1, 0, 3]]),
                0.9,
            ),
        );
        let c = Comparison { a, b };
        assert_eq!(c.confusion_split(), Some("test"));
        let aligned = c.aligned_confusion("test").unwrap();
        assert_eq!(aligned.labels, ["cat", "dog", "bird"]);
        assert_eq!(aligned.a, vec![vec![3, 1, 0], vec![0, 4, 0], vec![0, 0, 0]]);
        assert_eq!(aligned.b, vec![vec![4, 0, 0], vec![0, 3, 1], vec![0, 0, 2]]);
        assert_eq!(aligned.only_b, ["bird"]);
        assert!(aligned.only_a.is_empty());
        let row = &c.metric_rows()[0];
        assert_eq!(row.title(), "Test accuracy");
        assert_eq!(row.difference().unwrap(), "+2.5 pp");
    }
}
