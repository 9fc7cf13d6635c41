//! The log-mel statistics sound classifier (`statistics`: `encoder::log_mel_stats` + head) as
//! standard Core ML layers (specification 1) over one window of raw samples, computing what the
//! engine computes:
//!
//! - the log-mel front end of `coreml` (DFT convolution, power, mel matrix, `LOG` with shift
//!   `log_offset`) → `[bands, 1, T]`;
//! - the frames to keep as a 0/1 mask `[1, 1, T]`: a frame sounds when its largest mel energy is
//!   above the engine's floor (`log(e + offset) > log(offset) + 1e-3`, i.e.
//!   `e > offset·(e^0.001 − 1)`; digital silence gives exactly 0), written as a steep clipped
//!   ramp; all frames when none sounds;
//! - mean and population standard deviation per band as masked sums divided by the count;
//! - deltas between consecutive *kept* frames: the kept rows are carried forward over silent
//!   frames (the index of the last kept frame by a running max pooling, a one-hot `[T, T]` from it,
//!   the rows gathered as a broadcast product and a sum), then frame-to-frame differences weighted
//!   by "this frame is kept and one was kept before" (the count at least 1, as the engine);
//! - for `logmel_mfcc_stats`, the same standard deviations of the 20 MFCCs and their deltas (the
//!   DCT-II matrix as a 1×1 convolution on the centered rows and centered deltas);
//!
//! then the head's inner products (the input standardization is folded into the first, as the
//! model folder stores it) and the softmax. The one-hot gather costs `bands · T²` multiplies:
//! 0.4 M for the default 1 s window, 40 M for the longest whole-clip window (10 s).

use crate::data::audio_frontend::FrontEndConfig;
use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, Conv2d, NetworkBuilder};
use crate::nets::head::{Head, HeadKind};
use crate::templates::sound::coreml::{
    INPUT, PROBABILITY_OUTPUT, Weights, mel_energies, reduce, reshape,
};
use crate::templates::sound::encoder::{N_MFCC, dct_matrix, stats_dim};
use coreml_proto::proto::{
    PoolingLayerParams, ScaleLayerParams, SliceLayerParams, UpsampleLayerParams, ValidPadding,
    neural_network_layer::Layer, pooling_layer_params, reduce_layer_params::ReduceAxis,
    reduce_layer_params::ReduceOperation, slice_layer_params::SliceAxis,
};

/// Width of the mask's ramp as a share of the floor: energies within floor · (1 ± 1e-3) get a
/// weight between 0 and 1 (the engine's frames are 0 or far above).
const RAMP: f64 = 1e-3;

