//! CUDA kernels of the training batch-norm ops (`batch_norm.rs`), f32, compiled at run time with
//! NVRTC: per-channel reductions (statistics, gradient sums) with one block per channel, and
//! elementwise passes (normalize + affine + ReLU6, ReLU6 mask, input gradient) laid out per
//! (image, channel) plane.
#![allow(unsafe_code)]

use super::batch_norm::{BnForward, nchw};
use super::depthwise_cuda::plane_grid;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CudaDevice, CudaStorage, Layout, Result, Shape, bail};
use std::sync::OnceLock;

const MODULE: &str = "lathe_batch_norm";

const SOURCE: &str = r#"
#define THREADS 256
// Sum over the block of one value per thread; every thread gets the total.
__device__ float block_sum(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.f;
    if (threadIdx.x < 32) {
        total = threadIdx.x < (blockDim.x >> 5) ? shared[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) total += __shfl_down_sync(0xffffffff, total, o);
        if (threadIdx.x == 0) shared[0] = total;
    }
    __syncthreads();
    total = shared[0];
    __syncthreads();
    return total;
}

// One block per channel: stats[ch] = mean, stats[c + ch] = biased variance (two passes).
extern "C" __global__ void bn_stats(const float* x, float* stats, int n, int c, int hw) {
    __shared__ float shared[32];
    const int ch = blockIdx.x;
    const long count = (long)n * hw;
    float s = 0.f;
    for (long i = threadIdx.x; i < count; i += blockDim.x) {
        const long img = i / hw, p = i - img * hw;
        s += x[(img * c + ch) * hw + p];
    }
    const float mean = block_sum(s, shared) / (float)count;
    float q = 0.f;
    for (long i = threadIdx.x; i < count; i += blockDim.x) {
        const long img = i / hw, p = i - img * hw;
        const float d = x[(img * c + ch) * hw + p] - mean;
        q += d * d;
    }
    const float var = block_sum(q, shared) / (float)count;
    if (threadIdx.x == 0) { stats[ch] = mean; stats[c + ch] = var; }
}

// y = (x − mean)/σ · γ + β (+ ReLU6); grid x over a plane's pixels, y over (image, channel).
extern "C" __global__ void bn_apply(const float* x, const float* stats, const float* gamma,
                                    const float* beta, float* y, int c, int hw, long planes,
                                    float eps, int relu6) {
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int ch = (int)(plane % c);
        const float a = gamma[ch] * rsqrtf(stats[c + ch] + eps);
        const float b = beta[ch] - stats[ch] * a;
        const float* xp = x + plane * hw;
        float* yp = y + plane * hw;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hw; i += blockDim.x * gridDim.x) {
            float v = xp[i] * a + b;
            if (relu6) v = fminf(fmaxf(v, 0.f), 6.f);
            yp[i] = v;
        }
    }
}

extern "C" __global__ void relu6_mask(const float* g, const float* y, float* out, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n;
         i += (long)blockDim.x * gridDim.x) {
        const float v = y[i];
        out[i] = (v > 0.f && v < 6.f) ? g[i] : 0.f;
    }
}

// One block per channel: out[ch] = Σ dy, out[c + ch] = Σ dy · x̂.
extern "C" __global__ void bn_grad_sums(const float* x, const float* dy, const float* stats,
                                        float* out, int n, int c, int hw, float eps) {
    __shared__ float shared[32];
    const int ch = blockIdx.x;
    const long count = (long)n * hw;
    const float mean = stats[ch], rstd = rsqrtf(stats[c + ch] + eps);
    float sd = 0.f, sdx = 0.f;
    for (long i = threadIdx.x; i < count; i += blockDim.x) {
        const long img = i / hw, p = i - img * hw;
        const long at = (img * c + ch) * hw + p;
        const float g = dy[at];
        sd += g;
        sdx += g * (x[at] - mean) * rstd;
    }
    sd = block_sum(sd, shared);
    sdx = block_sum(sdx, shared);
    if (threadIdx.x == 0) { out[ch] = sd; out[c + ch] = sdx; }
}

