//! The binary on real fixture repositories: plan, apply, exit codes, renderers, zone files
//! checked by BIND's named-checkzone, hosts blocks, ownership and safety refusals.

mod support;

use support::{Repo, checkzone};

#[test]
fn first_apply_writes_a_valid_zone_and_a_second_changes_nothing() {
    let repo = Repo::example();
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    let out = repo.run(&["apply"]).expect_code(0);
    assert!(out.stdout().contains("applied: 12 of 12 change(s) to home.example on coredns"), "{}", out.stdout());
    assert!(out.stdout().contains("  ok      create home.example NS (home.example on coredns)"), "{}", out.stdout());
    assert_eq!(out.stdout().matches("\n  ok      ").count(), 18, "every change reported with its result");
    let zone = repo.zone_file("home.example");
    let serial = checkzone("home.example", &zone);
    let before = std::fs::read(&zone).unwrap();

    let again = repo.run(&["apply"]).expect_code(0);
    assert!(again.stdout().contains("Plan: 0 to create, 0 to update, 0 to delete."), "{}", again.stdout());
    assert!(!again.stdout().contains("applied:"));
    assert_eq!(std::fs::read(&zone).unwrap(), before, "a no-op apply must not rewrite the file");
    assert_eq!(checkzone("home.example", &zone), serial, "serial stays on no change");
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_changed_record_is_one_update_and_raises_the_serial() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let zone = repo.zone_file("home.example");
    let serial = checkzone("home.example", &zone);

    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    let plan = repo.run(&["plan", "--detailed-exitcode", "--target", "coredns"]).expect_code(2);
    assert!(plan.stdout().contains("0 to create, 1 to update, 0 to delete"), "{}", plan.stdout());
    assert!(plan.stdout().contains("192.0.2.25 → 192.0.2.26"));
    assert!(plan.stdout().contains("records/home.example.yaml:17"), "provenance names the line: {}", plan.stdout());
    assert!(plan.stdout().contains("+mail\t300\tIN\tA\t192.0.2.26"), "native diff shows the new line");

    repo.run(&["apply"]).expect_code(0);
    let new_serial = checkzone("home.example", &zone);
    assert!(new_serial > serial, "serial must rise: {serial} -> {new_serial}");
    assert!(repo.read(".zonekeeper/zones/db.home.example").unwrap().contains("mail\t300\tIN\tA\t192.0.2.26\n"));
}

#[test]
fn every_record_type_survives_a_round_trip_through_the_zone_file() {
    let records = r#"apiVersion: zonekeeper.dev/v1alpha1
kind: Records
zone: home.example
records:
  - {name: "@", type: NS, values: [ns1.home.example., ns2.home.example.]}
  - {name: ns1, type: A, value: 192.0.2.53}
  - {name: ns2, type: AAAA, value: "2001:db8::53"}
  - {name: "@", type: TXT, values: ["v=spf1 -all", "quote \" and ; semicolon and \\ backslash", "ünïcode"]}
  - {name: long, type: TXT, value: "LONG"}
  - {name: "@", type: CAA, values: ["0 issue \"letsencrypt.org\"", "128 iodef \"mailto:sec@home.example\""]}
  - {name: _sip._tcp, type: SRV, values: ["10 5 5060 ns1.home.example.", "20 0 5060 ns2.home.example."]}
  - {name: "@", type: MX, values: ["10 ns1.home.example.", "20 ns2.home.example."]}
  - {name: "*.apps", type: A, value: 192.0.2.80}
  - {name: alias, type: CNAME, value: ns1.home.example.}
  - {name: nocache, type: A, ttl: 0, value: 192.0.2.99}
"#
    .replace("LONG", &"0123456789".repeat(60));
    let repo = Repo::example().with_records("home.example", &records);
    repo.run(&["apply", "--target", "coredns"]).expect_code(0);
    checkzone("home.example", &repo.zone_file("home.example"));
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(2); // hosts not applied yet
    repo.run(&["plan", "--detailed-exitcode", "--target", "coredns"]).expect_code(0);

    // export reads the zone file back as records YAML that plans to no change
    let exported = repo.run(&["export", "--target", "coredns", "--zone", "home.example"]).expect_code(0).stdout();
    let copy = Repo::example().with_records("home.example", &exported);
    std::fs::create_dir_all(copy.path().join(".zonekeeper/zones")).unwrap();
    std::fs::copy(repo.zone_file("home.example"), copy.zone_file("home.example")).unwrap();
    copy.run(&["validate"]).expect_code(0);
    assert!(
        exported.contains("{name: \"nocache\", type: A, ttl: 0, value: \"192.0.2.99\"}"),
        "a TTL of 0 is kept: {exported}"
    );
    copy.run(&["plan", "--detailed-exitcode", "--target", "coredns"]).expect_code(0);
}

