//! The Technitium target against the API double: the exact calls each plan makes, ownership,
//! errors that arrive as HTTP 200, retries, and secrets kept out of output.

mod support;

use support::Repo;
use support::technitium::{Rec, Technitium};

const TOKEN: &str = "t0ken-6f1d2a9c";

fn settings(url: &str, attempts: u32) -> String {
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns: {{type: technitium, url: \"{url}\", rateLimit: 1000, attempts: {attempts}, timeoutSeconds: 5}}\n"
    )
}

const RECORDS: &str = r#"apiVersion: zonekeeper.dev/v1alpha1
kind: Records
zone: home.example
records:
  - {name: "@", type: NS, value: ns.home.example.}
  - {name: "@", type: A, value: 192.0.2.10}
  - {name: mail, type: A, value: 192.0.2.25}
  - {name: multi, type: A, values: [192.0.2.1, 192.0.2.2]}
  - {name: www, type: CNAME, value: home.example.}
  - {name: "@", type: MX, value: 10 mail.home.example.}
  - {name: "@", type: TXT, value: "v=spf1 mx -all"}
  - {name: _https._tcp, type: SRV, value: 10 5 443 mail.home.example.}
  - {name: "@", type: CAA, value: 0 issue "letsencrypt.org"}
"#;

/// The operator's credentials as a user of one server has them: the token in ZK_TEST_TOKEN,
/// bound to the origin of every Technitium URL the repository's settings name.
fn bound_to_settings(repo: &Repo) -> String {
    let settings = repo.read("zonekeeper.yaml").unwrap_or_default();
    let mut yaml = String::from("credentials:\n");
    for url in settings.split("url: \"").skip(1).filter_map(|rest| rest.split('"').next()) {
        yaml.push_str(&format!("  - {{origin: \"{url}\", tokenEnv: ZK_TEST_TOKEN}}\n"));
    }
    yaml
}

fn run(repo: &Repo, token: &str, args: &[&str]) -> support::Run {
    run_with(repo, token, &bound_to_settings(repo), args)
}

/// Runs with `credentials` as the operator's credentials file (outside the repository).
fn run_with(repo: &Repo, token: &str, credentials: &str, args: &[&str]) -> support::Run {
    let creds = support::Credentials::new(credentials);
    let path = creds.path();
    repo.run_env(args, &[("ZONEKEEPER_CREDENTIALS", path.as_os_str()), ("ZK_TEST_TOKEN", token.as_ref())])
}

fn setup(attempts: u32) -> (Technitium, Repo) {
    let dns = Technitium::start(TOKEN, "home.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), attempts)).with_records("home.example", RECORDS);
    (dns, repo)
}

#[test]
fn first_sync_creates_everything_and_a_no_op_makes_zero_writes() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let mut writes = dns.writes();
    writes.sort();
    assert_eq!(
        writes,
        [
            "add A home.example 192.0.2.10",
            "add A mail.home.example 192.0.2.25",
            "add A multi.home.example 192.0.2.1",
            "add A multi.home.example 192.0.2.2",
            "add CAA home.example letsencrypt.org",
            "add CNAME www.home.example home.example",
            "add MX home.example mail.home.example",
            "add SRV _https._tcp.home.example mail.home.example",
            "add TXT home.example v=spf1 mx -all",
        ],
        "the zone's own NS is the server's: never added"
    );
    assert!(
        dns.records("home.example")
            .iter()
            .filter(|r| r.rtype != "SOA" && r.rtype != "NS")
            .all(|r| r.comments.as_deref() == Some("zonekeeper:owner=example-home"))
    );

    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let state = dns.state.lock().unwrap();
    assert!(state.calls.iter().all(|c| !c.is_write()), "no write on a no-op: {:?}", state.calls);
    // plan and apply each read the zone once, and do nothing else
    let endpoints: Vec<&str> = state.calls.iter().map(|c| c.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["/api/zones/records/get", "/api/zones/records/get"]);
}

#[test]
fn a_changed_address_is_one_add_and_one_delete_and_a_removed_record_one_delete() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    dns.clear_calls();
    let repo = repo.with_records("home.example", &RECORDS.replace("192.0.2.25", "192.0.2.26"));
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(
        dns.writes(),
        ["update A mail.home.example 192.0.2.25 -> 192.0.2.26"],
        "a changed address is one update"
    );
    let mail: Vec<Rec> = dns.records("home.example").into_iter().filter(|r| r.name == "mail.home.example").collect();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].comments.as_deref(), Some("zonekeeper:owner=example-home"), "the update keeps our marker");
    assert_eq!(mail[0].ttl, 300, "and the TTL");

    dns.clear_calls();
    let repo = repo.with_records(
        "home.example",
        &RECORDS.replace("192.0.2.25", "192.0.2.26").replace(
            "  - {name: multi, type: A, values: [192.0.2.1, 192.0.2.2]}\n",
            "  - {name: multi, type: A, value: 192.0.2.2}\n",
        ),
    );
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(dns.writes(), ["delete A multi.home.example 192.0.2.1"], "one value of several: the other stays");
    assert!(
        dns.records("home.example")
            .iter()
            .any(|r| r.name == "multi.home.example" && r.rdata["ipAddress"] == "192.0.2.2")
    );
}