/// The statistics of `window` samples of `INPUT`, then `head` and the softmax.
pub(crate) fn network(
    b: &mut NetworkBuilder,
    fe: &FrontEndConfig,
    window: usize,
    mfcc: bool,
    head: &HeadKind,
    w: &Weights,
) -> Result<()> {
    if window < fe.win_length + fe.hop_length {
        return Err(Error::Unsupported(
            "Core ML export: the window holds fewer than two analysis frames; re-train with a longer window_secs".into(),
        ));
    }
    let frames = (window - fe.win_length) / fe.hop_length + 1;
    let bands = fe.n_mels;
    let row = reshape(b, "samples", INPUT, "samples.row", [1, 1, window]);
    let mel = mel_energies(b, fe, &row)?;
    let x = b.log("logmel", &mel, "logmel", 1.0, fe.log_offset);

    // Kept frames [1, 1, T].
    let peak = reduce(
        b,
        "mask.peak",
        &mel,
        "mask.peak",
        ReduceOperation::Max,
        ReduceAxis::C,
    );
    let floor = fe.log_offset as f64 * (1e-3f64.exp() - 1.0);
    let steep = 1.0 / (floor * RAMP);
    let ramp = b.activation(
        "mask.ramp",
        &peak,
        "mask.ramp",
        Activation::Linear {
            alpha: steep as f32,
            beta: (-floor * steep) as f32,
        },
    );
    let low = b.threshold("mask.low", &ramp, "mask.low", 1.0, 0.0);
    // max(−x, −1) = −min(x, 1), then negated.
    let high = b.threshold("mask.high", &low, "mask.high", -1.0, -1.0);
    let sounding = linear(b, "mask.sounding", &high, -1.0, 0.0);
    let any = reduce(
        b,
        "mask.any",
        &sounding,
        "mask.any",
        ReduceOperation::Max,
        ReduceAxis::W,
    );
    let none = linear(b, "mask.none", &any, -1.0, 1.0);
    let keep = b.add("mask.keep", &[&sounding, &none], "mask.keep");
    let count = reduce(
        b,
        "mask.count",
        &keep,
        "mask.count",
        ReduceOperation::Sum,
        ReduceAxis::W,
    );
    let inv_n = b.inverse("mask.inv_count", &count, "mask.inv_count", 1e-12);

    // Mean and standard deviation per band over the kept frames.
    let mean = masked_mean(b, "stats.mean", &x, &keep, &inv_n);
    let neg_mean = linear(b, "stats.neg_mean", &mean, -1.0, 0.0);
    let centered = b.add("stats.centered", &[&x, &neg_mean], "stats.centered");
    let std = masked_std(b, "stats.std", &centered, &keep, &inv_n);

    // The last kept frame at or before each frame (1-based; 0 before the first kept one).
    let ramp_values: Vec<f32> = (1..=frames).map(|t| t as f32).collect();
    let index = b.push(
        "carry.index",
        &[&keep],
        "carry.index",
        Layer::Scale(ScaleLayerParams {
            shape_scale: vec![1, 1, frames as u64],
            scale: Some(crate::export::coreml::builder::fp32_weights(&ramp_values)),
            has_bias: false,
            shape_bias: Vec::new(),
            bias: None,
        }),
    );
    let padded = b.zero_pad("carry.pad", &index, "carry.pad", ((0, 0), (frames - 1, 0)));
    let last = b.push(
        "carry.last",
        &[&padded],
        "carry.last",
        Layer::Pooling(PoolingLayerParams {
            r#type: pooling_layer_params::PoolingType::Max as i32,
            kernel_size: vec![1, frames as u64],
            stride: vec![1, 1],
            pooling_padding_type: Some(pooling_layer_params::PoolingPaddingType::Valid(
                ValidPadding {
                    padding_amounts: Some(coreml_proto::proto::BorderAmounts {
                        border_amounts: vec![Default::default(), Default::default()],
                    }),
                },
            )),
            ..Default::default()
        }),
    );
    // One-hot [s, 1, t] = relu(1 − |last_t − (s + 1)|).
    let ones = vec![1f32; frames];
    let offsets: Vec<f32> = (1..=frames).map(|s| -(s as f32)).collect();
    let diff = b.conv(
        "carry.diff",
        &last,
        "carry.diff",
        &Conv2d {
            weight: &ones,
            shape: [frames, 1, 1, 1],
            bias: Some(&offsets),
            stride: 1,
            groups: 1,
            padding: ((0, 0), (0, 0)),
        },
    )?;
    let dist = b.abs("carry.dist", &diff, "carry.dist");
    let near = linear(b, "carry.near", &dist, -1.0, 1.0);
    let onehot = b.activation("carry.onehot", &near, "carry.onehot", Activation::Relu);
    let onehot = reshape(
        b,
        "carry.onehot_rows",
        &onehot,
        "carry.onehot_rows",
        [1, frames, frames],
    );
    // Rows carried forward: carried[b, t] = x[b, last_t − 1] (0 before the first kept frame).
    let columns = reshape(b, "carry.columns", &x, "carry.columns", [bands, frames, 1]);
    let tiled = b.push(
        "carry.tiled",
        &[&columns],
        "carry.tiled",
        Layer::Upsample(UpsampleLayerParams {
            scaling_factor: vec![1, frames as u64],
            ..Default::default()
        }),
    );
    let picked = b.multiply("carry.picked", &[&tiled, &onehot], "carry.picked");
    let carried = reduce(
        b,
        "carry.rows",
        &picked,
        "carry.rows",
        ReduceOperation::Sum,
        ReduceAxis::H,
    );

    // Deltas between consecutive kept frames, weighted by "kept, and one kept before".
    let next = slice(b, "delta.next", &carried, 1, frames);
    let prev = slice(b, "delta.prev", &carried, 0, frames - 1);
    let neg_prev = linear(b, "delta.neg_prev", &prev, -1.0, 0.0);
    let delta = b.add("delta", &[&next, &neg_prev], "delta");
    let kept_next = slice(b, "delta.kept", &keep, 1, frames);
    let last_prev = slice(b, "delta.last_prev", &last, 0, frames - 1);
    let before = b.threshold(
        "delta.before_neg",
        &last_prev,
        "delta.before_neg",
        -1.0,
        -1.0,
    );
    let before = linear(b, "delta.before", &before, -1.0, 0.0);
    let weight = b.multiply("delta.weight", &[&kept_next, &before], "delta.weight");
    let dcount = reduce(
        b,
        "delta.count",
        &weight,
        "delta.count",
        ReduceOperation::Sum,
        ReduceAxis::W,
    );
    let dcount = b.threshold("delta.count_min1", &dcount, "delta.count_min1", 1.0, 1.0);
    let inv_d = b.inverse("delta.inv_count", &dcount, "delta.inv_count", 1e-12);
    let dmean = masked_mean(b, "delta.mean", &delta, &weight, &inv_d);
    let neg_dmean = linear(b, "delta.neg_mean", &dmean, -1.0, 0.0);
    let dcentered = b.add("delta.centered", &[&delta, &neg_dmean], "delta.centered");
    let dstd = masked_std(b, "delta.std", &dcentered, &weight, &inv_d);

    let mut parts = vec![mean, std, dstd];
    if mfcc {
        let dct: Vec<f32> = dct_matrix(bands)
            .iter()
            .flat_map(|row| row.iter().map(|&v| v as f32))
            .collect();
        let mut dct_conv = |name: &str, input: &str| {
            b.conv(
                name,
                input,
                name,
                &Conv2d {
                    weight: &dct,
                    shape: [N_MFCC, bands, 1, 1],
                    bias: None,
                    stride: 1,
                    groups: 1,
                    padding: ((0, 0), (0, 0)),
                },
            )
        };
        let coef = dct_conv("mfcc.centered", &centered)?;
        let dcoef = dct_conv("mfcc.delta_centered", &dcentered)?;
        parts.push(masked_std(b, "mfcc.std", &coef, &keep, &inv_n));
        parts.push(masked_std(b, "mfcc.delta_std", &dcoef, &weight, &inv_d));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let features = b.concat("features", &refs, "features");
    head_layers(b, &features, stats_dim(bands, mfcc), head, w)
}

/// The head's linear layers (ReLU between) and the softmax, from `[in_dim, 1, 1]` features.
fn head_layers(
    b: &mut NetworkBuilder,
    features: &str,
    features_dim: usize,
    head: &HeadKind,
    w: &Weights,
) -> Result<()> {
    let names = Head::layer_names(head);
    let last = names.len().saturating_sub(1);
    let mut blob = features.to_string();
    let mut in_dim = features_dim;
    for (i, name) in names.iter().enumerate() {
        let wname = format!("{name}.weight");
        let dims = w.dims(&wname)?;
        let [out_dim, d] = dims[..] else {
            return Err(Error::model(format!("`{wname}` is not a matrix"), w.path));
        };
        if d != in_dim {
            return Err(Error::model(
                format!("`{wname}` takes {d} inputs, expected {in_dim}"),
                w.path,
            ));
        }
        let output = if i == last {
            "logits".to_string()
        } else {
            name.to_string()
        };
        blob = b.inner_product(
            name,
            &blob,
            &output,
            &w.values(&wname)?,
            Some(&w.values(&format!("{name}.bias"))?),
            (out_dim, in_dim),
        )?;
        if i < last {
            let act = format!("{name}.relu");
            blob = b.activation(&act, &blob, &act, Activation::Relu);
        }
        in_dim = out_dim;
    }
    b.softmax("probabilities", &blob, PROBABILITY_OUTPUT);
    Ok(())
}

/// `Σ_t mask_t · x[c, t] / count` → `[C, 1, 1]` (`inv_count` = 1 / count, `[1, 1, 1]`).
fn masked_mean(b: &mut NetworkBuilder, name: &str, x: &str, mask: &str, inv_count: &str) -> String {
    let masked = b.multiply(
        &format!("{name}.masked"),
        &[x, mask],
        &format!("{name}.masked"),
    );
    let sum = reduce(
        b,
        &format!("{name}.sum"),
        &masked,
        &format!("{name}.sum"),
        ReduceOperation::Sum,
        ReduceAxis::W,
    );
    b.multiply(name, &[&sum, inv_count], name)
}

/// `sqrt(Σ_t mask_t · c[c, t]² / count)` of centered values `c` → `[C, 1, 1]`.
fn masked_std(
    b: &mut NetworkBuilder,
    name: &str,
    centered: &str,
    mask: &str,
    inv_count: &str,
) -> String {
    let sq = b.multiply(
        &format!("{name}.sq"),
        &[centered, centered],
        &format!("{name}.sq"),
    );
    let var = masked_mean(b, &format!("{name}.var"), &sq, mask, inv_count);
    let params = coreml_proto::proto::UnaryFunctionLayerParams {
        r#type: coreml_proto::proto::unary_function_layer_params::Operation::Sqrt as i32,
        alpha: 0.0,
        epsilon: 0.0,
        shift: 0.0,
        scale: 1.0,
    };
    b.push(name, &[&var], name, Layer::Unary(params))
}

/// `alpha · x + beta` (a linear activation) named `name`.
fn linear(b: &mut NetworkBuilder, name: &str, input: &str, alpha: f32, beta: f32) -> String {
    b.activation(name, input, name, Activation::Linear { alpha, beta })
}

/// `[start, end)` of the width (time) axis.
fn slice(b: &mut NetworkBuilder, name: &str, input: &str, start: usize, end: usize) -> String {
    let params = SliceLayerParams {
        start_index: start as i64,
        end_index: end as i64,
        stride: 1,
        axis: SliceAxis::WidthAxis as i32,
    };
    b.push(name, &[input], name, Layer::Slice(params))
}
