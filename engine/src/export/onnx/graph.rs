//! A small ONNX graph builder: float / int64 / string initializers, nodes of the default and
//! `ai.onnx.ml` domains with fresh value names, typed graph inputs and outputs, and the model
//! around it (IR version, opset imports, producer, metadata).

use crate::export::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_type, data_type,
    tensor_shape_proto, type_proto,
};
use crate::export::onnx::{IR_VERSION, ML_DOMAIN, ML_OPSET, OPSET};

/// One dimension of a graph input or output.
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(i64),
    /// A symbolic dimension (e.g. `"N"`, the batch).
    Named(&'static str),
}

/// A graph under construction.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
    uses_ml: bool,
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(n) => tensor_shape_proto::dimension::Value::DimParam((*n).into()),
            }),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: String::new(),
        }),
        doc_string: doc.into(),
    }
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh value name starting with `base`.
    pub fn fresh(&mut self, base: &str) -> String {
        self.next += 1;
        format!("{base}_{}", self.next)
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[Dim], doc: &str) {
        self.inputs.push(value_info(name, elem_type, dims, doc));
    }

    /// Declares a graph output.
    pub fn output(&mut self, name: &str, elem_type: i32, dims: &[Dim], doc: &str) {
        self.outputs.push(value_info(name, elem_type, dims, doc));
    }

    /// A float32 initializer; returns its name.
    pub fn floats(&mut self, base: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(base);
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            name: name.clone(),
            raw_data,
            ..Default::default()
        });
        name
    }

    /// An int64 initializer; returns its name.
    pub fn ints(&mut self, base: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(base);
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::INT64,
            name: name.clone(),
            raw_data,
            ..Default::default()
        });
        name
    }

    /// A string initializer of shape `[values.len()]`; returns its name.
    pub fn strings(&mut self, base: &str, values: &[String]) -> String {
        let name = self.fresh(base);
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: data_type::STRING,
            name: name.clone(),
            string_data: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        });
        name
    }

    fn push(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs,
            name,
            op_type: op.into(),
            domain: domain.into(),
            attribute,
            doc_string: String::new(),
        });
    }

    /// A default-domain node with one output named `out`; returns `out`.
    pub fn node_to(
        &mut self,
        op: &str,
        inputs: &[&str],
        out: &str,
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.push("", op, inputs, vec![out.to_string()], attributes);
        out.to_string()
    }

    /// A default-domain node with one fresh output; returns it.
    pub fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.node_to(op, inputs, &out, attributes)
    }

    /// A default-domain node with several named outputs (e.g. `TopK`'s values and indices).
    pub fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) {
        let outputs = outputs.iter().map(|s| s.to_string()).collect();
        self.push("", op, inputs, outputs, attributes);
    }

    /// An `ai.onnx.ml` node with one fresh output; returns it.
    pub fn ml_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.uses_ml = true;
        let out = self.fresh(&op.to_ascii_lowercase());
        self.push(ML_DOMAIN, op, inputs, vec![out.clone()], attributes);
        out
    }

    /// Nodes so far.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The model: this graph named `name`, opset imports, producer and `metadata`.
    pub fn finish(
        self,
        name: &str,
        doc: &str,
        metadata: Vec<StringStringEntryProto>,
    ) -> ModelProto {
        let mut opset_import = vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }];
        if self.uses_ml {
            opset_import.push(OperatorSetIdProto {
                domain: ML_DOMAIN.into(),
                version: ML_OPSET,
            });
        }
        ModelProto {
            ir_version: IR_VERSION,
            opset_import,
            producer_name: "Lathe".into(),
            producer_version: crate::VERSION.into(),
            domain: String::new(),
            model_version: 1,
            doc_string: doc.into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.into(),
                initializer: self.initializers,
                doc_string: String::new(),
                input: self.inputs,
                output: self.outputs,
                value_info: Vec::new(),
            }),
            metadata_props: metadata,
        }
    }
}

/// An int attribute.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i: Some(v),
        ..Default::default()
    }
}

/// A float attribute.
pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f: Some(v),
        ..Default::default()
    }
}

/// A string attribute.
pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// An ints attribute.
pub fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v,
        ..Default::default()
    }
}

/// A floats attribute.
pub fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOATS,
        floats: v,
        ..Default::default()
    }
}

/// A strings attribute.
pub fn strings(name: &str, v: &[String]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRINGS,
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// A tensor attribute (e.g. `Constant`'s `value`).
pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::TENSOR,
        t: Some(t),
        ..Default::default()
    }
}

/// Metadata entry.
pub fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}
