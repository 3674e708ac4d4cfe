//! Plan benchmark: N records in YAML against a zone file holding the same zone with 1% of
//! records changed, 1% missing and 1% extra; measures the whole `plan` path from YAML load
//! to the rendered text plan (with the zone-file diff). Prints time and peak heap per N.
//! Two zone files per N: one zonekeeper wrote (`ours`), and one in the layout octoDNS's BIND
//! provider (octodns-bind 1.1) writes (`octodns`: `$ORIGIN`, a multi-line SOA with comments,
//! padded columns, blank owners for repeated names), which the target adopts.
//!
//! `cargo bench --bench plan` runs 1k, 10k, 100k and 1M; pass sizes to pick others:
//! `cargo bench --bench plan -- 100000`. Each measurement runs in a fresh child process so
//! that its peak resident memory (VmHWM) is its own; the best of 5 runs is shown (1 at 1M).
//! `--fixture N DIR` writes one input to DIR and `--measure DIR` runs one measurement, for
//! profiling by hand; with `RSS=1` set, the measurement also prints resident memory after the
//! load and after the plan.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use zonekeeper::desired::format::SoaDecl;
use zonekeeper::model::{Name, RData, RecordSet, RecordType};
use zonekeeper::plan::render;
use zonekeeper::targets::zonefile::render_zone;

/// Peak resident memory of this process so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn ip(i: usize, salt: usize) -> String {
    let v = i * 7 + salt;
    format!("10.{}.{}.{}", (v >> 16) & 255, (v >> 8) & 255, v & 255)
}

/// Who wrote the zone file the plan starts from.
#[derive(Clone, Copy, PartialEq)]
enum Writer {
    Ours,
    Octodns,
}

impl Writer {
    fn name(self) -> &'static str {
        match self {
            Writer::Ours => "ours",
            Writer::Octodns => "octodns",
        }
    }
}

/// Writes the repository and the zone file for `n` records; returns the repo dir.
fn setup(n: usize, writer: Writer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_fixture(n, dir.path(), writer);
    dir
}

/// The zone file octodns-bind 1.1 writes for `sets` (its `ZoneFileProvider._apply`): records
/// sorted by name, `{name:<longest} {ttl:8d} IN {type:<8} {value}`, the name left blank when
/// it repeats, and a serial that is the Unix time.
fn octodns_zone(zone: &Name, sets: &[RecordSet]) -> String {
    use std::fmt::Write;
    let mut sets: Vec<&RecordSet> = sets.iter().collect();
    sets.sort_by_cached_key(|s| (s.name.relative(zone), s.rtype));
    let longest = sets.iter().map(|s| s.name.relative(zone).len()).max().unwrap_or(0);
    let mut out = String::with_capacity(sets.len() * 48);
    let _ = write!(
        out,
        "$ORIGIN {zone}.\n\n@ 3600 IN SOA ns1.{zone}. webmaster.{zone}. (\n    1767225600 ; Serial\n    3600 ; Refresh\n    600 ; Retry\n    604800 ; Expire\n    3600 ; NXDOMAIN ttl\n)\n\n"
    );
    let mut prev = String::new();
    for s in sets {
        let name = s.name.relative(zone);
        for v in &s.values {
            let shown = if name == prev { "" } else { name.as_str() };
            let _ = writeln!(out, "{shown:<longest$} {:8} IN {:<8} {v}", s.ttl, s.rtype);
        }
        prev = name;
    }
    out
}

