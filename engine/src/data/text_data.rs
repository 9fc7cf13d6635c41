//! Text datasets: a folder with one subfolder per class of `.txt` files, or one CSV / JSON /
//! JSON-lines file with a text column and a label column. Bytes that are not UTF-8 are decoded
//! anyway (UTF-16 with a byte-order mark, else Windows-1252) and reported as a warning naming the
//! files; a bad row is a warning naming the line. Nothing here panics on user data.

use crate::data::image_folder::{self, FolderScan, LabeledFile, ScannedSplit};
use crate::data::summary::HealthIssue;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Extensions of a table of examples (anything else is a folder of class folders).
pub const TABLE_EXTENSIONS: &[&str] = &["csv", "tsv", "json", "jsonl", "ndjson"];

/// Which columns of a table hold the text and the label.
#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    pub text: String,
    pub label: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            text: "text".into(),
            label: "label".into(),
        }
    }
}

/// A scanned text split: the files/rows as [`LabeledFile`]s (a row's path is `file.csv:LINE`,
/// its hash the BLAKE3 of its text) and the decoded text of each.
#[derive(Clone, Debug, Default)]
pub struct TextSplit {
    pub split: ScannedSplit,
    pub texts: HashMap<PathBuf, String>,
}

impl TextSplit {
    /// The text of `file` (empty when unknown, which cannot happen for files of this split).
    pub fn text(&self, file: &LabeledFile) -> &str {
        self.texts.get(&file.path).map(String::as_str).unwrap_or("")
    }
}

/// Whether `path` is a table of examples (by extension) rather than a folder.
pub fn is_table(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            TABLE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())
        })
}

/// Decodes text bytes: UTF-8 (a BOM is dropped), UTF-16 with a BOM, else Windows-1252.
/// Returns the text and, when it was not UTF-8, what was done (for a warning).
pub fn decode(bytes: &[u8]) -> (String, Option<&'static str>) {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return decode(rest);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), None);
    }
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xFF, 0xFE, ..] => return (utf16(true), Some("UTF-16 (decoded)")),
        [0xFE, 0xFF, ..] => return (utf16(false), Some("UTF-16 (decoded)")),
        _ => {}
    }
    (
        bytes.iter().map(|&b| windows_1252(b)).collect(),
        Some(
            "not valid UTF-8; decoded as Windows-1252 (Latin-1), save it as UTF-8 if characters look wrong",
        ),
    )
}

/// One byte of Windows-1252 as a char (undefined bytes map to the same code point, as browsers do).
fn windows_1252(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    match b {
        0x80..=0x9F => char::from_u32(u32::from(HIGH[(b - 0x80) as usize])).unwrap_or('\u{FFFD}'),
        _ => char::from(b),
    }
}

/// A file and its decoded text (with the encoding note), or why it could not be read.
type Decoded = (PathBuf, std::io::Result<(String, Option<&'static str>)>);

fn text_probe(_: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Err("empty text file".into())
    } else {
        Ok(())
    }
}

/// Loads one split from a class folder or a table. `check` may stop the scan (cancellation).
pub fn load(
    path: &Path,
    split: &str,
    columns: &Columns,
    progress: &mut dyn FnMut(usize, usize),
    check: &dyn Fn() -> Result<()>,
) -> Result<TextSplit> {
    if !path.exists() {
        return Err(Error::data(
            format!("{split} data does not exist; check the path"),
            path,
        ));
    }
    if path.is_file() {
        if !is_table(path) {
            return Err(Error::data(
                format!(
                    "{split} data must be a folder with one subfolder per class of .txt files, or a .csv, .json or .jsonl file"
                ),
                path,
            ));
        }
        return load_table(path, split, columns);
    }
    let spec = FolderScan {
        split,
        extensions: &["txt"],
        noun: "text file",
        probe: &text_probe,
    };
    let scanned = image_folder::scan(path, &spec, progress, check)?;
    let decoded: Vec<Decoded> = scanned
        .files
        .par_iter()
        .map(|f| (f.path.clone(), std::fs::read(&f.path).map(|b| decode(&b))))
        .collect();
    let mut out = TextSplit {
        split: scanned,
        texts: HashMap::new(),
    };
    let mut recoded: Vec<PathBuf> = Vec::new();
    let mut unreadable: Vec<PathBuf> = Vec::new();
    for (p, r) in decoded {
        match r {
            Ok((text, note)) => {
                if note.is_some() {
                    recoded.push(p.clone());
                }
                out.texts.insert(p, text);
            }
            Err(_) => unreadable.push(p),
        }
    }
    if !recoded.is_empty() {
        out.split.issues.push(HealthIssue::warning(
            "text_encoding",
            format!(
                "{} text files are not valid UTF-8; they were decoded as UTF-16 (with a byte-order mark) or Windows-1252, save them as UTF-8 if characters look wrong",
                recoded.len()
            ),
            recoded,
        ));
    }
    if !unreadable.is_empty() {
        out.split.files.retain(|f| !unreadable.contains(&f.path));
        out.split.num_skipped += unreadable.len();
        out.split.issues.push(HealthIssue::warning(
            "unreadable_file",
            format!(
                "{} text files could not be read and were skipped",
                unreadable.len()
            ),
            unreadable,
        ));
    }
    Ok(out)
}

/// One row of a table: its 1-based line (CSV) or entry number (JSON), text and label if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: usize,
    pub text: String,
    pub label: Option<String>,
}

