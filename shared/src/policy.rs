//! The error policy: what a failure does to a run, in one place (as
//! kube-rs keeps `error_policy` beside `reconcile`).
//!
//! | failure                                   | during a look or an apply          | during a wait     |
//! |-------------------------------------------|------------------------------------|-------------------|
//! | transient (throttled, unavailable, in use,| look again, up to `MAX_ABSORBED`   | one more "not     |
//! | no answer; a step not ready yet)          | times, while the deadline allows   | yet" until the    |
//! |                                           | (apply mode only)                  | deadline          |
//! | anything else (denied, not found, a quota,| ends the run with an error         | ends the wait     |
//! | someone else's resource, bad input)       |                                    |                   |
//!
//! Whether a failure is transient follows from its kind alone
//! (`ErrorKind::is_transient`, `ReconcileError::is_transient`). A run also
//! ends, `converging`, after `MAX_ROUNDS` looks that each still changed
//! something (a concurrent writer it is fighting), and at the deadline.

use std::time::Duration;

use crate::aws::AwsError;
use crate::config::Mode;
use crate::wait::Patience;

/// Transient failures (after the SDK's own retries) one reconcile absorbs
/// by looking again.
pub const MAX_ABSORBED: usize = 3;

/// Looks one reconcile takes at most, besides those after an absorbed
/// failure: a plan that still changes something after this many is
/// fighting something (a concurrent writer) and is left to the next run.
pub const MAX_ROUNDS: u32 = 4;

/// What a failure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Look again (after `pause`): the failure may be gone then.
    LookAgain { pause: Duration },
    /// The run ends with it.
    End,
}

/// A look or an apply failed with a failure that `transient` says may
/// pass; `absorbed` failures were absorbed already.
pub fn on_failure(transient: bool, mode: Mode, absorbed: usize, patience: &Patience) -> Verdict {
    if mode == Mode::Apply && transient && absorbed < MAX_ABSORBED && !patience.expired() {
        Verdict::LookAgain {
            pause: patience.first_poll,
        }
    } else {
        Verdict::End
    }
}

/// A look taken while waiting for AWS failed: a hiccup during a wait of
/// minutes is one more "not yet", until the deadline, where the failure is
/// the answer.
pub fn on_failed_look(error: &AwsError, patience: &Patience) -> Verdict {
    if error.is_transient() && !patience.expired() {
        Verdict::LookAgain {
            pause: patience.first_poll,
        }
    } else {
        Verdict::End
    }
}

/// Whether a run that has taken `rounds` looks, `absorbed` of them after a
/// failure, has used up its looks.
pub fn out_of_rounds(rounds: u32, absorbed: usize) -> bool {
    rounds > MAX_ROUNDS + absorbed as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ErrorKind;

    #[test]
    fn transient_failures_are_absorbed_a_few_times_in_apply_mode_only() {
        let later = Patience::for_up_to(Duration::from_secs(60));
        let look_again = Verdict::LookAgain {
            pause: later.first_poll,
        };
        assert_eq!(on_failure(true, Mode::Apply, 0, &later), look_again);
        assert_eq!(
            on_failure(true, Mode::Apply, MAX_ABSORBED - 1, &later),
            look_again
        );
        assert_eq!(
            on_failure(true, Mode::Apply, MAX_ABSORBED, &later),
            Verdict::End
        );
        assert_eq!(on_failure(false, Mode::Apply, 0, &later), Verdict::End);
        assert_eq!(on_failure(true, Mode::Plan, 0, &later), Verdict::End);
        assert_eq!(
            on_failure(true, Mode::Apply, 0, &Patience::none()),
            Verdict::End,
            "no time left"
        );
    }

    #[test]
    fn a_failed_look_while_waiting_is_not_yet_until_the_deadline() {
        let later = Patience::for_up_to(Duration::from_secs(60));
        let throttled = AwsError::new("X.Y", None, "slow down".into(), ErrorKind::Throttled);
        let denied = AwsError::new("X.Y", None, "no".into(), ErrorKind::AccessDenied);
        assert!(matches!(
            on_failed_look(&throttled, &later),
            Verdict::LookAgain { .. }
        ));
        assert_eq!(on_failed_look(&denied, &later), Verdict::End);
        assert_eq!(on_failed_look(&throttled, &Patience::none()), Verdict::End);
    }

    #[test]
    fn looks_run_out_after_the_rounds_and_one_more_per_absorbed_failure() {
        assert!(!out_of_rounds(MAX_ROUNDS, 0));
        assert!(out_of_rounds(MAX_ROUNDS + 1, 0));
        assert!(!out_of_rounds(MAX_ROUNDS + 1, 1));
    }
}
