//! What the Lambdas count, as CloudWatch embedded metric format (EMF): one
//! JSON line on stdout that CloudWatch Logs turns into metrics, with no
//! PutMetricData call and no permission beyond writing logs. The alarms of
//! the template watch these figures, so that a failure that needs a person
//! (a permission, a quota, invalid settings or tags) reaches one even though
//! the invocation succeeds (retrying would not help).

use serde_json::{json, Value};

use crate::plan::ActionKind;
use crate::reconcile::{Outcome, Report};
use crate::sweep::SweepReport;

/// The namespace of every metric.
pub const NAMESPACE: &str = "eks-private-dns";
/// Reconciles that ended in an error (permanent or not), per invocation.
pub const METRIC_FAILURES: &str = "ReconcileFailures";
/// Reconciles run.
pub const METRIC_RECONCILES: &str = "Reconciles";
/// Reconciles that ended with AWS still working (not a failure).
pub const METRIC_CONVERGING: &str = "Converging";
/// Actions planned (and, in apply mode, carried out).
pub const METRIC_ACTIONS: &str = "Actions";
/// Failures AWS reported that the run repaired.
pub const METRIC_REPAIRED: &str = "Repaired";
pub const METRIC_API_CALLS: &str = "ApiCalls";
pub const METRIC_WRITE_CALLS: &str = "WriteCalls";
/// Answers that said "slow down" (each retried).
pub const METRIC_THROTTLES: &str = "Throttles";
/// Creates that found what they were making already made (by a concurrent
/// run, or by an attempt whose answer was lost) and adopted it: the cost of
/// a race, in calls that spent the rate for nothing.
pub const METRIC_LOST_RACES: &str = "LostRaces";
pub const METRIC_DURATION: &str = "Duration";
/// Actions by kind (`ActionKind`): what was made, changed in place, and
/// taken away. Published only when not zero, so that a quiet fleet pays
/// for none of them.
pub const METRIC_CREATES: &str = "Creates";
pub const METRIC_CHANGES: &str = "Changes";
pub const METRIC_DELETES: &str = "Deletes";

/// The figures of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub reconciles: u64,
    pub failures: u64,
    pub converging: u64,
    pub actions: u64,
    pub repaired: u64,
    pub api_calls: u64,
    pub write_calls: u64,
    pub throttles: u64,
    pub lost_races: u64,
    pub duration_ms: u64,
    pub creates: u64,
    pub changes: u64,
    pub deletes: u64,
}

/// A metric: its name, unit, and figure, and whether it is published when
/// the figure is zero.
type Metric = (&'static str, &'static str, fn(&Counts) -> u64, Zero);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    Published,
    Left,
}

/// A metric published at every invocation.
const fn always(name: &'static str, unit: &'static str, figure: fn(&Counts) -> u64) -> Metric {
    (name, unit, figure, Zero::Published)
}

/// A metric published only when its figure is not zero.
const fn when_some(name: &'static str, figure: fn(&Counts) -> u64) -> Metric {
    (name, "Count", figure, Zero::Left)
}

/// Every metric.
const METRICS: &[Metric] = &[
    always(METRIC_RECONCILES, "Count", |c| c.reconciles),
    always(METRIC_FAILURES, "Count", |c| c.failures),
    always(METRIC_CONVERGING, "Count", |c| c.converging),
    always(METRIC_ACTIONS, "Count", |c| c.actions),
    always(METRIC_REPAIRED, "Count", |c| c.repaired),
    always(METRIC_API_CALLS, "Count", |c| c.api_calls),
    always(METRIC_WRITE_CALLS, "Count", |c| c.write_calls),
    always(METRIC_THROTTLES, "Count", |c| c.throttles),
    always(METRIC_LOST_RACES, "Count", |c| c.lost_races),
    always(METRIC_DURATION, "Milliseconds", |c| c.duration_ms),
    when_some(METRIC_CREATES, |c| c.creates),
    when_some(METRIC_CHANGES, |c| c.changes),
    when_some(METRIC_DELETES, |c| c.deletes),
];

/// The name of every metric the functions publish.
pub fn names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().map(|(name, _, _, _)| *name)
}

