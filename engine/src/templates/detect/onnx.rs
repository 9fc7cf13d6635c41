//! The object detector as one ONNX graph: input `image` float32 `[1, 3, S, S]`, RGB pixel values
//! 0–255 of the whole photo resized to the model's size (aspect ratio not kept, as Lathe
//! resizes); in the graph the backbone's normalization, MobileNetV2 up to its two taps
//! (`export/onnx/backbone.rs`), the head (`nets::detect_head`: the stride-32 map upsampled ×2
//! nearest and concatenated, three convolutions with ReLU, the heatmap and box convolutions),
//! then the engine's decoding exactly:
//!
//! - class probabilities `Sigmoid(heatmap)`; a cell is a candidate of a class where its
//!   probability is at least `confidence_threshold` and no 3×3 neighbour is higher
//!   (`MaxPool` 3×3 stride 1 equal to the value: exact);
//! - boxes `((col + dx) / W, (row + dy) / H, e^clamp(tw, ±6) / W, e^clamp(th, ±6) / H)`
//!   (centre and size relative to the image), as corners;
//! - the candidates beyond the best `4 · max_detections` dropped (the engine's cap before NMS),
//!   `NonMaxSuppression` per class with the model's IoU threshold, then the best
//!   `max_detections` by score; boxes clipped to the image, and those left with no area in it
//!   dropped, as the engine does.
//!
//! Outputs, best first: `boxes` float32 `[K, 4]` (x1, y1, x2, y2 relative to the image, 0–1),
//! `scores` float32 `[K]`, `labels` string `[K]`, `label_ids` int64 `[K]`.

use crate::data::image_decode::Preprocessing;
use crate::error::{Error, Result};
use crate::export::coreml::backbone::values;
use crate::export::onnx::backbone::{Map, tapped_maps};
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::nets::detect_head::{DecodeConfig, TAPS};
use crate::templates::detect::model::{Detector, DetectorModel};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the image input.
pub const INPUT: &str = "image";

fn i64s(g: &mut Graph, name: &str, v: &[i64]) -> String {
    g.ints(name, &[v.len() as i64], v)
}

fn slice(g: &mut Graph, x: &str, axis: i64, start: i64, end: i64) -> String {
    let s = i64s(g, "slice.start", &[start]);
    let e = i64s(g, "slice.end", &[end]);
    let a = i64s(g, "slice.axis", &[axis]);
    g.node("Slice", &[x, &s, &e, &a], vec![])
}

fn reshape(g: &mut Graph, x: &str, shape: &[i64]) -> String {
    let s = i64s(g, "shape", shape);
    g.node("Reshape", &[x, &s], vec![])
}

/// Exports the object detector in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = DetectorModel::load(model_dir, &Device::Cpu)?;
    let det = &model.detector;
    let pre = &det.backbone.preprocessing;
    let labels = det.labels.clone();
    let classes = labels.len() as i64;
    let (h, w) = (pre.height as usize, pre.width as usize);
    let mut g = Graph::new();
    let normalized = normalized_input(&mut g, pre, h, w);
    let maps = tapped_maps(
        &mut g,
        &det.backbone,
        &Map {
            name: normalized,
            channels: 3,
            height: h,
            width: w,
        },
        &TAPS,
    )?;
    let (Some(s16), Some(s32)) = (maps.first(), maps.get(1)) else {
        return Err(Error::Unsupported(
            "ONNX export: the backbone gave no feature maps (a bug)".into(),
        ));
    };
    let grid = (s16.height, s16.width);
    let (heat, boxes) = head(&mut g, det, s16, s32, model_dir)?;
    let cfg = det.decode;
    let candidates = candidates(&mut g, &heat, classes, grid, &cfg);
    let corners = corners(&mut g, &boxes, grid);
    select(&mut g, &candidates, &corners, grid, &cfg, &labels);
    declare_outputs(&mut g);

    let description = format!(
        "Object detector ({} + CenterNet-style head) for {} labels, trained with Lathe.",
        det.backbone.id,
        labels.len()
    );
    let props = meta::props(
        model_dir,
        "object-detection",
        &labels,
        description.clone(),
        options,
        metadata(det, h, w),
    )?;
    onnx::write(out, &g.finish("lathe_object_detector", &description, props))
}

