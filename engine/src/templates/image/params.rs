//! The image classifier's parameters: the specs the settings form and `--param` use, and the
//! checked [`ImageParams`] the pipeline reads.

use crate::data::augment::Augmentation;
use crate::nets::backbone::BACKBONE_CHOICES;
use crate::nets::head::HeadKind;
use crate::params::{ParamKind, ParamSpec, ParamValue, ResolvedParams};
use crate::train::head_choice::HeadChoice;
use std::path::PathBuf;

/// Parameters after checking.
#[derive(Clone, Debug)]
pub struct ImageParams {
    pub backbone: String,
    pub weights: Option<PathBuf>,
    pub image_size: u32,
    pub head: HeadKind,
    /// `head = auto | logistic | mlp`: which heads train and how (`train::head_choice`).
    pub head_choice: HeadChoice,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub validation_split: f64,
    pub augmentations: Vec<Augmentation>,
    /// Images per backbone batch; 0 picks one for the device.
    pub extraction_batch_size: usize,
    /// `auto`, `f32`, `bf16` or `f16`: the dtype of the frozen backbone.
    pub precision: String,
    /// Trailing backbone blocks trained together with the head (0 = frozen backbone).
    pub fine_tune_blocks: usize,
    pub fine_tune_epochs: usize,
    pub fine_tune_learning_rate: f64,
    pub fine_tune_batch_size: usize,
}

impl ImageParams {
    pub fn from_resolved(p: &ResolvedParams) -> Self {
        let head_choice = HeadChoice::parse(
            p.text("head"),
            p.usize("mlp_hidden"),
            p.float("dropout") as f32,
        );
        let head = head_choice.kind();
        let weights = Some(p.text("weights"))
            .filter(|w| !w.is_empty())
            .map(PathBuf::from);
        Self {
            backbone: p.text("backbone").to_string(),
            weights,
            image_size: p.usize("image_size") as u32,
            head,
            head_choice,
            epochs: p.usize("epochs"),
            batch_size: p.usize("batch_size"),
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            patience: p.usize("early_stopping_patience"),
            validation_split: p.float("validation_split"),
            augmentations: Augmentation::ALL
                .into_iter()
                .filter(|a| p.bool(a.param_key()))
                .collect(),
            extraction_batch_size: p.usize("extraction_batch_size"),
            precision: p.text("precision").to_string(),
            fine_tune_blocks: p.usize("fine_tune_blocks"),
            fine_tune_epochs: p.usize("fine_tune_epochs"),
            fine_tune_learning_rate: p.float("fine_tune_learning_rate"),
            fine_tune_batch_size: p.usize("fine_tune_batch_size"),
        }
    }
}

/// Every parameter of the image classifier, with defaults and help.
pub fn param_specs() -> Vec<ParamSpec> {
    let mut specs = vec![
        ParamSpec::choice(
            "backbone",
            "Backbone",
            "Model",
            "Pretrained network that turns each image into features. auto compares every installed backbone on a sample of the training images and keeps the best by cross-validated accuracy; MobileNetV2 is built in, the EfficientNet-Lite weights are installed by scripts/fetch-efficientnet-lite0.sh and -lite2.sh.",
            BACKBONE_CHOICES,
            "auto",
        ),
        ParamSpec::new(
            "weights",
            "Backbone weights file",
            "Model",
            "A safetensors file with the backbone's weights; empty uses the built-in or Hugging Face copy.",
            ParamKind::Text,
            ParamValue::Text(String::new()),
        ),
        ParamSpec::int(
            "image_size",
            "Image size",
            "Model",
            "Images are resized to this many pixels square before the backbone.",
            (32, 1024),
            224,
        ),
        ParamSpec::choice(
            "head",
            "Classifier",
            "Model",
            "auto: logistic regression with its penalty chosen by cross-validation, and from 1,000 images an MLP too, keeping the better on validation; logistic: that regression alone; mlp: one hidden layer, for more complex boundaries.",
            &["auto", "logistic", "mlp"],
            "auto",
        ),
        ParamSpec::int(
            "mlp_hidden",
            "MLP hidden units",
            "Model",
            "Width of the MLP's hidden layer.",
            (8, 8192),
            512,
        ),
        ParamSpec::float(
            "dropout",
            "MLP dropout",
            "Model",
            "Share of hidden units dropped while training the MLP.",
            (0.0, 0.9),
            0.2,
        ),
        ParamSpec::int(
            "epochs",
            "Maximum epochs",
            "Training",
            "Passes over the training features; early stopping may end sooner.",
            (1, 100_000),
            100,
        ),
        ParamSpec::int(
            "batch_size",
            "Batch size",
            "Training",
            "Examples per optimizer step when training the classifier.",
            (1, 65_536),
            256,
        ),
        ParamSpec::float(
            "learning_rate",
            "Learning rate",
            "Training",
            "Peak AdamW step size (warm-up, then cosine decay).",
            (1e-7, 1.0),
            1e-3,
        ),
        ParamSpec::float(
            "weight_decay",
            "Weight decay",
            "Training",
            "L2-style regularization of the classifier weights.",
            (0.0, 1.0),
            1e-4,
        ),
        ParamSpec::int(
            "early_stopping_patience",
            "Early stopping patience",
            "Training",
            "Stop after this many epochs without validation improvement (0 = never).",
            (0, 10_000),
            10,
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
            "extraction_batch_size",
            "Feature batch size",
            "Performance",
            "Images per backbone batch during feature extraction; 0 picks one for the device (32 on the CPU, 256 on a GPU).",
            (0, 4096),
            0,
        ),
        ParamSpec::choice(
            "precision",
            "Precision",
            "Performance",
            "Number format of the frozen backbone: auto = bf16 on a GPU, f32 on the CPU. f32 is exact everywhere.",
            &["auto", "f32", "bf16", "f16"],
            "auto",
        ),
    ];
    specs.extend([
        ParamSpec::int(
            "fine_tune_blocks",
            "Fine-tune last blocks",
            "Fine-tuning",
            "After the classifier, also train the last N backbone blocks on the images (18 at most; slow without a GPU; 0 keeps the backbone frozen).",
            (0, 18),
            0,
        ),
        ParamSpec::int("fine_tune_epochs", "Fine-tuning epochs", "Fine-tuning", "Passes over the images while fine-tuning.", (1, 10_000), 5),
        ParamSpec::float(
            "fine_tune_learning_rate",
            "Fine-tuning learning rate",
            "Fine-tuning",
            "Peak AdamW step size while fine-tuning (keep it small).",
            (1e-7, 1.0),
            1e-4,
        ),
        ParamSpec::int("fine_tune_batch_size", "Fine-tuning batch size", "Fine-tuning", "Images per fine-tuning step.", (1, 4096), 32),
    ]);
    for a in Augmentation::ALL {
        let help = match a {
            Augmentation::Flip => "Adds a mirrored copy of every training image.",
            Augmentation::Rotate => "Adds a copy rotated by up to ±20°.",
            Augmentation::Crop => "Adds a copy cropped to 70–90 % of the area.",
            Augmentation::Exposure => "Adds a brighter or darker copy.",
            Augmentation::Blur => "Adds a slightly blurred copy.",
            Augmentation::Noise => "Adds a copy with pixel noise.",
        };
        let label = format!("Augment: {}", a.name());
        specs.push(ParamSpec::bool(
            a.param_key(),
            &label,
            "Augmentation",
            help,
            false,
        ));
    }
    specs
}
