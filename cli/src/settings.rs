//! The CLI's settings: each variable's flag (which clap also reads from
//! the environment), layered over the deployment's published settings.

use anyhow::{anyhow, Result};
use clap::Args;

use shared::aws::Clients;
use shared::config::{self, Config, Mode};
use shared::reconcile::{Reconciler, Role};

use crate::*;

#[derive(Args)]
pub(crate) struct Settings {
    /// Comma-separated VPC ids that must resolve the cluster names.
    #[arg(long, global = true, env = config::ENV_CLIENT_VPC_IDS, hide_env_values = true)]
    client_vpc_ids: Option<String>,
    /// Comma-separated on-premises CIDRs allowed on 53 and 443.
    #[arg(long, global = true, env = config::ENV_ONPREM_CIDRS, hide_env_values = true)]
    onprem_cidrs: Option<String>,
    /// Also treat VPCs peered with the cluster VPC as client VPCs (true/false).
    #[arg(long, global = true, env = config::ENV_DISCOVER_PEERED_VPCS, hide_env_values = true)]
    discover_peered_vpcs: Option<String>,
    /// Use this existing outbound Resolver endpoint; never create or delete one.
    #[arg(long, global = true, env = config::ENV_OUTBOUND_ENDPOINT_ID, hide_env_values = true)]
    outbound_endpoint_id: Option<String>,
    /// Where to create the shared outbound endpoint.
    #[arg(long, global = true, env = config::ENV_OUTBOUND_VPC_ID, hide_env_values = true)]
    outbound_vpc_id: Option<String>,
    /// private-only or private-access.
    #[arg(long, global = true, env = config::ENV_TRIGGER, hide_env_values = true)]
    trigger: Option<String>,
    /// SSM parameter path prefix.
    #[arg(long, global = true, env = config::ENV_SSM_PREFIX, hide_env_values = true)]
    ssm_prefix: Option<String>,
    /// Owner id written in ownership tags.
    #[arg(long, global = true, env = config::ENV_OWNER, hide_env_values = true)]
    owner: Option<String>,
    /// IPs per inbound endpoint, 2 to 6.
    #[arg(long, global = true, env = config::ENV_INBOUND_IPS, hide_env_values = true)]
    inbound_ips: Option<String>,
    /// Allow 0.0.0.0/0 or ::/0 among the CIDRs (true/false).
    #[arg(long, global = true, env = config::ENV_ALLOW_WORLD, hide_env_values = true)]
    allow_world: Option<String>,
    /// Allow CIDRs that cover public address space (true/false).
    #[arg(long, global = true, env = config::ENV_ALLOW_PUBLIC_CIDRS, hide_env_values = true)]
    allow_public_cidrs: Option<String>,
    /// Comma-separated CIDRs inside which cluster tags' CIDRs must lie
    /// (default: the private ranges).
    #[arg(long, global = true, env = config::ENV_TAG_CIDR_ENVELOPE, hide_env_values = true)]
    tag_cidr_envelope: Option<String>,
    /// Where the 443 rules go: cluster (the EKS-made cluster security
    /// group) or tagged (the cluster's additional group tagged
    /// eks-private-dns:api-rules=<owner>).
    #[arg(long, global = true, env = config::ENV_API_RULES_GROUP, hide_env_values = true)]
    api_rules_group: Option<String>,
    /// Route 53 Resolver requests per second (default 4).
    #[arg(long, global = true, env = config::ENV_RESOLVER_RATE, hide_env_values = true)]
    resolver_rate: Option<String>,
    /// Clusters a sweep reconciles at once (default 4).
    #[arg(long, global = true, env = config::ENV_SWEEP_CONCURRENCY, hide_env_values = true)]
    sweep_concurrency: Option<String>,
    /// apply, or plan (observe and report, change nothing); the commands
    /// plan and status never change anything whatever this says.
    #[arg(long, global = true, env = config::ENV_MODE, hide_env_values = true)]
    mode: Option<String>,
}

impl Settings {
    /// The value given for variable `name` (its flag, or the environment).
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        let v = match name {
            config::ENV_CLIENT_VPC_IDS => &self.client_vpc_ids,
            config::ENV_ONPREM_CIDRS => &self.onprem_cidrs,
            config::ENV_DISCOVER_PEERED_VPCS => &self.discover_peered_vpcs,
            config::ENV_OUTBOUND_ENDPOINT_ID => &self.outbound_endpoint_id,
            config::ENV_OUTBOUND_VPC_ID => &self.outbound_vpc_id,
            config::ENV_TRIGGER => &self.trigger,
            config::ENV_SSM_PREFIX => &self.ssm_prefix,
            config::ENV_OWNER => &self.owner,
            config::ENV_INBOUND_IPS => &self.inbound_ips,
            config::ENV_ALLOW_WORLD => &self.allow_world,
            config::ENV_ALLOW_PUBLIC_CIDRS => &self.allow_public_cidrs,
            config::ENV_TAG_CIDR_ENVELOPE => &self.tag_cidr_envelope,
            config::ENV_API_RULES_GROUP => &self.api_rules_group,
            config::ENV_MODE => &self.mode,
            config::ENV_RESOLVER_RATE => &self.resolver_rate,
            config::ENV_SWEEP_CONCURRENCY => &self.sweep_concurrency,
            _ => return None,
        };
        v.clone()
    }

    /// The given values alone, over the defaults.
    pub(crate) fn config(&self) -> Result<Config> {
        Config::from_lookup(|name| self.value(name))
            .map_err(|e| anyhow!("invalid configuration: {e}"))
    }
}

/// The reconciler of a CLI run: the deployment's published settings, with
/// the given ones (flags, environment) over them, and where each came from.
/// The given prefix and owner (or the defaults) find the published ones.
pub(crate) async fn reconciler_and_settings(
    cli: &Cli,
    mode: Mode,
) -> Result<(Reconciler, Vec<shared::settings::Setting>)> {
    let given = cli.settings.config()?;
    let mut clients = Clients::from_env(cli.region.clone(), given.resolver_rate)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    let owner = shared::owner::Owner::new(&given.owner);
    let published = shared::settings::load(&clients, &given.ssm_prefix, &owner)
        .await
        .map_err(|e| {
            anyhow!(
                "cannot read the deployment's settings at {}: {e}",
                shared::settings::parameter_name(&given.ssm_prefix)
            )
        })?;
    let (mut config, sources) =
        shared::settings::layered(|name| cli.settings.value(name), published.as_ref())
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
    if mode == Mode::Plan {
        config.mode = Mode::Plan;
    }
    if config.resolver_rate != given.resolver_rate {
        clients = Clients::from_env(cli.region.clone(), config.resolver_rate)
            .await
            .map_err(|e| anyhow!("{}", e.message))?;
    }
    let mut rec = Reconciler::new(clients, config);
    rec.role = Role::Operator { force: cli.force };
    rec.deployment_digest = published.map(|p| p.digest);
    Ok((rec, sources))
}

pub(crate) async fn reconciler(cli: &Cli, mode: Mode) -> Result<Reconciler> {
    Ok(reconciler_and_settings(cli, mode).await?.0)
}
