//! `zonekeeper plan` and `zonekeeper apply`.

use super::*;

// What `zonekeeper plan` is asked for.
#[derive(clap::Args)]
pub(super) struct PlanArgs {
    /// text for a terminal or log, markdown for a pull-request comment, json for machines,
    /// github for text plus annotations on a GitHub Actions run.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: PlanFormat,
    /// Exit 0 when nothing changes, 2 when something would, 1 on error (like terraform).
    #[arg(long)]
    pub(super) detailed_exitcode: bool,
    /// Plan only this target.
    #[arg(long)]
    pub(super) target: Option<String>,
    /// Colour the text output: auto (when a terminal), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) color: Color,
    /// Leave out each target's native diff (zone file, hosts block).
    #[arg(long)]
    pub(super) no_diff: bool,
    /// Also save the plan to FILE, for `apply FILE` to apply exactly this plan later.
    #[arg(long, value_name = "FILE")]
    pub(super) out: Option<PathBuf>,
}

// What `zonekeeper apply` is asked for.
#[derive(clap::Args)]
pub(super) struct ApplyArgs {
    /// A plan saved by `plan --out FILE`: apply exactly it, and refuse (naming what moved)
    /// when the desired state or a target changed since it was made.
    #[arg(value_name = "PLAN")]
    pub(super) saved: Option<PathBuf>,
    /// Apply only this target.
    #[arg(long)]
    pub(super) target: Option<String>,
    /// Apply although a safety limit, a root NS change or emptying a zone refuses the plan.
    #[arg(long)]
    pub(super) force: bool,
    /// Wait up to this many seconds for another run that holds a target's lock (default:
    /// fail at once, naming the lock).
    #[arg(long, value_name = "SECONDS")]
    pub(super) wait: Option<u64>,
    /// Colour the output: auto (when a terminal), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) color: Color,
    /// text: the plan, then every change with its outcome; markdown: the plan and a table
    /// of outcomes (a job summary); json: one report (schema/apply.json) and nothing else.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: ApplyFormat,
}

/// `zonekeeper plan`.
pub(super) fn plan(origin: &Origin, args: PlanArgs) -> Result<ExitCode> {
    let PlanArgs { format, detailed_exitcode, target, color, no_diff, out } = args;
    origin.with_state_in_force(|state, source| {
        let planned = reconcile::plan(state, &origin.secrets, source, target.as_deref())?;
        if let Some(file) = &out {
            let saved = reconcile::SavedPlan::new(&planned.plan, target.as_deref());
            let text = serde_json::to_string_pretty(&saved)? + "\n";
            zonekeeper::targets::atomic::write_atomic(file, text.as_bytes())
                .with_context(|| format!("cannot save the plan to {}", file.display()))?;
            eprintln!("saved the plan to {}; `zonekeeper apply {}` applies exactly it", file.display(), file.display());
        }
        let out = match format {
            PlanFormat::Text => render::text(&planned.plan, color.enabled(), !no_diff),
            PlanFormat::Markdown => render::markdown(&planned.plan),
            PlanFormat::Json => render::json(&planned.plan),
            PlanFormat::Github => render::github(&planned.plan),
        };
        print!("{out}");
        if report_failures(&planned.plan.unplanned) || planned.plan.has_hard_refusal() {
            return Ok(ExitCode::from(1));
        }
        Ok(match (detailed_exitcode, planned.plan.change_count()) {
            (true, n) if n > 0 => ExitCode::from(2),
            _ => ExitCode::SUCCESS,
        })
    })
}

/// `zonekeeper apply`, of a saved plan or of a fresh one.
pub(super) fn apply_command(origin: &Origin, args: ApplyArgs) -> Result<ExitCode> {
    let ApplyArgs { saved, target, force, wait, color, format } = args;
    let saved = match &saved {
        Some(file) => {
            if target.is_some() {
                bail!("--target comes from the saved plan; give either a plan file or --target");
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the saved plan {}", file.display()))?;
            let plan: reconcile::SavedPlan = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a plan saved by `zonekeeper plan --out`", file.display()))?;
            Some(plan)
        }
        None => None,
    };
    let target = saved.as_ref().map_or(target, |s| s.only.clone());
    origin.with_state_in_force(|state, source| {
        let _held = lock_targets(state, &origin.secrets, target.as_deref(), wait.map(Duration::from_secs))?;
        let options = ApplyOptions { force, color: color.enabled(), format, saved: saved.as_ref() };
        apply(state, &origin.secrets, source, target.as_deref(), options)
    })
}

/// Prints target failures to stderr; true when there were any.
pub(super) fn report_failures(failures: &[reconcile::TargetFailure]) -> bool {
    for f in failures {
        match &f.zone {
            Some(zone) => eprintln!("error: target {} zone {zone}: {}", f.target, f.error),
            None => eprintln!("error: target {}: {}", f.target, f.error),
        }
    }
    if !failures.is_empty() {
        eprintln!(
            "the plan is incomplete: {} target zone(s) could not be read, and their changes are not shown",
            failures.len()
        );
    }
    !failures.is_empty()
}

/// How `apply` runs and reports.
pub(super) struct ApplyOptions<'a> {
    force: bool,
    color: bool,
    format: ApplyFormat,
    /// A plan saved by `plan --out`: applied only if the plan made now is exactly it.
    saved: Option<&'a reconcile::SavedPlan>,
}

pub(super) fn apply(
    state: &DesiredState,
    secrets: &Secrets,
    source: &str,
    target: Option<&str>,
    options: ApplyOptions<'_>,
) -> Result<ExitCode> {
    let ApplyOptions { force, color, format, saved } = options;
    let planned = reconcile::plan(state, secrets, source, target)?;
    if let Some(saved) = saved {
        let moved = saved.moved(&planned.plan);
        if !moved.is_empty() {
            bail!(
                "the saved plan is out of date, so nothing was applied; plan again and review:\n  {}",
                moved.join("\n  ")
            );
        }
    }
    match format {
        ApplyFormat::Text => print!("{}", render::text(&planned.plan, color, true)),
        ApplyFormat::Markdown => print!("{}", render::markdown(&planned.plan)),
        ApplyFormat::Json => {}
    }
    let mut failed = report_failures(&planned.plan.unplanned);
    let applied = if planned.plan.change_count() == 0 {
        Vec::new()
    } else {
        reconcile::apply(state, secrets, &planned.plan, force)?
    };
    let report = reconcile::ApplyReport::new(&planned.plan, &applied);
    for r in &report.results {
        if format == ApplyFormat::Text {
            for c in &r.changes {
                let label = format!("{} {} {}", c.op.as_str(), c.name, c.rtype);
                match &c.outcome {
                    Outcome::Applied => println!("  ok      {label} ({} on {})", r.zone, r.target),
                    Outcome::Failed(why) => println!("  failed  {label} ({} on {}): {why}", r.zone, r.target),
                    Outcome::Skipped(why) => println!("  skipped {label} ({} on {}): {why}", r.zone, r.target),
                }
            }
            println!("applied: {} of {} change(s) to {} on {}", r.applied, r.planned, r.zone, r.target);
        }
        tracing::info!(target_name = %r.target, zone = %r.zone, changes = r.applied, "applied");
        if let Some(e) = &r.error {
            eprintln!("error: {} on {}: {e}", r.zone, r.target);
        }
        if r.applied != r.planned || r.error.is_some() {
            failed = true;
        }
    }
    match format {
        ApplyFormat::Text => {}
        ApplyFormat::Markdown => print!("\n{}", report.markdown()),
        ApplyFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
