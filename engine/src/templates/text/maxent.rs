//! Multinomial logistic regression (maximum entropy) on sparse TF-IDF rows, trained full-batch
//! with L-BFGS (`learners::lbfgs`) on mean cross-entropy + L2. Gradients are
//! summed over documents in parallel; only the non-zero features of a document are touched, so a
//! 50k-term vocabulary over thousands of mails trains in seconds. Each iteration is reported as an
//! epoch; the iterate with the lowest validation loss is kept.

use crate::error::{Error, Result};
use crate::learners::lbfgs;
use crate::learners::logistic::CvScore;
use crate::templates::text::features::SparseRow;
use crate::train::RunContext;
use crate::train::event::{EpochMetrics, Event, Phase};
use rayon::prelude::*;

/// Gradient tolerance of the solver (scikit-learn's `tol`).
const GTOL: f64 = 1e-5;

/// Checked maxent training settings.
#[derive(Clone, Debug)]
pub struct MaxentConfig {
    /// L2 penalty on the weights (times ½‖W‖²), added to the mean cross-entropy.
    pub l2: f64,
    pub max_iterations: usize,
    /// Iterations without validation-loss improvement before stopping (0 = never).
    pub patience: usize,
}

/// A trained maxent model: `weight` is feature-major `[dim, classes]`.
#[derive(Clone, Debug)]
pub struct Maxent {
    pub dim: usize,
    pub classes: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Maxent {
    /// Class probabilities of one row.
    pub fn probabilities(&self, row: &SparseRow) -> Vec<f32> {
        let mut z: Vec<f64> = self.bias.iter().map(|&b| b as f64).collect();
        for &(j, x) in row {
            let base = j as usize * self.classes;
            if let Some(w) = self.weight.get(base..base + self.classes) {
                for (zc, wc) in z.iter_mut().zip(w) {
                    *zc += (*wc as f64) * (x as f64);
                }
            }
        }
        softmax(&mut z);
        z.into_iter().map(|p| p as f32).collect()
    }

    /// The weights as PyTorch's `Linear.weight` layout `[classes, dim]`.
    pub fn weight_class_major(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.weight.len()];
        for j in 0..self.dim {
            for c in 0..self.classes {
                out[c * self.dim + j] = self.weight[j * self.classes + c];
            }
        }
        out
    }

    /// From `[classes, dim]` weights (as exported).
    pub fn from_class_major(w: &[f32], bias: Vec<f32>, dim: usize) -> Self {
        let classes = bias.len();
        let mut weight = vec![0f32; dim * classes];
        for c in 0..classes {
            for j in 0..dim {
                weight[j * classes + c] = w.get(c * dim + j).copied().unwrap_or(0.0);
            }
        }
        Self {
            dim,
            classes,
            weight,
            bias,
        }
    }
}

fn softmax(z: &mut [f64]) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

/// Labelled sparse rows.
pub struct SparseSet<'a> {
    pub rows: &'a [SparseRow],
    pub labels: &'a [u32],
}

/// Mean cross-entropy, accuracy and (optionally) the gradient of the mean cross-entropy at
/// `theta` = `[W (dim × classes, feature-major) | b (classes)]`.
fn evaluate(
    theta: &[f64],
    set: &SparseSet,
    dim: usize,
    classes: usize,
    want_grad: bool,
) -> (f64, f64, Vec<f64>) {
    let n = set.rows.len().max(1);
    let threads = rayon::current_num_threads().max(1);
    let chunk = set.rows.len().div_ceil(threads).max(1);
    let parts: Vec<(f64, usize, Vec<f64>)> = set
        .rows
        .par_chunks(chunk)
        .zip(set.labels.par_chunks(chunk))
        .map(|(rows, labels)| {
            let mut g = if want_grad {
                vec![0f64; theta.len()]
            } else {
                Vec::new()
            };
            let (mut loss, mut correct) = (0f64, 0usize);
            let mut z = vec![0f64; classes];
            for (row, &y) in rows.iter().zip(labels) {
                z.copy_from_slice(&theta[dim * classes..]);
                for &(j, x) in row {
                    let w = &theta[j as usize * classes..(j as usize + 1) * classes];
                    for (zc, wc) in z.iter_mut().zip(w) {
                        *zc += wc * x as f64;
                    }
                }
                let best = z
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                correct += usize::from(best == y as usize);
                softmax(&mut z);
                loss -= z[y as usize].max(1e-300).ln();
                if want_grad {
                    z[y as usize] -= 1.0;
                    for &(j, x) in row {
                        let gw = &mut g[j as usize * classes..(j as usize + 1) * classes];
                        for (gc, dc) in gw.iter_mut().zip(&z) {
                            *gc += dc * x as f64;
                        }
                    }
                    for (gc, dc) in g[dim * classes..].iter_mut().zip(&z) {
                        *gc += dc;
                    }
                }
            }
            (loss, correct, g)
        })
        .collect();
    let mut loss = 0.0;
    let mut correct = 0;
    let mut grad = if want_grad {
        vec![0f64; theta.len()]
    } else {
        Vec::new()
    };
    for (l, c, g) in parts {
        loss += l;
        correct += c;
        for (a, b) in grad.iter_mut().zip(g) {
            *a += b;
        }
    }
    for v in &mut grad {
        *v /= n as f64;
    }
    (loss / n as f64, correct as f64 / n as f64, grad)
}

