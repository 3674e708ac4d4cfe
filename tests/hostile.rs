//! Hostile and broken desired-state input: every bad file must be refused with exit code 1,
//! a message naming the file (and line, where there is one) and the problem, and nothing may be
//! written to any target. Self-contained: each test builds its own repository in a temp dir
//! from the root zonekeeper.yaml and a records file it writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use tempfile::TempDir;

/// The root zonekeeper.yaml; its targets are relative (`.zonekeeper/...`), so they land in the temp repo.
const SETTINGS: &str = include_str!("../zonekeeper.yaml");
const RECORDS: &str = "records/home.example.yaml";
const ZONE_FILE: &str = ".zonekeeper/zones/db.home.example";
const HOSTS_FILE: &str = ".zonekeeper/hosts";

const HEAD: &str = "\
apiVersion: zonekeeper.dev/v1alpha1
kind: Records
zone: home.example
records:
";

/// Valid entries, one per line.
const GOOD: &[&str] = &[
    r#"  - {name: "@", type: NS, values: [ns1.home.example.]}"#,
    r#"  - {name: ns1, type: A, value: 192.0.2.53}"#,
    r#"  - {name: "@", type: A, value: 192.0.2.10}"#,
    r#"  - {name: www, type: CNAME, value: home.example.}"#,
    r#"  - {name: "@", type: TXT, value: "v=spf1 mx -all"}"#,
];

/// A records file: the header, the good entries, then `extra` lines.
fn records_with(extra: &[&str]) -> String {
    let mut s = HEAD.to_string();
    for l in GOOD.iter().chain(extra) {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// 1-based line of the only line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "fixture bug: `{needle}` is on lines {hits:?}");
    hits[0]
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    raw: Vec<u8>,
    elapsed: Duration,
}

impl Out {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Everything under a directory: relative path → bytes (a leftover temp file shows up too).
type Tree = BTreeMap<PathBuf, Vec<u8>>;

fn tree(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if ft.is_file() {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), b"<not a regular file>".to_vec());
            }
        }
    }
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

struct Repo {
    dir: TempDir,
}

impl Repo {
    fn new(settings: &str, records: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("records")).unwrap();
        let repo = Repo { dir };
        repo.write("zonekeeper.yaml", settings.as_bytes());
        repo.write(RECORDS, records.as_bytes());
        repo
    }

    /// A valid repository after a successful first apply: both target files exist.
    fn applied() -> Repo {
        let repo = Repo::new(SETTINGS, &records_with(&[]));
        let out = repo.run(&["apply", "--color", "never"]);
        assert_eq!(out.code, Some(0), "baseline apply failed:\n{}", out.all());
        assert!(out.stdout.contains("applied:"), "baseline apply wrote nothing:\n{}", out.all());
        for f in [ZONE_FILE, HOSTS_FILE] {
            let text = std::fs::read_to_string(repo.path().join(f)).unwrap();
            assert!(text.contains("ns1"), "baseline {f} lacks ns1:\n{text}");
        }
        let targets = repo.targets();
        for f in ["zones/db.home.example", "hosts"] {
            assert!(targets.contains_key(Path::new(f)), "snapshot lacks {f}: {:?}", targets.keys());
        }
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.path().join(rel), bytes).unwrap();
    }

    fn targets(&self) -> Tree {
        tree(&self.path().join(".zonekeeper"))
    }

    fn finish(mut cmd: Command) -> Out {
        let start = Instant::now();
        let o = cmd
            .env_remove("ZONEKEEPER_REPO")
            .env_remove("ZONEKEEPER_LOG")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let elapsed = start.elapsed();
        let mut raw = o.stdout.clone();
        raw.extend_from_slice(&o.stderr);
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            raw,
            elapsed,
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::cargo_bin("zonekeeper").unwrap();
        cmd.arg("--repo").arg(self.path()).args(["--log-format", "text"]).args(args);
        Self::finish(cmd)
    }

    /// Like `run`, with the address space capped (KiB) so that eating memory becomes a crash.
    fn run_capped(&self, kib: u64, args: &[&str]) -> Out {
        let bin = assert_cmd::cargo::cargo_bin("zonekeeper");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(bin)
            .arg("--repo")
            .arg(self.path())
            .args(["--log-format", "text"])
            .args(args);
        Self::finish(cmd)
    }

    /// Runs `validate`, `plan`, `apply` and `apply --force`: each must exit 1, name every
    /// `(location prefix, message part)` on one line of its output, and leave every file of the
    /// repository exactly as it was. Returns the `validate` output.
    fn refuses(&self, expect: &[(&str, &str)]) -> Out {
        let before = tree(self.path());
        let mut validate = None;
        for args in [
            &["validate"][..],
            &["plan", "--color", "never"],
            &["apply", "--color", "never"],
            &["apply", "--force", "--color", "never"],
        ] {
            let out = self.run(args);
            assert_eq!(out.code, Some(1), "`{}` should exit 1:\n{}", args.join(" "), out.all());
            assert!(!out.stdout.contains("applied:"), "`{}` applied something:\n{}", args.join(" "), out.all());
            for (at, what) in expect {
                assert_problem(&out.all(), at, what);
            }
            assert_eq!(tree(self.path()), before, "`{}` changed files in the repository", args.join(" "));
            if args == ["validate"] {
                assert!(out.stderr.contains("problem(s); nothing was written"), "{}", out.all());
                validate = Some(out);
            }
        }
        validate.unwrap()
    }
}

