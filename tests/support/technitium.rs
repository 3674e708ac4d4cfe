//! An in-process double of Technitium DNS Server's HTTP API (v15.2), for tests. It follows
//! the documented behaviour and the facts in research/api-facts.md §1: GET or POST, query
//! before form, an empty value counts as missing (`Parameter 'X' missing.`), the token from
//! `Authorization: Bearer` or a `token` parameter, every error as HTTP 200 with
//! `"status": "error"` (or `"invalid-token"`), an add of an existing record is an error, a
//! delete of a missing one is an error, one TTL per RRset (a TTL change rewrites the siblings
//! and drops their comments), CNAME exclusivity, comments of at most 255 characters, no TTL
//! above the zone's SOA EXPIRE (add, set, update and import, each with the server's words), no
//! change at all to an internal zone, and an unknown `/api` path is HTTP 404 with an empty body.
//! From the server's source (§1.9): the zone-file import tokenized as the server reads it
//! (quotes kept raw), TXT stored as the server stores it (255-character strings, ASCII,
//! `splitText` lines), PTR, and names checked with the server's words. Every call is logged
//! (without the token) so a test can state exactly the calls it expects.
#![allow(dead_code)]
// An error here *is* the HTTP answer the double sends back; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub name: String,
    pub rtype: String,
    pub ttl: u64,
    pub disabled: bool,
    pub comments: Option<String>,
    pub rdata: Value,
}

