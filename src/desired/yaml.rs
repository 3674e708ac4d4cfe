//! Reading one YAML file into a typed document, with every schema problem located.
//!
//! The fast path deserialises straight into the typed structs (serde-saphyr, a streaming
//! parser with a budget against alias bombs and deep nesting). Only when that fails do we
//! build a located tree, check it against the JSON Schema generated from the same types, and
//! report every violation with its line, column and field path.

use std::path::Path;
use std::sync::OnceLock;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, DuplicateKeyPolicy, Location, Options, Spanned};

use super::diagnostic::Diagnostic;
use super::format::{RecordsFile, ResolverSetFile, SettingsFile};

/// Which document a file holds; picks the schema it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Settings,
    Records,
    ResolverSet,
}

impl DocKind {
    pub const ALL: [DocKind; 3] = [DocKind::Settings, DocKind::Records, DocKind::ResolverSet];

    /// File name of its schema under `schema/`.
    pub fn schema_file(self) -> &'static str {
        match self {
            DocKind::Settings => "settings.json",
            DocKind::Records => "records.json",
            DocKind::ResolverSet => "resolver-set.json",
        }
    }

    pub fn schema(self) -> serde_json::Value {
        let schema = match self {
            DocKind::Settings => schemars::schema_for!(SettingsFile),
            DocKind::Records => schemars::schema_for!(RecordsFile),
            DocKind::ResolverSet => schemars::schema_for!(ResolverSetFile),
        };
        serde_json::to_value(schema).unwrap_or_default()
    }

    fn validator(self) -> Option<&'static jsonschema::Validator> {
        static VALIDATORS: OnceLock<Vec<Option<jsonschema::Validator>>> = OnceLock::new();
        let all = VALIDATORS
            .get_or_init(|| DocKind::ALL.iter().map(|k| jsonschema::validator_for(&k.schema()).ok()).collect());
        all[self as usize].as_ref()
    }
}

fn options(len: usize) -> Options {
    // Large zones are legitimate; the node and event caps grow with the file (which is
    // itself capped by `limits.maxFileBytes`). Alias expansion keeps its default caps, which
    // is what stops an alias bomb.
    let mut budget = Budget::default();
    budget.max_nodes = (len / 2).max(250_000);
    budget.max_events = len.max(1_000_000);
    let mut opts = Options::default();
    opts.budget = Some(budget);
    opts.duplicate_keys = DuplicateKeyPolicy::Error;
    opts.with_snippet = false;
    opts.emit_comments = false;
    opts
}

/// Reads a file, refusing one over `max_bytes`, not a regular file (a FIFO, a device behind
/// a symlink), or not UTF-8. The read itself is capped, so a file that lies about its size
/// cannot make us read without end.
pub fn read_text(path: &Path, display: &str, max_bytes: u64) -> Result<String, Diagnostic> {
    use std::io::Read;
    let too_big = |len: u64| {
        Diagnostic::file(
            display,
            format!(
                "file is {len} bytes, over the limit of {max_bytes} bytes (raise `limits.maxFileBytes` in zonekeeper.yaml if this is intended)"
            ),
        )
    };
    let cannot = |e: std::io::Error| Diagnostic::file(display, format!("cannot read: {e}"));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(Diagnostic::file(
            display,
            "not a regular file (a device, FIFO or socket, perhaps behind a symlink)",
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(display, e.as_bytes(), e.utf8_error()))
}

/// Bytes that are not UTF-8, located at the line and column of the first bad byte.
pub fn not_utf8(display: &str, bytes: &[u8], e: std::str::Utf8Error) -> Diagnostic {
    let good = &bytes[..e.valid_up_to()];
    let line = good.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    // Columns count characters, as editors do; the good part is valid UTF-8.
    let column = std::str::from_utf8(&good[line_start..]).map_or(0, |t| t.chars().count()) + 1;
    let pos = super::diagnostic::Pos { line: line as u32, column: column as u32 };
    Diagnostic::at(display, pos, "", format!("not valid UTF-8 (first bad byte at offset {})", e.valid_up_to()))
}

fn location_of(err: &serde_saphyr::Error) -> Location {
    err.location().unwrap_or(Location::UNKNOWN)
}

/// One-line message of a parser error, in our words where the parser speaks to programmers,
/// and without the location it also carries (we print that in front).
fn message_of(err: &serde_saphyr::Error) -> String {
    let s = err.to_string();
    let mut first = s.lines().next().unwrap_or_default().trim().to_string();
    if let Some(i) = first.find(" at line ") {
        first.truncate(i);
    }
    if first.starts_with("duplicate mapping key") {
        let key = first.split(':').nth(1).and_then(|k| k.split(',').next()).unwrap_or("").trim().to_string();
        return format!("duplicate key `{key}` in one mapping");
    }
    if first.starts_with("multiple YAML documents") {
        return "more than one YAML document (`---`) in one file; put each in its own file".to_string();
    }
    if let Some(detail) = first.strip_prefix("budget breached:") {
        return format!(
            "document too large, too deeply nested, or too many aliases (parser budget exceeded: {})",
            detail.trim()
        );
    }
    first
}

/// The located tree of `text`, or `None` when it does not even parse as YAML.
pub fn tree(text: &str) -> Option<Spanned<Node>> {
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options(text.len())).ok()
}

