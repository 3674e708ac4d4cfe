//! The reconcile worker: one thread that owns the sources' last good state and runs one
//! reconcile at a time through `reconcile.rs`, the same code `plan` and `apply` run. It never
//! panics the process and never exits on a failure: every failure becomes a report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{LastGood as Remembered, StateError, now};
use super::{Batch, ErrorItem, Event, Report, Shared};
use crate::desired::DesiredState;
use crate::model::Name;
use crate::plan::{Change, Plan, TargetPlan};
use crate::reconcile::{self, Scope};
use crate::secrets::Secrets;
use crate::sources::repo::Repo;
use crate::sources::{Health, HealthState, LastGood};
use crate::targets::Outcome;

/// The name of the repository source in health and metrics.
pub const GIT_SOURCE: &str = "git";

/// One desired state as read from the repository.
pub struct Desired {
    pub state: DesiredState,
    pub source: String,
    pub commit: Option<String>,
}

pub struct Worker {
    pub repo: Repo,
    pub secrets: Secrets,
    pub dry_run: bool,
    /// Where API targets' apply locks live.
    pub lock_dir: PathBuf,
    pub shared: Arc<Shared>,
    desired: LastGood<Desired>,
    /// Digests of the desired state at the last clean reconcile: a commit is re-planned only
    /// for the zones whose digest moved.
    clean: Option<BTreeMap<Option<Name>, u64>>,
    /// The pending plan per target zone, kept across scoped runs.
    pending: BTreeMap<(String, Name), TargetPlan>,
    /// The records table of the run that just planned, for `finish` to publish.
    rows: Option<Rows>,
    /// The targets, built once and kept while their settings stay the same.
    built: reconcile::Built,
    /// The sources beside the repository, likewise.
    sources: Sources,
}

/// The sources the settings configure beside the repository, each with its last good
/// snapshot, and the settings they were built from.
struct Sources {
    built_for: Option<String>,
    guarded: Vec<crate::sources::Guarded>,
    /// The orphans as the state document holds them.
    remembered: BTreeMap<String, Vec<crate::sources::orphans::Orphan>>,
    dry_run: bool,
    /// Runs the sources' reads (they are async) and their change watches.
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

impl Sources {
    /// The repository's state with every source merged in; `None` when a source has never
    /// been read (its error is in `report`): no plan runs without it.
    fn merge<'a>(
        &mut self,
        state: &'a DesiredState,
        secrets: &Secrets,
        report: &mut Report,
    ) -> Option<std::borrow::Cow<'a, DesiredState>> {
        // The sources follow the settings, and the resolver sets' rules for finding members.
        let rules: Vec<_> = state.wanted.resolver_sets.iter().map(|s| (&s.name, &s.discover)).collect();
        let key = format!("{:?} {rules:?}", state.settings);
        if self.built_for.as_ref() != Some(&key) {
            self.build(state, secrets, report)?;
            self.built_for = Some(key);
        }
        if self.guarded.is_empty() {
            return Some(std::borrow::Cow::Borrowed(state));
        }
        let merged = self.runtime.block_on(crate::sources::with_sources(state, &mut self.guarded));
        for g in &self.guarded {
            if g.notes_changed() {
                for note in g.notes() {
                    tracing::warn!(source = g.name(), "{note}");
                }
            }
            let health = g.health().clone();
            if let Some(e) = &health.error {
                tracing::warn!(source = g.name(), state = ?health.state, error = %e, "a source could not be read; its last good state stays in force");
                report.error("source", g.name(), e.clone(), None);
            }
            publish_health(&self.shared, g.name(), health);
        }
        self.shared.metrics.watched_objects.clear();
        for g in &self.guarded {
            for ((kind, namespace), n) in g.objects() {
                let labels = super::metrics::WatchedLabels { kind: kind.clone(), namespace: namespace.clone() };
                self.shared.metrics.watched_objects.get_or_create(&labels).set(*n as i64);
            }
        }
        self.remember_orphans();
        let merged = merged.ok()?;
        for c in &merged.conflicts {
            tracing::warn!(zone = %c.zone, name = %c.name, rtype = %c.rtype, kept = %c.kept, dropped = %c.dropped, "{c}");
        }
        Some(std::borrow::Cow::Owned(merged.state))
    }

    /// Writes the sources' orphans into the state document when they changed (not in a dry run,
    /// which writes nothing).
    fn remember_orphans(&mut self) {
        let now: BTreeMap<String, Vec<crate::sources::orphans::Orphan>> = self
            .guarded
            .iter()
            .filter(|g| !g.orphans().is_empty())
            .map(|g| (g.name().to_string(), g.orphans().to_vec()))
            .collect();
        // Only the leader writes the state document.
        if self.dry_run || !self.shared.leader.leads() || now == self.remembered {
            return;
        }
        let result = self.shared.state_file.update::<_, StateError>(|doc| {
            doc.orphans = now.clone();
            Ok(())
        });
        match result {
            Ok(_) => self.remembered = now,
            Err(e) => tracing::warn!(error = %e, "the orphans of discovered records could not be remembered"),
        }
    }

    /// (Re)builds the sources from the settings, and turns each one's change signal into a
    /// reconcile trigger.
    fn build(&mut self, state: &DesiredState, secrets: &Secrets, report: &mut Report) -> Option<()> {
        let sources = match crate::sources::configured(state, secrets, true) {
            Ok(s) => s,
            Err(e) => {
                report.error("settings", "zonekeeper.yaml", e, None);
                return None;
            }
        };
        // Orphans in their grace period survive a restart; a document that cannot be read
        // was refused at start, so an error here is a passing one: start with none.
        let remembered = self.shared.state_file.read().map(|d| d.orphans).unwrap_or_default();
        self.guarded = sources
            .into_iter()
            .map(|s| {
                let held = remembered.get(s.name()).cloned().unwrap_or_default();
                crate::sources::Guarded::remembering(s, held)
            })
            .collect();
        self.remembered = remembered;
        for g in &self.guarded {
            let Some(mut changes) = g.changes() else { continue };
            let shared = self.shared.clone();
            // Ends when the source is dropped (rebuilt or gone): its sender goes with it.
            self.runtime.spawn(async move {
                while changes.changed().await.is_ok() {
                    shared.scheduler.trigger(super::Trigger::Source);
                }
            });
        }
        Some(())
    }
}

