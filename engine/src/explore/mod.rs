//! The data explorer (issue 23; Edge Impulse's is the model): from one feature vector and one
//! label per sample, a 2-D map of the samples (PCA, [`pca`]) and three lists for cleaning the
//! data ([`lists`]) — likely mislabels (k-fold out-of-fold probabilities of a logistic model
//! confidently disagreeing with the label), outliers (farthest from their class centroid in
//! standardized feature space) and near-duplicates (pairs whose cosine similarity is high).
//!
//! Plain matrices in, plain lists out: where the features come from (a run's feature cache, a
//! backbone) is `templates::explore`. No t-SNE or UMAP: no maintained pure-Rust crate for them was
//! at hand offline, and PCA is exact, fast and deterministic.

pub mod lists;
pub mod pca;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// One sample of the table: its file, its class (an index into [`FeatureTable::labels`]) and
/// the split it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub input: PathBuf,
    pub label: usize,
    /// "train", "validation" or "test".
    pub split: String,
    /// BLAKE3 of the file's bytes, when known: tells byte-identical pairs from near ones.
    pub hash: Option<[u8; 32]>,
}

/// The features of every sample: `x` row-major `[samples, dim]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureTable {
    pub labels: Vec<String>,
    pub samples: Vec<Sample>,
    pub dim: usize,
    pub x: Vec<f32>,
}

/// What the explorer looks for, and how hard.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Cross-validation folds of the mislabel check (fewer when a class is smaller).
    pub folds: usize,
    pub seed: u64,
    /// A sample is a likely mislabel when the out-of-fold model gives another class at least
    /// this probability.
    pub mislabel_confidence: f32,
    /// Pairs at or above this cosine similarity are kept (the app filters further).
    pub duplicate_floor: f32,
    /// Most pairs kept (the most similar).
    pub max_pairs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            folds: 5,
            seed: 0,
            mislabel_confidence: 0.6,
            duplicate_floor: 0.9,
            max_pairs: 1000,
        }
    }
}

/// The steps of an exploration, for progress lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Reading the data folders.
    Scanning,
    /// Reading (or computing) each sample's features.
    Features,
    /// The 2-D map.
    Map,
    /// Cross-validating the logistic model (`done` / `total` fits).
    Mislabels,
    Outliers,
    /// Comparing every pair (`done` / `total` blocks of pairs).
    Duplicates,
}

impl Step {
    /// What the step does, for a progress line ("Cross-validating a logistic model").
    pub fn title(self) -> &'static str {
        match self {
            Self::Scanning => "Reading the data folders",
            Self::Features => "Reading the features",
            Self::Map => "Computing the map (PCA)",
            Self::Mislabels => "Cross-validating a logistic model",
            Self::Outliers => "Measuring distances to the class centres",
            Self::Duplicates => "Comparing every pair of samples",
        }
    }
}

/// A sample whose out-of-fold prediction confidently disagrees with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Mislabel {
    /// Index into [`Exploration::samples`].
    pub sample: usize,
    /// The class the model gives it (index into the labels).
    pub suggested: usize,
    /// The model's probability of `suggested`.
    pub confidence: f32,
    /// The model's probability of the sample's own label.
    pub label_probability: f32,
}

/// A sample far from its class's centre.
#[derive(Clone, Debug, PartialEq)]
pub struct Outlier {
    pub sample: usize,
    /// Euclidean distance to the class centroid in standardized feature space.
    pub distance: f32,
    /// `distance` over the class's median distance (2.0: twice as far as a typical sample).
    pub ratio: f32,
}

/// Two samples whose features point the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct NearDuplicate {
    pub a: usize,
    pub b: usize,
    /// Cosine similarity of the two feature vectors.
    pub similarity: f32,
    /// The two files have the same bytes (the data scan lists these too).
    pub identical: bool,
}

/// How well the cross-validated model of the mislabel check did.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossValidation {
    pub folds: usize,
    /// The inverse L2 strength kept (lowest out-of-fold log loss).
    pub c: f64,
    /// Out-of-fold accuracy over the samples judged.
    pub accuracy: f64,
    /// Samples judged (those of classes with at least two samples).
    pub judged: usize,
}

