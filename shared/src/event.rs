//! Event intake: which cluster an EventBridge "AWS API Call via CloudTrail"
//! event from EKS names. The event is only a hint to look; DescribeCluster is
//! the truth, so nothing here is trusted for state.

use serde::Deserialize;
use serde_json::Value;

pub const SOURCE: &str = "aws.eks";
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const EVENT_SOURCE: &str = "eks.amazonaws.com";

/// The EKS calls we act on.
pub const HANDLED_EVENTS: &[&str] = &[
    "CreateCluster",
    "UpdateClusterConfig",
    "DeleteCluster",
    "TagResource",
    "UntagResource",
];

/// What to do with one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Reconcile(EventTarget),
    /// Not for us (another source, another call, a failed call): log and succeed.
    Ignore {
        reason: String,
    },
}

/// The cluster that an event names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTarget {
    pub cluster_name: String,
    pub event_name: String,
    /// The cluster ARN when the event carries it (responseElements or tag calls).
    pub cluster_arn: Option<String>,
    pub region: Option<String>,
    /// The account the event comes from (or, without one, its ARN's).
    pub account: Option<String>,
    /// Whether the call starts work that EKS finishes later (CREATING,
    /// UPDATING): the caller may wait for it within its time budget.
    pub starts_long_change: bool,
}

/// A malformed event: permanent bad input, never retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct EventError(pub String);

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    account: Option<String>,
    detail: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_source: String,
    event_name: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    aws_region: Option<String>,
    #[serde(default)]
    request_parameters: Option<Value>,
    #[serde(default)]
    response_elements: Option<Value>,
}

/// Largest event we accept: EventBridge events are at most 256 KB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Interpret raw event bytes (a file, stdin, or a Lambda payload).
pub fn interpret_bytes(bytes: &[u8]) -> Result<EventOutcome, EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError(format!(
            "{} bytes is larger than an EventBridge event can be ({MAX_EVENT_BYTES} bytes)",
            bytes.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| EventError(format!("not valid JSON: {e}")))?;
    interpret(&value)
}

/// Interpret a parsed event.
pub fn interpret(value: &Value) -> Result<EventOutcome, EventError> {
    if !value.is_object() {
        return Err(EventError("expected a JSON object".into()));
    }
    let envelope: Envelope = serde_json::from_value(value.clone()).map_err(|e| {
        EventError(format!(
            "not an EventBridge event (needs source, detail-type and detail): {e}"
        ))
    })?;
    if envelope.source != SOURCE {
        return Ok(ignore(format!(
            "source is {}, not {SOURCE}",
            envelope.source
        )));
    }
    if envelope.detail_type != DETAIL_TYPE {
        return Ok(ignore(format!(
            "detail-type is {}, not {DETAIL_TYPE}",
            envelope.detail_type
        )));
    }
    let detail: Detail = serde_json::from_value(envelope.detail).map_err(|e| {
        EventError(format!(
            "detail is not a CloudTrail record (needs eventSource and eventName): {e}"
        ))
    })?;
    if detail.event_source != EVENT_SOURCE {
        return Ok(ignore(format!(
            "eventSource is {}, not {EVENT_SOURCE}",
            detail.event_source
        )));
    }
    if !HANDLED_EVENTS.contains(&detail.event_name.as_str()) {
        return Ok(ignore(format!(
            "{} is not a call that changes a cluster's endpoint access",
            clip(&detail.event_name)
        )));
    }
    if let Some(code) = detail.error_code.as_deref() {
        return Ok(ignore(format!(
            "{} failed with {}{}: nothing changed",
            detail.event_name,
            clip(code),
            detail
                .error_message
                .as_deref()
                .map(|m| format!(" ({})", clip(m)))
                .unwrap_or_default()
        )));
    }
    let params = detail.request_parameters.as_ref();
    let response = detail.response_elements.as_ref();
    let region = detail.aws_region.or(envelope.region);
    let event_name = detail.event_name;
    let Some((cluster_name, cluster_arn)) = cluster_of(&event_name, params, response)? else {
        return Ok(ignore(format!(
            "{event_name} is for {}, which is not a cluster",
            clip(&string_at(params, &["resourceArn"]).unwrap_or_default())
        )));
    };
    if !is_cluster_name(&cluster_name) {
        return Err(EventError(format!(
            "'{}' is not a valid EKS cluster name",
            clip(&cluster_name)
        )));
    }
    // An ARN of another account or region names another cluster, whatever
    // its name: acting on ours of that name would be wrong.
    let mut account = envelope.account.filter(|a| !a.is_empty());
    if let Some(arn) = &cluster_arn {
        let arn_account = same_account_and_region(arn, account.as_deref(), region.as_deref())?;
        if account.is_none() {
            account = arn_account;
        }
    }
    let starts_long_change = matches!(event_name.as_str(), "CreateCluster" | "UpdateClusterConfig");
    Ok(EventOutcome::Reconcile(EventTarget {
        cluster_name,
        event_name,
        cluster_arn,
        region,
        account,
        starts_long_change,
    }))
}

