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

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::Serialize;

use crate::config::{ClusterTags, Config, Trigger, ENV_CLIENT_VPC_IDS, ENV_OUTBOUND_ENDPOINT_ID};
use crate::model::*;
use crate::owner::{CreatorId, Owner, ROLE_INBOUND, ROLE_OUTBOUND, TAG_CLUSTER, TAG_ROLE};
pub use crate::progress::{Problem, Wait};

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
    Invalid { problem: String },
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

/// A security group by id, or the one this plan creates for a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupRef {
    Existing(String),
    New(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointRef {
    Existing(String),
    New(Direction),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleRef {
    Existing(String),
    New,
}

/// Forward targets: known now, or the inbound endpoint's addresses once the
/// earlier actions of the plan have run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Targets {
    Known(Vec<TargetAddress>),
    InboundEndpointIps,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    CreateSecurityGroup {
        role: String,
        vpc_id: String,
        name: String,
    },
    AuthorizeIngress {
        group: GroupRef,
        permissions: Vec<Permission>,
        /// The cluster ARN for 443 rules; None for the shared 53 rules.
        cluster_arn: Option<String>,
        vpc_id: String,
    },
    RevokeIngress {
        group_id: String,
        rule_ids: Vec<String>,
        permissions: Vec<String>,
    },
    CreateEndpoint {
        direction: Direction,
        vpc_id: String,
        group: GroupRef,
        subnet_ids: Vec<String>,
    },
    /// IP changes wait until the endpoint is OPERATIONAL (or ACTION_NEEDED,
    /// which they repair); `endpoint_ready` says it was when observed.
    AddEndpointIps {
        endpoint_id: String,
        subnet_ids: Vec<String>,
        endpoint_ready: bool,
    },
    RemoveEndpointIps {
        endpoint_id: String,
        ips: Vec<EndpointIpRef>,
        endpoint_ready: bool,
    },
    CreateRule {
        cluster: String,
        cluster_arn: String,
        domain: String,
        targets: Targets,
        endpoint: EndpointRef,
    },
    UpdateRule {
        rule_id: String,
        rule_arn: String,
        domain: String,
        targets: Targets,
        endpoint: EndpointRef,
    },
    AssociateRule {
        rule: RuleRef,
        vpc_id: String,
        cluster: String,
    },
    DisassociateRule {
        rule_id: String,
        rule_arn: String,
        vpc_id: String,
    },
    /// A rule goes once no VPC is associated with it; with
    /// `after_associations`, some was when observed (or is disassociated by
    /// this plan), and the apply step waits until they are gone.
    DeleteRule {
        rule_id: String,
        rule_arn: String,
        domain: String,
        after_associations: bool,
    },
    /// An endpoint goes once no rule uses it (RSLVR-00600); with
    /// `after_rules`, some rule did when observed.
    DeleteEndpoint {
        endpoint_id: String,
        endpoint_arn: String,
        direction: Direction,
        vpc_id: String,
        after_rules: bool,
    },
    /// A group goes once no network interface uses it (DependencyViolation);
    /// with `after_interfaces`, an endpoint did when observed, whose
    /// interfaces stay until its deletion ends.
    DeleteSecurityGroup {
        group_id: String,
        role: String,
        vpc_id: String,
        after_interfaces: bool,
    },
    PublishParameters(Box<Publication>),
    DeleteParameters {
        names: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointIpRef {
    pub ip_id: String,
    pub subnet_id: String,
    pub ip: Option<String>,
}

/// What the SSM parameters should say, with the parts that earlier actions
/// of the plan decide left as None for the apply step to fill in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub prefix: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub vpc_id: String,
    pub endpoint_host: String,
    pub inbound_endpoint_id: Option<String>,
    pub inbound_ips: Option<Vec<String>>,
    pub inbound_ipv6: Option<Vec<String>>,
    pub outbound_endpoint_id: Option<String>,
    pub uses_outbound: bool,
    pub rule_id: Option<String>,
    pub uses_rule: bool,
    pub associated_vpcs: Vec<String>,
    pub control_plane_group_id: String,
    /// Our 443 rules that stay; the apply step adds the ones it creates.
    pub control_plane_rule_ids: Vec<String>,
    pub allowed_cidrs: Vec<String>,
    /// The cluster VPC's blocks outside the private ranges.
    pub vpc_cidrs: Vec<String>,
    /// The digest of the settings this is made with.
    pub settings_digest: String,
    /// The parameters as they are now (name -> value), to write only changes.
    #[serde(skip)]
    pub current: BTreeMap<String, String>,
}

impl Action {
    /// Apply order: an action runs after every action of a lower phase.
    pub fn phase(&self) -> u8 {
        match self {
            Action::CreateSecurityGroup { .. } => 0,
            Action::AuthorizeIngress { .. }
            | Action::CreateEndpoint { .. }
            | Action::AddEndpointIps { .. } => 1,
            Action::CreateRule { .. } | Action::UpdateRule { .. } => 2,
            Action::AssociateRule { .. }
            | Action::DisassociateRule { .. }
            | Action::RevokeIngress { .. } => 3,
            Action::DeleteRule { .. } | Action::RemoveEndpointIps { .. } => 4,
            Action::DeleteEndpoint { .. } => 5,
            Action::DeleteSecurityGroup { .. } => 6,
            Action::PublishParameters(_) | Action::DeleteParameters { .. } => 7,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::CreateSecurityGroup { role, vpc_id, name } => {
                format!("create {role} endpoint security group {name} in {vpc_id}")
            }
            Action::AuthorizeIngress {
                group, permissions, ..
            } => format!(
                "allow {} on {}",
                join(permissions.iter().map(|p| p.to_string())),
                group_label(group)
            ),
            Action::RevokeIngress {
                group_id,
                permissions,
                ..
            } => format!("revoke {} on {group_id}", permissions.join(", ")),
            Action::CreateEndpoint {
                direction,
                vpc_id,
                subnet_ids,
                ..
            } => format!(
                "create {} Resolver endpoint in {vpc_id} with {} IPs in {}",
                direction.as_str().to_lowercase(),
                subnet_ids.len(),
                subnet_ids.join(", ")
            ),
            Action::AddEndpointIps {
                endpoint_id,
                subnet_ids,
                ..
            } => format!(
                "add {} IPs to {endpoint_id} in {}",
                subnet_ids.len(),
                subnet_ids.join(", ")
            ),
            Action::RemoveEndpointIps {
                endpoint_id, ips, ..
            } => format!(
                "remove IPs {} from {endpoint_id}",
                join(
                    ips.iter()
                        .map(|ip| ip.ip.clone().unwrap_or(ip.ip_id.clone()))
                )
            ),
            Action::CreateRule {
                domain, targets, ..
            } => format!(
                "create forward rule for {domain} to {}",
                targets_label(targets)
            ),
            Action::UpdateRule {
                rule_id,
                targets,
                endpoint,
                ..
            } => format!(
                "update rule {rule_id}: targets {}, outbound endpoint {}",
                targets_label(targets),
                endpoint_label(endpoint)
            ),
            Action::AssociateRule { rule, vpc_id, .. } => {
                format!("associate {} with {vpc_id}", rule_label(rule))
            }
            Action::DisassociateRule {
                rule_id, vpc_id, ..
            } => {
                format!("disassociate rule {rule_id} from {vpc_id}")
            }
            Action::DeleteRule {
                rule_id, domain, ..
            } => format!("delete rule {rule_id} ({domain})"),
            Action::DeleteEndpoint {
                endpoint_id,
                direction,
                vpc_id,
                ..
            } => format!(
                "delete {} endpoint {endpoint_id} in {vpc_id}",
                direction.as_str().to_lowercase()
            ),
            Action::DeleteSecurityGroup { group_id, role, .. } => {
                format!("delete {role} endpoint security group {group_id}")
            }
            Action::PublishParameters(p) => {
                format!("publish parameters under {}/{}/", p.prefix, p.cluster)
            }
            Action::DeleteParameters { names } => {
                format!("delete parameters {}", names.join(", "))
            }
        }
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn group_label(group: &GroupRef) -> String {
    match group {
        GroupRef::Existing(id) => id.clone(),
        GroupRef::New(role) => format!("the new {role} endpoint security group"),
    }
}

fn endpoint_label(endpoint: &EndpointRef) -> String {
    match endpoint {
        EndpointRef::Existing(id) => id.clone(),
        EndpointRef::New(d) => format!("the new {} endpoint", d.as_str().to_lowercase()),
    }
}

fn rule_label(rule: &RuleRef) -> String {
    match rule {
        RuleRef::Existing(id) => format!("rule {id}"),
        RuleRef::New => "the new rule".to_string(),
    }
}

fn targets_label(targets: &Targets) -> String {
    match targets {
        Targets::Known(t) => join(t.iter().map(|t| format!("{}:{}", t.ip, t.port))),
        Targets::InboundEndpointIps => "the inbound endpoint's IPs".to_string(),
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
                        | Action::AddEndpointIps { .. }
                        | Action::RemoveEndpointIps { .. }
                )
            })
    }
}

/// What the sweep's last step sees: every shared resource of ours, and the
/// VPCs that still need an inbound endpoint.
#[derive(Clone, Debug, Default)]
pub struct SharedView {
    /// Every Resolver endpoint in the region (ours and not).
    pub endpoints: Vec<EndpointView>,
    /// Our rules.
    pub rules: Vec<RuleView>,
    /// Our security groups.
    pub security_groups: Vec<SecurityGroupView>,
    /// VPCs recorded in a state parameter, or of a cluster found managed.
    pub needed_vpcs: BTreeSet<String>,
}

/// Shared resources of ours that nothing uses any more: inbound endpoints
/// in VPCs where no cluster needs one, outbound endpoints no rule of ours
/// uses, and our security groups that no endpoint uses. Endpoints still
/// CREATING are left alone (a reconcile may be making them right now).
pub fn plan_shared_orphans(config: &Config, owner: &Owner, view: &SharedView) -> Vec<Action> {
    let mut actions = Vec::new();
    let ours = |e: &&EndpointView| {
        owner.parse_creator_id(&e.creator_request_id).is_some()
            && !e.is_going_away()
            && e.status != EndpointStatus::Creating
            && config.outbound_endpoint_id.as_deref() != Some(e.id.as_str())
    };
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for endpoint in view.endpoints.iter().filter(ours) {
        let unused = match endpoint.direction {
            Direction::Inbound => !view.needed_vpcs.contains(&endpoint.vpc_id),
            Direction::Outbound => !view.rules.iter().any(|r| {
                r.endpoint_id.as_deref() == Some(endpoint.id.as_str()) && !r.status.is_going_away()
            }),
        };
        if unused {
            actions.push(delete_endpoint(endpoint, &view.rules));
            deleted.insert(endpoint.id.as_str());
        }
    }
    for group in view
        .security_groups
        .iter()
        .filter(|g| owner.is_ours(&g.tags))
    {
        let Some(role) = group.tags.get(TAG_ROLE) else {
            continue;
        };
        if role == ROLE_INBOUND && view.needed_vpcs.contains(&group.vpc_id) {
            continue;
        }
        let in_use = view.endpoints.iter().any(|e| {
            e.security_group_ids.contains(&group.id)
                && !e.is_going_away()
                && !deleted.contains(e.id.as_str())
        });
        if !in_use {
            actions.push(delete_group(group, role, &view.endpoints));
        }
    }
    actions.sort_by_key(Action::phase);
    actions
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
struct Planned {
    actions: Vec<Action>,
    waits: Vec<Wait>,
    problems: Vec<Problem>,
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
        ref s if s.is_in_progress() => {
            return Decision::Pending {
                status: s.as_str().to_string(),
            }
        }
        _ => {}
    }
    let tags = match ClusterTags::parse(&cluster.name, &cluster.tags, config) {
        Ok(tags) => tags,
        Err(e) => {
            return Decision::Invalid {
                problem: e.to_string(),
            }
        }
    };
    if tags.enabled == Some(false) {
        return Decision::NotManaged {
            reason: "opted out by its eks-private-dns/enabled=false tag".into(),
        };
    }
    if !cluster.private_access {
        return Decision::NotManaged {
            reason: "its private endpoint access is off".into(),
        };
    }
    if tags.enabled != Some(true) && config.trigger == Trigger::PrivateOnly && cluster.public_access
    {
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

/// The client VPC ids of a managed cluster, in order: configured, tagged, peered.
fn client_vpc_ids(config: &Config, tags: &ClusterTags, obs: &Observation) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let peered = if config.discover_peered_vpcs {
        obs.peered_vpc_ids.clone()
    } else {
        Vec::new()
    };
    for id in config
        .client_vpc_ids
        .iter()
        .chain(&tags.client_vpc_ids)
        .chain(&peered)
    {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

struct Desired<'a> {
    cluster: &'a ClusterView,
    vpc_id: String,
    host: String,
    association_vpcs: Vec<String>,
    cidrs: Vec<IpNet>,
    control_plane_group: String,
}

fn desired<'a>(config: &Config, obs: &'a Observation) -> Result<Desired<'a>, String> {
    let cluster = obs.cluster.as_ref().ok_or("the cluster does not exist")?;
    let tags =
        ClusterTags::parse(&cluster.name, &cluster.tags, config).map_err(|e| e.to_string())?;
    let (host, vpc_id) = cluster.host_and_vpc()?;
    match obs.cluster_vpc_dns {
        _ if obs.lean => {}
        Some(VpcDns {
            support: true,
            hostnames: true,
        }) => {}
        Some(dns) => {
            let mut off = Vec::new();
            if !dns.support {
                off.push("enableDnsSupport");
            }
            if !dns.hostnames {
                off.push("enableDnsHostnames");
            }
            return Err(format!(
                "VPC {vpc_id} of cluster {} has {} off; the private endpoint name resolves only \
                 with both on (aws ec2 modify-vpc-attribute --vpc-id {vpc_id} --enable-dns-support \
                 / --enable-dns-hostnames)",
                cluster.name,
                off.join(" and ")
            ));
        }
        None => {
            return Err(format!(
                "the DNS attributes of VPC {vpc_id} could not be read"
            ))
        }
    }
    let azs: BTreeSet<&str> = obs
        .cluster_subnets
        .iter()
        .filter(|s| s.vpc_id == vpc_id)
        .map(|s| s.az.as_str())
        .collect();
    if azs.len() < 2 && !obs.lean {
        return Err(format!(
            "cluster {} has subnets in {} Availability Zone(s) of VPC {vpc_id}; an inbound \
             Resolver endpoint needs subnets in at least two",
            cluster.name,
            azs.len()
        ));
    }
    let control_plane_group = api_group(config, cluster, obs)?;
    let clients = client_vpc_ids(config, &tags, obs);
    let mut cidrs: BTreeSet<IpNet> = BTreeSet::new();
    for id in &clients {
        let Some(vpc) = obs.vpcs.iter().find(|v| &v.id == id) else {
            let source = if config.client_vpc_ids.contains(id) {
                ENV_CLIENT_VPC_IDS.to_string()
            } else if tags.client_vpc_ids.contains(id) {
                format!(
                    "tag {} of cluster {}",
                    crate::config::TAG_CLIENT_VPC_IDS,
                    cluster.name
                )
            } else {
                "a peering connection".to_string()
            };
            return Err(format!("client VPC {id} (from {source}) does not exist"));
        };
        cidrs.extend(vpc.cidrs.iter().copied());
    }
    cidrs.extend(config.onprem_cidrs.iter().copied());
    cidrs.extend(tags.onprem_cidrs.iter().copied());
    let association_vpcs = clients.into_iter().filter(|id| id != &vpc_id).collect();
    Ok(Desired {
        cluster,
        vpc_id,
        host,
        association_vpcs,
        cidrs: cidrs.into_iter().collect(),
        control_plane_group,
    })
}

fn managed(config: &Config, owner: &Owner, obs: &Observation) -> Result<Planned, String> {
    let d = desired(config, obs)?;
    let cluster = d.cluster;
    let mut m = Planned::default();
    let wants_rule = !d.association_vpcs.is_empty();

    // Outbound endpoint: only when some VPC must forward to us.
    let outbound = if wants_rule {
        Some(plan_outbound(config, owner, obs, &d, &mut m.actions)?)
    } else {
        None
    };
    if let Some(EndpointRef::Existing(id)) = &outbound {
        if let Some(endpoint) = obs.endpoints.iter().find(|e| &e.id == id) {
            note_endpoint_status(endpoint, &mut m, None);
        }
    }

    // Inbound endpoint, shared by every managed cluster of the VPC.
    let inbound_sg = find_group(owner, obs, &d.vpc_id, ROLE_INBOUND);
    let inbound_group = match inbound_sg {
        Some(sg) => GroupRef::Existing(sg.id.clone()),
        None => {
            m.actions.push(Action::CreateSecurityGroup {
                role: ROLE_INBOUND.into(),
                vpc_id: d.vpc_id.clone(),
                name: owner.security_group_name(ROLE_INBOUND),
            });
            GroupRef::New(ROLE_INBOUND.into())
        }
    };
    let inbound_candidates = live_endpoints(owner, obs, Direction::Inbound, Some(&d.vpc_id));
    let inbound = inbound_candidates.first().copied();

    // 53 from every CIDR of every cluster that uses the endpoint, and from
    // the addresses forwarded queries come from: the IPs of every outbound
    // endpoint whose rules target it (where no CIDR covers them already).
    let mut dns_cidrs: BTreeSet<IpNet> = d.cidrs.iter().copied().collect();
    for registration in &obs.registrations {
        if registration.cluster != cluster.name {
            dns_cidrs.extend(registration.allowed_cidrs.iter().copied());
        }
    }
    let sources: Vec<IpNet> = forwarding_sources(obs, inbound, outbound.as_ref())
        .into_iter()
        .filter(|host| !dns_cidrs.iter().any(|net| net.contains(host)))
        .collect();
    dns_cidrs.extend(sources);
    let dns_permissions: Vec<Permission> = dns_cidrs
        .iter()
        .flat_map(|cidr| {
            [Protocol::Tcp, Protocol::Udp].map(|protocol| Permission {
                protocol,
                port: DNS_PORT,
                cidr: *cidr,
            })
        })
        .collect();
    reconcile_ingress(
        owner,
        obs,
        &inbound_group,
        &dns_permissions,
        |rule| !rule.tags.contains_key(TAG_CLUSTER),
        None,
        &d.vpc_id,
        &mut m.actions,
    );

    let mut inbound_ips_known: Option<Vec<String>> = None;
    let mut inbound_ipv6_known: Option<Vec<String>> = None;
    match inbound {
        None => m.actions.push(Action::CreateEndpoint {
            direction: Direction::Inbound,
            vpc_id: d.vpc_id.clone(),
            group: inbound_group.clone(),
            subnet_ids: pick_subnets(&obs.cluster_subnets, &d.vpc_id, config.inbound_ips as usize),
        }),
        Some(endpoint) => {
            let changed = plan_endpoint_ips(config, obs, endpoint, &mut m);
            if !changed {
                inbound_ips_known = Some(endpoint.ipv4s());
                inbound_ipv6_known = Some(endpoint.ipv6s());
            }
        }
    }
    // Duplicates (a lost race): removed once no rule of ours forwards to them.
    for surplus in inbound_candidates.iter().skip(1) {
        let ips = surplus.ipv4s();
        let in_use = obs
            .rules
            .iter()
            .any(|r| r.targets.iter().any(|t| ips.contains(&t.ip)));
        if !in_use {
            m.actions.push(delete_endpoint(surplus, &obs.rules));
        }
    }

    // The forward rule and its associations.
    let rule_id = plan_rule(
        obs,
        owner,
        &d,
        outbound.as_ref(),
        &inbound_ips_known,
        &mut m,
    );

    // Outbound endpoints of ours that no rule will use any more.
    let outbound_in_use: Option<&str> = match &outbound {
        Some(EndpointRef::Existing(id)) => Some(id.as_str()),
        _ => None,
    };
    // Rules deleted or moved to another outbound endpoint no longer hold
    // their current one.
    let removed_rules: BTreeSet<String> = m
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRule { rule_id, .. } | Action::UpdateRule { rule_id, .. } => {
                Some(rule_id.clone())
            }
            _ => None,
        })
        .collect();
    collect_unused_outbound(
        config,
        owner,
        obs,
        outbound_in_use,
        &removed_rules,
        &mut m.actions,
    );

    // 443 on the control plane, from this cluster's CIDRs only.
    let api_permissions: Vec<Permission> = d
        .cidrs
        .iter()
        .map(|cidr| Permission {
            protocol: Protocol::Tcp,
            port: API_PORT,
            cidr: *cidr,
        })
        .collect();
    let arn = cluster.arn.clone();
    let kept_api_rules = reconcile_ingress(
        owner,
        obs,
        &GroupRef::Existing(d.control_plane_group.clone()),
        &api_permissions,
        |rule| rule.tags.get(TAG_CLUSTER) == Some(&arn),
        Some(&arn),
        &d.vpc_id,
        &mut m.actions,
    );
    // Our 443 rules for this cluster left on another group (the cluster's
    // groups changed).
    let stray: Vec<&SecurityGroupRuleView> = obs
        .security_group_rules
        .iter()
        .filter(|r| {
            owner.is_ours(&r.tags)
                && r.tags.get(TAG_CLUSTER) == Some(&cluster.arn)
                && r.group_id != d.control_plane_group
        })
        .collect();
    revoke_grouped(&stray, &mut m.actions);

    // SSM: written last, and only where a value changes.
    let publication = Publication {
        prefix: config.ssm_prefix.clone(),
        cluster: cluster.name.clone(),
        cluster_arn: cluster.arn.clone(),
        vpc_id: d.vpc_id.clone(),
        endpoint_host: d.host.clone(),
        inbound_endpoint_id: inbound.map(|e| e.id.clone()),
        inbound_ips: inbound_ips_known,
        inbound_ipv6: inbound_ipv6_known,
        outbound_endpoint_id: match &outbound {
            Some(EndpointRef::Existing(id)) => Some(id.clone()),
            _ => None,
        },
        uses_outbound: outbound.is_some(),
        rule_id,
        uses_rule: wants_rule,
        associated_vpcs: d.association_vpcs.clone(),
        control_plane_group_id: d.control_plane_group.clone(),
        control_plane_rule_ids: kept_api_rules,
        allowed_cidrs: d.cidrs.iter().map(|c| c.to_string()).collect(),
        vpc_cidrs: recorded_vpc_cidrs(config, obs, &d.vpc_id),
        settings_digest: config.digest(),
        current: obs
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
    };
    let unknown_now = !m.actions.is_empty();
    let stale = match publication.render(None) {
        Some(rendered) => rendered.needs_write(&publication.current),
        None => true,
    };
    if unknown_now || stale {
        m.actions
            .push(Action::PublishParameters(Box::new(publication)));
    }
    Ok(m)
}

