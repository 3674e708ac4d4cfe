//! Sources of desired state and of discovered records.
//!
//! The repository (`repo.rs`, over `git.rs`) is read first and always: it gives the settings
//! that say which other sources exist. Every other source (Kubernetes, Tailscale, a primary)
//! is a `Source`: one module, plus one line in `configured`. Each is wrapped in `Guarded`,
//! so that a failing source keeps its last good snapshot in force, and `WantedState::merge`
//! joins them all after the repository's.

pub mod git;
pub mod kubernetes;
pub mod orphans;
pub mod repo;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::desired::DesiredState;
use crate::secrets::Secrets;
use crate::wanted::{Conflict, WantedState};

/// What a source reads: its wanted records; a problem it read past, which leaves the source
/// degraded with this snapshot in force; and notes on single objects (a malformed rule, a
/// kind the cluster does not serve), which leave it ok.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub wanted: WantedState,
    pub problem: Option<String>,
    pub notes: Vec<String>,
    /// How many objects the source read, by kind and namespace.
    pub objects: BTreeMap<(String, String), usize>,
}

/// A read in flight.
pub type Reading<'a> = Pin<Box<dyn Future<Output = Result<Snapshot, String>> + Send + 'a>>;

/// A source of wanted records beside the repository.
pub trait Source: Send {
    /// How health, logs and metrics name it (`kubernetes`).
    fn name(&self) -> &'static str;
    /// What the source wants now. An error means "could not read", never "wants nothing".
    fn snapshot(&mut self) -> Reading<'_>;
    /// Ticks when the source has changed since its last snapshot (a watch event), so `run`
    /// reconciles; `None` for a source that is read only when something else triggers.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }
    /// How long a record whose object went away is kept (see `orphans`).
    fn grace(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Every source the settings configure beside the repository: the one place a source is
/// registered. `live` for `run`: sources that can watch do, and signal their changes. The
/// repository never names a secret's place; a source's credentials come from `secrets`,
/// which the operator's credentials file fills.
pub fn configured(state: &DesiredState, _secrets: &Secrets, live: bool) -> Result<Vec<Box<dyn Source>>, String> {
    let mut sources = Vec::new();
    sources.extend(kubernetes::configured(state, live));
    Ok(sources)
}

/// A source with its last good snapshot.
pub struct Guarded {
    source: Box<dyn Source>,
    last: LastGood<WantedState>,
    notes: Vec<String>,
    notes_changed: bool,
    objects: BTreeMap<(String, String), usize>,
    orphans: orphans::Orphans,
}

impl Guarded {
    pub fn new(source: Box<dyn Source>) -> Guarded {
        Guarded::remembering(source, Vec::new())
    }

    /// With the orphans an earlier run of the process remembered for this source.
    pub fn remembering(source: Box<dyn Source>, held: Vec<orphans::Orphan>) -> Guarded {
        let orphans = orphans::Orphans::new(source.grace(), held);
        Guarded {
            source,
            last: LastGood::default(),
            notes: Vec::new(),
            notes_changed: false,
            objects: BTreeMap::new(),
            orphans,
        }
    }

    /// The records kept in their grace period, to remember across a restart.
    pub fn orphans(&self) -> &[orphans::Orphan] {
        self.orphans.held()
    }

    pub fn name(&self) -> &'static str {
        self.source.name()
    }

    /// Reads the source; returns the snapshot in force (the last good one if this read
    /// failed), or `None` while the source has never been read.
    pub async fn read(&mut self) -> Option<&WantedState> {
        let read = self.source.snapshot().await.map(|s| {
            self.notes_changed = s.notes != self.notes;
            self.notes = s.notes;
            self.objects = s.objects;
            (self.orphans.keep(s.wanted, jiff::Timestamp::now()), s.problem)
        });
        self.last.update(read)
    }

    /// The notes of the last read that succeeded.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// How many objects the last good read saw, by kind and namespace.
    pub fn objects(&self) -> &BTreeMap<(String, String), usize> {
        &self.objects
    }

    /// Whether the last read's notes differ from the one before (to report them once).
    pub fn notes_changed(&self) -> bool {
        self.notes_changed
    }

    pub fn health(&self) -> &Health {
        self.last.health()
    }

    pub fn changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        self.source.changes()
    }
}