/// Rows of a table and the warnings reading it produced.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub rows: Vec<Row>,
    pub issues: Vec<HealthIssue>,
}

/// Reads the text (and, when `label` is given and present, label) column of a CSV / TSV / JSON /
/// JSON-lines file. A missing text column is an error that lists the columns there are.
pub fn read_rows(path: &Path, text: &str, label: Option<&str>) -> Result<Rows> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let (content, note) = decode(&bytes);
    let mut out = Rows::default();
    if let Some(note) = note {
        out.issues.push(HealthIssue::warning(
            "text_encoding",
            format!("the file is {note}"),
            vec![path.to_path_buf()],
        ));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => read_json_rows(&content, path, text, label, &mut out)?,
        "jsonl" | "ndjson" => {
            let mut skipped = Vec::new();
            for (i, line) in content.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(v) => push_json(&v, i + 1, path, text, label, &mut out, &mut skipped)?,
                    Err(_) => skipped.push(i + 1),
                }
            }
            skipped_rows(path, &skipped, &mut out);
        }
        _ => read_csv_rows(&content, path, ext == "tsv", text, label, &mut out)?,
    }
    Ok(out)
}

fn skipped_rows(path: &Path, lines: &[usize], out: &mut Rows) {
    if let Some(first) = lines.first() {
        out.issues.push(HealthIssue::warning(
            "bad_rows",
            format!(
                "{} rows are malformed or lack the text/label (first at line {first}) and were skipped",
                lines.len()
            ),
            vec![path.to_path_buf()],
        ));
    }
}

fn missing_column(path: &Path, what: &str, name: &str, have: &[String], flag: &str) -> Error {
    Error::data(
        format!(
            "no {what} column \"{name}\" (columns: {}); choose one with {flag}",
            have.join(", ")
        ),
        path,
    )
}

fn read_csv_rows(
    content: &str,
    path: &Path,
    tab: bool,
    text: &str,
    label: Option<&str>,
    out: &mut Rows,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tab { b'\t' } else { b',' })
        .flexible(true)
        .from_reader(content.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(format!("cannot read the header row ({e})"), path))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let Some(ti) = headers.iter().position(|h| h == text) else {
        return Err(missing_column(
            path,
            "text",
            text,
            &headers,
            "--text-column",
        ));
    };
    let li = match label {
        Some(l) => Some(
            headers
                .iter()
                .position(|h| h == l)
                .ok_or_else(|| missing_column(path, "label", l, &headers, "--target"))?,
        ),
        None => None,
    };
    let mut skipped = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line() as usize)
            .unwrap_or(i + 2);
        let Ok(record) = record else {
            skipped.push(line);
            continue;
        };
        let Some(t) = record.get(ti) else {
            skipped.push(line);
            continue;
        };
        let l = match li {
            Some(li) => match record.get(li).map(str::trim).filter(|l| !l.is_empty()) {
                Some(l) => Some(l.to_string()),
                None => {
                    skipped.push(line);
                    continue;
                }
            },
            None => None,
        };
        out.rows.push(Row {
            line,
            text: t.to_string(),
            label: l,
        });
    }
    skipped_rows(path, &skipped, out);
    Ok(())
}

fn read_json_rows(
    content: &str,
    path: &Path,
    text: &str,
    label: Option<&str>,
    out: &mut Rows,
) -> Result<()> {
    let value: serde_json::Value = serde_json::from_str(content).map_err(|e| {
        Error::data(
            format!("not valid JSON ({e}); a .json file must hold an array of objects, use .jsonl for one object per line"),
            path,
        )
    })?;
    let Some(items) = value.as_array() else {
        return Err(Error::data(
            "a .json text dataset must be an array of objects like {\"text\": …, \"label\": …}",
            path,
        ));
    };
    let mut skipped = Vec::new();
    for (i, v) in items.iter().enumerate() {
        push_json(v, i + 1, path, text, label, out, &mut skipped)?;
    }
    skipped_rows(path, &skipped, out);
    Ok(())
}

