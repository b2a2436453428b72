//! Every setting, defined once: its variable, the CLI flag that overrides
//! it, the flag's help, the default as the README's table gives it, and
//! whether it decides what is built (the settings digest) or only how.
//! `Config::from_lookup` reads these variables, the CLI makes its flags
//! from this table, and a test holds the README's table to it.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The CLI flag, without the dashes.
    pub flag: &'static str,
    pub help: &'static str,
    /// The default, in the words of the README's table.
    pub default: &'static str,
    /// Whether it changes what is built; the others (the mode, the pace)
    /// only change how, and stay out of the settings digest.
    pub decides: bool,
}

const fn var(
    name: &'static str,
    flag: &'static str,
    help: &'static str,
    default: &'static str,
) -> Variable {
    Variable {
        name,
        flag,
        help,
        default,
        decides: true,
    }
}

const fn how(mut v: Variable) -> Variable {
    v.decides = false;
    v
}

pub const VARIABLES: &[Variable] = &[
    var(
        ENV_CLIENT_VPC_IDS,
        "client-vpc-ids",
        "Comma-separated VPC ids that must resolve the cluster names.",
        "empty",
    ),
    var(
        ENV_ONPREM_CIDRS,
        "onprem-cidrs",
        "Comma-separated on-premises CIDRs allowed on 53 and 443.",
        "empty",
    ),
    var(
        ENV_DISCOVER_PEERED_VPCS,
        "discover-peered-vpcs",
        "Also treat VPCs peered with the cluster VPC as client VPCs (true/false).",
        "false",
    ),
    var(
        ENV_OUTBOUND_ENDPOINT_ID,
        "outbound-endpoint-id",
        "Use this existing outbound Resolver endpoint; never create or delete one.",
        "empty",
    ),
    var(
        ENV_OUTBOUND_VPC_ID,
        "outbound-vpc-id",
        "Where to create the shared outbound endpoint.",
        "first client VPC",
    ),
    var(
        ENV_TRIGGER,
        "trigger",
        "private-only or private-access.",
        "private-only",
    ),
    var(
        ENV_SSM_PREFIX,
        "ssm-prefix",
        "SSM parameter path prefix.",
        DEFAULT_SSM_PREFIX,
    ),
    var(
        ENV_OWNER,
        "owner",
        "Owner id written in ownership tags.",
        DEFAULT_OWNER,
    ),
    how(var(
        ENV_MODE,
        "mode",
        "apply, or plan (observe and report, change nothing); the commands plan and status \
         never change anything whatever this says.",
        "apply",
    )),
    var(
        ENV_INBOUND_IPS,
        "inbound-ips",
        "IPs per inbound endpoint, 2 to 6.",
        "2",
    ),
    var(
        ENV_ENDPOINT_TYPE,
        "endpoint-type",
        "The inbound endpoints' IP stack: auto (DUALSTACK for IPv6 clusters whose subnets have \
         IPv6 blocks), ipv4, or dualstack.",
        "auto",
    ),
    var(
        ENV_ALLOW_WORLD,
        "allow-world",
        "Allow 0.0.0.0/0 or ::/0 among the CIDRs (true/false).",
        "false",
    ),
    var(
        ENV_ALLOW_PUBLIC_CIDRS,
        "allow-public-cidrs",
        "Allow CIDRs that cover public address space (true/false).",
        "false",
    ),
    var(
        ENV_TAG_CIDR_ENVELOPE,
        "tag-cidr-envelope",
        "Comma-separated CIDRs inside which cluster tags' CIDRs must lie (default: the \
         private ranges).",
        "the private ranges",
    ),
    var(
        ENV_API_RULES_GROUP,
        "api-rules-group",
        "Where the 443 rules go: cluster (the EKS-made cluster security group) or tagged (the \
         cluster's additional group tagged eks-private-dns:api-rules=<owner>).",
        "cluster",
    ),
    how(var(
        ENV_RESOLVER_RATE,
        "resolver-rate",
        "Route 53 Resolver requests per second (default 4).",
        "4",
    )),
    how(var(
        ENV_SWEEP_CONCURRENCY,
        "sweep-concurrency",
        "Clusters a sweep reconciles at once (default 4).",
        "4",
    )),
    how(var(
        ENV_TLS_ROOTS,
        "tls-roots",
        "Roots AWS endpoints are verified against: amazon (the Amazon Trust Services roots, \
         compiled in), system (the operating system's store), or auto (amazon in Lambda outside \
         the China regions with no HTTPS proxy, system elsewhere).",
        "auto",
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
    }
}
