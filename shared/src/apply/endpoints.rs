//! Resolver endpoints: create or adopt, change their addresses, delete.

use aws_sdk_route53resolver::operation::create_resolver_endpoint::CreateResolverEndpointOutput;
use aws_sdk_route53resolver::types::{
    IpAddressRequest, IpAddressUpdate, ResolverEndpointDirection, ResolverEndpointType,
};

use crate::aws::{aws, AwsError};
use crate::model::{Direction, EndpointType};
use crate::observe::{self};
use crate::owner::{resolver_name, MAX_GENERATIONS};
use crate::progress::Wait;
use crate::wait::{poll, Look, Waited};

use super::*;

fn sdk_type(endpoint_type: EndpointType) -> ResolverEndpointType {
    match endpoint_type {
        EndpointType::Ipv4 => ResolverEndpointType::Ipv4,
        EndpointType::DualStack => ResolverEndpointType::Dualstack,
        EndpointType::Ipv6 => ResolverEndpointType::Ipv6,
    }
}

/// An endpoint to make, and the addresses to ask for.
pub(super) struct NewEndpoint<'a> {
    pub(super) direction: Direction,
    pub(super) vpc_id: &'a str,
    pub(super) group_id: &'a str,
    pub(super) subnet_ids: &'a [String],
    pub(super) ips: &'a [Option<String>],
    pub(super) endpoint_type: EndpointType,
    pub(super) ipv6s: &'a [Option<String>],
}