#[test]
fn hosts_block_keeps_every_byte_outside_it() {
    let repo = Repo::example();
    let outside_before = "127.0.0.1\tlocalhost\n# a comment   with  spacing\n::1 ip6-localhost\n";
    let outside_after = "\n10.0.0.1 printer # trailing\n";
    repo.write(".zonekeeper/hosts", &format!("{outside_before}{outside_after}"));
    repo.run(&["apply", "--target", "hosts"]).expect_code(0);
    let text = repo.read(".zonekeeper/hosts").unwrap();
    assert!(text.starts_with(outside_before), "{text}");
    assert!(text.contains("192.0.2.10\twww.home.example\n"), "CNAME flattened to its target's address: {text}");
    assert!(!text.contains("apps"), "wildcards cannot be written to a hosts file");

    // A change inside the block leaves the outside alone, wherever the block sits.
    let moved = text.replace(outside_after, "") + outside_after;
    let moved = format!("# top line\n{moved}");
    repo.write(".zonekeeper/hosts", &moved);
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.53", "192.0.2.54"));
    repo.run(&["apply", "--target", "hosts"]).expect_code(0);
    let after = repo.read(".zonekeeper/hosts").unwrap();
    assert_eq!(after.replace("192.0.2.54", "192.0.2.53"), moved);
}

#[test]
fn markdown_and_json_render_the_same_plan() {
    let repo = Repo::example();
    let md = repo.run(&["plan", "--format", "markdown"]).expect_code(0).stdout();
    assert!(md.contains("| op | name | type | TTL | old value | new value | source |"));
    assert!(
        md.contains(
            "| create | `grafana.home.example` | A | 60 |  | 192.0.2.20, 192.0.2.21 | records/home.example.yaml:10 |"
        ),
        "{md}"
    );
    assert!(md.contains("```diff"));
    let json = repo.run(&["plan", "--format", "json"]).expect_code(0).stdout();
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["summary"]["create"], 18);
    assert_eq!(v["targets"][0]["target"]["name"], "coredns");
    assert_eq!(v["targets"][0]["changes"][0]["op"], "create");
    assert!(v["targets"][0]["diff"].as_str().unwrap().contains("+$ORIGIN home.example."));
}

#[test]
fn a_foreign_zone_file_is_refused_unless_adopted() {
    let repo = Repo::example();
    let foreign = "$TTL 300\n$ORIGIN home.example.\n@ IN SOA ns1.home.example. h.home.example. 5 3600 600 604800 300\n@ IN NS ns1.home.example.\nns1 IN A 192.0.2.53\nold IN A 192.0.2.99\n";
    repo.write(".zonekeeper/zones/db.home.example", foreign);
    let out = repo.run(&["apply", "--target", "coredns"]).expect_code(1);
    assert!(out.stderr().contains("was not written by zonekeeper; set `adopt: true`"), "{}", out.stderr());
    assert_eq!(repo.read(".zonekeeper/zones/db.home.example").unwrap(), foreign);

    let adopting = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    adopt: true");
    let repo = repo.with_settings(&adopting);
    let plan = repo.run(&["plan", "--target", "coredns"]).expect_code(0).stdout();
    assert!(plan.contains("- old.home.example"), "the adopted file's extra record is deleted: {plan}");
    repo.run(&["apply", "--target", "coredns"]).expect_code(0);
    let serial = checkzone("home.example", &repo.zone_file("home.example"));
    assert!(serial > 5);
}

#[test]
fn a_zone_file_of_another_owner_is_never_touched() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let theirs = repo.read(".zonekeeper/zones/db.home.example").unwrap().replace("owner=example-home", "owner=blue");
    repo.write(".zonekeeper/zones/db.home.example", &theirs);
    let adopting = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    adopt: true");
    let repo = repo.with_settings(&adopting);
    let out = repo.run(&["apply"]).expect_code(1);
    assert!(out.stderr().contains("belongs to zonekeeper owner `blue`"), "{}", out.stderr());
    assert_eq!(repo.read(".zonekeeper/zones/db.home.example").unwrap(), theirs);
}

fn many_records(n: usize) -> String {
    let mut s = String::from("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n");
    s.push_str("  - {name: \"@\", type: NS, value: ns1.home.example.}\n  - {name: ns1, type: A, value: 192.0.2.53}\n");
    for i in 0..n {
        s.push_str(&format!("  - {{name: h{i}, type: A, value: 192.0.2.{}}}\n", i % 250));
    }
    s
}

