//! Every setting, defined once: its variable, the CLI flag that overrides
//! it, the template parameter that sets it, the flag's help, the default as
//! the README's table gives it, the values it takes (its parsing, bounds,
//! choices and default) and whether it is in the settings digest.
//! `Config::from_lookup` reads these variables by this table, the CLI makes
//! its flags from it, and tests hold the README's table and the template's
//! parameters to it.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Variable {
    pub name: &'static str,
    /// The CLI flag, without the dashes.
    pub flag: &'static str,
    /// The template's parameter that sets it.
    pub parameter: &'static str,
    pub help: &'static str,
    /// The default, in the words of the README's table.
    pub default: &'static str,
    /// What values it takes: its parsing, bounds and default.
    pub value: Value,
    /// Whether it is in the settings digest (`Config::digest`).
    pub digest: Digest,
}

/// The values a variable takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Checked by its own parser (ids, a path, an owner id); unset by
    /// default unless the table's default says otherwise.
    Text,
    /// A comma-separated list of items its parser checks; empty by default.
    List,
    /// true or false; false by default.
    Switch,
    /// One of these names; the first is the default.
    Choice(&'static [&'static str]),
    /// A number from `min` to `max` (whole numbers only when `whole`).
    Number {
        min: f64,
        max: f64,
        default: f64,
        whole: bool,
    },
}

/// Whether a variable is in the settings digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    /// It changes what is built.
    Always,
    /// It changes what is built, and is left out at its default, as before
    /// it existed (adding it changed no deployment's digest).
    UnlessDefault,
    /// It only changes how (the mode, the pace, the roots).
    Never,
}

impl Variable {
    /// Whether `value` (as the environment gives it) belongs in the digest.
    pub fn in_digest(&self, value: &str) -> bool {
        match self.digest {
            Digest::Always => true,
            Digest::UnlessDefault => match self.value {
                Value::Choice(names) => value != names[0],
                _ => !value.is_empty(),
            },
            Digest::Never => false,
        }
    }

    /// Its choices (empty unless a choice).
    pub fn choices(&self) -> &'static [&'static str] {
        match self.value {
            Value::Choice(names) => names,
            _ => &[],
        }
    }
}

/// The variable of this name.
pub fn variable(name: &str) -> &'static Variable {
    VARIABLES
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the variables table"))
}

const fn var(
    name: &'static str,
    flag: &'static str,
    parameter: &'static str,
    help: &'static str,
    default: &'static str,
    value: Value,
) -> Variable {
    Variable {
        name,
        flag,
        parameter,
        help,
        default,
        value,
        digest: Digest::Always,
    }
}

/// Only how, not what: out of the digest.
const fn how(mut v: Variable) -> Variable {
    v.digest = Digest::Never;
    v
}

/// Out of the digest at its default.
const fn unless_default(mut v: Variable) -> Variable {
    v.digest = Digest::UnlessDefault;
    v
}

const SWITCH: Value = Value::Switch;

