//! The object detector as a Core ML `Pipeline[NeuralNetwork → NonMaximumSuppression]`
//! (specification 3, iOS 12 / macOS 10.14), the shape Vision recognizes as an object detector
//! (`VNRecognizedObjectObservation`s).
//!
//! The network takes the RGB image at the model's size, normalizes it exactly as the image
//! classifier's export does (scaler `x/255 − mean`, scale `1/std`), runs the backbone up to its
//! two taps and the head, and decodes inside, with standard layers only:
//!
//! - `raw_confidence` `[cells, classes]`: the heatmap's sigmoid where the cell is a peak of its
//!   class (no 3×3 neighbour higher — the engine's peak test), else 0. The peak test is exact:
//!   `d = maxpool3×3(p) − p` is 0 at a peak and at least `p · 2⁻²⁴` elsewhere; seven
//!   `max(4096 · y, −1)` stages (every value stays within ±4096, so fp16 hardware computes them
//!   without overflow) turn it into a mask of exactly 1 or 0 for every `p ≥ 2⁻⁶⁰`.
//! - `raw_coordinates` `[cells, 4]`: centre x, y, width, height relative to the image, as Vision
//!   expects: `((col + dx) / grid_w, (row + dy) / grid_h, e^clamp(tw, ±6) / grid_w,
//!   e^clamp(th, ±6) / grid_h)` — the engine's decoding divided by the input size.
//!
//! The `NonMaximumSuppression` model then keeps boxes at or above the confidence threshold and
//! suppresses same-label boxes overlapping a better one (per class, as the engine does); its
//! thresholds default to the model's and can be overridden through the optional pipeline inputs
//! `iouThreshold` and `confidenceThreshold`. Differences from `lathe predict`: Core ML labels a
//! box by its best class (a cell that peaks for two classes gives one box, the engine two), and it
//! does not cap the number of boxes at `max_detections`.

use crate::error::{Error, Result};
use crate::export::coreml::backbone::{FeatureMap, tapped_maps, values};
use crate::export::coreml::builder::{Activation, Conv2d, NetworkBuilder};
use crate::export::coreml::spec::{self, image_input, image_scaler};
use crate::export::coreml::{Exported, Options, meta};
use crate::nets::detect_head::TAPS;
use crate::templates::detect::model::DetectorModel;
use crate::templates::image::coreml::{backbone_license, backbone_title};
use candle_core::Device;
use coreml_proto::proto::{
    ArrayFeatureType, BorderAmounts, FeatureDescription, FeatureType, Model, MultiplyLayerParams,
    NeuralNetwork, NonMaximumSuppression, PermuteLayerParams, Pipeline, PoolingLayerParams,
    ReshapeLayerParams, SizeRange, SliceLayerParams, UnaryFunctionLayerParams, UpsampleLayerParams,
    ValidPadding, array_feature_type, border_amounts::EdgeSizes, feature_type, model,
    neural_network_layer::Layer, non_maximum_suppression, pooling_layer_params,
    reshape_layer_params, slice_layer_params, unary_function_layer_params, upsample_layer_params,
};
use std::path::Path;

/// Name of the image input.
pub const INPUT: &str = "image";
/// The network's outputs: per-cell class confidences and boxes, before NMS.
pub const RAW_CONFIDENCE: &str = "raw_confidence";
pub const RAW_COORDINATES: &str = "raw_coordinates";
/// The pipeline's outputs, after NMS.
pub const CONFIDENCE: &str = "confidence";
pub const COORDINATES: &str = "coordinates";
/// Optional inputs overriding the NMS thresholds.
pub const IOU_INPUT: &str = "iouThreshold";
pub const CONFIDENCE_INPUT: &str = "confidenceThreshold";
/// Pipelines with a `NonMaximumSuppression` model need specification 3.
pub const SPECIFICATION_VERSION: i32 = 3;
/// Each stage of the peak mask multiplies by this (a power of two: exact, and fp16-safe).
const PEAK_STAGE_SCALE: f32 = 4096.0;
/// 4096⁷ = 2⁸⁴: every gap of at least 2⁻⁸⁴ (any non-peak with p ≥ 2⁻⁶⁰) saturates the mask.
const PEAK_STAGES: usize = 7;

