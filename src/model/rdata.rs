//! Record types and record data, parsed from their presentation form (the text a zone file or
//! a records file holds) into typed values, and written back the same way.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::{Name, NameError};

/// The longest TXT value we accept, in octets. Real TXT records (SPF, DKIM, verification
/// tokens) stay well below this; anything larger is almost certainly a mistake or an attack.
pub const MAX_TXT_OCTETS: usize = 4096;

/// A record type. The ones zonekeeper models by name, and any other by its number
/// (`TYPE65534`, RFC 3597), whose values are kept in the generic `\# length hex` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    NS,
    MX,
    Txt,
    Srv,
    Caa,
    Ptr,
    Sshfp,
    Tlsa,
    Https,
    Svcb,
    Naptr,
    Ds,
    /// A type zonekeeper does not model, by its number (never one of the above's).
    Unknown(u16),
}

impl RecordType {
    pub const ALL: [RecordType; 15] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::NS,
        RecordType::MX,
        RecordType::Txt,
        RecordType::Srv,
        RecordType::Caa,
        RecordType::Ptr,
        RecordType::Sshfp,
        RecordType::Tlsa,
        RecordType::Https,
        RecordType::Svcb,
        RecordType::Naptr,
        RecordType::Ds,
    ];

    /// The mnemonic of a type zonekeeper models by name (`Display` writes `TYPEn` for any
    /// other, which has none: a caller wanting text for any type uses `Display`).
    fn mnemonic(self) -> &'static str {
        match self {
            RecordType::Unknown(_) => "TYPE",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::NS => "NS",
            RecordType::MX => "MX",
            RecordType::Txt => "TXT",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
            RecordType::Ptr => "PTR",
            RecordType::Sshfp => "SSHFP",
            RecordType::Tlsa => "TLSA",
            RecordType::Https => "HTTPS",
            RecordType::Svcb => "SVCB",
            RecordType::Naptr => "NAPTR",
            RecordType::Ds => "DS",
        }
    }

    /// The type's number (IANA).
    pub fn number(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::NS => 2,
            RecordType::Cname => 5,
            RecordType::Ptr => 12,
            RecordType::MX => 15,
            RecordType::Txt => 16,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Naptr => 35,
            RecordType::Ds => 43,
            RecordType::Sshfp => 44,
            RecordType::Tlsa => 52,
            RecordType::Svcb => 64,
            RecordType::Https => 65,
            RecordType::Caa => 257,
            RecordType::Unknown(n) => n,
        }
    }

    /// The type of a number: a modelled one by name, any other as `Unknown`.
    pub fn from_number(n: u16) -> RecordType {
        RecordType::ALL.into_iter().find(|t| t.number() == n).unwrap_or(RecordType::Unknown(n))
    }

    /// A mnemonic zonekeeper models (any case), or `TYPEn` (RFC 3597) for any type number.
    pub fn parse(s: &str) -> Option<RecordType> {
        if let Some(t) = RecordType::ALL.into_iter().find(|t| t.mnemonic().eq_ignore_ascii_case(s)) {
            return Some(t);
        }
        let digits = s.get(..4).filter(|p| p.eq_ignore_ascii_case("TYPE")).map(|_| &s[4..])?;
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u16>().ok().map(RecordType::from_number)
    }

    /// The types whose values zonekeeper keeps in their canonical presentation form, parsed
    /// and checked against their RFC grammar by NLnet Labs' `domain` (see `RData::Other`).
    pub fn is_structured_text(self) -> bool {
        matches!(
            self,
            RecordType::Sshfp
                | RecordType::Tlsa
                | RecordType::Https
                | RecordType::Svcb
                | RecordType::Naptr
                | RecordType::Ds
                | RecordType::Unknown(_)
        )
    }
}

