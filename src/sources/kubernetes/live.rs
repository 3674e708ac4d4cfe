//! The Kubernetes source as `run` reads it: one kube-runtime reflector per kind, so a
//! snapshot costs no API call and every watch event is a reconcile trigger.
//!
//! Fail-safe by construction: a reflector's store keeps the last objects it knew through a
//! failing watch, and through a relist (after a `410 Gone`) it swaps in the new list only
//! once the list is complete. A snapshot before a kind's first list has finished is an
//! error, never "no objects".

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::discover::{ANNOTATION_PREFIX, Objects};
use super::{Custom, GATEWAY, HTTP_ROUTE, INGRESS_ROUTE, served};
use crate::desired::format::{DiscoveredKind, KubernetesDiscovery};

/// How long a snapshot waits for a kind's first list.
const FIRST_LIST: Duration = Duration::from_secs(10);
/// A watch error this old, with none since, is taken as mended: the watcher retries with a
/// backoff of at most 30 s, so a watch still failing reports again well within it, while a
/// watch that reconnected quietly (no object changed) reports nothing at all.
const ERROR_STANDS: Duration = Duration::from_secs(65);

/// What the watch tasks tell the source.
#[derive(Default)]
struct Signals {
    errors: Mutex<BTreeMap<String, (String, Instant)>>,
}

impl Signals {
    fn failed(&self, what: &str, error: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.insert(what.to_string(), (error, Instant::now()));
        }
    }

    fn mended(&self, what: &str) {
        if let Ok(mut e) = self.errors.lock() {
            e.remove(what);
        }
    }

    /// The watch errors that still stand, one line each.
    fn standing(&self) -> Vec<String> {
        let Ok(e) = self.errors.lock() else { return Vec::new() };
        e.iter().filter(|(_, (_, at))| at.elapsed() < ERROR_STANDS).map(|(w, (e, _))| format!("{w}: {e}")).collect()
    }
}

/// A custom kind and the stores of the groups it is watched in; empty while the cluster
/// serves it in none (it is looked for again on every snapshot).
struct CustomStores {
    custom: &'static Custom,
    every_group: bool,
    stores: Vec<Store<DynamicObject>>,
}

