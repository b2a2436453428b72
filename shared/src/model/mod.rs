//! What the observe step sees, in plain data the planner can reason about
//! without I/O. The AWS adapters translate SDK types into these, each
//! resource with the account it lives in (the parameters, always the
//! deployment's own, and subnets, always their VPC's, excepted).

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use crate::status::{AssociationStatus, EndpointStatus, IpStatus, RuleStatus};

pub type Tags = BTreeMap<String, String>;

mod account;

pub use account::*;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClusterStatus {
    Creating,
    Active,
    Updating,
    Deleting,
    Failed,
    Pending,
    #[serde(untagged)]
    Other(String),
}

impl ClusterStatus {
    pub fn parse(value: &str) -> ClusterStatus {
        match value {
            "CREATING" => ClusterStatus::Creating,
            "ACTIVE" => ClusterStatus::Active,
            "UPDATING" => ClusterStatus::Updating,
            "DELETING" => ClusterStatus::Deleting,
            "FAILED" => ClusterStatus::Failed,
            "PENDING" => ClusterStatus::Pending,
            other => ClusterStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ClusterStatus::Creating => "CREATING",
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Updating => "UPDATING",
            ClusterStatus::Deleting => "DELETING",
            ClusterStatus::Failed => "FAILED",
            ClusterStatus::Pending => "PENDING",
            ClusterStatus::Other(s) => s,
        }
    }

    /// EKS is still working on the cluster; its final shape is not known yet.
    pub fn is_in_progress(&self) -> bool {
        matches!(
            self,
            ClusterStatus::Creating | ClusterStatus::Updating | ClusterStatus::Pending
        )
    }
}

/// DescribeCluster, reduced to what matters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// The account it runs in.
    pub account: Account,
    pub name: String,
    pub arn: String,
    pub status: ClusterStatus,
    /// The endpoint host name: lower case, no scheme, no trailing dot or slash.
    pub endpoint_host: Option<String>,
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub cluster_security_group_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub public_access: bool,
    pub private_access: bool,
    pub ipv6: bool,
    pub tags: Tags,
    /// While UPDATING: the endpoint access the update in progress sets
    /// (DescribeUpdate's EndpointPrivateAccess / EndpointPublicAccess), so
    /// that the plumbing can be built before the update ends.
    pub access_update: Option<AccessUpdate>,
}

/// The endpoint access an update in progress sets; None: left as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessUpdate {
    pub private: Option<bool>,
    pub public: Option<bool>,
}

impl ClusterView {
    /// The endpoint access (private, public) the cluster will have once the
    /// update in progress ends, or has now.
    pub fn target_access(&self) -> (bool, bool) {
        let update = self.access_update.unwrap_or_default();
        (
            update.private.unwrap_or(self.private_access),
            update.public.unwrap_or(self.public_access),
        )
    }
}

impl ClusterView {
    /// The endpoint host name and the VPC, or why the cluster has none.
    pub fn host_and_vpc(&self) -> Result<(String, String), String> {
        let host = self
            .endpoint_host
            .clone()
            .ok_or_else(|| format!("cluster {} reports no endpoint host name", self.name))?;
        let vpc = self
            .vpc_id
            .clone()
            .ok_or_else(|| format!("cluster {} reports no VPC", self.name))?;
        Ok((host, vpc))
    }

    /// Where the 443 rules go: the cluster security group EKS made (tagged
    /// aws:eks:cluster-name). Never one of the additional groups, which are
    /// the user's and which the deployment's IAM policy may not change.
    pub fn control_plane_group(&self) -> Option<&str> {
        self.cluster_security_group_id.as_deref()
    }
}

/// "https://ABC.gr7.eu-west-1.eks.amazonaws.com/" -> "abc.gr7.eu-west-1.eks.amazonaws.com".
pub fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = endpoint
        .trim()
        .strip_prefix("https://")
        .or_else(|| endpoint.trim().strip_prefix("http://"))
        .unwrap_or(endpoint.trim());
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then_some(host)
}

