//! SSM: our parameters under the prefix, the clusters recorded in them.

use std::collections::BTreeSet;

use aws_sdk_ssm::types::ParameterStringFilter;

use crate::aws::{aws, AwsError, Clients};
use crate::owner::{Owner, TAG_OWNER, TAG_VPC};
use crate::ssm::{is_state_name, parameter_name, parse_parameter_name, PARAM_STATE};

use super::*;

/// The parameters directly under `path`.
pub async fn parameters_under(
    clients: &Clients,
    path: &str,
) -> Result<Vec<ParameterView>, AwsError> {
    parameters_by_path(clients, path, false).await
}

/// Other clusters recorded (by their state parameter) as using the inbound
/// endpoint of `vpc`.
pub async fn registrations(
    scope: Scope<'_>,
    vpc: &VpcRef,
    except_cluster: &ClusterId,
) -> Result<Vec<Registration>, AwsError> {
    let Scope { config, owner, .. } = scope;
    let clients = scope.home();
    let prefix = &config.ssm_prefix;
    let tagged = owned_parameter_names(clients, prefix, owner, Some((TAG_VPC, &vpc.id))).await?;
    let own_state = parameter_name(prefix, except_cluster, PARAM_STATE);
    let names: Vec<String> = tagged
        .into_iter()
        .filter(|name| is_state_name(prefix, name) && *name != own_state)
        .collect();
    let values = parameter_values(clients, &names).await?;
    Ok(registrations_in(
        recorded_states(prefix, &values),
        vpc,
        except_cluster,
    ))
}

/// The clusters other than `except` that `states` record in `vpc` (of the
/// cluster's account), by name.
pub(super) fn registrations_in(
    states: impl IntoIterator<Item = (ClusterId, StateDoc)>,
    vpc: &VpcRef,
    except: &ClusterId,
) -> Vec<Registration> {
    let mut found: Vec<Registration> = states
        .into_iter()
        .filter(|(cluster, doc)| {
            doc.vpc_id == vpc.id && cluster.account == vpc.account && cluster != except
        })
        .map(|(_, doc)| Registration {
            allowed_cidrs: doc
                .allowed_cidrs
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            cluster: doc.cluster,
        })
        .collect();
    found.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    found
}

/// A DescribeParameters filter.
pub(super) fn ssm_filter(
    key: &str,
    option: Option<&str>,
    values: Vec<String>,
) -> ParameterStringFilter {
    ParameterStringFilter::builder()
        .key(key)
        .set_option(option.map(str::to_string))
        .set_values(Some(values))
        .build()
        .expect("key is set")
}

/// The names of the parameters under `prefix` (recursively) that carry our
/// owner tag, and `also` (a tag key and value) when given: one
/// DescribeParameters page per 50.
pub async fn owned_parameter_names(
    clients: &Clients,
    prefix: &str,
    owner: &Owner,
    also: Option<(&str, &str)>,
) -> Result<BTreeSet<String>, AwsError> {
    Ok(owned_parameter_metadata(clients, prefix, owner, also)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect())
}

/// What DescribeParameters says of one parameter: no value.
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterMeta {
    pub name: String,
    pub kind: String,
    pub version: i64,
    /// Seconds since the epoch; None when not given.
    pub modified: Option<f64>,
}

/// The parameters under `prefix` (recursively) that carry our owner tag,
/// and `also` when given, without their values: one DescribeParameters page
/// per 50.
pub async fn owned_parameter_metadata(
    clients: &Clients,
    prefix: &str,
    owner: &Owner,
    also: Option<(&str, &str)>,
) -> Result<Vec<ParameterMeta>, AwsError> {
    let mut request = clients
        .ssm
        .describe_parameters()
        .parameter_filters(ssm_filter(
            "Path",
            Some("Recursive"),
            vec![prefix.to_string()],
        ))
        .parameter_filters(ssm_filter(
            &format!("tag:{TAG_OWNER}"),
            None,
            vec![owner.id.clone()],
        ));
    if let Some((key, value)) = also {
        request = request.parameter_filters(ssm_filter(
            &format!("tag:{key}"),
            None,
            vec![value.to_string()],
        ));
    }
    let mut pages = request.max_results(50).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("SSM.DescribeParameters"))?;
        found.extend(page.parameters().iter().filter_map(|p| {
            Some(ParameterMeta {
                name: p.name()?.to_string(),
                kind: p
                    .r#type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
                version: p.version(),
                modified: p.last_modified_date().map(|d| d.as_secs_f64()),
            })
        }));
    }
    Ok(found)
}

