//! Linear models on table features: ridge regression (closed form) and multinomial logistic
//! regression (L-BFGS, the iterate of best validation loss kept), both on standardized
//! inputs with an L2 penalty. Inputs are the "design" of a table: numbers with the median
//! imputed and ±inf clipped into the training range, categorical levels one-hot. The fitted
//! weights are folded back to design space, so a predictor needs no scaling step.

use crate::data::table_schema::{ColumnKind, Matrix, Schema};
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The design matrix of `x` (row-major, `dim` columns) as the schema's linear encoding has it.
pub fn design(schema: &Schema, x: &Matrix) -> (Vec<f64>, usize) {
    let dim = design_dim(schema);
    let mut out = vec![0.0; x.num_rows * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(r, row)| {
            let mut j = 0;
            for (f, col) in schema.features.iter().zip(&x.columns) {
                let v = col.get(r).copied().unwrap_or(f64::NAN);
                match f.kind {
                    ColumnKind::Numeric | ColumnKind::Boolean => {
                        let v = if v.is_nan() {
                            f.median
                        } else {
                            v.clamp(f.min, f.max.max(f.min))
                        };
                        if let Some(slot) = row.get_mut(j) {
                            *slot = v;
                        }
                        j += 1;
                    }
                    ColumnKind::Categorical => {
                        let levels = f.categories.len() + 1;
                        let code = if v.is_nan() {
                            f.missing_code()
                        } else {
                            (v as usize).min(f.missing_code())
                        };
                        if let Some(slot) = row.get_mut(j + code) {
                            *slot = 1.0;
                        }
                        j += levels;
                    }
                }
            }
        });
    (out, dim)
}

/// Columns of the design: one per number, one per level (missing included) per category.
pub fn design_dim(schema: &Schema) -> usize {
    schema
        .features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Categorical => f.categories.len() + 1,
            _ => 1,
        })
        .sum()
}

/// Names of the design columns (`carat`, `color=E`, `color=<missing>`), for the export.
pub fn design_names(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for f in &schema.features {
        match f.kind {
            ColumnKind::Categorical => {
                out.extend(f.categories.iter().map(|c| format!("{}={c}", f.name)));
                out.push(format!("{}=<missing or other>", f.name));
            }
            _ => out.push(f.name.clone()),
        }
    }
    out
}

/// A fitted linear model in design space: `outputs = bias + weight · design`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Glm {
    /// 0 for a regressor, else the number of classes (softmax over the outputs).
    pub classes: usize,
    pub dim: usize,
    /// `[outputs, dim]` row-major.
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
}

impl Glm {
    pub fn outputs(&self) -> usize {
        self.classes.max(1)
    }

    /// Raw outputs of one design row.
    pub fn raw(&self, x: &[f64]) -> Vec<f64> {
        self.bias
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let w = self
                    .weight
                    .get(k * self.dim..(k + 1) * self.dim)
                    .unwrap_or(&[]);
                b + w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>()
            })
            .collect()
    }
}

/// Per-column mean and standard deviation (1 for constant columns).
fn standardization(x: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / dim.max(1)).max(1) as f64;
    let mut mean = vec![0.0; dim];
    for row in x.chunks(dim.max(1)) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let mut var = vec![0.0; dim];
    for row in x.chunks(dim.max(1)) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let std = var
        .iter()
        .map(|v| if *v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, std)
}

fn standardize(x: &[f64], dim: usize, mean: &[f64], std: &[f64]) -> Vec<f64> {
    let mut z = x.to_vec();
    z.par_chunks_mut(dim.max(1)).for_each(|row| {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    });
    z
}

/// Folds standardization (and a target scale) into the weights.
fn fold(mut m: Glm, mean: &[f64], std: &[f64], y_mean: f64, y_std: f64) -> Glm {
    for k in 0..m.outputs() {
        let mut shift = 0.0;
        for j in 0..m.dim {
            if let Some(w) = m.weight.get_mut(k * m.dim + j) {
                *w = *w / std.get(j).copied().unwrap_or(1.0) * y_std;
                shift += *w * mean.get(j).copied().unwrap_or(0.0);
            }
        }
        if let Some(b) = m.bias.get_mut(k) {
            *b = *b * y_std + y_mean - shift;
        }
    }
    m
}

