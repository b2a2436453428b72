//! The planner: pure, no I/O. It turns what the observe step saw into the
//! decision for one cluster and the actions that make AWS match it.
//!
//! | cluster                                  | decision    | actions                                   |
//! |------------------------------------------|-------------|-------------------------------------------|
//! | CREATING, UPDATING, PENDING              | pending     | none: nothing half-made; a later run ends |
//! | gone, DELETING                           | gone        | remove what we made for it                |
//! | FAILED, opted out, trigger not met       | not-managed | remove what we made for it                |
//! | meets the trigger (or opted in), valid   | managed     | create what is missing, fix what drifted, |
//! |                                          |             | remove what is no longer wanted           |
//! | meets the trigger, prerequisites missing | invalid     | none, and an error that says what to fix  |
//!
//! Shared resources (the VPC's inbound endpoint, the region's outbound
//! endpoint, their security groups) go only when nothing else of ours uses
//! them. Resources without our owner marker are never in a plan, except as
//! facts (a foreign 443 rule that already admits a CIDR is left alone and
//! counts as done). An action whose input is made by an earlier action of the
//! same plan refers to it as `New`, and the apply step fills it in.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::{ClusterTags, Config, Trigger, ENV_CLIENT_VPC_IDS};
use crate::model::*;
use crate::owner::{CreatorId, Owner, ROLE_INBOUND, ROLE_OUTBOUND, TAG_CLUSTER, TAG_ROLE};
pub use crate::progress::{Problem, Wait};
pub use crate::ssm::Publication;
use crate::ssm::{parameter_name, PARAM_INBOUND_IPS, PARAM_INBOUND_IPV6, PARAM_STATE};

mod access;
mod action;
mod desired;
mod find;
mod inbound;
mod invalid;
mod managed;
mod orphans;
mod outbound;
mod rule;
pub mod stack;
mod teardown;

pub use access::api_group;
pub use action::*;
pub use inbound::{addresses_to_keep, new_endpoint_addresses, pick_subnets};
pub use invalid::Invalid;
pub use orphans::{plan_shared_orphans, shared_leaders, SharedView};
pub use outbound::outbound_vpc_hint;
pub use rule::{reaches_ipv6, rule_targets, MAX_RULE_TARGETS};

use access::*;
use desired::*;
use find::*;
use inbound::*;
use managed::*;
use outbound::*;
use rule::*;
use teardown::*;

pub const DNS_PORT: i32 = 53;
pub const API_PORT: i32 = 443;

