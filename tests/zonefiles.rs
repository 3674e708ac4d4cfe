//! Zone files zonekeeper did not write: Debian's bind9 files and a hand-written one with every
//! construct BIND takes. Each is checked by `named-checkzone` first, so we only ask zonekeeper
//! to read what BIND reads; then adopted, exported to records YAML before any records file
//! exists, and planned against that export, which must be empty.

mod support;

use std::path::Path;

use support::{Repo, checkzone};

fn settings(zone: &str) -> String {
    settings_with(zone, "")
}

/// The settings with `soa` (a YAML flow mapping, or "") for the target.
fn settings_with(zone: &str, soa: &str) -> String {
    let soa = if soa.is_empty() { String::new() } else { format!("    soa: {soa}\n") };
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: test\npolicy: sync\n\
         zones:\n  - name: {zone}\n    targets: [bind]\n\
         targets:\n  bind:\n    type: zonefile\n    directory: zones\n    adopt: true\n{soa}"
    )
}

/// named-checkzone's verdict on a file as BIND loads it (no extra strictness).
fn bind_accepts(zone: &str, path: &Path) {
    let out = std::process::Command::new("named-checkzone")
        .arg(zone)
        .arg(path)
        .output()
        .expect("named-checkzone must be installed (apt-get install bind9-utils)");
    assert!(out.status.success(), "BIND refuses {}: {}", path.display(), String::from_utf8_lossy(&out.stdout));
}

/// Adopts `text` as zone `zone`, exports it, and returns the repository with the export as
/// the zone's records file.
fn adopted(zone: &str, text: &str) -> (Repo, String) {
    let repo = Repo::empty().with_settings(&settings(zone));
    repo.write(&format!("zones/db.{zone}"), text);
    bind_accepts(zone, &repo.zone_file_in("zones", zone));
    let exported = repo.run(&["export", "--target", "bind", "--zone", zone]).expect_code(0).stdout();
    (repo.with_records(zone, &exported), exported)
}

#[test]
fn debian_zone_files_read_and_export_to_a_plan_that_only_takes_over_the_soa() {
    for (file, zone) in [
        ("db.127", "127.in-addr.arpa"),
        ("db.0", "0.in-addr.arpa"),
        ("db.255", "255.in-addr.arpa"),
        ("db.local", "localhost"),
        ("db.empty", "empty.test"),
    ] {
        let text = std::fs::read_to_string(Path::new("tests/fixtures/debian").join(file)).unwrap();
        let (repo, exported) = adopted(zone, &text);
        if file == "db.127" {
            assert!(
                exported.contains("{name: \"1.0.0\", type: PTR, ttl: 604800, value: \"localhost.\"}"),
                "{exported}"
            );
        }
        // The records are in sync; what adoption would still change is the SOA (ours has
        // other timers and RNAME), and the plan says so as one update.
        let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(2).stdout();
        let negative = if file == "db.empty" { 86400 } else { 604800 };
        let soa_line = format!(
            "~ {zone}  SOA  localhost. root.localhost. 604800 86400 2419200 {negative} (TTL {negative}) → localhost. hostmaster.{zone}. 3600 600 604800 300 (TTL 300)  (zonekeeper.yaml: soa of target bind)"
        );
        assert!(plan.contains(&soa_line), "{file}: {plan}");
        assert!(plan.contains("Plan: 0 to create, 1 to update, 0 to delete."), "{file}: {plan}");
        // The rewrite into our form is one line, not a diff of every line of the file.
        assert!(plan.contains("taken over and rewritten whole in zonekeeper's form"), "{file}: {plan}");
        assert!(!plan.contains("+$ORIGIN") && !plan.contains("-$TTL"), "{file}: {plan}");
        // With the file's own SOA in the settings, nothing is left to change.
        let soa =
            format!("{{admin: root.localhost., refresh: 604800, retry: 86400, expire: 2419200, minimum: {negative}}}");
        let repo = repo.with_settings(&settings_with(zone, &soa));
        let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(0).stdout();
        assert!(plan.contains("Everything is in sync."), "{file}: {plan}");
        assert_eq!(repo.read(&format!("zones/db.{zone}")).unwrap(), text, "{file}: a plan writes nothing");
    }
}