/// Some line of `output` starts (after indentation) with `at` and contains `what`.
fn assert_problem(output: &str, at: &str, what: &str) {
    assert!(
        output.lines().any(|l| l.trim_start().starts_with(at) && l.contains(what)),
        "expected a line starting with `{at}` containing `{what}` in:\n{output}"
    );
}

/// `records/home.example.yaml:LINE:` for `needle`'s line in `text`.
fn at(text: &str, needle: &str) -> String {
    format!("{RECORDS}:{}:", line_of(text, needle))
}

fn problem_count(out: &Out) -> usize {
    let line = out
        .stderr
        .lines()
        .find(|l| l.ends_with("problem(s); nothing was written"))
        .unwrap_or_else(|| panic!("{}", out.all()));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// YAML level

#[test]
fn invalid_yaml_syntax_is_refused_with_its_line() {
    let repo = Repo::applied();
    let targets = repo.targets();

    // An unclosed flow mapping: reported where it opens.
    let text = records_with(&["  - {name: web, type: A, value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "name: web"), "unclosed bracket")]);

    // A key indented one column short of its siblings.
    let text = records_with(&["  - name: web", "   type: A", "    value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "   type: A"), "did not find expected '-' indicator")]);

    // An unterminated quoted scalar.
    let text = records_with(&["  - name: web", "    type: A", "    value: \"192.0.2.80", "  - name: x"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "\"192.0.2.80"), "unclosed quote")]);

    assert_eq!(repo.targets(), targets);
}

#[test]
fn wrong_type_is_refused_with_line_and_field() {
    let repo = Repo::applied();
    let text = records_with(&["  - name: web", "    type: A", "    ttl: abc", "    value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    let n = GOOD.len();
    repo.refuses(&[(&at(&text, "ttl: abc"), &format!("records[{n}].ttl: must be a whole number"))]);

    let text = records_with(&["  - {name: web, type: A, ttl: -5, value: 192.0.2.80}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "ttl: -5"), "ttl: must be at least 0")]);

    let text = records_with(&["  - {name: [web], type: A, value: 192.0.2.80}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "[web]"), &format!("records[{n}].name: must be a string"))]);
}

#[test]
fn unknown_field_is_refused_not_ignored() {
    let repo = Repo::applied();
    let text = records_with(&["  - name: web", "    type: A", "    tll: 300", "    value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    // Located at the unknown key's own line, with the field it most likely meant.
    let n = GOOD.len();
    repo.refuses(&[(&at(&text, "tll: 300"), &format!("records[{n}].tll: unknown field `tll`; did you mean `ttl`?"))]);

    // At the top level too.
    let text = records_with(&[]).replace("zone: home.example\n", "zone: home.example\nzones: [home.example]\n");
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "zones: [home.example]"), "zones: unknown field `zones`; did you mean `zone`?")]);
}

#[test]
fn duplicate_key_in_one_mapping_is_refused() {
    let repo = Repo::applied();
    let text = records_with(&["  - name: web", "    type: A", "    value: 192.0.2.80", "    value: 192.0.2.81"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "value: 192.0.2.81"), "duplicate key `value` in one mapping")]);

    // In a flow mapping as well.
    let text = records_with(&["  - {name: web, type: A, name: web2, value: 192.0.2.80}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "web2"), "duplicate key `name` in one mapping")]);
}

#[test]
fn multiple_yaml_documents_in_one_file_are_refused() {
    let repo = Repo::applied();
    let mut text = records_with(&[]);
    text.push_str("---\n");
    text.push_str(&records_with(&["  - {name: web, type: A, value: 192.0.2.80}"]));
    repo.write(RECORDS, text.as_bytes());
    // Reported where the second document starts, on the line after `---`.
    let second = format!("{RECORDS}:{}:", line_of(&text, "---") + 1);
    repo.refuses(&[(&second, "more than one YAML document")]);
}

#[test]
fn alias_bomb_fails_fast_without_eating_memory() {
    // "Billion laughs": 9 levels of 10 aliases each expand to 10^10 scalars.
    let mut lines = vec![
        r#"  - name: lol0
    type: TXT
    values: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#
            .to_string(),
    ];
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        lines.push(format!("  - name: lol{i}\n    type: TXT\n    values: &a{i} [{refs}]"));
    }
    let text = records_with(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let first = line_of(&text, "&a0");
    let last = line_of(&text, "&a9");

    let repo = Repo::applied();
    let targets = repo.targets();
    repo.write(RECORDS, text.as_bytes());
    // 1 GiB of address space is plenty for a refusal and far too little for the expansion.
    for args in [&["validate"][..], &["apply", "--force", "--color", "never"]] {
        let out = repo.run_capped(1024 * 1024, args);
        assert_eq!(out.code, Some(1), "{args:?}:\n{}", out.all());
        assert!(out.elapsed < Duration::from_secs(30), "took {:?}", out.elapsed);
        let line = out
            .all()
            .lines()
            .find(|l| l.contains("parser budget exceeded"))
            .unwrap_or_else(|| panic!("no budget message:\n{}", out.all()))
            .to_string();
        let rest = line.trim_start().strip_prefix(&format!("{RECORDS}:")).unwrap_or_else(|| panic!("{line}"));
        let n: usize = rest.split(':').next().unwrap().parse().unwrap();
        assert!((first..=last).contains(&n), "line {n} is outside the bomb ({first}..={last}): {line}");
        assert!(!out.stdout.contains("applied:"));
    }
    assert_eq!(repo.targets(), targets);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let repo = Repo::applied();
    let n = 100_000;
    let deep =
        format!("  - {{name: web, type: A, value: 192.0.2.80, views: {{x: {}{}}}}}", "[".repeat(n), "]".repeat(n));
    let text = records_with(&[&deep]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "name: web"), "recursion limit exceeded")]);

    let deep = format!("  - {{name: web, type: A, value: 192.0.2.80, x: {}1{}}}", "{a: ".repeat(n), "}".repeat(n));
    let text = records_with(&[&deep]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "name: web"), "parser budget exceeded")]);
}

#[test]
fn a_20_mib_records_file_is_refused_by_size_before_parsing() {
    const SIZE: usize = 20 * 1024 * 1024;
    let mut text = records_with(&[]);
    let pad = "# padding padding padding padding padding padding padding padding padding padding\n";
    while text.len() + pad.len() <= SIZE {
        text.push_str(pad);
    }
    text.push_str(&"#".repeat(SIZE - 1 - text.len()));
    text.push('\n');
    assert_eq!(text.len(), SIZE);

    let repo = Repo::applied();
    repo.write(RECORDS, text.as_bytes());
    let out =
        repo.refuses(&[(&format!("{RECORDS}: "), &format!("file is {SIZE} bytes, over the limit of 16777216 bytes"))]);
    assert!(out.elapsed < Duration::from_secs(10), "took {:?}", out.elapsed);
    assert_eq!(problem_count(&out), 1);
}

#[test]
fn a_file_that_is_not_utf8_is_refused() {
    let repo = Repo::applied();
    let mut bytes = records_with(&[]).into_bytes();
    let offset = bytes.len();
    bytes.extend_from_slice(b"  - {name: caf\xe9, type: A, value: 192.0.2.80}\n");
    repo.write(RECORDS, &bytes);
    // at the line and column of the first bad byte, not at line 1
    let line = records_with(&[]).lines().count() + 1;
    repo.refuses(&[(
        &format!("{RECORDS}:{line}:15: "),
        &format!("not valid UTF-8 (first bad byte at offset {})", offset + 14),
    )]);
}

#[test]
fn a_records_file_that_links_outside_the_repository_is_refused() {
    let repo = Repo::applied();
    let targets = repo.targets();
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("home.example.yaml");
    std::fs::write(&outside, records_with(&["  - {name: stolen, type: A, value: 192.0.2.99}"])).unwrap();
    std::fs::remove_file(repo.path().join(RECORDS)).unwrap();
    std::os::unix::fs::symlink(&outside, repo.path().join(RECORDS)).unwrap();
    repo.refuses(&[(&format!("{RECORDS}: "), "is a symlink to a file outside the repository")]);
    assert_eq!(repo.targets(), targets);
}

// ---------------------------------------------------------------------------------------------
// Names and values

#[test]
fn names_with_newline_space_nul_or_unicode_are_refused_each_on_its_line() {
    let repo = Repo::applied();
    let text = records_with(&[
        r#"  - {name: "new\nline", type: A, value: 192.0.2.81}"#,
        r#"  - {name: "sp ace", type: A, value: 192.0.2.82}"#,
        r#"  - {name: "nul\0byte", type: A, value: 192.0.2.83}"#,
        r#"  - {name: "bücher", type: A, value: 192.0.2.84}"#,
        r#"  - {name: "日本", type: A, value: 192.0.2.85}"#,
        r#"  - {name: "zero\u200bwidth", type: A, value: 192.0.2.86}"#,
        r#"  - {name: "rtl\u202eover", type: A, value: 192.0.2.87}"#,
    ]);
    repo.write(RECORDS, text.as_bytes());
    let out = repo.refuses(&[
        (&at(&text, "192.0.2.81"), r"`new\nline` is not a valid name: character '\n' is not allowed"),
        (&at(&text, "192.0.2.82"), "`sp ace` is not a valid name: character ' ' is not allowed"),
        (&at(&text, "192.0.2.83"), r"`nul\0byte` is not a valid name: character '\0' is not allowed"),
        (&at(&text, "192.0.2.84"), "`bücher` is not a valid name: character 'ü' is not allowed"),
        (&at(&text, "192.0.2.85"), "`日本` is not a valid name: character '日' is not allowed"),
        (&at(&text, "192.0.2.86"), r"character '\u{200b}' is not allowed"),
        (&at(&text, "192.0.2.87"), r"character '\u{202e}' is not allowed"),
    ]);
    assert_eq!(problem_count(&out), 7);
    // The raw characters are never echoed: no NUL, no bidi override, and the newline stays escaped.
    assert!(!out.raw.contains(&0), "a NUL byte reached the output");
    assert!(!out.all().contains('\u{202e}'), "a bidi override reached the output");
    assert!(!out.all().lines().any(|l| l.starts_with("line`")), "a raw newline split a message:\n{}", out.all());
}

#[test]
fn zone_named_dot_dot_slash_etc_is_refused_in_settings() {
    let settings = SETTINGS.replacen("  - name: home.example\n", "  - name: ../../etc\n", 1);
    assert_ne!(settings, SETTINGS, "fixture bug: the root zonekeeper.yaml no longer declares home.example");
    let line = line_of(&settings, "name: ../../etc");

    // From scratch: nothing may be created at all.
    let repo = Repo::new(&settings, &records_with(&[]));
    repo.refuses(&[(&format!("zonekeeper.yaml:{line}:"), "zones[0].name: `../../etc` is not a valid zone name")]);
    assert!(!repo.path().join(".zonekeeper").exists());

    // After a good apply: the targets stay as they are; the records file naming it is refused too.
    let repo = Repo::applied();
    repo.write("zonekeeper.yaml", settings.as_bytes());
    let text = records_with(&[]).replace("zone: home.example", "zone: ../../etc");
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[
        (&format!("zonekeeper.yaml:{line}:"), "`../../etc` is not a valid zone name"),
        (&at(&text, "zone: ../../etc"), "zone: `../../etc` is not a valid zone name"),
    ]);
    assert!(!repo.path().join("etc").exists() && !repo.path().join(".zonekeeper/etc").exists());
}