#[test]
fn a_ttl_change_rewrites_the_set_keeping_every_owner_marker() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    dns.clear_calls();
    let repo = repo.with_records(
        "home.example",
        &RECORDS.replace("values: [192.0.2.1, 192.0.2.2]}", "values: [192.0.2.1, 192.0.2.2], ttl: 60}"),
    );
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(dns.writes(), ["add A multi.home.example 192.0.2.1", "add A multi.home.example 192.0.2.2"]);
    let multi: Vec<Rec> = dns.records("home.example").into_iter().filter(|r| r.name == "multi.home.example").collect();
    assert_eq!(multi.len(), 2);
    assert!(
        multi.iter().all(|r| r.ttl == 60 && r.comments.as_deref() == Some("zonekeeper:owner=example-home")),
        "{multi:?}"
    );
    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_large_first_sync_is_one_import_and_then_in_sync() {
    let (dns, repo) = setup(3);
    let mut records = RECORDS.to_string();
    for i in 0..60 {
        records.push_str(&format!("  - {{name: h{i}, type: A, value: 10.0.0.{i}}}\n"));
    }
    records.push_str("  - {name: quoted, type: TXT, value: \"say \\\"hi\\\"\"}\n");
    let repo = repo.with_records("home.example", &records);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    // the TXT with quotes cannot survive an import unchanged, so it goes on its own
    assert_eq!(dns.writes(), ["import home.example", "add TXT quoted.home.example say \"hi\""]);
    // the import adds, never replaces: a set someone added since our read would be kept
    let import_overwrite =
        dns.state.lock().unwrap().calls.iter().find(|c| c.is_write()).and_then(|c| c.params.get("overwrite").cloned());
    assert_eq!(import_overwrite.as_deref(), Some("false"));
    let recs = dns.records("home.example");
    assert_eq!(recs.iter().filter(|r| r.comments.as_deref() == Some("zonekeeper:owner=example-home")).count(), 70);
    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_changed_cname_is_replaced_in_one_call() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    dns.clear_calls();
    let repo = repo.with_records(
        "home.example",
        &RECORDS.replace(
            "{name: www, type: CNAME, value: home.example.}",
            "{name: www, type: CNAME, value: mail.home.example.}",
        ),
    );
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(dns.writes(), ["add CNAME www.home.example mail.home.example"]);
    assert_eq!(
        dns.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .find(|c| c.is_write())
            .unwrap()
            .params
            .get("overwrite")
            .map(String::as_str),
        Some("true")
    );
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_missing_zone_is_not_confused_with_its_parent() {
    // The server answers for the closest zone it has: `example` for `home.example`.
    let dns = Technitium::start(TOKEN, "example");
    let ours_in_parent = Rec::new(
        "old.home.example",
        "A",
        serde_json::json!({"ipAddress": "192.0.2.7"}),
        Some("zonekeeper:owner=example-home"),
    );
    dns.insert("example", ours_in_parent.clone());
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", RECORDS);
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.stderr().contains("zone home.example does not exist on the server"), "{}", out.stderr());
    assert!(dns.writes().is_empty());
    assert!(dns.records("example").contains(&ours_in_parent));
}

#[test]
fn plan_never_writes_even_when_it_may_create_zones() {
    let dns = Technitium::start(TOKEN, "other.example");
    let repo = Repo::empty()
        .with_settings(&settings(&dns.url(), 3).replace("timeoutSeconds: 5}", "timeoutSeconds: 5, createZones: true}"))
        .with_records("home.example", RECORDS);
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(dns.writes().is_empty(), "{:?}", dns.writes());
}

#[test]
fn a_lost_answer_is_retried_without_a_duplicate() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    dns.clear_calls();
    // the first apply made 9 writes; the 10th of the double's life is this run's add:
    // it lands, and its answer is lost
    assert_eq!(dns.state.lock().unwrap().calls.len(), 0);
    dns.state.lock().unwrap().lose_answer_at = Some(9);
    let repo = repo.with_records("home.example", &RECORDS.replace("192.0.2.25", "192.0.2.26"));
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(
        dns.writes(),
        ["update A mail.home.example 192.0.2.25 -> 192.0.2.26", "update A mail.home.example 192.0.2.25 -> 192.0.2.26"]
    );
    let mail: Vec<Rec> = dns.records("home.example").into_iter().filter(|r| r.name == "mail.home.example").collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
}

