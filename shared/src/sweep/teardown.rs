//! Taking down everything of one owner (the CLI's `teardown`): a sweep in
//! which no cluster is managed, so that every cluster's plumbing, the
//! shared pieces and the orphans go, then the deployment's published
//! settings; and the proof, read afresh: what is left that carries this
//! owner, in every account the deployment acts in.

use super::*;
use crate::reconcile::ReconcileError;

/// What a teardown did and what it found left.
#[derive(Debug, Serialize)]
pub struct TeardownReport {
    pub sweep: SweepReport,
    /// The deployment's settings parameter was removed.
    pub settings_removed: bool,
    /// What still carries this owner, one line each ("account: what");
    /// empty: nothing is left.
    pub left: Vec<String>,
}

/// Tear down everything of the reconciler's owner in its account and
/// region and in the accounts it serves (in plan mode, say what would go).
/// The reconciler's configuration must say `take_down`.
pub async fn teardown(
    reconciler: &Reconciler,
    patience: Patience,
    progress: impl FnMut(usize, usize, &Report),
) -> Result<TeardownReport, ReconcileError> {
    assert!(
        reconciler.config.take_down,
        "a teardown runs with take_down set"
    );
    let sweep = sweep(reconciler, patience, progress).await?;
    let apply = reconciler.config.mode == crate::config::Mode::Apply;
    let mut settings_removed = false;
    if apply {
        let name = crate::settings::parameter_name(&reconciler.config.ssm_prefix);
        let (fleet, _) = read_fleet(reconciler).await?;
        if fleet.parameters.iter().any(|p| p.name == name) {
            reconciler
                .applier(Patience::none())
                .delete_parameters(std::slice::from_ref(&name))
                .await?;
            settings_removed = true;
        }
    }
    let left = what_is_left(reconciler).await?;
    Ok(TeardownReport {
        sweep,
        settings_removed,
        left,
    })
}

/// Every account the deployment acts in, read afresh.
async fn read_fleet(reconciler: &Reconciler) -> Result<(Fleet, Vec<String>), AwsError> {
    let served = reconciler.served(std::time::Duration::ZERO).await?;
    let mut accounts = vec![Account::Home];
    accounts.extend(served.iter().map(|id| Account::Id(id.clone())));
    let (fleet, unread) = observe::observe_fleet(reconciler.scope(&served), &accounts).await?;
    let unread = unread
        .into_iter()
        .map(|(account, e)| format!("{account}: could not be read, so not proven empty: {e}"))
        .collect();
    Ok((fleet, unread))
}

/// What carries this owner, by resource type, in every account.
async fn what_is_left(reconciler: &Reconciler) -> Result<Vec<String>, AwsError> {
    let (fleet, mut left) = read_fleet(reconciler).await?;
    let owner = &reconciler.owner;
    let ours = |creator: &str| owner.parse_creator_id(creator).is_some();
    for e in fleet.endpoints().filter(|e| ours(&e.creator_request_id)) {
        left.push(format!(
            "{}: {} Resolver endpoint {} in {} ({})",
            e.account,
            e.direction,
            e.id,
            e.vpc_id,
            e.status.as_str()
        ));
    }
    let rules: Vec<_> = fleet
        .rules()
        .filter(|r| ours(&r.creator_request_id))
        .collect();
    for r in &rules {
        left.push(format!(
            "{}: forward rule {} for {}",
            r.account, r.id, r.domain
        ));
    }
    for a in fleet
        .associations()
        .filter(|a| rules.iter().any(|r| r.id == a.rule_id))
    {
        left.push(format!(
            "{}: association {} of rule {} with {}",
            a.account, a.id, a.rule_id, a.vpc_id
        ));
    }
    for g in fleet.security_groups() {
        left.push(format!(
            "{}: security group {} in {}",
            g.account, g.id, g.vpc_id
        ));
    }
    for r in fleet.owned_rules() {
        left.push(format!(
            "{}: security group rule {} on {}",
            r.account, r.id, r.group_id
        ));
    }
    for p in &fleet.parameters {
        left.push(format!("{}: parameter {}", Account::Home, p.name));
    }
    if reconciler.config.is_hub() || !rules.is_empty() {
        if let Some(share) = reconciler.applier(Patience::none()).share_view().await? {
            left.push(format!("{}: resource share {}", Account::Home, share.arn));
        }
    }
    Ok(left)
}
