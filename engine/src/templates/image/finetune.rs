//! Fine-tuning: after the head has been trained on cached features (a good start), the last
//! backbone blocks and the head train together on the images, batch norm in train mode, with
//! AdamW at a small learning rate. Checkpoints every epoch; Step / EpochEnd events continue the
//! head's curves.

use crate::data::augment::Augmentation;
use crate::data::image_decode::{self, Preprocessing};
use crate::error::{Error, Result};
use crate::export::st;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::nets::backbone::Backbone;
use crate::nets::head::Head;
use crate::train::midway::Part;
use crate::train::{EpochMetrics, Event, Phase, RunContext};
use candle_core::{D, DType, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// One training image (an augmented copy is a separate entry).
#[derive(Clone, Debug)]
pub struct TrainImage {
    pub path: PathBuf,
    pub hash: [u8; 32],
    pub label: u32,
    pub augmentation: Option<Augmentation>,
}

/// Checked fine-tuning settings.
#[derive(Clone, Debug)]
pub struct FineTuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Epochs the head already trained (fine-tuning epochs are numbered after them).
    pub epoch_offset: usize,
}

/// Decodes, resizes, augments and normalizes one image.
pub fn load_image(
    pre: &Preprocessing,
    img: &TrainImage,
    seed: u64,
) -> std::result::Result<Vec<f32>, String> {
    let bytes = std::fs::read(&img.path).map_err(|e| format!("cannot read image ({e})"))?;
    let rgb = image_decode::decode_rgb(&bytes)?;
    let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
    let out = match img.augmentation {
        Some(a) => a.apply(&resized, seed, &img.hash),
        None => resized,
    };
    Ok(pre.normalize(&out))
}

/// A decoded batch: the images that loaded, their labels, and warnings for those that did not.
fn load_batch(
    ctx: &RunContext,
    pre: &Preprocessing,
    items: &[&TrainImage],
    seed: u64,
    warned: &Mutex<HashSet<PathBuf>>,
) -> Result<Option<(Tensor, Tensor)>> {
    let decoded: Vec<_> = items
        .par_iter()
        .map(|it| load_image(pre, it, seed))
        .collect();
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (it, r) in items.iter().zip(decoded) {
        match r {
            Ok(x) => {
                rows.extend(x);
                labels.push(it.label);
            }
            Err(reason) => {
                if warned
                    .lock()
                    .map(|mut w| w.insert(it.path.clone()))
                    .unwrap_or(false)
                {
                    ctx.warn(format!("{reason}; the image was skipped"), Some(&it.path));
                }
            }
        }
    }
    if labels.is_empty() {
        return Ok(None);
    }
    let n = labels.len();
    let x = Tensor::from_vec(
        rows,
        (n, 3, pre.height as usize, pre.width as usize),
        &ctx.device,
    )?;
    let y = Tensor::from_vec(labels, n, &ctx.device)?;
    Ok(Some((x, y)))
}

