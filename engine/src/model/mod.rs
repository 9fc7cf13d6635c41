//! Models: backbones (MobileNetV2), the depthwise-convolution op, classifier heads, and where
//! pretrained weights come from.

pub mod audio_cnn;
pub mod backbone;
pub mod batch_norm;
#[cfg(feature = "cuda")]
pub mod batch_norm_cuda;
#[cfg(feature = "cuda")]
pub mod block_cuda;
pub mod conv_bn;
#[cfg(feature = "cuda")]
pub mod conv_cuda;
pub(crate) mod cpu_storage;
pub mod crepe;
pub mod depthwise;
#[cfg(feature = "cuda")]
pub mod depthwise_cuda;
#[cfg(feature = "metal")]
pub mod depthwise_metal;
pub mod detect_head;
pub mod efficientnet_lite;
pub mod forest;
pub mod gbt;
pub mod gbt_tree;
pub mod glm;
pub mod head;
pub mod mlp;
#[cfg(feature = "cuda")]
pub mod mobilenet_nhwc;
pub mod mobilenet_v2;
#[cfg(feature = "cuda")]
pub(crate) mod nvrtc;
pub mod pointwise;
pub mod pointwise_train;
pub mod text_encoder;
pub mod weights;
