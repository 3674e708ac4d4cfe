//! Technitium DNS Server as a target: observe a zone's records over the HTTP API, and apply
//! a plan's changes record by record.
//!
//! Ownership lives in each record's `comments`: `zonekeeper:owner=<id>`. A record set is ours
//! when every record in it carries our marker, another instance's when they carry another
//! owner id, unowned otherwise (and so never changed unless `adopt`). Disabled records, the
//! SOA and the zone's own NS records are never ours. The API's quirks that shape `apply`
//! (research/api-facts.md §1.8): an add of an existing record is an error, an RRset has one
//! TTL and a TTL change rewrites its siblings without their comments, and an update resets
//! omitted fields. So a value change is adds then deletes of exactly the values that differ,
//! and a TTL change (or an adoption) replaces the set with `overwrite=true` and re-adds the rest.

pub mod client;

use std::net::IpAddr;

use client::{ApiError, Client, Policy, Token};
use serde_json::Value;

use super::{Observation, Outcome, Target, TargetError};
use crate::desired::TechnitiumSettings;
use crate::model::{Caa, Name, Observed, Ownership, RData, RecordSet, RecordType, Wanted};
use crate::plan::{Change, NativeText, TargetPlan};
use crate::secrets::{Denied, Secrets};

const MARKER: &str = "zonekeeper:owner=";

pub struct TechnitiumTarget {
    name: String,
    settings: TechnitiumSettings,
    owner: String,
    /// The token and TLS trust the operator bound to the URL's origin, or why none is sent.
    access: Result<Access, Denied>,
    /// One runtime and client for all the zones this target is asked about.
    conn: std::cell::OnceCell<(tokio::runtime::Runtime, Client)>,
}

/// A change with its place in the plan, so its outcome lands where it belongs.
type Indexed<'a> = (usize, &'a Change);

/// What the operator's credential gives this target.
struct Access {
    token: Token,
    ca_file: Option<std::path::PathBuf>,
    insecure_skip_tls_verify: bool,
}

impl Access {
    fn granted(settings: &TechnitiumSettings, secrets: &Secrets) -> Result<Access, Denied> {
        let grant = secrets.grant(&crate::secrets::Request {
            url: &settings.url,
            name: settings.credential.as_deref(),
            source: settings.token.as_ref(),
            ca_file: settings.ca_file.as_deref(),
            insecure_skip_tls_verify: settings.insecure_skip_tls_verify,
        })?;
        Ok(Access {
            token: Token::new(grant.token.expose()),
            ca_file: grant.ca_file.map(|p| p.to_path_buf()),
            insecure_skip_tls_verify: grant.insecure_skip_tls_verify,
        })
    }
}

fn api(target: &str, e: ApiError) -> TargetError {
    TargetError::Refused { path: format!("target {target}"), message: e.to_string() }
}

impl TechnitiumTarget {
    pub fn new(name: String, settings: TechnitiumSettings, owner: String, secrets: &Secrets) -> TechnitiumTarget {
        let access = Access::granted(&settings, secrets);
        TechnitiumTarget { name, settings, owner, access, conn: std::cell::OnceCell::new() }
    }