#[test]
fn a_hand_written_zone_round_trips_and_what_we_write_back_passes_named_checkzone() {
    let text = std::fs::read_to_string("tests/fixtures/hand-written.db").unwrap();
    let (repo, exported) = adopted("lab.test", &text);
    for expected in [
        "{name: \"txt2\", type: TXT, ttl: 3600, value: \"  padded  \"}",
        "{name: \"txt3\", type: TXT, ttl: 3600, value: \"quote \\\" and backslash \\\\ and ü\"}",
        "{name: \"nomail\", type: MX, ttl: 3600, value: \"0 .\"}",
        "{name: \"private\", type: TYPE65534, ttl: 3600, value: \"\\\\# 3 ab cd ef\"}",
        "{name: \"dkim._domainkey\", type: TXT, ttl: 3600, strings: [[\"v=DKIM1; k=rsa; \", \"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GN\"]]}",
        "{name: \"_printer._tcp\", type: TXT, ttl: 3600, strings: [[\"txtvers=1\", \"path=/\"]]}",
        "{name: \"www\", type: CNAME, ttl: 86400, value: \"web.lab.test.\"}",
        "{name: \"80.2.0.192.in-addr\", type: PTR, ttl: 3600, value: \"web.lab.test.\"}",
        "type: TLSA, ttl: 3600, value: \"3 1 1 D2ABDE240D7CD3EE6B4B28C54DF034B97983A1D16E8A410E4561CB106618E971\"}",
    ] {
        assert!(exported.contains(expected), "missing {expected} in:\n{exported}");
    }
    // The file's SOA TTL (its $TTL, 1h) differs from the negative-caching TTL that we also
    // give the SOA record, so adoption shows exactly that one update.
    let repo = repo.with_settings(&settings_with(
        "lab.test",
        "{admin: hostmaster.lab.test., refresh: 3600, retry: 900, expire: 604800, minimum: 300}",
    ));
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(2).stdout();
    assert!(plan.contains("Plan: 0 to create, 1 to update, 0 to delete."), "{plan}");
    assert!(plan.contains("~ lab.test  SOA  ns1.lab.test. hostmaster.lab.test. 3600 900 604800 300 (TTL 3600) → ns1.lab.test. hostmaster.lab.test. 3600 900 604800 300 (TTL 300)"), "{plan}");

    // One change: the file is rewritten in our form, which BIND loads with every check on,
    // and which reads back to the same records.
    let changed = exported.replace("\"192.0.2.81\"", "\"192.0.2.82\"");
    assert_ne!(changed, exported);
    let repo = repo.with_records("lab.test", &changed);
    repo.run(&["apply"]).expect_code(0);
    let written = repo.zone_file_in("zones", "lab.test");
    assert!(checkzone("lab.test", &written) > 2026120402, "the serial rises above the adopted file's");
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(0).stdout();
    assert!(plan.contains("Everything is in sync."), "the SOA went out with the change: {plan}");
    let again = repo.run(&["export", "--target", "bind", "--zone", "lab.test"]).expect_code(0).stdout();
    assert_eq!(again, changed, "what we wrote reads back to the records that made it");
}

#[test]
fn what_cannot_be_kept_is_refused_with_the_file_and_line_and_nothing_is_written() {
    let base = "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
    for (extra, needle) in [
        ("x 600 A 192.0.2.2\nx 60 A 192.0.2.3\n", "db.lab.test:6: x.lab.test A has TTL 60 here and 600 at"),
        ("$GENERATE 1-9 h$ A 192.0.2.$\n", "db.lab.test:5: $GENERATE is not supported"),
        ("$INCLUDE /etc/hostname\n", "outside the target directory"),
    ] {
        let text = format!("{base}{extra}");
        let repo = Repo::empty().with_settings(&settings("lab.test"));
        repo.write("zones/db.lab.test", &text);
        repo.write(
            "records/lab.test.yaml",
            "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: lab.test\nrecords:\n  - {name: \"@\", type: NS, value: ns1.lab.test.}\n",
        );
        let out = repo.run(&["apply", "--force"]).expect_code(1);
        assert!(out.stderr().contains(needle), "{extra:?}: {}", out.stderr());
        assert_eq!(repo.read("zones/db.lab.test").unwrap(), text, "nothing written");
    }
}

