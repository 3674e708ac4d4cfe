//! Reading the desired state at a git revision of a local repository, without a checkout:
//! the commit's tree is read with gix, and only `zonekeeper.yaml`, `records/*.yaml` and
//! `resolvers/*.yaml` are taken from it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::desired::files::InMemory;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{dir} is not a git repository (or cannot be opened): {detail}")]
    Open { dir: String, detail: String },
    #[error("`{rev}` names no commit in {dir}: {detail}")]
    Revision { rev: String, dir: String, detail: String },
    #[error("cannot read {what} at commit {commit}: {detail}")]
    Read { what: String, commit: String, detail: String },
    #[error("{dir} is not a directory (pass --repo DIR, a directory holding zonekeeper.yaml, or a git URL)")]
    Missing { dir: String },
    #[error("cannot fetch {url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error("git push to {remote} failed: {detail}")]
    Push { remote: String, detail: String },
    #[error(
        "refusing to send the git token to {url} over plain http: use https:// (plain http is allowed only to localhost)"
    )]
    PlainHttp { url: String },
}

/// A token for `https://` remotes (a forge's personal access or deploy token), sent as the
/// password of HTTP basic auth with `user` as the user name (or the user the URL names), which
/// is what GitHub, GitLab, Gitea and Forgejo accept. It is offered only to the remote's own
/// scheme, host and port. Only gix's credential callback and the `git push` child see it;
/// `Debug` hides it.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    token: String,
}

/// Where a URL points: scheme, host and port, compared to decide where a token may go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// Parsed the way gix parses it, so the check and the connection agree on the host.
    fn of(url: &str) -> Option<Authority> {
        let u = gix::url::parse(gix::bstr::BStr::new(url)).ok()?;
        Some(Authority {
            scheme: u.scheme.as_str().to_ascii_lowercase(),
            host: u.host()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port: u.port_or_default(),
        })
    }

    fn is_loopback(&self) -> bool {
        crate::secrets::is_loopback_host(&self.host)
    }
}

/// The user a URL names, if any.
fn url_user(url: &str) -> Option<String> {
    gix::url::parse(gix::bstr::BStr::new(url)).ok()?.user().filter(|u| !u.is_empty()).map(str::to_string)
}

/// Refuses to send a secret in the clear: over plain `http://` to any host but this machine, a
/// token or a password in the URL is an error. (gix's own blanket refusal is lifted so that
/// loopback works; anonymous plain http still works, with no credentials at all.)
pub fn check_plain_http(url: &str, credentials: Option<&Credentials>) -> Result<(), GitError> {
    let Some(at) = Authority::of(url) else { return Ok(()) };
    let has_password = gix::url::parse(gix::bstr::BStr::new(url)).ok().is_some_and(|u| u.password().is_some());
    if at.scheme == "http" && !at.is_loopback() && (credentials.is_some() || has_password) {
        return Err(GitError::PlainHttp { url: redact(url) });
    }
    Ok(())
}

type CredentialAnswer = gix::Result<Option<gix::credentials::protocol::Outcome>>;

impl Credentials {
    /// `user` is used when the URL names no user of its own.
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials { user: user.into(), token: token.into() }
    }

    /// The answer gix gets when the server at `remote` wants a login: the token, and only for
    /// that scheme, host and port (a redirect elsewhere gets nothing).
    fn callback(self, remote: &str) -> impl FnMut(gix::credentials::helper::Action) -> CredentialAnswer + use<> {
        use gix::credentials::helper::Action;
        let expected = Authority::of(remote);
        let user = url_user(remote).unwrap_or_else(|| self.user.clone());
        move |action| match action {
            Action::Get(ctx) => {
                let asked = ctx.url.as_ref().and_then(|u| Authority::of(&u.to_string()));
                if asked.is_none() || asked != expected {
                    return Ok(None);
                }
                Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: user.clone(),
                        password: self.token.clone(),
                        oauth_refresh_token: None,
                    },
                    next: ctx.into(),
                }))
            }
            // Nothing is stored anywhere; a refused token is simply not offered again.
            Action::Store(_) | Action::Erase(_) => Ok(None),
        }
    }
}

