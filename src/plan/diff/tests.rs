use std::net::Ipv4Addr;

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::RData;

fn zone() -> Name {
    Name::parse("home.example").unwrap()
}

fn target(public: bool) -> TargetRef {
    TargetRef { name: "t".into(), kind: "test".into(), view: "default".into(), public }
}

fn a(name: &str, ips: &[u8]) -> RecordSet {
    RecordSet::new(
        Name::parse(&format!("{name}.home.example")).unwrap(),
        RecordType::A,
        300,
        ips.iter().map(|i| RData::A(Ipv4Addr::new(192, 0, 2, *i))).collect(),
    )
}

fn want(set: RecordSet) -> Wanted<'static> {
    Wanted {
        set: std::borrow::Cow::Owned(set),
        provenance: Box::leak(Box::new(Provenance::File { path: "records/x.yaml".into(), line: 1 })),
        internal: false,
    }
}

fn ours(set: RecordSet) -> Observed {
    Observed { set, ownership: Ownership::Ours }
}

fn unowned(set: RecordSet) -> Observed {
    Observed { set, ownership: Ownership::Unowned }
}

const LOOSE: SafetyLimits = SafetyLimits { max_update_share: 1.0, max_delete_share: 1.0, min_owned: 0 };
const STRICT: SafetyLimits = SafetyLimits { max_update_share: 0.3, max_delete_share: 0.3, min_owned: 3 };