/// Writes the repository and the zone file for `n` records into `root`.
fn write_fixture(n: usize, root: &Path, writer: Writer) {
    std::fs::create_dir_all(root).expect("fixture directory");
    let adopt = if writer == Writer::Octodns { ", adopt: true" } else { "" };
    std::fs::write(
        root.join("zonekeeper.yaml"),
        format!(
            "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: bench\npolicy: sync\n\
             limits: {{maxFileBytes: 1073741824}}\n\
             zones: [{{name: bench.example, targets: [zf]}}]\n\
             targets: {{zf: {{type: zonefile, directory: zones{adopt}}}}}\n"
        ),
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
    let text = match writer {
        Writer::Ours => {
            let refs: Vec<&RecordSet> = observed.iter().collect();
            render_zone(&zone, "bench", &SoaDecl::default(), 2026010100, &refs)
        }
        Writer::Octodns => octodns_zone(&zone, &observed),
    };
    std::fs::write(root.join("zones/db.bench.example"), text).expect("write zone");
}

/// One measured run in this process: load → plan → rendered text. Prints one line.
fn measure(dir: &Path) {
    let t0 = Instant::now();
    let state = zonekeeper::desired::load(dir).expect("valid bench input");
    let load_done = Instant::now();
    let rss = |k: &str| {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or("")
            .to_string()
    };
    if std::env::var_os("RSS").is_some() {
        eprintln!("after load: {} {}", rss("VmRSS"), rss("VmHWM"));
    }
    // The plan is timed from here, so reading /proc above counts in neither phase.
    let t1 = Instant::now();
    let planned =
        zonekeeper::reconcile::plan(&state, &zonekeeper::secrets::Secrets::none(), "bench", None).expect("plan");
    let plan_done = Instant::now();
    if std::env::var_os("RSS").is_some() {
        eprintln!("after plan: {} {}", rss("VmRSS"), rss("VmHWM"));
    }
    let t2 = Instant::now();
    let text = render::text(&planned.plan, false, true);
    let t3 = Instant::now();
    std::hint::black_box(&text);
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    println!(
        "{} {} {} {} {}",
        ms(t0, load_done),
        ms(t1, plan_done),
        ms(t2, t3),
        peak_rss(),
        planned.plan.change_count()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The child: measure one run in a fresh process, so its peak memory is its own.
    if let [flag, dir] = &args[..]
        && flag == "--measure"
    {
        measure(Path::new(dir));
        return;
    }
    // For profiling one run by hand (run the bench binary itself, not through `cargo bench`,
    // which adds its own `--bench`): `--fixture N DIR` writes the input, then
    // `valgrind --tool=massif target/release/deps/plan-… --measure DIR`.
    if let [flag, n, dir, rest @ ..] = &args[..]
        && flag == "--fixture"
    {
        let writer = if rest.iter().any(|a| a == "octodns") { Writer::Octodns } else { Writer::Ours };
        write_fixture(n.parse().expect("a record count"), Path::new(dir), writer);
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000, 1_000_000] } else { sizes };
    let me = std::env::current_exe().expect("own path");
    println!(
        "{:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>13}  {:>8}",
        "records", "file", "load ms", "plan ms", "render ms", "total ms", "peak RSS MiB", "changes"
    );
    for (n, writer) in sizes.iter().flat_map(|&n| [(n, Writer::Ours), (n, Writer::Octodns)]) {
        let dir = setup(n, writer);
        let runs = if n >= 1_000_000 { 1 } else { 5 };
        let mut best: Option<Vec<f64>> = None;
        for _ in 0..runs {
            let out = Command::new(&me).arg("--measure").arg(dir.path()).output().expect("run child");
            let line = String::from_utf8_lossy(&out.stdout).to_string();
            let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            assert_eq!(v.len(), 5, "child failed: {line} {}", String::from_utf8_lossy(&out.stderr));
            let total = v[0] + v[1] + v[2];
            if best.as_ref().is_none_or(|b| total < b[0] + b[1] + b[2]) {
                best = Some(v);
            }
        }
        let v = best.expect("at least one run");
        println!(
            "{n:>9}  {:>8}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}  {:>13.1}  {:>8}",
            writer.name(),
            v[0],
            v[1],
            v[2],
            v[0] + v[1] + v[2],
            v[3] / (1024.0 * 1024.0),
            v[4]
        );
    }
}
