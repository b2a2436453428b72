//! Apply: carry out a plan, phase by phase (independent actions of a phase
//! run concurrently). Every create is idempotent (deterministic
//! CreatorRequestIds and names; "already exists" adopts the existing
//! resource), every delete treats "not found" as done, and ownership is
//! checked again right before anything of ours is changed or deleted.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType, TagSpecification};
use aws_sdk_route53resolver::types::{
    IpAddressRequest, IpAddressUpdate, ResolverEndpointDirection, ResolverEndpointType,
    ResolverRuleConfig, RuleTypeOption,
};
use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging};
use futures::future::join_all;

use crate::aws::{aws, AwsError, Clients};
use crate::model::{Direction, Permission, Tags, TargetAddress};
use crate::observe::{self, ec2_tags, filter};
use crate::owner::{resolver_name, Owner, MAX_GENERATIONS, TAG_OWNER};
use crate::plan::{
    Action, EndpointRef, GroupRef, Phase, Plan, Publication, RuleRef, Targets, DNS_PORT,
};
use crate::progress::Wait;
use crate::wait::{poll, Look, Patience, Waited};

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
    /// A resource of someone else's stands in the way.
    #[error("{0}")]
    Conflict(String),
    /// AWS is still doing what this action must wait for, and the deadline
    /// came: not an error of the run, which ends `converging`.
    #[error("still in progress: {0}")]
    InProgress(String),
}

impl ApplyError {
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Aws(e) => e.transient,
            ApplyError::InProgress(_) => true,
            ApplyError::NotOurs { .. } | ApplyError::Conflict(_) => false,
        }
    }
}

/// How many times an action is sent again after AWS refuses it for
/// something it depends on (an association still there, a rule, a network
/// interface) and a wait then finds that gone: a refusal that repeats with
/// nothing left to wait for is an error, never an endless loop.
const REFUSALS: u32 = 5;

/// What one action made, for the actions after it.
#[derive(Debug)]
enum Effect {
    None,
    GroupCreated(String, String),
    EndpointCreated(Direction, String),
    /// The endpoint's IPs changed: it is UPDATING.
    EndpointChanged(Direction, String),
    RuleCreated(String),
    ApiRulesCreated(Vec<String>),
    /// (rule, VPC): the association is CREATING.
    Associated(String, String),
    /// Left as it is, and why (it came into use since it was observed).
    Kept(String),
    /// Done; AWS finishes it in its own time (a delete: DELETING).
    Settle(Wait),
}

#[derive(Debug, Default)]
struct Resolved {
    groups: BTreeMap<String, String>,
    endpoints: BTreeMap<&'static str, String>,
    rule_id: Option<String>,
    api_rule_ids: Vec<String>,
    associated: BTreeSet<String>,
    inbound_ips: Option<Vec<String>>,
    /// Endpoints whose IPs this apply changed: they are not OPERATIONAL
    /// again until AWS finishes.
    changed_endpoints: BTreeSet<String>,
    /// Endpoints left in place because something came to use them.
    kept: Vec<String>,
}

