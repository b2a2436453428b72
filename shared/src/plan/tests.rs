//! The planner, as a table of situations: fresh, partial, drifted,
//! foreign-owned, no-op, opted-out, public again, deleted, pending, invalid,
//! shared, configured outbound endpoint, more IPs, recreated cluster.

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
        id: id.into(),
        group_id: group.into(),
        is_egress: false,
        protocol: proto.into(),
        from_port: port,
        to_port: port,
        cidr: Some(net(cidr)),
        tags: t,
    }
}

fn cluster() -> ClusterView {
    ClusterView {
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
            id: RULE.into(),
            arn: format!("arn:{RULE}"),
            domain: HOST.into(),
            rule_type: "FORWARD".into(),
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
        }],
        associations: vec![AssociationView {
            id: "rslvr-rrassoc-1".into(),
            rule_id: RULE.into(),
            vpc_id: CLIENT_VPC.into(),
            status: "COMPLETE".into(),
            status_message: String::new(),
        }],
        security_groups: vec![
            SecurityGroupView {
                id: IN_SG.into(),
                vpc_id: CLUSTER_VPC.into(),
                name: "eks-private-dns-inbound".into(),
                tags: o.shared_tags(CLUSTER_VPC, ROLE_INBOUND),
            },
            SecurityGroupView {
                id: OUT_SG.into(),
                vpc_id: CLIENT_VPC.into(),
                name: "eks-private-dns-outbound".into(),
                tags: o.shared_tags(CLIENT_VPC, ROLE_OUTBOUND),
            },
        ],
        security_group_rules: sg_rules,
        ..Observation::default()
    };
    // The parameters, exactly as a finished apply writes them.
    let publication = Publication {
        prefix: "/eks-private-dns".into(),
        cluster: "prod".into(),
        cluster_arn: ARN.into(),
        vpc_id: CLUSTER_VPC.into(),
        endpoint_host: HOST.into(),
        inbound_endpoint_id: Some(IN_EP.into()),
        inbound_ips: Some(vec!["10.0.1.10".into(), "10.0.2.10".into()]),
        inbound_ipv6: Some(vec![]),
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
    };
    let rendered = publication.render(Some("2026-01-01T00:00:00Z")).unwrap();
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
            Action::AddEndpointIps { .. } => "add-ips",
            Action::RemoveEndpointIps { .. } => "remove-ips",
            Action::CreateRule { .. } => "create-rule",
            Action::UpdateRule { .. } => "update-rule",
            Action::AssociateRule { .. } => "associate",
            Action::DisassociateRule { .. } => "disassociate",
            Action::DeleteRule { .. } => "delete-rule",
            Action::DeleteEndpoint { .. } => "delete-endpoint",
            Action::DeleteSecurityGroup { .. } => "delete-sg",
            Action::PublishParameters(_) => "publish",
            Action::DeleteParameters { .. } => "delete-params",
        })
        .collect()
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

