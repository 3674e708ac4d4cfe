//! A double of the Kubernetes API server for the kinds zonekeeper lists, on 127.0.0.1, as the
//! real one answers (k8s.io/apiserver; API conventions, "Lists and Simple kinds"):
//! - `GET /api/v1/services`, `GET /apis/networking.k8s.io/v1/ingresses`, and
//!   `GET /apis/{group}/{version}/{plural}` for the custom kinds whose CRD is installed;
//! - a list carries `kind: <Kind>List`, `apiVersion`, `metadata.resourceVersion`, and `items`
//!   (built-in items without kind and apiVersion, custom ones with them, as the apiserver and
//!   apiextensions-apiserver write them);
//! - a resource nobody serves is `404` with a `Status` of reason `NotFound`; a missing or wrong
//!   bearer token is `401` with a `Status` of reason `Unauthorized`; `fail` makes every request
//!   a `500` `Status` of reason `InternalError` and cuts the watches that are open;
//! - every object gets a `metadata.resourceVersion` from one counter when it is written;
//! - `?watch=true&resourceVersion=RV` streams the changes after RV as JSON lines
//!   (`{"type": "ADDED"|"MODIFIED"|"DELETED", "object": ...}`) and stays open for new ones
//!   until `timeoutSeconds`; a RV older than the last `compact` gets one `ERROR` event with a
//!   `Status` of code 410, reason `Expired` (the client must list again).
//!
//! Leases and ConfigMaps are served by name, with server-side apply's field ownership and
//! resourceVersion preconditions (see `objects`).
//!
//! It records every request path, and writes a kubeconfig that points at it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[path = "kube_objects.rs"]
pub mod objects;

#[derive(Default)]
pub struct State {
    pub token: String,
    /// Objects by list path (`/apis/networking.k8s.io/v1/ingresses`).
    pub objects: std::collections::BTreeMap<String, Vec<Value>>,
    /// List paths served (a CRD installed, or a built-in kind).
    pub served: std::collections::BTreeSet<String>,
    pub resource_version: u64,
    pub fail: bool,
    pub requests: Vec<String>,
    /// Every write: (resourceVersion, list path, event type, object).
    events: Vec<(u64, String, &'static str, Value)>,
    /// Watches from a resourceVersion below this one are told it has expired.
    compacted: u64,
    /// Leases and ConfigMaps by (plural, namespace, name).
    pub singles: std::collections::BTreeMap<(String, String, String), objects::Single>,
    /// Every request on a single object, with the status it got: `PATCH /apis/... 409`.
    pub answers: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    /// Woken on every write and on `fail`.
    changed: Arc<tokio::sync::Notify>,
}

pub struct Kube {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    changed: Arc<tokio::sync::Notify>,
}

pub const INGRESSES: &str = "/apis/networking.k8s.io/v1/ingresses";
pub const SERVICES: &str = "/api/v1/services";
pub const INGRESS_ROUTES: &str = "/apis/traefik.io/v1alpha1/ingressroutes";
pub const INGRESS_ROUTES_LEGACY: &str = "/apis/traefik.containo.us/v1alpha1/ingressroutes";
pub const HTTP_ROUTES: &str = "/apis/gateway.networking.k8s.io/v1/httproutes";
pub const GATEWAYS: &str = "/apis/gateway.networking.k8s.io/v1/gateways";

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// `Ingress` from `/apis/networking.k8s.io/v1/ingresses`, and its group/version.
fn kind_of(path: &str) -> Option<(&'static str, String)> {
    let (kind, plural) = match path.rsplit('/').next()? {
        "ingresses" => ("Ingress", "ingresses"),
        "services" => ("Service", "services"),
        "ingressroutes" => ("IngressRoute", "ingressroutes"),
        "httproutes" => ("HTTPRoute", "httproutes"),
        "gateways" => ("Gateway", "gateways"),
        _ => return None,
    };
    let gv = path.trim_start_matches("/apis/").trim_start_matches("/api/").trim_end_matches(plural);
    Some((kind, gv.trim_end_matches('/').to_string()))
}

async fn handle(AxumState(shared): AxumState<Shared>, req: Request) -> Response {
    let state = shared.state.clone();
    let path = req.uri().path().to_string();
    let (auth, content_type, user_agent) = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (header("authorization"), header("content-type"), header("user-agent"))
    };
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let Ok(body) = axum::body::to_bytes(req.into_body(), 4 << 20).await else {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "the request is too large");
    };
    let mut st = state.lock().unwrap();
    st.requests.push(format!("{method} {uri}"));
    if auth != format!("Bearer {}", st.token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let query: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    if let Some(route) = objects::route(&path) {
        if st.fail {
            return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "etcdserver: request timed out");
        }
        let ask = objects::Ask {
            method: method.as_str(),
            content_type: &content_type,
            query: &query,
            user_agent: &user_agent,
            body: &body,
        };
        let st = &mut *st;
        let answer = objects::handle(&mut st.singles, &mut st.resource_version, route, ask);
        st.answers.push(format!("{method} {uri} {}", answer.status().as_u16()));
        return answer;
    }
    let req_method = method;
    if req_method != axum::http::Method::GET {
        return status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the server does not allow this method");
    }
    if !st.served.contains(&path) {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    }
    if st.fail {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "etcdserver: request timed out");
    }
    let Some((kind, api_version)) = kind_of(&path) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    };
    if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
        let Some(from) = query.get("resourceVersion").and_then(|v| v.parse::<u64>().ok()) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "a watch needs a resourceVersion from a list");
        };
        let timeout = query.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800);
        drop(st);
        return watch(shared, path, from, std::time::Duration::from_secs(timeout));
    }
    let items: Vec<Value> =
        st.objects.get(&path).cloned().unwrap_or_default().into_iter().map(|o| shaped(&path, o)).collect();
    let rv = st.resource_version.to_string();
    axum::Json(json!({
        "kind": format!("{kind}List"), "apiVersion": api_version,
        "metadata": {"resourceVersion": rv}, "items": items,
    }))
    .into_response()
}

