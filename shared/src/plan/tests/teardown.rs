//! Taking away: opted out, public again, deleted, pending.

use super::*;

fn assert_full_teardown(p: &Plan) {
    assert_phase_order(p);
    assert_eq!(count(p, "disassociate"), 1);
    assert_eq!(count(p, "delete-rule"), 1);
    assert_eq!(count(p, "revoke"), 1);
    assert_eq!(count(p, "delete-endpoint"), 2);
    assert_eq!(count(p, "delete-sg"), 2);
    assert_eq!(count(p, "delete-params"), 1);
    assert_eq!(
        *kinds(p).last().unwrap(),
        "delete-params",
        "the record goes last"
    );
    assert_eq!(
        count(p, "create-sg") + count(p, "authorize") + count(p, "publish"),
        0
    );
}

#[test]
fn a_teardown_stopped_after_the_outbound_endpoint_went_finishes_with_its_group() {
    // What a run killed right after DeleteResolverEndpoint (outbound)
    // leaves: no rule, no outbound endpoint, the outbound group.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    obs.rules.clear();
    obs.associations.clear();
    obs.endpoints.retain(|e| e.direction == Direction::Inbound);
    let p = plan_of(&obs);
    assert_phase_order(&p);
    assert_eq!(count(&p, "delete-sg"), 2, "{:#?}", p.actions);
    // While another cluster's rule still needs an outbound endpoint, the
    // group stays (that cluster's run will use it).
    let mut other = complete();
    other.cluster.as_mut().unwrap().public_access = true;
    other
        .endpoints
        .retain(|e| e.direction == Direction::Inbound);
    other.rules[0].creator_request_id = owner().rule_creator_id("other", "other.example.com", 1);
    let p = plan_of(&other);
    assert_eq!(count(&p, "delete-sg"), 1, "{:#?}", p.actions);
}

#[test]
fn opted_out_cluster_loses_everything() {
    let mut obs = complete();
    obs.cluster
        .as_mut()
        .unwrap()
        .tags
        .insert(TAG_ENABLED.into(), "false".into());
    let p = plan_of(&obs);
    assert!(matches!(p.decision, Decision::NotManaged { .. }));
    assert_full_teardown(&p);
}

#[test]
fn public_again_loses_everything() {
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().public_access = true;
    let p = plan_of(&obs);
    assert!(matches!(&p.decision, Decision::NotManaged { reason } if reason.contains("public")));
    assert_full_teardown(&p);
}

#[test]
fn opt_in_tag_overrides_the_private_only_trigger() {
    let mut obs = complete();
    let c = obs.cluster.as_mut().unwrap();
    c.public_access = true;
    c.tags.insert(TAG_ENABLED.into(), "true".into());
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Managed);
    assert!(p.actions.is_empty());
}

#[test]
fn deleted_cluster_is_torn_down_from_its_record() {
    let mut obs = complete();
    obs.cluster = None;
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Gone);
    assert_full_teardown(&p);

    // Being deleted counts as gone.
    let mut obs = complete();
    obs.cluster.as_mut().unwrap().status = ClusterStatus::Deleting;
    assert_eq!(plan_of(&obs).decision, Decision::Gone);

    // Nothing left: nothing to do.
    let obs = Observation {
        cluster_name: "prod".into(),
        ..Observation::default()
    };
    assert!(plan_of(&obs).actions.is_empty());
}

#[test]
fn pending_clusters_get_nothing() {
    for status in [
        ClusterStatus::Creating,
        ClusterStatus::Updating,
        ClusterStatus::Pending,
    ] {
        let mut obs = complete();
        obs.rules.clear();
        obs.cluster.as_mut().unwrap().status = status.clone();
        let p = plan_of(&obs);
        assert!(matches!(p.decision, Decision::Pending { .. }), "{status:?}");
        assert!(p.actions.is_empty());
    }
}

/// An endpoint access update in progress is decided on the access it sets:
/// one that makes the cluster private builds now, while EKS updates; one
/// that would end the plumbing waits for the update to end.
#[test]
fn an_access_update_in_progress_is_decided_on_what_it_sets() {
    let mut obs = complete();
    obs.rules.clear();
    let cluster = obs.cluster.as_mut().unwrap();
    cluster.status = ClusterStatus::Updating;
    cluster.public_access = true;
    cluster.access_update = Some(AccessUpdate {
        private: None,
        public: Some(false),
    });
    let p = plan_of(&obs);
    assert_eq!(p.decision, Decision::Managed);
    assert!(kinds(&p).contains(&"create-rule"), "{:?}", kinds(&p));

    let mut obs = complete();
    let cluster = obs.cluster.as_mut().unwrap();
    cluster.status = ClusterStatus::Updating;
    cluster.access_update = Some(AccessUpdate {
        private: None,
        public: Some(true),
    });
    let p = plan_of(&obs);
    assert!(matches!(p.decision, Decision::Pending { .. }), "{p:?}");
    assert!(p.actions.is_empty(), "nothing taken away before it ends");
}

#[test]
fn a_teardown_of_the_owner_takes_away_a_cluster_that_wants_its_plumbing() {
    // Private, opted in, in sync: only the teardown makes it go.
    let obs = complete();
    assert!(plan_of(&obs).actions.is_empty());
    let config = Config {
        take_down: true,
        ..config()
    };
    let p = plan(&config, &owner(), &obs);
    assert!(
        matches!(&p.decision, Decision::NotManaged { reason } if reason.contains("teardown")),
        "{:?}",
        p.decision
    );
    assert_full_teardown(&p);
}