/// Ridge regression: minimizes mean squared error + `l2`·‖w‖² on standardized inputs and target.
pub fn fit_ridge(x: &[f64], dim: usize, y: &[f64], l2: f64) -> Result<Glm> {
    let n = y.len();
    let (mean, std) = standardization(x, dim);
    let z = standardize(x, dim, &mean, &std);
    let y_mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let y_var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n.max(1) as f64;
    let y_std = if y_var > 1e-24 { y_var.sqrt() } else { 1.0 };
    // Normal equations: (ZᵀZ/n + l2·I) w = Zᵀy/n
    let (mut a, b) = z
        .par_chunks(dim.max(1))
        .zip(y.par_iter())
        .fold(
            || (vec![0.0; dim * dim], vec![0.0; dim]),
            |(mut a, mut b), (row, t)| {
                let t = (t - y_mean) / y_std;
                for i in 0..dim {
                    let ri = row.get(i).copied().unwrap_or(0.0);
                    if let Some(bi) = b.get_mut(i) {
                        *bi += ri * t;
                    }
                    for j in 0..=i {
                        if let Some(aij) = a.get_mut(i * dim + j) {
                            *aij += ri * row.get(j).copied().unwrap_or(0.0);
                        }
                    }
                }
                (a, b)
            },
        )
        .reduce(
            || (vec![0.0; dim * dim], vec![0.0; dim]),
            |(mut a, mut b), (a2, b2)| {
                a.iter_mut().zip(a2).for_each(|(x, y)| *x += y);
                b.iter_mut().zip(b2).for_each(|(x, y)| *x += y);
                (a, b)
            },
        );
    let nf = n.max(1) as f64;
    for i in 0..dim {
        for j in 0..=i {
            let v = a.get(i * dim + j).copied().unwrap_or(0.0) / nf;
            if let Some(s) = a.get_mut(i * dim + j) {
                *s = v;
            }
            if let Some(s) = a.get_mut(j * dim + i) {
                *s = v;
            }
        }
        if let Some(s) = a.get_mut(i * dim + i) {
            *s += l2.max(1e-10);
        }
    }
    let b: Vec<f64> = b.iter().map(|v| v / nf).collect();
    let w = cholesky_solve(&a, &b, dim).ok_or_else(|| {
        Error::Diverged("linear regression could not be solved (singular inputs)".into())
    })?;
    let m = Glm {
        classes: 0,
        dim,
        weight: w,
        bias: vec![0.0],
    };
    Ok(fold(m, &mean, &std, y_mean, y_std))
}

/// Solves `a x = b` for symmetric positive definite `a` (`dim × dim`, row-major).
fn cholesky_solve(a: &[f64], b: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut s = *a.get(i * dim + j)?;
            for k in 0..j {
                s -= l.get(i * dim + k)? * l.get(j * dim + k)?;
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                *l.get_mut(i * dim + i)? = s.sqrt();
            } else {
                *l.get_mut(i * dim + j)? = s / l.get(j * dim + j)?;
            }
        }
    }
    let mut y = vec![0.0; dim];
    for i in 0..dim {
        let mut s = *b.get(i)?;
        for k in 0..i {
            s -= l.get(i * dim + k)? * y.get(k)?;
        }
        *y.get_mut(i)? = s / l.get(i * dim + i)?;
    }
    let mut x = vec![0.0; dim];
    for i in (0..dim).rev() {
        let mut s = *y.get(i)?;
        for k in i + 1..dim {
            s -= l.get(k * dim + i)? * x.get(k)?;
        }
        *x.get_mut(i)? = s / l.get(i * dim + i)?;
    }
    Some(x)
}

/// Settings of logistic regression.
#[derive(Clone, Debug)]
pub struct LogisticParams {
    pub l2: f64,
    pub max_iterations: usize,
    /// Iterations without validation improvement before stopping (0 = never).
    pub patience: usize,
}

/// One iteration's numbers.
#[derive(Clone, Debug)]
pub struct LogisticRound {
    pub iteration: usize,
    pub train_loss: f64,
    pub validation_loss: Option<f64>,
    pub train_accuracy: f64,
    pub validation_accuracy: Option<f64>,
}

/// Multinomial logistic regression on design rows `x` with class indices `y`: standardized
/// inputs, mean cross-entropy + `l2`·‖w‖², fitted by L-BFGS (`learners::logistic`); with
/// validation rows, the iterate of lowest validation loss is kept and `patience` iterations
/// without improvement stop the fit.
pub fn fit_logistic(
    train: (&[f64], &[usize]),
    validation: Option<(&[f64], &[usize])>,
    dim: usize,
    classes: usize,
    params: &LogisticParams,
    on_round: &mut dyn FnMut(&LogisticRound) -> Result<()>,
) -> Result<Glm> {
    fit_logistic_weighted(train, validation, dim, classes, params, &[], on_round)
}