/// The `image` input, divided by 255 and normalized with the backbone's mean and deviation;
/// returns the normalized tensor.
fn normalized_input(g: &mut Graph, pre: &Preprocessing, h: usize, w: usize) -> String {
    g.input(
        INPUT,
        data_type::FLOAT,
        &[
            Dim::Fixed(1),
            Dim::Fixed(3),
            Dim::Fixed(h as i64),
            Dim::Fixed(w as i64),
        ],
        "RGB pixel values 0-255, channels first, the whole photo resized to the model's size",
    );
    let k255 = g.floats("pixel.max", &[], &[255.0]);
    let mean = g.floats("normalize.mean", &[1, 3, 1, 1], &pre.mean);
    let std = g.floats("normalize.std", &[1, 3, 1, 1], &pre.std);
    let t = g.node("Div", &[INPUT, &k255], vec![]);
    let t = g.node("Sub", &[&t, &mean], vec![]);
    g.node("Div", &[&t, &std], vec![])
}

/// The head over the backbone's two maps: the stride-32 map upsampled (nearest) to the
/// stride-16 grid, concatenated, three convolutions with ReLU; returns the heatmap and the
/// box maps.
fn head(
    g: &mut Graph,
    det: &Detector,
    s16: &Map,
    s32: &Map,
    model_dir: &Path,
) -> Result<(String, String)> {
    let (gh, gw) = (s16.height, s16.width);
    let sizes = i64s(
        g,
        "resize.sizes",
        &[1, s32.channels as i64, gh as i64, gw as i64],
    );
    let up = g.node(
        "Resize",
        &[&s32.name, "", "", &sizes],
        vec![
            graph::string("mode", "nearest"),
            graph::string("coordinate_transformation_mode", "asymmetric"),
            graph::string("nearest_mode", "floor"),
        ],
    );
    let mut y = g.node("Concat", &[&s16.name, &up], vec![graph::int("axis", 1)]);
    let tensors: BTreeMap<String, candle_core::Tensor> =
        det.head.state_dict().into_iter().collect();
    let conv = |g: &mut Graph, name: &str, x: &str| -> Result<String> {
        let wt = tensors
            .get(&format!("{name}.weight"))
            .ok_or_else(|| Error::model(format!("missing tensor `{name}.weight`"), model_dir))?;
        let b = tensors
            .get(&format!("{name}.bias"))
            .ok_or_else(|| Error::model(format!("missing tensor `{name}.bias`"), model_dir))?;
        let (o, i, kh, kw) = wt.dims4()?;
        let wn = g.floats(
            &format!("{name}.weight"),
            &[o as i64, i as i64, kh as i64, kw as i64],
            &values(wt)?,
        );
        let bn = g.floats(&format!("{name}.bias"), &[o as i64], &values(b)?);
        let p = ((kh - 1) / 2) as i64;
        Ok(g.node(
            "Conv",
            &[x, &wn, &bn],
            vec![
                graph::ints("kernel_shape", vec![kh as i64, kw as i64]),
                graph::ints("pads", vec![p, p, p, p]),
            ],
        ))
    };
    for name in ["head.reduce", "head.conv1", "head.conv2"] {
        y = conv(g, name, &y)?;
        y = g.node("Relu", &[&y], vec![]);
    }
    let heat = conv(g, "head.heatmap", &y)?;
    let boxes = conv(g, "head.box", &y)?;
    Ok((heat, boxes))
}

