//! Renderers: one `Plan`, three layouts. They read the plan and never recompute it.
//! Text for a terminal (coloured when asked), Markdown for a pull-request comment, JSON for
//! machines (documented in the README; `version` changes if the shape ever does).

use std::fmt::Write;

use serde::Serialize;

use super::{Change, Drift, NativeText, Plan, TargetPlan, Unplanned};
use crate::model::RecordSet;

/// Totals of a plan by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

pub fn summary(plan: &Plan) -> Summary {
    let mut s = Summary::default();
    for c in plan.targets.iter().flat_map(|t| &t.changes) {
        match c {
            Change::Create { .. } => s.create += 1,
            Change::Update { .. } => s.update += 1,
            Change::Delete { .. } => s.delete += 1,
        }
    }
    s.update += plan.targets.iter().map(|t| t.setting_changes.len()).sum::<usize>();
    s
}

fn values(set: &RecordSet) -> String {
    set.values.iter().map(|v| v.to_value()).collect::<Vec<_>>().join(", ")
}

/// The unified diff of a target's native text, empty when nothing changes.
pub fn native_diff(n: &NativeText) -> String {
    let Some(after) = n.after.as_deref().filter(|a| *a != n.before) else {
        return String::new();
    };
    if let Some(note) = &n.rewrite {
        return format!("{}: {note}\n", n.label);
    }
    similar::TextDiff::from_lines(&n.before, after)
        .unified_diff()
        .context_radius(2)
        .header(&n.label, &format!("{} (planned)", n.label))
        .to_string()
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
}

fn heading(tp: &TargetPlan) -> String {
    format!("{} on {} ({}, view {})", tp.zone, tp.target.name, tp.target.kind, tp.target.view)
}

/// Text for a terminal or a log. `color` adds ANSI colours.
pub fn text(plan: &Plan, color: bool, with_diff: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(out, "zonekeeper plan: read {} (owner {})", plan.source, plan.owner);
    for tp in &plan.targets {
        let n = |op| tp.changes.iter().filter(|c| c.op() == op).count();
        let _ = writeln!(
            out,
            "\n{}: {} to create, {} to update, {} to delete",
            p.wrap("1", &heading(tp)),
            n(super::Op::Create),
            n(super::Op::Update) + tp.setting_changes.len(),
            n(super::Op::Delete)
        );
        for c in &tp.setting_changes {
            let line = format!("  ~ {}  {}  {} → {}", c.name, c.what, c.from, c.to);
            let _ = writeln!(out, "{}  ({})", p.wrap("33", &line), c.source);
        }
        let width = tp.changes.iter().map(|c| c.set().name.as_str().len()).max().unwrap_or(0);
        for c in &tp.changes {
            let src = c.provenance().map(|p| format!("  ({p})")).unwrap_or_default();
            let line = match c {
                Change::Create { set, .. } => p.wrap(
                    "32",
                    &format!("  + {:width$}  {:5} {:>6}  {}", set.name.as_str(), set.rtype, set.ttl, values(set)),
                ),
                Change::Update { from, to, adopt, .. } => {
                    let ttl =
                        if from.ttl == to.ttl { to.ttl.to_string() } else { format!("{}→{}", from.ttl, to.ttl) };
                    let tag = if *adopt { " [adopt]" } else { "" };
                    p.wrap(
                        "33",
                        &format!(
                            "  ~ {:width$}  {:5} {:>6}  {} → {}{tag}",
                            to.name.as_str(),
                            to.rtype,
                            ttl,
                            values(from),
                            values(to)
                        ),
                    )
                }
                Change::Delete { set } => p.wrap(
                    "31",
                    &format!("  - {:width$}  {:5} {:>6}  {}", set.name.as_str(), set.rtype, set.ttl, values(set)),
                ),
            };
            let _ = writeln!(out, "{line}{src}");
        }
        for c in &tp.held_back {
            let _ = writeln!(out, "  · held back by policy: {} {} {}", c.op().as_str(), c.set().name, c.set().rtype);
        }
        for r in &tp.refusals {
            let _ = writeln!(out, "  {} {}", p.wrap("1;31", "refused:"), r.message());
        }
        for d in &tp.drift {
            let _ = writeln!(out, "  drift: {}", drift_text(d));
        }
        if tp.unowned_elsewhere > 0 {
            let _ = writeln!(out, "  {} record set(s) not owned by us are left alone", tp.unowned_elsewhere);
        }
        if with_diff && let Some(n) = &tp.native {
            let d = native_diff(n);
            for l in d.lines() {
                let colored = match l.chars().next() {
                    Some('+') if !l.starts_with("+++") => p.wrap("32", l),
                    Some('-') if !l.starts_with("---") => p.wrap("31", l),
                    Some('@') => p.wrap("36", l),
                    _ => l.to_string(),
                };
                let _ = writeln!(out, "    {colored}");
            }
        }
    }
    for u in &plan.unplanned {
        let _ = writeln!(out, "\n{}: {}", p.wrap("1", &u.place()), p.wrap("1;31", "not planned"));
        for line in u.error.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let s = summary(plan);
    let tail = match (s.create + s.update + s.delete, plan.unplanned.as_slice()) {
        (0, []) => " Everything is in sync.".to_string(),
        (_, []) => String::new(),
        (_, unplanned) => format!(" Incomplete: {}.", not_planned(unplanned)),
    };
    let _ = writeln!(out, "\nPlan: {} to create, {} to update, {} to delete.{tail}", s.create, s.update, s.delete);
    out
}

/// `2 target zone(s) could not be planned: home.example on tdns (refused), …`
fn not_planned(unplanned: &[Unplanned]) -> String {
    let places: Vec<String> = unplanned.iter().map(|u| format!("{} ({})", u.place(), u.reason)).collect();
    format!("{} target zone(s) could not be read and are not planned: {}", unplanned.len(), places.join(", "))
}

fn drift_text(d: &Drift) -> String {
    match d {
        Drift::Unowned { observed, wanted: Some(w) } => format!(
            "{} {} holds {} without our owner marker (wanted {}); left alone (set adopt to take it over)",
            observed.name,
            observed.rtype,
            values(observed),
            values(w)
        ),
        Drift::Unowned { observed, wanted: None } => format!(
            "{} {} ({}) is not ours, at a name we manage; left alone",
            observed.name,
            observed.rtype,
            values(observed)
        ),
        Drift::Protected { reason, observed, wanted } => format!(
            "{} {} holds {} ({reason}; wanted {}); never changed by zonekeeper",
            observed.name,
            observed.rtype,
            values(observed),
            values(wanted)
        ),
        Drift::OtherOwner { owner, observed, wanted } => format!(
            "{} {} belongs to owner `{owner}` ({}; wanted {}); never touched",
            observed.name,
            observed.rtype,
            values(observed),
            values(wanted)
        ),
    }
}

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "\\`")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}

