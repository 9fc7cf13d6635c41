//! `ConvBn`: a convolution followed by batch norm (and optionally ReLU6), the building block of
//! MobileNet-style backbones. Frozen layers run with batch norm folded into the convolution
//! (exact in eval mode, and faster); trainable layers keep `Var`s and batch norm in train mode.

use crate::model::batch_norm::TrainBatchNorm;
use crate::model::depthwise::{depthwise_conv2d, depthwise_conv2d_bias};
use crate::model::pointwise::pointwise_bias;
use candle_core::{D, DType, Module, Result, Tensor, Var};
use std::collections::HashMap;

/// Which convolution a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// Dense k×k convolution (the stem).
    Dense,
    /// One filter per channel.
    Depthwise,
    /// 1×1 convolution.
    Pointwise,
}

struct TrainableParts {
    weight: Var,
    bn: TrainBatchNorm,
}

/// A convolution + batch norm (+ ReLU6) layer with PyTorch-style parameter names.
pub struct ConvBn {
    /// Name prefix of the convolution weight (`features.0.0` → `features.0.0.weight`).
    pub conv_name: String,
    /// Name prefix of the batch norm (`features.0.1`).
    pub bn_name: String,
    pub kind: ConvKind,
    pub stride: usize,
    pub padding: usize,
    pub relu6: bool,
    /// TensorFlow "same" padding (extra row/column at the bottom/right for stride 2), as in
    /// ports of TF-trained models; otherwise symmetric padding of (k-1)/2.
    pub tf_same: bool,
    eps: f64,
    /// Folded weights for inference.
    folded_weight: Tensor,
    folded_bias: Tensor,
    /// Unfolded pretrained tensors (for export of frozen layers).
    original: Vec<(String, Tensor)>,
    trainable: Option<TrainableParts>,
}

fn get(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    tensors
        .get(name)
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg(format!("weights have no tensor `{name}`")))
}

