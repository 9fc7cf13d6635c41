//! How `algorithm = "auto"` chooses among sound candidates: k-fold cross-validation of each
//! encoder candidate over every training and validation clip (grouped by clip, stratified by
//! class, seeded by the project seed) on the window features already extracted, with the
//! logistic head at the `C` that candidate's head selection chose, scored per clip (mean of its
//! windows' probabilities); and the rule that picks the winner from those scores
//! ([`choose`]). A few dozen validation clips, where candidates tie at 0.98–1.0, made the
//! choice noise; out-of-fold scores over all clips do not.
//!
//! Folds are made once per run ([`plan`]) and shared by every candidate. When the files carry a
//! speaker hint ([`speaker_hints`]: a subfolder inside each class folder, or a file-name prefix
//! before a trailing number such as `alice-3.wav`), whole groups go to one fold, so a candidate
//! is scored on voices (or sessions, or devices) it was not fitted on — what a test set of new
//! speakers asks of it, and what clip-level folds, where every speaker is in every fold, cannot
//! show (augmentation's worth, say). A hint that cannot make balanced folds is not used, and the
//! plan says why.

use crate::error::Result;
use crate::learners::logistic::{self, Link, Rows, Settings};
use crate::train::RunContext;
use crate::train::fit::Features;
use crate::train::fit_logistic::Scaling;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Folds when every class has enough clips.
const FOLDS: usize = 5;
/// Fewest folds worth running; with fewer, the choice falls back to the validation split.
const MIN_FOLDS: usize = 3;
/// Held-out clips of each class a fold must have at least.
const MIN_PER_CLASS_PER_FOLD: usize = 2;

/// One clip's window features: clean windows (scored when held out, fitted otherwise) and
/// augmented copies' windows (only ever fitted).
pub(super) struct ClipRows {
    pub label: u32,
    pub clean: Vec<f32>,
    pub augmented: Vec<f32>,
}

/// Out-of-fold scores of one candidate, for the leaderboard.
#[derive(Clone, Debug, Serialize)]
pub(super) struct CvScore {
    pub accuracy: f64,
    pub log_loss: f64,
    pub folds: usize,
    pub clips: usize,
    /// The logistic head's inverse L2 strength used in every fold.
    pub c: f64,
}

/// Folds for clips of `labels` (5, fewer when a class is small so each fold holds at least two
/// clips of each class), or why cross-validation is not run.
pub(super) fn folds_for(labels: &[u32], classes: usize) -> std::result::Result<usize, String> {
    let mut counts = vec![0usize; classes.max(1)];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let smallest = counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0);
    let folds = (smallest / MIN_PER_CLASS_PER_FOLD).min(FOLDS);
    if folds < MIN_FOLDS {
        return Err(format!(
            "fewer than {} training + validation clips in a class ({smallest}): chosen on the validation split",
            MIN_FOLDS * MIN_PER_CLASS_PER_FOLD
        ));
    }
    Ok(folds)
}

/// Where a clip's speaker hint comes from.
pub(super) const SUBFOLDER: &str = "subfolder";
/// The file name before its trailing number (`alice-3.wav` → `alice`).
pub(super) const FILE_PREFIX: &str = "file-name prefix";

/// Each clip's group (speaker, session, device…) and where the groups were read from.
#[derive(Debug, PartialEq)]
pub(super) struct SpeakerHints {
    pub groups: Vec<String>,
    pub source: &'static str,
}

/// The group of each clip (`(path, class name)`, in clip order): the name of the folder holding
/// it when every clip sits in a subfolder of its class folder (`class/speaker/clip.wav`), else
/// the file name without its extension, its trailing number and the separators before it
/// (`en_f2-1.wav` → `en_f2`, `0a7c2a8d_nohash_0.wav` → `0a7c2a8d_nohash`) when every clip has one; or why there is
/// no hint (numbered files such as `00042.wav`, mixed layouts, every prefix different).
pub(super) fn speaker_hints<'a>(
    clips: impl Iterator<Item = (&'a Path, &'a str)>,
) -> std::result::Result<SpeakerHints, String> {
    let mut subfolders = Vec::new();
    let mut prefixes = Vec::new();
    for (path, class) in clips {
        let parent = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        subfolders.push((parent != class && !parent.is_empty()).then(|| parent.to_string()));
        let stem = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let prefix = stem
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches(|c: char| "-_. ".contains(c));
        prefixes.push((!prefix.is_empty()).then(|| prefix.to_string()));
    }
    let all = |v: Vec<Option<String>>| v.into_iter().collect::<Option<Vec<String>>>();
    let (groups, source) = if let Some(g) = all(subfolders) {
        (g, SUBFOLDER)
    } else if let Some(g) = all(prefixes) {
        (g, FILE_PREFIX)
    } else {
        return Err("no speaker hint (no subfolders in the class folders, and some file names are numbers alone)".into());
    };
    let distinct = groups
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if distinct * 2 > groups.len() {
        return Err(format!(
            "no speaker hint: {distinct} different {source}es for {} clips",
            groups.len()
        ));
    }
    Ok(SpeakerHints { groups, source })
}

