//! A multilayer perceptron for tables: the linear models' design (numbers with the
//! median imputed and clipped, categories one-hot) standardized with the training rows' mean
//! and standard deviation, then Linear → ReLU → Linear → ReLU → Linear (PyTorch
//! `nn.Sequential` names `mlp.0`, `mlp.2`, `mlp.4`). Softmax cross-entropy for classes,
//! squared error on the standardized target for numbers; shuffled mini-batches, AdamW with
//! warm-up and cosine decay, early stopping on validation loss with the best weights kept.
//! The arithmetic of training runs on plain slices (`mlp_net`); candle only holds the fitted
//! layers as tensors for export.

use crate::error::{Error, Result};
use crate::fit::optim::cosine_lr;
use crate::learners::gbt::Round;
use crate::learners::mlp_net::{self, AdamWStep, BatchSums, Net, Targets};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Checked MLP settings.
#[derive(Clone, Debug)]
pub struct MlpParams {
    /// Width of the first hidden layer; the second has half as many units.
    pub hidden: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without validation improvement before stopping (0 = never stop early).
    pub patience: usize,
    pub seed: u64,
    /// Weight of each class's rows in the training loss (classification; empty = all 1): the
    /// cross-entropy of a batch is Σ wᵢ·ℓᵢ / Σ wᵢ, as PyTorch's `weight=` (`class_weight = balanced`).
    pub class_weights: Vec<f64>,
}

/// A fitted MLP in design space.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// 0 for a regressor, else the number of classes (softmax over the outputs).
    pub classes: usize,
    pub in_dim: usize,
    /// `(weight [out, in] row-major, bias [out])` per linear layer.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
    pub input_mean: Vec<f32>,
    pub input_std: Vec<f32>,
    /// A regressor predicts `target_mean + target_std · output`.
    pub target_mean: f64,
    pub target_std: f64,
    pub best_epoch: usize,
    pub stopped_early: bool,
}

/// The hidden widths for `hidden`.
pub fn widths(hidden: usize) -> [usize; 2] {
    [hidden.max(1), (hidden / 2).max(1)]
}

/// Mean and standard deviation per column of row-major `x` (std 1 for constant columns).
fn standardization(x: &[f64], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / dim.max(1)).max(1) as f64;
    let mut mean = vec![0.0f64; dim];
    for row in x.chunks(dim.max(1)) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let mut var = vec![0.0f64; dim];
    for row in x.chunks(dim.max(1)) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let std = var
        .iter()
        .map(|v| if *v > 1e-12 { v.sqrt() as f32 } else { 1.0 })
        .collect();
    (mean.iter().map(|m| *m as f32).collect(), std)
}

fn standardized(x: &[f64], dim: usize, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(dim.max(1)) {
        for ((v, m), s) in row.iter().zip(mean).zip(std) {
            out.push((*v as f32 - m) / s);
        }
    }
    out
}