#[test]
fn safety_limits_refuse_a_mass_delete_unless_forced() {
    let repo = Repo::example().with_records("home.example", &many_records(20));
    repo.run(&["apply"]).expect_code(0);
    let before = repo.read(".zonekeeper/zones/db.home.example").unwrap();
    let repo = repo.with_records("home.example", &many_records(5));
    let out = repo.run(&["apply"]).expect_code(1);
    assert!(out.all().contains("would delete 15 of 22 owned record sets"), "{}", out.all());
    assert_eq!(repo.read(".zonekeeper/zones/db.home.example").unwrap(), before, "nothing written");
    // on a GitHub Actions run, the refusal is an annotation on the checks page
    let gh = repo.run(&["plan", "--format", "github"]).expect_code(0).stdout();
    assert!(
        gh.lines().any(
            |l| l.starts_with("::error title=zonekeeper refused%3A home.example on coredns::would delete 15 of 22")
        ),
        "{gh}"
    );
    repo.run(&["apply", "--force"]).expect_code(0);
    checkzone("home.example", &repo.zone_file("home.example"));
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn upsert_only_never_deletes() {
    let repo = Repo::example().with_records("home.example", &many_records(3));
    repo.run(&["apply"]).expect_code(0);
    let repo = repo
        .with_settings(&support::SETTINGS.replace("policy: sync ", "policy: upsert-only "))
        .with_records("home.example", &many_records(2));
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(0).stdout();
    assert!(plan.contains("held back by policy: delete h2.home.example A"), "{plan}");
    repo.run(&["apply"]).expect_code(0);
    assert!(repo.read(".zonekeeper/zones/db.home.example").unwrap().contains("h2\t300\tIN\tA"));
}

const VIEWS: &str = r#"apiVersion: zonekeeper.dev/v1alpha1
kind: Settings
owner: split
policy: sync
views:
  - {name: lan}
  - {name: tailnet}
  - {name: public, public: true}
zones:
  - {name: home.example, targets: [lan, tailnet]}
targets:
  lan: {type: zonefile, directory: lan, view: lan}
  tailnet: {type: hosts, path: tailnet-hosts, view: tailnet}
  public: {type: zonefile, directory: public, view: public}
"#;

const SPLIT_RECORDS: &str = r#"apiVersion: zonekeeper.dev/v1alpha1
kind: Records
zone: home.example
records:
  - {name: "@", type: NS, value: ns1.home.example.}
  - {name: ns1, type: A, value: 192.0.2.53}
  - name: grafana
    type: A
    value: 192.168.1.20
    views: {tailnet: [100.64.0.5]}
  - name: lan-only
    type: A
    views: {lan: [192.168.1.30]}
"#;

#[test]
fn views_give_each_audience_its_own_answer() {
    let repo = Repo::empty().with_settings(VIEWS).with_records("home.example", SPLIT_RECORDS);
    repo.run(&["apply"]).expect_code(0);
    let lan = repo.read("lan/db.home.example").unwrap();
    assert!(lan.contains("grafana\t300\tIN\tA\t192.168.1.20"));
    assert!(lan.contains("lan-only\t300\tIN\tA\t192.168.1.30"));
    checkzone("home.example", &repo.path().join("lan/db.home.example"));
    let tailnet = repo.read("tailnet-hosts").unwrap();
    assert!(tailnet.contains("100.64.0.5\tgrafana.home.example"), "{tailnet}");
    assert!(!tailnet.contains("lan-only"));
    assert!(!tailnet.contains("192.168.1.20"));
    assert!(repo.read("public/db.home.example").is_none(), "the zone does not list the public target");
}

#[test]
fn internal_names_are_refused_on_a_public_view_even_with_force() {
    let settings = VIEWS.replace(
        "{name: home.example, targets: [lan, tailnet]}",
        "{name: home.example, targets: [lan, public], internal: true}",
    );
    let records = SPLIT_RECORDS.replace(
        "  - {name: ns1, type: A, value: 192.0.2.53}",
        "  - {name: ns1, type: A, value: 192.0.2.53, allowPublic: true}",
    );
    let repo = Repo::empty().with_settings(&settings).with_records("home.example", &records);
    let plan = repo.run(&["plan"]).expect_code(1);
    assert!(
        plan.stdout().contains("refused: internal name(s) grafana.home.example, home.example"),
        "{}",
        plan.stdout()
    );
    assert!(!plan.stdout().contains("ns1.home.example, "), "allowPublic exempts ns1: {}", plan.stdout());
    let out = repo.run(&["apply", "--force"]).expect_code(1);
    assert!(out.stderr().contains("--force cannot override"), "{}", out.stderr());
    assert!(repo.read("lan/db.home.example").is_none(), "nothing written anywhere");
    assert!(repo.read("public/db.home.example").is_none());
}

#[test]
fn unknown_target_is_a_clear_error() {
    let repo = Repo::example();
    let out = repo.run(&["plan", "--target", "nope"]).expect_code(1);
    assert!(
        out.stderr().contains("no target named `nope` in zonekeeper.yaml (known: coredns, hosts)"),
        "{}",
        out.stderr()
    );
}

#[test]
fn schema_check_matches_the_checked_in_files() {
    let repo = Repo::empty();
    let out = repo.run(&["schema", "--dir", repo.path().join("schema").to_str().unwrap()]).expect_code(0);
    assert!(out.stdout().contains("records.json"));
    for f in ["settings.json", "records.json", "resolver-set.json", "plan.json", "validate.json", "apply.json"] {
        let fresh = repo.read(&format!("schema/{f}")).unwrap();
        let checked_in = std::fs::read_to_string(format!("schema/{f}")).unwrap();
        assert_eq!(fresh, checked_in, "schema/{f} is stale: run `zonekeeper schema`");
    }
    repo.write("schema/records.json", "{}");
    repo.run(&["schema", "--check", "--dir", repo.path().join("schema").to_str().unwrap()]).expect_code(1);
}

#[test]
fn corefile_stanza_names_the_zone_file() {
    let repo = Repo::example();
    let out = repo.run(&["export", "--target", "coredns", "--corefile"]).expect_code(0).stdout();
    assert!(out.contains("home.example:53 {"));
    assert!(out.contains("db.home.example home.example {"));
    assert!(out.contains("reload 30s"));
}

#[test]
fn another_owners_hosts_block_is_left_alone_and_a_broken_block_is_refused() {
    let repo = Repo::example();
    let theirs = "127.0.0.1 localhost\n# BEGIN zonekeeper owner=blue (managed block: edits inside are overwritten)\n# zone home.example\n10.9.9.9\tmail.home.example\n# END zonekeeper owner=blue\n";
    repo.write(".zonekeeper/hosts", theirs);
    repo.run(&["apply", "--target", "hosts"]).expect_code(0);
    let text = repo.read(".zonekeeper/hosts").unwrap();
    assert!(text.starts_with(theirs), "their block and the lines before ours are unchanged: {text}");
    assert!(text.contains("# BEGIN zonekeeper owner=example-home"));
    assert!(text.contains("192.0.2.25\tmail.home.example"));

    // A BEGIN without its END: refuse rather than guess where our block stops.
    let broken = text.replace("# END zonekeeper owner=example-home\n", "");
    repo.write(".zonekeeper/hosts", &broken);
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    let out = repo.run(&["apply", "--target", "hosts"]).expect_code(1);
    assert!(out.stderr().contains("has no `# END zonekeeper owner=example-home` line"), "{}", out.stderr());
    assert_eq!(repo.read(".zonekeeper/hosts").unwrap(), broken);
}

#[test]
fn validate_reports_problems_in_several_files_in_one_run() {
    let repo = Repo::example()
        .with_records("home.example", &support::RECORDS.replace("value: 192.0.2.53}", "value: 192.0.2.530}"))
        .with_settings(&support::SETTINGS.replace("targets: [coredns, hosts]", "targets: [coredns, hosts, nope]"));
    repo.write(
        "resolvers/bad.yaml",
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: ResolverSet\nname: bad\nscope: split\n",
    );
    let out = repo.run(&["validate"]).expect_code(1).stdout();
    assert!(out.contains("zonekeeper.yaml:"), "{out}");
    assert!(out.contains("target `nope` is not defined in `targets`"), "{out}");
    assert!(
        out.contains("records/home.example.yaml:7:5: records[1].value[0]: `192.0.2.530` is not an IPv4 address"),
        "{out}"
    );
    assert!(out.contains("resolvers/bad.yaml:3:7: domains: scope `split` needs at least one domain"), "{out}");
}

#[test]
fn a_zone_file_zone_without_apex_ns_is_refused_before_writing() {
    let no_ns = support::RECORDS.replace("  - {name: \"@\", type: NS, values: [ns1.home.example.]}\n", "");
    let repo = Repo::example().with_records("home.example", &no_ns);
    let out = repo.run(&["apply"]).expect_code(1);
    assert!(
        out.all().contains(
            "records/home.example.yaml:4:7: records: zone `home.example` is written as a zone file by target `coredns`"
        ),
        "{}",
        out.all()
    );
    assert!(repo.read(".zonekeeper/zones/db.home.example").is_none());
}

#[test]
fn two_targets_writing_one_file_are_refused() {
    let settings = support::SETTINGS.replace(
        "    path: .zonekeeper/hosts",
        "    path: .zonekeeper/hosts\n  again:\n    type: hosts\n    path: ./.zonekeeper/../.zonekeeper/hosts",
    );
    let out = Repo::example().with_settings(&settings).run(&["validate"]).expect_code(1);
    // targets are read in name order, so `hosts` is the second writer of the file
    assert!(out.stdout().contains("targets.hosts: writes to"), "{}", out.stdout());
    assert!(out.stdout().contains("which target `again` already writes to"), "{}", out.stdout());
}

#[test]
fn a_hosts_target_with_two_zones_applies_both_in_one_run() {
    let settings = support::SETTINGS.replace("zones:\n", "zones:\n  - name: lab.example\n    targets: [hosts]\n");
    let lab = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: lab.example\nrecords:\n  - {name: a, type: A, value: 192.0.2.99}\n";
    let repo = Repo::example().with_settings(&settings).with_records("lab.example", lab);
    repo.run(&["apply"]).expect_code(0);
    let text = repo.read(".zonekeeper/hosts").unwrap();
    assert!(
        text.contains("# zone home.example\n") && text.contains("# zone lab.example\n192.0.2.99\ta.lab.example\n"),
        "{text}"
    );
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    // preview puts every zone on one hosts file: same thing
    let hosts = repo.path().join("preview-hosts");
    repo.run(&["preview", "--hosts", hosts.to_str().unwrap()]).expect_code(0);
    let text = std::fs::read_to_string(&hosts).unwrap();
    assert!(text.contains("a.lab.example") && text.contains("mail.home.example"), "{text}");
}

#[test]
fn a_safety_share_out_of_range_is_located() {
    let settings = support::SETTINGS.replace("maxUpdateShare: 0.3", "maxUpdateShare: 3");
    let out = Repo::example().with_settings(&settings).run(&["validate"]).expect_code(1).stdout();
    assert!(out.contains("zonekeeper.yaml:9:19: safety.maxUpdateShare: must be at most 1"), "{out}");
}

#[test]
fn a_zone_removed_from_the_settings_is_cleaned_up() {
    let settings =
        support::SETTINGS.replace("zones:\n", "zones:\n  - name: lab.example\n    targets: [coredns, hosts]\n");
    let lab = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: lab.example\nrecords:\n  - {name: \"@\", type: NS, value: ns1.home.example.}\n  - {name: a, type: A, value: 192.0.2.99}\n";
    let repo = Repo::example().with_settings(&settings).with_records("lab.example", lab);
    repo.run(&["apply"]).expect_code(0);
    assert!(repo.zone_file("lab.example").exists());
    assert!(repo.read(".zonekeeper/hosts").unwrap().contains("a.lab.example"));
    // someone else's file in the same directory is never an orphan of ours
    repo.write(".zonekeeper/zones/db.other.example", "; zonekeeper owner=blue zone=other.example\n");

    std::fs::remove_file(repo.path().join("records/lab.example.yaml")).unwrap();
    let repo = repo.with_settings(support::SETTINGS);
    let plan = repo.run(&["plan", "--detailed-exitcode"]).expect_code(2).stdout();
    assert!(
        plan.contains("lab.example on coredns (zonefile, view default): 0 to create, 0 to update, 2 to delete"),
        "{plan}"
    );
    // removing a zone removes its NS records: that needs --force, like any root NS change
    let refused = repo.run(&["apply"]).expect_code(1);
    assert!(
        refused.stderr().contains("lab.example on coredns: changes the zone's own NS records"),
        "{}",
        refused.stderr()
    );
    assert!(repo.zone_file("lab.example").exists());
    repo.run(&["apply", "--force"]).expect_code(0);
    assert!(!repo.zone_file("lab.example").exists(), "the orphaned zone file is removed");
    assert!(!repo.read(".zonekeeper/hosts").unwrap().contains("lab.example"), "and its hosts section");
    assert!(repo.read(".zonekeeper/zones/db.other.example").is_some());
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_target_that_cannot_be_read_is_named_in_every_rendering_of_the_plan() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    // the hosts file became a directory: that target cannot be read
    std::fs::remove_file(repo.path().join(".zonekeeper/hosts")).unwrap();
    std::fs::create_dir(repo.path().join(".zonekeeper/hosts")).unwrap();

    let text = repo.run(&["plan"]).expect_code(1).stdout();
    assert!(!text.contains("Everything is in sync"), "{text}");
    assert!(text.contains("home.example on hosts: not planned"), "{text}");
    assert!(
        text.contains(
            "Incomplete: 1 target zone(s) could not be read and are not planned: home.example on hosts (read)"
        ),
        "{text}"
    );

    let md = repo.run(&["plan", "--format", "markdown"]).expect_code(1).stdout();
    assert!(!md.contains("every target is in sync"), "{md}");
    assert!(md.contains("**incomplete: 1 target zone(s) could not be read"), "{md}");
    assert!(md.contains("> **Not planned:** home.example on hosts: "), "{md}");

    let json: serde_json::Value =
        serde_json::from_str(&repo.run(&["plan", "--format", "json"]).expect_code(1).stdout()).unwrap();
    assert_eq!(json["complete"], false);
    assert_eq!(json["unplanned"][0]["target"], "hosts");
    assert_eq!(json["unplanned"][0]["zone"], "home.example");
    assert_eq!(json["unplanned"][0]["reason"], "read");
    assert_eq!(json["targets"].as_array().map(Vec::len), Some(1), "the zone-file target is still planned");

    let gh = repo.run(&["plan", "--format", "github"]).expect_code(1).stdout();
    assert!(gh.contains("::error title=zonekeeper%3A home.example on hosts::not planned: cannot read "), "{gh}");
    assert!(gh.contains("::notice title=zonekeeper plan::0 to create, 0 to update, 0 to delete; incomplete: "), "{gh}");

    // once it reads again, the plan is complete and in sync again
    std::fs::remove_dir(repo.path().join(".zonekeeper/hosts")).unwrap();
    repo.run(&["apply"]).expect_code(0);
    let text = repo.run(&["plan"]).expect_code(0).stdout();
    assert!(text.contains("Everything is in sync."), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&repo.run(&["plan", "--format", "json"]).expect_code(0).stdout()).unwrap();
    assert_eq!(json["complete"], true);
}

#[test]
fn a_missing_records_file_is_an_error_and_deleting_a_whole_zone_needs_force_or_an_empty_file() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let hosts_before = repo.read(".zonekeeper/hosts").unwrap();
    let zone_before = std::fs::read(repo.zone_file("home.example")).unwrap();

    // renamed in a pull request: the zone has no records file any more
    std::fs::rename(repo.path().join("records/home.example.yaml"), repo.path().join("records/home.yaml.bak")).unwrap();
    for cmd in [&["validate"][..], &["plan"], &["apply"], &["apply", "--force"]] {
        let out = repo.run(cmd).expect_code(1);
        assert!(
            out.all().contains("zonekeeper.yaml:13:")
                && out.all().contains(
                    "zones[0].name: zone `home.example` has no records file: expected records/home.example.yaml"
                ),
            "{cmd:?}: {}",
            out.all()
        );
    }
    assert_eq!(repo.read(".zonekeeper/hosts").unwrap(), hosts_before, "nothing written");
    assert_eq!(std::fs::read(repo.zone_file("home.example")).unwrap(), zone_before);

    // every owned record gone from what a target holds (here: only an NS, which a hosts file
    // cannot hold): --force, whatever the size
    let hosts_only = support::SETTINGS.replace("targets: [coredns, hosts]", "targets: [hosts]");
    let repo = Repo::example().with_settings(&hosts_only);
    repo.run(&["apply"]).expect_code(0);
    let hosts_before = repo.read(".zonekeeper/hosts").unwrap();
    repo.write(
        "records/home.example.yaml",
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n  - {name: \"@\", type: NS, value: ns1.home.example.}\n",
    );
    let out = repo.run(&["apply"]).expect_code(1);
    assert!(out.all().contains("would delete all 6 record set(s) we own in this zone"), "{}", out.all());
    assert_eq!(repo.read(".zonekeeper/hosts").unwrap(), hosts_before, "nothing written without --force");

    // an explicitly empty records file says it on purpose
    repo.write(
        "records/home.example.yaml",
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords: []\n",
    );
    let out = repo.run(&["apply"]).expect_code(0);
    assert!(!repo.read(".zonekeeper/hosts").unwrap().contains("192.0.2."), "{}", out.all());
}

#[test]
fn every_number_in_a_target_is_held_to_its_range_with_its_line() {
    let settings = format!(
        "{}  tdns:\n    type: technitium\n    url: https://dns.example:5380\n    rateLimit: 0.0000000001\n    attempts: 0\n    timeoutSeconds: 99999\n    concurrency: 1000\n",
        support::SETTINGS
    );
    let repo = Repo::example().with_settings(&settings);
    let out = repo.run(&["validate"]).expect_code(1).stdout();
    for (line, what) in [
        (26, "targets.tdns.rateLimit: must be at least 0.01"),
        (27, "targets.tdns.attempts: must be at least 1"),
        (28, "targets.tdns.timeoutSeconds: must be at most 3600"),
        (29, "targets.tdns.concurrency: must be at most 64"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("zonekeeper.yaml:{line}:")) && l.ends_with(what)),
            "{what}:\n{out}"
        );
    }
    // and plan stops there, before any client is made (a tiny rate used to panic in the pacing)
    let plan = repo.run(&["plan"]).expect_code(1);
    assert!(!plan.stderr().contains("panicked"), "{}", plan.all());
}

