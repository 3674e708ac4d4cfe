//! One pass of the pipeline: desired state → wanted sets per target → observe → plan →
//! native diff, and apply. The CLI and (later) the daemon both call this, so a plan on the
//! command line and a reconcile in the cluster can never compute different things.

use crate::desired::{DesiredState, TargetSettings};
use crate::model::{Name, Wanted};
use crate::plan::{Plan, SafetyLimits, TargetPlan, TargetRef, plan_target};
use crate::secrets::Secrets;
use crate::targets::lock::LockPlace;
use crate::targets::{self, Observation, Outcome, Target, TargetError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("no target named `{0}` in zonekeeper.yaml (known: {1})")]
    UnknownTarget(String, String),
    #[error("the plan is refused and --force cannot override it: {0}")]
    Refused(String),
    #[error("the plan needs --force: {0}")]
    NeedsForce(String),
}

/// A target that could not be observed; the rest of the plan still stands.
pub type TargetFailure = crate::plan::Unplanned;

/// The outcome of `plan`: the plan, with the target zones that failed to answer in it.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
}

fn check_target(state: &DesiredState, only: Option<&str>) -> Result<(), ReconcileError> {
    if let Some(name) = only
        && state.settings.target(name).is_none()
    {
        let known: Vec<&str> = state.settings.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(ReconcileError::UnknownTarget(name.to_string(), known.join(", ")));
    }
    Ok(())
}

/// Builds the target named in `settings`, with the zones it serves.
pub fn build_target(state: &DesiredState, secrets: &Secrets, settings: &TargetSettings) -> Box<dyn Target> {
    let zones: Vec<Name> =
        state.settings.zones.iter().filter(|z| z.targets.contains(&settings.name)).map(|z| z.name.clone()).collect();
    targets::build(settings, &state.settings.owner, &zones, secrets)
}

/// The targets of one process, built from the settings when first asked for and kept while
/// their settings (and the zones they serve) stay the same: the `run` loop keeps one for its
/// whole life, so a Technitium target's connection pool and runtime serve every reconcile;
/// each CLI command makes its own.
#[derive(Default)]
pub struct Built {
    cache: std::cell::RefCell<std::collections::BTreeMap<String, Kept>>,
}

/// A built target and the settings it was built from, as one string.
type Kept = (String, std::rc::Rc<dyn Target>);

/// Which target zones a walk visits: every target or only one, every zone or a scope, and
/// whether zones a target still holds but no longer serves are looked for.
struct Which<'s> {
    only: Option<&'s str>,
    scope: Option<&'s Scope>,
    orphans: bool,
}

impl Built {
    /// The target `settings` describes, built now or kept from before.
    pub fn get(&self, state: &DesiredState, secrets: &Secrets, settings: &TargetSettings) -> std::rc::Rc<dyn Target> {
        let zones: Vec<&Name> =
            state.settings.zones.iter().filter(|z| z.targets.contains(&settings.name)).map(|z| &z.name).collect();
        // Everything `targets::build` reads, in one string.
        let key = format!("{settings:?}|{}|{zones:?}", state.settings.owner);
        let mut cache = self.cache.borrow_mut();
        if let Some((k, t)) = cache.get(&settings.name)
            && *k == key
        {
            return t.clone();
        }
        let target: std::rc::Rc<dyn Target> = std::rc::Rc::from(build_target(state, secrets, settings));
        cache.insert(settings.name.clone(), (key, target.clone()));
        target
    }

    /// Forgets every target (new credentials: they are built again with them).
    pub fn clear(&self) {
        self.cache.borrow_mut().clear();
    }
}

/// What an apply of the targets (or only `only`) must lock before it observes them.
pub fn lock_places(state: &DesiredState, secrets: &Secrets, only: Option<&str>) -> Vec<(String, LockPlace)> {
    state
        .settings
        .targets
        .iter()
        .filter(|t| only.is_none_or(|o| o == t.name))
        .map(|ts| (ts.name.clone(), build_target(state, secrets, ts).lock_place()))
        .collect()
}

