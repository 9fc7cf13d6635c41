//! One phase of the detector's training (the frozen backbone, or fine-tuning): batches decoded
//! and augmented in parallel (`Loader`), the AdamW steps with a cosine schedule, validation loss
//! per epoch, and per-epoch / part-way checkpoints through `resume`.

use crate::data::annotations::{AnnotatedImage, ObjectBox};
use crate::data::box_augment::BoxAugment;
use crate::data::image_decode::{self, Preprocessing};
use crate::error::Result;
use crate::fit::optim::{AdamW, cosine_lr};
use crate::nets::detect_head::{self, STRIDE};
use crate::templates::detect::model::Detector;
use crate::templates::detect::params::DetectParams;
use crate::templates::detect::resume::{self as detect_resume, Checkpoint};
use crate::train::{EpochMetrics, Event, Phase, RunContext};
use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// Decodes one image, resizes it to the model input, maps its boxes, and augments both.
pub fn load_sample(
    pre: &Preprocessing,
    img: &AnnotatedImage,
    augment: Option<(&BoxAugment, u64)>,
) -> std::result::Result<(Vec<f32>, Vec<ObjectBox>), String> {
    let bytes = std::fs::read(&img.path).map_err(|e| format!("cannot read image ({e})"))?;
    let rgb = image_decode::decode_rgb(&bytes)?;
    let (w, h) = rgb.dimensions();
    let resized = image_decode::resize(&rgb, pre.width, pre.height)?;
    let (sx, sy) = (pre.width as f32 / w as f32, pre.height as f32 / h as f32);
    let objects: Vec<ObjectBox> = img
        .objects
        .iter()
        .map(|o| ObjectBox {
            label: o.label,
            rect: o.rect.scale(sx, sy),
        })
        .collect();
    let (out, objects) = match augment {
        Some((a, seed)) if a.any() => a.apply(&resized, &objects, &mut StdRng::seed_from_u64(seed)),
        _ => (resized, objects),
    };
    Ok((pre.normalize(&out), objects))
}

/// One phase of training (frozen backbone, or fine-tuning).
pub(super) struct PhasePlan {
    pub(super) phase: Phase,
    pub(super) epochs: usize,
    pub(super) learning_rate: f64,
    pub(super) train_backbone: bool,
    pub(super) epoch_offset: usize,
    pub(super) total_epochs: usize,
}

/// Batches of images decoded in parallel; failures warned once and skipped.
pub(super) struct Loader<'a> {
    pub(super) ctx: &'a RunContext,
    pub(super) pre: Preprocessing,
    pub(super) warned: Mutex<HashSet<PathBuf>>,
}

