//! The sweep against the AWS emulator: with no events at all it brings the
//! fleet to the right state and keeps it there.

use std::collections::BTreeSet;
use std::time::Duration;

use eks_private_dns_tests::proxy::Proxy;
use eks_private_dns_tests::*;
use shared::config::*;
use shared::sweep::{sweep, SweepReport};

const ONPREM: &str = "192.168.0.0/16";

async fn run(rec: &shared::Reconciler) -> SweepReport {
    sweep(rec, rec.patience(), |_, _, _| {})
        .await
        .expect("the region can be observed")
}

/// No failure, and AWS finished everything the sweep started.
fn assert_no_failures(s: &SweepReport) {
    assert!(s.failures.is_empty(), "{:#?}", s.failures);
    assert_eq!(s.converging, 0, "{:#?}", s.in_progress);
}

#[tokio::test]
async fn a_cluster_created_private_is_pending_first_and_finished_by_a_later_sweep() {
    let emulator = Emulator::start_with(EmulatorOptions {
        create_seconds: 1.5,
        ..EmulatorOptions::slow_resolver()
    })
    .unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[(ENV_ONPREM_CIDRS, ONPREM)]));

    let first = run(&rec).await;
    assert_no_failures(&first);
    assert_eq!(
        (first.clusters_seen, first.pending, first.changed),
        (1, 1, 0)
    );
    assert!(
        aws.snapshot().await.unwrap().endpoints.is_empty(),
        "nothing half-made"
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = run(&rec).await;
    assert_no_failures(&second);
    assert_eq!((second.managed, second.changed), (1, 1));
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.parameters_under("/eks-private-dns/demo/").len(), 3);

    let third = run(&rec).await;
    assert_no_failures(&third);
    assert_eq!(third.write_calls, 0, "{:#?}", third.api_calls_by_service);
    assert_eq!(third.changed, 0);
}

#[tokio::test]
async fn a_cluster_deleted_without_any_event_is_collected() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("gone", &vpc, Access::Private, &[])
        .await
        .unwrap();
    aws.cluster("stays", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[(ENV_CLIENT_VPC_IDS, &client.id)]));
    assert_no_failures(&run(&rec).await);
    assert_eq!(aws.snapshot().await.unwrap().rules.len(), 2);

    aws.delete_cluster("gone").await.unwrap();
    let s = run(&rec).await;
    assert_no_failures(&s);
    assert_eq!(s.clusters_seen, 1);
    assert_eq!(s.orphans_removed, 1);
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.rules.len(), 1);
    assert!(snap.parameters_under("/eks-private-dns/gone/").is_empty());
    assert_eq!(snap.inbound_endpoints().len(), 1, "still used by 'stays'");

    aws.delete_cluster("stays").await.unwrap();
    let s = run(&rec).await;
    assert_no_failures(&s);
    aws.snapshot().await.unwrap().assert_clean();
}

/// The README's removal recipe: opt every cluster out by tag, then one
/// sweep removes everything we own, shared endpoints and groups included.
#[tokio::test]
async fn opting_every_cluster_out_and_one_sweep_removes_everything() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let other = aws.vpc("10.2.0.0/16", &[], &["a", "b"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("one", &vpc, Access::Private, &[])
        .await
        .unwrap();
    aws.cluster("two", &vpc, Access::Private, &[])
        .await
        .unwrap();
    aws.cluster("three", &other, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_ONPREM_CIDRS, ONPREM),
    ]));
    assert_no_failures(&run(&rec).await);
    let built = aws.snapshot().await.unwrap();
    assert_eq!(built.inbound_endpoints().len(), 2);
    assert_eq!(built.outbound_endpoints().len(), 1);

    for name in ["one", "two", "three"] {
        aws.tag_cluster(name, "eks-private-dns/enabled", "false")
            .await
            .unwrap();
    }
    assert_no_failures(&run(&rec).await);
    // Our 443 rules on the clusters' groups included.
    aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn shared_leftovers_of_a_crash_are_collected() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[(ENV_CLIENT_VPC_IDS, &client.id)]));
    assert_no_failures(&run(&rec).await);
    // A crash took the record and the rule but left the endpoints: only
    // ownership markers remain, no cluster names them.
    let snap = aws.snapshot().await.unwrap();
    let rule = snap.rules[0].id().unwrap().to_string();
    aws.remove_rule_by_hand(&rule).await.unwrap();
    for name in snap.parameters_under("/eks-private-dns/").keys() {
        aws.ssm.delete_parameter().name(name).send().await.unwrap();
    }
    aws.delete_cluster("demo").await.unwrap();
    let sg = w_cluster_sg_rules(&snap);
    for (group, rule_id) in sg {
        aws.ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .security_group_rule_ids(rule_id)
            .send()
            .await
            .unwrap();
    }

    let s = run(&rec).await;
    assert_no_failures(&s);
    assert!(s.orphans_removed >= 4, "{s:#?}");
    let snap = aws.snapshot().await.unwrap();
    assert!(snap.endpoints.is_empty());
    assert!(snap.owned_groups("eks-private-dns").is_empty());
}