/// The cluster's forward rule: made, kept right, associated with every
/// client VPC and no other. Returns the id of the rule that stays.
fn plan_rule(
    obs: &Observation,
    owner: &Owner,
    d: &Desired,
    outbound: Option<&EndpointRef>,
    inbound_ips_known: &Option<Vec<String>>,
    m: &mut Planned,
) -> Option<String> {
    let cluster = d.cluster;
    let wants_rule = !d.association_vpcs.is_empty();
    let rules_of_cluster = rules_of(owner, obs, &cluster.name);
    let current_rule = rules_of_cluster
        .iter()
        .find(|r| r.domain == d.host && !r.status.is_going_away() && !r.status.is_failed())
        .copied();
    for rule in &rules_of_cluster {
        if rule.status.is_failed() {
            m.problems.push(Problem {
                resource: format!("rule {} ({})", rule.id, rule.domain),
                status: rule.status.to_string(),
                message: rule.status_message.clone(),
                repair: Some("it is deleted, and a new one made once it is gone".into()),
            });
        }
        let keep = wants_rule && current_rule.map(|c| c.id == rule.id).unwrap_or(false);
        if !keep {
            remove_rule(obs, rule, &mut m.actions);
        }
    }
    let (true, Some(outbound)) = (wants_rule, outbound) else {
        return None;
    };
    let targets = match inbound_ips_known {
        Some(ips) if !ips.is_empty() => Targets::Known(
            ips.iter()
                .map(|ip| TargetAddress {
                    ip: ip.clone(),
                    port: DNS_PORT,
                })
                .collect(),
        ),
        _ => Targets::InboundEndpointIps,
    };
    let mut rule_id = None;
    let rule_ref = match current_rule {
        None => {
            m.actions.push(Action::CreateRule {
                cluster: cluster.name.clone(),
                cluster_arn: cluster.arn.clone(),
                domain: d.host.clone(),
                targets,
                endpoint: outbound.clone(),
            });
            RuleRef::New
        }
        Some(rule) => {
            let mut current_targets = rule.targets.clone();
            current_targets.sort();
            let targets_differ = match &targets {
                Targets::Known(t) => {
                    let mut t = t.clone();
                    t.sort();
                    t != current_targets
                }
                Targets::InboundEndpointIps => true,
            };
            let endpoint_differs = match outbound {
                EndpointRef::Existing(id) => rule.endpoint_id.as_deref() != Some(id.as_str()),
                EndpointRef::New(_) => true,
            };
            if targets_differ || endpoint_differs {
                m.actions.push(Action::UpdateRule {
                    rule_id: rule.id.clone(),
                    rule_arn: rule.arn.clone(),
                    domain: rule.domain.clone(),
                    targets,
                    endpoint: outbound.clone(),
                });
            }
            rule_id = Some(rule.id.clone());
            RuleRef::Existing(rule.id.clone())
        }
    };
    let of_rule: Vec<&AssociationView> = match current_rule {
        Some(rule) => obs
            .associations
            .iter()
            .filter(|a| a.rule_id == rule.id)
            .collect(),
        None => Vec::new(),
    };
    let associated: BTreeSet<&str> = of_rule
        .iter()
        .filter(|a| a.status.is_live())
        .map(|a| a.vpc_id.as_str())
        .collect();
    for a in &of_rule {
        if a.status.is_in_progress() {
            m.waits.push(Wait::Association {
                rule_id: a.rule_id.clone(),
                vpc_id: a.vpc_id.clone(),
                status: a.status.clone(),
            });
        }
        if a.status.is_failed() {
            let wanted = d.association_vpcs.iter().any(|v| v == &a.vpc_id);
            m.problems.push(Problem {
                resource: format!("the association of rule {} with {}", a.rule_id, a.vpc_id),
                status: a.status.to_string(),
                message: a.status_message.clone(),
                repair: Some(if wanted {
                    "it is removed, and made again once it is gone".into()
                } else {
                    "it is removed".into()
                }),
            });
            m.actions.push(Action::DisassociateRule {
                rule_id: a.rule_id.clone(),
                rule_arn: current_rule.map(|r| r.arn.clone()).unwrap_or_default(),
                vpc_id: a.vpc_id.clone(),
            });
        }
    }
    // Another rule of ours for this name still associated with a VPC: a VPC
    // takes one rule per name (RSLVR-00802), so ours waits for it to go.
    let other_rules: BTreeSet<&str> = rules_of_cluster
        .iter()
        .filter(|r| r.domain == d.host && Some(r.id.as_str()) != rule_id.as_deref())
        .map(|r| r.id.as_str())
        .collect();
    for vpc in &d.association_vpcs {
        if associated.contains(vpc.as_str()) {
            continue;
        }
        let blocking = obs.associations.iter().find(|a| {
            &a.vpc_id == vpc
                && (other_rules.contains(a.rule_id.as_str())
                    || (Some(a.rule_id.as_str()) == rule_id.as_deref() && !a.status.is_live()))
        });
        match blocking {
            Some(a) => m.waits.push(Wait::AssociationGone {
                rule_id: a.rule_id.clone(),
                vpc_id: vpc.clone(),
            }),
            None => m.actions.push(Action::AssociateRule {
                rule: rule_ref.clone(),
                vpc_id: vpc.clone(),
                cluster: cluster.name.clone(),
            }),
        }
    }
    if let Some(rule) = current_rule {
        for vpc in associated {
            if !d.association_vpcs.iter().any(|v| v == vpc) {
                m.actions.push(Action::DisassociateRule {
                    rule_id: rule.id.clone(),
                    rule_arn: rule.arn.clone(),
                    vpc_id: vpc.to_string(),
                });
            }
        }
    }
    rule_id
}

