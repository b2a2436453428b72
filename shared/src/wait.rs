//! Waiting for AWS: polling with backoff until a deadline. Route 53
//! Resolver takes minutes to make or delete an endpoint and seconds to
//! minutes for a rule or an association; what depends on them waits here,
//! and what is still in progress at the deadline is left to the next run
//! (a `converging` outcome, never an error).
//!
//! Every poll is an ordinary API call: Resolver polls go through the
//! process's Resolver rate limiter like any other request, and each is
//! counted (`Counts::polls`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use std::collections::BTreeMap;

use crate::accounts::Accounts;
use crate::apply::ApplyError;
use crate::aws::{AwsError, Clients};
use crate::model::{Account, AssociationView};
use crate::observe;
use crate::progress::Wait;

/// How long a reconcile may wait for AWS, and how often it looks.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    pub deadline: Instant,
    /// The first pause between two looks; it doubles up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

/// The first pause between two looks, by default.
pub const FIRST_POLL: Duration = Duration::from_millis(500);
/// The longest pause between two looks, by default: an endpoint takes
/// minutes, and a look a few seconds after it is ready costs little.
pub const MAX_POLL: Duration = Duration::from_secs(10);

impl Patience {
    /// Wait until `deadline`.
    pub fn until(deadline: Instant) -> Patience {
        Patience {
            deadline,
            first_poll: FIRST_POLL,
            max_poll: MAX_POLL,
        }
    }

    /// Wait up to `budget` from now.
    pub fn for_up_to(budget: Duration) -> Patience {
        Patience::until(Instant::now() + budget)
    }

    /// Look once and do not wait (`--no-wait`).
    pub fn none() -> Patience {
        Patience::until(Instant::now())
    }

