//! Checks of records files: each entry on its own (in parallel for large files), then the
//! rules across a zone, and what particular targets need (apex NS for zone files, ASCII text
//! for Technitium).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};

use super::diagnostic::{Diagnostic, Pos};
use super::format::{RecordEntry, ViewValue};
use super::records::RecordsDoc;
use super::settings::{SETTINGS_FILE, Settings, TargetKind};
use crate::model::{Name, Provenance, RData, RecordSet, RecordType};
use crate::wanted::WantedRecord;

pub(super) fn check_records(
    file: &str,
    raw: RecordsDoc,
    settings: Option<&Settings>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Name, Vec<WantedRecord>)> {
    let zone = match Name::parse(&raw.zone) {
        Ok(z) => z,
        Err(e) => {
            diags.push(Diagnostic::at(
                file,
                raw.zone_pos,
                "zone",
                format!("`{}` is not a valid zone name: {e}", raw.zone.escape_debug()),
            ));
            return None;
        }
    };
    let zone_settings = settings.and_then(|s| s.zones.iter().find(|z| z.name == zone));
    if settings.is_some() && zone_settings.is_none() {
        diags.push(Diagnostic::at(
            file,
            raw.zone_pos,
            "zone",
            format!("zone `{zone}` is not declared in zonekeeper.yaml `zones`"),
        ));
    }
    let default_ttl = zone_settings.map(|z| z.ttl).unwrap_or(300);
    let zone_internal = zone_settings.map(|z| z.internal).unwrap_or(false);

    let ctx =
        EntryCheck { file, shared: std::sync::Arc::from(file), zone: &zone, default_ttl, zone_internal, settings };
    let out = ctx.check_all(&raw.records, diags);
    Some((zone, out))
}

/// What checking one record entry needs to know about its file and zone.
struct EntryCheck<'a> {
    file: &'a str,
    shared: std::sync::Arc<str>,
    zone: &'a Name,
    default_ttl: u32,
    zone_internal: bool,
    settings: Option<&'a Settings>,
}

/// Below this many entries one thread is faster than starting more.
const PARALLEL_CHECK_MIN: usize = 4096;

