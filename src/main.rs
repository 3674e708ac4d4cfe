//! The zonekeeper command line: parses arguments, calls the library, renders results.
//! Nothing below this file prints to the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use zonekeeper::desired::diagnostic::ValidationReport;
use zonekeeper::desired::files::{Files, WorkTree};
use zonekeeper::desired::{self, DesiredState, Invalid, TargetKind, TargetSettings, yaml::DocKind};
use zonekeeper::model::Name;
use zonekeeper::plan::render;
use zonekeeper::reconcile;
use zonekeeper::secrets::Secrets;
use zonekeeper::sources::repo::{Loaded, Repo};
use zonekeeper::targets::Outcome;
use zonekeeper::targets::zonefile::ZoneFileTarget;

#[derive(Parser)]
#[command(
    name = "zonekeeper",
    version,
    about = "Keeps DNS in line with a git repository: YAML desired state, a readable plan, a safe apply.",
    long_about = "Keeps DNS in line with a git repository.\n\n\
        The repository holds zonekeeper.yaml (owner id, policy, views, zones, targets), records/<zone>.yaml \
        and resolvers/<set>.yaml. `plan` shows what would change at each target, `apply` makes the change, \
        touching only records this owner id owns."
)]
struct Cli {
    /// The desired-state repository: a directory holding zonekeeper.yaml, read at HEAD of the
    /// git repository it is in (or at --ref; its files on disk with --worktree, or when it is in
    /// no git repository), or a git URL (https://, ssh://, git://, file://) fetched into a
    /// cache (ZONEKEEPER_CACHE) and read at --ref (default HEAD). For a remote branch, an
    /// invalid new commit is reported and the last good one stays in force.
    #[arg(long, global = true, env = "ZONEKEEPER_REPO", default_value = ".")]
    repo: PathBuf,
    /// Read the desired state at this git revision of --repo (a branch, tag or commit)
    /// instead of HEAD.
    #[arg(long = "ref", global = true, value_name = "REV")]
    git_ref: Option<String>,
    /// Read the files on disk in --repo (uncommitted edits included) instead of HEAD: for
    /// local editing. `preview` always does.
    #[arg(long, global = true, conflicts_with = "git_ref")]
    worktree: bool,
    /// A file holding the token for https:// remotes (a forge's access or deploy token, sent as
    /// the password of HTTP basic auth). The token may instead be in ZONEKEEPER_GIT_TOKEN.
    #[arg(long, global = true, env = "ZONEKEEPER_GIT_TOKEN_FILE", value_name = "PATH")]
    git_token_file: Option<PathBuf>,
    /// The operator's credentials file: which API token may be sent to which origin (default
    /// $XDG_CONFIG_HOME/zonekeeper/credentials.yaml, else ~/.config/zonekeeper/credentials.yaml).
    /// Keep it outside the repository: a repository never says where a token is read from or
    /// sent to.
    #[arg(long, global = true, env = "ZONEKEEPER_CREDENTIALS", value_name = "PATH")]
    credentials: Option<PathBuf>,
    /// The user name sent with the git token when the URL names none.
    #[arg(long, global = true, env = "ZONEKEEPER_GIT_USER", default_value = "x-access-token")]
    git_user: String,
    /// How much to log on stderr.
    #[arg(long, global = true, env = "ZONEKEEPER_LOG", value_enum, ignore_case = true, default_value = "info")]
    log_level: LogLevel,
    /// Log lines as json or text (default: json when stderr is not a terminal).
    #[arg(long, global = true)]
    log_format: Option<LogFormat>,
    /// Stop the whole run after this many seconds, whatever it is waiting for (a git fetch, a
    /// server that does not answer), and exit 1; 0 for no limit. `preview --watch` has none.
    /// Writes are atomic and applies are resumable, so a stopped run leaves nothing half-done
    /// that the next run does not finish.
    #[arg(long, global = true, env = "ZONEKEEPER_TIMEOUT", value_name = "SECONDS", default_value = "1800")]
    timeout: u64,
    /// Give up one git fetch or push after this many seconds: a cached clone's last fetched
    /// commits then stay in force (a fetch), or the commit is not pushed (a push).
    #[arg(long, global = true, value_name = "SECONDS", default_value = "120", value_parser = clap::value_parser!(u64).range(1..=3600))]
    git_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Check every desired-state file; report every problem with file, line, column and field.
    Validate {
        /// How to report problems: text, json, or GitHub Actions annotations.
        #[arg(long, value_enum, default_value = "text")]
        format: ValidateFormat,
    },
    /// Show what would change at each target. Never writes.
    Plan {
        /// text for a terminal or log, markdown for a pull-request comment, json for machines,
        /// github for text plus annotations on a GitHub Actions run.
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
        /// Exit 0 when nothing changes, 2 when something would, 1 on error (like terraform).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan only this target.
        #[arg(long)]
        target: Option<String>,
        /// Colour the text output: auto (when a terminal), always, never.
        #[arg(long, value_enum, default_value = "auto")]
        color: Color,
        /// Leave out each target's native diff (zone file, hosts block).
        #[arg(long)]
        no_diff: bool,
        /// Also save the plan to FILE, for `apply FILE` to apply exactly this plan later.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Plan, then make the changes. Safety-limit, root-NS and emptied-zone refusals need
    /// --force. Each target is locked from before it is read until after it is written, so two runs
    /// never interleave.
    Apply {
        /// A plan saved by `plan --out FILE`: apply exactly it, and refuse (naming what moved)
        /// when the desired state or a target changed since it was made.
        #[arg(value_name = "PLAN")]
        saved: Option<PathBuf>,
        /// Apply only this target.
        #[arg(long)]
        target: Option<String>,
        /// Apply although a safety limit, a root NS change or emptying a zone refuses the plan.
        #[arg(long)]
        force: bool,
        /// Wait up to this many seconds for another run that holds a target's lock (default:
        /// fail at once, naming the lock).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        /// Colour the output: auto (when a terminal), always, never.
        #[arg(long, value_enum, default_value = "auto")]
        color: Color,
        /// text: the plan, then every change with its outcome; markdown: the plan and a table
        /// of outcomes (a job summary); json: one report (schema/apply.json) and nothing else.
        #[arg(long, value_enum, default_value = "text")]
        format: ApplyFormat,
    },
    /// Render the wanted names into a managed block of a hosts file; --watch keeps it in step.
    Preview {
        /// The hosts file to keep the block in, e.g. /etc/hosts (needs sudo) or ./hosts.
        #[arg(long)]
        hosts: PathBuf,
        /// Re-render on every change under the repository until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Which view's answers to render (default: the hosts target's view, or the first non-public view).
        #[arg(long)]
        view: Option<String>,
    },
    /// Print what a target holds now as records YAML (onboarding, backup).
    Export {
        /// The target to read, as named in zonekeeper.yaml.
        #[arg(long)]
        target: String,
        /// The zone to export from it.
        #[arg(long, required_unless_present = "corefile")]
        zone: Option<String>,
        /// Print the Corefile stanza that serves this zone-file target's zones instead.
        #[arg(long)]
        corefile: bool,
    },
    /// Read what every target holds, as YAML with owner and drift per record set; with
    /// --commit, commit it to the `commitBack` branch (and push it, for a remote --repo).
    Observe {
        /// Commit the observed state to git (needs `commitBack:` in zonekeeper.yaml).
        #[arg(long)]
        commit: bool,
    },
    /// Keep the targets in line as a long-running process: reconcile on every new commit
    /// (polled, or announced by a webhook), on file changes (--worktree), on a periodic resync
    /// and on request; serve an HTTP API, a web UI, metrics and health. Stops on SIGTERM or
    /// SIGINT after the write in flight; SIGHUP re-reads the credentials file.
    Run {
        /// Plan and report on every trigger; never write to a target.
        #[arg(long)]
        dry_run: bool,
        /// One reconcile, then exit: 0 when it was clean, 1 otherwise (for systemd timers and CI).
        #[arg(long)]
        once: bool,
        /// Where the API and the web UI listen.
        #[arg(long, env = "ZONEKEEPER_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where /metrics, /healthz and /readyz listen.
        #[arg(long, env = "ZONEKEEPER_METRICS_LISTEN", default_value = "127.0.0.1:9090")]
        metrics_listen: std::net::SocketAddr,
        /// How often to look for a new commit, in seconds (0: only webhooks and resyncs).
        #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = clap::value_parser!(u64).range(0..=604800))]
        poll: u64,
        /// How often to read every target afresh, in seconds (0: never).
        #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = clap::value_parser!(u64).range(0..=604800))]
        resync: u64,
        /// Wait this long after the last of a burst of triggers before reconciling, in ms.
        #[arg(long, value_name = "MS", default_value = "500", value_parser = clap::value_parser!(u64).range(0..=600000))]
        debounce: u64,
        /// On SIGTERM, give the reconcile in flight this long to finish its write, in seconds.
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=3600))]
        shutdown_timeout: u64,
        /// The state document: tokens (hashed) and the last good commit. Default
        /// $XDG_STATE_HOME/zonekeeper/state.json, else ~/.local/state/zonekeeper/state.json.
        #[arg(long, env = "ZONEKEEPER_STATE", value_name = "FILE")]
        state: Option<PathBuf>,
        /// Let anyone who reaches --listen read status, records, plan and events without a
        /// token (writes always need one).
        #[arg(long)]
        open_reads: bool,
        /// A file holding the secret of git webhooks (GitHub's HMAC secret or GitLab's token);
        /// or ZONEKEEPER_WEBHOOK_SECRET. Without one, the webhook endpoint answers 404.
        #[arg(long, env = "ZONEKEEPER_WEBHOOK_SECRET_FILE", value_name = "PATH")]
        webhook_secret_file: Option<PathBuf>,
        /// Serve the API and the UI over TLS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, env = "ZONEKEEPER_TLS_CERT", value_name = "PATH", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, env = "ZONEKEEPER_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Manage the API tokens of `run` (kept hashed in its state document).
    Token {
        #[command(subcommand)]
        action: TokenAction,
        /// The state document, as for `run --state`.
        #[arg(long, env = "ZONEKEEPER_STATE", value_name = "FILE", global = true)]
        state: Option<PathBuf>,
    },
    /// Write the JSON Schemas of the file formats to schema/ (from the Rust types).
    Schema {
        /// Fail if the files in schema/ differ from what would be written.
        #[arg(long)]
        check: bool,
        /// Where the schema files are (default: schema/ in --repo).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Make a token and print it: the only time it is shown.
    Create { name: String },
    /// List the tokens by name, with when each was made.
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum ValidateFormat {
    Text,
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…::`).
    Github,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ApplyFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Text,
    Markdown,
    Json,
    /// The text plan plus GitHub Actions annotations for refusals, drift and unread targets.
    Github,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error exits 1 like every other error (as terraform's does): with
            // --detailed-exitcode, 2 means "changes pending" and nothing else.
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    init_logs(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::new(format!("zonekeeper={}", cli.log_level.as_str()));
    let json = match cli.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        let _ = builder.json().with_current_span(false).try_init();
    } else {
        // Colour codes only for a terminal, never into a pipe or a file.
        let _ = builder.without_time().with_target(false).with_ansi(std::io::stderr().is_terminal()).try_init();
    }
}

/// Where the desired state comes from (`--repo`, `--ref`, the git token), and the operator's
/// API tokens, each bound to an origin.
struct Origin {
    repo: Repo,
    secrets: Secrets,
}

impl std::ops::Deref for Origin {
    type Target = Repo;
    fn deref(&self) -> &Repo {
        &self.repo
    }
}

impl Origin {
    /// Loads the desired state, first saying what a person should hear (a first clone, a
    /// failed fetch, uncommitted edits not read) on stderr.
    fn load(&self, hold_back: bool) -> Result<Loaded> {
        if let Some(line) = self.repo.first_clone() {
            eprintln!("{line}");
        }
        let loaded = self.repo.load(hold_back)?;
        for note in &loaded.notes {
            eprintln!("{note}");
        }
        Ok(loaded)
    }

    /// Runs `work` on the state in force and what was read. A newer commit held back is
    /// reported on stderr first, and the run then exits 1 whatever `work` returns, so a cron
    /// job or CI notices while the last good commit keeps being applied.
    fn with_state_in_force(&self, work: impl FnOnce(&DesiredState, &str) -> Result<ExitCode>) -> Result<ExitCode> {
        let Loaded { state, source, held_back, .. } = self.load(true)?;
        if let Some((bad, invalid)) = &held_back {
            eprintln!("error: in the {bad}: {invalid}");
            eprintln!("the last good {source} stays in force until a newer commit loads cleanly");
        }
        let state = state.with_context(|| format!("in the {source}"))?;
        let code = work(&state, &source)?;
        Ok(if held_back.is_some() { ExitCode::from(1) } else { code })
    }

    fn from_cli(cli: &Cli) -> Result<Origin> {
        let remote = zonekeeper::sources::git::is_url(&cli.repo.to_string_lossy());
        if remote && cli.worktree {
            bail!("--worktree reads a local directory's files; a git URL has none (use --ref to pick a commit)");
        }
        let repo = Repo {
            repo: cli.repo.clone(),
            rev: cli.git_ref.clone(),
            worktree: cli.worktree,
            git_timeout: Duration::from_secs(cli.git_timeout),
            purpose: if matches!(cli.command, Command::Export { .. }) {
                desired::Purpose::Export
            } else {
                desired::Purpose::Reconcile
            },
            // Only a remote needs the token: a bad token file must not stop local work.
            credentials: if remote { git_credentials(cli)? } else { None },
        };
        Ok(Origin {
            repo,
            // Only commands that reach targets read the credentials: a broken credentials file
            // must not stop validate, preview or schema.
            secrets: match cli.command {
                Command::Plan { .. }
                | Command::Apply { .. }
                | Command::Export { .. }
                | Command::Observe { .. }
                | Command::Run { .. } => load_secrets(cli, remote)?,
                _ => Secrets::none(),
            },
        })
    }
}

/// The token for https remotes: `ZONEKEEPER_GIT_TOKEN`, or the file `--git-token-file` names.
fn git_credentials(cli: &Cli) -> Result<Option<zonekeeper::sources::git::Credentials>> {
    use zonekeeper::sources::git::Credentials;
    let token = match (&cli.git_token_file, std::env::var("ZONEKEEPER_GIT_TOKEN")) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the git token file {}", path.display()))?;
            let token = text.trim().to_string();
            if token.is_empty() {
                bail!("the git token file {} is empty", path.display());
            }
            token
        }
        (None, Ok(token)) if !token.trim().is_empty() => token.trim().to_string(),
        _ => return Ok(None),
    };
    // SAFETY: called from `run` before any thread is started (logging is set up without one,
    // and gix, reqwest and the targets start theirs later), so nothing reads the environment
    // concurrently. The token then no longer reaches the children gix spawns (ssh, git).
    unsafe { std::env::remove_var("ZONEKEEPER_GIT_TOKEN") };
    Ok(Some(Credentials::new(cli.git_user.clone(), token)))
}

/// The operator's credentials file, read with every token it names. A token's environment
/// variable is then removed, so that no child process (git, ssh) inherits it.
fn load_secrets(cli: &Cli, remote: bool) -> Result<Secrets> {
    read_secrets(cli.credentials.as_deref(), &cli.repo, remote, true)
}

/// `load_secrets` from its parts; with `remove_env` false (a reload, when threads run), the
/// environment is left as it is: the variables it named were removed at the start.
fn read_secrets(credentials: Option<&Path>, repo_dir: &Path, remote: bool, remove_env: bool) -> Result<Secrets> {
    let (path, required) = match credentials {
        Some(p) => (p.to_path_buf(), true),
        None => match zonekeeper::secrets::default_path() {
            Some(p) => (p, false),
            None => return Ok(Secrets::none()),
        },
    };
    // A credentials file, or a token or CA file it names, inside the repository would be the
    // repository's to change.
    let repo = if remote { None } else { std::fs::canonicalize(repo_dir).ok() };
    let inside = |p: &Path| repo.as_ref().is_some_and(|r| std::fs::canonicalize(p).is_ok_and(|f| f.starts_with(r)));
    if inside(&path) {
        bail!(
            "the credentials file {} is inside the repository {}: keep it outside, where a pull request cannot change it",
            path.display(),
            repo_dir.display()
        );
    }
    let secrets = Secrets::load(&path, required)?;
    if let Some(f) = secrets.files().find(|f| inside(f)) {
        bail!(
            "{} names {}, which is inside the repository {}: keep token and CA files outside, where a pull request cannot change them",
            path.display(),
            f.display(),
            repo_dir.display()
        );
    }
    if remove_env {
        for var in secrets.env_vars().map(str::to_string).collect::<Vec<_>>() {
            // SAFETY: called from `run` before any thread is started (as for the git token above).
            unsafe { std::env::remove_var(var) };
        }
    }
    Ok(secrets)
}

/// The state document of `run` and `token`: `--state`, else the default place.
fn state_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => zonekeeper::daemon::state::default_path()
            .context("set --state (or ZONEKEEPER_STATE, XDG_STATE_HOME or HOME) for the state document"),
    }
}

/// The webhook secret: the file `--webhook-secret-file` names, or ZONEKEEPER_WEBHOOK_SECRET.
fn webhook_secret(file: Option<&Path>) -> Result<Option<zonekeeper::daemon::auth::WebhookSecret>> {
    use zonekeeper::daemon::auth::WebhookSecret;
    let secret = match (file, std::env::var("ZONEKEEPER_WEBHOOK_SECRET")) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the webhook secret file {}", path.display()))?;
            text.trim().to_string()
        }
        (None, Ok(s)) => s.trim().to_string(),
        (None, Err(_)) => return Ok(None),
    };
    if secret.len() < 16 {
        bail!("the webhook secret is shorter than 16 characters: pick a long random one");
    }
    // SAFETY: called from `run` before any thread is started (as for the git token).
    unsafe { std::env::remove_var("ZONEKEEPER_WEBHOOK_SECRET") };
    Ok(Some(WebhookSecret::new(secret)))
}

/// `zonekeeper token create|list|revoke`.
fn token(action: &TokenAction, state: &Path) -> Result<ExitCode> {
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

/// Locks every target an apply of `state` (or only `only`) may write, for as long as the
/// result is held. An API target's lock lives in the user's own cache, never in a shared
/// temp folder; file targets need no cache at all.
fn lock_targets(
    state: &DesiredState,
    secrets: &Secrets,
    only: Option<&str>,
    wait: Option<Duration>,
) -> Result<Vec<zonekeeper::targets::lock::Held>> {
    use zonekeeper::targets::lock::{self, LockPlace};
    let places = reconcile::lock_places(state, secrets, only);
    let named = places.iter().any(|(_, p)| matches!(p, LockPlace::Named(_)));
    let lock_dir = if named { cache_root()?.join("locks") } else { PathBuf::new() };
    Ok(lock::acquire(&places, &lock_dir, wait)?)
}

/// Where remote repositories are cached (`ZONEKEEPER_CACHE`, else the XDG cache directory).
fn cache_root() -> Result<PathBuf> {
    Ok(zonekeeper::sources::repo::cache_root()?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let _span = tracing::info_span!("zonekeeper", app = "zonekeeper", version = env!("CARGO_PKG_VERSION")).entered();
    let origin = Origin::from_cli(&cli)?;
    // Started only now: reading the credentials edits the environment, which must happen
    // before any thread exists.
    let watched = matches!(
        cli.command,
        Command::Preview { watch: true, .. } | Command::Run { once: false, .. } | Command::Token { .. }
    );
    if cli.timeout > 0 && !watched {
        let limit = cli.timeout;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(limit));
            eprintln!("error: stopped after --timeout {limit} s; the next run picks up where this one stopped");
            std::process::exit(1);
        });
    }
    match cli.command {
        Command::Validate { format } => validate(&origin, format),
        Command::Plan { format, detailed_exitcode, target, color, no_diff, out } => {
            origin.with_state_in_force(|state, source| {
                let planned = reconcile::plan(state, &origin.secrets, source, target.as_deref())?;
                if let Some(file) = &out {
                    let saved = reconcile::SavedPlan::new(&planned.plan, target.as_deref());
                    let text = serde_json::to_string_pretty(&saved)? + "\n";
                    zonekeeper::targets::atomic::write_atomic(file, text.as_bytes())
                        .with_context(|| format!("cannot save the plan to {}", file.display()))?;
                    eprintln!(
                        "saved the plan to {}; `zonekeeper apply {}` applies exactly it",
                        file.display(),
                        file.display()
                    );
                }
                let out = match format {
                    PlanFormat::Text => render::text(&planned.plan, color.enabled(), !no_diff),
                    PlanFormat::Markdown => render::markdown(&planned.plan),
                    PlanFormat::Json => render::json(&planned.plan),
                    PlanFormat::Github => render::github(&planned.plan),
                };
                print!("{out}");
                if report_failures(&planned.plan.unplanned) || planned.plan.has_hard_refusal() {
                    return Ok(ExitCode::from(1));
                }
                Ok(match (detailed_exitcode, planned.plan.change_count()) {
                    (true, n) if n > 0 => ExitCode::from(2),
                    _ => ExitCode::SUCCESS,
                })
            })
        }
        Command::Apply { saved, target, force, wait, color, format } => {
            let saved = match &saved {
                Some(file) => {
                    if target.is_some() {
                        bail!("--target comes from the saved plan; give either a plan file or --target");
                    }
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read the saved plan {}", file.display()))?;
                    let plan: reconcile::SavedPlan = serde_json::from_str(&text).with_context(|| {
                        format!("{} is not a plan saved by `zonekeeper plan --out`", file.display())
                    })?;
                    Some(plan)
                }
                None => None,
            };
            let target = saved.as_ref().map_or(target, |s| s.only.clone());
            origin.with_state_in_force(|state, source| {
                let _held = lock_targets(state, &origin.secrets, target.as_deref(), wait.map(Duration::from_secs))?;
                let options = ApplyOptions { force, color: color.enabled(), format, saved: saved.as_ref() };
                apply(state, &origin.secrets, source, target.as_deref(), options)
            })
        }
        Command::Preview { hosts, watch, view } => {
            // preview is the local-editing command: it reads (and watches) the files on disk.
            if origin.remote().is_some() || origin.rev.is_some() {
                bail!(
                    "preview reads the files on disk of a local --repo DIR; --ref and git URLs are for plan and apply"
                );
            }
            preview(&cli.repo, &hosts, watch, view.as_deref())
        }
        Command::Export { target, zone, corefile } => {
            origin.with_state_in_force(|state, _| export(state, &origin.secrets, &target, zone.as_deref(), corefile))
        }
        Command::Run {
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
        } => {
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
        Command::Token { ref action, ref state } => token(action, &state_path(state.as_deref())?),
        Command::Schema { check, dir } => schema(&dir.unwrap_or_else(|| cli.repo.join("schema")), check),
        Command::Observe { commit } => {
            origin.with_state_in_force(|state, source| observe(&origin, state, source, commit))
        }
    }
}

/// Prints target failures to stderr; true when there were any.
fn report_failures(failures: &[reconcile::TargetFailure]) -> bool {
    for f in failures {
        match &f.zone {
            Some(zone) => eprintln!("error: target {} zone {zone}: {}", f.target, f.error),
            None => eprintln!("error: target {}: {}", f.target, f.error),
        }
    }
    if !failures.is_empty() {
        eprintln!(
            "the plan is incomplete: {} target zone(s) could not be read, and their changes are not shown",
            failures.len()
        );
    }
    !failures.is_empty()
}

fn validate(origin: &Origin, format: ValidateFormat) -> Result<ExitCode> {
    let Loaded { state: loaded, source, .. } = origin.load(false)?;
    if !source.starts_with("working tree") && !matches!(format, ValidateFormat::Json) {
        eprintln!("reading the {source}");
    }
    let diags = match loaded {
        Ok(state) => {
            let records: usize = state.records.values().map(|r| r.len()).sum();
            match format {
                ValidateFormat::Json => {
                    println!("{}", serde_json::to_string(&ValidationReport { version: 1, valid: true, problems: &[] })?)
                }
                _ => println!(
                    "ok: {} zone(s), {} record entries, {} resolver set(s), {} target(s)",
                    state.settings.zones.len(),
                    records,
                    state.resolver_sets.len(),
                    state.settings.targets.len()
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(Invalid(d)) => d,
    };
    match format {
        ValidateFormat::Text => {
            for d in &diags {
                println!("{d}");
            }
            eprintln!("{} problem(s); nothing was written", diags.len());
        }
        ValidateFormat::Json => {
            println!("{}", serde_json::to_string(&ValidationReport { version: 1, valid: false, problems: &diags })?)
        }
        ValidateFormat::Github => {
            for d in &diags {
                let (esc, prop) = (render::github_data, render::github_property);
                let title = if d.path.is_empty() { String::new() } else { format!(",title={}", prop(&d.path)) };
                println!(
                    "::error file={},line={},col={}{title}::{}",
                    prop(&d.file),
                    d.line.max(1),
                    d.column.max(1),
                    esc(&d.message)
                );
            }
        }
    }
    Ok(ExitCode::from(1))
}

/// How `apply` runs and reports.
struct ApplyOptions<'a> {
    force: bool,
    color: bool,
    format: ApplyFormat,
    /// A plan saved by `plan --out`: applied only if the plan made now is exactly it.
    saved: Option<&'a reconcile::SavedPlan>,
}

fn apply(
    state: &DesiredState,
    secrets: &Secrets,
    source: &str,
    target: Option<&str>,
    options: ApplyOptions<'_>,
) -> Result<ExitCode> {
    let ApplyOptions { force, color, format, saved } = options;
    let planned = reconcile::plan(state, secrets, source, target)?;
    if let Some(saved) = saved {
        let moved = saved.moved(&planned.plan);
        if !moved.is_empty() {
            bail!(
                "the saved plan is out of date, so nothing was applied; plan again and review:\n  {}",
                moved.join("\n  ")
            );
        }
    }
    match format {
        ApplyFormat::Text => print!("{}", render::text(&planned.plan, color, true)),
        ApplyFormat::Markdown => print!("{}", render::markdown(&planned.plan)),
        ApplyFormat::Json => {}
    }
    let mut failed = report_failures(&planned.plan.unplanned);
    let applied = if planned.plan.change_count() == 0 {
        Vec::new()
    } else {
        reconcile::apply(state, secrets, &planned.plan, force)?
    };
    let report = reconcile::ApplyReport::new(&planned.plan, &applied);
    for r in &report.results {
        if format == ApplyFormat::Text {
            for c in &r.changes {
                let label = format!("{} {} {}", c.op.as_str(), c.name, c.rtype);
                match &c.outcome {
                    Outcome::Applied => println!("  ok      {label} ({} on {})", r.zone, r.target),
                    Outcome::Failed(why) => println!("  failed  {label} ({} on {}): {why}", r.zone, r.target),
                    Outcome::Skipped(why) => println!("  skipped {label} ({} on {}): {why}", r.zone, r.target),
                }
            }
            println!("applied: {} of {} change(s) to {} on {}", r.applied, r.planned, r.zone, r.target);
        }
        tracing::info!(target_name = %r.target, zone = %r.zone, changes = r.applied, "applied");
        if let Some(e) = &r.error {
            eprintln!("error: {} on {}: {e}", r.zone, r.target);
        }
        if r.applied != r.planned || r.error.is_some() {
            failed = true;
        }
    }
    match format {
        ApplyFormat::Text => {}
        ApplyFormat::Markdown => print!("\n{}", report.markdown()),
        ApplyFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The desired state reduced to one hosts target at `hosts`, serving every zone.
fn preview_state(mut state: DesiredState, hosts: &Path, view: Option<&str>) -> Result<DesiredState> {
    let s = &mut state.settings;
    let existing = s.targets.iter().find(|t| matches!(t.kind, TargetKind::Hosts { .. })).cloned();
    let view = match view {
        Some(v) if s.view(v).is_some() => v.to_string(),
        Some(v) => bail!("view `{v}` is not declared in zonekeeper.yaml"),
        None => match &existing {
            Some(t) => t.view.clone(),
            None => {
                s.views.iter().find(|v| !v.public).or(s.views.first()).map(|v| v.name.clone()).context("no views")?
            }
        },
    };
    let name = existing.map(|t| t.name).unwrap_or_else(|| "preview".to_string());
    s.targets =
        vec![TargetSettings { name: name.clone(), view, kind: TargetKind::Hosts { path: hosts.to_path_buf() } }];
    for z in &mut s.zones {
        z.targets = vec![name.clone()];
    }
    Ok(state)
}

/// One render of the preview block: prints a short line, returns whether it worked.
fn preview_once(repo: &Path, hosts: &Path, view: Option<&str>) -> Result<()> {
    let state = preview_state(desired::load(repo)?, hosts, view)?;
    // A hosts file needs no token. It is locked like any apply's target, so a preview and an
    // apply (or two previews) never interleave on one file.
    let _held = lock_targets(&state, &Secrets::none(), None, Some(Duration::from_secs(30)))?;
    let planned = reconcile::plan(&state, &Secrets::none(), &WorkTree(repo.to_path_buf()).describe(), None)?;
    if let Some(f) = planned.plan.unplanned.first() {
        bail!("{}: {}", f.target, f.error);
    }
    let s = render::summary(&planned.plan);
    // A local preview may rewrite its own block freely: safety limits are for shared targets.
    for a in reconcile::apply(&state, &Secrets::none(), &planned.plan, true)? {
        a.result.with_context(|| format!("cannot update {}", hosts.display()))?;
    }
    println!("preview: {} updated ({} added, {} changed, {} removed)", hosts.display(), s.create, s.update, s.delete);
    Ok(())
}

/// The files of a repository that make the desired state: zonekeeper.yaml, records/ and
/// resolvers/, under the directory as given and as canonicalised (events may carry either).
struct DesiredInputs {
    roots: Vec<PathBuf>,
}

impl DesiredInputs {
    fn of(repo: &Path) -> DesiredInputs {
        let mut roots = vec![repo.to_path_buf()];
        if let Ok(abs) = std::fs::canonicalize(repo) {
            roots.push(abs);
        }
        DesiredInputs { roots }
    }

    fn contains(&self, path: &Path) -> bool {
        self.roots.iter().filter_map(|r| path.strip_prefix(r).ok()).any(|rel| {
            let mut parts = rel.components().map(|c| c.as_os_str());
            matches!(
                (parts.next().and_then(|f| f.to_str()), parts.next()),
                (Some(desired::settings::SETTINGS_FILE), None) | (Some("records" | "resolvers"), _)
            )
        })
    }
}

enum WatchEvent {
    Changed,
    Stop,
}

fn preview(repo: &Path, hosts: &Path, watch: bool, view: Option<&str>) -> Result<ExitCode> {
    if !watch {
        preview_once(repo, hosts, view)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = preview_once(repo, hosts, view) {
        eprintln!("error: {e:#}\n(keeping the hosts block as it was; fix the files and save again)");
    }
    let (tx, rx) = mpsc::channel();
    let stop = tx.clone();
    ctrlc::set_handler(move || {
        let _ = stop.send(WatchEvent::Stop);
    })
    .context("cannot install the Ctrl-C handler")?;
    let inputs = DesiredInputs::of(repo);
    let mut debouncer = notify_debouncer_full::new_debouncer(
        Duration::from_millis(300),
        None,
        move |res: notify_debouncer_full::DebounceEventResult| {
            // Only a change to the desired state counts: not our own reads of it (access
            // events), not the hosts file we write, wherever it is, nor anything else.
            let relevant = match res {
                Ok(events) => events.iter().any(|e| {
                    !matches!(e.event.kind, notify::EventKind::Access(_))
                        && e.event.paths.iter().any(|p| inputs.contains(p))
                }),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(WatchEvent::Changed);
            }
        },
    )
    .context("cannot start watching files")?;
    debouncer
        .watch(repo, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", repo.display()))?;
    println!("preview: watching {} (Ctrl-C to stop)", repo.display());
    while let Ok(ev) = rx.recv() {
        match ev {
            WatchEvent::Stop => break,
            WatchEvent::Changed => {
                if let Err(e) = preview_once(repo, hosts, view) {
                    eprintln!("error: {e:#}\n(keeping the last good hosts block)");
                }
            }
        }
    }
    println!("preview: stopped");
    Ok(ExitCode::SUCCESS)
}

fn export(
    state: &DesiredState,
    secrets: &Secrets,
    target: &str,
    zone: Option<&str>,
    corefile: bool,
) -> Result<ExitCode> {
    let ts = state.settings.target(target).with_context(|| format!("no target named `{target}` in zonekeeper.yaml"))?;
    let zones: Vec<Name> =
        state.settings.zones.iter().filter(|z| z.targets.contains(&ts.name)).map(|z| z.name.clone()).collect();
    if corefile {
        let TargetKind::Zonefile { directory, adopt, soa } = &ts.kind else {
            bail!("--corefile needs a zonefile target; `{target}` is not one");
        };
        let zf = ZoneFileTarget {
            name: ts.name.clone(),
            directory: directory.clone(),
            owner: state.settings.owner.clone(),
            adopt: *adopt,
            soa: soa.clone(),
        };
        print!("{}", zf.corefile(&zones));
        return Ok(ExitCode::SUCCESS);
    }
    let zone_arg = zone.context("--zone is required")?;
    let zone = Name::parse(zone_arg).with_context(|| format!("`{zone_arg}` is not a valid zone name"))?;
    let t = reconcile::build_target(state, secrets, ts);
    let observed = t.observe(&zone)?;
    if observed.sets.is_empty() {
        // An empty file would read as "this zone holds nothing", and applying it deletes.
        bail!(
            "target `{target}` holds no records for zone `{zone}`: nothing to export (is it the zone and target you meant?)"
        );
    }
    let sets: Vec<_> = observed.sets.into_iter().map(|o| o.set).collect();
    let ttls = t.kind() != "hosts";
    print!("{}", zonekeeper::export::records_yaml(&zone, &sets, "../schema/records.json", ttls));
    Ok(ExitCode::SUCCESS)
}

fn observe(origin: &Origin, state: &DesiredState, source: &str, commit: bool) -> Result<ExitCode> {
    use zonekeeper::sources::git;
    let (repo, rev) = (origin.repo.repo.as_path(), origin.rev.as_deref());
    let repo_str = repo.to_string_lossy().to_string();
    let remote = origin.remote().is_some();
    let (zones, failures) = reconcile::observe(state, &origin.secrets);
    let failed = report_failures(&failures);
    let prefix = state.settings.commit_back.as_ref().map(|c| c.path.clone()).unwrap_or_else(|| "observed".into());
    let docs: std::collections::BTreeMap<String, String> = zones
        .iter()
        .map(|z| {
            (
                format!("{prefix}/{}/{}.yaml", z.target, z.zone),
                zonekeeper::export::observed_yaml(z, &state.settings.owner),
            )
        })
        .collect();
    if !commit {
        for (path, doc) in &docs {
            println!("---\n# {path}\n{doc}");
        }
        return Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    if failed {
        // A target that did not answer must not read as "holds nothing".
        bail!("not committing: some targets could not be read");
    }
    let cb = state
        .settings
        .commit_back
        .clone()
        .context("commit-back is not enabled: add `commitBack:` to zonekeeper.yaml")?;
    if rev.is_some_and(|r| r == cb.branch || r == format!("refs/heads/{}", cb.branch)) {
        bail!(
            "the commit-back branch `{}` is the branch the desired state is read from; use another branch",
            cb.branch
        );
    }
    let dir = if remote { git::cache_dir(&cache_root()?, &repo_str) } else { repo.to_path_buf() };
    if let Some(wt) = if remote { None } else { git::checked_out_in(&dir, &cb.branch)? } {
        bail!("the commit-back branch `{}` is checked out in {}; use another branch", cb.branch, wt.display());
    }
    let author = git::Author { name: cb.author_name.clone(), email: cb.author_email.clone() };
    let message = format!("Observed state of {} target zone(s)\n\nRead from the {source}.", zones.len());
    for _ in 0..3 {
        let tip =
            if remote { format!("refs/remotes/origin/{}", cb.branch) } else { format!("refs/heads/{}", cb.branch) };
        let parent = git::resolve(&dir, &tip);
        let spec = git::CommitSpec {
            branch: &cb.branch,
            parent: parent.as_deref(),
            prefix: &cb.path,
            files: &docs,
            author: &author,
            message: &message,
        };
        let Some(id) = git::commit_files(&dir, remote, &spec)? else {
            println!("observed state unchanged: nothing committed");
            return Ok(ExitCode::SUCCESS);
        };
        if !remote {
            println!("committed {id} to {}", cb.branch);
            return Ok(ExitCode::SUCCESS);
        }
        let refused =
            match git::push(&dir, &repo_str, &id, &cb.branch, origin.credentials.as_ref(), origin.git_timeout)? {
                git::Pushed::Done => {
                    println!("committed {id} to {} and pushed it to {}", cb.branch, git::redact(&repo_str));
                    return Ok(ExitCode::SUCCESS);
                }
                git::Pushed::MaybeMoved(detail) => detail,
            };
        // Perhaps the remote moved on: fetch, and make the commit again on top of what is
        // there now. If it did not move, the refusal has another cause: retrying cannot help.
        if let git::Fetched::Stale(why) = git::fetch(&repo_str, &dir, origin.credentials.as_ref(), origin.git_timeout)?
        {
            bail!("the push was refused ({refused}) and fetching again failed: {why}");
        }
        if git::resolve(&dir, &tip) == parent {
            bail!("git push to {} was refused, and the remote branch has not moved: {refused}", git::redact(&repo_str));
        }
    }
    bail!("the remote branch `{}` kept moving; gave up after 3 tries (nothing is ever force-pushed)", cb.branch)
}

fn schema(dir: &Path, check: bool) -> Result<ExitCode> {
    let mut stale = Vec::new();
    let mut docs: Vec<(String, serde_json::Value)> = Vec::new();
    for kind in DocKind::ALL {
        docs.push((kind.schema_file().to_string(), serde_json::to_value(kind.schema())?));
    }
    // The JSON outputs are a contract too: their schemas are checked in beside the inputs'.
    docs.extend(render::output_schemas().into_iter().map(|(file, schema)| (file.to_string(), schema)));
    docs.push(("validate.json".to_string(), ValidationReport::schema()));
    docs.push(("apply.json".to_string(), reconcile::ApplyReport::schema()));
    for (file, schema) in docs {
        let path = dir.join(&file);
        let text = serde_json::to_string_pretty(&schema)? + "\n";
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != text {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            zonekeeper::targets::atomic::write_atomic(&path, text.as_bytes())?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        eprintln!("schema files are stale: {} (run `zonekeeper schema` and commit)", stale.join(", "));
        return Ok(ExitCode::from(1));
    }
    if check {
        println!("schema files are up to date");
    }
    Ok(ExitCode::SUCCESS)
}
