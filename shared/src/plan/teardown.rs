//! Removing what a cluster no longer needs.

use std::collections::BTreeSet;

use super::*;

/// Delete an endpoint, after the rules (any status) that use it.
pub(super) fn delete_endpoint(endpoint: &EndpointView, rules: &[RuleView]) -> Action {
    Action::DeleteEndpoint {
        account: endpoint.account.clone(),
        endpoint_id: endpoint.id.clone(),
        endpoint_arn: endpoint.arn.clone(),
        direction: endpoint.direction,
        vpc_id: endpoint.vpc_id.clone(),
        after_rules: rules
            .iter()
            .any(|r| r.endpoint_id.as_deref() == Some(endpoint.id.as_str())),
    }
}

/// Delete one of our groups, after the endpoints (any status) that use it.
pub(super) fn delete_group(
    group: &SecurityGroupView,
    role: Direction,
    endpoints: &[EndpointView],
) -> Action {
    Action::DeleteSecurityGroup {
        account: group.account.clone(),
        group_id: group.id.clone(),
        role,
        vpc_id: group.vpc_id.clone(),
        after_interfaces: endpoints
            .iter()
            .any(|e| e.security_group_ids.contains(&group.id)),
    }
}

/// Remove everything we made for this cluster, and the shared pieces that
/// nothing else uses any more.
pub(super) fn teardown(config: &Config, owner: &Owner, obs: &Observation) -> Vec<Action> {
    let mut actions = Vec::new();
    let state = obs.previous_state(config);
    let arn = obs
        .cluster
        .as_ref()
        .map(|c| c.arn.clone())
        .or_else(|| state.as_ref().map(|s| s.cluster_arn.clone()))
        .or_else(|| obs.hinted_arn.clone());
    let vpc_id = obs
        .cluster
        .as_ref()
        .and_then(|c| c.vpc_id.clone())
        .or_else(|| state.as_ref().map(|s| s.vpc_id.clone()));

    // Rules and associations.
    let rules = rules_of(owner, obs, &obs.cluster_id());
    for rule in &rules {
        actions.extend(remove_rule(obs, rule));
    }
    let removed_rules: BTreeSet<String> = rules.iter().map(|r| r.id.clone()).collect();

    // 443 rules of this cluster, wherever they are.
    let suffix = format!(":cluster/{}", obs.cluster_name);
    let api_rules: Vec<&SecurityGroupRuleView> = obs
        .security_group_rules
        .iter()
        .filter(|r| owner.is_ours(&r.tags))
        .filter(|r| match (r.tags.get(TAG_CLUSTER), &arn) {
            (Some(tag), Some(arn)) => tag == arn,
            (Some(tag), None) => tag.ends_with(&suffix),
            (None, _) => false,
        })
        .collect();
    actions.extend(revoke_grouped(&api_rules));

    // The VPC's inbound endpoint, when no other cluster is recorded as using it.
    if let Some(vpc_id) = &vpc_id {
        let others = obs
            .registrations
            .iter()
            .any(|r| r.cluster != obs.cluster_name);
        if !others {
            let inbound = live_endpoints(owner, obs, Direction::Inbound, Some(vpc_id));
            for endpoint in &inbound {
                actions.push(delete_endpoint(endpoint, &obs.rules));
            }
            if let Some(group) = find_group(owner, obs, vpc_id, Direction::Inbound) {
                actions.push(delete_group(group, Direction::Inbound, &obs.endpoints));
            }
        }
    }

    actions.extend(collect_unused_outbound(
        config,
        owner,
        obs,
        None,
        &removed_rules,
    ));
    let orphans = collect_orphan_outbound_groups(owner, obs, &removed_rules, &actions);
    actions.extend(orphans);

    // The record goes last: until then, a crash leaves it to find the rest.
    let names: Vec<String> = obs.parameters.iter().map(|p| p.name.clone()).collect();
    if !names.is_empty() {
        let announce = state.as_ref().and_then(removal).map(Box::new);
        actions.push(Action::DeleteParameters { names, announce });
    }
    actions
}

/// The event that tells on-premises automation a cluster's forwarders are
/// gone: the next revision after the last announced one. None when the
/// state never announced any (made before the events were).
pub(super) fn removal(state: &StateDoc) -> Option<crate::ssm::ForwardersChanged> {
    let announced = state.forwarders.as_ref()?;
    Some(crate::ssm::ForwardersChanged {
        removed: true,
        ..crate::ssm::ForwardersChanged::of(state, &[], &[], announced.revision + 1)
    })
}