    /// The runtime and client, made on first use only.
    fn connection(&self) -> Result<&(tokio::runtime::Runtime, Client), TargetError> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let made = self.connect()?;
        Ok(self.conn.get_or_init(|| made))
    }

    fn marker(&self) -> String {
        format!("{MARKER}{}", self.owner)
    }

    /// A client and a runtime to drive it: the CLI is synchronous, the client is not.
    fn connect(&self) -> Result<(tokio::runtime::Runtime, Client), TargetError> {
        let refused = |message: String| TargetError::Refused { path: format!("target {}", self.name), message };
        let s = &self.settings;
        // No request at all without a token the operator bound to this origin.
        let access = self.access.as_ref().map_err(|e| refused(e.to_string()))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(s.timeout_seconds as u64))
            // The API never redirects; a redirect is not followed, with the token or without.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(origin) = crate::secrets::Origin::of(&s.url).filter(|o| o.is_localhost_name()) {
            // A token may go over plain http to localhost: that must be this machine, whatever
            // a hosts file says the name is.
            builder = builder.resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], origin.port())));
        }
        if access.insecure_skip_tls_verify {
            tracing::warn!(target_name = %self.name, "TLS certificate checks are off for this target (insecureSkipTlsVerify)");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &access.ca_file {
            let pem = std::fs::read(ca).map_err(|e| refused(format!("cannot read caFile {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| refused(format!("caFile {} holds no PEM certificate", ca.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| refused(format!("cannot set up HTTP: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| refused(format!("cannot start the async runtime: {e}")))?;
        let policy = Policy {
            timeout: std::time::Duration::from_secs(s.timeout_seconds as u64),
            rate: s.rate_limit,
            attempts: s.attempts,
        };
        Ok((rt, Client::new(&self.name, http, &s.url, access.token.clone(), policy)))
    }

    /// One read per zone: the whole zone's records, or `None` when the zone does not exist.
    /// The server answers for the closest enclosing zone it has, so the zone in the answer is
    /// checked: records of a parent zone are never taken for this one's.
    async fn read_zone(&self, client: &Client, zone: &Name) -> Result<Option<Vec<Value>>, ApiError> {
        let params = [("domain", zone.to_string()), ("zone", zone.to_string()), ("listZone", "true".to_string())];
        let resp = match client.call("/api/zones/records/get", &params, &[]).await {
            Err(e) if e.api_message().is_some_and(|m| m.starts_with("No such zone was found")) => return Ok(None),
            other => other?,
        };
        let answered =
            resp.get("zone").and_then(|z| z.get("name")).and_then(|n| n.as_str()).and_then(|n| Name::parse(n).ok());
        if answered.as_ref() != Some(zone) {
            return Ok(None);
        }
        let records = resp.get("records").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        Ok(Some(records))
    }

    /// The zone's sets, and its SOA EXPIRE (the largest TTL the server takes in it). Never
    /// writes: a missing zone is an error that names it, or (with `createZones`) an empty zone
    /// that `apply` will create.
    async fn observe_async(&self, client: &Client, zone: &Name) -> Result<(Vec<Observed>, Option<u32>), ApiError> {
        match self.read_zone(client, zone).await? {
            Some(records) => Ok((group(zone, &records, &self.marker()), soa_expire(zone, &records))),
            // A zone still to be created gets the server's default SOA (EXPIRE one week).
            None if self.settings.create_zones => Ok((Vec::new(), Some(DEFAULT_SOA_EXPIRE))),
            None => Err(ApiError::Api {
                endpoint: "/api/zones/records/get".into(),
                message: format!("zone {zone} does not exist on the server (set createZones: true to create it)"),
            }),
        }
    }

    /// With `cleanOrphans`: Primary zones on the server that we do not serve but that still
    /// hold records of ours (a zone taken out of zonekeeper.yaml, or moved to another target).
    /// One list call, then one read per unserved zone. Internal and disabled zones are left
    /// out; the zone itself is never deleted, only our records in it.
    async fn orphans_async(&self, client: &Client, served: &[Name]) -> Result<Vec<Name>, ApiError> {
        let listed = client.call("/api/zones/list", &[], &[]).await?;
        let candidates: Vec<Name> = listed
            .get("zones")
            .and_then(|z| z.as_array())
            .into_iter()
            .flatten()
            .filter(|z| z.get("type").and_then(|t| t.as_str()) == Some("Primary"))
            .filter(|z| !z.get("internal").and_then(|v| v.as_bool()).unwrap_or(false))
            .filter(|z| !z.get("disabled").and_then(|v| v.as_bool()).unwrap_or(false))
            .filter_map(|z| z.get("name").and_then(|n| n.as_str()).and_then(|n| Name::parse(n).ok()))
            .filter(|name| !served.contains(name))
            .collect();
        let marker = self.marker();
        let mut out = Vec::new();
        for zone in candidates {
            if let Some(records) = self.read_zone(client, &zone).await?
                && group(&zone, &records, &marker).iter().any(|o| o.ownership == Ownership::Ours)
            {
                out.push(zone);
            }
        }
        Ok(out)
    }

    /// One outcome per change of `plan.changes`, in its order.
    async fn apply_async(&self, client: &Client, zone: &Name, plan: &TargetPlan) -> Vec<Outcome> {
        let n = plan.changes.len();
        if let Some(why) = super::stop_reason() {
            return vec![Outcome::Skipped(why.into()); n];
        }
        // A plan that found nothing of ours may be for a zone still to be created.
        if self.settings.create_zones && plan.owned == 0 && plan.drift.is_empty() && plan.unowned_elsewhere == 0 {
            let skip = |why: String| vec![Outcome::Skipped(why); n];
            match self.read_zone(client, zone).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let create = [("zone", zone.to_string()), ("type", "Primary".into())];
                    if let Err(e) = client.call("/api/zones/create", &create, &["already exists"]).await {
                        return skip(format!("the zone could not be created: {e}"));
                    }
                }
                Err(e) => return skip(format!("the zone could not be read: {e}")),
            }
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
        // Many new sets at once (a first sync): one zone-file import instead of one call per
        // record, which at the default 10 requests/s is the difference between 1 s and 17 min
        // for 10,000 records.
        let busy: std::collections::HashSet<&Name> =
            plan.changes.iter().filter(|c| c.op() != crate::plan::Op::Create).map(|c| &c.set().name).collect();
        let (bulk, single): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = plan.changes.iter().enumerate().partition(
            |(_, c)| matches!(c, Change::Create { set, .. } if importable(set) && !busy.contains(&set.name)),
        );
        let bulk_values: usize = bulk.iter().map(|(_, c)| c.set().values.len()).sum();
        let single = if bulk_values >= BULK_MIN && !super::stop_requested() {
            let text = import_text(zone, bulk.iter().map(|(_, c)| c.set()), &self.marker());
            let result = client
                // overwrite=false: a set someone added since our read is kept, not replaced
                // (we never touch what we do not own), and a retried import adds nothing twice.
                .call_text("/api/zones/import", &[("zone", zone.to_string()), ("overwrite", "false".into())], &text)
                .await;
            let outcome = match result {
                Ok(_) => Outcome::Applied,
                // The import is not atomic (api-facts §1.8 #19): the sets before the refused one
                // are in, but which they are is not said; the next plan shows what is missing.
                Err(e) => Outcome::Failed(format!(
                    "the import of {} new record set(s) stopped part-way (the next plan shows which are missing): {e}",
                    bulk.len()
                )),
            };
            for (i, _) in &bulk {
                outcomes[*i] = Some(outcome.clone());
            }
            single
        } else {
            plan.changes.iter().enumerate().collect()
        };
        // Changes at one name run in plan order (a delete before the create that needs its
        // name free); different names run side by side, at most `concurrency` at a time.
        // The rate limit still bounds the requests per second.
        let mut by_name: Vec<Vec<Indexed<'_>>> = Vec::new();
        for (i, change) in single {
            match by_name.last_mut() {
                Some(group) if group[0].1.set().name == change.set().name => group.push((i, change)),
                _ => by_name.push(vec![(i, change)]),
            }
        }
        use futures_util::StreamExt;
        let progress =
            crate::progress::Progress::new(format!("{zone} on {}", self.name), by_name.iter().map(Vec::len).sum());
        let progress = &progress;
        let results: Vec<Vec<(usize, Result<(), ApiError>)>> = futures_util::stream::iter(by_name)
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                for (i, change) in group {
                    // A process told to stop finishes the write in flight and sends no more;
                    // the next run plans what is left.
                    if super::stop_requested() {
                        break;
                    }
                    out.push((i, self.apply_change(client, zone, change).await));
                    progress.step();
                }
                out
            })
            .buffered(self.settings.concurrency.max(1) as usize)
            .collect()
            .await;
        for (i, result) in results.into_iter().flatten() {
            outcomes[i] = Some(match result {
                Ok(()) => Outcome::Applied,
                Err(e) => Outcome::Failed(e.to_string()),
            });
        }
        outcomes.into_iter().map(|o| o.unwrap_or_else(|| Outcome::Skipped("not sent".into()))).collect()
    }

    async fn add(
        &self,
        client: &Client,
        zone: &Name,
        set: &RecordSet,
        v: &RData,
        overwrite: bool,
    ) -> Result<(), ApiError> {
        let mut p = self.owned_params(zone, set);
        if overwrite {
            p.push(("overwrite", "true".into()));
        }
        p.extend(value_params(v));
        client.call("/api/zones/records/add", &p, &["already exists"]).await.map(|_| ())
    }

    /// What every write of a record we own carries: where it goes, its TTL and our marker.
    fn owned_params(&self, zone: &Name, set: &RecordSet) -> Vec<(&'static str, String)> {
        vec![
            ("domain", set.name.to_string()),
            ("zone", zone.to_string()),
            ("type", set.rtype.to_string()),
            ("ttl", set.ttl.to_string()),
            ("comments", self.marker()),
        ]
    }

    /// Changes one value in place. The update endpoint resets what it is not given (TTL to
    /// the default, comments to none), so both are always sent.
    async fn update(
        &self,
        client: &Client,
        zone: &Name,
        set: &RecordSet,
        old: &RData,
        new: &RData,
    ) -> Result<(), ApiError> {
        let mut p = self.owned_params(zone, set);
        p.extend(update_params(old, new).unwrap_or_default());
        // On a retry, "the record does not exist" means the first try had landed (the old value
        // is gone). The server words it "the record does not exists to be updated"; "no such
        // record" is taken too, as for delete, in case another version words it so. (Should
        // someone else delete the old value between a first try that did not land and the
        // retry, this reports the update as applied; the next plan shows the missing value.)
        let gone = ["does not exists to be updated", "no such record"];
        client.call("/api/zones/records/update", &p, &gone).await.map(|_| ())
    }

    async fn delete(&self, client: &Client, zone: &Name, set: &RecordSet, v: &RData) -> Result<(), ApiError> {
        let mut p = vec![("domain", set.name.to_string()), ("zone", zone.to_string()), ("type", set.rtype.to_string())];
        p.extend(value_params(v));
        // "no such record" is taken as done only on a retry (the first try had landed); on a
        // first try it means the server holds the value differently than we read it.
        client.call("/api/zones/records/delete", &p, &["no such record"]).await.map(|_| ())
    }

    async fn apply_change(&self, client: &Client, zone: &Name, change: &Change) -> Result<(), ApiError> {
        match change {
            Change::Create { set, .. } => {
                for v in &set.values {
                    self.add(client, zone, set, v, false).await?;
                }
            }
            Change::Delete { set } => {
                for v in &set.values {
                    self.delete(client, zone, set, v).await?;
                }
            }
            // One value swapped for another (a changed address): one update call, in place.
            Change::Update { from, to, adopt: false, .. } if from.ttl == to.ttl => {
                let gone: Vec<&RData> = from.values.iter().filter(|v| !to.values.contains(v)).collect();
                let new: Vec<&RData> = to.values.iter().filter(|v| !from.values.contains(v)).collect();
                match (&gone[..], &new[..]) {
                    ([old], [new]) if update_params(old, new).is_some() => {
                        self.update(client, zone, to, old, new).await?
                    }
                    // A CNAME has one value: adding a second is refused, so it is replaced.
                    _ if to.rtype == RecordType::Cname => {
                        if let Some(v) = to.values.first() {
                            self.add(client, zone, to, v, true).await?;
                        }
                    }
                    _ => {
                        // Adds first, so the name always answers; then the values that went away.
                        for v in new {
                            self.add(client, zone, to, v, false).await?;
                        }
                        for v in gone {
                            self.delete(client, zone, from, v).await?;
                        }
                    }
                }
            }
            Change::Update { to, .. } => {
                // One TTL per RRset, and a TTL change strips the siblings' comments: replace
                // the set with its first value, then add the others.
                let mut values = to.values.iter();
                if let Some(first) = values.next() {
                    self.add(client, zone, to, first, true).await?;
                }
                for v in values {
                    self.add(client, zone, to, v, false).await?;
                }
            }
        }
        Ok(())
    }
}

