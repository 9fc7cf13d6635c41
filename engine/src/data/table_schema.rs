//! Column typing for tables: which columns are numeric, boolean or categorical, which are
//! dropped (free text, row ids, empty or constant columns) and why — and the feature pipeline
//! that turns a [`RawTable`]'s text cells into numbers the same way at training and prediction
//! time (it is saved in the model's `config.json`).

use crate::data::table::RawTable;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most categorical levels kept per column; rarer ones share the "other or missing" code.
pub const MAX_CATEGORIES: usize = 254;

/// Share of a column's values that must be numbers for it to count as numeric.
const NUMERIC_SHARE: f64 = 0.95;

/// How a feature column is turned into a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A number; missing is NaN (trees route it, linear models impute the median).
    Numeric,
    /// true/false, yes/no: 1 or 0; missing is NaN.
    Boolean,
    /// One of a set of levels: the level's code; missing, unseen and rare levels share one code.
    Categorical,
}

/// One feature column of the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// Categorical levels, most frequent first; code `i` is `categories[i]`, code
    /// `categories.len()` is "missing, unseen or rare".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Median of the training values (numeric, boolean): what linear models impute for missing.
    #[serde(default)]
    pub median: f64,
    /// Finite range of the training values: linear models clip ±inf into it.
    #[serde(default)]
    pub min: f64,
    #[serde(default)]
    pub max: f64,
}

impl FeatureColumn {
    /// The code of the "missing, unseen or rare" level of a categorical column.
    pub fn missing_code(&self) -> usize {
        self.categories.len()
    }

    /// The number a cell becomes; `bad` is set when a numeric cell is not a number. Numbers are
    /// rounded to the nearest f32: exported models (Core ML, ONNX) take f32 inputs, so training
    /// and `lathe predict` see exactly the values an app will pass, and a tree's split decides
    /// the same way in every runtime.
    pub fn encode(&self, cell: Option<&str>, index: &HashMap<&str, usize>, bad: &mut bool) -> f64 {
        match self.kind {
            ColumnKind::Numeric => match cell {
                None => f64::NAN,
                Some(c) => match parse_number(c) {
                    Some(v) => f64::from(v as f32),
                    None => {
                        *bad = true;
                        f64::NAN
                    }
                },
            },
            ColumnKind::Boolean => match cell.map(parse_bool) {
                None => f64::NAN,
                Some(Some(b)) => f64::from(u8::from(b)),
                Some(None) => {
                    *bad = true;
                    f64::NAN
                }
            },
            ColumnKind::Categorical => {
                let code = cell
                    .and_then(|c| index.get(c).copied())
                    .unwrap_or(self.missing_code());
                code as f64
            }
        }
    }
}

/// What was decided about one column of the data (for `lathe check`, warnings and the report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// `numeric`, `boolean`, `categorical`, `target`, or `dropped`.
    pub role: String,
    pub missing: usize,
    pub distinct: usize,
    /// Why a column was dropped, or a note about it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The feature pipeline: the columns a model reads, in order, and how.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub features: Vec<FeatureColumn>,
}

/// Feature values of a table, one `Vec` per feature column (column-major).
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    pub columns: Vec<Vec<f64>>,
    pub num_rows: usize,
}

