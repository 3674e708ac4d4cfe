//! Record types and record data, parsed from their presentation form (the text a zone file or
//! a records file holds) into typed values, and written back the same way.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::{Name, NameError};

/// The longest TXT value we accept, in octets. Real TXT records (SPF, DKIM, verification
/// tokens) stay well below this; anything larger is almost certainly a mistake or an attack.
pub const MAX_TXT_OCTETS: usize = 4096;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    NS,
    MX,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "CAA")]
    Caa,
}

impl RecordType {
    pub const ALL: [RecordType; 8] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::NS,
        RecordType::MX,
        RecordType::Txt,
        RecordType::Srv,
        RecordType::Caa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::NS => "NS",
            RecordType::MX => "MX",
            RecordType::Txt => "TXT",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
        }
    }

    pub fn parse(s: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One value of a record set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Ns(Name),
    Mx {
        preference: u16,
        exchange: Name,
    },
    /// The text as the user means it; split into 255-octet strings only when written.
    Txt(Box<str>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// Boxed: rare, and two strings would double the size of every other value.
    Caa(Box<Caa>),
}

/// A CAA record's value (RFC 8659).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Caa {
    pub flags: u8,
    pub tag: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RDataError {
    #[error("`{0}` is not an IPv4 address")]
    BadIpv4(String),
    #[error("`{0}` is not an IPv6 address")]
    BadIpv6(String),
    #[error("`{0}` must be a fully qualified name ending in `.` (write `{0}.` if that is what you mean)")]
    NotAbsolute(String),
    #[error("`{value}`: {source}")]
    BadName { value: String, source: NameError },
    #[error("`{0}` should be `{1}`")]
    Shape(String, &'static str),
    #[error(
        "value contains a control or invisible formatting character (newline, tab, NUL, bidi override…); these cannot be written or reviewed safely"
    )]
    ControlChar,
    #[error("TXT value is {0} octets long; the limit is {MAX_TXT_OCTETS}")]
    TxtTooLong(usize),
    #[error("CAA tag `{0}` must be letters and digits only")]
    CaaTag(String),
}

fn absolute_name(s: &str) -> Result<Name, RDataError> {
    if !s.ends_with('.') {
        return Err(RDataError::NotAbsolute(s.to_string()));
    }
    Name::parse(s).map_err(|source| RDataError::BadName { value: s.to_string(), source })
}

fn number<T: std::str::FromStr>(part: Option<&str>, whole: &str, shape: &'static str) -> Result<T, RDataError> {
    part.and_then(|p| p.parse().ok()).ok_or_else(|| RDataError::Shape(whole.to_string(), shape))
}

/// Strips one pair of surrounding double quotes and undoes `\"` and `\\` escapes.
/// True when `s` is one quoted string (no unescaped quote inside) or one token (no space, no
/// quote).
fn one_caa_value(s: &str) -> bool {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => {
            let mut escaped = false;
            for c in inner.chars() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => return false,
                    _ => {}
                }
            }
            !escaped
        }
        None => !s.contains(|c: char| c.is_whitespace() || c == '"'),
    }
}

fn unquote(s: &str) -> String {
    let inner = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(s);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Zero-width and bidirectional formatting characters: a value holding them reads
/// differently to a reviewer than it is ("Trojan Source"), so we refuse them.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn check_text(s: &str) -> Result<(), RDataError> {
    if s.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return Err(RDataError::ControlChar);
    }
    if s.len() > MAX_TXT_OCTETS {
        return Err(RDataError::TxtTooLong(s.len()));
    }
    Ok(())
}

impl RData {
    pub fn record_type(&self) -> RecordType {
        match self {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::Aaaa,
            RData::Cname(_) => RecordType::Cname,
            RData::Ns(_) => RecordType::NS,
            RData::Mx { .. } => RecordType::MX,
            RData::Txt(_) => RecordType::Txt,
            RData::Srv { .. } => RecordType::Srv,
            RData::Caa(_) => RecordType::Caa,
        }
    }

