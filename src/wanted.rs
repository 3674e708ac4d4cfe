//! What the targets should hold, as a value: the records of every zone and the resolver sets,
//! each with where it came from. The repository gives one (`desired::load`), every other
//! source (Kubernetes, Tailscale, a primary) gives one, and `merge` joins them. It travels
//! as JSON both ways, so a replica can receive the primary's over HTTP.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::desired::format::ResolverScope;
use crate::model::{Name, Provenance, RData, RecordSet, RecordType, Wanted};

/// One wanted record entry: its set per view, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "wire::Record", try_from = "wire::Record")]
pub struct WantedRecord {
    /// The set for every view without its own; `None` when the entry only has per-view values.
    pub default: Option<RecordSet>,
    /// Sets for named views; one with no values means "no record in that view".
    pub per_view: Box<[(String, RecordSet)]>,
    pub internal: bool,
    pub allow_public: bool,
    pub provenance: Provenance,
}

impl WantedRecord {
    /// A record every view sees the same, as a discovering source makes it.
    pub fn everywhere(set: RecordSet, provenance: Provenance) -> WantedRecord {
        WantedRecord { default: Some(set), per_view: Box::new([]), internal: false, allow_public: false, provenance }
    }

    /// The set `view` sees, if it sees one.
    pub fn set_in(&self, view: &str) -> Option<&RecordSet> {
        self.per_view
            .iter()
            .find(|(v, _)| v == view)
            .map(|(_, s)| s)
            .or(self.default.as_ref())
            .filter(|s| !s.values.is_empty())
    }

    /// Any of its sets: they all share name and type.
    fn any_set(&self) -> Option<&RecordSet> {
        self.default.as_ref().or(self.per_view.first().map(|(_, s)| s))
    }

    pub fn name(&self) -> Option<&Name> {
        self.any_set().map(|s| &s.name)
    }

    pub fn rtype(&self) -> Option<RecordType> {
        self.any_set().map(|s| s.rtype)
    }

    pub fn all_values(&self) -> impl Iterator<Item = &RData> {
        self.default.iter().chain(self.per_view.iter().map(|(_, s)| s)).flat_map(|s| &s.values)
    }
}

/// A member of a resolver set: an address, a name to show, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverSet {
    pub name: String,
    pub scope: ResolverScope,
    pub domains: Vec<Name>,
    pub members: Vec<Member>,
    /// Where the set is declared.
    pub provenance: Provenance,
    /// How the sources find more members (the set's `discover`).
    #[serde(default, skip_serializing_if = "MemberDiscovery::is_empty")]
    pub discover: MemberDiscovery,
}

/// Which Services and devices join a resolver set beside the members written in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberDiscovery {
    /// Services whose labels match all of these (none: no Service by label).
    pub service_selector: BTreeMap<String, String>,
    /// Services whose tag annotation lists any of these.
    pub service_tags: Vec<String>,
    /// Tailnet devices carrying any of these tags.
    pub tailscale_tags: Vec<String>,
}

impl MemberDiscovery {
    pub fn is_empty(&self) -> bool {
        self.service_selector.is_empty() && self.service_tags.is_empty() && self.tailscale_tags.is_empty()
    }

    /// Whether Services can join the set at all.
    pub fn finds_services(&self) -> bool {
        !self.service_selector.is_empty() || !self.service_tags.is_empty()
    }
}

/// Records per zone, in the order their sources gave them, and the resolver sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedState {
    pub zones: BTreeMap<Name, Vec<WantedRecord>>,
    #[serde(default)]
    pub resolver_sets: Vec<ResolverSet>,
}

/// A record a later source also wanted, left out because an earlier one holds its name and
/// type (or, for a CNAME, its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub zone: Name,
    pub name: Name,
    pub rtype: RecordType,
    pub kept: Provenance,
    pub dropped: Provenance,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} from {} is left out: {} already wants that name",
            self.name, self.rtype, self.dropped, self.kept
        )
    }
}

