//! The DNS path, hop by hop. A resource that exists is not a name that
//! resolves: a query from a client VPC goes through the VPC's rule
//! association, out of the outbound endpoint's IPs, into the inbound
//! endpoint (whose security group must admit those IPs on UDP and TCP 53),
//! and the client then reaches the API on 443 through the cluster's
//! security group. An on-premises query goes straight to the inbound IPs.
//! This walks the observed AWS state for every client VPC and on-prem CIDR
//! of a cluster and says, for each hop, which resource carries it and
//! whether it holds. Pure: it reads an `Observation` (made in full).
//!
//! | path       | hops                                                               |
//! |------------|--------------------------------------------------------------------|
//! | client VPC | cluster VPC DNS attributes; rule associated with the client VPC;   |
//! |            | rule targets = the live inbound IPs on 53; outbound endpoint live; |
//! |            | inbound endpoint live; inbound group admits the outbound IPs on    |
//! |            | UDP and TCP 53; control-plane group admits the VPC's CIDRs on 443  |
//! | on-prem    | cluster VPC DNS attributes; inbound endpoint live; published IPs   |
//! |            | = the live inbound IPs; inbound group admits the CIDR on UDP and   |
//! |            | TCP 53; control-plane group admits the CIDR on 443                 |
//!
//! Not checked: route tables, network ACLs, and the on-premises side (the
//! forwarders, the link); `verify --server` asks a real resolver.

use ipnet::IpNet;
use serde::Serialize;

use crate::config::{ClusterTags, Config};
use crate::model::*;
use crate::owner::Owner;
use crate::plan::{Observation, API_PORT, DNS_PORT};
use crate::ssm::{parameter_name, PARAM_INBOUND_IPS};

/// One hop of one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub hop: String,
    /// The resource that carries it ("-" when there is none).
    pub resource: String,
    pub ok: bool,
    pub detail: String,
}

/// Every hop from one client (a VPC, or an on-premises CIDR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Path {
    /// "vpc-0abc" or "on-prem 192.168.0.0/16".
    pub client: String,
    pub hops: Vec<Hop>,
}

impl Path {
    pub fn ok(&self) -> bool {
        self.hops.iter().all(|h| h.ok)
    }
}

/// The paths of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Paths {
    pub cluster: String,
    pub endpoint: String,
    pub paths: Vec<Path>,
}

impl Paths {
    pub fn ok(&self) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(Path::ok)
    }

    /// Every failing hop, "client: hop (resource): detail".
    pub fn failures(&self) -> Vec<String> {
        self.paths
            .iter()
            .flat_map(|p| {
                p.hops
                    .iter()
                    .filter(|h| !h.ok)
                    .map(move |h| format!("{}: {} ({}): {}", p.client, h.hop, h.resource, h.detail))
            })
            .collect()
    }
}

fn hop(name: &str, resource: impl Into<String>, ok: bool, detail: impl Into<String>) -> Hop {
    Hop {
        hop: name.to_string(),
        resource: resource.into(),
        ok,
        detail: detail.into(),
    }
}