/// One zone of one target, as `walk` hands it over: the sets the target should hold (none
/// for an orphaned zone) and what it holds now.
struct Visit<'a, 't> {
    settings: &'a TargetSettings,
    target: &'t dyn Target,
    zone: &'t Name,
    wanted: Vec<Wanted<'a>>,
    observation: Observation,
}

/// The one walk over targets and zones that `plan` and `observe` share: every zone each
/// target (or only `only`) serves, and with `orphans` the zones it still holds for us but no
/// longer serves. A target or zone that cannot be read is added to `failures` and skipped.
fn walk<'a>(
    state: &'a DesiredState,
    secrets: &Secrets,
    which: Which<'_>,
    built: &Built,
    failures: &mut Vec<TargetFailure>,
    mut visit: impl FnMut(Visit<'a, '_>),
) {
    let Which { only, scope, orphans } = which;
    let s = &state.settings;
    for ts in s.targets.iter().filter(|t| only.is_none_or(|o| o == t.name)) {
        let target = built.get(state, secrets, ts);
        let served: Vec<Name> = s
            .zones
            .iter()
            .filter(|z| z.targets.contains(&ts.name) && scope.is_none_or(|only| only.contains(&z.name)))
            .map(|z| z.name.clone())
            .collect();
        let mut listing_failed = None;
        // A scoped walk reads only the zones it names; orphaned zones are the full walk's.
        let orphaned = if orphans && scope.is_none() {
            target.orphan_zones(&served).unwrap_or_else(|e| {
                listing_failed = Some(TargetFailure {
                    target: ts.name.clone(),
                    zone: None,
                    reason: e.label(),
                    error: e.to_string(),
                });
                Vec::new()
            })
        } else {
            Vec::new()
        };
        let before = failures.len();
        for zone in served.iter().chain(&orphaned) {
            let wanted =
                if served.contains(zone) { target.prepare(zone, state.wanted(zone, &ts.view)) } else { Vec::new() };
            match target.observe(zone) {
                Ok(observation) => visit(Visit { settings: ts, target: target.as_ref(), zone, wanted, observation }),
                Err(e) => failures.push(TargetFailure {
                    target: ts.name.clone(),
                    zone: Some(zone.clone()),
                    reason: e.label(),
                    error: e.to_string(),
                }),
            }
        }
        // A target that cannot be read at all fails its listing and every zone alike: name
        // each zone once, not the target once more.
        if let Some(f) = listing_failed
            && !failures[before..].iter().any(|z| z.error == f.error)
        {
            failures.push(f);
        }
    }
}

/// Zones a plan is limited to: the ones an event touched (the `run` loop's small reconcile).
pub type Scope = std::collections::BTreeSet<Name>;

/// Plans every zone on every target it lists (or only on `only`). Never writes.
pub fn plan(
    state: &DesiredState,
    secrets: &Secrets,
    source: &str,
    only: Option<&str>,
) -> Result<Planned, ReconcileError> {
    plan_scoped(state, secrets, source, only, None, &Built::default())
}