/// The metrics `counts` publishes.
fn published(counts: &Counts) -> impl Iterator<Item = &'static Metric> + '_ {
    METRICS
        .iter()
        .filter(move |(_, _, figure, zero)| *zero == Zero::Published || figure(counts) > 0)
}

fn by_kind<'a>(reports: impl IntoIterator<Item = &'a Report>, kind: ActionKind) -> u64 {
    reports
        .into_iter()
        .map(|r| r.actions_by_kind.get(&kind).copied().unwrap_or(0))
        .sum()
}

impl Counts {
    pub fn of_report(report: &Report) -> Counts {
        Counts {
            reconciles: 1,
            failures: u64::from(report.failed()),
            converging: u64::from(report.outcome == Outcome::Converging),
            actions: report.actions.len() as u64,
            repaired: report.repaired.len() as u64,
            api_calls: report.api_calls,
            write_calls: report.write_calls,
            throttles: report.throttles,
            lost_races: report.lost_races,
            duration_ms: report.duration_ms,
            creates: by_kind([report], ActionKind::Create),
            changes: by_kind([report], ActionKind::Change),
            deletes: by_kind([report], ActionKind::Delete),
        }
    }

    pub fn of_sweep(summary: &SweepReport) -> Counts {
        Counts {
            reconciles: summary.clusters_seen as u64,
            failures: summary.failed as u64,
            converging: summary.converging as u64,
            actions: summary.reports.iter().map(|r| r.actions.len() as u64).sum(),
            repaired: summary
                .reports
                .iter()
                .map(|r| r.repaired.len() as u64)
                .sum(),
            api_calls: summary.api_calls,
            write_calls: summary.write_calls,
            throttles: summary.throttles,
            lost_races: summary.lost_races,
            duration_ms: summary.duration_ms,
            creates: by_kind(&summary.reports, ActionKind::Create),
            changes: by_kind(&summary.reports, ActionKind::Change),
            deletes: by_kind(&summary.reports, ActionKind::Delete),
        }
    }

    /// One spoke account's part of a hub's sweep (`account`, its id): its
    /// clusters' reconciles and the failures named in it, the account
    /// itself unread among them. The deployment's own figures
    /// (`of_sweep`) are the whole run's, these included, so that its
    /// alarms see every account.
    pub fn of_account(summary: &SweepReport, account: &str) -> Counts {
        let reports: Vec<&Report> = summary
            .reports
            .iter()
            .filter(|r| matches!(&r.account, crate::model::Account::Id(id) if id == account))
            .collect();
        let sum = |figure: fn(&Report) -> u64| reports.iter().map(|r| figure(r)).sum::<u64>();
        Counts {
            reconciles: reports.len() as u64,
            failures: summary
                .failures
                .iter()
                .filter(|f| f.account.as_deref() == Some(account))
                .count() as u64,
            converging: reports
                .iter()
                .filter(|r| r.outcome == Outcome::Converging)
                .count() as u64,
            actions: sum(|r| r.actions.len() as u64),
            repaired: sum(|r| r.repaired.len() as u64),
            api_calls: sum(|r| r.api_calls),
            write_calls: sum(|r| r.write_calls),
            throttles: sum(|r| r.throttles),
            lost_races: sum(|r| r.lost_races),
            duration_ms: summary.duration_ms,
            creates: by_kind(reports.iter().copied(), ActionKind::Create),
            changes: by_kind(reports.iter().copied(), ActionKind::Change),
            deletes: by_kind(reports.iter().copied(), ActionKind::Delete),
        }
    }

    /// A failure of the whole invocation, before any reconcile.
    pub fn failed() -> Counts {
        Counts {
            failures: 1,
            ..Counts::default()
        }
    }
}

/// Whose figures these are: the dimensions of every metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dimensions<'a> {
    /// Which Lambda: cluster-event or sweep.
    pub function: &'a str,
    /// Which deployment: two in one account are counted apart.
    pub owner: &'a str,
    /// The account and region of the clusters the figures are about: the
    /// function's own for the whole run's, a spoke's for its part of a
    /// hub's sweep.
    pub account: &'a str,
    pub region: &'a str,
}

