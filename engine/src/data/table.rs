//! Reading tables: CSV (any delimiter of `,` `;` tab, quoted fields, a header row), JSON lines
//! (one object per line) and JSON arrays of objects, into a [`RawTable`] of text cells with the
//! file line of every row. Missing-value tokens (`""`, `NA`, `NaN`, `null`, …) become empty
//! cells; ragged rows and unreadable lines are skipped with a warning that names the line.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Cell texts that mean "missing" (compared after trimming).
pub const MISSING_TOKENS: &[&str] = &[
    "", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none", "?",
];

/// Skipped rows above this share of the file make reading fail instead of warn.
const MAX_BAD_SHARE: f64 = 0.1;

/// The text cells of one column, stored in one buffer (a table of millions of cells stays small).
#[derive(Clone, Debug, Default)]
pub struct TextColumn {
    text: String,
    ends: Vec<usize>,
}

impl TextColumn {
    fn push(&mut self, cell: &str) {
        let cell = cell.trim();
        if !MISSING_TOKENS.contains(&cell) {
            self.text.push_str(cell);
        }
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The cell of row `i`; `None` when missing (or out of range).
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        let s = self.text.get(start..end)?;
        (!s.is_empty()).then_some(s)
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A whole table as text, before any typing.
#[derive(Clone, Debug, Default)]
pub struct RawTable {
    pub path: PathBuf,
    pub columns: Vec<String>,
    pub cells: Vec<TextColumn>,
    /// The 1-based file line (CSV, JSON lines) or record number (JSON array) of each row.
    pub lines: Vec<u64>,
    /// Rows that could not be read, each with its reason (already counted out of `lines`).
    pub skipped: Vec<String>,
}

impl RawTable {
    pub fn num_rows(&self) -> usize {
        self.lines.len()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// `file.csv:LINE` for row `i`, the form predictions and reports name rows by.
    pub fn row_name(&self, i: usize) -> String {
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{file}:{}", self.lines.get(i).copied().unwrap_or(0))
    }

    /// The row name with the path as given (for predictions of files named on the command line).
    pub fn row_name_as(&self, given: &str, i: usize) -> String {
        format!("{given}:{}", self.lines.get(i).copied().unwrap_or(0))
    }
}

/// Reads a table, choosing the format by extension (`.jsonl`/`.ndjson`, `.json`, else CSV/TSV).
pub fn read(path: &Path) -> Result<RawTable> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading table", path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut table = match ext.as_str() {
        "jsonl" | "ndjson" => read_json_lines(text, path)?,
        "json" if text.trim_start().starts_with('[') => read_json_array(text, path)?,
        "json" => read_json_lines(text, path)?,
        _ => read_csv(text, path)?,
    };
    table.path = path.to_path_buf();
    if table.columns.is_empty() {
        return Err(Error::data(
            "the table has no columns; the first line must be a header naming them",
            path,
        ));
    }
    let total = table.num_rows() + table.skipped.len();
    if table.num_rows() == 0 {
        return Err(Error::data(
            "the table has no data rows; add rows below the header",
            path,
        ));
    }
    if table.skipped.len() as f64 > MAX_BAD_SHARE * total as f64 && table.skipped.len() > 1 {
        let first = table.skipped.first().cloned().unwrap_or_default();
        return Err(Error::data(
            format!(
                "{} of {total} rows cannot be read (first: {first}); fix the file",
                table.skipped.len()
            ),
            path,
        ));
    }
    Ok(table)
}

/// The most likely delimiter: the one of `,` `;` tab found most often in the header line.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

fn read_csv(text: &str, path: &Path) -> Result<RawTable> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(text))
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::data(format!("cannot read the header line ({e})"), path))?
        .clone();
    let columns = unique_names(headers.iter().map(|h| h.trim().to_string()).collect());
    let mut table = RawTable {
        cells: vec![TextColumn::default(); columns.len()],
        columns,
        ..Default::default()
    };
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::default();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map(|p| lines.line_at(text, p.byte() as usize))
                    .unwrap_or(0);
                if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
                    continue; // a blank line
                }
                if record.len() != table.columns.len() {
                    table.skipped.push(format!(
                        "line {line} has {} fields, the header has {}",
                        record.len(),
                        table.columns.len()
                    ));
                    continue;
                }
                for (col, cell) in table.cells.iter_mut().zip(record.iter()) {
                    col.push(cell);
                }
                table.lines.push(line);
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                table
                    .skipped
                    .push(format!("line {line} cannot be parsed ({e})"));
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    Ok(table)
}

/// 1-based line numbers of byte offsets met in increasing order (the csv crate's own line count
/// drifts after blank lines). A record's offset may point at blank lines before it; they are skipped.
#[derive(Default)]
struct LineCounter {
    byte: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, text: &str, byte: usize) -> u64 {
        let bytes = text.as_bytes();
        let mut b = byte.min(bytes.len());
        while bytes.get(b).is_some_and(|c| *c == b'\n' || *c == b'\r') {
            b += 1;
        }
        if b >= self.byte {
            let newlines = bytes
                .get(self.byte..b)
                .map_or(0, |s| s.iter().filter(|c| **c == b'\n').count());
            self.line += newlines as u64;
            self.byte = b;
        }
        self.line + 1
    }
}

