//! The bad-input corpus: a generator that writes, for every loader Lathe has (image folders,
//! multi-label labels files, text folders / CSV / JSON lines, sound folders, tables, detection
//! annotations in Create ML and COCO form, project.toml), small datasets broken in one way each —
//! corrupt, truncated, zero-byte and mislabelled files, a decompression bomb, odd encodings,
//! ragged CSV, malformed JSON, escaping paths, symlink loops, odd class names — together with the
//! outcome each must have: refused with an error naming the file, or accepted with a warning.
//! `engine/tests/bad_input.rs` runs the real `lathe` binary on every case.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

/// What `lathe` must do with a case.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Exit 1 with an `error:` line that contains the fragment (the file or folder it names).
    Refused(String),
    /// Exit 0 with a `warning` that contains the fragment.
    Warned(String),
    /// Exit 0.
    Accepted,
}

/// One broken dataset.
pub struct Case {
    /// Loader / what is broken, e.g. `image/zero-byte`.
    pub name: String,
    /// Template the data is checked and trained with.
    pub template: &'static str,
    /// The data path (a folder, a table file or a project.toml).
    pub data: PathBuf,
    /// Extra arguments for `lathe check` / `lathe train` (parameters).
    pub params: Vec<String>,
    /// Outcome of `lathe check`.
    pub check: Expect,
    /// Outcome of `lathe train --epochs 1`, when training is cheap enough to run.
    pub train: Option<Expect>,
}

fn refused(s: &str) -> Expect {
    Expect::Refused(s.into())
}

fn warned(s: &str) -> Expect {
    Expect::Warned(s.into())
}

/// Deterministic bytes that are no known file format.
pub fn garbage(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Keep away from the magic numbers of real formats (PNG, JPEG, RIFF, GIF, BMP…).
            (x % 200) as u8 + 1
        })
        .collect()
}