fn plan(w: &[Wanted<'_>], o: &[Observed], policy: Policy, limits: SafetyLimits, adopt: bool) -> TargetPlan {
    plan_target(target(false), &zone(), w, o, policy, limits, adopt)
}

#[test]
fn creates_updates_and_deletes_owned_sets() {
    let w = [want(a("new", &[1])), want(a("changed", &[2]))];
    let o = [ours(a("changed", &[3])), ours(a("gone", &[4]))];
    let p = plan(&w, &o, Policy::Sync, LOOSE, false);
    let ops: Vec<(Op, &str)> = p.changes.iter().map(|c| (c.op(), c.set().name.as_str())).collect();
    assert_eq!(
        ops,
        [(Op::Update, "changed.home.example"), (Op::Delete, "gone.home.example"), (Op::Create, "new.home.example")]
    );
}

#[test]
fn values_in_another_order_are_no_change() {
    let w = [want(a("x", &[1, 2]))];
    let o = [ours(a("x", &[2, 1]))];
    assert!(plan(&w, &o, Policy::Sync, LOOSE, false).changes.is_empty());
}

#[test]
fn unowned_records_are_reported_not_touched_unless_adopt() {
    let w = [want(a("x", &[1]))];
    let o = [unowned(a("x", &[9])), unowned(a("other", &[5]))];
    let p = plan(&w, &o, Policy::Sync, LOOSE, false);
    assert!(p.changes.is_empty());
    assert_eq!(p.drift, [Drift::Unowned { observed: a("x", &[9]), wanted: Some(a("x", &[1])) }]);
    assert_eq!(p.unowned_elsewhere, 1);
    let p = plan(&w, &o, Policy::Sync, LOOSE, true);
    assert!(matches!(&p.changes[..], [Change::Update { adopt: true, .. }]));
}

#[test]
fn another_owners_records_are_never_touched() {
    let w = [want(a("x", &[1]))];
    let o = [Observed { set: a("x", &[9]), ownership: Ownership::Other("blue".into()) }];
    let p = plan(&w, &o, Policy::Sync, LOOSE, true);
    assert!(p.changes.is_empty());
    assert!(matches!(&p.drift[..], [Drift::OtherOwner { owner, .. }] if owner == "blue"));
}

#[test]
fn protected_sets_are_never_touched_even_with_adopt() {
    let w = [want(a("x", &[1]))];
    let o = [Observed { set: a("x", &[9]), ownership: Ownership::Protected("disabled records".into()) }];
    let p = plan(&w, &o, Policy::Sync, LOOSE, true);
    assert!(p.changes.is_empty());
    assert!(matches!(&p.drift[..], [Drift::Protected { reason, .. }] if reason == "disabled records"));
}

#[test]
fn policies_hold_back_what_they_forbid() {
    let w = [want(a("new", &[1])), want(a("changed", &[2]))];
    let o = [ours(a("changed", &[3])), ours(a("gone", &[4]))];
    let p = plan(&w, &o, Policy::UpsertOnly, LOOSE, false);
    assert_eq!(p.changes.iter().map(|c| c.op()).collect::<Vec<_>>(), [Op::Update, Op::Create]);
    assert_eq!(p.held_back.iter().map(|c| c.op()).collect::<Vec<_>>(), [Op::Delete]);
    let p = plan(&w, &o, Policy::CreateOnly, LOOSE, false);
    assert_eq!(p.changes.iter().map(|c| c.op()).collect::<Vec<_>>(), [Op::Create]);
    assert_eq!(p.held_back.len(), 2);
}

#[test]
fn safety_limits_refuse_large_deletes_but_not_small_zones() {
    let o: Vec<Observed> = (0..10).map(|i| ours(a(&format!("h{i}"), &[i]))).collect();
    let w: Vec<Wanted<'static>> = o[..6].iter().map(|x| want(x.set.clone())).collect();
    let p = plan(&w, &o, Policy::Sync, STRICT, false);
    assert!(matches!(&p.refusals[..], [Refusal::Limit { op: Op::Delete, count: 4, owned: 10, .. }]));
    let w: Vec<Wanted<'static>> = o[..7].iter().map(|x| want(x.set.clone())).collect();
    assert!(plan(&w, &o, Policy::Sync, STRICT, false).refusals.is_empty(), "3 of 10 is at the limit, not over");
    // Below min_owned the limits do not apply.
    let p = plan(&[], &o[..2], Policy::Sync, STRICT, false);
    assert_eq!(p.changes.len(), 2);
    assert!(p.refusals.is_empty());
}

#[test]
fn changing_the_zones_own_ns_needs_force_but_creating_it_does_not() {
    let ns = |t: &str| RecordSet::new(zone(), RecordType::NS, 300, vec![RData::Ns(Name::parse(t).unwrap())]);
    let p = plan(&[want(ns("ns1.home.example."))], &[], Policy::Sync, LOOSE, false);
    assert!(p.refusals.is_empty());
    let p = plan(&[want(ns("ns2.home.example."))], &[ours(ns("ns1.home.example."))], Policy::Sync, LOOSE, false);
    assert_eq!(p.refusals, [Refusal::RootNs]);
    assert!(p.refusals[0].overridable());
}

#[test]
fn internal_names_never_reach_a_public_view() {
    let mut w = want(a("secret", &[1]));
    w.internal = true;
    let p = plan_target(target(true), &zone(), &[w.clone()], &[], Policy::Sync, LOOSE, false);
    assert!(
        matches!(&p.refusals[..], [Refusal::InternalOnPublic { names }] if names[0].as_str() == "secret.home.example")
    );
    assert!(!p.refusals[0].overridable());
    let p = plan_target(target(false), &zone(), &[w], &[], Policy::Sync, LOOSE, false);
    assert!(p.refusals.is_empty());
}

#[test]
fn a_cname_replacing_an_a_record_deletes_first() {
    let name = Name::parse("x.home.example").unwrap();
    let cname =
        RecordSet::new(name.clone(), RecordType::Cname, 300, vec![RData::Cname(Name::parse("y.example.").unwrap())]);
    let p = plan(&[want(cname)], &[ours(a("x", &[1]))], Policy::Sync, LOOSE, false);
    assert_eq!(p.changes.iter().map(|c| c.op()).collect::<Vec<_>>(), [Op::Delete, Op::Create]);
}

fn arb_set() -> impl Strategy<Value = RecordSet> {
    (0u8..12, prop::collection::vec(0u8..4, 1..3), prop::sample::select(vec![60u32, 300])).prop_map(|(n, ips, ttl)| {
        let mut s = a(&format!("h{n}"), &ips);
        s.ttl = ttl;
        s
    })
}

fn dedup_by_key(sets: Vec<RecordSet>) -> Vec<RecordSet> {
    let mut m = BTreeMap::new();
    for s in sets {
        m.insert((s.name.clone(), s.rtype), s);
    }
    m.into_values().collect()
}

proptest! {
    #[test]
    fn applying_a_sync_plan_yields_the_wanted_state(
        w in prop::collection::vec(arb_set(), 0..10),
        o in prop::collection::vec(arb_set(), 0..10),
    ) {
        let w: Vec<Wanted<'static>> = dedup_by_key(w).into_iter().map(want).collect();
        let o: Vec<Observed> = dedup_by_key(o).into_iter().map(ours).collect();
        let p = plan(&w, &o, Policy::Sync, LOOSE, false);
        let after = apply_changes(&o, &p.changes);
        let got: Vec<&RecordSet> = after.iter().map(|x| &x.set).collect();
        let mut expected: Vec<&RecordSet> = w.iter().map(|x| &*x.set).collect();
        expected.sort();
        prop_assert_eq!(got, expected);
        // planning again after the apply finds nothing to do
        prop_assert!(plan(&w, &after, Policy::Sync, LOOSE, false).changes.is_empty());
    }

    #[test]
    fn unowned_sets_are_never_updated_or_deleted(
        w in prop::collection::vec(arb_set(), 0..10),
        o in prop::collection::vec((arb_set(), any::<bool>()), 0..10),
    ) {
        let w: Vec<Wanted<'static>> = dedup_by_key(w).into_iter().map(want).collect();
        let mut seen = std::collections::BTreeSet::new();
        let o: Vec<Observed> = o.into_iter()
            .filter(|(s, _)| seen.insert((s.name.clone(), s.rtype)))
            .map(|(s, mine)| if mine { ours(s) } else { unowned(s) })
            .collect();
        let p = plan(&w, &o, Policy::Sync, LOOSE, false);
        for c in &p.changes {
            let touched = o.iter().find(|x| x.set.key() == c.set().key());
            if c.op() != Op::Create {
                prop_assert_eq!(touched.map(|x| &x.ownership), Some(&Ownership::Ours));
            } else {
                prop_assert!(touched.is_none());
            }
        }
    }

    #[test]
    fn limits_hold(
        w in prop::collection::vec(arb_set(), 0..12),
        o in prop::collection::vec(arb_set(), 0..12),
    ) {
        let w: Vec<Wanted<'static>> = dedup_by_key(w).into_iter().map(want).collect();
        let o: Vec<Observed> = dedup_by_key(o).into_iter().map(ours).collect();
        let p = plan(&w, &o, Policy::Sync, STRICT, false);
        let refused = !p.refusals.is_empty();
        let n = |op| p.changes.iter().filter(|c| c.op() == op).count() as f64;
        let over = o.len() >= 3 && (n(Op::Update) > 0.3 * o.len() as f64 || n(Op::Delete) > 0.3 * o.len() as f64);
        prop_assert_eq!(refused, over);
    }
}

#[test]
fn a_ttl_above_the_target_maximum_is_refused_for_creates_and_updates_only() {
    let prov = Provenance::File { path: "records/x.yaml".into(), line: 1 };
    let with_ttl = |name: &str, ttl: u32| RecordSet { ttl, ..a(name, &[1]) };
    let changes = vec![
        Change::Create { set: with_ttl("big", 700_000), provenance: prov.clone() },
        Change::Create { set: with_ttl("edge", 604_800), provenance: prov.clone() },
        Change::Update { from: with_ttl("up", 300), to: with_ttl("up", 900_000), provenance: prov, adopt: false },
        Change::Delete { set: with_ttl("gone", 900_000) },
    ];
    let Some(Refusal::TtlAboveMax { sets, max }) = check_ttl_max(&changes, Some(604_800)) else {
        panic!("expected a refusal");
    };
    assert_eq!(max, 604_800);
    let names: Vec<String> = sets.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["big.home.example", "up.home.example"]);
    assert!(!Refusal::TtlAboveMax { sets, max }.overridable());
    assert_eq!(check_ttl_max(&changes, None), None, "a target without a maximum refuses nothing");
}

