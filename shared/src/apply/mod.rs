//! Apply: carry out a plan, phase by phase (independent actions of a phase
//! run concurrently). Every create is idempotent (deterministic
//! CreatorRequestIds and names; "already exists" adopts the existing
//! resource), every delete treats "not found" as done, and ownership is
//! checked again right before anything of ours is changed or deleted
//! (`owned`). Each resource kind has its room: `groups` (security groups
//! and their rules), `endpoints`, `rules` (and associations), `parameters`.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use crate::accounts::{Accounts, ClientsRef};
use crate::aws::AwsError;
use crate::model::{Account, Direction, Tags, TargetAddress};
use crate::observe::{self};
use crate::owner::{Owner, TAG_OWNER};
use crate::plan::{Action, EndpointIpRef, EndpointRef, GroupRef, Phase, Plan, RuleRef, Targets};
use crate::progress::Wait;
use crate::wait::Patience;

mod endpoints;
mod groups;
mod owned;
mod parameters;
mod rules;
mod share;

use endpoints::*;
pub use share::Share;

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Something we were about to change or delete does not carry our
    /// owner tag: it is left alone, and the run fails so that someone looks.
    #[error("refusing to {action}: {resource} does not carry {TAG_OWNER}={owner}")]
    NotOurs {
        action: String,
        resource: String,
        owner: String,
    },
    /// Something stands in the way that a later run cannot remove by
    /// itself (a resource of someone else's, a quota): `reason` says what
    /// and what to do.
    #[error("{reason}")]
    Conflict { resource: String, reason: String },
    /// What an action needs is not there yet (an endpoint without
    /// addresses, a resource an earlier action of the plan makes): a later
    /// run finishes.
    #[error("{what} is not known yet; a later run finishes")]
    NotYet { what: String },
    /// What an action works on went away meanwhile: the next run plans
    /// again from what is there (and makes it anew if it is still wanted).
    #[error("{what} is gone; the next run makes a new one")]
    Gone { what: String },
    /// AWS is still doing what this action must wait for, and the deadline
    /// came: not an error of the run, which ends `converging`.
    #[error("still in progress: {0}")]
    InProgress(String),
}

impl ApplyError {
    /// Whether the same apply may succeed later. Exhaustive: a new
    /// variant must say.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Aws(e) => e.is_transient(),
            ApplyError::NotYet { .. } | ApplyError::Gone { .. } | ApplyError::InProgress(_) => true,
            ApplyError::NotOurs { .. } | ApplyError::Conflict { .. } => false,
        }
    }

    /// A conflict over `resource`.
    pub(super) fn conflict(resource: impl Into<String>, reason: impl Into<String>) -> ApplyError {
        ApplyError::Conflict {
            resource: resource.into(),
            reason: reason.into(),
        }
    }
}

/// How many times an action is sent again after AWS refuses it for
/// something it depends on (an association still there, a rule, a network
/// interface) and a wait then finds that gone: a refusal that repeats with
/// nothing left to wait for is an error, never an endless loop.
pub(super) const REFUSALS: u32 = 5;

/// What one action made, for the actions after it.
#[derive(Debug)]
pub(super) enum Effect {
    None,
    GroupCreated(Direction, String),
    EndpointCreated(Direction, String),
    /// The endpoint's IPs changed: it is UPDATING.
    EndpointChanged(Direction, String),
    /// (id, ARN).
    RuleCreated(String, String),
    ApiRulesCreated(Vec<String>),
    /// (rule, VPC): the association is CREATING.
    Associated(String, String),
    /// Left as it is, and why (it came into use since it was observed).
    Kept(String),
    /// Done; AWS finishes it in its own time (a delete: DELETING).
    Settle(Wait),
}

#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// The groups and endpoints this apply made, by the direction they serve.
    pub(super) groups: BTreeMap<Direction, String>,
    pub(super) endpoints: BTreeMap<Direction, String>,
    pub(super) rule_id: Option<String>,
    pub(super) rule_arn: Option<String>,
    pub(super) api_rule_ids: Vec<String>,
    pub(super) associated: BTreeSet<String>,
    pub(super) inbound_ips: Option<Vec<String>>,
    pub(super) inbound_ipv6: Option<Vec<String>>,
    /// Endpoints whose IPs this apply changed: they are not OPERATIONAL
    /// again until AWS finishes.
    pub(super) changed_endpoints: BTreeSet<String>,
}

#[derive(Clone)]
pub struct Applier<'a> {
    /// The clients of each account an action may act in.
    pub accounts: Accounts<'a>,
    /// Those of the account the action at hand acts in (`Action::account`).
    pub clients: ClientsRef<'a>,
    pub owner: &'a Owner,
    /// How long an action may wait for what it depends on (a rule's
    /// associations to go before the rule, an endpoint's interfaces to go
    /// before its group).
    pub patience: Patience,
}

