//! From the objects a cluster holds to the records they ask for: pure, so that every rule
//! (which names, which zone, which address, who wins a name) is tested on data alone.
//!
//! The rules, in the order they apply:
//! 1. An object is read when its kind is listed, its namespace passes the filter, its Ingress
//!    class passes the filter, and it does not carry `zonekeeper.dev/exclude: "true"`.
//! 2. Its names: an Ingress's `spec.rules[].host` (and `spec.tls[].hosts` with `tlsHosts`),
//!    an IngressRoute's `Host` matchers (parsed, see `traefik_rule`), an HTTPRoute's
//!    `spec.hostnames`, a Service's `zonekeeper.dev/hostname` (comma-separated).
//! 3. A name belongs to the configured zone with the longest matching suffix; a name in no
//!    zone is ignored and counted.
//! 4. Its address: the object's `zonekeeper.dev/target`; for a Service, its own load
//!    balancer; else the zone's entry in `zoneAddresses`, else `address`; else the object's
//!    own status (an Ingress's load balancer, the `status.addresses` of the Gateways an
//!    HTTPRoute names). IPs become A and AAAA records, a hostname a CNAME.
//! 5. Two objects claiming one name with different addresses: the oldest object (by
//!    `creationTimestamp`, then kind, namespace and name) keeps it, and the claim is reported
//!    on both. With the same address, one record stands, with the oldest object's provenance.
//!
//! Resolver members: a Service (read when rule 1 lets it) joins every resolver set whose
//! `discover` takes it: all of `serviceSelector`'s labels match (when it has any), or its
//! tag annotation (`tagAnnotation`, default `tailscale.com/tags`, comma-separated) lists one
//! of `serviceTags`. Each IP of its load balancer is a member (a Tailscale Service's tailnet
//! IPs; its hostname entry, the MagicDNS name, cannot be a nameserver), named by its
//! `tailscale.com/hostname`, else `<namespace>-<name>` as the operator names its device. A
//! Service that matches with no IP yet is reported on itself and joins nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DynamicObject;
use serde_json::Value;

use super::traefik_rule;
use crate::desired::format::{AddressDecl, DiscoveredKind, KubernetesDiscovery};
use crate::model::{Name, Provenance, RData, RecordSet, RecordType};
use crate::wanted::{Member, ResolverSet, WantedRecord, WantedState};

pub const ANNOTATION_PREFIX: &str = "zonekeeper.dev/";

/// Everything the source read, kind by kind. Traefik and Gateway API objects are read as
/// dynamic objects: their CRDs come in several API groups and versions.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Objects {
    #[serde(default)]
    pub ingresses: Vec<Ingress>,
    #[serde(default)]
    pub ingress_routes: Vec<DynamicObject>,
    #[serde(default)]
    pub http_routes: Vec<DynamicObject>,
    #[serde(default)]
    pub gateways: Vec<DynamicObject>,
    #[serde(default)]
    pub services: Vec<Service>,
}

impl Objects {
    /// How many objects of each kind each namespace holds.
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        let mut count = |kind: &str, ns: Option<&String>| {
            *out.entry((kind.to_string(), ns.cloned().unwrap_or_default())).or_default() += 1;
        };
        self.ingresses.iter().for_each(|o| count("Ingress", o.metadata.namespace.as_ref()));
        self.services.iter().for_each(|o| count("Service", o.metadata.namespace.as_ref()));
        self.ingress_routes.iter().for_each(|o| count("IngressRoute", o.metadata.namespace.as_ref()));
        self.http_routes.iter().for_each(|o| count("HTTPRoute", o.metadata.namespace.as_ref()));
        self.gateways.iter().for_each(|o| count("Gateway", o.metadata.namespace.as_ref()));
        out
    }
}

/// Something wrong with one object, reported on it; the rest still publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub object: Provenance,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// What the objects ask for.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub wanted: WantedState,
    pub problems: Vec<Problem>,
    /// Names in no configured zone, ignored.
    pub outside_zones: usize,
}

/// Where an object's names point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Address {
    Ips(Vec<IpAddr>),
    Host(Name),
}

/// What an object's own status gives as its address, and how far it counts.
enum Status {
    /// It has no status (an IngressRoute): the settings or an annotation must give one.
    Absent,
    /// Used when the settings give none (an Ingress's load balancer, a route's Gateways).
    Fallback(Result<Option<Address>, String>),
    /// Used before the settings: a Service's names are its own load balancer's.
    Own(Result<Option<Address>, String>),
}

