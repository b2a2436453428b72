//! What the cluster wants, worked out once from its tags, its VPC and the
//! configuration, or the reason it cannot be served.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::*;

pub(super) struct Desired<'a> {
    pub(super) cluster: &'a ClusterView,
    pub(super) vpc_id: String,
    pub(super) host: String,
    /// The client VPCs the rule is associated with, each from its account:
    /// every client VPC but the cluster's own (whose inbound endpoint the
    /// rule targets: a forwarding loop).
    pub(super) association_vpcs: Vec<VpcRef>,
    pub(super) cidrs: Vec<IpNet>,
    pub(super) control_plane_group: String,
}

pub(super) fn desired<'a>(config: &Config, obs: &'a Observation) -> Result<Desired<'a>, Invalid> {
    let cluster = obs
        .cluster
        .as_ref()
        .ok_or_else(|| Invalid::Incomplete("the cluster does not exist".into()))?;
    let tags = ClusterTags::parse(&cluster.name, &cluster.tags, config)
        .map_err(|e| Invalid::Tags(e.to_string()))?;
    let (host, vpc_id) = cluster.host_and_vpc().map_err(Invalid::Incomplete)?;
    match obs.cluster_vpc_dns {
        _ if obs.lean => {}
        Some(VpcDns {
            support: true,
            hostnames: true,
        }) => {}
        Some(dns) => {
            let mut off = Vec::new();
            if !dns.support {
                off.push("enableDnsSupport");
            }
            if !dns.hostnames {
                off.push("enableDnsHostnames");
            }
            return Err(Invalid::VpcDnsOff {
                cluster: cluster.name.clone(),
                vpc_id,
                off,
            });
        }
        None => return Err(Invalid::VpcDnsUnread { vpc_id }),
    }
    let azs: BTreeSet<&str> = obs
        .cluster_subnets
        .iter()
        .filter(|s| s.vpc_id == vpc_id)
        .map(|s| s.az.as_str())
        .collect();
    if azs.len() < 2 && !obs.lean {
        return Err(Invalid::InboundZones {
            cluster: cluster.name.clone(),
            vpc_id,
            zones: azs.len(),
        });
    }
    let control_plane_group = api_group(config, cluster, obs)?;
    let clients = obs.client_vpcs_with(config, &tags);
    let mut cidrs: BTreeSet<IpNet> = BTreeSet::new();
    for client in &clients {
        let source = || source_of(config, obs, &tags, client, &cluster.name);
        if !obs.serves(&client.account) {
            return Err(Invalid::ClientAccountNotServed {
                vpc: client.to_string(),
                source: source(),
            });
        }
        let Some(vpc) = obs
            .vpcs
            .iter()
            .find(|v| v.id == client.id && v.account == client.account)
        else {
            return Err(Invalid::ClientVpcMissing {
                vpc_id: client.to_string(),
                source: source(),
            });
        };
        cidrs.extend(vpc.cidrs.iter().copied());
    }
    cidrs.extend(config.onprem_cidrs.iter().copied());
    cidrs.extend(tags.onprem_cidrs.iter().copied());
    let own = VpcRef {
        account: obs.account.clone(),
        id: vpc_id.clone(),
    };
    let association_vpcs = clients.into_iter().filter(|v| *v != own).collect();
    Ok(Desired {
        cluster,
        vpc_id,
        host,
        association_vpcs,
        cidrs: cidrs.into_iter().collect(),
        control_plane_group,
    })
}

/// Where a client VPC was named: the setting, the cluster's tag, or a
/// peering connection.
fn source_of(
    config: &Config,
    obs: &Observation,
    tags: &ClusterTags,
    vpc: &VpcRef,
    cluster: &str,
) -> String {
    let home = obs.home_id.as_deref();
    if config
        .client_vpc_ids
        .iter()
        .any(|c| c.resolve(&Account::Home, home) == *vpc)
    {
        ENV_CLIENT_VPC_IDS.to_string()
    } else if tags
        .client_vpc_ids
        .iter()
        .any(|c| c.resolve(&obs.account, home) == *vpc)
    {
        format!(
            "tag {} of cluster {cluster}",
            crate::config::TAG_CLIENT_VPC_IDS
        )
    } else {
        "a peering connection".to_string()
    }
}

/// The cluster VPC's CIDR blocks outside the private ranges, as observed,
/// or as the state records them when the VPC was not read this time.
pub(super) fn recorded_vpc_cidrs(config: &Config, obs: &Observation, vpc_id: &str) -> Vec<String> {
    match obs.vpcs.iter().find(|v| v.id == vpc_id) {
        Some(vpc) => vpc
            .cidrs
            .iter()
            .filter(|c| !crate::config::is_private(c))
            .map(|c| c.to_string())
            .collect(),
        None => obs
            .previous_state(config)
            .map(|doc| doc.vpc_cidrs)
            .unwrap_or_default(),
    }
}
