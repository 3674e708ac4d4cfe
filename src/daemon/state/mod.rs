//! The state document: everything the `run` process must remember across restarts, in one
//! small JSON document: a file, or in a cluster a ConfigMap (`configmap`). Today it holds the
//! last good commit, the API tokens (hashed) and the orphans of discovered records with their
//! orphan-since times; the tailnet entries we added join it as that part lands.
//!
//! As a file, every change is a read-modify-write under an exclusive lock on a sibling lock
//! file, and the write is atomic (temp file, fsync, rename): `zonekeeper token create` beside
//! a running process never loses the other's change, and a crash leaves the old or the new
//! document. As a ConfigMap, the same holds through the resourceVersion (see `configmap`).
//! A document that cannot be read or parsed is an error, never "nothing remembered": an empty
//! state would forget every token and the last good commit.

mod configmap;
pub use configmap::ConfigMapState;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::targets::atomic;

/// The document as stored. `version` is 1; fields are only ever added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateDoc {
    pub version: u32,
    /// The last commit that loaded cleanly and was applied, per repository and ref read.
    #[serde(default)]
    pub last_good: BTreeMap<String, LastGood>,
    /// API tokens by name.
    #[serde(default)]
    pub tokens: BTreeMap<String, StoredToken>,
    /// Discovered records whose object went away, kept in their grace period, per source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orphans: BTreeMap<String, Vec<crate::sources::orphans::Orphan>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastGood {
    pub commit: String,
    /// When it was last applied, as RFC 3339.
    pub at: String,
}

/// A token as kept: only its SHA-256, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredToken {
    /// Lowercase hex of SHA-256 over the token's text.
    pub sha256: String,
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state document {path} cannot be read: {detail} (it is never read as empty, which would forget tokens and the last good commit; repair or move it away)"
    )]
    Corrupt { path: String, detail: String },
    #[error("cannot read the state document {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot lock the state document {path}: {source}")]
    Lock { path: String, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
    #[error("cannot reach the state document {at}: {detail}")]
    Unreachable { at: String, detail: String },
    #[error("the state document {at} kept changing under {attempts} attempts to change it; try again")]
    Contended { at: String, attempts: usize },
}

/// Where the state document is kept: chosen by the command line and the environment only,
/// never by the repository (it holds the token hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
    /// `namespace` None: the client's own (the pod's).
    ConfigMap {
        namespace: Option<String>,
        name: String,
    },
}

impl StateLocation {
    /// Opens the document; a ConfigMap connects to the API server here.
    pub fn open(&self) -> Result<StateStore, StateError> {
        Ok(match self {
            StateLocation::File(path) => StateStore::File(StateFile::new(path)),
            StateLocation::ConfigMap { namespace, name } => {
                StateStore::ConfigMap(ConfigMapState::connect(namespace.as_deref(), name)?)
            }
        })
    }
}

/// The state document, wherever it is kept.
#[derive(Debug)]
pub enum StateStore {
    File(StateFile),
    ConfigMap(ConfigMapState),
}

impl From<StateFile> for StateStore {
    fn from(file: StateFile) -> StateStore {
        StateStore::File(file)
    }
}

impl StateStore {
    /// The document as it is now; the empty document when there is none yet.
    pub fn read(&self) -> Result<StateDoc, StateError> {
        match self {
            StateStore::File(f) => f.read(),
            StateStore::ConfigMap(c) => c.read(),
        }
    }

    /// Reads the document, lets `change` edit it, and writes it back so that no other
    /// writer's change is lost (a ConfigMap may run `change` again on a newer document).
    /// Nothing is written when `change` fails or leaves the document as it was.
    pub fn update<T, E: From<StateError>>(&self, change: impl FnMut(&mut StateDoc) -> Result<T, E>) -> Result<T, E> {
        match self {
            StateStore::File(f) => f.update(change),
            StateStore::ConfigMap(c) => c.update(change),
        }
    }

