//! `zonekeeper run`: the long-running reconciler.
//!
//! ```text
//!  triggers (poll, webhook, files, resync, API, retry, SIGHUP)
//!        │  Scheduler::trigger: coalesced, never queued
//!        ▼
//!  coordinator (async): debounce ─► one batch at a time ─► worker thread ─► Report
//!        ▲                                                     │
//!        └──────────── retry with backoff on failure ◄─────────┘
//!  HTTP (axum): /api/v1/*, /ui, /metrics, /healthz, /readyz read `Shared`
//! ```
//!
//! The worker is one thread that owns the sources' last good state and calls
//! `reconcile.rs`, so a reconcile here and `zonekeeper plan` compute the same thing. At most
//! one reconcile runs at a time; a trigger while one runs schedules exactly one more.
//! A new trigger source is one task that calls `Scheduler::trigger` (see `triggers`).

pub mod auth;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod state;
pub mod tls;
mod triggers;
mod ui;
pub mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio::time::Instant;

use crate::model::Name;
use crate::secrets::Secrets;
use crate::sources::Health;
use crate::sources::repo::Repo;

/// What set a reconcile off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// The first reconcile after the process starts.
    Startup,
    /// The poll interval passed: is there a new commit?
    Poll,
    /// A forge announced a push (`POST /api/v1/webhook/git`).
    Webhook,
    /// Files changed under a `--worktree` repository.
    Files,
    /// The periodic resync: every target is read afresh.
    Resync,
    /// `POST /api/v1/reconcile`.
    Api,
    /// The last reconcile failed; this is its retry.
    Retry,
    /// SIGHUP: the settings were reloaded.
    Reload,
    /// A source beside the repository changed (a watch event).
    Source,
    /// This replica became the leader: it reads every target and applies what is pending.
    Leader,
}

impl Trigger {
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Poll => "poll",
            Trigger::Webhook => "webhook",
            Trigger::Files => "files",
            Trigger::Resync => "resync",
            Trigger::Api => "api",
            Trigger::Retry => "retry",
            Trigger::Reload => "reload",
            Trigger::Source => "source",
            Trigger::Leader => "leader",
        }
    }

    /// A full reconcile reads every target zone; the others re-plan only the zones whose
    /// desired state moved since the last clean run.
    pub fn full(self) -> bool {
        matches!(
            self,
            Trigger::Startup | Trigger::Resync | Trigger::Api | Trigger::Retry | Trigger::Reload | Trigger::Leader
        )
    }
}

/// The triggers one reconcile answers.
#[derive(Debug, Clone)]
pub struct Batch {
    pub triggers: Vec<Trigger>,
    pub full: bool,
}

impl Batch {
    /// The trigger the reconcile is counted under: the first full one, else the first.
    pub fn label(&self) -> &'static str {
        self.triggers.iter().find(|t| t.full()).or(self.triggers.first()).map_or("startup", |t| t.label())
    }
}

/// One problem of one reconcile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorItem {
    /// Low-cardinality: source, settings, target (a zone could not be read or written),
    /// apply (changes failed), refused (the plan breaks a safety rule), lock, parse, read...
    pub reason: &'static str,
    pub place: String,
    pub message: String,
    /// The target it concerns, when it concerns one: what its health is judged by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What one reconcile did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub trigger: &'static str,
    pub started: String,
    pub seconds: f64,
    /// applied, in_sync, planned (dry run), standby (planned by a replica that does not hold
    /// the leader lease: it writes nothing), unchanged (no target read: nothing moved),
    /// failed (no desired state in force).
    pub outcome: &'static str,
    pub dry_run: bool,
    pub source: Option<String>,
    pub commit: Option<String>,
    /// The zones a scoped run read; `None` for a full run.
    pub scope: Option<Vec<Name>>,
    pub planned: usize,
    pub applied: usize,
    pub errors: Vec<ErrorItem>,
}

impl Report {
    /// Records a problem of this run; `target` when it concerns one.
    pub fn error(
        &mut self,
        reason: &'static str,
        place: impl Into<String>,
        message: impl Into<String>,
        target: Option<String>,
    ) {
        self.errors.push(ErrorItem { reason, place: place.into(), message: message.into(), target });
    }

    pub fn clean(&self) -> bool {
        self.errors.is_empty() && self.outcome != "failed"
    }
}

/// What the event stream (`GET /api/v1/events`) carries.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ReconcileStarted {
        trigger: &'static str,
        at: String,
    },
    ChangeApplied {
        target: String,
        zone: Name,
        op: &'static str,
        name: Name,
        #[serde(rename = "type")]
        rtype: String,
        old: String,
        new: String,
        result: &'static str,
        message: String,
    },
    ReconcileFinished {
        report: Report,
    },
}

