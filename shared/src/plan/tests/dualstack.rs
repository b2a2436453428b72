//! Dual-stack inbound endpoints (`EKS_PRIVATE_DNS_ENDPOINT_TYPE`): made,
//! changed in place, kept, refused with a reason; IPv6 rule targets where
//! the outbound endpoint has IPv6 addresses; what a lean look leaves out.

use super::*;
use crate::config::EndpointTypeSetting;

/// The `complete()` cluster made an IPv6 one, its subnets with IPv6 blocks.
fn ipv6_cluster() -> Observation {
    let mut obs = complete();
    if let Some(c) = obs.cluster.as_mut() {
        c.ipv6 = true;
    }
    for (i, subnet) in obs.cluster_subnets.iter_mut().enumerate() {
        subnet.ipv6_cidr = Some(net(&format!("2600:1f18:0:{i}::/64")));
    }
    obs
}

fn with_setting(setting: EndpointTypeSetting) -> Config {
    Config {
        endpoint_type: setting,
        ..config()
    }
}

/// The inbound endpoint made dual-stack, each IP with an IPv6 address.
fn dual(obs: &mut Observation) {
    let inbound = obs.endpoints.iter_mut().find(|e| e.id == IN_EP).unwrap();
    inbound.endpoint_type = EndpointType::DualStack;
    for (i, ip) in inbound.ips.iter_mut().flatten().enumerate() {
        let address: std::net::Ipv6Addr = format!("2600:1f18:0:{i}::10").parse().unwrap();
        ip.ipv6 = Some(address.to_string());
    }
}

fn created_inbound(p: &Plan) -> (EndpointType, Vec<String>, Vec<Option<String>>) {
    p.actions
        .iter()
        .find_map(|a| match a {
            Action::CreateEndpoint {
                direction: Direction::Inbound,
                endpoint_type,
                subnet_ids,
                ipv6s,
                ..
            } => Some((*endpoint_type, subnet_ids.clone(), ipv6s.clone())),
            _ => None,
        })
        .expect("an inbound endpoint is made")
}

fn type_change(p: &Plan) -> Option<(EndpointType, EndpointType)> {
    p.actions.iter().find_map(|a| match a {
        Action::ChangeEndpointType { from, to, .. } => Some((*from, *to)),
        _ => None,
    })
}

#[test]
fn an_ipv6_cluster_gets_a_dual_stack_endpoint_and_an_ipv4_one_does_not() {
    let mut obs = ipv6_cluster();
    obs.endpoints.retain(|e| e.id != IN_EP);
    let (kind, subnets, ipv6s) = created_inbound(&plan_of(&obs));
    assert_eq!(kind, EndpointType::DualStack);
    assert_eq!(subnets.len(), 2);
    assert!(ipv6s.iter().all(Option::is_none), "AWS picks: {ipv6s:?}");

    // The same subnets, an IPv4 cluster: IPV4, unless the setting says.
    if let Some(c) = obs.cluster.as_mut() {
        c.ipv6 = false;
    }
    assert_eq!(created_inbound(&plan_of(&obs)).0, EndpointType::Ipv4);
    let forced = plan(
        &with_setting(EndpointTypeSetting::DualStack),
        &owner(),
        &obs,
    );
    assert_eq!(created_inbound(&forced).0, EndpointType::DualStack);

    // A dual-stack endpoint name (api.aws) is an IPv6 cluster too.
    if let Some(c) = obs.cluster.as_mut() {
        c.endpoint_host = Some("abc123.gr7.eu-west-1.api.aws".into());
    }
    assert_eq!(created_inbound(&plan_of(&obs)).0, EndpointType::DualStack);

    // One subnet without an IPv6 block: auto stays IPv4.
    obs.cluster_subnets[1].ipv6_cidr = None;
    assert_eq!(created_inbound(&plan_of(&obs)).0, EndpointType::Ipv4);
    assert_eq!(
        created_inbound(&plan(
            &with_setting(EndpointTypeSetting::Ipv4),
            &owner(),
            &ipv6_cluster_without_endpoint()
        ))
        .0,
        EndpointType::Ipv4
    );
}

fn ipv6_cluster_without_endpoint() -> Observation {
    let mut obs = ipv6_cluster();
    obs.endpoints.retain(|e| e.id != IN_EP);
    obs
}

#[test]
fn dualstack_without_ipv6_blocks_is_invalid_and_names_the_subnets() {
    let mut obs = ipv6_cluster_without_endpoint();
    obs.cluster_subnets[1].ipv6_cidr = None;
    let p = plan(
        &with_setting(EndpointTypeSetting::DualStack),
        &owner(),
        &obs,
    );
    let Decision::Invalid { problem } = &p.decision else {
        panic!("{:?}", p.decision);
    };
    let text = problem.to_string();
    assert!(
        text.contains("subnet-b") && !text.contains("subnet-a"),
        "{text}"
    );
    assert!(text.contains("EKS_PRIVATE_DNS_ENDPOINT_TYPE"), "{text}");
    assert!(p.actions.is_empty());
}

