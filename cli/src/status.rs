//! `status`: per cluster, what it is and what it has.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use serde::Serialize;

use shared::config::Mode;
use shared::model::ClusterId;
use shared::plan::Decision;
use shared::ssm::{parameter_name, PARAM_INBOUND_IPS};

use crate::*;

#[derive(Serialize)]
pub(crate) struct StatusRow {
    cluster: String,
    status: String,
    endpoint_access: String,
    decision: String,
    detail: Option<String>,
    plumbing: String,
    pending_actions: Vec<String>,
    inbound_ips: Vec<String>,
}

pub(crate) async fn status(cli: &Cli, only: Option<&str>) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Plan).await?;
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => shared::sweep::list_clusters(&rec)
            .await
            .map_err(|e| anyhow!("{e}"))?,
    };
    let mut rows = Vec::new();
    for name in names {
        let cluster = ClusterId::home(&name);
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
        rows.push(StatusRow {
            cluster: name,
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

pub(crate) fn print_status(rows: &[StatusRow]) {
    let headers = [
        "CLUSTER",
        "STATUS",
        "ACCESS",
        "DECISION",
        "PLUMBING",
        "INBOUND IPS",
    ];
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
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
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
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
    println!("{}", line(&headers.map(str::to_string)));
    for row in &table {
        println!("{}", line(row));
    }
    for r in rows {
        if let Some(detail) = &r.detail {
            println!("{}: {detail}", r.cluster);
        }
    }
    if rows.is_empty() {
        println!("(no clusters in this region)");
    }
}
