//! CUDA kernels of a frozen MobileNetV2 block run channels-last, fused so each block touches
//! its large tensors as few times as it can (compiled at run time with NVRTC):
//! - the 3×3 depthwise convolution reading the expand 1×1 product *raw* and applying that
//!   layer's bias + ReLU6 as it loads each value, so the expanded tensor (6× the block's width,
//!   the largest in the network) is never rewritten by an epilogue pass; four channels per
//!   thread with one vector load each, four output pixels per thread;
//! - the block's close: project bias + residual add (+ the cast of the stream) in one pass over
//!   the raw project product, where it took an epilogue, a cast, an add and a cast.
#![allow(unsafe_code)]

use super::depthwise_cuda::{PRELUDE, plane_grid};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CpuStorage, CudaStorage, CustomOp2, CustomOp3, Layout, Result, Shape, bail};
use std::sync::OnceLock;

const MODULE: &str = "lathe_block";
/// Channels per thread of the vector kernels: every channel count in MobileNetV2 is a multiple.
pub const VEC: usize = 4;

const SOURCE: &str = r#"
// Four neighbouring values as f32, one 16-byte (f32) or 8-byte (bf16, f16) load or store; the
// index must be a multiple of 4 and the base pointer aligned to it (checked by the launch).
__device__ __forceinline__ void ld4(const float* p, long i, float* o) {
    const float4 v = *reinterpret_cast<const float4*>(p + i);
    o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
}
__device__ __forceinline__ void st4(float* p, long i, const float* o) {
    *reinterpret_cast<float4*>(p + i) = make_float4(o[0], o[1], o[2], o[3]);
}
__device__ __forceinline__ unsigned bf16_bits(float v) {
    unsigned u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}
__device__ __forceinline__ void ld4(const bf16* p, long i, float* o) {
    const uint2 v = *reinterpret_cast<const uint2*>(p + i);
    o[0] = __uint_as_float(v.x << 16); o[1] = __uint_as_float(v.x & 0xffff0000u);
    o[2] = __uint_as_float(v.y << 16); o[3] = __uint_as_float(v.y & 0xffff0000u);
}
__device__ __forceinline__ void st4(bf16* p, long i, const float* o) {
    uint2 v;
    v.x = bf16_bits(o[0]) | (bf16_bits(o[1]) << 16);
    v.y = bf16_bits(o[2]) | (bf16_bits(o[3]) << 16);
    *reinterpret_cast<uint2*>(p + i) = v;
}
__device__ __forceinline__ float h2f(unsigned h) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"((u16)h)); return f;
}
__device__ __forceinline__ unsigned f2h(float v) {
    u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); return h;
}
__device__ __forceinline__ void ld4(const f16* p, long i, float* o) {
    const uint2 v = *reinterpret_cast<const uint2*>(p + i);
    o[0] = h2f(v.x & 0xffffu); o[1] = h2f(v.x >> 16);
    o[2] = h2f(v.y & 0xffffu); o[3] = h2f(v.y >> 16);
}
__device__ __forceinline__ void st4(f16* p, long i, const float* o) {
    uint2 v;
    v.x = f2h(o[0]) | (f2h(o[1]) << 16);
    v.y = f2h(o[2]) | (f2h(o[3]) << 16);
    *reinterpret_cast<uint2*>(p + i) = v;
}

