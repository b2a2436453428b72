//! sweep Lambda: on a schedule, reconcile every cluster in the region and
//! remove what we own for clusters that are gone. A thin shell over the core.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use shared::sweep::sweep;
use shared::Reconciler;

/// The sweep failed in a way that a later run may not: some cluster failed
/// for a transient reason (throttling, a service hiccup), or the region
/// could not be listed. The invocation fails, so it is retried and alarmed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SweepFailed(String);

impl From<SweepFailed> for Diagnostic {
    fn from(e: SweepFailed) -> Diagnostic {
        Diagnostic {
            error_type: "TransientAwsError".into(),
            error_message: e.0,
        }
    }
}

// One thread: a Lambda function has one vCPU or less up to 1,769 MB (ours
// runs with 128 MB, a fraction of one), and its work is waiting on AWS.
// Worker threads would only add their start-up to every cold start
// (README, Performance) and their stacks to memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut reconciler = Reconciler::from_env(None).await?;
    // The deployment: it publishes its settings for the CLI.
    reconciler.publishes_settings = true;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %reconciler.config,
        "sweep ready"
    );
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler(reconciler, event).await
    }))
    .await
}

async fn handler(reconciler: &Reconciler, event: LambdaEvent<Value>) -> Result<Value, SweepFailed> {
    shared::handler::learn_account(reconciler, &event.context.invoked_function_arn);
    let deadline = shared::handler::lambda_deadline(event.context.deadline);
    let patience = reconciler.patience_until(tokio::time::Instant::from_std(deadline));
    let summary = sweep(reconciler, patience, |_, _, report| {
        if report.applied || report.error.is_some() || report.is_converging() {
            tracing::info!(
                cluster = %report.cluster,
                decision = %report.decision,
                outcome = report.outcome.as_str(),
                actions = ?report.actions,
                in_progress = ?report.in_progress,
                error = report.error.as_deref().unwrap_or(""),
                "reconcile"
            );
        }
    })
    .await
    .map_err(|e| {
        // The sweep as a whole failed: counted as one failure.
        let counts = shared::metrics::Counts::failed();
        let _ = shared::metrics::emit(
            &shared::handler::metric_dimensions(reconciler, "sweep"),
            &counts,
            serde_json::json!({"error": e.to_string()}),
        );
        SweepFailed(format!("sweep could not observe the region: {e}"))
    })?;
    let dimensions = shared::handler::metric_dimensions(reconciler, "sweep");
    let _ = shared::metrics::emit(
        &dimensions,
        &shared::metrics::Counts::of_sweep(&summary),
        serde_json::json!({"failed": summary.failures.iter().map(|f| &f.cluster).collect::<Vec<_>>()}),
    );
    // A hub's: each spoke account's part too, by its Account.
    for account in summary.swept_accounts() {
        let _ = shared::metrics::emit(
            &shared::metrics::Dimensions {
                account: &account,
                ..dimensions
            },
            &shared::metrics::Counts::of_account(&summary, &account),
            serde_json::json!({"failed": summary
                .failures
                .iter()
                .filter(|f| f.account.as_deref() == Some(account.as_str()))
                .map(|f| &f.cluster)
                .collect::<Vec<_>>()}),
        );
    }
    for line in &summary.left_behind {
        tracing::error!(left = %line, "left behind in an account no longer reachable");
    }
    for failure in &summary.failures {
        tracing::error!(cluster = %failure.cluster,
            account = failure.account.as_deref().unwrap_or(""), error = %failure.error,
            transient = failure.transient, "cluster failed");
    }
    tracing::info!(
        clusters_seen = summary.clusters_seen,
        managed = summary.managed,
        pending = summary.pending,
        not_managed = summary.not_managed,
        invalid = summary.invalid,
        changed = summary.changed,
        converging = summary.converging,
        failed = summary.failed,
        orphans_removed = summary.orphans_removed,
        api_calls = summary.api_calls,
        write_calls = summary.write_calls,
        api_calls_by_service = ?summary.api_calls_by_service,
        throttles = summary.throttles,
        lost_races = summary.lost_races,
        poll_calls = summary.poll_calls,
        duration_ms = summary.duration_ms,
        "sweep"
    );
    if summary.has_transient_failure() {
        let clusters: Vec<&str> = summary
            .failures
            .iter()
            .filter(|f| f.transient)
            .map(|f| f.cluster.as_str())
            .collect();
        return Err(SweepFailed(format!(
            "{} cluster(s) failed for a transient reason: {}",
            clusters.len(),
            clusters.join(", ")
        )));
    }
    Ok(serde_json::to_value(&summary).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use eks_private_dns_tests::*;
    use lambda_runtime::Context;

    #[tokio::test]
    async fn a_scheduled_event_sweeps_the_region() {
        let emulator = Emulator::start().unwrap();
        let aws = emulator.aws();
        let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
        aws.cluster("demo", &vpc, Access::Private, &[])
            .await
            .unwrap();
        let rec = emulator.reconciler(config(&[(
            "EKS_PRIVATE_DNS_ONPREM_CIDRS",
            "192.168.0.0/16",
        )]));
        let event = LambdaEvent::new(fixture("scheduled-sweep.json").unwrap(), Context::default());
        let out = handler(&rec, event).await.unwrap();
        assert_eq!(out["clusters_seen"], 1);
        assert_eq!(out["managed"], 1);
        assert_eq!(out["changed"], 1);
        assert_eq!(aws.snapshot().await.unwrap().inbound_endpoints().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_region_fails_the_invocation() {
        let emulator = Emulator::start().unwrap();
        let rec = emulator.reconciler(config(&[]));
        drop(emulator);
        let event = LambdaEvent::new(fixture("scheduled-sweep.json").unwrap(), Context::default());
        assert!(handler(&rec, event).await.is_err());
    }
}