#[test]
fn a_made_again_dual_stack_endpoint_asks_for_the_published_ipv6_addresses() {
    let mut obs = ipv6_cluster_without_endpoint();
    let name = "/eks-private-dns/prod/inbound-ipv6";
    obs.parameters.push(ParameterView {
        name: name.into(),
        value: "2600:1f18:0:1::99,2600:1f18:0:0::98,2600:1f18:0:7::1".into(),
        kind: "StringList".into(),
        version: 1,
    });
    let (kind, subnets, ipv6s) = created_inbound(&plan_of(&obs));
    assert_eq!(kind, EndpointType::DualStack);
    assert_eq!(subnets, ["subnet-a", "subnet-b"]);
    // Each in the subnet whose block holds it; the third fits none.
    assert_eq!(
        ipv6s,
        [
            Some("2600:1f18::98".into()),
            Some("2600:1f18:0:1::99".into())
        ]
    );
}

#[test]
fn the_type_changes_in_place_and_a_dual_stack_endpoint_stays_under_auto() {
    // An IPv4 endpoint, an IPv6 cluster: changed, addresses learnt after.
    let p = plan_of(&ipv6_cluster());
    assert_eq!(
        type_change(&p),
        Some((EndpointType::Ipv4, EndpointType::DualStack))
    );
    assert_eq!(count(&p, "create-endpoint"), 0);
    assert!(publication(&p).inbound_ips.is_none());
    assert!(p.needs_details());
    assert_phase_order(&p);

    // Dual-stack already: nothing to change for the IPv6 cluster, nor for
    // an IPv4 one under auto; ipv4 changes it back.
    let mut obs = ipv6_cluster();
    dual(&mut obs);
    let p = plan_of(&obs);
    assert_eq!(type_change(&p), None);
    assert_eq!(
        publication(&p).inbound_ipv6.as_deref(),
        Some(&["2600:1f18:0:1::10".to_string(), "2600:1f18::10".to_string()][..])
    );
    let mut v4 = complete();
    dual(&mut v4);
    assert_eq!(type_change(&plan_of(&v4)), None);
    let back = plan(&with_setting(EndpointTypeSetting::Ipv4), &owner(), &v4);
    assert_eq!(
        type_change(&back),
        Some((EndpointType::DualStack, EndpointType::Ipv4))
    );
}

#[test]
fn ipv6_targets_only_through_an_outbound_endpoint_with_ipv6() {
    let mut obs = ipv6_cluster();
    dual(&mut obs);
    let targets = |p: &Plan| -> Option<Vec<String>> {
        p.actions.iter().find_map(|a| match a {
            Action::UpdateRule {
                targets: Targets::Known(t),
                ..
            } => Some(t.iter().map(|t| t.ip.clone()).collect()),
            _ => None,
        })
    };
    // The outbound endpoint is IPV4: the rule keeps its IPv4 targets.
    assert_eq!(targets(&plan_of(&obs)), None);
    let outbound = obs.endpoints.iter_mut().find(|e| e.id == OUT_EP).unwrap();
    outbound.endpoint_type = EndpointType::DualStack;
    let want = [
        "10.0.1.10",
        "10.0.2.10",
        "2600:1f18:0:1::10",
        "2600:1f18::10",
    ];
    assert_eq!(
        targets(&plan_of(&obs)),
        Some(want.map(String::from).to_vec())
    );
    // Six targets at most: with more, the IPv4 ones only.
    assert_eq!(
        rule_targets(
            &["a", "b", "c", "d"].map(String::from),
            &["e", "f", "g", "h"].map(String::from)
        )
        .len(),
        4
    );
}

#[test]
fn a_lean_look_is_enough_only_when_the_type_is_settled() {
    let cfg = config();
    // IPv4 endpoint, IPv4 cluster: settled.
    assert!(!complete().details_wanted(&cfg, &owner()));
    // IPv6 cluster on an IPv4 endpoint: the subnets decide, so read them.
    assert!(ipv6_cluster().details_wanted(&cfg, &owner()));
    let mut obs = ipv6_cluster();
    dual(&mut obs);
    assert!(!obs.details_wanted(&cfg, &owner()));
    let dualstack = with_setting(EndpointTypeSetting::DualStack);
    assert!(complete().details_wanted(&dualstack, &owner()));
    assert!(!obs.details_wanted(&dualstack, &owner()));
    let ipv4 = with_setting(EndpointTypeSetting::Ipv4);
    assert!(obs.details_wanted(&ipv4, &owner()));
}

#[test]
fn a_dual_stack_endpoint_is_published_only_with_its_ipv6_addresses() {
    // Made dual-stack, its IPv6 addresses not listed yet (AWS still
    // UPDATING): nothing is published until they are, so that the
    // forwarders change once.
    let mut obs = ipv6_cluster();
    let inbound = obs.endpoints.iter_mut().find(|e| e.id == IN_EP).unwrap();
    inbound.endpoint_type = EndpointType::DualStack;
    let p = plan_of(&obs);
    let publication = publication(&p);
    assert!(publication.dual_stack);
    assert!(publication.render(None).is_none());
    // Listed: published, both kinds.
    dual(&mut obs);
    let rendered = publication_of_plan(&plan_of(&obs));
    assert!(rendered.contains("inbound-ipv6"), "{rendered}");
}

fn publication_of_plan(p: &Plan) -> String {
    let rendered = publication(p).render(None).expect("renders");
    rendered
        .values
        .iter()
        .map(|(name, _, _)| name.clone())
        .collect::<Vec<_>>()
        .join(" ")
}
