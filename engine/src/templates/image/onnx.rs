//! The image classifier (and the multi-label one) as one ONNX graph. Input `image`: float32
//! `[N, 3, H, W]`, RGB pixel values 0–255 at the model's size (Lathe resizes the whole image to
//! it, aspect ratio not kept; resize before feeding). In the graph: the backbone's
//! normalization (`(x / 255 − mean) / std`), the backbone (`export/onnx/backbone.rs`), the
//! head's `Gemm` layers (`Relu` between), then `Softmax` → `probabilities` `[N, labels]` and
//! `label` (string `[N]`, the most probable); a multi-label model writes one `Sigmoid` per
//! label → `probabilities` (its threshold in `metadata_props`), without `label`.

use crate::error::Result;
use crate::export::coreml::backbone::values;
use crate::export::onnx::backbone::{Map, pooled_features};
use crate::export::onnx::graph::{self, Dim, Graph};
use crate::export::onnx::proto::data_type;
use crate::export::onnx::{self, Exported, Options, meta};
use crate::nets::head::HeadKind;
use crate::task::Model;
use crate::templates::image::model::ImageModel;
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the image input.
pub const INPUT: &str = "image";

/// Exports the image classifier in `model_dir` to `out`.
pub fn export(model_dir: &Path, out: &Path, options: &Options) -> Result<Exported> {
    let model = ImageModel::load(model_dir, &Device::Cpu)?;
    let backbone = model.backbone();
    let head = model.head();
    let labels = model.labels().to_vec();
    let pre = &backbone.preprocessing;
    let (h, w) = (pre.height as usize, pre.width as usize);
    let mut g = Graph::new();
    g.input(
        INPUT,
        data_type::FLOAT,
        &[
            Dim::Named("N"),
            Dim::Fixed(3),
            Dim::Fixed(h as i64),
            Dim::Fixed(w as i64),
        ],
        "RGB pixel values 0-255, channels first, resized to the model's size",
    );
    let k255 = g.floats("pixel.max", &[], &[255.0]);
    let mean = g.floats("normalize.mean", &[1, 3, 1, 1], &pre.mean);
    let std = g.floats("normalize.std", &[1, 3, 1, 1], &pre.std);
    let t = g.node("Div", &[INPUT, &k255], vec![]);
    let t = g.node("Sub", &[&t, &mean], vec![]);
    let normalized = g.node("Div", &[&t, &std], vec![]);
    let features = pooled_features(
        &mut g,
        backbone,
        &Map {
            name: normalized,
            channels: 3,
            height: h,
            width: w,
        },
    )?;

    let names = crate::nets::head::Head::layer_names(&head.kind);
    let last = head.layers.len().saturating_sub(1);
    let mut x = features.name;
    for (i, ((wt, bias), name)) in head.layers.iter().zip(names).enumerate() {
        let (out_dim, in_dim) = wt.as_tensor().dims2()?;
        let wn = g.floats(
            &format!("head.{name}.weight"),
            &[out_dim as i64, in_dim as i64],
            &values(wt.as_tensor())?,
        );
        let bn = g.floats(
            &format!("head.{name}.bias"),
            &[out_dim as i64],
            &values(bias.as_tensor())?,
        );
        x = g.node("Gemm", &[&x, &wn, &bn], vec![graph::int("transB", 1)]);
        if i < last {
            x = g.node("Relu", &[&x], vec![]);
        }
    }
    let multi_label = model.multi_label();
    let classes = labels.len() as i64;
    if multi_label.is_some() {
        g.node_to("Sigmoid", &[&x], "probabilities", vec![]);
    } else {
        g.node_to(
            "Softmax",
            &[&x],
            "probabilities",
            vec![graph::int("axis", 1)],
        );
        let index = g.node(
            "ArgMax",
            &["probabilities"],
            vec![graph::int("axis", 1), graph::int("keepdims", 0)],
        );
        let names = g.strings("labels", &labels);
        g.node_to(
            "Gather",
            &[&names, &index],
            "label",
            vec![graph::int("axis", 0)],
        );
    }
    g.output(
        "probabilities",
        data_type::FLOAT,
        &[Dim::Named("N"), Dim::Fixed(classes)],
        "one probability per label, in `labels` order",
    );
    if multi_label.is_none() {
        g.output(
            "label",
            data_type::STRING,
            &[Dim::Named("N")],
            "the most probable label",
        );
    }

    let head_title = match &head.kind {
        HeadKind::Logistic => "logistic regression".to_string(),
        HeadKind::Mlp { hidden, .. } => format!("MLP with {hidden} hidden units"),
    };
    let description = format!(
        "Image classifier ({} features + {head_title}) for {} labels, trained with Lathe.",
        backbone.id,
        labels.len()
    );
    let mut extra = BTreeMap::new();
    extra.insert("backbone".to_string(), backbone.id.clone());
    extra.insert(
        "preprocessing".into(),
        format!(
            "input `image` float32 [N, 3, {h}, {w}]: RGB pixel values 0-255 of the whole image resized to {w}x{h} (aspect ratio not kept); the graph divides by 255, subtracts mean {:?} and divides by std {:?}",
            pre.mean, pre.std
        ),
    );
    if let Some(t) = multi_label {
        extra.insert("threshold".into(), t.to_string());
    }
    let task = if multi_label.is_some() {
        "multi-label-image-classification"
    } else {
        "image-classification"
    };
    let props = meta::props(
        model_dir,
        task,
        &labels,
        description.clone(),
        options,
        extra,
    )?;
    onnx::write(
        out,
        &g.finish("lathe_image_classifier", &description, props),
    )
}
