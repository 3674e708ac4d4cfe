//! Reading a records file, fast when it is large.
//!
//! Loading YAML is most of the cost of a plan at scale (see ../shared/research/yaml-speed.md),
//! so a records file whose `records:` is a block sequence is cut at its item boundaries into
//! chunks that are parsed on all cores, each item's line known from the cut. The rest of the file (apiVersion, kind, zone) is parsed by serde-saphyr with
//! the records replaced by blank lines, so its positions stay true. Anything unexpected on
//! this path (a parse error, an alias across chunks, an item count that does not match the
//! cut) falls back to one serde-saphyr parse of the whole file, which is also the path that
//! reports every problem with its location. Both paths give the same records for a valid file.
//!
//! Within a chunk, the common one-line form `- {name: www, type: A, value: 192.0.2.1}` is read
//! by `line_items` without building YAML events: about ten times faster than a YAML parser. It
//! takes only a strict subset (plain scalars that YAML can only read as strings, quoted strings
//! without escapes, the keys name, type, ttl, value and values, each once) and leaves the whole
//! chunk to serde-saphyr at the first thing outside it. A chunk is parsed with the same
//! options as a whole file (duplicate keys refused, the alias and nesting budget), so no path
//! takes what the full parse refuses; property tests check both against the full parse.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostic::{Diagnostic, Pos};
use super::format::{ApiVersion, RecordEntry, RecordsFile, RecordsKind};
use super::yaml::{self, DocKind};

/// A records file as the semantic checks need it: the zone and each entry with its place.
#[derive(Debug)]
pub struct RecordsDoc {
    pub zone: String,
    pub zone_pos: Pos,
    pub records: Vec<(Pos, RecordEntry)>,
}

/// Items per chunk: large enough that thread overhead is noise, small enough that the
/// parser's in-memory event list for a chunk stays a few MB.
const CHUNK_ITEMS: usize = 4096;

/// A records file that does not match the schema: its problems, and the entries that are
/// well-formed on their own, so that their semantic problems are reported in the same run.
#[derive(Debug)]
pub struct Unparsed {
    pub problems: Vec<Diagnostic>,
    /// The well-formed entries, with the index in the file of each.
    pub partial: Option<(RecordsDoc, Vec<usize>)>,
}

pub fn parse(text: &str, display: &str) -> Result<RecordsDoc, Unparsed> {
    if let Some(doc) = fast(text) {
        return Ok(doc);
    }
    let file: RecordsFile = yaml::parse(text, display, DocKind::Records)
        .map_err(|problems| Unparsed { problems, partial: partial(text) })?;
    Ok(RecordsDoc {
        zone: file.zone.value,
        zone_pos: file.zone.referenced.into(),
        records: file.records.into_iter().map(|s| (s.referenced.into(), s.value)).collect(),
    })
}

/// The zone and the entries that deserialise on their own, from a file that as a whole does
/// not (`vaule:` in one entry must not hide `1.2.3.999` in another).
fn partial(text: &str) -> Option<(RecordsDoc, Vec<usize>)> {
    use yaml::Node;
    let tree = yaml::tree(text)?;
    let Node::Map(top) = &tree.value else { return None };
    let field = |key: &str| top.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let zone = field("zone")?;
    let Node::Str(zone_name) = &zone.value else { return None };
    let Node::Seq(items) = &field("records")?.value else { return None };
    let (indices, records): (Vec<usize>, Vec<(Pos, RecordEntry)>) = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let entry = serde_json::from_value::<RecordEntry>(item.value.to_json()).ok()?;
            Some((i, (Pos::from(item.referenced), entry)))
        })
        .unzip();
    Some((RecordsDoc { zone: zone_name.clone(), zone_pos: zone.referenced.into(), records }, indices))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // apiVersion and kind are checked by deserialising them
struct Header {
    api_version: ApiVersion,
    kind: RecordsKind,
    zone: Spanned<String>,
    records: Vec<serde::de::IgnoredAny>,
}

/// Where the items of the `records:` sequence are.
struct Cut<'a> {
    header: String,
    chunks: Vec<(&'a str, Vec<Pos>)>,
}

