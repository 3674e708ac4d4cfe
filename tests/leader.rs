//! Leader election: the Lease semantics of the API double (server-side apply's field
//! ownership, which is what keeps two candidates from both taking a lease), kube-lease-manager
//! against it, and two replicas of the real binary sharing one Technitium double. Times in
//! these tests are limits to wait for, never measurements.

mod support;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::daemon::Daemon;
use support::kube::Kube;
use support::technitium::Technitium;
use support::{Credentials, Repo};

const TOKEN: &str = "double-token";
const DNS_TOKEN: &str = "t0ken-leader-2c9f";
const NS: &str = "zonekeeper";
/// The replicas' shared state document.
const STATE: &str = "zonekeeper/zonekeeper-state";

async fn client(k: &Kube, dir: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(k.kubeconfig(dir, TOKEN)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

/// An applied configuration of the Lease naming `spec_holder` as its holder.
fn applied_lease(spec_holder: &str) -> serde_json::Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "spec": {"holderIdentity": spec_holder, "leaseDurationSeconds": 15,
                 "renewTime": "2026-12-07T10:00:00.000000Z"}})
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_manager_applying_a_held_field_gets_a_conflict_unless_it_forces() {
    let k = Kube::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let api = kube::Api::<Lease>::namespaced(client(&k, dir.path()).await, NS);

    // Apply creates; the manager owns what it applied.
    let a = PatchParams::apply("candidate-a");
    let got = api.patch("zk", &a, &Patch::Apply(applied_lease("a"))).await.unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("a"));
    let first_rv = got.metadata.resource_version.unwrap();
    let owners = got.metadata.managed_fields.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!((owners[0].manager.as_deref(), owners[0].operation.as_deref()), (Some("candidate-a"), Some("Apply")));

    // The same apply again changes nothing: no new resourceVersion.
    let again = api.patch("zk", &a, &Patch::Apply(applied_lease("a"))).await.unwrap();
    assert_eq!(again.metadata.resource_version.unwrap(), first_rv);
    // A resourceVersion in the applied configuration is a precondition.
    let mut stale = applied_lease("a");
    stale["metadata"] = json!({"resourceVersion": "1"});
    let (code, _, message) = api_error(api.patch("zk", &a, &Patch::Apply(stale)).await.unwrap_err());
    assert!(code == 409 && message.contains("the object has been modified"), "{code} {message}");

    // Another manager applying a different holder conflicts; the same values would not.
    let b = PatchParams::apply("candidate-b");
    let (code, reason, message) = api_error(api.patch("zk", &b, &Patch::Apply(applied_lease("b"))).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(message.contains("conflict with \"candidate-a\": .spec.holderIdentity"), "{message}");
    assert!(api.patch("zk", &b, &Patch::Apply(applied_lease("a"))).await.is_ok(), "shared ownership of equal values");
    let lease = api.get("zk").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("a"), "the conflict wrote nothing");

    // A merge patch (an Update) is never a conflict; it takes the fields it changes.
    let release = json!({"spec": {"holderIdentity": null, "renewTime": null}});
    let pp = PatchParams { field_manager: Some("candidate-b".into()), ..PatchParams::default() };
    let released = api.patch("zk", &pp, &Patch::Strategic(release)).await.unwrap();
    assert_eq!(released.spec.as_ref().unwrap().holder_identity, None);
    // With the holder's fields gone, b's apply of a new holder goes through.
    let taken = api.patch("zk", &b, &Patch::Apply(applied_lease("b"))).await.unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
    // And now a, applying again, is the one in conflict; forcing takes the fields over.
    assert_eq!(api_error(api.patch("zk", &a, &Patch::Apply(applied_lease("a"))).await.unwrap_err()).0, 409);
    let forced = api.patch("zk", &a.clone().force(), &Patch::Apply(applied_lease("a"))).await.unwrap();
    assert_eq!(forced.spec.unwrap().holder_identity.as_deref(), Some("a"));

    // What the real server refuses, the double refuses.
    let no_manager = PatchParams { field_manager: None, ..PatchParams::default() };
    let e = api.patch("zk", &no_manager, &Patch::Apply(applied_lease("c"))).await.unwrap_err();
    assert_eq!(api_error(e).0, 422, "an apply needs a fieldManager");
    let zero = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"leaseDurationSeconds": 0}});
    assert_eq!(api_error(api.patch("zk", &a.clone().force(), &Patch::Apply(zero)).await.unwrap_err()).0, 422);
    let wrong_type = json!({"spec": {"leaseDurationSeconds": "long"}});
    assert_eq!(api_error(api.patch("zk", &pp, &Patch::Merge(wrong_type)).await.unwrap_err()).0, 400);
    assert_eq!(api_error(api.get("nope").await.unwrap_err()).0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_with_a_stale_resource_version_is_a_conflict() {
    let k = Kube::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let api = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client(&k, dir.path()).await, NS);
    let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
    cm.metadata.name = Some("state".into());
    cm.data = Some([("state.json".to_string(), "{}".to_string())].into());
    let created = api.create(&Default::default(), &cm).await.unwrap();
    let e = api.create(&Default::default(), &cm).await.unwrap_err();
    assert_eq!(api_error(e).1, "AlreadyExists");

    let mut first = created.clone();
    first.data = Some([("state.json".to_string(), "{\"a\":1}".to_string())].into());
    let replaced = api.replace("state", &Default::default(), &first).await.unwrap();
    assert_ne!(replaced.metadata.resource_version, created.metadata.resource_version);
    // A writer still holding the first version loses: nothing it wrote lands.
    let mut stale = created.clone();
    stale.data = Some([("state.json".to_string(), "{\"b\":2}".to_string())].into());
    let (code, reason, message) = api_error(api.replace("state", &Default::default(), &stale).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(message.contains("the object has been modified"), "{message}");
    let now = api.get("state").await.unwrap();
    assert_eq!(now.data.unwrap()["state.json"], "{\"a\":1}");
    let mut bad_key = replaced.clone();
    bad_key.data = Some([("no/slash".to_string(), String::new())].into());
    assert_eq!(api_error(api.replace("state", &Default::default(), &bad_key).await.unwrap_err()).0, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lease_managers_take_turns() {
    let k = Kube::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k, dir.path()).await;
    let manager = |id: &str| {
        let params = kube_lease_manager::LeaseParams::new(id, 3, 1);
        kube_lease_manager::LeaseManagerBuilder::new(c.clone(), "turns")
            .with_namespace(NS)
            .with_parameters(params)
            .build()
    };
    let a = manager("a").await.unwrap();
    let b = manager("b").await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), a.changed()).await.unwrap().unwrap(), "a leads");
    // b waits while a renews: over two lease durations, b never leads.
    let waited = tokio::time::timeout(Duration::from_secs(2), b.changed()).await;
    assert!(waited.is_err() || !waited.unwrap().unwrap(), "b must not lead while a holds the lease");
    let renewing = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(4), a.changed()).await;
        a
    });
    let a = renewing.await.unwrap();
    let lease = kube::Api::<Lease>::namespaced(c.clone(), NS).get("turns").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("a"), "a renewed it");
    // a lets go: b takes it.
    a.release().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(10), b.changed()).await.unwrap().unwrap(), "b leads");
    let lease = kube::Api::<Lease>::namespaced(c, NS).get("turns").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("b"));
    assert_eq!(lease.lease_transitions, Some(2), "each new holder counts a transition");
}

