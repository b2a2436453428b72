//! The planner, as a table of situations: fresh, partial, drifted,
//! foreign-owned, no-op, opted-out, public again, deleted, pending, invalid,
//! shared, configured outbound endpoint, more IPs, recreated cluster: the
//! fixtures here, the situations in one file per family.

mod build;
mod dualstack;
mod progress;
mod records;
mod settings;
mod shared;
mod teardown;

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::*;
use crate::config::{Config, TAG_ENABLED};
use crate::owner::{Owner, TAG_OWNER};

const HOST: &str = "abc123.gr7.eu-west-1.eks.amazonaws.com";
const ARN: &str = "arn:aws:eks:eu-west-1:111122223333:cluster/prod";
const CLUSTER_VPC: &str = "vpc-0000000a";
const CLIENT_VPC: &str = "vpc-0000000c";
const CP_SG: &str = "sg-cp";
const IN_SG: &str = "sg-in";
const OUT_SG: &str = "sg-out";
const IN_EP: &str = "rslvr-in-1";
const OUT_EP: &str = "rslvr-out-1";
const RULE: &str = "rslvr-rr-1";

fn config() -> Config {
    Config {
        client_vpc_ids: vec![CLIENT_VPC.into()],
        onprem_cidrs: vec!["192.168.0.0/16".parse().unwrap()],
        ..Config::default()
    }
}

fn owner() -> Owner {
    Owner::new("eks-private-dns")
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn subnet(id: &str, vpc: &str, az: &str) -> SubnetView {
    SubnetView {
        id: id.into(),
        vpc_id: vpc.into(),
        az: az.into(),
        cidr: None,
        ipv6_cidr: None,
    }
}

fn sg_rule(
    id: &str,
    group: &str,
    proto: &str,
    port: i32,
    cidr: &str,
    t: Tags,
) -> SecurityGroupRuleView {
    SecurityGroupRuleView {
        account: Account::Home,
        id: id.into(),
        group_id: group.into(),
        is_egress: false,
        protocol: IpProtocol::parse(proto),
        from_port: port,
        to_port: port,
        cidr: Some(net(cidr)),
        tags: t,
    }
}

fn cluster() -> ClusterView {
    ClusterView {
        account: Account::Home,
        access_update: None,
        name: "prod".into(),
        arn: ARN.into(),
        status: ClusterStatus::Active,
        endpoint_host: Some(HOST.into()),
        vpc_id: Some(CLUSTER_VPC.into()),
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into(), "subnet-c".into()],
        cluster_security_group_id: Some(CP_SG.into()),
        security_group_ids: vec![],
        public_access: false,
        private_access: true,
        ipv6: false,
        tags: Tags::new(),
    }
}

fn cidrs() -> [&'static str; 2] {
    ["10.1.0.0/16", "192.168.0.0/16"]
}

