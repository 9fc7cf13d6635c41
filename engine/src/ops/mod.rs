//! Custom kernels (candle `CustomOp`s): each op's CPU code beside its CUDA (NVRTC) and Metal
//! versions — depthwise convolution, 1×1 convolution (inference and trainable), batch norm,
//! fused MobileNetV2 blocks, fused AdamW.

pub mod adamw_fused;
pub mod batch_norm;
#[cfg(feature = "cuda")]
pub mod batch_norm_cuda;
#[cfg(feature = "cuda")]
pub mod block_cuda;
#[cfg(feature = "cuda")]
pub mod conv_cuda;
pub(crate) mod cpu_storage;
pub mod depthwise;
#[cfg(feature = "cuda")]
pub mod depthwise_cuda;
#[cfg(feature = "metal")]
pub mod depthwise_metal;
#[cfg(feature = "cuda")]
pub(crate) mod nvrtc;
pub mod pointwise;
pub mod pointwise_train;
