//! The summary of one reconcile that the Lambdas log (one JSON line) and
//! the CLI prints, with its decision, mode and outcome typed.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::config::Mode;
use crate::model::{Account, ClusterId};
use crate::plan::Decision;

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Changes were made, and AWS finished them.
    #[serde(rename = "applied")]
    Applied,
    /// Everything was right already (plan mode: nothing would change).
    #[serde(rename = "nothing to do")]
    NothingToDo,
    /// Planned only (plan mode): the actions would make it right.
    #[serde(rename = "planned")]
    Planned,
    /// AWS was still working at the deadline; the next run finishes it.
    #[serde(rename = "converging")]
    Converging,
    #[serde(rename = "error")]
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NothingToDo => "nothing to do",
            Outcome::Planned => "planned",
            Outcome::Converging => "converging",
            Outcome::Error => "error",
        }
    }
}

/// The outcome of one reconcile, as logged (one JSON line) and printed.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    /// The account the cluster runs in: left out for the deployment's own.
    #[serde(skip_serializing_if = "Account::is_home")]
    pub account: Account,
    pub decision: ReportDecision,
    pub outcome: Outcome,
    /// The cluster VPC, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Why not managed, what is pending, or what is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub mode: Mode,
    /// The planned actions, in apply order (those of later looks after).
    pub actions: Vec<String>,
    /// How many of them make, change and take away something.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub actions_by_kind: std::collections::BTreeMap<crate::plan::ActionKind, u64>,
    /// Whether actions were carried out (apply mode).
    pub applied: bool,
    /// What AWS was still doing when the run stopped (`converging`), or,
    /// in plan mode, what it is doing now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<String>,
    /// What AWS reports as failed at the last look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Failures AWS reported that the run repaired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    /// Deletes left undone because the resource came into use meanwhile.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// Transient failures the run recovered from by looking again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<String>,
    /// What was left out, and why (a peered VPC of another account).
    pub warnings: Vec<String>,
    /// What this run would take away but does not: its settings differ
    /// from those the plumbing was made with (`Role::Operator`).
    pub held_back: Vec<String>,
    /// Where each setting came from (the CLI's `plan`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<crate::settings::Setting>,
    /// Looks taken (observe and plan).
    pub rounds: u32,
    pub api_calls: u64,
    pub write_calls: u64,
    pub throttles: u64,
    /// Creates that found what they were making already made (a concurrent
    /// run's, or an attempt's whose answer was lost) and adopted it.
    pub lost_races: u64,
    /// Calls spent waiting for AWS to finish something.
    pub poll_calls: u64,
    pub poll_calls_by_service: std::collections::BTreeMap<String, u64>,
    pub calls_by_operation: std::collections::BTreeMap<String, u64>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With an error: whether retrying later can help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient: Option<bool>,
}

impl Report {
    /// The cluster reported on.
    pub fn cluster_id(&self) -> ClusterId {
        ClusterId {
            account: self.account.clone(),
            name: self.cluster.clone(),
        }
    }

    /// A report before the first look.
    pub fn new(cluster: &ClusterId, mode: Mode) -> Report {
        Report {
            cluster: cluster.name.clone(),
            account: cluster.account.clone(),
            decision: ReportDecision(None),
            outcome: Outcome::NothingToDo,
            vpc_id: None,
            detail: None,
            mode,
            actions: Vec::new(),
            actions_by_kind: Default::default(),
            applied: false,
            in_progress: Vec::new(),
            problems: Vec::new(),
            repaired: Vec::new(),
            kept: Vec::new(),
            absorbed: Vec::new(),
            warnings: Vec::new(),
            held_back: Vec::new(),
            settings: Vec::new(),
            rounds: 0,
            api_calls: 0,
            write_calls: 0,
            throttles: 0,
            lost_races: 0,
            poll_calls: 0,
            poll_calls_by_service: Default::default(),
            calls_by_operation: Default::default(),
            duration_ms: 0,
            error: None,
            transient: None,
        }
    }

    /// Record the calls this reconcile made (its own counter's).
    pub fn count(&mut self, counts: &crate::aws::Counts) {
        self.api_calls = counts.total();
        self.write_calls = counts.writes();
        self.throttles = counts.throttles;
        self.lost_races = counts.lost_races;
        self.poll_calls = counts.total_polls();
        self.poll_calls_by_service = counts.polls.clone();
        self.calls_by_operation = counts.calls.clone();
    }

    /// Add the calls of an earlier reconcile of the same cluster (a sweep's
    /// first pass), and the time it took.
    pub fn add_calls_of(&mut self, earlier: &Report) {
        self.api_calls += earlier.api_calls;
        self.write_calls += earlier.write_calls;
        self.throttles += earlier.throttles;
        self.lost_races += earlier.lost_races;
        self.poll_calls += earlier.poll_calls;
        for (service, n) in &earlier.poll_calls_by_service {
            *self
                .poll_calls_by_service
                .entry(service.clone())
                .or_default() += n;
        }
        for (operation, n) in &earlier.calls_by_operation {
            *self
                .calls_by_operation
                .entry(operation.clone())
                .or_default() += n;
        }
        self.rounds += earlier.rounds;
        self.duration_ms += earlier.duration_ms;
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.decision.0, Some(Decision::Pending { .. }))
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self.decision.0, Some(Decision::Invalid { .. }))
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    pub fn is_converging(&self) -> bool {
        self.outcome == Outcome::Converging
    }
}

pub(super) fn detail_of(decision: &Decision) -> Option<String> {
    match decision {
        Decision::Managed | Decision::Gone => None,
        Decision::Pending { status } => Some(format!("the cluster is {status}")),
        Decision::NotManaged { reason } => Some(reason.clone()),
        Decision::Invalid { problem } => Some(problem.to_string()),
    }
}

/// The decision of the first look (None before it), serialized and shown
/// as its label ("managed", "pending", ..., "unknown" before a look).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDecision(pub Option<Decision>);

impl ReportDecision {
    pub fn as_str(&self) -> &'static str {
        self.0.as_ref().map(Decision::label).unwrap_or("unknown")
    }
}

impl fmt::Display for ReportDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ReportDecision {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ReportDecision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
