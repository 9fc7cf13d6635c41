//! `NetworkBuilder`: writes the layer list of a Core ML `NeuralNetwork` (specification 1–2
//! layers only, so the models run on every Core ML version): convolutions with explicit
//! padding, activations, pooling, inner products, softmax, scale, add — with weights in fp32 or
//! fp16. Each method appends one or more layers and returns the name of the output blob.

use crate::error::{Error, Result};
use crate::export::coreml::Precision;
use coreml_proto::proto::{
    self as spec, ActivationParams, ActivationReLu, AddLayerParams, BorderAmounts,
    ConvolutionLayerParams, InnerProductLayerParams, NeuralNetworkLayer, PaddingLayerParams,
    PoolingLayerParams, ScaleLayerParams, SoftmaxLayerParams, UnaryFunctionLayerParams,
    ValidPadding, WeightParams, activation_params::NonlinearityType, border_amounts::EdgeSizes,
    convolution_layer_params::ConvolutionPaddingType, neural_network_layer::Layer,
    padding_layer_params, pooling_layer_params, unary_function_layer_params,
};

/// Zero padding of a 2-D convolution: `((top, bottom), (left, right))`.
pub type Padding2d = ((usize, usize), (usize, usize));

/// A 2-D convolution as the builder takes it. Weights are `[out, in/groups, kh, kw]`, row-major
/// (the PyTorch / candle layout, which is also Core ML's).
pub struct Conv2d<'a> {
    pub weight: &'a [f32],
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub shape: [usize; 4],
    pub bias: Option<&'a [f32]>,
    pub stride: usize,
    pub groups: usize,
    pub padding: Padding2d,
}

/// Activations the builder writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    /// `min(max(x, 0), 6)`, written as two `THRESHOLD` unary layers (spec 1 has no clip layer).
    Relu6,
    Sigmoid,
    Tanh,
    /// `alpha * x + beta`.
    Linear {
        alpha: f32,
        beta: f32,
    },
}

/// Global pooling kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalPool {
    Average,
    Max,
}

/// Appends layers to a network; see the module doc.
pub struct NetworkBuilder {
    precision: Precision,
    layers: Vec<NeuralNetworkLayer>,
}

impl NetworkBuilder {
    pub fn new(precision: Precision) -> Self {
        Self {
            precision,
            layers: Vec::new(),
        }
    }

    /// The layers written so far.
    pub fn layers(&self) -> &[NeuralNetworkLayer] {
        &self.layers
    }

    /// The finished layer list.
    pub fn finish(self) -> Vec<NeuralNetworkLayer> {
        self.layers
    }

    /// `values` at the builder's precision (fp16: little-endian half floats, round to nearest).
    /// A tensor with a value beyond half precision's range (|v| > 65504, e.g. a regressor's
    /// intercept in dollars) stays fp32 rather than turning into infinity.
    pub fn weights(&self, values: &[f32]) -> WeightParams {
        let fits_half = || {
            values
                .iter()
                .all(|v| half::f16::from_f32(*v).is_finite() || !v.is_finite())
        };
        match self.precision {
            Precision::Fp32 => fp32_weights(values),
            Precision::Fp16 if !fits_half() => fp32_weights(values),
            Precision::Fp16 => WeightParams {
                float16_value: values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
                ..Default::default()
            },
        }
    }

    /// Appends any layer (for layers without a method here); returns `output`.
    pub fn push(&mut self, name: &str, inputs: &[&str], output: &str, layer: Layer) -> String {
        self.layers.push(NeuralNetworkLayer {
            name: name.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            layer: Some(layer),
            ..Default::default()
        });
        output.to_string()
    }

