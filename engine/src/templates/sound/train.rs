//! The sound classifier: scan class folders of audio files, decode them to 16 kHz mono, cut
//! log-mel windows, train a compact CNN from scratch (AdamW, warm-up + cosine schedule, fresh
//! noise / gain / shift / speed augmentation every epoch, a checkpoint every epoch, early
//! stopping on file-level validation accuracy), evaluate per file (mean of window
//! probabilities) and export.

use super::candidate_cv::{self, CvPlan, CvScore, Score};
use super::cnn::{file_probabilities, train_cnn};
use super::encoder_fit::train_on_encoder;
use super::outputs::write_run_outputs;
use crate::data::audio_augment::SoundAugment;
use crate::data::audio_decode::{self, AUDIO_EXTENSIONS};
use crate::data::audio_facts;
use crate::data::audio_frontend::{self, FrontEndConfig, LogMel};
use crate::data::class_splits::{self, ClassSplits, SplitSources};
use crate::data::image_folder::{FolderScan, LabeledFile};
use crate::data::{DataKind, DatasetSummary};
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::nets::crepe::Crepe;
use crate::nets::speech_embedding::SpeechEmbedding;
use crate::nets::weights;
use crate::nets::whisper_encoder::{self, WhisperEncoder};
use crate::nets::yamnet::{self, Yamnet};
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
use crate::templates::sound::encoder::Encoder;
use crate::templates::sound::model::{self as sound_model, SoundModel, SoundNet, TransferNet};
pub use crate::templates::sound::params::{SoundParams, param_specs};
use crate::train::scan_report::SplitSizes;
use crate::train::{Control, EpochMetrics, Event, Phase, RunContext};
use candle_core::Device;
use candle_nn::VarMap;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// What to try when the model is no better than guessing.
const SOUND_ADVICE: &str = "Check that each class folder holds the right clips, add more clips per class (several seconds each helps), or try another encoder.";

/// Sound classification (a CNN on log-mel windows).
pub struct SoundClassification;

impl Task for SoundClassification {
    fn id(&self) -> &'static str {
        sound_model::TASK_ID
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        param_specs()
    }

    fn scan(
        &self,
        data: &ResolvedData,
        params: &ResolvedParams,
        progress: ScanProgress<'_>,
        control: &Control,
    ) -> Result<DatasetSummary> {
        Ok(scan_splits(
            data,
            params.float("validation_split"),
            params.float("window_secs"),
            progress,
            control,
        )?
        .summary)
    }

    fn train(&self, ctx: &RunContext) -> Result<PathBuf> {
        train(ctx)
    }

    fn load(&self, model_dir: &Path, device: &Device) -> Result<Box<dyn Model>> {
        Ok(Box::new(SoundModel::load(model_dir, device)?))
    }
}

fn sound_probe(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    audio_decode::probe(path, bytes)
}

/// The folder-per-class scan settings for sound files.
pub fn sound_scan(split: &str) -> FolderScan<'_> {
    FolderScan {
        split,
        extensions: AUDIO_EXTENSIONS,
        noun: "sound file",
        probe: &sound_probe,
    }
}

/// The scanned splits of a sound dataset.
pub type SoundSplits = ClassSplits;

/// Scans every split, runs the health checks and splits validation off training if needed.
/// Scans the class folders, then reads every file's header for the summary's sample rates and
/// clip lengths and their warnings (`data::audio_facts`); `window_secs` is the analysis window.
pub fn scan_splits(
    data: &ResolvedData,
    validation_split: f64,
    window_secs: f64,
    progress: ScanProgress<'_>,
    control: &Control,
) -> Result<SoundSplits> {
    let sources = SplitSources {
        train: &data.train,
        validation: data.validation.as_deref(),
        test: data.test.as_deref(),
        scan: &sound_scan,
        noun: "sound file",
        kind: DataKind::Sound,
    };
    let mut splits = class_splits::scan(&sources, validation_split, data.seed, progress, &|| {
        control.check_cancelled()
    })?;
    let files: Vec<PathBuf> = [&splits.train, &splits.validation, &splits.test]
        .into_iter()
        .flatten()
        .map(|f| f.path.clone())
        .collect();
    let (facts, issues) = audio_facts::summarize(&files, window_secs);
    splits.summary.facts.extend(facts);
    splits.summary.issues.extend(issues);
    Ok(splits)
}