impl Rec {
    /// An enabled record, as a test puts it on the server by hand.
    pub fn new(name: &str, rtype: &str, rdata: Value, comments: Option<&str>) -> Rec {
        Rec {
            name: name.into(),
            rtype: rtype.into(),
            ttl: 300,
            disabled: false,
            comments: comments.map(Into::into),
            rdata,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub endpoint: String,
    pub params: BTreeMap<String, String>,
}

impl Call {
    pub fn is_write(&self) -> bool {
        !(self.endpoint.ends_with("/list") || self.endpoint.ends_with("/get"))
    }
    /// `add A www.z 192.0.2.1` style summary for assertions.
    pub fn short(&self) -> String {
        let op = self.endpoint.rsplit('/').next().unwrap_or_default();
        if op == "import" {
            return format!("import {}", self.params.get("zone").cloned().unwrap_or_default());
        }
        let p = |k: &str| self.params.get(k).cloned().unwrap_or_default();
        let value = ["ipAddress", "cname", "nameServer", "exchange", "text", "target", "ptrName", "value"]
            .iter()
            .find_map(|k| self.params.get(*k).cloned())
            .unwrap_or_default();
        let new = ["newIpAddress", "newText"].iter().find_map(|k| self.params.get(*k)).map(|n| format!(" -> {n}"));
        format!("{op} {} {} {value}{}", p("type"), p("domain"), new.unwrap_or_default()).trim_end().to_string()
    }
}

/// A change someone else makes to the server's state.
pub type ServerChange = Box<dyn FnOnce(&mut State) + Send>;

#[derive(Default)]
pub struct State {
    pub token: String,
    pub zones: BTreeMap<String, Vec<Rec>>,
    pub calls: Vec<Call>,
    /// HTTP statuses to answer the next requests with, before doing anything.
    pub fail_next: Vec<u16>,
    /// Answer HTTP 500 to the n-th (0-based) write call only, without doing it.
    pub fail_write_at: Option<usize>,
    /// Do the n-th (0-based) write call, then answer HTTP 500 as if the answer was lost.
    pub lose_answer_at: Option<usize>,
    /// Zones the server marks `internal` (its built-in ones): listed, read, never changed.
    pub internal: std::collections::BTreeSet<String>,
    /// Zones an administrator disabled: listed with `disabled: true`, still read and written.
    pub disabled_zones: std::collections::BTreeSet<String>,
    /// Someone else's change to the server, made just before the first write arrives: what
    /// happens between zonekeeper's read and its writes.
    pub before_first_write: Option<ServerChange>,
    /// How long each write waits before it is done: a slow server, for a process stopped
    /// or killed mid-apply.
    pub write_delay: Option<std::time::Duration>,
    writes_seen: usize,
}

pub struct Technitium {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    /// TCP connections accepted so far: a client that keeps its connection makes one.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

fn ok(response: Value) -> Response {
    axum::Json(json!({"response": response, "server": "double", "status": "ok"})).into_response()
}

fn error(message: &str) -> Response {
    axum::Json(json!({"server": "double", "status": "error", "errorMessage": message})).into_response()
}

/// The zone's SOA EXPIRE: no record may have a larger TTL (api-facts §1.8 #9).
fn soa_expire(recs: &[Rec]) -> u64 {
    recs.iter().find(|r| r.rtype == "SOA").and_then(|r| r.rdata.get("expire")).and_then(Value::as_u64).unwrap_or(604800)
}

/// Writes to an internal zone are refused (api-facts §1.8 #10; WebServiceZonesApi).
fn writable(st: &State, zone: &str) -> Result<(), Response> {
    if st.internal.contains(zone) {
        return Err(error("Access was denied to manage internal DNS Server zone."));
    }
    Ok(())
}

fn norm(name: &str) -> String {
    name.trim_matches('.').to_ascii_lowercase()
}

impl Technitium {
    /// Starts the double on a free port of 127.0.0.1 with one zone (SOA and NS at the apex).
    pub fn start(token: &str, zone: &str) -> Technitium {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Technitium::start_on(listener, token, zone)
    }

    pub fn start_on(listener: std::net::TcpListener, token: &str, zone: &str) -> Technitium {
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let mut st = State { token: token.to_string(), ..State::default() };
        st.zones.insert(zone.to_string(), apex(zone));
        let state = Arc::new(Mutex::new(st));
        let shared = state.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                use axum::serve::ListenerExt;
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener").tap_io(move |_| {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
                let app = axum::Router::new().fallback(handle).with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        });
        Technitium { addr, state, connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.iter().filter(|c| c.is_write()).map(|c| c.short()).collect()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    pub fn records(&self, zone: &str) -> Vec<Rec> {
        self.state.lock().unwrap().zones.get(zone).cloned().unwrap_or_default()
    }

    /// Sets the EXPIRE of `zone`'s SOA, as an administrator would.
    pub fn set_soa_expire(st: &mut State, zone: &str, expire: u64) {
        for r in st.zones.get_mut(zone).into_iter().flatten().filter(|r| r.rtype == "SOA") {
            r.rdata["expire"] = json!(expire);
        }
    }

    /// Adds a Primary zone with its SOA and NS, as `zones/create` would.
    pub fn add_zone(&self, zone: &str) {
        self.state.lock().unwrap().zones.insert(zone.to_string(), apex(zone));
    }

    /// Marks `zone` internal, as the server's built-in zones are.
    pub fn mark_internal(&self, zone: &str) {
        self.state.lock().unwrap().internal.insert(zone.to_string());
    }

    pub fn insert(&self, zone: &str, rec: Rec) {
        self.state.lock().unwrap().zones.entry(zone.to_string()).or_default().push(rec);
    }
}

fn apex(zone: &str) -> Vec<Rec> {
    vec![
        Rec {
            name: zone.into(),
            rtype: "SOA".into(),
            ttl: 900,
            disabled: false,
            comments: None,
            rdata: json!({"primaryNameServer": format!("ns.{zone}"), "responsiblePerson": format!("hostmaster.{zone}"),
                          "serial": 1, "refresh": 900, "retry": 300, "expire": 604800, "minimum": 900}),
        },
        Rec {
            name: zone.into(),
            rtype: "NS".into(),
            ttl: 3600,
            disabled: false,
            comments: None,
            rdata: json!({"nameServer": format!("ns.{zone}")}),
        },
    ]
}

fn rec_json(r: &Rec) -> Value {
    let mut v = json!({"name": r.name, "type": r.rtype, "ttl": r.ttl, "ttlString": format!("{}s", r.ttl),
                       "disabled": r.disabled, "rData": r.rdata, "dnssecStatus": "Disabled",
                       "lastUsedOn": "0001-01-01T00:00:00", "lastModified": "0001-01-01T00:00:00", "expiryTtl": 0});
    if let Some(c) = r.comments.as_deref().filter(|c| !c.is_empty()) {
        v["comments"] = json!(c);
    }
    v
}

struct Params {
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    /// The body when it is `text/plain` exactly (zone-file import).
    text: Option<String>,
}

impl Params {
    /// Query first, then form; an empty value is missing.
    fn get(&self, k: &str) -> Option<&str> {
        fn find<'a>(v: &'a [(String, String)], k: &str) -> Option<&'a str> {
            v.iter().find(|(n, x)| n == k && !x.is_empty()).map(|(_, x)| x.as_str())
        }
        find(&self.query, k).or_else(|| find(&self.form, k))
    }
    fn req(&self, k: &str) -> Result<&str, Response> {
        self.get(k).ok_or_else(|| error(&format!("Parameter '{k}' missing.")))
    }
    fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The server's check of a domain name (api-facts §1.9: `DnsClient.IsDomainNameValid`), with
/// its words: at most 255 characters, labels of 1–63, characters of `[A-Za-z0-9-_/]`, `*` as a
/// whole label. The root (empty) is valid.
fn valid_name(name: &str) -> Result<(), Response> {
    if name.is_empty() {
        return Ok(());
    }
    let bad = |why: String| Err(error(&format!("Invalid domain name [{name}]: {why}")));
    if name.chars().count() > 255 {
        return bad("length cannot exceed 255 bytes.".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("label length cannot be 0 byte.".into());
        }
        if label.chars().count() > 63 {
            return bad("label length cannot exceed 63 bytes.".into());
        }
        if label == "*" {
            continue;
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))) {
            return bad(format!("invalid character [{}] was found.", c as u32));
        }
    }
    Ok(())
}