/// The addresses that queries forwarded to `inbound` come from: the live
/// IPs of every outbound endpoint whose rules (ours) target it, and of the
/// one this cluster's rule goes through. An outbound endpoint this plan
/// creates has no addresses yet: the next look finds them.
fn forwarding_sources(
    obs: &Observation,
    inbound: Option<&EndpointView>,
    outbound: Option<&EndpointRef>,
) -> BTreeSet<IpNet> {
    let mut endpoint_ids: BTreeSet<&str> = BTreeSet::new();
    if let Some(EndpointRef::Existing(id)) = outbound {
        endpoint_ids.insert(id.as_str());
    }
    if let Some(inbound) = inbound {
        let targets: BTreeSet<String> =
            inbound.ipv4s().into_iter().chain(inbound.ipv6s()).collect();
        for rule in obs.rules.iter().filter(|r| !r.status.is_going_away()) {
            if rule.targets.iter().any(|t| targets.contains(&t.ip)) {
                if let Some(id) = &rule.endpoint_id {
                    endpoint_ids.insert(id.as_str());
                }
            }
        }
    }
    obs.endpoints
        .iter()
        .filter(|e| e.direction == Direction::Outbound && endpoint_ids.contains(e.id.as_str()))
        .flat_map(|e| e.live_ips())
        .flat_map(|ip| ip.ip.iter().chain(ip.ipv6.iter()))
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(IpNet::from)
        .collect()
}