    /// A convolution. Symmetric padding goes into the layer (`valid` with explicit amounts:
    /// Core ML's `same` is TensorFlow-style and differs from PyTorch at stride 2); asymmetric
    /// padding (TensorFlow "same" at stride 2) becomes an explicit zero-padding layer first.
    pub fn conv(&mut self, name: &str, input: &str, output: &str, conv: &Conv2d) -> Result<String> {
        let [out_ch, in_per_group, kh, kw] = conv.shape;
        if conv.weight.len() != out_ch * in_per_group * kh * kw {
            return Err(bad_shape(name, "convolution weight", conv.weight.len()));
        }
        if let Some(b) = conv.bias
            && b.len() != out_ch
        {
            return Err(bad_shape(name, "convolution bias", b.len()));
        }
        let ((top, bottom), (left, right)) = conv.padding;
        let (input, amounts) = if top == bottom && left == right {
            (input.to_string(), border(conv.padding))
        } else {
            let padded = format!("{output}.pad");
            let padded = self.zero_pad(&format!("{name}.pad"), input, &padded, conv.padding);
            (padded, border(((0, 0), (0, 0))))
        };
        let params = ConvolutionLayerParams {
            output_channels: out_ch as u64,
            kernel_channels: in_per_group as u64,
            n_groups: conv.groups as u64,
            kernel_size: vec![kh as u64, kw as u64],
            stride: vec![conv.stride as u64, conv.stride as u64],
            dilation_factor: vec![1, 1],
            has_bias: conv.bias.is_some(),
            weights: Some(self.weights(conv.weight)),
            bias: conv.bias.map(|b| self.weights(b)),
            convolution_padding_type: Some(ConvolutionPaddingType::Valid(ValidPadding {
                padding_amounts: Some(amounts),
            })),
            ..Default::default()
        };
        Ok(self.push(name, &[&input], output, Layer::Convolution(params)))
    }

    /// Zero padding `((top, bottom), (left, right))`.
    pub fn zero_pad(
        &mut self,
        name: &str,
        input: &str,
        output: &str,
        padding: Padding2d,
    ) -> String {
        let params = PaddingLayerParams {
            padding_amounts: Some(border(padding)),
            padding_type: Some(padding_layer_params::PaddingType::Constant(
                padding_layer_params::PaddingConstant { value: 0.0 },
            )),
        };
        self.push(name, &[input], output, Layer::Padding(params))
    }

    /// An activation (ReLU6 as two layers: `max(-x, -6)` then `max(-y, 0)`).
    pub fn activation(&mut self, name: &str, input: &str, output: &str, a: Activation) -> String {
        let kind = match a {
            Activation::Relu => NonlinearityType::ReLu(ActivationReLu {}),
            Activation::Sigmoid => NonlinearityType::Sigmoid(spec::ActivationSigmoid {}),
            Activation::Tanh => NonlinearityType::Tanh(spec::ActivationTanh {}),
            Activation::Linear { alpha, beta } => {
                NonlinearityType::Linear(spec::ActivationLinear { alpha, beta })
            }
            Activation::Relu6 => {
                let neg = format!("{output}.neg_min6");
                let neg = self.threshold(&format!("{name}.min6"), input, &neg, -1.0, -6.0);
                return self.threshold(name, &neg, output, -1.0, 0.0);
            }
        };
        let params = ActivationParams {
            nonlinearity_type: Some(kind),
        };
        self.push(name, &[input], output, Layer::Activation(params))
    }

    /// `max(scale * x, alpha)` (a `THRESHOLD` unary layer).
    pub fn threshold(
        &mut self,
        name: &str,
        input: &str,
        output: &str,
        scale: f32,
        alpha: f32,
    ) -> String {
        let params = UnaryFunctionLayerParams {
            r#type: unary_function_layer_params::Operation::Threshold as i32,
            alpha,
            epsilon: 0.0,
            shift: 0.0,
            scale,
        };
        self.push(name, &[input], output, Layer::Unary(params))
    }

    /// Global pooling over height and width: `[C, H, W]` → `[C, 1, 1]`.
    pub fn global_pool(
        &mut self,
        name: &str,
        input: &str,
        output: &str,
        kind: GlobalPool,
    ) -> String {
        let kind = match kind {
            GlobalPool::Average => pooling_layer_params::PoolingType::Average,
            GlobalPool::Max => pooling_layer_params::PoolingType::Max,
        };
        let params = PoolingLayerParams {
            r#type: kind as i32,
            kernel_size: vec![1, 1],
            stride: vec![1, 1],
            global_pooling: true,
            pooling_padding_type: Some(pooling_layer_params::PoolingPaddingType::Valid(
                ValidPadding {
                    padding_amounts: Some(border(((0, 0), (0, 0)))),
                },
            )),
            ..Default::default()
        };
        self.push(name, &[input], output, Layer::Pooling(params))
    }

