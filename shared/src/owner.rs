//! Ownership: the tags on everything we create, the deterministic names and
//! CreatorRequestIds that let a retry or a concurrent twin find the resource
//! instead of making a second one.
//!
//! | resource                 | tags                 | CreatorRequestId / name                  |
//! |--------------------------|----------------------|------------------------------------------|
//! | inbound endpoint         | owner, vpc, role     | epd-{owner#}-in-g{N}-{vpc}               |
//! | outbound endpoint        | owner, vpc, role     | epd-{owner#}-out-g{N}-{vpc}              |
//! | endpoint security groups | owner, vpc, role     | name eks-private-dns[-{owner}]-{role}    |
//! | forward rule             | owner, cluster       | epd-{owner#}-rule-g{N}-{host#}-{key}     |
//! | 53 rules (endpoint SG)   | owner, vpc           |                                          |
//! | 443 rules (cluster SG)   | owner, cluster       |                                          |
//! | SSM parameters           | owner, cluster, vpc  | {prefix}/[{account}/]{cluster}/...       |
//! | RAM resource share       | owner                | name eks-private-dns[-{owner}]           |
//!
//! The Route 53 Resolver API cannot filter by tag, so its resources are found
//! by CreatorRequestId (which nobody can change after creation) and their
//! owner tag is checked again before every change or delete. `gN` is the
//! generation: 1 at first, higher when AWS still remembers a deleted resource
//! under the lower one. A rule's `key` is its cluster's (`ClusterId`'s
//! Display): the name for a cluster of the deployment's account,
//! `{account}:{name}` for a spoke's, so that two accounts' clusters of one
//! name never share a rule.

use sha2::{Digest, Sha256};

use crate::model::{Direction, Tags};

pub const TAG_OWNER: &str = "eks-private-dns:owner";
pub const TAG_CLUSTER: &str = "eks-private-dns:cluster";
pub const TAG_VPC: &str = "eks-private-dns:vpc";
pub const TAG_ROLE: &str = "eks-private-dns:role";
pub const TAG_NAME: &str = "Name";

/// How many generations of one CreatorRequestId we try before giving up.
pub const MAX_GENERATIONS: u32 = 8;

/// Short stable digest, hex.
pub fn digest(parts: &[&str], hex_len: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let out = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in out {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(hex_len);
    hex
}

/// The naming and tagging of one deployment (one owner id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    prefix: String,
}

/// What a CreatorRequestId of ours says about its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreatorId {
    Inbound {
        vpc_id: String,
    },
    Outbound {
        vpc_id: String,
    },
    Rule {
        host_digest: String,
        cluster: String,
    },
}

impl Owner {
    pub fn new(id: &str) -> Owner {
        Owner {
            id: id.to_string(),
            prefix: format!("epd-{}-", digest(&[id], 8)),
        }
    }

    pub fn is_ours(&self, tags: &Tags) -> bool {
        tags.get(TAG_OWNER).map(String::as_str) == Some(self.id.as_str())
    }

    /// The role a resource of ours serves, by its role tag; None for a
    /// resource that is not ours or has no such tag.
    pub fn role_of(&self, tags: &Tags) -> Option<Direction> {
        self.is_ours(tags)
            .then(|| tags.get(TAG_ROLE).and_then(|w| Direction::of_word(w)))
            .flatten()
    }

    pub fn inbound_creator_id(&self, vpc_id: &str, generation: u32) -> String {
        format!("{}in-g{}-{vpc_id}", self.prefix, generation.max(1))
    }

    pub fn outbound_creator_id(&self, vpc_id: &str, generation: u32) -> String {
        format!("{}out-g{}-{vpc_id}", self.prefix, generation.max(1))
    }

    pub fn rule_creator_id(&self, cluster: &str, host: &str, generation: u32) -> String {
        format!(
            "{}rule-g{}-{}-{cluster}",
            self.prefix,
            generation.max(1),
            digest(&[host], 8)
        )
    }

