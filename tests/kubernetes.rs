//! Kubernetes discovery: scenarios as data (tests/fixtures/kubernetes/*.yaml: settings and
//! objects in, records and problems out), then the real binary against the API double.

mod support;

use std::path::Path;

use zonekeeper::desired::format::KubernetesDiscovery;
use zonekeeper::model::{Name, Provenance};
use zonekeeper::sources::kubernetes::discover::{Objects, discover};
use zonekeeper::wanted::ResolverSet;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Scenario {
    zones: Vec<String>,
    discovery: KubernetesDiscovery,
    /// Resolver sets that take Services in: their name and `discover`.
    #[serde(default)]
    resolver_sets: Vec<ScenarioSet>,
    objects: serde_json::Value,
    records: Vec<String>,
    /// `set address name provenance`, set by set.
    #[serde(default)]
    members: Vec<String>,
    problems: Vec<String>,
    outside_zones: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScenarioSet {
    name: String,
    discover: zonekeeper::wanted::MemberDiscovery,
}

#[test]
fn every_scenario_gives_exactly_its_records_and_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 3, "scenarios in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let s: Scenario = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let objects: Objects = serde_json::from_value(s.objects).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let zones: Vec<Name> = s.zones.iter().map(|z| Name::parse(z).unwrap()).collect();
        let sets: Vec<ResolverSet> = s
            .resolver_sets
            .into_iter()
            .map(|r| ResolverSet {
                name: r.name,
                scope: zonekeeper::desired::format::ResolverScope::Global,
                domains: Vec::new(),
                members: Vec::new(),
                provenance: Provenance::File { path: "resolvers/x.yaml".into(), line: 1 },
                discover: r.discover,
            })
            .collect();
        let found = discover(&s.discovery, &zones, &sets, &objects);
        let records: Vec<String> = found
            .wanted
            .zones
            .values()
            .flatten()
            .map(|r| {
                let set = r.default.as_ref().unwrap();
                let values: Vec<String> = set.values.iter().map(|v| v.to_value()).collect();
                format!("{} {} {} {} {}", set.name, set.rtype, set.ttl, values.join(","), r.provenance)
            })
            .collect();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(records, s.records, "{name}: records");
        let members: Vec<String> = found
            .wanted
            .resolver_sets
            .iter()
            .flat_map(|set| {
                set.members.iter().map(|m| {
                    format!("{} {} {} {}", set.name, m.address, m.name.as_deref().unwrap_or("-"), m.provenance)
                })
            })
            .collect();
        assert_eq!(members, s.members, "{name}: resolver members");
        let problems: Vec<String> = found.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), s.problems.len(), "{name}: problems {problems:#?}");
        for (got, want) in problems.iter().zip(&s.problems) {
            assert!(got.starts_with(want), "{name}: problem `{got}` should start with `{want}`");
        }
        assert_eq!(found.outside_zones, s.outside_zones, "{name}: names outside every zone");
    }
}

use serde_json::json;
use support::kube::{self, Kube};
use support::{Repo, SETTINGS, checkzone};

const TOKEN: &str = "double-token";

/// The example repository, with Kubernetes discovery of `kinds` appended to its settings.
fn repo_with(discovery: &str) -> Repo {
    let settings = format!("{SETTINGS}\ndiscovery:\n  kubernetes:\n{discovery}");
    Repo::example().with_settings(&settings)
}

fn ingress(ns: &str, name: &str, host: &str, ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"rules": [{"host": host}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    })
}

fn lb_service(ns: &str, name: &str, ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    })
}

/// The API double, and the example repository reading it through a kubeconfig.
struct Cluster {
    k: Kube,
    repo: Repo,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

impl Cluster {
    fn new(discovery: &str) -> Cluster {
        let k = Kube::start(TOKEN);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = k.kubeconfig(dir.path(), TOKEN);
        Cluster { k, repo: repo_with(discovery), dir, kubeconfig }
    }

    fn run(&self, args: &[&str]) -> support::Run {
        self.run_with(&self.kubeconfig, args)
    }