/// A domain name as compared here: lower case, no trailing dot.
pub fn normalize_domain(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcView {
    pub account: Account,
    pub id: String,
    pub cidrs: Vec<IpNet>,
    pub tags: Tags,
}

/// The cluster VPC's DNS attributes (DescribeVpcAttribute, one per call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VpcDns {
    pub support: bool,
    pub hostnames: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetView {
    pub id: String,
    pub vpc_id: String,
    pub az: String,
    /// The subnet's IPv4 block (None when AWS did not say).
    pub cidr: Option<IpNet>,
    /// Its associated IPv6 block, if it has one: a dual-stack endpoint's
    /// addresses go only in subnets with one.
    pub ipv6_cidr: Option<IpNet>,
}

/// ResolverEndpointType: the IP stack of every address of an endpoint.
/// The product makes IPV4 and DUALSTACK endpoints; IPV6 is read (a
/// configured outbound endpoint may be one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum EndpointType {
    #[default]
    #[serde(rename = "IPV4")]
    Ipv4,
    #[serde(rename = "DUALSTACK")]
    DualStack,
    #[serde(rename = "IPV6")]
    Ipv6,
}

impl EndpointType {
    /// What AWS said; IPV4, the API's default, when it said nothing.
    pub fn parse(value: &str) -> Self {
        match value {
            "DUALSTACK" => EndpointType::DualStack,
            "IPV6" => EndpointType::Ipv6,
            _ => EndpointType::Ipv4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::Ipv4 => "IPV4",
            EndpointType::DualStack => "DUALSTACK",
            EndpointType::Ipv6 => "IPV6",
        }
    }

    /// Whether its addresses include IPv6 ones (it can reach IPv6 targets).
    pub fn has_ipv6(self) -> bool {
        self != EndpointType::Ipv4
    }
}

impl std::fmt::Display for EndpointType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// The API's value (ResolverEndpointDirection).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "INBOUND",
            Direction::Outbound => "OUTBOUND",
        }
    }

    /// The word for it in our tags (eks-private-dns:role), names and
    /// sentences: "inbound", "outbound".
    pub fn word(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// The direction a role tag's value names.
    pub fn of_word(word: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.word() == word)
    }
}

/// In sentences: "inbound", "outbound".
impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointIp {
    pub ip_id: String,
    pub subnet_id: String,
    pub ip: Option<String>,
    pub ipv6: Option<String>,
    pub status: IpStatus,
    pub status_message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointView {
    pub account: Account,
    pub id: String,
    pub arn: String,
    pub direction: Direction,
    pub vpc_id: String,
    pub security_group_ids: Vec<String>,
    pub status: EndpointStatus,
    pub status_message: String,
    pub creator_request_id: String,
    pub name: String,
    pub creation_time: String,
    pub ip_count: i32,
    pub endpoint_type: EndpointType,
    /// Listed only for the endpoints the planner needs them for.
    pub ips: Option<Vec<EndpointIp>>,
}

impl EndpointView {
    pub fn is_going_away(&self) -> bool {
        self.status.is_going_away()
    }

    /// The live IPs (see `IpStatus::is_live`).
    pub fn live_ips(&self) -> impl Iterator<Item = &EndpointIp> {
        self.ips.iter().flatten().filter(|ip| ip.status.is_live())
    }

    /// The IPs that AWS reports failed.
    pub fn failed_ips(&self) -> impl Iterator<Item = &EndpointIp> {
        self.ips.iter().flatten().filter(|ip| ip.status.is_failed())
    }

    /// The endpoint's live IPv4 addresses, sorted.
    pub fn ipv4s(&self) -> Vec<String> {
        ipv4s_of(self.live_ips())
    }

    /// The endpoint's live IPv6 addresses, sorted.
    pub fn ipv6s(&self) -> Vec<String> {
        ipv6s_of(self.live_ips())
    }

    /// Whether it has IPv6 addresses (it reaches IPv6 targets).
    pub fn has_ipv6(&self) -> bool {
        self.endpoint_type.has_ipv6()
    }
}

/// The IPv4 addresses of `ips`, sorted numerically, once each.
pub fn ipv4s_of<'a>(ips: impl IntoIterator<Item = &'a EndpointIp>) -> Vec<String> {
    let mut list: Vec<String> = ips.into_iter().filter_map(|ip| ip.ip.clone()).collect();
    list.sort_by_key(|ip| ip_sort_key(ip));
    list.dedup();
    list
}

/// The IPv6 addresses of `ips`, sorted, once each.
pub fn ipv6s_of<'a>(ips: impl IntoIterator<Item = &'a EndpointIp>) -> Vec<String> {
    let mut list: Vec<String> = ips.into_iter().filter_map(|ip| ip.ipv6.clone()).collect();
    list.sort();
    list.dedup();
    list
}

