//! The transfer sound classifier (CREPE-tiny embeddings + head, `templates::sound::transfer`) as
//! standard layers over one window of raw samples, computing what `window_features` computes:
//!
//! - frames of 1024 samples every 640: the window (zero-padded or cut to `R × 640` samples,
//!   `R = frames + 1`) becomes rows of 640 (`reshape`), moved to channels (`permute`); each
//!   frame is its row followed by the first 384 samples of the next one (`slice`, `concat`), so
//!   the blob is `[1024 samples, frames, 1]`;
//! - per-frame normalization: minus the mean over samples (`reduce`, `add` with broadcasting),
//!   times `1 / (sqrt(mean of squares) + 1e-8)` (`POWER`, `reduce`, `SQRT`, `INVERSE`, `multiply`);
//! - frames become rows of one image `[1, frames, 1024]`, and CREPE's five layers run along the
//!   rows (1 × k kernels): zero padding, convolution (stride 4, then 1), ReLU, batch norm as a
//!   scale layer, 1 × 2 max pooling → `[32, frames, 8]`;
//! - mean and standard deviation over frames (two passes, `sqrt(E[(x − mean)²])`, as the
//!   engine), flattened in the engine's order (mean block, then std; channel-major), the head,
//!   softmax.

use crate::error::{Error, Result};
use crate::export::coreml::builder::{Activation, NetworkBuilder};
use crate::nets::crepe::FRAME;
use crate::nets::head::{Head, HeadKind};
use crate::templates::sound::coreml::{
    INPUT, PROBABILITY_OUTPUT, Weights, flatten, permute, reduce, reshape, unary,
};
use crate::templates::sound::transfer::FRAME_HOP;
use coreml_proto::proto::{
    ConvolutionLayerParams, PoolingLayerParams, SliceLayerParams, ValidPadding,
    convolution_layer_params::ConvolutionPaddingType, neural_network_layer::Layer,
    pooling_layer_params, reduce_layer_params::ReduceAxis, reduce_layer_params::ReduceOperation,
    slice_layer_params::SliceAxis, unary_function_layer_params::Operation,
};

/// CREPE's batch-norm epsilon (`nets::crepe`).
const BN_EPS: f32 = 1e-3;
/// Added to each frame's standard deviation before dividing (`nets::crepe`).
const STD_EPS: f32 = 1e-8;
/// Layers of CREPE that make the embedding: (kernel stride, padding left / right).
const LAYERS: [(usize, (usize, usize)); 5] = [
    (4, (254, 254)),
    (1, (31, 32)),
    (1, (31, 32)),
    (1, (31, 32)),
    (1, (31, 32)),
];

/// Frames the engine cuts from a window of `window` samples.
pub fn frames(window: usize) -> usize {
    if window >= FRAME {
        (window - FRAME) / FRAME_HOP + 1
    } else {
        1
    }
}

