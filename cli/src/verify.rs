//! `verify`: DNS queries to the inbound IPs, or the AWS path hop by hop.

use std::process::ExitCode;

use anyhow::{anyhow, Result};

use shared::config::Mode;
use shared::ssm::cluster_folder;

use crate::*;

pub(crate) async fn verify_path(
    cli: &Cli,
    cluster: &str,
    account: Option<&str>,
) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Plan).await?;
    let id = cluster_id(&rec, cluster, account).await?;
    let paths = rec.paths(&id).await.map_err(|e| anyhow!(e))?;
    emit(cli.output, &paths, || {
        println!("{} ({cluster})", paths.endpoint);
        for path in &paths.paths {
            println!(
                "  from {}: {}",
                path.client,
                if path.ok() { "pass" } else { "FAIL" }
            );
            for hop in &path.hops {
                println!(
                    "    {} {} [{}]: {}",
                    if hop.ok { "pass" } else { "FAIL" },
                    hop.hop,
                    hop.resource,
                    hop.detail
                );
            }
        }
        if paths.paths.is_empty() {
            println!("  (no client VPCs or on-prem CIDRs: no paths)");
        }
    })?;
    if paths.paths.is_empty() {
        return Err(anyhow!(
            "cluster {cluster} has no client VPCs or on-prem CIDRs, so no DNS path to check"
        ));
    }
    let failures = paths.failures();
    if !failures.is_empty() {
        return Err(anyhow!(
            "{} of {} paths of cluster {cluster} fail: {}",
            paths.paths.iter().filter(|p| !p.ok()).count(),
            paths.paths.len(),
            failures.join("; ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn verify(
    cli: &Cli,
    cluster: &str,
    account: Option<&str>,
    server: Option<&str>,
    timeout_ms: u64,
) -> Result<ExitCode> {
    use shared::verify::{parse_server, verify};
    let explicit = server
        .map(parse_server)
        .transpose()
        .map_err(|e| anyhow!("--server: {e}"))?;
    let rec = reconciler(cli, Mode::Plan).await?;
    let id = cluster_id(&rec, cluster, account).await?;
    let folder = cluster_folder(&rec.config.ssm_prefix, &id);
    let found = published_under(&rec, &folder).await?;
    let (clusters, warnings) = (found.clusters, found.warnings);
    let key = id.to_string();
    let Some(published) = clusters.into_iter().find(|c| c.cluster == key) else {
        let why = warnings.join("; ");
        return Err(anyhow!(
            "cluster {cluster} is not published under {folder}/{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ));
    };
    let servers: Vec<std::net::SocketAddr> = match explicit {
        Some(addr) => vec![addr],
        None => published
            .servers()
            .iter()
            .map(|ip| parse_server(ip).map_err(|e| anyhow!(e)))
            .collect::<Result<_>>()?,
    };
    let checks = verify(
        &servers,
        &published.name,
        !published.ipv6.is_empty(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .await;
    let failed = checks.iter().filter(|c| !c.ok()).count();
    emit(cli.output, &checks, || {
        println!("{} ({cluster})", published.name);
        for c in &checks {
            let transport = match c.transport {
                shared::verify::Transport::Udp => "udp",
                shared::verify::Transport::Tcp => "tcp",
            };
            match &c.error {
                None => println!(
                    "  {} {transport} {}: {} ({:.1} ms)",
                    c.server,
                    c.record_type,
                    c.addresses.join(", "),
                    c.latency_ms
                ),
                Some(e) => println!("  {} {transport} {}: FAILED: {e}", c.server, c.record_type),
            }
        }
    })?;
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} queries for {} failed",
            checks.len(),
            published.name
        ));
    }
    Ok(ExitCode::SUCCESS)
}
