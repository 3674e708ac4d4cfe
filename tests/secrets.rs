//! A pull request cannot steal a secret: the operator binds each API token to an origin in a
//! credentials file outside the repository, and a commit that points a target elsewhere, or
//! names another variable or file, sends no token anywhere and says why. Token variables are
//! not inherited by the processes zonekeeper starts (git, ssh).

mod support;

use support::technitium::Technitium;
use support::{Credentials, Recorder, Repo, committed, git};

const TOKEN: &str = "tdns-7c1e55a0b2";
const RECORDS: &str = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n  - {name: www, type: A, value: 192.0.2.10}\n";

fn settings(target: &str) -> String {
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns: {{type: technitium, {target}, rateLimit: 1000, attempts: 1, timeoutSeconds: 5}}\n"
    )
}

fn bound(origin: &str) -> Credentials {
    Credentials::new(&format!("credentials:\n  - {{origin: \"{origin}\", tokenEnv: TDNS_TOKEN}}\n"))
}

fn zonekeeper(repo: &Repo, creds: &Credentials, args: &[&str], env: &[(&str, &str)]) -> support::Run {
    let path = creds.path();
    let mut all: Vec<(&str, &std::ffi::OsStr)> =
        vec![("ZONEKEEPER_CREDENTIALS", path.as_os_str()), ("TDNS_TOKEN", TOKEN.as_ref())];
    all.extend(env.iter().map(|(k, v)| (*k, v.as_ref())));
    repo.run_env(args, &all)
}

/// The operator's server, with the token bound to it, and the repository at a first good
/// commit that plans against it.
fn operator_setup() -> (Technitium, Credentials, Repo) {
    let dns = Technitium::start(TOKEN, "home.example");
    let creds = bound(&dns.url());
    let repo = Repo::empty()
        .with_settings(&settings(&format!("url: \"{}\"", dns.url())))
        .with_records("home.example", RECORDS);
    let repo = committed(repo, "The home zone");
    zonekeeper(&repo, &creds, &["plan", "--detailed-exitcode"], &[]).expect_code(2);
    assert_eq!(dns.state.lock().unwrap().calls.len(), 1, "the good commit is planned with the token");
    dns.clear_calls();
    (dns, creds, repo)
}

#[test]
fn a_commit_that_points_a_target_at_another_listener_sends_it_no_token() {
    let (dns, creds, repo) = operator_setup();
    let thief = Recorder::start();
    repo.write("zonekeeper.yaml", &settings(&format!("url: \"{}\"", thief.url)));
    git(&repo, &["commit", "-q", "-am", "Use the new server"]);

    let out = zonekeeper(&repo, &creds, &["plan"], &[]).expect_code(1);
    let origin = thief.url.clone();
    assert!(out.stderr().contains(&format!("no credential is bound to {origin}")), "{}", out.stderr());
    assert!(thief.requests().is_empty(), "not even a request without the token: {:?}", thief.requests());
    assert!(dns.state.lock().unwrap().calls.is_empty());
    assert!(!out.all().contains(TOKEN));

    // naming the operator's credential does not carry it elsewhere either
    let creds = Credentials::new(&format!(
        "credentials:\n  - {{origin: \"{}\", tokenEnv: TDNS_TOKEN, name: home}}\n",
        dns.url()
    ));
    repo.write("zonekeeper.yaml", &settings(&format!("url: \"{}\", credential: home", thief.url)));
    git(&repo, &["commit", "-q", "-am", "Name the credential"]);
    let out = zonekeeper(&repo, &creds, &["plan"], &[]).expect_code(1);
    assert!(
        out.stderr().contains("credential `home` is bound to another origin, not to http://127.0.0.1:"),
        "{}",
        out.stderr()
    );
    assert!(!out.stderr().contains(&dns.url()), "where the credential goes is not told: {}", out.stderr());
    assert!(out.stderr().contains("a repository cannot redirect a token"), "{}", out.stderr());
    assert!(thief.requests().is_empty());
}