fn direction_key(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

pub struct Applier<'a> {
    pub clients: &'a Clients,
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
                        match effect {
                            Effect::None => {}
                            Effect::GroupCreated(role, id) => {
                                resolved.groups.insert(role, id);
                            }
                            Effect::EndpointCreated(d, id) => {
                                applied.settle.push(Wait::Endpoint {
                                    endpoint_id: id.clone(),
                                    direction: d,
                                    status: crate::status::EndpointStatus::Creating,
                                });
                                resolved.endpoints.insert(direction_key(d), id);
                            }
                            Effect::EndpointChanged(d, id) => {
                                applied.settle.push(Wait::Endpoint {
                                    endpoint_id: id.clone(),
                                    direction: d,
                                    status: crate::status::EndpointStatus::Updating,
                                });
                                resolved.changed_endpoints.insert(id);
                            }
                            Effect::RuleCreated(id) => resolved.rule_id = Some(id),
                            Effect::ApiRulesCreated(ids) => resolved.api_rule_ids.extend(ids),
                            Effect::Associated(rule, vpc) => {
                                applied.settle.push(Wait::Association {
                                    rule_id: rule,
                                    vpc_id: vpc.clone(),
                                    status: crate::status::AssociationStatus::Creating,
                                });
                                resolved.associated.insert(vpc);
                            }
                            Effect::Settle(wait) => applied.settle.push(wait),
                            Effect::Kept(why) => {
                                tracing::info!(action = %action.describe(), why = %why, "left in place");
                                resolved.kept.push(why.clone());
                                applied.kept.push(why);
                            }
                        }
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
            matches!(
                a,
                Action::CreateRule {
                    targets: Targets::InboundEndpointIps,
                    ..
                } | Action::UpdateRule {
                    targets: Targets::InboundEndpointIps,
                    ..
                }
            ) || matches!(a, Action::PublishParameters(p) if p.inbound_ips.is_none())
        });
        if !needs {
            return Ok(());
        }
        let id = resolved.endpoints.get("inbound").cloned().or_else(|| {
            plan.actions.iter().find_map(|a| match a {
                Action::AddEndpointIps { endpoint_id, .. }
                | Action::RemoveEndpointIps { endpoint_id, .. } => Some(endpoint_id.clone()),
                Action::PublishParameters(p) => p.inbound_endpoint_id.clone(),
                _ => None,
            })
        });
        let Some(id) = id else {
            return Ok(());
        };
        let ips = observe::endpoint_ips(self.clients, &id).await?;
        let mut addresses: Vec<String> = ips
            .iter()
            .filter(|ip| ip.status.is_live())
            .filter_map(|ip| ip.ip.clone())
            .filter(|ip| !removing.contains(ip))
            .collect();
        addresses.sort_by_key(|ip| crate::model::ip_sort_key(ip));
        addresses.dedup();
        if addresses.is_empty() {
            return Err(ApplyError::Aws(AwsError {
                operation: "Route53Resolver.ListResolverEndpointIpAddresses".into(),
                code: Some("NoAddressesYet".into()),
                message: format!("inbound endpoint {id} has no IP addresses yet"),
                transient: true,
            }));
        }
        resolved.inbound_ips = Some(addresses);
        Ok(())
    }

    async fn run(&self, action: &Action, resolved: &Resolved) -> Result<Effect, ApplyError> {
        match action {
            Action::CreateSecurityGroup { role, vpc_id, name } => {
                let id = self.create_security_group(role, vpc_id, name).await?;
                Ok(Effect::GroupCreated(role.clone(), id))
            }
            Action::AuthorizeIngress {
                group,
                permissions,
                cluster_arn,
                vpc_id,
            } => {
                let group_id = group_id(group, resolved)?;
                let tags = match cluster_arn {
                    Some(arn) => self.owner.cluster_tags(arn),
                    None => self.owner.dns_rule_tags(vpc_id),
                };
                let ids = self.authorize(&group_id, permissions, &tags).await?;
                Ok(if cluster_arn.is_some() {
                    Effect::ApiRulesCreated(ids)
                } else {
                    Effect::None
                })
            }
            Action::RevokeIngress {
                group_id, rule_ids, ..
            } => {
                self.revoke(group_id, rule_ids).await?;
                Ok(Effect::None)
            }
            Action::CreateEndpoint {
                direction,
                vpc_id,
                group,
                subnet_ids,
            } => {
                let group_id = group_id(group, resolved)?;
                let id = self
                    .create_endpoint(*direction, vpc_id, &group_id, subnet_ids)
                    .await?;
                Ok(Effect::EndpointCreated(*direction, id))
            }
            Action::AddEndpointIps {
                endpoint_id,
                subnet_ids,
                endpoint_ready,
            } => {
                self.ensure_resolver_owned(endpoint_id, "change", None)
                    .await?;
                let mut ready =
                    *endpoint_ready && !resolved.changed_endpoints.contains(endpoint_id);
                let mut direction = Direction::Inbound;
                for subnet in subnet_ids {
                    if !ready {
                        direction = self.until_endpoint_takes_changes(endpoint_id).await?;
                    }
                    self.change_endpoint_ip(
                        endpoint_id,
                        || {
                            self.clients
                                .resolver
                                .associate_resolver_endpoint_ip_address()
                                .resolver_endpoint_id(endpoint_id)
                                .ip_address(IpAddressUpdate::builder().subnet_id(subnet).build())
                                .send()
                        },
                        "Route53Resolver.AssociateResolverEndpointIpAddress",
                    )
                    .await?;
                    // Each change leaves the endpoint UPDATING until AWS is done.
                    ready = false;
                }
                Ok(Effect::EndpointChanged(direction, endpoint_id.clone()))
            }
            Action::RemoveEndpointIps {
                endpoint_id,
                ips,
                endpoint_ready,
            } => {
                self.ensure_resolver_owned(endpoint_id, "change", None)
                    .await?;
                let mut ready =
                    *endpoint_ready && !resolved.changed_endpoints.contains(endpoint_id);
                let mut direction = Direction::Inbound;
                for ip in ips {
                    if !ready {
                        direction = self.until_endpoint_takes_changes(endpoint_id).await?;
                    }
                    let result = self
                        .change_endpoint_ip(
                            endpoint_id,
                            || {
                                self.clients
                                    .resolver
                                    .disassociate_resolver_endpoint_ip_address()
                                    .resolver_endpoint_id(endpoint_id)
                                    .ip_address(
                                        IpAddressUpdate::builder()
                                            .ip_id(&ip.ip_id)
                                            .subnet_id(&ip.subnet_id)
                                            .build(),
                                    )
                                    .send()
                            },
                            "Route53Resolver.DisassociateResolverEndpointIpAddress",
                        )
                        .await;
                    match result {
                        Err(ApplyError::Aws(e)) if is_gone(&e) => {}
                        other => other?,
                    }
                    ready = false;
                }
                Ok(Effect::EndpointChanged(direction, endpoint_id.clone()))
            }
            Action::CreateRule {
                cluster,
                cluster_arn,
                domain,
                targets,
                endpoint,
            } => {
                let targets = targets_of(targets, resolved)?;
                let endpoint_id = endpoint_id(endpoint, resolved)?;
                let id = self
                    .create_rule(cluster, cluster_arn, domain, &targets, &endpoint_id)
                    .await?;
                Ok(Effect::RuleCreated(id))
            }
            Action::UpdateRule {
                rule_id,
                rule_arn,
                targets,
                endpoint,
                ..
            } => {
                let targets = targets_of(targets, resolved)?;
                let endpoint_id = endpoint_id(endpoint, resolved)?;
                self.ensure_resolver_owned(rule_id, "update", Some(rule_arn))
                    .await?;
                self.clients
                    .resolver
                    .update_resolver_rule()
                    .resolver_rule_id(rule_id)
                    .config(
                        ResolverRuleConfig::builder()
                            .set_target_ips(Some(sdk_targets(&targets)))
                            .resolver_endpoint_id(endpoint_id)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(aws("Route53Resolver.UpdateResolverRule"))?;
                Ok(Effect::None)
            }
            Action::AssociateRule {
                rule,
                vpc_id,
                cluster,
            } => {
                let rule_id = match rule {
                    RuleRef::Existing(id) => id.clone(),
                    RuleRef::New => resolved
                        .rule_id
                        .clone()
                        .ok_or_else(|| missing("the new rule"))?,
                };
                self.associate(&rule_id, vpc_id, cluster).await?;
                Ok(Effect::Associated(rule_id, vpc_id.clone()))
            }
            Action::DisassociateRule {
                rule_id,
                rule_arn,
                vpc_id,
            } => {
                self.ensure_resolver_owned(rule_id, "disassociate", Some(rule_arn))
                    .await?;
                let result = self
                    .clients
                    .resolver
                    .disassociate_resolver_rule()
                    .resolver_rule_id(rule_id)
                    .vpc_id(vpc_id)
                    .send()
                    .await
                    .map_err(aws("Route53Resolver.DisassociateResolverRule"));
                ok_if_gone(result.map(|_| ()))?;
                Ok(Effect::Settle(Wait::AssociationGone {
                    rule_id: rule_id.clone(),
                    vpc_id: vpc_id.clone(),
                }))
            }
            Action::DeleteRule {
                rule_id,
                rule_arn,
                after_associations,
                ..
            } => {
                self.ensure_resolver_owned(rule_id, "delete", Some(rule_arn))
                    .await?;
                if *after_associations {
                    self.until_rule_is_unassociated(rule_id).await?;
                }
                let mut refusals = 0;
                loop {
                    let result = self
                        .clients
                        .resolver
                        .delete_resolver_rule()
                        .resolver_rule_id(rule_id)
                        .send()
                        .await
                        .map_err(aws("Route53Resolver.DeleteResolverRule"));
                    match result {
                        // Still associated somewhere (an association going away).
                        Err(e) if e.is_code("ResourceInUseException") => {
                            refusals += 1;
                            if refusals > REFUSALS {
                                return Err(e.into());
                            }
                            self.until_rule_is_unassociated(rule_id).await?
                        }
                        other => {
                            ok_if_gone(other.map(|_| ()))?;
                            break;
                        }
                    }
                }
                Ok(Effect::Settle(Wait::RuleGone {
                    rule_id: rule_id.clone(),
                }))
            }
            Action::DeleteEndpoint {
                endpoint_id,
                endpoint_arn,
                after_rules,
                ..
            } => {
                self.ensure_resolver_owned(endpoint_id, "delete", Some(endpoint_arn))
                    .await?;
                if *after_rules {
                    if let Some(why) = self.until_endpoint_is_unused(endpoint_id).await? {
                        return Ok(Effect::Kept(why));
                    }
                }
                let mut refusals = 0;
                loop {
                    let result = self
                        .clients
                        .resolver
                        .delete_resolver_endpoint()
                        .resolver_endpoint_id(endpoint_id)
                        .send()
                        .await
                        .map_err(aws("Route53Resolver.DeleteResolverEndpoint"));
                    match result {
                        // A rule still uses it (one being deleted, or a new one).
                        Err(e) if e.message_contains("RSLVR-00600") => {
                            refusals += 1;
                            if refusals > REFUSALS {
                                return Err(e.into());
                            }
                            if let Some(why) = self.until_endpoint_is_unused(endpoint_id).await? {
                                return Ok(Effect::Kept(why));
                            }
                        }
                        other => {
                            ok_if_gone(other.map(|_| ()))?;
                            break;
                        }
                    }
                }
                Ok(Effect::Settle(Wait::EndpointGone {
                    endpoint_id: endpoint_id.clone(),
                }))
            }
            Action::DeleteSecurityGroup {
                group_id,
                after_interfaces,
                ..
            } => {
                match self
                    .delete_security_group(group_id, *after_interfaces)
                    .await?
                {
                    Some(why) => Ok(Effect::Kept(why)),
                    None => Ok(Effect::None),
                }
            }
            Action::PublishParameters(publication) => {
                self.publish(publication, resolved).await?;
                Ok(Effect::None)
            }
            Action::DeleteParameters { names } => {
                self.delete_parameters(names).await?;
                Ok(Effect::None)
            }
        }
    }

    // ---- ownership checks -------------------------------------------------

    async fn resolver_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let mut tags = Tags::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .clients
                .resolver
                .list_tags_for_resource()
                .resource_arn(arn)
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(aws("Route53Resolver.ListTagsForResource"))?;
            for t in out.tags() {
                tags.insert(t.key().to_string(), t.value().to_string());
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        Ok(tags)
    }

    /// Check that a Resolver resource carries our owner tag. `arn` may be
    /// None for an endpoint, whose ARN is looked up.
    async fn ensure_resolver_owned(
        &self,
        id: &str,
        verb: &str,
        arn: Option<&String>,
    ) -> Result<(), ApplyError> {
        let arn = match arn {
            Some(arn) if !arn.is_empty() => arn.clone(),
            _ => {
                let out = self
                    .clients
                    .resolver
                    .get_resolver_endpoint()
                    .resolver_endpoint_id(id)
                    .send()
                    .await
                    .map_err(aws("Route53Resolver.GetResolverEndpoint"))?;
                out.resolver_endpoint()
                    .and_then(|e| e.arn())
                    .unwrap_or_default()
                    .to_string()
            }
        };
        let tags = match self.resolver_tags(&arn).await {
            Ok(tags) => tags,
            // Already gone: nothing to protect, and the delete will say so too.
            Err(e) if e.is_code("ResourceNotFoundException") => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if self.owner.is_ours(&tags) {
            Ok(())
        } else {
            Err(ApplyError::NotOurs {
                action: format!("{verb} {id}"),
                resource: id.to_string(),
                owner: self.owner.id.clone(),
            })
        }
    }

    // ---- security groups --------------------------------------------------

    async fn create_security_group(
        &self,
        role: &str,
        vpc_id: &str,
        name: &str,
    ) -> Result<String, ApplyError> {
        let tags = self.owner.shared_tags(vpc_id, role);
        let result = self
            .clients
            .ec2
            .create_security_group()
            .group_name(name)
            .description(format!(
                "eks-private-dns {role} Resolver endpoint (owner {})",
                self.owner.id
            ))
            .vpc_id(vpc_id)
            .tag_specifications(ec2_tag_spec(ResourceType::SecurityGroup, &tags))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.group_id().unwrap_or_default().to_string()),
            Err(e) => {
                let e = AwsError::from_sdk("EC2.CreateSecurityGroup", e);
                if !e.is_code("InvalidGroup.Duplicate") {
                    return Err(e.into());
                }
                // A twin made it first, or a crash left it: adopt it if it is ours.
                let out = self
                    .clients
                    .ec2
                    .describe_security_groups()
                    .filters(filter("group-name", [name]))
                    .filters(filter("vpc-id", [vpc_id]))
                    .send()
                    .await
                    .map_err(aws("EC2.DescribeSecurityGroups"))?;
                let group = out.security_groups().first().ok_or(e.clone())?;
                let tags = ec2_tags(group.tags());
                if self.owner.is_ours(&tags) {
                    Ok(group.group_id().unwrap_or_default().to_string())
                } else {
                    Err(ApplyError::Conflict(format!(
                        "VPC {vpc_id} already has a security group named {name} that is not ours \
                         ({}); rename it or set another EKS_PRIVATE_DNS_OWNER",
                        group.group_id().unwrap_or_default()
                    )))
                }
            }
        }
    }

    async fn authorize(
        &self,
        group_id: &str,
        permissions: &[Permission],
        tags: &Tags,
    ) -> Result<Vec<String>, ApplyError> {
        let send = |perms: &[Permission]| {
            self.clients
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(perms.iter().map(ip_permission).collect()))
                .tag_specifications(ec2_tag_spec(ResourceType::SecurityGroupRule, tags))
                .send()
        };
        match send(permissions).await {
            Ok(out) => Ok(out
                .security_group_rules()
                .iter()
                .filter_map(|r| r.security_group_rule_id().map(str::to_string))
                .collect()),
            Err(e) => {
                let e = AwsError::from_sdk("EC2.AuthorizeSecurityGroupIngress", e);
                if !e.is_code("InvalidPermission.Duplicate") {
                    return Err(e.into());
                }
                // One of them exists already (not ours, or a twin's): add the
                // others one by one; an existing one counts as done.
                let mut ids = Vec::new();
                let mut existing = Vec::new();
                for permission in permissions {
                    match send(std::slice::from_ref(permission)).await {
                        Ok(out) => ids.extend(
                            out.security_group_rules()
                                .iter()
                                .filter_map(|r| r.security_group_rule_id().map(str::to_string)),
                        ),
                        Err(e) => {
                            let e = AwsError::from_sdk("EC2.AuthorizeSecurityGroupIngress", e);
                            if !e.is_code("InvalidPermission.Duplicate") {
                                return Err(e.into());
                            }
                            existing.push(permission);
                        }
                    }
                }
                if existing.is_empty() {
                    return Ok(ids);
                }
                // A rule with exactly our tags is ours, made by a concurrent
                // twin or by an earlier attempt whose answer was lost: it
                // counts as made (and is recorded). Any other is foreign.
                let current = observe::security_group_rules(
                    self.clients,
                    vec![filter("group-id", [group_id])],
                )
                .await?;
                for permission in existing {
                    let twin = current.iter().find(|r| {
                        r.admits(permission) && tags.iter().all(|(k, v)| r.tags.get(k) == Some(v))
                    });
                    match twin {
                        Some(rule) => ids.push(rule.id.clone()),
                        None => tracing::info!(group = group_id, permission = %permission,
                            "permission already granted by an existing rule; left as it is"),
                    }
                }
                Ok(ids)
            }
        }
    }

    async fn revoke(&self, group_id: &str, rule_ids: &[String]) -> Result<(), ApplyError> {
        // Ownership, again, right before the change.
        let current =
            observe::security_group_rules(self.clients, vec![filter("group-id", [group_id])])
                .await?;
        let mut ours = Vec::new();
        for id in rule_ids {
            match current.iter().find(|r| &r.id == id) {
                None => {} // already gone
                Some(rule) if self.owner.is_ours(&rule.tags) => ours.push(id.clone()),
                Some(_) => {
                    return Err(ApplyError::NotOurs {
                        action: format!("revoke {id} on {group_id}"),
                        resource: id.clone(),
                        owner: self.owner.id.clone(),
                    })
                }
            }
        }
        if ours.is_empty() {
            return Ok(());
        }
        let result = self
            .clients
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(ours))
            .send()
            .await
            .map_err(aws("EC2.RevokeSecurityGroupIngress"));
        ok_if_gone(result.map(|_| ()))?;
        Ok(())
    }

    /// Delete one of our groups once no network interface uses it. A group
    /// that an endpoint came to use since it was observed is kept (returns
    /// why); one that anything but a Resolver endpoint uses is a conflict.
    async fn delete_security_group(
        &self,
        group_id: &str,
        after_interfaces: bool,
    ) -> Result<Option<String>, ApplyError> {
        let out = self
            .clients
            .ec2
            .describe_security_groups()
            .filters(filter("group-id", [group_id]))
            .send()
            .await
            .map_err(aws("EC2.DescribeSecurityGroups"))?;
        let Some(group) = out.security_groups().first() else {
            return Ok(None);
        };
        if !self.owner.is_ours(&ec2_tags(group.tags())) {
            return Err(ApplyError::NotOurs {
                action: format!("delete security group {group_id}"),
                resource: group_id.to_string(),
                owner: self.owner.id.clone(),
            });
        }
        if after_interfaces {
            if let Some(why) = self.until_group_is_unused(group_id).await? {
                return Ok(Some(why));
            }
        }
        let mut refusals = 0;
        loop {
            let result = self
                .clients
                .ec2
                .delete_security_group()
                .group_id(group_id)
                .send()
                .await
                .map_err(aws("EC2.DeleteSecurityGroup"));
            match result {
                // Network interfaces still use it: an endpoint's stay until
                // its deletion ends (EC2 API reference, DeleteSecurityGroup).
                Err(e) if e.is_code("DependencyViolation") => {
                    refusals += 1;
                    if refusals > REFUSALS {
                        return Err(e.into());
                    }
                    if let Some(why) = self.until_group_is_unused(group_id).await? {
                        return Ok(Some(why));
                    }
                }
                other => {
                    ok_if_gone(other.map(|_| ()))?;
                    return Ok(None);
                }
            }
        }
    }

    // ---- waiting for what an action depends on ------------------------------

    /// Wait until AWS takes an IP change on the endpoint (OPERATIONAL, or
    /// ACTION_NEEDED, which IP changes repair). Returns its direction.
    async fn until_endpoint_takes_changes(
        &self,
        endpoint_id: &str,
    ) -> Result<Direction, ApplyError> {
        let waited = poll(self.clients, "Route53Resolver", &self.patience, || async {
            Ok(
                match observe::get_endpoint(self.clients, endpoint_id).await? {
                    None => Look::Ready(None),
                    Some(e) if e.status.accepts_ip_changes() => Look::Ready(Some(e.direction)),
                    Some(e) => Look::NotYet(format!(
                        "{} endpoint {endpoint_id} is {}",
                        e.direction.as_str().to_lowercase(),
                        e.status
                    )),
                },
            )
        })
        .await?;
        match waited {
            Waited::Ready(Some(direction)) => Ok(direction),
            Waited::Ready(None) => Err(ApplyError::Aws(AwsError {
                operation: "Route53Resolver.GetResolverEndpoint".into(),
                code: Some("ResourceNotFoundException".into()),
                message: format!("endpoint {endpoint_id} is gone; the next run makes a new one"),
                transient: true,
            })),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }

    /// One IP change, waiting and trying again while AWS refuses it because
    /// the endpoint is in the middle of another change.
    async fn change_endpoint_ip<F, Fut, T, E, R>(
        &self,
        endpoint_id: &str,
        send: F,
        operation: &'static str,
    ) -> Result<(), ApplyError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
            Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
        >,
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug,
    {
        let mut refusals = 0;
        loop {
            match send().await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = AwsError::from_sdk(operation, e);
                    let busy = e.is_code("InvalidRequestException")
                        && (e.message_contains("UPDATING")
                            || e.message_contains("CREATING")
                            || e.message_contains("RSLVR-00506"));
                    refusals += 1;
                    if !busy || refusals > REFUSALS {
                        return Err(e.into());
                    }
                    self.until_endpoint_takes_changes(endpoint_id).await?;
                }
            }
        }
    }

    /// Wait until no VPC is associated with the rule (DELETING ones too).
    async fn until_rule_is_unassociated(&self, rule_id: &str) -> Result<(), ApplyError> {
        let waited = poll(self.clients, "Route53Resolver", &self.patience, || async {
            let left = observe::associations_of_rule(self.clients, rule_id).await?;
            Ok(if left.is_empty() {
                Look::Ready(())
            } else {
                Look::NotYet(format!(
                    "rule {rule_id} is still associated with {}",
                    left.iter()
                        .map(|a| format!("{} ({})", a.vpc_id, a.status))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .await?;
        match waited {
            Waited::Ready(()) => Ok(()),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }

    /// Wait until no rule uses the endpoint (RSLVR-00600 names DELETING
    /// ones too). A rule that is not being deleted came to use it since it
    /// was observed (a concurrent reconcile of another cluster): the
    /// endpoint is kept, and this returns why.
    async fn until_endpoint_is_unused(
        &self,
        endpoint_id: &str,
    ) -> Result<Option<String>, ApplyError> {
        let waited = poll(self.clients, "Route53Resolver", &self.patience, || async {
            let rules = observe::rules_of_endpoint(self.clients, endpoint_id).await?;
            if let Some(live) = rules.iter().find(|r| !r.status.is_going_away()) {
                return Ok(Look::Ready(Some(format!(
                    "endpoint {endpoint_id} is kept: rule {} ({}) uses it",
                    live.id, live.domain
                ))));
            }
            Ok(if rules.is_empty() {
                Look::Ready(None)
            } else {
                Look::NotYet(format!(
                    "endpoint {endpoint_id} waits for rule(s) {} to finish DELETING",
                    rules
                        .iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .await?;
        match waited {
            Waited::Ready(kept) => Ok(kept),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }

    /// Wait until no network interface uses the group. The interfaces of a
    /// deleted endpoint stay until its deletion ends; those of an endpoint
    /// that is not being deleted mean it came into use (kept, returns why);
    /// any other interface is someone else's use of our group (a conflict).
    async fn until_group_is_unused(&self, group_id: &str) -> Result<Option<String>, ApplyError> {
        let waited = poll(self.clients, "EC2", &self.patience, || async {
            let interfaces = observe::interfaces_using_group(self.clients, group_id).await?;
            if interfaces.is_empty() {
                return Ok(Look::Ready(Ok(None)));
            }
            let mut endpoints = BTreeSet::new();
            for (eni, description) in &interfaces {
                match resolver_endpoint_of_interface(description) {
                    Some(endpoint) => {
                        endpoints.insert(endpoint.to_string());
                    }
                    None => {
                        return Ok(Look::Ready(Err(format!(
                            "security group {group_id} is used by network interface {eni} \
                             ({description}), which is not a Resolver endpoint's: detach it \
                             from the group, and the next run deletes the group"
                        ))))
                    }
                }
            }
            for endpoint in &endpoints {
                if let Some(e) = observe::get_endpoint(self.clients, endpoint).await? {
                    if !e.is_going_away() {
                        return Ok(Look::Ready(Ok(Some(format!(
                            "security group {group_id} is kept: endpoint {endpoint} ({}) uses it",
                            e.status
                        )))));
                    }
                }
            }
            Ok(Look::NotYet(format!(
                "security group {group_id} waits for the network interfaces of endpoint(s) {} \
                 to go",
                endpoints.into_iter().collect::<Vec<_>>().join(", ")
            )))
        })
        .await?;
        match waited {
            Waited::Ready(Ok(kept)) => Ok(kept),
            Waited::Ready(Err(conflict)) => Err(ApplyError::Conflict(conflict)),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }

    // ---- Resolver ---------------------------------------------------------

    async fn create_endpoint(
        &self,
        direction: Direction,
        vpc_id: &str,
        group_id: &str,
        subnet_ids: &[String],
    ) -> Result<String, ApplyError> {
        let role = direction_key(direction);
        let tags = self.owner.shared_tags(vpc_id, role);
        for generation in 1..=MAX_GENERATIONS {
            let creator_id = match direction {
                Direction::Inbound => self.owner.inbound_creator_id(vpc_id, generation),
                Direction::Outbound => self.owner.outbound_creator_id(vpc_id, generation),
            };
            let result = self
                .clients
                .resolver
                .create_resolver_endpoint()
                .creator_request_id(&creator_id)
                .name(resolver_name(&format!("eks-private-dns-{role}-{vpc_id}")))
                .security_group_ids(group_id)
                .direction(match direction {
                    Direction::Inbound => ResolverEndpointDirection::Inbound,
                    Direction::Outbound => ResolverEndpointDirection::Outbound,
                })
                .resolver_endpoint_type(ResolverEndpointType::Ipv4)
                .set_ip_addresses(Some(
                    subnet_ids
                        .iter()
                        .map(|s| {
                            IpAddressRequest::builder()
                                .subnet_id(s)
                                .build()
                                .expect("subnet is set")
                        })
                        .collect(),
                ))
                .set_tags(Some(resolver_tags(&tags)))
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(out
                        .resolver_endpoint()
                        .and_then(|e| e.id())
                        .unwrap_or_default()
                        .to_string())
                }
                Err(e) => {
                    let e = AwsError::from_sdk("Route53Resolver.CreateResolverEndpoint", e);
                    if e.is_code("LimitExceededException") {
                        return Err(ApplyError::Conflict(format!(
                            "cannot create the {role} Resolver endpoint in {vpc_id}: the account's \
                             endpoint quota for this region is reached (4 by default; each cluster \
                             VPC needs one inbound endpoint, the region one outbound). Request a \
                             quota increase, or use EKS_PRIVATE_DNS_OUTBOUND_ENDPOINT_ID ({})",
                            e.message
                        )));
                    }
                    if !e.is_code("ResourceExistsException") {
                        return Err(e.into());
                    }
                    let existing = observe::list_endpoints(self.clients).await?;
                    if let Some(found) = existing
                        .iter()
                        .find(|x| x.creator_request_id == creator_id && !x.is_going_away())
                    {
                        return Ok(found.id.clone());
                    }
                    // AWS still remembers a deleted endpoint under this id.
                }
            }
        }
        Err(ApplyError::Conflict(format!(
            "could not create the {role} endpoint in {vpc_id}: all {MAX_GENERATIONS} request ids \
             are taken"
        )))
    }

    async fn create_rule(
        &self,
        cluster: &str,
        cluster_arn: &str,
        domain: &str,
        targets: &[TargetAddress],
        endpoint_id: &str,
    ) -> Result<String, ApplyError> {
        let tags = self.owner.cluster_tags(cluster_arn);
        for generation in 1..=MAX_GENERATIONS {
            let creator_id = self.owner.rule_creator_id(cluster, domain, generation);
            let result = self
                .clients
                .resolver
                .create_resolver_rule()
                .creator_request_id(&creator_id)
                .name(resolver_name(&format!("eks-private-dns-{cluster}")))
                .rule_type(RuleTypeOption::Forward)
                .domain_name(domain)
                .set_target_ips(Some(sdk_targets(targets)))
                .resolver_endpoint_id(endpoint_id)
                .set_tags(Some(resolver_tags(&tags)))
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(out
                        .resolver_rule()
                        .and_then(|r| r.id())
                        .unwrap_or_default()
                        .to_string())
                }
                Err(e) => {
                    let e = AwsError::from_sdk("Route53Resolver.CreateResolverRule", e);
                    if !e.is_code("ResourceExistsException") {
                        return Err(e.into());
                    }
                    let existing = observe::list_rules(self.clients).await?;
                    if let Some(found) = existing
                        .iter()
                        .find(|x| x.creator_request_id == creator_id && !x.status.is_going_away())
                    {
                        return Ok(found.id.clone());
                    }
                }
            }
        }
        Err(ApplyError::Conflict(format!(
            "could not create the rule for {domain}: all {MAX_GENERATIONS} request ids are taken"
        )))
    }

    async fn associate(
        &self,
        rule_id: &str,
        vpc_id: &str,
        cluster: &str,
    ) -> Result<(), ApplyError> {
        let mut refusals = 0;
        loop {
            let result = self
                .clients
                .resolver
                .associate_resolver_rule()
                .resolver_rule_id(rule_id)
                .vpc_id(vpc_id)
                .name(resolver_name(&format!("eks-private-dns-{cluster}")))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(()),
                Err(e) => AwsError::from_sdk("Route53Resolver.AssociateResolverRule", e),
            };
            let maybe_exists = e.is_code("ResourceExistsException")
                || (e.is_code("InvalidRequestException")
                    && (e.message_contains("RSLVR-00802")
                        || e.message_contains("same domain name")));
            if !maybe_exists {
                return Err(e.into());
            }
            // A retry after a lost response, or a twin: done if it is our
            // rule that is associated. An association of the VPC that is
            // going away (ours, disassociated a moment ago) is waited for.
            // Any other is another rule for the name: a conflict.
            let associations = observe::list_associations(self.clients).await?;
            let in_vpc: Vec<_> = associations.iter().filter(|a| a.vpc_id == vpc_id).collect();
            if in_vpc
                .iter()
                .any(|a| a.rule_id == rule_id && !a.is_going_away())
            {
                return Ok(());
            }
            let leaving: Vec<String> = in_vpc
                .iter()
                .filter(|a| a.status.is_going_away())
                .map(|a| a.rule_id.clone())
                .collect();
            refusals += 1;
            if leaving.is_empty() || refusals > REFUSALS {
                return Err(ApplyError::Conflict(format!(
                    "VPC {vpc_id} already has another Resolver rule for this cluster's endpoint \
                     name ({}); remove that association or take the VPC out of the client list",
                    e.message
                )));
            }
            let waited = poll(self.clients, "Route53Resolver", &self.patience, || async {
                let now = observe::list_associations(self.clients).await?;
                let still = now
                    .iter()
                    .any(|a| a.vpc_id == vpc_id && leaving.contains(&a.rule_id));
                Ok(if still {
                    Look::NotYet(format!(
                        "the association of rule {} with {vpc_id} is going away",
                        leaving.join(", ")
                    ))
                } else {
                    Look::Ready(())
                })
            })
            .await?;
            if let Waited::StillInProgress(what) = waited {
                return Err(ApplyError::InProgress(what));
            }
        }
    }

    // ---- SSM ----------------------------------------------------------------

    async fn parameter_owned(&self, name: &str) -> Result<Option<bool>, AwsError> {
        let out = self
            .clients
            .ssm
            .list_tags_for_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .send()
            .await;
        match out {
            Ok(out) => {
                let tags: Tags = out
                    .tag_list()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                Ok(Some(self.owner.is_ours(&tags)))
            }
            Err(e) => {
                let e = AwsError::from_sdk("SSM.ListTagsForResource", e);
                if e.is_code("InvalidResourceId") || e.is_code("ParameterNotFound") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn publish(
        &self,
        publication: &Publication,
        resolved: &Resolved,
    ) -> Result<(), ApplyError> {
        let mut p = publication.clone();
        if let Some(id) = resolved.endpoints.get("inbound") {
            p.inbound_endpoint_id = Some(id.clone());
        }
        if p.inbound_ips.is_none() {
            p.inbound_ips = resolved.inbound_ips.clone();
        }
        if let Some(id) = resolved.endpoints.get("outbound") {
            p.outbound_endpoint_id = Some(id.clone());
        }
        if let Some(id) = &resolved.rule_id {
            p.rule_id = Some(id.clone());
        }
        p.control_plane_rule_ids
            .extend(resolved.api_rule_ids.iter().cloned());
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let Some(rendered) = p.render(Some(&now)) else {
            return Err(missing("the values of the parameters"));
        };
        let tags = self.owner.parameter_tags(&p.cluster_arn, &p.vpc_id);
        for (name, value, kind) in rendered.changed(&p.current) {
            let kind = if *kind == "StringList" {
                ParameterType::StringList
            } else {
                ParameterType::String
            };
            self.put_parameter(name, value, kind, &tags, p.current.contains_key(name))
                .await?;
        }
        let obsolete: Vec<String> = rendered
            .obsolete
            .iter()
            .filter(|n| p.current.contains_key(*n))
            .cloned()
            .collect();
        if !obsolete.is_empty() {
            self.delete_parameters(&obsolete).await?;
        }
        Ok(())
    }

    /// Create `name` with `tags`, or overwrite it when it carries our
    /// owner tag (a parameter someone else made is never overwritten).
    pub async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        kind: ParameterType,
        tags: &Tags,
        exists: bool,
    ) -> Result<(), ApplyError> {
        if !exists {
            let result = self
                .clients
                .ssm
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(kind.clone())
                .set_tags(Some(ssm_tags(tags)))
                // Said, not implied: the role may create a parameter only
                // with Overwrite false and our tag, and overwrite only one
                // that carries it (ssm:Overwrite in the template).
                .overwrite(false)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = AwsError::from_sdk("SSM.PutParameter", e);
                    if !e.is_code("ParameterAlreadyExists") {
                        return Err(e.into());
                    }
                }
            }
        }
        if self.parameter_owned(name).await? == Some(false) {
            return Err(ApplyError::NotOurs {
                action: format!("overwrite parameter {name}"),
                resource: name.to_string(),
                owner: self.owner.id.clone(),
            });
        }
        self.clients
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .map_err(aws("SSM.PutParameter"))?;
        Ok(())
    }

    /// Delete those of `names` that carry our owner tag. Someone else's
    /// parameter under the prefix is left as it is: removing what is ours
    /// is done without it.
    async fn delete_parameters(&self, names: &[String]) -> Result<(), ApplyError> {
        let mut ours = Vec::new();
        for name in names {
            match self.parameter_owned(name).await? {
                Some(true) => ours.push(name.clone()),
                None => {}
                Some(false) => tracing::warn!(
                    parameter = %name,
                    "leaving a parameter under the prefix that does not carry our owner tag"
                ),
            }
        }
        for chunk in ours.chunks(10) {
            self.clients
                .ssm
                .delete_parameters()
                .set_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(aws("SSM.DeleteParameters"))?;
        }
        Ok(())
    }
}

fn missing(what: &str) -> ApplyError {
    ApplyError::Aws(AwsError {
        operation: "apply".into(),
        code: Some("Incomplete".into()),
        message: format!("{what} is not known yet; a later run finishes"),
        transient: true,
    })
}

fn group_id(group: &GroupRef, resolved: &Resolved) -> Result<String, ApplyError> {
    match group {
        GroupRef::Existing(id) => Ok(id.clone()),
        GroupRef::New(role) => resolved
            .groups
            .get(role)
            .cloned()
            .ok_or_else(|| missing(&format!("the new {role} security group"))),
    }
}

fn endpoint_id(endpoint: &EndpointRef, resolved: &Resolved) -> Result<String, ApplyError> {
    match endpoint {
        EndpointRef::Existing(id) => Ok(id.clone()),
        EndpointRef::New(d) => resolved
            .endpoints
            .get(direction_key(*d))
            .cloned()
            .ok_or_else(|| missing(&format!("the new {} endpoint", direction_key(*d)))),
    }
}

fn targets_of(targets: &Targets, resolved: &Resolved) -> Result<Vec<TargetAddress>, ApplyError> {
    match targets {
        Targets::Known(t) => Ok(t.clone()),
        Targets::InboundEndpointIps => {
            let ips = resolved
                .inbound_ips
                .clone()
                .ok_or_else(|| missing("the inbound endpoint's addresses"))?;
            Ok(ips
                .into_iter()
                .map(|ip| TargetAddress { ip, port: DNS_PORT })
                .collect())
        }
    }
}

/// "Not found" on a delete means it is already done.
fn ok_if_gone(result: Result<(), AwsError>) -> Result<(), AwsError> {
    match result {
        Err(e) if is_gone(&e) => Ok(()),
        other => other,
    }
}

fn is_gone(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(
            "ResourceNotFoundException"
                | "InvalidPermission.NotFound"
                | "InvalidSecurityGroupRuleId.NotFound"
                | "InvalidGroup.NotFound"
                | "ParameterNotFound"
        )
    )
}

/// "Route 53 Resolver: rslvr-in-0123:rni-4567" (the description Resolver
/// gives an endpoint's network interfaces) -> "rslvr-in-0123".
fn resolver_endpoint_of_interface(description: &str) -> Option<&str> {
    let rest = description.strip_prefix("Route 53 Resolver: ")?;
    let endpoint = rest.split(':').next()?;
    endpoint.starts_with("rslvr-").then_some(endpoint)
}

fn sdk_targets(targets: &[TargetAddress]) -> Vec<aws_sdk_route53resolver::types::TargetAddress> {
    targets
        .iter()
        .map(|t| {
            let b = aws_sdk_route53resolver::types::TargetAddress::builder().port(t.port);
            if t.ip.contains(':') {
                b.ipv6(&t.ip).build()
            } else {
                b.ip(&t.ip).build()
            }
        })
        .collect()
}

fn resolver_tags(tags: &Tags) -> Vec<aws_sdk_route53resolver::types::Tag> {
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

fn ssm_tags(tags: &Tags) -> Vec<aws_sdk_ssm::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_ssm::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

fn ec2_tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn ip_permission(p: &Permission) -> IpPermission {
    let description = match p.port {
        DNS_PORT => "eks-private-dns: DNS to the inbound Resolver endpoint",
        _ => "eks-private-dns: Kubernetes API from a client network",
    };
    let b = IpPermission::builder()
        .ip_protocol(p.protocol.as_str())
        .from_port(p.port)
        .to_port(p.port);
    match p.cidr {
        ipnet::IpNet::V4(_) => b
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip(p.cidr.to_string())
                    .description(description)
                    .build(),
            )
            .build(),
        ipnet::IpNet::V6(_) => b
            .ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(p.cidr.to_string())
                    .description(description)
                    .build(),
            )
            .build(),
    }
}
