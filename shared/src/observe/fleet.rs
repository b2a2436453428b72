//! What a sweep reads once for the whole region.

use std::collections::BTreeMap;

use futures::future::try_join_all;

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::owner::{Owner, TAG_OWNER};

use super::*;

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