/// The folds every candidate is scored on: `(clip, fold)` for every clip, and how they were made.
#[derive(Clone, Debug, Serialize)]
pub(super) struct CvPlan {
    pub folds: usize,
    #[serde(skip)]
    pub assignment: Vec<(usize, usize)>,
    /// `clip` (stratified by class), or the hint whole groups were kept together by.
    pub grouped_by: &'static str,
    /// Distinct groups when grouped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
    /// Why the folds are not grouped by a speaker hint (none found, or it could not make folds
    /// holding every class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_grouped: Option<String>,
}

/// Folds for clips of `labels` ([`folds_for`]): grouped by `hints` when there are some and they
/// give every fold at least two clips of every class, else stratified by class over clips. Or
/// why cross-validation is not run.
pub(super) fn plan(
    labels: &[u32],
    classes: usize,
    hints: std::result::Result<SpeakerHints, String>,
    seed: u64,
) -> std::result::Result<CvPlan, String> {
    let folds = folds_for(labels, classes)?;
    let not_grouped = match hints {
        Ok(h) => {
            let distinct = h
                .groups
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len();
            match grouped_folds(labels, &h.groups, folds.min(distinct), seed) {
                Some(assignment) => {
                    return Ok(CvPlan {
                        folds: folds.min(distinct),
                        assignment,
                        grouped_by: h.source,
                        groups: Some(distinct),
                        not_grouped: None,
                    });
                }
                None => format!(
                    "the {distinct} groups by {} cannot make {} folds with {MIN_PER_CLASS_PER_FOLD} clips of every class each",
                    h.source,
                    folds.min(distinct)
                ),
            }
        }
        Err(why) => why,
    };
    Ok(CvPlan {
        folds,
        assignment: crate::data::split::stratified_folds(labels, usize::MAX, folds, seed),
        grouped_by: "clip",
        groups: None,
        not_grouped: Some(not_grouped),
    })
}

/// `(clip, fold)` with every group's clips in one fold, or `None` when some fold would hold
/// fewer than [`MIN_PER_CLASS_PER_FOLD`] clips of a class (or there are too few groups). Groups
/// are dealt largest first (equal sizes in a seeded order), each to the fold holding the fewest
/// clips of the group's classes so far, then the fewest clips.
fn grouped_folds(
    labels: &[u32],
    groups: &[String],
    folds: usize,
    seed: u64,
) -> Option<Vec<(usize, usize)>> {
    if folds < MIN_FOLDS || labels.len() != groups.len() {
        return None;
    }
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g.as_str()).or_default().push(i);
    }
    let mut order: Vec<(&str, Vec<usize>)> = members.into_iter().collect();
    order.sort_by(|a, b| a.0.cmp(b.0));
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x6C0F_F0D5));
    order.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    let mut counts = vec![vec![0usize; classes]; folds];
    let mut out = Vec::with_capacity(labels.len());
    for (_, clips) in &order {
        let mut own = vec![0usize; classes];
        for &i in clips {
            if let Some(n) = labels.get(i).and_then(|&l| own.get_mut(l as usize)) {
                *n += 1;
            }
        }
        let (fold, held) = counts.iter_mut().enumerate().min_by_key(|(f, held)| {
            let overlap: usize = own.iter().zip(held.iter()).map(|(a, b)| a * b).sum();
            (overlap, held.iter().sum::<usize>(), *f)
        })?;
        for (c, n) in held.iter_mut().zip(&own) {
            *c += n;
        }
        out.extend(clips.iter().map(|&i| (i, fold)));
    }
    let present: Vec<bool> = (0..classes)
        .map(|c| labels.iter().any(|&l| l as usize == c))
        .collect();
    let balanced = counts.iter().all(|fold| {
        fold.iter()
            .zip(&present)
            .all(|(&n, &p)| !p || n >= MIN_PER_CLASS_PER_FOLD)
    });
    out.sort_unstable();
    balanced.then_some(out)
}

