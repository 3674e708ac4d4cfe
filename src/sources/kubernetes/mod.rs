//! Kubernetes as a source of wanted records: Ingress, Traefik IngressRoute, Gateway API
//! HTTPRoute (with the Gateways it attaches to) and annotated Services.
//!
//! The cluster is the one the process's environment names (in-cluster service account, or
//! `KUBECONFIG`), never one the repository names: the repository is untrusted input and
//! must not choose where a credential is sent. `plan` and `apply` list every kind once;
//! `run` watches them (`live.rs`).

pub mod discover;
mod live;
pub mod traefik_rule;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use std::sync::Arc;

use super::{Reading, Snapshot, Source};
use crate::desired::format::{DiscoveredKind, KubernetesDiscovery};
use crate::model::Name;
use crate::wanted::{Member, ResolverSet};

pub const SOURCE: &str = "kubernetes";

/// A custom resource kind, in the API groups and versions it may be served as, preferred first.
struct Custom {
    kind: &'static str,
    plural: &'static str,
    versions: &'static [(&'static str, &'static str)],
}

const INGRESS_ROUTE: Custom = Custom {
    kind: "IngressRoute",
    plural: "ingressroutes",
    versions: &[("traefik.io", "v1alpha1"), ("traefik.containo.us", "v1alpha1")],
};
const HTTP_ROUTE: Custom = Custom {
    kind: "HTTPRoute",
    plural: "httproutes",
    versions: &[("gateway.networking.k8s.io", "v1"), ("gateway.networking.k8s.io", "v1beta1")],
};
const GATEWAY: Custom = Custom {
    kind: "Gateway",
    plural: "gateways",
    versions: &[("gateway.networking.k8s.io", "v1"), ("gateway.networking.k8s.io", "v1beta1")],
};

pub struct KubernetesSource {
    cfg: KubernetesDiscovery,
    zones: Vec<Name>,
    /// The resolver sets Services may join (those whose `discover` finds Services).
    sets: Vec<ResolverSet>,
    /// The members found at the last read, to log what changed.
    members: Option<Vec<(String, Vec<Member>)>>,
    client: Option<kube::Client>,
    /// Watching (for `run`), once started; `None` while listing once, or not started yet.
    live: Option<live::Live>,
    watch: bool,
    changed: Arc<tokio::sync::watch::Sender<()>>,
}

impl KubernetesSource {
    /// A source that lists the cluster on every snapshot, or (`watch`) keeps reflectors and
    /// signals every change.
    pub fn new(cfg: KubernetesDiscovery, zones: Vec<Name>, sets: Vec<ResolverSet>, watch: bool) -> KubernetesSource {
        let (changed, _) = tokio::sync::watch::channel(());
        let sets = sets.into_iter().filter(|s| s.discover.finds_services()).collect();
        KubernetesSource {
            cfg,
            zones,
            sets,
            members: None,
            client: None,
            live: None,
            watch,
            changed: Arc::new(changed),
        }
    }

    /// Services are read whenever an address may come from one, or a resolver set may take
    /// them in, not only for their own names.
    fn needs_services(&self) -> bool {
        let cfg = &self.cfg;
        cfg.address.service.is_some()
            || cfg.zone_addresses.values().any(|a| a.service.is_some())
            || cfg.kinds.contains(&DiscoveredKind::Service)
            || !self.sets.is_empty()
    }

    /// Logs the resolver members Services give, at the first read (the ones already there
    /// at start-up) and whenever they change.
    fn log_members(&mut self, found: &crate::wanted::WantedState) {
        let now: Vec<(String, Vec<Member>)> =
            found.resolver_sets.iter().map(|s| (s.name.clone(), s.members.clone())).collect();
        if self.members.as_ref() == Some(&now) {
            return;
        }
        for (set, members) in &now {
            let listed: Vec<String> = members
                .iter()
                .map(|m| format!("{} ({}, {})", m.address, m.name.as_deref().unwrap_or("-"), m.provenance))
                .collect();
            tracing::info!(set = %set, count = members.len(), members = %listed.join(", "), "resolver members from the cluster");
        }
        self.members = Some(now);
    }

