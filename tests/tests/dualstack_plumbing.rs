//! Dual-stack plumbing against the emulator (Resolver taking its time): an
//! IPv6 cluster gets a DUALSTACK inbound endpoint whose IPv4 and IPv6
//! addresses are published and admitted on every hop; the type changes in
//! place both ways; an endpoint made again keeps both kinds of address.

use eks_private_dns_tests::*;
use shared::config::*;
use shared::reconcile::Report;

/// An IPv6 on-premises network, besides the world's IPv4 one.
const ONPREM_V6: &str = "fd12:3456:789a::/48";

struct DualWorld {
    w: World,
    vpc: Vpc,
}

/// The common world, plus a dual-stack VPC peered with the client VPC and
/// a private IPv6 cluster "v6" in its two dual-stack subnets.
async fn dual_world() -> DualWorld {
    let w = World::new(EmulatorOptions::slow_resolver(), &[]).await;
    let (vpc, _, _) = w
        .aws
        .dual_stack_vpc("10.70", &[("a", Stack::DualStack), ("b", Stack::DualStack)])
        .await
        .unwrap();
    w.aws.peer(&vpc.id, &w.client_vpc.id).await.unwrap();
    w.aws.ipv6_cluster("v6", &vpc).await.unwrap();
    DualWorld { w, vpc }
}

fn settings(w: &World, endpoint_type: &str) -> Config {
    let onprem = format!("{ONPREM},{ONPREM_V6}");
    config(&[
        (ENV_CLIENT_VPC_IDS, &w.client_vpc.id),
        (ENV_ONPREM_CIDRS, &onprem),
        (ENV_ENDPOINT_TYPE, endpoint_type),
    ])
}

fn ok(report: &Report) {
    assert_converged(report);
}

/// The VPC's inbound endpoint as AWS lists it.
struct Inbound {
    id: String,
    /// Its ResolverEndpointType.
    kind: String,
    /// Its security group.
    group: String,
    /// (IPv4, IPv6) of each address, sorted.
    addresses: Vec<(String, Option<String>)>,
}

