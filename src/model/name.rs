//! Domain names as zonekeeper handles them: absolute, lower-case, validated once at the edge.
//! A `Name` that exists is safe to write into a zone file or a hosts line.

use std::fmt;

/// Why a string is not an acceptable DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {0} octets long; the limit is 253")]
    TooLong(usize),
    #[error("label `{0}` is {1} octets long; the limit is 63")]
    LabelTooLong(String, usize),
    #[error("name has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("character {0:?} is not allowed in a host name (letters, digits, `-` and `_` only)")]
    BadChar(char),
    #[error("label `{0}` starts or ends with `-`")]
    Hyphen(String),
    #[error("`*` is only allowed as the whole leftmost label")]
    Wildcard,
}

/// An absolute domain name: lower-case ASCII, no trailing dot stored, labels of letters,
/// digits, `-` and `_`, a `*` only as the whole leftmost label. The root is not a `Name`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Box<str>);

impl Name {
    /// Parses an absolute name; a single trailing dot is accepted and dropped.
    pub fn parse(input: &str) -> Result<Name, NameError> {
        let s = input.strip_suffix('.').unwrap_or(input);
        Name::check(s)?;
        Ok(Name(s.to_ascii_lowercase().into_boxed_str()))
    }

    fn check(s: &str) -> Result<(), NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 253 {
            return Err(NameError::TooLong(s.len()));
        }
        for (i, label) in s.split('.').enumerate() {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > 63 {
                return Err(NameError::LabelTooLong(label.to_string(), label.len()));
            }
            if label == "*" {
                if i != 0 {
                    return Err(NameError::Wildcard);
                }
                continue;
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                let c = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')).unwrap_or('?');
                return Err(if c == '*' { NameError::Wildcard } else { NameError::BadChar(c) });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::Hyphen(label.to_string()));
            }
        }
        Ok(())
    }

    /// Resolves a name as written in a records file: `@` is the zone apex, a name ending in
    /// `.` is absolute, anything else is relative to `zone`.
    pub fn relative_to(input: &str, zone: &Name) -> Result<Name, NameError> {
        if input == "@" {
            return Ok(zone.clone());
        }
        if input.ends_with('.') {
            return Name::parse(input);
        }
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        let mut s = String::with_capacity(input.len() + 1 + zone.0.len());
        s.push_str(input);
        s.push('.');
        s.push_str(&zone.0);
        Name::check(&s)?;
        s.make_ascii_lowercase();
        Ok(Name(s.into_boxed_str()))
    }

    /// The root, `.`: valid only as the target of a value (a null MX `0 .`, an SRV `0 0 0 .`
    /// that says "no service here"), never as an owner; `parse` does not produce it.
    pub fn root() -> Name {
        Name("".into())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the target name of a value: an absolute name, or `.` for the root.
    pub fn parse_target(input: &str) -> Result<Name, NameError> {
        if input == "." { Ok(Name::root()) } else { Name::parse(input) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `zone` or lies below it.
    pub fn is_in(&self, zone: &Name) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&*zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The name relative to `zone` as a zone file or records file writes it (`@` for the apex).
    pub fn relative(&self, zone: &Name) -> String {
        if self == zone {
            "@".to_string()
        } else if self.is_in(zone) {
            self.0[..self.0.len() - zone.0.len() - 1].to_string()
        } else {
            format!("{}.", self.0)
        }
    }

    /// Writes what `relative` returns, without allocating.
    pub fn write_relative(&self, zone: &Name, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        if self == zone {
            out.write_char('@')
        } else if self.is_in(zone) {
            out.write_str(&self.0[..self.0.len() - zone.0.len() - 1])
        } else {
            out.write_str(&self.0)?;
            out.write_char('.')
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The absolute form with its trailing dot, as zone files write it.
    pub fn fqdn(&self) -> String {
        format!("{}.", self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.0)
    }
}

/// In JSON output a name is its text, without the final dot.
impl schemars::JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "A domain name, lower-case, without the final dot."})
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Name::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{}` is not a valid name: {e}", text.escape_debug())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_lowercases() {
        assert_eq!(Name::parse("WWW.Example.org.").unwrap().as_str(), "www.example.org");
        assert_eq!(Name::parse("_sip._tcp.example.org").unwrap().as_str(), "_sip._tcp.example.org");
        assert!(Name::parse("*.apps.example.org").unwrap().is_wildcard());
    }

    #[test]
    fn rejects_what_would_break_a_zone_file() {
        assert_eq!(Name::parse("a b.example"), Err(NameError::BadChar(' ')));
        assert_eq!(Name::parse("a\nb.example"), Err(NameError::BadChar('\n')));
        assert_eq!(Name::parse("a\0.example"), Err(NameError::BadChar('\0')));
        assert_eq!(Name::parse("../../etc"), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse("a/b.example"), Err(NameError::BadChar('/')));
        assert_eq!(Name::parse("bücher.example"), Err(NameError::BadChar('ü')));
        assert_eq!(Name::parse("a.*.example"), Err(NameError::Wildcard));
        assert_eq!(Name::parse("-a.example"), Err(NameError::Hyphen("-a".into())));
        assert!(matches!(Name::parse(&"a".repeat(64)), Err(NameError::LabelTooLong(_, 64))));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(Name::parse(&long), Err(NameError::TooLong(259))));
    }

    #[test]
    fn relative_names_resolve_against_the_zone() {
        let zone = Name::parse("home.example").unwrap();
        assert_eq!(Name::relative_to("@", &zone).unwrap(), zone);
        assert_eq!(Name::relative_to("www", &zone).unwrap().as_str(), "www.home.example");
        assert_eq!(Name::relative_to("other.org.", &zone).unwrap().as_str(), "other.org");
        let www = Name::parse("www.home.example").unwrap();
        assert!(www.is_in(&zone));
        assert!(!Name::parse("xhome.example").unwrap().is_in(&zone));
        assert_eq!(www.relative(&zone), "www");
        assert_eq!(zone.relative(&zone), "@");
    }
}
