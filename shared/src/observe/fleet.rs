//! What a sweep reads once for every account it serves.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::owner::{Owner, TAG_OWNER};

use super::*;

/// What a sweep reads once for every account and shares between the
/// clusters it reconciles: each account's Resolver state, our security
/// groups and rules there, the addresses of our endpoints; our parameters
/// (the deployment's). A few paginated calls per account, whatever the
/// number of clusters.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    /// What was read in each account (the deployment's own, and each spoke
    /// whose role could be assumed).
    pub accounts: BTreeMap<Account, AccountRead>,
    /// Every parameter of ours under the prefix.
    pub parameters: Vec<ParameterView>,
    /// What `prefetch` read for the clusters of a sweep, so that a look of
    /// its first pass makes no call of its own on a quiet fleet.
    pub prefetched: Option<Prefetched>,
}

/// One account's part of the fleet.
#[derive(Clone, Debug, Default)]
pub struct AccountRead {
    /// Its Resolver state (the rules: the deployment's account only).
    pub resolver: ResolverState,
    pub security_groups: Vec<SecurityGroupView>,
    /// Every security group rule there carrying our owner tag.
    pub owned_rules: Vec<SecurityGroupRuleView>,
}

impl Fleet {
    /// Every endpoint read, in every account.
    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointView> {
        self.accounts.values().flat_map(|a| &a.resolver.endpoints)
    }

    /// Every rule read (the deployment's).
    pub fn rules(&self) -> impl Iterator<Item = &RuleView> {
        self.accounts.values().flat_map(|a| &a.resolver.rules)
    }

    /// Every association read, in every account.
    pub fn associations(&self) -> impl Iterator<Item = &AssociationView> {
        self.accounts
            .values()
            .flat_map(|a| &a.resolver.associations)
    }

    /// Every security group of ours, in every account.
    pub fn security_groups(&self) -> impl Iterator<Item = &SecurityGroupView> {
        self.accounts.values().flat_map(|a| &a.security_groups)
    }

    /// Every security group rule of ours, in every account.
    pub fn owned_rules(&self) -> impl Iterator<Item = &SecurityGroupRuleView> {
        self.accounts.values().flat_map(|a| &a.owned_rules)
    }
}

/// The per-cluster reads of a sweep's first pass, made for the whole fleet
/// at once: each cluster described (concurrently, the one call per cluster
/// that no batch replaces), and per account the rules on every group a
/// look reads and the VPCs it needs, in batches of `BATCH` ids per call.
#[derive(Clone, Debug, Default)]
pub struct Prefetched {
    /// Each cluster; None: it does not exist.
    pub clusters: BTreeMap<ClusterId, Option<ClusterView>>,
    /// Per account, the groups whose rules were read, and the rules on them.
    pub rule_groups: BTreeMap<Account, (BTreeSet<String>, Vec<SecurityGroupRuleView>)>,
    /// The clusters' additional groups, described (tagged mode only).
    pub cluster_groups: Vec<SecurityGroupView>,
    /// VPCs described: the clusters', the configured client and outbound
    /// VPCs and those the clusters' tags name.
    pub vpcs: BTreeMap<VpcRef, VpcView>,
}

/// Ids per filter of one batched read.
const BATCH: usize = 200;

/// Describe every cluster of `clusters` and read, in batches, what their
/// looks need beyond the fleet.
pub async fn prefetch(
    scope: Scope<'_>,
    fleet: &Fleet,
    clusters: &[ClusterId],
    concurrency: usize,
) -> Result<Prefetched, AwsError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let reader = Live { scope };
    let described: Vec<(ClusterId, Option<ClusterView>)> = stream::iter(clusters.iter())
        .map(|cluster| async move { reader.cluster(cluster).await.map(|c| (cluster.clone(), c)) })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    batch_reads(scope, fleet, described.into_iter().collect()).await
}

