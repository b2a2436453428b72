//! The deployment's settings, known wherever we run.
//!
//! The sweep Lambda publishes its effective settings (every
//! EKS_PRIVATE_DNS_* value, the owner id among them) as one parameter of
//! ours under the prefix, written only when they change. The CLI loads them
//! by default, and a flag or the environment overrides single values
//! (`Layered`), so that an operator's shell without the deployment's
//! settings plans what the deployment would do, not a teardown. Every state
//! document records the digest of the settings it was made with; a CLI run
//! whose digest differs takes nothing away (`plan::hold_back`) unless
//! forced.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Clients};
use crate::config::{Config, ConfigError};
use crate::model::ParameterView;
use crate::owner::Owner;

pub const SETTINGS_SCHEMA: u32 = 1;

/// The parameter that holds the deployment's settings: a name no cluster
/// can have (`ssm::settings_name`).
pub fn parameter_name(prefix: &str) -> String {
    crate::ssm::settings_name(prefix)
}

/// What the parameter says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Published {
    pub schema: u32,
    /// `Config::digest` of these settings.
    pub digest: String,
    /// Variable -> value, as the environment would give it (empty: unset).
    pub settings: BTreeMap<String, String>,
}

impl Published {
    pub fn of(config: &Config) -> Published {
        Published {
            schema: SETTINGS_SCHEMA,
            digest: config.digest(),
            settings: config.to_settings(),
        }
    }

    /// The published document among `parameters` (a fleet's), if any and
    /// readable.
    pub fn find(prefix: &str, parameters: &[ParameterView]) -> Option<Published> {
        let name = parameter_name(prefix);
        parameters
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| serde_json::from_str(&p.value).ok())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A flag, or the variable in the environment.
    Given,
    /// The deployment's published settings.
    Published,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Given => "flag or environment",
            Source::Published => "published by the deployment",
            Source::Default => "default",
        }
    }
}

/// One setting of a layered configuration, for `plan` to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub variable: String,
    pub value: String,
    pub source: Source,
}

/// A configuration from given values over published ones over defaults,
/// and where each value came from.
pub fn layered(
    given: impl Fn(&str) -> Option<String>,
    published: Option<&Published>,
) -> Result<(Config, Vec<Setting>), ConfigError> {
    let given = |name: &str| given(name).filter(|v| !v.trim().is_empty());
    let from_published = |name: &str| {
        published
            .and_then(|p| p.settings.get(name))
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    let config = Config::from_lookup(|name| given(name).or_else(|| from_published(name)))?;
    let effective = config.to_settings();
    let sources = crate::config::variable_names()
        .map(|name| Setting {
            variable: name.to_string(),
            value: effective.get(name).cloned().unwrap_or_default(),
            source: if given(name).is_some() {
                Source::Given
            } else if from_published(name).is_some() {
                Source::Published
            } else {
                Source::Default
            },
        })
        .collect();
    Ok((config, sources))
}

/// Read the published settings: the parameter, if it carries our owner tag
/// (a parameter anyone else wrote there is not the deployment's). None when
/// there is none, or it may not be read (an on-premises host's policy need
/// not allow it): the settings then are the given ones and the defaults,
/// and a run that differs from what the plumbing was made with takes
/// nothing away.
pub async fn load(
    clients: &Clients,
    prefix: &str,
    owner: &Owner,
) -> Result<Option<Published>, AwsError> {
    let name = parameter_name(prefix);
    let folder = name.rsplit_once('/').map(|(f, _)| f).unwrap_or(prefix);
    // Both at once (one round before the reconcile's): whether it is ours,
    // and what it says.
    let (owned, params) = tokio::join!(
        crate::observe::owned_parameter_names(clients, folder, owner, None),
        crate::observe::parameters_under(clients, folder),
    );
    fn allowed<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
        match result {
            Err(e) if e.is_access_denied() => Ok(None),
            other => other.map(Some),
        }
    }
    let (Some(owned), Some(params)) = (allowed(owned)?, allowed(params)?) else {
        return Ok(None);
    };
    if !owned.contains(&name) {
        return Ok(None);
    }
    Ok(Published::find(prefix, &params))
}