    fn run_with(&self, kubeconfig: &Path, args: &[&str]) -> support::Run {
        self.repo.run_env(args, &[("KUBECONFIG", kubeconfig.as_os_str())])
    }
}

#[test]
fn plan_and_apply_publish_what_the_cluster_routes_and_follow_the_load_balancer() {
    let c = Cluster::new(
        "    kinds: [Ingress, IngressRoute]\n    zoneAddresses:\n      home.example: {service: traefik/traefik}\n",
    );
    let (k, repo) = (&c.k, &c.repo);
    k.install(kube::INGRESS_ROUTES);
    k.put(kube::INGRESSES, ingress("apps", "wiki", "wiki.home.example", "192.0.2.60"));
    k.put(kube::SERVICES, lb_service("traefik", "traefik", "192.0.2.80"));
    k.put(
        kube::INGRESS_ROUTES,
        json!({"metadata": {"name": "web", "namespace": "apps"},
               "spec": {"routes": [{"match": "Host(`a.home.example`) || Host(`b.home.example`)"}]}}),
    );

    let plan = c.run(&["plan"]).expect_code(0);
    let out = plan.stdout();
    assert!(out.contains("wiki.home.example") && out.contains("(Ingress/apps/wiki)"), "{out}");
    assert!(out.contains("a.home.example") && out.contains("b.home.example"), "{out}");
    assert_eq!(out.matches("192.0.2.80  (IngressRoute/apps/web)").count(), 4, "a and b, on both targets: {out}");
    assert!(
        out.contains("wiki.home.example") && !out.contains("192.0.2.60"),
        "the zone's address setting wins over the Ingress's status: {out}"
    );

    c.run(&["apply"]).expect_code(0);
    let zone = repo.zone_file("home.example");
    checkzone("home.example", &zone);
    let text = std::fs::read_to_string(&zone).unwrap();
    for name in ["wiki", "a", "b"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name}\t")) && l.ends_with("192.0.2.80")),
            "{name}: {text}"
        );
    }
    c.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    // The load balancer moves: every name that points at it moves too.
    k.put(kube::SERVICES, lb_service("traefik", "traefik", "192.0.2.81"));
    let plan = c.run(&["plan"]).expect_code(0);
    assert_eq!(plan.stdout().matches("192.0.2.80 → 192.0.2.81").count(), 6, "{}", plan.stdout());

    // Only reads, each with the token; the legacy Traefik group is looked for and not served.
    let requests = k.requests();
    assert!(requests.iter().all(|r| r.starts_with("GET ")), "{requests:?}");
    assert!(requests.iter().any(|r| r.contains(kube::INGRESS_ROUTES_LEGACY)), "{requests:?}");
}

#[test]
fn a_kind_the_cluster_does_not_serve_is_skipped_and_the_rest_publish() {
    let c = Cluster::new("    kinds: [Ingress, HTTPRoute]\n");
    let k = &c.k;
    k.put(kube::INGRESSES, ingress("apps", "wiki", "wiki.home.example", "192.0.2.60"));
    let plan = c.run(&["plan"]).expect_code(0);
    assert!(plan.stderr().contains("the cluster serves no HTTPRoute"), "{}", plan.stderr());
    assert!(plan.stdout().contains("192.0.2.60  (Ingress/apps/wiki)"), "{}", plan.stdout());

    // Installed later: picked up on the next read.
    k.install(kube::HTTP_ROUTES);
    k.install(kube::GATEWAYS);
    k.put(
        kube::GATEWAYS,
        json!({"metadata": {"name": "gw", "namespace": "web"}, "spec": {"gatewayClassName": "x", "listeners": []},
        "status": {"addresses": [{"type": "IPAddress", "value": "203.0.113.5"}]}}),
    );
    k.put(
        kube::HTTP_ROUTES,
        json!({"metadata": {"name": "docs", "namespace": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["docs.home.example"]}}),
    );
    let plan = c.run(&["plan"]).expect_code(0);
    assert!(!plan.stderr().contains("serves no HTTPRoute"), "{}", plan.stderr());
    assert!(plan.stdout().contains("203.0.113.5  (HTTPRoute/web/docs)"), "{}", plan.stdout());
}