/// How a connection to `url` answers a login request: with the token; with nothing at all
/// over plain http to another host; else as git's configured credential helpers say.
fn authenticate<T: gix::protocol::transport::client::blocking_io::Transport>(
    conn: &mut gix::remote::Connection<'_, '_, '_, T>,
    url: &str,
    credentials: Option<&Credentials>,
) {
    let in_the_clear = Authority::of(url).is_some_and(|a| a.scheme == "http" && !a.is_loopback());
    match credentials {
        Some(c) => {
            conn.set_credentials(c.clone().callback(url));
        }
        None if in_the_clear => {
            conn.set_credentials(no_credentials);
        }
        None => {}
    }
}

/// For plain http to another host without a token: no credentials at all, so that git's
/// credential helpers are never asked for a password that would travel in the clear.
fn no_credentials(_: gix::credentials::helper::Action) -> CredentialAnswer {
    Ok(None)
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("token", &"***").finish()
    }
}

/// The desired-state files of `rev` in the repository that holds `dir` (its root, a folder in
/// its working tree, or a bare repository).
pub fn read_commit(dir: &Path, rev: &str) -> Result<InMemory, GitError> {
    let shown = dir.display().to_string();
    let Some((repo, prefix)) = repository_of(dir)? else {
        return Err(GitError::Open { dir: shown, detail: "no .git here or in any parent folder".into() });
    };
    Ok(read_in(&repo, &prefix, rev, &[rev.to_string()], &shown)?.files)
}

/// The desired-state files at `HEAD` of the repository that holds `dir`, and whether `dir` is
/// in a working tree (not a bare repository); `None` when `dir` is in no git repository.
pub fn read_head(dir: &Path) -> Result<Option<(InMemory, bool)>, GitError> {
    let Some((repo, prefix)) = repository_of(dir)? else { return Ok(None) };
    let shown = dir.display().to_string();
    if repo.head_id().is_err() {
        return Err(GitError::Revision {
            rev: "HEAD".into(),
            dir: shown,
            detail: "the repository has no commit yet (commit the files, or pass --worktree to read them)".into(),
        });
    }
    let files = read_in(&repo, &prefix, "HEAD", &["HEAD".to_string()], &shown)?.files;
    Ok(Some((files, repo.workdir().is_some())))
}

/// The repository holding `dir` and the path of `dir` inside its working tree (`""` at the
/// root). `None` when there is no `.git` in `dir` or above it.
fn repository_of(dir: &Path) -> Result<Option<(gix::Repository, String)>, GitError> {
    let open_error =
        |e: &dyn std::fmt::Display| GitError::Open { dir: dir.display().to_string(), detail: e.to_string() };
    if let Ok(repo) = open_repo(dir) {
        return Ok(Some((repo, String::new())));
    }
    let abs = dir.canonicalize().map_err(|e| open_error(&e))?;
    let Some(root) = abs.ancestors().find(|a| a.join(".git").exists()) else { return Ok(None) };
    let repo = open_repo(root).map_err(|e| open_error(&e))?;
    let prefix = abs.strip_prefix(root).unwrap_or(Path::new("")).to_string_lossy().into_owned();
    Ok(Some((repo, prefix)))
}

/// What was read from a clone made by `fetch`.
pub struct ReadAt {
    pub files: InMemory,
    /// The full commit id.
    pub commit: String,
    /// True when the revision named a branch of the remote (or its HEAD), which moves, rather
    /// than a tag or a commit id: only then can a newer commit be held back for an older one.
    pub follows_branch: bool,
}

/// The desired-state files of `rev` in a clone made by `fetch`, shown as `url`.
pub fn read_clone(dir: &Path, rev: &str, url: &str) -> Result<ReadAt, GitError> {
    read_at(dir, rev, &resolve_in_clone(rev), &redact(url))
}

/// The ref in a clone that remembers the last commit of `rev` that loaded without a problem.
/// It lives outside `refs/remotes`, so a fetch never prunes it, and it keeps the commit from
/// being collected. The revision is hex-encoded: one flat name per revision, so no two
/// revisions share a ref and `a` never clashes with `a/b`.
fn last_good_ref(rev: &str) -> String {
    let hex: String = rev.bytes().map(|b| format!("{b:02x}")).collect();
    format!("refs/zonekeeper/last-good/{hex}")
}

/// The last good commit of `rev` in the clone at `dir`, if one was recorded.
pub fn last_good(dir: &Path, rev: &str) -> Option<String> {
    let repo = open_repo(dir).ok()?;
    let id = repo.find_reference(last_good_ref(rev).as_str()).ok()?.into_fully_peeled_id().ok()?;
    Some(id.to_string())
}

