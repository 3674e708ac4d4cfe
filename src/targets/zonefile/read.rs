//! Reading zone files as BIND reads them, with NLnet Labs' `domain` scanner: `$ORIGIN` (also
//! `$ORIGIN .`), `$TTL`, multi-line entries in parentheses, relative names in owners and
//! values, unquoted TXT, escapes, RFC 3597 `\# len hex` for the types we model, and `$INCLUDE`
//! of a file inside the target directory.
//!
//! What we add on top: BIND's TTL units (`1h`, `1w2d`), which `domain` does not read, are
//! turned into seconds before a second scan (only when the first scan fails, so our own files
//! and other tools' plain-seconds files are scanned once); and refusals, each with the file
//! and line, of everything we could not write back unchanged: a type we do not model,
//! a class other than IN, a set whose values carry different TTLs,
//! `$GENERATE`. TXT character-strings are kept as they are (`RData::txt_strings`).

use std::path::{Path, PathBuf};

use domain::base::iana::Class;
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, ScannedRecord, Zonefile};

use crate::model::{Caa, Name, RData, RecordSet, RecordType, scanner_location, writable_structured};
use crate::targets::TargetError;

/// A zone's SOA as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    pub primary: Name,
    pub admin: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    pub ttl: u32,
}

#[derive(Debug)]
pub struct ParsedZone {
    pub soa: Option<Soa>,
    pub sets: Vec<RecordSet>,
    /// Records outside the zone, left out as BIND leaves them out.
    pub ignored: usize,
}

impl ParsedZone {
    pub fn serial(&self) -> Option<u32> {
        self.soa.as_ref().map(|s| s.serial)
    }
}

/// How deep `$INCLUDE`s may nest, and how many one zone may have in all.
const MAX_INCLUDE_DEPTH: usize = 8;
const MAX_INCLUDES: usize = 64;

/// BIND carries the default TTL (`$TTL`, or the last TTL given) into an included file and
/// back out of it; the scanner starts each file afresh. So an included file must hold no
/// `$TTL` and give every record its own TTL, or it is refused: it would be read with other
/// TTLs than BIND serves. (It is found with the same entry splitter as TTL units.)
fn check_included(text: &str) -> Result<(), String> {
    for entry in entries(text) {
        let Some(&(s, e)) = entry.tokens.first() else { continue };
        let first = &text[s..e];
        if first.eq_ignore_ascii_case("$TTL") {
            return Err("an $INCLUDEd file may not set $TTL (BIND carries it back into the including file); give each record its TTL".into());
        }
        if first.starts_with('$') {
            continue;
        }
        let start = if entry.blank_start { 0 } else { 1 };
        let has_ttl = entry.tokens.iter().skip(start).take(2).any(|&(s, e)| {
            let t = &text[s..e];
            t.bytes().all(|b| b.is_ascii_digit()) || ttl_with_units(t).is_some()
        });
        if !has_ttl {
            return Err("every record of an $INCLUDEd file needs its own TTL: BIND would give it the including file's, which zonekeeper does not carry over".into());
        }
    }
    Ok(())
}

/// One record as read, with the line it ends on (for messages).
struct Read {
    name: Name,
    rtype: RecordType,
    ttl: u32,
    value: RData,
    file: usize,
    line: usize,
}

struct Reader<'a> {
    zone: &'a Name,
    /// The target directory: `$INCLUDE` may name only files inside it.
    dir: Option<&'a Path>,
    /// Every file read, the zone file first, for messages.
    files: Vec<String>,
    /// The canonical paths of the `$INCLUDE`s being read now (a file may not include itself).
    stack: Vec<PathBuf>,
    records: Vec<Read>,
    soa: Option<Soa>,
    /// Records left out because they are outside the zone.
    ignored: usize,
}

/// Reads a zone file. `shown` names it in messages; `dir` is where `$INCLUDE`d files must be.
pub fn parse_zone(text: &str, zone: &Name, shown: &str, dir: Option<&Path>) -> Result<ParsedZone, TargetError> {
    let first = read_all(text, zone, shown, dir);
    let reader = match first {
        Ok(r) => r,
        Err(e) => match ttl_units_in_seconds(text) {
            // The same lines, with BIND's TTL units written as seconds.
            Some(fixed) => read_all(&fixed, zone, shown, dir)?,
            None => return Err(e),
        },
    };
    reader.finish()
}

