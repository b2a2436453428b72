//! The SSM contract: parameter names under the prefix, the state document
//! and the rendered parameters that render, observe and the CLI read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{ip_sort_key, Account, ClusterId};

/// The `state` parameter: what was made for one cluster. It is also the
/// record that a cluster uses its VPC's shared inbound endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StateDoc {
    pub schema: u32,
    pub cluster: String,
    pub cluster_arn: String,
    pub vpc_id: String,
    pub endpoint: String,
    pub inbound_endpoint_id: String,
    pub outbound_endpoint_id: Option<String>,
    pub rule_id: Option<String>,
    pub associated_vpcs: Vec<String>,
    pub control_plane_security_group_id: String,
    pub control_plane_rule_ids: Vec<String>,
    /// Every CIDR this cluster admits on 53 and 443.
    pub allowed_cidrs: Vec<String>,
    /// The cluster VPC's CIDR blocks outside the private ranges (a VPC may
    /// have them): where `render` accepts inbound addresses besides the
    /// private ranges. Empty for most VPCs, and then not written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpc_cidrs: Vec<String>,
    /// `Config::digest` of the settings the plumbing was made with: a CLI
    /// run with other settings takes nothing of it away unless forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_digest: Option<String>,
    /// What on-premises forwarders need (the name and the inbound
    /// addresses), as last announced with a Forwarders Changed event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarders: Option<Forwarders>,
    /// The other parameters as they were published beside this state, by
    /// leaf (endpoint, inbound-ips, inbound-ipv6): what a sweep takes as
    /// their value, without reading them, while their version is the one
    /// recorded and they were not modified after this state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Recorded>,
    pub updated_at: String,
}

/// A parameter's value and the version it got when it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub version: i64,
    pub value: String,
}

/// The published forwarders of a cluster: a digest of its endpoint name
/// and inbound addresses, and the revision, one more each time they change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Forwarders {
    pub revision: u64,
    pub digest: String,
}

impl Forwarders {
    /// The digest of a name and its addresses (each list in its order).
    pub fn digest_of(endpoint: &str, ips: &[String], ipv6: &[String]) -> String {
        let mut parts = vec![endpoint];
        parts.push("ipv4");
        parts.extend(ips.iter().map(String::as_str));
        parts.push("ipv6");
        parts.extend(ipv6.iter().map(String::as_str));
        crate::owner::digest(&parts, 16)
    }

    /// Where `previous` (the state's) stands, for forwarders whose digest
    /// is `digest`: the same record when nothing changed, else the next
    /// revision.
    pub fn next(previous: Option<&Forwarders>, digest: String) -> Forwarders {
        match previous {
            Some(p) if p.digest == digest => p.clone(),
            Some(p) => Forwarders {
                revision: p.revision + 1,
                digest,
            },
            None => Forwarders {
                revision: 1,
                digest,
            },
        }
    }
}

/// The detail of a Forwarders Changed event: what on-premises automation
/// needs to act at once, without reading SSM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ForwardersChanged {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub endpoint: String,
    /// Empty when the cluster's forwarders were removed.
    pub inbound_ips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inbound_ipv6: Vec<String>,
    pub revision: u64,
    /// The cluster's plumbing is gone: remove its forwarder.
    pub removed: bool,
}

impl ForwardersChanged {
    /// The event for the cluster `state` records, at `revision`: its
    /// account and region from the cluster's ARN.
    pub fn of(state: &StateDoc, ips: &[String], ipv6: &[String], revision: u64) -> Self {
        let (region, account) = crate::event::arn_region_and_account(&state.cluster_arn);
        ForwardersChanged {
            account: account.unwrap_or_default().to_string(),
            region: region.unwrap_or_default().to_string(),
            cluster: state.cluster.clone(),
            endpoint: state.endpoint.clone(),
            inbound_ips: ips.to_vec(),
            inbound_ipv6: ipv6.to_vec(),
            revision,
            removed: false,
        }
    }
}

/// The event's source and detail-type (CONTRACTS: the default bus).
pub const EVENT_SOURCE: &str = "eks-private-dns";
pub const EVENT_DETAIL_TYPE: &str = "Forwarders Changed";

pub const STATE_SCHEMA: u32 = 1;

impl StateDoc {
    /// Equal but for the time stamp: a state with nothing new is not rewritten.
    pub fn same_content(&self, other: &StateDoc) -> bool {
        let mut a = self.clone();
        a.updated_at = other.updated_at.clone();
        &a == other
    }
}

