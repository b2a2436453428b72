//! Serving an Organization from one hub: the three-account world
//! (`eks_private_dns_tests::org`), with Route 53 Resolver taking its time.
//! Every assertion is on the state of the account that owns the resource,
//! read with that account's own credentials, and every DNS path is walked
//! hop by hop after each step.

use std::time::{Duration, Instant};

use eks_private_dns_tests::org::*;
use eks_private_dns_tests::*;
use shared::handler::{handle_event, EventResult};
use shared::Reconciler;

/// Handle `event` as the hub's cluster-event function does.
async fn handle(rec: &Reconciler, event: &[u8]) -> EventResult {
    handle_event(
        rec,
        event,
        Instant::now() + Duration::from_secs(120),
        Duration::from_millis(200),
    )
    .await
    .expect("a well-formed event")
}

/// A sweep of every account `rec` serves.
async fn sweep(rec: &Reconciler) -> shared::sweep::SweepReport {
    shared::sweep::sweep(rec, rec.patience(), |_, _, _| {})
        .await
        .expect("the hub's account can be read")
}

/// The same, failing in no account.
async fn clean_sweep(rec: &Reconciler) -> shared::sweep::SweepReport {
    let swept = sweep(rec).await;
    assert!(swept.failures.is_empty(), "{:#?}", swept.failures);
    swept
}

/// A cluster of the hub's own, private, in a VPC of its own.
async fn hub_cluster(org: &Org) {
    let vpc = org
        .hub
        .vpc("10.102.0.0/16", &[], &["a", "b"])
        .await
        .unwrap();
    org.hub
        .cluster("platform", &vpc, Access::Private, &[])
        .await
        .unwrap();
}