/// Everything the planner needs, as read by the observe step.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub cluster_name: String,
    /// None: DescribeCluster said the cluster does not exist.
    pub cluster: Option<ClusterView>,
    /// The cluster ARN from the triggering event, when the cluster is gone.
    pub hinted_arn: Option<String>,
    pub cluster_vpc_dns: Option<VpcDns>,
    /// The cluster's subnets (DescribeSubnets), with their AZs.
    pub cluster_subnets: Vec<SubnetView>,
    /// Of the inbound addresses this cluster published, those a network
    /// interface holds now: read only when the VPC's inbound endpoint must
    /// be made again (`addresses_to_keep`).
    pub addresses_in_use: BTreeSet<String>,
    /// Every VPC described: client VPCs (configured, tagged, peered), the
    /// cluster VPC and the outbound VPC.
    pub vpcs: Vec<VpcView>,
    /// VPCs with an active peering connection to the cluster VPC.
    pub peered_vpc_ids: Vec<String>,
    /// The cluster's additional security groups, described (only with
    /// `EKS_PRIVATE_DNS_API_RULES_GROUP=tagged`).
    pub cluster_groups: Vec<SecurityGroupView>,
    /// Peered VPCs of other accounts (VPC id, account id): not served by
    /// this deployment, and no reason to refuse the cluster.
    pub other_account_peers: Vec<(String, String)>,
    /// Subnets of the VPC where a new outbound endpoint would go.
    pub outbound_vpc_subnets: Vec<SubnetView>,
    /// Our Resolver endpoints (by CreatorRequestId), plus the configured outbound one.
    pub endpoints: Vec<EndpointView>,
    /// Our Resolver rules (by CreatorRequestId), for every cluster.
    pub rules: Vec<RuleView>,
    /// Associations of our rules.
    pub associations: Vec<AssociationView>,
    /// Our security groups (by owner tag).
    pub security_groups: Vec<SecurityGroupView>,
    /// Ingress rules on the control-plane group and on our groups, and every
    /// rule carrying our owner tag.
    pub security_group_rules: Vec<SecurityGroupRuleView>,
    /// This cluster's parameters under the prefix.
    pub parameters: Vec<ParameterView>,
    /// Other clusters recorded as using the cluster VPC's inbound endpoint.
    pub registrations: Vec<Registration>,
    /// The plumbing existed, so what only building it needs was not read:
    /// the cluster VPC's DNS attributes, the cluster's subnets and the
    /// outbound VPC's subnets (see `details_wanted`). The planner then skips
    /// the prerequisite checks, and a plan that would need them
    /// (`Plan::needs_details`) is made again from a full observation.
    pub lean: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Plumbing is wanted and is made or kept right.
    Managed,
    /// EKS is still creating or updating the cluster.
    Pending { status: String },
    /// The cluster exists but needs no plumbing.
    NotManaged { reason: String },
    /// The cluster does not exist (or is being deleted).
    Gone,
    /// Plumbing is wanted but cannot be made as things are.
    Invalid { problem: Invalid },
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Managed => "managed",
            Decision::Pending { .. } => "pending",
            Decision::NotManaged { .. } => "not-managed",
            Decision::Gone => "gone",
            Decision::Invalid { .. } => "invalid",
        }
    }
}
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub cluster: String,
    #[serde(flatten)]
    pub decision: Decision,
    pub actions: Vec<Action>,
    /// What AWS must finish before the plumbing serves (whatever the actions).
    pub waits: Vec<Wait>,
    /// What AWS reports as failed, and the repair the actions make.
    pub problems: Vec<Problem>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Take out of the plan every action that takes something away or
    /// shrinks it (revokes, disassociations, deletes, an endpoint's
    /// addresses removed), and the publication, which would record this
    /// run's settings as those the plumbing was made with: what a run with
    /// settings other than the recorded ones holds back. Returns what was
    /// taken out, in order.
    pub fn hold_back(&mut self) -> Vec<Action> {
        let takes_away = |a: &Action| {
            matches!(
                a,
                Action::RevokeIngress { .. }
                    | Action::RemoveEndpointIps { .. }
                    | Action::DisassociateRule { .. }
                    | Action::DeleteRule { .. }
                    | Action::DeleteEndpoint { .. }
                    | Action::DeleteSecurityGroup { .. }
                    | Action::DeleteParameters { .. }
            )
        };
        if !self.actions.iter().any(takes_away) {
            return Vec::new();
        }
        let (held, kept): (Vec<Action>, Vec<Action>) = self
            .actions
            .drain(..)
            .partition(|a| takes_away(a) || matches!(a, Action::PublishParameters(_)));
        self.actions = kept;
        held
    }

    /// Whether the plan deletes an endpoint or a security group that other
    /// clusters may share.
    pub fn deletes_shared(&self) -> bool {
        self.actions.iter().any(|a| {
            matches!(
                a,
                Action::DeleteEndpoint { .. } | Action::DeleteSecurityGroup { .. }
            )
        })
    }

    /// Whether the plan builds or resizes an endpoint, which a lean
    /// observation (`Observation::lean`) has not read enough for; or found
    /// the configuration invalid, which a full observation must confirm.
    pub fn needs_details(&self) -> bool {
        matches!(self.decision, Decision::Invalid { .. })
            || self.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::CreateEndpoint { .. }
                        | Action::ChangeEndpointType { .. }
                        | Action::AddEndpointIps { .. }
                        | Action::RemoveEndpointIps { .. }
                )
            })
    }
}

/// Plan one cluster.
pub fn plan(config: &Config, owner: &Owner, obs: &Observation) -> Plan {
    let decision = decide(config, obs);
    let mut planned = match &decision {
        Decision::Managed => match managed(config, owner, obs) {
            Ok(planned) => planned,
            Err(problem) => {
                return Plan {
                    cluster: obs.cluster_name.clone(),
                    decision: Decision::Invalid { problem },
                    actions: Vec::new(),
                    waits: Vec::new(),
                    problems: Vec::new(),
                }
            }
        },
        Decision::NotManaged { .. } | Decision::Gone => Planned {
            actions: teardown(config, owner, obs),
            ..Planned::default()
        },
        Decision::Pending { .. } | Decision::Invalid { .. } => Planned::default(),
    };
    planned.actions.sort_by_key(Action::phase);
    planned.waits.sort();
    planned.waits.dedup();
    Plan {
        cluster: obs.cluster_name.clone(),
        decision,
        actions: planned.actions,
        waits: planned.waits,
        problems: planned.problems,
    }
}

/// What a sub-planner gives: its actions, and what it learned.
#[derive(Debug, Default)]
pub(super) struct Planned {
    pub(super) actions: Vec<Action>,
    pub(super) waits: Vec<Wait>,
    pub(super) problems: Vec<Problem>,
}

impl Planned {
    pub(super) fn absorb(&mut self, other: Planned) {
        self.actions.extend(other.actions);
        self.waits.extend(other.waits);
        self.problems.extend(other.problems);
    }

    /// Absorb what a sub-planner planned and return what it learned.
    pub(super) fn take<T>(&mut self, (other, learned): (Planned, T)) -> T {
        self.absorb(other);
        learned
    }
}

