//! CUDA kernels of the depthwise-convolution ops (forward, fused bias + ReLU6, and both
//! gradients), compiled at run time with NVRTC so building Lathe needs no nvcc. Every kernel
//! reads and writes f32, bf16 or f16 and accumulates in f32. One thread per output pixel, blocks
//! laid out per (image, channel) plane, except the kernel gradient: one block per kernel tap,
//! reducing over batch and pixels.
#![allow(unsafe_code)]

use super::depthwise::DwGeometry;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CudaDevice, CudaStorage, Layout, Result, Shape, bail};
use std::sync::OnceLock;

const MODULE: &str = "lathe_depthwise";

/// Loads and stores of f32, bf16 and f16 as f32 (round to nearest even), shared by Lathe's
/// CUDA kernels.
pub(crate) const PRELUDE: &str = r#"
typedef unsigned short u16;
__device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
__device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
struct bf16 { u16 bits; };
__device__ __forceinline__ float ld(const bf16* p, long i) {
    return __uint_as_float(((unsigned)p[i].bits) << 16);
}
__device__ __forceinline__ void st(bf16* p, long i, float v) {
    unsigned u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) { p[i].bits = (u16)((u >> 16) | 0x40); return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    p[i].bits = (u16)(u >> 16);
}
struct f16 { u16 bits; };
__device__ __forceinline__ float ld(const f16* p, long i) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i].bits)); return f;
}
__device__ __forceinline__ void st(f16* p, long i, float v) {
    u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); p[i].bits = h;
}
"#;

const SOURCE: &str = r#"
// Grid: x over the pixels of a plane, y over planes (image, channel), so each thread finds
// its pixel with one 32-bit division and each block reads one channel's taps and bias.
template <typename T>
__device__ void fwd(const T* x, const T* k, const T* bias, T* y, int n, int c, int h, int w,
                    int kh, int kw, int ho, int wo, int s, int p, int has_bias, int relu6) {
    const int spatial = ho * wo;
    const long planes = (long)n * c;
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int ch = (int)(plane % c);
        const T* xp = x + plane * h * w;
        const T* kp = k + (long)ch * kh * kw;
        const float b = has_bias ? ld(bias, ch) : 0.f;
        T* yp = y + plane * spatial;
        for (int pos = blockIdx.x * blockDim.x + threadIdx.x; pos < spatial;
             pos += blockDim.x * gridDim.x) {
            const int oy = pos / wo, ox = pos - oy * wo;
            float acc = b;
            for (int ky = 0; ky < kh; ++ky) {
                const int iy = oy * s + ky - p;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < kw; ++kx) {
                    const int ix = ox * s + kx - p;
                    if (ix < 0 || ix >= w) continue;
                    acc += ld(xp, iy * w + ix) * ld(kp, ky * kw + kx);
                }
            }
            if (relu6) acc = fminf(fmaxf(acc, 0.f), 6.f);
            st(yp, pos, acc);
        }
    }
}

// Same grid as the forward kernel, over the input's pixels.
template <typename T>
__device__ void grad_input(const T* g, const T* k, T* gx, int n, int c, int h, int w, int kh,
                           int kw, int ho, int wo, int s, int p) {
    const int spatial = h * w;
    const long planes = (long)n * c;
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int ch = (int)(plane % c);
        const T* gp = g + plane * ho * wo;
        const T* kp = k + (long)ch * kh * kw;
        T* out = gx + plane * spatial;
        for (int pos = blockIdx.x * blockDim.x + threadIdx.x; pos < spatial;
             pos += blockDim.x * gridDim.x) {
            const int iy = pos / w, ix = pos - iy * w;
            float acc = 0.f;
            for (int ky = 0; ky < kh; ++ky) {
                const int ny = iy + p - ky;
                if (ny < 0 || ny % s != 0) continue;
                const int oy = ny / s;
                if (oy >= ho) continue;
                for (int kx = 0; kx < kw; ++kx) {
                    const int nx = ix + p - kx;
                    if (nx < 0 || nx % s != 0) continue;
                    const int ox = nx / s;
                    if (ox >= wo) continue;
                    acc += ld(gp, oy * wo + ox) * ld(kp, ky * kw + kx);
                }
            }
            st(out, pos, acc);
        }
    }
}