/// An endpoint the plumbing uses: waited for while AWS works on it, a
/// problem when AWS reports it failed (`repair`: what the plan does).
fn note_endpoint_status(endpoint: &EndpointView, m: &mut Planned, repair: Option<String>) {
    if endpoint.status.is_in_progress() {
        m.waits.push(Wait::Endpoint {
            endpoint_id: endpoint.id.clone(),
            direction: endpoint.direction,
            status: endpoint.status.clone(),
        });
    }
    if endpoint.status.is_failed() {
        m.problems.push(Problem {
            resource: format!(
                "{} endpoint {}",
                endpoint.direction.as_str().to_lowercase(),
                endpoint.id
            ),
            status: endpoint.status.to_string(),
            message: endpoint.status_message.clone(),
            repair,
        });
    }
}

/// Pick or create the outbound endpoint that the rule goes through.
fn plan_outbound(
    config: &Config,
    owner: &Owner,
    obs: &Observation,
    d: &Desired,
    actions: &mut Vec<Action>,
) -> Result<EndpointRef, String> {
    if let Some(id) = &config.outbound_endpoint_id {
        return match obs.endpoints.iter().find(|e| &e.id == id) {
            Some(e) if e.direction == Direction::Outbound => Ok(EndpointRef::Existing(id.clone())),
            Some(_) => Err(format!(
                "{id} (from {ENV_OUTBOUND_ENDPOINT_ID}) is an inbound endpoint, not an outbound one"
            )),
            None => Err(format!(
                "outbound endpoint {id} (from {ENV_OUTBOUND_ENDPOINT_ID}) does not exist"
            )),
        };
    }
    let outbound_vpc = outbound_vpc(config, d);
    let ours = live_endpoints(owner, obs, Direction::Outbound, None);
    let chosen = ours.iter().find(|e| e.vpc_id == outbound_vpc).or_else(|| {
        if config.outbound_vpc_id.is_none() {
            ours.first()
        } else {
            None
        }
    });
    if let Some(endpoint) = chosen {
        return Ok(EndpointRef::Existing(endpoint.id.clone()));
    }
    let subnet_ids = pick_subnets(&obs.outbound_vpc_subnets, &outbound_vpc, 2);
    let azs: BTreeSet<&str> = obs
        .outbound_vpc_subnets
        .iter()
        .filter(|s| s.vpc_id == outbound_vpc)
        .map(|s| s.az.as_str())
        .collect();
    if azs.len() < 2 && !obs.lean {
        return Err(format!(
            "VPC {outbound_vpc} has subnets in {} Availability Zone(s); the outbound Resolver \
             endpoint needs subnets in two (or set EKS_PRIVATE_DNS_OUTBOUND_VPC_ID or \
             {ENV_OUTBOUND_ENDPOINT_ID})",
            azs.len()
        ));
    }
    let group = match find_group(owner, obs, &outbound_vpc, ROLE_OUTBOUND) {
        Some(sg) => GroupRef::Existing(sg.id.clone()),
        None => {
            actions.push(Action::CreateSecurityGroup {
                role: ROLE_OUTBOUND.into(),
                vpc_id: outbound_vpc.clone(),
                name: owner.security_group_name(ROLE_OUTBOUND),
            });
            GroupRef::New(ROLE_OUTBOUND.into())
        }
    };
    actions.push(Action::CreateEndpoint {
        direction: Direction::Outbound,
        vpc_id: outbound_vpc,
        group,
        subnet_ids,
    });
    Ok(EndpointRef::New(Direction::Outbound))
}

