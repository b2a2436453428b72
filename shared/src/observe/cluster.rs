//! One cluster's observation, in three rounds of concurrent reads through
//! a `Reader` (AWS itself, or a sweep's fleet read).
//!
//! | round | reads                                                              |
//! |-------|--------------------------------------------------------------------|
//! | 1     | the cluster, the Resolver state and our security groups of the     |
//! |       | accounts involved (the deployment's, the cluster's, the configured |
//! |       | client VPCs'), the cluster's parameters                            |
//! | 2     | the rules on the groups that matter, the other clusters recorded   |
//! |       | in the VPC, the inbound endpoints' addresses, the VPCs named so far|
//! |       | (client, cluster, outbound) and the associations in the accounts   |
//! |       | of tagged client VPCs, peering, additional groups                  |
//! | 3     | what only building needs (prerequisites, subnets, addresses to     |
//! |       | keep), outbound addresses, VPCs that peering added                 |
//!
//! Each read is made in the account that owns what it reads; in a
//! single-account deployment every account is the deployment's own, and a
//! look makes the calls it always did.
//!
//! A look at plumbing that exists and needs no change reads nothing in the
//! third round: its reads are made only when wanted.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::observation::Observation;
use crate::owner::Owner;

use super::*;

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
/// concurrent reads through `reader`, each resource in the account that
/// owns it: the cluster's (its VPC, inbound endpoint, groups), the
/// deployment's own (outbound endpoint, rules, parameters) and each client
/// VPC's (its description, the rule's association with it).
pub async fn observe_cluster(
    reader: &impl Reader,
    cluster: &ClusterId,
    hinted_arn: Option<String>,
    detail: Detail,
) -> Result<Observation, AwsError> {
    let Scope { config, owner, .. } = reader.scope();
    let mut obs = first_round(reader, cluster).await?;
    obs.hinted_arn = hinted_arn;
    let vpc = obs.cluster_vpc().or_else(|| {
        obs.previous_state(config).map(|s| VpcRef {
            account: cluster.account.clone(),
            id: s.vpc_id,
        })
    });
    // While EKS creates the cluster, or updates anything but its access,
    // only the cluster is decided on: nothing is built yet.
    let wants_details = obs
        .cluster
        .as_ref()
        .map(|c| !c.status.is_in_progress() || c.access_update.is_some())
        .unwrap_or(false);
    second_round(reader, &mut obs, vpc.as_ref(), wants_details).await?;
    if wants_details {
        obs.lean = detail == Detail::Auto && !obs.details_wanted(config, owner);
        third_round(reader, &mut obs, vpc.as_ref(), detail).await?;
    }
    Ok(obs)
}

/// The accounts whose Resolver state a look of `cluster` reads first: the
/// deployment's own, the cluster's, and those of the configured client
/// VPCs (their associations).
fn first_accounts(scope: &Scope<'_>, cluster: &ClusterId) -> Vec<Account> {
    let mut accounts = vec![Account::Home, cluster.account.clone()];
    accounts.extend(
        scope
            .config
            .client_vpc_ids
            .iter()
            .map(|v| v.resolve(&Account::Home, scope.home_id).account),
    );
    let mut seen = BTreeSet::new();
    accounts.retain(|a| seen.insert(a.clone()));
    // An account this deployment does not serve is not read (the cluster's
    // is, to take away what was made there before).
    accounts.retain(|a| match a {
        Account::Home => true,
        Account::Id(id) => *a == cluster.account || scope.served.contains(id),
    });
    accounts
}

/// The Resolver state of `accounts`, merged: the endpoints of the
/// deployment's account and the cluster's, the rules (the deployment's),
/// the associations of every account read.
fn merge_regions(
    cluster: &ClusterId,
    read: Vec<(Account, (ResolverState, Vec<SecurityGroupView>))>,
) -> (ResolverState, Vec<SecurityGroupView>) {
    let mut merged = ResolverState::default();
    let mut groups = Vec::new();
    for (account, (state, account_groups)) in read {
        let kept = account.is_home() || account == cluster.account;
        if kept {
            merged.endpoints.extend(state.endpoints);
            groups.extend(account_groups);
        }
        merged.rules.extend(state.rules);
        merged.associations.extend(state.associations);
    }
    (merged, groups)
}

