//! Zero-touch setup against the AWS emulator: each test builds a world,
//! runs the real reconciler through the real SDK, and asserts on the AWS
//! state that results.

use std::collections::BTreeSet;

use eks_private_dns_tests::*;
use shared::model::StateDoc;
use shared::owner::{TAG_CLUSTER, TAG_OWNER, TAG_VPC};

async fn world() -> World {
    World::new(EmulatorOptions::default(), &["10.2.0.0/16"]).await
}

fn state_of(snap: &Snapshot, cluster: &str) -> StateDoc {
    let (value, _) = &snap.parameters[&format!("/eks-private-dns/{cluster}/state")];
    serde_json::from_str(value).unwrap()
}

#[tokio::test]
async fn fresh_private_cluster_gets_complete_plumbing() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let report = rec.reconcile("prod").await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.decision, "managed");
    assert!(report.applied);

    let snap = w.aws.snapshot().await.unwrap();
    let host = w.host("prod").await;
    assert_eq!(host, host.to_lowercase());
    assert!(!host.ends_with('/') && !host.starts_with("https"));

    // One inbound endpoint in the cluster VPC, 2 IPs in distinct AZs.
    let inbound = snap.inbound_endpoints();
    assert_eq!(inbound.len(), 1);
    let inbound = inbound[0];
    assert_eq!(inbound.host_vpc_id(), Some(w.cluster_vpc.id.as_str()));
    let ips = &snap.endpoint_ips[inbound.id().unwrap()];
    assert_eq!(ips.len(), 2);
    let azs = w.aws.subnet_azs(&w.cluster_vpc.id).await.unwrap();
    let ip_azs: BTreeSet<&String> = ips.iter().map(|ip| &azs[ip.subnet_id().unwrap()]).collect();
    assert_eq!(ip_azs.len(), 2, "IPs in distinct AZs");
    let tags = w.aws.resolver_tags(inbound.arn().unwrap()).await.unwrap();
    assert_eq!(
        tags.get(TAG_OWNER).map(String::as_str),
        Some("eks-private-dns")
    );
    assert_eq!(tags.get(TAG_VPC), Some(&w.cluster_vpc.id));

    // Its security group admits UDP and TCP 53 from every client CIDR.
    let sg = inbound.security_group_ids()[0].clone();
    let dns: BTreeSet<(String, i32, String)> = snap
        .ingress(&sg)
        .into_iter()
        .map(|r| {
            assert_eq!(r.owner.as_deref(), Some("eks-private-dns"));
            (r.protocol, r.port, r.cidr)
        })
        .collect();
    let mut expected = BTreeSet::new();
    for cidr in ["10.1.0.0/16", "10.2.0.0/16", ONPREM] {
        for p in ["tcp", "udp"] {
            expected.insert((p.to_string(), 53, cidr.to_string()));
        }
    }
    assert_eq!(dns, expected);

    // One outbound endpoint, in the client VPC.
    let outbound = snap.outbound_endpoints();
    assert_eq!(outbound.len(), 1);
    assert_eq!(outbound[0].host_vpc_id(), Some(w.client_vpc.id.as_str()));

    // The rule forwards the exact host name to every inbound IP on 53,
    // through the outbound endpoint, associated with the client VPC only.
    let rules = snap.rules_for(&host);
    assert_eq!(rules.len(), 1);
    let rule = rules[0];
    let mut targets: Vec<(String, i32)> = rule
        .target_ips()
        .iter()
        .map(|t| (t.ip().unwrap().to_string(), t.port().unwrap()))
        .collect();
    targets.sort();
    let mut inbound_ips = snap.ips_of(inbound.id().unwrap());
    inbound_ips.sort();
    assert_eq!(
        targets,
        inbound_ips
            .iter()
            .map(|ip| (ip.clone(), 53))
            .collect::<Vec<_>>()
    );
    assert_eq!(rule.resolver_endpoint_id(), outbound[0].id());
    assert_eq!(
        snap.associated_vpcs(rule.id().unwrap()),
        vec![w.client_vpc.id.clone()]
    );
    let rule_tags = w.aws.resolver_tags(rule.arn().unwrap()).await.unwrap();
    let arn = w
        .aws
        .describe("prod")
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    assert_eq!(rule_tags.get(TAG_CLUSTER), Some(&arn));

    // 443 on the cluster security group from every client CIDR, tagged.
    let cluster_sg = w.cluster_sg("prod").await;
    let api: BTreeSet<(String, i32, String)> = snap
        .ingress(&cluster_sg)
        .into_iter()
        .map(|r| {
            assert_eq!(r.owner.as_deref(), Some("eks-private-dns"));
            assert_eq!(r.cluster.as_deref(), Some(arn.as_str()));
            (r.protocol, r.port, r.cidr)
        })
        .collect();
    let expected: BTreeSet<_> = ["10.1.0.0/16", "10.2.0.0/16", ONPREM]
        .iter()
        .map(|c| ("tcp".to_string(), 443, c.to_string()))
        .collect();
    assert_eq!(api, expected);

    // SSM: the contract.
    let params = snap.parameters_under("/eks-private-dns/prod/");
    assert_eq!(
        params.keys().cloned().collect::<Vec<_>>(),
        vec![
            "/eks-private-dns/prod/endpoint",
            "/eks-private-dns/prod/inbound-ips",
            "/eks-private-dns/prod/state"
        ]
    );
    assert_eq!(params["/eks-private-dns/prod/endpoint"].0, host);
    assert_eq!(
        params["/eks-private-dns/prod/inbound-ips"].0,
        snap.ips_of(inbound.id().unwrap()).join(",")
    );
    let state = state_of(&snap, "prod");
    assert_eq!(state.cluster_arn, arn);
    assert_eq!(state.vpc_id, w.cluster_vpc.id);
    assert_eq!(state.inbound_endpoint_id, inbound.id().unwrap());
    assert_eq!(state.outbound_endpoint_id.as_deref(), outbound[0].id());
    assert_eq!(state.rule_id.as_deref(), rule.id());
    assert_eq!(state.associated_vpcs, vec![w.client_vpc.id.clone()]);
    assert_eq!(state.control_plane_rule_ids.len(), 3);
    assert!(!state.updated_at.is_empty());
    for name in params.keys() {
        let tags = w.aws.parameter_tags(name).await.unwrap();
        assert_eq!(
            tags.get(TAG_OWNER).map(String::as_str),
            Some("eks-private-dns")
        );
        assert_eq!(tags.get(TAG_CLUSTER), Some(&arn));
    }
}

#[tokio::test]
async fn a_second_apply_changes_nothing_and_writes_nothing() {
    let w = world().await;
    w.aws
        .cluster("prod", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = w.emulator.reconciler(w.config());
    let first = rec.reconcile("prod").await;
    assert_eq!(first.error, None, "{first:#?}");
    let before = w.aws.snapshot().await.unwrap();

    let second = rec.reconcile("prod").await;
    assert_eq!(second.error, None);
    assert!(second.actions.is_empty(), "{:#?}", second.actions);
    assert_eq!(second.write_calls, 0, "{:#?}", second.calls_by_operation);
    let after = w.aws.snapshot().await.unwrap();
    assert_eq!(before.shape(), after.shape());
    assert_eq!(
        before.parameters, after.parameters,
        "SSM values and versions unchanged"
    );
}