/// An enum parameter as the server parses it (`Enum.Parse(value, true)`): a name in any case
/// or a number; the name it reads back as (its number when it has none).
fn enum_value(names: &[(&str, u64)], given: &str, what: &str) -> Result<(u64, String), Response> {
    let given = given.replace('-', "_");
    if let Some((n, v)) = names.iter().find(|(n, _)| n.replace('-', "_").eq_ignore_ascii_case(&given)) {
        return Ok((*v, n.to_string()));
    }
    let v: u64 =
        given.parse().map_err(|_| error(&format!("Requested value '{given}' was not found. (Parameter '{what}')")))?;
    let name = names.iter().find(|(_, x)| *x == v).map(|(n, _)| n.to_string()).unwrap_or_else(|| v.to_string());
    Ok((v, name))
}

const SSHFP_ALGORITHMS: &[(&str, u64)] =
    &[("Reserved", 0), ("RSA", 1), ("DSA", 2), ("ECDSA", 3), ("Ed25519", 4), ("Ed448", 6)];
const SSHFP_TYPES: &[(&str, u64)] = &[("SHA1", 1), ("SHA256", 2)];
const DS_ALGORITHMS: &[(&str, u64)] = &[
    ("RSAMD5", 1),
    ("DSA", 3),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
];
const DS_DIGESTS: &[(&str, u64)] = &[("SHA1", 1), ("SHA256", 2), ("GOST-R-34-11-94", 3), ("SHA384", 4)];

/// Hex as `Convert.FromHexString` takes it (either case, even length), written back upper case.
fn hex(given: &str, bad: &str) -> Result<String, Response> {
    if given.is_empty() || !given.len().is_multiple_of(2) || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error(bad));
    }
    Ok(given.to_ascii_uppercase())
}

/// SSHFP's rData (api-facts §1.9): the fingerprint's length must fit its type.
fn sshfp_rdata(alg: &str, fp_type: &str, fingerprint: &str) -> Result<Value, Response> {
    let (_, alg) = enum_value(SSHFP_ALGORITHMS, alg, "sshfpAlgorithm")?;
    let (t, fp_name) = enum_value(SSHFP_TYPES, fp_type, "sshfpFingerprintType")?;
    let fp = hex(fingerprint, "Invalid Fingerprint value for the Fingerprint Type.")?;
    let want = match t {
        1 => 40,
        2 => 64,
        other => return Err(error(&format!("Fingerprint Type is not supported: {other}"))),
    };
    if fp.len() != want {
        return Err(error("Invalid Fingerprint value for the Fingerprint Type."));
    }
    Ok(json!({"algorithm": alg, "fingerprintType": fp_name, "fingerprint": fp}))
}

/// DS's rData (api-facts §1.9): a digest of 20, 32 or 48 bytes; names with `_` for `-`.
fn ds_rdata(key_tag: u64, alg: &str, digest_type: &str, digest: &str) -> Result<Value, Response> {
    let (alg_n, alg) = enum_value(DS_ALGORITHMS, alg, "algorithm")?;
    let (dt_n, dt) = enum_value(DS_DIGESTS, digest_type, "digestType")?;
    let digest = hex(digest, "Invalid Digest value for the Digest Type.")?;
    if ![40, 64, 96].contains(&digest.len()) {
        return Err(error("Invalid Digest value for the Digest Type."));
    }
    Ok(
        json!({"keyTag": key_tag, "algorithm": alg.replace('-', "_"), "algorithmNumber": alg_n, "digestType": dt.replace('-', "_"), "digestTypeNumber": dt_n, "digest": digest}),
    )
}