/// What the process knows now, for the API and the UI.
#[derive(Debug, Default, serde::Serialize)]
pub struct Status {
    pub version: &'static str,
    pub dry_run: bool,
    /// A desired state is in force (loaded now or earlier).
    pub settings_loaded: bool,
    pub commit: Option<String>,
    pub source: Option<String>,
    pub last_reconcile: Option<Report>,
    pub last_success: Option<String>,
    pub reconciles: u64,
    pub failures: u64,
    pub sources: BTreeMap<String, Health>,
    pub targets: BTreeMap<String, Health>,
    /// This process writes: it holds the leader lease, or leads alone.
    pub leader: bool,
    /// The lease and the identity this process takes part in the election with.
    pub election: Option<String>,
    #[serde(skip)]
    pub plan: Option<serde_json::Value>,
    #[serde(skip)]
    pub records: Vec<crate::reconcile::RecordRow>,
}

/// What the worker, the coordinator and the HTTP handlers share.
pub struct Shared {
    pub status: RwLock<Status>,
    pub metrics: Arc<metrics::Metrics>,
    pub events: broadcast::Sender<Event>,
    pub state_file: state::StateStore,
    /// Whether this process may write (leader election, or alone).
    pub leader: leader::Leadership,
    pub scheduler: Scheduler,
}

impl Shared {
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.write() {
            change(&mut s);
        }
    }

    pub fn emit(&self, event: Event) {
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// Coalesces triggers: however many arrive, at most one batch waits, and it is taken whole.
#[derive(Default)]
pub struct Scheduler {
    pending: Mutex<Option<Pending>>,
    notify: Notify,
}

struct Pending {
    triggers: Vec<Trigger>,
    first: Instant,
    last: Instant,
}

impl Scheduler {
    pub fn trigger(&self, t: Trigger) {
        let now = Instant::now();
        if let Ok(mut p) = self.pending.lock() {
            match p.as_mut() {
                Some(p) => {
                    if !p.triggers.contains(&t) {
                        p.triggers.push(t);
                    }
                    p.last = now;
                }
                None => *p = Some(Pending { triggers: vec![t], first: now, last: now }),
            }
        }
        self.notify.notify_one();
    }

    /// When the waiting batch is due: `debounce` after its last trigger, but no later than
    /// `max_wait` after its first, so that a steady stream of events still gets reconciled.
    fn due(&self, debounce: Duration, max_wait: Duration) -> Option<Instant> {
        let p = self.pending.lock().ok()?;
        let p = p.as_ref()?;
        Some((p.last + debounce).min(p.first + max_wait))
    }

    fn take(&self) -> Option<Batch> {
        let p = self.pending.lock().ok()?.take()?;
        let full = p.triggers.iter().any(|t| t.full());
        Some(Batch { triggers: p.triggers, full })
    }
}

/// How `run` is set up: from the command line and the environment, never from the
/// repository (which is untrusted input).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub dry_run: bool,
    pub once: bool,
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub poll: Duration,
    pub resync: Duration,
    pub debounce: Duration,
    pub shutdown_timeout: Duration,
    pub state: state::StateLocation,
    pub lock_dir: PathBuf,
    /// Let anyone who reaches the API port read status, records, plan and events.
    pub open_reads: bool,
    pub webhook_secret: Option<auth::WebhookSecret>,
    /// Watch the files of a local `--worktree` repository.
    pub watch: Option<PathBuf>,
    /// Serve the API and the UI over TLS: the certificate chain and the key, PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Take part in a leader election; `None`: lead alone.
    pub election: Option<leader::Election>,
}

/// Re-reads the operator's credentials on SIGHUP.
pub type Reload = Box<dyn Fn() -> anyhow::Result<Secrets> + Send + Sync>;

/// How a `run` ended.
#[derive(Debug)]
pub enum Ended {
    /// `--once`: the report of its one reconcile.
    Once(Report),
    /// SIGTERM or SIGINT, and everything stopped in time.
    Stopped,
    /// SIGTERM or SIGINT, and the reconcile in flight did not finish in time.
    StoppedLate,
}