pub struct Live {
    client: kube::Client,
    cfg: KubernetesDiscovery,
    changed: Arc<tokio::sync::watch::Sender<()>>,
    signals: Arc<Signals>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ingresses: Option<Store<Ingress>>,
    services: Option<Store<Service>>,
    custom: Vec<CustomStores>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Live {
    /// Starts the reflectors the settings need (on the current tokio runtime).
    pub fn start(
        client: kube::Client,
        cfg: KubernetesDiscovery,
        services: bool,
        changed: Arc<tokio::sync::watch::Sender<()>>,
    ) -> Live {
        let mut live = Live {
            client,
            cfg,
            changed,
            signals: Arc::default(),
            tasks: Vec::new(),
            ingresses: None,
            services: None,
            custom: Vec::new(),
        };
        let kinds = live.cfg.kinds.clone();
        let wants = |k| kinds.contains(&k);
        if wants(DiscoveredKind::Ingress) {
            let (store, writer) = reflector::store();
            live.watch(Api::<Ingress>::all(live.client.clone()), writer, "Ingress".into());
            live.ingresses = Some(store);
        }
        if services {
            let (store, writer) = reflector::store();
            live.watch(Api::<Service>::all(live.client.clone()), writer, "Service".into());
            live.services = Some(store);
        }
        let mut custom = Vec::new();
        if wants(DiscoveredKind::IngressRoute) {
            custom.push(CustomStores { custom: &INGRESS_ROUTE, every_group: true, stores: Vec::new() });
        }
        if wants(DiscoveredKind::HttpRoute) {
            custom.push(CustomStores { custom: &HTTP_ROUTE, every_group: false, stores: Vec::new() });
            custom.push(CustomStores { custom: &GATEWAY, every_group: false, stores: Vec::new() });
        }
        live.custom = custom;
        live
    }

    fn watch<K>(&mut self, api: Api<K>, writer: Writer<K>, what: String)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Send + Sync,
    {
        let (changed, signals) = (self.changed.clone(), self.signals.clone());
        let tags = self.cfg.tag_annotation.clone();
        let stream =
            watcher(api, watcher::Config::default()).default_backoff().modify(move |o| slim(o, &tags)).reflect(writer);
        self.tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                        signals.mended(&what);
                        changed.send_replace(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(kind = %what, error = %e, "watch failed; retrying");
                        signals.failed(&what, e.to_string());
                    }
                }
            }
        }));
    }

    /// Starts watching the custom kinds whose CRD has appeared since the last look.
    async fn look_for_custom_kinds(&mut self, notes: &mut Vec<String>) -> Result<(), String> {
        for i in 0..self.custom.len() {
            if !self.custom[i].stores.is_empty() {
                continue;
            }
            let (custom, every_group) = (self.custom[i].custom, self.custom[i].every_group);
            let groups = served(&self.client, custom, every_group).await?;
            if groups.is_empty() {
                let all: Vec<String> = custom.versions.iter().map(|(g, v)| format!("{g}/{v}")).collect();
                notes.push(format!("the cluster serves no {} ({}); skipped", custom.kind, all.join(", ")));
            }
            for resource in groups {
                let writer = Writer::new(resource.clone());
                let store = writer.as_reader();
                let what = format!("{} ({})", custom.kind, resource.api_version);
                self.watch(Api::<DynamicObject>::all_with(self.client.clone(), &resource), writer, what);
                self.custom[i].stores.push(store);
            }
        }
        Ok(())
    }

    /// The objects every reflector holds now.
    pub async fn objects(&mut self, notes: &mut Vec<String>) -> Result<(Objects, Option<String>), String> {
        self.look_for_custom_kinds(notes).await?;
        let mut objects = Objects::default();
        if let Some(s) = &self.ingresses {
            objects.ingresses = ready(s, "Ingress", &self.signals).await?;
        }
        if let Some(s) = &self.services {
            objects.services = ready(s, "Service", &self.signals).await?;
        }
        for c in &self.custom {
            let mut all: Vec<DynamicObject> = Vec::new();
            for s in &c.stores {
                for o in ready(s, c.custom.kind, &self.signals).await? {
                    super::add_once(&mut all, o);
                }
            }
            match c.custom.kind {
                "IngressRoute" => objects.ingress_routes = all,
                "HTTPRoute" => objects.http_routes = all,
                _ => objects.gateways = all,
            }
        }
        let standing = self.signals.standing();
        let problem = (!standing.is_empty())
            .then(|| format!("watching the cluster failed; the last objects seen stand: {}", standing.join("; ")));
        Ok((objects, problem))
    }
}

/// The objects of a store once its first list is complete.
async fn ready<K>(store: &Store<K>, what: &str, signals: &Signals) -> Result<Vec<K>, String>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    if tokio::time::timeout(FIRST_LIST, store.wait_until_ready()).await.is_err() {
        let why = signals.standing().join("; ");
        let why = if why.is_empty() { "no answer yet".to_string() } else { why };
        return Err(format!("the first list of {what}s has not finished: {why}"));
    }
    Ok(store.state().iter().map(|o| (**o).clone()).collect())
}

/// What a reflector keeps of an object: no managed fields, and only the annotations
/// discovery reads (the last-applied configuration alone can be larger than the object):
/// ours, the Ingress class, Tailscale's, and the tag annotation the settings name.
fn slim<K: ResourceExt>(o: &mut K, tag_annotation: &str) {
    o.managed_fields_mut().clear();
    o.annotations_mut().retain(|k, _| {
        k.starts_with(ANNOTATION_PREFIX)
            || k == "kubernetes.io/ingress.class"
            || k.starts_with("tailscale.com/")
            || k == tag_annotation
    });
}
