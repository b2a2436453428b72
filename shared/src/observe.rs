//! Observe: read what exists, with as few calls and rounds as possible, into
//! plain data for the planner. Nothing here writes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use aws_sdk_ssm::types::ParameterStringFilter;
use futures::future::try_join_all;
use ipnet::IpNet;

use crate::aws::{aws, AwsError, Clients};
use crate::config::Config;
use crate::model::*;
use crate::owner::{Owner, TAG_OWNER, TAG_VPC};
use crate::plan::{self, Observation};
use crate::ssm::{parameter_name, PARAM_STATE};

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

pub(crate) fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// DescribeCluster. Ok(None) when the cluster does not exist.
pub async fn describe_cluster(
    clients: &Clients,
    name: &str,
) -> Result<Option<ClusterView>, AwsError> {
    let out = match clients.eks.describe_cluster().name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .map(|s| s.is_resource_not_found_exception())
                .unwrap_or(false) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::from_sdk("EKS.DescribeCluster", e)),
    };
    let Some(c) = out.cluster() else {
        return Ok(None);
    };
    Ok(Some(cluster_view(c)))
}

pub fn cluster_view(c: &aws_sdk_eks::types::Cluster) -> ClusterView {
    let vpc = c.resources_vpc_config();
    ClusterView {
        name: c.name().unwrap_or_default().to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        status: ClusterStatus::parse(c.status().map(|s| s.as_str()).unwrap_or("UNKNOWN")),
        endpoint_host: c.endpoint().and_then(endpoint_host),
        vpc_id: vpc.and_then(|v| v.vpc_id()).map(str::to_string),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        cluster_security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        public_access: vpc.map(|v| v.endpoint_public_access()).unwrap_or(false),
        private_access: vpc.map(|v| v.endpoint_private_access()).unwrap_or(false),
        ipv6: c
            .kubernetes_network_config()
            .and_then(|k| k.ip_family())
            .map(|f| f.as_str() == "ipv6")
            .unwrap_or(false),
        tags: c
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

async fn describe_vpcs(clients: &Clients, ids: &[String]) -> Result<Vec<VpcView>, AwsError> {
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
                id: vpc.vpc_id().unwrap_or_default().to_string(),
                cidrs,
                tags: ec2_tags(vpc.tags()),
            });
        }
    }
    Ok(vpcs)
}

async fn vpc_dns(clients: &Clients, vpc_id: &str) -> Result<VpcDns, AwsError> {
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

async fn describe_subnets(
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

async fn security_groups(
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
                id: r.security_group_rule_id().unwrap_or_default().to_string(),
                group_id: r.group_id().unwrap_or_default().to_string(),
                is_egress: r.is_egress().unwrap_or(false),
                protocol: r.ip_protocol().unwrap_or("-1").to_string(),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                cidr: r.cidr_ipv4().or(r.cidr_ipv6()).and_then(|c| c.parse().ok()),
                tags: ec2_tags(r.tags()),
            });
        }
    }
    Ok(rules)
}