#[test]
fn a_usage_error_exits_1_so_that_2_always_means_changes_pending() {
    let repo = Repo::example();
    let out = repo.run(&["plan", "--detailed-exitcode", "--no-such-flag"]).expect_code(1);
    assert!(out.stderr().contains("unexpected argument '--no-such-flag'"), "{}", out.all());
    let out = repo.run(&["--log-level", "loud", "plan"]).expect_code(1);
    assert!(out.stderr().contains("[possible values: error, warn, info, debug]"), "{}", out.all());
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    repo.run(&["--help"]).expect_code(0);
}

#[test]
fn two_applies_at_once_do_not_interleave_and_the_second_can_wait() {
    let repo = Repo::example();
    let zones = repo.path().join(".zonekeeper/zones");
    std::fs::create_dir_all(&zones).unwrap();
    // another run holds the zone-file target's lock (flock(1) takes the same kind of lock)
    let mut holder =
        std::process::Command::new("flock").arg(&zones).args(["sleep", "2"]).spawn().expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = repo.run(&["apply"]).expect_code(1);
    assert!(out.stderr().contains("target coredns is being applied by another zonekeeper run"), "{}", out.all());
    assert!(out.stderr().contains("--wait SECONDS"), "{}", out.all());
    assert!(!repo.zone_file("home.example").exists(), "nothing written while locked");
    // --wait waits for the other run, then applies
    let out = repo.run(&["apply", "--wait", "30"]).expect_code(0);
    assert!(out.stdout().contains("applied: 12 of 12 change(s) to home.example on coredns"), "{}", out.all());
    holder.wait().unwrap();
    checkzone("home.example", &repo.zone_file("home.example"));
}

