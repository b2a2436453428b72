//! Why a cluster that wants plumbing cannot have it as things are: each
//! reason names the thing and what to do, and reads as one sentence.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::config::{
    ENV_API_RULES_GROUP, ENV_ENDPOINT_TYPE, ENV_OUTBOUND_ENDPOINT_ID, ENV_OUTBOUND_VPC_ID,
    ENV_SPOKE_ACCOUNTS, TAG_API_RULES,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A tag of the cluster does not parse or is not allowed.
    Tags(String),
    /// DescribeCluster gave no host name or no VPC.
    Incomplete(String),
    /// enableDnsSupport or enableDnsHostnames is off in the cluster VPC.
    VpcDnsOff {
        cluster: String,
        vpc_id: String,
        off: Vec<&'static str>,
    },
    VpcDnsUnread {
        vpc_id: String,
    },
    /// Too few Availability Zones for an inbound endpoint.
    InboundZones {
        cluster: String,
        vpc_id: String,
        zones: usize,
    },
    /// A client VPC that does not exist, and where it was named.
    ClientVpcMissing {
        vpc_id: String,
        source: String,
    },
    /// A client VPC of an account this deployment does not serve.
    ClientAccountNotServed {
        vpc: String,
        source: String,
    },
    /// Client VPCs, none of them in the deployment's own account, and no
    /// VPC there named for the outbound endpoint.
    NoOutboundVpc {
        cluster: String,
    },
    /// `cluster` mode and no cluster security group made by EKS.
    NoClusterGroup {
        cluster: String,
        additional: Option<String>,
        owner: String,
    },
    /// `tagged` mode and no additional group tagged for us.
    NoTaggedGroup {
        cluster: String,
        groups: Vec<String>,
        owner: String,
    },
    OutboundIsInbound {
        endpoint_id: String,
    },
    OutboundMissing {
        endpoint_id: String,
    },
    /// Too few Availability Zones for a new outbound endpoint.
    OutboundZones {
        vpc_id: String,
        zones: usize,
    },
    /// `dualstack` and subnets without an IPv6 block.
    NoIpv6Blocks {
        cluster: String,
        vpc_id: String,
        subnets: Vec<String>,
    },
    /// The cluster's record was written by a newer release: this one
    /// changes nothing of it (a rollback never takes apart what a newer
    /// release made).
    NewerRecord {
        cluster: String,
        parameter: String,
        schema: u64,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Tags(text) | Invalid::Incomplete(text) => f.write_str(text),
            Invalid::VpcDnsOff {
                cluster,
                vpc_id,
                off,
            } => write!(
                f,
                "VPC {vpc_id} of cluster {cluster} has {} off; the private endpoint name resolves \
                 only with both on (aws ec2 modify-vpc-attribute --vpc-id {vpc_id} \
                 --enable-dns-support / --enable-dns-hostnames)",
                off.join(" and ")
            ),
            Invalid::VpcDnsUnread { vpc_id } => {
                write!(f, "the DNS attributes of VPC {vpc_id} could not be read")
            }
            Invalid::InboundZones {
                cluster,
                vpc_id,
                zones,
            } => write!(
                f,
                "cluster {cluster} has subnets in {zones} Availability Zone(s) of VPC {vpc_id}; \
                 an inbound Resolver endpoint needs subnets in at least two"
            ),
            Invalid::ClientVpcMissing { vpc_id, source } => {
                write!(f, "client VPC {vpc_id} (from {source}) does not exist")
            }
            Invalid::ClientAccountNotServed { .. } | Invalid::NoOutboundVpc { .. } => {
                accounts(f, self)
            }
            Invalid::NoClusterGroup {
                cluster,
                additional,
                owner,
            } => {
                let yours = match additional {
                    Some(group) => format!(
                        " and will not change its additional group {group}, which is yours \
                         (tag it {TAG_API_RULES}={owner} and set {ENV_API_RULES_GROUP}=tagged to \
                         have the rules there)"
                    ),
                    None => String::new(),
                };
                write!(
                    f,
                    "cluster {cluster} has no cluster security group made by EKS \
                     (resourcesVpcConfig.clusterSecurityGroupId); eks-private-dns admits TCP 443 \
                     only on that group (its IAM policy allows rules only on groups tagged \
                     aws:eks:cluster-name){yours}; nothing was made for the cluster"
                )
            }
            Invalid::NoTaggedGroup {
                cluster,
                groups,
                owner,
            } => {
                let groups = if groups.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has {}", groups.join(", "))
                };
                write!(
                    f,
                    "cluster {cluster} has no additional security group tagged \
                     {TAG_API_RULES}={owner} ({groups}); with {ENV_API_RULES_GROUP}=tagged the \
                     TCP 443 rules go only on such a group: tag one of the cluster's additional \
                     groups, or set {ENV_API_RULES_GROUP}=cluster; nothing was made for the \
                     cluster"
                )
            }
            Invalid::OutboundIsInbound { endpoint_id } => write!(
                f,
                "{endpoint_id} (from {ENV_OUTBOUND_ENDPOINT_ID}) is an inbound endpoint, not an \
                 outbound one"
            ),
            Invalid::OutboundMissing { endpoint_id } => write!(
                f,
                "outbound endpoint {endpoint_id} (from {ENV_OUTBOUND_ENDPOINT_ID}) does not exist"
            ),
            Invalid::OutboundZones { vpc_id, zones } => write!(
                f,
                "VPC {vpc_id} has subnets in {zones} Availability Zone(s); the outbound Resolver \
                 endpoint needs subnets in two (or set EKS_PRIVATE_DNS_OUTBOUND_VPC_ID or \
                 {ENV_OUTBOUND_ENDPOINT_ID})"
            ),
            Invalid::NoIpv6Blocks {
                cluster,
                vpc_id,
                subnets,
            } => no_ipv6_blocks(f, cluster, vpc_id, subnets),
            Invalid::NewerRecord {
                cluster,
                parameter,
                schema,
            } => newer_record(f, cluster, parameter, *schema),
        }
    }
}

