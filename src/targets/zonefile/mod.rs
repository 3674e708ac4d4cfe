//! CoreDNS zone files: one RFC 1035 file per zone (`db.<zone>`, which CoreDNS's `file` and
//! `auto` plugins both read), written whole by zonekeeper with a header that names the owner.
//!
//! Decisions: the SOA serial is YYYYMMDDnn and rises only when the content changes (CoreDNS
//! reloads only on a new serial); rendering is deterministic (sorted, one record per line);
//! a file without our header is refused unless the target sets `adopt`, and one whose header
//! names another owner is always refused. Files are read with NLnet Labs' `domain` scanner
//! (`read.rs`): whatever BIND reads, or a refusal with the file and line of what we could not
//! write back unchanged. The file's SOA is compared with ours and planned as a setting
//! change; the last serial of each zone is remembered beside the files.

use std::fmt::Write;
use std::path::PathBuf;

mod read;

pub use read::{ParsedZone, Soa, parse_zone};

use super::{Observation, Target, TargetError, write_native};
use crate::desired::format::SoaDecl;
use crate::model::{Name, Observed, Ownership, RData, RecordSet, RecordType};
use crate::plan::{NativeText, SettingChange, TargetPlan, merged};

pub struct ZoneFileTarget {
    pub name: String,
    pub directory: PathBuf,
    pub owner: String,
    pub adopt: bool,
    pub soa: SoaDecl,
}

const HEADER: &str = "; zonekeeper";

impl ZoneFileTarget {
    pub fn path(&self, zone: &Name) -> PathBuf {
        self.directory.join(format!("db.{zone}"))
    }

    /// The Corefile stanza that serves these zones from this directory.
    pub fn corefile(&self, zones: &[Name]) -> String {
        let mut out = String::new();
        for z in zones {
            out.push_str(&format!(
                "{z}:53 {{\n    file {} {z} {{\n        reload 30s\n    }}\n    errors\n    log\n}}\n",
                self.path(z).display()
            ));
        }
        out
    }
}