#[test]
fn no_op_when_everything_is_in_place() {
    let p = plan_of(&complete());
    assert_eq!(p.decision, Decision::Managed);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn fresh_cluster_gets_everything_in_order() {
    let mut obs = complete();
    obs.endpoints.clear();
    obs.rules.clear();
    obs.associations.clear();
    obs.security_groups.clear();
    obs.security_group_rules.clear();
    obs.parameters.clear();
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Managed);
    assert_phase_order(&p);
    assert_eq!(count(&p, "create-sg"), 2);
    assert_eq!(count(&p, "create-endpoint"), 2);
    assert_eq!(count(&p, "authorize"), 2);
    assert_eq!(count(&p, "create-rule"), 1);
    assert_eq!(count(&p, "associate"), 1);
    assert_eq!(count(&p, "publish"), 1);
    assert_eq!(p.actions.len(), 9);
    for action in &p.actions {
        match action {
            Action::CreateEndpoint {
                direction: Direction::Inbound,
                subnet_ids,
                vpc_id,
                ..
            } => {
                assert_eq!(vpc_id, CLUSTER_VPC);
                assert_eq!(
                    subnet_ids,
                    &vec!["subnet-a".to_string(), "subnet-b".to_string()]
                );
            }
            Action::CreateEndpoint {
                direction: Direction::Outbound,
                vpc_id,
                ..
            } => assert_eq!(vpc_id, CLIENT_VPC),
            Action::CreateRule {
                domain, targets, ..
            } => {
                assert_eq!(domain, HOST);
                assert_eq!(targets, &Targets::InboundEndpointIps);
            }
            Action::AuthorizeIngress {
                group: GroupRef::New(role),
                permissions,
                ..
            } => {
                assert_eq!(role, ROLE_INBOUND);
                assert_eq!(permissions.len(), 4, "tcp and udp 53 from two CIDRs");
            }
            Action::AuthorizeIngress {
                group: GroupRef::Existing(id),
                permissions,
                cluster_arn,
                ..
            } => {
                assert_eq!(id, CP_SG);
                assert_eq!(cluster_arn.as_deref(), Some(ARN));
                assert!(permissions.iter().all(|p| p.port == 443));
                assert_eq!(permissions.len(), 2);
            }
            Action::AssociateRule { rule, vpc_id, .. } => {
                assert_eq!(rule, &RuleRef::New);
                assert_eq!(vpc_id, CLIENT_VPC, "never the cluster VPC");
            }
            _ => {}
        }
    }
}

