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
