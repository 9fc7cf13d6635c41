//! Entry points for fuzzing: each takes arbitrary bytes and runs one of Lathe's input parsers the
//! way training does (CSV / JSON tables and labels files, Create ML and COCO annotations,
//! project.toml, WAV and other audio, image headers and decoding). They must never panic, hang
//! or allocate without bound, whatever the bytes; errors are expected and ignored. The cargo-fuzz
//! targets in `fuzz/` call these, and `engine/tests/fuzz_inputs.rs` runs them over seeds and
//! deterministic mutations on the stable toolchain.

use std::path::{Path, PathBuf};

/// Decoding stops after this many 16 kHz samples (5 s), as training caps clip length.
const MAX_AUDIO_SAMPLES: usize = 16_000 * 5;

/// A scratch folder for parsers that read files, one per process and thread.
fn scratch() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>();
    let dir = std::env::temp_dir().join(format!("lathe-fuzz-{}-{thread}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn write(path: &Path, data: &[u8]) -> bool {
    std::fs::write(path, data).is_ok()
}

/// The table reader (`data::table`) on CSV, JSON lines and a JSON array; the text-dataset and
/// multi-label labels-file readers on the same bytes.
pub fn table(data: &[u8]) {
    let dir = scratch();
    for name in ["t.csv", "t.jsonl", "t.json"] {
        let path = dir.join(name);
        if write(&path, data) {
            let _ = crate::data::table::read(&path);
            let _ = crate::data::text_data::read_rows(&path, "text", Some("label"));
        }
    }
    let labels = dir.join("labels.csv");
    if write(&labels, data) {
        let _ = crate::data::labels_file::read(&labels);
    }
    let labels = dir.join("labels.json");
    if write(&labels, data) {
        let _ = crate::data::labels_file::read(&labels);
    }
}

/// Object-detection annotations (Create ML or COCO JSON) in a folder with two small images.
pub fn annotations(data: &[u8]) {
    let dir = scratch().join("detect");
    let _ = std::fs::create_dir_all(&dir);
    for (name, w, h) in [("a.png", 8, 6), ("b.png", 5, 9)] {
        let path = dir.join(name);
        if !path.exists() {
            let _ = image::RgbImage::new(w, h).save(&path);
        }
    }
    if write(&dir.join("annotations.json"), data) {
        let _ = crate::data::annotations::load(&dir, None);
    }
}

/// `project.toml` parsing and checking.
pub fn project(data: &[u8]) {
    // A project that parses also resolves its template and parameters.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = crate::project::Project::parse(text, Some(Path::new("project.toml")))
    {
        let _ = crate::session::prepare(&p, &Default::default());
    }
}

/// The sound path: header probe, then streamed decoding to 16 kHz mono (capped). The first byte
/// picks the extension the file is given (WAV, FLAC, MP3, OGG, M4A), the rest is the file.
pub fn audio(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ext = ["wav", "flac", "mp3", "ogg", "m4a"][pick as usize % 5];
    let path = scratch().join(format!("clip.{ext}"));
    if crate::data::audio_decode::probe(&path, body).is_ok() && write(&path, body) {
        let _ = crate::data::audio_decode::decode_to_vec(&path, MAX_AUDIO_SAMPLES);
    }
}

/// Image header probe and full decoding within Lathe's limits, then resizing as training does.
pub fn image(data: &[u8]) {
    let _ = crate::data::image_decode::probe(data);
    if let Ok(rgb) = crate::data::image_decode::decode_rgb(data) {
        let _ = crate::data::image_decode::resize(&rgb, 32, 32);
    }
}
