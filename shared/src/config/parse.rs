//! The values of settings and tags, checked: VPC and endpoint ids, CIDRs
//! held to the policy, the prefix, the owner.

use ipnet::IpNet;

use super::*;
use crate::model::{Account, VpcRef};

pub(super) fn parse_bool(setting: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::new(
            setting,
            format!("'{value}' is not a boolean; use true or false"),
        )),
    }
}

pub(super) fn split_list(value: &str, separator: char) -> impl Iterator<Item = &str> {
    value
        .split(move |c: char| c == separator || (separator == ' ' && c.is_whitespace()))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A VPC id: "vpc-" and 8 or 17 lower-case hexadecimal digits.
pub fn is_vpc_id(value: &str) -> bool {
    is_aws_id(value, "vpc-")
}

pub(super) fn is_aws_id(value: &str, prefix: &str) -> bool {
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

pub(super) fn parse_vpc_id(setting: &str, value: &str) -> Result<String, ConfigError> {
    if is_vpc_id(value) {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            setting,
            format!("'{value}' is not a VPC id (expected vpc- and 8 or 17 hex digits)"),
        ))
    }
}

/// A client VPC as a setting or tag names it: `vpc-id`, of the account
/// whose setting it is (the deployment's for the variable, the cluster's
/// for its tag), or `ACCOUNT:vpc-id`, of another account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientVpc {
    /// The 12-digit account id, when given.
    pub account: Option<String>,
    pub vpc_id: String,
}

impl ClientVpc {
    /// A VPC of the setting's own account.
    pub fn bare(vpc_id: &str) -> ClientVpc {
        ClientVpc {
            account: None,
            vpc_id: vpc_id.to_string(),
        }
    }

    /// The VPC this names, seen from a deployment in `home` (when known):
    /// a bare id is in `own` (the account whose setting names it).
    pub fn resolve(&self, own: &Account, home: Option<&str>) -> VpcRef {
        VpcRef {
            account: match &self.account {
                Some(id) => Account::of(id, home),
                None => own.clone(),
            },
            id: self.vpc_id.clone(),
        }
    }
}

/// "vpc-id" or "ACCOUNT:vpc-id", unchecked (the settings' parsers check).
impl From<&str> for ClientVpc {
    fn from(text: &str) -> ClientVpc {
        match text.split_once(':') {
            Some((account, vpc)) => ClientVpc {
                account: Some(account.to_string()),
                vpc_id: vpc.to_string(),
            },
            None => ClientVpc::bare(text),
        }
    }
}

/// Equal to the text that names it.
impl PartialEq<&str> for ClientVpc {
    fn eq(&self, other: &&str) -> bool {
        match (&self.account, other.split_once(':')) {
            (Some(account), Some((theirs, vpc))) => account == theirs && self.vpc_id == vpc,
            (None, None) => self.vpc_id == *other,
            _ => false,
        }
    }
}

impl fmt::Display for ClientVpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}:{}", self.vpc_id),
            None => f.write_str(&self.vpc_id),
        }
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.chars().all(|c| c.is_ascii_digit())
}

pub(super) fn parse_client_vpc(setting: &str, value: &str) -> Result<ClientVpc, ConfigError> {
    let (account, vpc) = match value.split_once(':') {
        Some((account, vpc)) => (Some(account), vpc),
        None => (None, value),
    };
    if let Some(account) = account {
        if !is_account_id(account) {
            return Err(ConfigError::new(
                setting,
                format!(
                    "'{value}' names no account: expected ACCOUNT:vpc-id with a 12-digit \
                     account id, or a bare vpc-id"
                ),
            ));
        }
    }
    Ok(ClientVpc {
        account: account.map(str::to_string),
        vpc_id: parse_vpc_id(setting, vpc)?,
    })
}

pub(super) fn parse_client_vpc_list(
    setting: &str,
    value: &str,
    separator: char,
) -> Result<Vec<ClientVpc>, ConfigError> {
    let mut vpcs = Vec::new();
    for item in split_list(value, separator) {
        let vpc = parse_client_vpc(setting, item)?;
        if !vpcs.contains(&vpc) {
            vpcs.push(vpc);
        }
    }
    Ok(vpcs)
}

/// An entry of the spoke accounts: an account, or an organizational unit
/// or the root, whose accounts (in child OUs too) are served.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpokeEntry {
    Account(String),
    /// "ou-..." or "r-...".
    Unit(String),
}

impl fmt::Display for SpokeEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpokeEntry::Account(id) | SpokeEntry::Unit(id) => f.write_str(id),
        }
    }
}

/// Lower-case letters and digits, `min` to `max` of them.
fn is_id_part(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

/// An OU id (`ou-` 4 to 32, `-`, 8 to 32 letters or digits) or a root id
/// (`r-` 4 to 32), as the Organizations API reference gives their patterns.
pub fn is_unit_id(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix("ou-") {
        return rest
            .split_once('-')
            .is_some_and(|(root, unit)| is_id_part(root, 4, 32) && is_id_part(unit, 8, 32));
    }
    value
        .strip_prefix("r-")
        .is_some_and(|root| is_id_part(root, 4, 32))
}

pub(super) fn parse_spoke_list(setting: &str, value: &str) -> Result<Vec<SpokeEntry>, ConfigError> {
    let mut entries = Vec::new();
    for item in split_list(value, ',') {
        let entry = if is_account_id(item) {
            SpokeEntry::Account(item.to_string())
        } else if is_unit_id(item) {
            SpokeEntry::Unit(item.to_string())
        } else {
            return Err(ConfigError::new(
                setting,
                format!(
                    "'{item}' is neither a 12-digit account id nor an organizational unit \
                     (ou-...) or root (r-...) id"
                ),
            ));
        };
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// An IAM role name: 1 to 64 letters, digits and +=,.@_-.
pub(super) fn parse_role_name(setting: &str, value: &str) -> Result<String, ConfigError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            setting,
            format!("'{value}' is not an IAM role name (1 to 64 letters, digits and +=,.@_-)"),
        ))
    }
}

pub(super) fn parse_endpoint_id(setting: &str, value: &str) -> Result<String, ConfigError> {
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

pub(super) fn world_error(setting: &str, value: &str) -> ConfigError {
    ConfigError::new(
        setting,
        format!(
            "'{value}' opens DNS and the Kubernetes API to the whole internet; \
             set {ENV_ALLOW_WORLD}=true if that is really meant"
        ),
    )
}

pub(super) fn parse_cidr_list(
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

pub(super) fn parse_ssm_prefix(value: &str) -> Result<String, ConfigError> {
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

pub(super) fn parse_owner(value: &str) -> Result<String, ConfigError> {
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