impl Target for ZoneFileTarget {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "zonefile"
    }
    fn adopt(&self) -> bool {
        self.adopt
    }

    /// `db.<zone>` files in the directory that carry our header, for zones we no longer serve.
    fn orphan_zones(&self, served: &[Name]) -> Result<Vec<Name>, TargetError> {
        let entries = match std::fs::read_dir(&self.directory) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(TargetError::Read { path: self.directory.display().to_string(), source }),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().to_string();
            let Some(zone) = file.strip_prefix("db.").and_then(|z| Name::parse(z).ok()) else { continue };
            if served.contains(&zone) {
                continue;
            }
            // Only the first line is needed to know whose it is.
            let head = std::fs::read_to_string(entry.path()).ok().and_then(|t| t.lines().next().map(str::to_string));
            if head.as_deref().and_then(header_owner) == Some(self.owner.as_str())
                && head.is_some_and(|h| h.contains(&format!("zone={zone}")))
            {
                out.push(zone);
            }
        }
        out.sort();
        Ok(out)
    }

    fn observe(&self, zone: &Name) -> Result<Observation, TargetError> {
        let path = self.path(zone);
        // Read first: a zone whose file was deleted is the case the memory is for.
        let serial_floor = self.serials()?.get(zone.as_str()).copied();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Observation { serial_floor, ..Observation::default() });
            }
            Err(source) => return Err(TargetError::Read { path: path.display().to_string(), source }),
        };
        let shown = path.display().to_string();
        match header_owner(&text) {
            Some(owner) if owner == self.owner => {}
            Some(owner) => {
                return Err(TargetError::Refused {
                    path: shown,
                    message: format!(
                        "this zone file belongs to zonekeeper owner `{owner}`, not `{}`; it is left alone",
                        self.owner
                    ),
                });
            }
            None if self.adopt => {}
            None => {
                return Err(TargetError::Refused {
                    path: shown,
                    message:
                        "exists but was not written by zonekeeper; set `adopt: true` on the target to take it over"
                            .into(),
                });
            }
        }
        let parsed = parse_zone(&text, zone, &shown, Some(&self.directory))?;
        // The file is written whole, so everything in it is ours once we own (or adopt) it.
        let sets = parsed.sets.into_iter().map(|set| Observed { set, ownership: Ownership::Ours }).collect();
        Ok(Observation { sets, text: Some(text), ttl_max: None, soa: parsed.soa, serial_floor })
    }

    /// The file's SOA against the one we would write: a `soa` change in the settings, or an
    /// adopted file's own timers and names, is an update the plan shows.
    fn setting_changes(&self, zone: &Name, observation: &Observation, plan: &TargetPlan) -> Vec<SettingChange> {
        let Some(old) = &observation.soa else { return Vec::new() };
        let deletes = plan.changes.iter().filter(|c| c.op() == crate::plan::Op::Delete).count();
        if deletes == plan.changes.len() && deletes == observation.sets.len() {
            return Vec::new(); // nothing is left: the file goes
        }
        // Only the apex NS after the plan matters to the SOA we write (its MNAME default);
        // finding it is cheaper than merging every set (100,000 of them in a large zone).
        let is_apex_ns = |s: &RecordSet| s.name == *zone && s.rtype == RecordType::NS;
        let apex_ns = match plan.changes.iter().find(|c| is_apex_ns(c.set())) {
            Some(c) if c.op() == crate::plan::Op::Delete => None,
            Some(c) => Some(c.set()),
            None => observation.sets.iter().map(|o| &o.set).find(|s| is_apex_ns(s)),
        };
        let (primary, admin) = soa_names(zone, &self.soa, &apex_ns.into_iter().collect::<Vec<_>>());
        let d = &self.soa;
        let to = soa_text(&primary, &admin, [d.refresh, d.retry, d.expire, d.minimum], d.minimum);
        let from = soa_text(
            &old.primary.fqdn(),
            &old.admin.fqdn(),
            [old.refresh, old.retry, old.expire, old.minimum],
            old.ttl,
        );
        if from == to {
            return Vec::new();
        }
        vec![SettingChange {
            name: zone.clone(),
            what: "SOA",
            from,
            to,
            source: format!("zonekeeper.yaml: soa of target {}", self.name),
        }]
    }

    fn render(&self, zone: &Name, observation: Observation, plan: &TargetPlan) -> Option<NativeText> {
        let label = self.path(zone).display().to_string();
        let after = plan.has_changes().then(|| {
            // The higher of the file's serial and the last one we wrote here: a file deleted
            // and made again must not start below what secondaries already hold.
            let old_serial = observation.soa.as_ref().map(|s| s.serial).max(observation.serial_floor);
            let sets = merged(&observation.sets, &plan.changes);
            // Nothing left (an orphaned zone): the file goes; an empty text means removal.
            if sets.is_empty() {
                return String::new();
            }
            render_zone(zone, &self.owner, &self.soa, next_serial(old_serial, today()), &sets)
        });
        let before = observation.text.unwrap_or_default();
        // A file without our header is adopted: written once in our form, every line new.
        let rewrite = (after.as_ref().is_some_and(|a| !a.is_empty()) && !before.is_empty() && header_owner(&before).is_none())
            .then(|| {
                format!(
                    "written by another tool or by hand: taken over and rewritten whole in zonekeeper's form ({} lines before, {} after); the record and SOA changes above are every change a client sees",
                    before.lines().count(),
                    after.as_deref().map(|a| a.lines().count()).unwrap_or(0)
                )
            });
        Some(NativeText { label, before, after, rewrite })
    }

    fn lock_place(&self) -> super::lock::LockPlace {
        super::lock::LockPlace::Dir(self.directory.clone())
    }

    fn apply(&self, zone: &Name, plan: &TargetPlan) -> Result<Vec<super::Outcome>, TargetError> {
        let outcomes = write_native(&self.path(zone), plan)?;
        // Remember the serial now served (or, for a file removed, the one it had) for the day
        // the zone comes back.
        if let Some(native) = &plan.native
            && let Some(after) = &native.after
            && let Some(serial) = our_serial(after).or_else(|| our_serial(&native.before))
        {
            // The zone is written: a failure to remember its serial must not report the
            // changes as failed. It is said, and the next write remembers again.
            if let Err(e) = self.remember_serial(zone, serial) {
                tracing::warn!(target_name = %self.name, %zone, error = %e, "could not remember the zone's serial in {SERIALS}");
            }
        }
        Ok(outcomes)
    }
}

