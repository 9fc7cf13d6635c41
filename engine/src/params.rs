//! Parameter specs and checking ("parse, don't validate"): raw values from a template, a
//! `project.toml` or the command line are checked once against a task's [`ParamSpec`]s into
//! [`ResolvedParams`]; training code only ever sees checked values.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A parameter value as stored in project files and lock files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl ParamValue {
    /// Converts a TOML value; `None` for tables, arrays and dates, which no parameter takes.
    pub fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Boolean(b) => Some(Self::Bool(*b)),
            toml::Value::Integer(i) => Some(Self::Int(*i)),
            toml::Value::Float(f) => Some(Self::Float(*f)),
            toml::Value::String(s) => Some(Self::Text(s.clone())),
            _ => None,
        }
    }

    /// The TOML form, for writing project and lock files.
    pub fn to_toml(&self) -> toml::Value {
        match self {
            Self::Bool(b) => toml::Value::Boolean(*b),
            Self::Int(i) => toml::Value::Integer(*i),
            Self::Float(f) => toml::Value::Float(*f),
            Self::Text(s) => toml::Value::String(s.clone()),
        }
    }

    /// Human form, for help text and forms.
    pub fn display(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => format!("{f}"),
            Self::Text(s) => s.clone(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Bool(_) => "true/false",
            Self::Int(_) => "a whole number",
            Self::Float(_) => "a number",
            Self::Text(_) => "text",
        }
    }
}

/// What values a parameter accepts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    Bool,
    Int { min: i64, max: i64 },
    Float { min: f64, max: f64 },
    Choice { options: Vec<String> },
    Text,
}

/// One tunable parameter of a task: what the settings form shows and what checking enforces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamSpec {
    /// The key in `project.toml` `[params]` and the CLI's `--param key=value`.
    pub key: String,
    /// Short label for forms.
    pub label: String,
    /// One sentence of help.
    pub help: String,
    /// Section of the settings form ("Training", "Augmentation", "Model", …).
    pub group: String,
    pub kind: ParamKind,
    pub default: ParamValue,
}

impl ParamSpec {
    pub fn new(
        key: &str,
        label: &str,
        group: &str,
        help: &str,
        kind: ParamKind,
        default: ParamValue,
    ) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            help: help.into(),
            group: group.into(),
            kind,
            default,
        }
    }

    pub fn bool(key: &str, label: &str, group: &str, help: &str, default: bool) -> Self {
        Self::new(
            key,
            label,
            group,
            help,
            ParamKind::Bool,
            ParamValue::Bool(default),
        )
    }

    pub fn int(
        key: &str,
        label: &str,
        group: &str,
        help: &str,
        range: (i64, i64),
        default: i64,
    ) -> Self {
        let kind = ParamKind::Int {
            min: range.0,
            max: range.1,
        };
        Self::new(key, label, group, help, kind, ParamValue::Int(default))
    }

    pub fn float(
        key: &str,
        label: &str,
        group: &str,
        help: &str,
        range: (f64, f64),
        default: f64,
    ) -> Self {
        let kind = ParamKind::Float {
            min: range.0,
            max: range.1,
        };
        Self::new(key, label, group, help, kind, ParamValue::Float(default))
    }

    pub fn choice(
        key: &str,
        label: &str,
        group: &str,
        help: &str,
        options: &[&str],
        default: &str,
    ) -> Self {
        let kind = ParamKind::Choice {
            options: options.iter().map(|s| s.to_string()).collect(),
        };
        Self::new(
            key,
            label,
            group,
            help,
            kind,
            ParamValue::Text(default.into()),
        )
    }

    /// Checks `value` against this spec; ints are accepted where floats are expected.
    pub fn check(&self, value: &ParamValue) -> Result<ParamValue> {
        let bad_type = || {
            Error::project(
                format!(
                    "parameter `{}` must be {}, got {} ({})",
                    self.key,
                    self.default.type_name(),
                    value.display(),
                    value.type_name()
                ),
                None,
            )
        };
        match (&self.kind, value) {
            (ParamKind::Bool, ParamValue::Bool(_)) | (ParamKind::Text, ParamValue::Text(_)) => {
                Ok(value.clone())
            }
            (ParamKind::Int { min, max }, ParamValue::Int(i)) => {
                if i < min || i > max {
                    return Err(Error::project(
                        format!(
                            "parameter `{}` = {i} is out of range, allowed {min}..={max}",
                            self.key
                        ),
                        None,
                    ));
                }
                Ok(value.clone())
            }
            (ParamKind::Float { min, max }, ParamValue::Float(_) | ParamValue::Int(_)) => {
                let f = match value {
                    ParamValue::Int(i) => *i as f64,
                    ParamValue::Float(f) => *f,
                    _ => return Err(bad_type()),
                };
                if !f.is_finite() || f < *min || f > *max {
                    return Err(Error::project(
                        format!(
                            "parameter `{}` = {f} is out of range, allowed {min} to {max}",
                            self.key
                        ),
                        None,
                    ));
                }
                Ok(ParamValue::Float(f))
            }
            (ParamKind::Choice { options }, ParamValue::Text(s)) => {
                if options.iter().any(|o| o == s) {
                    Ok(value.clone())
                } else {
                    Err(Error::project(
                        format!(
                            "parameter `{}` = \"{s}\" is not one of: {}",
                            self.key,
                            options.join(", ")
                        ),
                        None,
                    ))
                }
            }
            _ => Err(bad_type()),
        }
    }

    /// Parses a command-line string (`--param key=value`) into a value of this spec's type.
    pub fn parse_cli(&self, text: &str) -> Result<ParamValue> {
        let value = match &self.kind {
            ParamKind::Bool => match text {
                "true" | "yes" | "on" | "1" => ParamValue::Bool(true),
                "false" | "no" | "off" | "0" => ParamValue::Bool(false),
                _ => ParamValue::Text(text.into()),
            },
            ParamKind::Int { .. } => text
                .parse()
                .map(ParamValue::Int)
                .unwrap_or(ParamValue::Text(text.into())),
            ParamKind::Float { .. } => text
                .parse()
                .map(ParamValue::Float)
                .unwrap_or(ParamValue::Text(text.into())),
            ParamKind::Choice { .. } | ParamKind::Text => ParamValue::Text(text.into()),
        };
        self.check(&value)
    }
}

