//! Depthwise 2-D convolution as candle custom ops. candle 0.11 runs a grouped convolution as one
//! small convolution per group, which makes MobileNet's depthwise layers the slowest part of the
//! network; these ops do the whole layer in one pass over the planes (rayon-parallel on the CPU),
//! with a backward pass for fine-tuning and a fused bias + ReLU6 variant for inference. The GPU
//! kernels live in `depthwise_cuda.rs` (CUDA) and `depthwise_metal.rs` + `depthwise.metal`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_storage::f32_view("depthwise conv", s, l, what)
}

/// Geometry shared by the forward and backward kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DwGeometry {
    pub stride: usize,
    pub padding: usize,
}

impl DwGeometry {
    fn out_size(&self, input: usize, kernel: usize) -> Result<usize> {
        let padded = input + 2 * self.padding;
        if padded < kernel {
            bail!(
                "depthwise conv: input {input} (+2×{}) is smaller than kernel {kernel}",
                self.padding
            )
        }
        Ok((padded - kernel) / self.stride + 1)
    }

    /// Output columns `ox` whose input column `ox*s + kx - p` lies inside `0..w`.
    fn valid_range(&self, kx: usize, w: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let lo = if p > kx { (p - kx).div_ceil(s) } else { 0 };
        let hi = if w + p > kx {
            ((w - 1 + p - kx) / s + 1).min(wo)
        } else {
            0
        };
        (lo, hi.max(lo))
    }
}

/// One output plane: `out = bias + Σ k * x` (optionally clamped to 0..6).
#[allow(clippy::too_many_arguments)]
fn forward_plane(
    g: DwGeometry,
    x: &[f32],
    h: usize,
    w: usize,
    k: &[f32],
    kh: usize,
    kw: usize,
    out: &mut [f32],
    ho: usize,
    wo: usize,
    bias: f32,
    relu6: bool,
) {
    let (s, p) = (g.stride, g.padding);
    out.fill(bias);
    // Valid output columns per kernel column, computed once per plane (kernels are ≤ 7 wide).
    let mut ranges = [(0usize, 0usize); 16];
    for (kx, r) in ranges.iter_mut().enumerate().take(kw.min(16)) {
        *r = g.valid_range(kx, w, wo);
    }
    for oy in 0..ho {
        let orow = &mut out[oy * wo..(oy + 1) * wo];
        for ky in 0..kh {
            let iy = (oy * s + ky) as isize - p as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            let xrow = &x[iy as usize * w..(iy as usize + 1) * w];
            for kx in 0..kw {
                let wv = k[ky * kw + kx];
                let (lo, hi) = if kx < 16 {
                    ranges[kx]
                } else {
                    g.valid_range(kx, w, wo)
                };
                if s == 1 {
                    let off = lo + kx - p;
                    for (o, xv) in orow[lo..hi].iter_mut().zip(&xrow[off..off + (hi - lo)]) {
                        *o += wv * xv;
                    }
                } else {
                    for ox in lo..hi {
                        orow[ox] += wv * xrow[ox * s + kx - p];
                    }
                }
            }
        }
        if relu6 {
            for o in orow.iter_mut() {
                *o = o.clamp(0.0, 6.0);
            }
        }
    }
}

struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
}

fn dims(g: DwGeometry, l1: &Layout, l2: &Layout) -> Result<Dims> {
    let (n, c, h, w) = l1.shape().dims4()?;
    let (kc, one, kh, kw) = l2.shape().dims4()?;
    if kc != c || one != 1 {
        bail!(
            "depthwise conv: kernel {:?} does not fit input {:?}",
            l2.shape(),
            l1.shape()
        )
    }
    Ok(Dims {
        n,
        c,
        h,
        w,
        kh,
        kw,
        ho: g.out_size(h, kh)?,
        wo: g.out_size(w, kw)?,
    })
}