// 3×3 depthwise, NHWC in and out, stride S, symmetric zero padding p. Each thread computes 4
// channels × 4 neighbouring output pixels: every vector it loads serves up to 3 outputs and the
// 36 taps (f32 whatever the activations' dtype: they cost no bandwidth, and rounding them to
// bf16 moved predictions) sit in registers. `bias` is [2, C] f32: row 0 this layer's bias; row 1, when `pre`,
// the bias of the 1×1 layer that produced `x`, applied with its ReLU6 on load (zero padding stays
// zero, as in the unfused network).
template <typename T, int S>
__device__ void dw3v(const T* x, const float* k, const float* bias, T* y, int n, int c, int h, int w,
                     int ho, int wo, int p, int pre, int relu6) {
    constexpr int OX = 4, SPAN = (OX - 1) * S + 3;
    const int cv = c / 4;
    const int wg = (wo + OX - 1) / OX;
    const int per_image = ho * wg * cv;
    for (long img = blockIdx.y; img < n; img += gridDim.y) {
        const T* xi = x + img * h * w * c;
        T* yi = y + img * ho * wo * c;
        for (int it = blockIdx.x * blockDim.x + threadIdx.x; it < per_image;
             it += blockDim.x * gridDim.x) {
            const int ch = (it % cv) * 4, rest = it / cv;
            const int gx = rest % wg, oy = rest / wg;
            const int ox0 = gx * OX;
            float wk[4][9], pb[4], acc[OX][4];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
#pragma unroll
                for (int t = 0; t < 9; ++t) wk[q][t] = k[(ch + q) * 9 + t];
                pb[q] = pre ? bias[c + ch + q] : 0.f;
                const float b = bias[ch + q];
#pragma unroll
                for (int j = 0; j < OX; ++j) acc[j][q] = b;
            }
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int iy = oy * S + ky - p;
                if (iy < 0 || iy >= h) continue;
                const T* row = xi + (long)iy * w * c + ch;
#pragma unroll
                for (int cx = 0; cx < SPAN; ++cx) {
                    const int ix = ox0 * S + cx - p;
                    float v[4] = {0.f, 0.f, 0.f, 0.f};
                    if (ix >= 0 && ix < w) {
                        ld4(row, (long)ix * c, v);
                        if (pre) {
#pragma unroll
                            for (int q = 0; q < 4; ++q) v[q] = fminf(fmaxf(v[q] + pb[q], 0.f), 6.f);
                        }
                    }
#pragma unroll
                    for (int j = 0; j < OX; ++j) {
                        const int kx = cx - j * S;
                        if (kx >= 0 && kx < 3) {
#pragma unroll
                            for (int q = 0; q < 4; ++q) acc[j][q] += v[q] * wk[q][ky * 3 + kx];
                        }
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < OX; ++j) {
                const int ox = ox0 + j;
                if (ox < wo) {
                    if (relu6) {
#pragma unroll
                        for (int q = 0; q < 4; ++q) acc[j][q] = fminf(fmaxf(acc[j][q], 0.f), 6.f);
                    }
                    st4(yi, ((long)oy * wo + ox) * c + ch, acc[j]);
                }
            }
        }
    }
}

// The close of a block: out = p + bias (+ r), p the raw project product [N·H·W, C] — or, with
// `halves`, [N·H·W, 2C] from the high and low parts of the weight, added here; out and r share
// the residual stream's dtype R. Four channels per thread.
template <typename T, typename R>
__device__ void close4(const T* p, const float* bias, const R* r, R* out, long n4, int c,
                       int halves) {
    for (long i = ((long)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x; i < n4;
         i += (long)blockDim.x * gridDim.x * gridDim.y) {
        const long e = i * 4;
        const int ch = (int)(e % c);
        float v[4], s[4] = {0.f, 0.f, 0.f, 0.f};
        if (halves) {
            const long at = (e / c) * 2 * c + ch;
            float lo[4];
            ld4(p, at, v);
            ld4(p, at + c, lo);
#pragma unroll
            for (int q = 0; q < 4; ++q) v[q] += lo[q];
        } else {
            ld4(p, e, v);
        }
        if (r) ld4(r, e, s);
#pragma unroll
        for (int q = 0; q < 4; ++q) v[q] += bias[ch + q] + s[q];
        st4(out, e, v);
    }
}

#define DW(T, N)                                                                               \
extern "C" __global__ void dw3v_s1_##N(const T* x, const float* k, const float* b, T* y, int n,    \
    int c, int h, int w, int ho, int wo, int p, int pre, int relu6) {                           \
    dw3v<T, 1>(x, k, b, y, n, c, h, w, ho, wo, p, pre, relu6); }                                \
