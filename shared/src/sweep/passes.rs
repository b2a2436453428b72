//! The sweep's passes: the shared things first (one leader per VPC that
//! needs an inbound endpoint), then every other cluster a few at a time,
//! the clusters gone but still named by something of ours, and the merge of
//! a cluster's two passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::model::{Account, ClusterId, ClusterView};

use super::*;

/// The first pass over every cluster (no waiting): the shared things first
/// (one cluster per VPC that needs an inbound endpoint makes it, the first
/// alone since it may make the region's outbound endpoint too, and the
/// fleet is read again after each step, so that the others find them
/// instead of racing to make them again), then every other cluster, a few
/// at a time. Returns the reports and the fleet as last read.
pub(super) async fn first_pass<P: FnMut(usize, usize, &Report)>(
    reconciler: &Reconciler,
    served: &Arc<BTreeSet<String>>,
    names: &[ClusterId],
    mut fleet: Fleet,
    done: &mut usize,
    total: usize,
    progress: &mut P,
) -> Result<(Vec<Report>, Fleet), AwsError> {
    let leaders = leaders(reconciler, served, &fleet, names);
    let mut pass = Pass {
        reconciler,
        served,
        concurrency: reconciler.config.sweep_concurrency.max(1),
        done,
        total,
        progress,
    };
    let mut reports: Vec<Report> = Vec::new();
    if let Some((first, others)) = leaders.split_first() {
        reports.extend(pass.run(std::slice::from_ref(first), &fleet).await);
        fleet = refreshed(reconciler, served, fleet).await?;
        if !others.is_empty() {
            reports.extend(pass.run(others, &fleet).await);
            fleet = refreshed(reconciler, served, fleet).await?;
        }
    }
    // Every other cluster, a few at a time, sharing what was read once.
    let rest: Vec<ClusterId> = names
        .iter()
        .filter(|n| !leaders.contains(n))
        .cloned()
        .collect();
    reports.extend(pass.run(&rest, &fleet).await);
    Ok((reports, fleet))
}

/// One pass of the sweep's first look over some of its clusters, a few at
/// a time, sharing the fleet.
pub(super) struct Pass<'a, P: FnMut(usize, usize, &Report)> {
    pub(super) reconciler: &'a Reconciler,
    pub(super) served: &'a Arc<BTreeSet<String>>,
    pub(super) concurrency: usize,
    pub(super) done: &'a mut usize,
    pub(super) total: usize,
    pub(super) progress: &'a mut P,
}

impl<P: FnMut(usize, usize, &Report)> Pass<'_, P> {
    pub(super) async fn run(&mut self, names: &[ClusterId], fleet: &Fleet) -> Vec<Report> {
        let mut reports = Vec::new();
        let served = self.served;
        let mut looks = stream::iter(names.iter())
            .map(|id| {
                self.reconciler.reconcile(
                    Request::new(id.clone())
                        .fleet(fleet)
                        .served(served.clone())
                        .patience(Patience::none()),
                )
            })
            .buffer_unordered(self.concurrency);
        while let Some(report) = looks.next().await {
            if report.outcome != Outcome::Converging {
                *self.done += 1;
                (self.progress)(*self.done, self.total, &report);
            }
            reports.push(report);
        }
        reports
    }
}

impl<P: FnMut(usize, usize, &Report)> Pass<'_, P> {
    /// The clusters AWS was still working on, again, waiting this time as
    /// `patience` allows; `orphans` (gone clusters) are not progress.
    pub(super) async fn again(
        &mut self,
        again: &[(ClusterId, Option<String>)],
        orphans: &[ClusterId],
        patience: Patience,
    ) -> Vec<Report> {
        let served = self.served;
        let mut finished = Vec::new();
        let mut second = stream::iter(again.iter())
            .map(|(id, arn)| {
                self.reconciler.reconcile(
                    Request::new(id.clone())
                        .hinted_arn(arn.clone())
                        .served(served.clone())
                        .patience(patience),
                )
            })
            .buffer_unordered(self.concurrency);
        while let Some(report) = second.next().await {
            if !orphans.contains(&report.cluster_id()) {
                *self.done += 1;
                (self.progress)(*self.done, self.total, &report);
            }
            finished.push(report);
        }
        finished
    }
}