/// The report of a reconciled event, converged.
fn converged(result: EventResult) -> Box<shared::Report> {
    match result {
        EventResult::Reconciled { report, .. } => {
            assert_converged(&report);
            report
        }
        EventResult::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[tokio::test]
async fn a_hub_serves_a_spokes_clusters_through_their_whole_life() {
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    org.clusters(Access::Private).await;
    let rec = org.reconciler(org.config());

    // Made private (the workload account's trail, forwarded to the hub).
    for name in WORKLOAD_CLUSTERS {
        let report = converged(handle(&rec, &org.event(&org.workload_id, name)).await);
        assert_eq!(report.decision.to_string(), "managed", "{report:#?}");
    }
    let (hub, workload, client) = org.snapshots().await;
    // The inbound side in the workload account: one endpoint per VPC.
    assert_eq!(workload.inbound_endpoints().len(), 2);
    assert!(workload.outbound_endpoints().is_empty());
    // The outbound endpoint and the rules in the hub, one outbound in all.
    assert_eq!(hub.outbound_endpoints().len(), 1);
    assert!(hub.inbound_endpoints().is_empty());
    assert!(client.endpoints.is_empty());
    for name in WORKLOAD_CLUSTERS {
        let host = endpoint_of(&org.workload, name).await;
        let rules = hub.rules_for(&host);
        assert_eq!(rules.len(), 1, "{name}: one rule, in the hub");
        let rule = rules[0].id().unwrap();
        assert_eq!(hub.associated_vpcs(rule), [org.hub_client_vpc.id.as_str()]);
        assert_eq!(client.associated_vpcs(rule), [org.client_vpc.id.as_str()]);
        assert!(
            workload.associated_vpcs(rule).is_empty(),
            "never with the cluster's own VPC"
        );
        let folder = format!("/eks-private-dns/{}/{name}/", org.workload_id);
        assert_eq!(hub.parameters_under(&folder).len(), 3, "{folder}");
        assert_cluster_paths(&rec, &org.spoke_cluster(name)).await;
    }
    assert!(workload.parameters_under("/eks-private-dns/").is_empty());

    // Quiet: a sweep of the hub and the spokes writes nothing.
    let shape = (hub.shape(), workload.shape(), client.shape());
    let swept = clean_sweep(&rec).await;
    assert_eq!(swept.write_calls, 0, "{swept:#?}");
    assert_eq!(swept.managed, 3);
    let (hub, workload, client) = org.snapshots().await;
    assert_eq!((hub.shape(), workload.shape(), client.shape()), shape);

    // Public again: everything goes, in every account.
    for name in WORKLOAD_CLUSTERS {
        org.workload.set_access(name, Access::Public).await.unwrap();
        converged(handle(&rec, &org.event(&org.workload_id, name)).await);
    }
    clean_sweep(&rec).await;
    let (hub, workload, client) = org.snapshots().await;
    hub.assert_clean();
    workload.assert_clean();
    client.assert_clean();
}

/// The endpoint host name of a cluster.
async fn endpoint_of(aws: &Aws, cluster: &str) -> String {
    let c = aws.describe(cluster).await.unwrap();
    shared::model::endpoint_host(c.endpoint().unwrap()).unwrap()
}

/// How many AssumeRole calls reached the proxy.
fn assumed(proxy: &proxy::Proxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.operation == "STS.AssumeRole")
        .count()
}

#[tokio::test]
async fn a_sweep_builds_every_account_once_and_a_quiet_one_writes_nothing() {
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    org.clusters(Access::Private).await;
    // The hub runs a cluster of its own too.
    hub_cluster(&org).await;
    let proxy = proxy::Proxy::start(&org.emulator.url).await.unwrap();
    let rec = org.reconciler_via(&proxy.url, org.config());
    let swept = clean_sweep(&rec).await;
    assert_eq!(swept.converging, 0, "{:#?}", swept.in_progress);
    assert_eq!((swept.managed, swept.spoke_accounts), (4, 2));
    assert_eq!(assumed(&proxy), 2, "one AssumeRole per spoke account");
    let (hub, workload, client) = org.snapshots().await;
    assert_eq!(
        hub.outbound_endpoints().len(),
        1,
        "one outbound endpoint in all"
    );
    assert_eq!(hub.inbound_endpoints().len(), 1, "the hub's own cluster's");
    assert_eq!(workload.inbound_endpoints().len(), 2);
    assert_eq!(hub.rules.len(), 4);
    assert_eq!(
        client.associations.len(),
        4,
        "every rule, in the client account"
    );
    assert!(hub.parameters_under("/eks-private-dns/platform/").len() == 3);
    for name in WORKLOAD_CLUSTERS {
        assert_cluster_paths(&rec, &org.spoke_cluster(name)).await;
    }
    assert_paths(&rec, "platform").await;

    // Quiet: nothing written, and no AssumeRole (the credentials are kept).
    proxy.reset();
    let quiet = clean_sweep(&rec).await;
    assert_eq!(quiet.write_calls, 0, "{quiet:#?}");
    assert_eq!(proxy.total().writes, 0);
    assert_eq!(assumed(&proxy), 0);
}

#[tokio::test]
async fn an_event_of_an_account_not_served_is_refused_and_writes_nothing() {
    let org = Org::new(EmulatorOptions::default()).await;
    org.clusters(Access::Private).await;
    let proxy = proxy::Proxy::start(&org.emulator.url).await.unwrap();
    let rec = org.reconciler_via(&proxy.url, org.config());
    let result = handle(&rec, &org.event("999988887777", "orders")).await;
    let EventResult::Ignored { reason } = result else {
        panic!("an account not served is refused: {result:?}");
    };
    assert!(
        reason.contains("999988887777") && reason.contains("does not serve"),
        "{reason}"
    );
    assert_eq!(proxy.total().writes, 0);
    assert_eq!(assumed(&proxy), 0);
    let (hub, workload, _) = org.snapshots().await;
    assert!(hub.endpoints.is_empty() && workload.endpoints.is_empty());
}

#[tokio::test]
async fn outside_the_organization_the_share_is_accepted_by_invitation() {
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    org.clusters(Access::Private).await;
    // A client account outside the hub's Organization.
    let outsider = "444455556666";
    let theirs = org.emulator.aws_in(outsider).await.unwrap();
    let their_vpc = theirs.vpc("10.40.0.0/16", &[], &["a", "b"]).await.unwrap();
    let spokes = format!("{},{outsider}", org.workload_id);
    let clients = format!("{outsider}:{}", their_vpc.id);
    let rec = org.reconciler(org.config_with(&[
        (shared::config::ENV_SPOKE_ACCOUNTS, &spokes),
        (shared::config::ENV_CLIENT_VPC_IDS, &clients),
    ]));
    clean_sweep(&rec).await;
    let sdk = org.emulator.sdk_config_in(outsider).await.unwrap();
    let invitations = aws_sdk_ram::Client::new(&sdk)
        .get_resource_share_invitations()
        .send()
        .await
        .unwrap();
    let statuses: Vec<&str> = invitations
        .resource_share_invitations()
        .iter()
        .filter_map(|i| i.status().map(|s| s.as_str()))
        .collect();
    assert_eq!(
        statuses,
        ["ACCEPTED"],
        "the spoke role accepted the invitation"
    );
    let shares = aws_sdk_ram::Client::new(&org.emulator.sdk_config())
        .get_resource_shares()
        .resource_owner(aws_sdk_ram::types::ResourceOwner::SelfValue)
        .send()
        .await
        .unwrap();
    let share = &shares.resource_shares()[0];
    assert_eq!(
        shares.resource_shares().len(),
        1,
        "one share per owner and region"
    );
    assert_eq!(
        share.allow_external_principals(),
        Some(true),
        "opened to the outsider"
    );
    let their_state = theirs.snapshot().await.unwrap();
    assert_eq!(their_state.associations.len(), 3);
    for name in WORKLOAD_CLUSTERS {
        assert_cluster_paths(&rec, &org.spoke_cluster(name)).await;
    }
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_names_its_account_and_stops_no_other() {
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    org.clusters(Access::Private).await;
    hub_cluster(&org).await;
    let role = format!("arn:aws:iam::{}:role/{SPOKE_ROLE}", org.workload_id);
    org.emulator.deny_roles(&[&role]).await.unwrap();
    let rec = org.reconciler(org.config());
    let swept = sweep(&rec).await;
    let failure = swept
        .failures
        .iter()
        .find(|f| f.account.as_deref() == Some(org.workload_id.as_str()))
        .unwrap_or_else(|| panic!("the workload account's failure: {:#?}", swept.failures));
    assert!(
        failure.error.contains(&role)
            && failure.error.contains("AssumeRole")
            && failure.error.contains(&org.workload_id),
        "{failure:?}"
    );
    assert!(!failure.transient, "AccessDenied is for a person to fix");
    assert_eq!(swept.failures.len(), 1, "{:#?}", swept.failures);
    assert_eq!(swept.managed, 1, "the hub's own cluster goes on");
    assert_paths(&rec, "platform").await;
    let (hub, workload, client) = org.snapshots().await;
    workload.assert_clean();
    // Only the hub's own cluster's rule, and its associations.
    assert_eq!(hub.rules.len(), 1);
    let rule = hub.rules[0].id().unwrap();
    assert!(client
        .associations
        .iter()
        .all(|a| a.resolver_rule_id() == Some(rule)));
    // It counts in the metrics, by the account.
    let counts = shared::metrics::Counts::of_account(&swept, &org.workload_id);
    assert_eq!(counts.failures, 1);
    assert!(swept.swept_accounts().contains(&org.workload_id));
}

#[tokio::test]
async fn a_spoke_role_lacking_a_permission_names_the_account_the_role_and_the_action() {
    let org = Org::new(EmulatorOptions::default()).await;
    org.clusters(Access::Private).await;
    hub_cluster(&org).await;
    let proxy = proxy::Proxy::start(&org.emulator.url).await.unwrap();
    // The workload account's role was deployed without one permission.
    proxy.deny(&org.workload_id, "Route53Resolver.CreateResolverEndpoint");
    let rec = org.reconciler_via(&proxy.url, org.config());
    let swept = sweep(&rec).await;
    let role = format!("arn:aws:iam::{}:role/{SPOKE_ROLE}", org.workload_id);
    assert_eq!(swept.failures.len(), 3, "{:#?}", swept.failures);
    for failure in &swept.failures {
        assert_eq!(failure.account.as_deref(), Some(org.workload_id.as_str()));
        assert!(
            failure.error.contains(&role)
                && failure.error.contains("CreateResolverEndpoint")
                && failure.error.contains("AccessDenied"),
            "{failure:?}"
        );
        assert!(
            !failure.transient,
            "a missing permission is for a person to fix"
        );
    }
    assert_eq!(
        shared::metrics::Counts::of_account(&swept, &org.workload_id).failures,
        3
    );
    // The other accounts went on: the hub's own cluster is served, in the
    // client account's VPC too.
    assert_paths(&rec, "platform").await;
    let (hub, workload, client) = org.snapshots().await;
    assert_eq!(hub.rules.len(), 1, "no rule targets an endpoint not made");
    assert_eq!(client.associations.len(), 1);
    // Nothing half-made that is not ours and recorded: no endpoint in the
    // workload account, and its groups carry our owner tag, for the next
    // run to adopt.
    assert!(workload.inbound_endpoints().is_empty());
    let ours = workload.owned_groups("eks-private-dns").len();
    assert!(ours <= 2, "one group per cluster VPC at most: {ours}");

    // The permission granted, the next sweep finishes it: one set.
    proxy.allow_all();
    let swept = clean_sweep(&rec).await;
    assert_eq!(swept.converging, 0, "{:#?}", swept.in_progress);
    let (hub, workload, client) = org.snapshots().await;
    assert_eq!(workload.inbound_endpoints().len(), 2);
    assert_eq!(workload.owned_groups("eks-private-dns").len(), 2);
    assert_eq!(hub.rules.len(), 4);
    assert_eq!(client.associations.len(), 4);
    for name in WORKLOAD_CLUSTERS {
        assert_cluster_paths(&rec, &org.spoke_cluster(name)).await;
    }
}

#[tokio::test]
async fn an_account_taken_out_of_the_list_is_cleaned_while_its_role_works() {
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    org.clusters(Access::Private).await;
    let rec = org.reconciler(org.config());
    clean_sweep(&rec).await;

    // The workload account leaves the list: the next sweep removes what
    // was made for it, found from the hub's records.
    let rec =
        org.reconciler(org.config_with(&[(shared::config::ENV_SPOKE_ACCOUNTS, &org.client_id)]));
    let swept = clean_sweep(&rec).await;
    let taken_away = swept
        .reports
        .iter()
        .filter(|r| r.account == shared::model::Account::Id(org.workload_id.clone()))
        .filter(|r| r.applied && r.detail.as_deref().unwrap_or("").contains("not among"))
        .count();
    assert_eq!(taken_away, 3, "{swept:#?}");
    let (hub, workload, client) = org.snapshots().await;
    hub.assert_clean();
    workload.assert_clean();
    client.assert_clean();
}

#[tokio::test]
async fn an_account_left_with_a_role_that_no_longer_works_keeps_its_records() {
    let org = Org::new(EmulatorOptions::default()).await;
    org.clusters(Access::Private).await;
    let rec = org.reconciler(org.config());
    clean_sweep(&rec).await;

    let role = format!("arn:aws:iam::{}:role/{SPOKE_ROLE}", org.workload_id);
    org.emulator.deny_roles(&[&role]).await.unwrap();
    let rec =
        org.reconciler(org.config_with(&[(shared::config::ENV_SPOKE_ACCOUNTS, &org.client_id)]));
    let swept = sweep(&rec).await;
    assert_eq!(swept.left_behind.len(), 3, "{:#?}", swept.left_behind);
    for line in &swept.left_behind {
        assert!(
            line.contains(&org.workload_id) && line.contains("inbound endpoint"),
            "{line}"
        );
    }
    let (hub, workload, _) = org.snapshots().await;
    for name in WORKLOAD_CLUSTERS {
        let folder = format!("/eks-private-dns/{}/{name}/", org.workload_id);
        assert_eq!(
            hub.parameters_under(&folder).len(),
            3,
            "the records stay: {folder}"
        );
    }
    assert_eq!(workload.inbound_endpoints().len(), 2, "left where they are");
}

#[tokio::test]
async fn an_organizational_unit_serves_its_accounts() {
    let org = Org::new(EmulatorOptions::default()).await;
    org.clusters(Access::Private).await;
    let organizations = aws_sdk_organizations::Client::new(&org.emulator.sdk_config());
    let root = organizations.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let parent = organizations
        .create_organizational_unit()
        .parent_id(&root)
        .name("workloads")
        .send()
        .await
        .unwrap();
    let parent = parent
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let child = organizations
        .create_organizational_unit()
        .parent_id(&parent)
        .name("team-a")
        .send()
        .await
        .unwrap();
    let child = child
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    organizations
        .move_account()
        .account_id(&org.workload_id)
        .source_parent_id(&root)
        .destination_parent_id(&child)
        .send()
        .await
        .unwrap();
    let spokes = format!("{parent},{}", org.client_id);
    let rec = org.reconciler(org.config_with(&[(shared::config::ENV_SPOKE_ACCOUNTS, &spokes)]));
    let swept = clean_sweep(&rec).await;
    assert_eq!(
        swept.spoke_accounts, 2,
        "the OU's account (in a child OU) and the client"
    );
    assert_eq!(swept.managed, 3);
    for name in WORKLOAD_CLUSTERS {
        assert_cluster_paths(&rec, &org.spoke_cluster(name)).await;
    }
}

/// A burst of 30 events from the spoke at once, handled as the hub's
/// functions run: `EventConcurrency` instances of cluster-event, each at
/// `EventResolverRate`, beside the sweep at `ResolverRate`. Their sum (4.5
/// here, as with the template's defaults) is within the account's rate of
/// 5, so that no account's Resolver would throttle any of them.
#[tokio::test]
async fn a_burst_of_spoke_events_converges_within_each_accounts_rate() {
    const EVENT_CONCURRENCY: usize = 3;
    let org = Org::new(EmulatorOptions::slow_resolver()).await;
    let clusters: Vec<String> = (0..10).map(|i| format!("burst{i}")).collect();
    for (i, name) in clusters.iter().enumerate() {
        let vpc = if i % 2 == 0 {
            &org.shared_vpc
        } else {
            &org.single_vpc
        };
        org.workload
            .cluster(name, vpc, Access::Private, &[])
            .await
            .unwrap();
    }
    let proxy = proxy::Proxy::start(&org.emulator.url).await.unwrap();
    let sweeper = org.reconciler_via(
        &proxy.url,
        org.config_with(&[(shared::config::ENV_RESOLVER_RATE, "1.5")]),
    );
    let handlers: Vec<Reconciler> = (0..EVENT_CONCURRENCY)
        .map(|_| {
            org.reconciler_via(
                &proxy.url,
                org.config_with(&[(shared::config::ENV_RESOLVER_RATE, "1")]),
            )
        })
        .collect();
    let events: Vec<Vec<u8>> = (0..30)
        .map(|i| org.event(&org.workload_id, &clusters[i % clusters.len()]))
        .collect();
    let instances = handlers.iter().enumerate().map(|(n, rec)| {
        let mine: Vec<&Vec<u8>> = events.iter().skip(n).step_by(EVENT_CONCURRENCY).collect();
        async move {
            let mut reports = Vec::new();
            for event in mine {
                reports.push(handle(rec, event).await);
            }
            reports
        }
    });
    let swept = sweep(&sweeper);
    let (handled, swept) = tokio::join!(futures::future::join_all(instances), swept);
    for result in handled.into_iter().flatten() {
        if let EventResult::Reconciled { report, .. } = result {
            assert_eq!(report.error, None, "{report:#?}");
        }
    }
    assert_eq!(swept.failures.len(), 0, "{:#?}", swept.failures);
    // Converged: a quiet sweep after writes nothing.
    let quiet = sweep(&sweeper).await;
    assert_eq!((quiet.managed, quiet.write_calls), (10, 0), "{quiet:#?}");
    for name in &clusters {
        assert_cluster_paths(&sweeper, &org.spoke_cluster(name)).await;
    }
    // Each account's Resolver on arrival, every process's requests
    // together, against AWS's way of holding an API to its rate: a token
    // bucket, here the Resolver's 5 a second with one second's worth of
    // burst, the smallest bucket that rate allows. None would have been
    // throttled.
    let account_of = |caller: &str| proxy.account_of(caller).unwrap_or(org.hub_id.clone());
    let accounts: std::collections::BTreeSet<String> =
        proxy.seen().iter().map(|s| account_of(&s.caller)).collect();
    assert!(accounts.contains(&org.workload_id), "{accounts:?}");
    for account in &accounts {
        let refused =
            proxy.over_rate_of("Route53Resolver", 5.0, 5.0, |c| account_of(c) == *account);
        let busiest = proxy.busiest_window_of("Route53Resolver", Duration::from_secs(1), |c| {
            account_of(c) == *account
        });
        assert!(
            refused.is_empty(),
            "account {account}'s Resolver would have throttled {refused:#?} \
             (its busiest second: {} requests)",
            busiest.len()
        );
        eprintln!(
            "account {account}: busiest second {} Resolver requests",
            busiest.len()
        );
    }
}