impl Matrix {
    /// The values of row `r`.
    pub fn row(&self, r: usize) -> Vec<f64> {
        self.columns
            .iter()
            .map(|c| c.get(r).copied().unwrap_or(f64::NAN))
            .collect()
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Matrix {
        Matrix {
            columns: self
                .columns
                .iter()
                .map(|c| {
                    idx.iter()
                        .map(|&i| c.get(i).copied().unwrap_or(f64::NAN))
                        .collect()
                })
                .collect(),
            num_rows: idx.len(),
        }
    }
}

/// A number, as Rust reads it (`1e3`, `-inf`, `+2.5`); NaN counts as missing.
pub fn parse_number(cell: &str) -> Option<f64> {
    let v: f64 = cell.trim().parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// true/false, yes/no, t/f, y/n in any case.
pub fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" => Some(true),
        "false" | "no" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// A header that names a row id.
fn id_like_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n.is_empty()
        || n.starts_with("column_")
        || n.starts_with("unnamed")
        || ["id", "index", "row", "rownames", "row_id", "key"].contains(&n.as_str())
        || n.ends_with("_id")
        || n.ends_with(" id")
}

/// Decides the type of every column but `target` and those in `ignore`, and builds the pipeline.
/// `warn` receives one line per dropped column and per column with unreadable numbers.
pub fn infer(
    table: &RawTable,
    target: &str,
    ignore: &[String],
    warn: &mut dyn FnMut(String),
) -> Result<(Schema, Vec<ColumnInfo>)> {
    let mut features = Vec::new();
    let mut infos = Vec::new();
    for (name, col) in table.columns.iter().zip(&table.cells) {
        let values: Vec<&str> = col.iter().flatten().collect();
        let missing = col.len() - values.len();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for v in &values {
            *counts.entry(v).or_default() += 1;
        }
        let distinct = counts.len();
        let mut info = ColumnInfo {
            name: name.clone(),
            role: "dropped".into(),
            missing,
            distinct,
            note: String::new(),
        };
        if name == target {
            info.role = "target".into();
            infos.push(info);
            continue;
        }
        if ignore.iter().any(|i| i == name) {
            info.note = "ignored (ignore_columns)".into();
            infos.push(info);
            continue;
        }
        if values.is_empty() {
            info.note = "every value is missing".into();
            warn(format!("column `{name}` has no values; it is not used"));
            infos.push(info);
            continue;
        }
        if distinct == 1 && missing == 0 {
            info.note = "the same value in every row".into();
            warn(format!(
                "column `{name}` holds the same value in every row; it is not used"
            ));
            infos.push(info);
            continue;
        }
        let numbers: Vec<f64> = values.iter().filter_map(|v| parse_number(v)).collect();
        let column = if numbers.len() as f64 >= NUMERIC_SHARE * values.len() as f64 {
            let not_numbers = values.len() - numbers.len();
            if not_numbers > 0 {
                let first = col
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.is_some_and(|c| parse_number(c).is_none()));
                if let Some((row, Some(cell))) = first {
                    warn(format!(
                        "column `{name}`: {not_numbers} value(s) are not numbers (first \"{cell}\" on line {}); they count as missing",
                        table.lines.get(row).copied().unwrap_or(0)
                    ));
                }
            }
            let all_int = numbers.iter().all(|v| v.fract() == 0.0 && v.is_finite());
            if all_int && distinct == values.len() && missing == 0 && values.len() >= 20 {
                let (lo, hi) = min_max(&numbers);
                let consecutive = hi - lo + 1.0 == numbers.len() as f64;
                if consecutive || id_like_name(name) {
                    info.note = "looks like a row id (distinct whole numbers)".into();
                    warn(format!(
                        "column `{name}` looks like a row id (a distinct whole number in every row); it is not used — rename it or list another column in ignore_columns if that is wrong"
                    ));
                    infos.push(info);
                    continue;
                }
            }
            let infinite = numbers.iter().filter(|v| v.is_infinite()).count();
            if infinite > 0 {
                warn(format!(
                    "column `{name}` has {infinite} infinite value(s); trees put them beyond every split, linear models clip them to the finite range"
                ));
            }
            numeric_column(name, ColumnKind::Numeric, &numbers)
        } else if values.iter().all(|v| parse_bool(v).is_some()) {
            let bits: Vec<f64> = values
                .iter()
                .filter_map(|v| parse_bool(v))
                .map(|b| f64::from(u8::from(b)))
                .collect();
            numeric_column(name, ColumnKind::Boolean, &bits)
        } else {
            if distinct > 50 && distinct as f64 > 0.5 * values.len() as f64 {
                info.note = "free text or identifiers (mostly distinct values)".into();
                warn(format!(
                    "column `{name}` looks like free text or identifiers ({distinct} distinct values in {} rows); it is not used",
                    values.len()
                ));
                infos.push(info);
                continue;
            }
            let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
            levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            if levels.len() > MAX_CATEGORIES {
                info.note = format!(
                    "{} rarest levels grouped with missing",
                    levels.len() - MAX_CATEGORIES
                );
                warn(format!(
                    "column `{name}` has {distinct} levels; the {MAX_CATEGORIES} most frequent are kept, the rest count as one \"other\" level"
                ));
                levels.truncate(MAX_CATEGORIES);
            }
            FeatureColumn {
                name: name.clone(),
                kind: ColumnKind::Categorical,
                categories: levels.into_iter().map(|(l, _)| l.to_string()).collect(),
                median: 0.0,
                min: 0.0,
                max: 0.0,
            }
        };
        info.role = match column.kind {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Categorical => "categorical",
        }
        .into();
        infos.push(info);
        features.push(column);
    }
    if features.is_empty() {
        return Err(Error::data(
            "no usable feature columns are left besides the target; the table needs at least one numeric, boolean or categorical column",
            &table.path,
        ));
    }
    Ok((Schema { features }, infos))
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        })
}

fn numeric_column(name: &str, kind: ColumnKind, values: &[f64]) -> FeatureColumn {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let median = match finite.len() {
        0 => 0.0,
        n if n % 2 == 1 => finite[n / 2],
        n => 0.5 * (finite[n / 2 - 1] + finite[n / 2]),
    };
    FeatureColumn {
        name: name.to_string(),
        kind,
        categories: Vec::new(),
        median,
        min: finite.first().copied().unwrap_or(0.0),
        max: finite.last().copied().unwrap_or(0.0),
    }
}

