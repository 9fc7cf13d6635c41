//! PCA to two dimensions without forming the covariance matrix: subspace iteration (block power
//! iteration with a few extra vectors, re-orthonormalized every step) on the centred feature
//! matrix `X`, products `X·Q` and `Xᵀ·Z` on `gemm`, then Rayleigh–Ritz on the small block (a
//! Jacobi eigen-decomposition) for the two leading components. Deterministic: a seeded start,
//! and each component's sign fixed so its largest loading is positive.

use crate::error::Result;
use crate::ops::pointwise::matmul_strided;
use rand::{Rng, SeedableRng};

/// Extra vectors iterated beside the two wanted (they speed convergence when the second and
/// third variances are close).
const OVERSAMPLE: usize = 6;
/// Most iterations.
const MAX_ITERATIONS: usize = 200;
/// Stop when both leading eigenvalues change by less than this, relatively.
const TOLERANCE: f64 = 1e-7;

/// Samples projected on the first two principal components.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub coords: Vec<[f32; 2]>,
    /// The share of the total variance along each component.
    pub explained: [f64; 2],
}

fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::Rayon(rayon::current_num_threads())
}

/// Projects the `n` rows of row-major `x` (`d` columns) on their two leading principal
/// components. `check` is called every iteration (cancel).
pub fn project_2d(
    x: &[f32],
    n: usize,
    d: usize,
    seed: u64,
    check: &dyn Fn() -> Result<()>,
) -> Result<Projection> {
    let zero = Projection {
        coords: vec![[0.0, 0.0]; n],
        explained: [0.0, 0.0],
    };
    if n < 2 || d == 0 || x.len() != n * d {
        return Ok(zero);
    }
    let xc = centred(x, n, d);
    let total: f64 = xc.iter().map(|&v| (v as f64).powi(2)).sum();
    if total <= 0.0 {
        return Ok(zero);
    }
    let k = (2 + OVERSAMPLE).min(d).min(n);
    // `q`: k orthonormal vectors of length d, one per row.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5CA7_7E12);
    let mut q: Vec<f32> = (0..k * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    orthonormalize(&mut q, k, d);
    let mut z = vec![0f32; n * k];
    let mut previous = [f64::NAN; 2];
    for iteration in 0..MAX_ITERATIONS {
        check()?;
        // z [n,k] = X [n,d] · Qᵀ [d,k]
        matmul_strided(
            &mut z,
            (n, d, k),
            (&xc, 1, d),
            (&q, d, 1),
            false,
            parallelism(),
        );
        let (values, _) = jacobi_eigen(&gram(&z, n, k), k);
        let lead = [values.first().copied(), values.get(1).copied()];
        let lead = [lead[0].unwrap_or(0.0), lead[1].unwrap_or(0.0)];
        let settled = iteration >= 2
            && lead
                .iter()
                .zip(&previous)
                .all(|(a, b)| (a - b).abs() <= TOLERANCE * a.abs().max(1e-30));
        if settled {
            break;
        }
        previous = lead;
        // q [k,d] = Zᵀ [k,n] · X [n,d], then orthonormalized.
        matmul_strided(
            &mut q,
            (k, n, d),
            (&z, k, 1),
            (&xc, 1, d),
            false,
            parallelism(),
        );
        orthonormalize(&mut q, k, d);
    }
    // Rayleigh–Ritz on the converged block: the leading eigenvectors of Zᵀ·Z.
    matmul_strided(
        &mut z,
        (n, d, k),
        (&xc, 1, d),
        (&q, d, 1),
        false,
        parallelism(),
    );
    let (values, vectors) = jacobi_eigen(&gram(&z, n, k), k);
    let mut coords = vec![[0f32; 2]; n];
    let mut explained = [0f64; 2];
    for c in 0..2.min(k) {
        let u: Vec<f64> = (0..k).map(|r| vectors[r * k + c]).collect();
        // The component in feature space, for its sign: largest loading positive.
        let mut loading = vec![0f64; d];
        for (r, ur) in u.iter().enumerate() {
            for (l, qv) in loading.iter_mut().zip(&q[r * d..(r + 1) * d]) {
                *l += ur * *qv as f64;
            }
        }
        let biggest = loading
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(0.0);
        let sign = if biggest < 0.0 { -1.0 } else { 1.0 };
        for (i, point) in coords.iter_mut().enumerate() {
            let row = &z[i * k..(i + 1) * k];
            let v: f64 = row.iter().zip(&u).map(|(a, b)| *a as f64 * b).sum();
            point[c] = (sign * v) as f32;
        }
        explained[c] = values.get(c).copied().unwrap_or(0.0).max(0.0) / total;
    }
    Ok(Projection { coords, explained })
}

/// `x` minus its column means.
fn centred(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(d) {
        for (v, m) in row.iter_mut().zip(&mean) {
            *v = (*v as f64 - m) as f32;
        }
    }
    out
}

/// `Zᵀ·Z` (`k×k`, f64) of row-major `z [n,k]`.
fn gram(z: &[f32], n: usize, k: usize) -> Vec<f64> {
    let mut g = vec![0f64; k * k];
    for row in z.chunks_exact(k).take(n) {
        for a in 0..k {
            for b in a..k {
                g[a * k + b] += row[a] as f64 * row[b] as f64;
            }
        }
    }
    for a in 0..k {
        for b in 0..a {
            g[a * k + b] = g[b * k + a];
        }
    }
    g
}

/// Modified Gram–Schmidt on the `k` rows (length `d`) of `q`; a row that collapses is zeroed.
fn orthonormalize(q: &mut [f32], k: usize, d: usize) {
    for r in 0..k {
        let (done, rest) = q.split_at_mut(r * d);
        let row = &mut rest[..d];
        for p in 0..r {
            let prev = &done[p * d..(p + 1) * d];
            let dot: f64 = row
                .iter()
                .zip(prev)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            for (a, b) in row.iter_mut().zip(prev) {
                *a = (*a as f64 - dot * *b as f64) as f32;
            }
        }
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 1e-20 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        } else {
            row.iter_mut().for_each(|v| *v = 0.0);
        }
    }
}