/// Records `commit` as the last good commit of `rev` in the clone at `dir`.
pub fn set_last_good(dir: &Path, rev: &str, commit: &str) -> Result<(), GitError> {
    let fail = |e: &dyn std::fmt::Display| GitError::Read {
        what: "where to record it as the last good commit".into(),
        commit: commit.chars().take(12).collect(),
        detail: e.to_string(),
    };
    let repo = open_repo(dir).map_err(|e| fail(&e))?;
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| fail(&e))?;
    repo.reference(last_good_ref(rev), id, gix::refs::transaction::PreviousValue::Any, "zonekeeper: loads cleanly")
        .map_err(|e| fail(&e))?;
    Ok(())
}

/// The desired-state files of `commit` (a full id) in a clone, shown as `url`.
pub fn read_clone_commit(dir: &Path, commit: &str, url: &str) -> Result<InMemory, GitError> {
    Ok(read_at(dir, commit, &[commit.to_string()], &redact(url))?.files)
}

fn read_at(dir: &Path, rev: &str, candidates: &[String], shown: &str) -> Result<ReadAt, GitError> {
    let repo = open_repo(dir).map_err(|e| GitError::Open { dir: shown.to_string(), detail: e.to_string() })?;
    read_in(&repo, "", rev, candidates, shown)
}

/// Reads the desired state under `prefix` (a folder of the repository, `""` for its root) at
/// the first of `candidates` that names a commit.
fn read_in(
    repo: &gix::Repository,
    prefix: &str,
    rev: &str,
    candidates: &[String],
    shown: &str,
) -> Result<ReadAt, GitError> {
    let shown = shown.to_string();
    let at = |rel: &str| if prefix.is_empty() { rel.to_string() } else { format!("{prefix}/{rel}") };
    let revision = |detail: String| GitError::Revision { rev: rev.to_string(), dir: shown.clone(), detail };
    let mut id = Err(revision("no candidates".into()));
    let mut follows_branch = false;
    for candidate in candidates {
        match repo.rev_parse_single(candidate.as_str()) {
            Ok(found) => {
                // `refs/remotes/origin/main~1` resolves too, but names a fixed commit.
                follows_branch =
                    candidate.starts_with("refs/remotes/") && repo.find_reference(candidate.as_str()).is_ok();
                id = Ok(found);
                break;
            }
            Err(e) => id = Err(revision(e.to_string())),
        }
    }
    let id = id?;
    let commit =
        id.object().map_err(|e| revision(e.to_string()))?.peel_to_commit().map_err(|e| revision(e.to_string()))?;
    let full = commit.id().to_string();
    let short = full.chars().take(12).collect::<String>();
    let read = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        what: what.to_string(),
        commit: short.clone(),
        detail: e.to_string(),
    };
    let subject = commit.message().map(|m| m.summary().to_string()).unwrap_or_default();
    let tree = commit.tree().map_err(|e| read("the tree", &e))?;

    let mut files = BTreeMap::new();
    let mut refused = BTreeMap::new();
    const NOT_A_FILE: &str = "is a symlink or submodule in this commit; desired state must be a plain file";
    if let Some(entry) = tree.lookup_entry_by_path(at("zonekeeper.yaml")).map_err(|e| read("zonekeeper.yaml", &e))? {
        if entry.mode().is_blob() {
            let blob = entry.object().map_err(|e| read("zonekeeper.yaml", &e))?;
            files.insert("zonekeeper.yaml".to_string(), blob.data.clone());
        } else {
            refused.insert("zonekeeper.yaml".to_string(), NOT_A_FILE.to_string());
        }
    }
    for dir in ["records", "resolvers"] {
        let Some(entry) = tree.lookup_entry_by_path(at(dir)).map_err(|e| read(dir, &e))? else { continue };
        if !entry.mode().is_tree() {
            continue;
        }
        let sub = entry.object().map_err(|e| read(dir, &e))?.into_tree();
        for item in sub.iter() {
            let item = item.map_err(|e| read(dir, &e))?;
            let name = item.filename().to_string();
            if !(name.ends_with(".yaml") || name.ends_with(".yml")) || item.mode().is_tree() {
                continue;
            }
            let path = format!("{dir}/{name}");
            if !item.mode().is_blob() {
                refused.insert(path, NOT_A_FILE.to_string());
                continue;
            }
            let blob = item.object().map_err(|e| read(&path, &e))?;
            files.insert(path, blob.data.clone());
        }
    }
    let description = format!("commit {short} ({subject}) of {shown}");
    Ok(ReadAt {
        files: InMemory { files, refused, description, commit: Some(full.clone()) },
        commit: full,
        follows_branch,
    })
}

