//! `zonekeeper run` and `zonekeeper token`.

use super::*;

// What `zonekeeper run` is asked for.
#[derive(clap::Args)]
pub(super) struct RunArgs {
    /// Plan and report on every trigger; never write to a target.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// One reconcile, then exit: 0 when it was clean, 1 otherwise (for systemd timers and CI).
    #[arg(long)]
    pub(super) once: bool,
    /// Where the API and the web UI listen.
    #[arg(long, env = "ZONEKEEPER_LISTEN", default_value = "127.0.0.1:8080")]
    pub(super) listen: std::net::SocketAddr,
    /// Where /metrics, /healthz and /readyz listen.
    #[arg(long, env = "ZONEKEEPER_METRICS_LISTEN", default_value = "127.0.0.1:9090")]
    pub(super) metrics_listen: std::net::SocketAddr,
    /// How often to look for a new commit, in seconds (0: only webhooks and resyncs).
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = clap::value_parser!(u64).range(0..=604800))]
    pub(super) poll: u64,
    /// How often to read every target afresh, in seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = clap::value_parser!(u64).range(0..=604800))]
    pub(super) resync: u64,
    /// Wait this long after the last of a burst of triggers before reconciling, in ms.
    #[arg(long, value_name = "MS", default_value = "500", value_parser = clap::value_parser!(u64).range(0..=600000))]
    pub(super) debounce: u64,
    /// On SIGTERM, give the reconcile in flight this long to finish its write, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(super) shutdown_timeout: u64,
    /// The state document: tokens (hashed) and the last good commit. Default
    /// $XDG_STATE_HOME/zonekeeper/state.json, else ~/.local/state/zonekeeper/state.json.
    #[arg(long, env = "ZONEKEEPER_STATE", value_name = "FILE")]
    pub(super) state: Option<PathBuf>,
    /// Let anyone who reaches --listen read status, records, plan and events without a
    /// token (writes always need one).
    #[arg(long)]
    pub(super) open_reads: bool,
    /// A file holding the secret of git webhooks (GitHub's HMAC secret or GitLab's token);
    /// or ZONEKEEPER_WEBHOOK_SECRET. Without one, the webhook endpoint answers 404.
    #[arg(long, env = "ZONEKEEPER_WEBHOOK_SECRET_FILE", value_name = "PATH")]
    pub(super) webhook_secret_file: Option<PathBuf>,
    /// Serve the API and the UI over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "ZONEKEEPER_TLS_CERT", value_name = "PATH", requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "ZONEKEEPER_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
}

/// `zonekeeper run`.
pub(super) fn run(cli: &Cli, origin: Origin, args: &RunArgs) -> Result<ExitCode> {
    let RunArgs {
        dry_run,
        once,
        listen,
        metrics_listen,
        poll,
        resync,
        debounce,
        shutdown_timeout,
        ref state,
        open_reads,
        ref webhook_secret_file,
        ref tls_cert,
        ref tls_key,
    } = *args;
    let options = zonekeeper::daemon::RunOptions {
        dry_run,
        once,
        listen,
        metrics_listen,
        poll: Duration::from_secs(poll),
        resync: Duration::from_secs(resync),
        debounce: Duration::from_millis(debounce),
        shutdown_timeout: Duration::from_secs(shutdown_timeout),
        state: state_path(state.as_deref())?,
        lock_dir: cache_root()?.join("locks"),
        open_reads,
        webhook_secret: webhook_secret(webhook_secret_file.as_deref())?,
        watch: (origin.worktree && origin.remote().is_none()).then(|| cli.repo.clone()),
        tls: tls_cert.clone().zip(tls_key.clone()),
    };
    let (credentials, repo, remote) = (cli.credentials.clone(), cli.repo.clone(), origin.remote().is_some());
    let reload: zonekeeper::daemon::Reload =
        Box::new(move || read_secrets(credentials.as_deref(), &repo, remote, false));
    let Origin { repo, secrets } = origin;
    match zonekeeper::daemon::run(options, repo, secrets, reload)? {
        zonekeeper::daemon::Ended::Once(report) => {
            Ok(if report.clean() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        zonekeeper::daemon::Ended::Stopped => Ok(ExitCode::SUCCESS),
        zonekeeper::daemon::Ended::StoppedLate => Ok(ExitCode::from(1)),
    }
}

/// `zonekeeper token create|list|revoke`.
pub(super) fn token(action: &TokenAction, state: &Path) -> Result<ExitCode> {
    use zonekeeper::daemon::{auth, state::StateFile};
    let file = StateFile::new(state);
    match action {
        TokenAction::Create { name } => {
            let token = auth::create(&file, name, &zonekeeper::daemon::state::now())?;
            eprintln!("token `{name}` created; it is shown this once, keep it in a secret store:");
            println!("{token}");
        }
        TokenAction::List => {
            let doc = file.read()?;
            if doc.tokens.is_empty() {
                eprintln!("no tokens in {}", file.path().display());
            }
            for (name, t) in &doc.tokens {
                println!("{name}\t{}", t.created);
            }
        }
        TokenAction::Revoke { name } => {
            auth::revoke(&file, name)?;
            eprintln!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
