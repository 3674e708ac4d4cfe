//! `zonekeeper run` measured: the real binary against the Technitium double
//! (tests/support/technitium.rs) and a real git repository of 10,000 records.
//!
//! 1. webhook → change applied at the double, the default 500 ms debounce included;
//! 2. resident memory and CPU while idle, 10,000 records in the desired state;
//! 3. a soak with churn (a commit every few seconds, a burst of HTTP 500s now and then, API
//!    reads every second): reconciles, API error rate, RSS and CPU over time, drift left.
//!
//! `cargo bench --bench run [-- --records N --soak-seconds S --idle-seconds S]`; the idle window
//! (65 s by default) holds one poll of the repository at the default 60 s.
//!
//! With `--kube [--routes R]`: the cluster as a source instead, through the Kubernetes API
//! double (tests/support/kube.rs): R IngressRoutes watched (1,000) beside records in git (the
//! rest of --records), then a watch event (one route changed) → applied at the Technitium
//! double, and the idle process.

#[path = "../tests/support/technitium.rs"]
mod double;
#[path = "../tests/support/kube.rs"]
#[allow(dead_code)]
mod kube_double;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-run-token";
const SECRET: &str = "bench-webhook-secret-0123";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn records(n: usize, salt: usize) -> String {
    let mut y = String::from("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: bench.example\nrecords:\n");
    for i in 0..n {
        // `salt` moves a handful of records: what one commit of a person changes.
        let v = if salt > 0 && i % 1000 == salt % 1000 { i + salt * 7 } else { i };
        y.push_str(&format!(
            "  - {{name: h{i}, type: A, value: 10.{}.{}.{}}}\n",
            (v >> 16) & 255,
            (v >> 8) & 255,
            v & 255
        ));
    }
    y
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Bench", "-c", "user.email=bench@example.org", "-c", "commit.gpgsign=false"])
        .args(args)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let Ok(mut c) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let _ = c.write_all(req.as_bytes());
    let _ = c.write_all(body);
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn signature(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Resident memory in MiB and CPU seconds so far, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; after the ")" they are at 11 and 12.
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (rss_kb / 1024.0, ticks / hz.max(1.0))
}

struct Daemon {
    child: Child,
    api: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(
    repo: &std::path::Path,
    work: &std::path::Path,
    creds: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--repo")
        .arg(repo)
        .args([
            "--log-format",
            "json",
            "run",
            "--open-reads",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(work.join("state.json"))
        .env("ZONEKEEPER_CREDENTIALS", creds)
        .env("ZK_BENCH_TOKEN", TOKEN)
        .env("ZONEKEEPER_WEBHOOK_SECRET", SECRET)
        .env("ZONEKEEPER_CACHE", work.join("cache"))
        .env("ZONEKEEPER_LOG", "info")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zonekeeper run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("ZK_BENCH_DEBUG").is_some() || line.contains("\"ERROR\"") || line.starts_with("error") {
                eprintln!("{line}");
            }
            if line.contains("\"listening\"") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let _ = tx.send(v["fields"]["api"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let api = rx.recv_timeout(Duration::from_secs(30)).expect("the daemon listens");
    Daemon { child, api }
}

fn value_of(dns: &double::Technitium, name: &str) -> Option<String> {
    dns.records("bench.example")
        .into_iter()
        .find(|r| r.name == name && r.rtype == "A")
        .and_then(|r| r.rdata["ipAddress"].as_str().map(str::to_string))
}

/// A repository of `n` records in bench.example for the target `dns`, with `discovery`
/// appended to its settings; and the credentials file for the double.
fn repository(
    work: &std::path::Path,
    dns: &double::Technitium,
    n: usize,
    discovery: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = work.join("repo");
    std::fs::create_dir_all(repo.join("records")).expect("mkdir");
    std::fs::write(
        repo.join("zonekeeper.yaml"),
        format!(
            "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: bench\npolicy: sync\n\
             safety: {{maxUpdateShare: 1, maxDeleteShare: 1}}\n\
             zones: [{{name: bench.example, targets: [t]}}]\n\
             targets: {{t: {{type: technitium, url: \"{}\", rateLimit: 100000, attempts: 1}}}}\n{discovery}",
            dns.url()
        ),
    )
    .expect("settings");
    std::fs::write(repo.join("records/bench.example.yaml"), records(n, 0)).expect("records");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let creds = work.join("credentials.yaml");
    std::fs::write(&creds, format!("credentials:\n  - {{origin: \"{}\", tokenEnv: ZK_BENCH_TOKEN}}\n", dns.url()))
        .expect("creds");
    (repo, creds)
}

/// Waits until the double holds `name`, up to `limit`; returns how long it took.
fn first_sync(dns: &double::Technitium, name: &str, limit: Duration) -> f64 {
    let t = Instant::now();
    while value_of(dns, name).is_none() {
        assert!(t.elapsed() < limit, "first sync");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed().as_secs_f64()
}

/// Resident memory and CPU share of `pid` over `seconds` of idling.
fn idle_usage(pid: u32, seconds: u64) -> (f64, f64) {
    std::thread::sleep(Duration::from_secs(2));
    let (_, cpu0) = usage(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (rss, cpu1) = usage(pid);
    (rss, (cpu1 - cpu0) / t.elapsed().as_secs_f64())
}

fn median_max(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

/// `--kube`: routes watched in the cluster, one route changed at a time.
fn kube_bench(n: usize, routes: usize, idle: u64) {
    const KUBE_TOKEN: &str = "bench-kube-token";
    let dns = double::Technitium::start(TOKEN, "bench.example");
    let k = kube_double::Kube::start(KUBE_TOKEN);
    k.install(kube_double::INGRESS_ROUTES);
    k.put(
        kube_double::SERVICES,
        serde_json::json!({"metadata": {"name": "traefik", "namespace": "traefik"},
        "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.80"}]}}}),
    );
    let route = |i: usize, target: Option<String>| {
        let mut meta = serde_json::json!({"name": format!("r{i}"), "namespace": "apps"});
        if let Some(t) = target {
            meta["annotations"] = serde_json::json!({"zonekeeper.dev/target": t});
        }
        serde_json::json!({"metadata": meta, "spec": {"routes": [{"match": format!("Host(`r{i}.bench.example`)")}]}})
    };
    for i in 0..routes {
        k.put(kube_double::INGRESS_ROUTES, route(i, None));
    }
    let work = tempfile::tempdir().expect("dir");
    let discovery = "discovery:\n  kubernetes: {kinds: [IngressRoute], address: {service: traefik/traefik}}\n";
    let (repo, creds) = repository(work.path(), &dns, n - routes, discovery);
    let kubeconfig = k.kubeconfig(work.path(), KUBE_TOKEN);
    let t = Instant::now();
    let d = start(&repo, work.path(), &creds, &[("KUBECONFIG", kubeconfig.as_os_str())]);
    first_sync(&dns, &format!("r{}.bench.example", routes - 1), Duration::from_secs(300));
    println!(
        "first sync of {} records in git and {routes} IngressRoutes: {:.2} s",
        n - routes,
        t.elapsed().as_secs_f64()
    );

    let mut lat = Vec::new();
    for round in 1..=15usize {
        let i = round * 37 % routes;
        let ip = format!("198.51.100.{round}");
        let t = Instant::now();
        k.put(kube_double::INGRESS_ROUTES, route(i, Some(ip.clone())));
        while value_of(&dns, &format!("r{i}.bench.example")).as_deref() != Some(ip.as_str()) {
            assert!(t.elapsed() < Duration::from_secs(30), "route {i} not applied");
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        dns.state.lock().expect("state").calls.clear();
    }
    let (median, max) = median_max(lat);
    println!(
        "watch event → applied (15 changed routes, {n} records, 500 ms debounce): median {median:.0} ms, max {max:.0} ms"
    );
    let (rss, cpu) = idle_usage(d.child.id(), idle);
    println!(
        "idle over {idle} s with {routes} routes watched and {n} records: RSS {rss:.1} MiB, CPU {cpu:.4} of a core"
    );
}

fn main() {
    let n = arg("--records", 10_000) as usize;
    let soak = arg("--soak-seconds", 300);
    let idle = arg("--idle-seconds", 65);
    if std::env::args().any(|a| a == "--kube") {
        return kube_bench(n, arg("--routes", 1000) as usize, idle);
    }
    let dns = double::Technitium::start(TOKEN, "bench.example");
    let work = tempfile::tempdir().expect("dir");
    let (repo, creds) = repository(work.path(), &dns, n, "");

    let t = Instant::now();
    let d = start(&repo, work.path(), &creds, &[]);
    first_sync(&dns, &format!("h{}.bench.example", n - 1), Duration::from_secs(300));
    println!("first sync of {n} records: {:.2} s (start to the last record at the double)", t.elapsed().as_secs_f64());

    // 1. Webhook to applied.
    let mut lat = Vec::new();
    for salt in 1..=15usize {
        std::fs::write(repo.join("records/bench.example.yaml"), records(n, salt)).expect("records");
        git(&repo, &["commit", "-q", "-am", &format!("change {salt}")]);
        let probe = format!("h{}.bench.example", salt % 1000);
        let want = {
            let v = salt % 1000 + salt * 7;
            format!("10.{}.{}.{}", (v >> 16) & 255, (v >> 8) & 255, v & 255)
        };
        let body = br#"{"ref":"refs/heads/main"}"#;
        let t = Instant::now();
        let (code, _) = http(&d.api, "POST", "/api/v1/webhook/git", &[("X-Hub-Signature-256", &signature(body))], body);
        assert_eq!(code, 202);
        while value_of(&dns, &probe).as_deref() != Some(want.as_str()) {
            assert!(t.elapsed() < Duration::from_secs(30), "webhook {salt} not applied");
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let commits = lat.len();
    let (median, max) = median_max(lat);
    println!(
        "webhook → applied ({commits} commits, {n} records, 500 ms debounce): median {median:.0} ms, max {max:.0} ms"
    );

    // 2. Idle.
    let (rss, cpu) = idle_usage(d.child.id(), idle);
    println!("idle over {idle} s with {n} records: RSS {rss:.1} MiB, CPU {cpu:.4} of a core");

    // 3. Soak.
    if soak == 0 {
        return;
    }
    println!(
        "\nsoak: {soak} s; a commit every 3 s, three HTTP 500s every 20 s, an API read every second (--open-reads)"
    );
    println!("{:>6}  {:>9}  {:>8}  {:>10}  {:>10}", "t (s)", "RSS MiB", "CPU", "API reads", "API errors");
    let start = Instant::now();
    let (mut reads, mut errors) = (0u64, 0u64);
    let (mut last_cpu, mut last_t) = (usage(d.child.id()).1, Instant::now());
    let mut salt = 100;
    let mut rss_samples = Vec::new();
    let mut next_commit = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_secs(10);
    let mut next_report = Instant::now() + Duration::from_secs(30);
    while start.elapsed() < Duration::from_secs(soak) {
        let now = Instant::now();
        if now >= next_commit {
            salt += 1;
            std::fs::write(repo.join("records/bench.example.yaml"), records(n, salt)).expect("records");
            git(&repo, &["commit", "-q", "-am", &format!("soak {salt}")]);
            let body = br#"{"ref":"refs/heads/main"}"#;
            http(&d.api, "POST", "/api/v1/webhook/git", &[("X-Hub-Signature-256", &signature(body))], body);
            next_commit = now + Duration::from_secs(3);
        }
        if now >= next_fault {
            dns.state.lock().expect("state").fail_next = vec![500; 3];
            next_fault = now + Duration::from_secs(20);
        }
        let (code, _) = http(&d.api, "GET", "/api/v1/status", &[], b"");
        reads += 1;
        if code != 200 {
            errors += 1;
        }
        if now >= next_report {
            let (rss, cpu) = usage(d.child.id());
            let share = (cpu - last_cpu) / last_t.elapsed().as_secs_f64();
            (last_cpu, last_t) = (cpu, Instant::now());
            rss_samples.push(rss);
            println!("{:>6.0}  {rss:>9.1}  {share:>8.3}  {reads:>10}  {errors:>10}", start.elapsed().as_secs_f64());
            next_report = now + Duration::from_secs(30);
        }
        // The double keeps every call: forget them, as a real server would.
        dns.state.lock().expect("state").calls.clear();
        std::thread::sleep(Duration::from_secs(1));
    }
    // Settle, then ask for a full reconcile and read what it still had to do.
    dns.state.lock().expect("state").fail_next.clear();
    std::thread::sleep(Duration::from_secs(5));
    let token = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["token", "create", "bench", "--state"])
        .arg(work.path().join("state.json"))
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let bearer = format!("Bearer {token}");
    let (code, _) = http(&d.api, "POST", "/api/v1/reconcile", &[("Authorization", &bearer)], b"");
    assert_eq!(code, 202);
    std::thread::sleep(Duration::from_secs(5));
    let (_, body) = http(&d.api, "GET", "/api/v1/status", &[("Authorization", &bearer)], b"");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let last = &status["last_reconcile"];
    let expected = value_of(&dns, &format!("h{}.bench.example", salt % 1000));
    println!(
        "end: {} reconciles, {} failed (the injected 500s) · last ({}): {} planned, {} applied · h{}: {:?} · API error rate {:.4}",
        status["reconciles"],
        status["failures"],
        last["trigger"],
        last["planned"],
        last["applied"],
        salt % 1000,
        expected,
        errors as f64 / reads.max(1) as f64
    );
    let drift_left = last["planned"].as_u64().unwrap_or(u64::MAX);
    println!("drift left at the end: {drift_left} change(s) (0: the target holds the last commit)");
    if let (Some(first), Some(last)) = (rss_samples.first(), rss_samples.last()) {
        println!("RSS first sample {first:.1} MiB, last {last:.1} MiB ({:+.1} MiB)", last - first);
    }
}
