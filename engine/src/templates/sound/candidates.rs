//! The candidates of a sound run: which ones `algorithm` asks for (`auto`: the statistics
//! variants — window × augmentation — speech, CREPE, YAMNet and Whisper when installed, the CNN
//! from enough clips per class), each one trained, its leaderboard entry, and the choice among
//! them (cross-validated scores, else validation accuracy then log loss).

use super::candidate_cv::{self, CvPlan, CvScore, Score};
use super::cnn::train_cnn;
use super::encoder_fit::train_on_encoder;
use super::train::{Clip, SoundSplits, Trained};
use crate::data::audio_augment::SoundAugment;
use crate::data::audio_decode;
use crate::data::audio_frontend::{FrontEndConfig, LogMel};
use crate::error::{Error, Result};
use crate::nets::crepe::Crepe;
use crate::nets::speech_embedding::SpeechEmbedding;
use crate::nets::weights;
use crate::nets::whisper_encoder::{self, WhisperEncoder};
use crate::nets::yamnet::{self, Yamnet};
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::params::SoundParams;
use crate::train::RunContext;
use candle_core::Device;
use serde_json::json;

/// The statistics candidates `auto` cross-validates, cheapest and default first: the window
/// (`window_secs`, or one window spanning each clip: [`clip_window_secs`]) × the augmentation
/// (the `augment_*` parameters, or none).
pub const STATISTICS_VARIANTS: [&str; 4] = [
    "statistics",
    "statistics-noaug",
    "statistics-clip",
    "statistics-clip-noaug",
];

/// The longest window of the whole-clip statistics (seconds; the `window_secs` maximum).
pub const MAX_CLIP_WINDOW_SECS: f64 = 10.0;

/// Share of the training clips a whole-clip window holds in one window.
const CLIP_WINDOW_SHARE: f64 = 0.95;

/// A window's length in seconds.
pub(super) fn window_secs(fe: &FrontEndConfig) -> f64 {
    (fe.window_frames * fe.hop_length) as f64 / fe.sample_rate.max(1) as f64
}

/// The window of the whole-clip statistics variants: long enough for 95 % of the training clips
/// (`lengths` in samples at 16 kHz) to be one window each, rounded up to a tenth of a second, at
/// most [`MAX_CLIP_WINDOW_SECS`] (a longer clip is cut into windows of that length, overlapping
/// as `window_overlap` says, like any other). A shorter clip is zero-padded to the window, which
/// the statistics leave out, so it is described by its own frames. Or why there is no such
/// variant: when that window is no longer than `window_secs`, it would be `statistics` itself.
pub(super) fn clip_window_secs(
    lengths: &[usize],
    window_secs: f64,
) -> std::result::Result<f64, String> {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let rank = ((sorted.len() as f64 * CLIP_WINDOW_SHARE).ceil() as usize).saturating_sub(1);
    let covering = sorted.get(rank).copied().unwrap_or(0);
    let secs = ((covering as f64 / audio_decode::SAMPLE_RATE as f64 * 10.0 - 1e-9).ceil() / 10.0)
        .min(MAX_CLIP_WINDOW_SECS);
    if secs <= window_secs + 1e-9 {
        return Err(format!(
            "{:.0} % of the training clips are no longer than the {window_secs} s window (window_secs) already",
            CLIP_WINDOW_SHARE * 100.0
        ));
    }
    Ok(secs)
}

/// The settings of the statistics candidate `variant` (one of [`STATISTICS_VARIANTS`]): `-clip`
/// windows of `clip_secs` (same overlap), `-noaug` no augmentation; the rest as `p`.
fn statistics_variant(p: &SoundParams, variant: &str, clip_secs: Option<f64>) -> SoundParams {
    let mut vp = p.clone();
    if let (true, Some(secs)) = (variant.contains("-clip"), clip_secs) {
        let fe = &p.frontend;
        let overlap = 1.0 - fe.window_hop_frames as f64 / fe.window_frames.max(1) as f64;
        vp.frontend = FrontEndConfig::new(secs, overlap, fe.trim_silence);
    }
    if variant.ends_with("-noaug") {
        vp.augment = SoundAugment {
            noise: false,
            gain: false,
            time_shift: false,
            speed: false,
        };
    }
    vp
}

