//! The emulator's several accounts (tests/emulator/sharing.py), driven with
//! the real SDK: what an Organization's hub and spokes rely on and moto
//! lacks (RAM's associations and invitations, Resolver rules shared with
//! other accounts, STS's limits), which the hub-and-spoke plumbing will be
//! proven against.

use aws_sdk_route53resolver::types::{
    IpAddressRequest, ResolverEndpointDirection, RuleTypeOption, TargetAddress,
};
use eks_private_dns_tests::*;

/// A spoke's role, as the hub assumes it.
fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/eks-private-dns-spoke")
}

/// A forward rule of the hub (through an outbound endpoint in its VPC).
async fn hub_rule(aws: &Aws) -> (String, String) {
    let vpc = aws.vpc("10.90.0.0/16", &[], &["a", "b"]).await.unwrap();
    let group = aws.security_group(&vpc, "out", &[]).await.unwrap();
    let endpoint = aws
        .resolver
        .create_resolver_endpoint()
        .creator_request_id("hub-out")
        .direction(ResolverEndpointDirection::Outbound)
        .security_group_ids(&group)
        .set_ip_addresses(Some(
            vpc.subnets
                .iter()
                .map(|s| IpAddressRequest::builder().subnet_id(s).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let endpoint = endpoint
        .resolver_endpoint()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let rule = aws
        .resolver
        .create_resolver_rule()
        .creator_request_id("hub-rule")
        .name("hub-rule")
        .rule_type(RuleTypeOption::Forward)
        .domain_name("abc.gr7.eu-west-1.eks.amazonaws.com")
        .resolver_endpoint_id(&endpoint)
        .target_ips(TargetAddress::builder().ip("10.1.1.10").port(53).build())
        .send()
        .await
        .unwrap();
    let rule = rule.resolver_rule().unwrap();
    (
        rule.id().unwrap().to_string(),
        rule.arn().unwrap().to_string(),
    )
}

/// The rules `resolver` lists: (id, ShareStatus).
async fn listed(resolver: &aws_sdk_route53resolver::Client) -> Vec<(String, String)> {
    resolver
        .list_resolver_rules()
        .send()
        .await
        .unwrap()
        .resolver_rules()
        .iter()
        .map(|r| {
            (
                r.id().unwrap_or_default().to_string(),
                r.share_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn assumed_role_credentials_act_in_the_roles_account_for_an_hour_at_most() {
    let emulator = Emulator::start().unwrap();
    let spoke = "210987654321";
    let config = emulator.sdk_config_in(spoke).await.unwrap();
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(identity.account(), Some(spoke));
    // What it makes is the spoke's: the hub does not see it.
    let theirs = aws_sdk_ec2::Client::new(&config)
        .create_vpc()
        .cidr_block("10.50.0.0/16")
        .send()
        .await
        .unwrap();
    let theirs = theirs.vpc().unwrap().vpc_id().unwrap().to_string();
    let hub = emulator.aws();
    let hub_vpcs = hub.ec2.describe_vpcs().send().await.unwrap();
    assert!(hub_vpcs.vpcs().iter().all(|v| v.vpc_id() != Some(&theirs)));

    // Role chaining: a session of a role assumed from an assumed role lasts
    // an hour at most.
    let chained = aws_sdk_sts::Client::new(&config);
    let too_long = chained
        .assume_role()
        .role_arn(role("111111111111"))
        .role_session_name("chained")
        .duration_seconds(7200)
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{:?}", too_long.into_service_error()).contains("1 hour"),
        "chained sessions last an hour at most"
    );
    chained
        .assume_role()
        .role_arn(role("111111111111"))
        .role_session_name("chained")
        .duration_seconds(3600)
        .send()
        .await
        .unwrap();

    // A role whose trust the caller does not meet: AccessDenied, naming it.
    emulator.deny_roles(&[&role(spoke)]).await.unwrap();
    let denied = aws_sdk_sts::Client::new(&emulator.sdk_config())
        .assume_role()
        .role_arn(role(spoke))
        .role_session_name("eks-private-dns")
        .send()
        .await
        .unwrap_err();
    let message = format!("{:?}", denied.into_service_error());
    assert!(
        message.contains("AccessDenied") && message.contains(&role(spoke)),
        "{message}"
    );
}

#[tokio::test]
async fn a_rule_shared_inside_the_organization_is_usable_at_once_and_until_unshared() {
    let emulator = Emulator::start().unwrap();
    let hub = emulator.aws();
    let sdk = emulator.sdk_config();
    let spoke = emulator
        .organization(&["workload"])
        .await
        .unwrap()
        .remove(0);
    let ram = aws_sdk_ram::Client::new(&sdk);
    let (rule_id, rule_arn) = hub_rule(&hub).await;
    let theirs = emulator.sdk_config_in(&spoke).await.unwrap();
    let resolver = aws_sdk_route53resolver::Client::new(&theirs);
    let vpc = aws_sdk_ec2::Client::new(&theirs)
        .create_vpc()
        .cidr_block("10.51.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();

    // Not shared: not listed, and not found when associated.
    assert!(listed(&resolver).await.is_empty());
    let refused = resolver
        .associate_resolver_rule()
        .resolver_rule_id(&rule_id)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", refused.into_service_error()).contains("ResourceNotFound"));

    // Shared inside the Organization: usable at once, no invitation.
    let share = ram
        .create_resource_share()
        .name("eks-private-dns")
        .resource_arns(&rule_arn)
        .allow_external_principals(false)
        .send()
        .await
        .unwrap();
    let share_arn = share
        .resource_share()
        .and_then(|s| s.resource_share_arn())
        .unwrap()
        .to_string();
    assert!(listed(&resolver).await.is_empty(), "no principal yet");
    ram.associate_resource_share()
        .resource_share_arn(&share_arn)
        .principals(&spoke)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed(&resolver).await,
        [(rule_id.clone(), "SHARED_WITH_ME".to_string())]
    );
    assert_eq!(
        listed(&hub.resolver).await,
        [(rule_id.clone(), "SHARED_BY_ME".to_string())]
    );
    let invitations = aws_sdk_ram::Client::new(&theirs)
        .get_resource_share_invitations()
        .send()
        .await
        .unwrap();
    assert!(invitations.resource_share_invitations().is_empty());
    // The spoke associates it with its own VPC; the association is the
    // spoke's, and the rule stays the hub's to change.
    resolver
        .associate_resolver_rule()
        .resolver_rule_id(&rule_id)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let associations = resolver
        .list_resolver_rule_associations()
        .send()
        .await
        .unwrap();
    assert_eq!(associations.resolver_rule_associations().len(), 1);
    let hub_associations = hub
        .resolver
        .list_resolver_rule_associations()
        .send()
        .await
        .unwrap();
    assert!(hub_associations.resolver_rule_associations().is_empty());
    let changed = resolver
        .update_resolver_rule()
        .resolver_rule_id(&rule_id)
        .config(
            aws_sdk_route53resolver::types::ResolverRuleConfig::builder()
                .name("mine now")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", changed.into_service_error()).contains("AccessDenied"));

    // Unshared: gone from the spoke's view.
    ram.disassociate_resource_share()
        .resource_share_arn(&share_arn)
        .principals(&spoke)
        .send()
        .await
        .unwrap();
    assert!(listed(&resolver).await.is_empty());
}

#[tokio::test]
async fn outside_the_organization_a_rule_is_usable_once_the_invitation_is_accepted() {
    let emulator = Emulator::start().unwrap();
    let hub = emulator.aws();
    let sdk = emulator.sdk_config();
    let ram = aws_sdk_ram::Client::new(&sdk);
    let outsider = "444455556666";
    let (rule_id, rule_arn) = hub_rule(&hub).await;

    // A share limited to the Organization refuses an account outside it.
    let refused = ram
        .create_resource_share()
        .name("inside-only")
        .resource_arns(&rule_arn)
        .principals(outsider)
        .allow_external_principals(false)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", refused.into_service_error()).contains("OperationNotPermitted"));

    ram.create_resource_share()
        .name("eks-private-dns")
        .resource_arns(&rule_arn)
        .principals(outsider)
        .send()
        .await
        .unwrap();
    let theirs = emulator.sdk_config_in(outsider).await.unwrap();
    let resolver = aws_sdk_route53resolver::Client::new(&theirs);
    assert!(listed(&resolver).await.is_empty(), "not before it accepts");
    let their_ram = aws_sdk_ram::Client::new(&theirs);
    let invitations = their_ram
        .get_resource_share_invitations()
        .send()
        .await
        .unwrap();
    let pending = invitations.resource_share_invitations();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status().map(|s| s.as_str()), Some("PENDING"));
    their_ram
        .accept_resource_share_invitation()
        .resource_share_invitation_arn(pending[0].resource_share_invitation_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed(&resolver).await,
        [(rule_id, "SHARED_WITH_ME".to_string())]
    );
}

/// A spoke's clients: its role assumed once, however many calls and
/// clients, and every call acting in the spoke; a role that cannot be
/// assumed is an error of STS.AssumeRole that names the account and the
/// role, and is not transient (AccessDenied).
#[tokio::test]
async fn a_spokes_clients_assume_its_role_once_and_act_in_it() {
    use shared::model::Account;
    let emulator = Emulator::start().unwrap();
    let proxy = eks_private_dns_tests::proxy::Proxy::start(&emulator.url)
        .await
        .unwrap();
    let spoke = "210987654321";
    let denied = "310987654321";
    let rec = emulator.reconciler_via(
        &proxy.url,
        config(&[(
            shared::config::ENV_SPOKE_ACCOUNTS,
            &format!("{spoke},{denied}"),
        )]),
    );
    let accounts = rec.accounts();
    let theirs = accounts.get(&Account::Id(spoke.into())).await.unwrap();
    assert_eq!(theirs.account, Account::Id(spoke.into()));
    let made = theirs
        .ec2
        .create_vpc()
        .cidr_block("10.52.0.0/16")
        .send()
        .await
        .unwrap();
    let made = made.vpc().unwrap().vpc_id().unwrap().to_string();
    let again = accounts.get(&Account::Id(spoke.into())).await.unwrap();
    let seen = again.ec2.describe_vpcs().send().await.unwrap();
    assert!(seen.vpcs().iter().any(|v| v.vpc_id() == Some(&made)));
    again.resolver.list_resolver_rules().send().await.unwrap();
    let hub = accounts.home().ec2.describe_vpcs().send().await.unwrap();
    assert!(hub.vpcs().iter().all(|v| v.vpc_id() != Some(&made)));
    let assumed = proxy
        .seen()
        .iter()
        .filter(|s| s.operation == "STS.AssumeRole")
        .count();
    assert_eq!(assumed, 1, "the role is assumed once for every call");

    let role = format!("arn:aws:iam::{denied}:role/eks-private-dns-spoke");
    emulator.deny_roles(&[&role]).await.unwrap();
    let error = accounts.get(&Account::Id(denied.into())).await.unwrap_err();
    let said = error.to_string();
    assert!(
        said.contains("STS.AssumeRole") && said.contains(&role) && said.contains(denied),
        "{said}"
    );
    assert!(
        error.is_access_denied() && !error.is_transient(),
        "{error:?}"
    );
}

/// RAM's shares as the API reference has them and moto does not: one
/// client token makes one share; GetResourceShares filters by name,
/// status and tag, and gives the tags; an update keeps what it is not
/// given (the name).
#[tokio::test]
async fn a_share_is_made_once_per_token_and_found_by_name_status_and_tag() {
    use aws_sdk_ram::types::{ResourceOwner, ResourceShareStatus, Tag, TagFilter};
    let emulator = Emulator::start().unwrap();
    let ram = aws_sdk_ram::Client::new(&emulator.sdk_config());
    let make = || {
        ram.create_resource_share()
            .name("eks-private-dns")
            .allow_external_principals(false)
            .client_token("epd-token")
            .tags(
                Tag::builder()
                    .key("eks-private-dns:owner")
                    .value("a")
                    .build(),
            )
            .send()
    };
    let first = make().await.unwrap();
    let again = make().await.unwrap();
    let arn = first
        .resource_share()
        .unwrap()
        .resource_share_arn()
        .unwrap();
    assert_eq!(
        again.resource_share().unwrap().resource_share_arn(),
        Some(arn)
    );
    let found = |name: &str, owner: &str| {
        ram.get_resource_shares()
            .resource_owner(ResourceOwner::SelfValue)
            .name(name)
            .resource_share_status(ResourceShareStatus::Active)
            .tag_filters(
                TagFilter::builder()
                    .tag_key("eks-private-dns:owner")
                    .tag_values(owner)
                    .build(),
            )
            .send()
    };
    let shares = found("eks-private-dns", "a").await.unwrap();
    assert_eq!(shares.resource_shares().len(), 1, "one share for the token");
    let share = &shares.resource_shares()[0];
    assert_eq!(share.tags()[0].value(), Some("a"));
    assert!(found("eks-private-dns", "b")
        .await
        .unwrap()
        .resource_shares()
        .is_empty());
    assert!(found("other", "a")
        .await
        .unwrap()
        .resource_shares()
        .is_empty());
    ram.update_resource_share()
        .resource_share_arn(arn)
        .allow_external_principals(true)
        .send()
        .await
        .unwrap();
    let shares = found("eks-private-dns", "a").await.unwrap();
    let share = &shares.resource_shares()[0];
    assert_eq!(share.name(), Some("eks-private-dns"), "the name stays");
    assert_eq!(share.allow_external_principals(), Some(true));
    ram.delete_resource_share()
        .resource_share_arn(arn)
        .send()
        .await
        .unwrap();
    assert!(found("eks-private-dns", "a")
        .await
        .unwrap()
        .resource_shares()
        .is_empty());
}
