//! CUDA epilogue of the inference 1×1 convolution: the per-channel bias and optional ReLU6,
//! applied in place to cuBLAS's output in one pass. Without it candle takes a broadcast add and
//! a two-kernel clamp — three more passes over the largest activations of the network.
#![allow(unsafe_code)]

use super::depthwise_cuda::PRELUDE;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CpuStorage, CudaStorage, InplaceOp2, Layout, Result, bail};
use std::sync::OnceLock;

const MODULE: &str = "lathe_pointwise";

const SOURCE: &str = r#"
template <typename T>
__device__ void bias_act(T* y, const T* b, long total, long plane, int c, int relu6) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
         i += (long)blockDim.x * gridDim.x) {
        float v = ld(y, i) + ld(b, (long)((i / plane) % c));
        if (relu6) v = fminf(fmaxf(v, 0.f), 6.f);
        st(y, i, v);
    }
}
#define INSTANCE(T, N)                                                                         \
extern "C" __global__ void bias_act_##N(T* y, const T* b, long total, long plane, int c,       \
    int relu6) { bias_act<T>(y, b, total, plane, c, relu6); }
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
    .map_err(|e| candle_core::Error::Msg(format!("compiling the 1×1 conv CUDA kernel: {e}")))
}

/// `y [N,C,H,W] += bias [C]`, then ReLU6 if asked, in place (CUDA only).
#[derive(Clone, Copy, Debug)]
pub struct BiasAct {
    pub relu6: bool,
}

fn launch<T: DeviceRepr>(
    dev: &candle_core::CudaDevice,
    y: &mut CudaSlice<T>,
    b: &CudaSlice<T>,
    (total, plane, c): (usize, usize, usize),
    relu6: bool,
    suffix: &str,
) -> Result<()> {
    let func = dev.get_or_load_custom_func(&format!("bias_act_{suffix}"), MODULE, ptx()?)?;
    let cfg = LaunchConfig {
        grid_dim: (total.div_ceil(256).clamp(1, 65_535 * 32) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let (total, plane, c, relu6) = (total as i64, plane as i64, c as i32, relu6 as i32);
    let mut builder = func.builder();
    builder.arg(y);
    builder.arg(b);
    candle_core::builder_arg!(builder, total, plane, c, relu6);
    // SAFETY: the arguments match the kernel's signature (see SOURCE); `y` holds `total`
    // elements and `b` holds `c` (checked by the caller).
    unsafe { builder.launch(cfg) }.w()?;
    Ok(())
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "pointwise-bias-act"
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<()> {
        bail!("pointwise-bias-act runs on CUDA only (the CPU path fuses it into the gemm)")
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
            bail!("pointwise-bias-act: output and bias must be contiguous, bias [{c}]")
        }
        let dev = s1.device().clone();
        let sizes = (n * c * h * w, h * w, c);
        match (&mut s1.slice, &s2.slice) {
            (CudaStorageSlice::F32(y), CudaStorageSlice::F32(b)) => {
                launch(&dev, y, b, sizes, self.relu6, "f32")
            }
            (CudaStorageSlice::BF16(y), CudaStorageSlice::BF16(b)) => {
                launch(&dev, y, b, sizes, self.relu6, "bf16")
            }
            (CudaStorageSlice::F16(y), CudaStorageSlice::F16(b)) => {
                launch(&dev, y, b, sizes, self.relu6, "f16")
            }
            _ => bail!("pointwise-bias-act: f32, bf16 or f16 of one dtype only"),
        }
    }
}
