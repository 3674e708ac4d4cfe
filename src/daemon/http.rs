//! What the process serves. Two listeners: the API and the UI on one (`--listen`), metrics
//! and health on the other (`--metrics-listen`), so a scrape or a probe never needs a token
//! and the API can stay on loopback or behind a proxy.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::auth::{self, WebhookSecret};
use super::{RunOptions, Shared, Trigger};
use crate::sources::HealthState;

/// Failed authentications an address may make before it waits.
const FAILURES_BURST: u32 = 10;
/// How long an address that used up its failures waits.
const FAILURE_PENALTY: Duration = Duration::from_secs(10);

struct Api {
    shared: Arc<Shared>,
    open_reads: bool,
    webhook: Option<WebhookSecret>,
    /// Failed tokens, and failed webhook checks, counted apart: a scanner that fails the one
    /// never slows the forge's deliveries.
    tokens: Throttle,
    hooks: Throttle,
}

/// Failed attempts per address: past a burst, the address's failures get 429 for a while.
/// A request that succeeds is never held back by it, so clients behind one proxy address
/// are not locked out by someone else's failures.
struct Throttle {
    failures: governor::DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Throttle {
    fn new() -> Throttle {
        let quota = governor::Quota::per_second(std::num::NonZeroU32::MIN)
            .allow_burst(std::num::NonZeroU32::new(FAILURES_BURST).unwrap_or(std::num::NonZeroU32::MIN));
        Throttle { failures: governor::RateLimiter::keyed(quota), blocked: Mutex::new(HashMap::new()) }
    }

    fn is_blocked(&self, ip: IpAddr) -> bool {
        let Ok(mut b) = self.blocked.lock() else { return false };
        match b.get(&ip) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                b.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Counts a failed attempt of `ip`: the refusal to send, 401 or (past the burst) 429.
    fn failed(&self, ip: IpAddr) -> Denied {
        // Addresses that stopped failing are forgotten, so the maps stay small.
        if self.failures.len() > 4096 {
            self.failures.retain_recent();
        }
        let over = self.failures.check_key(&ip).is_err();
        if let Ok(mut b) = self.blocked.lock() {
            let now = Instant::now();
            b.retain(|_, until| *until > now);
            if over {
                b.insert(ip, now + FAILURE_PENALTY);
            }
        }
        if over || self.is_blocked(ip) { Denied::TooMany } else { Denied::Unauthorized }
    }
}

impl Api {
    /// The name of the bearer token the request carries, if it is a current one.
    fn token(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let doc = match self.shared.state_file.read() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the tokens");
                return None;
            }
        };
        auth::check(&doc, token.trim())
    }

    /// `Ok(name)` for a request with a current token; the refusal otherwise: 401 with no
    /// detail, or 429 for an address that failed too often.
    fn authorize(&self, ip: IpAddr, headers: &HeaderMap) -> Result<String, Denied> {
        self.token(headers).ok_or_else(|| self.tokens.failed(ip))
    }

    fn may_read(&self, ip: IpAddr, headers: &HeaderMap) -> Result<(), Denied> {
        if self.open_reads { Ok(()) } else { self.authorize(ip, headers).map(|_| ()) }
    }
}

/// Why a request is refused; the body says nothing more.
enum Denied {
    Unauthorized,
    TooMany,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Unauthorized => unauthorized(),
            Denied::TooMany => too_many(),
        }
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))], "").into_response()
}

fn too_many() -> Response {
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, HeaderValue::from_static("10"))], "").into_response()
}

fn json(value: impl serde::Serialize) -> Response {
    match serde_json::to_vec(&value) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

type Ctx = State<Arc<Api>>;
type Peer = ConnectInfo<SocketAddr>;

pub fn api_router(shared: Arc<Shared>, options: &RunOptions) -> Router {
    let api = Arc::new(Api {
        shared,
        open_reads: options.open_reads,
        webhook: options.webhook_secret.clone(),
        tokens: Throttle::new(),
        hooks: Throttle::new(),
    });
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::temporary("/ui") }))
        .route("/ui", get(ui))
        .route("/api/v1/status", get(status))
        .route("/api/v1/records", get(records))
        .route("/api/v1/plan", get(plan))
        .route("/api/v1/events", get(events))
        .route("/api/v1/reconcile", post(reconcile))
        .route("/api/v1/webhook/git", post(webhook))
        .with_state(api)
}

