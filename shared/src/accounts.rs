//! The accounts a deployment acts in, and their clients: its own (the
//! hub's), and each spoke it serves, reached through the role it assumes
//! there (`arn:{partition}:iam::{account}:role/{role name}`).
//!
//! A spoke's clients are made the first time they are needed in a process:
//! the role is assumed then, once for every client of the account (so that
//! a role that cannot be assumed is an error that names the account, the
//! role and the action before anything is read or made there), and its
//! credentials are renewed by the SDK's identity cache before they expire.
//! Which accounts are served (the spoke setting's accounts, and the
//! accounts of its organizational units) is decided here too, from the
//! Organization when an entry names an OU or the root.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{aws, error_chain, kind_of, AwsError, Clients, ErrorKind};
use crate::config::SpokeEntry;
use crate::model::Account;

/// The role's session name, in the spoke's CloudTrail.
pub const ROLE_SESSION_NAME: &str = "eks-private-dns";

/// How long an event handler trusts the accounts an OU resolved to: a
/// sweep resolves them at each run; an account moved into an OU is served
/// by events at most this much later (the sweep serves it at its next run).
pub const SERVED_TTL: Duration = Duration::from_secs(600);

/// The spoke accounts a deployment serves, the role it assumes in each,
/// and the clients made so far.
#[derive(Debug, Default)]
pub struct Spokes {
    role_name: String,
    entries: Vec<SpokeEntry>,
    /// The accounts the entries named when last resolved, and when.
    resolved: Mutex<Option<(Instant, Arc<BTreeSet<String>>)>>,
    clients: Mutex<BTreeMap<String, Arc<OnceCell<Arc<Clients>>>>>,
}

impl Spokes {
    /// Serve the accounts `entries` name through the role `role_name` in
    /// each.
    pub fn new(role_name: &str, entries: Vec<SpokeEntry>) -> Spokes {
        Spokes {
            role_name: role_name.to_string(),
            entries,
            ..Spokes::default()
        }
    }

    /// Whether any spoke is configured (hub mode).
    pub fn any(&self) -> bool {
        !self.entries.is_empty()
    }

    pub fn role_name(&self) -> &str {
        &self.role_name
    }

    /// The role assumed in `account`, in the partition of `region`.
    pub fn role_arn(&self, account: &str, region: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            partition_of(region),
            self.role_name
        )
    }

    /// The accounts served besides `home`: those the entries name, and
    /// every account under the OUs and roots they name (child OUs too),
    /// read from the Organization once per `max_age` (a sweep passes
    /// zero: it resolves them afresh at each run).
    pub async fn served(
        &self,
        home: &Clients,
        home_id: Option<&str>,
        max_age: Duration,
    ) -> Result<Arc<BTreeSet<String>>, AwsError> {
        if let Some((at, accounts)) = self.resolved.lock().expect("lock").as_ref() {
            if at.elapsed() < max_age {
                return Ok(accounts.clone());
            }
        }
        let mut accounts = BTreeSet::new();
        for entry in &self.entries {
            match entry {
                SpokeEntry::Account(id) => {
                    accounts.insert(id.clone());
                }
                SpokeEntry::Unit(parent) => {
                    accounts.extend(accounts_under(home, parent).await?);
                }
            }
        }
        if let Some(home_id) = home_id {
            accounts.remove(home_id);
        }
        let accounts = Arc::new(accounts);
        *self.resolved.lock().expect("lock") = Some((Instant::now(), accounts.clone()));
        Ok(accounts)
    }
}

