//! How a run chose its model, read from `report.json` for the Evaluate screen: the backbone
//! comparison (`training.backbone_selection`), the classifier head (`training.head_selection`)
//! and the algorithm leaderboards of the table and sound templates (`leaderboard`,
//! `training.leaderboard`). Each becomes one [`Choice`]: candidates with a score, time and a note,
//! the winner marked, and the reason when the report gives one.

use serde_json::Value;

/// One candidate of a choice.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceRow {
    pub name: String,
    pub score: Option<f64>,
    pub seconds: Option<f64>,
    pub chosen: bool,
    /// Why it was skipped or changed (e.g. "refit on training + validation").
    pub note: Option<String>,
}

/// One decision the run made.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// "Backbone", "Classifier head", "Algorithm".
    pub title: String,
    /// What `score` is ("cross-validated accuracy").
    pub score_label: String,
    /// True when lower scores are better (RMSE).
    pub lower_is_better: bool,
    pub reason: Option<String>,
    pub rows: Vec<ChoiceRow>,
}

impl Choice {
    /// Worth showing: more than one candidate, or one with a reason.
    fn informative(&self) -> bool {
        self.rows.len() > 1 || self.reason.is_some()
    }
}

/// Every choice recorded in `report`, in the order they were made.
pub fn choices_of(report: &Value) -> Vec<Choice> {
    let training = report.get("training").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    if let Some(c) = backbone(&training["backbone_selection"]) {
        out.push(c);
    }
    let leaderboard = if report["leaderboard"].is_array() {
        table_leaderboard(&report["leaderboard"])
    } else {
        sound_leaderboard(
            &training["leaderboard"],
            training["algorithm"].as_str().unwrap_or(""),
        )
    };
    out.extend(leaderboard);
    if let Some(c) = head(&training["head_selection"]) {
        out.push(c);
    }
    out.retain(Choice::informative);
    out
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn backbone(sel: &Value) -> Option<Choice> {
    let chosen = sel["chosen"].as_str()?;
    let rows = sel["candidates"]
        .as_array()?
        .iter()
        .map(|c| ChoiceRow {
            name: c["backbone"].as_str().unwrap_or("?").to_string(),
            score: c["cv_accuracy"].as_f64(),
            seconds: match (c["extract_secs"].as_f64(), c["cv_secs"].as_f64()) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            },
            chosen: c["backbone"] == chosen,
            note: text(&c["skipped"]),
        })
        .collect();
    Some(Choice {
        title: "Backbone".into(),
        score_label: "cross-validated accuracy".into(),
        lower_is_better: false,
        reason: text(&sel["reason"]),
        rows,
    })
}

fn head(sel: &Value) -> Option<Choice> {
    let chosen = sel["chosen"].as_str()?;
    let rows = sel["candidates"]
        .as_array()?
        .iter()
        .map(|c| ChoiceRow {
            name: c["head"].as_str().unwrap_or("?").to_string(),
            score: c["validation_accuracy"].as_f64(),
            seconds: c["fit_secs"].as_f64(),
            chosen: c["head"] == chosen,
            note: None,
        })
        .collect();
    let refit = sel["refit_on_train_and_validation"].as_bool() == Some(true);
    Some(Choice {
        title: "Classifier head".into(),
        score_label: "validation accuracy".into(),
        lower_is_better: false,
        reason: refit
            .then(|| format!("{chosen} kept, then fitted again on training + validation images")),
        rows,
    })
}

fn table_leaderboard(board: &Value) -> Option<Choice> {
    let entries = board.as_array()?;
    let metric = entries
        .first()
        .and_then(|c| c["metric"].as_str())
        .unwrap_or("accuracy")
        .to_string();
    let rows = entries
        .iter()
        .map(|c| ChoiceRow {
            name: c["algorithm"].as_str().unwrap_or("?").to_string(),
            score: c["value"].as_f64().filter(|v| v.is_finite()),
            seconds: c["fit_secs"].as_f64(),
            chosen: c["chosen"].as_bool() == Some(true),
            note: text(&c["skipped"]).or_else(|| {
                (c["refit"].as_bool() == Some(true))
                    .then(|| "fitted again on training + validation rows".to_string())
            }),
        })
        .collect();
    // Small tables compare the candidates by K-fold cross-validation over every row.
    let folds = entries.iter().find_map(|c| c["cv_folds"].as_u64());
    Some(Choice {
        title: "Algorithm".into(),
        lower_is_better: metric == "rmse",
        score_label: match folds {
            Some(k) => format!("{k}-fold cross-validated {metric}"),
            None => format!("validation {metric}"),
        },
        reason: None,
        rows,
    })
}