/// Sort IPv4 addresses numerically (10.0.2.5 before 10.0.10.5).
pub fn ip_sort_key(ip: &str) -> (u32, String) {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(addr) => (u32::from(addr), String::new()),
        Err(_) => (u32::MAX, ip.to_string()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetAddress {
    pub ip: String,
    pub port: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleView {
    pub account: Account,
    pub id: String,
    pub arn: String,
    /// Normalized: lower case, no trailing dot.
    pub domain: String,
    pub endpoint_id: Option<String>,
    pub targets: Vec<TargetAddress>,
    pub creator_request_id: String,
    pub name: String,
    pub status: RuleStatus,
    pub status_message: String,
    /// Shared with other accounts (ShareStatus SHARED_BY_ME).
    pub shared: bool,
}

/// A rule's association with a VPC: it lives in the VPC's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssociationView {
    pub account: Account,
    pub id: String,
    pub rule_id: String,
    pub vpc_id: String,
    pub status: AssociationStatus,
    pub status_message: String,
}

impl AssociationView {
    /// Not in place and not becoming so: DELETING or FAILED.
    pub fn is_going_away(&self) -> bool {
        !self.status.is_live()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupView {
    pub account: Account,
    pub id: String,
    pub vpc_id: String,
    pub name: String,
    pub tags: Tags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// An ingress permission: protocol, one port, one CIDR.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Permission {
    pub protocol: Protocol,
    pub port: i32,
    pub cidr: IpNet,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} from {}",
            self.protocol.as_str(),
            self.port,
            self.cidr
        )
    }
}

/// A security group rule's protocol as EC2 lists it (IpProtocol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpProtocol {
    Tcp,
    Udp,
    /// "-1": every protocol and port.
    All,
    /// Another protocol, by its name or number.
    Other(String),
}

impl IpProtocol {
    pub fn parse(value: &str) -> IpProtocol {
        match value {
            "tcp" | "6" => IpProtocol::Tcp,
            "udp" | "17" => IpProtocol::Udp,
            "-1" | "all" => IpProtocol::All,
            other => IpProtocol::Other(other.to_string()),
        }
    }

    /// Whether a rule of this protocol on ports `from..=to` admits
    /// `protocol` on `port`.
    pub fn covers(&self, protocol: Protocol, port: i32, from: i32, to: i32) -> bool {
        match self {
            IpProtocol::All => true,
            IpProtocol::Tcp => protocol == Protocol::Tcp && from <= port && port <= to,
            IpProtocol::Udp => protocol == Protocol::Udp && from <= port && port <= to,
            IpProtocol::Other(_) => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupRuleView {
    pub account: Account,
    pub id: String,
    pub group_id: String,
    pub is_egress: bool,
    pub protocol: IpProtocol,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: Option<IpNet>,
    pub tags: Tags,
}

impl SecurityGroupRuleView {
    /// Whether this rule admits `permission` exactly (same CIDR, protocol
    /// and port inside its range, or all traffic from that CIDR).
    pub fn admits(&self, permission: &Permission) -> bool {
        if self.is_egress || self.cidr != Some(permission.cidr) {
            return false;
        }
        self.protocol.covers(
            permission.protocol,
            permission.port,
            self.from_port,
            self.to_port,
        )
    }

    /// The single permission this rule grants, when it is of the form we make.
    pub fn as_permission(&self) -> Option<Permission> {
        let protocol = match self.protocol {
            IpProtocol::Tcp => Protocol::Tcp,
            IpProtocol::Udp => Protocol::Udp,
            IpProtocol::All | IpProtocol::Other(_) => return None,
        };
        if self.is_egress || self.from_port != self.to_port {
            return None;
        }
        Some(Permission {
            protocol,
            port: self.from_port,
            cidr: self.cidr?,
        })
    }
}

/// A parameter of ours: every one lives in the deployment's own account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterView {
    pub name: String,
    pub value: String,
    pub kind: String,
    pub version: i64,
}

pub use crate::ssm::{StateDoc, STATE_SCHEMA};

/// Another cluster recorded as using a VPC's inbound endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub cluster: String,
    pub allowed_cidrs: Vec<IpNet>,
}
