//! What a sweep reads once for the whole region.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Every parameter of ours under the prefix.
    pub parameters: Vec<ParameterView>,
    /// What `prefetch` read for the clusters of a sweep, so that a look of
    /// its first pass makes no call of its own on a quiet fleet.
    pub prefetched: Option<Prefetched>,
}

/// The per-cluster reads of a sweep's first pass, made for the whole fleet
/// at once: each cluster described (concurrently, the one call per cluster
/// that no batch replaces), the rules on every group a look reads and the
/// VPCs it needs, in batches of `BATCH` ids per call.
#[derive(Clone, Debug, Default)]
pub struct Prefetched {
    /// Each cluster by name; None: it does not exist.
    pub clusters: BTreeMap<String, Option<ClusterView>>,
    /// The groups whose rules were read, and the rules on them.
    pub rule_groups: BTreeSet<String>,
    pub rules: Vec<SecurityGroupRuleView>,
    /// The clusters' additional groups, described (tagged mode only).
    pub cluster_groups: Vec<SecurityGroupView>,
    /// VPCs described: the clusters', the configured client and outbound
    /// VPCs and those the clusters' tags name.
    pub vpcs: BTreeMap<String, VpcView>,
}

/// Ids per filter of one batched read.
const BATCH: usize = 200;

/// Describe every cluster of `names` and read, in batches, what their looks
/// need beyond the fleet: the rules on their control-plane and additional
/// groups and on our groups, and the VPCs they name.
pub async fn prefetch(
    scope: Scope<'_>,
    fleet: &Fleet,
    names: &[String],
    concurrency: usize,
) -> Result<Prefetched, AwsError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let clients = scope.clients;
    let described: Vec<(String, Option<ClusterView>)> = stream::iter(names.iter())
        .map(|name| async move {
            describe_cluster(clients, name)
                .await
                .map(|c| (name.clone(), c))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    batch_reads(scope, fleet, described.into_iter().collect()).await
}

/// The batched reads of `prefetch` for clusters already described: again
/// after the sweep's shared pass has made groups and rules.
pub async fn batch_reads(
    scope: Scope<'_>,
    fleet: &Fleet,
    clusters: BTreeMap<String, Option<ClusterView>>,
) -> Result<Prefetched, AwsError> {
    let Scope {
        clients, config, ..
    } = scope;
    let mut rule_groups: BTreeSet<String> =
        fleet.security_groups.iter().map(|g| g.id.clone()).collect();
    let mut additional: BTreeSet<String> = BTreeSet::new();
    let mut vpc_ids: BTreeSet<String> = config.client_vpc_ids.iter().cloned().collect();
    vpc_ids.extend(config.outbound_vpc_id.iter().cloned());
    for cluster in clusters.values().flatten() {
        rule_groups.extend(cluster.control_plane_group().map(str::to_string));
        if config.api_rules_group == crate::config::ApiRulesGroup::Tagged {
            additional.extend(cluster.security_group_ids.iter().cloned());
        }
        vpc_ids.extend(cluster.vpc_id.iter().cloned());
        if let Ok(tags) = crate::config::ClusterTags::parse(&cluster.name, &cluster.tags, config) {
            vpc_ids.extend(tags.client_vpc_ids);
        }
    }
    for state in recorded_states(&config.ssm_prefix, &fleet.parameters) {
        rule_groups.insert(state.control_plane_security_group_id);
    }
    rule_groups.extend(additional.iter().cloned());
    let groups: Vec<String> = rule_groups.iter().cloned().collect();
    let additional: Vec<String> = additional.into_iter().collect();
    let vpc_list: Vec<String> = vpc_ids.into_iter().collect();
    let (rules, cluster_groups, vpcs) = tokio::try_join!(
        try_join_all(
            groups
                .chunks(BATCH)
                .map(|ids| security_group_rules(clients, vec![filter("group-id", ids.to_vec())]))
        ),
        try_join_all(
            additional
                .chunks(BATCH)
                .map(|ids| security_groups(clients, filter("group-id", ids.to_vec())))
        ),
        try_join_all(
            vpc_list
                .chunks(BATCH)
                .map(|ids| describe_vpcs(clients, ids))
        ),
    )?;
    Ok(Prefetched {
        clusters,
        rule_groups,
        rules: rules.into_iter().flatten().collect(),
        cluster_groups: cluster_groups.into_iter().flatten().collect(),
        vpcs: vpcs
            .into_iter()
            .flatten()
            .map(|v| (v.id.clone(), v))
            .collect(),
    })
}

pub async fn observe_fleet(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
) -> Result<Fleet, AwsError> {
    // Someone else's parameters under the prefix name no cluster of ours:
    // only those with our owner tag are read.
    let (resolver, groups, rules, parameters) = tokio::try_join!(
        resolver_state(clients),
        our_security_groups(clients, owner),
        security_group_rules(
            clients,
            vec![filter(&format!("tag:{TAG_OWNER}"), [owner.id.clone()])]
        ),
        owned_parameters(clients, &config.ssm_prefix, owner),
    )?;
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
        prefetched: None,
    })
}
