//! AdamW's update of one f32 parameter tensor as two in-place passes instead of a dozen tensor
//! ops: [`MomentsStep`] updates the packed moments `[m; v]` from the gradient, [`ParamStep`]
//! applies weight decay and the bias-corrected step to the parameter. On CUDA each pass is one
//! NVRTC kernel; on the CPU, one loop. The optimizer (`optim.rs`) falls back to tensor ops for
//! other dtypes and layouts.
#![allow(unsafe_code)]

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, bail};

/// `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²` on moments packed as `[m (n values), v (n)]`.
#[derive(Clone, Copy, Debug)]
pub struct MomentsStep {
    pub beta1: f32,
    pub beta2: f32,
}

/// `θ = θ·decay − lr · (m·scale_m) / (√(v·scale_v) + ε)` with moments packed as `[m; v]`.
#[derive(Clone, Copy, Debug)]
pub struct ParamStep {
    pub learning_rate: f32,
    /// `1 − lr · weight_decay` (1 for parameters without decay).
    pub decay: f32,
    pub scale_m: f32,
    pub scale_v: f32,
    pub eps: f32,
}

fn span<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    crate::ops::cpu_storage::f32_view("fused AdamW", s, l, what)
}

fn span_mut<'a>(s: &'a mut CpuStorage, l: &Layout, what: &str) -> Result<&'a mut [f32]> {
    crate::ops::cpu_storage::f32_view_mut("fused AdamW", s, l, what)
}

impl InplaceOp2 for MomentsStep {
    fn name(&self) -> &'static str {
        "adamw-moments"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = span(s2, l2, "gradient")?;
        let mv = span_mut(s1, l1, "moments")?;
        if mv.len() != 2 * g.len() {
            bail!(
                "fused AdamW: moments hold {} values for {} gradients",
                mv.len(),
                g.len()
            )
        }
        let (m, v) = mv.split_at_mut(g.len());
        let (b1, b2) = (self.beta1, self.beta2);
        for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        cuda::moments(self, s1, l1, s2, l2)
    }
}

impl InplaceOp2 for ParamStep {
    fn name(&self) -> &'static str {
        "adamw-param"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let mv = span(s2, l2, "moments")?;
        let p = span_mut(s1, l1, "parameter")?;
        if mv.len() != 2 * p.len() {
            bail!(
                "fused AdamW: moments hold {} values for {} parameters",
                mv.len(),
                p.len()
            )
        }
        let (m, v) = mv.split_at(p.len());
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            *p = self.apply(*p, m, v);
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        cuda::param(self, s1, l1, s2, l2)
    }
}

impl ParamStep {
    /// The updated value of one parameter (the CPU loop; the CUDA kernel mirrors it).
    fn apply(&self, p: f32, m: f32, v: f32) -> f32 {
        let update = (m * self.scale_m) / ((v * self.scale_v).sqrt() + self.eps);
        p * self.decay - self.learning_rate * update
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{MomentsStep, ParamStep};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
    use candle_core::{CudaStorage, Layout, Result, bail};
    use std::sync::OnceLock;

    const MODULE: &str = "lathe_adamw";

    const SOURCE: &str = r#"
extern "C" __global__ void adamw_moments(float* mv, const float* g, long n, float b1, float b2) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n;
         i += (long)blockDim.x * gridDim.x) {
        const float gi = g[i];
        mv[i] = b1 * mv[i] + (1.f - b1) * gi;
        mv[n + i] = b2 * mv[n + i] + (1.f - b2) * gi * gi;
    }
}
extern "C" __global__ void adamw_param(float* p, const float* mv, long n, float lr, float decay,
                                       float scale_m, float scale_v, float eps) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n;
         i += (long)blockDim.x * gridDim.x) {
        const float update = (mv[i] * scale_m) / (sqrtf(mv[n + i] * scale_v) + eps);
        p[i] = p[i] * decay - lr * update;
    }
}
"#;

    fn ptx() -> Result<&'static str> {
        static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
        crate::ops::nvrtc::compiled(&PTX, || SOURCE.to_string(), "the AdamW CUDA kernels")
    }

    fn grid(n: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (n.div_ceil(256).clamp(1, 4096) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// `(dst, src)` f32 slices, both whole and contiguous from offset 0, or an error.
    fn slices<'a>(
        s1: &'a mut CudaStorage,
        l1: &Layout,
        s2: &'a CudaStorage,
        l2: &Layout,
    ) -> Result<(&'a mut CudaSlice<f32>, &'a CudaSlice<f32>)> {
        let whole = |l: &Layout| l.contiguous_offsets() == Some((0, l.shape().elem_count()));
        if !whole(l1) || !whole(l2) {
            bail!("fused AdamW: tensors must be contiguous and start at offset 0")
        }
        match (&mut s1.slice, &s2.slice) {
            (CudaStorageSlice::F32(a), CudaStorageSlice::F32(b)) => Ok((a, b)),
            _ => bail!("fused AdamW: f32 tensors only"),
        }
    }

    pub(super) fn moments(
        op: &MomentsStep,
        s1: &mut CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        let n = l2.shape().elem_count();
        if l1.shape().elem_count() != 2 * n {
            bail!("fused AdamW: moments do not match the gradient")
        }
        let dev = s1.device().clone();
        let func = dev.get_or_load_custom_func("adamw_moments", MODULE, ptx()?)?;
        let (mv, g) = slices(s1, l1, s2, l2)?;
        let (n64, b1, b2) = (n as i64, op.beta1, op.beta2);
        let mut builder = func.builder();
        builder.arg(mv);
        builder.arg(g);
        candle_core::builder_arg!(builder, n64, b1, b2);
        // SAFETY: the arguments match `adamw_moments`; `mv` holds 2n values and `g` n.
        unsafe { builder.launch(grid(n)) }.w()?;
        Ok(())
    }

    pub(super) fn param(
        op: &ParamStep,
        s1: &mut CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        let n = l1.shape().elem_count();
        if l2.shape().elem_count() != 2 * n {
            bail!("fused AdamW: moments do not match the parameter")
        }
        let dev = s1.device().clone();
        let func = dev.get_or_load_custom_func("adamw_param", MODULE, ptx()?)?;
        let (p, mv) = slices(s1, l1, s2, l2)?;
        let n64 = n as i64;
        let (lr, decay, sm, sv, eps) = (op.learning_rate, op.decay, op.scale_m, op.scale_v, op.eps);
        let mut builder = func.builder();
        builder.arg(p);
        builder.arg(mv);
        candle_core::builder_arg!(builder, n64, lr, decay, sm, sv, eps);
        // SAFETY: the arguments match `adamw_param`; `p` holds n values and `mv` 2n.
        unsafe { builder.launch(grid(n)) }.w()?;
        Ok(())
    }
}
