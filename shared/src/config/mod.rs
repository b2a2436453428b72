//! One validated configuration, read once from the environment (the Lambdas)
//! or from the environment plus flags (the CLI), and passed down.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

mod parse;
mod tags;
mod variables;

pub use parse::*;
pub use tags::*;
pub use variables::*;

pub const ENV_CLIENT_VPC_IDS: &str = "EKS_PRIVATE_DNS_CLIENT_VPC_IDS";
pub const ENV_ONPREM_CIDRS: &str = "EKS_PRIVATE_DNS_ONPREM_CIDRS";
pub const ENV_DISCOVER_PEERED_VPCS: &str = "EKS_PRIVATE_DNS_DISCOVER_PEERED_VPCS";
pub const ENV_OUTBOUND_ENDPOINT_ID: &str = "EKS_PRIVATE_DNS_OUTBOUND_ENDPOINT_ID";
pub const ENV_OUTBOUND_VPC_ID: &str = "EKS_PRIVATE_DNS_OUTBOUND_VPC_ID";
pub const ENV_TRIGGER: &str = "EKS_PRIVATE_DNS_TRIGGER";
pub const ENV_SSM_PREFIX: &str = "EKS_PRIVATE_DNS_SSM_PREFIX";
pub const ENV_OWNER: &str = "EKS_PRIVATE_DNS_OWNER";
pub const ENV_MODE: &str = "EKS_PRIVATE_DNS_MODE";
pub const ENV_INBOUND_IPS: &str = "EKS_PRIVATE_DNS_INBOUND_IPS";
pub const ENV_ALLOW_WORLD: &str = "EKS_PRIVATE_DNS_ALLOW_WORLD";
pub const ENV_ALLOW_PUBLIC_CIDRS: &str = "EKS_PRIVATE_DNS_ALLOW_PUBLIC_CIDRS";
pub const ENV_TAG_CIDR_ENVELOPE: &str = "EKS_PRIVATE_DNS_TAG_CIDR_ENVELOPE";
pub const ENV_API_RULES_GROUP: &str = "EKS_PRIVATE_DNS_API_RULES_GROUP";
pub const ENV_RESOLVER_RATE: &str = "EKS_PRIVATE_DNS_RESOLVER_RATE";
pub const ENV_SWEEP_CONCURRENCY: &str = "EKS_PRIVATE_DNS_SWEEP_CONCURRENCY";
pub const ENV_TLS_ROOTS: &str = "EKS_PRIVATE_DNS_TLS_ROOTS";
pub const ENV_ENDPOINT_TYPE: &str = "EKS_PRIVATE_DNS_ENDPOINT_TYPE";
pub const ENV_SPOKE_ACCOUNTS: &str = "EKS_PRIVATE_DNS_SPOKE_ACCOUNTS";
pub const ENV_SPOKE_ROLE_NAME: &str = "EKS_PRIVATE_DNS_SPOKE_ROLE_NAME";

/// Cluster tags that refine the configuration for one cluster.
pub const TAG_ENABLED: &str = "eks-private-dns/enabled";
pub const TAG_CLIENT_VPC_IDS: &str = "eks-private-dns/client-vpc-ids";
pub const TAG_ONPREM_CIDRS: &str = "eks-private-dns/onprem-cidrs";

pub const DEFAULT_SSM_PREFIX: &str = "/eks-private-dns";
pub const DEFAULT_OWNER: &str = "eks-private-dns";
pub const DEFAULT_INBOUND_IPS: u8 = 2;
pub const MIN_INBOUND_IPS: u8 = 2;
pub const MAX_INBOUND_IPS: u8 = 6;
pub const DEFAULT_RESOLVER_RATE: f64 = 4.0;
pub const DEFAULT_SWEEP_CONCURRENCY: usize = 4;
pub const DEFAULT_SPOKE_ROLE_NAME: &str = "eks-private-dns-spoke";

/// When a cluster's endpoint access makes it a candidate for plumbing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// endpointPrivateAccess=true and endpointPublicAccess=false.
    PrivateOnly,
    /// endpointPrivateAccess=true, whatever the public access.
    PrivateAccess,
}

impl Trigger {
    /// Each value's name, the default first.
    pub const CHOICES: &'static [(&'static str, Self)] = &[
        ("private-only", Trigger::PrivateOnly),
        ("private-access", Trigger::PrivateAccess),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::PrivateOnly => "private-only",
            Trigger::PrivateAccess => "private-access",
        }
    }
}

/// The security group tag that names a cluster's additional group as the
/// one for our 443 rules (value: the owner id), with
/// `EKS_PRIVATE_DNS_API_RULES_GROUP=tagged`.
pub const TAG_API_RULES: &str = "eks-private-dns:api-rules";

