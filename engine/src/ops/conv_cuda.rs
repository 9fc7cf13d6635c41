//! CUDA kernels of the folded (inference) convolutions, compiled at run time with NVRTC:
//! - the 1×1 convolution's epilogue: per-channel bias and optional ReLU6 applied in place to
//!   cuBLAS's output in one pass (candle would take a broadcast add and a two-kernel clamp);
//! - a direct dense convolution for layers with few inputs per output (the stem: 3 → 32, 3×3,
//!   stride 2), where candle's im2col + gemm cost a fifth of the network;
//! - the channels-last (NHWC) path of frozen MobileNetV2 blocks: stem (NCHW in, NHWC out),
//!   depthwise, and the epilogue — so each 1×1 convolution is one large matrix product over all
//!   pixels of the batch instead of a batch of small ones.
#![allow(unsafe_code)]

use super::depthwise_cuda::{PRELUDE, plane_grid};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp3, InplaceOp2, Layout, Result, Shape, bail,
};
use std::sync::OnceLock;

const MODULE: &str = "lathe_conv";
/// Output channels per thread of `dense_last` (`DENSE_GROUP` in SOURCE).
const DENSE_GROUP: usize = 8;
/// Shared memory a block may use without opting in (48 KiB on every CUDA GPU).
const DENSE_SHARED_LIMIT: usize = 48 * 1024;

/// The kernels (CUDA C, after `PRELUDE`); the `.cu` file keeps them readable as C.
const SOURCE: &str = include_str!("conv_cuda.cu");

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    crate::ops::nvrtc::compiled(
        &PTX,
        || format!("{PRELUDE}{SOURCE}"),
        "the convolution CUDA kernels",
    )
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

fn suffix(s: &CudaStorageSlice) -> Result<&'static str> {
    crate::ops::nvrtc::dtype_suffix(s, "convolution")
}

/// Launch shape of the channels-last kernels: x over one image's elements, y over images.
fn image_grid(per_image: usize, images: usize) -> LaunchConfig {
    plane_grid(per_image, images)
}

/// `y += bias` per channel, then ReLU6 if asked, in place (CUDA only). `y` is `[N,C,H,W]`, or
/// `[N,H,W,C]` with `channels_last`.
#[derive(Clone, Copy, Debug)]
pub struct BiasAct {
    pub relu6: bool,
    pub channels_last: bool,
}

impl BiasAct {
    fn launch<T: DeviceRepr, B: DeviceRepr>(
        &self,
        dev: &CudaDevice,
        y: &mut CudaSlice<T>,
        b: &CudaSlice<B>,
        (n, c, plane): (usize, usize, usize),
        suffix: &str,
    ) -> Result<()> {
        let relu6 = self.relu6 as i32;
        if self.channels_last {
            let func =
                dev.get_or_load_custom_func(&format!("bias_act_last_{suffix}"), MODULE, ptx()?)?;
            let per_image = plane * c;
            let cfg = image_grid(per_image, n);
            let (n, per_image, c) = (n as i64, int(per_image)?, int(c)?);
            let mut builder = func.builder();
            builder.arg(y);
            builder.arg(b);
            candle_core::builder_arg!(builder, n, per_image, c, relu6);
            // SAFETY: the arguments match `bias_act_last_*` in SOURCE; `y` holds
            // n × per_image elements and `b` holds `c` (checked by the caller).
            unsafe { builder.launch(cfg) }.w()?;
        } else {
            let func =
                dev.get_or_load_custom_func(&format!("bias_act_{suffix}"), MODULE, ptx()?)?;
            let rows = n * c;
            let cfg = plane_grid(plane, rows);
            let (c, plane, rows) = (int(c)?, int(plane)?, rows as i64);
            let mut builder = func.builder();
            builder.arg(y);
            builder.arg(b);
            candle_core::builder_arg!(builder, c, plane, rows, relu6);
            // SAFETY: the arguments match `bias_act_*` in SOURCE; `y` holds rows × plane
            // elements and `b` holds `c` (checked by the caller).
            unsafe { builder.launch(cfg) }.w()?;
        }
        Ok(())
    }
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
        let (n, a, b, d) = l1.shape().dims4()?;
        let (c, plane) = if self.channels_last {
            (d, a * b)
        } else {
            (a, b * d)
        };
        if l1.contiguous_offsets() != Some((0, n * c * plane))
            || l2.contiguous_offsets() != Some((0, c))
        {
            bail!("conv-bias-act: output and bias must be contiguous, bias [{c}]")
        }
        let dev = s1.device().clone();
        let sizes = (n, c, plane);
        // Channels-last: the bias is f32 whatever the output's dtype; NCHW: the output's dtype.
        match (&mut s1.slice, &s2.slice, self.channels_last) {
            (CudaStorageSlice::F32(y), CudaStorageSlice::F32(b), _) => {
                self.launch(&dev, y, b, sizes, "f32")
            }
            (CudaStorageSlice::BF16(y), CudaStorageSlice::BF16(b), false) => {
                self.launch(&dev, y, b, sizes, "bf16")
            }
            (CudaStorageSlice::BF16(y), CudaStorageSlice::F32(b), true) => {
                self.launch(&dev, y, b, sizes, "bf16")
            }
            (CudaStorageSlice::F16(y), CudaStorageSlice::F16(b), false) => {
                self.launch(&dev, y, b, sizes, "f16")
            }
            (CudaStorageSlice::F16(y), CudaStorageSlice::F32(b), true) => {
                self.launch(&dev, y, b, sizes, "f16")
            }
            _ => bail!(
                "conv-bias-act: f32, bf16 or f16 output with a bias of its dtype (f32 when channels-last)"
            ),
        }
    }
}

