//! The state document in a ConfigMap, for a pod whose root filesystem is read-only and whose
//! replicas share one document.
//!
//! The document is the JSON of the file form, under the key `state.json`. Every change is a
//! read-modify-write held to the resourceVersion it read: a PUT that carries it, which the
//! API server refuses with 409 when another writer came first; then the change is made again
//! on what that writer left. So `zonekeeper token create` in one pod and the leader's
//! orphan bookkeeping in another never lose each other's change.
//!
//! The calls are made on a thread of their own with its own small runtime, so the callers can
//! stay synchronous (the worker thread, the CLI, an HTTP handler checking a token) without
//! blocking a runtime they run in.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{StateDoc, StateError};

/// The key the document is kept under.
pub const KEY: &str = "state.json";
/// How long one call to the API server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a change is made again after another writer came first.
const ATTEMPTS: usize = 8;

/// The state document in the ConfigMap `namespace/name`.
#[derive(Debug)]
pub struct ConfigMapState {
    namespace: String,
    name: String,
    jobs: mpsc::Sender<Job>,
}

/// What the document's thread is asked to do.
enum Job {
    Get(mpsc::Sender<Result<Option<Box<ConfigMap>>, String>>),
    /// Writes `text` into the ConfigMap as read (its other keys, labels and annotations are
    /// kept), or creates it when there was none.
    Put {
        stored: Option<Box<ConfigMap>>,
        text: String,
        reply: mpsc::Sender<Result<Written, String>>,
    },
}

enum Written {
    Done,
    /// Another writer changed (or created) the ConfigMap since it was read.
    Conflict,
}

impl ConfigMapState {
    /// Connects to the API server (in-cluster config or KUBECONFIG). `namespace` defaults to
    /// the client's (the pod's own, or the kubeconfig context's).
    pub fn connect(namespace: Option<&str>, name: &str) -> Result<ConfigMapState, StateError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel::<Result<String, String>>();
        let (wanted_ns, cm) = (namespace.map(str::to_string), name.to_string());
        let unreachable = |detail: String| StateError::Unreachable { at: format!("ConfigMap {name}"), detail };
        std::thread::Builder::new()
            .name("zonekeeper-state".into())
            .spawn(move || serve(wanted_ns, cm, inbox, ready))
            .map_err(|e| unreachable(e.to_string()))?;
        let namespace =
            started.recv().map_err(|_| unreachable("the state thread ended".into()))?.map_err(unreachable)?;
        Ok(ConfigMapState { namespace, name: name.to_string(), jobs })
    }

    /// `ConfigMap <namespace>/<name>`, for messages.
    pub fn shown(&self) -> String {
        format!("ConfigMap {}/{} (key {KEY})", self.namespace, self.name)
    }

    pub fn read(&self) -> Result<StateDoc, StateError> {
        Ok(self.get()?.1)
    }

    /// Reads, lets `change` edit, and writes back held to the resourceVersion read; on a
    /// conflict, reads again and makes the change again. Nothing is written when `change`
    /// fails or leaves the document as it was.
    pub fn update<T, E: From<StateError>>(
        &self,
        mut change: impl FnMut(&mut StateDoc) -> Result<T, E>,
    ) -> Result<T, E> {
        for _ in 0..ATTEMPTS {
            let (stored, before) = self.get()?;
            let mut doc = before.clone();
            let out = change(&mut doc)?;
            if doc == before {
                return Ok(out);
            }
            let mut text = serde_json::to_string_pretty(&doc).map_err(|e| self.corrupt(e.to_string()))?;
            text.push('\n');
            let (reply, answer) = mpsc::channel();
            self.send(Job::Put { stored, text, reply })?;
            match self.wait(answer)? {
                Written::Done => return Ok(out),
                Written::Conflict => continue,
            }
        }
        Err(StateError::Contended { at: self.shown(), attempts: ATTEMPTS }.into())
    }

    /// The ConfigMap (None: none yet) and the document.
    fn get(&self) -> Result<(Option<Box<ConfigMap>>, StateDoc), StateError> {
        let (reply, answer) = mpsc::channel();
        self.send(Job::Get(reply))?;
        let Some(stored) = self.wait(answer)? else {
            return Ok((None, StateDoc { version: 1, ..Default::default() }));
        };
        let doc = match stored.data.as_ref().and_then(|d| d.get(KEY)) {
            None => StateDoc { version: 1, ..Default::default() },
            Some(text) => super::parse(text).map_err(|detail| self.corrupt(detail))?,
        };
        Ok((Some(stored), doc))
    }

    fn corrupt(&self, detail: String) -> StateError {
        StateError::Corrupt { path: self.shown(), detail }
    }

    fn send(&self, job: Job) -> Result<(), StateError> {
        self.jobs
            .send(job)
            .map_err(|_| StateError::Unreachable { at: self.shown(), detail: "the state thread ended".into() })
    }

    /// Waits for the thread's answer, letting a multi-threaded runtime this is called in move
    /// its other tasks off this thread meanwhile.
    fn wait<T>(&self, answer: mpsc::Receiver<Result<T, String>>) -> Result<T, StateError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let receive = || answer.recv();
        let got = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(receive),
            _ => receive(),
        };
        got.unwrap_or_else(|_| Err("the state thread ended".into()))
            .map_err(|detail| StateError::Unreachable { at: self.shown(), detail })
    }
}