/// The candidates' scores, per class and cell.
struct Candidates {
    /// `[classes · cells]`: a cell's probability where it is a peak at or above the threshold
    /// and among the best `4 · max_detections`, else 0.
    flat: String,
    /// The same as `[1, classes, cells]`, for NMS.
    scores: String,
    /// The constant 0.
    zero: String,
}

/// Class probabilities where a cell is a peak at or above the threshold, else 0; only the best
/// `4 · max_detections` kept (the engine's cap before NMS).
fn candidates(
    g: &mut Graph,
    heat: &str,
    classes: i64,
    (gh, gw): (usize, usize),
    cfg: &DecodeConfig,
) -> Candidates {
    let prob = g.node("Sigmoid", &[heat], vec![]);
    let pooled = g.node(
        "MaxPool",
        &[&prob],
        vec![
            graph::ints("kernel_shape", vec![3, 3]),
            graph::ints("strides", vec![1, 1]),
            graph::ints("pads", vec![1, 1, 1, 1]),
        ],
    );
    let peak = g.node("Equal", &[&pooled, &prob], vec![]);
    let thr = g.floats("confidence_threshold", &[], &[cfg.confidence_threshold]);
    let above = g.node("Less", &[&prob, &thr], vec![]);
    let above = g.node("Not", &[&above], vec![]);
    let keep = g.node("And", &[&peak, &above], vec![]);
    let zero = g.floats("zero", &[], &[0.0]);
    let cand = g.node("Where", &[&keep, &prob, &zero], vec![]);
    let cells = (gh * gw) as i64;
    let flat = reshape(g, &cand, &[classes * cells]);
    // The engine keeps the best 4 · max_detections candidates before NMS.
    let cap = (4 * cfg.max_detections.max(1) as i64).min(classes * cells);
    let k = i64s(g, "cap", &[cap]);
    let top = g.fresh("topk.values");
    let top_idx = g.fresh("topk.indices");
    g.node_multi(
        "TopK",
        &[&flat, &k],
        &[&top, &top_idx],
        vec![graph::int("axis", 0)],
    );
    let kth = slice(g, &top, 0, cap - 1, cap);
    let in_cap = g.node("Less", &[&flat, &kth], vec![]);
    let flat = g.node("Where", &[&in_cap, &zero, &flat], vec![]);
    let scores = reshape(g, &flat, &[1, classes, cells]);
    Candidates { flat, scores, zero }
}

/// Every cell's box as corners relative to the image.
struct Corners {
    /// `[cells, 4]`: x1, y1, x2, y2 clipped to the image (what the model gives out).
    xyxy: String,
    /// `[1, cells, 4]`: y1, x1, y2, x2 unclipped (what NMS compares).
    nms: String,
}

