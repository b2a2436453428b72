//! The SSM record: publish (create-only or overwrite of our own), delete.

use aws_sdk_ssm::types::ParameterType;

use crate::aws::{aws, AwsError};
use crate::model::{Direction, Tags};
use crate::plan::Publication;
use crate::ssm::{ForwardersChanged, EVENT_DETAIL_TYPE, EVENT_SOURCE};

use super::*;

impl Applier<'_> {
    /// Carry out one parameter action.
    pub(super) async fn run_parameters(
        &self,
        action: &Action,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        match action {
            Action::PublishParameters(publication) => {
                self.publish(publication, resolved).await?;
                Ok(Effect::None)
            }
            Action::DeleteParameters { names, announce } => {
                // Said before the record goes: a crash between the two
                // says it again on the next run (at least once, the same
                // revision), never not at all.
                if let Some(event) = announce {
                    self.announce(event).await?;
                }
                self.delete_parameters(names).await?;
                Ok(Effect::None)
            }
            other => unreachable!("{} is not a parameter action", other.describe()),
        }
    }

    pub(super) async fn publish(
        &self,
        publication: &Publication,
        resolved: &Resolved,
    ) -> Result<(), ApplyError> {
        let mut p = publication.clone();
        if let Some(id) = resolved.endpoints.get(&Direction::Inbound) {
            p.inbound_endpoint_id = Some(id.clone());
        }
        if p.inbound_ips.is_none() {
            p.inbound_ips = resolved.inbound_ips.clone();
            p.inbound_ipv6 = resolved.inbound_ipv6.clone();
        }
        if let Some(id) = resolved.endpoints.get(&Direction::Outbound) {
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
        let Some(mut rendered) = p.render(Some(&now)) else {
            if p.awaits_ipv6() {
                // AWS may list a dual-stack endpoint's IPv6 addresses only
                // once its change ends: the look after the wait publishes
                // both kinds at once, so that the forwarders change once.
                tracing::info!(cluster = %p.cluster,
                    "the inbound IPv6 addresses are not listed yet; published once they are");
                return Ok(());
            }
            return Err(missing("the values of the parameters"));
        };
        let tags = self.owner.parameter_tags(&p.cluster_arn, &p.vpc_id);
        let kind_of = |kind: &str| {
            if kind == "StringList" {
                ParameterType::StringList
            } else {
                ParameterType::String
            }
        };
        // The values first, then what should not be there any more, then
        // the event that says the forwarders changed (they can be read
        // now), then the state, which records that it was said and the
        // versions the values got: a crash before the state is written
        // says it again on the next run.
        let changed: Vec<(String, String, &'static str)> =
            rendered.changed(&p.current).cloned().collect();
        let state_name = rendered.state_name().to_string();
        let mut state_changed = false;
        for (name, value, kind) in &changed {
            if *name == state_name {
                state_changed = true;
                continue;
            }
            let version = self
                .put_parameter(
                    name,
                    value,
                    kind_of(kind),
                    &tags,
                    p.current.contains_key(name),
                )
                .await?;
            rendered.record_written(name, version);
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
        if let Some(event) = rendered.announcement(&p.current) {
            self.announce(&event).await?;
        }
        if state_changed {
            let (name, value, kind) = rendered.values.last().expect("the state is last");
            self.put_parameter(
                name,
                value,
                kind_of(kind),
                &tags,
                p.current.contains_key(name),
            )
            .await?;
        }
        Ok(())
    }

    /// Put one Forwarders Changed event on the account's default bus. An
    /// entry EventBridge refuses is an error, transient when its code says
    /// so (throttled, an internal failure).
    pub(super) async fn announce(&self, event: &ForwardersChanged) -> Result<(), ApplyError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let detail = serde_json::to_string(event).expect("the detail serializes");
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(EVENT_DETAIL_TYPE)
            .detail(detail)
            .build();
        let out = self
            .clients
            .events()
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(aws("EventBridge.PutEvents"))?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().first();
            let code = failed.and_then(|e| e.error_code()).unwrap_or("unknown");
            let message = failed.and_then(|e| e.error_message()).unwrap_or_default();
            let kind = crate::aws::kind_of(code);
            return Err(AwsError::new(
                "EventBridge.PutEvents",
                Some(code.to_string()),
                format!(
                    "EventBridge refused the Forwarders Changed event of cluster {}: {code} {message}",
                    event.cluster
                ),
                kind,
            )
            .into());
        }
        tracing::info!(cluster = %event.cluster, revision = event.revision, removed = event.removed,
            "announced the forwarders");
        Ok(())
    }

    /// Create `name` with `tags`, or overwrite it when it carries our
    /// owner tag (a parameter someone else made is never overwritten).
    /// Returns the version it now has.
    pub async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        kind: ParameterType,
        tags: &Tags,
        exists: bool,
    ) -> Result<i64, ApplyError> {
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
                Ok(out) => return Ok(out.version()),
                Err(e) => {
                    let e = AwsError::from_sdk("SSM.PutParameter", e);
                    if !e.is_code("ParameterAlreadyExists") {
                        return Err(e.into());
                    }
                }
            }
        }
        if let Some(tags) = self.parameter_tags(name).await? {
            self.ensure_ours(&tags, format!("overwrite parameter {name}"), name)?;
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
            .map_err(aws("SSM.PutParameter"))
            .map(|out| out.version())
            .map_err(Into::into)
    }

    /// Delete those of `names` that carry our owner tag. Someone else's
    /// parameter under the prefix is left as it is: removing what is ours
    /// is done without it.
    pub(crate) async fn delete_parameters(&self, names: &[String]) -> Result<(), ApplyError> {
        let mut ours = Vec::new();
        for name in names {
            match self.parameter_tags(name).await? {
                Some(tags) if self.owner.is_ours(&tags) => ours.push(name.clone()),
                None => {}
                Some(_) => tracing::warn!(
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

pub(super) fn ssm_tags(tags: &Tags) -> Vec<aws_sdk_ssm::types::Tag> {
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