/// Exports the object detector in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = DetectorModel::load(model_dir, &Device::Cpu)?;
    let det = &model.detector;
    let pre = &det.backbone.preprocessing;
    let labels = det.labels.clone();
    let mut b = NetworkBuilder::new(options.precision);

    // (x/255 - mean) / std, exactly: the scaler takes x/255 - mean, a scale layer 1/std.
    let scaler = image_scaler(INPUT, 1.0 / 255.0, pre.mean.map(|m| -m));
    let inv_std = pre.std.map(|s| 1.0 / s);
    let normalized = b.scale("normalize", INPUT, "normalized", &inv_std, None)?;
    let input = FeatureMap {
        blob: normalized,
        channels: 3,
        height: pre.height as usize,
        width: pre.width as usize,
    };
    let maps = tapped_maps(&mut b, &det.backbone, &input, &TAPS)?;
    let (Some(s16), Some(s32)) = (maps.first(), maps.get(1)) else {
        return Err(Error::Unsupported(
            "Core ML export: the backbone gave no feature maps (a bug)".into(),
        ));
    };
    let (heat, boxes) = head(&mut b, &det.head.state_dict(), s16, s32)?;
    let grid = (s16.height, s16.width);
    confidence(&mut b, &heat, labels.len(), grid);
    coordinates(&mut b, &boxes, grid)?;
    let layers = b.finish();
    let num_layers = layers.len();

    let cells = grid.0 * grid.1;
    let network = network_model(
        layers,
        scaler,
        image_input(
            INPUT,
            pre.width,
            pre.height,
            &format!(
                "An RGB photo, {w}×{h} pixels. Lathe resizes the whole image to this size (aspect \
                 ratio not kept; Vision: VNImageCropAndScaleOptionScaleFill).",
                w = pre.width,
                h = pre.height
            ),
        ),
        cells,
        labels.len(),
    );
    let nms = nms_model(
        &network,
        &labels,
        det.decode.iou_threshold,
        det.decode.confidence_threshold,
    );
    let mut inputs = network_inputs(&network);
    inputs.extend(threshold_inputs(
        det.decode.iou_threshold,
        det.decode.confidence_threshold,
    ));
    let mut description = spec::description(inputs, nms_outputs(labels.len()));
    description.metadata = Some(metadata(model_dir, &model, options)?.message());
    let pipeline = spec::model(
        SPECIFICATION_VERSION,
        description,
        model::Type::Pipeline(Pipeline {
            models: vec![network, nms],
            names: vec!["network".into(), "nonMaximumSuppression".into()],
        }),
    );
    let bytes = spec::write(out, &pipeline)?;
    Ok(Exported {
        path: out.to_path_buf(),
        bytes,
        specification_version: SPECIFICATION_VERSION,
        num_layers,
    })
}

/// The head on the two backbone maps: `s32` upsampled ×2 (nearest) and concatenated after
/// `s16`, `reduce` / `conv1` / `conv2` with ReLU, then the `heatmap` and `box` 1×1 outputs.
/// Returns the heatmap-logit and box blobs.
fn head(
    b: &mut NetworkBuilder,
    tensors: &[(String, candle_core::Tensor)],
    s16: &FeatureMap,
    s32: &FeatureMap,
) -> Result<(String, String)> {
    let (fh, fw) = (s16.height / s32.height.max(1), s16.width / s32.width.max(1));
    if s32.height * fh != s16.height || s32.width * fw != s16.width {
        return Err(Error::Unsupported(format!(
            "Core ML export: feature maps {}×{} and {}×{} are not a whole factor apart; use an image size that is a multiple of 32",
            s16.height, s16.width, s32.height, s32.width
        )));
    }
    let up = b.push(
        "head.upsample",
        &[&s32.blob],
        "head.upsample",
        Layer::Upsample(UpsampleLayerParams {
            scaling_factor: vec![fh as u64, fw as u64],
            mode: upsample_layer_params::InterpolationMode::Nn as i32,
            ..Default::default()
        }),
    );
    let mut blob = b.concat("head.concat", &[&s16.blob, &up], "head.concat");
    let tensor = |name: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::Unsupported(format!("Core ML export: no tensor `{name}`")))
    };
    let mut outputs = Vec::new();
    for (name, relu) in [
        ("head.reduce", true),
        ("head.conv1", true),
        ("head.conv2", true),
        ("head.heatmap", false),
        ("head.box", false),
    ] {
        let w = tensor(&format!("{name}.weight"))?;
        let (out_ch, in_ch, kh, kw) = w.dims4()?;
        let weight = values(w)?;
        let bias = values(tensor(&format!("{name}.bias"))?)?;
        let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2);
        let conv = Conv2d {
            weight: &weight,
            shape: [out_ch, in_ch, kh, kw],
            bias: Some(&bias),
            stride: 1,
            groups: 1,
            padding: ((ph, ph), (pw, pw)),
        };
        let y = b.conv(name, &blob, name, &conv)?;
        if relu {
            let act = format!("{name}.relu");
            blob = b.activation(&act, &y, &act, Activation::Relu);
        } else {
            outputs.push(y);
        }
    }
    match (outputs.first(), outputs.get(1)) {
        (Some(h), Some(x)) => Ok((h.clone(), x.clone())),
        _ => Err(Error::Unsupported(
            "Core ML export: incomplete head (a bug)".into(),
        )),
    }
}

