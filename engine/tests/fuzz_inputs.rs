//! The fuzz entry points (`lathe_engine::fuzz`, also behind the cargo-fuzz targets in `fuzz/`)
//! run on the stable toolchain: every seed of `fuzz/seeds/<target>/` and of the bad-input corpus
//! generator, then deterministic mutations of them (bit flips, byte overwrites with boundary
//! values, truncations, insertions, splices of two seeds). Any panic fails the test. The number
//! of executions per target is printed; `LATHE_FUZZ_SECS=N` runs each target for N seconds
//! instead of the default count (what `scripts/fuzz.sh` does without cargo-fuzz).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;

use std::path::Path;
use std::time::{Duration, Instant};

type Entry = fn(&[u8]);

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'"', b',', b'\n', b'{', b'['];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => data.truncate(rng.below(data.len() + 1)),
            3 => {
                let i = rng.below(data.len() + 1);
                let n = 1 + rng.below(16);
                let b = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(i..i, std::iter::repeat_n(b, n));
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(data.len() + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            5 if data.len() >= 4 => {
                // Overwrite a 32-bit field (sizes in headers) with a boundary value.
                let i = rng.below(data.len() - 3);
                let v = [0u32, 1, 0x7fff_ffff, 0xffff_ffff, 40_000][rng.below(5)];
                data[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ if !data.is_empty() => {
                let i = rng.below(data.len());
                let j = (i + rng.below(64)).min(data.len());
                let chunk = data[i..j].to_vec();
                let k = rng.below(data.len() + 1);
                data.splice(k..k, chunk);
            }
            _ => data.push(rng.next() as u8),
        }
    }
    data
}

fn seeds_from(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(b) = std::fs::read(&p) {
                out.push(b);
            }
        }
    }
    out
}

/// Every file under `root` whose name matches `keep`.
fn corpus_files(root: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            corpus_files(&p, keep, out);
        } else if meta.is_file()
            && keep(&p)
            && let Ok(b) = std::fs::read(&p)
        {
            out.push(b);
        }
    }
}

fn ext_is(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn run_target(name: &str, entry: Entry, mut seeds: Vec<Vec<u8>>, budget: Budget) -> usize {
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    let start = Instant::now();
    let mut execs = 0usize;
    for s in &seeds.clone() {
        entry(s);
        execs += 1;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    loop {
        let done = match budget {
            Budget::Count(n) => execs >= n,
            Budget::Time(d) => start.elapsed() >= d,
        };
        if done {
            break;
        }
        let input = mutate(&mut rng, &seeds);
        let result = std::panic::catch_unwind(|| entry(&input));
        if result.is_err() {
            let path = std::env::temp_dir().join(format!("lathe-fuzz-crash-{name}"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "fuzz target {name} panicked after {execs} executions; input saved to {}",
                path.display()
            );
        }
        execs += 1;
    }
    println!(
        "fuzz {name}: {execs} executions in {:.1} s ({} seeds), no crash",
        start.elapsed().as_secs_f64(),
        seeds.len()
    );
    execs
}

#[derive(Clone, Copy)]
enum Budget {
    Count(usize),
    Time(Duration),
}

#[test]
fn fuzz_entry_points_survive_seeds_and_mutations() {
    let budget = match std::env::var("LATHE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(secs) => Budget::Time(Duration::from_secs(secs)),
        None => Budget::Count(300),
    };
    let only = std::env::var("LATHE_FUZZ_ONLY").ok();
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("corpus");
    corpus::generate(&generated);
    let seeds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let gather = |target: &str, exts: &[&str], extra: &[&Path]| {
        let mut s = seeds_from(&seeds_dir.join(target));
        corpus_files(&generated, &|p| ext_is(p, exts), &mut s);
        for dir in extra {
            corpus_files(dir, &|p| ext_is(p, exts), &mut s);
        }
        s
    };
    let targets: Vec<(&str, Entry, Vec<Vec<u8>>)> = vec![
        (
            "table",
            lathe_engine::fuzz::table,
            gather("table", &["csv", "jsonl", "json", "tsv"], &[]),
        ),
        (
            "annotations",
            lathe_engine::fuzz::annotations,
            gather("annotations", &["json"], &[]),
        ),
        (
            "project",
            lathe_engine::fuzz::project,
            gather("project", &["toml"], &[&repo.join("templates")]),
        ),
        (
            "audio",
            lathe_engine::fuzz::audio,
            // Seed files are whole sound files; the bundled fixtures and the corpus's WAVs are
            // prefixed with the byte that gives them their own extension.
            seeds_from(&seeds_dir.join("audio"))
                .into_iter()
                .chain(
                    gather(
                        "none",
                        &["wav", "flac", "mp3", "ogg", "m4a"],
                        &[&repo.join("assets/sound-fixtures")],
                    )
                    .into_iter()
                    .map(|b| {
                        let pick = if b.starts_with(b"RIFF") {
                            0
                        } else if b.starts_with(b"fLaC") {
                            1
                        } else if b.starts_with(b"OggS") {
                            3
                        } else if b.get(4..8) == Some(b"ftyp") {
                            4
                        } else {
                            2
                        };
                        let mut out = vec![pick];
                        out.extend(b.into_iter().take(64 * 1024));
                        out
                    }),
                )
                .collect(),
        ),
        (
            "image",
            lathe_engine::fuzz::image,
            gather("image", &["png", "jpg", "jpeg", "gif", "bmp", "webp"], &[]),
        ),
    ];
    let mut total = 0;
    for (name, entry, seeds) in targets {
        if only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        total += run_target(name, entry, seeds, budget);
    }
    assert!(total > 0);
}
