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
        let client_vpc_ids = match get(ENV_CLIENT_VPC_IDS) {
            Some(v) => parse_vpc_list(ENV_CLIENT_VPC_IDS, &v, ',')?,
            None => Vec::new(),
        };
        let onprem_cidrs = match get(ENV_ONPREM_CIDRS) {
            Some(v) => parse_cidr_list(ENV_ONPREM_CIDRS, &v, ',', allow_world)?,
            None => Vec::new(),
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
    /// space-separated lists (EKS tag values allow no commas).
    pub fn parse(
        cluster: &str,
        tags: &BTreeMap<String, String>,
        allow_world: bool,
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
                parse_cidr_list(&setting(TAG_ONPREM_CIDRS), v, ' ', allow_world)?
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

/// Parse one CIDR block. Host bits must be zero, and a /0 is refused unless
/// `allow_world`.
pub fn parse_cidr(setting: &str, value: &str, allow_world: bool) -> Result<IpNet, ConfigError> {
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
    if net.prefix_len() == 0 && !allow_world {
        return Err(ConfigError::new(
            setting,
            format!(
                "'{value}' opens DNS and the Kubernetes API to the whole internet; \
                 set {ENV_ALLOW_WORLD}=true if that is really meant"
            ),
        ));
    }
    Ok(net)
}

fn parse_cidr_list(
    setting: &str,
    value: &str,
    separator: char,
    allow_world: bool,
) -> Result<Vec<IpNet>, ConfigError> {
    let mut nets = Vec::new();
    for item in split_list(value, separator) {
        let net = parse_cidr(setting, item, allow_world)?;
        if !nets.contains(&net) {
            nets.push(net);
        }
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
        let t = ClusterTags::parse("prod", &tags, false).unwrap();
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
        let err = ClusterTags::parse("prod", &tags, false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(TAG_ONPREM_CIDRS) && text.contains("prod"),
            "{text}"
        );
        let mut tags = BTreeMap::new();
        tags.insert(TAG_ENABLED.to_string(), "sometimes".to_string());
        assert!(ClusterTags::parse("prod", &tags, false).is_err());
        let mut tags = BTreeMap::new();
        tags.insert(TAG_ONPREM_CIDRS.to_string(), "::/0".to_string());
        assert!(ClusterTags::parse("prod", &tags, false).is_err());
        assert!(ClusterTags::parse("prod", &tags, true).is_ok());
    }
}