/// Where the TCP 443 rules go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiRulesGroup {
    /// The cluster security group EKS made (which EKS also attaches to
    /// managed nodes).
    Cluster,
    /// The cluster's additional group tagged `TAG_API_RULES` = owner
    /// (attached to the control plane's interfaces only).
    Tagged,
}

impl ApiRulesGroup {
    /// Each value's name, the default first.
    pub const CHOICES: &'static [(&'static str, Self)] = &[
        ("cluster", ApiRulesGroup::Cluster),
        ("tagged", ApiRulesGroup::Tagged),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRulesGroup::Cluster => "cluster",
            ApiRulesGroup::Tagged => "tagged",
        }
    }
}

/// Which IP stack the inbound endpoints are made with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointTypeSetting {
    /// DUALSTACK for an IPv6 cluster (or one with a dual-stack endpoint
    /// name) whose subnets have IPv6 blocks, IPV4 otherwise; an endpoint
    /// that is dual-stack already stays so.
    #[default]
    Auto,
    Ipv4,
    DualStack,
}

impl EndpointTypeSetting {
    /// Each value's name, the default first.
    pub const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", EndpointTypeSetting::Auto),
        ("ipv4", EndpointTypeSetting::Ipv4),
        ("dualstack", EndpointTypeSetting::DualStack),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointTypeSetting::Auto => "auto",
            EndpointTypeSetting::Ipv4 => "ipv4",
            EndpointTypeSetting::DualStack => "dualstack",
        }
    }
}

/// Whether a reconcile changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// Observe and report the plan; change nothing.
    Plan,
}

impl Mode {
    /// Each value's name, the default first.
    pub const CHOICES: &'static [(&'static str, Self)] =
        &[("apply", Mode::Apply), ("plan", Mode::Plan)];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Plan => "plan",
        }
    }
}

impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Client VPCs: a bare id is of the deployment's own account.
    pub client_vpc_ids: Vec<ClientVpc>,
    pub onprem_cidrs: Vec<IpNet>,
    pub discover_peered_vpcs: bool,
    pub outbound_endpoint_id: Option<String>,
    pub outbound_vpc_id: Option<String>,
    pub trigger: Trigger,
    pub ssm_prefix: String,
    pub owner: String,
    pub mode: Mode,
    pub inbound_ips: u8,
    pub endpoint_type: EndpointTypeSetting,
    pub allow_world: bool,
    /// CIDRs outside the private ranges may be configured (a /0 still needs
    /// `allow_world`).
    pub allow_public_cidrs: bool,
    /// Where the CIDRs of cluster tags must lie: a tag may narrow, never
    /// widen, what the operator allowed. Default: the private ranges.
    pub tag_cidr_envelope: Vec<IpNet>,
    pub api_rules_group: ApiRulesGroup,
    /// Route 53 Resolver requests per second, for this process.
    pub resolver_rate: f64,
    /// Clusters a sweep reconciles at once.
    pub sweep_concurrency: usize,
    /// The root certificates AWS endpoints are verified against.
    pub tls_roots: crate::tls::TlsRoots,
    /// The accounts served besides the deployment's own (hub mode when
    /// any): accounts, and OUs or the root whose accounts are served.
    pub spoke_accounts: Vec<SpokeEntry>,
    /// The role assumed in each spoke account.
    pub spoke_role_name: String,
    /// Everything of this owner is being taken down (the CLI's
    /// `teardown`): no cluster is managed. Not a setting.
    pub take_down: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_vpc_ids: Vec::new(),
            onprem_cidrs: Vec::new(),
            discover_peered_vpcs: false,
            outbound_endpoint_id: None,
            outbound_vpc_id: None,
            trigger: Trigger::PrivateOnly,
            ssm_prefix: DEFAULT_SSM_PREFIX.to_string(),
            owner: DEFAULT_OWNER.to_string(),
            mode: Mode::Apply,
            inbound_ips: DEFAULT_INBOUND_IPS,
            endpoint_type: EndpointTypeSetting::Auto,
            allow_world: false,
            allow_public_cidrs: false,
            tag_cidr_envelope: private_ranges(),
            api_rules_group: ApiRulesGroup::Cluster,
            resolver_rate: DEFAULT_RESOLVER_RATE,
            sweep_concurrency: DEFAULT_SWEEP_CONCURRENCY,
            tls_roots: crate::tls::TlsRoots::Auto,
            spoke_accounts: Vec::new(),
            spoke_role_name: DEFAULT_SPOKE_ROLE_NAME.to_string(),
            take_down: false,
        }
    }
}

