//! Test harness: the local AWS emulator (moto server with the documented
//! patches in emulator/launcher.py) on a free loopback port, builders for a
//! realistic world (VPCs, subnets, peering, clusters), and readers of the
//! resulting AWS state. Tests assert on that state, never on which functions
//! ran.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter};

pub mod arena;
pub mod dns_stub;
pub mod org;
pub mod proxy;
pub mod runtime_api;

pub use shared;
use shared::aws::Clients;
use shared::config::Config;
use shared::reconcile::Reconciler;

pub const REGION: &str = "eu-west-1";

/// A VPC's DNS attributes as EKS needs them: both on.
pub const DNS_ON: shared::model::VpcDns = shared::model::VpcDns {
    support: true,
    hostnames: true,
};
pub const ACCOUNT: &str = "123456789012";

/// The workspace root (where .venv and events/ live), found when the test
/// runs: from the package cargo runs it for, else the working directory
/// (the Makefile runs the benchmarks from the root). Not the path the test
/// was compiled at: cargo reuses a build made in another checkout that
/// shares the target directory, and that checkout may be gone.
pub fn workspace_root() -> PathBuf {
    let is_root = |dir: &std::path::Path| dir.join("tests/emulator/launcher.py").is_file();
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
    ];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| start.ancestors().find(|d| is_root(d)).map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("tests/ has a parent")
                .to_path_buf()
        })
}

/// The Python that has moto: EKS_PRIVATE_DNS_TEST_PYTHON, else the
/// project's .venv (made by `make test`).
pub fn python() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("EKS_PRIVATE_DNS_TEST_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        return Ok(venv);
    }
    bail!(
        "the AWS emulator needs Python with moto[server]: run `make test` (it creates .venv), \
         or set EKS_PRIVATE_DNS_TEST_PYTHON to a python that has it"
    )
}

#[derive(Clone, Debug, Default)]
pub struct EmulatorOptions {
    /// Seconds a new cluster stays CREATING.
    pub create_seconds: f64,
    /// Seconds a cluster stays UPDATING after UpdateClusterConfig.
    pub update_seconds: f64,
    /// Seconds each Route 53 Resolver change takes (an endpoint CREATING,
    /// UPDATING, DELETING; a rule DELETING; an association CREATING or
    /// DELETING). 0: final at once.
    pub resolver_seconds: f64,
}

/// The Resolver delay the lifecycle, sweep, reliability and end-to-end
/// suites run with: long enough that every wait is exercised, short enough
/// for the suite.
pub const RESOLVER_SECONDS: f64 = 2.0;

impl EmulatorOptions {
    /// Resolver taking its time (RESOLVER_SECONDS per change).
    pub fn slow_resolver() -> EmulatorOptions {
        EmulatorOptions {
            resolver_seconds: RESOLVER_SECONDS,
            ..EmulatorOptions::default()
        }
    }
}

/// Make `rec` wait for the emulator as the test reconcilers do: two
/// minutes at most, looking every 0.1 s doubling to 1 s (the product's
/// pauses are for AWS's minutes), so that a suite does not sleep past each
/// change.
pub fn with_quick_looks(mut rec: Reconciler) -> Reconciler {
    rec.wait_budget = Duration::from_secs(120);
    rec.first_poll = Duration::from_millis(100);
    rec.max_poll = Duration::from_secs(1);
    rec
}

/// SDK configuration for the emulator (or a proxy in front of it) at `url`.
pub fn sdk_config_for(url: &str) -> SdkConfig {
    let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(creds))
        .build()
}