/// Walk every path of the observed cluster. Err when the cluster has no
/// paths to walk (gone, or without an endpoint name), saying why.
pub fn check(config: &Config, owner: &Owner, obs: &Observation) -> Result<Paths, String> {
    let cluster = obs
        .cluster
        .as_ref()
        .ok_or_else(|| format!("cluster {} does not exist", obs.cluster_name))?;
    let (host, vpc_id) = cluster.host_and_vpc()?;
    let tags =
        ClusterTags::parse(&cluster.name, &cluster.tags, config).map_err(|e| e.to_string())?;
    let own = VpcRef {
        account: obs.account.clone(),
        id: vpc_id.clone(),
    };
    let clients: Vec<VpcRef> = obs
        .client_vpcs(config)
        .into_iter()
        .filter(|v| *v != own)
        .collect();
    let mut onprem: Vec<IpNet> = config.onprem_cidrs.clone();
    onprem.extend(tags.onprem_cidrs.iter().copied());
    onprem.sort();
    onprem.dedup();
    let inbound = obs
        .endpoints
        .iter()
        .filter(|e| {
            e.direction == Direction::Inbound
                && e.vpc_id == vpc_id
                && !e.is_going_away()
                && owner.parse_creator_id(&e.creator_request_id).is_some()
        })
        .min_by(|a, b| (&a.creation_time, &a.id).cmp(&(&b.creation_time, &b.id)));
    let shared = Shared {
        obs,
        dns: dns_hop(&vpc_id, obs.cluster_vpc_dns),
        inbound_ips: inbound.map(|e| e.ipv4s()).unwrap_or_default(),
        inbound_ipv6: inbound.map(|e| e.ipv6s()).unwrap_or_default(),
        inbound_hop: endpoint_hop("inbound endpoint live", inbound),
        inbound_groups: inbound
            .map(|e| e.security_group_ids.iter().map(String::as_str).collect())
            .unwrap_or_default(),
        control_plane: crate::plan::api_group(config, cluster, obs)
            .unwrap_or_else(|_| "-".to_string()),
        rule: obs
            .rules
            .iter()
            .find(|r| r.domain == host && !r.status.is_going_away()),
        host: host.clone(),
    };
    let mut paths: Vec<Path> = clients.iter().map(|c| client_path(&shared, c)).collect();
    let published_name = parameter_name(&config.ssm_prefix, &obs.cluster_id(), PARAM_INBOUND_IPS);
    let published: Option<Vec<String>> = obs
        .parameters
        .iter()
        .find(|p| p.name == published_name)
        .map(|p| p.value.split(',').map(str::to_string).collect());
    for cidr in &onprem {
        paths.push(onprem_path(
            &shared,
            cidr,
            &published_name,
            published.as_deref(),
        ));
    }
    Ok(Paths {
        cluster: cluster.name.clone(),
        endpoint: host,
        paths,
    })
}

/// What every path of a cluster shares.
struct Shared<'a> {
    obs: &'a Observation,
    dns: Hop,
    inbound_ips: Vec<String>,
    inbound_ipv6: Vec<String>,
    inbound_hop: Hop,
    inbound_groups: Vec<&'a str>,
    control_plane: String,
    rule: Option<&'a RuleView>,
    host: String,
}

/// A client VPC's path: its resolver forwards through our rule and the
/// outbound endpoint to the inbound endpoint, which the control plane
/// admits it from.
fn client_path(c: &Shared, client: &VpcRef) -> Path {
    let (obs, rule, host) = (c.obs, c.rule, &c.host);
    let mut hops = vec![c.dns.clone()];
    let cidrs: Vec<IpNet> = obs
        .vpcs
        .iter()
        .find(|v| v.id == client.id && v.account == client.account)
        .map(|v| v.cidrs.clone())
        .unwrap_or_default();
    // The association is the client VPC's account's (a rule shared with it).
    let association = rule.and_then(|r| {
        obs.associations
            .iter()
            .find(|a| a.rule_id == r.id && a.vpc_id == client.id && a.account == client.account)
    });
    let client = &client.to_string();
    hops.push(association_hop(rule, association, host, client));
    hops.push(targets_hop(rule, c));
    let outbound = rule
        .and_then(|r| r.endpoint_id.as_deref())
        .and_then(|id| obs.endpoints.iter().find(|e| e.id == id));
    hops.push(match (rule.and_then(|r| r.endpoint_id.clone()), outbound) {
        (Some(id), None) => hop(
            "outbound endpoint live",
            id,
            false,
            "the rule's outbound endpoint was not found",
        ),
        (None, _) => hop("outbound endpoint live", "-", false, "no outbound endpoint"),
        (Some(_), Some(e)) => endpoint_hop("outbound endpoint live", Some(e)),
    });
    hops.push(c.inbound_hop.clone());
    let sources: Vec<IpNet> = outbound
        .map(|e| {
            e.live_ips()
                .flat_map(|ip| ip.ip.iter().chain(ip.ipv6.iter()))
                .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
                .map(IpNet::from)
                .collect()
        })
        .unwrap_or_default();
    hops.push(admits_hop(
        "inbound group admits the outbound IPs on 53",
        obs,
        &c.inbound_groups,
        &sources,
        &[Protocol::Udp, Protocol::Tcp],
        DNS_PORT,
    ));
    hops.push(admits_hop(
        "control-plane group admits the VPC on 443",
        obs,
        &[c.control_plane.as_str()],
        &cidrs,
        &[Protocol::Tcp],
        API_PORT,
    ));
    Path {
        client: client.clone(),
        hops,
    }
}