/// One object's claim on one name.
struct Claim {
    zone: Name,
    name: Name,
    address: Address,
    ttl: u32,
    /// Oldest first: `creationTimestamp`, then the provenance.
    age: (String, Provenance),
}

/// The common part of every object.
struct Object<'a> {
    kind: &'static str,
    provenance: Provenance,
    namespace: &'a str,
    annotations: Option<&'a BTreeMap<String, String>>,
    created: String,
}

impl<'a> Object<'a> {
    fn of(kind: &'static str, meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Object<'a> {
        let namespace = meta.namespace.as_deref().unwrap_or("default");
        Object {
            kind,
            provenance: Provenance::Kubernetes {
                resource_kind: Arc::from(kind),
                namespace: Arc::from(namespace),
                name: Arc::from(meta.name.as_deref().unwrap_or("")),
            },
            namespace,
            annotations: meta.annotations.as_ref(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
        }
    }

    fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations?.get(&format!("{ANNOTATION_PREFIX}{key}")).map(|s| s.trim())
    }
}

/// What `objects` ask for: records in `zones`, and members of those of `sets` that take
/// Services in.
pub fn discover(cfg: &KubernetesDiscovery, zones: &[Name], sets: &[ResolverSet], objects: &Objects) -> Discovered {
    let mut d = Discovery { cfg, zones, objects, out: Discovered::default(), claims: Vec::new() };
    for set in sets.iter().filter(|s| s.discover.finds_services()) {
        d.members(set);
    }
    if cfg.kinds.contains(&DiscoveredKind::Ingress) {
        for i in &objects.ingresses {
            d.ingress(i);
        }
    }
    if cfg.kinds.contains(&DiscoveredKind::IngressRoute) {
        for r in &objects.ingress_routes {
            d.ingress_route(r);
        }
    }
    if cfg.kinds.contains(&DiscoveredKind::HttpRoute) {
        for r in &objects.http_routes {
            d.http_route(r);
        }
    }
    if cfg.kinds.contains(&DiscoveredKind::Service) {
        for s in &objects.services {
            d.service(s);
        }
    }
    d.finish()
}

struct Discovery<'a> {
    cfg: &'a KubernetesDiscovery,
    zones: &'a [Name],
    objects: &'a Objects,
    out: Discovered,
    claims: Vec<Claim>,
}

impl<'a> Discovery<'a> {
    /// Whether `o` is read at all (rule 1, but for the class filter).
    fn wanted(&self, o: &Object) -> bool {
        let in_namespace = self.cfg.namespaces.is_empty() || self.cfg.namespaces.iter().any(|n| n == o.namespace);
        in_namespace && o.annotation("exclude") != Some("true")
    }

    fn problem(&mut self, o: &Object, message: impl Into<String>) {
        self.out.problems.push(Problem { object: o.provenance.clone(), message: message.into() });
    }