#[test]
fn partial_setup_is_finished_with_known_values() {
    let mut obs = complete();
    obs.rules.clear();
    obs.associations.clear();
    obs.parameters.clear();
    let p = plan_of(&obs);
    assert_eq!(kinds(&p), vec!["create-rule", "associate", "publish"]);
    match &p.actions[0] {
        Action::CreateRule {
            targets, endpoint, ..
        } => {
            assert_eq!(endpoint, &EndpointRef::Existing(OUT_EP.into()));
            assert!(matches!(targets, Targets::Known(t) if t.len() == 2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn drift_is_repaired() {
    let mut obs = complete();
    obs.rules[0].targets.pop();
    obs.associations.clear();
    obs.security_group_rules.retain(|r| r.id != "sgr-dns-udp-1");
    let o = owner();
    obs.security_group_rules.push(sg_rule(
        "sgr-api-old",
        CP_SG,
        "tcp",
        443,
        "10.99.0.0/16",
        o.cluster_tags(ARN),
    ));
    obs.parameters[1].value = "10.9.9.9".into();
    let p = plan_of(&obs);
    assert_phase_order(&p);
    assert_eq!(count(&p, "update-rule"), 1);
    assert_eq!(count(&p, "associate"), 1);
    assert_eq!(count(&p, "publish"), 1);
    let authorized: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::AuthorizeIngress { permissions, .. } => {
                Some(permissions.iter().map(|p| p.to_string()))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(authorized, vec!["udp/53 from 192.168.0.0/16"]);
    let revoked: Vec<&String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RevokeIngress { rule_ids, .. } => Some(rule_ids),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(revoked, vec!["sgr-api-old"]);
}

#[test]
fn foreign_rules_are_facts_never_targets() {
    let mut obs = complete();
    // Our 443 rule for the on-prem CIDR is gone, but a foreign one admits it.
    obs.security_group_rules.retain(|r| r.id != "sgr-api-1");
    obs.security_group_rules.push(sg_rule(
        "sgr-corp",
        CP_SG,
        "-1",
        -1,
        "192.168.0.0/16",
        Tags::new(),
    ));
    // Foreign rules on the groups, and another deployment's rule on ours.
    obs.security_group_rules.push(sg_rule(
        "sgr-corp-2",
        CP_SG,
        "tcp",
        443,
        "10.50.0.0/16",
        Tags::new(),
    ));
    obs.security_group_rules.push(sg_rule(
        "sgr-team-b",
        IN_SG,
        "udp",
        53,
        "10.60.0.0/16",
        tags(&[(TAG_OWNER, "team-b")]),
    ));
    // The state still lists sgr-api-1: refresh the parameters' view of it.
    let p = plan_of(&obs);
    assert_eq!(count(&p, "authorize"), 0, "{:#?}", p.actions);
    assert_eq!(count(&p, "revoke"), 0, "{:#?}", p.actions);

    // Teardown leaves them too.
    obs.cluster.as_mut().unwrap().public_access = true;
    let p = plan_of(&obs);
    for action in &p.actions {
        if let Action::RevokeIngress { rule_ids, .. } = action {
            assert!(
                rule_ids.iter().all(|id| id.starts_with("sgr-api")),
                "{rule_ids:?}"
            );
        }
    }
}

fn assert_full_teardown(p: &Plan) {
    assert_phase_order(p);
    assert_eq!(count(p, "disassociate"), 1);
    assert_eq!(count(p, "delete-rule"), 1);
    assert_eq!(count(p, "revoke"), 1);
    assert_eq!(count(p, "delete-endpoint"), 2);
    assert_eq!(count(p, "delete-sg"), 2);
    assert_eq!(count(p, "delete-params"), 1);
    assert_eq!(
        *kinds(p).last().unwrap(),
        "delete-params",
        "the record goes last"
    );
    assert_eq!(
        count(p, "create-sg") + count(p, "authorize") + count(p, "publish"),
        0
    );
}

#[test]
fn a_teardown_stopped_after_the_outbound_endpoint_went_finishes_with_its_group() {
    // What a run killed right after DeleteResolverEndpoint (outbound)
    // leaves: no rule, no outbound endpoint, the outbound group.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    obs.rules.clear();
    obs.associations.clear();
    obs.endpoints.retain(|e| e.direction == Direction::Inbound);
    let p = plan_of(&obs);
    assert_phase_order(&p);
    assert_eq!(count(&p, "delete-sg"), 2, "{:#?}", p.actions);
    // While another cluster's rule still needs an outbound endpoint, the
    // group stays (that cluster's run will use it).
    let mut other = complete();
    other.cluster.as_mut().unwrap().public_access = true;
    other
        .endpoints
        .retain(|e| e.direction == Direction::Inbound);
    other.rules[0].creator_request_id = owner().rule_creator_id("other", "other.example.com", 1);
    let p = plan_of(&other);
    assert_eq!(count(&p, "delete-sg"), 1, "{:#?}", p.actions);
}

#[test]
fn opted_out_cluster_loses_everything() {
    let mut obs = complete();
    obs.cluster
        .as_mut()
        .unwrap()
        .tags
        .insert(TAG_ENABLED.into(), "false".into());
    let p = plan_of(&obs);
    assert!(matches!(p.decision, Decision::NotManaged { .. }));
    assert_full_teardown(&p);
}

#[test]
fn public_again_loses_everything() {
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    let p = plan_of(&obs);
    assert!(matches!(&p.decision, Decision::NotManaged { reason } if reason.contains("public")));
    assert_full_teardown(&p);
}

#[test]
fn opt_in_tag_overrides_the_private_only_trigger() {
    let mut obs = complete();
    let c = obs.cluster.as_mut().unwrap();
    c.public_access = true;
    c.tags.insert(TAG_ENABLED.into(), "true".into());
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Managed);
    assert!(p.actions.is_empty());
}

#[test]
fn deleted_cluster_is_torn_down_from_its_record() {
    let mut obs = complete();
    obs.cluster = None;
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Gone);
    assert_full_teardown(&p);

    // Being deleted counts as gone.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().status = ClusterStatus::Deleting;
    assert_eq!(plan_of(&obs).decision, Decision::Gone);

    // Nothing left: nothing to do.
    let obs = Observation {
        cluster_name: "prod".into(),
        ..Observation::default()
    };
    assert!(plan_of(&obs).actions.is_empty());
}

#[test]
fn pending_clusters_get_nothing() {
    for status in [
        ClusterStatus::Creating,
        ClusterStatus::Updating,
        ClusterStatus::Pending,
    ] {
        let mut obs = complete();
        obs.rules.clear();
        obs.cluster.as_mut().unwrap().status = status.clone();
        let p = plan_of(&obs);
        assert!(matches!(p.decision, Decision::Pending { .. }), "{status:?}");
        assert!(p.actions.is_empty());
    }
}

#[test]
fn missing_prerequisites_are_invalid_and_plan_nothing() {
    let mut obs = complete();
    obs.endpoints.clear();
    obs.cluster_vpc_dns = Some(VpcDns {
        support: false,
        hostnames: true,
    });
    let p = plan_of(&obs);
    assert!(
        matches!(&p.decision, Decision::Invalid { problem } if problem.to_string().contains(CLUSTER_VPC) && problem.to_string().contains("enableDnsSupport"))
    );
    assert!(p.actions.is_empty());

    let mut obs = complete();
    obs.cluster_subnets.truncate(1);
    let p = plan_of(&obs);
    assert!(
        matches!(&p.decision, Decision::Invalid { problem } if problem.to_string().contains("Availability Zone"))
    );
    assert!(p.actions.is_empty());

    let mut obs = complete();
    obs.vpcs.clear();
    let p = plan_of(&obs);
    assert!(
        matches!(&p.decision, Decision::Invalid { problem } if problem.to_string().contains(CLIENT_VPC) && problem.to_string().contains("does not exist"))
    );

    let mut obs = complete();
    obs.cluster
        .as_mut()
        .unwrap()
        .tags
        .insert(crate::config::TAG_ONPREM_CIDRS.into(), "::/0".into());
    assert!(matches!(plan_of(&obs).decision, Decision::Invalid { .. }));
}

#[test]
fn a_shared_endpoint_stays_while_another_cluster_uses_it() {
    let mut obs = complete();
    obs.registrations = vec![Registration {
        cluster: "other".into(),
        allowed_cidrs: vec![net("10.70.0.0/16")],
    }];
    // Managed: the other cluster's CIDRs stay admitted on 53.
    let p = plan_of(&obs);
    let added: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::AuthorizeIngress { permissions, .. } => {
                Some(permissions.iter().map(|p| p.to_string()))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        added,
        vec!["tcp/53 from 10.70.0.0/16", "udp/53 from 10.70.0.0/16"]
    );

    // Torn down: its own parts go, the inbound endpoint and its group stay.
    obs.cluster = None;
    let p = plan_of(&obs);
    assert!(p.actions.iter().all(|a| !matches!(
        a,
        Action::DeleteEndpoint {
            direction: Direction::Inbound,
            ..
        }
    )));
    assert!(p.actions.iter().all(|a| !matches!(a,
        Action::DeleteSecurityGroup { role, .. } if role == ROLE_INBOUND)));
    assert_eq!(count(&p, "delete-rule"), 1);
}

#[test]
fn the_outbound_endpoint_stays_while_another_rule_uses_it() {
    let mut obs = complete();
    let mut other = obs.rules[0].clone();
    other.id = "rslvr-rr-2".into();
    other.domain = "other.gr7.eu-west-1.eks.amazonaws.com".into();
    other.creator_request_id = owner().rule_creator_id("other", &other.domain, 1);
    obs.rules.push(other);
    obs.cluster = None;
    let p = plan_of(&obs);
    assert!(p.actions.iter().all(|a| !matches!(
        a,
        Action::DeleteEndpoint {
            direction: Direction::Outbound,
            ..
        }
    )));
    assert_eq!(count(&p, "delete-rule"), 1, "only its own rule");
}

#[test]
fn a_configured_outbound_endpoint_is_used_and_never_deleted() {
    let mut cfg = config();
    cfg.outbound_endpoint_id = Some("rslvr-out-corp".into());
    let mut obs = complete();
    let mut corp = obs.endpoints[1].clone();
    corp.id = "rslvr-out-corp".into();
    corp.creator_request_id = "corp".into();
    obs.endpoints.push(corp);
    let p = plan(&cfg, &owner(), &obs);
    // The rule moves to it, and our own outbound endpoint goes.
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::UpdateRule { endpoint: EndpointRef::Existing(id), .. } if id == "rslvr-out-corp")));
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::DeleteEndpoint { endpoint_id, .. } if endpoint_id == OUT_EP)));
    obs.cluster = None;
    let p = plan(&cfg, &owner(), &obs);
    assert!(p.actions.iter().all(|a| !matches!(a,
        Action::DeleteEndpoint { endpoint_id, .. } if endpoint_id == "rslvr-out-corp")));

    // Configured but missing: an error that names it.
    let mut obs = complete();
    obs.endpoints.truncate(1);
    let p = plan(&cfg, &owner(), &obs);
    assert!(
        matches!(&p.decision, Decision::Invalid { problem } if problem.to_string().contains("rslvr-out-corp"))
    );
}

