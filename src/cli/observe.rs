//! `zonekeeper observe`: what the targets hold, optionally committed back.

use super::*;

pub(super) fn observe(origin: &Origin, state: &DesiredState, source: &str, commit: bool) -> Result<ExitCode> {
    use zonekeeper::sources::git;
    let (repo, rev) = (origin.repo.repo.as_path(), origin.rev.as_deref());
    let repo_str = repo.to_string_lossy().to_string();
    let remote = origin.remote().is_some();
    let (zones, failures) = reconcile::observe(state, &origin.secrets);
    let failed = report_failures(&failures);
    let prefix = state.settings.commit_back.as_ref().map(|c| c.path.clone()).unwrap_or_else(|| "observed".into());
    let docs: std::collections::BTreeMap<String, String> = zones
        .iter()
        .map(|z| {
            (
                format!("{prefix}/{}/{}.yaml", z.target, z.zone),
                zonekeeper::export::observed_yaml(z, &state.settings.owner),
            )
        })
        .collect();
    if !commit {
        for (path, doc) in &docs {
            println!("---\n# {path}\n{doc}");
        }
        return Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    if failed {
        // A target that did not answer must not read as "holds nothing".
        bail!("not committing: some targets could not be read");
    }
    let cb = state
        .settings
        .commit_back
        .clone()
        .context("commit-back is not enabled: add `commitBack:` to zonekeeper.yaml")?;
    if rev.is_some_and(|r| r == cb.branch || r == format!("refs/heads/{}", cb.branch)) {
        bail!(
            "the commit-back branch `{}` is the branch the desired state is read from; use another branch",
            cb.branch
        );
    }
    let dir = if remote { git::cache_dir(&cache_root()?, &repo_str) } else { repo.to_path_buf() };
    if let Some(wt) = if remote { None } else { git::checked_out_in(&dir, &cb.branch)? } {
        bail!("the commit-back branch `{}` is checked out in {}; use another branch", cb.branch, wt.display());
    }
    let author = git::Author { name: cb.author_name.clone(), email: cb.author_email.clone() };
    let message = format!("Observed state of {} target zone(s)\n\nRead from the {source}.", zones.len());
    for _ in 0..3 {
        let tip =
            if remote { format!("refs/remotes/origin/{}", cb.branch) } else { format!("refs/heads/{}", cb.branch) };
        let parent = git::resolve(&dir, &tip);
        let spec = git::CommitSpec {
            branch: &cb.branch,
            parent: parent.as_deref(),
            prefix: &cb.path,
            files: &docs,
            author: &author,
            message: &message,
        };
        let Some(id) = git::commit_files(&dir, remote, &spec)? else {
            println!("observed state unchanged: nothing committed");
            return Ok(ExitCode::SUCCESS);
        };
        if !remote {
            println!("committed {id} to {}", cb.branch);
            return Ok(ExitCode::SUCCESS);
        }
        let refused =
            match git::push(&dir, &repo_str, &id, &cb.branch, origin.credentials.as_ref(), origin.git_timeout)? {
                git::Pushed::Done => {
                    println!("committed {id} to {} and pushed it to {}", cb.branch, git::redact(&repo_str));
                    return Ok(ExitCode::SUCCESS);
                }
                git::Pushed::MaybeMoved(detail) => detail,
            };
        // Perhaps the remote moved on: fetch, and make the commit again on top of what is
        // there now. If it did not move, the refusal has another cause: retrying cannot help.
        if let git::Fetched::Stale(why) = git::fetch(&repo_str, &dir, origin.credentials.as_ref(), origin.git_timeout)?
        {
            bail!("the push was refused ({refused}) and fetching again failed: {why}");
        }
        if git::resolve(&dir, &tip) == parent {
            bail!("git push to {} was refused, and the remote branch has not moved: {refused}", git::redact(&repo_str));
        }
    }
    bail!("the remote branch `{}` kept moving; gave up after 3 tries (nothing is ever force-pushed)", cb.branch)
}
