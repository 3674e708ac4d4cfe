//! Writing record sets as our records-file YAML: for `export` (onboarding, backup) and for
//! anything else that must produce a file `load` reads back unchanged.

use crate::desired::format::API_VERSION;
use crate::model::{Name, RecordSet};

/// A YAML scalar in double quotes; JSON string syntax is valid YAML and escapes everything.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A records file for `zone` holding `sets`, one flow mapping per line (compact to review,
/// fast to parse). `schema_path` is the modeline's path to `records.json`.
pub fn records_yaml(zone: &Name, sets: &[RecordSet], schema_path: &str) -> String {
    let mut out = String::with_capacity(128 + sets.len() * 64);
    out.push_str(&format!("# yaml-language-server: $schema={schema_path}\n"));
    out.push_str(&format!("apiVersion: {API_VERSION}\nkind: Records\nzone: {}\nrecords:\n", q(zone.as_str())));
    let mut sets: Vec<&RecordSet> = sets.iter().collect();
    sets.sort();
    for s in sets {
        let name = s.name.relative(zone);
        let vals: Vec<String> = s.values.iter().map(|v| q(&v.to_value())).collect();
        let ttl = if s.ttl > 0 { format!(", ttl: {}", s.ttl) } else { String::new() };
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
