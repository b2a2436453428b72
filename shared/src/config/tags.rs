//! What a cluster's own tags add to the configuration.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::*;

/// What a cluster's own tags add to the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterTags {
    /// Some(true): opted in; Some(false): opted out; None: the trigger decides.
    pub enabled: Option<bool>,
    /// A bare id is of the cluster's own account.
    pub client_vpc_ids: Vec<ClientVpc>,
    pub onprem_cidrs: Vec<IpNet>,
}

impl ClusterTags {
    /// Parse the eks-private-dns/* tags of cluster `cluster`. Tag values are
    /// space-separated lists (EKS tag values allow no commas). Each CIDR of
    /// a tag must lie inside the configuration's tag envelope: whoever may
    /// tag a cluster may narrow, never widen, what the operator allowed.
    pub fn parse(
        cluster: &str,
        tags: &BTreeMap<String, String>,
        config: &Config,
    ) -> Result<ClusterTags, ConfigError> {
        let setting = |tag: &str| format!("tag {tag} of cluster {cluster}");
        let enabled_tag = config.enabled_tag();
        let enabled = match tags.get(&enabled_tag).map(|v| v.trim()) {
            None | Some("") => None,
            Some(v) => Some(parse_bool(&setting(&enabled_tag), v)?),
        };
        let client_vpc_ids = match tags.get(TAG_CLIENT_VPC_IDS) {
            Some(v) if !v.trim().is_empty() => {
                parse_client_vpc_list(&setting(TAG_CLIENT_VPC_IDS), v, ' ')?
            }
            _ => Vec::new(),
        };
        let onprem_cidrs = match tags.get(TAG_ONPREM_CIDRS) {
            Some(v) if !v.trim().is_empty() => {
                let name = setting(TAG_ONPREM_CIDRS);
                // The envelope, itself held to the operator's policy, is
                // what bounds a tag.
                let syntax_only = CidrPolicy {
                    allow_world: true,
                    allow_public: true,
                };
                let nets = parse_cidr_list(&name, v, ' ', syntax_only)?;
                for net in &nets {
                    if !config.tag_cidr_envelope.iter().any(|e| e.contains(net)) {
                        let envelope: Vec<String> = config
                            .tag_cidr_envelope
                            .iter()
                            .map(|e| e.to_string())
                            .collect();
                        return Err(ConfigError::new(
                            name,
                            format!(
                                "'{net}' lies outside the ranges a tag may add ({}); widen \
                                 {ENV_TAG_CIDR_ENVELOPE} if it is meant",
                                envelope.join(",")
                            ),
                        ));
                    }
                }
                nets
            }
            _ => Vec::new(),
        };
        Ok(ClusterTags {
            enabled,
            client_vpc_ids,
            onprem_cidrs,
        })
    }
}
