//! Prerequisites, shared endpoints, the configured outbound endpoint, sizing.

use super::*;

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
        Action::DeleteSecurityGroup { role, .. } if *role == Direction::Inbound)));
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
    let mut rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    // The apply writes the value at the version the compared state has.
    rendered.record_written(&obs.parameters[1].name, 1);
    let changed: Vec<&String> = rendered.changed(&current).map(|(n, _, _)| n).collect();
    assert!(changed.is_empty(), "{changed:?}");
}

/// A sweep's leaders: the first cluster by name of each VPC that needs an
/// inbound endpoint and has none of ours live; none where one serves.
#[test]
fn one_leader_per_vpc_that_needs_its_inbound_endpoint() {
    let obs = complete();
    let prod = obs.cluster.clone().unwrap();
    let leaders = |endpoints: &[EndpointView], clusters: &[&ClusterView]| {
        let ids: Vec<ClusterId> = clusters.iter().map(|c| ClusterId::home(&c.name)).collect();
        let pairs: Vec<(&ClusterId, &ClusterView)> =
            ids.iter().zip(clusters.iter().copied()).collect();
        shared_leaders(&config(), &owner(), endpoints, &pairs, &Default::default())
            .into_iter()
            .map(|id| id.name)
            .collect::<Vec<_>>()
    };
    assert!(
        leaders(&obs.endpoints, &[&prod]).is_empty(),
        "the VPC's endpoint is live"
    );
    let mut alpha = prod.clone();
    alpha.name = "alpha".into();
    let mut public = prod.clone();
    public.name = "aaa-public".into();
    public.public_access = true;
    let mut other_vpc = prod.clone();
    other_vpc.name = "zeta".into();
    other_vpc.vpc_id = Some("vpc-0000000f".into());
    assert_eq!(
        leaders(&[], &[&prod, &public, &alpha, &other_vpc]),
        ["alpha", "zeta"],
        "the first managed cluster of each VPC"
    );
}