/// In files and JSON a type is its mnemonic: exact upper case (`AAAA`), or `TYPEn`.
impl serde::Serialize for RecordType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RecordType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RecordType, D::Error> {
        struct Mnemonic;
        impl serde::de::Visitor<'_> for Mnemonic {
            type Value = RecordType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record type (`A`, `AAAA`, …, or `TYPEnnn`)")
            }
            // A visitor, not a `String`: the type of every record in a large file is read here.
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RecordType, E> {
                if let Some(t) = RecordType::ALL.into_iter().find(|t| t.mnemonic() == s) {
                    return Ok(t);
                }
                match RecordType::parse(s) {
                    Some(t) if s.starts_with("TYPE") => Ok(t),
                    _ => Err(E::custom(format!(
                        "unknown record type `{s}`: one of {}, or TYPEnnn (RFC 3597) for any other",
                        RecordType::ALL.iter().map(|t| t.mnemonic()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
        d.deserialize_str(Mnemonic)
    }
}

impl schemars::JsonSchema for RecordType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RecordType".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = RecordType::ALL.iter().map(|t| t.mnemonic()).collect();
        schemars::json_schema!({
            "anyOf": [
                {"type": "string", "enum": names},
                {"type": "string", "pattern": "^TYPE[0-9]{1,5}$", "description": "Any other type by its number (RFC 3597); its values in the generic form `\\# LENGTH HEX`."}
            ]
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordType::Unknown(n) => f.pad(&format!("TYPE{n}")),
            t => f.pad(t.mnemonic()),
        }
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
    /// A TXT value whose character-strings are not the ones `Txt` would write for their
    /// joined text (a DKIM key split by another tool, DNS-SD's `"txtvers=1" "path=/"`): kept
    /// exactly, since clients see each string. `RData::txt_strings` picks the form.
    TxtStrings(Box<[Box<str>]>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// Boxed: rare, and two strings would double the size of every other value.
    Caa(Box<Caa>),
    Ptr(Name),
    /// SSHFP, TLSA, HTTPS, SVCB, NAPTR, DS: the value in the canonical presentation form that
    /// `domain` prints after parsing it to the type's RFC grammar, so that two spellings of
    /// one value (hex case, parameter order) compare equal and a malformed one never loads.
    Other(RecordType, Box<str>),
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
    #[error("a TXT character-string is {0} octets long; the limit is 255 (RFC 1035)")]
    TxtStringTooLong(usize),
    #[error("`{value}` is not a valid {rtype} value: {reason}")]
    Grammar { rtype: RecordType, value: String, reason: String },
}

fn absolute_name(s: &str) -> Result<Name, RDataError> {
    if !s.ends_with('.') {
        return Err(RDataError::NotAbsolute(s.to_string()));
    }
    Name::parse(s).map_err(|source| RDataError::BadName { value: s.to_string(), source })
}

/// The target of an MX or SRV value: an absolute name, or `.` (a null MX, RFC 7505; an SRV
/// that says the service is not offered, RFC 2782).
fn target_name(s: &str) -> Result<Name, RDataError> {
    if s == "." { Ok(Name::root()) } else { absolute_name(s) }
}

/// Parses a value of a type kept as canonical text (`RecordType::is_structured_text`) with
/// `domain`'s zone-file scanner, as the one record of a one-line zone with no origin: a
/// relative name in the value is then an error, as everywhere in a records file.
pub fn scan_structured(rtype: RecordType, value: &str) -> Result<RData, RDataError> {
    let grammar = |reason: String| RDataError::Grammar { rtype, value: value.to_string(), reason };
    check_text(value)?;
    // A `;` outside quotes would start a comment and silently cut the value short. (No value
    // holds a line break: `check_text` refused it.)
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => return Err(grammar("`;` outside quotes would start a comment".into())),
            _ => {}
        }
    }
    let data = scan_one(rtype, value).map_err(grammar)?;
    Ok(RData::Other(rtype, writable_structured(rtype, &data).map_err(grammar)?))
}

/// Scans `value` as the one record of a one-line zone with no origin.
fn scan_one(rtype: RecordType, value: &str) -> Result<domain::zonefile::inplace::ScannedRecordData, String> {
    let line = format!(". 0 IN {rtype} {value}\n");
    let mut scanner = domain::zonefile::inplace::Zonefile::from(line.as_str());
    scanner.set_default_class(domain::base::iana::Class::IN);
    let data = match scanner.next_entry() {
        Ok(Some(domain::zonefile::inplace::Entry::Record(r))) => r.into_data(),
        Ok(_) => return Err("no value".into()),
        Err(e) => return Err(scan_reason(&e.to_string())),
    };
    if !matches!(scanner.next_entry(), Ok(None)) {
        return Err("more than one value".into());
    }
    Ok(data)
}

/// The canonical text of a structured value `domain` scanned, checked to be safe to write:
/// no control characters, and the text scans back to the same value. `domain` prints some
/// SVCB parameters (`alpn`, `dohpath`) byte for byte without escapes, so a `;`, a space, a
/// quote or a line break inside one would otherwise cut the value short, add a parameter, or
/// add records when the text is written into a zone file.
pub fn writable_structured(
    rtype: RecordType,
    data: &domain::zonefile::inplace::ScannedRecordData,
) -> Result<Box<str>, String> {
    let text = structured_text(data);
    check_text(&text).map_err(|e| format!("its text form {e}"))?;
    match scan_one(rtype, &text) {
        Ok(again) if again == *data => Ok(text.into()),
        _ => Err("its text form does not read back as the same value (a parameter holding `;`, a space, a quote or a byte outside printable ASCII); zonekeeper cannot write it safely".into()),
    }
}

/// The canonical one-line presentation form of a value `domain` scanned: what a structured
/// type's value is kept, compared and written as.
pub fn structured_text(data: &domain::zonefile::inplace::ScannedRecordData) -> String {
    use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
    data.display_zonefile(DisplayKind::Simple).to_string()
}

/// The line, column and message of a `domain` scanner error (`line:col: message`).
pub fn scanner_location(message: &str) -> Option<(usize, usize, &str)> {
    let mut parts = message.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.trim().parse().ok()?;
    Some((line, col, parts.next()?.trim()))
}

/// `domain`'s error text without its `line:col:` prefix, which is meaningless for one value.
fn scan_reason(message: &str) -> String {
    scanner_location(message).map_or_else(|| message.to_string(), |(_, _, rest)| rest.to_string())
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
            RData::Txt(_) | RData::TxtStrings(_) => RecordType::Txt,
            RData::Srv { .. } => RecordType::Srv,
            RData::Caa(_) => RecordType::Caa,
            RData::Ptr(_) => RecordType::Ptr,
            RData::Other(t, _) => *t,
        }
    }

    /// Parses a value as a records file writes it. Names in values must be absolute
    /// (end in `.`), so that a reviewer never has to guess which zone they are relative to.
    /// TXT values are the text itself, without zone-file quoting, spaces at either end kept.
    pub fn parse(rtype: RecordType, raw: &str) -> Result<RData, RDataError> {
        let value = raw.trim();
        let mut parts = value.split_ascii_whitespace();
        Ok(match rtype {
            RecordType::A => RData::A(value.parse().map_err(|_| RDataError::BadIpv4(value.to_string()))?),
            RecordType::Aaaa => RData::Aaaa(value.parse().map_err(|_| RDataError::BadIpv6(value.to_string()))?),
            RecordType::Cname => RData::Cname(absolute_name(value)?),
            RecordType::NS => RData::Ns(absolute_name(value)?),
            RecordType::MX => {
                const SHAPE: &str = "PREFERENCE EXCHANGE., e.g. `10 mail.example.org.`";
                let preference = number(parts.next(), value, SHAPE)?;
                let exchange = target_name(parts.next().ok_or(RDataError::Shape(value.to_string(), SHAPE))?)?;
                if parts.next().is_some() {
                    return Err(RDataError::Shape(value.to_string(), SHAPE));
                }
                RData::Mx { preference, exchange }
            }
            RecordType::Txt => {
                check_text(raw)?;
                RData::Txt(raw.into())
            }
            RecordType::Ptr => RData::Ptr(absolute_name(value)?),
            RecordType::Sshfp
            | RecordType::Tlsa
            | RecordType::Https
            | RecordType::Svcb
            | RecordType::Naptr
            | RecordType::Ds
            | RecordType::Unknown(_) => return scan_structured(rtype, value),
            RecordType::Srv => {
                const SHAPE: &str = "PRIORITY WEIGHT PORT TARGET., e.g. `10 5 443 host.example.org.`";
                let priority = number(parts.next(), value, SHAPE)?;
                let weight = number(parts.next(), value, SHAPE)?;
                let port = number(parts.next(), value, SHAPE)?;
                let target = target_name(parts.next().ok_or(RDataError::Shape(value.to_string(), SHAPE))?)?;
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

    /// A TXT value from its character-strings: `Txt` when they are the ones zonekeeper would
    /// write for their joined text (so one value has one form), else `TxtStrings`.
    pub fn txt_strings<S: AsRef<str>>(strings: &[S]) -> Result<RData, RDataError> {
        let mut total = 0;
        for s in strings {
            let s = s.as_ref();
            if s.len() > 255 {
                return Err(RDataError::TxtStringTooLong(s.len()));
            }
            check_text(s)?;
            total += s.len();
        }
        if total > MAX_TXT_OCTETS {
            return Err(RDataError::TxtTooLong(total));
        }
        if strings.is_empty() {
            return Err(RDataError::Shape(String::new(), "at least one character-string"));
        }
        let joined: String = strings.iter().map(|s| s.as_ref()).collect();
        if txt_strings(&joined).eq(strings.iter().map(|s| s.as_ref())) {
            Ok(RData::Txt(joined.into()))
        } else {
            Ok(RData::TxtStrings(strings.iter().map(|s| s.as_ref().into()).collect()))
        }
    }

    /// The value as a records file writes it; `RData::parse` reads it back unchanged (for
    /// `TxtStrings`, a records file gives the strings as a list in `strings:`).
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

/// In JSON output a value is one string (see the `Serialize` below).
impl schemars::JsonSchema for RData {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Value".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "One value as a records file writes it (TXT: the text; a TXT kept as several character-strings: each quoted, space-separated)."
        })
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
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => write!(f, "{n}."),
            RData::Mx { preference, exchange } => write!(f, "{preference} {exchange}."),
            RData::Txt(t) => write_txt_strings(f, t),
            RData::TxtStrings(strings) => {
                for (i, piece) in strings.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write_quoted(f, piece)?;
                }
                Ok(())
            }
            RData::Srv { priority, weight, port, target } => write!(f, "{priority} {weight} {port} {target}."),
            RData::Caa(caa) => {
                write!(f, "{} {} ", caa.flags, caa.tag)?;
                write_quoted(f, &caa.value)
            }
            RData::Other(_, text) => f.write_str(text),
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

/// The character-strings zonekeeper writes for a TXT text: at most 255 octets each (RFC 1035
/// §3.3.14), never split inside a UTF-8 sequence; one empty string for an empty text. A
/// zone file read back must hold exactly these, or it held something we cannot keep.
pub fn txt_strings(t: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut first = true;
    std::iter::from_fn(move || {
        if start >= t.len() && !(first && t.is_empty()) {
            return None;
        }
        first = false;
        let mut end = (start + 255).min(t.len());
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        let piece = &t[start..end];
        start = end;
        Some(piece)
    })
}

/// Writes `txt_strings`, each quoted, separated by a space.
fn write_txt_strings(f: &mut impl fmt::Write, t: &str) -> fmt::Result {
    for (i, piece) in txt_strings(t).enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        write_quoted(f, piece)?;
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

    #[test]
    fn structured_types_follow_their_grammar_and_compare_in_canonical_form() {
        let sshfp = RData::parse(RecordType::Sshfp, "1 1 123456789abcdef67890123456789abcdef67890").unwrap();
        let upper = RData::parse(RecordType::Sshfp, "1 1 123456789ABCDEF67890123456789ABCDEF67890").unwrap();
        assert_eq!(sshfp, upper, "hex case does not make another value");
        assert_eq!(RData::parse(RecordType::Sshfp, &sshfp.to_value()).unwrap(), sshfp);
        let https = RData::parse(RecordType::Https, "1 . alpn=h2,h3").unwrap();
        assert_eq!(https.to_value(), "1 . alpn=h2,h3");
        for (t, bad) in [
            (RecordType::Sshfp, "1 1 xyz"),
            (RecordType::Tlsa, "3 1"),
            (RecordType::Ds, "60485 5 1 ; 2BB1"),
            (RecordType::Svcb, "1 svc.example alpn=h2"),
            (RecordType::Naptr, "100 10 \"u\" \"E2U+sip\""),
            (RecordType::Https, "1 . alpn=h2\n2 . alpn=h3"),
            (RecordType::Https, "1 . alpn=\"h2\\010www 60 IN A 192.0.2.66\""),
            (RecordType::Https, "1 . alpn=\"h2;x\""),
            (RecordType::Https, "1 . alpn=\"h2 port=1\""),
        ] {
            assert!(RData::parse(t, bad).is_err(), "{t} {bad}");
        }
        assert!(matches!(RData::parse(RecordType::Ptr, "host.example"), Err(RDataError::NotAbsolute(_))));
        assert_eq!(RData::parse(RecordType::MX, "0 .").unwrap().to_value(), "0 .", "a null MX (RFC 7505)");
        assert!(RData::parse(RecordType::Cname, ".").is_err(), "the root is a target only for MX and SRV");
    }

    #[test]
    fn txt_keeps_its_spaces_and_splits_as_it_is_read_back() {
        assert_eq!(RData::parse(RecordType::Txt, "  padded  ").unwrap().to_value(), "  padded  ");
        assert_eq!(txt_strings("").collect::<Vec<_>>(), [""]);
        let long = format!("{}ü{}", "a".repeat(254), "b".repeat(10));
        let pieces: Vec<&str> = txt_strings(&long).collect();
        assert_eq!(pieces.iter().map(|p| p.len()).collect::<Vec<_>>(), [254, 12], "never inside a UTF-8 sequence");
    }

    #[test]
    fn any_other_type_goes_by_its_number() {
        let t = |s: &str| serde_json::from_value::<RecordType>(serde_json::json!(s));
        assert_eq!(t("AAAA").unwrap(), RecordType::Aaaa);
        assert_eq!(t("TYPE65534").unwrap(), RecordType::Unknown(65534));
        assert_eq!(t("TYPE1").unwrap(), RecordType::A, "a modelled type by its number is that type");
        for bad in ["aaaa", "TYPE", "TYPE65536", "TYPE1x", "HINFO", "type5"] {
            assert!(t(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_value(RecordType::Unknown(65534)).unwrap(), "TYPE65534");
        assert_eq!(RecordType::Unknown(65534).to_string(), "TYPE65534");
        let v = RData::parse(RecordType::Unknown(65534), "\\# 3 ABCDEF").unwrap();
        assert_eq!(v.to_value(), "\\# 3 ab cd ef");
        assert_eq!(RData::parse(RecordType::Unknown(65534), &v.to_value()).unwrap(), v);
        assert!(RData::parse(RecordType::Unknown(65534), "\\# 4 ABCDEF").is_err(), "the length is checked");
        assert!(RData::parse(RecordType::Unknown(65534), "plain words").is_err(), "only the generic form");
    }
}