/// Fits an MLP on design rows `train.0` (row-major, `dim` columns) with targets `train.1`
/// (numbers, or class indices as f64 when `classes > 0`), early-stopping on `validation`.
/// `on_epoch` is called after every epoch; an error from it (a cancellation) stops training.
/// With validation rows the epoch's training loss and accuracy are the running means over its
/// batches (as Keras and PyTorch loops report them) rather than a second pass over every row.
pub fn fit(
    train: (&[f64], &[f64]),
    validation: Option<(&[f64], &[f64])>,
    dim: usize,
    classes: usize,
    params: &MlpParams,
    on_epoch: &mut dyn FnMut(&Round) -> Result<()>,
) -> Result<Mlp> {
    let (x, y) = train;
    let n = y.len();
    if n == 0 || x.len() != n * dim {
        return Err(Error::Unsupported(
            "the MLP needs at least one training row".into(),
        ));
    }
    let (mean, std) = standardization(x, dim);
    let (target_mean, target_std) = if classes == 0 {
        let m = y.iter().sum::<f64>() / n as f64;
        let v = y.iter().map(|t| (t - m) * (t - m)).sum::<f64>() / n as f64;
        (m, if v > 1e-24 { v.sqrt() } else { 1.0 })
    } else {
        (0.0, 1.0)
    };
    // Class indices as f32 (exact below 2^24), or the standardized target.
    let targets = |y: &[f64]| -> Vec<f32> {
        if classes == 0 {
            y.iter()
                .map(|v| ((v - target_mean) / target_std) as f32)
                .collect()
        } else {
            y.iter().map(|v| *v as f32).collect()
        }
    };
    let xs = standardized(x, dim, &mean, &std);
    let ys = targets(y);
    let class_weights: Vec<f32> = if classes > 0 && !params.class_weights.is_empty() {
        (0..classes)
            .map(|c| params.class_weights.get(c).copied().unwrap_or(1.0) as f32)
            .collect()
    } else {
        Vec::new()
    };
    let val = validation
        .filter(|(_, vy)| !vy.is_empty())
        .map(|(vx, vy)| (standardized(vx, dim, &mean, &std), targets(vy)));
    let [h1, h2] = widths(params.hidden);
    let outputs = classes.max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed ^ 0x31F);
    let mut init = Vec::new();
    for (i, o) in [(dim, h1), (h1, h2), (h2, outputs)] {
        // PyTorch's default initialization: uniform ±1/√fan_in.
        let bound = 1.0 / (i.max(1) as f32).sqrt();
        let w: Vec<f32> = (0..i * o)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let b: Vec<f32> = (0..o).map(|_| rng.random_range(-bound..bound)).collect();
        init.push((w, b));
    }
    let mut net = Net::new(init, dim);
    // Loss per row in the target's units (squared error is on the standardized target).
    let unit = if classes == 0 {
        target_std * target_std
    } else {
        1.0
    };
    let evaluate = |layers: &[(Vec<f32>, Vec<f32>)], x: &[f32], y: &[f32]| -> (f64, Option<f64>) {
        let t = Targets {
            values: y,
            classes,
            class_weights: &[],
        };
        let sums = mlp_net::evaluate(layers, dim, x, &t);
        let rows = y.len().max(1) as f64;
        (
            sums.loss * unit / rows,
            (classes > 0).then(|| sums.correct as f64 / rows),
        )
    };
    let batch = params.batch_size.clamp(1, n);
    let steps_per_epoch = n.div_ceil(batch);
    let epochs = params.epochs.max(1);
    let total_steps = steps_per_epoch * epochs;
    let warmup = (total_steps / 20).min(steps_per_epoch * 2).max(1);
    let mut best: Option<(f64, usize, Vec<(Vec<f32>, Vec<f32>)>)> = None;
    let mut since_best = 0;
    let mut stopped_early = false;
    let mut order: Vec<u32> = (0..n as u32).collect();
    let (mut xb, mut yb) = (Vec::with_capacity(batch * dim), Vec::with_capacity(batch));
    for epoch in 1..=epochs {
        let mut shuffle = rand::rngs::StdRng::seed_from_u64(
            params.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        order.shuffle(&mut shuffle);
        let mut running = BatchSums::default();
        for (step, chunk) in order.chunks(batch).enumerate() {
            let learning_rate = cosine_lr(
                params.learning_rate,
                (epoch - 1) * steps_per_epoch + step,
                total_steps,
                warmup,
            );
            xb.clear();
            yb.clear();
            for &i in chunk {
                let i = i as usize;
                xb.extend_from_slice(xs.get(i * dim..(i + 1) * dim).unwrap_or(&[]));
                yb.push(ys.get(i).copied().unwrap_or(0.0));
            }
            let t = Targets {
                values: &yb,
                classes,
                class_weights: &class_weights,
            };
            let step = AdamWStep {
                learning_rate,
                weight_decay: params.weight_decay,
            };
            let Some(sums) = net.train_step(&xb, chunk.len(), &t, step) else {
                return Err(Error::Diverged(format!(
                    "MLP training loss became infinite or NaN at epoch {epoch}; lower mlp_learning_rate (now {})",
                    params.learning_rate
                )));
            };
            running.loss += sums.loss;
            running.correct += sums.correct;
        }
        let current = net.weights();
        let (train_loss, train_accuracy) = match &val {
            Some(_) => (
                running.loss * unit / n as f64,
                (classes > 0).then(|| running.correct as f64 / n as f64),
            ),
            None => evaluate(&current, &xs, &ys),
        };
        let (validation_loss, validation_accuracy) = match &val {
            Some((vx, vy)) => {
                let (l, a) = evaluate(&current, vx, vy);
                (Some(l), a)
            }
            None => (None, None),
        };
        on_epoch(&Round {
            iteration: epoch,
            train_loss,
            validation_loss,
            train_accuracy,
            validation_accuracy,
        })?;
        let watched = validation_loss.unwrap_or(train_loss);
        if best
            .as_ref()
            .is_none_or(|(l, _, _)| watched < l - 1e-6 * l.abs().max(1e-12))
        {
            best = Some((watched, epoch, current));
            since_best = 0;
        } else {
            since_best += 1;
            if params.patience > 0 && val.is_some() && since_best >= params.patience {
                stopped_early = true;
                break;
            }
        }
    }
    let Some((_, best_epoch, layers)) = best else {
        return Err(Error::Unsupported("the MLP trained no epoch".into()));
    };
    Ok(Mlp {
        classes,
        in_dim: dim,
        layers,
        input_mean: mean,
        input_std: std,
        target_mean,
        target_std,
        best_epoch,
        stopped_early,
    })
}

impl Mlp {
    pub fn outputs(&self) -> usize {
        self.classes.max(1)
    }

    /// The hidden widths, from the weights.
    pub fn hidden(&self) -> Vec<usize> {
        self.layers
            .iter()
            .take(self.layers.len().saturating_sub(1))
            .map(|(_, b)| b.len())
            .collect()
    }