impl Loader<'_> {
    fn batch(
        &self,
        items: &[&AnnotatedImage],
        augment: Option<(&BoxAugment, u64)>,
    ) -> Result<Option<(Tensor, Vec<Vec<ObjectBox>>)>> {
        let decoded: Vec<_> = items
            .par_iter()
            .enumerate()
            .map(|(k, it)| {
                load_sample(
                    &self.pre,
                    it,
                    augment.map(|(a, s)| (a, s.wrapping_add(k as u64 * 0x9E37_79B9))),
                )
            })
            .collect();
        let (mut rows, mut objects) = (Vec::new(), Vec::new());
        for (it, r) in items.iter().zip(decoded) {
            match r {
                Ok((x, o)) => {
                    rows.extend(x);
                    objects.push(o);
                }
                Err(reason) => {
                    if self
                        .warned
                        .lock()
                        .map(|mut w| w.insert(it.path.clone()))
                        .unwrap_or(false)
                    {
                        self.ctx
                            .warn(format!("{reason}; the image was skipped"), Some(&it.path));
                    }
                }
            }
        }
        if objects.is_empty() {
            return Ok(None);
        }
        let (n, s) = (objects.len(), self.pre.width as usize);
        Ok(Some((
            Tensor::from_vec(rows, (n, 3, s, s), &self.ctx.device)?,
            objects,
        )))
    }
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Loss of a batch (training or validation).
fn batch_loss(
    det: &Detector,
    x: &Tensor,
    objects: &[Vec<ObjectBox>],
    train: bool,
) -> Result<detect_head::Loss> {
    let (heat, boxes) = det.forward(x, train)?;
    let (_, c, gh, gw) = heat.dims4()?;
    let targets = detect_head::build_targets(objects, c, gh, gw, STRIDE);
    Ok(detect_head::loss(&heat, &boxes, &targets)?)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_phase(
    ctx: &RunContext,
    loader: &Loader,
    det: &Detector,
    p: &DetectParams,
    plan: &PhasePlan,
    train: &[AnnotatedImage],
    validation: &[AnnotatedImage],
    history: &mut Vec<EpochMetrics>,
    resume: Option<&Checkpoint>,
) -> Result<()> {
    let mut vars: Vec<(candle_core::Var, bool)> = det
        .head
        .vars()
        .into_iter()
        .map(|v| {
            let decay = v.rank() > 1;
            (v, decay)
        })
        .collect();
    if plan.train_backbone {
        vars.extend(det.backbone.vars().into_iter().map(|v| {
            let decay = v.rank() > 1;
            (v, decay)
        }));
    }
    let mut opt = AdamW::new(vars, plan.learning_rate, p.weight_decay)?;
    if let Some(c) = resume {
        opt.load_state(&c.tensors, c.optimizer_step)?;
    }
    // Epochs of this phase already done (by a run this one resumes).
    let done = history
        .len()
        .saturating_sub(plan.epoch_offset)
        .min(plan.epochs);
    let batch = p.batch_size.clamp(1, train.len().max(1));
    let steps_per_epoch = train.len().div_ceil(batch);
    let total_steps = (steps_per_epoch * plan.epochs).max(1);
    let warmup = steps_per_epoch.min(total_steps / 10).max(1);
    let step_every = (steps_per_epoch / 10).max(1);
    let mut phase = ctx.phase(plan.phase, plan.epochs as u64);
    phase.set(done as u64);
    let started = std::time::Instant::now();
    let seed = ctx.project.seed;
    // Long epochs are also checkpointed part-way.
    let every = crate::train::midway::interval();
    let mut saved = std::time::Instant::now();
    for e in done + 1..=plan.epochs {
        let epoch = plan.epoch_offset + e;
        let mut rng = StdRng::seed_from_u64(
            seed ^ 0xDE7E ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        // A run resumed from a checkpoint written part-way through this epoch skips its done steps.
        let mut skip = 0;
        if let Some(part) = resume
            .and_then(|c| c.part.as_ref())
            .filter(|_| e == done + 1)
        {
            (skip, loss_sum, seen) = (part.steps, part.loss_sum, part.seen);
        }
        for (step, chunk) in order.chunks(batch).enumerate().skip(skip) {
            ctx.check()?;
            let items: Vec<&AnnotatedImage> = chunk.iter().filter_map(|&i| train.get(i)).collect();
            let aug_seed = seed ^ (epoch as u64) << 32 ^ (step as u64) << 12;
            let Some((x, objects)) = loader.batch(&items, Some((&p.augment, aug_seed)))? else {
                continue;
            };
            opt.learning_rate = cosine_lr(
                plan.learning_rate,
                (e - 1) * steps_per_epoch + step,
                total_steps,
                warmup,
            );
            let loss = batch_loss(det, &x, &objects, plan.train_backbone)?;
            let value = scalar(&loss.total)?;
            crate::fit::diverge::check_loss(
                value,
                epoch,
                if plan.train_backbone {
                    "fine_tune_learning_rate"
                } else {
                    "learning_rate"
                },
                plan.learning_rate,
                Some(&ctx.run_dir.checkpoints()),
            )?;
            opt.apply(&loss.total.backward()?)?;
            loss_sum += value * objects.len() as f64;
            seen += objects.len();
            if step % step_every == 0 {
                ctx.emit(Event::Step {
                    epoch,
                    step,
                    steps: steps_per_epoch,
                    loss: value,
                });
            }
            if step + 1 < steps_per_epoch && saved.elapsed() >= every {
                let part = crate::train::midway::Part {
                    steps: step + 1,
                    loss_sum,
                    correct: 0,
                    seen,
                };
                detect_resume::save(ctx, det, &opt, plan.train_backbone, history, Some(&part))?;
                saved = std::time::Instant::now();
            }
        }
        let mut validation_loss = None;
        if !validation.is_empty() {
            let (mut sum, mut n) = (0f64, 0usize);
            let refs: Vec<&AnnotatedImage> = validation.iter().collect();
            for chunk in refs.chunks(batch.max(8)) {
                ctx.check()?;
                if let Some((x, objects)) = loader.batch(chunk, None)? {
                    sum += scalar(&batch_loss(det, &x, &objects, false)?.total)?
                        * objects.len() as f64;
                    n += objects.len();
                }
            }
            validation_loss = (n > 0).then(|| sum / n as f64);
        }
        let metrics = EpochMetrics {
            epoch,
            epochs: plan.total_epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: None,
            validation_loss,
            validation_accuracy: None,
            learning_rate: opt.learning_rate,
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        ctx.emit(Event::EpochEnd(metrics.clone()));
        history.push(metrics);
        phase.set(e as u64);
        detect_resume::save(ctx, det, &opt, plan.train_backbone, history, None)?;
        saved = std::time::Instant::now();
    }
    Ok(())
}