fn forward(
    g: DwGeometry,
    x: &[f32],
    k: &[f32],
    bias: Option<&[f32]>,
    relu6: bool,
    d: &Dims,
) -> Vec<f32> {
    let mut out = vec![0f32; d.n * d.c * d.ho * d.wo];
    out.par_chunks_mut(d.ho * d.wo)
        .enumerate()
        .for_each(|(plane, o)| {
            let ch = plane % d.c;
            let xp = &x[plane * d.h * d.w..(plane + 1) * d.h * d.w];
            let kp = &k[ch * d.kh * d.kw..(ch + 1) * d.kh * d.kw];
            let b = bias.map(|b| b[ch]).unwrap_or(0.0);
            forward_plane(g, xp, d.h, d.w, kp, d.kh, d.kw, o, d.ho, d.wo, b, relu6);
        });
    out
}

/// `x [N,C,H,W]` ⊛ `k [C,1,kh,kw]` → `[N,C,Ho,Wo]`, with backward for both arguments.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseConv(pub DwGeometry);

impl CustomOp2 for DepthwiseConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = dims(self.0, l1, l2)?;
        let out = forward(
            self.0,
            f32_slice(s1, l1, "input")?,
            f32_slice(s2, l2, "kernel")?,
            None,
            false,
            &d,
        );
        Ok((CpuStorage::F32(out), Shape::from((d.n, d.c, d.ho, d.wo))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::depthwise_cuda::forward(self.0, (s1, l1), (s2, l2), None, false)
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        super::depthwise_metal::forward(self.0, (s1, l1), (s2, l2), None, false)
    }

    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, w) = x.dims4()?;
        let gx = grad.apply_op2_no_bwd(k, &DepthwiseGradInput { g: self.0, h, w })?;
        let (_, _, kh, kw) = k.dims4()?;
        let gk = x.apply_op2_no_bwd(&grad, &DepthwiseGradKernel { g: self.0, kh, kw })?;
        Ok((Some(gx), Some(gk)))
    }
}

/// Inference-only fused op: depthwise conv + per-channel bias (+ ReLU6), for folded batch norm.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseConvBias {
    pub geometry: DwGeometry,
    pub relu6: bool,
}

impl CustomOp3 for DepthwiseConvBias {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bias"
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
        let d = dims(self.geometry, l1, l2)?;
        let bias = f32_slice(s3, l3, "bias")?;
        if bias.len() != d.c {
            bail!(
                "depthwise conv: bias has {} values for {} channels",
                bias.len(),
                d.c
            )
        }
        let out = forward(
            self.geometry,
            f32_slice(s1, l1, "input")?,
            f32_slice(s2, l2, "kernel")?,
            Some(bias),
            self.relu6,
            &d,
        );
        Ok((CpuStorage::F32(out), Shape::from((d.n, d.c, d.ho, d.wo))))
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
        super::depthwise_cuda::forward(
            self.geometry,
            (s1, l1),
            (s2, l2),
            Some((s3, l3)),
            self.relu6,
        )
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
        s3: &candle_core::MetalStorage,
        l3: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        super::depthwise_metal::forward(
            self.geometry,
            (s1, l1),
            (s2, l2),
            Some((s3, l3)),
            self.relu6,
        )
    }
}

/// Gradient w.r.t. the input: arguments (grad_out, kernel).
struct DepthwiseGradInput {
    g: DwGeometry,
    h: usize,
    w: usize,
}