/// An error with its causes, `outer: inner: …`: gix's top-level messages ("Transport
/// handshake failed") say little without the cause (an HTTP 401, a refused connection).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Opens a repository with a fallback identity for the reflog lines that moving a ref writes
/// (`gitoxide.committer.*Fallback`, used only when no `user.name`/`user.email` is set): a
/// container or a CI runner has no git identity, and gix refuses a reflog line without one,
/// which made every fetch after the first fail there.
fn open_repo(dir: impl Into<std::path::PathBuf>) -> gix::Result<gix::Repository> {
    let options = gix::open::Options::default().config_overrides([
        "gitoxide.committer.nameFallback=zonekeeper",
        "gitoxide.committer.emailFallback=zonekeeper@localhost",
    ]);
    gix::open_opts(dir, options)
}

/// A repository URL with any user or password taken out, for messages and logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        // Everything up to the last `@` goes: a password may hold `/` or `@`, and hiding too
        // much of a URL is better than showing a secret.
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, after)) => format!("{scheme}://***@{after}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// True when `--repo` names a remote rather than a local directory.
pub fn is_url(repo: &str) -> bool {
    repo.contains("://")
}

/// Where the cached copy of `url` lives under `cache_root`.
/// A readable name from the URL (credentials left out) plus a hash of the whole URL, so two
/// URLs never share a folder and no URL can name the cache root or its parent.
pub fn cache_dir(cache_root: &Path, url: &str) -> std::path::PathBuf {
    let safe: String = redact(url)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .chars()
        .take(80)
        .collect();
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = url.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    cache_root.join(format!("{}-{hash:016x}", if safe.is_empty() { "repo" } else { &safe }))
}

/// A fetch failure's text, with a hint when the server wanted a login and no token was given.
pub fn with_token_hint(mut detail: String, have_token: bool) -> String {
    if !have_token && (detail.contains("credentials") || detail.contains("401")) {
        detail.push_str(" (for an https remote, put a token in ZONEKEEPER_GIT_TOKEN or --git-token-file)");
    }
    detail
}

/// The result of bringing the cache up to date.
#[derive(Debug)]
pub enum Fetched {
    /// The remote answered; the cache holds what it has now.
    Fresh,
    /// The remote did not answer; the cache holds what it had at the last good fetch.
    Stale(String),
}

/// Clones `url` into `dir` (no checkout), or fetches into an existing clone. When the fetch
/// fails and a clone exists, the last fetched commits stay usable: a failing remote never
/// reads as "no records".
/// How long a fetch or a push may take before it is given up (`--git-timeout`).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// `fetch_once` in a thread of its own, given up after `deadline`: gix sets only a connect
/// timeout, so a remote that accepts and then never answers would otherwise hold the run.
/// Given up on, the fetch is told to stop; with a clone cached, its commits stay usable
/// (`Stale`), as for any failed fetch.
pub fn fetch(
    url: &str,
    dir: &Path,
    credentials: Option<&Credentials>,
    deadline: std::time::Duration,
) -> Result<Fetched, GitError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    check_plain_http(url, credentials)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let (u, d, c, s) = (url.to_string(), dir.to_path_buf(), credentials.cloned(), stop.clone());
    std::thread::spawn(move || {
        let _ = tx.send(fetch_once(&u, &d, c.as_ref(), &s));
    });
    tracing::info!(url = %redact(url), "fetching");
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(_) => {
            stop.store(true, Ordering::Relaxed);
            let why = format!("no answer within {} s (--git-timeout)", deadline.as_secs());
            if dir.join(".git").exists() {
                Ok(Fetched::Stale(why))
            } else {
                Err(GitError::Fetch { url: redact(url), detail: why })
            }
        }
    }
}

