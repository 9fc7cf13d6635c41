//! A sound candidate on a pretrained or classic window encoder (`encoder`): window features
//! cached by file content, window and encoder, then the head (`train::head_choice`); a file's
//! probabilities average its windows'. When `auto` chooses among candidates, the head is also
//! cross-validated over the training and validation clips on the same features
//! (`candidate_cv`).

use super::candidate_cv::{self, ClipRows, CvPlan, CvScore};
use super::params::SoundParams;
use super::train::{Clip, FitOutcome, Trained, TrainedModel, accuracy};
use crate::error::Result;
use crate::nets::head::Head;
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::model::TransferNet;
use crate::templates::sound::transfer as sound_transfer;
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{self as train_fit, Features, FitConfig};
use crate::train::head_choice;
use crate::train::{Event, Phase, RunContext};
use candle_core::Tensor;
use std::collections::HashMap;

/// Trains a candidate on an encoder's window features (cached by file content, window and
/// encoder), then a head (`train::head_choice`); a file's probabilities average its windows'.
/// With `cv_plan`, the logistic head is also scored by k-fold cross-validation over the
/// training + validation clips on those folds (`candidate_cv`). `p` is the candidate's own
/// settings (the statistics variants of `auto` change the window and the augmentation).
pub(super) fn train_on_encoder(
    ctx: &RunContext,
    p: &SoundParams,
    encoder: Encoder,
    num_classes: usize,
    clips: [&[Clip]; 3],
    cv_plan: Option<&CvPlan>,
) -> Result<Trained> {
    let [_, val_clips, test_clips] = clips;
    let hop = p.frontend.hop_length;
    let (window, window_hop) = (
        p.frontend.window_frames * hop,
        p.frontend.window_hop_frames * hop,
    );
    let dim = encoder.feature_dim();
    let seed = ctx.project.seed;
    let WindowFeatures {
        sets,
        owners,
        by_clip,
    } = window_features(
        ctx,
        p,
        &encoder,
        (window, window_hop),
        clips,
        cv_plan.is_some(),
    )?;
    let [train_set, val_set, test_set] = sets;
    let cfg = FitConfig {
        head: p.transfer_head.kind(),
        epochs: p.transfer_epochs,
        batch_size: 64,
        learning_rate: 1e-3,
        weight_decay: 1e-4,
        patience: 20,
        seed,
    };
    let validation = (!val_set.is_empty()).then_some(&val_set);
    let fitted = head_choice::fit_head(
        ctx,
        &p.transfer_head,
        &train_set,
        validation,
        num_classes,
        &cfg,
    )?;
    let per_file = |outcome: &train_fit::FitOutcome, set: &Features, owners: &[usize], n: usize| {
        file_probabilities(ctx, outcome, set, owners, n, num_classes)
    };
    // Validation from the head fitted on training windows; test and export from the final one.
    let final_outcome = fitted.final_outcome();
    let validation_probs = per_file(&fitted.outcome, &val_set, &owners[1], val_clips.len())?;
    let test_probs = per_file(final_outcome, &test_set, &owners[2], test_clips.len())?;
    let validation_accuracy =
        (!val_clips.is_empty()).then(|| accuracy(&validation_probs, val_clips));
    let raw: HashMap<String, Tensor> = final_outcome
        .head
        .export_tensors(&final_outcome.mean, &final_outcome.std)?
        .into_iter()
        .collect();
    let head = Head::from_tensors(final_outcome.head.kind.clone(), &raw)?;
    let cv = match cv_plan {
        Some(plan) => Some(cross_validated(
            ctx,
            p,
            &fitted,
            &by_clip,
            (dim, num_classes),
            plan,
        )?),
        None => None,
    };
    Ok(Trained {
        name: encoder.algorithm(),
        frontend: p.frontend.clone(),
        augmented: p.augment.any(),
        validation_accuracy,
        cv,
        head_selection: Some(fitted.report()),
        outcome: FitOutcome {
            history: fitted.outcome.history.clone(),
            best_epoch: fitted.outcome.best_epoch,
            stopped_early: fitted.outcome.stopped_early,
        },
        model: TrainedModel::Transfer {
            net: TransferNet {
                encoder,
                head,
                window,
                hop: window_hop,
                device: ctx.device.clone(),
            },
            validation: validation_probs,
            test: test_probs,
        },
    })
}

/// The window features of every split, as the head and the cross-validation read them.
struct WindowFeatures {
    /// Training, validation and test window rows.
    sets: [Features; 3],
    /// Which clip of its split each window row belongs to (for file-level probabilities).
    owners: [Vec<usize>; 3],
    /// Training then validation clips' windows by clip, for the cross-validation (empty
    /// without it).
    by_clip: Vec<ClipRows>,
}

