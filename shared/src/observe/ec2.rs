//! EC2: VPCs, their DNS attributes, subnets, peering, security groups and their rules, network interfaces.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use ipnet::IpNet;

use crate::aws::{aws, AwsError, Clients};
use crate::owner::{Owner, TAG_OWNER};

use super::*;

pub(super) async fn describe_vpcs(
    clients: &Clients,
    ids: &[String],
) -> Result<Vec<VpcView>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = clients
        .ec2
        .describe_vpcs()
        .filters(filter("vpc-id", ids.iter().cloned()))
        .into_paginator()
        .send();
    let mut vpcs = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeVpcs"))?;
        for vpc in page.vpcs() {
            let mut cidrs: Vec<IpNet> = Vec::new();
            for assoc in vpc.cidr_block_association_set() {
                let state = assoc
                    .cidr_block_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string());
                if matches!(state.as_deref(), Some("associated") | None) {
                    if let Some(net) = assoc.cidr_block().and_then(|c| c.parse().ok()) {
                        cidrs.push(net);
                    }
                }
            }
            if cidrs.is_empty() {
                if let Some(net) = vpc.cidr_block().and_then(|c| c.parse().ok()) {
                    cidrs.push(net);
                }
            }
            for assoc in vpc.ipv6_cidr_block_association_set() {
                let state = assoc
                    .ipv6_cidr_block_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string());
                if matches!(state.as_deref(), Some("associated") | None) {
                    if let Some(net) = assoc.ipv6_cidr_block().and_then(|c| c.parse().ok()) {
                        cidrs.push(net);
                    }
                }
            }
            cidrs.sort();
            cidrs.dedup();
            vpcs.push(VpcView {
                account: clients.account.clone(),
                id: vpc.vpc_id().unwrap_or_default().to_string(),
                cidrs,
                tags: ec2_tags(vpc.tags()),
            });
        }
    }
    Ok(vpcs)
}

pub(super) async fn vpc_dns(clients: &Clients, vpc_id: &str) -> Result<VpcDns, AwsError> {
    let support = clients
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(VpcAttributeName::EnableDnsSupport)
        .send();
    let hostnames = clients
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(VpcAttributeName::EnableDnsHostnames)
        .send();
    let (support, hostnames) = tokio::join!(support, hostnames);
    let support = support.map_err(aws("EC2.DescribeVpcAttribute"))?;
    let hostnames = hostnames.map_err(aws("EC2.DescribeVpcAttribute"))?;
    Ok(VpcDns {
        support: support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
        hostnames: hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
    })
}

/// Of `ips`, those a network interface in `vpc_id` holds now.
pub(super) async fn addresses_held(
    clients: &Clients,
    vpc_id: &str,
    ips: &[String],
) -> Result<BTreeSet<String>, AwsError> {
    let mut held = BTreeSet::new();
    if ips.is_empty() {
        return Ok(held);
    }
    let mut pages = clients
        .ec2
        .describe_network_interfaces()
        .filters(filter("vpc-id", [vpc_id]))
        .filters(filter("addresses.private-ip-address", ips.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeNetworkInterfaces"))?;
        for eni in page.network_interfaces() {
            for address in eni.private_ip_addresses() {
                if let Some(ip) = address.private_ip_address() {
                    if ips.iter().any(|i| i == ip) {
                        held.insert(ip.to_string());
                    }
                }
            }
        }
    }
    Ok(held)
}

pub(super) async fn describe_subnets(
    clients: &Clients,
    filters: Vec<Filter>,
) -> Result<Vec<SubnetView>, AwsError> {
    let mut pages = clients
        .ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut subnets = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeSubnets"))?;
        for s in page.subnets() {
            subnets.push(SubnetView {
                id: s.subnet_id().unwrap_or_default().to_string(),
                vpc_id: s.vpc_id().unwrap_or_default().to_string(),
                az: s.availability_zone().unwrap_or_default().to_string(),
                cidr: s.cidr_block().and_then(|c| c.parse().ok()),
                ipv6_cidr: s
                    .ipv6_cidr_block_association_set()
                    .iter()
                    .filter(|a| {
                        a.ipv6_cidr_block_state()
                            .and_then(|state| state.state())
                            .map(|state| state.as_str())
                            == Some("associated")
                    })
                    .find_map(|a| a.ipv6_cidr_block()?.parse().ok()),
            });
        }
    }
    subnets.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(subnets)
}