/// Result of applying a plan.
#[derive(Debug, Default)]
pub struct Applied {
    /// The actions that ran.
    pub done: Vec<String>,
    /// What the apply stopped waiting for at the deadline; the actions of
    /// that phase that waited, and of every later phase, were not done.
    pub stopped: Vec<String>,
    /// What AWS still has to finish for what this apply made: endpoints
    /// made or resized (OPERATIONAL), associations made (COMPLETE).
    pub settle: Vec<Wait>,
    /// Deletes skipped because the resource came into use.
    pub kept: Vec<String>,
}

impl<'a> Applier<'a> {
    pub fn new(accounts: Accounts<'a>, owner: &'a Owner, patience: Patience) -> Applier<'a> {
        Applier {
            accounts,
            clients: ClientsRef::Home(accounts.home()),
            owner,
            patience,
        }
    }

    /// This applier, acting in `account`.
    async fn in_account(&self, account: &Account) -> Result<Applier<'a>, ApplyError> {
        Ok(Applier {
            clients: self.accounts.get(account).await?,
            accounts: self.accounts,
            owner: self.owner,
            patience: self.patience,
        })
    }

    pub async fn apply(&self, plan: &Plan) -> Result<Applied, ApplyError> {
        let mut resolved = Resolved::default();
        let mut applied = Applied::default();
        let mut phases: BTreeMap<Phase, Vec<&Action>> = BTreeMap::new();
        for action in &plan.actions {
            phases.entry(action.phase()).or_default().push(action);
        }
        let removing: BTreeSet<String> = plan
            .actions
            .iter()
            .flat_map(|a| match a {
                Action::RemoveEndpointIps { ips, .. } => ips
                    .iter()
                    .filter_map(|ip| ip.ip.clone())
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        for (phase, actions) in phases {
            if phase.reads_inbound_ips() {
                self.resolve_inbound_ips(plan, &mut resolved, &removing)
                    .await?;
            }
            let results = join_all(actions.iter().map(|a| self.run(a, &resolved))).await;
            let mut first_error = None;
            for (action, result) in actions.iter().zip(results) {
                match result {
                    Ok(effect) => {
                        applied.done.push(action.describe());
                        take_effect(action, effect, &mut applied, &mut resolved);
                    }
                    Err(ApplyError::InProgress(what)) => {
                        tracing::info!(action = %action.describe(), waiting_for = %what,
                            "deadline reached while waiting");
                        applied.stopped.push(what);
                    }
                    Err(e) => {
                        tracing::warn!(action = %action.describe(), error = %e, "action failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
            // Later phases depend on this one: stop here; a later run finishes.
            if let Some(e) = first_error {
                return Err(e);
            }
            if !applied.stopped.is_empty() {
                return Ok(applied);
            }
        }
        Ok(applied)
    }

    /// The inbound endpoint's addresses, as they will be once the planned IP
    /// removals are done.
    async fn resolve_inbound_ips(
        &self,
        plan: &Plan,
        resolved: &mut Resolved,
        removing: &BTreeSet<String>,
    ) -> Result<(), ApplyError> {
        if resolved.inbound_ips.is_some() {
            return Ok(());
        }
        let needs = plan.actions.iter().any(|a| {
            let targets = match a {
                Action::CreateRule { targets, .. } | Action::UpdateRule { targets, .. } => {
                    Some(targets)
                }
                _ => None,
            };
            !matches!(targets, None | Some(Targets::Known(_)))
                || matches!(a, Action::PublishParameters(p) if p.inbound_ips.is_none())
        });
        if !needs {
            return Ok(());
        }
        // The endpoint, and the account it is in: the cluster's.
        let made = resolved.endpoints.get(&Direction::Inbound).cloned();
        let found = plan.actions.iter().find_map(|a| match a {
            Action::CreateEndpoint {
                account,
                direction: Direction::Inbound,
                ..
            } => made.clone().map(|id| (id, account.clone())),
            Action::AddEndpointIps {
                account,
                endpoint_id,
                ..
            }
            | Action::RemoveEndpointIps {
                account,
                endpoint_id,
                ..
            } => Some((endpoint_id.clone(), account.clone())),
            Action::PublishParameters(p) => Some((
                made.clone().or_else(|| p.inbound_endpoint_id.clone())?,
                p.account.clone(),
            )),
            _ => None,
        });
        let Some((id, account)) = found else {
            return Ok(());
        };
        let clients = self.accounts.get(&account).await?;
        let ips = observe::endpoint_ips(&clients, &id)
            .await
            .map_err(|e| e.in_account(self.accounts.describe(&account)))?;
        let staying: Vec<_> = ips
            .iter()
            .filter(|ip| ip.status.is_live())
            .filter(|ip| !ip.ip.as_ref().is_some_and(|v4| removing.contains(v4)))
            .collect();
        let addresses = crate::model::ipv4s_of(staying.iter().copied());
        let ipv6 = crate::model::ipv6s_of(staying.iter().copied());
        if addresses.is_empty() {
            return Err(missing(&format!(
                "the IP addresses of inbound endpoint {id}"
            )));
        }
        resolved.inbound_ips = Some(addresses);
        resolved.inbound_ipv6 = Some(ipv6);
        Ok(())
    }

    /// One action, by the room of its resource kind, in its account (a
    /// failure says which, when not the deployment's own).
    async fn run(&self, action: &Action, resolved: &Resolved) -> Result<Effect, ApplyError> {
        let account = action.account();
        let here = self.in_account(account).await?;
        here.run_here(action, resolved).await.map_err(|e| match e {
            ApplyError::Aws(e) => ApplyError::Aws(e.in_account(self.accounts.describe(account))),
            other => other,
        })
    }

    async fn run_here(&self, action: &Action, resolved: &Resolved) -> Result<Effect, ApplyError> {
        match action {
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeIngress { .. }
            | Action::RevokeIngress { .. }
            | Action::DeleteSecurityGroup { .. } => self.run_groups(action, resolved).await,
            Action::CreateEndpoint { .. }
            | Action::ChangeEndpointType { .. }
            | Action::AddEndpointIps { .. }
            | Action::RemoveEndpointIps { .. }
            | Action::DeleteEndpoint { .. } => self.run_endpoints(action, resolved).await,
            Action::CreateRule { .. }
            | Action::UpdateRule { .. }
            | Action::ShareRule { .. }
            | Action::AssociateRule { .. }
            | Action::DisassociateRule { .. }
            | Action::DeleteRule { .. } => self.run_rules(action, resolved).await,
            Action::UnshareWith {
                share_arn,
                principals,
                ..
            } => self.unshare_with(share_arn, principals).await,
            Action::DeleteShare { share_arn, .. } => self.delete_share(share_arn).await,
            Action::PublishParameters(_) | Action::DeleteParameters { .. } => {
                self.run_parameters(action, resolved).await
            }
        }
    }
}

/// What one action made, for the apply's record and the actions after it.
fn take_effect(action: &Action, effect: Effect, applied: &mut Applied, resolved: &mut Resolved) {
    let account = action.account().clone();
    match effect {
        Effect::None => {}
        Effect::GroupCreated(role, id) => {
            resolved.groups.insert(role, id);
        }
        Effect::EndpointCreated(d, id) => {
            applied.settle.push(Wait::Endpoint {
                account,
                endpoint_id: id.clone(),
                direction: d,
                status: crate::status::EndpointStatus::Creating,
            });
            resolved.endpoints.insert(d, id);
        }
        Effect::EndpointChanged(d, id) => {
            applied.settle.push(Wait::Endpoint {
                account,
                endpoint_id: id.clone(),
                direction: d,
                status: crate::status::EndpointStatus::Updating,
            });
            resolved.changed_endpoints.insert(id);
        }
        Effect::RuleCreated(id, arn) => {
            resolved.rule_id = Some(id);
            resolved.rule_arn = Some(arn);
        }
        Effect::ApiRulesCreated(ids) => resolved.api_rule_ids.extend(ids),
        Effect::Associated(rule, vpc) => {
            applied.settle.push(Wait::Association {
                account,
                rule_id: rule,
                vpc_id: vpc.clone(),
                status: crate::status::AssociationStatus::Creating,
            });
            resolved.associated.insert(vpc);
        }
        Effect::Settle(wait) => applied.settle.push(wait),
        Effect::Kept(why) => {
            tracing::info!(action = %action.describe(), why = %why, "left in place");
            applied.kept.push(why);
        }
    }
}

pub(super) fn missing(what: &str) -> ApplyError {
    ApplyError::NotYet {
        what: what.to_string(),
    }
}

pub(super) fn group_id(group: &GroupRef, resolved: &Resolved) -> Result<String, ApplyError> {
    match group {
        GroupRef::Existing(id) => Ok(id.clone()),
        GroupRef::New(role) => resolved
            .groups
            .get(role)
            .cloned()
            .ok_or_else(|| missing(&format!("the new {role} security group"))),
    }
}

pub(super) fn endpoint_id(
    endpoint: &EndpointRef,
    resolved: &Resolved,
) -> Result<String, ApplyError> {
    match endpoint {
        EndpointRef::Existing(id) => Ok(id.clone()),
        EndpointRef::New(d) => resolved
            .endpoints
            .get(d)
            .cloned()
            .ok_or_else(|| missing(&format!("the new {d} endpoint"))),
    }
}

pub(super) fn targets_of(
    targets: &Targets,
    resolved: &Resolved,
) -> Result<Vec<TargetAddress>, ApplyError> {
    match targets {
        Targets::Known(t) => Ok(t.clone()),
        Targets::InboundEndpointIps | Targets::InboundEndpointIpsAndIpv6 => {
            let ips = resolved
                .inbound_ips
                .clone()
                .ok_or_else(|| missing("the inbound endpoint's addresses"))?;
            let ipv6 = match targets {
                Targets::InboundEndpointIpsAndIpv6 => {
                    resolved.inbound_ipv6.clone().unwrap_or_default()
                }
                _ => Vec::new(),
            };
            Ok(crate::plan::rule_targets(&ips, &ipv6))
        }
    }
}

/// "Not found" on a delete means it is already done.
pub(super) fn ok_if_gone(result: Result<(), AwsError>) -> Result<(), AwsError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

pub(super) fn resolver_tags(tags: &Tags) -> Vec<aws_sdk_route53resolver::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_route53resolver::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}