/// Where a new outbound endpoint goes: the configured VPC, else the first
/// configured client VPC, else this cluster's first client VPC.
fn outbound_vpc(config: &Config, d: &Desired) -> String {
    config
        .outbound_vpc_id
        .clone()
        .or_else(|| config.client_vpc_ids.first().cloned())
        .unwrap_or_else(|| d.association_vpcs[0].clone())
}

/// The VPC in which the observe step should list subnets for a new outbound
/// endpoint (the same choice as the planner's).
pub fn outbound_vpc_hint(config: &Config, obs: &Observation) -> Option<String> {
    let cluster = obs.cluster.as_ref()?;
    let tags = ClusterTags::parse(&cluster.name, &cluster.tags, config).ok()?;
    config
        .outbound_vpc_id
        .clone()
        .or_else(|| config.client_vpc_ids.first().cloned())
        .or_else(|| {
            client_vpc_ids(config, &tags, obs)
                .into_iter()
                .find(|id| Some(id) != cluster.vpc_id.as_ref())
        })
}

/// The client VPC ids the observe step should describe for this cluster.
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
    !(sized && outbound_served)
}

/// The cluster VPC's CIDR blocks outside the private ranges, as observed,
/// or as the state records them when the VPC was not read this time.
fn recorded_vpc_cidrs(config: &Config, obs: &Observation, vpc_id: &str) -> Vec<String> {
    match obs.vpcs.iter().find(|v| v.id == vpc_id) {
        Some(vpc) => vpc
            .cidrs
            .iter()
            .filter(|c| !crate::config::is_private(c))
            .map(|c| c.to_string())
            .collect(),
        None => previous_state(config, obs)
            .map(|doc| doc.vpc_cidrs)
            .unwrap_or_default(),
    }
}

/// Where the 443 rules of `cluster` go, or why there is no such group.
/// `cluster` mode: the group EKS made for the cluster (tagged
/// aws:eks:cluster-name), the only one of its groups the IAM policy lets us
/// change then; the additional groups are the user's. `tagged` mode: the
/// first additional group tagged eks-private-dns:api-rules=<owner>.
pub fn api_group(
    config: &Config,
    cluster: &ClusterView,
    obs: &Observation,
) -> Result<String, String> {
    use crate::config::{ApiRulesGroup, ENV_API_RULES_GROUP, TAG_API_RULES};
    match config.api_rules_group {
        ApiRulesGroup::Cluster => cluster
            .control_plane_group()
            .map(str::to_string)
            .ok_or_else(|| {
                let yours = match cluster.security_group_ids.first() {
                    Some(group) => format!(
                        " and will not change its additional group {group}, which is yours \
                         (tag it {TAG_API_RULES}={} and set {ENV_API_RULES_GROUP}=tagged to \
                         have the rules there)",
                        config.owner
                    ),
                    None => String::new(),
                };
                format!(
                    "cluster {} has no cluster security group made by EKS \
                     (resourcesVpcConfig.clusterSecurityGroupId); eks-private-dns admits TCP 443 \
                     only on that group (its IAM policy allows rules only on groups tagged \
                     aws:eks:cluster-name){yours}; nothing was made for the cluster",
                    cluster.name
                )
            }),
        ApiRulesGroup::Tagged => cluster
            .security_group_ids
            .iter()
            .find(|id| {
                obs.cluster_groups
                    .iter()
                    .any(|g| &g.id == *id && g.tags.get(TAG_API_RULES) == Some(&config.owner))
            })
            .cloned()
            .ok_or_else(|| {
                let groups = if cluster.security_group_ids.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has {}", cluster.security_group_ids.join(", "))
                };
                format!(
                    "cluster {} has no additional security group tagged {TAG_API_RULES}={} \
                     ({groups}); with {ENV_API_RULES_GROUP}=tagged the TCP 443 rules go only on \
                     such a group: tag one of the cluster's additional groups, or set \
                     {ENV_API_RULES_GROUP}=cluster; nothing was made for the cluster",
                    cluster.name, config.owner
                )
            }),
    }
}

