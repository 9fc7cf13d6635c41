//! Whisper's window feature (`whisper`) in ONNX operators, as `WhisperEncoder::embed_pooled`
//! computes it on a window with its trailing digital silence trimmed (`encoder::trim_padding`,
//! at least 400 samples kept). The graph is dynamic in time: the trimmed length `N` comes from
//! the last non-zero sample, and every later shape follows from it.
//!
//! - the front end of `nets::whisper_encoder`: the samples `[0, N)` reflect-padded by 200 at
//!   both ends (`Pad` mode `reflect`, numpy's), the periodic-Hann 400-point DFT every 160
//!   samples as a `Conv` (power: squares of the cosine and sine parts summed), the last frame
//!   dropped (`floor(N / 160)` frames), the Slaney mel filterbank as a `MatMul`,
//!   `log10(max(mel, 1e-10))`, clamped below at (its maximum − 8), then `(x + 4) / 4`;
//! - the encoder: conv1 (k 3, pad 1) → GELU → conv2 (k 3, stride 2, pad 1) → GELU, the
//!   positional rows `[0, T')` added, the pre-norm transformer layers
//!   (`export::onnx::transformer`), the final layer norm;
//! - the mean over the rows, then their standard deviation (population): `[1, 2 · dim]`.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{Weights, i64s, reshape, slice, slice_to, to_index, trimmed_end};
use crate::export::onnx::transformer::{AttentionNames, gelu, layer_norm, linear, self_attention};
use crate::nets::whisper_encoder as we;
use crate::templates::sound::onnx::INPUT;
use crate::templates::sound::onnx_frontend::power_spectrum;

/// Tensor-name prefix of the encoder in a sound model folder.
const PREFIX: &str = "encoder.model.encoder.";
/// Whisper's attention heads are all 64 wide.
const HEAD_DIM: usize = 64;
/// Whisper's layer-norm epsilon.
const LN_EPS: f32 = 1e-5;

