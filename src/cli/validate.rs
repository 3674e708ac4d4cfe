//! `zonekeeper validate` and `zonekeeper schema`.

use super::*;

pub(super) fn validate(origin: &Origin, format: ValidateFormat) -> Result<ExitCode> {
    let Loaded { state: loaded, source, .. } = origin.load(false)?;
    if !source.starts_with("working tree") && !matches!(format, ValidateFormat::Json) {
        eprintln!("reading the {source}");
    }
    let diags = match loaded {
        Ok(state) => {
            let records: usize = state.wanted.zones.values().map(|r| r.len()).sum();
            match format {
                ValidateFormat::Json => {
                    println!("{}", serde_json::to_string(&ValidationReport { version: 1, valid: true, problems: &[] })?)
                }
                _ => println!(
                    "ok: {} zone(s), {} record entries, {} resolver set(s), {} target(s)",
                    state.settings.zones.len(),
                    records,
                    state.wanted.resolver_sets.len(),
                    state.settings.targets.len()
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(Invalid(d)) => d,
    };
    match format {
        ValidateFormat::Text => {
            for d in &diags {
                println!("{d}");
            }
            eprintln!("{} problem(s); nothing was written", diags.len());
        }
        ValidateFormat::Json => {
            println!("{}", serde_json::to_string(&ValidationReport { version: 1, valid: false, problems: &diags })?)
        }
        ValidateFormat::Github => {
            for d in &diags {
                let (esc, prop) = (render::github_data, render::github_property);
                let title = if d.path.is_empty() { String::new() } else { format!(",title={}", prop(&d.path)) };
                println!(
                    "::error file={},line={},col={}{title}::{}",
                    prop(&d.file),
                    d.line.max(1),
                    d.column.max(1),
                    esc(&d.message)
                );
            }
        }
    }
    Ok(ExitCode::from(1))
}

pub(super) fn schema(dir: &Path, check: bool) -> Result<ExitCode> {
    let mut stale = Vec::new();
    let mut docs: Vec<(String, serde_json::Value)> = Vec::new();
    for kind in DocKind::ALL {
        docs.push((kind.schema_file().to_string(), serde_json::to_value(kind.schema())?));
    }
    // The JSON outputs are a contract too: their schemas are checked in beside the inputs'.
    docs.extend(render::output_schemas().into_iter().map(|(file, schema)| (file.to_string(), schema)));
    docs.push(("validate.json".to_string(), ValidationReport::schema()));
    docs.push(("apply.json".to_string(), reconcile::ApplyReport::schema()));
    for (file, schema) in docs {
        let path = dir.join(&file);
        let text = serde_json::to_string_pretty(&schema)? + "\n";
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != text {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            zonekeeper::targets::atomic::write_atomic(&path, text.as_bytes())?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        eprintln!("schema files are stale: {} (run `zonekeeper schema` and commit)", stale.join(", "));
        return Ok(ExitCode::from(1));
    }
    if check {
        println!("schema files are up to date");
    }
    Ok(ExitCode::SUCCESS)
}