/// What the SSM parameters should say, with the parts that earlier actions
/// of the plan decide left as None for the apply step to fill in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub prefix: String,
    pub cluster: String,
    /// The account the cluster runs in (its folder under the prefix).
    #[serde(skip_serializing_if = "Account::is_home")]
    pub account: Account,
    pub cluster_arn: String,
    pub vpc_id: String,
    pub endpoint_host: String,
    pub inbound_endpoint_id: Option<String>,
    pub inbound_ips: Option<Vec<String>>,
    pub inbound_ipv6: Option<Vec<String>>,
    /// The inbound endpoint is (or is being made) dual-stack: its
    /// addresses are not published until its IPv6 ones are known, so that
    /// the forwarders change once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
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
    /// Their versions now (name -> version), which the state records.
    #[serde(skip)]
    pub current_versions: BTreeMap<String, i64>,
}

pub const PARAM_ENDPOINT: &str = "endpoint";
pub const PARAM_INBOUND_IPS: &str = "inbound-ips";
pub const PARAM_INBOUND_IPV6: &str = "inbound-ipv6";
pub const PARAM_STATE: &str = "state";
/// Under the prefix, names that start with this hold the deployment's own
/// records, not a cluster's: no EKS cluster name starts with it.
pub const DEPLOYMENT_PREFIX: &str = "_";

/// The layout of the parameters under the prefix, built and parsed here
/// only:
///
/// | whose                                  | name                                  |
/// |----------------------------------------|---------------------------------------|
/// | a cluster of the deployment's account  | `{prefix}/{cluster}/{leaf}`           |
/// | a cluster of another account (a spoke) | `{prefix}/{account}/{cluster}/{leaf}` |
/// | the deployment's own settings          | `{prefix}/_deployment/settings`       |
///
/// A cluster's folder is where its leaves (endpoint, inbound-ips,
/// inbound-ipv6, state) are; an EKS cluster name never starts with `_`.
pub fn cluster_folder(prefix: &str, cluster: &ClusterId) -> String {
    let prefix = prefix.trim_end_matches('/');
    match &cluster.account {
        Account::Home => format!("{prefix}/{}", cluster.name),
        Account::Id(account) => format!("{prefix}/{account}/{}", cluster.name),
    }
}

/// The name of a cluster's parameter `leaf`.
pub fn parameter_name(prefix: &str, cluster: &ClusterId, leaf: &str) -> String {
    format!("{}/{leaf}", cluster_folder(prefix, cluster))
}

/// The name of the deployment's settings parameter.
pub fn settings_name(prefix: &str) -> String {
    format!("{prefix}/{DEPLOYMENT_PREFIX}deployment/settings")
}

/// A cluster's parameter, by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterPath {
    pub cluster: ClusterId,
    pub leaf: String,
}

/// What a parameter's name under `prefix` says: whose it is and which
/// leaf. None for a name outside the layout (another prefix, the
/// deployment's own records, deeper or shallower names).
pub fn parse_parameter_name(prefix: &str, name: &str) -> Option<ParameterPath> {
    let rest = name
        .strip_prefix(prefix.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (account, cluster, leaf) = match parts.as_slice() {
        [cluster, leaf] => (Account::Home, *cluster, *leaf),
        [account, cluster, leaf] if is_account_id(account) => {
            (Account::Id(account.to_string()), *cluster, *leaf)
        }
        _ => return None,
    };
    let named = !cluster.is_empty() && !leaf.is_empty() && !cluster.starts_with(DEPLOYMENT_PREFIX);
    named.then(|| ParameterPath {
        cluster: ClusterId {
            account,
            name: cluster.to_string(),
        },
        leaf: leaf.to_string(),
    })
}

/// Whether a parameter name is a cluster's state document.
pub fn is_state_name(prefix: &str, name: &str) -> bool {
    parse_parameter_name(prefix, name).is_some_and(|p| p.leaf == PARAM_STATE)
}

/// A 12-digit AWS account id.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
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
    /// The inbound addresses published, in order.
    pub ips: Vec<String>,
    pub ipv6: Vec<String>,
}

impl RenderedParameters {
    /// Record that `name` was written and is now at `version`: the state
    /// document, still to be written, says so.
    pub fn record_written(&mut self, name: &str, version: i64) {
        let leaf = name.rsplit('/').next().unwrap_or_default();
        if let Some(recorded) = self.state.parameters.get_mut(leaf) {
            recorded.version = version;
        }
        let json = serde_json::to_string(&self.state).expect("state serializes");
        if let Some(last) = self.values.last_mut() {
            last.1 = json;
        }
    }

    /// The name of the state parameter among `values`.
    pub fn state_name(&self) -> &str {
        self.values
            .last()
            .map(|(name, _, _)| name.as_str())
            .unwrap_or_default()
    }

