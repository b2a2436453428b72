//! Who owns what: the account a resource lives in (the deployment's own, or
//! a spoke's), and the names that carry it (a cluster, a VPC).

use serde::Serialize;

/// The account a resource lives in, or a cluster runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// The account the deployment runs in (the caller's, for the CLI).
    #[default]
    Home,
    /// Another account, by its 12-digit id.
    Id(String),
}

impl Account {
    pub fn is_home(&self) -> bool {
        *self == Account::Home
    }

    /// Another account's id; None for the deployment's own.
    pub fn id(&self) -> Option<&str> {
        match self {
            Account::Home => None,
            Account::Id(id) => Some(id),
        }
    }

    /// The account `id` names, seen from a deployment in `home` (when
    /// known): `Home` for its own.
    pub fn of(id: &str, home: Option<&str>) -> Account {
        if home == Some(id) {
            Account::Home
        } else {
            Account::Id(id.to_string())
        }
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Home => f.write_str("this account"),
            Account::Id(id) => write!(f, "account {id}"),
        }
    }
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Account::Home => s.serialize_str("home"),
            Account::Id(id) => s.serialize_str(id),
        }
    }
}

/// A VPC, by the account it is in and its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VpcRef {
    pub account: Account,
    pub id: String,
}

impl VpcRef {
    /// A VPC of the deployment's own account.
    pub fn home(id: &str) -> VpcRef {
        VpcRef {
            account: Account::Home,
            id: id.to_string(),
        }
    }
}

/// "vpc-0abc" for the deployment's own account, "210987654321:vpc-0abc"
/// for another's (as the settings and tags name it).
impl std::fmt::Display for VpcRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.account {
            Account::Home => f.write_str(&self.id),
            Account::Id(account) => write!(f, "{account}:{}", self.id),
        }
    }
}

/// A cluster, by the account it runs in and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterId {
    pub account: Account,
    pub name: String,
}

impl ClusterId {
    /// A cluster of the deployment's own account.
    pub fn home(name: &str) -> ClusterId {
        ClusterId {
            account: Account::Home,
            name: name.to_string(),
        }
    }
}

impl ClusterId {
    /// The cluster its key names (its `Display`: "name" for the
    /// deployment's own account, "account:name" for another's), as our
    /// rules' CreatorRequestIds carry it.
    pub fn from_key(key: &str) -> ClusterId {
        match key.split_once(':') {
            Some((account, name)) => ClusterId {
                account: Account::Id(account.to_string()),
                name: name.to_string(),
            },
            None => ClusterId::home(key),
        }
    }
}

/// "name" for a cluster of the deployment's own account, "account:name"
/// for another's: the key our rules' CreatorRequestIds carry.
impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.account {
            Account::Home => f.write_str(&self.name),
            Account::Id(id) => write!(f, "{}:{}", id, self.name),
        }
    }
}
