//! YAMNet's window feature (`yamnet`) in ONNX operators, as `Yamnet::embed_windows` computes it
//! on a window with its trailing digital silence trimmed (`encoder::trim_padding`, at least one
//! patch, 0.975 s, kept):
//!
//! - the front end of `nets::yamnet` on the whole window: the periodic-Hann 512-point DFT of
//!   every 25 ms frame (stride 10 ms) as a `Conv`, its magnitude (`Sqrt` of the power), TF's
//!   64-band mel matrix as a `MatMul`, `Log(mel + 0.001)`;
//! - the patches: the frames cut into chunks of 48 (0.48 s), patch `p` the chunks `p` and
//!   `p + 1` side by side (96 frames every 48), then the first `P` of them, `P` the whole patches
//!   in the trimmed window (computed in the graph from the last non-zero sample; a frame depends
//!   on its own samples only, so frames past the trimmed end are simply never used);
//! - the network on `[P, 1, 96, 64]`: the 3 × 3 stem (stride 2), 13 depthwise (`Conv` with
//!   `group` = channels) and pointwise convolutions, ReLU after each, TF "same" padding as
//!   explicit `pads` (at stride 2 the extra row and column at the bottom and right), the mean
//!   over the final map, then the mean over patches: `[1, 1024]`.

use crate::error::{Error, Result};
use crate::export::onnx::graph::{self, Graph};
use crate::export::onnx::ops::{Weights, i64s, reshape, slice, slice_to, to_index, trimmed_end};
use crate::nets::yamnet as yn;
use crate::templates::sound::onnx::INPUT;
use crate::templates::sound::onnx_frontend::power_spectrum;

/// Output channels of the stem and of each depthwise-separable block (as `nets::yamnet`).
const WIDTHS: [usize; 14] = [
    32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
];
/// Layers (1-based, as the weights name them) whose 3 × 3 conv has stride 2.
const STRIDE2: [usize; 5] = [1, 3, 5, 7, 13];

/// TF "same" pads `[before, after]` of a 3 × 3 kernel at `stride` on a side of `n`.
fn same(n: usize, stride: usize) -> [i64; 2] {
    if stride == 1 {
        return [1, 1];
    }
    let total = ((n.div_ceil(2) - 1) * 2 + 3).saturating_sub(n) as i64;
    [total / 2, total - total / 2]
}

