//! The data model every other part speaks: names, record types and values, record sets and
//! where they came from. It imports nothing else of ours.

mod name;
mod rdata;

pub use name::{Name, NameError};
pub use rdata::{
    Caa, MAX_TXT_OCTETS, RData, RDataError, RecordType, parse_presentation, parse_txt_presentation, scan_structured,
    scanner_location, structured_text, txt_strings, writable_structured,
};

use std::fmt;

pub const DEFAULT_VIEW: &str = "default";

/// Where a wanted record came from, so that a plan can point a reviewer at the line to change.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// A line of a file in the desired-state repository.
    File { path: std::sync::Arc<str>, line: u32 },
    /// A Kubernetes object that asked for the name (an Ingress, a route, a Service).
    Kubernetes { resource_kind: std::sync::Arc<str>, namespace: std::sync::Arc<str>, name: std::sync::Arc<str> },
    /// A tailnet device.
    Device { name: std::sync::Arc<str>, id: std::sync::Arc<str> },
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::File { path, line } => write!(f, "{path}:{line}"),
            Provenance::Kubernetes { resource_kind, namespace, name } => {
                write!(f, "{resource_kind}/{namespace}/{name}")
            }
            Provenance::Device { name, id } => write!(f, "device/{name} ({id})"),
        }
    }
}

/// All values of one name and type, with one TTL: the unit the planner compares.
/// `values` is kept sorted and free of duplicates, so two sets compare equal when they
/// hold the same values in any order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema)]
pub struct RecordSet {
    pub name: Name,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub ttl: u32,
    pub values: Vec<RData>,
}

impl RecordSet {
    pub fn new(name: Name, rtype: RecordType, ttl: u32, mut values: Vec<RData>) -> RecordSet {
        values.sort();
        values.dedup();
        RecordSet { name, rtype, ttl, values }
    }

    pub fn key(&self) -> (&Name, RecordType) {
        (&self.name, self.rtype)
    }
}

/// What a plan may do. Chosen explicitly in zonekeeper.yaml; there is no silent default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Create, update and delete owned records.
    Sync,
    /// Create and update; never delete.
    UpsertOnly,
    /// Only create what is missing.
    CreateOnly,
}

/// A record set one target should hold, with where it came from. The set is borrowed from
/// the desired state where it can be (large zones), owned where a target derives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub set: std::borrow::Cow<'a, RecordSet>,
    /// Borrowed from the desired state: a plan of 100,000 sets need not copy 100,000 of them.
    pub provenance: &'a Provenance,
    /// Must never reach a public view.
    pub internal: bool,
}

/// Who owns a record set found at a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "owner", rename_all = "snake_case")]
pub enum Ownership {
    /// Carries our owner id.
    Ours,
    /// Carries another zonekeeper owner id: never touched.
    Other(Box<str>),
    /// Carries no owner marker: left alone unless adopt is set.
    Unowned,
    /// Holds records nobody may change through us, not even by adoption (disabled records,
    /// values we cannot read); the reason says which.
    Protected(Box<str>),
}

/// A record set as a target holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub set: RecordSet,
    pub ownership: Ownership,
}