fn fetch_once(
    url: &str,
    dir: &Path,
    credentials: Option<&Credentials>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Fetched, GitError> {
    let shown = redact(url);
    let failed = |e: &dyn std::fmt::Display| GitError::Fetch {
        url: shown.clone(),
        detail: with_token_hint(e.to_string(), credentials.is_some()),
    };
    if dir.join(".git").exists() {
        let refetch = || -> Result<(), String> {
            let repo = open_repo(dir).map_err(|e| chain(&e))?;
            let remote = repo
                .find_default_remote(gix::remote::Direction::Fetch)
                .ok_or("the cached clone has no remote")?
                .map_err(|e| chain(&e))?;
            let mut conn = remote.connect(gix::remote::Direction::Fetch).map_err(|e| chain(&e))?;
            authenticate(&mut conn, url, credentials);
            // Ask for HEAD too, to learn which branch it names now (see below).
            let head = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
                .map_err(|e| chain(&e))?
                .to_owned();
            let options = gix::remote::ref_map::Options { extra_refspecs: vec![head], ..Default::default() };
            let outcome = conn
                .prepare_fetch(gix::progress::Discard, options)
                .map_err(|e| chain(&e))?
                .receive(gix::progress::Discard, stop)
                .map_err(|e| chain(&e))?;
            // Like `git fetch --prune`: a branch deleted on the remote is deleted here too, so
            // it can never be read as if it were still there.
            let on_remote: std::collections::BTreeSet<String> = outcome
                .ref_map
                .remote_refs
                .iter()
                .filter_map(|r| r.unpack().0.to_string().strip_prefix("refs/heads/").map(str::to_string))
                .collect();
            let platform = repo.references().map_err(|e| e.to_string())?;
            let stale: Vec<gix::Reference<'_>> = platform
                .prefixed("refs/remotes/origin/")
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .filter(|r| {
                    let name = r.name().as_bstr().to_string();
                    let branch = name.trim_start_matches("refs/remotes/origin/");
                    branch != "HEAD" && !on_remote.contains(branch)
                })
                .collect();
            for r in stale {
                r.delete().map_err(|e| e.to_string())?;
            }
            // `git clone` sets origin/HEAD once; a remote whose default branch is renamed
            // later would leave it naming a branch that is gone. Follow the remote's HEAD on
            // every fetch instead.
            use gix::protocol::handshake::Ref;
            use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit};
            let head_ref = outcome.ref_map.remote_refs.iter().find(|r| match r {
                Ref::Symbolic { full_ref_name, .. }
                | Ref::Direct { full_ref_name, .. }
                | Ref::Peeled { full_ref_name, .. }
                | Ref::Unborn { full_ref_name, .. } => full_ref_name == "HEAD",
            });
            let new = match head_ref {
                Some(Ref::Symbolic { target, .. }) => match target.to_string().strip_prefix("refs/heads/") {
                    Some(branch) => Some(gix::refs::Target::Symbolic(
                        format!("refs/remotes/origin/{branch}").try_into().map_err(|e| chain(&e))?,
                    )),
                    None => None,
                },
                // A detached HEAD on the remote: follow the commit it names.
                Some(Ref::Direct { object, .. }) | Some(Ref::Peeled { object, .. }) => {
                    Some(gix::refs::Target::Object(object.to_owned()))
                }
                _ => None,
            };
            let name: gix::refs::FullName = "refs/remotes/origin/HEAD".try_into().map_err(|e| chain(&e))?;
            match new {
                Some(new) => {
                    let change = Change::Update { log: LogChange::default(), expected: PreviousValue::Any, new };
                    repo.edit_reference(RefEdit { change, name, deref: false }).map_err(|e| chain(&e))?;
                }
                // No HEAD the remote can name (unborn, or not sent): keep none, rather than
                // one that names what the remote no longer has.
                None => {
                    if let Ok(r) = repo.find_reference(&name) {
                        r.delete().map_err(|e| chain(&e))?;
                    }
                }
            }
            drop_local_branches(&repo)?;
            Ok(())
        };
        return Ok(match refetch() {
            Ok(()) => Fetched::Fresh,
            Err(e) => Fetched::Stale(e.replace(url, &shown)),
        });
    }
    // Clone next to the final place and rename: a half-made clone is never taken for a good
    // one, and two runs starting together never delete each other's work.
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| failed(&e))?;
    let tmp = tempfile::Builder::new().prefix(".clone-").tempdir_in(parent).map_err(|e| failed(&e))?;
    let (creds, remote_url) = (credentials.cloned(), url.to_string());
    gix::prepare_clone(url, tmp.path())
        .map(|p| {
            p.configure_connection(move |conn| {
                authenticate(conn, &remote_url, creds.as_ref());
                Ok(())
            })
        })
        .map_err(|e| chain(&e))
        .and_then(|mut p| p.fetch_only(gix::progress::Discard, stop).map(|_| ()).map_err(|e| chain(&e)))
        .map_err(|e| failed(&e.replace(url, &shown)))?;
    let fresh =
        open_repo(tmp.path()).map_err(|e| failed(&e)).and_then(|r| drop_local_branches(&r).map_err(|e| failed(&e)));
    fresh?;
    let staged = tmp.keep();
    if std::fs::rename(&staged, dir).is_err() {
        // Another run got there first: use its clone.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(Fetched::Fresh)
}