/// The cluster, the Resolver state of the accounts it involves (what is
/// ours of it), our security groups and this cluster's parameters.
async fn first_round(reader: &impl Reader, cluster: &ClusterId) -> Result<Observation, AwsError> {
    let scope = reader.scope();
    let Scope { config, owner, .. } = scope;
    let accounts = first_accounts(&scope, cluster);
    let regions = try_join_all(accounts.iter().map(|account| async move {
        Ok::<_, AwsError>((account.clone(), reader.region(account).await?))
    }));
    let (described, regions, parameters) =
        tokio::try_join!(reader.cluster(cluster), regions, reader.parameters(cluster),)?;
    let (resolver, groups) = merge_regions(cluster, regions);
    let ours = keep_ours(config, owner, resolver);
    Ok(Observation {
        cluster_name: cluster.name.clone(),
        account: cluster.account.clone(),
        home_id: scope.home_id.map(str::to_string),
        served: scope.served.clone(),
        cluster: described,
        security_groups: groups,
        parameters,
        endpoints: ours.endpoints,
        rules: ours.rules,
        associations: ours.associations,
        accounts_read: accounts,
        ..Observation::default()
    })
}

/// What of the region's Resolver state is ours: endpoints and rules by
/// CreatorRequestId (and the configured outbound endpoint), the
/// associations of our rules.
pub fn keep_ours(config: &Config, owner: &Owner, resolver: ResolverState) -> ResolverState {
    let endpoints = resolver
        .endpoints
        .into_iter()
        .filter(|e| {
            owner.parse_creator_id(&e.creator_request_id).is_some()
                || config.outbound_endpoint_id.as_deref() == Some(e.id.as_str())
        })
        .collect();
    let rules: Vec<RuleView> = resolver
        .rules
        .into_iter()
        .filter(|r| owner.parse_creator_id(&r.creator_request_id).is_some())
        .collect();
    let our_rule_ids: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let associations = resolver
        .associations
        .into_iter()
        .filter(|a| our_rule_ids.contains(a.rule_id.as_str()))
        .collect();
    ResolverState {
        endpoints,
        rules,
        associations,
    }
}

/// The VPCs a look describes before peering is known: the client VPCs
/// configured and tagged, the cluster VPC (the state records its blocks
/// outside the private ranges, the only other place an inbound address may
/// be for `render` to publish it) and the outbound VPC.
fn vpcs_to_describe(config: &Config, obs: &Observation, vpc: Option<&VpcRef>) -> Vec<VpcRef> {
    let mut vpcs = obs.client_vpcs(config);
    vpcs.extend(vpc.cloned());
    vpcs.extend(obs.outbound_vpc(config).map(|id| VpcRef::home(&id)));
    let mut seen = BTreeSet::new();
    vpcs.retain(|v| seen.insert(v.clone()));
    // An account this deployment does not serve is not read (the planner
    // says it is not served).
    vpcs.retain(|v| obs.serves(&v.account));
    vpcs
}

/// The associations of our rules in the accounts of client VPCs that the
/// first round did not read (those the cluster's tags or peering name).
async fn more_associations(
    reader: &impl Reader,
    obs: &Observation,
    vpcs: &[VpcRef],
) -> Result<Vec<AssociationView>, AwsError> {
    let mut accounts: Vec<Account> = vpcs
        .iter()
        .map(|v| v.account.clone())
        .filter(|a| !obs.accounts_read.contains(a) && obs.serves(a))
        .collect();
    accounts.sort();
    accounts.dedup();
    let reads = try_join_all(accounts.iter().map(|a| reader.region(a))).await?;
    let ours: BTreeSet<&str> = obs.rules.iter().map(|r| r.id.as_str()).collect();
    Ok(reads
        .into_iter()
        .flat_map(|(state, _)| state.associations)
        .filter(|a| ours.contains(a.rule_id.as_str()))
        .collect())
}