    async fn client(&mut self) -> Result<kube::Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot reach the Kubernetes API (in-cluster service account, or KUBECONFIG): {e}"))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn read(&mut self) -> Result<Snapshot, String> {
        let client = self.client().await?;
        let mut notes = Vec::new();
        let (objects, problem) = if self.watch {
            let services = self.needs_services();
            let live = self
                .live
                .get_or_insert_with(|| live::Live::start(client, self.cfg.clone(), services, self.changed.clone()));
            live.objects(&mut notes).await?
        } else {
            (self.list(&client, &mut notes).await?, None)
        };
        let found = discover::discover(&self.cfg, &self.zones, &self.sets, &objects);
        self.log_members(&found.wanted);
        notes.extend(found.problems.iter().map(ToString::to_string));
        if found.outside_zones > 0 {
            notes.push(format!("{} name(s) in no configured zone were ignored", found.outside_zones));
        }
        Ok(Snapshot { wanted: found.wanted, problem, notes, objects: objects.counts() })
    }

    /// Every object of every kind the settings read, listed once.
    async fn list(&self, client: &kube::Client, notes: &mut Vec<String>) -> Result<discover::Objects, String> {
        let mut objects = discover::Objects::default();
        let wants = |k| self.cfg.kinds.contains(&k);
        if wants(DiscoveredKind::Ingress) {
            objects.ingresses = list(Api::<Ingress>::all(client.clone()), "Ingress").await?;
        }
        if self.needs_services() {
            objects.services = list(Api::<Service>::all(client.clone()), "Service").await?;
        }
        if wants(DiscoveredKind::IngressRoute) {
            objects.ingress_routes = list_custom(client, &INGRESS_ROUTE, true, notes).await?;
        }
        if wants(DiscoveredKind::HttpRoute) {
            objects.http_routes = list_custom(client, &HTTP_ROUTE, false, notes).await?;
            objects.gateways = list_custom(client, &GATEWAY, false, notes).await?;
        }
        Ok(objects)
    }
}

/// Adds `o` unless an object of its namespace and name is there: the same object seen
/// through an older API group is the one already read.
fn add_once(out: &mut Vec<DynamicObject>, o: DynamicObject) {
    let key = |o: &DynamicObject| (o.metadata.namespace.clone(), o.metadata.name.clone());
    if !out.iter().any(|held| key(held) == key(&o)) {
        out.push(o);
    }
}

/// The API resource of a custom kind in one group and version.
fn resource(custom: &Custom, group: &str, version: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk(group, version, custom.kind);
    ApiResource::from_gvk_with_plural(&gvk, custom.plural)
}

/// The groups and versions the cluster serves a custom kind in (the first one only, unless
/// `every_group`), found by asking for one object of each.
async fn served(client: &kube::Client, custom: &Custom, every_group: bool) -> Result<Vec<ApiResource>, String> {
    let mut out = Vec::new();
    for (group, version) in custom.versions {
        let r = resource(custom, group, version);
        match Api::<DynamicObject>::all_with(client.clone(), &r).list(&ListParams::default().limit(1)).await {
            Ok(_) => out.push(r),
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(format!("cannot list {}s ({group}/{version}): {e}", custom.kind)),
        }
        if !every_group {
            break;
        }
    }
    Ok(out)
}

impl Source for KubernetesSource {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn snapshot(&mut self) -> Reading<'_> {
        Box::pin(self.read())
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        self.watch.then(|| self.changed.subscribe())
    }

    fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.cfg.orphan_grace_seconds)
    }
}

/// Every object of a built-in kind, in every namespace.
async fn list<K>(api: Api<K>, kind: &str) -> Result<Vec<K>, String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default()).await.map(|l| l.items).map_err(|e| format!("cannot list {kind}s: {e}"))
}

/// Every object of a custom kind, from each group and version the cluster serves it as (all
/// of them when `every_group`: Traefik serves its old and new groups side by side, with
/// different objects in each), or from the first served one. A kind the cluster does not
/// serve (its CRD is not installed) is skipped with a note.
async fn list_custom(
    client: &kube::Client,
    custom: &Custom,
    every_group: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<DynamicObject>, String> {
    let mut out: Vec<DynamicObject> = Vec::new();
    let mut served = false;
    for (group, version) in custom.versions {
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource(custom, group, version));
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                served = true;
                for item in list.items {
                    add_once(&mut out, item);
                }
                if !every_group {
                    break;
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(format!("cannot list {}s ({group}/{version}): {e}", custom.kind)),
        }
    }
    if !served {
        let groups: Vec<String> = custom.versions.iter().map(|(g, v)| format!("{g}/{v}")).collect();
        notes.push(format!("the cluster serves no {} ({}); skipped", custom.kind, groups.join(", ")));
    }
    Ok(out)
}

/// The source for `state`, if its settings configure Kubernetes discovery; `watch` for `run`.
pub fn configured(state: &crate::desired::DesiredState, watch: bool) -> Option<Box<dyn Source>> {
    let cfg = state.settings.discovery.kubernetes.clone()?;
    let zones = state.settings.zones.iter().map(|z| z.name.clone()).collect();
    Some(Box::new(KubernetesSource::new(cfg, zones, state.wanted.resolver_sets.clone(), watch)))
}