fn read_all<'a>(text: &str, zone: &'a Name, shown: &str, dir: Option<&'a Path>) -> Result<Reader<'a>, TargetError> {
    let mut reader = Reader {
        zone,
        dir,
        files: vec![shown.to_string()],
        stack: Vec::new(),
        records: Vec::new(),
        soa: None,
        ignored: 0,
    };
    reader.scan(text, 0, zone_name(zone), 0)?;
    Ok(reader)
}

fn zone_name(zone: &Name) -> domain::base::Name<bytes::Bytes> {
    // A `Name` is valid ASCII with at most 253 octets, which `domain` always takes.
    domain::base::Name::from_chars(zone.fqdn().chars()).unwrap_or_else(|_| domain::base::Name::root_bytes())
}

impl Reader<'_> {
    fn err(&self, file: usize, line: usize, message: String) -> TargetError {
        TargetError::Parse { path: self.files[file].clone(), line, message }
    }

    fn scan(
        &mut self,
        text: &str,
        file: usize,
        origin: domain::base::Name<bytes::Bytes>,
        depth: usize,
    ) -> Result<(), TargetError> {
        let mut scanner = Zonefile::from(text);
        scanner.set_origin(origin);
        scanner.set_default_class(Class::IN);
        let mut lines = LineCounter::new(text);
        loop {
            let entry = match scanner.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let (line, message) = scanner_message(&e.to_string());
                    return Err(self.err(file, line, message));
                }
            };
            let line = lines.line_before(scanner.current_offset());
            match entry {
                Entry::Record(record) => self.record(&record, file, line)?,
                Entry::Include { path, origin } => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(self.err(file, line, format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}")));
                    }
                    if self.files.len() > MAX_INCLUDES {
                        return Err(self.err(file, line, format!("more than {MAX_INCLUDES} $INCLUDEs")));
                    }
                    let (path, included) = self.include(path.as_ref(), file, line)?;
                    if self.stack.contains(&path) {
                        return Err(self.err(file, line, format!("$INCLUDE `{}` includes itself", path.display())));
                    }
                    check_included(&included).map_err(|m| self.err(file, line, m))?;
                    let origin = match origin {
                        Some(o) => o,
                        None => scanner.origin().map_err(|_| self.err(file, line, "no origin for $INCLUDE".into()))?,
                    };
                    self.files.push(path.display().to_string());
                    let index = self.files.len() - 1;
                    self.stack.push(path);
                    self.scan(&included, index, origin, depth + 1)?;
                    self.stack.pop();
                }
            }
        }
    }

    /// Reads an `$INCLUDE`d file, which must lie inside the target directory.
    fn include(&self, path: &str, file: usize, line: usize) -> Result<(PathBuf, String), TargetError> {
        let Some(dir) = self.dir else {
            return Err(self.err(file, line, "$INCLUDE is not supported here".into()));
        };
        let outside = || {
            self.err(
                file,
                line,
                format!(
                    "$INCLUDE `{path}` is outside the target directory {}; only files inside it are read",
                    dir.display()
                ),
            )
        };
        let joined = dir.join(path);
        let (Ok(real), Ok(base)) = (joined.canonicalize(), dir.canonicalize()) else {
            return Err(self.err(file, line, format!("$INCLUDE `{path}`: no such file in {}", dir.display())));
        };
        if !real.starts_with(&base) {
            return Err(outside());
        }
        let text = std::fs::read_to_string(&real)
            .map_err(|e| self.err(file, line, format!("$INCLUDE `{path}`: cannot read it: {e}")))?;
        Ok((real, text))
    }

    fn record(&mut self, record: &ScannedRecord, file: usize, line: usize) -> Result<(), TargetError> {
        let err = |m: String| self.err(file, line, m);
        let name = match plain_name(record.owner()).map(|s| Name::parse(&s)) {
            Some(Ok(name)) => name,
            // Not a plain host name, or not a valid one: the full form for the message.
            _ => {
                let owner = record.owner().to_string();
                Name::parse(&owner).map_err(|e| err(format!("owner `{owner}`: {e}")))?
            }
        };
        let owner = name.as_str();
        if !name.is_in(self.zone) {
            // BIND ignores out-of-zone data ("ignoring out-of-zone data"), so no client ever
            // got it: it is left out, as BIND leaves it out, and said.
            tracing::warn!(file = %self.files[file], line, name = owner, zone = %self.zone, "ignoring out-of-zone data, as BIND does");
            self.ignored += 1;
            return Ok(());
        }
        if record.class() != Class::IN {
            return Err(err(format!("class {} is not supported; zonekeeper manages class IN only", record.class())));
        }
        let ttl = record.ttl().as_secs();
        let target = |n: &domain::zonefile::inplace::ScannedDname| {
            if let Some(Ok(name)) = plain_name(n).map(|s| Name::parse_target(&s)) {
                return Ok(name);
            }
            let s = n.to_string();
            Name::parse_target(&s).map_err(|e| err(format!("`{s}`: {e}")))
        };
        // The root is a target only for MX (null MX) and SRV ("no such service").
        let not_root = |n: Name| {
            if n.is_root() {
                Err(err(format!("{} to the root `.` is not a valid value", record.rtype())))
            } else {
                Ok(n)
            }
        };
        let value = match record.data() {
            ZoneRecordData::Soa(soa) => {
                if self.soa.is_some() || name != *self.zone {
                    return Err(err("a second SOA, or an SOA below the zone's apex".into()));
                }
                let name = |n: String| Name::parse(&n).map_err(|e| err(format!("SOA name `{n}`: {e}")));
                self.soa = Some(Soa {
                    primary: name(soa.mname().to_string())?,
                    admin: name(soa.rname().to_string())?,
                    serial: soa.serial().into_int(),
                    refresh: soa.refresh().as_secs(),
                    retry: soa.retry().as_secs(),
                    expire: soa.expire().as_secs(),
                    minimum: soa.minimum().as_secs(),
                    ttl,
                });
                return Ok(());
            }
            ZoneRecordData::A(a) => RData::A(a.addr()),
            ZoneRecordData::Aaaa(a) => RData::Aaaa(a.addr()),
            ZoneRecordData::Cname(c) => RData::Cname(not_root(target(c.cname())?)?),
            ZoneRecordData::Ns(n) => RData::Ns(not_root(target(n.nsdname())?)?),
            ZoneRecordData::Ptr(p) => RData::Ptr(not_root(target(p.ptrdname())?)?),
            ZoneRecordData::Mx(m) => RData::Mx { preference: m.preference(), exchange: target(m.exchange())? },
            ZoneRecordData::Srv(s) => {
                RData::Srv { priority: s.priority(), weight: s.weight(), port: s.port(), target: target(s.target())? }
            }
            ZoneRecordData::Txt(t) => {
                let mut strings = Vec::new();
                for piece in t.iter() {
                    strings.push(std::str::from_utf8(piece).map_err(|_| {
                        err("TXT holds bytes that are not UTF-8 text, which zonekeeper cannot keep".into())
                    })?);
                }
                // Kept as the strings they are: one text when they are the ones we would
                // write for it, else each string exactly (clients see each one).
                RData::txt_strings(&strings).map_err(|e| err(e.to_string()))?
            }
            ZoneRecordData::Caa(c) => {
                let tag = c.tag().to_string();
                let value = std::str::from_utf8(c.value().as_ref())
                    .map_err(|_| err("CAA value holds bytes that are not UTF-8 text".into()))?;
                // Checked as a records file's value would be: the tag's grammar and the text.
                let flags = c.flags().bits();
                RData::parse(RecordType::Caa, &format!("{flags} {tag} x")).map_err(|e| err(e.to_string()))?;
                RData::parse(RecordType::Txt, value).map_err(|e| err(format!("CAA value: {e}")))?;
                RData::Caa(Box::new(Caa { flags, tag: tag.to_ascii_lowercase(), value: value.to_string() }))
            }
            // A type zonekeeper does not model, in the generic form (RFC 3597): kept as it is.
            ZoneRecordData::Unknown(_) => match RecordType::from_number(record.rtype().to_int()) {
                t @ RecordType::Unknown(_) => {
                    RData::Other(t, writable_structured(t, record.data()).map_err(|m| err(format!("{t}: {m}")))?)
                }
                _ => {
                    return Err(err(format!(
                        "{} in the generic `\\# length hex` form (RFC 3597) is not supported for a type zonekeeper models; write it in its usual form",
                        record.rtype()
                    )));
                }
            },
            other => {
                let mnemonic = record.rtype().to_string();
                match RecordType::parse(&mnemonic) {
                    Some(t) if t.is_structured_text() => {
                        RData::Other(t, writable_structured(t, other).map_err(|m| err(format!("{mnemonic}: {m}")))?)
                    }
                    _ => {
                        return Err(err(format!(
                            "record type {mnemonic} is not supported by zonekeeper; a file it cannot write back whole is not taken over"
                        )));
                    }
                }
            }
        };
        self.records.push(Read { name, rtype: value.record_type(), ttl, value, file, line });
        Ok(())
    }

    /// Groups the records into sets; a set whose values carry different TTLs is refused.
    fn finish(mut self) -> Result<ParsedZone, TargetError> {
        self.records.sort_by(|a, b| (&a.name, a.rtype).cmp(&(&b.name, b.rtype)));
        let mut sets: Vec<RecordSet> = Vec::with_capacity(self.records.len());
        let mut first_line: (usize, usize) = (0, 0);
        for r in &self.records {
            match sets.last_mut() {
                Some(last) if last.name == r.name && last.rtype == r.rtype => {
                    if last.ttl != r.ttl {
                        let (f, l) = first_line;
                        return Err(self.err(
                            r.file,
                            r.line,
                            format!(
                                "{} {} has TTL {} here and {} at {}:{l}; one name and type has one TTL (RFC 2181 §5.2), so give its values the same TTL",
                                r.name, r.rtype, r.ttl, last.ttl, self.files[f]
                            ),
                        ));
                    }
                    last.values.push(r.value.clone());
                }
                _ => {
                    first_line = (r.file, r.line);
                    sets.push(RecordSet {
                        name: r.name.clone(),
                        rtype: r.rtype,
                        ttl: r.ttl,
                        values: vec![r.value.clone()],
                    })
                }
            }
        }
        for s in &mut sets {
            if s.values.len() > 1 {
                s.values.sort();
                s.values.dedup();
            }
        }
        Ok(ParsedZone { soa: self.soa, sets, ignored: self.ignored })
    }
}

