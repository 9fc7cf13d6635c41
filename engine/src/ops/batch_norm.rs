//! Batch norm of trainable layers (`[N,C,H,W]`, statistics per channel), optionally followed by
//! ReLU6, with its own forward and backward ops for f32 on the CPU and CUDA: two passes forward
//! (channel statistics, then normalize + affine + clamp) and three backward (ReLU6 mask, the
//! per-channel sums, the input gradient), where candle's `BatchNorm` takes a transposed copy and
//! a dozen ops each way. Running statistics follow PyTorch (momentum 0.1, unbiased variance).
//! Other dtypes and devices use the same math as tensor ops.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, Var, bail,
};
use rayon::prelude::*;

/// Weight of the batch statistics in the running averages (PyTorch's default).
pub const MOMENTUM: f64 = 0.1;

/// A batch-norm layer whose scale and shift are trained.
pub struct TrainBatchNorm {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Var,
    pub running_var: Var,
    pub eps: f64,
}

/// True when the fused ops run `x`: f32 on the CPU or CUDA.
fn fused(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && (x.device().is_cpu() || x.device().is_cuda())
}

impl TrainBatchNorm {
    /// Normalizes `x` with batch statistics (`train`, updating the running ones) or the running
    /// statistics, then scales, shifts and (`relu6`) clamps to 0..6.
    pub fn forward(&self, x: &Tensor, train: bool, relu6: bool) -> Result<Tensor> {
        if !train {
            let c = x.dim(1)?;
            let scale =
                (self.gamma.as_tensor() / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?;
            let shift = (self.beta.as_tensor() - (self.running_mean.as_tensor() * &scale)?)?;
            let y = x
                .broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
                .broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
            return if relu6 { y.clamp(0f32, 6f32) } else { Ok(y) };
        }
        let (n, _, h, w) = x.dims4()?;
        let count = (n * h * w) as f64;
        if count < 2.0 {
            bail!(
                "batch norm in training needs more than one value per channel (input {:?})",
                x.shape()
            )
        }
        let x = x.contiguous()?;
        let (y, mean, var) = if fused(&x) {
            let stats = x.apply_op1_no_bwd(&BnStats)?;
            let op = BnForward {
                eps: self.eps,
                relu6,
            };
            let y = x.apply_op3(self.gamma.as_tensor(), self.beta.as_tensor(), op)?;
            (y, stats.get(0)?, stats.get(1)?)
        } else {
            self.forward_ops(&x, relu6)?
        };
        let m = MOMENTUM;
        self.running_mean
            .set(&((self.running_mean.as_tensor() * (1.0 - m))? + (mean.detach() * m)?)?)?;
        let unbiased = (var.detach() * (count / (count - 1.0)))?;
        self.running_var
            .set(&((self.running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?)?;
        Ok(y)
    }

    /// The training forward as tensor ops: `(y, batch mean [C], biased batch variance [C])`.
    fn forward_ops(&self, x: &Tensor, relu6: bool) -> Result<(Tensor, Tensor, Tensor)> {
        let c = x.dim(1)?;
        let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered
            .sqr()?
            .mean_keepdim(0)?
            .mean_keepdim(2)?
            .mean_keepdim(3)?;
        let y = centered
            .broadcast_div(&(&var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.gamma.as_tensor().reshape((1, c, 1, 1))?)?
            .broadcast_add(&self.beta.as_tensor().reshape((1, c, 1, 1))?)?;
        let y = if relu6 { y.clamp(0f32, 6f32)? } else { y };
        Ok((y, mean.flatten_all()?, var.flatten_all()?))
    }
}

fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_storage::f32_view("batch norm", s, l, what)
}

/// `(n, c, hw)` of an `[N,C,H,W]` layout.
pub(crate) fn nchw(l: &Layout) -> Result<(usize, usize, usize)> {
    let (n, c, h, w) = l.shape().dims4()?;
    Ok((n, c, h * w))
}

/// Mean and biased variance of channel `ch` (two passes, f64 sums).
fn channel_stats(x: &[f32], (n, c, hw): (usize, usize, usize), ch: usize) -> (f32, f32) {
    let planes = || (0..n).map(move |i| &x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
    let count = (n * hw) as f64;
    let mean = planes().flatten().map(|&v| v as f64).sum::<f64>() / count;
    let var = planes()
        .flatten()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / count;
    (mean as f32, var as f32)
}

/// Per-channel `[mean; biased variance]` of `x [N,C,H,W]` as `[2, C]` (no gradient).
#[derive(Clone, Copy, Debug)]
pub struct BnStats;

impl CustomOp1 for BnStats {
    fn name(&self) -> &'static str {
        "batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = nchw(l)?;
        let x = cpu_f32(s, l, "input")?;
        let stats: Vec<(f32, f32)> = (0..dims.1)
            .into_par_iter()
            .map(|ch| channel_stats(x, dims, ch))
            .collect();
        let mut out: Vec<f32> = stats.iter().map(|s| s.0).collect();
        out.extend(stats.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, dims.1))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::batch_norm_cuda::stats(s, l)
    }
}

/// Training batch norm (+ ReLU6): `(x, gamma, beta) → y`, differentiable in all three.
#[derive(Clone, Copy, Debug)]
pub struct BnForward {
    pub eps: f64,
    pub relu6: bool,
}

impl CustomOp3 for BnForward {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let x = cpu_f32(s1, l1, "input")?;
        let gamma = cpu_f32(s2, l2, "scale")?;
        let beta = cpu_f32(s3, l3, "shift")?;
        if gamma.len() != c || beta.len() != c {
            bail!(
                "batch norm: scale/shift have {}/{} values for {c} channels",
                gamma.len(),
                beta.len()
            )
        }
        let stats: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| channel_stats(x, (n, c, hw), ch))
            .collect();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(hw).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let (mean, var) = stats[ch];
            let a = gamma[ch] / (var + self.eps as f32).sqrt();
            let b = beta[ch] - mean * a;
            for (o, &v) in out.iter_mut().zip(&x[plane * hw..(plane + 1) * hw]) {
                let z = v * a + b;
                *o = if self.relu6 { z.clamp(0.0, 6.0) } else { z };
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::batch_norm_cuda::forward(self, (s1, l1), (s2, l2), (s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let x = x.contiguous()?;
        let grad = grad.contiguous()?;
        let dy = if self.relu6 {
            grad.apply_op2_no_bwd(&y.contiguous()?, &Relu6Mask)?
        } else {
            grad
        };
        let stats = x.apply_op1_no_bwd(&BnStats)?;
        // [Σ dy; Σ dy·x̂] per channel: the shift's and the scale's gradients.
        let sums = x.apply_op3_no_bwd(&dy, &stats, &BnGradSums { eps: self.eps })?;
        let aux = Tensor::cat(&[&stats.flatten_all()?, gamma, &sums.flatten_all()?], 0)?;
        let dx = x.apply_op3_no_bwd(&dy, &aux, &BnGradInput { eps: self.eps })?;
        Ok((Some(dx), Some(sums.get(1)?), Some(sums.get(0)?)))
    }
}

/// `grad · [0 < y < 6]`: the gradient through ReLU6, from its output.
#[derive(Clone, Copy, Debug)]
pub struct Relu6Mask;

impl CustomOp2 for Relu6Mask {
    fn name(&self) -> &'static str {
        "relu6-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = cpu_f32(s1, l1, "gradient")?;
        let y = cpu_f32(s2, l2, "output")?;
        if g.len() != y.len() {
            bail!("relu6 mask: gradient and output differ in size")
        }
        let out = g
            .par_iter()
            .zip(y)
            .map(|(&g, &y)| if y > 0.0 && y < 6.0 { g } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::batch_norm_cuda::relu6_mask((s1, l1), (s2, l2))
    }
}

/// `(x, dy, stats [2,C]) → [Σ dy; Σ dy·x̂]` per channel, `[2, C]`.
#[derive(Clone, Copy, Debug)]
pub struct BnGradSums {
    pub eps: f64,
}

impl CustomOp3 for BnGradSums {
    fn name(&self) -> &'static str {
        "batch-norm-grad-sums"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let x = cpu_f32(s1, l1, "input")?;
        let dy = cpu_f32(s2, l2, "gradient")?;
        let stats = cpu_f32(s3, l3, "statistics")?;
        if dy.len() != x.len() || stats.len() != 2 * c {
            bail!("batch norm gradient: sizes do not match")
        }
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, rstd) = (stats[ch], 1.0 / (stats[c + ch] + self.eps as f32).sqrt());
                let (mut sd, mut sdx) = (0f64, 0f64);
                for i in 0..n {
                    let r = (i * c + ch) * hw..(i * c + ch + 1) * hw;
                    for (&g, &v) in dy[r.clone()].iter().zip(&x[r]) {
                        sd += g as f64;
                        sdx += (g * (v - mean) * rstd) as f64;
                    }
                }
                (sd as f32, sdx as f32)
            })
            .collect();
        let mut out: Vec<f32> = sums.iter().map(|s| s.0).collect();
        out.extend(sums.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::batch_norm_cuda::grad_sums(self.eps, (s1, l1), (s2, l2), (s3, l3))
    }
}

