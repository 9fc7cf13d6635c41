//! CUDA kernels of the folded inference convolutions other than depthwise, compiled at run time
//! with NVRTC: the 1×1 convolution's epilogue (per-channel bias and optional ReLU6 applied in
//! place to cuBLAS's output in one pass, where candle would take a broadcast add and a
//! two-kernel clamp) and a direct dense convolution for layers with few input channels (the
//! stem: 3 → 32, 3×3, stride 2), where candle's im2col + gemm costs a fifth of the network.
#![allow(unsafe_code)]

use super::depthwise_cuda::{PRELUDE, plane_grid};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp3, InplaceOp2, Layout, Result, Shape, bail,
};
use std::sync::OnceLock;

const MODULE: &str = "lathe_conv";

const SOURCE: &str = r#"
// Grid: x over the pixels of a plane, y over the (image, channel) planes.
template <typename T>
__device__ void bias_act(T* y, const T* b, int c, int plane, long rows, int relu6) {
    for (long row = blockIdx.y; row < rows; row += gridDim.y) {
        const float bias = ld(b, (long)(row % c));
        T* yp = y + row * plane;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < plane;
             i += blockDim.x * gridDim.x) {
            float v = ld(yp, i) + bias;
            if (relu6) v = fminf(fmaxf(v, 0.f), 6.f);
            st(yp, i, v);
        }
    }
}

// Direct convolution, one thread per output pixel; y over (image, output channel) planes.
template <typename T>
__device__ void dense(const T* x, const T* k, const T* b, T* y, int n, int ci, int h, int w,
                      int co, int kh, int kw, int ho, int wo, int s, int p, int relu6) {
    const int spatial = ho * wo;
    const long planes = (long)n * co;
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int o = (int)(plane % co);
        const long img = plane / co;
        const T* xi = x + img * ci * h * w;
        const T* ko = k + (long)o * ci * kh * kw;
        const float bias = ld(b, o);
        T* yp = y + plane * spatial;
        for (int pos = blockIdx.x * blockDim.x + threadIdx.x; pos < spatial;
             pos += blockDim.x * gridDim.x) {
            const int oy = pos / wo, ox = pos - oy * wo;
            float acc = bias;
            for (int c = 0; c < ci; ++c) {
                const T* xc = xi + (long)c * h * w;
                const T* kc = ko + c * kh * kw;
                for (int ky = 0; ky < kh; ++ky) {
                    const int iy = oy * s + ky - p;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < kw; ++kx) {
                        const int ix = ox * s + kx - p;
                        if (ix < 0 || ix >= w) continue;
                        acc += ld(xc, iy * w + ix) * ld(kc, ky * kw + kx);
                    }
                }
            }
            if (relu6) acc = fminf(fmaxf(acc, 0.f), 6.f);
            st(yp, pos, acc);
        }
    }
}

#define INSTANCE(T, N)                                                                         \
extern "C" __global__ void bias_act_##N(T* y, const T* b, int c, int plane, long rows,         \
    int relu6) { bias_act<T>(y, b, c, plane, rows, relu6); }                                    \
extern "C" __global__ void dense_##N(const T* x, const T* k, const T* b, T* y, int n, int ci,  \
    int h, int w, int co, int kh, int kw, int ho, int wo, int s, int p, int relu6) {            \
    dense<T>(x, k, b, y, n, ci, h, w, co, kh, kw, ho, wo, s, p, relu6); }
INSTANCE(float, f32)
INSTANCE(bf16, bf16)
INSTANCE(f16, f16)
"#;

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(format!("{PRELUDE}{SOURCE}"))
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| candle_core::Error::Msg(format!("compiling the convolution CUDA kernels: {e}")))
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg("convolution: size too large".into()))
}

fn view<'a, T>(s: &'a CudaSlice<T>, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.slice(a..b)),
        None => bail!("convolution: {what} must be contiguous"),
    }
}

/// `y [N,C,H,W] += bias [C]`, then ReLU6 if asked, in place (CUDA only).
#[derive(Clone, Copy, Debug)]
pub struct BiasAct {
    pub relu6: bool,
}

fn launch_bias_act<T: DeviceRepr>(
    dev: &CudaDevice,
    y: &mut CudaSlice<T>,
    b: &CudaSlice<T>,
    (rows, plane, c): (usize, usize, usize),
    relu6: bool,
    suffix: &str,
) -> Result<()> {
    let func = dev.get_or_load_custom_func(&format!("bias_act_{suffix}"), MODULE, ptx()?)?;
    let cfg = plane_grid(plane, rows);
    let (c, plane, rows, relu6) = (int(c)?, int(plane)?, rows as i64, relu6 as i32);
    let mut builder = func.builder();
    builder.arg(y);
    builder.arg(b);
    candle_core::builder_arg!(builder, c, plane, rows, relu6);
    // SAFETY: the arguments match `bias_act_*` in SOURCE; `y` holds rows × plane elements and
    // `b` holds `c` (checked by the caller).
    unsafe { builder.launch(cfg) }.w()?;
    Ok(())
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "conv-bias-act"
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<()> {
        bail!("conv-bias-act runs on CUDA only (the CPU path fuses it into the gemm)")
    }

    fn cuda_fwd(
        &self,
        s1: &mut CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (n, c, h, w) = l1.shape().dims4()?;
        if l1.contiguous_offsets() != Some((0, n * c * h * w))
            || l2.contiguous_offsets() != Some((0, c))
        {
            bail!("conv-bias-act: output and bias must be contiguous, bias [{c}]")
        }
        let dev = s1.device().clone();
        let sizes = (n * c, h * w, c);
        match (&mut s1.slice, &s2.slice) {
            (CudaStorageSlice::F32(y), CudaStorageSlice::F32(b)) => {
                launch_bias_act(&dev, y, b, sizes, self.relu6, "f32")
            }
            (CudaStorageSlice::BF16(y), CudaStorageSlice::BF16(b)) => {
                launch_bias_act(&dev, y, b, sizes, self.relu6, "bf16")
            }
            (CudaStorageSlice::F16(y), CudaStorageSlice::F16(b)) => {
                launch_bias_act(&dev, y, b, sizes, self.relu6, "f16")
            }
            _ => bail!("conv-bias-act: f32, bf16 or f16 of one dtype only"),
        }
    }
}