/// From this many new values on, creates go in one zone-file import.
const BULK_MIN: usize = 50;

/// Whether a set survives Technitium's zone-file import unchanged: the import does not undo
/// escapes in quoted strings (research/api-facts.md §1.8 #17), so text with quotes,
/// backslashes or bytes outside printable ASCII, or longer than one string, goes record by record.
fn importable(set: &RecordSet) -> bool {
    let plain = |t: &str| t.len() <= 255 && t.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    set.values.iter().all(|v| match v {
        RData::Txt(t) => plain(t),
        RData::Caa(c) => plain(&c.value),
        RData::TxtStrings(_) => false,
        _ => true,
    })
}

/// The zone-file text for an import: absolute names, our marker as each record's comment
/// (the import reads a trailing comment back as the record's comments).
fn import_text<'a>(zone: &Name, sets: impl Iterator<Item = &'a RecordSet>, marker: &str) -> String {
    use std::fmt::Write;
    let mut out = format!("$ORIGIN {}\n", zone.fqdn());
    for s in sets {
        for v in &s.values {
            let _ = writeln!(out, "{} {} IN {} {v} ; {marker}", s.name.fqdn(), s.ttl, s.rtype);
        }
    }
    out
}

/// The parameters of an in-place update from `old` to `new`, for the types whose update
/// parameters are documented (api-facts §1.5); `None` for the others.
fn update_params(old: &RData, new: &RData) -> Option<Vec<(&'static str, String)>> {
    match (old, new) {
        (RData::A(a), RData::A(b)) => Some(vec![("ipAddress", a.to_string()), ("newIpAddress", b.to_string())]),
        (RData::Aaaa(a), RData::Aaaa(b)) => Some(vec![("ipAddress", a.to_string()), ("newIpAddress", b.to_string())]),
        (RData::Txt(a), RData::Txt(b)) => Some(vec![
            ("text", a.to_string()),
            ("newText", b.to_string()),
            ("splitText", "false".into()),
            ("newSplitText", "false".into()),
        ]),
        _ => None,
    }
}

