//! Where desired-state files are read from: the working tree of a directory, or (through
//! `sources::git`) a commit. The loader only asks for a file's text and a folder's YAML
//! files, so both read the same way and report problems the same way.

use std::path::PathBuf;

use super::diagnostic::Diagnostic;
use super::yaml;

pub trait Files {
    /// The text of `rel` (a path like `records/home.example.yaml`), `None` when it does not
    /// exist; refused when over `max_bytes` or not UTF-8.
    fn read(&self, rel: &str, max_bytes: u64) -> Result<Option<String>, Diagnostic>;
    /// `*.yaml` and `*.yml` files directly in `dir`, as sorted paths like `records/x.yaml`.
    fn list_yaml(&self, dir: &str) -> Result<Vec<String>, Diagnostic>;
    /// What was read, for the first line of a plan: `working tree of ./dns`, `commit 1a2b3c4 …`.
    fn describe(&self) -> String;
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The working tree of a directory.
pub struct WorkTree(pub PathBuf);

impl Files for WorkTree {
    fn read(&self, rel: &str, max_bytes: u64) -> Result<Option<String>, Diagnostic> {
        let path = self.0.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(None);
        };
        // A symlink may point within the repository, never out of it: what is reviewed is the
        // repository, and a link to a file elsewhere on the runner would be read and applied.
        if meta.file_type().is_symlink() {
            let inside = match (std::fs::canonicalize(&path), std::fs::canonicalize(&self.0)) {
                (Ok(target), Ok(root)) => target.starts_with(root),
                _ => false,
            };
            if !inside {
                return Err(Diagnostic::file(
                    rel,
                    "is a symlink to a file outside the repository (or to nothing); refused: keep the file itself in the repository",
                ));
            }
        }
        yaml::read_text(&path, rel, max_bytes).map(Some)
    }

    fn list_yaml(&self, dir: &str) -> Result<Vec<String>, Diagnostic> {
        let entries = match std::fs::read_dir(self.0.join(dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Diagnostic::file(dir, format!("cannot list directory: {e}"))),
        };
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                // A symlink counts as what it points at; `read` refuses anything not a regular file.
                let is_dir = std::fs::metadata(e.path()).map(|m| m.is_dir()).unwrap_or(false);
                (!is_dir && is_yaml(&name)).then(|| format!("{dir}/{name}"))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn describe(&self) -> String {
        format!("working tree of {}", self.0.display())
    }
}

/// Files held in memory (a commit's tree, read once), keyed by path.
pub struct InMemory {
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
    /// Paths that exist but cannot be read as files (a symlink in a commit), with why.
    pub refused: std::collections::BTreeMap<String, String>,
    pub description: String,
    /// The full id of the commit the files were read from.
    pub commit: Option<String>,
}

impl Files for InMemory {
    fn read(&self, rel: &str, max_bytes: u64) -> Result<Option<String>, Diagnostic> {
        if let Some(why) = self.refused.get(rel) {
            return Err(Diagnostic::file(rel, why.clone()));
        }
        let Some(bytes) = self.files.get(rel) else { return Ok(None) };
        if bytes.len() as u64 > max_bytes {
            return Err(Diagnostic::file(
                rel,
                format!(
                    "file is {} bytes, over the limit of {max_bytes} bytes (raise `limits.maxFileBytes` in zonekeeper.yaml if this is intended)",
                    bytes.len()
                ),
            ));
        }
        String::from_utf8(bytes.clone()).map(Some).map_err(|e| yaml::not_utf8(rel, e.as_bytes(), e.utf8_error()))
    }

    fn list_yaml(&self, dir: &str) -> Result<Vec<String>, Diagnostic> {
        let prefix = format!("{dir}/");
        let mut out: Vec<String> = self
            .files
            .keys()
            .chain(self.refused.keys())
            .filter(|k| k.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/') && is_yaml(rest)))
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The desired-state files (`zonekeeper.yaml`, `records/*`, `resolvers/*`) whose content on
/// disk under `dir` is not what `commit` holds: changed, added or deleted, sorted. Paths the
/// commit refuses (a committed symlink) are left out; anything on disk that is not a plain
/// file counts as absent; files over 256 MiB are compared by size only. Bytes are compared
/// as they are, so a checkout that rewrites line ends (`core.autocrlf`) shows every file.
pub fn uncommitted(commit: &InMemory, dir: &std::path::Path) -> Vec<String> {
    const READ_AT_MOST: u64 = 256 << 20;
    let disk = WorkTree(dir.to_path_buf());
    let mut paths: std::collections::BTreeSet<String> = commit.files.keys().cloned().collect();
    if dir.join(super::settings::SETTINGS_FILE).exists() {
        paths.insert(super::settings::SETTINGS_FILE.to_string());
    }
    for sub in ["records", "resolvers"] {
        paths.extend(disk.list_yaml(sub).unwrap_or_default());
    }
    paths
        .into_iter()
        .filter(|rel| !commit.refused.contains_key(rel.as_str()))
        .filter(|rel| {
            let committed = commit.files.get(rel.as_str());
            let on_disk = std::fs::metadata(dir.join(rel)).ok().filter(|m| m.is_file());
            match (committed, on_disk) {
                (None, None) => false,
                (Some(_), None) | (None, Some(_)) => true,
                (Some(bytes), Some(m)) if m.len() != bytes.len() as u64 || m.len() > READ_AT_MOST => {
                    m.len() != bytes.len() as u64
                }
                (Some(bytes), Some(_)) => std::fs::read(dir.join(rel)).map(|b| b != *bytes).unwrap_or(true),
            }
        })
        .collect()
}