/// The rData a request describes, for add and delete.
fn rdata_of(t: &str, p: &Params) -> Result<Value, Response> {
    let num = |k: &str| -> Result<u64, Response> {
        p.req(k)?.parse::<u64>().map_err(|_| error(&format!("Invalid value for parameter '{k}'.")))
    };
    Ok(match t {
        "A" | "AAAA" => {
            let ip = p.get("ipAddress").or(p.get("value")).ok_or_else(|| error("Parameter 'ipAddress' missing."))?;
            let parsed: std::net::IpAddr =
                ip.parse().map_err(|_| error(&format!("An invalid IP address was specified: {ip}")))?;
            if (t == "A") != parsed.is_ipv4() {
                return Err(error(&format!("An invalid IP address was specified: {ip}")));
            }
            json!({"ipAddress": parsed.to_string()})
        }
        "CNAME" => {
            json!({"cname": norm(p.get("cname").or(p.get("value")).ok_or_else(|| error("Parameter 'cname' missing."))?)})
        }
        "NS" => json!({"nameServer": norm(p.req("nameServer")?)}),
        "MX" => json!({"preference": num("preference")?, "exchange": norm(p.req("exchange")?)}),
        "TXT" => txt_rdata(p.req("text")?, p.flag("splitText"))?,
        "PTR" => {
            json!({"ptrName": norm(p.get("ptrName").or(p.get("value")).ok_or_else(|| error("Parameter 'ptrName' missing."))?)})
        }
        "SSHFP" => sshfp_rdata(p.req("sshfpAlgorithm")?, p.req("sshfpFingerprintType")?, p.req("sshfpFingerprint")?)?,
        "DS" => {
            let digest = p.get("digest").or(p.get("value")).ok_or_else(|| error("Parameter 'digest' missing."))?;
            ds_rdata(num("keyTag")?, p.req("algorithm")?, p.req("digestType")?, digest)?
        }
        "SRV" => {
            json!({"priority": num("priority")?, "weight": num("weight")?, "port": num("port")?, "target": norm(p.req("target")?)})
        }
        "CAA" => json!({"flags": num("flags")?, "tag": p.req("tag")?, "value": p.req("value")?}),
        other => return Err(error(&format!("Requested resource record type is not supported: {other}"))),
    })
}

/// One token of a zone file as the server's import reads it: quoted strings lose their
/// quotes but keep their backslashes (api-facts §1.8 #17), and a `;` outside quotes starts
/// the comment, which becomes the record's comments.
#[derive(Debug)]
enum Tok {
    Word(String),
    Quoted(String),
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Word(s) | Tok::Quoted(s) => s,
        }
    }
}

/// Splits a zone file into entries (parentheses join lines): tokens, the comment, and
/// whether the entry began with white space (no owner).
/// One entry: whether it began with white space, its tokens, and its comment.
type ImportEntry = (bool, Vec<Tok>, Option<String>);

fn import_entries(text: &str) -> Result<Vec<ImportEntry>, Response> {
    let mut out = Vec::new();
    let mut toks = Vec::new();
    let mut comment: Option<String> = None;
    let mut depth = 0usize;
    let mut blank_start = false;
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if at_start {
            blank_start = c == ' ' || c == '\t';
            at_start = false;
        }
        match c {
            '\n' if depth == 0 => {
                out.push((blank_start, std::mem::take(&mut toks), comment.take()));
                at_start = true;
            }
            '\n' | ' ' | '\t' | '\r' => {}
            ';' => {
                let mut c2 = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    c2.push(n);
                    chars.next();
                }
                let c2 = c2.trim().to_string();
                comment = Some(match comment.take() {
                    Some(prev) => format!("{prev} {c2}"),
                    None => c2,
                });
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '"' => {
                let mut q = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error("Invalid zone file: unterminated quoted string.")),
                        Some('"') => break,
                        Some('\\') => {
                            // kept as written: the import does not undo escapes
                            q.push('\\');
                            if let Some(n) = chars.next() {
                                q.push(n);
                            }
                        }
                        Some(other) => q.push(other),
                    }
                }
                toks.push(Tok::Quoted(q));
            }
            _ => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if matches!(n, ' ' | '\t' | '\r' | '\n' | ';' | '(' | ')' | '"') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                toks.push(Tok::Word(w));
            }
        }
    }
    if depth != 0 {
        return Err(error("Invalid zone file: unbalanced parentheses."));
    }
    out.push((blank_start, toks, comment));
    Ok(out)
}

