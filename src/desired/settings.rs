//! zonekeeper.yaml, checked: views, zones, targets, policy and limits, with every problem
//! located. Paths in it are resolved against the repository root.

use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::format::{CommitBackDecl, Discovery, Limits, Policy, Safety, SettingsFile, SoaDecl, TargetDecl};
use super::yaml::{self, DocKind};
use crate::model::{DEFAULT_VIEW, Name};

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
    /// Where the zone is declared in zonekeeper.yaml.
    pub declared: super::diagnostic::Pos,
}

#[derive(Debug, Clone)]
pub enum TargetKind {
    Zonefile { directory: PathBuf, adopt: bool, soa: SoaDecl },
    Hosts { path: PathBuf },
    Technitium(TechnitiumSettings),
}

/// Where a secret is read from: an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TechnitiumSettings {
    pub url: String,
    /// The credential the target names (`credential:`), picked among those the operator bound
    /// to the URL's origin.
    pub credential: Option<String>,
    /// `tokenEnv`/`tokenFile` as the repository states them: they may only repeat what the
    /// operator's credential says (crate::secrets), never choose where a token is read from.
    pub token: Option<SecretSource>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub timeout_seconds: u32,
    pub rate_limit: f64,
    pub attempts: u32,
    pub concurrency: u32,
    pub create_zones: bool,
    pub adopt: bool,
    pub clean_orphans: bool,
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
    pub commit_back: Option<CommitBackDecl>,
}

impl Settings {
    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }
    pub fn target(&self, name: &str) -> Option<&TargetSettings> {
        self.targets.iter().find(|t| t.name == name)
    }
}

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

pub(super) fn valid_view_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn load_settings(root: &Path, text: &str, diags: &mut Vec<Diagnostic>) -> Option<Settings> {
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
                    if let Some(v) = v
                        && (!v.ends_with('.') || Name::parse(v).is_err())
                    {
                        diags.push(Diagnostic::at(
                            file,
                            t.referenced,
                            format!("{path}.soa.{f}"),
                            format!("`{v}` must be a valid absolute name ending in `.`"),
                        ));
                    }
                }
                TargetKind::Zonefile { directory: root.join(directory), adopt: *adopt, soa: soa.clone() }
            }
            TargetDecl::Hosts { path: p, .. } => TargetKind::Hosts { path: root.join(p) },
            TargetDecl::Technitium {
                url,
                credential,
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
                clean_orphans,
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
                    bad("url", "must be a base URL like https://dns.home.arpa:5380 (no path query or fragment)".into());
                }
                // The parse holds these to the schema's ranges; a settings value made in code
                // must not reach the client's pacing (1/rate) or a zero-try loop either.
                if !(0.01..=100_000.0).contains(rate_limit) {
                    bad("rateLimit", "must be between 0.01 and 100000 requests per second".into());
                }
                if *attempts == 0 || *timeout_seconds == 0 || *concurrency == 0 {
                    bad("attempts", "attempts, timeoutSeconds and concurrency must be at least 1".into());
                }
                let token = match (token_env, token_file) {
                    (Some(e), None) => Some(SecretSource::Env(e.clone())),
                    (None, Some(f)) => Some(SecretSource::File(root.join(f))),
                    (None, None) => None,
                    (Some(_), Some(_)) => {
                        bad("tokenEnv", "give at most one of tokenEnv or tokenFile (and better neither: the credentials file says where the token is)".into());
                        continue;
                    }
                };
                if credential.as_deref().is_some_and(|c| !valid_view_name(c)) {
                    bad("credential", "must be a credential name (letters, digits, `-`, `_`)".into());
                }
                TargetKind::Technitium(TechnitiumSettings {
                    url: url.trim_end_matches('/').to_string(),
                    credential: credential.clone(),
                    token,
                    ca_file: ca_file.as_ref().map(|f| root.join(f)),
                    insecure_skip_tls_verify: *insecure_skip_tls_verify,
                    timeout_seconds: *timeout_seconds,
                    rate_limit: *rate_limit,
                    attempts: *attempts,
                    concurrency: *concurrency,
                    create_zones: *create_zones,
                    adopt: *adopt,
                    clean_orphans: *clean_orphans,
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
            declared: z.referenced.into(),
        });
    }

    if let Some(cb) = &raw.commit_back {
        let first = cb.path.split('/').next().unwrap_or_default();
        let bad_path = cb.path.is_empty()
            || cb.path.starts_with('/')
            || cb.path.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            // the observed state is replaced whole: it must never be where the desired state is
            || matches!(first, "records" | "resolvers" | "zonekeeper.yaml" | "schema" | ".git");
        if bad_path {
            diags.push(Diagnostic::at(
                file,
                raw.owner.referenced,
                "commitBack.path",
                format!("`{}` must be a relative folder without `.` or `..`, and not records/, resolvers/ or zonekeeper.yaml", cb.path),
            ));
        }
        let bad_branch = cb.branch.is_empty()
            || cb.branch.starts_with(['-', '/', '.'])
            || cb.branch.contains("..")
            || cb.branch.chars().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.')));
        if bad_branch {
            diags.push(Diagnostic::at(
                file,
                raw.owner.referenced,
                "commitBack.branch",
                format!("`{}` is not a usable branch name", cb.branch),
            ));
        }
    }
    if let Some(k) = &raw.discovery.kubernetes {
        check_kubernetes(file, k, &zones, diags);
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
        commit_back: raw.commit_back,
    })
}

/// The addresses of Kubernetes discovery: each one readable, and each zone named a declared one.
fn check_kubernetes(
    file: &str,
    k: &super::format::KubernetesDiscovery,
    zones: &[ZoneSettings],
    diags: &mut Vec<Diagnostic>,
) {
    use crate::sources::kubernetes::discover::check_address;
    let at = |path: String, message: String| Diagnostic { file: file.into(), line: 0, column: 0, path, message };
    if let Err(e) = check_address(&k.address) {
        diags.push(at("discovery.kubernetes.address".into(), e));
    }
    for (zone, decl) in &k.zone_addresses {
        let path = format!("discovery.kubernetes.zoneAddresses.{zone}");
        if !Name::parse(zone).is_ok_and(|z| zones.iter().any(|d| d.name == z)) {
            diags.push(at(path.clone(), format!("`{zone}` is not a zone declared under `zones`")));
        }
        if let Err(e) = check_address(decl) {
            diags.push(at(path, e));
        }
    }
    if k.ttl == 0 {
        diags.push(at("discovery.kubernetes.ttl".into(), "must be at least 1 second".into()));
    }
}
