//! The planner: a pure function from (wanted, observed, ownership, policy, limits) to a plan
//! of ordered changes, and the renderers that lay one plan out as text, Markdown or JSON.
//! No I/O, no async, no knowledge of any source or target: it imports only `model`.
//!
//! The plan is built in named steps, each a function with its own tests:
//! `index_observed` → `diff` → `apply_policy` → `check_internal` → `check_limits` → `order`.

mod diff;
pub mod render;

pub use diff::{
    Change, Drift, Fingerprint, Op, Refusal, SafetyLimits, SettingChange, TargetPlan, TargetRef, apply_changes,
    check_emptied, check_ttl_max, check_types, merged, plan_target,
};

use crate::model::Name;

/// A target's own text before and after the plan (a zone file, a hosts block), made by the
/// target; renderers show it as a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct NativeText {
    pub label: String,
    pub before: String,
    /// `None` when the plan leaves the text as it is.
    pub after: Option<String>,
    /// Shown instead of the line diff when the whole text is rewritten into our form (a file
    /// another tool wrote, adopted): the record changes say what clients will see, and a
    /// diff of every line (200,000 at 100k records) would say nothing more.
    pub rewrite: Option<String>,
}

/// One plan over every target and zone, and what it was computed from.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// What desired state was read, e.g. `working tree of ./dns`.
    pub source: String,
    pub owner: String,
    pub targets: Vec<TargetPlan>,
    /// Target zones that could not be read, so are not planned: every renderer says so in its
    /// summary, so that an incomplete plan never reads as "in sync".
    pub unplanned: Vec<Unplanned>,
}

/// A target (or one zone of it) that could not be read; the rest of the plan still stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Unplanned {
    pub target: String,
    /// `None` when the failure is not about one zone (listing the target's zones).
    pub zone: Option<Name>,
    /// A stable, low-cardinality name of the kind of failure.
    pub reason: &'static str,
    pub error: String,
}

impl Unplanned {
    /// `home.example on tdns`, or `tdns` when no zone is concerned.
    pub fn place(&self) -> String {
        match &self.zone {
            Some(z) => format!("{z} on {}", self.target),
            None => self.target.clone(),
        }
    }
}

impl Plan {
    /// Changes to owned records: what `--detailed-exitcode` counts.
    pub fn change_count(&self) -> usize {
        self.targets.iter().map(|t| t.changes.len() + t.setting_changes.len()).sum()
    }

    /// True when some part of the plan may not be applied even with --force.
    pub fn has_hard_refusal(&self) -> bool {
        self.targets.iter().any(|t| t.refusals.iter().any(|r| !r.overridable()))
    }

    /// True when every target zone could be read.
    pub fn is_complete(&self) -> bool {
        self.unplanned.is_empty()
    }

    pub fn find(&self, target: &str, zone: &Name) -> Option<&TargetPlan> {
        self.targets.iter().find(|t| t.target.name == target && &t.zone == zone)
    }
}