/// Out-of-fold clip accuracy and log loss of the logistic head (`c`, at most `max_iterations`
/// L-BFGS iterations, as the final fit) over `clips` in the folds of `plan`.
pub(super) fn cross_validate(
    ctx: &RunContext,
    clips: &[ClipRows],
    dim: usize,
    classes: usize,
    plan: &CvPlan,
    c: f64,
    max_iterations: usize,
) -> Result<CvScore> {
    let (folds, assignment) = (plan.folds, &plan.assignment);
    let (mut correct, mut loss) = (0usize, 0f64);
    for fold in 0..folds {
        let mut fit = Features::new(dim);
        for &(i, f) in assignment {
            if f == fold {
                continue;
            }
            let Some(clip) = clips.get(i) else { continue };
            for row in clip.clean.chunks(dim).chain(clip.augmented.chunks(dim)) {
                fit.x.extend_from_slice(row);
                fit.labels.push(clip.label);
            }
        }
        ctx.check()?;
        let scaling = Scaling::of(&fit);
        let x = scaling.apply(&fit.x);
        let rows = Rows {
            x: &x,
            dim,
            labels: &fit.labels,
            targets: &[],
            weights: None,
        };
        let settings = Settings {
            l2: 1.0 / (c * fit.labels.len().max(1) as f64),
            max_iterations: max_iterations.max(1),
            tolerance: 1e-4,
        };
        let model = logistic::fit(
            rows,
            classes,
            Link::Softmax,
            &settings,
            None,
            &mut |_, _| {
                ctx.check()?;
                Ok(false)
            },
        )?;
        for &(i, _) in assignment.iter().filter(|a| a.1 == fold) {
            let Some(clip) = clips.get(i) else { continue };
            let probs = model.probabilities(&scaling.apply(&clip.clean));
            let mut mean = vec![0f64; classes];
            for row in &probs {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += f64::from(*v);
                }
            }
            let n = probs.len().max(1) as f64;
            mean.iter_mut().for_each(|m| *m /= n);
            let best = (0..classes)
                .max_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            correct += usize::from(best == clip.label as usize);
            loss -= mean
                .get(clip.label as usize)
                .copied()
                .unwrap_or(0.0)
                .max(1e-7)
                .ln();
        }
    }
    let n = assignment.len().max(1) as f64;
    Ok(CvScore {
        accuracy: correct as f64 / n,
        log_loss: loss / n,
        folds,
        clips: assignment.len(),
        c,
    })
}

/// A candidate's score for [`choose`]: accuracy and log loss over `clips` clips.
#[derive(Clone, Copy, Debug)]
pub(super) struct Score {
    pub accuracy: f64,
    pub log_loss: f64,
    pub clips: usize,
}

