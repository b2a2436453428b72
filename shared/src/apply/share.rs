//! Sharing the deployment's rules with the accounts whose VPCs use them:
//! one AWS RAM resource share per owner and region, in the deployment's
//! account, and in a consuming account the share's invitation accepted
//! where RAM sends one (an account outside the Organization, or sharing
//! with the Organization not enabled).
//!
//! The share is made with `allowExternalPrincipals` false, which keeps it
//! inside the Organization; when RAM refuses an account as outside it, the
//! share is opened to external accounts (a warning names the account) and
//! that account gets an invitation, which its role accepts.

use aws_sdk_ram::types::{ResourceOwner, ResourceShareStatus, TagFilter};

use crate::aws::{aws, AwsError};

use super::*;

/// The deployment's share, as RAM lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub arn: String,
    pub allows_external: bool,
}

impl Applier<'_> {
    /// The deployment's share in this account (ours by name and owner
    /// tag), if there is one.
    pub async fn our_share(&self) -> Result<Option<Share>, AwsError> {
        let mut pages = self
            .clients
            .ram()
            .get_resource_shares()
            .resource_owner(ResourceOwner::SelfValue)
            .name(self.owner.share_name())
            .resource_share_status(ResourceShareStatus::Active)
            .tag_filters(
                TagFilter::builder()
                    .tag_key(TAG_OWNER)
                    .tag_values(&self.owner.id)
                    .build(),
            )
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("RAM.GetResourceShares"))?;
            found.extend(page.resource_shares().iter().filter_map(|s| {
                let active = s.status() == Some(&ResourceShareStatus::Active);
                let ours = s
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(TAG_OWNER) && t.value() == Some(&self.owner.id));
                (active && ours).then(|| Share {
                    arn: s.resource_share_arn().unwrap_or_default().to_string(),
                    allows_external: s.allow_external_principals().unwrap_or(false),
                })
            }));
        }
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(found.into_iter().next())
    }

    /// The deployment's share and the accounts it is shared with, when
    /// there is one (what the sweep's last step looks at).
    pub async fn share_view(&self) -> Result<Option<crate::plan::ShareView>, AwsError> {
        let Some(share) = self.our_share().await? else {
            return Ok(None);
        };
        let mut pages = self
            .clients
            .ram()
            .get_resource_share_associations()
            .association_type(aws_sdk_ram::types::ResourceShareAssociationType::Principal)
            .resource_share_arns(&share.arn)
            .into_paginator()
            .send();
        let mut principals = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("RAM.GetResourceShareAssociations"))?;
            principals.extend(
                page.resource_share_associations()
                    .iter()
                    .filter(|a| {
                        a.status().map(|s| s.as_str()) == Some("ASSOCIATED")
                            || a.status().map(|s| s.as_str()) == Some("ASSOCIATING")
                    })
                    .filter_map(|a| a.associated_entity().map(str::to_string)),
            );
        }
        principals.sort();
        principals.dedup();
        Ok(Some(crate::plan::ShareView {
            arn: share.arn,
            principals,
        }))
    }

    /// The share, made when missing: with the same client token for every
    /// run, so that two runs making it at once make one, and with nothing
    /// in it (what goes in is associated after, by whichever run).
    async fn share(&self) -> Result<Share, ApplyError> {
        if let Some(share) = self.our_share().await? {
            return Ok(share);
        }
        let out = self
            .clients
            .ram()
            .create_resource_share()
            .name(self.owner.share_name())
            .allow_external_principals(false)
            .client_token(self.owner.share_client_token())
            .tags(
                aws_sdk_ram::types::Tag::builder()
                    .key(TAG_OWNER)
                    .value(&self.owner.id)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("RAM.CreateResourceShare"))?;
        let made = out
            .resource_share()
            .ok_or_else(|| missing("the share RAM made"))?;
        Ok(Share {
            arn: made.resource_share_arn().unwrap_or_default().to_string(),
            allows_external: made.allow_external_principals().unwrap_or(false),
        })
    }

    /// Share the rule `rule_arn` with `principals` (accounts).
    pub(super) async fn share_rule(
        &self,
        rule_arn: &str,
        principals: &[String],
    ) -> Result<Effect, ApplyError> {
        let share = self.share().await?;
        let associate = || async {
            self.clients
                .ram()
                .associate_resource_share()
                .resource_share_arn(&share.arn)
                .resource_arns(rule_arn)
                .set_principals(Some(principals.to_vec()))
                .send()
                .await
                .map_err(aws("RAM.AssociateResourceShare"))
        };
        match associate().await {
            Ok(_) => Ok(Effect::None),
            Err(e) if e.is_code("OperationNotPermittedException") && !share.allows_external => {
                tracing::warn!(share = %share.arn, accounts = ?principals, reason = %e.message,
                    "RAM refuses an account as outside the Organization: the share is opened to \
                     accounts outside it, which accept an invitation");
                self.clients
                    .ram()
                    .update_resource_share()
                    .resource_share_arn(&share.arn)
                    .allow_external_principals(true)
                    .send()
                    .await
                    .map_err(aws("RAM.UpdateResourceShare"))?;
                associate().await?;
                Ok(Effect::None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Take the rule `rule_arn` out of the share (before it is deleted).
    pub(super) async fn unshare_rule(&self, rule_arn: &str) -> Result<(), ApplyError> {
        let Some(share) = self.our_share().await? else {
            return Ok(());
        };
        let result = self
            .clients
            .ram()
            .disassociate_resource_share()
            .resource_share_arn(&share.arn)
            .resource_arns(rule_arn)
            .send()
            .await
            .map_err(aws("RAM.DisassociateResourceShare"));
        done_if_gone(result.map(|_| ())).map(|_| ())
    }

    /// Take `principals` out of the share `share_arn` (checked ours first).
    pub(super) async fn unshare_with(
        &self,
        share_arn: &str,
        principals: &[String],
    ) -> Result<Effect, ApplyError> {
        if !self.ensure_share_owned(share_arn, "stop sharing").await? {
            return Ok(Effect::None);
        }
        let result = self
            .clients
            .ram()
            .disassociate_resource_share()
            .resource_share_arn(share_arn)
            .set_principals(Some(principals.to_vec()))
            .send()
            .await
            .map_err(aws("RAM.DisassociateResourceShare"));
        done_if_gone(result.map(|_| ()))
    }

    /// Delete the share `share_arn` (checked ours first).
    pub(super) async fn delete_share(&self, share_arn: &str) -> Result<Effect, ApplyError> {
        if !self.ensure_share_owned(share_arn, "delete").await? {
            return Ok(Effect::None);
        }
        let result = self
            .clients
            .ram()
            .delete_resource_share()
            .resource_share_arn(share_arn)
            .send()
            .await
            .map_err(aws("RAM.DeleteResourceShare"));
        done_if_gone(result.map(|_| ()))
    }

    /// Whether the share `share_arn` is the deployment's (ours by name and
    /// tag): false when ours is gone (nothing left to do), an error when it
    /// is another.
    async fn ensure_share_owned(&self, share_arn: &str, verb: &str) -> Result<bool, ApplyError> {
        match self.our_share().await? {
            Some(share) if share.arn == share_arn => Ok(true),
            None => Ok(false),
            Some(_) => Err(ApplyError::NotOurs {
                action: format!("{verb} {share_arn}"),
                resource: share_arn.to_string(),
                owner: self.owner.id.clone(),
            }),
        }
    }

    /// In a consuming account: accept the pending invitations of the
    /// deployment's share, sent by `owner_account` (the rule's owner).
    /// Whether there was one.
    pub(super) async fn accept_invitations(&self, owner_account: &str) -> Result<bool, ApplyError> {
        let out = self
            .clients
            .ram()
            .get_resource_share_invitations()
            .send()
            .await
            .map_err(aws("RAM.GetResourceShareInvitations"))?;
        let share_name = self.owner.share_name();
        let pending: Vec<String> = out
            .resource_share_invitations()
            .iter()
            .filter(|i| {
                i.sender_account_id() == Some(owner_account)
                    && i.resource_share_name() == Some(share_name.as_str())
                    && i.status().map(|s| s.as_str()) == Some("PENDING")
            })
            .filter_map(|i| i.resource_share_invitation_arn().map(str::to_string))
            .collect();
        for arn in &pending {
            let accepted = self
                .clients
                .ram()
                .accept_resource_share_invitation()
                .resource_share_invitation_arn(arn)
                .send()
                .await
                .map_err(aws("RAM.AcceptResourceShareInvitation"));
            match accepted {
                Ok(_) => {}
                // Accepted meanwhile (a twin), or expired: the association
                // that follows says which.
                Err(e) if e.is_code("ResourceShareInvitationAlreadyAcceptedException") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(!pending.is_empty())
    }
}

/// A share (or what it holds) already gone is done.
fn done_if_gone(result: Result<(), AwsError>) -> Result<Effect, ApplyError> {
    ok_if_gone(result)?;
    Ok(Effect::None)
}

/// The account in a resource ARN ("arn:aws:service:region:ACCOUNT:...").
pub(super) fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| crate::config::is_account_id(a))
}
