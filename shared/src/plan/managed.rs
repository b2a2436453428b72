//! A managed cluster: the sub-planners in order, each returning what it
//! plans and what it learned, and the publication that records the result.

use std::collections::BTreeSet;

use super::*;

pub(super) fn managed(
    config: &Config,
    owner: &Owner,
    obs: &Observation,
) -> Result<Planned, Invalid> {
    let d = desired(config, obs)?;
    let mut m = Planned::default();
    let wants_rule = !d.association_vpcs.is_empty();

    // Outbound endpoint: only when some VPC must forward to us.
    let outbound = if wants_rule {
        Some(m.take(plan_outbound(config, owner, obs, &d)?))
    } else {
        None
    };
    let inbound = m.take(plan_inbound(config, owner, obs, &d, outbound.as_ref())?);
    let rule_id = m.take(plan_rule(obs, owner, &d, outbound.as_ref(), &inbound));

    // Outbound endpoints of ours that no rule will use any more. Rules
    // deleted or moved to another outbound endpoint no longer hold their
    // current one.
    let in_use = match &outbound {
        Some(EndpointRef::Existing(id)) => Some(id.as_str()),
        _ => None,
    };
    let removed_rules: BTreeSet<String> = m
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRule { rule_id, .. } | Action::UpdateRule { rule_id, .. } => {
                Some(rule_id.clone())
            }
            _ => None,
        })
        .collect();
    let unused = collect_unused_outbound(config, owner, obs, in_use, &removed_rules);
    m.actions.extend(unused);

    let kept_api_rules = m.take(plan_api_access(owner, obs, &d));

    // SSM: written last, and only where a value changes.
    let publication = Publication {
        prefix: config.ssm_prefix.clone(),
        cluster: d.cluster.name.clone(),
        account: obs.account.clone(),
        cluster_arn: d.cluster.arn.clone(),
        vpc_id: d.vpc_id.clone(),
        endpoint_host: d.host.clone(),
        inbound_endpoint_id: inbound.endpoint.map(|e| e.id.clone()),
        inbound_ips: inbound.ips,
        inbound_ipv6: inbound.ipv6,
        dual_stack: inbound.dual_stack,
        outbound_endpoint_id: in_use.map(str::to_string),
        uses_outbound: outbound.is_some(),
        rule_id,
        uses_rule: wants_rule,
        associated_vpcs: d.association_vpcs.iter().map(|v| v.to_string()).collect(),
        control_plane_group_id: d.control_plane_group.clone(),
        control_plane_rule_ids: kept_api_rules,
        allowed_cidrs: d.cidrs.iter().map(|c| c.to_string()).collect(),
        vpc_cidrs: recorded_vpc_cidrs(config, obs, &d.vpc_id),
        settings_digest: config.digest(),
        current: obs
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        current_versions: obs
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.version))
            .collect(),
    };
    let unknown_now = !m.actions.is_empty();
    let stale = match publication.render(None) {
        Some(rendered) => rendered.needs_write(&publication.current),
        None => true,
    };
    if unknown_now || stale {
        m.actions
            .push(Action::PublishParameters(Box::new(publication)));
    }
    Ok(m)
}
