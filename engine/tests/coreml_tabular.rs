//! Core ML export of the table models: the pipeline's interface (one input per CSV column,
//! typed by the column's kind; classifier / regressor outputs; metadata; specification
//! versions) checked by decoding the protobuf; and, when `LATHE_COREML_PYTHON` is set, every
//! model family (boosted trees, random forests and MLPs binary / multiclass / regression,
//! logistic and ridge regression) run by the independent numpy evaluator of `tests/coreml/` on generated rows — with missing
//! values, out-of-range numbers, unseen levels and infinities — agreeing with `lathe predict`
//! to 1e-4, and deliberately broken exports rejected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod coreml_checker;

use common::*;
use coreml_checker::*;
use coreml_proto::proto::{Model, feature_type, model};
use lathe_engine::export::coreml::spec;
use std::path::Path;

/// A deterministic pseudo-random stream.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SHADES: [&str; 12] = [
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
];

/// Rows of `a` (number, some NA), `b` (number), `color` (3 levels, some empty), `shade`
/// (12 levels whose effect is not ordered, so trees split them by sets), `flag` (yes/no, some
/// missing), and targets `kind` (3 classes), `pass` (2 classes) and `score` (a number). With
/// `unusual`, some rows hold values never seen in training: numbers beyond the range, `inf`,
/// an unseen level, and a number column cell that is not a number.
fn generated_csv(path: &Path, rows: usize, seed: u64, unusual: bool) {
    let mut rng = Lcg(seed);
    let mut text = String::from("a,b,color,shade,flag,kind,pass,score\n");
    for i in 0..rows {
        let a = rng.next() * 10.0;
        let b = rng.next() * 4.0 - 2.0;
        let color = ["red", "green", "blue"][(rng.next() * 3.0) as usize % 3];
        let s = (rng.next() * 12.0) as usize % 12;
        let flag = rng.next() < 0.5;
        let score = a * 2.0
            + b * b * 3.0
            + if color == "blue" { 5.0 } else { 0.0 }
            + if flag { 2.0 } else { 0.0 }
            + [0.0, 4.0, 1.0, 5.0, 0.5, 3.0, 6.0, 2.0, 0.0, 4.5, 1.5, 3.5][s]
            + rng.next() * 0.5;
        let kind = if score < 11.0 {
            "low"
        } else if score < 18.0 {
            "mid"
        } else {
            "high"
        };
        let pass = if score > 14.0 { "yes" } else { "no" };
        let mut a_text = if i % 17 == 5 {
            "NA".to_string()
        } else {
            format!("{a:.3}")
        };
        let mut b_text = format!("{b:.3}");
        let mut color = if i % 23 == 7 { "" } else { color };
        let mut shade = SHADES[s];
        let flag = if i % 19 == 3 {
            ""
        } else if flag {
            "yes"
        } else {
            "no"
        };
        if unusual {
            match i % 10 {
                1 => a_text = "25.5".into(),
                2 => b_text = "-inf".into(),
                3 => color = "purple",
                4 => shade = "s99",
                5 => a_text = "n/a".into(),
                6 => b_text = "oops".into(),
                _ => {}
            }
        }
        text += &format!("{a_text},{b_text},{color},{shade},{flag},{kind},{pass},{score:.3}\n");
    }
    std::fs::write(path, text).unwrap();
}

fn train(cache: &Path, data: &Path, run_dir: &Path, args: &[&str]) {
    let out = run(lathe(cache)
        .arg("train")
        .args(args)
        .arg("--json")
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
}

fn pipeline(m: &Model) -> &coreml_proto::proto::Pipeline {
    match &m.r#type {
        Some(model::Type::PipelineClassifier(p)) => p.pipeline.as_ref().unwrap(),
        Some(model::Type::PipelineRegressor(p)) => p.pipeline.as_ref().unwrap(),
        other => panic!("not a pipeline: {other:?}"),
    }
}

fn pipeline_mut(m: &mut Model) -> &mut coreml_proto::proto::Pipeline {
    match &mut m.r#type {
        Some(model::Type::PipelineClassifier(p)) => p.pipeline.as_mut().unwrap(),
        Some(model::Type::PipelineRegressor(p)) => p.pipeline.as_mut().unwrap(),
        _ => panic!("not a pipeline"),
    }
}

/// The variants: (name, template, target, algorithm).
const VARIANTS: [(&str, &str, &str, &str); 5] = [
    (
        "trees-multiclass",
        "tabular-classifier",
        "kind",
        "boosted_trees",
    ),
    (
        "trees-binary",
        "tabular-classifier",
        "pass",
        "boosted_trees",
    ),
    (
        "trees-regression",
        "tabular-regressor",
        "score",
        "boosted_trees",
    ),
    ("linear-multiclass", "tabular-classifier", "kind", "linear"),
    ("linear-regression", "tabular-regressor", "score", "linear"),
];

