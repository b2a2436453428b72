//! The cluster's forward rule and its associations.

use std::collections::BTreeSet;

use super::*;

/// The cluster's forward rule: made, kept right, associated with every
/// client VPC and no other. Returns what it plans and the id of the rule
/// that stays.
pub(super) fn plan_rule(
    obs: &Observation,
    owner: &Owner,
    d: &Desired,
    outbound: Option<&EndpointRef>,
    inbound: &Inbound,
) -> (Planned, Option<String>) {
    let mut m = Planned::default();
    let wants_rule = !d.association_vpcs.is_empty();
    let rules_of_cluster = rules_of(owner, obs, &obs.cluster_id());
    let current = rules_of_cluster
        .iter()
        .find(|r| r.domain == d.host && !r.status.is_going_away() && !r.status.is_failed())
        .copied();
    for rule in &rules_of_cluster {
        if rule.status.is_failed() {
            m.problems.push(Problem {
                resource: format!("rule {} ({})", rule.id, rule.domain),
                status: rule.status.to_string(),
                message: rule.status_message.clone(),
                repair: Some("it is deleted, and a new one made once it is gone".into()),
            });
        }
        let keep = wants_rule && current.map(|c| c.id == rule.id).unwrap_or(false);
        if !keep {
            m.actions.extend(remove_rule(obs, rule));
        }
    }
    let (true, Some(outbound)) = (wants_rule, outbound) else {
        return (m, None);
    };
    let with_ipv6 = match outbound {
        EndpointRef::Existing(id) => reaches_ipv6(obs, id),
        EndpointRef::New(_) => false,
    };
    let targets = match &inbound.ips {
        Some(ips) if !ips.is_empty() => {
            let ipv6 = match with_ipv6 {
                true => inbound.ipv6.clone().unwrap_or_default(),
                false => Vec::new(),
            };
            Targets::Known(rule_targets(ips, &ipv6))
        }
        _ if with_ipv6 => Targets::InboundEndpointIpsAndIpv6,
        _ => Targets::InboundEndpointIps,
    };
    let (rule_ref, rule_id) = match current {
        None => {
            m.actions.push(Action::CreateRule {
                // The rule names the deployment's outbound endpoint.
                account: Account::Home,
                cluster: obs.cluster_id().to_string(),
                cluster_arn: d.cluster.arn.clone(),
                domain: d.host.clone(),
                targets,
                endpoint: outbound.clone(),
            });
            (RuleRef::New, None)
        }
        Some(rule) => {
            m.actions.extend(update_rule(rule, targets, outbound));
            (RuleRef::Existing(rule.id.clone()), Some(rule.id.clone()))
        }
    };
    // Another rule of ours for this name still associated with a VPC: a VPC
    // takes one rule per name (RSLVR-00802), so ours waits for it to go.
    let other_rules: BTreeSet<&str> = rules_of_cluster
        .iter()
        .filter(|r| r.domain == d.host && Some(r.id.as_str()) != rule_id.as_deref())
        .map(|r| r.id.as_str())
        .collect();
    m.absorb(plan_associations(obs, d, current, &rule_ref, &other_rules));
    m.actions.extend(plan_share(obs, d, current, &rule_ref));
    (m, rule_id)
}

/// The rule shared (through the deployment's RAM share) with the accounts
/// of client VPCs it is not associated with yet, when they are not the
/// deployment's own: an account associates a rule of another only once it
/// is shared with it. Once every association is in place, nothing is
/// planned (an association proves the share).
fn plan_share(
    obs: &Observation,
    d: &Desired,
    current: Option<&RuleView>,
    rule_ref: &RuleRef,
) -> Option<Action> {
    let rule_id = current.map(|r| r.id.as_str());
    let mut principals: Vec<String> = d
        .association_vpcs
        .iter()
        .filter(|vpc| {
            !obs.associations.iter().any(|a| {
                Some(a.rule_id.as_str()) == rule_id
                    && a.vpc_id == vpc.id
                    && a.account == vpc.account
                    && a.status.is_live()
            })
        })
        .filter_map(|vpc| vpc.account.id().map(str::to_string))
        .collect();
    principals.sort();
    principals.dedup();
    (!principals.is_empty()).then(|| Action::ShareRule {
        account: Account::Home,
        rule: rule_ref.clone(),
        rule_arn: current.map(|r| r.arn.clone()),
        domain: d.host.clone(),
        principals,
    })
}

/// A rule's targets: the inbound endpoint's IPv4 addresses, and its IPv6
/// ones too where they fit in the six targets a rule takes (an outbound
/// endpoint with IPv6 addresses reaches them).
pub fn rule_targets(ipv4: &[String], ipv6: &[String]) -> Vec<TargetAddress> {
    let ipv6 = match ipv4.len() + ipv6.len() <= MAX_RULE_TARGETS {
        true => ipv6,
        false => &[],
    };
    ipv4.iter()
        .chain(ipv6)
        .map(|ip| TargetAddress {
            ip: ip.clone(),
            port: DNS_PORT,
        })
        .collect()
}

/// Whether the outbound endpoint `endpoint_id` has IPv6 addresses, so
/// that a rule through it targets the inbound IPv6 addresses too.
pub fn reaches_ipv6(obs: &Observation, endpoint_id: &str) -> bool {
    obs.endpoints
        .iter()
        .any(|e| e.id == endpoint_id && e.has_ipv6())
}

