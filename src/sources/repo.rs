//! The desired-state repository as every command and the `run` loop read it: the working
//! tree, a commit of a local repository, or a commit of a remote one fetched into a cache,
//! with the last-good rule for a followed branch. What a person should hear about (a clone
//! starting, a fetch that failed, uncommitted edits not read) comes back as notes, never
//! printed here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::desired::files::{Files, WorkTree};
use crate::desired::{self, DesiredState, Invalid, Purpose};
use crate::sources::git::{self, Credentials, GitError};

/// Where the desired state comes from: `--repo`, `--ref`, `--worktree`, and the token for
/// https remotes.
#[derive(Debug, Clone)]
pub struct Repo {
    pub repo: PathBuf,
    pub rev: Option<String>,
    pub worktree: bool,
    /// The deadline of each git fetch and push.
    pub git_timeout: Duration,
    /// `export` loads a state whose zones may have no records file yet.
    pub purpose: Purpose,
    pub credentials: Option<Credentials>,
}

/// The desired state as read, and what was read.
pub struct Loaded {
    pub state: Result<DesiredState, Invalid>,
    /// What was read, in words ("commit 1a2b3c4d5e6f of main of https://…").
    pub source: String,
    /// The commit read, when a commit was read (not the working tree).
    pub commit: Option<String>,
    /// A newer commit of the followed branch that is invalid, held back in favour of the last
    /// good one (`state`), with its problems.
    pub held_back: Option<(String, Invalid)>,
    /// Warnings and notes for the person or the log: a failed fetch, uncommitted edits.
    pub notes: Vec<String>,
    /// Why the remote could not be fetched, when the last fetched commits were read instead.
    pub stale: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("set ZONEKEEPER_CACHE (or HOME) to cache remote repositories")]
    NoCache,
}

/// Where remote repositories are cached: `ZONEKEEPER_CACHE`, else the XDG cache directory.
pub fn cache_root() -> Result<PathBuf, RepoError> {
    if let Some(dir) = std::env::var_os("ZONEKEEPER_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("zonekeeper"));
    }
    let home = std::env::var_os("HOME").ok_or(RepoError::NoCache)?;
    Ok(PathBuf::from(home).join(".cache/zonekeeper"))
}

impl Repo {
    /// The URL when `--repo` names a remote.
    pub fn remote(&self) -> Option<String> {
        let repo = self.repo.to_string_lossy();
        git::is_url(&repo).then(|| repo.into_owned())
    }

    /// The clone of a remote in the cache.
    pub fn clone_dir(&self) -> Result<Option<PathBuf>, RepoError> {
        match self.remote() {
            Some(url) => Ok(Some(git::cache_dir(&cache_root()?, &url))),
            None => Ok(None),
        }
    }

    /// A line to show before a first clone, which can take a while; `None` when the clone is
    /// already cached or the repository is local.
    pub fn first_clone(&self) -> Option<String> {
        let url = self.remote()?;
        let dir = self.clone_dir().ok().flatten()?;
        (!dir.join(".git").exists()).then(|| format!("cloning {} into {}", git::redact(&url), dir.display()))
    }

    /// The desired state from the working tree, a commit of a local repository, or a commit
    /// of a remote one (fetched into the cache). For a remote branch, an invalid new commit
    /// is held back and the last good one read instead when `hold_back` is set (a failing
    /// source never reads as "no records"); `validate` reports the commit it was asked for.
    pub fn load(&self, hold_back: bool) -> Result<Loaded, RepoError> {
        match self.remote() {
            Some(url) => self.load_remote(&url, hold_back),
            None => self.load_local(),
        }
    }