#[test]
fn a_cname_can_become_an_address_in_one_run() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    dns.clear_calls();
    let repo = repo.with_records(
        "home.example",
        &RECORDS.replace("{name: www, type: CNAME, value: home.example.}", "{name: www, type: A, value: 192.0.2.80}"),
    );
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(dns.writes(), ["delete CNAME www.home.example home.example", "add A www.home.example 192.0.2.80"]);
}

#[test]
fn non_ascii_text_is_refused_for_a_technitium_zone() {
    let (_dns, repo) = setup(3);
    let repo = repo.with_records("home.example", &RECORDS.replace("v=spf1 mx -all", "café"));
    let out = run(&repo, TOKEN, &["validate"]).expect_code(1);
    assert!(out.stdout().contains("records/home.example.yaml:11:1: value: zone `home.example` is kept on Technitium target `tdns`, which stores text as ASCII"), "{}", out.stdout());
}

#[test]
fn create_zones_creates_a_missing_zone_first() {
    let dns = Technitium::start(TOKEN, "other.example");
    let repo = Repo::empty()
        .with_settings(&settings(&dns.url(), 3).replace("timeoutSeconds: 5}", "timeoutSeconds: 5, createZones: true}"))
        .with_records("home.example", RECORDS);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert_eq!(dns.writes()[0], "create Primary");
    assert!(dns.records("home.example").iter().any(|r| r.name == "mail.home.example"));
}

#[test]
fn an_unowned_record_is_left_alone_and_reported() {
    let (dns, repo) = setup(3);
    let hand_made =
        Rec::new("mail.home.example", "A", serde_json::json!({"ipAddress": "192.0.2.99"}), Some("added by hand"));
    dns.insert("home.example", hand_made.clone());
    let plan = run(&repo, TOKEN, &["plan"]).expect_code(0).stdout();
    assert!(plan.contains("drift: mail.home.example A holds 192.0.2.99 without our owner marker"), "{plan}");
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert!(
        !dns.writes().iter().any(|w| w.starts_with("add A mail.") || w.starts_with("delete A mail.")),
        "{:?}",
        dns.writes()
    );
    assert!(dns.records("home.example").contains(&hand_made));
}

#[test]
fn a_disabled_record_at_a_wanted_name_is_never_replaced() {
    let (dns, repo) = setup(3);
    let disabled = {
        let mut r = Rec::new(
            "mail.home.example",
            "A",
            serde_json::json!({"ipAddress": "192.0.2.98"}),
            Some("zonekeeper:owner=example-home"),
        );
        r.disabled = true;
        r
    };
    dns.insert("home.example", disabled.clone());
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert!(!dns.writes().iter().any(|w| w.starts_with("add A mail.")), "{:?}", dns.writes());
    assert!(dns.records("home.example").contains(&disabled));
}

#[test]
fn a_wrong_token_is_a_clear_error_and_writes_nothing() {
    let (dns, repo) = setup(3);
    let out = run(&repo, "wrong", &["apply"]).expect_code(1);
    assert!(
        out.stderr().contains("Technitium rejected the API token: Invalid token or session expired."),
        "{}",
        out.stderr()
    );
    assert!(dns.writes().is_empty());
    assert!(!out.all().contains(TOKEN) && !out.all().contains("wrong"), "no token in output");
}