#[test]
fn txt_with_a_newline_is_refused() {
    let repo = Repo::applied();
    let text = records_with(&[
        r#"  - {name: spf, type: TXT, value: "v=spf1 -all\n@ IN A 6.6.6.6"}"#,
        "  - name: block",
        "    type: TXT",
        "    value: |",
        "      first line",
        "      second line",
        r#"  - {name: tab, type: TXT, values: ["ok", "a\tb"]}"#,
    ]);
    repo.write(RECORDS, text.as_bytes());
    let n = GOOD.len();
    let out = repo.refuses(&[
        (
            &at(&text, "name: spf"),
            &format!("records[{n}].value[0]: value contains a control or invisible formatting character"),
        ),
        (
            &at(&text, "name: block"),
            &format!("records[{}].value[0]: value contains a control or invisible formatting character", n + 1),
        ),
        (
            &at(&text, "name: tab"),
            &format!("records[{}].values[1]: value contains a control or invisible formatting character", n + 2),
        ),
    ]);
    assert_eq!(problem_count(&out), 3);
}

#[test]
fn cname_beside_an_a_record_is_refused() {
    let repo = Repo::applied();
    // `www` is a CNAME in the good entries.
    let text = records_with(&["  - {name: www, type: A, value: 192.0.2.80}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(
        &at(&text, "name: www, type: A,"),
        "www.home.example has a CNAME, so it cannot also have A records",
    )]);
}