    /// A fully connected layer over the channel axis; `weight` is `[out, in]` row-major.
    pub fn inner_product(
        &mut self,
        name: &str,
        input: &str,
        output: &str,
        weight: &[f32],
        bias: Option<&[f32]>,
        (out_dim, in_dim): (usize, usize),
    ) -> Result<String> {
        if weight.len() != out_dim * in_dim {
            return Err(bad_shape(name, "inner product weight", weight.len()));
        }
        if let Some(b) = bias
            && b.len() != out_dim
        {
            return Err(bad_shape(name, "inner product bias", b.len()));
        }
        let params = InnerProductLayerParams {
            input_channels: in_dim as u64,
            output_channels: out_dim as u64,
            has_bias: bias.is_some(),
            weights: Some(self.weights(weight)),
            bias: bias.map(|b| self.weights(b)),
            int8_dynamic_quantize: false,
        };
        Ok(self.push(name, &[input], output, Layer::InnerProduct(params)))
    }

    /// Softmax over the channel axis.
    pub fn softmax(&mut self, name: &str, input: &str, output: &str) -> String {
        self.push(
            name,
            &[input],
            output,
            Layer::Softmax(SoftmaxLayerParams {}),
        )
    }

    /// Per-channel `scale[c] * x + bias[c]`. Always fp32: these are preprocessing constants,
    /// a handful of numbers whose exactness matters more than their size.
    pub fn scale(
        &mut self,
        name: &str,
        input: &str,
        output: &str,
        scale: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<String> {
        if let Some(b) = bias
            && b.len() != scale.len()
        {
            return Err(bad_shape(name, "scale bias", b.len()));
        }
        let params = ScaleLayerParams {
            shape_scale: vec![scale.len() as u64],
            scale: Some(fp32_weights(scale)),
            has_bias: bias.is_some(),
            shape_bias: bias.map(|b| vec![b.len() as u64]).unwrap_or_default(),
            bias: bias.map(fp32_weights),
        };
        Ok(self.push(name, &[input], output, Layer::Scale(params)))
    }

    /// Per-channel `x + bias[c]` (a `bias` layer, shape `[C]`). Always fp32, as [`Self::scale`].
    pub fn bias(&mut self, name: &str, input: &str, output: &str, bias: &[f32]) -> String {
        let params = spec::BiasLayerParams {
            shape: vec![bias.len() as u64],
            bias: Some(fp32_weights(bias)),
        };
        self.push(name, &[input], output, Layer::Bias(params))
    }

    /// `|x|` (an `ABS` unary layer).
    pub fn abs(&mut self, name: &str, input: &str, output: &str) -> String {
        let params = UnaryFunctionLayerParams {
            r#type: unary_function_layer_params::Operation::Abs as i32,
            alpha: 0.0,
            epsilon: 0.0,
            shift: 0.0,
            scale: 1.0,
        };
        self.push(name, &[input], output, Layer::Unary(params))
    }

    /// `log(scale * x + shift)` (a `LOG` unary layer).
    pub fn log(&mut self, name: &str, input: &str, output: &str, scale: f32, shift: f32) -> String {
        let params = UnaryFunctionLayerParams {
            r#type: unary_function_layer_params::Operation::Log as i32,
            alpha: 0.0,
            epsilon: 0.0,
            shift,
            scale,
        };
        self.push(name, &[input], output, Layer::Unary(params))
    }

    /// `x / sqrt(sum(x²) + epsilon)` over the whole blob (an `l2normalize` layer).
    pub fn l2_normalize(&mut self, name: &str, input: &str, output: &str, epsilon: f32) -> String {
        self.push(
            name,
            &[input],
            output,
            Layer::L2normalize(spec::L2NormalizeLayerParams { epsilon }),
        )
    }

    /// Concatenation of `inputs` along the channel axis.
    pub fn concat(&mut self, name: &str, inputs: &[&str], output: &str) -> String {
        self.push(
            name,
            inputs,
            output,
            Layer::Concat(spec::ConcatLayerParams {
                sequence_concat: false,
            }),
        )
    }

    /// `1 / (x + epsilon)` (an `INVERSE` unary layer; Core ML reads an epsilon of 0 as 1e-6,
    /// so give a positive one).
    pub fn inverse(&mut self, name: &str, input: &str, output: &str, epsilon: f32) -> String {
        let params = UnaryFunctionLayerParams {
            r#type: unary_function_layer_params::Operation::Inverse as i32,
            alpha: 0.0,
            epsilon,
            shift: 0.0,
            scale: 1.0,
        };
        self.push(name, &[input], output, Layer::Unary(params))
    }

    /// Elementwise product of `inputs` (same shapes).
    pub fn multiply(&mut self, name: &str, inputs: &[&str], output: &str) -> String {
        self.push(
            name,
            inputs,
            output,
            Layer::Multiply(spec::MultiplyLayerParams { alpha: 0.0 }),
        )
    }

    /// Elementwise sum of `inputs` (same shapes).
    pub fn add(&mut self, name: &str, inputs: &[&str], output: &str) -> String {
        self.push(
            name,
            inputs,
            output,
            Layer::Add(AddLayerParams { alpha: 0.0 }),
        )
    }
}

/// fp32 weights.
pub fn fp32_weights(values: &[f32]) -> WeightParams {
    WeightParams {
        float_value: values.to_vec(),
        ..Default::default()
    }
}

fn border(((top, bottom), (left, right)): Padding2d) -> BorderAmounts {
    BorderAmounts {
        border_amounts: vec![
            EdgeSizes {
                start_edge_size: top as u64,
                end_edge_size: bottom as u64,
            },
            EdgeSizes {
                start_edge_size: left as u64,
                end_edge_size: right as u64,
            },
        ],
    }
}

fn bad_shape(layer: &str, what: &str, len: usize) -> Error {
    Error::Unsupported(format!(
        "Core ML export: {what} of layer {layer} has {len} values, which does not fit its shape (a bug)"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_padding_becomes_a_padding_layer_and_fp16_halves_the_weights() {
        let mut b = NetworkBuilder::new(Precision::Fp16);
        let w = [0.5f32; 2 * 3 * 3 * 3];
        let conv = Conv2d {
            weight: &w,
            shape: [2, 3, 3, 3],
            bias: Some(&[1.0, 2.0]),
            stride: 2,
            groups: 1,
            padding: ((0, 1), (0, 1)),
        };
        let out = b.conv("c", "x", "y", &conv).unwrap();
        assert_eq!(out, "y");
        let layers = b.finish();
        assert_eq!(layers.len(), 2);
        assert!(matches!(layers[0].layer, Some(Layer::Padding(_))));
        let Some(Layer::Convolution(c)) = &layers[1].layer else {
            panic!("not a convolution")
        };
        assert_eq!(layers[1].input, vec!["y.pad".to_string()]);
        let w = c.weights.as_ref().unwrap();
        assert!(w.float_value.is_empty());
        assert_eq!(w.float16_value.len(), 54 * 2);
        // 0.5 in IEEE half is 0x3800.
        assert_eq!(&w.float16_value[..2], &[0x00, 0x38]);
    }

    #[test]
    fn fp16_keeps_tensors_beyond_half_range_in_fp32() {
        let b = NetworkBuilder::new(Precision::Fp16);
        let w = b.weights(&[1.0, -70_000.0]);
        assert_eq!(w.float_value, [1.0, -70_000.0]);
        assert!(w.float16_value.is_empty());
        assert_eq!(b.weights(&[1.0, 60_000.0]).float16_value.len(), 4);
    }

    #[test]
    fn relu6_is_two_thresholds_and_bad_shapes_are_refused() {
        let mut b = NetworkBuilder::new(Precision::Fp32);
        b.activation("a", "x", "y", Activation::Relu6);
        assert_eq!(b.layers().len(), 2);
        assert_eq!(b.layers()[1].input, vec!["y.neg_min6".to_string()]);
        assert!(
            b.inner_product("fc", "y", "z", &[1.0; 5], None, (2, 3))
                .is_err()
        );
    }
}