    fn ingress(&mut self, i: &Ingress) {
        let o = Object::of("Ingress", &i.metadata);
        if !self.wanted(&o) {
            return;
        }
        let spec = i.spec.as_ref();
        if !self.cfg.ingress_classes.is_empty() {
            let class = spec.and_then(|s| s.ingress_class_name.as_deref()).or_else(|| {
                i.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class")).map(String::as_str)
            });
            if !class.is_some_and(|c| self.cfg.ingress_classes.iter().any(|w| w == c)) {
                return;
            }
        }
        let mut hosts: Vec<&str> =
            spec.and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.as_deref()).collect();
        if self.cfg.tls_hosts {
            let tls = spec.and_then(|s| s.tls.as_ref()).into_iter().flatten();
            hosts.extend(tls.flat_map(|t| t.hosts.iter().flatten()).map(String::as_str));
        }
        let status = i
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .map(|e| (e.ip.as_deref(), e.hostname.as_deref()));
        let status = addresses(status);
        self.claim_all(&o, &hosts, Status::Fallback(status));
    }

    fn ingress_route(&mut self, r: &DynamicObject) {
        let o = Object::of("IngressRoute", &r.metadata);
        if !self.wanted(&o) {
            return;
        }
        let routes = r.data.pointer("/spec/routes").and_then(Value::as_array);
        let mut hosts = Vec::new();
        for (i, route) in routes.into_iter().flatten().enumerate() {
            let Some(rule) = route.get("match").and_then(Value::as_str) else { continue };
            match traefik_rule::parse(rule) {
                Ok(parsed) => {
                    let found = traefik_rule::hosts(&parsed);
                    for skipped in found.skipped {
                        self.problem(&o, format!("routes[{i}]: {skipped} names no fixed host; skipped"));
                    }
                    hosts.extend(found.hosts);
                }
                Err(e) => self.problem(&o, format!("routes[{i}].match is not a rule Traefik accepts: {e}")),
            }
        }
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        // An IngressRoute has no status: its address is the entrypoint Service's.
        self.claim_all(&o, &hosts, Status::Absent);
    }

    fn http_route(&mut self, r: &DynamicObject) {
        let o = Object::of("HTTPRoute", &r.metadata);
        if !self.wanted(&o) {
            return;
        }
        let hostnames = r.data.pointer("/spec/hostnames").and_then(Value::as_array);
        let hosts: Vec<&str> = hostnames.into_iter().flatten().filter_map(Value::as_str).collect();
        let parents = r.data.pointer("/spec/parentRefs").and_then(Value::as_array);
        let mut status = Vec::new();
        for p in parents.into_iter().flatten() {
            let kind = p.get("kind").and_then(Value::as_str).unwrap_or("Gateway");
            let group = p.get("group").and_then(Value::as_str).unwrap_or("gateway.networking.k8s.io");
            if kind != "Gateway" || group != "gateway.networking.k8s.io" {
                continue;
            }
            let ns = p.get("namespace").and_then(Value::as_str).unwrap_or(o.namespace);
            let Some(name) = p.get("name").and_then(Value::as_str) else { continue };
            let gateway = self.objects.gateways.iter().find(|g| {
                g.metadata.name.as_deref() == Some(name) && g.metadata.namespace.as_deref().unwrap_or("default") == ns
            });
            let entries = gateway.and_then(|g| g.data.pointer("/status/addresses")).and_then(Value::as_array);
            for a in entries.into_iter().flatten() {
                let value = a.get("value").and_then(Value::as_str);
                match a.get("type").and_then(Value::as_str).unwrap_or("IPAddress") {
                    "Hostname" => status.push((None, value)),
                    _ => status.push((value, None)),
                }
            }
        }
        let status = addresses(status.into_iter());
        self.claim_all(&o, &hosts, Status::Fallback(status));
    }

    /// The Services `set` takes in, as its members.
    fn members(&mut self, set: &ResolverSet) {
        let mut members: Vec<Member> = Vec::new();
        for s in &self.objects.services {
            let o = Object::of("Service", &s.metadata);
            if !self.wanted(&o) || !joins(set, s, &self.cfg.tag_annotation) {
                continue;
            }
            let ips: Result<Vec<IpAddr>, String> = service_lb(s)
                .filter_map(|(ip, _)| ip.filter(|ip| !ip.is_empty()))
                .map(|ip| ip.parse::<IpAddr>().map_err(|_| format!("the load balancer's address `{ip}` is not an IP")))
                .collect();
            let ips = match ips {
                Ok(ips) if ips.is_empty() => {
                    let why = "its load balancer has no IP yet (a Tailscale Service gets its tailnet IP once its proxy has joined)";
                    self.problem(&o, format!("not a member of resolver set `{}`: {why}", set.name));
                    continue;
                }
                Ok(ips) => ips,
                Err(e) => {
                    self.problem(&o, format!("not a member of resolver set `{}`: {e}", set.name));
                    continue;
                }
            };
            let meta = &s.metadata;
            let name = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get("tailscale.com/hostname"))
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| format!("{}-{}", o.namespace, meta.name.as_deref().unwrap_or("")));
            for address in ips {
                if !members.iter().any(|m| m.address == address) {
                    members.push(Member { address, name: Some(name.clone()), provenance: o.provenance.clone() });
                }
            }
        }
        members.sort_by_key(|m| m.address);
        self.out.wanted.resolver_sets.push(ResolverSet { members, discover: Default::default(), ..set.clone() });
    }

    fn service(&mut self, s: &Service) {
        let o = Object::of("Service", &s.metadata);
        if !self.wanted(&o) {
            return;
        }
        let Some(names) = o.annotation("hostname") else { return };
        let hosts: Vec<&str> = names.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
        self.claim_all(&o, &hosts, Status::Own(service_status(s)));
    }

    /// Claims every host of `o` (rules 3 and 4).
    fn claim_all(&mut self, o: &Object, hosts: &[&str], status: Status) {
        let ttl = match o.annotation("ttl").map(str::parse::<u32>) {
            None => self.cfg.ttl,
            Some(Ok(t)) if t > 0 => t,
            Some(_) => {
                self.problem(o, format!("{ANNOTATION_PREFIX}ttl must be a number of seconds above 0"));
                return;
            }
        };
        let mut seen = Vec::new();
        for host in hosts {
            let name = match Name::parse(host) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(o, format!("host `{}` is not a valid name: {e}", host.escape_debug()));
                    continue;
                }
            };
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let Some(zone) = self.zones.iter().filter(|z| name.is_in(z)).max_by_key(|z| z.as_str().len()) else {
                self.out.outside_zones += 1;
                continue;
            };
            let address = match self.address(o, zone, &status) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    self.problem(o, format!("{name} has no address yet (the load balancer has not given one)"));
                    continue;
                }
                Err(e) => {
                    self.problem(o, format!("{name}: {e}"));
                    continue;
                }
            };
            if matches!(address, Address::Host(_)) && &name == zone {
                self.problem(
                    o,
                    format!("{name} is the zone's apex, which cannot be a CNAME to a load balancer's hostname"),
                );
                continue;
            }
            let age = (o.created.clone(), o.provenance.clone());
            self.claims.push(Claim { zone: zone.clone(), name, address, ttl, age });
        }
    }

    /// Rule 4.
    fn address(&self, o: &Object, zone: &Name, status: &Status) -> Result<Option<Address>, String> {
        if let Some(target) = o.annotation("target") {
            let parts: Vec<&str> = target.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            return literal(&parts).map(Some).map_err(|e| format!("{ANNOTATION_PREFIX}target: {e}"));
        }
        if let Status::Own(own) = status {
            return own.clone();
        }
        let decl = self.cfg.zone_addresses.get(zone.as_str()).unwrap_or(&self.cfg.address);
        if !decl.literal.is_empty() {
            let parts: Vec<&str> = decl.literal.iter().map(String::as_str).collect();
            return literal(&parts).map(Some).map_err(|e| format!("discovery.kubernetes address: {e}"));
        }
        if let Some(service) = &decl.service {
            return self.service_address(service);
        }
        match status {
            Status::Fallback(s) | Status::Own(s) => s.clone(),
            Status::Absent => Err(format!(
                "an {} has no status to take an address from: set discovery.kubernetes.address.service to the entrypoint's Service (e.g. traefik/traefik), or {ANNOTATION_PREFIX}target",
                o.kind
            )),
        }
    }

    fn service_address(&self, service: &str) -> Result<Option<Address>, String> {
        let Some((ns, name)) = service.split_once('/') else {
            return Err(format!("the address Service `{service}` must be written namespace/name"));
        };
        let found = self.objects.services.iter().find(|s| {
            s.metadata.name.as_deref() == Some(name) && s.metadata.namespace.as_deref().unwrap_or("default") == ns
        });
        match found {
            Some(s) => service_status(s),
            None => Err(format!("the address Service {service} does not exist")),
        }
    }

    /// Rule 5, then the records.
    fn finish(mut self) -> Discovered {
        self.claims.sort_by(|a, b| (&a.zone, &a.name, &a.age).cmp(&(&b.zone, &b.name, &b.age)));
        let mut i = 0;
        while i < self.claims.len() {
            let first = &self.claims[i];
            let mut j = i + 1;
            while j < self.claims.len() && self.claims[j].zone == first.zone && self.claims[j].name == first.name {
                let other = &self.claims[j];
                if other.address != first.address {
                    let (kept, lost) = (&first.age.1, &other.age.1);
                    let message = |who: &Provenance, verb: &str| {
                        format!("{} is also claimed by {who} with another address; {verb}", first.name)
                    };
                    let a = Problem { object: kept.clone(), message: message(lost, "this older object keeps it") };
                    let b = Problem { object: lost.clone(), message: message(kept, "the older object keeps it") };
                    self.out.problems.extend([a, b]);
                }
                j += 1;
            }
            let zone = self.out.wanted.zones.entry(first.zone.clone()).or_default();
            zone.extend(records(first));
            i = j;
        }
        self.out
    }
}

