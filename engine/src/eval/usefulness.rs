//! Whether a model learned anything: a classifier whose accuracy is within noise of always
//! answering the most frequent class, or a regressor no better than predicting the mean, gets a
//! warning that says so and what to try — a useless model is never reported as a plain success.

use crate::eval::ClassificationReport;
use crate::eval::regression::RegressionReport;

/// Fewest examples on which the check means anything.
const MIN_EXAMPLES: usize = 10;

/// Whether `accuracy` on `n` examples is within noise of `majority` (one-sided 95 %: the
/// majority share plus 1.645 standard errors of a proportion).
pub fn within_noise_of_majority(accuracy: f64, majority: f64, n: usize) -> bool {
    accuracy <= majority + 1.645 * crate::eval::metrics::proportion_standard_error(majority, n)
}

/// The warning for a classifier evaluated on `split`, if it is no better than guessing.
/// `advice` says what to try for this template.
pub fn classifier_warning(r: &ClassificationReport, split: &str, advice: &str) -> Option<String> {
    if r.num_examples < MIN_EXAMPLES || r.labels.len() < 2 {
        return None;
    }
    if !within_noise_of_majority(r.accuracy, r.majority_accuracy, r.num_examples) {
        return None;
    }
    let top = r
        .per_class
        .iter()
        .max_by_key(|c| c.support)
        .map(|c| c.label.as_str())
        .unwrap_or_default();
    Some(format!(
        "the model is no better than guessing: {split} accuracy {:.1}% while always answering \"{top}\" scores {:.1}% ({} examples). {advice}",
        r.accuracy * 100.0,
        r.majority_accuracy * 100.0,
        r.num_examples
    ))
}

/// The warning for the first of a run's reports (validation, else test), if any.
pub fn first_classifier_warning(
    reports: &[(String, ClassificationReport)],
    advice: &str,
) -> Option<String> {
    let (split, r) = reports.first()?;
    classifier_warning(r, split, advice)
}

/// The warning for a regressor evaluated on `split`, if it is no better than the mean.
pub fn regressor_warning(r: &RegressionReport, split: &str, advice: &str) -> Option<String> {
    if r.num_examples < MIN_EXAMPLES || r.r2 > 0.0 {
        return None;
    }
    Some(format!(
        "the model is no better than predicting the average: {split} R² is {:.3} ({} examples). {advice}",
        r.r2, r.num_examples
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn report(truth: &[usize], predicted: &[usize]) -> ClassificationReport {
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        let probs: Vec<Vec<f32>> = predicted
            .iter()
            .map(|&p| {
                if p == 0 {
                    vec![0.9, 0.1]
                } else {
                    vec![0.1, 0.9]
                }
            })
            .collect();
        ClassificationReport::compute(&labels, truth, &probs, &[])
    }

    #[test]
    fn constant_answer_warns_and_a_good_model_does_not() {
        let truth: Vec<usize> = (0..100).map(|i| usize::from(i % 3 == 0)).collect();
        let constant = vec![0; 100];
        let w = classifier_warning(&report(&truth, &constant), "validation", "Try more data.");
        let w = w.unwrap();
        assert!(
            w.contains("no better than guessing") && w.contains("\"a\""),
            "{w}"
        );
        let good: Vec<usize> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| if i % 10 == 0 { 1 - t } else { t })
            .collect();
        assert!(classifier_warning(&report(&truth, &good), "validation", "").is_none());
    }

    #[test]
    fn regressor_at_the_mean_warns() {
        let actual: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let mean = vec![24.5; 50];
        let r = RegressionReport::compute("y", &actual, &mean, &[]);
        assert!(regressor_warning(&r, "test", "").is_some());
        let close: Vec<f64> = actual.iter().map(|v| v + 0.5).collect();
        let r = RegressionReport::compute("y", &actual, &close, &[]);
        assert!(regressor_warning(&r, "test", "").is_none());
    }
}
