//! 1×1 convolution + bias (+ ReLU6) for inference, as one CPU op: a matrix product per image
//! (`gemm`, the kernel candle itself uses) with the bias and clamp applied while the output is
//! still in cache. Replaces candle's im2col convolution + two elementwise passes (and their
//! allocations) in MobileNet's expansion and projection layers.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};
use gemm::Parallelism;
use rayon::prelude::*;

/// `x [N,Cin,H,W]`, `w [Cout,Cin]`, `b [Cout]` → `[N,Cout,H,W]`.
#[derive(Clone, Copy, Debug)]
pub struct PointwiseBias {
    pub relu6: bool,
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_storage::f32_view("pointwise conv", s, l, what)
}

/// `dst [m,n] = lhs [m,k] · rhs [k,n]`, all row-major.
fn matmul(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    k: usize,
    n: usize,
    parallelism: Parallelism,
) {
    matmul_strided(dst, (m, k, n), (lhs, 1, k), (rhs, 1, n), false, parallelism);
}

/// `dst [m,n] = lhs [m,k] · rhs [k,n]` (or `+=` with `accumulate`), `dst` dense row-major and
/// each operand given as (slice, column stride, row stride), so transposes cost nothing.
#[allow(unsafe_code)]
pub(crate) fn matmul_strided(
    dst: &mut [f32],
    (m, k, n): (usize, usize, usize),
    (lhs, lhs_cs, lhs_rs): (&[f32], usize, usize),
    (rhs, rhs_cs, rhs_rs): (&[f32], usize, usize),
    accumulate: bool,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, cs: usize, rs: usize| {
        (rows.saturating_sub(1)) * rs + (cols.saturating_sub(1)) * cs
    };
    assert!(
        dst.len() >= m * n
            && (k == 0
                || (last(m, k, lhs_cs, lhs_rs) < lhs.len()
                    && last(k, n, rhs_cs, rhs_rs) < rhs.len()))
    );
    // SAFETY: the asserts above keep every element the strides reach inside its slice; `dst`
    // is dense row-major within its extent and does not alias the inputs (it is `&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Whether `n` images run one per rayon task (when there are at least as many as threads: each
/// product stays in one core's cache), and the parallelism inside each product then.
pub(crate) fn image_split(n: usize) -> (bool, Parallelism) {
    let threads = rayon::current_num_threads();
    if n >= threads {
        (true, Parallelism::None)
    } else {
        (false, Parallelism::Rayon(threads))
    }
}

/// Runs `f(out[i], input[i], parallelism)` for every image `i`, where `out` and `input` hold
/// images of `per_image.0` and `per_image.1` values, split as [`image_split`] says.
pub(crate) fn for_each_image(
    out: &mut [f32],
    input: &[f32],
    (out_len, in_len): (usize, usize),
    f: impl Fn(&mut [f32], &[f32], Parallelism) + Sync,
) {
    if out_len == 0 || in_len == 0 {
        return;
    }
    match image_split(out.len() / out_len.max(1)) {
        (true, par) => out
            .par_chunks_mut(out_len)
            .zip(input.par_chunks(in_len))
            .for_each(|(o, i)| f(o, i, par)),
        (false, par) => out
            .chunks_mut(out_len)
            .zip(input.chunks(in_len))
            .for_each(|(o, i)| f(o, i, par)),
    }
}

fn bias_act(out: &mut [f32], bias: &[f32], plane: usize, relu6: bool) {
    for (row, b) in out.chunks_mut(plane).zip(bias) {
        if relu6 {
            for v in row.iter_mut() {
                *v = (*v + b).clamp(0.0, 6.0);
            }
        } else {
            for v in row.iter_mut() {
                *v += b;
            }
        }
    }
}

impl CustomOp3 for PointwiseBias {
    fn name(&self) -> &'static str {
        "pointwise-conv2d-bias"
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
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (cout, cin_w) = l2.shape().dims2()?;
        if cin != cin_w {
            bail!(
                "pointwise conv: weight {:?} does not fit input {:?}",
                l2.shape(),
                l1.shape()
            )
        }
        let x = f32_slice(s1, l1, "input")?;
        let wt = f32_slice(s2, l2, "weight")?;
        let b = f32_slice(s3, l3, "bias")?;
        if b.len() != cout {
            bail!(
                "pointwise conv: bias has {} values for {cout} channels",
                b.len()
            )
        }
        let plane = h * w;
        let mut out = vec![0f32; n * cout * plane];
        for_each_image(&mut out, x, (cout * plane, cin * plane), |o, xi, par| {
            matmul(o, wt, xi, cout, cin, plane, par);
            bias_act(o, b, plane, self.relu6);
        });
        Ok((CpuStorage::F32(out), Shape::from((n, cout, h, w))))
    }
}

/// Inference 1×1 convolution with bias (+ ReLU6); `w` is `[Cout,Cin,1,1]`.
pub fn pointwise_bias(x: &Tensor, w: &Tensor, b: &Tensor, relu6: bool) -> Result<Tensor> {
    let (cout, cin, _, _) = w.dims4()?;
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        let w2 = w.reshape((cout, cin))?.contiguous()?;
        return x
            .contiguous()?
            .apply_op3(&w2, &b.contiguous()?, PointwiseBias { relu6 });
    }
    let (n, c, h, wd) = x.dims4()?;
    let y = w
        .reshape((cout, cin))?
        .broadcast_matmul(&x.reshape((n, c, h * wd))?)?
        .reshape((n, cout, h, wd))?;
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() && b.dtype() == y.dtype() {
        // Bias and activation in place, one pass over cuBLAS's fresh output.
        y.inplace_op2(
            &b.contiguous()?,
            &super::conv_cuda::BiasAct {
                relu6,
                channels_last: false,
            },
        )?;
        return Ok(y);
    }
    let y = y.broadcast_add(&b.reshape((1, cout, 1, 1))?)?;
    if relu6 { y.clamp(0f32, 6f32) } else { Ok(y) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_convolution_plus_bias() {
        let dev = Device::Cpu;
        for n in [1, 5] {
            let x = Tensor::randn(0f32, 1., (n, 7, 5, 6), &dev).unwrap();
            let w = Tensor::randn(0f32, 1., (9, 7, 1, 1), &dev).unwrap();
            let b = Tensor::randn(0f32, 1., 9, &dev).unwrap();
            for relu6 in [false, true] {
                let ours = pointwise_bias(&x, &w, &b, relu6).unwrap();
                let mut reference = x
                    .conv2d(&w, 0, 1, 1, 1)
                    .unwrap()
                    .broadcast_add(&b.reshape((1, 9, 1, 1)).unwrap())
                    .unwrap();
                if relu6 {
                    reference = reference.clamp(0f32, 6f32).unwrap();
                }
                let d = (ours - reference)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(d < 1e-4, "n={n} relu6={relu6}: {d}");
            }
        }
    }
}