/// `raw_confidence` `[cells, classes]` from the heatmap logits `[classes, H, W]` (module doc).
fn confidence(b: &mut NetworkBuilder, logits: &str, classes: usize, (gh, gw): (usize, usize)) {
    let p = b.activation("heatmap", logits, "heatmap", Activation::Sigmoid);
    // 3×3 maximum around each cell; padding with 0 is exact since p ≥ 0.
    let padded = b.zero_pad("heatmap.pad", &p, "heatmap.pad", ((1, 1), (1, 1)));
    let no_padding = BorderAmounts {
        border_amounts: vec![EdgeSizes::default(), EdgeSizes::default()],
    };
    let local_max = b.push(
        "heatmap.max3x3",
        &[&padded],
        "heatmap.max3x3",
        Layer::Pooling(PoolingLayerParams {
            r#type: pooling_layer_params::PoolingType::Max as i32,
            kernel_size: vec![3, 3],
            stride: vec![1, 1],
            pooling_padding_type: Some(pooling_layer_params::PoolingPaddingType::Valid(
                ValidPadding {
                    padding_amounts: Some(no_padding),
                },
            )),
            ..Default::default()
        }),
    );
    let neg = b.activation(
        "heatmap.neg",
        &p,
        "heatmap.neg",
        Activation::Linear {
            alpha: -1.0,
            beta: 0.0,
        },
    );
    let gap = b.add("peak.gap", &[&local_max, &neg], "peak.gap");
    // y = max(-4096 d, -1), then y = max(4096 y, -1): -min(2^84 d, 1) after seven stages.
    let mut y = gap;
    for stage in 0..PEAK_STAGES {
        let scale = if stage == 0 {
            -PEAK_STAGE_SCALE
        } else {
            PEAK_STAGE_SCALE
        };
        let name = format!("peak.stage{stage}");
        y = b.push(
            &name,
            &[&y],
            &name,
            Layer::Unary(UnaryFunctionLayerParams {
                r#type: unary_function_layer_params::Operation::Threshold as i32,
                alpha: -1.0,
                epsilon: 0.0,
                shift: 0.0,
                scale,
            }),
        );
    }
    let mask = b.activation(
        "peak.mask",
        &y,
        "peak.mask",
        Activation::Linear {
            alpha: 1.0,
            beta: 1.0,
        },
    );
    let kept = b.push(
        "peak.confidence",
        &[&p, &mask],
        "peak.confidence",
        Layer::Multiply(MultiplyLayerParams { alpha: 0.0 }),
    );
    cells_first(b, &kept, RAW_CONFIDENCE, classes, gh * gw);
}

