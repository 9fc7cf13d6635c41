//! `backbone = "auto"`: which pretrained backbone an image model is built on. Every backbone whose
//! weights are here (built in, or installed in the weights folder by a fetch script) extracts
//! features for a stratified sample of the training images; the logistic head is cross-validated
//! on each (C by CV, as the head itself is chosen), and the best CV accuracy wins — CV log loss
//! for multi-label data, and on a tie the cheaper backbone. The sample's features land in the
//! feature cache, so the winner extracts only the rest. Each candidate's score, time and the
//! reason for the choice go to `report.json` → `training.backbone_selection`.

use crate::data::image_folder::LabeledFile;
use crate::error::{Error, Result};
use crate::nets::backbone::{self, BACKBONES, Backbone};
use crate::nets::weights;
use crate::templates::image::classifier::{Item, Part, extract_features_as};
use crate::templates::image::params::ImageParams;
use crate::train::fit::Features;
use crate::train::fit_logistic::{Report, Scaling, choose_c};
use crate::train::{Phase, RunContext};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Training images each candidate backbone sees (stratified). With three candidates on 2,000
/// images this keeps `auto` within 3× one MobileNetV2 extraction, whichever backbone wins.
pub const SAMPLE_IMAGES: usize = 600;

/// One candidate's result.
#[derive(Clone, Debug, Serialize)]
pub struct BackboneCandidate {
    pub backbone: String,
    /// Where its weights were found, or why it was not tried.
    pub weights: Option<String>,
    pub skipped: Option<String>,
    pub cv_accuracy: Option<f64>,
    pub cv_log_loss: Option<f64>,
    pub c: Option<f64>,
    pub extract_secs: Option<f64>,
    pub cv_secs: Option<f64>,
}

/// What `auto` decided, for `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BackboneSelection {
    pub chosen: String,
    pub reason: String,
    pub sample_images: usize,
    pub candidates: Vec<BackboneCandidate>,
}

/// How a training image becomes a feature row with its label(s).
pub type PushRow<'a> = dyn Fn(&mut Features, &[f32], &LabeledFile) + 'a;

