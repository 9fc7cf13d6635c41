//! Core ML export of the maxent text classifier: a `DictVectorizer` → network pipeline over term
//! counts, with the tokenizer rules and vocabulary in the metadata and a sidecar; and, when
//! `LATHE_COREML_PYTHON` is set, the numpy evaluator fed the engine's own term counts (from
//! `lathe_engine::templates::text::features::terms` with the model's rules) agrees with
//! `lathe predict` to 1e-4 on 24 texts, and broken exports are rejected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::*;
use coreml_proto::proto::{Model, model, neural_network_layer::Layer};
use lathe_engine::export::coreml::spec;
use lathe_engine::templates::text::features::terms;
use lathe_engine::templates::text::model::{Classifier, TextModel};
use std::path::{Path, PathBuf};

const TOPICS: [(&str, [&str; 6]); 3] = [
    (
        "cooking",
        ["oven", "flour", "butter", "simmer", "garlic", "recipe"],
    ),
    (
        "sports",
        ["goal", "match", "striker", "referee", "league", "coach"],
    ),
    (
        "tech",
        [
            "compiler", "kernel", "server", "python", "database", "cache",
        ],
    ),
];
const COMMON: [&str; 6] = ["the", "a", "is", "and", "today", "we"];

fn sentence(t: usize, i: usize) -> String {
    let mut state = (t * 7919 + i * 104_729 + 17) as u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let mut words = Vec::new();
    for k in 0..9 {
        // Mostly the topic's words, sometimes another topic's: probabilities are not all ~1.
        let topic = if next(5) == 0 { next(3) } else { t };
        words.push(if k % 2 == 0 {
            TOPICS[topic].1[next(6)]
        } else {
            COMMON[next(6)]
        });
    }
    format!("{}.", words.join(" "))
}

fn make_folder(root: &Path, per_class: usize) {
    for (t, (name, _)) in TOPICS.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            std::fs::write(dir.join(format!("{i:03}.txt")), sentence(t, i)).unwrap();
        }
    }
}

/// Trains a maxent model; returns the run folder.
fn train(tmp: &Path, cache: &Path) -> PathBuf {
    make_folder(&tmp.join("train"), 20);
    let run_dir = tmp.join("run");
    let out = run(lathe(cache)
        .args(["train", "--template", "text-classifier", "--json"])
        .args(["--param", "algorithm=maxent", "--data"])
        .arg(tmp.join("train"))
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    run_dir
}

/// 24 texts: new sentences of each topic, mixed ones, one with no known word, one empty-ish.
fn texts() -> Vec<String> {
    let mut out: Vec<String> = (0..7)
        .flat_map(|i| (0..3).map(move |t| sentence(t, 500 + i)))
        .collect();
    out.push("Garlic and the KERNEL, simmer the server! Goal?".into());
    out.push("zzz qqq unknown words only".into());
    out.push("the the the the a".into());
    out
}

fn classifier_of(m: &mut Model) -> &mut coreml_proto::proto::NeuralNetworkClassifier {
    let Some(model::Type::PipelineClassifier(p)) = &mut m.r#type else {
        panic!("not a pipeline classifier")
    };
    let Some(model::Type::NeuralNetworkClassifier(nn)) =
        &mut p.pipeline.as_mut().unwrap().models[1].r#type
    else {
        panic!("second model is not the network")
    };
    nn
}

#[test]
fn text_export_agrees_with_the_engine_on_its_own_term_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = train(tmp.path(), &cache);
    let model_path = tmp.path().join("text.mlmodel");
    let info = export(&cache, &run_dir, &model_path, "fp32");
    assert_eq!(info["specification_version"], 1);

    // Interface: terms dictionary in, classLabel / classLabelProbability out, rules in metadata.
    let m = spec::read(&model_path).unwrap();
    let desc = m.description.as_ref().unwrap();
    assert_eq!(desc.input[0].name, "terms");
    assert_eq!(desc.predicted_feature_name, "classLabel");
    let user = &desc.metadata.as_ref().unwrap().user_defined;
    assert_eq!(user["classes"], r#"["cooking","sports","tech"]"#);
    let rules: serde_json::Value = serde_json::from_str(&user["tokenizer"]).unwrap();
    assert_eq!(rules["input"], "terms");
    let vocab: Vec<String> = serde_json::from_str(&user["vocabulary"]).unwrap();
    assert!(vocab.contains(&"w:garlic".to_string()), "{vocab:?}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("text.tokenizer.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["vocabulary"].as_array().unwrap().len(), vocab.len());
    assert_eq!(sidecar["labels"][2], "tech");
    let m16 = tmp.path().join("text16.mlmodel");
    assert_eq!(
        export(&cache, &run_dir, &m16, "fp16")["specification_version"],
        2
    );

    let Some(python) = coreml_python() else {
        return;
    };
    // The engine's own in-vocabulary term counts of every text.
    let loaded = TextModel::load(&run_dir.join("model"), &candle_core::Device::Cpu).unwrap();
    let Classifier::Maxent { vectorizer, .. } = &loaded.classifier else {
        panic!("not a maxent model")
    };
    let texts = texts();
    let mut lines = String::new();
    for t in &texts {
        let counts: serde_json::Map<String, serde_json::Value> = terms(t, &vectorizer.rules)
            .into_iter()
            .filter(|(term, _)| vocab.contains(term))
            .map(|(term, c)| (term, c.into()))
            .collect();
        lines += &format!("{}\n", serde_json::json!({ "terms": counts }));
    }
    let vectors = tmp.path().join("terms.jsonl");
    std::fs::write(&vectors, lines).unwrap();
    let preds = tmp.path().join("preds.jsonl");
    let out = run(lathe(&cache)
        .args(["predict", "--json", "--top", "1000"])
        .arg(&run_dir)
        .args(&texts));
    assert!(out.status.success(), "predict failed: {}", stderr(&out));
    std::fs::write(&preds, stdout(&out)).unwrap();
    let v = vectors.to_string_lossy().into_owned();
    let extra = ["--vectors", v.as_str()];
    assert_agrees(&python, &model_path, &preds, &extra, "text maxent fp32");
    let (_, r16) = check(
        &python,
        &m16,
        &preds,
        &["--vectors", &v, "--tolerance", "1"],
    );
    eprintln!("text maxent fp16: {r16}");

    // Broken exports: IDF dropped (scale 1), the L2 normalization removed, labels swapped.
    let broken = tmp.path().join("broken.mlmodel");
    mutate(&model_path, &broken, |m| {
        for l in &mut classifier_of(m).layers {
            if let Some(Layer::Scale(s)) = &mut l.layer {
                s.scale
                    .as_mut()
                    .unwrap()
                    .float_value
                    .iter_mut()
                    .for_each(|x| *x = 1.0);
            }
        }
    });
    assert_rejected(&python, &broken, &preds, &extra, "IDF dropped");
    mutate(&model_path, &broken, |m| {
        let nn = classifier_of(m);
        nn.layers
            .retain(|l| !matches!(l.layer, Some(Layer::L2normalize(_))));
        for l in &mut nn.layers {
            if l.name == "classifier" {
                l.input = vec!["tfidf".into()];
            }
        }
    });
    assert_rejected(&python, &broken, &preds, &extra, "no L2 normalization");
    mutate(&model_path, &broken, |m| {
        if let Some(
            coreml_proto::proto::neural_network_classifier::ClassLabels::StringClassLabels(v),
        ) = &mut classifier_of(m).class_labels
        {
            v.vector.swap(0, 2);
        }
    });
    assert_rejected(&python, &broken, &preds, &extra, "labels swapped");
}
