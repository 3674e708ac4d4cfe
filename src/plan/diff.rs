//! The steps of planning one zone on one target.

use foldhash::{HashMap, HashSet, HashSetExt};

use serde::Serialize;

use super::NativeText;
use crate::model::{Name, Observed, Ownership, Policy, Provenance, RecordSet, RecordType, Wanted};

/// Which target and view a plan is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TargetRef {
    pub name: String,
    /// `zonefile`, `hosts`, ...
    pub kind: String,
    pub view: String,
    pub public: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Delete,
    Update,
    Create,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One change to one record set. A change is a message and the action that performs it:
/// renderers print it, targets perform it, from the same list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Create {
        set: RecordSet,
        provenance: Provenance,
    },
    /// `adopt` is set when the record was not ours before this change.
    Update {
        from: RecordSet,
        to: RecordSet,
        provenance: Provenance,
        adopt: bool,
    },
    Delete {
        set: RecordSet,
    },
}

impl Change {
    pub fn op(&self) -> Op {
        match self {
            Change::Create { .. } => Op::Create,
            Change::Update { .. } => Op::Update,
            Change::Delete { .. } => Op::Delete,
        }
    }
    /// The set this change concerns (the new one for create and update).
    pub fn set(&self) -> &RecordSet {
        match self {
            Change::Create { set, .. } | Change::Delete { set } => set,
            Change::Update { to, .. } => to,
        }
    }
    pub fn provenance(&self) -> Option<&Provenance> {
        match self {
            Change::Create { provenance, .. } | Change::Update { provenance, .. } => Some(provenance),
            Change::Delete { .. } => None,
        }
    }
}

/// Something found at the target that the plan will not change, reported for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// A record without our marker where we want one; left alone unless adopt is set.
    Unowned { observed: RecordSet, wanted: Option<RecordSet> },
    /// A record owned by another zonekeeper instance where we want one; never touched.
    OtherOwner { owner: String, observed: RecordSet, wanted: RecordSet },
    /// Records that are never changed through us (disabled, unreadable) where we want one.
    Protected { reason: String, observed: RecordSet, wanted: RecordSet },
}

/// Why (part of) a plan may not be applied.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// Internal names would reach a public view. Not overridable by --force: mark the
    /// record `allowPublic: true` if it is really meant to be public.
    InternalOnPublic { names: Vec<Name> },
    /// More than the allowed share of owned records would change.
    Limit { op: Op, count: usize, owned: usize, max_share: f64 },
    /// The zone's own NS records would change.
    RootNs,
    /// Sets with a TTL above the largest the target takes (Technitium: the SOA EXPIRE), which
    /// it would refuse. Not overridable: the target refuses them whatever we do. It holds back
    /// this zone on this target only; the rest of the plan is applied.
    TtlAboveMax { sets: Vec<RefusedSet>, max: u32 },
    /// Every record set we own in the zone would be deleted, whatever the zone's size, and no
    /// records file says so on purpose (`records: []`): a renamed or deleted file, or a zone
    /// taken out of the settings, needs --force.
    EmptiesZone { owned: usize },
    /// Sets of a type this kind of target cannot hold through us (Technitium: the types whose
    /// API parameters are not in our research yet). Not overridable, this zone on this target
    /// only, like `TtlAboveMax`: creating them is impossible, and ignoring them would read as
    /// "in sync".
    TypeUnsupported { sets: Vec<RefusedSet>, target_kind: String },
}

/// One set a target would refuse (its TTL, or its type), as a refusal names it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RefusedSet {
    pub name: Name,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub ttl: u32,
}