/// The index of the candidate to keep. Accuracy differences of a clip or two are noise, so
/// among the candidates whose accuracy is within one standard error of the best one's
/// (√(p(1−p)/n) over its clips) the one with the lowest log loss wins: a proper score that
/// prefers a candidate that is right *and sure* and is far less noisy than the count of right
/// clips. Equal log losses go to the earlier (cheaper) candidate.
pub(super) fn choose(scores: &[Score]) -> Option<usize> {
    let best = scores
        .iter()
        .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))?;
    let floor = best.accuracy
        - crate::eval::metrics::proportion_standard_error(best.accuracy, best.clips)
        - 1e-12;
    let mut chosen: Option<usize> = None;
    for (i, s) in scores.iter().enumerate() {
        if s.accuracy >= floor && chosen.is_none_or(|c| s.log_loss < scores[c].log_loss) {
            chosen = Some(i);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(accuracy: f64, log_loss: f64) -> Score {
        Score {
            accuracy,
            log_loss,
            clips: 400,
        }
    }

    #[test]
    fn within_one_standard_error_the_lowest_log_loss_wins() {
        // SE of 0.95 on 400 clips ≈ 0.011: 0.945 is in the running, 0.93 is not.
        assert_eq!(
            choose(&[s(0.95, 0.20), s(0.945, 0.15), s(0.93, 0.05)]),
            Some(1)
        );
        assert_eq!(choose(&[s(0.95, 0.10), s(0.945, 0.15)]), Some(0));
        // Equal scores: the earlier (cheaper) candidate.
        assert_eq!(choose(&[s(1.0, 0.1), s(1.0, 0.1)]), Some(0));
        assert_eq!(choose(&[]), None);
    }

    fn hints(paths: &[(&str, &str)]) -> std::result::Result<SpeakerHints, String> {
        let paths: Vec<(std::path::PathBuf, &str)> = paths
            .iter()
            .map(|(p, c)| (std::path::PathBuf::from(p), *c))
            .collect();
        speaker_hints(paths.iter().map(|(p, c)| (p.as_path(), *c)))
    }

    #[test]
    fn speaker_hints_come_from_subfolders_or_file_name_prefixes() {
        let h = hints(&[
            ("/d/go/awb-0.wav", "go"),
            ("/d/go/awb-1.wav", "go"),
            ("/d/no/en-029_f3-12.wav", "no"),
            ("/d/no/awb-2.wav", "no"),
        ])
        .unwrap();
        assert_eq!(h.source, FILE_PREFIX);
        assert_eq!(h.groups, ["awb", "awb", "en-029_f3", "awb"]);
        let h = hints(&[
            ("/d/yes/0a7c2a8d/0a7c2a8d_nohash_0.wav", "yes"),
            ("/d/no/0a7c2a8d/x1.wav", "no"),
            ("/d/no/1b2c/x2.wav", "no"),
            ("/d/yes/1b2c/x3.wav", "yes"),
        ])
        .unwrap();
        assert_eq!(h.source, SUBFOLDER);
        assert_eq!(h.groups, ["0a7c2a8d", "0a7c2a8d", "1b2c", "1b2c"]);
        // Numbered files carry no hint; nor do prefixes that are all different.
        assert!(
            hints(&[
                ("/d/kick/00008.wav", "kick"),
                ("/d/snare/00009.wav", "snare")
            ])
            .is_err()
        );
        assert!(
            hints(&[
                ("/d/a/rec-a1.wav", "a"),
                ("/d/a/rec-b1.wav", "a"),
                ("/d/b/rec-c1.wav", "b")
            ])
            .is_err()
        );
    }

    #[test]
    fn grouped_folds_keep_each_speaker_in_one_fold_with_every_class() {
        // 10 speakers × 3 classes × 2 clips.
        let (mut labels, mut groups) = (Vec::new(), Vec::new());
        for speaker in 0..10 {
            for class in 0..3u32 {
                for _ in 0..2 {
                    labels.push(class);
                    groups.push(format!("s{speaker}"));
                }
            }
        }
        let plan = plan(
            &labels,
            3,
            Ok(SpeakerHints {
                groups: groups.clone(),
                source: FILE_PREFIX,
            }),
            7,
        )
        .unwrap();
        assert_eq!(
            (plan.folds, plan.grouped_by, plan.groups),
            (5, FILE_PREFIX, Some(10))
        );
        assert_eq!(plan.assignment.len(), labels.len());
        let mut fold_of: HashMap<&str, usize> = HashMap::new();
        for &(i, f) in &plan.assignment {
            assert_eq!(
                *fold_of.entry(groups[i].as_str()).or_insert(f),
                f,
                "{}",
                groups[i]
            );
        }
        for f in 0..5 {
            for c in 0..3 {
                let n = plan
                    .assignment
                    .iter()
                    .filter(|&&(i, g)| g == f && labels[i] == c)
                    .count();
                assert_eq!(n, 4, "fold {f} class {c}");
            }
        }
        // A "speaker" per class (kick01.wav, snare01.wav…) would hold a class out entirely:
        // not used, clip folds instead, and the plan says why.
        let by_class: Vec<String> = labels.iter().map(|l| format!("class{l}")).collect();
        let plan = super::plan(
            &labels,
            3,
            Ok(SpeakerHints {
                groups: by_class,
                source: FILE_PREFIX,
            }),
            7,
        )
        .unwrap();
        assert_eq!(plan.grouped_by, "clip");
        assert!(plan.not_grouped.unwrap().contains("cannot make"));
        let no_hint = super::plan(&labels, 3, Err("none".into()), 7).unwrap();
        assert_eq!(
            no_hint.assignment,
            crate::data::split::stratified_folds(&labels, usize::MAX, 5, 7)
        );
    }

    #[test]
    fn small_classes_fall_back() {
        assert_eq!(
            folds_for(
                &[0; 40].iter().chain(&[1; 40]).copied().collect::<Vec<_>>(),
                2
            ),
            Ok(5)
        );
        let small: Vec<u32> = [0; 40].iter().chain(&[1; 7]).copied().collect();
        assert_eq!(folds_for(&small, 2), Ok(3));
        let tiny: Vec<u32> = [0; 40].iter().chain(&[1; 5]).copied().collect();
        assert!(folds_for(&tiny, 2).is_err());
    }
}
