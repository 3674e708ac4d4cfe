//! Records whose object went away, kept until their source's grace period ends: a Service
//! recreated by a rollout, or an Ingress moved between namespaces, must not flap its name.
//! The orphan-since time goes into the state document, so a restart does not reset it.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Name, RecordType};
use crate::wanted::{WantedRecord, WantedState};

/// A record its source no longer gives, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Orphan {
    pub zone: Name,
    /// RFC 3339, UTC.
    pub since: String,
    pub record: WantedRecord,
}

type Key = (Name, Option<Name>, Option<RecordType>);

fn key(zone: &Name, r: &WantedRecord) -> Key {
    (zone.clone(), r.name().cloned(), r.rtype())
}

/// One source's orphans, and what it gave last.
#[derive(Debug, Default)]
pub struct Orphans {
    grace: Duration,
    seen: Option<WantedState>,
    held: Vec<Orphan>,
}

impl Orphans {
    /// With the orphans remembered from an earlier run.
    pub fn new(grace: Duration, held: Vec<Orphan>) -> Orphans {
        Orphans { grace, seen: None, held }
    }

    pub fn held(&self) -> &[Orphan] {
        &self.held
    }

    /// `fresh` with the orphans still in their grace period added; records that vanished
    /// since the last read become orphans from `now`, and those whose grace is over go.
    pub fn keep(&mut self, fresh: WantedState, now: jiff::Timestamp) -> WantedState {
        if self.grace.is_zero() {
            self.held.clear();
            return fresh;
        }
        let present: HashSet<Key> = fresh.zones.iter().flat_map(|(z, rs)| rs.iter().map(move |r| key(z, r))).collect();
        let mut held: Vec<Orphan> = std::mem::take(&mut self.held);
        held.retain(|o| !present.contains(&key(&o.zone, &o.record)));
        // To the millisecond: a time cut to the second would end a grace period up to a
        // second early.
        let since = now.round(jiff::Unit::Millisecond).unwrap_or(now).to_string();
        for (zone, records) in self.seen.take().map(|s| s.zones).into_iter().flatten() {
            for record in records {
                let k = key(&zone, &record);
                if !present.contains(&k) && !held.iter().any(|o| key(&o.zone, &o.record) == k) {
                    held.push(Orphan { zone: zone.clone(), since: since.clone(), record });
                }
            }
        }
        let grace = jiff::SignedDuration::try_from(self.grace).unwrap_or(jiff::SignedDuration::MAX);
        // A time that does not parse is over: the record goes rather than staying for ever.
        held.retain(|o| {
            o.since.parse::<jiff::Timestamp>().is_ok_and(|t| t.saturating_add(grace).is_ok_and(|end| end > now))
        });
        self.seen = Some(fresh.clone());
        let mut out = fresh;
        for o in &held {
            out.zones.entry(o.zone.clone()).or_default().push(o.record.clone());
        }
        self.held = held;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provenance, RData, RecordSet};

    fn state(names: &[&str]) -> WantedState {
        let zone = Name::parse("home.example").unwrap();
        let records = names
            .iter()
            .map(|n| {
                let set = RecordSet::new(
                    Name::parse(&format!("{n}.home.example")).unwrap(),
                    RecordType::A,
                    300,
                    vec![RData::parse(RecordType::A, "192.0.2.1").unwrap()],
                );
                let p = Provenance::Kubernetes {
                    resource_kind: "Ingress".into(),
                    namespace: "a".into(),
                    name: (*n).into(),
                };
                WantedRecord::everywhere(set, p)
            })
            .collect();
        WantedState { zones: [(zone, records)].into(), resolver_sets: Vec::new() }
    }

    fn names(s: &WantedState) -> Vec<String> {
        let mut n: Vec<String> = s.zones.values().flatten().filter_map(|r| r.name()).map(|n| n.to_string()).collect();
        n.sort();
        n
    }

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_vanished_record_stays_for_its_grace_period_then_goes() {
        let mut o = Orphans::new(Duration::from_secs(600), Vec::new());
        assert_eq!(names(&o.keep(state(&["a", "b"]), at(0))), ["a.home.example", "b.home.example"]);
        assert_eq!(names(&o.keep(state(&["a"]), at(10))), ["a.home.example", "b.home.example"], "b is an orphan");
        assert_eq!(o.held().len(), 1);
        assert_eq!(names(&o.keep(state(&["a"]), at(609))), ["a.home.example", "b.home.example"]);
        assert_eq!(names(&o.keep(state(&["a"]), at(610))), ["a.home.example"], "its grace is over");
        assert!(o.held().is_empty());
    }

    #[test]
    fn a_record_that_comes_back_is_no_orphan_and_remembered_ones_keep_their_time() {
        let mut o = Orphans::new(Duration::from_secs(600), Vec::new());
        o.keep(state(&["a", "b"]), at(0));
        o.keep(state(&["a"]), at(10));
        assert_eq!(names(&o.keep(state(&["a", "b"]), at(20))), ["a.home.example", "b.home.example"]);
        assert!(o.held().is_empty(), "b came back");

        // A restart: the remembered orphan keeps its time, and goes when it would have.
        o.keep(state(&["a"]), at(30));
        let remembered = o.held().to_vec();
        let mut after_restart = Orphans::new(Duration::from_secs(600), remembered);
        assert_eq!(names(&after_restart.keep(state(&["a"]), at(600))), ["a.home.example", "b.home.example"]);
        assert_eq!(names(&after_restart.keep(state(&["a"]), at(630))), ["a.home.example"]);
    }

    #[test]
    fn with_no_grace_nothing_is_kept() {
        let mut o = Orphans::new(Duration::ZERO, Vec::new());
        o.keep(state(&["a", "b"]), at(0));
        assert_eq!(names(&o.keep(state(&["a"]), at(1))), ["a.home.example"]);
    }
}
