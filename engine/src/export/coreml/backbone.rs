//! Writes an engine backbone (MobileNetV2, EfficientNet-Lite0) into a Core ML network, layer
//! for layer as inference runs it: each convolution with its batch norm folded in, ReLU6, the
//! padding the engine applies (symmetric, or TensorFlow "same"), residual adds, and global
//! average pooling. Layer names are the PyTorch parameter prefixes (`features.3.conv.1.0`).

use crate::error::Result;
use crate::export::coreml::builder::{Activation, Conv2d, GlobalPool, NetworkBuilder};
use crate::nets::backbone::Backbone;
use crate::nets::conv_bn::{ConvBn, ConvKind};
use candle_core::{DType, Tensor};

/// A blob and its `[C, H, W]` shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureMap {
    pub blob: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// A tensor's values as f32, row-major.
pub fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// One convolution + folded batch norm (+ ReLU6).
pub fn conv_bn(b: &mut NetworkBuilder, layer: &ConvBn, input: &FeatureMap) -> Result<FeatureMap> {
    let (weight, bias) = layer.folded();
    let (out_ch, in_per_group, kh, kw) = weight.dims4()?;
    let groups = match layer.kind {
        ConvKind::Depthwise => out_ch,
        ConvKind::Dense | ConvKind::Pointwise => 1,
    };
    let padding = layer.padding_amounts(input.height, input.width);
    let ((top, bottom), (left, right)) = padding;
    let height = (input.height + top + bottom).saturating_sub(kh) / layer.stride + 1;
    let width = (input.width + left + right).saturating_sub(kw) / layer.stride + 1;
    let weight = values(weight)?;
    let bias = values(bias)?;
    let conv = Conv2d {
        weight: &weight,
        shape: [out_ch, in_per_group, kh, kw],
        bias: Some(&bias),
        stride: layer.stride,
        groups,
        padding,
    };
    let name = layer.conv_name.as_str();
    let mut blob = b.conv(name, &input.blob, name, &conv)?;
    if layer.relu6 {
        let act = format!("{name}.relu6");
        blob = b.activation(&act, &blob, &act, Activation::Relu6);
    }
    Ok(FeatureMap {
        blob,
        channels: out_ch,
        height,
        width,
    })
}

/// Every block of `backbone` on `input` (a normalized `[3, H, W]` image); returns the last
/// feature map (before pooling).
pub fn feature_map(
    b: &mut NetworkBuilder,
    backbone: &Backbone,
    input: &FeatureMap,
) -> Result<FeatureMap> {
    let mut x = input.clone();
    for (layers, residual) in backbone.blocks() {
        let mut y = x.clone();
        for layer in layers {
            y = conv_bn(b, layer, &y)?;
        }
        if residual {
            let name = format!("{}.residual", y.blob);
            y.blob = b.add(&name, &[&y.blob, &x.blob], &name);
        }
        x = y;
    }
    Ok(x)
}

/// The outputs of blocks `taps` (indices of `features.N`), for dense heads such as the
/// detector's; blocks after the last tap are not written.
pub fn tapped_maps(
    b: &mut NetworkBuilder,
    backbone: &Backbone,
    input: &FeatureMap,
    taps: &[usize],
) -> Result<Vec<FeatureMap>> {
    let last = taps.iter().copied().max().unwrap_or(0);
    let mut x = input.clone();
    let mut out = Vec::with_capacity(taps.len());
    for (i, (layers, residual)) in backbone.blocks().into_iter().enumerate().take(last + 1) {
        let mut y = x.clone();
        for layer in layers {
            y = conv_bn(b, layer, &y)?;
        }
        if residual {
            let name = format!("{}.residual", y.blob);
            y.blob = b.add(&name, &[&y.blob, &x.blob], &name);
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

/// The backbone's pooled features `[feature_dim, 1, 1]` (blob `features`).
pub fn pooled_features(
    b: &mut NetworkBuilder,
    backbone: &Backbone,
    input: &FeatureMap,
) -> Result<FeatureMap> {
    let map = feature_map(b, backbone, input)?;
    let blob = b.global_pool("features", &map.blob, "features", GlobalPool::Average);
    Ok(FeatureMap {
        blob,
        channels: map.channels,
        height: 1,
        width: 1,
    })
}
