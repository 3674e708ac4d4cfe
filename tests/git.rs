//! Reading the desired state at a git revision (`--ref`) of a real repository made by the
//! test with the git binary: the commit is read, not the working tree, and a bad commit is
//! reported with its id, file and line.

mod support;

use support::Repo;

use support::{committed, git};

fn committed_example() -> Repo {
    committed(Repo::example(), "The example zone")
}

/// The example with commit-back enabled, committed.
fn committed_with_commit_back() -> Repo {
    committed(Repo::example().with_settings(&format!("{}{COMMIT_BACK}", support::SETTINGS)), "The example zone")
}

#[test]
fn plan_at_a_ref_reads_the_commit_not_the_working_tree() {
    let repo = committed_example();
    let head = git(&repo, &["rev-parse", "--short=12", "HEAD"]);
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));

    let at_head = repo.run(&["plan", "--ref", "HEAD"]).expect_code(0).stdout();
    assert!(at_head.starts_with(&format!("zonekeeper plan: read commit {head} (The example zone) of ")), "{at_head}");
    assert!(at_head.contains("192.0.2.25") && !at_head.contains("192.0.2.26"), "{at_head}");
    // without --ref, a directory in a git repository is read at HEAD, and uncommitted
    // changes are named; --worktree reads the files on disk
    let default = repo.run(&["plan"]).expect_code(0);
    assert!(default.stdout().starts_with(&format!("zonekeeper plan: read commit {head} ")), "{}", default.all());
    assert!(
        default.stderr().contains("not reading uncommitted changes to records/home.example.yaml"),
        "{}",
        default.all()
    );
    let worktree = repo.run(&["plan", "--worktree"]).expect_code(0).stdout();
    assert!(worktree.starts_with("zonekeeper plan: read working tree of "), "{worktree}");
    assert!(worktree.contains("192.0.2.26"));
    let out = repo.run(&["plan", "--worktree", "--ref", "HEAD"]).expect_code(1);
    assert!(out.stderr().contains("cannot be used with"), "{}", out.all());

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
    zk_remote_env(url, cache, cwd, args, &[])
}

