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

use crate::apply::{Applier, ApplyError};
use crate::aws::{AwsError, Clients, Counts};
use crate::config::{Config, Mode};
use crate::observe::{self, Detail, Fleet};
use crate::owner::Owner;
use crate::plan::{self, Observation, Plan};
use crate::wait::{self, Patience};

mod report;

pub use report::*;

/// Looks one reconcile takes at most: a plan that still changes something
/// after this many is fighting something (a concurrent writer) and is left
/// to the next run.
const MAX_ROUNDS: u32 = 4;

/// Transient failures (after the SDK's own retries) one reconcile absorbs
/// by looking again, while its deadline allows.
const MAX_ABSORBED: usize = 3;

/// How long a reconcile waits for AWS by default: the Lambda's 15 minutes,
/// less the margin it keeps.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(840);

/// How a reconcile waits for AWS when its caller sets no deadline.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    pub budget: Duration,
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            budget: DEFAULT_WAIT,
            first_poll: wait::FIRST_POLL,
            max_poll: wait::MAX_POLL,
        }
    }
}

impl Waiting {
    pub fn until(&self, deadline: tokio::time::Instant) -> Patience {
        Patience::until(deadline).with_polls(self.first_poll, self.max_poll)
    }

    pub fn from_now(&self) -> Patience {
        self.from_now_for(self.budget)
    }

    pub fn from_now_for(&self, budget: Duration) -> Patience {
        self.until(tokio::time::Instant::now() + budget)
    }
}

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
    /// own ARN): events from any other account are ignored.
    pub account: std::sync::OnceLock<String>,
    pub waiting: Waiting,
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

impl Reconciler {
    pub fn new(clients: Clients, config: Config) -> Reconciler {
        let owner = Owner::new(&config.owner);
        Reconciler {
            clients,
            config,
            owner,
            role: Role::Deployment,
            publishes_settings: false,
            deployment_digest: None,
            account: std::sync::OnceLock::new(),
            waiting: Waiting::default(),
        }
    }

    /// The configuration from the environment and clients from the standard
    /// AWS configuration chain (`region` overrides AWS_REGION): what the
    /// Lambdas build once per cold start.
    pub async fn from_env(region: Option<String>) -> Result<Reconciler, String> {
        let config = Config::from_env().map_err(|e| format!("invalid configuration: {e}"))?;
        let clients = Clients::from_env(region, config.resolver_rate, config.tls_roots)
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

    /// Where and as whom this reconciler reads.
    pub fn scope(&self) -> observe::Scope<'_> {
        observe::Scope {
            clients: &self.clients,
            config: &self.config,
            owner: &self.owner,
        }
    }

    /// Observe everything, the prerequisites included (what `verify --path`
    /// walks).
    pub async fn observe_full(&self, cluster: &str) -> Result<Observation, AwsError> {
        observe::observe_cluster(self.scope(), cluster, None, None, Detail::Full).await
    }