/// The VPC's inbound endpoint.
async fn inbound(w: &World, vpc: &Vpc) -> Inbound {
    let snap = w.aws.snapshot().await.unwrap();
    let found: Vec<_> = snap
        .inbound_endpoints()
        .into_iter()
        .filter(|e| e.host_vpc_id() == Some(vpc.id.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "one inbound endpoint: {found:#?}");
    let e = found[0];
    let id = e.id().unwrap().to_string();
    let kind = e
        .resolver_endpoint_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let group = e.security_group_ids()[0].clone();
    let addresses = w.aws.endpoint_addresses(&id).await;
    Inbound {
        id,
        kind,
        group,
        addresses,
    }
}

fn published(snap: &Snapshot, leaf: &str) -> Option<String> {
    snap.parameters
        .get(&format!("/eks-private-dns/v6/{leaf}"))
        .map(|(value, _)| value.clone())
}

/// The targets of the cluster's forward rule as AWS lists them, joined in
/// address order.
async fn forward_targets(w: &World, cluster: &str) -> String {
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host(cluster).await;
    let rules = snap.rules_for(&host);
    assert_eq!(rules.len(), 1, "one rule for {host}");
    let mut targets: Vec<String> = rules[0]
        .target_ips()
        .iter()
        .filter_map(|t| t.ip().or(t.ipv6()).map(str::to_string))
        .collect();
    targets.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    targets.join(",")
}

fn joined(addresses: &[(String, Option<String>)], ipv6: bool) -> String {
    let mut list: Vec<String> = addresses
        .iter()
        .filter_map(|(v4, v6)| if ipv6 { v6.clone() } else { Some(v4.clone()) })
        .collect();
    list.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    list.join(",")
}

#[tokio::test]
async fn an_ipv6_cluster_gets_a_dual_stack_endpoint_published_and_admitted() {
    let DualWorld { w, vpc } = dual_world().await;
    let rec = w.emulator.reconciler(settings(&w, "auto"));
    ok(&rec.reconcile("v6").await);

    let Inbound {
        kind,
        group,
        addresses,
        ..
    } = inbound(&w, &vpc).await;
    assert_eq!(kind, "DUALSTACK");
    assert_eq!(addresses.len(), 2);
    assert!(
        addresses.iter().all(|(_, v6)| v6.is_some()),
        "{addresses:?}"
    );
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(
        published(&snap, "inbound-ips"),
        Some(joined(&addresses, false))
    );
    assert_eq!(
        published(&snap, "inbound-ipv6"),
        Some(joined(&addresses, true))
    );
    // The IPv6 on-premises network on 53 (both protocols) and on 443.
    let dns: Vec<_> = snap
        .ingress(&group)
        .into_iter()
        .filter(|r| r.cidr == ONPREM_V6)
        .map(|r| (r.protocol, r.port))
        .collect();
    assert_eq!(dns, [("tcp".to_string(), 53), ("udp".to_string(), 53)]);
    let api = w.cluster_sg("v6").await;
    assert!(
        snap.ingress(&api)
            .iter()
            .any(|r| r.cidr == ONPREM_V6 && r.port == 443),
        "{:#?}",
        snap.ingress(&api)
    );
    // The region's outbound endpoint is IPV4: the rule targets the IPv4
    // addresses only.
    assert_eq!(forward_targets(&w, "v6").await, joined(&addresses, false));
    assert_paths(&rec, "v6").await;
    // One Forwarders Changed event, with both kinds of address.
    let events = w.emulator.events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        addresses_of(&events[0], "inbound-ipv6"),
        joined(&addresses, true)
    );

    // Nothing to do the second time, and no event.
    let again = rec.reconcile("v6").await;
    ok(&again);
    assert_eq!(again.write_calls, 0, "{:#?}", again.actions);
    assert_eq!(w.emulator.events().await.unwrap().len(), 1);
    // Nor for the sweep, which reads the fleet its own way.
    let swept = shared::sweep::sweep(&rec, rec.patience(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((swept.managed, swept.failed), (1, 0), "{swept:#?}");
    assert_eq!(swept.write_calls, 0, "{swept:#?}");
}

/// A Forwarders Changed event's addresses of `key`, joined.
fn addresses_of(event: &serde_json::Value, key: &str) -> String {
    let list: Vec<String> = event["detail"][key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    list.join(",")
}

#[tokio::test]
async fn the_endpoint_type_changes_in_place_both_ways() {
    let DualWorld { w, vpc } = dual_world().await;
    let v4 = w.emulator.reconciler(settings(&w, "ipv4"));
    ok(&v4.reconcile("v6").await);
    let Inbound {
        id,
        kind,
        addresses: before,
        ..
    } = inbound(&w, &vpc).await;
    assert_eq!(kind, "IPV4");
    assert!(before.iter().all(|(_, v6)| v6.is_none()));
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(published(&snap, "inbound-ipv6"), None);

    // auto: the same endpoint, made dual-stack, its IPv4 addresses kept.
    let auto = w.emulator.reconciler(settings(&w, "auto"));
    let report = auto.reconcile("v6").await;
    ok(&report);
    // The new IPv6 addresses are listed once the change ends: the record
    // waited for them, and nothing failed on the way.
    assert!(report.absorbed.is_empty(), "{:#?}", report.absorbed);
    assert!(
        report.actions.iter().any(|a| a.contains("to DUALSTACK")),
        "{:#?}",
        report.actions
    );
    let Inbound {
        id: same,
        kind,
        addresses: after,
        ..
    } = inbound(&w, &vpc).await;
    assert_eq!((same.as_str(), kind.as_str()), (id.as_str(), "DUALSTACK"));
    assert_eq!(joined(&after, false), joined(&before, false));
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(published(&snap, "inbound-ipv6"), Some(joined(&after, true)));
    assert!(after.iter().all(|(_, v6)| v6.is_some()), "{after:?}");
    assert_eq!(forward_targets(&w, "v6").await, joined(&before, false));
    assert_paths(&auto, "v6").await;
    // The forwarders gained the IPv6 addresses: exactly one more event.
    let events = w.emulator.events().await.unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(
        addresses_of(&events[1], "inbound-ipv6"),
        joined(&after, true)
    );
    assert_eq!(
        addresses_of(&events[1], "inbound-ips"),
        joined(&before, false)
    );
    let quiet = auto.reconcile("v6").await;
    ok(&quiet);
    assert_eq!(quiet.write_calls, 0, "{:#?}", quiet.actions);
    assert_eq!(w.emulator.events().await.unwrap().len(), 2);

    // ipv4 again: back, its IPv6 addresses gone, and inbound-ipv6 goes.
    ok(&v4.reconcile("v6").await);
    let Inbound {
        id: same,
        kind,
        addresses: back,
        ..
    } = inbound(&w, &vpc).await;
    assert_eq!((same.as_str(), kind.as_str()), (id.as_str(), "IPV4"));
    assert!(back.iter().all(|(_, v6)| v6.is_none()), "{back:?}");
    assert_eq!(joined(&back, false), joined(&before, false));
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(published(&snap, "inbound-ipv6"), None);
    assert_eq!(forward_targets(&w, "v6").await, joined(&before, false));
    assert_paths(&v4, "v6").await;
    // The forwarders lost the IPv6 addresses: exactly one more event.
    let events = w.emulator.events().await.unwrap();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(addresses_of(&events[2], "inbound-ipv6"), "");
    assert_eq!(
        addresses_of(&events[2], "inbound-ips"),
        joined(&before, false)
    );
    let quiet = v4.reconcile("v6").await;
    ok(&quiet);
    assert_eq!(quiet.write_calls, 0, "{:#?}", quiet.actions);
    assert_eq!(w.emulator.events().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_dual_stack_endpoint_made_again_keeps_both_kinds_of_address() {
    let DualWorld { w, vpc } = dual_world().await;
    let rec = w.emulator.reconciler(settings(&w, "auto"));
    ok(&rec.reconcile("v6").await);
    let Inbound {
        id: old, addresses, ..
    } = inbound(&w, &vpc).await;

    w.aws.delete_endpoint_by_hand(&old).await;

    ok(&rec.reconcile("v6").await);
    let Inbound {
        id: new,
        kind,
        addresses: again,
        ..
    } = inbound(&w, &vpc).await;
    assert_ne!(new, old);
    assert_eq!(kind, "DUALSTACK");
    // The emulator picks an IPv6 address not asked for at random: only
    // asking for the published ones keeps them.
    assert_eq!(again, addresses, "the same IPv4 and IPv6 addresses");
    assert_eq!(forward_targets(&w, "v6").await, joined(&again, false));
    assert_paths(&rec, "v6").await;
    // The forwarders are as they were: no event beyond the first.
    assert_eq!(w.emulator.events().await.unwrap().len(), 1);
}

#[tokio::test]
async fn dualstack_in_subnets_without_ipv6_blocks_says_which_and_makes_nothing() {
    let w = World::new(EmulatorOptions::default(), &[]).await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(settings(&w, "dualstack"));
    let report = rec.reconcile("prod").await;
    assert_eq!(report.decision, "invalid");
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.contains(&w.cluster_vpc.subnets[0]) && error.contains(ENV_ENDPOINT_TYPE),
        "{error}"
    );
    w.aws.snapshot().await.unwrap().assert_clean();
}

/// A configured outbound endpoint that is dual-stack, in a client VPC with
/// an IPv6 block: the rule targets the inbound IPv6 addresses as well, and
/// the client VPC's IPv6 block is admitted on 53 and 443.
#[tokio::test]
async fn a_dual_stack_outbound_endpoint_gets_ipv6_targets_and_its_vpc_is_admitted() {
    use aws_sdk_route53resolver::types::{
        IpAddressRequest, ResolverEndpointDirection, ResolverEndpointType,
    };
    let DualWorld { w, vpc } = dual_world().await;
    let (client, client_block, subnets) = w
        .aws
        .dual_stack_vpc("10.80", &[("a", Stack::DualStack), ("b", Stack::DualStack)])
        .await
        .unwrap();
    w.aws.peer(&vpc.id, &client.id).await.unwrap();
    let client_v6 = client_block.to_string();
    let group = w
        .aws
        .security_group(&client, "corp-out", &[])
        .await
        .unwrap();
    let outbound = w
        .aws
        .resolver
        .create_resolver_endpoint()
        .creator_request_id("corp-outbound")
        .name("corp-outbound")
        .direction(ResolverEndpointDirection::Outbound)
        .resolver_endpoint_type(ResolverEndpointType::Dualstack)
        .security_group_ids(&group)
        .set_ip_addresses(Some(
            subnets
                .iter()
                .map(|(id, _)| IpAddressRequest::builder().subnet_id(id).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap()
        .resolver_endpoint()
        .and_then(|e| e.id())
        .unwrap()
        .to_string();
    w.aws.until_endpoint_operational(&outbound).await;
    let settings = config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_ONPREM_CIDRS, ONPREM),
        (ENV_OUTBOUND_ENDPOINT_ID, &outbound),
    ]);
    let rec = w.emulator.reconciler(settings);
    ok(&rec.reconcile("v6").await);

    let Inbound {
        kind,
        group,
        addresses,
        ..
    } = inbound(&w, &vpc).await;
    assert_eq!(kind, "DUALSTACK");
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("v6").await;
    let rules = snap.rules_for(&host);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].resolver_endpoint_id(), Some(outbound.as_str()));
    let mut targets: Vec<String> = rules[0]
        .target_ips()
        .iter()
        .filter_map(|t| t.ip().or(t.ipv6()).map(str::to_string))
        .collect();
    targets.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    let mut want: Vec<String> = addresses
        .iter()
        .flat_map(|(v4, v6)| [Some(v4.clone()), v6.clone()])
        .flatten()
        .collect();
    want.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    assert_eq!(targets, want, "IPv4 and IPv6 targets");
    let admits = |group: &str, port: i32| {
        snap.ingress(group)
            .iter()
            .any(|r| r.cidr == client_v6 && r.port == port)
    };
    assert!(admits(&group, 53), "{:#?}", snap.ingress(&group));
    let api = w.cluster_sg("v6").await;
    assert!(admits(&api, 443), "{:#?}", snap.ingress(&api));
    assert_paths(&rec, "v6").await;
    let quiet = rec.reconcile("v6").await;
    ok(&quiet);
    assert_eq!(quiet.write_calls, 0, "{:#?}", quiet.actions);
}