/// `(x, dy, aux = [mean; var; gamma; Σdy; Σdy·x̂] (5C)) → dx`:
/// `dx = γ/σ · (dy − Σdy/M − x̂ · Σdy·x̂/M)`.
#[derive(Clone, Copy, Debug)]
pub struct BnGradInput {
    pub eps: f64,
}

impl CustomOp3 for BnGradInput {
    fn name(&self) -> &'static str {
        "batch-norm-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let x = cpu_f32(s1, l1, "input")?;
        let dy = cpu_f32(s2, l2, "gradient")?;
        let aux = cpu_f32(s3, l3, "statistics")?;
        if dy.len() != x.len() || aux.len() != 5 * c {
            bail!("batch norm gradient: sizes do not match")
        }
        let m = (n * hw) as f32;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(hw).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let rstd = 1.0 / (aux[c + ch] + self.eps as f32).sqrt();
            let (mean, gamma) = (aux[ch], aux[2 * c + ch]);
            let (sd, sdx) = (aux[3 * c + ch] / m, aux[4 * c + ch] / m);
            let r = plane * hw..(plane + 1) * hw;
            for ((o, &g), &v) in out.iter_mut().zip(&dy[r.clone()]).zip(&x[r]) {
                let xhat = (v - mean) * rstd;
                *o = gamma * rstd * (g - sd - xhat * sdx);
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::batch_norm_cuda::grad_input(self.eps, (s1, l1), (s2, l2), (s3, l3))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn layer(c: usize, dev: &Device) -> TrainBatchNorm {
        let v =
            |vals: Vec<f32>| Var::from_tensor(&Tensor::from_vec(vals, c, dev).unwrap()).unwrap();
        TrainBatchNorm {
            gamma: v((0..c).map(|i| 2.0 + 1.5 * i as f32).collect()),
            beta: v((0..c).map(|i| 0.7 - 0.4 * i as f32).collect()),
            running_mean: v(vec![0.0; c]),
            running_var: v(vec![1.0; c]),
            eps: 1e-5,
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(977));
                ((v >> 8) % 4001) as f32 / 500.0 - 3.0
            })
            .collect()
    }

    /// The fused ops give what the tensor-op formulation gives: output, all three gradients
    /// and the running statistics, with and without ReLU6 — and the tensor ops are candle's
    /// `BatchNorm` math, checked against it here too.
    #[test]
    fn fused_batch_norm_matches_tensor_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let (n, c, h, w) = (3, 4, 5, 6);
        let xs = Tensor::from_vec(values(n * c * h * w, 1), (n, c, h, w), &dev).unwrap();
        let r = Tensor::from_vec(values(n * c * h * w, 2), (n, c, h, w), &dev).unwrap();
        for relu6 in [false, true] {
            let mut results = Vec::new();
            for use_fused in [true, false] {
                let bn = layer(c, &dev);
                let x = Var::from_tensor(&xs).unwrap();
                let y = if use_fused {
                    bn.forward(x.as_tensor(), true, relu6).unwrap()
                } else {
                    let (y, mean, var) = bn.forward_ops(x.as_tensor(), relu6).unwrap();
                    let count = (n * h * w) as f64;
                    bn.running_mean.set(&(mean * MOMENTUM).unwrap()).unwrap();
                    let rv = ((var * (MOMENTUM * count / (count - 1.0))).unwrap()
                        + (1.0 - MOMENTUM))
                        .unwrap();
                    bn.running_var.set(&rv).unwrap();
                    y
                };
                let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
                results.push(vec![
                    flat(&y),
                    flat(grads.get(&x).unwrap()),
                    flat(grads.get(&bn.gamma).unwrap()),
                    flat(grads.get(&bn.beta).unwrap()),
                    flat(bn.running_mean.as_tensor()),
                    flat(bn.running_var.as_tensor()),
                ]);
            }
            let names = [
                "output",
                "input gradient",
                "scale gradient",
                "shift gradient",
                "running mean",
                "running var",
            ];
            for (k, name) in names.iter().enumerate() {
                let worst = results[0][k]
                    .iter()
                    .zip(&results[1][k])
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0f32, f32::max);
                assert!(worst < 2e-5, "relu6={relu6}: {name} differs by {worst}");
            }
            if relu6 {
                let y = &results[0][0];
                assert!(
                    y.contains(&0.0) && y.contains(&6.0),
                    "the clamp was not exercised"
                );
            }
        }
        // candle's own BatchNorm, as the layer used before these ops, agrees in training mode.
        let bn = layer(c, &dev);
        let reference = candle_nn::BatchNorm::new(
            c,
            bn.running_mean.as_tensor().copy().unwrap(),
            bn.running_var.as_tensor().copy().unwrap(),
            bn.gamma.as_tensor().clone(),
            bn.beta.as_tensor().clone(),
            1e-5,
        )
        .unwrap();
        let want = candle_core::ModuleT::forward_t(&reference, &xs, true).unwrap();
        let got = bn.forward(&xs, true, false).unwrap();
        let diff = (want - got)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "candle BatchNorm differs by {diff}");
        let rv_diff = (reference.running_var() - bn.running_var.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            rv_diff < 1e-5,
            "running variance differs from candle's by {rv_diff}"
        );
    }
}
