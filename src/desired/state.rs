//! From files to a checked desired state: settings, zones with their records, resolver sets.
//! Every problem in every file is collected before anything is returned.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Invalid, Pos};
use super::files::{Files, WorkTree};
use super::format::{
    Discovery, Limits, Policy, RecordEntry, ResolverScope, ResolverSetFile, Safety, SettingsFile, SoaDecl, TargetDecl,
};
use super::records::{self, RecordsDoc};
use super::yaml::{self, DocKind};
use crate::model::{DEFAULT_VIEW, Name, Provenance, RData, RecordSet, RecordType, Wanted};

pub const SETTINGS_FILE: &str = "zonekeeper.yaml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: String,
    pub public: bool,
}

#[derive(Debug, Clone)]
pub struct ZoneSettings {
    pub name: Name,
    pub ttl: u32,
    pub targets: Vec<String>,
    pub internal: bool,
}

#[derive(Debug, Clone)]
pub enum TargetKind {
    Zonefile { directory: PathBuf, adopt: bool, soa: SoaDecl },
    Hosts { path: PathBuf },
    Technitium(TechnitiumSettings),
}

/// Where a secret comes from; the secret itself is read only when the target is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TechnitiumSettings {
    pub url: String,
    pub token: SecretSource,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub timeout_seconds: u32,
    pub rate_limit: f64,
    pub attempts: u32,
    pub concurrency: u32,
    pub create_zones: bool,
    pub adopt: bool,
}

#[derive(Debug, Clone)]
pub struct TargetSettings {
    pub name: String,
    pub view: String,
    pub kind: TargetKind,
}

/// zonekeeper.yaml, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub owner: String,
    pub policy: Policy,
    pub safety: Safety,
    pub limits: Limits,
    pub views: Vec<View>,
    pub zones: Vec<ZoneSettings>,
    pub targets: Vec<TargetSettings>,
    pub discovery: Discovery,
}

impl Settings {
    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }
    pub fn target(&self, name: &str) -> Option<&TargetSettings> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// One record entry of a records file, resolved: values per view, TTL, where it was written.
#[derive(Debug, Clone)]
pub struct DesiredRecord {
    /// The set for every view without its own; `None` when the entry only has per-view values.
    pub default: Option<RecordSet>,
    /// Sets for named views; one with no values means "no record in that view".
    pub per_view: Vec<(String, RecordSet)>,
    pub internal: bool,
    pub allow_public: bool,
    pub provenance: Provenance,
}

impl DesiredRecord {
    /// The set `view` sees, if it sees one.
    pub fn set_in(&self, view: &str) -> Option<&RecordSet> {
        self.per_view
            .iter()
            .find(|(v, _)| v == view)
            .map(|(_, s)| s)
            .or(self.default.as_ref())
            .filter(|s| !s.values.is_empty())
    }

    /// Any of its sets: they all share name and type. Validation guarantees there is one.
    fn any_set(&self) -> Option<&RecordSet> {
        self.default.as_ref().or(self.per_view.first().map(|(_, s)| s))
    }

    pub fn name(&self) -> Option<&Name> {
        self.any_set().map(|s| &s.name)
    }

    pub fn rtype(&self) -> Option<RecordType> {
        self.any_set().map(|s| s.rtype)
    }

    fn all_values(&self) -> impl Iterator<Item = &RData> {
        self.default.iter().chain(self.per_view.iter().map(|(_, s)| s)).flat_map(|s| &s.values)
    }
}

#[derive(Debug, Clone)]
pub struct ResolverSet {
    pub name: String,
    pub scope: ResolverScope,
    pub domains: Vec<Name>,
    pub members: Vec<(IpAddr, Option<String>)>,
    pub file: String,
}

#[derive(Debug, Clone)]
pub struct DesiredState {
    pub root: PathBuf,
    pub settings: Settings,
    /// Records per zone, in file order.
    pub records: BTreeMap<Name, Vec<DesiredRecord>>,
    pub resolver_sets: Vec<ResolverSet>,
}

impl DesiredState {
    /// The record sets of `zone` as the audience `view` should see them.
    pub fn wanted(&self, zone: &Name, view: &str) -> Vec<Wanted<'_>> {
        let Some(records) = self.records.get(zone) else {
            return Vec::new();
        };
        records
            .iter()
            .filter_map(|r| {
                Some(Wanted {
                    set: std::borrow::Cow::Borrowed(r.set_in(view)?),
                    provenance: r.provenance.clone(),
                    internal: r.internal && !r.allow_public,
                })
            })
            .collect()
    }

    pub fn zone(&self, name: &Name) -> Option<&ZoneSettings> {
        self.settings.zones.iter().find(|z| &z.name == name)
    }
}

