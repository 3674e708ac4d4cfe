//! Technitium benchmark against the API double (tests/support/technitium.rs): calls made and
//! time for a first sync of 1,000 and 10,000 records, and for a reconcile with 1% changed.
//! The rate limit is lifted so the figures show our own cost; the time the default limit
//! (10 requests/s) would impose is printed beside them.
//! `cargo bench --bench technitium [-- 1000 10000]`

#[path = "../tests/support/technitium.rs"]
mod double;

use std::time::Instant;

use zonekeeper::desired;
use zonekeeper::reconcile;
use zonekeeper::secrets::Secrets;

const TOKEN: &str = "bench-token";

fn records(n: usize, salt: usize) -> String {
    let mut y = String::from("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: bench.example\nrecords:\n");
    for i in 0..n {
        let v = if salt > 0 && i % 100 == 0 { i + salt } else { i };
        y.push_str(&format!(
            "  - {{name: h{i}, type: A, value: 10.{}.{}.{}}}\n",
            (v >> 16) & 255,
            (v >> 8) & 255,
            v & 255
        ));
    }
    y
}

fn pass(dir: &std::path::Path, secrets: &Secrets) -> (usize, f64) {
    let t = Instant::now();
    let state = desired::load(dir).expect("valid");
    let planned = reconcile::plan(&state, secrets, "bench", None).expect("plan");
    assert!(planned.plan.is_complete(), "{:?}", planned.plan.unplanned);
    let changes = planned.plan.change_count();
    for a in reconcile::apply(&state, secrets, &planned.plan, true).expect("apply") {
        let outcomes = a.result.expect("applied");
        assert!(outcomes.iter().all(|o| *o == zonekeeper::targets::Outcome::Applied), "{outcomes:?}");
    }
    (changes, t.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000] } else { sizes };
    println!(
        "{:>8}  {:<22}  {:>8}  {:>6}  {:>7}  {:>9}  {:>20}",
        "records", "run", "changes", "reads", "writes", "time ms", "at 10 req/s (s)"
    );
    for n in sizes {
        let dns = double::Technitium::start(TOKEN, "bench.example");
        let dir = tempfile::tempdir().expect("dir");
        let secrets = Secrets::of(&[(&dns.url(), TOKEN)]);
        std::fs::write(
            dir.path().join("zonekeeper.yaml"),
            format!(
                "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: bench\npolicy: sync\n\
                 safety: {{maxUpdateShare: 1, maxDeleteShare: 1}}\n\
                 zones: [{{name: bench.example, targets: [t]}}]\n\
                 targets: {{t: {{type: technitium, url: \"{}\", rateLimit: 1000000}}}}\n",
                dns.url()
            ),
        )
        .expect("settings");
        std::fs::create_dir_all(dir.path().join("records")).expect("mkdir");
        for (label, salt) in [("first sync", 0), ("no-op", 0), ("1% changed", 7)] {
            std::fs::write(dir.path().join("records/bench.example.yaml"), records(n, salt)).expect("records");
            dns.clear_calls();
            let (changes, ms) = pass(dir.path(), &secrets);
            let calls = dns.state.lock().expect("state").calls.clone();
            let writes = calls.iter().filter(|c| c.is_write()).count();
            println!(
                "{n:>8}  {label:<22}  {changes:>8}  {:>6}  {writes:>7}  {ms:>9.1}  {:>20.1}",
                calls.len() - writes,
                calls.len() as f64 / 10.0
            );
        }
    }
}
