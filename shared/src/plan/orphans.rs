//! The sweep's shared pieces: which clusters make them first, and at the
//! end the ones nothing uses any more.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// What the sweep's last step sees: every shared resource of ours, and the
/// VPCs that still need an inbound endpoint.
#[derive(Clone, Debug, Default)]
pub struct SharedView {
    /// Every Resolver endpoint in the region (ours and not).
    pub endpoints: Vec<EndpointView>,
    /// Our rules.
    pub rules: Vec<RuleView>,
    /// Our security groups.
    pub security_groups: Vec<SecurityGroupView>,
    /// VPCs recorded in a state parameter, or of a cluster found managed.
    pub needed_vpcs: BTreeSet<String>,
    /// The deployment's RAM share of its rules, when a hub read it.
    pub share: Option<ShareView>,
    /// The accounts (not the deployment's) whose VPCs are associated with
    /// a rule of ours: the principals the share still needs.
    pub sharing_accounts: BTreeSet<String>,
}

/// The deployment's RAM share, as the sweep read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareView {
    pub arn: String,
    /// The accounts it is shared with.
    pub principals: Vec<String>,
}

/// Shared resources of ours that nothing uses any more: inbound endpoints
/// in VPCs where no cluster needs one, outbound endpoints no rule of ours
/// uses, and our security groups that no endpoint uses. Endpoints still
/// CREATING are left alone (a reconcile may be making them right now).
pub fn plan_shared_orphans(config: &Config, owner: &Owner, view: &SharedView) -> Vec<Action> {
    let mut actions = Vec::new();
    let ours = |e: &&EndpointView| {
        owner.parse_creator_id(&e.creator_request_id).is_some()
            && !e.is_going_away()
            && e.status != EndpointStatus::Creating
            && config.outbound_endpoint_id.as_deref() != Some(e.id.as_str())
    };
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for endpoint in view.endpoints.iter().filter(ours) {
        let unused = match endpoint.direction {
            Direction::Inbound => !view.needed_vpcs.contains(&endpoint.vpc_id),
            Direction::Outbound => !view.rules.iter().any(|r| {
                r.endpoint_id.as_deref() == Some(endpoint.id.as_str()) && !r.status.is_going_away()
            }),
        };
        if unused {
            actions.push(delete_endpoint(endpoint, &view.rules));
            deleted.insert(endpoint.id.as_str());
        }
    }
    for group in &view.security_groups {
        let Some(role) = owner.role_of(&group.tags) else {
            continue;
        };
        if role == Direction::Inbound && view.needed_vpcs.contains(&group.vpc_id) {
            continue;
        }
        let in_use = view.endpoints.iter().any(|e| {
            e.security_group_ids.contains(&group.id)
                && !e.is_going_away()
                && !deleted.contains(e.id.as_str())
        });
        if !in_use {
            actions.push(delete_group(group, role, &view.endpoints));
        }
    }
    actions.extend(plan_share_orphans(view));
    actions.sort_by_key(Action::phase);
    actions
}

/// The share, once no rule of ours is left; otherwise the accounts it no
/// longer needs (no VPC of theirs is associated with a rule of ours: the
/// account left the spokes, or its client VPCs did).
fn plan_share_orphans(view: &SharedView) -> Vec<Action> {
    let Some(share) = &view.share else {
        return Vec::new();
    };
    let rules_left = view.rules.iter().any(|r| !r.status.is_going_away());
    if !rules_left {
        return vec![Action::DeleteShare {
            account: Account::Home,
            share_arn: share.arn.clone(),
        }];
    }
    let unneeded: Vec<String> = share
        .principals
        .iter()
        .filter(|p| !view.sharing_accounts.contains(*p))
        .cloned()
        .collect();
    match unneeded.is_empty() {
        true => Vec::new(),
        false => vec![Action::UnshareWith {
            account: Account::Home,
            share_arn: share.arn.clone(),
            principals: unneeded,
        }],
    }
}

/// For each VPC whose clusters need an inbound endpoint and where none of
/// ours is live, the first such cluster by name: the ones a sweep runs
/// before the others, so that the others find the shared pieces instead of
/// racing to make them. Decided on the clusters alone (peering is not read
/// here: a cluster that only its peers make managed is no leader).
pub fn shared_leaders(
    config: &Config,
    owner: &Owner,
    endpoints: &[EndpointView],
    clusters: &[(&ClusterId, &ClusterView)],
    served: &BTreeSet<String>,
) -> Vec<ClusterId> {
    let region = Observation {
        endpoints: endpoints.to_vec(),
        ..Observation::default()
    };
    let mut leaders: BTreeMap<VpcRef, &ClusterId> = BTreeMap::new();
    for (id, cluster) in clusters {
        let Some(vpc) = cluster.vpc_id.as_deref() else {
            continue;
        };
        let look = Observation {
            cluster_name: cluster.name.clone(),
            account: id.account.clone(),
            served: served.clone(),
            cluster: Some((*cluster).clone()),
            ..Observation::default()
        };
        if live_endpoints(owner, &region, Direction::Inbound, Some(vpc)).is_empty()
            && decide(config, &look) == Decision::Managed
        {
            let key = VpcRef {
                account: id.account.clone(),
                id: vpc.to_string(),
            };
            let first = leaders.entry(key).or_insert(id);
            if *id < *first {
                *first = id;
            }
        }
    }
    let mut ids: Vec<ClusterId> = leaders.into_values().cloned().collect();
    ids.sort();
    ids
}