/// What one run learnt of the records table: the zones it covered (all for a full run), the
/// target zones it could not read (their earlier rows stand), and the rows it made.
struct Rows {
    scope: Option<Scope>,
    unread: Unread,
    rows: Vec<reconcile::RecordRow>,
}

/// Target zones a run could not read; a zone of `None` is the whole target.
#[derive(Default)]
struct Unread(std::collections::BTreeSet<(String, Option<Name>)>);

impl Unread {
    fn of(plan: &Plan) -> Unread {
        Unread(plan.unplanned.iter().map(|u| (u.target.clone(), u.zone.clone())).collect())
    }

    fn contains(&self, target: &str, zone: &Name) -> bool {
        self.0.iter().any(|(t, z)| t == target && z.as_ref().is_none_or(|z| z == zone))
    }
}

impl Worker {
    pub fn new(
        repo: Repo,
        secrets: Secrets,
        dry_run: bool,
        lock_dir: PathBuf,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
    ) -> Worker {
        let sources = Sources {
            built_for: None,
            guarded: Vec::new(),
            remembered: BTreeMap::new(),
            dry_run,
            runtime,
            shared: shared.clone(),
        };
        Worker {
            repo,
            secrets,
            dry_run,
            lock_dir,
            shared,
            desired: LastGood::default(),
            clean: None,
            pending: BTreeMap::new(),
            rows: None,
            built: reconcile::Built::default(),
            sources,
        }
    }

    pub fn set_secrets(&mut self, mut secrets: Secrets) {
        secrets.keep_env_tokens(&self.secrets);
        self.secrets = secrets;
        self.built.clear();
        // New credentials may open targets that failed: read everything again.
        self.clean = None;
    }