#[test]
fn more_ips_go_into_new_azs_first() {
    let mut cfg = config();
    cfg.inbound_ips = 3;
    let p = plan(&cfg, &owner(), &complete());
    match &p.actions[0] {
        Action::AddEndpointIps { subnet_ids, .. } => {
            assert_eq!(subnet_ids, &vec!["subnet-c".to_string()])
        }
        other => panic!("{other:?}"),
    }
    assert!(p.actions.iter().any(|a| matches!(
        a,
        Action::UpdateRule {
            targets: Targets::InboundEndpointIps,
            ..
        }
    )));

    // Fewer: one goes, the rule and parameters follow.
    let mut obs = complete();
    cfg.inbound_ips = 2;
    obs.endpoints[0].ips.as_mut().unwrap().push(EndpointIp {
        ip_id: "rni-c".into(),
        subnet_id: "subnet-a".into(),
        ip: Some("10.0.1.11".into()),
        ipv6: None,
        status: "ATTACHED".into(),
        status_message: String::new(),
    });
    let p = plan(&cfg, &owner(), &obs);
    assert!(
        p.actions.iter().any(|a| matches!(a,
        Action::RemoveEndpointIps { ips, .. } if ips.len() == 1 && ips[0].subnet_id == "subnet-a"))
    );
}

