//! Networks: image backbones (MobileNetV2, EfficientNet-Lite), classifier heads, the sentence
//! encoder, the sound networks (CNN, CREPE, Whisper's encoder, YAMNet), the detector head, and
//! where pretrained weights come from. Built on `ops/` for the custom kernels.

pub mod audio_cnn;
pub mod backbone;
pub mod conv_bn;
pub mod crepe;
pub mod detect_head;
pub mod efficientnet_lite;
pub mod head;
#[cfg(feature = "cuda")]
pub mod mobilenet_nhwc;
pub mod mobilenet_v2;
pub mod speech_embedding;
pub mod text_encoder;
pub mod weights;
pub mod whisper_encoder;
pub mod yamnet;
