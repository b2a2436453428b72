//! The emulator's dual-stack Route 53 Resolver (tests/emulator/resolver_ipv6.py),
//! driven with the real SDK: what the API reference documents and moto
//! ignores (ResolverEndpointType, Ipv6 addresses, IPv6 rule targets), which
//! the dual-stack plumbing will be proven against.

use aws_sdk_route53resolver::types::{
    IpAddressRequest, ResolverEndpointDirection, ResolverEndpointStatus, ResolverEndpointType,
    TargetAddress, UpdateIpAddress,
};
use eks_private_dns_tests::*;

fn ip(subnet: &str, ip: Option<&str>, ipv6: Option<&str>) -> IpAddressRequest {
    IpAddressRequest::builder()
        .subnet_id(subnet)
        .set_ip(ip.map(str::to_string))
        .set_ipv6(ipv6.map(str::to_string))
        .build()
        .unwrap()
}

#[tokio::test]
async fn dual_stack_endpoints_have_an_ipv6_address_per_ip_from_their_subnets() {
    let emulator = Emulator::start_with(EmulatorOptions {
        resolver_seconds: 1.0,
        ..EmulatorOptions::default()
    })
    .unwrap();
    let aws = emulator.aws();
    let (vpc, _, subnets) = aws
        .dual_stack_vpc(
            "10.60",
            &[
                ("a", Stack::DualStack),
                ("b", Stack::DualStack),
                ("c", Stack::Ipv4),
            ],
        )
        .await
        .unwrap();
    let sg = aws.security_group(&vpc, "dns", &[]).await.unwrap();
    let (a, b, c) = (&subnets[0], &subnets[1], &subnets[2]);
    let chosen = a.1.unwrap().hosts().nth(100).unwrap().to_string();
    let create = |id: &str, ips: Vec<IpAddressRequest>, kind: Option<ResolverEndpointType>| {
        aws.resolver
            .create_resolver_endpoint()
            .creator_request_id(id)
            .name(id)
            .direction(ResolverEndpointDirection::Inbound)
            .security_group_ids(&sg)
            .set_ip_addresses(Some(ips))
            .set_resolver_endpoint_type(kind)
            .send()
    };

    // Dual-stack: an IPv6 address given is kept, one not given is chosen in
    // the subnet's block.
    let dual = create(
        "dual",
        vec![
            ip(&a.0, Some("10.60.1.10"), Some(&chosen)),
            ip(&b.0, None, None),
        ],
        Some(ResolverEndpointType::Dualstack),
    )
    .await
    .unwrap();
    let dual = dual.resolver_endpoint().unwrap();
    assert_eq!(
        dual.resolver_endpoint_type(),
        Some(&ResolverEndpointType::Dualstack)
    );
    assert_eq!(dual.status(), Some(&ResolverEndpointStatus::Creating));
    let dual_id = dual.id().unwrap().to_string();
    let listed = aws.endpoint_addresses(&dual_id).await;
    assert_eq!(listed.len(), 2);
    let by_subnet: Vec<ipnet::Ipv6Net> = vec![a.1.unwrap(), b.1.unwrap()];
    for (v4, v6) in &listed {
        let v6: std::net::Ipv6Addr = v6.as_deref().expect("an IPv6 address").parse().unwrap();
        assert!(
            by_subnet.iter().any(|block| block.contains(&v6)),
            "{v6} of {v4} in a subnet's block"
        );
    }
    assert!(listed
        .iter()
        .any(|(v4, v6)| v4 == "10.60.1.10" && v6.as_deref() == Some(&chosen)));

    // A dual-stack endpoint needs subnets with an IPv6 block: the error
    // names the one without, and nothing is made.
    let refused = create(
        "dual-in-c",
        vec![ip(&a.0, None, None), ip(&c.0, None, None)],
        Some(ResolverEndpointType::Dualstack),
    )
    .await
    .unwrap_err();
    let message = format!("{:?}", refused.into_service_error());
    assert!(message.contains(&c.0), "{message}");
    // The same IPv6 address twice is refused.
    let taken = create(
        "dual-taken",
        vec![ip(&a.0, None, Some(&chosen)), ip(&b.0, None, None)],
        Some(ResolverEndpointType::Dualstack),
    )
    .await
    .unwrap_err();
    assert!(format!("{:?}", taken.into_service_error()).contains("already in use"));

    // IPV4 by default, with no IPv6 address; made dual-stack in place
    // (UPDATING, then OPERATIONAL), with the address asked for.
    let v4 = create("v4", vec![ip(&a.0, None, None), ip(&b.0, None, None)], None)
        .await
        .unwrap();
    let v4 = v4.resolver_endpoint().unwrap();
    assert_eq!(
        v4.resolver_endpoint_type(),
        Some(&ResolverEndpointType::Ipv4)
    );
    let v4_id = v4.id().unwrap().to_string();
    assert!(aws
        .endpoint_addresses(&v4_id)
        .await
        .iter()
        .all(|(_, v6)| v6.is_none()));
    aws.until_endpoint_operational(&v4_id).await;
    let first = aws
        .resolver
        .list_resolver_endpoint_ip_addresses()
        .resolver_endpoint_id(&v4_id)
        .send()
        .await
        .unwrap()
        .ip_addresses()
        .iter()
        .find(|x| x.subnet_id() == Some(a.0.as_str()))
        .unwrap()
        .clone();
    let wanted = a.1.unwrap().hosts().nth(200).unwrap().to_string();
    let updated = aws
        .resolver
        .update_resolver_endpoint()
        .resolver_endpoint_id(&v4_id)
        .resolver_endpoint_type(ResolverEndpointType::Dualstack)
        .update_ip_addresses(
            UpdateIpAddress::builder()
                .ip_id(first.ip_id().unwrap())
                .ipv6(&wanted)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let updated = updated.resolver_endpoint().unwrap();
    assert_eq!(updated.status(), Some(&ResolverEndpointStatus::Updating));
    assert_eq!(
        updated.resolver_endpoint_type(),
        Some(&ResolverEndpointType::Dualstack)
    );
    // The new IPv6 addresses are listed once the change ends, not before
    // (the stricter of what AWS may do).
    assert!(
        aws.endpoint_addresses(&v4_id)
            .await
            .iter()
            .all(|(_, v6)| v6.is_none()),
        "no IPv6 address while UPDATING"
    );
    aws.until_endpoint_operational(&v4_id).await;
    let now = aws.endpoint_addresses(&v4_id).await;
    assert!(now.iter().all(|(_, v6)| v6.is_some()), "{now:?}");
    assert!(now
        .iter()
        .any(|(v4, v6)| Some(v4.as_str()) == first.ip() && v6.as_deref() == Some(wanted.as_str())));
    // Back to IPV4: the IPv6 addresses are still listed while UPDATING,
    // and gone once it ends.
    aws.resolver
        .update_resolver_endpoint()
        .resolver_endpoint_id(&v4_id)
        .resolver_endpoint_type(ResolverEndpointType::Ipv4)
        .send()
        .await
        .unwrap();
    assert_eq!(aws.endpoint_addresses(&v4_id).await, now);
    aws.until_endpoint_operational(&v4_id).await;
    assert!(aws
        .endpoint_addresses(&v4_id)
        .await
        .iter()
        .all(|(_, v6)| v6.is_none()));

    // An IPv6 address not asked for is chosen anywhere in the block, not
    // the lowest free one: an endpoint made again without asking gets other
    // addresses than its predecessor had.
    let mut made: Vec<Vec<Option<String>>> = Vec::new();
    for name in ["unasked-1", "unasked-2"] {
        let out = create(
            name,
            vec![ip(&a.0, None, None), ip(&b.0, None, None)],
            Some(ResolverEndpointType::Dualstack),
        )
        .await
        .unwrap();
        let id = out.resolver_endpoint().unwrap().id().unwrap().to_string();
        let listed = aws.endpoint_addresses(&id).await;
        made.push(listed.into_iter().map(|(_, v6)| v6).collect());
        aws.delete_endpoint_by_hand(&id).await;
    }
    let (first_ipv6, second_ipv6) = (&made[0], &made[1]);
    assert!(
        first_ipv6.iter().all(|v6| !second_ipv6.contains(v6)),
        "{first_ipv6:?} then {second_ipv6:?}"
    );

    // IPV6 is neither a type to update to nor one to leave.
    let to_ipv6 = aws
        .resolver
        .update_resolver_endpoint()
        .resolver_endpoint_id(&v4_id)
        .resolver_endpoint_type(ResolverEndpointType::Ipv6)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", to_ipv6.into_service_error()).contains("IPV6"));

    // A rule's targets may carry Ipv6, and say so when read back.
    let target = |ip: Option<&str>, ipv6: Option<&str>| {
        TargetAddress::builder()
            .set_ip(ip.map(str::to_string))
            .set_ipv6(ipv6.map(str::to_string))
            .port(53)
            .build()
    };
    let outbound = aws
        .resolver
        .create_resolver_endpoint()
        .creator_request_id("out")
        .direction(ResolverEndpointDirection::Outbound)
        .security_group_ids(&sg)
        .ip_addresses(ip(&a.0, None, None))
        .ip_addresses(ip(&b.0, None, None))
        .resolver_endpoint_type(ResolverEndpointType::Dualstack)
        .send()
        .await
        .unwrap();
    let rule = aws
        .resolver
        .create_resolver_rule()
        .creator_request_id("rule")
        .rule_type(aws_sdk_route53resolver::types::RuleTypeOption::Forward)
        .domain_name("abc.eu-west-1.api.aws")
        .resolver_endpoint_id(outbound.resolver_endpoint().unwrap().id().unwrap())
        .target_ips(target(Some("10.60.1.10"), None))
        .target_ips(target(None, Some(&chosen)))
        .send()
        .await
        .unwrap();
    let targets = rule.resolver_rule().unwrap().target_ips();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1].ipv6(), Some(chosen.as_str()));
    assert_eq!(targets[1].ip(), None);
}
