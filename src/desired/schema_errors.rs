//! JSON Schema violations in our words: each names the field's own path, says what is allowed
//! there, and never echoes a value of the document (a value may be a secret put in the wrong
//! place). jsonschema's own messages print the whole instance, and for a tagged enum (a
//! target, `policy`) only say "not valid under any of the schemas listed in 'oneOf'".

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError};
use serde_json::Value;

/// One violation: the JSON pointer of the field it is about, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

/// The problems `error` stands for, against `root` (the whole schema, for field lists).
pub fn problems(error: &ValidationError<'_>, root: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    explain(error, root, &mut out);
    out
}

fn at(pointer: &str, message: impl Into<String>) -> Problem {
    Problem { pointer: pointer.to_string(), message: message.into() }
}

fn explain(e: &ValidationError<'_>, root: &Value, out: &mut Vec<Problem>) {
    let here = e.instance_path().as_str().to_string();
    match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            one_of(&here, context, root, out)
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let allowed = allowed_fields(e.schema_path().as_str(), root);
            for key in unexpected {
                let mut message = format!("unknown field `{key}`");
                match suggest(key, &allowed) {
                    Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
                    None if !allowed.is_empty() => {
                        message.push_str(&format!("; allowed here: {}", quoted(&allowed)));
                    }
                    None => {}
                }
                if matches!(key.as_str(), "token" | "password" | "secret" | "apiKey") {
                    message.push_str(
                        ". A secret never goes in the repository: the operator's credentials file binds it (see README, Credentials)",
                    );
                }
                out.push(at(&format!("{here}/{}", key.replace('~', "~0").replace('/', "~1")), message));
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(at(&here, format!("missing required field `{name}`")))
        }
        kind => out.push(at(&here, describe(kind))),
    }
}

/// A value that matches none of the alternatives: a list of constants (an enum), a tagged
/// union (the branch whose tag matches explains itself), or else the closest branch.
fn one_of(here: &str, context: &[Vec<ValidationError<'static>>], root: &Value, out: &mut Vec<Problem>) {
    let constant_at = |errors: &[ValidationError<'_>], path: &str| -> Option<String> {
        errors.iter().find_map(|e| match e.kind() {
            ValidationErrorKind::Constant { expected_value } if e.instance_path().as_str() == path => {
                Some(plain(expected_value))
            }
            _ => None,
        })
    };
    // An enum of strings: every branch is one constant.
    let consts: Vec<String> = context.iter().filter_map(|b| constant_at(b, here)).collect();
    if !context.is_empty() && consts.len() == context.len() {
        out.push(at(here, format!("must be one of {}", quoted(&consts))));
        return;
    }
    // A tagged union: the branches whose tag did not match are out.
    let tag = format!("{here}/type");
    let tags: Vec<String> = context.iter().filter_map(|b| constant_at(b, &tag)).collect();
    let matching: Vec<&Vec<ValidationError<'static>>> =
        context.iter().filter(|b| constant_at(b, &tag).is_none()).collect();
    if matching.is_empty() && !tags.is_empty() {
        out.push(at(&tag, format!("must be one of {}", quoted(&tags))));
        return;
    }
    let missing_tag = |b: &&Vec<ValidationError<'static>>| {
        b.iter().any(|e| {
            matches!(e.kind(), ValidationErrorKind::Required { property } if property.as_str() == Some("type"))
                && e.instance_path().as_str() == here
        })
    };
    if !matching.is_empty() && matching.iter().all(missing_tag) {
        out.push(at(here, "missing required field `type`"));
        return;
    }
    match matching.iter().min_by_key(|b| b.len()) {
        Some(best) => best.iter().for_each(|e| explain(e, root, out)),
        None => out.push(at(here, "does not have any of the allowed shapes")),
    }
}

fn describe(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let names: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![type_name(*t)],
                TypeKind::Multiple(ts) => ts.iter().map(type_name).collect(),
            };
            // An optional field allows null too; saying so only distracts from the type wanted.
            let names: Vec<&str> = match names.iter().filter(|n| !n.starts_with("empty")).count() {
                0 => names,
                _ => names.into_iter().filter(|n| !n.starts_with("empty")).collect(),
            };
            format!("must be {}", names.join(" or "))
        }
        ValidationErrorKind::Constant { expected_value } => format!("must be `{}`", plain(expected_value)),
        ValidationErrorKind::Enum { options } => {
            let all: Vec<String> = options.as_array().map(|a| a.iter().map(plain).collect()).unwrap_or_default();
            format!("must be one of {}", quoted(&all))
        }
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be above {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be below {limit}"),
        ValidationErrorKind::MinLength { limit } => format!("must be at least {limit} character(s) long"),
        ValidationErrorKind::MaxLength { limit } => format!("must be at most {limit} character(s) long"),
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} item(s)"),
        ValidationErrorKind::MinProperties { limit } => format!("must have at least {limit} field(s)"),
        ValidationErrorKind::MaxProperties { limit } => format!("must have at most {limit} field(s)"),
        ValidationErrorKind::UniqueItems => "must not list the same item twice".to_string(),
        ValidationErrorKind::Pattern { pattern } => format!("does not have the expected form (pattern `{pattern}`)"),
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        other => format!("is not valid here (schema keyword `{}`)", other.keyword()),
    }
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "empty (null)",
        JsonType::Number => "a number",
        JsonType::Object => "a mapping",
        JsonType::String => "a string",
    }
}

/// A schema constant as the user would type it.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn quoted(items: &[String]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// The fields the object at `schema_path` (ending in `/additionalProperties`) allows, with
/// `$ref`s on the way resolved in `root`.
fn allowed_fields(schema_path: &str, root: &Value) -> Vec<String> {
    let Some(parent) = schema_path.strip_suffix("/additionalProperties") else { return Vec::new() };
    let mut node = root;
    for seg in parent.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg == "$ref" {
            match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(target) => match root.pointer(target) {
                    Some(n) => node = n,
                    None => return Vec::new(),
                },
                None => return Vec::new(),
            }
            continue;
        }
        let next = match node {
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            other => other.get(&seg),
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    node.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

/// The allowed field `key` most likely meant: the same but for case, `_`/`-`, or a typo or two.
fn suggest(key: &str, allowed: &[String]) -> Option<String> {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    if let Some(same) = allowed.iter().find(|a| fold(a) == fold(key)) {
        return Some(same.clone());
    }
    allowed
        .iter()
        .map(|a| (distance(&fold(a), &fold(key)), a))
        .filter(|(d, a)| *d <= 2 && *d < a.len() / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.clone())
}

/// Levenshtein distance, for short field names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_fold_case_and_separators_and_forgive_a_typo() {
        let allowed: Vec<String> =
            ["tokenEnv", "tokenFile", "url", "rateLimit"].iter().map(|s| s.to_string()).collect();
        assert_eq!(suggest("tokenenv", &allowed).as_deref(), Some("tokenEnv"));
        assert_eq!(suggest("token_file", &allowed).as_deref(), Some("tokenFile"));
        assert_eq!(suggest("ratelimt", &allowed).as_deref(), Some("rateLimit"));
        assert_eq!(suggest("uri", &allowed).as_deref(), Some("url"));
        assert_eq!(suggest("colour", &allowed), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