#[test]
fn a_missing_token_variable_names_the_variable() {
    let (_dns, repo) = setup(3);
    let creds = support::Credentials::new(&bound_to_settings(&repo));
    let out = assert_cmd::Command::cargo_bin("zonekeeper")
        .unwrap()
        .arg("--repo")
        .arg(repo.path())
        .args(["plan"])
        .env("ZONEKEEPER_CREDENTIALS", creds.path())
        .env_remove("ZK_TEST_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("environment variable ZK_TEST_TOKEN is not set"), "{err}");
}

#[test]
fn a_5xx_mid_apply_leaves_the_rest_applied_and_a_second_run_finishes() {
    let (dns, repo) = setup(1);
    dns.state.lock().unwrap().fail_write_at = Some(3);
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.stdout().contains("applied: 7 of 8 change(s) to home.example on tdns"), "{}", out.stdout());
    // every change is reported with its result
    assert_eq!(out.stdout().matches("\n  ok      ").count(), 7, "{}", out.stdout());
    assert_eq!(out.stdout().matches("\n  failed  ").count(), 1, "{}", out.stdout());
    assert!(out.stdout().contains("Technitium answered HTTP 500 on /api/zones/records/add"), "{}", out.stdout());
    // the same as JSON: one report, every change with its result, and not complete
    dns.clear_calls();
    let v: serde_json::Value = {
        let (dns2, repo2) = setup(1);
        dns2.state.lock().unwrap().fail_write_at = Some(3);
        let out = run(&repo2, TOKEN, &["apply", "--format", "json"]).expect_code(1);
        serde_json::from_str(&out.stdout()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout()))
    };
    assert_eq!(v["complete"], false, "{v}");
    let changes = v["results"][0]["changes"].as_array().unwrap();
    assert_eq!(changes.iter().filter(|c| c["result"] == "applied").count(), 7, "{v}");
    let failed: Vec<_> = changes.iter().filter(|c| c["result"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{v}");
    assert!(failed[0]["message"].as_str().unwrap().contains("HTTP 500"), "{v}");
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    // only the failed change is redone (one set: one name and type)
    let redo = dns.writes();
    let key = |w: &String| w.split(' ').take(3).collect::<Vec<_>>().join(" ");
    assert!(!redo.is_empty() && redo.iter().all(|w| key(w) == key(&redo[0])), "{redo:?}");
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn transient_errors_are_retried_with_backoff() {
    let (dns, repo) = setup(3);
    dns.state.lock().unwrap().fail_next = vec![503, 502];
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(2);
    let calls = dns.state.lock().unwrap().calls.len();
    assert_eq!(calls, 3, "two failures, then the one read");
}

#[test]
fn a_429_is_retried_after_its_retry_after_and_retries_are_logged() {
    let (dns, repo) = setup(3);
    dns.state.lock().unwrap().fail_next = vec![429];
    let out = run(&repo, TOKEN, &["--log-level", "info", "plan", "--detailed-exitcode"]).expect_code(2);
    assert_eq!(dns.state.lock().unwrap().calls.len(), 2, "the refused read, then the read");
    // the wait is the one the answer asked for (2 s), not the first backoff step (1 s)
    let retry = out.stderr().lines().find(|l| l.contains("request failed; retrying")).map(str::to_string);
    let retry = retry.unwrap_or_else(|| panic!("the retry is logged at info:\n{}", out.stderr()));
    assert!(retry.contains("\"wait_seconds\":2") && retry.contains("HTTP 429"), "{retry}");
}

#[test]
fn the_server_down_then_up_is_waited_for() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let repo =
        Repo::empty().with_settings(&settings(&format!("http://{addr}"), 4)).with_records("home.example", RECORDS);
    // The double comes up while the client is backing off (1 s, then 2 s, then 4 s).
    let starter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Technitium::start_on(std::net::TcpListener::bind(addr).unwrap(), TOKEN, "home.example")
    });
    let creds = support::Credentials::new(&bound_to_settings(&repo));
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
        .arg("--repo")
        .arg(repo.path())
        .args(["plan", "--detailed-exitcode"])
        .env("ZONEKEEPER_CREDENTIALS", creds.path())
        .env("ZK_TEST_TOKEN", TOKEN)
        .output()
        .unwrap();
    let _dns = starter.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_missing_zone_is_named_and_nothing_is_written() {
    let dns = Technitium::start(TOKEN, "other.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", RECORDS);
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(
        out.stderr().contains("zone home.example does not exist on the server (set createZones: true"),
        "{}",
        out.stderr()
    );
    assert!(dns.writes().is_empty());
}

#[test]
fn hostile_values_from_the_server_are_left_alone() {
    let (dns, repo) = setup(3);
    for (name, text) in [("evil", "line\nbreak"), ("huge", &"x".repeat(70_000))] {
        dns.insert(
            "home.example",
            Rec {
                name: format!("{name}.home.example"),
                rtype: "TXT".into(),
                ttl: 300,
                disabled: false,
                comments: Some("zonekeeper:owner=example-home".into()),
                rdata: serde_json::json!({"text": text, "splitText": false}),
            },
        );
    }
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert!(!dns.writes().iter().any(|w| w.contains("evil") || w.contains("huge")));
    assert_eq!(
        dns.records("home.example").iter().filter(|r| r.name.starts_with("evil") || r.name.starts_with("huge")).count(),
        2
    );
}