#[test]
fn a_value_that_is_not_ipv4_is_refused() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: a1, type: A, value: 300.1.2.3}",
        r#"  - {name: a2, type: A, value: "2001:db8::1"}"#,
        "  - {name: a3, type: A, value: 192.0.2}",
        "  - {name: a4, type: A, value: 010.0.0.1}",
        r#"  - {name: a5, type: A, value: "192.0.2.1; rm -rf /"}"#,
        "  - {name: a6, type: A, values: [192.0.2.1, nas.home.example.]}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    let n = GOOD.len();
    let out = repo.refuses(&[
        (&at(&text, "name: a1"), &format!("records[{n}].value[0]: `300.1.2.3` is not an IPv4 address")),
        (&at(&text, "name: a2"), "`2001:db8::1` is not an IPv4 address"),
        (&at(&text, "name: a3"), "`192.0.2` is not an IPv4 address"),
        (&at(&text, "name: a4"), "`010.0.0.1` is not an IPv4 address"),
        (&at(&text, "name: a5"), "`192.0.2.1; rm -rf /` is not an IPv4 address"),
        (&at(&text, "name: a6"), &format!("records[{}].values[1]: `nas.home.example.` is not an IPv4", n + 5)),
    ]);
    assert_eq!(problem_count(&out), 6);
}