#[test]
fn small_edges_export_of_a_zone_not_held_schema_check_of_the_repo_and_no_colour_in_a_pipe() {
    let repo = Repo::example();
    repo.run(&["apply"]).expect_code(0);
    let out = repo.run(&["export", "--target", "coredns", "--zone", "other.example"]).expect_code(1);
    assert!(out.stderr().contains("target `coredns` holds no records for zone `other.example`"), "{}", out.all());
    assert!(out.stdout().is_empty(), "no empty YAML to apply by mistake: {}", out.stdout());

    // schema --check reads --repo's schema/, not the current directory's
    let out = repo.run(&["schema", "--check"]).expect_code(1);
    assert!(out.stderr().contains(&format!("{}", repo.path().join("schema/settings.json").display())), "{}", out.all());
    repo.run(&["schema"]).expect_code(0);
    repo.run(&["schema", "--check"]).expect_code(0);

    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    let out = repo.run(&["--log-level", "info", "--log-format", "text", "apply"]).expect_code(0);
    assert!(out.stderr().contains("applied"), "{}", out.all());
    assert!(!out.stderr().contains('\x1b'), "colour codes in a pipe: {:?}", out.stderr());
}

/// Every plan JSON of these cases is valid against the checked-in schema/plan.json, and a
/// document that breaks the contract is not.
#[test]
fn plan_json_follows_its_checked_in_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/plan.json").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let check = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&v).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:?}\n{json}");
        v
    };
    // creates, a hosts target, provenance
    let repo = Repo::example();
    let first = check(&repo.run(&["plan", "--format", "json"]).expect_code(0).stdout());
    // updates, deletes, a refusal, a setting change, an unreadable target
    repo.run(&["apply"]).expect_code(0);
    let settings = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    soa: {retry: 900}")
        .replace("    path: .zonekeeper/hosts", "    path: .zonekeeper");
    let repo = repo.with_settings(&settings).with_records("home.example", &many_records(1));
    let v = check(&repo.run(&["plan", "--format", "json"]).expect_code(1).stdout());
    assert_eq!(v["complete"], false, "the hosts path is a directory: {v}");
    let coredns = v["targets"].as_array().unwrap().iter().find(|t| t["target"]["name"] == "coredns").unwrap();
    assert!(!coredns["refusals"].as_array().unwrap().is_empty(), "{coredns}");
    assert_eq!(coredns["setting_changes"][0]["what"], "SOA");
    // and the contract has teeth
    for broken in [
        serde_json::json!({"version": 1}),
        {
            let mut b = first.clone();
            b["complete"] = serde_json::json!("yes");
            b
        },
        {
            let mut b = first.clone();
            b["targets"][0]["changes"][0]["op"] = serde_json::json!("upsert");
            b
        },
    ] {
        assert!(!validator.is_valid(&broken), "accepted: {broken}");
    }
}

