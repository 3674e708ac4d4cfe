//! The sources of triggers. Each is one task that calls `Scheduler::trigger`; registering a
//! new one (a Kubernetes watch, a Tailscale poll) is one line in `start`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{RunOptions, Shared, Trigger};

pub fn start(options: &RunOptions, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    every(options.poll, Trigger::Poll, shared.clone(), stop.clone());
    every(options.resync, Trigger::Resync, shared.clone(), stop.clone());
    if let Some(dir) = &options.watch {
        files(dir.clone(), shared, stop);
    }
}

/// Follows the leader election: the status and `zonekeeper_leader` say whether this replica
/// leads, and a replica that becomes the leader reconciles in full at once.
pub fn leadership(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let publish = |shared: &Shared, leads: bool| {
        shared.metrics.leader.set(i64::from(leads));
        shared.update(|s| {
            s.leader = leads;
            s.election = shared.leader.describe();
        });
    };
    publish(&shared, shared.leader.leads());
    let Some(mut changes) = shared.leader.changes() else { return };
    super::spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        publish(&shared, false);
                        return;
                    }
                    let leads = *changes.borrow_and_update();
                    publish(&shared, leads);
                    if leads {
                        shared.scheduler.trigger(Trigger::Leader);
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}

/// `trigger` every `period` (the first one a period from now: the startup run covers now).
fn every(period: Duration, trigger: Trigger, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    if period.is_zero() {
        return;
    }
    super::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => shared.scheduler.trigger(trigger),
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}

/// Changes to the desired-state files under `dir` (`run --worktree`).
fn files(dir: PathBuf, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    use notify::Watcher;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let root = dir.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = event.paths.iter().any(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(p);
            let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
            matches!(first.as_deref(), Some("zonekeeper.yaml" | "records" | "resolvers"))
        });
        if relevant && !matches!(event.kind, notify::EventKind::Access(_)) {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the files; changes are seen at the next poll");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::Recursive) {
        tracing::error!(dir = %dir.display(), error = %e, "cannot watch the files; changes are seen at the next poll");
        return;
    }
    super::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(()) => shared.scheduler.trigger(Trigger::Files),
                    None => return,
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}