/// Boxes `((col + dx) / W, (row + dy) / H, e^clamp(tw, ±6) / W, e^clamp(th, ±6) / H)` as
/// corners.
fn corners(g: &mut Graph, boxes: &str, (gh, gw): (usize, usize)) -> Corners {
    let cells = (gh * gw) as i64;
    let b = reshape(g, boxes, &[4, cells]);
    let cols: Vec<f32> = (0..gh).flat_map(|_| (0..gw).map(|x| x as f32)).collect();
    let rows: Vec<f32> = (0..gh)
        .flat_map(|y| (0..gw).map(move |_| y as f32))
        .collect();
    let cols = g.floats("grid.cols", &[1, cells], &cols);
    let rows = g.floats("grid.rows", &[1, cells], &rows);
    let gw_c = g.floats("grid.width", &[], &[gw as f32]);
    let gh_c = g.floats("grid.height", &[], &[gh as f32]);
    let dx = slice(g, &b, 0, 0, 1);
    let dy = slice(g, &b, 0, 1, 2);
    let tw = slice(g, &b, 0, 2, 3);
    let th = slice(g, &b, 0, 3, 4);
    let cx = g.node("Add", &[&cols, &dx], vec![]);
    let cx = g.node("Div", &[&cx, &gw_c], vec![]);
    let cy = g.node("Add", &[&rows, &dy], vec![]);
    let cy = g.node("Div", &[&cy, &gh_c], vec![]);
    let lo = g.floats("box.min_log", &[], &[-6.0]);
    let hi = g.floats("box.max_log", &[], &[6.0]);
    let bw = g.node("Clip", &[&tw, &lo, &hi], vec![]);
    let bw = g.node("Exp", &[&bw], vec![]);
    let bw = g.node("Div", &[&bw, &gw_c], vec![]);
    let bh = g.node("Clip", &[&th, &lo, &hi], vec![]);
    let bh = g.node("Exp", &[&bh], vec![]);
    let bh = g.node("Div", &[&bh, &gh_c], vec![]);
    let half = g.floats("half", &[], &[0.5]);
    let hw = g.node("Mul", &[&bw, &half], vec![]);
    let hh = g.node("Mul", &[&bh, &half], vec![]);
    let x1 = g.node("Sub", &[&cx, &hw], vec![]);
    let y1 = g.node("Sub", &[&cy, &hh], vec![]);
    let x2 = g.node("Add", &[&cx, &hw], vec![]);
    let y2 = g.node("Add", &[&cy, &hh], vec![]);
    // [4, cells] → [cells, 4]; the boxes given out are clipped to the image, as the engine
    // clips them after NMS.
    let zero_c = g.floats("clip.min", &[], &[0.0]);
    let one_c = g.floats("clip.max", &[], &[1.0]);
    let clipped: Vec<String> = [&x1, &y1, &x2, &y2]
        .iter()
        .map(|v| g.node("Clip", &[v.as_str(), &zero_c, &one_c], vec![]))
        .collect();
    let xyxy = g.node(
        "Concat",
        &[&clipped[0], &clipped[1], &clipped[2], &clipped[3]],
        vec![graph::int("axis", 0)],
    );
    let xyxy = g.node("Transpose", &[&xyxy], vec![graph::ints("perm", vec![1, 0])]);
    let yxyx = g.node("Concat", &[&y1, &x1, &y2, &x2], vec![graph::int("axis", 0)]);
    let yxyx = g.node("Transpose", &[&yxyx], vec![graph::ints("perm", vec![1, 0])]);
    let nms = reshape(g, &yxyx, &[1, cells, 4]);
    Corners { xyxy, nms }
}