/// Loads and checks the whole desired state in the working tree of `root`.
pub fn load(root: &Path) -> Result<DesiredState, Invalid> {
    load_from(root, &WorkTree(root.to_path_buf()))
}

/// Loads and checks the whole desired state from `files`; paths in the settings (zone-file
/// directories, hosts files) are relative to `root`.
pub fn load_from(root: &Path, files: &dyn Files) -> Result<DesiredState, Invalid> {
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

    let mut records: BTreeMap<Name, Vec<DesiredRecord>> = BTreeMap::new();
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
            Err(ds) => diags.extend(ds),
        }
    }
    check_zone_rules(&records, &mut diags);
    // Only when every file read cleanly: a zone whose file failed to parse lacks its NS too,
    // and saying so would only bury the real problem.
    if let (Some(s), true) = (&settings, diags.is_empty()) {
        check_zone_files_have_ns(s, &records, &zone_files, &mut diags);
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
                            format!("resolver set `{}` is already defined in {}", set.name, prev.file),
                        ));
                    } else {
                        resolver_sets.push(set);
                    }
                }
            }
            Err(ds) => diags.extend(ds),
        }
    }

    match settings {
        Some(settings) if diags.is_empty() => {
            Ok(DesiredState { root: root.to_path_buf(), settings, records, resolver_sets })
        }
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

/// A path with `.` and `..` resolved lexically, for comparing paths that may not exist yet.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn valid_owner(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn valid_view_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn load_settings(root: &Path, text: &str, diags: &mut Vec<Diagnostic>) -> Option<Settings> {
    let file = SETTINGS_FILE;
    let raw: SettingsFile = match yaml::parse(text, file, DocKind::Settings) {
        Ok(r) => r,
        Err(ds) => {
            diags.extend(ds);
            return None;
        }
    };
    let before = diags.len();
    if !valid_owner(&raw.owner.value) {
        diags.push(Diagnostic::at(
            file,
            raw.owner.referenced,
            "owner",
            format!("`{}` is not a valid owner id: 1–63 lower-case letters, digits and `-`", raw.owner.value),
        ));
    }

    let mut views: Vec<View> = Vec::new();
    for (i, v) in raw.views.iter().enumerate() {
        let path = format!("views[{i}].name");
        if !valid_view_name(&v.value.name) {
            diags.push(Diagnostic::at(
                file,
                v.referenced,
                path,
                format!("`{}` is not a valid view name (letters, digits, `-`, `_`)", v.value.name),
            ));
        } else if views.iter().any(|x| x.name == v.value.name) {
            diags.push(Diagnostic::at(file, v.referenced, path, format!("view `{}` is declared twice", v.value.name)));
        } else {
            views.push(View { name: v.value.name.clone(), public: v.value.public });
        }
    }
    let implicit_view = views.is_empty();
    if implicit_view {
        views.push(View { name: DEFAULT_VIEW.to_string(), public: false });
    }

    let mut targets = Vec::new();
    for (name, t) in &raw.targets {
        let path = format!("targets.{name}");
        if !valid_view_name(name) {
            diags.push(Diagnostic::at(
                file,
                t.referenced,
                &path,
                format!("`{name}` is not a valid target name (letters, digits, `-`, `_`)"),
            ));
            continue;
        }
        let view = match (t.value.view(), implicit_view) {
            (None, true) => DEFAULT_VIEW.to_string(),
            (None, false) => {
                diags.push(Diagnostic::at(
                    file,
                    t.referenced,
                    format!("{path}.view"),
                    "views are declared, so every target must name the view it serves",
                ));
                continue;
            }
            (Some(v), _) if views.iter().any(|x| x.name == v) => v.to_string(),
            (Some(v), _) => {
                diags.push(Diagnostic::at(
                    file,
                    t.referenced,
                    format!("{path}.view"),
                    format!("view `{v}` is not declared in `views`"),
                ));
                continue;
            }
        };
        let kind = match &t.value {
            TargetDecl::Zonefile { directory, adopt, soa, .. } => {
                for (f, v) in [("primary", &soa.primary), ("admin", &soa.admin)] {
                    if let Some(v) = v {
                        if !v.ends_with('.') || Name::parse(v).is_err() {
                            diags.push(Diagnostic::at(
                                file,
                                t.referenced,
                                format!("{path}.soa.{f}"),
                                format!("`{v}` must be a valid absolute name ending in `.`"),
                            ));
                        }
                    }
                }
                TargetKind::Zonefile { directory: root.join(directory), adopt: *adopt, soa: soa.clone() }
            }
            TargetDecl::Hosts { path: p, .. } => TargetKind::Hosts { path: root.join(p) },
            TargetDecl::Technitium {
                url,
                token_env,
                token_file,
                ca_file,
                insecure_skip_tls_verify,
                timeout_seconds,
                rate_limit,
                attempts,
                concurrency,
                create_zones,
                adopt,
                ..
            } => {
                let mut bad = |field: &str, msg: String| {
                    diags.push(Diagnostic::at(file, t.referenced, format!("{path}.{field}"), msg))
                };
                if url.split("://").nth(1).is_some_and(|rest| rest.split('/').next().is_some_and(|h| h.contains('@'))) {
                    bad(
                        "url",
                        "must not carry a user or password (they would show in errors); use tokenEnv or tokenFile"
                            .into(),
                    );
                } else if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(['?', '#', ' '])
                {
                    bad("url", format!("`{url}` should be a base URL like http://dns.home.arpa:5380"));
                }
                if !(*rate_limit > 0.0 && rate_limit.is_finite()) {
                    bad("rateLimit", "must be a number of requests per second above 0".into());
                }
                if *attempts == 0 || *timeout_seconds == 0 || *concurrency == 0 {
                    bad("attempts", "attempts, timeoutSeconds and concurrency must be at least 1".into());
                }
                let token = match (token_env, token_file) {
                    (Some(e), None) => SecretSource::Env(e.clone()),
                    (None, Some(f)) => SecretSource::File(root.join(f)),
                    _ => {
                        bad("tokenEnv", "give exactly one of tokenEnv (an environment variable) or tokenFile (a file) for the API token".into());
                        continue;
                    }
                };
                TargetKind::Technitium(TechnitiumSettings {
                    url: url.trim_end_matches('/').to_string(),
                    token,
                    ca_file: ca_file.as_ref().map(|f| root.join(f)),
                    insecure_skip_tls_verify: *insecure_skip_tls_verify,
                    timeout_seconds: *timeout_seconds,
                    rate_limit: *rate_limit,
                    attempts: *attempts,
                    concurrency: *concurrency,
                    create_zones: *create_zones,
                    adopt: *adopt,
                })
            }
        };
        // Two targets writing the same file would overwrite each other's view of the zone.
        let place = |k: &TargetKind| match k {
            TargetKind::Zonefile { directory, .. } => normalize(directory),
            TargetKind::Hosts { path } => normalize(path),
            TargetKind::Technitium(t) => PathBuf::from(&t.url),
        };
        let here = place(&kind);
        if let Some(other) = targets.iter().find(|o: &&TargetSettings| place(&o.kind) == here) {
            diags.push(Diagnostic::at(
                file,
                t.referenced,
                &path,
                format!("writes to {}, which target `{}` already writes to", here.display(), other.name),
            ));
            continue;
        }
        targets.push(TargetSettings { name: name.clone(), view, kind });
    }

    let mut zones: Vec<ZoneSettings> = Vec::new();
    for (i, z) in raw.zones.iter().enumerate() {
        let path = format!("zones[{i}]");
        let name = match Name::parse(&z.value.name) {
            Ok(n) if !n.is_wildcard() => n,
            Ok(_) => {
                diags.push(Diagnostic::at(
                    file,
                    z.referenced,
                    format!("{path}.name"),
                    "a zone name cannot be a wildcard",
                ));
                continue;
            }
            Err(e) => {
                diags.push(Diagnostic::at(
                    file,
                    z.referenced,
                    format!("{path}.name"),
                    format!("`{}` is not a valid zone name: {e}", z.value.name.escape_debug()),
                ));
                continue;
            }
        };
        if zones.iter().any(|x| x.name == name) {
            diags.push(Diagnostic::at(
                file,
                z.referenced,
                format!("{path}.name"),
                format!("zone `{name}` is declared twice"),
            ));
            continue;
        }
        if z.value.ttl > i32::MAX as u32 {
            diags.push(Diagnostic::at(
                file,
                z.referenced,
                format!("{path}.ttl"),
                "TTL must be at most 2147483647 (RFC 2181)",
            ));
        }
        for (j, t) in z.value.targets.iter().enumerate() {
            if !raw.targets.contains_key(t) {
                diags.push(Diagnostic::at(
                    file,
                    z.referenced,
                    format!("{path}.targets[{j}]"),
                    format!("target `{t}` is not defined in `targets`"),
                ));
            }
        }
        zones.push(ZoneSettings {
            name,
            ttl: z.value.ttl,
            targets: z.value.targets.clone(),
            internal: z.value.internal,
        });
    }

    if diags.len() > before {
        return None;
    }
    Some(Settings {
        owner: raw.owner.value,
        policy: raw.policy,
        safety: raw.safety,
        limits: raw.limits,
        views,
        zones,
        targets,
        discovery: raw.discovery,
    })
}