    /// Parse one of our CreatorRequestIds; None for anyone else's.
    pub fn parse_creator_id(&self, creator_id: &str) -> Option<CreatorId> {
        let rest = creator_id.strip_prefix(&self.prefix)?;
        let (kind, rest) = rest.split_once('-')?;
        let (generation, rest) = rest.split_once('-')?;
        let valid_generation = generation.len() > 1
            && generation.starts_with('g')
            && generation[1..].chars().all(|c| c.is_ascii_digit());
        if !valid_generation || rest.is_empty() {
            return None;
        }
        match kind {
            "in" => Some(CreatorId::Inbound {
                vpc_id: rest.to_string(),
            }),
            "out" => Some(CreatorId::Outbound {
                vpc_id: rest.to_string(),
            }),
            "rule" => {
                let (host_digest, cluster) = rest.split_once('-')?;
                if host_digest.len() != 8 || cluster.is_empty() {
                    return None;
                }
                Some(CreatorId::Rule {
                    host_digest: host_digest.to_string(),
                    cluster: cluster.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Unique per VPC and owner: "eks-private-dns-inbound" for the default
    /// owner, "eks-private-dns-{owner}-inbound" for any other.
    pub fn security_group_name(&self, role: Direction) -> String {
        if self.id == crate::config::DEFAULT_OWNER {
            format!("eks-private-dns-{role}")
        } else {
            format!("eks-private-dns-{}-{role}", self.id)
        }
    }

    /// The name of the deployment's RAM resource share (one per owner and
    /// region): "eks-private-dns" for the default owner,
    /// "eks-private-dns-{owner}" for any other.
    pub fn share_name(&self) -> String {
        if self.id == crate::config::DEFAULT_OWNER {
            "eks-private-dns".to_string()
        } else {
            format!("eks-private-dns-{}", self.id)
        }
    }

    /// The client token of the share's creation: the same for every run,
    /// so that two runs making it at once make one.
    pub fn share_client_token(&self) -> String {
        format!("{}share", self.prefix)
    }

    /// The tags of a shared resource (an endpoint, its security group)
    /// that serves `role` in `vpc_id`.
    pub fn shared_tags(&self, vpc_id: &str, role: Direction) -> Tags {
        let mut tags = Tags::new();
        tags.insert(TAG_OWNER.into(), self.id.clone());
        tags.insert(TAG_VPC.into(), vpc_id.into());
        tags.insert(TAG_ROLE.into(), role.word().into());
        tags.insert(TAG_NAME.into(), format!("eks-private-dns-{role}-{vpc_id}"));
        tags
    }

    pub fn cluster_tags(&self, cluster_arn: &str) -> Tags {
        let mut tags = Tags::new();
        tags.insert(TAG_OWNER.into(), self.id.clone());
        tags.insert(TAG_CLUSTER.into(), cluster_arn.into());
        tags
    }

    /// Tags of the 53 rules on an inbound endpoint's security group.
    pub fn dns_rule_tags(&self, vpc_id: &str) -> Tags {
        let mut tags = Tags::new();
        tags.insert(TAG_OWNER.into(), self.id.clone());
        tags.insert(TAG_VPC.into(), vpc_id.into());
        tags
    }

    pub fn parameter_tags(&self, cluster_arn: &str, vpc_id: &str) -> Tags {
        let mut tags = self.cluster_tags(cluster_arn);
        tags.insert(TAG_VPC.into(), vpc_id.into());
        tags
    }
}

/// A Route 53 Resolver name: at most 64 characters of letters, digits,
/// hyphens, underscores and spaces.
pub fn resolver_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creator_ids_round_trip() {
        let o = Owner::new("eks-private-dns");
        let id = o.rule_creator_id("prod-eu_1", "abc.gr7.eu-west-1.eks.amazonaws.com", 1);
        match o.parse_creator_id(&id).unwrap() {
            CreatorId::Rule { cluster, .. } => assert_eq!(cluster, "prod-eu_1"),
            other => panic!("{other:?}"),
        }
        for generation in [1, 3] {
            let id = o.rule_creator_id("prod-g2", "h", generation);
            assert!(
                matches!(o.parse_creator_id(&id), Some(CreatorId::Rule { cluster, .. }) if cluster == "prod-g2"),
                "{id}"
            );
        }
        assert_eq!(
            o.parse_creator_id(&o.inbound_creator_id("vpc-11111111", 2)),
            Some(CreatorId::Inbound {
                vpc_id: "vpc-11111111".into()
            })
        );
        assert_eq!(
            o.parse_creator_id(&o.outbound_creator_id("vpc-22222222", 1)),
            Some(CreatorId::Outbound {
                vpc_id: "vpc-22222222".into()
            })
        );
        assert!(id.len() <= 255);
    }

    #[test]
    fn another_owner_does_not_parse_ours() {
        let a = Owner::new("a");
        let b = Owner::new("b");
        assert_eq!(
            b.parse_creator_id(&a.inbound_creator_id("vpc-11111111", 1)),
            None
        );
        assert_eq!(a.parse_creator_id("some-terraform-id"), None);
    }

    #[test]
    fn resolver_names_are_valid() {
        assert_eq!(resolver_name("eks-private-dns-a.b"), "eks-private-dns-a-b");
        assert_eq!(resolver_name(&"x".repeat(100)).len(), 64);
    }
}
