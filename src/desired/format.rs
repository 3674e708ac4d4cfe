//! The desired-state file formats, as serde and schemars types. These structs are the single
//! source of both parsing and the JSON Schemas in `schema/`, so the two cannot disagree.
//! Every file carries `apiVersion` and `kind`; unknown fields are errors, never ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use crate::model::Policy;
use crate::model::RecordType;

pub const API_VERSION: &str = "zonekeeper.dev/v1alpha1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "zonekeeper.dev/v1alpha1")]
    V1Alpha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SettingsKind {
    Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum RecordsKind {
    Records,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ResolverSetKind {
    ResolverSet,
}

/// `zonekeeper.yaml`: who we are, which zones we keep, where they go, and how carefully.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "zonekeeper settings (zonekeeper.yaml)")]
pub struct SettingsFile {
    pub api_version: ApiVersion,
    pub kind: SettingsKind,
    /// The owner id written into every record and file zonekeeper owns. Two instances with
    /// different owner ids never touch each other's records. Lower-case letters, digits, `-`.
    #[schemars(with = "String", regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub owner: Spanned<String>,
    /// What a plan may do: `sync` (create, update, delete), `upsert-only` (never delete),
    /// `create-only` (only add). Required: there is no silent default.
    pub policy: Policy,
    #[serde(default)]
    pub safety: Safety,
    #[serde(default)]
    pub limits: Limits,
    /// Audiences that see different answers for the same name (split horizon). Leave empty
    /// for one implicit view called `default`.
    #[serde(default)]
    #[schemars(with = "Vec<ViewDecl>")]
    pub views: Vec<Spanned<ViewDecl>>,
    #[schemars(with = "Vec<ZoneDecl>")]
    pub zones: Vec<Spanned<ZoneDecl>>,
    /// Targets by name.
    #[schemars(with = "BTreeMap<String, TargetDecl>")]
    pub targets: BTreeMap<String, Spanned<TargetDecl>>,
    /// Discovery from Kubernetes and Tailscale (parsed and checked now; used by later releases).
    #[serde(default)]
    pub discovery: Discovery,
    /// Write what the targets hold back to the repository (`zonekeeper observe --commit`).
    #[serde(default)]
    pub commit_back: Option<CommitBackDecl>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommitBackDecl {
    /// Folder in the repository for the observed state (replaced whole on every commit).
    #[serde(default = "default_observed_path")]
    pub path: String,
    /// Branch the observed state is committed to.
    #[serde(default = "default_observed_branch")]
    pub branch: String,
    #[serde(default = "default_author_name")]
    pub author_name: String,
    #[serde(default = "default_author_email")]
    pub author_email: String,
}

fn default_observed_path() -> String {
    "observed".into()
}
fn default_observed_branch() -> String {
    "zonekeeper-observed".into()
}
fn default_author_name() -> String {
    "zonekeeper".into()
}
fn default_author_email() -> String {
    "zonekeeper@localhost".into()
}

/// Limits on how much one apply may change, like octoDNS's update/delete thresholds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Safety {
    /// Largest share (0–1) of a target's owned records one apply may update.
    #[serde(deserialize_with = "share")]
    #[schemars(range(min = 0, max = 1))]
    pub max_update_share: f64,
    /// Largest share (0–1) of a target's owned records one apply may delete.
    #[serde(deserialize_with = "share")]
    #[schemars(range(min = 0, max = 1))]
    pub max_delete_share: f64,
    /// Below this many owned records the share limits do not apply.
    pub min_owned_records: u32,
}

/// A share between 0 and 1; anything else fails the parse, so the schema check then reports
/// it with its line and field.
fn share<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!("{v} is not a share between 0 and 1")))
    }
}

/// A number in `min..=max`; anything else fails the parse, so the schema check then reports
/// it with its line, field and range.
fn in_range<'de, D: serde::Deserializer<'de>, T>(d: D, min: T, max: T) -> Result<T, D::Error>
where
    T: Deserialize<'de> + PartialOrd + std::fmt::Display,
{
    let v = T::deserialize(d)?;
    if v >= min && v <= max { Ok(v) } else { Err(serde::de::Error::custom(format!("must be between {min} and {max}"))) }
}