/// The records of one claim: A and AAAA sets for IPs, a CNAME for a hostname.
fn records(c: &Claim) -> Vec<WantedRecord> {
    let set =
        |rtype, values| WantedRecord::everywhere(RecordSet::new(c.name.clone(), rtype, c.ttl, values), c.age.1.clone());
    match &c.address {
        Address::Host(h) => vec![set(RecordType::Cname, vec![RData::Cname(h.clone())])],
        Address::Ips(ips) => {
            let v4: Vec<RData> = ips
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(a) => Some(RData::A(*a)),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6: Vec<RData> = ips
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(a) => Some(RData::Aaaa(*a)),
                    IpAddr::V4(_) => None,
                })
                .collect();
            let mut out = Vec::new();
            if !v4.is_empty() {
                out.push(set(RecordType::A, v4));
            }
            if !v6.is_empty() {
                out.push(set(RecordType::Aaaa, v6));
            }
            out
        }
    }
}

/// Whether `set`'s `discover` takes the Service `s` in.
fn joins(set: &ResolverSet, s: &Service, tag_annotation: &str) -> bool {
    let rule = &set.discover;
    let labels = s.metadata.labels.as_ref();
    let selected = !rule.service_selector.is_empty()
        && rule.service_selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let tags = s.metadata.annotations.as_ref().and_then(|a| a.get(tag_annotation));
    let tagged = tags.is_some_and(|t| t.split(',').map(str::trim).any(|t| rule.service_tags.iter().any(|w| w == t)));
    selected || tagged
}

