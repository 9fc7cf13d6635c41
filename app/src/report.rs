//! Evaluation results as the Evaluate screen draws them. A classifier's report gets the rich
//! view (per-class scores, clickable confusion matrix); any other task's evaluation — including
//! variants this build of the app does not know — is drawn generically from its JSON.

use crate::choices::{Choice, choices_of};
use lathe_engine::eval::ClassificationReport;
use lathe_engine::task::Evaluation;
use serde_json::Value;

/// One split's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalView {
    Classification(Box<ClassificationReport>),
    /// Any other report: drawn as key/value metrics and tables.
    Generic(Value),
}

impl EvalView {
    /// From an engine evaluation (e.g. `Model::evaluate`).
    pub fn from_evaluation(evaluation: &Evaluation) -> Self {
        #[allow(unreachable_patterns)]
        match evaluation {
            Evaluation::Classification(r) => Self::Classification(Box::new(r.clone())),
            other => Self::Generic(serde_json::to_value(other).unwrap_or(Value::Null)),
        }
    }

    /// From one split of a `report.json` (`evaluation.<split>`).
    pub fn from_json(value: &Value) -> Self {
        match serde_json::from_value::<ClassificationReport>(value.clone()) {
            Ok(r) => Self::Classification(Box::new(r)),
            Err(_) => Self::Generic(value.clone()),
        }
    }

    /// The headline number and its name.
    pub fn headline(&self) -> Option<(String, f64)> {
        match self {
            Self::Classification(r) => Some(("accuracy".into(), r.accuracy)),
            Self::Generic(v) => {
                let obj = v.as_object()?;
                ["accuracy", "map50", "map", "rmse", "mae", "r2"]
                    .iter()
                    .find_map(|k| obj.get(*k)?.as_f64().map(|x| (k.to_string(), x)))
            }
        }
    }
}

/// A run's `report.json`, split into what the screens need.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportView {
    /// (split, evaluation) in report order (validation, then test).
    pub evaluations: Vec<(String, EvalView)>,
    pub epochs_run: Option<u64>,
    pub best_epoch: Option<u64>,
    pub stopped_early: Option<bool>,
    /// Rounds (boosted trees), not epochs: `training.iterations_run` gave `epochs_run`.
    pub rounds: bool,
    /// Epochs (or rounds) without validation improvement before training stops, from the run's
    /// `project.lock.toml` (`early_stopping_patience` / `early_stopping_rounds`).
    pub patience: Option<u64>,
    /// How the model was chosen (backbone, algorithm, head), when the run compared candidates.
    pub choices: Vec<Choice>,
}

impl ReportView {
    pub fn from_json(report: &Value) -> Self {
        let mut evaluations: Vec<(String, EvalView)> = report
            .get("evaluation")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), EvalView::from_json(v)))
                    .collect()
            })
            .unwrap_or_default();
        // Validation first, then test, then anything else.
        let rank = |s: &str| match s {
            "validation" => 0,
            "test" => 1,
            _ => 2,
        };
        evaluations.sort_by_key(|(k, _)| rank(k));
        let training = report.get("training");
        let get = |k: &str| training.and_then(|t| t.get(k));
        Self {
            evaluations,
            epochs_run: get("epochs_run")
                .or_else(|| get("iterations_run"))
                .and_then(Value::as_u64),
            best_epoch: get("best_epoch").and_then(Value::as_u64),
            stopped_early: get("stopped_early").and_then(Value::as_bool),
            rounds: get("epochs_run").is_none() && get("iterations_run").is_some(),
            patience: None,
            choices: choices_of(report),
        }
    }
}

impl ReportView {
    /// Sample paths a run recorded where its folder was at `recorded`, as seen from the folder now
    /// at `root` (the engine's [`lathe_engine::train::run_dir::relocate`]): a run folder copied
    /// together with its data lists its samples where they now are.
    pub fn relocate_samples(&mut self, recorded: &std::path::Path, root: &std::path::Path) {
        for (_, evaluation) in &mut self.evaluations {
            if let EvalView::Classification(r) = evaluation {
                for s in &mut r.samples {
                    s.input = lathe_engine::train::run_dir::relocate(&s.input, recorded, root);
                }
            }
        }
    }

    /// Reads a run folder's `report.json`, its sample paths relocated when the folder moved.
    pub fn read(run_dir: &std::path::Path) -> Result<Self, String> {
        let value =
            lathe_engine::fsutil::read_json::<serde_json::Value>(&run_dir.join("report.json"))
                .map_err(|e| e.to_string())?;
        let mut view = Self::from_json(&value);
        if let Ok(lock) = lathe_engine::train::run_dir::load_lock(run_dir) {
            view.patience = ["early_stopping_patience", "early_stopping_rounds"]
                .iter()
                .find_map(|k| lock.params.get(*k)?.as_integer())
                .and_then(|p| u64::try_from(p).ok());
        }
        if let Some(recorded) = lathe_engine::train::run_dir::recorded_root(run_dir) {
            let here = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
            if recorded != here {
                view.relocate_samples(&recorded, &here);
            }
        }
        Ok(view)
    }
}

/// Flattens a JSON report into (key, value text) rows for the generic view: numbers, text and
/// booleans at any depth (`per_class.0.precision`), arrays of numbers as one row.
pub fn scalar_rows(value: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    flatten("", value, &mut rows, 0);
    rows
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>, depth: usize) {
    const MAX_ROWS: usize = 400;
    if rows.len() >= MAX_ROWS || depth > 6 {
        return;
    }
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, rows, depth + 1);
            }
        }
        Value::Array(a) if a.iter().all(Value::is_number) => {
            let text: Vec<String> = a.iter().take(32).map(format_value).collect();
            let more = if a.len() > 32 { ", …" } else { "" };
            rows.push((prefix.to_string(), format!("[{}{more}]", text.join(", "))));
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate().take(50) {
                flatten(&key(&i.to_string()), v, rows, depth + 1);
            }
        }
        Value::Null => {}
        other => rows.push((prefix.to_string(), format_value(other))),
    }
}

/// Numbers with 4 significant decimals, everything else as JSON text.
pub fn format_value(v: &Value) -> String {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f:.4}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_reports_render_as_rows_and_classifier_reports_parse() {
        let regression =
            json!({"rmse": 0.5, "mae": 0.25, "num_examples": 10, "residuals": [1.0, 2.0]});
        let view = EvalView::from_json(&regression);
        assert!(matches!(view, EvalView::Generic(_)));
        assert_eq!(view.headline(), Some(("rmse".into(), 0.5)));
        let rows = scalar_rows(&regression);
        assert!(rows.contains(&("mae".into(), "0.2500".into())), "{rows:?}");
        assert!(
            rows.contains(&("residuals".into(), "[1.0000, 2.0000]".into())),
            "{rows:?}"
        );
        let labels = vec!["a".to_string(), "b".to_string()];
        let r = ClassificationReport::compute(
            &labels,
            &[0, 1],
            &[vec![0.9, 0.1], vec![0.8, 0.2]],
            &["x.png".into(), "y.png".into()],
        );
        let report =
            json!({"evaluation": {"test": r, "validation": r}, "training": {"epochs_run": 3}});
        let view = ReportView::from_json(&report);
        assert_eq!(view.evaluations[0].0, "validation");
        assert!(matches!(view.evaluations[1].1, EvalView::Classification(_)));
        assert_eq!(view.epochs_run, Some(3));
    }
}
