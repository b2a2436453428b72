//! One reconcile of one cluster: observe -> plan -> apply, again until a
//! look finds nothing to do and nothing in progress (or the deadline
//! comes), and the summary that the Lambdas log and the CLI prints.
//!
//! | round | what it does                                                      |
//! |-------|-------------------------------------------------------------------|
//! | look  | observe and plan                                                  |
//! | act   | apply the plan; an action waits for what it depends on            |
//! | wait  | for what AWS is still doing (endpoints OPERATIONAL, associations  |
//! |       | COMPLETE), then look again: what AWS finished may call for more   |
//!
//! A look with nothing to do and nothing in progress ends it: `applied` or
//! `nothing to do`. The deadline ends it `converging`, naming what is still
//! in progress: AWS being slow is never an error, and the next run (the
//! sweep) finishes it. A failure that AWS reports (ACTION_NEEDED, a failed
//! IP or association) is repaired where the plan can; one still there at
//! the last look is an error that names it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::accounts::{Accounts, Spokes};
use crate::apply::{Applier, ApplyError};

use crate::aws::{AwsError, CallCounter, Clients};
use crate::config::{Config, Mode};
use crate::model::ClusterId;
use crate::observe::{self, Detail, Fleet};
use crate::owner::Owner;
use crate::plan::{self, Invalid, Observation, Plan};
use crate::policy::{self, Verdict};
use crate::wait::{self, Patience};

mod accounts;
mod report;
mod request;

pub use report::*;
pub use request::*;

/// How long a reconcile waits for AWS by default: the Lambda's 15 minutes,
/// less the margin it keeps (`handler::LAMBDA_MARGIN`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(840);

/// While EKS is creating or updating a cluster (minutes), the first pause
/// before looking at it again, by default; the pauses double up to
/// `EKS_MAX_POLL`.
pub const EKS_FIRST_POLL: Duration = Duration::from_secs(10);
pub const EKS_MAX_POLL: Duration = Duration::from_secs(30);

/// Everything a reconcile needs, built once per process (cold start).
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub clients: Clients,
    pub config: Config,
    pub owner: Owner,
    /// Who runs: the deployment, or an operator whose settings may differ.
    pub role: Role,
    /// Whether a sweep publishes the settings (the sweep Lambda does).
    pub publishes_settings: bool,
    /// The digest of the deployment's published settings, when the CLI
    /// found them: a run with exactly those acts as the deployment would,
    /// whatever a state recorded.
    pub deployment_digest: Option<String>,
    /// The account this runs in, when known (the Lambda learns it from its
    /// own ARN; the CLI asks STS when it needs it): events from any account
    /// but this one and the spokes it serves are ignored.
    pub account: std::sync::OnceLock<String>,
    /// The spoke accounts it serves besides its own, and their clients.
    pub spokes: std::sync::Arc<Spokes>,
    /// How long a reconcile waits for AWS when its request sets no
    /// deadline, and how often it looks (`wait::Patience`).
    pub wait_budget: Duration,
    pub first_poll: Duration,
    pub max_poll: Duration,
}

/// Who runs a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The Lambdas: the deployment acts on its own settings, and records
    /// their digest.
    Deployment,
    /// The CLI: where its settings differ from those recorded for a
    /// cluster (or, in a sweep, from the deployment's published ones), it
    /// takes nothing away unless `force`.
    Operator { force: bool },
}

impl Role {
    /// Whether a run with settings of digest `ours` must hold back what
    /// takes plumbing made with `recorded` away.
    pub fn holds_back(self, ours: &str, recorded: Option<&str>) -> bool {
        matches!(self, Role::Operator { force: false }) && recorded != Some(ours)
    }
}

/// Why a run held back: the sentence the report gives.
pub fn held_back_reason(ours: &str, recorded: Option<&str>, whose: &str) -> String {
    match recorded {
        Some(theirs) => format!(
            "this run's settings (digest {ours}) differ from those {whose} ({theirs}); \
             --force applies it"
        ),
        None => format!("no settings are recorded for {whose}; --force applies it"),
    }
}