/// [`fit_logistic`] with each class's rows weighted by `class_weights[class]` in the training
/// loss (empty = all 1; `class_weight = balanced`); validation loss stays unweighted.
pub fn fit_logistic_weighted(
    train: (&[f64], &[usize]),
    validation: Option<(&[f64], &[usize])>,
    dim: usize,
    classes: usize,
    params: &LogisticParams,
    class_weights: &[f64],
    on_round: &mut dyn FnMut(&LogisticRound) -> Result<()>,
) -> Result<Glm> {
    use crate::learners::logistic::{self, Link, Rows, Settings};
    let (x, y) = train;
    let k = classes.max(2);
    let (mean, std) = standardization(x, dim);
    let to_f32 = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|a| a as f32).collect() };
    let to_u32 = |v: &[usize]| -> Vec<u32> { v.iter().map(|&a| a as u32).collect() };
    let z = to_f32(standardize(x, dim, &mean, &std));
    let labels = to_u32(y);
    let vz = validation.map(|(vx, vy)| (to_f32(standardize(vx, dim, &mean, &std)), to_u32(vy)));
    fn rows<'a>(x: &'a [f32], labels: &'a [u32], dim: usize) -> Rows<'a> {
        Rows {
            x,
            dim,
            labels,
            targets: &[],
            weights: None,
        }
    }
    let settings = Settings {
        // learners::logistic penalizes ½·l2·‖w‖²; this model's penalty is l2·‖w‖².
        l2: 2.0 * params.l2,
        max_iterations: params.max_iterations.max(1),
        tolerance: 1e-4,
    };
    let mut best: Option<(f64, logistic::Logistic)> = None;
    let mut since_best = 0;
    let row_weights: Option<Vec<f32>> = (!class_weights.is_empty()).then(|| {
        y.iter()
            .map(|&c| class_weights.get(c).copied().unwrap_or(1.0) as f32)
            .collect()
    });
    let train_rows = Rows {
        weights: row_weights.as_deref(),
        ..rows(&z, &labels, dim)
    };
    let last = logistic::fit(
        train_rows,
        k,
        Link::Softmax,
        &settings,
        None,
        &mut |it, model| {
            let (validation_loss, validation_accuracy) = match &vz {
                Some((vx, vy)) => {
                    let (l, a) = logistic::score(model, rows(vx, vy, dim));
                    (Some(l), Some(a))
                }
                None => (None, None),
            };
            on_round(&LogisticRound {
                iteration: it.iteration,
                train_loss: it.loss,
                validation_loss,
                train_accuracy: it.accuracy,
                validation_accuracy,
            })?;
            let Some(l) = validation_loss else {
                return Ok(false);
            };
            if best.as_ref().is_none_or(|(b, _)| l < b - 1e-7) {
                best = Some((l, model.clone()));
                since_best = 0;
            } else {
                since_best += 1;
            }
            Ok(params.patience > 0 && since_best >= params.patience)
        },
    )?;
    let chosen = best.map_or(last, |(_, m)| m);
    let m = Glm {
        classes: k,
        dim,
        weight: chosen.weight.iter().map(|&v| v as f64).collect(),
        bias: chosen.bias.iter().map(|&v| v as f64).collect(),
    };
    Ok(fold(m, &mean, &std, 0.0, 1.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_function_in_raw_units() {
        // y = 3 + 2·a − 0.5·b
        let rows: Vec<[f64; 2]> = (0..50)
            .map(|i| [i as f64, ((i * 7) % 11) as f64 * 100.0])
            .collect();
        let x: Vec<f64> = rows.iter().flatten().copied().collect();
        let y: Vec<f64> = rows.iter().map(|r| 3.0 + 2.0 * r[0] - 0.5 * r[1]).collect();
        let m = fit_ridge(&x, 2, &y, 1e-10).unwrap();
        assert!((m.weight[0] - 2.0).abs() < 1e-5, "{:?}", m.weight);
        assert!((m.weight[1] + 0.5).abs() < 1e-5);
        assert!((m.bias[0] - 3.0).abs() < 1e-3);
        assert!((m.raw(&[10.0, 200.0])[0] - (3.0 + 20.0 - 100.0)).abs() < 1e-3);
    }

    #[test]
    fn logistic_separates_two_blobs() {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let c = i % 2;
            let jitter = ((i * 37) % 13) as f64 / 13.0;
            x.extend([c as f64 * 4.0 + jitter, 50.0 + jitter * 10.0]);
            y.push(c);
        }
        let p = LogisticParams {
            l2: 1e-4,
            max_iterations: 200,
            patience: 0,
        };
        let mut last = 0.0;
        let m = fit_logistic((&x, &y), None, 2, 2, &p, &mut |r| {
            last = r.train_accuracy;
            Ok(())
        })
        .unwrap();
        assert_eq!(last, 1.0);
        let a = m.raw(&[0.5, 55.0]);
        let b = m.raw(&[4.5, 55.0]);
        assert!(a[0] > a[1] && b[1] > b[0]);
    }
}
