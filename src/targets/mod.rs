//! Targets: what exists at a DNS server or file, and how to change it. Each target is one
//! module behind the `Target` trait; `build` is the one place that knows them all.

pub mod atomic;
pub mod hosts;
pub mod lock;
pub mod technitium;
pub mod telemetry;
pub mod zonefile;

use crate::desired::{TargetKind, TargetSettings};
use crate::model::{Name, Observed, RecordSet, Wanted};
use crate::plan::{NativeText, SettingChange, TargetPlan};
use crate::secrets::Secrets;

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells every target to send no further write after the one in flight (the `run` process
/// on SIGTERM): what is left is reported as not sent, and the next run plans it again.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Until when (milliseconds since the Unix epoch) this process may write: the expiry of the
/// Lease it last saw itself hold. A process that leads alone may always write.
static LEADING_UNTIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// Sets when this process stops leading (leader election): every target checks it before each
/// write, so a replica that loses its Lease stops after the write in flight.
pub fn lead_until(until: std::time::SystemTime) {
    let ms = until.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    LEADING_UNTIL.store(ms, std::sync::atomic::Ordering::SeqCst);
}

pub fn stop_requested() -> bool {
    stop_reason().is_some()
}

/// Why no further write may be sent, if one may not.
pub fn stop_reason() -> Option<&'static str> {
    if STOP.load(std::sync::atomic::Ordering::SeqCst) {
        return Some("not sent: the process is stopping");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    (now >= LEADING_UNTIL.load(std::sync::atomic::Ordering::SeqCst))
        .then_some("not sent: this replica does not hold the leader lease")
}

/// Every change of `plan` skipped for `why`.
pub(crate) fn skipped(plan: &TargetPlan, why: &str) -> Vec<Outcome> {
    vec![Outcome::Skipped(why.to_string()); plan.changes.len()]
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{path}: {message}")]
    Refused { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} changed since it was planned; plan again")]
    Changed { path: String },
}

/// What became of one planned change on apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "result", content = "message", rename_all = "lowercase")]
pub enum Outcome {
    Applied,
    /// The target refused it or did not answer; the target's own words.
    Failed(String),
    /// Not tried, because something it depends on failed first.
    Skipped(String),
}

impl TargetError {
    /// A stable, low-cardinality name for metrics and JSON output.
    pub fn label(&self) -> &'static str {
        match self {
            TargetError::Refused { .. } => "refused",
            TargetError::Parse { .. } => "parse",
            TargetError::Write(_) => "write",
            TargetError::Read { .. } => "read",
            TargetError::Changed { .. } => "changed",
        }
    }
}

/// What a target holds for one zone now, with its native text when it has one.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub sets: Vec<Observed>,
    /// The target's own text as read (zone file, whole hosts file); `None` when absent.
    pub text: Option<String>,
    /// The largest TTL the target takes for this zone, when it has one (Technitium: the
    /// zone's SOA EXPIRE): a plan with a larger one is refused before anything is sent.
    pub ttl_max: Option<u32>,
    /// The zone's SOA as a zone file holds it (the serial to rise from, the timers to compare).
    pub soa: Option<zonefile::Soa>,
    /// The last serial this target wrote for the zone, kept beside its files: the next one
    /// rises above it even when the file itself is gone.
    pub serial_floor: Option<u32>,
}