#[test]
fn deleting_every_owned_set_is_refused_whatever_the_size_unless_on_purpose() {
    // one owned set, far below any share limit's minimum
    let o = [ours(a("only", &[1])), unowned(a("theirs", &[2]))];
    let p = plan(&[], &o, Policy::Sync, STRICT, false);
    assert_eq!(check_emptied(&p.changes, p.owned, false), Some(Refusal::EmptiesZone { owned: 1 }));
    assert!(Refusal::EmptiesZone { owned: 1 }.overridable());
    assert_eq!(check_emptied(&p.changes, p.owned, true), None, "an empty records file says so on purpose");
    // one set kept: not emptied
    let p = plan(&[want(a("only", &[1]))], &[ours(a("only", &[1])), ours(a("b", &[3]))], Policy::Sync, LOOSE, false);
    assert_eq!(check_emptied(&p.changes, p.owned, false), None);
    // the only set renamed: a delete and a create, the zone is not emptied
    let p = plan(&[want(a("renamed", &[1]))], &[ours(a("only", &[1]))], Policy::Sync, LOOSE, false);
    assert_eq!(p.changes.len(), 2);
    assert_eq!(check_emptied(&p.changes, p.owned, false), None);
    // nothing owned: nothing to empty
    assert_eq!(check_emptied(&[], 0, false), None);
}
