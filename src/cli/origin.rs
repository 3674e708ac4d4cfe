//! Where the desired state and the operator's credentials come from: `--repo`, `--ref`,
//! the git token, the credentials file, the state document, the target locks.

use super::*;

/// Where the desired state comes from (`--repo`, `--ref`, the git token), and the operator's
/// API tokens, each bound to an origin.
pub(super) struct Origin {
    pub(super) repo: Repo,
    pub(super) secrets: Secrets,
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
    pub(super) fn load(&self, hold_back: bool) -> Result<Loaded> {
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
    pub(super) fn with_state_in_force(
        &self,
        work: impl FnOnce(&DesiredState, &str) -> Result<ExitCode>,
    ) -> Result<ExitCode> {
        let Loaded { state, source, held_back, .. } = self.load(true)?;
        if let Some((bad, invalid)) = &held_back {
            eprintln!("error: in the {bad}: {invalid}");
            eprintln!("the last good {source} stays in force until a newer commit loads cleanly");
        }
        let state = state.with_context(|| format!("in the {source}"))?;
        let state = self.with_sources(state)?;
        let code = work(&state, &source)?;
        Ok(if held_back.is_some() { ExitCode::from(1) } else { code })
    }

    /// The repository's state with every source it configures (Kubernetes) read once and
    /// merged in; a source that cannot be read stops the command, since a plan without it
    /// would delete what it published.
    fn with_sources(&self, state: DesiredState) -> Result<DesiredState> {
        let sources = zonekeeper::sources::configured(&state, &self.secrets, false).map_err(anyhow::Error::msg)?;
        if sources.is_empty() {
            return Ok(state);
        }
        let mut guarded: Vec<_> = sources.into_iter().map(zonekeeper::sources::Guarded::new).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime that reads the sources")?;
        let merged = runtime.block_on(zonekeeper::sources::with_sources(&state, &mut guarded));
        for g in &guarded {
            for note in g.notes() {
                eprintln!("warning: {}: {note}", g.name());
            }
        }
        let merged = merged.map_err(anyhow::Error::msg)?;
        for c in &merged.conflicts {
            eprintln!("warning: {c}");
        }
        Ok(merged.state)
    }

    pub(super) fn from_cli(cli: &Cli) -> Result<Origin> {
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
                Command::Plan(_)
                | Command::Apply(_)
                | Command::Export { .. }
                | Command::Observe { .. }
                | Command::Run(_) => load_secrets(cli, remote)?,
                _ => Secrets::none(),
            },
        })
    }
}

/// The token for https remotes: `ZONEKEEPER_GIT_TOKEN`, or the file `--git-token-file` names.
pub(super) fn git_credentials(cli: &Cli) -> Result<Option<zonekeeper::sources::git::Credentials>> {
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
pub(super) fn load_secrets(cli: &Cli, remote: bool) -> Result<Secrets> {
    read_secrets(cli.credentials.as_deref(), &cli.repo, remote, true)
}

/// `load_secrets` from its parts; with `remove_env` false (a reload, when threads run), the
/// environment is left as it is: the variables it named were removed at the start.
pub(super) fn read_secrets(
    credentials: Option<&Path>,
    repo_dir: &Path,
    remote: bool,
    remove_env: bool,
) -> Result<Secrets> {
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
pub(super) fn state_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => zonekeeper::daemon::state::default_path()
            .context("set --state (or ZONEKEEPER_STATE, XDG_STATE_HOME or HOME) for the state document"),
    }
}

/// Where the state document is: the ConfigMap `--state-configmap [NAMESPACE/]NAME` names, or
/// the file of `--state`.
pub(super) fn state_location(file: Option<&Path>, configmap: Option<&str>) -> Result<StateLocation> {
    let Some(given) = configmap else { return Ok(StateLocation::File(state_path(file)?)) };
    let (namespace, name) = match given.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, given),
    };
    // A namespace is a DNS label; a ConfigMap's name a DNS subdomain.
    let label = |s: &str| {
        (1..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if namespace.is_some_and(|ns| !label(ns)) || name.len() > 253 || !name.split('.').all(label) {
        bail!(
            "--state-configmap {given:?}: give NAME or NAMESPACE/NAME, in lowercase letters, digits and '-' (a name may have dots)"
        );
    }
    Ok(StateLocation::ConfigMap { namespace: namespace.map(str::to_string), name: name.to_string() })
}

/// The webhook secret: the file `--webhook-secret-file` names, or ZONEKEEPER_WEBHOOK_SECRET.
pub(super) fn webhook_secret(file: Option<&Path>) -> Result<Option<zonekeeper::daemon::auth::WebhookSecret>> {
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

/// Locks every target an apply of `state` (or only `only`) may write, for as long as the
/// result is held. An API target's lock lives in the user's own cache, never in a shared
/// temp folder; file targets need no cache at all.
pub(super) fn lock_targets(
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
pub(super) fn cache_root() -> Result<PathBuf> {
    Ok(zonekeeper::sources::repo::cache_root()?)
}