#[test]
fn a_commit_that_names_another_variable_or_file_sends_no_token() {
    let (dns, creds, repo) = operator_setup();
    let url = dns.url();
    let loot = tempfile::tempdir().unwrap();
    let other_file = loot.path().join("other-secret");
    std::fs::write(&other_file, "file-s3cret-0451\n").unwrap();
    for (target, field) in [
        (format!("url: \"{url}\", tokenEnv: OTHER_SECRET"), "tokenEnv"),
        (format!("url: \"{url}\", tokenFile: \"{}\"", other_file.display()), "tokenFile"),
    ] {
        repo.write("zonekeeper.yaml", &settings(&target));
        git(&repo, &["commit", "-q", "-am", "Another token"]);
        let out = zonekeeper(&repo, &creds, &["plan"], &[("OTHER_SECRET", "env-s3cret-0451")]).expect_code(1);
        assert!(
            out.stderr().contains(&format!("the target's {field} differs from the credential bound to")),
            "{}",
            out.stderr()
        );
        assert!(dns.state.lock().unwrap().calls.is_empty(), "no request carries any token");
        assert!(!out.all().contains("s3cret-0451") && !out.all().contains(TOKEN));
    }
    // repeating what the operator bound is the format before credentials: it still works
    repo.write("zonekeeper.yaml", &settings(&format!("url: \"{url}\", tokenEnv: TDNS_TOKEN")));
    git(&repo, &["commit", "-q", "-am", "The bound variable"]);
    zonekeeper(&repo, &creds, &["plan", "--detailed-exitcode"], &[]).expect_code(2);
}

#[test]
fn no_token_goes_over_plain_http_to_another_host_and_none_without_a_credential() {
    let repo = Repo::empty()
        .with_settings(&settings("url: \"http://dns.home.arpa:5380\""))
        .with_records("home.example", RECORDS);
    // the operator cannot bind one either
    let out = zonekeeper(&repo, &bound("http://dns.home.arpa:5380"), &["plan", "--worktree"], &[]).expect_code(1);
    assert!(out.stderr().contains("plain http carries a token only to localhost"), "{}", out.stderr());
    // and a repository pointing at one gets no token, whatever is bound elsewhere
    let out = zonekeeper(&repo, &bound("https://dns.home.arpa:5380"), &["plan", "--worktree"], &[]).expect_code(1);
    assert!(out.stderr().contains("no token is sent over plain http to http://dns.home.arpa:5380"), "{}", out.stderr());

    // no credentials file at all: the message says what to add, and where
    let repo = repo.with_settings(&settings("url: \"https://dns.home.arpa:5380\""));
    let nothing = Credentials::new("");
    let out = zonekeeper(&repo, &nothing, &["plan"], &[]).expect_code(1);
    assert!(out.stderr().contains("no credential is bound to https://dns.home.arpa:5380 in "), "{}", out.stderr());
    assert!(out.stderr().contains("credentials:\n    - origin: https://dns.home.arpa:5380"), "{}", out.stderr());
}

#[test]
fn a_credentials_file_inside_the_repository_is_refused() {
    let repo = Repo::example();
    repo.write("creds/credentials.yaml", "credentials: []\n");
    let inside = repo.path().join("creds/credentials.yaml");
    let out = repo.run(&["--credentials", inside.to_str().unwrap(), "plan"]).expect_code(1);
    assert!(out.stderr().contains("is inside the repository"), "{}", out.all());

    // nor may a credential read its token or CA from the repository
    repo.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    let creds = Credentials::new(&format!(
        "credentials:\n  - {{origin: \"https://dns.lan\", tokenEnv: TDNS_TOKEN, caFile: \"{}\"}}\n",
        repo.path().join("ca.pem").display()
    ));
    let out = zonekeeper(&repo, &creds, &["plan", "--worktree"], &[]).expect_code(1);
    assert!(out.stderr().contains("which is inside the repository"), "{}", out.all());
    // validate does not read the credentials at all
    zonekeeper(&repo, &creds, &["validate", "--worktree"], &[]).expect_code(0);
}

