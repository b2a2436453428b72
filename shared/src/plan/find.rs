//! What is ours in an observation.

use super::*;

/// Our live endpoints of a direction (optionally in one VPC), oldest first.
pub(super) fn live_endpoints<'a>(
    owner: &Owner,
    obs: &'a Observation,
    direction: Direction,
    vpc_id: Option<&str>,
) -> Vec<&'a EndpointView> {
    let mut found: Vec<&EndpointView> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == direction && !e.is_going_away())
        .filter(|e| match owner.parse_creator_id(&e.creator_request_id) {
            Some(CreatorId::Inbound { vpc_id: v }) => {
                direction == Direction::Inbound && v == e.vpc_id
            }
            Some(CreatorId::Outbound { vpc_id: v }) => {
                direction == Direction::Outbound && v == e.vpc_id
            }
            _ => false,
        })
        .filter(|e| vpc_id.map(|v| e.vpc_id == v).unwrap_or(true))
        .collect();
    found.sort_by(|a, b| (&a.creation_time, &a.id).cmp(&(&b.creation_time, &b.id)));
    found
}

pub(super) fn find_group<'a>(
    owner: &Owner,
    obs: &'a Observation,
    vpc_id: &str,
    role: &str,
) -> Option<&'a SecurityGroupView> {
    obs.security_groups
        .iter()
        .filter(|g| {
            owner.is_ours(&g.tags)
                && g.vpc_id == vpc_id
                && g.tags.get(TAG_ROLE).map(String::as_str) == Some(role)
        })
        .min_by(|a, b| a.id.cmp(&b.id))
}

pub(super) fn rules_of<'a>(
    owner: &Owner,
    obs: &'a Observation,
    cluster: &str,
) -> Vec<&'a RuleView> {
    obs.rules
        .iter()
        .filter(|r| {
            matches!(owner.parse_creator_id(&r.creator_request_id),
                Some(CreatorId::Rule { cluster: c, .. }) if c == cluster)
        })
        .collect()
}
