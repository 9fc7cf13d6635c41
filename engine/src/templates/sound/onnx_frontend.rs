//! The sound front ends in ONNX operators: the windowed DFT of every frame as a `Conv` over time
//! with cosine and sine kernels ([`power_spectrum`]: any window, FFT size and hop; a frame
//! zero-padded to the FFT size exactly as realfft pads it), and the engine's log-mel frames of
//! `data::audio_frontend` on it ([`log_mel`]: the HTK mel matrix as a `MatMul`,
//! `Log(mel + log_offset)`). YAMNet's, Whisper's and the speech embedding's own front ends build
//! on [`power_spectrum`].

use crate::data::audio_frontend::{FrontEndConfig, mel_filters};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{i64s, slice};

/// The windowed DFT kernels `[2 · bins, 1, win]`: the cosine of every bin `0..=n_fft/2`, then the
/// sine of every bin (those of bin 0 and Nyquist are zero). The frame is zero-padded to `n_fft`
/// (samples past `n_fft` never reach the FFT); `window` is the analysis window.
pub fn dft_kernels(window: &[f64], n_fft: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let mut out = Vec::with_capacity(2 * bins * window.len());
    for part in [f64::cos, f64::sin] {
        for k in 0..bins {
            for (n, &w) in window.iter().enumerate() {
                let v = if n < n_fft {
                    let angle =
                        2.0 * std::f64::consts::PI * ((k * n) % n_fft) as f64 / n_fft as f64;
                    w * part(angle)
                } else {
                    0.0
                };
                out.push(v as f32);
            }
        }
    }
    out
}

/// Power spectrum `[1, bins, frames]` of `samples` `[1, n]`: the DFT kernels as a `Conv` over
/// time (stride `hop`), squared, the cosine and sine halves summed.
pub fn power_spectrum(
    g: &mut Graph,
    samples: &str,
    window: &[f64],
    n_fft: usize,
    hop: usize,
) -> String {
    let bins = (n_fft / 2 + 1) as i64;
    let win = window.len() as i64;
    let kernels = dft_kernels(window, n_fft);
    let k = g.floats("stft.kernels", &[2 * bins, 1, win], &kernels);
    let axes = i64s(g, "axes", &[1]);
    let x = g.node("Unsqueeze", &[samples, &axes], vec![]);
    let spectrum = g.node(
        "Conv",
        &[&x, &k],
        vec![
            graph::ints("kernel_shape", vec![win]),
            graph::ints("strides", vec![hop as i64]),
        ],
    );
    let squared = g.node("Mul", &[&spectrum, &spectrum], vec![]);
    let re = slice(g, &squared, 1, 0, bins);
    let im = slice(g, &squared, 1, bins, 2 * bins);
    g.node("Add", &[&re, &im], vec![])
}

/// The engine's log-mel frames `[1, n_mels, frames]` of `samples` `[1, n]`.
pub fn log_mel(g: &mut Graph, fe: &FrontEndConfig, samples: &str) -> String {
    let window: Vec<f64> = (0..fe.win_length)
        .map(|n| {
            // The engine's periodic Hann window, rounded to f32 as it uses it.
            (0.5 - 0.5
                * (2.0 * std::f64::consts::PI * n as f64 / fe.win_length as f64).cos() as f32)
                as f64
        })
        .collect();
    let power = power_spectrum(g, samples, &window, fe.n_fft, fe.hop_length);
    let bins = fe.n_fft / 2 + 1;
    let mut mel = vec![0f32; fe.n_mels * bins];
    for (m, (first, weights)) in mel_filters(fe).iter().enumerate() {
        for (j, &wt) in weights.iter().enumerate() {
            if let Some(v) = mel.get_mut(m * bins + first + j) {
                *v = wt;
            }
        }
    }
    let mel = g.floats("mel.matrix", &[fe.n_mels as i64, bins as i64], &mel);
    let e = g.node("MatMul", &[&mel, &power], vec![]);
    let offset = g.floats("mel.log_offset", &[], &[fe.log_offset]);
    let e = g.node("Add", &[&e, &offset], vec![]);
    g.node("Log", &[&e], vec![])
}
