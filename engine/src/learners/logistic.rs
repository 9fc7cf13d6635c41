//! Logistic regression on dense f32 features, fitted full-batch by L-BFGS: multinomial (one
//! softmax over the classes) or independent sigmoids (multi-label), mean cross-entropy with
//! optional per-row weights, plus ½·l2·‖W‖² (bias not penalized) — scikit-learn's
//! `LogisticRegression(C)` objective divided by `C·n`, so `l2 = 1 / (C·n)`. Both products of an
//! evaluation (logits `X·Wᵀ`, gradient `Dᵀ·X`) run on `gemm` over all cores; the search runs in
//! f64. Inputs should be standardized by the caller (heads fold the scaling back on export).

use crate::error::{Error, Result};
use crate::learners::lbfgs;
use crate::ops::pointwise::matmul_strided;
use rayon::prelude::*;

/// One inverse L2 strength `C` (scikit-learn's) and its cross-validated scores.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CvScore {
    pub c: f64,
    pub accuracy: f64,
    pub log_loss: f64,
}

/// The `C` to keep: among those whose CV accuracy is within one standard error of the best
/// (`rows` held-out rows in all; on a few hundred rows accuracy differences between neighbouring
/// `C` are noise), the lowest CV log loss — a proper score that does not reward overconfident,
/// weakly penalized fits. Without `by_accuracy` (multi-label), the lowest log loss.
pub fn choose_c(scores: &[CvScore], rows: usize, by_accuracy: bool) -> f64 {
    let best = scores.iter().map(|s| s.accuracy).fold(0.0, f64::max);
    let se = crate::eval::metrics::proportion_standard_error(best, rows);
    scores
        .iter()
        .filter(|s| !by_accuracy || s.accuracy >= best - se - 1e-12)
        .min_by(|a, b| a.log_loss.total_cmp(&b.log_loss))
        .map_or(1.0, |s| s.c)
}

/// What the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// One class per row: softmax over the classes.
    Softmax,
    /// Any number of labels per row: one sigmoid per class.
    Sigmoid,
}

/// A fitted model: `weight` is class-major `[classes, dim]` (PyTorch's `Linear.weight`).
#[derive(Clone, Debug, PartialEq)]
pub struct Logistic {
    pub dim: usize,
    pub classes: usize,
    pub link: Link,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Labelled rows: `x` row-major `[n, dim]`; `labels` one class per row (softmax) or `targets`
/// row-major `[n, classes]` 0/1 (sigmoid).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub dim: usize,
    pub labels: &'a [u32],
    pub targets: &'a [f32],
    /// Per-row weights (class balancing); `None` = all 1.
    pub weights: Option<&'a [f32]>,
}

impl Rows<'_> {
    pub fn len(&self) -> usize {
        self.x.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Solver settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub l2: f64,
    pub max_iterations: usize,
    /// Stop when no gradient component exceeds this (scikit-learn's `tol`, 1e-4 by default;
    /// see `learners::lbfgs`).
    pub tolerance: f64,
}

/// One solver iteration, as reported to the caller.
#[derive(Clone, Copy, Debug)]
pub struct Iteration {
    pub iteration: usize,
    /// Mean cross-entropy on the rows (without the penalty).
    pub loss: f64,
    /// Accuracy on the rows (softmax: top class; sigmoid: per-label decisions at 0.5).
    pub accuracy: f64,
    /// Accepted step length of the line search.
    pub step: f64,
}

impl Logistic {
    /// Logits `[n, classes]` of row-major `x`.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        logits(&self.weight, x, self.dim, self.classes, &self.bias)
    }

    /// Probabilities per row (softmax, or sigmoids for multi-label models).
    pub fn probabilities(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let z = self.logits(x);
        z.chunks(self.classes.max(1))
            .map(|row| {
                let mut r: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                activate(self.link, &mut r);
                r.into_iter().map(|v| v as f32).collect()
            })
            .collect()
    }
}

fn logits(weight: &[f32], x: &[f32], dim: usize, classes: usize, bias: &[f32]) -> Vec<f32> {
    let n = x.len().checked_div(dim).unwrap_or(0);
    let mut z = vec![0f32; n * classes];
    // z [n, k] = x [n, d] · Wᵀ, W class-major [k, d]: Wᵀ's (row j, column c) is W[c·d + j].
    matmul_strided(
        &mut z,
        (n, dim, classes),
        (x, 1, dim),
        (weight, dim, 1),
        false,
        gemm::Parallelism::Rayon(rayon::current_num_threads()),
    );
    for row in z.chunks_mut(classes.max(1)) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
    z
}

