//! `zonekeeper export`: a target's zone as a records file.

use super::*;

pub(super) fn export(
    state: &DesiredState,
    secrets: &Secrets,
    target: &str,
    zone: Option<&str>,
    corefile: bool,
) -> Result<ExitCode> {
    let ts = state.settings.target(target).with_context(|| format!("no target named `{target}` in zonekeeper.yaml"))?;
    let zones: Vec<Name> =
        state.settings.zones.iter().filter(|z| z.targets.contains(&ts.name)).map(|z| z.name.clone()).collect();
    if corefile {
        let TargetKind::Zonefile { directory, adopt, soa } = &ts.kind else {
            bail!("--corefile needs a zonefile target; `{target}` is not one");
        };
        let zf = ZoneFileTarget {
            name: ts.name.clone(),
            directory: directory.clone(),
            owner: state.settings.owner.clone(),
            adopt: *adopt,
            soa: soa.clone(),
        };
        print!("{}", zf.corefile(&zones));
        return Ok(ExitCode::SUCCESS);
    }
    let zone_arg = zone.context("--zone is required")?;
    let zone = Name::parse(zone_arg).with_context(|| format!("`{zone_arg}` is not a valid zone name"))?;
    let t = reconcile::build_target(state, secrets, ts);
    let observed = t.observe(&zone)?;
    if observed.sets.is_empty() {
        // An empty file would read as "this zone holds nothing", and applying it deletes.
        bail!(
            "target `{target}` holds no records for zone `{zone}`: nothing to export (is it the zone and target you meant?)"
        );
    }
    let sets: Vec<_> = observed.sets.into_iter().map(|o| o.set).collect();
    let ttls = t.kind() != "hosts";
    print!("{}", zonekeeper::export::records_yaml(&zone, &sets, "../schema/records.json", ttls));
    Ok(ExitCode::SUCCESS)
}
