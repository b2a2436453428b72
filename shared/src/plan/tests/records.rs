//! The state's record of the versions its parameters were published at:
//! what lets a sweep take their values without reading them.

use super::*;
use crate::ssm::RenderedParameters;

fn publication_of(p: &Plan) -> Publication {
    match p.actions.as_slice() {
        [Action::PublishParameters(p)] => p.as_ref().clone(),
        other => panic!("one publish, not {other:#?}"),
    }
}

fn current(obs: &Observation) -> BTreeMap<String, String> {
    obs.parameters
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

/// The leaves of the parameters `rendered` would write over `obs`'s.
fn changed_leaves(rendered: &RenderedParameters, obs: &Observation) -> Vec<String> {
    rendered
        .changed(&current(obs))
        .map(|(n, _, _)| n.rsplit('/').next().unwrap().to_string())
        .collect()
}

fn recorded(state: &StateDoc) -> Vec<(&str, i64)> {
    state
        .parameters
        .iter()
        .map(|(leaf, r)| (leaf.as_str(), r.version))
        .collect()
}

#[test]
fn a_state_records_each_value_and_its_version() {
    let obs = complete();
    let state: StateDoc = serde_json::from_str(&obs.parameters.last().unwrap().value).unwrap();
    assert_eq!(recorded(&state), vec![("endpoint", 1), ("inbound-ips", 1)]);
    assert_eq!(state.parameters["inbound-ips"].value, "10.0.1.10,10.0.2.10");
    assert_eq!(state.parameters["endpoint"].value, HOST);
    assert!(plan_of(&obs).actions.is_empty());
}

#[test]
fn a_value_overwritten_with_the_same_text_is_recorded_again_not_written() {
    // Someone puts the same addresses by hand: version 2, same value.
    let mut obs = complete();
    obs.parameters[1].version = 2;
    let publication = publication_of(&plan_of(&obs));
    let rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    let changed = changed_leaves(&rendered, &obs);
    assert_eq!(
        changed,
        vec!["state"],
        "only the state, which records version 2"
    );
    assert_eq!(
        recorded(&rendered.state),
        vec![("endpoint", 1), ("inbound-ips", 2)]
    );
}

#[test]
fn a_state_from_before_the_record_gains_it_once() {
    let mut obs = complete();
    let last = obs.parameters.last_mut().unwrap();
    let mut doc: StateDoc = serde_json::from_str(&last.value).unwrap();
    doc.parameters.clear();
    last.value = serde_json::to_string(&doc).unwrap();
    let publication = publication_of(&plan_of(&obs));
    let rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    let changed = changed_leaves(&rendered, &obs);
    assert_eq!(changed, vec!["state"]);
    assert!(
        rendered.announcement(&current(&obs)).is_none(),
        "nothing to announce"
    );
    // Written, it is the converged fixture again: nothing more to do.
    let mut after = obs.clone();
    after.parameters.last_mut().unwrap().value = rendered.values.last().unwrap().1.clone();
    assert!(plan_of(&after).actions.is_empty());
}

#[test]
fn a_value_to_write_is_recorded_at_the_version_it_gets() {
    let mut obs = complete();
    obs.parameters[1].value = "10.9.9.9".into();
    obs.parameters[1].version = 3;
    let publication = publication_of(&plan_of(&obs));
    let mut rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    // Not known until it is written.
    assert_eq!(
        recorded(&rendered.state),
        vec![("endpoint", 1), ("inbound-ips", 0)]
    );
    let name = obs.parameters[1].name.clone();
    rendered.record_written(&name, 4);
    let json: StateDoc = serde_json::from_str(&rendered.values.last().unwrap().1).unwrap();
    assert_eq!(recorded(&json), vec![("endpoint", 1), ("inbound-ips", 4)]);
    assert_eq!(json.parameters["inbound-ips"].value, "10.0.1.10,10.0.2.10");
}

/// `complete()` with its state's schema set to `schema`.
fn with_schema(schema: u64) -> Observation {
    let mut obs = complete();
    let last = obs.parameters.last_mut().unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&last.value).unwrap();
    doc["schema"] = schema.into();
    last.value = doc.to_string();
    obs
}

#[test]
fn a_record_of_a_newer_release_is_refused_and_nothing_is_taken_away() {
    let newer = u64::from(crate::ssm::STATE_SCHEMA) + 1;
    // The cluster as it is, and the cluster gone: neither plans a write.
    let mut gone = with_schema(newer);
    gone.cluster = None;
    for obs in [with_schema(newer), gone] {
        let plan = plan_of(&obs);
        assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
        let Decision::Invalid { problem } = &plan.decision else {
            panic!("refused, not {:?}", plan.decision)
        };
        let text = problem.to_string();
        assert!(
            text.contains(&format!("state schema {newer}")) && text.contains("/state"),
            "{text}"
        );
    }
}

#[test]
fn a_record_of_an_older_release_is_upgraded_when_written() {
    let obs = with_schema(0);
    let publication = publication_of(&plan_of(&obs));
    let rendered = publication.render(Some("2030-01-01T00:00:00Z")).unwrap();
    assert_eq!(changed_leaves(&rendered, &obs), vec!["state"]);
    assert_eq!(rendered.state.schema, crate::ssm::STATE_SCHEMA);
}
