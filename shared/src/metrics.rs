//! What the Lambdas count, as CloudWatch embedded metric format (EMF): one
//! JSON line on stdout that CloudWatch Logs turns into metrics, with no
//! PutMetricData call and no permission beyond writing logs. The alarms of
//! the template watch these figures, so that a failure that needs a person
//! (a permission, a quota, invalid settings or tags) reaches one even though
//! the invocation succeeds (retrying would not help).

use serde_json::{json, Value};

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

/// The figures of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub reconciles: u64,
    pub failures: u64,
    pub converging: u64,
}

impl Counts {
    pub fn of_report(report: &Report) -> Counts {
        Counts {
            reconciles: 1,
            failures: u64::from(report.failed()),
            converging: u64::from(report.outcome == Outcome::Converging),
        }
    }

    pub fn of_sweep(summary: &SweepReport) -> Counts {
        Counts {
            reconciles: summary.clusters_seen as u64,
            failures: summary.failed as u64,
            converging: summary.converging as u64,
        }
    }
}

/// The EMF document for `counts`, with the dimensions Function (which
/// Lambda) and Owner (which deployment: two in one account are counted
/// apart). `extra` adds searchable fields (the cluster, the errors).
pub fn emf(function: &str, owner: &str, counts: &Counts, now_ms: u64, extra: Value) -> Value {
    let mut doc = json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Owner"]],
                "Metrics": [
                    {"Name": METRIC_RECONCILES, "Unit": "Count"},
                    {"Name": METRIC_FAILURES, "Unit": "Count"},
                    {"Name": METRIC_CONVERGING, "Unit": "Count"},
                ],
            }],
        },
        "Function": function,
        "Owner": owner,
        METRIC_RECONCILES: counts.reconciles,
        METRIC_FAILURES: counts.failures,
        METRIC_CONVERGING: counts.converging,
    });
    if let (Some(doc), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        for (k, v) in extra {
            doc.entry(k).or_insert(v);
        }
    }
    doc
}

/// Print the EMF line for `counts` (stdout, where Lambda takes the logs),
/// and return it.
pub fn emit(function: &str, owner: &str, counts: &Counts, extra: Value) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let doc = emf(function, owner, counts, now_ms, extra);
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
        };
        let doc = emf(
            "sweep",
            "team-a",
            &counts,
            1_700_000_000_000,
            json!({"failed": ["prod"], "Owner": "not this"}),
        );
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(meta["Namespace"], NAMESPACE);
        // Every dimension and metric named in the metadata is a top-level
        // member, as the format requires.
        for dim in meta["Dimensions"][0].as_array().unwrap() {
            assert!(doc[dim.as_str().unwrap()].is_string(), "{dim}");
        }
        for metric in meta["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_u64(), "{name}");
        }
        assert_eq!(doc[METRIC_FAILURES], 1);
        assert_eq!(doc[METRIC_RECONCILES], 3);
        assert_eq!(doc["Owner"], "team-a", "extra fields never replace ours");
        assert_eq!(doc["failed"][0], "prod");
    }
}
