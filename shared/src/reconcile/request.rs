//! The request of a reconcile: what to reconcile, and how.

use std::time::Duration;

use crate::config::Mode;
use crate::model::ClusterId;
use crate::observe::Fleet;
use crate::wait::Patience;

use super::Report;

/// What to reconcile, and how: the one way into a reconcile, for the
/// Lambdas, the CLI and the sweep alike. `Request::from("prod")` is a
/// cluster of the deployment's own account, in the configured mode,
/// waiting for AWS as the reconciler does by default.
pub struct Request<'a> {
    pub cluster: ClusterId,
    /// The cluster's ARN as an event or a record gave it (for a cluster
    /// that is gone, whose leftovers it names).
    pub hinted_arn: Option<String>,
    /// None: the configured mode.
    pub mode: Option<Mode>,
    /// None: the reconciler's (`Reconciler::patience_for`, its budget).
    pub patience: Option<Patience>,
    /// While EKS is still creating or updating the cluster: look again
    /// (first after this pause, then doubling) until the deadline.
    pub while_eks_works: Option<Duration>,
    /// What a sweep read for the whole region, for the first look.
    pub fleet: Option<&'a Fleet>,
    /// The accounts served besides the deployment's own, as a sweep
    /// resolved them at its start; None: the reconcile resolves them (or
    /// takes them as resolved a moment ago, `accounts::SERVED_TTL`).
    pub served: Option<std::sync::Arc<std::collections::BTreeSet<String>>>,
    /// Told, while EKS works, of each look and the pause before the next.
    pub progress: Option<&'a Progress<'a>>,
}

/// Told of a look at a cluster EKS is still working on, and of the pause
/// before the next.
pub type Progress<'a> = dyn Fn(&Report, Duration) + Sync + 'a;

impl<'a> Request<'a> {
    pub fn new(cluster: ClusterId) -> Request<'a> {
        Request {
            cluster,
            hinted_arn: None,
            mode: None,
            patience: None,
            while_eks_works: None,
            fleet: None,
            served: None,
            progress: None,
        }
    }

    pub fn hinted_arn(mut self, arn: Option<String>) -> Self {
        self.hinted_arn = arn;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    pub fn patience(mut self, patience: Patience) -> Self {
        self.patience = Some(patience);
        self
    }

    pub fn while_eks_works(mut self, first_pause: Duration) -> Self {
        self.while_eks_works = Some(first_pause);
        self
    }

    pub fn fleet(mut self, fleet: &'a Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    pub fn served(mut self, served: std::sync::Arc<std::collections::BTreeSet<String>>) -> Self {
        self.served = Some(served);
        self
    }

    pub fn progress(mut self, progress: &'a Progress<'a>) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl From<&str> for Request<'_> {
    fn from(name: &str) -> Self {
        Request::new(ClusterId::home(name))
    }
}

impl From<ClusterId> for Request<'_> {
    fn from(cluster: ClusterId) -> Self {
        Request::new(cluster)
    }
}