    /// Parses a value as a records file writes it. Names in values must be absolute
    /// (end in `.`), so that a reviewer never has to guess which zone they are relative to.
    /// TXT values are the text itself, without zone-file quoting.
    pub fn parse(rtype: RecordType, value: &str) -> Result<RData, RDataError> {
        let value = value.trim();
        let mut parts = value.split_ascii_whitespace();
        Ok(match rtype {
            RecordType::A => RData::A(value.parse().map_err(|_| RDataError::BadIpv4(value.to_string()))?),
            RecordType::Aaaa => RData::Aaaa(value.parse().map_err(|_| RDataError::BadIpv6(value.to_string()))?),
            RecordType::Cname => RData::Cname(absolute_name(value)?),
            RecordType::NS => RData::Ns(absolute_name(value)?),
            RecordType::MX => {
                const SHAPE: &str = "PREFERENCE EXCHANGE., e.g. `10 mail.example.org.`";
                let preference = number(parts.next(), value, SHAPE)?;
                let exchange = absolute_name(parts.next().ok_or(RDataError::Shape(value.to_string(), SHAPE))?)?;
                if parts.next().is_some() {
                    return Err(RDataError::Shape(value.to_string(), SHAPE));
                }
                RData::Mx { preference, exchange }
            }
            RecordType::Txt => {
                check_text(value)?;
                RData::Txt(value.into())
            }
            RecordType::Srv => {
                const SHAPE: &str = "PRIORITY WEIGHT PORT TARGET., e.g. `10 5 443 host.example.org.`";
                let priority = number(parts.next(), value, SHAPE)?;
                let weight = number(parts.next(), value, SHAPE)?;
                let port = number(parts.next(), value, SHAPE)?;
                let target = absolute_name(parts.next().ok_or(RDataError::Shape(value.to_string(), SHAPE))?)?;
                if parts.next().is_some() {
                    return Err(RDataError::Shape(value.to_string(), SHAPE));
                }
                RData::Srv { priority, weight, port, target }
            }
            RecordType::Caa => {
                const SHAPE: &str = "FLAGS TAG VALUE, e.g. `0 issue \"letsencrypt.org\"`";
                let flags = number(parts.next(), value, SHAPE)?;
                let tag = parts.next().ok_or(RDataError::Shape(value.to_string(), SHAPE))?.to_string();
                if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(RDataError::CaaTag(tag));
                }
                // The value is the rest of the line after the flags and the tag, quoted or not.
                let rest = value
                    .split_once(char::is_whitespace)
                    .map(|(_, r)| r.trim_start())
                    .and_then(|r| r.split_once(char::is_whitespace))
                    .map(|(_, r)| r.trim())
                    .unwrap_or_default();
                // RFC 8659 §4.1.1: the value is one quoted string or one contiguous token. So
                // `0 is suer "ca.test"` is refused, not read as tag `is`.
                if rest.is_empty() || !one_caa_value(rest) {
                    return Err(RDataError::Shape(value.to_string(), SHAPE));
                }
                let value = unquote(rest);
                check_text(&value)?;
                RData::Caa(Box::new(Caa { flags, tag: tag.to_ascii_lowercase(), value }))
            }
        })
    }

    /// The value as a records file writes it; `RData::parse` reads it back unchanged.
    pub fn to_value(&self) -> String {
        match self {
            RData::Txt(t) => t.to_string(),
            other => other.to_presentation(),
        }
    }

    /// The RDATA in RFC 1035 presentation form, safe to write into a zone file: names are
    /// absolute, strings are quoted and escaped, long TXT is split into 255-octet strings.
    pub fn to_presentation(&self) -> String {
        self.to_string()
    }
}

/// In JSON output a value is its records-file form, so machines and people read the same text.
impl serde::Serialize for RData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_value())
    }
}

/// Presentation form (see `to_presentation`), written without intermediate strings because
/// zone files with many records are rendered through it.
impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(ip) => write!(f, "{ip}"),
            RData::Aaaa(ip) => write!(f, "{ip}"),
            RData::Cname(n) | RData::Ns(n) => write!(f, "{n}."),
            RData::Mx { preference, exchange } => write!(f, "{preference} {exchange}."),
            RData::Txt(t) => write_txt_strings(f, t),
            RData::Srv { priority, weight, port, target } => write!(f, "{priority} {weight} {port} {target}."),
            RData::Caa(caa) => {
                write!(f, "{} {} ", caa.flags, caa.tag)?;
                write_quoted(f, &caa.value)
            }
        }
    }
}

/// Quotes one character-string for a zone file: `"` and `\\` escaped, bytes outside printable
/// ASCII written as `\DDD`, so nothing in the value can end the string or the line.
fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                f.write_char('\\')?;
                f.write_char(b as char)?;
            }
            0x20..=0x7e => f.write_char(b as char)?,
            _ => write!(f, "\\{b:03}")?,
        }
    }
    f.write_char('"')
}

/// Splits a TXT value into character-strings of at most 255 octets (RFC 1035 §3.3.14),
/// never inside a UTF-8 sequence, each quoted.
fn write_txt_strings(f: &mut impl fmt::Write, t: &str) -> fmt::Result {
    if t.is_empty() {
        return f.write_str("\"\"");
    }
    let mut start = 0;
    while start < t.len() {
        let mut end = (start + 255).min(t.len());
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        if start > 0 {
            f.write_char(' ')?;
        }
        write_quoted(f, &t[start..end])?;
        start = end;
    }
    Ok(())
}

