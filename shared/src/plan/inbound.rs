//! The VPC's inbound endpoint: its group's DNS rules, its addresses.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::*;

/// The addresses that queries forwarded to `inbound` come from: the live
/// IPs of every outbound endpoint whose rules (ours) target it, and of the
/// one this cluster's rule goes through. An outbound endpoint this plan
/// creates has no addresses yet: the next look finds them.
pub(super) fn forwarding_sources(
    obs: &Observation,
    inbound: Option<&EndpointView>,
    outbound: Option<&EndpointRef>,
) -> BTreeSet<IpNet> {
    let mut endpoint_ids: BTreeSet<&str> = BTreeSet::new();
    if let Some(EndpointRef::Existing(id)) = outbound {
        endpoint_ids.insert(id.as_str());
    }
    if let Some(inbound) = inbound {
        let targets: BTreeSet<String> =
            inbound.ipv4s().into_iter().chain(inbound.ipv6s()).collect();
        for rule in obs.rules.iter().filter(|r| !r.status.is_going_away()) {
            if rule.targets.iter().any(|t| targets.contains(&t.ip)) {
                if let Some(id) = &rule.endpoint_id {
                    endpoint_ids.insert(id.as_str());
                }
            }
        }
    }
    obs.endpoints
        .iter()
        .filter(|e| e.direction == Direction::Outbound && endpoint_ids.contains(e.id.as_str()))
        .flat_map(|e| e.live_ips())
        .flat_map(|ip| ip.ip.iter().chain(ip.ipv6.iter()))
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(IpNet::from)
        .collect()
}

/// An endpoint the plumbing uses: waited for while AWS works on it, a
/// problem when AWS reports it failed (`repair`: what the plan does).
pub(super) fn note_endpoint_status(
    endpoint: &EndpointView,
    m: &mut Planned,
    repair: Option<String>,
) {
    if endpoint.status.is_in_progress() {
        m.waits.push(Wait::Endpoint {
            account: endpoint.account.clone(),
            endpoint_id: endpoint.id.clone(),
            direction: endpoint.direction,
            status: endpoint.status.clone(),
        });
    }
    if endpoint.status.is_failed() {
        m.problems.push(Problem {
            resource: format!("{} endpoint {}", endpoint.direction, endpoint.id),
            status: endpoint.status.to_string(),
            message: endpoint.status_message.clone(),
            repair,
        });
    }
}

/// Choose `count` subnets of `vpc_id`, spread over distinct AZs first
/// (round-robin by AZ, then by subnet id), deterministic.
pub fn pick_subnets(subnets: &[SubnetView], vpc_id: &str, count: usize) -> Vec<String> {
    let mut by_az: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for subnet in subnets.iter().filter(|s| s.vpc_id == vpc_id) {
        by_az
            .entry(subnet.az.as_str())
            .or_default()
            .push(subnet.id.as_str());
    }
    for ids in by_az.values_mut() {
        ids.sort();
        ids.dedup();
    }
    let mut order = Vec::new();
    let depth = by_az.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..depth {
        for ids in by_az.values() {
            if let Some(id) = ids.get(i) {
                order.push(id.to_string());
            }
        }
    }
    if order.is_empty() {
        return order;
    }
    (0..count).map(|i| order[i % order.len()].clone()).collect()
}

/// The subnets of a new inbound endpoint and the address to ask for in
/// each: first the published addresses that no interface holds, each in the
/// subnet whose block holds it; then subnets of the AZs not used yet, then
/// any (`pick_subnets`), with AWS choosing their addresses. Only subnets
/// with an IPv6 block when `dual_stack`.
pub fn new_endpoint_addresses(
    config: &Config,
    obs: &Observation,
    vpc_id: &str,
    count: usize,
    dual_stack: bool,
) -> (Vec<String>, Vec<Option<String>>) {
    let usable = usable_subnets(obs, dual_stack);
    let mut subnets = Vec::new();
    let mut ips = Vec::new();
    let mut azs = BTreeSet::new();
    for ip in obs.addresses_to_keep(config) {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            continue;
        };
        if subnets.len() == count || obs.addresses_in_use.contains(&ip) {
            continue;
        }
        let holder = usable
            .iter()
            .find(|s| s.vpc_id == vpc_id && s.cidr.is_some_and(|c| c.contains(&addr)));
        if let Some(subnet) = holder {
            subnets.push(subnet.id.clone());
            ips.push(Some(ip));
            azs.insert(subnet.az.clone());
        }
    }
    let unused: Vec<SubnetView> = usable
        .iter()
        .filter(|s| !azs.contains(&s.az))
        .cloned()
        .collect();
    let mut rest = pick_subnets(&unused, vpc_id, count - subnets.len());
    if rest.is_empty() {
        rest = pick_subnets(&usable, vpc_id, count - subnets.len());
    }
    ips.extend(rest.iter().map(|_| None));
    subnets.extend(rest);
    (subnets, ips)
}