/// Removes the local branches of a cached clone (the clone makes one for the default branch).
/// Only `refs/remotes/origin/*` say what the remote has; a local branch would be a frozen
/// copy that `--ref main` could read after the remote deleted `main`.
fn drop_local_branches(repo: &gix::Repository) -> Result<(), String> {
    let platform = repo.references().map_err(|e| chain(&e))?;
    let local: Vec<gix::Reference<'_>> =
        platform.local_branches().map_err(|e| chain(&e))?.filter_map(Result::ok).collect();
    for r in local {
        r.delete().map_err(|e| chain(&e))?;
    }
    Ok(())
}

/// A revision as the user names it, resolved in a clone: a remote branch first
/// (`main` → `origin/main`), then anything else git understands (a tag, a commit id).
pub fn resolve_in_clone(rev: &str) -> Vec<String> {
    vec![format!("refs/remotes/origin/{rev}"), rev.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(redact("https://user:s3cret@git.example/dns.git"), "https://***@git.example/dns.git");
        assert_eq!(redact("file:///srv/dns.git"), "file:///srv/dns.git");
        assert_eq!(redact("https://u:pa/ss@word@git.example/dns.git"), "https://***@git.example/dns.git");
        assert!(!cache_dir(Path::new("/c"), "https://u:p@h/x.git").to_string_lossy().contains("p@"));
    }

    #[test]
    fn a_secret_goes_over_plain_http_only_to_this_machine() {
        let token = Credentials::new("x-access-token", "t0ken");
        let t = Some(&token);
        for ok in [
            "https://git.example/dns.git",
            "http://127.0.0.1:8080/dns.git",
            "http://localhost/dns.git",
            "HTTP://LOCALHOST:3000/dns.git",
            "http://[::1]:8080/dns.git",
            "http://127.0.0.2/dns.git",
            "ssh://git@git.example/dns.git",
        ] {
            assert!(check_plain_http(ok, t).is_ok(), "{ok}");
        }
        for refused in [
            "http://git.example/dns.git",
            "HTTP://git.example/dns.git",
            "http://git.example:80/dns.git",
            "http://user@git.example/dns.git",
            "http://localhost.git.example/dns.git",
            "http://evil.example?x@127.0.0.1/dns.git",
            "http://evil.example#@127.0.0.1/dns.git",
        ] {
            assert!(check_plain_http(refused, t).is_err(), "{refused}");
        }
        // without a token, plain http is fine, unless the URL carries a password itself
        assert!(check_plain_http("http://git.example/dns.git", None).is_ok());
        assert!(check_plain_http("http://u:secret@git.example/dns.git", None).is_err());
        let Err(e) = check_plain_http("http://u:secret@git.example/dns.git", None) else { unreachable!() };
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn every_revision_has_its_own_last_good_ref() {
        let revs = ["main", "feat+x", "feat@x", "feat_x", "a/.b", "a", "a/b", "release", "release/2025", "HEAD"];
        let refs: std::collections::BTreeSet<String> = revs.iter().map(|r| last_good_ref(r)).collect();
        assert_eq!(refs.len(), revs.len(), "{refs:?}");
        for r in &refs {
            let leaf = r.strip_prefix("refs/zonekeeper/last-good/").unwrap();
            assert!(!leaf.contains('/') && !leaf.is_empty(), "{r}");
            assert!(gix::refs::FullName::try_from(r.as_str()).is_ok(), "{r}");
        }
    }

    #[test]
    fn every_url_has_its_own_cache_folder_inside_the_root() {
        let root = Path::new("/c");
        let a = cache_dir(root, "https://h/a/b.git");
        let b = cache_dir(root, "https://h/a_b.git");
        assert_ne!(a, b, "same readable name, different repositories");
        for odd in ["://", "..://", "../../x"] {
            let d = cache_dir(root, odd);
            assert_eq!(d.parent(), Some(root), "{odd} -> {}", d.display());
            assert!(!d.ends_with(".."));
        }
    }
}

/// Who commits the observed state.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// What to commit where: `files` (paths under `prefix`) on `branch`, on top of `parent`.
#[derive(Clone, Copy)]
pub struct CommitSpec<'a> {
    pub branch: &'a str,
    pub parent: Option<&'a str>,
    pub prefix: &'a str,
    pub files: &'a BTreeMap<String, String>,
    pub author: &'a Author,
    pub message: &'a str,
}

