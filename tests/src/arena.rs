//! The arena of the reliability tests (tests/tests/faults.rs): one private
//! cluster of ours ("demo", named as in events/) in a world crowded with
//! things that are not ours, every request through the fault proxy, and the
//! figures each test family reports.
//!
//! Not ours, and planted in every arena: a security group with a rule of its
//! own, an outbound Resolver endpoint, a forwarding rule and its
//! association, two ingress rules on the cluster's own group (one that
//! admits the on-prem CIDR on 443, as ours would), an SSM parameter outside
//! our prefix and one inside it without our tags, and a second deployment
//! (owner "team-b", prefix "/team-b") that manages another cluster in the
//! same VPC: its inbound endpoint, group, 443 rule and parameters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use shared::config::Config;
use shared::owner::TAG_OWNER;

use crate::proxy::{Proxy, Tally};
use crate::Access;
use crate::{config, Aws, EmulatorOptions, Snapshot, World, ONPREM};

/// The SDK timeouts of the arena's reconcilers: the product's shape, scaled
/// to an emulator on loopback (its answers take milliseconds; a black-holed
/// request costs one attempt timeout).
pub const ARENA_TIMEOUTS: shared::aws::Timeouts = shared::aws::Timeouts {
    connect: std::time::Duration::from_secs(1),
    attempt: std::time::Duration::from_secs(1),
    operation: std::time::Duration::from_secs(10),
    resolver_operation: std::time::Duration::from_secs(20),
};

/// Our cluster, as the event fixtures name it.
pub const CLUSTER: &str = "demo";
/// The other deployment's cluster, in the same VPC.
pub const THEIR_CLUSTER: &str = "theirs";
pub const THEIR_OWNER: &str = "team-b";

pub struct Arena {
    pub w: World,
    pub proxy: Proxy,
    /// Everything not ours, as it was before the family ran.
    pub foreign_before: Vec<String>,
}

impl Arena {
    pub async fn new() -> Arena {
        // Resolver takes its time here too, a second per change: the
        // families make hundreds of runs.
        let w = World::new(
            EmulatorOptions {
                resolver_seconds: 1.0,
                ..EmulatorOptions::default()
            },
            &[],
        )
        .await;
        Arena::furnish(w).await
    }

    /// The same arena again, from an empty emulator (for the next run).
    pub async fn renew(self) -> Arena {
        let Arena { w, proxy, .. } = self;
        drop(proxy);
        let w = w.renew().await;
        Arena::furnish(w).await
    }

    async fn furnish(w: World) -> Arena {
        w.aws
            .cluster(CLUSTER, &w.cluster_vpc, Access::Private, &[])
            .await
            .unwrap();
        w.aws
            .cluster(THEIR_CLUSTER, &w.cluster_vpc, Access::PublicAndPrivate, &[])
            .await
            .unwrap();
        plant_foreign(&w).await.unwrap();
        let report = w
            .emulator
            .reconciler(their_config())
            .reconcile(THEIR_CLUSTER)
            .await;
        assert_eq!(report.error, None, "the other deployment: {report:#?}");
        assert!(report.applied, "the other deployment built its plumbing");
        let proxy = Proxy::start(&w.emulator.url).await.unwrap();
        let mut arena = Arena {
            w,
            proxy,
            foreign_before: Vec::new(),
        };
        arena.foreign_before = arena.state().await.foreign;
        arena
    }

    /// Our configuration: the client VPC and the on-prem CIDR.
    pub fn config(&self) -> Config {
        self.w.config()
    }

    /// A reconciler of ours whose requests go through the proxy, with short
    /// SDK timeouts (ARENA_TIMEOUTS), since the proxy may black-hole a
    /// request.
    pub fn reconciler(&self) -> shared::Reconciler {
        self.w
            .emulator
            .reconciler_via_with(&self.proxy.url, self.config(), ARENA_TIMEOUTS)
    }