/// Markdown for a pull-request comment: a table per zone and target, diffs folded.
pub fn markdown(plan: &Plan) -> String {
    let s = summary(plan);
    let mut out = String::new();
    let _ = writeln!(out, "### zonekeeper plan\n");
    let incomplete = if plan.unplanned.is_empty() {
        String::new()
    } else {
        format!(" · **incomplete: {}**", md_cell(&not_planned(&plan.unplanned)))
    };
    let _ = writeln!(
        out,
        "Read {} · owner `{}` · **{} to create, {} to update, {} to delete**{incomplete}\n",
        md_cell(&plan.source),
        md_cell(&plan.owner),
        s.create,
        s.update,
        s.delete
    );
    for u in &plan.unplanned {
        let _ = writeln!(out, "> **Not planned:** {}: {}\n", md_cell(&u.place()), md_cell(&u.error));
    }
    for tp in &plan.targets {
        if !tp.has_changes() && tp.refusals.is_empty() && tp.drift.is_empty() && tp.held_back.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "#### `{}` on `{}` ({}, view `{}`)\n",
            md_cell(tp.zone.as_str()),
            md_cell(&tp.target.name),
            tp.target.kind,
            md_cell(&tp.target.view)
        );
        for r in &tp.refusals {
            let _ = writeln!(out, "> **Refused:** {}\n", md_cell(&r.message()));
        }
        if tp.has_changes() {
            let _ = writeln!(out, "| op | name | type | TTL | old value | new value | source |");
            let _ = writeln!(out, "|---|---|---|---|---|---|---|");
            for c in &tp.setting_changes {
                let _ = writeln!(
                    out,
                    "| update | `{}` | {} | | {} | {} | {} |",
                    md_cell(c.name.as_str()),
                    c.what,
                    md_cell(&c.from),
                    md_cell(&c.to),
                    md_cell(&c.source)
                );
            }
            for c in &tp.changes {
                let src = c.provenance().map(|p| md_cell(&p.to_string())).unwrap_or_default();
                let (old, new, ttl) = match c {
                    Change::Create { set, .. } => (String::new(), values(set), set.ttl.to_string()),
                    Change::Update { from, to, .. } => (
                        values(from),
                        values(to),
                        if from.ttl == to.ttl { to.ttl.to_string() } else { format!("{} → {}", from.ttl, to.ttl) },
                    ),
                    Change::Delete { set } => (values(set), String::new(), set.ttl.to_string()),
                };
                let set = c.set();
                let _ = writeln!(
                    out,
                    "| {} | `{}` | {} | {} | {} | {} | {} |",
                    c.op().as_str(),
                    md_cell(set.name.as_str()),
                    set.rtype,
                    ttl,
                    md_cell(&old),
                    md_cell(&new),
                    src
                );
            }
            out.push('\n');
        }
        for c in &tp.held_back {
            let _ = writeln!(
                out,
                "- held back by policy: {} `{}` {}",
                c.op().as_str(),
                md_cell(c.set().name.as_str()),
                c.set().rtype
            );
        }
        for d in &tp.drift {
            let _ = writeln!(out, "- drift: {}", md_cell(&drift_text(d)));
        }
        if let Some(n) = &tp.native {
            let d = native_diff(n);
            if !d.is_empty() {
                let fence = if d.contains("```") { "````" } else { "```" };
                let _ = writeln!(
                    out,
                    "\n<details><summary>{} diff</summary>\n\n{fence}diff\n{d}{fence}\n</details>\n",
                    md_cell(&n.label)
                );
            }
        }
    }
    match (s.create + s.update + s.delete, plan.unplanned.len()) {
        (0, 0) => {
            let _ = writeln!(out, "No changes: every target is in sync.");
        }
        (0, n) => {
            let _ = writeln!(
                out,
                "No changes in the target zones that could be read; {n} could not be read and are not planned (above)."
            );
        }
        _ => {}
    }
    out
}

