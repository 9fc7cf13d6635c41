//! Random forests (Breiman 2001) on the histogram trees of [`gbt_tree`]: every tree grows on a
//! bootstrap sample of the training rows, each node choosing among a fresh random subset of
//! the features. Regression trees average the target in their leaves; classification grows,
//! per bootstrap sample, one squared-error tree per class on the class indicator (its leaves
//! hold class frequencies: the per-class terms of the Gini impurity), so the forest's outputs
//! are averaged class frequencies. Trees grow in parallel; every tree's randomness derives from
//! the seed and its index alone, so a forest is the same for the same seed on any thread count.
//! Feature importance is the total impurity decrease of a feature's splits (MDI).

use crate::data::table_schema::Matrix;
use crate::error::Result;
use crate::learners::gbt::{self, Round};
use crate::learners::gbt_tree::{self, Tree, TreeParams};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand::{Rng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Trees grown between two progress reports (and cancellation checks).
const TREES_PER_ROUND: usize = 8;

/// What the forest predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum ForestKind {
    /// A number: the one output is the averaged leaf mean.
    Regression,
    /// Classes: two classes have one output (the frequency of class 1), more have one per class.
    Classification { classes: usize },
}

impl ForestKind {
    /// Outputs per row.
    pub fn outputs(self) -> usize {
        match self {
            Self::Regression => 1,
            Self::Classification { classes } if classes <= 2 => 1,
            Self::Classification { classes } => classes,
        }
    }
}

/// Checked forest settings.
#[derive(Clone, Debug)]
pub struct ForestParams {
    pub num_trees: usize,
    pub max_leaf_nodes: usize,
    pub min_samples_leaf: usize,
    /// 0 = unlimited.
    pub max_depth: usize,
    /// Share of the features each node may split on; 0 = √p/p for classes, all for numbers
    /// (scikit-learn's defaults).
    pub max_features: f64,
    pub max_bins: usize,
    pub seed: u64,
    /// Weight of each class's rows (classification; empty = all 1): every tree's bootstrap
    /// draws rows with probability ∝ their weight (`class_weight = balanced`).
    pub class_weights: Vec<f64>,
}

/// A fitted forest: `outputs = Σ trees`, leaf values already divided by the number of trees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub kind: ForestKind,
    /// `trees[sample][output]`.
    pub trees: Vec<Vec<Tree>>,
    /// Total squared-error decrease of the splits per feature (unnormalized).
    pub feature_gain: Vec<f64>,
}

/// Features each node may split on.
fn features_per_node(kind: ForestKind, max_features: f64, num_features: usize) -> usize {
    let p = num_features.max(1) as f64;
    let share = if max_features > 0.0 {
        max_features.min(1.0)
    } else {
        match kind {
            ForestKind::Regression => 1.0,
            ForestKind::Classification { .. } => p.sqrt() / p,
        }
    };
    ((share * p).round() as usize).clamp(1, num_features.max(1))
}

/// The target a tree of output `j` is grown on, for a row with target `y`.
fn tree_target(kind: ForestKind, y: f64, j: usize) -> f64 {
    match kind {
        ForestKind::Regression => y,
        ForestKind::Classification { classes } if classes <= 2 => f64::from(u8::from(y > 0.5)),
        ForestKind::Classification { .. } => f64::from(u8::from(y as usize == j)),
    }
}

