//! The commands that reconcile: plan, apply, handle-event and sweep.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde::Serialize;

use shared::config::Mode;
use shared::handler::{handle_event, EventResult};
use shared::reconcile::Request;
use shared::wait::Patience;

use crate::*;

/// Print the plan; exit 0 when there is nothing to do, 2 when there is.
pub(crate) async fn plan(cli: &Cli, cluster: &str, account: Option<&str>) -> Result<ExitCode> {
    let (rec, settings) = reconciler_and_settings(cli, Mode::Plan).await?;
    let cluster = cluster_id(&rec, cluster, account).await?;
    let mut report = rec.reconcile(Request::new(cluster).mode(Mode::Plan)).await;
    report.settings = settings;
    emit(cli.output, &report, || print_report(&report))?;
    if let Some(error) = &report.error {
        return Err(anyhow!("{error}"));
    }
    Ok(if report.actions.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// How `apply` waits.
pub(crate) struct ApplyHow {
    /// While EKS works on the cluster.
    pub wait: bool,
    /// Not for AWS at all.
    pub no_wait: bool,
    pub timeout: u64,
    /// The first pause of `wait`, in seconds.
    pub poll: f64,
}

/// Reconcile one cluster, waiting for EKS (`wait`) and for AWS (unless
/// `no_wait`) until `timeout` seconds have passed.
pub(crate) async fn apply(
    cli: &Cli,
    cluster: &str,
    account: Option<&str>,
    how: ApplyHow,
) -> Result<ExitCode> {
    let ApplyHow {
        wait,
        no_wait,
        timeout,
        poll,
    } = how;
    let rec = reconciler(cli, Mode::Apply).await?;
    let cluster = cluster_id(&rec, cluster, account).await?;
    let tty = std::io::stderr().is_terminal();
    let show = |report: &shared::reconcile::Report, delay: Duration| {
        if tty {
            eprintln!(
                "{}: {}; checking again in {:.0} s",
                report.cluster,
                report.detail.as_deref().unwrap_or("pending"),
                delay.as_secs_f64()
            );
        }
    };
    let patience = if no_wait {
        Patience::none()
    } else {
        rec.patience_for(Duration::from_secs(timeout))
    };
    let mut request = Request::new(cluster).patience(patience);
    if wait {
        request = request
            .while_eks_works(Duration::from_secs_f64(poll.max(0.05)))
            .progress(&show);
    }
    let report = rec.reconcile(request).await;
    emit(cli.output, &report, || print_report(&report))?;
    finish(&report)
}

/// One EventBridge event, from a file or standard input, as the Lambda
/// handles it.
pub(crate) async fn handle_event_file(
    cli: &Cli,
    file: &str,
    timeout: u64,
    poll: f64,
) -> Result<ExitCode> {
    let bytes = read_input(file)?;
    let rec = reconciler(cli, Mode::Apply).await?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let result = handle_event(
        &rec,
        &bytes,
        deadline,
        Duration::from_secs_f64(poll.max(0.05)),
    )
    .await
    .map_err(|e| anyhow!("{file}: {e}"))?;
    match result {
        EventResult::Ignored { reason } => {
            #[derive(Serialize)]
            struct Ignored<'a> {
                ignored: bool,
                reason: &'a str,
            }
            emit(
                cli.output,
                &Ignored {
                    ignored: true,
                    reason: &reason,
                },
                || println!("ignored: {reason}"),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        EventResult::Reconciled { report, .. } => {
            emit(cli.output, &report, || print_report(&report))?;
            finish(&report)
        }
    }
}

/// Every cluster of the region, as the sweep Lambda does.
pub(crate) async fn sweep(cli: &Cli, timeout: u64) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Apply).await?;
    let tty = std::io::stderr().is_terminal();
    let patience = rec.patience_for(Duration::from_secs(timeout));
    let summary = shared::sweep::sweep(&rec, patience, |done, total, report| {
        if tty {
            let what = if report.is_converging() {
                format!("{} actions, converging", report.actions.len())
            } else if report.actions.is_empty() {
                "in sync".to_string()
            } else {
                format!("{} actions", report.actions.len())
            };
            eprintln!(
                "[{done}/{total}] {}: {} ({what}){}",
                report.cluster_id(),
                report.decision,
                report
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    })
    .await
    .map_err(|e| anyhow!("{e}"))?;
    emit(cli.output, &summary, || print_sweep(&summary))?;
    if summary.failed > 0 {
        return Err(anyhow!(
            "{} of {} clusters failed: {}",
            summary.failed,
            summary.clusters_seen,
            summary
                .failures
                .iter()
                .map(|f| match &f.account {
                    Some(account) => format!("{account}:{} ({})", f.cluster, f.error),
                    None => format!("{} ({})", f.cluster, f.error),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything of this owner, taken down (or, without `apply`, planned).
pub(crate) async fn teardown(cli: &Cli, apply: bool, timeout: u64) -> Result<ExitCode> {
    let mode = if apply { Mode::Apply } else { Mode::Plan };
    let mut rec = reconciler(cli, mode).await?;
    rec.config.take_down = true;
    // Asked for by name: what the deployment's settings say does not hold
    // it back. Only what carries this owner is touched, as always.
    rec.role = shared::reconcile::Role::Operator { force: true };
    let patience = rec.patience_for(Duration::from_secs(timeout));
    let report = shared::sweep::teardown(&rec, patience, |_, _, _| {})
        .await
        .map_err(|e| anyhow!("{e}"))?;
    emit(cli.output, &report, || print_teardown(&report, apply))?;
    let owner = &rec.config.owner;
    match (apply, report.left.is_empty()) {
        (_, true) => Ok(ExitCode::SUCCESS),
        (false, false) => Ok(ExitCode::from(2)),
        (true, false) => Err(anyhow!(
            "{} resources of owner {owner} are left (AWS may still be deleting some: run \
             teardown --apply again): {}",
            report.left.len(),
            report.left.join("; ")
        )),
    }
}