/// The Whisper features `[1, 2 · dim]` of the input window of `window` samples.
pub fn whisper(g: &mut Graph, w: &Weights, window: usize) -> Result<String> {
    let p = |k: &str| format!("{PREFIX}{k}");
    let dims = w.dims(&p("conv1.weight"))?;
    let [dim, n_mels, 3] = dims[..] else {
        return Err(Error::model("`conv1.weight` is not (d, mels, 3)", w.path));
    };
    if dim % HEAD_DIM != 0 || window < we::MIN_SAMPLES {
        return Err(Error::model(
            "the Whisper encoder's width is not a multiple of 64, or the window is shorter than 25 ms",
            w.path,
        ));
    }
    // The window as the encoder sees it: cut to 30 s, trailing zeros trimmed (≥ 400 samples).
    let n = window.min(we::MAX_SAMPLES);
    let mut x = INPUT.to_string();
    if window > n {
        x = slice(g, &x, 1, 0, n as i64);
    }
    let end = trimmed_end(g, &x, n, we::MIN_SAMPLES);
    let end = to_index(g, &end);
    let x = slice_to(g, &x, 1, &end);
    let pad = (we::N_FFT / 2) as i64;
    let pads = i64s(g, "pads", &[0, pad, 0, pad]);
    let x = g.node("Pad", &[&x, &pads], vec![graph::string("mode", "reflect")]);
    let hann: Vec<f64> = (0..we::N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / we::N_FFT as f64).cos())
        .collect();
    let power = power_spectrum(g, &x, &hann, we::N_FFT, we::HOP_LENGTH);
    let power = slice(g, &power, 2, 0, -1);
    let bins = we::N_FFT / 2 + 1;
    let filters: Vec<f32> = we::mel_filters(we::SAMPLE_RATE as f64, we::N_FFT, n_mels)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let filters = g.floats(
        "whisper.mel_filters",
        &[n_mels as i64, bins as i64],
        &filters,
    );
    let mel = g.node("MatMul", &[&filters, &power], vec![]);
    let tiny = g.floats("whisper.mel_floor", &[], &[1e-10]);
    let mel = g.node("Max", &[&mel, &tiny], vec![]);
    let mel = g.node("Log", &[&mel], vec![]);
    let to_log10 = g.floats("whisper.log10", &[], &[std::f32::consts::LOG10_E]);
    let mel = g.node("Mul", &[&mel, &to_log10], vec![]);
    let top = g.node("ReduceMax", &[&mel], vec![graph::int("keepdims", 0)]);
    let eight = g.floats("whisper.range", &[], &[8.0]);
    let floor = g.node("Sub", &[&top, &eight], vec![]);
    let mel = g.node("Max", &[&mel, &floor], vec![]);
    let four = g.floats("whisper.four", &[], &[4.0]);
    let mel = g.node("Add", &[&mel, &four], vec![]);
    let mel = g.node("Div", &[&mel, &four], vec![]);

    // conv1 → GELU → conv2 (stride 2) → GELU, [1, dim, T'] → [1, T', dim].
    let conv = |g: &mut Graph, x: &str, name: &str, stride: i64| -> Result<String> {
        let wt = w.initializer(g, &p(&format!("{name}.weight")))?;
        let b = w.initializer(g, &p(&format!("{name}.bias")))?;
        let y = g.node(
            "Conv",
            &[x, &wt, &b],
            vec![
                graph::ints("kernel_shape", vec![3]),
                graph::ints("strides", vec![stride]),
                graph::ints("pads", vec![1, 1]),
            ],
        );
        Ok(gelu(g, &y))
    };
    let h = conv(g, &mel, "conv1", 1)?;
    let h = conv(g, &h, "conv2", 2)?;
    let h = g.node("Transpose", &[&h], vec![graph::ints("perm", vec![0, 2, 1])]);
    let shape = g.node("Shape", &[&h], vec![]);
    let rows = slice(g, &shape, 0, 1, 2);
    let positions = w.initializer(g, &p("embed_positions.weight"))?;
    let positions = slice_to(g, &positions, 0, &rows);
    let mut h = g.node("Add", &[&h, &positions], vec![]);
    let mut layer = 0;
    while w
        .tensors
        .contains_key(&p(&format!("layers.{layer}.fc1.weight")))
    {
        let l = |k: &str| p(&format!("layers.{layer}.{k}"));
        let a = layer_norm(g, w, &l("self_attn_layer_norm"), &h, LN_EPS)?;
        let names = AttentionNames {
            query: &l("self_attn.q_proj"),
            key: &l("self_attn.k_proj"),
            value: &l("self_attn.v_proj"),
            out: &l("self_attn.out_proj"),
        };
        let a = self_attention(g, w, &names, &a, dim / HEAD_DIM, HEAD_DIM, None)?;
        h = g.node("Add", &[&h, &a], vec![]);
        let m = layer_norm(g, w, &l("final_layer_norm"), &h, LN_EPS)?;
        let m = linear(g, w, &l("fc1"), &m, false)?;
        let m = gelu(g, &m);
        let m = linear(g, w, &l("fc2"), &m, false)?;
        h = g.node("Add", &[&h, &m], vec![]);
        layer += 1;
    }
    if layer == 0 {
        return Err(Error::model("the Whisper encoder has no layers", w.path));
    }
    let h = layer_norm(g, w, &p("layer_norm"), &h, LN_EPS)?;
    // [1, T', dim] → [T', dim]: mean and population standard deviation over rows.
    let h = reshape(g, &h, &[-1, dim as i64]);
    let attrs = || vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)];
    let mean = g.node("ReduceMean", &[&h], attrs());
    let centered = g.node("Sub", &[&h, &mean], vec![]);
    let sq = g.node("Mul", &[&centered, &centered], vec![]);
    let var = g.node("ReduceMean", &[&sq], attrs());
    let std = g.node("Sqrt", &[&var], vec![]);
    Ok(g.node("Concat", &[&mean, &std], vec![graph::int("axis", 1)]))
}