/// The values of `names`: GetParameters, ten names a call, a few calls at
/// a time. A name that does not exist (any more) is left out.
pub async fn parameter_values(
    clients: &Clients,
    names: &[String],
) -> Result<Vec<ParameterView>, AwsError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let chunks: Vec<Vec<String>> = names.chunks(10).map(<[String]>::to_vec).collect();
    let pages: Vec<Vec<ParameterView>> = stream::iter(chunks)
        .map(|chunk| get_parameters(clients, chunk))
        .buffer_unordered(GET_CONCURRENCY)
        .try_collect()
        .await?;
    let mut params: Vec<ParameterView> = pages.into_iter().flatten().collect();
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// A parameter as SSM returns it with its value.
fn view(p: &aws_sdk_ssm::types::Parameter) -> ParameterView {
    ParameterView {
        name: p.name().unwrap_or_default().to_string(),
        value: p.value().unwrap_or_default().to_string(),
        kind: p
            .r#type()
            .map(|t| t.as_str())
            .unwrap_or_default()
            .to_string(),
        version: p.version(),
    }
}

/// One GetParameters call, for at most ten names.
async fn get_parameters(
    clients: &Clients,
    names: Vec<String>,
) -> Result<Vec<ParameterView>, AwsError> {
    let out = clients
        .ssm
        .get_parameters()
        .set_names(Some(names))
        .send()
        .await
        .map_err(aws("SSM.GetParameters"))?;
    Ok(out.parameters().iter().map(view).collect())
}

/// GetParameters calls in flight at once: SSM's Get* calls share one
/// throughput quota per account and region.
const GET_CONCURRENCY: usize = 4;