/// Writes `files` (paths under `prefix`, relative to the repository root) as one commit on
/// `branch`, on top of `parent` (the branch's current tip, if any); files under `prefix` that
/// are not in `files` are removed. Returns `None` when the tree would not change: one commit
/// per change, none on no change.
pub fn commit_files(dir: &Path, own_clone: bool, c: &CommitSpec<'_>) -> Result<Option<String>, GitError> {
    let CommitSpec { branch, parent, prefix, files, author, message } = *c;
    use gix::objs::tree::EntryKind;
    let shown = dir.display().to_string();
    let fail = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        what: what.to_string(),
        commit: branch.to_string(),
        detail: e.to_string(),
    };
    // The desired state may be a folder of a larger repository: commit-back goes under that
    // folder too.
    let (repo, folder) = repository_of(dir)?
        .ok_or_else(|| GitError::Open { dir: shown.clone(), detail: "no .git here or in any parent folder".into() })?;
    let within = |rel: &str| if folder.is_empty() { rel.to_string() } else { format!("{folder}/{rel}") };
    let parent_commit = match parent {
        Some(p) => Some(
            repo.rev_parse_single(p)
                .map_err(|e| fail("the branch tip", &e))?
                .object()
                .map_err(|e| fail("the branch tip", &e))?
                .peel_to_commit()
                .map_err(|e| fail("the branch tip", &e))?,
        ),
        None => None,
    };
    let base_tree = match &parent_commit {
        Some(c) => c.tree().map_err(|e| fail("the tree", &e))?,
        None => repo.empty_tree(),
    };
    let mut editor = base_tree.edit().map_err(|e| fail("the tree", &e))?;
    // Start the prefix afresh, so observations that went away go away.
    editor.remove(within(prefix)).map_err(|e| fail(prefix, &e))?;
    for (path, text) in files {
        let blob = repo.write_blob(text.as_bytes()).map_err(|e| fail(path, &e))?;
        editor.upsert(within(path), EntryKind::Blob, blob).map_err(|e| fail(path, &e))?;
    }
    let tree = editor.write().map_err(|e| fail("the tree", &e))?;
    if tree == base_tree.id {
        return Ok(None);
    }
    let signature = gix::actor::Signature {
        name: author.name.as_str().into(),
        email: author.email.as_str().into(),
        time: gix::date::Time::now_utc(),
    };
    let mut buf = gix::date::parse::TimeBuf::default();
    let sig = signature.to_ref(&mut buf);
    let parents: Vec<gix::ObjectId> = parent_commit.iter().map(|c| c.id).collect();
    // In our own clone of a remote, the local branch is only ever ours: it is set to the
    // remote's tip (or removed when the remote has none) before committing on top. In a
    // user's repository it is never forced: the commit only moves it from the parent we
    // read, so a commit made meanwhile is not lost (the commit fails instead).
    if own_clone {
        let name = format!("refs/heads/{branch}");
        match parents.first() {
            Some(p) => {
                repo.reference(name, *p, gix::refs::transaction::PreviousValue::Any, "zonekeeper: the remote's tip")
                    .map_err(|e| fail("the branch", &e))?;
            }
            None => {
                if let Ok(r) = repo.find_reference(name.as_str()) {
                    r.delete().map_err(|e| fail("the branch", &e))?;
                }
            }
        }
    }
    let id = repo
        .commit_as(sig, sig, format!("refs/heads/{branch}"), message, tree, parents)
        .map_err(|e| fail("the commit", &e))?;
    Ok(Some(id.to_string()))
}

/// What became of a push.
#[derive(Debug)]
pub enum Pushed {
    Done,
    /// Refused in a way that a remote that moved on causes (with git's words, redacted):
    /// fetch, and if the branch did move, redo the commit on top and try again.
    MaybeMoved(String),
}

/// Runs `cmd` to its end, or kills it after `deadline`; its output either way.
fn output_within(
    cmd: &mut std::process::Command,
    deadline: std::time::Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    // Read both pipes as the child writes, so a full pipe never stalls it.
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        if let Some(p) = out.as_mut() {
            let _ = p.read_to_end(&mut o);
        }
        o
    });
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        if let Some(p) = err.as_mut() {
            let _ = p.read_to_end(&mut e);
        }
        e
    });
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("git push gave no answer within {} s (--git-timeout)", deadline.as_secs()));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait for git: {e}")),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(std::process::Output { status, stdout, stderr })
}

