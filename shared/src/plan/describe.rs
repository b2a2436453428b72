//! How an action reads to people: one line each, naming what it acts on
//! (and the account, when not the deployment's own).

use super::*;

impl Action {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::CreateSecurityGroup {
                account,
                role,
                vpc_id,
                name,
            } => format!(
                "create {role} endpoint security group {name} in {}",
                in_account(account, vpc_id)
            ),
            Action::AuthorizeIngress {
                group, permissions, ..
            } => format!(
                "allow {} on {}",
                join(permissions.iter().map(|p| p.to_string())),
                group_label(group)
            ),
            Action::RevokeIngress {
                group_id,
                permissions,
                ..
            } => format!("revoke {} on {group_id}", permissions.join(", ")),
            Action::CreateEndpoint { .. } => describe_create_endpoint(self),
            Action::ChangeEndpointType {
                endpoint_id,
                from,
                to,
                ..
            } => format!("change endpoint {endpoint_id} from {from} to {to}"),
            Action::AddEndpointIps {
                endpoint_id,
                subnet_ids,
                ..
            } => format!(
                "add {} IPs to {endpoint_id} in {}",
                subnet_ids.len(),
                subnet_ids.join(", ")
            ),
            Action::RemoveEndpointIps {
                endpoint_id, ips, ..
            } => format!(
                "remove IPs {} from {endpoint_id}",
                join(
                    ips.iter()
                        .map(|ip| ip.ip.clone().unwrap_or(ip.ip_id.clone()))
                )
            ),
            Action::CreateRule { .. }
            | Action::UpdateRule { .. }
            | Action::ShareRule { .. }
            | Action::AssociateRule { .. }
            | Action::DisassociateRule { .. }
            | Action::DeleteRule { .. } => describe_rule_action(self),
            Action::DeleteEndpoint {
                account,
                endpoint_id,
                direction,
                vpc_id,
                ..
            } => format!(
                "delete {direction} endpoint {endpoint_id} in {}",
                in_account(account, vpc_id)
            ),
            Action::DeleteSecurityGroup { group_id, role, .. } => {
                format!("delete {role} endpoint security group {group_id}")
            }
            Action::UnshareWith {
                share_arn,
                principals,
                ..
            } => format!(
                "stop sharing {share_arn} with account {}",
                principals.join(", ")
            ),
            Action::DeleteShare { share_arn, .. } => format!("delete resource share {share_arn}"),
            Action::PublishParameters(p) => format!("publish parameters under {}/", p.folder()),
            Action::DeleteParameters { names, announce } => {
                let and_say = if announce.is_some() {
                    " (and announce the forwarders removed)"
                } else {
                    ""
                };
                format!("delete parameters {}{and_say}", names.join(", "))
            }
        }
    }
}

/// A rule action, in one line.
fn describe_rule_action(action: &Action) -> String {
    match action {
        Action::CreateRule {
            domain, targets, ..
        } => format!(
            "create forward rule for {domain} to {}",
            targets_label(targets)
        ),
        Action::UpdateRule {
            rule_id,
            targets,
            endpoint,
            ..
        } => format!(
            "update rule {rule_id}: targets {}, outbound endpoint {}",
            targets_label(targets),
            endpoint_label(endpoint)
        ),
        Action::ShareRule {
            rule,
            domain,
            principals,
            ..
        } => format!(
            "share {} ({domain}) with account {}",
            rule_label(rule),
            principals.join(", ")
        ),
        Action::AssociateRule {
            account,
            rule,
            vpc_id,
            ..
        } => format!(
            "associate {} with {}",
            rule_label(rule),
            in_account(account, vpc_id)
        ),
        Action::DisassociateRule {
            account,
            rule_id,
            vpc_id,
            ..
        } => format!(
            "disassociate rule {rule_id} from {}",
            in_account(account, vpc_id)
        ),
        Action::DeleteRule {
            rule_id, domain, ..
        } => format!("delete rule {rule_id} ({domain})"),
        other => unreachable!("{other:?} is not a rule action"),
    }
}

fn describe_create_endpoint(action: &Action) -> String {
    let Action::CreateEndpoint {
        account,
        direction,
        vpc_id,
        subnet_ids,
        ips,
        endpoint_type,
        ipv6s,
        ..
    } = action
    else {
        return String::new();
    };
    let kept: Vec<&str> = ips
        .iter()
        .chain(ipv6s)
        .flatten()
        .map(String::as_str)
        .collect();
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!(", asking for the published {}", kept.join(", "))
    };
    let kind = match endpoint_type {
        EndpointType::Ipv4 => String::new(),
        other => format!(" {other}"),
    };
    format!(
        "create{kind} {direction} Resolver endpoint in {} with {} IPs in {}{kept}",
        in_account(account, vpc_id),
        subnet_ids.len(),
        subnet_ids.join(", ")
    )
}

/// A resource of `account`: its id alone in the deployment's own account,
/// "id (account N)" in another.
pub(super) fn in_account(account: &Account, id: &str) -> String {
    match account {
        Account::Home => id.to_string(),
        Account::Id(n) => format!("{id} (account {n})"),
    }
}

pub(super) fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

pub(super) fn group_label(group: &GroupRef) -> String {
    match group {
        GroupRef::Existing(id) => id.clone(),
        GroupRef::New(role) => format!("the new {role} endpoint security group"),
    }
}

pub(super) fn endpoint_label(endpoint: &EndpointRef) -> String {
    match endpoint {
        EndpointRef::Existing(id) => id.clone(),
        EndpointRef::New(d) => format!("the new {d} endpoint"),
    }
}

pub(super) fn rule_label(rule: &RuleRef) -> String {
    match rule {
        RuleRef::Existing(id) => format!("rule {id}"),
        RuleRef::New => "the new rule".to_string(),
    }
}

pub(super) fn targets_label(targets: &Targets) -> String {
    match targets {
        Targets::Known(t) => join(t.iter().map(|t| format!("{}:{}", t.ip, t.port))),
        Targets::InboundEndpointIps => "the inbound endpoint's IPs".to_string(),
        Targets::InboundEndpointIpsAndIpv6 => {
            "the inbound endpoint's IPv4 and IPv6 addresses".to_string()
        }
    }
}