fn activate(link: Link, z: &mut [f64]) {
    match link {
        Link::Softmax => {
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
        Link::Sigmoid => {
            for v in z.iter_mut() {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
        }
    }
}

/// The problem a fit works on, with its parameter layout `theta = [W (k×d, class-major) | b (k)]`.
struct Problem<'a> {
    rows: Rows<'a>,
    classes: usize,
    link: Link,
    total_weight: f64,
}

impl Problem<'_> {
    /// Mean loss, accuracy and (with `grad`) the gradient of the mean loss at `theta`.
    fn evaluate(&self, theta: &[f64], grad: bool) -> (f64, f64, Vec<f64>) {
        let (d, k) = (self.rows.dim, self.classes);
        let n = self.rows.len();
        let w: Vec<f32> = theta[..k * d].iter().map(|&v| v as f32).collect();
        let b: Vec<f32> = theta[k * d..].iter().map(|&v| v as f32).collect();
        let mut z = logits(&w, self.rows.x, d, k, &b);
        let chunk = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let scale = 1.0 / self.total_weight;
        // Turn each row of logits into its scaled residual (p − y)·w/Σw in place.
        let (loss, correct): (f64, f64) = z
            .par_chunks_mut(chunk * k)
            .enumerate()
            .map(|(c, block)| {
                let (mut loss, mut correct) = (0.0, 0.0);
                let mut p = vec![0f64; k];
                for (r, row) in block.chunks_mut(k).enumerate() {
                    let i = c * chunk + r;
                    let wi = self
                        .rows
                        .weights
                        .and_then(|w| w.get(i))
                        .copied()
                        .unwrap_or(1.0) as f64;
                    for (pv, zv) in p.iter_mut().zip(row.iter()) {
                        *pv = *zv as f64;
                    }
                    match self.link {
                        Link::Softmax => {
                            let y = self.rows.labels.get(i).copied().unwrap_or(0) as usize;
                            let best = p
                                .iter()
                                .enumerate()
                                .max_by(|a, b| a.1.total_cmp(b.1))
                                .map_or(0, |(j, _)| j);
                            correct += f64::from(u8::from(best == y));
                            activate(Link::Softmax, &mut p);
                            loss -= wi * p.get(y).copied().unwrap_or(1.0).max(1e-300).ln();
                            if let Some(py) = p.get_mut(y) {
                                *py -= 1.0;
                            }
                        }
                        Link::Sigmoid => {
                            let t = self.rows.targets.get(i * k..(i + 1) * k).unwrap_or(&[]);
                            let mut hits = 0.0;
                            for (j, pv) in p.iter_mut().enumerate() {
                                let tj = t.get(j).copied().unwrap_or(0.0) as f64;
                                let zj = *pv;
                                // log(1 + e^z) − t·z, computed stably.
                                loss += wi * (zj.max(0.0) + (-zj.abs()).exp().ln_1p() - tj * zj);
                                hits += f64::from(u8::from((zj >= 0.0) == (tj >= 0.5)));
                                *pv = 1.0 / (1.0 + (-zj).exp()) - tj;
                            }
                            correct += hits / k.max(1) as f64;
                        }
                    }
                    for (zv, pv) in row.iter_mut().zip(&p) {
                        *zv = (pv * wi * scale) as f32;
                    }
                }
                (loss, correct)
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        let mean_loss = loss * scale;
        let accuracy = correct / n.max(1) as f64;
        if !grad {
            return (mean_loss, accuracy, Vec::new());
        }
        // gW [k, d] = Dᵀ [k, n] · X [n, d]; Dᵀ's (row c, column i) is D[i·k + c].
        let mut gw = vec![0f32; k * d];
        matmul_strided(
            &mut gw,
            (k, n, d),
            (&z, k, 1),
            (self.rows.x, 1, d),
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
        let mut g: Vec<f64> = gw.into_iter().map(|v| v as f64).collect();
        let mut gb = vec![0f64; k];
        for row in z.chunks(k) {
            for (a, v) in gb.iter_mut().zip(row) {
                *a += *v as f64;
            }
        }
        g.extend(gb);
        (mean_loss, accuracy, g)
    }
}

/// Objective with the penalty, its gradient, and the unpenalized loss and accuracy.
fn objective(p: &Problem, theta: &[f64], l2: f64) -> (f64, Vec<f64>, (f64, f64)) {
    let (loss, acc, mut g) = p.evaluate(theta, true);
    let w = p.classes * p.rows.dim;
    let mut reg = 0.0;
    for (gi, ti) in g[..w].iter_mut().zip(&theta[..w]) {
        reg += ti * ti;
        *gi += l2 * ti;
    }
    (loss + 0.5 * l2 * reg, g, (loss, acc))
}

/// Fits a model on `rows` (`classes` outputs, `link`) by L-BFGS (`learners::lbfgs`), starting
/// from `warm` when given (same shape), calling `on_iteration` after every accepted step; it
/// returns `Ok(true)` to stop early (or an error, e.g. cancellation, which ends the fit).
pub fn fit(
    rows: Rows,
    classes: usize,
    link: Link,
    settings: &Settings,
    warm: Option<&Logistic>,
    on_iteration: &mut dyn FnMut(&Iteration, &Logistic) -> Result<bool>,
) -> Result<Logistic> {
    let (n, d) = (rows.len(), rows.dim);
    if n == 0 || classes == 0 {
        return Err(Error::Unsupported(
            "logistic regression needs at least one row and one class".into(),
        ));
    }
    let total_weight = rows
        .weights
        .map_or(n as f64, |w| w.iter().map(|&v| v as f64).sum::<f64>())
        .max(1e-12);
    let problem = Problem {
        rows,
        classes,
        link,
        total_weight,
    };
    let theta: Vec<f64> = match warm.filter(|m| m.dim == d && m.classes == classes) {
        Some(m) => m.weight.iter().chain(&m.bias).map(|&v| v as f64).collect(),
        None => vec![0f64; classes * d + classes],
    };
    let model_of = |theta: &[f64]| Logistic {
        dim: d,
        classes,
        link,
        weight: theta[..classes * d].iter().map(|&v| v as f32).collect(),
        bias: theta[classes * d..].iter().map(|&v| v as f32).collect(),
    };
    let theta = lbfgs::minimize(
        theta,
        settings.max_iterations,
        settings.tolerance,
        &mut |theta| objective(&problem, theta, settings.l2),
        &mut |s| {
            let &(loss, accuracy) = s.extra;
            let it = Iteration {
                iteration: s.iteration,
                loss,
                accuracy,
                step: s.step,
            };
            on_iteration(&it, &model_of(s.theta))
        },
    )?;
    Ok(model_of(&theta))
}

/// Mean loss and accuracy of `model` on `rows` (as the fit measures them, without penalty).
pub fn score(model: &Logistic, rows: Rows) -> (f64, f64) {
    let problem = Problem {
        rows,
        classes: model.classes,
        link: model.link,
        total_weight: rows
            .weights
            .map_or(rows.len() as f64, |w| {
                w.iter().map(|&v| v as f64).sum::<f64>()
            })
            .max(1e-12),
    };
    let theta: Vec<f64> = model
        .weight
        .iter()
        .chain(&model.bias)
        .map(|&v| v as f64)
        .collect();
    let (loss, acc, _) = problem.evaluate(&theta, false);
    (loss, acc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn blobs(n: usize, classes: usize, dim: usize) -> (Vec<f32>, Vec<u32>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % classes;
            for j in 0..dim {
                let centre = if j % classes == c { 2.0 } else { 0.0 };
                let noise = (((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5) * 1.5;
                x.push(centre + noise);
            }
            y.push(c as u32);
        }
        (x, y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for link in [Link::Softmax, Link::Sigmoid] {
            let (x, y) = blobs(9, 3, 4);
            let targets: Vec<f32> = y
                .iter()
                .flat_map(|&c| {
                    (0..3).map(move |j| if j == c || j == (c + 1) % 3 { 1.0 } else { 0.0 })
                })
                .collect();
            let weights: Vec<f32> = (0..9).map(|i| 0.5 + i as f32 * 0.1).collect();
            let rows = Rows {
                x: &x,
                dim: 4,
                labels: &y,
                targets: &targets,
                weights: Some(&weights),
            };
            let p = Problem {
                rows,
                classes: 3,
                link,
                total_weight: weights.iter().map(|&w| w as f64).sum(),
            };
            let theta: Vec<f64> = (0..15).map(|i| (i as f64 * 0.37).sin() * 0.3).collect();
            let (_, g, _) = objective(&p, &theta, 0.1);
            for i in 0..theta.len() {
                let (mut a, mut b) = (theta.clone(), theta.clone());
                a[i] += 1e-4;
                b[i] -= 1e-4;
                let num = (objective(&p, &a, 0.1).0 - objective(&p, &b, 0.1).0) / 2e-4;
                // f32 products: agreement to ~1e-4 relative.
                assert!(
                    (num - g[i]).abs() < 2e-4 * num.abs().max(1.0),
                    "{link:?} param {i}: {num} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn separates_blobs_and_penalty_shrinks_weights() {
        let (x, y) = blobs(300, 3, 6);
        let rows = Rows {
            x: &x,
            dim: 6,
            labels: &y,
            targets: &[],
            weights: None,
        };
        let settings = |l2| Settings {
            l2,
            max_iterations: 200,
            tolerance: 1e-6,
        };
        let mut iterations = 0;
        let weak = fit(
            rows,
            3,
            Link::Softmax,
            &settings(1e-4),
            None,
            &mut |_, _| {
                iterations += 1;
                Ok(false)
            },
        )
        .unwrap();
        assert!(iterations > 2);
        let (_, acc) = score(&weak, rows);
        assert!(acc > 0.95, "accuracy {acc}");
        let strong = fit(rows, 3, Link::Softmax, &settings(1.0), None, &mut |_, _| {
            Ok(false)
        })
        .unwrap();
        let norm = |m: &Logistic| m.weight.iter().map(|v| v * v).sum::<f32>();
        assert!(norm(&strong) < 0.1 * norm(&weak));
        let p = weak.probabilities(&x[..6]);
        assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(
            p[0].iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0,
            0
        );
    }
}