/// Our 443 rules (group, rule id).
fn w_cluster_sg_rules(snap: &Snapshot) -> Vec<(String, String)> {
    snap.group_rules
        .iter()
        .filter(|r| r.from_port() == Some(443))
        .filter(|r| {
            r.tags()
                .iter()
                .any(|t| t.key() == Some(shared::owner::TAG_OWNER))
        })
        .map(|r| {
            (
                r.group_id().unwrap().to_string(),
                r.security_group_rule_id().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn drift_is_repaired_and_foreign_resources_are_left_alone() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b", "c"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_ONPREM_CIDRS, ONPREM),
    ]));
    assert_no_failures(&run(&rec).await);
    let good = aws.snapshot().await.unwrap();
    let rule = good.rules[0].id().unwrap().to_string();
    let inbound = good.inbound_endpoints()[0].id().unwrap().to_string();
    let inbound_sg = good.inbound_endpoints()[0].security_group_ids()[0].clone();
    let cluster_sg = aws.cluster_sg("demo").await;

    // Someone changes things by hand.
    aws.remove_rule_by_hand(&rule).await.unwrap();
    let dns_rule = good
        .group_rules
        .iter()
        .find(|r| r.group_id() == Some(inbound_sg.as_str()) && r.ip_protocol() == Some("udp"))
        .unwrap()
        .security_group_rule_id()
        .unwrap()
        .to_string();
    aws.ec2
        .revoke_security_group_ingress()
        .group_id(&inbound_sg)
        .security_group_rule_ids(&dns_rule)
        .send()
        .await
        .unwrap();
    let api_rule = w_cluster_sg_rules(&good)[0].clone();
    aws.ec2
        .revoke_security_group_ingress()
        .group_id(&api_rule.0)
        .security_group_rule_ids(&api_rule.1)
        .send()
        .await
        .unwrap();
    aws.ssm
        .put_parameter()
        .name("/eks-private-dns/demo/inbound-ips")
        .value("10.9.9.9")
        .r#type(aws_sdk_ssm::types::ParameterType::StringList)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    aws.ssm
        .delete_parameter()
        .name("/eks-private-dns/demo/endpoint")
        .send()
        .await
        .unwrap();
    let ip = &good.endpoint_ips[&inbound][1];
    aws.resolver
        .disassociate_resolver_endpoint_ip_address()
        .resolver_endpoint_id(&inbound)
        .ip_address(
            aws_sdk_route53resolver::types::IpAddressUpdate::builder()
                .ip_id(ip.ip_id().unwrap())
                .subnet_id(ip.subnet_id().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    // And adds a foreign rule of their own to the cluster security group.
    aws.foreign_tcp_ingress(&cluster_sg, 22, "10.50.0.0/16")
        .await
        .unwrap();

    let s = run(&rec).await;
    assert_no_failures(&s);
    assert_eq!(s.changed, 1);
    let fixed = aws.snapshot().await.unwrap();
    assert_eq!(fixed.rules.len(), 1, "the rule is back");
    let rule = fixed.rules[0].id().unwrap().to_string();
    assert_eq!(fixed.associated_vpcs(&rule), vec![client.id.clone()]);
    let dns: BTreeSet<_> = fixed
        .ingress(&inbound_sg)
        .into_iter()
        .map(|r| (r.protocol, r.port, r.cidr))
        .collect();
    let want: BTreeSet<_> = good
        .ingress(&inbound_sg)
        .into_iter()
        .map(|r| (r.protocol, r.port, r.cidr))
        .collect();
    assert_eq!(dns, want);
    assert_eq!(
        fixed
            .ingress(&cluster_sg)
            .iter()
            .filter(|r| r.owner.is_some())
            .count(),
        2,
        "443 rules back"
    );
    assert!(
        fixed
            .ingress(&cluster_sg)
            .iter()
            .any(|r| r.port == 22 && r.owner.is_none()),
        "foreign rule kept"
    );
    let ips = fixed.ips_of(&inbound);
    assert_eq!(ips.len(), 2, "endpoint back to two IPs");
    assert_eq!(
        fixed.parameters["/eks-private-dns/demo/inbound-ips"].0,
        ips.join(",")
    );
    assert!(fixed
        .parameters
        .contains_key("/eks-private-dns/demo/endpoint"));
    let mut targets: Vec<String> = fixed.rules[0]
        .target_ips()
        .iter()
        .map(|t| t.ip().unwrap().to_string())
        .collect();
    targets.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    assert_eq!(targets, ips, "the rule follows the new IP");

    let again = run(&rec).await;
    assert_no_failures(&again);
    assert_eq!(again.write_calls, 0);
}

#[tokio::test]
async fn two_deployments_with_different_owners_leave_each_other_alone() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc_a = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let vpc_b = aws.vpc("10.3.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("alpha", &vpc_a, Access::Private, &[])
        .await
        .unwrap();
    // Opted out of both: each deployment reads its own owner's key.
    aws.cluster(
        "beta",
        &vpc_b,
        Access::Private,
        &[
            (TAG_ENABLED, "false"),
            ("eks-private-dns/team-b/enabled", "false"),
        ],
    )
    .await
    .unwrap();
    let ours = emulator.reconciler(config(&[(ENV_ONPREM_CIDRS, ONPREM)]));
    let theirs = emulator.reconciler(config(&[
        (ENV_ONPREM_CIDRS, "172.16.0.0/12"),
        (ENV_OWNER, "team-b"),
        (ENV_SSM_PREFIX, "/team-b"),
        (ENV_TRIGGER, "private-access"),
    ]));
    // Theirs manages beta? No: it is opted out of both. Give them their
    // own cluster instead.
    let vpc_c = aws.vpc("10.4.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("gamma", &vpc_c, Access::PublicAndPrivate, &[])
        .await
        .unwrap();
    assert_no_failures(&run(&ours).await);
    assert_no_failures(&run(&theirs).await);
    let snap = aws.snapshot().await.unwrap();
    // alpha: ours (private-only); gamma (public+private): theirs; both
    // deployments see both clusters.
    assert_eq!(snap.parameters_under("/eks-private-dns/").len(), 3);
    assert_eq!(
        snap.parameters_under("/team-b/").len(),
        6,
        "theirs manages alpha and gamma"
    );
    assert_eq!(snap.inbound_endpoints().len(), 3, "one per owner and VPC");
    let before = snap.shape();

    // Each sweeps again, and ours then opts out everything it has: theirs stays.
    assert_eq!(run(&ours).await.write_calls, 0);
    assert_eq!(run(&theirs).await.write_calls, 0);
    assert_eq!(aws.snapshot().await.unwrap().shape(), before);
    aws.tag_cluster("alpha", TAG_ENABLED, "false")
        .await
        .unwrap();
    assert_no_failures(&run(&ours).await);
    let snap = aws.snapshot().await.unwrap();
    assert!(snap.parameters_under("/eks-private-dns/").is_empty());
    assert!(snap.owned_groups("eks-private-dns").is_empty());
    assert_eq!(snap.owned_groups("team-b").len(), 2, "theirs untouched");
    assert!(snap.parameters_under("/team-b/gamma/").len() == 3);
}

#[tokio::test]
async fn the_resolver_rate_limit_holds() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    for i in 0..3 {
        aws.cluster(&format!("c{i}"), &vpc, Access::Private, &[])
            .await
            .unwrap();
    }
    let proxy = Proxy::start(&emulator.url).await.unwrap();
    let rec = emulator.reconciler_via(&proxy.url, config(&[(ENV_CLIENT_VPC_IDS, &client.id)]));
    assert_no_failures(&run(&rec).await);
    let resolver_calls = proxy
        .seen()
        .iter()
        .filter(|s| s.operation.starts_with("Route53Resolver"))
        .count();
    assert!(
        resolver_calls >= 12,
        "enough calls to test the limit: {resolver_calls}"
    );
    // On arrival, in any whole second: the limiter's window is a second and
    // ARRIVAL_GUARD, which absorbs the proxy's arrival jitter (a new
    // connection against a pooled one).
    let peak = proxy.max_in_window("Route53Resolver", Duration::from_secs(1));
    assert!(
        peak <= 4,
        "at most 4 resolver calls in any second, saw {peak}"
    );
    // Other services are not held back by it.
    assert!(proxy.max_in_window("EC2", Duration::from_secs(1)) > 4);
}

#[tokio::test]
async fn fifty_clusters_converge_in_one_sweep_and_the_next_writes_nothing() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let client = aws.vpc("10.200.0.0/16", &[], &["a", "b"]).await.unwrap();
    // Three cluster VPCs: with the outbound endpoint, as many Resolver
    // endpoints as a region allows by default.
    let mut vpcs = Vec::new();
    for v in 0..3 {
        vpcs.push(
            aws.vpc(&format!("10.{}.0.0/16", 10 + v), &[], &["a", "b"])
                .await
                .unwrap(),
        );
    }
    for i in 0..50 {
        aws.cluster(&format!("c{i:02}"), &vpcs[i % 3], Access::Private, &[])
            .await
            .unwrap();
    }
    let rec = emulator.reconciler(config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_RESOLVER_RATE, "100"),
        (ENV_SWEEP_CONCURRENCY, "8"),
    ]));
    let first = run(&rec).await;
    // Clusters racing for their VPC's shared endpoint may need a second pass.
    let first = if first.failures.is_empty() {
        first
    } else {
        run(&rec).await
    };
    assert_no_failures(&first);
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 3, "one per VPC");
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), 50);
    assert_eq!(snap.associations.len(), 50);
    assert_eq!(snap.parameters_under("/eks-private-dns/").len(), 150);

    let before = rec.clients.counter.snapshot();
    let second = run(&rec).await;
    assert_no_failures(&second);
    let calls = rec.clients.counter.snapshot().since(&before).calls;
    eprintln!("no-op sweep of 50, by operation: {calls:#?}");
    // Which parameters are ours is read 50 to a page (the most AWS gives),
    // before the clusters and again in the fresh look for shared leftovers.
    let describes = calls.get("SSM.DescribeParameters").copied().unwrap_or(0);
    assert!(
        describes <= 2 * 150u64.div_ceil(50),
        "DescribeParameters pages: {describes}"
    );
    eprintln!(
        "50 clusters: converging sweep {} calls ({} writes) in {} ms; no-op sweep {} calls \
         ({:?}) in {} ms",
        first.api_calls,
        first.write_calls,
        first.duration_ms,
        second.api_calls,
        second.api_calls_by_service,
        second.duration_ms
    );
    assert_eq!(second.write_calls, 0, "{:#?}", second.api_calls_by_service);
    assert_eq!(second.managed, 50);
    // Resolver state is listed for the region, not per cluster: the three
    // lists and the addresses of each of the 4 endpoints, in the look
    // before the clusters and in the fresh look for shared leftovers.
    let resolver = second
        .api_calls_by_service
        .get("Route53Resolver")
        .copied()
        .unwrap_or(0);
    assert!(
        resolver <= 2 * (3 + 4),
        "resolver calls grow with pages and endpoints, not clusters: {resolver}"
    );
}