/// Eigenvalues (descending) and eigenvectors (column `c` of the row-major `k×k` result belongs
/// to value `c`) of the symmetric `k×k` matrix `a`, by cyclic Jacobi rotations.
pub(crate) fn jacobi_eigen(a: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; k * k];
    for i in 0..k {
        v[i * k + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * k + j].powi(2))
            .sum();
        let scale: f64 = (0..k)
            .map(|i| a[i * k + i].powi(2))
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..k {
            for r in p + 1..k {
                let apr = a[p * k + r];
                if apr.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[r * k + r] - a[p * k + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for i in 0..k {
                    let (aip, air) = (a[i * k + p], a[i * k + r]);
                    a[i * k + p] = c * aip - s * air;
                    a[i * k + r] = s * aip + c * air;
                }
                for i in 0..k {
                    let (api, ari) = (a[p * k + i], a[r * k + i]);
                    a[p * k + i] = c * api - s * ari;
                    a[r * k + i] = s * api + c * ari;
                }
                for i in 0..k {
                    let (vip, vir) = (v[i * k + p], v[i * k + r]);
                    v[i * k + p] = c * vip - s * vir;
                    v[i * k + r] = s * vip + c * vir;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&x, &y| a[y * k + y].total_cmp(&a[x * k + x]));
    let values = order.iter().map(|&i| a[i * k + i]).collect();
    let mut vectors = vec![0f64; k * k];
    for (c, &i) in order.iter().enumerate() {
        for r in 0..k {
            vectors[r * k + c] = v[r * k + i];
        }
    }
    (values, vectors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalizes_a_small_symmetric_matrix() {
        // Eigenvalues 6, 3, 1 (a rotated diagonal).
        let a = [4.0, 1.0, 1.0, 1.0, 4.0, -1.0, 1.0, -1.0, 2.0];
        let (values, vectors) = jacobi_eigen(&a, 3);
        for c in 0..3 {
            for r in 0..3 {
                let av: f64 = (0..3).map(|j| a[r * 3 + j] * vectors[j * 3 + c]).sum();
                assert!((av - values[c] * vectors[r * 3 + c]).abs() < 1e-9);
            }
        }
        assert!(values[0] >= values[1] && values[1] >= values[2]);
        assert!((values.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }

    /// Points on a planted plane (spread 10 along one direction, 4 along another) plus small
    /// noise in 50 dimensions: PCA recovers the plane, up to the sign its rule fixes.
    #[test]
    fn recovers_a_planted_plane() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (n, d) = (300, 50);
        let unit = |rng: &mut rand::rngs::StdRng| {
            let v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f64>>()
        };
        let e1 = unit(&mut rng);
        let mut e2 = unit(&mut rng);
        let dot: f64 = e1.iter().zip(&e2).map(|(a, b)| a * b).sum();
        e2.iter_mut().zip(&e1).for_each(|(b, a)| *b -= dot * a);
        let norm = e2.iter().map(|x| x * x).sum::<f64>().sqrt();
        e2.iter_mut().for_each(|b| *b /= norm);
        let mut planted = Vec::new();
        let mut x = Vec::new();
        for _ in 0..n {
            let (s, t) = (rng.random_range(-10.0..10.0), rng.random_range(-4.0..4.0));
            planted.push((s, t));
            for j in 0..d {
                x.push((5.0 + s * e1[j] + t * e2[j] + rng.random_range(-0.05..0.05)) as f32);
            }
        }
        let p = project_2d(&x, n, d, 0, &|| Ok(())).unwrap();
        assert!(
            p.explained[0] > 0.8 && p.explained[1] > 0.1,
            "{:?}",
            p.explained
        );
        assert!(p.explained[0] + p.explained[1] > 0.99, "{:?}", p.explained);
        // Each axis follows one planted coordinate, up to sign.
        let corr = |axis: usize, f: &dyn Fn(&(f64, f64)) -> f64| {
            let a: Vec<f64> = p.coords.iter().map(|c| c[axis] as f64).collect();
            let b: Vec<f64> = planted.iter().map(f).collect();
            let (ma, mb) = (
                a.iter().sum::<f64>() / n as f64,
                b.iter().sum::<f64>() / n as f64,
            );
            let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
            let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
            let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
            cov / (va * vb).sqrt()
        };
        // (Not exactly: the sample's own axes turn a little from the planted ones.)
        assert!(corr(0, &|p| p.0).abs() > 0.99, "{}", corr(0, &|p| p.0));
        assert!(corr(1, &|p| p.1).abs() > 0.99, "{}", corr(1, &|p| p.1));
        // The map keeps the plane's distances (up to the noise): an isometry of the plane.
        for i in 0..n {
            let j = (i * 7 + 3) % n;
            let on_map = ((p.coords[i][0] - p.coords[j][0]) as f64)
                .hypot((p.coords[i][1] - p.coords[j][1]) as f64);
            let planted = (planted[i].0 - planted[j].0).hypot(planted[i].1 - planted[j].1);
            // (The noise, ±0.05 in each of 50 dimensions, moves a point by about 0.03 here.)
            assert!((on_map - planted).abs() < 0.15, "{on_map} {planted}");
        }
        // Deterministic.
        assert_eq!(project_2d(&x, n, d, 0, &|| Ok(())).unwrap(), p);
    }

    #[test]
    fn degenerate_inputs_give_the_origin() {
        assert_eq!(
            project_2d(&[1.0, 2.0], 1, 2, 0, &|| Ok(())).unwrap().coords,
            vec![[0.0, 0.0]]
        );
        let same = project_2d(&[1.0, 2.0, 1.0, 2.0], 2, 2, 0, &|| Ok(())).unwrap();
        assert_eq!(same.coords, vec![[0.0, 0.0]; 2]);
        // One feature: the second axis is empty.
        let line = project_2d(&[1.0, 2.0, 3.0], 3, 1, 0, &|| Ok(())).unwrap();
        assert!((line.explained[0] - 1.0).abs() < 1e-6);
        assert_eq!(line.coords.iter().map(|c| c[1]).sum::<f32>(), 0.0);
    }
}
