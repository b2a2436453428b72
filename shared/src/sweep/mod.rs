//! The sweep: reconcile every cluster in the region, in the deployment's
//! account and every spoke account it serves, then remove what we own for
//! clusters that no longer exist (or whose account is no longer served) and
//! the shared pieces nothing uses. It is what keeps the fleet right when an
//! event never arrives (CloudTrail delivery is best effort, and EKS sends
//! none when a cluster or an update finishes), and it repairs drift. An
//! account that cannot be read (its role cannot be assumed, a permission is
//! missing) is a failure that names it; the other accounts go on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use crate::aws::{AwsError, CallCounter, Counts};
use crate::event::cluster_name_from_arn;
use crate::model::{Account, ClusterId};
use crate::observe::{self, Fleet};
use crate::owner::{CreatorId, TAG_CLUSTER};
use crate::plan::{self, Decision, Plan, SharedView};
use crate::reconcile::{held_back_reason, Outcome, Reconciler, Report, Request};
use crate::settings::Published;
use crate::wait::Patience;

mod passes;
mod shared;
mod teardown;

use passes::*;
use shared::*;
pub use teardown::{teardown, TeardownReport};

/// One cluster the sweep could not reconcile (or an account it could not
/// read, "(account)"), and why.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub cluster: String,
    /// The spoke account, for a failure in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub error: String,
    pub transient: bool,
}

/// A cluster AWS was still working on when the sweep stopped.
#[derive(Clone, Debug, Serialize)]
pub struct InProgress {
    /// Its name ("account:name" for a spoke's).
    pub cluster: String,
    pub waiting_for: Vec<String>,
}

/// The one summary a sweep logs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepReport {
    /// The spoke accounts served (besides the deployment's own).
    pub spoke_accounts: usize,
    pub clusters_seen: usize,
    pub managed: usize,
    pub pending: usize,
    pub not_managed: usize,
    pub invalid: usize,
    /// Clusters whose plumbing was changed.
    pub changed: usize,
    /// Clusters AWS was still working on at the deadline (the next sweep
    /// finishes them), with what it was doing.
    pub converging: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<InProgress>,
    pub failed: usize,
    /// Clusters that no longer exist whose leftovers were removed, plus
    /// shared resources nothing used.
    pub orphans_removed: usize,
    pub api_calls: u64,
    pub write_calls: u64,
    pub api_calls_by_service: BTreeMap<String, u64>,
    pub throttles: u64,
    /// Creates that found their resource made already, and adopted it.
    pub lost_races: u64,
    /// Calls spent waiting for AWS to finish something.
    pub poll_calls: u64,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
    /// What this run would have taken away but did not, per cluster (and
    /// "(shared)"): its settings differ from the deployment's
    /// (`Role::Operator`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<String>,
    /// Whether this run published the deployment's settings (they changed).
    pub settings_published: bool,
    /// What the records say is still made in an account the sweep could
    /// not act in (its role no longer works): the records stay.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<String>,
    #[serde(skip)]
    pub reports: Vec<Report>,
}

impl SweepReport {
    /// The spoke accounts this sweep reconciled in or failed in, by id.
    pub fn swept_accounts(&self) -> BTreeSet<String> {
        let of_reports = self
            .reports
            .iter()
            .filter_map(|r| r.account.id().map(str::to_string));
        let of_failures = self.failures.iter().filter_map(|f| f.account.clone());
        of_reports.chain(of_failures).collect()
    }

    /// A gone cluster's merged report, counted; where its account could
    /// not be acted in, what its records say is left there.
    fn add_orphan(&mut self, reconciler: &Reconciler, fleet: &Fleet, report: Report) {
        self.count_orphan(&report);
        if report.error.is_some() && !report.account.is_home() {
            self.left_behind
                .extend(left_behind(reconciler, fleet, &report.cluster_id()));
        }
        self.reports.push(report);
    }