#[tokio::test]
async fn throttling_is_retried_and_counted() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let proxy = Proxy::start(&emulator.url).await.unwrap();
    proxy.throttle_every("Route53Resolver", 3);
    let rec = emulator.reconciler_via(
        &proxy.url,
        config(&[(ENV_CLIENT_VPC_IDS, &client.id), (ENV_RESOLVER_RATE, "50")]),
    );
    let s = run(&rec).await;
    assert_no_failures(&s);
    assert!(proxy.injected() > 0);
    assert_eq!(
        s.throttles as usize,
        proxy.injected(),
        "every throttle is counted"
    );
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.rules.len(), 1);
    assert_eq!(snap.associations.len(), 1);
    assert_eq!(snap.endpoints.len(), 2);
}

#[tokio::test]
async fn with_events_on_the_sweep_finds_nothing_to_do() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b", "c"]).await.unwrap();
    let client = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &vpc, Access::Private, &[])
        .await
        .unwrap();
    aws.cluster("other", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_ONPREM_CIDRS, ONPREM),
    ]));
    // The events build the plumbing (the CreateCluster fixture names "demo").
    let event = serde_json::to_vec(&fixture("create-cluster.json").unwrap()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let result = shared::handler::handle_event(&rec, &event, deadline, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        matches!(result, shared::handler::EventResult::Reconciled { ref report, .. } if report.applied)
    );
    assert!(rec.reconcile("other").await.applied);

    let s = run(&rec).await;
    assert_no_failures(&s);
    assert_eq!((s.managed, s.changed, s.orphans_removed), (2, 0, 0));
    assert_eq!(s.write_calls, 0, "{:#?}", s.api_calls_by_service);
}

