//! The outbound endpoint the rule goes through, and the ones no rule uses.

use std::collections::BTreeSet;

use super::*;

/// Pick or create the outbound endpoint that the rule goes through.
pub(super) fn plan_outbound(
    config: &Config,
    owner: &Owner,
    obs: &Observation,
    d: &Desired,
) -> Result<(Planned, EndpointRef), Invalid> {
    let mut m = Planned::default();
    if let Some(id) = &config.outbound_endpoint_id {
        return match obs.endpoints.iter().find(|e| &e.id == id) {
            Some(e) if e.direction == Direction::Outbound => {
                note_endpoint_status(e, &mut m, None);
                Ok((m, EndpointRef::Existing(id.clone())))
            }
            Some(_) => Err(Invalid::OutboundIsInbound {
                endpoint_id: id.clone(),
            }),
            None => Err(Invalid::OutboundMissing {
                endpoint_id: id.clone(),
            }),
        };
    }
    let outbound_vpc = obs
        .outbound_vpc(config)
        .ok_or_else(|| Invalid::NoOutboundVpc {
            cluster: d.cluster.name.clone(),
        })?;
    let ours = live_endpoints(owner, obs, Direction::Outbound, None);
    let chosen = ours.iter().find(|e| e.vpc_id == outbound_vpc).or_else(|| {
        if config.outbound_vpc_id.is_none() {
            ours.first()
        } else {
            None
        }
    });
    if let Some(endpoint) = chosen {
        note_endpoint_status(endpoint, &mut m, None);
        return Ok((m, EndpointRef::Existing(endpoint.id.clone())));
    }
    let subnet_ids = pick_subnets(&obs.outbound_vpc_subnets, &outbound_vpc, 2);
    let azs: BTreeSet<&str> = obs
        .outbound_vpc_subnets
        .iter()
        .filter(|s| s.vpc_id == outbound_vpc)
        .map(|s| s.az.as_str())
        .collect();
    if azs.len() < 2 && !obs.lean {
        return Err(Invalid::OutboundZones {
            vpc_id: outbound_vpc,
            zones: azs.len(),
        });
    }
    let group = match find_group(owner, obs, &outbound_vpc, Direction::Outbound) {
        Some(sg) => GroupRef::Existing(sg.id.clone()),
        None => {
            m.actions.push(Action::CreateSecurityGroup {
                // The outbound endpoint is the deployment's.
                account: Account::Home,
                role: Direction::Outbound,
                vpc_id: outbound_vpc.clone(),
                name: owner.security_group_name(Direction::Outbound),
            });
            GroupRef::New(Direction::Outbound)
        }
    };
    m.actions.push(Action::CreateEndpoint {
        account: Account::Home,
        direction: Direction::Outbound,
        vpc_id: outbound_vpc,
        group,
        subnet_ids,
        ips: Vec::new(),
        // The outbound endpoint reaches every inbound one over IPv4.
        endpoint_type: EndpointType::Ipv4,
        ipv6s: Vec::new(),
    });
    Ok((m, EndpointRef::New(Direction::Outbound)))
}

/// Delete our outbound endpoints (and their groups) that no remaining rule
/// of ours uses. The configured endpoint is never ours to delete.
pub(super) fn collect_unused_outbound(
    config: &Config,
    owner: &Owner,
    obs: &Observation,
    in_use: Option<&str>,
    removed_rules: &BTreeSet<String>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for endpoint in live_endpoints(owner, obs, Direction::Outbound, None) {
        if Some(endpoint.id.as_str()) == in_use
            || config.outbound_endpoint_id.as_deref() == Some(endpoint.id.as_str())
        {
            continue;
        }
        let used = obs.rules.iter().any(|r| {
            r.endpoint_id.as_deref() == Some(endpoint.id.as_str())
                && !removed_rules.contains(&r.id)
                && !r.status.is_going_away()
        });
        if !used {
            actions.push(delete_endpoint(endpoint, &obs.rules));
            if let Some(group) = find_group(owner, obs, &endpoint.vpc_id, Direction::Outbound) {
                if endpoint.security_group_ids.contains(&group.id) {
                    actions.push(delete_group(group, Direction::Outbound, &obs.endpoints));
                }
            }
        }
    }
    actions
}

/// In a teardown that leaves no rule of ours: an outbound group that no
/// endpoint uses is left over (a run stopped between deleting the endpoint
/// and its group), and goes too.
pub(super) fn collect_orphan_outbound_groups(
    owner: &Owner,
    obs: &Observation,
    removed_rules: &BTreeSet<String>,
    planned: &[Action],
) -> Vec<Action> {
    let mut actions = Vec::new();
    let rules_left = obs
        .rules
        .iter()
        .any(|r| !removed_rules.contains(&r.id) && !r.status.is_going_away());
    if rules_left {
        return actions;
    }
    for group in obs
        .security_groups
        .iter()
        .filter(|g| owner.role_of(&g.tags) == Some(Direction::Outbound))
    {
        let used = obs
            .endpoints
            .iter()
            .any(|e| e.security_group_ids.contains(&group.id) && !e.is_going_away());
        let planned = planned.iter().chain(&actions).any(
            |a| matches!(a, Action::DeleteSecurityGroup { group_id, .. } if *group_id == group.id),
        );
        if !used && !planned {
            actions.push(delete_group(group, Direction::Outbound, &obs.endpoints));
        }
    }
    actions
}
