//! Histogram gradient-boosted trees (in the manner of LightGBM and scikit-learn's
//! `HistGradientBoosting*`): features binned into ≤ 255 quantile bins plus a missing bin,
//! categorical features split by sets of levels, squared-error / logistic / softmax losses,
//! shrinkage, L2-regularized leaves, and early stopping on validation loss (the best iteration
//! is kept). Trees grow in parallel over features (and over classes) with rayon.

use crate::data::table_schema::Matrix;
use crate::error::Result;
use crate::learners::gbt_tree::{self, Binned, Tree, TreeParams};
use rand::SeedableRng;
use rand::seq::index::sample;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows used to find bin edges (as scikit-learn's `subsample=2e5`).
const BINNING_SAMPLE: usize = 200_000;

/// What is being predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "loss", rename_all = "snake_case")]
pub enum Objective {
    /// Squared error on a number.
    Regression,
    /// Logistic loss on two classes (one tree per iteration).
    Binary,
    /// Softmax cross-entropy on `classes` classes (one tree per class per iteration).
    Multiclass { classes: usize },
}

impl Objective {
    /// Raw outputs per row.
    pub fn outputs(self) -> usize {
        match self {
            Self::Regression | Self::Binary => 1,
            Self::Multiclass { classes } => classes,
        }
    }
}

/// Checked boosting settings.
#[derive(Clone, Debug)]
pub struct GbtParams {
    pub learning_rate: f64,
    pub max_iterations: usize,
    pub max_leaf_nodes: usize,
    pub min_samples_leaf: usize,
    pub l2_regularization: f64,
    /// 0 = unlimited.
    pub max_depth: usize,
    pub max_bins: usize,
    /// Rounds without validation improvement before stopping (0 = never stop early).
    pub patience: usize,
    pub seed: u64,
    /// Weight of each class's rows in the loss (classification; empty = all 1): the gradients,
    /// hessians and starting scores are weighted by it (`class_weight = balanced`).
    pub class_weights: Vec<f64>,
}

/// Per-row weights `class_weights[y]` (classification), or `None` when there are none.
pub fn row_weights(class_weights: &[f64], y: &[f64]) -> Option<Vec<f64>> {
    (!class_weights.is_empty()).then(|| {
        y.iter()
            .map(|t| class_weights.get(*t as usize).copied().unwrap_or(1.0))
            .collect()
    })
}

/// What one boosting round reports.
#[derive(Clone, Debug)]
pub struct Round {
    /// 1-based.
    pub iteration: usize,
    pub train_loss: f64,
    pub validation_loss: Option<f64>,
    /// Accuracy (classification) of the current model.
    pub train_accuracy: Option<f64>,
    pub validation_accuracy: Option<f64>,
}

/// A fitted model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gbt {
    pub objective: Objective,
    /// Starting raw score per output.
    pub base: Vec<f64>,
    /// `trees[iteration][output]`.
    pub trees: Vec<Vec<Tree>>,
    /// Total split gain per feature (unnormalized).
    pub feature_gain: Vec<f64>,
    pub best_iteration: usize,
    pub stopped_early: bool,
}

/// Bin edges per feature (empty for categorical features).
pub(crate) fn edges_of(
    x: &Matrix,
    categorical: &[bool],
    max_bins: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let n = x.num_rows;
    let idx: Option<Vec<usize>> = (n > BINNING_SAMPLE).then(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xb1_7715);
        let mut v = sample(&mut rng, n, BINNING_SAMPLE).into_vec();
        v.sort_unstable();
        v
    });
    x.columns
        .par_iter()
        .enumerate()
        .map(|(f, col)| {
            if categorical.get(f).copied().unwrap_or(false) {
                return Vec::new();
            }
            match &idx {
                Some(idx) => {
                    let s: Vec<f64> = idx.iter().filter_map(|&i| col.get(i).copied()).collect();
                    gbt_tree::bin_edges(&s, max_bins)
                }
                None => gbt_tree::bin_edges(col, max_bins),
            }
        })
        .collect()
}