/// A running emulator; stopped when dropped (its stdin closes).
pub struct Emulator {
    pub url: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Emulator {
    pub fn start() -> Result<Emulator> {
        Emulator::start_with(EmulatorOptions::default())
    }

    pub fn start_with(options: EmulatorOptions) -> Result<Emulator> {
        let launcher = workspace_root().join("tests/emulator/launcher.py");
        let mut child = Command::new(python()?)
            .arg(&launcher)
            .env(
                "EMULATOR_EKS_CREATE_SECONDS",
                options.create_seconds.to_string(),
            )
            .env(
                "EMULATOR_EKS_UPDATE_SECONDS",
                options.update_seconds.to_string(),
            )
            .env(
                "EMULATOR_RESOLVER_SECONDS",
                options.resolver_seconds.to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("EKS_PRIVATE_DNS_EMULATOR_LOG") {
                // Keep the emulator's own log (tracebacks of its 500s) when debugging.
                Some(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .spawn()
            .with_context(|| format!("cannot start {}", launcher.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .map_err(|_| anyhow!("the AWS emulator did not start within 90 s"))?;
        let port: u16 = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow!("the AWS emulator did not start: {line:?}"))?;
        let stdin = child.stdin.take();
        Ok(Emulator {
            url: format!("http://127.0.0.1:{port}"),
            child,
            stdin,
        })
    }

    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.url)
    }

    /// Forget every resource (the emulator's own reset), for the next run
    /// of a test that needs a fresh world and not a fresh process.
    pub async fn reset(&self) -> Result<()> {
        self.post("/moto-api/reset", None)
            .await
            .map_err(|e| anyhow!("the emulator did not reset: {e}"))
    }

    /// POST to the emulator itself (not an AWS API): Ok when it answers 200.
    async fn post(&self, path: &str, json: Option<&str>) -> Result<()> {
        self.call("POST", path, json).await.map(|_| ())
    }

    /// The events PutEvents accepted, oldest first (the emulator's test
    /// control): each with account, region, source, detail-type, bus and
    /// the detail as JSON.
    pub async fn events(&self) -> Result<Vec<serde_json::Value>> {
        let body = self.call("GET", "/_emulator/events", None).await?;
        Ok(serde_json::from_str(&body)?)
    }

    /// One HTTP/1.1 request to the emulator; the body of a 200 answer.
    async fn call(&self, method: &str, path: &str, json: Option<&str>) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.url.trim_start_matches("http://");
        let body = json.unwrap_or("");
        let kind = if json.is_some() {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{kind}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        if !answer.starts_with("HTTP/1.1 200") && !answer.starts_with("HTTP/1.0 200") {
            bail!("{}", answer.lines().next().unwrap_or(""));
        }
        Ok(answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default())
    }

    /// A reconciler whose requests go to `url` (a proxy in front of this
    /// emulator).
    pub fn reconciler_via(&self, url: &str, config: Config) -> Reconciler {
        self.reconciler_via_with(url, config, shared::aws::Timeouts::default())
    }

    /// The same, with the SDK's timeouts given (short ones where the proxy
    /// black-holes requests).
    pub fn reconciler_via_with(
        &self,
        url: &str,
        config: Config,
        timeouts: shared::aws::Timeouts,
    ) -> Reconciler {
        let clients =
            Clients::from_sdk_config_with(&sdk_config_for(url), config.resolver_rate, timeouts)
                .expect("region");
        with_quick_looks(Reconciler::new(clients, config))
    }

    /// Make a Resolver resource's status what AWS reports when it fails
    /// (the emulator's test control): `{"endpoint", "ip", "status"}`,
    /// `{"endpoint", "status"}` or `{"rule", "vpc", "status"}`.
    pub async fn set_resolver_status(&self, request: serde_json::Value) -> Result<()> {
        self.post("/_emulator/resolver", Some(&request.to_string()))
            .await
            .map_err(|e| anyhow!("the emulator refused {request}: {e}"))
    }

    /// End a cluster's EKS update in progress now as AWS does when it fails
    /// or is cancelled (`status` "Failed" or "Cancelled"; the emulator's
    /// test control), with the settings it changed put back.
    pub async fn end_eks_update(&self, cluster: &str, status: &str) -> Result<()> {
        let request = serde_json::json!({"cluster": cluster, "status": status});
        self.post("/_emulator/eks", Some(&request.to_string()))
            .await
            .map_err(|e| anyhow!("the emulator refused {request}: {e}"))
    }

    /// Make AssumeRole of `roles` fail with AccessDenied, as when a role's
    /// trust policy does not name the caller (the emulator's test control).
    pub async fn deny_roles(&self, roles: &[&str]) -> Result<()> {
        let request = serde_json::json!({ "deny": roles });
        self.post("/_emulator/sts", Some(&request.to_string()))
            .await
            .map_err(|e| anyhow!("the emulator refused {request}: {e}"))
    }

    /// Environment for a child process (the CLI, the demo) to reach this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.url.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    pub fn clients(&self) -> Clients {
        Clients::from_sdk_config(&self.sdk_config(), shared::config::DEFAULT_RESOLVER_RATE)
            .expect("region is set")
    }

    pub fn reconciler(&self, config: Config) -> Reconciler {
        let clients = Clients::from_sdk_config(&self.sdk_config(), config.resolver_rate)
            .expect("region is set");
        with_quick_looks(Reconciler::new(clients, config))
    }

    pub fn aws(&self) -> Aws {
        Aws::of(&self.sdk_config())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain SDK clients, for building the world and reading the result.
#[derive(Clone)]
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub resolver: aws_sdk_route53resolver::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Aws {
    /// Clients of the account `sdk` acts in.
    pub fn of(sdk: &SdkConfig) -> Aws {
        Aws {
            ec2: aws_sdk_ec2::Client::new(sdk),
            eks: aws_sdk_eks::Client::new(sdk),
            resolver: aws_sdk_route53resolver::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
        }
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// A subnet's IP stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// An IPv4 block only.
    Ipv4,
    /// An IPv4 block and a /64 of the VPC's IPv6 block.
    DualStack,
}

/// A cluster's endpoint access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Private access only (what the default trigger manages).
    Private,
    Public,
    PublicAndPrivate,
    /// Neither (an endpoint no one reaches; EKS refuses it, the emulator not).
    Neither,
}

impl Access {
    /// (endpointPrivateAccess, endpointPublicAccess).
    pub fn flags(self) -> (bool, bool) {
        match self {
            Access::Private => (true, false),
            Access::Public => (false, true),
            Access::PublicAndPrivate => (true, true),
            Access::Neither => (false, false),
        }
    }
}

/// A VPC with its subnets.
#[derive(Clone, Debug)]
pub struct Vpc {
    pub id: String,
    pub subnets: Vec<String>,
}

/// Send a request as `account` (the emulator's x-moto-account-id header).
fn as_account(request: &mut aws_sdk_ec2::config::http::HttpRequest, account: &str) {
    request
        .headers_mut()
        .insert("x-moto-account-id", account.to_string());
}

impl Aws {
    /// A VPC with DNS support and host names on, and one /24 subnet in each
    /// of `azs` (letters a, b, c...). Extra IPv4 CIDR blocks are associated.
    pub async fn vpc(&self, cidr: &str, extra_cidrs: &[&str], azs: &[&str]) -> Result<Vpc> {
        let vpc = self
            .ec2
            .create_vpc()
            .cidr_block(cidr)
            .send()
            .await?
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| anyhow!("no vpc id"))?
            .to_string();
        for extra in extra_cidrs {
            self.ec2
                .associate_vpc_cidr_block()
                .vpc_id(&vpc)
                .cidr_block(*extra)
                .send()
                .await?;
        }
        self.set_dns(&vpc, DNS_ON).await?;
        let base: ipnet::Ipv4Net = cidr.parse()?;
        let mut subnets = Vec::new();
        for (i, az) in azs.iter().enumerate() {
            let octets = base.network().octets();
            let subnet_cidr = format!("{}.{}.{}.0/24", octets[0], octets[1], i + 1);
            let subnet = self
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(subnet_cidr)
                .availability_zone(format!("{REGION}{az}"))
                .send()
                .await?
                .subnet()
                .and_then(|s| s.subnet_id())
                .ok_or_else(|| anyhow!("no subnet id"))?
                .to_string();
            subnets.push(subnet);
        }
        Ok(Vpc { id: vpc, subnets })
    }

    /// A VPC `{prefix}.0.0/16` with an Amazon-provided IPv6 block and DNS
    /// on, and a subnet per (AZ, stack) of `azs`, the dual-stack ones with a
    /// /64 of it: the VPC, its IPv6 block, and each subnet with its IPv6
    /// block.
    pub async fn dual_stack_vpc(
        &self,
        prefix: &str,
        azs: &[(&str, Stack)],
    ) -> Result<(Vpc, ipnet::Ipv6Net, Vec<(String, Option<ipnet::Ipv6Net>)>)> {
        let vpc_id = self
            .ec2
            .create_vpc()
            .cidr_block(format!("{prefix}.0.0/16"))
            .amazon_provided_ipv6_cidr_block(true)
            .send()
            .await?
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| anyhow!("no vpc id"))?
            .to_string();
        self.set_dns(&vpc_id, DNS_ON).await?;
        let described = self.ec2.describe_vpcs().vpc_ids(&vpc_id).send().await?;
        let block: ipnet::Ipv6Net = described.vpcs()[0].ipv6_cidr_block_association_set()[0]
            .ipv6_cidr_block()
            .ok_or_else(|| anyhow!("no IPv6 block"))?
            .parse()?;
        let mut blocks = block.subnets(64)?;
        let mut subnets = Vec::new();
        for (i, (az, stack)) in azs.iter().enumerate() {
            let ipv6 = (*stack == Stack::DualStack)
                .then(|| blocks.next())
                .flatten();
            let id = self
                .ec2
                .create_subnet()
                .vpc_id(&vpc_id)
                .cidr_block(format!("{prefix}.{}.0/24", i + 1))
                .set_ipv6_cidr_block(ipv6.map(|b| b.to_string()))
                .availability_zone(format!("{REGION}{az}"))
                .send()
                .await?
                .subnet()
                .and_then(|s| s.subnet_id())
                .ok_or_else(|| anyhow!("no subnet id"))?
                .to_string();
            subnets.push((id, ipv6));
        }
        let vpc = Vpc {
            id: vpc_id,
            subnets: subnets.iter().map(|(id, _)| id.clone()).collect(),
        };
        Ok((vpc, block, subnets))
    }

    /// Wait (10 s at most) until a Resolver endpoint is OPERATIONAL.
    pub async fn until_endpoint_operational(&self, id: &str) {
        use aws_sdk_route53resolver::types::ResolverEndpointStatus;
        for _ in 0..100 {
            let out = self
                .resolver
                .get_resolver_endpoint()
                .resolver_endpoint_id(id)
                .send()
                .await
                .unwrap();
            let status = out.resolver_endpoint().and_then(|e| e.status());
            if status == Some(&ResolverEndpointStatus::Operational) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("endpoint {id} never became OPERATIONAL");
    }

    /// Delete a Resolver endpoint as someone would by hand, and wait (30 s
    /// at most) until AWS has finished deleting it.
    pub async fn delete_endpoint_by_hand(&self, id: &str) {
        self.resolver
            .delete_resolver_endpoint()
            .resolver_endpoint_id(id)
            .send()
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self
            .resolver
            .get_resolver_endpoint()
            .resolver_endpoint_id(id)
            .send()
            .await
            .is_ok()
        {
            assert!(std::time::Instant::now() < deadline, "endpoint {id} goes");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// (IPv4, IPv6) of each of a Resolver endpoint's addresses, sorted.
    pub async fn endpoint_addresses(&self, id: &str) -> Vec<(String, Option<String>)> {
        let out = self
            .resolver
            .list_resolver_endpoint_ip_addresses()
            .resolver_endpoint_id(id)
            .send()
            .await
            .unwrap();
        let mut found: Vec<(String, Option<String>)> = out
            .ip_addresses()
            .iter()
            .map(|a| {
                (
                    a.ip().unwrap_or_default().to_string(),
                    a.ipv6().map(str::to_string),
                )
            })
            .collect();
        found.sort();
        found
    }

    /// Set a VPC's DNS attributes (enableDnsSupport, enableDnsHostnames).
    pub async fn set_dns(&self, vpc: &str, dns: shared::model::VpcDns) -> Result<()> {
        let shared::model::VpcDns { support, hostnames } = dns;
        self.ec2
            .modify_vpc_attribute()
            .vpc_id(vpc)
            .enable_dns_support(AttributeBooleanValue::builder().value(support).build())
            .send()
            .await?;
        self.ec2
            .modify_vpc_attribute()
            .vpc_id(vpc)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(hostnames).build())
            .send()
            .await?;
        Ok(())
    }

    /// An active peering connection between two VPCs.
    pub async fn peer(&self, a: &str, b: &str) -> Result<String> {
        self.peer_with(a, b, None).await
    }

    /// A VPC of another account (the emulator's x-moto-account-id header
    /// picks the account), peered with `vpc` and accepted from that
    /// account: its id.
    pub async fn peer_in_account(&self, vpc: &str, account: &str, cidr: &str) -> Result<String> {
        let acct = account.to_string();
        let theirs = self
            .ec2
            .create_vpc()
            .cidr_block(cidr)
            .customize()
            .mutate_request(move |r| as_account(r, &acct))
            .send()
            .await?
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| anyhow!("no VPC id"))?
            .to_string();
        self.peer_with(vpc, &theirs, Some(account)).await?;
        Ok(theirs)
    }

    /// Peer `a` with `b` (of `account`, when given) and accept it as `b`'s
    /// owner would.
    async fn peer_with(&self, a: &str, b: &str, account: Option<&str>) -> Result<String> {
        let pcx = self
            .ec2
            .create_vpc_peering_connection()
            .vpc_id(a)
            .peer_vpc_id(b)
            .set_peer_owner_id(account.map(str::to_string))
            .send()
            .await?
            .vpc_peering_connection()
            .and_then(|p| p.vpc_peering_connection_id())
            .ok_or_else(|| anyhow!("no peering id"))?
            .to_string();
        let acct = account.map(str::to_string);
        self.ec2
            .accept_vpc_peering_connection()
            .vpc_peering_connection_id(&pcx)
            .customize()
            .mutate_request(move |r| {
                if let Some(acct) = &acct {
                    as_account(r, acct)
                }
            })
            .send()
            .await?;
        Ok(pcx)
    }

    /// An EKS cluster in `vpc`'s subnets with the given endpoint access.
    pub async fn cluster(
        &self,
        name: &str,
        vpc: &Vpc,
        access: Access,
        tags: &[(&str, &str)],
    ) -> Result<()> {
        self.cluster_with_groups(name, vpc, access, &[], tags).await
    }

    /// The same, with additional security groups.
    pub async fn cluster_with_groups(
        &self,
        name: &str,
        vpc: &Vpc,
        access: Access,
        groups: &[String],
        tags: &[(&str, &str)],
    ) -> Result<()> {
        let (private, public) = access.flags();
        let config = aws_sdk_eks::types::VpcConfigRequest::builder()
            .set_subnet_ids(Some(vpc.subnets.clone()))
            .set_security_group_ids(Some(groups.to_vec()))
            .endpoint_private_access(private)
            .endpoint_public_access(public)
            .build();
        let mut req = self
            .eks
            .create_cluster()
            .name(name)
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"))
            .resources_vpc_config(config);
        for (k, v) in tags {
            req = req.tags(*k, *v);
        }
        req.send().await?;
        Ok(())
    }

    /// A private-only cluster whose ipFamily is ipv6.
    pub async fn ipv6_cluster(&self, name: &str, vpc: &Vpc) -> Result<()> {
        use aws_sdk_eks::types::{IpFamily, KubernetesNetworkConfigRequest};
        let config = aws_sdk_eks::types::VpcConfigRequest::builder()
            .set_subnet_ids(Some(vpc.subnets.clone()))
            .endpoint_private_access(true)
            .endpoint_public_access(false)
            .build();
        self.eks
            .create_cluster()
            .name(name)
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"))
            .resources_vpc_config(config)
            .kubernetes_network_config(
                KubernetesNetworkConfigRequest::builder()
                    .ip_family(IpFamily::Ipv6)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// Change a cluster's endpoint access (UpdateClusterConfig).
    pub async fn set_access(&self, name: &str, access: Access) -> Result<()> {
        let (private, public) = access.flags();
        self.eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .endpoint_private_access(private)
                    .endpoint_public_access(public)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    pub async fn describe(&self, name: &str) -> Result<aws_sdk_eks::types::Cluster> {
        self.eks
            .describe_cluster()
            .name(name)
            .send()
            .await?
            .cluster()
            .cloned()
            .ok_or_else(|| anyhow!("no cluster"))
    }

    /// A security group of the user's in `vpc`, with `tags`.
    pub async fn security_group(
        &self,
        vpc: &Vpc,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String> {
        let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup);
        for (k, v) in tags {
            spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        Ok(self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .vpc_id(&vpc.id)
            .set_tag_specifications((!tags.is_empty()).then(|| vec![spec.build()]))
            .send()
            .await?
            .group_id()
            .ok_or_else(|| anyhow!("no group id"))?
            .to_string())
    }

    /// The security group EKS made for a cluster.
    pub async fn cluster_sg(&self, name: &str) -> String {
        self.describe(name)
            .await
            .unwrap()
            .resources_vpc_config()
            .unwrap()
            .cluster_security_group_id()
            .unwrap()
            .to_string()
    }

    async fn cluster_arn(&self, name: &str) -> Result<String> {
        Ok(self
            .describe(name)
            .await?
            .arn()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn tag_cluster(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let arn = self.cluster_arn(name).await?;
        self.eks
            .tag_resource()
            .resource_arn(arn)
            .tags(key, value)
            .send()
            .await?;
        Ok(())
    }

    /// An ingress rule of someone else's (no tags): TCP `port` from `cidr`.
    pub async fn foreign_tcp_ingress(&self, group_id: &str, port: i32, cidr: &str) -> Result<()> {
        self.ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// Someone's own Resolver plumbing in `vpc`: a security group, an
    /// outbound endpoint, a forwarding rule for corp.example.com and its
    /// association with `vpc`. Returns the group, endpoint and rule ids.
    pub async fn foreign_plumbing(&self, vpc: &Vpc) -> Result<(String, String, String)> {
        use aws_sdk_route53resolver::types::{
            IpAddressRequest, ResolverEndpointDirection, RuleTypeOption, TargetAddress,
        };
        let corp_sg = self
            .ec2
            .create_security_group()
            .group_name("corp-dns")
            .description("corp")
            .vpc_id(&vpc.id)
            .send()
            .await?
            .group_id()
            .unwrap_or_default()
            .to_string();
        let endpoint_id = self
            .resolver
            .create_resolver_endpoint()
            .creator_request_id("corp-outbound-1")
            .name("corp-outbound")
            .security_group_ids(&corp_sg)
            .direction(ResolverEndpointDirection::Outbound)
            .ip_addresses(
                IpAddressRequest::builder()
                    .subnet_id(&vpc.subnets[0])
                    .build()?,
            )
            .ip_addresses(
                IpAddressRequest::builder()
                    .subnet_id(&vpc.subnets[1])
                    .build()?,
            )
            .send()
            .await?
            .resolver_endpoint()
            .and_then(|e| e.id())
            .unwrap_or_default()
            .to_string();
        let rule_id = self
            .resolver
            .create_resolver_rule()
            .creator_request_id("corp-rule-1")
            .name("corp")
            .rule_type(RuleTypeOption::Forward)
            .domain_name("corp.example.com")
            .target_ips(TargetAddress::builder().ip("10.9.0.2").port(53).build())
            .resolver_endpoint_id(&endpoint_id)
            .send()
            .await?
            .resolver_rule()
            .and_then(|r| r.id())
            .unwrap_or_default()
            .to_string();
        self.resolver
            .associate_resolver_rule()
            .resolver_rule_id(&rule_id)
            .vpc_id(&vpc.id)
            .send()
            .await?;
        Ok((corp_sg, endpoint_id, rule_id))
    }

    /// What a person does in the console: disassociate a rule from every
    /// VPC, wait until AWS has finished (the associations are DELETING for
    /// a while), delete the rule, and wait until it is gone.
    pub async fn remove_rule_by_hand(&self, rule_id: &str) -> Result<()> {
        let associated = |aws: Aws| async move {
            let out = aws
                .resolver
                .list_resolver_rule_associations()
                .filters(
                    aws_sdk_route53resolver::types::Filter::builder()
                        .name("ResolverRuleId")
                        .values(rule_id)
                        .build(),
                )
                .send()
                .await?;
            Ok::<_, anyhow::Error>(out.resolver_rule_associations().to_vec())
        };
        for a in associated(self.clone()).await? {
            if a.status().map(|s| s.as_str()) != Some("DELETING") {
                self.resolver
                    .disassociate_resolver_rule()
                    .resolver_rule_id(rule_id)
                    .vpc_id(a.vpc_id().unwrap_or_default())
                    .send()
                    .await?;
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !associated(self.clone()).await?.is_empty() {
            if std::time::Instant::now() > deadline {
                bail!("rule {rule_id} still associated after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.resolver
            .delete_resolver_rule()
            .resolver_rule_id(rule_id)
            .send()
            .await?;
        // And until it is gone (DELETING, then not found).
        while self
            .resolver
            .get_resolver_rule()
            .resolver_rule_id(rule_id)
            .send()
            .await
            .is_ok()
        {
            if std::time::Instant::now() > deadline {
                bail!("rule {rule_id} still there 60 s after it was deleted");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    pub async fn untag_cluster(&self, name: &str, key: &str) -> Result<()> {
        let arn = self.cluster_arn(name).await?;
        self.eks
            .untag_resource()
            .resource_arn(arn)
            .tag_keys(key)
            .send()
            .await?;
        Ok(())
    }

    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        self.eks.delete_cluster().name(name).send().await?;
        Ok(())
    }

    /// The observable AWS state, for assertions.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut endpoints = Vec::new();
        let mut pages = self
            .resolver
            .list_resolver_endpoints()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            endpoints.extend(page?.resolver_endpoints().iter().cloned());
        }
        let mut endpoint_ips = BTreeMap::new();
        for e in &endpoints {
            let id = e.id().unwrap_or_default().to_string();
            let mut ips = Vec::new();
            let mut pages = self
                .resolver
                .list_resolver_endpoint_ip_addresses()
                .resolver_endpoint_id(&id)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                ips.extend(page?.ip_addresses().iter().cloned());
            }
            endpoint_ips.insert(id, ips);
        }
        let mut rules = Vec::new();
        let mut pages = self.resolver.list_resolver_rules().into_paginator().send();
        while let Some(page) = pages.next().await {
            rules.extend(
                page?
                    .resolver_rules()
                    .iter()
                    .filter(|r| r.rule_type().map(|t| t.as_str()) == Some("FORWARD"))
                    .cloned(),
            );
        }
        let mut associations = Vec::new();
        let mut pages = self
            .resolver
            .list_resolver_rule_associations()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            associations.extend(page?.resolver_rule_associations().iter().cloned());
        }
        let mut groups = Vec::new();
        let mut pages = self.ec2.describe_security_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            groups.extend(page?.security_groups().iter().cloned());
        }
        let mut group_rules = Vec::new();
        let mut pages = self
            .ec2
            .describe_security_group_rules()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            group_rules.extend(page?.security_group_rules().iter().cloned());
        }
        let mut parameters = BTreeMap::new();
        let mut next = None;
        loop {
            let out = self
                .ssm
                .get_parameters_by_path()
                .path("/")
                .recursive(true)
                .set_next_token(next)
                .send()
                .await?;
            for p in out.parameters() {
                parameters.insert(
                    p.name().unwrap_or_default().to_string(),
                    (p.value().unwrap_or_default().to_string(), p.version()),
                );
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        Ok(Snapshot {
            endpoints,
            endpoint_ips,
            rules,
            associations,
            groups,
            group_rules,
            parameters,
        })
    }

    pub async fn resolver_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .resolver
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await?
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    pub async fn parameter_tags(&self, name: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .send()
            .await?
            .tag_list()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    pub async fn subnet_azs(&self, vpc: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc))
            .send()
            .await?
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap_or_default().to_string(),
                    s.availability_zone().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

/// An ingress rule: (protocol, port, cidr, owner tag, cluster tag).
/// An ingress rule on a security group, as a test reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ingress {
    /// "tcp", "udp", "-1".
    pub protocol: String,
    pub port: i32,
    /// The IPv4 or IPv6 CIDR it admits.
    pub cidr: String,
    /// Its owner tag (None: not ours).
    pub owner: Option<String>,
    /// Its cluster tag.
    pub cluster: Option<String>,
}

/// Everything observable, read in one go.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub endpoints: Vec<aws_sdk_route53resolver::types::ResolverEndpoint>,
    pub endpoint_ips: BTreeMap<String, Vec<aws_sdk_route53resolver::types::IpAddressResponse>>,
    pub rules: Vec<aws_sdk_route53resolver::types::ResolverRule>,
    pub associations: Vec<aws_sdk_route53resolver::types::ResolverRuleAssociation>,
    pub groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    pub group_rules: Vec<aws_sdk_ec2::types::SecurityGroupRule>,
    /// name -> (value, version)
    pub parameters: BTreeMap<String, (String, i64)>,
}

fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

impl Snapshot {
    pub fn inbound_endpoints(&self) -> Vec<&aws_sdk_route53resolver::types::ResolverEndpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.direction().map(|d| d.as_str()) == Some("INBOUND"))
            .collect()
    }

    pub fn outbound_endpoints(&self) -> Vec<&aws_sdk_route53resolver::types::ResolverEndpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.direction().map(|d| d.as_str()) == Some("OUTBOUND"))
            .collect()
    }

    /// IPv4 addresses of an endpoint, sorted like the SSM parameter.
    pub fn ips_of(&self, endpoint_id: &str) -> Vec<String> {
        let mut ips: Vec<String> = self
            .endpoint_ips
            .get(endpoint_id)
            .map(|v| {
                v.iter()
                    .filter_map(|i| i.ip().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ips.sort_by_key(|ip| shared::model::ip_sort_key(ip));
        ips
    }

    pub fn rules_for(&self, domain: &str) -> Vec<&aws_sdk_route53resolver::types::ResolverRule> {
        self.rules
            .iter()
            .filter(|r| {
                shared::model::normalize_domain(r.domain_name().unwrap_or_default()) == domain
            })
            .collect()
    }

    pub fn associated_vpcs(&self, rule_id: &str) -> Vec<String> {
        let mut vpcs: Vec<String> = self
            .associations
            .iter()
            .filter(|a| a.resolver_rule_id() == Some(rule_id))
            .filter_map(|a| a.vpc_id().map(str::to_string))
            .collect();
        vpcs.sort();
        vpcs
    }

    /// Ingress rules on a group.
    pub fn ingress(&self, group_id: &str) -> Vec<Ingress> {
        let mut rules: Vec<_> = self
            .group_rules
            .iter()
            .filter(|r| r.group_id() == Some(group_id) && r.is_egress() == Some(false))
            .map(|r| Ingress {
                protocol: r.ip_protocol().unwrap_or_default().to_string(),
                port: r.from_port().unwrap_or(-1),
                cidr: r
                    .cidr_ipv4()
                    .or(r.cidr_ipv6())
                    .unwrap_or_default()
                    .to_string(),
                owner: ec2_tag(r.tags(), shared::owner::TAG_OWNER).map(str::to_string),
                cluster: ec2_tag(r.tags(), shared::owner::TAG_CLUSTER).map(str::to_string),
            })
            .collect();
        rules.sort();
        rules
    }

    /// Security groups carrying `owner` as their owner tag.
    pub fn owned_groups(&self, owner: &str) -> Vec<&aws_sdk_ec2::types::SecurityGroup> {
        self.groups
            .iter()
            .filter(|g| ec2_tag(g.tags(), shared::owner::TAG_OWNER) == Some(owner))
            .collect()
    }

    /// Parameters under a prefix.
    pub fn parameters_under(&self, prefix: &str) -> BTreeMap<String, (String, i64)> {
        self.parameters
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The state as sorted lines in which everything that differs between
    /// two emulators for the same story is replaced by a stable label: the
    /// VPC ids and endpoint host names in `names` by their names, group ids
    /// by group name, endpoint ids by direction and VPC, rule ids by domain,
    /// IPs and rule ids by a placeholder, the state's time stamp too. Two
    /// runs that built the same resources the same way (parameter versions
    /// included) give equal lines.
    pub fn canonical(&self, names: &[(&str, &str)]) -> Vec<String> {
        let mut labels: Vec<(String, String)> = names
            .iter()
            .map(|(id, name)| (id.to_string(), format!("<{name}>")))
            .collect();
        for e in &self.endpoints {
            let direction = e.direction().map(|d| d.as_str()).unwrap_or_default();
            let vpc = e.host_vpc_id().unwrap_or_default();
            labels.push((
                e.id().unwrap_or_default().to_string(),
                format!("<{direction} endpoint in {vpc}>"),
            ));
            for ip in self
                .endpoint_ips
                .get(e.id().unwrap_or_default())
                .into_iter()
                .flatten()
            {
                labels.extend(ip.ip().map(|ip| (ip.to_string(), "<IP>".to_string())));
                labels.extend(ip.ip_id().map(|id| (id.to_string(), "<IP id>".to_string())));
            }
        }
        for r in &self.rules {
            labels.push((
                r.id().unwrap_or_default().to_string(),
                format!("<rule for {}>", r.domain_name().unwrap_or_default()),
            ));
        }
        // VPCs not named (the emulator's default VPC).
        for g in &self.groups {
            let vpc = g.vpc_id().unwrap_or_default();
            if !names.iter().any(|(id, _)| *id == vpc) {
                labels.push((vpc.to_string(), "<another VPC>".to_string()));
            }
        }
        for g in &self.groups {
            // EKS names a cluster's group with a random suffix.
            let name = match ec2_tag(g.tags(), "aws:eks:cluster-name") {
                Some(cluster) => format!("EKS cluster group of {cluster}"),
                None => g.group_name().unwrap_or_default().to_string(),
            };
            labels.push((
                g.group_id().unwrap_or_default().to_string(),
                format!("<group {name} in {}>", g.vpc_id().unwrap_or_default()),
            ));
        }
        for r in &self.group_rules {
            labels.extend(
                r.security_group_rule_id()
                    .map(|id| (id.to_string(), "<group rule id>".to_string())),
            );
        }
        // Longest first, so that no id is replaced inside a longer one.
        labels.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
        // Twice: labels may hold ids (a group's VPC, a rule's domain).
        let label = |text: String| {
            let once = labels
                .iter()
                .fold(text, |t, (id, name)| t.replace(id.as_str(), name));
            labels
                .iter()
                .fold(once, |t, (id, name)| t.replace(id.as_str(), name))
        };
        let ec2_tags = |tags: &[aws_sdk_ec2::types::Tag]| {
            let mut t: Vec<String> = tags
                .iter()
                .map(|t| {
                    format!(
                        "{}={}",
                        t.key().unwrap_or_default(),
                        t.value().unwrap_or_default()
                    )
                })
                .collect();
            t.sort();
            t.join(",")
        };
        let mut lines = Vec::new();
        for e in &self.endpoints {
            let mut groups = e.security_group_ids().to_vec();
            groups.sort();
            lines.push(format!(
                "endpoint {} {} vpc={} groups={:?} ips={} status={:?}",
                e.id().unwrap_or_default(),
                e.name().unwrap_or_default(),
                e.host_vpc_id().unwrap_or_default(),
                groups,
                e.ip_address_count().unwrap_or_default(),
                e.status(),
            ));
        }
        for r in &self.rules {
            let mut targets: Vec<String> = r
                .target_ips()
                .iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t.ip().unwrap_or_default(),
                        t.port().unwrap_or_default()
                    )
                })
                .collect();
            targets.sort();
            lines.push(format!(
                "rule {} {} domain={} endpoint={} targets={targets:?}",
                r.id().unwrap_or_default(),
                r.name().unwrap_or_default(),
                r.domain_name().unwrap_or_default(),
                r.resolver_endpoint_id().unwrap_or_default(),
            ));
        }
        for a in &self.associations {
            lines.push(format!(
                "association {} -> {} status={:?}",
                a.resolver_rule_id().unwrap_or_default(),
                a.vpc_id().unwrap_or_default(),
                a.status(),
            ));
        }
        for g in &self.groups {
            lines.push(format!(
                "group {} {:?} tags=[{}]",
                g.group_id().unwrap_or_default(),
                g.description().unwrap_or_default(),
                ec2_tags(g.tags()),
            ));
        }
        for r in &self.group_rules {
            lines.push(format!(
                "group rule on {} egress={:?} {} {}-{} {} tags=[{}]",
                r.group_id().unwrap_or_default(),
                r.is_egress(),
                r.ip_protocol().unwrap_or_default(),
                r.from_port().unwrap_or(-1),
                r.to_port().unwrap_or(-1),
                r.cidr_ipv4().or(r.cidr_ipv6()).unwrap_or_default(),
                ec2_tags(r.tags()),
            ));
        }
        for (name, (value, version)) in &self.parameters {
            let value = match serde_json::from_str::<serde_json::Value>(value) {
                Ok(serde_json::Value::Object(mut doc)) if doc.contains_key("updated-at") => {
                    doc.insert("updated-at".into(), "<time>".into());
                    // A digest of settings that hold this world's VPC ids.
                    if doc.contains_key("settings-digest") {
                        doc.insert("settings-digest".into(), "<settings digest>".into());
                    }
                    // A digest of this world's endpoint name and addresses;
                    // the revision stays, and says how often they changed.
                    if let Some(serde_json::Value::Object(f)) = doc.get_mut("forwarders") {
                        f.insert("digest".into(), "<forwarders digest>".into());
                    }
                    // The versions SSM gave the values: a count of writes,
                    // which concurrent runs raise (the sweep's tests prove
                    // that they are the parameters' own).
                    if let Some(serde_json::Value::Object(p)) = doc.get_mut("parameters") {
                        for recorded in p.values_mut() {
                            if let Some(r) = recorded.as_object_mut() {
                                r.insert("version".into(), "<version>".into());
                            }
                        }
                    }
                    serde_json::Value::Object(doc).to_string()
                }
                _ => value.clone(),
            };
            lines.push(format!("parameter {name} v{version} = {value}"));
        }
        let mut lines: Vec<String> = lines.into_iter().map(label).collect();
        lines.sort();
        lines
    }

    /// Nothing of ours (the default owner and prefix) anywhere: no
    /// endpoints, rules, associations, groups, rules tagged with our owner,
    /// or parameters under the prefix.
    pub fn assert_clean(&self) {
        assert!(
            self.endpoints.is_empty(),
            "endpoints left: {:#?}",
            self.endpoints
        );
        assert!(self.rules.is_empty(), "rules left: {:#?}", self.rules);
        assert!(self.associations.is_empty(), "associations left");
        assert!(
            self.owned_groups("eks-private-dns").is_empty(),
            "groups left"
        );
        assert!(
            self.group_rules.iter().all(|r| !r
                .tags()
                .iter()
                .any(|t| t.key() == Some(shared::owner::TAG_OWNER))),
            "security group rules left"
        );
        assert!(
            self.parameters_under("/eks-private-dns/").is_empty(),
            "parameters left"
        );
    }

    /// Counts that must not change on a no-op run.
    pub fn shape(&self) -> (usize, usize, usize, usize, usize, usize) {
        (
            self.endpoints.len(),
            self.endpoint_ips.values().map(Vec::len).sum(),
            self.rules.len(),
            self.associations.len(),
            self.groups.len(),
            self.group_rules.len(),
        )
    }
}

/// The event fixture `events/<name>`, as JSON.
pub fn fixture(name: &str) -> Result<serde_json::Value> {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// A configuration for tests: defaults plus the given variables.
pub fn config(vars: &[(&str, &str)]) -> Config {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned()).expect("test configuration is valid")
}

/// A common world: a cluster VPC with subnets in three AZs, and a client
/// VPC (optionally with a second CIDR block) peered with it.
pub struct World {
    pub emulator: Emulator,
    pub aws: Aws,
    pub cluster_vpc: Vpc,
    pub client_vpc: Vpc,
}

/// The on-premises CIDR of the common world's configuration.
pub const ONPREM: &str = "192.168.0.0/16";

impl World {
    pub async fn new(options: EmulatorOptions, client_extra_cidrs: &[&str]) -> World {
        let emulator = Emulator::start_with(options).expect("emulator starts");
        World::build(emulator, client_extra_cidrs).await
    }

    /// The same world again, in the same emulator emptied.
    pub async fn renew(self) -> World {
        self.emulator.reset().await.expect("emulator resets");
        World::build(self.emulator, &[]).await
    }

    async fn build(emulator: Emulator, client_extra_cidrs: &[&str]) -> World {
        let aws = emulator.aws();
        let cluster_vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b", "c"]).await.unwrap();
        let client_vpc = aws
            .vpc("10.1.0.0/16", client_extra_cidrs, &["a", "b"])
            .await
            .unwrap();
        aws.peer(&client_vpc.id, &cluster_vpc.id).await.unwrap();
        World {
            emulator,
            aws,
            cluster_vpc,
            client_vpc,
        }
    }

    /// The client VPC and the on-prem CIDR as clients.
    pub fn config(&self) -> Config {
        config(&[
            (shared::config::ENV_CLIENT_VPC_IDS, &self.client_vpc.id),
            (shared::config::ENV_ONPREM_CIDRS, ONPREM),
        ])
    }

    pub async fn host(&self, cluster: &str) -> String {
        let c = self.aws.describe(cluster).await.unwrap();
        shared::model::endpoint_host(c.endpoint().unwrap()).unwrap()
    }

    pub async fn cluster_sg(&self, cluster: &str) -> String {
        self.aws.cluster_sg(cluster).await
    }
}

/// Check every DNS path of `cluster` (of the deployment's own account) as
/// `verify --path` does (the oracle the suites run after each step);
/// panics naming each failing hop.
pub async fn assert_paths(rec: &Reconciler, cluster: &str) {
    assert_cluster_paths(rec, &shared::model::ClusterId::home(cluster)).await
}

/// The same for a cluster of any account: every hop read in the account
/// that owns it.
pub async fn assert_cluster_paths(rec: &Reconciler, cluster: &shared::model::ClusterId) {
    let paths = rec
        .paths(cluster)
        .await
        .unwrap_or_else(|e| panic!("paths of {cluster}: {e}"));
    assert!(
        paths.ok(),
        "{cluster}: {} paths, failing hops: {:#?}",
        paths.paths.len(),
        paths.failures()
    );
}

/// A reconcile that ended well and converged: no error, and AWS finished
/// (not `converging`).
pub fn assert_converged(report: &shared::Report) {
    assert_eq!(report.error, None, "{report:#?}");
    assert!(
        matches!(
            report.outcome,
            shared::reconcile::Outcome::Applied | shared::reconcile::Outcome::NothingToDo
        ),
        "{report:#?}"
    );
}

/// Publish a cluster's parameters under the default prefix in `region`, as
/// the apply step does: our owner tag, the endpoint, its addresses, and a
/// state with the cluster's ARN and `vpc_cidrs` (the VPC's blocks outside
/// the private ranges, where `render` accepts addresses too). Overwrites.
pub async fn publish_as_apply(
    emulator: &Emulator,
    region: &str,
    cluster: &str,
    name: &str,
    ips: &[&str],
    ipv6: &[&str],
    vpc_cidrs: &[&str],
) {
    use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};
    let sdk = sdk_config_for(&emulator.url);
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .region(Region::new(region.to_string()))
            .build(),
    );
    let state = serde_json::json!({
        "schema": 1, "cluster": cluster,
        "cluster-arn": format!("arn:aws:eks:{region}:123456789012:cluster/{cluster}"),
        "vpc-id": "vpc-0123456789abcdef0", "endpoint": name,
        "inbound-endpoint-id": "rslvr-in-0123456789abcdef0", "outbound-endpoint-id": null,
        "rule-id": null, "associated-vpcs": [], "control-plane-security-group-id": "sg-0123456789abcdef0",
        "control-plane-rule-ids": [], "allowed-cidrs": [], "vpc-cidrs": vpc_cidrs,
        "updated-at": "2026-12-01T00:00:00Z"
    });
    let mut leaves = vec![
        ("endpoint", name.to_string(), ParameterType::String),
        ("inbound-ips", ips.join(","), ParameterType::StringList),
        ("state", state.to_string(), ParameterType::String),
    ];
    if !ipv6.is_empty() {
        leaves.push(("inbound-ipv6", ipv6.join(","), ParameterType::StringList));
    }
    for (leaf, value, kind) in leaves {
        let parameter = format!("/eks-private-dns/{cluster}/{leaf}");
        ssm.put_parameter()
            .name(&parameter)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        ssm.add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(&parameter)
            .tags(
                Tag::builder()
                    .key("eks-private-dns:owner")
                    .value("eks-private-dns")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

/// A binary of the workspace (`eks-private-dns`), found beside the running
/// test or demo binary in the target folder.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let bin = dir.join(name);
        if bin.exists() {
            return Ok(bin);
        }
    }
    bail!(
        "{name} is missing beside {}: build it first (cargo build --workspace --bins)",
        exe.display()
    )
}

/// A system tool of a Debian package the tests use (named, unbound, dnsmasq, dig...).
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = std::path::Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: install the Debian packages bind9, unbound, dnsmasq-base, pdns-recursor, \
         knot-resolver and dnsutils (.ci/run does)"
    );
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("epd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Print rows as a left-aligned table (the first row is the heading).
pub fn table(rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let mut widths = vec![0; rows[0].len()];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("  {}", line.join("  ").trim_end());
    }
}

/// A free TCP port on 127.0.0.1 (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