/// The seed of tree `t`'s bootstrap sample and node feature draws.
fn tree_seed(seed: u64, t: usize) -> u64 {
    seed ^ 0xF0_2E57 ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Fits a forest on `train` (targets: numbers, or class indices as f64). After every few trees
/// `on_round` gets the loss of the forest so far on the training rows and on `validation`; an
/// error from it (a cancellation) stops training and is returned.
pub fn fit(
    train: (&Matrix, &[f64]),
    validation: Option<(&Matrix, &[f64])>,
    categorical: &[bool],
    kind: ForestKind,
    params: &ForestParams,
    on_round: &mut dyn FnMut(&Round) -> Result<()>,
) -> Result<Forest> {
    fit_with_oob(train, validation, categorical, kind, params, on_round).map(|(f, _)| f)
}

/// [`fit`], also returning each training row's out-of-bag raw outputs (`[n, outputs]`
/// row-major): the mean over the trees whose bootstrap sample left the row out — a prediction
/// from trees that never saw it (Breiman's out-of-bag estimate). A row that every bootstrap
/// drew (about 0.63^trees of them) gets the whole forest's output.
pub fn fit_with_oob(
    train: (&Matrix, &[f64]),
    validation: Option<(&Matrix, &[f64])>,
    categorical: &[bool],
    kind: ForestKind,
    params: &ForestParams,
    on_round: &mut dyn FnMut(&Round) -> Result<()>,
) -> Result<(Forest, Vec<f64>)> {
    let (x, y) = train;
    let n = x.num_rows;
    let k = kind.outputs();
    let p = x.columns.len();
    let edges = gbt::edges_of(x, categorical, params.max_bins, params.seed);
    let binned = gbt::bin_matrix(x, &edges, categorical);
    let valid = validation.map(|(vx, vy)| (gbt::bin_matrix(vx, &edges, categorical), vy));
    let tree_params = TreeParams {
        max_leaf_nodes: params.max_leaf_nodes,
        min_samples_leaf: params.min_samples_leaf,
        l2_regularization: 0.0,
        max_depth: params.max_depth,
        learning_rate: 1.0,
    };
    // Squared error around 0 with unit hessians: a leaf's value is its rows' mean target.
    let grads: Vec<Vec<f32>> = (0..k)
        .map(|j| y.iter().map(|&t| -tree_target(kind, t, j) as f32).collect())
        .collect();
    let hess = vec![1.0f32; n];
    // With class weights, each bootstrap draws rows with probability ∝ their weight (a
    // class-balanced bootstrap): fully grown trees have pure leaves, which weights on the
    // rows of a plain bootstrap would hardly change.
    let cumulative: Option<Vec<f64>> = match kind {
        ForestKind::Regression => None,
        ForestKind::Classification { .. } => gbt::row_weights(&params.class_weights, y).map(|w| {
            w.iter()
                .scan(0.0, |acc, v| {
                    *acc += v.max(0.0);
                    Some(*acc)
                })
                .collect()
        }),
    };
    let m = features_per_node(kind, params.max_features, p);
    let mut forest = Forest {
        kind,
        trees: Vec::with_capacity(params.num_trees),
        feature_gain: vec![0.0; p],
    };
    let mut sum_train = vec![0.0; n * k];
    let mut sum_oob = vec![0.0; n * k];
    let mut count_oob = vec![0usize; n];
    let mut sum_valid = valid
        .as_ref()
        .map(|(vb, _)| vec![0.0; vb.num_rows * k])
        .unwrap_or_default();
    let total = params.num_trees.max(1);
    let mut done = 0;
    while done < total {
        let batch = TREES_PER_ROUND.min(total - done);
        let grown: Vec<(Vec<Tree>, Vec<bool>)> = (done..done + batch)
            .into_par_iter()
            .map(|t| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(tree_seed(params.seed, t));
                let mut rows: Vec<u32> = match &cumulative {
                    Some(c) => {
                        let total = c.last().copied().unwrap_or(0.0);
                        (0..n)
                            .map(|_| {
                                let u = rng.random_range(0.0..1.0) * total;
                                c.partition_point(|&v| v <= u).min(n - 1) as u32
                            })
                            .collect()
                    }
                    None => (0..n).map(|_| rng.random_range(0..n as u32)).collect(),
                };
                rows.sort_unstable();
                let bootstrap = rows.clone();
                let mut in_bag = vec![false; n];
                for &r in &bootstrap {
                    if let Some(b) = in_bag.get_mut(r as usize) {
                        *b = true;
                    }
                }
                let trees = (0..k)
                    .map(|j| {
                        // Every output's tree draws its own node features from its own stream.
                        let mut draw = rand::rngs::StdRng::seed_from_u64(rng.next_u64() ^ j as u64);
                        let mut features = || {
                            (m < p).then(|| {
                                let mut allowed = vec![false; p];
                                for f in sample(&mut draw, p, m) {
                                    if let Some(a) = allowed.get_mut(f) {
                                        *a = true;
                                    }
                                }
                                allowed
                            })
                        };
                        let mut rows = bootstrap.clone();
                        let grad = grads.get(j).map(Vec::as_slice).unwrap_or(&[]);
                        gbt_tree::grow_with(
                            &binned,
                            &edges,
                            grad,
                            &hess,
                            &mut rows,
                            &tree_params,
                            &mut features,
                        )
                        .0
                    })
                    .collect();
                (trees, in_bag)
            })
            .collect();
        for (trees, in_bag) in grown {
            for (r, _) in in_bag.iter().enumerate().filter(|(_, b)| !**b) {
                if let Some(c) = count_oob.get_mut(r) {
                    *c += 1;
                }
            }
            for (j, tree) in trees.iter().enumerate() {
                sum_train
                    .par_chunks_mut(k)
                    .zip(sum_oob.par_chunks_mut(k))
                    .enumerate()
                    .for_each(|(r, (out, oob))| {
                        if let Some(v) = out.get_mut(j) {
                            let p = tree.predict_binned(&binned, r);
                            *v += p;
                            if !in_bag.get(r).copied().unwrap_or(true) {
                                if let Some(o) = oob.get_mut(j) {
                                    *o += p;
                                }
                            }
                        }
                    });
                if let Some((vb, _)) = &valid {
                    sum_valid
                        .par_chunks_mut(k)
                        .enumerate()
                        .for_each(|(r, out)| {
                            if let Some(v) = out.get_mut(j) {
                                *v += tree.predict_binned(vb, r);
                            }
                        });
                }
                for node in tree.nodes.iter().filter(|n| !n.is_leaf()) {
                    if let Some(g) = forest.feature_gain.get_mut(node.feature) {
                        *g += node.gain;
                    }
                }
            }
            forest.trees.push(trees);
        }
        done += batch;
        let scale = 1.0 / done as f64;
        let (train_loss, train_accuracy) = loss_of(kind, &sum_train, y, scale);
        let (validation_loss, validation_accuracy) = match &valid {
            Some((_, vy)) => {
                let (l, a) = loss_of(kind, &sum_valid, vy, scale);
                (Some(l), a)
            }
            None => (None, None),
        };
        on_round(&Round {
            iteration: done,
            train_loss,
            validation_loss,
            train_accuracy,
            validation_accuracy,
        })?;
    }
    let scale = 1.0 / forest.trees.len().max(1) as f64;
    let oob: Vec<f64> = sum_oob
        .chunks(k.max(1))
        .zip(sum_train.chunks(k.max(1)))
        .zip(&count_oob)
        .flat_map(|((o, all), &c)| {
            if c > 0 {
                o.iter().map(|v| v / c as f64).collect::<Vec<_>>()
            } else {
                all.iter().map(|v| v * scale).collect()
            }
        })
        .collect();
    for trees in &mut forest.trees {
        for tree in trees {
            for node in &mut tree.nodes {
                node.value *= scale;
            }
        }
    }
    Ok((forest, oob))
}

