//! Which accounts a reconciler acts in: its own (whose id it learns when it
//! needs it), and the spokes it serves.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::aws::AwsError;

use super::Reconciler;

impl Reconciler {
    /// The deployment's own account id, when known.
    pub fn home_id(&self) -> Option<&str> {
        self.account.get().map(String::as_str)
    }

    /// The account an id names, as this deployment sees it: its own, or a
    /// spoke's. A deployment that serves no spoke acts in its own account
    /// only, whatever id a record carries.
    pub fn account_of(&self, id: &str) -> crate::model::Account {
        match self.config.is_hub() {
            true => crate::model::Account::of(id, self.home_id()),
            false => crate::model::Account::Home,
        }
    }

    /// Learn the deployment's own account id, when it is needed (a hub, or
    /// a client VPC named with its account) and not known yet: one STS
    /// GetCallerIdentity per process.
    pub async fn learn_home_id(&self) -> Result<Option<&str>, AwsError> {
        let needed = self.config.is_hub()
            || self
                .config
                .client_vpc_ids
                .iter()
                .any(|v| v.account.is_some());
        if self.account.get().is_none() && needed {
            let out = self
                .clients
                .sts()
                .get_caller_identity()
                .send()
                .await
                .map_err(crate::aws::aws("STS.GetCallerIdentity"))?;
            if let Some(account) = out.account() {
                let _ = self.account.set(account.to_string());
            }
        }
        Ok(self.home_id())
    }

    /// The accounts this deployment serves besides its own (none unless it
    /// is a hub), resolved from the Organization at most `max_age` ago.
    pub async fn served(
        &self,
        max_age: Duration,
    ) -> Result<std::sync::Arc<BTreeSet<String>>, AwsError> {
        if !self.spokes.any() {
            return Ok(std::sync::Arc::default());
        }
        let home = self.learn_home_id().await?;
        self.spokes.served(&self.clients, home, max_age).await
    }
}
