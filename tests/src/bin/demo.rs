//! The local demo: the whole life of a cluster against the AWS emulator,
//! driven through the real `eks-private-dns` CLI and a CloudTrail event
//! fixture, with a readable table of what was built. No AWS account needed;
//! all traffic stays on loopback.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use eks_private_dns_tests::*;

const CLUSTER: &str = "demo";
const ONPREM: &str = "192.168.0.0/16";

fn cli_path() -> Result<PathBuf> {
    workspace_bin("eks-private-dns")
}

fn heading(text: &str) {
    println!("\n== {text}");
}

/// Run the CLI against the emulator, echoing the command line and output.
fn cli(emulator: &Emulator, env: &[(&str, String)], args: &[&str]) -> Result<i32> {
    println!("$ eks-private-dns {}", args.join(" "));
    let mut cmd = Command::new(cli_path()?);
    cmd.args(args).current_dir(workspace_root());
    for (k, v) in emulator.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().context("cannot run eks-private-dns")?;
    Ok(status.code().unwrap_or(1))
}

async fn show(aws: &Aws) -> Result<()> {
    let snap = aws.snapshot().await?;
    let mut rows = vec![vec![
        "RESOURCE".to_string(),
        "ID".to_string(),
        "WHERE".to_string(),
        "DETAILS".to_string(),
    ]];
    for e in &snap.endpoints {
        let id = e.id().unwrap_or_default();
        rows.push(vec![
            format!(
                "{} endpoint",
                e.direction()
                    .map(|d| d.as_str().to_lowercase())
                    .unwrap_or_default()
            ),
            id.to_string(),
            e.host_vpc_id().unwrap_or_default().to_string(),
            format!("IPs {}", snap.ips_of(id).join(", ")),
        ]);
    }
    for r in &snap.rules {
        let id = r.id().unwrap_or_default();
        let targets: Vec<String> = r
            .target_ips()
            .iter()
            .map(|t| format!("{}:{}", t.ip().unwrap_or_default(), t.port().unwrap_or(53)))
            .collect();
        rows.push(vec![
            "forward rule".into(),
            id.to_string(),
            r.domain_name()
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_string(),
            format!(
                "to {} via {}",
                targets.join(", "),
                r.resolver_endpoint_id().unwrap_or("-")
            ),
        ]);
        for vpc in snap.associated_vpcs(id) {
            rows.push(vec!["  association".into(), "".into(), vpc, "".into()]);
        }
    }
    for g in &snap.groups {
        let gid = g.group_id().unwrap_or_default();
        let ours: Vec<String> = snap
            .ingress(gid)
            .into_iter()
            .filter(|r| r.owner.is_some())
            .map(|r| format!("{}/{} {}", r.protocol, r.port, r.cidr))
            .collect();
        if ours.is_empty() {
            continue;
        }
        rows.push(vec![
            "security group rules".into(),
            gid.to_string(),
            g.group_name().unwrap_or_default().to_string(),
            ours.join(", "),
        ]);
    }
    for (name, (value, version)) in snap.parameters_under("/eks-private-dns/") {
        let shown = if value.len() > 70 {
            format!("{}...", &value[..70])
        } else {
            value
        };
        rows.push(vec![
            "SSM parameter".into(),
            format!("v{version}"),
            name,
            shown,
        ]);
    }
    if rows.len() == 1 {
        println!("  (nothing: no endpoints, rules, security group rules or parameters of ours)");
    } else {
        table(&rows);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    heading("Starting the local AWS emulator (moto, loopback only)");
    // EKS and Route 53 Resolver take their time, as on AWS (in seconds here,
    // minutes there).
    let emulator = Emulator::start_with(EmulatorOptions {
        create_seconds: 0.0,
        update_seconds: 3.0,
        resolver_seconds: 3.0,
    })?;
    let aws = emulator.aws();
    println!("  emulator at {}", emulator.url);

    heading(
        "Building a world: a cluster VPC in three AZs, a peered client VPC, an on-prem network",
    );
    let cluster_vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b", "c"]).await?;
    let client_vpc = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await?;
    let pcx = aws.peer(&client_vpc.id, &cluster_vpc.id).await?;
    aws.cluster(CLUSTER, &cluster_vpc, Access::PublicAndPrivate, &[])
        .await?;
    println!(
        "  cluster VPC {} (10.0.0.0/16), subnets {}",
        cluster_vpc.id,
        cluster_vpc.subnets.join(", ")
    );
    println!(
        "  client VPC  {} (10.1.0.0/16), peered by {pcx}",
        client_vpc.id
    );
    println!("  on-prem     {ONPREM}");
    println!("  EKS cluster '{CLUSTER}' with public and private endpoint access");

    let env = vec![
        ("EKS_PRIVATE_DNS_DISCOVER_PEERED_VPCS", "true".to_string()),
        ("EKS_PRIVATE_DNS_ONPREM_CIDRS", ONPREM.to_string()),
    ];
    heading("While the endpoint is public, nothing is needed");
    cli(&emulator, &env, &["status"])?;

    heading("The endpoint goes private; CloudTrail's UpdateClusterConfig event arrives");
    aws.set_access(CLUSTER, Access::Private).await?;
    let code = cli(
        &emulator,
        &env,
        &[
            "handle-event",
            "events/update-cluster-config-private.json",
            "--poll",
            "1",
        ],
    )?;
    if code != 0 {
        bail!("handle-event failed (exit {code})");
    }

    heading("What was built (the event's reconcile returned once AWS had finished it)");
    show(&aws).await?;

    heading("Every DNS path, hop by hop (verify --path)");
    let code = cli(&emulator, &env, &["verify", "--cluster", CLUSTER, "--path"])?;
    if code != 0 {
        bail!("a DNS path does not hold (exit {code})");
    }

    heading("Running again changes nothing (plan exits 0 when there is nothing to do)");
    let code = cli(&emulator, &env, &["plan", "--cluster", CLUSTER])?;
    if code != 0 {
        bail!("plan found changes after apply (exit {code})");
    }
    cli(&emulator, &env, &["status"])?;

    heading("The endpoint goes public again");
    aws.set_access(CLUSTER, Access::PublicAndPrivate).await?;
    let code = cli(
        &emulator,
        &env,
        &[
            "handle-event",
            "events/update-cluster-config-public.json",
            "--poll",
            "1",
        ],
    )?;
    if code != 0 {
        bail!("handle-event failed (exit {code})");
    }

    heading("What is left");
    show(&aws).await?;
    println!("\nDone: the cluster's private DNS plumbing came and went with its endpoint access.");
    Ok(())
}