/// The parameters that carry one value, named as the add and delete endpoints name them.
fn value_params(v: &RData) -> Vec<(&'static str, String)> {
    match v {
        RData::A(ip) => vec![("ipAddress", ip.to_string())],
        RData::Aaaa(ip) => vec![("ipAddress", ip.to_string())],
        RData::Cname(n) => vec![("cname", n.to_string())],
        RData::Ns(n) => vec![("nameServer", n.to_string())],
        RData::Mx { preference, exchange } => {
            vec![("preference", preference.to_string()), ("exchange", target_param(exchange))]
        }
        RData::Txt(t) => vec![("text", t.to_string()), ("splitText", "false".into())],
        // One character-string per line; in split mode the server undoes `\\`, `\n`, `\r`, `\t`.
        RData::TxtStrings(strings) => vec![("text", split_text(strings)), ("splitText", "true".into())],
        RData::Ptr(n) => vec![("ptrName", n.to_string())],
        RData::Srv { priority, weight, port, target } => vec![
            ("priority", priority.to_string()),
            ("weight", weight.to_string()),
            ("port", port.to_string()),
            ("target", target_param(target)),
        ],
        RData::Caa(c) => vec![("flags", c.flags.to_string()), ("tag", c.tag.clone()), ("value", c.value.clone())],
        // Refused in the plan (`supports`), so never sent; an empty list would be refused by
        // the server as a missing parameter rather than guessed at.
        // SSHFP and DS in their canonical text (`1 1 HEX`, `60485 5 1 HEX`): the server takes
        // the enum fields as numbers too (api-facts §1.9).
        RData::Other(RecordType::Sshfp, text) => {
            let f: Vec<&str> = text.split_whitespace().collect();
            match f[..] {
                [alg, fp, hex] => vec![
                    ("sshfpAlgorithm", alg.to_string()),
                    ("sshfpFingerprintType", fp.to_string()),
                    ("sshfpFingerprint", hex.to_string()),
                ],
                _ => Vec::new(),
            }
        }
        RData::Other(RecordType::Ds, text) => {
            let f: Vec<&str> = text.split_whitespace().collect();
            match f[..] {
                [tag, alg, dt, hex] => vec![
                    ("keyTag", tag.to_string()),
                    ("algorithm", alg.to_string()),
                    ("digestType", dt.to_string()),
                    ("digest", hex.to_string()),
                ],
                _ => Vec::new(),
            }
        }
        // Refused in the plan (`supports`), so never sent.
        RData::Other(..) => Vec::new(),
    }
}