    /// Environment for the CLI: through the proxy, with our configuration.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = self.w.emulator.env();
        for (k, v) in env.iter_mut() {
            if k == "AWS_ENDPOINT_URL" {
                *v = self.proxy.url.clone();
            }
        }
        env.push((
            shared::config::ENV_CLIENT_VPC_IDS.into(),
            self.w.client_vpc.id.clone(),
        ));
        env.push((shared::config::ENV_ONPREM_CIDRS.into(), ONPREM.into()));
        env
    }

    /// Labels for the canonical state, the same in every run.
    async fn names(&self) -> Vec<(String, String)> {
        let mut names = vec![
            (self.w.cluster_vpc.id.clone(), "cluster VPC".to_string()),
            (self.w.client_vpc.id.clone(), "client VPC".to_string()),
        ];
        for cluster in [CLUSTER, THEIR_CLUSTER] {
            if let Ok(c) = self.w.aws.describe(cluster).await {
                if let Some(host) = c.endpoint().and_then(shared::model::endpoint_host) {
                    names.push((host, format!("{cluster} host")));
                }
                names.push((
                    self.w.aws.cluster_sg(cluster).await,
                    format!("{cluster} cluster group"),
                ));
            }
        }
        names
    }

    /// The AWS state, split into ours and everything else.
    pub async fn state(&self) -> State {
        let snap = self.w.aws.snapshot().await.unwrap();
        let (ours, foreign) = split(&self.w.aws, snap, shared::config::DEFAULT_OWNER)
            .await
            .unwrap();
        let names = self.names().await;
        let names: Vec<(&str, &str)> = names
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        State {
            ours: unversioned(ours.canonical(&names)),
            foreign: foreign.canonical(&names),
        }
    }

    /// Compare the state with `expected` (ours) and the foreign state with
    /// how it began; add what differs to `figures`.
    pub async fn judge(&self, expected: &[String], figures: &mut Figures, what: &str) {
        let state = self.state().await;
        let diff = Diff::of(expected, &state.ours);
        let foreign = Diff::of(&self.foreign_before, &state.foreign);
        figures.leaked += diff.extra;
        figures.doubled += diff.doubled;
        figures.missing += diff.missing;
        figures.foreign_touched += foreign.extra + foreign.missing;
        if !diff.is_empty() || !foreign.is_empty() {
            figures.failures.push(format!(
                "{what}: ours {diff:?}; foreign {foreign:?}\nours now: {:#?}",
                state.ours
            ));
        }
    }
}

/// The state of one moment: canonical lines of ours (parameter versions
/// left out: a retried PutParameter whose first answer was lost writes the
/// same value twice) and of everything else (versions kept: nothing of
/// theirs may be written at all).
pub struct State {
    pub ours: Vec<String>,
    pub foreign: Vec<String>,
}

/// How two multisets of canonical lines differ.
#[derive(Debug, Default)]
pub struct Diff {
    /// Lines present but not expected, duplicates not counted.
    pub extra: usize,
    /// Expected lines present more often than expected.
    pub doubled: usize,
    pub missing: usize,
    pub lines: Vec<String>,
}

impl Diff {
    pub fn of(expected: &[String], actual: &[String]) -> Diff {
        let count = |lines: &[String]| {
            let mut m: BTreeMap<String, usize> = BTreeMap::new();
            for l in lines {
                *m.entry(l.clone()).or_default() += 1;
            }
            m
        };
        let (e, a) = (count(expected), count(actual));
        let mut d = Diff::default();
        for (line, n) in &a {
            match e.get(line) {
                None => {
                    d.extra += n;
                    d.lines.push(format!("+ {line}"));
                }
                Some(m) if n > m => {
                    d.doubled += n - m;
                    d.lines.push(format!("2 {line}"));
                }
                _ => {}
            }
        }
        for (line, m) in &e {
            let n = a.get(line).copied().unwrap_or(0);
            if n < *m {
                d.missing += m - n;
                d.lines.push(format!("- {line}"));
            }
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.extra == 0 && self.doubled == 0 && self.missing == 0
    }
}

pub fn unversioned(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .into_iter()
        .map(|l| match l.strip_prefix("parameter ") {
            Some(rest) => match rest.split_once(" v") {
                Some((name, tail)) => match tail.split_once(" = ") {
                    Some((_, value)) => format!("parameter {name} = {value}"),
                    None => l.clone(),
                },
                None => l.clone(),
            },
            None => l,
        })
        .collect();
    out.sort();
    out
}

/// The other deployment's configuration: on-prem only, and it acts on
/// clusters with private access whatever their public access.
pub fn their_config() -> Config {
    config(&[
        (shared::config::ENV_OWNER, THEIR_OWNER),
        (shared::config::ENV_SSM_PREFIX, "/team-b"),
        (shared::config::ENV_TRIGGER, "private-access"),
        (shared::config::ENV_ONPREM_CIDRS, "172.16.0.0/12"),
    ])
}

/// Split a snapshot into what `owner` owns (by its owner tag; an
/// association by its rule) and everything else.
pub async fn split(aws: &Aws, snap: Snapshot, owner: &str) -> Result<(Snapshot, Snapshot)> {
    let mut ours = Snapshot::default();
    let mut rest = Snapshot::default();
    let is_ours =
        |tags: &BTreeMap<String, String>| tags.get(TAG_OWNER).map(String::as_str) == Some(owner);
    for e in snap.endpoints {
        let tags = aws.resolver_tags(e.arn().unwrap_or_default()).await?;
        let id = e.id().unwrap_or_default().to_string();
        let ips = snap.endpoint_ips.get(&id).cloned().unwrap_or_default();
        if is_ours(&tags) {
            ours.endpoint_ips.insert(id, ips);
            ours.endpoints.push(e);
        } else {
            rest.endpoint_ips.insert(id, ips);
            rest.endpoints.push(e);
        }
    }
    for r in snap.rules {
        let tags = aws.resolver_tags(r.arn().unwrap_or_default()).await?;
        if is_ours(&tags) {
            ours.rules.push(r);
        } else {
            rest.rules.push(r);
        }
    }
    for a in snap.associations {
        if ours.rules.iter().any(|r| r.id() == a.resolver_rule_id()) {
            ours.associations.push(a);
        } else {
            rest.associations.push(a);
        }
    }
    let ec2_ours = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter()
            .any(|t| t.key() == Some(TAG_OWNER) && t.value() == Some(owner))
    };
    for g in snap.groups {
        if ec2_ours(g.tags()) {
            ours.groups.push(g);
        } else {
            rest.groups.push(g);
        }
    }
    for r in snap.group_rules {
        // A rule of ours, or one on our group (its default egress rule).
        let on_our_group = ours.groups.iter().any(|g| g.group_id() == r.group_id());
        if ec2_ours(r.tags()) || on_our_group {
            ours.group_rules.push(r);
        } else {
            rest.group_rules.push(r);
        }
    }
    for (name, value) in snap.parameters {
        if is_ours(&aws.parameter_tags(&name).await?) {
            ours.parameters.insert(name, value);
        } else {
            rest.parameters.insert(name, value);
        }
    }
    Ok((ours, rest))
}