    /// Whether trying again later may fix what failed: then the invocation
    /// fails, so that it is retried and alarmed.
    pub fn has_transient_failure(&self) -> bool {
        self.failures.iter().any(|f| f.transient)
    }

    /// Count a failure of `cluster` (or "(shared)", "(settings)",
    /// "(account)").
    fn fail(&mut self, cluster: &str, error: String, transient: bool) {
        self.fail_in(&Account::Home, cluster, error, transient);
    }

    fn fail_in(&mut self, account: &Account, cluster: &str, error: String, transient: bool) {
        self.failed += 1;
        self.failures.push(Failure {
            cluster: cluster.to_string(),
            account: account.id().map(str::to_string),
            error,
            transient,
        });
    }

    fn count(&mut self, report: &Report) {
        match &report.decision.0 {
            Some(Decision::Managed) => self.managed += 1,
            Some(Decision::Pending { .. }) => self.pending += 1,
            Some(Decision::NotManaged { .. } | Decision::Gone) => self.not_managed += 1,
            Some(Decision::Invalid { .. }) => self.invalid += 1,
            None => {}
        }
        if report.applied {
            self.changed += 1;
        }
        if report.outcome == Outcome::Converging {
            self.converging += 1;
            self.in_progress.push(InProgress {
                cluster: report.cluster_id().to_string(),
                waiting_for: report.in_progress.clone(),
            });
        }
        self.held_back.extend(
            report
                .held_back
                .iter()
                .map(|line| format!("{}: {line}", report.cluster)),
        );
        if let Some(error) = &report.error {
            self.fail_in(
                &report.account,
                &report.cluster,
                error.clone(),
                report.transient.unwrap_or(true),
            );
        }
    }
}

/// Publish the deployment's settings when they differ from what the fleet
/// read found (no read of its own); whether it wrote.
async fn publish_settings(
    reconciler: &Reconciler,
    fleet: &Fleet,
) -> Result<bool, crate::apply::ApplyError> {
    let prefix = &reconciler.config.ssm_prefix;
    let doc = Published::of(&reconciler.config);
    let current = fleet
        .parameters
        .iter()
        .find(|p| p.name == crate::settings::parameter_name(prefix));
    if Published::find(prefix, &fleet.parameters).as_ref() == Some(&doc) {
        return Ok(false);
    }
    let mut tags = crate::model::Tags::new();
    tags.insert(crate::owner::TAG_OWNER.into(), reconciler.owner.id.clone());
    let applier = reconciler.applier(Patience::none());
    applier
        .put_parameter(
            &crate::settings::parameter_name(prefix),
            &doc.to_json(),
            aws_sdk_ssm::types::ParameterType::String,
            &tags,
            current.is_some(),
        )
        .await?;
    Ok(true)
}

/// List every cluster of `account` in the region.
pub async fn list_clusters(
    reconciler: &Reconciler,
    account: &Account,
) -> Result<Vec<ClusterId>, AwsError> {
    let accounts = reconciler.accounts();
    let clients = accounts.get(account).await?;
    let mut names = Vec::new();
    let mut pages = clients
        .eks
        .list_clusters()
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            AwsError::from_sdk("EKS.ListClusters", e).in_account(accounts.describe(account))
        })?;
        names.extend(page.clusters().iter().cloned());
    }
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|name| ClusterId {
            account: account.clone(),
            name,
        })
        .collect())
}

