//! The MLP's arithmetic on plain f32 slices: a stack of fully connected layers with ReLU
//! between them, its forward pass over a batch of rows, the backward pass of softmax
//! cross-entropy (optionally class-weighted) or squared error, and the AdamW step (the same
//! update as `fit::optim::AdamW`'s fused CPU kernel, in `mlp_adamw`). A batch is split into shards of 128
//! rows, each taken forward and backward on its own thread, and their gradients summed in a
//! fixed order, so the model does not depend on the number of threads. Matrix products go
//! through `gemm` (the kernel candle itself calls) with buffers reused from step to step: on
//! the small batches of a table MLP, candle's per-op allocations and autograd graph cost
//! several times the arithmetic.

use crate::learners::mlp_adamw::ParamUpdate;
use crate::ops::pointwise::matmul_strided;
use gemm::Parallelism;

/// One linear layer with its AdamW moments.
#[derive(Clone, Debug)]
struct Layer {
    fan_in: usize,
    fan_out: usize,
    /// `[fan_out, fan_in]` row-major (PyTorch's `nn.Linear` layout).
    weight: Vec<f32>,
    bias: Vec<f32>,
    moments_weight: (Vec<f32>, Vec<f32>),
    moments_bias: (Vec<f32>, Vec<f32>),
}

/// AdamW settings of one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamWStep {
    pub learning_rate: f64,
    pub weight_decay: f64,
}

/// The loss of one batch: `targets` are class indices (as f32) with `classes > 0`, else the
/// standardized numbers.
#[derive(Clone, Copy)]
pub(crate) struct Targets<'a> {
    pub values: &'a [f32],
    pub classes: usize,
    /// Weight per class (empty = every row weighs 1).
    pub class_weights: &'a [f32],
}

/// Per-batch sums: unweighted loss (cross-entropy, or squared error) and correct predictions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BatchSums {
    pub loss: f64,
    pub correct: usize,
}

impl BatchSums {
    fn add(self, other: Self) -> Self {
        Self {
            loss: self.loss + other.loss,
            correct: self.correct + other.correct,
        }
    }
}

/// Rows of a batch one thread takes through forward and backward. Fixed, so the gradient sums
/// (and the fitted model) do not depend on the number of threads.
const SHARD_ROWS: usize = 128;

/// Products inside one shard are too small to split across threads.
const SERIAL: Parallelism = Parallelism::None;

/// One shard's scratch: every layer's output of its forward pass (`[rows, fan_out]`, after
/// ReLU for the hidden layers), the gradient at the current layer's output and the one below,
/// and its share of every layer's gradient.
#[derive(Clone, Debug, Default)]
struct Shard {
    activations: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    grads: Vec<(Vec<f32>, Vec<f32>)>,
}

/// A fully connected network with its optimizer state and per-shard scratch buffers.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    layers: Vec<Layer>,
    shards: Vec<Shard>,
    step: usize,
}

impl Net {
    /// Layers `(weight [out, in], bias [out])` with zero moments.
    pub(crate) fn new(layers: Vec<(Vec<f32>, Vec<f32>)>, fan_in: usize) -> Self {
        let mut fan_in = fan_in;
        let layers = layers
            .into_iter()
            .map(|(weight, bias)| {
                let fan_out = bias.len();
                let layer = Layer {
                    fan_in,
                    fan_out,
                    moments_weight: (vec![0.0; weight.len()], vec![0.0; weight.len()]),
                    moments_bias: (vec![0.0; fan_out], vec![0.0; fan_out]),
                    weight,
                    bias,
                };
                fan_in = fan_out;
                layer
            })
            .collect::<Vec<_>>();
        Self {
            layers,
            shards: Vec::new(),
            step: 0,
        }
    }

    /// A copy of the weights and biases.
    pub(crate) fn weights(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers
            .iter()
            .map(|l| (l.weight.clone(), l.bias.clone()))
            .collect()
    }

    fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.fan_out)
    }

    /// One training step on a batch of `rows` rows of `x`: forward and backward by shards of
    /// [`SHARD_ROWS`] rows across threads, their gradients summed in a fixed order, then AdamW.
    /// Returns the batch's unweighted loss sum and correct count (before the update), or `None`
    /// when the loss is not finite (nothing is updated then).
    pub(crate) fn train_step(
        &mut self,
        x: &[f32],
        rows: usize,
        targets: &Targets<'_>,
        adamw: AdamWStep,
    ) -> Option<BatchSums> {
        use rayon::prelude::*;
        let fan_in = self.layers.first().map_or(1, |l| l.fan_in).max(1);
        let count = rows.div_ceil(SHARD_ROWS).max(1);
        if self.shards.len() < count {
            let fresh = Shard {
                grads: self
                    .layers
                    .iter()
                    .map(|l| (vec![0.0; l.weight.len()], vec![0.0; l.fan_out]))
                    .collect(),
                ..Shard::default()
            };
            self.shards.resize(count, fresh);
        }
        // The loss is normalized over the whole batch: the mean, or Σ wᵢ·ℓᵢ / Σ wᵢ.
        let normalizer = if targets.classes == 0 {
            rows as f32
        } else {
            targets
                .values
                .iter()
                .take(rows)
                .map(|y| class_weight(targets, *y))
                .sum::<f32>()
        }
        .max(1e-12);
        let layers = &self.layers;
        let sums = self
            .shards
            .par_iter_mut()
            .take(count)
            .zip(x.par_chunks(SHARD_ROWS * fan_in))
            .zip(targets.values.par_chunks(SHARD_ROWS))
            .map(|((shard, xs), ys)| {
                let t = Targets {
                    values: ys,
                    ..*targets
                };
                shard.forward_backward(layers, xs, ys.len(), &t, normalizer)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .fold(BatchSums::default(), BatchSums::add);
        if !sums.loss.is_finite() {
            return None;
        }
        self.adamw(adamw, count);
        Some(sums)
    }

    /// AdamW (β = 0.9, 0.999, ε = 1e-8; weight decay on the weights, not the biases) on the
    /// gradients of the first `count` shards, summed in shard order.
    fn adamw(&mut self, s: AdamWStep, count: usize) {
        use rayon::prelude::*;
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (0.9f64, 0.999f64);
        let update = ParamUpdate {
            learning_rate: s.learning_rate as f32,
            scale_m: (1.0 / (1.0 - b1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - b2.powi(t))) as f32,
            beta1: b1 as f32,
            beta2: b2 as f32,
        };
        let decay = (1.0 - s.learning_rate * s.weight_decay) as f32;
        // The shards' gradients summed into the first shard's, in shard order.
        if let Some((first, rest)) = self
            .shards
            .get_mut(..count)
            .and_then(|s| s.split_first_mut())
        {
            for shard in rest.iter() {
                for ((w, b), (gw, gb)) in first.grads.iter_mut().zip(&shard.grads) {
                    add_assign(w, gw);
                    add_assign(b, gb);
                }
            }
        }
        let Some(first) = self.shards.first() else {
            return;
        };
        for (l, (grad_weight, grad_bias)) in self.layers.iter_mut().zip(&first.grads) {
            // Elementwise, so chunks across threads give the same numbers as one pass.
            const CHUNK: usize = 4096;
            let (m, v) = &mut l.moments_weight;
            l.weight
                .par_chunks_mut(CHUNK)
                .zip(grad_weight.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| update.apply(p, g, m, v, decay));
            let (m, v) = &mut l.moments_bias;
            update.apply(&mut l.bias, grad_bias, m, v, 1.0);
        }
    }
}

/// `a += b` elementwise.
fn add_assign(a: &mut [f32], b: &[f32]) {
    for (a, b) in a.iter_mut().zip(b) {
        *a += b;
    }
}

/// The weight of a row of class `y` (1 without class weights or for regression).
fn class_weight(targets: &Targets<'_>, y: f32) -> f32 {
    targets
        .class_weights
        .get(y as usize)
        .copied()
        .unwrap_or(1.0)
}

impl Shard {
    /// Forward pass of `rows` rows of `x` through `layers`; the output is the last activation.
    fn forward(&mut self, layers: &[Layer], x: &[f32], rows: usize) {
        self.activations.resize(layers.len(), Vec::new());
        let last = layers.len().saturating_sub(1);
        for (i, layer) in layers.iter().enumerate() {
            let (below, rest) = self.activations.split_at_mut(i);
            let input: &[f32] = match below.last() {
                Some(a) => a,
                None => x,
            };
            let Some(out) = rest.first_mut() else {
                return;
            };
            forward_layer(layer, input, rows, out, i < last);
        }
    }

    /// Forward, loss and backward of one shard; its gradients land in `self.grads`.
    fn forward_backward(
        &mut self,
        layers: &[Layer],
        x: &[f32],
        rows: usize,
        targets: &Targets<'_>,
        normalizer: f32,
    ) -> BatchSums {
        self.forward(layers, x, rows);
        let outputs = layers.last().map_or(0, |l| l.fan_out);
        let Some(out) = self.activations.last() else {
            return BatchSums::default();
        };
        let sums = loss_and_delta(out, rows, outputs, targets, normalizer, &mut self.delta);
        self.backward(layers, x, rows);
        sums
    }

    /// Gradients of every layer from `self.delta` (the gradient at the output).
    fn backward(&mut self, layers: &[Layer], x: &[f32], rows: usize) {
        for (i, layer) in layers.iter().enumerate().rev() {
            let input: &[f32] = match i.checked_sub(1).and_then(|j| self.activations.get(j)) {
                Some(a) => a,
                None => x,
            };
            let Some((grad_weight, grad_bias)) = self.grads.get_mut(i) else {
                return;
            };
            let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
            // grad_weight [out, in] = deltaᵀ [out, rows] · input [rows, in]
            matmul_strided(
                grad_weight,
                (fan_out, rows, fan_in),
                (&self.delta, fan_out, 1),
                (input, 1, fan_in),
                false,
                SERIAL,
            );
            grad_bias.iter_mut().for_each(|g| *g = 0.0);
            for row in self.delta.chunks_exact(fan_out).take(rows) {
                for (g, d) in grad_bias.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if i == 0 {
                break;
            }
            // delta below [rows, in] = delta [rows, out] · weight [out, in], through the ReLU.
            self.delta_below.resize(rows * fan_in, 0.0);
            matmul_strided(
                &mut self.delta_below,
                (rows, fan_out, fan_in),
                (&self.delta, 1, fan_out),
                (&layer.weight, 1, fan_in),
                false,
                SERIAL,
            );
            for (d, a) in self.delta_below.iter_mut().zip(input) {
                if *a <= 0.0 {
                    *d = 0.0;
                }
            }
            std::mem::swap(&mut self.delta, &mut self.delta_below);
        }
    }
}

/// `out [rows, fan_out] = input [rows, fan_in] · weightᵀ + bias`, then ReLU when `relu`.
fn forward_layer(layer: &Layer, input: &[f32], rows: usize, out: &mut Vec<f32>, relu: bool) {
    let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
    out.resize(rows * fan_out, 0.0);
    for row in out.chunks_exact_mut(fan_out).take(rows) {
        row.copy_from_slice(&layer.bias);
    }
    matmul_strided(
        out,
        (rows, fan_in, fan_out),
        (input, 1, fan_in),
        (&layer.weight, fan_in, 1),
        true,
        SERIAL,
    );
    if relu {
        out.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

/// The loss sums of `rows` outputs and `delta` = d(loss)/d(output) for a batch whose loss is
/// normalized by `normalizer`: the weighted mean cross-entropy Σ wᵢ·ℓᵢ / Σ wᵢ (PyTorch's
/// `weight=`; `normalizer` = Σ wᵢ over the batch), or the mean squared error (`normalizer` =
/// the batch's rows).
fn loss_and_delta(
    out: &[f32],
    rows: usize,
    outputs: usize,
    targets: &Targets<'_>,
    normalizer: f32,
    delta: &mut Vec<f32>,
) -> BatchSums {
    delta.resize(rows * outputs, 0.0);
    let mut sums = BatchSums::default();
    if targets.classes == 0 {
        let scale = 2.0 / normalizer;
        for ((d, o), y) in delta.iter_mut().zip(out).zip(targets.values).take(rows) {
            let e = o - y;
            sums.loss += f64::from(e * e);
            *d = scale * e;
        }
        return sums;
    }
    let rows_out = out
        .chunks_exact(outputs)
        .zip(delta.chunks_exact_mut(outputs));
    for ((z, d), y) in rows_out.zip(targets.values).take(rows) {
        let w = class_weight(targets, *y) / normalizer;
        let y = *y as usize;
        let (mut best, mut argmax) = (f32::NEG_INFINITY, 0);
        for (j, v) in z.iter().enumerate() {
            if *v > best {
                (best, argmax) = (*v, j);
            }
        }
        let mut sum = 0.0f32;
        for (dj, zj) in d.iter_mut().zip(z) {
            *dj = (zj - best).exp();
            sum += *dj;
        }
        let zy = z.get(y).copied().unwrap_or(best);
        sums.loss += f64::from(sum.ln() - (zy - best));
        sums.correct += usize::from(argmax == y);
        for (j, dj) in d.iter_mut().enumerate() {
            let p = *dj / sum;
            *dj = w * (p - f32::from(u8::from(j == y)));
        }
    }
    sums
}

/// Loss and correct-count sums of `layers` over rows `x` (standardized, row-major) against
/// `targets` (unweighted), in chunks across threads.
pub(crate) fn evaluate(
    layers: &[(Vec<f32>, Vec<f32>)],
    fan_in: usize,
    x: &[f32],
    targets: &Targets<'_>,
) -> BatchSums {
    use rayon::prelude::*;
    const CHUNK: usize = 2048;
    let net = Net::new(layers.to_vec(), fan_in);
    let outputs = net.outputs();
    x.par_chunks(CHUNK * fan_in.max(1))
        .zip(targets.values.par_chunks(CHUNK))
        .map(|(xc, yc)| {
            let mut shard = Shard::default();
            let rows = yc.len();
            shard.forward(&net.layers, xc, rows);
            let t = Targets {
                values: yc,
                class_weights: &[],
                ..*targets
            };
            let mut delta = Vec::new();
            shard
                .activations
                .last()
                .map(|out| loss_and_delta(out, rows, outputs, &t, 1.0, &mut delta))
                .unwrap_or_default()
        })
        // Summed in chunk order (a parallel reduce would associate by thread count).
        .collect::<Vec<_>>()
        .into_iter()
        .fold(BatchSums::default(), BatchSums::add)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The gradients of the backward pass against central finite differences of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let (dim, rows) = (3, 5);
        let x: Vec<f32> = (0..dim * rows)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let init = |n: usize, s: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0 * s)
                .collect()
        };
        let layers = vec![
            (init(4 * dim, 0.7), init(4, 0.1)),
            (init(2 * 4, 0.9), init(2, 0.2)),
            (init(3 * 2, 0.8), init(3, 0.3)),
        ];
        let y = [0.0f32, 2.0, 1.0, 2.0, 0.0];
        let weights = [1.0f32, 2.5, 0.5];
        let targets = Targets {
            values: &y,
            classes: 3,
            class_weights: &weights,
        };
        let loss = |layers: &[(Vec<f32>, Vec<f32>)]| -> f64 {
            // weighted mean cross-entropy, in f64
            let net = Net::new(layers.to_vec(), dim);
            let mut shard = Shard::default();
            shard.forward(&net.layers, &x, rows);
            let out = shard.activations.last().unwrap();
            let (mut total, mut wsum) = (0.0, 0.0);
            for (z, t) in out.chunks(3).zip(&y) {
                let m = z.iter().fold(f32::MIN, |a, b| a.max(*b)) as f64;
                let lse = m + z.iter().map(|v| (*v as f64 - m).exp()).sum::<f64>().ln();
                let w = weights[*t as usize] as f64;
                total += w * (lse - z[*t as usize] as f64);
                wsum += w;
            }
            total / wsum
        };
        // One shard of all rows, and shards of two rows summed, give the same gradients.
        let net = Net::new(layers.clone(), dim);
        let normalizer: f32 = y.iter().map(|t| weights[*t as usize]).sum();
        let grads = |shard_rows: usize| -> Vec<(Vec<f32>, Vec<f32>)> {
            let mut total: Vec<(Vec<f32>, Vec<f32>)> = layers
                .iter()
                .map(|(w, b)| (vec![0.0; w.len()], vec![0.0; b.len()]))
                .collect();
            for (xs, ys) in x.chunks(shard_rows * dim).zip(y.chunks(shard_rows)) {
                let mut shard = Shard {
                    grads: total.clone(),
                    ..Shard::default()
                };
                let t = Targets {
                    values: ys,
                    ..targets
                };
                shard.forward_backward(&net.layers, xs, ys.len(), &t, normalizer);
                for (acc, g) in total.iter_mut().zip(&shard.grads) {
                    acc.0.iter_mut().zip(&g.0).for_each(|(a, b)| *a += b);
                    acc.1.iter_mut().zip(&g.1).for_each(|(a, b)| *a += b);
                }
            }
            total
        };
        let whole = grads(rows);
        let split = grads(2);
        for (a, b) in whole.iter().zip(&split) {
            for (u, v) in a.0.iter().chain(&a.1).zip(b.0.iter().chain(&b.1)) {
                assert!((u - v).abs() < 1e-5, "{u} vs {v}");
            }
        }
        let h = 1e-2f32;
        for (li, (grad_weight, grad_bias)) in whole.iter().enumerate() {
            for (wi, g) in grad_weight.iter().enumerate() {
                let mut plus = layers.clone();
                plus[li].0[wi] += h;
                let mut minus = layers.clone();
                minus[li].0[wi] -= h;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
                assert!(
                    (numeric - *g as f64).abs() < 2e-3,
                    "layer {li} w{wi}: {numeric} vs {g}"
                );
            }
            for (bi, g) in grad_bias.iter().enumerate() {
                let mut plus = layers.clone();
                plus[li].1[bi] += h;
                let mut minus = layers.clone();
                minus[li].1[bi] -= h;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
                assert!(
                    (numeric - *g as f64).abs() < 2e-3,
                    "layer {li} b{bi}: {numeric} vs {g}"
                );
            }
        }
    }
}