/// The `text` of a TXT sent with `splitText=true`: the strings one per line, each with `\`
/// escaped (the server decodes `\\` back; its other escapes need a backslash first).
fn split_text(strings: &[Box<str>]) -> String {
    strings.iter().map(|s| s.replace('\\', "\\\\")).collect::<Vec<_>>().join("\n")
}

/// The number of an enum name as `records/get` writes it (`Ed25519`), or of a number string
/// (the server writes an undefined value as its number).
fn sshfp_number(names: &[(&str, u8)], shown: &str) -> Option<u8> {
    names.iter().find(|(n, _)| n.eq_ignore_ascii_case(shown)).map(|(_, v)| *v).or_else(|| shown.parse().ok())
}

/// A target name as a parameter: the root (null MX, "no service" SRV) is `.`.
fn target_param(n: &Name) -> String {
    if n.is_root() { ".".to_string() } else { n.to_string() }
}

/// One record of `records/get` as our value, or `None` for types and shapes we leave alone.
fn rdata(rtype: RecordType, r: &Value) -> Option<RData> {
    let s = |k: &str| r.get(k).and_then(|v| v.as_str());
    let n = |k: &str| r.get(k).and_then(|v| v.as_u64());
    let name = |k: &str| s(k).and_then(|x| Name::parse(x).ok());
    let target = |k: &str| s(k).and_then(|x| Name::parse_target(x).ok());
    Some(match rtype {
        RecordType::A => match s("ipAddress")?.parse().ok()? {
            IpAddr::V4(a) => RData::A(a),
            IpAddr::V6(_) => return None,
        },
        RecordType::Aaaa => match s("ipAddress")?.parse().ok()? {
            IpAddr::V6(a) => RData::Aaaa(a),
            IpAddr::V4(_) => return None,
        },
        RecordType::Cname => RData::Cname(name("cname")?),
        RecordType::NS => RData::Ns(name("nameServer")?),
        RecordType::MX => RData::Mx { preference: n("preference")?.try_into().ok()?, exchange: target("exchange")? },
        // A hostile or huge value from the server is left alone rather than mis-read.
        // Several character-strings come back in `characterStrings` (`text` is them joined):
        // kept as they are, or one text when they are the ones we would write for it.
        RecordType::Txt => match r.get("characterStrings").and_then(|v| v.as_array()) {
            Some(list) if list.len() > 1 => {
                let strings: Option<Vec<&str>> = list.iter().map(|v| v.as_str()).collect();
                RData::txt_strings(&strings?).ok()?
            }
            _ => match RData::parse(RecordType::Txt, s("text")?) {
                Ok(t) => t,
                Err(_) => return None,
            },
        },
        RecordType::Ptr => RData::Ptr(name("ptrName")?),
        // Read back through the same grammar a records file's value goes through.
        RecordType::Sshfp => {
            let alg =
                sshfp_number(&[("RSA", 1), ("DSA", 2), ("ECDSA", 3), ("Ed25519", 4), ("Ed448", 6)], s("algorithm")?)?;
            let fp = sshfp_number(&[("SHA1", 1), ("SHA256", 2)], s("fingerprintType")?)?;
            RData::parse(RecordType::Sshfp, &format!("{alg} {fp} {}", s("fingerprint")?)).ok()?
        }
        RecordType::Ds => RData::parse(
            RecordType::Ds,
            &format!("{} {} {} {}", n("keyTag")?, n("algorithmNumber")?, n("digestTypeNumber")?, s("digest")?),
        )
        .ok()?,
        RecordType::Srv => RData::Srv {
            priority: n("priority")?.try_into().ok()?,
            weight: n("weight")?.try_into().ok()?,
            port: n("port")?.try_into().ok()?,
            target: target("target")?,
        },
        RecordType::Caa => RData::Caa(Box::new(Caa {
            flags: n("flags")?.try_into().ok()?,
            tag: s("tag")?.to_string(),
            value: s("value")?.to_string(),
        })),
        // Read as records we leave alone: their `rData` fields are not in our research.
        _ => return None,
    })
}

