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
    assert_eq!(settings.len(), VARIABLES.len());
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
fn the_opt_out_tag_is_the_owners_own() {
    let out = |key: &str| BTreeMap::from([(key.to_string(), "false".to_string())]);
    let other = Config {
        owner: "team-b".into(),
        ..Config::default()
    };
    assert_eq!(other.enabled_tag(), "eks-private-dns/team-b/enabled");
    // The default owner's tag opts a cluster out of the default deployment
    // only; another owner reads its own key.
    let default_out = out(TAG_ENABLED);
    let parse = |tags: &BTreeMap<String, String>, config: &Config| {
        ClusterTags::parse("prod", tags, config).unwrap().enabled
    };
    assert_eq!(parse(&default_out, &Config::default()), Some(false));
    assert_eq!(parse(&default_out, &other), None);
    let team_b_out = out("eks-private-dns/team-b/enabled");
    assert_eq!(parse(&team_b_out, &other), Some(false));
    assert_eq!(parse(&team_b_out, &Config::default()), None);
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
    let err = config(&[(ENV_ONPREM_CIDRS, halves), (ENV_ALLOW_PUBLIC_CIDRS, "true")]).unwrap_err();
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