/// Security group rules, peering, the other clusters recorded in the VPC,
/// the addresses of the VPC's inbound endpoints, the VPCs named so far,
/// and (tagged mode) the cluster's additional groups, each in its account.
async fn second_round(
    reader: &impl Reader,
    obs: &mut Observation,
    vpc: Option<&VpcRef>,
    wants_details: bool,
) -> Result<(), AwsError> {
    let scope = reader.scope();
    let config = scope.config;
    let cluster = obs.cluster_id();
    let here = scope.clients(&cluster.account).await?;
    let in_here = scope.in_account(&cluster.account);
    let state = obs.previous_state(config);
    // The rules on the control-plane group (and the one the state
    // records), and with the 443 rules on a tagged additional group, the
    // cluster's additional groups and the rules on them.
    let mut rule_groups: BTreeSet<String> = BTreeSet::new();
    rule_groups.extend(
        obs.cluster
            .as_ref()
            .and_then(|c| c.control_plane_group())
            .map(str::to_string),
    );
    rule_groups.extend(state.map(|s| s.control_plane_security_group_id));
    let additional: Vec<String> = match (&obs.cluster, config.api_rules_group) {
        (Some(c), crate::config::ApiRulesGroup::Tagged) => c.security_group_ids.clone(),
        _ => Vec::new(),
    };
    rule_groups.extend(additional.iter().cloned());
    let vpc_id = vpc.map(|v| v.id.as_str());
    let rules = reader.group_rules(&cluster.account, &obs.security_groups, vpc_id, rule_groups);
    let peering = async {
        match (vpc_id, config.discover_peered_vpcs && wants_details) {
            (Some(vpc), true) => peered_vpcs(&here, vpc).await.map_err(&in_here),
            _ => Ok(Peers::default()),
        }
    };
    let registry = async {
        match vpc {
            Some(vpc) => reader.registrations(vpc, &cluster).await,
            None => Ok(Vec::new()),
        }
    };
    // Addresses of the VPC's inbound endpoints (a fleet has them).
    let inbound_ids: Vec<String> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == Direction::Inbound && Some(e.vpc_id.as_str()) == vpc_id)
        .filter(|e| e.ips.is_none())
        .map(|e| e.id.clone())
        .collect();
    let ips = async {
        try_join_all(inbound_ids.iter().map(|id| endpoint_ips(&here, id)))
            .await
            .map_err(&in_here)
    };
    let vpcs = if wants_details {
        vpcs_to_describe(config, obs, vpc)
    } else {
        Vec::new()
    };
    let (peered, sg_rules, registrations, ips, cluster_groups, described, associations) = tokio::try_join!(
        peering,
        rules,
        registry,
        ips,
        reader.groups(&cluster.account, &additional),
        reader.vpcs(&vpcs),
        more_associations(reader, obs, &vpcs),
    )?;
    obs.cluster_groups = cluster_groups;
    note_peers(obs, peered);
    obs.security_group_rules = sg_rules;
    obs.registrations = registrations;
    obs.vpcs = described;
    obs.associations.extend(associations);
    obs.accounts_read
        .extend(vpcs.iter().map(|v| v.account.clone()));
    obs.accounts_read.sort();
    obs.accounts_read.dedup();
    let mut ips_by_endpoint: BTreeMap<String, Vec<EndpointIp>> =
        inbound_ids.into_iter().zip(ips).collect();
    for endpoint in &mut obs.endpoints {
        if let Some(ips) = ips_by_endpoint.remove(&endpoint.id) {
            endpoint.ips = Some(ips);
        }
    }
    Ok(())
}