pub const VARIABLES: &[Variable] = &[
    var(
        ENV_CLIENT_VPC_IDS,
        "client-vpc-ids",
        "ClientVpcIds",
        "Comma-separated VPC ids that must resolve the cluster names.",
        "empty",
        Value::List,
    ),
    var(
        ENV_ONPREM_CIDRS,
        "onprem-cidrs",
        "OnPremCidrs",
        "Comma-separated on-premises CIDRs allowed on 53 and 443.",
        "empty",
        Value::List,
    ),
    var(
        ENV_DISCOVER_PEERED_VPCS,
        "discover-peered-vpcs",
        "DiscoverPeeredVpcs",
        "Also treat VPCs peered with the cluster VPC as client VPCs (true/false).",
        "false",
        SWITCH,
    ),
    var(
        ENV_OUTBOUND_ENDPOINT_ID,
        "outbound-endpoint-id",
        "OutboundEndpointId",
        "Use this existing outbound Resolver endpoint; never create or delete one.",
        "empty",
        Value::Text,
    ),
    var(
        ENV_OUTBOUND_VPC_ID,
        "outbound-vpc-id",
        "OutboundVpcId",
        "Where to create the shared outbound endpoint.",
        "first client VPC",
        Value::Text,
    ),
    var(
        ENV_TRIGGER,
        "trigger",
        "Trigger",
        "private-only or private-access.",
        "private-only",
        Value::Choice(&["private-only", "private-access"]),
    ),
    var(
        ENV_SSM_PREFIX,
        "ssm-prefix",
        "SsmPrefix",
        "SSM parameter path prefix.",
        DEFAULT_SSM_PREFIX,
        Value::Text,
    ),
    var(
        ENV_OWNER,
        "owner",
        "Owner",
        "Owner id written in ownership tags.",
        DEFAULT_OWNER,
        Value::Text,
    ),
    how(var(
        ENV_MODE,
        "mode",
        "Mode",
        "apply, or plan (observe and report, change nothing); the commands plan and status \
         never change anything whatever this says.",
        "apply",
        Value::Choice(&["apply", "plan"]),
    )),
    var(
        ENV_INBOUND_IPS,
        "inbound-ips",
        "InboundIps",
        "IPs per inbound endpoint, 2 to 6.",
        "2",
        Value::Number {
            min: MIN_INBOUND_IPS as f64,
            max: MAX_INBOUND_IPS as f64,
            default: DEFAULT_INBOUND_IPS as f64,
            whole: true,
        },
    ),
    unless_default(var(
        ENV_ENDPOINT_TYPE,
        "endpoint-type",
        "EndpointType",
        "The inbound endpoints' IP stack: auto (DUALSTACK for IPv6 clusters whose subnets have \
         IPv6 blocks), ipv4, or dualstack.",
        "auto",
        Value::Choice(&["auto", "ipv4", "dualstack"]),
    )),
    var(
        ENV_ALLOW_WORLD,
        "allow-world",
        "AllowWorld",
        "Allow 0.0.0.0/0 or ::/0 among the CIDRs (true/false).",
        "false",
        SWITCH,
    ),
    var(
        ENV_ALLOW_PUBLIC_CIDRS,
        "allow-public-cidrs",
        "AllowPublicCidrs",
        "Allow CIDRs that cover public address space (true/false).",
        "false",
        SWITCH,
    ),
    var(
        ENV_TAG_CIDR_ENVELOPE,
        "tag-cidr-envelope",
        "TagCidrEnvelope",
        "Comma-separated CIDRs inside which cluster tags' CIDRs must lie (default: the \
         private ranges).",
        "the private ranges",
        Value::List,
    ),
    var(
        ENV_API_RULES_GROUP,
        "api-rules-group",
        "ApiRulesGroup",
        "Where the 443 rules go: cluster (the EKS-made cluster security group) or tagged (the \
         cluster's additional group tagged eks-private-dns:api-rules=<owner>).",
        "cluster",
        Value::Choice(&["cluster", "tagged"]),
    ),
    how(var(
        ENV_RESOLVER_RATE,
        "resolver-rate",
        "ResolverRate",
        "Route 53 Resolver requests per second, for each process.",
        "4",
        Value::Number {
            min: 0.1,
            max: 100.0,
            default: DEFAULT_RESOLVER_RATE,
            whole: false,
        },
    )),
    how(var(
        ENV_SWEEP_CONCURRENCY,
        "sweep-concurrency",
        "SweepConcurrency",
        "Clusters a sweep reconciles at once.",
        "4",
        Value::Number {
            min: 1.0,
            max: 32.0,
            default: DEFAULT_SWEEP_CONCURRENCY as f64,
            whole: true,
        },
    )),
    unless_default(var(
        ENV_SPOKE_ACCOUNTS,
        "spoke-accounts",
        "SpokeAccounts",
        "Comma-separated accounts this (hub) deployment serves besides its own: 12-digit \
         account ids, organizational units (ou-...) or the root (r-...), whose accounts are \
         served, in child OUs too.",
        "empty",
        Value::List,
    )),
    how(var(
        ENV_SPOKE_ROLE_NAME,
        "spoke-role-name",
        "SpokeRoleName",
        "The role assumed in each spoke account (spoke/template.yaml makes it).",
        DEFAULT_SPOKE_ROLE_NAME,
        Value::Text,
    )),
    how(var(
        ENV_TLS_ROOTS,
        "tls-roots",
        "TlsRoots",
        "Roots AWS endpoints are verified against: amazon (the Amazon Trust Services roots, \
         compiled in), system (the operating system's store), or auto (amazon in Lambda outside \
         the China regions with no HTTPS proxy, system elsewhere).",
        "auto",
        Value::Choice(&["auto", "amazon", "system"]),
    )),
];

