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
    /// Keep the state document in this ConfigMap (key state.json) instead of a file: for a
    /// pod, whose root filesystem is read-only, and for replicas that share it. Created when
    /// missing; namespace default: the pod's (or the kubeconfig context's).
    #[arg(long, env = "ZONEKEEPER_STATE_CONFIGMAP", value_name = "[NAMESPACE/]NAME", conflicts_with = "state")]
    pub(super) state_configmap: Option<String>,
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
    /// Elect one writer among replicas with a coordination.k8s.io/v1 Lease. On by itself
    /// in a pod (KUBERNETES_SERVICE_HOST is set) unless --no-leader-election; this flag turns
    /// it on elsewhere (a kubeconfig). Every replica plans and serves; only the leader writes.
    #[arg(long, conflicts_with = "no_leader_election")]
    pub(super) leader_election: bool,
    /// Lead alone, even in a pod (a single replica). `--once` always leads alone.
    #[arg(long)]
    pub(super) no_leader_election: bool,
    /// The Lease's name.
    #[arg(long, env = "ZONEKEEPER_LEASE", value_name = "NAME", default_value = "zonekeeper")]
    pub(super) lease: String,
    /// The Lease's namespace. Default: $POD_NAMESPACE, else the pod's service-account
    /// namespace, else `default`.
    #[arg(long, env = "ZONEKEEPER_LEASE_NAMESPACE", value_name = "NAMESPACE")]
    pub(super) lease_namespace: Option<String>,
    /// This replica's identity in the Lease. Default: $POD_NAME, else the host name.
    #[arg(long, env = "ZONEKEEPER_LEASE_IDENTITY", value_name = "NAME")]
    pub(super) lease_identity: Option<String>,
    /// How long a lease lasts unrenewed, in seconds: a stopped leader is replaced within it.
    #[arg(long, value_name = "SECONDS", default_value = "15", value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub(super) lease_duration: u64,
    /// The leader renews this many seconds before its lease would expire.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = clap::value_parser!(u64).range(1..=3599))]
    pub(super) lease_renew_before: u64,
}

/// The election `run` takes part in, if any.
fn election(args: &RunArgs) -> Result<Option<zonekeeper::daemon::leader::Election>> {
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if args.no_leader_election || !(args.leader_election || in_pod && !args.once) {
        return Ok(None);
    }
    if args.lease_renew_before >= args.lease_duration {
        bail!(
            "--lease-renew-before ({}) must be less than --lease-duration ({})",
            args.lease_renew_before,
            args.lease_duration
        );
    }
    const SA_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    let namespace = args
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| std::fs::read_to_string(SA_NAMESPACE).ok().map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let identity = args
        .lease_identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|n| !n.is_empty())
        .context("no identity for the leader election: set POD_NAME or --lease-identity")?;
    Ok(Some(zonekeeper::daemon::leader::Election {
        lease: args.lease.clone(),
        namespace,
        identity,
        duration: Duration::from_secs(args.lease_duration),
        grace: Duration::from_secs(args.lease_renew_before),
    }))
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
        ref state_configmap,
        open_reads,
        ref webhook_secret_file,
        ref tls_cert,
        ref tls_key,
        ..
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
        state: state_location(state.as_deref(), state_configmap.as_deref())?,
        lock_dir: cache_root()?.join("locks"),
        open_reads,
        webhook_secret: webhook_secret(webhook_secret_file.as_deref())?,
        watch: (origin.worktree && origin.remote().is_none()).then(|| cli.repo.clone()),
        tls: tls_cert.clone().zip(tls_key.clone()),
        election: election(args)?,
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
pub(super) fn token(action: &TokenAction, state: &StateLocation) -> Result<ExitCode> {
    use zonekeeper::daemon::auth;
    let file = state.open()?;
    match action {
        TokenAction::Create { name } => {
            let token = auth::create(&file, name, &zonekeeper::daemon::state::now())?;
            eprintln!("token `{name}` created; it is shown this once, keep it in a secret store:");
            println!("{token}");
        }
        TokenAction::List => {
            let doc = file.read()?;
            if doc.tokens.is_empty() {
                eprintln!("no tokens in {}", file.shown());
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