/// Per-class NMS over every candidate (score > 0), then the best `max_detections`; boxes with no
/// area inside the image dropped. Writes the `scores`, `boxes`, `label_ids` and `labels` outputs.
fn select(
    g: &mut Graph,
    candidates: &Candidates,
    corners: &Corners,
    (gh, gw): (usize, usize),
    cfg: &DecodeConfig,
    labels: &[String],
) {
    let Candidates { flat, scores, zero } = candidates;
    let Corners { xyxy, nms } = corners;
    let cells = (gh * gw) as i64;
    let max_out = i64s(g, "nms.max_per_class", &[cells]);
    let iou = g.floats("nms.iou_threshold", &[1], &[cfg.iou_threshold]);
    let min_score = g.floats("nms.score_threshold", &[1], &[0.0]);
    let selected = g.node(
        "NonMaxSuppression",
        &[nms, scores, &max_out, &iou, &min_score],
        vec![graph::int("center_point_box", 0)],
    );
    let class = slice(g, &selected, 1, 1, 2);
    let class = reshape(g, &class, &[-1]);
    let cell = slice(g, &selected, 1, 2, 3);
    let cell = reshape(g, &cell, &[-1]);
    let cells_c = g.ints("cells", &[], &[cells]);
    let flat_index = g.node("Mul", &[&class, &cells_c], vec![]);
    let flat_index = g.node("Add", &[&flat_index, &cell], vec![]);
    let picked = g.node("Gather", &[flat, &flat_index], vec![graph::int("axis", 0)]);
    let count = g.node("Shape", &[&picked], vec![]);
    let most = i64s(g, "max_detections", &[cfg.max_detections.max(1) as i64]);
    let kept = g.node("Min", &[&count, &most], vec![]);
    let best_scores = g.fresh("best.values");
    let best = g.fresh("best.indices");
    g.node_multi(
        "TopK",
        &[&picked, &kept],
        &[&best_scores, &best],
        vec![graph::int("axis", 0)],
    );
    let class = g.node("Gather", &[&class, &best], vec![graph::int("axis", 0)]);
    let cell = g.node("Gather", &[&cell, &best], vec![graph::int("axis", 0)]);
    let chosen = g.node("Gather", &[xyxy, &cell], vec![graph::int("axis", 0)]);
    // Boxes left with no area inside the image are dropped, as the engine drops them.
    let cx1 = slice(g, &chosen, 1, 0, 1);
    let cy1 = slice(g, &chosen, 1, 1, 2);
    let cx2 = slice(g, &chosen, 1, 2, 3);
    let cy2 = slice(g, &chosen, 1, 3, 4);
    let bw = g.node("Sub", &[&cx2, &cx1], vec![]);
    let bh = g.node("Sub", &[&cy2, &cy1], vec![]);
    let area = g.node("Mul", &[&bw, &bh], vec![]);
    let area = reshape(g, &area, &[-1]);
    let visible = g.node("Greater", &[&area, zero], vec![]);
    let compress = |g: &mut Graph, x: &str, out: &str| {
        g.node_to("Compress", &[x, &visible], out, vec![graph::int("axis", 0)])
    };
    compress(g, &best_scores, "scores");
    compress(g, &chosen, "boxes");
    let class = compress(g, &class, "label_ids");
    let names = g.strings("labels", labels);
    g.node_to(
        "Gather",
        &[&names, &class],
        "labels",
        vec![graph::int("axis", 0)],
    );
}

/// Declares the four outputs, best first.
fn declare_outputs(g: &mut Graph) {
    g.output(
        "boxes",
        data_type::FLOAT,
        &[Dim::Named("K"), Dim::Fixed(4)],
        "x1, y1, x2, y2 of each box relative to the image (0-1), best first",
    );
    g.output(
        "scores",
        data_type::FLOAT,
        &[Dim::Named("K")],
        "the confidence of each box",
    );
    g.output(
        "labels",
        data_type::STRING,
        &[Dim::Named("K")],
        "the label of each box",
    );
    g.output(
        "label_ids",
        data_type::INT64,
        &[Dim::Named("K")],
        "the position of each box's label in `labels`",
    );
}

/// The model's metadata beside the labels: backbone, preprocessing, decoding settings, outputs.
fn metadata(det: &Detector, h: usize, w: usize) -> BTreeMap<String, String> {
    let pre = &det.backbone.preprocessing;
    let cfg = det.decode;
    let mut extra = BTreeMap::new();
    extra.insert("backbone".to_string(), det.backbone.id.clone());
    extra.insert(
        "preprocessing".into(),
        format!(
            "input `image` float32 [1, 3, {h}, {w}]: RGB pixel values 0-255 of the whole photo resized to {w}x{h} (aspect ratio not kept); the graph divides by 255, subtracts mean {:?} and divides by std {:?}",
            pre.mean, pre.std
        ),
    );
    extra.insert(
        "confidence_threshold".into(),
        cfg.confidence_threshold.to_string(),
    );
    extra.insert("iou_threshold".into(), cfg.iou_threshold.to_string());
    extra.insert("max_detections".into(), cfg.max_detections.to_string());
    extra.insert(
        "outputs".into(),
        "boxes [K, 4] x1, y1, x2, y2 relative to the image (0-1); scores [K]; labels [K]; label_ids [K]; best first".into(),
    );
    extra
}
