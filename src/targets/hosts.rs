//! A managed block in a hosts file, between BEGIN/END markers that name the owner id.
//! Every byte outside our block is kept as it was; the file is replaced atomically.
//!
//! A hosts file only maps names to addresses, so this target takes A and AAAA records, and
//! CNAMEs whose target resolves to addresses inside the same zone's wanted state (flattened).
//! Wildcards and other types cannot be expressed and are left out. There is no TTL.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use super::{Observation, Target, TargetError};
use crate::model::{Name, Observed, Ownership, RData, RecordSet, RecordType, Wanted};
use crate::plan::{NativeText, TargetPlan, merged};

pub struct HostsTarget {
    pub name: String,
    pub path: PathBuf,
    pub owner: String,
    /// Zones this block holds; their sections are kept in this order.
    pub zones: Vec<Name>,
}

/// Our block's place in the file: line indexes of BEGIN and END, and the zone sections.
struct Block {
    begin: usize,
    end: usize,
    sections: BTreeMap<Name, Vec<(IpAddr, Name)>>,
}

impl HostsTarget {
    fn begin_marker(&self) -> String {
        format!("# BEGIN zonekeeper owner={} (managed block: edits inside are overwritten)", self.owner)
    }
    fn end_marker(&self) -> String {
        format!("# END zonekeeper owner={}", self.owner)
    }
    fn is_begin(&self, line: &str) -> bool {
        line.trim_end().starts_with(&format!("# BEGIN zonekeeper owner={}", self.owner))
            && line.trim_end()[format!("# BEGIN zonekeeper owner={}", self.owner).len()..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ')
    }

    fn read(&self) -> Result<Option<String>, TargetError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TargetError::Read { path: self.path.display().to_string(), source }),
        }
    }

    fn find_block(&self, text: &str) -> Result<Option<Block>, TargetError> {
        let shown = self.path.display().to_string();
        let err = |line: usize, message: String| TargetError::Parse { path: shown.clone(), line: line + 1, message };
        let lines: Vec<&str> = text.split('\n').collect();
        let Some(begin) = lines.iter().position(|l| self.is_begin(l)) else {
            return Ok(None);
        };
        let end_marker = self.end_marker();
        let end = lines[begin..]
            .iter()
            .position(|l| l.trim_end() == end_marker)
            .map(|i| begin + i)
            .ok_or_else(|| err(begin, format!("managed block has no `{end_marker}` line; fix the file by hand")))?;
        let mut sections: BTreeMap<Name, Vec<(IpAddr, Name)>> = BTreeMap::new();
        let mut current: Option<Name> = None;
        for (i, line) in lines.iter().enumerate().take(end).skip(begin + 1) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(z) = line.strip_prefix("# zone ") {
                let z = Name::parse(z.trim()).map_err(|e| err(i, e.to_string()))?;
                sections.entry(z.clone()).or_default();
                current = Some(z);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let zone =
                current.clone().ok_or_else(|| err(i, "entry before any `# zone` line in the managed block".into()))?;
            let mut parts = line.split_whitespace();
            let ip: IpAddr = parts
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err(i, format!("`{line}` does not start with an IP address")))?;
            for n in parts {
                let name = Name::parse(n).map_err(|e| err(i, format!("`{n}`: {e}")))?;
                sections.entry(zone.clone()).or_default().push((ip, name));
            }
        }
        Ok(Some(Block { begin, end, sections }))
    }

    fn block_text(&self, sections: &BTreeMap<Name, Vec<(IpAddr, Name)>>) -> Option<String> {
        let mut ordered: Vec<&Name> = sections.iter().filter(|(_, e)| !e.is_empty()).map(|(z, _)| z).collect();
        ordered.sort_by_key(|z| (self.zones.iter().position(|x| x == *z).unwrap_or(usize::MAX), (*z).clone()));
        if ordered.is_empty() {
            return None;
        }
        let mut out = self.begin_marker();
        out.push('\n');
        for z in ordered {
            out.push_str(&format!("# zone {z}\n"));
            let mut entries = sections[z].clone();
            entries.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
            entries.dedup();
            for (ip, name) in entries {
                out.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        out.push_str(&self.end_marker());
        Some(out)
    }
}

fn sets_from_entries(entries: &[(IpAddr, Name)]) -> Vec<RecordSet> {
    let mut groups: BTreeMap<(Name, RecordType), Vec<RData>> = BTreeMap::new();
    for (ip, name) in entries {
        let (t, v) = match ip {
            IpAddr::V4(a) => (RecordType::A, RData::A(*a)),
            IpAddr::V6(a) => (RecordType::Aaaa, RData::Aaaa(*a)),
        };
        groups.entry((name.clone(), t)).or_default().push(v);
    }
    groups.into_iter().map(|((n, t), v)| RecordSet::new(n, t, 0, v)).collect()
}

impl Target for HostsTarget {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "hosts"
    }

    fn prepare<'a>(&self, _zone: &Name, wanted: Vec<Wanted<'a>>) -> Vec<Wanted<'a>> {
        let addrs: HashMap<(Name, RecordType), Vec<RData>> = wanted
            .iter()
            .filter(|w| matches!(w.set.rtype, RecordType::A | RecordType::Aaaa))
            .map(|w| ((w.set.name.clone(), w.set.rtype), w.set.values.clone()))
            .collect();
        let cnames: HashMap<&Name, &Name> = wanted
            .iter()
            .filter_map(|w| match w.set.values.first() {
                Some(RData::Cname(t)) => Some((&w.set.name, t)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for w in &wanted {
            if w.set.name.is_wildcard() {
                continue;
            }
            match w.set.rtype {
                RecordType::A | RecordType::Aaaa => {
                    let mut w = w.clone();
                    w.set.to_mut().ttl = 0;
                    out.push(w);
                }
                RecordType::Cname => {
                    // Follow the chain a few steps inside this zone's wanted state.
                    let mut target = &w.set.name;
                    for _ in 0..8 {
                        match cnames.get(target) {
                            Some(next) => target = next,
                            None => break,
                        }
                    }
                    for t in [RecordType::A, RecordType::Aaaa] {
                        if let Some(values) = addrs.get(&(target.clone(), t)) {
                            out.push(Wanted {
                                set: std::borrow::Cow::Owned(RecordSet::new(w.set.name.clone(), t, 0, values.clone())),
                                provenance: w.provenance,
                                internal: w.internal,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Sections of our block for zones this target no longer serves.
    fn orphan_zones(&self, served: &[Name]) -> Result<Vec<Name>, TargetError> {
        let Some(text) = self.read()? else { return Ok(Vec::new()) };
        Ok(self
            .find_block(&text)?
            .map(|b| b.sections.into_keys().filter(|z| !served.contains(z)).collect())
            .unwrap_or_default())
    }

    fn observe(&self, zone: &Name) -> Result<Observation, TargetError> {
        let Some(text) = self.read()? else {
            return Ok(Observation::default());
        };
        let sets = match self.find_block(&text)? {
            Some(b) => b.sections.get(zone).map(|e| sets_from_entries(e)).unwrap_or_default(),
            None => Vec::new(),
        };
        let sets = sets.into_iter().map(|set| Observed { set, ownership: Ownership::Ours }).collect();
        Ok(Observation { sets, text: Some(text), ttl_max: None, soa: None, serial_floor: None })
    }

    fn render(&self, zone: &Name, observation: Observation, plan: &TargetPlan) -> Option<NativeText> {
        let label = self.path.display().to_string();
        let before = observation.text.unwrap_or_default();
        if plan.changes.is_empty() {
            return Some(NativeText { label, before, after: None, rewrite: None });
        }
        let entries: Vec<(IpAddr, Name)> = merged(&observation.sets, &plan.changes)
            .into_iter()
            .flat_map(|set| {
                set.values.iter().filter_map(|v| match v {
                    RData::A(a) => Some((IpAddr::V4(*a), set.name.clone())),
                    RData::Aaaa(a) => Some((IpAddr::V6(*a), set.name.clone())),
                    _ => None,
                })
            })
            .collect();
        let after = self.splice(&before, zone, entries).ok()?;
        Some(NativeText { label, before, after: Some(after), rewrite: None })
    }

    /// The block holds several zones, each planned on its own; so apply re-reads the file and
    /// replaces only this zone's section, after checking that section is still as planned.
    /// The hosts file is replaced by a rename, so its folder is what stays put to lock.
    fn lock_place(&self) -> super::lock::LockPlace {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        super::lock::LockPlace::Dir(dir.to_path_buf())
    }

    fn apply(&self, zone: &Name, plan: &TargetPlan) -> Result<Vec<super::Outcome>, TargetError> {
        let all = || vec![super::Outcome::Applied; plan.changes.len()];
        if plan.changes.is_empty() {
            return Ok(Vec::new());
        }
        let Some(native) = &plan.native else {
            return Ok(super::not_rendered(plan));
        };
        let Some(after) = native.after.as_deref() else {
            // The plan leaves the block as it is.
            return Ok(all());
        };
        let section = |text: &str| -> Result<Vec<(IpAddr, Name)>, TargetError> {
            Ok(self.find_block(text)?.and_then(|mut b| b.sections.remove(zone)).unwrap_or_default())
        };
        let current = self.read()?.unwrap_or_default();
        if section(&current)? != section(&native.before)? {
            return Err(TargetError::Changed { path: self.path.display().to_string() });
        }
        let updated = self.splice(&current, zone, section(after)?)?;
        if updated != current {
            if let Some(why) = super::stop_reason() {
                return Ok(super::skipped(plan, why));
            }
            super::create_parent(&self.path)?;
            super::atomic::write_atomic(&self.path, updated.as_bytes())?;
        }
        Ok(all())
    }
}

impl HostsTarget {
    /// `text` with this zone's section of our block set to `entries`; every byte outside the
    /// block is kept.
    fn splice(&self, text: &str, zone: &Name, entries: Vec<(IpAddr, Name)>) -> Result<String, TargetError> {
        let block = self.find_block(text)?;
        let mut sections = block.as_ref().map(|b| b.sections.clone()).unwrap_or_default();
        sections.insert(zone.clone(), entries);
        let new_block = self.block_text(&sections);
        let lines: Vec<&str> = text.split('\n').collect();
        Ok(match (block, new_block) {
            (Some(b), Some(nb)) => {
                let mut out: Vec<&str> = lines[..b.begin].to_vec();
                out.push(&nb);
                out.extend_from_slice(&lines[b.end + 1..]);
                out.join("\n")
            }
            (Some(b), None) => {
                let mut out: Vec<&str> = lines[..b.begin].to_vec();
                out.extend_from_slice(&lines[b.end + 1..]);
                out.join("\n")
            }
            (None, Some(nb)) => {
                let mut out = text.to_string();
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&nb);
                out.push('\n');
                out
            }
            (None, None) => text.to_string(),
        })
    }
}