/// Clusters that something of ours still names: rules (the deployment's),
/// 443 rules (in each account), parameters (the deployment's).
fn named_by_leftovers(
    reconciler: &Reconciler,
    fleet: &Fleet,
) -> BTreeMap<ClusterId, Option<String>> {
    let owner = &reconciler.owner;
    let mut names: BTreeMap<ClusterId, Option<String>> = BTreeMap::new();
    for rule in fleet.rules() {
        if let Some(CreatorId::Rule { cluster, .. }) =
            owner.parse_creator_id(&rule.creator_request_id)
        {
            names.entry(ClusterId::from_key(&cluster)).or_default();
        }
    }
    let region_marker = format!(":eks:{}:", reconciler.clients.region);
    for rule in fleet.owned_rules() {
        if let Some(arn) = rule.tags.get(TAG_CLUSTER) {
            if arn.contains(&region_marker) {
                if let Some(name) = cluster_name_from_arn(arn) {
                    let (_, account) = crate::event::arn_region_and_account(arn);
                    let account = match account {
                        Some(id) => reconciler.account_of(id),
                        None => rule.account.clone(),
                    };
                    names.insert(ClusterId { account, name }, Some(arn.clone()));
                }
            }
        }
    }
    let prefix = &reconciler.config.ssm_prefix;
    for parameter in &fleet.parameters {
        if let Some(path) = crate::ssm::parse_parameter_name(prefix, &parameter.name) {
            if crate::event::is_cluster_name(&path.cluster.name) {
                names.entry(path.cluster).or_default();
            }
        }
    }
    names
}

