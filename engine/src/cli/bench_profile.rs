//! `lathe bench --profile`: where MobileNetV2 feature extraction spends its time. Runs one
//! batch layer by layer, waiting for the device after each layer, and sums the time per kind
//! of layer. On CUDA it times the fused channels-last steps extraction runs
//! (`nets::mobilenet_nhwc`); elsewhere each layer, with the 1×1 layers split into matrix product
//! and bias/ReLU6 epilogue. Waiting after every step removes the overlap of launches, so the
//! total is a little above the pipelined time; the shares are what matter.

use crate::nets::backbone::Backbone;
use crate::nets::conv_bn::ConvKind;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::json;
use std::time::Instant;

/// Seconds of `f`, with the device idle before and after.
fn timed(
    device: &Device,
    f: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<(Tensor, f64)> {
    device.synchronize()?;
    let t = Instant::now();
    let y = f()?;
    device.synchronize()?;
    Ok((y, t.elapsed().as_secs_f64()))
}

/// Per-kind totals of one timed pass (`label → seconds`, in first-seen order).
#[derive(Default)]
struct Totals(Vec<(&'static str, f64, usize)>);

impl Totals {
    fn add(&mut self, label: &'static str, secs: f64) {
        match self.0.iter_mut().find(|(l, _, _)| *l == label) {
            Some(e) => {
                e.1 += secs;
                e.2 += 1;
            }
            None => self.0.push((label, secs, 1)),
        }
    }
}

/// Whether the frozen network runs channels-last on `device`.
fn channels_last(device: &Device) -> bool {
    cfg!(feature = "cuda") && device.is_cuda()
}

fn pass(net: &Backbone, x: &Tensor, device: &Device) -> Result<Totals> {
    let mobilenet = net
        .mobilenet_v2()
        .context("--profile supports the mobilenet_v2 backbone only")?;
    let mut totals = Totals::default();
    // On CUDA the frozen network runs channels-last, fused: time the very steps extraction runs.
    #[cfg(feature = "cuda")]
    if channels_last(device) {
        mobilenet.forward_cuda_steps(x, false, &mut |label, f| {
            let (y, secs) = timed(device, f)?;
            totals.add(label, secs);
            Ok(y)
        })?;
        return Ok(totals);
    }
    let (mut y, secs) = timed(device, || x.to_dtype(net.dtype))?;
    totals.add("input cast", secs);
    for (layers, residual) in mobilenet.blocks() {
        let input = y.clone();
        for layer in layers {
            let (w, _) = layer.folded();
            y = match layer.kind {
                ConvKind::Dense => {
                    let (out, s) = timed(device, || layer.forward(&y, false))?;
                    totals.add("3×3 stem convolution", s);
                    out
                }
                ConvKind::Depthwise => {
                    let (out, s) = timed(device, || layer.forward(&y, false))?;
                    totals.add("3×3 depthwise (+bias, ReLU6)", s);
                    out
                }
                ConvKind::Pointwise => {
                    // The matrix product alone, then the whole layer: the difference is the
                    // bias + activation epilogue.
                    let cout = w.dim(0)?;
                    let y = y.to_dtype(w.dtype())?;
                    let (_, gemm) = timed(device, || {
                        let (n, c, h, wd) = y.dims4()?;
                        w.reshape((cout, c))?
                            .broadcast_matmul(&y.reshape((n, c, h * wd))?)
                    })?;
                    let (out, whole) = timed(device, || layer.forward(&y, false))?;
                    let label = if layer.relu6 {
                        "1×1 expand: matrix product"
                    } else {
                        "1×1 project: matrix product"
                    };
                    totals.add(label, gemm);
                    totals.add("1×1 bias (+ReLU6) epilogue", (whole - gemm).max(0.0));
                    out
                }
            };
        }
        if residual {
            let (out, s) = timed(device, || &y + &input)?;
            totals.add("residual add", s);
            y = out;
        }
    }
    let (_, s) = timed(device, || {
        crate::nets::conv_bn::global_avg_pool(&y)?.to_dtype(DType::F32)
    })?;
    totals.add("global average pool", s);
    Ok(totals)
}

/// Profiles one batch of `batch` random images in the backbone's current precision (after a
/// warm-up pass). JSON: total milliseconds and, per kind of layer, milliseconds, share and count.
pub fn profile(
    net: &Backbone,
    device: &Device,
    batch: usize,
    size: usize,
) -> Result<serde_json::Value> {
    let x = Tensor::randn(0f32, 1.0, (batch, 3, size, size), device)?;
    pass(net, &x, device)?;
    let totals = pass(net, &x, device)?;
    let total: f64 = totals.0.iter().map(|(_, s, _)| s).sum();
    let layout = if channels_last(device) {
        "NHWC"
    } else {
        "NCHW"
    };
    let kinds: Vec<_> = totals
        .0
        .iter()
        .map(|(label, s, n)| {
            json!({ "kind": label, "ms": s * 1e3, "share": s / total.max(1e-12), "count": n })
        })
        .collect();
    Ok(
        json!({ "batch": batch, "dtype": net.dtype.as_str(), "layout": layout, "total_ms": total * 1e3,
        "images_per_sec_synchronized": batch as f64 / total.max(1e-12), "by_kind": kinds }),
    )
}

/// Human form of [`profile`]'s JSON.
pub fn print(p: &serde_json::Value) {
    println!(
        "  profile of one batch ({}, layer by layer, synchronized): {:.1} ms",
        p["dtype"].as_str().unwrap_or(""),
        p["total_ms"].as_f64().unwrap_or(0.0)
    );
    for k in p["by_kind"].as_array().into_iter().flatten() {
        println!(
            "    {:<34} {:8.2} ms {:5.1} % ({} layers)",
            k["kind"].as_str().unwrap_or(""),
            k["ms"].as_f64().unwrap_or(0.0),
            100.0 * k["share"].as_f64().unwrap_or(0.0),
            k["count"]
        );
    }
}