/// Every parameter of ours under `prefix` with its value, read as a sweep
/// reads them: the metadata of all (50 a page), the values of the state
/// documents (ten a call), and of any other parameter only when its state
/// does not vouch for it (`vouched_for`).
pub async fn owned_parameters(
    clients: &Clients,
    prefix: &str,
    owner: &Owner,
) -> Result<Vec<ParameterView>, AwsError> {
    let metas = owned_parameter_metadata(clients, prefix, owner, None).await?;
    let state_names: Vec<String> = metas
        .iter()
        .filter(|m| is_state_name(prefix, &m.name))
        .map(|m| m.name.clone())
        .collect();
    let states = parameter_values(clients, &state_names).await?;
    let (mut params, unread) = vouched_for(prefix, &metas, &states);
    params.extend(parameter_values(clients, &unread).await?);
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// Split the parameters of `metas` (but the states, whose values are
/// `states`) into those whose value their cluster's state records, and the
/// names still to read. A state vouches for a parameter while it has the
/// version the state recorded and was not modified after the state was: a
/// parameter written since (by hand, by a concurrent run, deleted and made
/// again) is read.
pub fn vouched_for(
    prefix: &str,
    metas: &[ParameterMeta],
    states: &[ParameterView],
) -> (Vec<ParameterView>, Vec<String>) {
    let modified: std::collections::BTreeMap<&str, Option<f64>> = metas
        .iter()
        .map(|m| (m.name.as_str(), m.modified))
        .collect();
    let docs: std::collections::BTreeMap<ClusterId, (StateDoc, Option<f64>)> = states
        .iter()
        .filter_map(|p| {
            let path = parse_parameter_name(prefix, &p.name).filter(|n| n.leaf == PARAM_STATE)?;
            let doc = serde_json::from_str::<StateDoc>(&p.value).ok()?;
            let at = modified.get(p.name.as_str()).copied().flatten();
            Some((path.cluster, (doc, at)))
        })
        .collect();
    let mut known: Vec<ParameterView> = states.to_vec();
    let mut unread = Vec::new();
    for meta in metas.iter().filter(|m| !is_state_name(prefix, &m.name)) {
        let Some(path) = parse_parameter_name(prefix, &meta.name) else {
            unread.push(meta.name.clone());
            continue;
        };
        let record = docs.get(&path.cluster).and_then(|(doc, at)| {
            let recorded = doc.parameters.get(&path.leaf)?;
            let unchanged = recorded.version == meta.version && meta.version > 0;
            let before = matches!((meta.modified, at), (Some(m), Some(s)) if m <= *s);
            (unchanged && before).then(|| recorded.value.clone())
        });
        match record {
            Some(value) => known.push(ParameterView {
                name: meta.name.clone(),
                value,
                kind: meta.kind.clone(),
                version: meta.version,
            }),
            None => unread.push(meta.name.clone()),
        }
    }
    (known, unread)
}

/// Every parameter under `prefix`, recursively.
pub async fn parameters_recursive(
    clients: &Clients,
    prefix: &str,
) -> Result<Vec<ParameterView>, AwsError> {
    parameters_by_path(clients, prefix, true).await
}

pub(super) async fn parameters_by_path(
    clients: &Clients,
    path: &str,
    recursive: bool,
) -> Result<Vec<ParameterView>, AwsError> {
    let mut pages = clients
        .ssm
        .get_parameters_by_path()
        .path(path)
        .recursive(recursive)
        .into_paginator()
        .send();
    let mut params = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("SSM.GetParametersByPath"))?;
        params.extend(page.parameters().iter().map(view));
    }
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// The clusters recorded in `parameters` under `prefix` (by their state
/// documents), each named by where its record is.
pub fn recorded_states(prefix: &str, parameters: &[ParameterView]) -> Vec<(ClusterId, StateDoc)> {
    parameters
        .iter()
        .filter_map(|p| {
            let path = parse_parameter_name(prefix, &p.name)?;
            if path.leaf != PARAM_STATE {
                return None;
            }
            let doc = serde_json::from_str::<StateDoc>(&p.value).ok()?;
            Some((path.cluster, doc))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::Recorded;

    const ROOT: &str = "/eks-private-dns";
    const PREFIX: &str = "/eks-private-dns/demo/";

    fn meta(leaf: &str, version: i64, modified: Option<f64>) -> ParameterMeta {
        ParameterMeta {
            name: format!("{PREFIX}{leaf}"),
            kind: "String".into(),
            version,
            modified,
        }
    }

    /// The state of cluster demo, recording `records` (leaf, version, value).
    fn state(records: &[(&str, i64, &str)]) -> ParameterView {
        let doc = serde_json::json!({
            "schema": 1, "cluster": "demo", "cluster-arn": "arn:aws:eks:eu-west-1:111122223333:cluster/demo",
            "vpc-id": "vpc-1", "endpoint": "abc.eks.amazonaws.com", "inbound-endpoint-id": "rslvr-in-1",
            "outbound-endpoint-id": null, "rule-id": null, "associated-vpcs": [],
            "control-plane-security-group-id": "sg-1", "control-plane-rule-ids": [],
            "allowed-cidrs": [], "updated-at": "2026-12-01T00:00:00Z",
            "parameters": records.iter().map(|(leaf, version, value)| {
                (leaf.to_string(), serde_json::to_value(Recorded { version: *version, value: value.to_string() }).unwrap())
            }).collect::<serde_json::Map<_, _>>(),
        });
        ParameterView {
            name: format!("{PREFIX}state"),
            value: doc.to_string(),
            kind: "String".into(),
            version: 4,
        }
    }

    fn split(
        metas: &[ParameterMeta],
        states: &[ParameterView],
    ) -> (Vec<(String, String)>, Vec<String>) {
        let (known, unread) = vouched_for(ROOT, metas, states);
        (
            known
                .into_iter()
                .filter(|p| !p.name.ends_with("/state"))
                .map(|p| (p.name.rsplit('/').next().unwrap().to_string(), p.value))
                .collect(),
            unread
                .into_iter()
                .map(|n| n.rsplit('/').next().unwrap().to_string())
                .collect(),
        )
    }

    #[test]
    fn a_state_vouches_only_for_what_is_as_it_left_it() {
        let records = [
            ("endpoint", 1, "abc.eks.amazonaws.com"),
            ("inbound-ips", 2, "10.0.1.10,10.0.2.10"),
        ];
        let state_meta = meta("state", 4, Some(200.0));
        // (situation, endpoint's metadata, inbound-ips' metadata, known, unread)
        type Case<'a> = (
            &'a str,
            ParameterMeta,
            ParameterMeta,
            Vec<&'a str>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "as published",
                meta("endpoint", 1, Some(100.0)),
                meta("inbound-ips", 2, Some(199.5)),
                vec!["endpoint", "inbound-ips"],
                vec![],
            ),
            (
                "written in the same instant as the state",
                meta("endpoint", 1, Some(200.0)),
                meta("inbound-ips", 2, Some(150.0)),
                vec!["endpoint", "inbound-ips"],
                vec![],
            ),
            (
                "overwritten since (a new version)",
                meta("endpoint", 1, Some(100.0)),
                meta("inbound-ips", 3, Some(300.0)),
                vec!["endpoint"],
                vec!["inbound-ips"],
            ),
            (
                "deleted and made again (version 1 again, later)",
                meta("endpoint", 1, Some(250.0)),
                meta("inbound-ips", 2, Some(100.0)),
                vec!["inbound-ips"],
                vec!["endpoint"],
            ),
            (
                "no time given",
                meta("endpoint", 1, None),
                meta("inbound-ips", 2, Some(100.0)),
                vec!["inbound-ips"],
                vec!["endpoint"],
            ),
        ];
        for (situation, endpoint, ips, known, unread) in cases {
            let metas = vec![endpoint, ips, state_meta.clone()];
            let (got_known, got_unread) = split(&metas, &[state(&records)]);
            let names: Vec<&str> = got_known.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, known, "{situation}: known");
            assert_eq!(got_unread, unread, "{situation}: unread");
            for (leaf, value) in &got_known {
                let (_, _, recorded) = records.iter().find(|(l, _, _)| l == leaf).unwrap();
                assert_eq!(
                    value, recorded,
                    "{situation}: {leaf} takes the recorded value"
                );
            }
        }
    }

    #[test]
    fn without_a_record_every_value_is_read() {
        let metas = vec![
            meta("endpoint", 1, Some(100.0)),
            meta("inbound-ips", 1, Some(100.0)),
            meta("state", 1, Some(200.0)),
        ];
        // A state written before it recorded the versions.
        let (known, unread) = split(&metas, &[state(&[])]);
        assert!(known.is_empty());
        assert_eq!(unread, vec!["endpoint", "inbound-ips"]);
        // No state at all (a crash before it was written), or one that
        // does not parse.
        assert_eq!(split(&metas[..2], &[]).1, vec!["endpoint", "inbound-ips"]);
        let mut broken = state(&[("endpoint", 1, "x")]);
        broken.value = "{".into();
        assert_eq!(split(&metas, &[broken]).1, vec!["endpoint", "inbound-ips"]);
        // A state keeps its own value.
        let (all, _) = vouched_for(ROOT, &metas, &[state(&[])]);
        assert_eq!(all.len(), 1);
        assert!(all[0].name.ends_with("/state"));
    }
}