fn check_records(
    file: &str,
    raw: RecordsDoc,
    settings: Option<&Settings>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Name, Vec<DesiredRecord>)> {
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
    fn check_all(&self, entries: &[(Pos, RecordEntry)], diags: &mut Vec<Diagnostic>) -> Vec<DesiredRecord> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if threads == 1 || entries.len() < PARALLEL_CHECK_MIN {
            return self.check_part(0, entries, diags);
        }
        let per = entries.len().div_ceil(threads);
        let parts: Vec<(Vec<DesiredRecord>, Vec<Diagnostic>)> = std::thread::scope(|s| {
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
    ) -> Vec<DesiredRecord> {
        let mut out = Vec::with_capacity(entries.len());
        for (j, (pos, entry)) in entries.iter().enumerate() {
            if let Some(r) = self.check(first + j, *pos, entry, diags) {
                out.push(r);
            }
        }
        out
    }

    fn check(&self, i: usize, loc: Pos, e: &RecordEntry, diags: &mut Vec<Diagnostic>) -> Option<DesiredRecord> {
        let EntryCheck { file, shared, zone, default_ttl, zone_internal, settings } = self;
        let (file, zone, default_ttl, zone_internal, settings) =
            (*file, *zone, *default_ttl, *zone_internal, *settings);
        let at = |field: &str, msg: String| Diagnostic::at(file, loc, format!("records[{i}]{field}"), msg);
        let before = diags.len();
        let name = match Name::relative_to(&e.name, zone) {
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
        if let Some(ttl) = e.ttl {
            if ttl > i32::MAX as u32 {
                diags.push(at(".ttl", "TTL must be at most 2147483647 (RFC 2181)".into()));
            }
        }
        let parse_all = |field: String, vals: &[String], diags: &mut Vec<Diagnostic>| -> Vec<RData> {
            let mut out = Vec::with_capacity(vals.len());
            for (j, v) in vals.iter().enumerate() {
                match RData::parse(e.rtype, v) {
                    Ok(r) => out.push(r),
                    Err(err) => diags.push(at(&format!("{field}[{j}]"), err.to_string())),
                }
            }
            out
        };
        let values = match (&e.value, &e.values) {
            (Some(_), Some(_)) => {
                diags.push(at("", "give `value` or `values`, not both".into()));
                None
            }
            (Some(v), None) => Some(parse_all(".value".into(), std::slice::from_ref(v), diags)),
            (None, Some(vs)) => Some(parse_all(".values".into(), vs, diags)),
            (None, None) => None,
        };
        let mut per_view = Vec::new();
        for (view, vals) in e.views.iter().flatten() {
            if let Some(s) = settings {
                if s.view(view).is_none() {
                    diags.push(at(
                        &format!(".views.{view}"),
                        format!("view `{view}` is not declared in zonekeeper.yaml"),
                    ));
                }
            }
            per_view.push((view.clone(), parse_all(format!(".views.{view}"), vals, diags)));
        }
        if values.is_none() && per_view.is_empty() {
            diags.push(at("", "no values: give `value`, `values` or `views`".into()));
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
        Some(DesiredRecord {
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
fn check_zone_files_have_ns(
    settings: &Settings,
    records: &BTreeMap<Name, Vec<DesiredRecord>>,
    zone_files: &BTreeMap<Name, (String, Pos)>,
    diags: &mut Vec<Diagnostic>,
) {
    for zone in &settings.zones {
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
fn check_technitium_text(
    settings: &Settings,
    records: &BTreeMap<Name, Vec<DesiredRecord>>,
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
                RData::Caa(c) => !c.value.is_ascii(),
                _ => false,
            });
            if bad {
                let Provenance::File { path, line } = &r.provenance;
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
fn check_zone_rules(records: &BTreeMap<Name, Vec<DesiredRecord>>, diags: &mut Vec<Diagnostic>) {
    for recs in records.values() {
        let mut seen: HashMap<(&Name, RecordType), &Provenance> = HashMap::with_capacity(recs.len());
        let cname_at: BTreeSet<&Name> =
            recs.iter().filter(|r| r.rtype() == Some(RecordType::Cname)).filter_map(|r| r.name()).collect();
        for r in recs {
            let (Some(name), Some(rtype)) = (r.name(), r.rtype()) else { continue };
            let Provenance::File { path, line } = &r.provenance;
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
            Ok(ip) => members.push((ip, m.value.name.clone())),
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
    if diags.len() > before {
        return None;
    }
    Some(ResolverSet { name: raw.name.value, scope: raw.scope, domains, members, file: file.to_string() })
}