fn indent_of(line: &str) -> Option<usize> {
    let n = line.len() - line.trim_start_matches(' ').len();
    // Tabs in indentation: leave the file to the full parser, which explains the problem.
    (!line[n..].starts_with('\t')).then_some(n)
}

fn is_item(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ")
}

fn cut(text: &str) -> Option<Cut<'_>> {
    let mut offset = 0;
    let mut lines = Vec::new();
    for line in text.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let key = lines.iter().position(|(_, l)| {
        let l = l.trim_end();
        l == "records:"
            || l.strip_prefix("records:").is_some_and(|r| r.trim_start().starts_with('#') && r.starts_with(' '))
    })?;
    let mut items: Vec<(usize, Pos)> = Vec::new();
    let mut item_indent = None;
    let mut end = lines.len();
    for (i, (off, raw)) in lines.iter().enumerate().skip(key + 1) {
        let line = raw.trim_end_matches(['\n', '\r']);
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = indent_of(line)?;
        match item_indent {
            None if is_item(content) => item_indent = Some(indent),
            None => return None,
            Some(ind) if indent == ind && is_item(content) => {}
            Some(ind) if indent > ind => continue,
            Some(_) => {
                end = i;
                break;
            }
        }
        let after_dash = content[1..].len() - content[1..].trim_start_matches(' ').len();
        items.push((*off, Pos { line: i as u32 + 1, column: (indent + 2 + after_dash) as u32 }));
    }
    if items.is_empty() {
        return None;
    }
    let region_end = lines.get(end).map(|(o, _)| *o).unwrap_or(text.len());
    let mut header = String::with_capacity(key * 40 + (end - key));
    for (_, l) in &lines[..key] {
        header.push_str(l);
    }
    header.push_str("records: []\n");
    header.extend(std::iter::repeat_n('\n', end - key - 1));
    for (_, l) in &lines[end..] {
        header.push_str(l);
    }
    let chunks = items
        .chunks(CHUNK_ITEMS)
        .enumerate()
        .map(|(k, group)| {
            let start = group[0].0;
            let stop = items.get((k + 1) * CHUNK_ITEMS).map(|(o, _)| *o).unwrap_or(region_end);
            (&text[start..stop], group.iter().map(|(_, p)| *p).collect())
        })
        .collect();
    Some(Cut { header, chunks })
}

/// True when a chunk is shallow enough to be worth parsing on its own; the full parser, with
/// its depth budget, handles (and refuses) the rest.
fn shallow(chunk: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for line in chunk.lines() {
        let content = line.trim_start_matches(' ');
        if line.len() - content.len() > 64 {
            return false;
        }
        let dashes = content.split("- ").take_while(|p| p.is_empty()).count();
        if dashes > 8 {
            return false;
        }
        for b in content.bytes() {
            match (quote, b) {
                (Some(_), _) if escaped => escaped = false,
                (Some(b'"'), b'\\') => escaped = true,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'[' | b'{') => depth += 1,
                (None, b']' | b'}') => depth -= 1,
                (None, b'#') => break,
                _ => {}
            }
            if depth > 16 {
                return false;
            }
        }
    }
    true
}

fn fast(text: &str) -> Option<RecordsDoc> {
    let cut = cut(text)?;
    if !cut.chunks.iter().all(|(t, _)| shallow(t)) {
        return None;
    }
    let header: Header = serde_saphyr::from_str(&cut.header).ok()?;
    if !header.records.is_empty() {
        return None;
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(cut.chunks.len()).max(1);
    let parse_chunk =
        |chunk: &str, items: usize| line_items(chunk, items).or_else(|| yaml::parse_piece::<Vec<RecordEntry>>(chunk));
    let parsed: Vec<Option<Vec<RecordEntry>>> = if threads == 1 {
        cut.chunks.iter().map(|(t, p)| parse_chunk(t, p.len())).collect()
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut slots: Vec<Option<Vec<RecordEntry>>> = Vec::new();
        slots.resize_with(cut.chunks.len(), || None);
        let results = std::sync::Mutex::new(slots);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((t, p)) = cut.chunks.get(k) else { break };
                        let r = parse_chunk(t, p.len());
                        if let Ok(mut slots) = results.lock() {
                            slots[k] = r;
                        }
                    }
                });
            }
        });
        results.into_inner().ok()?
    };
    let mut records = Vec::with_capacity(cut.chunks.iter().map(|(_, p)| p.len()).sum());
    for ((_, positions), entries) in cut.chunks.iter().zip(parsed) {
        let entries = entries?;
        if entries.len() != positions.len() {
            return None;
        }
        records.extend(positions.iter().copied().zip(entries));
    }
    Some(RecordsDoc { zone: header.zone.value, zone_pos: header.zone.referenced.into(), records })
}

