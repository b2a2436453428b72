//! A three-account world, as most Organizations run it: a hub (network)
//! account with the outbound VPC and a client VPC, which runs the
//! deployment; a workload (spoke) account with two clusters in one VPC and
//! one in another; a client account with a client VPC; an on-premises
//! CIDR. The hub's Organization holds the other two, with sharing through
//! RAM enabled. Every account is read and written with its own credentials
//! (its role, assumed with the hub's), as the product reaches it.

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_sts::config::Credentials;

use crate::*;

/// The role the hub assumes in each spoke (the product's default).
pub const SPOKE_ROLE: &str = "eks-private-dns-spoke";

/// The workload account's clusters: two in one VPC, one in another.
pub const WORKLOAD_CLUSTERS: [&str; 3] = ["orders", "payments", "search"];

impl Emulator {
    /// An Organization whose management account is the emulator's own
    /// (the hub's), with a new member account for each of `names`, and
    /// sharing with the Organization enabled (RAM); the members' ids.
    pub async fn organization(&self, names: &[&str]) -> Result<Vec<String>> {
        let sdk = self.sdk_config();
        let organizations = aws_sdk_organizations::Client::new(&sdk);
        organizations
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await?;
        let mut members = Vec::new();
        for name in names {
            let made = organizations
                .create_account()
                .account_name(*name)
                .email(format!("{name}@example.com"))
                .send()
                .await?;
            members.push(
                made.create_account_status()
                    .and_then(|s| s.account_id())
                    .ok_or_else(|| anyhow!("CreateAccount gave no account id"))?
                    .to_string(),
            );
        }
        aws_sdk_ram::Client::new(&sdk)
            .enable_sharing_with_aws_organization()
            .send()
            .await?;
        Ok(members)
    }

    /// SDK configuration acting in `account`: the credentials of its spoke
    /// role, from STS AssumeRole with the emulator's (the hub's) own.
    pub async fn sdk_config_in(&self, account: &str) -> Result<SdkConfig> {
        let sts = aws_sdk_sts::Client::new(&self.sdk_config());
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{SPOKE_ROLE}"))
            .role_session_name("eks-private-dns-tests")
            .send()
            .await?;
        let c = out
            .credentials()
            .ok_or_else(|| anyhow!("AssumeRole gave no credentials"))?;
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "assumed",
        );
        Ok(self
            .sdk_config()
            .into_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build())
    }

    /// Plain SDK clients acting in `account`.
    pub async fn aws_in(&self, account: &str) -> Result<Aws> {
        Ok(Aws::of(&self.sdk_config_in(account).await?))
    }
}

/// The three accounts and what each holds.
pub struct Org {
    pub emulator: Emulator,
    /// The hub: the deployment's account.
    pub hub: Aws,
    pub hub_id: String,
    /// Where the outbound endpoint goes (not a client).
    pub outbound_vpc: Vpc,
    /// A client VPC of the hub.
    pub hub_client_vpc: Vpc,
    pub workload: Aws,
    pub workload_id: String,
    /// Two clusters' VPC, and the third's.
    pub shared_vpc: Vpc,
    pub single_vpc: Vpc,
    pub client: Aws,
    pub client_id: String,
    pub client_vpc: Vpc,
}

impl Org {
    /// The world, in a new emulator started with `options`.
    pub async fn new(options: EmulatorOptions) -> Org {
        let emulator = Emulator::start_with(options).expect("emulator starts");
        Org::build(emulator).await
    }

    pub(crate) async fn build(emulator: Emulator) -> Org {
        let hub = emulator.aws();
        let members = emulator
            .organization(&["workload", "client"])
            .await
            .unwrap();
        let (workload_id, client_id) = (members[0].clone(), members[1].clone());
        let workload = emulator.aws_in(&workload_id).await.unwrap();
        let client = emulator.aws_in(&client_id).await.unwrap();
        let outbound_vpc = hub.vpc("10.100.0.0/16", &[], &["a", "b"]).await.unwrap();
        let hub_client_vpc = hub.vpc("10.101.0.0/16", &[], &["a", "b"]).await.unwrap();
        let shared_vpc = workload
            .vpc("10.20.0.0/16", &[], &["a", "b", "c"])
            .await
            .unwrap();
        let single_vpc = workload
            .vpc("10.21.0.0/16", &[], &["a", "b"])
            .await
            .unwrap();
        let client_vpc = client.vpc("10.30.0.0/16", &[], &["a", "b"]).await.unwrap();
        Org {
            emulator,
            hub,
            hub_id: ACCOUNT.to_string(),
            outbound_vpc,
            hub_client_vpc,
            workload,
            workload_id,
            shared_vpc,
            single_vpc,
            client,
            client_id,
            client_vpc,
        }
    }

