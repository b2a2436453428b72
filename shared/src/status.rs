//! Route 53 Resolver statuses, parsed once in the adapters, with one notion
//! of each: live (it exists and serves, or will once AWS finishes), in
//! progress (AWS is still working on it), failed (AWS reports it broken),
//! going away (a delete is under way).
//!
//! | resource    | in progress                        | failed                                | going away |
//! |-------------|------------------------------------|---------------------------------------|------------|
//! | endpoint    | CREATING, UPDATING, AUTO_RECOVERING | ACTION_NEEDED                         | DELETING   |
//! | endpoint IP | CREATING, ATTACHING, UPDATING,     | FAILED_CREATION, FAILED_RESOURCE_GONE, | DETACHING, |
//! |             | REMAP_DETACHING, REMAP_ATTACHING   | UPDATE_FAILED, ISOLATED,              | DELETING   |
//! |             |                                    | DELETE_FAILED_FAS_EXPIRED             |            |
//! | rule        | UPDATING                           | FAILED                                | DELETING   |
//! | association | CREATING                           | FAILED                                | DELETING   |
//!
//! (Route 53 Resolver API reference: ResolverEndpoint.Status,
//! IpAddressResponse.Status, ResolverRule.Status,
//! ResolverRuleAssociation.Status.) A status this table does not know is
//! taken as in progress: the resource is kept and waited for, never
//! deleted or published as failed on a guess.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant,)+
            /// A status AWS added after this was written.
            Other(String),
        }

        impl $name {
            pub fn parse(value: &str) -> $name {
                match value {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(text) => text,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> $name {
                $name::parse(value)
            }
        }
    };
}

status_enum!(
    /// ResolverEndpoint.Status.
    EndpointStatus {
        Creating => "CREATING",
        Operational => "OPERATIONAL",
        Updating => "UPDATING",
        AutoRecovering => "AUTO_RECOVERING",
        ActionNeeded => "ACTION_NEEDED",
        Deleting => "DELETING",
    }
);

impl EndpointStatus {
    pub fn is_going_away(&self) -> bool {
        matches!(self, EndpointStatus::Deleting)
    }

    /// AWS has finished with it and it serves.
    pub fn is_settled(&self) -> bool {
        matches!(self, EndpointStatus::Operational)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, EndpointStatus::ActionNeeded)
    }

    pub fn is_in_progress(&self) -> bool {
        !self.is_settled() && !self.is_failed() && !self.is_going_away()
    }

    /// Whether AWS accepts an IP address change now: the endpoint is not
    /// in the middle of another change (Terraform's provider waits for
    /// OPERATIONAL after each one). ACTION_NEEDED is repaired that way.
    pub fn accepts_ip_changes(&self) -> bool {
        matches!(
            self,
            EndpointStatus::Operational | EndpointStatus::ActionNeeded
        )
    }
}

status_enum!(
    /// IpAddressResponse.Status.
    IpStatus {
        Creating => "CREATING",
        FailedCreation => "FAILED_CREATION",
        Attaching => "ATTACHING",
        Attached => "ATTACHED",
        RemapDetaching => "REMAP_DETACHING",
        RemapAttaching => "REMAP_ATTACHING",
        Detaching => "DETACHING",
        FailedResourceGone => "FAILED_RESOURCE_GONE",
        Deleting => "DELETING",
        DeleteFailedFasExpired => "DELETE_FAILED_FAS_EXPIRED",
        Updating => "UPDATING",
        UpdateFailed => "UPDATE_FAILED",
        Isolated => "ISOLATED",
    }
);

impl IpStatus {
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            IpStatus::FailedCreation
                | IpStatus::FailedResourceGone
                | IpStatus::UpdateFailed
                | IpStatus::Isolated
                | IpStatus::DeleteFailedFasExpired
        )
    }

    pub fn is_going_away(&self) -> bool {
        matches!(self, IpStatus::Detaching | IpStatus::Deleting)
    }

    /// An address that serves, or will once AWS finishes: published in SSM,
    /// used as a rule target, counted towards the endpoint's size.
    pub fn is_live(&self) -> bool {
        !self.is_failed() && !self.is_going_away()
    }

    pub fn is_settled(&self) -> bool {
        matches!(self, IpStatus::Attached)
    }
}