/// A decoded file: its label, path, clean windows and (training files) the waveform.
pub(super) struct Clip {
    pub(super) path: PathBuf,
    /// BLAKE3 of the file content (keys the feature cache).
    pub(super) hash: [u8; 32],
    pub(super) label: usize,
    pub(super) windows: Vec<Vec<f32>>,
    pub(super) wave: Vec<f32>,
}

/// Decodes `files` in parallel into clips; undecodable files are warned about and left out.
fn decode_clips(
    ctx: &RunContext,
    mel: &LogMel,
    files: &[LabeledFile],
    keep_wave: bool,
    max_samples: usize,
    done: &mut u64,
    phase: &mut crate::train::context::PhaseTracker<'_>,
) -> Result<Vec<Clip>> {
    let mut clips = Vec::with_capacity(files.len());
    for chunk in files.chunks(64) {
        ctx.check()?;
        let decoded: Vec<std::result::Result<(Clip, bool), String>> = chunk
            .par_iter()
            .map(|f| {
                let (wave, truncated) = audio_decode::decode_to_vec(&f.path, max_samples)?;
                let windows = audio_frontend::windows(mel, &wave);
                Ok((
                    Clip {
                        path: f.path.clone(),
                        hash: f.hash,
                        label: f.label,
                        windows,
                        wave: if keep_wave { wave } else { Vec::new() },
                    },
                    truncated,
                ))
            })
            .collect();
        for (f, r) in chunk.iter().zip(decoded) {
            match r {
                Ok((clip, truncated)) => {
                    if truncated {
                        ctx.warn(
                            format!(
                                "longer than max_train_secs ({:.0} s): only its start is used",
                                max_samples as f64 / audio_decode::SAMPLE_RATE as f64
                            ),
                            Some(&f.path),
                        );
                    }
                    clips.push(clip);
                }
                Err(reason) => ctx.warn(format!("{reason}; the file was skipped"), Some(&f.path)),
            }
        }
        *done += chunk.len() as u64;
        phase.set(*done);
    }
    Ok(clips)
}