/// The records of a zone file sent to `/api/zones/import`, read as the server reads them
/// (api-facts §1.4 import, §1.8 #17): `$ORIGIN`, `$TTL`, owners relative or absolute or
/// carried from the line before, TTL and class in either order, class IN only; out-of-zone
/// A/AAAA lines are kept as glue and any other out-of-zone line is an error.
fn parse_import(text: &str, zone: &str) -> Result<Vec<Rec>, Response> {
    let mut imported = Vec::new();
    let mut origin = zone.to_string();
    let mut default_ttl: Option<u64> = None;
    let mut last_owner: Option<String> = None;
    for (blank_start, toks, comment) in import_entries(text)? {
        let Some(first) = toks.first() else { continue };
        let bad =
            || error(&format!("Invalid zone file entry: {}", toks.iter().map(Tok::text).collect::<Vec<_>>().join(" ")));
        match first.text() {
            "$ORIGIN" => {
                origin = norm(toks.get(1).ok_or_else(bad)?.text());
                continue;
            }
            "$TTL" => {
                default_ttl = Some(toks.get(1).and_then(|t| t.text().parse().ok()).ok_or_else(bad)?);
                continue;
            }
            d if d.starts_with('$') => return Err(error(&format!("Unsupported directive: {d}"))),
            _ => {}
        }
        let mut i = 0;
        let name = if blank_start {
            last_owner.clone().ok_or_else(bad)?
        } else {
            i = 1;
            let o = first.text();
            let n = if o == "@" {
                origin.clone()
            } else if o.ends_with('.') {
                norm(o)
            } else {
                format!("{}.{origin}", o.to_ascii_lowercase())
            };
            last_owner = Some(n.clone());
            n
        };
        let mut ttl = None;
        let mut class = None;
        while i < toks.len() && i < 3 + usize::from(!blank_start) {
            let t = toks[i].text();
            if let Ok(n) = t.parse::<u64>() {
                ttl = Some(n);
            } else if ["IN", "CH", "HS", "CS"].iter().any(|c| t.eq_ignore_ascii_case(c)) {
                class = Some(t.to_ascii_uppercase());
            } else {
                break;
            }
            i += 1;
        }
        if class.as_deref().is_some_and(|c| c != "IN") {
            return Err(error("Only the IN class is supported for import."));
        }
        let t = toks.get(i).ok_or_else(bad)?.text().to_ascii_uppercase();
        let f: Vec<&str> = toks[i + 1..].iter().map(Tok::text).collect();
        let ttl = ttl.or(default_ttl).unwrap_or(3600);
        let in_zone = name == zone || name.ends_with(&format!(".{zone}"));
        if !in_zone && !matches!(t.as_str(), "A" | "AAAA") {
            return Err(error(&format!("Cannot import record: '{name}' is outside the zone '{zone}'.")));
        }
        let abs = |s: &str| {
            if s == "@" {
                origin.clone()
            } else if s.ends_with('.') {
                norm(s)
            } else {
                format!("{s}.{origin}")
            }
        };
        let num = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok()).ok_or_else(bad);
        let word = |k: usize| f.get(k).copied().ok_or_else(bad);
        let rdata = match t.as_str() {
            "A" | "AAAA" => {
                let ip: std::net::IpAddr = word(0)?.parse().map_err(|_| bad())?;
                json!({"ipAddress": ip.to_string()})
            }
            "CNAME" => json!({"cname": abs(word(0)?)}),
            "NS" => json!({"nameServer": abs(word(0)?)}),
            "PTR" => json!({"ptrName": abs(word(0)?)}),
            "SSHFP" => sshfp_rdata(word(0)?, word(1)?, &f[2..].concat())?,
            "DS" => ds_rdata(num(0)?, word(1)?, word(2)?, &f[3..].concat())?,
            "MX" => json!({"preference": num(0)?, "exchange": abs(word(1)?)}),
            "TXT" => {
                if f.is_empty() {
                    return Err(bad());
                }
                let strings: Vec<String> = f.iter().map(|s| s.to_string()).collect();
                json!({"text": strings.concat(), "splitText": strings.len() > 1, "characterStrings": strings})
            }
            "SRV" => json!({"priority": num(0)?, "weight": num(1)?, "port": num(2)?, "target": abs(word(3)?)}),
            "CAA" => {
                if f.len() != 3 {
                    return Err(bad());
                }
                json!({"flags": num(0)?, "tag": word(1)?, "value": word(2)?})
            }
            "RRSIG" | "NSEC" | "NSEC3" | "DNSKEY" => continue, // DNSSEC records are skipped
            other => return Err(error(&format!("Record type not supported for import: {other}"))),
        };
        imported.push(Rec { name, rtype: t, ttl, disabled: false, comments: comment, rdata });
    }
    Ok(imported)
}

