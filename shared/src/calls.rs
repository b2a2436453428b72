//! Counting API calls: every attempt (retries too), by service and
//! operation, per process and per scope (a reconcile, a sweep), so that
//! each counts its own calls however many run at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

use crate::aws::{codes_of, ErrorKind};

/// Counts every attempt (so retries count too), by service and operation.
///
/// The clients' own counter counts every call of the process. A reconcile
/// or a sweep counts its own calls with a counter of its own
/// (`CallCounter::count`): each call is counted by every scope it is made
/// in, so that the reconciles of a concurrent sweep count their own calls
/// and not their neighbours', and the sweep counts them all.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    inner: Arc<Mutex<Counts>>,
}

tokio::task_local! {
    /// The counters of the scopes the running future is inside, outermost
    /// first.
    static SCOPES: Vec<CallCounter>;
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// "Service.Operation" -> attempts.
    pub calls: BTreeMap<String, u64>,
    /// Attempts answered with a throttling error.
    pub throttles: u64,
    /// Creates that found what they were making already made (by a
    /// concurrent run, or by an attempt whose answer was lost) and adopted it.
    pub lost_races: u64,
    /// Looks taken while waiting for AWS to finish something, by service
    /// (each is one of the calls above).
    pub polls: BTreeMap<String, u64>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls that change something.
    pub fn writes(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(name, _)| is_write_operation(name))
            .map(|(_, n)| n)
            .sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut calls = BTreeMap::new();
        for (name, n) in &self.calls {
            let before = earlier.calls.get(name).copied().unwrap_or(0);
            if *n > before {
                calls.insert(name.clone(), n - before);
            }
        }
        let mut polls = BTreeMap::new();
        for (service, n) in &self.polls {
            let before = earlier.polls.get(service).copied().unwrap_or(0);
            if *n > before {
                polls.insert(service.clone(), n - before);
            }
        }
        Counts {
            calls,
            throttles: self.throttles.saturating_sub(earlier.throttles),
            lost_races: self.lost_races.saturating_sub(earlier.lost_races),
            polls,
        }
    }

    pub fn total_polls(&self) -> u64 {
        self.polls.values().sum()
    }
}

/// Whether "Service.Operation" changes anything.
pub fn is_write_operation(name: &str) -> bool {
    let op = name.rsplit('.').next().unwrap_or(name);
    const READ: &[&str] = &["Describe", "List", "Get"];
    !READ.iter().any(|prefix| op.starts_with(prefix))
}

impl CallCounter {
    pub fn snapshot(&self) -> Counts {
        self.inner.lock().expect("counter lock").clone()
    }

    /// Run `work` with every call made in it (and every poll and lost
    /// race noted) counted here too, besides in the scopes around it.
    pub async fn count<F: std::future::Future>(&self, work: F) -> F::Output {
        let mut scopes = SCOPES.try_with(Vec::clone).unwrap_or_default();
        scopes.push(self.clone());
        SCOPES.scope(scopes, work).await
    }

    /// Apply `change` to this counter and to those of the scopes the
    /// running future is inside.
    fn note(&self, change: impl Fn(&mut Counts)) {
        change(&mut self.inner.lock().expect("counter lock"));
        let _ = SCOPES.try_with(|scopes| {
            for scope in scopes {
                change(&mut scope.inner.lock().expect("counter lock"));
            }
        });
    }

    /// Note a create that found its resource made already, and adopted it.
    pub fn add_lost_race(&self) {
        self.note(|c| c.lost_races += 1);
    }

    /// Note one look taken while waiting (`service`: "Route53Resolver", "EC2").
    pub fn add_poll(&self, service: &str) {
        self.note(|c| *c.polls.entry(service.to_string()).or_default() += 1);
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", meta.service(), meta.name());
            self.note(|c| *c.calls.entry(key.clone()).or_default() += 1);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttled = context
            .response()
            .map(|r| r.status().as_u16() == 429)
            .unwrap_or(false)
            || context
                .output_or_error()
                .and_then(|r| r.err())
                .map(|e| {
                    let text = format!("{e:?}");
                    codes_of(ErrorKind::Throttled).any(|c| text.contains(c))
                })
                .unwrap_or(false);
        if throttled {
            self.note(|c| c.throttles += 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_operations() {
        assert!(is_write_operation("EC2.AuthorizeSecurityGroupIngress"));
        assert!(is_write_operation("SSM.PutParameter"));
        assert!(!is_write_operation("Route53Resolver.ListResolverRules"));
        assert!(!is_write_operation("EKS.DescribeCluster"));
        assert!(!is_write_operation("SSM.GetParametersByPath"));
    }

    #[tokio::test]
    async fn a_scope_counts_what_is_noted_inside_it_and_every_scope_around_it() {
        let process = CallCounter::default();
        let (outer, first, second) = (
            CallCounter::default(),
            CallCounter::default(),
            CallCounter::default(),
        );
        outer
            .count(async {
                let a = first.count(async {
                    process.add_poll("EC2");
                    tokio::task::yield_now().await;
                    process.add_poll("EC2");
                });
                let b = second.count(async {
                    tokio::task::yield_now().await;
                    process.add_lost_race();
                });
                futures::join!(a, b);
            })
            .await;
        process.add_poll("EC2");
        assert_eq!(process.snapshot().total_polls(), 3);
        assert_eq!(outer.snapshot().total_polls(), 2);
        assert_eq!(outer.snapshot().lost_races, 1);
        assert_eq!(first.snapshot().total_polls(), 2);
        assert_eq!(first.snapshot().lost_races, 0);
        assert_eq!(second.snapshot().total_polls(), 0);
        assert_eq!(second.snapshot().lost_races, 1);
    }

    #[test]
    fn counts_since() {
        let mut a = Counts::default();
        a.calls.insert("EC2.DescribeVpcs".into(), 2);
        let mut b = a.clone();
        b.calls.insert("EC2.DescribeVpcs".into(), 5);
        b.calls.insert("SSM.PutParameter".into(), 1);
        let d = b.since(&a);
        assert_eq!(d.total(), 4);
        assert_eq!(d.writes(), 1);
    }
}