/// The entries of a chunk whose every item is one line `- {key: value, ...}` in the subset
/// described at the top; `None` at the first thing outside it (the chunk then goes to the YAML
/// parser).
fn line_items(chunk: &str, expected: usize) -> Option<Vec<RecordEntry>> {
    let mut out = Vec::with_capacity(expected);
    for line in chunk.lines() {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let body = content.strip_prefix("- ")?.trim_start_matches(' ').strip_prefix('{')?;
        let body = body.trim_end_matches([' ', '\r']).strip_suffix('}')?;
        out.push(flow_entry(body)?);
    }
    (out.len() == expected).then_some(out)
}

/// A scalar of the subset: a quoted string, or a plain one (not yet checked).
enum Scalar<'a> {
    Quoted(&'a str),
    Plain(&'a str),
}

/// Reads one scalar at the start of `s`; returns it and the rest.
fn scalar(s: &str) -> Option<(Scalar<'_>, &str)> {
    let s = s.trim_start_matches(' ');
    for q in ['"', '\''] {
        if let Some(rest) = s.strip_prefix(q) {
            let end = rest.find(q)?;
            let (text, after) = (&rest[..end], &rest[end + 1..]);
            // Escapes (`\` in double quotes, `''` in single quotes) and anything but printable
            // ASCII are the YAML parser's business: YAML folds spaces around U+2028/U+2029 and refuses
            // U+FFFE/U+FFFF, for instance.
            if after.starts_with(q) || text.contains('\\') || !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return None;
            }
            return Some((Scalar::Quoted(text), after));
        }
    }
    let end = s.find([',', '}', ']', '[', '{']).unwrap_or(s.len());
    Some((Scalar::Plain(s[..end].trim_end_matches(' ')), &s[end..]))
}

/// True when YAML reads a plain scalar as this very string: it starts with a letter, digit or
/// `_`, holds only characters that cannot start a comment, a mapping or an alias, and is none
/// of the forms the YAML 1.1 and 1.2 schemas give another type (null, booleans, numbers,
/// sexagesimal numbers).
fn plain_string(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-*@/:+=".contains(c) || c == ' ';
    if !s.chars().all(allowed) || s.contains("  ") || s.contains(": ") || s.ends_with(':') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let words = ["null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", ".nan"];
    if words.contains(&lower.as_str()) {
        return false;
    }
    // Anything that could be a number in some schema: a base prefix, or decimal digits with
    // at most one dot, an exponent, `_` separators or `:` groups (YAML 1.1 sexagesimal).
    let numberish = |t: &str| {
        let t = t.trim_start_matches(['+', '-']);
        if ["0x", "0o", "0b"].iter().any(|p| t.starts_with(p)) {
            return true;
        }
        t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes().all(|b| b.is_ascii_digit() || b"._:+-e".contains(&b))
            && t.bytes().filter(|b| *b == b'.').count() <= 1
    };
    !numberish(&lower)
}

fn string(v: Scalar<'_>) -> Option<String> {
    match v {
        Scalar::Quoted(t) => Some(t.to_string()),
        Scalar::Plain(t) => plain_string(t).then(|| t.to_string()),
    }
}

