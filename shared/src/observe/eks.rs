//! EKS: the cluster as DescribeCluster gives it.

use crate::aws::{aws, AwsError, Clients};
use crate::model::*;

use super::*;

/// DescribeCluster. Ok(None) when the cluster does not exist.
pub async fn describe_cluster(
    clients: &Clients,
    name: &str,
) -> Result<Option<ClusterView>, AwsError> {
    let out = match clients.eks.describe_cluster().name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .map(|s| s.is_resource_not_found_exception())
                .unwrap_or(false) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::from_sdk("EKS.DescribeCluster", e)),
    };
    let Some(c) = out.cluster() else {
        return Ok(None);
    };
    let mut view = cluster_view(&clients.account, c);
    if view.status == ClusterStatus::Updating {
        view.access_update = access_update(clients, name).await?;
    }
    Ok(Some(view))
}

pub fn cluster_view(account: &Account, c: &aws_sdk_eks::types::Cluster) -> ClusterView {
    let vpc = c.resources_vpc_config();
    ClusterView {
        account: account.clone(),
        name: c.name().unwrap_or_default().to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        status: ClusterStatus::parse(c.status().map(|s| s.as_str()).unwrap_or("UNKNOWN")),
        endpoint_host: c.endpoint().and_then(endpoint_host),
        vpc_id: vpc.and_then(|v| v.vpc_id()).map(str::to_string),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        cluster_security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        public_access: vpc.map(|v| v.endpoint_public_access()).unwrap_or(false),
        private_access: vpc.map(|v| v.endpoint_private_access()).unwrap_or(false),
        ipv6: c
            .kubernetes_network_config()
            .and_then(|k| k.ip_family())
            .map(|f| f.as_str() == "ipv6")
            .unwrap_or(false),
        tags: c
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        access_update: None,
    }
}

/// How many updates at each end of a cluster's list are looked at for the
/// one in progress (EKS runs one at a time, and it is the newest; the API
/// reference does not say which end of the list that is).
const UPDATES_LOOKED_AT: usize = 3;

/// The endpoint access that the update in progress of an UPDATING cluster
/// sets (ListUpdates, then DescribeUpdate from either end), or None. Without
/// the permission (a role from before it was asked for) it is None: the
/// cluster then waits for its update like any other.
pub async fn access_update(
    clients: &Clients,
    name: &str,
) -> Result<Option<AccessUpdate>, AwsError> {
    let listed = clients
        .eks
        .list_updates()
        .name(name)
        .send()
        .await
        .map_err(aws("EKS.ListUpdates"));
    let ids = match listed {
        Ok(out) => out.update_ids().to_vec(),
        Err(e) if e.is_access_denied() => {
            tracing::warn!(cluster = name, error = %e, "cannot read the cluster's update");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut candidates: Vec<&String> = ids.iter().rev().take(UPDATES_LOOKED_AT).collect();
    for id in ids.iter().take(UPDATES_LOOKED_AT) {
        if !candidates.contains(&id) {
            candidates.push(id);
        }
    }
    for id in candidates {
        let out = clients
            .eks
            .describe_update()
            .name(name)
            .update_id(id)
            .send()
            .await
            .map_err(aws("EKS.DescribeUpdate"))?;
        let Some(update) = out.update() else {
            continue;
        };
        if update.status().map(|s| s.as_str()) != Some("InProgress") {
            continue;
        }
        let flag = |kind: &str| {
            update
                .params()
                .iter()
                .find(|p| p.r#type().map(|t| t.as_str()) == Some(kind))
                .and_then(|p| p.value())
                .and_then(|v| v.parse::<bool>().ok())
        };
        let access = AccessUpdate {
            private: flag("EndpointPrivateAccess"),
            public: flag("EndpointPublicAccess"),
        };
        return Ok((access != AccessUpdate::default()).then_some(access));
    }
    Ok(None)
}