/// `plan`, limited to the zones of `scope` when one is given: only those zones are read at
/// the targets, and zones a target still holds but no longer serves are not looked for.
pub fn plan_scoped(
    state: &DesiredState,
    secrets: &Secrets,
    source: &str,
    only: Option<&str>,
    scope: Option<&Scope>,
    built: &Built,
) -> Result<Planned, ReconcileError> {
    check_target(state, only)?;
    let s = &state.settings;
    let limits = SafetyLimits {
        max_update_share: s.safety.max_update_share,
        max_delete_share: s.safety.max_delete_share,
        min_owned: s.safety.min_owned_records as usize,
    };
    let mut out =
        Plan { source: source.to_string(), owner: s.owner.clone(), targets: Vec::new(), unplanned: Vec::new() };
    let mut failures = Vec::new();
    let mut large = false;
    walk(state, secrets, Which { only, scope, orphans: true }, built, &mut failures, |v| {
        let ts = v.settings;
        let public = s.view(&ts.view).is_some_and(|view| view.public);
        let tref =
            TargetRef { name: ts.name.clone(), kind: v.target.kind().to_string(), view: ts.view.clone(), public };
        let mut tp = plan_target(tref, v.zone, &v.wanted, &v.observation.sets, s.policy, limits, v.target.adopt());
        tp.refusals.extend(crate::plan::check_ttl_max(&tp.changes, v.observation.ttl_max));
        tp.refusals.extend(crate::plan::check_types(&tp.changes, v.target.kind(), |t| v.target.supports(t)));
        // An empty records file says on purpose that the zone holds nothing.
        tp.refuse_emptying(state.wanted.zones.get(v.zone).is_some_and(|r| r.is_empty()));
        tp.setting_changes = v.target.setting_changes(v.zone, &v.observation, &tp);
        tp.fingerprint = fingerprint(&v.wanted, &v.observation);
        large |= v.wanted.len().max(v.observation.sets.len()) >= crate::memory::LARGE;
        drop(v.wanted);
        tp.native = v.target.render(v.zone, v.observation, &tp);
        out.targets.push(tp);
    });
    if large {
        // The wanted and observed sets are gone; only the plan stays for rendering.
        crate::memory::give_back_freed();
    }
    out.unplanned = failures;
    Ok(Planned { plan: out })
}

/// The seed of every saved-plan digest.
const FINGERPRINT_SEED: u64 = 0x7a6b;

/// Digests of one zone's wanted sets and of what its target holds, with foldhash's fixed
/// seed: the same in every run of one build (a saved plan records the version that made it),
/// and fast enough that a plan of 100,000 records hardly notices.
fn fingerprint(wanted: &[Wanted<'_>], observation: &Observation) -> crate::plan::Fingerprint {
    use std::hash::{BuildHasher, Hash, Hasher};
    let seed = foldhash::fast::FixedState::with_seed(FINGERPRINT_SEED);
    let mut w = seed.build_hasher();
    for x in wanted {
        (&*x.set, x.provenance, x.internal).hash(&mut w);
    }
    let mut o = seed.build_hasher();
    for x in &observation.sets {
        (&x.set, &x.ownership).hash(&mut o);
    }
    (&observation.text, observation.ttl_max).hash(&mut o);
    crate::plan::Fingerprint { wanted: w.finish(), observed: o.finish() }
}

/// A plan saved by `plan --out FILE` for `apply FILE`: the plan as JSON for whoever reviews
/// it, and what it was computed from. `apply FILE` plans again and applies only when every
/// digest matches, so what is applied is exactly what was reviewed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedPlan {
    /// 1.
    pub version: u32,
    /// The zonekeeper version that made it: the digests are only comparable within one.
    pub zonekeeper: String,
    /// `--target` of the plan, if any.
    pub only: Option<String>,
    pub source: String,
    pub zones: Vec<SavedZone>,
    /// Target zones that could not be read when the plan was made.
    pub unplanned: Vec<String>,
    /// The plan as `plan --format json` prints it.
    pub plan: serde_json::Value,
}

#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedZone {
    pub target: String,
    pub zone: String,
    pub changes: usize,
    pub wanted: String,
    pub observed: String,
}

impl SavedPlan {
    pub fn new(plan: &Plan, only: Option<&str>) -> SavedPlan {
        SavedPlan {
            version: 1,
            zonekeeper: env!("CARGO_PKG_VERSION").to_string(),
            only: only.map(str::to_string),
            source: plan.source.clone(),
            zones: SavedPlan::zones_of(plan),
            unplanned: plan.unplanned.iter().map(|u| u.place()).collect(),
            plan: serde_json::from_str(&crate::plan::render::json(plan)).unwrap_or_default(),
        }
    }

    fn zones_of(plan: &Plan) -> Vec<SavedZone> {
        plan.targets
            .iter()
            .map(|t| SavedZone {
                target: t.target.name.clone(),
                zone: t.zone.to_string(),
                changes: t.changes.len() + t.setting_changes.len(),
                // The settings that make the zone's SOA are desired state too.
                wanted: format!("{:016x}", {
                    use std::hash::{BuildHasher, Hash, Hasher};
                    let mut h = foldhash::fast::FixedState::with_seed(FINGERPRINT_SEED).build_hasher();
                    t.fingerprint.wanted.hash(&mut h);
                    for c in &t.setting_changes {
                        (&c.what, &c.from, &c.to).hash(&mut h);
                    }
                    h.finish()
                }),
                observed: format!("{:016x}", t.fingerprint.observed),
            })
            .collect()
    }