fn train_variant(tmp: &Path, cache: &Path, v: (&str, &str, &str, &str)) -> std::path::PathBuf {
    train_variant_with(tmp, cache, v, &[])
}

/// Random forests and MLPs: (name, template, target, algorithm), small enough to train fast.
const MORE_VARIANTS: [(&str, &str, &str, &str); 6] = [
    (
        "forest-multiclass",
        "tabular-classifier",
        "kind",
        "random_forest",
    ),
    (
        "forest-binary",
        "tabular-classifier",
        "pass",
        "random_forest",
    ),
    (
        "forest-regression",
        "tabular-regressor",
        "score",
        "random_forest",
    ),
    ("mlp-multiclass", "tabular-classifier", "kind", "mlp"),
    ("mlp-binary", "tabular-classifier", "pass", "mlp"),
    ("mlp-regression", "tabular-regressor", "score", "mlp"),
];

/// Parameters that keep the forests and MLPs of the tests small.
const SMALL: [&str; 10] = [
    "--param",
    "forest_trees=12",
    "--param",
    "forest_max_leaf_nodes=64",
    "--param",
    "mlp_hidden=16",
    "--param",
    "mlp_epochs=60",
    "--param",
    "mlp_learning_rate=0.01",
];

fn train_variant_with(
    tmp: &Path,
    cache: &Path,
    v: (&str, &str, &str, &str),
    extra: &[&str],
) -> std::path::PathBuf {
    let (name, template, target, algorithm) = v;
    let ignore: Vec<&str> = ["kind", "pass", "score"]
        .into_iter()
        .filter(|t| *t != target)
        .collect();
    let run_dir = tmp.join(name);
    let ignore = format!("ignore_columns={}", ignore.join(","));
    let algorithm = format!("algorithm={algorithm}");
    train(
        cache,
        &tmp.join("train.csv"),
        &run_dir,
        &[
            "--template",
            template,
            "--target",
            target,
            "--param",
            &ignore,
            "--param",
            &algorithm,
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    );
    run_dir
}

#[test]
fn table_exports_are_pipelines_with_one_typed_input_per_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    generated_csv(&tmp.path().join("train.csv"), 600, 1, false);
    let run_dir = train_variant(tmp.path(), &cache, VARIANTS[0]);
    let path = tmp.path().join("trees.mlmodel");
    let info = export(&cache, &run_dir, &path, "fp32");
    assert_eq!(info["specification_version"], 1);
    let m = spec::read(&path).unwrap();
    assert_eq!(m.specification_version, 1);
    let desc = m.description.as_ref().unwrap();
    let inputs: Vec<(&str, &feature_type::Type)> = desc
        .input
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.r#type.as_ref().unwrap().r#type.as_ref().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "b", "color", "shade", "flag"]);
    assert!(matches!(inputs[0].1, feature_type::Type::DoubleType(_)));
    assert!(matches!(inputs[2].1, feature_type::Type::StringType(_)));
    assert!(matches!(inputs[4].1, feature_type::Type::DoubleType(_)));
    assert_eq!(desc.predicted_feature_name, "kind");
    assert_eq!(desc.predicted_probabilities_name, "kindProbability");
    let p = pipeline(&m);
    let kinds: Vec<&str> = p
        .models
        .iter()
        .map(|s| match &s.r#type {
            Some(model::Type::CategoricalMapping(_)) => "mapping",
            Some(model::Type::FeatureVectorizer(_)) => "vectorizer",
            Some(model::Type::TreeEnsembleClassifier(_)) => "trees",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["mapping", "mapping", "vectorizer", "trees"]);
    let meta = desc.metadata.as_ref().unwrap();
    assert!(meta.short_description.contains("gradient-boosted trees"));
    assert_eq!(meta.author, "Made with Lathe");
    let user = &meta.user_defined;
    assert_eq!(user["target"], "kind");
    let columns: serde_json::Value = serde_json::from_str(&user["columns"]).unwrap();
    assert_eq!(columns[4]["kind"], "boolean");
    assert_eq!(user["data_blake3_train"].len(), 64);
    assert!(user["training_params"].contains("boosted_trees"));

    // fp16 leaves trees as they are (spec 1); a linear model's weights go to fp16 (spec 2).
    let info = export(&cache, &run_dir, &tmp.path().join("t16.mlmodel"), "fp16");
    assert_eq!(info["specification_version"], 1);
    let linear = train_variant(tmp.path(), &cache, VARIANTS[4]);
    let l16 = tmp.path().join("l16.mlmodel");
    let info = export(&cache, &linear, &l16, "fp16");
    assert_eq!(info["specification_version"], 2);
    let m = spec::read(&l16).unwrap();
    assert!(matches!(m.r#type, Some(model::Type::PipelineRegressor(_))));
    let desc = m.description.unwrap();
    assert_eq!(desc.output[0].name, "score");
    assert!(desc.predicted_feature_name.is_empty());
}

#[test]
fn table_exports_agree_with_the_engine_and_broken_exports_are_caught() {
    let Some(python) = coreml_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    generated_csv(&tmp.path().join("train.csv"), 1000, 1, false);
    let rows = tmp.path().join("rows.csv");
    generated_csv(&rows, 60, 7, true);
    let table = rows.to_string_lossy().into_owned();
    let extra = ["--table", table.as_str()];
    let mut exports = Vec::new();
    for v in VARIANTS {
        let name = v.0;
        let run_dir = train_variant(tmp.path(), &cache, v);
        let preds = tmp.path().join(format!("{name}.jsonl"));
        predictions(&cache, &run_dir, std::slice::from_ref(&rows), &[], &preds);
        let model = tmp.path().join(format!("{name}.mlmodel"));
        export(&cache, &run_dir, &model, "fp32");
        assert_agrees(&python, &model, &preds, &extra, &format!("{name} fp32"));
        let model16 = tmp.path().join(format!("{name}-fp16.mlmodel"));
        export(&cache, &run_dir, &model16, "fp16");
        let (_, r16) = check(
            &python,
            &model16,
            &preds,
            &["--table", &table, "--tolerance", "1"],
        );
        eprintln!("{name} fp16: {r16}");
        exports.push((model, preds));
    }

    // Deliberately wrong exports must fail the check.
    let broken = tmp.path().join("broken.mlmodel");
    let (trees, trees_preds) = &exports[0];
    // Two levels of `color` swap codes.
    mutate(trees, &broken, |m| {
        let Some(model::Type::CategoricalMapping(c)) = &mut pipeline_mut(m).models[0].r#type else {
            panic!("first model is not the color mapping")
        };
        let Some(coreml_proto::proto::categorical_mapping::MappingType::StringToInt64Map(map)) =
            &mut c.mapping_type
        else {
            panic!("not a string map")
        };
        let blue = map.map["blue"];
        let red = map.map["red"];
        map.map.insert("blue".into(), red);
        map.map.insert("red".into(), blue);
    });
    assert_rejected(
        &python,
        &broken,
        trees_preds,
        &extra,
        "color levels swapped",
    );
    // Missing values routed the other way.
    mutate(trees, &broken, |m| {
        let Some(model::Type::TreeEnsembleClassifier(t)) =
            &mut pipeline_mut(m).models.last_mut().unwrap().r#type
        else {
            panic!("last model is not the trees")
        };
        for n in &mut t.tree_ensemble.as_mut().unwrap().nodes {
            n.missing_value_tracks_true_child = !n.missing_value_tracks_true_child;
        }
    });
    assert_rejected(
        &python,
        &broken,
        trees_preds,
        &extra,
        "missing values flipped",
    );
    // The linear model imputes 0 instead of the medians.
    let (linear, linear_preds) = &exports[3];
    mutate(linear, &broken, |m| {
        let imputer = pipeline_mut(m)
            .models
            .iter_mut()
            .find_map(|s| match &mut s.r#type {
                Some(model::Type::Imputer(i)) => Some(i),
                _ => None,
            })
            .unwrap();
        let Some(coreml_proto::proto::imputer::ImputedValue::ImputedDoubleArray(v)) =
            &mut imputer.imputed_value
        else {
            panic!("no imputed array")
        };
        v.vector.iter_mut().for_each(|x| *x = 0.0);
    });
    assert_rejected(
        &python,
        &broken,
        linear_preds,
        &extra,
        "medians replaced by 0",
    );
    // The regressor's clip to the training range removed (out-of-range rows then differ).
    let (ridge, ridge_preds) = &exports[4];
    mutate(ridge, &broken, |m| {
        let Some(model::Type::NeuralNetworkRegressor(nn)) =
            &mut pipeline_mut(m).models.last_mut().unwrap().r#type
        else {
            panic!("last model is not the network")
        };
        for l in &mut nn.layers {
            if l.name == "linear.numbers" {
                // Read the imputed vector (the network's input) instead of the clipped one.
                l.input = vec!["imputed".into()];
            }
        }
    });
    assert_rejected(&python, &broken, ridge_preds, &extra, "clipping skipped");
}