/// The repository both replicas run: one zone on the Technitium double, names from Ingresses.
fn repo(dns: &Technitium) -> Repo {
    Repo::empty()
        .with_settings(&format!(
            "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
             zones:\n  - name: home.example\n    targets: [tdns]\n\
             targets:\n  tdns: {{type: technitium, url: \"{}\", rateLimit: 1000, attempts: 1, timeoutSeconds: 5}}\n\
             discovery:\n  kubernetes:\n    kinds: [Ingress]\n",
            dns.url()
        ))
        .with_records(
            "home.example",
            "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
             \x20 - {name: mail, type: A, value: 192.0.2.25}\n",
        )
}

fn ingress(name: &str, ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "apps", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"rules": [{"host": format!("{name}.home.example")}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    })
}

struct Replica {
    d: Daemon,
    _state: tempfile::TempDir,
}

fn replica(repo: &Repo, k: &Kube, creds: &Credentials, identity: &str) -> Replica {
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = k.kubeconfig(state.path(), TOKEN);
    let creds = creds.path();
    let env: [(&str, &OsStr); 4] = [
        ("KUBECONFIG", kubeconfig.as_os_str()),
        ("ZONEKEEPER_CREDENTIALS", creds.as_os_str()),
        ("ZK_TEST_TOKEN", OsStr::new(DNS_TOKEN)),
        ("POD_NAMESPACE", OsStr::new(NS)),
    ];
    let args = [
        "--state-configmap",
        STATE,
        "--leader-election",
        "--lease-identity",
        identity,
        "--lease-duration",
        "3",
        "--lease-renew-before",
        "1",
        "--poll",
        "0",
        "--resync",
        "0",
        "--debounce",
        "100",
    ];
    Replica { d: Daemon::start(repo.path(), &state.path().join("state.json"), &args, &env), _state: state }
}

impl Replica {
    fn leads(&self) -> bool {
        self.d.ops_get("/readyz").json()["leader"] == true
    }
}

fn holder_of(k: &Kube) -> Option<String> {
    let st = k.state.lock().unwrap();
    let lease = st.singles.get(&("leases".to_string(), NS.to_string(), "zonekeeper".to_string()))?;
    lease.object["spec"]["holderIdentity"].as_str().map(str::to_string)
}

#[test]
fn of_two_replicas_only_the_leader_writes_and_the_other_takes_over_when_it_stops() {
    let dns = Technitium::start(DNS_TOKEN, "home.example");
    let k = Kube::start(TOKEN);
    k.put(support::kube::INGRESSES, ingress("wiki", "192.0.2.60"));
    let repo = repo(&dns);
    let creds =
        Credentials::new(&format!("credentials:\n  - {{origin: \"{}\", tokenEnv: ZK_TEST_TOKEN}}\n", dns.url()));
    let limit = Duration::from_secs(20);

    // An API token made from the command line (as `kubectl exec` into any pod would) lands in
    // the ConfigMap both replicas read.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.kubeconfig(dir.path(), TOKEN);
    let made = std::process::Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
        .args(["token", "create", "ops", "--state-configmap", STATE])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("ZONEKEEPER_STATE")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let api_token = String::from_utf8_lossy(&made.stdout).trim().to_string();

    let mut a = replica(&repo, &k, &creds, "replica-a");
    a.d.wait_until(limit, "a leads", || a.leads());
    let b = replica(&repo, &k, &creds, "replica-b");
    for r in [&a, &b] {
        assert_eq!(
            r.d.post("/api/v1/reconcile", &[("Authorization", &format!("Bearer {api_token}"))], b"").status,
            202
        );
    }
    a.d.wait_until(limit, "the leader publishes the Ingress", || dns.writes().iter().any(|w| w.contains("wiki.")));
    // b plans (its reflectors are warm, its status is served) but stands by.
    b.d.wait_until(limit, "b has reconciled", || b.d.finished().iter().any(|r| r["fields"]["outcome"] == "standby"));
    assert!(!b.leads());
    assert_eq!(holder_of(&k).as_deref(), Some("replica-a"));
    // The leader remembers the commit it applied in the shared document.
    a.d.wait_until(limit, "the last good commit in the ConfigMap", || {
        let st = k.state.lock().unwrap();
        let key = ("configmaps".to_string(), NS.to_string(), "zonekeeper-state".to_string());
        st.singles.get(&key).is_some_and(|s| s.object["data"]["state.json"].as_str().unwrap_or("").contains("lastGood"))
    });
    let metrics = b.d.ops_get("/metrics").body;
    assert!(metrics.contains("zonekeeper_leader 0"), "{metrics}");
    assert!(a.d.ops_get("/metrics").body.contains("zonekeeper_leader 1"));

    // A change in the cluster: both replicas see it, only the leader writes it.
    k.put(support::kube::INGRESSES, ingress("blog", "192.0.2.61"));
    a.d.wait_until(limit, "the leader publishes blog", || dns.writes().iter().any(|w| w.contains("blog.")));
    b.d.wait_until(limit, "b has seen blog", || {
        b.d.finished().iter().filter(|r| r["fields"]["trigger"] == "source").count() >= 1
    });
    assert!(b.d.finished().iter().all(|r| r["fields"]["applied"] == 0), "b wrote nothing: {:?}", b.d.finished());

    // The leader stops: it releases the lease, and b takes over within a lease duration.
    let stopped = Instant::now();
    a.d.signal(libc::SIGTERM, Duration::from_secs(15));
    b.d.wait_until(limit, "b leads", || b.leads());
    let took = stopped.elapsed();
    eprintln!("takeover took {took:?}");
    assert!(took < Duration::from_secs(3) + Duration::from_secs(2), "takeover took {took:?}");
    assert_eq!(holder_of(&k).as_deref(), Some("replica-b"));
    // Its first act is a full reconcile that finds nothing to do: nothing is written twice.
    b.d.wait_until(limit, "b's leader reconcile", || b.d.finished().iter().any(|r| r["fields"]["trigger"] == "leader"));
    let writes = dns.writes();
    let mut unique = writes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), writes.len(), "a write was sent twice: {writes:?}");

    // And b now writes what changes.
    k.put(support::kube::INGRESSES, ingress("docs", "192.0.2.62"));
    b.d.wait_until(limit, "the new leader publishes docs", || dns.writes().iter().any(|w| w.contains("docs.")));
    let writes = dns.writes();
    assert_eq!(writes.iter().filter(|w| w.contains("docs.")).count(), 1, "{writes:?}");
}