#[test]
fn export_writes_the_live_records_as_yaml_that_plans_to_no_change() {
    let (dns, repo) = setup(3);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let yaml = run(&repo, TOKEN, &["export", "--target", "tdns", "--zone", "home.example"]).expect_code(0).stdout();
    assert!(yaml.contains("{name: \"multi\", type: A, ttl: 300, values: [\"192.0.2.1\", \"192.0.2.2\"]}"), "{yaml}");
    let copy = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", &yaml);
    run(&copy, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn tls_settings_are_checked_and_skipping_verification_is_warned_about() {
    let (dns, repo) = setup(3);
    let insecure =
        settings(&dns.url(), 3).replace("timeoutSeconds: 5}", "timeoutSeconds: 5, insecureSkipTlsVerify: true}");
    let repo = repo.with_settings(&insecure);
    // The repository alone cannot turn the checks off for a token...
    let out = run(&repo, TOKEN, &["plan"]).expect_code(1);
    assert!(out.stderr().contains("insecureSkipTlsVerify is not honoured for a token"), "{}", out.stderr());
    assert!(dns.state.lock().unwrap().calls.is_empty(), "nothing is sent");
    // ...the operator's credential can.
    let lax = bound_to_settings(&repo)
        .replace("tokenEnv: ZK_TEST_TOKEN}", "tokenEnv: ZK_TEST_TOKEN, insecureSkipTlsVerify: true}");
    let out = run_with(&repo, TOKEN, &lax, &["plan"]).expect_code(0);
    assert!(out.stderr().contains("TLS certificate checks are off for this target"), "{}", out.stderr());

    let repo = repo.with_settings(&settings(&dns.url(), 3));
    let ca = tempfile::tempdir().unwrap();
    let pem = ca.path().join("ca.pem");
    std::fs::write(&pem, "not a certificate\n").unwrap();
    let with_ca = bound_to_settings(&repo)
        .replace("tokenEnv: ZK_TEST_TOKEN}", &format!("tokenEnv: ZK_TEST_TOKEN, caFile: \"{}\"}}", pem.display()));
    let out = run_with(&repo, TOKEN, &with_ca, &["plan"]).expect_code(1);
    assert!(out.stderr().contains("ca.pem holds no PEM certificate"), "{}", out.stderr());
    std::fs::remove_file(&pem).unwrap();
    let out = run_with(&repo, TOKEN, &with_ca, &["plan"]).expect_code(1);
    assert!(out.stderr().contains("cannot read caFile"), "{}", out.stderr());
}

#[test]
fn a_ttl_above_the_soa_expire_holds_back_its_zone_on_that_target_only() {
    let dns = Technitium::start(TOKEN, "home.example");
    // the same zone also goes to zone files, which take any TTL
    let both = settings(&dns.url(), 1).replace("targets: [tdns]", "targets: [tdns, files]")
        + "  files: {type: zonefile, directory: zones}\n";
    let records = RECORDS
        .replace("{name: mail, type: A, value: 192.0.2.25}", "{name: mail, type: A, ttl: 700000, value: 192.0.2.25}");
    let repo = Repo::empty().with_settings(&both).with_records("home.example", &records);
    let plan = run(&repo, TOKEN, &["plan"]).expect_code(1);
    assert!(
        plan.stdout().contains("mail.home.example A (TTL 700000): TTL above 604800, the largest this target takes"),
        "{}",
        plan.all()
    );
    let json = run(&repo, TOKEN, &["plan", "--format", "json"]).expect_code(1).stdout();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let refusal =
        &json["targets"].as_array().unwrap().iter().find(|t| t["target"]["name"] == "tdns").unwrap()["refusals"][0];
    assert_eq!(refusal["kind"], "ttl_above_max");
    assert_eq!(refusal["sets"][0], serde_json::json!({"name": "mail.home.example", "type": "A", "ttl": 700000}));
    // --force cannot help; the zone files are written, Technitium gets nothing, the run fails
    let out = run(&repo, TOKEN, &["apply", "--force"]).expect_code(1);
    assert!(out.stderr().contains("home.example on tdns: target tdns: "), "{}", out.all());
    assert!(dns.writes().is_empty(), "{:?}", dns.writes());
    assert!(repo.read("zones/db.home.example").is_some_and(|z| z.contains("700000")), "{}", out.all());
    // a TTL at the limit goes through as it is
    let at_limit = RECORDS.replace("{name: mail, type: A,", "{name: mail, type: A, ttl: 604800,");
    let repo = repo.with_records("home.example", &at_limit);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let mail = dns.records("home.example").into_iter().find(|r| r.name == "mail.home.example");
    assert_eq!(mail.map(|r| r.ttl), Some(604800));
}

#[test]
fn a_zone_still_to_be_created_is_held_to_the_default_soa_expire() {
    let dns = Technitium::start(TOKEN, "other.example");
    let records = RECORDS
        .replace("{name: mail, type: A, value: 192.0.2.25}", "{name: mail, type: A, ttl: 700000, value: 192.0.2.25}");
    let repo = Repo::empty()
        .with_settings(&settings(&dns.url(), 1).replace("timeoutSeconds: 5}", "timeoutSeconds: 5, createZones: true}"))
        .with_records("home.example", &records);
    let plan = run(&repo, TOKEN, &["plan"]).expect_code(1).stdout();
    assert!(plan.contains("TTL above 604800"), "{plan}");
    run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(dns.writes().is_empty(), "not even the zone is created: {:?}", dns.writes());
}

#[test]
fn an_internal_zone_is_never_changed() {
    let (dns, repo) = setup(1);
    dns.mark_internal("home.example");
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.all().contains("Access was denied to manage internal DNS Server zone."), "{}", out.all());
    assert!(dns.records("home.example").iter().all(|r| r.rtype == "SOA" || r.rtype == "NS"));
}

#[test]
fn an_import_refused_part_way_keeps_what_went_in_and_the_next_plan_shows_the_rest() {
    let (dns, repo) = setup(1);
    let mut records = String::from(RECORDS);
    for i in 0..60 {
        records.push_str(&format!("  - {{name: host{i:02}, type: A, value: 192.0.2.{}}}\n", i + 100));
    }
    // one set in the middle of the import has a TTL of a day, and between zonekeeper's read
    // and its import an administrator lowers the zone's SOA EXPIRE below that
    let records = records.replace("{name: host30, type: A,", "{name: host30, type: A, ttl: 90000,");
    repo.write("records/home.example.yaml", &records);
    dns.state.lock().unwrap().before_first_write =
        Some(Box::new(|st| Technitium::set_soa_expire(st, "home.example", 86400)));
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.all().contains("stopped part-way") && out.all().contains("Cannot add record: TTL"), "{}", out.all());
    // a failed import is reported as failed for every set it carried, never as ok
    let stdout = out.stdout();
    let imported = stdout.lines().filter(|l| l.contains("create host")).collect::<Vec<_>>();
    assert_eq!(imported.len(), 60, "{stdout}");
    assert!(imported.iter().all(|l| l.starts_with("  failed  ") && l.contains("stopped part-way")), "{stdout}");
    assert!(stdout.contains("applied: 0 of 68 change(s) to home.example on tdns"), "{stdout}");
    let held: Vec<String> = dns.records("home.example").iter().map(|r| r.name.clone()).collect();
    assert!(held.contains(&"host00.home.example".to_string()), "sets before the refused one are in");
    assert!(!held.contains(&"host30.home.example".to_string()));
    // the next plan shows what is still missing, the refused set among it, and now knows why
    let plan = run(&repo, TOKEN, &["plan"]).expect_code(1).stdout();
    assert!(plan.contains("+ host30.home.example") && !plan.contains("+ host00.home.example"), "{plan}");
    assert!(plan.contains("host30.home.example A (TTL 90000): TTL above 86400"), "{plan}");
}

