//! The sound classifier's compact CNN on log-mel windows, trained from scratch: four blocks of
//! 3×3 conv + batch norm + ReLU (2×2 max-pool after the first three), then the mean and the max
//! over time of every (channel, mel band) — the band axis is kept, since where energy sits in
//! frequency is what tells a hum from a whistle or one vowel from another — dropout and a linear
//! classifier. Names follow
//! PyTorch (`features.0.conv.weight`, `features.0.bn.running_mean`, `classifier.weight`) so the
//! exported safetensors load into the equivalent `torch.nn` module.

use candle_core::{D, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// Shape of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioCnnConfig {
    /// Channels of the first block; blocks use 1×, 2×, 4×, 8× this.
    pub width: usize,
    pub num_classes: usize,
    /// Input frames per window.
    pub frames: usize,
    pub n_mels: usize,
    pub dropout: f32,
}

impl AudioCnnConfig {
    /// Mel bands left after the three 2× poolings.
    pub fn pooled_mels(&self) -> usize {
        (self.n_mels / 8).max(1)
    }

    pub fn channels(&self) -> [usize; 4] {
        [self.width, self.width * 2, self.width * 4, self.width * 8]
    }
}

/// A 3×3 convolution with padding 1 computed as shifted copies + one matmul ("im2col" from
/// tensor ops): candle's CPU backward of `conv2d` goes through a naive transposed convolution
/// that made training ~50× slower; narrow / cat / matmul have fast gradients.
struct Conv3x3 {
    /// `(out, in × 9)`, viewed from the PyTorch `(out, in, 3, 3)` weight.
    weight: Tensor,
    bias: Tensor,
}

impl Conv3x3 {
    fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / ((c_in * 9) as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let weight = vb.get_with_hints((c_out, c_in, 3, 3), "weight", init)?;
        let bias = vb.get_with_hints(c_out, "bias", init)?;
        Ok(Self {
            weight: weight.reshape((c_out, c_in * 9))?,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        let mut shifts = Vec::with_capacity(9);
        for dy in 0..3 {
            for dx in 0..3 {
                shifts.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
            }
        }
        // (b, c, 9, h, w) → (b, c × 9, h × w): row c × 9 + k matches the weight's layout.
        let cols = Tensor::stack(&shifts, 2)?.reshape((b, c * 9, h * w))?;
        let out = self.weight.broadcast_matmul(&cols)?;
        let c_out = self.bias.dim(0)?;
        out.broadcast_add(&self.bias.reshape((1, c_out, 1))?)?
            .reshape((b, c_out, h, w))
    }
}

/// The network over a [`VarBuilder`] (a `VarMap` to train, loaded tensors to predict).
pub struct AudioCnn {
    pub cfg: AudioCnnConfig,
    blocks: Vec<(Conv3x3, BatchNorm)>,
    classifier: Linear,
}

impl AudioCnn {
    pub fn new(cfg: AudioCnnConfig, vb: VarBuilder) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut c_in = 1;
        for (i, c) in cfg.channels().into_iter().enumerate() {
            let vb = vb.pp(format!("features.{i}"));
            let conv = Conv3x3::new(c_in, c, vb.pp("conv"))?;
            let bn = candle_nn::batch_norm(
                c,
                candle_nn::BatchNormConfig {
                    eps: 1e-5,
                    remove_mean: true,
                    affine: true,
                    momentum: 0.1,
                },
                vb.pp("bn"),
            )?;
            blocks.push((conv, bn));
            c_in = c;
        }
        let classifier = candle_nn::linear(
            c_in * cfg.pooled_mels() * 2,
            cfg.num_classes,
            vb.pp("classifier"),
        )?;
        Ok(Self {
            cfg,
            blocks,
            classifier,
        })
    }

    /// Logits of normalized windows `(batch, frames × n_mels)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_inner(x, train, None)
    }

    /// Training-mode logits whose dropout mask is drawn from `dropout_seed`, so a run (and a
    /// resumed one) is reproducible.
    pub fn forward_train(&self, x: &Tensor, dropout_seed: u64) -> Result<Tensor> {
        self.forward_inner(x, true, Some(dropout_seed))
    }

    fn forward_inner(&self, x: &Tensor, train: bool, dropout_seed: Option<u64>) -> Result<Tensor> {
        let b = x.dim(0)?;
        let mut h = x.reshape((b, 1, self.cfg.frames, self.cfg.n_mels))?;
        let last = self.blocks.len().saturating_sub(1);
        for (i, (conv, bn)) in self.blocks.iter().enumerate() {
            h = conv.forward(&h)?;
            h = bn.forward_t(&h, train)?.relu()?;
            if i < last {
                h = h.max_pool2d(2)?;
            }
        }
        // (b, c, t, m) → (b, c × m, t) → [mean, max] over time.
        let (b, c, t, m) = h.dims4()?;
        let h = h.permute((0, 1, 3, 2))?.reshape((b, c * m, t))?;
        let pooled = Tensor::cat(&[h.mean(D::Minus1)?, h.max(D::Minus1)?], 1)?;
        let pooled = match (train && self.cfg.dropout > 0.0, dropout_seed) {
            (true, Some(seed)) => crate::nets::head::dropout_mask(&pooled, self.cfg.dropout, seed)?,
            (true, None) => candle_nn::ops::dropout(&pooled, self.cfg.dropout)?,
            (false, _) => pooled,
        };
        self.classifier.forward(&pooled)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shapes_and_pytorch_names() {
        let map = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let cfg = AudioCnnConfig {
            width: 4,
            num_classes: 3,
            frames: 50,
            n_mels: 64,
            dropout: 0.1,
        };
        let net = AudioCnn::new(cfg, vb).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 50 * 64), &Device::Cpu).unwrap();
        assert_eq!(net.forward_t(&x, true).unwrap().dims(), &[2, 3]);
        assert_eq!(net.forward_t(&x, false).unwrap().dims(), &[2, 3]);
        let names: Vec<String> = map.data().lock().unwrap().keys().cloned().collect();
        for n in [
            "features.0.conv.weight",
            "features.3.bn.running_var",
            "classifier.weight",
        ] {
            assert!(names.iter().any(|k| k == n), "{n} not in {names:?}");
        }
    }
}
