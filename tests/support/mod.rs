//! Fixture repositories for the integration tests: real directories, real files, the real
//! binary. `Repo::example()` is the built-in default copied into a temp dir.
#![allow(dead_code)]

pub mod daemon;
pub mod githttp;
pub mod kube;
pub mod technitium;

use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Repo {
    pub dir: tempfile::TempDir,
}

pub const SETTINGS: &str = include_str!("../../zonekeeper.yaml");
pub const RECORDS: &str = include_str!("../../records/home.example.yaml");

impl Repo {
    /// An empty repository directory.
    pub fn empty() -> Repo {
        Repo { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A copy of the built-in example.
    pub fn example() -> Repo {
        Repo::empty().with_settings(SETTINGS).with_records("home.example", RECORDS)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn with_settings(self, yaml: &str) -> Repo {
        self.write("zonekeeper.yaml", yaml);
        self
    }

    pub fn with_records(self, zone: &str, yaml: &str) -> Repo {
        self.write(&format!("records/{zone}.yaml"), yaml);
        self
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path().join(rel)).ok()
    }

    pub fn zone_file(&self, zone: &str) -> PathBuf {
        self.path().join(format!(".zonekeeper/zones/db.{zone}"))
    }

    /// The zone file of `zone` in the target directory `dir` (relative to the repository).
    pub fn zone_file_in(&self, dir: &str, zone: &str) -> PathBuf {
        self.path().join(dir).join(format!("db.{zone}"))
    }

    /// Runs the binary with `--repo` set to this repository.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Like `run`, with more environment variables (a credentials file, a token).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
        let out = assert_cmd::Command::cargo_bin("zonekeeper")
            .expect("binary")
            .arg("--repo")
            .arg(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("ZONEKEEPER_LOG", "warn")
            // like a container: no git identity or credential helper of the machine's user
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .envs(env.iter().copied())
            .output()
            .expect("run");
        Run(out)
    }
}

/// The operator's credentials file, in a directory of its own outside any repository.
pub struct Credentials {
    dir: tempfile::TempDir,
}

impl Credentials {
    pub fn new(yaml: &str) -> Credentials {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("credentials.yaml"), yaml).expect("write");
        Credentials { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("credentials.yaml")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code(), code, "exit code; output:\n{}", self.all());
        self
    }
}

/// Runs the git binary in `repo`, with a fixed identity; panics when git fails.
pub fn git(repo: &Repo, args: &[&str]) -> String {
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

/// `repo` made a git repository on `main` with everything in it as one commit.
pub fn committed(repo: Repo, message: &str) -> Repo {
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", message]);
    repo
}

/// A TCP listener on 127.0.0.1 that records every request it gets (the raw bytes) and answers
/// each with an empty 404: where a stolen token would arrive.
pub struct Recorder {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        Recorder::answering("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into())
    }

    /// A listener that answers every request with a redirect to `to`.
    pub fn redirecting_to(to: &str) -> Recorder {
        Recorder::answering(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}/api/zones/records/get\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
    }

    fn answering(answer: String) -> Recorder {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                let mut buf = vec![0u8; 65536];
                let n = conn.read(&mut buf).unwrap_or(0);
                seen.lock().expect("lock").push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        Recorder { url, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections and never answers: a server that
/// hangs.
pub fn silent_listener() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    (url, handle)
}

/// Runs BIND's named-checkzone on a zone file we wrote; panics with its output on failure.
#[track_caller]
pub fn checkzone(zone: &str, path: &Path) -> u32 {
    let out = std::process::Command::new("named-checkzone")
        .args(["-i", "full", "-k", "fail", "-m", "fail", "-M", "fail", "-n", "fail", "-S", "fail"])
        .arg(zone)
        .arg(path)
        .output()
        .expect("named-checkzone must be installed (apt-get install bind9-utils)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "named-checkzone rejected {}:\n{text}", path.display());
    text.split("loaded serial ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no serial in named-checkzone output: {text}"))
}

/// A test CA and a server certificate it signs for 127.0.0.1, made with the openssl binary in
/// `dir`: (server certificate PEM, server key PEM, CA certificate path).
pub fn test_ca_and_server_cert(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=zonekeeper test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    (std::fs::read(dir.join("cert.pem")).unwrap(), std::fs::read(dir.join("key.pem")).unwrap(), dir.join("ca.pem"))
}
