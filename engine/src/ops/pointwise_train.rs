//! The trainable 1×1 convolution on the CPU, with its backward pass: one `gemm` per image for
//! the output and for the input gradient, and the weight gradient summed over images into one
//! `[Cout, Cin]` buffer per worker. Candle's broadcast matmul (the generic path) materializes a
//! `[N, Cout, Cin]` weight gradient per step and reduces it; for the last MobileNetV2 blocks at
//! batch 64 that is ~40 MB written, zeroed and summed per layer.

use super::pointwise::{for_each_image, image_split, matmul_strided};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_storage::f32_view("trainable 1×1 conv", s, l, what)
}

/// `x [N,Cin,H,W]`, `w [Cout,Cin]` → `[N,Cout,H,W]`, differentiable in both (CPU, f32).
#[derive(Clone, Copy, Debug)]
pub struct Pointwise;

impl CustomOp2 for Pointwise {
    fn name(&self) -> &'static str {
        "pointwise-conv2d-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (cout, cin_w) = l2.shape().dims2()?;
        if cin != cin_w {
            bail!(
                "1×1 conv: weight {:?} does not fit input {:?}",
                l2.shape(),
                l1.shape()
            )
        }
        let (x, wt) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "weight")?);
        let plane = h * w;
        let mut out = vec![0f32; n * cout * plane];
        // out[n] [Cout, HW] = w [Cout, Cin] · x[n] [Cin, HW]
        for_each_image(&mut out, x, (cout * plane, cin * plane), |o, xi, par| {
            matmul_strided(
                o,
                (cout, cin, plane),
                (wt, 1, cin),
                (xi, 1, plane),
                false,
                par,
            );
        });
        Ok((CpuStorage::F32(out), Shape::from((n, cout, h, w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gx = g.apply_op2_no_bwd(w, &GradInput)?;
        let gw = g.apply_op2_no_bwd(x, &GradWeight)?;
        Ok((Some(gx), Some(gw)))
    }
}

/// `g [N,Cout,H,W]`, `w [Cout,Cin]` → `wᵀ · g[n]` for every image: `[N,Cin,H,W]`.
struct GradInput;

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "pointwise-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cout, h, w) = l1.shape().dims4()?;
        let (_, cin) = l2.shape().dims2()?;
        let (g, wt) = (f32_slice(s1, l1, "gradient")?, f32_slice(s2, l2, "weight")?);
        let plane = h * w;
        let mut out = vec![0f32; n * cin * plane];
        // out[n] [Cin, HW] = wᵀ [Cin, Cout] · g[n] [Cout, HW]; wᵀ(i, k) = w[k·Cin + i].
        for_each_image(&mut out, g, (cin * plane, cout * plane), |o, gi, par| {
            matmul_strided(
                o,
                (cin, cout, plane),
                (wt, cin, 1),
                (gi, 1, plane),
                false,
                par,
            );
        });
        Ok((CpuStorage::F32(out), Shape::from((n, cin, h, w))))
    }
}

/// `g [N,Cout,H,W]`, `x [N,Cin,H,W]` → `Σₙ g[n] · x[n]ᵀ`: `[Cout,Cin]`.
struct GradWeight;

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "pointwise-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cout, h, w) = l1.shape().dims4()?;
        let (_, cin, _, _) = l2.shape().dims4()?;
        let (g, x) = (f32_slice(s1, l1, "gradient")?, f32_slice(s2, l2, "input")?);
        let plane = h * w;
        // acc [Cout, Cin] += g[n] [Cout, HW] · x[n]ᵀ [HW, Cin]; x[n]ᵀ(k, j) = x[n][j·HW + k].
        let add = |acc: &mut [f32], i: usize, par| {
            let gi = &g[i * cout * plane..(i + 1) * cout * plane];
            let xi = &x[i * cin * plane..(i + 1) * cin * plane];
            matmul_strided(
                acc,
                (cout, plane, cin),
                (gi, 1, plane),
                (xi, plane, 1),
                true,
                par,
            );
        };
        // Fixed chunks of images, each summed in order, then the chunks in order: the result does
        // not depend on how rayon schedules them (resumed runs must match uninterrupted ones to
        // the bit).
        let (per_image, par) = image_split(n);
        let chunk = if per_image {
            n.div_ceil(rayon::current_num_threads())
        } else {
            n.max(1)
        };
        let partials: Vec<Vec<f32>> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut acc = vec![0f32; cout * cin];
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    add(&mut acc, i, par);
                }
                acc
            })
            .collect();
        let mut out = vec![0f32; cout * cin];
        for p in &partials {
            out.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        Ok((CpuStorage::F32(out), Shape::from((cout, cin))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn matches_broadcast_matmul_forward_and_gradients() {
        let dev = Device::Cpu;
        // Fewer images than threads run each product on every thread; more, one image per task.
        for n in [1, 3, 40] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1., (n, 7, 5, 6), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f32, 1., (9, 7), &dev).unwrap()).unwrap();
            // A weighting that makes every output's gradient different.
            let r = Tensor::randn(0f32, 1., (n, 9, 5, 6), &dev).unwrap();
            let ours = x.as_tensor().apply_op2(w.as_tensor(), Pointwise).unwrap();
            let reference = w
                .as_tensor()
                .broadcast_matmul(&x.as_tensor().reshape((n, 7, 30)).unwrap())
                .unwrap()
                .reshape((n, 9, 5, 6))
                .unwrap();
            assert!(max_diff(&ours, &reference) < 1e-4, "n={n} forward");
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&reference * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &w] {
                let (a, b) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert_eq!(a.dims(), b.dims());
                assert!(max_diff(a, b) < 1e-3, "n={n} gradient {:?}", a.dims());
            }
        }
    }
}
