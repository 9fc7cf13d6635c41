//! The log-mel statistics (`statistics`) of one window in ONNX operators: per band the mean,
//! standard deviation and standard deviation of the frame-to-frame change over the window's
//! sounding frames (digital silence left out as the engine does: a `Greater` test per frame,
//! then `NonZero` + `Gather`), and for `logmel_mfcc_stats` models the standard deviations of 20
//! MFCCs and of their deltas (the DCT-II matrix as a `MatMul`). See `templates::sound::onnx`.

use crate::data::audio_frontend::FrontEndConfig;
use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{i64s, reshape, slice};
use crate::export::onnx::proto::data_type;
use crate::templates::sound::encoder as stats_encoder;
use crate::templates::sound::onnx::INPUT;
use crate::templates::sound::onnx_frontend::log_mel;

/// The log-mel statistics `[1, 3 · n_mels]` of a window of `window` samples; with `mfcc`, then
/// the standard deviations of the 20 MFCCs and of their deltas (`[1, 3 · n_mels + 40]`).
pub fn statistics(g: &mut Graph, fe: &FrontEndConfig, window: usize, mfcc: bool) -> Result<String> {
    if window < fe.win_length {
        return Err(Error::Unsupported(
            "ONNX export: the window is shorter than one analysis frame; re-train with a longer window_secs".into(),
        ));
    }
    let bands = fe.n_mels as i64;
    let mel = log_mel(g, fe, INPUT);
    // [1, bands, T] → [T, bands]
    let mel = reshape(g, &mel, &[bands, -1]);
    let rows = g.node("Transpose", &[&mel], vec![graph::ints("perm", vec![1, 0])]);
    // A frame sounds when any band is above the floor; all frames when none does.
    let peak = g.node(
        "ReduceMax",
        &[&rows],
        vec![graph::ints("axes", vec![1]), graph::int("keepdims", 0)],
    );
    let floor = g.floats("silence.floor", &[], &[fe.log_offset.ln() + 1e-3]);
    let sounding = g.node("Greater", &[&peak, &floor], vec![]);
    let sounding = g.node(
        "Cast",
        &[&sounding],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );
    let any = g.node(
        "ReduceMax",
        &[&sounding],
        vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)],
    );
    let one = g.floats("one", &[], &[1.0]);
    let none = g.node("Sub", &[&one, &any], vec![]);
    let keep = g.node("Max", &[&sounding, &none], vec![]);
    let keep = g.node(
        "Cast",
        &[&keep],
        vec![graph::int("to", data_type::BOOL as i64)],
    );
    let index = g.node("NonZero", &[&keep], vec![]);
    let index = reshape(g, &index, &[-1]);
    let rows = g.node("Gather", &[&rows, &index], vec![graph::int("axis", 0)]);
    let mean_attrs = || vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)];
    let mean = g.node("ReduceMean", &[&rows], mean_attrs());
    let centered = g.node("Sub", &[&rows, &mean], vec![]);
    let sq = g.node("Mul", &[&centered, &centered], vec![]);
    let var = g.node("ReduceMean", &[&sq], mean_attrs());
    let std = g.node("Sqrt", &[&var], vec![]);
    // Deltas between consecutive kept frames; a zero row appended (weight 0) keeps the
    // reductions off empty tensors when a single frame is kept, and the count is at least 1
    // as in the engine.
    let next = slice(g, &rows, 0, 1, i64::MAX);
    let prev = slice(g, &rows, 0, 0, -1);
    let deltas = g.node("Sub", &[&next, &prev], vec![]);
    let zero_row = g.floats("delta.pad", &[1, bands], &vec![0.0; bands as usize]);
    let deltas = g.node("Concat", &[&deltas, &zero_row], vec![graph::int("axis", 0)]);
    let shape = g.node("Shape", &[&rows], vec![]);
    let n = slice(g, &shape, 0, 0, 1);
    let n = g.node(
        "Cast",
        &[&n],
        vec![graph::int("to", data_type::FLOAT as i64)],
    );
    let count = g.node("Sub", &[&n, &one], vec![]);
    let count = g.node("Max", &[&count, &one], vec![]);
    let axes0 = i64s(g, "axes", &[0]);
    let sum = g.node(
        "ReduceSum",
        &[&deltas, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let dmean = g.node("Div", &[&sum, &count], vec![]);
    // Weights: 1 for every real delta, 0 for the appended row.
    let ones = g.node(
        "ConstantOfShape",
        &[&shape],
        vec![graph::tensor(
            "value",
            crate::export::onnx::proto::TensorProto {
                dims: vec![1],
                data_type: data_type::FLOAT,
                raw_data: 1f32.to_le_bytes().to_vec(),
                ..Default::default()
            },
        )],
    );
    let ones = slice(g, &ones, 1, 0, 1);
    let real = slice(g, &ones, 0, 1, i64::MAX);
    let zero = g.floats("delta.pad_weight", &[1, 1], &[0.0]);
    let weight = g.node("Concat", &[&real, &zero], vec![graph::int("axis", 0)]);
    let dc = g.node("Sub", &[&deltas, &dmean], vec![]);
    let dsq = g.node("Mul", &[&dc, &dc], vec![]);
    let dsq = g.node("Mul", &[&dsq, &weight], vec![]);
    let dsum = g.node(
        "ReduceSum",
        &[&dsq, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let dvar = g.node("Div", &[&dsum, &count], vec![]);
    let dstd = g.node("Sqrt", &[&dvar], vec![]);
    if !mfcc {
        return Ok(g.node("Concat", &[&mean, &std, &dstd], vec![graph::int("axis", 1)]));
    }
    // MFCCs: rows · DCT `[bands, N_MFCC]`. The standard deviation of a linear map of the rows is
    // that of the centered rows mapped, and the deltas' centered values map the same way.
    let basis = stats_encoder::dct_matrix(fe.n_mels);
    let n_mfcc = basis.len();
    let dct: Vec<f32> = (0..fe.n_mels)
        .flat_map(|m| basis.iter().map(move |row| row[m] as f32))
        .collect();
    let dct = g.floats("mfcc.dct", &[bands, n_mfcc as i64], &dct);
    let mc = g.node("MatMul", &[&centered, &dct], vec![]);
    let msq = g.node("Mul", &[&mc, &mc], vec![]);
    let mvar = g.node("ReduceMean", &[&msq], mean_attrs());
    let mstd = g.node("Sqrt", &[&mvar], vec![]);
    let mdc = g.node("MatMul", &[&dc, &dct], vec![]);
    let mdsq = g.node("Mul", &[&mdc, &mdc], vec![]);
    let mdsq = g.node("Mul", &[&mdsq, &weight], vec![]);
    let mdsum = g.node(
        "ReduceSum",
        &[&mdsq, &axes0],
        vec![graph::int("keepdims", 1)],
    );
    let mdvar = g.node("Div", &[&mdsum, &count], vec![]);
    let mdstd = g.node("Sqrt", &[&mdvar], vec![]);
    Ok(g.node(
        "Concat",
        &[&mean, &std, &dstd, &mstd, &mdstd],
        vec![graph::int("axis", 1)],
    ))
}