    /// What moved between this saved plan and `fresh`, a plan made now from the same
    /// settings; empty when `fresh` is exactly the plan that was saved.
    pub fn moved(&self, fresh: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        if self.version != 1 {
            out.push(format!("the plan file has version {}, this zonekeeper reads version 1", self.version));
            return out;
        }
        if self.zonekeeper != env!("CARGO_PKG_VERSION") {
            out.push(format!(
                "the plan was made by zonekeeper {}, this is {}; plan again with this version",
                self.zonekeeper,
                env!("CARGO_PKG_VERSION")
            ));
            return out;
        }
        let now = SavedPlan::zones_of(fresh);
        for z in &self.zones {
            match now.iter().find(|n| n.target == z.target && n.zone == z.zone) {
                None => out.push(format!("{} on {} is no longer planned", z.zone, z.target)),
                Some(n) if n.wanted != z.wanted => out.push(format!(
                    "the desired state of {} on {} changed since the plan (records or settings)",
                    z.zone, z.target
                )),
                Some(n) if n.observed != z.observed => out.push(format!(
                    "what {} holds for {} changed since the plan (another run, a person, or the server)",
                    z.target, z.zone
                )),
                Some(_) => {}
            }
        }
        for n in &now {
            if !self.zones.iter().any(|z| z.target == n.target && z.zone == n.zone) {
                out.push(format!("{} on {} is planned now but was not in the saved plan", n.zone, n.target));
            }
        }
        let unplanned: Vec<String> = fresh.unplanned.iter().map(|u| u.place()).collect();
        if unplanned != self.unplanned {
            out.push(format!(
                "the target zones that could not be read differ: then [{}], now [{}]",
                self.unplanned.join(", "),
                unplanned.join(", ")
            ));
        }
        out
    }
}

/// What one target and zone did on apply: an outcome per planned change (in plan order), or
/// the error that kept the whole zone from being applied.
#[derive(Debug)]
pub struct Applied {
    pub target: String,
    pub zone: Name,
    pub result: Result<Vec<Outcome>, TargetError>,
}

