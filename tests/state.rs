//! The state document in a ConfigMap, against the Kubernetes API double: created when missing,
//! held to its resourceVersion so that two writers never lose each other's change, never read
//! as empty when it is garbled, and the ConfigMap's other keys kept. One test in this binary:
//! it points KUBECONFIG at its double for the whole process.

mod support;

use std::cell::Cell;

use k8s_openapi::api::core::v1::ConfigMap;
use support::kube::Kube;
use zonekeeper::daemon::state::{LastGood, StateError, StateLocation, StoredToken};

const TOKEN: &str = "state-double-token";
const NS: &str = "zonekeeper";

fn token(sha: &str) -> StoredToken {
    StoredToken { sha256: sha.into(), created: "2026-12-07T00:00:00Z".into() }
}

fn stored(k: &Kube, name: &str) -> Option<serde_json::Value> {
    let st = k.state.lock().unwrap();
    st.singles.get(&("configmaps".to_string(), NS.to_string(), name.to_string())).map(|s| s.object.clone())
}

#[test]
fn a_configmap_state_document_keeps_every_writers_change() {
    let k = Kube::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.kubeconfig(dir.path(), TOKEN);
    // SAFETY: the only test in this binary, set before any thread of ours reads the environment.
    unsafe { std::env::set_var("KUBECONFIG", &kubeconfig) };
    let at = StateLocation::ConfigMap { namespace: Some(NS.into()), name: "zk-state".into() };
    let a = at.open().unwrap();
    let b = at.open().unwrap();
    assert_eq!(a.shown(), "ConfigMap zonekeeper/zk-state (key state.json)");

    // None yet: the empty document, and reading creates nothing.
    assert!(a.read().unwrap().tokens.is_empty());
    assert!(stored(&k, "zk-state").is_none());

    // The first change creates it, with the document under state.json.
    a.update(|d| {
        d.tokens.insert("ci".into(), token("aa"));
        Ok::<_, StateError>(())
    })
    .unwrap();
    let cm = stored(&k, "zk-state").expect("created");
    let doc: serde_json::Value = serde_json::from_str(cm["data"]["state.json"].as_str().unwrap()).unwrap();
    assert_eq!(doc["tokens"]["ci"]["sha256"], "aa");
    assert_eq!(cm["metadata"]["labels"]["app.kubernetes.io/component"], "state");
    let created_rv = cm["metadata"]["resourceVersion"].clone();

    // A change that changes nothing writes nothing.
    a.update(|d| {
        d.tokens.insert("ci".into(), token("aa"));
        Ok::<_, StateError>(())
    })
    .unwrap();
    assert_eq!(stored(&k, "zk-state").unwrap()["metadata"]["resourceVersion"], created_rv);

    // B reads, then A writes before B does: B's write is refused on its stale
    // resourceVersion, and B makes its change again on A's document. Both land.
    let runs = Cell::new(0);
    b.update(|d| {
        runs.set(runs.get() + 1);
        if runs.get() == 1 {
            a.update(|d| {
                d.tokens.insert("ops".into(), token("bb"));
                Ok::<_, StateError>(())
            })
            .unwrap();
        }
        d.last_good.insert("repo".into(), LastGood { commit: "c0ffee".into(), at: "t".into() });
        Ok::<_, StateError>(())
    })
    .unwrap();
    assert_eq!(runs.get(), 2, "the refused write was made again");
    let doc = a.read().unwrap();
    assert!(doc.tokens.contains_key("ci") && doc.tokens.contains_key("ops"), "{doc:?}");
    assert_eq!(doc.last_good["repo"].commit, "c0ffee");
    let answers = k.state.lock().unwrap().answers.clone();
    assert!(answers.iter().any(|a| a.starts_with("PUT ") && a.ends_with(" 409")), "{answers:?}");

    // A change that fails writes nothing.
    let before = stored(&k, "zk-state").unwrap()["metadata"]["resourceVersion"].clone();
    let refused: Result<(), StateError> = a.update(|d| {
        d.tokens.clear();
        Err(StateError::Contended { at: "test".into(), attempts: 0 })
    });
    assert!(refused.is_err());
    assert_eq!(stored(&k, "zk-state").unwrap()["metadata"]["resourceVersion"], before);

    // A ConfigMap someone else made: its other keys and annotations are kept; a garbled
    // document is an error, never an empty state, and an update leaves it as it was.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        let api = kube::Api::<ConfigMap>::namespaced(kube::Client::try_from(config).unwrap(), NS);
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("theirs".into());
        cm.metadata.annotations = Some([("team".to_string(), "dns".to_string())].into());
        cm.data = Some([("note".to_string(), "hands off".to_string())].into());
        api.create(&Default::default(), &cm).await.unwrap();
        let mut garbled = ConfigMap::default();
        garbled.metadata.name = Some("garbled".into());
        garbled.data = Some([("state.json".to_string(), "{\"version\": 1, \"tokens\": {".to_string())].into());
        api.create(&Default::default(), &garbled).await.unwrap();
    });
    let theirs = StateLocation::ConfigMap { namespace: Some(NS.into()), name: "theirs".into() }.open().unwrap();
    theirs
        .update(|d| {
            d.tokens.insert("ci".into(), token("cc"));
            Ok::<_, StateError>(())
        })
        .unwrap();
    let cm = stored(&k, "theirs").unwrap();
    assert_eq!(cm["data"]["note"], "hands off");
    assert_eq!(cm["metadata"]["annotations"]["team"], "dns");
    assert!(cm["data"]["state.json"].as_str().unwrap().contains("\"cc\""));

    let garbled = StateLocation::ConfigMap { namespace: Some(NS.into()), name: "garbled".into() }.open().unwrap();
    let e = garbled.read().unwrap_err().to_string();
    assert!(e.contains("ConfigMap zonekeeper/garbled") && e.contains("never read as empty"), "{e}");
    let r = garbled.update(|d| {
        d.tokens.clear();
        Ok::<_, StateError>(())
    });
    assert!(r.is_err());
    assert_eq!(stored(&k, "garbled").unwrap()["data"]["state.json"], "{\"version\": 1, \"tokens\": {");

    // The API going away is an error naming the document, not an empty state.
    k.set_failing(true);
    let e = a.read().unwrap_err().to_string();
    assert!(e.contains("cannot reach the state document ConfigMap zonekeeper/zk-state"), "{e}");
    k.set_failing(false);
    assert!(a.read().unwrap().tokens.contains_key("ops"));
}