#[test]
fn a_failing_or_refusing_api_stops_the_apply_and_deletes_nothing() {
    let c = Cluster::new("    kinds: [Ingress]\n");
    let (k, repo) = (&c.k, &c.repo);
    k.put(kube::INGRESSES, ingress("apps", "wiki", "wiki.home.example", "192.0.2.60"));
    c.run(&["apply"]).expect_code(0);
    let zone = repo.zone_file("home.example");
    let before = std::fs::read(&zone).unwrap();

    k.set_failing(true);
    let failed = c.run(&["apply"]).expect_code(1);
    assert!(failed.stderr().contains("source kubernetes could not be read"), "{}", failed.stderr());
    assert!(failed.stderr().contains("etcdserver: request timed out"), "{}", failed.stderr());
    assert_eq!(std::fs::read(&zone).unwrap(), before, "an outage never reads as `everything was deleted`");

    k.set_failing(false);
    let wrong = k.kubeconfig(c.dir.path(), "not-the-token");
    let refused = c.run_with(&wrong, &["apply"]).expect_code(1);
    assert!(refused.stderr().contains("Unauthorized"), "{}", refused.stderr());
    assert!(!refused.stderr().contains("not-the-token"), "the token never reaches an error: {}", refused.stderr());
    assert_eq!(std::fs::read(&zone).unwrap(), before);
}

#[test]
fn the_repository_wins_a_name_an_ingress_also_claims() {
    let c = Cluster::new("    kinds: [Ingress]\n");
    // grafana.home.example is declared in records/home.example.yaml.
    c.k.put(kube::INGRESSES, ingress("monitoring", "grafana", "grafana.home.example", "198.51.100.9"));
    let plan = c.run(&["plan"]).expect_code(0);
    assert!(
        plan.stderr()
            .contains("grafana.home.example A from Ingress/monitoring/grafana is left out: records/home.example.yaml:"),
        "{}",
        plan.stderr()
    );
    assert!(!plan.stdout().contains("198.51.100.9"), "{}", plan.stdout());
}

/// `run` with the cluster watched and no poll, so every change below arrives by a watch event.
struct Watched {
    c: Cluster,
    d: support::daemon::Daemon,
}

impl Watched {
    fn start() -> Watched {
        let c = Cluster::new("    kinds: [Ingress]\n");
        c.k.put(kube::INGRESSES, ingress("apps", "wiki", "wiki.home.example", "192.0.2.60"));
        let d = Watched::daemon(&c, &["--poll", "0"]);
        Watched { c, d }
    }

    fn daemon(c: &Cluster, args: &[&str]) -> support::daemon::Daemon {
        let state = c.dir.path().join("state.json");
        let env = [("KUBECONFIG", c.kubeconfig.as_os_str())];
        let args = [args, &["--resync", "0", "--debounce", "100"]].concat();
        support::daemon::Daemon::start(c.repo.path(), &state, &args, &env)
    }

    fn orphans(&self) -> serde_json::Value {
        let doc = std::fs::read_to_string(self.c.dir.path().join("state.json")).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&doc).unwrap_or_default()["orphans"]["kubernetes"].clone()
    }

    fn holds(&self, name: &str) -> bool {
        let zone = self.c.repo.zone_file("home.example");
        std::fs::read_to_string(zone).is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{name}\t"))))
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&Watched) -> bool) {
        self.d.wait_until(std::time::Duration::from_secs(20), what, || cond(self));
    }

    /// Waits until no reconcile has finished for half a second: the start-up ones are over.
    fn settle(&self) {
        let start = std::time::Instant::now();
        let mut seen = self.d.finished().len();
        loop {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "never settled:\n{}", self.d.log());
            std::thread::sleep(std::time::Duration::from_millis(500));
            let now = self.d.finished().len();
            if now == seen && now > 0 {
                return;
            }
            seen = now;
        }
    }

    fn source_state(&self) -> serde_json::Value {
        self.d.ops_get("/readyz").json()["sources"]["kubernetes"]["state"].clone()
    }
}