/// `x` as bins of `edges` (categorical codes as they are).
pub(crate) fn bin_matrix(x: &Matrix, edges: &[Vec<f64>], categorical: &[bool]) -> Binned {
    let bins: Vec<Vec<u8>> = x
        .columns
        .par_iter()
        .enumerate()
        .map(|(f, col)| {
            let e = edges.get(f).map(Vec::as_slice).unwrap_or(&[]);
            if categorical.get(f).copied().unwrap_or(false) {
                col.iter()
                    .map(|&v| {
                        if v.is_nan() {
                            254
                        } else {
                            v.clamp(0.0, 254.0) as u8
                        }
                    })
                    .collect()
            } else {
                col.iter().map(|&v| gbt_tree::bin_of(v, e)).collect()
            }
        })
        .collect();
    let num_bins = x
        .columns
        .iter()
        .enumerate()
        .map(|(f, col)| {
            if categorical.get(f).copied().unwrap_or(false) {
                col.iter()
                    .filter(|v| !v.is_nan())
                    .fold(0usize, |m, &v| m.max(v.clamp(0.0, 254.0) as usize + 1))
            } else {
                edges.get(f).map_or(1, |e| e.len() + 1)
            }
        })
        .collect();
    Binned {
        bins,
        num_bins,
        categorical: categorical.to_vec(),
        num_rows: x.num_rows,
    }
}

/// Loss, and accuracy for classification, of raw scores `raw[row * k + j]` against `y`.
pub(crate) fn loss_of(objective: Objective, raw: &[f64], y: &[f64]) -> (f64, Option<f64>) {
    let n = y.len().max(1) as f64;
    match objective {
        Objective::Regression => {
            let se: f64 = raw.iter().zip(y).map(|(p, t)| (p - t) * (p - t)).sum();
            (se / n, None)
        }
        Objective::Binary => {
            let (mut l, mut ok) = (0.0, 0usize);
            for (z, t) in raw.iter().zip(y) {
                // log(1 + e^z) − t·z, computed stably
                l += z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z;
                ok += usize::from((*z > 0.0) == (*t > 0.5));
            }
            (l / n, Some(ok as f64 / n))
        }
        Objective::Multiclass { classes } => {
            let (mut l, mut ok) = (0.0, 0usize);
            for (row, t) in raw.chunks(classes).zip(y) {
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
                let ti = *t as usize;
                l += lse - row.get(ti).copied().unwrap_or(m);
                let arg = argmax(row);
                ok += usize::from(arg == ti);
            }
            (l / n, Some(ok as f64 / n))
        }
    }
}

fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row.get(best).copied().unwrap_or(f64::NEG_INFINITY) {
            best = i;
        }
    }
    best
}

/// Gradients and hessians of output `j` for every row.
/// Rows on which the training loss of each round is measured (at most).
const TRAIN_LOSS_ROWS: usize = 10_000;

/// Gradients and hessians of output `j`. Multiclass takes `probs`, the softmax of every row
/// computed once per round (not once per class).
fn gradients(
    objective: Objective,
    raw: &[f64],
    probs: &[f64],
    y: &[f64],
    j: usize,
) -> (Vec<f32>, Vec<f32>) {
    match objective {
        Objective::Regression => (
            raw.iter().zip(y).map(|(p, t)| (p - t) as f32).collect(),
            vec![1.0; y.len()],
        ),
        Objective::Binary => raw
            .iter()
            .zip(y)
            .map(|(z, t)| {
                let p = 1.0 / (1.0 + (-z).exp());
                ((p - t) as f32, (p * (1.0 - p)).max(1e-16) as f32)
            })
            .unzip(),
        Objective::Multiclass { classes } => probs
            .par_chunks(classes)
            .zip(y.par_iter())
            .map(|(row, t)| {
                let p = row.get(j).copied().unwrap_or(0.0);
                let target = f64::from(u8::from(*t as usize == j));
                ((p - target) as f32, (p * (1.0 - p)).max(1e-16) as f32)
            })
            .unzip(),
    }
}

/// Row-wise softmax of multiclass raw scores (empty for the other objectives).
fn row_probabilities(objective: Objective, raw: &[f64]) -> Vec<f64> {
    let Objective::Multiclass { classes } = objective else {
        return Vec::new();
    };
    let mut out = raw.to_vec();
    out.par_chunks_mut(classes.max(1))
        .for_each(softmax_in_place);
    out
}