impl Applied {
    /// The outcome of the `i`th change of this target and zone's plan.
    pub fn outcome(&self, i: usize) -> Outcome {
        match &self.result {
            Ok(outcomes) => outcomes.get(i).cloned().unwrap_or(Outcome::Skipped("not sent".into())),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// How many changes were applied.
    pub fn applied(&self) -> usize {
        self.result.as_ref().map(|o| o.iter().filter(|o| **o == Outcome::Applied).count()).unwrap_or(0)
    }

    /// True when every change was applied.
    pub fn is_complete(&self, planned: usize) -> bool {
        self.result.is_ok() && self.applied() == planned
    }
}

/// The output of `zonekeeper apply --format json`: what every planned change became.
/// `version` is 1; it changes only when a field changes meaning or goes away.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "zonekeeper apply (apply --format json)")]
pub struct ApplyReport {
    pub version: u32,
    /// What was read, as in the plan.
    pub source: String,
    pub owner: String,
    /// The plan's totals.
    pub summary: crate::plan::render::Summary,
    /// True when every planned change was applied and every target zone could be read.
    pub complete: bool,
    /// Target zones that could not be read, so were not planned.
    pub unplanned: Vec<crate::plan::Unplanned>,
    pub results: Vec<ZoneResult>,
}

/// One target zone on apply.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ZoneResult {
    pub target: String,
    pub zone: Name,
    pub applied: usize,
    pub planned: usize,
    pub changes: Vec<ChangeResult>,
    /// What kept the whole zone from being applied (a refusal, a write error).
    pub error: Option<String>,
}

/// One planned change (a record set, or a zone setting such as the SOA) and its outcome.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ChangeResult {
    pub op: crate::plan::Op,
    pub name: Name,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ApplyReport {
    pub fn new(plan: &Plan, applied: &[Applied]) -> ApplyReport {
        let mut results = Vec::new();
        for a in applied {
            let Some(tp) = plan.find(&a.target, &a.zone) else { continue };
            let mut changes: Vec<ChangeResult> = tp
                .changes
                .iter()
                .enumerate()
                .map(|(i, c)| ChangeResult {
                    op: c.op(),
                    name: c.set().name.clone(),
                    rtype: c.set().rtype.to_string(),
                    outcome: a.outcome(i),
                })
                .collect();
            // A setting change goes out in the same write as the records: it shares its fate.
            // Nothing written when every record change was skipped (the file could not be
            // rendered): the setting was not applied either.
            let all_skipped = !changes.is_empty() && changes.iter().all(|c| matches!(c.outcome, Outcome::Skipped(_)));
            for c in &tp.setting_changes {
                let outcome = match &a.result {
                    Ok(_) if all_skipped => Outcome::Skipped("nothing was written".into()),
                    Ok(_) => Outcome::Applied,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                changes.push(ChangeResult {
                    op: crate::plan::Op::Update,
                    name: c.name.clone(),
                    rtype: c.what.into(),
                    outcome,
                });
            }
            let planned = changes.len();
            let done = changes.iter().filter(|c| c.outcome == Outcome::Applied).count();
            results.push(ZoneResult {
                target: a.target.clone(),
                zone: a.zone.clone(),
                applied: done,
                planned,
                changes,
                error: a.result.as_ref().err().map(|e| e.to_string()),
            });
        }
        let complete = plan.is_complete() && results.iter().all(|r| r.applied == r.planned && r.error.is_none());
        ApplyReport {
            version: 1,
            source: plan.source.clone(),
            owner: plan.owner.clone(),
            summary: crate::plan::render::summary(plan),
            complete,
            unplanned: plan.unplanned.clone(),
            results,
        }
    }

    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(ApplyReport)).unwrap_or_default()
    }

    /// Markdown for a pull-request comment or a job summary: one table of outcomes.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = String::from("### zonekeeper apply\n\n");
        let (done, planned) = self.results.iter().fold((0, 0), |(d, p), r| (d + r.applied, p + r.planned));
        let state = if self.complete { "complete" } else { "**incomplete**" };
        let _ = writeln!(
            out,
            "Read {} · owner `{}` · applied {done} of {planned} change(s) · {state}\n",
            cell(&self.source),
            cell(&self.owner)
        );
        for u in &self.unplanned {
            let _ = writeln!(out, "> **Not planned:** {}: {}\n", cell(&u.place()), cell(&u.error));
        }
        if planned > 0 {
            let _ =
                writeln!(out, "| result | op | name | type | target | zone | message |\n|---|---|---|---|---|---|---|");
            for r in &self.results {
                for c in &r.changes {
                    let (result, message) = match &c.outcome {
                        Outcome::Applied => ("ok", ""),
                        Outcome::Failed(m) => ("failed", m.as_str()),
                        Outcome::Skipped(m) => ("skipped", m.as_str()),
                    };
                    let _ = writeln!(
                        out,
                        "| {result} | {} | `{}` | {} | {} | `{}` | {} |",
                        c.op.as_str(),
                        c.name,
                        c.rtype,
                        cell(&r.target),
                        r.zone,
                        cell(message)
                    );
                }
            }
            out.push('\n');
        }
        for r in self.results.iter().filter(|r| r.error.is_some()) {
            let _ = writeln!(
                out,
                "> **Error:** `{}` on {}: {}\n",
                r.zone,
                cell(&r.target),
                cell(r.error.as_deref().unwrap_or_default())
            );
        }
        out
    }
}