fn association_hop(
    rule: Option<&RuleView>,
    association: Option<&AssociationView>,
    host: &str,
    client: &str,
) -> Hop {
    match (rule, association) {
        (None, _) => hop(
            "rule associated",
            "-",
            false,
            format!("no forward rule of ours for {host}"),
        ),
        (Some(r), _) if !r.status.is_settled() => hop(
            "rule associated",
            &r.id,
            false,
            format!("the rule is {}", r.status),
        ),
        (Some(r), None) => hop(
            "rule associated",
            &r.id,
            false,
            format!("the rule is not associated with {client}"),
        ),
        (Some(r), Some(a)) => hop(
            "rule associated",
            format!("{} ({})", r.id, a.id),
            a.status.is_settled(),
            format!("association {}", a.status),
        ),
    }
}

/// A target as an address and port ("[2001:db8::5]:53" for IPv6).
fn target_label(t: &crate::model::TargetAddress) -> String {
    if t.ip.contains(':') {
        format!("[{}]:{}", t.ip, t.port)
    } else {
        format!("{}:{}", t.ip, t.port)
    }
}

/// The most target IPs a Resolver rule takes (Route 53 quotas).
const RULE_TARGETS_QUOTA: usize = 6;

/// What a rule must target, worked out here from the endpoints as AWS
/// lists them (never with the planner's own functions, so that the check
/// can disagree with the planner): every live IPv4 address of the inbound
/// endpoint on 53, and its live IPv6 addresses too when the rule's
/// outbound endpoint has IPv6 addresses of its own (it reaches no IPv6
/// target otherwise) and the quota holds them all.
fn expected_targets(rule: &RuleView, c: &Shared) -> Vec<String> {
    let outbound_has_ipv6 = c.obs.endpoints.iter().any(|e| {
        Some(e.id.as_str()) == rule.endpoint_id.as_deref()
            && e.live_ips().any(|ip| ip.ipv6.is_some())
    });
    let with_ipv6 =
        outbound_has_ipv6 && c.inbound_ips.len() + c.inbound_ipv6.len() <= RULE_TARGETS_QUOTA;
    let mut wanted: Vec<String> = c
        .inbound_ips
        .iter()
        .map(|ip| format!("{ip}:53"))
        .chain(
            c.inbound_ipv6
                .iter()
                .filter(|_| with_ipv6)
                .map(|ip| format!("[{ip}]:53")),
        )
        .collect();
    wanted.sort();
    wanted
}

/// The rule's targets: the live inbound addresses, the IPv6 ones too
/// where its outbound endpoint has IPv6 addresses (`expected_targets`).
fn targets_hop(rule: Option<&RuleView>, c: &Shared) -> Hop {
    match rule {
        None => hop("rule targets", "-", false, "no rule"),
        Some(r) => {
            let mut targets: Vec<String> = r.targets.iter().map(target_label).collect();
            targets.sort();
            let wanted = expected_targets(r, c);
            let ok = !wanted.is_empty() && targets == wanted;
            hop(
                "rule targets = live inbound IPs on 53",
                &r.id,
                ok,
                if ok {
                    targets.join(", ")
                } else {
                    format!(
                        "targets {} but the live inbound IPs are {}",
                        list(&targets),
                        list(&wanted)
                    )
                },
            )
        }
    }
}