/// ResolverEndpoint -> EndpointView; None for a direction we do not know.
pub fn endpoint_view(e: &aws_sdk_route53resolver::types::ResolverEndpoint) -> Option<EndpointView> {
    let direction = match e.direction().map(|d| d.as_str()) {
        Some("INBOUND") => Direction::Inbound,
        Some("OUTBOUND") => Direction::Outbound,
        _ => return None,
    };
    Some(EndpointView {
        id: e.id().unwrap_or_default().to_string(),
        arn: e.arn().unwrap_or_default().to_string(),
        direction,
        vpc_id: e.host_vpc_id().unwrap_or_default().to_string(),
        security_group_ids: e.security_group_ids().to_vec(),
        status: EndpointStatus::parse(e.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: e.status_message().unwrap_or_default().to_string(),
        creator_request_id: e.creator_request_id().unwrap_or_default().to_string(),
        name: e.name().unwrap_or_default().to_string(),
        creation_time: e.creation_time().unwrap_or_default().to_string(),
        ip_count: e.ip_address_count().unwrap_or(0),
        ips: None,
    })
}

fn ip_view(ip: &aws_sdk_route53resolver::types::IpAddressResponse) -> EndpointIp {
    EndpointIp {
        ip_id: ip.ip_id().unwrap_or_default().to_string(),
        subnet_id: ip.subnet_id().unwrap_or_default().to_string(),
        ip: ip.ip().map(str::to_string),
        ipv6: ip.ipv6().map(str::to_string),
        status: IpStatus::parse(ip.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: ip.status_message().unwrap_or_default().to_string(),
    }
}

fn rule_view(r: &aws_sdk_route53resolver::types::ResolverRule) -> RuleView {
    RuleView {
        id: r.id().unwrap_or_default().to_string(),
        arn: r.arn().unwrap_or_default().to_string(),
        domain: normalize_domain(r.domain_name().unwrap_or_default()),
        rule_type: r
            .rule_type()
            .map(|t| t.as_str())
            .unwrap_or_default()
            .to_string(),
        endpoint_id: r.resolver_endpoint_id().map(str::to_string),
        targets: r
            .target_ips()
            .iter()
            .filter_map(|t| {
                Some(TargetAddress {
                    ip: t.ip().or(t.ipv6())?.to_string(),
                    port: t.port().unwrap_or(53),
                })
            })
            .collect(),
        creator_request_id: r.creator_request_id().unwrap_or_default().to_string(),
        name: r.name().unwrap_or_default().to_string(),
        status: RuleStatus::parse(r.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: r.status_message().unwrap_or_default().to_string(),
    }
}

fn association_view(
    a: &aws_sdk_route53resolver::types::ResolverRuleAssociation,
) -> AssociationView {
    AssociationView {
        id: a.id().unwrap_or_default().to_string(),
        rule_id: a.resolver_rule_id().unwrap_or_default().to_string(),
        vpc_id: a.vpc_id().unwrap_or_default().to_string(),
        status: AssociationStatus::parse(a.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: a.status_message().unwrap_or_default().to_string(),
    }
}

/// A Resolver list filter.
fn resolver_filter(name: &str, value: &str) -> aws_sdk_route53resolver::types::Filter {
    aws_sdk_route53resolver::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// Every Resolver endpoint in the region (one paginated call).
pub async fn list_endpoints(clients: &Clients) -> Result<Vec<EndpointView>, AwsError> {
    let mut pages = clients
        .resolver
        .list_resolver_endpoints()
        .max_results(100)
        .into_paginator()
        .send();
    let mut endpoints = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("Route53Resolver.ListResolverEndpoints"))?;
        endpoints.extend(page.resolver_endpoints().iter().filter_map(endpoint_view));
    }
    Ok(endpoints)
}

/// One endpoint (GetResolverEndpoint); None once it is gone.
pub async fn get_endpoint(
    clients: &Clients,
    endpoint_id: &str,
) -> Result<Option<EndpointView>, AwsError> {
    match clients
        .resolver
        .get_resolver_endpoint()
        .resolver_endpoint_id(endpoint_id)
        .send()
        .await
    {
        Ok(out) => Ok(out.resolver_endpoint().and_then(endpoint_view)),
        Err(e) => {
            let e = AwsError::from_sdk("Route53Resolver.GetResolverEndpoint", e);
            if e.is_code("ResourceNotFoundException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Whether a rule still exists (GetResolverRule), whatever its status.
pub async fn rule_exists(clients: &Clients, rule_id: &str) -> Result<bool, AwsError> {
    match clients
        .resolver
        .get_resolver_rule()
        .resolver_rule_id(rule_id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = AwsError::from_sdk("Route53Resolver.GetResolverRule", e);
            if e.is_code("ResourceNotFoundException") {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

pub async fn endpoint_ips(
    clients: &Clients,
    endpoint_id: &str,
) -> Result<Vec<EndpointIp>, AwsError> {
    let mut pages = clients
        .resolver
        .list_resolver_endpoint_ip_addresses()
        .resolver_endpoint_id(endpoint_id)
        .max_results(10)
        .into_paginator()
        .send();
    let mut ips = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("Route53Resolver.ListResolverEndpointIpAddresses"))?;
        ips.extend(page.ip_addresses().iter().map(ip_view));
    }
    Ok(ips)
}

/// Every Resolver rule in the region (one paginated call).
pub async fn list_rules(clients: &Clients) -> Result<Vec<RuleView>, AwsError> {
    list_rules_filtered(clients, None).await
}

/// The rules (any owner, any status) that go through `endpoint_id`.
pub async fn rules_of_endpoint(
    clients: &Clients,
    endpoint_id: &str,
) -> Result<Vec<RuleView>, AwsError> {
    list_rules_filtered(
        clients,
        Some(resolver_filter("ResolverEndpointId", endpoint_id)),
    )
    .await
}

async fn list_rules_filtered(
    clients: &Clients,
    filter: Option<aws_sdk_route53resolver::types::Filter>,
) -> Result<Vec<RuleView>, AwsError> {
    let mut pages = clients
        .resolver
        .list_resolver_rules()
        .set_filters(filter.map(|f| vec![f]))
        .max_results(100)
        .into_paginator()
        .send();
    let mut rules = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("Route53Resolver.ListResolverRules"))?;
        rules.extend(page.resolver_rules().iter().map(rule_view));
    }
    Ok(rules)
}

/// Every rule association in the region (one paginated call).
pub async fn list_associations(clients: &Clients) -> Result<Vec<AssociationView>, AwsError> {
    list_associations_filtered(clients, None).await
}

/// The associations (any status) of one rule.
pub async fn associations_of_rule(
    clients: &Clients,
    rule_id: &str,
) -> Result<Vec<AssociationView>, AwsError> {
    list_associations_filtered(clients, Some(resolver_filter("ResolverRuleId", rule_id))).await
}

async fn list_associations_filtered(
    clients: &Clients,
    filter: Option<aws_sdk_route53resolver::types::Filter>,
) -> Result<Vec<AssociationView>, AwsError> {
    let mut pages = clients
        .resolver
        .list_resolver_rule_associations()
        .set_filters(filter.map(|f| vec![f]))
        .max_results(100)
        .into_paginator()
        .send();
    let mut associations = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("Route53Resolver.ListResolverRuleAssociations"))?;
        associations.extend(
            page.resolver_rule_associations()
                .iter()
                .map(association_view),
        );
    }
    Ok(associations)
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

/// The parameters directly under `path`.
pub async fn parameters_under(
    clients: &Clients,
    path: &str,
) -> Result<Vec<ParameterView>, AwsError> {
    parameters_by_path(clients, path, false).await
}

/// Other clusters recorded (by their state parameter) as using the inbound
/// endpoint of `vpc_id`.
pub async fn registrations(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
    vpc_id: &str,
    except_cluster: &str,
) -> Result<Vec<Registration>, AwsError> {
    let tagged =
        owned_parameter_names(clients, &config.ssm_prefix, owner, Some((TAG_VPC, vpc_id))).await?;
    let own_state = parameter_name(&config.ssm_prefix, except_cluster, PARAM_STATE);
    let names: Vec<String> = tagged
        .into_iter()
        .filter(|name| name.ends_with(&format!("/{PARAM_STATE}")) && *name != own_state)
        .collect();
    let mut found = Vec::new();
    for chunk in names.chunks(10) {
        let out = clients
            .ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws("SSM.GetParameters"))?;
        for p in out.parameters() {
            let Some(doc) = p
                .value()
                .and_then(|v| serde_json::from_str::<StateDoc>(v).ok())
            else {
                continue;
            };
            if doc.vpc_id != vpc_id {
                continue;
            }
            found.push(Registration {
                cluster: doc.cluster.clone(),
                allowed_cidrs: doc
                    .allowed_cidrs
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
            });
        }
    }
    found.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Ok(found)
}

/// Resolver state of the region, read once and shared (one cluster, or a
/// whole sweep).
#[derive(Clone, Debug, Default)]
pub struct ResolverState {
    pub endpoints: Vec<EndpointView>,
    pub rules: Vec<RuleView>,
    pub associations: Vec<AssociationView>,
}

pub async fn resolver_state(clients: &Clients) -> Result<ResolverState, AwsError> {
    let (endpoints, rules, associations) = tokio::try_join!(
        list_endpoints(clients),
        list_rules(clients),
        list_associations(clients)
    )?;
    Ok(ResolverState {
        endpoints,
        rules,
        associations,
    })
}

/// What a sweep reads once for the whole region and shares between the
/// clusters it reconciles: resolver state, our security groups and rules, our
/// parameters, and the addresses of our inbound endpoints. A few paginated
/// calls, whatever the number of clusters.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub resolver: ResolverState,
    pub security_groups: Vec<SecurityGroupView>,
    /// Every security group rule carrying our owner tag.
    pub owned_rules: Vec<SecurityGroupRuleView>,
    /// Every parameter under the prefix.
    pub parameters: Vec<ParameterView>,
}

pub async fn observe_fleet(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
) -> Result<Fleet, AwsError> {
    let (resolver, groups, rules, mut parameters, owned_parameters) = tokio::try_join!(
        resolver_state(clients),
        our_security_groups(clients, owner),
        security_group_rules(
            clients,
            vec![filter(&format!("tag:{TAG_OWNER}"), [owner.id.clone()])]
        ),
        parameters_recursive(clients, &config.ssm_prefix),
        owned_parameter_names(clients, &config.ssm_prefix, owner, None),
    )?;
    // Someone else's parameters under the prefix name no cluster of ours.
    parameters.retain(|p| owned_parameters.contains(&p.name));
    let mut resolver = resolver;
    // The addresses of our endpoints (inbound: published and targeted;
    // outbound: admitted on the inbound groups) and of the configured one.
    let inbound: Vec<String> = resolver
        .endpoints
        .iter()
        .filter(|e| {
            owner.parse_creator_id(&e.creator_request_id).is_some()
                || config.outbound_endpoint_id.as_deref() == Some(e.id.as_str())
        })
        .filter(|e| e.direction == Direction::Inbound || !e.is_going_away())
        .map(|e| e.id.clone())
        .collect();
    let ips = try_join_all(inbound.iter().map(|id| endpoint_ips(clients, id))).await?;
    let mut by_id: BTreeMap<String, Vec<EndpointIp>> = inbound.into_iter().zip(ips).collect();
    for endpoint in &mut resolver.endpoints {
        if let Some(ips) = by_id.remove(&endpoint.id) {
            endpoint.ips = Some(ips);
        }
    }
    Ok(Fleet {
        resolver,
        security_groups: groups,
        owned_rules: rules,
        parameters,
    })
}

/// A DescribeParameters filter.
fn ssm_filter(key: &str, option: Option<&str>, values: Vec<String>) -> ParameterStringFilter {
    ParameterStringFilter::builder()
        .key(key)
        .set_option(option.map(str::to_string))
        .set_values(Some(values))
        .build()
        .expect("key is set")
}

/// The names of the parameters under `prefix` (recursively) that carry our
/// owner tag, and `also` (a tag key and value) when given: one
/// DescribeParameters page per 50.
pub async fn owned_parameter_names(
    clients: &Clients,
    prefix: &str,
    owner: &Owner,
    also: Option<(&str, &str)>,
) -> Result<BTreeSet<String>, AwsError> {
    let mut request = clients
        .ssm
        .describe_parameters()
        .parameter_filters(ssm_filter(
            "Path",
            Some("Recursive"),
            vec![prefix.to_string()],
        ))
        .parameter_filters(ssm_filter(
            &format!("tag:{TAG_OWNER}"),
            None,
            vec![owner.id.clone()],
        ));
    if let Some((key, value)) = also {
        request = request.parameter_filters(ssm_filter(
            &format!("tag:{key}"),
            None,
            vec![value.to_string()],
        ));
    }
    let mut pages = request.max_results(50).into_paginator().send();
    let mut names = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("SSM.DescribeParameters"))?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .map(str::to_string),
        );
    }
    Ok(names)
}