fn sound_leaderboard(board: &Value, chosen: &str) -> Option<Choice> {
    let entries = board.as_array()?;
    // The encoder candidates are compared by cross-validation over the training clips; a
    // candidate without it (the CNN, trained end to end) by its validation accuracy.
    let folds = entries.iter().find_map(|c| c["cv_folds"].as_u64());
    let rows = entries
        .iter()
        .map(|c| {
            let cv = c["cv_accuracy"].as_f64();
            let validation = c["validation_accuracy"].as_f64();
            ChoiceRow {
                name: c["algorithm"].as_str().unwrap_or("?").to_string(),
                score: cv.or(validation),
                seconds: c["fit_secs"].as_f64(),
                chosen: c["algorithm"] == chosen,
                note: text(&c["skipped"]).or_else(|| {
                    (folds.is_some() && cv.is_none() && validation.is_some())
                        .then(|| "validation accuracy (not cross-validated)".to_string())
                }),
            }
        })
        .collect();
    Some(Choice {
        title: "Algorithm".into(),
        score_label: match folds {
            Some(k) => format!("{k}-fold cross-validated accuracy"),
            None => "validation accuracy".into(),
        },
        lower_is_better: false,
        reason: None,
        rows,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_report_gives_the_backbone_and_head_choices() {
        let report = json!({"training": {
            "backbone_selection": {"chosen": "efficientnet_lite0", "reason": "best cross-validated accuracy",
                "sample_images": 600, "candidates": [
                {"backbone": "mobilenet_v2", "cv_accuracy": 0.78, "extract_secs": 13.0, "cv_secs": 0.5, "skipped": null},
                {"backbone": "efficientnet_lite0", "cv_accuracy": 0.81, "extract_secs": 18.0, "cv_secs": 0.6, "skipped": null},
                {"backbone": "efficientnet_lite2", "skipped": "weights not installed"}]},
            "head_selection": {"chosen": "logistic", "refit_on_train_and_validation": true,
                "candidates": [{"head": "logistic", "validation_accuracy": 0.9, "fit_secs": 0.7}]}}});
        let c = choices_of(&report);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].title, "Backbone");
        assert_eq!(c[0].rows.len(), 3);
        assert!(c[0].rows[1].chosen && !c[0].rows[0].chosen);
        assert_eq!(c[0].rows[1].seconds, Some(18.6));
        assert_eq!(c[0].rows[2].note.as_deref(), Some("weights not installed"));
        assert_eq!(c[1].title, "Classifier head");
        assert!(
            c[1].reason
                .as_deref()
                .unwrap()
                .contains("training + validation")
        );
    }

    #[test]
    fn table_and_sound_leaderboards_mark_the_winner() {
        let table = json!({"leaderboard": [
            {"algorithm": "boosted_trees", "metric": "rmse", "value": 1.5, "fit_secs": 2.0, "chosen": true, "refit": true},
            {"algorithm": "mlp", "metric": "rmse", "value": 2.5, "fit_secs": 9.0, "chosen": false, "skipped": "no better on a sample"}],
            "training": {}});
        let c = choices_of(&table);
        assert_eq!(c.len(), 1);
        assert!(c[0].lower_is_better);
        assert_eq!(c[0].score_label, "validation rmse");
        assert!(c[0].rows[0].chosen);
        assert_eq!(c[0].rows[1].note.as_deref(), Some("no better on a sample"));
        let sound = json!({"training": {"algorithm": "statistics", "leaderboard": [
            {"algorithm": "statistics", "validation_accuracy": 0.9, "fit_secs": 3.0},
            {"algorithm": "transfer", "validation_accuracy": 0.8, "fit_secs": 60.0}]}});
        let c = choices_of(&sound);
        assert_eq!(c.len(), 1);
        assert!(c[0].rows[0].chosen && !c[0].rows[1].chosen);
        assert_eq!(c[0].score_label, "validation accuracy");
        // Cross-validated runs: the score is the out-of-fold one; the CNN says what its is.
        let table = json!({"leaderboard": [
            {"algorithm": "boosted_trees", "metric": "accuracy", "value": 0.9, "cv_folds": 5, "holdout_value": 0.8, "chosen": true}],
            "training": {}, "reason": "x"});
        assert_eq!(
            table_leaderboard(&table["leaderboard"])
                .unwrap()
                .score_label,
            "5-fold cross-validated accuracy"
        );
        let sound = json!({"training": {"algorithm": "transfer", "leaderboard": [
            {"algorithm": "statistics", "cv_accuracy": 0.93, "cv_folds": 5, "validation_accuracy": 0.98},
            {"algorithm": "transfer", "cv_accuracy": 0.95, "cv_folds": 5, "validation_accuracy": 0.94},
            {"algorithm": "cnn", "validation_accuracy": 0.7}]}});
        let c = choices_of(&sound);
        assert_eq!(c[0].score_label, "5-fold cross-validated accuracy");
        assert_eq!(c[0].rows[0].score, Some(0.93));
        assert!(c[0].rows[1].chosen);
        assert!(
            c[0].rows[2]
                .note
                .as_deref()
                .unwrap()
                .contains("not cross-validated")
        );
        // A single candidate without a reason is not worth a section.
        let single = json!({"training": {"head_selection": {"chosen": "mlp",
            "candidates": [{"head": "mlp", "validation_accuracy": 0.9}]}}});
        assert!(choices_of(&single).is_empty());
    }
}