/// The partition a region is in.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// Every account under `parent` (an OU or the root), in child OUs too:
/// ListAccountsForParent and ListChildren list direct children only.
/// Both work only from the Organization's management account or a
/// delegated administrator.
async fn accounts_under(home: &Clients, parent: &str) -> Result<BTreeSet<String>, AwsError> {
    use aws_sdk_organizations::types::ChildType;
    let organizations = home.organizations();
    let mut accounts = BTreeSet::new();
    let mut parents = vec![parent.to_string()];
    while let Some(parent) = parents.pop() {
        let mut pages = organizations
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("Organizations.ListAccountsForParent"))?;
            accounts.extend(page.accounts().iter().filter_map(|a| {
                let active = a.state().map(|s| s.as_str()) != Some("SUSPENDED")
                    && a.status().map(|s| s.as_str()) != Some("SUSPENDED");
                active.then(|| a.id().map(str::to_string)).flatten()
            }));
        }
        let mut pages = organizations
            .list_children()
            .parent_id(&parent)
            .child_type(ChildType::OrganizationalUnit)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("Organizations.ListChildren"))?;
            parents.extend(
                page.children()
                    .iter()
                    .filter_map(|c| c.id().map(str::to_string)),
            );
        }
    }
    Ok(accounts)
}

/// The clients of one account: borrowed for the deployment's own, shared
/// for another's.
#[derive(Clone, Debug)]
pub enum ClientsRef<'a> {
    Home(&'a Clients),
    Other(Arc<Clients>),
}

impl Deref for ClientsRef<'_> {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        match self {
            ClientsRef::Home(clients) => clients,
            ClientsRef::Other(clients) => clients,
        }
    }
}

/// The clients of each account a deployment acts in, found by account.
#[derive(Clone, Copy, Debug)]
pub struct Accounts<'a> {
    home: &'a Clients,
    spokes: &'a Spokes,
}

impl<'a> Accounts<'a> {
    pub fn new(home: &'a Clients, spokes: &'a Spokes) -> Accounts<'a> {
        Accounts { home, spokes }
    }

    /// The deployment's own account's clients.
    pub fn home(&self) -> &'a Clients {
        self.home
    }

    pub fn spokes(&self) -> &'a Spokes {
        self.spokes
    }

    /// Who acts in `account`, for messages: None for the deployment's own;
    /// "account ID (role ARN)" for another.
    pub fn describe(&self, account: &Account) -> Option<String> {
        match account {
            Account::Home => None,
            Account::Id(id) => Some(format!(
                "account {id} (role {})",
                self.spokes.role_arn(id, &self.home.region)
            )),
        }
    }

    /// The clients that act in `account`. Another account's role is
    /// assumed the first time (once, however many ask at once); a role that
    /// cannot be assumed is an error that names the account and the role.
    /// Whether the account is served is the caller's to decide: a sweep
    /// also acts in an account it served before, to take away what it made.
    pub async fn get(&self, account: &Account) -> Result<ClientsRef<'a>, AwsError> {
        let id = match account {
            Account::Home => return Ok(ClientsRef::Home(self.home)),
            Account::Id(id) => id,
        };
        let cell = self
            .spokes
            .clients
            .lock()
            .expect("clients lock")
            .entry(id.clone())
            .or_default()
            .clone();
        let role = self.spokes.role_arn(id, &self.home.region);
        let clients = cell
            .get_or_try_init(|| async {
                assume(self.home, id, &role)
                    .await
                    .map(Arc::new)
                    .map_err(|e| e.in_account(self.describe(account)))
            })
            .await?;
        Ok(ClientsRef::Other(clients.clone()))
    }
}

/// Clients that act in `account` as `role_arn`, assumed with `home`'s own
/// credentials. The role is assumed now, so that one that
/// cannot be is an error (STS.AssumeRole, its code and message) before
/// anything is asked of the account; every client of the account then
/// shares one identity cache, which assumes it again shortly before the
/// credentials expire. The session is AWS's default hour, the most a
/// chained role session (a Lambda's role assuming another) may last.
pub async fn assume(home: &Clients, account: &str, role_arn: &str) -> Result<Clients, AwsError> {
    use aws_credential_types::provider::ProvideCredentials;
    // The provider caches with the configuration's clock and sleeps
    // (a configuration the standard chain loads has both).
    let mut base = home.sdk.to_builder();
    if home.sdk.time_source().is_none() {
        base.set_time_source(Some(aws_smithy_async::time::SharedTimeSource::default()));
    }
    if home.sdk.sleep_impl().is_none() {
        base.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    }
    let base = base.build();
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(ROLE_SESSION_NAME)
        .configure(&base)
        .build()
        .await;
    let first = provider
        .provide_credentials()
        .await
        .map_err(|e| assume_role_error(role_arn, &e))?;
    let primed = Primed {
        first: std::sync::Mutex::new(Some(first)),
        inner: provider,
    };
    let sdk = base
        .to_builder()
        .identity_cache(aws_config::identity::IdentityCache::lazy().build())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(primed),
        )
        .build();
    let mut clients = Clients::from_sdk_config_with(&sdk, home.resolver_rate, home.timeouts)
        .expect("the region is set: these clients have one");
    clients.account = Account::Id(account.to_string());
    Ok(clients)
}

