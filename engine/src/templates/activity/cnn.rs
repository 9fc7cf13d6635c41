//! The activity CNN: per-channel standardization, three 1-D convolutions of kernel 5 (stride 1,
//! 2, 2; `width`, 2·`width`, 2·`width` filters) with ReLU, the mean over time, dropout and a
//! linear classifier — small enough to train in seconds on a laptop CPU and to run on a watch.
//! Training: AdamW with warm-up + cosine decay, fresh augmentation every epoch (jitter, per-channel
//! scaling, a small time warp, a random rotation of each x/y/z group), early stopping on
//! validation window accuracy; the best epoch's weights are kept.

use super::params::ActivityParams;
use crate::error::{Error, Result};
use crate::fit::optim::{AdamW, cosine_lr};
use crate::train::{EpochMetrics, Event, Phase, RunContext};
use candle_core::{D, DType, Device, Module, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Linear, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Kernel size of every convolution.
pub const KERNEL: usize = 5;
/// Stride of each convolution.
pub const STRIDES: [usize; 3] = [1, 2, 2];

/// The network's shape (stored in `config.json` as `cnn`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    pub channels: usize,
    pub window: usize,
    pub width: usize,
    pub num_classes: usize,
    pub dropout: f32,
}

impl CnnConfig {
    /// Filters of each convolution.
    pub fn filters(&self) -> [usize; 3] {
        [self.width, 2 * self.width, 2 * self.width]
    }
}

/// The network with its input standardization.
pub struct ActivityCnn {
    pub cfg: CnnConfig,
    pub convs: Vec<Conv1d>,
    pub classifier: Linear,
    /// Per-channel mean and 1 / standard deviation of the training windows, `[1, C, 1]`.
    pub mean: Tensor,
    pub inv_std: Tensor,
    pub device: Device,
}

impl ActivityCnn {
    /// Builds the network over `vb` (names `features.{0,1,2}`, `classifier`).
    pub fn new(cfg: CnnConfig, mean: &[f32], inv_std: &[f32], vb: VarBuilder) -> Result<Self> {
        let device = vb.device().clone();
        let mut convs = Vec::new();
        let mut c_in = cfg.channels;
        for (i, (&f, &s)) in cfg.filters().iter().zip(&STRIDES).enumerate() {
            let conv_cfg = Conv1dConfig {
                padding: KERNEL / 2,
                stride: s,
                ..Default::default()
            };
            convs.push(candle_nn::conv1d(
                c_in,
                f,
                KERNEL,
                conv_cfg,
                vb.pp(format!("features.{i}")),
            )?);
            c_in = f;
        }
        let classifier = candle_nn::linear(c_in, cfg.num_classes, vb.pp("classifier"))?;
        let c = cfg.channels;
        Ok(Self {
            mean: Tensor::from_vec(mean.to_vec(), (1, c, 1), &device)?,
            inv_std: Tensor::from_vec(inv_std.to_vec(), (1, c, 1), &device)?,
            cfg,
            convs,
            classifier,
            device,
        })
    }

    /// Windows (`[window, channels]` row-major each) as a standardized `[B, C, W]` batch.
    pub fn input(&self, windows: &[&[f32]]) -> Result<Tensor> {
        let (w, c) = (self.cfg.window, self.cfg.channels);
        let mut flat = Vec::with_capacity(windows.len() * w * c);
        for x in windows {
            if x.len() != w * c {
                return Err(Error::Unsupported(format!(
                    "a window of {} values, the network takes {w} × {c}",
                    x.len()
                )));
            }
            flat.extend_from_slice(x);
        }
        let x = Tensor::from_vec(flat, (windows.len(), w, c), &self.device)?
            .transpose(1, 2)?
            .contiguous()?;
        Ok(x.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?)
    }

    /// Logits of a standardized batch; `dropout_seed` turns dropout on (training).
    pub fn forward(&self, x: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let mut h = x.clone();
        for conv in &self.convs {
            h = conv.forward(&h)?.relu()?;
        }
        let mut h = h.mean(D::Minus1)?;
        if let Some(seed) = dropout_seed
            && self.cfg.dropout > 0.0
        {
            let keep = 1.0 - self.cfg.dropout;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mask: Vec<f32> = (0..h.elem_count())
                .map(|_| {
                    if rng.random::<f32>() < keep {
                        1.0 / keep
                    } else {
                        0.0
                    }
                })
                .collect();
            h = h.mul(&Tensor::from_vec(mask, h.dims(), &self.device)?)?;
        }
        Ok(self.classifier.forward(&h)?)
    }