/// A configuration value that cannot be used. `setting` names the variable
/// or tag (and the cluster, for tags), so that the message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (the environment, or a map
    /// in tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let switch = |name: &str| -> Result<bool, ConfigError> {
            Ok(read(get(name), |v| parse_bool(name, v))?.unwrap_or(false))
        };
        let defaults = Config::default();
        let policy = CidrPolicy {
            allow_world: switch(ENV_ALLOW_WORLD)?,
            allow_public: switch(ENV_ALLOW_PUBLIC_CIDRS)?,
        };
        let cidrs = |name: &str| read(get(name), |v| parse_cidr_list(name, v, ',', policy));
        Ok(Config {
            client_vpc_ids: read(get(ENV_CLIENT_VPC_IDS), |v| {
                parse_client_vpc_list(ENV_CLIENT_VPC_IDS, v, ',')
            })?
            .unwrap_or_default(),
            onprem_cidrs: cidrs(ENV_ONPREM_CIDRS)?.unwrap_or_default(),
            discover_peered_vpcs: switch(ENV_DISCOVER_PEERED_VPCS)?,
            outbound_endpoint_id: read(get(ENV_OUTBOUND_ENDPOINT_ID), |v| {
                parse_endpoint_id(ENV_OUTBOUND_ENDPOINT_ID, v)
            })?,
            outbound_vpc_id: read(get(ENV_OUTBOUND_VPC_ID), |v| {
                parse_vpc_id(ENV_OUTBOUND_VPC_ID, v)
            })?,
            trigger: choice(get(ENV_TRIGGER), ENV_TRIGGER, "a trigger", Trigger::CHOICES)?,
            ssm_prefix: read(get(ENV_SSM_PREFIX), parse_ssm_prefix)?.unwrap_or(defaults.ssm_prefix),
            owner: read(get(ENV_OWNER), parse_owner)?.unwrap_or(defaults.owner),
            mode: choice(get(ENV_MODE), ENV_MODE, "a mode", Mode::CHOICES)?,
            inbound_ips: number(get(ENV_INBOUND_IPS), ENV_INBOUND_IPS, "a number of IPs")? as u8,
            endpoint_type: choice(
                get(ENV_ENDPOINT_TYPE),
                ENV_ENDPOINT_TYPE,
                "an endpoint type",
                EndpointTypeSetting::CHOICES,
            )?,
            allow_world: policy.allow_world,
            allow_public_cidrs: policy.allow_public,
            tag_cidr_envelope: cidrs(ENV_TAG_CIDR_ENVELOPE)?.unwrap_or(defaults.tag_cidr_envelope),
            api_rules_group: choice(
                get(ENV_API_RULES_GROUP),
                ENV_API_RULES_GROUP,
                "a place for the 443 rules",
                ApiRulesGroup::CHOICES,
            )?,
            resolver_rate: number(
                get(ENV_RESOLVER_RATE),
                ENV_RESOLVER_RATE,
                "a rate of requests per second",
            )?,
            sweep_concurrency: number(
                get(ENV_SWEEP_CONCURRENCY),
                ENV_SWEEP_CONCURRENCY,
                "a number of clusters",
            )? as usize,
            tls_roots: choice(
                get(ENV_TLS_ROOTS),
                ENV_TLS_ROOTS,
                "a set of root certificates",
                crate::tls::TlsRoots::CHOICES,
            )?,
            spoke_accounts: read(get(ENV_SPOKE_ACCOUNTS), |v| {
                parse_spoke_list(ENV_SPOKE_ACCOUNTS, v)
            })?
            .unwrap_or_default(),
            spoke_role_name: read(get(ENV_SPOKE_ROLE_NAME), |v| {
                parse_role_name(ENV_SPOKE_ROLE_NAME, v)
            })?
            .unwrap_or(defaults.spoke_role_name),
            take_down: false,
        })
    }
}

/// A value that is set, parsed; None when unset.
fn read<T>(
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    value.as_deref().map(parse).transpose()
}

/// One of `options` by its name; the first (the table's default) when
/// unset. `options` has the table's choices of `setting`, in its order (a
/// test holds every enum's to it).
fn choice<T: Copy>(
    value: Option<String>,
    setting: &str,
    what: &str,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    debug_assert_eq!(
        options.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        variable(setting).choices()
    );
    let Some(value) = value else {
        return Ok(options[0].1);
    };
    match options.iter().find(|(name, _)| *name == value) {
        Some((_, v)) => Ok(*v),
        None => {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            Err(ConfigError::new(
                setting,
                format!("'{value}' is not {what}; use {}", names.join(" or ")),
            ))
        }
    }
}