pub fn client_vpc_hint(config: &Config, obs: &Observation) -> Vec<String> {
    let Some(cluster) = obs.cluster.as_ref() else {
        return Vec::new();
    };
    let tags = ClusterTags::parse(&cluster.name, &cluster.tags, config).unwrap_or_default();
    client_vpc_ids(config, &tags, obs)
}

/// Our live endpoints of a direction (optionally in one VPC), oldest first.
fn live_endpoints<'a>(
    owner: &Owner,
    obs: &'a Observation,
    direction: Direction,
    vpc_id: Option<&str>,
) -> Vec<&'a EndpointView> {
    let mut found: Vec<&EndpointView> = obs
        .endpoints
        .iter()
        .filter(|e| e.direction == direction && !e.is_going_away())
        .filter(|e| match owner.parse_creator_id(&e.creator_request_id) {
            Some(CreatorId::Inbound { vpc_id: v }) => {
                direction == Direction::Inbound && v == e.vpc_id
            }
            Some(CreatorId::Outbound { vpc_id: v }) => {
                direction == Direction::Outbound && v == e.vpc_id
            }
            _ => false,
        })
        .filter(|e| vpc_id.map(|v| e.vpc_id == v).unwrap_or(true))
        .collect();
    found.sort_by(|a, b| (&a.creation_time, &a.id).cmp(&(&b.creation_time, &b.id)));
    found
}

fn find_group<'a>(
    owner: &Owner,
    obs: &'a Observation,
    vpc_id: &str,
    role: &str,
) -> Option<&'a SecurityGroupView> {
    obs.security_groups
        .iter()
        .filter(|g| {
            owner.is_ours(&g.tags)
                && g.vpc_id == vpc_id
                && g.tags.get(TAG_ROLE).map(String::as_str) == Some(role)
        })
        .min_by(|a, b| a.id.cmp(&b.id))
}

fn rules_of<'a>(owner: &Owner, obs: &'a Observation, cluster: &str) -> Vec<&'a RuleView> {
    obs.rules
        .iter()
        .filter(|r| {
            matches!(owner.parse_creator_id(&r.creator_request_id),
                Some(CreatorId::Rule { cluster: c, .. }) if c == cluster)
        })
        .collect()
}

/// Disassociate a rule everywhere, then delete it.
fn remove_rule(obs: &Observation, rule: &RuleView, actions: &mut Vec<Action>) {
    let associations: Vec<&AssociationView> = obs
        .associations
        .iter()
        .filter(|a| a.rule_id == rule.id)
        .collect();
    for association in associations
        .iter()
        .filter(|a| a.status != AssociationStatus::Deleting)
    {
        actions.push(Action::DisassociateRule {
            rule_id: rule.id.clone(),
            rule_arn: rule.arn.clone(),
            vpc_id: association.vpc_id.clone(),
        });
    }
    if !rule.status.is_going_away() {
        actions.push(Action::DeleteRule {
            rule_id: rule.id.clone(),
            rule_arn: rule.arn.clone(),
            domain: rule.domain.clone(),
            after_associations: !associations.is_empty(),
        });
    }
}

/// Delete an endpoint, after the rules (any status) that use it.
fn delete_endpoint(endpoint: &EndpointView, rules: &[RuleView]) -> Action {
    Action::DeleteEndpoint {
        endpoint_id: endpoint.id.clone(),
        endpoint_arn: endpoint.arn.clone(),
        direction: endpoint.direction,
        vpc_id: endpoint.vpc_id.clone(),
        after_rules: rules
            .iter()
            .any(|r| r.endpoint_id.as_deref() == Some(endpoint.id.as_str())),
    }
}

/// Delete one of our groups, after the endpoints (any status) that use it.
fn delete_group(group: &SecurityGroupView, role: &str, endpoints: &[EndpointView]) -> Action {
    Action::DeleteSecurityGroup {
        group_id: group.id.clone(),
        role: role.to_string(),
        vpc_id: group.vpc_id.clone(),
        after_interfaces: endpoints
            .iter()
            .any(|e| e.security_group_ids.contains(&group.id)),
    }
}