/// Extracts (or reads from the cache) the window features of every clip of every split — and of
/// an augmented copy of each training clip when augmentation is on — in one phase, announcing
/// how many windows the cache gave back.
fn window_features(
    ctx: &RunContext,
    p: &SoundParams,
    encoder: &Encoder,
    (window, window_hop): (usize, usize),
    [train_clips, val_clips, test_clips]: [&[Clip]; 3],
    cross_validating: bool,
) -> Result<WindowFeatures> {
    let signature = encoder.signature(window, window_hop);
    let dim = encoder.feature_dim();
    let seed = ctx.project.seed;
    // (split, index in split, clip, augmented copy?) for every clip of every split.
    let mut jobs: Vec<(usize, usize, &Clip, bool)> = Vec::new();
    for (i, c) in train_clips.iter().enumerate() {
        jobs.push((0, i, c, false));
        if p.augment.any() {
            jobs.push((0, i, c, true));
        }
    }
    jobs.extend(val_clips.iter().enumerate().map(|(i, c)| (1, i, c, false)));
    jobs.extend(test_clips.iter().enumerate().map(|(i, c)| (2, i, c, false)));
    let mut by_clip: Vec<ClipRows> = if cross_validating {
        train_clips
            .iter()
            .chain(val_clips)
            .map(|c| ClipRows {
                label: c.label as u32,
                clean: Vec::new(),
                augmented: Vec::new(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut cache = match FeatureCache::open(&ctx.cache_dir(), &signature, dim) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.warn(
                format!("feature cache unavailable, features will not be reused ({e})"),
                None,
            );
            None
        }
    };
    let mut phase = ctx.phase(Phase::ExtractingFeatures, jobs.len() as u64);
    let mut reused = 0usize;
    let mut sets = [Features::new(dim), Features::new(dim), Features::new(dim)];
    let mut owners: [Vec<usize>; 3] = Default::default();
    let mut total_windows = 0usize;
    for (j, &(split, index, clip, augmented)) in jobs.iter().enumerate() {
        ctx.check()?;
        let content = clip.hash;
        let wave = if augmented {
            let mut h = [0u8; 8];
            h.copy_from_slice(&content[..8]);
            p.augment.apply(&clip.wave, seed ^ u64::from_le_bytes(h))
        } else {
            clip.wave.clone()
        };
        let windows = sound_transfer::sample_windows(&wave, window, window_hop);
        let variant = |i: usize| {
            format!(
                "{}{i}/{}",
                if augmented {
                    format!("aug{seed}/")
                } else {
                    String::new()
                },
                windows.len()
            )
        };
        let keys: Vec<[u8; 32]> = (0..windows.len())
            .map(|i| FeatureCache::key(&signature, &content, &variant(i)))
            .collect();
        let feats = cached_or_computed(ctx, encoder, &mut cache, &keys, &windows, &mut reused)?;
        total_windows += feats.len();
        for f in &feats {
            sets[split].push(f, clip.label as u32);
            owners[split].push(index);
        }
        let global = if split == 0 {
            index
        } else {
            train_clips.len() + index
        };
        if split < 2
            && let Some(rows) = by_clip.get_mut(global)
        {
            let to = if augmented {
                &mut rows.augmented
            } else {
                &mut rows.clean
            };
            feats.iter().for_each(|f| to.extend_from_slice(f));
        }
        phase.set(j as u64 + 1);
    }
    if reused > 0
        && let Some(c) = cache.as_ref()
    {
        ctx.emit(Event::Cache {
            reused,
            total: total_windows,
            path: c.path().to_path_buf(),
        });
    }
    Ok(WindowFeatures {
        sets,
        owners,
        by_clip,
    })
}

/// One clip's window features: all from the cache when it has every one (counted in
/// `reused`), else computed by the encoder and written to the cache (a cache that cannot be
/// written is dropped with a warning).
fn cached_or_computed(
    ctx: &RunContext,
    encoder: &Encoder,
    cache: &mut Option<FeatureCache>,
    keys: &[[u8; 32]],
    windows: &[Vec<f32>],
    reused: &mut usize,
) -> Result<Vec<Vec<f32>>> {
    let cached: Option<Vec<Vec<f32>>> = cache
        .as_ref()
        .and_then(|c| keys.iter().map(|k| c.get(k).map(<[f32]>::to_vec)).collect());
    Ok(match cached {
        Some(f) => {
            *reused += f.len();
            f
        }
        None => {
            let f = encoder.window_features(windows, &ctx.device)?;
            if let Some(c) = cache.as_mut() {
                let fresh: Vec<([u8; 32], Vec<f32>)> =
                    keys.iter().copied().zip(f.iter().cloned()).collect();
                if let Err(e) = c.insert_many(&fresh) {
                    ctx.warn(
                        format!("could not write the feature cache, continuing without it ({e})"),
                        None,
                    );
                    *cache = None;
                }
            }
            f
        }
    })
}

/// Per-file probabilities: the mean of each file's window probabilities under `outcome`
/// (`owners` names each row's file among `n`).
fn file_probabilities(
    ctx: &RunContext,
    outcome: &train_fit::FitOutcome,
    set: &Features,
    owners: &[usize],
    n: usize,
    num_classes: usize,
) -> Result<Vec<Vec<f32>>> {
    let probs = outcome.probabilities(set, &ctx.device)?;
    let mut sums = vec![vec![0f64; num_classes]; n];
    let mut counts = vec![0usize; n];
    for (row, &o) in probs.iter().zip(owners) {
        if let (Some(s), Some(c)) = (sums.get_mut(o), counts.get_mut(o)) {
            for (a, v) in s.iter_mut().zip(row) {
                *a += *v as f64;
            }
            *c += 1;
        }
    }
    Ok(sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s.iter().map(|v| (v / c.max(1) as f64) as f32).collect())
        .collect())
}

/// The candidate's cross-validated score over `plan`'s folds: the logistic head at the C its
/// selection chose (scikit-learn's default C = 1 when none was cross-validated, e.g.
/// `head = mlp`), even where the MLP was kept: cheap, no nested CV.
fn cross_validated(
    ctx: &RunContext,
    p: &SoundParams,
    fitted: &head_choice::Fitted,
    by_clip: &[ClipRows],
    (dim, num_classes): (usize, usize),
    plan: &CvPlan,
) -> Result<CvScore> {
    let c = fitted
        .candidates
        .iter()
        .find_map(|c| c.cross_validation.as_ref().map(|cv| cv.c))
        .unwrap_or(1.0);
    let mut phase = ctx.phase(Phase::CrossValidating, 1);
    let score =
        candidate_cv::cross_validate(ctx, by_clip, dim, num_classes, plan, c, p.transfer_epochs)?;
    phase.set(1);
    Ok(score)
}