impl Applier<'_> {
    /// Carry out one endpoint action.
    pub(super) async fn run_endpoints(
        &self,
        action: &Action,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        match action {
            Action::CreateEndpoint {
                direction,
                vpc_id,
                group,
                subnet_ids,
                ips,
                endpoint_type,
                ipv6s,
                ..
            } => {
                let group_id = group_id(group, resolved)?;
                let new = NewEndpoint {
                    direction: *direction,
                    vpc_id,
                    group_id: &group_id,
                    subnet_ids,
                    ips,
                    endpoint_type: *endpoint_type,
                    ipv6s,
                };
                let id = self.create_endpoint(&new).await?;
                Ok(Effect::EndpointCreated(*direction, id))
            }
            Action::ChangeEndpointType {
                endpoint_id,
                to,
                endpoint_ready,
                ..
            } => {
                self.change_endpoint_type(endpoint_id, *to, *endpoint_ready)
                    .await
            }
            Action::AddEndpointIps {
                endpoint_id,
                subnet_ids,
                endpoint_ready,
                ..
            } => {
                self.add_endpoint_ips(endpoint_id, subnet_ids, endpoint_ready, resolved)
                    .await
            }
            Action::RemoveEndpointIps {
                endpoint_id,
                ips,
                endpoint_ready,
                ..
            } => {
                self.remove_endpoint_ips(endpoint_id, ips, endpoint_ready, resolved)
                    .await
            }
            Action::DeleteEndpoint {
                endpoint_id,
                endpoint_arn,
                after_rules,
                ..
            } => {
                self.delete_endpoint(endpoint_id, endpoint_arn, after_rules)
                    .await
            }
            other => unreachable!("{} is not an endpoint action", other.describe()),
        }
    }

    /// Wait until AWS takes an IP change on the endpoint (OPERATIONAL, or
    /// ACTION_NEEDED, which IP changes repair). Returns its direction.
    pub(super) async fn until_endpoint_takes_changes(
        &self,
        endpoint_id: &str,
    ) -> Result<Direction, ApplyError> {
        let waited = poll(&self.clients, "Route53Resolver", &self.patience, || async {
            Ok(
                match observe::get_endpoint(&self.clients, endpoint_id).await? {
                    None => Look::Ready(None),
                    Some(e) if e.status.accepts_ip_changes() => Look::Ready(Some(e.direction)),
                    Some(e) => Look::NotYet(format!(
                        "{} endpoint {endpoint_id} is {}",
                        e.direction, e.status
                    )),
                },
            )
        })
        .await?;
        match waited {
            Waited::Ready(Some(direction)) => Ok(direction),
            // Gone (not found), and no failure of the run: the next one makes
            // a new endpoint.
            Waited::Ready(None) => Err(ApplyError::Gone {
                what: format!("endpoint {endpoint_id}"),
            }),
            Waited::StillInProgress(what) => Err(ApplyError::InProgress(what)),
        }
    }

    /// One IP change, waiting and trying again while AWS refuses it because
    /// the endpoint is in the middle of another change.
    pub(super) async fn change_endpoint_ip<F, Fut, T, E, R>(
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
        R: std::fmt::Debug + Send + Sync + 'static,
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

    /// Wait until no rule uses the endpoint (RSLVR-00600 names DELETING
    /// ones too). A rule that is not being deleted came to use it since it
    /// was observed (a concurrent reconcile of another cluster): the
    /// endpoint is kept, and this returns why.
    pub(super) async fn until_endpoint_is_unused(
        &self,
        endpoint_id: &str,
    ) -> Result<Option<String>, ApplyError> {
        let waited = poll(&self.clients, "Route53Resolver", &self.patience, || async {
            let rules = observe::rules_of_endpoint(&self.clients, endpoint_id).await?;
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

    pub(super) async fn create_endpoint(
        &self,
        new: &NewEndpoint<'_>,
    ) -> Result<String, ApplyError> {
        let (direction, vpc_id) = (new.direction, new.vpc_id);
        let role = direction;
        let tags = self.owner.shared_tags(vpc_id, role);
        let mut ipv6s = new.ipv6s.to_vec();
        for generation in 1..=MAX_GENERATIONS {
            let creator_id = match direction {
                Direction::Inbound => self.owner.inbound_creator_id(vpc_id, generation),
                Direction::Outbound => self.owner.outbound_creator_id(vpc_id, generation),
            };
            let result = loop {
                let result = self.send_create(&creator_id, new, &ipv6s, &tags).await;
                match result {
                    // An IPv6 address published before that something else
                    // holds now (EC2 reads no IPv6 holders cheaply): AWS
                    // chooses instead, and the forwarders learn the new one.
                    Err(e)
                        if (e.is_code("InvalidRequestException")
                            || e.is_code("InvalidParameterException"))
                            && ipv6s.iter().any(Option::is_some) =>
                    {
                        tracing::warn!(vpc = vpc_id, error = %e,
                            "the published IPv6 addresses cannot be asked for; AWS chooses");
                        ipv6s.clear();
                    }
                    other => break other,
                }
            };
            match result {
                Ok(out) => {
                    return Ok(out
                        .resolver_endpoint()
                        .and_then(|e| e.id())
                        .unwrap_or_default()
                        .to_string())
                }
                Err(e) => {
                    if e.is_code("LimitExceededException") {
                        return Err(ApplyError::conflict(
                            format!("the {role} Resolver endpoint in {vpc_id}"),
                            format!(
                                "cannot create the {role} Resolver endpoint in {vpc_id}: the \
                                 account's endpoint quota for this region is reached (each \
                                 cluster VPC needs one inbound endpoint, the region one outbound). \
                                 Request a quota increase, or use \
                                 EKS_PRIVATE_DNS_OUTBOUND_ENDPOINT_ID ({})",
                                e.message
                            ),
                        ));
                    }
                    if !e.is_code("ResourceExistsException") {
                        return Err(e.into());
                    }
                    let existing = observe::list_endpoints(&self.clients).await?;
                    if let Some(found) = existing
                        .iter()
                        .find(|x| x.creator_request_id == creator_id && !x.is_going_away())
                    {
                        self.clients.counter.add_lost_race();
                        return Ok(found.id.clone());
                    }
                    // AWS still remembers a deleted endpoint under this id.
                }
            }
        }
        Err(ApplyError::conflict(
            format!("the {role} endpoint in {vpc_id}"),
            format!(
                "could not create the {role} endpoint in {vpc_id}: all {MAX_GENERATIONS} request \
                 ids are taken"
            ),
        ))
    }

    /// One CreateResolverEndpoint, asking for `ipv6s`.
    async fn send_create(
        &self,
        creator_id: &str,
        new: &NewEndpoint<'_>,
        ipv6s: &[Option<String>],
        tags: &crate::model::Tags,
    ) -> Result<CreateResolverEndpointOutput, AwsError> {
        let role = new.direction;
        let direction = match new.direction {
            Direction::Inbound => ResolverEndpointDirection::Inbound,
            Direction::Outbound => ResolverEndpointDirection::Outbound,
        };
        self.clients
            .resolver
            .create_resolver_endpoint()
            .creator_request_id(creator_id)
            .name(resolver_name(&format!(
                "eks-private-dns-{role}-{}",
                new.vpc_id
            )))
            .security_group_ids(new.group_id)
            .direction(direction)
            .resolver_endpoint_type(sdk_type(new.endpoint_type))
            .set_ip_addresses(Some(
                new.subnet_ids
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        IpAddressRequest::builder()
                            .subnet_id(s)
                            .set_ip(new.ips.get(i).cloned().flatten())
                            .set_ipv6(ipv6s.get(i).cloned().flatten())
                            .build()
                            .expect("subnet is set")
                    })
                    .collect(),
            ))
            .set_tags(Some(resolver_tags(tags)))
            .send()
            .await
            .map_err(aws("Route53Resolver.CreateResolverEndpoint"))
    }

    /// Change an endpoint's type (UpdateResolverEndpoint between IPV4 and
    /// DUALSTACK); AWS chooses each IP's IPv6 address from its subnet.
    async fn change_endpoint_type(
        &self,
        endpoint_id: &String,
        to: EndpointType,
        endpoint_ready: bool,
    ) -> Result<Effect, ApplyError> {
        self.ensure_resolver_owned(endpoint_id, "change", None)
            .await?;
        let direction = match endpoint_ready {
            true => Direction::Inbound,
            false => self.until_endpoint_takes_changes(endpoint_id).await?,
        };
        let kind = sdk_type(to);
        self.change_endpoint_ip(
            endpoint_id,
            || {
                self.clients
                    .resolver
                    .update_resolver_endpoint()
                    .resolver_endpoint_id(endpoint_id)
                    .resolver_endpoint_type(kind.clone())
                    .send()
            },
            "Route53Resolver.UpdateResolverEndpoint",
        )
        .await?;
        Ok(Effect::EndpointChanged(direction, endpoint_id.clone()))
    }

    /// Give an endpoint an address in each subnet, one change at a time.
    pub(super) async fn add_endpoint_ips(
        &self,
        endpoint_id: &String,
        subnet_ids: &[String],
        endpoint_ready: &bool,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        self.ensure_resolver_owned(endpoint_id, "change", None)
            .await?;
        let mut ready = *endpoint_ready && !resolved.changed_endpoints.contains(endpoint_id);
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

    /// Take addresses off an endpoint, one change at a time.
    pub(super) async fn remove_endpoint_ips(
        &self,
        endpoint_id: &String,
        ips: &[EndpointIpRef],
        endpoint_ready: &bool,
        resolved: &Resolved,
    ) -> Result<Effect, ApplyError> {
        self.ensure_resolver_owned(endpoint_id, "change", None)
            .await?;
        let mut ready = *endpoint_ready && !resolved.changed_endpoints.contains(endpoint_id);
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
                Err(ApplyError::Aws(e)) if e.is_not_found() => {}
                other => other?,
            }
            ready = false;
        }
        Ok(Effect::EndpointChanged(direction, endpoint_id.clone()))
    }

    /// Delete an endpoint once no rule uses it; kept when one came to.
    pub(super) async fn delete_endpoint(
        &self,
        endpoint_id: &String,
        endpoint_arn: &String,
        after_rules: &bool,
    ) -> Result<Effect, ApplyError> {
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
            account: self.clients.account.clone(),
            endpoint_id: endpoint_id.clone(),
        }))
    }
}

/// "Route 53 Resolver: rslvr-in-0123:rni-4567" (the description Resolver
/// gives an endpoint's network interfaces) -> "rslvr-in-0123".
pub(super) fn resolver_endpoint_of_interface(description: &str) -> Option<&str> {
    let rest = description.strip_prefix("Route 53 Resolver: ")?;
    let endpoint = rest.split(':').next()?;
    endpoint.starts_with("rslvr-").then_some(endpoint)
}
