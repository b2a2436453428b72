//! The life of clusters against the AWS emulator: sharing, events, going
//! public, deletion, concurrency, foreign resources, prerequisites, and
//! changing inputs. Every assertion is on the AWS state that results.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use eks_private_dns_tests::*;
use shared::config::*;
use shared::handler::{handle_event, EventResult};
use shared::reconcile::Report;

async fn world_with(options: EmulatorOptions) -> World {
    World::new(options, &[]).await
}

async fn world() -> World {
    world_with(EmulatorOptions::default()).await
}

fn ok(report: &Report) {
    assert_eq!(report.error, None, "{report:#?}");
}

async fn run_event(rec: &shared::Reconciler, name: &str) -> EventResult {
    let bytes = serde_json::to_vec(&fixture(name).unwrap()).unwrap();
    handle_event(
        rec,
        &bytes,
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(200),
    )
    .await
    .expect("fixture is well formed")
}

fn reconciled(result: EventResult) -> Report {
    match result {
        EventResult::Reconciled { report, .. } => *report,
        EventResult::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[tokio::test]
async fn clusters_in_one_vpc_share_the_inbound_endpoint_until_the_last_goes() {
    let w = world().await;
    w.aws
        .cluster("one", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    w.aws
        .cluster("two", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("one", None).await);
    ok(&rec.reconcile("two", None).await);

    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(
        snap.inbound_endpoints().len(),
        1,
        "one inbound endpoint per VPC"
    );
    assert_eq!(
        snap.outbound_endpoints().len(),
        1,
        "one outbound endpoint per region"
    );
    assert_eq!(snap.rules.len(), 2, "one rule per cluster");
    let inbound_ips = snap.ips_of(snap.inbound_endpoints()[0].id().unwrap());
    for cluster in ["one", "two"] {
        let host = w.host(cluster).await;
        let rule = snap.rules_for(&host)[0];
        let mut targets: Vec<String> = rule
            .target_ips()
            .iter()
            .map(|t| t.ip().unwrap().to_string())
            .collect();
        targets.sort_by_key(|ip| shared::model::ip_sort_key(ip));
        assert_eq!(targets, inbound_ips);
        assert_eq!(
            snap.parameters[&format!("/eks-private-dns/{cluster}/inbound-ips")].0,
            inbound_ips.join(",")
        );
    }

    // The first cluster goes: its rule, 443 rules and parameters go; the
    // shared endpoints stay for the second.
    let sg_one = w.cluster_sg("one").await;
    w.aws.delete_cluster("one").await.unwrap();
    ok(&rec.reconcile("one", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), 1);
    assert!(snap.parameters_under("/eks-private-dns/one/").is_empty());
    assert!(
        snap.ingress(&sg_one).iter().all(|r| r.3.is_none()),
        "443 rules of one are gone"
    );
    assert_eq!(snap.parameters_under("/eks-private-dns/two/").len(), 3);

    // The last one goes: everything goes.
    w.aws.delete_cluster("two").await.unwrap();
    ok(&rec.reconcile("two", None).await);
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn a_public_cluster_gets_nothing() {
    let w = world().await;
    w.aws
        .cluster("web", &w.cluster_vpc, true, true, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("web", None).await;
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    assert!(report.actions.is_empty());
    assert_eq!(report.write_calls, 0);
    w.aws.snapshot().await.unwrap().assert_clean();

    // With trigger private-access, the same cluster is managed.
    let mut config = w.config();
    config.trigger = Trigger::PrivateAccess;
    let rec = w.emulator.reconciler(config);
    let report = rec.reconcile("web", None).await;
    ok(&report);
    assert_eq!(report.decision, "managed");
    assert_eq!(w.aws.snapshot().await.unwrap().rules.len(), 1);
}

#[tokio::test]
async fn public_to_private_through_an_event_then_back_to_public() {
    let w = world_with(EmulatorOptions {
        update_seconds: 1.0,
        ..Default::default()
    })
    .await;
    w.aws
        .cluster("demo", &w.cluster_vpc, true, true, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("demo", None).await);
    w.aws.snapshot().await.unwrap().assert_clean();

    // Someone makes the endpoint private; CloudTrail sends the event while
    // the cluster is UPDATING; the handler waits and then builds.
    w.aws.set_access("demo", true, false).await.unwrap();
    assert_eq!(
        w.aws
            .describe("demo")
            .await
            .unwrap()
            .status()
            .unwrap()
            .as_str(),
        "UPDATING"
    );
    let report = reconciled(run_event(&rec, "update-cluster-config-private.json").await);
    ok(&report);
    assert_eq!(report.decision, "managed");
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("demo").await;
    assert_eq!(snap.rules_for(&host).len(), 1);
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.parameters_under("/eks-private-dns/demo/").len(), 3);

    // Back to public: everything it made goes.
    w.aws.set_access("demo", true, true).await.unwrap();
    let report = reconciled(run_event(&rec, "update-cluster-config-public.json").await);
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    let snap = w.aws.snapshot().await.unwrap();
    snap.assert_clean();
    let sg = w.cluster_sg("demo").await;
    assert!(snap.ingress(&sg).iter().all(|r| r.3.is_none()));
}

#[tokio::test]
async fn delete_event_removes_everything() {
    let w = world().await;
    w.aws
        .cluster("demo", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("demo", None).await);
    w.aws.delete_cluster("demo").await.unwrap();
    let report = reconciled(run_event(&rec, "delete-cluster.json").await);
    ok(&report);
    assert_eq!(report.decision, "gone");
    w.aws.snapshot().await.unwrap().assert_clean();
    // And again: nothing to do, nothing written.
    let report = reconciled(run_event(&rec, "delete-cluster.json").await);
    ok(&report);
    assert!(report.actions.is_empty());
    assert_eq!(report.write_calls, 0);
}

#[tokio::test]
async fn events_that_are_not_for_us_are_ignored_and_change_nothing() {
    let w = world().await;
    w.aws
        .cluster("demo", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    for name in [
        "update-cluster-config-failed.json",
        "create-nodegroup.json",
        "tag-resource-nodegroup.json",
        "scheduled-sweep.json",
    ] {
        match run_event(&rec, name).await {
            EventResult::Ignored { .. } => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn two_applies_at_once_make_one_set() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let a = w.emulator.reconciler(w.config());
    let b = w.emulator.reconciler(w.config());
    let (ra, rb) = tokio::join!(a.reconcile("prod", None), b.reconcile("prod", None));
    // A loser of a race may report a transient error; a retry converges.
    for r in [&ra, &rb] {
        if let Some(e) = &r.error {
            assert_eq!(r.transient, Some(true), "only transient failures: {e}");
        }
    }
    ok(&a.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), 1);
    assert_eq!(snap.associations.len(), 1);
    assert_eq!(snap.owned_groups("eks-private-dns").len(), 2);
    let sg = w.cluster_sg("prod").await;
    assert_eq!(
        snap.ingress(&sg).iter().filter(|r| r.3.is_some()).count(),
        2
    );
    let after = a.reconcile("prod", None).await;
    ok(&after);
    assert!(after.actions.is_empty(), "{:#?}", after.actions);
}

#[tokio::test]
async fn foreign_resources_survive_everything() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let host = w.host("prod").await;
    let cluster_sg = w.cluster_sg("prod").await;
    let aws = &w.aws;

    // A foreign 443 rule that already admits the on-prem CIDR.
    aws.foreign_tcp_ingress(&cluster_sg, 443, ONPREM)
        .await
        .unwrap();
    // A foreign security group, endpoint and rule (someone's own plumbing).
    let (foreign_sg, foreign_endpoint, foreign_rule) =
        aws.foreign_plumbing(&w.client_vpc).await.unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("prod", None).await);
    let snap = aws.snapshot().await.unwrap();
    // The foreign 443 rule stands for the on-prem CIDR: we added none for it.
    let api = snap.ingress(&cluster_sg);
    assert_eq!(api.iter().filter(|r| r.2 == ONPREM).count(), 1);
    assert!(api.iter().any(|r| r.2 == ONPREM && r.3.is_none()));
    assert_eq!(snap.rules_for(&host).len(), 1);
    // A no-op stays a no-op with the foreign rule in place.
    let again = rec.reconcile("prod", None).await;
    ok(&again);
    assert_eq!(again.write_calls, 0, "{:#?}", again.actions);

    // Teardown leaves every foreign thing as it was.
    w.aws.set_access("prod", true, true).await.unwrap();
    ok(&rec.reconcile("prod", None).await);
    let snap = aws.snapshot().await.unwrap();
    assert_eq!(snap.endpoints.len(), 1);
    assert_eq!(snap.endpoints[0].id(), Some(foreign_endpoint.as_str()));
    assert_eq!(snap.rules.len(), 1);
    assert_eq!(snap.rules[0].id(), Some(foreign_rule.as_str()));
    assert_eq!(
        snap.associated_vpcs(&foreign_rule),
        vec![w.client_vpc.id.clone()]
    );
    assert!(snap
        .groups
        .iter()
        .any(|g| g.group_id() == Some(foreign_sg.as_str())));
    let api = snap.ingress(&cluster_sg);
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(api[0].2, ONPREM);
    assert!(snap.parameters_under("/eks-private-dns/").is_empty());
}

#[tokio::test]
async fn another_owner_never_touches_our_resources() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let ours = w.emulator.reconciler(w.config());
    ok(&ours.reconcile("prod", None).await);
    let before = w.aws.snapshot().await.unwrap();

    // Another deployment (other owner, other prefix) for which the cluster
    // is not managed: it has nothing to remove, and removes nothing of ours.
    let mut other = w.config();
    other.owner = "team-b".into();
    other.ssm_prefix = "/team-b".into();
    other.client_vpc_ids.clear();
    other.onprem_cidrs.clear();
    let theirs = w.emulator.reconciler(other);
    let report = theirs.reconcile("prod", None).await;
    ok(&report);
    assert!(report.actions.is_empty(), "{:#?}", report.actions);
    let after = w.aws.snapshot().await.unwrap();
    assert_eq!(before.shape(), after.shape());
    assert_eq!(before.parameters, after.parameters);
}

#[tokio::test]
async fn missing_prerequisites_are_errors_that_name_the_vpc_and_create_nothing() {
    let w = world().await;
    w.aws.set_dns(&w.cluster_vpc.id, true, false).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("prod", None).await;
    assert_eq!(report.decision, "invalid");
    let error = report.error.clone().unwrap();
    assert!(
        error.contains(&w.cluster_vpc.id) && error.contains("enableDnsHostnames"),
        "{error}"
    );
    assert_eq!(report.transient, Some(false));
    assert_eq!(report.write_calls, 0);
    w.aws.snapshot().await.unwrap().assert_clean();

    // Subnets in one AZ only.
    let single = w.aws.vpc("10.5.0.0/16", &[], &["a"]).await.unwrap();
    w.aws
        .cluster("narrow", &single, true, false, &[])
        .await
        .unwrap();
    let report = rec.reconcile("narrow", None).await;
    assert_eq!(report.decision, "invalid");
    let error = report.error.clone().unwrap();
    assert!(
        error.contains(&single.id) && error.contains("two"),
        "{error}"
    );
    w.aws.snapshot().await.unwrap().assert_clean();

    // A world-open CIDR in a cluster tag is refused unless allowed.
    let open = w.aws.vpc("10.6.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster(
            "open",
            &open,
            true,
            false,
            &[(TAG_ONPREM_CIDRS, "0.0.0.0/0")],
        )
        .await
        .unwrap();
    let report = rec.reconcile("open", None).await;
    assert_eq!(report.decision, "invalid");
    assert!(report.error.clone().unwrap().contains(ENV_ALLOW_WORLD));
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn a_cluster_still_creating_is_pending_and_gets_nothing_half_made() {
    let w = world_with(EmulatorOptions {
        create_seconds: 2.0,
        ..Default::default()
    })
    .await;
    w.aws
        .cluster("demo", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("demo", None).await;
    ok(&report);
    assert_eq!(report.decision, "pending");
    assert!(report.detail.unwrap().contains("CREATING"));
    assert_eq!(report.write_calls, 0);
    w.aws.snapshot().await.unwrap().assert_clean();

    // The CreateCluster event waits for it and then builds.
    let report = reconciled(run_event(&rec, "create-cluster.json").await);
    ok(&report);
    assert_eq!(report.decision, "managed");
    assert_eq!(w.aws.snapshot().await.unwrap().rules.len(), 1);
}

#[tokio::test]
async fn changed_inputs_are_followed() {
    let w = world().await;
    let extra = w.aws.vpc("10.7.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("prod", None).await);
    let host = w.host("prod").await;
    let cluster_sg = w.cluster_sg("prod").await;

    // A client VPC added through the cluster's tag: association, 53 and 443.
    w.aws
        .tag_cluster("prod", TAG_CLIENT_VPC_IDS, &extra.id)
        .await
        .unwrap();
    ok(&rec.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    let rule = snap.rules_for(&host)[0].id().unwrap().to_string();
    let mut expected = vec![w.client_vpc.id.clone(), extra.id.clone()];
    expected.sort();
    assert_eq!(snap.associated_vpcs(&rule), expected);
    assert!(snap
        .ingress(&cluster_sg)
        .iter()
        .any(|r| r.2 == "10.7.0.0/16" && r.1 == 443));
    let inbound_sg = snap.inbound_endpoints()[0].security_group_ids()[0].clone();
    let dns: BTreeSet<_> = snap
        .ingress(&inbound_sg)
        .into_iter()
        .map(|r| (r.0, r.2))
        .collect();
    assert!(dns.contains(&("udp".into(), "10.7.0.0/16".into())));
    assert!(dns.contains(&("tcp".into(), "10.7.0.0/16".into())));

    // Removed again: its association and rules go.
    w.aws
        .tag_cluster("prod", TAG_CLIENT_VPC_IDS, "")
        .await
        .unwrap();
    ok(&rec.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.associated_vpcs(&rule), vec![w.client_vpc.id.clone()]);
    assert!(!snap
        .ingress(&cluster_sg)
        .iter()
        .any(|r| r.2 == "10.7.0.0/16"));
    assert!(!snap
        .ingress(&inbound_sg)
        .iter()
        .any(|r| r.2 == "10.7.0.0/16"));

    // Three inbound IPs instead of two: the endpoint grows into the third
    // AZ, and the rule targets and the SSM parameter follow.
    let mut three = w.config();
    three.inbound_ips = 3;
    let rec3 = w.emulator.reconciler(three);
    ok(&rec3.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    let inbound = snap.inbound_endpoints()[0].id().unwrap().to_string();
    let ips = snap.ips_of(&inbound);
    assert_eq!(ips.len(), 3);
    let azs = w.aws.subnet_azs(&w.cluster_vpc.id).await.unwrap();
    let ip_azs: BTreeSet<&String> = snap.endpoint_ips[&inbound]
        .iter()
        .map(|ip| &azs[ip.subnet_id().unwrap()])
        .collect();
    assert_eq!(ip_azs.len(), 3);
    let mut targets: Vec<String> = snap.rules_for(&host)[0]
        .target_ips()
        .iter()
        .map(|t| t.ip().unwrap().to_string())
        .collect();
    targets.sort_by_key(|ip| shared::model::ip_sort_key(ip));
    assert_eq!(targets, ips);
    assert_eq!(
        snap.parameters["/eks-private-dns/prod/inbound-ips"].0,
        ips.join(",")
    );

    // Opted out by tag: its parts go.
    w.aws
        .tag_cluster("prod", TAG_ENABLED, "false")
        .await
        .unwrap();
    let report = rec3.reconcile("prod", None).await;
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn on_prem_only_makes_no_outbound_endpoint_and_no_rule() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(config(&[(ENV_ONPREM_CIDRS, ONPREM)]));
    ok(&rec.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert!(snap.outbound_endpoints().is_empty());
    assert!(snap.rules.is_empty());
    assert_eq!(snap.parameters_under("/eks-private-dns/prod/").len(), 3);
    let again = rec.reconcile("prod", None).await;
    ok(&again);
    assert_eq!(again.write_calls, 0);
}

#[tokio::test]
async fn peered_vpcs_are_discovered_as_clients() {
    let w = world().await;
    let other = w.aws.vpc("10.8.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws.peer(&w.cluster_vpc.id, &other.id).await.unwrap();
    let unpeered = w.aws.vpc("10.9.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let rec = w
        .emulator
        .reconciler(config(&[(ENV_DISCOVER_PEERED_VPCS, "true")]));
    ok(&rec.reconcile("prod", None).await);
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("prod").await;
    let rule = snap.rules_for(&host)[0].id().unwrap().to_string();
    let mut expected = vec![w.client_vpc.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(
        snap.associated_vpcs(&rule),
        expected,
        "both peers (either side), not {}",
        unpeered.id
    );
    let sg = w.cluster_sg("prod").await;
    let api: BTreeSet<String> = snap.ingress(&sg).into_iter().map(|r| r.2).collect();
    assert_eq!(
        api,
        ["10.1.0.0/16", "10.8.0.0/16"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