/// Mean squared error, or cross-entropy and accuracy, of summed outputs `sum × scale`.
fn loss_of(kind: ForestKind, sum: &[f64], y: &[f64], scale: f64) -> (f64, Option<f64>) {
    let k = kind.outputs();
    let n = y.len().max(1) as f64;
    match kind {
        ForestKind::Regression => {
            let se: f64 = sum
                .iter()
                .zip(y)
                .map(|(s, t)| (s * scale - t).powi(2))
                .sum();
            (se / n, None)
        }
        ForestKind::Classification { classes } => {
            let (mut l, mut ok) = (0.0, 0usize);
            for (row, t) in sum.chunks(k).zip(y) {
                let raw: Vec<f64> = row.iter().map(|s| s * scale).collect();
                let probs = probabilities(classes, &raw);
                let ti = *t as usize;
                let pt = probs.get(ti).copied().unwrap_or(0.0);
                l -= f64::from(pt).max(1e-15).ln();
                ok += usize::from(argmax(&probs) == ti);
            }
            (l / n, Some(ok as f64 / n))
        }
    }
}

fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p.get(best).copied().unwrap_or(f32::NEG_INFINITY) {
            best = i;
        }
    }
    best
}

/// Class probabilities from a forest's outputs: `[1 − p, p]` for two classes, else the
/// class frequencies normalized to sum to 1 (uniform if all are 0).
pub fn probabilities(classes: usize, raw: &[f64]) -> Vec<f32> {
    if classes <= 2 {
        let p = raw.first().copied().unwrap_or(0.0).clamp(0.0, 1.0);
        return vec![(1.0 - p) as f32, p as f32];
    }
    let clipped: Vec<f64> = raw.iter().map(|v| v.max(0.0)).collect();
    let total: f64 = clipped.iter().sum();
    if total <= 0.0 {
        return vec![1.0 / classes as f32; classes];
    }
    clipped.iter().map(|v| (v / total) as f32).collect()
}