/// The VPC's inbound endpoint, shared by every managed cluster of the VPC:
/// its group (made when missing) admitting 53 from every CIDR of every
/// cluster that uses it and from the addresses forwarded queries come from,
/// the endpoint itself (made, or brought to the configured addresses), and
/// duplicates from a lost race removed once no rule of ours forwards to
/// them.
pub(super) fn plan_inbound<'a>(
    config: &Config,
    owner: &Owner,
    obs: &'a Observation,
    d: &Desired,
    outbound: Option<&EndpointRef>,
) -> Result<(Planned, Inbound<'a>), Invalid> {
    let mut m = Planned::default();
    let group = match find_group(owner, obs, &d.vpc_id, Direction::Inbound) {
        Some(sg) => GroupRef::Existing(sg.id.clone()),
        None => {
            m.actions.push(Action::CreateSecurityGroup {
                account: obs.account.clone(),
                role: Direction::Inbound,
                vpc_id: d.vpc_id.clone(),
                name: owner.security_group_name(Direction::Inbound),
            });
            GroupRef::New(Direction::Inbound)
        }
    };
    let candidates = live_endpoints(owner, obs, Direction::Inbound, Some(&d.vpc_id));
    let endpoint = candidates.first().copied();
    let permissions = dns_permissions(obs, d, endpoint, outbound);
    let (ingress, _) = reconcile_ingress(
        owner,
        obs,
        &group,
        &permissions,
        |rule| !rule.tags.contains_key(TAG_CLUSTER),
        None,
        &d.vpc_id,
    );
    m.actions.extend(ingress);
    let mut found = Inbound {
        endpoint,
        ips: None,
        ipv6: None,
        dual_stack: false,
    };
    let endpoint_type = inbound_type(config, obs, d, endpoint)?;
    let dual_stack = endpoint_type == EndpointType::DualStack;
    found.dual_stack = dual_stack;
    match endpoint {
        None => {
            let count = config.inbound_ips as usize;
            let (subnet_ids, ips) =
                new_endpoint_addresses(config, obs, &d.vpc_id, count, dual_stack);
            let ipv6s = if dual_stack {
                ipv6_to_ask(config, obs, &subnet_ids)
            } else {
                Vec::new()
            };
            m.actions.push(Action::CreateEndpoint {
                account: obs.account.clone(),
                direction: Direction::Inbound,
                vpc_id: d.vpc_id.clone(),
                group,
                subnet_ids,
                ips,
                endpoint_type,
                ipv6s,
            })
        }
        Some(endpoint) => {
            let retyped = endpoint.endpoint_type != endpoint_type && endpoint.ips.is_some();
            if retyped {
                m.actions.push(Action::ChangeEndpointType {
                    account: endpoint.account.clone(),
                    endpoint_id: endpoint.id.clone(),
                    from: endpoint.endpoint_type,
                    to: endpoint_type,
                    endpoint_ready: endpoint.status.accepts_ip_changes(),
                });
            }
            let resized = m.take(plan_endpoint_ips(config, obs, endpoint, dual_stack));
            if !resized && !retyped {
                found.ips = Some(endpoint.ipv4s());
                found.ipv6 = Some(endpoint.ipv6s());
            }
        }
    }
    for surplus in candidates.iter().skip(1) {
        let ips = surplus.ipv4s();
        let in_use = obs
            .rules
            .iter()
            .any(|r| r.targets.iter().any(|t| ips.contains(&t.ip)));
        if !in_use {
            m.actions.push(delete_endpoint(surplus, &obs.rules));
        }
    }
    Ok((m, found))
}