/// The layers of a pipeline's last model, a network.
fn network(m: &mut Model) -> &mut Vec<coreml_proto::proto::NeuralNetworkLayer> {
    match &mut pipeline_mut(m).models.last_mut().unwrap().r#type {
        Some(model::Type::NeuralNetworkClassifier(nn)) => &mut nn.layers,
        Some(model::Type::NeuralNetworkRegressor(nn)) => &mut nn.layers,
        other => panic!("last model is not a network: {other:?}"),
    }
}

/// The kinds of a pipeline's models, in order.
fn kinds(m: &Model) -> Vec<&'static str> {
    pipeline(m)
        .models
        .iter()
        .map(|s| match &s.r#type {
            Some(model::Type::CategoricalMapping(_)) => "mapping",
            Some(model::Type::FeatureVectorizer(_)) => "vectorizer",
            Some(model::Type::Imputer(_)) => "imputer",
            Some(model::Type::TreeEnsembleClassifier(_)) => "trees classifier",
            Some(model::Type::TreeEnsembleRegressor(_)) => "trees regressor",
            Some(model::Type::NeuralNetworkClassifier(_)) => "network classifier",
            Some(model::Type::NeuralNetworkRegressor(_)) => "network regressor",
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn forest_and_mlp_exports_agree_with_the_engine_and_broken_ones_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    generated_csv(&tmp.path().join("train.csv"), 1000, 1, false);
    let rows = tmp.path().join("rows.csv");
    generated_csv(&rows, 60, 7, true);
    let table = rows.to_string_lossy().into_owned();
    let extra = ["--table", table.as_str()];
    let python = coreml_python();
    let mut exports = Vec::new();
    for v in MORE_VARIANTS {
        let name = v.0;
        let run_dir = train_variant_with(tmp.path(), &cache, v, &SMALL);
        let model = tmp.path().join(format!("{name}.mlmodel"));
        let info = export(&cache, &run_dir, &model, "fp32");
        assert_eq!(info["specification_version"], 1, "{name}");
        let m = spec::read(&model).unwrap();
        let title = if name.starts_with("forest") {
            "random forest"
        } else {
            "MLP"
        };
        let desc = m.description.as_ref().unwrap();
        assert!(
            desc.metadata
                .as_ref()
                .unwrap()
                .short_description
                .contains(title),
            "{name}"
        );
        let expected: &[&str] = match name {
            "forest-regression" => &["mapping", "mapping", "vectorizer", "trees regressor"],
            "forest-multiclass" | "forest-binary" => &[
                "mapping",
                "mapping",
                "vectorizer",
                "trees regressor",
                "network classifier",
            ],
            "mlp-regression" => &[
                "mapping",
                "mapping",
                "vectorizer",
                "imputer",
                "network regressor",
            ],
            _ => &[
                "mapping",
                "mapping",
                "vectorizer",
                "imputer",
                "network classifier",
            ],
        };
        assert_eq!(kinds(&m), expected, "{name}");
        let Some(python) = &python else {
            continue;
        };
        let preds = tmp.path().join(format!("{name}.jsonl"));
        predictions(&cache, &run_dir, std::slice::from_ref(&rows), &[], &preds);
        assert_agrees(python, &model, &preds, &extra, &format!("{name} fp32"));
        if name.starts_with("mlp") {
            // fp16 weights (spec 2): reported, not held to 1e-4.
            let model16 = tmp.path().join(format!("{name}-fp16.mlmodel"));
            let info = export(&cache, &run_dir, &model16, "fp16");
            assert_eq!(info["specification_version"], 2, "{name}");
            let (_, r16) = check(
                python,
                &model16,
                &preds,
                &["--table", &table, "--tolerance", "1"],
            );
            eprintln!("{name} fp16: {r16}");
        }
        exports.push((model, preds));
    }
    let Some(python) = python else {
        return;
    };

    // Deliberately wrong exports must fail the check.
    let broken = tmp.path().join("broken.mlmodel");
    // The forest's class frequencies through a softmax instead of over their total.
    let (forest, forest_preds) = &exports[0];
    mutate(forest, &broken, |m| {
        let layers = network(m);
        let p = layers
            .iter_mut()
            .find(|l| l.name == "forest.probabilities")
            .unwrap();
        p.input = vec!["forest.clip.low".into()];
        p.layer = Some(coreml_proto::proto::neural_network_layer::Layer::Softmax(
            Default::default(),
        ));
    });
    assert_rejected(
        &python,
        &broken,
        forest_preds,
        &extra,
        "forest normalized by softmax",
    );
    // A forest whose leaves all hold 0 (no class has any frequency) predicts the uniform
    // distribution, as the engine's `forest::probabilities` does.
    let zero = tmp.path().join("zero-forest.mlmodel");
    let mut labels = Vec::new();
    mutate(forest, &zero, |m| {
        let models = &mut pipeline_mut(m).models;
        let Some(model::Type::NeuralNetworkClassifier(nn)) = &models.last().unwrap().r#type else {
            panic!("last model is not the network")
        };
        let Some(coreml_proto::proto::neural_network_classifier::ClassLabels::StringClassLabels(l)) =
            &nn.class_labels
        else {
            panic!("no string labels")
        };
        labels.clone_from(&l.vector);
        let n = models.len();
        let Some(model::Type::TreeEnsembleRegressor(t)) = &mut models[n - 2].r#type else {
            panic!("the trees do not come before the network")
        };
        for node in &mut t.tree_ensemble.as_mut().unwrap().nodes {
            for e in &mut node.evaluation_info {
                e.evaluation_value = 0.0;
            }
        }
    });
    let uniform: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|l| (l.clone(), serde_json::json!(1.0 / labels.len() as f64)))
        .collect();
    let uniform_preds = tmp.path().join("uniform.jsonl");
    let line = serde_json::json!({"input": "row", "label": labels[0], "probabilities": uniform});
    std::fs::write(&uniform_preds, format!("{line}\n").repeat(60)).unwrap();
    let d = assert_agrees(
        &python,
        &zero,
        &uniform_preds,
        &extra,
        "forest without frequencies",
    );
    assert!(d < 1e-6, "{d}");

    // One tree of the regression forest left out.
    let (forest_reg, forest_reg_preds) = &exports[2];
    mutate(forest_reg, &broken, |m| {
        let Some(model::Type::TreeEnsembleRegressor(t)) =
            &mut pipeline_mut(m).models.last_mut().unwrap().r#type
        else {
            panic!("last model is not the trees")
        };
        let e = t.tree_ensemble.as_mut().unwrap();
        e.nodes.retain(|n| n.tree_id != 0);
    });
    assert_rejected(
        &python,
        &broken,
        forest_reg_preds,
        &extra,
        "one forest tree dropped",
    );
    // The MLP's inputs not standardized.
    let (mlp, mlp_preds) = &exports[3];
    mutate(mlp, &broken, |m| {
        for l in network(m) {
            if let Some(coreml_proto::proto::neural_network_layer::Layer::Scale(s)) = &mut l.layer
                && l.name.starts_with("standardize")
            {
                let n = s.shape_scale[0] as usize;
                s.scale = Some(lathe_engine::export::coreml::builder::fp32_weights(
                    &vec![1.0; n],
                ));
                s.bias = Some(lathe_engine::export::coreml::builder::fp32_weights(
                    &vec![0.0; n],
                ));
            }
        }
    });
    assert_rejected(&python, &broken, mlp_preds, &extra, "MLP not standardized");
}