/// The YAMNet features `[1, 1024]` of the input window of `window` samples.
pub fn yamnet(g: &mut Graph, w: &Weights, window: usize) -> Result<String> {
    let mut x = INPUT.to_string();
    let n = window.max(yn::MIN_SAMPLES);
    if window < yn::MIN_SAMPLES {
        let pads = i64s(g, "pads", &[0, 0, 0, (yn::MIN_SAMPLES - window) as i64]);
        x = g.node("Pad", &[&x, &pads], vec![]);
    }
    // Patches in the trimmed window: ((end − 400) / 160 + 1 − 96) / 48 + 1, whole ones.
    let end = trimmed_end(g, &x, n, yn::MIN_SAMPLES);
    let c = |g: &mut Graph, name: &str, v: usize| g.floats(name, &[], &[v as f32]);
    let (fl, fs) = (
        c(g, "yamnet.frame_length", yn::FRAME_LENGTH),
        c(g, "yamnet.frame_step", yn::FRAME_STEP),
    );
    let (pf, ph) = (
        c(g, "yamnet.patch_frames", yn::PATCH_FRAMES),
        c(g, "yamnet.patch_hop", yn::PATCH_HOP_FRAMES),
    );
    let one = g.floats("one", &[], &[1.0]);
    let t = g.node("Sub", &[&end, &fl], vec![]);
    let t = g.node("Div", &[&t, &fs], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let frames = g.node("Add", &[&t, &one], vec![]);
    let t = g.node("Sub", &[&frames, &pf], vec![]);
    let t = g.node("Div", &[&t, &ph], vec![]);
    let t = g.node("Floor", &[&t], vec![]);
    let patches = g.node("Add", &[&t, &one], vec![]);
    let patches = to_index(g, &patches);

    // Front end on the whole window: [1, 257, T] magnitudes → [1, T, 257] · [257, 64].
    let window_fn: Vec<f64> = (0..yn::FRAME_LENGTH)
        .map(|i| {
            0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / yn::FRAME_LENGTH as f64).cos()
        })
        .collect();
    let power = power_spectrum(g, &x, &window_fn, yn::FFT_SIZE, yn::FRAME_STEP);
    let magnitude = g.node("Sqrt", &[&power], vec![]);
    let magnitude = g.node(
        "Transpose",
        &[&magnitude],
        vec![graph::ints("perm", vec![0, 2, 1])],
    );
    let bins = yn::FFT_SIZE / 2 + 1;
    let mel: Vec<f32> = yn::mel_matrix().iter().map(|&v| v as f32).collect();
    let mel = g.floats("yamnet.mel_matrix", &[bins as i64, yn::N_MELS as i64], &mel);
    let e = g.node("MatMul", &[&magnitude, &mel], vec![]);
    let offset = g.floats("yamnet.log_offset", &[], &[yn::LOG_OFFSET as f32]);
    let e = g.node("Add", &[&e, &offset], vec![]);
    let e = g.node("Log", &[&e], vec![]);

    // Chunks of 48 frames; patch p = chunks p and p + 1.
    let total_frames = (n - yn::FRAME_LENGTH) / yn::FRAME_STEP + 1;
    let chunks = total_frames / yn::PATCH_HOP_FRAMES;
    if chunks < 2 {
        return Err(Error::Unsupported(
            "ONNX export: the window is shorter than one YAMNet patch (a bug)".into(),
        ));
    }
    let (hop, mels) = (yn::PATCH_HOP_FRAMES as i64, yn::N_MELS as i64);
    let e = slice(g, &e, 1, 0, chunks as i64 * hop);
    let e = reshape(g, &e, &[chunks as i64, hop, mels]);
    let first = slice(g, &e, 0, 0, chunks as i64 - 1);
    let second = slice(g, &e, 0, 1, chunks as i64);
    let all = g.node("Concat", &[&first, &second], vec![graph::int("axis", 1)]);
    let kept = slice_to(g, &all, 0, &patches);
    let axes = i64s(g, "axes", &[1]);
    let mut h = g.node("Unsqueeze", &[&kept, &axes], vec![]);

    // The network, every patch at once.
    let (mut rows, mut cols) = (yn::PATCH_FRAMES, yn::N_MELS);
    let conv = |g: &mut Graph,
                h: &str,
                wt: &str,
                b: &str,
                k: i64,
                stride: usize,
                pads: [i64; 4],
                group: usize| {
        let s = stride as i64;
        let y = g.node(
            "Conv",
            &[h, wt, b],
            vec![
                graph::ints("kernel_shape", vec![k, k]),
                graph::ints("strides", vec![s, s]),
                graph::ints("pads", pads.to_vec()),
                graph::int("group", group as i64),
            ],
        );
        g.node("Relu", &[&y], vec![])
    };
    let param = |g: &mut Graph, name: &str| w.initializer(g, &format!("encoder.{name}"));
    let pads_of = |rows: usize, cols: usize, stride: usize| {
        let (r, c) = (same(rows, stride), same(cols, stride));
        [r[0], c[0], r[1], c[1]]
    };
    let (sw, sb) = (
        param(g, "layer1.conv.weight")?,
        param(g, "layer1.conv.bias")?,
    );
    h = conv(g, &h, &sw, &sb, 3, 2, pads_of(rows, cols, 2), 1);
    (rows, cols) = (rows.div_ceil(2), cols.div_ceil(2));
    for (i, pair) in WIDTHS.windows(2).enumerate() {
        let layer = i + 2;
        let stride = if STRIDE2.contains(&layer) { 2 } else { 1 };
        let dw = param(g, &format!("layer{layer}.depthwise.weight"))?;
        let db = param(g, &format!("layer{layer}.depthwise.bias"))?;
        h = conv(
            g,
            &h,
            &dw,
            &db,
            3,
            stride,
            pads_of(rows, cols, stride),
            pair[0],
        );
        if stride == 2 {
            (rows, cols) = (rows.div_ceil(2), cols.div_ceil(2));
        }
        let pw = param(g, &format!("layer{layer}.pointwise.weight"))?;
        let pb = param(g, &format!("layer{layer}.pointwise.bias"))?;
        h = conv(g, &h, &pw, &pb, 1, 1, [0, 0, 0, 0], 1);
    }
    let h = g.node(
        "ReduceMean",
        &[&h],
        vec![graph::ints("axes", vec![2, 3]), graph::int("keepdims", 0)],
    );
    Ok(g.node(
        "ReduceMean",
        &[&h],
        vec![graph::ints("axes", vec![0]), graph::int("keepdims", 1)],
    ))
}
