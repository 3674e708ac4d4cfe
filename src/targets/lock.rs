//! One apply at a time per target: two runs (two cron jobs, a person and a pipeline) that
//! observed the same target must not interleave their writes. An apply holds an exclusive
//! advisory lock (flock) on each target's place from before it observes until after it
//! writes; the operating system releases it when the process ends, however it ends.
//!
//! A file target locks the directory it writes in (no lock file is left behind, and every
//! user who can write there sees the same lock). An API target has no place of its own on
//! this machine, so it locks a file named after its origin in a lock directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a target is locked by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockPlace {
    /// A directory the target writes in.
    Dir(PathBuf),
    /// A name (an API's origin) for a lock file in the lock directory.
    Named(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "target {target} is being applied by another zonekeeper run (it holds the lock on {path}); wait for it, or pass --wait SECONDS"
    )]
    Busy { target: String, path: String },
    #[error("target {target} was still locked by another zonekeeper run (on {path}) after waiting {waited} s")]
    TimedOut { target: String, path: String, waited: u64 },
    #[error("cannot lock target {target} on {path}: {source}")]
    Io { target: String, path: String, source: std::io::Error },
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Held {
    _file: File,
}

/// Locks every `(target, place)`, in a fixed order (so two runs never wait on each other in a
/// cycle), waiting up to `wait` for each. `lock_dir` holds the files of named places.
pub fn acquire(
    places: &[(String, LockPlace)],
    lock_dir: &Path,
    wait: Option<Duration>,
) -> Result<Vec<Held>, LockError> {
    // One place spelt two ways (a symlink, `a/../zones`) is one lock: taking it twice would
    // make a run wait for itself.
    let mut sorted: Vec<(&str, LockPlace)> = places
        .iter()
        .map(|(t, p)| {
            let place = match p {
                LockPlace::Dir(d) => LockPlace::Dir(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())),
                named => named.clone(),
            };
            (t.as_str(), place)
        })
        .collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    sorted.dedup_by(|a, b| a.1 == b.1);
    let mut held = Vec::with_capacity(sorted.len());
    for (target, place) in &sorted {
        held.push(lock_one(target, place, lock_dir, wait)?);
    }
    Ok(held)
}

fn lock_one(target: &str, place: &LockPlace, lock_dir: &Path, wait: Option<Duration>) -> Result<Held, LockError> {
    let path = match place {
        LockPlace::Dir(d) => d.clone(),
        LockPlace::Named(name) => lock_dir.join(format!("{}.lock", file_name(name))),
    };
    let io =
        |source: std::io::Error| LockError::Io { target: target.to_string(), path: path.display().to_string(), source };
    let file = match place {
        LockPlace::Dir(d) => {
            std::fs::create_dir_all(d).map_err(io)?;
            File::open(d).map_err(io)?
        }
        LockPlace::Named(_) => {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            // The user's own folder (0700), and no symlink followed to the lock file.
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(lock_dir).map_err(io)?;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io)?
        }
    };
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Held { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let shown = path.display().to_string();
        match wait {
            None => return Err(LockError::Busy { target: target.to_string(), path: shown }),
            Some(w) if start.elapsed() >= w => {
                return Err(LockError::TimedOut { target: target.to_string(), path: shown, waited: w.as_secs() });
            }
            Some(_) => {
                if start.elapsed() < Duration::from_millis(150) {
                    tracing::info!(target_name = target, lock = %shown, "waiting for another zonekeeper run to finish");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// An origin as a file name: letters, digits and `-` kept, everything else `_`.
fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_place_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let places = vec![
            ("files".to_string(), LockPlace::Dir(dir.path().join("zones"))),
            ("tdns".to_string(), LockPlace::Named("https://dns.lan:5380".into())),
        ];
        let first = acquire(&places, dir.path(), None).unwrap();
        for one in &places {
            let err = acquire(std::slice::from_ref(one), dir.path(), None).unwrap_err();
            assert!(matches!(err, LockError::Busy { .. }), "{err}");
        }
        let err = acquire(&places[..1], dir.path(), Some(Duration::from_millis(300))).unwrap_err();
        assert!(matches!(err, LockError::TimedOut { .. }), "{err}");
        drop(first);
        assert!(acquire(&places, dir.path(), None).is_ok());
        // one folder spelt two ways is one lock, not a wait on oneself
        let twice = vec![
            ("a".to_string(), LockPlace::Dir(dir.path().join("zones"))),
            ("b".to_string(), LockPlace::Dir(dir.path().join("zones/../zones"))),
        ];
        assert!(acquire(&twice, dir.path(), None).is_ok());
        assert!(dir.path().join("https___dns_lan_5380.lock").exists());
    }
}
