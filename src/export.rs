//! Writing record sets as our records-file YAML: for `export` (onboarding, backup) and for
//! anything else that must produce a file `load` reads back unchanged.

use crate::desired::format::API_VERSION;
use crate::model::{Name, RData, RecordSet, txt_strings};

/// A YAML scalar in double quotes; JSON string syntax is valid YAML and escapes everything.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A records file for `zone` holding `sets`, one flow mapping per line (compact to review,
/// fast to parse). `schema_path` is the modeline's path to `records.json`. `ttls` says the
/// target holds TTLs (a hosts file does not): then every TTL is written, 0 included, so that
/// a plan of the export against the target is empty.
pub fn records_yaml(zone: &Name, sets: &[RecordSet], schema_path: &str, ttls: bool) -> String {
    let mut out = String::with_capacity(128 + sets.len() * 64);
    out.push_str(&format!("# yaml-language-server: $schema={schema_path}\n"));
    out.push_str(&format!("apiVersion: {API_VERSION}\nkind: Records\nzone: {}\nrecords:\n", q(zone.as_str())));
    let mut sets: Vec<&RecordSet> = sets.iter().collect();
    sets.sort();
    for s in sets {
        let name = s.name.relative(zone);
        let ttl = if ttls { format!(", ttl: {}", s.ttl) } else { String::new() };
        // A TXT set holding a value with its own character-strings is written whole in the
        // `strings` form, every value as the strings it goes out as.
        if s.values.iter().any(|v| matches!(v, RData::TxtStrings(_))) {
            let lists: Vec<String> = s
                .values
                .iter()
                .map(|v| {
                    let strings: Vec<String> = match v {
                        RData::TxtStrings(strings) => strings.iter().map(|p| q(p)).collect(),
                        RData::Txt(t) => txt_strings(t).map(q).collect(),
                        other => vec![q(&other.to_value())],
                    };
                    format!("[{}]", strings.join(", "))
                })
                .collect();
            out.push_str(&format!(
                "  - {{name: {}, type: {}{ttl}, strings: [{}]}}\n",
                q(&name),
                s.rtype,
                lists.join(", ")
            ));
            continue;
        }
        let vals: Vec<String> = s.values.iter().map(|v| q(&v.to_value())).collect();
        if vals.len() == 1 {
            out.push_str(&format!("  - {{name: {}, type: {}{ttl}, value: {}}}\n", q(&name), s.rtype, vals[0]));
        } else {
            out.push_str(&format!(
                "  - {{name: {}, type: {}{ttl}, values: [{}]}}\n",
                q(&name),
                s.rtype,
                vals.join(", ")
            ));
        }
    }
    out
}

/// The observed state of one target and zone as YAML: every record set with who owns it,
/// whether it matches what git wants, and where the wanted one was written.
pub fn observed_yaml(z: &crate::reconcile::ObservedZone<'_>, owner: &str) -> String {
    use crate::model::Ownership;
    let mut out = String::with_capacity(256 + z.sets.len() * 96);
    out.push_str(&format!(
        "# What target {} ({}) held for zone {}, observed by zonekeeper (owner {owner}).\n",
        z.target, z.kind, z.zone
    ));
    out.push_str(&format!(
        "apiVersion: {API_VERSION}\nkind: Observed\ntarget: {}\nview: {}\nzone: {}\nrecords:\n",
        q(&z.target),
        q(&z.view),
        q(z.zone.as_str())
    ));
    let mut drift = 0;
    for (obs, wanted) in &z.sets {
        let s = &obs.set;
        let vals: Vec<String> = s.values.iter().map(|v| q(&v.to_value())).collect();
        let owner = match &obs.ownership {
            Ownership::Ours => "ours".to_string(),
            Ownership::Unowned => "unowned".to_string(),
            Ownership::Other(o) => format!("owner {o}"),
            Ownership::Protected(_) => "protected".to_string(),
        };
        let state = match wanted {
            Some(w) if *w.set == *s => "in_sync",
            Some(_) => "differs",
            None if obs.ownership == Ownership::Ours => "not_wanted",
            None => "unmanaged",
        };
        if state != "in_sync" && state != "unmanaged" {
            drift += 1;
        }
        let source = wanted.as_ref().map(|w| format!(", source: {}", q(&w.provenance.to_string()))).unwrap_or_default();
        out.push_str(&format!(
            "  - {{name: {}, type: {}, ttl: {}, values: [{}], owner: {}, state: {state}{source}}}\n",
            q(&s.name.relative(&z.zone)),
            s.rtype,
            s.ttl,
            vals.join(", "),
            q(&owner)
        ));
    }
    out.push_str(&format!("drift: {drift}\n"));
    out
}
