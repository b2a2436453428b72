//! One interface for the reads of a cluster's look, with two backends,
//! chosen once per look: `Live` asks AWS; `FromFleet` answers from what a
//! sweep read for every account first (`Fleet`, with its `Prefetched`
//! part) and asks AWS only for what that does not hold. The rounds of
//! `observe_cluster` read through it and never ask which it is. Every read
//! names the account it reads in.

use std::collections::{BTreeMap, BTreeSet};

use crate::accounts::{Accounts, ClientsRef};
use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::owner::Owner;
use crate::ssm::cluster_folder;

use super::*;

/// Where and as whom a look reads: the clients of each account, the
/// configuration, the owner whose resources are ours, and which accounts
/// the deployment serves.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub accounts: Accounts<'a>,
    pub config: &'a Config,
    pub owner: &'a Owner,
    /// The deployment's own account id, when known.
    pub home_id: Option<&'a str>,
    /// The accounts served besides the deployment's own.
    pub served: &'a BTreeSet<String>,
}

impl<'a> Scope<'a> {
    /// The deployment's own clients (where the rules, the outbound
    /// endpoint and the parameters are).
    pub fn home(&self) -> &'a Clients {
        self.accounts.home()
    }

    /// The clients of `account`.
    pub async fn clients(&self, account: &Account) -> Result<ClientsRef<'a>, AwsError> {
        self.accounts.get(account).await
    }

    /// A failure of a call made in `account`, said so.
    pub fn in_account(&self, account: &Account) -> impl Fn(AwsError) -> AwsError + '_ {
        let who = self.accounts.describe(account);
        move |e| e.in_account(who.clone())
    }
}

/// What a look reads. Every method is one read of a round (a few calls at
/// most, concurrent with the round's others).
// The futures are awaited where they are made (a reconcile is never
// spawned onto another thread), so nothing needs them to be Send.
#[allow(async_fn_in_trait)]
pub trait Reader {
    /// Where and as whom it reads.
    fn scope(&self) -> Scope<'_>;

    /// The cluster (DescribeCluster, in its account); None when it does
    /// not exist.
    async fn cluster(&self, cluster: &ClusterId) -> Result<Option<ClusterView>, AwsError>;

    /// The Resolver state of `account` (its rules only for the
    /// deployment's own) and our security groups there.
    async fn region(
        &self,
        account: &Account,
    ) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError>;

    /// The parameters of one cluster (its folder under the prefix).
    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError>;