    /// The key of this repository and revision in the state document.
    fn remembered_key(&self) -> String {
        let repo = self.repo.remote().map(|u| crate::sources::git::redact(&u));
        let repo = repo.unwrap_or_else(|| {
            std::fs::canonicalize(&self.repo.repo).unwrap_or(self.repo.repo.clone()).display().to_string()
        });
        format!("{repo}@{}", self.repo.rev.as_deref().unwrap_or("HEAD"))
    }

    /// Reads the repository; on failure with nothing in force (a restart onto a bad commit),
    /// the last good commit remembered in the state document.
    fn read_source(&mut self) {
        let read = match self.repo.load(true) {
            Err(e) => Err(e.to_string()),
            Ok(l) => {
                for note in &l.notes {
                    tracing::warn!(source = GIT_SOURCE, "{note}");
                }
                match (l.state, l.held_back) {
                    (Ok(state), None) => Ok((Desired { state, source: l.source, commit: l.commit }, l.stale)),
                    (Ok(state), Some((bad, invalid))) => {
                        let problem = format!("the {bad} is held back: {invalid}");
                        Ok((Desired { state, source: l.source, commit: l.commit }, Some(problem)))
                    }
                    (Err(invalid), _) => Err(format!("in the {}: {invalid}", l.source)),
                }
            }
        };
        let read = match read {
            Err(problem) if self.desired.get().is_none() => self.remembered(problem),
            other => other,
        };
        self.desired.update(read);
        let health = self.desired.health().clone();
        if let Some(e) = &health.error {
            tracing::warn!(source = GIT_SOURCE, state = ?health.state, error = %e, "the desired state could not be read; the last good state stays in force");
        }
        publish_health(&self.shared, GIT_SOURCE, health);
    }

    /// The last good commit of the state document, read in place of a failing one.
    fn remembered(&self, problem: String) -> Result<(Desired, Option<String>), String> {
        let key = self.remembered_key();
        let doc = match self.shared.state_file.read() {
            Ok(doc) => doc,
            Err(e) => return Err(format!("{problem}; {e}")),
        };
        let Some(last) = doc.last_good.get(&key) else { return Err(problem) };
        match self.repo.load_commit(&last.commit) {
            Ok(l) => match l.state {
                Ok(state) => {
                    let why = format!("{problem}; the last good commit {} is in force", short(&last.commit));
                    Ok((Desired { state, source: l.source, commit: l.commit }, Some(why)))
                }
                Err(e) => Err(format!("{problem}; the remembered commit does not load either: {e}")),
            },
            Err(e) => Err(format!("{problem}; the remembered commit cannot be read: {e}")),
        }
    }

    /// One reconcile of `batch`.
    pub fn reconcile(&mut self, batch: &Batch) -> Report {
        let started = Instant::now();
        let at = now();
        let trigger = batch.label();
        self.shared.emit(Event::ReconcileStarted { trigger, at: at.clone() });
        tracing::info!(trigger, full = batch.full, "reconcile started");
        let mut report = Report {
            trigger,
            started: at,
            seconds: 0.0,
            outcome: "failed",
            dry_run: self.dry_run,
            source: None,
            commit: None,
            scope: None,
            planned: 0,
            applied: 0,
            errors: Vec::new(),
        };
        self.read_source();
        if let Some(e) = &self.desired.health().error {
            report.error("source", GIT_SOURCE, e.clone(), None);
        }
        self.run_plan(batch, &mut report);
        report.seconds = started.elapsed().as_secs_f64();
        self.finish(&report);
        // A reconcile's read of the targets and its plan are gone: the idle process keeps only
        // the desired state, the pending plan and the records table.
        crate::memory::give_back_freed();
        report
    }

