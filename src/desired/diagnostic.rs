//! A located problem in the desired state: file, line, column, field path and message.
//! Validation collects every one it finds, so a user fixes them all in one round.

use std::fmt;

/// A place in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl From<serde_saphyr::Location> for Pos {
    fn from(l: serde_saphyr::Location) -> Pos {
        Pos { line: l.line() as u32, column: l.column() as u32 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: u32,
    pub column: u32,
    /// Field path inside the document, e.g. `records[3].value`; empty for the whole file.
    pub path: String,
    pub message: String,
}

/// The output of `zonekeeper validate --format json`. `version` is 1; it changes only when a
/// field changes meaning or goes away.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "zonekeeper validate (validate --format json)")]
pub struct ValidationReport<'a> {
    pub version: u32,
    /// True when the desired state loads with no problem.
    pub valid: bool,
    /// Every problem found, each with its file, line, column and field.
    pub problems: &'a [Diagnostic],
}

impl ValidationReport<'_> {
    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(ValidationReport<'static>)).unwrap_or_default()
    }
}

impl Diagnostic {
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: file.into(), line: 0, column: 0, path: String::new(), message: message.into() }
    }

    pub fn at(file: &str, pos: impl Into<Pos>, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        let pos = pos.into();
        Diagnostic {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Several diagnostics, returned when the desired state cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in the desired state:\n{}", .0.len(), .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
pub struct Invalid(pub Vec<Diagnostic>);
