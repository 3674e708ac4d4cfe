//! From files to a checked desired state: settings, zones with their records, resolver sets.
//! Every problem in every file is collected before anything is returned.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::checks::{
    check_records, check_technitium_text, check_zone_files_have_ns, check_zone_rules, check_zones_have_records,
};
use super::diagnostic::{Diagnostic, Invalid, Pos};
use super::files::{Files, WorkTree};
use super::format::{Limits, ResolverScope, ResolverSetFile};
use super::records;
use super::settings::{SETTINGS_FILE, Settings, load_settings, valid_view_name};
use super::yaml::{self, DocKind};
use crate::model::{Name, Provenance, Wanted};
use crate::wanted::{Member, MemberDiscovery, ResolverSet, WantedRecord, WantedState};

#[derive(Debug, Clone)]
pub struct DesiredState {
    pub root: PathBuf,
    pub settings: Settings,
    /// Records per zone in file order, and the resolver sets.
    pub wanted: WantedState,
}

impl DesiredState {
    /// The settings and root, with no records: the frame another wanted state is put in.
    pub fn clone_without_records(&self) -> DesiredState {
        DesiredState { root: self.root.clone(), settings: self.settings.clone(), wanted: WantedState::default() }
    }

    /// The record sets of `zone` as the audience `view` should see them.
    pub fn wanted(&self, zone: &Name, view: &str) -> Vec<Wanted<'_>> {
        self.wanted.wanted(zone, view)
    }
}

/// Loads and checks the whole desired state in the working tree of `root`.
pub fn load(root: &Path) -> Result<DesiredState, Invalid> {
    load_from(root, &WorkTree(root.to_path_buf()))
}

/// What the state is loaded for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// Planning and applying: every check.
    #[default]
    Reconcile,
    /// `export`, which writes a zone's records file: a zone may have none yet (or one without
    /// its apex NS), since making it is the point.
    Export,
}

/// Loads and checks the whole desired state from `files`; paths in the settings (zone-file
/// directories, hosts files) are relative to `root`.
pub fn load_from(root: &Path, files: &dyn Files) -> Result<DesiredState, Invalid> {
    load_for(root, files, Purpose::Reconcile)
}

/// `load_from` for a purpose (see `Purpose`).
pub fn load_for(root: &Path, files: &dyn Files, purpose: Purpose) -> Result<DesiredState, Invalid> {
    let mut diags = Vec::new();
    let settings = match files.read(SETTINGS_FILE, Limits::default().max_file_bytes) {
        Ok(Some(text)) => load_settings(root, &text, &mut diags),
        Ok(None) => {
            diags.push(Diagnostic::file(
                SETTINGS_FILE,
                format!("not found in the {}; pass --repo DIR", files.describe()),
            ));
            None
        }
        Err(d) => {
            diags.push(d);
            None
        }
    };
    let limits = settings.as_ref().map(|s| s.limits.clone()).unwrap_or_default();

    let mut records: BTreeMap<Name, Vec<WantedRecord>> = BTreeMap::new();
    // Where each zone's records were declared, to point at when the zone as a whole is wrong.
    let mut zone_files: BTreeMap<Name, (String, Pos)> = BTreeMap::new();
    for display in listed(files, "records", &mut diags) {
        let text = match files.read(&display, limits.max_file_bytes) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        match records::parse(&text, &display) {
            Ok(file) => {
                let zone_pos = file.zone_pos;
                if let Some((zone, recs)) = check_records(&display, file, settings.as_ref(), &mut diags) {
                    zone_files.entry(zone.clone()).or_insert((display.clone(), zone_pos));
                    records.entry(zone).or_default().extend(recs);
                }
            }
            Err(unparsed) => {
                diags.extend(unparsed.problems);
                // Every problem at once: the entries that are well-formed on their own are
                // still checked (their records are not kept: the file is invalid anyway).
                if let Some((file, indices)) = unparsed.partial {
                    let from = diags.len();
                    let _ = check_records(&display, file, settings.as_ref(), &mut diags);
                    // Their paths count the well-formed entries only: give each its index in the file.
                    for d in &mut diags[from..] {
                        if let Some(rest) = d.path.strip_prefix("records[")
                            && let Some((k, tail)) = rest.split_once(']')
                            && let Some(i) = k.parse::<usize>().ok().and_then(|k| indices.get(k))
                        {
                            d.path = format!("records[{i}]{tail}");
                        }
                    }
                }
            }
        }
    }
    check_zone_rules(&records, &mut diags);
    // Only when every file read cleanly: a zone whose file failed to parse lacks its NS too,
    // and saying so would only bury the real problem.
    if let (Some(s), true) = (&settings, diags.is_empty()) {
        if purpose == Purpose::Reconcile {
            check_zones_have_records(s, &zone_files, &mut diags);
            check_zone_files_have_ns(s, &records, &zone_files, &mut diags);
        }
        check_technitium_text(s, &records, &mut diags);
    }

    let mut resolver_sets = Vec::new();
    for display in listed(files, "resolvers", &mut diags) {
        let text = match files.read(&display, limits.max_file_bytes) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        match yaml::parse::<ResolverSetFile>(&text, &display, DocKind::ResolverSet) {
            Ok(file) => {
                if let Some(set) = check_resolver_set(&display, file, &mut diags) {
                    if let Some(prev) = resolver_sets.iter().find(|s: &&ResolverSet| s.name == set.name) {
                        diags.push(Diagnostic::file(
                            &display,
                            format!("resolver set `{}` is already defined in {}", set.name, prev.provenance),
                        ));
                    } else {
                        resolver_sets.push(set);
                    }
                }
            }
            Err(ds) => diags.extend(ds),
        }
    }

    let entries: usize = records.values().map(Vec::len).sum();
    if entries >= crate::memory::LARGE {
        // The parsing threads' scratch: about 12 MB at 100,000 records.
        crate::memory::give_back_freed();
    }
    match settings {
        Some(settings) if diags.is_empty() => Ok(DesiredState {
            root: root.to_path_buf(),
            settings,
            wanted: WantedState { zones: records, resolver_sets },
        }),
        _ => {
            diags.sort();
            diags.dedup();
            Err(Invalid(diags))
        }
    }
}