status_enum!(
    /// ResolverRule.Status.
    RuleStatus {
        Complete => "COMPLETE",
        Deleting => "DELETING",
        Updating => "UPDATING",
        Failed => "FAILED",
    }
);

impl RuleStatus {
    pub fn is_going_away(&self) -> bool {
        matches!(self, RuleStatus::Deleting)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, RuleStatus::Failed)
    }

    pub fn is_settled(&self) -> bool {
        matches!(self, RuleStatus::Complete)
    }

    pub fn is_in_progress(&self) -> bool {
        !self.is_settled() && !self.is_failed() && !self.is_going_away()
    }
}

status_enum!(
    /// ResolverRuleAssociation.Status.
    AssociationStatus {
        Creating => "CREATING",
        Complete => "COMPLETE",
        Deleting => "DELETING",
        Failed => "FAILED",
        Overridden => "OVERRIDDEN",
    }
);

impl AssociationStatus {
    pub fn is_going_away(&self) -> bool {
        matches!(self, AssociationStatus::Deleting)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, AssociationStatus::Failed)
    }

    /// COMPLETE, or OVERRIDDEN: the association is in place, and another
    /// rule of the VPC (a more specific or a system one) wins for some
    /// names.
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            AssociationStatus::Complete | AssociationStatus::Overridden
        )
    }

    /// In place or becoming so.
    pub fn is_live(&self) -> bool {
        !self.is_failed() && !self.is_going_away()
    }

    pub fn is_in_progress(&self) -> bool {
        self.is_live() && !self.is_settled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_kept() {
        for text in [
            "CREATING",
            "OPERATIONAL",
            "UPDATING",
            "AUTO_RECOVERING",
            "ACTION_NEEDED",
            "DELETING",
        ] {
            assert_eq!(EndpointStatus::parse(text).as_str(), text);
        }
        let new = EndpointStatus::parse("SOMETHING_NEW");
        assert_eq!(new, EndpointStatus::Other("SOMETHING_NEW".into()));
        assert!(new.is_in_progress() && !new.is_failed() && !new.is_going_away());
    }

    #[test]
    fn one_notion_of_a_live_ip() {
        let live: Vec<&str> = [
            "CREATING",
            "FAILED_CREATION",
            "ATTACHING",
            "ATTACHED",
            "REMAP_DETACHING",
            "REMAP_ATTACHING",
            "DETACHING",
            "FAILED_RESOURCE_GONE",
            "DELETING",
            "DELETE_FAILED_FAS_EXPIRED",
            "UPDATING",
            "UPDATE_FAILED",
            "ISOLATED",
        ]
        .into_iter()
        .filter(|s| IpStatus::parse(s).is_live())
        .collect();
        assert_eq!(
            live,
            [
                "CREATING",
                "ATTACHING",
                "ATTACHED",
                "REMAP_DETACHING",
                "REMAP_ATTACHING",
                "UPDATING"
            ]
        );
        assert!(IpStatus::parse("ISOLATED").is_failed());
        assert!(IpStatus::parse("FAILED_RESOURCE_GONE").is_failed());
        assert!(!IpStatus::parse("DETACHING").is_failed());
    }

    #[test]
    fn endpoints_take_ip_changes_only_between_changes() {
        assert!(EndpointStatus::Operational.accepts_ip_changes());
        assert!(EndpointStatus::ActionNeeded.accepts_ip_changes());
        for s in [
            EndpointStatus::Creating,
            EndpointStatus::Updating,
            EndpointStatus::AutoRecovering,
            EndpointStatus::Deleting,
        ] {
            assert!(!s.accepts_ip_changes(), "{s}");
        }
    }

    #[test]
    fn associations_in_place_or_coming() {
        assert!(AssociationStatus::Creating.is_in_progress());
        assert!(AssociationStatus::Overridden.is_settled());
        assert!(!AssociationStatus::Failed.is_live());
        assert!(!AssociationStatus::Deleting.is_live());
    }
}