#[test]
fn training_with_formats_coreml_writes_the_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    generated_csv(&tmp.path().join("rows.csv"), 300, 3, false);
    std::fs::write(
        tmp.path().join("project.toml"),
        "format_version = 1\nname = \"rows\"\ntemplate = \"tabular-regressor\"\n\
         [data]\ntrain = \"rows.csv\"\n[params]\ntarget = \"score\"\nignore_columns = \"kind,pass\"\n\
         [export]\nformats = [\"safetensors\", \"coreml\"]\n",
    )
    .unwrap();
    let run_dir = tmp.path().join("run");
    let out = run(lathe(&tmp.path().join("cache"))
        .arg("train")
        .arg(tmp.path().join("project.toml"))
        .args(["--json", "--out"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let exported = events
        .iter()
        .find(|e| e["event"] == "exported" && e["format"] == "coreml")
        .unwrap_or_else(|| panic!("no Core ML export event in {events:?}"));
    assert_eq!(
        exported["path"].as_str().unwrap(),
        run_dir.join("exports/model.mlmodel").to_str().unwrap()
    );
    let m = spec::read(&run_dir.join("exports/model.mlmodel")).unwrap();
    assert!(matches!(m.r#type, Some(model::Type::PipelineRegressor(_))));
    assert!(!events.iter().any(
        |e| e["event"] == "warning" && e["message"].as_str().unwrap_or("").contains("Core ML")
    ));
}