/// A record a later release wrote, which this one leaves as it is.
fn newer_record(
    f: &mut fmt::Formatter<'_>,
    cluster: &str,
    parameter: &str,
    schema: u64,
) -> fmt::Result {
    write!(
        f,
        "cluster {cluster}'s record {parameter} was written by a newer release of \
         eks-private-dns (state schema {schema}; this release {} knows schema {}): nothing of \
         it is changed; deploy that release or a later one",
        env!("CARGO_PKG_VERSION"),
        crate::ssm::STATE_SCHEMA
    )
}

/// What another account's VPC makes impossible.
fn accounts(f: &mut fmt::Formatter<'_>, invalid: &Invalid) -> fmt::Result {
    match invalid {
        Invalid::ClientAccountNotServed { vpc, source } => write!(
            f,
            "client VPC {vpc} (from {source}) is in an account this deployment does not \
             serve: add the account to {ENV_SPOKE_ACCOUNTS} (and deploy the spoke role \
             there), or leave the VPC out"
        ),
        Invalid::NoOutboundVpc { cluster } => write!(
            f,
            "cluster {cluster}'s client VPCs are all in other accounts, and the outbound \
             endpoint its rule goes through is made in this deployment's account: set \
             {ENV_OUTBOUND_VPC_ID} to a VPC of this account (or {ENV_OUTBOUND_ENDPOINT_ID})"
        ),
        other => write!(f, "{other:?}"),
    }
}

fn no_ipv6_blocks(
    f: &mut fmt::Formatter<'_>,
    cluster: &str,
    vpc_id: &str,
    subnets: &[String],
) -> fmt::Result {
    let which = if subnets.is_empty() {
        format!("cluster {cluster} has no subnets in VPC {vpc_id}")
    } else {
        format!(
            "subnet(s) {} of cluster {cluster} in VPC {vpc_id} have no IPv6 CIDR block",
            subnets.join(", ")
        )
    };
    write!(
        f,
        "{ENV_ENDPOINT_TYPE} is dualstack, but {which}: associate one with each (aws ec2 \
         associate-subnet-cidr-block --ipv6-cidr-block ...), or set {ENV_ENDPOINT_TYPE} to auto \
         or ipv4; nothing was made for the cluster"
    )
}

/// Serialized as the sentence, as the JSON outputs have always given it.
impl Serialize for Invalid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_the_sentence_and_serializes_as_it() {
        let reason = Invalid::OutboundZones {
            vpc_id: "vpc-1".into(),
            zones: 1,
        };
        let text = reason.to_string();
        assert!(text.starts_with("VPC vpc-1 has subnets in 1 Availability Zone(s)"));
        assert_eq!(serde_json::to_value(&reason).unwrap(), text.as_str());
        let dns = Invalid::VpcDnsOff {
            cluster: "prod".into(),
            vpc_id: "vpc-2".into(),
            off: vec!["enableDnsSupport", "enableDnsHostnames"],
        };
        assert!(dns
            .to_string()
            .contains("has enableDnsSupport and enableDnsHostnames off"));
    }
}