/// Target IPs per rule (Route 53 quotas).
pub const MAX_RULE_TARGETS: usize = 6;

/// The update that points an existing rule at `targets` through `outbound`,
/// when it does not already.
fn update_rule(rule: &RuleView, targets: Targets, outbound: &EndpointRef) -> Option<Action> {
    let mut current_targets = rule.targets.clone();
    current_targets.sort();
    let targets_differ = match &targets {
        Targets::Known(t) => {
            let mut t = t.clone();
            t.sort();
            t != current_targets
        }
        Targets::InboundEndpointIps | Targets::InboundEndpointIpsAndIpv6 => true,
    };
    let endpoint_differs = match outbound {
        EndpointRef::Existing(id) => rule.endpoint_id.as_deref() != Some(id.as_str()),
        EndpointRef::New(_) => true,
    };
    (targets_differ || endpoint_differs).then(|| Action::UpdateRule {
        account: rule.account.clone(),
        rule_id: rule.id.clone(),
        rule_arn: rule.arn.clone(),
        domain: rule.domain.clone(),
        targets,
        endpoint: outbound.clone(),
    })
}

/// The rule associated with every client VPC and no other, each from the
/// VPC's account: failed associations removed (and made again), ones in
/// progress waited for.
fn plan_associations(
    obs: &Observation,
    d: &Desired,
    current: Option<&RuleView>,
    rule_ref: &RuleRef,
    other_rules: &BTreeSet<&str>,
) -> Planned {
    let mut m = Planned::default();
    let rule_id = current.map(|r| r.id.as_str());
    let of_rule: Vec<&AssociationView> = obs
        .associations
        .iter()
        .filter(|a| Some(a.rule_id.as_str()) == rule_id)
        .collect();
    let vpc_of = |a: &AssociationView| VpcRef {
        account: a.account.clone(),
        id: a.vpc_id.clone(),
    };
    let associated: BTreeSet<VpcRef> = of_rule
        .iter()
        .filter(|a| a.status.is_live())
        .map(|a| vpc_of(a))
        .collect();
    for a in &of_rule {
        if a.status.is_in_progress() {
            m.waits.push(Wait::Association {
                account: a.account.clone(),
                rule_id: a.rule_id.clone(),
                vpc_id: a.vpc_id.clone(),
                status: a.status.clone(),
            });
        }
        if a.status.is_failed() {
            let wanted = d.association_vpcs.contains(&vpc_of(a));
            m.problems.push(Problem {
                resource: format!("the association of rule {} with {}", a.rule_id, vpc_of(a)),
                status: a.status.to_string(),
                message: a.status_message.clone(),
                repair: Some(if wanted {
                    "it is removed, and made again once it is gone".into()
                } else {
                    "it is removed".into()
                }),
            });
            m.actions.push(Action::DisassociateRule {
                account: a.account.clone(),
                rule_id: a.rule_id.clone(),
                rule_arn: current.map(|r| r.arn.clone()).unwrap_or_default(),
                vpc_id: a.vpc_id.clone(),
            });
        }
    }
    for vpc in &d.association_vpcs {
        if associated.contains(vpc) {
            continue;
        }
        let blocking = obs.associations.iter().find(|a| {
            a.vpc_id == vpc.id
                && a.account == vpc.account
                && (other_rules.contains(a.rule_id.as_str())
                    || (Some(a.rule_id.as_str()) == rule_id && !a.status.is_live()))
        });
        match blocking {
            Some(a) => m.waits.push(Wait::AssociationGone {
                account: a.account.clone(),
                rule_id: a.rule_id.clone(),
                vpc_id: vpc.id.clone(),
            }),
            None => m.actions.push(Action::AssociateRule {
                account: vpc.account.clone(),
                rule: rule_ref.clone(),
                rule_arn: current.map(|r| r.arn.clone()),
                vpc_id: vpc.id.clone(),
                cluster: d.cluster.name.clone(),
            }),
        }
    }
    if let Some(rule) = current {
        for vpc in associated {
            if !d.association_vpcs.contains(&vpc) {
                m.actions.push(Action::DisassociateRule {
                    account: vpc.account,
                    rule_id: rule.id.clone(),
                    rule_arn: rule.arn.clone(),
                    vpc_id: vpc.id,
                });
            }
        }
    }
    m
}

/// Disassociate a rule everywhere, then delete it.
pub(super) fn remove_rule(obs: &Observation, rule: &RuleView) -> Vec<Action> {
    let associations: Vec<&AssociationView> = obs
        .associations
        .iter()
        .filter(|a| a.rule_id == rule.id)
        .collect();
    let mut actions: Vec<Action> = associations
        .iter()
        .filter(|a| a.status != AssociationStatus::Deleting)
        .map(|association| Action::DisassociateRule {
            account: association.account.clone(),
            rule_id: rule.id.clone(),
            rule_arn: rule.arn.clone(),
            vpc_id: association.vpc_id.clone(),
        })
        .collect();
    if !rule.status.is_going_away() {
        actions.push(Action::DeleteRule {
            account: rule.account.clone(),
            rule_id: rule.id.clone(),
            rule_arn: rule.arn.clone(),
            domain: rule.domain.clone(),
            after_associations: !associations.is_empty(),
            shared: rule.shared,
        });
    }
    actions
}