impl WantedState {
    /// The record sets of `zone` as the audience `view` should see them.
    pub fn wanted(&self, zone: &Name, view: &str) -> Vec<Wanted<'_>> {
        let Some(records) = self.zones.get(zone) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(records.len());
        out.extend(records.iter().filter_map(|r| {
            Some(Wanted {
                set: std::borrow::Cow::Borrowed(r.set_in(view)?),
                provenance: &r.provenance,
                internal: r.internal && !r.allow_public,
            })
        }));
        out
    }

    pub fn record_count(&self) -> usize {
        self.zones.values().map(Vec::len).sum()
    }

    /// Joins the snapshots of several sources, the first given first. The rule, the same
    /// whatever order the records came in within a source: an earlier source's record keeps
    /// its name and type, and a later source's record with the same name and type, or a CNAME
    /// beside other data at its name (RFC 1034 §3.6.2), is left out and reported. So the
    /// repository, registered first, always wins over discovery: what a reviewer approved is
    /// what is served. Resolver sets are joined by name: the first declaration gives scope
    /// and domains, and members are the union by address.
    pub fn merge(parts: impl IntoIterator<Item = WantedState>) -> (WantedState, Vec<Conflict>) {
        let mut parts = parts.into_iter();
        let mut merged = parts.next().unwrap_or_default();
        let mut conflicts = Vec::new();
        for part in parts {
            for (zone, records) in part.zones {
                let held = merged.zones.entry(zone.clone()).or_default();
                let before = Claims::of(held);
                // What this part has taken so far: its own first record at a place wins too.
                let mut taken = Claims::default();
                let mut keep = Vec::with_capacity(records.len());
                for r in &records {
                    match before.blocker(r).or_else(|| taken.blocker(r)) {
                        Some(kept) => {
                            conflicts.push(Conflict {
                                zone: zone.clone(),
                                name: r.name().cloned().unwrap_or_else(|| zone.clone()),
                                rtype: r.rtype().unwrap_or(RecordType::A),
                                kept: kept.clone(),
                                dropped: r.provenance.clone(),
                            });
                            keep.push(false);
                        }
                        None => {
                            taken.add(r);
                            keep.push(true);
                        }
                    }
                }
                held.extend(records.into_iter().zip(keep).filter_map(|(r, k)| k.then_some(r)));
            }
            for set in part.resolver_sets {
                match merged.resolver_sets.iter_mut().find(|s| s.name == set.name) {
                    Some(s) => {
                        for m in set.members {
                            if !s.members.iter().any(|held| held.address == m.address) {
                                s.members.push(m);
                            }
                        }
                    }
                    None => merged.resolver_sets.push(set),
                }
            }
        }
        (merged, conflicts)
    }
}

/// Which names and types a list of records holds, to find what a new one would clash with.
#[derive(Default)]
struct Claims<'a> {
    sets: HashMap<(&'a Name, RecordType), &'a Provenance>,
    cname: HashMap<&'a Name, &'a Provenance>,
    other: HashMap<&'a Name, &'a Provenance>,
}

impl<'a> Claims<'a> {
    fn of(records: &'a [WantedRecord]) -> Claims<'a> {
        let mut c = Claims::default();
        for r in records {
            c.add(r);
        }
        c
    }

    fn add(&mut self, r: &'a WantedRecord) {
        let (Some(name), Some(rtype)) = (r.name(), r.rtype()) else { return };
        self.sets.entry((name, rtype)).or_insert(&r.provenance);
        let side = if rtype == RecordType::Cname { &mut self.cname } else { &mut self.other };
        side.entry(name).or_insert(&r.provenance);
    }

    /// What already holds the place `r` wants, if anything.
    fn blocker(&self, r: &WantedRecord) -> Option<&'a Provenance> {
        let (name, rtype) = (r.name()?, r.rtype()?);
        if let Some(p) = self.sets.get(&(name, rtype)) {
            return Some(p);
        }
        let other_side = if rtype == RecordType::Cname { &self.other } else { &self.cname };
        other_side.get(name).copied()
    }
}