/// VPCs with an active peering connection to `vpc_id`, either side, split
/// into those of the cluster VPC's own account and those of another
/// account (vpc, account), which this deployment cannot describe: those
/// are skipped with a warning, never a reason to refuse the cluster.
pub async fn peered_vpcs(clients: &Clients, vpc_id: &str) -> Result<Peers, AwsError> {
    let mut found: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut own_account: Option<String> = None;
    for side in ["requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"] {
        let mut pages = clients
            .ec2
            .describe_vpc_peering_connections()
            .filters(filter("status-code", ["active"]))
            .filters(filter(side, [vpc_id]))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("EC2.DescribeVpcPeeringConnections"))?;
            for pcx in page.vpc_peering_connections() {
                let active = pcx
                    .status()
                    .and_then(|s| s.code())
                    .map(|c| c.as_str() == "active")
                    .unwrap_or(false);
                if !active {
                    continue;
                }
                for info in [pcx.requester_vpc_info(), pcx.accepter_vpc_info()]
                    .into_iter()
                    .flatten()
                {
                    let owner = info.owner_id().map(str::to_string);
                    match info.vpc_id() {
                        Some(id) if id == vpc_id => {
                            own_account = owner.or(own_account);
                        }
                        Some(id) => {
                            found.insert(id.to_string(), owner);
                        }
                        None => {}
                    }
                }
            }
        }
    }
    let mut peers = Peers::default();
    for (id, owner) in found {
        match (&own_account, owner) {
            (Some(ours), Some(theirs)) if *ours != theirs => {
                peers.other_accounts.push((id, theirs))
            }
            _ => peers.same_account.push(id),
        }
    }
    Ok(peers)
}

/// The VPCs peered with a cluster VPC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    pub same_account: Vec<String>,
    /// (VPC id, account id) of peers in other accounts.
    pub other_accounts: Vec<(String, String)>,
}

pub async fn our_security_groups(
    clients: &Clients,
    owner: &Owner,
) -> Result<Vec<SecurityGroupView>, AwsError> {
    security_groups(
        clients,
        filter(&format!("tag:{TAG_OWNER}"), [owner.id.clone()]),
    )
    .await
}

pub(super) async fn security_groups(
    clients: &Clients,
    by: Filter,
) -> Result<Vec<SecurityGroupView>, AwsError> {
    let mut pages = clients
        .ec2
        .describe_security_groups()
        .filters(by)
        .into_paginator()
        .send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeSecurityGroups"))?;
        for g in page.security_groups() {
            groups.push(SecurityGroupView {
                account: clients.account.clone(),
                id: g.group_id().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                tags: ec2_tags(g.tags()),
            });
        }
    }
    Ok(groups)
}

pub async fn security_group_rules(
    clients: &Clients,
    filters: Vec<Filter>,
) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
    let mut pages = clients
        .ec2
        .describe_security_group_rules()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut rules = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeSecurityGroupRules"))?;
        for r in page.security_group_rules() {
            rules.push(SecurityGroupRuleView {
                account: clients.account.clone(),
                id: r.security_group_rule_id().unwrap_or_default().to_string(),
                group_id: r.group_id().unwrap_or_default().to_string(),
                is_egress: r.is_egress().unwrap_or(false),
                protocol: IpProtocol::parse(r.ip_protocol().unwrap_or("-1")),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                cidr: r.cidr_ipv4().or(r.cidr_ipv6()).and_then(|c| c.parse().ok()),
                tags: ec2_tags(r.tags()),
            });
        }
    }
    Ok(rules)
}

/// The network interfaces that use security group `group_id`:
/// (interface id, description).
pub async fn interfaces_using_group(
    clients: &Clients,
    group_id: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    let mut pages = clients
        .ec2
        .describe_network_interfaces()
        .filters(filter("group-id", [group_id]))
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("EC2.DescribeNetworkInterfaces"))?;
        for eni in page.network_interfaces() {
            found.push((
                eni.network_interface_id().unwrap_or_default().to_string(),
                eni.description().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(found)
}