// One block per (channel, tap): sum over batch and output pixels of grad * input.
template <typename T>
__device__ void grad_kernel(const T* x, const T* g, T* gk, int n, int c, int h, int w, int kh,
                            int kw, int ho, int wo, int s, int p) {
    __shared__ float part[256];
    int tap = blockIdx.x;
    int ch = tap / (kh * kw);
    int ky = (tap / kw) % kh;
    int kx = tap % kw;
    long per = (long)ho * wo;
    long total = (long)n * per;
    float acc = 0.f;
    for (long j = threadIdx.x; j < total; j += blockDim.x) {
        long b = j / per; long r = j % per;
        int oy = r / wo, ox = r % wo;
        int iy = oy * s + ky - p, ix = ox * s + kx - p;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
        long plane = b * c + ch;
        acc += ld(g, plane * per + r) * ld(x, (plane * h + iy) * w + ix);
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) st(gk, tap, part[0]);
}

#define INSTANCE(T, N)                                                                          \
extern "C" __global__ void dw_fwd_##N(const T* x, const T* k, const T* b, T* y, int n, int c,  \
    int h, int w, int kh, int kw, int ho, int wo, int s, int p, int hb, int r) {               \
    fwd<T>(x, k, b, y, n, c, h, w, kh, kw, ho, wo, s, p, hb, r); }                              \
extern "C" __global__ void dw_gx_##N(const T* g, const T* k, T* gx, int n, int c, int h,       \
    int w, int kh, int kw, int ho, int wo, int s, int p) {                                      \
    grad_input<T>(g, k, gx, n, c, h, w, kh, kw, ho, wo, s, p); }                                \
extern "C" __global__ void dw_gk_##N(const T* x, const T* g, T* gk, int n, int c, int h,       \
    int w, int kh, int kw, int ho, int wo, int s, int p) {                                      \
    grad_kernel<T>(x, g, gk, n, c, h, w, kh, kw, ho, wo, s, p); }
INSTANCE(float, f32)
INSTANCE(bf16, bf16)
INSTANCE(f16, f16)
"#;

/// The PTX of [`SOURCE`], compiled once per process.
fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    crate::ops::nvrtc::compiled(
        &PTX,
        || format!("{PRELUDE}{SOURCE}"),
        "the depthwise CUDA kernels",
    )
}

/// Sizes of one call, as the kernels take them.
#[derive(Clone, Copy)]
struct Sizes {
    n: i32,
    c: i32,
    h: i32,
    w: i32,
    kh: i32,
    kw: i32,
    ho: i32,
    wo: i32,
    s: i32,
    p: i32,
}

impl Sizes {
    fn new(g: DwGeometry, x: (usize, usize, usize, usize), k: (usize, usize)) -> Result<Self> {
        let (n, c, h, w) = x;
        let (kh, kw) = k;
        let out = |i: usize, kk: usize| -> Result<usize> {
            let padded = i + 2 * g.padding;
            if padded < kk {
                bail!("depthwise conv: input {i} is smaller than kernel {kk}")
            }
            Ok((padded - kk) / g.stride + 1)
        };
        let int = |v: usize| {
            i32::try_from(v)
                .map_err(|_| candle_core::Error::Msg("depthwise conv: size too large".into()))
        };
        Ok(Self {
            n: int(n)?,
            c: int(c)?,
            h: int(h)?,
            w: int(w)?,
            kh: int(kh)?,
            kw: int(kw)?,
            ho: int(out(h, kh)?)?,
            wo: int(out(w, kw)?)?,
            s: int(g.stride)?,
            p: int(g.padding)?,
        })
    }
}

fn view<'a, T>(s: &'a CudaSlice<T>, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.slice(a..b)),
        None => bail!("depthwise conv: {what} must be contiguous"),
    }
}