/// The cluster an event names (name, and ARN when the event gives one), or
/// None when a tag call is for something that is not a cluster.
fn cluster_of(
    event_name: &str,
    params: Option<&Value>,
    response: Option<&Value>,
) -> Result<Option<(String, Option<String>)>, EventError> {
    Ok(Some(match event_name {
        "TagResource" | "UntagResource" => {
            let arn = string_at(params, &["resourceArn"]).ok_or_else(|| {
                EventError(format!("{event_name} has no requestParameters.resourceArn"))
            })?;
            match cluster_name_from_arn(&arn) {
                Some(name) => (name, Some(arn)),
                None => return Ok(None),
            }
        }
        _ => {
            // CreateCluster: requestParameters.name (older samples: clusterName).
            // UpdateClusterConfig and DeleteCluster: requestParameters.name.
            let name = string_at(params, &["name"])
                .or_else(|| string_at(params, &["clusterName"]))
                .or_else(|| string_at(response, &["cluster", "name"]))
                .ok_or_else(|| {
                    EventError(format!(
                        "{event_name} names no cluster (requestParameters.name is missing)"
                    ))
                })?;
            let arn = string_at(response, &["cluster", "arn"]);
            (name, arn)
        }
    }))
}

/// An ARN of another account or region names another cluster, whatever its
/// name: an error. Returns the ARN's account.
fn same_account_and_region(
    arn: &str,
    account: Option<&str>,
    region: Option<&str>,
) -> Result<Option<String>, EventError> {
    let (arn_region, arn_account) = arn_region_and_account(arn);
    for (what, event_says, of, arn_says) in [
        ("comes from account", account, "of account", arn_account),
        ("is for region", region, "in region", arn_region),
    ] {
        if let (Some(a), Some(b)) = (event_says, arn_says) {
            if a != b {
                return Err(EventError(format!(
                    "the event {what} {} but names {}, a cluster {of} {}",
                    clip(a),
                    clip(arn),
                    clip(b)
                )));
            }
        }
    }
    Ok(arn_account.map(str::to_string))
}

fn ignore(reason: String) -> EventOutcome {
    EventOutcome::Ignore { reason }
}

fn string_at(root: Option<&Value>, path: &[&str]) -> Option<String> {
    let mut node = root?;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str().map(str::to_string)
}