fn push_json(
    v: &serde_json::Value,
    line: usize,
    path: &Path,
    text: &str,
    label: Option<&str>,
    out: &mut Rows,
    skipped: &mut Vec<usize>,
) -> Result<()> {
    let Some(obj) = v.as_object() else {
        skipped.push(line);
        return Ok(());
    };
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let Some(t) = obj.get(text) else {
        if out.rows.is_empty() && skipped.is_empty() {
            let keys: Vec<String> = obj.keys().cloned().collect();
            return Err(missing_column(path, "text", text, &keys, "--text-column"));
        }
        skipped.push(line);
        return Ok(());
    };
    let Some(t) = scalar(t) else {
        skipped.push(line);
        return Ok(());
    };
    let l = match label {
        Some(name) => match obj
            .get(name)
            .and_then(scalar)
            .filter(|l| !l.trim().is_empty())
        {
            Some(l) => Some(l.trim().to_string()),
            None => {
                if out.rows.is_empty() && skipped.is_empty() && !obj.contains_key(name) {
                    let keys: Vec<String> = obj.keys().cloned().collect();
                    return Err(missing_column(path, "label", name, &keys, "--target"));
                }
                skipped.push(line);
                return Ok(());
            }
        },
        None => None,
    };
    out.rows.push(Row {
        line,
        text: t,
        label: l,
    });
    Ok(())
}

/// Loads a labelled table as a split: labels sorted, one [`LabeledFile`] per row.
fn load_table(path: &Path, split: &str, columns: &Columns) -> Result<TextSplit> {
    let read = read_rows(path, &columns.text, Some(&columns.label))?;
    let labels: Vec<String> = read
        .rows
        .iter()
        .filter_map(|r| r.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = TextSplit {
        split: ScannedSplit {
            name: split.into(),
            root: path.to_path_buf(),
            labels: labels.clone(),
            issues: read.issues,
            ..Default::default()
        },
        texts: HashMap::new(),
    };
    let mut empty = 0;
    for row in read.rows {
        let Some(label) = row
            .label
            .as_ref()
            .and_then(|l| labels.iter().position(|x| x == l))
        else {
            continue;
        };
        if row.text.trim().is_empty() {
            empty += 1;
            continue;
        }
        let source = PathBuf::from(format!("{}:{}", path.display(), row.line));
        out.split.files.push(LabeledFile {
            path: source.clone(),
            label,
            hash: *blake3::hash(row.text.as_bytes()).as_bytes(),
        });
        out.texts.insert(source, row.text);
    }
    if empty > 0 {
        out.split.num_skipped += empty;
        out.split.issues.push(HealthIssue::warning(
            "empty_text",
            format!("{empty} rows have an empty text and were skipped"),
            vec![path.to_path_buf()],
        ));
    }
    if out.split.files.is_empty() {
        return Err(Error::data(
            format!(
                "no labelled rows found; the file needs a \"{}\" and a \"{}\" column (choose them with --text-column and --target)",
                columns.text, columns.label
            ),
            path,
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_utf16_and_latin1_without_failing() {
        assert_eq!(decode("héllo".as_bytes()), ("héllo".into(), None));
        assert_eq!(decode(b"\xEF\xBB\xBFhi").0, "hi");
        let (s, note) = decode(b"caf\xe9 \x80");
        assert_eq!(s, "café €");
        assert!(note.is_some());
        let (s, note) = decode(&[0xFF, 0xFE, b'h', 0, b'i', 0]);
        assert_eq!(s, "hi");
        assert!(note.is_some());
    }

    #[test]
    fn reads_csv_json_and_jsonl_with_bad_rows_as_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        std::fs::write(
            &csv,
            "id,body,kind\n1,\"hello, world\",a\n2,bye,\n3,\"multi\nline\",b\n",
        )
        .unwrap();
        let r = read_rows(&csv, "body", Some("kind")).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].text, "multi\nline");
        assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
        let e = read_rows(&csv, "text", Some("kind"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--text-column") && e.contains("body"), "{e}");
        let e = read_rows(&csv, "body", Some("label"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--target"), "{e}");

        let json = dir.path().join("d.json");
        std::fs::write(
            &json,
            r#"[{"text":"a","label":1},{"text":"b","label":"x"},{"nope":1}]"#,
        )
        .unwrap();
        let r = read_rows(&json, "text", Some("label")).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].label.as_deref(), Some("1"));
        let jsonl = dir.path().join("d.jsonl");
        std::fs::write(
            &jsonl,
            "{\"text\":\"a\",\"label\":\"p\"}\nnot json\n{\"text\":\"b\",\"label\":\"q\"}\n",
        )
        .unwrap();
        let r = read_rows(&jsonl, "text", Some("label")).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.issues.len(), 1);
        let split = load(
            &jsonl,
            "train",
            &Columns::default(),
            &mut |_, _| {},
            &|| Ok(()),
        )
        .unwrap();
        assert_eq!(split.split.labels, vec!["p", "q"]);
        assert_eq!(split.text(&split.split.files[1]), "b");
    }
}
