//! One cluster's observation, in three rounds of concurrent calls.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::owner::Owner;
use crate::plan::{self, Observation};

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

/// Where and as whom a look reads: the clients of one account and region,
/// the configuration, and the owner whose resources are ours.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub clients: &'a Clients,
    pub config: &'a Config,
    pub owner: &'a Owner,
}

/// Observe everything the planner needs for one cluster, in three rounds of
/// concurrent calls. With `fleet`, the region-wide parts come from it
/// instead of being read again.
pub async fn observe_cluster(
    scope: Scope<'_>,
    cluster_name: &str,
    hinted_arn: Option<String>,
    fleet: Option<&Fleet>,
    detail: Detail,
) -> Result<Observation, AwsError> {
    let Scope {
        clients,
        config,
        owner,
    } = scope;
    // Round 1: nothing here depends on anything else.
    let mut obs = first_round(clients, config, owner, cluster_name, fleet).await?;
    obs.hinted_arn = hinted_arn;
    let state = plan::previous_state(config, &obs);
    let vpc_id = obs
        .cluster
        .as_ref()
        .and_then(|c| c.vpc_id.clone())
        .or_else(|| state.as_ref().map(|s| s.vpc_id.clone()));
    // Round 2: what depends on the cluster.
    let wants_details = obs
        .cluster
        .as_ref()
        .map(|c| !c.status.is_in_progress() || c.access_update.is_some())
        .unwrap_or(false);
    second_round(
        clients,
        config,
        owner,
        &mut obs,
        vpc_id.as_ref(),
        fleet,
        wants_details,
    )
    .await?;
    // Round 3: client VPCs (which may come from peering) and the outbound
    // VPC; and, unless the plumbing exists, what building it needs.
    if wants_details {
        obs.lean = detail == Detail::Auto && !plan::details_wanted(config, owner, &obs);
        third_round(clients, config, &mut obs, vpc_id.as_ref(), fleet, detail).await?;
    }
    Ok(obs)
}