/// The body of `{...}` (without the braces) as an entry, or `None`.
fn flow_entry(body: &str) -> Option<RecordEntry> {
    let (mut name, mut rtype, mut ttl, mut value, mut values) = (None, None, None, None, None);
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches(' ');
        let colon = rest.find(": ")?;
        let key = &rest[..colon];
        rest = &rest[colon + 2..];
        match key {
            "name" | "value" | "type" | "ttl" => {
                let (v, after) = scalar(rest)?;
                rest = after;
                let slot_taken = match key {
                    "name" => name.replace(string(v)?).is_some(),
                    "value" => value.replace(string(v)?).is_some(),
                    "type" => {
                        let Scalar::Plain(t) = v else { return None };
                        if !t.bytes().all(|b| b.is_ascii_uppercase()) {
                            return None;
                        }
                        let parsed = crate::model::RecordType::deserialize(serde::de::value::StrDeserializer::<
                            serde::de::value::Error,
                        >::new(t))
                        .ok()?;
                        rtype.replace(parsed).is_some()
                    }
                    _ => {
                        let Scalar::Plain(t) = v else { return None };
                        let ok = !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_digit());
                        let n: u32 =
                            if ok && (t == "0" || !t.starts_with('0')) { t.parse().ok()? } else { return None };
                        ttl.replace(n).is_some()
                    }
                };
                if slot_taken {
                    return None;
                }
            }
            "values" => {
                let mut list = Vec::new();
                let mut inner = rest.trim_start_matches(' ').strip_prefix('[')?;
                loop {
                    let (v, after) = scalar(inner)?;
                    list.push(string(v)?);
                    let after = after.trim_start_matches(' ');
                    if let Some(a) = after.strip_prefix(',') {
                        inner = a;
                    } else {
                        rest = after.strip_prefix(']')?;
                        break;
                    }
                }
                if values.replace(list).is_some() {
                    return None;
                }
            }
            _ => return None,
        }
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(',')?;
    }
    Some(RecordEntry {
        name: name?,
        rtype: rtype?,
        ttl,
        value,
        values,
        // `strings:` is not in the line reader's subset: such an item takes the full parser.
        strings: None,
        views: None,
        internal: None,
        allow_public: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# comment\napiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nrecords:\n  - {name: a, type: A, value: 192.0.2.1}\n  # a comment between items\n  - name: b\n    type: TXT\n    value: |\n      - not an item\n  -   {name: c, type: A, value: 192.0.2.3}\nzone: home.example\n";

    fn slow(text: &str) -> RecordsDoc {
        let file: RecordsFile = yaml::parse(text, "t", DocKind::Records).unwrap();
        RecordsDoc {
            zone: file.zone.value,
            zone_pos: file.zone.referenced.into(),
            records: file.records.into_iter().map(|s| (s.referenced.into(), s.value)).collect(),
        }
    }

    fn same(a: &RecordsDoc, b: &RecordsDoc) {
        assert_eq!(a.zone, b.zone);
        assert_eq!(a.zone_pos, b.zone_pos);
        assert_eq!(a.records.len(), b.records.len());
        for ((pa, ea), (pb, eb)) in a.records.iter().zip(&b.records) {
            assert_eq!(pa, pb);
            assert_eq!(serde_json::to_value(ea).unwrap(), serde_json::to_value(eb).unwrap());
        }
    }

    #[test]
    fn the_fast_path_gives_what_the_full_parser_gives() {
        let fast = fast(DOC).expect("this layout takes the fast path");
        same(&fast, &slow(DOC));
        assert_eq!(fast.records[2].0, Pos { line: 11, column: 7 });
        assert_eq!(fast.zone_pos.line, 12);
    }

    #[test]
    fn many_chunks_keep_order_and_lines() {
        let mut doc = String::from("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: z.example\nrecords:\n");
        for i in 0..(CHUNK_ITEMS * 2 + 7) {
            doc.push_str(&format!("- {{name: h{i}, type: A, value: 192.0.2.{}}}\n", i % 250));
        }
        let fast = fast(&doc).expect("fast path");
        same(&fast, &slow(&doc));
    }

    /// Pieces of item lines, tame and nasty, for the property test below.
    fn piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-z][a-z0-9-]{0,8}",
            "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
            "[0-9a-f]{1,4}(:[0-9a-f]{0,4}){1,4}",
            "[0-9]{1,3} [a-z]{1,5}\\.",
            Just("@".to_string()),
            Just("*.apps".to_string()),
            Just("\"@\"".to_string()),
            Just("'x y'".to_string()),
            Just("\"a\\\"b\"".to_string()),
            Just("'it''s'".to_string()),
            Just("\"a \u{2028} b\"".to_string()),
            Just("'x\u{FFFF}'".to_string()),
            Just("\"caf\u{e9}\"".to_string()),
            "(null|Null|~|true|False|yes|No|on|OFF|y|\\.inf|\\.NaN|0x1F|0o17|1e5|1_000|1:20|\\+5|-3|1\\.5|\\.5)",
            "[a-z]{1,3}[:#&*!%|>?,\\[\\]{}][a-z ]{0,3}",
            "[a-z]{1,3}  [a-z]{1,3}",
            Just(String::new()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever the line path accepts, the full parser reads the same way.
        #[test]
        fn the_line_path_reads_what_the_full_parser_reads(
            name in piece(),
            rtype in "(A|AAAA|CNAME|MX|TXT|a|Bogus|\"A\")",
            ttl in proptest::option::of("(0|300|0300|4294967295|4294967296|\"60\"|-1)"),
            value in piece(),
            values in proptest::collection::vec(piece(), 0..3),
            use_values in proptest::bool::ANY,
            extra in proptest::sample::select(vec!["", ", internal: true", ", views: {lan: [a]}", ", name: x", " # c", ","]),
        ) {
            let mut line = format!("  - {{name: {name}, type: {rtype}");
            if let Some(t) = &ttl {
                line.push_str(&format!(", ttl: {t}"));
            }
            if use_values {
                line.push_str(&format!(", values: [{}]", values.join(", ")));
            } else {
                line.push_str(&format!(", value: {value}"));
            }
            line.push_str(extra);
            line.push_str("}\n");
            if let Some(fast) = line_items(&line, 1) {
                let full = serde_saphyr::from_str::<Vec<RecordEntry>>(&line);
                proptest::prop_assert!(full.is_ok(), "accepted {line:?}, the full parser says {full:?}");
                let full = full.unwrap_or_default();
                proptest::prop_assert_eq!(
                    serde_json::to_value(&fast).unwrap_or_default(),
                    serde_json::to_value(&full).unwrap_or_default(),
                    "{:?}", line
                );
            }
        }
    }

    #[test]
    fn the_line_path_takes_the_everyday_forms() {
        let chunk = "  - {name: www, type: A, value: 192.0.2.1}\n  # note\n\n  - {name: \"@\", type: MX, ttl: 300, values: [10 mail.home.example., \"20 backup.home.example.\"]}\n  - {name: nas, type: AAAA, value: 2001:db8::20}\n  - {name: \"*.apps\", type: TXT, value: 'v=spf1 -all'}\n";
        let fast = line_items(chunk, 4).expect("all four are in the subset");
        let full = serde_saphyr::from_str::<Vec<RecordEntry>>(chunk).unwrap();
        assert_eq!(serde_json::to_value(&fast).unwrap(), serde_json::to_value(&full).unwrap());
        // anything else leaves the chunk to the YAML parser
        for odd in [
            "  - {name: a, type: A, value: 1e5}\n",
            "  - {name: a, type: A, value: x, internal: true}\n",
            "  - name: a\n    type: A\n",
            "  - {name: a, type: A, value: x} # comment\n",
            "  - {name: a, name: b, type: A}\n",
            "  - {name: \"a\\tb\", type: A}\n",
        ] {
            assert!(line_items(odd, 1).is_none(), "{odd}");
        }
        assert!(line_items(chunk, 5).is_none(), "a count that does not match the cut");
    }

    #[test]
    fn anything_odd_falls_back_to_the_full_parser() {
        // an anchor in one chunk used in another cannot be read chunk by chunk
        let mut doc = String::from("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: z.example\nrecords:\n");
        doc.push_str("  - {name: first, type: A, value: &ip 192.0.2.1}\n");
        for i in 0..CHUNK_ITEMS {
            doc.push_str(&format!("  - {{name: h{i}, type: A, value: 192.0.2.2}}\n"));
        }
        doc.push_str("  - {name: last, type: A, value: *ip}\n");
        assert!(fast(&doc).is_none());
        let full = parse(&doc, "t").unwrap();
        assert_eq!(full.records.len(), CHUNK_ITEMS + 2);
        assert_eq!(full.records[CHUNK_ITEMS + 1].1.value.as_deref(), Some("192.0.2.1"));
        // a flow sequence, tabs, and no records take the full parser too
        assert!(cut("zone: a\nrecords: [{name: a}]\n").is_none());
        assert!(cut("records:\n\t- a\n").is_none());
        assert!(cut("records:\n").is_none());
        // deep nesting is left to the full parser and its depth budget
        let deep =
            format!("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: z\nrecords:\n  - {}\n", "[".repeat(40));
        assert!(cut(&deep).is_some());
        assert!(fast(&deep).is_none());
        assert!(!shallow("  - - - - - - - - - - x\n"));
        assert!(shallow("  - {name: \"[[[[[[[[[[[[[[[[[[[[\", type: TXT, value: '{{{{{{{{{{{{{{{{{{{{'}\n"));
    }

    /// One records item in one of the forms people (and tools) write, tame and hostile.
    fn item() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let name = prop_oneof![Just("www"), Just("\"@\""), Just("a-b"), Just("'x'")];
        (name, 0usize..12).prop_map(|(n, form)| match form {
            0 => format!("  - {{name: {n}, type: A, value: 192.0.2.1}}\n"),
            1 => format!("  - name: {n}\n    type: A\n    value: 192.0.2.2\n"),
            2 => format!("  - {{name: {n}, type: A, values: [192.0.2.3, 192.0.2.4]}}\n"),
            3 => format!("  - {{name: {n}, type: A, value: 192.0.2.5, views: {{lan: [192.0.2.6]}}}}\n"),
            // a duplicate key inside a nested mapping
            4 => format!("  - {{name: {n}, type: A, views: {{lan: [192.0.2.7], lan: [192.0.2.8]}}}}\n"),
            5 => format!("  - name: {n}\n    type: A\n    views:\n      lan: [192.0.2.9]\n      lan: [192.0.2.10]\n"),
            // a duplicate key at the item's own level, in both forms
            6 => format!("  - {{name: {n}, type: A, value: 192.0.2.11, value: 192.0.2.12}}\n"),
            7 => format!("  - name: {n}\n    type: A\n    type: AAAA\n    value: 192.0.2.13\n"),
            // anchors, aliases and tags
            8 => format!("  - &it {{name: {n}, type: A, value: 192.0.2.14}}\n  - *it\n"),
            9 => format!("  - {{name: {n}, type: !!str A, value: !!str 192.0.2.15}}\n"),
            10 => format!("  - {{name: {n}, type: A, value: &v 192.0.2.16}}\n  - {{name: v2, type: A, value: *v}}\n"),
            _ => format!("  - {{name: {n}, type: TXT, value: \"a b\", internal: true}}\n"),
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Whatever path a file takes, it gives what the full serde-saphyr parse gives, and a
        /// file the full parse refuses (a duplicate key anywhere, say) is never taken.
        #[test]
        fn every_path_takes_exactly_what_the_full_parse_takes(items in proptest::collection::vec(item(), 1..12)) {
            let doc = format!("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: z.example\nrecords:\n{}", items.concat());
            let full = yaml::parse::<RecordsFile>(&doc, "t", DocKind::Records);
            match (fast(&doc), full) {
                (Some(fast), Ok(file)) => {
                    let records: Vec<_> = file.records.into_iter().map(|s| (Pos::from(s.referenced), s.value)).collect();
                    proptest::prop_assert_eq!(fast.records.len(), records.len(), "{}", doc);
                    for ((pa, ea), (pb, eb)) in fast.records.iter().zip(&records) {
                        // the same line; an anchored item's column may differ by the anchor
                        proptest::prop_assert_eq!(pa.line, pb.line, "{}", doc);
                        proptest::prop_assert_eq!(serde_json::to_value(ea).unwrap_or_default(), serde_json::to_value(eb).unwrap_or_default(), "{}", doc);
                    }
                }
                (Some(_), Err(e)) => proptest::prop_assert!(false, "the fast path took what the full parse refuses: {e:?}\n{doc}"),
                (None, _) => {}
            }
            // and `parse`, which picks the path, agrees with the full parse on valid or not
            proptest::prop_assert_eq!(parse(&doc, "t").is_ok(), yaml::parse::<RecordsFile>(&doc, "t", DocKind::Records).is_ok(), "{}", doc);
        }
    }
}
