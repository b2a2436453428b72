//! The action vocabulary: what a plan asks the apply step to do, in which
//! phase, and how it reads to people.

use serde::Serialize;

use super::*;

/// A security group by id, or the one this plan creates for a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupRef {
    Existing(String),
    /// The group this plan makes for the endpoint of that direction.
    New(Direction),
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
    /// Its IPv4 and IPv6 addresses (`rule_targets`), for an outbound
    /// endpoint that has IPv6 ones.
    InboundEndpointIpsAndIpv6,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    CreateSecurityGroup {
        /// The account it acts in.
        account: Account,
        role: Direction,
        vpc_id: String,
        name: String,
    },
    AuthorizeIngress {
        /// The account it acts in.
        account: Account,
        group: GroupRef,
        permissions: Vec<Permission>,
        /// The cluster ARN for 443 rules; None for the shared 53 rules.
        cluster_arn: Option<String>,
        vpc_id: String,
    },
    RevokeIngress {
        /// The account it acts in.
        account: Account,
        group_id: String,
        rule_ids: Vec<String>,
        permissions: Vec<String>,
    },
    CreateEndpoint {
        /// The account it acts in.
        account: Account,
        direction: Direction,
        vpc_id: String,
        group: GroupRef,
        subnet_ids: Vec<String>,
        /// The address to ask for in each subnet (same order; None: AWS
        /// picks): the inbound addresses published before, where free.
        ips: Vec<Option<String>>,
        endpoint_type: EndpointType,
        /// For a dual-stack endpoint, the IPv6 address to ask for in each
        /// subnet, as `ips` (empty: AWS picks every one).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ipv6s: Vec<Option<String>>,
    },
    /// UpdateResolverEndpoint between IPV4 and DUALSTACK (AWS gives each IP
    /// an IPv6 address from its subnet, or takes them away); waits, as IP
    /// changes do, until the endpoint takes changes.
    ChangeEndpointType {
        /// The account it acts in.
        account: Account,
        endpoint_id: String,
        from: EndpointType,
        to: EndpointType,
        endpoint_ready: bool,
    },
    /// IP changes wait until the endpoint is OPERATIONAL (or ACTION_NEEDED,
    /// which they repair); `endpoint_ready` says it was when observed.
    AddEndpointIps {
        /// The account it acts in.
        account: Account,
        endpoint_id: String,
        subnet_ids: Vec<String>,
        endpoint_ready: bool,
    },
    RemoveEndpointIps {
        /// The account it acts in.
        account: Account,
        endpoint_id: String,
        ips: Vec<EndpointIpRef>,
        endpoint_ready: bool,
    },
    CreateRule {
        /// The account it acts in.
        account: Account,
        cluster: String,
        cluster_arn: String,
        domain: String,
        targets: Targets,
        endpoint: EndpointRef,
    },
    UpdateRule {
        /// The account it acts in.
        account: Account,
        rule_id: String,
        rule_arn: String,
        domain: String,
        targets: Targets,
        endpoint: EndpointRef,
    },
    /// The rule shared with `principals` (accounts) through the
    /// deployment's RAM resource share (one per owner and region, made when
    /// missing), so that they can associate it with their VPCs.
    ShareRule {
        /// The account it acts in (the deployment's: the rule's owner).
        account: Account,
        rule: RuleRef,
        /// Known when the rule exists already.
        rule_arn: Option<String>,
        domain: String,
        principals: Vec<String>,
    },
    /// From the VPC's account; where the rule is another account's and
    /// shared by invitation, the invitation is accepted first.
    AssociateRule {
        /// The account it acts in.
        account: Account,
        rule: RuleRef,
        /// Known when the rule exists already.
        rule_arn: Option<String>,
        vpc_id: String,
        cluster: String,
    },
    DisassociateRule {
        /// The account it acts in.
        account: Account,
        rule_id: String,
        rule_arn: String,
        vpc_id: String,
    },
    /// A rule goes once no VPC is associated with it; with
    /// `after_associations`, some was when observed (or is disassociated by
    /// this plan), and the apply step waits until they are gone.
    DeleteRule {
        /// The account it acts in.
        account: Account,
        rule_id: String,
        rule_arn: String,
        domain: String,
        after_associations: bool,
        /// Shared with other accounts: taken out of the share first.
        shared: bool,
    },
    /// An endpoint goes once no rule uses it (RSLVR-00600); with
    /// `after_rules`, some rule did when observed.
    DeleteEndpoint {
        /// The account it acts in.
        account: Account,
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
        /// The account it acts in.
        account: Account,
        group_id: String,
        role: Direction,
        vpc_id: String,
        after_interfaces: bool,
    },
    /// Accounts taken out of the deployment's RAM share: none of their
    /// VPCs uses a rule of ours any more.
    UnshareWith {
        /// The account it acts in (the deployment's: the share's owner).
        account: Account,
        share_arn: String,
        principals: Vec<String>,
    },
    /// The deployment's RAM share, once no rule of ours is left.
    DeleteShare {
        /// The account it acts in (the deployment's).
        account: Account,
        share_arn: String,
    },
    PublishParameters(Box<Publication>),
    DeleteParameters {
        names: Vec<String>,
        /// The Forwarders Changed event that says the cluster's forwarders
        /// are gone, put before the record goes (None: nothing was
        /// announced, or this is not a cluster's record).
        announce: Option<Box<crate::ssm::ForwardersChanged>>,
    },
}

/// What an action does to what it touches, as the metrics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Something made: a group, an ingress rule, an endpoint, a forward
    /// rule, an association.
    Create,
    /// Something changed in place: a rule's targets, an endpoint's
    /// addresses, the published parameters.
    Change,
    /// Something taken away.
    Delete,
}