impl ConvBn {
    /// Loads a layer from pretrained `tensors`; `trainable` makes its parameters `Var`s.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        tensors: &HashMap<String, Tensor>,
        conv_name: &str,
        bn_name: &str,
        kind: ConvKind,
        stride: usize,
        relu6: bool,
        eps: f64,
        trainable: bool,
    ) -> Result<Self> {
        let weight = get(tensors, &format!("{conv_name}.weight"))?.to_dtype(DType::F32)?;
        let gamma = get(tensors, &format!("{bn_name}.weight"))?.to_dtype(DType::F32)?;
        let beta = get(tensors, &format!("{bn_name}.bias"))?.to_dtype(DType::F32)?;
        let mean = get(tensors, &format!("{bn_name}.running_mean"))?.to_dtype(DType::F32)?;
        let var = get(tensors, &format!("{bn_name}.running_var"))?.to_dtype(DType::F32)?;
        let (_, _, kh, _) = weight.dims4()?;
        let padding = (kh - 1) / 2;
        let (folded_weight, folded_bias) = fold(&weight, &gamma, &beta, &mean, &var, eps)?;
        let original = vec![
            (format!("{conv_name}.weight"), weight.clone()),
            (format!("{bn_name}.weight"), gamma.clone()),
            (format!("{bn_name}.bias"), beta.clone()),
            (format!("{bn_name}.running_mean"), mean.clone()),
            (format!("{bn_name}.running_var"), var.clone()),
        ];
        let trainable = if trainable {
            Some(TrainableParts {
                weight: Var::from_tensor(&weight)?,
                bn: TrainBatchNorm {
                    gamma: Var::from_tensor(&gamma)?,
                    beta: Var::from_tensor(&beta)?,
                    running_mean: Var::from_tensor(&mean)?,
                    running_var: Var::from_tensor(&var)?,
                    eps,
                },
            })
        } else {
            None
        };
        Ok(Self {
            conv_name: conv_name.into(),
            bn_name: bn_name.into(),
            kind,
            stride,
            padding,
            relu6,
            tf_same: false,
            eps,
            folded_weight,
            folded_bias,
            original,
            trainable,
        })
    }

    /// Switches the layer to TensorFlow "same" padding.
    pub fn with_tf_same_padding(mut self) -> Self {
        self.tf_same = true;
        self
    }

    /// Zero padding `((top, bottom), (left, right))` this layer applies to an `h`×`w` input:
    /// symmetric `(k-1)/2`, or TF "same" (asymmetric at stride > 1 on some sizes).
    pub fn padding_amounts(&self, h: usize, w: usize) -> ((usize, usize), (usize, usize)) {
        if !self.tf_same || self.stride == 1 {
            let p = self.padding;
            return ((p, p), (p, p));
        }
        let k = self.padding * 2 + 1;
        let pads = |n: usize| {
            let out = n.div_ceil(self.stride);
            let total = ((out.max(1) - 1) * self.stride + k).saturating_sub(n);
            (total / 2, total - total / 2)
        };
        (pads(h), pads(w))
    }

    /// The inference weights with batch norm folded in: `[Cout, Cin/groups, k, k]` and `[Cout]`
    /// (refreshed by [`ConvBn::refold`] after fine-tuning).
    pub fn folded(&self) -> (&Tensor, &Tensor) {
        (&self.folded_weight, &self.folded_bias)
    }

    /// Pads `x` explicitly for TF "same" padding at stride > 1 (where it is asymmetric) and
    /// returns the padding the convolution itself should then use.
    fn prepare(&self, x: &Tensor) -> Result<(Tensor, usize)> {
        if !self.tf_same || self.stride == 1 {
            return Ok((x.clone(), self.padding));
        }
        let (_, _, h, w) = x.dims4()?;
        let ((top, bottom), (left, right)) = self.padding_amounts(h, w);
        Ok((
            x.pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?,
            0,
        ))
    }

    /// Runs the layer. `train` only matters for trainable layers (batch statistics).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (x, padding) = self.prepare(x)?;
        let x = &x;
        match &self.trainable {
            Some(t) => {
                let y = self.conv(x, t.weight.as_tensor(), padding)?;
                t.bn.forward(&y, train, self.relu6)
            }
            None => self.forward_folded(x, padding),
        }
    }

    fn conv(&self, x: &Tensor, w: &Tensor, padding: usize) -> Result<Tensor> {
        match self.kind {
            ConvKind::Depthwise => depthwise_conv2d(x, w, self.stride, padding),
            ConvKind::Pointwise => pointwise(x, w),
            ConvKind::Dense => x.conv2d(w, padding, self.stride, 1, 1),
        }
    }

    fn forward_folded(&self, x: &Tensor, padding: usize) -> Result<Tensor> {
        let w = &self.folded_weight;
        let b = &self.folded_bias.to_dtype(w.dtype())?;
        let x = if x.dtype() != w.dtype() {
            x.to_dtype(w.dtype())?
        } else {
            x.clone()
        };
        if self.kind == ConvKind::Depthwise {
            return depthwise_conv2d_bias(&x, w, b, self.stride, padding, self.relu6);
        }
        if self.kind == ConvKind::Pointwise {
            return pointwise_bias(&x, w, b, self.relu6);
        }
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() && w.dims4()?.1 * w.dims4()?.2 * w.dims4()?.3 <= 64 {
            // Few inputs per output (the stem): a direct kernel beats im2col + gemm.
            let op = super::conv_cuda::ConvBias {
                layout: super::conv_cuda::ConvLayout::Dense,
                stride: self.stride,
                padding,
                relu6: self.relu6,
            };
            return x
                .contiguous()?
                .apply_op3(&w.contiguous()?, &b.contiguous()?, op);
        }
        let c = b.dim(0)?;
        let y = x.conv2d(w, padding, self.stride, 1, 1)?;
        let y = y.broadcast_add(&b.reshape((1, c, 1, 1))?)?;
        if self.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }

    /// Inference forward of a frozen layer in channels-last layout (CUDA only): `x` is
    /// `[N, H, W, C]` — except for the stem (`Dense`), which takes the NCHW image batch — and
    /// the result is `[N, H', W', C']`. 1×1 convolutions become one matrix product over every
    /// pixel of the batch.
    #[cfg(feature = "cuda")]
    pub fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        use super::conv_cuda::{BiasAct, ConvBias, ConvLayout};
        if self.tf_same && self.stride > 1 {
            candle_core::bail!("the channels-last path has no TensorFlow 'same' padding");
        }
        // Channels-last kernels take the bias in f32 whatever the layer's dtype.
        let (w, b) = (&self.folded_weight, &self.folded_bias.to_dtype(DType::F32)?);
        let x = if x.dtype() != w.dtype() {
            x.to_dtype(w.dtype())?
        } else {
            x.clone()
        };
        let conv = |layout| ConvBias {
            layout,
            stride: self.stride,
            padding: self.padding,
            relu6: self.relu6,
        };
        match self.kind {
            ConvKind::Dense => x.contiguous()?.apply_op3(
                &w.contiguous()?,
                &b.contiguous()?,
                conv(ConvLayout::DenseToLast),
            ),
            ConvKind::Depthwise => x.contiguous()?.apply_op3(
                &w.contiguous()?,
                &b.contiguous()?,
                conv(ConvLayout::DepthwiseLast),
            ),
            ConvKind::Pointwise => {
                let (n, h, wd, c) = x.dims4()?;
                let cout = w.dim(0)?;
                let y = x
                    .contiguous()?
                    .reshape((n * h * wd, c))?
                    .matmul(&w.reshape((cout, c))?.t()?)?
                    .reshape((n, h, wd, cout))?;
                y.inplace_op2(
                    &b.contiguous()?,
                    &BiasAct {
                        relu6: self.relu6,
                        channels_last: true,
                    },
                )?;
                Ok(y)
            }
        }
    }

    /// Trainable variables (empty for frozen layers).
    pub fn vars(&self) -> Vec<Var> {
        match &self.trainable {
            Some(t) => vec![t.weight.clone(), t.bn.gamma.clone(), t.bn.beta.clone()],
            None => Vec::new(),
        }
    }

    pub fn is_trainable(&self) -> bool {
        self.trainable.is_some()
    }

    /// Parameters with PyTorch names and layouts (unfolded), as they are now.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        match &self.trainable {
            None => self.original.clone(),
            Some(t) => vec![
                (
                    format!("{}.weight", self.conv_name),
                    t.weight.as_tensor().clone(),
                ),
                (
                    format!("{}.weight", self.bn_name),
                    t.bn.gamma.as_tensor().clone(),
                ),
                (
                    format!("{}.bias", self.bn_name),
                    t.bn.beta.as_tensor().clone(),
                ),
                (
                    format!("{}.running_mean", self.bn_name),
                    t.bn.running_mean.as_tensor().clone(),
                ),
                (
                    format!("{}.running_var", self.bn_name),
                    t.bn.running_var.as_tensor().clone(),
                ),
            ],
        }
    }

    /// Recomputes folded weights from the current trainable parameters (after fine-tuning).
    pub fn refold(&mut self) -> Result<()> {
        if let Some(t) = &self.trainable {
            let (w, b) = fold(
                t.weight.as_tensor(),
                t.bn.gamma.as_tensor(),
                t.bn.beta.as_tensor(),
                t.bn.running_mean.as_tensor(),
                t.bn.running_var.as_tensor(),
                self.eps,
            )?;
            self.folded_weight = w;
            self.folded_bias = b;
        }
        Ok(())
    }

    /// Casts the folded inference weights (e.g. to bf16 on a GPU). The bias stays f32: it is
    /// tiny, and folding batch norm can make it large next to the outputs, where bf16 rounding
    /// of it would shift every output of the channel.
    pub fn cast_folded(&mut self, dtype: DType) -> Result<()> {
        self.folded_weight = self.folded_weight.to_dtype(dtype)?;
        Ok(())
    }
}