/// Everything the explorer shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exploration {
    pub labels: Vec<String>,
    pub samples: Vec<Sample>,
    /// Feature values per sample.
    pub dim: usize,
    /// Each sample's place on the map: its first two principal components.
    pub map: Vec<[f32; 2]>,
    /// The share of the features' variance along each map axis.
    pub explained: [f64; 2],
    /// Most certain first (lowest probability of the sample's own label).
    pub mislabels: Vec<Mislabel>,
    /// Farthest (relative to its class) first.
    pub outliers: Vec<Outlier>,
    /// Most similar first; every pair at or above [`Settings::duplicate_floor`].
    pub duplicates: Vec<NearDuplicate>,
    /// The cross-validation behind `mislabels`, when there was enough data for one.
    pub cross_validation: Option<CrossValidation>,
    /// Where the features came from ("1280 MobileNetV2 features per image; 30 of 30 from the
    /// feature cache"), filled by the caller that read them.
    pub features: String,
    /// What could not be looked at, and why.
    pub notes: Vec<String>,
}

/// Outliers listed: 2 % of the samples, at least 5 and at most 50.
fn outliers_listed(samples: usize) -> usize {
    ((samples as f64 * 0.02).ceil() as usize).clamp(5, 50)
}

/// Explores `table`: the map, then the three lists. `progress` gets each step's `(done, total)`;
/// `check` is called between pieces of work and ends the exploration with its error (cancel).
pub fn explore(
    table: FeatureTable,
    settings: &Settings,
    progress: &mut dyn FnMut(Step, u64, u64),
    check: &dyn Fn() -> Result<()>,
) -> Result<Exploration> {
    let n = table.samples.len();
    let d = table.dim;
    if n == 0 || d == 0 {
        return Err(Error::Unsupported(
            "there are no samples with features to explore".into(),
        ));
    }
    if table.x.len() != n * d {
        return Err(Error::Unsupported(format!(
            "the feature table has {} values, not {n} samples × {d}",
            table.x.len()
        )));
    }
    let classes = table.labels.len();
    if let Some(s) = table.samples.iter().find(|s| s.label >= classes) {
        return Err(Error::Unsupported(format!(
            "{} has a class outside the {classes} labels",
            s.input.display()
        )));
    }
    let mut notes = Vec::new();
    progress(Step::Map, 0, 1);
    let projection = pca::project_2d(&table.x, n, d, settings.seed, check)?;
    progress(Step::Map, 1, 1);

    let z = lists::standardize(&table.x, n, d);
    let labels: Vec<u32> = table.samples.iter().map(|s| s.label as u32).collect();
    let oof = lists::out_of_fold(
        &z,
        d,
        &labels,
        classes,
        settings.folds,
        settings.seed,
        &mut |done, total| progress(Step::Mislabels, done, total),
        check,
    )?;
    let (mislabels, cross_validation) = match &oof {
        Some(o) => (
            lists::mislabels(o, &labels, settings.mislabel_confidence),
            Some(CrossValidation {
                folds: o.folds,
                c: o.c,
                accuracy: o.accuracy,
                judged: o.judged.iter().filter(|&&j| j).count(),
            }),
        ),
        None => {
            notes.push(
                "Likely mislabels need at least two classes with two or more samples each"
                    .to_string(),
            );
            (Vec::new(), None)
        }
    };
    if let Some(o) = &oof {
        let skipped = o.judged.iter().filter(|&&j| !j).count();
        if skipped > 0 {
            notes.push(format!(
                "{skipped} sample{} of classes with a single sample {} not checked for a wrong label",
                if skipped == 1 { "" } else { "s" },
                if skipped == 1 { "was" } else { "were" },
            ));
        }
    }

    check()?;
    progress(Step::Outliers, 0, 1);
    let outliers = lists::outliers(&z, d, &labels, classes, outliers_listed(n));
    progress(Step::Outliers, 1, 1);

    let mut duplicates = lists::near_duplicates(
        &table.x,
        n,
        d,
        settings.duplicate_floor,
        settings.max_pairs,
        &mut |done, total| progress(Step::Duplicates, done, total),
        check,
    )?;
    for pair in &mut duplicates {
        let hash = |i: usize| table.samples.get(i).and_then(|s| s.hash);
        pair.identical = matches!((hash(pair.a), hash(pair.b)), (Some(a), Some(b)) if a == b);
    }
    Ok(Exploration {
        labels: table.labels,
        samples: table.samples,
        dim: d,
        map: projection.coords,
        explained: projection.explained,
        mislabels,
        outliers,
        duplicates,
        cross_validation,
        features: String::new(),
        notes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Three separable clusters in 24 dimensions, 20 samples each; samples 5 and 27 carry
    /// the wrong label, and sample 59 is a near copy of sample 40.
    fn planted() -> FeatureTable {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (n, d) = (60, 24);
        let mut centres = vec![vec![0f32; d]; 3];
        for (c, centre) in centres.iter_mut().enumerate() {
            for (j, v) in centre.iter_mut().enumerate() {
                *v = if j % 3 == c { 6.0 } else { 0.0 } + rng.random_range(-0.5..0.5);
            }
        }
        let mut x = Vec::with_capacity(n * d);
        let mut samples = Vec::new();
        for i in 0..n {
            let class = i / 20;
            let row: Vec<f32> = if i == 59 {
                x[40 * d..41 * d]
                    .iter()
                    .map(|v: &f32| v + rng.random_range(-0.01..0.01))
                    .collect()
            } else {
                // Spread as wide as real embeddings' (same-class cosine ≈ 0.8), so only the copy is
                // a near-duplicate.
                centres[class]
                    .iter()
                    .map(|c| c + rng.random_range(-3.0..3.0))
                    .collect()
            };
            x.extend(row);
            let label = match i {
                5 => 1,
                27 => 2,
                _ => class,
            };
            samples.push(Sample {
                input: format!("{i}.png").into(),
                label,
                split: if i % 4 == 0 { "test" } else { "train" }.into(),
                hash: None,
            });
        }
        FeatureTable {
            labels: vec!["a".into(), "b".into(), "c".into()],
            samples,
            dim: d,
            x,
        }
    }

    #[test]
    fn planted_mislabels_outliers_and_duplicates_are_found() {
        let mut steps = Vec::new();
        let e = explore(
            planted(),
            &Settings::default(),
            &mut |s, _, _| steps.push(s),
            &|| Ok(()),
        )
        .unwrap();
        assert_eq!(e.map.len(), 60);
        let flagged: Vec<(usize, usize)> = e
            .mislabels
            .iter()
            .map(|m| (m.sample, m.suggested))
            .collect();
        assert!(flagged.contains(&(5, 0)), "{flagged:?}");
        assert!(flagged.contains(&(27, 1)), "{flagged:?}");
        assert_eq!(flagged.len(), 2, "{flagged:?}");
        assert!(e.mislabels.iter().all(|m| m.confidence >= 0.6));
        let cv = e.cross_validation.unwrap();
        assert!(cv.accuracy > 0.9 && cv.judged == 60, "{cv:?}");
        // The mislabelled samples lie far from the centre of the class they are filed under.
        let far: Vec<usize> = e.outliers.iter().take(2).map(|o| o.sample).collect();
        assert!(far.contains(&5) && far.contains(&27), "{:?}", e.outliers);
        assert_eq!(e.outliers.len(), 5);
        let pairs: Vec<(usize, usize)> = e
            .duplicates
            .iter()
            .filter(|p| p.similarity >= 0.99)
            .map(|p| (p.a, p.b))
            .collect();
        assert_eq!(pairs, [(40, 59)]);
        assert!(!e.duplicates[0].identical);
        for step in [Step::Map, Step::Mislabels, Step::Outliers, Step::Duplicates] {
            assert!(steps.contains(&step), "{step:?} never reported");
        }
    }

    #[test]
    fn too_little_data_says_why_and_cancel_stops() {
        let mut t = planted();
        // One sample of each class: nothing to cross-validate.
        t.samples = vec![
            t.samples[0].clone(),
            t.samples[20].clone(),
            t.samples[40].clone(),
        ];
        t.x = [&t.x[0..24], &t.x[20 * 24..21 * 24], &t.x[40 * 24..41 * 24]].concat();
        let e = explore(t, &Settings::default(), &mut |_, _, _| {}, &|| Ok(())).unwrap();
        assert!(e.mislabels.is_empty() && e.cross_validation.is_none());
        assert!(e.notes[0].contains("two or more samples"), "{:?}", e.notes);
        assert_eq!(e.map.len(), 3);

        let cancelled = explore(planted(), &Settings::default(), &mut |_, _, _| {}, &|| {
            Err(Error::Cancelled)
        });
        assert!(matches!(cancelled, Err(Error::Cancelled)));
        assert!(
            explore(
                FeatureTable::default(),
                &Settings::default(),
                &mut |_, _, _| {},
                &|| Ok(())
            )
            .is_err()
        );
    }
}