    /// Every DNS path of the cluster, hop by hop (`path::check`).
    pub async fn paths(&self, cluster: &str) -> Result<crate::path::Paths, String> {
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
        cluster: &str,
        hinted_arn: Option<String>,
        fleet: Option<&Fleet>,
    ) -> Result<(Plan, Observation), AwsError> {
        let observe = |detail| {
            observe::observe_cluster(self.scope(), cluster, hinted_arn.clone(), fleet, detail)
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

    /// Reconcile one cluster in the configured mode, waiting for AWS up to
    /// the default budget (`waiting`). An AWS failure is in the report
    /// (`error`, `transient`), never a panic or a lost summary.
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
        self.reconcile_with(cluster, hinted_arn, mode, None, self.waiting.from_now())
            .await
    }

    /// Reconcile, waiting for AWS as `patience` allows
    /// (`Patience::none()`: make the calls and return).
    pub async fn reconcile_until(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        patience: Patience,
    ) -> Report {
        self.reconcile_with(cluster, hinted_arn, self.config.mode, None, patience)
            .await
    }

    /// Reconcile with the region-wide state a sweep read once (`fleet`).
    /// A plan that would delete a shared resource is made again from a
    /// fresh observation first, since the fleet may be out of date; later
    /// looks of the same reconcile are fresh too.
    pub async fn reconcile_with(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        mode: Mode,
        fleet: Option<&Fleet>,
        patience: Patience,
    ) -> Report {
        let started = Instant::now();
        let before = self.clients.counter.snapshot();
        let mut report = Report::new(cluster, mode);
        let result = self
            .run(cluster, hinted_arn, mode, fleet, &patience, &mut report)
            .await;
        report.outcome = match result {
            Err(e) => {
                report.transient = Some(e.is_transient());
                report.error = Some(e.to_string());
                Outcome::Error
            }
            Ok(()) if report.is_invalid() => {
                report.transient = Some(false);
                report.error = report.detail.clone();
                Outcome::Error
            }
            Ok(()) if !report.in_progress.is_empty() && mode == Mode::Apply => Outcome::Converging,
            Ok(()) if !report.problems.is_empty() && mode == Mode::Apply => {
                report.transient = Some(false);
                report.error = Some(format!("AWS reports {}", report.problems.join("; ")));
                Outcome::Error
            }
            Ok(()) if report.applied => Outcome::Applied,
            Ok(()) if mode == Mode::Plan && !report.actions.is_empty() => Outcome::Planned,
            Ok(()) => Outcome::NothingToDo,
        };
        let counts: Counts = self.clients.counter.snapshot().since(&before);
        report.api_calls = counts.total();
        report.write_calls = counts.writes();
        report.throttles = counts.throttles;
        report.lost_races = counts.lost_races;
        report.poll_calls = counts.total_polls();
        report.poll_calls_by_service = counts.polls.clone();
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
        patience: &Patience,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        let mut fleet = fleet;
        let mut seen_problems: BTreeSet<String> = BTreeSet::new();
        // A transient failure (throttling, a reset, an answer that never
        // came, after the SDK's retries) while time remains: look again
        // rather than end the run with it. Anything else ends it.
        macro_rules! step {
            ($result:expr) => {
                match $result {
                    Ok(value) => value,
                    Err(e) => {
                        let e = ReconcileError::from(e);
                        if mode == Mode::Apply
                            && e.is_transient()
                            && report.absorbed.len() < MAX_ABSORBED
                            && !patience.expired()
                        {
                            tracing::info!(cluster, error = %e, "transient failure; looking again");
                            report.absorbed.push(e.to_string());
                            tokio::time::sleep(patience.first_poll).await;
                            continue;
                        }
                        return Err(e);
                    }
                }
            };
        }
        loop {
            report.rounds += 1;
            let (mut plan, mut obs) = step!(
                self.observe_and_plan(cluster, hinted_arn.clone(), fleet)
                    .await
            );
            if fleet.is_some() && plan.deletes_shared() {
                (plan, obs) = step!(
                    self.observe_and_plan(cluster, hinted_arn.clone(), None)
                        .await
                );
            }
            fleet = None;
            if report.rounds == 1 {
                self.note_first_look(cluster, &plan, &obs, report);
            }
            self.hold_back(cluster, &mut plan, &obs, report);
            note_look(&plan, &mut seen_problems, report);
            if mode == Mode::Plan || (plan.is_empty() && plan.waits.is_empty()) {
                return Ok(());
            }
            if report.rounds > MAX_ROUNDS + report.absorbed.len() as u32 {
                // Still changing after every look: leave it to the next run.
                report.in_progress.extend(
                    plan.actions
                        .iter()
                        .map(|a| format!("to do: {}", a.describe())),
                );
                return Ok(());
            }
            let mut waits = plan.waits.clone();
            if !plan.is_empty() {
                let applier = Applier {
                    clients: &self.clients,
                    owner: &self.owner,
                    patience: *patience,
                };
                let applied = step!(applier.apply(&plan).await);
                report.applied = true;
                report.kept.extend(applied.kept);
                if !applied.stopped.is_empty() {
                    report.in_progress = applied.stopped;
                    return Ok(());
                }
                waits.extend(applied.settle);
            }
            let pending = step!(wait::settle(&self.clients, &waits, patience).await);
            if !pending.is_empty() {
                report.in_progress = pending.iter().map(|w| w.describe()).collect();
                return Ok(());
            }
            // Look again: what AWS finished may call for more (the addresses
            // of a new outbound endpoint on the inbound group), and a look
            // with nothing to do is the proof that it is done.
        }
    }

    /// What the first look settles for the report: the VPC, the decision,
    /// and the peers of other accounts left out.
    fn note_first_look(&self, cluster: &str, plan: &Plan, obs: &Observation, report: &mut Report) {
        report.vpc_id = obs
            .cluster
            .as_ref()
            .and_then(|c| c.vpc_id.clone())
            .or_else(|| plan::previous_state(&self.config, obs).map(|s| s.vpc_id));
        report.decision = ReportDecision(Some(plan.decision.clone()));
        report.detail = detail_of(&plan.decision);
        if self.config.discover_peered_vpcs {
            for (vpc, account) in &obs.other_account_peers {
                let warning = format!(
                    "skipped peered VPC {vpc}: it belongs to account {account}, which \
                 this deployment does not serve"
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
        let recorded = plan::previous_state(&self.config, obs).and_then(|s| s.settings_digest);
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

    /// Reconcile, and while EKS is still creating or updating the cluster,
    /// poll again with backoff until `deadline`; then wait for AWS to
    /// finish the plumbing until the same deadline. Whatever is still
    /// pending then is left to the next run (the scheduled sweep).
    pub async fn reconcile_waiting(
        &self,
        cluster: &str,
        hinted_arn: Option<String>,
        deadline: Instant,
        first_delay: Duration,
        mut progress: impl FnMut(&Report, Duration),
    ) -> Report {
        let patience = self.waiting.until(tokio::time::Instant::from_std(deadline));
        let mut delay = first_delay;
        loop {
            let mut report = self
                .reconcile_until(cluster, hinted_arn.clone(), patience)
                .await;
            if !report.is_pending() {
                return report;
            }
            let now = Instant::now();
            if now + delay >= deadline {
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
            progress(&report, delay);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
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