/// A 1×1 convolution as one batched matrix product: `W [Cout,Cin] · X[n] [Cin,H·W]` (no im2col copy).
pub fn pointwise(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (cout, cin, _, _) = w.dims4()?;
    let x = x.reshape((n, c, h * wd))?;
    let w = w.reshape((cout, cin))?;
    w.broadcast_matmul(&x)?.reshape((n, cout, h, wd))
}

/// Folds eval-mode batch norm into the preceding convolution: exact up to rounding.
pub fn fold(
    weight: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let scale = (gamma / (var + eps)?.sqrt()?)?;
    let c = scale.dim(0)?;
    let w = weight.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
    let b = (beta - (mean * &scale)?)?;
    Ok((w.contiguous()?, b.contiguous()?))
}

/// Global average pooling `[N,C,H,W]` → `[N,C]`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(D::Minus1)
}

/// A plain linear layer over loaded tensors (`{name}.weight [out,in]`, `{name}.bias`).
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    pub fn load(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Self> {
        let w = get(tensors, &format!("{name}.weight"))?.to_dtype(DType::F32)?;
        let b = get(tensors, &format!("{name}.bias"))?.to_dtype(DType::F32)?;
        Ok(Self {
            inner: candle_nn::Linear::new(w, Some(b)),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner.forward(x)
    }
}
