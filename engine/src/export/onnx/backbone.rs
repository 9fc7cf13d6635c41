//! Writes an engine backbone (MobileNetV2, EfficientNet-Lite0) into an ONNX graph, layer for
//! layer as inference runs it: each convolution with its batch norm folded in (`Conv`, `group`
//! = channels for depthwise), ReLU6 as `Clip(0, 6)`, the padding the engine applies (symmetric,
//! or TensorFlow "same" as explicit `pads`), residual `Add`s, then `GlobalAveragePool` and
//! `Flatten`. Initializers are named after the PyTorch parameter prefixes
//! (`features.3.conv.1.0.weight`).

use crate::error::Result;
use crate::export::coreml::backbone::values;
use crate::export::onnx::graph::{self, Graph};
use crate::nets::backbone::Backbone;
use crate::nets::conv_bn::{ConvBn, ConvKind};

/// A value and its `[C, H, W]` shape (the batch is `N`).
#[derive(Clone, Debug)]
pub struct Map {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// One convolution + folded batch norm (+ ReLU6).
pub fn conv_bn(g: &mut Graph, layer: &ConvBn, x: &Map) -> Result<Map> {
    let (weight, bias) = layer.folded();
    let (out_ch, in_per_group, kh, kw) = weight.dims4()?;
    let groups = match layer.kind {
        ConvKind::Depthwise => out_ch,
        ConvKind::Dense | ConvKind::Pointwise => 1,
    };
    let ((top, bottom), (left, right)) = layer.padding_amounts(x.height, x.width);
    let height = (x.height + top + bottom).saturating_sub(kh) / layer.stride + 1;
    let width = (x.width + left + right).saturating_sub(kw) / layer.stride + 1;
    let name = layer.conv_name.as_str();
    let w = g.floats(
        &format!("{name}.weight"),
        &[out_ch as i64, in_per_group as i64, kh as i64, kw as i64],
        &values(weight)?,
    );
    let b = g.floats(&format!("{name}.bias"), &[out_ch as i64], &values(bias)?);
    let stride = layer.stride as i64;
    let mut y = g.node(
        "Conv",
        &[&x.name, &w, &b],
        vec![
            graph::int("group", groups as i64),
            graph::ints("kernel_shape", vec![kh as i64, kw as i64]),
            graph::ints("strides", vec![stride, stride]),
            graph::ints(
                "pads",
                vec![top as i64, left as i64, bottom as i64, right as i64],
            ),
        ],
    );
    if layer.relu6 {
        let lo = g.floats("relu6.min", &[], &[0.0]);
        let hi = g.floats("relu6.max", &[], &[6.0]);
        y = g.node("Clip", &[&y, &lo, &hi], vec![]);
    }
    Ok(Map {
        name: y,
        channels: out_ch,
        height,
        width,
    })
}

/// Every block of `backbone` on `x` (a normalized `[N, 3, H, W]` image); returns the pooled
/// features `[N, C]`.
pub fn pooled_features(g: &mut Graph, backbone: &Backbone, x: &Map) -> Result<Map> {
    let mut x = x.clone();
    for (layers, residual) in backbone.blocks() {
        let mut y = x.clone();
        for layer in layers {
            y = conv_bn(g, layer, &y)?;
        }
        if residual {
            y.name = g.node("Add", &[&y.name, &x.name], vec![]);
        }
        x = y;
    }
    let pooled = g.node("GlobalAveragePool", &[&x.name], vec![]);
    let flat = g.node("Flatten", &[&pooled], vec![graph::int("axis", 1)]);
    Ok(Map {
        name: flat,
        channels: x.channels,
        height: 1,
        width: 1,
    })
}

/// The outputs of blocks `taps` of `backbone` on `x` (a normalized `[N, 3, H, W]` image), in
/// order: the feature maps a detection head reads.
pub fn tapped_maps(
    g: &mut Graph,
    backbone: &Backbone,
    x: &Map,
    taps: &[usize],
) -> Result<Vec<Map>> {
    let last = taps.iter().copied().max().unwrap_or(0);
    let mut x = x.clone();
    let mut out = Vec::with_capacity(taps.len());
    for (i, (layers, residual)) in backbone.blocks().into_iter().enumerate().take(last + 1) {
        let mut y = x.clone();
        for layer in layers {
            y = conv_bn(g, layer, &y)?;
        }
        if residual {
            y.name = g.node("Add", &[&y.name, &x.name], vec![]);
        }
        if taps.contains(&i) {
            out.push(y.clone());
        }
        x = y;
    }
    if out.len() != taps.len() {
        return Err(crate::error::Error::Unsupported(format!(
            "backbone {} has no blocks {taps:?} to feed a detection head",
            backbone.id
        )));
    }
    Ok(out)
}
