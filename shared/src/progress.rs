//! What AWS is still doing, and what it reports as failed: the two things a
//! reconcile learns besides its actions. Route 53 Resolver is asynchronous
//! (an endpoint is CREATING for minutes, a deleted rule is DELETING), so a
//! plan names what it must see finished before the plumbing serves, and
//! the reconcile waits for it within its deadline. Slowness is never an
//! error; a failure that AWS reports is, unless the reconcile repairs it.

use serde::Serialize;

use crate::model::{Account, Direction};
use crate::status::{AssociationStatus, EndpointStatus};

/// Something AWS is still doing that the plumbing needs finished.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "wait", rename_all = "kebab-case")]
pub enum Wait {
    /// An endpoint to become OPERATIONAL.
    Endpoint {
        /// Where it is (in each variant): the account whose clients look.
        account: Account,
        endpoint_id: String,
        direction: Direction,
        status: EndpointStatus,
    },
    /// A rule's association with a VPC to become COMPLETE.
    Association {
        account: Account,
        rule_id: String,
        vpc_id: String,
        status: AssociationStatus,
    },
    /// A rule's association with a VPC to be gone (DELETING or FAILED).
    AssociationGone {
        account: Account,
        rule_id: String,
        vpc_id: String,
    },
    /// A deleted rule to be gone.
    RuleGone { account: Account, rule_id: String },
    /// A deleted endpoint to be gone.
    EndpointGone {
        account: Account,
        endpoint_id: String,
    },
}

impl Wait {
    /// The account of what it waits for.
    pub fn account(&self) -> &Account {
        match self {
            Wait::Endpoint { account, .. }
            | Wait::Association { account, .. }
            | Wait::AssociationGone { account, .. }
            | Wait::RuleGone { account, .. }
            | Wait::EndpointGone { account, .. } => account,
        }
    }
}

impl Wait {
    pub fn describe(&self) -> String {
        match self {
            Wait::Endpoint {
                endpoint_id,
                direction,
                status,
                ..
            } => format!("{direction} endpoint {endpoint_id} is {status}"),
            Wait::Association {
                rule_id,
                vpc_id,
                status,
                ..
            } => format!("the association of rule {rule_id} with {vpc_id} is {status}"),
            Wait::AssociationGone {
                rule_id, vpc_id, ..
            } => {
                format!("the association of rule {rule_id} with {vpc_id} is going away")
            }
            Wait::RuleGone { rule_id, .. } => format!("rule {rule_id} is DELETING"),
            Wait::EndpointGone { endpoint_id, .. } => format!("endpoint {endpoint_id} is DELETING"),
        }
    }
}

/// A resource that AWS reports as failed, and what the plan does about it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// "inbound endpoint rslvr-in-...", "IP 10.0.1.5 of rslvr-in-...".
    pub resource: String,
    pub status: String,
    /// AWS's StatusMessage, when it gave one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The repair this plan makes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
}

impl Problem {
    pub fn describe(&self) -> String {
        let mut text = format!("{} is {}", self.resource, self.status);
        if !self.message.is_empty() {
            text.push_str(&format!(" ({})", self.message));
        }
        match &self.repair {
            Some(repair) => text.push_str(&format!("; {repair}")),
            None => text.push_str("; it needs attention in the AWS console"),
        }
        text
    }
}
