//! The observation: what the observe step read for one cluster, and what
//! the observe step and the planner both need to know about it (which
//! client VPCs the cluster wants, where an outbound endpoint would go, the
//! record of an earlier run, the addresses to keep, whether the details
//! that only building needs must be read). Both import it; neither calls
//! the other.

use std::collections::BTreeSet;

use crate::config::{ClusterTags, Config};
use crate::model::*;
use crate::owner::{CreatorId, Owner};
use crate::ssm::{
    parameter_name, PARAM_INBOUND_IPS, PARAM_INBOUND_IPV6, PARAM_STATE, STATE_SCHEMA,
};

/// Everything the planner needs, as read by the observe step.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub cluster_name: String,
    /// The account the cluster runs in, where its inbound endpoint, its
    /// group and its 443 rules live.
    pub account: Account,
    /// The deployment's own account id, when known (what an `ACCOUNT:`
    /// client VPC naming it means).
    pub home_id: Option<String>,
    /// The accounts served besides the deployment's own.
    pub served: BTreeSet<String>,
    /// None: DescribeCluster said the cluster does not exist.
    pub cluster: Option<ClusterView>,
    /// The cluster ARN from the triggering event, when the cluster is gone.
    pub hinted_arn: Option<String>,
    pub cluster_vpc_dns: Option<VpcDns>,
    /// The cluster's subnets (DescribeSubnets), with their AZs.
    pub cluster_subnets: Vec<SubnetView>,
    /// Of the inbound addresses this cluster published, those a network
    /// interface holds now: read only when the VPC's inbound endpoint must
    /// be made again (`addresses_to_keep`).
    pub addresses_in_use: BTreeSet<String>,
    /// Every VPC described: client VPCs (configured, tagged, peered), the
    /// cluster VPC and the outbound VPC.
    pub vpcs: Vec<VpcView>,
    /// VPCs with an active peering connection to the cluster VPC, in this
    /// deployment's accounts (the cluster's, or another it serves).
    pub peered_vpcs: Vec<VpcRef>,
    /// The cluster's additional security groups, described (only with
    /// `EKS_PRIVATE_DNS_API_RULES_GROUP=tagged`).
    pub cluster_groups: Vec<SecurityGroupView>,
    /// Peered VPCs of accounts this deployment does not serve (VPC id,
    /// account id): no reason to refuse the cluster.
    pub other_account_peers: Vec<(String, String)>,
    /// Subnets of the VPC where a new outbound endpoint would go.
    pub outbound_vpc_subnets: Vec<SubnetView>,
    /// Our Resolver endpoints (by CreatorRequestId), plus the configured outbound one.
    pub endpoints: Vec<EndpointView>,
    /// Our Resolver rules (by CreatorRequestId), for every cluster.
    pub rules: Vec<RuleView>,
    /// Associations of our rules.
    pub associations: Vec<AssociationView>,
    /// Our security groups (by owner tag).
    pub security_groups: Vec<SecurityGroupView>,
    /// Ingress rules on the control-plane group and on our groups, and every
    /// rule carrying our owner tag.
    pub security_group_rules: Vec<SecurityGroupRuleView>,
    /// This cluster's parameters under the prefix.
    pub parameters: Vec<ParameterView>,
    /// Other clusters recorded as using the cluster VPC's inbound endpoint.
    pub registrations: Vec<Registration>,
    /// The accounts whose Resolver state (associations) was read.
    pub accounts_read: Vec<Account>,
    /// The plumbing existed, so what only building it needs was not read:
    /// the cluster VPC's DNS attributes, the cluster's subnets and the
    /// outbound VPC's subnets (see `details_wanted`). The planner then skips
    /// the prerequisite checks, and a plan that would need them
    /// (`Plan::needs_details`) is made again from a full observation.
    pub lean: bool,
}

impl Observation {
    /// The cluster this observation is of.
    pub fn cluster_id(&self) -> ClusterId {
        ClusterId {
            account: self.account.clone(),
            name: self.cluster_name.clone(),
        }
    }