/// The document's thread: one client, one call at a time, until the store is dropped.
fn serve(
    namespace: Option<String>,
    name: String,
    inbox: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Result<String, String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let connected = runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("no Kubernetes API (in-cluster config or KUBECONFIG): {e}"))?;
        let ns = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        Ok::<_, String>((Api::<ConfigMap>::namespaced(client, &ns), ns))
    });
    let api = match connected {
        Ok((api, ns)) => {
            let _ = ready.send(Ok(ns));
            api
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Get(reply) => {
                let _ = reply.send(runtime.block_on(timed(get(&api, &name))));
            }
            Job::Put { stored, text, reply } => {
                let _ = reply.send(runtime.block_on(timed(put(&api, &name, stored, text))));
            }
        }
    }
}

async fn timed<T>(call: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))
}

async fn get(api: &Api<ConfigMap>, name: &str) -> Result<Option<Box<ConfigMap>>, String> {
    let Some(cm) = api.get_opt(name).await.map_err(|e| e.to_string())? else { return Ok(None) };
    if cm.metadata.resource_version.is_none() {
        return Err("the ConfigMap has no resourceVersion".into());
    }
    Ok(Some(Box::new(cm)))
}

async fn put(
    api: &Api<ConfigMap>,
    name: &str,
    stored: Option<Box<ConfigMap>>,
    text: String,
) -> Result<Written, String> {
    let params = PostParams { field_manager: Some("zonekeeper".into()), ..Default::default() };
    let result = match stored {
        // The resourceVersion read stays in the object: the API server takes the PUT only
        // when the ConfigMap is still at it.
        Some(mut object) => {
            object.metadata.managed_fields = None;
            object.data.get_or_insert_default().insert(KEY.to_string(), text);
            api.replace(name, &params, &object).await.map(|_| ())
        }
        None => {
            let labels = BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), "zonekeeper".to_string()),
                ("app.kubernetes.io/component".to_string(), "state".to_string()),
            ]);
            let object = ConfigMap {
                metadata: ObjectMeta { name: Some(name.to_string()), labels: Some(labels), ..Default::default() },
                data: Some(BTreeMap::from([(KEY.to_string(), text)])),
                ..Default::default()
            };
            api.create(&params, &object).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Written::Done),
        // 409: the resourceVersion is stale, or the ConfigMap was created meanwhile.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Written::Conflict),
        Err(e) => Err(e.to_string()),
    }
}