/// The SOA EXPIRE of a new zone on Technitium (its default SOA: 604800 s).
const DEFAULT_SOA_EXPIRE: u32 = 604_800;

/// The EXPIRE of the zone's SOA, as `records/get` gives it: the server refuses any record
/// with a larger TTL (api-facts §1.8 #9).
fn soa_expire(zone: &Name, records: &[Value]) -> Option<u32> {
    records
        .iter()
        .filter(|r| r.get("type").and_then(|v| v.as_str()) == Some("SOA"))
        .filter(|r| r.get("name").and_then(|v| v.as_str()).and_then(|n| Name::parse(n).ok()).as_ref() == Some(zone))
        .find_map(|r| r.get("rData")?.get("expire")?.as_u64())
        .map(|e| e.min(u32::MAX as u64) as u32)
}

/// Groups the zone's records into sets with their ownership.
fn group(zone: &Name, records: &[Value], marker: &str) -> Vec<Observed> {
    use std::collections::BTreeMap;
    /// One RRset as read: its TTL, values, and the owner marker of each record (if any).
    #[derive(Default)]
    struct Seen {
        ttl: u32,
        values: Vec<RData>,
        owners: Vec<Option<String>>,
    }
    let mut groups: BTreeMap<(Name, RecordType), Seen> = BTreeMap::new();
    let mut untouchable: std::collections::BTreeSet<(Name, RecordType)> = Default::default();
    for r in records {
        let (Some(name), Some(rtype)) = (
            r.get("name").and_then(|v| v.as_str()).and_then(|n| Name::parse(n).ok()),
            r.get("type").and_then(|v| v.as_str()).and_then(RecordType::parse),
        ) else {
            continue; // SOA, DNSSEC and types we do not model
        };
        if !name.is_in(zone) {
            continue; // glue or a subzone's records: not this zone's
        }
        let disabled = r.get("disabled").and_then(|v| v.as_bool()).unwrap_or(false);
        let value = r.get("rData").and_then(|d| rdata(rtype, d));
        if disabled || value.is_none() || (rtype == RecordType::NS && name == *zone) {
            untouchable.insert((name, rtype));
            continue;
        }
        let comments = r.get("comments").and_then(|v| v.as_str()).unwrap_or("");
        let owner = comments
            .split(|c: char| c == ';' || c.is_whitespace())
            .find_map(|part| part.strip_prefix(MARKER))
            .map(|o| o.to_string());
        let ttl = r.get("ttl").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        let entry = groups.entry((name, rtype)).or_insert_with(|| Seen { ttl, ..Seen::default() });
        entry.ttl = entry.ttl.min(ttl);
        entry.values.extend(value);
        entry.owners.push(owner);
    }
    // A name and type holding only records we leave alone (disabled, unreadable) still exists:
    // the planner must not create over it.
    for key in &untouchable {
        groups.entry(key.clone()).or_default();
    }
    let ours = marker.strip_prefix(MARKER).unwrap_or_default();
    groups
        .into_iter()
        .map(|((name, rtype), Seen { ttl, values, owners })| {
            let ownership = if untouchable.contains(&(name.clone(), rtype)) {
                Ownership::Protected("holds disabled or unreadable records, or is the zone's own NS".into())
            } else if owners.iter().all(|o| o.as_deref() == Some(ours)) {
                Ownership::Ours
            } else if let Some(Some(other)) = owners.iter().find(|o| o.as_deref().is_some_and(|o| o != ours)) {
                Ownership::Other(other.as_str().into())
            } else {
                Ownership::Unowned
            };
            Observed { set: RecordSet::new(name, rtype, ttl, values), ownership }
        })
        .collect()
}

