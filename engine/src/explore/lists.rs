//! The explorer's three lists. **Likely mislabels**: each sample's class probabilities from a
//! logistic model (`learners::logistic`, L-BFGS) fitted on the other folds of a stratified k-fold
//! split of the standardized features (`C` from a small grid, by out-of-fold log loss); a sample
//! is listed when another class gets at least the confidence asked for. **Outliers**: distance to
//! the class centroid in standardized feature space, relative to the class's median distance.
//! **Near-duplicates**: pairs whose feature vectors' cosine similarity reaches a floor, every
//! pair compared in blocks on `gemm`.

use super::{Mislabel, NearDuplicate, Outlier};
use crate::data::split::stratified_folds;
use crate::error::Result;
use crate::learners::logistic::{self, Link, Logistic, Rows, Settings};
use crate::ops::pointwise::matmul_strided;

/// Inverse L2 strengths tried for the out-of-fold model, strongest penalty first (each fit
/// warm-starts the next).
const C_GRID: [f64; 3] = [0.01, 0.1, 1.0];
/// L-BFGS iterations per fit.
const ITERATIONS: usize = 100;
/// Rows per block of the pair comparison.
const BLOCK: usize = 512;

/// Each column standardized to mean 0 and standard deviation 1 (deviations floored at 1e-3, so
/// constant columns stay near 0).
pub fn standardize(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    let std: Vec<f64> = var
        .iter()
        .map(|s| (s / n as f64).sqrt().max(1e-3))
        .collect();
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(d) {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&std) {
            *v = ((*v as f64 - m) / s) as f32;
        }
    }
    out
}

/// Out-of-fold class probabilities of every sample.
#[derive(Clone, Debug, PartialEq)]
pub struct OutOfFold {
    /// `[samples][classes]`.
    pub probabilities: Vec<Vec<f32>>,
    /// Whether a sample was judged: its class has at least two samples, so every fold's model
    /// saw that class.
    pub judged: Vec<bool>,
    pub folds: usize,
    pub c: f64,
    /// Out-of-fold accuracy over the judged samples.
    pub accuracy: f64,
}