/// One trained candidate's leaderboard entry: its window and whether it was trained on augmented
/// copies, validation scores, cross-validated scores when the choice was made by
/// cross-validation (the CNN says it entered with validation scores), or why it was not.
pub(super) fn leaderboard_entry(
    t: &Trained,
    validation_log_loss: Option<f64>,
    fit_secs: f64,
    cv_plan: &std::result::Result<CvPlan, String>,
) -> serde_json::Value {
    let mut entry = json!({
        "algorithm": t.name,
        "window_secs": window_secs(&t.frontend),
        "augmentation": t.augmented,
        "validation_accuracy": t.validation_accuracy,
        "validation_log_loss": validation_log_loss,
        "fit_secs": fit_secs,
        "head_selection": t.head_selection,
    });
    match (&t.cv, cv_plan) {
        (
            Some(CvScore {
                accuracy,
                log_loss,
                folds,
                clips,
                c,
            }),
            _,
        ) => {
            entry["cv_accuracy"] = json!(accuracy);
            entry["cv_log_loss"] = json!(log_loss);
            entry["cv_folds"] = json!(folds);
            entry["cv_clips"] = json!(clips);
            entry["cv_c"] = json!(c);
            entry["selected_by"] = json!("cross_validation");
            if let Ok(plan) = cv_plan {
                entry["cv_grouped_by"] = json!(plan.grouped_by);
            }
        }
        (None, Ok(_)) => {
            entry["selected_by"] = json!("validation (trained end to end; not cross-validated)");
        }
        (None, Err(reason)) if !reason.is_empty() => {
            entry["selected_by"] = json!("validation");
            entry["cv_skipped"] = json!(reason);
        }
        (None, Err(_)) => {}
    }
    entry
}

/// The old rule, where cross-validation cannot run: best validation accuracy, ties broken by
/// the lower validation log loss (the candidate right *and sure*), then the earlier one.
fn choose_by_validation(trained: &[(Trained, Option<f64>)]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, (t, loss)) in trained.iter().enumerate() {
        let better = best.is_none_or(|b| {
            let (b, b_loss) = &trained[b];
            let (a, other) = (
                t.validation_accuracy.unwrap_or(0.0),
                b.validation_accuracy.unwrap_or(0.0),
            );
            a > other
                || (a == other && loss.unwrap_or(f64::INFINITY) < b_loss.unwrap_or(f64::INFINITY))
        });
        if better {
            best = Some(i);
        }
    }
    best
}

/// YAMNet from the weights folder, or an error saying how to install it.
fn load_yamnet(device: &Device) -> Result<Yamnet> {
    if weights::available(&yamnet::weights_spec()).is_none() {
        let folder = weights::weights_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "$LATHE_WEIGHTS_DIR".into());
        return Err(Error::Weights(format!(
            "YAMNet's weights are not installed: run scripts/fetch-yamnet.sh, which puts \
             yamnet.safetensors in the weights folder ({folder}; $LATHE_WEIGHTS_DIR changes it)"
        )));
    }
    Yamnet::load(None, device)
}

/// Clips per class from which `auto` also trains the CNN from scratch (below it, a network
/// trained from nothing rarely beats the encoders and costs minutes).
const CNN_MIN_CLIPS_PER_CLASS: usize = 200;

