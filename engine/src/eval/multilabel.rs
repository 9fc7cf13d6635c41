//! Multi-label metrics: exact-match accuracy, Hamming accuracy, micro and macro F1, mean average
//! precision over labels, per-label precision / recall / F1 / AP, and one 2×2 confusion matrix per
//! label (`[[tn, fp], [fn, tp]]`, as scikit-learn's `multilabel_confusion_matrix`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Scores of one label, each treated as its own yes/no question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Average precision of the label's ranking (area under its precision-recall curve).
    pub average_precision: f64,
    /// Examples that carry this label.
    pub support: usize,
}

/// One evaluated example: its labels and the labels predicted at the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelSample {
    pub input: PathBuf,
    pub labels: Vec<String>,
    pub predicted: Vec<String>,
}

/// Everything `lathe evaluate --json` prints for a multi-label classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelReport {
    pub problem_type: String,
    pub num_examples: usize,
    /// A label is predicted when its probability is at least this.
    pub threshold: f64,
    /// Exact match: every label of the example right (scikit-learn's subset accuracy).
    pub accuracy: f64,
    /// Share of (example, label) decisions that are right (1 − Hamming loss).
    pub hamming_accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub micro_f1: f64,
    /// Mean over labels with at least one example of their average precision.
    pub mean_average_precision: f64,
    pub labels: Vec<String>,
    pub per_class: Vec<LabelMetrics>,
    /// Per label, `[[tn, fp], [fn, tp]]`.
    pub confusion_matrix: Vec<[[usize; 2]; 2]>,
    pub samples: Vec<MultiLabelSample>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Average precision of scores against 0/1 truth: mean of precision at each true example's rank.
pub fn average_precision(scores: &[f32], truth: &[bool]) -> f64 {
    let positives = truth.iter().filter(|t| **t).count();
    if positives == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut hits, mut sum) = (0usize, 0f64);
    for (rank, &i) in order.iter().enumerate() {
        if truth[i] {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    sum / positives as f64
}

impl MultiLabelReport {
    /// Computes the report from each example's true label indices and per-label probabilities.
    pub fn compute(
        labels: &[String],
        truth: &[Vec<u32>],
        probabilities: &[Vec<f32>],
        inputs: &[PathBuf],
        threshold: f32,
    ) -> Self {
        let k = labels.len();
        let n = truth.len().min(probabilities.len());
        let is_true = |i: usize, c: usize| truth[i].contains(&(c as u32));
        let predicted =
            |i: usize, c: usize| probabilities[i].get(c).is_some_and(|p| *p >= threshold);
        let mut cms = vec![[[0usize; 2]; 2]; k];
        let (mut exact, mut right) = (0usize, 0usize);
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let mut all = true;
            for (c, cm) in cms.iter_mut().enumerate() {
                let (t, p) = (is_true(i, c), predicted(i, c));
                cm[t as usize][p as usize] += 1;
                all &= t == p;
                right += (t == p) as usize;
            }
            exact += all as usize;
            samples.push(MultiLabelSample {
                input: inputs.get(i).cloned().unwrap_or_default(),
                labels: (0..k)
                    .filter(|&c| is_true(i, c))
                    .map(|c| labels[c].clone())
                    .collect(),
                predicted: (0..k)
                    .filter(|&c| predicted(i, c))
                    .map(|c| labels[c].clone())
                    .collect(),
            });
        }
        let per_class: Vec<LabelMetrics> = (0..k)
            .map(|c| {
                let cm = cms[c];
                let (tp, fp, fn_) = (cm[1][1] as f64, cm[0][1] as f64, cm[1][0] as f64);
                let precision = ratio(tp, tp + fp);
                let recall = ratio(tp, tp + fn_);
                let scores: Vec<f32> = (0..n)
                    .map(|i| probabilities[i].get(c).copied().unwrap_or(0.0))
                    .collect();
                let t: Vec<bool> = (0..n).map(|i| is_true(i, c)).collect();
                LabelMetrics {
                    label: labels[c].clone(),
                    precision,
                    recall,
                    f1: ratio(2.0 * precision * recall, precision + recall),
                    average_precision: average_precision(&scores, &t),
                    support: cm[1][0] + cm[1][1],
                }
            })
            .collect();
        let mean =
            |f: &dyn Fn(&LabelMetrics) -> f64| ratio(per_class.iter().map(f).sum(), k as f64);
        let (tp, fp, fn_) = cms.iter().fold((0.0, 0.0, 0.0), |(a, b, c), m| {
            (a + m[1][1] as f64, b + m[0][1] as f64, c + m[1][0] as f64)
        });
        let with_examples: Vec<&LabelMetrics> =
            per_class.iter().filter(|m| m.support > 0).collect();
        Self {
            problem_type: "multi_label_classification".into(),
            num_examples: n,
            threshold: threshold as f64,
            accuracy: ratio(exact as f64, n as f64),
            hamming_accuracy: ratio(right as f64, (n * k) as f64),
            macro_precision: mean(&|m| m.precision),
            macro_recall: mean(&|m| m.recall),
            macro_f1: mean(&|m| m.f1),
            micro_f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
            mean_average_precision: ratio(
                with_examples.iter().map(|m| m.average_precision).sum(),
                with_examples.len() as f64,
            ),
            labels: labels.to_vec(),
            per_class,
            confusion_matrix: cms,
            samples,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_matches_hand_computed_rankings() {
        // Ranking: T F T F → precisions at hits 1/1 and 2/3 → AP = (1 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(average_precision(&[0.5, 0.4], &[false, false]), 0.0);
        assert_eq!(average_precision(&[0.1, 0.9], &[false, true]), 1.0);
    }

    #[test]
    fn report_counts_exact_matches_and_per_label_confusions() {
        let labels: Vec<String> = ["cat", "dog", "sky"].map(String::from).to_vec();
        let truth = vec![vec![0, 2], vec![1], vec![], vec![0, 1]];
        let probs = vec![
            vec![0.9, 0.1, 0.8], // exact
            vec![0.2, 0.7, 0.6], // sky is a false positive
            vec![0.1, 0.2, 0.3], // exact (no labels)
            vec![0.6, 0.4, 0.1], // dog missed
        ];
        let r = MultiLabelReport::compute(&labels, &truth, &probs, &[], 0.5);
        assert_eq!(r.num_examples, 4);
        assert!((r.accuracy - 0.5).abs() < 1e-12);
        assert!((r.hamming_accuracy - 10.0 / 12.0).abs() < 1e-12);
        // dog: tp 1 (row 1), fn 1 (row 3), fp 0, tn 2.
        assert_eq!(r.confusion_matrix[1], [[2, 0], [1, 1]]);
        // sky: tp 1, fp 1, tn 2.
        assert_eq!(r.confusion_matrix[2], [[2, 1], [0, 1]]);
        assert_eq!(r.per_class[1].support, 2);
        assert!((r.per_class[1].recall - 0.5).abs() < 1e-12);
        // micro F1: tp 4 (cat 2, dog 1, sky 1), fp 1, fn 1 → 8 / 10.
        assert!((r.micro_f1 - 0.8).abs() < 1e-12);
        assert_eq!(r.samples[1].predicted, vec!["dog", "sky"]);
    }
}