pub fn ops_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn ui() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // Everything is in the page itself: nothing may load from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                ),
            ),
        ],
        super::ui::PAGE,
    )
        .into_response()
}

async fn status(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    if let Err(r) = api.may_read(peer.ip(), &headers) {
        return r.into_response();
    }
    match api.shared.status.read() {
        Ok(s) => json(&*s),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn records(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    if let Err(r) = api.may_read(peer.ip(), &headers) {
        return r.into_response();
    }
    match api.shared.status.read() {
        Ok(s) => json(serde_json::json!({ "version": 1, "records": s.records })),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn plan(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    if let Err(r) = api.may_read(peer.ip(), &headers) {
        return r.into_response();
    }
    let plan = api.shared.status.read().ok().and_then(|s| s.plan.clone());
    match plan {
        Some(p) => json(p),
        None => {
            (StatusCode::SERVICE_UNAVAILABLE, "no plan yet: the first reconcile has not finished\n").into_response()
        }
    }
}

async fn events(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    use tokio_stream::StreamExt;
    if let Err(r) = api.may_read(peer.ip(), &headers) {
        return r.into_response();
    }
    let stream = tokio_stream::wrappers::BroadcastStream::new(api.shared.events.subscribe()).filter_map(|e| {
        // A subscriber that fell behind misses events, never blocks the worker.
        let e = e.ok()?;
        let name = match &e {
            super::Event::ReconcileStarted { .. } => "reconcile_started",
            super::Event::ChangeApplied { .. } => "change_applied",
            super::Event::ReconcileFinished { .. } => "reconcile_finished",
        };
        let data = serde_json::to_string(&e).ok()?;
        Some(Ok::<_, Infallible>(SseEvent::default().event(name).data(data)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

async fn reconcile(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    match api.authorize(peer.ip(), &headers) {
        Ok(name) => {
            tracing::info!(token = %name, "reconcile asked for through the API");
            api.shared.scheduler.trigger(Trigger::Api);
            (StatusCode::ACCEPTED, json(serde_json::json!({ "accepted": true }))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn webhook(State(api): Ctx, ConnectInfo(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &api.webhook else {
        return (StatusCode::NOT_FOUND, "no webhook secret is configured (--webhook-secret-file)\n").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !secret.verify(header("x-hub-signature-256"), header("x-gitlab-token"), &body) {
        return api.hooks.failed(peer.ip()).into_response();
    }
    let forge = if header("x-hub-signature-256").is_some() { "github" } else { "gitlab" };
    tracing::info!(forge, event = header("x-github-event").or(header("x-gitlab-event")).unwrap_or(""), "webhook");
    api.shared.scheduler.trigger(Trigger::Webhook);
    (StatusCode::ACCEPTED, json(serde_json::json!({ "accepted": true }))).into_response()
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), the classic text format
/// otherwise.
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let text = shared.metrics.encode();
    if open {
        let kind = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
        ([(header::CONTENT_TYPE, kind)], text).into_response()
    } else {
        let kind = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
        ([(header::CONTENT_TYPE, kind)], super::metrics::to_classic(&text)).into_response()
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let Ok(s) = shared.status.read() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let word = |h: &crate::sources::Health| match h.state {
        HealthState::Ok => "ok",
        HealthState::Degraded => "degraded",
        HealthState::Down => "down",
    };
    let mut body = serde_json::json!({
        "ready": s.settings_loaded,
        "leader": s.leader,
        "sources": s.sources.iter().map(|(n, h)| (n.clone(), serde_json::json!({"state": word(h), "error": h.error}))).collect::<serde_json::Map<_, _>>(),
        "targets": s.targets.iter().map(|(n, h)| (n.clone(), serde_json::json!({"state": word(h), "error": h.error}))).collect::<serde_json::Map<_, _>>(),
    });
    if !s.settings_loaded {
        body["why"] = "no desired state has loaded yet".into();
    }
    let code = if s.settings_loaded { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, json(body)).into_response()
}
