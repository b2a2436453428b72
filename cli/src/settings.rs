//! The CLI's settings: each variable's flag (which clap also reads from
//! the environment), layered over the deployment's published settings.

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

use shared::aws::Clients;
use shared::config::{self, Config, Mode};
use shared::reconcile::{Reconciler, Role};

use crate::*;

/// The values given by flag or environment, one per variable of
/// `config::VARIABLES` (whose table makes the flags).
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    given: BTreeMap<&'static str, String>,
}

impl FromArgMatches for Settings {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut settings = Settings::default();
        settings.update_from_arg_matches(matches)?;
        Ok(settings)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for v in config::VARIABLES {
            if let Some(value) = matches.get_one::<String>(v.flag) {
                self.given.insert(v.name, value.clone());
            }
        }
        Ok(())
    }
}

impl Args for Settings {
    fn augment_args(cmd: Command) -> Command {
        config::VARIABLES.iter().fold(cmd, |cmd, v| {
            cmd.arg(
                Arg::new(v.flag)
                    .long(v.flag)
                    .env(v.name)
                    .hide_env_values(true)
                    .global(true)
                    .value_name(v.name.trim_start_matches("EKS_PRIVATE_DNS_"))
                    .help(format!(
                        "{} [default: {}]",
                        v.help.trim_end_matches('.'),
                        v.default
                    )),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Settings::augment_args(cmd)
    }
}

impl Settings {
    /// The value given for variable `name` (its flag, or the environment).
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        self.given.get(name).cloned()
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
    reconciler_in(cli, mode, cli.region.first().cloned()).await
}

/// `reconciler_and_settings` in `region` (None: the configuration chain's).
pub(crate) async fn reconciler_in(
    cli: &Cli,
    mode: Mode,
    region: Option<String>,
) -> Result<(Reconciler, Vec<shared::settings::Setting>)> {
    let given = cli.settings.config()?;
    // The roots are this machine's choice (flag, environment or auto),
    // never the deployment's: its Lambdas run elsewhere.
    let mut clients = Clients::from_env(region.clone(), given.resolver_rate, given.tls_roots)
        .await
        .map_err(|e| anyhow!("{e}"))?;
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
    config.tls_roots = given.tls_roots;
    if config.resolver_rate != given.resolver_rate {
        clients = Clients::from_env(region.clone(), config.resolver_rate, given.tls_roots)
            .await
            .map_err(|e| anyhow!("{e}"))?;
    }
    let mut rec = Reconciler::new(clients, config);
    rec.role = Role::Operator { force: cli.force };
    rec.deployment_digest = published.map(|p| p.digest);
    Ok((rec, sources))
}

pub(crate) async fn reconciler(cli: &Cli, mode: Mode) -> Result<Reconciler> {
    Ok(reconciler_and_settings(cli, mode).await?.0)
}
