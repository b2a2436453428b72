//! One reconcile of one cluster: observe -> plan -> apply, and the summary
//! that the Lambdas log and the CLI prints.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::apply::{Applier, ApplyError};
use crate::aws::{AwsError, Clients, Counts};
use crate::config::{Config, Mode};
use crate::observe::{self, Detail, Fleet};
use crate::owner::Owner;
use crate::plan::{self, Decision, Observation, Plan};

/// Everything a reconcile needs, built once per process (cold start).
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub clients: Clients,
    pub config: Config,
    pub owner: Owner,
    /// The account this runs in, when known (the Lambda learns it from its
    /// own ARN): events from any other account are ignored.
    pub account: std::sync::OnceLock<String>,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl ReconcileError {
    /// Whether the same reconcile may succeed later (throttling, a service
    /// hiccup, a resource still settling). Bad input and foreign resources
    /// are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Aws(e) => e.transient,
            ReconcileError::Apply(e) => e.is_transient(),
        }
    }
}

/// The outcome of one reconcile, as logged (one JSON line) and printed.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub decision: String,
    /// The cluster VPC, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Why not managed, what is pending, or what is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub mode: String,
    /// The planned actions, in apply order.
    pub actions: Vec<String>,
    /// Whether the actions were carried out (apply mode, no error).
    pub applied: bool,
    pub api_calls: u64,
    pub write_calls: u64,
    pub throttles: u64,
    pub calls_by_operation: std::collections::BTreeMap<String, u64>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With an error: whether retrying later can help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient: Option<bool>,
}

impl Report {
    pub fn is_pending(&self) -> bool {
        self.decision == "pending"
    }

    pub fn is_invalid(&self) -> bool {
        self.decision == "invalid"
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

fn detail_of(decision: &Decision) -> Option<String> {
    match decision {
        Decision::Managed | Decision::Gone => None,
        Decision::Pending { status } => Some(format!("the cluster is {status}")),
        Decision::NotManaged { reason } => Some(reason.clone()),
        Decision::Invalid { problem } => Some(problem.clone()),
    }
}

impl Reconciler {
    pub fn new(clients: Clients, config: Config) -> Reconciler {
        let owner = Owner::new(&config.owner);
        Reconciler {
            clients,
            config,
            owner,
            account: std::sync::OnceLock::new(),
        }
    }

    /// The configuration from the environment and clients from the standard
    /// AWS configuration chain (`region` overrides AWS_REGION): what the
    /// Lambdas build once per cold start.
    pub async fn from_env(region: Option<String>) -> Result<Reconciler, String> {
        let config = Config::from_env().map_err(|e| format!("invalid configuration: {e}"))?;
        let clients = Clients::from_env(region, config.resolver_rate)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Reconciler::new(clients, config))
    }

    /// Observe and plan, changing nothing.
    pub async fn plan(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
    ) -> Result<(Plan, Observation), AwsError> {
        self.observe_and_plan(cluster, hinted_arn, None).await
    }

    /// Observe (lean when the plumbing exists) and plan; observe in full
    /// and plan again when the plan builds or resizes an endpoint.
    async fn observe_and_plan(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        fleet: Option<&Fleet>,
    ) -> Result<(Plan, Observation), AwsError> {
        let observe = |detail| {
            observe::observe_cluster(
                &self.clients,
                &self.config,
                &self.owner,
                cluster,
                hinted_arn.clone(),
                fleet,
                detail,
            )
        };
        let obs = observe(Detail::Auto).await?;
        let plan = plan::plan(&self.config, &self.owner, &obs);
        if obs.lean && plan.needs_details() {
            let obs = observe(Detail::Full).await?;
            let plan = plan::plan(&self.config, &self.owner, &obs);
            return Ok((plan, obs));
        }
        Ok((plan, obs))
    }

    /// Reconcile one cluster in the configured mode. An AWS failure is in
    /// the report (`error`, `transient`), never a panic or a lost summary.
    pub async fn reconcile(&self, cluster: &str, hinted_arn: Option<String>) -> Report {
        self.reconcile_in(cluster, hinted_arn, self.config.mode)
            .await
    }

    pub async fn reconcile_in(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        mode: Mode,
    ) -> Report {
        self.reconcile_with(cluster, hinted_arn, mode, None).await
    }

    /// Reconcile with the region-wide state a sweep read once (`fleet`).
    /// A plan that would delete a shared resource is made again from a
    /// fresh observation first, since the fleet may be out of date.
    pub async fn reconcile_with(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        mode: Mode,
        fleet: Option<&Fleet>,
    ) -> Report {
        let started = Instant::now();
        let before = self.clients.counter.snapshot();
        let mut report = Report {
            cluster: cluster.to_string(),
            decision: "unknown".into(),
            vpc_id: None,
            detail: None,
            mode: mode.as_str().into(),
            actions: Vec::new(),
            applied: false,
            api_calls: 0,
            write_calls: 0,
            throttles: 0,
            calls_by_operation: Default::default(),
            duration_ms: 0,
            error: None,
            transient: None,
        };
        let result = self
            .run(cluster, hinted_arn, mode, fleet, &mut report)
            .await;
        if let Err(e) = result {
            report.transient = Some(e.is_transient());
            report.error = Some(e.to_string());
        } else if report.is_invalid() {
            report.transient = Some(false);
            report.error = report.detail.clone();
        }
        let counts: Counts = self.clients.counter.snapshot().since(&before);
        report.api_calls = counts.total();
        report.write_calls = counts.writes();
        report.throttles = counts.throttles;
        report.calls_by_operation = counts.calls;
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    async fn run(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        mode: Mode,
        fleet: Option<&Fleet>,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        let (mut plan, mut obs) = self
            .observe_and_plan(cluster, hinted_arn.clone(), fleet)
            .await?;
        if fleet.is_some() && plan.deletes_shared() {
            (plan, obs) = self.observe_and_plan(cluster, hinted_arn, None).await?;
        }
        report.vpc_id = obs
            .cluster
            .as_ref()
            .and_then(|c| c.vpc_id.clone())
            .or_else(|| plan::previous_state(&self.config, &obs).map(|s| s.vpc_id));
        report.decision = plan.decision.label().into();
        report.detail = detail_of(&plan.decision);
        report.actions = plan.actions.iter().map(|a| a.describe()).collect();
        if mode == Mode::Plan || plan.is_empty() {
            return Ok(());
        }
        let applier = Applier {
            clients: &self.clients,
            owner: &self.owner,
        };
        applier.apply(&plan).await?;
        report.applied = true;
        Ok(())
    }

    /// Reconcile, and while EKS is still creating or updating the cluster,
    /// poll again with backoff until `deadline`. Whatever is still pending
    /// then is left to the next run (the scheduled sweep).
    pub async fn reconcile_waiting(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        deadline: Instant,
        first_delay: Duration,
        mut progress: impl FnMut(&Report, Duration),
    ) -> Report {
        let mut delay = first_delay;
        loop {
            let report = self.reconcile(cluster, hinted_arn.clone()).await;
            if !report.is_pending() {
                return report;
            }
            let now = Instant::now();
            if now + delay >= deadline {
                return report;
            }
            progress(&report, delay);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}