extern "C" __global__ void dw3v_s2_##N(const T* x, const float* k, const float* b, T* y, int n,    \
    int c, int h, int w, int ho, int wo, int p, int pre, int relu6) {                           \
    dw3v<T, 2>(x, k, b, y, n, c, h, w, ho, wo, p, pre, relu6); }
#define CLOSE(T, R, N)                                                                         \
extern "C" __global__ void close4_##N(const T* p, const float* b, const R* r, R* out, long n4,  \
    int c, int halves) { close4<T, R>(p, b, r, out, n4, c, halves); }
DW(float, f32)
DW(bf16, bf16)
DW(f16, f16)
CLOSE(float, float, f32_f32)
CLOSE(bf16, bf16, bf16_bf16)
CLOSE(bf16, float, bf16_f32)
CLOSE(f16, f16, f16_f16)
CLOSE(f16, float, f16_f32)
"#;

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    crate::ops::nvrtc::compiled(
        &PTX,
        || format!("{PRELUDE}{SOURCE}"),
        "the block CUDA kernels",
    )
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg("fused block: size too large".into()))
}

/// The contiguous view of `s` under `l`, which must start on a [`VEC`]-element boundary so the
/// kernels' vector loads are aligned (candle's allocations are; a view into the middle of one
/// may not be).
fn view<'a, T>(s: &'a CudaSlice<T>, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) if a % VEC == 0 => Ok(s.slice(a..b)),
        Some(_) => bail!("fused block: {what} does not start on a {VEC}-element boundary"),
        None => bail!("fused block: {what} must be contiguous"),
    }
}

fn suffix(s: &CudaStorageSlice) -> Result<&'static str> {
    crate::ops::nvrtc::dtype_suffix(s, "fused block")
}

/// 3×3 depthwise convolution + bias (+ ReLU6), NHWC, stride 1 or 2 (CUDA only), optionally
/// applying the producing 1×1 layer's bias + ReLU6 to its input on load (`pre`). Inputs: `x`
/// `[N,H,W,C]`, the f32 kernel `[C,1,3,3]`, and the f32 biases `[2,C]` (row 0 this
/// layer's; row 1 the producer's, read only with `pre`). `C` must be a multiple of [`VEC`].
#[derive(Clone, Copy, Debug)]
pub struct Depthwise3 {
    pub stride: usize,
    pub padding: usize,
    pub pre: bool,
    pub relu6: bool,
}

impl Depthwise3 {
    /// Whether the kernel takes this geometry.
    pub fn fits(kernel: (usize, usize), stride: usize, channels: usize) -> bool {
        kernel == (3, 3) && (stride == 1 || stride == 2) && channels.is_multiple_of(VEC)
    }

    fn launch<T: DeviceRepr + candle_core::WithDType>(
        &self,
        dev: &candle_core::CudaDevice,
        (x, k, b): (CudaView<'_, T>, CudaView<'_, f32>, CudaView<'_, f32>),
        (n, h, w, c): (usize, usize, usize, usize),
        (ho, wo): (usize, usize),
        suffix: &str,
    ) -> Result<CudaSlice<T>> {
        let name = format!("dw3v_s{}_{suffix}", self.stride);
        let func = dev.get_or_load_custom_func(&name, MODULE, ptx()?)?;
        let cfg = plane_grid(ho * wo.div_ceil(4) * (c / VEC), n);
        // SAFETY: every element is written by the kernel before it is read.
        let y = unsafe { dev.alloc::<T>(n * ho * wo * c)? };
        let (n_, c_, h_, w_) = (int(n)?, int(c)?, int(h)?, int(w)?);
        let (ho_, wo_, p) = (int(ho)?, int(wo)?, int(self.padding)?);
        let (pre, relu6) = (self.pre as i32, self.relu6 as i32);
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&k);
        builder.arg(&b);
        builder.arg(&y);
        for v in [&n_, &c_, &h_, &w_, &ho_, &wo_, &p, &pre, &relu6] {
            builder.arg(v);
        }
        // SAFETY: the arguments match `dw3v_s*` in SOURCE; `cuda_fwd` checked the sizes, the
        // channel count's multiple of 4 and the views' alignment.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(y)
    }
}

