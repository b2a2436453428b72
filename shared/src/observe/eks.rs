//! EKS: the cluster as DescribeCluster gives it.

use crate::aws::{AwsError, Clients};
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
    Ok(Some(cluster_view(c)))
}

pub fn cluster_view(c: &aws_sdk_eks::types::Cluster) -> ClusterView {
    let vpc = c.resources_vpc_config();
    ClusterView {
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
    }
}