#[test]
fn a_name_outside_its_zone_is_refused() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: www.other.example., type: A, value: 192.0.2.81}",
        "  - {name: xhome.example., type: A, value: 192.0.2.82}",
        "  - {name: home.example.evil., type: A, value: 192.0.2.83}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    let out = repo.refuses(&[
        (&at(&text, "192.0.2.81"), "`www.other.example` is not inside zone `home.example`"),
        (&at(&text, "192.0.2.82"), "`xhome.example` is not inside zone `home.example`"),
        (&at(&text, "192.0.2.83"), "`home.example.evil` is not inside zone `home.example`"),
    ]);
    assert_eq!(problem_count(&out), 3);
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// Five different problems, each on its own line, for the reporting tests.
fn five_problems() -> String {
    records_with(&[
        "  - {name: www, type: A, value: 192.0.2.80}",
        "  - {name: bad, type: A, value: 300.1.2.3}",
        r#"  - {name: txt, type: TXT, value: "a\nb"}"#,
        "  - {name: www.other.example., type: A, value: 192.0.2.81}",
        r#"  - {name: "sp ace", type: A, value: 192.0.2.82}"#,
    ])
}

#[test]
fn several_problems_in_one_file_are_reported_in_one_run() {
    let repo = Repo::applied();
    let text = five_problems();
    repo.write(RECORDS, text.as_bytes());
    let out = repo.refuses(&[
        (&at(&text, "name: www, type: A"), "has a CNAME, so it cannot also have A records"),
        (&at(&text, "300.1.2.3"), "`300.1.2.3` is not an IPv4 address"),
        (&at(&text, "name: txt"), "value contains a control or invisible formatting character"),
        (&at(&text, "www.other.example."), "is not inside zone `home.example`"),
        (&at(&text, "sp ace"), "`sp ace` is not a valid name"),
    ]);
    assert_eq!(problem_count(&out), 5);
    // In file order.
    let lines: Vec<&str> = out.stdout.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.split(':').nth(1).and_then(|n| n.parse::<usize>().ok()));
    assert_eq!(lines, sorted);
}

