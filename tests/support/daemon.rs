//! The real binary in `run` mode, as a child process: its stderr (JSON log lines) read in a
//! thread, the addresses it listens on taken from its "listening" line, and a small HTTP/1.1
//! client for its API.

use std::ffi::OsStr;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Daemon {
    pub child: Child,
    pub api: String,
    pub ops: String,
    pub lines: Arc<Mutex<Vec<Value>>>,
    pub state: PathBuf,
}

/// An HTTP answer: status, headers (lowercase names) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request, `Connection: close`, the whole answer read (no chunked bodies: the API sends
/// whole bodies; the event stream is read with `stream`).
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut conn = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).expect("write");
    conn.write_all(body).expect("write");
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Answer { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Daemon {
    /// Starts `zonekeeper --repo REPO run ARGS` on free ports with `env`, and waits until it
    /// listens.
    pub fn start(repo: &Path, state: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
            .arg("--repo")
            .arg(repo)
            .args(["--log-format", "json", "run", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            // A state document in a ConfigMap takes the place of the file.
            .args(if args.contains(&"--state-configmap") {
                vec![]
            } else {
                vec![OsStr::new("--state"), state.as_os_str()]
            })
            .args(args)
            .env("ZONEKEEPER_LOG", "info")
            .env("ZONEKEEPER_CACHE", state.parent().unwrap_or(Path::new("/tmp")).join("cache"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("ZONEKEEPER_STATE")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zonekeeper run");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().expect("lock").push(v);
            }
        });
        let mut d = Daemon { child, api: String::new(), ops: String::new(), lines, state: state.to_path_buf() };
        let listening = d.wait_line(Duration::from_secs(30), |l| msg(l) == "listening");
        d.api = listening["fields"]["api"].as_str().expect("api address").to_string();
        d.ops = listening["fields"]["metrics"].as_str().expect("metrics address").to_string();
        d
    }

    /// The first log line `pick` accepts, waiting up to `limit`; panics with the log.
    #[track_caller]
    pub fn wait_line(&self, limit: Duration, pick: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().expect("lock").iter().find(|l| pick(l)) {
                return l.clone();
            }
            assert!(start.elapsed() < limit, "no such log line within {limit:?}; the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `cond` holds, up to `limit`; panics naming `what`, with the log.
    #[track_caller]
    pub fn wait_until(&self, limit: Duration, what: &str, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}; the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn log(&self) -> String {
        self.lines.lock().expect("lock").iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n")
    }

    /// The "reconcile finished" lines so far.
    pub fn finished(&self) -> Vec<Value> {
        self.lines.lock().expect("lock").iter().filter(|l| msg(l) == "reconcile finished").cloned().collect()
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        request(&self.api, "GET", path, &headers, b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        request(&self.api, "POST", path, headers, body)
    }

    pub fn ops_get(&self, path: &str) -> Answer {
        request(&self.ops, "GET", path, &[], b"")
    }

    /// Sends `signal` and waits for the exit code (None: killed by a signal), up to `limit`.
    pub fn signal(&mut self, signal: i32, limit: Duration) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(start.elapsed() < limit, "still running {limit:?} after signal {signal}; the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn msg(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

/// `zonekeeper token create NAME` against the state document `state`: the token.
pub fn create_token(state: &Path, name: &str) -> String {
    let out = Command::new(assert_cmd::cargo::cargo_bin("zonekeeper"))
        .args(["token", "create", name, "--state"])
        .arg(state)
        .output()
        .expect("token create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
