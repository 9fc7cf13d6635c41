//! `ConvBn`: a convolution followed by batch norm (and optionally ReLU6), the building block of
//! MobileNet-style backbones. Frozen layers run with batch norm folded into the convolution
//! (exact in eval mode, and faster); trainable layers keep `Var`s and batch norm in train mode.

use crate::ops::batch_norm::TrainBatchNorm;
use crate::ops::depthwise::{depthwise_conv2d, depthwise_conv2d_bias};
use crate::ops::pointwise::pointwise_bias;
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
    /// The f32 folded weight while `folded_weight` holds a bf16/f16 copy ([`ConvBn::cast_folded`]).
    master: Option<Tensor>,
    /// For a 1×1 projection (no ReLU6) cast to bf16/f16: the f32 weight split into a high and a
    /// low part, `[2·Cout, Cin, 1, 1]` in that dtype, whose sum is the f32 weight to about 16
    /// significant bits. The fused CUDA path multiplies by both in one product and adds the
    /// halves: rounding these weights to bf16 moved ImageNet probabilities the most.
    split: Option<Tensor>,
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
            master: None,
            split: None,
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
            let op = crate::ops::conv_cuda::ConvBias {
                layout: crate::ops::conv_cuda::ConvLayout::Dense,
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
        use crate::ops::conv_cuda::{BiasAct, ConvBias, ConvLayout};
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
            self.master = None;
            self.split = None;
        }
        Ok(())
    }

    /// Casts the folded inference weights (e.g. to bf16 on a GPU). The bias stays f32: it is
    /// tiny, and folding batch norm can make it large next to the outputs, where bf16 rounding
    /// of it would shift every output of the channel.
    /// The f32 master copy is kept, so casting back to f32 is exact.
    pub fn cast_folded(&mut self, dtype: DType) -> Result<()> {
        let master = match self.master.take() {
            Some(m) => m,
            None => self.folded_weight.to_dtype(DType::F32)?,
        };
        self.folded_weight = master.to_dtype(dtype)?;
        self.split = None;
        if dtype == DType::F32 {
            return Ok(());
        }
        if self.kind == ConvKind::Pointwise && !self.relu6 {
            let high = master.to_dtype(dtype)?;
            let low = (&master - high.to_dtype(DType::F32)?)?.to_dtype(dtype)?;
            self.split = Some(Tensor::cat(&[&high, &low], 0)?);
        }
        self.master = Some(master);
        Ok(())
    }

    /// The folded weight in f32 (exact: from the master copy when the layer was cast).
    pub fn folded_weight_f32(&self) -> Result<Tensor> {
        match &self.master {
            Some(m) => Ok(m.clone()),
            None => self.folded_weight.to_dtype(DType::F32),
        }
    }

    /// The high/low split of a projection's weight (see the field), when the layer was cast to
    /// bf16/f16.
    pub fn split_weight(&self) -> Option<&Tensor> {
        self.split.as_ref()
    }
}

/// A 1×1 convolution as one batched matrix product: `W [Cout,Cin] · X[n] [Cin,H·W]` (no im2col copy).
/// On the CPU in f32 it is [`crate::ops::pointwise_train::Pointwise`], whose backward makes
/// no per-image weight gradients.
pub fn pointwise(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (cout, cin, _, _) = w.dims4()?;
    let w = w.reshape((cout, cin))?;
    if x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        return x
            .contiguous()?
            .apply_op2(&w, crate::ops::pointwise_train::Pointwise);
    }
    let x = x.reshape((n, c, h * wd))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn layer(relu6: bool) -> ConvBn {
        let dev = Device::Cpu;
        let (co, ci) = (8, 16);
        let tensors = HashMap::from([
            (
                "c.weight".to_string(),
                Tensor::randn(0f32, 1.0, (co, ci, 1, 1), &dev).unwrap(),
            ),
            (
                "b.weight".to_string(),
                Tensor::randn(1f32, 0.5, co, &dev).unwrap(),
            ),
            (
                "b.bias".to_string(),
                Tensor::randn(0f32, 1.0, co, &dev).unwrap(),
            ),
            (
                "b.running_mean".to_string(),
                Tensor::zeros(co, DType::F32, &dev).unwrap(),
            ),
            (
                "b.running_var".to_string(),
                Tensor::ones(co, DType::F32, &dev).unwrap(),
            ),
        ]);
        ConvBn::load(
            &tensors,
            "c",
            "b",
            ConvKind::Pointwise,
            1,
            relu6,
            1e-5,
            false,
        )
        .unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn a_cast_projection_keeps_a_split_weight_and_an_exact_master() {
        let mut l = layer(false);
        let exact = l.folded().0.clone();
        l.cast_folded(DType::BF16).unwrap();
        assert_eq!(l.folded().0.dtype(), DType::BF16);
        let split = l
            .split_weight()
            .expect("a projection cast to bf16 keeps a split")
            .clone();
        assert_eq!(split.dims(), [16, 16, 1, 1]);
        let halves = split.to_dtype(DType::F32).unwrap();
        let sum = (halves.narrow(0, 0, 8).unwrap() + halves.narrow(0, 8, 8).unwrap()).unwrap();
        let rounded = l.folded().0.to_dtype(DType::F32).unwrap();
        let err_split = max_abs(&(&sum - &exact).unwrap());
        let err_bf16 = max_abs(&(&rounded - &exact).unwrap());
        // bf16 keeps 8 significant bits; high + low about 16.
        assert!(err_split < err_bf16 / 100.0, "{err_split} vs {err_bf16}");
        assert_eq!(
            max_abs(&(l.folded_weight_f32().unwrap() - &exact).unwrap()),
            0.0
        );
        l.cast_folded(DType::F32).unwrap();
        assert_eq!(
            max_abs(&(l.folded().0 - &exact).unwrap()),
            0.0,
            "back to f32 exactly"
        );
        assert!(l.split_weight().is_none());
        // Layers with ReLU6 (expansions) keep no split.
        let mut e = layer(true);
        e.cast_folded(DType::BF16).unwrap();
        assert!(e.split_weight().is_none());
    }
}