/// Starting scores: the mean, the log-odds, or the log class priors (with row `weights`, the
/// weighted ones).
fn base_scores(objective: Objective, y: &[f64], weights: Option<&[f64]>) -> Vec<f64> {
    let w = |i: usize| weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0);
    let n = (0..y.len()).map(w).sum::<f64>().max(1e-12);
    match objective {
        Objective::Regression => vec![y.iter().enumerate().map(|(i, t)| w(i) * t).sum::<f64>() / n],
        Objective::Binary => {
            let p = (y.iter().enumerate().map(|(i, t)| w(i) * t).sum::<f64>() / n)
                .clamp(1e-6, 1.0 - 1e-6);
            vec![(p / (1.0 - p)).ln()]
        }
        Objective::Multiclass { classes } => {
            let mut counts = vec![0.0; classes];
            for (i, t) in y.iter().enumerate() {
                if let Some(c) = counts.get_mut(*t as usize) {
                    *c += w(i);
                }
            }
            counts.iter().map(|c| (c / n).max(1e-6).ln()).collect()
        }
    }
}

/// A grown tree, the row order it left, and its leaves' row ranges and values.
type Grown = (Tree, Vec<u32>, Vec<(usize, usize, f64)>);

/// Fits a model on `train` (targets: numbers, or class indices as f64), early-stopping on
/// `validation` when given. `on_round` is called after every round; an error from it (a
/// cancellation) stops training and is returned.
pub fn fit(
    train: (&Matrix, &[f64]),
    validation: Option<(&Matrix, &[f64])>,
    categorical: &[bool],
    objective: Objective,
    params: &GbtParams,
    on_round: &mut dyn FnMut(&Round) -> Result<()>,
) -> Result<Gbt> {
    let (x, y) = train;
    let k = objective.outputs();
    let n = x.num_rows;
    let edges = edges_of(x, categorical, params.max_bins, params.seed);
    let binned = bin_matrix(x, &edges, categorical);
    let valid = validation.map(|(vx, vy)| (bin_matrix(vx, &edges, categorical), vy));
    let weights = match objective {
        Objective::Regression => None,
        _ => row_weights(&params.class_weights, y),
    };
    let base = base_scores(objective, y, weights.as_deref());
    let mut raw: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    let mut vraw: Vec<f64> = valid
        .as_ref()
        .map(|(vb, _)| {
            (0..vb.num_rows)
                .flat_map(|_| base.iter().copied())
                .collect()
        })
        .unwrap_or_default();
    let tree_params = TreeParams {
        max_leaf_nodes: params.max_leaf_nodes,
        min_samples_leaf: params.min_samples_leaf,
        l2_regularization: params.l2_regularization,
        max_depth: params.max_depth,
        learning_rate: params.learning_rate,
    };
    let mut model = Gbt {
        objective,
        base,
        trees: Vec::new(),
        feature_gain: vec![0.0; x.columns.len()],
        best_iteration: 0,
        stopped_early: false,
    };
    let mut gains_per_iteration: Vec<Vec<f64>> = Vec::new();
    let loss_sample: Option<(Vec<usize>, Vec<f64>)> = (n > TRAIN_LOSS_ROWS).then(|| {
        let rows: Vec<usize> = (0..TRAIN_LOSS_ROWS)
            .map(|i| i * n / TRAIN_LOSS_ROWS)
            .collect();
        let ys = rows
            .iter()
            .map(|&r| y.get(r).copied().unwrap_or(0.0))
            .collect();
        (rows, ys)
    });
    let mut best_loss = f64::INFINITY;
    let mut since_best = 0;
    for iteration in 1..=params.max_iterations.max(1) {
        let probs = row_probabilities(objective, &raw);
        let grown: Vec<Grown> = (0..k)
            .into_par_iter()
            .map(|j| {
                let (mut g, mut h) = gradients(objective, &raw, &probs, y, j);
                if let Some(w) = &weights {
                    for ((g, h), w) in g.iter_mut().zip(h.iter_mut()).zip(w) {
                        *g *= *w as f32;
                        *h *= *w as f32;
                    }
                }
                let mut rows: Vec<u32> = (0..n as u32).collect();
                let (tree, leaves) =
                    gbt_tree::grow(&binned, &edges, &g, &h, &mut rows, &tree_params, None);
                (tree, rows, leaves)
            })
            .collect();
        let mut trees = Vec::with_capacity(k);
        let mut gains = vec![0.0; x.columns.len()];
        for (j, (tree, rows, leaves)) in grown.into_iter().enumerate() {
            for (start, end, value) in leaves {
                for &r in rows.get(start..end).unwrap_or(&[]) {
                    if let Some(v) = raw.get_mut(r as usize * k + j) {
                        *v += value;
                    }
                }
            }
            if let Some((vb, _)) = &valid {
                vraw.par_chunks_mut(k).enumerate().for_each(|(r, out)| {
                    if let Some(v) = out.get_mut(j) {
                        *v += tree.predict_binned(vb, r);
                    }
                });
            }
            for node in tree.nodes.iter().filter(|n| !n.is_leaf()) {
                if let Some(g) = gains.get_mut(node.feature) {
                    *g += node.gain;
                }
            }
            trees.push(tree);
        }
        model.trees.push(trees);
        gains_per_iteration.push(gains);
        // The training curve is measured on an evenly spaced sample of at most
        // TRAIN_LOSS_ROWS rows (as scikit-learn's early stopping does): on large tables a full
        // pass costs as much as growing a tree.
        let (train_loss, train_accuracy) = match &loss_sample {
            Some((sraw, sy)) => {
                let sraw: Vec<f64> = sraw
                    .iter()
                    .flat_map(|&r| raw.get(r * k..(r + 1) * k).unwrap_or(&[]).iter().copied())
                    .collect();
                loss_of(objective, &sraw, sy)
            }
            None => loss_of(objective, &raw, y),
        };
        crate::fit::diverge::check_loss(
            train_loss,
            iteration,
            "learning_rate",
            params.learning_rate,
            None,
        )?;
        let (validation_loss, validation_accuracy) = match &valid {
            Some((_, vy)) => {
                let (l, a) = loss_of(objective, &vraw, vy);
                (Some(l), a)
            }
            None => (None, None),
        };
        on_round(&Round {
            iteration,
            train_loss,
            validation_loss,
            train_accuracy,
            validation_accuracy,
        })?;
        match validation_loss {
            Some(l) if params.patience > 0 => {
                if !best_loss.is_finite() || l < best_loss - 1e-7 * best_loss.abs().max(1e-12) {
                    best_loss = l;
                    model.best_iteration = iteration;
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= params.patience {
                        model.stopped_early = true;
                        break;
                    }
                }
            }
            _ => model.best_iteration = iteration,
        }
    }
    model.trees.truncate(model.best_iteration.max(1));
    for gains in gains_per_iteration.iter().take(model.trees.len()) {
        for (t, g) in model.feature_gain.iter_mut().zip(gains) {
            *t += g;
        }
    }
    Ok(model)
}

