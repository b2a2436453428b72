//! One interface for the reads of a cluster's look, with two backends,
//! chosen once per look: `Live` asks AWS; `Prefetched` answers from what a
//! sweep read for the whole region first (`Fleet`, with its `Prefetched`
//! part) and asks AWS only for what that does not hold. The rounds of
//! `observe_cluster` read through it and never ask which it is.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::AwsError;
use crate::ssm::{cluster_folder, parse_parameter_name};

use super::*;

/// What a look reads. Every method is one read of a round (a few calls at
/// most, concurrent with the round's others).
// The futures are awaited where they are made (a reconcile is never
// spawned onto another thread), so nothing needs them to be Send.
#[allow(async_fn_in_trait)]
pub trait Reader {
    /// Where and as whom it reads.
    fn scope(&self) -> Scope<'_>;

    /// The cluster (DescribeCluster); None when it does not exist.
    async fn cluster(&self, name: &str) -> Result<Option<ClusterView>, AwsError>;

    /// The region's Resolver state and our security groups.
    async fn region(&self) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError>;

    /// The parameters of one cluster (its folder under the prefix).
    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError>;

    /// The security group rules a look needs: those on `groups`, and every
    /// rule on our groups (`ours`, of the cluster VPC `vpc`) and every rule
    /// that carries our owner tag, as far as the backend reads them at no
    /// extra cost.
    async fn group_rules(
        &self,
        ours: &[SecurityGroupView],
        vpc: Option<&str>,
        groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError>;

    /// The other clusters recorded as using the inbound endpoint of `vpc`.
    async fn registrations(
        &self,
        vpc: &str,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError>;

    /// Security groups by id (a cluster's additional groups).
    async fn groups(&self, ids: &[String]) -> Result<Vec<SecurityGroupView>, AwsError>;

    /// VPCs by id.
    async fn vpcs(&self, ids: &[String]) -> Result<Vec<VpcView>, AwsError>;
}

/// Reads AWS.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub scope: Scope<'a>,
}

impl Reader for Live<'_> {
    fn scope(&self) -> Scope<'_> {
        self.scope
    }

    async fn cluster(&self, name: &str) -> Result<Option<ClusterView>, AwsError> {
        describe_cluster(self.scope.clients, name).await
    }

    async fn region(&self) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError> {
        let Scope { clients, owner, .. } = self.scope;
        tokio::try_join!(resolver_state(clients), our_security_groups(clients, owner))
    }

    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError> {
        let folder = cluster_folder(&self.scope.config.ssm_prefix, cluster);
        parameters_under(self.scope.clients, &folder).await
    }

    /// One call by group id: our rules are on our groups and on cluster
    /// groups only, so the rules on all our groups and on `groups` are
    /// every rule of ours this look needs.
    async fn group_rules(
        &self,
        ours: &[SecurityGroupView],
        _vpc: Option<&str>,
        mut groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
        groups.extend(ours.iter().map(|g| g.id.clone()));
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        security_group_rules(self.scope.clients, vec![filter("group-id", groups)]).await
    }

    async fn registrations(
        &self,
        vpc: &str,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError> {
        registrations(self.scope, vpc, except).await
    }

    async fn groups(&self, ids: &[String]) -> Result<Vec<SecurityGroupView>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        security_groups(self.scope.clients, filter("group-id", ids.to_vec())).await
    }

    async fn vpcs(&self, ids: &[String]) -> Result<Vec<VpcView>, AwsError> {
        describe_vpcs(self.scope.clients, ids).await
    }
}

/// Answers from a sweep's fleet read, and reads AWS for what it lacks.
#[derive(Clone, Copy)]
pub struct FromFleet<'a> {
    pub live: Live<'a>,
    pub fleet: &'a Fleet,
}

impl FromFleet<'_> {
    fn prefetched(&self) -> Option<&Prefetched> {
        self.fleet.prefetched.as_ref()
    }
}

impl Reader for FromFleet<'_> {
    fn scope(&self) -> Scope<'_> {
        self.live.scope
    }

    async fn cluster(&self, name: &str) -> Result<Option<ClusterView>, AwsError> {
        match self.prefetched().and_then(|p| p.clusters.get(name)) {
            Some(cluster) => Ok(cluster.clone()),
            None => self.live.cluster(name).await,
        }
    }

    async fn region(&self) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError> {
        Ok((
            self.fleet.resolver.clone(),
            self.fleet.security_groups.clone(),
        ))
    }

    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError> {
        let prefix = &self.live.scope.config.ssm_prefix;
        Ok(self
            .fleet
            .parameters
            .iter()
            .filter(|p| {
                parse_parameter_name(prefix, &p.name).is_some_and(|n| n.cluster == *cluster)
            })
            .cloned()
            .collect())
    }

    /// Every rule of ours (read for the fleet), and the rules on `groups`
    /// and on our groups of the cluster VPC: from the prefetch when it read
    /// them all, else read now.
    async fn group_rules(
        &self,
        ours: &[SecurityGroupView],
        vpc: Option<&str>,
        mut groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
        groups.extend(
            ours.iter()
                .filter(|g| Some(g.vpc_id.as_str()) == vpc)
                .map(|g| g.id.clone()),
        );
        let mut all = self.fleet.owned_rules.clone();
        if groups.is_empty() {
            return Ok(all);
        }
        let on_groups = match self
            .prefetched()
            .filter(|p| groups.is_subset(&p.rule_groups))
        {
            Some(p) => p
                .rules
                .iter()
                .filter(|r| groups.contains(&r.group_id))
                .cloned()
                .collect(),
            None => {
                security_group_rules(self.live.scope.clients, vec![filter("group-id", groups)])
                    .await?
            }
        };
        let seen: BTreeSet<String> = all.iter().map(|r| r.id.clone()).collect();
        all.extend(on_groups.into_iter().filter(|r| !seen.contains(&r.id)));
        Ok(all)
    }

    async fn registrations(
        &self,
        vpc: &str,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError> {
        let prefix = &self.live.scope.config.ssm_prefix;
        Ok(registrations_in(
            recorded_states(prefix, &self.fleet.parameters),
            vpc,
            &except.name,
        ))
    }

    async fn groups(&self, ids: &[String]) -> Result<Vec<SecurityGroupView>, AwsError> {
        match self.prefetched().filter(|p| {
            ids.iter()
                .all(|id| p.cluster_groups.iter().any(|g| &g.id == id))
        }) {
            Some(p) => Ok(p
                .cluster_groups
                .iter()
                .filter(|g| ids.contains(&g.id))
                .cloned()
                .collect()),
            None => self.live.groups(ids).await,
        }
    }

    /// Those the sweep prefetched from it, the others read.
    async fn vpcs(&self, ids: &[String]) -> Result<Vec<VpcView>, AwsError> {
        let known: Option<&BTreeMap<String, VpcView>> = self.prefetched().map(|p| &p.vpcs);
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !known.is_some_and(|k| k.contains_key(*id)))
            .cloned()
            .collect();
        let mut vpcs = self.live.vpcs(&missing).await?;
        if let Some(known) = known {
            vpcs.extend(ids.iter().filter_map(|id| known.get(id)).cloned());
        }
        Ok(vpcs)
    }
}