impl Refusal {
    pub fn overridable(&self) -> bool {
        !matches!(
            self,
            Refusal::InternalOnPublic { .. } | Refusal::TtlAboveMax { .. } | Refusal::TypeUnsupported { .. }
        )
    }
    /// True when the refusal holds back only its own zone on its own target, not the plan.
    pub fn zone_only(&self) -> bool {
        matches!(self, Refusal::TtlAboveMax { .. } | Refusal::TypeUnsupported { .. })
    }
    pub fn message(&self) -> String {
        match self {
            Refusal::InternalOnPublic { names } => {
                let shown: Vec<String> = names.iter().take(5).map(|n| n.to_string()).collect();
                let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
                format!(
                    "internal name(s) {}{more} would reach this public view; mark a record `allowPublic: true` if it is meant to be public",
                    shown.join(", ")
                )
            }
            Refusal::Limit { op, count, owned, max_share } => format!(
                "would {} {count} of {owned} owned record sets ({:.0}%), over the limit of {:.0}%; pass --force if this is intended",
                op.as_str(),
                100.0 * *count as f64 / (*owned).max(1) as f64,
                100.0 * max_share
            ),
            Refusal::RootNs => "changes the zone's own NS records; pass --force if this is intended".to_string(),
            Refusal::EmptiesZone { owned } => format!(
                "would delete all {owned} record set(s) we own in this zone; pass --force if this is intended (or give the zone a records file with `records: []`)"
            ),
            Refusal::TtlAboveMax { sets, max } => {
                let shown: Vec<String> =
                    sets.iter().take(5).map(|s| format!("{} {} (TTL {})", s.name, s.rtype, s.ttl)).collect();
                let more = if sets.len() > 5 { format!(" and {} more", sets.len() - 5) } else { String::new() };
                format!(
                    "{}{more}: TTL above {max}, the largest this target takes (the zone's SOA EXPIRE); lower the TTL",
                    shown.join(", ")
                )
            }
            Refusal::TypeUnsupported { sets, target_kind: kind } => {
                let shown: Vec<String> = sets.iter().take(5).map(|s| format!("{} {}", s.name, s.rtype)).collect();
                let more = if sets.len() > 5 { format!(" and {} more", sets.len() - 5) } else { String::new() };
                format!(
                    "{}{more}: zonekeeper cannot write this record type, or this form of its value, to a {kind} target yet; serve it from a zonefile target or leave it out of this target's view",
                    shown.join(", ")
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SafetyLimits {
    pub max_update_share: f64,
    pub max_delete_share: f64,
    pub min_owned: usize,
}

/// The plan for one zone on one target.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TargetPlan {
    pub target: TargetRef,
    pub zone: Name,
    pub changes: Vec<Change>,
    /// Changes the policy holds back (e.g. deletes under upsert-only).
    pub held_back: Vec<Change>,
    pub drift: Vec<Drift>,
    pub refusals: Vec<Refusal>,
    /// Record sets we owned before the plan: the base of the safety limits.
    pub owned: usize,
    /// Unowned record sets at names we do not want: left alone, only counted.
    pub unowned_elsewhere: usize,
    /// Changes to the zone's own settings that a target writes besides its record sets
    /// (a zone file's SOA). Each counts as an update.
    pub setting_changes: Vec<SettingChange>,
    /// Digests of what the plan was computed from, for a saved plan (`plan --out`).
    #[serde(skip)]
    pub fingerprint: Fingerprint,
    /// Shown as a unified diff by the renderers (JSON carries the diff, not both texts).
    #[serde(skip)]
    pub native: Option<NativeText>,
}

/// Digests of the wanted sets (with where each came from) and of what the target held, for
/// one zone on one target: `apply FILE` refuses a saved plan when either has moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub wanted: u64,
    pub observed: u64,
}

/// A zone setting a target writes besides its record sets: the SOA of a zone file (MNAME,
/// RNAME, the four timers and its TTL; the serial is ours to raise). Planned as an update of
/// its own, so that a `soa` change in zonekeeper.yaml, or an adoption that replaces a file's
/// timers, never goes out unannounced with the next record change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SettingChange {
    /// The owner name the setting sits at (the zone's apex).
    pub name: Name,
    /// What it is: `SOA`.
    pub what: &'static str,
    pub from: String,
    pub to: String,
    /// Where the new value comes from (e.g. `zonekeeper.yaml: soa of target coredns`).
    pub source: String,
}

impl TargetPlan {
    /// True when applying this plan writes anything: a record change or a setting change.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.setting_changes.is_empty()
    }
}

/// Plans one zone on one target. Pure: the same inputs always give the same plan.
pub fn plan_target(
    target: TargetRef,
    zone: &Name,
    wanted: &[Wanted<'_>],
    observed: &[Observed],
    policy: Policy,
    limits: SafetyLimits,
    adopt: bool,
) -> TargetPlan {
    let by_key = index_observed(observed);
    let owned = observed.iter().filter(|o| o.ownership == Ownership::Ours).count();
    let (changes, drift, unowned_elsewhere) = diff(wanted, observed, &by_key, adopt);
    let (mut changes, held_back) = apply_policy(changes, policy);
    let mut refusals = Vec::new();
    if target.public {
        refusals.extend(check_internal(wanted));
    }
    refusals.extend(check_limits(&changes, owned, limits, zone));
    order(&mut changes);
    TargetPlan {
        target,
        zone: zone.clone(),
        changes,
        held_back,
        drift,
        refusals,
        owned,
        unowned_elsewhere,
        setting_changes: Vec::new(),
        fingerprint: Fingerprint::default(),
        native: None,
    }
}

/// Refuses a plan that deletes every set we own in the zone, unless the desired state says
/// on purpose that the zone is empty (`on_purpose`: its records file holds no entries).
pub fn check_emptied(changes: &[Change], owned: usize, on_purpose: bool) -> Option<Refusal> {
    let deletes = changes.iter().filter(|c| c.op() == Op::Delete).count();
    // A rename (delete and create) leaves the zone holding something of ours: not emptied.
    let adds = changes.iter().any(|c| c.op() != Op::Delete);
    (owned > 0 && deletes == owned && !adds && !on_purpose).then_some(Refusal::EmptiesZone { owned })
}

impl TargetPlan {
    /// Adds the refusal of `check_emptied` when it applies; it replaces the delete-share
    /// refusal, which would say less about the same deletes.
    pub fn refuse_emptying(&mut self, on_purpose: bool) {
        if let Some(emptied) = check_emptied(&self.changes, self.owned, on_purpose) {
            self.refusals.retain(|r| !matches!(r, Refusal::Limit { op: Op::Delete, .. }));
            self.refusals.push(emptied);
        }
    }
}

/// The sets a create or an update would write that `refused` says the target cannot take.
fn refused_sets(changes: &[Change], refused: impl Fn(&RecordSet) -> bool) -> Vec<RefusedSet> {
    changes
        .iter()
        .filter(|c| c.op() != Op::Delete && refused(c.set()))
        .map(|c| RefusedSet { name: c.set().name.clone(), rtype: c.set().rtype, ttl: c.set().ttl })
        .collect()
}

/// Sets that a create or update would give a TTL above `max`, the largest the target takes.
pub fn check_ttl_max(changes: &[Change], max: Option<u32>) -> Option<Refusal> {
    let max = max?;
    let sets = refused_sets(changes, |s| s.ttl > max);
    (!sets.is_empty()).then_some(Refusal::TtlAboveMax { sets, max })
}

/// Sets that a create or update would give a type the target cannot take.
pub fn check_types(changes: &[Change], kind: &str, supports: impl Fn(&RecordSet) -> bool) -> Option<Refusal> {
    let sets = refused_sets(changes, |s| !supports(s));
    (!sets.is_empty()).then(|| Refusal::TypeUnsupported { sets, target_kind: kind.to_string() })
}

/// Step 1: observed sets by (name, type), borrowing rather than copying the names.
fn index_observed(observed: &[Observed]) -> HashMap<(&Name, RecordType), &Observed> {
    observed.iter().map(|o| ((&o.set.name, o.set.rtype), o)).collect()
}

/// Step 2: what differs, as changes to owned sets and drift for the rest.
fn diff(
    wanted: &[Wanted<'_>],
    observed: &[Observed],
    by_key: &HashMap<(&Name, RecordType), &Observed>,
    adopt: bool,
) -> (Vec<Change>, Vec<Drift>, usize) {
    let mut changes = Vec::new();
    let mut drift = Vec::new();
    let mut wanted_keys: HashSet<(&Name, RecordType)> = HashSet::with_capacity(wanted.len());
    for w in wanted {
        wanted_keys.insert((&w.set.name, w.set.rtype));
        match by_key.get(&(&w.set.name, w.set.rtype)) {
            None => changes.push(Change::Create { set: w.set.clone().into_owned(), provenance: w.provenance.clone() }),
            Some(o) => match &o.ownership {
                Ownership::Ours if o.set == *w.set => {}
                Ownership::Ours => changes.push(Change::Update {
                    from: o.set.clone(),
                    to: w.set.clone().into_owned(),
                    provenance: w.provenance.clone(),
                    adopt: false,
                }),
                Ownership::Unowned if adopt => changes.push(Change::Update {
                    from: o.set.clone(),
                    to: w.set.clone().into_owned(),
                    provenance: w.provenance.clone(),
                    adopt: true,
                }),
                Ownership::Unowned => {
                    drift.push(Drift::Unowned { observed: o.set.clone(), wanted: Some(w.set.clone().into_owned()) })
                }
                Ownership::Protected(reason) => drift.push(Drift::Protected {
                    reason: reason.to_string(),
                    observed: o.set.clone(),
                    wanted: w.set.clone().into_owned(),
                }),
                Ownership::Other(owner) => drift.push(Drift::OtherOwner {
                    owner: owner.to_string(),
                    observed: o.set.clone(),
                    wanted: w.set.clone().into_owned(),
                }),
            },
        }
    }
    // Names we manage, built only when something unowned needs the answer.
    let mut wanted_names: Option<HashSet<&Name>> = None;
    let mut unowned_elsewhere = 0;
    for o in observed {
        if wanted_keys.contains(&(&o.set.name, o.set.rtype)) {
            continue;
        }
        match o.ownership {
            Ownership::Ours => changes.push(Change::Delete { set: o.set.clone() }),
            // An unowned record at a name we manage (another type) is worth a look.
            Ownership::Unowned
                if wanted_names
                    .get_or_insert_with(|| wanted.iter().map(|w| &w.set.name).collect())
                    .contains(&o.set.name) =>
            {
                drift.push(Drift::Unowned { observed: o.set.clone(), wanted: None })
            }
            _ => unowned_elsewhere += 1,
        }
    }
    (changes, drift, unowned_elsewhere)
}

/// Step 3: the policy decides which kinds of change go ahead; the rest are held back.
fn apply_policy(changes: Vec<Change>, policy: Policy) -> (Vec<Change>, Vec<Change>) {
    changes.into_iter().partition(|c| match (policy, c.op()) {
        (Policy::Sync, _) => true,
        (Policy::UpsertOnly, op) => op != Op::Delete,
        (Policy::CreateOnly, op) => op == Op::Create,
    })
}

/// Step 4: no internal name may reach a public view, whatever changes or not.
fn check_internal(wanted: &[Wanted<'_>]) -> Option<Refusal> {
    let mut names: Vec<Name> = wanted.iter().filter(|w| w.internal).map(|w| w.set.name.clone()).collect();
    names.sort();
    names.dedup();
    (!names.is_empty()).then_some(Refusal::InternalOnPublic { names })
}

/// Step 5: safety limits on the share of owned records changed, and the zone's own NS.
fn check_limits(changes: &[Change], owned: usize, limits: SafetyLimits, zone: &Name) -> Vec<Refusal> {
    let mut out = Vec::new();
    let count = |op| changes.iter().filter(|c| c.op() == op).count();
    if owned >= limits.min_owned {
        for (op, max_share) in [(Op::Update, limits.max_update_share), (Op::Delete, limits.max_delete_share)] {
            let n = count(op);
            if n as f64 > max_share * owned as f64 {
                out.push(Refusal::Limit { op, count: n, owned, max_share });
            }
        }
    }
    let root_ns =
        changes.iter().any(|c| c.op() != Op::Create && c.set().rtype == RecordType::NS && &c.set().name == zone);
    if root_ns {
        out.push(Refusal::RootNs);
    }
    out
}

/// Step 6: a deterministic order: by name, and at one name deletes before updates before
/// creates, so that a CNAME replacing an A finds the name free.
fn order(changes: &mut [Change]) {
    changes.sort_by(|a, b| (&a.set().name, a.op(), a.set().rtype).cmp(&(&b.set().name, b.op(), b.set().rtype)));
}

/// The record sets a target holds after `changes` are applied to `observed`, sorted by
/// (name, type), borrowed from both: what targets that write whole files render.
pub fn merged<'a>(observed: &'a [Observed], changes: &'a [Change]) -> Vec<&'a RecordSet> {
    let by_key: HashMap<(&Name, RecordType), &Change> =
        changes.iter().map(|c| ((&c.set().name, c.set().rtype), c)).collect();
    let mut out: Vec<&RecordSet> = Vec::with_capacity(observed.len() + changes.len());
    out.extend(observed.iter().filter(|o| !by_key.contains_key(&(&o.set.name, o.set.rtype))).map(|o| &o.set));
    out.extend(changes.iter().filter(|c| c.op() != Op::Delete).map(|c| c.set()));
    out.sort_by(|a, b| (&a.name, a.rtype).cmp(&(&b.name, b.rtype)));
    out
}

/// Like `merged`, as owned observations (everything written by us is ours).
pub fn apply_changes(observed: &[Observed], changes: &[Change]) -> Vec<Observed> {
    merged(observed, changes).into_iter().map(|set| Observed { set: set.clone(), ownership: Ownership::Ours }).collect()
}

#[cfg(test)]
mod tests;
