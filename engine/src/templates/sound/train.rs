//! The sound classifier: scan class folders of audio files, decode them to 16 kHz mono, cut
//! log-mel windows, train a compact CNN from scratch (AdamW, warm-up + cosine schedule, fresh
//! noise / gain / shift / speed augmentation every epoch, a checkpoint every epoch, early
//! stopping on file-level validation accuracy), evaluate per file (mean of window
//! probabilities) and export.

use super::candidate_cv::{self, CvScore};
use super::candidates::{
    candidates_for, clip_window_secs, leaderboard_entry, pick, train_candidate, window_secs,
};
use super::cnn::file_probabilities;
use super::outputs::write_run_outputs;
use crate::data::audio_decode::{self, AUDIO_EXTENSIONS};
use crate::data::audio_facts;
use crate::data::audio_frontend::{self, FrontEndConfig, LogMel};
use crate::data::class_splits::{self, ClassSplits, SplitSources};
use crate::data::image_folder::{FolderScan, LabeledFile};
use crate::data::{DataKind, DatasetSummary};
use crate::error::{Error, Result};
use crate::eval::ClassificationReport;
use crate::params::{ParamSpec, ResolvedParams};
use crate::task::{Model, ResolvedData, ScanProgress, Task};
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
    let splits = load_data(ctx, &p, &data)?;

    let mel = LogMel::new(p.frontend.clone());
    let [train_clips, val_clips, test_clips] = decode_splits(ctx, &p, &mel, &splits)?;
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
        let started = std::time::Instant::now();
        let trained = train_candidate(
            ctx,
            &p,
            algorithm,
            &mut mel,
            splits.labels.len(),
            [&train_clips[..], &val_clips[..], &test_clips[..]],
            cv_plan.as_ref().ok(),
            clip_window.as_ref().ok().copied(),
        )?;
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
    let Some(pick) = pick(&cv_plan, &trained_all, val_clips.len()) else {
        return Err(Error::Unsupported("no model was trained".into()));
    };
    if let Some(entry) = leaderboard.get_mut(first_entry + pick) {
        entry["chosen"] = json!(true);
    }
    let (chosen, _) = trained_all.swap_remove(pick);
    drop(trained_all);

    let reports = evaluate_chosen(
        ctx,
        &chosen,
        &splits.labels,
        [("validation", &val_clips), ("test", &test_clips)],
    )?;
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

/// Scans the class folders and accepts the scan: its warnings become events, its first error
/// stops the run.
fn load_data(ctx: &RunContext, p: &SoundParams, data: &ResolvedData) -> Result<SoundSplits> {
    let mut scanning = ctx.phase(Phase::Scanning, 0);
    let splits = scan_splits(
        data,
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
    Ok(splits)
}

/// Every split's clips decoded and cut into windows, in one phase: training clips up to
/// `max_train_secs` with their samples kept, validation and test whole (their samples kept
/// only when an encoder needs them).
fn decode_splits(
    ctx: &RunContext,
    p: &SoundParams,
    mel: &LogMel,
    splits: &SoundSplits,
) -> Result<[Vec<Clip>; 3]> {
    let max_train = (p.max_train_secs * audio_decode::SAMPLE_RATE as f64) as usize;
    let total = (splits.train.len() + splits.validation.len() + splits.test.len()) as u64;
    let waves = p.algorithm != "cnn";
    let mut phase = ctx.phase(Phase::ExtractingFeatures, total);
    let mut done = 0;
    let train_clips = decode_clips(
        ctx,
        mel,
        &splits.train,
        true,
        max_train,
        &mut done,
        &mut phase,
    )?;
    let val_clips = decode_clips(
        ctx,
        mel,
        &splits.validation,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    let test_clips = decode_clips(
        ctx,
        mel,
        &splits.test,
        waves,
        usize::MAX,
        &mut done,
        &mut phase,
    )?;
    Ok([train_clips, val_clips, test_clips])
}

/// The chosen model's report on each (split, clips) that has clips, announced as it is made.
fn evaluate_chosen(
    ctx: &RunContext,
    chosen: &Trained,
    labels: &[String],
    splits: [(&str, &Vec<Clip>); 2],
) -> Result<Vec<(String, ClassificationReport)>> {
    let mut reports = Vec::new();
    for (name, clips) in splits {
        if clips.is_empty() {
            continue;
        }
        let mut phase = ctx.phase(Phase::Evaluating, clips.len() as u64);
        let probs = chosen.file_probabilities(name, clips)?;
        let truth: Vec<usize> = clips.iter().map(|c| c.label).collect();
        let inputs: Vec<PathBuf> = clips.iter().map(|c| c.path.clone()).collect();
        let r = ClassificationReport::compute(labels, &truth, &probs, &inputs);
        ctx.emit(Event::Evaluated {
            split: name.into(),
            num_examples: r.num_examples,
            metric: "accuracy".into(),
            value: r.accuracy,
        });
        reports.push((name.to_string(), r));
        phase.set(clips.len() as u64);
    }
    Ok(reports)
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