/// Someone else's plumbing, beside ours.
async fn plant_foreign(w: &World) -> Result<()> {
    let aws = &w.aws;
    let cluster_sg = w.cluster_sg(CLUSTER).await;
    aws.foreign_tcp_ingress(&cluster_sg, 443, ONPREM).await?;
    aws.foreign_tcp_ingress(&cluster_sg, 22, "10.50.0.0/16")
        .await?;
    let (corp_sg, _, _) = aws.foreign_plumbing(&w.client_vpc).await?;
    aws.foreign_tcp_ingress(&corp_sg, 53, "10.9.0.0/16").await?;
    for name in ["/corp/dns/servers", "/eks-private-dns/legacy/endpoint"] {
        aws.ssm
            .put_parameter()
            .name(name)
            .value("10.9.0.2")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await?;
    }
    Ok(())
}

/// The figures of one test family, for the reliability report.
#[derive(Debug, Default)]
pub struct Figures {
    pub family: String,
    pub runs: usize,
    /// Requests AWS saw, and what the proxy did to them.
    pub requests: Tally,
    /// Reconciles (or CLI runs) beyond the first that a run needed.
    pub further_reconciles: usize,
    pub leaked: usize,
    pub doubled: usize,
    /// Expected resources of ours that were not there at the end of a run.
    pub missing: usize,
    pub foreign_touched: usize,
    /// What went wrong, for the test's failure message.
    pub failures: Vec<String>,
}

impl Figures {
    pub fn new(family: &str) -> Figures {
        Figures {
            family: family.to_string(),
            ..Figures::default()
        }
    }

    /// Write the figures where the report finds them, then fail the test if
    /// anything went wrong.
    pub fn record_and_check(&self, dir: &str) {
        let dir = PathBuf::from(dir).join("reliability");
        std::fs::create_dir_all(&dir).expect("report folder");
        let doc = serde_json::json!({
            "family": self.family,
            "runs": self.runs,
            "requests": self.requests.requests,
            "writes": self.requests.writes,
            "faults": self.requests.faults_injected(),
            "faults_by_kind": self.requests.faults.iter()
                .map(|(k, v)| (format!("{k:?}"), *v)).collect::<BTreeMap<_, _>>(),
            "sdk_retries": self.requests.retries,
            "further_reconciles": self.further_reconciles,
            "leaked": self.leaked,
            "doubled": self.doubled,
            "missing": self.missing,
            "foreign_touched": self.foreign_touched,
            "failures": self.failures.len(),
        });
        std::fs::write(
            dir.join(format!("{}.json", self.family)),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .expect("report written");
        assert!(
            self.failures.is_empty(),
            "{}: {} failures:\n{}",
            self.family,
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}