/// Sweep the region. `progress` is called after each cluster with
/// (done, total, report).
///
/// Every cluster gets one reconcile that makes its calls without waiting
/// for AWS, so that no cluster waits behind another's endpoint; those AWS
/// is still working on then get a second reconcile that waits, as
/// `patience` allows. What is still in progress then is the next sweep's.
pub async fn sweep(
    reconciler: &Reconciler,
    patience: Patience,
    progress: impl FnMut(usize, usize, &Report),
) -> Result<SweepReport, AwsError> {
    let started = Instant::now();
    let counter = CallCounter::default();
    let mut summary =
        Box::pin(counter.count(sweep_counted(reconciler, patience, progress, &counter))).await?;
    let counts: Counts = counter.snapshot();
    summary.api_calls = counts.total();
    summary.write_calls = counts.writes();
    summary.throttles = counts.throttles;
    summary.lost_races = counts.lost_races;
    summary.poll_calls = counts.total_polls();
    for (operation, n) in &counts.calls {
        let service = operation.split('.').next().unwrap_or(operation).to_string();
        *summary.api_calls_by_service.entry(service).or_default() += n;
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// The sweep, its calls counted by `counter`.
async fn sweep_counted(
    reconciler: &Reconciler,
    patience: Patience,
    mut progress: impl FnMut(usize, usize, &Report),
    counter: &CallCounter,
) -> Result<SweepReport, AwsError> {
    let mode = reconciler.config.mode;
    let mut summary = SweepReport::default();
    let concurrency = reconciler.config.sweep_concurrency.max(1);

    // The accounts served, from the Organization afresh at every run.
    let served = reconciler.served(std::time::Duration::ZERO).await?;
    summary.spoke_accounts = served.len();
    let mut accounts = vec![Account::Home];
    accounts.extend(served.iter().map(|id| Account::Id(id.clone())));
    let Accounts {
        fleet,
        names,
        unread,
    } = Box::pin(read_accounts(reconciler, &served, &accounts, &mut summary)).await?;
    summary.clusters_seen = names.len();
    if reconciler.publishes_settings
        && mode == crate::config::Mode::Apply
        && !reconciler.config.take_down
    {
        match publish_settings(reconciler, &fleet).await {
            Ok(published) => summary.settings_published = published,
            Err(e) => {
                summary.fail("(settings)", e.to_string(), e.is_transient());
            }
        }
    }

    let total = names.len();
    let mut done = 0;
    let (reports, fleet) = Box::pin(first_pass(
        reconciler,
        &served,
        &names,
        fleet,
        &mut done,
        total,
        &mut progress,
    ))
    .await?;

    let (orphans, orphan_arns) = Box::pin(reconcile_orphans(
        reconciler, &served, &names, &unread, &fleet,
    ))
    .await;

    // Those AWS is still working on: again, waiting this time.
    let again = converging(&reports, &orphans, &orphan_arns);
    let orphan_ids: Vec<ClusterId> = orphans.iter().map(|o| o.cluster_id()).collect();
    let finished = Pass {
        reconciler,
        served: &served,
        concurrency,
        done: &mut done,
        total,
        progress: &mut progress,
    }
    .again(&again, &orphan_ids, patience)
    .await;
    for report in reports {
        let later = finished
            .iter()
            .find(|r| r.cluster_id() == report.cluster_id());
        let report = merge(report, later);
        summary.count(&report);
        summary.reports.push(report);
    }
    for report in orphans {
        let later = finished
            .iter()
            .find(|r| r.cluster_id() == report.cluster_id());
        let report = merge(report, later);
        summary.add_orphan(reconciler, &fleet, report);
        progress(done, total, summary.reports.last().expect("just added"));
    }

    // A sweep that has written nothing looks at the shared leftovers with
    // what it read at its start (nothing of ours changed since); one that
    // wrote looks again.
    let quiet = counter.snapshot().writes() == 0;
    let shared = Shared {
        served: &served,
        accounts: &accounts,
        unread: &unread,
    };
    Box::pin(remove_shared_orphans(
        reconciler,
        shared,
        quiet.then_some(&fleet),
        patience,
        &mut summary,
    ))
    .await?;
    Ok(summary)
}

/// The clusters AWS was still working on at the first pass, with the ARN
/// of those that are gone.
fn converging(
    reports: &[Report],
    orphans: &[Report],
    orphan_arns: &BTreeMap<ClusterId, Option<String>>,
) -> Vec<(ClusterId, Option<String>)> {
    reports
        .iter()
        .chain(orphans)
        .filter(|r| r.outcome == Outcome::Converging)
        .map(|r| {
            let arn = orphan_arns.get(&r.cluster_id()).cloned().flatten();
            (r.cluster_id(), arn)
        })
        .collect()
}

/// What a sweep read of its accounts first: the fleet (with what its
/// clusters' first looks need, prefetched), every cluster, and the
/// accounts it could not read (each a failure in the summary).
struct Accounts {
    fleet: Fleet,
    names: Vec<ClusterId>,
    unread: BTreeSet<Account>,
}

/// List and read every account; the deployment's own failing ends the
/// sweep, another's is a failure that names it.
async fn read_accounts(
    reconciler: &Reconciler,
    served: &BTreeSet<String>,
    accounts: &[Account],
    summary: &mut SweepReport,
) -> Result<Accounts, AwsError> {
    let scope = reconciler.scope(served);
    let listing =
        futures::future::join_all(accounts.iter().map(|account| async move {
            (account.clone(), list_clusters(reconciler, account).await)
        }));
    // Each on the heap: a sweep's futures nest deeply, and a debug build
    // lays each one out on the stack before moving it.
    let (listed, fleet) = tokio::join!(
        Box::pin(listing),
        Box::pin(observe::observe_fleet(scope, accounts))
    );
    let (mut fleet, mut unread) = fleet?;
    let mut names: Vec<ClusterId> = Vec::new();
    for (account, listed) in listed {
        match listed {
            Ok(ids) => names.extend(ids),
            Err(e) if account.is_home() => return Err(e),
            Err(e) => {
                if !unread.iter().any(|(a, _)| *a == account) {
                    unread.push((account, e));
                }
            }
        }
    }
    for (account, error) in &unread {
        tracing::error!(account = %account, error = %error, "account not swept");
        fleet.accounts.remove(account);
        summary.fail_in(
            account,
            "(account)",
            error.to_string(),
            error.is_transient(),
        );
    }
    let unread: BTreeSet<Account> = unread.into_iter().map(|(a, _)| a).collect();
    names.retain(|id| !unread.contains(&id.account));
    let concurrency = reconciler.config.sweep_concurrency.max(1);
    fleet.prefetched =
        Some(Box::pin(observe::prefetch(scope, &fleet, &names, concurrency * 2)).await?);
    Ok(Accounts {
        fleet,
        names,
        unread,
    })
}