/// Makes header names unique and non-empty (`""` → `column_1`, a repeated `x` → `x_2`).
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, n) in names.into_iter().enumerate() {
        let base = if n.is_empty() {
            format!("column_{}", i + 1)
        } else {
            n
        };
        let mut name = base.clone();
        let mut k = 2;
        while out.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        out.push(name);
    }
    out
}

/// JSON value → cell text (`None` for null; nested values as compact JSON).
fn json_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Builds a table from objects in file order, columns in order of first appearance.
fn from_objects(
    objects: Vec<(u64, serde_json::Map<String, serde_json::Value>)>,
    skipped: Vec<String>,
) -> RawTable {
    let mut columns: Vec<String> = Vec::new();
    for (_, o) in &objects {
        for k in o.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut table = RawTable {
        cells: vec![TextColumn::default(); columns.len()],
        skipped,
        ..Default::default()
    };
    for (line, o) in objects {
        for (name, col) in columns.iter().zip(table.cells.iter_mut()) {
            col.push(&o.get(name).map(json_cell).unwrap_or_default());
        }
        table.lines.push(line);
    }
    table.columns = columns;
    table
}

fn read_json_lines(text: &str, _path: &Path) -> Result<RawTable> {
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(o)) => objects.push((n, o)),
            Ok(_) => skipped.push(format!("line {n} is not a JSON object")),
            Err(e) => skipped.push(format!("line {n} is not valid JSON ({e})")),
        }
    }
    Ok(from_objects(objects, skipped))
}

fn read_json_array(text: &str, path: &Path) -> Result<RawTable> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        Error::data(
            format!("not a JSON array of objects ({e}); use one object per line (.jsonl) or CSV"),
            path,
        )
    })?;
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let n = i as u64 + 1;
        match v {
            serde_json::Value::Object(o) => objects.push((n, o)),
            _ => skipped.push(format!("record {n} is not a JSON object")),
        }
    }
    Ok(from_objects(objects, skipped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_with_quotes_missing_tokens_and_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            "t.csv",
            "a,b,c\n1,\"x, y\",NA\n\n2,,3\n4,\"multi\nline\",5\n",
        );
        let t = read(&p).unwrap();
        assert_eq!(t.columns, ["a", "b", "c"]);
        assert_eq!(t.num_rows(), 3);
        assert_eq!(t.cells[1].get(0), Some("x, y"));
        assert_eq!(t.cells[2].get(0), None);
        assert_eq!(t.cells[1].get(1), None);
        assert_eq!(t.lines, [2, 4, 5]);
        assert_eq!(t.row_name(2), "t.csv:5");
    }

    #[test]
    fn ragged_rows_are_skipped_with_their_line_or_fail_when_many() {
        let tmp = tempfile::tempdir().unwrap();
        let mut text = String::from("a;b\n");
        for i in 0..30 {
            text += &format!("{i};{}\n", i * 2);
        }
        text += "1;2;3\n";
        let t = read(&write(tmp.path(), "t.csv", &text)).unwrap();
        assert_eq!(t.num_rows(), 30);
        assert_eq!(t.skipped.len(), 1);
        assert!(
            t.skipped[0].contains("line 32 has 3 fields"),
            "{:?}",
            t.skipped
        );
        let bad = "a,b\n1,2\n1\n1\n1,2,3\n";
        let e = read(&write(tmp.path(), "bad.csv", bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 of 4 rows") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn json_lines_and_arrays() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            "t.jsonl",
            "{\"x\": 1.5, \"y\": \"a\"}\n{\"x\": null, \"y\": \"b\", \"z\": true}\nnot json\n{\"x\":2,\"y\":\"a\"}\n{\"x\":3,\"y\":\"a\"}\n{\"x\":4,\"y\":\"a\"}\n{\"x\":5,\"y\":\"a\"}\n{\"x\":6,\"y\":\"a\"}\n{\"x\":7,\"y\":\"a\"}\n{\"x\":8,\"y\":\"a\"}\n{\"x\":9,\"y\":\"a\"}\n",
        );
        let t = read(&p).unwrap();
        assert_eq!(t.columns, ["x", "y", "z"]);
        assert_eq!(t.cells[0].get(1), None);
        assert_eq!(t.cells[2].get(1), Some("true"));
        assert!(t.skipped[0].contains("line 3"));
        let a = write(tmp.path(), "a.json", "[{\"x\": 1}, {\"x\": 2}]");
        let t = read(&a).unwrap();
        assert_eq!(t.num_rows(), 2);
        assert_eq!(t.lines, [1, 2]);
    }

    #[test]
    fn empty_tables_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read(&write(tmp.path(), "e.csv", "a,b\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no data rows"), "{e}");
        let e = read(&tmp.path().join("nope.csv")).unwrap_err().to_string();
        assert!(e.contains("nope.csv"), "{e}");
    }
}
