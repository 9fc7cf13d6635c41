//! Half-precision weights for an ONNX export (`lathe export --format onnx --precision fp16`):
//! every float initializer of at least [`MIN_ELEMENTS`] values read only by default-domain
//! operators is stored as FLOAT16 and cast back to float by a `Cast` node at the top of the
//! graph. The file is about half the size; the graph still computes in f32, so every operator
//! and input is unchanged and only the weights are rounded (|Δp| of the order of 1e-3).
//! Small constants (normalization means, thresholds, scalars) stay f32, and so do the weights of
//! matrix products (the heads, mel matrices, transformer projections), the sound front ends' DFT
//! kernels and anything an `ai.onnx.ml` operator reads.

use super::graph;
use super::proto::{ModelProto, NodeProto, data_type};
use std::collections::HashSet;

/// Initializers smaller than this stay f32: depthwise kernels, biases and constants are a small
/// share of the file but, rounded, most of the error (MobileNetV2: |Δp| 5e-3 with them halved,
/// 8e-4 without; the file is 0.52× the fp32 one either way).
pub const MIN_ELEMENTS: usize = 4096;

/// Operators whose weights stay f32.
const KEPT_F32_OPS: &[&str] = &["Gemm", "MatMul"];

/// Initializers whose name starts with one of these stay f32: the DFT kernels of the sound front
/// ends (`stft.kernels`), exact constants whose rounding to fp16 moves quiet mel bands enough,
/// through the log, to change YAMNet's and Whisper's top label.
const KEPT_F32_PREFIXES: &[&str] = &["stft."];

/// Converts `model`'s large float weights to FLOAT16 in place; returns how many initializers
/// were converted.
pub fn halve_weights(model: &mut ModelProto) -> usize {
    let Some(g) = model.graph.as_mut() else {
        return 0;
    };
    // Inputs of operators outside the default domain keep their type, and so do the weights of
    // matrix products: the heads (small next to a backbone's convolutions) whose rounding would
    // move the probabilities most directly.
    let pinned: HashSet<&str> = g
        .node
        .iter()
        .filter(|n| !n.domain.is_empty() || KEPT_F32_OPS.contains(&n.op_type.as_str()))
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let mut casts = Vec::new();
    let mut renamed = Vec::new();
    for t in &mut g.initializer {
        if t.data_type != data_type::FLOAT
            || pinned.contains(t.name.as_str())
            || KEPT_F32_PREFIXES.iter().any(|p| t.name.starts_with(p))
        {
            continue;
        }
        let values: Vec<f32> = if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        if values.len() < MIN_ELEMENTS {
            continue;
        }
        let original = t.name.clone();
        let half_name = format!("{original}.fp16");
        t.raw_data = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        t.float_data.clear();
        t.data_type = data_type::FLOAT16;
        t.name = half_name.clone();
        casts.push(NodeProto {
            input: vec![half_name.clone()],
            output: vec![original.clone()],
            name: format!("{original}.to_float"),
            op_type: "Cast".into(),
            attribute: vec![graph::int("to", i64::from(data_type::FLOAT))],
            ..Default::default()
        });
        renamed.push(original);
    }
    let n = casts.len();
    casts.append(&mut g.node);
    g.node = casts;
    for entry in &mut model.metadata_props {
        if entry.key == "precision" {
            entry.value = "fp16".into();
        }
    }
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::export::onnx::graph::Graph;
    use crate::export::onnx::proto::ModelProto;

    fn model() -> ModelProto {
        let mut g = Graph::new();
        let w = g.floats(
            "w",
            &[64, 64],
            &(0..4096).map(|i| i as f32 / 3.0).collect::<Vec<_>>(),
        );
        let b = g.floats("b", &[4], &[0.5; 4]);
        let y = g.node("Conv", &["x", &w], vec![]);
        g.node("Add", &[&y, &b], vec![]);
        g.finish("m", "", vec![graph::entry("precision", "fp32")])
    }

    #[test]
    fn large_float_weights_become_half_with_a_cast() {
        let mut m = model();
        assert_eq!(halve_weights(&mut m), 1);
        let g = m.graph.as_ref().unwrap();
        let w = g
            .initializer
            .iter()
            .find(|t| t.name.starts_with("w_") && t.name.ends_with(".fp16"))
            .unwrap();
        assert_eq!(w.data_type, data_type::FLOAT16);
        assert_eq!(w.raw_data.len(), 4096 * 2);
        let first = half::f16::from_le_bytes([w.raw_data[2], w.raw_data[3]]).to_f32();
        assert!((first - 1.0 / 3.0).abs() < 1e-3);
        // The small bias stays f32; the cast comes before the node that reads `w`.
        let b = g
            .initializer
            .iter()
            .find(|t| t.name.starts_with("b_"))
            .unwrap();
        assert_eq!(b.data_type, data_type::FLOAT);
        assert_eq!(g.node[0].op_type, "Cast");
        assert!(g.node[0].output[0].starts_with("w_"));
        assert_eq!(m.metadata_props[0].value, "fp16");
    }
}