#[test]
fn several_schema_problems_in_one_file_are_reported_in_one_run() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: a, type: A, ttl: abc, value: 192.0.2.81}",
        "  - {name: b, type: A, tll: 300, value: 192.0.2.82}",
        "  - {name: c, type: BOGUS, value: 192.0.2.83}",
        "  - {name: d, type: A, ttl: -5, value: 192.0.2.84}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    let out = repo.refuses(&[
        (&at(&text, "192.0.2.81"), "ttl: must be a whole number"),
        (&at(&text, "192.0.2.82"), "unknown field `tll`; did you mean `ttl`?"),
        (&at(&text, "192.0.2.83"), "type: must be one of `A`, `AAAA`"),
        (&at(&text, "192.0.2.84"), "ttl: must be at least 0"),
    ]);
    assert_eq!(problem_count(&out), 4);
}

#[test]
fn problems_in_settings_and_records_are_reported_together() {
    let settings = SETTINGS.replacen("owner: example-home", "owner: Example_Home", 1);
    assert_ne!(settings, SETTINGS, "fixture bug: the root zonekeeper.yaml changed its owner");
    let repo = Repo::applied();
    repo.write("zonekeeper.yaml", settings.as_bytes());
    let text = records_with(&["  - {name: bad, type: A, value: 300.1.2.3}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[
        (&format!("zonekeeper.yaml:{}:", line_of(&settings, "owner:")), "`Example_Home` is not a valid owner id"),
        (&at(&text, "300.1.2.3"), "`300.1.2.3` is not an IPv4 address"),
    ]);
}

