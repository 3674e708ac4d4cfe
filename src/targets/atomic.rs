//! Atomic file replacement: a temp file in the same directory, fsync, rename, fsync of the
//! directory. A crash leaves the old file or the new one, never a mix. The old file's mode
//! (and, where we are allowed, its owner) carry over to the new one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: permission denied (run with sudo, or point the target at a file you may write)")]
    PermissionDenied { path: String },
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn io(path: &Path, source: std::io::Error) -> WriteError {
    let path = path.display().to_string();
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        WriteError::PermissionDenied { path }
    } else {
        WriteError::Io { path, source }
    }
}

/// Replaces `path` with `contents` atomically; creates it (mode 0644) if missing.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    // A symlinked file (NixOS's /etc/hosts, a ConfigMap mount) is updated where it really
    // lives; renaming over the link would replace the link instead.
    let resolved;
    let path = if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        resolved = fs::canonicalize(path).map_err(|e| io(path, e))?;
        resolved.as_path()
    } else {
        path
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let old = fs::metadata(path).ok();
    let mut tmp = tempfile::Builder::new().prefix(".zonekeeper-").tempfile_in(dir).map_err(|e| io(path, e))?;
    tmp.write_all(contents).map_err(|e| io(path, e))?;
    let mode = old.as_ref().map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))?;
    if let Some(m) = &old {
        let here = fs::metadata(tmp.path()).map_err(|e| io(path, e))?;
        if here.uid() != m.uid() || here.gid() != m.gid() {
            // Only root may give a file away; anyone else keeps the mode and becomes the owner.
            match std::os::unix::fs::chown(tmp.path(), Some(m.uid()), Some(m.gid())) {
                Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => return Err(io(path, e)),
                _ => {}
            }
        }
    }
    tmp.as_file().sync_all().map_err(|e| io(path, e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        // Makes the rename itself durable; a failure here leaves a complete file either way.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn a_symlink_is_followed_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn permission_denied_names_the_file_and_suggests_sudo() {
        let e = io(Path::new("/etc/hosts"), std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(
            e.to_string(),
            "cannot write /etc/hosts: permission denied (run with sudo, or point the target at a file you may write)"
        );
    }
}
