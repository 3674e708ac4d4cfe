//! `zonekeeper run` end to end: the real binary against a real git repository and the
//! Technitium double. Times in these tests are limits to wait for, never measurements.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use support::daemon::{Daemon, create_token, msg};
use support::technitium::Technitium;
use support::{Repo, committed, git};

const TOKEN: &str = "t0ken-run-4b1e";
const SECRET: &str = "webhook-secret-7d3a91c0";

fn settings(url: &str) -> String {
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns: {{type: technitium, url: \"{url}\", rateLimit: 1000, attempts: 1, timeoutSeconds: 5, concurrency: 1}}\n"
    )
}

fn records(mail: &str, extra: usize) -> String {
    let mut out = format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
         \x20 - {{name: \"@\", type: NS, value: ns.home.example.}}\n\
         \x20 - {{name: mail, type: A, value: {mail}}}\n\
         \x20 - {{name: www, type: CNAME, value: mail.home.example.}}\n"
    );
    for i in 0..extra {
        out.push_str(&format!("  - {{name: host{i}, type: A, value: 192.0.2.{}}}\n", 100 + i));
    }
    out
}

/// A test's world: the double, a committed repository, the operator's credentials and a
/// state document outside the repository.
struct World {
    dns: Technitium,
    repo: Repo,
    creds: support::Credentials,
    state_dir: tempfile::TempDir,
}

impl World {
    fn new(extra: usize) -> World {
        let dns = Technitium::start(TOKEN, "home.example");
        let repo = Repo::empty()
            .with_settings(&settings(&dns.url()))
            .with_records("home.example", &records("192.0.2.25", extra));
        let repo = committed(repo, "first");
        let creds = support::Credentials::new(&format!(
            "credentials:\n  - {{origin: \"{}\", tokenEnv: ZK_TEST_TOKEN}}\n",
            dns.url()
        ));
        World { dns, repo, creds, state_dir: tempfile::tempdir().expect("tmp") }
    }

    fn state(&self) -> std::path::PathBuf {
        self.state_dir.path().join("state.json")
    }

    fn start(&self, args: &[&str]) -> Daemon {
        let creds = self.creds.path();
        let env: [(&str, &OsStr); 3] = [
            ("ZONEKEEPER_CREDENTIALS", creds.as_os_str()),
            ("ZK_TEST_TOKEN", OsStr::new(TOKEN)),
            ("ZONEKEEPER_WEBHOOK_SECRET", OsStr::new(SECRET)),
        ];
        Daemon::start(self.repo.path(), &self.state(), args, &env)
    }

    fn commit(&self, records_yaml: &str, message: &str) {
        self.repo.write("records/home.example.yaml", records_yaml);
        git(&self.repo, &["commit", "-q", "-am", message]);
    }

    /// The A values the double holds at `name`.
    fn a(&self, name: &str) -> Vec<String> {
        self.dns
            .records("home.example")
            .into_iter()
            .filter(|r| r.name == name && r.rtype == "A")
            .map(|r| r.rdata["ipAddress"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn github_signature(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn webhook(d: &Daemon) -> u16 {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = github_signature(body);
    d.post("/api/v1/webhook/git", &[("X-Hub-Signature-256", &sig), ("X-GitHub-Event", "push")], body).status
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn a_commit_reaches_the_target_within_the_poll_interval() {
    let w = World::new(0);
    let d = w.start(&["--poll", "1", "--debounce", "100"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    w.commit(&records("192.0.2.26", 0), "move mail");
    // A 1 s poll and a 100 ms debounce: well within 4 s.
    d.wait_until(Duration::from_secs(4), "the new address at the target", || {
        w.a("mail.home.example") == ["192.0.2.26"]
    });
    let applied = d.wait_line(LONG, |l| msg(l) == "change" && l["fields"]["new"] == "192.0.2.26");
    let f = &applied["fields"];
    assert_eq!(
        (f["target_name"].as_str(), f["zone"].as_str(), f["op"].as_str()),
        (Some("tdns"), Some("home.example"), Some("update"))
    );
    assert_eq!((f["old"].as_str(), f["source"].as_str()), (Some("192.0.2.25"), Some("records/home.example.yaml:6")));
    assert!(applied["spans"][0]["app"] == "zonekeeper" && applied["spans"][0]["version"].is_string(), "{applied}");
    // The log never carries the target's token.
    assert!(!d.log().contains(TOKEN));
}

#[test]
fn a_webhook_applies_at_once_and_a_no_op_reconcile_writes_nothing() {
    let w = World::new(0);
    let d = w.start(&["--poll", "0", "--resync", "0", "--open-reads"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    let (subscribed, on) = std::sync::mpsc::channel();
    let events = std::thread::spawn({
        let api = d.api.clone();
        move || read_events(&api, Duration::from_secs(15), "192.0.2.27", subscribed)
    });
    on.recv_timeout(Duration::from_secs(10)).expect("the event stream answers");
    w.dns.clear_calls();
    w.commit(&records("192.0.2.27", 0), "move mail");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.a("mail.home.example"), ["192.0.2.25"], "no poll: nothing happens without the webhook");
    assert_eq!(webhook(&d), 202);
    d.wait_until(Duration::from_secs(5), "the webhook's change at the target", || {
        w.a("mail.home.example") == ["192.0.2.27"]
    });
    assert_eq!(w.dns.writes(), ["update A mail.home.example 192.0.2.25 -> 192.0.2.27"], "exactly the calls it needs");
    let seen = events.join().expect("events");
    assert!(seen.contains("event: change_applied") && seen.contains("\"result\":\"applied\""), "{seen}");
    assert!(seen.contains("event: reconcile_finished"), "{seen}");

    // A webhook with nothing new: no target is read, nothing is written.
    let before = d.finished().len();
    w.dns.clear_calls();
    assert_eq!(webhook(&d), 202);
    d.wait_until(LONG, "the second reconcile", || d.finished().len() > before);
    assert_eq!(d.finished().last().expect("a run")["fields"]["outcome"], "unchanged");
    assert!(w.dns.state.lock().unwrap().calls.is_empty(), "an unchanged commit reads no target");
    // An asked-for reconcile reads everything and still writes nothing.
    let token = create_token(&w.state(), "ops");
    let before = d.finished().len();
    assert_eq!(d.post("/api/v1/reconcile", &[("Authorization", &format!("Bearer {token}"))], b"").status, 202);
    d.wait_until(LONG, "the asked-for reconcile", || d.finished().len() > before);
    assert!(w.dns.writes().is_empty(), "a no-op reconcile makes zero writes");
    assert!(!w.dns.state.lock().unwrap().calls.is_empty(), "but it reads the target");

    // A webhook that is not signed with the secret is refused.
    let body = br#"{"ref":"refs/heads/main"}"#;
    assert_eq!(d.post("/api/v1/webhook/git", &[("X-Hub-Signature-256", "sha256=00")], body).status, 401);
    assert_eq!(d.post("/api/v1/webhook/git", &[("X-Gitlab-Token", "wrong")], body).status, 401);
    assert_eq!(d.post("/api/v1/webhook/git", &[("X-Gitlab-Token", SECRET)], body).status, 202);
}

/// Reads the event stream until `until` shows up or `limit` passes; says on `subscribed` when
/// the stream's head has arrived (the subscription is then in place).
fn read_events(api: &str, limit: Duration, until: &str, subscribed: std::sync::mpsc::Sender<()>) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(api).expect("connect");
    conn.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    conn.write_all(format!("GET /api/v1/events HTTP/1.1\r\nHost: {api}\r\n\r\n").as_bytes()).expect("write");
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen);
        if text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n") {
            let _ = subscribed.send(());
        }
        if text.contains(until)
            && text.contains("reconcile_finished")
            && text.rfind("reconcile_finished") > text.find(until)
        {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_burst_of_fifty_commits_is_a_few_reconciles() {
    let w = World::new(0);
    // A 1 s debounce: the burst is due 1 s after its last commit, and never later than 10 s
    // after its first.
    let d = w.start(&["--poll", "0", "--resync", "0", "--debounce", "1000"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    let before = d.finished().len();
    for i in 0..50 {
        w.commit(&records(&format!("192.0.2.{}", 150 + i), 0), &format!("commit {i}"));
        assert_eq!(webhook(&d), 202);
    }
    d.wait_until(LONG, "the last commit at the target", || w.a("mail.home.example") == ["192.0.2.199"]);
    std::thread::sleep(Duration::from_millis(1500));
    let runs = d.finished().len() - before;
    assert!((1..=3).contains(&runs), "50 commits made {runs} reconciles:\n{}", d.log());
}

#[test]
fn a_target_that_answers_500_fails_the_reconcile_which_is_retried_and_reported() {
    let w = World::new(0);
    w.dns.state.lock().unwrap().fail_next = vec![500; 3];
    let d = w.start(&["--poll", "0"]);
    let failed = d.wait_line(LONG, |l| msg(l) == "reconcile finished" && l["fields"]["errors"].as_u64() > Some(0));
    assert_eq!(failed["fields"]["trigger"], "startup");
    // While it fails, the process stays ready and says what is wrong.
    let ready = d.ops_get("/readyz");
    assert_eq!(ready.status, 200, "a failing target does not make the process unready: {}", ready.body);
    let body = ready.json();
    assert_ne!(body["targets"]["tdns"]["state"], "ok", "{body}");
    assert!(body["targets"]["tdns"]["error"].as_str().unwrap_or("").contains("500"), "{body}");
    let metrics = d.ops_get("/metrics").body;
    assert!(
        metrics.contains(
            "zonekeeper_target_requests_total{target=\"tdns\",endpoint=\"/api/zones/records/get\",status=\"http_500\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("zonekeeper_reconcile_errors_total{reason="), "{metrics}");
    // The retries go on with backoff until the server answers, and the records arrive.
    d.wait_until(Duration::from_secs(30), "the retried sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    let retried = d.finished().iter().filter(|l| l["fields"]["trigger"] == "retry").count();
    assert!(retried >= 1, "{}", d.log());
    d.wait_until(LONG, "tdns ok again", || d.ops_get("/readyz").json()["targets"]["tdns"]["state"] == "ok");
    let metrics = d.ops_get("/metrics").body;
    assert!(metrics.contains("zonekeeper_source_up{source=\"git\"} 1"), "{metrics}");
    assert!(
        metrics.contains("zonekeeper_changes_applied_total{zone=\"home.example\",target=\"tdns\",op=\"create\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("zonekeeper_records{zone=\"home.example\",target=\"tdns\",view=\"default\",state=\"in_sync\"} 2"),
        "{metrics}"
    );
}

#[test]
fn an_invalid_commit_keeps_the_last_good_state_applied_also_after_a_restart() {
    let w = World::new(0);
    let d = w.start(&["--poll", "1", "--debounce", "100"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    let good = git(&w.repo, &["rev-parse", "HEAD"]);
    w.commit("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n  - {name: mail, type: A, value: not-an-address}\n", "broken");
    d.wait_until(LONG, "the source degraded", || d.ops_get("/readyz").json()["sources"]["git"]["state"] == "degraded");
    let ready = d.ops_get("/readyz").json();
    assert!(ready["sources"]["git"]["error"].as_str().unwrap_or("").contains("records/home.example.yaml:5"), "{ready}");
    assert_eq!(w.a("mail.home.example"), ["192.0.2.25"], "nothing deleted: the last good state stands");
    assert!(w.dns.writes().iter().all(|x| x.starts_with("add")), "{:?}", w.dns.writes());
    assert!(d.ops_get("/metrics").body.contains("zonekeeper_source_up{source=\"git\"} 0"));
    drop(d);

    // A restart onto the bad commit applies the remembered good one.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.state()).expect("state")).expect("json");
    assert!(doc["lastGood"].as_object().expect("lastGood").values().any(|v| v["commit"] == good.as_str()), "{doc}");
    w.dns.clear_calls();
    let d = w.start(&["--poll", "0", "--open-reads"]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished");
    let status = d.get("/api/v1/status", None).json();
    assert_eq!(status["commit"], good.as_str(), "{status}");
    assert_eq!(status["sources"]["git"]["state"], "degraded");
    assert!(w.dns.writes().is_empty(), "in sync with the last good commit: {:?}", w.dns.writes());
}

#[test]
fn sigterm_mid_apply_finishes_the_write_in_flight_and_the_next_start_finishes_the_job() {
    let w = World::new(12);
    w.dns.state.lock().unwrap().write_delay = Some(Duration::from_millis(300));
    let mut d = w.start(&["--poll", "0"]);
    d.wait_until(LONG, "the first writes", || w.dns.writes().len() >= 2);
    let code = d.signal(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(code, Some(0), "a clean stop: {}", d.log());
    let done = w.dns.writes().len();
    assert!(done < 14, "it stopped sending: {done} writes");
    consistent(&w);
    drop(d);
    w.dns.state.lock().unwrap().write_delay = None;
    let d = w.start(&["--poll", "0"]);
    d.wait_until(LONG, "every record", || (0..12).all(|i| w.a(&format!("host{i}.home.example")).len() == 1));
    consistent(&w);
}

#[test]
fn sigkill_mid_apply_then_a_restart_ends_in_the_wanted_state() {
    let w = World::new(0);
    let mut d = w.start(&["--poll", "0"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    d.wait_until(LONG, "the state document", || w.state().exists());
    let first = std::fs::read_to_string(w.state()).expect("state");
    // Twelve new records on a slow server, and the process killed while it writes them.
    w.dns.state.lock().unwrap().write_delay = Some(Duration::from_millis(200));
    w.dns.clear_calls();
    w.commit(&records("192.0.2.25", 12), "twelve more");
    assert_eq!(webhook(&d), 202);
    d.wait_until(LONG, "the first writes", || w.dns.writes().len() >= 3);
    assert_eq!(d.signal(libc::SIGKILL, Duration::from_secs(5)), None, "killed");
    consistent(&w);
    drop(d);
    let text = std::fs::read_to_string(w.state()).expect("the state document is still there");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the state document is intact");
    assert_eq!(text, first, "the killed run had not finished: the last good commit is still the first: {doc}");
    w.dns.state.lock().unwrap().write_delay = None;
    let d = w.start(&["--poll", "0"]);
    d.wait_until(LONG, "every record", || (0..12).all(|i| w.a(&format!("host{i}.home.example")).len() == 1));
    consistent(&w);
    assert_eq!(w.a("mail.home.example"), ["192.0.2.25"]);
}

/// Every record at the target is ours, whole, and at most once per name and value.
fn consistent(w: &World) {
    let recs = w.dns.records("home.example");
    let mut seen = std::collections::BTreeSet::new();
    for r in recs.iter().filter(|r| r.rtype != "SOA" && r.rtype != "NS") {
        assert_eq!(r.comments.as_deref(), Some("zonekeeper:owner=example-home"), "{r:?}");
        assert!(seen.insert((r.name.clone(), r.rtype.clone(), r.rdata.to_string())), "duplicate {r:?}");
    }
}

#[test]
fn tokens_guard_the_api() {
    let w = World::new(0);
    let d = w.start(&["--poll", "0", "--resync", "0"]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished");
    // Reads are closed without --open-reads; nothing is said about why.
    let r = d.get("/api/v1/status", None);
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    let r = d.post("/api/v1/reconcile", &[], b"");
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    let r = d.post("/api/v1/reconcile", &[("Authorization", "Bearer zk_0000")], b"");
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    let token = create_token(&w.state(), "ci");
    let bearer = format!("Bearer {token}");
    assert_eq!(d.post("/api/v1/reconcile", &[("Authorization", &bearer)], b"").status, 202);
    assert_eq!(d.get("/api/v1/status", Some(&token)).status, 200);
    let records = d.get("/api/v1/records", Some(&token)).json();
    let rows = records["records"].as_array().expect("rows");
    let mail = rows.iter().find(|r| r["name"] == "mail.home.example").expect("mail");
    assert_eq!(
        (mail["state"].as_str(), mail["source"].as_str()),
        (Some("in_sync"), Some("records/home.example.yaml:6"))
    );
    let plan = d.get("/api/v1/plan", Some(&token)).json();
    assert_eq!(plan["version"], 1, "the JSON of plan --format json: {plan}");
    // Revoked: refused at once.
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
        .args(["token", "revoke", "ci", "--state"])
        .arg(w.state())
        .output()
        .expect("revoke");
    assert!(out.status.success());
    let r = d.post("/api/v1/reconcile", &[("Authorization", &bearer)], b"");
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    // Guessing is slowed down: past a burst of failures the address waits.
    let codes: Vec<u16> =
        (0..15).map(|_| d.post("/api/v1/reconcile", &[("Authorization", "Bearer zk_guess")], b"").status).collect();
    assert!(codes.contains(&429), "{codes:?}");
    // A valid token from the same address still gets through: others' failures lock no one out.
    let other = create_token(&w.state(), "ci2");
    let r = d.post("/api/v1/reconcile", &[("Authorization", &format!("Bearer {other}"))], b"");
    assert_eq!(r.status, 202);
    let stored = std::fs::read_to_string(w.state()).expect("state");
    assert!(!stored.contains(token.trim_start_matches("zk_")));
}

#[test]
fn once_exits_like_apply_and_dry_run_never_writes() {
    let w = World::new(0);
    let creds = w.creds.path();
    let env: [(&str, &OsStr); 2] =
        [("ZONEKEEPER_CREDENTIALS", creds.as_os_str()), ("ZK_TEST_TOKEN", OsStr::new(TOKEN))];
    let state = w.state();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--once", "--state", state.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        w.repo.run_env(&all, &env)
    };
    run(&["--dry-run"]).expect_code(0);
    assert!(w.dns.writes().is_empty(), "a dry run writes nothing");
    run(&[]).expect_code(0);
    assert_eq!(w.a("mail.home.example"), ["192.0.2.25"]);
    w.dns.state.lock().unwrap().fail_next = vec![500];
    run(&[]).expect_code(1);
}

#[test]
fn a_scrape_passes_promtool() {
    let w = World::new(3);
    let d = w.start(&["--poll", "0"]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished" && l["fields"]["applied"] == 5);
    // Prometheus asks for OpenMetrics and gets it; promtool reads the classic format, which
    // a scrape that does not ask gets.
    let open = support::daemon::request(
        &d.ops,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        b"",
    );
    assert!(open.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/openmetrics-text")));
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    let scrape = d.ops_get("/metrics");
    assert!(scrape.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/plain; version=0.0.4")));
    for name in [
        "zonekeeper_records{",
        "zonekeeper_changes_applied_total{",
        "zonekeeper_target_requests_total{",
        "zonekeeper_target_request_duration_seconds_bucket{",
        "zonekeeper_reconcile_duration_seconds_bucket{",
        "zonekeeper_source_up{",
        "zonekeeper_last_reconcile_success_timestamp_seconds ",
        "zonekeeper_git_commit_info{",
        "zonekeeper_build_info{",
        "zonekeeper_leader ",
    ] {
        assert!(scrape.body.contains(name), "no {name} in\n{}", scrape.body);
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (apt-get install prometheus)");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(scrape.body.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n---\n{}", scrape.body);
}

#[test]
fn sighup_reloads_the_credentials_and_keeps_the_tokens_read_from_the_environment() {
    let w = World::new(0);
    let mut d = w.start(&["--poll", "1", "--debounce", "100"]);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) };
    d.wait_line(LONG, |l| msg(l) == "SIGHUP: the settings were reloaded");
    d.wait_line(LONG, |l| msg(l) == "reconcile finished" && l["fields"]["trigger"] == "reload");
    w.commit(&records("192.0.2.28", 0), "move mail");
    d.wait_until(LONG, "the change after the reload", || w.a("mail.home.example") == ["192.0.2.28"]);
    assert_eq!(d.signal(libc::SIGTERM, Duration::from_secs(10)), Some(0));
}

#[test]
fn the_api_is_served_over_tls_when_a_certificate_is_given() {
    let w = World::new(0);
    let certs = tempfile::tempdir().expect("tmp");
    let (_, _, ca) = support::test_ca_and_server_cert(certs.path());
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let d = w.start(&[
        "--poll",
        "0",
        "--open-reads",
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let status = rt.block_on(async {
        let root = reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("ca")).expect("pem");
        let client = reqwest::Client::builder().tls_certs_merge([root]).build().expect("client");
        let r = client.get(format!("https://{}/api/v1/status", d.api)).send().await.expect("https");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    });
    assert_eq!(status.0, 200, "{}", status.1);
    assert!(status.1.contains("\"settings_loaded\":true"), "{}", status.1);
    // Plain http to the TLS port gets no answer it could read.
    assert_ne!(d.get("/api/v1/status", None).status, 200);
    // A client that does not trust the certificate is refused by its own TLS check.
    let untrusted = rt.block_on(async { reqwest::get(format!("https://{}/api/v1/status", d.api)).await });
    assert!(untrusted.is_err());
    // The metrics port stays plain http, for scrapes and probes.
    assert_eq!(d.ops_get("/healthz").status, 200);
}

#[test]
fn a_zone_that_cannot_be_read_keeps_what_was_known_of_it() {
    let w = World::new(0);
    let d = w.start(&["--poll", "0", "--resync", "0", "--open-reads"]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished" && l["fields"]["applied"] == 2);
    let names = |d: &Daemon| -> Vec<String> {
        let r = d.get("/api/v1/records", None).json();
        r["records"].as_array().expect("rows").iter().map(|r| r["name"].as_str().unwrap_or("").to_string()).collect()
    };
    let before = names(&d);
    assert!(before.contains(&"mail.home.example".to_string()), "{before:?}");
    w.dns.state.lock().unwrap().fail_next = vec![500; 100];
    let token = create_token(&w.state(), "ops");
    let runs = d.finished().len();
    assert_eq!(d.post("/api/v1/reconcile", &[("Authorization", &format!("Bearer {token}"))], b"").status, 202);
    d.wait_until(LONG, "the failed reconcile", || d.finished().len() > runs);
    assert!(d.finished().last().expect("run")["fields"]["errors"].as_u64() > Some(0));
    assert_eq!(names(&d), before, "an unreadable zone never reads as empty");
    let metrics = d.ops_get("/metrics").body;
    assert!(
        metrics
            .contains("zonekeeper_records{zone=\"home.example\",target=\"tdns\",view=\"default\",state=\"in_sync\"} 2"),
        "{metrics}"
    );
    assert_ne!(d.ops_get("/readyz").json()["targets"]["tdns"]["state"], "ok");
}

#[test]
fn a_remote_that_cannot_be_fetched_is_a_degraded_source_and_its_last_commit_stays_applied() {
    let w = World::new(0);
    let remotes = tempfile::tempdir().expect("tmp");
    let bare = remotes.path().join("dns.git");
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(w.repo.path())
        .arg(&bare)
        .output()
        .expect("git");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = format!("file://{}", bare.display());
    let creds = w.creds.path();
    let env: [(&str, &OsStr); 2] =
        [("ZONEKEEPER_CREDENTIALS", creds.as_os_str()), ("ZK_TEST_TOKEN", OsStr::new(TOKEN))];
    // The remote's settings name the target's URL; relative paths would be the current
    // directory's, and a Technitium target has none.
    let d = Daemon::start(Path::new(&url), &w.state(), &["--poll", "1", "--debounce", "100", "--ref", "main"], &env);
    d.wait_until(LONG, "the first sync", || w.a("mail.home.example") == ["192.0.2.25"]);
    std::fs::rename(&bare, remotes.path().join("gone.git")).expect("move the remote away");
    d.wait_until(LONG, "the source degraded", || d.ops_get("/readyz").json()["sources"]["git"]["state"] == "degraded");
    let ready = d.ops_get("/readyz").json();
    assert!(ready["sources"]["git"]["error"].as_str().unwrap_or("").contains("fetching"), "{ready}");
    assert!(d.ops_get("/metrics").body.contains("zonekeeper_source_up{source=\"git\"} 0"));
    assert_eq!(w.a("mail.home.example"), ["192.0.2.25"], "the last fetched commit stays applied");
}

#[test]
fn targets_are_built_once_and_keep_their_connection_across_reconciles() {
    let w = World::new(0);
    let d = w.start(&["--poll", "0", "--resync", "0"]);
    d.wait_line(LONG, |l| msg(l) == "reconcile finished" && l["fields"]["applied"] == 2);
    let token = create_token(&w.state(), "ops");
    let bearer = format!("Bearer {token}");
    for _ in 0..3 {
        let runs = d.finished().len();
        assert_eq!(d.post("/api/v1/reconcile", &[("Authorization", &bearer)], b"").status, 202);
        d.wait_until(LONG, "the asked-for reconcile", || d.finished().len() > runs);
    }
    let calls = w.dns.state.lock().unwrap().calls.len();
    let connections = w.dns.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(calls >= 6, "four reconciles read the zone each time (and the first wrote two sets): {calls} calls");
    assert_eq!(connections, 1, "one kept connection for {calls} calls over four reconciles");
}
