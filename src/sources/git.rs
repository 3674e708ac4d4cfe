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
}

/// A commit, identified for people: short id and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub short: String,
    pub subject: String,
}

/// The desired-state files of `rev` in the repository at `dir`.
pub fn read_commit(dir: &Path, rev: &str) -> Result<(CommitInfo, InMemory), GitError> {
    let shown = dir.display().to_string();
    let repo = gix::open(dir).map_err(|e| GitError::Open { dir: shown.clone(), detail: e.to_string() })?;
    let revision = |detail: String| GitError::Revision { rev: rev.to_string(), dir: shown.clone(), detail };
    let id = repo.rev_parse_single(rev).map_err(|e| revision(e.to_string()))?;
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
    if let Some(entry) = tree.lookup_entry_by_path("zonekeeper.yaml").map_err(|e| read("zonekeeper.yaml", &e))? {
        if entry.mode().is_blob() {
            let blob = entry.object().map_err(|e| read("zonekeeper.yaml", &e))?;
            files.insert("zonekeeper.yaml".to_string(), blob.data.clone());
        } else {
            refused.insert("zonekeeper.yaml".to_string(), NOT_A_FILE.to_string());
        }
    }
    for dir in ["records", "resolvers"] {
        let Some(entry) = tree.lookup_entry_by_path(dir).map_err(|e| read(dir, &e))? else { continue };
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
    let info = CommitInfo { id: full, short: short.clone(), subject: subject.clone() };
    let description = format!("commit {short} ({subject}) of {shown}");
    Ok((info, InMemory { files, refused, description }))
}
