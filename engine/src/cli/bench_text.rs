//! `lathe bench --text-encoder DIR`: sentence-embedding throughput of the text classifier's
//! encoder (all-MiniLM-L6-v2) on this machine, in sentences per second.

use crate::data::text_data;
use crate::nets::text_encoder::{self, TextEncoder};
use anyhow::{Result, bail};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Texts to embed: a table's `text` column, a .txt file's non-empty lines, or generated sentences.
fn texts(file: Option<&Path>, count: usize) -> Result<(String, Vec<String>)> {
    let Some(file) = file else {
        let words = [
            "model", "data", "the", "quick", "fox", "trains", "on", "a", "small", "machine",
            "every", "night",
        ];
        let generated = (0..count)
            .map(|i| {
                (0..8 + i % 17)
                    .map(|k| words[(i * 7 + k * 5) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        return Ok(("generated sentences of 8-24 words".into(), generated));
    };
    let all: Vec<String> = if text_data::is_table(file) {
        text_data::read_rows(file, "text", None)?
            .rows
            .into_iter()
            .map(|r| r.text)
            .collect()
    } else {
        let (t, _) = text_data::decode(&std::fs::read(file)?);
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    if all.is_empty() {
        bail!("no texts in {}", file.display());
    }
    Ok((
        file.display().to_string(),
        all.into_iter().take(count).collect(),
    ))
}

pub fn run(
    dir: &Path,
    file: Option<&Path>,
    count: usize,
    batch: usize,
    device: &str,
    as_json: bool,
) -> Result<ExitCode> {
    let device = crate::device::open(device)?;
    let encoder = TextEncoder::load(&text_encoder::locate(Some(dir), false)?, &device)?;
    let (source, texts) = texts(file, count)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    encoder.embed(&refs[..batch.min(refs.len())])?;
    let t = Instant::now();
    encoder.embed_many(&refs, batch, &mut |_| {}, &|| Ok(()))?;
    let secs = t.elapsed().as_secs_f64();
    let rate = refs.len() as f64 / secs;
    let threads = rayon::current_num_threads();
    if as_json {
        println!(
            "{}",
            json!({
                "machine": { "threads": threads, "device": crate::device::label(&device), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
                "text_embedding": { "encoder": text_encoder::ENCODER_ID, "source": source, "sentences": refs.len(), "batch": batch, "max_tokens": text_encoder::MAX_TOKENS, "seconds": secs, "sentences_per_sec": rate },
            })
        );
    } else {
        println!(
            "{} sentence embeddings ({source}, {} texts, batch {batch}, {}, {threads} threads):",
            text_encoder::ENCODER_ID,
            refs.len(),
            crate::device::label(&device)
        );
        println!("  {rate:8.1} sentences/s");
    }
    Ok(ExitCode::SUCCESS)
}
