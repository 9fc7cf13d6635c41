//! Sound front-end throughput, in seconds of audio processed per second of wall time, on one
//! thread and on all threads: (1) log-mel + windows on 16 kHz audio already in memory, (2) the
//! whole path from files (decode, downmix, resample to 16 kHz, log-mel, windows).
//! `cargo run -p lathe-engine --example sound_frontend_bench -- DIR [DIR…]` (sound files found
//! recursively; without DIR, 60 s of generated audio for (1) only).

use lathe_engine::data::audio_decode::{self, AUDIO_EXTENSIONS, SAMPLE_RATE};
use lathe_engine::data::audio_frontend::{FrontEndConfig, LogMel, WindowStream};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect(&e, out);
        } else if e
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| AUDIO_EXTENSIONS.contains(&x.to_lowercase().as_str()))
        {
            out.push(e);
        }
    }
}

fn windows_of(mel: &LogMel, x: &[f32]) -> usize {
    let mut n = 0;
    let mut s = WindowStream::new(mel);
    s.push(x, &mut |_| n += 1);
    s.finish(&mut |_| n += 1)
}

fn file_windows(mel: &LogMel, path: &Path) -> (u64, usize) {
    let mut s = WindowStream::new(mel);
    let mut n = 0;
    let samples = audio_decode::decode(path, &mut |c| {
        s.push(c, &mut |_| n += 1);
        true
    })
    .unwrap_or(0);
    s.finish(&mut |_| n += 1);
    (samples, n)
}

fn main() {
    let mel = LogMel::new(FrontEndConfig::new(1.0, 0.5, false));
    let threads = rayon::current_num_threads();
    let mut files = Vec::new();
    for d in std::env::args().skip(1) {
        collect(Path::new(&d), &mut files);
    }
    // (1) In-memory 16 kHz audio: 60 one-second-ish clips of a chirp + noise.
    let clips: Vec<Vec<f32>> = (0..60)
        .map(|k| {
            (0..SAMPLE_RATE as usize)
                .map(|i| {
                    let t = i as f32 / SAMPLE_RATE as f32;
                    (2.0 * std::f32::consts::PI * (200.0 + 50.0 * k as f32) * t * (1.0 + t)).sin()
                        * 0.3
                })
                .collect()
        })
        .collect();
    let secs = clips.len() as f64;
    let t = Instant::now();
    let w: usize = clips.iter().map(|c| windows_of(&mel, c)).sum();
    let one = secs / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _: usize = clips.par_iter().map(|c| windows_of(&mel, c)).sum();
    let all = secs / t.elapsed().as_secs_f64();
    println!("log-mel + windows, in-memory 16 kHz ({secs:.0} s of audio, {w} windows):");
    println!("  1 thread:   {one:9.0} s of audio / s");
    println!("  {threads} threads: {all:9.0} s of audio / s");
    if files.is_empty() {
        return;
    }
    let t = Instant::now();
    let (samples, windows) = files
        .iter()
        .map(|f| file_windows(&mel, f))
        .fold((0u64, 0usize), |a, b| (a.0 + b.0, a.1 + b.1));
    let audio = samples as f64 / SAMPLE_RATE as f64;
    let one = audio / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _: u64 = files.par_iter().map(|f| file_windows(&mel, f).0).sum();
    let all = audio / t.elapsed().as_secs_f64();
    println!(
        "decode + resample to 16 kHz + log-mel + windows ({} files, {audio:.0} s of audio, {windows} windows):",
        files.len()
    );
    println!("  1 thread:   {one:9.0} s of audio / s");
    println!("  {threads} threads: {all:9.0} s of audio / s");
}