/// Reads TXT presentation (one or more quoted strings, with `\"`, `\\` and `\DDD` escapes)
/// back into the text, the inverse of `txt_strings`.
pub fn parse_txt_presentation(s: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let mut it = s.trim().bytes().peekable();
    let mut any = false;
    while let Some(b) = it.next() {
        match b {
            b' ' | b'\t' => continue,
            b'"' => {
                any = true;
                loop {
                    match it.next()? {
                        b'"' => break,
                        b'\\' => {
                            let n = it.next()?;
                            if n.is_ascii_digit() {
                                let d2 = it.next()?;
                                let d3 = it.next()?;
                                let v = (n - b'0') as u32 * 100
                                    + (d2.wrapping_sub(b'0')) as u32 * 10
                                    + (d3.wrapping_sub(b'0')) as u32;
                                bytes.push(u8::try_from(v).ok()?);
                            } else {
                                bytes.push(n);
                            }
                        }
                        other => bytes.push(other),
                    }
                }
            }
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// Reads one value in zone-file presentation form (as `to_presentation` writes it).
pub fn parse_presentation(rtype: RecordType, s: &str) -> Result<RData, RDataError> {
    match rtype {
        RecordType::Txt => {
            let text =
                parse_txt_presentation(s).ok_or(RDataError::Shape(s.to_string(), "one or more quoted strings"))?;
            check_text(&text)?;
            Ok(RData::Txt(text.into()))
        }
        RecordType::Caa => {
            // the quoted value may hold \DDD escapes; decode them through the TXT reader
            // fields are separated by any white space (a tab is common in zone files)
            let mut parts = s.trim().splitn(3, char::is_whitespace);
            let flags = parts.next().unwrap_or_default();
            let tag = parts.next().unwrap_or_default().trim();
            let rest = parts.next().unwrap_or_default().trim_start();
            let value = parse_txt_presentation(rest).unwrap_or_else(|| rest.to_string());
            let parsed = RData::parse(RecordType::Caa, &format!("{flags} {tag} x"))?;
            check_text(&value)?;
            match parsed {
                RData::Caa(mut caa) => {
                    caa.value = value;
                    Ok(RData::Caa(caa))
                }
                _ => unreachable!("parse of a CAA type returns a CAA value"),
            }
        }
        other => RData::parse(other, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_both_forms() {
        let cases = [
            (RecordType::A, "192.0.2.1"),
            (RecordType::Aaaa, "2001:db8::1"),
            (RecordType::Cname, "host.example.org."),
            (RecordType::MX, "10 mail.example.org."),
            (RecordType::Srv, "10 5 443 host.example.org."),
            (RecordType::Caa, "0 issue \"letsencrypt.org\""),
            (RecordType::Caa, "128 iodef \"mailto:a@b.example\""),
            (RecordType::Txt, "v=spf1 -all; \"quoted\" \\ back ü"),
        ];
        for (t, v) in cases {
            let r = RData::parse(t, v).unwrap();
            assert_eq!(RData::parse(t, &r.to_value()).unwrap(), r, "{v}");
            assert_eq!(parse_presentation(t, &r.to_presentation()).unwrap(), r, "{v}");
        }
    }

    #[test]
    fn long_txt_is_split_and_read_back() {
        let long = "x".repeat(600);
        let p = RData::Txt(long.clone().into()).to_presentation();
        assert_eq!(p.matches('"').count(), 6);
        assert_eq!(parse_txt_presentation(&p).unwrap(), long);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(RData::parse(RecordType::A, "300.1.1.1"), Err(RDataError::BadIpv4(_))));
        assert!(matches!(RData::parse(RecordType::Cname, "host.example"), Err(RDataError::NotAbsolute(_))));
        assert!(matches!(RData::parse(RecordType::Txt, "a\nb"), Err(RDataError::ControlChar)));
        assert!(matches!(RData::parse(RecordType::Txt, &"x".repeat(5000)), Err(RDataError::TxtTooLong(5000))));
        assert!(matches!(RData::parse(RecordType::MX, "mail.example."), Err(RDataError::Shape(..))));
        assert!(matches!(RData::parse(RecordType::Caa, "0 is-sue \"x\""), Err(RDataError::CaaTag(_))));
        // RFC 8659: flags 0-255, a tag of letters and digits, one quoted string or one token
        for bad in [
            "0 is suer \"ca.test\"",
            "0 issue \"a\" \"b\"",
            "0 issue a b",
            "256 issue \"x\"",
            "0 issue \"x",
            "0 issue x\"y",
        ] {
            assert!(RData::parse(RecordType::Caa, bad).is_err(), "{bad}");
        }
        for good in ["0 issue letsencrypt.org", "0 issue \"a \\\" b\"", "0 issue \";\""] {
            assert!(RData::parse(RecordType::Caa, good).is_ok(), "{good}");
        }
        // a zone file may separate the fields with tabs
        let tabbed = parse_presentation(RecordType::Caa, "0\tissue\t\"ca.example\"").unwrap();
        assert!(matches!(tabbed, RData::Caa(c) if c.tag == "issue" && c.value == "ca.example"));
        // a numeric tag must not be found inside the flags
        let caa = RData::parse(RecordType::Caa, "1 1 \"x\"").unwrap();
        assert!(matches!(caa, RData::Caa(c) if c.flags == 1 && c.tag == "1" && c.value == "x"));
    }
}
