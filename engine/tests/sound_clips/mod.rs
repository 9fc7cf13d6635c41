//! Generated sound clips for the sound tests: mono 16 kHz float WAVs, deterministic noise, three
//! classes of tones (hum, whistle, hiss) with an optional mix of another class, and noise that
//! steps in loudness half-way through.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// The classes of [`clip`], in class order.
pub const CLASSES: [&str; 3] = ["hum", "whistle", "hiss"];

/// Writes mono 16 kHz samples as a 32-bit float WAV (decoded back exactly).
pub fn wav(path: &Path, samples: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in samples {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// Deterministic noise in [-1, 1].
pub fn noise(i: usize, seed: usize) -> f32 {
    let mut x = (i as u64 ^ (seed as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 20_000) as f32 / 10_000.0 - 1.0
}

/// `n` samples of class `class` (0 hum, 1 whistle, 2 hiss) varied by `k`, with a little of
/// another class mixed in when `mix` (so test probabilities are not all ~1).
pub fn clip(class: usize, k: usize, n: usize, mix: f32) -> Vec<f32> {
    let two_pi = 2.0 * std::f32::consts::PI;
    let amp = 0.15 + (k % 4) as f32 * 0.1;
    let tone = |c: usize, i: usize| -> f32 {
        let t = i as f32 / 16_000.0;
        match c {
            0 => {
                let f0 = 140.0 + 17.0 * k as f32;
                (two_pi * f0 * t).sin() + 0.5 * (two_pi * 2.0 * f0 * t).sin()
            }
            1 => (two_pi * (1_900.0 + 55.0 * k as f32) * t).sin(),
            _ => noise(i, k + 100 * c),
        }
    };
    (0..n)
        .map(|i| (amp * (tone(class, i) + mix * tone((class + 1 + k % 2) % 3, i))).clamp(-1.0, 1.0))
        .collect()
}

/// White noise of `secs` seconds at a level set by `k`: steady (class 0), or stepping up or
/// down six-fold half-way through (class 1) — a change only a window spanning the clip sees
/// whole; a 1 s window inside either half hears steady noise.
pub fn steady_or_step(class: usize, k: usize, secs: f64) -> Vec<f32> {
    let n = (secs * 16_000.0).round() as usize;
    let level = 0.03 * 1.33f32.powi((k % 9) as i32);
    (0..n)
        .map(|i| {
            let gain = match (class, i < n / 2, k % 2) {
                (0, _, _) | (_, true, _) => 1.0,
                (_, false, 0) => 6.0,
                _ => 1.0 / 6.0,
            };
            (level * gain * noise(i, 7_000 + k)).clamp(-1.0, 1.0)
        })
        .collect()
}