#[test]
fn run_follows_the_cluster_by_its_watch_events() {
    let w = Watched::start();
    w.wait_for("the first reconcile publishes the Ingress", |w| w.holds("wiki"));
    assert!(w.c.k.watches() >= 1, "the cluster is watched: {:?}", w.c.k.requests());
    w.settle();
    let lists = w.c.k.requests().iter().filter(|r| !r.contains("watch=")).count();

    // 100 Ingresses created at once: a few reconciles, every record.
    let before = w.d.finished().len();
    for i in 0..100 {
        w.c.k.put(kube::INGRESSES, ingress("apps", &format!("app{i}"), &format!("app{i}.home.example"), "192.0.2.70"));
    }
    w.wait_for("all 100 records land", |w| (0..100).all(|i| w.holds(&format!("app{i}"))));
    w.settle();
    let runs: Vec<_> = w.d.finished()[before..].to_vec();
    assert!((1..=3).contains(&runs.len()), "{} reconciles: {runs:?}", runs.len());
    assert!(runs.iter().all(|r| r["fields"]["trigger"] == "source"), "{runs:?}");
    let lists_now = w.c.k.requests().iter().filter(|r| !r.contains("watch=")).count();
    assert_eq!(lists_now, lists, "a watched reconcile reads the reflectors, not the API");
    let metrics = w.d.ops_get("/metrics").body;
    assert!(metrics.contains("zonekeeper_watched_objects{kind=\"Ingress\",namespace=\"apps\"} 101"), "{metrics}");

    // A deleted Ingress: its record goes (the grace period is 0).
    w.c.k.delete(kube::INGRESSES, "apps", "app7");
    w.wait_for("the deleted Ingress's record goes", |w| !w.holds("app7"));
    assert!(w.holds("app8"));

    // Compaction: the watch gets 410 Gone, lists again, and keeps following.
    w.c.k.compact();
    w.wait_for("the Ingresses listed again", |w| {
        w.c.k.requests().iter().filter(|r| r.contains("/ingresses") && !r.contains("watch=")).count() > 1
    });
    w.c.k.put(kube::INGRESSES, ingress("apps", "after", "after.home.example", "192.0.2.71"));
    w.wait_for("a change after the relist lands", |w| w.holds("after"));
    assert!(w.holds("wiki") && w.holds("app99"), "a relist deletes nothing");
}

#[test]
fn run_keeps_the_last_objects_seen_while_the_api_fails() {
    let w = Watched::start();
    w.wait_for("the first reconcile publishes the Ingress", |w| w.holds("wiki"));
    assert_eq!(w.source_state(), "ok");

    w.c.k.set_failing(true);
    w.wait_for("the source degraded", |w| w.source_state() == "degraded");
    // A reconcile during the outage (asked for through the API) deletes nothing.
    let token = support::daemon::create_token(&w.c.dir.path().join("state.json"), "ops");
    let before = w.d.finished().len();
    assert_eq!(w.d.post("/api/v1/reconcile", &[("Authorization", &format!("Bearer {token}"))], b"").status, 202);
    w.wait_for("the asked-for reconcile", |w| w.d.finished().len() > before);
    assert!(w.holds("wiki"), "an outage never reads as `everything was deleted`");
    let metrics = w.d.ops_get("/metrics");
    assert!(metrics.body.contains("zonekeeper_source_up{source=\"kubernetes\"} 0"), "{}", metrics.body);

    // The API comes back: the watch resumes and the next change lands.
    w.c.k.set_failing(false);
    w.c.k.put(kube::INGRESSES, ingress("apps", "blog", "blog.home.example", "192.0.2.61"));
    w.wait_for("a change after the outage lands", |w| w.holds("blog"));
    assert_eq!(w.source_state(), "ok");
}