/// Runs the process until SIGTERM or SIGINT (or, with `--once`, one reconcile).
pub fn run(options: RunOptions, repo: Repo, secrets: Secrets, reload: Reload) -> anyhow::Result<Ended> {
    use anyhow::Context;
    let state_file = options.state.open().context("the state document")?;
    // A state document that cannot be read stops the start: it is never read as empty.
    state_file.read().context("the state document")?;
    tracing::info!(state = %state_file.shown(), "the state document");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("zonekeeper-http")
        .build()
        .context("cannot start the async runtime")?;
    let metrics = Arc::new(metrics::Metrics::new());
    crate::targets::telemetry::set(Box::new(metrics::RequestRecorder(metrics.clone())));
    let (events, _) = broadcast::channel(1024);
    let (stop_election, stopped) = watch::channel(false);
    let (leader, election) = match &options.election {
        None => (leader::Leadership::alone(), None),
        Some(e) => {
            let (l, task) = runtime.block_on(leader::Leadership::join(e.clone(), stopped))?;
            (l, Some(task))
        }
    };
    let shared = Arc::new(Shared {
        status: RwLock::new(Status {
            version: env!("CARGO_PKG_VERSION"),
            dry_run: options.dry_run,
            ..Default::default()
        }),
        metrics,
        events,
        state_file,
        scheduler: Scheduler::default(),
        leader,
    });
    let ended = runtime.block_on(serve(options, shared, (repo, secrets), reload));
    if let Some(task) = election {
        // Released on the way out, so another replica takes over now, not at expiry.
        let _ = stop_election.send(true);
        if runtime.block_on(tokio::time::timeout(Duration::from_secs(5), task)).is_err() {
            tracing::warn!("the lease was not released in time; it expires by itself");
        }
    }
    ended
}

/// A request to the worker thread.
enum Job {
    Reconcile(Batch, oneshot::Sender<Report>),
    Secrets(Secrets),
}

async fn serve(
    options: RunOptions,
    shared: Arc<Shared>,
    (repo, secrets): (Repo, Secrets),
    reload: Reload,
) -> anyhow::Result<Ended> {
    use anyhow::Context;
    let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
    let span = tracing::Span::current();
    let (dry_run, lock_dir, for_worker) = (options.dry_run, options.lock_dir.clone(), shared.clone());
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("zonekeeper-reconcile".into())
        .spawn(move || {
            let _span = span.entered();
            // Made on its thread: the targets it builds and keeps live there.
            let mut worker = worker::Worker::new(repo, secrets, dry_run, lock_dir, for_worker, runtime);
            for job in inbox {
                match job {
                    Job::Reconcile(batch, done) => {
                        let _ = done.send(worker.reconcile(&batch));
                    }
                    Job::Secrets(s) => worker.set_secrets(s),
                }
            }
        })
        .context("cannot start the reconcile thread")?;
    let (stop_tx, stop) = watch::channel(false);

    if !options.once {
        let tls = match &options.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let api = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", options.listen))?;
        let ops = tokio::net::TcpListener::bind(options.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--metrics-listen)", options.metrics_listen))?;
        if tls.is_none() && !options.listen.ip().is_loopback() {
            tracing::warn!(listen = %options.listen, "the API and UI are served over plain http on a non-loopback address; put TLS in front of it");
        }
        tracing::info!(api = %api.local_addr().unwrap_or(options.listen), metrics = %ops.local_addr().unwrap_or(options.metrics_listen), "listening");
        let app = http::api_router(shared.clone(), &options);
        let ops_app = http::ops_router(shared.clone());
        let mut s1 = stop.clone();
        let mut s2 = stop.clone();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let stopped = async move {
            let _ = s1.wait_for(|s| *s).await;
        };
        match tls {
            Some(acceptor) => {
                use axum::serve::ListenerExt;
                // `tap_io` gives the TLS listener the peer address as ConnectInfo.
                let listener = tls::TlsListener::new(api, acceptor)?.tap_io(|_| {});
                spawn(async move {
                    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                        tracing::error!(error = %e, "the API server stopped");
                    }
                });
            }
            None => spawn(async move {
                if let Err(e) = axum::serve(api, app).with_graceful_shutdown(stopped).await {
                    tracing::error!(error = %e, "the API server stopped");
                }
            }),
        }
        spawn(async move {
            let r = axum::serve(ops, ops_app)
                .with_graceful_shutdown(async move {
                    let _ = s2.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "the metrics server stopped");
            }
        });
        triggers::start(&options, shared.clone(), stop.clone());
    }

    // SIGHUP: the credentials file is read again and everything is reconciled.
    {
        let shared = shared.clone();
        let jobs = jobs.clone();
        spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                match reload() {
                    Ok(secrets) => {
                        tracing::info!("SIGHUP: the settings were reloaded");
                        let _ = jobs.send(Job::Secrets(secrets));
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "SIGHUP: the settings could not be reloaded; the old ones stay in force")
                    }
                }
                shared.scheduler.trigger(Trigger::Reload);
            }
        });
    }

    triggers::leadership(shared.clone(), stop.clone());
    shared.scheduler.trigger(Trigger::Startup);
    let coordinator = coordinate(options.clone(), shared.clone(), jobs, stop.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM")?;
    let mut coordinator = std::pin::pin!(coordinator);
    let signal = tokio::select! {
        ended = &mut coordinator => return ended,
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    tracing::info!(
        signal,
        timeout_seconds = options.shutdown_timeout.as_secs(),
        "stopping: no new reconcile starts; the one in flight finishes its current write"
    );
    crate::targets::request_stop();
    let _ = stop_tx.send(true);
    match tokio::time::timeout(options.shutdown_timeout, coordinator).await {
        // `--once` stopped mid-run: its report says whether it finished.
        Ok(Ok(Ended::Once(report))) => Ok(Ended::Once(report)),
        Ok(_) => {
            tracing::info!("stopped");
            Ok(Ended::Stopped)
        }
        Err(_) => {
            tracing::warn!(
                "the reconcile in flight did not finish in time; stopping anyway (the next start finishes the job)"
            );
            Ok(Ended::StoppedLate)
        }
    }
}

/// The loop: wait for a trigger, debounce, run one batch, retry failures with backoff.
async fn coordinate(
    options: RunOptions,
    shared: Arc<Shared>,
    jobs: std::sync::mpsc::Sender<Job>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let max_wait = (options.debounce * 10).max(Duration::from_secs(2));
    let mut retries = 0u32;
    // At most one retry waits at a time, however many runs fail meanwhile.
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = shared.scheduler.notify.notified() => {}
            _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
        }
        while let Some(due) = shared.scheduler.due(options.debounce, max_wait) {
            if Instant::now() >= due {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
            }
        }
        if *stop.borrow() {
            return Ok(Ended::Stopped);
        }
        // A permit left by a trigger already taken into the last batch: nothing waits.
        let Some(batch) = shared.scheduler.take() else { continue };
        let (done, report) = oneshot::channel();
        if jobs.send(Job::Reconcile(batch, done)).is_err() {
            anyhow::bail!("the reconcile thread stopped");
        }
        let Ok(report) = report.await else { anyhow::bail!("the reconcile thread stopped") };
        if options.once {
            return Ok(Ended::Once(report));
        }
        // A source that failed while a good state was applied (an invalid commit held back,
        // a fetch that failed) is not retried here: the next commit, poll or webhook reads it
        // again, and reading every target meanwhile would buy nothing.
        let source_only = report.outcome != "failed" && report.errors.iter().all(|e| e.reason == "source");
        use std::sync::atomic::Ordering;
        if report.clean() {
            retries = 0;
        } else if !source_only && !armed.swap(true, Ordering::SeqCst) {
            retries += 1;
            let wait = retry_wait(retries);
            tracing::info!(attempt = retries, wait_seconds = wait.as_secs_f64(), "the reconcile will be retried");
            let shared = shared.clone();
            let mut stop = stop.clone();
            let armed = armed.clone();
            spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {
                        armed.store(false, Ordering::SeqCst);
                        shared.scheduler.trigger(Trigger::Retry);
                    }
                    _ = stop.wait_for(|s| *s) => {}
                }
            });
        }
    }
}