/// Which convolution kernel a [`ConvBias`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvLayout {
    /// Dense convolution, NCHW in and out (`dense_*`).
    Dense,
    /// Dense convolution, NCHW in, NHWC out (`dense_last_*`): the channels-last stem.
    DenseToLast,
    /// Depthwise convolution, NHWC in and out (`dw_last_*`); the kernel is `[C,1,kh,kw]`.
    DepthwiseLast,
}

/// Direct convolution + bias (+ ReLU6) with symmetric zero padding (CUDA only): `x`, kernel
/// `k [Co,Ci,kh,kw]` and bias `[Co]`. Meant for few input channels per output (the stem and
/// depthwise layers).
#[derive(Clone, Copy, Debug)]
pub struct ConvBias {
    pub layout: ConvLayout,
    pub stride: usize,
    pub padding: usize,
    pub relu6: bool,
}

impl ConvBias {
    fn out(&self, i: usize, k: usize) -> Result<usize> {
        let padded = i + 2 * self.padding;
        if padded < k || self.stride == 0 {
            bail!("convolution: input {i} is smaller than kernel {k}")
        }
        Ok((padded - k) / self.stride + 1)
    }

    /// (n, input channels, h, w) of `x` and the output shape.
    fn shapes(
        &self,
        x: &Layout,
        k: &Layout,
        b: &Layout,
    ) -> Result<((usize, usize, usize, usize), Shape)> {
        let (kco, kci, kh, kw) = k.shape().dims4()?;
        let (n, ci, h, w) = match self.layout {
            ConvLayout::DepthwiseLast => {
                let (n, h, w, c) = x.shape().dims4()?;
                (n, c, h, w)
            }
            _ => x.shape().dims4()?,
        };
        let (co, fits) = match self.layout {
            ConvLayout::DepthwiseLast => (ci, kco == ci && kci == 1),
            _ => (kco, kci == ci),
        };
        if !fits || b.shape().elem_count() != co {
            bail!(
                "convolution: kernel {:?} / bias {:?} do not fit input {:?}",
                k.shape(),
                b.shape(),
                x.shape()
            )
        }
        let (ho, wo) = (self.out(h, kh)?, self.out(w, kw)?);
        let shape = match self.layout {
            ConvLayout::Dense => Shape::from((n, co, ho, wo)),
            ConvLayout::DenseToLast | ConvLayout::DepthwiseLast => Shape::from((n, ho, wo, co)),
        };
        Ok(((n, ci, h, w), shape))
    }

    #[allow(clippy::too_many_arguments)]
    fn launch<T: DeviceRepr + candle_core::WithDType, B: DeviceRepr>(
        &self,
        dev: &CudaDevice,
        x: CudaView<'_, T>,
        k: CudaView<'_, T>,
        b: CudaView<'_, B>,
        (n, ci, h, w): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        out: &Shape,
        suffix: &str,
    ) -> Result<CudaSlice<T>> {
        let (name, co, ho, wo, cfg) = match self.layout {
            ConvLayout::Dense => {
                let (_, co, ho, wo) = out.dims4()?;
                ("dense", co, ho, wo, plane_grid(ho * wo, n * co))
            }
            ConvLayout::DenseToLast => {
                let (_, ho, wo, co) = out.dims4()?;
                let groups = co.div_ceil(DENSE_GROUP);
                let mut cfg = image_grid(ho * wo * groups, n);
                // The kernel and bias, staged in shared memory.
                let shared = (co * ci * kh * kw + co) * std::mem::size_of::<f32>();
                if shared > DENSE_SHARED_LIMIT {
                    bail!(
                        "convolution: a {co}×{ci}×{kh}×{kw} kernel is too large for the direct \
                         channels-last kernel (it is meant for the stem)"
                    )
                }
                cfg.shared_mem_bytes = shared as u32;
                ("dense_last", co, ho, wo, cfg)
            }
            ConvLayout::DepthwiseLast => {
                let (_, ho, wo, co) = out.dims4()?;
                if (kh, kw) == (3, 3) && (self.stride == 1 || self.stride == 2) {
                    return self.launch_dw3(dev, (x, k, b), (n, ci, h, w), (ho, wo), out, suffix);
                }
                ("dw_last", co, ho, wo, image_grid(ho * wo * co, n))
            }
        };
        let func = dev.get_or_load_custom_func(&format!("{name}_{suffix}"), MODULE, ptx()?)?;
        // SAFETY: every element is written by the kernel before it is read.
        let y = unsafe { dev.alloc::<T>(out.elem_count())? };
        let (n_, ci_, h_, w_, co_) = (int(n)?, int(ci)?, int(h)?, int(w)?, int(co)?);
        let (kh_, kw_, ho_, wo_) = (int(kh)?, int(kw)?, int(ho)?, int(wo)?);
        let (s, p, relu6) = (int(self.stride)?, int(self.padding)?, self.relu6 as i32);
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&k);
        builder.arg(&b);
        builder.arg(&y);
        for v in [&n_, &ci_, &h_, &w_] {
            builder.arg(v);
        }
        if self.layout != ConvLayout::DepthwiseLast {
            builder.arg(&co_);
        }
        for v in [&kh_, &kw_, &ho_, &wo_, &s, &p, &relu6] {
            builder.arg(v);
        }
        // SAFETY: the arguments match `dense_*`, `dense_last_*` or `dw_last_*` in SOURCE (the
        // depthwise kernel takes no separate output-channel count); sizes were checked.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(y)
    }
}