/// The cluster, the region's Resolver state (what is ours of it), our
/// security groups and this cluster's parameters.
async fn first_round(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
    cluster_name: &str,
    fleet: Option<&Fleet>,
) -> Result<Observation, AwsError> {
    let own_path = format!("{}/{}", config.ssm_prefix, cluster_name);
    let (cluster, resolver, groups, parameters) = match fleet {
        Some(fleet) => {
            let prefetched = fleet
                .prefetched
                .as_ref()
                .and_then(|p| p.clusters.get(cluster_name));
            let cluster = match prefetched {
                Some(cluster) => cluster.clone(),
                None => describe_cluster(clients, cluster_name).await?,
            };
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
    let ours = keep_ours(config, owner, resolver);
    Ok(Observation {
        cluster_name: cluster_name.to_string(),
        cluster,
        security_groups: groups,
        parameters,
        endpoints: ours.endpoints,
        rules: ours.rules,
        associations: ours.associations,
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

/// Security group rules, peering, the other clusters recorded in the VPC,
/// the addresses of the VPC's inbound endpoints, and (tagged mode) the
/// cluster's additional groups.
async fn second_round(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
    obs: &mut Observation,
    vpc_id: Option<&String>,
    fleet: Option<&Fleet>,
    wants_details: bool,
) -> Result<(), AwsError> {
    let cluster_name = obs.cluster_name.clone();
    let cluster_name = cluster_name.as_str();
    let state = plan::previous_state(config, obs);
    // Rules on our groups (all of them when there is no fleet: our rules
    // are on our groups and on cluster groups only, so one call by group id
    // finds them all) and on the control-plane group.
    let mut rule_group_ids: BTreeSet<String> = obs
        .security_groups
        .iter()
        .filter(|g| fleet.is_none() || Some(&g.vpc_id) == vpc_id)
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
    let prefetched = fleet.and_then(|f| f.prefetched.as_ref());
    let cluster_groups = additional_groups(clients, prefetched, &additional);
    if let Some(state) = &state {
        rule_group_ids.insert(state.control_plane_security_group_id.clone());
    }
    let peering = async {
        match (vpc_id, config.discover_peered_vpcs && wants_details) {
            (Some(vpc), true) => peered_vpcs(clients, vpc).await,
            _ => Ok(Peers::default()),
        }
    };
    let rules = rules_on(clients, fleet, &rule_group_ids);
    let registry = async {
        match (vpc_id, fleet) {
            (Some(vpc), Some(fleet)) => Ok(registrations_in(
                recorded_states(&fleet.parameters),
                vpc,
                cluster_name,
            )),
            (Some(vpc), None) => registrations(clients, config, owner, vpc, cluster_name).await,
            (None, _) => Ok(Vec::new()),
        }
    };
    // Addresses of the VPC's inbound endpoints (already read in a fleet).
    let inbound_ids: Vec<String> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == Direction::Inbound && Some(&e.vpc_id) == vpc_id)
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

    Ok(())
}

/// The cluster's additional groups (tagged mode), from the prefetch when
/// it has them all.
async fn additional_groups(
    clients: &Clients,
    prefetched: Option<&Prefetched>,
    additional: &[String],
) -> Result<Vec<SecurityGroupView>, AwsError> {
    if additional.is_empty() {
        return Ok(Vec::new());
    }
    match prefetched.filter(|p| {
        additional
            .iter()
            .all(|id| p.cluster_groups.iter().any(|g| &g.id == id))
    }) {
        Some(p) => Ok(p
            .cluster_groups
            .iter()
            .filter(|g| additional.contains(&g.id))
            .cloned()
            .collect()),
        None => security_groups(clients, filter("group-id", additional.to_vec())).await,
    }
}

/// Every rule of ours (from the fleet), and the rules on `groups`: from
/// the prefetch when it read them all, else read now.
async fn rules_on(
    clients: &Clients,
    fleet: Option<&Fleet>,
    groups: &BTreeSet<String>,
) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
    let mut all = match fleet {
        Some(fleet) => fleet.owned_rules.clone(),
        None => Vec::new(),
    };
    if groups.is_empty() {
        return Ok(all);
    }
    let prefetched = fleet.and_then(|f| f.prefetched.as_ref());
    let on_groups = match prefetched.filter(|p| groups.is_subset(&p.rule_groups)) {
        Some(p) => p
            .rules
            .iter()
            .filter(|r| groups.contains(&r.group_id))
            .cloned()
            .collect(),
        None => security_group_rules(clients, vec![filter("group-id", groups.clone())]).await?,
    };
    let seen: BTreeSet<String> = all.iter().map(|r| r.id.clone()).collect();
    all.extend(on_groups.into_iter().filter(|r| !seen.contains(&r.id)));
    Ok(all)
}

/// The VPCs `ids`: those the sweep prefetched from it, the others read.
async fn vpcs_of(
    clients: &Clients,
    fleet: Option<&Fleet>,
    ids: &[String],
) -> Result<Vec<VpcView>, AwsError> {
    let known = fleet.and_then(|f| f.prefetched.as_ref()).map(|p| &p.vpcs);
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !known.is_some_and(|k| k.contains_key(*id)))
        .cloned()
        .collect();
    let mut vpcs = describe_vpcs(clients, &missing).await?;
    if let Some(known) = known {
        vpcs.extend(ids.iter().filter_map(|id| known.get(id)).cloned());
    }
    Ok(vpcs)
}

/// The published inbound addresses a new endpoint will ask for (`keep`,
/// empty unless it must be made again): which of them an interface holds.
async fn held_in(
    clients: &Clients,
    vpc_id: Option<&String>,
    keep: Vec<String>,
) -> Result<BTreeSet<String>, AwsError> {
    match vpc_id {
        Some(vpc) => addresses_held(clients, vpc, &keep).await,
        None => Ok(BTreeSet::new()),
    }
}

/// Client and outbound VPCs, the outbound endpoints' addresses, and unless
/// the observation is lean, the prerequisites and subnets building needs.
async fn third_round(
    clients: &Clients,
    config: &Config,
    obs: &mut Observation,
    vpc_id: Option<&String>,
    fleet: Option<&Fleet>,
    detail: Detail,
) -> Result<(), AwsError> {
    let cluster_subnet_ids = obs
        .cluster
        .as_ref()
        .map(|c| c.subnet_ids.clone())
        .unwrap_or_default();
    let full = !obs.lean;
    let dns = async {
        match (vpc_id, full) {
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
    let mut vpc_ids = plan::client_vpc_hint(config, obs);
    // The cluster VPC's own blocks, in the same call: the state records
    // those outside the private ranges, the only other place an inbound
    // address may be for `render` to publish it.
    if let Some(vpc) = vpc_id {
        if !vpc_ids.contains(vpc) {
            vpc_ids.push(vpc.clone());
        }
    }
    let outbound_vpc = plan::outbound_vpc_hint(config, obs);
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
    let client_vpcs = plan::client_vpc_hint(config, obs);
    let outbound_ids: Vec<String> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == Direction::Outbound && !e.is_going_away())
        .filter(|e| e.ips.is_none())
        .filter(|e| detail == Detail::Full || !client_vpcs.contains(&e.vpc_id))
        .map(|e| e.id.clone())
        .collect();
    let outbound_ips = try_join_all(outbound_ids.iter().map(|id| endpoint_ips(clients, id)));
    let keep = full.then(|| plan::addresses_to_keep(config, obs));
    let held = held_in(clients, vpc_id, keep.unwrap_or_default());
    let (vpcs, outbound_subnets, dns, subnets, outbound_ips, held) = tokio::try_join!(
        vpcs_of(clients, fleet, &vpc_ids),
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
    obs.vpcs = vpcs;
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
            id: id.into(),
            arn: format!("arn:{id}"),
            domain: "x.gr7.eu-west-1.eks.amazonaws.com".into(),
            rule_type: "FORWARD".into(),
            endpoint_id: None,
            targets: Vec::new(),
            creator_request_id: creator,
            name: id.into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
        }
    }

    fn association(rule_id: &str) -> AssociationView {
        AssociationView {
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
