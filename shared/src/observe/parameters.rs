//! SSM: our parameters under the prefix, the clusters recorded in them.

use std::collections::BTreeSet;

use aws_sdk_ssm::types::ParameterStringFilter;

use crate::aws::{aws, AwsError, Clients};
use crate::config::Config;
use crate::owner::{Owner, TAG_OWNER, TAG_VPC};
use crate::ssm::{parameter_name, PARAM_STATE};

use super::*;

/// The parameters directly under `path`.
pub async fn parameters_under(
    clients: &Clients,
    path: &str,
) -> Result<Vec<ParameterView>, AwsError> {
    parameters_by_path(clients, path, false).await
}

/// Other clusters recorded (by their state parameter) as using the inbound
/// endpoint of `vpc_id`.
pub async fn registrations(
    clients: &Clients,
    config: &Config,
    owner: &Owner,
    vpc_id: &str,
    except_cluster: &str,
) -> Result<Vec<Registration>, AwsError> {
    let tagged =
        owned_parameter_names(clients, &config.ssm_prefix, owner, Some((TAG_VPC, vpc_id))).await?;
    let own_state = parameter_name(&config.ssm_prefix, except_cluster, PARAM_STATE);
    let names: Vec<String> = tagged
        .into_iter()
        .filter(|name| name.ends_with(&format!("/{PARAM_STATE}")) && *name != own_state)
        .collect();
    let mut docs = Vec::new();
    for chunk in names.chunks(10) {
        let out = clients
            .ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws("SSM.GetParameters"))?;
        docs.extend(
            out.parameters()
                .iter()
                .filter_map(|p| p.value())
                .filter_map(|v| serde_json::from_str::<StateDoc>(v).ok()),
        );
    }
    Ok(registrations_in(docs, vpc_id, except_cluster))
}

/// The clusters other than `except` that `docs` record in `vpc`, by name.
pub(super) fn registrations_in(
    docs: impl IntoIterator<Item = StateDoc>,
    vpc: &str,
    except: &str,
) -> Vec<Registration> {
    let mut found: Vec<Registration> = docs
        .into_iter()
        .filter(|doc| doc.vpc_id == vpc && doc.cluster != except)
        .map(|doc| Registration {
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
    let mut names = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("SSM.DescribeParameters"))?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .map(str::to_string),
        );
    }
    Ok(names)
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
        for p in page.parameters() {
            params.push(ParameterView {
                name: p.name().unwrap_or_default().to_string(),
                value: p.value().unwrap_or_default().to_string(),
                kind: p
                    .r#type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
                version: p.version(),
            });
        }
    }
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// The clusters recorded in `parameters` (by their state documents).
pub fn recorded_states(parameters: &[ParameterView]) -> Vec<StateDoc> {
    parameters
        .iter()
        .filter(|p| p.name.ends_with(&format!("/{PARAM_STATE}")))
        .filter_map(|p| serde_json::from_str::<StateDoc>(&p.value).ok())
        .collect()
}