/// A cluster with every piece of plumbing in place and right.
fn complete() -> Observation {
    let o = owner();
    let mut sg_rules = Vec::new();
    for (i, cidr) in cidrs().iter().enumerate() {
        for proto in ["tcp", "udp"] {
            sg_rules.push(sg_rule(
                &format!("sgr-dns-{proto}-{i}"),
                IN_SG,
                proto,
                53,
                cidr,
                o.dns_rule_tags(CLUSTER_VPC),
            ));
        }
        sg_rules.push(sg_rule(
            &format!("sgr-api-{i}"),
            CP_SG,
            "tcp",
            443,
            cidr,
            o.cluster_tags(ARN),
        ));
    }
    let endpoint =
        |id: &str, d: Direction, vpc: &str, sg: &str, creator: String, ips| EndpointView {
            account: Account::Home,
            id: id.into(),
            arn: format!("arn:{id}"),
            direction: d,
            vpc_id: vpc.into(),
            security_group_ids: vec![sg.into()],
            status: "OPERATIONAL".into(),
            status_message: String::new(),
            creator_request_id: creator,
            name: id.into(),
            creation_time: "2026-01-01T00:00:00Z".into(),
            ip_count: 2,
            endpoint_type: EndpointType::Ipv4,
            ips,
        };
    let inbound_ips = vec![
        EndpointIp {
            ip_id: "rni-a".into(),
            subnet_id: "subnet-a".into(),
            ip: Some("10.0.1.10".into()),
            ipv6: None,
            status: "ATTACHED".into(),
            status_message: String::new(),
        },
        EndpointIp {
            ip_id: "rni-b".into(),
            subnet_id: "subnet-b".into(),
            ip: Some("10.0.2.10".into()),
            ipv6: None,
            status: "ATTACHED".into(),
            status_message: String::new(),
        },
    ];
    let mut obs = Observation {
        cluster_name: "prod".into(),
        cluster: Some(cluster()),
        cluster_vpc_dns: Some(VpcDns {
            support: true,
            hostnames: true,
        }),
        cluster_subnets: vec![
            subnet("subnet-a", CLUSTER_VPC, "eu-west-1a"),
            subnet("subnet-b", CLUSTER_VPC, "eu-west-1b"),
            subnet("subnet-c", CLUSTER_VPC, "eu-west-1c"),
        ],
        vpcs: vec![VpcView {
            account: Account::Home,
            id: CLIENT_VPC.into(),
            cidrs: vec![net("10.1.0.0/16")],
            tags: Tags::new(),
        }],
        outbound_vpc_subnets: vec![
            subnet("subnet-x", CLIENT_VPC, "eu-west-1a"),
            subnet("subnet-y", CLIENT_VPC, "eu-west-1b"),
        ],
        endpoints: vec![
            endpoint(
                IN_EP,
                Direction::Inbound,
                CLUSTER_VPC,
                IN_SG,
                o.inbound_creator_id(CLUSTER_VPC, 1),
                Some(inbound_ips),
            ),
            endpoint(
                OUT_EP,
                Direction::Outbound,
                CLIENT_VPC,
                OUT_SG,
                o.outbound_creator_id(CLIENT_VPC, 1),
                None,
            ),
        ],
        rules: vec![RuleView {
            account: Account::Home,
            id: RULE.into(),
            arn: format!("arn:{RULE}"),
            domain: HOST.into(),
            endpoint_id: Some(OUT_EP.into()),
            targets: vec![
                TargetAddress {
                    ip: "10.0.1.10".into(),
                    port: 53,
                },
                TargetAddress {
                    ip: "10.0.2.10".into(),
                    port: 53,
                },
            ],
            creator_request_id: o.rule_creator_id("prod", HOST, 1),
            name: "eks-private-dns-prod".into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
            shared: false,
        }],
        associations: vec![AssociationView {
            account: Account::Home,
            id: "rslvr-rrassoc-1".into(),
            rule_id: RULE.into(),
            vpc_id: CLIENT_VPC.into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
        }],
        security_groups: vec![
            SecurityGroupView {
                account: Account::Home,
                id: IN_SG.into(),
                vpc_id: CLUSTER_VPC.into(),
                name: "eks-private-dns-inbound".into(),
                tags: o.shared_tags(CLUSTER_VPC, Direction::Inbound),
            },
            SecurityGroupView {
                account: Account::Home,
                id: OUT_SG.into(),
                vpc_id: CLIENT_VPC.into(),
                name: "eks-private-dns-outbound".into(),
                tags: o.shared_tags(CLIENT_VPC, Direction::Outbound),
            },
        ],
        security_group_rules: sg_rules,
        ..Observation::default()
    };
    // The parameters, exactly as a finished apply writes them.
    let publication = Publication {
        prefix: "/eks-private-dns".into(),
        cluster: "prod".into(),
        account: Account::Home,
        cluster_arn: ARN.into(),
        vpc_id: CLUSTER_VPC.into(),
        endpoint_host: HOST.into(),
        inbound_endpoint_id: Some(IN_EP.into()),
        inbound_ips: Some(vec!["10.0.1.10".into(), "10.0.2.10".into()]),
        inbound_ipv6: Some(vec![]),
        dual_stack: false,
        outbound_endpoint_id: Some(OUT_EP.into()),
        uses_outbound: true,
        rule_id: Some(RULE.into()),
        uses_rule: true,
        associated_vpcs: vec![CLIENT_VPC.into()],
        control_plane_group_id: CP_SG.into(),
        control_plane_rule_ids: vec!["sgr-api-0".into(), "sgr-api-1".into()],
        allowed_cidrs: cidrs().iter().map(|c| c.to_string()).collect(),
        vpc_cidrs: vec![],
        settings_digest: config().digest(),
        current: Default::default(),
        current_versions: Default::default(),
    };
    let mut rendered = publication.render(Some("2026-01-01T00:00:00Z")).unwrap();
    let written: Vec<String> = rendered.values.iter().map(|v| v.0.clone()).collect();
    for name in &written[..written.len() - 1] {
        rendered.record_written(name, 1);
    }
    obs.parameters = rendered
        .values
        .iter()
        .map(|(name, value, kind)| ParameterView {
            name: name.clone(),
            value: value.clone(),
            kind: kind.to_string(),
            version: 1,
        })
        .collect();
    obs
}

fn plan_of(obs: &Observation) -> Plan {
    plan(&config(), &owner(), obs)
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::CreateSecurityGroup { .. } => "create-sg",
            Action::AuthorizeIngress { .. } => "authorize",
            Action::RevokeIngress { .. } => "revoke",
            Action::CreateEndpoint { .. } => "create-endpoint",
            Action::ChangeEndpointType { .. } => "change-type",
            Action::AddEndpointIps { .. } => "add-ips",
            Action::RemoveEndpointIps { .. } => "remove-ips",
            Action::CreateRule { .. } => "create-rule",
            Action::UpdateRule { .. } => "update-rule",
            Action::ShareRule { .. } => "share",
            Action::AssociateRule { .. } => "associate",
            Action::DisassociateRule { .. } => "disassociate",
            Action::DeleteRule { .. } => "delete-rule",
            Action::DeleteEndpoint { .. } => "delete-endpoint",
            Action::DeleteSecurityGroup { .. } => "delete-sg",
            Action::UnshareWith { .. } => "unshare",
            Action::DeleteShare { .. } => "delete-share",
            Action::PublishParameters(_) => "publish",
            Action::DeleteParameters { .. } => "delete-params",
        })
        .collect()
}

/// The plan's publication (it has one).
fn publication(p: &Plan) -> &Publication {
    p.actions
        .iter()
        .find_map(|a| match a {
            Action::PublishParameters(p) => Some(p.as_ref()),
            _ => None,
        })
        .expect("a publication")
}

fn count(plan: &Plan, kind: &str) -> usize {
    kinds(plan).iter().filter(|k| **k == kind).count()
}

fn assert_phase_order(plan: &Plan) {
    let phases: Vec<Phase> = plan.actions.iter().map(Action::phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "actions are in apply order");
}