#[test]
fn a_recreated_cluster_replaces_the_stale_rule() {
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().endpoint_host =
        Some("new999.gr7.eu-west-1.eks.amazonaws.com".into());
    let p = plan_of(&obs);
    assert_phase_order(&p);
    assert!(p
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteRule { rule_id, .. } if rule_id == RULE)));
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::CreateRule { domain, .. } if domain.starts_with("new999"))));
}

#[test]
fn nothing_to_serve_means_no_plumbing() {
    let cfg = Config::default();
    let p = plan(&cfg, &owner(), &complete());
    assert!(
        matches!(&p.decision, Decision::NotManaged { reason } if reason.contains("no client VPCs"))
    );
}

#[test]
fn subnet_picking_spreads_over_azs() {
    let subnets = vec![
        subnet("s-a2", "v", "a"),
        subnet("s-a1", "v", "a"),
        subnet("s-b1", "v", "b"),
        subnet("s-x", "other", "c"),
    ];
    assert_eq!(pick_subnets(&subnets, "v", 2), vec!["s-a1", "s-b1"]);
    assert_eq!(pick_subnets(&subnets, "v", 3), vec!["s-a1", "s-b1", "s-a2"]);
    assert_eq!(
        pick_subnets(&subnets, "v", 4),
        vec!["s-a1", "s-b1", "s-a2", "s-a1"]
    );
    assert!(pick_subnets(&subnets, "none", 2).is_empty());
}