/// Why a reconciler cannot be made (at a cold start, or a CLI run).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid configuration: {0}")]
    Configuration(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Region(#[from] crate::aws::NoRegion),
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The cluster wants plumbing that cannot be made as things are (its
    /// tags, the settings, the prerequisites): nothing was made.
    #[error("{0}")]
    Invalid(Invalid),
    /// AWS reports resources failed that the run could not repair.
    #[error("AWS reports {}", problems.join("; "))]
    Failed { problems: Vec<String> },
}

impl ReconcileError {
    /// Whether the same reconcile may succeed later (throttling, a service
    /// hiccup, a resource still settling). Bad input, foreign resources and
    /// failures that AWS reports are not. Exhaustive: a new variant must say.
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Aws(e) => e.is_transient(),
            ReconcileError::Apply(e) => e.is_transient(),
            ReconcileError::Invalid(_) | ReconcileError::Failed { .. } => false,
        }
    }
}

impl Reconciler {
    pub fn new(clients: Clients, config: Config) -> Reconciler {
        let owner = Owner::new(&config.owner);
        let spokes = std::sync::Arc::new(Spokes::new(
            &config.spoke_role_name,
            config.spoke_accounts.clone(),
        ));
        Reconciler {
            clients,
            config,
            owner,
            role: Role::Deployment,
            publishes_settings: false,
            deployment_digest: None,
            account: std::sync::OnceLock::new(),
            spokes,
            wait_budget: DEFAULT_WAIT,
            first_poll: wait::FIRST_POLL,
            max_poll: wait::MAX_POLL,
        }
    }

    /// Waiting until `deadline`, looking as this reconciler does.
    pub fn patience_until(&self, deadline: tokio::time::Instant) -> Patience {
        Patience::until(deadline).with_polls(self.first_poll, self.max_poll)
    }

    /// Waiting up to `budget` from now, looking as this reconciler does.
    pub fn patience_for(&self, budget: Duration) -> Patience {
        self.patience_until(tokio::time::Instant::now() + budget)
    }

    /// Waiting up to the default budget from now.
    pub fn patience(&self) -> Patience {
        self.patience_for(self.wait_budget)
    }

    /// The configuration from the environment and clients from the standard
    /// AWS configuration chain (`region` overrides AWS_REGION): what the
    /// Lambdas build once per cold start.
    pub async fn from_env(region: Option<String>) -> Result<Reconciler, SetupError> {
        let config = Config::from_env()?;
        let clients = Clients::from_env(region, config.resolver_rate, config.tls_roots).await?;
        Ok(Reconciler::new(clients, config))
    }

    /// Observe and plan, changing nothing.
    pub async fn plan(
        &self,
        cluster: &ClusterId,
        hinted_arn: Option<String>,
    ) -> Result<(Plan, Observation), AwsError> {
        let served = self.served(crate::accounts::SERVED_TTL).await?;
        self.observe_and_plan(&served, cluster, hinted_arn, None)
            .await
    }

