//! Zone files zonekeeper did not write: Debian's bind9 files and a hand-written one with every
//! construct BIND takes. Each is checked by `named-checkzone` first, so we only ask zonekeeper
//! to read what BIND reads; then adopted, exported to records YAML before any records file
//! exists, and planned against that export, which must be empty.

mod support;

use std::path::Path;

use support::{Repo, checkzone};

fn settings(zone: &str) -> String {
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: test\npolicy: sync\n\
         zones:\n  - name: {zone}\n    targets: [bind]\n\
         targets:\n  bind:\n    type: zonefile\n    directory: zones\n    adopt: true\n"
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
fn debian_zone_files_read_and_export_to_an_empty_plan() {
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
        "{name: \"www\", type: CNAME, ttl: 86400, value: \"web.lab.test.\"}",
        "{name: \"80.2.0.192.in-addr\", type: PTR, ttl: 3600, value: \"web.lab.test.\"}",
        "type: TLSA, ttl: 3600, value: \"3 1 1 D2ABDE240D7CD3EE6B4B28C54DF034B97983A1D16E8A410E4561CB106618E971\"}",
    ] {
        assert!(exported.contains(expected), "missing {expected} in:\n{exported}");
    }
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(0).stdout();
    assert!(plan.contains("Everything is in sync."), "{plan}");

    // One change: the file is rewritten in our form, which BIND loads with every check on,
    // and which reads back to the same records.
    let changed = exported.replace("\"192.0.2.81\"", "\"192.0.2.82\"");
    assert_ne!(changed, exported);
    let repo = repo.with_records("lab.test", &changed);
    repo.run(&["apply"]).expect_code(0);
    let written = repo.zone_file_in("zones", "lab.test");
    assert!(checkzone("lab.test", &written) > 2026120402, "the serial rises above the adopted file's");
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    let again = repo.run(&["export", "--target", "bind", "--zone", "lab.test"]).expect_code(0).stdout();
    assert_eq!(again, changed, "what we wrote reads back to the records that made it");
}

#[test]
fn what_cannot_be_kept_is_refused_with_the_file_and_line_and_nothing_is_written() {
    let base = "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
    for (extra, needle) in [
        ("dkim TXT \"v=DKIM1; k=rsa; \" \"p=abc\"\n", "db.lab.test:5: TXT is split into 2 character-strings"),
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