    /// The layers as tensors `(weight [out, in], bias [out])`.
    pub fn tensors(&self) -> Result<Vec<(Tensor, Tensor)>> {
        let mut out = Vec::new();
        let mut fan_in = self.in_dim;
        for (w, b) in &self.layers {
            let o = b.len();
            out.push((
                Tensor::from_slice(w, (o, fan_in), &Device::Cpu)?,
                Tensor::from_slice(b, o, &Device::Cpu)?,
            ));
            fan_in = o;
        }
        Ok(out)
    }

    /// Raw outputs (class scores, or the predicted number) of one design row.
    pub fn raw(&self, row: &[f64]) -> Vec<f64> {
        let mut h: Vec<f32> = row
            .iter()
            .zip(&self.input_mean)
            .zip(&self.input_std)
            .map(|((v, m), s)| (*v as f32 - m) / s)
            .collect();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let fan_in = h.len();
            let mut next: Vec<f32> = b
                .iter()
                .enumerate()
                .map(|(o, bias)| {
                    let wo = w.get(o * fan_in..(o + 1) * fan_in).unwrap_or(&[]);
                    bias + wo.iter().zip(&h).map(|(a, x)| a * x).sum::<f32>()
                })
                .collect();
            if i + 1 < self.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        h.into_iter()
            .map(|v| {
                if self.classes == 0 {
                    self.target_mean + self.target_std * f64::from(v)
                } else {
                    f64::from(v)
                }
            })
            .collect()
    }

    /// Raw outputs of design rows `x` (row-major), in parallel.
    pub fn raw_all(&self, x: &[f64]) -> Vec<Vec<f64>> {
        x.par_chunks(self.in_dim.max(1))
            .map(|row| self.raw(row))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn params() -> MlpParams {
        MlpParams {
            hidden: 32,
            epochs: 60,
            batch_size: 64,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            patience: 8,
            seed: 3,
            class_weights: Vec::new(),
        }
    }

    /// Two numbers in [-1, 1] (the second on a large scale) and y = x0² + sin(3·x1/100).
    fn generated(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a: f64 = rng.random_range(-1.0..1.0);
            let b: f64 = rng.random_range(-100.0..100.0);
            x.extend([a, b]);
            y.push(a * a + (3.0 * b / 100.0).sin());
        }
        (x, y)
    }

    #[test]
    fn regression_fits_a_nonlinear_function_and_is_deterministic() {
        let (x, y) = generated(2000, 1);
        let (vx, vy) = generated(500, 2);
        let y1000: Vec<f64> = y.iter().map(|v| 1000.0 + 50.0 * v).collect();
        let vy1000: Vec<f64> = vy.iter().map(|v| 1000.0 + 50.0 * v).collect();
        let mut epochs = 0;
        let m = fit(
            (&x, &y1000),
            Some((&vx, &vy1000)),
            2,
            0,
            &params(),
            &mut |r| {
                epochs = r.iteration;
                Ok(())
            },
        )
        .unwrap();
        let pred = m.raw_all(&vx);
        let mse: f64 = pred
            .iter()
            .zip(&vy1000)
            .map(|(p, t)| (p[0] - t).powi(2))
            .sum::<f64>()
            / vy.len() as f64;
        let var: f64 = {
            let mean = vy1000.iter().sum::<f64>() / vy.len() as f64;
            vy1000.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vy.len() as f64
        };
        // a linear model leaves the x0² part (~1/3 of the variance) unexplained
        assert!(mse < 0.05 * var, "mse {mse} var {var}");
        assert!(m.best_epoch <= epochs);
        let again = fit(
            (&x, &y1000),
            Some((&vx, &vy1000)),
            2,
            0,
            &params(),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn classification_learns_a_ring_and_early_stops() {
        // class 1 inside the ring x0² + (x1/100)² < 0.5: no linear boundary
        let (x, y) = generated(3000, 4);
        let label = |x: &[f64]| -> Vec<f64> {
            x.chunks(2)
                .map(|r| f64::from(u8::from(r[0] * r[0] + (r[1] / 100.0).powi(2) < 0.5)))
                .collect()
        };
        let (vx, _) = generated(600, 5);
        let (t, vt) = (label(&x), label(&vx));
        let _ = y;
        let mut last = None;
        let mut p = params();
        p.epochs = 300;
        let m = fit((&x, &t), Some((&vx, &vt)), 2, 2, &p, &mut |r| {
            last = Some(r.clone());
            Ok(())
        })
        .unwrap();
        let r = last.unwrap();
        assert!(m.stopped_early && r.iteration < 300, "{r:?}");
        let pred = m.raw_all(&vx);
        let acc = pred
            .iter()
            .zip(&vt)
            .filter(|(p, t)| usize::from(p[1] > p[0]) == **t as usize)
            .count() as f64
            / vt.len() as f64;
        assert!(acc > 0.95, "accuracy {acc}");
        assert_eq!(m.hidden(), [32, 16]);
    }
}