/// Every parameter under `prefix`, recursively.
pub async fn parameters_recursive(
    clients: &Clients,
    prefix: &str,
) -> Result<Vec<ParameterView>, AwsError> {
    parameters_by_path(clients, prefix, true).await
}

async fn parameters_by_path(
    clients: &Clients,
    path: &str,
    recursive: bool,
) -> Result<Vec<ParameterView>, AwsError> {
    let mut pages = clients
        .ssm
        .get_parameters_by_path()
        .path(path)
        .recursive(recursive)
        .into_paginator()
        .send();
    let mut params = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("SSM.GetParametersByPath"))?;
        for p in page.parameters() {
            params.push(ParameterView {
                name: p.name().unwrap_or_default().to_string(),
                value: p.value().unwrap_or_default().to_string(),
                kind: p
                    .r#type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
                version: p.version(),
            });
        }
    }
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// The clusters recorded in `parameters` (by their state documents).
pub fn recorded_states(parameters: &[ParameterView]) -> Vec<StateDoc> {
    parameters
        .iter()
        .filter(|p| p.name.ends_with(&format!("/{PARAM_STATE}")))
        .filter_map(|p| serde_json::from_str::<StateDoc>(&p.value).ok())
        .collect()
}

/// How much `observe_cluster` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Leave out what only building needs when the plumbing exists
    /// (`Observation::lean`).
    Auto,
    /// Read everything.
    Full,
}

