//! Greedy ensemble selection (Caruana et al. 2004, as AutoGluon's `WeightedEnsemble`) over the
//! candidates' validation predictions — class probabilities (classification) or values
//! (regression): starting empty, every round adds (with replacement) the candidate whose
//! addition most lowers the validation loss of the averaged prediction (log loss, or squared
//! error); the weights are the counts over the rounds.
//!
//! The weights are fitted on the validation rows, so their score there is optimistic. The
//! score the leaderboard reports is a 2-fold cross-fit instead: the rows are split in two,
//! weights are selected on each half and applied to the other, and the metric (accuracy or
//! RMSE) is computed on those out-of-fold predictions.

use crate::templates::tabular::data::TargetKind;

/// Selection rounds (AutoGluon uses 25 for its first pass as well).
pub const ROUNDS: usize = 25;

/// Smallest probability in the log loss.
const EPSILON: f64 = 1e-15;

/// One candidate's predictions on the validation rows: row-major `[n, width]` (class
/// probabilities summing to 1, or one value per row).
pub struct Predictions<'a> {
    pub values: &'a [f64],
    pub width: usize,
}

/// Loss of a prediction `p` (`width` values) of a row with target `y`: −log p[y], or the squared
/// error.
fn loss(kind: TargetKind, p: &[f64], y: f64) -> f64 {
    match kind {
        TargetKind::Classification => -p.get(y as usize).copied().unwrap_or(0.0).max(EPSILON).ln(),
        TargetKind::Regression => (p.first().copied().unwrap_or(f64::NAN) - y).powi(2),
    }
}