/// `raw_coordinates` `[cells, 4]` from the box channels `[4, H, W]` (module doc).
fn coordinates(b: &mut NetworkBuilder, boxes: &str, (gh, gw): (usize, usize)) -> Result<()> {
    let offsets = slice_channels(b, "box.offset", boxes, 0, 2);
    // Cell column (channel 0) and row (channel 1) of every position.
    let mut grid = Vec::with_capacity(2 * gh * gw);
    grid.extend((0..gh * gw).map(|i| (i % gw) as f32));
    grid.extend((0..gh * gw).map(|i| (i / gw) as f32));
    let centres = b.push(
        "box.centre",
        &[&offsets],
        "box.centre",
        Layer::Bias(coreml_proto::proto::BiasLayerParams {
            shape: vec![2, gh as u64, gw as u64],
            bias: Some(crate::export::coreml::builder::fp32_weights(&grid)),
        }),
    );
    let log_size = slice_channels(b, "box.log_size", boxes, 2, 4);
    let low = b.threshold("box.clamp_low", &log_size, "box.clamp_low", 1.0, -6.0);
    // max(-y, -6) = -min(y, 6); the exp below takes it back with scale -1.
    let neg_clamped = b.threshold("box.clamp_high", &low, "box.clamp_high", -1.0, -6.0);
    let size = b.push(
        "box.size",
        &[&neg_clamped],
        "box.size",
        Layer::Unary(UnaryFunctionLayerParams {
            r#type: unary_function_layer_params::Operation::Exp as i32,
            alpha: 0.0,
            epsilon: 0.0,
            shift: 0.0,
            scale: -1.0,
        }),
    );
    let cells = b.concat("box.cells", &[&centres, &size], "box.cells");
    let (x, y) = (1.0 / gw as f32, 1.0 / gh as f32);
    let relative = b.scale("box.relative", &cells, "box.relative", &[x, y, x, y], None)?;
    cells_first(b, &relative, RAW_COORDINATES, 4, gh * gw);
    Ok(())
}

/// Channels `[start, end)` of `input`.
fn slice_channels(b: &mut NetworkBuilder, name: &str, input: &str, start: i64, end: i64) -> String {
    b.push(
        name,
        &[input],
        name,
        Layer::Slice(SliceLayerParams {
            start_index: start,
            end_index: end,
            stride: 1,
            axis: slice_layer_params::SliceAxis::ChannelAxis as i32,
        }),
    )
}

/// `[channels, H, W]` → `[H·W, channels, 1]` (one row per cell, row-major) as blob `output`.
fn cells_first(b: &mut NetworkBuilder, input: &str, output: &str, channels: usize, cells: usize) {
    let flat = format!("{output}.flat");
    b.push(
        &flat,
        &[input],
        &flat,
        Layer::Reshape(ReshapeLayerParams {
            target_shape: vec![channels as i64, cells as i64, 1],
            mode: reshape_layer_params::ReshapeOrder::ChannelFirst as i32,
        }),
    );
    // Axes (Seq, C, H, W): swap C and H.
    b.push(
        output,
        &[&flat],
        output,
        Layer::Permute(PermuteLayerParams {
            axis: vec![0, 2, 1, 3],
        }),
    );
}

/// A double multi-array feature of `shape`, or of `[0…∞, columns]` rows when `shape` is `None`.
fn array(
    name: &str,
    description: &str,
    shape: Option<[usize; 2]>,
    columns: usize,
) -> FeatureDescription {
    let ty = match shape {
        Some(s) => ArrayFeatureType {
            shape: s.iter().map(|&d| d as i64).collect(),
            data_type: array_feature_type::ArrayDataType::Double as i32,
            ..Default::default()
        },
        None => ArrayFeatureType {
            data_type: array_feature_type::ArrayDataType::Double as i32,
            shape_flexibility: Some(array_feature_type::ShapeFlexibility::ShapeRange(
                array_feature_type::ShapeRange {
                    size_ranges: vec![
                        SizeRange {
                            lower_bound: 0,
                            upper_bound: -1,
                        },
                        SizeRange {
                            lower_bound: columns as u64,
                            upper_bound: columns as i64,
                        },
                    ],
                },
            )),
            ..Default::default()
        },
    };
    spec::feature(name, description, feature_type::Type::MultiArrayType(ty))
}

fn network_model(
    layers: Vec<coreml_proto::proto::NeuralNetworkLayer>,
    scaler: coreml_proto::proto::NeuralNetworkPreprocessing,
    image: FeatureDescription,
    cells: usize,
    classes: usize,
) -> Model {
    let outputs = vec![
        array(
            RAW_CONFIDENCE,
            "Every cell's class confidences before non-maximum suppression (0 where the cell is not a peak of the class)",
            Some([cells, classes]),
            classes,
        ),
        array(
            RAW_COORDINATES,
            "Every cell's box before non-maximum suppression: centre x, centre y, width, height, relative to the image",
            Some([cells, 4]),
            4,
        ),
    ];
    spec::model(
        SPECIFICATION_VERSION,
        spec::description(vec![image], outputs),
        model::Type::NeuralNetwork(NeuralNetwork {
            layers,
            preprocessing: vec![scaler],
            ..Default::default()
        }),
    )
}

