//! Holding back, and where the 443 rules go.

use super::*;

#[test]
fn holding_back_keeps_only_what_adds() {
    // A teardown: everything goes, so everything is held back.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    let mut p = plan_of(&obs);
    let all = p.actions.len();
    let held = p.hold_back();
    assert_eq!(held.len(), all);
    assert!(p.actions.is_empty(), "{:?}", kinds(&p));

    // Drift: the missing association and 53 rule are made again, the stray
    // 443 rule stays, and the state is not rewritten with this run's
    // settings.
    let mut obs = complete();
    obs.associations.clear();
    obs.security_group_rules.retain(|r| r.id != "sgr-dns-udp-1");
    let o = owner();
    obs.security_group_rules.push(sg_rule(
        "sgr-api-old",
        CP_SG,
        "tcp",
        443,
        "10.99.0.0/16",
        o.cluster_tags(ARN),
    ));
    let mut p = plan_of(&obs);
    let before = kinds(&p);
    assert!(before.contains(&"revoke"), "{before:?}");
    let held = p.hold_back();
    let after = kinds(&p);
    assert!(
        after.contains(&"associate") && after.contains(&"authorize"),
        "{after:?}"
    );
    assert!(!after.contains(&"revoke"), "{after:?}");
    assert!(!after.contains(&"publish"), "{after:?}");
    assert_eq!(held.len() + after.len(), before.len());

    // A fresh setup takes nothing away: nothing is held back, the
    // publication included.
    let mut fresh = complete();
    fresh.endpoints.clear();
    fresh.rules.clear();
    fresh.associations.clear();
    fresh.security_groups.clear();
    fresh.security_group_rules.clear();
    fresh.parameters.clear();
    let mut p = plan_of(&fresh);
    let n = p.actions.len();
    assert!(p.hold_back().is_empty());
    assert_eq!(p.actions.len(), n);
}

#[test]
fn the_443_rules_go_on_a_group_tagged_for_us_when_asked() {
    use crate::config::{ApiRulesGroup, TAG_API_RULES};
    let mine = |tags: Tags| SecurityGroupView {
        account: Account::Home,
        id: "sg-mine".into(),
        vpc_id: CLUSTER_VPC.into(),
        name: "api".into(),
        tags,
    };
    let mut config = config();
    config.api_rules_group = ApiRulesGroup::Tagged;
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().security_group_ids = vec!["sg-users".into(), "sg-mine".into()];
    obs.cluster_groups = vec![mine(tags(&[(TAG_API_RULES, "eks-private-dns")]))];
    let p = plan(&config, &owner(), &obs);
    assert!(matches!(p.decision, Decision::Managed), "{:?}", p.decision);
    // Ours move: added on the tagged group, revoked from the cluster's.
    let on_mine = p.actions.iter().any(|a| {
        matches!(a, Action::AuthorizeIngress { group: GroupRef::Existing(id), permissions, .. }
            if id == "sg-mine" && permissions.iter().all(|p| p.port == 443))
    });
    assert!(on_mine, "{:?}", kinds(&p));
    let off_cluster = p
        .actions
        .iter()
        .any(|a| matches!(a, Action::RevokeIngress { group_id, .. } if group_id == CP_SG));
    assert!(off_cluster, "{:?}", kinds(&p));

    // Tagged for another owner, or not at all: invalid, naming the cluster,
    // the tag and the groups it has; nothing is made.
    for other in [tags(&[(TAG_API_RULES, "someone-else")]), Tags::new()] {
        obs.cluster_groups = vec![mine(other)];
        let p = plan(&config, &owner(), &obs);
        match &p.decision {
            Decision::Invalid { problem } => assert!(
                problem.to_string().contains("prod")
                    && problem.to_string().contains(TAG_API_RULES)
                    && problem.to_string().contains("sg-users, sg-mine"),
                "{problem}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(p.actions.is_empty());
    }
}

#[test]
fn a_change_of_type_takes_away_only_when_it_drops_the_ipv6_addresses() {
    let change = |from, to| Action::ChangeEndpointType {
        account: Account::Home,
        endpoint_id: "rslvr-in-1".into(),
        from,
        to,
        endpoint_ready: true,
    };
    assert!(change(EndpointType::DualStack, EndpointType::Ipv4).takes_away());
    assert!(!change(EndpointType::Ipv4, EndpointType::DualStack).takes_away());
    let mut p = Plan {
        cluster: "prod".into(),
        decision: Decision::Managed,
        actions: vec![change(EndpointType::DualStack, EndpointType::Ipv4)],
        waits: Vec::new(),
        problems: Vec::new(),
    };
    assert_eq!(p.hold_back().len(), 1);
    assert!(p.actions.is_empty());
}