/// The output of `zonekeeper plan --format json`. `version` is 1; it changes only when a
/// field changes meaning or goes away (new fields may be added).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(title = "zonekeeper plan (plan --format json)")]
struct JsonPlan<'a> {
    version: u32,
    source: &'a str,
    owner: &'a str,
    summary: Summary,
    /// False when some target zone could not be read (listed in `unplanned`).
    complete: bool,
    targets: Vec<JsonTarget<'a>>,
    unplanned: &'a [Unplanned],
}

#[derive(Serialize, schemars::JsonSchema)]
struct JsonTarget<'a> {
    #[serde(flatten)]
    plan: &'a TargetPlan,
    diff: String,
}

/// The JSON Schemas of the JSON outputs, by their file name in `schema/`.
pub fn output_schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![("plan.json", serde_json::to_value(schemars::schema_for!(JsonPlan<'static>)).unwrap_or_default())]
}

/// JSON for machines: `{version, source, owner, summary, targets: [...]}`.
pub fn json(plan: &Plan) -> String {
    let doc = JsonPlan {
        version: 1,
        source: &plan.source,
        owner: &plan.owner,
        summary: summary(plan),
        complete: plan.is_complete(),
        unplanned: &plan.unplanned,
        targets: plan
            .targets
            .iter()
            .map(|t| JsonTarget { plan: t, diff: t.native.as_ref().map(native_diff).unwrap_or_default() })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// GitHub's workflow-command escaping of a message: `%`, CR and LF.
pub fn github_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// GitHub's workflow-command escaping of a property (file, title): also `,` and `:`.
pub fn github_property(s: &str) -> String {
    github_data(s).replace(',', "%2C").replace(':', "%3A")
}

/// The text plan (without colour), then a GitHub Actions annotation for every target zone that
/// could not be planned and every refusal (errors), every drift (warnings), and the totals (a
/// notice), so that a pull request's checks page shows them without opening the log.
pub fn github(plan: &Plan) -> String {
    let mut out = text(plan, false, false);
    let title =
        |what: &str, tp: &TargetPlan| github_property(&format!("zonekeeper {what}: {} on {}", tp.zone, tp.target.name));
    for u in &plan.unplanned {
        let _ = writeln!(
            out,
            "::error title={}::not planned: {}",
            github_property(&format!("zonekeeper: {}", u.place())),
            github_data(&u.error)
        );
    }
    for tp in &plan.targets {
        for r in &tp.refusals {
            let _ = writeln!(out, "::error title={}::{}", title("refused", tp), github_data(&r.message()));
        }
        for d in &tp.drift {
            let _ = writeln!(out, "::warning title={}::{}", title("drift", tp), github_data(&drift_text(d)));
        }
    }
    let s = summary(plan);
    let _ = writeln!(
        out,
        "::notice title=zonekeeper plan::{} to create, {} to update, {} to delete{}",
        s.create,
        s.update,
        s.delete,
        if plan.unplanned.is_empty() {
            String::new()
        } else {
            github_data(&format!("; incomplete: {}", not_planned(&plan.unplanned)))
        }
    );
    out
}
