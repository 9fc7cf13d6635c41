//! MobileNetV2 (torchvision layout and parameter names: `features.N…`), the default backbone.
//! Frozen blocks run with batch norm folded and the fused depthwise op; the last blocks can be
//! made trainable for fine-tuning.

use crate::nets::conv_bn::{ConvBn, ConvKind, global_avg_pool};
use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

/// (expansion t, output channels c, repeats n, first stride s), from the paper / torchvision.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Batch-norm epsilon of torchvision's MobileNetV2.
const BN_EPS: f64 = 1e-5;

/// Number of `features.N` blocks (stem, 17 inverted residuals, last 1×1 conv).
pub const NUM_BLOCKS: usize = 19;

/// Width of the pooled feature vector.
pub const FEATURE_DIM: usize = 1280;

struct Block {
    layers: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.layers {
            y = layer.forward(&y, train)?;
        }
        if self.residual { y + x } else { Ok(y) }
    }

    fn trainable(&self) -> bool {
        self.layers.iter().any(ConvBn::is_trainable)
    }
}

/// The MobileNetV2 feature extractor (everything before the classifier).
pub struct MobileNetV2 {
    blocks: Vec<Block>,
}

impl MobileNetV2 {
    /// Builds the network from torchvision-named tensors. Blocks with index ≥ `trainable_from`
    /// get trainable parameters (pass [`NUM_BLOCKS`] to freeze everything).
    pub fn load(tensors: &HashMap<String, Tensor>, trainable_from: usize) -> Result<Self> {
        let mut blocks = Vec::with_capacity(NUM_BLOCKS);
        let stem = ConvBn::load(
            tensors,
            "features.0.0",
            "features.0.1",
            ConvKind::Dense,
            2,
            true,
            BN_EPS,
            trainable_from == 0,
        )?;
        blocks.push(Block {
            layers: vec![stem],
            residual: false,
        });
        let mut input = 32;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let index = blocks.len();
                let train = index >= trainable_from;
                let stride = if i == 0 { s } else { 1 };
                let p = format!("features.{index}.conv");
                let mut layers = Vec::new();
                let mut j = 0;
                if t != 1 {
                    layers.push(ConvBn::load(
                        tensors,
                        &format!("{p}.0.0"),
                        &format!("{p}.0.1"),
                        ConvKind::Pointwise,
                        1,
                        true,
                        BN_EPS,
                        train,
                    )?);
                    j = 1;
                }
                layers.push(ConvBn::load(
                    tensors,
                    &format!("{p}.{j}.0"),
                    &format!("{p}.{j}.1"),
                    ConvKind::Depthwise,
                    stride,
                    true,
                    BN_EPS,
                    train,
                )?);
                layers.push(ConvBn::load(
                    tensors,
                    &format!("{p}.{}", j + 1),
                    &format!("{p}.{}", j + 2),
                    ConvKind::Pointwise,
                    1,
                    false,
                    BN_EPS,
                    train,
                )?);
                blocks.push(Block {
                    layers,
                    residual: stride == 1 && input == c,
                });
                input = c;
            }
        }
        let last = ConvBn::load(
            tensors,
            "features.18.0",
            "features.18.1",
            ConvKind::Pointwise,
            1,
            true,
            BN_EPS,
            trainable_from <= 18,
        )?;
        blocks.push(Block {
            layers: vec![last],
            residual: false,
        });
        Ok(Self { blocks })
    }

    /// Pooled features `[N, 1280]` of a normalized image batch `[N, 3, H, W]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() && self.blocks.first().is_some_and(|b| !b.trainable()) {
            return self.forward_cuda(x, train);
        }
        let mut y = x.clone();
        let mut frozen = true;
        for block in &self.blocks {
            if frozen && block.trainable() {
                // No gradient flows into frozen blocks: cut the graph here. Trainable blocks
                // run in f32 whatever the frozen part's dtype.
                y = y.detach().to_dtype(candle_core::DType::F32)?;
                frozen = false;
            }
            y = block.forward(&y, train)?;
        }
        global_avg_pool(&y)
    }

    /// [`MobileNetV2::forward`] on CUDA: the frozen blocks run channels-last (NHWC), fused as
    /// `nets::mobilenet_nhwc` describes; trainable blocks run as on the CPU, after one
    /// transpose back to NCHW.
    #[cfg(feature = "cuda")]
    fn forward_cuda(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_cuda_steps(x, train, &mut |_, f| f())
    }

    /// [`MobileNetV2::forward_cuda`] with every frozen step run through `step` (which
    /// `lathe bench --profile` uses to time them). The residual stream between frozen blocks
    /// has the blocks' dtype.
    #[cfg(feature = "cuda")]
    pub fn forward_cuda_steps(
        &self,
        x: &Tensor,
        train: bool,
        step: &mut crate::nets::mobilenet_nhwc::Steps<'_>,
    ) -> Result<Tensor> {
        use crate::nets::mobilenet_nhwc as nhwc;
        let stream = self.blocks.get(1).map_or(x.dtype(), |b| {
            b.layers.first().map_or(x.dtype(), |l| l.folded().0.dtype())
        });
        let mut y = x.clone();
        let mut channels_last = true;
        for (i, block) in self.blocks.iter().enumerate() {
            if channels_last && block.trainable() {
                y = step(nhwc::CAST, &mut || {
                    y.permute((0, 3, 1, 2))?
                        .contiguous()?
                        .detach()
                        .to_dtype(candle_core::DType::F32)
                })?;
                channels_last = false;
            }
            if !channels_last {
                y = block.forward(&y, train)?;
                continue;
            }
            y = nhwc::block(i, &block.layers, block.residual, &y, stream, step)?;
        }
        if channels_last {
            return nhwc::pool(&y, step);
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

    /// The outputs of blocks `taps` (indices into `features.N`, ascending), for dense heads
    /// such as the detector's; blocks after the last tap are not run.
    pub fn forward_taps(&self, x: &Tensor, train: bool, taps: &[usize]) -> Result<Vec<Tensor>> {
        let last = taps.iter().copied().max().unwrap_or(0);
        let mut y = x.clone();
        let mut frozen = true;
        let mut out = Vec::with_capacity(taps.len());
        for (i, block) in self.blocks.iter().enumerate().take(last + 1) {
            if frozen && block.trainable() {
                y = y.detach().to_dtype(candle_core::DType::F32)?;
                frozen = false;
            }
            y = block.forward(&y, train)?;
            if taps.contains(&i) {
                out.push(y.clone());
            }
        }
        Ok(out)
    }

    /// Trainable variables of the unfrozen blocks.
    pub fn vars(&self) -> Vec<Var> {
        self.blocks
            .iter()
            .flat_map(|b| b.layers.iter().flat_map(ConvBn::vars))
            .collect()
    }

    /// All parameters with torchvision names (as fine-tuned, unfolded).
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.blocks
            .iter()
            .flat_map(|b| b.layers.iter().flat_map(ConvBn::state_dict))
            .collect()
    }

    /// Refreshes the folded inference weights after fine-tuning.
    pub fn refold(&mut self) -> Result<()> {
        for b in &mut self.blocks {
            for l in &mut b.layers {
                l.refold()?;
            }
        }
        Ok(())
    }

    /// Runs frozen inference in `dtype` (bf16/f16 on GPUs).
    /// The stem and the last 1×1 convolution stay in f32: they are cheap, and it keeps the input
    /// pixels and the features that get pooled out of bf16/f16 rounding.
    pub fn cast_folded(&mut self, dtype: candle_core::DType) -> Result<()> {
        let last = self.blocks.len().saturating_sub(1);
        for (i, b) in self.blocks.iter_mut().enumerate() {
            if i == 0 || i == last {
                continue;
            }
            for l in &mut b.layers {
                l.cast_folded(dtype)?;
            }
        }
        Ok(())
    }
}
