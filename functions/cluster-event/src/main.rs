#![recursion_limit = "256"]
//! cluster-event Lambda: an EventBridge "AWS API Call via CloudTrail" event
//! from EKS -> reconcile the cluster it names. A thin shell over the core.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

use shared::handler::{handle_event, EventResult};
use shared::Reconciler;

/// A failure Lambda should retry (throttling, a service hiccup); the
/// on-failure destination keeps the event once retries run out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transient(String);

impl From<Transient> for Diagnostic {
    fn from(e: Transient) -> Diagnostic {
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
    let reconciler = Reconciler::from_env(None).await?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %reconciler.config,
        "cluster-event ready"
    );
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler(reconciler, event).await
    }))
    .await
}

async fn handler(reconciler: &Reconciler, event: LambdaEvent<Value>) -> Result<Value, Transient> {
    shared::handler::learn_account(reconciler, &event.context.invoked_function_arn);
    let deadline = shared::handler::lambda_deadline(event.context.deadline);
    let bytes = serde_json::to_vec(&event.payload).unwrap_or_default();
    match handle_event(
        reconciler,
        &bytes,
        deadline,
        shared::reconcile::EKS_FIRST_POLL,
    )
    .await
    {
        // Permanent bad input: log it and succeed, so it is not retried.
        Err(e) => {
            tracing::error!(error = %e, "event rejected");
            Ok(json!({"rejected": true, "reason": e.to_string()}))
        }
        Ok(EventResult::Ignored { reason }) => {
            tracing::info!(reason = %reason, "event ignored");
            Ok(json!({"ignored": true, "reason": reason}))
        }
        Ok(EventResult::Reconciled { event_name, report }) => {
            tracing::info!(
                event = %event_name,
                cluster = %report.cluster_id(),
                decision = %report.decision,
                outcome = report.outcome.as_str(),
                detail = report.detail.as_deref().unwrap_or(""),
                actions = ?report.actions,
                applied = report.applied,
                in_progress = ?report.in_progress,
                repaired = ?report.repaired,
                api_calls = report.api_calls,
                write_calls = report.write_calls,
                throttles = report.throttles,
                lost_races = report.lost_races,
                poll_calls = report.poll_calls,
                duration_ms = report.duration_ms,
                error = report.error.as_deref().unwrap_or(""),
                failed = report.failed(),
                "reconcile"
            );
            // Counted whether or not the invocation fails: a permanent
            // failure (a permission, a quota, invalid settings or tags)
            // succeeds, as a retry would not fix it, and the alarm on this
            // metric is what tells a person.
            let metrics = shared::metrics::emit(
                &shared::handler::metric_dimensions(reconciler, "cluster-event"),
                &shared::metrics::Counts::of_report(&report),
                json!({"cluster": report.cluster, "cluster_account": report.account,
                       "outcome": report.outcome.as_str(),
                       "error": report.error, "transient": report.transient}),
            );
            if let Some(error) = &report.error {
                tracing::error!(cluster = %report.cluster, transient = report.transient == Some(true),
                    error = %error, "reconcile failed");
            }
            if report.error.is_some() && report.transient == Some(true) {
                return Err(Transient(format!(
                    "cluster {}: {}",
                    report.cluster,
                    report.error.clone().unwrap_or_default()
                )));
            }
            let mut out = serde_json::to_value(&report).unwrap_or(Value::Null);
            if let Some(out) = out.as_object_mut() {
                out.insert("metrics".into(), metrics);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod handler_tests {
    use super::*;
    use eks_private_dns_tests::*;
    use lambda_runtime::Context;

    fn event(name: &str) -> LambdaEvent<Value> {
        LambdaEvent::new(fixture(name).unwrap(), Context::default())
    }

    #[tokio::test]
    async fn reconciles_ignores_and_rejects() {
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

        let out = handler(&rec, event("update-cluster-config-private.json"))
            .await
            .unwrap();
        assert_eq!(out["decision"], "managed");
        assert_eq!(aws.snapshot().await.unwrap().inbound_endpoints().len(), 1);

        assert_eq!(out["metrics"]["ReconcileFailures"], 0);
        assert_eq!(out["metrics"]["Reconciles"], 1);

        // A permanent failure (here a tag CIDR outside the envelope) is not
        // retried, and is counted for the alarm.
        aws.cluster(
            "bad",
            &vpc,
            Access::Private,
            &[("eks-private-dns/onprem-cidrs", "198.51.100.0/24")],
        )
        .await
        .unwrap();
        let mut bad = fixture("update-cluster-config-private.json").unwrap();
        bad["detail"]["requestParameters"]["name"] = "bad".into();
        let out = handler(&rec, LambdaEvent::new(bad, Context::default()))
            .await
            .expect("a permanent failure is not retried");
        assert_eq!(out["cluster"], "bad");
        assert_eq!(out["outcome"], "error");
        assert_eq!(out["metrics"]["ReconcileFailures"], 1, "{out}");
        assert_eq!(out["metrics"]["Function"], "cluster-event");

        let out = handler(&rec, event("create-nodegroup.json")).await.unwrap();
        assert_eq!(out["ignored"], true);
        assert!(out["reason"].is_string());

        let bad = LambdaEvent::new(serde_json::json!({"source": 1}), Context::default());
        let out = handler(&rec, bad).await.unwrap();
        assert_eq!(out["rejected"], true, "bad input is not retried");
        assert!(out["reason"].is_string());
    }

    #[tokio::test]
    async fn transient_failures_are_errors_so_lambda_retries() {
        let emulator = Emulator::start().unwrap();
        let rec = emulator.reconciler(config(&[]));
        drop(emulator); // AWS unreachable: a transient failure.
        let err = handler(&rec, event("delete-cluster.json"))
            .await
            .unwrap_err();
        assert!(err.0.contains("demo"), "{err}");
    }
}