impl CustomOp2 for DepthwiseGradInput {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, ho, wo) = l1.shape().dims4()?;
        let (_, _, kh, kw) = l2.shape().dims4()?;
        let go = f32_slice(s1, l1, "gradient")?;
        let k = f32_slice(s2, l2, "kernel")?;
        let (h, w, g) = (self.h, self.w, self.g);
        let (s, p) = (g.stride, g.padding);
        let mut gx = vec![0f32; n * c * h * w];
        gx.par_chunks_mut(h * w)
            .enumerate()
            .for_each(|(plane, gxp)| {
                let ch = plane % c;
                let gp = &go[plane * ho * wo..(plane + 1) * ho * wo];
                let kp = &k[ch * kh * kw..(ch + 1) * kh * kw];
                for oy in 0..ho {
                    let grow = &gp[oy * wo..(oy + 1) * wo];
                    for ky in 0..kh {
                        let iy = (oy * s + ky) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let xrow = &mut gxp[iy as usize * w..(iy as usize + 1) * w];
                        for kx in 0..kw {
                            let wv = kp[ky * kw + kx];
                            let (lo, hi) = g.valid_range(kx, w, wo);
                            for ox in lo..hi {
                                xrow[ox * s + kx - p] += wv * grow[ox];
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(gx), Shape::from((n, c, h, w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::depthwise_cuda::grad_input(self.g, (self.h, self.w), (s1, l1), (s2, l2))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        super::depthwise_metal::grad_input(self.g, (self.h, self.w), (s1, l1), (s2, l2))
    }
}

/// Gradient w.r.t. the kernel: arguments (input, grad_out).
struct DepthwiseGradKernel {
    g: DwGeometry,
    kh: usize,
    kw: usize,
}

impl CustomOp2 for DepthwiseGradKernel {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-kernel"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l1.shape().dims4()?;
        let (_, _, ho, wo) = l2.shape().dims4()?;
        let x = f32_slice(s1, l1, "input")?;
        let go = f32_slice(s2, l2, "gradient")?;
        let (kh, kw, g) = (self.kh, self.kw, self.g);
        let (s, p) = (g.stride, g.padding);
        let mut gk = vec![0f32; c * kh * kw];
        gk.par_chunks_mut(kh * kw)
            .enumerate()
            .for_each(|(ch, gkp)| {
                for b in 0..n {
                    let plane = b * c + ch;
                    let xp = &x[plane * h * w..(plane + 1) * h * w];
                    let gp = &go[plane * ho * wo..(plane + 1) * ho * wo];
                    for oy in 0..ho {
                        let grow = &gp[oy * wo..(oy + 1) * wo];
                        for ky in 0..kh {
                            let iy = (oy * s + ky) as isize - p as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let xrow = &xp[iy as usize * w..(iy as usize + 1) * w];
                            for kx in 0..kw {
                                let (lo, hi) = g.valid_range(kx, w, wo);
                                let mut acc = 0f32;
                                for ox in lo..hi {
                                    acc += xrow[ox * s + kx - p] * grow[ox];
                                }
                                gkp[ky * kw + kx] += acc;
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(gk), Shape::from((c, 1, kh, kw))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::depthwise_cuda::grad_kernel(self.g, (self.kh, self.kw), (s1, l1), (s2, l2))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        super::depthwise_metal::grad_kernel(self.g, (self.kh, self.kw), (s1, l1), (s2, l2))
    }
}

/// True when one of our kernels runs `x`: f32 on the CPU; f32, bf16 or f16 on CUDA; f32 or
/// f16 on Metal.
fn has_kernel(x: &Tensor) -> bool {
    use candle_core::DType::{BF16, F16, F32};
    match x.device() {
        candle_core::Device::Cpu => x.dtype() == F32,
        candle_core::Device::Cuda(_) => matches!(x.dtype(), F32 | BF16 | F16),
        candle_core::Device::Metal(_) => matches!(x.dtype(), F32 | F16),
    }
}

/// Depthwise convolution of `x [N,C,H,W]` with `k [C,1,kh,kw]` (differentiable).
pub fn depthwise_conv2d(x: &Tensor, k: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let g = DwGeometry { stride, padding };
    if has_kernel(x) {
        x.contiguous()?
            .apply_op2(&k.contiguous()?, DepthwiseConv(g))
    } else {
        // Other dtypes use candle's grouped convolution.
        let c = x.dim(1)?;
        x.conv2d(k, padding, stride, 1, c)
    }
}

/// Inference: depthwise convolution + bias (+ ReLU6) in one pass.
pub fn depthwise_conv2d_bias(
    x: &Tensor,
    k: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    relu6: bool,
) -> Result<Tensor> {
    if has_kernel(x) {
        let op = DepthwiseConvBias {
            geometry: DwGeometry { stride, padding },
            relu6,
        };
        x.contiguous()?
            .apply_op3(&k.contiguous()?, &bias.contiguous()?, op)
    } else {
        let c = x.dim(1)?;
        let y = x
            .conv2d(k, padding, stride, 1, c)?
            .broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
        if relu6 { y.clamp(0f32, 6f32) } else { Ok(y) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn reference(x: &Tensor, k: &Tensor, s: usize, p: usize) -> Tensor {
        x.conv2d(k, p, s, 1, x.dim(1).unwrap()).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn forward_matches_grouped_conv() {
        let dev = Device::Cpu;
        for (h, w, k, s, p) in [
            (7, 9, 3, 1, 1),
            (8, 8, 3, 2, 1),
            (5, 6, 5, 2, 2),
            (4, 4, 1, 1, 0),
            (9, 7, 3, 2, 0),
        ] {
            let x = Tensor::randn(0f32, 1., (2, 3, h, w), &dev).unwrap();
            let kk = Tensor::randn(0f32, 1., (3, 1, k, k), &dev).unwrap();
            let ours = depthwise_conv2d(&x, &kk, s, p).unwrap();
            assert!(
                max_diff(&ours, &reference(&x, &kk, s, p)) < 1e-5,
                "{h}x{w} k{k} s{s} p{p}"
            );
            let b = Tensor::randn(0f32, 1., 3, &dev).unwrap();
            let fused = depthwise_conv2d_bias(&x, &kk, &b, s, p, true).unwrap();
            let expect = reference(&x, &kk, s, p)
                .broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap())
                .unwrap()
                .clamp(0f32, 6f32)
                .unwrap();
            assert!(max_diff(&fused, &expect) < 1e-5);
        }
    }

    #[test]
    fn backward_matches_grouped_conv() {
        let dev = Device::Cpu;
        for (s, p) in [(1, 1), (2, 1), (2, 0)] {
            // Odd sizes: candle's own conv2d backward (the reference) mis-sizes even inputs at stride 2.
            let x = Var::randn(0f32, 1., (2, 4, 9, 7), &dev).unwrap();
            let k = Var::randn(0f32, 1., (4, 1, 3, 3), &dev).unwrap();
            let target = Tensor::randn(
                0f32,
                1.,
                reference(x.as_tensor(), k.as_tensor(), s, p).shape(),
                &dev,
            )
            .unwrap();
            let ours = (depthwise_conv2d(x.as_tensor(), k.as_tensor(), s, p).unwrap() * &target)
                .unwrap()
                .sum_all()
                .unwrap();
            let theirs = (reference(x.as_tensor(), k.as_tensor(), s, p) * &target)
                .unwrap()
                .sum_all()
                .unwrap();
            let g1 = ours.backward().unwrap();
            let g2 = theirs.backward().unwrap();
            for v in [&x, &k] {
                let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(d < 1e-4, "grad diff {d} (s{s} p{p})");
            }
        }
    }

    #[test]
    fn backward_on_even_sizes_matches_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (1, 2, 8, 8), &dev).unwrap();
        let k = Var::randn(0f32, 1., (2, 1, 3, 3), &dev).unwrap();
        let loss = |x: &Tensor, k: &Tensor| {
            depthwise_conv2d(x, k, 2, 1)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(x.as_tensor(), k.as_tensor()).backward().unwrap();
        let gx: Vec<f32> = grads
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let gk: Vec<f32> = grads
            .get(&k)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let eps = 1e-2f32;
        let numeric = |t: &Var, i: usize| {
            let base: Vec<f32> = t.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let at = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                let moved = Tensor::from_vec(v, t.shape(), &dev).unwrap();
                let (xx, kk) = if t.shape() == x.shape() {
                    (moved, k.as_tensor().clone())
                } else {
                    (x.as_tensor().clone(), moved)
                };
                loss(&xx, &kk).to_scalar::<f32>().unwrap()
            };
            (at(eps) - at(-eps)) / (2.0 * eps)
        };
        for i in [0, 9, 63, 64 + 27, 127] {
            let n = numeric(&x, i);
            assert!(
                (n - gx[i]).abs() < 2e-2 * (1.0 + n.abs()),
                "input {i}: {n} vs {}",
                gx[i]
            );
        }
        for i in [0, 4, 8, 13] {
            let n = numeric(&k, i);
            assert!(
                (n - gk[i]).abs() < 2e-2 * (1.0 + n.abs()),
                "kernel {i}: {n} vs {}",
                gk[i]
            );
        }
    }
}
