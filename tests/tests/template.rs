//! The template watches and shows what the functions publish: every metric
//! of our namespace that an alarm or the dashboard names is one the
//! functions emit (shared::metrics), and the dashboard shows each of them.

use std::collections::BTreeSet;

use eks_private_dns_tests::workspace_root;

/// The metric names of our namespace in the alarms (a `MetricName` after
/// `Namespace: eks-private-dns`) and in the dashboard's metric rows.
fn named_in(template: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut alarms = BTreeSet::new();
    let mut ours = false;
    for line in template.lines().map(str::trim) {
        if let Some(ns) = line.strip_prefix("Namespace:") {
            ours = ns.trim() == shared::metrics::NAMESPACE;
        } else if let Some(name) = line.strip_prefix("MetricName:") {
            if ours {
                alarms.insert(name.trim().to_string());
            }
        }
    }
    let mut dashboard = BTreeSet::new();
    let first = format!("[\"{}\", \"", shared::metrics::NAMESPACE);
    for line in template.lines().map(str::trim) {
        for start in [first.as_str(), "[\".\", \""] {
            if let Some(rest) = line.strip_prefix(start) {
                if let Some(name) = rest.split('"').next() {
                    dashboard.insert(name.to_string());
                }
            }
        }
    }
    (alarms, dashboard)
}

#[test]
fn the_alarms_and_the_dashboard_name_only_what_the_functions_publish() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (alarms, dashboard) = named_in(&template);
    let published: BTreeSet<String> = shared::metrics::names().map(str::to_string).collect();
    assert!(
        !alarms.is_empty() && !dashboard.is_empty(),
        "{alarms:?} {dashboard:?}"
    );
    let unknown: Vec<&String> = alarms
        .union(&dashboard)
        .filter(|n| !published.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "named in the template but never published: {unknown:?}"
    );
    let unshown: Vec<&String> = published.difference(&dashboard).collect();
    assert!(
        unshown.is_empty(),
        "published but not on the dashboard: {unshown:?}"
    );
}

/// One parameter of the template: its properties as written.
#[derive(Debug, Default)]
struct Parameter {
    properties: std::collections::BTreeMap<String, String>,
}

impl Parameter {
    fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// AllowedValues, as a list.
    fn allowed_values(&self) -> Option<Vec<String>> {
        let list = self.get("AllowedValues")?;
        Some(
            list.trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|v| unquote(v.trim()))
                .collect(),
        )
    }
}

/// A YAML scalar as written: a double-quoted one unescaped.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\\", "\\").replace("\\\"", "\""),
        None => value.to_string(),
    }
}

/// The template's parameters (the top-level `Parameters:` block), and the
/// functions' environment (`VARIABLE: !Ref Parameter` lines: the
/// parameters each variable is set from, the Globals' first, then a
/// function's own).
fn parameters_of(
    template: &str,
) -> (
    std::collections::BTreeMap<String, Parameter>,
    std::collections::BTreeMap<String, Vec<String>>,
) {
    let mut parameters = std::collections::BTreeMap::new();
    let mut inside = false;
    let mut current: Option<String> = None;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line.trim_end() == "Parameters:";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
            let name = name.trim_end_matches(':').to_string();
            parameters.insert(name.clone(), Parameter::default());
            current = Some(name);
        } else if let (Some(rest), Some(name)) = (line.strip_prefix("    "), &current) {
            if let Some((key, value)) = rest.split_once(':') {
                if !key.starts_with(' ') {
                    parameters
                        .get_mut(name)
                        .unwrap()
                        .properties
                        .insert(key.to_string(), unquote(value.trim()));
                }
            }
        }
    }
    let mut environment: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (var, parameter) in template.lines().filter_map(|l| {
        let (var, rest) = l.trim().split_once(": !Ref ")?;
        var.starts_with("EKS_PRIVATE_DNS_")
            .then(|| (var.to_string(), rest.trim().to_string()))
    }) {
        environment.entry(var).or_default().push(parameter);
    }
    (parameters, environment)
}

/// Whether the code takes `value` for `variable` (alone in the environment).
fn code_takes(variable: &str, value: &str) -> bool {
    shared::config::Config::from_lookup(|name| (name == variable).then(|| value.to_string()))
        .is_ok()
}