/// The batched reads of `prefetch` for clusters already described: again
/// after the sweep's shared pass has made groups and rules. Only the
/// accounts of the fleet are read.
pub async fn batch_reads(
    scope: Scope<'_>,
    fleet: &Fleet,
    clusters: BTreeMap<ClusterId, Option<ClusterView>>,
) -> Result<Prefetched, AwsError> {
    let Scope { config, .. } = scope;
    let home = scope.home_id;
    let mut rule_groups: BTreeMap<Account, BTreeSet<String>> = BTreeMap::new();
    for group in fleet.security_groups() {
        rule_groups
            .entry(group.account.clone())
            .or_default()
            .insert(group.id.clone());
    }
    let mut additional: BTreeMap<Account, BTreeSet<String>> = BTreeMap::new();
    let mut vpcs: BTreeSet<VpcRef> = config
        .client_vpc_ids
        .iter()
        .map(|v| v.resolve(&Account::Home, home))
        .collect();
    vpcs.extend(config.outbound_vpc_id.iter().map(|id| VpcRef::home(id)));
    for (id, cluster) in &clusters {
        let Some(cluster) = cluster else { continue };
        let account = &id.account;
        let groups = rule_groups.entry(account.clone()).or_default();
        groups.extend(cluster.control_plane_group().map(str::to_string));
        if config.api_rules_group == crate::config::ApiRulesGroup::Tagged {
            groups.extend(cluster.security_group_ids.iter().cloned());
            additional
                .entry(account.clone())
                .or_default()
                .extend(cluster.security_group_ids.iter().cloned());
        }
        vpcs.extend(cluster.vpc_id.iter().map(|v| VpcRef {
            account: account.clone(),
            id: v.clone(),
        }));
        if let Ok(tags) = crate::config::ClusterTags::parse(&cluster.name, &cluster.tags, config) {
            vpcs.extend(tags.client_vpc_ids.iter().map(|v| v.resolve(account, home)));
        }
    }
    for (cluster, state) in recorded_states(&config.ssm_prefix, &fleet.parameters) {
        rule_groups
            .entry(cluster.account)
            .or_default()
            .insert(state.control_plane_security_group_id);
    }
    // Only what the fleet's accounts hold is read here; a look reads the
    // rest itself.
    rule_groups.retain(|a, _| fleet.accounts.contains_key(a));
    additional.retain(|a, _| fleet.accounts.contains_key(a));
    vpcs.retain(|v| fleet.accounts.contains_key(&v.account));
    let rules = try_join_all(rule_groups.into_iter().map(|(account, groups)| async move {
        let clients = scope.clients(&account).await?;
        let ids: Vec<String> = groups.iter().cloned().collect();
        let read = try_join_all(
            ids.chunks(BATCH)
                .map(|ids| security_group_rules(&clients, vec![filter("group-id", ids.to_vec())])),
        )
        .await
        .map_err(scope.in_account(&account))?;
        Ok::<_, AwsError>((account, (groups, read.into_iter().flatten().collect())))
    }));
    let groups = try_join_all(additional.into_iter().map(|(account, ids)| async move {
        let clients = scope.clients(&account).await?;
        let ids: Vec<String> = ids.into_iter().collect();
        let read = try_join_all(
            ids.chunks(BATCH)
                .map(|ids| security_groups(&clients, filter("group-id", ids.to_vec()))),
        )
        .await
        .map_err(scope.in_account(&account))?;
        Ok::<_, AwsError>(read.into_iter().flatten().collect::<Vec<_>>())
    }));
    let vpc_list: Vec<VpcRef> = vpcs.into_iter().collect();
    let live = Live { scope };
    let described = try_join_all(vpc_list.chunks(BATCH).map(|chunk| live.vpcs(chunk)));
    let (rules, groups, described) = tokio::try_join!(rules, groups, described)?;
    Ok(Prefetched {
        clusters,
        rule_groups: rules.into_iter().collect(),
        cluster_groups: groups.into_iter().flatten().collect(),
        vpcs: described
            .into_iter()
            .flatten()
            .map(|v| {
                (
                    VpcRef {
                        account: v.account.clone(),
                        id: v.id.clone(),
                    },
                    v,
                )
            })
            .collect(),
    })
}

/// One account's part of the fleet: its Resolver state, our groups, the
/// rules carrying our owner tag, and the addresses of our endpoints
/// (inbound: published and targeted; outbound: admitted on the inbound
/// groups) and of the configured one.
pub async fn observe_account(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
) -> Result<AccountRead, AwsError> {
    let (resolver, groups, rules) = tokio::try_join!(
        resolver_state(clients),
        our_security_groups(clients, owner),
        security_group_rules(
            clients,
            vec![filter(&format!("tag:{TAG_OWNER}"), [owner.id.clone()])]
        ),
    )?;
    let mut resolver = resolver;
    let ours: Vec<String> = resolver
        .endpoints
        .iter()
        .filter(|e| {
            owner.parse_creator_id(&e.creator_request_id).is_some()
                || config.outbound_endpoint_id.as_deref() == Some(e.id.as_str())
        })
        .filter(|e| e.direction == Direction::Inbound || !e.is_going_away())
        .map(|e| e.id.clone())
        .collect();
    let ips = try_join_all(ours.iter().map(|id| endpoint_ips(clients, id))).await?;
    let mut by_id: BTreeMap<String, Vec<EndpointIp>> = ours.into_iter().zip(ips).collect();
    for endpoint in &mut resolver.endpoints {
        if let Some(ips) = by_id.remove(&endpoint.id) {
            endpoint.ips = Some(ips);
        }
    }
    Ok(AccountRead {
        resolver,
        security_groups: groups,
        owned_rules: rules,
    })
}

/// The fleet of `accounts` (the deployment's own always among them): each
/// account read concurrently, and our parameters. An account that cannot
/// be read (its role cannot be assumed, a permission is missing) is left
/// out and returned with its error, the others going on; the deployment's
/// own is the one whose failure ends the read.
pub async fn observe_fleet(
    scope: Scope<'_>,
    accounts: &[Account],
) -> Result<(Fleet, Vec<(Account, AwsError)>), AwsError> {
    let Scope { config, owner, .. } = scope;
    let reads = futures::future::join_all(accounts.iter().map(|account| async move {
        let read = async {
            let clients = scope.clients(account).await?;
            observe_account(&clients, config, owner)
                .await
                .map_err(scope.in_account(account))
        };
        (account.clone(), read.await)
    }));
    // Someone else's parameters under the prefix name no cluster of ours:
    // only those with our owner tag are read.
    let parameters = owned_parameters(scope.home(), &config.ssm_prefix, owner);
    let (reads, parameters) = tokio::join!(reads, parameters);
    let parameters = parameters?;
    let mut fleet = Fleet {
        parameters,
        ..Fleet::default()
    };
    let mut failed = Vec::new();
    for (account, read) in reads {
        match read {
            Ok(read) => {
                fleet.accounts.insert(account, read);
            }
            Err(e) if account.is_home() => return Err(e),
            Err(e) => failed.push((account, e)),
        }
    }
    Ok((fleet, failed))
}