/// The dimension names, in the order of the metadata.
pub const DIMENSIONS: [&str; 4] = ["Function", "Owner", "Account", "Region"];

impl Dimensions<'_> {
    fn values(&self) -> [&str; 4] {
        [self.function, self.owner, self.account, self.region]
    }
}

/// The EMF document for `counts`, with the dimensions `dims`. `extra` adds
/// searchable fields (the cluster, the errors), never replacing ours.
pub fn emf(dims: &Dimensions, counts: &Counts, now_ms: u64, extra: Value) -> Value {
    let metrics: Vec<Value> = published(counts)
        .map(|(name, unit, _, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut doc = json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [DIMENSIONS],
                "Metrics": metrics,
            }],
        },
    });
    if let Some(doc) = doc.as_object_mut() {
        for (name, value) in DIMENSIONS.iter().zip(dims.values()) {
            doc.insert(name.to_string(), json!(value));
        }
        for (name, _, figure, _) in published(counts) {
            doc.insert(name.to_string(), json!(figure(counts)));
        }
    }
    if let (Some(doc), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        for (k, v) in extra {
            doc.entry(k).or_insert(v);
        }
    }
    doc
}

/// Print the EMF line for `counts` (stdout, where Lambda takes the logs),
/// and return it.
pub fn emit(dims: &Dimensions, counts: &Counts, extra: Value) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let doc = emf(dims, counts, now_ms, extra);
    println!("{doc}");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_follows_the_embedded_metric_format() {
        let counts = Counts {
            reconciles: 3,
            failures: 1,
            converging: 1,
            throttles: 2,
            ..Counts::default()
        };
        let dims = Dimensions {
            function: "sweep",
            owner: "team-a",
            account: "123456789012",
            region: "eu-west-1",
        };
        let doc = emf(
            &dims,
            &counts,
            1_700_000_000_000,
            json!({"failed": ["prod"], "Owner": "not this"}),
        );
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(meta["Namespace"], NAMESPACE);
        // Every dimension and metric named in the metadata is a top-level
        // member, as the format requires.
        let named: Vec<&str> = meta["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(named, ["Function", "Owner", "Account", "Region"]);
        for dim in named {
            assert!(doc[dim].is_string(), "{dim}");
        }
        assert_eq!(doc["Account"], "123456789012");
        assert_eq!(doc["Region"], "eu-west-1");
        for metric in meta["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_u64(), "{name}");
        }
        assert_eq!(doc[METRIC_FAILURES], 1);
        assert_eq!(doc[METRIC_RECONCILES], 3);
        assert_eq!(doc[METRIC_THROTTLES], 2);
        // The kinds of action are left out at zero: a quiet fleet pays for
        // none of them.
        assert_eq!(meta["Metrics"].as_array().unwrap().len(), METRICS.len() - 3);
        assert!(doc.get(METRIC_CREATES).is_none());
        assert_eq!(doc["Owner"], "team-a", "extra fields never replace ours");
        assert_eq!(doc["failed"][0], "prod");
    }

    #[test]
    fn actions_are_counted_by_kind_and_published_when_some() {
        let mut report = Report::new(
            &crate::model::ClusterId::home("prod"),
            crate::config::Mode::Apply,
        );
        report.actions_by_kind.insert(ActionKind::Create, 4);
        report.actions_by_kind.insert(ActionKind::Delete, 1);
        let counts = Counts::of_report(&report);
        assert_eq!((counts.creates, counts.changes, counts.deletes), (4, 0, 1));
        let dims = Dimensions {
            function: "cluster-event",
            owner: "team-a",
            account: "123456789012",
            region: "eu-west-1",
        };
        let doc = emf(&dims, &counts, 0, json!({}));
        let named: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(named.contains(&METRIC_CREATES) && named.contains(&METRIC_DELETES));
        assert!(!named.contains(&METRIC_CHANGES));
        assert_eq!(doc[METRIC_CREATES], 4);
        assert_eq!(doc[METRIC_DELETES], 1);
        assert!(doc.get(METRIC_CHANGES).is_none());
    }
}
