//! Sources of desired state and of discovered records. Today: the desired-state repository
//! (`repo.rs`, over `git.rs`); Kubernetes and Tailscale discovery come later, each one module
//! that reads a snapshot, wrapped in `LastGood`.

pub mod git;
pub mod repo;

/// How a source (or a target) stands after its last read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Ok,
    /// The last read failed or was held back; the last good state is in use.
    Degraded,
    /// The last read failed and there is no good state to fall back on.
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Health {
    pub state: HealthState,
    /// The last error, while it stands.
    pub error: Option<String>,
}

impl Health {
    pub fn ok() -> Health {
        Health { state: HealthState::Ok, error: None }
    }
}

/// The last good snapshot of a source and how the source stands: the one piece of code that
/// makes "a failing source never reads as no records" true for every source. A read that
/// fails, or that succeeds with a problem held back, keeps the last good snapshot in force.
#[derive(Debug)]
pub struct LastGood<T> {
    value: Option<T>,
    health: Health,
}

impl<T> Default for LastGood<T> {
    fn default() -> Self {
        LastGood { value: None, health: Health { state: HealthState::Down, error: Some("not read yet".into()) } }
    }
}

impl<T> LastGood<T> {
    /// Takes the result of a read: a new snapshot (with a problem that was held back, if
    /// any), or the error of a failed read. Returns the snapshot in force.
    pub fn update(&mut self, read: Result<(T, Option<String>), String>) -> Option<&T> {
        match read {
            Ok((value, problem)) => {
                self.value = Some(value);
                self.health = match problem {
                    None => Health::ok(),
                    Some(p) => Health { state: HealthState::Degraded, error: Some(p) },
                };
            }
            Err(error) => {
                let state = if self.value.is_some() { HealthState::Degraded } else { HealthState::Down };
                self.health = Health { state, error: Some(error) };
            }
        }
        self.value.as_ref()
    }

    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_keeps_the_last_good_snapshot() {
        let mut s = LastGood::<u32>::default();
        assert_eq!(s.update(Err("unreachable".into())), None);
        assert_eq!(s.health().state, HealthState::Down);
        assert_eq!(s.update(Ok((1, None))), Some(&1));
        assert_eq!(s.health(), &Health::ok());
        assert_eq!(s.update(Err("invalid YAML".into())), Some(&1));
        assert_eq!(s.health().state, HealthState::Degraded);
        assert_eq!(s.health().error.as_deref(), Some("invalid YAML"));
        assert_eq!(s.update(Ok((2, Some("commit b held back".into())))), Some(&2));
        assert_eq!(s.health().state, HealthState::Degraded);
        assert_eq!(s.update(Ok((3, None))), Some(&3));
        assert_eq!(s.health().state, HealthState::Ok);
    }
}
