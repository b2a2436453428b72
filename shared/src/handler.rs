//! Event handling shared by the cluster-event Lambda and `eks-private-dns
//! handle-event`: the same code path, so that an event file replayed on the
//! CLI does exactly what the Lambda did.

use std::time::{Duration, Instant};

use crate::event::{self, EventError, EventOutcome};
use crate::reconcile::{Reconciler, Report};

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
/// reconcile waits, polling from `first_poll`, while EKS is still working
/// on the cluster, but never past `deadline`; whatever is still pending then
/// is finished by the next sweep.
pub async fn handle_event(
    reconciler: &Reconciler,
    bytes: &[u8],
    deadline: Instant,
    first_poll: Duration,
) -> Result<EventResult, EventError> {
    match event::interpret_bytes(bytes)? {
        EventOutcome::Ignore { reason } => Ok(EventResult::Ignored { reason }),
        EventOutcome::Reconcile(target) => {
            if let (Some(theirs), Some(ours)) = (&target.account, reconciler.account.get()) {
                if theirs != ours {
                    return Ok(EventResult::Ignored {
                        reason: format!(
                            "the event is for account {theirs}, and this runs in {ours}"
                        ),
                    });
                }
            }
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
            let report = if target.starts_long_change {
                reconciler
                    .reconcile_waiting(
                        &target.cluster_name,
                        target.cluster_arn.clone(),
                        deadline,
                        first_poll,
                        |report, delay| {
                            tracing::info!(
                                cluster = %report.cluster,
                                detail = report.detail.as_deref().unwrap_or(""),
                                retry_in_s = delay.as_secs_f64(),
                                "cluster still in progress; waiting"
                            );
                        },
                    )
                    .await
            } else {
                reconciler
                    .reconcile(&target.cluster_name, target.cluster_arn.clone())
                    .await
            };
            Ok(EventResult::Reconciled {
                event_name: target.event_name,
                report: Box::new(report),
            })
        }
    }
}