pub trait Target {
    fn name(&self) -> &str;
    fn kind(&self) -> &'static str;
    /// What this target can hold of the wanted sets (a hosts file only takes addresses).
    fn prepare<'a>(&self, zone: &Name, wanted: Vec<Wanted<'a>>) -> Vec<Wanted<'a>> {
        let _ = zone;
        wanted
    }
    /// Whether this target can hold `set` (its type, and its values' form): a plan that would
    /// create or update one it cannot is refused for that zone (`Refusal::TypeUnsupported`).
    fn supports(&self, _set: &RecordSet) -> bool {
        true
    }
    /// Changes to the zone's own settings that this target would write with the plan (a zone
    /// file's SOA); none by default.
    fn setting_changes(&self, _zone: &Name, _observation: &Observation, _plan: &TargetPlan) -> Vec<SettingChange> {
        Vec::new()
    }
    /// Whether the planner may take over unowned records.
    fn adopt(&self) -> bool {
        false
    }
    fn observe(&self, zone: &Name) -> Result<Observation, TargetError>;
    /// Zones this target holds for us that the settings no longer give it: their records are
    /// orphans, planned for deletion like any record whose source vanished.
    fn orphan_zones(&self, served: &[Name]) -> Result<Vec<Name>, TargetError> {
        let _ = served;
        Ok(Vec::new())
    }
    /// What an apply locks, so that two runs never interleave their writes here.
    fn lock_place(&self) -> lock::LockPlace;
    /// The native text after the plan, for the rendered diff and for the write.
    fn render(&self, zone: &Name, observation: Observation, plan: &TargetPlan) -> Option<NativeText>;
    /// Performs the plan's changes: one outcome per change of `plan.changes`, in its order.
    /// An error means nothing was applied (the target could not be reached or written at
    /// all). Never called by `plan`.
    fn apply(&self, zone: &Name, plan: &TargetPlan) -> Result<Vec<Outcome>, TargetError>;
}

pub fn build(settings: &TargetSettings, owner: &str, zones: &[Name], secrets: &Secrets) -> Box<dyn Target> {
    match &settings.kind {
        TargetKind::Zonefile { directory, adopt, soa } => Box::new(zonefile::ZoneFileTarget {
            name: settings.name.clone(),
            directory: directory.clone(),
            owner: owner.to_string(),
            adopt: *adopt,
            soa: soa.clone(),
        }),
        TargetKind::Hosts { path } => Box::new(hosts::HostsTarget {
            name: settings.name.clone(),
            path: path.clone(),
            owner: owner.to_string(),
            zones: zones.to_vec(),
        }),
        TargetKind::Technitium(t) => {
            Box::new(technitium::TechnitiumTarget::new(settings.name.clone(), t.clone(), owner.to_string(), secrets))
        }
    }
}

/// Writes `native.after` if the file still holds `native.before`: shared by the targets
/// that write whole files.
pub(crate) fn write_native(path: &std::path::Path, plan: &TargetPlan) -> Result<Vec<Outcome>, TargetError> {
    let all = || vec![Outcome::Applied; plan.changes.len()];
    if !plan.has_changes() {
        return Ok(Vec::new());
    }
    let Some(native) = &plan.native else {
        return Ok(not_rendered(plan));
    };
    let Some(after) = native.after.as_deref().filter(|a| *a != native.before) else {
        // The file already reads as planned.
        return Ok(all());
    };
    if let Some(why) = stop_reason() {
        return Ok(skipped(plan, why));
    }
    if after.is_empty() {
        // Nothing of ours is left in this file: remove it (an orphaned zone's file).
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(all()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(all()),
            Err(source) => Err(TargetError::Write(atomic::WriteError::Io { path: path.display().to_string(), source })),
        };
    }
    let now = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(TargetError::Read { path: path.display().to_string(), source }),
    };
    if now != native.before {
        return Err(TargetError::Changed { path: path.display().to_string() });
    }
    create_parent(path)?;
    atomic::write_atomic(path, after.as_bytes())?;
    Ok(all())
}

/// Every change of `plan` skipped: without the text after the plan there is nothing to
/// write, and it must never be reported as done.
pub(crate) fn not_rendered(plan: &TargetPlan) -> Vec<Outcome> {
    let why = "the file could not be rendered, so nothing was written".to_string();
    vec![Outcome::Skipped(why); plan.changes.len()]
}

/// Creates the folder `path` is to be written in, for a first write.
pub(crate) fn create_parent(path: &std::path::Path) -> Result<(), TargetError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|source| TargetError::Write(atomic::WriteError::Io { path: dir.display().to_string(), source })),
        None => Ok(()),
    }
}