/// Every variable's name, in the table's order.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().map(|v| v.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variable_once_with_a_flag_of_its_name() {
        let mut names: Vec<&str> = variable_names().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
        for v in VARIABLES {
            let flag = v.name.trim_start_matches("EKS_PRIVATE_DNS_").to_lowercase();
            assert_eq!(flag.replace('_', "-"), v.flag, "{}", v.name);
        }
        assert_eq!(
            Config::default().to_settings().len(),
            VARIABLES.len(),
            "to_settings gives every variable of the table"
        );
    }

    /// Each typed choice lists the table's names, in its order: the first
    /// is the default.
    #[test]
    fn every_choice_is_the_tables() {
        fn names<T>(options: &[(&'static str, T)]) -> Vec<&'static str> {
            options.iter().map(|(n, _)| *n).collect()
        }
        let typed = [
            (ENV_TRIGGER, names(Trigger::CHOICES)),
            (ENV_MODE, names(Mode::CHOICES)),
            (ENV_ENDPOINT_TYPE, names(EndpointTypeSetting::CHOICES)),
            (ENV_API_RULES_GROUP, names(ApiRulesGroup::CHOICES)),
            (ENV_TLS_ROOTS, names(crate::tls::TlsRoots::CHOICES)),
        ];
        for (name, choices) in &typed {
            assert_eq!(variable(name).choices(), choices.as_slice(), "{name}");
            assert_eq!(variable(name).default, choices[0], "{name}: the default");
        }
        let chosen = VARIABLES
            .iter()
            .filter(|v| matches!(v.value, Value::Choice(_)))
            .count();
        assert_eq!(chosen, typed.len(), "a choice without its enum");
    }

    /// The defaults: what an empty environment gives, as the table says.
    #[test]
    fn an_empty_environment_gives_the_tables_defaults() {
        let settings = Config::default().to_settings();
        for v in VARIABLES {
            let value = &settings[v.name];
            match v.value {
                Value::Switch => assert_eq!(value, "false", "{}", v.name),
                Value::Choice(names) => assert_eq!(value, names[0], "{}", v.name),
                Value::Number { default, .. } => {
                    assert_eq!(value.parse::<f64>().unwrap(), default, "{}", v.name);
                    assert_eq!(v.default, value.as_str(), "{}", v.name);
                }
                Value::List | Value::Text => {}
            }
        }
    }

    /// The README's configuration table: a row per variable, each with the
    /// table's default, and no row for a variable the product does not read.
    #[test]
    fn the_readme_table_lists_every_variable_with_its_default() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        let rows: Vec<(String, String)> = readme
            .lines()
            .filter(|l| l.starts_with("| `EKS_PRIVATE_DNS_"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                (
                    cells[0].trim_matches('`').to_string(),
                    cells[cells.len() - 1].to_string(),
                )
            })
            .collect();
        for v in VARIABLES {
            let row = rows.iter().find(|(name, _)| name == v.name);
            assert_eq!(
                row.map(|(_, default)| default.as_str()),
                Some(v.default),
                "README row of {}",
                v.name
            );
        }
        for (name, _) in &rows {
            assert!(
                VARIABLES.iter().any(|v| v.name == name),
                "the README lists {name}, which nothing reads"
            );
        }
        // A number's row gives the table's bounds.
        for v in VARIABLES {
            if let Value::Number { min, max, .. } = v.value {
                let row = readme
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{}`", v.name)))
                    .unwrap_or_default();
                assert!(
                    row.contains(&format!("{min} to {max}")),
                    "the README row of {} gives {min} to {max}: {row}",
                    v.name
                );
            }
        }
    }
}
