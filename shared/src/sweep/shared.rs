//! The sweep's last step: the shared pieces nothing uses any more (inbound
//! endpoints of VPCs no cluster needs, outbound endpoints no rule uses,
//! their groups, the share's accounts no VPC of which uses a rule), and
//! what is left in an account the sweep could not act in.

use std::collections::BTreeSet;

use super::*;

/// What a record of the deployment's says is made for `cluster`, in an
/// account the sweep could not act in: one line for the report.
pub(super) fn left_behind(
    reconciler: &Reconciler,
    fleet: &Fleet,
    cluster: &ClusterId,
) -> Vec<String> {
    let prefix = &reconciler.config.ssm_prefix;
    observe::recorded_states(prefix, &fleet.parameters)
        .into_iter()
        .filter(|(id, _)| id == cluster)
        .map(|(_, state)| {
            let mut what = vec![format!(
                "inbound endpoint {} and its security group in VPC {}",
                state.inbound_endpoint_id, state.vpc_id
            )];
            if !state.control_plane_rule_ids.is_empty() {
                what.push(format!(
                    "443 rules {} on {}",
                    state.control_plane_rule_ids.join(", "),
                    state.control_plane_security_group_id
                ));
            }
            if !state.associated_vpcs.is_empty() {
                what.push(format!(
                    "the rule's associations with {}",
                    state.associated_vpcs.join(", ")
                ));
            }
            format!(
                "{}: cluster {} left {} (its records stay under {}/)",
                cluster.account,
                cluster.name,
                what.join("; "),
                crate::ssm::cluster_folder(prefix, cluster)
            )
        })
        .collect()
}

/// Which accounts the sweep's last step looks at.
pub(super) struct Shared<'a> {
    pub(super) served: &'a BTreeSet<String>,
    /// Every account swept, the deployment's first.
    pub(super) accounts: &'a [Account],
    /// Those that could not be read: nothing of theirs is taken away.
    pub(super) unread: &'a BTreeSet<Account>,
}

/// Shared pieces that nothing needs any more, from a fresh look: removed,
/// or held back when this run's settings are not the deployment's.
pub(super) async fn remove_shared_orphans(
    reconciler: &Reconciler,
    shared: Shared<'_>,
    unchanged: Option<&Fleet>,
    patience: Patience,
    summary: &mut SweepReport,
) -> Result<(), AwsError> {
    let mode = reconciler.config.mode;
    let read;
    let fresh = match unchanged {
        Some(fleet) => fleet,
        None => {
            let readable: Vec<Account> = shared
                .accounts
                .iter()
                .filter(|a| !shared.unread.contains(*a))
                .cloned()
                .collect();
            let (fleet, _) =
                observe::observe_fleet(reconciler.scope(shared.served), &readable).await?;
            read = fleet;
            &read
        }
    };
    let view = shared_view(reconciler, &shared, fresh, summary).await?;
    let mut actions = plan::plan_shared_orphans(&reconciler.config, &reconciler.owner, &view);
    let ours = reconciler.config.digest();
    let theirs =
        Published::find(&reconciler.config.ssm_prefix, &fresh.parameters).map(|p| p.digest);
    if !actions.is_empty() && reconciler.role.holds_back(&ours, theirs.as_deref()) {
        let why = held_back_reason(&ours, theirs.as_deref(), "the deployment publishes");
        summary.held_back.extend(
            actions
                .drain(..)
                .map(|a| format!("(shared): {} ({why})", a.describe())),
        );
    }
    if !actions.is_empty() {
        let count = actions.len();
        let shared = Plan {
            cluster: "(shared)".into(),
            decision: Decision::Gone,
            actions,
            waits: Vec::new(),
            problems: Vec::new(),
        };
        tracing::info!(actions = ?shared.actions.iter().map(|a| a.describe()).collect::<Vec<_>>(),
            "shared resources nothing uses");
        if mode == crate::config::Mode::Apply {
            let applier = reconciler.applier(patience);
            match applier.apply(&shared).await {
                Ok(applied) if !applied.stopped.is_empty() => {
                    summary.orphans_removed += applied.done.len();
                    summary.converging += 1;
                    summary.in_progress.push(InProgress {
                        cluster: "(shared)".into(),
                        waiting_for: applied.stopped,
                    });
                }
                Ok(_) => summary.orphans_removed += count,
                Err(e) => {
                    summary.fail("(shared)", e.to_string(), e.is_transient());
                }
            }
        }
    }

    Ok(())
}

/// What the last step decides on: the shared resources read, the VPCs
/// still needed (recorded, or of a cluster that may need its endpoint),
/// and the share with the accounts that still use it.
async fn shared_view(
    reconciler: &Reconciler,
    shared: &Shared<'_>,
    fresh: &Fleet,
    summary: &SweepReport,
) -> Result<SharedView, AwsError> {
    let mut needed_vpcs: BTreeSet<String> =
        observe::recorded_states(&reconciler.config.ssm_prefix, &fresh.parameters)
            .into_iter()
            .map(|(_, doc)| doc.vpc_id)
            .collect();
    for report in &summary.reports {
        // A cluster that is managed, pending or failed may need its VPC's
        // endpoint; only "not needed" decisions release it.
        let releases = matches!(
            report.decision.0,
            Some(Decision::NotManaged { .. } | Decision::Gone)
        );
        if !releases {
            if let Some(vpc) = &report.vpc_id {
                needed_vpcs.insert(vpc.clone());
            }
        }
    }
    let owner = &reconciler.owner;
    let rules: Vec<_> = fresh
        .rules()
        .filter(|r| owner.parse_creator_id(&r.creator_request_id).is_some())
        .cloned()
        .collect();
    let ours: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let mut sharing_accounts: BTreeSet<String> = fresh
        .associations()
        .filter(|a| ours.contains(a.rule_id.as_str()) && !a.is_going_away())
        .filter_map(|a| a.account.id().map(str::to_string))
        .collect();
    // An account that could not be read keeps its share.
    sharing_accounts.extend(
        shared
            .unread
            .iter()
            .filter_map(|a| a.id().map(str::to_string)),
    );
    let share = match reconciler.config.is_hub() || rules.iter().any(|r| r.shared) {
        true => reconciler.applier(Patience::none()).share_view().await?,
        false => None,
    };
    Ok(SharedView {
        endpoints: fresh.endpoints().cloned().collect(),
        rules,
        security_groups: fresh.security_groups().cloned().collect(),
        needed_vpcs,
        share,
        sharing_accounts,
    })
}