// dx = γ/σ · (dy − Σdy/M − x̂ · Σdy·x̂/M), aux = [mean; var; γ; Σdy; Σdy·x̂].
extern "C" __global__ void bn_grad_input(const float* x, const float* dy, const float* aux,
                                         float* dx, int c, int hw, long planes, float m,
                                         float eps) {
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int ch = (int)(plane % c);
        const float rstd = rsqrtf(aux[c + ch] + eps), mean = aux[ch];
        const float k = aux[2 * c + ch] * rstd;
        const float sd = aux[3 * c + ch] / m, sdx = aux[4 * c + ch] / m;
        const long base = plane * hw;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hw; i += blockDim.x * gridDim.x) {
            const float xhat = (x[base + i] - mean) * rstd;
            dx[base + i] = k * (dy[base + i] - sd - xhat * sdx);
        }
    }
}
"#;

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    crate::ops::nvrtc::compiled(&PTX, || SOURCE.to_string(), "the batch-norm CUDA kernels")
}

fn f32_view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    let CudaStorageSlice::F32(slice) = &s.slice else {
        bail!("batch norm on CUDA: {what} must be f32")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(slice.slice(a..b)),
        None => bail!("batch norm on CUDA: {what} must be contiguous"),
    }
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg("batch norm: size too large".into()))
}