/// Pushes `commit` to `branch` of `origin` with the git binary (gix cannot push yet), never
/// forcing.
pub fn push(
    dir: &Path,
    url: &str,
    commit: &str,
    branch: &str,
    credentials: Option<&Credentials>,
    deadline: std::time::Duration,
) -> Result<Pushed, GitError> {
    let mut git = std::process::Command::new("git");
    git.arg("-C").arg(dir).env_remove("ZONEKEEPER_GIT_TOKEN");
    if let Some(c) = credentials {
        // The token reaches git through this child's environment and an inline credential
        // helper that prints it, only for the remote's own scheme, host and port: never on a
        // command line (visible in `ps`), never on disk, never to a redirect elsewhere.
        let at = gix::url::parse(gix::bstr::BStr::new(url))
            .ok()
            .and_then(|u| {
                let host = u.host()?.to_string();
                let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
                Some(match u.port {
                    Some(port) => format!("{}://{host}:{port}", u.scheme.as_str()),
                    None => format!("{}://{host}", u.scheme.as_str()),
                })
            })
            .unwrap_or_default();
        const HELPER: &str = "credential.helper=!f() { test \"$1\" = get || return 0; h=; p=; \
            while read -r l; do case \"$l\" in host=*) h=\"${l#host=}\";; protocol=*) p=\"${l#protocol=}\";; esac; done; \
            test \"$p://$h\" = \"$ZONEKEEPER_PUSH_AT\" && \
            printf 'username=%s\\npassword=%s\\n' \"$ZONEKEEPER_PUSH_USER\" \"$ZONEKEEPER_PUSH_TOKEN\"; }; f";
        git.args(["-c", "credential.helper="])
            .args(["-c", HELPER])
            .env("ZONEKEEPER_PUSH_AT", at)
            .env("ZONEKEEPER_PUSH_USER", url_user(url).unwrap_or_else(|| c.user.clone()))
            .env("ZONEKEEPER_PUSH_TOKEN", &c.token);
    }
    let out = git
        .args(["push", "--porcelain", "origin", &format!("{commit}:refs/heads/{branch}")])
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = output_within(out, deadline).map_err(|detail| GitError::Push { remote: "origin".into(), detail })?;
    if out.status.success() {
        return Ok(Pushed::Done);
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // git's own output names the URL; credentials in it must not reach a log.
    let detail = text
        .split_whitespace()
        .map(|w| if w.contains("://") { redact(w) } else { w.to_string() })
        .collect::<Vec<_>>()
        .join(" ");
    // The remote moved on: before we sent (rejected, fetch first) or while we sent (the
    // ref was no longer where the remote told us: failed to update / cannot lock ref). The
    // last two also have other causes; the caller tells them apart by fetching.
    let moved = ["[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref"];
    if moved.iter().any(|m| text.contains(m)) {
        return Ok(Pushed::MaybeMoved(detail));
    }
    let remote = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["remote", "get-url", "origin"])
        .output()
        .map(|o| redact(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|_| "origin".into());
    Err(GitError::Push { remote, detail })
}

/// The commit `rev` names in the repository at `dir`, if it names one.
pub fn resolve(dir: &Path, rev: &str) -> Option<String> {
    let (repo, _) = repository_of(dir).ok()??;
    repo.rev_parse_single(rev).ok().map(|id| id.to_string())
}

/// Where `branch` is checked out, in the repository at `dir` or any of its linked worktrees
/// (`git worktree add`): committing to it there would leave that working tree behind its branch.
pub fn checked_out_in(dir: &Path, branch: &str) -> Result<Option<std::path::PathBuf>, GitError> {
    let open_error =
        |e: &dyn std::fmt::Display| GitError::Open { dir: dir.display().to_string(), detail: e.to_string() };
    let Some((repo, _)) = repository_of(dir)? else { return Err(open_error(&"no .git here or in any parent folder")) };
    let wanted = format!("refs/heads/{branch}");
    let all = repo.worktrees_including_main().map_err(|e| open_error(&e))?;
    for wt in all.filter_map(Result::ok) {
        let Ok(Some(head)) = wt.head_name() else { continue };
        if head.as_bstr() == wanted.as_str() {
            return Ok(Some(wt.workdir().map(Path::to_path_buf).unwrap_or_else(|| wt.git_dir().to_path_buf())));
        }
    }
    Ok(None)
}