/// An on-premises CIDR's path: it queries the published inbound addresses,
/// which the inbound group and the control plane admit it from.
fn onprem_path(
    c: &Shared,
    cidr: &IpNet,
    published_name: &str,
    published: Option<&[String]>,
) -> Path {
    let obs = c.obs;
    let inbound_ips = &c.inbound_ips;
    let mut hops = vec![c.dns.clone(), c.inbound_hop.clone()];
    hops.push(match published {
        None => hop(
            "published IPs = live inbound IPs",
            "-",
            false,
            "no inbound-ips parameter",
        ),
        Some(ips) => {
            let ok = !inbound_ips.is_empty() && ips == inbound_ips.as_slice();
            hop(
                "published IPs = live inbound IPs",
                published_name,
                ok,
                if ok {
                    ips.join(", ")
                } else {
                    format!(
                        "published {} but the live inbound IPs are {}",
                        list(ips),
                        list(inbound_ips)
                    )
                },
            )
        }
    });
    hops.push(admits_hop(
        "inbound group admits the CIDR on 53",
        obs,
        &c.inbound_groups,
        &[*cidr],
        &[Protocol::Udp, Protocol::Tcp],
        DNS_PORT,
    ));
    hops.push(admits_hop(
        "control-plane group admits the CIDR on 443",
        obs,
        &[c.control_plane.as_str()],
        &[*cidr],
        &[Protocol::Tcp],
        API_PORT,
    ));
    Path {
        client: format!("on-prem {cidr}"),
        hops,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn dns_hop(vpc_id: &str, dns: Option<VpcDns>) -> Hop {
    match dns {
        Some(VpcDns {
            support: true,
            hostnames: true,
        }) => hop(
            "cluster VPC DNS attributes",
            vpc_id,
            true,
            "enableDnsSupport and enableDnsHostnames on",
        ),
        Some(dns) => hop(
            "cluster VPC DNS attributes",
            vpc_id,
            false,
            format!(
                "enableDnsSupport {}, enableDnsHostnames {}",
                on_off(dns.support),
                on_off(dns.hostnames)
            ),
        ),
        None => hop("cluster VPC DNS attributes", vpc_id, false, "not read"),
    }
}

fn on_off(value: bool) -> &'static str {
    if value {
        "on"
    } else {
        "off"
    }
}

fn endpoint_hop(name: &str, endpoint: Option<&EndpointView>) -> Hop {
    let Some(e) = endpoint else {
        return hop(name, "-", false, "no endpoint");
    };
    let ips: Vec<String> = e
        .live_ips()
        .filter(|ip| ip.status.is_settled())
        .filter_map(|ip| ip.ip.clone().or(ip.ipv6.clone()))
        .collect();
    let ok = e.status.is_settled() && !ips.is_empty();
    hop(
        name,
        &e.id,
        ok,
        format!("{}, attached IPs {}", e.status, list(&ips)),
    )
}

/// Whether ingress rules on `groups` admit every one of `sources` on each
/// of `protocols` at `port` (a rule admits a source its CIDR contains; all
/// traffic, protocol -1, admits every port).
fn admits_hop(
    name: &str,
    obs: &Observation,
    groups: &[&str],
    sources: &[IpNet],
    protocols: &[Protocol],
    port: i32,
) -> Hop {
    let resource = if groups.is_empty() {
        "-".to_string()
    } else {
        groups.join(", ")
    };
    if groups.is_empty() {
        return hop(name, resource, false, "no security group");
    }
    if sources.is_empty() {
        return hop(name, resource, false, "no source addresses to admit");
    }
    let mut missing = Vec::new();
    for source in sources {
        for protocol in protocols {
            let admitted = obs.security_group_rules.iter().any(|r| {
                groups.contains(&r.group_id.as_str())
                    && !r.is_egress
                    && r.cidr.is_some_and(|c| c.contains(source))
                    && r.protocol.covers(*protocol, port, r.from_port, r.to_port)
            });
            if !admitted {
                missing.push(format!("{}/{port} from {source}", protocol.as_str()));
            }
        }
    }
    let ok = missing.is_empty();
    let detail = if ok {
        format!(
            "{} from {}",
            protocols
                .iter()
                .map(|p| format!("{}/{port}", p.as_str()))
                .collect::<Vec<_>>()
                .join(" and "),
            sources
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("nothing admits {}", missing.join(", "))
    };
    hop(name, resource, ok, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, protocol: &str, port: i32, cidr: &str) -> SecurityGroupRuleView {
        SecurityGroupRuleView {
            account: Account::Home,
            id: format!("sgr-{group}-{protocol}-{cidr}"),
            group_id: group.into(),
            is_egress: false,
            protocol: IpProtocol::parse(protocol),
            from_port: port,
            to_port: port,
            cidr: Some(cidr.parse().unwrap()),
            tags: Tags::new(),
        }
    }

    fn obs(rules: Vec<SecurityGroupRuleView>) -> Observation {
        Observation {
            security_group_rules: rules,
            ..Observation::default()
        }
    }

    #[test]
    fn a_covering_cidr_admits_an_outbound_ip_and_a_missing_protocol_fails() {
        let o = obs(vec![
            rule("sg-in", "udp", 53, "10.1.0.0/16"),
            rule("sg-in", "tcp", 53, "10.1.0.0/16"),
        ]);
        let inside: IpNet = "10.1.2.3/32".parse().unwrap();
        let outside: IpNet = "10.9.0.5/32".parse().unwrap();
        let both = [Protocol::Udp, Protocol::Tcp];
        assert!(admits_hop("h", &o, &["sg-in"], &[inside], &both, 53).ok);
        let hop = admits_hop("h", &o, &["sg-in"], &[inside, outside], &both, 53);
        assert!(!hop.ok);
        assert!(
            hop.detail.contains("udp/53 from 10.9.0.5/32"),
            "{}",
            hop.detail
        );
        // Only UDP admitted: TCP (large answers, retries) fails.
        let udp_only = obs(vec![rule("sg-in", "udp", 53, "10.9.0.5/32")]);
        let hop = admits_hop("h", &udp_only, &["sg-in"], &[outside], &both, 53);
        assert!(!hop.ok && hop.detail.contains("tcp/53"), "{}", hop.detail);
        // Another group's rule admits nothing here.
        assert!(!admits_hop("h", &o, &["sg-other"], &[inside], &both, 53).ok);
        // All traffic admits every port.
        let all = obs(vec![rule("sg-in", "-1", -1, "0.0.0.0/0")]);
        assert!(admits_hop("h", &all, &["sg-in"], &[outside], &both, 53).ok);
    }

    #[test]
    fn an_endpoint_serves_only_when_operational_with_an_attached_ip() {
        let mut e = EndpointView {
            account: Account::Home,
            id: "rslvr-in-1".into(),
            arn: String::new(),
            direction: Direction::Inbound,
            vpc_id: "vpc-1".into(),
            security_group_ids: vec![],
            status: EndpointStatus::Creating,
            status_message: String::new(),
            creator_request_id: String::new(),
            name: String::new(),
            creation_time: String::new(),
            ip_count: 1,
            endpoint_type: EndpointType::Ipv4,
            ips: Some(vec![EndpointIp {
                ip_id: "rni-1".into(),
                subnet_id: "subnet-1".into(),
                ip: Some("10.0.1.5".into()),
                ipv6: None,
                status: IpStatus::Creating,
                status_message: String::new(),
            }]),
        };
        assert!(!endpoint_hop("x", Some(&e)).ok);
        e.status = EndpointStatus::Operational;
        e.ips.as_mut().unwrap()[0].status = IpStatus::Attached;
        assert!(endpoint_hop("x", Some(&e)).ok);
        e.ips.as_mut().unwrap()[0].status = IpStatus::FailedCreation;
        assert!(!endpoint_hop("x", Some(&e)).ok);
        assert!(!endpoint_hop("x", None).ok);
    }
}
