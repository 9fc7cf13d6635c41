//! Limited-memory BFGS over a flat f64 parameter vector: the two-loop recursion over the last
//! ten steps, Armijo backtracking from the quasi-Newton step (so the objective never grows and
//! a fit cannot diverge), and scikit-learn's stopping rules (largest gradient component at most
//! `gtol`, or a relative improvement below SciPy's `ftol` of 2.2e-9). Shared by the dense
//! logistic regression (`learners::logistic`) and the sparse maxent text model.

use crate::error::Result;

/// Steps remembered for the inverse-Hessian estimate.
const MEMORY: usize = 10;

/// One accepted step, as reported to the caller; `extra` is what the objective returned with
/// the value at the new point (losses and accuracies to report without computing them again).
pub struct Step<'a, T> {
    pub iteration: usize,
    pub theta: &'a [f64],
    pub value: f64,
    /// Accepted step length of the line search.
    pub step: f64,
    pub extra: &'a T,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimizes `objective` (value, gradient and an `extra` payload at a point) from `theta`, for
/// at most `max_iterations` steps; `on_step` after each accepted step returns `Ok(true)` to stop
/// there (or an error, e.g. a cancellation, which ends the search). Returns the last point.
pub fn minimize<T>(
    mut theta: Vec<f64>,
    max_iterations: usize,
    gtol: f64,
    objective: &mut dyn FnMut(&[f64]) -> (f64, Vec<f64>, T),
    on_step: &mut dyn FnMut(&Step<T>) -> Result<bool>,
) -> Result<Vec<f64>> {
    let (mut f, mut g, _) = objective(&theta);
    let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    for iteration in 1..=max_iterations {
        // Two-loop recursion: direction = −H·g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            for (qi, yi) in q.iter_mut().zip(y) {
                *qi -= a * yi;
            }
            alphas.push(a);
        }
        let gamma = history
            .last()
            .map(|(s, y, _)| dot(s, y) / dot(y, y).max(1e-300))
            .unwrap_or_else(|| 1.0 / dot(&g, &g).sqrt().max(1e-12));
        for v in &mut q {
            *v *= gamma;
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            for (qi, si) in q.iter_mut().zip(s) {
                *qi += (a - b) * si;
            }
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut gtd = dot(&g, &dir);
        if gtd >= 0.0 {
            // Not a descent direction: forget the curvature pairs, take a scaled gradient step.
            history.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-12);
            dir = g.iter().map(|v| -v * scale).collect();
            gtd = dot(&g, &dir);
        }
        let mut t = 1.0;
        let mut next = None;
        for _ in 0..40 {
            let cand: Vec<f64> = theta.iter().zip(&dir).map(|(x, d)| x + t * d).collect();
            let (fc, gc, extra) = objective(&cand);
            if fc.is_finite() && fc <= f + 1e-4 * t * gtd {
                next = Some((cand, fc, gc, extra));
                break;
            }
            t *= 0.5;
        }
        let Some((cand, fc, gc, extra)) = next else {
            break; // no descent left at machine precision
        };
        let s: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.remove(0);
            }
            history.push((s, y, 1.0 / sy));
        }
        let improvement = f - fc;
        (theta, f, g) = (cand, fc, gc);
        let step = Step {
            iteration,
            theta: &theta,
            value: f,
            step: t,
            extra: &extra,
        };
        if on_step(&step)? {
            break;
        }
        let grad_max = g.iter().fold(0f64, |m, v| m.max(v.abs()));
        if grad_max <= gtol || improvement.abs() <= 2.2e-9 * f.abs().max(1.0) {
            break;
        }
    }
    Ok(theta)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_the_rosenbrock_valley() {
        let mut rosenbrock = |p: &[f64]| {
            let (x, y) = (p[0], p[1]);
            let f = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
            let g = vec![
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ];
            (f, g, ())
        };
        let mut values = Vec::new();
        let p = minimize(vec![-1.2, 1.0], 500, 1e-8, &mut rosenbrock, &mut |s| {
            values.push(s.value);
            Ok(false)
        })
        .unwrap();
        assert!(
            (p[0] - 1.0).abs() < 1e-4 && (p[1] - 1.0).abs() < 1e-4,
            "{p:?}"
        );
        // The line search never lets the objective grow.
        assert!(values.windows(2).all(|w| w[1] <= w[0]), "{values:?}");
    }
}