/// The repository's desired state with every source's snapshot in force merged in after it.
/// A source that has never been read stops the merge: planning without its records would
/// read as "it wants nothing" and delete what it published.
pub async fn with_sources(state: &DesiredState, sources: &mut [Guarded]) -> Result<Merged, String> {
    let mut parts = vec![state.wanted.clone()];
    for g in sources.iter_mut() {
        let name = g.name();
        match g.read().await {
            Some(wanted) => parts.push(wanted.clone()),
            None => {
                let why = g.health().error.clone().unwrap_or_default();
                return Err(format!("source {name} could not be read, and there is no earlier read to use: {why}"));
            }
        }
    }
    let (wanted, conflicts) = WantedState::merge(parts);
    Ok(Merged { state: DesiredState { wanted, ..state.clone_without_records() }, conflicts })
}

/// The desired state with every source merged in, and what the merge left out.
#[derive(Debug)]
pub struct Merged {
    pub state: DesiredState,
    pub conflicts: Vec<Conflict>,
}

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
    use crate::model::{Name, Provenance, RData, RecordSet, RecordType};
    use crate::wanted::WantedRecord;

    /// A source that answers with what it is given, one read at a time.
    struct Scripted(std::collections::VecDeque<Result<Snapshot, String>>);

    impl Source for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn snapshot(&mut self) -> Reading<'_> {
            let next = self.0.pop_front().unwrap_or_else(|| Err("no more reads scripted".into()));
            Box::pin(async move { next })
        }
    }

    fn one(name: &str, ip: &str) -> Snapshot {
        let set = RecordSet::new(
            Name::parse(name).unwrap(),
            RecordType::A,
            300,
            vec![RData::parse(RecordType::A, ip).unwrap()],
        );
        let provenance =
            Provenance::Kubernetes { resource_kind: "Ingress".into(), namespace: "apps".into(), name: "web".into() };
        let zones = [(Name::parse("home.example").unwrap(), vec![WantedRecord::everywhere(set, provenance)])].into();
        Snapshot {
            wanted: WantedState { zones, resolver_sets: Vec::new() },
            problem: None,
            notes: Vec::new(),
            objects: BTreeMap::new(),
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_guarded_source_that_fails_keeps_its_last_snapshot() {
        let script =
            [Err("connection refused".into()), Ok(one("a.home.example", "192.0.2.1")), Err("timed out".into())];
        let mut g = Guarded::new(Box::new(Scripted(script.into())));
        block_on(async {
            assert_eq!(g.read().await, None);
            assert_eq!(g.health().state, HealthState::Down);
            let first = g.read().await.cloned();
            assert_eq!(first.as_ref().map(WantedState::record_count), Some(1));
            assert_eq!(g.read().await.cloned(), first, "a failed read is not `no records`");
            assert_eq!(g.health().state, HealthState::Degraded);
            assert_eq!(g.health().error.as_deref(), Some("timed out"));
        });
    }

    #[test]
    fn merging_waits_for_every_source_to_have_been_read_once() {
        let state = crate::desired::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut sources = vec![Guarded::new(Box::new(Scripted(
            [Err("forbidden".into()), Ok(one("new.home.example", "192.0.2.7"))].into(),
        )))];
        block_on(async {
            let err = with_sources(&state, &mut sources).await.unwrap_err();
            assert!(err.contains("scripted") && err.contains("forbidden"), "{err}");
            let merged = with_sources(&state, &mut sources).await.unwrap();
            assert_eq!(merged.state.wanted.record_count(), state.wanted.record_count() + 1);
            assert!(merged.conflicts.is_empty());
            assert_eq!(merged.state.settings.owner, state.settings.owner);
        });
    }

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