    pub fn with_polls(mut self, first: Duration, max: Duration) -> Patience {
        self.first_poll = first;
        self.max_poll = max.max(first);
        self
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// One look at something being waited for.
#[derive(Debug)]
pub enum Look<T> {
    Ready(T),
    /// Not yet: what it is doing, for the report if the deadline comes.
    NotYet(String),
}

/// What came of a wait.
#[derive(Debug)]
pub enum Waited<T> {
    Ready(T),
    /// The deadline came first; what it was still doing.
    StillInProgress(String),
}

/// Look with `look` until it is ready or the deadline passes: once at
/// once, then after pauses that double from `first_poll` to `max_poll`,
/// the last one ending at the deadline.
pub async fn poll<T, F, Fut>(
    clients: &Clients,
    service: &str,
    patience: &Patience,
    mut look: F,
) -> Result<Waited<T>, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, AwsError>>,
{
    let mut pause = patience.first_poll;
    loop {
        clients.counter.add_poll(service);
        let look = match look().await {
            Ok(look) => look,
            Err(e) => match crate::policy::on_failed_look(&e, patience) {
                crate::policy::Verdict::LookAgain { .. } => {
                    Look::NotYet(format!("looking failed ({e})"))
                }
                crate::policy::Verdict::End => return Err(e),
            },
        };
        match look {
            Look::Ready(value) => return Ok(Waited::Ready(value)),
            Look::NotYet(what) => {
                let now = Instant::now();
                if now >= patience.deadline {
                    return Ok(Waited::StillInProgress(what));
                }
                tokio::time::sleep(pause.min(patience.deadline - now)).await;
                pause = (pause * 2).min(patience.max_poll);
            }
        }
    }
}

/// Wait until each of `waits` is finished (or failed, or gone: the next
/// look at the cluster reports those), each looked at in its account.
/// Returns what is still in progress at the deadline.
pub async fn settle(
    accounts: Accounts<'_>,
    waits: &[Wait],
    patience: &Patience,
) -> Result<Vec<Wait>, ApplyError> {
    let mut by_account: BTreeMap<&Account, Vec<Wait>> = BTreeMap::new();
    for wait in waits {
        by_account
            .entry(wait.account())
            .or_default()
            .push(wait.clone());
    }
    let looks = by_account.into_iter().map(|(account, waits)| async move {
        let clients = accounts.get(account).await?;
        Ok::<_, ApplyError>(
            settle_in(&clients, waits, patience)
                .await
                .map_err(|e| e.in_account(accounts.describe(account)))?,
        )
    });
    Ok(futures::future::try_join_all(looks)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// `settle` for the waits of one account.
async fn settle_in(
    clients: &Clients,
    mut pending: Vec<Wait>,
    patience: &Patience,
) -> Result<Vec<Wait>, AwsError> {
    pending.sort();
    pending.dedup();
    if pending.is_empty() {
        return Ok(pending);
    }
    let waited = poll(clients, "Route53Resolver", patience, || {
        let current = pending.clone();
        async move {
            let still = still_pending(clients, &current).await?;
            Ok(if still.is_empty() {
                Look::Ready(())
            } else {
                Look::NotYet(
                    still
                        .iter()
                        .map(Wait::describe)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
        }
    })
    .await?;
    match waited {
        Waited::Ready(()) => Ok(Vec::new()),
        Waited::StillInProgress(_) => still_pending(clients, &pending).await,
    }
}

/// Those of `waits` that AWS is still working on, with their status now.
async fn still_pending(clients: &Clients, waits: &[Wait]) -> Result<Vec<Wait>, AwsError> {
    let mut still = Vec::new();
    let mut rules: Vec<&str> = waits
        .iter()
        .filter_map(|w| match w {
            Wait::Association { rule_id, .. } | Wait::AssociationGone { rule_id, .. } => {
                Some(rule_id.as_str())
            }
            _ => None,
        })
        .collect();
    rules.sort();
    rules.dedup();
    let mut endpoint_ids: Vec<&str> = waits
        .iter()
        .filter_map(|w| match w {
            Wait::Endpoint { endpoint_id, .. } | Wait::EndpointGone { endpoint_id, .. } => {
                Some(endpoint_id.as_str())
            }
            _ => None,
        })
        .collect();
    endpoint_ids.sort();
    endpoint_ids.dedup();
    let deleted_rules = waits.iter().filter_map(|w| match w {
        Wait::RuleGone { rule_id, .. } => Some(rule_id.as_str()),
        _ => None,
    });
    let endpoint_looks = endpoints_now(clients, &endpoint_ids);
    let association_looks = futures::future::try_join_all(
        rules
            .iter()
            .map(|rule| async move { observe::associations_of_rule(clients, rule).await }),
    );
    let rule_looks = futures::future::try_join_all(deleted_rules.map(|id| async move {
        observe::rule_exists(clients, id)
            .await
            .map(|exists| (id, exists))
    }));
    let (endpoints, associations, rules_left) =
        tokio::try_join!(endpoint_looks, association_looks, rule_looks)?;
    for endpoint in endpoints.into_iter().flatten() {
        let waited_gone = waits.iter().any(
            |w| matches!(w, Wait::EndpointGone { endpoint_id, .. } if *endpoint_id == endpoint.id),
        );
        if waited_gone {
            still.push(Wait::EndpointGone {
                account: endpoint.account.clone(),
                endpoint_id: endpoint.id.clone(),
            });
        } else if endpoint.status.is_in_progress() {
            still.push(Wait::Endpoint {
                account: endpoint.account.clone(),
                endpoint_id: endpoint.id.clone(),
                direction: endpoint.direction,
                status: endpoint.status.clone(),
            });
        }
    }
    for (rule_id, exists) in rules_left {
        if exists {
            still.push(Wait::RuleGone {
                account: clients.account.clone(),
                rule_id: rule_id.to_string(),
            });
        }
    }
    let associations: Vec<_> = associations.into_iter().flatten().collect();
    still.extend(associations_pending(waits, &associations));
    Ok(still)
}

/// Those of the association waits of `waits` that `associations` (as they
/// are now) still keep waiting.
fn associations_pending(waits: &[Wait], associations: &[AssociationView]) -> Vec<Wait> {
    let mut still = Vec::new();
    for wait in waits {
        match wait {
            Wait::Association {
                rule_id, vpc_id, ..
            } => {
                let now = associations
                    .iter()
                    .find(|a| &a.rule_id == rule_id && &a.vpc_id == vpc_id);
                if let Some(a) = now.filter(|a| a.status.is_in_progress()) {
                    still.push(Wait::Association {
                        account: a.account.clone(),
                        rule_id: rule_id.clone(),
                        vpc_id: vpc_id.clone(),
                        status: a.status.clone(),
                    });
                }
            }
            Wait::AssociationGone {
                rule_id, vpc_id, ..
            } => {
                if associations
                    .iter()
                    .any(|a| &a.rule_id == rule_id && &a.vpc_id == vpc_id)
                {
                    still.push(wait.clone());
                }
            }
            Wait::Endpoint { .. } | Wait::EndpointGone { .. } | Wait::RuleGone { .. } => {}
        }
    }
    still
}

/// The endpoints of `ids` as they are now (gone ones left out). One:
/// GetResolverEndpoint. More: one ListResolverEndpoints (a page holds 100,
/// and the endpoint quota keeps a region's few) instead of one call each.
async fn endpoints_now(
    clients: &Clients,
    ids: &[&str],
) -> Result<Vec<Option<crate::model::EndpointView>>, AwsError> {
    if ids.len() < 2 {
        return futures::future::try_join_all(
            ids.iter()
                .map(|id| async move { observe::get_endpoint(clients, id).await }),
        )
        .await;
    }
    Ok(observe::list_endpoints(clients)
        .await?
        .into_iter()
        .filter(|e| ids.contains(&e.id.as_str()))
        .map(Some)
        .collect())
}