    /// The hub's settings: the two spokes served, the hub's client VPC and
    /// the client account's, the outbound VPC, the on-premises CIDR.
    pub fn config(&self) -> Config {
        self.config_with(&[])
    }

    /// The same, with `more` over it.
    pub fn config_with(&self, more: &[(&str, &str)]) -> Config {
        let vars = self.settings_with(more);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        config(&vars)
    }

    /// The hub's settings as the environment gives them, with `more`.
    pub fn settings_with(&self, more: &[(&str, &str)]) -> Vec<(String, String)> {
        let spokes = format!("{},{}", self.workload_id, self.client_id);
        let clients = format!(
            "{},{}:{}",
            self.hub_client_vpc.id, self.client_id, self.client_vpc.id
        );
        let mut vars: Vec<(String, String)> = [
            (shared::config::ENV_SPOKE_ACCOUNTS, spokes.as_str()),
            (shared::config::ENV_CLIENT_VPC_IDS, &clients),
            (shared::config::ENV_OUTBOUND_VPC_ID, &self.outbound_vpc.id),
            (shared::config::ENV_ONPREM_CIDRS, ONPREM),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in more {
            vars.retain(|(n, _)| n != name);
            vars.push((name.to_string(), value.to_string()));
        }
        vars
    }

    /// The hub's reconciler (its Lambdas' settings), knowing its account.
    pub fn reconciler(&self, config: Config) -> Reconciler {
        let rec = self.emulator.reconciler(config);
        let _ = rec.account.set(self.hub_id.clone());
        rec
    }

    /// The workload account's three clusters, private: `orders` and
    /// `payments` in one VPC, `search` in the other.
    pub async fn clusters(&self, access: Access) {
        for (name, vpc) in [
            (WORKLOAD_CLUSTERS[0], &self.shared_vpc),
            (WORKLOAD_CLUSTERS[1], &self.shared_vpc),
            (WORKLOAD_CLUSTERS[2], &self.single_vpc),
        ] {
            self.workload.cluster(name, vpc, access, &[]).await.unwrap();
        }
    }

    /// The same, its requests through `url` (a proxy in front of the
    /// emulator).
    pub fn reconciler_via(&self, url: &str, config: Config) -> Reconciler {
        let rec = self.emulator.reconciler_via(url, config);
        let _ = rec.account.set(self.hub_id.clone());
        rec
    }

    /// A cluster of the workload account, as the hub names it.
    pub fn spoke_cluster(&self, name: &str) -> shared::model::ClusterId {
        shared::model::ClusterId {
            account: shared::model::Account::Id(self.workload_id.clone()),
            name: name.to_string(),
        }
    }

    /// The EventBridge event of an UpdateClusterConfig on `cluster` of
    /// `account` (the fixture, as another account's trail sends it).
    pub fn event(&self, account: &str, cluster: &str) -> Vec<u8> {
        let mut event = fixture("update-cluster-config-private.json").unwrap();
        event["account"] = account.into();
        event["detail"]["recipientAccountId"] = account.into();
        event["detail"]["requestParameters"]["name"] = cluster.into();
        serde_json::to_vec(&event).unwrap()
    }

    /// Every account's resources, by account: (hub, workload, client).
    pub async fn snapshots(&self) -> (Snapshot, Snapshot, Snapshot) {
        let (hub, workload, client) = tokio::join!(
            self.hub.snapshot(),
            self.workload.snapshot(),
            self.client.snapshot()
        );
        (hub.unwrap(), workload.unwrap(), client.unwrap())
    }
}

/// The reliability families' Organization (tests/tests/faults.rs): the
/// three-account world with one cluster of the workload account (`orders`),
/// every request of the hub's reconcilers through the fault proxy, its
/// state read in each account.
pub struct OrgArena {
    pub org: Org,
    pub proxy: crate::proxy::Proxy,
}

/// The workload account's cluster of the arena.
pub const ARENA_CLUSTER: &str = "orders";

impl OrgArena {
    pub async fn new() -> OrgArena {
        // Resolver takes its time, a second per change, as in the
        // single-account arena.
        let org = Org::new(EmulatorOptions {
            resolver_seconds: 1.0,
            ..EmulatorOptions::default()
        })
        .await;
        OrgArena::furnish(org).await
    }