/// Parses a piece of a file (a chunk of a records file) as a `T` with the same protections as
/// a whole file: duplicate keys refused, aliases and nesting within the budget. `None` on any
/// problem; the caller then parses the whole file, which reports it with its location.
pub fn parse_piece<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_saphyr::from_str_with_options::<T>(text, options(text.len())).ok()
}

/// Parses `text` as a `T`; on failure returns every problem found, located.
pub fn parse<T: DeserializeOwned>(text: &str, display: &str, kind: DocKind) -> Result<T, Vec<Diagnostic>> {
    match serde_saphyr::from_str_with_options::<T>(text, options(text.len())) {
        Ok(v) => Ok(v),
        Err(typed_err) => Err(explain(text, display, kind, &typed_err)),
    }
}

/// The slow path: locate every schema violation; fall back to the parser's own error.
fn explain(text: &str, display: &str, kind: DocKind, typed_err: &serde_saphyr::Error) -> Vec<Diagnostic> {
    let fallback = || vec![Diagnostic::at(display, location_of(typed_err), "", message_of(typed_err))];
    let tree = match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options(text.len())) {
        Ok(t) => t,
        // Syntax errors, duplicate keys and budget breaches: the parser says it best.
        Err(e) => return vec![Diagnostic::at(display, location_of(&e), "", message_of(&e))],
    };
    let Some(validator) = kind.validator() else {
        return fallback();
    };
    let instance = tree.value.to_json();
    let schema = kind.schema();
    let mut out: Vec<Diagnostic> = validator
        .iter_errors(&instance)
        .flat_map(|e| super::schema_errors::problems(&e, &schema))
        .map(|p| Diagnostic::at(display, tree.locate(&p.pointer), pointer_to_path(&p.pointer), p.message))
        .collect();
    if out.is_empty() {
        out = fallback();
    }
    out.sort();
    out.dedup();
    out
}

/// `/records/3/value` → `records[3].value`
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// A YAML node with the location of each child, for locating schema violations.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(String, Spanned<Node>)>),
}

impl Node {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Uint(u) => Value::from(*u),
            Node::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.value.to_json())).collect()),
        }
    }
}

trait Locate {
    fn locate(&self, pointer: &str) -> Location;
}

impl Locate for Spanned<Node> {
    /// The location of the deepest node on `pointer` that exists.
    fn locate(&self, pointer: &str) -> Location {
        let mut here = self;
        for seg in pointer.split('/').skip(1) {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            let next = match &here.value {
                Node::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                Node::Map(entries) => entries.iter().find(|(k, _)| *k == seg).map(|(_, v)| v),
                _ => None,
            };
            match next {
                Some(n) => here = n,
                None => break,
            }
        }
        here.referenced
    }
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeyString>()? {
            entries.push((key.0, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key written as any scalar, kept as its text (JSON objects only have string keys).
struct KeyString(String);

impl<'de> de::Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyString, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyString, E> {
                Ok(KeyString("null".to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(pointer_to_path("/records/3/value"), "records[3].value");
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/targets/a~1b"), "targets.a/b");
    }
}