impl ActionKind {
    pub const ALL: [ActionKind; 3] = [ActionKind::Create, ActionKind::Change, ActionKind::Delete];
}

/// Where the parameters live: always the deployment's own account.
static PARAMETERS_ACCOUNT: Account = Account::Home;

impl Action {
    /// The account it acts in: where the resource it makes, changes or
    /// takes away lives (the apply step acts there with that account's
    /// clients).
    pub fn account(&self) -> &Account {
        match self {
            Action::CreateSecurityGroup { account, .. }
            | Action::AuthorizeIngress { account, .. }
            | Action::RevokeIngress { account, .. }
            | Action::CreateEndpoint { account, .. }
            | Action::ChangeEndpointType { account, .. }
            | Action::AddEndpointIps { account, .. }
            | Action::RemoveEndpointIps { account, .. }
            | Action::CreateRule { account, .. }
            | Action::UpdateRule { account, .. }
            | Action::ShareRule { account, .. }
            | Action::AssociateRule { account, .. }
            | Action::DisassociateRule { account, .. }
            | Action::DeleteRule { account, .. }
            | Action::DeleteEndpoint { account, .. }
            | Action::DeleteSecurityGroup { account, .. }
            | Action::UnshareWith { account, .. }
            | Action::DeleteShare { account, .. } => account,
            Action::PublishParameters(_) | Action::DeleteParameters { .. } => &PARAMETERS_ACCOUNT,
        }
    }
}

impl Action {
    /// Whether it takes something away or shrinks it: what a run with
    /// settings other than the recorded ones holds back (`Plan::hold_back`).
    /// Exhaustive, so that a new action must say.
    pub fn takes_away(&self) -> bool {
        match self {
            Action::RevokeIngress { .. }
            | Action::RemoveEndpointIps { .. }
            | Action::DisassociateRule { .. }
            | Action::DeleteRule { .. }
            | Action::DeleteEndpoint { .. }
            | Action::DeleteSecurityGroup { .. }
            | Action::UnshareWith { .. }
            | Action::DeleteShare { .. }
            | Action::DeleteParameters { .. } => true,
            // DUALSTACK to IPV4 takes the IPv6 addresses away.
            Action::ChangeEndpointType { from, to, .. } => from.has_ipv6() && !to.has_ipv6(),
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeIngress { .. }
            | Action::CreateEndpoint { .. }
            | Action::AddEndpointIps { .. }
            | Action::CreateRule { .. }
            | Action::UpdateRule { .. }
            | Action::ShareRule { .. }
            | Action::AssociateRule { .. }
            | Action::PublishParameters(_) => false,
        }
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeIngress { .. }
            | Action::CreateEndpoint { .. }
            | Action::CreateRule { .. }
            | Action::AssociateRule { .. } => ActionKind::Create,
            Action::AddEndpointIps { .. }
            | Action::ChangeEndpointType { .. }
            | Action::RemoveEndpointIps { .. }
            | Action::UpdateRule { .. }
            | Action::ShareRule { .. }
            | Action::PublishParameters(_) => ActionKind::Change,
            Action::RevokeIngress { .. }
            | Action::DisassociateRule { .. }
            | Action::DeleteRule { .. }
            | Action::DeleteEndpoint { .. }
            | Action::DeleteSecurityGroup { .. }
            | Action::UnshareWith { .. }
            | Action::DeleteShare { .. }
            | Action::DeleteParameters { .. } => ActionKind::Delete,
        }
    }
}

/// The apply order, earliest first: what an action needs is made in an
/// earlier phase, and what it uses goes in a later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Our endpoint security groups.
    Groups,
    /// Ingress rules, endpoints and the addresses they gain.
    Endpoints,
    /// Forward rules made or pointed elsewhere.
    Rules,
    /// Rules shared with the accounts that associate them.
    Share,
    /// Rules associated and disassociated, ingress revoked.
    Associations,
    /// Rules deleted, endpoint addresses removed.
    RetireRules,
    RetireEndpoints,
    RetireGroups,
    /// The SSM record, written or removed last.
    Parameters,
}

impl Phase {
    /// Whether its actions need the inbound endpoint's addresses as the
    /// earlier phases left them (a rule's targets, the record of them).
    pub fn reads_inbound_ips(self) -> bool {
        matches!(self, Phase::Rules | Phase::Parameters)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointIpRef {
    pub ip_id: String,
    pub subnet_id: String,
    pub ip: Option<String>,
}

impl Action {
    /// When it runs: after every action of an earlier phase.
    pub fn phase(&self) -> Phase {
        match self {
            Action::CreateSecurityGroup { .. } => Phase::Groups,
            Action::AuthorizeIngress { .. }
            | Action::CreateEndpoint { .. }
            | Action::ChangeEndpointType { .. }
            | Action::AddEndpointIps { .. } => Phase::Endpoints,
            Action::CreateRule { .. } | Action::UpdateRule { .. } => Phase::Rules,
            Action::ShareRule { .. } => Phase::Share,
            Action::AssociateRule { .. }
            | Action::DisassociateRule { .. }
            | Action::RevokeIngress { .. } => Phase::Associations,
            Action::DeleteRule { .. }
            | Action::RemoveEndpointIps { .. }
            | Action::UnshareWith { .. }
            | Action::DeleteShare { .. } => Phase::RetireRules,
            Action::DeleteEndpoint { .. } => Phase::RetireEndpoints,
            Action::DeleteSecurityGroup { .. } => Phase::RetireGroups,
            Action::PublishParameters(_) | Action::DeleteParameters { .. } => Phase::Parameters,
        }
    }
}