/// Like `zk_remote`, with extra environment variables.
fn zk_remote_env(
    url: &str,
    cache: &std::path::Path,
    cwd: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> support::Run {
    let out = assert_cmd::Command::cargo_bin("zonekeeper")
        .unwrap()
        .current_dir(cwd)
        .arg("--repo")
        .arg(url)
        .args(args)
        .env("ZONEKEEPER_CACHE", cache)
        .env("NO_COLOR", "1")
        .env_remove("ZONEKEEPER_GIT_TOKEN")
        .env_remove("ZONEKEEPER_GIT_TOKEN_FILE")
        // no credential helper or setting of the machine's user takes part
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    support::Run(out)
}

/// A bare repository holding the example, made with the git binary, and the work repo that
/// pushes to it.
/// The `file://` URL of the bare repository `bare_remote` made.
fn file_url(remotes: &tempfile::TempDir) -> String {
    format!("file://{}", remotes.path().join("dns.git").display())
}

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
    let url = file_url(&remotes);
    let (cache_dir, cwd_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cache, cwd) = (cache_dir.path(), cwd_dir.path());

    let first = zk_remote(&url, cache, cwd, &["plan", "--ref", "main"]).expect_code(0).stdout();
    assert!(first.contains(&format!("(The example zone) of {url}")), "{first}");
    assert!(first.contains("192.0.2.25"));
    // zone files of a remote repository land relative to the current directory
    zk_remote(&url, cache, cwd, &["apply", "--target", "coredns"]).expect_code(0);
    assert!(cwd.join(".zonekeeper/zones/db.home.example").exists());

    // a new commit on the remote is picked up by the next run
    work.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    git(&work, &["commit", "-q", "-am", "Move mail"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let second = zk_remote(&url, cache, cwd, &["plan"]).expect_code(0).stdout();
    assert!(second.contains("(Move mail)") && second.contains("192.0.2.25 → 192.0.2.26"), "{second}");

    // a branch deleted on the remote is gone here too after the next fetch
    git(&work, &["push", "-q", "origin", "main:refs/heads/old"]);
    zk_remote(&url, cache, cwd, &["plan", "--ref", "old"]).expect_code(0);
    git(&work, &["push", "-q", "origin", ":refs/heads/old"]);
    let out = zk_remote(&url, cache, cwd, &["plan", "--ref", "old"]).expect_code(1);
    assert!(out.stderr().contains("`old` names no commit"), "{}", out.stderr());

    // the remote is gone: the last fetched commit stands, with a warning, never "no records"
    std::fs::remove_dir_all(remotes.path().join("dns.git")).unwrap();
    let out = zk_remote(&url, cache, cwd, &["plan", "--detailed-exitcode"]).expect_code(2);
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
    assert!(out.stderr().contains("cannot fetch file:///nonexistent/dns.git: "), "{}", out.stderr());
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_none(), "no half-made clone is left behind");
}

#[test]
fn a_git_url_served_by_git_daemon_is_read() {
    let (_work, remotes) = bare_remote();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // git-daemon itself, not `git daemon`: killing the `git` wrapper would leave the daemon
    // running, holding the test's output open.
    let exec_path = std::process::Command::new("git").arg("--exec-path").output().expect("git must be installed");
    let exec_path = std::path::PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim());
    let mut daemon = std::process::Command::new(exec_path.join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
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

const COMMIT_BACK: &str = "commitBack: {path: observed, branch: zonekeeper-observed, authorName: zonekeeper-bot, authorEmail: bot@home.example}\n";

/// The paths a branch of a bare repository holds.
fn branch_files(bare: &std::path::Path, branch: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["ls-tree", "-r", "--name-only", branch])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn commit_count(repo_dir: &std::path::Path, branch: &str) -> usize {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo_dir)
        .args(["rev-list", "--count", branch])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

#[test]
fn commit_back_makes_one_commit_per_change_and_none_without_one() {
    let repo = committed_with_commit_back();
    repo.run(&["apply"]).expect_code(0);

    let out = repo.run(&["observe", "--commit"]).expect_code(0).stdout();
    assert!(out.contains("committed ") && out.contains("to zonekeeper-observed"), "{out}");
    assert_eq!(commit_count(repo.path(), "zonekeeper-observed"), 1);
    let doc = git(&repo, &["show", "zonekeeper-observed:observed/coredns/home.example.yaml"]);
    assert!(doc.contains("kind: Observed") && doc.contains("{name: \"mail\", type: A, ttl: 300, values: [\"192.0.2.25\"], owner: \"ours\", state: in_sync, source: \"records/home.example.yaml:17\"}"), "{doc}");
    assert!(doc.ends_with("drift: 0"), "{doc}");
    let author = git(&repo, &["log", "-1", "--format=%an <%ae>", "zonekeeper-observed"]);
    assert_eq!(author, "zonekeeper-bot <bot@home.example>");

    // nothing changed: no commit
    let again = repo.run(&["observe", "--commit"]).expect_code(0).stdout();
    assert!(again.contains("nothing committed"), "{again}");
    assert_eq!(commit_count(repo.path(), "zonekeeper-observed"), 1);

    // the target changed: one more commit, and main and the working tree are untouched
    repo.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    repo.run(&["apply", "--worktree"]).expect_code(0);
    repo.run(&["observe", "--commit"]).expect_code(0);
    assert_eq!(commit_count(repo.path(), "zonekeeper-observed"), 2);
    assert_eq!(commit_count(repo.path(), "main"), 1);
    assert!(git(&repo, &["show", "zonekeeper-observed:observed/hosts/home.example.yaml"]).contains("192.0.2.26"));
}

#[test]
fn commit_back_is_opt_in_and_never_commits_a_failed_read() {
    let repo = committed_example();
    let out = repo.run(&["observe", "--commit"]).expect_code(1);
    assert!(out.stderr().contains("commit-back is not enabled"), "{}", out.stderr());
    // without --commit it only prints
    let printed = repo.run(&["observe"]).expect_code(0).stdout();
    assert!(
        printed.contains("# observed/coredns/home.example.yaml") && printed.contains("kind: Observed"),
        "{printed}"
    );
}

/// A bare remote holding the example with commit-back enabled, a cache and a directory to
/// run in.
struct CommitBackRemote {
    _work: Repo,
    remotes: tempfile::TempDir,
    cache: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl CommitBackRemote {
    fn new() -> CommitBackRemote {
        let (work, remotes) = bare_remote();
        work.write("zonekeeper.yaml", &format!("{}{COMMIT_BACK}", support::SETTINGS));
        git(&work, &["commit", "-q", "-am", "Enable commit-back"]);
        git(&work, &["push", "-q", "origin", "main"]);
        CommitBackRemote {
            _work: work,
            remotes,
            cache: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }
    fn bare(&self) -> std::path::PathBuf {
        self.remotes.path().join("dns.git")
    }
    fn url(&self) -> String {
        file_url(&self.remotes)
    }
}

#[test]
fn commit_back_to_a_remote_pushes_the_commit() {
    let remote = CommitBackRemote::new();
    let (bare, url, cache, cwd) = (remote.bare(), remote.url(), remote.cache.path(), remote.cwd.path());
    zk_remote(&url, cache, cwd, &["apply"]).expect_code(0);
    let out = zk_remote(&url, cache, cwd, &["observe", "--commit"]).expect_code(0).stdout();
    assert!(out.contains("and pushed it to file://"), "{out}");
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 1);

    // someone else adds to the branch; our next commit goes on top of theirs, nothing is lost
    let other = Repo::empty();
    git(&other, &["clone", "-q", "-b", "zonekeeper-observed", bare.to_str().unwrap(), "."]);
    other.write("notes.md", "hand-written\n");
    git(&other, &["add", "notes.md"]);
    git(&other, &["commit", "-q", "-m", "A note"]);
    git(&other, &["push", "-q", "origin", "zonekeeper-observed"]);
    std::fs::write(cwd.join(".zonekeeper/hosts"), "").unwrap();
    zk_remote(&url, cache, cwd, &["observe", "--commit"]).expect_code(0);
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 3);
    let files = branch_files(&bare, "zonekeeper-observed");
    assert!(files.contains("notes.md") && files.contains("observed/hosts/home.example.yaml"), "{files}");
}

#[test]
fn a_push_rejected_because_the_remote_moved_is_redone_on_top() {
    let remote = CommitBackRemote::new();
    let (bare, url, cache, cwd) = (remote.bare(), remote.url(), remote.cache.path(), remote.cwd.path());
    zk_remote(&url, cache, cwd, &["apply"]).expect_code(0);
    zk_remote(&url, cache, cwd, &["observe", "--commit"]).expect_code(0);

    // Someone pushes to the branch between our fetch and our push: a pre-push hook in our
    // cached clone does it once, so the remote has moved when our push arrives.
    let other = Repo::empty();
    git(&other, &["clone", "-q", "-b", "zonekeeper-observed", bare.to_str().unwrap(), "."]);
    let clone = std::fs::read_dir(cache).unwrap().next().unwrap().unwrap().path();
    let marker = cache.join("raced");
    let hook = clone.join(".git/hooks/pre-push");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ -e '{m}' ] && exit 0\ntouch '{m}'\ncd '{o}' && echo race > race.md && git add race.md && \
             git -c user.name=Other -c user.email=o@example.org commit -q -m Race && git push -q origin zonekeeper-observed\n",
            m = marker.display(),
            o = other.path().display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&hook).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    std::fs::write(cwd.join(".zonekeeper/hosts"), "").unwrap();
    let out = zk_remote(&url, cache, cwd, &["observe", "--commit"]);
    let out = out.expect_code(0);
    assert!(marker.exists(), "the race happened");
    assert!(out.stdout().contains("and pushed it"), "{}", out.all());
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 3, "theirs and ours, none lost");
    assert!(branch_files(&bare, "zonekeeper-observed").contains("race.md"));
}