    fn run_plan(&mut self, batch: &Batch, report: &mut Report) {
        let Some(desired) = self.desired.get() else { return };
        report.source = Some(desired.source.clone());
        report.commit = desired.commit.clone();
        self.shared.metrics.set_commit(desired.commit.as_deref());
        let Some(state) = self.sources.merge(&desired.state, &self.secrets, report) else { return };
        let digests = reconcile::desired_digests(&state);
        let scope = match &self.clean {
            Some(old) if !batch.full && old.get(&None) == digests.get(&None) => Some(
                digests
                    .iter()
                    .filter(|(k, v)| k.is_some() && old.get(*k) != Some(*v))
                    .filter_map(|(k, _)| k.clone())
                    .collect::<Scope>(),
            ),
            _ => None,
        };
        if let Some(s) = &scope {
            if s.is_empty() {
                // Nothing the targets should hold has moved since the last clean run: no
                // target is read. The periodic resync reads them all.
                report.outcome = "unchanged";
                if report.errors.is_empty() {
                    self.clean = Some(digests);
                }
                return;
            }
            report.scope = Some(s.iter().cloned().collect());
        }
        let planned =
            match reconcile::plan_scoped(&state, &self.secrets, &desired.source, None, scope.as_ref(), &self.built) {
                Ok(p) => p.plan,
                Err(e) => {
                    report.error("settings", "zonekeeper.yaml", e.to_string(), None);
                    return;
                }
            };
        report.planned = planned.change_count();
        for u in &planned.unplanned {
            report.error(u.reason, u.place(), u.error.clone(), Some(u.target.clone()));
        }
        let pending = if self.dry_run {
            report.outcome = "planned";
            planned.clone()
        } else if !self.shared.leader.leads() {
            report.outcome = "standby";
            planned.clone()
        } else {
            self.apply(&state, &planned, report)
        };
        let rows = reconcile::records_view(&state, &self.secrets, &self.built, &pending);
        // A zone that could not be read keeps what was known of it: it never reads as empty.
        let unread = Unread::of(&planned);
        self.pending.retain(|(target, zone), _| {
            scope.as_ref().is_some_and(|s| !s.contains(zone)) || unread.contains(target, zone)
        });
        for tp in pending.targets {
            self.pending.insert((tp.target.name.clone(), tp.zone.clone()), tp);
        }
        self.rows = Some(Rows { scope: scope.clone(), unread, rows });
        self.target_health(&planned, report);
        // A standby replica applied nothing: when it leads, it must not think the targets hold
        // what it planned.
        if report.errors.is_empty() && report.outcome != "standby" {
            self.clean = Some(digests);
            if !self.dry_run {
                self.remember(report.commit.clone());
            }
        }
    }

    /// Applies `plan`; returns what is still pending after it.
    fn apply(&self, state: &DesiredState, plan: &Plan, report: &mut Report) -> Plan {
        // The repository names the files its targets write; never the process's own state.
        let ours = self.shared.state_file.path().and_then(|p| std::fs::canonicalize(p).ok());
        for ts in &state.settings.targets {
            if let crate::desired::TargetKind::Hosts { path } = &ts.kind
                && ours.is_some()
                && std::fs::canonicalize(path).ok() == ours
            {
                let message =
                    format!("target {} names the state document {} as its hosts file", ts.name, path.display());
                report.error("refused", ts.name.clone(), message, Some(ts.name.clone()));
                return plan.clone();
            }
        }
        if let Err(e) = reconcile::check_refusals(plan, false) {
            report.error("refused", "plan", e.to_string(), None);
            return plan.clone();
        }
        if !plan.targets.iter().any(TargetPlan::has_changes) {
            report.outcome = "in_sync";
            return plan.clone();
        }
        // Leadership is checked at the moment of the write: the Lease itself is read.
        if let Err(e) = self.sources.runtime.block_on(self.shared.leader.confirm()) {
            tracing::warn!(error = %e, "nothing is written");
            match e {
                super::leader::LeaderError::NotHolder { .. } => report.outcome = "standby",
                super::leader::LeaderError::Unreadable { .. } => report.error("leader", "lease", e.to_string(), None),
            }
            return plan.clone();
        }
        let places = reconcile::lock_places(state, &self.secrets, None);
        let _held = match crate::targets::lock::acquire(&places, &self.lock_dir, Some(Duration::from_secs(5))) {
            Ok(h) => h,
            Err(e) => {
                report.error("lock", "targets", e.to_string(), None);
                return plan.clone();
            }
        };
        let applied = match reconcile::apply_with(state, &self.secrets, plan, false, &self.built) {
            Ok(a) => a,
            Err(e) => {
                report.error("refused", "plan", e.to_string(), None);
                return plan.clone();
            }
        };
        for a in &applied {
            let Some(tp) = plan.find(&a.target, &a.zone) else { continue };
            for (i, change) in tp.changes.iter().enumerate() {
                self.applied_change(tp, change, a.outcome(i));
            }
            report.applied += a.applied();
            if let Err(e) = &a.result {
                report.error("target", format!("{} on {}", a.zone, a.target), e.to_string(), Some(a.target.clone()));
            } else if !a.is_complete(tp.changes.len()) {
                let failed = tp.changes.len() - a.applied();
                report.error(
                    "apply",
                    format!("{} on {}", a.zone, a.target),
                    format!("{failed} of {} change(s) were not applied", tp.changes.len()),
                    Some(a.target.clone()),
                );
            }
        }
        report.outcome = "applied";
        reconcile::pending_after(plan, &applied)
    }