/// A sweep makes each shared thing once: the shared pass builds every
/// VPC's inbound endpoint and group and the region's outbound endpoint
/// before the other clusters look, so none of them races for it; and a
/// quiet fleet is read in about one call per cluster (DescribeCluster)
/// plus a constant number of pages.
#[tokio::test]
async fn a_sweep_makes_each_shared_thing_once_and_reads_a_quiet_fleet_per_cluster() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let aws = emulator.aws();
    let client = aws.vpc("10.200.0.0/16", &[], &["a", "b"]).await.unwrap();
    let mut vpcs = Vec::new();
    for v in 0..3 {
        vpcs.push(
            aws.vpc(&format!("10.{}.0.0/16", 20 + v), &[], &["a", "b"])
                .await
                .unwrap(),
        );
    }
    const CLUSTERS: usize = 30;
    for i in 0..CLUSTERS {
        aws.cluster(&format!("s{i:02}"), &vpcs[i % 3], Access::Private, &[])
            .await
            .unwrap();
    }
    let rec = emulator.reconciler(config(&[
        (ENV_CLIENT_VPC_IDS, &client.id),
        (ENV_RESOLVER_RATE, "100"),
        (ENV_SWEEP_CONCURRENCY, "8"),
    ]));
    let before = rec.clients.counter.snapshot();
    let first = run(&rec).await;
    assert_no_failures(&first);
    let calls = rec.clients.counter.snapshot().since(&before).calls;
    let count = |op: &str| calls.get(op).copied().unwrap_or(0);
    eprintln!("converging sweep of {CLUSTERS}, by operation: {calls:#?}");
    assert_eq!(
        count("Route53Resolver.CreateResolverEndpoint"),
        4,
        "three inbound endpoints and one outbound, each made once"
    );
    assert_eq!(count("EC2.CreateSecurityGroup"), 4, "each group made once");
    assert_eq!(first.lost_races, 0, "no create of the sweep raced another");
    // The inbound groups' 53 rules: the client VPC's block on each of the
    // three (the outbound endpoint's addresses lie inside it).
    assert_eq!(
        count("EC2.AuthorizeSecurityGroupIngress"),
        3 + CLUSTERS as u64,
        "53 once per inbound group, 443 once per cluster"
    );
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 3);
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), CLUSTERS);
    // Made once, and it serves: every hop of a cluster of each VPC passes.
    for name in ["s00", "s01", "s02"] {
        assert_paths(&rec, name).await;
    }

    let before = rec.clients.counter.snapshot();
    let quiet = run(&rec).await;
    assert_no_failures(&quiet);
    assert_eq!(quiet.write_calls, 0);
    let counts = rec.clients.counter.snapshot().since(&before);
    let describes = counts
        .calls
        .get("EKS.DescribeCluster")
        .copied()
        .unwrap_or(0);
    let others = counts.total() - describes;
    eprintln!(
        "no-op sweep of {CLUSTERS}: {} calls, {describes} DescribeCluster, by operation: {:#?}",
        counts.total(),
        counts.calls
    );
    assert_eq!(
        describes, CLUSTERS as u64,
        "one DescribeCluster per cluster"
    );
    // Besides them: which parameters are ours, with their versions (three
    // a cluster, fifty to a DescribeParameters page, the most SSM gives),
    // the state documents' values (ten to a GetParameters call; each state
    // records the other values and their versions, so they are not read),
    // the addresses of each of the four endpoints, and a few pages more
    // (clusters, groups, rules, VPCs, the Resolver lists).
    let get = |op: &str| counts.calls.get(op).copied().unwrap_or(0);
    assert_eq!(get("SSM.GetParametersByPath"), 0, "no value read by path");
    assert_eq!(
        get("SSM.GetParameters"),
        (CLUSTERS as u64).div_ceil(10),
        "the states only, ten a call"
    );
    let parameters = (CLUSTERS as u64).div_ceil(10) + (3 * CLUSTERS as u64).div_ceil(50);
    assert!(
        others <= parameters + 4 + 10,
        "besides DescribeCluster, pages of parameters and a constant: {others}"
    );
}

