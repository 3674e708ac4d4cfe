//! The command line: its arguments, and one module per command that calls the library and
//! renders the result. Nothing below `cli` prints to the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use zonekeeper::daemon::state::StateLocation;
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

mod daemon;
mod export;
mod observe;
mod origin;
mod plan;
mod preview;
mod validate;

use daemon::*;
use export::*;
use observe::*;
use origin::*;
use plan::*;
use preview::*;
use validate::*;

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
pub(crate) struct Cli {
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
    Plan(PlanArgs),
    /// Plan, then make the changes. Safety-limit, root-NS and emptied-zone refusals need
    /// --force. Each target is locked from before it is read until after it is written, so two runs
    /// never interleave.
    Apply(ApplyArgs),
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
    Run(Box<RunArgs>),
    /// Manage the API tokens of `run` (kept hashed in its state document).
    Token {
        #[command(subcommand)]
        action: TokenAction,
        /// The state document, as for `run --state`.
        #[arg(long, env = "ZONEKEEPER_STATE", value_name = "FILE", global = true)]
        state: Option<PathBuf>,
        /// The state document's ConfigMap, as for `run --state-configmap`.
        #[arg(
            long,
            env = "ZONEKEEPER_STATE_CONFIGMAP",
            value_name = "[NAMESPACE/]NAME",
            global = true,
            conflicts_with = "state"
        )]
        state_configmap: Option<String>,
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

pub(crate) fn init_logs(cli: &Cli) {
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

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let _span = tracing::info_span!("zonekeeper", app = "zonekeeper", version = env!("CARGO_PKG_VERSION")).entered();
    let origin = Origin::from_cli(&cli)?;
    // Started only now: reading the credentials edits the environment, which must happen
    // before any thread exists.
    let watched = match &cli.command {
        Command::Preview { watch, .. } => *watch,
        Command::Run(r) => !r.once,
        Command::Token { .. } => true,
        _ => false,
    };
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
        Command::Plan(args) => plan::plan(&origin, args),
        Command::Apply(args) => apply_command(&origin, args),
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
        Command::Run(ref args) => daemon::run(&cli, origin, args),
        Command::Token { ref action, ref state, ref state_configmap } => {
            token(action, &state_location(state.as_deref(), state_configmap.as_deref())?)
        }
        Command::Schema { check, dir } => schema(&dir.unwrap_or_else(|| cli.repo.join("schema")), check),
        Command::Observe { commit } => {
            origin.with_state_in_force(|state, source| observe(&origin, state, source, commit))
        }
    }
}