    /// The clients of each account this reconciler acts in, found by
    /// account: its own, and the spokes it serves.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(&self.clients, &self.spokes)
    }

    /// An applier of this reconciler's, waiting as `patience` allows.
    pub fn applier(&self, patience: Patience) -> Applier<'_> {
        Applier::new(self.accounts(), &self.owner, patience)
    }

    /// Where and as whom this reconciler reads, serving `served`.
    pub fn scope<'a>(&'a self, served: &'a BTreeSet<String>) -> observe::Scope<'a> {
        observe::Scope {
            accounts: self.accounts(),
            config: &self.config,
            owner: &self.owner,
            home_id: self.home_id(),
            served,
        }
    }

    /// Observe everything, the prerequisites included (what `verify --path`
    /// walks).
    pub async fn observe_full(&self, cluster: &ClusterId) -> Result<Observation, AwsError> {
        let served = self.served(crate::accounts::SERVED_TTL).await?;
        let live = observe::Live {
            scope: self.scope(&served),
        };
        observe::observe_cluster(&live, cluster, None, Detail::Full).await
    }

    /// Every DNS path of the cluster, hop by hop (`path::check`).
    pub async fn paths(&self, cluster: &ClusterId) -> Result<crate::path::Paths, String> {
        let obs = self
            .observe_full(cluster)
            .await
            .map_err(|e| e.to_string())?;
        crate::path::check(&self.config, &self.owner, &obs)
    }

    /// Observe (lean when the plumbing exists) and plan; observe in full
    /// and plan again when the plan builds or resizes an endpoint.
    async fn observe_and_plan(
        &self,
        served: &BTreeSet<String>,
        cluster: &ClusterId,
        hinted_arn: Option<String>,
        fleet: Option<&Fleet>,
    ) -> Result<(Plan, Observation), AwsError> {
        let live = observe::Live {
            scope: self.scope(served),
        };
        match fleet {
            Some(fleet) => {
                let reader = observe::FromFleet { live, fleet };
                self.look_through(&reader, cluster, hinted_arn).await
            }
            None => self.look_through(&live, cluster, hinted_arn).await,
        }
    }

    /// `observe_and_plan` through `reader`.
    async fn look_through(
        &self,
        reader: &impl observe::Reader,
        cluster: &ClusterId,
        hinted_arn: Option<String>,
    ) -> Result<(Plan, Observation), AwsError> {
        let observe = |detail| {
            Box::pin(observe::observe_cluster(
                reader,
                cluster,
                hinted_arn.clone(),
                detail,
            ))
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

    /// Reconcile one cluster: observe, plan and apply, again until a look
    /// finds nothing to do and nothing in progress, or the deadline comes;
    /// while EKS is still creating or updating it, as the request says.
    /// Every failure is in the report (`error`, `transient`), never a panic
    /// or a lost summary, and the report counts this reconcile's own calls.
    pub async fn reconcile<'a>(&self, request: impl Into<Request<'a>>) -> Report {
        let request = request.into();
        let started = Instant::now();
        let counter = CallCounter::default();
        // On the heap: a reconcile's future is large, and the callers (a
        // sweep's passes, a test's runtime) hold several at once.
        let mut report = Box::pin(counter.count(self.run_request(&request))).await;
        report.count(&counter.snapshot());
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// A reconcile, and while EKS is still at the cluster (and the request
    /// says to), another after a pause, until the deadline: what is still
    /// pending then is the next run's (the scheduled sweep's).
    async fn run_request(&self, request: &Request<'_>) -> Report {
        let patience = request.patience.unwrap_or_else(|| self.patience());
        let mut pause = request.while_eks_works;
        loop {
            let mut report = self.run_once(request, &patience).await;
            let Some(delay) = pause.filter(|_| report.is_pending()) else {
                return report;
            };
            if tokio::time::Instant::now() + delay >= patience.deadline {
                // EKS is still at it: converging, like AWS being slow anywhere.
                report.outcome = Outcome::Converging;
                report.in_progress.push(
                    report
                        .detail
                        .clone()
                        .unwrap_or_else(|| "the cluster is pending".into()),
                );
                return report;
            }
            if let Some(progress) = request.progress {
                progress(&report, delay);
            }
            tokio::time::sleep(delay).await;
            pause = Some((delay * 2).min(EKS_MAX_POLL));
        }
    }

    /// One reconcile, its outcome decided.
    async fn run_once(&self, request: &Request<'_>, patience: &Patience) -> Report {
        let mode = request.mode.unwrap_or(self.config.mode);
        let mut report = Report::new(&request.cluster, mode);
        let result = self.run(request, mode, patience, &mut report).await;
        // A run that ends well may still end in an error: the cluster is
        // invalid, or AWS reports a failure that nothing repaired.
        let ended = result.and_then(|()| match &report.decision.0 {
            Some(plan::Decision::Invalid { problem }) => {
                Err(ReconcileError::Invalid(problem.clone()))
            }
            _ if mode == Mode::Apply
                && report.in_progress.is_empty()
                && !report.problems.is_empty() =>
            {
                Err(ReconcileError::Failed {
                    problems: report.problems.clone(),
                })
            }
            _ => Ok(()),
        });
        report.outcome = match ended {
            Err(e) => {
                report.transient = Some(e.is_transient());
                report.error = Some(e.to_string());
                Outcome::Error
            }
            Ok(()) if !report.in_progress.is_empty() && mode == Mode::Apply => Outcome::Converging,
            Ok(()) if report.applied => Outcome::Applied,
            Ok(()) if mode == Mode::Plan && !report.actions.is_empty() => Outcome::Planned,
            Ok(()) => Outcome::NothingToDo,
        };
        report
    }

    /// Look, act and wait, round after round, until a look finds nothing to
    /// do; a failure goes by the error policy (`policy::on_failure`).
    async fn run(
        &self,
        request: &Request<'_>,
        mode: Mode,
        patience: &Patience,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        let mut fleet = request.fleet;
        let mut seen_problems: BTreeSet<String> = BTreeSet::new();
        let served = match &request.served {
            Some(served) => served.clone(),
            None => self.served(crate::accounts::SERVED_TTL).await?,
        };
        loop {
            report.rounds += 1;
            let round = self
                .round(
                    request,
                    mode,
                    &served,
                    fleet.take(),
                    patience,
                    &mut seen_problems,
                    report,
                )
                .await;
            match round {
                Ok(Round::Done) => return Ok(()),
                Ok(Round::Again) => {}
                Err(e) => {
                    let absorbed = report.absorbed.len();
                    match policy::on_failure(e.is_transient(), mode, absorbed, patience) {
                        Verdict::LookAgain { pause } => {
                            tracing::info!(cluster = %request.cluster, error = %e,
                                "transient failure; looking again");
                            report.absorbed.push(e.to_string());
                            tokio::time::sleep(pause).await;
                        }
                        Verdict::End => return Err(e),
                    }
                }
            }
        }
    }

    /// One round: look (observe and plan); unless that is the end, act on
    /// the plan and wait for what AWS is doing.
    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        request: &Request<'_>,
        mode: Mode,
        served: &BTreeSet<String>,
        fleet: Option<&Fleet>,
        patience: &Patience,
        seen_problems: &mut BTreeSet<String>,
        report: &mut Report,
    ) -> Result<Round, ReconcileError> {
        let cluster = request.cluster.name.as_str();
        let hinted_arn = request.hinted_arn.clone();
        let (mut plan, mut obs) =
            Box::pin(self.observe_and_plan(served, &request.cluster, hinted_arn.clone(), fleet))
                .await?;
        // A plan that would delete a shared resource is made again from a
        // fresh observation: the fleet may be out of date.
        if fleet.is_some() && plan.deletes_shared() {
            (plan, obs) =
                Box::pin(self.observe_and_plan(served, &request.cluster, hinted_arn, None)).await?;
        }
        if report.rounds == 1 {
            self.note_first_look(cluster, &plan, &obs, report);
        }
        self.hold_back(cluster, &mut plan, &obs, report);
        note_look(&plan, seen_problems, report);
        if mode == Mode::Plan || (plan.is_empty() && plan.waits.is_empty()) {
            return Ok(Round::Done);
        }
        if policy::out_of_rounds(report.rounds, report.absorbed.len()) {
            // Still changing after every look: leave it to the next run.
            report.in_progress.extend(
                plan.actions
                    .iter()
                    .map(|a| format!("to do: {}", a.describe())),
            );
            return Ok(Round::Done);
        }
        let mut waits = plan.waits.clone();
        if !plan.is_empty() {
            let applied = Box::pin(self.applier(*patience).apply(&plan)).await?;
            report.applied = true;
            report.kept.extend(applied.kept);
            if !applied.stopped.is_empty() {
                report.in_progress = applied.stopped;
                return Ok(Round::Done);
            }
            waits.extend(applied.settle);
        }
        let pending = Box::pin(wait::settle(self.accounts(), &waits, patience)).await?;
        if !pending.is_empty() {
            report.in_progress = pending.iter().map(|w| w.describe()).collect();
            return Ok(Round::Done);
        }
        // Look again: what AWS finished may call for more (the addresses
        // of a new outbound endpoint on the inbound group), and a look
        // with nothing to do is the proof that it is done.
        Ok(Round::Again)
    }

    /// What the first look settles for the report: the VPC, the decision,
    /// and the peers of other accounts left out.
    fn note_first_look(&self, cluster: &str, plan: &Plan, obs: &Observation, report: &mut Report) {
        report.vpc_id = obs
            .cluster
            .as_ref()
            .and_then(|c| c.vpc_id.clone())
            .or_else(|| obs.previous_state(&self.config).map(|s| s.vpc_id));
        report.decision = ReportDecision(Some(plan.decision.clone()));
        report.detail = detail_of(&plan.decision);
        if self.config.discover_peered_vpcs {
            for (vpc, account) in &obs.other_account_peers {
                let warning = format!(
                    "skipped peered VPC {vpc}: it belongs to account {account}, which \
                     this deployment does not serve (add it to {})",
                    crate::config::ENV_SPOKE_ACCOUNTS
                );
                tracing::warn!(cluster, vpc = %vpc, account = %account, "{warning}");
                report.warnings.push(warning);
            }
        }
    }

    /// A run whose settings differ from those the plumbing was made with
    /// (and from the deployment's) takes nothing away: what it would take
    /// is listed as held back (`Role::Operator`, unless forced).
    fn hold_back(&self, cluster: &str, plan: &mut Plan, obs: &Observation, report: &mut Report) {
        let ours = self.config.digest();
        let recorded = obs
            .previous_state(&self.config)
            .and_then(|s| s.settings_digest);
        if self.role.holds_back(&ours, recorded.as_deref())
            && self.deployment_digest.as_deref() != Some(ours.as_str())
        {
            let held = plan.hold_back();
            if !held.is_empty() {
                let why = held_back_reason(
                    &ours,
                    recorded.as_deref(),
                    &format!("cluster {cluster}'s plumbing was made with"),
                );
                for action in held {
                    let line = format!("{} ({why})", action.describe());
                    if !report.held_back.contains(&line) {
                        report.held_back.push(line);
                    }
                }
            }
        }
    }
}

/// Whether a round was the last.
enum Round {
    Done,
    Again,
}

/// What one look found, for the report: its actions, the failures AWS
/// reports, the ones an earlier look saw and this one no longer does
/// (repaired), and what AWS is still doing.
fn note_look(plan: &Plan, seen_problems: &mut BTreeSet<String>, report: &mut Report) {
    report
        .actions
        .extend(plan.actions.iter().map(|a| a.describe()));
    for action in &plan.actions {
        *report.actions_by_kind.entry(action.kind()).or_default() += 1;
    }
    report.problems = plan.problems.iter().map(|p| p.describe()).collect();
    let now: BTreeSet<String> = plan.problems.iter().map(|p| p.resource.clone()).collect();
    report.repaired = seen_problems
        .iter()
        .filter(|p| !now.contains(*p))
        .map(|p| format!("{p} (AWS had reported it failed)"))
        .collect();
    seen_problems.extend(now);
    report.in_progress = plan.waits.iter().map(|w| w.describe()).collect();
}