impl ConvBias {
    /// The 3×3, stride 1 or 2, channels-last depthwise kernel (`dw3_last_s*`): four output
    /// pixels per thread.
    #[allow(clippy::type_complexity)]
    fn launch_dw3<T: DeviceRepr + candle_core::WithDType, B: DeviceRepr>(
        &self,
        dev: &CudaDevice,
        (x, k, b): (CudaView<'_, T>, CudaView<'_, T>, CudaView<'_, B>),
        (n, c, h, w): (usize, usize, usize, usize),
        (ho, wo): (usize, usize),
        out: &Shape,
        suffix: &str,
    ) -> Result<CudaSlice<T>> {
        let name = format!("dw3_last_s{}_{suffix}", self.stride);
        let func = dev.get_or_load_custom_func(&name, MODULE, ptx()?)?;
        let cfg = image_grid(ho * wo.div_ceil(4) * c, n);
        // SAFETY: every element is written by the kernel before it is read.
        let y = unsafe { dev.alloc::<T>(out.elem_count())? };
        let (n_, c_, h_, w_) = (int(n)?, int(c)?, int(h)?, int(w)?);
        let (ho_, wo_, p, relu6) = (int(ho)?, int(wo)?, int(self.padding)?, self.relu6 as i32);
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&k);
        builder.arg(&b);
        builder.arg(&y);
        for v in [&n_, &c_, &h_, &w_, &ho_, &wo_, &p, &relu6] {
            builder.arg(v);
        }
        // SAFETY: the arguments match `dw3_last_s*` in SOURCE; sizes were checked by `shapes`.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(y)
    }
}

impl CustomOp3 for ConvBias {
    fn name(&self) -> &'static str {
        "conv-bias-cuda"
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
        bail!("conv-bias-cuda runs on CUDA only (the CPU path uses its own convolutions)")
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
        let (xd, shape) = self.shapes(l1, l2, l3)?;
        let (_, _, kh, kw) = l2.shape().dims4()?;
        let dev = s1.device().clone();
        let sfx = suffix(&s1.slice)?;
        macro_rules! go {
            ($variant:ident, $x:expr, $k:expr, $b:expr) => {
                CudaStorageSlice::$variant(self.launch(
                    &dev,
                    view($x, l1, "input")?,
                    view($k, l2, "kernel")?,
                    view($b, l3, "bias")?,
                    xd,
                    (kh, kw),
                    &shape,
                    sfx,
                )?)
            };
        }
        // Channels-last kernels take an f32 bias; the NCHW dense kernel one of the input's dtype.
        let f32_bias = self.layout != ConvLayout::Dense;
        let slice = match (&s1.slice, &s2.slice, &s3.slice) {
            (CudaStorageSlice::F32(x), CudaStorageSlice::F32(k), CudaStorageSlice::F32(b)) => {
                go!(F32, x, k, b)
            }
            (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(k), CudaStorageSlice::BF16(b))
                if !f32_bias =>
            {
                go!(BF16, x, k, b)
            }
            (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(k), CudaStorageSlice::F32(b))
                if f32_bias =>
            {
                go!(BF16, x, k, b)
            }
            (CudaStorageSlice::F16(x), CudaStorageSlice::F16(k), CudaStorageSlice::F16(b))
                if !f32_bias =>
            {
                go!(F16, x, k, b)
            }
            (CudaStorageSlice::F16(x), CudaStorageSlice::F16(k), CudaStorageSlice::F32(b))
                if f32_bias =>
            {
                go!(F16, x, k, b)
            }
            _ => bail!(
                "convolution on CUDA: f32, bf16 or f16 input and kernel of one dtype, bias of that dtype (f32 for channels-last)"
            ),
        };
        Ok((CudaStorage { slice, device: dev }, shape))
    }
}