/// Objective (mean cross-entropy + ½·l2·‖W‖²), its gradient and the training accuracy.
fn objective(
    theta: &[f64],
    set: &SparseSet,
    dim: usize,
    classes: usize,
    l2: f64,
) -> (f64, f64, f64, Vec<f64>) {
    let (ce, acc, mut g) = evaluate(theta, set, dim, classes, true);
    let w = dim * classes;
    let mut reg = 0.0;
    for (gi, ti) in g[..w].iter_mut().zip(&theta[..w]) {
        reg += ti * ti;
        *gi += l2 * ti;
    }
    (ce + 0.5 * l2 * reg, ce, acc, g)
}

/// Trains on `train`, reporting every iteration and keeping the iterate with the best
/// validation loss (or the last one without validation data).
pub fn train(
    ctx: &RunContext,
    train: &SparseSet,
    validation: Option<&SparseSet>,
    dim: usize,
    classes: usize,
    cfg: &MaxentConfig,
) -> Result<(Maxent, Vec<EpochMetrics>, usize)> {
    if train.rows.is_empty() {
        return Err(Error::Data {
            message: "no training texts".into(),
            path: ctx.project.resolve(&ctx.project.data.train),
        });
    }
    let mut metrics = Vec::new();
    let mut best: (f64, usize, Vec<f64>) = (f64::INFINITY, 0, Vec::new());
    let mut since_best = 0;
    let started = std::time::Instant::now();
    let mut phase = ctx.phase(Phase::Training, cfg.max_iterations as u64);
    let last = lbfgs::minimize(
        vec![0f64; dim * classes + classes],
        cfg.max_iterations,
        GTOL,
        &mut |theta| {
            let (f, ce, acc, g) = objective(theta, train, dim, classes, cfg.l2);
            (f, g, (ce, acc))
        },
        &mut |s| {
            ctx.check()?;
            let &(ce, acc) = s.extra;
            let (validation_loss, validation_accuracy) =
                match validation.filter(|v| !v.rows.is_empty()) {
                    Some(v) => {
                        let (l, a, _) = evaluate(s.theta, v, dim, classes, false);
                        (Some(l), Some(a))
                    }
                    None => (None, None),
                };
            let m = EpochMetrics {
                epoch: s.iteration,
                epochs: cfg.max_iterations,
                train_loss: ce,
                train_accuracy: Some(acc),
                validation_loss,
                validation_accuracy,
                learning_rate: s.step,
                elapsed_secs: started.elapsed().as_secs_f64(),
            };
            ctx.emit(Event::EpochEnd(m.clone()));
            metrics.push(m);
            phase.set(s.iteration as u64);
            let watched = validation_loss.unwrap_or(s.value);
            if watched < best.0 - 1e-6 {
                best = (watched, s.iteration, s.theta.to_vec());
                since_best = 0;
            } else {
                since_best += 1;
            }
            Ok(cfg.patience > 0 && validation_loss.is_some() && since_best >= cfg.patience)
        },
    )?;
    if best.2.is_empty() {
        best.2 = last;
    }
    phase.set(cfg.max_iterations as u64);
    let (_, best_iter, theta) = best;
    let best_iter = if best_iter == 0 {
        metrics.len()
    } else {
        best_iter
    };
    let w = dim * classes;
    Ok((
        Maxent {
            dim,
            classes,
            weight: theta[..w].iter().map(|&v| v as f32).collect(),
            bias: theta[w..].iter().map(|&v| v as f32).collect(),
        },
        metrics,
        best_iter,
    ))
}

/// Inverse L2 strengths (scikit-learn's `C`) the cross-validation tries, weakest penalty last.
pub const C_GRID: &[f64] = &[0.3, 1.0, 3.0, 10.0, 30.0, 100.0];
/// Most training texts the cross-validation looks at.
const CV_ROWS: usize = 3000;
/// Folds of the cross-validation.
const CV_FOLDS: usize = 3;