/// The type the VPC's inbound endpoint is to have (`stack::choose`), from
/// the subnets its addresses are in, or would go in. A lean observation
/// read no subnets: it is lean only when the type is right already
/// (`Observation::details_wanted`).
fn inbound_type(
    config: &Config,
    obs: &Observation,
    d: &Desired,
    endpoint: Option<&EndpointView>,
) -> Result<EndpointType, Invalid> {
    let current = endpoint.map(|e| e.endpoint_type);
    if obs.lean {
        return Ok(current.unwrap_or_default());
    }
    let has_ipv6 = |id: &str| {
        obs.cluster_subnets
            .iter()
            .any(|s| s.id == id && s.ipv6_cidr.is_some())
    };
    let subnets: Vec<(String, bool)> = match endpoint.and_then(|e| e.ips.as_ref()) {
        Some(ips) if !ips.is_empty() => ips
            .iter()
            .map(|ip| ip.subnet_id.clone())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .map(|id| {
                let ipv6 = has_ipv6(&id);
                (id, ipv6)
            })
            .collect(),
        _ => obs
            .cluster_subnets
            .iter()
            .filter(|s| s.vpc_id == d.vpc_id)
            .map(|s| (s.id.clone(), s.ipv6_cidr.is_some()))
            .collect(),
    };
    stack::choose(
        config.endpoint_type,
        d.cluster.ipv6,
        &d.host,
        &subnets,
        current,
    )
    .map_err(|stack::NoIpv6Blocks(subnets)| Invalid::NoIpv6Blocks {
        cluster: d.cluster.name.clone(),
        vpc_id: d.vpc_id.clone(),
        subnets,
    })
}

/// The IPv6 address to ask for in each subnet of a new dual-stack
/// endpoint: the published ones (`inbound-ipv6`, when the VPC has no live
/// inbound endpoint), each in the subnet whose IPv6 block holds it, once.
fn ipv6_to_ask(config: &Config, obs: &Observation, subnet_ids: &[String]) -> Vec<Option<String>> {
    let published = obs.ipv6_to_keep(config);
    let mut asked: BTreeSet<std::net::Ipv6Addr> = BTreeSet::new();
    subnet_ids
        .iter()
        .map(|id| {
            let block = obs
                .cluster_subnets
                .iter()
                .find(|s| &s.id == id)
                .and_then(|s| s.ipv6_cidr)?;
            let address = published
                .iter()
                .find(|a| block.contains(&std::net::IpAddr::V6(**a)) && !asked.contains(*a))?;
            asked.insert(*address);
            Some(address.to_string())
        })
        .collect()
}

/// What the inbound sub-planner learned: the endpoint that serves, and its
/// addresses when this plan leaves them as they are.
pub(super) struct Inbound<'a> {
    pub(super) endpoint: Option<&'a EndpointView>,
    pub(super) ips: Option<Vec<String>>,
    pub(super) ipv6: Option<Vec<String>>,
    /// The endpoint is to be dual-stack.
    pub(super) dual_stack: bool,
}

/// TCP and UDP 53 from every CIDR of every cluster that uses the endpoint,
/// and from the forwarding sources no CIDR covers already.
fn dns_permissions(
    obs: &Observation,
    d: &Desired,
    inbound: Option<&EndpointView>,
    outbound: Option<&EndpointRef>,
) -> Vec<Permission> {
    let mut cidrs: BTreeSet<IpNet> = d.cidrs.iter().copied().collect();
    for registration in &obs.registrations {
        if registration.cluster != d.cluster.name {
            cidrs.extend(registration.allowed_cidrs.iter().copied());
        }
    }
    let sources: Vec<IpNet> = forwarding_sources(obs, inbound, outbound)
        .into_iter()
        .filter(|host| !cidrs.iter().any(|net| net.contains(host)))
        .collect();
    cidrs.extend(sources);
    cidrs
        .iter()
        .flat_map(|cidr| {
            [Protocol::Tcp, Protocol::Udp].map(|protocol| Permission {
                protocol,
                port: DNS_PORT,
                cidr: *cidr,
            })
        })
        .collect()
}