#[test]
fn clean_orphans_deletes_only_our_records_in_a_zone_no_longer_served() {
    let (dns, repo) = setup(1);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    // a zone that was once ours: one record of ours, one of someone else's
    let marker = Some("zonekeeper:owner=example-home");
    dns.add_zone("old.example");
    let ours = Rec::new("www.old.example", "A", serde_json::json!({"ipAddress": "192.0.2.9"}), marker);
    let theirs = Rec::new("mail.old.example", "A", serde_json::json!({"ipAddress": "192.0.2.8"}), None);
    dns.insert("old.example", ours.clone());
    dns.insert("old.example", theirs.clone());
    // and the server's own internal zone, which is never touched even with our marker in it
    dns.add_zone("localhost");
    dns.mark_internal("localhost");
    let internal = Rec::new("x.localhost", "A", serde_json::json!({"ipAddress": "127.0.0.2"}), marker);
    dns.insert("localhost", internal.clone());
    // and a zone an administrator disabled: left as it is
    dns.add_zone("paused.example");
    dns.state.lock().unwrap().disabled_zones.insert("paused.example".into());
    let paused = Rec::new("www.paused.example", "A", serde_json::json!({"ipAddress": "192.0.2.7"}), marker);
    dns.insert("paused.example", paused.clone());

    // off by default: unserved zones are not even read
    dns.clear_calls();
    let plan = run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0).stdout();
    assert!(!plan.contains("old.example"), "{plan}");
    assert!(dns.state.lock().unwrap().calls.iter().all(|c| c.endpoint != "/api/zones/list"));

    let repo = repo.with_settings(
        &settings(&dns.url(), 1).replace("timeoutSeconds: 5}", "timeoutSeconds: 5, cleanOrphans: true}"),
    );
    let plan = run(&repo, TOKEN, &["plan"]).expect_code(0).stdout();
    assert!(plan.contains("old.example on tdns") && plan.contains("- www.old.example"), "{plan}");
    assert!(!plan.contains("mail.old.example") && !plan.contains("localhost"), "{plan}");
    // emptying a zone of everything we own there is never silent, whatever its size
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.stderr().contains("would delete all 1 record set(s) we own in this zone"), "{}", out.all());
    assert!(dns.records("old.example").contains(&ours), "nothing is deleted without --force");
    run(&repo, TOKEN, &["apply", "--force"]).expect_code(0);
    let left = dns.records("old.example");
    assert!(!left.contains(&ours) && left.contains(&theirs), "{left:?}");
    assert!(dns.records("localhost").contains(&internal));
    assert!(dns.records("paused.example").contains(&paused));
    // nothing of ours is left there: the zone is no longer read as an orphan
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_type_without_documented_parameters_is_refused_for_its_zone_and_nothing_is_guessed() {
    let (dns, repo) = setup(3);
    let records = format!(
        "{RECORDS}  - {{name: _443._tcp, type: TLSA, value: 3 1 1 d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971}}\n"
    );
    let repo = repo.with_records("home.example", &records);
    // a refusal no flag overrides: plan says so and exits 1, as for a TTL the server refuses
    let out = run(&repo, TOKEN, &["plan"]).expect_code(1);
    assert!(
        out.stdout()
            .contains("_443._tcp.home.example TLSA: zonekeeper cannot write this record type, or this form of its value, to a technitium target yet"),
        "{}",
        out.stdout()
    );
    let out = run(&repo, TOKEN, &["apply"]);
    assert_ne!(out.code(), 0, "a zone held back is not a success: {}", out.all());
    assert!(dns.writes().is_empty(), "nothing sent for the zone held back: {:?}", dns.writes());
}

