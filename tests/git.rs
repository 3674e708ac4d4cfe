//! Reading the desired state at a git revision (`--ref`) of a real repository made by the
//! test with the git binary: the commit is read, not the working tree, and a bad commit is
//! reported with its id, file and line.

mod support;

use support::Repo;

fn git(repo: &Repo, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git must be installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn committed_example() -> Repo {
    let repo = Repo::example();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "The example zone"]);
    repo
}

#[test]
fn plan_at_a_ref_reads_the_commit_not_the_working_tree() {
    let repo = committed_example();
    let head = git(&repo, &["rev-parse", "--short=12", "HEAD"]);
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));

    let at_head = repo.run(&["plan", "--ref", "HEAD"]).expect_code(0).stdout();
    assert!(at_head.starts_with(&format!("zonekeeper plan: read commit {head} (The example zone) of ")), "{at_head}");
    assert!(at_head.contains("192.0.2.25") && !at_head.contains("192.0.2.26"), "{at_head}");
    let worktree = repo.run(&["plan"]).expect_code(0).stdout();
    assert!(worktree.starts_with("zonekeeper plan: read working tree of "), "{worktree}");
    assert!(worktree.contains("192.0.2.26"));

    // a newer commit is picked up, and the older one can still be planned
    git(&repo, &["commit", "-q", "-am", "Move mail"]);
    assert!(repo.run(&["plan", "--ref", "main"]).expect_code(0).stdout().contains("192.0.2.26"));
    assert!(repo.run(&["plan", "--ref", "HEAD~1"]).expect_code(0).stdout().contains("192.0.2.25"));
    // apply at a ref writes what the commit says
    repo.run(&["apply", "--ref", "HEAD~1", "--target", "coredns"]).expect_code(0);
    assert!(repo.read(".zonekeeper/zones/db.home.example").unwrap().contains("192.0.2.25"));
}

#[test]
fn a_bad_commit_names_the_commit_file_and_line_and_writes_nothing() {
    let repo = committed_example();
    repo.write("records/home.example.yaml", &support::RECORDS.replace("value: 192.0.2.25}", "value: 192.0.2.300}"));
    git(&repo, &["commit", "-q", "-am", "Typo"]);
    let bad = git(&repo, &["rev-parse", "--short=12", "HEAD"]);
    let out = repo.run(&["apply", "--ref", "HEAD"]).expect_code(1);
    assert!(out.stderr().contains(&format!("in the commit {bad} (Typo) of")), "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("records/home.example.yaml:17:5: records[8].value[0]: `192.0.2.300` is not an IPv4 address"),
        "{}",
        out.stderr()
    );
    assert!(repo.read(".zonekeeper/zones/db.home.example").is_none());
    // the last good commit still plans
    repo.run(&["validate", "--ref", "HEAD~1"]).expect_code(0);
}

#[test]
fn an_unknown_ref_and_a_non_repository_are_clear_errors() {
    let repo = committed_example();
    let out = repo.run(&["plan", "--ref", "no-such-branch"]).expect_code(1);
    assert!(out.stderr().contains("`no-such-branch` names no commit in"), "{}", out.stderr());
    let plain = Repo::example();
    let out = plain.run(&["plan", "--ref", "HEAD"]).expect_code(1);
    assert!(out.stderr().contains("is not a git repository"), "{}", out.stderr());
}

#[test]
fn a_committed_symlink_is_refused_not_followed() {
    let repo = committed_example();
    std::os::unix::fs::symlink("/dev/zero", repo.path().join("records/zero.yaml")).unwrap();
    git(&repo, &["add", "records/zero.yaml"]);
    git(&repo, &["commit", "-q", "-m", "Link"]);
    let out = repo.run(&["validate", "--ref", "HEAD"]).expect_code(1);
    assert!(out.stdout().contains("records/zero.yaml: is a symlink or submodule in this commit"), "{}", out.all());
}

/// Runs the binary with `--repo URL`, caching under `cache`, from the directory `cwd`.
fn zk_remote(url: &str, cache: &std::path::Path, cwd: &std::path::Path, args: &[&str]) -> support::Run {
    let out = assert_cmd::Command::cargo_bin("zonekeeper")
        .unwrap()
        .current_dir(cwd)
        .arg("--repo")
        .arg(url)
        .args(args)
        .env("ZONEKEEPER_CACHE", cache)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    support::Run(out)
}

/// A bare repository holding the example, made with the git binary, and the work repo that
/// pushes to it.
fn bare_remote() -> (Repo, tempfile::TempDir) {
    let work = committed_example();
    let remotes = tempfile::tempdir().unwrap();
    let bare = remotes.path().join("dns.git");
    git(&work, &["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    (work, remotes)
}

#[test]
fn a_file_url_is_fetched_read_at_a_ref_and_kept_when_the_remote_goes_away() {
    let (work, remotes) = bare_remote();
    let url = format!("file://{}", remotes.path().join("dns.git").display());
    let cache = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();

    let first = zk_remote(&url, cache.path(), cwd.path(), &["plan", "--ref", "main"]).expect_code(0).stdout();
    assert!(first.contains(&format!("(The example zone) of {url}")), "{first}");
    assert!(first.contains("192.0.2.25"));
    // zone files of a remote repository land relative to the current directory
    zk_remote(&url, cache.path(), cwd.path(), &["apply", "--target", "coredns"]).expect_code(0);
    assert!(cwd.path().join(".zonekeeper/zones/db.home.example").exists());

    // a new commit on the remote is picked up by the next run
    work.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    git(&work, &["commit", "-q", "-am", "Move mail"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let second = zk_remote(&url, cache.path(), cwd.path(), &["plan"]).expect_code(0).stdout();
    assert!(second.contains("(Move mail)") && second.contains("192.0.2.25 → 192.0.2.26"), "{second}");

    // the remote is gone: the last fetched commit stands, with a warning, never "no records"
    std::fs::remove_dir_all(remotes.path().join("dns.git")).unwrap();
    let out = zk_remote(&url, cache.path(), cwd.path(), &["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stderr().contains("failed") && out.stderr().contains("reading the last fetched commits"),
        "{}",
        out.stderr()
    );
    assert!(out.stdout().contains("(Move mail)"), "{}", out.stdout());
}

#[test]
fn an_unreachable_remote_without_a_cache_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let out = zk_remote("file:///nonexistent/dns.git", cache.path(), cache.path(), &["plan"]).expect_code(1);
    assert!(out.stderr().contains("fetch failed"), "{}", out.stderr());
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_none(), "no half-made clone is left behind");
}

#[test]
fn a_git_url_served_by_git_daemon_is_read() {
    let (_work, remotes) = bare_remote();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut daemon = std::process::Command::new("git")
        .args(["daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", remotes.path().display()))
        .arg(remotes.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cache = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{port}/dns.git");
    let out = zk_remote(&url, cache.path(), cache.path(), &["plan", "--ref", "main"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let out = out.expect_code(0).stdout();
    assert!(out.contains(&format!("(The example zone) of {url}")), "{out}");
}