/// A TXT record as the server stores it (api-facts §1.8 #22, §1.9): with `splitText` the
/// text's lines (CR or LF, empty ones dropped) are its character-strings, each with `\\`,
/// `\n`, `\r` and `\t` decoded; without it the text is cut into 255-character strings.
/// Either way it is stored as ASCII (anything else becomes `?`); `text` reads back as the
/// strings joined, and `splitText` as "more than one string".
fn txt_rdata(text: &str, split: bool) -> Result<Value, Response> {
    let ascii: String = text.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect();
    let strings: Vec<String> = if split {
        let mut out = Vec::new();
        for line in ascii.split(['\r', '\n']).filter(|l| !l.is_empty()) {
            let mut piece = String::new();
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    piece.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => piece.push('\n'),
                    Some('r') => piece.push('\r'),
                    Some('t') => piece.push('\t'),
                    Some('\\') => piece.push('\\'),
                    Some(other) => {
                        piece.push('\\');
                        piece.push(other);
                    }
                    None => piece.push('\\'),
                }
            }
            if piece.len() > 255 {
                return Err(error("TXT record character-string length cannot exceed 255 bytes."));
            }
            out.push(piece);
        }
        out
    } else {
        let chars: Vec<char> = ascii.chars().collect();
        if chars.is_empty() { vec![String::new()] } else { chars.chunks(255).map(|c| c.iter().collect()).collect() }
    };
    Ok(json!({"text": strings.concat(), "splitText": strings.len() > 1, "characterStrings": strings}))
}