/// Whether the cluster should have plumbing.
pub fn decide(config: &Config, obs: &Observation) -> Decision {
    let Some(cluster) = &obs.cluster else {
        return Decision::Gone;
    };
    match cluster.status {
        ClusterStatus::Deleting => return Decision::Gone,
        ClusterStatus::Failed => {
            return Decision::NotManaged {
                reason: "the cluster is FAILED".into(),
            }
        }
        // An endpoint access update in progress: decided on the access it
        // sets, so that the plumbing is ready when the update ends.
        ClusterStatus::Updating if cluster.access_update.is_some() => {}
        ref s if s.is_in_progress() => {
            return Decision::Pending {
                status: s.as_str().to_string(),
            }
        }
        _ => {}
    }
    let pending = || Decision::Pending {
        status: cluster.status.as_str().to_string(),
    };
    let updating = cluster.status == ClusterStatus::Updating;
    let (private_access, public_access) = cluster.target_access();
    let tags = match ClusterTags::parse(&cluster.name, &cluster.tags, config) {
        Ok(tags) => tags,
        Err(e) => {
            return Decision::Invalid {
                problem: Invalid::Tags(e.to_string()),
            }
        }
    };
    if tags.enabled == Some(false) {
        return Decision::NotManaged {
            reason: "opted out by its eks-private-dns/enabled=false tag".into(),
        };
    }
    if !private_access {
        if updating {
            return pending();
        }
        return Decision::NotManaged {
            reason: "its private endpoint access is off".into(),
        };
    }
    if tags.enabled != Some(true) && config.trigger == Trigger::PrivateOnly && public_access {
        if updating {
            return pending();
        }
        return Decision::NotManaged {
            reason: "its public endpoint access is on (trigger private-only)".into(),
        };
    }
    let has_clients = !config.client_vpc_ids.is_empty()
        || !tags.client_vpc_ids.is_empty()
        || !config.onprem_cidrs.is_empty()
        || !tags.onprem_cidrs.is_empty()
        || (config.discover_peered_vpcs && !obs.peered_vpc_ids.is_empty());
    if !has_clients {
        return Decision::NotManaged {
            reason: "no client VPCs or on-premises CIDRs are configured, so nothing would use it"
                .into(),
        };
    }
    Decision::Managed
}

/// Whether building or resizing is ahead, so that the observer must read
/// the prerequisites and subnets: no live inbound endpoint of ours in the
/// cluster VPC, one with another number of IPs than configured, or client
/// VPCs and no outbound endpoint to serve them. Read after the endpoints
/// and their IPs; a wrong "no" costs one more observation, never a wrong
/// plan (`Plan::needs_details`).
pub fn details_wanted(config: &Config, owner: &Owner, obs: &Observation) -> bool {
    let Some(vpc_id) = obs.cluster.as_ref().and_then(|c| c.vpc_id.as_deref()) else {
        return true;
    };
    let inbound = live_endpoints(owner, obs, Direction::Inbound, Some(vpc_id));
    // Sized: the configured number of live IPs, and none failed to replace.
    let sized = inbound.first().is_some_and(|e| {
        e.ips.is_some()
            && e.live_ips().count() == config.inbound_ips as usize
            && e.failed_ips().next().is_none()
    });
    let outbound_served = config.outbound_endpoint_id.is_some()
        || client_vpc_hint(config, obs).is_empty()
        || !live_endpoints(owner, obs, Direction::Outbound, None).is_empty();
    let typed = inbound
        .first()
        .is_some_and(|e| type_settled(config, obs, e.endpoint_type));
    !(sized && outbound_served && typed)
}

/// Whether the inbound endpoint's `current` type is what the setting
/// wants without reading the subnets (`stack::settled`).
fn type_settled(config: &Config, obs: &Observation, current: EndpointType) -> bool {
    let Some(c) = obs.cluster.as_ref() else {
        return true;
    };
    let host = c.endpoint_host.as_deref().unwrap_or_default();
    stack::settled(config.endpoint_type, c.ipv6, host, current)
}

/// The client VPC ids the observe step should describe for this cluster.
pub fn client_vpc_hint(config: &Config, obs: &Observation) -> Vec<String> {
    let Some(cluster) = obs.cluster.as_ref() else {
        return Vec::new();
    };
    let tags = ClusterTags::parse(&cluster.name, &cluster.tags, config).unwrap_or_default();
    client_vpc_ids(config, &tags, obs)
}

/// The state parameter of this cluster, when it parses.
pub fn previous_state(config: &Config, obs: &Observation) -> Option<StateDoc> {
    let name = parameter_name(&config.ssm_prefix, &obs.cluster_name, PARAM_STATE);
    obs.parameters
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| serde_json::from_str(&p.value).ok())
}

#[cfg(test)]
mod tests;
