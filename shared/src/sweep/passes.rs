//! The sweep's passes: the shared things first (one leader per VPC that
//! needs an inbound endpoint), then every other cluster a few at a time,
//! the clusters gone but still named by something of ours, and the merge of
//! a cluster's two passes.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};

use crate::model::ClusterView;

use super::*;

/// The first pass over every cluster (no waiting): the shared things first
/// (one cluster per VPC that needs an inbound endpoint makes it, the first
/// alone since it may make the region's outbound endpoint too, and the
/// fleet is read again after each step, so that the others find them
/// instead of racing to make them again), then every other cluster, a few
/// at a time. Returns the reports and the fleet as last read.
pub(super) async fn first_pass<P: FnMut(usize, usize, &Report)>(
    reconciler: &Reconciler,
    names: &[String],
    mut fleet: Fleet,
    done: &mut usize,
    total: usize,
    progress: &mut P,
) -> Result<(Vec<Report>, Fleet), AwsError> {
    let leaders = leaders(reconciler, &fleet, names);
    let mut pass = Pass {
        reconciler,
        concurrency: reconciler.config.sweep_concurrency.max(1),
        done,
        total,
        progress,
    };
    let mut reports: Vec<Report> = Vec::new();
    if let Some((first, others)) = leaders.split_first() {
        reports.extend(pass.run(std::slice::from_ref(first), &fleet).await);
        fleet = refreshed(reconciler, fleet).await?;
        if !others.is_empty() {
            reports.extend(pass.run(others, &fleet).await);
            fleet = refreshed(reconciler, fleet).await?;
        }
    }
    // Every other cluster, a few at a time, sharing what was read once.
    let rest: Vec<String> = names
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
    pub(super) concurrency: usize,
    pub(super) done: &'a mut usize,
    pub(super) total: usize,
    pub(super) progress: &'a mut P,
}

impl<P: FnMut(usize, usize, &Report)> Pass<'_, P> {
    pub(super) async fn run(&mut self, names: &[String], fleet: &Fleet) -> Vec<Report> {
        let mut reports = Vec::new();
        let mut looks = stream::iter(names.iter())
            .map(|name| {
                self.reconciler.reconcile(
                    Request::from(name.as_str())
                        .fleet(fleet)
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

/// For each VPC whose clusters need its inbound endpoint and where none of
/// ours is live, the first such cluster (by name): the ones that make the
/// shared pieces. Decided on the prefetched clusters alone; a cluster that
/// only peering would make managed is not a leader (its VPC's clusters then
/// adopt what a concurrent twin made, as any concurrent run does).
pub(super) fn leaders(reconciler: &Reconciler, fleet: &Fleet, names: &[String]) -> Vec<String> {
    let Some(prefetched) = &fleet.prefetched else {
        return Vec::new();
    };
    let clusters: Vec<&ClusterView> = names
        .iter()
        .filter_map(|name| prefetched.clusters.get(name).and_then(Option::as_ref))
        .collect();
    plan::shared_leaders(
        &reconciler.config,
        &reconciler.owner,
        &fleet.resolver.endpoints,
        &clusters,
    )
}

/// The fleet read again after the shared pass, with the clusters as
/// prefetched (the pass changed none of them).
pub(super) async fn refreshed(reconciler: &Reconciler, fleet: Fleet) -> Result<Fleet, AwsError> {
    let clusters = fleet.prefetched.map(|p| p.clusters).unwrap_or_default();
    let mut fresh =
        observe::observe_fleet(&reconciler.clients, &reconciler.config, &reconciler.owner).await?;
    fresh.prefetched = Some(observe::batch_reads(reconciler.scope(), &fresh, clusters).await?);
    Ok(fresh)
}

/// Clusters that are gone but still named by something of ours, each
/// reconciled once (their plumbing goes), with the ARN that names them.
pub(super) async fn reconcile_orphans(
    reconciler: &Reconciler,
    names: &[String],
    fleet: &Fleet,
) -> (Vec<Report>, BTreeMap<String, Option<String>>) {
    let existing: BTreeSet<&String> = names.iter().collect();
    let mut orphans: Vec<Report> = Vec::new();
    let mut orphan_arns: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (name, arn) in named_by_leftovers(reconciler, fleet) {
        if existing.contains(&name) {
            continue;
        }
        let report = reconciler
            .reconcile(
                Request::from(name.as_str())
                    .hinted_arn(arn.clone())
                    .patience(Patience::none()),
            )
            .await;
        orphan_arns.insert(name, arn);
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
                cluster: report.cluster.clone(),
                waiting_for: report.in_progress.clone(),
            });
        }
        if let Some(error) = &report.error {
            self.fail(
                &report.cluster,
                error.clone(),
                report.transient.unwrap_or(true),
            );
        }
    }
}