    /// Class probabilities of windows, in batches.
    pub fn probabilities(&self, windows: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(256) {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            let logits = self.forward(&self.input(&refs)?, None)?;
            let p = candle_nn::ops::softmax(&logits, D::Minus1)?;
            out.extend(p.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

/// Per-channel mean and 1 / spread (floored at 1e-3) of `windows`.
pub fn channel_stats(windows: &[Vec<f32>], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let c = channels.max(1);
    let (mut sum, mut sq, mut n) = (vec![0f64; c], vec![0f64; c], 0f64);
    for w in windows {
        for row in w.chunks_exact(c) {
            for (i, &v) in row.iter().enumerate() {
                sum[i] += v as f64;
                sq[i] += (v as f64) * (v as f64);
            }
            n += 1.0;
        }
    }
    let n = n.max(1.0);
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let inv: Vec<f32> = sq
        .iter()
        .zip(&sum)
        .map(|(q, s)| (1.0 / (q / n - (s / n).powi(2)).max(0.0).sqrt().max(1e-3)) as f32)
        .collect();
    (mean, inv)
}

/// A rotation matrix of `angle` radians about a random unit axis.
fn rotation(rng: &mut impl Rng, angle: f32) -> [[f32; 3]; 3] {
    let (mut ax, mut ay, mut az) = (
        rng.random_range(-1.0..1.0f32),
        rng.random_range(-1.0..1.0f32),
        rng.random_range(-1.0..1.0f32),
    );
    let n = (ax * ax + ay * ay + az * az).sqrt().max(1e-6);
    (ax, ay, az) = (ax / n, ay / n, az / n);
    let (s, c) = angle.sin_cos();
    let t = 1.0 - c;
    [
        [t * ax * ax + c, t * ax * ay - s * az, t * ax * az + s * ay],
        [t * ax * ay + s * az, t * ay * ay + c, t * ay * az - s * ax],
        [t * ax * az - s * ay, t * ay * az + s * ax, t * az * az + c],
    ]
}

/// One augmented copy of a raw window: time warp (speed 0.9–1.1), rotation of each x/y/z group
/// (up to 30° about a random axis), per-channel scaling (0.9–1.1) and jitter (±5 % of the
/// channel's spread).
pub fn augment(
    window: &[f32],
    channels: usize,
    groups: &[[usize; 3]],
    inv_std: &[f32],
    rng: &mut impl Rng,
) -> Vec<f32> {
    let c = channels.max(1);
    let len = window.len() / c;
    let speed = rng.random_range(0.9..1.1f32);
    let span = (len.saturating_sub(1)) as f32 * speed;
    let offset = if span < (len.saturating_sub(1)) as f32 {
        rng.random_range(0.0..=((len - 1) as f32 - span))
    } else {
        0.0
    };
    let mut out = vec![0f32; window.len()];
    for t in 0..len {
        let pos = (offset + t as f32 * speed).clamp(0.0, (len.saturating_sub(1)) as f32);
        let i0 = pos.floor() as usize;
        let i1 = (i0 + 1).min(len.saturating_sub(1));
        let f = pos - i0 as f32;
        for ch in 0..c {
            let a = window.get(i0 * c + ch).copied().unwrap_or(0.0);
            let b = window.get(i1 * c + ch).copied().unwrap_or(0.0);
            if let Some(o) = out.get_mut(t * c + ch) {
                *o = a + f * (b - a);
            }
        }
    }
    for g in groups {
        let angle = rng.random_range(-0.52..0.52f32);
        let r = rotation(rng, angle);
        for row in out.chunks_exact_mut(c) {
            let v = [row[g[0]], row[g[1]], row[g[2]]];
            for (k, &i) in g.iter().enumerate() {
                row[i] = r[k][0] * v[0] + r[k][1] * v[1] + r[k][2] * v[2];
            }
        }
    }
    let scales: Vec<f32> = (0..c).map(|_| rng.random_range(0.9..1.1f32)).collect();
    for row in out.chunks_exact_mut(c) {
        for (ch, v) in row.iter_mut().enumerate() {
            let spread = 1.0 / inv_std.get(ch).copied().unwrap_or(1.0).max(1e-6);
            *v = *v * scales[ch] + rng.random_range(-0.05..0.05f32) * spread;
        }
    }
    out
}

/// How the CNN's training went.
pub struct CnnOutcome {
    pub history: Vec<EpochMetrics>,
    pub best_epoch: usize,
    pub stopped_early: bool,
}

/// Window-level validation loss and accuracy.
fn validate(net: &ActivityCnn, windows: &[(Vec<f32>, usize)]) -> Result<(f64, f64)> {
    let x: Vec<Vec<f32>> = windows.iter().map(|(w, _)| w.clone()).collect();
    let probs = net.probabilities(&x)?;
    let (mut loss, mut correct) = (0.0, 0usize);
    for (p, (_, l)) in probs.iter().zip(windows) {
        loss -= (p.get(*l).copied().unwrap_or(0.0).max(1e-7) as f64).ln();
        correct += usize::from(crate::eval::metrics::argmax(p) == *l);
    }
    let n = windows.len().max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

fn vars_of(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Unsupported("variable map lock poisoned".into()))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// The trained weights by name.
pub fn tensors_of(varmap: &VarMap) -> Result<Vec<(String, Tensor)>> {
    Ok(vars_of(varmap)?
        .into_iter()
        .map(|(k, v)| (k, v.as_tensor().clone()))
        .collect())
}

/// Seeded Kaiming-uniform weights, zero biases.
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xac71_0177);
    for (_, var) in vars_of(varmap)? {
        let dims = var.dims().to_vec();
        let values: Vec<f32> = if dims.len() >= 2 {
            let fan_in: usize = dims.iter().skip(1).product();
            let bound = (6.0 / fan_in.max(1) as f32).sqrt();
            (0..var.elem_count())
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        } else {
            vec![0.0; var.elem_count()]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Trains the CNN on labelled windows; returns it with the best epoch's weights, its varmap
/// and the outcome.
pub fn train(
    ctx: &RunContext,
    p: &ActivityParams,
    cfg: CnnConfig,
    groups: &[[usize; 3]],
    train: &[(Vec<f32>, usize)],
    validation: &[(Vec<f32>, usize)],
) -> Result<(ActivityCnn, VarMap, CnnOutcome)> {
    let raw: Vec<Vec<f32>> = train.iter().map(|(w, _)| w.clone()).collect();
    let (mean, inv_std) = channel_stats(&raw, cfg.channels);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &ctx.device);
    let net = ActivityCnn::new(cfg, &mean, &inv_std, vb)?;
    let seed = ctx.project.seed;
    seeded_init(&varmap, seed)?;
    let vars = vars_of(&varmap)?;
    let trainable: Vec<(Var, bool)> = vars
        .iter()
        .map(|(_, v)| (v.clone(), v.rank() >= 2))
        .collect();
    let mut opt = AdamW::new(trainable, p.learning_rate, p.weight_decay)?;
    let bs = p.batch_size.max(2);
    let steps_per_epoch = train.len().div_ceil(bs).max(1);
    let total_steps = steps_per_epoch * p.epochs;
    let warmup = steps_per_epoch.min(total_steps / 10 + 1);
    let mut history = Vec::new();
    let mut best: Option<(usize, f64, f64, HashMap<String, Tensor>)> = None;
    let mut bad_epochs = 0usize;
    let mut stopped_early = false;
    let mut phase = ctx.phase(Phase::Training, p.epochs as u64);
    for epoch in 1..=p.epochs {
        let started = std::time::Instant::now();
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        for (step, batch) in order.chunks(bs).enumerate() {
            ctx.check()?;
            if batch.len() < 2 {
                continue;
            }
            let windows: Vec<Vec<f32>> = batch
                .iter()
                .filter_map(|&i| train.get(i))
                .map(|(w, _)| {
                    if p.augment && rng.random_bool(0.8) {
                        augment(w, net.cfg.channels, groups, &inv_std, &mut rng)
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let labels: Vec<u32> = batch
                .iter()
                .filter_map(|&i| train.get(i))
                .map(|(_, l)| *l as u32)
                .collect();
            let refs: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
            let x = net.input(&refs)?;
            let y = Tensor::from_vec(labels.clone(), labels.len(), &ctx.device)?;
            let dropout_seed = seed ^ ((epoch as u64) << 24) ^ (step as u64).wrapping_mul(0xD1B5);
            let logits = net.forward(&x, Some(dropout_seed))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            opt.learning_rate = cosine_lr(p.learning_rate, opt.step, total_steps, warmup);
            let loss_value = loss.to_scalar::<f32>()? as f64;
            crate::fit::diverge::check_loss(
                loss_value,
                epoch,
                "learning_rate",
                p.learning_rate,
                None,
            )?;
            opt.apply(&loss.backward()?)?;
            let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
            correct += pred.iter().zip(&labels).filter(|(a, b)| a == b).count();
            loss_sum += loss_value * labels.len() as f64;
            seen += labels.len();
        }
        let (val_loss, val_acc) = if validation.is_empty() {
            (None, None)
        } else {
            let (l, a) = validate(&net, validation)?;
            (Some(l), Some(a))
        };
        let metrics = EpochMetrics {
            epoch,
            epochs: p.epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: Some(correct as f64 / seen.max(1) as f64),
            validation_loss: val_loss,
            validation_accuracy: val_acc,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        history.push(metrics);
        let (acc, loss) = (val_acc.unwrap_or(0.0), val_loss.unwrap_or(0.0));
        let improved = match &best {
            None => true,
            Some((_, ba, bl, _)) => {
                validation.is_empty() || acc > *ba || (acc == *ba && loss < *bl)
            }
        };
        if improved {
            let snap = vars
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
                .collect::<Result<HashMap<_, _>>>()?;
            best = Some((epoch, acc, loss, snap));
            bad_epochs = 0;
        } else {
            bad_epochs += 1;
        }
        phase.set(epoch as u64);
        if p.patience > 0 && bad_epochs >= p.patience && epoch < p.epochs {
            stopped_early = true;
            break;
        }
    }
    let best_epoch = match &best {
        Some((e, _, _, t)) => {
            for (k, v) in &vars {
                if let Some(t) = t.get(k) {
                    v.set(t)?;
                }
            }
            *e
        }
        None => history.len(),
    };
    Ok((
        net,
        varmap,
        CnnOutcome {
            history,
            best_epoch,
            stopped_early,
        },
    ))
}