/// Loads the backbone `p.backbone` names (frozen, in the run's precision), choosing one first when
/// it is `auto`. Returns the selection report when a choice was made.
pub(crate) fn load_backbone(
    ctx: &RunContext,
    p: &ImageParams,
    weights_file: Option<&Path>,
    train: &[LabeledFile],
    classes: usize,
    batch: usize,
    push_row: &PushRow<'_>,
) -> Result<(Backbone, Option<BackboneSelection>)> {
    let precision = crate::device::precision(&p.precision, &ctx.device)?;
    let load = |id: &str| -> Result<Backbone> {
        let mut b = Backbone::load(id, p.image_size, weights_file, 0, &ctx.device)?;
        b.set_precision(precision)?;
        Ok(b)
    };
    if p.backbone != "auto" {
        return Ok((load(&p.backbone)?, None));
    }
    if weights_file.is_some() {
        return Err(Error::project(
            "a backbone weights file was given with backbone = \"auto\"; name the backbone the \
             weights are for (for example --param backbone=efficientnet_lite2)",
            None,
        ));
    }
    let mut candidates: Vec<BackboneCandidate> = BACKBONES
        .iter()
        .map(|&id| {
            let found = backbone::weights_spec(id)
                .ok()
                .and_then(|s| weights::available(&s));
            BackboneCandidate {
                backbone: id.to_string(),
                skipped: found.is_none().then(|| {
                    format!(
                        "weights not installed (scripts/fetch-{}.sh puts them in the weights folder)",
                        id.replace('_', "-")
                    )
                }),
                weights: found,
                cv_accuracy: None,
                cv_log_loss: None,
                c: None,
                extract_secs: None,
                cv_secs: None,
            }
        })
        .collect();
    let available: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].skipped.is_none())
        .collect();
    let Some(&first) = available.first() else {
        return Err(Error::Weights(
            "backbone = \"auto\" found no backbone with weights in this build or the weights \
             folder; install one with scripts/fetch-efficientnet-lite2.sh or pass --weights PATH \
             with a named backbone"
                .into(),
        ));
    };
    if available.len() == 1 {
        let id = candidates[first].backbone.clone();
        let chosen = load(&id)?;
        return Ok((
            chosen,
            Some(BackboneSelection {
                chosen: id.clone(),
                reason: format!("{id} is the only backbone installed"),
                sample_images: 0,
                candidates,
            }),
        ));
    }

    let sample = stratified_sample(train, SAMPLE_IMAGES);
    let items: Vec<Item> = sample
        .iter()
        .map(|&f| Item {
            file: f,
            part: Part::Train,
            augmentation: None,
        })
        .collect();
    let multi_label = {
        let mut probe = Features::new(1);
        if let Some(f) = sample.first() {
            push_row(&mut probe, &[0.0], f);
        }
        probe.is_multi_label()
    };
    let mut best: Option<(usize, f64, f64)> = None;
    for &i in &available {
        ctx.check()?;
        let id = candidates[i].backbone.clone();
        let started = Instant::now();
        let b = load(&id)?;
        let rows = extract_features_as(ctx, &b, &items, batch, Phase::ComparingBackbones)?;
        candidates[i].extract_secs = Some(started.elapsed().as_secs_f64());
        let mut set = Features::new(b.feature_dim);
        for (f, row) in sample.iter().zip(&rows) {
            if let Some(row) = row {
                push_row(&mut set, row, f);
            }
        }
        if set.len() < 2 {
            candidates[i].skipped = Some("too few images decoded to compare".into());
            continue;
        }
        let started = Instant::now();
        let x = Scaling::of(&set).apply(&set.x);
        let cv = choose_c(ctx, &set, &x, classes, 100, Report::Emit)?;
        candidates[i].cv_secs = Some(started.elapsed().as_secs_f64());
        let (acc, loss) = cv
            .scores
            .iter()
            .find(|s| s.c == cv.c)
            .map(|s| (s.accuracy, s.log_loss))
            .unwrap_or((0.0, f64::INFINITY));
        candidates[i].cv_accuracy = Some(acc);
        candidates[i].cv_log_loss = Some(loss);
        candidates[i].c = Some(cv.c);
        // Higher is better: CV accuracy at the chosen C (single label) or minus its CV log loss
        // (multi-label); candidates come cheapest first, so a tie keeps the cheaper one.
        let (score, tie) = if multi_label {
            (-loss, acc)
        } else {
            (acc, -loss)
        };
        if best.is_none_or(|(_, s, t)| score > s + 1e-12 || (score > s - 1e-12 && tie > t)) {
            best = Some((i, score, tie));
        }
    }
    let Some((winner, _, _)) = best else {
        return Err(Error::data(
            "no backbone could be compared: too few training images decoded",
            train
                .first()
                .map(|f| f.path.as_path())
                .unwrap_or(Path::new(".")),
        ));
    };
    let id = candidates[winner].backbone.clone();
    let metric = if multi_label {
        "cross-validated log loss"
    } else {
        "cross-validated accuracy"
    };
    let tried: Vec<String> = candidates
        .iter()
        .filter_map(|c| {
            let v = if multi_label {
                c.cv_log_loss
            } else {
                c.cv_accuracy
            }?;
            Some(format!("{} {v:.3}", c.backbone))
        })
        .collect();
    let reason = format!(
        "best {metric} of the logistic head on {} training images ({})",
        sample.len(),
        tried.join(", ")
    );
    let chosen = load(&id)?;
    Ok((
        chosen,
        Some(BackboneSelection {
            chosen: id,
            reason,
            sample_images: sample.len(),
            candidates,
        }),
    ))
}

/// Up to `n` files, the same share from each class (round-robin over classes), in an order fixed
/// by content hash so that reruns pick the same images.
fn stratified_sample(files: &[LabeledFile], n: usize) -> Vec<&LabeledFile> {
    let classes = files.iter().map(|f| f.label + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<&LabeledFile>> = vec![Vec::new(); classes];
    for f in files {
        by_class[f.label].push(f);
    }
    for group in &mut by_class {
        group.sort_by_key(|f| f.hash);
    }
    let mut out = Vec::with_capacity(n.min(files.len()));
    let mut round = 0;
    while out.len() < n.min(files.len()) {
        for group in &by_class {
            if let Some(&f) = group.get(round) {
                if out.len() < n {
                    out.push(f);
                }
            }
        }
        round += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn file(label: usize, i: u8) -> LabeledFile {
        LabeledFile {
            path: format!("{label}/{i}.png").into(),
            label,
            hash: [i; 32],
        }
    }

    #[test]
    fn the_sample_takes_every_class_evenly_and_is_stable() {
        let mut files: Vec<LabeledFile> = (0..50).map(|i| file(0, i)).collect();
        files.extend((0..5).map(|i| file(1, 100 + i)));
        files.extend((0..20).map(|i| file(2, 150 + i)));
        let s = stratified_sample(&files, 30);
        assert_eq!(s.len(), 30);
        let count = |c| s.iter().filter(|f| f.label == c).count();
        // Class 1 has only 5 images; the rest is shared by the others.
        assert_eq!(count(1), 5);
        assert!(
            count(0).abs_diff(count(2)) <= 1,
            "{} {}",
            count(0),
            count(2)
        );
        let again = stratified_sample(&files, 30);
        assert!(s.iter().zip(&again).all(|(a, b)| a.path == b.path));
        assert_eq!(stratified_sample(&files, 1000).len(), files.len());
    }
}
