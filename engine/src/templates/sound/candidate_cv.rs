//! How `algorithm = "auto"` chooses among sound candidates: k-fold cross-validation of each
//! encoder candidate over every training and validation clip (grouped by clip, stratified by
//! class, seeded by the project seed) on the window features already extracted, with the
//! logistic head at the `C` that candidate's head selection chose, scored per clip (mean of its
//! windows' probabilities); and the rule that picks the winner from those scores
//! ([`choose`]). A few dozen validation clips, where candidates tie at 0.98–1.0, made the
//! choice noise; out-of-fold scores over all clips do not.

use crate::error::Result;
use crate::learners::logistic::{self, Link, Rows, Settings};
use crate::train::RunContext;
use crate::train::fit::Features;
use crate::train::fit_logistic::Scaling;
use serde::Serialize;

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

/// Out-of-fold clip accuracy and log loss of the logistic head (`c`, at most `max_iterations`
/// L-BFGS iterations, as the final fit) over `clips` in `folds` stratified folds.
pub(super) fn cross_validate(
    ctx: &RunContext,
    clips: &[ClipRows],
    dim: usize,
    classes: usize,
    folds: usize,
    c: f64,
    max_iterations: usize,
) -> Result<CvScore> {
    let labels: Vec<u32> = clips.iter().map(|c| c.label).collect();
    let assignment =
        crate::data::split::stratified_folds(&labels, usize::MAX, folds, ctx.project.seed);
    let (mut correct, mut loss) = (0usize, 0f64);
    for fold in 0..folds {
        let mut fit = Features::new(dim);
        for &(i, f) in &assignment {
            if f == fold {
                continue;
            }
            let clip = &clips[i];
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
            let clip = &clips[i];
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
