//! The template watches and shows what the functions publish: every metric
//! of our namespace that an alarm or the dashboard names is one the
//! functions emit (shared::metrics), and the dashboard shows each of them.

use std::collections::BTreeSet;

use eks_private_dns_tests::workspace_root;

/// The metric names of our namespace in the alarms (a `MetricName` after
/// `Namespace: eks-private-dns`) and in the dashboard's metric rows.
fn named_in(template: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut alarms = BTreeSet::new();
    let mut ours = false;
    for line in template.lines().map(str::trim) {
        if let Some(ns) = line.strip_prefix("Namespace:") {
            ours = ns.trim() == shared::metrics::NAMESPACE;
        } else if let Some(name) = line.strip_prefix("MetricName:") {
            if ours {
                alarms.insert(name.trim().to_string());
            }
        }
    }
    let mut dashboard = BTreeSet::new();
    let first = format!("[\"{}\", \"", shared::metrics::NAMESPACE);
    for line in template.lines().map(str::trim) {
        for start in [first.as_str(), "[\".\", \""] {
            if let Some(rest) = line.strip_prefix(start) {
                if let Some(name) = rest.split('"').next() {
                    dashboard.insert(name.to_string());
                }
            }
        }
    }
    (alarms, dashboard)
}

#[test]
fn the_alarms_and_the_dashboard_name_only_what_the_functions_publish() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (alarms, dashboard) = named_in(&template);
    let published: BTreeSet<String> = shared::metrics::names().map(str::to_string).collect();
    assert!(
        !alarms.is_empty() && !dashboard.is_empty(),
        "{alarms:?} {dashboard:?}"
    );
    let unknown: Vec<&String> = alarms
        .union(&dashboard)
        .filter(|n| !published.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "named in the template but never published: {unknown:?}"
    );
    let unshown: Vec<&String> = published.difference(&dashboard).collect();
    assert!(
        unshown.is_empty(),
        "published but not on the dashboard: {unshown:?}"
    );
}