fn timeout_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 1, 3600)
}
fn rate_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    in_range(d, 0.01, 100_000.0)
}
fn attempts_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 1, 20)
}
fn concurrency_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 1, 64)
}

impl Default for Safety {
    fn default() -> Self {
        Safety { max_update_share: 0.3, max_delete_share: 0.3, min_owned_records: 10 }
    }
}

/// Protection against hostile or mistaken input files.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// Largest desired-state file read, in bytes (default 16 MiB).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 16 * 1024 * 1024 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ViewDecl {
    pub name: String,
    /// A public view may never receive a name marked internal.
    #[serde(default)]
    pub public: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZoneDecl {
    /// The zone's name, e.g. `home.example`.
    pub name: String,
    /// TTL for records that do not set their own (seconds).
    #[serde(default = "default_ttl", deserialize_with = "number")]
    #[schemars(range(max = 2147483647))]
    pub ttl: u32,
    /// Names of the targets this zone is kept on.
    pub targets: Vec<String>,
    /// Every name of this zone is internal: the planner refuses to put it on a public view.
    #[serde(default)]
    pub internal: bool,
}

/// A whole number written as a number: `ttl: "300"` is a string, as the schema says, and is
/// refused rather than read as 300 (YAML parsers disagree on such coercions; we do not guess).
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    some_number(d)?.ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}

/// Like `number`; an explicit null is no number (the field's default).
fn some_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Plain;
    impl<'de> serde::de::Visitor<'de> for Plain {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(|_| E::custom("number too large"))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(|_| E::custom("number out of range"))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Plain)
        }
    }
    d.deserialize_any(Plain)
}

