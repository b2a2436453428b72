//! `status`: per cluster, what it is and what it has.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use serde::Serialize;

use shared::config::Mode;
use std::time::Duration;

use shared::model::{Account, ClusterId};
use shared::plan::Decision;
use shared::ssm::{parameter_name, PARAM_INBOUND_IPS};

use crate::*;

#[derive(Serialize)]
pub(crate) struct StatusRow {
    cluster: String,
    /// The account it runs in (a hub's spokes; left out for its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    status: String,
    endpoint_access: String,
    decision: String,
    detail: Option<String>,
    plumbing: String,
    pending_actions: Vec<String>,
    inbound_ips: Vec<String>,
}

pub(crate) async fn status(
    cli: &Cli,
    only: Option<&str>,
    account: Option<&str>,
) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Plan).await?;
    let hub = rec.config.is_hub();
    let clusters = clusters_of(&rec, only, account).await?;
    let mut rows = Vec::new();
    for cluster in clusters {
        let name = cluster.name.clone();
        let (plan, obs) = rec.plan(&cluster, None).await.map_err(|e| anyhow!("{e}"))?;
        let (status, access) = match &obs.cluster {
            Some(c) => (
                c.status.as_str().to_string(),
                match (c.private_access, c.public_access) {
                    (true, false) => "private",
                    (true, true) => "public+private",
                    (false, true) => "public",
                    (false, false) => "none",
                }
                .to_string(),
            ),
            None => ("gone".into(), "-".into()),
        };
        let ips_name = parameter_name(&rec.config.ssm_prefix, &cluster, PARAM_INBOUND_IPS);
        let inbound_ips: Vec<String> = obs
            .parameters
            .iter()
            .find(|p| p.name == ips_name)
            .map(|p| p.value.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let has_any = !obs.parameters.is_empty();
        let plumbing = match (&plan.decision, plan.actions.is_empty(), has_any) {
            (Decision::Managed, true, _) if !plan.problems.is_empty() => {
                "failed (see below)".to_string()
            }
            (Decision::Managed, true, _) if !plan.waits.is_empty() => {
                "in place, AWS still working".to_string()
            }
            (Decision::Managed, true, _) => "in place".to_string(),
            (Decision::Managed, false, false) => "missing".to_string(),
            (Decision::Managed, false, true) => "drifted".to_string(),
            (Decision::Pending { .. }, _, true) => "in place (waiting for EKS)".to_string(),
            (Decision::Pending { .. }, _, false) => "none yet (waiting for EKS)".to_string(),
            (Decision::Invalid { .. }, _, _) => "blocked".to_string(),
            (_, true, _) => "none".to_string(),
            (_, false, _) => "left over (will be removed)".to_string(),
        };
        let detail = match &plan.decision {
            Decision::NotManaged { reason } => Some(reason.clone()),
            Decision::Pending { status } => Some(format!("the cluster is {status}")),
            Decision::Invalid { problem } => Some(problem.to_string()),
            _ if !plan.problems.is_empty() || !plan.waits.is_empty() => Some(
                plan.problems
                    .iter()
                    .map(|p| p.describe())
                    .chain(plan.waits.iter().map(|w| w.describe()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        };
        let account = match &cluster.account {
            Account::Id(id) => Some(id.clone()),
            Account::Home if hub => rec.home_id().map(str::to_string),
            Account::Home => None,
        };
        rows.push(StatusRow {
            cluster: name,
            account,
            status,
            endpoint_access: access,
            decision: plan.decision.label().to_string(),
            detail,
            plumbing,
            pending_actions: plan.actions.iter().map(|a| a.describe()).collect(),
            inbound_ips,
        });
    }
    emit(cli.output, &rows, || print_status(&rows))?;
    Ok(ExitCode::SUCCESS)
}

/// The clusters `status` shows: `only`, or every one, of `account`, or of
/// the caller's account and (a hub's) every spoke it serves.
async fn clusters_of(
    rec: &shared::Reconciler,
    only: Option<&str>,
    account: Option<&str>,
) -> Result<Vec<ClusterId>> {
    let accounts: Vec<Account> = match account {
        Some(_) => vec![cluster_id(rec, "-", account).await?.account],
        None => {
            let served = rec
                .served(Duration::ZERO)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            std::iter::once(Account::Home)
                .chain(served.iter().map(|id| Account::Id(id.clone())))
                .collect()
        }
    };
    let mut clusters: Vec<ClusterId> = Vec::new();
    for account in &accounts {
        match only {
            Some(name) => clusters.push(ClusterId {
                account: account.clone(),
                name: name.to_string(),
            }),
            None => clusters.extend(
                shared::sweep::list_clusters(rec, account)
                    .await
                    .map_err(|e| anyhow!("{e}"))?,
            ),
        }
    }
    Ok(clusters)
}

pub(crate) fn print_status(rows: &[StatusRow]) {
    // An ACCOUNT column when any row names one (a hub).
    let with_account = rows.iter().any(|r| r.account.is_some());
    let mut headers = vec![
        "CLUSTER",
        "STATUS",
        "ACCESS",
        "DECISION",
        "PLUMBING",
        "INBOUND IPS",
    ];
    if with_account {
        headers.insert(0, "ACCOUNT");
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.cluster.clone(),
                r.status.clone(),
                r.endpoint_access.clone(),
                r.decision.clone(),
                r.plumbing.clone(),
                if r.inbound_ips.is_empty() {
                    "-".into()
                } else {
                    r.inbound_ips.join(",")
                },
            ];
            if with_account {
                cells.insert(0, r.account.clone().unwrap_or_else(|| "-".into()));
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &table {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    println!("{}", line(&headers));
    for row in &table {
        println!("{}", line(row));
    }
    for r in rows {
        if let Some(detail) = &r.detail {
            match &r.account {
                Some(account) => println!("{} ({account}): {detail}", r.cluster),
                None => println!("{}: {detail}", r.cluster),
            }
        }
    }
    if rows.is_empty() {
        println!("(no clusters in this region)");
    }
}