/// The candidates `algorithm` asks for, cheapest first (ties go to the earlier one).
pub(super) fn candidates_for(
    ctx: &RunContext,
    p: &SoundParams,
    splits: &SoundSplits,
    no_validation: bool,
    clip_window: &std::result::Result<f64, String>,
) -> (Vec<&'static str>, Vec<serde_json::Value>) {
    let only = |a: &'static str| (vec![a], Vec::new());
    match p.algorithm.as_str() {
        "cnn" => only("cnn"),
        "transfer" => only("transfer"),
        "statistics" => only("statistics"),
        "whisper" => only("whisper"),
        "speech" => only("speech"),
        "yamnet" => only("yamnet"),
        _ if no_validation => {
            ctx.warn(
                "algorithm = \"auto\" needs validation data to choose; training the statistics model only (set validation_split > 0)",
                None,
            );
            only("statistics")
        }
        _ => {
            let per_class = splits.train.len() / splits.labels.len().max(1);
            let mut v = Vec::new();
            let mut skipped = Vec::new();
            // The statistics are cheap: their window and augmentation are chosen by the same
            // cross-validation, as candidates of their own.
            for variant in STATISTICS_VARIANTS {
                let why = if variant.ends_with("-noaug") && !p.augment.any() {
                    Err("augmentation is off (augment_*): statistics is trained without it".into())
                } else if variant.contains("-clip") {
                    clip_window.as_ref().map(|_| ()).map_err(String::clone)
                } else {
                    Ok(())
                };
                match why {
                    Ok(()) => v.push(variant),
                    Err(why) => skipped.push(json!({ "algorithm": variant, "skipped": why })),
                }
            }
            v.extend(["speech", "transfer"]);
            // YAMNet joins when its weights are installed in the weights folder.
            if weights::available(&yamnet::weights_spec()).is_some() {
                v.push("yamnet");
            } else {
                skipped.push(json!({
                    "algorithm": "yamnet",
                    "skipped": "weights not installed (scripts/fetch-yamnet.sh puts them in the weights folder)",
                }));
            }
            // Whisper joins when its weights are here (given, installed, or in the hub cache);
            // auto never downloads them.
            if p.whisper_weights.is_some()
                || weights::available(&whisper_encoder::weights_spec()).is_some()
            {
                v.push("whisper");
            } else {
                skipped.push(json!({
                    "algorithm": "whisper",
                    "skipped": "weights not installed (scripts/fetch-whisper-tiny.sh puts them in the weights folder)",
                }));
            }
            if per_class >= CNN_MIN_CLIPS_PER_CLASS {
                v.push("cnn");
            } else {
                skipped.push(json!({
                    "algorithm": "cnn",
                    "skipped": format!("fewer than {CNN_MIN_CLIPS_PER_CLASS} clips per class"),
                }));
            }
            (v, skipped)
        }
    }
}

/// Trains the candidate `algorithm` on the decoded clips (train, validation, test): the CNN
/// from scratch (taking `mel`, the front end the clips were cut with, when still there), or an
/// encoder (CREPE, speech, YAMNet, Whisper, or a statistics variant with `clip_window`) with a
/// head, cross-validated over `folds` when given.
#[allow(clippy::too_many_arguments)]
pub(super) fn train_candidate(
    ctx: &RunContext,
    p: &SoundParams,
    algorithm: &'static str,
    mel: &mut Option<LogMel>,
    num_classes: usize,
    [train_clips, val_clips, test_clips]: [&[Clip]; 3],
    folds: Option<&CvPlan>,
    clip_window: Option<f64>,
) -> Result<Trained> {
    let clips = [train_clips, val_clips, test_clips];
    Ok(match algorithm {
        "cnn" => train_cnn(
            ctx,
            p,
            mel.take()
                .unwrap_or_else(|| LogMel::new(p.frontend.clone())),
            num_classes,
            train_clips,
            val_clips,
        )?,
        "transfer" => {
            let weights = p
                .weights
                .as_ref()
                .map(|w| ctx.project.resolve(w))
                .or(ctx.options.weights.clone());
            let encoder = Encoder::Crepe(Box::new(Crepe::load(weights.as_deref(), &ctx.device)?));
            train_on_encoder(ctx, p, encoder, num_classes, clips, folds)?
        }
        "speech" => {
            let encoder = Encoder::Speech(Box::new(SpeechEmbedding::load(None, &ctx.device)?));
            train_on_encoder(ctx, p, encoder, num_classes, clips, folds)?
        }
        "yamnet" => {
            let encoder = Encoder::Yamnet(Box::new(load_yamnet(&ctx.device)?));
            train_on_encoder(ctx, p, encoder, num_classes, clips, folds)?
        }
        "whisper" => {
            let weights = p.whisper_weights.as_ref().map(|w| ctx.project.resolve(w));
            let encoder = Encoder::Whisper(Box::new(WhisperEncoder::load(
                weights.as_deref(),
                &ctx.device,
            )?));
            train_on_encoder(ctx, p, encoder, num_classes, clips, folds)?
        }
        variant => {
            let vp = statistics_variant(p, variant, clip_window);
            let encoder = Encoder::statistics(&vp.frontend);
            let mut t = train_on_encoder(ctx, &vp, encoder, num_classes, clips, folds)?;
            t.name = variant;
            t
        }
    })
}