fn train(ctx: &RunContext) -> Result<PathBuf> {
    let p = SoundParams::from_resolved(&ctx.params);
    let data = ResolvedData::of(&ctx.project);
    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_splits(
        &data,
        p.validation_split,
        p.frontend.window_frames as f64 * p.frontend.hop_length as f64
            / audio_decode::SAMPLE_RATE as f64,
        &mut |d, t| {
            scanning.set_total(t);
            scanning.set(d)
        },
        &ctx.control,
    )?;
    ctx.accept_scan(
        &splits.summary,
        &data.train,
        SplitSizes {
            train: splits.train.len(),
            validation: splits.validation.len(),
            test: splits.test.len(),
        },
        &splits.labels,
    )?;

    let mel = LogMel::new(p.frontend.clone());
    let max_train = (p.max_train_secs * audio_decode::SAMPLE_RATE as f64) as usize;
    let total = (splits.train.len() + splits.validation.len() + splits.test.len()) as u64;
    let waves = p.algorithm != "cnn";
    let mut phase = ctx.phase(Phase::ExtractingFeatures, total);
    let mut done = 0;
    let train_clips = decode_clips(
        ctx,
        &mel,
        &splits.train,
        true,
        max_train,
        &mut done,
        &mut phase,
    )?;
    let val_clips = decode_clips(
        ctx,
        &mel,
        &splits.validation,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    let test_clips = decode_clips(
        ctx,
        &mel,
        &splits.test,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    if train_clips.is_empty() {
        return Err(Error::data(
            "no training sound file could be decoded; check the warnings above",
            &data.train,
        ));
    }
    let lengths: Vec<usize> = train_clips.iter().map(|c| c.wave.len()).collect();
    let clip_window = clip_window_secs(&lengths, window_secs(&p.frontend));
    let (algorithms, mut leaderboard) =
        candidates_for(ctx, &p, &splits, val_clips.is_empty(), &clip_window);
    // Choosing among several: encoder candidates are cross-validated over all training +
    // validation clips (`candidate_cv`) unless a class has too few clips for it; the folds keep
    // a speaker's clips together when the files say who speaks.
    let cv_plan = if algorithms.len() > 1 {
        let all = || train_clips.iter().chain(&val_clips);
        let labels: Vec<u32> = all().map(|c| c.label as u32).collect();
        let hints = candidate_cv::speaker_hints(all().map(|c| {
            let class = splits.labels.get(c.label).map_or("", String::as_str);
            (c.path.as_path(), class)
        }));
        candidate_cv::plan(&labels, splits.labels.len(), hints, ctx.project.seed)
    } else {
        Err(String::new())
    };
    let mut trained_all: Vec<(Trained, Option<f64>)> = Vec::new();
    let first_entry = leaderboard.len();
    let mut mel = Some(mel);
    for algorithm in algorithms {
        let folds = cv_plan.as_ref().ok();
        let started = std::time::Instant::now();
        let trained = match algorithm {
            "cnn" => train_cnn(
                ctx,
                &p,
                mel.take()
                    .unwrap_or_else(|| LogMel::new(p.frontend.clone())),
                splits.labels.len(),
                &train_clips,
                &val_clips,
            )?,
            "transfer" => {
                let weights = p
                    .weights
                    .as_ref()
                    .map(|w| ctx.project.resolve(w))
                    .or(ctx.options.weights.clone());
                let encoder =
                    Encoder::Crepe(Box::new(Crepe::load(weights.as_deref(), &ctx.device)?));
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips, folds)?
            }
            "speech" => {
                let encoder = Encoder::Speech(Box::new(SpeechEmbedding::load(None, &ctx.device)?));
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips, folds)?
            }
            "yamnet" => {
                let encoder = Encoder::Yamnet(Box::new(load_yamnet(&ctx.device)?));
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips, folds)?
            }
            "whisper" => {
                let weights = p.whisper_weights.as_ref().map(|w| ctx.project.resolve(w));
                let encoder = Encoder::Whisper(Box::new(WhisperEncoder::load(
                    weights.as_deref(),
                    &ctx.device,
                )?));
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                train_on_encoder(ctx, &p, encoder, splits.labels.len(), clips, folds)?
            }
            variant => {
                let vp = statistics_variant(&p, variant, clip_window.as_ref().ok().copied());
                let encoder = Encoder::statistics(&vp.frontend);
                let clips = [&train_clips[..], &val_clips[..], &test_clips[..]];
                let mut t = train_on_encoder(ctx, &vp, encoder, splits.labels.len(), clips, folds)?;
                t.name = variant;
                t
            }
        };
        // Validation log loss: on the leaderboard, the CNN's second score when the choice is
        // cross-validated, and the tie-break of the validation rule (`choose_by_validation`).
        let loss = if val_clips.is_empty() {
            None
        } else {
            Some(log_loss(
                &trained.file_probabilities("validation", &val_clips)?,
                &val_clips,
            ))
        };
        leaderboard.push(leaderboard_entry(
            &trained,
            loss,
            started.elapsed().as_secs_f64(),
            &cv_plan,
        ));
        trained_all.push((trained, loss));
    }
    let pick = if cv_plan.is_ok() {
        let n_val = val_clips.len();
        let scores: Vec<Score> = trained_all
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
    } else {
        choose_by_validation(&trained_all)
    };
    let Some(pick) = pick else {
        return Err(Error::Unsupported("no model was trained".into()));
    };
    if let Some(entry) = leaderboard.get_mut(first_entry + pick) {
        entry["chosen"] = json!(true);
    }
    let (chosen, _) = trained_all.swap_remove(pick);
    drop(trained_all);

    let mut reports = Vec::new();
    for (name, clips) in [("validation", &val_clips), ("test", &test_clips)] {
        if clips.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, clips.len() as u64);
        let probs = chosen.file_probabilities(name, clips)?;
        let truth: Vec<usize> = clips.iter().map(|c| c.label).collect();
        let inputs: Vec<PathBuf> = clips.iter().map(|c| c.path.clone()).collect();
        let r = ClassificationReport::compute(&splits.labels, &truth, &probs, &inputs);
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
        phase.set(clips.len() as u64);
    }
    if let Some(w) = crate::eval::usefulness::first_classifier_warning(&reports, SOUND_ADVICE) {
        ctx.warn(w, None);
    }
    let cross_validation = match &cv_plan {
        Ok(plan) => json!(plan),
        Err(why) if !why.is_empty() => json!({ "skipped": why }),
        Err(_) => serde_json::Value::Null,
    };
    write_run_outputs(
        ctx,
        &chosen,
        &splits,
        &reports,
        &leaderboard,
        cross_validation,
    )
}

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
fn window_secs(fe: &FrontEndConfig) -> f64 {
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
fn leaderboard_entry(
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
fn candidates_for(
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

/// A trained candidate model.
pub(crate) struct Trained {
    pub name: &'static str,
    /// The front end whose windows the model reads (the statistics variants' own window); what
    /// the model folder records, so `lathe predict` and the ONNX export cut the same windows.
    pub frontend: FrontEndConfig,
    /// Whether it was fitted on augmented copies of the training clips too.
    pub augmented: bool,
    pub validation_accuracy: Option<f64>,
    /// Out-of-fold scores over training + validation clips (encoder candidates under `auto`).
    pub(super) cv: Option<CvScore>,
    /// How the head on encoder features was chosen (`train::head_choice`).
    pub head_selection: Option<serde_json::Value>,
    pub outcome: FitOutcome,
    pub model: TrainedModel,
}

pub(crate) enum TrainedModel {
    Cnn {
        net: SoundNet,
        varmap: VarMap,
    },
    /// The transfer model and its per-window probabilities of the validation and test clips.
    Transfer {
        net: TransferNet,
        validation: Vec<Vec<f32>>,
        test: Vec<Vec<f32>>,
    },
}

impl Trained {
    fn file_probabilities(&self, split: &str, clips: &[Clip]) -> Result<Vec<Vec<f32>>> {
        match &self.model {
            TrainedModel::Cnn { net, .. } => file_probabilities(net, clips),
            TrainedModel::Transfer {
                validation, test, ..
            } => Ok(if split == "test" {
                test.clone()
            } else {
                validation.clone()
            }),
        }
    }
}

/// File-level accuracy of per-file probabilities.
/// Mean −log p(true label) over `clips` (probabilities floored at 1e-7).
pub(super) fn log_loss(probs: &[Vec<f32>], clips: &[Clip]) -> f64 {
    let n = clips.len().max(1) as f64;
    probs
        .iter()
        .zip(clips)
        .map(|(p, c)| {
            -f64::from(p.get(c.label).copied().unwrap_or(0.0))
                .max(1e-7)
                .ln()
        })
        .sum::<f64>()
        / n
}

pub(super) fn accuracy(probs: &[Vec<f32>], clips: &[Clip]) -> f64 {
    let correct = probs
        .iter()
        .zip(clips)
        .filter(|(p, c)| crate::eval::metrics::argmax(p) == c.label)
        .count();
    correct as f64 / clips.len().max(1) as f64
}

/// How training went.
pub(crate) struct FitOutcome {
    pub(super) history: Vec<EpochMetrics>,
    pub(super) best_epoch: usize,
    pub(super) stopped_early: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
