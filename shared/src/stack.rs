//! Which IP stack a cluster's inbound endpoint is made with
//! (`EKS_PRIVATE_DNS_ENDPOINT_TYPE`): a pure choice, from the cluster and
//! the subnets its endpoint would use.

use crate::config::EndpointTypeSetting;
use crate::model::EndpointType;

/// Whether an endpoint host name is a dual-stack one: EKS names the
/// endpoints of IPv6 clusters made since October 2024 under `api.aws`
/// (`api.amazonwebservices.com.cn` in the China regions).
pub fn is_dual_stack_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.ends_with(".api.aws") || host.ends_with(".api.amazonwebservices.com.cn")
}

/// Why a dual-stack endpoint cannot be made: the subnets without an IPv6
/// block, by id (`Invalid::NoIpv6Blocks` says it to the user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoIpv6Blocks(pub Vec<String>);

/// The type of the inbound endpoint: `ipv6_family` is the cluster's
/// kubernetesNetworkConfig.ipFamily being ipv6, `host` its endpoint name,
/// `subnets` (id, has an IPv6 block) those the endpoint's addresses are or
/// would be in, `current` the type of the endpoint there is. Under `auto`
/// a dual-stack endpoint stays so: another cluster of the VPC may need it,
/// and it answers over IPv4 as before.
pub fn choose(
    setting: EndpointTypeSetting,
    ipv6_family: bool,
    host: &str,
    subnets: &[(String, bool)],
    current: Option<EndpointType>,
) -> Result<EndpointType, NoIpv6Blocks> {
    let without: Vec<String> = subnets
        .iter()
        .filter(|(_, ipv6)| !ipv6)
        .map(|(id, _)| id.clone())
        .collect();
    let all_have = !subnets.is_empty() && without.is_empty();
    let wanted = wants_dual_stack(ipv6_family, host);
    match setting {
        EndpointTypeSetting::Ipv4 => Ok(EndpointType::Ipv4),
        // AWS made it, so its subnets have IPv6 blocks.
        _ if current == Some(EndpointType::DualStack) => Ok(EndpointType::DualStack),
        EndpointTypeSetting::DualStack if all_have => Ok(EndpointType::DualStack),
        EndpointTypeSetting::DualStack => Err(NoIpv6Blocks(without)),
        EndpointTypeSetting::Auto if wanted && all_have => Ok(EndpointType::DualStack),
        EndpointTypeSetting::Auto => Ok(EndpointType::Ipv4),
    }
}

/// Whether the cluster is one that `auto` makes dual-stack for.
fn wants_dual_stack(ipv6_family: bool, host: &str) -> bool {
    ipv6_family || is_dual_stack_host(host)
}

/// Whether an endpoint of `current` type is what `choose` would keep, with
/// no need to read the subnets (they decide only a change of type).
pub fn settled(
    setting: EndpointTypeSetting,
    ipv6_family: bool,
    host: &str,
    current: EndpointType,
) -> bool {
    match (setting, current) {
        (_, EndpointType::Ipv6) => true,
        (EndpointTypeSetting::Ipv4, t) => t == EndpointType::Ipv4,
        (EndpointTypeSetting::DualStack, t) => t == EndpointType::DualStack,
        (EndpointTypeSetting::Auto, EndpointType::Ipv4) => !wants_dual_stack(ipv6_family, host),
        (EndpointTypeSetting::Auto, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_HOST: &str = "abc.gr7.eu-west-1.eks.amazonaws.com";
    const V6_HOST: &str = "abc.gr7.eu-west-1.api.aws";

    #[test]
    fn the_endpoint_type_follows_the_setting_the_cluster_and_the_subnets() {
        let dual = vec![
            ("subnet-a".to_string(), true),
            ("subnet-b".to_string(), true),
        ];
        let half = vec![
            ("subnet-a".to_string(), true),
            ("subnet-b".to_string(), false),
        ];
        use EndpointTypeSetting::{Auto, DualStack as Dual, Ipv4 as V4};
        let none = Vec::new();
        let (ipv4, dualstack) = (Ok(EndpointType::Ipv4), Ok(EndpointType::DualStack));
        type Case<'a> = (
            EndpointTypeSetting,
            bool,
            &'a str,
            &'a Vec<(String, bool)>,
            Option<EndpointType>,
            Result<EndpointType, NoIpv6Blocks>,
        );
        let (was_v4, was_dual) = (Some(EndpointType::Ipv4), Some(EndpointType::DualStack));
        // (setting, ipFamily ipv6, host, subnets, the endpoint's type, chosen)
        let cases: Vec<Case> = vec![
            (Auto, false, V4_HOST, &dual, None, ipv4.clone()),
            (Auto, true, V4_HOST, &dual, None, dualstack.clone()),
            (Auto, false, V6_HOST, &dual, None, dualstack.clone()),
            (Auto, true, V6_HOST, &dual, was_v4, dualstack.clone()),
            (Auto, true, V6_HOST, &half, None, ipv4.clone()),
            (Auto, true, V6_HOST, &half, was_v4, ipv4.clone()),
            // An IPv4 cluster in a VPC whose endpoint another made
            // dual-stack: it stays dual-stack.
            (Auto, false, V4_HOST, &dual, was_dual, dualstack.clone()),
            (Auto, false, V4_HOST, &half, was_dual, dualstack.clone()),
            (V4, true, V6_HOST, &dual, None, ipv4.clone()),
            (V4, true, V6_HOST, &dual, was_dual, ipv4.clone()),
            (Dual, false, V4_HOST, &dual, was_v4, dualstack.clone()),
            (Dual, false, V4_HOST, &half, was_dual, dualstack.clone()),
            (
                Dual,
                true,
                V6_HOST,
                &half,
                None,
                Err(NoIpv6Blocks(vec!["subnet-b".into()])),
            ),
            (Dual, true, V6_HOST, &none, None, Err(NoIpv6Blocks(vec![]))),
        ];
        for (setting, family, host, subnets, current, want) in cases {
            assert_eq!(
                choose(setting, family, host, subnets, current),
                want,
                "{setting:?} {family} {host} {subnets:?} {current:?}"
            );
        }
    }

    #[test]
    fn dual_stack_names_are_recognised_and_only_those() {
        assert!(is_dual_stack_host(V6_HOST));
        assert!(is_dual_stack_host(
            "ABC.GR7.CN-NORTH-1.API.AMAZONWEBSERVICES.COM.CN."
        ));
        assert!(!is_dual_stack_host(V4_HOST));
        assert!(!is_dual_stack_host("api.aws.example.com"));
    }
}