impl Schema {
    /// Encodes every row of `table` (which must hold every feature column, in any order).
    /// `warn` receives one line per column with unreadable values, naming the first line.
    pub fn encode(&self, table: &RawTable, warn: &mut dyn FnMut(String)) -> Result<Matrix> {
        let mut columns = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let Some(c) = table.column_index(&f.name) else {
                return Err(Error::data(
                    format!(
                        "the table has no column `{}`, which the model needs (it has: {})",
                        f.name,
                        table.columns.join(", ")
                    ),
                    &table.path,
                ));
            };
            let Some(cells) = table.cells.get(c) else {
                return Err(Error::data("the table is damaged", &table.path));
            };
            let index: HashMap<&str, usize> = f
                .categories
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            let mut bad_count = 0usize;
            let mut first_bad = None;
            let values: Vec<f64> = cells
                .iter()
                .enumerate()
                .map(|(r, cell)| {
                    let mut bad = false;
                    let v = f.encode(cell, &index, &mut bad);
                    if bad {
                        bad_count += 1;
                        first_bad.get_or_insert((r, cell.unwrap_or_default().to_string()));
                    }
                    v
                })
                .collect();
            if let Some((r, cell)) = first_bad {
                warn(format!(
                    "column `{}`: {bad_count} value(s) are not {} (first \"{cell}\" on line {}); they count as missing",
                    f.name,
                    if f.kind == ColumnKind::Boolean {
                        "true/false"
                    } else {
                        "numbers"
                    },
                    table.lines.get(r).copied().unwrap_or(0)
                ));
            }
            columns.push(values);
        }
        Ok(Matrix {
            columns,
            num_rows: table.num_rows(),
        })
    }

    /// Which features are categorical (trees split them by sets of levels).
    pub fn categorical(&self) -> Vec<bool> {
        self.features
            .iter()
            .map(|f| f.kind == ColumnKind::Categorical)
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::data::table;

    fn table_of(text: &str) -> RawTable {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        table::read(&p).unwrap()
    }

    #[test]
    fn infers_numeric_boolean_categorical_and_drops_text_and_ids() {
        let mut text = String::from("id,x,flag,color,note,y,const\n");
        for i in 0..120 {
            let x = if i % 10 == 3 {
                "NA".to_string()
            } else {
                format!("{}.5", i % 7)
            };
            let flag = if i % 2 == 0 { "yes" } else { "No" };
            let color = ["red", "green", "blue"][i % 3];
            let color = if i % 11 == 0 { "" } else { color };
            text += &format!("{i},{x},{flag},{color},note number {i},{},k\n", i % 2);
        }
        let t = table_of(&text);
        let mut warnings = Vec::new();
        let (schema, infos) = infer(&t, "y", &[], &mut |w| warnings.push(w)).unwrap();
        let kinds: Vec<(&str, ColumnKind)> = schema
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("x", ColumnKind::Numeric),
                ("flag", ColumnKind::Boolean),
                ("color", ColumnKind::Categorical)
            ]
        );
        let roles: Vec<&str> = infos.iter().map(|i| i.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "dropped",
                "numeric",
                "boolean",
                "categorical",
                "dropped",
                "target",
                "dropped"
            ]
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("`id` looks like a row id"))
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("`note` looks like free text"))
        );
        assert!(warnings.iter().any(|w| w.contains("`const`")));
        assert_eq!(infos[1].missing, 12);
        let m = schema.encode(&t, &mut |w| panic!("{w}")).unwrap();
        assert!(m.columns[0][3].is_nan());
        assert_eq!(m.columns[0][1], 1.5);
        assert_eq!(m.columns[1][0], 1.0);
        assert_eq!(m.columns[1][1], 0.0);
        // categorical missing is its own level
        let color = &schema.features[2];
        assert_eq!(color.categories.len(), 3);
        assert_eq!(m.columns[2][0], color.missing_code() as f64);
        assert_eq!(
            m.columns[2][1],
            color.categories.iter().position(|c| c == "green").unwrap() as f64
        );
    }

    #[test]
    fn bad_numbers_and_infinities_are_warned_with_their_line() {
        let mut text = String::from("x,y\n");
        for i in 0..40 {
            let x = match i {
                5 => "oops".to_string(),
                6 => "inf".to_string(),
                7 => "-Infinity".to_string(),
                _ => i.to_string(),
            };
            text += &format!("{x},{}\n", i % 2);
        }
        let t = table_of(&text);
        let mut warnings = Vec::new();
        let (schema, _) = infer(&t, "y", &[], &mut |w| warnings.push(w)).unwrap();
        assert_eq!(schema.features[0].kind, ColumnKind::Numeric);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("\"oops\" on line 7") && w.contains("`x`")),
            "{warnings:?}"
        );
        assert!(warnings.iter().any(|w| w.contains("2 infinite")));
        assert_eq!(schema.features[0].max, 39.0);
        let m = schema.encode(&t, &mut |_| {}).unwrap();
        assert!(m.columns[0][5].is_nan());
        assert_eq!(m.columns[0][6], f64::INFINITY);
        assert_eq!(m.columns[0][7], f64::NEG_INFINITY);
    }

    #[test]
    fn missing_feature_column_at_prediction_is_an_error() {
        let t = table_of("a,b,y\n1,2,0\n3,4,1\n5,6,0\n");
        let (schema, _) = infer(&t, "y", &[], &mut |_| {}).unwrap();
        let other = table_of("a,y\n1,0\n");
        let e = schema.encode(&other, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("no column `b`"), "{e}");
        let only_target = table_of("y\n1\n2\n");
        let e = infer(&only_target, "y", &[], &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("no usable feature columns"), "{e}");
    }
}