/// Counts of each candidate after `rounds` greedy rounds on `rows` of the validation targets
/// `y` (all candidates share `width`). Ties go to the earlier candidate.
pub fn select(
    kind: TargetKind,
    candidates: &[Predictions<'_>],
    y: &[f64],
    rows: &[usize],
    rounds: usize,
) -> Vec<usize> {
    let mut counts = vec![0usize; candidates.len()];
    let Some(width) = candidates.first().map(|c| c.width) else {
        return counts;
    };
    // Running sum of the chosen candidates' predictions, per selected row.
    let mut sum = vec![0.0; rows.len() * width];
    let mut trial = vec![0.0; width];
    for round in 0..rounds {
        let mut best: Option<(f64, usize)> = None;
        for (c, cand) in candidates.iter().enumerate() {
            let mut total = 0.0;
            for (i, &r) in rows.iter().enumerate() {
                let (Some(s), Some(p), Some(&t)) = (
                    sum.get(i * width..(i + 1) * width),
                    cand.values.get(r * width..(r + 1) * width),
                    y.get(r),
                ) else {
                    continue;
                };
                for ((o, a), b) in trial.iter_mut().zip(s).zip(p) {
                    *o = (a + b) / (round + 1) as f64;
                }
                total += loss(kind, &trial, t);
            }
            if total.is_finite() && best.is_none_or(|(b, _)| total < b) {
                best = Some((total, c));
            }
        }
        let Some((_, c)) = best else {
            break;
        };
        if let Some(n) = counts.get_mut(c) {
            *n += 1;
        }
        if let Some(cand) = candidates.get(c) {
            for (i, &r) in rows.iter().enumerate() {
                let (Some(s), Some(p)) = (
                    sum.get_mut(i * width..(i + 1) * width),
                    cand.values.get(r * width..(r + 1) * width),
                ) else {
                    continue;
                };
                for (a, b) in s.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
    }
    counts
}

/// Weights (summing to 1) from selection counts.
pub fn weights(counts: &[usize]) -> Vec<f64> {
    let total = counts.iter().sum::<usize>().max(1) as f64;
    counts.iter().map(|&c| c as f64 / total).collect()
}

/// The weighted average of the candidates' predictions of row `r`.
fn blend(candidates: &[Predictions<'_>], weights: &[f64], r: usize) -> Vec<f64> {
    let width = candidates.first().map_or(0, |c| c.width);
    let mut out = vec![0.0; width];
    for (cand, w) in candidates.iter().zip(weights) {
        if *w == 0.0 {
            continue;
        }
        if let Some(p) = cand.values.get(r * width..(r + 1) * width) {
            for (o, v) in out.iter_mut().zip(p) {
                *o += w * v;
            }
        }
    }
    out
}

/// The ensemble's result on the validation rows.
#[derive(Clone, Debug)]
pub struct Selected {
    /// Weights fitted on all validation rows (one per candidate, summing to 1).
    pub weights: Vec<f64>,
    /// Accuracy (classification) or RMSE (regression) of the 2-fold cross-fit.
    pub cross_fit: f64,
    /// The same metric with the weights fitted on all rows, scored on them (optimistic).
    pub in_sample: f64,
    /// Mean log loss (classification) or MSE of the cross-fit predictions.
    pub cross_fit_loss: f64,
    /// The cross-fit predictions' loss on each validation row (for [`clearly_better`]).
    pub cross_fit_row_losses: Vec<f64>,
}

/// Each row's loss (−log p[y], or the squared error) of one candidate's predictions.
pub fn row_losses(kind: TargetKind, candidate: &Predictions<'_>, y: &[f64]) -> Vec<f64> {
    candidate
        .values
        .chunks(candidate.width.max(1))
        .zip(y)
        .map(|(p, &t)| loss(kind, p, t))
        .collect()
}

/// Whether the ensemble's per-row losses beat the best single model's by more than one standard
/// error of the mean paired difference: on a small or heavy-tailed validation set a blend that is
/// better by chance (a few rows) would otherwise be kept, and its weaker members can extrapolate
/// badly on rows unlike the validation ones.
pub fn clearly_better(ensemble: &[f64], single: &[f64]) -> bool {
    let d: Vec<f64> = single.iter().zip(ensemble).map(|(s, e)| s - e).collect();
    let n = d.len();
    if n < 2 {
        return false;
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    mean > (var / n as f64).sqrt()
}

/// Selects the weights on all `y.len()` validation rows and scores them by a 2-fold cross-fit
/// (rows split by parity of their index); `None` with fewer than 2 candidates or 4 rows.
pub fn fit(kind: TargetKind, candidates: &[Predictions<'_>], y: &[f64]) -> Option<Selected> {
    let n = y.len();
    let width = candidates.first()?.width;
    if candidates.len() < 2
        || n < 4
        || candidates
            .iter()
            .any(|c| c.width != width || c.values.len() != n * width)
    {
        return None;
    }
    let all: Vec<usize> = (0..n).collect();
    let weights = weights(&select(kind, candidates, y, &all, ROUNDS));
    let folds: [Vec<usize>; 2] = [
        all.iter().copied().filter(|r| r % 2 == 0).collect(),
        all.iter().copied().filter(|r| r % 2 == 1).collect(),
    ];
    let mut out_of_fold: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (fit_on, apply_to) in [(&folds[0], &folds[1]), (&folds[1], &folds[0])] {
        let w = self::weights(&select(kind, candidates, y, fit_on, ROUNDS));
        for &r in apply_to {
            if let Some(o) = out_of_fold.get_mut(r) {
                *o = blend(candidates, &w, r);
            }
        }
    }
    let in_sample: Vec<Vec<f64>> = (0..n).map(|r| blend(candidates, &weights, r)).collect();
    Some(Selected {
        cross_fit: metric(kind, &out_of_fold, y),
        in_sample: metric(kind, &in_sample, y),
        cross_fit_loss: out_of_fold
            .iter()
            .zip(y)
            .map(|(p, &t)| loss(kind, p, t))
            .sum::<f64>()
            / n as f64,
        cross_fit_row_losses: out_of_fold
            .iter()
            .zip(y)
            .map(|(p, &t)| loss(kind, p, t))
            .collect(),
        weights,
    })
}

/// Accuracy (first of equal maxima, as the reports count it) or RMSE of `predictions`.
pub fn metric(kind: TargetKind, predictions: &[Vec<f64>], y: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    match kind {
        TargetKind::Classification => {
            let correct = predictions
                .iter()
                .zip(y)
                .filter(|(p, t)| {
                    let mut best = 0;
                    for (i, v) in p.iter().enumerate() {
                        if *v > p.get(best).copied().unwrap_or(f64::NEG_INFINITY) {
                            best = i;
                        }
                    }
                    best == **t as usize
                })
                .count();
            correct as f64 / n
        }
        TargetKind::Regression => {
            let se: f64 = predictions
                .iter()
                .zip(y)
                .map(|(p, t)| loss(kind, p, *t))
                .sum();
            (se / n).sqrt()
        }
    }
}