/// `tokio::spawn` inside the process's span, so every log line of the task carries `app`
/// and `version`.
fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    use tracing::Instrument;
    tokio::spawn(task.instrument(tracing::Span::current()));
}

/// The wait before the `n`th retry: 1 s doubling to 5 min, with jitter.
fn retry_wait(n: u32) -> Duration {
    use backon::BackoffBuilder;
    let mut waits = backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(n as usize)
        .build();
    waits.nth(n.saturating_sub(1) as usize).unwrap_or(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn triggers_coalesce_into_one_batch() {
        let s = Scheduler::default();
        for _ in 0..50 {
            s.trigger(Trigger::Webhook);
        }
        s.trigger(Trigger::Poll);
        let b = s.take().unwrap();
        assert_eq!(b.triggers, vec![Trigger::Webhook, Trigger::Poll]);
        assert!(!b.full);
        assert!(s.take().is_none(), "one batch, taken whole");
        s.trigger(Trigger::Poll);
        s.trigger(Trigger::Resync);
        let b = s.take().unwrap();
        assert!(b.full);
        assert_eq!(b.label(), "resync");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_due_by_the_longest_wait() {
        let s = Scheduler::default();
        let debounce = Duration::from_millis(500);
        let max = Duration::from_secs(5);
        let start = Instant::now();
        s.trigger(Trigger::Files);
        assert_eq!(s.due(debounce, max), Some(start + debounce));
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(400)).await;
            s.trigger(Trigger::Files);
        }
        assert_eq!(s.due(debounce, max), Some(start + max), "never later than max_wait after the first");
    }

    #[test]
    fn retries_back_off() {
        let first = retry_wait(1);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2), "{first:?}");
        let later = retry_wait(5);
        assert!(later >= Duration::from_secs(16), "{later:?}");
        assert!(retry_wait(30) <= Duration::from_secs(600));
    }
}