impl Gbt {
    /// Raw scores of one row of raw feature values.
    pub fn raw(&self, row: &[f64]) -> Vec<f64> {
        let mut out = self.base.clone();
        for trees in &self.trees {
            for (o, t) in out.iter_mut().zip(trees) {
                *o += t.predict(row);
            }
        }
        out
    }

    /// Raw scores of every row of `x`, in parallel.
    pub fn raw_all(&self, x: &Matrix) -> Vec<Vec<f64>> {
        (0..x.num_rows)
            .into_par_iter()
            .map(|r| self.raw(&x.row(r)))
            .collect()
    }

    /// Class probabilities (classification) from raw scores.
    pub fn probabilities(&self, raw: &[f64]) -> Vec<f32> {
        match self.objective {
            Objective::Regression => Vec::new(),
            Objective::Binary => {
                let p = 1.0 / (1.0 + (-raw.first().copied().unwrap_or(0.0)).exp());
                vec![(1.0 - p) as f32, p as f32]
            }
            Objective::Multiclass { .. } => softmax(raw),
        }
    }
}

/// Softmax of raw scores.
pub fn softmax(raw: &[f64]) -> Vec<f32> {
    let mut p = raw.to_vec();
    softmax_in_place(&mut p);
    p.iter().map(|&v| v as f32).collect()
}