/// Launch shape of the per-plane kernels: x over the `spatial` pixels of a plane (256 threads
/// a block), y over the `planes` (image, channel) pairs; the kernels loop past 65,535 planes.
pub(crate) fn plane_grid(spatial: usize, planes: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            spatial.div_ceil(256).clamp(1, 65_535) as u32,
            planes.clamp(1, 65_535) as u32,
            1,
        ),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn suffix(s: &CudaStorageSlice) -> Result<&'static str> {
    crate::ops::nvrtc::dtype_suffix(s, "depthwise conv")
}

/// Which kernel a call runs.
#[derive(Clone, Copy)]
enum Kind {
    /// `x`, `k`, optional bias → `y [N,C,Ho,Wo]`.
    Forward { relu6: bool },
    /// `grad [N,C,Ho,Wo]`, `k` → `gx [N,C,H,W]`.
    GradInput,
    /// `x`, `grad` → `gk [C,1,kh,kw]`.
    GradKernel,
}

fn launch<T: DeviceRepr + candle_core::WithDType>(
    dev: &CudaDevice,
    kind: Kind,
    sz: Sizes,
    a: CudaView<'_, T>,
    b: CudaView<'_, T>,
    bias: Option<CudaView<'_, T>>,
    suffix: &str,
) -> Result<CudaSlice<T>> {
    let (n, c, h, w) = (sz.n as usize, sz.c as usize, sz.h as usize, sz.w as usize);
    let (ho, wo, kh, kw) = (
        sz.ho as usize,
        sz.wo as usize,
        sz.kh as usize,
        sz.kw as usize,
    );
    let (name, len, cfg) = match kind {
        Kind::Forward { .. } => ("dw_fwd", n * c * ho * wo, plane_grid(ho * wo, n * c)),
        Kind::GradInput => ("dw_gx", n * c * h * w, plane_grid(h * w, n * c)),
        Kind::GradKernel => (
            "dw_gk",
            c * kh * kw,
            LaunchConfig {
                grid_dim: ((c * kh * kw) as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            },
        ),
    };
    let func = dev.get_or_load_custom_func(&format!("{name}_{suffix}"), MODULE, ptx()?)?;
    // SAFETY: every element is written by the kernel before it is read.
    let out = unsafe { dev.alloc::<T>(len)? };
    let mut builder = func.builder();
    builder.arg(&a);
    builder.arg(&b);
    let has_bias = bias.is_some() as i32;
    let bias_arg = bias.unwrap_or_else(|| b.slice(0..));
    if let Kind::Forward { .. } = kind {
        builder.arg(&bias_arg);
    }
    builder.arg(&out);
    let relu6 = matches!(kind, Kind::Forward { relu6: true }) as i32;
    candle_core::builder_arg!(
        builder, sz.n, sz.c, sz.h, sz.w, sz.kh, sz.kw, sz.ho, sz.wo, sz.s, sz.p
    );
    if let Kind::Forward { .. } = kind {
        builder.arg(&has_bias);
        builder.arg(&relu6);
    }
    // SAFETY: the arguments match the kernel's signature (see SOURCE); sizes were checked.
    unsafe { builder.launch(cfg) }.w()?;
    Ok(out)
}

macro_rules! dispatch {
    ($dev:expr, $kind:expr, $sz:expr, $s1:expr, $l1:expr, $s2:expr, $l2:expr, $bias:expr) => {{
        let suffix = suffix(&$s1.slice)?;
        match (&$s1.slice, &$s2.slice) {
            (CudaStorageSlice::F32(a), CudaStorageSlice::F32(b)) => {
                let bias = match $bias {
                    Some((CudaStorageSlice::F32(v), l)) => Some(view(v, l, "bias")?),
                    Some(_) => bail!("depthwise conv: bias dtype differs from the input's"),
                    None => None,
                };
                CudaStorageSlice::F32(launch(
                    $dev,
                    $kind,
                    $sz,
                    view(a, $l1, "input")?,
                    view(b, $l2, "kernel")?,
                    bias,
                    suffix,
                )?)
            }
            (CudaStorageSlice::BF16(a), CudaStorageSlice::BF16(b)) => {
                let bias = match $bias {
                    Some((CudaStorageSlice::BF16(v), l)) => Some(view(v, l, "bias")?),
                    Some(_) => bail!("depthwise conv: bias dtype differs from the input's"),
                    None => None,
                };
                CudaStorageSlice::BF16(launch(
                    $dev,
                    $kind,
                    $sz,
                    view(a, $l1, "input")?,
                    view(b, $l2, "kernel")?,
                    bias,
                    suffix,
                )?)
            }
            (CudaStorageSlice::F16(a), CudaStorageSlice::F16(b)) => {
                let bias = match $bias {
                    Some((CudaStorageSlice::F16(v), l)) => Some(view(v, l, "bias")?),
                    Some(_) => bail!("depthwise conv: bias dtype differs from the input's"),
                    None => None,
                };
                CudaStorageSlice::F16(launch(
                    $dev,
                    $kind,
                    $sz,
                    view(a, $l1, "input")?,
                    view(b, $l2, "kernel")?,
                    bias,
                    suffix,
                )?)
            }
            _ => {
                bail!("depthwise conv on CUDA: both operands must be f32, bf16 or f16 of one dtype")
            }
        }
    }};
}

fn wrap(slice: CudaStorageSlice, dev: &CudaDevice) -> CudaStorage {
    CudaStorage {
        slice,
        device: dev.clone(),
    }
}

/// Forward: `x [N,C,H,W]`, `k [C,1,kh,kw]`, optional `bias [C]`, optional ReLU6.
pub fn forward(
    g: DwGeometry,
    x: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
    bias: Option<(&CudaStorage, &Layout)>,
    relu6: bool,
) -> Result<(CudaStorage, Shape)> {
    let (_, _, kh, kw) = k.1.shape().dims4()?;
    let sz = Sizes::new(g, x.1.shape().dims4()?, (kh, kw))?;
    let dev = x.0.device();
    let bias = bias.map(|(s, l)| (&s.slice, l));
    let out = dispatch!(dev, Kind::Forward { relu6 }, sz, x.0, x.1, k.0, k.1, bias);
    let shape = Shape::from((sz.n as usize, sz.c as usize, sz.ho as usize, sz.wo as usize));
    Ok((wrap(out, dev), shape))
}

/// Gradient with respect to the input: `grad [N,C,Ho,Wo]`, `k` → `[N,C,h,w]`.
pub fn grad_input(
    g: DwGeometry,
    (h, w): (usize, usize),
    grad: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let (n, c, _, _) = grad.1.shape().dims4()?;
    let (_, _, kh, kw) = k.1.shape().dims4()?;
    let sz = Sizes::new(g, (n, c, h, w), (kh, kw))?;
    let dev = grad.0.device();
    let out = dispatch!(
        dev,
        Kind::GradInput,
        sz,
        grad.0,
        grad.1,
        k.0,
        k.1,
        None::<(&CudaStorageSlice, &Layout)>
    );
    Ok((wrap(out, dev), Shape::from((n, c, h, w))))
}

/// Gradient with respect to the kernel: `x [N,C,H,W]`, `grad` → `[C,1,kh,kw]`.
pub fn grad_kernel(
    g: DwGeometry,
    (kh, kw): (usize, usize),
    x: (&CudaStorage, &Layout),
    grad: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let dims = x.1.shape().dims4()?;
    let sz = Sizes::new(g, dims, (kh, kw))?;
    let dev = x.0.device();
    let out = dispatch!(
        dev,
        Kind::GradKernel,
        sz,
        x.0,
        x.1,
        grad.0,
        grad.1,
        None::<(&CudaStorageSlice, &Layout)>
    );
    Ok((wrap(out, dev), Shape::from((dims.1, 1, kh, kw))))
}