/// Each reconcile of a concurrent sweep counts its own calls: through the
/// counting proxy, the clusters' figures add up to no more than what
/// reached AWS, and the sweep's own total is exactly that.
#[tokio::test]
async fn a_concurrent_sweeps_clusters_count_their_own_calls() {
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
    let proxy = Proxy::start(&emulator.url).await.unwrap();
    let aws = emulator.aws();
    let client = aws.vpc("10.200.0.0/16", &[], &["a", "b"]).await.unwrap();
    let vpc = aws.vpc("10.10.0.0/16", &[], &["a", "b"]).await.unwrap();
    for i in 0..10 {
        aws.cluster(&format!("c{i}"), &vpc, Access::Private, &[])
            .await
            .unwrap();
    }
    let rec = emulator.reconciler_via(
        &proxy.url,
        config(&[
            (ENV_CLIENT_VPC_IDS, &client.id),
            (ENV_RESOLVER_RATE, "100"),
            (ENV_SWEEP_CONCURRENCY, "4"),
        ]),
    );
    for pass in ["converging", "quiet"] {
        proxy.reset();
        let swept = run(&rec).await;
        assert_no_failures(&swept);
        assert_eq!(swept.managed, 10, "{pass}");
        let reached = proxy.total().requests as u64;
        let by_cluster: u64 = swept.reports.iter().map(|r| r.api_calls).sum();
        eprintln!(
            "{pass} sweep of 10 clusters: {by_cluster} calls counted by the clusters, \
             {} by the sweep, {reached} reached AWS",
            swept.api_calls
        );
        assert_eq!(
            swept.api_calls, reached,
            "{pass}: the sweep counts every call"
        );
        assert!(
            by_cluster <= reached,
            "{pass}: the clusters counted {by_cluster} calls, {reached} reached AWS"
        );
        if pass == "converging" {
            assert!(
                swept.reports.iter().all(|r| r.write_calls > 0),
                "each cluster counts the writes it made"
            );
        }
    }
}