fn default_ttl() -> u32 {
    300
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetDecl {
    /// A directory of RFC 1035 zone files, one per zone, for CoreDNS's `file` plugin.
    #[serde(rename_all = "camelCase")]
    Zonefile {
        /// Directory, relative to the repository root unless absolute.
        directory: String,
        #[serde(default)]
        view: Option<String>,
        /// Take over an existing zone file that zonekeeper did not write.
        #[serde(default)]
        adopt: bool,
        /// SOA fields for the zones written here.
        #[serde(default)]
        soa: SoaDecl,
    },
    /// A managed block inside a hosts file (A, AAAA, and CNAMEs flattened to addresses).
    #[serde(rename_all = "camelCase")]
    Hosts {
        /// The hosts file, relative to the repository root unless absolute.
        path: String,
        #[serde(default)]
        view: Option<String>,
    },
    /// A Technitium DNS Server, kept in step over its HTTP API. Records we own carry
    /// `zonekeeper:owner=<owner>` in their comments.
    #[serde(rename_all = "camelCase")]
    Technitium {
        /// Base URL, e.g. `http://dns.home.arpa:5380`.
        url: String,
        #[serde(default)]
        view: Option<String>,
        /// The name of the operator's credential for this target, when several are bound to
        /// the URL's origin. The token itself, and where it is read from, are in the operator's
        /// credentials file outside the repository, bound to an origin: a token goes only there.
        #[serde(default)]
        credential: Option<String>,
        /// Kept from the format before credentials were bound: it must name the same variable
        /// as the operator's credential for this origin, or no token is sent. Better left out.
        #[serde(default)]
        token_env: Option<String>,
        /// Kept like tokenEnv: it must name the credential's own file, or no token is sent.
        #[serde(default)]
        token_file: Option<String>,
        /// Kept like tokenEnv: TLS trust for a token is the credential's `caFile`; this must
        /// name the same file.
        #[serde(default)]
        ca_file: Option<String>,
        /// Kept like tokenEnv: honoured only when the credential allows it too. Warned about on
        /// every run.
        #[serde(default)]
        insecure_skip_tls_verify: bool,
        /// Seconds one request may take (1–3600).
        #[serde(default = "default_timeout", deserialize_with = "timeout_range")]
        #[schemars(range(min = 1, max = 3600))]
        timeout_seconds: u32,
        /// Requests per second at most (0.01–100000).
        #[serde(default = "default_rate", deserialize_with = "rate_range")]
        #[schemars(range(min = 0.01, max = 100000))]
        rate_limit: f64,
        /// Tries per request on connection errors, timeouts and 5xx (backoff 1 s, 2 s, 4 s … 30 s; 1–20).
        #[serde(default = "default_attempts", deserialize_with = "attempts_range")]
        #[schemars(range(min = 1, max = 20))]
        attempts: u32,
        /// Names changed side by side at most (changes at one name always run in order; 1–64).
        #[serde(default = "default_concurrency", deserialize_with = "concurrency_range")]
        #[schemars(range(min = 1, max = 64))]
        concurrency: u32,
        /// Create a zone that does not exist yet (as Primary); otherwise a missing zone is an error.
        #[serde(default)]
        create_zones: bool,
        /// Take over records at wanted names that carry no owner marker.
        #[serde(default)]
        adopt: bool,
        /// Also plan the deletion of our records in zones on the server that this target no
        /// longer serves (a zone taken out of zonekeeper.yaml). Costs a zone list and one read
        /// per unserved zone on every plan; needs an owner id no other config uses.
        #[serde(default)]
        clean_orphans: bool,
    },
}

impl TargetDecl {
    pub fn view(&self) -> Option<&str> {
        match self {
            TargetDecl::Zonefile { view, .. }
            | TargetDecl::Hosts { view, .. }
            | TargetDecl::Technitium { view, .. } => view.as_deref(),
        }
    }
}

fn default_timeout() -> u32 {
    10
}
fn default_rate() -> f64 {
    10.0
}
fn default_attempts() -> u32 {
    5
}
fn default_concurrency() -> u32 {
    4
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SoaDecl {
    /// Primary name server (MNAME); default `ns1.<zone>.`, or the zone's first NS record.
    pub primary: Option<String>,
    /// Mailbox of the person responsible (RNAME, `.` for `@`); default `hostmaster.<zone>.`
    pub admin: Option<String>,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Negative-caching TTL (seconds).
    pub minimum: u32,
}

impl Default for SoaDecl {
    fn default() -> Self {
        SoaDecl { primary: None, admin: None, refresh: 3600, retry: 600, expire: 604800, minimum: 300 }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Discovery {
    #[serde(default)]
    pub kubernetes: Option<KubernetesDiscovery>,
    #[serde(default)]
    pub tailscale: Option<TailscaleDiscovery>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesDiscovery {
    /// Kinds to read: Ingress, IngressRoute, HTTPRoute, Service.
    pub kinds: Vec<DiscoveredKind>,
    /// Namespaces to watch; empty for all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Seconds a record whose object vanished is kept before it is deleted.
    #[serde(default)]
    pub orphan_grace_seconds: u64,
    /// Ingress classes to read (`spec.ingressClassName`, or the older
    /// `kubernetes.io/ingress.class` annotation); empty for all.
    #[serde(default)]
    pub ingress_classes: Vec<String>,
    /// Also publish the hosts of an Ingress's `spec.tls[].hosts`, not only its rules' hosts.
    #[serde(default)]
    pub tls_hosts: bool,
    /// TTL of discovered records; an object's `zonekeeper.dev/ttl` annotation overrides it.
    #[serde(default = "default_discovered_ttl")]
    pub ttl: u32,
    /// Where a discovered name's address comes from, in every zone without its own entry in
    /// `zoneAddresses`. Empty: the object's own status (an Ingress's load balancer, the
    /// Gateways an HTTPRoute attaches to).
    #[serde(default)]
    pub address: AddressDecl,
    /// `address`, per zone.
    #[serde(default)]
    pub zone_addresses: BTreeMap<String, AddressDecl>,
    /// The Service annotation whose comma-separated tags a resolver set's
    /// `discover.serviceTags` is matched against.
    #[serde(default = "default_tag_annotation")]
    pub tag_annotation: String,
}

fn default_tag_annotation() -> String {
    "tailscale.com/tags".into()
}

fn default_discovered_ttl() -> u32 {
    300
}

/// Where a discovered name points. At most one of the two; neither means the object's status.
/// An object's `zonekeeper.dev/target` annotation overrides it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressDecl {
    /// Fixed addresses: IPs (A and AAAA records), or one hostname (a CNAME).
    #[serde(default)]
    pub literal: Vec<String>,
    /// `namespace/name` of a Service whose `status.loadBalancer.ingress` is the address: the
    /// ingress controller's (e.g. `traefik/traefik`), so names follow its load balancer.
    /// Traefik IngressRoutes, which have no status of their own, need this or `literal`.
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum DiscoveredKind {
    Ingress,
    IngressRoute,
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    Service,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TailscaleDiscovery {
    /// Tailnet name, or `-` for the token's default tailnet.
    #[serde(default = "default_tailnet")]
    pub tailnet: String,
    /// Zone that device records are made in.
    pub zone: String,
    /// Environment variable that holds the API token or OAuth client secret (never the secret itself).
    pub token_env: Option<String>,
    /// File that holds the API token or OAuth client secret.
    pub token_file: Option<String>,
    #[serde(default)]
    pub orphan_grace_seconds: u64,
}

fn default_tailnet() -> String {
    "-".to_string()
}

/// `records/<zone>.yaml`: the records of one zone.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "zonekeeper records (records/*.yaml)")]
pub struct RecordsFile {
    pub api_version: ApiVersion,
    pub kind: RecordsKind,
    /// The zone these records belong to; it must be declared in zonekeeper.yaml.
    #[schemars(with = "String")]
    pub zone: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Vec<RecordEntry>")]
    pub records: Vec<Spanned<RecordEntry>>,
}

/// One value of a view: its text, or (TXT only) its character-strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ViewValue {
    Text(String),
    Strings(Vec<String>),
}

/// One name and type with its values. Give `value` or `values` for every view, and/or
/// `views` for values that differ per view; a view that gets no values gets no record.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordEntry {
    /// Relative to the zone (`www`, `*.apps`), `@` for the apex, or absolute with a final `.`.
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some_number")]
    #[schemars(range(max = 2147483647))]
    pub ttl: Option<u32>,
    /// One value in presentation form (`192.0.2.1`, `10 mail.example.org.`, text for TXT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// TXT only, instead of `value`/`values`: each value as its character-strings, exactly as
    /// they go on the wire (at most 255 octets each), for a text split where zonekeeper would
    /// not split it: `[["v=DKIM1; k=rsa; ", "p=MIIB…"]]`, `[["txtvers=1", "path=/"]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strings: Option<Box<Vec<Vec<String>>>>,
    /// Values per view name; they replace `value`/`values` in that view. For TXT, an item
    /// may be a list of character-strings, as in `strings`.
    // Boxed, as `strings`: rare fields, and 100,000 entries are held at once while loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<Box<BTreeMap<String, Vec<ViewValue>>>>,
    /// This name must never reach a public view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    /// Lets this one record reach a public view although its zone is internal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_public: Option<bool>,
}

/// `resolvers/<set>.yaml`: a set of DNS resolvers the tailnet should use.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "zonekeeper resolver set (resolvers/*.yaml)")]
pub struct ResolverSetFile {
    pub api_version: ApiVersion,
    pub kind: ResolverSetKind,
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub scope: ResolverScope,
    /// Domains answered by this set when `scope` is `split` (split DNS).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub domains: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<ResolverMember>")]
    pub members: Vec<Spanned<ResolverMember>>,
    #[serde(default)]
    pub discover: ResolverDiscovery,
    #[serde(default)]
    pub health: HealthRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResolverScope {
    /// The tailnet's global nameservers.
    Global,
    /// Split DNS for the listed `domains`.
    Split,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolverMember {
    pub address: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolverDiscovery {
    /// Kubernetes Services whose labels match all of these become members.
    #[serde(default)]
    pub service_selector: BTreeMap<String, String>,
    /// Kubernetes Services whose tag annotation (`discovery.kubernetes.tagAnnotation`, by
    /// default the Tailscale operator's `tailscale.com/tags`) lists any of these tags become
    /// members, with their load balancer's addresses (a Tailscale Service's tailnet IPs).
    #[serde(default)]
    pub service_tags: Vec<String>,
    /// Tailnet devices carrying any of these tags become members.
    #[serde(default)]
    pub tailscale_tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HealthRule {
    pub check: HealthCheck,
    /// Name queried by a `dns` check; default the first split domain or `.`.
    pub query: Option<String>,
    pub interval_seconds: u32,
    pub failures_before_down: u32,
}

impl Default for HealthRule {
    fn default() -> Self {
        HealthRule { check: HealthCheck::Dns, query: None, interval_seconds: 30, failures_before_down: 3 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HealthCheck {
    Dns,
    Tcp,
    None,
}