/// Keep log lines short whatever an event carries.
fn clip(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// EKS cluster names: 1 to 100 characters, a letter or digit first, then
/// letters, digits, hyphens and underscores.
pub fn is_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    name.len() <= 100 && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The region and account of an ARN
/// ("arn:aws:eks:eu-west-1:123456789012:cluster/prod"), where not empty.
pub fn arn_region_and_account(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.splitn(6, ':').skip(3);
    let mut field = || parts.next().filter(|p| !p.is_empty());
    (field(), field())
}

/// "arn:aws:eks:eu-west-1:111122223333:cluster/prod" -> "prod".
pub fn cluster_name_from_arn(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "eks" {
        return None;
    }
    let name = parts[5].strip_prefix("cluster/")?;
    if is_cluster_name(name) {
        Some(name.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, detail: Value) -> Value {
        let mut d = detail;
        d["eventSource"] = json!("eks.amazonaws.com");
        d["eventName"] = json!(name);
        json!({"version":"0","source":"aws.eks","detail-type":"AWS API Call via CloudTrail",
               "region":"eu-west-1","detail":d})
    }

    #[test]
    fn create_cluster_current_and_old_field_names() {
        for key in ["name", "clusterName"] {
            let e = event(
                "CreateCluster",
                json!({"requestParameters":{key:"prod"},
                       "responseElements":{"cluster":{"arn":"arn:aws:eks:eu-west-1:1:cluster/prod"}}}),
            );
            match interpret(&e).unwrap() {
                EventOutcome::Reconcile(t) => {
                    assert_eq!(t.cluster_name, "prod");
                    assert!(t.starts_long_change);
                    assert_eq!(
                        t.cluster_arn.as_deref(),
                        Some("arn:aws:eks:eu-west-1:1:cluster/prod")
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_arn_of_another_account_or_region_is_rejected() {
        let tag = |account: Option<&str>, arn: &str| {
            let mut e = event(
                "TagResource",
                json!({"requestParameters":{"resourceArn":arn}}),
            );
            if let Some(a) = account {
                e["account"] = json!(a);
            }
            interpret(&e)
        };
        let ours = "arn:aws:eks:eu-west-1:111111111111:cluster/prod";
        let err = tag(Some("999999999999"), ours).unwrap_err().to_string();
        assert!(
            err.contains("account 999999999999") && err.contains("111111111111"),
            "{err}"
        );
        let err = tag(None, "arn:aws:eks:us-east-1:111111111111:cluster/prod")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("region eu-west-1") && err.contains("us-east-1"),
            "{err}"
        );
        // The account comes from the envelope, else from the ARN.
        for account in [Some("111111111111"), None] {
            match tag(account, ours).unwrap() {
                EventOutcome::Reconcile(t) => {
                    assert_eq!(t.account.as_deref(), Some("111111111111"))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn tag_resource_on_a_cluster_and_on_a_nodegroup() {
        let e = event(
            "TagResource",
            json!({"requestParameters":{"resourceArn":"arn:aws:eks:eu-west-1:1:cluster/prod"}}),
        );
        assert!(
            matches!(interpret(&e).unwrap(), EventOutcome::Reconcile(t) if t.cluster_name == "prod" && !t.starts_long_change)
        );
        let e = event(
            "UntagResource",
            json!({"requestParameters":{"resourceArn":"arn:aws:eks:eu-west-1:1:nodegroup/prod/ng/abc"}}),
        );
        assert!(matches!(
            interpret(&e).unwrap(),
            EventOutcome::Ignore { .. }
        ));
    }

    #[test]
    fn ignored_events() {
        let failed = event(
            "UpdateClusterConfig",
            json!({"errorCode":"InvalidParameterException","errorMessage":"no",
                   "requestParameters":{"name":"prod"}}),
        );
        let other_call = event(
            "CreateNodegroup",
            json!({"requestParameters":{"name":"prod"}}),
        );
        let mut other_source = event(
            "DeleteCluster",
            json!({"requestParameters":{"name":"prod"}}),
        );
        other_source["source"] = json!("aws.ec2");
        for e in [failed, other_call, other_source] {
            assert!(
                matches!(interpret(&e).unwrap(), EventOutcome::Ignore { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(interpret_bytes(b"{\"source\":").is_err());
        assert!(interpret_bytes(b"[1,2]").is_err());
        assert!(interpret(&json!({"source":"aws.eks"})).is_err());
        let no_name = event("DeleteCluster", json!({"requestParameters":{}}));
        assert!(interpret(&no_name).is_err());
        let bad_name = event(
            "DeleteCluster",
            json!({"requestParameters":{"name":"../etc"}}),
        );
        assert!(interpret(&bad_name).is_err());
        let wrong_type = event("DeleteCluster", json!({"requestParameters":{"name":42}}));
        assert!(interpret(&wrong_type).is_err());
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(interpret_bytes(&huge).is_err());
    }

    #[test]
    fn cluster_names() {
        assert!(is_cluster_name("prod-1_a"));
        assert!(!is_cluster_name("-prod"));
        assert!(!is_cluster_name(""));
        assert!(!is_cluster_name(&"a".repeat(101)));
        assert_eq!(
            cluster_name_from_arn("arn:aws-cn:eks:cn-north-1:1:cluster/x").as_deref(),
            Some("x")
        );
        assert_eq!(
            cluster_name_from_arn("arn:aws:eks:r:1:nodegroup/x/y/z"),
            None
        );
    }
}