    /// The security group rules a look needs, in `account`: those on
    /// `groups`, and every rule on our groups (`ours`, of the cluster VPC
    /// `vpc`) and every rule that carries our owner tag, as far as the
    /// backend reads them at no extra cost.
    async fn group_rules(
        &self,
        account: &Account,
        ours: &[SecurityGroupView],
        vpc: Option<&str>,
        groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError>;

    /// The other clusters recorded as using the inbound endpoint of `vpc`.
    async fn registrations(
        &self,
        vpc: &VpcRef,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError>;

    /// Security groups of `account` by id (a cluster's additional groups).
    async fn groups(
        &self,
        account: &Account,
        ids: &[String],
    ) -> Result<Vec<SecurityGroupView>, AwsError>;

    /// VPCs, each described in its account.
    async fn vpcs(&self, vpcs: &[VpcRef]) -> Result<Vec<VpcView>, AwsError>;
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

    async fn cluster(&self, cluster: &ClusterId) -> Result<Option<ClusterView>, AwsError> {
        let account = &cluster.account;
        let clients = self.scope.clients(account).await?;
        describe_cluster(&clients, &cluster.name)
            .await
            .map_err(self.scope.in_account(account))
    }

    async fn region(
        &self,
        account: &Account,
    ) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError> {
        let clients = self.scope.clients(account).await?;
        tokio::try_join!(
            resolver_state(&clients),
            our_security_groups(&clients, self.scope.owner)
        )
        .map_err(self.scope.in_account(account))
    }

    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError> {
        let folder = cluster_folder(&self.scope.config.ssm_prefix, cluster);
        parameters_under(self.scope.home(), &folder).await
    }

    /// One call by group id: our rules are on our groups and on cluster
    /// groups only, so the rules on all our groups and on `groups` are
    /// every rule of ours this look needs.
    async fn group_rules(
        &self,
        account: &Account,
        ours: &[SecurityGroupView],
        _vpc: Option<&str>,
        mut groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
        groups.extend(
            ours.iter()
                .filter(|g| &g.account == account)
                .map(|g| g.id.clone()),
        );
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let clients = self.scope.clients(account).await?;
        security_group_rules(&clients, vec![filter("group-id", groups)])
            .await
            .map_err(self.scope.in_account(account))
    }

    async fn registrations(
        &self,
        vpc: &VpcRef,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError> {
        registrations(self.scope, vpc, except).await
    }

    async fn groups(
        &self,
        account: &Account,
        ids: &[String],
    ) -> Result<Vec<SecurityGroupView>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let clients = self.scope.clients(account).await?;
        security_groups(&clients, filter("group-id", ids.to_vec()))
            .await
            .map_err(self.scope.in_account(account))
    }

    async fn vpcs(&self, vpcs: &[VpcRef]) -> Result<Vec<VpcView>, AwsError> {
        let mut by_account: BTreeMap<&Account, Vec<String>> = BTreeMap::new();
        for vpc in vpcs {
            by_account
                .entry(&vpc.account)
                .or_default()
                .push(vpc.id.clone());
        }
        let reads = by_account.into_iter().map(|(account, ids)| async move {
            let clients = self.scope.clients(account).await?;
            describe_vpcs(&clients, &ids)
                .await
                .map_err(self.scope.in_account(account))
        });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
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

    async fn cluster(&self, cluster: &ClusterId) -> Result<Option<ClusterView>, AwsError> {
        match self.prefetched().and_then(|p| p.clusters.get(cluster)) {
            Some(found) => Ok(found.clone()),
            None => self.live.cluster(cluster).await,
        }
    }

    async fn region(
        &self,
        account: &Account,
    ) -> Result<(ResolverState, Vec<SecurityGroupView>), AwsError> {
        match self.fleet.accounts.get(account) {
            Some(read) => Ok((read.resolver.clone(), read.security_groups.clone())),
            None => self.live.region(account).await,
        }
    }

    async fn parameters(&self, cluster: &ClusterId) -> Result<Vec<ParameterView>, AwsError> {
        let prefix = &self.live.scope.config.ssm_prefix;
        Ok(self
            .fleet
            .parameters
            .iter()
            .filter(|p| {
                crate::ssm::parse_parameter_name(prefix, &p.name)
                    .is_some_and(|n| n.cluster == *cluster)
            })
            .cloned()
            .collect())
    }

    /// Every rule of ours in the account (read for the fleet), and the
    /// rules on `groups` and on our groups of the cluster VPC: from the
    /// prefetch when it read them all, else read now.
    async fn group_rules(
        &self,
        account: &Account,
        ours: &[SecurityGroupView],
        vpc: Option<&str>,
        mut groups: BTreeSet<String>,
    ) -> Result<Vec<SecurityGroupRuleView>, AwsError> {
        let Some(read) = self.fleet.accounts.get(account) else {
            return self.live.group_rules(account, ours, vpc, groups).await;
        };
        groups.extend(
            ours.iter()
                .filter(|g| &g.account == account && Some(g.vpc_id.as_str()) == vpc)
                .map(|g| g.id.clone()),
        );
        let mut all = read.owned_rules.clone();
        if groups.is_empty() {
            return Ok(all);
        }
        let prefetched = self
            .prefetched()
            .and_then(|p| p.rule_groups.get(account))
            .filter(|read| groups.is_subset(&read.0));
        let on_groups = match prefetched {
            Some((_, rules)) => rules
                .iter()
                .filter(|r| groups.contains(&r.group_id))
                .cloned()
                .collect(),
            None => {
                let clients = self.live.scope.clients(account).await?;
                security_group_rules(&clients, vec![filter("group-id", groups)])
                    .await
                    .map_err(self.live.scope.in_account(account))?
            }
        };
        let seen: BTreeSet<String> = all.iter().map(|r| r.id.clone()).collect();
        all.extend(on_groups.into_iter().filter(|r| !seen.contains(&r.id)));
        Ok(all)
    }

    async fn registrations(
        &self,
        vpc: &VpcRef,
        except: &ClusterId,
    ) -> Result<Vec<Registration>, AwsError> {
        let prefix = &self.live.scope.config.ssm_prefix;
        Ok(registrations_in(
            recorded_states(prefix, &self.fleet.parameters),
            vpc,
            except,
        ))
    }

    async fn groups(
        &self,
        account: &Account,
        ids: &[String],
    ) -> Result<Vec<SecurityGroupView>, AwsError> {
        let known = |p: &&Prefetched| {
            ids.iter().all(|id| {
                p.cluster_groups
                    .iter()
                    .any(|g| &g.id == id && &g.account == account)
            })
        };
        match self.prefetched().filter(known) {
            Some(p) => Ok(p
                .cluster_groups
                .iter()
                .filter(|g| ids.contains(&g.id) && &g.account == account)
                .cloned()
                .collect()),
            None => self.live.groups(account, ids).await,
        }
    }

    /// Those the sweep prefetched, the others read.
    async fn vpcs(&self, vpcs: &[VpcRef]) -> Result<Vec<VpcView>, AwsError> {
        let known: Option<&BTreeMap<VpcRef, VpcView>> = self.prefetched().map(|p| &p.vpcs);
        let missing: Vec<VpcRef> = vpcs
            .iter()
            .filter(|v| !known.is_some_and(|k| k.contains_key(*v)))
            .cloned()
            .collect();
        let mut found = self.live.vpcs(&missing).await?;
        if let Some(known) = known {
            found.extend(vpcs.iter().filter_map(|v| known.get(v)).cloned());
        }
        Ok(found)
    }
}
