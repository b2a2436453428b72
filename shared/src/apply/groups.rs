//! Security groups and their ingress rules: create or adopt, authorize, revoke, delete.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType, TagSpecification};

use crate::aws::{aws, AwsError};
use crate::model::{Direction, Permission, Tags};
use crate::observe::{self, ec2_tags, filter};
use crate::plan::DNS_PORT;
use crate::wait::{poll, Look, Waited};

use super::*;

impl Applier<'_> {
    /// Carry out one security group action.
    pub(super) async fn run_groups(
        &self,
        action: &Action,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        match action {
            Action::CreateSecurityGroup {
                role, vpc_id, name, ..
            } => {
                let id = self.create_security_group(*role, vpc_id, name).await?;
                Ok(Effect::GroupCreated(*role, id))
            }
            Action::AuthorizeIngress {
                group,
                permissions,
                cluster_arn,
                vpc_id,
                ..
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
            other => unreachable!("{} is not a security group action", other.describe()),
        }
    }

    pub(super) async fn create_security_group(
        &self,
        role: Direction,
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
                self.clients.counter.add_lost_race();
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
                    let id = group.group_id().unwrap_or_default();
                    Err(ApplyError::conflict(
                        id,
                        format!(
                            "VPC {vpc_id} already has a security group named {name} that is not \
                             ours ({id}); rename it or set another EKS_PRIVATE_DNS_OWNER"
                        ),
                    ))
                }
            }
        }
    }

    pub(super) async fn authorize(
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
                            self.clients.counter.add_lost_race();
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
                    &self.clients,
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

    pub(super) async fn revoke(
        &self,
        group_id: &str,
        rule_ids: &[String],
    ) -> Result<(), ApplyError> {
        // Ownership, again, right before the change.
        let current =
            observe::security_group_rules(&self.clients, vec![filter("group-id", [group_id])])
                .await?;
        let mut ours = Vec::new();
        for id in rule_ids {
            match current.iter().find(|r| &r.id == id) {
                None => {} // already gone
                Some(rule) => {
                    self.ensure_ours(&rule.tags, format!("revoke {id} on {group_id}"), id)?;
                    ours.push(id.clone());
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
    pub(super) async fn delete_security_group(
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
        self.ensure_ours(
            &ec2_tags(group.tags()),
            format!("delete security group {group_id}"),
            group_id,
        )?;
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

    /// Wait until no network interface uses the group. The interfaces of a
    /// deleted endpoint stay until its deletion ends; those of an endpoint
    /// that is not being deleted mean it came into use (kept, returns why);
    /// any other interface is someone else's use of our group (a conflict).
    pub(super) async fn until_group_is_unused(
        &self,
        group_id: &str,
    ) -> Result<Option<String>, ApplyError> {
        let waited = poll(&self.clients, "EC2", &self.patience, || async {
            let interfaces = observe::interfaces_using_group(&self.clients, group_id).await?;
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
                if let Some(e) = observe::get_endpoint(&self.clients, endpoint).await? {
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
            Waited::Ready(Err(reason)) => Err(ApplyError::conflict(group_id, reason)),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }
}

pub(super) fn ec2_tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

pub(super) fn ip_permission(p: &Permission) -> IpPermission {
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