#[test]
fn commit_back_may_not_overwrite_the_desired_state() {
    let settings = format!("{}commitBack: {{path: records}}\n", support::SETTINGS);
    let out = Repo::example().with_settings(&settings).run(&["validate"]).expect_code(1).stdout();
    assert!(out.contains("commitBack.path: `records` must be a relative folder"), "{out}");
    let repo = committed_with_commit_back();
    git(&repo, &["branch", "zonekeeper-observed"]);
    let out = repo.run(&["observe", "--commit", "--ref", "zonekeeper-observed"]).expect_code(1);
    assert!(out.stderr().contains("is the branch the desired state is read from"), "{}", out.stderr());
}

const TOKEN: &str = "glpat-s3cr3t-T0ken";

#[test]
fn an_http_remote_takes_a_token_for_fetch_and_push_and_never_shows_it() {
    let remote = CommitBackRemote::new();
    let (bare, cache, cwd) = (remote.bare(), remote.cache.path(), remote.cwd.path());
    let server = support::githttp::GitHttp::start(remote.remotes.path(), "x-access-token", TOKEN);
    let url = server.url("dns.git");

    // no token: the server's refusal is a clear error, and no clone is left behind
    let out = zk_remote(&url, cache, cwd, &["plan"]).expect_code(1);
    assert!(out.stderr().contains("cannot fetch http://127.0.0.1:"), "{}", out.all());
    assert!(out.stderr().contains("put a token in ZONEKEEPER_GIT_TOKEN or --git-token-file"), "{}", out.all());
    assert!(std::fs::read_dir(cache).map(|mut d| d.next().is_none()).unwrap_or(true));
    // a wrong token is refused the same way
    let out = zk_remote_env(&url, cache, cwd, &["plan"], &[("ZONEKEEPER_GIT_TOKEN", "wrong")]).expect_code(1);
    assert!(out.stderr().contains("cannot fetch") && !out.all().contains("wrong"), "{}", out.all());
    assert!(out.stderr().contains("were not accepted by the remote"), "{}", out.all());

    // the token from the environment: cloned, planned, applied
    let with_token = [("ZONEKEEPER_GIT_TOKEN", TOKEN)];
    let out = zk_remote_env(&url, cache, cwd, &["apply"], &with_token).expect_code(0);
    assert!(out.stdout().contains("(Enable commit-back) of http://127.0.0.1:"), "{}", out.all());
    assert!(!out.all().contains(TOKEN));
    // commit-back pushes through the same server with the same token (git http-backend's
    // receive-pack), from a token file this time
    let token_file = cwd.join("git-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let file_arg = token_file.to_str().unwrap();
    let out = zk_remote(&url, cache, cwd, &["--git-token-file", file_arg, "observe", "--commit"]).expect_code(0);
    assert!(out.stdout().contains("and pushed it to http://127.0.0.1:"), "{}", out.all());
    assert!(!out.all().contains(TOKEN));
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 1);

    let seen = server.seen();
    let pushed = seen.iter().find(|s| s.method == "POST" && s.path.ends_with("/git-receive-pack"));
    assert_eq!(pushed.map(|s| (s.status, s.login.clone())), Some((200, Some(format!("x-access-token:{TOKEN}")))));
    assert!(seen.iter().any(|s| s.path.ends_with("/git-upload-pack") && s.status == 200), "{seen:?}");
    // nothing of the token is stored in the cache's git config
    let clone = std::fs::read_dir(cache).unwrap().filter_map(Result::ok).find(|e| e.path().join(".git").exists());
    let config = std::fs::read_to_string(clone.unwrap().path().join(".git/config")).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
}

