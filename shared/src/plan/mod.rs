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

use serde::Serialize;

use crate::config::{ClusterTags, Config, Trigger, ENV_CLIENT_VPC_IDS, ENV_SPOKE_ACCOUNTS};
use crate::model::*;
use crate::owner::{CreatorId, Owner, TAG_CLUSTER};
pub use crate::progress::{Problem, Wait};
pub use crate::ssm::Publication;

mod access;
mod action;
mod describe;
mod desired;
mod find;
mod inbound;
mod invalid;
mod managed;
mod orphans;
mod outbound;
mod rule;
mod teardown;

pub use crate::observation::Observation;
pub use crate::stack;
pub use access::api_group;
pub use action::*;
pub use inbound::{new_endpoint_addresses, pick_subnets};
pub use invalid::Invalid;
pub use orphans::{plan_shared_orphans, shared_leaders, ShareView, SharedView};
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
        if !self.actions.iter().any(Action::takes_away) {
            return Vec::new();
        }
        let (held, kept): (Vec<Action>, Vec<Action>) = self
            .actions
            .drain(..)
            .partition(|a| a.takes_away() || matches!(a, Action::PublishParameters(_)));
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
    // Before anything else, a gone cluster's teardown included.
    if let Some((parameter, schema)) = obs.newer_record(config) {
        return Decision::Invalid {
            problem: Invalid::NewerRecord {
                cluster: obs.cluster_id().to_string(),
                parameter,
                schema,
            },
        };
    }
    let Some(cluster) = &obs.cluster else {
        return Decision::Gone;
    };
    if config.take_down {
        return Decision::NotManaged {
            reason: format!(
                "everything of owner {} is being taken down (teardown)",
                config.owner
            ),
        };
    }
    if !obs.serves(&obs.account) {
        return Decision::NotManaged {
            reason: format!(
                "its {} is not among the accounts this deployment serves \
                 ({ENV_SPOKE_ACCOUNTS})",
                obs.account
            ),
        };
    }
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
            reason: format!("opted out by its {}=false tag", config.enabled_tag()),
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
        || (config.discover_peered_vpcs && !obs.peered_vpcs.is_empty());
    if !has_clients {
        return Decision::NotManaged {
            reason: "no client VPCs or on-premises CIDRs are configured, so nothing would use it"
                .into(),
        };
    }
    Decision::Managed
}

#[cfg(test)]
mod tests;