/// Trains the backbone's trainable blocks and `head` (which works on raw features) together.
/// Returns the per-epoch metrics; the backbone is refolded for inference at the end.
/// `resume` holds a `fine_tune_last` checkpoint (tensors, metadata) whose model state the caller
/// already loaded into `backbone` and `head`; the optimizer and the epoch count continue from it.
pub fn fine_tune(
    ctx: &RunContext,
    backbone: &mut Backbone,
    head: &Head,
    train: &[TrainImage],
    validation: &[TrainImage],
    cfg: &FineTuneConfig,
    resume: Option<&st::Loaded>,
) -> Result<Vec<EpochMetrics>> {
    if backbone.vars().is_empty() {
        return Err(Error::project(
            "fine-tuning needs at least one trainable backbone block (fine_tune_blocks)",
            None,
        ));
    }
    let pre = backbone.preprocessing.clone();
    let mut vars: Vec<_> = backbone
        .vars()
        .into_iter()
        .map(|v| {
            let decay = v.rank() > 1;
            (v, decay)
        })
        .collect();
    vars.extend(
        head.layers
            .iter()
            .flat_map(|(w, b)| [(w.clone(), true), (b.clone(), false)]),
    );
    let mut opt = AdamW::new(vars, cfg.learning_rate, cfg.weight_decay)?;
    let batch = cfg.batch_size.clamp(1, train.len().max(1));
    let steps_per_epoch = train.len().div_ceil(batch);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = steps_per_epoch.min(total_steps / 10).max(1);
    let step_every = (steps_per_epoch / 10).max(1);
    let total_epochs = cfg.epoch_offset + cfg.epochs;
    let warned = Mutex::new(HashSet::new());
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut part = None;
    if let Some((tensors, meta)) = resume {
        let checkpoint = ctx.run_dir.checkpoints().join("fine_tune_last.safetensors");
        part = Part::from_meta(meta).map_err(|what| {
            Error::model(
                format!("checkpoint has no valid `{what}`; it cannot be resumed"),
                &checkpoint,
            )
        })?;
        let step = meta
            .get("optimizer_step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        opt.load_state(tensors, step)?;
        history = meta
            .get("history")
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        ctx.emit(Event::Restored {
            epoch: cfg.epoch_offset + history.len(),
            checkpoint,
        });
    }
    let mut phase = ctx.phase(Phase::FineTuning, cfg.epochs as u64);
    phase.set(history.len() as u64);
    let started = std::time::Instant::now();
    let every = crate::train::midway::interval();
    let mut saved = std::time::Instant::now();
    let done = history.len();
    for e in done + 1..=cfg.epochs {
        let epoch = cfg.epoch_offset + e;
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            cfg.seed ^ 0xF1E7 ^ (e as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        // A run resumed from a checkpoint written part-way through this epoch skips its done steps.
        let mut skip = 0;
        if e == done + 1
            && let Some(p) = part.take()
        {
            (skip, loss_sum, correct, seen) = (p.steps, p.loss_sum, p.correct, p.seen);
        }
        for (step, chunk) in order.chunks(batch).enumerate().skip(skip) {
            ctx.check()?;
            let items: Vec<&TrainImage> = chunk.iter().map(|&i| &train[i]).collect();
            let Some((x, y)) = load_batch(ctx, &pre, &items, cfg.seed, &warned)? else {
                continue;
            };
            opt.learning_rate = cosine_lr(
                cfg.learning_rate,
                (e - 1) * steps_per_epoch + step,
                total_steps,
                warmup,
            );
            let features = backbone.features(&x, true)?;
            let logits = head.forward(
                &features,
                true,
                Some(cfg.seed ^ ((epoch * 100_003 + step) as u64)),
            )?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            crate::fit::diverge::check_loss(
                value,
                epoch,
                "fine_tune_learning_rate",
                cfg.learning_rate,
                Some(&ctx.run_dir.checkpoints()),
            )?;
            opt.apply(&loss.backward()?)?;
            let n = y.dim(0)?;
            loss_sum += value * n as f64;
            seen += n;
            correct += logits
                .argmax(D::Minus1)?
                .eq(&y)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()? as usize;
            if step % step_every == 0 {
                ctx.emit(Event::Step {
                    epoch,
                    step,
                    steps: steps_per_epoch,
                    loss: value,
                });
            }
            if step + 1 < steps_per_epoch && saved.elapsed() >= every {
                let part = Part {
                    steps: step + 1,
                    loss_sum,
                    correct,
                    seen,
                };
                let done = cfg.epoch_offset + history.len();
                save_checkpoint(ctx, backbone, head, &opt, done, &history, Some(&part))?;
                saved = std::time::Instant::now();
            }
        }
        let (validation_loss, validation_accuracy) =
            evaluate(ctx, backbone, head, &pre, validation, cfg.seed, &warned)?;
        let metrics = EpochMetrics {
            epoch,
            epochs: total_epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: Some(correct as f64 / seen.max(1) as f64),
            validation_loss,
            validation_accuracy,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        history.push(metrics);
        phase.set(e as u64);
        save_checkpoint(ctx, backbone, head, &opt, epoch, &history, None)?;
        saved = std::time::Instant::now();
    }
    backbone.refold()?;
    Ok(history)
}

/// Validation loss and accuracy with batch norm in eval mode.
fn evaluate(
    ctx: &RunContext,
    backbone: &Backbone,
    head: &Head,
    pre: &Preprocessing,
    items: &[TrainImage],
    seed: u64,
    warned: &Mutex<HashSet<PathBuf>>,
) -> Result<(Option<f64>, Option<f64>)> {
    if items.is_empty() {
        return Ok((None, None));
    }
    let (mut loss, mut correct, mut seen) = (0f64, 0usize, 0usize);
    let refs: Vec<&TrainImage> = items.iter().collect();
    for chunk in refs.chunks(64) {
        ctx.check()?;
        let Some((x, y)) = load_batch(ctx, pre, chunk, seed, warned)? else {
            continue;
        };
        let logits = head.forward(&backbone.features(&x, false)?, false, None)?;
        let n = y.dim(0)?;
        loss += candle_nn::loss::cross_entropy(&logits, &y)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            * n as f64;
        correct += logits
            .argmax(D::Minus1)?
            .eq(&y)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as usize;
        seen += n;
    }
    if seen == 0 {
        return Ok((None, None));
    }
    Ok((Some(loss / seen as f64), Some(correct as f64 / seen as f64)))
}

fn save_checkpoint(
    ctx: &RunContext,
    backbone: &Backbone,
    head: &Head,
    opt: &AdamW,
    epoch: usize,
    history: &[EpochMetrics],
    part: Option<&Part>,
) -> Result<()> {
    let dim = head
        .layers
        .first()
        .map(|(w, _)| w.dim(1))
        .transpose()?
        .unwrap_or(0);
    let zeros = Tensor::zeros(dim, DType::F32, &ctx.device)?;
    let ones = Tensor::ones(dim, DType::F32, &ctx.device)?;
    let mut tensors = backbone.state_dict();
    tensors.extend(head.export_tensors(&zeros, &ones)?);
    tensors.extend(opt.state());
    let path = ctx.run_dir.checkpoints().join("fine_tune_last.safetensors");
    let mut meta = vec![
        ("epoch", epoch.to_string()),
        ("optimizer_step", opt.step.to_string()),
        (
            "history",
            serde_json::to_string(history).unwrap_or_default(),
        ),
    ];
    meta.extend(part.map(Part::meta).unwrap_or_default());
    st::save(&path, &tensors, &meta)?;
    ctx.emit(Event::Checkpoint {
        epoch,
        path,
        best: false,
    });
    Ok(())
}