/// Two rData describe the same record (TXT compares its character-strings in order, like the
/// server; `splitText` is how they were sent, not what they are).
fn same(t: &str, a: &Value, b: &Value) -> bool {
    if t == "TXT" { a.get("characterStrings") == b.get("characterStrings") } else { a == b }
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let content_type = headers.get("content-type").and_then(|h| h.to_str().ok()).unwrap_or("");
    let form: Vec<(String, String)> = if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(&body).unwrap_or_default()
    } else {
        Vec::new()
    };
    let text = (content_type == "text/plain").then(|| String::from_utf8_lossy(&body).into_owned());
    let p = Params { query, form, text };
    let endpoint = uri.path().to_string();
    let delay = state.lock().unwrap().write_delay;
    if let Some(delay) = delay.filter(|_| is_write(&endpoint)) {
        tokio::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap();
    let params: BTreeMap<String, String> =
        p.query.iter().chain(p.form.iter()).filter(|(k, _)| k != "token").cloned().collect();
    st.calls.push(Call { endpoint: endpoint.clone(), params });
    if !st.fail_next.is_empty() {
        let code = st.fail_next.remove(0);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Technitium has no HTTP rate limiter of its own; a 429 comes from a proxy in front of
        // it, which says when to come back.
        if code == 429 {
            return (status, [("retry-after", "2")]).into_response();
        }
        return status.into_response();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.get(..7).filter(|b| b.eq_ignore_ascii_case("bearer ")).map(|_| h[7..].to_string()));
    let token = bearer.or_else(|| p.get("token").map(|t| t.to_string()));
    if token.as_deref() != Some(st.token.as_str()) {
        return axum::Json(
            json!({"server": "double", "status": "invalid-token", "errorMessage": "Invalid token or session expired."}),
        )
        .into_response();
    }
    if is_write(&endpoint) {
        if let Some(change) = st.before_first_write.take() {
            change(&mut st);
        }
        let n = st.writes_seen;
        st.writes_seen += 1;
        if st.fail_write_at == Some(n) {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        if st.lose_answer_at == Some(n) {
            let _ = route(&mut st, &endpoint, &p);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    match route(&mut st, &endpoint, &p) {
        Ok(r) | Err(r) => r,
    }
}

fn is_write(endpoint: &str) -> bool {
    matches!(
        endpoint,
        "/api/zones/records/add"
            | "/api/zones/records/update"
            | "/api/zones/records/delete"
            | "/api/zones/create"
            | "/api/zones/import"
    )
}

/// The zone that holds `name`: the longest zone name it ends in, as the server finds it.
fn closest(st: &State, name: &str) -> Option<String> {
    st.zones.keys().filter(|z| name == z.as_str() || name.ends_with(&format!(".{z}"))).max_by_key(|z| z.len()).cloned()
}

fn route(st: &mut State, endpoint: &str, p: &Params) -> Result<Response, Response> {
    match endpoint {
        "/api/zones/list" => {
            let zones: Vec<Value> = st
                .zones
                .keys()
                .map(|z| json!({"name": z, "type": "Primary", "internal": st.internal.contains(z), "disabled": st.disabled_zones.contains(z), "dnssecStatus": "Unsigned", "soaSerial": 1}))
                .collect();
            Ok(ok(json!({"zones": zones})))
        }
        "/api/zones/create" => {
            let zone = norm(p.req("zone")?);
            if st.zones.contains_key(&zone) {
                return Err(error(&format!("Zone already exists: {zone}")));
            }
            st.zones.insert(zone.clone(), apex(&zone));
            Ok(ok(json!({"domain": zone})))
        }
        "/api/zones/records/get" => {
            let domain = norm(p.req("domain")?);
            let zone = closest(st, &p.get("zone").map(norm).unwrap_or_else(|| domain.clone()))
                .ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            let recs = st.zones.get(&zone).ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            let list: Vec<Value> =
                recs.iter().filter(|r| p.flag("listZone") || r.name == domain).map(rec_json).collect();
            Ok(ok(json!({"zone": {"name": zone, "type": "Primary"}, "records": list})))
        }
        "/api/zones/records/add" => {
            let domain = norm(p.req("domain")?);
            valid_name(&domain)?;
            let zone = closest(st, &p.get("zone").map(norm).unwrap_or_else(|| domain.clone()))
                .ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            writable(st, &zone)?;
            let t = p.req("type")?.to_ascii_uppercase();
            let ttl: u64 = p.get("ttl").map(|v| v.parse().unwrap_or(3600)).unwrap_or(3600);
            let comments = p.get("comments").map(|c| c.to_string());
            if comments.as_ref().is_some_and(|c| c.chars().count() > 255) {
                return Err(error("Resource record comment text cannot exceed 255 characters. (Parameter 'Comments')"));
            }
            let rdata = rdata_of(&t, p)?;
            for k in ["cname", "nameServer", "exchange", "target", "ptrName"] {
                if let Some(n) = rdata.get(k).and_then(|v| v.as_str()) {
                    valid_name(n)?;
                }
            }
            let overwrite = p.flag("overwrite");
            let recs = st.zones.get_mut(&zone).ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            if ttl > soa_expire(recs) {
                return Err(error(if overwrite {
                    "Cannot set records: TTL cannot be greater than SOA EXPIRE."
                } else {
                    "Cannot add record: TTL cannot be greater than SOA EXPIRE."
                }));
            }
            if t == "CNAME" && domain == zone {
                return Err(error("Cannot add CNAME record to zone apex."));
            }
            if t == "DS" && domain == zone {
                return Err(error("Cannot set DS record at zone apex."));
            }
            let others = recs.iter().any(|r| r.name == domain && r.rtype != t && (r.rtype == "CNAME" || t == "CNAME"));
            if others {
                return Err(error("Cannot add record: a CNAME record cannot exists with other record types."));
            }
            if t == "CNAME" && !overwrite && recs.iter().any(|r| r.name == domain && r.rtype == "CNAME") {
                return Err(error(
                    "Record already exists. Use overwrite option if you wish to overwrite existing record.",
                ));
            }
            let new = Rec { name: domain.clone(), rtype: t.clone(), ttl, disabled: false, comments, rdata };
            if overwrite {
                recs.retain(|r| !(r.name == domain && r.rtype == t));
            } else {
                if recs
                    .iter()
                    .any(|r| r.name == domain && r.rtype == t && same(&t, &r.rdata, &new.rdata) && r.ttl == ttl)
                {
                    return Err(error("Cannot add record: record already exists."));
                }
                // One TTL per RRset: the siblings are rebuilt with the new TTL and lose their comments.
                for r in recs.iter_mut().filter(|r| r.name == domain && r.rtype == t && r.ttl != ttl) {
                    r.ttl = ttl;
                    r.comments = None;
                }
                if recs.iter().any(|r| r.name == domain && r.rtype == t && same(&t, &r.rdata, &new.rdata)) {
                    return Ok(ok(json!({"zone": {"name": zone}, "addedRecord": rec_json(&new)})));
                }
            }
            let added = rec_json(&new);
            recs.push(new);
            Ok(ok(json!({"zone": {"name": zone}, "addedRecord": added})))
        }
        "/api/zones/records/update" => {
            let domain = norm(p.req("domain")?);
            let zone = closest(st, &p.get("zone").map(norm).unwrap_or_else(|| domain.clone()))
                .ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            writable(st, &zone)?;
            let t = p.req("type")?.to_ascii_uppercase();
            let old = rdata_of(&t, p)?;
            let new = match t.as_str() {
                "A" | "AAAA" => match p.get("newIpAddress") {
                    Some(ip) => json!({"ipAddress": ip}),
                    None => old.clone(),
                },
                "TXT" => match p.get("newText") {
                    Some(text) => txt_rdata(
                        text,
                        p.get("newSplitText").map_or(p.flag("splitText"), |v| v.eq_ignore_ascii_case("true")),
                    )?,
                    None => old.clone(),
                },
                // api-facts §1.5: a CNAME's update takes the new target in `cname`.
                "CNAME" => old.clone(),
                other => return Err(error(&format!("Updating {other} is not supported by this double"))),
            };
            let recs = st.zones.get_mut(&zone).ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            let ttl = p.get("ttl").and_then(|v| v.parse().ok()).unwrap_or(3600);
            if ttl > soa_expire(recs) {
                return Err(error("Cannot update record: TTL cannot be greater than SOA EXPIRE."));
            }
            let rec = recs
                .iter_mut()
                // A name holds one CNAME: it is found by name, and `cname` is its new target.
                .find(|r| r.name == domain && r.rtype == t && (t == "CNAME" || same(&t, &r.rdata, &old)))
                .ok_or_else(|| error("Cannot update record: the record does not exists to be updated."))?;
            // Omitted fields are reset, as the server does (api-facts §1.8 #6).
            rec.rdata = new;
            rec.ttl = ttl;
            rec.comments = p.get("comments").map(|c| c.to_string());
            rec.disabled = p.flag("disable");
            let updated = rec_json(rec);
            Ok(ok(json!({"zone": {"name": zone}, "updatedRecord": updated})))
        }
        "/api/zones/records/delete" => {
            let domain = norm(p.req("domain")?);
            let zone = closest(st, &p.get("zone").map(norm).unwrap_or_else(|| domain.clone()))
                .ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            writable(st, &zone)?;
            let t = p.req("type")?.to_ascii_uppercase();
            let recs = st.zones.get_mut(&zone).ok_or_else(|| error(&format!("No such zone was found: {domain}")))?;
            let before = recs.len();
            if t == "CNAME" {
                recs.retain(|r| !(r.name == domain && r.rtype == "CNAME"));
            } else {
                let rdata = rdata_of(&t, p)?;
                recs.retain(|r| !(r.name == domain && r.rtype == t && same(&t, &r.rdata, &rdata)));
            }
            if recs.len() == before {
                return Err(error("Cannot delete record: no such record exists."));
            }
            Ok(ok(json!({})))
        }
        "/api/zones/import" => {
            let zone = norm(p.req("zone")?);
            writable(st, &zone)?;
            // The server compares the content type exactly (api-facts §1.8 #18).
            let text = p.text.as_deref().ok_or_else(|| error("The zone file to import is missing."))?;
            let overwrite = p.get("overwrite").is_none_or(|v| v.eq_ignore_ascii_case("true"));
            let imported = parse_import(text, &zone)?;
            let recs = st.zones.get_mut(&zone).ok_or_else(|| error(&format!("No such zone was found: {zone}")))?;
            let expire = soa_expire(recs);
            // Not atomic (api-facts §1.8 #19): each record set is written on its own, in file
            // order, so a refused one leaves the ones before it applied. With overwrite the
            // server sets each record set, else it adds each record.
            let mut sets: Vec<((String, String), Vec<Rec>)> = Vec::new();
            for r in imported {
                let key = (r.name.clone(), r.rtype.clone());
                match sets.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(r),
                    None => sets.push((key, vec![r])),
                }
            }
            for ((name, rtype), set) in sets {
                if set.iter().any(|r| r.ttl > expire) {
                    return Err(error(if overwrite {
                        "Cannot set records: TTL cannot be greater than SOA EXPIRE."
                    } else {
                        "Cannot add record: TTL cannot be greater than SOA EXPIRE."
                    }));
                }
                if overwrite {
                    recs.retain(|x| !(x.name == name && x.rtype == rtype));
                    recs.extend(set);
                } else {
                    for r in set {
                        if !recs
                            .iter()
                            .any(|x| x.name == r.name && x.rtype == r.rtype && same(&r.rtype, &x.rdata, &r.rdata))
                        {
                            recs.push(r);
                        }
                    }
                }
            }
            Ok(ok(json!({})))
        }
        _ => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}