/// A scanned name as text when every label is plain (letters, digits, `-`, `_`, `*`), read
/// from the labels' bytes rather than through `Display`, which formats each character on its
/// own (most of what reading a large zone's names cost); `.` for the root; `None` otherwise.
fn plain_name(n: &impl domain::base::name::ToLabelIter) -> Option<String> {
    let mut s = String::with_capacity(48);
    for label in n.iter_labels() {
        if label.is_root() {
            break;
        }
        let bytes = label.as_slice();
        if !bytes.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'*')) {
            return None;
        }
        if !s.is_empty() {
            s.push('.');
        }
        s.extend(bytes.iter().map(|c| c.to_ascii_lowercase() as char));
    }
    if s.is_empty() {
        s.push('.');
    }
    Some(s)
}

/// The line number and message of a scanner error (`line:col: message`), with `$GENERATE`
/// explained.
fn scanner_message(shown: &str) -> (usize, String) {
    let (line, col, message) = match scanner_location(shown) {
        Some((line, col, message)) => (line, col.to_string(), message.to_string()),
        None => (0, String::new(), shown.to_string()),
    };
    let message = if message.contains("$GENERATE") {
        "$GENERATE is not supported: expand it first (`named-compilezone -o expanded.db ZONE FILE` writes every record it makes)".to_string()
    } else if col.is_empty() {
        message
    } else if col == "1" && line > 1 {
        // The scanner stands at the start of the next line when the last token of an entry
        // was the bad one: the entry is the line before.
        return (line - 1, format!("at the end of the line: {message}"));
    } else {
        format!("column {col}: {message}")
    };
    (line, message)
}

