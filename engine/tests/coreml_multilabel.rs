//! Core ML export of the multi-label image classifier: the image network with one sigmoid per
//! label, as a plain `NeuralNetwork` with output `labelProbabilities` (labels and threshold in
//! the metadata); and, when `LATHE_COREML_PYTHON` is set, the numpy evaluator agrees with
//! `lathe predict` to 1e-4 on 24 images at the model's size, and broken exports are rejected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::*;
use coreml_proto::proto::{Model, model, neural_network_layer::Layer};
use image::{Rgb, RgbImage};
use lathe_engine::export::coreml::spec;
use std::path::{Path, PathBuf};

const SIZE: u32 = 64;

/// A `SIZE`² image with a red disc and/or green stripes, varied by `i`.
fn tagged_image(disc: bool, stripes: bool, i: usize) -> RgbImage {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
    let (cx, cy) = (rng.random_range(16..48), rng.random_range(16..48));
    let r = rng.random_range(6..12);
    RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let n: u8 = rng.random_range(0..40);
        if disc && (x - cx).pow(2) + (y - cy).pow(2) < r * r {
            Rgb([200 + n / 2, 30 + n, 30])
        } else if stripes && (x / 3) % 3 == 0 {
            Rgb([30, 170 + n, 40])
        } else {
            Rgb([20 + n, 20 + n / 2, 30])
        }
    })
}

/// `n` images cycling through {none, disc, stripes, both}, with `labels.csv`; returns the paths.
fn make_set(dir: &Path, n: usize, offset: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("image,labels\n");
    let mut paths = Vec::new();
    for i in 0..n {
        let (disc, stripes) = ((i % 4) & 1 == 1, (i % 4) & 2 == 2);
        let name = format!("img{:03}.png", i + offset);
        tagged_image(disc, stripes, i + offset)
            .save(dir.join(&name))
            .unwrap();
        paths.push(dir.join(&name));
        let labels: Vec<&str> = [(disc, "disc"), (stripes, "stripes")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, l)| l)
            .collect();
        csv += &format!("{name},{}\n", labels.join(";"));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
    paths
}

fn network(m: &mut Model) -> &mut coreml_proto::proto::NeuralNetwork {
    match &mut m.r#type {
        Some(model::Type::NeuralNetwork(nn)) => nn,
        other => panic!("not a NeuralNetwork: {other:?}"),
    }
}

#[test]
fn multi_label_export_has_one_sigmoid_per_label_and_agrees_with_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    make_set(&tmp.path().join("train"), 32, 0);
    let inputs = make_set(&tmp.path().join("inputs"), 24, 500);
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "multi-label-image-classifier",
            "--json",
        ])
        .args([
            "--epochs",
            "20",
            "--param",
            &format!("image_size={SIZE}"),
            "--data",
        ])
        .arg(tmp.path().join("train"))
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let model_path = tmp.path().join("ml.mlmodel");
    let info = export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 1);
    let mut m = spec::read(&model_path).unwrap();
    let desc = m.description.clone().unwrap();
    assert_eq!(desc.output.len(), 1);
    assert_eq!(desc.output[0].name, "labelProbabilities");
    assert!(desc.predicted_feature_name.is_empty());
    let user = &desc.metadata.as_ref().unwrap().user_defined;
    assert_eq!(user["classes"], r#"["disc","stripes"]"#);
    assert_eq!(user["threshold"], "0.5");
    let last = network(&mut m).layers.last().unwrap().clone();
    assert!(matches!(last.layer, Some(Layer::Activation(_))), "{last:?}");
    let m16 = tmp.path().join("ml16.mlmodel");
    assert_eq!(
        export(&cache, &run_dir, &m16, "fp16")["specification_version"],
        2
    );

    let Some(python) = coreml_python() else {
        return;
    };
    let preds = tmp.path().join("preds.jsonl");
    predictions(&cache, &run_dir, &inputs, &[], &preds);
    let extra = ["--multi-label"];
    assert_agrees(&python, &model_path, &preds, &extra, "multi-label fp32");
    let (_, r16) = check(
        &python,
        &m16,
        &preds,
        &["--multi-label", "--tolerance", "1"],
    );
    eprintln!("multi-label fp16: {r16}");

    // Broken: softmax instead of sigmoids; the scaler dropped.
    let broken = tmp.path().join("broken.mlmodel");
    mutate(&model_path, &broken, |m| {
        let l = network(m).layers.last_mut().unwrap();
        l.layer = Some(Layer::Softmax(coreml_proto::proto::SoftmaxLayerParams {}));
    });
    assert_rejected(
        &python,
        &broken,
        &preds,
        &extra,
        "softmax instead of sigmoid",
    );
    mutate(&model_path, &broken, |m| network(m).preprocessing.clear());
    assert_rejected(&python, &broken, &preds, &extra, "scaler dropped");
}
