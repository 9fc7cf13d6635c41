//! Stratified, seeded train/validation split: every class keeps the same share in both parts
//! and the same seed always gives the same split.

use crate::data::image_folder::LabeledFile;
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Separates the split's random stream from other uses of the same seed.
const SPLIT_STREAM: u64 = 0x5ee0_5b11_7000_0001;

/// Splits `files` into (train, validation) with `fraction` of each class in validation.
/// Classes with fewer than 2 examples stay entirely in training.
pub fn stratified(
    files: &[LabeledFile],
    num_labels: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<LabeledFile>, Vec<LabeledFile>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for label in 0..num_labels {
        let mut of_class: Vec<&LabeledFile> = files.iter().filter(|f| f.label == label).collect();
        of_class.shuffle(&mut rng);
        let n = of_class.len();
        let mut take = (n as f64 * fraction).round() as usize;
        if n >= 2 && fraction > 0.0 {
            take = take.clamp(1, n - 1);
        } else {
            take = 0;
        }
        for (i, f) in of_class.into_iter().enumerate() {
            if i < take {
                validation.push(f.clone());
            } else {
                train.push(f.clone());
            }
        }
    }
    train.sort_by(|a, b| a.path.cmp(&b.path));
    validation.sort_by(|a, b| a.path.cmp(&b.path));
    (train, validation)
}

/// Cross-validation folds: `(row, fold)` for a stratified, seeded sample of at most `cap` of
/// the rows (every row when there are fewer; at least two of each class), folds `0..folds`
/// dealt round-robin within each class so every fold sees every class it can. Sorted by row.
pub fn stratified_folds(
    labels: &[u32],
    cap: usize,
    folds: usize,
    seed: u64,
) -> Vec<(usize, usize)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xC0FF_EE);
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(v) = by_class.get_mut(l as usize) {
            v.push(i);
        }
    }
    let keep = cap as f64 / labels.len().max(1) as f64;
    let mut out = Vec::new();
    let mut next_fold = 0;
    for mut members in by_class {
        members.shuffle(&mut rng);
        let take = if keep >= 1.0 {
            members.len()
        } else {
            ((members.len() as f64 * keep).round() as usize)
                .clamp(members.len().min(2), members.len())
        };
        for &i in members.iter().take(take) {
            out.push((i, next_fold % folds));
            next_fold += 1;
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn stratified_and_deterministic() {
        let files: Vec<LabeledFile> = (0..100)
            .map(|i| LabeledFile {
                path: PathBuf::from(format!("{i:03}")),
                label: usize::from(i >= 80),
                hash: [0; 32],
            })
            .collect();
        let (train, val) = stratified(&files, 2, 0.25, 7);
        assert_eq!(val.iter().filter(|f| f.label == 0).count(), 20);
        assert_eq!(val.iter().filter(|f| f.label == 1).count(), 5);
        assert_eq!(train.len() + val.len(), 100);
        let (_, again) = stratified(&files, 2, 0.25, 7);
        assert_eq!(val, again);
        let (_, other) = stratified(&files, 2, 0.25, 8);
        assert_ne!(val, other);
    }
}