    async fn furnish(org: Org) -> OrgArena {
        org.workload
            .cluster(ARENA_CLUSTER, &org.shared_vpc, Access::Private, &[])
            .await
            .unwrap();
        let proxy = crate::proxy::Proxy::start(&org.emulator.url).await.unwrap();
        OrgArena { org, proxy }
    }

    /// The same world again, in the same emulator emptied.
    pub async fn renew(self) -> OrgArena {
        self.org.emulator.reset().await.expect("emulator resets");
        OrgArena::furnish(Org::build(self.org.emulator).await).await
    }

    /// The arena's cluster, as the hub names it.
    pub fn cluster(&self) -> shared::model::ClusterId {
        self.org.spoke_cluster(ARENA_CLUSTER)
    }

    /// A reconciler of the hub's whose requests go through the proxy, with
    /// the arena's short SDK timeouts.
    pub fn reconciler(&self) -> Reconciler {
        let rec = self.org.emulator.reconciler_via_with(
            &self.proxy.url,
            self.org.config(),
            crate::arena::ARENA_TIMEOUTS,
        );
        let _ = rec.account.set(self.org.hub_id.clone());
        rec
    }

    /// The event of the arena's cluster (the workload account's trail).
    pub fn event(&self) -> Vec<u8> {
        self.org.event(&self.org.workload_id, ARENA_CLUSTER)
    }

    /// Every account's state, each line named by its account, ids by
    /// labels that are the same in every run, parameter versions left out.
    pub async fn state(&self) -> Vec<String> {
        let o = &self.org;
        let (hub, workload, client) = o.snapshots().await;
        // What one account's lines name of another's (the cluster's host
        // and groups, the endpoints, the 443 rules in the hub's records),
        // by labels that are the same in every run.
        let mut names: Vec<(String, String)> = [
            (&o.outbound_vpc.id, "outbound VPC"),
            (&o.hub_client_vpc.id, "hub client VPC"),
            (&o.shared_vpc.id, "shared VPC"),
            (&o.single_vpc.id, "single VPC"),
            (&o.client_vpc.id, "client VPC"),
            (&o.workload_id, "workload account"),
            (&o.client_id, "client account"),
        ]
        .iter()
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect();
        if let Ok(c) = o.workload.describe(ARENA_CLUSTER).await {
            if let Some(host) = c.endpoint().and_then(shared::model::endpoint_host) {
                names.push((host, format!("{ARENA_CLUSTER} host")));
            }
            names.push((
                o.workload.cluster_sg(ARENA_CLUSTER).await,
                format!("{ARENA_CLUSTER} cluster group"),
            ));
        }
        for e in hub.endpoints.iter().chain(&workload.endpoints) {
            let direction = e.direction().map(|d| d.as_str()).unwrap_or_default();
            names.push((
                e.id().unwrap_or_default().to_string(),
                format!(
                    "{direction} endpoint in {}",
                    e.host_vpc_id().unwrap_or_default()
                ),
            ));
        }
        for r in &workload.group_rules {
            if let Some(id) = r.security_group_rule_id() {
                names.push((id.to_string(), "group rule id".to_string()));
            }
        }
        let names: Vec<(&str, &str)> = names
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut lines = Vec::new();
        for (account, snap) in [("hub", hub), ("workload", workload), ("client", client)] {
            lines.extend(
                crate::arena::unversioned(snap.canonical(&names))
                    .into_iter()
                    .map(|l| format!("{account}: {l}")),
            );
        }
        lines.sort();
        lines
    }

    /// Compare the state with `expected`; add what differs to `figures`.
    pub async fn judge(
        &self,
        expected: &[String],
        figures: &mut crate::arena::Figures,
        what: &str,
    ) {
        let state = self.state().await;
        let diff = crate::arena::Diff::of(expected, &state);
        figures.leaked += diff.extra;
        figures.doubled += diff.doubled;
        figures.missing += diff.missing;
        if !diff.is_empty() {
            figures.failures.push(format!(
                "{what} (three accounts): {diff:?}\nnow: {state:#?}"
            ));
        }
    }
}
