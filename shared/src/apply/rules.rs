//! Forward rules and their associations: create or adopt, update, associate, delete.

use aws_sdk_route53resolver::types::{ResolverRuleConfig, RuleTypeOption};

use crate::aws::{aws, AwsError};
use crate::model::TargetAddress;
use crate::observe::{self};
use crate::owner::{resolver_name, MAX_GENERATIONS};
use crate::plan::{EndpointRef, Targets};
use crate::progress::Wait;
use crate::wait::{poll, Look, Waited};

use super::*;

impl Applier<'_> {
    /// Carry out one rule action.
    pub(super) async fn run_rules(
        &self,
        action: &Action,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        match action {
            Action::CreateRule {
                cluster,
                cluster_arn,
                domain,
                targets,
                endpoint,
                ..
            } => {
                let targets = targets_of(targets, resolved)?;
                let endpoint_id = endpoint_id(endpoint, resolved)?;
                let (id, arn) = self
                    .create_rule(cluster, cluster_arn, domain, &targets, &endpoint_id)
                    .await?;
                Ok(Effect::RuleCreated(id, arn))
            }
            Action::UpdateRule {
                rule_id,
                rule_arn,
                targets,
                endpoint,
                ..
            } => {
                self.update_rule(rule_id, rule_arn, targets, endpoint, resolved)
                    .await
            }
            Action::ShareRule {
                rule,
                rule_arn,
                principals,
                ..
            } => {
                let arn = match (rule, rule_arn) {
                    (RuleRef::Existing(_), Some(arn)) => arn.clone(),
                    _ => resolved
                        .rule_arn
                        .clone()
                        .ok_or_else(|| missing("the new rule"))?,
                };
                self.share_rule(&arn, principals).await
            }
            Action::AssociateRule {
                rule,
                rule_arn,
                vpc_id,
                cluster,
                ..
            } => {
                let (rule_id, arn) = match rule {
                    RuleRef::Existing(id) => (id.clone(), rule_arn.clone()),
                    RuleRef::New => (
                        resolved
                            .rule_id
                            .clone()
                            .ok_or_else(|| missing("the new rule"))?,
                        resolved.rule_arn.clone(),
                    ),
                };
                self.associate_shared(&rule_id, arn.as_deref(), vpc_id, cluster)
                    .await?;
                Ok(Effect::Associated(rule_id, vpc_id.clone()))
            }
            Action::DisassociateRule {
                rule_id,
                rule_arn,
                vpc_id,
                ..
            } => self.disassociate(rule_id, rule_arn, vpc_id).await,
            Action::DeleteRule {
                rule_id,
                rule_arn,
                after_associations,
                shared,
                ..
            } => {
                if *shared {
                    self.unshare_rule(rule_arn).await?;
                }
                self.delete_rule(rule_id, rule_arn, after_associations)
                    .await
            }
            other => unreachable!("{} is not a rule action", other.describe()),
        }
    }

    /// Wait until no VPC is associated with the rule (DELETING ones too).
    pub(super) async fn until_rule_is_unassociated(&self, rule_id: &str) -> Result<(), ApplyError> {
        let waited = poll(&self.clients, "Route53Resolver", &self.patience, || async {
            let left = observe::associations_of_rule(&self.clients, rule_id).await?;
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

    pub(super) async fn create_rule(
        &self,
        cluster: &str,
        cluster_arn: &str,
        domain: &str,
        targets: &[TargetAddress],
        endpoint_id: &str,
    ) -> Result<(String, String), ApplyError> {
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
                    let rule = out.resolver_rule();
                    return Ok((
                        rule.and_then(|r| r.id()).unwrap_or_default().to_string(),
                        rule.and_then(|r| r.arn()).unwrap_or_default().to_string(),
                    ));
                }
                Err(e) => {
                    let e = AwsError::from_sdk("Route53Resolver.CreateResolverRule", e);
                    if !e.is_code("ResourceExistsException") {
                        return Err(e.into());
                    }
                    let existing = observe::list_rules(&self.clients).await?;
                    if let Some(found) = existing
                        .iter()
                        .find(|x| x.creator_request_id == creator_id && !x.status.is_going_away())
                    {
                        self.clients.counter.add_lost_race();
                        return Ok((found.id.clone(), found.arn.clone()));
                    }
                }
            }
        }
        Err(ApplyError::conflict(
            format!("the rule for {domain}"),
            format!(
                "could not create the rule for {domain}: all {MAX_GENERATIONS} request ids are \
                 taken"
            ),
        ))
    }

    /// Associate a rule with a VPC of this applier's account. A rule of
    /// another account (`rule_arn` names its owner) that is not found here
    /// yet is shared by an invitation not accepted yet: the invitation is
    /// accepted, and the association made again; a share RAM has not
    /// delivered yet is for a later run.
    async fn associate_shared(
        &self,
        rule_id: &str,
        rule_arn: Option<&str>,
        vpc_id: &str,
        cluster: &str,
    ) -> Result<(), ApplyError> {
        let owner_account = rule_arn.and_then(super::share::arn_account);
        let theirs = match (&self.clients.account, owner_account) {
            (Account::Id(here), Some(owner)) => here != owner,
            _ => false,
        };
        match self.associate(rule_id, vpc_id, cluster).await {
            Err(ApplyError::Aws(e)) if theirs && e.is_not_found() => {
                let owner = owner_account.unwrap_or_default();
                if !self.accept_invitations(owner).await? {
                    return Err(ApplyError::NotYet {
                        what: format!("rule {rule_id}, shared by account {owner}, in this account"),
                    });
                }
                match self.associate(rule_id, vpc_id, cluster).await {
                    Err(ApplyError::Aws(e)) if e.is_not_found() => Err(ApplyError::NotYet {
                        what: format!(
                            "rule {rule_id}, whose share this account accepted, in this account"
                        ),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    pub(super) async fn associate(
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
            let associations = observe::list_associations(&self.clients).await?;
            let in_vpc: Vec<_> = associations.iter().filter(|a| a.vpc_id == vpc_id).collect();
            if in_vpc
                .iter()
                .any(|a| a.rule_id == rule_id && !a.is_going_away())
            {
                self.clients.counter.add_lost_race();
                return Ok(());
            }
            let leaving: Vec<String> = in_vpc
                .iter()
                .filter(|a| a.status.is_going_away())
                .map(|a| a.rule_id.clone())
                .collect();
            refusals += 1;
            if leaving.is_empty() || refusals > REFUSALS {
                return Err(ApplyError::conflict(
                    vpc_id,
                    format!(
                        "VPC {vpc_id} already has another Resolver rule for this cluster's \
                         endpoint name ({}); remove that association or take the VPC out of the \
                         client list",
                        e.message
                    ),
                ));
            }
            let waited = poll(&self.clients, "Route53Resolver", &self.patience, || async {
                let now = observe::list_associations(&self.clients).await?;
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

    pub(super) async fn update_rule(
        &self,
        rule_id: &String,
        rule_arn: &String,
        targets: &Targets,
        endpoint: &EndpointRef,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
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

    pub(super) async fn disassociate(
        &self,
        rule_id: &String,
        rule_arn: &String,
        vpc_id: &String,
    ) -> Result<Effect, ApplyError> {
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
            account: self.clients.account.clone(),
            rule_id: rule_id.clone(),
            vpc_id: vpc_id.clone(),
        }))
    }

    /// Delete a rule once its associations are gone.
    pub(super) async fn delete_rule(
        &self,
        rule_id: &String,
        rule_arn: &String,
        after_associations: &bool,
    ) -> Result<Effect, ApplyError> {
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
            account: self.clients.account.clone(),
            rule_id: rule_id.clone(),
        }))
    }
}

pub(super) fn sdk_targets(
    targets: &[TargetAddress],
) -> Vec<aws_sdk_route53resolver::types::TargetAddress> {
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
