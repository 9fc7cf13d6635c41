//! End-to-end tests of the text classifier through the `lathe` CLI: class folders of .txt files
//! (with badly encoded files), CSV / JSON-lines tables with chosen columns, predict on typed text
//! and files, evaluate, export, clear errors; and, when `LATHE_MINILM` points at the fetched
//! all-MiniLM-L6-v2 folder (`scripts/fetch-minilm.sh`), the encoder's golden embeddings and an
//! `auto` run that trains both algorithms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fetched, json_lines, lathe, run, stderr, stdout};
use std::path::{Path, PathBuf};

const TOPICS: [(&str, [&str; 8]); 3] = [
    (
        "cooking",
        [
            "oven", "flour", "butter", "simmer", "garlic", "recipe", "sauce", "bake",
        ],
    ),
    (
        "sports",
        [
            "goal", "match", "striker", "referee", "league", "coach", "score", "stadium",
        ],
    ),
    (
        "tech",
        [
            "compiler", "kernel", "server", "python", "database", "cache", "thread", "rust",
        ],
    ),
];
const COMMON: [&str; 8] = ["the", "a", "is", "and", "today", "we", "really", "with"];

/// A deterministic sentence of topic `t`, number `i`.
fn sentence(t: usize, i: usize) -> String {
    let mut state = (t * 7919 + i * 104_729 + 17) as u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let mut words = Vec::new();
    for k in 0..10 {
        if k % 2 == 0 {
            words.push(TOPICS[t].1[next(8)]);
        } else {
            words.push(COMMON[next(8)]);
        }
    }
    let mut s = words.join(" ");
    s.push('.');
    s
}

fn make_folder(root: &Path, per_class: usize, offset: usize) {
    for (t, (name, _)) in TOPICS.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            std::fs::write(dir.join(format!("{i:03}.txt")), sentence(t, i + offset)).unwrap();
        }
    }
}

fn make_csv(path: &Path, per_class: usize, offset: usize) {
    let mut s = String::from("id,body,topic\n");
    for i in 0..per_class {
        for (t, (name, _)) in TOPICS.iter().enumerate() {
            s.push_str(&format!(
                "{i},\"{}, \"\"quoted\"\"\",{name}\n",
                sentence(t, i + offset)
            ));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn train(cache: &Path, data: &Path, run_dir: &Path, extra: &[&str]) -> std::process::Output {
    run(lathe(cache)
        .args(["train", "--template", "text-classifier", "--json"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run_dir)
        .args(extra))
}

fn report(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn maxent_on_class_folders_with_bad_encodings_trains_evaluates_predicts_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("train");
    let test = tmp.path().join("test");
    make_folder(&data, 20, 0);
    make_folder(&test, 6, 1000);
    // Latin-1 bytes (not UTF-8) and UTF-16 with a byte-order mark: decoded with a warning.
    std::fs::write(
        data.join("cooking/latin1.txt"),
        b"cr\xe8me br\xfbl\xe9e in the oven with butter",
    )
    .unwrap();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "kernel thread on the server"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    std::fs::write(data.join("tech/utf16.txt"), utf16).unwrap();
    std::fs::write(data.join("sports/empty.txt"), b"  \n").unwrap();
    let run_dir = tmp.path().join("run");
    let out = train(
        &cache,
        &data,
        &run_dir,
        &[
            "--test",
            test.to_str().unwrap(),
            "--param",
            "algorithm=maxent",
        ],
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let warnings: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e.to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("not valid UTF-8") && w.contains(".txt")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("empty.txt")),
        "{warnings:?}"
    );
    assert!(events.iter().any(|e| e["event"] == "epoch_end"));
    assert_eq!(events.last().unwrap()["outcome"]["status"], "completed");
    let r = report(&run_dir);
    assert_eq!(r["algorithm"], "maxent");
    let acc = r["evaluation"]["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    for f in [
        "model/model.safetensors",
        "model/config.json",
        "model/manifest.json",
        "report/loss.png",
        "report/confusion_matrix_test.png",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["lathe"]["task"], "text-classification");
    assert!(config["vectorizer"]["vocabulary"].as_array().unwrap().len() > 20);
    let tensors = safetensors::SafeTensors::deserialize(
        &std::fs::read(run_dir.join("model/model.safetensors")).unwrap(),
    )
    .unwrap()
    .names()
    .len();
    assert_eq!(tensors, 3);

    // evaluate --json on the test folder reproduces the report's accuracy.
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&test));
    assert!(out.status.success(), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!((e["accuracy"].as_f64().unwrap() - acc).abs() < 1e-9, "{e}");

    // predict: typed text and a file.
    let file = tmp.path().join("note.txt");
    std::fs::write(&file, "the striker scored a goal in the stadium").unwrap();
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg("garlic butter sauce, bake in the oven")
        .arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["label"], "cooking");
    assert_eq!(preds[1]["label"], "sports");
    assert_eq!(preds[1]["input"], file.to_str().unwrap());

    // export copies a loadable folder.
    let exported = tmp.path().join("exported");
    let out = run(lathe(&cache)
        .args(["export", "--format", "safetensors"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&exported));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&exported)
        .arg("database server cache"));
    assert_eq!(json_lines(&stdout(&out))[0]["label"], "tech");
}

