//! The sweep: reconcile every cluster in the region, then remove what we
//! own for clusters that no longer exist and the shared pieces nothing uses.
//! It is what keeps the fleet right when an event never arrives (CloudTrail
//! delivery is best effort, and EKS sends none when a cluster or an update
//! finishes), and it repairs drift.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::aws::{AwsError, CallCounter, Counts};
use crate::event::cluster_name_from_arn;
use crate::observe::{self, Fleet};
use crate::owner::{CreatorId, TAG_CLUSTER};
use crate::plan::{self, Decision, Plan, SharedView};
use crate::reconcile::{held_back_reason, Outcome, Reconciler, Report, Request};
use crate::settings::Published;
use crate::wait::Patience;

mod passes;

use passes::*;

/// One cluster the sweep could not reconcile, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub cluster: String,
    pub error: String,
    pub transient: bool,
}

/// A cluster AWS was still working on when the sweep stopped.
#[derive(Clone, Debug, Serialize)]
pub struct InProgress {
    pub cluster: String,
    pub waiting_for: Vec<String>,
}

/// The one summary a sweep logs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepReport {
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
    #[serde(skip)]
    pub reports: Vec<Report>,
}

impl SweepReport {
    /// Whether trying again later may fix what failed: then the invocation
    /// fails, so that it is retried and alarmed.
    pub fn has_transient_failure(&self) -> bool {
        self.failures.iter().any(|f| f.transient)
    }

