//! The `run` process's metrics, under the names of "Metric names" in DESIGN.md, as
//! OpenMetrics text (prometheus-client). Every metric has HELP text.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    pub zone: String,
    pub target: String,
    pub view: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppliedLabels {
    pub zone: String,
    pub target: String,
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub target: String,
    pub endpoint: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub target: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchedLabels {
    pub kind: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    pub zone: String,
    pub target: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

fn reconcile_histogram() -> Histogram {
    // 5 ms to about 80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn request_histogram() -> Histogram {
    // 1 ms to about 30 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The commit in force, as an info metric whose label changes with every new commit.
#[derive(Debug, Default)]
struct CommitInfo(Mutex<Option<String>>);

impl Collector for CommitInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(commit) = self.0.lock().map(|c| c.clone()).unwrap_or_default() else { return Ok(()) };
        let info = Info::new(vec![("commit".to_string(), commit)]);
        let metric = encoder.encode_descriptor(
            "zonekeeper_git_commit",
            "The git commit whose desired state is in force",
            None,
            info.metric_type(),
        )?;
        info.encode(metric)
    }
}

/// Every metric the process serves.
pub struct Metrics {
    registry: Registry,
    pub records: Family<RecordLabels, Gauge>,
    pub changes_applied: Family<AppliedLabels, Counter>,
    pub target_requests: Family<RequestLabels, Counter>,
    pub target_request_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub reconcile_duration: Family<TriggerLabels, Histogram, fn() -> Histogram>,
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    pub drift: Family<DriftLabels, Gauge>,
    pub source_up: Family<SourceLabels, Gauge>,
    pub watched_objects: Family<WatchedLabels, Gauge>,
    pub last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub leader: Gauge,
    commit: Arc<CommitInfo>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            records: Family::default(),
            changes_applied: Family::default(),
            target_requests: Family::default(),
            target_request_duration: Family::new_with_constructor(request_histogram),
            reconcile_duration: Family::new_with_constructor(reconcile_histogram),
            reconcile_errors: Family::default(),
            drift: Family::default(),
            source_up: Family::default(),
            watched_objects: Family::default(),
            last_success: Gauge::default(),
            leader: Gauge::default(),
            commit: Arc::new(CommitInfo::default()),
            registry: Registry::default(),
        };
        registry.register(
            "zonekeeper_records",
            "Record sets per zone, target and view, by state (in_sync, pending, drift, unowned) at the last plan",
            m.records.clone(),
        );
        registry.register(
            "zonekeeper_changes_applied",
            "Record changes applied to targets, by operation",
            m.changes_applied.clone(),
        );
        registry.register(
            "zonekeeper_target_requests",
            "API requests made to targets, by endpoint and result",
            m.target_requests.clone(),
        );
        registry.register(
            "zonekeeper_target_request_duration_seconds",
            "Time an API request to a target took",
            m.target_request_duration.clone(),
        );
        registry.register(
            "zonekeeper_reconcile_duration_seconds",
            "Time a reconcile took, by what triggered it",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "zonekeeper_reconcile_errors",
            "Reconciles that did not finish cleanly, by reason",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "zonekeeper_drift",
            "Records at targets that differ from the desired state and are not ours to change, by kind",
            m.drift.clone(),
        );
        registry.register(
            "zonekeeper_source_up",
            "1 when the source's last read succeeded, 0 when its last good state is in use",
            m.source_up.clone(),
        );
        registry.register(
            "zonekeeper_watched_objects",
            "Objects a source beside the repository holds (a Kubernetes source's watch caches), by kind and namespace",
            m.watched_objects.clone(),
        );
        registry.register(
            "zonekeeper_last_reconcile_success_timestamp_seconds",
            "Unix time of the last reconcile that finished cleanly",
            m.last_success.clone(),
        );
        registry.register(
            "zonekeeper_leader",
            "1 when this process is the one that writes: it holds the leader lease, or leads alone",
            m.leader.clone(),
        );
        registry.register(
            "zonekeeper_build",
            "The zonekeeper build",
            Info::new(vec![
                ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ("commit".to_string(), option_env!("ZONEKEEPER_BUILD_COMMIT").unwrap_or("unknown").to_string()),
            ]),
        );
        registry.register_collector(Box::new(m.commit.clone()));
        Metrics { registry, ..m }
    }

    pub fn set_commit(&self, commit: Option<&str>) {
        if let Ok(mut c) = self.commit.0.lock() {
            *c = commit.map(str::to_string);
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The same metrics in Prometheus' classic text format (0.0.4), for scrapers that do not ask
/// for OpenMetrics (`curl`, `promtool check metrics`): a counter family is named with its
/// `_total`, an info family is a gauge named `_info`, and there is no `# EOF` or `# UNIT`.
pub fn to_classic(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Feeds target requests into the metrics.
pub struct RequestRecorder(pub Arc<Metrics>);

impl crate::targets::telemetry::Recorder for RequestRecorder {
    fn request(&self, target: &str, endpoint: &str, status: &str, seconds: f64) {
        self.0
            .target_requests
            .get_or_create(&RequestLabels {
                target: target.to_string(),
                endpoint: endpoint.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.0
            .target_request_duration
            .get_or_create(&EndpointLabels { target: target.to_string(), endpoint: endpoint.to_string() })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_help_and_the_names_of_the_design() {
        let m = Metrics::new();
        m.reconcile_errors.get_or_create(&ReasonLabels { reason: "target" }).inc();
        let labels =
            RecordLabels { zone: "home.example.".into(), target: "t".into(), view: "default".into(), state: "in_sync" };
        m.records.get_or_create(&labels).set(3);
        let applied = AppliedLabels { zone: "home.example.".into(), target: "t".into(), op: "create" };
        m.changes_applied.get_or_create(&applied).inc();
        m.set_commit(Some("abc123"));
        let text = m.encode();
        for name in [
            "zonekeeper_records",
            "zonekeeper_changes_applied",
            "zonekeeper_reconcile_errors",
            "zonekeeper_last_reconcile_success_timestamp_seconds",
            "zonekeeper_build_info",
            "zonekeeper_git_commit_info",
            "zonekeeper_leader",
        ] {
            let family = name.trim_end_matches("_info");
            assert!(text.contains(&format!("# HELP {family} ")), "no HELP for {name} in\n{text}");
            assert!(!text.contains(".."), "HELP text gets its full stop from the encoder:\n{text}");
        }
        assert!(text.contains("zonekeeper_reconcile_errors_total{reason=\"target\"} 1"), "{text}");
        assert!(text.contains("zonekeeper_git_commit_info{commit=\"abc123\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let classic = to_classic(&text);
        assert!(classic.contains("# TYPE zonekeeper_reconcile_errors_total counter\n"), "{classic}");
        assert!(classic.contains("# HELP zonekeeper_reconcile_errors_total Reconciles"), "{classic}");
        assert!(classic.contains("# TYPE zonekeeper_build_info gauge\nzonekeeper_build_info{"), "{classic}");
        assert!(!classic.contains("# EOF") && !classic.contains(" info\n"), "{classic}");
        m.set_commit(Some("def456"));
        let text = m.encode();
        assert!(!text.contains("abc123") && text.contains("def456"));
    }
}
