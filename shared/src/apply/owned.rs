//! Ownership, checked again right before anything of ours is changed or deleted.

use aws_sdk_ssm::types::ResourceTypeForTagging;

use crate::aws::{aws, AwsError};
use crate::model::Tags;

use super::*;

impl Applier<'_> {
    /// A Resolver resource's tags, read in the account that owns it: a
    /// consumer of a shared rule does not see its tags, which its owner
    /// (the deployment) does.
    pub(super) async fn resolver_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let here = match (&self.clients.account, super::share::arn_account(arn)) {
            (Account::Id(here), Some(owner)) if here != owner => self.accounts.home(),
            _ => &self.clients,
        };
        let mut tags = Tags::new();
        let mut next: Option<String> = None;
        loop {
            let out = here
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
    pub(super) async fn ensure_resolver_owned(
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
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.ensure_ours(&tags, format!("{verb} {id}"), id)
    }

    /// The one test before a write to something that exists: `tags` carry
    /// our owner marker, or the write is refused and the run fails so that
    /// someone looks.
    pub(super) fn ensure_ours(
        &self,
        tags: &Tags,
        action: String,
        resource: &str,
    ) -> Result<(), ApplyError> {
        if self.owner.is_ours(tags) {
            Ok(())
        } else {
            Err(ApplyError::NotOurs {
                action,
                resource: resource.to_string(),
                owner: self.owner.id.clone(),
            })
        }
    }

    /// A parameter's tags, or None when there is no such parameter.
    pub(super) async fn parameter_tags(&self, name: &str) -> Result<Option<Tags>, AwsError> {
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
                Ok(Some(tags))
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
}