/// The cluster VPC's peers: those of its own account, and of another
/// account this deployment serves, are client VPCs (when discovering);
/// the others are left out with a warning.
fn note_peers(obs: &mut Observation, peers: Peers) {
    let own = obs.account.clone();
    obs.peered_vpcs = peers
        .same_account
        .into_iter()
        .map(|id| VpcRef {
            account: own.clone(),
            id,
        })
        .collect();
    for (id, account) in peers.other_accounts {
        let account_ref = Account::of(&account, obs.home_id.as_deref());
        if obs.serves(&account_ref) {
            obs.peered_vpcs.push(VpcRef {
                account: account_ref,
                id,
            });
        } else {
            obs.other_account_peers.push((id, account));
        }
    }
}

/// The published inbound addresses a new endpoint will ask for (`keep`,
/// empty unless it must be made again): which of them an interface holds.
async fn held_in(
    clients: &Clients,
    vpc_id: Option<&str>,
    keep: Vec<String>,
) -> Result<BTreeSet<String>, AwsError> {
    match vpc_id {
        Some(vpc) if !keep.is_empty() => addresses_held(clients, vpc, &keep).await,
        _ => Ok(BTreeSet::new()),
    }
}

/// The outbound endpoints (the deployment's) whose addresses a look reads:
/// where forwarded queries come from, which the inbound group must admit.
/// Needed only for one outside this cluster's client VPCs (whose CIDR
/// blocks are all admitted, and hold every address of an endpoint in
/// them), and for a full look (verify --path walks them).
fn outbound_to_read(config: &Config, obs: &Observation, detail: Detail) -> Vec<String> {
    let client_vpcs = obs.client_vpcs(config);
    obs.endpoints
        .iter()
        .filter(|e| e.direction == Direction::Outbound && !e.is_going_away())
        .filter(|e| e.ips.is_none())
        .filter(|e| {
            detail == Detail::Full
                || !client_vpcs
                    .iter()
                    .any(|v| v.id == e.vpc_id && v.account == e.account)
        })
        .map(|e| e.id.clone())
        .collect()
}

