//! A double of the Kubernetes API server for the kinds zonekeeper lists, on 127.0.0.1, as the
//! real one answers (k8s.io/apiserver; API conventions, "Lists and Simple kinds"):
//! - `GET /api/v1/services`, `GET /apis/networking.k8s.io/v1/ingresses`, and
//!   `GET /apis/{group}/{version}/{plural}` for the custom kinds whose CRD is installed;
//! - a list carries `kind: <Kind>List`, `apiVersion`, `metadata.resourceVersion`, and `items`
//!   (built-in items without kind and apiVersion, custom ones with them, as the apiserver and
//!   apiextensions-apiserver write them);
//! - a resource nobody serves is `404` with a `Status` of reason `NotFound`; a missing or wrong
//!   bearer token is `401` with a `Status` of reason `Unauthorized`; `fail` makes every list a
//!   `500` `Status` of reason `InternalError`.
//!
//! It records every request path, and writes a kubeconfig that points at it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
}

pub struct Kube {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
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

async fn handle(AxumState(state): AxumState<Arc<Mutex<State>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut st = state.lock().unwrap();
    st.requests.push(format!("{} {}", req.method(), req.uri()));
    if auth.as_deref() != Some(&format!("Bearer {}", st.token)) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if req.method() != axum::http::Method::GET {
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
    let builtin = !path.contains('.') || path.starts_with("/apis/networking.k8s.io/");
    let items: Vec<Value> = st
        .objects
        .get(&path)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut o| {
            if builtin {
                o.as_object_mut().map(|m| (m.remove("kind"), m.remove("apiVersion")));
            } else {
                o["kind"] = json!(kind);
                o["apiVersion"] = json!(api_version);
            }
            o
        })
        .collect();
    let rv = st.resource_version.to_string();
    axum::Json(json!({
        "kind": format!("{kind}List"), "apiVersion": api_version,
        "metadata": {"resourceVersion": rv}, "items": items,
    }))
    .into_response()
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
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(handle).with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        });
        Kube { addr, state }
    }

    /// Installs a custom kind's CRD: its list path is served from now on.
    pub fn install(&self, list_path: &str) {
        self.state.lock().unwrap().served.insert(list_path.into());
    }

    /// Adds (or replaces, by namespace and name) an object under a list path.
    pub fn put(&self, list_path: &str, object: Value) {
        let mut st = self.state.lock().unwrap();
        st.resource_version += 1;
        let key = |o: &Value| (o["metadata"]["namespace"].clone(), o["metadata"]["name"].clone());
        let list = st.objects.entry(list_path.into()).or_default();
        list.retain(|o| key(o) != key(&object));
        list.push(object);
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