impl CustomOp3 for Depthwise3 {
    fn name(&self) -> &'static str {
        "depthwise3-nhwc-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        bail!("depthwise3-nhwc-cuda runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (n, h, w, c) = l1.shape().dims4()?;
        let (kc, kci, kh, kw) = l2.shape().dims4()?;
        if (kc, kci) != (c, 1)
            || l3.shape().dims() != [2, c]
            || !Self::fits((kh, kw), self.stride, c)
        {
            bail!(
                "fused depthwise: kernel {:?} / biases {:?} do not fit input {:?}",
                l2.shape(),
                l3.shape(),
                l1.shape()
            )
        }
        let out = |i: usize| {
            (i + 2 * self.padding)
                .checked_sub(3)
                .map(|d| d / self.stride + 1)
        };
        let (Some(ho), Some(wo)) = (out(h), out(w)) else {
            bail!("fused depthwise: input {h}×{w} is smaller than the kernel")
        };
        let dev = s1.device().clone();
        let sfx = suffix(&s1.slice)?;
        let (CudaStorageSlice::F32(k), CudaStorageSlice::F32(b)) = (&s2.slice, &s3.slice) else {
            bail!("fused depthwise: the kernel and biases must be f32")
        };
        let (k, b) = (view(k, l2, "kernel")?, view(b, l3, "biases")?);
        let dims = (n, h, w, c);
        macro_rules! go {
            ($variant:ident, $x:expr) => {
                CudaStorageSlice::$variant(self.launch(
                    &dev,
                    (view($x, l1, "input")?, k, b),
                    dims,
                    (ho, wo),
                    sfx,
                )?)
            };
        }
        let slice = match &s1.slice {
            CudaStorageSlice::F32(x) => go!(F32, x),
            CudaStorageSlice::BF16(x) => go!(BF16, x),
            CudaStorageSlice::F16(x) => go!(F16, x),
            _ => bail!("fused depthwise: the input must be f32, bf16 or f16"),
        };
        Ok((
            CudaStorage { slice, device: dev },
            Shape::from((n, ho, wo, c)),
        ))
    }
}

/// The close of a block (CUDA only): `p + bias`, plus the residual `r` when given, where `p` is
/// the raw project product `[N,H,W,C]` — or, with `halves`, `[N,H,W,2C]` from the high and low
/// parts of a split weight, whose halves are added — and `bias` `[C]` f32. The result has the
/// dtype of the residual stream: `stream` (f32, or `p`'s dtype).
#[derive(Clone, Copy, Debug)]
pub struct Close {
    pub stream: candle_core::DType,
    pub halves: bool,
}