/// Direct convolution + bias (+ ReLU6) with symmetric zero padding: `x [N,Ci,H,W]`,
/// `k [Co,Ci,kh,kw]`, `b [Co]` → `[N,Co,Ho,Wo]` (CUDA only; meant for few input channels).
#[derive(Clone, Copy, Debug)]
pub struct DenseConvBias {
    pub stride: usize,
    pub padding: usize,
    pub relu6: bool,
}

impl DenseConvBias {
    fn out(&self, i: usize, k: usize) -> Result<usize> {
        let padded = i + 2 * self.padding;
        if padded < k || self.stride == 0 {
            bail!("convolution: input {i} is smaller than kernel {k}")
        }
        Ok((padded - k) / self.stride + 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch<T: DeviceRepr + candle_core::WithDType>(
        &self,
        dev: &CudaDevice,
        x: CudaView<'_, T>,
        k: CudaView<'_, T>,
        b: CudaView<'_, T>,
        (n, ci, h, w): (usize, usize, usize, usize),
        (co, kh, kw): (usize, usize, usize),
        suffix: &str,
    ) -> Result<(CudaSlice<T>, Shape)> {
        let (ho, wo) = (self.out(h, kh)?, self.out(w, kw)?);
        let func = dev.get_or_load_custom_func(&format!("dense_{suffix}"), MODULE, ptx()?)?;
        // SAFETY: every element is written by the kernel before it is read.
        let y = unsafe { dev.alloc::<T>(n * co * ho * wo)? };
        let cfg = plane_grid(ho * wo, n * co);
        let (n_, ci_, h_, w_, co_) = (int(n)?, int(ci)?, int(h)?, int(w)?, int(co)?);
        let (kh_, kw_, ho_, wo_) = (int(kh)?, int(kw)?, int(ho)?, int(wo)?);
        let (s, p, relu6) = (int(self.stride)?, int(self.padding)?, self.relu6 as i32);
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&k);
        builder.arg(&b);
        builder.arg(&y);
        candle_core::builder_arg!(
            builder, n_, ci_, h_, w_, co_, kh_, kw_, ho_, wo_, s, p, relu6
        );
        // SAFETY: the arguments match `dense_*` in SOURCE; the sizes were checked above.
        unsafe { builder.launch(cfg) }.w()?;
        Ok((y, Shape::from((n, co, ho, wo))))
    }
}

impl CustomOp3 for DenseConvBias {
    fn name(&self) -> &'static str {
        "dense-conv-bias"
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
        bail!("dense-conv-bias runs on CUDA only (the CPU path uses candle's convolution)")
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
        let xd = l1.shape().dims4()?;
        let (co, ci, kh, kw) = l2.shape().dims4()?;
        if ci != xd.1 || l3.shape().elem_count() != co {
            bail!(
                "convolution: kernel {:?} / bias {:?} do not fit input {:?}",
                l2.shape(),
                l3.shape(),
                l1.shape()
            )
        }
        let dev = s1.device().clone();
        let kd = (co, kh, kw);
        let (slice, shape) = match (&s1.slice, &s2.slice, &s3.slice) {
            (CudaStorageSlice::F32(x), CudaStorageSlice::F32(k), CudaStorageSlice::F32(b)) => {
                let (y, s) = self.launch(
                    &dev,
                    view(x, l1, "input")?,
                    view(k, l2, "kernel")?,
                    view(b, l3, "bias")?,
                    xd,
                    kd,
                    "f32",
                )?;
                (CudaStorageSlice::F32(y), s)
            }
            (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(k), CudaStorageSlice::BF16(b)) => {
                let (y, s) = self.launch(
                    &dev,
                    view(x, l1, "input")?,
                    view(k, l2, "kernel")?,
                    view(b, l3, "bias")?,
                    xd,
                    kd,
                    "bf16",
                )?;
                (CudaStorageSlice::BF16(y), s)
            }
            (CudaStorageSlice::F16(x), CudaStorageSlice::F16(k), CudaStorageSlice::F16(b)) => {
                let (y, s) = self.launch(
                    &dev,
                    view(x, l1, "input")?,
                    view(k, l2, "kernel")?,
                    view(b, l3, "bias")?,
                    xd,
                    kd,
                    "f16",
                )?;
                (CudaStorageSlice::F16(y), s)
            }
            _ => bail!("convolution on CUDA: f32, bf16 or f16 operands of one dtype only"),
        };
        Ok((CudaStorage { slice, device: dev }, shape))
    }
}