/// The CREPE encoder, pooling and `head` from `INPUT` (`window` samples) to the softmax.
pub(crate) fn network(
    b: &mut NetworkBuilder,
    window: usize,
    head: &HeadKind,
    w: &Weights,
) -> Result<()> {
    let frames = frames(window);
    let rows = frames + 1;
    let total = rows * FRAME_HOP;
    let mut x = reshape(b, "samples", INPUT, "samples.row", [1, 1, window]);
    if window < total {
        x = b.zero_pad(
            "samples.pad",
            &x,
            "samples.pad",
            ((0, 0), (0, total - window)),
        );
    } else if window > total {
        x = slice(
            b,
            "samples.cut",
            &x,
            "samples.cut",
            SliceAxis::WidthAxis,
            0,
            total,
        );
    }
    // [1, 1, R·640] → [1, R, 640] (rows) → [640, R, 1] (sample offset on channels).
    let x = reshape(b, "frames.rows", &x, "frames.rows", [1, rows, FRAME_HOP]);
    let x = permute(b, "frames.columns", &x, "frames.columns", [0, 3, 2, 1]);
    let head_rows = slice(
        b,
        "frames.head",
        &x,
        "frames.head",
        SliceAxis::HeightAxis,
        0,
        frames,
    );
    let next = slice(
        b,
        "frames.next",
        &x,
        "frames.next",
        SliceAxis::HeightAxis,
        1,
        rows,
    );
    let tail = slice(
        b,
        "frames.tail",
        &next,
        "frames.tail",
        SliceAxis::ChannelAxis,
        0,
        FRAME - FRAME_HOP,
    );
    let x = b.concat("frames", &[&head_rows, &tail], "frames");

    // Per-frame normalization over the 1024 samples (channels).
    let mean = reduce(
        b,
        "frames.mean",
        &x,
        "frames.mean",
        ReduceOperation::Avg,
        ReduceAxis::C,
    );
    let neg = b.activation(
        "frames.neg_mean",
        &mean,
        "frames.neg_mean",
        Activation::Linear {
            alpha: -1.0,
            beta: 0.0,
        },
    );
    let centered = b.add("frames.centered", &[&x, &neg], "frames.centered");
    let sq = unary(
        b,
        "frames.sq",
        &centered,
        "frames.sq",
        Operation::Power,
        2.0,
    );
    let var = reduce(
        b,
        "frames.var",
        &sq,
        "frames.var",
        ReduceOperation::Avg,
        ReduceAxis::C,
    );
    let std = unary(b, "frames.std", &var, "frames.std", Operation::Sqrt, 0.0);
    let inv = inverse(b, "frames.inv_std", &std, "frames.inv_std", STD_EPS);
    let x = b.push(
        "frames.normalized",
        &[&centered, &inv],
        "frames.normalized",
        Layer::Multiply(coreml_proto::proto::MultiplyLayerParams { alpha: 0.0 }),
    );
    // [1024, F, 1] → [1, F, 1024]: one frame per row.
    let mut x = permute(b, "frames.image", &x, "frames.image", [0, 3, 2, 1]);

    let mut width = FRAME;
    let mut channels = 1;
    for (i, (stride, pad)) in LAYERS.iter().enumerate() {
        let n = i + 1;
        let name = format!("encoder.conv{n}");
        let wname = format!("{name}.weight");
        let dims = w.dims(&wname)?;
        let [c_out, c_in, k, 1] = dims[..] else {
            return Err(Error::model(
                format!("`{wname}` is not a (out, in, k, 1) kernel"),
                w.path,
            ));
        };
        if c_in != channels {
            return Err(Error::model(
                format!("`{wname}` has {c_in} input channels, expected {channels}"),
                w.path,
            ));
        }
        let padded = b.zero_pad(
            &format!("{name}.pad"),
            &x,
            &format!("{name}.pad"),
            ((0, 0), *pad),
        );
        let weight = w.values(&wname)?;
        let bias = w.values(&format!("{name}.bias"))?;
        let params = ConvolutionLayerParams {
            output_channels: c_out as u64,
            kernel_channels: c_in as u64,
            n_groups: 1,
            kernel_size: vec![1, k as u64],
            stride: vec![1, *stride as u64],
            dilation_factor: vec![1, 1],
            has_bias: true,
            weights: Some(b.weights(&weight)),
            bias: Some(b.weights(&bias)),
            convolution_padding_type: Some(ConvolutionPaddingType::Valid(ValidPadding {
                padding_amounts: Some(coreml_proto::proto::BorderAmounts {
                    border_amounts: vec![Default::default(), Default::default()],
                }),
            })),
            ..Default::default()
        };
        x = b.push(&name, &[&padded], &name, Layer::Convolution(params));
        x = b.activation(
            &format!("{name}.relu"),
            &x,
            &format!("{name}.relu"),
            Activation::Relu,
        );
        let bn = |s: &str| w.values(&format!("encoder.conv{n}_BN.{s}"));
        let (gamma, beta, rm, rv) = (
            bn("weight")?,
            bn("bias")?,
            bn("running_mean")?,
            bn("running_var")?,
        );
        if [gamma.len(), beta.len(), rm.len(), rv.len()]
            .iter()
            .any(|&l| l != c_out)
        {
            return Err(Error::model(
                format!("`encoder.conv{n}_BN` does not match `{wname}`"),
                w.path,
            ));
        }
        // As the engine folds it, in f32: scale = γ / √(σ² + ε), shift = β − μ · scale.
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&rv)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(&rm)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        x = b.scale(
            &format!("{name}_BN"),
            &x,
            &format!("{name}_BN"),
            &scale,
            Some(&shift),
        )?;
        x = pool_pairs(b, &format!("{name}.pool"), &x, &format!("{name}.pool"));
        let conv_width = (width + pad.0 + pad.1).saturating_sub(k) / stride + 1;
        width = conv_width / 2;
        channels = c_out;
    }
    let embed = channels * width;
    if 2 * embed != crate::templates::sound::transfer::FEATURE_DIM {
        return Err(Error::model(
            format!(
                "the CREPE weights give {embed} values per frame, the head expects {}",
                crate::templates::sound::transfer::FEATURE_DIM / 2
            ),
            w.path,
        ));
    }

    // Mean and std over frames, in two passes as the engine: frames move to channels
    // ([C, F, 8] → [F, C, 8]) so that the mean [1, C, 8] broadcasts over them.
    let x = permute(b, "embed.by_frame", &x, "embed.by_frame", [0, 2, 1, 3]);
    let mean = reduce(
        b,
        "embed.mean",
        &x,
        "embed.mean",
        ReduceOperation::Avg,
        ReduceAxis::C,
    );
    let neg = b.activation(
        "embed.neg_mean",
        &mean,
        "embed.neg_mean",
        Activation::Linear {
            alpha: -1.0,
            beta: 0.0,
        },
    );
    let centered = b.add("embed.centered", &[&x, &neg], "embed.centered");
    let sq = unary(b, "embed.sq", &centered, "embed.sq", Operation::Power, 2.0);
    let var = reduce(
        b,
        "embed.var",
        &sq,
        "embed.var",
        ReduceOperation::Avg,
        ReduceAxis::C,
    );
    let std = unary(b, "embed.std", &var, "embed.std", Operation::Sqrt, 0.0);
    // [2, C, 8] → [2·C·8]: the mean block, then the std block, channel-major.
    let pooled = b.concat("embed.pool", &[&mean, &std], "embed.pool");
    let mut blob = flatten(b, "features", &pooled, "features");

    let names = Head::layer_names(head);
    let last = names.len().saturating_sub(1);
    let mut in_dim = 2 * embed;
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