    /// The Forwarders Changed event these parameters call for, against
    /// the state they replace: Some when the name or the addresses differ
    /// from what was last announced.
    pub fn announcement(&self, current: &BTreeMap<String, String>) -> Option<ForwardersChanged> {
        let before = current
            .get(self.state_name())
            .and_then(|v| serde_json::from_str::<StateDoc>(v).ok())
            .and_then(|d| d.forwarders);
        let now = self.state.forwarders.as_ref()?;
        if before.as_ref() == Some(now) {
            return None;
        }
        Some(ForwardersChanged::of(
            &self.state,
            &self.ips,
            &self.ipv6,
            now.revision,
        ))
    }
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
    /// The cluster whose parameters these are.
    pub fn cluster_id(&self) -> ClusterId {
        ClusterId {
            account: self.account.clone(),
            name: self.cluster.clone(),
        }
    }

    /// Whether it waits only for the IPv6 addresses of a dual-stack
    /// inbound endpoint (its IPv4 ones are known): it is published once
    /// they are listed.
    pub fn awaits_ipv6(&self) -> bool {
        self.dual_stack
            && self.inbound_ips.as_ref().is_some_and(|ips| !ips.is_empty())
            && self.inbound_ipv6.as_ref().is_none_or(Vec::is_empty)
    }

    /// Where its parameters go.
    pub fn folder(&self) -> String {
        cluster_folder(&self.prefix, &self.cluster_id())
    }

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
        if self.dual_stack && ipv6.is_empty() {
            return None;
        }
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
        let id = self.cluster_id();
        let state_name = parameter_name(&self.prefix, &id, PARAM_STATE);
        let previous = self
            .current
            .get(&state_name)
            .and_then(|v| serde_json::from_str::<StateDoc>(v).ok());
        let forwarders = Forwarders::next(
            previous.as_ref().and_then(|d| d.forwarders.as_ref()),
            Forwarders::digest_of(&self.endpoint_host, &ips, &ipv6),
        );
        let previous_stamp = previous.map(|d| d.updated_at);
        let name = |leaf| parameter_name(&self.prefix, &id, leaf);
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
        // A value that stays keeps its version; one to be written is
        // recorded as version 0 until the apply step learns its new one.
        let parameters = values
            .iter()
            .map(|(name, value, _)| {
                let version = match self.current.get(name) {
                    Some(now) if now == value => {
                        self.current_versions.get(name).copied().unwrap_or(0)
                    }
                    _ => 0,
                };
                let leaf = name.rsplit('/').next().unwrap_or_default().to_string();
                (
                    leaf,
                    Recorded {
                        version,
                        value: value.clone(),
                    },
                )
            })
            .collect();
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
            forwarders: Some(forwarders),
            parameters,
            updated_at: updated_at
                .map(str::to_string)
                .or(previous_stamp)
                .unwrap_or_default(),
        };
        let state_json = serde_json::to_string(&state).expect("state serializes");
        values.push((name(PARAM_STATE), state_json, "String"));
        Some(RenderedParameters {
            values,
            state,
            obsolete,
            ips,
            ipv6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_name_parses_back_to_its_cluster_and_leaf() {
        let spoke = ClusterId {
            account: Account::Id("210987654321".into()),
            name: "prod".into(),
        };
        for prefix in ["/eks-private-dns", "/team/dns"] {
            for cluster in [
                ClusterId::home("prod"),
                ClusterId::home("123456789012"),
                spoke.clone(),
            ] {
                for leaf in [
                    PARAM_ENDPOINT,
                    PARAM_INBOUND_IPS,
                    PARAM_INBOUND_IPV6,
                    PARAM_STATE,
                ] {
                    let name = parameter_name(prefix, &cluster, leaf);
                    assert_eq!(
                        parse_parameter_name(prefix, &name),
                        Some(ParameterPath {
                            cluster: cluster.clone(),
                            leaf: leaf.to_string()
                        }),
                        "{name}"
                    );
                    assert!(name.starts_with(&format!("{}/", cluster_folder(prefix, &cluster))));
                    assert_eq!(is_state_name(prefix, &name), leaf == PARAM_STATE);
                }
            }
        }
        assert_eq!(
            parameter_name("/eks-private-dns", &spoke, PARAM_STATE),
            "/eks-private-dns/210987654321/prod/state"
        );
    }

    #[test]
    fn names_outside_the_layout_are_no_clusters() {
        let prefix = "/eks-private-dns";
        for name in [
            settings_name(prefix).as_str(),
            "/eks-private-dns/prod",
            "/eks-private-dns/prod/state/extra/deeper",
            "/eks-private-dns/not-an-account/prod/state",
            "/eks-private-dns-other/prod/state",
            "/other/prod/state",
            "/eks-private-dns//state",
        ] {
            assert_eq!(parse_parameter_name(prefix, name), None, "{name}");
        }
    }
}
