//! MobileNetV2's frozen blocks channels-last on CUDA, step by step: the stem (NCHW in, NHWC
//! out); each inverted-residual block as expand product → depthwise (applying the expand's
//! bias and ReLU6 as it loads) → project product → close (project bias and residual add); the
//! last 1×1; the pool. Every step goes through a [`Steps`] callback, so `lathe bench --profile`
//! times the very code that extraction runs.

use super::conv_bn::{ConvBn, ConvKind};
use crate::ops::block_cuda::{Close, Depthwise3};
use candle_core::{DType, Result, Tensor};

/// Runs one named step of the forward (`lathe bench --profile` times it; extraction just calls).
pub type Steps<'a> =
    dyn FnMut(&'static str, &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> + 'a;

/// Step labels, as the profile reports them.
pub const STEM: &str = "3×3 stem convolution (+bias, ReLU6)";
pub const CAST: &str = "casts";
pub const EXPAND: &str = "1×1 expand: matrix product";
pub const DEPTHWISE: &str = "3×3 depthwise (+expand's bias/ReLU6 on load, +bias, ReLU6)";
pub const PROJECT: &str = "1×1 project: matrix product";
pub const CLOSE: &str = "block close (project bias + residual add)";
pub const LAST: &str = "last 1×1 (+bias, ReLU6)";
pub const OTHER: &str = "other layers (unfused)";
pub const POOL: &str = "global average pool";

/// `x [N,H,W,C] · Wᵀ` for a 1×1 layer, without its bias: one matrix product over every pixel.
fn product(w: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (n, h, wd, c) = x.dims4()?;
    let cout = w.dim(0)?;
    x.reshape((n * h * wd, c))?
        .matmul(&w.reshape((cout, c))?.t()?)?
        .reshape((n, h, wd, cout))
}

fn bias_f32(layer: &ConvBn) -> Result<Tensor> {
    layer.folded().1.to_dtype(DType::F32)?.contiguous()
}

/// The (expand, depthwise, project) layers of an inverted-residual block the fused kernels take:
/// `[depthwise, project]` or `[expand, depthwise, project]` with a 3×3 depthwise of stride 1 or
/// 2 over a multiple of 4 channels and symmetric padding. `None` for any other block.
fn fused_parts(layers: &[ConvBn]) -> Option<(Option<&ConvBn>, &ConvBn, &ConvBn)> {
    let (expand, dw, project) = match layers {
        [dw, project] => (None, dw, project),
        [expand, dw, project] => (Some(expand), dw, project),
        _ => return None,
    };
    let (w, _) = dw.folded();
    let dims = w.dims();
    let fits = expand.is_none_or(|e| e.kind == ConvKind::Pointwise && e.relu6 && !e.tf_same)
        && dw.kind == ConvKind::Depthwise
        && !dw.tf_same
        && dims.len() == 4
        && Depthwise3::fits((dims[2], dims[3]), dw.stride, dims[0])
        && project.kind == ConvKind::Pointwise
        && !project.relu6
        && project
            .folded()
            .0
            .dim(0)
            .is_ok_and(|c| c % crate::ops::block_cuda::VEC == 0);
    fits.then_some((expand, dw, project))
}

/// One frozen block channels-last. `x` is the block input (the NCHW image batch for the stem,
/// else the residual stream `[N,H,W,C]`); returns the block output in `stream` dtype — the
/// layers' dtype, so in bf16 each residual add rounds once, as under PyTorch's autocast (the
/// stem and the last layer keep their own f32).
pub fn block(
    index: usize,
    layers: &[ConvBn],
    residual: bool,
    x: &Tensor,
    stream: DType,
    step: &mut Steps<'_>,
) -> Result<Tensor> {
    match layers {
        [stem] if index == 0 => return step(STEM, &mut || stem.forward_nhwc(x)),
        [last] if last.kind == ConvKind::Pointwise => {
            return step(LAST, &mut || last.forward_nhwc(x));
        }
        _ => {}
    }
    let Some((expand, dw, project)) = fused_parts(layers) else {
        let mut z = x.clone();
        for layer in layers {
            z = step(OTHER, &mut || layer.forward_nhwc(&z))?;
        }
        z = step(CAST, &mut || z.to_dtype(stream))?;
        return if residual {
            step(CLOSE, &mut || &z + &x.to_dtype(stream)?)
        } else {
            Ok(z)
        };
    };
    let low = dw.folded().0.dtype();
    let mut z = if x.dtype() == low {
        x.clone()
    } else {
        step(CAST, &mut || x.to_dtype(low))?
    };
    if let Some(e) = expand {
        z = step(EXPAND, &mut || product(e.folded().0, &z))?;
    }
    let own = bias_f32(dw)?;
    let biases = match expand {
        Some(e) => Tensor::stack(&[&own, &bias_f32(e)?], 0)?,
        None => Tensor::stack(&[&own, &own], 0)?,
    };
    // The depthwise kernel runs on f32 taps in every precision (see `block_cuda`).
    let kernel = dw.folded_weight_f32()?.contiguous()?;
    let op = Depthwise3 {
        stride: dw.stride,
        padding: dw.padding,
        pre: expand.is_some(),
        relu6: dw.relu6,
    };
    z = step(DEPTHWISE, &mut || {
        z.contiguous()?.apply_op3(&kernel, &biases, op)
    })?;
    // In bf16/f16 the projection multiplies by the high and low parts of its weight at once
    // (twice the output columns of a small product), and the close adds the halves.
    let split = project.split_weight();
    let p = step(PROJECT, &mut || {
        product(split.unwrap_or(project.folded().0), &z)
    })?;
    let b = bias_f32(project)?;
    let close = Close {
        stream,
        halves: split.is_some(),
    };
    if residual {
        let r = if x.dtype() == stream {
            x.clone()
        } else {
            step(CAST, &mut || x.to_dtype(stream))?
        };
        step(CLOSE, &mut || p.apply_op3(&b, &r.contiguous()?, close))
    } else {
        step(CLOSE, &mut || p.apply_op2(&b, close))
    }
}

/// Pooled features `[N, C]` of the channels-last output `[N,H,W,C]`, in f32.
pub fn pool(y: &Tensor, step: &mut Steps<'_>) -> Result<Tensor> {
    step(POOL, &mut || {
        let (n, h, w, c) = y.dims4()?;
        y.reshape((n, h * w, c))?.mean(1)?.to_dtype(DType::F32)
    })
}