/// Counts lines up to a byte offset, moving forward only.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter { text: text.as_bytes(), at: 0, line: 1 }
    }

    /// The line of the last byte before `offset` (the line an entry ended on).
    fn line_before(&mut self, offset: usize) -> usize {
        let end = offset.saturating_sub(1).min(self.text.len());
        if end > self.at {
            self.line += self.text[self.at..end].iter().filter(|b| **b == b'\n').count();
            self.at = end;
        }
        self.line
    }
}

/// BIND's TTL with units (`1h`, `1w2d`, `90M`) in seconds; `None` for plain numbers and
/// anything else.
fn ttl_with_units(token: &str) -> Option<u32> {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut total: u32 = 0;
    let mut number: Option<u32> = None;
    for b in token.bytes() {
        match b {
            b'0'..=b'9' => number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add((b - b'0') as u32)?),
            _ => {
                let unit = match b.to_ascii_lowercase() {
                    b'w' => 604_800,
                    b'd' => 86_400,
                    b'h' => 3_600,
                    b'm' => 60,
                    b's' => 1,
                    _ => return None,
                };
                total = total.checked_add(number.take()?.checked_mul(unit)?)?;
            }
        }
    }
    // BIND refuses a number without a unit after one with a unit (`1h30`).
    match number {
        Some(_) => None,
        None => Some(total),
    }
}