/// Chooses the L2 penalty by stratified 3-fold cross-validation on (a sample of) `train`, as
/// scikit-learn's `LogisticRegressionCV` does with `C`: returns the `l2` for a fit on all of
/// `train` (`1 / (C·n)`) and every `C`'s score.
pub fn choose_l2(
    ctx: &RunContext,
    train: &SparseSet,
    dim: usize,
    classes: usize,
) -> Result<(f64, Vec<CvScore>)> {
    let assignment =
        crate::data::split::stratified_folds(train.labels, CV_ROWS, CV_FOLDS, ctx.project.seed);
    let mut correct = vec![0f64; C_GRID.len()];
    let mut losses = vec![0f64; C_GRID.len()];
    let mut phase = ctx.phase(Phase::CrossValidating, (CV_FOLDS * C_GRID.len()) as u64);
    let mut done = 0;
    for fold in 0..CV_FOLDS {
        let pick = |held: bool| -> (Vec<SparseRow>, Vec<u32>) {
            assignment
                .iter()
                .filter(|a| (a.1 == fold) == held)
                .map(|a| (train.rows[a.0].clone(), train.labels[a.0]))
                .unzip()
        };
        let (fit_rows, fit_labels) = pick(false);
        let (held_rows, held_labels) = pick(true);
        let fit_set = SparseSet {
            rows: &fit_rows,
            labels: &fit_labels,
        };
        let held_set = SparseSet {
            rows: &held_rows,
            labels: &held_labels,
        };
        let mut theta = vec![0f64; dim * classes + classes];
        for (slot, &c) in C_GRID.iter().enumerate() {
            let l2 = 1.0 / (c * fit_rows.len().max(1) as f64);
            theta = lbfgs::minimize(
                theta,
                100,
                GTOL * 10.0,
                &mut |th| {
                    let (f, _, _, g) = objective(th, &fit_set, dim, classes, l2);
                    (f, g, ())
                },
                &mut |_| {
                    ctx.check()?;
                    Ok(false)
                },
            )?;
            let (loss, acc, _) = evaluate(&theta, &held_set, dim, classes, false);
            correct[slot] += acc * held_rows.len() as f64;
            losses[slot] += loss * held_rows.len() as f64;
            done += 1;
            phase.set(done);
        }
    }
    let total = assignment.len().max(1) as f64;
    let scores: Vec<CvScore> = C_GRID
        .iter()
        .zip(correct.iter().zip(&losses))
        .map(|(&c, (&k, &l))| CvScore {
            c,
            accuracy: k / total,
            log_loss: l / total,
        })
        .collect();
    let best = crate::learners::logistic::choose_c(&scores, assignment.len(), true);
    Ok((1.0 / (best * train.rows.len().max(1) as f64), scores))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let rows: Vec<SparseRow> = vec![
            vec![(0, 0.6), (2, 0.8)],
            vec![(1, 1.0)],
            vec![(0, 0.3), (1, 0.4), (2, 0.866)],
        ];
        let labels = [0u32, 1, 2];
        let set = SparseSet {
            rows: &rows,
            labels: &labels,
        };
        let (dim, classes) = (3, 3);
        let theta: Vec<f64> = (0..dim * classes + classes)
            .map(|i| (i as f64 * 0.37).sin() * 0.5)
            .collect();
        let (_, _, _, g) = objective(&theta, &set, dim, classes, 0.1);
        for i in 0..theta.len() {
            let mut p = theta.clone();
            p[i] += 1e-6;
            let mut m = theta.clone();
            m[i] -= 1e-6;
            let num = (objective(&p, &set, dim, classes, 0.1).0
                - objective(&m, &set, dim, classes, 0.1).0)
                / 2e-6;
            assert!((num - g[i]).abs() < 1e-6, "param {i}: {num} vs {}", g[i]);
        }
    }

    #[test]
    fn class_major_round_trip() {
        let m = Maxent {
            dim: 2,
            classes: 3,
            weight: vec![1., 2., 3., 4., 5., 6.],
            bias: vec![0., 0., 0.],
        };
        let cm = m.weight_class_major();
        assert_eq!(cm, vec![1., 4., 2., 5., 3., 6.]);
        assert_eq!(
            Maxent::from_class_major(&cm, m.bias.clone(), 2).weight,
            m.weight
        );
        let p = m.probabilities(&vec![(1, 1.0)]);
        assert!(p[2] > p[1] && p[1] > p[0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
