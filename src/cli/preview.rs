//! `zonekeeper preview`: the desired state on this machine's hosts file, optionally watched.

use super::*;

/// The desired state reduced to one hosts target at `hosts`, serving every zone.
pub(super) fn preview_state(mut state: DesiredState, hosts: &Path, view: Option<&str>) -> Result<DesiredState> {
    let s = &mut state.settings;
    let existing = s.targets.iter().find(|t| matches!(t.kind, TargetKind::Hosts { .. })).cloned();
    let view = match view {
        Some(v) if s.view(v).is_some() => v.to_string(),
        Some(v) => bail!("view `{v}` is not declared in zonekeeper.yaml"),
        None => match &existing {
            Some(t) => t.view.clone(),
            None => {
                s.views.iter().find(|v| !v.public).or(s.views.first()).map(|v| v.name.clone()).context("no views")?
            }
        },
    };
    let name = existing.map(|t| t.name).unwrap_or_else(|| "preview".to_string());
    s.targets =
        vec![TargetSettings { name: name.clone(), view, kind: TargetKind::Hosts { path: hosts.to_path_buf() } }];
    for z in &mut s.zones {
        z.targets = vec![name.clone()];
    }
    Ok(state)
}

/// One render of the preview block: prints a short line, returns whether it worked.
pub(super) fn preview_once(repo: &Path, hosts: &Path, view: Option<&str>) -> Result<()> {
    let state = preview_state(desired::load(repo)?, hosts, view)?;
    // A hosts file needs no token. It is locked like any apply's target, so a preview and an
    // apply (or two previews) never interleave on one file.
    let _held = lock_targets(&state, &Secrets::none(), None, Some(Duration::from_secs(30)))?;
    let planned = reconcile::plan(&state, &Secrets::none(), &WorkTree(repo.to_path_buf()).describe(), None)?;
    if let Some(f) = planned.plan.unplanned.first() {
        bail!("{}: {}", f.target, f.error);
    }
    let s = render::summary(&planned.plan);
    // A local preview may rewrite its own block freely: safety limits are for shared targets.
    for a in reconcile::apply(&state, &Secrets::none(), &planned.plan, true)? {
        a.result.with_context(|| format!("cannot update {}", hosts.display()))?;
    }
    println!("preview: {} updated ({} added, {} changed, {} removed)", hosts.display(), s.create, s.update, s.delete);
    Ok(())
}

/// The files of a repository that make the desired state: zonekeeper.yaml, records/ and
/// resolvers/, under the directory as given and as canonicalised (events may carry either).
pub(super) struct DesiredInputs {
    roots: Vec<PathBuf>,
}

impl DesiredInputs {
    fn of(repo: &Path) -> DesiredInputs {
        let mut roots = vec![repo.to_path_buf()];
        if let Ok(abs) = std::fs::canonicalize(repo) {
            roots.push(abs);
        }
        DesiredInputs { roots }
    }

    fn contains(&self, path: &Path) -> bool {
        self.roots.iter().filter_map(|r| path.strip_prefix(r).ok()).any(|rel| {
            let mut parts = rel.components().map(|c| c.as_os_str());
            matches!(
                (parts.next().and_then(|f| f.to_str()), parts.next()),
                (Some(desired::settings::SETTINGS_FILE), None) | (Some("records" | "resolvers"), _)
            )
        })
    }
}

pub(super) enum WatchEvent {
    Changed,
    Stop,
}

pub(super) fn preview(repo: &Path, hosts: &Path, watch: bool, view: Option<&str>) -> Result<ExitCode> {
    if !watch {
        preview_once(repo, hosts, view)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = preview_once(repo, hosts, view) {
        eprintln!("error: {e:#}\n(keeping the hosts block as it was; fix the files and save again)");
    }
    let (tx, rx) = mpsc::channel();
    let stop = tx.clone();
    ctrlc::set_handler(move || {
        let _ = stop.send(WatchEvent::Stop);
    })
    .context("cannot install the Ctrl-C handler")?;
    let inputs = DesiredInputs::of(repo);
    let mut debouncer = notify_debouncer_full::new_debouncer(
        Duration::from_millis(300),
        None,
        move |res: notify_debouncer_full::DebounceEventResult| {
            // Only a change to the desired state counts: not our own reads of it (access
            // events), not the hosts file we write, wherever it is, nor anything else.
            let relevant = match res {
                Ok(events) => events.iter().any(|e| {
                    !matches!(e.event.kind, notify::EventKind::Access(_))
                        && e.event.paths.iter().any(|p| inputs.contains(p))
                }),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(WatchEvent::Changed);
            }
        },
    )
    .context("cannot start watching files")?;
    debouncer
        .watch(repo, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", repo.display()))?;
    println!("preview: watching {} (Ctrl-C to stop)", repo.display());
    while let Ok(ev) = rx.recv() {
        match ev {
            WatchEvent::Stop => break,
            WatchEvent::Changed => {
                if let Err(e) = preview_once(repo, hosts, view) {
                    eprintln!("error: {e:#}\n(keeping the last good hosts block)");
                }
            }
        }
    }
    println!("preview: stopped");
    Ok(ExitCode::SUCCESS)
}
