//! Reading a records file, fast when it is large.
//!
//! Loading YAML is most of the cost of a plan at scale (see ../shared/research/yaml-speed.md),
//! so a records file whose `records:` is a block sequence is cut at its item boundaries into
//! chunks that are parsed on all cores with serde_yaml_ng (libyaml), each item's line known
//! from the cut. The rest of the file (apiVersion, kind, zone) is parsed by serde-saphyr with
//! the records replaced by blank lines, so its positions stay true. Anything unexpected on
//! this path (a parse error, an alias across chunks, an item count that does not match the
//! cut) falls back to one serde-saphyr parse of the whole file, which is also the path that
//! reports every problem with its location. Both paths give the same records for a valid file.

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

pub fn parse(text: &str, display: &str) -> Result<RecordsDoc, Vec<Diagnostic>> {
    if let Some(doc) = fast(text) {
        return Ok(doc);
    }
    let file: RecordsFile = yaml::parse(text, display, DocKind::Records)?;
    Ok(RecordsDoc {
        zone: file.zone.value,
        zone_pos: file.zone.referenced.into(),
        records: file.records.into_iter().map(|s| (s.referenced.into(), s.value)).collect(),
    })
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

/// True when a chunk is shallow enough for libyaml, whose parser slows down quadratically on
/// deep nesting; the full parser, with its depth budget, handles (and refuses) the rest.
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
    let parse_chunk = |chunk: &str| serde_yaml_ng::from_str::<Vec<RecordEntry>>(chunk).ok();
    let parsed: Vec<Option<Vec<RecordEntry>>> = if threads == 1 {
        cut.chunks.iter().map(|(t, _)| parse_chunk(t)).collect()
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
                        let Some((t, _)) = cut.chunks.get(k) else { break };
                        let r = parse_chunk(t);
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
}
