//! What Lathe's run-time compiled CUDA kernels share: compiling a module's source with NVRTC
//! once per process, and the dtype suffix of its kernel names (`…_f32`, `…_bf16`, `…_f16`).

use candle_core::cuda_backend::CudaStorageSlice;
use candle_core::{Result, bail};
use std::sync::OnceLock;

/// The PTX of `source`, compiled the first time through `cell` (one cell per module); `what`
/// names the kernels in the error ("the depthwise CUDA kernels").
pub(crate) fn compiled(
    cell: &'static OnceLock<std::result::Result<String, String>>,
    source: impl FnOnce() -> String,
    what: &str,
) -> Result<&'static str> {
    cell.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(source())
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| candle_core::Error::Msg(format!("compiling {what}: {e}")))
}

/// The kernel-name suffix of a storage's dtype; `op` names the operation in the error.
pub(crate) fn dtype_suffix(s: &CudaStorageSlice, op: &str) -> Result<&'static str> {
    Ok(match s {
        CudaStorageSlice::F32(_) => "f32",
        CudaStorageSlice::BF16(_) => "bf16",
        CudaStorageSlice::F16(_) => "f16",
        _ => bail!("{op} on CUDA: f32, bf16 or f16 tensors only"),
    })
}