impl Target for TechnitiumTarget {
    fn name(&self) -> &str {
        &self.name
    }
    /// The types whose add, delete and read parameters are in research/api-facts.md, PTR
    /// (`ptrName`) and TXT with several character-strings (`splitText`) among them (§1.9).
    /// SSHFP and DS too (numbers for their enum fields, hex); TLSA, HTTPS, SVCB and NAPTR are
    /// refused in the plan until their values are mapped to the server's parameters. A TXT with an empty or non-ASCII character-string is
    /// refused too: the server drops empty lines in split mode and stores text as ASCII.
    fn supports(&self, set: &RecordSet) -> bool {
        let sendable = |v: &RData| match v {
            RData::TxtStrings(strings) => strings.iter().all(|s| !s.is_empty() && s.is_ascii()),
            _ => true,
        };
        set.values.iter().all(sendable)
            && matches!(
                set.rtype,
                RecordType::A
                    | RecordType::Aaaa
                    | RecordType::Cname
                    | RecordType::NS
                    | RecordType::MX
                    | RecordType::Txt
                    | RecordType::Srv
                    | RecordType::Caa
                    | RecordType::Ptr
                    | RecordType::Sshfp
                    | RecordType::Ds
            )
    }
    fn kind(&self) -> &'static str {
        "technitium"
    }
    fn adopt(&self) -> bool {
        self.settings.adopt
    }

    /// The server keeps its zone's own SOA and NS: we never plan them.
    fn prepare<'a>(&self, zone: &Name, wanted: Vec<Wanted<'a>>) -> Vec<Wanted<'a>> {
        wanted.into_iter().filter(|w| !(w.set.rtype == RecordType::NS && w.set.name == *zone)).collect()
    }

    fn orphan_zones(&self, served: &[Name]) -> Result<Vec<Name>, TargetError> {
        if !self.settings.clean_orphans {
            return Ok(Vec::new());
        }
        let (rt, client) = self.connection()?;
        rt.block_on(self.orphans_async(client, served)).map_err(|e| api(&self.name, e))
    }

    fn observe(&self, zone: &Name) -> Result<Observation, TargetError> {
        let (rt, client) = self.connection()?;
        let (sets, ttl_max) = rt.block_on(self.observe_async(client, zone)).map_err(|e| api(&self.name, e))?;
        Ok(Observation { sets, text: None, ttl_max, soa: None, serial_floor: None })
    }

    fn render(&self, _zone: &Name, _observation: Observation, _plan: &TargetPlan) -> Option<NativeText> {
        None
    }

    fn lock_place(&self) -> super::lock::LockPlace {
        let origin = crate::secrets::Origin::of(&self.settings.url).map(|o| o.to_string());
        super::lock::LockPlace::Named(origin.unwrap_or_else(|| self.settings.url.clone()))
    }

    fn apply(&self, zone: &Name, plan: &TargetPlan) -> Result<Vec<Outcome>, TargetError> {
        if plan.changes.is_empty() {
            return Ok(Vec::new());
        }
        let (rt, client) = self.connection()?;
        Ok(rt.block_on(self.apply_async(client, zone, plan)))
    }
}
