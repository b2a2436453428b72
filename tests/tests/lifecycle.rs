//! The life of clusters against the AWS emulator: sharing, events, going
//! public, deletion, concurrency, foreign resources, prerequisites, and
//! changing inputs. Every assertion is on the AWS state that results.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use eks_private_dns_tests::*;
use shared::config::*;
use shared::handler::{handle_event, EventResult};
use shared::model::ClusterId;
use shared::reconcile::Report;

async fn world_with(options: EmulatorOptions) -> World {
    World::new(options, &[]).await
}

/// Resolver takes its time, as on AWS (tests/emulator/launcher.py).
async fn world() -> World {
    world_with(EmulatorOptions::slow_resolver()).await
}

/// No error, and converged: AWS finished what the run started.
fn ok(report: &Report) {
    assert_converged(report);
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
        .cluster("one", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    w.aws
        .cluster("two", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("one").await);
    ok(&rec.reconcile("two").await);
    assert_paths(&rec, "one").await;
    assert_paths(&rec, "two").await;

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
    ok(&rec.reconcile("one").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), 1);
    assert!(snap.parameters_under("/eks-private-dns/one/").is_empty());
    assert!(
        snap.ingress(&sg_one).iter().all(|r| r.owner.is_none()),
        "443 rules of one are gone"
    );
    assert_eq!(snap.parameters_under("/eks-private-dns/two/").len(), 3);
    assert_paths(&rec, "two").await;

    // The last one goes: everything goes.
    w.aws.delete_cluster("two").await.unwrap();
    ok(&rec.reconcile("two").await);
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn a_public_cluster_gets_nothing() {
    let w = world().await;
    w.aws
        .cluster("web", &w.cluster_vpc, Access::PublicAndPrivate, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("web").await;
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    assert!(report.actions.is_empty());
    assert_eq!(report.write_calls, 0);
    w.aws.snapshot().await.unwrap().assert_clean();

    // With trigger private-access, the same cluster is managed.
    let mut config = w.config();
    config.trigger = Trigger::PrivateAccess;
    let rec = w.emulator.reconciler(config);
    let report = rec.reconcile("web").await;
    ok(&report);
    assert_eq!(report.decision, "managed");
    assert_eq!(w.aws.snapshot().await.unwrap().rules.len(), 1);
}

#[tokio::test]
async fn public_to_private_through_an_event_then_back_to_public() {
    let w = world_with(EmulatorOptions {
        update_seconds: 1.0,
        ..EmulatorOptions::slow_resolver()
    })
    .await;
    w.aws
        .cluster("demo", &w.cluster_vpc, Access::PublicAndPrivate, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("demo").await);
    w.aws.snapshot().await.unwrap().assert_clean();

    // Someone makes the endpoint private; CloudTrail sends the event while
    // the cluster is UPDATING; the handler waits and then builds.
    w.aws.set_access("demo", Access::Private).await.unwrap();
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
    assert_paths(&rec, "demo").await;

    // Back to public: everything it made goes.
    w.aws
        .set_access("demo", Access::PublicAndPrivate)
        .await
        .unwrap();
    let report = reconciled(run_event(&rec, "update-cluster-config-public.json").await);
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    assert_all_gone(&w, "demo").await;
}

/// Nothing of ours is left, and no rule of ours on the cluster's own
/// security group.
async fn assert_all_gone(w: &World, cluster: &str) {
    let snap = w.aws.snapshot().await.unwrap();
    snap.assert_clean();
    let sg = w.cluster_sg(cluster).await;
    assert!(snap.ingress(&sg).iter().all(|r| r.owner.is_none()));
}

#[tokio::test]
async fn delete_event_removes_everything() {
    let w = world().await;
    w.aws
        .cluster("demo", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("demo").await);
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
        .cluster("demo", &w.cluster_vpc, Access::Private, &[])
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
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let a = w.emulator.reconciler(w.config());
    let b = w.emulator.reconciler(w.config());
    let (ra, rb) = tokio::join!(a.reconcile("prod"), b.reconcile("prod"));
    // A loser of a race may report a transient error; a retry converges.
    for r in [&ra, &rb] {
        if let Some(e) = &r.error {
            assert_eq!(r.transient, Some(true), "only transient failures: {e}");
        }
    }
    ok(&a.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert_eq!(snap.outbound_endpoints().len(), 1);
    assert_eq!(snap.rules.len(), 1);
    assert_eq!(snap.associations.len(), 1);
    assert_eq!(snap.owned_groups("eks-private-dns").len(), 2);
    let sg = w.cluster_sg("prod").await;
    assert_eq!(
        snap.ingress(&sg)
            .iter()
            .filter(|r| r.owner.is_some())
            .count(),
        2
    );
    let after = a.reconcile("prod").await;
    ok(&after);
    assert!(after.actions.is_empty(), "{:#?}", after.actions);
    assert_paths(&a, "prod").await;
}

#[tokio::test]
async fn foreign_resources_survive_everything() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
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
    ok(&rec.reconcile("prod").await);
    let snap = aws.snapshot().await.unwrap();
    // The foreign 443 rule stands for the on-prem CIDR: we added none for it.
    let api = snap.ingress(&cluster_sg);
    assert_eq!(api.iter().filter(|r| r.cidr == ONPREM).count(), 1);
    assert!(api.iter().any(|r| r.cidr == ONPREM && r.owner.is_none()));
    assert_eq!(snap.rules_for(&host).len(), 1);
    // A no-op stays a no-op with the foreign rule in place.
    let again = rec.reconcile("prod").await;
    ok(&again);
    assert_eq!(again.write_calls, 0, "{:#?}", again.actions);
    assert_paths(&rec, "prod").await;

    // Teardown leaves every foreign thing as it was.
    w.aws
        .set_access("prod", Access::PublicAndPrivate)
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
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
    assert_eq!(api[0].cidr, ONPREM);
    assert!(snap.parameters_under("/eks-private-dns/").is_empty());
}

#[tokio::test]
async fn another_owner_never_touches_our_resources() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let ours = w.emulator.reconciler(w.config());
    ok(&ours.reconcile("prod").await);
    let before = w.aws.snapshot().await.unwrap();

    // Another deployment (other owner, other prefix) for which the cluster
    // is not managed: it has nothing to remove, and removes nothing of ours.
    let mut other = w.config();
    other.owner = "team-b".into();
    other.ssm_prefix = "/team-b".into();
    other.client_vpc_ids.clear();
    other.onprem_cidrs.clear();
    let theirs = w.emulator.reconciler(other);
    let report = theirs.reconcile("prod").await;
    ok(&report);
    assert!(report.actions.is_empty(), "{:#?}", report.actions);
    let after = w.aws.snapshot().await.unwrap();
    assert_eq!(before.shape(), after.shape());
    assert_eq!(before.parameters, after.parameters);
}

#[tokio::test]
async fn missing_prerequisites_are_errors_that_name_the_vpc_and_create_nothing() {
    let w = world().await;
    w.aws
        .set_dns(
            &w.cluster_vpc.id,
            shared::model::VpcDns {
                support: true,
                hostnames: false,
            },
        )
        .await
        .unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("prod").await;
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
        .cluster("narrow", &single, Access::Private, &[])
        .await
        .unwrap();
    let report = rec.reconcile("narrow").await;
    assert_eq!(report.decision, "invalid");
    let error = report.error.clone().unwrap();
    assert!(
        error.contains(&single.id) && error.contains("two"),
        "{error}"
    );
    w.aws.snapshot().await.unwrap().assert_clean();

    // A world-open CIDR in a cluster tag is refused: a tag stays inside the
    // envelope (the private ranges by default), whatever the switches.
    let open = w.aws.vpc("10.6.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster(
            "open",
            &open,
            Access::Private,
            &[(TAG_ONPREM_CIDRS, "0.0.0.0/0")],
        )
        .await
        .unwrap();
    let report = rec.reconcile("open").await;
    assert_eq!(report.decision, "invalid");
    assert!(report
        .error
        .clone()
        .unwrap()
        .contains(ENV_TAG_CIDR_ENVELOPE));
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn a_cluster_still_creating_is_pending_and_gets_nothing_half_made() {
    let w = world_with(EmulatorOptions {
        create_seconds: 2.0,
        ..EmulatorOptions::slow_resolver()
    })
    .await;
    w.aws
        .cluster("demo", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("demo").await;
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
    assert_paths(&rec, "demo").await;
}

#[tokio::test]
async fn changed_inputs_are_followed() {
    let w = world().await;
    let extra = w.aws.vpc("10.7.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("prod").await);
    let host = w.host("prod").await;
    let cluster_sg = w.cluster_sg("prod").await;
    // Made: one Forwarders Changed event with the published addresses.
    let snap = w.aws.snapshot().await.unwrap();
    let first_ips = snap.ips_of(snap.inbound_endpoints()[0].id().unwrap());
    let events = forwarders_events(&w).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_forwarders_event(&events[0], "prod", &host, &first_ips, 1, false);
    // A run with nothing to do says nothing.
    ok(&rec.reconcile("prod").await);
    assert_eq!(forwarders_events(&w).await.len(), 1);

    // A client VPC added through the cluster's tag: association, 53 and 443.
    w.aws
        .tag_cluster("prod", TAG_CLIENT_VPC_IDS, &extra.id)
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    let rule = snap.rules_for(&host)[0].id().unwrap().to_string();
    let mut expected = vec![w.client_vpc.id.clone(), extra.id.clone()];
    expected.sort();
    assert_eq!(snap.associated_vpcs(&rule), expected);
    assert!(snap
        .ingress(&cluster_sg)
        .iter()
        .any(|r| r.cidr == "10.7.0.0/16" && r.port == 443));
    let inbound_sg = snap.inbound_endpoints()[0].security_group_ids()[0].clone();
    let dns: BTreeSet<_> = snap
        .ingress(&inbound_sg)
        .into_iter()
        .map(|r| (r.protocol, r.cidr))
        .collect();
    assert!(dns.contains(&("udp".into(), "10.7.0.0/16".into())));
    assert!(dns.contains(&("tcp".into(), "10.7.0.0/16".into())));
    assert_paths(&rec, "prod").await;
    // Another client VPC does not change what on-prem forwarders need.
    assert_eq!(forwarders_events(&w).await.len(), 1);

    // Removed again: its association and rules go.
    w.aws
        .tag_cluster("prod", TAG_CLIENT_VPC_IDS, "")
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.associated_vpcs(&rule), vec![w.client_vpc.id.clone()]);
    assert!(!snap
        .ingress(&cluster_sg)
        .iter()
        .any(|r| r.cidr == "10.7.0.0/16"));
    assert!(!snap
        .ingress(&inbound_sg)
        .iter()
        .any(|r| r.cidr == "10.7.0.0/16"));
    assert_paths(&rec, "prod").await;

    // Three inbound IPs instead of two: the endpoint grows into the third
    // AZ, and the rule targets and the SSM parameter follow.
    let mut three = w.config();
    three.inbound_ips = 3;
    let rec3 = w.emulator.reconciler(three);
    ok(&rec3.reconcile("prod").await);
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
    assert_paths(&rec3, "prod").await;
    // The third address: one event, the next revision, all three.
    let events = forwarders_events(&w).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_forwarders_event(&events[1], "prod", &host, &ips, 2, false);

    // Opted out by tag: its parts go.
    w.aws
        .tag_cluster("prod", TAG_ENABLED, "false")
        .await
        .unwrap();
    let report = rec3.reconcile("prod").await;
    ok(&report);
    assert_eq!(report.decision, "not-managed");
    w.aws.snapshot().await.unwrap().assert_clean();
    // Removed: said once, and not again by the next run.
    ok(&rec3.reconcile("prod").await);
    let events = forwarders_events(&w).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_forwarders_event(&events[2], "prod", &host, &[], 3, true);
}

/// The Forwarders Changed events the emulator's EventBridge accepted.
async fn forwarders_events(w: &World) -> Vec<serde_json::Value> {
    let all = w.emulator.events().await.unwrap();
    for e in &all {
        assert_eq!(e["source"], "eks-private-dns", "{e}");
        assert_eq!(e["detail-type"], "Forwarders Changed", "{e}");
        assert_eq!(e["bus"], "default", "{e}");
    }
    all
}

fn assert_forwarders_event(
    event: &serde_json::Value,
    cluster: &str,
    endpoint: &str,
    ips: &[String],
    revision: u64,
    removed: bool,
) {
    let d = &event["detail"];
    assert_eq!(d["cluster"], cluster, "{event}");
    assert_eq!(d["endpoint"], endpoint, "{event}");
    assert_eq!(d["inbound-ips"], serde_json::json!(ips), "{event}");
    assert_eq!(d["revision"], revision, "{event}");
    assert_eq!(d["removed"], removed, "{event}");
    assert_eq!(d["account"], "123456789012", "{event}");
    assert_eq!(d["region"], REGION, "{event}");
}

#[tokio::test]
async fn on_prem_only_makes_no_outbound_endpoint_and_no_rule() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(config(&[(ENV_ONPREM_CIDRS, ONPREM)]));
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.inbound_endpoints().len(), 1);
    assert!(snap.outbound_endpoints().is_empty());
    assert!(snap.rules.is_empty());
    assert_eq!(snap.parameters_under("/eks-private-dns/prod/").len(), 3);
    let again = rec.reconcile("prod").await;
    ok(&again);
    assert_eq!(again.write_calls, 0);
    assert_paths(&rec, "prod").await;
}

#[tokio::test]
async fn peered_vpcs_are_discovered_as_clients() {
    let w = world().await;
    let other = w.aws.vpc("10.8.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws.peer(&w.cluster_vpc.id, &other.id).await.unwrap();
    let unpeered = w.aws.vpc("10.9.0.0/16", &[], &["a", "b"]).await.unwrap();
    // A peer of another account cannot be described from here: it is
    // skipped with a warning that names it, and never blocks the cluster.
    let foreign = w
        .aws
        .peer_in_account(&w.cluster_vpc.id, "111122223333", "10.7.0.0/16")
        .await
        .unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w
        .emulator
        .reconciler(config(&[(ENV_DISCOVER_PEERED_VPCS, "true")]));
    let report = rec.reconcile("prod").await;
    ok(&report);
    assert_eq!(report.decision, "managed");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains(&foreign) && report.warnings[0].contains("111122223333"),
        "{:?}",
        report.warnings
    );
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("prod").await;
    let rule = snap.rules_for(&host)[0].id().unwrap().to_string();
    let mut expected = vec![w.client_vpc.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(
        snap.associated_vpcs(&rule),
        expected,
        "both peers (either side), not {} nor {foreign}",
        unpeered.id
    );
    let sg = w.cluster_sg("prod").await;
    let api: BTreeSet<String> = snap.ingress(&sg).into_iter().map(|r| r.cidr).collect();
    assert_eq!(
        api,
        ["10.1.0.0/16", "10.8.0.0/16"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_paths(&rec, "prod").await;
}

/// The common world with cluster "prod" private and its plumbing built.
async fn built() -> (World, shared::Reconciler) {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("prod").await);
    (w, rec)
}

/// The inbound group of `cluster`'s VPC and what it admits on 53.
fn dns_sources(snap: &Snapshot) -> BTreeSet<(String, String)> {
    let inbound_sg = snap.inbound_endpoints()[0].security_group_ids()[0].clone();
    snap.ingress(&inbound_sg)
        .into_iter()
        .map(|r| (r.protocol, r.cidr))
        .collect()
}

fn outbound_ips(snap: &Snapshot) -> Vec<String> {
    let outbound = snap.outbound_endpoints();
    assert_eq!(outbound.len(), 1, "{outbound:#?}");
    snap.ips_of(outbound[0].id().unwrap())
}

#[tokio::test]
async fn an_outbound_endpoint_in_a_hub_vpc_is_admitted_on_53_and_every_path_holds() {
    let w = world().await;
    // A hub VPC that is no client: forwarded queries come from its
    // outbound endpoint's IPs, which no client CIDR covers.
    let hub = w.aws.vpc("10.50.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let mut config = w.config();
    config.outbound_vpc_id = Some(hub.id.clone());
    let rec = w.emulator.reconciler(config);
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(
        snap.outbound_endpoints()[0].host_vpc_id(),
        Some(hub.id.as_str())
    );
    let sources = dns_sources(&snap);
    for ip in outbound_ips(&snap) {
        for protocol in ["udp", "tcp"] {
            assert!(
                sources.contains(&(protocol.to_string(), format!("{ip}/32"))),
                "{protocol} 53 from the outbound IP {ip}: {sources:?}"
            );
        }
    }
    assert_paths(&rec, "prod").await;
    // Nothing left to do, and the /32s are kept as they are.
    let again = rec.reconcile("prod").await;
    ok(&again);
    assert_eq!(again.write_calls, 0, "{:#?}", again.actions);

    // The path check is an oracle that can fail: without the /32s, the
    // client VPC's path breaks at the inbound group.
    let inbound_sg = snap.inbound_endpoints()[0].security_group_ids()[0].clone();
    let ip = outbound_ips(&snap)[0].clone();
    let rule_ids: Vec<String> = snap
        .group_rules
        .iter()
        .filter(|r| {
            r.group_id() == Some(inbound_sg.as_str())
                && r.cidr_ipv4() == Some(format!("{ip}/32").as_str())
        })
        .filter_map(|r| r.security_group_rule_id().map(str::to_string))
        .collect();
    assert_eq!(rule_ids.len(), 2);
    w.aws
        .ec2
        .revoke_security_group_ingress()
        .group_id(&inbound_sg)
        .set_security_group_rule_ids(Some(rule_ids))
        .send()
        .await
        .unwrap();
    let paths = rec.paths(&ClusterId::home("prod")).await.unwrap();
    assert!(!paths.ok());
    let failures = paths.failures();
    assert!(
        failures.len() == 1
            && failures[0].contains(&w.client_vpc.id)
            && failures[0].contains("inbound group admits the outbound IPs")
            && failures[0].contains(&ip),
        "{failures:#?}"
    );
    // And the next reconcile repairs it.
    ok(&rec.reconcile("prod").await);
    assert_paths(&rec, "prod").await;

    // Teardown leaves nothing, the /32s included.
    w.aws
        .set_access("prod", Access::PublicAndPrivate)
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
    w.aws.snapshot().await.unwrap().assert_clean();
}

#[tokio::test]
async fn one_outbound_endpoint_serves_clusters_whose_client_vpcs_differ() {
    let w = world().await;
    // Two clusters in two VPCs, each with its own client VPC (by tag): the
    // region's one outbound endpoint sits in the first one's client VPC,
    // which is no client of the second.
    let second_vpc = w.aws.vpc("10.20.0.0/16", &[], &["a", "b"]).await.unwrap();
    let second_client = w.aws.vpc("10.21.0.0/16", &[], &["a", "b"]).await.unwrap();
    w.aws
        .cluster(
            "one",
            &w.cluster_vpc,
            Access::Private,
            &[(TAG_CLIENT_VPC_IDS, &w.client_vpc.id)],
        )
        .await
        .unwrap();
    w.aws
        .cluster(
            "two",
            &second_vpc,
            Access::Private,
            &[(TAG_CLIENT_VPC_IDS, &second_client.id)],
        )
        .await
        .unwrap();
    let rec = w.emulator.reconciler(config(&[]));
    ok(&rec.reconcile("one").await);
    ok(&rec.reconcile("two").await);
    let snap = w.aws.snapshot().await.unwrap();
    let outbound = snap.outbound_endpoints();
    assert_eq!(outbound.len(), 1, "one outbound endpoint for the region");
    assert_eq!(outbound[0].host_vpc_id(), Some(w.client_vpc.id.as_str()));
    assert_paths(&rec, "one").await;
    assert_paths(&rec, "two").await;
    // The sweep finds both right.
    let summary = shared::sweep::sweep(&rec, rec.patience(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(summary.write_calls, 0, "{summary:#?}");
}

#[tokio::test]
async fn a_configured_outbound_endpoint_elsewhere_is_admitted_and_never_deleted() {
    let w = world().await;
    let hub = w.aws.vpc("10.60.0.0/16", &[], &["a", "b"]).await.unwrap();
    let (_, corp_endpoint, _) = w.aws.foreign_plumbing(&hub).await.unwrap();
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let mut config = w.config();
    config.outbound_endpoint_id = Some(corp_endpoint.clone());
    let rec = w.emulator.reconciler(config);
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("prod").await;
    assert_eq!(
        snap.rules_for(&host)[0].resolver_endpoint_id(),
        Some(corp_endpoint.as_str())
    );
    let sources = dns_sources(&snap);
    for ip in snap.ips_of(&corp_endpoint) {
        assert!(
            sources.contains(&("udp".to_string(), format!("{ip}/32"))),
            "{ip}: {sources:?}"
        );
    }
    assert_paths(&rec, "prod").await;
    w.aws
        .set_access("prod", Access::PublicAndPrivate)
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert!(snap
        .endpoints
        .iter()
        .any(|e| e.id() == Some(corp_endpoint.as_str())));
    assert!(snap.parameters_under("/eks-private-dns/").is_empty());
    assert!(snap.owned_groups("eks-private-dns").is_empty());
}

#[tokio::test]
async fn a_failed_ip_is_replaced_and_never_published() {
    let (w, rec) = built().await;
    let snap = w.aws.snapshot().await.unwrap();
    let inbound = snap.inbound_endpoints()[0].id().unwrap().to_string();
    let failed = snap.ips_of(&inbound)[0].clone();
    w.emulator
        .set_resolver_status(serde_json::json!({
            "endpoint": inbound, "ip": failed, "status": "FAILED_RESOURCE_GONE"
        }))
        .await
        .unwrap();
    // The plan names it, and what it does about it.
    let (plan, _) = rec.plan(&ClusterId::home("prod"), None).await.unwrap();
    assert!(
        plan.problems.iter().any(|p| p.resource.contains(&failed)),
        "{:#?}",
        plan.problems
    );
    let report = rec.reconcile("prod").await;
    ok(&report);
    assert!(
        report.repaired.iter().any(|r| r.contains(&failed)),
        "{report:#?}"
    );
    let snap = w.aws.snapshot().await.unwrap();
    let ips = snap.ips_of(&inbound);
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(!ips.contains(&failed), "the failed IP is gone: {ips:?}");
    assert!(!snap.parameters["/eks-private-dns/prod/inbound-ips"]
        .0
        .contains(&failed));
    assert_eq!(
        snap.inbound_endpoints()[0].status().map(|s| s.as_str()),
        Some("OPERATIONAL")
    );
    assert_paths(&rec, "prod").await;
}

#[tokio::test]
async fn an_endpoint_aws_reports_failed_is_an_error_that_names_it() {
    let (w, rec) = built().await;
    let snap = w.aws.snapshot().await.unwrap();
    let inbound = snap.inbound_endpoints()[0].id().unwrap().to_string();
    w.emulator
        .set_resolver_status(serde_json::json!({"endpoint": inbound, "status": "ACTION_NEEDED"}))
        .await
        .unwrap();
    let report = rec.reconcile("prod").await;
    let error = report.error.clone().expect("an error");
    assert!(
        error.contains(&inbound) && error.contains("ACTION_NEEDED"),
        "{error}"
    );
    assert_eq!(report.transient, Some(false));
    assert!(!rec.paths(&ClusterId::home("prod")).await.unwrap().ok());
}

#[tokio::test]
async fn a_failed_association_is_made_again() {
    let (w, rec) = built().await;
    let host = w.host("prod").await;
    let snap = w.aws.snapshot().await.unwrap();
    let rule = snap.rules_for(&host)[0].id().unwrap().to_string();
    w.emulator
        .set_resolver_status(serde_json::json!({
            "rule": rule, "vpc": w.client_vpc.id, "status": "FAILED"
        }))
        .await
        .unwrap();
    assert!(!rec.paths(&ClusterId::home("prod")).await.unwrap().ok());
    let report = rec.reconcile("prod").await;
    ok(&report);
    assert!(!report.repaired.is_empty(), "{report:#?}");
    let snap = w.aws.snapshot().await.unwrap();
    let statuses: Vec<_> = snap
        .associations
        .iter()
        .map(|a| a.status().map(|s| s.as_str().to_string()))
        .collect();
    assert_eq!(statuses, vec![Some("COMPLETE".to_string())]);
    assert_paths(&rec, "prod").await;
}

#[tokio::test]
async fn without_waiting_an_apply_is_converging_and_the_next_run_finishes_it() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec
        .reconcile(
            shared::reconcile::Request::from("prod").patience(shared::wait::Patience::none()),
        )
        .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.outcome, shared::reconcile::Outcome::Converging);
    assert!(
        report.in_progress.iter().any(|w| w.contains("CREATING")),
        "{report:#?}"
    );
    ok(&rec.reconcile("prod").await);
    assert_paths(&rec, "prod").await;

    // A teardown without waiting stops where AWS must finish first (the
    // rule's association), and the next runs finish it, down to the groups.
    w.aws
        .set_access("prod", Access::PublicAndPrivate)
        .await
        .unwrap();
    let report = rec
        .reconcile(
            shared::reconcile::Request::from("prod").patience(shared::wait::Patience::none()),
        )
        .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.outcome, shared::reconcile::Outcome::Converging);
    assert!(
        !w.aws.snapshot().await.unwrap().parameters.is_empty(),
        "the record stays"
    );
    ok(&rec.reconcile("prod").await);
    w.aws.snapshot().await.unwrap().assert_clean();
}

/// With EKS_PRIVATE_DNS_API_RULES_GROUP=tagged, the 443 rules go on the
/// cluster's additional group tagged for us (attached to the control plane
/// only, not to the nodes), never on the cluster security group; every
/// path holds through it; and a teardown takes them off it again.
#[tokio::test]
async fn the_443_rules_go_on_the_group_tagged_for_us() {
    let w = world().await;
    let api = w
        .aws
        .security_group(
            &w.cluster_vpc,
            "api-clients",
            &[(TAG_API_RULES, "eks-private-dns")],
        )
        .await
        .unwrap();
    w.aws
        .cluster_with_groups(
            "prod",
            &w.cluster_vpc,
            Access::Private,
            std::slice::from_ref(&api),
            &[],
        )
        .await
        .unwrap();
    let mut settings = w.config();
    settings.api_rules_group = ApiRulesGroup::Tagged;
    let rec = w.emulator.reconciler(settings);
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    let on_api: BTreeSet<String> = snap.ingress(&api).into_iter().map(|r| r.cidr).collect();
    assert_eq!(
        on_api,
        ["10.1.0.0/16", ONPREM]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let cluster_sg = w.cluster_sg("prod").await;
    assert!(
        snap.ingress(&cluster_sg).is_empty(),
        "nothing for the nodes"
    );
    assert_paths(&rec, "prod").await;

    // The tag gone: invalid, and it says what to tag.
    let untagged = w
        .aws
        .security_group(&w.cluster_vpc, "plain", &[])
        .await
        .unwrap();
    w.aws
        .cluster_with_groups(
            "plain",
            &w.cluster_vpc,
            Access::Private,
            std::slice::from_ref(&untagged),
            &[],
        )
        .await
        .unwrap();
    let report = rec.reconcile("plain").await;
    assert_eq!(report.decision, "invalid");
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("plain") && error.contains(TAG_API_RULES) && error.contains(&untagged),
        "{error}"
    );

    // Public again: the rules come off the tagged group.
    w.aws
        .set_access("prod", Access::PublicAndPrivate)
        .await
        .unwrap();
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    assert!(snap.ingress(&api).is_empty(), "{:?}", snap.ingress(&api));
}

/// DNS ready sooner: an event for an endpoint access update that makes the
/// cluster private builds the plumbing while EKS is still UPDATING (the
/// update's target access, from DescribeUpdate, meets the trigger), so the
/// names resolve when the update ends instead of one build later.
#[tokio::test]
async fn an_access_update_to_private_is_built_while_eks_updates() {
    let (w, _rec) = built_while_updating().await;
    let status = w.aws.describe("demo").await.unwrap();
    assert_eq!(status.status().unwrap().as_str(), "UPDATING");
}

/// A public cluster "demo" made private-only, with the event handled while
/// the update goes on (for ten minutes): built, and every hop of the path
/// passes.
async fn built_while_updating() -> (World, shared::Reconciler) {
    let w = world_with(EmulatorOptions {
        update_seconds: 600.0,
        ..EmulatorOptions::slow_resolver()
    })
    .await;
    w.aws
        .cluster("demo", &w.cluster_vpc, Access::PublicAndPrivate, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("demo").await);
    w.aws.snapshot().await.unwrap().assert_clean();

    w.aws.set_access("demo", Access::Private).await.unwrap();
    let report = reconciled(run_event(&rec, "update-cluster-config-private.json").await);
    ok(&report);
    assert_eq!(report.decision, "managed");
    assert!(report.applied, "{report:?}");
    assert_paths(&rec, "demo").await;
    let snap = w.aws.snapshot().await.unwrap();
    assert_eq!(snap.rules_for(&w.host("demo").await).len(), 1);
    (w, rec)
}

/// The plumbing built while an access update goes on, then the update fails
/// or is cancelled and the cluster keeps its public endpoint: the next run
/// (`next_is_sweep`: the scheduled sweep; else a reconcile of the cluster)
/// takes it all away, the cluster's own security group included.
async fn an_update_that_ends(status: &str, next_is_sweep: bool) {
    let (w, rec) = built_while_updating().await;
    w.emulator.end_eks_update("demo", status).await.unwrap();
    let cluster = w.aws.describe("demo").await.unwrap();
    assert_eq!(cluster.status().unwrap().as_str(), "ACTIVE");
    let config = cluster.resources_vpc_config().unwrap();
    assert!(config.endpoint_public_access(), "the access it had");
    let ids = w.aws.eks.list_updates().name("demo").send().await.unwrap();
    let update = w
        .aws
        .eks
        .describe_update()
        .name("demo")
        .update_id(&ids.update_ids()[0])
        .send()
        .await
        .unwrap();
    let update = update.update().unwrap();
    assert_eq!(update.status().unwrap().as_str(), status);
    assert_eq!(update.errors().is_empty(), status != "Failed");

    if next_is_sweep {
        let summary = shared::sweep::sweep(&rec, rec.patience(), |_, _, _| {})
            .await
            .unwrap();
        assert_eq!(summary.not_managed, 1, "{summary:#?}");
        assert_eq!((summary.failed, summary.converging), (0, 0), "{summary:#?}");
        assert!(summary.write_calls > 0, "{summary:#?}");
    } else {
        let report = rec.reconcile("demo").await;
        ok(&report);
        assert_eq!(report.decision, "not-managed");
    }
    assert_all_gone(&w, "demo").await;
}

#[tokio::test]
async fn an_access_update_that_fails_leaves_nothing_after_the_next_run() {
    an_update_that_ends("Failed", false).await;
}

#[tokio::test]
async fn an_access_update_cancelled_leaves_nothing_after_the_next_sweep() {
    an_update_that_ends("Cancelled", true).await;
}

/// Someone deletes the inbound endpoint: the next run makes it again with
/// the addresses it had, so the published IPs, the rule's targets and every
/// on-premises forwarder stay as they were, and no Forwarders Changed event
/// is needed.
#[tokio::test]
async fn an_inbound_endpoint_deleted_by_hand_comes_back_with_its_addresses() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    ok(&rec.reconcile("prod").await);
    let snap = w.aws.snapshot().await.unwrap();
    let old = snap.inbound_endpoints()[0].id().unwrap().to_string();
    let ips = snap.ips_of(&old);
    let published = snap.parameters["/eks-private-dns/prod/inbound-ips"]
        .0
        .clone();
    assert_eq!(published, ips.join(","));
    assert_eq!(w.emulator.events().await.unwrap().len(), 1);

    w.aws.delete_endpoint_by_hand(&old).await;

    let report = rec.reconcile("prod").await;
    ok(&report);
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.contains("asking for the published")),
        "{:#?}",
        report.actions
    );
    let snap = w.aws.snapshot().await.unwrap();
    let new = snap.inbound_endpoints()[0].id().unwrap().to_string();
    assert_ne!(new, old, "a new endpoint");
    assert_eq!(snap.ips_of(&new), ips, "with the addresses it had");
    assert_eq!(
        snap.parameters["/eks-private-dns/prod/inbound-ips"].0,
        published
    );
    assert_eq!(
        w.emulator.events().await.unwrap().len(),
        1,
        "nothing on-premises needs to change"
    );
    assert_paths(&rec, "prod").await;
}