#[test]
fn csv_and_jsonl_tables_with_chosen_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("train.csv");
    make_csv(&data, 20, 0);
    let test = tmp.path().join("test.jsonl");
    let mut lines = String::new();
    for i in 0..5 {
        for (t, (name, _)) in TOPICS.iter().enumerate() {
            lines.push_str(
                &serde_json::json!({"body": sentence(t, 500 + i), "topic": name}).to_string(),
            );
            lines.push('\n');
        }
    }
    lines.push_str("{broken json\n");
    std::fs::write(&test, lines).unwrap();

    // Wrong column: one clear error naming the file and the flag.
    let out = train(&cache, &data, &tmp.path().join("r0"), &[]);
    assert_eq!(out.status.code(), Some(1));
    // With --json the error is the `finished` event's message.
    let err = stdout(&out);
    assert!(
        err.contains("--text-column") && err.contains("train.csv") && err.contains("body"),
        "{err}"
    );

    let run_dir = tmp.path().join("run");
    let out = train(
        &cache,
        &data,
        &run_dir,
        &[
            "--text-column",
            "body",
            "--target",
            "topic",
            "--test",
            test.to_str().unwrap(),
            "--param",
            "algorithm=maxent",
        ],
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "warning" && e.to_string().contains("malformed")),
        "the broken JSON line is reported"
    );
    let r = report(&run_dir);
    assert_eq!(r["data"]["num_test"], 15);
    assert!(
        r["evaluation"]["test"]["accuracy"].as_f64().unwrap() > 0.9,
        "{}",
        r["evaluation"]["test"]
    );
    // The sample inputs name the row.
    assert!(r["evaluation"]["test"].to_string().contains("test.jsonl:"));

    // evaluate on the CSV, predict on a CSV of rows without labels.
    let out = run(lathe(&cache)
        .args(["evaluate", "--json"])
        .arg(&run_dir)
        .arg("--data")
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = tmp.path().join("rows.csv");
    std::fs::write(
        &rows,
        "body\nreferee and coach at the league match\ncompiler thread in rust\n",
    )
    .unwrap();
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run_dir)
        .arg(&rows));
    assert!(out.status.success(), "{}", stderr(&out));
    let preds = json_lines(&stdout(&out));
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["label"], "sports");
    assert_eq!(preds[1]["label"], "tech");
    assert!(
        preds[1]["input"].as_str().unwrap().ends_with("rows.csv:3"),
        "{}",
        preds[1]
    );

    // --text-column is refused by a template without text.
    let out = run(lathe(&cache)
        .args([
            "train",
            "--template",
            "image-classifier",
            "--text-column",
            "x",
            "--data",
        ])
        .arg(tmp.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--text-column does not apply"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn transfer_without_encoder_weights_is_a_clear_error_and_auto_falls_back_to_maxent() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("train");
    make_folder(&data, 8, 0);
    let hf = tmp.path().join("hf");
    let out = run(lathe(&cache)
        .env("HF_HOME", &hf)
        .args([
            "train",
            "--template",
            "text-classifier",
            "--param",
            "algorithm=transfer",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("r1")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("fetch-minilm.sh") && err.contains("--weights"),
        "{err}"
    );

    let run_dir = tmp.path().join("r2");
    let out = run(lathe(&cache)
        .env("HF_HOME", &hf)
        .args(["train", "--template", "text-classifier", "--json", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&run_dir);
    assert_eq!(r["algorithm"], "maxent");
    assert!(
        r["candidates"].to_string().contains("skipped"),
        "{}",
        r["candidates"]
    );
}

fn minilm() -> Option<PathBuf> {
    fetched("LATHE_MINILM", "the folder scripts/fetch-minilm.sh prints")
}

/// The encoder matches the numpy reference (scripts/minilm_reference.py, committed as
/// assets/text/minilm_golden.json) within 1e-4 per dimension, texts batched together (padding).
#[test]
fn minilm_embeddings_match_the_reference_when_weights_are_present() {
    let Some(dir) = minilm() else { return };
    let files = lathe_engine::nets::text_encoder::locate(Some(&dir), false).unwrap();
    let encoder =
        lathe_engine::nets::text_encoder::TextEncoder::load(&files, &candle_core::Device::Cpu)
            .unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/text/minilm_golden.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let items = golden["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let got = encoder.embed(&texts).unwrap();
    let mut worst = 0f64;
    for (g, item) in got.iter().zip(items) {
        let want: Vec<f64> = serde_json::from_value(item["embedding"].clone()).unwrap();
        assert_eq!(g.len(), want.len());
        for (a, b) in g.iter().zip(&want) {
            worst = worst.max((*a as f64 - b).abs());
        }
    }
    eprintln!("largest difference to the reference: {worst:e}");
    assert!(worst < 1e-4, "largest difference {worst}");
}

#[test]
fn auto_trains_both_algorithms_and_the_transfer_model_reloads_when_weights_are_present() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let data = tmp.path().join("train");
    make_folder(&data, 10, 0);
    let run_dir = tmp.path().join("run");
    let out = train(
        &cache,
        &data,
        &run_dir,
        &[
            "--weights",
            dir.to_str().unwrap(),
            "--param",
            "head=mlp",
            "--epochs",
            "30",
        ],
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let r = report(&run_dir);
    let algos: Vec<String> = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["algorithm"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(algos, vec!["maxent", "transfer"], "{}", r["candidates"]);

    // The transfer model (forced) exports a head + encoder reference and predicts after reload.
    let run2 = tmp.path().join("run2");
    let out = train(
        &cache,
        &data,
        &run2,
        &[
            "--weights",
            dir.to_str().unwrap(),
            "--param",
            "algorithm=transfer",
            "--epochs",
            "30",
        ],
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let events = json_lines(&stdout(&out));
    assert!(
        events.iter().any(|e| e["event"] == "cache"),
        "second extraction reuses the cached embeddings"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run2.join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["algorithm"], "transfer");
    assert_eq!(config["encoder"]["id"], "all-MiniLM-L6-v2");
    assert!(run2.join("model/tokenizer.json").is_file());
    let out = run(lathe(&cache)
        .args(["predict", "--json"])
        .arg(&run2)
        .arg("the referee stopped the match"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&stdout(&out))[0]["label"], "sports");
}
