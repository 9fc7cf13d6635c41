//! Per-window statistics for the boosted-trees candidate: for every sensor channel, and for the
//! magnitude `√(x² + y² + z²)` of every 3-axis group (columns `P_x`, `P_y`, `P_z`), the mean,
//! standard deviation, minimum, maximum, energy (mean square) and lag-1 autocorrelation.

/// Statistics per series, in this order.
pub const STATS: &[&str] = &["mean", "std", "min", "max", "energy", "autocorr1"];

/// The 3-axis groups among `columns`: `(prefix, [x, y, z] column indices)`, in column order.
pub fn axis_groups(columns: &[String]) -> Vec<(String, [usize; 3])> {
    let mut out = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let lower = c.to_lowercase();
        let Some(prefix) = lower
            .strip_suffix("_x")
            .or_else(|| lower.strip_suffix(".x"))
        else {
            continue;
        };
        let sep = &lower[prefix.len()..prefix.len() + 1];
        let find = |axis: &str| {
            columns
                .iter()
                .position(|o| o.to_lowercase() == format!("{prefix}{sep}{axis}"))
        };
        if let (Some(y), Some(z)) = (find("y"), find("z")) {
            out.push((c[..prefix.len()].to_string(), [i, y, z]));
        }
    }
    out
}

/// Names of the features [`window_features`] returns.
pub fn feature_names(columns: &[String]) -> Vec<String> {
    let series: Vec<String> = columns
        .iter()
        .cloned()
        .chain(
            axis_groups(columns)
                .into_iter()
                .map(|(p, _)| format!("{p}_magnitude")),
        )
        .collect();
    series
        .iter()
        .flat_map(|s| STATS.iter().map(move |st| format!("{s}.{st}")))
        .collect()
}

fn stats(series: impl Iterator<Item = f64> + Clone, out: &mut Vec<f64>) {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in series.clone() {
        n += 1.0;
        sum += v;
        sq += v * v;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let n1 = n.max(1.0);
    let mean = sum / n1;
    let var = (sq / n1 - mean * mean).max(0.0);
    let mut cov = 0.0;
    let mut prev: Option<f64> = None;
    for v in series {
        if let Some(p) = prev {
            cov += (p - mean) * (v - mean);
        }
        prev = Some(v);
    }
    let autocorr = if var > 1e-12 { cov / (n1 * var) } else { 0.0 };
    out.extend_from_slice(&[mean, var.sqrt(), lo, hi, sq / n1, autocorr]);
}

/// The statistics of one window (`[window, channels]` row-major).
pub fn window_features(
    window: &[f32],
    channels: usize,
    groups: &[(String, [usize; 3])],
) -> Vec<f64> {
    let c = channels.max(1);
    let mut out = Vec::with_capacity((channels + groups.len()) * STATS.len());
    for ch in 0..channels {
        stats(
            window.iter().skip(ch).step_by(c).map(|&v| v as f64),
            &mut out,
        );
    }
    for (_, [x, y, z]) in groups {
        let (x, y, z) = (*x, *y, *z);
        stats(
            window.chunks_exact(c).map(move |row| {
                let g = |i: usize| row.get(i).copied().unwrap_or(0.0) as f64;
                (g(x) * g(x) + g(y) * g(y) + g(z) * g(z)).sqrt()
            }),
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_known_window() {
        let cols: Vec<String> = ["acc_x", "acc_y", "acc_z", "hr"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let groups = axis_groups(&cols);
        assert_eq!(groups, vec![("acc".to_string(), [0, 1, 2])]);
        assert_eq!(feature_names(&cols).len(), 5 * STATS.len());
        // Two rows: (3, 0, 4, 1) and (−3, 0, 4, 3).
        let w = [3.0, 0.0, 4.0, 1.0, -3.0, 0.0, 4.0, 3.0];
        let f = window_features(&w, 4, &groups);
        assert_eq!(f.len(), 30);
        assert_eq!(&f[0..6], &[0.0, 3.0, -3.0, 3.0, 9.0, -0.5]);
        // The magnitude is 5 in both rows: no spread, autocorrelation 0.
        assert_eq!(&f[24..30], &[5.0, 0.0, 5.0, 5.0, 25.0, 0.0]);
    }
}