/// Values to try against each pattern and the code's parser, where the
/// pattern can say what the parser does (ids, a path, an owner): both must
/// take and refuse the same ones.
fn pattern_samples(name: &str) -> &'static [&'static str] {
    use shared::config::*;
    match name {
        ENV_CLIENT_VPC_IDS => &[
            "vpc-0123456789abcdef0",
            "vpc-11111111,vpc-0123456789abcdef0",
            "210987654321:vpc-0123456789abcdef0",
            "vpc-11111111,210987654321:vpc-22222222",
            "21098765432:vpc-11111111",
            "210987654321:",
            "account:vpc-11111111",
            "vpc-1234567890",
            "vpc-1234567",
            "vpc-0123456789ABCDEF0",
            "vpc-xyz",
            "subnet-11111111",
        ],
        ENV_OUTBOUND_VPC_ID => &[
            "vpc-11111111",
            "vpc-0123456789abcdef0",
            "vpc-1234567890",
            "vpc-11111111,vpc-22222222",
        ],
        ENV_OUTBOUND_ENDPOINT_ID => &[
            "rslvr-out-0123456789abcdef0",
            "rslvr-out-abc",
            "rslvr-in-0123456789abcdef0",
            "rslvr-out-",
            "rslvr-out-has-dash",
        ],
        ENV_SSM_PREFIX => &[
            "/eks-private-dns",
            "/team/dns.eks_1",
            "/aws/dns",
            "/AWS",
            "/Ssm/x",
            "/a//b",
            "no-slash",
            "/has space",
        ],
        ENV_SPOKE_ACCOUNTS => &[
            "210987654321",
            "210987654321,ou-ab12-cdef3456",
            "r-ab12",
            "ou-ab12-cdef3456,r-ab12",
            "21098765432",
            "ou-AB12-cdef3456",
            "ou-ab12",
            "o-ab12cdef34",
        ],
        ENV_SPOKE_ROLE_NAME => &[
            "eks-private-dns-spoke",
            "team+dns=spoke,x.y@z_1",
            "has space",
            "slash/in",
            "a234567890123456789012345678901234567890123456789012345678901234",
            "a2345678901234567890123456789012345678901234567890123456789012345",
        ],
        ENV_OWNER => &[
            "eks-private-dns",
            "team.a_1",
            "-dash-first",
            "has space",
            "a234567890123456789012345678901234567890123456789012345678901234",
            "a2345678901234567890123456789012345678901234567890123456789012345",
        ],
        _ => &[],
    }
}

/// Every setting of the variables table is a template parameter passed to
/// the functions as its variable, with the table's default, bounds and
/// choices; where its pattern can say what the parser takes, it takes the
/// same values; and the CIDR lists' patterns refuse nothing the code takes.
#[test]
fn the_template_parameters_are_the_variables_table() {
    use shared::config::{Config, Value, VARIABLES};
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (parameters, environment) = parameters_of(&template);
    let mut checked = 0;
    for v in VARIABLES {
        let p = parameters
            .get(v.parameter)
            .unwrap_or_else(|| panic!("template parameter {} of {}", v.parameter, v.name));
        let set_from = environment.get(v.name).cloned().unwrap_or_default();
        assert_eq!(
            set_from.first().map(String::as_str),
            Some(v.parameter),
            "the functions get {} from {}",
            v.name,
            v.parameter
        );
        // A function that sets it from a parameter of its own (the event
        // function's Resolver rate) takes the same values.
        for own in &set_from[1..] {
            let o = &parameters[own];
            if let Value::Number { min, max, .. } = v.value {
                let bound = |key: &str| o.get(key).and_then(|b| b.parse::<f64>().ok());
                assert_eq!(bound("MinValue"), Some(min), "{own} MinValue");
                assert_eq!(bound("MaxValue"), Some(max), "{own} MaxValue");
            }
            let default = o.get("Default").unwrap_or_default();
            assert!(code_takes(v.name, default), "{own}'s Default {default}");
        }
        let default = p
            .get("Default")
            .unwrap_or_else(|| panic!("{}: Default", v.parameter));
        let from_default =
            Config::from_lookup(|name| (name == v.name).then(|| default.to_string()));
        assert_eq!(
            from_default.as_ref(),
            Ok(&Config::default()),
            "{}'s Default {default:?} gives the code's default for {}",
            v.parameter,
            v.name
        );
        match v.value {
            Value::Number { min, max, .. } => {
                let bound = |key: &str| p.get(key).and_then(|b| b.parse::<f64>().ok());
                assert_eq!(bound("MinValue"), Some(min), "{} MinValue", v.parameter);
                assert_eq!(bound("MaxValue"), Some(max), "{} MaxValue", v.parameter);
            }
            Value::Choice(names) => assert_eq!(
                p.allowed_values(),
                Some(names.iter().map(|n| n.to_string()).collect()),
                "{} AllowedValues",
                v.parameter
            ),
            Value::Switch => assert_eq!(
                p.allowed_values(),
                Some(vec!["true".to_string(), "false".to_string()]),
                "{} AllowedValues",
                v.parameter
            ),
            Value::Text | Value::List => {}
        }
        if let Some(pattern) = p.get("AllowedPattern") {
            let re = fancy_regex::Regex::new(pattern)
                .unwrap_or_else(|e| panic!("{}: {pattern}: {e}", v.parameter));
            let template_takes = |value: &str| re.is_match(value).unwrap();
            if default.is_empty() {
                assert!(template_takes(""), "{}: empty is unset", v.parameter);
            }
            for sample in pattern_samples(v.name) {
                assert_eq!(
                    template_takes(sample),
                    code_takes(v.name, sample),
                    "{} and {} disagree on {sample:?}",
                    v.parameter,
                    v.name
                );
                checked += 1;
            }
            let cidrs = [
                shared::config::ENV_ONPREM_CIDRS,
                shared::config::ENV_TAG_CIDR_ENVELOPE,
            ];
            if cidrs.contains(&v.name) {
                for sample in ["10.0.0.0/8", "10.1.0.0/16,fd00::/8", "192.168.0.0/24"] {
                    assert!(code_takes(v.name, sample), "{}: {sample}", v.name);
                    assert!(template_takes(sample), "{} refuses {sample}", v.parameter);
                }
                assert!(!template_takes("10.0.0.0"), "{}: no prefix", v.parameter);
            }
        }
    }
    assert!(checked >= 25, "{checked} pattern samples");
}
