//! One validated configuration, read once from the environment (the Lambdas)
//! or from the environment plus flags (the CLI), and passed down.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

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

/// Every variable the product reads, for `--help` texts and the docs.
pub const ALL_VARIABLES: &[&str] = &[
    ENV_CLIENT_VPC_IDS,
    ENV_ONPREM_CIDRS,
    ENV_DISCOVER_PEERED_VPCS,
    ENV_OUTBOUND_ENDPOINT_ID,
    ENV_OUTBOUND_VPC_ID,
    ENV_TRIGGER,
    ENV_SSM_PREFIX,
    ENV_OWNER,
    ENV_MODE,
    ENV_INBOUND_IPS,
    ENV_ALLOW_WORLD,
    ENV_ALLOW_PUBLIC_CIDRS,
    ENV_TAG_CIDR_ENVELOPE,
    ENV_API_RULES_GROUP,
    ENV_RESOLVER_RATE,
    ENV_SWEEP_CONCURRENCY,
];

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

/// When a cluster's endpoint access makes it a candidate for plumbing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// endpointPrivateAccess=true and endpointPublicAccess=false.
    PrivateOnly,
    /// endpointPrivateAccess=true, whatever the public access.
    PrivateAccess,
}

impl Trigger {
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
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRulesGroup::Cluster => "cluster",
            ApiRulesGroup::Tagged => "tagged",
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
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Plan => "plan",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub client_vpc_ids: Vec<String>,
    pub onprem_cidrs: Vec<IpNet>,
    pub discover_peered_vpcs: bool,
    pub outbound_endpoint_id: Option<String>,
    pub outbound_vpc_id: Option<String>,
    pub trigger: Trigger,
    pub ssm_prefix: String,
    pub owner: String,
    pub mode: Mode,
    pub inbound_ips: u8,
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
            allow_world: false,
            allow_public_cidrs: false,
            tag_cidr_envelope: private_ranges(),
            api_rules_group: ApiRulesGroup::Cluster,
            resolver_rate: DEFAULT_RESOLVER_RATE,
            sweep_concurrency: DEFAULT_SWEEP_CONCURRENCY,
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
        let defaults = Config::default();
        let allow_world = match get(ENV_ALLOW_WORLD) {
            Some(v) => parse_bool(ENV_ALLOW_WORLD, &v)?,
            None => false,
        };
        let allow_public_cidrs = match get(ENV_ALLOW_PUBLIC_CIDRS) {
            Some(v) => parse_bool(ENV_ALLOW_PUBLIC_CIDRS, &v)?,
            None => false,
        };
        let policy = CidrPolicy {
            allow_world,
            allow_public: allow_public_cidrs,
        };
        let client_vpc_ids = match get(ENV_CLIENT_VPC_IDS) {
            Some(v) => parse_vpc_list(ENV_CLIENT_VPC_IDS, &v, ',')?,
            None => Vec::new(),
        };
        let onprem_cidrs = match get(ENV_ONPREM_CIDRS) {
            Some(v) => parse_cidr_list(ENV_ONPREM_CIDRS, &v, ',', policy)?,
            None => Vec::new(),
        };
        let tag_cidr_envelope = match get(ENV_TAG_CIDR_ENVELOPE) {
            Some(v) => parse_cidr_list(ENV_TAG_CIDR_ENVELOPE, &v, ',', policy)?,
            None => defaults.tag_cidr_envelope,
        };
        let discover_peered_vpcs = match get(ENV_DISCOVER_PEERED_VPCS) {
            Some(v) => parse_bool(ENV_DISCOVER_PEERED_VPCS, &v)?,
            None => false,
        };
        let outbound_endpoint_id = match get(ENV_OUTBOUND_ENDPOINT_ID) {
            Some(v) => Some(parse_endpoint_id(ENV_OUTBOUND_ENDPOINT_ID, &v)?),
            None => None,
        };
        let outbound_vpc_id = match get(ENV_OUTBOUND_VPC_ID) {
            Some(v) => Some(parse_vpc_id(ENV_OUTBOUND_VPC_ID, &v)?),
            None => None,
        };
        let trigger = match get(ENV_TRIGGER).as_deref() {
            None | Some("private-only") => Trigger::PrivateOnly,
            Some("private-access") => Trigger::PrivateAccess,
            Some(other) => {
                return Err(ConfigError::new(
                    ENV_TRIGGER,
                    format!("'{other}' is not a trigger; use private-only or private-access"),
                ))
            }
        };
        let api_rules_group = match get(ENV_API_RULES_GROUP).as_deref() {
            None | Some("cluster") => ApiRulesGroup::Cluster,
            Some("tagged") => ApiRulesGroup::Tagged,
            Some(other) => {
                return Err(ConfigError::new(
                    ENV_API_RULES_GROUP,
                    format!("'{other}' is not a place for the 443 rules; use cluster or tagged"),
                ))
            }
        };
        let ssm_prefix = match get(ENV_SSM_PREFIX) {
            Some(v) => parse_ssm_prefix(&v)?,
            None => defaults.ssm_prefix,
        };
        let owner = match get(ENV_OWNER) {
            Some(v) => parse_owner(&v)?,
            None => defaults.owner,
        };
        let mode = match get(ENV_MODE).as_deref() {
            None | Some("apply") => Mode::Apply,
            Some("plan") => Mode::Plan,
            Some(other) => {
                return Err(ConfigError::new(
                    ENV_MODE,
                    format!("'{other}' is not a mode; use apply or plan"),
                ))
            }
        };
        let inbound_ips = match get(ENV_INBOUND_IPS) {
            Some(v) => parse_inbound_ips(&v)?,
            None => defaults.inbound_ips,
        };
        let resolver_rate = match get(ENV_RESOLVER_RATE) {
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.1..=100.0).contains(&r) => r,
                _ => {
                    return Err(ConfigError::new(
                        ENV_RESOLVER_RATE,
                        format!("'{v}' is not a rate between 0.1 and 100 requests per second"),
                    ))
                }
            },
            None => defaults.resolver_rate,
        };
        let sweep_concurrency = match get(ENV_SWEEP_CONCURRENCY) {
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        ENV_SWEEP_CONCURRENCY,
                        format!("'{v}' is not a number of clusters between 1 and 64"),
                    ))
                }
            },
            None => defaults.sweep_concurrency,
        };
        Ok(Config {
            client_vpc_ids,
            onprem_cidrs,
            discover_peered_vpcs,
            outbound_endpoint_id,
            outbound_vpc_id,
            trigger,
            ssm_prefix,
            owner,
            mode,
            inbound_ips,
            allow_world,
            allow_public_cidrs,
            tag_cidr_envelope,
            api_rules_group,
            resolver_rate,
            sweep_concurrency,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cidrs: Vec<String> = self.onprem_cidrs.iter().map(|c| c.to_string()).collect();
        write!(
            f,
            "owner={} trigger={} mode={} prefix={} client-vpcs=[{}] onprem-cidrs=[{}] \
             peered={} inbound-ips={} outbound-endpoint={} outbound-vpc={}",
            self.owner,
            self.trigger.as_str(),
            self.mode.as_str(),
            self.ssm_prefix,
            self.client_vpc_ids.join(","),
            cidrs.join(","),
            self.discover_peered_vpcs,
            self.inbound_ips,
            self.outbound_endpoint_id.as_deref().unwrap_or("-"),
            self.outbound_vpc_id.as_deref().unwrap_or("-"),
        )
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
        put(ENV_CLIENT_VPC_IDS, join(self.client_vpc_ids.clone()));
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
        put(ENV_ALLOW_WORLD, self.allow_world.to_string());
        put(ENV_ALLOW_PUBLIC_CIDRS, self.allow_public_cidrs.to_string());
        put(ENV_TAG_CIDR_ENVELOPE, cidrs(&self.tag_cidr_envelope));
        put(
            ENV_API_RULES_GROUP,
            self.api_rules_group.as_str().to_string(),
        );
        put(ENV_RESOLVER_RATE, self.resolver_rate.to_string());
        put(ENV_SWEEP_CONCURRENCY, self.sweep_concurrency.to_string());
        s
    }

    /// A short digest of the settings that decide what is built (all but
    /// the mode, the Resolver rate and the sweep's concurrency, which only
    /// say how): two runs with the same digest want the same plumbing.
    pub fn digest(&self) -> String {
        let settings = self.to_settings();
        let parts: Vec<String> = settings
            .iter()
            .filter(|(k, _)| {
                ![ENV_MODE, ENV_RESOLVER_RATE, ENV_SWEEP_CONCURRENCY].contains(&k.as_str())
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        crate::owner::digest(&parts, 16)
    }
}

/// What a cluster's own tags add to the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterTags {
    /// Some(true): opted in; Some(false): opted out; None: the trigger decides.
    pub enabled: Option<bool>,
    pub client_vpc_ids: Vec<String>,
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
        let enabled = match tags.get(TAG_ENABLED).map(|v| v.trim()) {
            None | Some("") => None,
            Some(v) => Some(parse_bool(&setting(TAG_ENABLED), v)?),
        };
        let client_vpc_ids = match tags.get(TAG_CLIENT_VPC_IDS) {
            Some(v) if !v.trim().is_empty() => {
                parse_vpc_list(&setting(TAG_CLIENT_VPC_IDS), v, ' ')?
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

fn parse_bool(setting: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::new(
            setting,
            format!("'{value}' is not a boolean; use true or false"),
        )),
    }
}

fn split_list(value: &str, separator: char) -> impl Iterator<Item = &str> {
    value
        .split(move |c: char| c == separator || (separator == ' ' && c.is_whitespace()))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A VPC id: "vpc-" and 8 or 17 lower-case hexadecimal digits.
pub fn is_vpc_id(value: &str) -> bool {
    is_aws_id(value, "vpc-")
}

fn is_aws_id(value: &str, prefix: &str) -> bool {
    match value.strip_prefix(prefix) {
        Some(hex) => {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        None => false,
    }
}

fn parse_vpc_id(setting: &str, value: &str) -> Result<String, ConfigError> {
    if is_vpc_id(value) {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            setting,
            format!("'{value}' is not a VPC id (expected vpc- and 8 or 17 hex digits)"),
        ))
    }
}

fn parse_vpc_list(setting: &str, value: &str, separator: char) -> Result<Vec<String>, ConfigError> {
    let mut ids = Vec::new();
    for item in split_list(value, separator) {
        let id = parse_vpc_id(setting, item)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn parse_endpoint_id(setting: &str, value: &str) -> Result<String, ConfigError> {
    let ok = value
        .strip_prefix("rslvr-out-")
        .map(|hex| {
            !hex.is_empty() && hex.len() <= 32 && hex.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .unwrap_or(false);
    if ok {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            setting,
            format!("'{value}' is not an outbound Resolver endpoint id (expected rslvr-out-...)"),
        ))
    }
}

/// The private address space: RFC 1918, RFC 6598 (shared address space)
/// and RFC 4193 (IPv6 unique local addresses).
pub fn private_ranges() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ]
    .iter()
    .map(|r| r.parse().expect("a valid CIDR"))
    .collect()
}

/// Whether `net` lies wholly inside the private address space.
pub fn is_private(net: &IpNet) -> bool {
    private_ranges().iter().any(|r| r.contains(net))
}

/// What the operator allows among the CIDRs that open 53 and 443.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CidrPolicy {
    /// A /0 (or ranges whose union is the whole address space).
    pub allow_world: bool,
    /// Ranges outside the private address space.
    pub allow_public: bool,
}

impl Config {
    pub fn cidr_policy(&self) -> CidrPolicy {
        CidrPolicy {
            allow_world: self.allow_world,
            allow_public: self.allow_public_cidrs,
        }
    }
}

/// Parse one CIDR block. Host bits must be zero; a block that covers
/// public address space is refused unless the policy allows public CIDRs
/// (or the world, which is the widest of them), and a /0 unless it allows
/// the world.
pub fn parse_cidr(setting: &str, value: &str, policy: CidrPolicy) -> Result<IpNet, ConfigError> {
    let net: IpNet = value.parse().map_err(|_| {
        ConfigError::new(
            setting,
            format!("'{value}' is not a CIDR block (expected e.g. 10.20.0.0/16 or fd00::/8)"),
        )
    })?;
    if net.network() != net.addr() {
        return Err(ConfigError::new(
            setting,
            format!("'{value}' has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    if net.prefix_len() == 0 && !policy.allow_world {
        return Err(world_error(setting, value));
    }
    if !is_private(&net) && !policy.allow_public && !policy.allow_world {
        return Err(ConfigError::new(
            setting,
            format!(
                "'{value}' covers public address space (outside 10.0.0.0/8, 172.16.0.0/12, \
                 192.168.0.0/16, 100.64.0.0/10 and fc00::/7) and would open DNS and the \
                 Kubernetes API to it; set {ENV_ALLOW_PUBLIC_CIDRS}=true if that is really meant"
            ),
        ));
    }
    Ok(net)
}

fn world_error(setting: &str, value: &str) -> ConfigError {
    ConfigError::new(
        setting,
        format!(
            "'{value}' opens DNS and the Kubernetes API to the whole internet; \
             set {ENV_ALLOW_WORLD}=true if that is really meant"
        ),
    )
}

fn parse_cidr_list(
    setting: &str,
    value: &str,
    separator: char,
    policy: CidrPolicy,
) -> Result<Vec<IpNet>, ConfigError> {
    let mut nets = Vec::new();
    for item in split_list(value, separator) {
        let net = parse_cidr(setting, item, policy)?;
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    // Ranges that are each less than the world can add up to it
    // (0.0.0.0/1 and 128.0.0.0/1).
    if !policy.allow_world && IpNet::aggregate(&nets).iter().any(|n| n.prefix_len() == 0) {
        return Err(world_error(setting, value));
    }
    Ok(nets)
}

fn parse_ssm_prefix(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_end_matches('/');
    let valid = trimmed.starts_with('/')
        && trimmed.len() > 1
        && trimmed.len() <= 900
        && !trimmed.contains("//")
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
        && !trimmed.to_ascii_lowercase().starts_with("/aws")
        && !trimmed.to_ascii_lowercase().starts_with("/ssm");
    if valid {
        Ok(trimmed.to_string())
    } else {
        Err(ConfigError::new(
            ENV_SSM_PREFIX,
            format!(
                "'{value}' is not a usable parameter path (expected e.g. /eks-private-dns: \
                 a leading slash, letters, digits, / _ . -, not under /aws or /ssm)"
            ),
        ))
    }
}

fn parse_owner(value: &str) -> Result<String, ConfigError> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if valid {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            ENV_OWNER,
            format!(
                "'{value}' is not a usable owner id (1 to 64 letters, digits, . _ -, \
                 starting with a letter or digit)"
            ),
        ))
    }
}

fn parse_inbound_ips(value: &str) -> Result<u8, ConfigError> {
    match value.parse::<u8>() {
        Ok(n) if (MIN_INBOUND_IPS..=MAX_INBOUND_IPS).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            ENV_INBOUND_IPS,
            format!(
                "'{value}' is out of range; an inbound endpoint has {MIN_INBOUND_IPS} to \
                 {MAX_INBOUND_IPS} IP addresses"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.ssm_prefix, "/eks-private-dns");
        assert_eq!(c.inbound_ips, 2);
        assert_eq!(c.trigger, Trigger::PrivateOnly);
    }

    #[test]
    fn parses_every_variable() {
        let c = config(&[
            (
                ENV_CLIENT_VPC_IDS,
                "vpc-0123456789abcdef0, vpc-11111111,vpc-11111111",
            ),
            (ENV_ONPREM_CIDRS, "10.0.0.0/8,fd00::/8"),
            (ENV_DISCOVER_PEERED_VPCS, "true"),
            (ENV_OUTBOUND_ENDPOINT_ID, "rslvr-out-0123456789abcdef0"),
            (ENV_OUTBOUND_VPC_ID, "vpc-22222222"),
            (ENV_TRIGGER, "private-access"),
            (ENV_SSM_PREFIX, "/dns/eks/"),
            (ENV_OWNER, "team-a"),
            (ENV_MODE, "plan"),
            (ENV_INBOUND_IPS, "3"),
        ])
        .unwrap();
        assert_eq!(
            c.client_vpc_ids,
            vec!["vpc-0123456789abcdef0", "vpc-11111111"]
        );
        assert_eq!(c.onprem_cidrs.len(), 2);
        assert!(c.discover_peered_vpcs);
        assert_eq!(
            c.outbound_endpoint_id.as_deref(),
            Some("rslvr-out-0123456789abcdef0")
        );
        assert_eq!(c.outbound_vpc_id.as_deref(), Some("vpc-22222222"));
        assert_eq!(c.trigger, Trigger::PrivateAccess);
        assert_eq!(c.ssm_prefix, "/dns/eks");
        assert_eq!(c.owner, "team-a");
        assert_eq!(c.mode, Mode::Plan);
        assert_eq!(c.inbound_ips, 3);
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let cases = [
            (ENV_CLIENT_VPC_IDS, "vpc-xyz"),
            (ENV_ONPREM_CIDRS, "10.0.0/8"),
            (ENV_ONPREM_CIDRS, "10.0.0.1/8"),
            (ENV_ONPREM_CIDRS, "0.0.0.0/0"),
            (ENV_ONPREM_CIDRS, "::/0"),
            (ENV_ONPREM_CIDRS, "203.0.113.0/24"),
            (ENV_TAG_CIDR_ENVELOPE, "8.0.0.0/8"),
            (ENV_ALLOW_PUBLIC_CIDRS, "perhaps"),
            (ENV_API_RULES_GROUP, "nodes"),
            (ENV_INBOUND_IPS, "1"),
            (ENV_INBOUND_IPS, "7"),
            (ENV_INBOUND_IPS, "two"),
            (ENV_TRIGGER, "always"),
            (ENV_MODE, "yolo"),
            (ENV_OWNER, "has space"),
            (ENV_SSM_PREFIX, "no-slash"),
            (ENV_SSM_PREFIX, "/aws/reserved"),
            (ENV_OUTBOUND_ENDPOINT_ID, "rslvr-in-0123"),
            (ENV_DISCOVER_PEERED_VPCS, "maybe"),
            (ENV_RESOLVER_RATE, "0"),
            (ENV_SWEEP_CONCURRENCY, "0"),
        ];
        for (var, value) in cases {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.setting, var, "{var}={value}");
            let text = err.to_string();
            assert!(text.contains(var) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn settings_round_trip_and_the_digest_follows_what_is_built() {
        let c = config(&[
            (ENV_CLIENT_VPC_IDS, "vpc-11111111,vpc-22222222"),
            (ENV_ONPREM_CIDRS, "10.0.0.0/8,fd00::/8"),
            (ENV_OUTBOUND_VPC_ID, "vpc-22222222"),
            (ENV_TAG_CIDR_ENVELOPE, "10.20.0.0/16"),
            (ENV_INBOUND_IPS, "3"),
        ])
        .unwrap();
        let settings = c.to_settings();
        assert_eq!(settings.len(), ALL_VARIABLES.len());
        let again = Config::from_lookup(|k| settings.get(k).cloned()).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.digest(), c.digest());
        // How it runs does not change the digest; what it builds does.
        let mut how = c.clone();
        how.mode = Mode::Plan;
        how.resolver_rate = 1.0;
        how.sweep_concurrency = 9;
        assert_eq!(how.digest(), c.digest());
        let mut what = c.clone();
        what.client_vpc_ids.pop();
        assert_ne!(what.digest(), c.digest());
        assert_ne!(Config::default().digest(), c.digest());
        assert_eq!(c.digest().len(), 16);
    }

    #[test]
    fn world_is_allowed_only_when_asked() {
        let c = config(&[(ENV_ONPREM_CIDRS, "0.0.0.0/0"), (ENV_ALLOW_WORLD, "true")]).unwrap();
        assert_eq!(c.onprem_cidrs[0].to_string(), "0.0.0.0/0");
        let err = config(&[(ENV_ONPREM_CIDRS, "10.0.0.0/8,0.0.0.0/0")]).unwrap_err();
        assert!(err.to_string().contains(ENV_ALLOW_WORLD));
    }

    #[test]
    fn cluster_tags_are_space_separated() {
        let mut tags = BTreeMap::new();
        tags.insert(TAG_ENABLED.to_string(), "false".to_string());
        tags.insert(
            TAG_CLIENT_VPC_IDS.to_string(),
            "vpc-11111111  vpc-22222222".to_string(),
        );
        tags.insert(TAG_ONPREM_CIDRS.to_string(), "192.168.0.0/16".to_string());
        let t = ClusterTags::parse("prod", &tags, &Config::default()).unwrap();
        assert_eq!(t.enabled, Some(false));
        assert_eq!(t.client_vpc_ids, vec!["vpc-11111111", "vpc-22222222"]);
        assert_eq!(t.onprem_cidrs[0].to_string(), "192.168.0.0/16");
    }

    #[test]
    fn bad_cluster_tags_name_the_tag_and_cluster() {
        let mut tags = BTreeMap::new();
        tags.insert(
            TAG_ONPREM_CIDRS.to_string(),
            "10.0.0.0/8,10.1.0.0/16".to_string(),
        );
        let err = ClusterTags::parse("prod", &tags, &Config::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(TAG_ONPREM_CIDRS) && text.contains("prod"),
            "{text}"
        );
        let mut tags = BTreeMap::new();
        tags.insert(TAG_ENABLED.to_string(), "sometimes".to_string());
        assert!(ClusterTags::parse("prod", &tags, &Config::default()).is_err());
    }

    #[test]
    fn public_space_needs_the_switch_whatever_the_length() {
        for value in ["203.0.113.0/24", "8.8.8.8/32", "2001:db8::/32", "0.0.0.0/1"] {
            let err = config(&[(ENV_ONPREM_CIDRS, value)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(ENV_ALLOW_PUBLIC_CIDRS) && text.contains(value),
                "{text}"
            );
            let c = config(&[(ENV_ONPREM_CIDRS, value), (ENV_ALLOW_PUBLIC_CIDRS, "true")]);
            assert!(c.is_ok(), "{value}: {c:?}");
        }
        for value in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.4.0/24",
            "100.64.0.0/10",
            "fd00::/8",
        ] {
            assert!(config(&[(ENV_ONPREM_CIDRS, value)]).is_ok(), "{value}");
        }
        // 172.32.0.0/16 is just outside 172.16.0.0/12; 10.0.0.0/7 is wider
        // than 10.0.0.0/8.
        for value in ["172.32.0.0/16", "10.0.0.0/7", "fe80::/10"] {
            assert!(config(&[(ENV_ONPREM_CIDRS, value)]).is_err(), "{value}");
        }
    }

    #[test]
    fn ranges_that_add_up_to_the_world_are_the_world() {
        let halves = "0.0.0.0/1,128.0.0.0/1";
        let err =
            config(&[(ENV_ONPREM_CIDRS, halves), (ENV_ALLOW_PUBLIC_CIDRS, "true")]).unwrap_err();
        assert!(err.to_string().contains(ENV_ALLOW_WORLD), "{err}");
        assert!(config(&[(ENV_ONPREM_CIDRS, halves), (ENV_ALLOW_WORLD, "true")]).is_ok());
        let err = config(&[
            (ENV_ONPREM_CIDRS, "::/1,8000::/1"),
            (ENV_ALLOW_PUBLIC_CIDRS, "true"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains(ENV_ALLOW_WORLD), "{err}");
        // The world switch covers public space too.
        assert!(config(&[
            (ENV_ONPREM_CIDRS, "198.51.100.0/24"),
            (ENV_ALLOW_WORLD, "true")
        ])
        .is_ok());
    }

    #[test]
    fn tag_cidrs_must_lie_inside_the_envelope() {
        let tagged = |value: &str| {
            let mut tags = BTreeMap::new();
            tags.insert(TAG_ONPREM_CIDRS.to_string(), value.to_string());
            tags
        };
        let default = Config::default();
        assert!(ClusterTags::parse("prod", &tagged("10.9.0.0/16 fd00:1::/64"), &default).is_ok());
        for value in [
            "::/0",
            "0.0.0.0/1 128.0.0.0/1",
            "203.0.113.0/24",
            "10.0.0.0/7",
        ] {
            let err = ClusterTags::parse("prod", &tagged(value), &default).unwrap_err();
            assert!(err.setting.contains(TAG_ONPREM_CIDRS), "{err}");
            assert!(err.setting.contains("prod"), "{err}");
        }
        // Even with public CIDRs allowed for the operator, a tag stays in
        // the envelope.
        let open = config(&[(ENV_ALLOW_PUBLIC_CIDRS, "true")]).unwrap();
        let err = ClusterTags::parse("prod", &tagged("203.0.113.0/24"), &open).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(ENV_TAG_CIDR_ENVELOPE) && text.contains("203.0.113.0/24"),
            "{text}"
        );
        // A narrower envelope refuses a private range outside it.
        let narrow = config(&[(ENV_TAG_CIDR_ENVELOPE, "10.20.0.0/16")]).unwrap();
        assert!(ClusterTags::parse("prod", &tagged("10.20.1.0/24"), &narrow).is_ok());
        assert!(ClusterTags::parse("prod", &tagged("10.21.0.0/24"), &narrow).is_err());
        // The envelope itself is held to the operator's policy.
        let err = config(&[(ENV_TAG_CIDR_ENVELOPE, "0.0.0.0/0")]).unwrap_err();
        assert_eq!(err.setting, ENV_TAG_CIDR_ENVELOPE);
    }
}