fn per_channel(c: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (c.max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn wrap(dev: &CudaDevice, out: CudaSlice<f32>) -> CudaStorage {
    CudaStorage {
        slice: CudaStorageSlice::F32(out),
        device: dev.clone(),
    }
}

/// `[2, C]`: per-channel mean and biased variance.
pub fn stats(s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = nchw(l)?;
    let dev = s.device().clone();
    let x = f32_view(s, l, "input")?;
    let func = dev.get_or_load_custom_func("bn_stats", MODULE, ptx()?)?;
    // SAFETY: the kernel writes all 2·c values.
    let out = unsafe { dev.alloc::<f32>(2 * c)? };
    let (n_, c_, hw_) = (int(n)?, int(c)?, int(hw)?);
    let mut b = func.builder();
    b.arg(&x);
    b.arg(&out);
    candle_core::builder_arg!(b, n_, c_, hw_);
    // SAFETY: the arguments match `bn_stats`; `x` holds n·c·hw values.
    unsafe { b.launch(per_channel(c)) }.w()?;
    Ok((wrap(&dev, out), Shape::from((2, c))))
}

/// Training forward: statistics, then normalize + affine (+ ReLU6).
pub fn forward(
    op: &BnForward,
    (xs, xl): (&CudaStorage, &Layout),
    (gs, gl): (&CudaStorage, &Layout),
    (bs, bl): (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = nchw(xl)?;
    if gl.shape().elem_count() != c || bl.shape().elem_count() != c {
        bail!("batch norm: scale/shift do not match {c} channels")
    }
    let (st, _) = stats(xs, xl)?;
    let dev = xs.device().clone();
    let CudaStorageSlice::F32(st) = &st.slice else {
        bail!("batch norm: statistics must be f32")
    };
    let (x, g, be) = (
        f32_view(xs, xl, "input")?,
        f32_view(gs, gl, "scale")?,
        f32_view(bs, bl, "shift")?,
    );
    let func = dev.get_or_load_custom_func("bn_apply", MODULE, ptx()?)?;
    // SAFETY: the kernel writes every element.
    let y = unsafe { dev.alloc::<f32>(n * c * hw)? };
    let (c_, hw_, planes) = (int(c)?, int(hw)?, (n * c) as i64);
    let (eps, relu6) = (op.eps as f32, op.relu6 as i32);
    let mut b = func.builder();
    b.arg(&x);
    b.arg(st);
    b.arg(&g);
    b.arg(&be);
    b.arg(&y);
    candle_core::builder_arg!(b, c_, hw_, planes, eps, relu6);
    // SAFETY: the arguments match `bn_apply`; sizes were checked above.
    unsafe { b.launch(plane_grid(hw, n * c)) }.w()?;
    Ok((wrap(&dev, y), xl.shape().clone()))
}

/// `grad · [0 < y < 6]`.
pub fn relu6_mask(
    (gs, gl): (&CudaStorage, &Layout),
    (ys, yl): (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let count = gl.shape().elem_count();
    if yl.shape().elem_count() != count {
        bail!("relu6 mask: gradient and output differ in size")
    }
    let dev = gs.device().clone();
    let (g, y) = (f32_view(gs, gl, "gradient")?, f32_view(ys, yl, "output")?);
    let func = dev.get_or_load_custom_func("relu6_mask", MODULE, ptx()?)?;
    // SAFETY: the kernel writes every element.
    let out = unsafe { dev.alloc::<f32>(count)? };
    let n = count as i64;
    let mut b = func.builder();
    b.arg(&g);
    b.arg(&y);
    b.arg(&out);
    b.arg(&n);
    let cfg = LaunchConfig {
        grid_dim: (count.div_ceil(256).clamp(1, 65_535) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the arguments match `relu6_mask`; all three hold `count` values.
    unsafe { b.launch(cfg) }.w()?;
    Ok((wrap(&dev, out), gl.shape().clone()))
}

/// `[Σ dy; Σ dy·x̂]` per channel.
pub fn grad_sums(
    eps: f64,
    (xs, xl): (&CudaStorage, &Layout),
    (ds, dl): (&CudaStorage, &Layout),
    (ss, sl): (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = nchw(xl)?;
    if dl.shape() != xl.shape() || sl.shape().elem_count() != 2 * c {
        bail!("batch norm gradient: sizes do not match")
    }
    let dev = xs.device().clone();
    let (x, dy, st) = (
        f32_view(xs, xl, "input")?,
        f32_view(ds, dl, "gradient")?,
        f32_view(ss, sl, "statistics")?,
    );
    let func = dev.get_or_load_custom_func("bn_grad_sums", MODULE, ptx()?)?;
    // SAFETY: the kernel writes all 2·c values.
    let out = unsafe { dev.alloc::<f32>(2 * c)? };
    let (n_, c_, hw_, eps) = (int(n)?, int(c)?, int(hw)?, eps as f32);
    let mut b = func.builder();
    b.arg(&x);
    b.arg(&dy);
    b.arg(&st);
    b.arg(&out);
    candle_core::builder_arg!(b, n_, c_, hw_, eps);
    // SAFETY: the arguments match `bn_grad_sums`; sizes were checked above.
    unsafe { b.launch(per_channel(c)) }.w()?;
    Ok((wrap(&dev, out), Shape::from((2, c))))
}

/// The input gradient from `aux = [mean; var; γ; Σdy; Σdy·x̂]`.
pub fn grad_input(
    eps: f64,
    (xs, xl): (&CudaStorage, &Layout),
    (ds, dl): (&CudaStorage, &Layout),
    (as_, al): (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = nchw(xl)?;
    if dl.shape() != xl.shape() || al.shape().elem_count() != 5 * c {
        bail!("batch norm gradient: sizes do not match")
    }
    let dev = xs.device().clone();
    let (x, dy, aux) = (
        f32_view(xs, xl, "input")?,
        f32_view(ds, dl, "gradient")?,
        f32_view(as_, al, "statistics")?,
    );
    let func = dev.get_or_load_custom_func("bn_grad_input", MODULE, ptx()?)?;
    // SAFETY: the kernel writes every element.
    let dx = unsafe { dev.alloc::<f32>(n * c * hw)? };
    let (c_, hw_, planes) = (int(c)?, int(hw)?, (n * c) as i64);
    let (m, eps) = ((n * hw) as f32, eps as f32);
    let mut b = func.builder();
    b.arg(&x);
    b.arg(&dy);
    b.arg(&aux);
    b.arg(&dx);
    candle_core::builder_arg!(b, c_, hw_, planes, m, eps);
    // SAFETY: the arguments match `bn_grad_input`; sizes were checked above.
    unsafe { b.launch(plane_grid(hw, n * c)) }.w()?;
    Ok((wrap(&dev, dx), xl.shape().clone()))
}