/// Make the rules we own on `group` (those `mine` selects) grant exactly
/// `wanted`. A permission that a rule we do not own already grants is left to
/// that rule. Returns the ids of our rules that stay.
#[allow(clippy::too_many_arguments)]
fn reconcile_ingress(
    owner: &Owner,
    obs: &Observation,
    group: &GroupRef,
    wanted: &[Permission],
    mine: impl Fn(&SecurityGroupRuleView) -> bool,
    cluster_arn: Option<&String>,
    vpc_id: &str,
    actions: &mut Vec<Action>,
) -> Vec<String> {
    let on_group: Vec<&SecurityGroupRuleView> = match group {
        GroupRef::Existing(id) => obs
            .security_group_rules
            .iter()
            .filter(|r| &r.group_id == id && !r.is_egress)
            .collect(),
        GroupRef::New(_) => Vec::new(),
    };
    let (ours, others): (Vec<&SecurityGroupRuleView>, Vec<&SecurityGroupRuleView>) = on_group
        .into_iter()
        .partition(|r| owner.is_ours(&r.tags) && mine(r));
    let mut kept = Vec::new();
    let mut covered: BTreeSet<Permission> = BTreeSet::new();
    let mut revoke: Vec<&SecurityGroupRuleView> = Vec::new();
    for rule in ours {
        match rule.as_permission() {
            Some(p) if wanted.contains(&p) && !covered.contains(&p) => {
                covered.insert(p);
                kept.push(rule.id.clone());
            }
            _ => revoke.push(rule),
        }
    }
    let missing: Vec<Permission> = wanted
        .iter()
        .filter(|p| !covered.contains(p))
        .filter(|p| !others.iter().any(|r| r.admits(p)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        actions.push(Action::AuthorizeIngress {
            group: group.clone(),
            permissions: missing,
            cluster_arn: cluster_arn.cloned(),
            vpc_id: vpc_id.to_string(),
        });
    }
    revoke_grouped(&revoke, actions);
    kept.sort();
    kept
}

fn revoke_grouped(rules: &[&SecurityGroupRuleView], actions: &mut Vec<Action>) {
    let mut by_group: BTreeMap<&str, Vec<&SecurityGroupRuleView>> = BTreeMap::new();
    for rule in rules {
        by_group
            .entry(rule.group_id.as_str())
            .or_default()
            .push(rule);
    }
    for (group_id, rules) in by_group {
        actions.push(Action::RevokeIngress {
            group_id: group_id.to_string(),
            rule_ids: rules.iter().map(|r| r.id.clone()).collect(),
            permissions: rules
                .iter()
                .map(|r| match r.as_permission() {
                    Some(p) => p.to_string(),
                    None => r.id.clone(),
                })
                .collect(),
        });
    }
}

/// Choose `count` subnets of `vpc_id`, spread over distinct AZs first
/// (round-robin by AZ, then by subnet id), deterministic.
pub fn pick_subnets(subnets: &[SubnetView], vpc_id: &str, count: usize) -> Vec<String> {
    let mut by_az: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for subnet in subnets.iter().filter(|s| s.vpc_id == vpc_id) {
        by_az
            .entry(subnet.az.as_str())
            .or_default()
            .push(subnet.id.as_str());
    }
    for ids in by_az.values_mut() {
        ids.sort();
        ids.dedup();
    }
    let mut order = Vec::new();
    let depth = by_az.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..depth {
        for ids in by_az.values() {
            if let Some(id) = ids.get(i) {
                order.push(id.to_string());
            }
        }
    }
    if order.is_empty() {
        return order;
    }
    (0..count).map(|i| order[i % order.len()].clone()).collect()
}

/// Bring an existing inbound endpoint to the configured number of live
/// IPs, replacing the ones AWS reports failed (added first, removed once the
/// new ones are in: an endpoint keeps at least one attached address,
/// RSLVR-00506). Returns whether its live address set changes.
fn plan_endpoint_ips(
    config: &Config,
    obs: &Observation,
    endpoint: &EndpointView,
    m: &mut Planned,
) -> bool {
    let Some(_) = &endpoint.ips else {
        note_endpoint_status(endpoint, m, None);
        return false;
    };
    let live: Vec<&EndpointIp> = endpoint.live_ips().collect();
    let failed: Vec<&EndpointIp> = endpoint.failed_ips().collect();
    let endpoint_ready = endpoint.status.accepts_ip_changes();
    let wanted = config.inbound_ips as usize;
    let az_of = |subnet: &str| {
        obs.cluster_subnets
            .iter()
            .find(|s| s.id == subnet)
            .map(|s| s.az.clone())
            .unwrap_or_else(|| format!("?{subnet}"))
    };
    let mut changed = false;
    let mut removed: Vec<EndpointIpRef> = Vec::new();
    if live.len() < wanted {
        let used_azs: BTreeSet<String> = live.iter().map(|ip| az_of(&ip.subnet_id)).collect();
        let mut candidates: Vec<&SubnetView> = obs
            .cluster_subnets
            .iter()
            .filter(|s| s.vpc_id == endpoint.vpc_id)
            .collect();
        candidates.sort_by(|a, b| (&a.az, &a.id).cmp(&(&b.az, &b.id)));
        let mut chosen: Vec<String> = Vec::new();
        let mut azs_taken = used_azs.clone();
        // New AZs first, one subnet each.
        for subnet in &candidates {
            if chosen.len() + live.len() >= wanted {
                break;
            }
            if !azs_taken.contains(&subnet.az) {
                azs_taken.insert(subnet.az.clone());
                chosen.push(subnet.id.clone());
            }
        }
        // Then any subnet, round-robin.
        let all = pick_subnets(&obs.cluster_subnets, &endpoint.vpc_id, wanted * 2);
        let mut i = 0;
        while chosen.len() + live.len() < wanted && !all.is_empty() {
            chosen.push(all[i % all.len()].clone());
            i += 1;
        }
        if !chosen.is_empty() {
            m.actions.push(Action::AddEndpointIps {
                endpoint_id: endpoint.id.clone(),
                subnet_ids: chosen,
                endpoint_ready,
            });
            changed = true;
        }
    } else if live.len() > wanted {
        // Drop from the most crowded AZ first, newest-looking id last.
        let mut remaining: Vec<&EndpointIp> = live.clone();
        while remaining.len() > wanted {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for ip in &remaining {
                *counts.entry(az_of(&ip.subnet_id)).or_default() += 1;
            }
            let (index, _) = remaining
                .iter()
                .enumerate()
                .max_by(|(_, a), (_, b)| {
                    let ka = (counts[&az_of(&a.subnet_id)], &a.ip_id);
                    let kb = (counts[&az_of(&b.subnet_id)], &b.ip_id);
                    ka.cmp(&kb)
                })
                .expect("remaining is not empty");
            removed.push(ip_ref(remaining.remove(index)));
        }
        changed = true;
    }
    for ip in &failed {
        m.problems.push(Problem {
            resource: format!(
                "IP {} of inbound endpoint {}",
                ip.ip.as_deref().unwrap_or(&ip.ip_id),
                endpoint.id
            ),
            status: ip.status.to_string(),
            message: ip.status_message.clone(),
            repair: Some("a new IP takes its place and it is removed".into()),
        });
        removed.push(ip_ref(ip));
    }
    if !removed.is_empty() {
        m.actions.push(Action::RemoveEndpointIps {
            endpoint_id: endpoint.id.clone(),
            ips: removed,
            endpoint_ready,
        });
    }
    let repair = (!failed.is_empty()).then(|| "its failed IPs are replaced".to_string());
    note_endpoint_status(endpoint, m, repair);
    changed
}

fn ip_ref(ip: &EndpointIp) -> EndpointIpRef {
    EndpointIpRef {
        ip_id: ip.ip_id.clone(),
        subnet_id: ip.subnet_id.clone(),
        ip: ip.ip.clone(),
    }
}

/// Delete our outbound endpoints (and their groups) that no remaining rule
/// of ours uses. The configured endpoint is never ours to delete.
fn collect_unused_outbound(
    config: &Config,
    owner: &Owner,
    obs: &Observation,
    in_use: Option<&str>,
    removed_rules: &BTreeSet<String>,
    actions: &mut Vec<Action>,
) {
    for endpoint in live_endpoints(owner, obs, Direction::Outbound, None) {
        if Some(endpoint.id.as_str()) == in_use
            || config.outbound_endpoint_id.as_deref() == Some(endpoint.id.as_str())
        {
            continue;
        }
        let used = obs.rules.iter().any(|r| {
            r.endpoint_id.as_deref() == Some(endpoint.id.as_str())
                && !removed_rules.contains(&r.id)
                && !r.status.is_going_away()
        });
        if !used {
            actions.push(delete_endpoint(endpoint, &obs.rules));
            if let Some(group) = find_group(owner, obs, &endpoint.vpc_id, ROLE_OUTBOUND) {
                if endpoint.security_group_ids.contains(&group.id) {
                    actions.push(delete_group(group, ROLE_OUTBOUND, &obs.endpoints));
                }
            }
        }
    }
}

/// In a teardown that leaves no rule of ours: an outbound group that no
/// endpoint uses is left over (a run stopped between deleting the endpoint
/// and its group), and goes too.
fn collect_orphan_outbound_groups(
    owner: &Owner,
    obs: &Observation,
    removed_rules: &BTreeSet<String>,
    actions: &mut Vec<Action>,
) {
    let rules_left = obs
        .rules
        .iter()
        .any(|r| !removed_rules.contains(&r.id) && !r.status.is_going_away());
    if rules_left {
        return;
    }
    for group in obs.security_groups.iter().filter(|g| {
        owner.is_ours(&g.tags) && g.tags.get(TAG_ROLE).map(String::as_str) == Some(ROLE_OUTBOUND)
    }) {
        let used = obs
            .endpoints
            .iter()
            .any(|e| e.security_group_ids.contains(&group.id) && !e.is_going_away());
        let planned = actions.iter().any(
            |a| matches!(a, Action::DeleteSecurityGroup { group_id, .. } if *group_id == group.id),
        );
        if !used && !planned {
            actions.push(delete_group(group, ROLE_OUTBOUND, &obs.endpoints));
        }
    }
}

/// Remove everything we made for this cluster, and the shared pieces that
/// nothing else uses any more.
fn teardown(config: &Config, owner: &Owner, obs: &Observation) -> Vec<Action> {
    let mut actions = Vec::new();
    let state = previous_state(config, obs);
    let arn = obs
        .cluster
        .as_ref()
        .map(|c| c.arn.clone())
        .or_else(|| state.as_ref().map(|s| s.cluster_arn.clone()))
        .or_else(|| obs.hinted_arn.clone());
    let vpc_id = obs
        .cluster
        .as_ref()
        .and_then(|c| c.vpc_id.clone())
        .or_else(|| state.as_ref().map(|s| s.vpc_id.clone()));

    // Rules and associations.
    let rules = rules_of(owner, obs, &obs.cluster_name);
    for rule in &rules {
        remove_rule(obs, rule, &mut actions);
    }
    let removed_rules: BTreeSet<String> = rules.iter().map(|r| r.id.clone()).collect();

    // 443 rules of this cluster, wherever they are.
    let suffix = format!(":cluster/{}", obs.cluster_name);
    let api_rules: Vec<&SecurityGroupRuleView> = obs
        .security_group_rules
        .iter()
        .filter(|r| owner.is_ours(&r.tags))
        .filter(|r| match (r.tags.get(TAG_CLUSTER), &arn) {
            (Some(tag), Some(arn)) => tag == arn,
            (Some(tag), None) => tag.ends_with(&suffix),
            (None, _) => false,
        })
        .collect();
    revoke_grouped(&api_rules, &mut actions);

    // The VPC's inbound endpoint, when no other cluster is recorded as using it.
    if let Some(vpc_id) = &vpc_id {
        let others = obs
            .registrations
            .iter()
            .any(|r| r.cluster != obs.cluster_name);
        if !others {
            let inbound = live_endpoints(owner, obs, Direction::Inbound, Some(vpc_id));
            for endpoint in &inbound {
                actions.push(delete_endpoint(endpoint, &obs.rules));
            }
            if let Some(group) = find_group(owner, obs, vpc_id, ROLE_INBOUND) {
                actions.push(delete_group(group, ROLE_INBOUND, &obs.endpoints));
            }
        }
    }

    collect_unused_outbound(config, owner, obs, None, &removed_rules, &mut actions);
    collect_orphan_outbound_groups(owner, obs, &removed_rules, &mut actions);

    // The record goes last: until then, a crash leaves it to find the rest.
    let names: Vec<String> = obs.parameters.iter().map(|p| p.name.clone()).collect();
    if !names.is_empty() {
        actions.push(Action::DeleteParameters { names });
    }
    actions
}

/// The state parameter of this cluster, when it parses.
pub fn previous_state(config: &Config, obs: &Observation) -> Option<StateDoc> {
    let name = parameter_name(&config.ssm_prefix, &obs.cluster_name, PARAM_STATE);
    obs.parameters
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| serde_json::from_str(&p.value).ok())
}