/// The number `setting` is set to, within the table's bounds; the table's
/// default when unset.
fn number(value: Option<String>, setting: &str, what: &str) -> Result<f64, ConfigError> {
    let Value::Number {
        min,
        max,
        default,
        whole,
    } = variable(setting).value
    else {
        unreachable!("{setting} is a number in the variables table");
    };
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<f64>() {
        Ok(n) if (min..=max).contains(&n) && (!whole || n.fract() == 0.0) => Ok(n),
        _ => Err(ConfigError::new(
            setting,
            format!(
                "'{value}' is not {what} from {min} to {max}{}",
                if whole { " (a whole number)" } else { "" }
            ),
        )),
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cidrs: Vec<String> = self.onprem_cidrs.iter().map(|c| c.to_string()).collect();
        write!(
            f,
            "owner={} trigger={} mode={} prefix={} client-vpcs=[{}] onprem-cidrs=[{}] \
             peered={} inbound-ips={} outbound-endpoint={} outbound-vpc={} spokes=[{}]",
            self.owner,
            self.trigger.as_str(),
            self.mode.as_str(),
            self.ssm_prefix,
            join_display(&self.client_vpc_ids),
            cidrs.join(","),
            self.discover_peered_vpcs,
            self.inbound_ips,
            self.outbound_endpoint_id.as_deref().unwrap_or("-"),
            self.outbound_vpc_id.as_deref().unwrap_or("-"),
            join_display(&self.spoke_accounts),
        )
    }
}

/// Items as the settings spell them, comma-separated.
fn join_display<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Config {
    /// Whether this deployment serves accounts besides its own.
    pub fn is_hub(&self) -> bool {
        !self.spoke_accounts.is_empty()
    }

    /// The tag that opts a cluster in or out of this deployment:
    /// `eks-private-dns/enabled` for the default owner, and
    /// `eks-private-dns/OWNER/enabled` for another, so that opting a
    /// cluster out of one deployment leaves it in every other.
    pub fn enabled_tag(&self) -> String {
        if self.owner == DEFAULT_OWNER {
            TAG_ENABLED.to_string()
        } else {
            format!("eks-private-dns/{}/enabled", self.owner)
        }
    }
}

impl Config {
    /// Every variable's effective value, as the environment would give it
    /// (an empty value: unset). `Config::from_lookup` on it gives the same
    /// configuration back.
    pub fn to_settings(&self) -> BTreeMap<String, String> {
        let join = |items: Vec<String>| items.join(",");
        let cidrs = |nets: &[IpNet]| join(nets.iter().map(|n| n.to_string()).collect());
        let mut s = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            s.insert(k.to_string(), v);
        };
        put(ENV_CLIENT_VPC_IDS, join_display(&self.client_vpc_ids));
        put(ENV_ONPREM_CIDRS, cidrs(&self.onprem_cidrs));
        put(
            ENV_DISCOVER_PEERED_VPCS,
            self.discover_peered_vpcs.to_string(),
        );
        put(
            ENV_OUTBOUND_ENDPOINT_ID,
            self.outbound_endpoint_id.clone().unwrap_or_default(),
        );
        put(
            ENV_OUTBOUND_VPC_ID,
            self.outbound_vpc_id.clone().unwrap_or_default(),
        );
        put(ENV_TRIGGER, self.trigger.as_str().to_string());
        put(ENV_SSM_PREFIX, self.ssm_prefix.clone());
        put(ENV_OWNER, self.owner.clone());
        put(ENV_MODE, self.mode.as_str().to_string());
        put(ENV_INBOUND_IPS, self.inbound_ips.to_string());
        put(ENV_ENDPOINT_TYPE, self.endpoint_type.as_str().to_string());
        put(ENV_ALLOW_WORLD, self.allow_world.to_string());
        put(ENV_ALLOW_PUBLIC_CIDRS, self.allow_public_cidrs.to_string());
        put(ENV_TAG_CIDR_ENVELOPE, cidrs(&self.tag_cidr_envelope));
        put(
            ENV_API_RULES_GROUP,
            self.api_rules_group.as_str().to_string(),
        );
        put(ENV_RESOLVER_RATE, self.resolver_rate.to_string());
        put(ENV_SWEEP_CONCURRENCY, self.sweep_concurrency.to_string());
        put(ENV_TLS_ROOTS, self.tls_roots.as_str().to_string());
        put(ENV_SPOKE_ACCOUNTS, join_display(&self.spoke_accounts));
        put(ENV_SPOKE_ROLE_NAME, self.spoke_role_name.clone());
        s
    }

    /// A short digest of the settings that decide what is built (all but
    /// the mode, the Resolver rate and the sweep's concurrency, which only
    /// say how): two runs with the same digest want the same plumbing.
    pub fn digest(&self) -> String {
        let settings = self.to_settings();
        let parts: Vec<String> = settings
            .iter()
            .filter(|(k, v)| variable(k).in_digest(v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        crate::owner::digest(&parts, 16)
    }
}

#[cfg(test)]
mod tests;