    /// Count a failure of `cluster` (or "(shared)", "(settings)").
    fn fail(&mut self, cluster: &str, error: String, transient: bool) {
        self.failed += 1;
        self.failures.push(Failure {
            cluster: cluster.to_string(),
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
                cluster: report.cluster.clone(),
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
            self.fail(
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

/// List every cluster in the region.
pub async fn list_clusters(reconciler: &Reconciler) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut pages = reconciler
        .clients
        .eks
        .list_clusters()
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("EKS.ListClusters", e))?;
        names.extend(page.clusters().iter().cloned());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Clusters that something of ours still names: rules, 443 rules, parameters.
fn named_by_leftovers(reconciler: &Reconciler, fleet: &Fleet) -> BTreeMap<String, Option<String>> {
    let owner = &reconciler.owner;
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for rule in &fleet.resolver.rules {
        if let Some(CreatorId::Rule { cluster, .. }) =
            owner.parse_creator_id(&rule.creator_request_id)
        {
            names.entry(cluster).or_default();
        }
    }
    let region_marker = format!(":eks:{}:", reconciler.clients.region);
    for rule in &fleet.owned_rules {
        if let Some(arn) = rule.tags.get(TAG_CLUSTER) {
            if arn.contains(&region_marker) {
                if let Some(name) = cluster_name_from_arn(arn) {
                    names.insert(name, Some(arn.clone()));
                }
            }
        }
    }
    let prefix = &reconciler.config.ssm_prefix;
    for parameter in &fleet.parameters {
        if let Some(path) = crate::ssm::parse_parameter_name(prefix, &parameter.name) {
            if path.cluster.account.is_home() && crate::event::is_cluster_name(&path.cluster.name) {
                names.entry(path.cluster.name).or_default();
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

    let (names, mut fleet) = tokio::try_join!(
        list_clusters(reconciler),
        observe::observe_fleet(&reconciler.clients, &reconciler.config, &reconciler.owner)
    )?;
    fleet.prefetched =
        Some(observe::prefetch(reconciler.scope(), &fleet, &names, concurrency * 2).await?);
    summary.clusters_seen = names.len();
    if reconciler.publishes_settings && mode == crate::config::Mode::Apply {
        match publish_settings(reconciler, &fleet).await {
            Ok(published) => summary.settings_published = published,
            Err(e) => {
                summary.fail("(settings)", e.to_string(), e.is_transient());
            }
        }
    }

    let total = names.len();
    let mut done = 0;
    let (reports, fleet) =
        first_pass(reconciler, &names, fleet, &mut done, total, &mut progress).await?;

    let (orphans, orphan_arns) = reconcile_orphans(reconciler, &names, &fleet).await;

    // Those AWS is still working on: again, waiting this time.
    let again: Vec<(String, Option<String>)> = reports
        .iter()
        .chain(&orphans)
        .filter(|r| r.outcome == Outcome::Converging)
        .map(|r| {
            let arn = orphan_arns.get(&r.cluster).cloned().flatten();
            (r.cluster.clone(), arn)
        })
        .collect();
    let mut second = stream::iter(again.iter())
        .map(|(name, arn)| {
            reconciler.reconcile(
                Request::from(name.as_str())
                    .hinted_arn(arn.clone())
                    .patience(patience),
            )
        })
        .buffer_unordered(concurrency);
    let mut finished: Vec<Report> = Vec::new();
    while let Some(report) = second.next().await {
        if !orphans.iter().any(|o| o.cluster == report.cluster) {
            done += 1;
            progress(done, total, &report);
        }
        finished.push(report);
    }
    drop(second);
    for report in reports {
        let later = finished.iter().find(|r| r.cluster == report.cluster);
        let report = merge(report, later);
        summary.count(&report);
        summary.reports.push(report);
    }
    for report in orphans {
        let later = finished.iter().find(|r| r.cluster == report.cluster);
        let report = merge(report, later);
        summary.count_orphan(&report);
        progress(done, total, &report);
        summary.reports.push(report);
    }

    // A sweep that has written nothing looks at the shared leftovers with
    // what it read at its start (nothing of ours changed since); one that
    // wrote looks again.
    let quiet = counter.snapshot().writes() == 0;
    remove_shared_orphans(reconciler, quiet.then_some(&fleet), patience, &mut summary).await?;
    Ok(summary)
}

/// Shared pieces that nothing needs any more, from a fresh look: removed,
/// or held back when this run's settings are not the deployment's.
async fn remove_shared_orphans(
    reconciler: &Reconciler,
    unchanged: Option<&Fleet>,
    patience: Patience,
    summary: &mut SweepReport,
) -> Result<(), AwsError> {
    let mode = reconciler.config.mode;
    let read;
    let fresh = match unchanged {
        Some(fleet) => fleet,
        None => {
            read =
                observe::observe_fleet(&reconciler.clients, &reconciler.config, &reconciler.owner)
                    .await?;
            &read
        }
    };
    let mut needed_vpcs: BTreeSet<String> =
        observe::recorded_states(&reconciler.config.ssm_prefix, &fresh.parameters)
            .into_iter()
            .map(|doc| doc.vpc_id)
            .collect();
    for report in &summary.reports {
        // A cluster that is managed, pending or failed may need its VPC's
        // endpoint; only "not needed" decisions release it.
        let releases = matches!(
            report.decision.0,
            Some(Decision::NotManaged { .. } | Decision::Gone)
        );
        if !releases {
            if let Some(vpc) = &report.vpc_id {
                needed_vpcs.insert(vpc.clone());
            }
        }
    }
    let view = SharedView {
        endpoints: fresh.resolver.endpoints.clone(),
        rules: fresh
            .resolver
            .rules
            .iter()
            .filter(|r| {
                reconciler
                    .owner
                    .parse_creator_id(&r.creator_request_id)
                    .is_some()
            })
            .cloned()
            .collect(),
        security_groups: fresh.security_groups.clone(),
        needed_vpcs,
    };
    let mut actions = plan::plan_shared_orphans(&reconciler.config, &reconciler.owner, &view);
    let ours = reconciler.config.digest();
    let theirs =
        Published::find(&reconciler.config.ssm_prefix, &fresh.parameters).map(|p| p.digest);
    if !actions.is_empty() && reconciler.role.holds_back(&ours, theirs.as_deref()) {
        let why = held_back_reason(&ours, theirs.as_deref(), "the deployment publishes");
        summary.held_back.extend(
            actions
                .drain(..)
                .map(|a| format!("(shared): {} ({why})", a.describe())),
        );
    }
    if !actions.is_empty() {
        let count = actions.len();
        let shared = Plan {
            cluster: "(shared)".into(),
            decision: Decision::Gone,
            actions,
            waits: Vec::new(),
            problems: Vec::new(),
        };
        tracing::info!(actions = ?shared.actions.iter().map(|a| a.describe()).collect::<Vec<_>>(),
            "shared resources nothing uses");
        if mode == crate::config::Mode::Apply {
            let applier = reconciler.applier(patience);
            match applier.apply(&shared).await {
                Ok(applied) if !applied.stopped.is_empty() => {
                    summary.orphans_removed += applied.done.len();
                    summary.converging += 1;
                    summary.in_progress.push(InProgress {
                        cluster: "(shared)".into(),
                        waiting_for: applied.stopped,
                    });
                }
                Ok(_) => summary.orphans_removed += count,
                Err(e) => {
                    summary.fail("(shared)", e.to_string(), e.is_transient());
                }
            }
        }
    }

    Ok(())
}