/// Checks the refusals of a plan before anything is written.
pub fn check_refusals(plan: &Plan, force: bool) -> Result<(), ReconcileError> {
    let describe = |tp: &TargetPlan, hard: bool| {
        tp.refusals
            .iter()
            .filter(|r| r.overridable() != hard && !r.zone_only())
            .map(|r| format!("{} on {}: {}", tp.zone, tp.target.name, r.message()))
            .collect::<Vec<_>>()
    };
    let hard: Vec<String> = plan.targets.iter().flat_map(|t| describe(t, true)).collect();
    if !hard.is_empty() {
        return Err(ReconcileError::Refused(hard.join("; ")));
    }
    let soft: Vec<String> = plan.targets.iter().flat_map(|t| describe(t, false)).collect();
    if !soft.is_empty() && !force {
        return Err(ReconcileError::NeedsForce(soft.join("; ")));
    }
    Ok(())
}

/// Applies a plan made by `plan` from the same state. Each target and zone is applied on its
/// own; one failure leaves the others' results standing.
pub fn apply(
    state: &DesiredState,
    secrets: &Secrets,
    plan: &Plan,
    force: bool,
) -> Result<Vec<Applied>, ReconcileError> {
    apply_with(state, secrets, plan, force, &Built::default())
}

/// `apply` with the targets of `built`.
pub fn apply_with(
    state: &DesiredState,
    secrets: &Secrets,
    plan: &Plan,
    force: bool,
    built: &Built,
) -> Result<Vec<Applied>, ReconcileError> {
    check_refusals(plan, force)?;
    let mut out = Vec::new();
    for tp in plan.targets.iter().filter(|t| t.has_changes()) {
        let Some(ts) = state.settings.target(&tp.target.name) else {
            continue;
        };
        // A refusal that holds back only this zone on this target: nothing is sent here, the
        // rest of the plan goes ahead, and the run reports it as failed.
        if let Some(r) = tp.refusals.iter().find(|r| r.zone_only()) {
            let refused = TargetError::Refused { path: format!("target {}", tp.target.name), message: r.message() };
            out.push(Applied { target: tp.target.name.clone(), zone: tp.zone.clone(), result: Err(refused) });
            continue;
        }
        let target = built.get(state, secrets, ts);
        out.push(Applied { target: tp.target.name.clone(), zone: tp.zone.clone(), result: target.apply(&tp.zone, tp) });
    }
    Ok(out)
}

/// What one target holds for one zone, each set with the wanted set of the same name and
/// type (if any): the observed state that commit-back writes.
pub struct ObservedZone<'a> {
    pub target: String,
    pub kind: &'static str,
    pub view: String,
    pub zone: Name,
    pub sets: Vec<(crate::model::Observed, Option<Wanted<'a>>)>,
}

/// Observes every zone on every target (never writes). Targets that fail are listed.
pub fn observe<'a>(state: &'a DesiredState, secrets: &Secrets) -> (Vec<ObservedZone<'a>>, Vec<TargetFailure>) {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    walk(state, secrets, Which { only: None, scope: None, orphans: false }, &Built::default(), &mut failures, |v| {
        let by_key: foldhash::HashMap<_, _> = v.wanted.iter().map(|w| (w.set.key(), w)).collect();
        let sets = v
            .observation
            .sets
            .into_iter()
            .map(|obs| {
                let w = by_key.get(&obs.set.key()).map(|w| (*w).clone());
                (obs, w)
            })
            .collect();
        out.push(ObservedZone {
            target: v.settings.name.clone(),
            kind: v.target.kind(),
            view: v.settings.view.clone(),
            zone: v.zone.clone(),
            sets,
        });
    });
    (out, failures)
}

/// A digest of each zone's desired state as every target serving it should hold it, and one
/// of the settings (`None` key): the `run` loop compares them with the last applied ones to
/// re-plan only the zones a commit touched.
pub fn desired_digests(state: &DesiredState) -> std::collections::BTreeMap<Option<Name>, u64> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let seed = foldhash::fast::FixedState::with_seed(FINGERPRINT_SEED);
    let mut out = std::collections::BTreeMap::new();
    // The settings have no Hash of their own; their debug form names every field.
    out.insert(None, seed.hash_one(format!("{:?}", state.settings)));
    for z in &state.settings.zones {
        let mut h = seed.build_hasher();
        for ts in state.settings.targets.iter().filter(|t| z.targets.contains(&t.name)) {
            ts.name.hash(&mut h);
            for w in state.wanted(&z.name, &ts.view) {
                (&*w.set, w.provenance, w.internal).hash(&mut h);
            }
        }
        out.insert(Some(z.name.clone()), h.finish());
    }
    out
}

