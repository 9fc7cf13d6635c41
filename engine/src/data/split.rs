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