/// The VPCs that peering added, the outbound endpoints' addresses, and
/// unless the observation is lean, the prerequisites and subnets building
/// needs.
async fn third_round(
    reader: &impl Reader,
    obs: &mut Observation,
    vpc: Option<&VpcRef>,
    detail: Detail,
) -> Result<(), AwsError> {
    let scope = reader.scope();
    let config = scope.config;
    let hub = scope.home();
    let here = scope.clients(&obs.account).await?;
    let in_here = scope.in_account(&obs.account);
    let vpc_id = vpc.map(|v| v.id.as_str());
    let cluster_subnet_ids = obs
        .cluster
        .as_ref()
        .map(|c| c.subnet_ids.clone())
        .unwrap_or_default();
    let full = !obs.lean;
    let dns = async {
        match (vpc_id, full) {
            (Some(vpc), true) => vpc_dns(&here, vpc).await.map(Some).map_err(&in_here),
            _ => Ok(None),
        }
    };
    let subnets = async {
        if full && !cluster_subnet_ids.is_empty() {
            describe_subnets(&here, vec![filter("subnet-id", cluster_subnet_ids.clone())])
                .await
                .map_err(&in_here)
        } else {
            Ok(Vec::new())
        }
    };
    // Peering may have added client VPCs (and so an outbound VPC) that the
    // second round could not know of.
    let described: BTreeSet<VpcRef> = obs
        .vpcs
        .iter()
        .map(|v| VpcRef {
            account: v.account.clone(),
            id: v.id.clone(),
        })
        .collect();
    let more_vpcs: Vec<VpcRef> = vpcs_to_describe(config, obs, vpc)
        .into_iter()
        .filter(|v| !described.contains(v))
        .collect();
    let outbound_vpc = obs.outbound_vpc(config);
    let needs_outbound_subnets =
        full && outbound_vpc.is_some() && config.outbound_endpoint_id.is_none();
    let outbound_subnets = async {
        match (&outbound_vpc, needs_outbound_subnets) {
            (Some(vpc), true) => describe_subnets(hub, vec![filter("vpc-id", [vpc.clone()])]).await,
            _ => Ok(Vec::new()),
        }
    };
    let outbound_ids = outbound_to_read(config, obs, detail);
    let outbound_ips = try_join_all(outbound_ids.iter().map(|id| endpoint_ips(hub, id)));
    let keep = if full {
        obs.addresses_to_keep(config)
    } else {
        Vec::new()
    };
    let held = async { held_in(&here, vpc_id, keep).await.map_err(&in_here) };
    let (vpcs, associations, outbound_subnets, dns, subnets, outbound_ips, held) = tokio::try_join!(
        reader.vpcs(&more_vpcs),
        more_associations(reader, obs, &more_vpcs),
        outbound_subnets,
        dns,
        subnets,
        outbound_ips,
        held
    )?;
    obs.addresses_in_use = held;
    let mut by_endpoint: BTreeMap<String, Vec<EndpointIp>> =
        outbound_ids.into_iter().zip(outbound_ips).collect();
    for endpoint in &mut obs.endpoints {
        if let Some(ips) = by_endpoint.remove(&endpoint.id) {
            endpoint.ips = Some(ips);
        }
    }
    obs.vpcs.extend(vpcs);
    obs.associations.extend(associations);
    obs.outbound_vpc_subnets = outbound_subnets;
    obs.cluster_vpc_dns = dns;
    obs.cluster_subnets = subnets;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: &str, creator: String) -> EndpointView {
        EndpointView {
            account: Account::Home,
            id: id.into(),
            arn: format!("arn:{id}"),
            direction: Direction::Outbound,
            vpc_id: "vpc-1".into(),
            security_group_ids: Vec::new(),
            status: "OPERATIONAL".into(),
            status_message: String::new(),
            creator_request_id: creator,
            name: id.into(),
            creation_time: String::new(),
            ip_count: 2,
            endpoint_type: EndpointType::Ipv4,
            ips: None,
        }
    }

    fn rule(id: &str, creator: String) -> RuleView {
        RuleView {
            account: Account::Home,
            id: id.into(),
            arn: format!("arn:{id}"),
            domain: "x.gr7.eu-west-1.eks.amazonaws.com".into(),
            endpoint_id: None,
            targets: Vec::new(),
            creator_request_id: creator,
            name: id.into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
            shared: false,
        }
    }

    fn association(rule_id: &str) -> AssociationView {
        AssociationView {
            account: Account::Home,
            id: format!("assoc-{rule_id}"),
            rule_id: rule_id.into(),
            vpc_id: "vpc-2".into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
        }
    }

    #[test]
    fn keeps_what_is_ours_and_the_configured_outbound_endpoint() {
        let owner = Owner::new("team-a");
        let other = Owner::new("team-b");
        let config = Config {
            outbound_endpoint_id: Some("rslvr-out-shared".into()),
            ..Config::default()
        };
        let region = ResolverState {
            endpoints: vec![
                endpoint("rslvr-out-ours", owner.outbound_creator_id("vpc-1", 1)),
                endpoint("rslvr-out-theirs", other.outbound_creator_id("vpc-1", 1)),
                endpoint("rslvr-out-shared", "console".into()),
                endpoint("rslvr-out-hand", "hand-made".into()),
            ],
            rules: vec![
                rule("rslvr-rr-ours", owner.rule_creator_id("prod", "x", 1)),
                rule("rslvr-rr-theirs", other.rule_creator_id("prod", "x", 1)),
            ],
            associations: vec![association("rslvr-rr-ours"), association("rslvr-rr-theirs")],
        };
        let ours = keep_ours(&config, &owner, region);
        assert_eq!(
            ours.endpoints
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["rslvr-out-ours", "rslvr-out-shared"]
        );
        assert_eq!(
            ours.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["rslvr-rr-ours"]
        );
        assert_eq!(
            ours.associations
                .iter()
                .map(|a| a.rule_id.as_str())
                .collect::<Vec<_>>(),
            ["rslvr-rr-ours"]
        );
    }
}
