//! Training a classifier head on precomputed features: standardization, shuffled mini-batches,
//! AdamW with warm-up + cosine schedule, early stopping on validation loss (best weights kept),
//! a checkpoint every epoch, and a clear stop when the loss diverges.

use crate::error::{Error, Result};
use crate::export::st;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::nets::head::{Head, HeadKind};
use crate::train::context::RunContext;
use crate::train::event::{EpochMetrics, Event, Phase};
use candle_core::{D, DType, Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Features and labels held in host memory.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Row-major `[len, dim]`.
    pub x: Vec<f32>,
    pub dim: usize,
    pub labels: Vec<u32>,
    /// Multi-label data: row-major `[len, classes]` 0/1 targets (empty for single-label data,
    /// where `labels` holds one class per row).
    pub targets: Vec<f32>,
}

impl Features {
    pub fn new(dim: usize) -> Self {
        Self {
            x: Vec::new(),
            dim,
            labels: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// True when rows carry multi-label targets.
    pub fn is_multi_label(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Adds a multi-label row: `classes` are the indices of its labels among `num_classes`.
    pub fn push_multi(&mut self, row: &[f32], classes: &[u32], num_classes: usize) {
        self.x.extend_from_slice(row);
        self.labels.push(classes.first().copied().unwrap_or(0));
        let start = self.targets.len();
        self.targets.resize(start + num_classes, 0.0);
        for &c in classes {
            if let Some(t) = self.targets.get_mut(start + c as usize) {
                *t = 1.0;
            }
        }
    }

    /// The training targets as a tensor: class ids `[len]` (u32) or 0/1 `[len, classes]`.
    fn target_tensor(&self, num_classes: usize, device: &Device) -> Result<Tensor> {
        Ok(if self.is_multi_label() {
            Tensor::from_slice(&self.targets, (self.len(), num_classes), device)?
        } else {
            Tensor::from_slice(&self.labels, self.len(), device)?
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn push(&mut self, row: &[f32], label: u32) {
        self.x.extend_from_slice(row);
        self.labels.push(label);
    }

    fn tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.x, (self.len(), self.dim), device)?)
    }
}

/// Checked head-training settings.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub head: HeadKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without validation improvement before stopping (0 = never stop early).
    pub patience: usize,
    pub seed: u64,
}

/// A trained head and how training went.
pub struct FitOutcome {
    pub head: Head,
    /// Standardization of the input features (folded into the head on export).
    pub mean: Tensor,
    pub std: Tensor,
    pub history: Vec<EpochMetrics>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// Trained with independent sigmoids (multi-label) rather than one softmax.
    pub multi_label: bool,
}

impl FitOutcome {
    /// Class probabilities `[N, classes]` for raw features (sigmoids for multi-label heads).
    pub fn probabilities(&self, features: &Features, device: &Device) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(features.len());
        for start in (0..features.len()).step_by(4096) {
            let end = (start + 4096).min(features.len());
            let x = Tensor::from_slice(
                &features.x[start * features.dim..end * features.dim],
                (end - start, features.dim),
                device,
            )?;
            let z = x.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
            let logits = self.head.forward(&z, false, None)?;
            let p = if self.multi_label {
                candle_nn::ops::sigmoid(&logits)?
            } else {
                candle_nn::ops::softmax(&logits, D::Minus1)?
            };
            out.extend(p.to_dtype(DType::F32)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

/// Early-stopping bookkeeping, saved in every checkpoint so a resumed run decides the same.
struct Progress {
    history: Vec<EpochMetrics>,
    best_loss: f64,
    best_epoch: usize,
    best: Option<Vec<Tensor>>,
    since_best: usize,
    finished: bool,
}

/// Trains a head on `train`, early-stopping on `validation` when given. When the run is being
/// resumed (`ctx.resume`), training continues from `checkpoints/last.safetensors` and reaches the
/// same result as an uninterrupted run: every epoch's shuffle and dropout derive from the seed
/// and the epoch number alone.
pub fn fit(
    ctx: &RunContext,
    train: &Features,
    validation: Option<&Features>,
    num_classes: usize,
    cfg: &FitConfig,
) -> Result<FitOutcome> {
    let device = &ctx.device;
    if train.is_empty() {
        return Err(Error::Data {
            message: "no training examples are left after skipping unreadable files".into(),
            path: ctx.project.resolve(&ctx.project.data.train),
        });
    }
    let x = train.tensor(device)?;
    let (mean, std) = standardization(&x)?;
    let head = Head::new(cfg.head.clone(), train.dim, num_classes, cfg.seed, device)?;
    let vars: Vec<_> = head
        .layers
        .iter()
        .flat_map(|(w, b)| [(w.clone(), true), (b.clone(), false)])
        .collect();
    let mut opt = AdamW::new(vars, cfg.learning_rate, cfg.weight_decay)?;
    let (mean, std, mut progress) = starting_point(ctx, &head, &mut opt, mean, std)?;
    let xs = x.broadcast_sub(&mean)?.broadcast_div(&std)?;
    let multi = train.is_multi_label();
    let ys = train.target_tensor(num_classes, device)?;
    let val = match validation.filter(|v| !v.is_empty()) {
        Some(v) => Some((
            v.tensor(device)?
                .broadcast_sub(&mean)?
                .broadcast_div(&std)?,
            v.target_tensor(num_classes, device)?,
        )),
        None => None,
    };
    let n = train.len();
    let schedule = Schedule::new(n, cfg);

    let mut phase = ctx.phase(Phase::Training, cfg.epochs as u64);
    let started = std::time::Instant::now();
    let first = progress.history.len() + 1;
    phase.set(progress.history.len() as u64);
    let mut epoch = first;
    while epoch <= cfg.epochs && !progress.finished {
        let (loss_sum, correct) = train_epoch(
            ctx,
            &head,
            &mut opt,
            (&xs, &ys),
            multi,
            cfg,
            &schedule,
            epoch,
        )?;
        let (validation_loss, validation_accuracy) =
            validate(ctx, &head, val.as_ref(), multi, cfg, epoch)?;
        let metrics = EpochMetrics {
            epoch,
            epochs: cfg.epochs,
            train_loss: loss_sum / n as f64,
            train_accuracy: Some(correct as f64 / n as f64),
            validation_loss,
            validation_accuracy,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        progress.history.push(metrics);
        phase.set(epoch as u64);

        let watched = validation_loss.unwrap_or(loss_sum / n as f64);
        let improved = progress.note(&head, watched, epoch)?;
        let stop_early = cfg.patience > 0 && progress.since_best >= cfg.patience && val.is_some();
        progress.finished = stop_early || epoch == cfg.epochs;
        save_checkpoint(ctx, &head, &opt, &mean, &std, &progress, improved)?;
        epoch += 1;
    }
    let stopped_early = progress.history.len() < cfg.epochs;
    let best_epoch = progress.restore_best(&head)?;
    phase.set(cfg.epochs as u64);
    Ok(FitOutcome {
        head,
        mean,
        std,
        history: progress.history,
        best_epoch,
        stopped_early,
        multi_label: multi,
    })
}

/// The mean and standard deviation (at least 1e-3) of each feature column of `x`.
fn standardization(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let mean = x.mean(0)?;
    let std = x
        .broadcast_sub(&mean)?
        .sqr()?
        .mean(0)?
        .sqrt()?
        .maximum(1e-3)?;
    Ok((mean, std))
}

/// Where training starts: a resumed run's checkpoint (weights, optimizer, standardization and
/// early-stopping state), else a continued run's head and standardization, else the fresh head
/// with `mean` / `std`.
fn starting_point(
    ctx: &RunContext,
    head: &Head,
    opt: &mut AdamW,
    mean: Tensor,
    std: Tensor,
) -> Result<(Tensor, Tensor, Progress)> {
    let progress = Progress {
        history: Vec::new(),
        best_loss: f64::INFINITY,
        best_epoch: 0,
        best: None,
        since_best: 0,
        finished: false,
    };
    let restored = if ctx.resume {
        restore(ctx, head, opt)?
    } else {
        None
    };
    Ok(match restored {
        Some(restored) => restored,
        // A run that continues a finished one starts from its weights and standardization.
        None => match crate::train::extend::start_head(ctx, head)? {
            Some((m, s)) => (m, s, progress),
            None => (mean, std, progress),
        },
    })
}

/// Mini-batches and the learning-rate schedule of a run.
struct Schedule {
    batch: usize,
    steps_per_epoch: usize,
    total_steps: usize,
    warmup: usize,
    /// A step event every this many steps.
    step_every: usize,
}

impl Schedule {
    fn new(n: usize, cfg: &FitConfig) -> Self {
        let batch = cfg.batch_size.clamp(1, n);
        let steps_per_epoch = n.div_ceil(batch);
        let total_steps = steps_per_epoch * cfg.epochs;
        Self {
            batch,
            steps_per_epoch,
            total_steps,
            warmup: (total_steps / 20).min(steps_per_epoch * 2).max(1),
            step_every: (steps_per_epoch / 10).max(1),
        }
    }
}

/// One epoch of AdamW steps over the standardized rows `xs` / targets `ys`, shuffled by the
/// seed and the epoch alone; returns the summed loss and the count of correct rows.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    ctx: &RunContext,
    head: &Head,
    opt: &mut AdamW,
    (xs, ys): (&Tensor, &Tensor),
    multi: bool,
    cfg: &FitConfig,
    schedule: &Schedule,
    epoch: usize,
) -> Result<(f64, usize)> {
    let device = &ctx.device;
    let n = xs.dim(0)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        cfg.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    let (mut loss_sum, mut correct) = (0f64, 0usize);
    for (step, chunk) in order.chunks(schedule.batch).enumerate() {
        ctx.check()?;
        opt.learning_rate = cosine_lr(
            cfg.learning_rate,
            (epoch - 1) * schedule.steps_per_epoch + step,
            schedule.total_steps,
            schedule.warmup,
        );
        let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
        let xb = xs.index_select(&idx, 0)?;
        let yb = ys.index_select(&idx, 0)?;
        let dropout_seed = cfg.seed ^ ((epoch * 100_003 + step) as u64);
        let logits = head.forward(&xb, true, Some(dropout_seed))?;
        let loss = loss_of(&logits, &yb, multi)?;
        let loss_value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        crate::fit::diverge::check_loss(
            loss_value,
            epoch,
            "learning_rate",
            cfg.learning_rate,
            Some(&ctx.run_dir.checkpoints()),
        )?;
        opt.apply(&loss.backward()?)?;
        loss_sum += loss_value * chunk.len() as f64;
        correct += count_correct(&logits, &yb, multi)?;
        if step % schedule.step_every == 0 {
            ctx.emit(Event::Step {
                epoch,
                step,
                steps: schedule.steps_per_epoch,
                loss: loss_value,
            });
        }
    }
    Ok((loss_sum, correct))
}

/// Validation loss and accuracy after an epoch (none without validation rows); a diverged
/// validation loss stops the run.
fn validate(
    ctx: &RunContext,
    head: &Head,
    val: Option<&(Tensor, Tensor)>,
    multi: bool,
    cfg: &FitConfig,
    epoch: usize,
) -> Result<(Option<f64>, Option<f64>)> {
    let (validation_loss, validation_accuracy) = match val {
        Some((vx, vy)) => {
            let (l, a) = evaluate(head, vx, vy, multi)?;
            (Some(l), Some(a))
        }
        None => (None, None),
    };
    if let Some(l) = validation_loss {
        // Weights that overflowed on the last step show here first.
        crate::fit::diverge::check_loss(
            l,
            epoch,
            "learning_rate",
            cfg.learning_rate,
            Some(&ctx.run_dir.checkpoints()),
        )?;
    }
    Ok((validation_loss, validation_accuracy))
}

impl Progress {
    /// Records an epoch's watched loss: a copy of the weights when it improved on the best by
    /// more than 1e-4 (returns true), else one more epoch since the best.
    fn note(&mut self, head: &Head, watched: f64, epoch: usize) -> Result<bool> {
        let improved = watched < self.best_loss - 1e-4;
        if improved {
            self.best = Some(
                head.vars()
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?,
            );
            self.best_loss = watched;
            self.best_epoch = epoch;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        Ok(improved)
    }

    /// Puts the best epoch's weights back into `head`; returns that epoch (the last one run
    /// when no copy was kept).
    fn restore_best(&mut self, head: &Head) -> Result<usize> {
        Ok(match self.best.take() {
            Some(snapshot) => {
                for (v, t) in head.vars().iter().zip(snapshot) {
                    v.set(&t)?;
                }
                self.best_epoch
            }
            None => self.history.len(),
        })
    }
}

/// Cross-entropy for single-label targets; for multi-label 0/1 targets, binary cross-entropy
/// with logits averaged over labels, in the stable form max(z,0) − z·t + log(1 + e^−|z|).
pub fn loss_of(logits: &Tensor, targets: &Tensor, multi_label: bool) -> Result<Tensor> {
    if !multi_label {
        return Ok(candle_nn::loss::cross_entropy(logits, targets)?);
    }
    let relu = logits.relu()?;
    let soft = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    Ok((relu - (logits * targets)?)?.add(&soft)?.mean_all()?)
}

/// Examples predicted right: the top class for single-label data; for multi-label data, every
/// label on the right side of 0.5 (exact match, the `accuracy` of the report).
fn count_correct(logits: &Tensor, labels: &Tensor, multi_label: bool) -> Result<usize> {
    if multi_label {
        let predicted = logits.ge(0f32)?.to_dtype(DType::F32)?;
        let wrong = predicted.ne(labels)?.to_dtype(DType::F32)?.sum(D::Minus1)?;
        return Ok(wrong
            .eq(0f32)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as usize);
    }
    let pred = logits.argmax(D::Minus1)?;
    Ok(pred
        .eq(labels)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()? as usize)
}

/// Mean loss and accuracy over a (standardized) set, in batches.
fn evaluate(head: &Head, x: &Tensor, y: &Tensor, multi: bool) -> Result<(f64, f64)> {
    let n = x.dim(0)?;
    let (mut loss, mut correct) = (0f64, 0usize);
    for start in (0..n).step_by(4096) {
        let len = 4096.min(n - start);
        let xb = x.narrow(0, start, len)?;
        let yb = y.narrow(0, start, len)?;
        let logits = head.forward(&xb, false, None)?;
        loss += loss_of(&logits, &yb, multi)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            * len as f64;
        correct += count_correct(&logits, &yb, multi)?;
    }
    Ok((loss / n as f64, correct as f64 / n as f64))
}

/// `checkpoints/last.safetensors` every epoch: head, standardization, optimizer moments, the best
/// weights so far and the early-stopping state — everything `--resume` needs.
/// `best.safetensors` holds the best head alone (for people who want it).
fn save_checkpoint(
    ctx: &RunContext,
    head: &Head,
    opt: &AdamW,
    mean: &Tensor,
    std: &Tensor,
    p: &Progress,
    improved: bool,
) -> Result<()> {
    let epoch = p.history.len();
    let unfolded = head.export_tensors(&mean.zeros_like()?, &std.ones_like()?)?;
    let mut tensors = unfolded.clone();
    tensors.push(("features.mean".into(), mean.clone()));
    tensors.push(("features.std".into(), std.clone()));
    tensors.extend(opt.state());
    if let Some(best) = &p.best {
        for (i, t) in best.iter().enumerate() {
            tensors.push((format!("best.{i}"), t.clone()));
        }
    }
    let meta = [
        ("epoch", epoch.to_string()),
        ("optimizer_step", opt.step.to_string()),
        ("best_loss", p.best_loss.to_string()),
        ("best_epoch", p.best_epoch.to_string()),
        ("since_best", p.since_best.to_string()),
        ("finished", p.finished.to_string()),
        (
            "history",
            serde_json::to_string(&p.history).unwrap_or_default(),
        ),
    ];
    let dir = ctx.run_dir.checkpoints();
    let last = dir.join(crate::train::run_dir::LAST_CHECKPOINT);
    st::save(&last, &tensors, &meta)?;
    ctx.emit(Event::Checkpoint {
        epoch,
        path: last,
        best: false,
    });
    if improved {
        let path = dir.join("best.safetensors");
        st::save(&path, &unfolded, &[("epoch", epoch.to_string())])?;
        ctx.emit(Event::Checkpoint {
            epoch,
            path,
            best: true,
        });
    }
    Ok(())
}

/// Loads `checkpoints/last.safetensors` into `head` and `opt`; `None` when there is none yet.
fn restore(
    ctx: &RunContext,
    head: &Head,
    opt: &mut AdamW,
) -> Result<Option<(Tensor, Tensor, Progress)>> {
    let path = ctx
        .run_dir
        .checkpoints()
        .join(crate::train::run_dir::LAST_CHECKPOINT);
    if !path.exists() {
        return Ok(None);
    }
    let (tensors, meta) = st::load(&path, &ctx.device)?;
    let bad = |what: &str| {
        Error::model(
            format!("checkpoint has no valid `{what}`; it cannot be resumed"),
            &path,
        )
    };
    let names = Head::layer_names(&head.kind);
    for ((w, b), name) in head.layers.iter().zip(&names) {
        let tw = tensors
            .get(&format!("{name}.weight"))
            .ok_or_else(|| bad(name))?;
        let tb = tensors
            .get(&format!("{name}.bias"))
            .ok_or_else(|| bad(name))?;
        w.set(tw)?;
        b.set(tb)?;
    }
    let num = |key: &str| {
        meta.get(key)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| bad(key))
    };
    opt.load_state(&tensors, num("optimizer_step")? as usize)?;
    let best = (0..head.vars().len())
        .map(|i| tensors.get(&format!("best.{i}")).cloned())
        .collect::<Option<Vec<_>>>();
    let history: Vec<EpochMetrics> = meta
        .get("history")
        .and_then(|h| serde_json::from_str(h).ok())
        .ok_or_else(|| bad("history"))?;
    let progress = Progress {
        history,
        best_loss: num("best_loss")?,
        best_epoch: num("best_epoch")? as usize,
        best,
        since_best: num("since_best")? as usize,
        finished: meta.get("finished").is_some_and(|v| v == "true"),
    };
    let mean = tensors
        .get("features.mean")
        .cloned()
        .ok_or_else(|| bad("features.mean"))?;
    let std = tensors
        .get("features.std")
        .cloned()
        .ok_or_else(|| bad("features.std"))?;
    ctx.emit(Event::Restored {
        epoch: progress.history.len(),
        checkpoint: path.clone(),
    });
    Ok(Some((mean, std, progress)))
}