/// A small PNG of class `class`, varied by `i`.
pub fn png_bytes(class: usize, i: usize, size: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(size, size, |x, y| {
        let n = ((x * 7 + y * 3 + i as u32 * 11) % 40) as u8;
        match class % 3 {
            0 => Rgb([200 + n / 2, 30, 30 + n]),
            1 => Rgb([30 + n, 200 - n, 30]),
            _ => Rgb([30, 30 + n, 200 + n / 2]),
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The same image as a JPEG.
pub fn jpeg_bytes(class: usize, i: usize, size: u32) -> Vec<u8> {
    let img = image::load_from_memory(&png_bytes(class, i, size)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&(data.len() as u32).to_be_bytes());
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc_in = kind.to_vec();
    crc_in.extend_from_slice(data);
    c.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    c
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A decompression bomb: a valid PNG header claiming `side`×`side` RGB pixels (40000² = 4.8 GB
/// decoded) followed by a deflate stream of zeros that would expand to fill it.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend(png_chunk(b"IHDR", &ihdr));
    // A zlib stream of stored-free deflate: fixed-Huffman blocks of zeros. Simplest valid form:
    // compress 1 MiB of zeros with the image crate's own encoder path is not available, so use
    // a minimal zlib header + a run of empty fixed blocks ending with a final one.
    let mut z = vec![0x78, 0x9C];
    // Fixed-Huffman final block with a single literal 0 then end-of-block: bytes 0x63 0x00 0x00.
    z.extend_from_slice(&[0x63, 0x00, 0x00]);
    z.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]);
    out.extend(png_chunk(b"IDAT", &z));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A 16-bit mono WAV of a tone (`class` picks the pitch), `secs` long.
pub fn wav_bytes(class: usize, k: usize, secs: f32) -> Vec<u8> {
    let rate = 16_000u32;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cur = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        let f0 = [220.0, 1800.0, 600.0][class % 3] + 13.0 * k as f32;
        for i in 0..(rate as f32 * secs) as usize {
            let t = i as f32 / rate as f32;
            let v = (2.0 * std::f32::consts::PI * f0 * t).sin() * 0.4;
            w.write_sample((v * 32000.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// An M4A header whose `stsc` table claims 0xFFFF_FFFF entries but holds one.
pub fn m4a_table_bomb() -> Vec<u8> {
    let mut stsc = vec![0, 0, 0, 0];
    stsc.extend_from_slice(&u32::MAX.to_be_bytes());
    stsc.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    let stbl = mp4_box(b"stbl", &mp4_box(b"stsc", &stsc));
    let minf = mp4_box(b"minf", &stbl);
    let trak = mp4_box(b"trak", &mp4_box(b"mdia", &minf));
    let mut out = mp4_box(b"ftyp", b"M4A \0\0\0\0isomiso2");
    out.extend(mp4_box(b"moov", &trak));
    out
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `root/<class>/<i>.png`, `per_class` images for each class.
fn image_folder(root: &Path, classes: &[&str], per_class: usize) {
    std::fs::create_dir_all(root).unwrap();
    for (c, name) in classes.iter().enumerate() {
        for i in 0..per_class {
            write(
                &root.join(name).join(format!("{i:02}.png")),
                png_bytes(c, i, 24),
            );
        }
    }
}

/// `root/<class>/<i>.wav`.
fn sound_folder(root: &Path, classes: &[&str], per_class: usize) {
    std::fs::create_dir_all(root).unwrap();
    for (c, name) in classes.iter().enumerate() {
        for i in 0..per_class {
            write(
                &root.join(name).join(format!("{i:02}.wav")),
                wav_bytes(c, i, 0.5),
            );
        }
    }
}

const WORDS: [&[&str]; 2] = [
    &["goal", "match", "team", "score", "league", "coach"],
    &["recipe", "oven", "flour", "sugar", "bake", "butter"],
];

fn sentence(class: usize, i: usize) -> String {
    let w = WORDS[class % 2];
    (0..6)
        .map(|k| w[(i * 5 + k * 3) % w.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// `root/<sports|cooking>/<i>.txt`.
fn text_folder(root: &Path, per_class: usize) {
    std::fs::create_dir_all(root).unwrap();
    for (c, name) in ["sports", "cooking"].iter().enumerate() {
        for i in 0..per_class {
            write(&root.join(name).join(format!("{i:02}.txt")), sentence(c, i));
        }
    }
}

/// A `text,label` CSV body with `rows` rows per class (no header).
fn text_rows(rows: usize) -> String {
    let mut s = String::new();
    for i in 0..rows {
        for (c, name) in ["sports", "cooking"].iter().enumerate() {
            s += &format!("\"{}\",{name}\n", sentence(c, i));
        }
    }
    s
}

/// A `a,b,color,label` table body with `rows` rows (no header); `label` follows `a`.
fn table_rows(rows: usize) -> String {
    let mut s = String::new();
    for i in 0..rows {
        let a = (i * 37 % 100) as f64 / 10.0;
        let b = (i * 13 % 50) as f64 / 10.0 - 2.5;
        let color = ["red", "green", "blue"][i % 3];
        let label = if a > 5.0 { "high" } else { "low" };
        s += &format!("{a},{b},{color},{label}\n");
    }
    s
}

fn ok_box() -> &'static str {
    r#"{"label": "cat", "coordinates": {"x": 20, "y": 16, "width": 12, "height": 10}}"#
}

/// A detection folder with `n` 48×40 images (`img0.png`…) and the given annotations.json.
fn detect_folder(root: &Path, n: usize, annotations: &str) {
    for i in 0..n {
        write(&root.join(format!("img{i}.png")), png_bytes(i, i, 40));
    }
    write(&root.join("annotations.json"), annotations);
}

/// Create ML annotations for `img0.png`…`img{n-1}.png`, each with one good box.
fn createml_ok(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"image": "img{i}.png", "annotations": [{}]}}"#,
                ok_box()
            )
        })
        .collect()
}

fn project(root: &Path, body: &str) -> PathBuf {
    image_folder(&root.join("data"), &["cat", "dog"], 3);
    let path = root.join("project.toml");
    write(&path, body);
    path
}

/// A folder per activity (`still`, `shake`) of `per_class` CSV sessions of 150 samples.
fn activity_folder(root: &Path, per_class: usize) {
    for (c, class) in ["still", "shake"].iter().enumerate() {
        for k in 0..per_class {
            let mut s = String::from("timestamp,acc_x,acc_y,acc_z\n");
            for i in 0..150 {
                let t = i as f32 / 50.0;
                let v = if c == 0 {
                    0.01 * ((i * 7 + k) % 5) as f32
                } else {
                    (t * 12.0 + k as f32).sin() * 3.0
                };
                s.push_str(&format!(
                    "{t:.2},{v:.4},{:.4},{:.4}\n",
                    0.5 * v,
                    9.8 + 0.2 * v
                ));
            }
            write(&root.join(class).join(format!("s{k}.csv")), s);
        }
    }
}

/// Writes every case under `root` and returns them.
pub fn generate(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str,
                   template: &'static str,
                   data: PathBuf,
                   params: &[&str],
                   check: Expect,
                   train: Option<Expect>| {
        cases.push(Case {
            name: name.into(),
            template,
            data,
            params: params.iter().map(|s| s.to_string()).collect(),
            check,
            train,
        })
    };
    let dir = |name: &str| root.join(name.replace('/', "_"));
    let img = "image-classifier";
    let img_params: &[&str] = &["--param", "image_size=32"];

    // ---------- image folders ----------
    let d = dir("image/corrupt");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("cat/broken.png"), garbage(300, 1));
    add(
        "image/corrupt",
        img,
        d,
        img_params,
        warned("broken.png"),
        Some(warned("broken.png")),
    );

    let d = dir("image/truncated");
    image_folder(&d, &["cat", "dog"], 3);
    let full = png_bytes(0, 9, 24);
    write(&d.join("cat/cut.png"), &full[..full.len() / 2]);
    add(
        "image/truncated",
        img,
        d,
        img_params,
        Accepted,
        Some(warned("cut.png")),
    );

    let d = dir("image/zero-byte");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("dog/empty.jpg"), []);
    add(
        "image/zero-byte",
        img,
        d,
        img_params,
        warned("empty.jpg"),
        Some(warned("empty.jpg")),
    );

    let d = dir("image/jpeg-named-png");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("dog/really_a_jpeg.png"), jpeg_bytes(1, 7, 24));
    add(
        "image/wrong-extension-but-image",
        img,
        d,
        img_params,
        Accepted,
        Some(Accepted),
    );

    let d = dir("image/text-named-jpg");
    image_folder(&d, &["cat", "dog"], 3);
    write(
        &d.join("cat/notes.jpg"),
        "these are my notes, not a photo\n",
    );
    add(
        "image/wrong-extension-text",
        img,
        d,
        img_params,
        warned("notes.jpg"),
        None,
    );

    let d = dir("image/decompression-bomb");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("cat/bomb.png"), png_bomb(40_000));
    add(
        "image/decompression-bomb",
        img,
        d,
        img_params,
        warned("bomb.png"),
        Some(warned("bomb.png")),
    );

    let d = dir("image/empty-folder");
    std::fs::create_dir_all(&d).unwrap();
    add(
        "image/empty-folder",
        img,
        d,
        &[],
        refused("image_empty-folder"),
        None,
    );

    let d = dir("image/empty-class-folder");
    image_folder(&d, &["cat", "dog"], 3);
    std::fs::create_dir_all(d.join("bird")).unwrap();
    add(
        "image/empty-class-folder",
        img,
        d,
        &[],
        warned("bird"),
        None,
    );

    let d = dir("image/one-class");
    image_folder(&d, &["cat"], 4);
    add(
        "image/one-class",
        img,
        d,
        &[],
        refused("image_one-class"),
        None,
    );

    let d = dir("image/class-with-one-example");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("owl/00.png"), png_bytes(2, 0, 24));
    add(
        "image/class-with-one-example",
        img,
        d,
        &[],
        refused("owl"),
        None,
    );

    let d = dir("image/unicode-and-punctuation-classes");
    image_folder(&d, &["chat noir 🐈", "déjà vu, \"quoted\"", "a;b=c&d"], 3);
    add(
        "image/unicode-class-names",
        img,
        d,
        img_params,
        Accepted,
        Some(Accepted),
    );

    let d = dir("image/hidden-files");
    image_folder(&d, &["cat", "dog"], 3);
    write(&d.join("cat/.DS_Store"), garbage(64, 2));
    write(&d.join("cat/._00.png"), garbage(64, 3));
    write(&d.join(".git/HEAD"), "ref: refs/heads/main\n");
    write(&d.join("Thumbs.db"), garbage(64, 4));
    add(
        "image/hidden-files",
        img,
        d,
        img_params,
        Accepted,
        Some(Accepted),
    );

    let d = dir("image/symlink-loop");
    image_folder(&d, &["cat", "dog"], 3);
    std::os::unix::fs::symlink("..", d.join("cat/up")).unwrap();
    std::os::unix::fs::symlink(d.join("loop_b"), d.join("loop_a")).unwrap();
    std::os::unix::fs::symlink(d.join("loop_a"), d.join("loop_b")).unwrap();
    add(
        "image/symlink-loop",
        img,
        d,
        img_params,
        Accepted,
        Some(Accepted),
    );

    let d = dir("image/missing-folder");
    add(
        "image/missing-folder",
        img,
        d,
        &[],
        refused("image_missing-folder"),
        None,
    );

    let d = dir("image/file-not-folder");
    write(&d.join("photo.png"), png_bytes(0, 0, 24));
    add(
        "image/file-not-folder",
        img,
        d.join("photo.png"),
        &[],
        refused("photo.png"),
        None,
    );

    // ---------- multi-label labels file ----------
    let ml = "multi-label-image-classifier";
    let ml_folder = |d: &Path, labels: &str, name: &str| {
        for i in 0..8 {
            write(&d.join(format!("img{i}.png")), png_bytes(i % 2, i, 24));
        }
        write(&d.join(name), labels);
    };
    let ok_labels: String = (0..8)
        .map(|i| {
            format!(
                "img{i}.png,{}\n",
                if i % 2 == 0 { "sea;sky" } else { "sky" }
            )
        })
        .collect();
    let d = dir("multilabel/missing-labels");
    ml_folder(&d, "", "notes.txt");
    add(
        "multilabel/missing-labels-file",
        ml,
        d,
        &[],
        refused("multilabel_missing-labels"),
        None,
    );

    let d = dir("multilabel/garbage-labels");
    ml_folder(&d, "", "labels.csv");
    write(&d.join("labels.csv"), garbage(400, 5));
    add(
        "multilabel/binary-garbage-labels",
        ml,
        d,
        &[],
        refused("labels.csv"),
        None,
    );

    let d = dir("multilabel/unknown-image");
    ml_folder(
        &d,
        &format!("image,labels\n{ok_labels}ghost.png,sky\n"),
        "labels.csv",
    );
    add(
        "multilabel/unknown-image",
        ml,
        d,
        &[],
        warned("ghost.png"),
        None,
    );

    let d = dir("multilabel/escaping-path");
    ml_folder(
        &d,
        &format!("image,labels\n{ok_labels}../../etc/passwd,sky\n"),
        "labels.csv",
    );
    add(
        "multilabel/path-leaves-folder",
        ml,
        d,
        &[],
        refused("labels.csv"),
        None,
    );

    let d = dir("multilabel/unclosed-quote");
    ml_folder(
        &d,
        &format!("image,labels\n{ok_labels}\"img0.png,sky\n"),
        "labels.csv",
    );
    add(
        "multilabel/unclosed-quote",
        ml,
        d,
        &[],
        refused("labels.csv"),
        None,
    );

    let d = dir("multilabel/non-utf8");
    let mut bytes = format!("image,labels\n{ok_labels}").into_bytes();
    bytes.extend_from_slice(b"img1.png,caf\xe9\n");
    ml_folder(&d, "", "labels.csv");
    write(&d.join("labels.csv"), bytes);
    add("multilabel/non-utf8-labels", ml, d, &[], Accepted, None);

    let d = dir("multilabel/corrupt-image");
    ml_folder(&d, &format!("image,labels\n{ok_labels}"), "labels.csv");
    write(&d.join("img3.png"), garbage(200, 6));
    add(
        "multilabel/corrupt-image",
        ml,
        d,
        &[],
        warned("img3.png"),
        None,
    );

    // ---------- text ----------
    let txt = "text-classifier";
    let d = dir("text/latin1-and-utf16");
    text_folder(&d, 6);
    write(
        &d.join("cooking/latin1.txt"),
        b"cr\xe8me br\xfbl\xe9e recipe oven sugar bake\n",
    );
    let mut utf16 = vec![0xFF, 0xFE];
    for u in "goal match team score".encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    write(&d.join("sports/utf16.txt"), utf16);
    add(
        "text/non-utf8-and-mixed-encodings",
        txt,
        d,
        &[],
        Accepted,
        Some(Accepted),
    );

    let d = dir("text/binary-file");
    text_folder(&d, 6);
    write(
        &d.join("sports/blob.txt"),
        [0u8, 159, 146, 150, 0, 0, 1, 2, 3, 255, 0, 0],
    );
    add(
        "text/binary-file-in-folder",
        txt,
        d,
        &[],
        Accepted,
        Some(Accepted),
    );

    let d = dir("text/zero-byte");
    text_folder(&d, 6);
    write(&d.join("sports/empty.txt"), []);
    add(
        "text/zero-byte-file",
        txt,
        d,
        &[],
        warned("empty.txt"),
        Some(warned("empty.txt")),
    );

    let d = dir("text/one-class");
    text_folder(&d, 6);
    std::fs::remove_dir_all(d.join("cooking")).unwrap();
    add(
        "text/one-class",
        txt,
        d,
        &[],
        refused("text_one-class"),
        None,
    );

    let d = dir("text/csv");
    write(
        &d.join("ragged.csv"),
        format!(
            "text,label\n{}\"extra\",sports,surplus,cells\nlonely\n",
            text_rows(6)
        ),
    );
    add(
        "text/csv-ragged-rows",
        txt,
        d.join("ragged.csv"),
        &[],
        warned("ragged.csv"),
        Some(warned("ragged.csv")),
    );

    write(
        &d.join("unclosed.csv"),
        format!("text,label\n{}\"never closed,sports\n", text_rows(6)),
    );
    add(
        "text/csv-unclosed-quote",
        txt,
        d.join("unclosed.csv"),
        &[],
        warned("unclosed.csv"),
        None,
    );

    write(&d.join("nolabel.csv"), "text,topic\nhello,a\nworld,b\n");
    add(
        "text/csv-missing-label-column",
        txt,
        d.join("nolabel.csv"),
        &[],
        refused("nolabel.csv"),
        None,
    );

    write(&d.join("garbage.csv"), garbage(2000, 7));
    add(
        "text/csv-binary-garbage",
        txt,
        d.join("garbage.csv"),
        &[],
        refused("garbage.csv"),
        None,
    );

    write(&d.join("empty.csv"), "");
    add(
        "text/csv-zero-byte",
        txt,
        d.join("empty.csv"),
        &[],
        refused("empty.csv"),
        None,
    );

    let mut mixed = format!("text,label\n{}", text_rows(6)).into_bytes();
    mixed.extend_from_slice(b"\"cr\xe8me br\xfbl\xe9e\",cooking\n");
    write(&d.join("mixed.csv"), mixed);
    add(
        "text/csv-mixed-encoding",
        txt,
        d.join("mixed.csv"),
        &[],
        Accepted,
        Some(Accepted),
    );

    let mut jsonl = String::new();
    for i in 0..6 {
        for (c, name) in ["sports", "cooking"].iter().enumerate() {
            jsonl += &format!(
                "{{\"text\": \"{}\", \"label\": \"{name}\"}}\n",
                sentence(c, i)
            );
        }
    }
    write(
        &d.join("broken.jsonl"),
        format!("{jsonl}{{\"text\": \"oops\", \"label\n"),
    );
    add(
        "text/jsonl-malformed-line",
        txt,
        d.join("broken.jsonl"),
        &[],
        warned("broken.jsonl"),
        Some(warned("broken.jsonl")),
    );

    // ---------- sound ----------
    let snd = "sound-classifier";
    let snd_params: &[&str] = &["--param", "algorithm=cnn", "--param", "batch_size=8"];
    let d = dir("sound/corrupt");
    sound_folder(&d, &["hum", "whistle"], 4);
    write(&d.join("hum/broken.wav"), garbage(4000, 8));
    add(
        "sound/corrupt",
        snd,
        d,
        snd_params,
        warned("broken.wav"),
        Some(warned("broken.wav")),
    );

    let d = dir("sound/truncated");
    sound_folder(&d, &["hum", "whistle"], 4);
    let full = wav_bytes(0, 9, 0.5);
    write(&d.join("hum/cut.wav"), &full[..30]);
    add(
        "sound/truncated-header",
        snd,
        d,
        snd_params,
        warned("cut.wav"),
        Some(warned("cut.wav")),
    );

    let d = dir("sound/truncated-data");
    sound_folder(&d, &["hum", "whistle"], 4);
    write(&d.join("whistle/short.wav"), &full[..full.len() / 3]);
    add(
        "sound/truncated-data",
        snd,
        d,
        snd_params,
        Accepted,
        Some(Accepted),
    );

    let d = dir("sound/zero-byte");
    sound_folder(&d, &["hum", "whistle"], 4);
    write(&d.join("hum/empty.wav"), []);
    add(
        "sound/zero-byte",
        snd,
        d,
        snd_params,
        warned("empty.wav"),
        Some(warned("empty.wav")),
    );

    let d = dir("sound/png-named-wav");
    sound_folder(&d, &["hum", "whistle"], 4);
    write(&d.join("whistle/picture.wav"), png_bytes(0, 0, 16));
    add(
        "sound/wrong-extension",
        snd,
        d,
        snd_params,
        warned("picture.wav"),
        Some(warned("picture.wav")),
    );

    let d = dir("sound/huge-header");
    sound_folder(&d, &["hum", "whistle"], 4);
    let mut liar = wav_bytes(1, 3, 0.2);
    liar[40..44].copy_from_slice(&u32::MAX.to_le_bytes()); // data chunk claims 4 GB
    liar[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    write(&d.join("hum/liar.wav"), liar);
    add(
        "sound/header-claims-4gb",
        snd,
        d,
        snd_params,
        Accepted,
        Some(Accepted),
    );

    // An M4A whose sample table claims 4 billion entries (symphonia would allocate them all and
    // abort the process; found by fuzzing).
    let d = dir("sound/m4a-table-bomb");
    sound_folder(&d, &["hum", "whistle"], 4);
    write(&d.join("hum/bomb.m4a"), m4a_table_bomb());
    add(
        "sound/m4a-sample-table-bomb",
        snd,
        d,
        snd_params,
        warned("bomb.m4a"),
        Some(warned("bomb.m4a")),
    );

    let d = dir("sound/one-class");
    sound_folder(&d, &["hum"], 4);
    add(
        "sound/one-class",
        snd,
        d,
        snd_params,
        refused("sound_one-class"),
        None,
    );

    // ---------- tables ----------
    let tab = "tabular-classifier";
    let tab_params: &[&str] = &[
        "--param",
        "max_iterations=5",
        "--param",
        "linear_iterations=5",
    ];
    let reg = "tabular-regressor";
    let d = dir("table");
    let header = "a,b,color,label\n";
    write(
        &d.join("ragged.csv"),
        format!("{header}{}1.0,2.0\n1,2,red,low,extra\n", table_rows(30)),
    );
    add(
        "table/csv-ragged-rows",
        tab,
        d.join("ragged.csv"),
        tab_params,
        warned("ragged.csv"),
        Some(warned("ragged.csv")),
    );

    write(
        &d.join("unclosed.csv"),
        format!("{header}{}1.0,2.0,\"red,low\n", table_rows(30)),
    );
    add(
        "table/csv-unclosed-quote",
        tab,
        d.join("unclosed.csv"),
        tab_params,
        warned("unclosed.csv"),
        None,
    );

    // A quote opened on the first data row swallows the whole file: nothing usable is left.
    write(
        &d.join("unclosed-early.csv"),
        format!("{header}\"1.0,2.0,red,low\n{}", table_rows(30)),
    );
    add(
        "table/csv-unclosed-quote-swallows-file",
        tab,
        d.join("unclosed-early.csv"),
        &[],
        refused("unclosed-early.csv"),
        None,
    );

    write(
        &d.join("nan.csv"),
        format!(
            "{header}{}NaN,inf,red,low\n-inf,,blue,high\n,nan,,low\n",
            table_rows(30)
        ),
    );
    add(
        "table/csv-nan-inf-empty-cells",
        tab,
        d.join("nan.csv"),
        tab_params,
        Accepted,
        Some(Accepted),
    );

    write(
        &d.join("notarget.csv"),
        format!("a,b,color,kind\n{}", table_rows(30)),
    );
    add(
        "table/csv-missing-target",
        tab,
        d.join("notarget.csv"),
        &[],
        refused("notarget.csv"),
        None,
    );

    write(&d.join("garbage.csv"), garbage(3000, 9));
    add(
        "table/csv-binary-garbage",
        tab,
        d.join("garbage.csv"),
        &[],
        refused("garbage.csv"),
        None,
    );

    write(&d.join("empty.csv"), "");
    add(
        "table/csv-zero-byte",
        tab,
        d.join("empty.csv"),
        &[],
        refused("empty.csv"),
        None,
    );

    write(&d.join("header-only.csv"), header);
    add(
        "table/csv-header-only",
        tab,
        d.join("header-only.csv"),
        &[],
        refused("header-only.csv"),
        None,
    );

    let mut nonutf = format!("{header}{}", table_rows(30)).into_bytes();
    nonutf.extend_from_slice(b"1.5,0.5,gr\xfcn,low\n");
    write(&d.join("latin1.csv"), nonutf);
    add(
        "table/csv-non-utf8",
        tab,
        d.join("latin1.csv"),
        tab_params,
        Accepted,
        Some(Accepted),
    );

    let mut regression = String::from("a,b,color,target\n");
    for (i, row) in table_rows(30).lines().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        regression += &format!(
            "{},{},{},{}\n",
            cells[0],
            cells[1],
            cells[2],
            i as f64 * 0.5
        );
    }
    regression += "1,2,red,NaN\n3,4,blue,inf\n5,6,green,\n";
    write(&d.join("target-nan.csv"), regression);
    add(
        "table/regression-target-nan-inf",
        reg,
        d.join("target-nan.csv"),
        tab_params,
        warned("target"),
        Some(warned("target")),
    );

    let mut huge = String::from("a,b,color,target\n");
    for (i, row) in table_rows(30).lines().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        let y = if i % 2 == 0 { "1e308" } else { "-1.7e308" };
        huge += &format!("{},{},{},{y}\n", cells[0], cells[1], cells[2]);
    }
    write(&d.join("target-huge.csv"), huge);
    add(
        "table/regression-target-near-f64-max",
        reg,
        d.join("target-huge.csv"),
        tab_params,
        refused("target-huge.csv"),
        Some(refused("target-huge.csv")),
    );

    let mut wide = String::from("a,b,color,label\n");
    for (i, row) in table_rows(40).lines().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        let a = if i % 2 == 0 { "1.7e308" } else { "-1.7e308" };
        wide += &format!("{a},{},{},{}\n", cells[1], cells[2], cells[3]);
    }
    write(&d.join("feature-huge.csv"), wide);
    add(
        "table/feature-near-f64-max",
        tab,
        d.join("feature-huge.csv"),
        &[
            "--param",
            "max_iterations=5",
            "--param",
            "linear_iterations=5",
            "--param",
            "algorithm=linear",
        ],
        Accepted,
        Some(Accepted),
    );

    let mut rows = String::new();
    for row in table_rows(30).lines() {
        let c: Vec<&str> = row.split(',').collect();
        rows += &format!(
            "{{\"a\": {}, \"b\": {}, \"color\": \"{}\", \"label\": \"{}\"}}\n",
            c[0], c[1], c[2], c[3]
        );
    }
    write(
        &d.join("broken.jsonl"),
        format!("{rows}{{\"a\": 1, \"b\":\n"),
    );
    add(
        "table/jsonl-malformed-line",
        tab,
        d.join("broken.jsonl"),
        tab_params,
        warned("broken.jsonl"),
        Some(warned("broken.jsonl")),
    );

    write(
        &d.join("mixed.jsonl"),
        format!("{rows}[1, 2, 3]\n{{\"a\": {{\"nested\": true}}, \"label\": \"low\"}}\n"),
    );
    add(
        "table/jsonl-not-objects",
        tab,
        d.join("mixed.jsonl"),
        &[],
        warned("mixed.jsonl"),
        None,
    );

    write(
        &d.join("one-class.csv"),
        format!("{header}{}", "1,2,red,low\n".repeat(20)),
    );
    add(
        "table/one-class",
        tab,
        d.join("one-class.csv"),
        &[],
        refused("one-class.csv"),
        None,
    );

    // ---------- detection annotations ----------
    let det = "object-detector";
    // Where the outcome is "warning and training goes on", a tiny detector trains one epoch.
    let det_train: &[&str] = &[
        "--param",
        "image_size=64",
        "--param",
        "head_channels=8",
        "--param",
        "batch_size=2",
        "--param",
        "fine_tune_blocks=0",
        "--param",
        "validation_split=0",
    ];
    let d = dir("detect/malformed");
    detect_folder(&d, 3, "[{\"image\": \"img0.png\", \"annotations\": [");
    add(
        "detect/malformed-json",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    let d = dir("detect/negative-box");
    let mut entries = createml_ok(3);
    entries.push(r#"{"image": "img2.png", "annotations": [{"label": "cat", "coordinates": {"x": -30, "y": 10, "width": -8, "height": 5}}]}"#.into());
    detect_folder(&d, 3, &format!("[{}]", entries.join(",")));
    add(
        "detect/negative-box",
        det,
        d,
        det_train,
        warned("img2.png"),
        Some(warned("img2.png")),
    );

    let d = dir("detect/huge-box");
    let mut entries = createml_ok(3);
    entries.push(r#"{"image": "img1.png", "annotations": [{"label": "cat", "coordinates": {"x": 20, "y": 20, "width": 1e30, "height": 1e308}}]}"#.into());
    detect_folder(&d, 3, &format!("[{}]", entries.join(",")));
    add(
        "detect/huge-box",
        det,
        d,
        det_train,
        warned("img1.png"),
        Some(warned("img1.png")),
    );

    let d = dir("detect/unknown-image");
    let mut entries = createml_ok(3);
    entries.push(format!(
        r#"{{"image": "ghost.png", "annotations": [{}]}}"#,
        ok_box()
    ));
    detect_folder(&d, 3, &format!("[{}]", entries.join(",")));
    add(
        "detect/unknown-image",
        det,
        d,
        det_train,
        warned("ghost.png"),
        Some(warned("ghost.png")),
    );

    let d = dir("detect/escaping-path");
    let mut entries = createml_ok(3);
    entries.push(format!(
        r#"{{"image": "/etc/passwd", "annotations": [{}]}}"#,
        ok_box()
    ));
    detect_folder(&d, 3, &format!("[{}]", entries.join(",")));
    add(
        "detect/absolute-path",
        det,
        d,
        &[],
        refused("/etc/passwd"),
        None,
    );

    let d = dir("detect/corrupt-image");
    detect_folder(&d, 3, &format!("[{}]", createml_ok(3).join(",")));
    write(&d.join("img1.png"), garbage(100, 10));
    add(
        "detect/corrupt-image",
        det,
        d,
        det_train,
        warned("img1.png"),
        Some(warned("img1.png")),
    );

    let coco_images = r#"[{"id": 1, "file_name": "img0.png", "width": 40, "height": 40}, {"id": 2, "file_name": "img1.png", "width": 40, "height": 40}, {"id": 3, "file_name": "img2.png", "width": 40, "height": 40}]"#;
    let coco_ok = r#"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10]}, {"id": 2, "image_id": 2, "category_id": 1, "bbox": [8, 8, 12, 12]}, {"id": 3, "image_id": 3, "category_id": 1, "bbox": [4, 6, 10, 9]}"#;
    let cats = r#"[{"id": 1, "name": "cat"}]"#;
    let d = dir("detect/coco-bad-refs");
    detect_folder(
        &d,
        3,
        &format!(
            r#"{{"images": {coco_images}, "categories": {cats}, "annotations": [{coco_ok}, {{"id": 4, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]}}, {{"id": 5, "image_id": 1, "category_id": 42, "bbox": [1, 1, 2, 2]}}]}}"#
        ),
    );
    add(
        "detect/coco-unknown-image-id",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    let d = dir("detect/coco-bad-boxes");
    detect_folder(
        &d,
        3,
        &format!(
            r#"{{"images": {coco_images}, "categories": {cats}, "annotations": [{coco_ok}, {{"id": 4, "image_id": 1, "category_id": 1, "bbox": [-50, -50, -3, 1e300]}}, {{"id": 5, "image_id": 2, "category_id": 1, "bbox": [30, 30, 1e30, 1e30]}}]}}"#
        ),
    );
    add(
        "detect/coco-negative-and-huge-boxes",
        det,
        d,
        det_train,
        warned("img0.png"),
        Some(warned("img0.png")),
    );

    let d = dir("detect/coco-short-bbox");
    detect_folder(
        &d,
        3,
        &format!(
            r#"{{"images": {coco_images}, "categories": {cats}, "annotations": [{coco_ok}, {{"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 2]}}]}}"#
        ),
    );
    add(
        "detect/coco-bbox-not-four-numbers",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    let d = dir("detect/coco-unknown-category");
    detect_folder(
        &d,
        3,
        &format!(
            r#"{{"images": {coco_images}, "categories": {cats}, "annotations": [{coco_ok}, {{"id": 5, "image_id": 1, "category_id": 42, "bbox": [1, 1, 2, 2]}}]}}"#
        ),
    );
    add(
        "detect/coco-unknown-category",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    let d = dir("detect/coco-escape");
    detect_folder(
        &d,
        3,
        &format!(
            r#"{{"images": [{{"id": 1, "file_name": "../../outside.png", "width": 40, "height": 40}}], "categories": {cats}, "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}}]}}"#
        ),
    );
    add(
        "detect/coco-path-leaves-folder",
        det,
        d,
        &[],
        refused("outside.png"),
        None,
    );

    let d = dir("detect/coco-wrong-shape");
    detect_folder(&d, 3, r#"{"images": "img0.png", "annotations": 7}"#);
    add(
        "detect/coco-wrong-types",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    let d = dir("detect/no-annotations");
    detect_folder(&d, 3, "[]");
    add(
        "detect/empty-annotations",
        det,
        d,
        &[],
        refused("annotations.json"),
        None,
    );

    // ---------- project.toml ----------
    let proj = |extra: &str| {
        format!(
            "format_version = 1\ntemplate = \"image-classifier\"\n{extra}[data]\ntrain = \"data\"\n"
        )
    };
    let p = project(&dir("project/unknown-key"), &proj("colour = \"blue\"\n"));
    add(
        "project/unknown-key",
        img,
        p,
        &[],
        refused("project.toml"),
        None,
    );

    let p = project(&dir("project/wrong-type"), &proj("seed = \"forty-two\"\n"));
    add(
        "project/wrong-type",
        img,
        p,
        &[],
        refused("project.toml"),
        None,
    );

    let p = project(
        &dir("project/future-version"),
        "format_version = 99\ntemplate = \"image-classifier\"\nhologram = true\n[data]\ntrain = \"data\"\n",
    );
    add(
        "project/future-format-version",
        img,
        p,
        &[],
        refused("project.toml"),
        None,
    );

    let p = project(
        &dir("project/not-toml"),
        "format_version = 1\ntemplate = [\n",
    );
    add(
        "project/not-toml",
        img,
        p,
        &[],
        refused("project.toml"),
        None,
    );

    let p = project(
        &dir("project/unknown-template"),
        "format_version = 1\ntemplate = \"time-machine\"\n[data]\ntrain = \"data\"\n",
    );
    add(
        "project/unknown-template",
        img,
        p,
        &[],
        refused("time-machine"),
        None,
    );

    let p = project(
        &dir("project/bad-param"),
        &format!("{}[params]\nepochs = \"many\"\n", proj("")),
    );
    add(
        "project/param-wrong-type",
        img,
        p,
        &[],
        refused("epochs"),
        None,
    );

    let p = project(&dir("project/non-utf8"), "");
    write(&p, b"format_version = 1\ntemplate = \"image-classifier\"\nname = \"caf\xe9\"\n[data]\ntrain = \"data\"\n");
    add(
        "project/non-utf8",
        img,
        p,
        &[],
        refused("project.toml"),
        None,
    );

    let p = project(
        &dir("project/missing-data"),
        "format_version = 1\ntemplate = \"image-classifier\"\n[data]\ntrain = \"nowhere\"\n",
    );
    add(
        "project/data-folder-missing",
        img,
        p,
        &[],
        refused("nowhere"),
        None,
    );

    // ---------- activity recordings ----------
    let act = "activity-classifier";
    let act_params: &[&str] = &[
        "--param",
        "algorithm=boosted_trees",
        "--param",
        "max_iterations=5",
    ];
    let header = "timestamp,acc_x,acc_y,acc_z\n";
    let rows = |n: usize| -> String {
        (0..n)
            .map(|i| format!("{:.2},0.1,0.2,9.8\n", i as f32 / 50.0))
            .collect()
    };
    let d = dir("activity/ragged");
    activity_folder(&d, 3);
    write(
        &d.join("still/ragged.csv"),
        format!("{header}{}0.9,0.1\n{}", rows(100), rows(20)),
    );
    add(
        "activity/ragged-rows",
        act,
        d,
        act_params,
        warned("ragged.csv"),
        Some(warned("ragged.csv")),
    );

    let d = dir("activity/text");
    activity_folder(&d, 3);
    write(
        &d.join("shake/text.csv"),
        format!("{header}{}1.0,abc,0.2,9.8\n{}", rows(100), rows(20)),
    );
    add(
        "activity/text-in-sensor-column",
        act,
        d,
        act_params,
        warned("text.csv"),
        Some(warned("text.csv")),
    );

    let d = dir("activity/one-row");
    activity_folder(&d, 3);
    write(
        &d.join("still/one_row.csv"),
        format!("{header}0,0.1,0.2,9.8\n"),
    );
    add(
        "activity/one-row-session",
        act,
        d,
        act_params,
        warned("one_row.csv"),
        Some(warned("one_row.csv")),
    );

    let d = dir("activity/nan");
    activity_folder(&d, 3);
    write(
        &d.join("shake/nan.csv"),
        format!("{header}{}1.0,NaN,0.2,9.8\n{}", rows(100), rows(20)),
    );
    add(
        "activity/nan-in-sensor-column",
        act,
        d,
        act_params,
        warned("nan.csv"),
        Some(warned("nan.csv")),
    );

    let d = dir("activity/nothing-usable");
    write(&d.join("still/a.csv"), format!("{header}{}", rows(3)));
    write(&d.join("shake/b.csv"), format!("{header}{}", rows(2)));
    add(
        "activity/nothing-usable",
        act,
        d,
        act_params,
        refused("activity_nothing-usable"),
        None,
    );

    cases
}

pub use Expect::Accepted;
