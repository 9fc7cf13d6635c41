//! Google's speech embedding (`speech`) of one window in ONNX operators: its own front end
//! (magnitude spectrum, its 32-band mel matrix, `Log(mel + 0.001)`), its 20 convolutions, batch
//! norm, LeakyReLU floored at −0.4 and max-pools, then the mean and standard deviation of the
//! rows the engine computes on the window with its trailing digital silence trimmed (at least
//! 0.775 s kept). See `templates::sound::onnx`.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{Weights, i64s, reshape, slice};
use crate::export::onnx::proto::data_type;
use crate::nets::speech_embedding as se;
use crate::templates::sound::onnx::INPUT;
use crate::templates::sound::onnx_frontend::power_spectrum;

/// Batch-norm epsilon of the speech embedding's `bn0`.
const SPEECH_BN_EPS: f64 = 1e-3;

/// The speech embedding's features `[1, 192]`: mean and standard deviation of the embedding
/// rows the engine computes on the window with its trailing digital silence trimmed.
pub fn speech(g: &mut Graph, w: &Weights, window: usize) -> Result<String> {
    let min = se::MIN_SAMPLES;
    let padded = window.max(min);
    let frame = |n: usize| (n - se::FRAME_LENGTH) / se::FRAME_STEP + 1;
    let rows_of = |frames: usize| (frames - se::WINDOW_FRAMES) / se::WINDOW_STEP_FRAMES + 1;
    let rows = rows_of(frame(padded));
    let span = (rows - 1) * se::WINDOW_STEP_FRAMES + se::WINDOW_FRAMES;
    let used = (span - 1) * se::FRAME_STEP + se::FRAME_LENGTH;
    let mut x = INPUT.to_string();
    if window < min {
        let pads = i64s(g, "pads", &[0, 0, 0, (min - window) as i64]);
        x = g.node("Pad", &[&x, &pads], vec![]);
    }
    // Rows kept: those of the trimmed clip, from its last non-zero sample.
    let nonzero = {
        let zero = g.floats("zero", &[], &[0.0]);
        let eq = g.node("Equal", &[&x, &zero], vec![]);
        let ne = g.node("Not", &[&eq], vec![]);
        g.node(
            "Cast",
            &[&ne],
            vec![graph::int("to", data_type::FLOAT as i64)],
        )
    };
    let positions: Vec<f32> = (1..=padded).map(|i| i as f32).collect();
    let positions = g.floats("speech.positions", &[1, padded as i64], &positions);
    let ends = g.node("Mul", &[&nonzero, &positions], vec![]);
    let end = g.node(
        "ReduceMax",
        &[&ends],
        vec![graph::ints("axes", vec![0, 1]), graph::int("keepdims", 0)],
    );
    let lo = g.floats("speech.min_samples", &[], &[min as f32]);
    let hi = g.floats("speech.window", &[], &[padded as f32]);
    let end = g.node("Max", &[&end, &lo], vec![]);
    let end = g.node("Min", &[&end, &hi], vec![]);
    let (fl, fs) = (se::FRAME_LENGTH as f32, se::FRAME_STEP as f32);
    let (wf, ws) = (se::WINDOW_FRAMES as f32, se::WINDOW_STEP_FRAMES as f32);
    let c_fl = g.floats("speech.frame_length", &[], &[fl]);
    let c_fs = g.floats("speech.frame_step", &[], &[fs]);
    let c_wf = g.floats("speech.window_frames", &[], &[wf]);
    let c_ws = g.floats("speech.window_step", &[], &[ws]);
    let one = g.floats("one", &[], &[1.0]);
    let t = g.node("Sub", &[&end, &c_fl], vec![]);
    let t = g.node("Div", &[&t, &c_fs], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let frames = g.node("Add", &[&t, &one], vec![]);
    let t = g.node("Sub", &[&frames, &c_wf], vec![]);
    let t = g.node("Div", &[&t, &c_ws], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let kept = g.node("Add", &[&t, &one], vec![]);
    let index: Vec<f32> = (0..rows).map(|i| i as f32).collect();
    let index = g.floats("speech.row_index", &[rows as i64, 1], &index);
    let mask = g.node("Less", &[&index, &kept], vec![]);
    let mask = g.node(
        "Cast",
        &[&mask],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );

    // Front end: magnitude of the windowed DFT, the published mel matrix, ln(mel + 0.001).
    let x = slice(g, &x, 1, 0, used as i64);
    let window: Vec<f64> = (0..se::FRAME_LENGTH)
        .map(|n| {
            0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / se::FRAME_LENGTH as f64).cos()
        })
        .collect();
    let power = power_spectrum(g, &x, &window, se::FFT_SIZE, se::FRAME_STEP);
    let magnitude = g.node("Sqrt", &[&power], vec![]);
    // [1, 257, T] → [1, T, 257] · [257, 32]
    let magnitude = g.node(
        "Transpose",
        &[&magnitude],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let mel_dims = w.dims("encoder.frontend.mel_matrix")?;
    let mel = g.floats(
        "speech.mel_matrix",
        &mel_dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
        &w.values("encoder.frontend.mel_matrix")?,
    );
    let e = g.node("MatMul", &[&magnitude, &mel], vec![]);
    let offset = g.floats("speech.log_offset", &[], &[0.001]);
    let e = g.node("Add", &[&e, &offset], vec![]);
    let e = g.node("Log", &[&e], vec![]);
    // [1, T, 32] → [1, 1, T, 32] (batch, channel, time, mel)
    let axes = i64s(g, "axes", &[1]);
    let mut h = g.node("Unsqueeze", &[&e, &axes], vec![]);

    let lo = g.floats("act.floor", &[], &[-0.4]);
    for i in 0..20 {
        let name = format!("encoder.conv{i}");
        let dims = w.dims(&format!("{name}.weight"))?;
        let [_, _, kh, kw] = dims[..] else {
            return Err(Error::model(
                format!("`{name}.weight` is not a 4-d convolution"),
                w.path,
            ));
        };
        let wt = g.floats(
            &format!("{name}.weight"),
            &dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
            &w.values(&format!("{name}.weight"))?,
        );
        let mut inputs = vec![h.clone(), wt];
        if i != 0 && i != 19 {
            let b = w.values(&format!("{name}.bias"))?;
            inputs.push(g.floats(&format!("{name}.bias"), &[b.len() as i64], &b));
        }
        let pad = if kw == 3 { 1 } else { 0 };
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        h = g.node(
            "Conv",
            &refs,
            vec![
                graph::ints("kernel_shape", vec![kh as i64, kw as i64]),
                graph::ints("pads", vec![0, pad, 0, pad]),
            ],
        );
        if i == 19 {
            break;
        }
        if i == 0 {
            h = g.node("Relu", &[&h], vec![]);
            let v = |s: &str| w.values(&format!("encoder.bn0.{s}"));
            let (gamma, beta, mean, var) = (
                v("weight")?,
                v("bias")?,
                v("running_mean")?,
                v("running_var")?,
            );
            // As the engine folds it: scale = γ / √(σ² + ε) and shift = β − μ · scale, in f32.
            let scale: Vec<f32> = gamma
                .iter()
                .zip(&var)
                .map(|(g, v)| g / (v + SPEECH_BN_EPS as f32).sqrt())
                .collect();
            let shift: Vec<f32> = beta
                .iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            let c = scale.len() as i64;
            let s = g.floats("encoder.bn0.scale", &[1, c, 1, 1], &scale);
            let t = g.floats("encoder.bn0.shift", &[1, c, 1, 1], &shift);
            h = g.node("Mul", &[&h, &s], vec![]);
            h = g.node("Add", &[&h, &t], vec![]);
        }
        h = g.node("LeakyRelu", &[&h], vec![graph::float("alpha", 0.2)]);
        h = g.node("Max", &[&h, &lo], vec![]);
        let pool = match i {
            2 | 10 | 18 => Some([2, 2]),
            6 | 14 => Some([1, 2]),
            _ => None,
        };
        if let Some(k) = pool {
            h = g.node(
                "MaxPool",
                &[&h],
                vec![
                    graph::ints("kernel_shape", k.to_vec()),
                    graph::ints("strides", k.to_vec()),
                ],
            );
        }
    }
    // [1, 96, rows, 1] → [rows, 96]
    let h = reshape(g, &h, &[se::EMBED_DIM as i64, rows as i64]);
    let rows_t = g.node("Transpose", &[&h], vec![graph::ints("perm", vec![1, 0])]);
    let axes0 = i64s(g, "axes", &[0]);
    let masked = g.node("Mul", &[&rows_t, &mask], vec![]);
    let sum = g.node(
        "ReduceSum",
        &[&masked, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let mean = g.node("Div", &[&sum, &kept], vec![]);
    let centered = g.node("Sub", &[&rows_t, &mean], vec![]);
    let sq = g.node("Mul", &[&centered, &centered], vec![]);
    let sq = g.node("Mul", &[&sq, &mask], vec![]);
    let ssum = g.node("ReduceSum", &[&sq, &axes0], vec![graph::int("keepdims", 1)]);
    let var = g.node("Div", &[&ssum, &kept], vec![]);
    let std = g.node("Sqrt", &[&var], vec![]);
    Ok(g.node("Concat", &[&mean, &std], vec![graph::int("axis", 1)]))
}