/// Parameters after checking: every spec has a value of the right type and range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolvedParams(pub BTreeMap<String, ParamValue>);

impl ResolvedParams {
    /// Resolves `layers` (lowest priority first: template defaults, project, command line) against
    /// `specs`. Unknown keys and wrong types are errors that name the key.
    pub fn resolve(specs: &[ParamSpec], layers: &[&BTreeMap<String, ParamValue>]) -> Result<Self> {
        let mut out = BTreeMap::new();
        for spec in specs {
            out.insert(spec.key.clone(), spec.default.clone());
        }
        for layer in layers {
            for (key, value) in *layer {
                let Some(spec) = specs.iter().find(|s| &s.key == key) else {
                    let known: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
                    return Err(Error::project(
                        format!(
                            "unknown parameter `{key}`; this template takes: {}",
                            known.join(", ")
                        ),
                        None,
                    ));
                };
                out.insert(key.clone(), spec.check(value)?);
            }
        }
        Ok(Self(out))
    }

    pub fn bool(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(ParamValue::Bool(true)))
    }

    pub fn int(&self, key: &str) -> i64 {
        match self.0.get(key) {
            Some(ParamValue::Int(i)) => *i,
            Some(ParamValue::Float(f)) => *f as i64,
            _ => 0,
        }
    }

    pub fn usize(&self, key: &str) -> usize {
        self.int(key).max(0) as usize
    }

    pub fn float(&self, key: &str) -> f64 {
        match self.0.get(key) {
            Some(ParamValue::Float(f)) => *f,
            Some(ParamValue::Int(i)) => *i as f64,
            _ => 0.0,
        }
    }

    pub fn text(&self, key: &str) -> &str {
        match self.0.get(key) {
            Some(ParamValue::Text(s)) => s,
            _ => "",
        }
    }

    /// Sets a value that was already checked (used by the app's form and by `--epochs`).
    pub fn set(&mut self, key: &str, value: ParamValue) {
        self.0.insert(key.to_string(), value);
    }
}

/// Converts a TOML table into a parameter layer, naming the first key of an unsupported type.
pub fn layer_from_toml(table: &toml::Table) -> Result<BTreeMap<String, ParamValue>> {
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let Some(v) = ParamValue::from_toml(value) else {
            return Err(Error::project(
                format!(
                    "parameter `{key}` must be a number, true/false or text, not {}",
                    value.type_str()
                ),
                None,
            ));
        };
        out.insert(key.clone(), v);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("epochs", "Epochs", "Training", "", (1, 1000), 10),
            ParamSpec::float("learning_rate", "LR", "Training", "", (1e-6, 1.0), 0.01),
            ParamSpec::choice(
                "head",
                "Head",
                "Model",
                "",
                &["logistic", "mlp"],
                "logistic",
            ),
        ]
    }

    #[test]
    fn layers_override_in_order_and_ints_become_floats() {
        let a = BTreeMap::from([("epochs".to_string(), ParamValue::Int(5))]);
        let b = BTreeMap::from([("learning_rate".to_string(), ParamValue::Int(1))]);
        let p = ResolvedParams::resolve(&specs(), &[&a, &b]).unwrap();
        assert_eq!(p.int("epochs"), 5);
        assert_eq!(p.0["learning_rate"], ParamValue::Float(1.0));
        assert_eq!(p.text("head"), "logistic");
    }

    #[test]
    fn errors_name_the_key_and_the_allowed_values() {
        let unknown = BTreeMap::from([("epoch".to_string(), ParamValue::Int(5))]);
        let e = ResolvedParams::resolve(&specs(), &[&unknown])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown parameter `epoch`") && e.contains("epochs"),
            "{e}"
        );
        let range = BTreeMap::from([("epochs".to_string(), ParamValue::Int(0))]);
        let e = ResolvedParams::resolve(&specs(), &[&range])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=1000"), "{e}");
        let choice = BTreeMap::from([("head".to_string(), ParamValue::Text("svm".into()))]);
        let e = ResolvedParams::resolve(&specs(), &[&choice])
            .unwrap_err()
            .to_string();
        assert!(e.contains("logistic, mlp"), "{e}");
        let ty = BTreeMap::from([("epochs".to_string(), ParamValue::Text("ten".into()))]);
        let e = ResolvedParams::resolve(&specs(), &[&ty])
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a whole number"), "{e}");
    }

    #[test]
    fn cli_strings_parse_to_the_spec_type() {
        let s = &specs()[0];
        assert_eq!(s.parse_cli("7").unwrap(), ParamValue::Int(7));
        assert!(s.parse_cli("seven").is_err());
    }
}
