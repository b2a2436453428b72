//! Route 53 Resolver: endpoints and their addresses, rules, associations.

use crate::aws::{aws, AwsError, Clients};
use crate::model::*;

use super::*;

/// ResolverEndpoint -> EndpointView; None for a direction we do not know.
pub fn endpoint_view(
    account: &Account,
    e: &aws_sdk_route53resolver::types::ResolverEndpoint,
) -> Option<EndpointView> {
    let direction = match e.direction().map(|d| d.as_str()) {
        Some("INBOUND") => Direction::Inbound,
        Some("OUTBOUND") => Direction::Outbound,
        _ => return None,
    };
    Some(EndpointView {
        account: account.clone(),
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
        endpoint_type: EndpointType::parse(
            e.resolver_endpoint_type()
                .map(|t| t.as_str())
                .unwrap_or_default(),
        ),
        ips: None,
    })
}

pub(super) fn ip_view(ip: &aws_sdk_route53resolver::types::IpAddressResponse) -> EndpointIp {
    EndpointIp {
        ip_id: ip.ip_id().unwrap_or_default().to_string(),
        subnet_id: ip.subnet_id().unwrap_or_default().to_string(),
        ip: ip.ip().map(str::to_string),
        ipv6: ip.ipv6().map(str::to_string),
        status: IpStatus::parse(ip.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: ip.status_message().unwrap_or_default().to_string(),
    }
}

pub(super) fn rule_view(
    account: &Account,
    r: &aws_sdk_route53resolver::types::ResolverRule,
) -> RuleView {
    RuleView {
        account: account.clone(),
        id: r.id().unwrap_or_default().to_string(),
        arn: r.arn().unwrap_or_default().to_string(),
        domain: normalize_domain(r.domain_name().unwrap_or_default()),
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
        shared: r.share_status().map(|s| s.as_str()) == Some("SHARED_BY_ME"),
    }
}

pub(super) fn association_view(
    account: &Account,
    a: &aws_sdk_route53resolver::types::ResolverRuleAssociation,
) -> AssociationView {
    AssociationView {
        account: account.clone(),
        id: a.id().unwrap_or_default().to_string(),
        rule_id: a.resolver_rule_id().unwrap_or_default().to_string(),
        vpc_id: a.vpc_id().unwrap_or_default().to_string(),
        status: AssociationStatus::parse(a.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: a.status_message().unwrap_or_default().to_string(),
    }
}

/// A Resolver list filter.
pub(super) fn resolver_filter(name: &str, value: &str) -> aws_sdk_route53resolver::types::Filter {
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
        endpoints.extend(
            page.resolver_endpoints()
                .iter()
                .filter_map(|e| endpoint_view(&clients.account, e)),
        );
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
        Ok(out) => Ok(out
            .resolver_endpoint()
            .and_then(|e| endpoint_view(&clients.account, e))),
        Err(e) => {
            let e = AwsError::from_sdk("Route53Resolver.GetResolverEndpoint", e);
            if e.is_not_found() {
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
            if e.is_not_found() {
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

pub(super) async fn list_rules_filtered(
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
        rules.extend(
            page.resolver_rules()
                .iter()
                .map(|r| rule_view(&clients.account, r)),
        );
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

pub(super) async fn list_associations_filtered(
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
                .map(|a| association_view(&clients.account, a)),
        );
    }
    Ok(associations)
}

/// Resolver state of the region, read once and shared (one cluster, or a
/// whole sweep).
#[derive(Clone, Debug, Default)]
pub struct ResolverState {
    pub endpoints: Vec<EndpointView>,
    pub rules: Vec<RuleView>,
    pub associations: Vec<AssociationView>,
}

/// The endpoints and associations of the clients' account, and its rules
/// when it is the deployment's own: ours are made there (another account
/// lists those shared with it too, as SHARED_WITH_ME, and they are read
/// once, from their owner).
pub async fn resolver_state(clients: &Clients) -> Result<ResolverState, AwsError> {
    let rules = async {
        match clients.account.is_home() {
            true => list_rules(clients).await,
            false => Ok(Vec::new()),
        }
    };
    let (endpoints, rules, associations) =
        tokio::try_join!(list_endpoints(clients), rules, list_associations(clients))?;
    Ok(ResolverState {
        endpoints,
        rules,
        associations,
    })
}