/// `[start, end)` of one axis.
fn slice(
    b: &mut NetworkBuilder,
    name: &str,
    input: &str,
    output: &str,
    axis: SliceAxis,
    start: usize,
    end: usize,
) -> String {
    let params = SliceLayerParams {
        start_index: start as i64,
        end_index: end as i64,
        stride: 1,
        axis: axis as i32,
    };
    b.push(name, &[input], output, Layer::Slice(params))
}

/// `1 / (x + epsilon)`.
fn inverse(b: &mut NetworkBuilder, name: &str, input: &str, output: &str, epsilon: f32) -> String {
    let params = coreml_proto::proto::UnaryFunctionLayerParams {
        r#type: Operation::Inverse as i32,
        alpha: 0.0,
        epsilon,
        shift: 0.0,
        scale: 1.0,
    };
    b.push(name, &[input], output, Layer::Unary(params))
}

/// Max of every pair along the width (CREPE's `max_pool2d((2, 1))`, floor mode).
fn pool_pairs(b: &mut NetworkBuilder, name: &str, input: &str, output: &str) -> String {
    let params = PoolingLayerParams {
        r#type: pooling_layer_params::PoolingType::Max as i32,
        kernel_size: vec![1, 2],
        stride: vec![1, 2],
        pooling_padding_type: Some(pooling_layer_params::PoolingPaddingType::Valid(
            ValidPadding {
                padding_amounts: Some(coreml_proto::proto::BorderAmounts {
                    border_amounts: vec![Default::default(), Default::default()],
                }),
            },
        )),
        ..Default::default()
    };
    b.push(name, &[input], output, Layer::Pooling(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_engine() {
        // 1 s: starts 0, 640, …, 14720 (the next would end past 16000).
        assert_eq!(frames(16_000), 24);
        assert_eq!(frames(8_000), 11);
        assert_eq!(frames(1_024), 1);
        assert_eq!(frames(500), 1);
    }
}