/// Observe everything the planner needs for one cluster, in three rounds of
/// concurrent calls. With `fleet`, the region-wide parts come from it
/// instead of being read again.
pub async fn observe_cluster(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
    cluster_name: &str,
    hinted_arn: Option<String>,
    fleet: Option<&Fleet>,
    detail: Detail,
) -> Result<Observation, AwsError> {
    // Round 1: nothing here depends on anything else.
    let own_path = format!("{}/{}", config.ssm_prefix, cluster_name);
    let (cluster, resolver, groups, parameters) = match fleet {
        Some(fleet) => {
            let cluster = describe_cluster(clients, cluster_name).await?;
            let own: Vec<ParameterView> = fleet
                .parameters
                .iter()
                .filter(|p| {
                    p.name.starts_with(&format!("{own_path}/"))
                        && !p.name[own_path.len() + 1..].contains('/')
                })
                .cloned()
                .collect();
            (
                cluster,
                fleet.resolver.clone(),
                fleet.security_groups.clone(),
                own,
            )
        }
        None => tokio::try_join!(
            describe_cluster(clients, cluster_name),
            resolver_state(clients),
            our_security_groups(clients, owner),
            parameters_under(clients, &own_path),
        )?,
    };
    let mut obs = Observation {
        cluster_name: cluster_name.to_string(),
        cluster,
        hinted_arn,
        security_groups: groups,
        parameters,
        ..Observation::default()
    };
    // Ours by CreatorRequestId; the configured outbound endpoint too.
    obs.endpoints = resolver
        .endpoints
        .into_iter()
        .filter(|e| {
            owner.parse_creator_id(&e.creator_request_id).is_some()
                || config.outbound_endpoint_id.as_deref() == Some(e.id.as_str())
        })
        .collect();
    obs.rules = resolver
        .rules
        .into_iter()
        .filter(|r| owner.parse_creator_id(&r.creator_request_id).is_some())
        .collect();
    let our_rule_ids: BTreeSet<&str> = obs.rules.iter().map(|r| r.id.as_str()).collect();
    obs.associations = resolver
        .associations
        .into_iter()
        .filter(|a| our_rule_ids.contains(a.rule_id.as_str()))
        .collect();

    let state = plan::previous_state(config, &obs);
    let vpc_id = obs
        .cluster
        .as_ref()
        .and_then(|c| c.vpc_id.clone())
        .or_else(|| state.as_ref().map(|s| s.vpc_id.clone()));

    // Round 2: what depends on the cluster.
    // Rules on our groups (all of them when there is no fleet: our rules
    // are on our groups and on cluster groups only, so one call by group id
    // finds them all) and on the control-plane group.
    let mut rule_group_ids: BTreeSet<String> = obs
        .security_groups
        .iter()
        .filter(|g| fleet.is_none() || Some(&g.vpc_id) == vpc_id.as_ref())
        .map(|g| g.id.clone())
        .collect();
    if let Some(group) = obs.cluster.as_ref().and_then(|c| c.control_plane_group()) {
        rule_group_ids.insert(group.to_string());
    }
    // With the 443 rules on a tagged additional group: the cluster's
    // additional groups, and the rules on them (the same call).
    let additional: Vec<String> = match (&obs.cluster, config.api_rules_group) {
        (Some(c), crate::config::ApiRulesGroup::Tagged) => c.security_group_ids.clone(),
        _ => Vec::new(),
    };
    rule_group_ids.extend(additional.iter().cloned());
    let cluster_groups = async {
        if additional.is_empty() {
            Ok(Vec::new())
        } else {
            security_groups(clients, filter("group-id", additional.clone())).await
        }
    };
    if let Some(state) = &state {
        rule_group_ids.insert(state.control_plane_security_group_id.clone());
    }
    let wants_details = obs
        .cluster
        .as_ref()
        .map(|c| !c.status.is_in_progress())
        .unwrap_or(false);
    let cluster_subnet_ids = obs
        .cluster
        .as_ref()
        .map(|c| c.subnet_ids.clone())
        .unwrap_or_default();
    let peering = async {
        match (&vpc_id, config.discover_peered_vpcs && wants_details) {
            (Some(vpc), true) => peered_vpcs(clients, vpc).await,
            _ => Ok(Peers::default()),
        }
    };
    let rules = async {
        let mut all = match fleet {
            Some(fleet) => fleet.owned_rules.clone(),
            None => Vec::new(),
        };
        if !rule_group_ids.is_empty() {
            let on_groups =
                security_group_rules(clients, vec![filter("group-id", rule_group_ids.clone())])
                    .await?;
            let seen: BTreeSet<String> = all.iter().map(|r| r.id.clone()).collect();
            all.extend(on_groups.into_iter().filter(|r| !seen.contains(&r.id)));
        }
        Ok::<_, AwsError>(all)
    };
    let registry = async {
        match (&vpc_id, fleet) {
            (Some(vpc), Some(fleet)) => Ok(recorded_states(&fleet.parameters)
                .into_iter()
                .filter(|doc| &doc.vpc_id == vpc && doc.cluster != cluster_name)
                .map(|doc| Registration {
                    cluster: doc.cluster.clone(),
                    allowed_cidrs: doc
                        .allowed_cidrs
                        .iter()
                        .filter_map(|c| c.parse().ok())
                        .collect(),
                })
                .collect()),
            (Some(vpc), None) => registrations(clients, config, owner, vpc, cluster_name).await,
            (None, _) => Ok(Vec::new()),
        }
    };
    // Addresses of the VPC's inbound endpoints (already read in a fleet).
    let inbound_ids: Vec<String> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == Direction::Inbound && Some(&e.vpc_id) == vpc_id.as_ref())
        .filter(|e| e.ips.is_none())
        .map(|e| e.id.clone())
        .collect();
    let ips = try_join_all(inbound_ids.iter().map(|id| endpoint_ips(clients, id)));
    let (peered, sg_rules, registrations, ips, cluster_groups) =
        tokio::try_join!(peering, rules, registry, ips, cluster_groups)?;
    obs.cluster_groups = cluster_groups;
    obs.peered_vpc_ids = peered.same_account;
    obs.other_account_peers = peered.other_accounts;
    obs.security_group_rules = sg_rules;
    obs.registrations = registrations;
    let mut ips_by_endpoint: BTreeMap<String, Vec<EndpointIp>> =
        inbound_ids.into_iter().zip(ips).collect();
    for endpoint in &mut obs.endpoints {
        if let Some(ips) = ips_by_endpoint.remove(&endpoint.id) {
            endpoint.ips = Some(ips);
        }
    }

    // Round 3: client VPCs (which may come from peering) and the outbound
    // VPC; and, unless the plumbing exists, what building it needs.
    if wants_details {
        obs.lean = detail == Detail::Auto && !plan::details_wanted(config, owner, &obs);
        let full = !obs.lean;
        let dns = async {
            match (&vpc_id, full) {
                (Some(vpc), true) => vpc_dns(clients, vpc).await.map(Some),
                _ => Ok(None),
            }
        };
        let subnets = async {
            if full && !cluster_subnet_ids.is_empty() {
                describe_subnets(
                    clients,
                    vec![filter("subnet-id", cluster_subnet_ids.clone())],
                )
                .await
            } else {
                Ok(Vec::new())
            }
        };
        let mut vpc_ids = plan::client_vpc_hint(config, &obs);
        // The cluster VPC's own blocks, in the same call: the state records
        // those outside the private ranges, the only other place an inbound
        // address may be for `render` to publish it.
        if let Some(vpc) = &vpc_id {
            if !vpc_ids.contains(vpc) {
                vpc_ids.push(vpc.clone());
            }
        }
        let outbound_vpc = plan::outbound_vpc_hint(config, &obs);
        if let Some(vpc) = &outbound_vpc {
            if !vpc_ids.contains(vpc) {
                vpc_ids.push(vpc.clone());
            }
        }
        let needs_outbound_subnets =
            full && outbound_vpc.is_some() && config.outbound_endpoint_id.is_none();
        let outbound_subnets = async {
            match (&outbound_vpc, needs_outbound_subnets) {
                (Some(vpc), true) => {
                    describe_subnets(clients, vec![filter("vpc-id", [vpc.clone()])]).await
                }
                _ => Ok(Vec::new()),
            }
        };
        // The addresses of the outbound endpoints, where forwarded queries
        // come from, which the inbound group must admit: needed only for one
        // outside this cluster's client VPCs (whose CIDR blocks are all
        // admitted, and hold every address of an endpoint in them), and for
        // a full look (verify --path walks them).
        let client_vpcs = plan::client_vpc_hint(config, &obs);
        let outbound_ids: Vec<String> = obs
            .endpoints
            .iter()
            .filter(|e| e.direction == Direction::Outbound && !e.is_going_away())
            .filter(|e| e.ips.is_none())
            .filter(|e| detail == Detail::Full || !client_vpcs.contains(&e.vpc_id))
            .map(|e| e.id.clone())
            .collect();
        let outbound_ips = try_join_all(outbound_ids.iter().map(|id| endpoint_ips(clients, id)));
        let (vpcs, outbound_subnets, dns, subnets, outbound_ips) = tokio::try_join!(
            describe_vpcs(clients, &vpc_ids),
            outbound_subnets,
            dns,
            subnets,
            outbound_ips
        )?;
        let mut by_endpoint: BTreeMap<String, Vec<EndpointIp>> =
            outbound_ids.into_iter().zip(outbound_ips).collect();
        for endpoint in &mut obs.endpoints {
            if let Some(ips) = by_endpoint.remove(&endpoint.id) {
                endpoint.ips = Some(ips);
            }
        }
        obs.vpcs = vpcs;
        obs.outbound_vpc_subnets = outbound_subnets;
        obs.cluster_vpc_dns = dns;
        obs.cluster_subnets = subnets;
    }
    Ok(obs)
}
