//! `preview --watch` as a person uses it: the real binary watching a real directory,
//! re-rendering the hosts block on save, keeping the last good block on a broken save,
//! and leaving cleanly on Ctrl-C (SIGINT).

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Repo;

/// Waits (generously: this is a liveness check, not a speed check) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `preview --watch` on `repo` into `hosts`, its stdout piped.
fn watch(repo: &Repo, hosts: &std::path::Path, stderr: Stdio) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
        .args(["--repo", repo.path().to_str().unwrap(), "preview", "--watch", "--hosts", hosts.to_str().unwrap()])
        .env("ZONEKEEPER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[test]
fn watch_follows_edits_keeps_the_last_good_block_and_stops_on_ctrl_c() {
    let repo = Repo::example();
    let hosts_dir = tempfile::tempdir().unwrap();
    let hosts = hosts_dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let mut child = watch(&repo, &hosts, Stdio::piped());
    let read = || std::fs::read_to_string(&hosts).unwrap_or_default();
    wait_for("the first render", || read().contains("192.0.2.25\tmail.home.example"));
    assert!(read().starts_with("127.0.0.1 localhost\n"));

    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    wait_for("the edit to show", || read().contains("192.0.2.26\tmail.home.example"));

    let good = read();
    repo.write("records/home.example.yaml", "zone: [unclosed\n");
    // Then a valid edit after the broken one: it must still be picked up.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(read(), good, "a broken save keeps the last good block");
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.27"));
    wait_for("recovery after the fix", || read().contains("192.0.2.27\tmail.home.example"));

    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "preview did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(code.success(), "exit {code:?}\n{out}\n{err}");
    assert!(out.contains("preview: stopped"), "{out}");
    assert!(err.contains("records/home.example.yaml:1:"), "the broken save is reported with its location: {err}");
}

#[test]
fn preview_once_writes_the_block_and_names_a_missing_view() {
    let repo = Repo::example();
    let hosts = repo.path().join("h");
    repo.run(&["preview", "--hosts", hosts.to_str().unwrap()]).expect_code(0);
    assert!(std::fs::read_to_string(&hosts).unwrap().contains("# BEGIN zonekeeper owner=example-home"));
    let out = repo.run(&["preview", "--hosts", hosts.to_str().unwrap(), "--view", "nope"]).expect_code(1);
    assert!(out.stderr().contains("view `nope` is not declared"), "{}", out.stderr());
}

/// Runs `preview --watch` for `idle`, with no file changed, then Ctrl-C; returns stdout.
fn watch_idle(repo: &Repo, hosts: &std::path::Path, idle: Duration) -> String {
    let mut child = watch(repo, hosts, Stdio::null());
    wait_for("the first render", || std::fs::read_to_string(hosts).unwrap_or_default().contains("mail.home.example"));
    std::thread::sleep(idle);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.wait().unwrap();
    out
}

#[test]
fn watch_renders_once_when_nothing_changes_wherever_the_hosts_file_is() {
    // outside the repository, and inside it without existing at the start (its own writes
    // and our reads of the desired state must not count as changes)
    let repo = Repo::example();
    let outside = tempfile::tempdir().unwrap();
    for hosts in [outside.path().join("hosts"), repo.path().join("hosts")] {
        let out = watch_idle(&repo, &hosts, Duration::from_secs(3));
        assert!(out.contains("preview: watching") && out.contains("preview: stopped"), "{out}");
        assert_eq!(out.matches(" updated (").count(), 1, "one render, then quiet: {out}");
    }
}