#[test]
fn state_is_not_rewritten_for_a_new_time_stamp_only() {
    let obs = complete();
    let current: BTreeMap<String, String> = obs
        .parameters
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    let publication = match &plan_of(&{
        let mut o = complete();
        o.parameters[1].value = "x".into();
        o
    })
    .actions[0]
    {
        Action::PublishParameters(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    let rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    let changed: Vec<&String> = rendered.changed(&current).map(|(n, _, _)| n).collect();
    assert!(changed.is_empty(), "{changed:?}");
}

/// What a lean observation leaves out: the VPC's DNS attributes and all
/// subnets.
fn lean(mut obs: Observation) -> Observation {
    obs.lean = true;
    obs.cluster_vpc_dns = None;
    obs.cluster_subnets.clear();
    obs.outbound_vpc_subnets.clear();
    obs
}

#[test]
fn a_lean_observation_of_built_plumbing_plans_nothing() {
    assert!(!details_wanted(&config(), &owner(), &complete()));
    let p = plan_of(&lean(complete()));
    assert_eq!(p.decision, Decision::Managed);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(!p.needs_details());
}

#[test]
fn building_or_resizing_wants_a_full_observation() {
    // No inbound endpoint yet: the observer reads everything, and a plan
    // made from a lean observation anyway says it needs more.
    let mut obs = complete();
    obs.endpoints.clear();
    assert!(details_wanted(&config(), &owner(), &obs));
    let p = plan_of(&lean(obs.clone()));
    assert!(p.needs_details(), "{:?} {:#?}", p.decision, p.actions);
    assert!(plan_of(&obs).needs_details());

    // Another number of IPs than configured: never observed lean.
    let mut cfg = config();
    cfg.inbound_ips = 3;
    assert!(details_wanted(&cfg, &owner(), &complete()));
    assert!(plan(&cfg, &owner(), &complete()).needs_details());

    // Client VPCs and no outbound endpoint to serve them.
    let mut obs = complete();
    obs.endpoints
        .retain(|e| e.direction != crate::model::Direction::Outbound);
    assert!(details_wanted(&config(), &owner(), &obs));
    assert!(plan_of(&lean(obs)).needs_details());

    // The prerequisite checks run on a full observation only.
    let mut obs = complete();
    obs.cluster_vpc_dns = Some(VpcDns {
        support: false,
        hostnames: true,
    });
    assert!(matches!(plan_of(&obs).decision, Decision::Invalid { .. }));
}

// ---- AWS takes its time, and sometimes fails ------------------------------

fn ip(id: &str, subnet: &str, addr: &str, status: &str) -> EndpointIp {
    EndpointIp {
        ip_id: id.into(),
        subnet_id: subnet.into(),
        ip: Some(addr.into()),
        ipv6: None,
        status: status.into(),
        status_message: String::new(),
    }
}

fn publication(p: &Plan) -> &Publication {
    p.actions
        .iter()
        .find_map(|a| match a {
            Action::PublishParameters(p) => Some(p.as_ref()),
            _ => None,
        })
        .expect("a publication")
}

#[test]
fn a_failed_ip_is_replaced_never_published_and_named() {
    let mut obs = complete();
    obs.endpoints[0].ips.as_mut().unwrap()[1].status = "FAILED_RESOURCE_GONE".into();
    obs.endpoints[0].status = "ACTION_NEEDED".into();
    let p = plan_of(&obs);
    assert_eq!(kinds(&p)[..1], ["add-ips"]);
    assert!(kinds(&p).contains(&"remove-ips"));
    let removed: Vec<&str> = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::RemoveEndpointIps { ips, .. } => {
                Some(ips.iter().map(|ip| ip.ip_id.as_str()).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(removed, ["rni-b"]);
    // Added into the AZ it leaves (b), or the unused one (c): never a.
    match &p.actions[0] {
        Action::AddEndpointIps { subnet_ids, .. } => {
            assert_eq!(subnet_ids.len(), 1);
            assert_ne!(subnet_ids[0], "subnet-a");
        }
        other => panic!("{other:?}"),
    }
    // The address is no rule target nor published: it is not live.
    let rule_update = p.actions.iter().any(
        |a| matches!(a, Action::UpdateRule { targets: Targets::Known(t), .. } if t.iter().any(|t| t.ip == "10.0.2.10")),
    );
    assert!(!rule_update);
    assert_eq!(
        publication(&p).inbound_ips,
        None,
        "known only once the new IP is there"
    );
    let resources: Vec<&str> = p.problems.iter().map(|x| x.resource.as_str()).collect();
    assert!(
        resources.iter().any(|r| r.contains("10.0.2.10")),
        "{resources:?}"
    );
    assert!(resources.iter().any(|r| r.contains(IN_EP)), "{resources:?}");
    assert!(p.problems.iter().all(|x| x.repair.is_some()));
}

#[test]
fn an_endpoint_still_creating_is_waited_for_and_its_ips_used() {
    let mut obs = complete();
    obs.endpoints[0].status = "CREATING".into();
    for ip in obs.endpoints[0].ips.as_mut().unwrap() {
        ip.status = "CREATING".into();
    }
    obs.associations[0].status = "CREATING".into();
    let p = plan_of(&obs);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(
        p.waits,
        vec![
            Wait::Endpoint {
                endpoint_id: IN_EP.into(),
                direction: Direction::Inbound,
                status: EndpointStatus::Creating,
            },
            Wait::Association {
                rule_id: RULE.into(),
                vpc_id: CLIENT_VPC.into(),
                status: AssociationStatus::Creating,
            },
        ]
    );
    assert!(p.problems.is_empty());
}

#[test]
fn ip_changes_on_an_endpoint_that_is_updating_say_so() {
    let mut obs = complete();
    obs.endpoints[0].status = "UPDATING".into();
    let mut three = config();
    three.inbound_ips = 3;
    let p = plan(&three, &owner(), &obs);
    match &p.actions[0] {
        Action::AddEndpointIps { endpoint_ready, .. } => assert!(!endpoint_ready),
        other => panic!("{other:?}"),
    }
    let p = plan(&three, &owner(), &complete());
    match &p.actions[0] {
        Action::AddEndpointIps { endpoint_ready, .. } => assert!(endpoint_ready),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_association_is_removed_then_made_again() {
    let mut obs = complete();
    obs.associations[0].status = "FAILED".into();
    let p = plan_of(&obs);
    assert_eq!(count(&p, "disassociate"), 1);
    assert_eq!(
        count(&p, "associate"),
        0,
        "not while the failed one is there"
    );
    assert!(p.waits.contains(&Wait::AssociationGone {
        rule_id: RULE.into(),
        vpc_id: CLIENT_VPC.into()
    }));
    assert_eq!(p.problems.len(), 1);
    // Once it is gone: associated again.
    obs.associations.clear();
    let p = plan_of(&obs);
    assert_eq!(count(&p, "associate"), 1);
}

#[test]
fn outbound_ips_no_cidr_covers_are_admitted_on_53() {
    let mut obs = complete();
    // The outbound endpoint sits in a hub outside every client CIDR.
    obs.endpoints[1].ips = Some(vec![
        ip("rni-x", "subnet-x", "10.50.1.7", "ATTACHED"),
        ip("rni-y", "subnet-y", "10.1.2.7", "ATTACHED"),
        ip("rni-z", "subnet-y", "10.50.2.9", "FAILED_CREATION"),
    ]);
    let p = plan_of(&obs);
    let added: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::AuthorizeIngress {
                group: GroupRef::Existing(g),
                permissions,
                ..
            } if g == IN_SG => Some(permissions.iter().map(|p| p.to_string())),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        added,
        ["tcp/53 from 10.50.1.7/32", "udp/53 from 10.50.1.7/32"],
        "the covered one (10.1.2.7) and the failed one get none"
    );
    assert_eq!(count(&p, "authorize"), 1, "nothing on 443 for them");
}

#[test]
fn a_cluster_without_an_eks_made_group_is_invalid_and_names_both_groups() {
    let mut obs = complete();
    let cluster = obs.cluster.as_mut().unwrap();
    cluster.cluster_security_group_id = None;
    cluster.security_group_ids = vec!["sg-users".into()];
    let p = plan_of(&obs);
    match &p.decision {
        Decision::Invalid { problem } => {
            assert!(
                problem.to_string().contains("prod") && problem.to_string().contains("sg-users"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(p.actions.is_empty());
}

#[test]
fn a_teardown_says_what_each_delete_waits_for() {
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    let p = plan_of(&obs);
    assert_phase_order(&p);
    for action in &p.actions {
        match action {
            Action::DeleteRule {
                after_associations, ..
            } => assert!(after_associations),
            Action::DeleteEndpoint {
                endpoint_id,
                after_rules,
                ..
            } => assert_eq!(*after_rules, endpoint_id == OUT_EP, "{endpoint_id}"),
            Action::DeleteSecurityGroup {
                after_interfaces, ..
            } => assert!(after_interfaces),
            _ => {}
        }
    }
    // A rule already DELETING is not deleted again, and still holds its
    // endpoint: the endpoint's delete waits for it.
    obs.rules[0].status = "DELETING".into();
    obs.associations.clear();
    let p = plan_of(&obs);
    assert_eq!(count(&p, "delete-rule"), 0);
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::DeleteEndpoint { endpoint_id, after_rules: true, .. } if endpoint_id == OUT_EP)));
}

#[test]
fn holding_back_keeps_only_what_adds() {
    // A teardown: everything goes, so everything is held back.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    let mut p = plan_of(&obs);
    let all = p.actions.len();
    let held = p.hold_back();
    assert_eq!(held.len(), all);
    assert!(p.actions.is_empty(), "{:?}", kinds(&p));

    // Drift: the missing association and 53 rule are made again, the stray
    // 443 rule stays, and the state is not rewritten with this run's
    // settings.
    let mut obs = complete();
    obs.associations.clear();
    obs.security_group_rules.retain(|r| r.id != "sgr-dns-udp-1");
    let o = owner();
    obs.security_group_rules.push(sg_rule(
        "sgr-api-old",
        CP_SG,
        "tcp",
        443,
        "10.99.0.0/16",
        o.cluster_tags(ARN),
    ));
    let mut p = plan_of(&obs);
    let before = kinds(&p);
    assert!(before.contains(&"revoke"), "{before:?}");
    let held = p.hold_back();
    let after = kinds(&p);
    assert!(
        after.contains(&"associate") && after.contains(&"authorize"),
        "{after:?}"
    );
    assert!(!after.contains(&"revoke"), "{after:?}");
    assert!(!after.contains(&"publish"), "{after:?}");
    assert_eq!(held.len() + after.len(), before.len());

    // A fresh setup takes nothing away: nothing is held back, the
    // publication included.
    let mut fresh = complete();
    fresh.endpoints.clear();
    fresh.rules.clear();
    fresh.associations.clear();
    fresh.security_groups.clear();
    fresh.security_group_rules.clear();
    fresh.parameters.clear();
    let mut p = plan_of(&fresh);
    let n = p.actions.len();
    assert!(p.hold_back().is_empty());
    assert_eq!(p.actions.len(), n);
}

#[test]
fn the_443_rules_go_on_a_group_tagged_for_us_when_asked() {
    use crate::config::{ApiRulesGroup, TAG_API_RULES};
    let mine = |tags: Tags| SecurityGroupView {
        id: "sg-mine".into(),
        vpc_id: CLUSTER_VPC.into(),
        name: "api".into(),
        tags,
    };
    let mut config = config();
    config.api_rules_group = ApiRulesGroup::Tagged;
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().security_group_ids = vec!["sg-users".into(), "sg-mine".into()];
    obs.cluster_groups = vec![mine(tags(&[(TAG_API_RULES, "eks-private-dns")]))];
    let p = plan(&config, &owner(), &obs);
    assert!(matches!(p.decision, Decision::Managed), "{:?}", p.decision);
    // Ours move: added on the tagged group, revoked from the cluster's.
    let on_mine = p.actions.iter().any(|a| {
        matches!(a, Action::AuthorizeIngress { group: GroupRef::Existing(id), permissions, .. }
            if id == "sg-mine" && permissions.iter().all(|p| p.port == 443))
    });
    assert!(on_mine, "{:?}", kinds(&p));
    let off_cluster = p
        .actions
        .iter()
        .any(|a| matches!(a, Action::RevokeIngress { group_id, .. } if group_id == CP_SG));
    assert!(off_cluster, "{:?}", kinds(&p));

    // Tagged for another owner, or not at all: invalid, naming the cluster,
    // the tag and the groups it has; nothing is made.
    for other in [tags(&[(TAG_API_RULES, "someone-else")]), Tags::new()] {
        obs.cluster_groups = vec![mine(other)];
        let p = plan(&config, &owner(), &obs);
        match &p.decision {
            Decision::Invalid { problem } => assert!(
                problem.to_string().contains("prod")
                    && problem.to_string().contains(TAG_API_RULES)
                    && problem.to_string().contains("sg-users, sg-mine"),
                "{problem}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(p.actions.is_empty());
    }
}