    /// Logs, counts and announces one change's outcome.
    fn applied_change(&self, tp: &TargetPlan, change: &Change, outcome: Outcome) {
        let values =
            |s: &crate::model::RecordSet| s.values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        let (old, new) = match change {
            Change::Create { set, .. } => (String::new(), values(set)),
            Change::Update { from, to, .. } => (values(from), values(to)),
            Change::Delete { set } => (values(set), String::new()),
        };
        let set = change.set();
        let source = change.provenance().map(|p| p.to_string()).unwrap_or_default();
        let (result, message) = match &outcome {
            Outcome::Applied => ("applied", String::new()),
            Outcome::Failed(m) => ("failed", m.clone()),
            Outcome::Skipped(m) => ("skipped", m.clone()),
        };
        tracing::info!(
            target_name = %tp.target.name,
            zone = %tp.zone,
            name = %set.name,
            rtype = %set.rtype,
            op = change.op().as_str(),
            old = %old,
            new = %new,
            source = %source,
            result,
            detail = %message,
            "change"
        );
        if outcome == Outcome::Applied {
            self.shared
                .metrics
                .changes_applied
                .get_or_create(&super::metrics::AppliedLabels {
                    zone: tp.zone.to_string(),
                    target: tp.target.name.clone(),
                    op: change.op().as_str(),
                })
                .inc();
        }
        self.shared.emit(Event::ChangeApplied {
            target: tp.target.name.clone(),
            zone: tp.zone.clone(),
            op: change.op().as_str(),
            name: set.name.clone(),
            rtype: set.rtype.to_string(),
            old,
            new,
            result,
            message,
        });
    }

    /// Each target's health after this run: down when no zone of it could be read, degraded
    /// when some could not or a write failed. Targets outside a scoped run keep theirs.
    fn target_health(&self, plan: &Plan, report: &Report) {
        let Some(desired) = self.desired.get() else { return };
        let planned_targets: std::collections::BTreeSet<&str> =
            plan.targets.iter().map(|t| t.target.name.as_str()).collect();
        let mut out = BTreeMap::new();
        for ts in &desired.state.settings.targets {
            // A scoped run says nothing of the targets it did not read: they keep theirs.
            let seen = planned_targets.contains(ts.name.as_str()) || plan.unplanned.iter().any(|u| u.target == ts.name);
            if !seen && report.scope.is_some() {
                continue;
            }
            let failed: Vec<&ErrorItem> =
                report.errors.iter().filter(|e| e.target.as_deref() == Some(ts.name.as_str())).collect();
            let unread = plan.unplanned.iter().any(|u| u.target == ts.name);
            let health = match failed.first() {
                None => Health::ok(),
                Some(e) if unread && !planned_targets.contains(ts.name.as_str()) => {
                    Health { state: HealthState::Down, error: Some(e.message.clone()) }
                }
                Some(e) => Health { state: HealthState::Degraded, error: Some(e.message.clone()) },
            };
            out.insert(ts.name.clone(), health);
        }
        self.shared.update(|s| {
            s.targets.retain(|name, _| desired.state.settings.target(name).is_some());
            s.targets.extend(out);
        });
    }

