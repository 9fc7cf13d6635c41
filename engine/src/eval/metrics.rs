//! Classification metrics: accuracy, top-5, per-class precision / recall / F1 / support, macro
//! averages, the confusion matrix, and every sample's prediction (so a UI can list the samples
//! behind any cell of the matrix).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Scores of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// True examples of this class.
    pub support: usize,
}

/// One evaluated example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    pub input: PathBuf,
    pub label: String,
    pub predicted: String,
    pub confidence: f64,
}

/// Everything `lathe evaluate --json` prints for a classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub num_examples: usize,
    pub accuracy: f64,
    /// Share of examples whose label is among the 5 most probable (1.0 with ≤ 5 classes).
    pub top5_accuracy: f64,
    /// Accuracy of always answering the most frequent true class: what a useless model gets.
    #[serde(default)]
    pub majority_accuracy: f64,
    /// Mean recall over the classes present (= macro recall): accuracy that weighs every class
    /// the same, whatever its size.
    #[serde(default)]
    pub balanced_accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub labels: Vec<String>,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion_matrix[true][predicted]` counts.
    pub confusion_matrix: Vec<Vec<usize>>,
    pub samples: Vec<SampleResult>,
}

impl ClassificationReport {
    /// Computes the report from true labels and per-class probabilities.
    pub fn compute(
        labels: &[String],
        truth: &[usize],
        probabilities: &[Vec<f32>],
        inputs: &[PathBuf],
    ) -> Self {
        let k = labels.len();
        let n = truth.len().min(probabilities.len());
        let mut cm = vec![vec![0usize; k]; k];
        let (mut correct, mut top5) = (0usize, 0usize);
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let p = &probabilities[i];
            let pred = argmax(p);
            let t = truth[i];
            if t < k && pred < k {
                cm[t][pred] += 1;
            }
            correct += usize::from(pred == t);
            let truth_p = p.get(t).copied().unwrap_or(0.0);
            let rank = p.iter().filter(|&&q| q > truth_p).count();
            top5 += usize::from(rank < 5);
            samples.push(SampleResult {
                input: inputs.get(i).cloned().unwrap_or_default(),
                label: labels.get(t).cloned().unwrap_or_default(),
                predicted: labels.get(pred).cloned().unwrap_or_default(),
                confidence: p.get(pred).copied().unwrap_or(0.0) as f64,
            });
        }
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = cm[c][c] as f64;
                let predicted: usize = (0..k).map(|t| cm[t][c]).sum();
                let support: usize = cm[c].iter().sum();
                let precision = ratio(tp, predicted as f64);
                let recall = ratio(tp, support as f64);
                let f1 = ratio(2.0 * precision * recall, precision + recall);
                ClassMetrics {
                    label: labels[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        // Macro averages over classes present in the data (as scikit-learn does with labels=present).
        let present: Vec<&ClassMetrics> = per_class.iter().filter(|c| c.support > 0).collect();
        let macro_of = |f: fn(&ClassMetrics) -> f64| {
            ratio(present.iter().map(|c| f(c)).sum(), present.len() as f64)
        };
        let majority = per_class.iter().map(|c| c.support).max().unwrap_or(0);
        Self {
            num_examples: n,
            accuracy: ratio(correct as f64, n as f64),
            top5_accuracy: ratio(top5 as f64, n as f64),
            majority_accuracy: ratio(majority as f64, n as f64),
            balanced_accuracy: macro_of(|c| c.recall),
            macro_precision: macro_of(|c| c.precision),
            macro_recall: macro_of(|c| c.recall),
            macro_f1: macro_of(|c| c.f1),
            labels: labels.to_vec(),
            per_class,
            confusion_matrix: cm,
            samples,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Standard error of an accuracy (a proportion `p`) measured on `n` examples.
pub fn proportion_standard_error(p: f64, n: usize) -> f64 {
    (p * (1.0 - p) / n.max(1) as f64).sqrt()
}

/// Index of the largest value (first on ties).
pub fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_scores() {
        // truth: a a a b b c ; predicted: a a b b c c
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let onehot = |i: usize| {
            let mut v = vec![0.1f32; 3];
            v[i] = 0.8;
            v
        };
        let truth = [0, 0, 0, 1, 1, 2];
        let probs: Vec<Vec<f32>> = [0, 0, 1, 1, 2, 2].iter().map(|&i| onehot(i)).collect();
        let r = ClassificationReport::compute(&labels, &truth, &probs, &[]);
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            r.confusion_matrix,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        // a: P=1, R=2/3 ; b: P=1/2, R=1/2 ; c: P=1/2, R=1
        let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let expect = (f1(1.0, 2.0 / 3.0) + f1(0.5, 0.5) + f1(0.5, 1.0)) / 3.0;
        assert!((r.macro_f1 - expect).abs() < 1e-12);
        assert_eq!(r.per_class[0].support, 3);
        assert_eq!(r.top5_accuracy, 1.0);
        assert_eq!(r.samples[2].predicted, "b");
        assert!((r.majority_accuracy - 0.5).abs() < 1e-12);
        assert!((r.balanced_accuracy - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
    }
}