#[test]
fn a_deleted_objects_record_stays_for_the_grace_period_across_a_restart() {
    let c = Cluster::new("    kinds: [Ingress]\n    orphanGraceSeconds: 8\n");
    c.k.put(kube::INGRESSES, ingress("apps", "wiki", "wiki.home.example", "192.0.2.60"));
    c.k.put(kube::INGRESSES, ingress("apps", "blog", "blog.home.example", "192.0.2.61"));
    // A poll every second: the end of a grace period is noticed at the next reconcile.
    let d = Watched::daemon(&c, &["--poll", "1"]);
    let mut w = Watched { c, d };
    w.wait_for("both published", |w| w.holds("wiki") && w.holds("blog"));

    let deleted = std::time::Instant::now();
    w.c.k.delete(kube::INGRESSES, "apps", "blog");
    w.wait_for("the orphan remembered", |w| w.orphans().as_array().is_some_and(|o| o.len() == 1));
    let since = w.orphans()[0]["since"].clone();
    assert_eq!(w.orphans()[0]["record"]["name"], "blog.home.example");
    assert!(w.holds("blog"), "kept in its grace period");

    // A restart keeps the orphan and its time.
    w.d.signal(libc::SIGTERM, std::time::Duration::from_secs(10));
    w.d = Watched::daemon(&w.c, &["--poll", "1"]);
    w.settle();
    assert!(deleted.elapsed() < std::time::Duration::from_secs(8), "the restart took too long to tell");
    assert!(w.holds("blog"), "still kept after the restart");
    assert_eq!(w.orphans()[0]["since"], since, "the orphan-since time survives the restart");

    w.wait_for("the grace period ends and the record goes", |w| !w.holds("blog"));
    assert!(deleted.elapsed() >= std::time::Duration::from_secs(8), "not before its grace period ended");
    assert!(w.holds("wiki"));
    w.wait_for("the orphan forgotten", |w| w.orphans().is_null());
}

/// A resolver set taking in Services by a tag in `example.com/dns-tags`.
const TAILNET_SET: &str = "apiVersion: zonekeeper.dev/v1alpha1\nkind: ResolverSet\nname: tailnet\nscope: global\ndiscover:\n  serviceTags: [\"tag:dns\"]\n";

fn tagged_service(name: &str, annotation: &str, tags: &str, ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "dns", "annotations": {annotation: tags}},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": "tailscale"},
        "status": {"loadBalancer": {"ingress": [{"hostname": format!("{name}.tail1234.ts.net")}, {"ip": ip}]}},
    })
}

#[test]
fn run_lists_the_resolver_members_services_give_at_start_and_as_they_change() {
    // The tag annotation is a setting; the Tailscale default is then not read.
    let c = Cluster::new("    kinds: [Ingress]\n    tagAnnotation: example.com/dns-tags\n");
    c.repo.write("resolvers/tailnet.yaml", TAILNET_SET);
    c.k.put(kube::SERVICES, tagged_service("unbound", "example.com/dns-tags", "tag:web, tag:dns", "100.64.0.5"));
    c.k.put(kube::SERVICES, tagged_service("adguard", "tailscale.com/tags", "tag:dns", "100.64.0.6"));
    let d = Watched::daemon(&c, &["--poll", "0"]);
    let members = |count: usize| {
        move |l: &serde_json::Value| {
            support::daemon::msg(l) == "resolver members from the cluster"
                && l["fields"]["set"] == "tailnet"
                && l["fields"]["count"] == count
        }
    };
    let first = d.wait_line(std::time::Duration::from_secs(20), members(1));
    assert_eq!(first["fields"]["members"], "100.64.0.5 (dns-unbound, Service/dns/unbound)", "{first}");

    // A Service tagged later joins; its watch event is enough.
    c.k.put(kube::SERVICES, tagged_service("pihole", "example.com/dns-tags", "tag:dns", "100.64.0.4"));
    let second = d.wait_line(std::time::Duration::from_secs(20), members(2));
    assert_eq!(
        second["fields"]["members"],
        "100.64.0.4 (dns-pihole, Service/dns/pihole), 100.64.0.5 (dns-unbound, Service/dns/unbound)",
        "{second}"
    );
}

#[test]
fn a_resolver_set_with_a_tag_that_is_not_one_is_refused_with_its_field() {
    let repo = repo_with("    kinds: [Ingress]\n");
    repo.write("resolvers/tailnet.yaml", &TAILNET_SET.replace("\"tag:dns\"", "\"tag:dns\", dns"));
    let out = repo.run(&["validate"]).expect_code(1).all();
    assert!(out.contains("resolvers/tailnet.yaml") && out.contains("discover.serviceTags[1]"), "{out}");
    assert!(out.contains("`dns` is not a tag"), "{out}");
}