    /// The file, when the document is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StateStore::File(f) => Some(f.path()),
            StateStore::ConfigMap(_) => None,
        }
    }

    /// Where the document is, for messages.
    pub fn shown(&self) -> String {
        match self {
            StateStore::File(f) => f.shown(),
            StateStore::ConfigMap(c) => c.shown(),
        }
    }
}

/// The document from its JSON text; what is wrong with it otherwise.
fn parse(text: &str) -> Result<StateDoc, String> {
    let doc: StateDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if doc.version != 1 {
        return Err(format!("version {} is not one this zonekeeper reads (1)", doc.version));
    }
    Ok(doc)
}

/// Now, as the state document writes times (RFC 3339, UTC, whole seconds).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The state document at one path.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

/// Where the state document lives when `--state` does not say: `ZONEKEEPER_STATE`, else
/// `$XDG_STATE_HOME/zonekeeper/state.json`, else `~/.local/state/zonekeeper/state.json`.
/// The repository never chooses it: it holds the token hashes.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("zonekeeper/state.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/zonekeeper/state.json"))
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// The document as it is now; the empty document when the file does not exist yet.
    pub fn read(&self) -> Result<StateDoc, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StateDoc { version: 1, ..Default::default() });
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(StateError::Corrupt { path: self.shown(), detail: "not UTF-8".into() });
            }
            Err(source) => return Err(StateError::Read { path: self.shown(), source }),
        };
        parse(&text).map_err(|detail| StateError::Corrupt { path: self.shown(), detail })
    }

    /// Reads the document, lets `change` edit it, and writes it back atomically, all under
    /// the lock. Nothing is written when `change` fails or leaves the document as it was.
    pub fn update<T, E: From<StateError>>(&self, change: impl FnOnce(&mut StateDoc) -> Result<T, E>) -> Result<T, E> {
        let _lock = self.lock()?;
        let before = self.read()?;
        let mut doc = before.clone();
        let out = change(&mut doc)?;
        if doc != before {
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| {
                    StateError::from(atomic::WriteError::Io { path: dir.display().to_string(), source })
                })?;
            }
            atomic::write_atomic(&self.path, text.as_bytes()).map_err(StateError::from)?;
        }
        Ok(out)
    }

    /// An exclusive lock on `<path>.lock`, held until dropped.
    fn lock(&self) -> Result<std::fs::File, StateError> {
        use std::os::fd::AsRawFd;
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let fail = |source| StateError::Lock { path: self.shown(), source };
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(fail)?;
        // SAFETY: flock on a file descriptor this function owns; it blocks until granted.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_document_is_empty_and_a_garbled_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("sub/state.json"));
        assert_eq!(file.read().unwrap().tokens.len(), 0);
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(file.path(), "{\"version\": 1, \"tokens\": {").unwrap();
        let e = file.read().unwrap_err().to_string();
        assert!(e.contains("never read as empty"), "{e}");
        // An update on a garbled document fails and leaves it as it was.
        let r = file.update(|d| {
            d.tokens.clear();
            Ok::<_, StateError>(())
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "{\"version\": 1, \"tokens\": {");
    }

    #[test]
    fn updates_keep_what_another_writer_added() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateFile::new(dir.path().join("state.json"));
        let b = StateFile::new(dir.path().join("state.json"));
        a.update(|d| {
            d.tokens.insert("ci".into(), StoredToken { sha256: "00".into(), created: "t".into() });
            Ok::<_, StateError>(())
        })
        .unwrap();
        b.update(|d| {
            d.last_good.insert("repo".into(), LastGood { commit: "abc".into(), at: "t".into() });
            Ok::<_, StateError>(())
        })
        .unwrap();
        let doc = a.read().unwrap();
        assert!(doc.tokens.contains_key("ci"));
        assert_eq!(doc.last_good["repo"].commit, "abc");
        let other_version = "{\"version\": 2}";
        std::fs::write(a.path(), other_version).unwrap();
        assert!(a.read().unwrap_err().to_string().contains("version 2"));
    }
}