/// A provider that gives the credentials it was made with first (those the
/// role's assumption got when the clients were made), then asks `inner`:
/// one AssumeRole for a set of clients, whose cache asks again only before
/// they expire.
#[derive(Debug)]
struct Primed {
    first: std::sync::Mutex<Option<aws_credential_types::Credentials>>,
    inner: aws_config::sts::AssumeRoleProvider,
}

impl aws_credential_types::provider::ProvideCredentials for Primed {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().expect("credentials lock").take();
        // Credentials within a few minutes of their end are not handed out.
        let fresh = first.filter(|c| {
            c.expiry()
                .is_none_or(|end| end > std::time::SystemTime::now() + Duration::from_secs(300))
        });
        match fresh {
            Some(credentials) => {
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(credentials))
            }
            None => self.inner.provide_credentials(),
        }
    }
}

/// A role that could not be assumed, as an AWS error of STS.AssumeRole:
/// AWS's code and message when STS answered (AccessDenied when the role's
/// trust does not admit us), a network failure when it did not.
fn assume_role_error(
    role_arn: &str,
    error: &aws_credential_types::provider::error::CredentialsError,
) -> AwsError {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    type StsError =
        SdkError<AssumeRoleError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>;
    let operation = "STS.AssumeRole";
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(sts) = e.downcast_ref::<StsError>() {
            let mut found = match sts {
                SdkError::ServiceError(service) => {
                    let code = service.err().code().map(str::to_string);
                    let kind = match code.as_deref().map(kind_of) {
                        Some(ErrorKind::Other) | None
                            if service.raw().status().is_server_error() =>
                        {
                            ErrorKind::Unavailable
                        }
                        Some(kind) => kind,
                        None => ErrorKind::Other,
                    };
                    let message = service
                        .err()
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error_chain(sts));
                    AwsError::new(operation, code, message, kind)
                }
                SdkError::ConstructionFailure(_) => {
                    AwsError::new(operation, None, error_chain(sts), ErrorKind::Other)
                }
                _ => AwsError::new(operation, None, error_chain(sts), ErrorKind::Network),
            };
            if !found.message.contains(role_arn) {
                found.message = format!("{} (role {role_arn})", found.message);
            }
            return found;
        }
        source = e.source();
    }
    AwsError::new(
        operation,
        None,
        format!("{} (role {role_arn})", error_chain(error)),
        ErrorKind::Other,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spokes_role_is_in_the_partition_of_the_region() {
        let spokes = Spokes::new(
            "eks-private-dns-spoke",
            vec![SpokeEntry::Account("210987654321".into())],
        );
        assert_eq!(
            spokes.role_arn("210987654321", "eu-west-1"),
            "arn:aws:iam::210987654321:role/eks-private-dns-spoke"
        );
        assert_eq!(
            spokes.role_arn("210987654321", "cn-north-1"),
            "arn:aws-cn:iam::210987654321:role/eks-private-dns-spoke"
        );
        assert_eq!(
            spokes.role_arn("210987654321", "us-gov-west-1"),
            "arn:aws-us-gov:iam::210987654321:role/eks-private-dns-spoke"
        );
        assert!(spokes.any());
        assert!(!Spokes::default().any());
    }
}