/// The chosen candidate among `trained` (each with its validation log loss): by the
/// cross-validated scores when the choice is cross-validated (the CNN enters with its
/// validation scores over `n_val` clips), else by [`choose_by_validation`].
pub(super) fn pick(
    cv_plan: &std::result::Result<CvPlan, String>,
    trained: &[(Trained, Option<f64>)],
    n_val: usize,
) -> Option<usize> {
    if cv_plan.is_err() {
        return choose_by_validation(trained);
    }
    let scores: Vec<Score> = trained
        .iter()
        .map(|(t, loss)| match &t.cv {
            Some(cv) => Score {
                accuracy: cv.accuracy,
                log_loss: cv.log_loss,
                clips: cv.clips,
            },
            // The CNN (trained end to end) enters with its validation scores.
            None => Score {
                accuracy: t.validation_accuracy.unwrap_or(0.0),
                log_loss: loss.unwrap_or(f64::INFINITY),
                clips: n_val,
            },
        })
        .collect();
    candidate_cv::choose(&scores)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::params::ResolvedParams;
    use crate::templates::sound::params::param_specs;

    #[test]
    fn the_whole_clip_window_holds_95_percent_of_the_clips_in_one() {
        let secs = |s: f64| (s * 16_000.0) as usize;
        // 20 clips of 0.5–2.4 s and one of 30 s: the 95th percentile is 2.4 s.
        let mut lengths: Vec<usize> = (0..20).map(|i| secs(0.5 + 0.1 * i as f64)).collect();
        lengths.push(secs(30.0));
        assert_eq!(clip_window_secs(&lengths, 1.0), Ok(2.4));
        // Rounded up to a tenth of a second, capped at 10 s.
        assert_eq!(clip_window_secs(&[secs(2.41); 10], 1.0), Ok(2.5));
        assert_eq!(clip_window_secs(&[secs(42.0); 10], 1.0), Ok(10.0));
        // No longer than the window already: no whole-clip variant.
        assert!(clip_window_secs(&[secs(0.9); 10], 1.0).is_err());
        assert!(clip_window_secs(&[], 1.0).is_err());
    }

    #[test]
    fn statistics_variants_change_only_the_window_and_the_augmentation() {
        let p = SoundParams::from_resolved(&ResolvedParams::resolve(&param_specs(), &[]).unwrap());
        assert!(p.augment.any());
        let same = statistics_variant(&p, "statistics", Some(3.0));
        assert_eq!(same.frontend, p.frontend);
        assert_eq!(same.augment, p.augment);
        let clip = statistics_variant(&p, "statistics-clip", Some(3.0));
        assert_eq!(clip.frontend.window_frames, 300);
        assert_eq!(clip.frontend.window_hop_frames, 150);
        assert_eq!(window_secs(&clip.frontend), 3.0);
        assert_eq!(clip.augment, p.augment);
        let plain = statistics_variant(&p, "statistics-clip-noaug", Some(3.0));
        assert_eq!(plain.frontend, clip.frontend);
        assert!(!plain.augment.any());
        let noaug = statistics_variant(&p, "statistics-noaug", Some(3.0));
        assert_eq!(noaug.frontend, p.frontend);
        assert!(!noaug.augment.any());
    }
}
