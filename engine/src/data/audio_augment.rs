//! Waveform augmentation for the sound classifier, drawn afresh every epoch from a seeded RNG:
//! background-noise mixing (white, pink-ish or brown noise at 5–30 dB SNR), gain (±9 dB), time
//! shift (up to 0.25 s of leading silence or a trimmed start) and optional speed perturbation
//! (0.85–1.15×, which moves pitch and tempo together, like a different voice or player).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which augmentations are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoundAugment {
    pub noise: bool,
    pub gain: bool,
    pub time_shift: bool,
    pub speed: bool,
}

impl SoundAugment {
    pub fn any(&self) -> bool {
        self.noise || self.gain || self.time_shift || self.speed
    }

    /// A new augmented copy of `x` (16 kHz), drawn from `seed`.
    pub fn apply(&self, x: &[f32], seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut y = if self.speed {
            let factor = rng.random_range(0.85f32..1.15);
            speed(x, factor)
        } else {
            x.to_vec()
        };
        if self.time_shift {
            let max = 4000usize; // 0.25 s
            let shift = rng.random_range(0..=max);
            if rng.random_bool(0.5) {
                let mut z = vec![0.0; shift];
                z.extend_from_slice(&y);
                y = z;
            } else {
                y.drain(..shift.min(y.len() / 4));
            }
        }
        if self.gain {
            let db = rng.random_range(-9f32..9.0);
            let g = 10f32.powf(db / 20.0);
            y.iter_mut().for_each(|v| *v *= g);
        }
        if self.noise {
            let rms = (y.iter().map(|v| v * v).sum::<f32>() / y.len().max(1) as f32).sqrt();
            let snr_db = rng.random_range(5f32..30.0);
            let level = rms.max(1e-4) / 10f32.powf(snr_db / 20.0);
            let color = rng.random_range(0..3);
            let noise = noise(y.len(), color, &mut rng);
            for (v, n) in y.iter_mut().zip(noise) {
                *v += n * level;
            }
        }
        y
    }
}

/// Unit-RMS noise: 0 white, 1 pink-ish (one-pole low-passed white), 2 brown (leaky integral).
fn noise(n: usize, color: u32, rng: &mut StdRng) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    let mut state = 0f32;
    for _ in 0..n {
        let w: f32 = rng.random_range(-1.0f32..1.0) * 1.732;
        let v = match color {
            0 => w,
            1 => {
                state = 0.9 * state + 0.1 * w;
                state * 2.3
            }
            _ => {
                state = 0.995 * state + 0.05 * w;
                state * 3.0
            }
        };
        out.push(v);
    }
    out
}

/// Resamples by `factor` with linear interpolation (factor > 1 = faster and higher).
pub fn speed(x: &[f32], factor: f32) -> Vec<f32> {
    if x.len() < 2 || factor <= 0.0 {
        return x.to_vec();
    }
    let n = ((x.len() as f32) / factor) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 * factor;
            let j = t as usize;
            let frac = t - j as f32;
            let a = x.get(j).copied().unwrap_or(0.0);
            let b = x.get(j + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn augmentations_are_seeded_and_change_the_signal() {
        let x: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.4).collect();
        let all = SoundAugment {
            noise: true,
            gain: true,
            time_shift: true,
            speed: true,
        };
        assert_eq!(all.apply(&x, 7), all.apply(&x, 7));
        assert_ne!(all.apply(&x, 7), all.apply(&x, 8));
        assert_eq!(SoundAugment::default().apply(&x, 1), x);
        assert_eq!(speed(&x, 2.0).len(), 8000);
        let noisy = SoundAugment {
            noise: true,
            ..Default::default()
        }
        .apply(&x, 3);
        let err: f32 = noisy.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum();
        let sig: f32 = x.iter().map(|a| a * a).sum();
        let snr = 10.0 * (sig / err).log10();
        assert!((4.0..31.0).contains(&snr), "{snr}");
    }
}