#[test]
fn token_variables_do_not_reach_the_git_processes() {
    // A remote repository: gix runs `git upload-pack` for file://. A `git` first on PATH
    // records the environment of every git process started, then runs the real one.
    let (_dns, creds, work) = operator_setup();
    let remotes = tempfile::tempdir().unwrap();
    let bare = remotes.path().join("dns.git");
    git(&work, &["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    let bin = tempfile::tempdir().unwrap();
    let dump = bin.path().join("env.log");
    for tool in ["git", "git-upload-pack", "ssh"] {
        let found = std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let real = String::from_utf8_lossy(&found.stdout).trim().to_string();
        if real.is_empty() {
            continue;
        }
        let wrapper = bin.path().join(tool);
        std::fs::write(&wrapper, format!("#!/bin/sh\nenv >> '{}'\nexec '{real}' \"$@\"\n", dump.display())).unwrap();
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", bare.display());
    let out = assert_cmd::Command::cargo_bin("zonekeeper")
        .unwrap()
        .current_dir(cache.path())
        .args(["--repo", &url, "plan", "--detailed-exitcode"])
        .env("ZONEKEEPER_CACHE", cache.path())
        .env("ZONEKEEPER_CREDENTIALS", creds.path())
        .env("TDNS_TOKEN", TOKEN)
        .env("PATH", &path)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    let run = support::Run(out);
    assert_eq!(run.code(), 2, "the plan itself has the token: {}", run.all());
    let seen = std::fs::read_to_string(&dump).expect("git was run through the wrapper");
    assert!(seen.contains("PATH="), "the wrapper recorded an environment");
    assert!(!seen.contains(TOKEN) && !seen.contains("TDNS_TOKEN"), "a git process inherited the token");
}

#[test]
fn a_wrong_field_in_a_target_names_its_own_line_and_key_and_never_prints_a_value() {
    let settings = "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: synch\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns:\n    type: technitium\n    url: https://dns.example:5380\n    tokenenv: TDNS_TOKEN\n\
         \x20   token: inline-s3cret-99\n    rateLimit: fast\n  files:\n    type: zonefle\n    directory: zones\n";
    let repo = Repo::empty().with_settings(settings).with_records("home.example", RECORDS);
    for format in ["text", "json", "github"] {
        let out = zonekeeper(&repo, &Credentials::new(""), &["validate", "--format", format], &[]).expect_code(1);
        let all = out.all();
        assert!(!all.contains("inline-s3cret-99") && !all.contains("synch") && !all.contains("fast"), "{all}");
        if format == "text" {
            for (at, what) in [
                ("zonekeeper.yaml:4:", "policy: must be one of `sync`, `upsert-only`, `create-only`"),
                ("zonekeeper.yaml:12:", "targets.tdns.tokenenv: unknown field `tokenenv`; did you mean `tokenEnv`?"),
                ("zonekeeper.yaml:13:", "targets.tdns.token: unknown field `token`; allowed here: "),
                ("zonekeeper.yaml:14:", "targets.tdns.rateLimit: must be a number"),
                ("zonekeeper.yaml:16:", "targets.files.type: must be one of `zonefile`, `hosts`, `technitium`"),
            ] {
                assert!(out.stdout().lines().any(|l| l.starts_with(at) && l.contains(what)), "{at} {what}:\n{all}");
            }
        }
    }
}

#[test]
fn a_redirect_from_the_bound_server_is_not_followed() {
    let thief = Recorder::start();
    let bounce = Recorder::redirecting_to(&thief.url);
    let repo = Repo::empty()
        .with_settings(&settings(&format!("url: \"{}\"", bounce.url)))
        .with_records("home.example", RECORDS);
    let out = zonekeeper(&repo, &bound(&bounce.url), &["plan", "--worktree"], &[]).expect_code(1);
    assert!(out.stderr().contains("HTTP 307"), "{}", out.all());
    assert_eq!(bounce.requests().len(), 1, "the bound server got the one request");
    assert!(bounce.requests()[0].contains(&format!("authorization: Bearer {TOKEN}")), "{:?}", bounce.requests());
    assert!(thief.requests().is_empty(), "the redirect was followed: {:?}", thief.requests());
}

#[test]
fn the_whole_run_has_a_deadline() {
    // a bound server that accepts and never answers, with a request timeout longer than the run's
    let (url, _hang) = support::silent_listener();
    let repo = Repo::empty()
        .with_settings(&settings(&format!("url: \"{url}\"")).replace("timeoutSeconds: 5", "timeoutSeconds: 600"))
        .with_records("home.example", RECORDS);
    let out = zonekeeper(&repo, &bound(&url), &["--timeout", "1", "plan", "--worktree"], &[]).expect_code(1);
    assert!(out.stderr().contains("stopped after --timeout 1 s"), "{}", out.all());
}