fn network_inputs(network: &Model) -> Vec<FeatureDescription> {
    network
        .description
        .as_ref()
        .map(|d| d.input.clone())
        .unwrap_or_default()
}

/// The optional threshold inputs (doubles), described with their defaults.
fn threshold_inputs(iou: f32, confidence: f32) -> Vec<FeatureDescription> {
    let optional_double = |name: &str, description: String| FeatureDescription {
        name: name.into(),
        short_description: description,
        r#type: Some(FeatureType {
            is_optional: true,
            r#type: Some(spec::double_type()),
        }),
    };
    vec![
        optional_double(
            IOU_INPUT,
            format!("(optional) IoU threshold override (default: {iou})"),
        ),
        optional_double(
            CONFIDENCE_INPUT,
            format!("(optional) Confidence threshold override (default: {confidence})"),
        ),
    ]
}

fn nms_outputs(classes: usize) -> Vec<FeatureDescription> {
    vec![
        array(
            CONFIDENCE,
            "Boxes × class confidence (labels: metadata classes)",
            None,
            classes,
        ),
        array(
            COORDINATES,
            "Boxes × [x, y, width, height] (centre and size relative to the image)",
            None,
            4,
        ),
    ]
}

/// The NMS model; the thresholds are the engine's f32 values, widened exactly.
fn nms_model(network: &Model, labels: &[String], iou: f32, confidence: f32) -> Model {
    let mut inputs = network
        .description
        .as_ref()
        .map(|d| d.output.clone())
        .unwrap_or_default();
    inputs.extend(threshold_inputs(iou, confidence));
    let nms = NonMaximumSuppression {
        iou_threshold: f64::from(iou),
        confidence_threshold: f64::from(confidence),
        confidence_input_feature_name: RAW_CONFIDENCE.into(),
        coordinates_input_feature_name: RAW_COORDINATES.into(),
        iou_threshold_input_feature_name: IOU_INPUT.into(),
        confidence_threshold_input_feature_name: CONFIDENCE_INPUT.into(),
        confidence_output_feature_name: CONFIDENCE.into(),
        coordinates_output_feature_name: COORDINATES.into(),
        suppression_method: Some(non_maximum_suppression::SuppressionMethod::PickTop(
            non_maximum_suppression::PickTop { per_class: true },
        )),
        class_labels: Some(non_maximum_suppression::ClassLabels::StringClassLabels(
            spec::strings(labels),
        )),
    };
    spec::model(
        SPECIFICATION_VERSION,
        spec::description(inputs, nms_outputs(labels.len())),
        model::Type::NonMaximumSuppression(nms),
    )
}

/// Description, author, license, version and the user-defined entries.
fn metadata(
    model_dir: &Path,
    model: &DetectorModel,
    options: &Options,
) -> Result<spec::ModelMetadata> {
    let det = &model.detector;
    let pre = &det.backbone.preprocessing;
    let mut user = meta::provenance(model_dir, &det.labels, options)?;
    let mut put = |k: &str, v: String| {
        user.insert(k.to_string(), v);
    };
    put(
        "com.apple.coreml.model.preview.type",
        "objectDetector".into(),
    );
    put("backbone", det.backbone.id.clone());
    put("head_channels", det.head.channels.to_string());
    put("image_size", format!("{}x{}", pre.width, pre.height));
    put(
        "preprocessing",
        format!(
            "RGB, whole image resized to {}x{} (bilinear, aspect ratio not kept), x/255, minus mean {:?}, divided by std {:?}",
            pre.width, pre.height, pre.mean, pre.std
        ),
    );
    put("iou_threshold", det.decode.iou_threshold.to_string());
    put(
        "confidence_threshold",
        det.decode.confidence_threshold.to_string(),
    );
    put("max_detections", det.decode.max_detections.to_string());
    put(
        "box_encoding",
        "raw_confidence: per cell of the stride-16 grid (row-major), sigmoid of the class heatmap where the cell is a 3x3 peak of its class, else 0; raw_coordinates: centre x, y, width, height relative to the image; non-maximum suppression per class".into(),
    );
    let short = format!(
        "Object detector ({} + CenterNet-style head) for {} labels ({}), trained with Lathe.",
        backbone_title(&det.backbone.id),
        det.labels.len(),
        meta::label_list(&det.labels),
    );
    let license = format!(
        "Unspecified (set with --license). Contains {}.",
        backbone_license(&det.backbone.id)
    );
    Ok(meta::metadata(options, short, &license, user))
}
