//! The object detector's parameters: the specs the settings form and `--param` use, and the
//! checked [`DetectParams`] the pipeline reads.

use crate::data::box_augment::BoxAugment;
use crate::error::{Error, Result};
use crate::nets::detect_head::{DecodeConfig, SIZE_MULTIPLE};
use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};
use std::path::PathBuf;

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct DetectParams {
    pub weights: Option<PathBuf>,
    pub image_size: u32,
    pub head_channels: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub validation_split: f64,
    /// Trailing backbone blocks (of `features.0..=17`) trained in the second phase (0 = frozen).
    pub fine_tune_blocks: usize,
    pub fine_tune_epochs: usize,
    pub fine_tune_learning_rate: f64,
    pub augment: BoxAugment,
    pub decode: DecodeConfig,
}

impl DetectParams {
    pub fn from_resolved(p: &ResolvedParams) -> Result<Self> {
        let image_size = p.usize("image_size") as u32;
        if !image_size.is_multiple_of(SIZE_MULTIPLE) {
            return Err(Error::project(
                format!(
                    "image_size must be a multiple of {SIZE_MULTIPLE} (got {image_size}); try {}",
                    image_size.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE
                ),
                None,
            ));
        }
        Ok(Self {
            weights: Some(p.text("weights"))
                .filter(|w| !w.is_empty())
                .map(PathBuf::from),
            image_size,
            head_channels: p.usize("head_channels"),
            epochs: p.usize("epochs"),
            batch_size: p.usize("batch_size"),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            validation_split: p.float("validation_split"),
            fine_tune_blocks: p.usize("fine_tune_blocks"),
            fine_tune_epochs: p.usize("fine_tune_epochs"),
            fine_tune_learning_rate: p.float("fine_tune_learning_rate"),
            augment: BoxAugment {
                crop: p.bool("augment_crop"),
                flip: p.bool("augment_flip"),
                color: p.bool("augment_color"),
            },
            decode: DecodeConfig {
                confidence_threshold: p.float("confidence_threshold") as f32,
                iou_threshold: p.float("iou_threshold") as f32,
                max_detections: p.usize("max_detections"),
            },
        })
    }
}

/// Every parameter of the object detector, with defaults and help.
pub fn param_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::choice(
            "backbone",
            "Backbone",
            "Model",
            "Pretrained network the detector is built on.",
            &["mobilenet_v2"],
            "mobilenet_v2",
        ),
        ParamSpec::new(
            "weights",
            "Backbone weights file",
            "Model",
            "A safetensors file with the backbone's weights; empty uses the built-in copy.",
            ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::int(
            "image_size",
            "Input size",
            "Model",
            "Images are resized to this many pixels square (a multiple of 32); larger finds smaller objects but trains slower.",
            (64, 1024),
            416,
        ),
        ParamSpec::int(
            "head_channels",
            "Head width",
            "Model",
            "Channels of the detection head's convolutions.",
            (8, 512),
            128,
        ),
        ParamSpec::int(
            "epochs",
            "Epochs (frozen backbone)",
            "Training",
            "Passes over the training images while only the head trains.",
            (1, 100_000),
            40,
        ),
        ParamSpec::int(
            "batch_size",
            "Batch size",
            "Training",
            "Images per optimizer step.",
            (1, 1024),
            16,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Training",
            "Peak AdamW step size of the head (warm-up, then cosine decay).",
            (1e-7, 1.0),
            2e-3,
        ),
        ParamSpec::float(
            "weight_decay",
            "Weight decay",
            "Training",
            "L2-style regularization of the weights.",
            (0.0, 1.0),
            1e-4,
        ),
        ParamSpec::float(
            "validation_split",
            "Validation split",
            "Data",
            "Share of training images held out for validation when no validation folder is given.",
            (0.0, 0.5),
            0.1,
        ),
        ParamSpec::int(
            "fine_tune_blocks",
            "Fine-tune last blocks",
            "Fine-tuning",
            "After the frozen phase, also train the last N backbone blocks the head reads (17 at most; 0 keeps the backbone frozen).",
            (0, 17),
            4,
        ),
        ParamSpec::int(
            "fine_tune_epochs",
            "Fine-tuning epochs",
            "Fine-tuning",
            "Passes over the images while fine-tuning.",
            (1, 10_000),
            10,
        ),
        ParamSpec::float(
            "fine_tune_learning_rate",
            "Fine-tuning learning rate",
            "Fine-tuning",
            "Peak AdamW step size while fine-tuning (keep it small).",
            (1e-7, 1.0),
            2e-4,
        ),
        ParamSpec::bool(
            "augment_crop",
            "Augment: crop / pad",
            "Augmentation",
            "Zooms each training image in or out at random (boxes follow).",
            true,
        ),
        ParamSpec::bool(
            "augment_flip",
            "Augment: flip",
            "Augmentation",
            "Mirrors half of the training images (boxes follow).",
            true,
        ),
        ParamSpec::bool(
            "augment_color",
            "Augment: colour",
            "Augmentation",
            "Varies brightness, contrast and saturation of each training image.",
            true,
        ),
        ParamSpec::float(
            "confidence_threshold",
            "Confidence threshold",
            "Inference",
            "Boxes less confident than this are not shown by predict.",
            (0.0, 1.0),
            0.3,
        ),
        ParamSpec::float(
            "iou_threshold",
            "Overlap threshold (NMS)",
            "Inference",
            "A box overlapping a more confident box of the same label by more than this IoU is dropped.",
            (0.0, 1.0),
            0.45,
        ),
        ParamSpec::int(
            "max_detections",
            "Most boxes per image",
            "Inference",
            "At most this many boxes are kept per image.",
            (1, 10_000),
            100,
        ),
    ]
}