/// Where the zone-file target keeps the last serial it wrote for each zone: one line
/// `ZONE SERIAL` per zone. Not `db.*`, which CoreDNS's `auto` plugin would load as a zone.
const SERIALS: &str = ".zonekeeper-serials";

impl ZoneFileTarget {
    /// The last serial written for each zone, from `SERIALS`. A file that exists but cannot
    /// be read, or holds a line that is not `ZONE SERIAL`, is an error: read as "nothing
    /// remembered", a serial could go down.
    fn serials(&self) -> Result<std::collections::BTreeMap<String, u32>, TargetError> {
        let path = self.directory.join(SERIALS);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(source) => return Err(TargetError::Read { path: path.display().to_string(), source }),
        };
        let mut out = std::collections::BTreeMap::new();
        for (i, l) in text.lines().enumerate() {
            match l.split_once(' ').and_then(|(z, n)| Some((Name::parse(z).ok()?, n.parse::<u32>().ok()?))) {
                Some((zone, serial)) => out.insert(zone.to_string(), serial),
                None => {
                    return Err(TargetError::Parse {
                        path: path.display().to_string(),
                        line: i + 1,
                        message: "not a `ZONE SERIAL` line; fix or delete the line (zonekeeper keeps the last serial of each zone here)".into(),
                    });
                }
            };
        }
        Ok(out)
    }

    /// Records `serial` for `zone`, atomically, under the target's lock (held by apply).
    fn remember_serial(&self, zone: &Name, serial: u32) -> Result<(), TargetError> {
        let mut serials = self.serials()?;
        if serials.insert(zone.to_string(), serial) == Some(serial) {
            return Ok(());
        }
        let text: String = serials.iter().map(|(z, n)| format!("{z} {n}\n")).collect();
        let path = self.directory.join(SERIALS);
        super::create_parent(&path)?;
        super::atomic::write_atomic(&path, text.as_bytes())?;
        Ok(())
    }
}

/// The serial of a zone file zonekeeper wrote: the SOA line `render_zone` writes fourth.
fn our_serial(text: &str) -> Option<u32> {
    header_owner(text)?;
    let line = text.lines().take(6).find(|l| l.starts_with("@\t") && l.contains("\tSOA\t"))?;
    line.split('\t').nth(4)?.split(' ').nth(2)?.parse().ok()
}

fn header_owner(text: &str) -> Option<&str> {
    let first = text.lines().next()?;
    let rest = first.strip_prefix(HEADER)?;
    rest.split_whitespace().find_map(|kv| kv.strip_prefix("owner="))
}

/// Today as YYYYMMDD in UTC.
fn today() -> u32 {
    let d = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    d.year() as u32 * 10000 + d.month() as u32 * 100 + d.day() as u32
}

/// YYYYMMDDnn: today's first serial, or one more than the last when that is already today's
/// (or later: a serial never goes down).
pub fn next_serial(old: Option<u32>, today: u32) -> u32 {
    let base = today.saturating_mul(100);
    match old {
        // RFC 1982: past 2^32-1 the serial wraps; 0 is skipped (CoreDNS never loads serial 0).
        Some(old) if old >= base => old.checked_add(1).unwrap_or(1),
        _ => base,
    }
}

/// The MNAME and RNAME we write: the target's `soa`, else the zone's first apex NS (sorted
/// values, so the same sets give the same name) and `hostmaster.<zone>.`.
fn soa_names(zone: &Name, soa: &SoaDecl, sets: &[&RecordSet]) -> (String, String) {
    let first_ns =
        sets.iter().find(|s| s.name == *zone && s.rtype == RecordType::NS).and_then(|s| match s.values.first() {
            Some(RData::Ns(n)) => Some(n.fqdn()),
            _ => None,
        });
    let primary = soa.primary.clone().or(first_ns).unwrap_or_else(|| format!("ns1.{zone}."));
    let admin = soa.admin.clone().unwrap_or_else(|| format!("hostmaster.{zone}."));
    (primary, admin)
}