    /// Reads one commit by its full id (the last good commit the `run` loop remembers).
    pub fn load_commit(&self, commit: &str) -> Result<Loaded, RepoError> {
        let files = match (self.remote(), self.clone_dir()?) {
            (Some(url), Some(dir)) => git::read_clone_commit(&dir, commit, &url)?,
            _ => git::read_commit(&self.repo, commit)?,
        };
        let root = if self.remote().is_some() { Path::new(".") } else { self.repo.as_path() };
        Ok(Loaded {
            state: desired::load_for(root, &files, self.purpose),
            source: files.describe(),
            commit: files.commit.clone(),
            held_back: None,
            notes: Vec::new(),
            stale: None,
        })
    }

    /// A local directory: HEAD of its repository, `--ref`, or (`--worktree`, or no
    /// repository) the files on disk.
    fn load_local(&self) -> Result<Loaded, RepoError> {
        let repo = &self.repo;
        let mut notes = Vec::new();
        let on_disk = || {
            let files = WorkTree(repo.to_path_buf());
            (desired::load_for(repo, &files, self.purpose), files.describe(), None)
        };
        let (state, source, commit) = match self.rev.as_deref() {
            Some(rev) => {
                let files = git::read_commit(repo, rev)?;
                (desired::load_for(repo, &files, self.purpose), files.describe(), files.commit.clone())
            }
            None if self.worktree => on_disk(),
            None => match git::read_head(repo)? {
                // Not in a git repository: the files on disk are all there is.
                None => on_disk(),
                Some((files, in_worktree)) => {
                    let uncommitted = if in_worktree { desired::files::uncommitted(&files, repo) } else { Vec::new() };
                    if !uncommitted.is_empty() {
                        notes.push(format!(
                            "note: not reading uncommitted changes to {} (this reads HEAD; pass --worktree for the files on disk)",
                            uncommitted.join(", ")
                        ));
                    }
                    (desired::load_for(repo, &files, self.purpose), files.describe(), files.commit.clone())
                }
            },
        };
        Ok(Loaded { state, source, commit, held_back: None, notes, stale: None })
    }

    /// A remote: fetched into the cache and read at `--ref`, with the last-good rule for a
    /// followed branch.
    fn load_remote(&self, url: &str, hold_back: bool) -> Result<Loaded, RepoError> {
        let dir = git::cache_dir(&cache_root()?, url);
        let mut notes = Vec::new();
        let mut stale = None;
        if let git::Fetched::Stale(why) = git::fetch(url, &dir, self.credentials.as_ref(), self.git_timeout)? {
            let why = git::with_token_hint(why, self.credentials.is_some());
            let said = format!("fetching {} failed ({why}); reading the last fetched commits", git::redact(url));
            notes.push(format!("warning: {said}"));
            stale = Some(said);
        }
        let rev = self.rev.as_deref().unwrap_or("HEAD");
        let read = git::read_clone(&dir, rev, url)?;
        // A remote has no working tree here: the targets' relative paths are relative to the
        // current directory.
        let here = Path::new(".");
        let source = read.files.describe();
        tracing::info!(commit = %read.commit, source = %source, "read the desired state");
        match desired::load_for(here, &read.files, self.purpose) {
            Ok(state) => {
                if read.follows_branch {
                    // Not being able to remember it costs only the fallback, not this run.
                    if let Err(e) = git::set_last_good(&dir, rev, &read.commit) {
                        notes.push(format!("warning: {e}"));
                    }
                }
                Ok(Loaded { state: Ok(state), source, commit: Some(read.commit), held_back: None, notes, stale })
            }
            Err(invalid) => {
                let last = git::last_good(&dir, rev).filter(|c| *c != read.commit);
                match last {
                    Some(last) if hold_back && read.follows_branch => {
                        let files = git::read_clone_commit(&dir, &last, url)?;
                        Ok(Loaded {
                            state: desired::load_for(here, &files, self.purpose),
                            source: files.describe(),
                            commit: Some(last),
                            held_back: Some((source, invalid)),
                            notes,
                            stale,
                        })
                    }
                    _ => Ok(Loaded {
                        state: Err(invalid),
                        source,
                        commit: Some(read.commit),
                        held_back: None,
                        notes,
                        stale,
                    }),
                }
            }
        }
    }
}