/// The JSON form. A value is its presentation form, except TXT: its text as one string, or
/// the list of its character-strings when it is kept as several (their boundaries are data).
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        One(String),
        Strings(Vec<String>),
    }

    #[derive(Serialize, Deserialize)]
    pub struct Set {
        ttl: u32,
        values: Vec<Value>,
    }

    fn value(v: &RData) -> Value {
        match v {
            RData::Txt(text) => Value::One(text.to_string()),
            RData::TxtStrings(strings) => Value::Strings(strings.iter().map(|s| s.to_string()).collect()),
            other => Value::One(other.to_presentation()),
        }
    }

    fn parse_value(rtype: RecordType, v: &Value) -> Result<RData, crate::model::RDataError> {
        match (rtype, v) {
            (RecordType::Txt, Value::One(text)) => RData::parse(rtype, text),
            (RecordType::Txt, Value::Strings(strings)) => RData::txt_strings(strings),
            (_, Value::One(text)) => crate::model::parse_presentation(rtype, text),
            (_, Value::Strings(_)) => Err(crate::model::RDataError::Shape(String::new(), "one string")),
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Record {
        name: Name,
        #[serde(rename = "type")]
        rtype: RecordType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<Set>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        views: Vec<(String, Set)>,
        #[serde(default)]
        internal: bool,
        #[serde(default)]
        allow_public: bool,
        provenance: Provenance,
    }

    fn set(s: &RecordSet) -> Set {
        Set { ttl: s.ttl, values: s.values.iter().map(value).collect() }
    }

    impl From<WantedRecord> for Record {
        fn from(r: WantedRecord) -> Record {
            let any = r.default.as_ref().or(r.per_view.first().map(|(_, s)| s));
            Record {
                name: any.map_or_else(Name::root, |s| s.name.clone()),
                rtype: any.map_or(RecordType::A, |s| s.rtype),
                default: r.default.as_ref().map(set),
                views: r.per_view.iter().map(|(v, s)| (v.clone(), set(s))).collect(),
                internal: r.internal,
                allow_public: r.allow_public,
                provenance: r.provenance,
            }
        }
    }

    impl TryFrom<Record> for WantedRecord {
        type Error = String;
        fn try_from(r: Record) -> Result<WantedRecord, String> {
            if r.default.is_none() && r.views.is_empty() {
                return Err(format!("record {} {} has neither a default set nor a view's", r.name, r.rtype));
            }
            let parse = |s: Set| -> Result<RecordSet, String> {
                let values = s
                    .values
                    .iter()
                    .map(|v| {
                        parse_value(r.rtype, v).map_err(|e| format!("record {} {}: a value: {e}", r.name, r.rtype))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RecordSet::new(r.name.clone(), r.rtype, s.ttl, values))
            };
            let default = r.default.map(parse).transpose()?;
            let per_view = r.views.into_iter().map(|(v, s)| Ok((v, parse(s)?))).collect::<Result<Vec<_>, String>>()?;
            Ok(WantedRecord {
                default,
                per_view: per_view.into(),
                internal: r.internal,
                allow_public: r.allow_public,
                provenance: r.provenance,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn rec(n: &str, rtype: RecordType, value: &str, provenance: Provenance) -> WantedRecord {
        let set = RecordSet::new(name(n), rtype, 300, vec![RData::parse(rtype, value).unwrap()]);
        WantedRecord::everywhere(set, provenance)
    }

    fn file(line: u32) -> Provenance {
        Provenance::File { path: "records/home.example.yaml".into(), line }
    }

    fn ingress(n: &str) -> Provenance {
        Provenance::Kubernetes { resource_kind: "Ingress".into(), namespace: "apps".into(), name: n.into() }
    }

    fn state(records: Vec<WantedRecord>) -> WantedState {
        WantedState { zones: BTreeMap::from([(name("home.example"), records)]), resolver_sets: Vec::new() }
    }

    #[test]
    fn the_repository_wins_a_name_and_type_and_the_loser_is_reported() {
        let git = state(vec![rec("a.home.example", RecordType::A, "192.0.2.1", file(3))]);
        let k8s = state(vec![
            rec("a.home.example", RecordType::A, "198.51.100.7", ingress("a")),
            rec("b.home.example", RecordType::A, "198.51.100.8", ingress("b")),
        ]);
        let (merged, conflicts) = WantedState::merge([git, k8s]);
        let zone = &merged.zones[&name("home.example")];
        assert_eq!(zone.len(), 2);
        assert_eq!(zone[0].provenance, file(3));
        assert_eq!(zone[1].provenance, ingress("b"));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].kept, file(3));
        assert_eq!(conflicts[0].dropped, ingress("a"));
        assert!(conflicts[0].to_string().contains("Ingress/apps/a"), "{}", conflicts[0]);
    }

    #[test]
    fn a_cname_never_lands_beside_other_data() {
        let git = state(vec![rec("a.home.example", RecordType::Txt, "hello", file(1))]);
        let k8s = state(vec![
            rec("a.home.example", RecordType::Cname, "lb.example.", ingress("a")),
            rec("c.home.example", RecordType::Cname, "lb.example.", ingress("c1")),
            rec("c.home.example", RecordType::A, "192.0.2.9", ingress("c2")),
        ]);
        let (merged, conflicts) = WantedState::merge([git, k8s]);
        let kept: Vec<_> = merged.zones[&name("home.example")].iter().map(|r| r.provenance.clone()).collect();
        assert_eq!(kept, vec![file(1), ingress("c1")]);
        assert_eq!(conflicts.iter().map(|c| c.dropped.clone()).collect::<Vec<_>>(), vec![ingress("a"), ingress("c2")]);
    }

    #[test]
    fn a_zone_only_a_later_source_names_is_kept_whole() {
        let k8s = WantedState {
            zones: BTreeMap::from([(
                name("apps.example"),
                vec![rec("x.apps.example", RecordType::A, "192.0.2.5", ingress("x"))],
            )]),
            resolver_sets: Vec::new(),
        };
        let (merged, conflicts) = WantedState::merge([state(Vec::new()), k8s.clone()]);
        assert!(conflicts.is_empty());
        assert_eq!(merged.zones[&name("apps.example")], k8s.zones[&name("apps.example")]);
    }

    #[test]
    fn resolver_members_join_by_address() {
        let member = |ip: &str, p: Provenance| Member { address: ip.parse().unwrap(), name: None, provenance: p };
        let set = |members| ResolverSet {
            name: "home".into(),
            scope: ResolverScope::Global,
            domains: Vec::new(),
            members,
            provenance: file(1),
            discover: MemberDiscovery::default(),
        };
        let git = WantedState { zones: BTreeMap::new(), resolver_sets: vec![set(vec![member("100.64.0.1", file(5))])] };
        let k8s = WantedState {
            zones: BTreeMap::new(),
            resolver_sets: vec![set(vec![member("100.64.0.1", ingress("dup")), member("100.64.0.2", ingress("dns"))])],
        };
        let (merged, _) = WantedState::merge([git, k8s]);
        let members = &merged.resolver_sets[0].members;
        assert_eq!(members.iter().map(|m| m.address.to_string()).collect::<Vec<_>>(), ["100.64.0.1", "100.64.0.2"]);
        assert_eq!(members[0].provenance, file(5));
    }

    #[test]
    fn json_round_trips_every_value_form() {
        let txt_strings = RData::txt_strings(&["a", "b c"]).unwrap();
        assert!(matches!(txt_strings, RData::TxtStrings(_)));
        let mut views = rec("v.home.example", RecordType::A, "192.0.2.1", file(9));
        views.per_view = Box::new([(
            "internal".to_string(),
            RecordSet::new(
                name("v.home.example"),
                RecordType::A,
                60,
                vec![RData::parse(RecordType::A, "10.0.0.1").unwrap()],
            ),
        )]);
        views.internal = true;
        let wanted = state(vec![
            WantedRecord::everywhere(
                RecordSet::new(name("t.home.example"), RecordType::Txt, 300, vec![txt_strings]),
                ingress("t"),
            ),
            rec("m.home.example", RecordType::MX, "10 mail.home.example.", file(2)),
            rec("c.home.example", RecordType::Caa, "0 issue \"letsencrypt.org\"", file(4)),
            rec(
                "s.home.example",
                RecordType::Txt,
                "v=spf1 -all \"quoted\"",
                Provenance::Device { name: "nas".into(), id: "n123".into() },
            ),
            views,
        ]);
        let json = serde_json::to_string(&wanted).unwrap();
        let back: WantedState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wanted, "{json}");
    }

    #[test]
    fn json_with_a_bad_value_is_refused_naming_the_record() {
        let json = r#"{"zones":{"home.example":[{"name":"a.home.example","type":"A","default":{"ttl":300,"values":["not-an-ip"]},"provenance":{"kind":"file","path":"x","line":1}}]}}"#;
        let err = serde_json::from_str::<WantedState>(json).unwrap_err().to_string();
        assert!(err.contains("a.home.example A") && err.contains("not-an-ip"), "{err}");
    }
}