    /// The name and schema of this cluster's state parameter when a newer
    /// release wrote it (a schema above `STATE_SCHEMA`).
    pub fn newer_record(&self, config: &Config) -> Option<(String, u64)> {
        let name = parameter_name(&config.ssm_prefix, &self.cluster_id(), PARAM_STATE);
        let value = &self.parameters.iter().find(|p| p.name == name)?.value;
        let schema = serde_json::from_str::<serde_json::Value>(value)
            .ok()?
            .get("schema")?
            .as_u64()?;
        (schema > u64::from(STATE_SCHEMA)).then_some((name, schema))
    }

    /// The state parameter of this cluster (what an earlier run made),
    /// when it parses.
    pub fn previous_state(&self, config: &Config) -> Option<StateDoc> {
        let name = parameter_name(&config.ssm_prefix, &self.cluster_id(), PARAM_STATE);
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| serde_json::from_str(&p.value).ok())
    }

    /// The cluster's tags as settings (none when they do not parse: the
    /// planner says why).
    fn tags(&self, config: &Config) -> ClusterTags {
        self.cluster
            .as_ref()
            .and_then(|c| ClusterTags::parse(&c.name, &c.tags, config).ok())
            .unwrap_or_default()
    }

    /// Whether this deployment acts in `account`: its own, or a spoke it
    /// serves.
    pub fn serves(&self, account: &Account) -> bool {
        match account {
            Account::Home => true,
            Account::Id(id) => self.served.contains(id),
        }
    }

    /// The client VPCs of this cluster: configured (a bare id is the
    /// deployment's), tagged (a bare id is the cluster's account's) and
    /// (when discovering) peered, once each, in that order.
    pub fn client_vpcs(&self, config: &Config) -> Vec<VpcRef> {
        if self.cluster.is_none() {
            return Vec::new();
        }
        self.client_vpcs_with(config, &self.tags(config))
    }

    /// The same, with the cluster's tags parsed already.
    pub fn client_vpcs_with(&self, config: &Config, tags: &ClusterTags) -> Vec<VpcRef> {
        let home = self.home_id.as_deref();
        let peered: &[VpcRef] = if config.discover_peered_vpcs {
            &self.peered_vpcs
        } else {
            &[]
        };
        let mut vpcs: Vec<VpcRef> = Vec::new();
        let named = config
            .client_vpc_ids
            .iter()
            .map(|v| v.resolve(&Account::Home, home))
            .chain(
                tags.client_vpc_ids
                    .iter()
                    .map(|v| v.resolve(&self.account, home)),
            )
            .chain(peered.iter().cloned());
        for vpc in named {
            if !vpcs.contains(&vpc) {
                vpcs.push(vpc);
            }
        }
        vpcs
    }

    /// The cluster's VPC, in its account.
    pub fn cluster_vpc(&self) -> Option<VpcRef> {
        let id = self.cluster.as_ref()?.vpc_id.clone()?;
        Some(VpcRef {
            account: self.account.clone(),
            id,
        })
    }

    /// Where a new outbound endpoint goes, always in the deployment's own
    /// account (the forward rules that name it are there): the configured
    /// VPC, else the first configured client VPC of that account, else the
    /// first of its client VPCs that is not the cluster's.
    pub fn outbound_vpc(&self, config: &Config) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        let tags = ClusterTags::parse(&cluster.name, &cluster.tags, config).ok()?;
        let home = self.home_id.as_deref();
        config
            .outbound_vpc_id
            .clone()
            .or_else(|| {
                config
                    .client_vpc_ids
                    .iter()
                    .map(|v| v.resolve(&Account::Home, home))
                    .find(|v| v.account.is_home())
                    .map(|v| v.id)
            })
            .or_else(|| {
                let own = self.cluster_vpc();
                self.client_vpcs_with(config, &tags)
                    .into_iter()
                    .find(|v| v.account.is_home() && Some(v) != own.as_ref())
                    .map(|v| v.id)
            })
    }

    /// Our live endpoints of a direction (optionally in one VPC), oldest
    /// first.
    pub fn live_endpoints(
        &self,
        owner: &Owner,
        direction: Direction,
        vpc_id: Option<&str>,
    ) -> Vec<&EndpointView> {
        let mut found: Vec<&EndpointView> = self
            .endpoints
            .iter()
            .filter(|e| e.direction == direction && !e.is_going_away())
            .filter(|e| match owner.parse_creator_id(&e.creator_request_id) {
                Some(CreatorId::Inbound { vpc_id: v }) => {
                    direction == Direction::Inbound && v == e.vpc_id
                }
                Some(CreatorId::Outbound { vpc_id: v }) => {
                    direction == Direction::Outbound && v == e.vpc_id
                }
                _ => false,
            })
            .filter(|e| vpc_id.map(|v| e.vpc_id == v).unwrap_or(true))
            .collect();
        found.sort_by(|a, b| (&a.creation_time, &a.id).cmp(&(&b.creation_time, &b.id)));
        found
    }

    /// The inbound addresses this cluster published, when its VPC has no
    /// live inbound endpoint (deleted by hand, failed and removed): the
    /// addresses a new one asks for, so that on-premises forwarders keep
    /// working.
    pub fn addresses_to_keep(&self, config: &Config) -> Vec<String> {
        self.published_when_gone(config, PARAM_INBOUND_IPS)
            .into_iter()
            .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
            .collect()
    }

    /// The same for the IPv6 addresses (`inbound-ipv6`).
    pub fn ipv6_to_keep(&self, config: &Config) -> Vec<std::net::Ipv6Addr> {
        self.published_when_gone(config, PARAM_INBOUND_IPV6)
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect()
    }

    /// The addresses of the parameter `leaf` of this cluster, when its VPC
    /// has no live inbound endpoint.
    fn published_when_gone(&self, config: &Config, leaf: &str) -> Vec<String> {
        let Some(vpc_id) = self.cluster.as_ref().and_then(|c| c.vpc_id.as_deref()) else {
            return Vec::new();
        };
        let live = self
            .endpoints
            .iter()
            .any(|e| e.direction == Direction::Inbound && e.vpc_id == vpc_id && !e.is_going_away());
        if live {
            return Vec::new();
        }
        let name = parameter_name(&config.ssm_prefix, &self.cluster_id(), leaf);
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .map(|p| {
                p.value
                    .split(',')
                    .map(str::trim)
                    .filter(|ip| !ip.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether building or resizing is ahead, so that the observer must
    /// read the prerequisites and subnets: no live inbound endpoint of ours
    /// in the cluster VPC, one with another number of IPs than configured
    /// or of another type than wanted, or client VPCs and no outbound
    /// endpoint to serve them. Asked after the endpoints and their IPs are
    /// read; a wrong "no" costs one more observation, never a wrong plan
    /// (`Plan::needs_details`).
    pub fn details_wanted(&self, config: &Config, owner: &Owner) -> bool {
        let Some(cluster) = self.cluster.as_ref() else {
            return true;
        };
        let Some(vpc_id) = cluster.vpc_id.as_deref() else {
            return true;
        };
        let inbound = self.live_endpoints(owner, Direction::Inbound, Some(vpc_id));
        // Sized: the configured number of live IPs, and none failed to replace.
        let sized = inbound.first().is_some_and(|e| {
            e.ips.is_some()
                && e.live_ips().count() == config.inbound_ips as usize
                && e.failed_ips().next().is_none()
        });
        let outbound_served = config.outbound_endpoint_id.is_some()
            || self.client_vpcs(config).is_empty()
            || !self
                .live_endpoints(owner, Direction::Outbound, None)
                .is_empty();
        let host = cluster.endpoint_host.as_deref().unwrap_or_default();
        let typed = inbound.first().is_some_and(|e| {
            crate::stack::settled(config.endpoint_type, cluster.ipv6, host, e.endpoint_type)
        });
        !(sized && outbound_served && typed)
    }
}
