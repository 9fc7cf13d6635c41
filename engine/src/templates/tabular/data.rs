//! The data side of the table tasks: read the training table (and optional validation and test
//! tables), find the target column, type the other columns, turn target cells into class
//! indices or numbers (rows without a usable target are skipped with a warning), and hold out a
//! seeded validation split (stratified for classification). Used by `lathe check` and training.

use crate::data::table::{self, RawTable};
use crate::data::table_schema::{self, ColumnInfo, Matrix, Schema};
use crate::data::{ClassCount, DataKind, DatasetSummary, HealthIssue, SplitSummary};
use crate::error::{Error, Result};
use crate::task::ResolvedData;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Separates the split's random stream from other uses of the seed.
const SPLIT_STREAM: u64 = 0x7ab1_e5b1_7000_0001;

/// Regression targets must stay below this magnitude (their squares must not overflow).
const MAX_TARGET_MAGNITUDE: f64 = 1e100;

/// Column names tried, in order, when no target is given.
const DEFAULT_TARGETS: &[&str] = &["target", "label", "class", "y"];

/// Classification or regression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Classification,
    Regression,
}

/// Rows of one split, encoded.
#[derive(Clone, Debug, Default)]
pub struct Part {
    pub x: Matrix,
    /// Class index (as f64) or number.
    pub y: Vec<f64>,
    /// `file.csv:LINE` of each row.
    pub names: Vec<String>,
}

