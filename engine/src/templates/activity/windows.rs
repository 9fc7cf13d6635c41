//! Prediction windows: a session of `len` samples is cut into windows of `window` samples
//! starting every `hop` samples, plus one ending at the last sample when the hops miss it (so
//! the whole recording is covered). A session shorter than one window has none.

/// Start sample of every window of a session of `len` samples.
pub fn starts(len: usize, window: usize, hop: usize) -> Vec<usize> {
    if window == 0 || len < window {
        return Vec::new();
    }
    let hop = hop.max(1);
    let mut out: Vec<usize> = (0..=len - window).step_by(hop).collect();
    if out.last().is_some_and(|&s| s + window < len) {
        out.push(len - window);
    }
    out
}

/// The windows of `data` (`[len, channels]` row-major), each `[window, channels]` row-major.
pub fn cut(data: &[f32], channels: usize, window: usize, hop: usize) -> Vec<Vec<f32>> {
    let len = data.len() / channels.max(1);
    starts(len, window, hop)
        .into_iter()
        .filter_map(|s| {
            data.get(s * channels..(s + window) * channels)
                .map(<[f32]>::to_vec)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_session_and_skip_short_ones() {
        assert_eq!(starts(10, 4, 2), vec![0, 2, 4, 6]);
        assert_eq!(starts(11, 4, 2), vec![0, 2, 4, 6, 7]);
        assert_eq!(starts(3, 4, 2), Vec::<usize>::new());
        assert_eq!(starts(4, 4, 4), vec![0]);
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let w = cut(&data, 2, 4, 2);
        assert_eq!(w.len(), 2);
        assert_eq!(w[1], vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
    }
}
