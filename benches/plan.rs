//! Plan benchmark: N records in YAML against a zone file holding the same zone with 1% of
//! records changed, 1% missing and 1% extra; measures the whole `plan` path from YAML load
//! to the rendered text plan (with the zone-file diff). Prints time and peak heap per N.
//!
//! `cargo bench --bench plan` runs 1k, 10k, 100k and 1M; pass sizes to pick others:
//! `cargo bench --bench plan -- 100000`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use zonekeeper::desired::format::SoaDecl;
use zonekeeper::model::{Name, RData, RecordSet, RecordType};
use zonekeeper::plan::render;
use zonekeeper::targets::zonefile::render_zone;

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn ip(i: usize, salt: usize) -> String {
    let v = i * 7 + salt;
    format!("10.{}.{}.{}", (v >> 16) & 255, (v >> 8) & 255, v & 255)
}

/// Writes the repository and the zone file for `n` records; returns the repo dir.
fn setup(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(
        root.join("zonekeeper.yaml"),
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: bench\npolicy: sync\n\
         limits: {maxFileBytes: 1073741824}\n\
         zones: [{name: bench.example, targets: [zf]}]\n\
         targets: {zf: {type: zonefile, directory: zones}}\n",
    )
    .expect("write settings");
    let zone = Name::parse("bench.example").expect("zone");
    let mut yaml = String::with_capacity(n * 60);
    yaml.push_str("apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: bench.example\nrecords:\n");
    yaml.push_str(
        "  - {name: \"@\", type: NS, value: ns1.bench.example.}\n  - {name: ns1, type: A, value: 10.255.255.1}\n",
    );
    let mut observed = vec![
        RecordSet::new(
            zone.clone(),
            RecordType::NS,
            300,
            vec![RData::Ns(Name::parse("ns1.bench.example").expect("ns"))],
        ),
        RecordSet::new(
            Name::parse("ns1.bench.example").expect("ns1"),
            RecordType::A,
            300,
            vec![RData::A("10.255.255.1".parse().expect("ip"))],
        ),
    ];
    for i in 0..n {
        yaml.push_str(&format!("  - {{name: host{i}, type: A, value: {}}}\n", ip(i, 0)));
        let name = Name::parse(&format!("host{i}.bench.example")).expect("name");
        match i % 100 {
            0 => {} // missing at the target
            1 => observed.push(RecordSet::new(name, RecordType::A, 300, vec![RData::A(ip(i, 3).parse().expect("ip"))])),
            _ => observed.push(RecordSet::new(name, RecordType::A, 300, vec![RData::A(ip(i, 0).parse().expect("ip"))])),
        }
        if i % 100 == 2 {
            let extra = Name::parse(&format!("extra{i}.bench.example")).expect("name");
            observed.push(RecordSet::new(extra, RecordType::A, 300, vec![RData::A(ip(i, 5).parse().expect("ip"))]));
        }
    }
    std::fs::create_dir_all(root.join("records")).expect("mkdir");
    std::fs::write(root.join("records/bench.example.yaml"), yaml).expect("write records");
    std::fs::create_dir_all(root.join("zones")).expect("mkdir");
    let text = render_zone(&zone, "bench", &SoaDecl::default(), 2026010100, &observed);
    std::fs::write(root.join("zones/db.bench.example"), text).expect("write zone");
    dir
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000, 1_000_000] } else { sizes };
    println!(
        "{:>9}  {:>10}  {:>10}  {:>10}  {:>12}  {:>9}  {:>8}",
        "records", "load ms", "plan ms", "render ms", "total ms", "peak MiB", "changes"
    );
    for n in sizes {
        let dir = setup(n);
        let runs = if n >= 1_000_000 { 1 } else { 3 };
        let mut best = (f64::MAX, 0.0, 0.0, 0.0, 0usize, 0usize);
        for _ in 0..runs {
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let t0 = Instant::now();
            let state = zonekeeper::desired::load(dir.path()).expect("valid bench input");
            let t1 = Instant::now();
            let planned = zonekeeper::reconcile::plan(&state, "bench", None).expect("plan");
            let t2 = Instant::now();
            let text = render::text(&planned.plan, false, true);
            let t3 = Instant::now();
            let peak = PEAK.load(Ordering::Relaxed) - base;
            let total = (t3 - t0).as_secs_f64() * 1e3;
            if total < best.0 {
                best = (
                    total,
                    (t1 - t0).as_secs_f64() * 1e3,
                    (t2 - t1).as_secs_f64() * 1e3,
                    (t3 - t2).as_secs_f64() * 1e3,
                    peak,
                    planned.plan.change_count(),
                );
            }
            std::hint::black_box(text);
        }
        let (total, load, plan, rend, peak, changes) = best;
        println!(
            "{n:>9}  {load:>10.1}  {plan:>10.1}  {rend:>10.1}  {total:>12.1}  {:>9.1}  {changes:>8}",
            peak as f64 / (1024.0 * 1024.0)
        );
    }
}