fn listed(files: &dyn Files, dir: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    files.list_yaml(dir).unwrap_or_else(|d| {
        diags.push(d);
        Vec::new()
    })
}

/// A resolver set file, checked: its name, scope, domains, members and health rule.
fn check_resolver_set(file: &str, raw: ResolverSetFile, diags: &mut Vec<Diagnostic>) -> Option<ResolverSet> {
    let before = diags.len();
    if !valid_view_name(&raw.name.value) {
        diags.push(Diagnostic::at(
            file,
            raw.name.referenced,
            "name",
            format!("`{}` is not a valid resolver set name", raw.name.value),
        ));
    }
    let mut domains = Vec::new();
    for (i, d) in raw.domains.iter().enumerate() {
        match Name::parse(&d.value) {
            Ok(n) => domains.push(n),
            Err(e) => diags.push(Diagnostic::at(
                file,
                d.referenced,
                format!("domains[{i}]"),
                format!("`{}` is not a valid domain: {e}", d.value.escape_debug()),
            )),
        }
    }
    match raw.scope {
        ResolverScope::Split if raw.domains.is_empty() => {
            diags.push(Diagnostic::at(file, raw.name.referenced, "domains", "scope `split` needs at least one domain"));
        }
        ResolverScope::Global if !raw.domains.is_empty() => {
            diags.push(Diagnostic::at(
                file,
                raw.name.referenced,
                "domains",
                "scope `global` takes no domains (use scope `split`)",
            ));
        }
        _ => {}
    }
    let mut members = Vec::new();
    for (i, m) in raw.members.iter().enumerate() {
        match m.value.address.parse::<IpAddr>() {
            Ok(address) => members.push(Member {
                address,
                name: m.value.name.clone(),
                provenance: Provenance::File { path: file.into(), line: Pos::from(m.referenced).line },
            }),
            Err(_) => diags.push(Diagnostic::at(
                file,
                m.referenced,
                format!("members[{i}].address"),
                format!("`{}` is not an IP address", m.value.address),
            )),
        }
    }
    if raw.health.failures_before_down == 0 || raw.health.interval_seconds == 0 {
        diags.push(Diagnostic::at(
            file,
            raw.name.referenced,
            "health",
            "intervalSeconds and failuresBeforeDown must be at least 1",
        ));
    }
    // Tags are Tailscale's: `tag:` and a name of letters, digits and dashes.
    let tag = |t: &str| {
        t.strip_prefix("tag:").is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !n.starts_with('-')
        })
    };
    for (field, tags) in [("serviceTags", &raw.discover.service_tags), ("tailscaleTags", &raw.discover.tailscale_tags)]
    {
        for (i, t) in tags.iter().enumerate().filter(|(_, t)| !tag(t)) {
            diags.push(Diagnostic::at(
                file,
                raw.name.referenced,
                format!("discover.{field}[{i}]"),
                format!("`{}` is not a tag: write `tag:` and a name of letters, digits and dashes", t.escape_debug()),
            ));
        }
    }
    if diags.len() > before {
        return None;
    }
    let provenance = Provenance::File { path: file.into(), line: Pos::from(raw.name.referenced).line };
    let discover = MemberDiscovery {
        service_selector: raw.discover.service_selector,
        service_tags: raw.discover.service_tags,
        tailscale_tags: raw.discover.tailscale_tags,
    };
    Some(ResolverSet { name: raw.name.value, scope: raw.scope, domains, members, provenance, discover })
}