    /// Records the commit just applied as the last good one in the state document.
    fn remember(&self, commit: Option<String>) {
        let Some(commit) = commit else { return };
        let key = self.remembered_key();
        let r = self.shared.state_file.update(|doc| {
            if doc.last_good.get(&key).is_none_or(|l| l.commit != commit) {
                doc.last_good.insert(key.clone(), Remembered { commit: commit.clone(), at: now() });
            }
            Ok::<_, StateError>(())
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not remember the last good commit");
        }
    }

    /// Publishes the run: status, metrics, the pending plan and the records table.
    fn finish(&mut self, report: &Report) {
        let m = &self.shared.metrics;
        m.reconcile_duration
            .get_or_create(&super::metrics::TriggerLabels { trigger: report.trigger })
            .observe(report.seconds);
        let mut reasons: Vec<&'static str> = report.errors.iter().map(|e| e.reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        for reason in reasons {
            m.reconcile_errors.get_or_create(&super::metrics::ReasonLabels { reason }).inc();
        }
        let clean = report.errors.is_empty();
        if clean {
            m.last_success.set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        }
        // The records table: this run's rows, and the earlier rows of zones it did not plan.
        let new_rows = self.rows.take();
        let mut records = Vec::new();
        if let Some(Rows { scope, unread, rows }) = new_rows {
            if let Ok(mut s) = self.shared.status.write() {
                let old = std::mem::take(&mut s.records);
                records.extend(old.into_iter().filter(|r| {
                    scope.as_ref().is_some_and(|s| !s.contains(&r.zone)) || unread.contains(&r.target, &r.zone)
                }));
            }
            records.extend(rows);
        } else if let Ok(mut s) = self.shared.status.write() {
            records = std::mem::take(&mut s.records);
        }
        m.records.clear();
        for r in &records {
            m.records
                .get_or_create(&super::metrics::RecordLabels {
                    zone: r.zone.to_string(),
                    target: r.target.clone(),
                    view: r.view.clone(),
                    state: r.state,
                })
                .inc();
        }
        m.drift.clear();
        for tp in self.pending.values() {
            for d in &tp.drift {
                // DESIGN.md's kinds: a set nobody wants here is an unexpected record; a set
                // that is not ours where we want one is an unexpected value. (A missing record
                // is a pending create, counted in zonekeeper_records.)
                let kind = match d {
                    crate::plan::Drift::Unowned { wanted: None, .. } => "unexpected_record",
                    _ => "unexpected_value",
                };
                m.drift
                    .get_or_create(&super::metrics::DriftLabels {
                        zone: tp.zone.to_string(),
                        target: tp.target.name.clone(),
                        kind,
                    })
                    .inc();
            }
        }
        let plan = self.desired.get().map(|d| Plan {
            source: d.source.clone(),
            owner: d.state.settings.owner.clone(),
            targets: self.pending.values().cloned().collect(),
            unplanned: Vec::new(),
        });
        self.shared.update(|s| {
            s.reconciles += 1;
            if !clean {
                s.failures += 1;
            }
            if clean {
                s.last_success = Some(report.started.clone());
            }
            if let Some(d) = self.desired.get() {
                s.commit = d.commit.clone();
                s.source = Some(d.source.clone());
            }
            s.settings_loaded = self.desired.get().is_some();
            s.last_reconcile = Some(report.clone());
            s.plan = plan.as_ref().map(|p| serde_json::from_str(&crate::plan::render::json(p)).unwrap_or_default());
            s.records = records;
        });
        tracing::info!(
            trigger = report.trigger,
            outcome = report.outcome,
            planned = report.planned,
            applied = report.applied,
            errors = report.errors.len(),
            seconds = report.seconds,
            "reconcile finished"
        );
        for e in &report.errors {
            tracing::warn!(reason = e.reason, place = %e.place, error = %e.message, "reconcile problem");
        }
        self.shared.emit(Event::ReconcileFinished { report: report.clone() });
    }
}

/// A source's health, in `/readyz` and `zonekeeper_source_up`.
fn publish_health(shared: &Shared, source: &str, health: crate::sources::Health) {
    let labels = super::metrics::SourceLabels { source: source.into() };
    shared.metrics.source_up.get_or_create(&labels).set(i64::from(health.state == HealthState::Ok));
    shared.update(|s| {
        s.sources.insert(source.to_string(), health);
    });
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
