//! K-fold cross-validation of the table candidates on small tables (AutoGluon's bagging, used to
//! choose): every candidate is fitted K times, each time without one fold of the training +
//! validation rows, and predicts that fold. The out-of-fold predictions — one per row, none from
//! a model that saw the row — score the candidates and fit the ensemble's weights on every row
//! instead of a 10 % validation split: on a table of a few thousand rows that split is a few
//! hundred rows, and a choice made on it (or a blend fitted to it) is largely chance.

use super::fit::{fit_algorithm, fit_forest_with_oob};
use super::params::TabularParams;
use crate::error::Result;
use crate::templates::tabular::data::{Part, TableData, TargetKind};
use crate::templates::tabular::model::{Fitted, TabularModel};
use crate::train::RunContext;
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Tables of at most this many training + validation rows are cross-validated (above it the
/// validation split is large enough, and K more fits of every candidate cost too much).
pub const MAX_ROWS: usize = 10_000;

/// Seed stream of the fold assignment (apart from the validation split's).
const FOLD_STREAM: u64 = 0x6B66_6F6C_6473_0001;

/// The rows cross-validation runs over and the fold of each.
pub struct Folds {
    /// Training rows followed by validation rows.
    pub rows: Part,
    /// Fold (0..k) of each row of `rows`.
    pub fold: Vec<usize>,
    pub k: usize,
}

impl Folds {
    /// Folds over `table`'s training + validation rows, stratified by class: `None` when `k` is
    /// below 2, there are no validation rows (the user chose to hold none out), the table is
    /// larger than [`MAX_ROWS`], or it has fewer than 2 rows per fold.
    pub fn new(table: &TableData, kind: TargetKind, k: usize, seed: u64) -> Option<Self> {
        let rows = table.train.concat(&table.validation);
        let n = rows.len();
        if k < 2 || table.validation.is_empty() || n > MAX_ROWS || n < 2 * k {
            return None;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ FOLD_STREAM);
        let groups: Vec<Vec<usize>> = match kind {
            TargetKind::Classification => {
                let classes = table.labels.len().max(1);
                (0..classes)
                    .map(|c| (0..n).filter(|&i| rows.y[i] as usize == c).collect())
                    .collect()
            }
            TargetKind::Regression => vec![(0..n).collect()],
        };
        // Each class shuffled and dealt round-robin, continuing where the last class stopped, so
        // folds differ in size by at most one row and every class is spread over them.
        let mut fold = vec![0; n];
        let mut next = 0;
        for mut g in groups {
            g.shuffle(&mut rng);
            for i in g {
                fold[i] = next % k;
                next += 1;
            }
        }
        Some(Self { rows, fold, k })
    }

    /// Row indices outside and inside fold `f`.
    fn split(&self, f: usize) -> (Vec<usize>, Vec<usize>) {
        let (mut fit_on, mut held_out) = (Vec::new(), Vec::new());
        for (i, &g) in self.fold.iter().enumerate() {
            if g == f {
                held_out.push(i);
            } else {
                fit_on.push(i);
            }
        }
        (fit_on, held_out)
    }
}

/// A candidate's predictions of rows that its model did not see.
pub struct OutOfFold {
    /// Row-major over `Folds::rows`: class probabilities, or one value per row.
    pub predictions: Vec<f64>,
    /// The candidate fitted on all of `Folds::rows`, when getting the predictions produced it
    /// (the random forest): the refit on training + validation rows, already done.
    pub on_all_rows: Option<Fitted>,
}

/// `algorithm`'s out-of-fold predictions over `folds.rows`. Each fold's held-out rows are that
/// fit's validation rows, as AutoGluon's bagged models use them for early stopping (boosting on
/// tables this small never stops early). The random forest needs no folds: one forest on every
/// row, each row predicted by the trees whose bootstrap left it out (as AutoGluon's forests).
pub fn out_of_fold(
    ctx: &RunContext,
    table: &TableData,
    folds: &Folds,
    kind: TargetKind,
    p: &TabularParams,
    algorithm: &str,
) -> Result<OutOfFold> {
    let width = match kind {
        TargetKind::Classification => table.labels.len(),
        TargetKind::Regression => 1,
    };
    let mut out = vec![0.0; folds.rows.len() * width];
    let mut sub = TableData {
        test: Part::default(),
        train: Part::default(),
        validation: Part::default(),
        ..table.clone()
    };
    if algorithm == "random_forest" {
        sub.train = folds.rows.clone();
        let (fitted, _, raw) = fit_forest_with_oob(ctx, &sub, kind, p, false)?;
        let model = TabularModel::new(kind, &sub, fitted, algorithm);
        let outputs = raw.len() / folds.rows.len().max(1);
        let predictions = raw
            .chunks(outputs.max(1))
            .flat_map(|r| model.prediction_of_raw(r))
            .collect();
        return Ok(OutOfFold {
            predictions,
            on_all_rows: Some(model.fitted),
        });
    }
    for f in 0..folds.k {
        ctx.check()?;
        let (fit_on, held_out) = folds.split(f);
        sub.train = folds.rows.rows(&fit_on);
        sub.validation = folds.rows.rows(&held_out);
        let (fitted, _) = fit_algorithm(ctx, &sub, kind, p, algorithm, false)?;
        let model = TabularModel::new(kind, &sub, fitted, algorithm);
        let predicted = model.flat_predictions(&sub.validation.x);
        for (j, &row) in held_out.iter().enumerate() {
            if let (Some(dst), Some(src)) = (
                out.get_mut(row * width..(row + 1) * width),
                predicted.get(j * width..(j + 1) * width),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }
    Ok(OutOfFold {
        predictions: out,
        on_all_rows: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table_schema::Matrix;

    fn table(y: Vec<f64>, validation: usize, labels: usize) -> TableData {
        let n = y.len();
        let part = |ys: &[f64]| Part {
            x: Matrix {
                columns: vec![ys.to_vec()],
                num_rows: ys.len(),
            },
            y: ys.to_vec(),
            names: (0..ys.len()).map(|i| format!("t.csv:{i}")).collect(),
        };
        TableData {
            target: "y".into(),
            schema: Default::default(),
            columns: Vec::new(),
            labels: (0..labels).map(|c| c.to_string()).collect(),
            train: part(&y[..n - validation]),
            validation: part(&y[n - validation..]),
            test: Part::default(),
            issues: Vec::new(),
            train_hash: String::new(),
        }
    }

    #[test]
    fn folds_cover_every_row_once_and_spread_each_class() {
        // 3 classes of 30, 20 and 10 rows; the last 10 rows are the validation split.
        let y: Vec<f64> = (0..60)
            .map(|i| match i % 6 {
                0..=2 => 0.0,
                3 | 4 => 1.0,
                _ => 2.0,
            })
            .collect();
        let t = table(y.clone(), 10, 3);
        let f = Folds::new(&t, TargetKind::Classification, 5, 7).expect("folds");
        assert_eq!(f.rows.len(), 60);
        assert_eq!(f.rows.y, y, "training rows, then validation rows");
        for g in 0..5 {
            let (fit_on, held_out) = f.split(g);
            assert_eq!(fit_on.len() + held_out.len(), 60);
            assert_eq!(held_out.len(), 12, "fold {g}");
            for class in 0..3 {
                let in_fold = held_out.iter().filter(|&&i| y[i] as usize == class).count();
                let total = y.iter().filter(|&&v| v as usize == class).count();
                assert_eq!(in_fold, total / 5, "class {class} in fold {g}");
            }
        }
        // Seeded: the same assignment again, another with another seed.
        let again = Folds::new(&t, TargetKind::Classification, 5, 7).expect("folds");
        assert_eq!(f.fold, again.fold);
        let other = Folds::new(&t, TargetKind::Classification, 5, 8).expect("folds");
        assert_ne!(f.fold, other.fold);
    }

    #[test]
    fn no_folds_without_validation_rows_on_large_tables_or_below_two_rows_per_fold() {
        let y: Vec<f64> = (0..40).map(|i| (i % 2) as f64).collect();
        assert!(Folds::new(&table(y.clone(), 0, 2), TargetKind::Classification, 5, 0).is_none());
        assert!(Folds::new(&table(y.clone(), 4, 2), TargetKind::Classification, 1, 0).is_none());
        assert!(
            Folds::new(
                &table(y[..9].to_vec(), 2, 2),
                TargetKind::Classification,
                5,
                0
            )
            .is_none()
        );
        let big: Vec<f64> = (0..MAX_ROWS + 1).map(|i| i as f64).collect();
        assert!(Folds::new(&table(big, 100, 0), TargetKind::Regression, 5, 0).is_none());
        assert!(Folds::new(&table(y, 4, 2), TargetKind::Classification, 5, 0).is_some());
    }
}