/// Values that stress quoting, through both write paths (record by record, and the zone-file
/// import of a large first sync), read back by the double as the server reads them.
#[test]
fn text_that_stresses_quoting_survives_both_write_paths() {
    let long = "k".repeat(300);
    let mut records = String::from(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n  - {name: \"@\", type: NS, value: ns.home.example.}\n",
    );
    // one by one: quotes, backslashes and text over 255 octets are never imported
    records.push_str("  - {name: q, type: TXT, value: 'say \"hi\" \\ there'}\n");
    records.push_str(&format!("  - {{name: long, type: TXT, value: {long}}}\n"));
    // the import: a `;` with spaces around it inside the quotes, and a CAA value with one
    for i in 0..60 {
        records.push_str(&format!("  - {{name: t{i}, type: TXT, value: \"v=spf1 a ; b -all {i}\"}}\n"));
    }
    records.push_str("  - {name: caa, type: CAA, value: '0 issue \"ca.example; policy=ev\"'}\n");
    let dns = Technitium::start(TOKEN, "home.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", &records);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert!(
        dns.writes().iter().any(|w| w.starts_with("import")),
        "the large first sync is one import: {:?}",
        dns.writes()
    );
    let recs = dns.records("home.example");
    let text = |name: &str| {
        recs.iter().find(|r| r.name == name).map(|r| r.rdata["text"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(text("t7.home.example").as_deref(), Some("v=spf1 a ; b -all 7"), "the `;` inside quotes is text");
    assert_eq!(text("q.home.example").as_deref(), Some("say \"hi\" \\ there"));
    assert_eq!(text("long.home.example").as_deref(), Some(long.as_str()));
    let long_rec = recs.iter().find(|r| r.name == "long.home.example").unwrap();
    assert_eq!(long_rec.rdata["characterStrings"].as_array().unwrap().len(), 2, "cut into 255-character strings");
    let caa = recs.iter().find(|r| r.name == "caa.home.example").unwrap();
    assert_eq!(caa.rdata["value"], "ca.example; policy=ev", "{:?}", caa.rdata);
    assert!(
        recs.iter()
            .filter(|r| r.rtype == "TXT")
            .all(|r| r.comments.as_deref() == Some("zonekeeper:owner=example-home"))
    );
    // and it all reads back as in sync: no write on the next run
    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}

/// PTR and TXT with several character-strings, as the server's source takes and returns them
/// (api-facts §1.9): written, read back in sync, and changed in place of the old value.
#[test]
fn ptr_and_multi_string_txt_are_written_and_read_back_as_the_server_keeps_them() {
    let records = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
        \x20 - {name: \"@\", type: NS, value: ns.home.example.}\n\
        \x20 - {name: \"1.2\", type: PTR, value: nas.home.example.}\n\
        \x20 - {name: _printer._tcp, type: TXT, strings: [[\"txtvers=1\", \"path=/a\\\\b\"]]}\n\
        \x20 - {name: dkim, type: TXT, strings: [[\"v=DKIM1; k=rsa; \", \"p=MIGf\"]]}\n";
    let dns = Technitium::start(TOKEN, "home.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", records);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let mut writes = dns.writes();
    writes.sort();
    assert_eq!(
        writes,
        [
            "add PTR 1.2.home.example nas.home.example",
            "add TXT _printer._tcp.home.example txtvers=1\npath=/a\\\\b",
            "add TXT dkim.home.example v=DKIM1; k=rsa; \np=MIGf",
        ]
    );
    let recs = dns.records("home.example");
    let strings = |n: &str| recs.iter().find(|r| r.name == n).map(|r| r.rdata["characterStrings"].clone());
    assert_eq!(strings("_printer._tcp.home.example"), Some(serde_json::json!(["txtvers=1", "path=/a\\b"])));
    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);

    // one string changed: the old value goes, the new one comes, nothing else
    let repo = repo.with_records("home.example", &records.replace("p=MIGf", "p=MIGg"));
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let mut writes = dns.writes();
    writes.sort();
    assert_eq!(
        writes,
        ["add TXT dkim.home.example v=DKIM1; k=rsa; \np=MIGg", "delete TXT dkim.home.example v=DKIM1; k=rsa; \np=MIGf"]
    );
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);

    // an empty character-string cannot be sent (the server drops empty lines): refused in the plan
    let repo =
        repo.with_records("home.example", &format!("{records}  - {{name: e, type: TXT, strings: [[\"a\", \"\"]]}}\n"));
    let out = run(&repo, TOKEN, &["plan"]).expect_code(1);
    assert!(out.stdout().contains("e.home.example TXT: zonekeeper cannot write"), "{}", out.stdout());
}

/// The double checks names with the server's words, so that a client sending a name the
/// server refuses fails here too; zonekeeper's own checks refuse such names before any call.
#[test]
fn the_double_refuses_names_the_server_refuses() {
    let dns = Technitium::start(TOKEN, "home.example");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let add = |domain: &str| -> serde_json::Value {
        rt.block_on(async {
            client
                .post(format!("{}/api/zones/records/add", dns.url()))
                .bearer_auth(TOKEN)
                .form(&[("domain", domain), ("zone", "home.example"), ("type", "A"), ("ipAddress", "192.0.2.1")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    for (name, words) in [
        ("a b.home.example", "Invalid domain name [a b.home.example]: invalid character [32] was found."),
        (&format!("{}.home.example", "x".repeat(64)), "label length cannot exceed 63 bytes."),
        ("a..home.example", "label length cannot be 0 byte."),
    ] {
        let v = add(name);
        assert_eq!(v["status"], "error", "{v}");
        assert!(v["errorMessage"].as_str().unwrap().contains(words), "{v}");
    }
    assert_eq!(add("_acme-challenge.home.example")["status"], "ok", "underscores are allowed");
    // and zonekeeper never sends such a name: it is refused in validation, with its line
    let repo = Repo::empty()
        .with_settings(&settings(&dns.url(), 1))
        .with_records("home.example", &format!("{RECORDS}  - {{name: \"a b\", type: A, value: 192.0.2.9}}\n"));
    dns.clear_calls();
    let out = run(&repo, TOKEN, &["apply"]).expect_code(1);
    assert!(out.all().contains("is not a valid name"), "{}", out.all());
    assert!(dns.writes().is_empty());
}

/// SSHFP and DS as the server's source takes them (enum fields as numbers, hex) and returns
/// them (names, upper-case hex): written one by one and by import, read back in sync.
#[test]
fn sshfp_and_ds_are_written_and_read_back_as_the_server_keeps_them() {
    let mut records = String::from(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
         \x20 - {name: \"@\", type: NS, value: ns.home.example.}\n\
         \x20 - {name: ssh, type: SSHFP, value: 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef678901234}\n\
         \x20 - {name: child, type: DS, value: 60485 13 2 2BB183AF5F22588179A53B0A98631FAD1A2921182BB183AF5F22588179A53B0A}\n",
    );
    let dns = Technitium::start(TOKEN, "home.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", &records);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    let recs = dns.records("home.example");
    let ssh = recs.iter().find(|r| r.rtype == "SSHFP").unwrap();
    assert_eq!(ssh.rdata["algorithm"], "Ed25519", "{:?}", ssh.rdata);
    assert_eq!(ssh.rdata["fingerprint"], "123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF678901234");
    let ds = recs.iter().find(|r| r.rtype == "DS").unwrap();
    assert_eq!(
        (ds.rdata["algorithm"].as_str(), ds.rdata["digestTypeNumber"].as_u64()),
        (Some("ECDSAP256SHA256"), Some(2))
    );
    dns.clear_calls();
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
    // by import too: a large first sync carries them in the zone file
    for i in 0..60 {
        records.push_str(&format!("  - {{name: s{i}, type: SSHFP, value: 1 1 {:040x}}}\n", i + 1));
    }
    let dns = Technitium::start(TOKEN, "home.example");
    let repo = Repo::empty().with_settings(&settings(&dns.url(), 3)).with_records("home.example", &records);
    run(&repo, TOKEN, &["apply"]).expect_code(0);
    assert!(dns.writes().iter().any(|w| w.starts_with("import")), "{:?}", dns.writes());
    run(&repo, TOKEN, &["plan", "--detailed-exitcode"]).expect_code(0);
}