impl Forest {
    /// Outputs of one row of raw feature values.
    pub fn raw(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.kind.outputs()];
        for trees in &self.trees {
            for (o, t) in out.iter_mut().zip(trees) {
                *o += t.predict(row);
            }
        }
        out
    }

    /// Outputs of every row of `x`, in parallel.
    pub fn raw_all(&self, x: &Matrix) -> Vec<Vec<f64>> {
        (0..x.num_rows)
            .into_par_iter()
            .map(|r| self.raw(&x.row(r)))
            .collect()
    }

    /// Class probabilities (classification) from outputs; empty for regression.
    pub fn probabilities(&self, raw: &[f64]) -> Vec<f32> {
        match self.kind {
            ForestKind::Regression => Vec::new(),
            ForestKind::Classification { classes } => probabilities(classes, raw),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn params(num_trees: usize) -> ForestParams {
        ForestParams {
            num_trees,
            max_leaf_nodes: 256,
            min_samples_leaf: 1,
            max_depth: 0,
            max_features: 0.0,
            max_bins: 255,
            seed: 7,
            class_weights: Vec::new(),
        }
    }

    /// y = sin(3·x0) + x1² + (1 if category 2) with noise; x3 is pure noise; some x0 missing.
    fn generated(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut cols = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
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
            cols[3].push(rng.random_range(0.0..1.0));
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
    fn out_of_bag_error_is_honest_like_held_out_error_not_like_training_error() {
        let (x, y) = generated(1500, 3);
        let (vx, vy) = generated(1500, 4);
        let (m, oob) = fit_with_oob(
            (&x, &y),
            None,
            &[false, false, true, false],
            ForestKind::Regression,
            &params(60),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(oob.len(), y.len());
        let mse = |pred: &dyn Fn(usize) -> f64, t: &[f64]| {
            t.iter()
                .enumerate()
                .map(|(r, v)| (pred(r) - v).powi(2))
                .sum::<f64>()
                / t.len() as f64
        };
        let train = mse(&|r| m.raw(&x.row(r))[0], &y);
        let held_out = mse(&|r| m.raw(&vx.row(r))[0], &vy);
        let out_of_bag = mse(&|r| oob[r], &y);
        // Fully grown trees nearly memorize their rows; the out-of-bag estimate does not see
        // them, so it lands near the error on new rows.
        assert!(train < 0.5 * held_out, "train {train} held-out {held_out}");
        // (Somewhat above it: each row is predicted by the ~37 % of trees that left it out.)
        let ratio = out_of_bag / held_out;
        assert!(
            out_of_bag > 2.0 * train && (0.7..1.6).contains(&ratio),
            "out-of-bag {out_of_bag} held-out {held_out} train {train}"
        );
    }

    #[test]
    fn regression_forest_learns_is_deterministic_and_ranks_features() {
        let (x, y) = generated(3000, 1);
        let (vx, vy) = generated(800, 2);
        let cat = [false, false, true, false];
        let mut rounds = Vec::new();
        let m = fit(
            (&x, &y),
            Some((&vx, &vy)),
            &cat,
            ForestKind::Regression,
            &params(40),
            &mut |r| {
                rounds.push(r.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(m.trees.len(), 40);
        assert_eq!(rounds.last().unwrap().iteration, 40);
        assert_eq!(rounds.len(), 5);
        let var = {
            let mean = vy.iter().sum::<f64>() / vy.len() as f64;
            vy.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vy.len() as f64
        };
        let mse: f64 = (0..vx.num_rows)
            .map(|r| (m.raw(&vx.row(r))[0] - vy[r]).powi(2))
            .sum::<f64>()
            / vy.len() as f64;
        assert!(mse < 0.1 * var, "mse {mse} var {var}");
        // the validation loss reported for the last round is the final forest's
        let reported = rounds.last().unwrap().validation_loss.unwrap();
        assert!(
            (reported - mse).abs() < 1e-9 * mse.max(1.0),
            "{reported} {mse}"
        );
        // the pure-noise feature matters least
        let g = &m.feature_gain;
        assert!(g[3] < g[0] && g[3] < g[1] && g[3] < g[2], "{g:?}");
        // the same seed gives the same forest; another seed another one
        let again = fit(
            (&x, &y),
            Some((&vx, &vy)),
            &cat,
            ForestKind::Regression,
            &params(40),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(m, again);
        let mut other = params(40);
        other.seed = 8;
        let other = fit(
            (&x, &y),
            None,
            &cat,
            ForestKind::Regression,
            &other,
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_ne!(m.trees, other.trees);
    }

    #[test]
    fn classification_forest_binary_and_multiclass() {
        let (x, y) = generated(3000, 4);
        let (vx, vy) = generated(800, 5);
        let classes = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .map(|v| {
                    if *v < 0.3 {
                        0.0
                    } else if *v < 1.0 {
                        1.0
                    } else {
                        2.0
                    }
                })
                .collect()
        };
        let binary =
            |v: &[f64]| -> Vec<f64> { v.iter().map(|v| f64::from(u8::from(*v > 0.6))).collect() };
        let cat = [false, false, true, false];
        for (kind, t, vt) in [
            (
                ForestKind::Classification { classes: 3 },
                classes(&y),
                classes(&vy),
            ),
            (
                ForestKind::Classification { classes: 2 },
                binary(&y),
                binary(&vy),
            ),
        ] {
            let mut last = None;
            let m = fit(
                (&x, &t),
                Some((&vx, &vt)),
                &cat,
                kind,
                &params(24),
                &mut |r| {
                    last = Some(r.clone());
                    Ok(())
                },
            )
            .unwrap();
            let r = last.unwrap();
            assert!(r.validation_accuracy.unwrap() > 0.85, "{kind:?} {r:?}");
            assert_eq!(m.trees[0].len(), kind.outputs());
            for row in 0..20 {
                let p = m.probabilities(&m.raw(&vx.row(row)));
                assert_eq!(p.len(), if kind.outputs() == 1 { 2 } else { 3 });
                assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
                assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
            }
        }
    }

    #[test]
    fn features_per_node_follow_scikit_learn_defaults() {
        let c = ForestKind::Classification { classes: 3 };
        assert_eq!(features_per_node(c, 0.0, 16), 4);
        assert_eq!(features_per_node(ForestKind::Regression, 0.0, 9), 9);
        assert_eq!(features_per_node(c, 0.0, 1), 1);
        assert_eq!(features_per_node(c, 1.0, 7), 7);
        assert_eq!(features_per_node(c, 0.01, 7), 1);
    }
}
