//! Building and repairing: fresh, partial, drifted, foreign rules as facts.

use super::*;

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
                assert_eq!(*role, Direction::Inbound);
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

/// The inbound endpoint deleted by hand: the new one asks for the
/// addresses the cluster published, each in the subnet that holds it, as
/// far as no interface holds them now.
#[test]
fn an_inbound_endpoint_made_again_asks_for_the_published_addresses() {
    let mut obs = complete();
    obs.endpoints.retain(|e| e.id != IN_EP);
    for (subnet, cidr) in
        obs.cluster_subnets
            .iter_mut()
            .zip(["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"])
    {
        subnet.cidr = Some(net(cidr));
    }
    assert_eq!(obs.addresses_to_keep(&config()), ["10.0.1.10", "10.0.2.10"]);
    let created = |obs: &Observation| -> (Vec<String>, Vec<Option<String>>) {
        plan_of(obs)
            .actions
            .iter()
            .find_map(|a| match a {
                Action::CreateEndpoint {
                    direction: Direction::Inbound,
                    subnet_ids,
                    ips,
                    ..
                } => Some((subnet_ids.clone(), ips.clone())),
                _ => None,
            })
            .expect("an inbound endpoint is made")
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        created(&obs),
        (
            s(&["subnet-a", "subnet-b"]),
            vec![Some("10.0.1.10".into()), Some("10.0.2.10".into())]
        )
    );
    // One of them is taken now: AWS picks that one, in an AZ not used yet.
    obs.addresses_in_use.insert("10.0.2.10".into());
    assert_eq!(
        created(&obs),
        (
            s(&["subnet-a", "subnet-b"]),
            vec![Some("10.0.1.10".into()), None]
        )
    );
    // Three addresses wanted: the two published, then the third AZ.
    obs.addresses_in_use.clear();
    let mut three = config();
    three.inbound_ips = 3;
    let (subnets, ips) = new_endpoint_addresses(&three, &obs, CLUSTER_VPC, 3, false);
    assert_eq!(subnets, s(&["subnet-a", "subnet-b", "subnet-c"]));
    assert_eq!(
        ips,
        vec![Some("10.0.1.10".into()), Some("10.0.2.10".into()), None]
    );
    // An address outside every subnet (the subnet is gone) is not asked for.
    obs.cluster_subnets.retain(|s| s.id != "subnet-b");
    let (subnets, ips) = new_endpoint_addresses(&config(), &obs, CLUSTER_VPC, 2, false);
    assert_eq!(subnets, s(&["subnet-a", "subnet-c"]));
    assert_eq!(ips, vec![Some("10.0.1.10".into()), None]);
}

/// While the endpoint is there, and for a cluster that never published,
/// nothing is pinned (and observe reads no interfaces).
#[test]
fn nothing_is_pinned_while_the_endpoint_lives_or_for_a_new_cluster() {
    let obs = complete();
    assert!(obs.addresses_to_keep(&config()).is_empty());
    let mut fresh = complete();
    fresh.endpoints.clear();
    fresh.parameters.clear();
    assert!(fresh.addresses_to_keep(&config()).is_empty());
    for action in plan_of(&fresh).actions {
        if let Action::CreateEndpoint { ips, .. } = action {
            assert!(ips.iter().all(Option::is_none), "{ips:?}");
        }
    }
}