/// An object as the server writes it under `path`: built-in items without kind and apiVersion,
/// custom ones with them.
fn shaped(path: &str, mut o: Value) -> Value {
    let Some((kind, api_version)) = kind_of(path) else { return o };
    if !path.contains('.') || path.starts_with("/apis/networking.k8s.io/") {
        o.as_object_mut().map(|m| (m.remove("kind"), m.remove("apiVersion")));
    } else {
        o["kind"] = json!(kind);
        o["apiVersion"] = json!(api_version);
    }
    o
}

/// The events after `from` under `path`, then the new ones as they come, one JSON line each.
fn watch(shared: Shared, path: String, from: u64, timeout: std::time::Duration) -> Response {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures_util::stream::unfold((shared, from, false), move |(shared, mut cursor, done)| {
        let path = path.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let waiting = shared.changed.notified();
                {
                    let st = shared.state.lock().unwrap();
                    if st.fail {
                        return None;
                    }
                    if cursor < st.compacted {
                        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": format!("too old resource version: {cursor} ({})", st.compacted),
                            "reason": "Expired", "code": 410}});
                        return Some((Ok::<_, std::io::Error>(format!("{gone}\n")), (shared.clone(), cursor, true)));
                    }
                    let mut lines = String::new();
                    for (rv, p, kind, object) in &st.events {
                        if *rv > cursor && *p == path {
                            lines.push_str(&json!({"type": kind, "object": shaped(&path, object.clone())}).to_string());
                            lines.push('\n');
                            cursor = *rv;
                        }
                    }
                    if !lines.is_empty() {
                        return Some((Ok(lines), (shared.clone(), cursor, false)));
                    }
                }
                if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                    return None;
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "body"))
}

impl Kube {
    /// Starts the double serving the built-in kinds; custom kinds are served once `install`ed.
    pub fn start(token: &str) -> Kube {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let st = State {
            token: token.into(),
            served: [INGRESSES, SERVICES].into_iter().map(String::from).collect(),
            resource_version: 1000,
            ..State::default()
        };
        let state = Arc::new(Mutex::new(st));
        let changed = Arc::new(tokio::sync::Notify::new());
        let shared = Shared { state: state.clone(), changed: changed.clone() };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(handle).with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        });
        Kube { addr, state, changed }
    }

    /// Installs a custom kind's CRD: its list path is served from now on.
    pub fn install(&self, list_path: &str) {
        self.state.lock().unwrap().served.insert(list_path.into());
    }

    /// Adds (or replaces, by namespace and name) an object under a list path.
    pub fn put(&self, list_path: &str, mut object: Value) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let rv = st.resource_version;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = |o: &Value| (o["metadata"]["namespace"].clone(), o["metadata"]["name"].clone());
        let list = st.objects.entry(list_path.into()).or_default();
        let existed = list.iter().any(|o| key(o) == key(&object));
        list.retain(|o| key(o) != key(&object));
        list.push(object.clone());
        st.events.push((rv, list_path.into(), if existed { "MODIFIED" } else { "ADDED" }, object));
        drop(st);
        self.changed.notify_waiters();
    }

    /// Deletes an object by namespace and name.
    pub fn delete(&self, list_path: &str, namespace: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let rv = st.resource_version;
        let list = st.objects.entry(list_path.into()).or_default();
        let Some(i) =
            list.iter().position(|o| o["metadata"]["namespace"] == namespace && o["metadata"]["name"] == name)
        else {
            return;
        };
        let mut object = list.remove(i);
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.events.push((rv, list_path.into(), "DELETED", object));
        drop(st);
        self.changed.notify_waiters();
    }

    /// Makes every resourceVersion handed out so far too old to watch from, as etcd
    /// compaction does: open watches get the 410 event and end, and their clients must list
    /// again.
    pub fn compact(&self) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        st.compacted = st.resource_version;
        drop(st);
        self.changed.notify_waiters();
    }

    /// Every request fails with a 500 while `on`; open watches are cut.
    pub fn set_failing(&self, on: bool) {
        self.state.lock().unwrap().fail = on;
        self.changed.notify_waiters();
    }

    /// Watch requests so far.
    pub fn watches(&self) -> usize {
        self.requests().iter().filter(|r| r.contains("watch=true") || r.contains("watch=1")).count()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// A kubeconfig naming this server and `token`, written into `dir`.
    pub fn kubeconfig(&self, dir: &std::path::Path, token: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster: {{server: \"http://{}\"}}\nusers:\n- name: zk\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: double\n  context: {{cluster: double, user: zk}}\ncurrent-context: double\n",
            self.addr
        );
        std::fs::write(&path, text).expect("kubeconfig");
        path
    }
}
