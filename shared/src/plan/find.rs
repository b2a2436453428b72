//! What is ours in an observation.

use super::*;

/// Our live endpoints of a direction (`Observation::live_endpoints`).
pub(super) fn live_endpoints<'a>(
    owner: &Owner,
    obs: &'a Observation,
    direction: Direction,
    vpc_id: Option<&str>,
) -> Vec<&'a EndpointView> {
    obs.live_endpoints(owner, direction, vpc_id)
}

/// Our group of `role` in `vpc_id` (VPC ids are unique across accounts).
pub(super) fn find_group<'a>(
    owner: &Owner,
    obs: &'a Observation,
    vpc_id: &str,
    role: Direction,
) -> Option<&'a SecurityGroupView> {
    obs.security_groups
        .iter()
        .filter(|g| g.vpc_id == vpc_id && owner.role_of(&g.tags) == Some(role))
        .min_by(|a, b| a.id.cmp(&b.id))
}

/// Our rules for `cluster` (by the key their CreatorRequestId carries).
pub(super) fn rules_of<'a>(
    owner: &Owner,
    obs: &'a Observation,
    cluster: &ClusterId,
) -> Vec<&'a RuleView> {
    let cluster = cluster.to_string();
    obs.rules
        .iter()
        .filter(|r| {
            matches!(owner.parse_creator_id(&r.creator_request_id),
                Some(CreatorId::Rule { cluster: c, .. }) if c == *cluster)
        })
        .collect()
}