/// An SOA without its serial, as a plan shows it: `MNAME RNAME REFRESH RETRY EXPIRE MINIMUM
/// (TTL t)`, names absolute and lower-case.
fn soa_text(primary: &str, admin: &str, timers: [u32; 4], ttl: u32) -> String {
    let abs = |n: &str| {
        let n = n.to_ascii_lowercase();
        if n.ends_with('.') { n } else { format!("{n}.") }
    };
    let [refresh, retry, expire, minimum] = timers;
    format!("{} {} {refresh} {retry} {expire} {minimum} (TTL {ttl})", abs(primary), abs(admin))
}

/// The zone file for `sets`, deterministic for the same input.
pub fn render_zone(zone: &Name, owner: &str, soa: &SoaDecl, serial: u32, sets: &[&RecordSet]) -> String {
    let mut sets: Vec<&RecordSet> = sets.to_vec();
    sets.sort_by(|a, b| (a.name != *zone, &a.name, a.rtype).cmp(&(b.name != *zone, &b.name, b.rtype)));
    let (primary, admin) = soa_names(zone, soa, &sets);
    let mut out = String::with_capacity(256 + sets.len() * 40);
    // Writing into a String cannot fail.
    let _ = writeln!(out, "{HEADER} owner={owner} zone={zone}");
    out.push_str("; Written whole by zonekeeper from git: edits here are overwritten. Change the records in git.\n");
    let _ = writeln!(out, "$ORIGIN {zone}.");
    let _ = writeln!(
        out,
        "@\t{}\tIN\tSOA\t{primary} {admin} {serial} {} {} {} {}",
        soa.minimum, soa.refresh, soa.retry, soa.expire, soa.minimum
    );
    for s in sets {
        for v in &s.values {
            let _ = s.name.write_relative(zone, &mut out);
            let _ = writeln!(out, "\t{}\tIN\t{}\t{v}", s.ttl, s.rtype);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_rises_and_starts_each_day_at_00() {
        assert_eq!(next_serial(None, 20261130), 2026113000);
        assert_eq!(next_serial(Some(2026112907), 20261130), 2026113000);
        assert_eq!(next_serial(Some(2026113000), 20261130), 2026113001);
        assert_eq!(next_serial(Some(2026120105), 20261130), 2026120106, "never goes down");
        assert_eq!(next_serial(Some(u32::MAX), 20261130), 1, "wraps past the top (RFC 1982), skipping 0");
    }

    #[test]
    fn rendered_zone_reads_back_to_the_same_sets() {
        let zone = Name::parse("home.example").unwrap();
        let n = |s: &str| Name::parse(s).unwrap();
        let sets = vec![
            RecordSet::new(zone.clone(), RecordType::NS, 300, vec![RData::Ns(n("ns1.home.example"))]),
            RecordSet::new(
                n("www.home.example"),
                RecordType::A,
                60,
                vec![RData::A("192.0.2.1".parse().unwrap()), RData::A("192.0.2.2".parse().unwrap())],
            ),
            RecordSet::new(zone.clone(), RecordType::Txt, 300, vec![RData::Txt("v=spf1 -all; \"x\"".into())]),
            RecordSet::new(n("*.apps.home.example"), RecordType::Cname, 300, vec![RData::Cname(n("www.home.example"))]),
        ];
        let refs: Vec<&RecordSet> = sets.iter().collect();
        let text = render_zone(&zone, "me", &SoaDecl::default(), 2026113000, &refs);
        assert!(text.starts_with("; zonekeeper owner=me zone=home.example\n"));
        let parsed = parse_zone(&text, &zone, "t", None).unwrap();
        assert_eq!(parsed.serial(), Some(2026113000));
        let mut expected = sets.clone();
        expected.sort();
        assert_eq!(parsed.sets, expected);
        let refs: Vec<&RecordSet> = parsed.sets.iter().collect();
        assert_eq!(render_zone(&zone, "me", &SoaDecl::default(), 2026113000, &refs), text, "deterministic");
    }
}