/// For each VPC whose clusters need its inbound endpoint and where none of
/// ours is live, the first such cluster (by name): the ones that make the
/// shared pieces. Decided on the prefetched clusters alone; a cluster that
/// only peering would make managed is not a leader (its VPC's clusters then
/// adopt what a concurrent twin made, as any concurrent run does).
pub(super) fn leaders(
    reconciler: &Reconciler,
    served: &BTreeSet<String>,
    fleet: &Fleet,
    names: &[ClusterId],
) -> Vec<ClusterId> {
    let Some(prefetched) = &fleet.prefetched else {
        return Vec::new();
    };
    let clusters: Vec<(&ClusterId, &ClusterView)> = names
        .iter()
        .filter_map(|id| {
            prefetched
                .clusters
                .get(id)
                .and_then(Option::as_ref)
                .map(|c| (id, c))
        })
        .collect();
    let endpoints: Vec<_> = fleet.endpoints().cloned().collect();
    plan::shared_leaders(
        &reconciler.config,
        &reconciler.owner,
        &endpoints,
        &clusters,
        served,
    )
}

/// The fleet read again after the shared pass, with the clusters as
/// prefetched (the pass changed none of them).
pub(super) async fn refreshed(
    reconciler: &Reconciler,
    served: &BTreeSet<String>,
    fleet: Fleet,
) -> Result<Fleet, AwsError> {
    let accounts: Vec<Account> = fleet.accounts.keys().cloned().collect();
    let clusters = fleet.prefetched.map(|p| p.clusters).unwrap_or_default();
    let scope = reconciler.scope(served);
    let (mut fresh, _) = observe::observe_fleet(scope, &accounts).await?;
    fresh.prefetched = Some(observe::batch_reads(scope, &fresh, clusters).await?);
    Ok(fresh)
}

/// Clusters that are gone but still named by something of ours, each
/// reconciled once (their plumbing goes), with the ARN that names them.
/// Clusters of an account that could not be listed are not taken for
/// gone. A cluster of an account no longer served is reconciled too: what
/// was made for it goes while its role still works.
pub(super) async fn reconcile_orphans(
    reconciler: &Reconciler,
    served: &Arc<BTreeSet<String>>,
    names: &[ClusterId],
    unread: &BTreeSet<Account>,
    fleet: &Fleet,
) -> (Vec<Report>, BTreeMap<ClusterId, Option<String>>) {
    let existing: BTreeSet<&ClusterId> = names.iter().collect();
    let mut orphans: Vec<Report> = Vec::new();
    let mut orphan_arns: BTreeMap<ClusterId, Option<String>> = BTreeMap::new();
    for (id, arn) in named_by_leftovers(reconciler, fleet) {
        if existing.contains(&id) || unread.contains(&id.account) {
            continue;
        }
        let report = reconciler
            .reconcile(
                Request::new(id.clone())
                    .hinted_arn(arn.clone())
                    .served(served.clone())
                    .patience(Patience::none()),
            )
            .await;
        orphan_arns.insert(id, arn);
        orphans.push(report);
    }
    (orphans, orphan_arns)
}

/// A cluster's report from the first pass, with the second pass's (when
/// it was reconciled again): what the first pass did, and the calls it
/// made, stay in the record.
pub(super) fn merge(earlier: Report, later: Option<&Report>) -> Report {
    match later {
        Some(later) => {
            let mut merged = later.clone();
            merged.applied |= earlier.applied;
            merged.add_calls_of(&earlier);
            let mut actions = earlier.actions;
            actions.extend(merged.actions);
            merged.actions = actions;
            merged.outcome = match merged.outcome {
                Outcome::NothingToDo if earlier.applied => Outcome::Applied,
                other => other,
            };
            merged
        }
        None => earlier,
    }
}

impl SweepReport {
    /// A gone cluster's leftovers: removed, converging or failed.
    pub(super) fn count_orphan(&mut self, report: &Report) {
        if report.applied {
            self.orphans_removed += 1;
        }
        if report.outcome == Outcome::Converging {
            self.converging += 1;
            self.in_progress.push(InProgress {
                cluster: report.cluster_id().to_string(),
                waiting_for: report.in_progress.clone(),
            });
        }
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