/// The text with every TTL written with units (`$TTL`, a record's TTL field, the four SOA
/// timers) replaced by its seconds, or `None` when there is none. It splits entries as the
/// scanner does (quotes, escapes, comments, parentheses) only to find those fields; the
/// scanner then reads the result, and line numbers stay the same.
fn ttl_units_in_seconds(text: &str) -> Option<String> {
    let mut edits: Vec<(usize, usize, u32)> = Vec::new();
    for entry in entries(text) {
        let Some(&(start, end)) = entry.tokens.first() else { continue };
        let tok = |i: usize| entry.tokens.get(i).map(|&(s, e)| (s, e, &text[s..e]));
        let first = &text[start..end];
        if first.eq_ignore_ascii_case("$TTL") {
            if let Some((s, e, t)) = tok(1)
                && let Some(secs) = ttl_with_units(t)
            {
                edits.push((s, e, secs));
            }
            continue;
        }
        if first.starts_with('$') {
            continue;
        }
        let mut i = if entry.blank_start { 0 } else { 1 };
        // [TTL] [class] or [class] [TTL], then the type
        for _ in 0..2 {
            let Some((s, e, t)) = tok(i) else { break };
            if let Some(secs) = ttl_with_units(t) {
                edits.push((s, e, secs));
            } else if !(t.bytes().all(|b| b.is_ascii_digit()) || is_class(t)) {
                break;
            }
            i += 1;
        }
        if tok(i).is_some_and(|(_, _, t)| t.eq_ignore_ascii_case("SOA")) {
            // MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM
            for k in 4..=7 {
                if let Some((s, e, t)) = tok(i + k)
                    && let Some(secs) = ttl_with_units(t)
                {
                    edits.push((s, e, secs));
                }
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e, secs) in edits {
        out.push_str(&text[at..s]);
        out.push_str(&secs.to_string());
        at = e;
    }
    out.push_str(&text[at..]);
    Some(out)
}

fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS"].iter().any(|c| t.eq_ignore_ascii_case(c))
}

/// One entry of a zone file: its tokens' byte ranges, and whether its first line begins
/// with white space (no owner given).
struct Tokens {
    blank_start: bool,
    tokens: Vec<(usize, usize)>,
}

fn entries(text: &str) -> Vec<Tokens> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut cur = Tokens { blank_start: false, tokens: Vec::new() };
    let mut depth = 0usize;
    let mut at_line_start = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if at_line_start && depth == 0 {
            cur.blank_start = c == b' ' || c == b'\t';
            at_line_start = false;
        }
        match c {
            b'\n' => {
                if depth == 0 {
                    out.push(std::mem::replace(&mut cur, Tokens { blank_start: false, tokens: Vec::new() }));
                    at_line_start = true;
                }
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                cur.tokens.push((start, i));
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"') {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = i.min(b.len());
                cur.tokens.push((start, i));
            }
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests;
