//! Who may reach the control plane on 443, and the ingress rules we own.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// Where the 443 rules of `cluster` go, or why there is no such group.
/// `cluster` mode: the group EKS made for the cluster (tagged
/// aws:eks:cluster-name), the only one of its groups the IAM policy lets us
/// change then; the additional groups are the user's. `tagged` mode: the
/// first additional group tagged eks-private-dns:api-rules=<owner>.
pub fn api_group(
    config: &Config,
    cluster: &ClusterView,
    obs: &Observation,
) -> Result<String, Invalid> {
    use crate::config::{ApiRulesGroup, TAG_API_RULES};
    match config.api_rules_group {
        ApiRulesGroup::Cluster => cluster
            .control_plane_group()
            .map(str::to_string)
            .ok_or_else(|| Invalid::NoClusterGroup {
                cluster: cluster.name.clone(),
                additional: cluster.security_group_ids.first().cloned(),
                owner: config.owner.clone(),
            }),
        ApiRulesGroup::Tagged => cluster
            .security_group_ids
            .iter()
            .find(|id| {
                obs.cluster_groups
                    .iter()
                    .any(|g| &g.id == *id && g.tags.get(TAG_API_RULES) == Some(&config.owner))
            })
            .cloned()
            .ok_or_else(|| Invalid::NoTaggedGroup {
                cluster: cluster.name.clone(),
                groups: cluster.security_group_ids.clone(),
                owner: config.owner.clone(),
            }),
    }
}

/// Make the rules we own on `group` (those `mine` selects) grant exactly
/// `wanted`. A permission that a rule we do not own already grants is left to
/// that rule. Returns the ids of our rules that stay.
pub(super) fn reconcile_ingress(
    owner: &Owner,
    obs: &Observation,
    group: &GroupRef,
    wanted: &[Permission],
    mine: impl Fn(&SecurityGroupRuleView) -> bool,
    cluster_arn: Option<&String>,
    vpc_id: &str,
) -> (Vec<Action>, Vec<String>) {
    let mut actions = Vec::new();
    let on_group: Vec<&SecurityGroupRuleView> = match group {
        GroupRef::Existing(id) => obs
            .security_group_rules
            .iter()
            .filter(|r| &r.group_id == id && !r.is_egress)
            .collect(),
        GroupRef::New(_) => Vec::new(),
    };
    let (ours, others): (Vec<&SecurityGroupRuleView>, Vec<&SecurityGroupRuleView>) = on_group
        .into_iter()
        .partition(|r| owner.is_ours(&r.tags) && mine(r));
    let mut kept = Vec::new();
    let mut covered: BTreeSet<Permission> = BTreeSet::new();
    let mut revoke: Vec<&SecurityGroupRuleView> = Vec::new();
    for rule in ours {
        match rule.as_permission() {
            Some(p) if wanted.contains(&p) && !covered.contains(&p) => {
                covered.insert(p);
                kept.push(rule.id.clone());
            }
            _ => revoke.push(rule),
        }
    }
    let missing: Vec<Permission> = wanted
        .iter()
        .filter(|p| !covered.contains(p))
        .filter(|p| !others.iter().any(|r| r.admits(p)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        actions.push(Action::AuthorizeIngress {
            // The inbound endpoint's group and the control-plane group are
            // the cluster's.
            account: obs.account.clone(),
            group: group.clone(),
            permissions: missing,
            cluster_arn: cluster_arn.cloned(),
            vpc_id: vpc_id.to_string(),
        });
    }
    actions.extend(revoke_grouped(&revoke));
    kept.sort();
    (actions, kept)
}

pub(super) fn revoke_grouped(rules: &[&SecurityGroupRuleView]) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut by_group: BTreeMap<(&Account, &str), Vec<&SecurityGroupRuleView>> = BTreeMap::new();
    for rule in rules {
        by_group
            .entry((&rule.account, rule.group_id.as_str()))
            .or_default()
            .push(rule);
    }
    for ((account, group_id), rules) in by_group {
        actions.push(Action::RevokeIngress {
            account: account.clone(),
            group_id: group_id.to_string(),
            rule_ids: rules.iter().map(|r| r.id.clone()).collect(),
            permissions: rules
                .iter()
                .map(|r| match r.as_permission() {
                    Some(p) => p.to_string(),
                    None => r.id.clone(),
                })
                .collect(),
        });
    }
    actions
}

/// TCP 443 on the control-plane group from this cluster's CIDRs only, and
/// our 443 rules for this cluster left on another group (the cluster's
/// groups changed) revoked. Learns the ids of our rules that stay.
pub(super) fn plan_api_access(
    owner: &Owner,
    obs: &Observation,
    d: &Desired,
) -> (Planned, Vec<String>) {
    let permissions: Vec<Permission> = d
        .cidrs
        .iter()
        .map(|cidr| Permission {
            protocol: Protocol::Tcp,
            port: API_PORT,
            cidr: *cidr,
        })
        .collect();
    let arn = &d.cluster.arn;
    let (mut actions, kept) = reconcile_ingress(
        owner,
        obs,
        &GroupRef::Existing(d.control_plane_group.clone()),
        &permissions,
        |rule| rule.tags.get(TAG_CLUSTER) == Some(arn),
        Some(arn),
        &d.vpc_id,
    );
    let stray: Vec<&SecurityGroupRuleView> = obs
        .security_group_rules
        .iter()
        .filter(|r| {
            owner.is_ours(&r.tags)
                && r.tags.get(TAG_CLUSTER) == Some(arn)
                && r.group_id != d.control_plane_group
        })
        .collect();
    actions.extend(revoke_grouped(&stray));
    let planned = Planned {
        actions,
        ..Planned::default()
    };
    (planned, kept)
}