impl Part {
    /// `self` followed by `other`'s rows (same columns).
    pub fn concat(&self, other: &Part) -> Part {
        let columns = self
            .x
            .columns
            .iter()
            .zip(&other.x.columns)
            .map(|(a, b)| a.iter().chain(b).copied().collect())
            .collect();
        Part {
            x: crate::data::table_schema::Matrix {
                columns,
                num_rows: self.x.num_rows + other.x.num_rows,
            },
            y: self.y.iter().chain(&other.y).copied().collect(),
            names: self.names.iter().chain(&other.names).cloned().collect(),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn rows(&self, indices: &[usize]) -> Part {
        let pick =
            |v: &[f64]| -> Vec<f64> { indices.iter().filter_map(|&i| v.get(i).copied()).collect() };
        Part {
            x: crate::data::table_schema::Matrix {
                columns: self.x.columns.iter().map(|c| pick(c)).collect(),
                num_rows: indices.iter().filter(|&&i| i < self.y.len()).count(),
            },
            y: pick(&self.y),
            names: indices
                .iter()
                .filter_map(|&i| self.names.get(i).cloned())
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn select(&self, idx: &[usize]) -> Part {
        Part {
            x: self.x.select(idx),
            y: idx.iter().filter_map(|&i| self.y.get(i).copied()).collect(),
            names: idx
                .iter()
                .filter_map(|&i| self.names.get(i).cloned())
                .collect(),
        }
    }
}

/// Everything training needs from the data.
#[derive(Clone)]
pub struct TableData {
    pub target: String,
    pub schema: Schema,
    pub columns: Vec<ColumnInfo>,
    /// Class labels (classification), sorted.
    pub labels: Vec<String>,
    pub train: Part,
    pub validation: Part,
    pub test: Part,
    pub issues: Vec<HealthIssue>,
    /// blake3 of the training file.
    pub train_hash: String,
}

/// The target column: `wanted`, else the first of [`DEFAULT_TARGETS`] present.
pub fn find_target(table: &RawTable, wanted: &str) -> Result<String> {
    let wanted = wanted.trim();
    if !wanted.is_empty() {
        if table.column_index(wanted).is_some() {
            return Ok(wanted.to_string());
        }
        return Err(Error::data(
            format!(
                "no column `{wanted}` to predict; the columns are: {} (choose one with --target COL)",
                table.columns.join(", ")
            ),
            &table.path,
        ));
    }
    for d in DEFAULT_TARGETS {
        if let Some(c) = table.columns.iter().find(|c| c.eq_ignore_ascii_case(d)) {
            return Ok(c.clone());
        }
    }
    Err(Error::data(
        format!(
            "which column should the model predict? Pass --target COL (or set `target` in project.toml); the columns are: {}",
            table.columns.join(", ")
        ),
        &table.path,
    ))
}

/// Sorts labels numerically when all are numbers, else alphabetically.
fn sort_labels(labels: &mut [String]) {
    if labels
        .iter()
        .all(|l| table_schema::parse_number(l).is_some())
    {
        labels.sort_by(|a, b| {
            let x = table_schema::parse_number(a).unwrap_or(0.0);
            let y = table_schema::parse_number(b).unwrap_or(0.0);
            x.total_cmp(&y)
        });
    } else {
        labels.sort();
    }
}

/// Target values of every row (`None` where unusable), warning about the skipped rows.
/// `labels` maps class names to indices; classification with `labels == None` discovers them.
pub fn targets(
    table: &RawTable,
    target: &str,
    kind: TargetKind,
    labels: &mut Vec<String>,
    discover: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Option<f64>>> {
    let Some(col) = table.column_index(target).and_then(|c| table.cells.get(c)) else {
        return Err(Error::data(
            format!(
                "no column `{target}` (the model's target) in this table; the columns are: {}",
                table.columns.join(", ")
            ),
            &table.path,
        ));
    };
    let line = |r: usize| table.lines.get(r).copied().unwrap_or(0);
    let mut missing: Vec<u64> = Vec::new();
    let mut bad: Vec<(u64, String)> = Vec::new();
    let out: Vec<Option<f64>> = match kind {
        TargetKind::Regression => col
            .iter()
            .enumerate()
            .map(|(r, c)| match c {
                None => {
                    missing.push(line(r));
                    None
                }
                Some(text) => match table_schema::parse_number(text).filter(|v| v.is_finite()) {
                    Some(v) => Some(v),
                    None => {
                        bad.push((line(r), text.to_string()));
                        None
                    }
                },
            })
            .collect(),
        TargetKind::Classification => {
            if discover {
                let mut seen: Vec<String> = col
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                sort_labels(&mut seen);
                *labels = seen;
            }
            let index: HashMap<&str, usize> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            col.iter()
                .enumerate()
                .map(|(r, c)| match c {
                    None => {
                        missing.push(line(r));
                        None
                    }
                    Some(text) => match index.get(text) {
                        Some(&i) => Some(i as f64),
                        None => {
                            bad.push((line(r), text.to_string()));
                            None
                        }
                    },
                })
                .collect()
        }
    };
    let usable = out.iter().flatten().count();
    let largest = out.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    if kind == TargetKind::Regression && largest > MAX_TARGET_MAGNITUDE {
        // Squared errors of such values overflow to infinity: training could only diverge.
        return Err(Error::data(
            format!(
                "column `{target}` holds values as large as {largest:e}; the regressors need magnitudes below {MAX_TARGET_MAGNITUDE:e}, so rescale the column (e.g. other units)"
            ),
            &table.path,
        ));
    }
    if kind == TargetKind::Regression && bad.len() > usable {
        let example = bad.first().map(|b| b.1.clone()).unwrap_or_default();
        return Err(Error::data(
            format!(
                "column `{target}` is not numeric (e.g. \"{example}\"); predict it with the tabular-classifier template instead"
            ),
            &table.path,
        ));
    }
    if let Some(first) = missing.first() {
        warn(format!(
            "{} row(s) have no `{target}` value and are skipped (first on line {first})",
            missing.len()
        ));
    }
    if let Some((l, text)) = bad.first() {
        let why = match kind {
            TargetKind::Regression => "is not a finite number",
            TargetKind::Classification => "is not a class the model knows",
        };
        warn(format!(
            "{} row(s) are skipped because their `{target}` {why} (first \"{text}\" on line {l})",
            bad.len()
        ));
    }
    for s in &table.skipped {
        warn(format!("{s}; the row is skipped"));
    }
    if usable == 0 {
        return Err(Error::data(
            format!("no row has a usable `{target}` value"),
            &table.path,
        ));
    }
    Ok(out)
}

/// Encodes the rows of `table` that have a target.
pub fn part_of(
    table: &RawTable,
    schema: &Schema,
    y: &[Option<f64>],
    warn: &mut dyn FnMut(String),
) -> Result<Part> {
    let x = schema.encode(table, warn)?;
    let keep: Vec<usize> = (0..y.len()).filter(|&i| y[i].is_some()).collect();
    let all = Part {
        x,
        y: y.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        names: (0..table.num_rows()).map(|i| table.row_name(i)).collect(),
    };
    Ok(if keep.len() == all.len() {
        all
    } else {
        all.select(&keep)
    })
}

/// Seeded split of `0..n` into (train, validation) indices; stratified by class when `classes`.
pub fn split_indices(
    y: &[f64],
    classes: Option<usize>,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    let groups: Vec<Vec<usize>> = match classes {
        Some(k) => (0..k)
            .map(|c| (0..y.len()).filter(|&i| y[i] as usize == c).collect())
            .collect(),
        None => vec![(0..y.len()).collect()],
    };
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for mut g in groups {
        g.shuffle(&mut rng);
        let n = g.len();
        let take = if n >= 2 && fraction > 0.0 {
            ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
        } else {
            0
        };
        validation.extend_from_slice(&g[..take]);
        train.extend_from_slice(&g[take..]);
    }
    train.sort_unstable();
    validation.sort_unstable();
    (train, validation)
}

fn hash_file(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| blake3::hash(&b).to_hex().to_string())
        .unwrap_or_default()
}

/// Reads and prepares all data of a project.
pub fn load(
    data: &ResolvedData,
    target_param: &str,
    ignore: &[String],
    kind: TargetKind,
    validation_split: f64,
) -> Result<TableData> {
    let mut issues: Vec<HealthIssue> = Vec::new();
    let train_table = table::read(&data.train)?;
    let target = find_target(&train_table, target_param)?;
    let path = data.train.clone();
    let push = |code: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |w: String| (code, w, path.clone())
    };
    let mut warnings: Vec<(&str, String, PathBuf)> = Vec::new();
    let (schema, columns) = {
        let to = push("column", &path);
        table_schema::infer(&train_table, &target, ignore, &mut |w| warnings.push(to(w)))?
    };
    let mut labels = Vec::new();
    let y = {
        let to = push("target", &path);
        targets(&train_table, &target, kind, &mut labels, true, &mut |w| {
            warnings.push(to(w))
        })?
    };
    let all = {
        let to = push("value", &path);
        part_of(&train_table, &schema, &y, &mut |w| warnings.push(to(w)))?
    };
    if kind == TargetKind::Classification {
        if labels.len() < 2 {
            return Err(Error::data(
                format!(
                    "column `{target}` holds a single class ({}); a classifier needs at least 2",
                    labels.join(", ")
                ),
                &path,
            ));
        }
        let distinct_numbers = labels
            .iter()
            .filter(|l| table_schema::parse_number(l).is_some())
            .count();
        if distinct_numbers == labels.len() && labels.len() > 30 {
            warnings.push((
                "target",
                format!(
                    "`{target}` has {} distinct numeric values; to predict a number use the tabular-regressor template",
                    labels.len()
                ),
                path.clone(),
            ));
        }
    }
    let classes = (kind == TargetKind::Classification).then_some(labels.len());
    let (train, validation) = match &data.validation {
        Some(vpath) => {
            let t = table::read(vpath)?;
            let to = push("validation", vpath);
            let vy = targets(&t, &target, kind, &mut labels, false, &mut |w| {
                warnings.push(to(w))
            })?;
            let v = part_of(&t, &schema, &vy, &mut |w| warnings.push(to(w)))?;
            (all, v)
        }
        None => {
            let (ti, vi) = split_indices(&all.y, classes, validation_split, data.seed);
            (all.select(&ti), all.select(&vi))
        }
    };
    let test = match &data.test {
        Some(tpath) => {
            let t = table::read(tpath)?;
            let to = push("test", tpath);
            let ty = targets(&t, &target, kind, &mut labels, false, &mut |w| {
                warnings.push(to(w))
            })?;
            part_of(&t, &schema, &ty, &mut |w| warnings.push(to(w)))?
        }
        None => Part::default(),
    };
    if let Some(k) = classes {
        let mut counts = vec![0usize; k];
        for v in &train.y {
            if let Some(c) = counts.get_mut(*v as usize) {
                *c += 1;
            }
        }
        for (label, c) in labels.iter().zip(&counts) {
            if *c < 2 {
                warnings.push((
                    "too_few_examples",
                    format!(
                        "class \"{label}\" has {c} training row(s); add more rows of it for the model to learn it"
                    ),
                    path.clone(),
                ));
            }
        }
    }
    for (code, message, p) in warnings {
        let code = match code {
            "column" => "column_dropped_or_odd",
            "target" => "target_rows_skipped",
            "value" | "validation" | "test" => "bad_values",
            other => other,
        };
        issues.push(HealthIssue::warning(code, message, vec![p]));
    }
    Ok(TableData {
        target,
        schema,
        columns,
        labels,
        train,
        validation,
        test,
        issues,
        train_hash: hash_file(&data.train),
    })
}

impl TableData {
    /// The summary `lathe check` prints and the app shows.
    pub fn summary(&self, data: &ResolvedData) -> DatasetSummary {
        let split = |name: &str, root: &Path, part: &Part| {
            let classes = if self.labels.is_empty() {
                Vec::new()
            } else {
                let mut counts = vec![0usize; self.labels.len()];
                for v in &part.y {
                    if let Some(c) = counts.get_mut(*v as usize) {
                        *c += 1;
                    }
                }
                self.labels
                    .iter()
                    .zip(counts)
                    .map(|(l, count)| ClassCount {
                        label: l.clone(),
                        count,
                        examples: Vec::new(),
                    })
                    .collect()
            };
            SplitSummary {
                name: name.into(),
                root: root.to_path_buf(),
                classes,
                num_examples: part.len(),
                num_skipped: 0,
            }
        };
        let mut splits = vec![split("train", &data.train, &self.train)];
        if !self.validation.is_empty() {
            let root = data.validation.as_deref().unwrap_or(&data.train);
            splits.push(split("validation", root, &self.validation));
        }
        if let Some(t) = &data.test {
            splits.push(split("test", t, &self.test));
        }
        let mut facts = BTreeMap::new();
        facts.insert("target".into(), self.target.clone());
        for c in &self.columns {
            let mut fact = format!(
                "{} ({} distinct, {} missing)",
                c.role, c.distinct, c.missing
            );
            if !c.note.is_empty() {
                fact += &format!(": {}", c.note);
            }
            facts.insert(format!("column {}", c.name), fact);
        }
        DatasetSummary {
            kind: DataKind::Table,
            labels: self.labels.clone(),
            splits,
            issues: self.issues.clone(),
            facts,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_shares_and_is_seeded() {
        let y: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i >= 80))).collect();
        let (t, v) = split_indices(&y, Some(2), 0.25, 3);
        assert_eq!(v.iter().filter(|&&i| y[i] == 0.0).count(), 20);
        assert_eq!(v.iter().filter(|&&i| y[i] == 1.0).count(), 5);
        assert_eq!(t.len() + v.len(), 100);
        assert_eq!(split_indices(&y, Some(2), 0.25, 3).1, v);
        assert_ne!(split_indices(&y, Some(2), 0.25, 4).1, v);
    }

    #[test]
    fn labels_sort_numerically_when_numbers() {
        let mut l: Vec<String> = ["10", "9", "1"].iter().map(|s| s.to_string()).collect();
        sort_labels(&mut l);
        assert_eq!(l, ["1", "9", "10"]);
    }
}