/// A Service's load balancer entries, as (ip, hostname).
fn service_lb(s: &Service) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .map(|e| (e.ip.as_deref(), e.hostname.as_deref()))
}

fn service_status(s: &Service) -> Result<Option<Address>, String> {
    addresses(service_lb(s))
}

/// A load balancer's entries as one address: its IPs, else its first hostname.
fn addresses<'s>(entries: impl Iterator<Item = (Option<&'s str>, Option<&'s str>)>) -> Result<Option<Address>, String> {
    let mut ips = Vec::new();
    let mut hosts = Vec::new();
    for (ip, host) in entries {
        if let Some(ip) = ip.filter(|s| !s.is_empty()) {
            ips.push(ip.parse::<IpAddr>().map_err(|_| format!("the load balancer's address `{ip}` is not an IP"))?);
        } else if let Some(h) = host.filter(|s| !s.is_empty()) {
            hosts.push(Name::parse(h).map_err(|e| format!("the load balancer's hostname `{h}`: {e}"))?);
        }
    }
    Ok(if !ips.is_empty() {
        ips.sort();
        ips.dedup();
        Some(Address::Ips(ips))
    } else {
        hosts.sort();
        hosts.into_iter().next().map(Address::Host)
    })
}

/// A written address: IPs, or exactly one hostname.
fn literal(parts: &[&str]) -> Result<Address, String> {
    if let [one] = parts
        && one.parse::<IpAddr>().is_err()
    {
        return Name::parse(one.trim_end_matches('.')).map(Address::Host).map_err(|e| format!("`{one}`: {e}"));
    }
    let mut ips = parts
        .iter()
        .map(|p| p.parse::<IpAddr>().map_err(|_| format!("`{p}` is not an IP (give IPs, or one hostname)")))
        .collect::<Result<Vec<_>, _>>()?;
    if ips.is_empty() {
        return Err("no address given".into());
    }
    ips.sort();
    ips.dedup();
    Ok(Address::Ips(ips))
}

/// The address settings, for a check at load time.
pub fn check_address(decl: &AddressDecl) -> Result<(), String> {
    match (decl.literal.is_empty(), &decl.service) {
        (false, Some(_)) => Err("give `literal` or `service`, not both".into()),
        (false, None) => literal(&decl.literal.iter().map(String::as_str).collect::<Vec<_>>()).map(|_| ()),
        (true, Some(s)) if s.split_once('/').is_none_or(|(a, b)| a.is_empty() || b.is_empty()) => {
            Err(format!("service `{s}` must be written namespace/name"))
        }
        _ => Ok(()),
    }
}