/// Softmax of one row of raw scores, in place, in f64.
fn softmax_in_place(row: &mut [f64]) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for z in row.iter_mut() {
        *z = (*z - m).exp();
    }
    let s: f64 = row.iter().sum();
    for z in row.iter_mut() {
        *z /= s;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::Rng;

    fn params(iterations: usize) -> GbtParams {
        GbtParams {
            learning_rate: 0.1,
            max_iterations: iterations,
            max_leaf_nodes: 31,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_depth: 0,
            max_bins: 255,
            patience: 10,
            seed: 1,
            class_weights: Vec::new(),
        }
    }

    /// y = sin(3·x0) + x1² + (1 if category 2) with noise; x2 is a category, some x0 missing.
    fn generated(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut cols = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut y = Vec::new();
        for _ in 0..n {
            let x0: f64 = rng.random_range(-1.0..1.0);
            let x1: f64 = rng.random_range(-1.0..1.0);
            let c: usize = rng.random_range(0..4);
            let missing = rng.random_bool(0.05);
            let shift = if missing { 0.5 } else { (3.0 * x0).sin() };
            y.push(
                shift + x1 * x1 + if c == 2 { 1.0 } else { 0.0 } + rng.random_range(-0.05..0.05),
            );
            cols[0].push(if missing { f64::NAN } else { x0 });
            cols[1].push(x1);
            cols[2].push(c as f64);
        }
        (
            Matrix {
                columns: cols,
                num_rows: n,
            },
            y,
        )
    }

    #[test]
    fn regression_learns_a_generated_function() {
        let (x, y) = generated(4000, 1);
        let (vx, vy) = generated(1000, 2);
        let mut rounds = 0;
        let m = fit(
            (&x, &y),
            Some((&vx, &vy)),
            &[false, false, true],
            Objective::Regression,
            &params(300),
            &mut |r| {
                rounds = r.iteration;
                Ok(())
            },
        )
        .unwrap();
        let (tx, ty) = generated(1000, 3);
        let mse: f64 = (0..tx.num_rows)
            .map(|r| (m.raw(&tx.row(r))[0] - ty[r]).powi(2))
            .sum::<f64>()
            / ty.len() as f64;
        let var: f64 = {
            let mean = ty.iter().sum::<f64>() / ty.len() as f64;
            ty.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ty.len() as f64
        };
        assert!(mse < 0.02 * var.max(0.1) + 0.005, "mse {mse} var {var}");
        assert!(rounds >= m.trees.len());
        // the noise-free category and both numbers matter; importance is spread over all three
        assert!(
            m.feature_gain.iter().all(|&g| g > 0.0),
            "{:?}",
            m.feature_gain
        );
        // the same seed gives the same model
        let again = fit(
            (&x, &y),
            Some((&vx, &vy)),
            &[false, false, true],
            Objective::Regression,
            &params(300),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn classification_binary_and_multiclass() {
        let (x, y) = generated(3000, 4);
        // three classes by thresholds of the regression target; two classes by its sign
        let y3: Vec<f64> = y
            .iter()
            .map(|v| {
                if *v < 0.3 {
                    0.0
                } else if *v < 1.0 {
                    1.0
                } else {
                    2.0
                }
            })
            .collect();
        let y2: Vec<f64> = y.iter().map(|v| f64::from(u8::from(*v > 0.6))).collect();
        for (objective, target) in [
            (Objective::Multiclass { classes: 3 }, &y3),
            (Objective::Binary, &y2),
        ] {
            let mut last = None;
            let m = fit(
                (&x, target),
                None,
                &[false, false, true],
                objective,
                &params(60),
                &mut |r| {
                    last = Some(r.clone());
                    Ok(())
                },
            )
            .unwrap();
            let r = last.unwrap();
            assert!(r.train_accuracy.unwrap() > 0.93, "{objective:?} {r:?}");
            assert_eq!(m.trees.len(), 60);
            assert_eq!(m.trees[0].len(), objective.outputs());
            let p = m.probabilities(&m.raw(&x.row(0)));
            assert_eq!(p.len(), if objective == Objective::Binary { 2 } else { 3 });
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_iteration() {
        // pure noise: validation loss stops improving almost at once
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mk = |rng: &mut rand::rngs::StdRng, n: usize| {
            let x = Matrix {
                columns: vec![(0..n).map(|_| rng.random_range(0.0..1.0)).collect()],
                num_rows: n,
            };
            let y: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
            (x, y)
        };
        let (x, y) = mk(&mut rng, 2000);
        let (vx, vy) = mk(&mut rng, 500);
        let m = fit(
            (&x, &y),
            Some((&vx, &vy)),
            &[false],
            Objective::Regression,
            &params(500),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(m.stopped_early);
        assert!(m.trees.len() < 100 && m.trees.len() == m.best_iteration.max(1));
    }
}