/// Fits the k-fold logistic models on standardized `z` (`d` columns); `None` when fewer than two
/// classes have two or more samples. `progress` gets `(fits done, fits)`.
#[allow(clippy::too_many_arguments)]
pub fn out_of_fold(
    z: &[f32],
    d: usize,
    labels: &[u32],
    classes: usize,
    folds: usize,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
    check: &dyn Fn() -> Result<()>,
) -> Result<Option<OutOfFold>> {
    let n = labels.len();
    let mut counts = vec![0usize; classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let judged: Vec<bool> = labels
        .iter()
        .map(|&l| counts.get(l as usize).is_some_and(|&c| c >= 2))
        .collect();
    let smallest = counts.iter().copied().filter(|&c| c >= 2).min();
    let (Some(smallest), true) = (smallest, counts.iter().filter(|&&c| c >= 2).count() >= 2) else {
        return Ok(None);
    };
    let folds = folds.min(smallest).max(2);
    let assignment = stratified_folds(labels, usize::MAX, folds, seed);
    let total = (folds * C_GRID.len()) as u64;
    let mut done = 0;
    progress(done, total);
    // probabilities[c][sample]
    let mut probabilities = vec![vec![Vec::new(); n]; C_GRID.len()];
    for fold in 0..folds {
        let fit_idx: Vec<usize> = assignment
            .iter()
            .filter(|a| a.1 != fold)
            .map(|a| a.0)
            .collect();
        let held_idx: Vec<usize> = assignment
            .iter()
            .filter(|a| a.1 == fold)
            .map(|a| a.0)
            .collect();
        let gather = |idx: &[usize]| -> Vec<f32> {
            idx.iter()
                .flat_map(|&i| z[i * d..(i + 1) * d].iter().copied())
                .collect()
        };
        let (fit_x, held_x) = (gather(&fit_idx), gather(&held_idx));
        let fit_labels: Vec<u32> = fit_idx.iter().map(|&i| labels[i]).collect();
        let mut warm: Option<Logistic> = None;
        for (slot, &c) in C_GRID.iter().enumerate() {
            check()?;
            let rows = Rows {
                x: &fit_x,
                dim: d,
                labels: &fit_labels,
                targets: &[],
                weights: None,
            };
            let settings = Settings {
                l2: 1.0 / (c * fit_idx.len().max(1) as f64),
                max_iterations: ITERATIONS,
                tolerance: 1e-4,
            };
            let model = logistic::fit(
                rows,
                classes,
                Link::Softmax,
                &settings,
                warm.as_ref(),
                &mut |_, _| check().map(|_| false),
            )?;
            for (&i, p) in held_idx.iter().zip(model.probabilities(&held_x)) {
                probabilities[slot][i] = p;
            }
            warm = Some(model);
            done += 1;
            progress(done, total);
        }
    }
    let judged_count = judged.iter().filter(|&&j| j).count().max(1) as f64;
    let log_loss = |probs: &[Vec<f32>]| -> f64 {
        probs
            .iter()
            .zip(labels)
            .zip(&judged)
            .filter(|(_, j)| **j)
            .map(|((p, &l), _)| {
                -(p.get(l as usize).copied().unwrap_or(0.0) as f64)
                    .max(1e-12)
                    .ln()
            })
            .sum::<f64>()
            / judged_count
    };
    let best = (0..C_GRID.len())
        .min_by(|&a, &b| log_loss(&probabilities[a]).total_cmp(&log_loss(&probabilities[b])))
        .unwrap_or(0);
    let probabilities = probabilities.swap_remove(best);
    let right = probabilities
        .iter()
        .zip(labels)
        .zip(&judged)
        .filter(|((p, l), j)| **j && argmax(p) == Some(**l as usize))
        .count();
    Ok(Some(OutOfFold {
        probabilities,
        judged,
        folds,
        c: C_GRID[best],
        accuracy: right as f64 / judged_count,
    }))
}

fn argmax(p: &[f32]) -> Option<usize> {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// The judged samples whose out-of-fold model gives another class at least `min_confidence`,
/// most certain first (lowest probability of their own label).
pub fn mislabels(oof: &OutOfFold, labels: &[u32], min_confidence: f32) -> Vec<Mislabel> {
    let mut out: Vec<Mislabel> = oof
        .probabilities
        .iter()
        .zip(labels)
        .zip(&oof.judged)
        .enumerate()
        .filter(|(_, (_, judged))| **judged)
        .filter_map(|(i, ((p, &l), _))| {
            let suggested = argmax(p)?;
            let confidence = p.get(suggested).copied()?;
            (suggested != l as usize && confidence >= min_confidence).then(|| Mislabel {
                sample: i,
                suggested,
                confidence,
                label_probability: p.get(l as usize).copied().unwrap_or(0.0),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.label_probability
            .total_cmp(&b.label_probability)
            .then(b.confidence.total_cmp(&a.confidence))
    });
    out
}

/// The `max` samples farthest from their class centroid in standardized `z`, relative to their
/// class's median distance (classes of three samples or more), farthest first; only those
/// farther than the median.
pub fn outliers(z: &[f32], d: usize, labels: &[u32], classes: usize, max: usize) -> Vec<Outlier> {
    let mut sums = vec![vec![0f64; d]; classes];
    let mut counts = vec![0usize; classes];
    for (row, &l) in z.chunks_exact(d.max(1)).zip(labels) {
        let (Some(sum), Some(count)) = (sums.get_mut(l as usize), counts.get_mut(l as usize))
        else {
            continue;
        };
        *count += 1;
        for (s, v) in sum.iter_mut().zip(row) {
            *s += *v as f64;
        }
    }
    let distance: Vec<Option<f64>> = z
        .chunks_exact(d.max(1))
        .zip(labels)
        .map(|(row, &l)| {
            let count = *counts.get(l as usize)?;
            if count < 3 {
                return None;
            }
            let sum = sums.get(l as usize)?;
            Some(
                row.iter()
                    .zip(sum)
                    .map(|(v, s)| (*v as f64 - s / count as f64).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            )
        })
        .collect();
    let median: Vec<f64> = (0..classes)
        .map(|c| {
            let mut ds: Vec<f64> = distance
                .iter()
                .zip(labels)
                .filter(|(_, l)| **l as usize == c)
                .filter_map(|(d, _)| *d)
                .collect();
            ds.sort_by(f64::total_cmp);
            ds.get(ds.len() / 2).copied().unwrap_or(0.0)
        })
        .collect();
    let mut out: Vec<Outlier> = distance
        .iter()
        .zip(labels)
        .enumerate()
        .filter_map(|(i, (dist, &l))| {
            let dist = (*dist)?;
            let typical = median.get(l as usize).copied().filter(|&m| m > 0.0)?;
            let ratio = dist / typical;
            (ratio > 1.0).then_some(Outlier {
                sample: i,
                distance: dist as f32,
                ratio: ratio as f32,
            })
        })
        .collect();
    out.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    out.truncate(max);
    out
}

/// Every pair of rows of `x` whose cosine similarity is at least `floor`, most similar first, at
/// most `max_pairs` (the most similar). `progress` gets `(block pairs done, block pairs)`.
pub fn near_duplicates(
    x: &[f32],
    n: usize,
    d: usize,
    floor: f32,
    max_pairs: usize,
    progress: &mut dyn FnMut(u64, u64),
    check: &dyn Fn() -> Result<()>,
) -> Result<Vec<NearDuplicate>> {
    if n < 2 || d == 0 || x.len() != n * d {
        return Ok(Vec::new());
    }
    let mut unit = x.to_vec();
    for row in unit.chunks_exact_mut(d) {
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        }
    }
    let blocks = n.div_ceil(BLOCK);
    let total = (blocks * (blocks + 1) / 2) as u64;
    let mut done = 0;
    progress(done, total);
    let mut floor = floor;
    let mut pairs: Vec<NearDuplicate> = Vec::new();
    let mut sims = vec![0f32; BLOCK * BLOCK];
    for bi in 0..blocks {
        let (i0, i1) = (bi * BLOCK, ((bi + 1) * BLOCK).min(n));
        for bj in bi..blocks {
            check()?;
            let (j0, j1) = (bj * BLOCK, ((bj + 1) * BLOCK).min(n));
            let (m, w) = (i1 - i0, j1 - j0);
            // sims [m,w] = U[i0..i1] · U[j0..j1]ᵀ
            matmul_strided(
                &mut sims,
                (m, d, w),
                (&unit[i0 * d..i1 * d], 1, d),
                (&unit[j0 * d..j1 * d], d, 1),
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
            for a in 0..m {
                let first = if bi == bj { a + 1 } else { 0 };
                for b in first..w {
                    let s = sims[a * w + b];
                    if s >= floor {
                        pairs.push(NearDuplicate {
                            a: i0 + a,
                            b: j0 + b,
                            similarity: s.min(1.0),
                            identical: false,
                        });
                    }
                }
            }
            // Bounded memory: keep the most similar, and raise the floor to the least kept.
            if pairs.len() > 4 * max_pairs.max(1) {
                sort_pairs(&mut pairs);
                pairs.truncate(max_pairs);
                if let Some(last) = pairs.last() {
                    floor = floor.max(last.similarity);
                }
            }
            done += 1;
            progress(done, total);
        }
    }
    sort_pairs(&mut pairs);
    pairs.truncate(max_pairs);
    Ok(pairs)
}

fn sort_pairs(pairs: &mut [NearDuplicate]) {
    pairs.sort_by(|p, q| {
        q.similarity
            .total_cmp(&p.similarity)
            .then(p.a.cmp(&q.a))
            .then(p.b.cmp(&q.b))
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_planted_near_copy_is_the_only_pair_over_the_floor() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        // More rows than one block, so pairs across blocks are compared too.
        let (n, d) = (700, 32);
        let mut x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let copy: Vec<f32> = x[3 * d..4 * d]
            .iter()
            .map(|v| v * 1.5 + rng.random_range(-0.01..0.01))
            .collect();
        x[650 * d..651 * d].copy_from_slice(&copy);
        let mut calls = 0;
        let pairs =
            near_duplicates(&x, n, d, 0.95, 10, &mut |_, _| calls += 1, &|| Ok(())).unwrap();
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!((pairs[0].a, pairs[0].b), (3, 650));
        assert!(pairs[0].similarity > 0.999);
        assert_eq!(calls, 4); // 0 of 3, then each of the 3 block pairs
        // At most `max_pairs`, the most similar first.
        let many = near_duplicates(&x, n, d, -1.0, 5, &mut |_, _| {}, &|| Ok(())).unwrap();
        assert_eq!(many.len(), 5);
        assert_eq!((many[0].a, many[0].b), (3, 650));
        assert!(many.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    }

    #[test]
    fn a_far_sample_is_the_first_outlier() {
        // Class 0: a tight blob and one far point; class 1: two samples (too few to judge).
        let mut z = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10 {
            z.extend([i as f32 * 0.1, 0.0]);
            labels.push(0);
        }
        z.extend([9.0, 9.0]);
        labels.push(0);
        z.extend([0.0, 1.0, 0.0, 2.0]);
        labels.extend([1, 1]);
        let out = outliers(&z, 2, &labels, 2, 3);
        assert_eq!(out[0].sample, 10);
        assert!(out[0].ratio > 5.0, "{out:?}");
        assert!(out.iter().all(|o| labels[o.sample] == 0 && o.ratio > 1.0));
        assert!(out.len() <= 3);
    }
}
