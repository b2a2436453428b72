//! Lean observations, what AWS reports failed or is still doing.

use super::*;

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
    assert!(!complete().details_wanted(&config(), &owner()));
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
    assert!(obs.details_wanted(&config(), &owner()));
    let p = plan_of(&lean(obs.clone()));
    assert!(p.needs_details(), "{:?} {:#?}", p.decision, p.actions);
    assert!(plan_of(&obs).needs_details());

    // Another number of IPs than configured: never observed lean.
    let mut cfg = config();
    cfg.inbound_ips = 3;
    assert!(complete().details_wanted(&cfg, &owner()));
    assert!(plan(&cfg, &owner(), &complete()).needs_details());

    // Client VPCs and no outbound endpoint to serve them.
    let mut obs = complete();
    obs.endpoints
        .retain(|e| e.direction != crate::model::Direction::Outbound);
    assert!(obs.details_wanted(&config(), &owner()));
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
                account: Account::Home,
                endpoint_id: IN_EP.into(),
                direction: Direction::Inbound,
                status: EndpointStatus::Creating,
            },
            Wait::Association {
                account: Account::Home,
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
        account: Account::Home,
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
