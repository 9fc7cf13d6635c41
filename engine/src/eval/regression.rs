//! Regression metrics: RMSE, MAE, R², max error, and every sample's prediction (capped) so a UI
//! can list the worst ones.

use serde::{Deserialize, Serialize};

/// Samples kept in a report (the worst errors first); the metrics cover every example.
pub const MAX_SAMPLES: usize = 10_000;

/// One evaluated example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionSample {
    pub input: String,
    pub actual: f64,
    pub predicted: f64,
}

/// Everything `lathe evaluate --json` prints for a regressor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionReport {
    pub num_examples: usize,
    /// Root mean squared error, in the target's unit.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination (1 is perfect, 0 is as good as predicting the mean).
    pub r2: f64,
    /// Largest absolute error.
    pub max_error: f64,
    /// The target column.
    pub target: String,
    /// Examples, largest error first (at most [`MAX_SAMPLES`]).
    pub samples: Vec<RegressionSample>,
}

impl RegressionReport {
    /// Computes the report of `predicted` against `actual`; `inputs` names each example.
    pub fn compute(target: &str, actual: &[f64], predicted: &[f64], inputs: &[String]) -> Self {
        let n = actual.len().min(predicted.len());
        let nf = n.max(1) as f64;
        let mean = actual.iter().take(n).sum::<f64>() / nf;
        let (mut se, mut ae, mut tot, mut max) = (0.0, 0.0, 0.0, 0.0f64);
        for (a, p) in actual.iter().zip(predicted).take(n) {
            let e = p - a;
            se += e * e;
            ae += e.abs();
            max = max.max(e.abs());
            tot += (a - mean) * (a - mean);
        }
        let mut samples: Vec<RegressionSample> = (0..n)
            .map(|i| RegressionSample {
                input: inputs.get(i).cloned().unwrap_or_default(),
                actual: actual[i],
                predicted: predicted[i],
            })
            .collect();
        samples.sort_by(|a, b| {
            (b.predicted - b.actual)
                .abs()
                .total_cmp(&(a.predicted - a.actual).abs())
        });
        samples.truncate(MAX_SAMPLES);
        Self {
            num_examples: n,
            rmse: (se / nf).sqrt(),
            mae: ae / nf,
            r2: if tot > 0.0 { 1.0 - se / tot } else { 0.0 },
            max_error: max,
            target: target.to_string(),
            samples,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_scores() {
        // errors 1, -1, 2, 0 ; mean of actual 2.5 → total sum of squares 5
        let r = RegressionReport::compute("y", &[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 5.0, 4.0], &[]);
        assert!((r.rmse - (6.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((r.mae - 1.0).abs() < 1e-12);
        assert!((r.r2 - (1.0 - 6.0 / 5.0)).abs() < 1e-12);
        assert_eq!(r.max_error, 2.0);
        assert_eq!(r.samples[0].actual, 3.0);
    }
}
