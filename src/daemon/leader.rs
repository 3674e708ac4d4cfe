//! Leader election over a coordination.k8s.io/v1 Lease, so several replicas of `run` can be
//! deployed and exactly one writes.
//!
//! The lease loop is kube-lease-manager's (acquire by a server-side apply that another
//! holder's fields make conflict, renew before expiry, release on stop); this module only
//! drives it and answers two questions:
//! - `leads()`: what the lease manager last said. It drives `zonekeeper_leader`, the status,
//!   and the full reconcile a new leader runs at once.
//! - `confirm()`: asked right before a reconcile writes. It reads the Lease itself and passes
//!   only when this replica holds it and it has not expired; it also tells the targets until
//!   when they may write (`targets::lead_until`), so an apply that outlives the lease, or a
//!   leader that hears it lost, stops after the write in flight.
//!
//! No library here fences writes (a partitioned leader can write until its lease runs out):
//! the check at write time and the expiry bound are what there is, and the README says so.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use tokio::sync::watch;

/// How `run` takes part in the election (from the command line and the environment only).
#[derive(Debug, Clone)]
pub struct Election {
    pub lease: String,
    pub namespace: String,
    /// This replica's name in `holderIdentity` (the pod's name).
    pub identity: String,
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// This process's part in the election, shared by the worker, the triggers and the status.
#[derive(Clone)]
pub struct Leadership {
    elected: Option<Elected>,
}

#[derive(Clone)]
struct Elected {
    api: kube::Api<Lease>,
    election: Election,
    leads: watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("this replica does not hold the lease {lease} ({holder})")]
    NotHolder { lease: String, holder: String },
    #[error("the lease {lease} could not be read: {message}")]
    Unreadable { lease: String, message: String },
}

impl Leadership {
    /// Leads alone: outside a cluster, or with `--no-leader-election`.
    pub fn alone() -> Leadership {
        Leadership { elected: None }
    }

    /// Joins the election; the returned task runs it until `stop` turns true, then releases
    /// the lease so another replica takes over at once.
    pub async fn join(
        election: Election,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<(Leadership, tokio::task::JoinHandle<()>)> {
        use anyhow::Context;
        crate::targets::lead_until(SystemTime::UNIX_EPOCH);
        let client = kube::Client::try_default()
            .await
            .context("leader election needs the Kubernetes API (in-cluster config or KUBECONFIG)")?;
        let api = kube::Api::<Lease>::namespaced(client.clone(), &election.namespace);
        let params = kube_lease_manager::LeaseParams::new(
            election.identity.clone(),
            election.duration.as_secs(),
            election.grace.as_secs(),
        )
        .with_field_manager(format!("zonekeeper-{}", election.identity));
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client, election.lease.clone())
            .with_namespace(election.namespace.clone())
            .with_parameters(params)
            .with_create_mode(kube_lease_manager::LeaseCreateMode::AutoCreate)
            .build()
            .await
            .with_context(|| format!("cannot take part in the election on the lease {}", lease_name(&election)))?;
        let (tx, leads) = watch::channel(false);
        let lease = lease_name(&election);
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                tokio::select! {
                    biased;
                    _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => break,
                    changed = manager.changed() => match changed {
                        Ok(now) => {
                            failures = 0;
                            if !now {
                                crate::targets::lead_until(SystemTime::UNIX_EPOCH);
                            }
                            tracing::info!(lease = %lease, leader = now, "{}", if now { "this replica leads" } else { "this replica stands by" });
                            let _ = tx.send(now);
                        }
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(lease = %lease, error = %e, "the lease could not be renewed or read; writes wait for it");
                            tokio::time::sleep(Duration::from_secs(u64::from(failures.min(5)))).await;
                        }
                    }
                }
            }
            crate::targets::lead_until(SystemTime::UNIX_EPOCH);
            let _ = tx.send(false);
            match manager.release().await {
                Ok(()) => tracing::info!(lease = %lease, "the lease was released"),
                Err(e) => {
                    tracing::warn!(lease = %lease, error = %e, "the lease could not be released; it expires by itself")
                }
            }
        });
        Ok((Leadership { elected: Some(Elected { api, election, leads }) }, task))
    }

    /// Whether this process leads, as the lease manager last said.
    pub fn leads(&self) -> bool {
        self.elected.as_ref().is_none_or(|e| *e.leads.borrow())
    }

    /// Changes of `leads()`, when an election runs.
    pub fn changes(&self) -> Option<watch::Receiver<bool>> {
        self.elected.as_ref().map(|e| e.leads.clone())
    }

    /// Passes only when this replica holds the Lease now; right before a write.
    pub async fn confirm(&self) -> Result<(), LeaderError> {
        let Some(e) = &self.elected else { return Ok(()) };
        let lease = lease_name(&e.election);
        let got = e.api.get(&e.election.lease).await.map_err(|err| {
            crate::targets::lead_until(SystemTime::UNIX_EPOCH);
            LeaderError::Unreadable { lease: lease.clone(), message: err.to_string() }
        })?;
        let spec = got.spec.unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        let expires = match (spec.renew_time, spec.lease_duration_seconds) {
            (Some(renewed), Some(d)) if d > 0 => {
                SystemTime::from(renewed.0).checked_add(Duration::from_secs(d as u64)).unwrap_or(SystemTime::UNIX_EPOCH)
            }
            _ => SystemTime::UNIX_EPOCH,
        };
        if holder != e.election.identity || expires <= SystemTime::now() {
            crate::targets::lead_until(SystemTime::UNIX_EPOCH);
            let holder = if holder.is_empty() { "nobody holds it".to_string() } else { format!("held by {holder}") };
            return Err(LeaderError::NotHolder { lease, holder });
        }
        crate::targets::lead_until(expires);
        Ok(())
    }

    /// `namespace/name as identity` for the status.
    pub fn describe(&self) -> Option<String> {
        self.elected.as_ref().map(|e| format!("{} as {}", lease_name(&e.election), e.election.identity))
    }
}

fn lease_name(e: &Election) -> String {
    format!("{}/{}", e.namespace, e.lease)
}