/// Bring an existing inbound endpoint to the configured number of live
/// IPs, replacing the ones AWS reports failed (added first, removed once the
/// new ones are in: an endpoint keeps at least one attached address,
/// RSLVR-00506). Learns whether its live address set changes.
pub(super) fn plan_endpoint_ips(
    config: &Config,
    obs: &Observation,
    endpoint: &EndpointView,
    dual_stack: bool,
) -> (Planned, bool) {
    let mut m = Planned::default();
    let Some(_) = &endpoint.ips else {
        note_endpoint_status(endpoint, &mut m, None);
        return (m, false);
    };
    let live: Vec<&EndpointIp> = endpoint.live_ips().collect();
    let failed: Vec<&EndpointIp> = endpoint.failed_ips().collect();
    let endpoint_ready = endpoint.status.accepts_ip_changes();
    let wanted = config.inbound_ips as usize;
    let az_of = |subnet: &str| {
        obs.cluster_subnets
            .iter()
            .find(|s| s.id == subnet)
            .map(|s| s.az.clone())
            .unwrap_or_else(|| format!("?{subnet}"))
    };
    let mut changed = false;
    let mut removed: Vec<EndpointIpRef> = Vec::new();
    if live.len() < wanted {
        let chosen = subnets_to_add(obs, endpoint, &live, wanted, dual_stack, &az_of);
        if !chosen.is_empty() {
            m.actions.push(Action::AddEndpointIps {
                account: endpoint.account.clone(),
                endpoint_id: endpoint.id.clone(),
                subnet_ids: chosen,
                endpoint_ready,
            });
            changed = true;
        }
    } else if live.len() > wanted {
        removed = surplus_ips(&live, wanted, &az_of);
        changed = true;
    }
    for ip in &failed {
        m.problems.push(Problem {
            resource: format!(
                "IP {} of inbound endpoint {}",
                ip.ip.as_deref().unwrap_or(&ip.ip_id),
                endpoint.id
            ),
            status: ip.status.to_string(),
            message: ip.status_message.clone(),
            repair: Some("a new IP takes its place and it is removed".into()),
        });
        removed.push(ip_ref(ip));
    }
    if !removed.is_empty() {
        m.actions.push(Action::RemoveEndpointIps {
            account: endpoint.account.clone(),
            endpoint_id: endpoint.id.clone(),
            ips: removed,
            endpoint_ready,
        });
    }
    let repair = (!failed.is_empty()).then(|| "its failed IPs are replaced".to_string());
    note_endpoint_status(endpoint, &mut m, repair);
    (m, changed)
}

/// The cluster's subnets an endpoint's addresses may go in: those with an
/// IPv6 block for a dual-stack one.
fn usable_subnets(obs: &Observation, dual_stack: bool) -> Vec<SubnetView> {
    obs.cluster_subnets
        .iter()
        .filter(|s| !dual_stack || s.ipv6_cidr.is_some())
        .cloned()
        .collect()
}

/// Subnets for the addresses an endpoint lacks: new AZs first, one subnet
/// each, then any subnet, round-robin; only those with an IPv6 block for a
/// dual-stack endpoint.
fn subnets_to_add(
    obs: &Observation,
    endpoint: &EndpointView,
    live: &[&EndpointIp],
    wanted: usize,
    dual_stack: bool,
    az_of: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let usable = usable_subnets(obs, dual_stack);
    let mut candidates: Vec<&SubnetView> = usable
        .iter()
        .filter(|s| s.vpc_id == endpoint.vpc_id)
        .collect();
    candidates.sort_by(|a, b| (&a.az, &a.id).cmp(&(&b.az, &b.id)));
    let mut chosen: Vec<String> = Vec::new();
    let mut azs_taken: BTreeSet<String> = live.iter().map(|ip| az_of(&ip.subnet_id)).collect();
    for subnet in &candidates {
        if chosen.len() + live.len() >= wanted {
            break;
        }
        if !azs_taken.contains(&subnet.az) {
            azs_taken.insert(subnet.az.clone());
            chosen.push(subnet.id.clone());
        }
    }
    let all = pick_subnets(&usable, &endpoint.vpc_id, wanted * 2);
    let mut i = 0;
    while chosen.len() + live.len() < wanted && !all.is_empty() {
        chosen.push(all[i % all.len()].clone());
        i += 1;
    }
    chosen
}

/// The addresses beyond `wanted`: from the most crowded AZ first, the
/// newest-looking id first among equals.
fn surplus_ips(
    live: &[&EndpointIp],
    wanted: usize,
    az_of: &dyn Fn(&str) -> String,
) -> Vec<EndpointIpRef> {
    let mut removed = Vec::new();
    let mut remaining: Vec<&EndpointIp> = live.to_vec();
    while remaining.len() > wanted {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for ip in &remaining {
            *counts.entry(az_of(&ip.subnet_id)).or_default() += 1;
        }
        let (index, _) = remaining
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                let ka = (counts[&az_of(&a.subnet_id)], &a.ip_id);
                let kb = (counts[&az_of(&b.subnet_id)], &b.ip_id);
                ka.cmp(&kb)
            })
            .expect("remaining is not empty");
        removed.push(ip_ref(remaining.remove(index)));
    }
    removed
}

pub(super) fn ip_ref(ip: &EndpointIp) -> EndpointIpRef {
    EndpointIpRef {
        ip_id: ip.ip_id.clone(),
        subnet_id: ip.subnet_id.clone(),
        ip: ip.ip.clone(),
    }
}