impl Close {
    fn launch<T: DeviceRepr, R: DeviceRepr + candle_core::WithDType>(
        &self,
        dev: &candle_core::CudaDevice,
        (p, b, r): (CudaView<'_, T>, CudaView<'_, f32>, Option<CudaView<'_, R>>),
        (elems, c): (usize, usize),
        name: &str,
    ) -> Result<CudaSlice<R>> {
        let func = dev.get_or_load_custom_func(&format!("close4_{name}"), MODULE, ptx()?)?;
        let n4 = elems / VEC;
        let mut cfg = plane_grid(n4, 1);
        // Grid x × y covers n4 (the kernel strides over both).
        let xs = n4.div_ceil(256);
        cfg.grid_dim = (
            xs.clamp(1, 65_535) as u32,
            xs.div_ceil(65_535).max(1) as u32,
            1,
        );
        // SAFETY: every element is written by the kernel before it is read.
        let out = unsafe { dev.alloc::<R>(elems)? };
        let (n4, c, halves) = (n4 as i64, int(c)?, self.halves as i32);
        let mut builder = func.builder();
        builder.arg(&p);
        builder.arg(&b);
        // A null pointer tells the kernel there is no residual.
        let null = 0u64;
        match &r {
            Some(r) => builder.arg(r),
            None => builder.arg(&null),
        };
        builder.arg(&out);
        candle_core::builder_arg!(builder, n4, c, halves);
        // SAFETY: the arguments match `close4_*` in SOURCE; `p`, `r` and `out` hold `elems`
        // elements, `b` holds `c`, and `c` is a multiple of 4 (checked by the caller).
        unsafe { builder.launch(cfg) }.w()?;
        Ok(out)
    }

    fn run(
        &self,
        p: (&CudaStorage, &Layout),
        b: (&CudaStorage, &Layout),
        r: Option<(&CudaStorage, &Layout)>,
    ) -> Result<(CudaStorage, Shape)> {
        let dims = p.1.shape().dims().to_vec();
        let width = *dims.last().unwrap_or(&0);
        let c = if self.halves { width / 2 } else { width };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = c;
        }
        let shape = Shape::from(out_dims);
        if c == 0
            || !c.is_multiple_of(VEC)
            || (self.halves && width != 2 * c)
            || b.1.shape().elem_count() != c
        {
            bail!("block close: {shape:?} with a bias of {:?}", b.1.shape())
        }
        if let Some((_, rl)) = r
            && rl.shape() != &shape
        {
            bail!(
                "block close: residual {:?} does not match {shape:?}",
                rl.shape()
            )
        }
        let dev = p.0.device().clone();
        let CudaStorageSlice::F32(bs) = &b.0.slice else {
            bail!("block close: the bias must be f32")
        };
        let bv = view(bs, b.1, "bias")?;
        let sizes = (shape.elem_count(), c);
        // One arm per (product dtype, stream dtype) pair the kernels are instantiated for.
        macro_rules! go {
            ($ps:expr, $rv:ident, $name:literal) => {{
                let pv = view($ps, p.1, "product")?;
                let rv = match r {
                    Some((s, l)) => match &s.slice {
                        CudaStorageSlice::$rv(rs) => Some(view(rs, l, "residual")?),
                        _ => bail!("block close: the residual must have the stream's dtype"),
                    },
                    None => None,
                };
                CudaStorageSlice::$rv(self.launch(&dev, (pv, bv, rv), sizes, $name)?)
            }};
        }
        use candle_core::DType::{BF16, F16, F32};
        let slice = match (&p.0.slice, self.stream) {
            (CudaStorageSlice::F32(ps), F32) => go!(ps, F32, "f32_f32"),
            (CudaStorageSlice::BF16(ps), BF16) => go!(ps, BF16, "bf16_bf16"),
            (CudaStorageSlice::BF16(ps), F32) => go!(ps, F32, "bf16_f32"),
            (CudaStorageSlice::F16(ps), F16) => go!(ps, F16, "f16_f16"),
            (CudaStorageSlice::F16(ps), F32) => go!(ps, F32, "f16_f32"),
            (s, stream) => bail!(
                "block close: a {} product with a {stream:?} stream",
                suffix(s)?
            ),
        };
        Ok((CudaStorage { slice, device: dev }, shape))
    }
}

impl CustomOp2 for Close {
    fn name(&self) -> &'static str {
        "block-close-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        bail!("block-close-cuda runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.run((s1, l1), (s2, l2), None)
    }
}

impl CustomOp3 for Close {
    fn name(&self) -> &'static str {
        "block-close-residual-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        bail!("block-close-residual-cuda runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.run((s1, l1), (s2, l2), Some((s3, l3)))
    }
}