/// The plan with every change that was applied taken out: what is still pending after an
/// apply (the whole plan for a zone that failed).
pub fn pending_after(plan: &Plan, applied: &[Applied]) -> Plan {
    let mut out = plan.clone();
    for tp in &mut out.targets {
        let Some(a) = applied.iter().find(|a| a.target == tp.target.name && a.zone == tp.zone) else { continue };
        let all_done = a.is_complete(tp.changes.len());
        let mut i = 0;
        tp.changes.retain(|_| {
            let keep = a.outcome(i) != Outcome::Applied;
            i += 1;
            keep
        });
        if all_done {
            tp.setting_changes.clear();
        }
        tp.native = None;
    }
    out
}

/// One record set as the `run` process's API and UI show it: what is wanted (or found) at
/// one target, where it came from, and how it stands.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RecordRow {
    pub target: String,
    pub zone: Name,
    pub view: String,
    pub name: Name,
    #[serde(rename = "type")]
    pub rtype: crate::model::RecordType,
    pub ttl: u32,
    pub values: Vec<String>,
    /// Where the wanted set came from (`records/home.yaml:12`); empty for a set found at the
    /// target that nothing wants.
    pub source: String,
    /// `in_sync`, `pending` (a change is planned), `drift` (the target holds something else
    /// and it is not ours to change), `unowned` (found at the target, not wanted, not ours).
    pub state: &'static str,
}

/// Every wanted set of every planned target zone, with its state by `plan` (a pending plan:
/// what is still to change), and the unowned sets the plan found.
pub fn records_view(state: &DesiredState, secrets: &Secrets, built: &Built, plan: &Plan) -> Vec<RecordRow> {
    let mut rows = Vec::new();
    for tp in &plan.targets {
        let Some(ts) = state.settings.target(&tp.target.name) else { continue };
        // What the target can hold of the wanted sets (a hosts file: addresses only).
        let wanted = built.get(state, secrets, ts).prepare(&tp.zone, state.wanted(&tp.zone, &tp.target.view));
        let row = |set: &crate::model::RecordSet, source: String, st: &'static str| RecordRow {
            target: tp.target.name.clone(),
            zone: tp.zone.clone(),
            view: tp.target.view.clone(),
            name: set.name.clone(),
            rtype: set.rtype,
            ttl: set.ttl,
            values: set.values.iter().map(|v| v.to_string()).collect(),
            source,
            state: st,
        };
        let pending: foldhash::HashSet<_> = tp
            .changes
            .iter()
            .chain(&tp.held_back)
            .filter(|c| c.op() != crate::plan::Op::Delete)
            .map(|c| c.set().key())
            .collect();
        let drifted: foldhash::HashSet<_> = tp
            .drift
            .iter()
            .filter_map(|d| match d {
                crate::plan::Drift::Unowned { wanted: Some(w), .. }
                | crate::plan::Drift::OtherOwner { wanted: w, .. }
                | crate::plan::Drift::Protected { wanted: w, .. } => Some(w.key()),
                crate::plan::Drift::Unowned { wanted: None, .. } => None,
            })
            .collect();
        for w in wanted {
            let key = w.set.key();
            let st = if pending.contains(&key) {
                "pending"
            } else if drifted.contains(&key) {
                "drift"
            } else {
                "in_sync"
            };
            rows.push(row(&w.set, w.provenance.to_string(), st));
        }
        for c in tp.changes.iter().filter(|c| c.op() == crate::plan::Op::Delete) {
            rows.push(row(c.set(), String::new(), "pending"));
        }
        for d in &tp.drift {
            if let crate::plan::Drift::Unowned { observed, wanted: None } = d {
                rows.push(row(observed, String::new(), "unowned"));
            }
        }
    }
    rows
}
