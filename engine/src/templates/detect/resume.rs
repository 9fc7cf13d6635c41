//! The object detector's checkpoint and `--resume`: after every epoch `detector_last.safetensors`
//! holds the head (and, while fine-tuning, the trainable backbone blocks with their batch-norm
//! statistics), the AdamW moments and step, which phase it was in, and the metrics so far. The
//! shuffle and augmentation randomness of an epoch is derived from the seed and the epoch
//! number, so a resumed run replays exactly the epochs an uninterrupted run trains.
//!
//! A run that continues a finished one (`lathe train --continue`) starts its head from that run's
//! last checkpoint and, when that run fine-tuned, its backbone too (in place of the pretrained
//! weights, for both phases).

use crate::error::{Error, Result};
use crate::export::st;
use crate::fit::optim::AdamW;
use crate::nets::backbone::Backbone;
use crate::nets::detect_head::DetectHead;
use crate::templates::detect::model::Detector;
use crate::train::midway::Part;
use crate::train::{EpochMetrics, Event, RunContext};
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The checkpoint's file name in `checkpoints/`.
pub const FILE: &str = crate::train::run_dir::DETECTOR_CHECKPOINT;

/// A loaded checkpoint.
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    /// Written while the backbone was being fine-tuned (else: the frozen-backbone phase).
    pub fine_tuning: bool,
    /// Epochs finished, counting both phases.
    pub epoch: usize,
    pub optimizer_step: usize,
    /// Metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Written part-way through epoch `epoch + 1`.
    pub part: Option<Part>,
}

/// Writes the checkpoint (atomically) of a finished epoch, or with `part` of one in progress,
/// and reports it.
pub fn save(
    ctx: &RunContext,
    det: &Detector,
    opt: &AdamW,
    fine_tuning: bool,
    history: &[EpochMetrics],
    part: Option<&Part>,
) -> Result<()> {
    let epoch = history.last().map(|m| m.epoch).unwrap_or(0);
    let mut tensors = det.head.state_dict();
    if fine_tuning {
        tensors.extend(det.backbone.state_dict());
    }
    tensors.extend(opt.state());
    let history_json = serde_json::to_string(history)
        .map_err(|e| Error::project(format!("cannot record the training history ({e})"), None))?;
    let path = ctx.run_dir.checkpoints().join(FILE);
    let meta = part.map(Part::meta).unwrap_or_default();
    st::save(
        &path,
        &tensors,
        &[
            meta.as_slice(),
            &[
                ("epoch", epoch.to_string()),
                (
                    "phase",
                    if fine_tuning {
                        "fine_tuning"
                    } else {
                        "training"
                    }
                    .into(),
                ),
                ("optimizer_step", opt.step.to_string()),
                ("history", history_json),
            ],
        ]
        .concat(),
    )?;
    ctx.emit(Event::Checkpoint {
        epoch,
        path,
        best: false,
    });
    Ok(())
}

/// The checkpoint to resume from: `None` for a fresh run, or a resumed one killed before its
/// first epoch ended (it starts from the beginning, as an uninterrupted run does).
pub fn load(ctx: &RunContext) -> Result<Option<Checkpoint>> {
    let path = ctx.run_dir.checkpoints().join(FILE);
    if !ctx.resume || !path.is_file() {
        return Ok(None);
    }
    read(&path, ctx).map(Some)
}

/// When this run continues a finished one (`lathe train --continue`), that run's last
/// checkpoint: the head and, if it fine-tuned, the whole backbone this run starts from.
pub fn parent(ctx: &RunContext) -> Result<Option<Checkpoint>> {
    let file = ctx.run_dir.root.join(crate::train::extend::FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io("reading", &file, e))?;
    let parent: crate::train::extend::Parent = serde_json::from_str(&text).map_err(|e| {
        Error::project(
            format!("not a valid {} ({e})", crate::train::extend::FILE),
            Some(&file),
        )
    })?;
    read(&parent.checkpoint_from(&ctx.run_dir.root), ctx).map(Some)
}

fn read(path: &Path, ctx: &RunContext) -> Result<Checkpoint> {
    let (tensors, meta) = st::load(path, &ctx.device)?;
    let bad = |what: &str| {
        Error::model(
            format!(
                "this checkpoint has no valid `{what}` (written by an older Lathe?), so training cannot pick up from it; train a new run"
            ),
            path,
        )
    };
    let num = |k: &str| -> Result<usize> {
        meta.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(k))
    };
    let fine_tuning = match meta.get("phase").map(String::as_str) {
        Some("training") => false,
        Some("fine_tuning") => true,
        _ => return Err(bad("phase")),
    };
    let history: Vec<EpochMetrics> = meta
        .get("history")
        .and_then(|h| serde_json::from_str(h).ok())
        .ok_or_else(|| bad("history"))?;
    let epoch = num("epoch")?;
    if history.len() != epoch {
        return Err(bad("history"));
    }
    let part = Part::from_meta(&meta).map_err(bad)?;
    Ok(Checkpoint {
        part,
        optimizer_step: num("optimizer_step")?,
        path: path.to_path_buf(),
        tensors,
        fine_tuning,
        epoch,
        history,
    })
}

impl Checkpoint {
    /// The head as the checkpoint left it.
    pub fn head(&self, num_classes: usize, channels: usize) -> Result<DetectHead> {
        DetectHead::from_tensors(&self.tensors, num_classes, channels).map_err(|e| {
            Error::model(
                format!(
                    "the checkpoint's head does not fit this run ({e}); the data must have the same classes and head_channels must stay the same"
                ),
                &self.path,
            )
        })
    }

    /// `fresh` (the pretrained backbone, `trainable_blocks` of them trainable) with the weights and
    /// batch-norm statistics of the checkpoint's backbone (it holds all of it while fine-tuning).
    pub fn tuned_backbone(&self, fresh: Backbone, trainable_blocks: usize) -> Result<Backbone> {
        let mut merged = fresh.tensors.clone();
        merged.extend(
            self.tensors
                .iter()
                .filter(|(k, _)| !k.starts_with("optimizer.") && !k.starts_with("head."))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let mut tuned = Backbone::from_tensors(
            &fresh.id,
            merged,
            fresh.preprocessing.width,
            trainable_blocks,
        )?;
        (tuned.weights_hash, tuned.weights_source) = (fresh.weights_hash, fresh.weights_source);
        Ok(tuned)
    }

    /// Says where training picks up (epoch 0: a continued run, starting from this checkpoint).
    pub fn announce(&self, ctx: &RunContext, epoch: usize) {
        ctx.emit(Event::Restored {
            epoch,
            checkpoint: self.path.clone(),
        });
    }
}
