//! Event handling shared by the cluster-event Lambda and `eks-private-dns
//! handle-event`: the same code path, so that an event file replayed on the
//! CLI does exactly what the Lambda did.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::event::{self, EventError, EventOutcome};
use crate::model::{Account, ClusterId};
use crate::reconcile::{Reconciler, Report, Request};

/// What became of one event.
#[derive(Debug)]
pub enum EventResult {
    /// Not for us: logged and acknowledged.
    Ignored { reason: String },
    /// The named cluster was reconciled.
    Reconciled {
        event_name: String,
        report: Box<Report>,
    },
}

/// Handle one raw event. For CreateCluster and UpdateClusterConfig the
/// reconcile waits, looking again after `first_poll` (the Lambda's is
/// `reconcile::EKS_FIRST_POLL`), while EKS is still working on the
/// cluster; every reconcile waits for AWS to finish the plumbing. No
/// wait goes past `deadline`: whatever is still pending then is finished by
/// the next sweep.
pub async fn handle_event(
    reconciler: &Reconciler,
    bytes: &[u8],
    deadline: Instant,
    first_poll: Duration,
) -> Result<EventResult, EventError> {
    match event::interpret_bytes(bytes)? {
        EventOutcome::Ignore { reason } => Ok(EventResult::Ignored { reason }),
        EventOutcome::Reconcile(target) => {
            let account = match event_account(reconciler, target.account.as_deref()).await {
                Ok(Ok(account)) => account,
                Ok(Err(reason)) => return Ok(EventResult::Ignored { reason }),
                // The accounts served could not be learnt: a failure of
                // this event's reconcile, transient as AWS says.
                Err(e) => {
                    let cluster = ClusterId::home(&target.cluster_name);
                    let mut report = Report::new(&cluster, reconciler.config.mode);
                    report.outcome = crate::reconcile::Outcome::Error;
                    report.transient = Some(e.is_transient());
                    report.error = Some(e.to_string());
                    return Ok(EventResult::Reconciled {
                        event_name: target.event_name,
                        report: Box::new(report),
                    });
                }
            };
            if let Some(region) = &target.region {
                if region != &reconciler.clients.region {
                    return Ok(EventResult::Ignored {
                        reason: format!(
                            "the event is for region {region}, and this runs in {}",
                            reconciler.clients.region
                        ),
                    });
                }
            }
            let log = |report: &Report, delay: Duration| {
                tracing::info!(
                    cluster = %report.cluster,
                    detail = report.detail.as_deref().unwrap_or(""),
                    retry_in_s = delay.as_secs_f64(),
                    "cluster still in progress; waiting"
                );
            };
            let cluster = ClusterId {
                account,
                name: target.cluster_name.clone(),
            };
            let mut request = Request::new(cluster)
                .hinted_arn(target.cluster_arn.clone())
                .patience(reconciler.patience_until(tokio::time::Instant::from_std(deadline)));
            if target.starts_long_change {
                request = request.while_eks_works(first_poll).progress(&log);
            }
            let report = reconciler.reconcile(request).await;
            Ok(EventResult::Reconciled {
                event_name: target.event_name,
                report: Box::new(report),
            })
        }
    }
}

/// The account an event's cluster runs in, as this deployment names it:
/// its own, or a spoke it serves; any other account's event is ignored
/// (the reason says which). An event that names no account is the
/// deployment's own (a file replayed on the CLI).
async fn event_account(
    reconciler: &Reconciler,
    theirs: Option<&str>,
) -> Result<Result<Account, String>, crate::aws::AwsError> {
    let Some(theirs) = theirs else {
        return Ok(Ok(Account::Home));
    };
    let home = reconciler.learn_home_id().await?;
    if home == Some(theirs) || (home.is_none() && !reconciler.config.is_hub()) {
        return Ok(Ok(Account::Home));
    }
    let served = reconciler.served(crate::accounts::SERVED_TTL).await?;
    if served.contains(theirs) {
        return Ok(Ok(Account::Id(theirs.to_string())));
    }
    let ours = home.unwrap_or("an account it does not know");
    Ok(Err(if reconciler.config.is_hub() {
        format!(
            "the event is for account {theirs}, which this deployment (in {ours}) does not serve"
        )
    } else {
        format!("the event is for account {theirs}, and this runs in {ours}")
    }))
}

/// The most a Lambda invocation keeps back from its deadline for its last
/// calls and its summary.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(60);

/// A Lambda invocation's deadline (milliseconds since the epoch, from the
/// runtime API) as the Instant until which it may wait for AWS: a tenth of
/// the time left is kept back, at most LAMBDA_MARGIN (a minute of the
/// 15-minute functions; a second of a 10-second local test).
pub fn lambda_deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + remaining.saturating_sub((remaining / 10).min(LAMBDA_MARGIN))
}

/// Learn this function's account from its own ARN (the invocation's
/// context carries it; no call is made), once.
pub fn learn_account(reconciler: &Reconciler, invoked_function_arn: &str) {
    let (_, account) = crate::event::arn_region_and_account(invoked_function_arn);
    if let Some(account) = account {
        let _ = reconciler.account.set(account.to_string());
    }
}

/// The dimensions of `function`'s metrics: the deployment's owner, and the
/// account and region its clusters are in ("unknown" before the account is
/// learnt).
pub fn metric_dimensions<'a>(
    reconciler: &'a Reconciler,
    function: &'a str,
) -> crate::metrics::Dimensions<'a> {
    crate::metrics::Dimensions {
        function,
        owner: &reconciler.owner.id,
        account: reconciler
            .account
            .get()
            .map(String::as_str)
            .unwrap_or("unknown"),
        region: &reconciler.clients.region,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn a_lambda_keeps_a_margin_of_a_tenth_up_to_a_minute() {
        let left =
            |ms: u64| lambda_deadline(now_ms() + ms).saturating_duration_since(Instant::now());
        let long = left(900_000);
        assert!(
            long <= Duration::from_secs(840) && long > Duration::from_secs(835),
            "{long:?}"
        );
        let short = left(10_000);
        assert!(
            short <= Duration::from_secs(9) && short > Duration::from_millis(8_500),
            "{short:?}"
        );
        // Past deadlines do not underflow.
        assert!(lambda_deadline(0) <= Instant::now() + Duration::from_millis(10));
    }
}