#[test]
fn a_soa_change_in_the_settings_is_planned_as_an_update_of_its_own() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let serial = checkzone("home.example", &repo.zone_file("home.example"));
    let settings = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    soa: {refresh: 7200}");
    assert_ne!(settings, support::SETTINGS);
    let repo = repo.with_settings(&settings);
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(2).stdout();
    assert!(
        plan.contains("~ home.example  SOA  ns1.home.example. hostmaster.home.example. 3600 600 604800 300 (TTL 300) → ns1.home.example. hostmaster.home.example. 7200 600 604800 300 (TTL 300)"),
        "{plan}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&repo.run(&["plan", "--format", "json"]).expect_code(0).stdout()).unwrap();
    let coredns = json["targets"].as_array().unwrap().iter().find(|t| t["target"]["name"] == "coredns").unwrap();
    assert_eq!(coredns["setting_changes"][0]["what"], "SOA", "{coredns}");
    let md = repo.run(&["plan", "--format", "markdown"]).expect_code(0).stdout();
    assert!(md.contains("| update | `home.example` | SOA |"), "{md}");
    let out = repo.run(&["apply"]).expect_code(0).stdout();
    assert!(out.contains("applied: 1 of 1 change(s) to home.example on coredns"), "{out}");
    assert!(checkzone("home.example", &repo.zone_file("home.example")) > serial, "the serial rises");
    assert!(repo.read(".zonekeeper/zones/db.home.example").unwrap().contains(" 7200 600 604800 300\n"));
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_zone_file_made_again_never_starts_below_the_serial_it_had() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let changed = support::RECORDS.replace("192.0.2.53", "192.0.2.54");
    assert_ne!(changed, support::RECORDS);
    let repo = repo.with_records("home.example", &changed);
    repo.run(&["apply"]).expect_code(0);
    let served = checkzone("home.example", &repo.zone_file("home.example"));
    // the file is lost (deleted by hand, a fresh volume): the next one goes above, not to …00
    std::fs::remove_file(repo.zone_file("home.example")).unwrap();
    repo.run(&["apply"]).expect_code(0);
    let again = checkzone("home.example", &repo.zone_file("home.example"));
    assert!(again > served, "{again} after {served}");
    // the memory is not a zone: CoreDNS's auto plugin loads only db.* files
    let names: Vec<String> = std::fs::read_dir(repo.path().join(".zonekeeper/zones"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().filter(|n| n.contains("db.")).all(|n| n == "db.home.example"), "{names:?}");
    // a memory that cannot be read is an error, never "nothing remembered"
    repo.write(".zonekeeper/zones/.zonekeeper-serials", "home.example 2026120705\ngarbage\n");
    let out = repo.run(&["plan"]).expect_code(1);
    assert!(out.stderr().contains(".zonekeeper-serials:2: not a `ZONE SERIAL` line"), "{}", out.stderr());
    // and above all when the zone file is gone, which is what the memory is for
    std::fs::remove_file(repo.zone_file("home.example")).unwrap();
    let out = repo.run(&["plan"]).expect_code(1);
    assert!(out.stderr().contains(".zonekeeper-serials:2: not a `ZONE SERIAL` line"), "{}", out.stderr());
}

#[test]
fn txt_strings_in_a_records_file_are_checked_with_their_line() {
    let long = "x".repeat(256);
    let records = format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
         \x20 - {{name: \"@\", type: NS, value: ns1.home.example.}}\n\
         \x20 - {{name: ns1, type: A, value: 192.0.2.53}}\n\
         \x20 - {{name: a, type: A, strings: [[\"x\"]]}}\n\
         \x20 - {{name: b, type: TXT, value: x, strings: [[\"x\"]]}}\n\
         \x20 - {{name: c, type: TXT, strings: [[\"{long}\"]]}}\n\
         \x20 - {{name: d, type: TXT, strings: [[\"ok \", \"fine\"]]}}\n\
         \x20 - {{name: e, type: TXT, views: {{default: [plain, [\"ok \", \"fine\"]]}}}}\n\
         \x20 - {{name: f, type: A, views: {{default: [192.0.2.1, [\"x\"]]}}}}\n"
    );
    let repo = Repo::example().with_records("home.example", &records);
    let out = repo.run(&["validate"]).expect_code(1);
    let err = out.all();
    for needle in [
        "records/home.example.yaml:7:5: records[2].strings: `strings` is for TXT records only",
        "records/home.example.yaml:8:5: records[3].strings: give `strings` or `value`/`values`, not both",
        "records/home.example.yaml:9:5: records[4].strings[0]: a TXT character-string is 256 octets long; the limit is 255",
        "records/home.example.yaml:12:5: records[7].views.default[1]: a list of character-strings is for TXT records only",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
    assert!(!err.contains("records[5]") && !err.contains("records[6]"), "{err}");
}

#[test]
fn out_of_zone_data_is_left_out_of_the_export_as_bind_leaves_it_out() {
    let text = "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nelsewhere.test. A 192.0.2.66\n";
    let (repo, exported) = adopted("lab.test", text);
    assert!(!exported.contains("elsewhere") && !exported.contains("192.0.2.66"), "{exported}");
    assert!(exported.contains("{name: \"ns1\", type: A, ttl: 300, value: \"192.0.2.1\"}"), "{exported}");
    // the export reads back: the records are in sync (only the SOA, ours or the file's, differs)
    let plan = repo.run(&["plan"]).expect_code(0).stdout();
    assert!(plan.contains("0 to create, 1 to update, 0 to delete"), "{plan}");
}

/// A real `named` serving `file` as zone `zone` on a free loopback port, for `dig`.
struct Named {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Named {
    fn serve(zone: &str, file: &Path) -> Named {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        let conf = format!(
            "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n\
             pid-file \"{d}/named.pid\"; recursion no; dnssec-validation no; }};\n\
             zone \"{zone}\" {{ type primary; file \"{}\"; }};\n",
            file.display()
        );
        std::fs::write(dir.path().join("named.conf"), conf).unwrap();
        // named lives in /usr/sbin, which a user's PATH may not hold
        let bin = if Path::new("/usr/sbin/named").exists() { "/usr/sbin/named" } else { "named" };
        let child = std::process::Command::new(bin)
            .args(["-g", "-u", "root", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("named must be installed (apt-get install bind9)");
        let named = Named { child, port, _dir: dir };
        // ready when it answers for the zone's SOA
        for _ in 0..100 {
            if !named.dig(zone, "SOA").is_empty() {
                return named;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("named did not start serving {zone}");
    }

    /// The answer, authority and additional records for `name` and `rtype` (a delegation
    /// answers in the authority section), one record per line, sorted.
    fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        // Right after start-up, or on a busy machine, named sometimes drops a query: ask again
        // while the answer is empty, for up to 5 s (every question here has an answer).
        for _ in 0..25 {
            let lines = self.dig_once(name, rtype);
            if !lines.is_empty() {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Vec::new()
    }

    fn dig_once(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+norec",
                "+noall",
                "+answer",
                "+authority",
                "+additional",
                "+time=2",
                "+tries=3",
            ])
            .args([name, rtype])
            .output()
            .expect("dig must be installed (apt-get install bind9-dnsutils)");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What clients get is what they got: the hand-written file served by `named` before
/// adoption, and zonekeeper's rewrite of it after, answer every name and type the same
/// (the SOA aside, which the plan shows as its one update).
#[test]
fn named_answers_the_same_before_and_after_adoption() {
    let text = std::fs::read_to_string("tests/fixtures/hand-written.db").unwrap();
    let (repo, exported) = adopted("lab.test", &text);
    let questions: Vec<(String, String)> = exported
        .lines()
        .filter_map(|l| {
            let name = l.split("name: \"").nth(1)?.split('"').next()?;
            let rtype = l.split("type: ").nth(1)?.split(',').next()?;
            let fqdn = if name == "@" { "lab.test.".to_string() } else { format!("{name}.lab.test.") };
            Some((fqdn, rtype.to_string()))
        })
        .collect();
    assert!(questions.len() > 20, "{exported}");
    let zone_file = repo.zone_file_in("zones", "lab.test");
    let before: Vec<Vec<String>> = {
        let named = Named::serve("lab.test", &zone_file);
        questions.iter().map(|(n, t)| named.dig(n, t)).collect()
    };
    repo.run(&["apply"]).expect_code(0);
    let rewritten = repo.read("zones/db.lab.test").unwrap();
    assert!(rewritten.starts_with("; zonekeeper owner=test"), "{rewritten}");
    let named = Named::serve("lab.test", &zone_file);
    for ((name, rtype), was) in questions.iter().zip(&before) {
        assert!(!was.is_empty(), "{name} {rtype} had an answer before: {before:?}");
        assert_eq!(&named.dig(name, rtype), was, "{name} {rtype}");
    }
}