#[test]
fn apply_reports_every_outcome_as_json_and_markdown() {
    let repo = Repo::example();
    let out = repo.run(&["apply", "--format", "json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout()));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/apply.json").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&v), "{v:#}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["complete"], true);
    let results = v["results"].as_array().unwrap();
    let coredns = results.iter().find(|r| r["target"] == "coredns").unwrap();
    assert_eq!(coredns["applied"], coredns["planned"]);
    assert!(coredns["changes"].as_array().unwrap().iter().all(|c| c["result"] == "applied"), "{coredns}");
    assert!(coredns["changes"][0]["name"].is_string() && coredns["changes"][0]["type"].is_string());
    assert!(!validator.is_valid(&serde_json::json!({"version": 1, "results": "none"})));

    // a setting change has its own row
    let settings = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    soa: {retry: 900}");
    let repo = repo.with_settings(&settings);
    let md = repo.run(&["apply", "--format", "markdown"]).expect_code(0).stdout();
    assert!(md.contains("### zonekeeper apply"), "{md}");
    assert!(md.contains("| ok | update | `home.example` | SOA | coredns | `home.example` |  |"), "{md}");
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused_naming_what_moved() {
    let repo = Repo::example();
    let plan_file = repo.path().join("reviewed.json");
    let file = plan_file.to_str().unwrap();
    let shown = repo.run(&["plan", "--out", file]).expect_code(0);
    assert!(shown.stderr().contains("saved the plan to"), "{}", shown.stderr());
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["plan"]["summary"]["create"].as_u64().map(|n| n > 0), Some(true), "{saved}");
    let out = repo.run(&["apply", file]).expect_code(0).stdout();
    assert!(out.contains("applied:"), "{out}");
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    // the same file again: what the target holds moved (the plan was applied)
    let out = repo.run(&["apply", file]).expect_code(1);
    assert!(out.stderr().contains("what coredns holds for home.example changed since the plan"), "{}", out.stderr());

    // the desired state moved after review: refused, nothing written
    let repo = repo.with_records("home.example", &many_records(2));
    repo.run(&["plan", "--out", file]).expect_code(0);
    let before = repo.read(".zonekeeper/zones/db.home.example").unwrap();
    let repo = repo.with_records("home.example", &many_records(3));
    let out = repo.run(&["apply", "--force", file]).expect_code(1);
    assert!(
        out.stderr().contains("the desired state of home.example on coredns changed since the plan"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("nothing was applied"), "{}", out.stderr());
    assert_eq!(repo.read(".zonekeeper/zones/db.home.example").unwrap(), before, "nothing written");

    // a hand edit of the target after review: refused as well
    let repo = repo.with_records("home.example", &many_records(2));
    repo.run(&["plan", "--out", file]).expect_code(0);
    repo.write(".zonekeeper/zones/db.home.example", &before.replace("192.0.2.53", "192.0.2.54"));
    let out = repo.run(&["apply", "--force", file]).expect_code(1);
    assert!(out.stderr().contains("what coredns holds for home.example changed"), "{}", out.stderr());

    // a soa setting changed after review is a desired-state change too
    repo.write(".zonekeeper/zones/db.home.example", &before);
    repo.run(&["plan", "--out", file]).expect_code(0);
    let settings = support::SETTINGS
        .replace("    directory: .zonekeeper/zones", "    directory: .zonekeeper/zones\n    soa: {refresh: 7200}");
    let repo = repo.with_settings(&settings);
    let out = repo.run(&["apply", "--force", file]).expect_code(1);
    assert!(out.stderr().contains("the desired state of home.example on coredns changed"), "{}", out.stderr());

    // not a plan, and a plan with --target
    repo.write("junk.json", "{\"version\": 1}");
    let junk = repo.path().join("junk.json");
    let out = repo.run(&["apply", junk.to_str().unwrap()]).expect_code(1);
    assert!(out.stderr().contains("is not a plan saved by `zonekeeper plan --out`"), "{}", out.stderr());
    let out = repo.run(&["apply", "--target", "coredns", file]).expect_code(1);
    assert!(out.stderr().contains("give either a plan file or --target"), "{}", out.stderr());
}