#[test]
fn validate_json_lists_every_problem_with_its_location() {
    let repo = Repo::applied();
    let good = repo.run(&["validate", "--format", "json"]);
    assert_eq!(good.code, Some(0), "{}", good.all());
    let v: serde_json::Value = serde_json::from_str(&good.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", good.stdout));
    assert_eq!(v, serde_json::json!({"version": 1, "valid": true, "problems": []}));

    let text = five_problems();
    repo.write(RECORDS, text.as_bytes());
    let before = tree(repo.path());
    let out = repo.run(&["validate", "--format", "json"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(tree(repo.path()), before);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", out.stdout));
    assert_eq!(v["valid"], serde_json::Value::Bool(false), "{v}");
    // the contract: the checked-in schema/validate.json takes it
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/validate.json").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&v), "{v}");
    assert!(!validator.is_valid(&serde_json::json!({"valid": "no", "problems": []})));
    let problems = v["problems"].as_array().unwrap_or_else(|| panic!("no problems array: {v}"));
    assert_eq!(problems.len(), 5, "{v:#}");
    for p in problems {
        let obj = p.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["column", "file", "line", "message", "path"], "{p}");
        assert_eq!(p["file"], RECORDS, "{p}");
        assert!(p["line"].as_u64().unwrap() > HEAD.lines().count() as u64, "{p}");
        assert!(p["column"].as_u64().unwrap() >= 1, "{p}");
        assert!(!p["path"].as_str().unwrap().is_empty(), "{p}");
        assert!(!p["message"].as_str().unwrap().is_empty(), "{p}");
    }
    let find = |needle: &str| {
        problems
            .iter()
            .find(|p| p["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no problem mentioning `{needle}` in {v:#}"))
    };
    let ip = find("`300.1.2.3` is not an IPv4 address");
    assert_eq!(ip["line"].as_u64(), Some(line_of(&text, "300.1.2.3") as u64));
    assert_eq!(ip["column"].as_u64(), Some(5));
    assert_eq!(ip["path"], format!("records[{}].value[0]", GOOD.len() + 1));
    let txt = find("invisible formatting character");
    assert_eq!(txt["line"].as_u64(), Some(line_of(&text, "name: txt") as u64));
    assert_eq!(txt["path"], format!("records[{}].value[0]", GOOD.len() + 2));
    let name = find("`sp ace` is not a valid name");
    assert_eq!(name["line"].as_u64(), Some(line_of(&text, "sp ace") as u64));
    assert_eq!(name["path"], format!("records[{}].name", GOOD.len() + 4));
    let cname = find("has a CNAME");
    assert_eq!(cname["line"].as_u64(), Some(line_of(&text, "name: www, type: A") as u64));

    // A schema problem is located at the offending value.
    let text = records_with(&["  - name: web", "    type: A", "    ttl: abc", "    value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    let out = repo.run(&["validate", "--format", "json"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"].as_u64(), Some(line_of(&text, "ttl: abc") as u64), "{v}");
    assert_eq!(v["problems"][0]["column"].as_u64(), Some(10), "{v}");
    assert_eq!(v["problems"][0]["path"], format!("records[{}].ttl", GOOD.len()), "{v}");
}

#[test]
fn validate_github_emits_one_error_annotation_per_problem() {
    let repo = Repo::applied();
    let text = five_problems();
    repo.write(RECORDS, text.as_bytes());
    let before = tree(repo.path());
    let out = repo.run(&["validate", "--format", "github"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(tree(repo.path()), before);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    for l in &lines {
        assert!(l.starts_with(&format!("::error file={RECORDS},line=")), "not an annotation: {l}");
    }
    let n = GOOD.len();
    let ip = line_of(&text, "300.1.2.3");
    let expected = format!(
        "::error file={RECORDS},line={ip},col=5,title=records[{}].value[0]::`300.1.2.3` is not an IPv4 address",
        n + 1
    );
    assert!(lines.contains(&expected.as_str()), "missing `{expected}` in:\n{}", out.stdout);
    for needle in ["name: txt", "www.other.example.", "sp ace", "name: www, type: A"] {
        let prefix = format!("::error file={RECORDS},line={},", line_of(&text, needle));
        assert!(lines.iter().any(|l| l.starts_with(&prefix)), "missing `{prefix}` in:\n{}", out.stdout);
    }

    // A problem with the whole file still gets a line (GitHub needs one) and no title.
    let mut bytes = records_with(&[]).into_bytes();
    bytes.push(0xff);
    repo.write(RECORDS, &bytes);
    let out = repo.run(&["validate", "--format", "github"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(
        out.stdout.trim_end(),
        format!(
            "::error file={RECORDS},line={},col=1::not valid UTF-8 (first bad byte at offset {})",
            records_with(&[]).lines().count() + 1,
            records_with(&[]).len()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Known product bugs (see the report that came with this file). Run with `--ignored`.

#[test]

fn github_annotation_escapes_the_file_name() {
    let repo = Repo::applied();
    let evil = "records/x,line=99,col=7::injected\n::warning file=zonekeeper.yaml::fake.yaml";
    std::fs::remove_file(repo.path().join(RECORDS)).unwrap();
    let text = records_with(&["  - {name: bad, type: A, value: 300.1.2.3}"]);
    repo.write(evil, text.as_bytes());
    let out = repo.run(&["validate", "--format", "github"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one problem must be one annotation:\n{}", out.stdout);
    assert!(lines[0].starts_with("::error file=records/x%2Cline=99%2Ccol=7%3A%3Ainjected%0A"), "{}", lines[0]);
    assert!(lines[0].contains(&format!(",line={},", line_of(&text, "300.1.2.3"))), "{}", lines[0]);
}

#[test]

fn out_of_range_ttl_is_reported_beside_other_schema_problems() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: a, type: A, ttl: 4294967296, value: 192.0.2.81}",
        "  - {name: b, type: A, tll: 300, value: 192.0.2.82}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "192.0.2.81"), "ttl"), (&at(&text, "192.0.2.82"), "unknown field `tll`")]);
}

#[test]

fn a_symlinked_records_file_is_read_or_refused_never_skipped() {
    let repo = Repo::applied();
    let targets = repo.targets();
    std::fs::create_dir(repo.path().join("shared")).unwrap();
    std::fs::rename(repo.path().join(RECORDS), repo.path().join("shared/home.example.yaml")).unwrap();
    std::os::unix::fs::symlink("../shared/home.example.yaml", repo.path().join(RECORDS)).unwrap();
    let out = repo.run(&["validate"]);
    let read = out.code == Some(0) && out.stdout.contains(&format!("{} record entries", GOOD.len()));
    let refused = out.code == Some(1) && out.all().contains(RECORDS);
    assert!(read || refused, "the symlinked records file was ignored:\n{}", out.all());
    let plan = repo.run(&["plan", "--color", "never", "--no-diff"]);
    assert!(!plan.stdout.contains("to delete") || plan.stdout.contains(" 0 to delete"), "{}", plan.all());
    assert_eq!(repo.targets(), targets);
}

#[test]

fn a_settings_file_that_never_ends_is_refused_by_size() {
    let repo = Repo::applied();
    let targets = repo.targets();
    std::fs::remove_file(repo.path().join("zonekeeper.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", repo.path().join("zonekeeper.yaml")).unwrap();
    // Capped at 1 GiB so that this test cannot take the machine down with it.
    let out = repo.run_capped(1024 * 1024, &["validate"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.all().contains("zonekeeper.yaml"), "{}", out.all());
    assert!(!out.all().contains("out of memory"), "it read until the memory cap:\n{}", out.all());
    assert_eq!(repo.targets(), targets);
}

#[test]
fn a_relative_name_that_repeats_the_zone_and_a_relative_value_are_refused_with_the_name_meant() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: mail.home.example, type: A, value: 192.0.2.25}",
        "  - {name: Home.Example, type: MX, value: 10 mail.home.example.}",
        "  - {name: files, type: CNAME, value: nas}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[
        (&at(&text, "name: mail.home.example"), "would be `mail.home.example.home.example`; write `mail`"),
        (&at(&text, "name: Home.Example"), "write `@`"),
        (&at(&text, "value: nas"), "write `nas.home.example.` for the name in this zone (or `nas.`"),
    ]);
    // with the final dot, both forms say what they mean
    let text = records_with(&[
        "  - {name: mail.home.example., type: A, value: 192.0.2.25}",
        "  - {name: files, type: CNAME, value: nas.home.example.}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    assert_eq!(repo.run(&["validate"]).code, Some(0));
}

#[test]
fn a_duplicate_key_inside_views_is_refused_on_every_path() {
    let repo = Repo::applied();
    let targets = repo.targets();
    let text = records_with(&["  - {name: dup, type: A, views: {default: [192.0.2.7], default: [192.0.2.8]}}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "name: dup"), "duplicate key `default` in one mapping")]);
    assert_eq!(repo.targets(), targets);
}

#[test]
fn a_quoted_ttl_is_a_string_and_refused_as_the_schema_says() {
    let repo = Repo::applied();
    let text = records_with(&["  - {name: web, type: A, ttl: \"300\", value: 192.0.2.80}"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "name: web"), "ttl: must be a whole number")]);
    let text = records_with(&["  - name: web", "    type: A", "    ttl: '60'", "    value: 192.0.2.80"]);
    repo.write(RECORDS, text.as_bytes());
    repo.refuses(&[(&at(&text, "ttl: '60'"), "ttl: must be a whole number")]);
}

#[test]
fn a_schema_error_does_not_hide_the_semantic_errors_of_the_same_file() {
    let repo = Repo::applied();
    let text = records_with(&[
        "  - {name: web, type: A, vaule: 192.0.2.80}",
        "  - {name: bad, type: A, value: 1.2.3.999}",
        "  - {name: files, type: CNAME, value: nas}",
    ]);
    repo.write(RECORDS, text.as_bytes());
    let n = GOOD.len();
    let out = repo.refuses(&[
        (&at(&text, "vaule"), &format!("records[{n}].vaule: unknown field `vaule`; did you mean `value`?")),
        (&at(&text, "1.2.3.999"), &format!("records[{}].value[0]: `1.2.3.999` is not an IPv4 address", n + 1)),
        (&at(&text, "value: nas"), &format!("records[{}].value[0]: `nas` must be a fully qualified name", n + 2)),
    ]);
    assert_eq!(problem_count(&out), 3);
}