#[test]
fn a_token_is_never_sent_over_plain_http_to_another_host() {
    let cache = tempfile::tempdir().unwrap();
    let out = zk_remote_env(
        "http://git.example.invalid/dns.git",
        cache.path(),
        cache.path(),
        &["plan"],
        &[("ZONEKEEPER_GIT_TOKEN", TOKEN)],
    )
    .expect_code(1);
    assert!(
        out.stderr().contains("refusing to send the git token to http://git.example.invalid/dns.git"),
        "{}",
        out.all()
    );
    assert!(!out.all().contains(TOKEN));
    let out = zk_remote(
        "file:///nonexistent/dns.git",
        cache.path(),
        cache.path(),
        &["--git-token-file", "/nonexistent/token", "plan"],
    )
    .expect_code(1);
    assert!(out.stderr().contains("cannot read the git token file /nonexistent/token"), "{}", out.all());
}

#[test]
fn a_bad_commit_on_a_followed_branch_keeps_the_last_good_one_in_force() {
    let (work, remotes) = bare_remote();
    let url = file_url(&remotes);
    let (cache_dir, cwd_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cache, cwd) = (cache_dir.path(), cwd_dir.path());
    let good = git(&work, &["rev-parse", "--short=12", "HEAD"]);
    zk_remote(&url, cache, cwd, &["apply"]).expect_code(0);

    work.write("records/home.example.yaml", &support::RECORDS.replace("value: 192.0.2.25}", "value: 192.0.2.300}"));
    git(&work, &["commit", "-q", "-am", "Typo"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let bad = git(&work, &["rev-parse", "--short=12", "HEAD"]);

    // The zone file drifted meanwhile: apply reports the bad commit, exits 1, and keeps the
    // last good commit in force, which puts the file back.
    let zone = cwd.join(".zonekeeper/zones/db.home.example");
    std::fs::remove_file(&zone).unwrap();
    let out = zk_remote(&url, cache, cwd, &["apply"]).expect_code(1);
    let err = out.stderr();
    assert!(err.contains(&format!("error: in the commit {bad} (Typo) of {url}")), "{err}");
    assert!(err.contains("records/home.example.yaml:17:5: records[8].value[0]: `192.0.2.300`"), "{err}");
    assert!(err.contains(&format!("the last good commit {good} (The example zone) of {url} stays in force")), "{err}");
    assert!(std::fs::read_to_string(&zone).unwrap().contains("192.0.2.25"));
    // plan shows the plan of the commit in force; validate checks the commit asked for
    let plan = zk_remote(&url, cache, cwd, &["plan"]).expect_code(1);
    assert!(plan.stdout().starts_with(&format!("zonekeeper plan: read commit {good} ")), "{}", plan.all());
    let validate = zk_remote(&url, cache, cwd, &["validate"]).expect_code(1);
    assert!(validate.stdout().contains("`192.0.2.300` is not an IPv4 address"), "{}", validate.all());
    assert!(!validate.all().contains("stays in force"), "{}", validate.all());
    // a commit named by its id, or relative to a branch, is what was asked for: no stand-in
    for fixed in [bad.as_str(), "main~0"] {
        let out = zk_remote(&url, cache, cwd, &["plan", "--ref", fixed]).expect_code(1);
        assert!(!out.all().contains("stays in force") && out.stderr().contains("192.0.2.300"), "{}", out.all());
    }

    // the next commit is tried when it comes, and it is good
    work.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    git(&work, &["commit", "-q", "-am", "Fix the typo"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let out = zk_remote(&url, cache, cwd, &["apply"]).expect_code(0);
    assert!(out.stdout().contains("(Fix the typo)"), "{}", out.all());
    assert!(std::fs::read_to_string(&zone).unwrap().contains("192.0.2.26"));
}

#[test]
fn a_bad_branch_with_no_good_commit_yet_is_an_error_and_writes_nothing() {
    let (work, remotes) = bare_remote();
    work.write("records/home.example.yaml", &support::RECORDS.replace("value: 192.0.2.25}", "value: 192.0.2.300}"));
    git(&work, &["commit", "-q", "-am", "Typo"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let url = file_url(&remotes);
    let (cache, cwd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = zk_remote(&url, cache.path(), cwd.path(), &["apply"]).expect_code(1);
    assert!(out.stderr().contains("(Typo)") && !out.all().contains("stays in force"), "{}", out.all());
    assert!(!cwd.path().join(".zonekeeper").exists());
}

#[test]
fn a_renamed_default_branch_is_followed() {
    let (work, remotes) = bare_remote();
    let bare = remotes.path().join("dns.git");
    let url = format!("file://{}", bare.display());
    let (cache, cwd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    zk_remote(&url, cache.path(), cwd.path(), &["plan"]).expect_code(0);

    // the remote's default branch becomes `trunk`, with a new commit, and `main` goes away
    work.write("records/home.example.yaml", &support::RECORDS.replace("192.0.2.25", "192.0.2.26"));
    git(&work, &["commit", "-q", "-am", "On trunk"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/trunk"]);
    let bare_git = |args: &[&str]| {
        let ok = std::process::Command::new("git").arg("--git-dir").arg(&bare).args(args).status().unwrap();
        assert!(ok.success(), "git {args:?}");
    };
    bare_git(&["symbolic-ref", "HEAD", "refs/heads/trunk"]);
    bare_git(&["branch", "-D", "main"]);

    let out = zk_remote(&url, cache.path(), cwd.path(), &["plan"]).expect_code(0);
    assert!(out.stdout().contains("(On trunk)"), "{}", out.all());
    // `main` is gone on the remote: no copy of it in the cache answers for it
    let out = zk_remote(&url, cache.path(), cwd.path(), &["plan", "--ref", "main"]).expect_code(1);
    assert!(out.stderr().contains("`main` names no commit"), "{}", out.all());

    // a remote with a detached HEAD: the commit it names is read
    let first = String::from_utf8(
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&bare)
            .args(["rev-parse", "trunk~1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(bare.join("HEAD"), &first).unwrap();
    let out = zk_remote(&url, cache.path(), cwd.path(), &["plan"]).expect_code(0);
    assert!(out.stdout().contains("(The example zone)"), "{}", out.all());
}

#[test]
fn commit_back_refuses_a_branch_checked_out_in_any_worktree() {
    let repo = committed_with_commit_back();
    repo.run(&["apply"]).expect_code(0);

    git(&repo, &["checkout", "-q", "-b", "zonekeeper-observed"]);
    let out = repo.run(&["observe", "--commit"]).expect_code(1);
    assert!(out.stderr().contains("`zonekeeper-observed` is checked out in"), "{}", out.all());

    git(&repo, &["checkout", "-q", "main"]);
    let linked = tempfile::tempdir().unwrap();
    let linked_path = linked.path().join("observed-wt");
    git(&repo, &["worktree", "add", "-q", linked_path.to_str().unwrap(), "zonekeeper-observed"]);
    let out = repo.run(&["observe", "--commit"]).expect_code(1);
    assert!(out.stderr().contains(&format!("is checked out in {}", linked_path.display())), "{}", out.all());
    assert_eq!(commit_count(repo.path(), "zonekeeper-observed"), 1, "nothing committed");

    git(&repo, &["worktree", "remove", linked_path.to_str().unwrap()]);
    repo.run(&["observe", "--commit"]).expect_code(0);
    assert_eq!(commit_count(repo.path(), "zonekeeper-observed"), 2);
}

#[test]
fn a_push_refused_for_another_reason_is_reported_not_retried() {
    let remote = CommitBackRemote::new();
    let (bare, url, cache, cwd) = (remote.bare(), remote.url(), remote.cache.path(), remote.cwd.path());
    zk_remote(&url, cache, cwd, &["apply"]).expect_code(0);
    zk_remote(&url, cache, cwd, &["observe", "--commit"]).expect_code(0);
    // A stale lock on the remote: git says "cannot lock ref", as it does in a race, but the
    // branch has not moved, so fetching and retrying cannot help.
    std::fs::write(bare.join("refs/heads/zonekeeper-observed.lock"), "").unwrap();
    std::fs::write(cwd.join(".zonekeeper/hosts"), "").unwrap();
    let out = zk_remote(&url, cache, cwd, &["observe", "--commit"]).expect_code(1);
    let err = out.stderr();
    assert!(err.contains(&format!("git push to {url} was refused, and the remote branch has not moved")), "{err}");
    assert!(err.contains("cannot lock ref"), "{err}");
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 1);
}

#[test]
fn a_folder_inside_a_repository_is_read_at_head_of_that_repository() {
    let repo = Repo::empty();
    let dns = repo.path().join("infra/dns");
    std::fs::create_dir_all(dns.join("records")).unwrap();
    std::fs::write(dns.join("zonekeeper.yaml"), format!("{}{COMMIT_BACK}", support::SETTINGS)).unwrap();
    std::fs::write(dns.join("records/home.example.yaml"), support::RECORDS).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let run = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("zonekeeper")
            .unwrap()
            .arg("--repo")
            .arg(&dns)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        support::Run(out)
    };
    // no commit yet: a clear error that says what to do
    let out = run(&["plan"]).expect_code(1);
    assert!(out.stderr().contains("no commit yet") && out.stderr().contains("--worktree"), "{}", out.all());

    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "DNS in a folder"]);
    let out = run(&["plan"]).expect_code(0);
    assert!(out.stdout().contains("(DNS in a folder) of "), "{}", out.all());
    assert!(out.stdout().contains("192.0.2.25") && out.stderr().is_empty(), "{}", out.all());
    assert!(run(&["plan", "--ref", "main"]).expect_code(0).stdout().contains("(DNS in a folder)"));
    // zone files land relative to the folder, as from its working tree
    run(&["apply"]).expect_code(0);
    assert!(dns.join(".zonekeeper/zones/db.home.example").exists());
    // commit-back goes under the folder too
    run(&["observe", "--commit"]).expect_code(0);
    let files = branch_files(&repo.path().join(".git"), "zonekeeper-observed");
    assert!(files.contains("infra/dns/observed/coredns/home.example.yaml"), "{files}");
}

#[test]
fn an_https_remote_is_fetched_and_pushed_over_verified_tls() {
    let remote = CommitBackRemote::new();
    let (bare, cache, cwd) = (remote.bare(), remote.cache.path(), remote.cwd.path());
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, cert_path) = support::test_ca_and_server_cert(certs.path());
    let server = support::githttp::GitHttp::start_tls(remote.remotes.path(), "x-access-token", TOKEN, &cert, &key);
    let url = server.url("dns.git");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // a certificate nothing vouches for is refused before any request, token included, is sent
    let out = zk_remote_env(&url, cache, cwd, &["plan"], &[("ZONEKEEPER_GIT_TOKEN", TOKEN)]).expect_code(1);
    assert!(out.stderr().contains("cannot fetch https://127.0.0.1:"), "{}", out.all());
    assert!(server.seen().is_empty(), "{:?}", server.seen());

    // the CA trusted through SSL_CERT_FILE (the fetch) and GIT_SSL_CAINFO (git push)
    let ca = cert_path.to_str().unwrap();
    let env = [("ZONEKEEPER_GIT_TOKEN", TOKEN), ("SSL_CERT_FILE", ca), ("GIT_SSL_CAINFO", ca)];
    let out = zk_remote_env(&url, cache, cwd, &["apply"], &env).expect_code(0);
    assert!(out.stdout().contains(&format!("(Enable commit-back) of {url}")), "{}", out.all());
    let out = zk_remote_env(&url, cache, cwd, &["observe", "--commit"], &env).expect_code(0);
    assert!(out.stdout().contains("and pushed it to https://127.0.0.1:"), "{}", out.all());
    assert!(!out.all().contains(TOKEN));
    assert_eq!(commit_count(&bare, "zonekeeper-observed"), 1);
    let pushed = server.seen().into_iter().find(|s| s.method == "POST" && s.path.ends_with("/git-receive-pack"));
    assert_eq!(pushed.map(|s| s.status), Some(200));
}

#[test]
fn preview_reads_the_disk_and_says_so_when_given_a_ref_or_a_url() {
    let repo = committed_example();
    let hosts = repo.path().join("hosts");
    let out = repo.run(&["preview", "--hosts", hosts.to_str().unwrap(), "--ref", "HEAD"]).expect_code(1);
    assert!(out.stderr().contains("preview reads the files on disk"), "{}", out.all());
    assert!(!hosts.exists());
    let cache = tempfile::tempdir().unwrap();
    let out = zk_remote("file:///nonexistent/dns.git", cache.path(), cache.path(), &["preview", "--hosts", "h"])
        .expect_code(1);
    assert!(out.stderr().contains("preview reads the files on disk"), "{}", out.all());
}

#[test]
fn a_remote_that_never_answers_is_given_up_after_the_git_timeout() {
    // accepts the connection, then says nothing: only a deadline ends the fetch
    let (url, _hang) = support::silent_listener();
    let url = format!("{url}/dns.git");
    let (cache_dir, cwd_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = zk_remote(&url, cache_dir.path(), cwd_dir.path(), &["--git-timeout", "1", "--timeout", "60", "plan"])
        .expect_code(1);
    assert!(out.stderr().contains("no answer within 1 s (--git-timeout)"), "{}", out.stderr());
    assert!(!out.stderr().contains("--timeout 60"), "the fetch's own deadline ended it: {}", out.stderr());
}