pub const PARAM_ENDPOINT: &str = "endpoint";
pub const PARAM_INBOUND_IPS: &str = "inbound-ips";
pub const PARAM_INBOUND_IPV6: &str = "inbound-ipv6";
pub const PARAM_STATE: &str = "state";
/// Under the prefix, names that start with this hold the deployment's own
/// records, not a cluster's: no EKS cluster name starts with it.
pub const DEPLOYMENT_PREFIX: &str = "_";

pub fn parameter_name(prefix: &str, cluster: &str, leaf: &str) -> String {
    format!("{prefix}/{cluster}/{leaf}")
}

/// The parameter values, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedParameters {
    /// (name, value, type) in write order; the state document is last.
    pub values: Vec<(String, String, &'static str)>,
    pub state: StateDoc,
    /// Parameters of ours that should not exist (inbound-ipv6 when the
    /// endpoint has none).
    pub obsolete: Vec<String>,
}

impl RenderedParameters {
    /// Whether any parameter differs from `current`. The state document is
    /// compared without its time stamp.
    pub fn needs_write(&self, current: &BTreeMap<String, String>) -> bool {
        self.changed(current).next().is_some()
            || self.obsolete.iter().any(|n| current.contains_key(n))
    }

    pub fn changed<'a>(
        &'a self,
        current: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a (String, String, &'static str)> + 'a {
        self.values.iter().filter(move |(name, value, _)| {
            let now = current.get(name);
            if name.ends_with(&format!("/{PARAM_STATE}")) {
                match now.and_then(|v| serde_json::from_str::<StateDoc>(v).ok()) {
                    Some(doc) => !doc.same_content(&self.state),
                    None => true,
                }
            } else {
                now != Some(value)
            }
        })
    }
}

impl Publication {
    /// Render the parameters. `updated_at` is the time stamp for a state
    /// document that changes; None when only comparing. Returns None while
    /// a part is still unknown.
    pub fn render(&self, updated_at: Option<&str>) -> Option<RenderedParameters> {
        let inbound_endpoint_id = self.inbound_endpoint_id.clone()?;
        let mut ips = self.inbound_ips.clone()?;
        if ips.is_empty() {
            return None;
        }
        ips.sort_by_key(|ip| ip_sort_key(ip));
        let mut ipv6 = self.inbound_ipv6.clone().unwrap_or_default();
        ipv6.sort();
        if self.uses_outbound && self.outbound_endpoint_id.is_none() {
            return None;
        }
        if self.uses_rule && self.rule_id.is_none() {
            return None;
        }
        let mut associated = self.associated_vpcs.clone();
        associated.sort();
        let mut rule_ids = self.control_plane_rule_ids.clone();
        rule_ids.sort();
        let state_name = parameter_name(&self.prefix, &self.cluster, PARAM_STATE);
        let previous_stamp = self
            .current
            .get(&state_name)
            .and_then(|v| serde_json::from_str::<StateDoc>(v).ok())
            .map(|d| d.updated_at);
        let state = StateDoc {
            schema: STATE_SCHEMA,
            cluster: self.cluster.clone(),
            cluster_arn: self.cluster_arn.clone(),
            vpc_id: self.vpc_id.clone(),
            endpoint: self.endpoint_host.clone(),
            inbound_endpoint_id,
            outbound_endpoint_id: self.outbound_endpoint_id.clone(),
            rule_id: self.rule_id.clone(),
            associated_vpcs: associated,
            control_plane_security_group_id: self.control_plane_group_id.clone(),
            control_plane_rule_ids: rule_ids,
            allowed_cidrs: self.allowed_cidrs.clone(),
            vpc_cidrs: self.vpc_cidrs.clone(),
            settings_digest: Some(self.settings_digest.clone()),
            updated_at: updated_at
                .map(str::to_string)
                .or(previous_stamp)
                .unwrap_or_default(),
        };
        let name = |leaf| parameter_name(&self.prefix, &self.cluster, leaf);
        let mut values = vec![
            (name(PARAM_ENDPOINT), self.endpoint_host.clone(), "String"),
            (name(PARAM_INBOUND_IPS), ips.join(","), "StringList"),
        ];
        let mut obsolete = Vec::new();
        if ipv6.is_empty() {
            obsolete.push(name(PARAM_INBOUND_IPV6));
        } else {
            values.push((name(PARAM_INBOUND_IPV6), ipv6.join(","), "StringList"));
        }
        let state_json = serde_json::to_string(&state).expect("state serializes");
        values.push((name(PARAM_STATE), state_json, "String"));
        Some(RenderedParameters {
            values,
            state,
            obsolete,
        })
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