impl EntryCheck<'_> {
    /// Checks every entry, on all cores for large files; results and problems keep file order.
    fn check_all(&self, entries: &[(Pos, RecordEntry)], diags: &mut Vec<Diagnostic>) -> Vec<WantedRecord> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if threads == 1 || entries.len() < PARALLEL_CHECK_MIN {
            return self.check_part(0, entries, diags);
        }
        let per = entries.len().div_ceil(threads);
        let parts: Vec<(Vec<WantedRecord>, Vec<Diagnostic>)> = std::thread::scope(|s| {
            let handles: Vec<_> = entries
                .chunks(per)
                .enumerate()
                .map(|(k, part)| {
                    s.spawn(move || {
                        let mut d = Vec::new();
                        (self.check_part(k * per, part, &mut d), d)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut out = Vec::with_capacity(entries.len());
        for (records, d) in parts {
            out.extend(records);
            diags.extend(d);
        }
        out
    }

    fn check_part(
        &self,
        first: usize,
        entries: &[(Pos, RecordEntry)],
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<WantedRecord> {
        let mut out = Vec::with_capacity(entries.len());
        for (j, (pos, entry)) in entries.iter().enumerate() {
            if let Some(r) = self.check(first + j, *pos, entry, diags) {
                out.push(r);
            }
        }
        out
    }

    fn check(&self, i: usize, loc: Pos, e: &RecordEntry, diags: &mut Vec<Diagnostic>) -> Option<WantedRecord> {
        let EntryCheck { file, shared, zone, default_ttl, zone_internal, settings } = self;
        let (file, zone, default_ttl, zone_internal, settings) =
            (*file, *zone, *default_ttl, *zone_internal, *settings);
        let at = |field: &str, msg: String| Diagnostic::at(file, loc, format!("records[{i}]{field}"), msg);
        let before = diags.len();
        let name = match Name::relative_to(&e.name, zone) {
            // `www.lab.test` in zone lab.test is relative, so it means www.lab.test.lab.test:
            // almost always a forgotten final dot (dnscontrol and octoDNS refuse it too). The
            // absolute form with the dot says it on purpose.
            Ok(_) if repeats_zone(&e.name, zone) => {
                let lower = e.name.to_ascii_lowercase();
                let meant = lower.strip_suffix(&format!(".{zone}")).unwrap_or("@");
                diags.push(at(
                    ".name",
                    format!(
                        "`{0}` is relative to the zone, so it would be `{0}.{zone}`; write `{meant}` (or `{0}.` with a final dot) for the name in this zone, or `{0}.{zone}.` if the doubled name is really meant",
                        e.name
                    ),
                ));
                None
            }
            Ok(n) if n.is_in(zone) => Some(n),
            Ok(n) => {
                diags.push(at(".name", format!("`{n}` is not inside zone `{zone}`")));
                None
            }
            Err(err) => {
                diags.push(at(".name", format!("`{}` is not a valid name: {err}", e.name.escape_debug())));
                None
            }
        };
        if let Some(ttl) = e.ttl
            && ttl > i32::MAX as u32
        {
            diags.push(at(".ttl", "TTL must be at most 2147483647 (RFC 2181)".into()));
        }
        // The place (`.values[3]`) is formatted only for a problem: a large zone's values are
        // nearly all fine, and a string for each would cost more than parsing it.
        let parse_one = |field: &str, j: usize, v: &str, diags: &mut Vec<Diagnostic>| -> Option<RData> {
            match RData::parse(e.rtype, v) {
                Ok(r) => Some(r),
                // A record value is not relative to the zone (BIND's would be): say which
                // absolute name is most likely meant, the one in this zone first.
                Err(crate::model::RDataError::NotAbsolute(n)) => {
                    diags.push(at(
                        &format!("{field}[{j}]"),
                        format!(
                            "`{n}` must be a fully qualified name ending in `.`: write `{n}.{zone}.` for the name in this zone (or `{n}.` if you mean that name itself)"
                        ),
                    ));
                    None
                }
                Err(err) => {
                    diags.push(at(&format!("{field}[{j}]"), err.to_string()));
                    None
                }
            }
        };
        let parse_all = |field: String, vals: &[String], diags: &mut Vec<Diagnostic>| -> Vec<RData> {
            // Exactly as many as given: `collect` from a filter would reserve four, and a
            // large zone keeps every one of these vectors.
            let mut out = Vec::with_capacity(vals.len());
            out.extend(vals.iter().enumerate().filter_map(|(j, v)| parse_one(&field, j, v, diags)));
            out
        };
        let values = match (&e.value, &e.values, &e.strings) {
            (Some(_), Some(_), _) => {
                diags.push(at("", "give `value` or `values`, not both".into()));
                None
            }
            (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => {
                diags.push(at(".strings", "give `strings` or `value`/`values`, not both".into()));
                None
            }
            (None, None, Some(_)) if e.rtype != RecordType::Txt => {
                diags.push(at(".strings", "`strings` is for TXT records only".into()));
                None
            }
            (None, None, Some(all)) => {
                let mut out = Vec::with_capacity(all.len());
                for (j, strings) in all.iter().enumerate() {
                    match RData::txt_strings(strings) {
                        Ok(v) => out.push(v),
                        Err(err) => diags.push(at(&format!(".strings[{j}]"), err.to_string())),
                    }
                }
                Some(out)
            }
            (Some(v), None, None) => Some(parse_all(".value".into(), std::slice::from_ref(v), diags)),
            (None, Some(vs), None) => Some(parse_all(".values".into(), vs, diags)),
            (None, None, None) => None,
        };
        let mut per_view = Vec::new();
        for (view, vals) in e.views.as_deref().into_iter().flatten() {
            if let Some(s) = settings
                && s.view(view).is_none()
            {
                diags.push(at(&format!(".views.{view}"), format!("view `{view}` is not declared in zonekeeper.yaml")));
            }
            let field = format!(".views.{view}");
            let mut parsed = Vec::with_capacity(vals.len());
            for (j, v) in vals.iter().enumerate() {
                match v {
                    ViewValue::Text(t) => parsed.extend(parse_one(&field, j, t, diags)),
                    ViewValue::Strings(_) if e.rtype != RecordType::Txt => diags.push(at(
                        &format!("{field}[{j}]"),
                        "a list of character-strings is for TXT records only".into(),
                    )),
                    ViewValue::Strings(strings) => match RData::txt_strings(strings) {
                        Ok(r) => parsed.push(r),
                        Err(err) => diags.push(at(&format!("{field}[{j}]"), err.to_string())),
                    },
                }
            }
            per_view.push((view.clone(), parsed));
        }
        if values.is_none() && per_view.is_empty() {
            diags.push(at("", "no values: give `value`, `values`, `strings` (TXT) or `views`".into()));
        }
        if e.rtype == RecordType::Cname {
            let many = values.as_ref().is_some_and(|v| v.len() > 1) || per_view.iter().any(|(_, v)| v.len() > 1);
            if many {
                diags.push(at(".values", "a CNAME has exactly one value".into()));
            }
            if name.as_ref() == Some(zone) {
                diags.push(at(
                    ".name",
                    "a CNAME cannot be at the zone apex (it must stand alone, and the apex has SOA and NS)".into(),
                ));
            }
        }
        if diags.len() > before {
            return None;
        }
        let (name, ttl) = (name?, e.ttl.unwrap_or(default_ttl));
        let set = |values: Vec<RData>| RecordSet::new(name.clone(), e.rtype, ttl, values);
        Some(WantedRecord {
            default: values.map(set),
            per_view: per_view.into_iter().map(|(v, values)| (v, set(values))).collect(),
            internal: zone_internal || e.internal.unwrap_or(false),
            allow_public: e.allow_public.unwrap_or(false),
            provenance: Provenance::File { path: shared.clone(), line: loc.line },
        })
    }
}

/// A zone file without NS records at the apex is refused by every DNS server (and by
/// `named-checkzone`), so a zone kept in zone files needs them in every view it is written for.
/// Every zone in zonekeeper.yaml has a records file. A missing one (renamed, deleted in a pull
/// request, a typo in its name) must not read as "this zone holds nothing", which would plan
/// the deletion of every record we own there; `records: []` says that on purpose.
pub(super) fn check_zones_have_records(
    settings: &Settings,
    zone_files: &BTreeMap<Name, (String, Pos)>,
    diags: &mut Vec<Diagnostic>,
) {
    for (i, zone) in settings.zones.iter().enumerate() {
        if !zone_files.contains_key(&zone.name) {
            diags.push(Diagnostic::at(
                SETTINGS_FILE,
                zone.declared,
                format!("zones[{i}].name"),
                format!(
                    "zone `{0}` has no records file: expected records/{0}.yaml with `zone: {0}` (a file with `records: []` says on purpose that it holds nothing)",
                    zone.name
                ),
            ));
        }
    }
}

pub(super) fn check_zone_files_have_ns(
    settings: &Settings,
    records: &BTreeMap<Name, Vec<WantedRecord>>,
    zone_files: &BTreeMap<Name, (String, Pos)>,
    diags: &mut Vec<Diagnostic>,
) {
    for zone in settings.zones.iter().filter(|z| zone_files.contains_key(&z.name)) {
        for t in zone.targets.iter().filter_map(|t| settings.target(t)) {
            if !matches!(t.kind, TargetKind::Zonefile { .. }) {
                continue;
            }
            let has_ns = records.get(&zone.name).is_some_and(|recs| {
                recs.iter().filter_map(|r| r.set_in(&t.view)).any(|s| s.name == zone.name && s.rtype == RecordType::NS)
            });
            if !has_ns {
                let (file, pos) =
                    zone_files.get(&zone.name).cloned().unwrap_or((SETTINGS_FILE.to_string(), Pos::default()));
                diags.push(Diagnostic::at(
                    &file,
                    pos,
                    "records",
                    format!(
                        "zone `{}` is written as a zone file by target `{}` (view `{}`) but has no NS records at `@`; add e.g. {{name: \"@\", type: NS, value: ns1.{}.}}",
                        zone.name, t.name, t.view, zone.name
                    ),
                ));
            }
        }
    }
}

/// Technitium (v15.2) stores TXT and CAA text as ASCII, turning anything else into `?`: such
/// a value could never match what we read back, and every run would try to add it again.
pub(super) fn check_technitium_text(
    settings: &Settings,
    records: &BTreeMap<Name, Vec<WantedRecord>>,
    diags: &mut Vec<Diagnostic>,
) {
    for zone in &settings.zones {
        let Some(t) = zone
            .targets
            .iter()
            .filter_map(|t| settings.target(t))
            .find(|t| matches!(t.kind, TargetKind::Technitium(_)))
        else {
            continue;
        };
        for r in records.get(&zone.name).into_iter().flatten() {
            let bad = r.all_values().any(|v| match v {
                RData::Txt(text) => !text.is_ascii(),
                RData::TxtStrings(strings) => strings.iter().any(|s| !s.is_ascii()),
                RData::Caa(c) => !c.value.is_ascii(),
                _ => false,
            });
            if bad {
                let Provenance::File { path, line } = &r.provenance else { continue };
                diags.push(Diagnostic {
                    file: path.to_string(),
                    line: *line,
                    column: 1,
                    path: "value".into(),
                    message: format!(
                        "zone `{}` is kept on Technitium target `{}`, which stores text as ASCII; this value has other characters",
                        zone.name, t.name
                    ),
                });
            }
        }
    }
}

/// Rules across entries of a zone: no duplicate name+type, a CNAME alone at its name.
pub(super) fn check_zone_rules(records: &BTreeMap<Name, Vec<WantedRecord>>, diags: &mut Vec<Diagnostic>) {
    for recs in records.values() {
        let mut seen: HashMap<(&Name, RecordType), &Provenance> = HashMap::with_capacity(recs.len());
        let cname_at: BTreeSet<&Name> =
            recs.iter().filter(|r| r.rtype() == Some(RecordType::Cname)).filter_map(|r| r.name()).collect();
        for r in recs {
            let (Some(name), Some(rtype)) = (r.name(), r.rtype()) else { continue };
            let Provenance::File { path, line } = &r.provenance else { continue };
            let here = |msg: String| Diagnostic {
                file: path.to_string(),
                line: *line,
                column: 1,
                path: "name".into(),
                message: msg,
            };
            if let Some(prev) = seen.insert((name, rtype), &r.provenance) {
                diags.push(here(format!(
                    "duplicate record: {name} {rtype} is already defined at {prev}; list several values under `values`"
                )));
            }
            if rtype != RecordType::Cname && cname_at.contains(name) {
                diags.push(here(format!(
                    "{name} has a CNAME, so it cannot also have {rtype} records (a CNAME must stand alone)"
                )));
            }
            // RFC 2181 §10.3: NS, MX and SRV must name a host, not an alias.
            for v in r.all_values() {
                let t = match v {
                    RData::Ns(t) | RData::Mx { exchange: t, .. } | RData::Srv { target: t, .. } => t,
                    _ => continue,
                };
                if cname_at.contains(t) {
                    diags.push(here(format!("{name} {rtype} points at {t}, which is a CNAME; NS, MX and SRV must point at a name with addresses (RFC 2181 §10.3)")));
                }
            }
        }
    }
}

/// A relative record name that ends with its zone's own name (`www.lab.test` in `lab.test`).
fn repeats_zone(name: &str, zone: &Name) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.ends_with('.') && (lower == zone.as_str() || lower.ends_with(&format!(".{}", zone.as_str())))
}
