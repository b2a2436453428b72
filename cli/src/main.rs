//! eks-private-dns: the operator's and on-premises host's command line, a
//! thin shell over the same core as the Lambdas.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use shared::aws::Clients;
use shared::config::{self, Config, Mode};
use shared::handler::{handle_event, EventResult};
use shared::plan::{parameter_name, Decision, PARAM_INBOUND_IPS};
use shared::reconcile::{Outcome, Reconciler, Report, Role};
use shared::wait::Patience;

#[derive(Parser)]
#[command(
    name = "eks-private-dns",
    version,
    about = "Zero-touch private DNS for Amazon EKS: Route 53 Resolver plumbing for private cluster endpoints",
    after_help = "AWS credentials, AWS_REGION and AWS_ENDPOINT_URL come from the standard AWS SDK \
                  configuration chain. Every setting below can also be given as the environment \
                  variable shown; a flag overrides it."
)]
struct Cli {
    /// AWS region (default: AWS_REGION / the profile's region).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Output format: text for people, json (one document on stdout) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(flatten)]
    settings: Settings,
    /// Take away what this run's settings do not want even where they
    /// differ from those the plumbing was made with (or from the
    /// deployment's published settings). Without it such a run only adds:
    /// what it would delete or shrink is listed as held back.
    #[arg(long, global = true)]
    force: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Args)]
struct Settings {
    /// Comma-separated VPC ids that must resolve the cluster names.
    #[arg(long, global = true, env = config::ENV_CLIENT_VPC_IDS, hide_env_values = true)]
    client_vpc_ids: Option<String>,
    /// Comma-separated on-premises CIDRs allowed on 53 and 443.
    #[arg(long, global = true, env = config::ENV_ONPREM_CIDRS, hide_env_values = true)]
    onprem_cidrs: Option<String>,
    /// Also treat VPCs peered with the cluster VPC as client VPCs (true/false).
    #[arg(long, global = true, env = config::ENV_DISCOVER_PEERED_VPCS, hide_env_values = true)]
    discover_peered_vpcs: Option<String>,
    /// Use this existing outbound Resolver endpoint; never create or delete one.
    #[arg(long, global = true, env = config::ENV_OUTBOUND_ENDPOINT_ID, hide_env_values = true)]
    outbound_endpoint_id: Option<String>,
    /// Where to create the shared outbound endpoint.
    #[arg(long, global = true, env = config::ENV_OUTBOUND_VPC_ID, hide_env_values = true)]
    outbound_vpc_id: Option<String>,
    /// private-only or private-access.
    #[arg(long, global = true, env = config::ENV_TRIGGER, hide_env_values = true)]
    trigger: Option<String>,
    /// SSM parameter path prefix.
    #[arg(long, global = true, env = config::ENV_SSM_PREFIX, hide_env_values = true)]
    ssm_prefix: Option<String>,
    /// Owner id written in ownership tags.
    #[arg(long, global = true, env = config::ENV_OWNER, hide_env_values = true)]
    owner: Option<String>,
    /// IPs per inbound endpoint, 2 to 6.
    #[arg(long, global = true, env = config::ENV_INBOUND_IPS, hide_env_values = true)]
    inbound_ips: Option<String>,
    /// Allow 0.0.0.0/0 or ::/0 among the CIDRs (true/false).
    #[arg(long, global = true, env = config::ENV_ALLOW_WORLD, hide_env_values = true)]
    allow_world: Option<String>,
    /// Allow CIDRs that cover public address space (true/false).
    #[arg(long, global = true, env = config::ENV_ALLOW_PUBLIC_CIDRS, hide_env_values = true)]
    allow_public_cidrs: Option<String>,
    /// Comma-separated CIDRs inside which cluster tags' CIDRs must lie
    /// (default: the private ranges).
    #[arg(long, global = true, env = config::ENV_TAG_CIDR_ENVELOPE, hide_env_values = true)]
    tag_cidr_envelope: Option<String>,
    /// Where the 443 rules go: cluster (the EKS-made cluster security
    /// group) or tagged (the cluster's additional group tagged
    /// eks-private-dns:api-rules=<owner>).
    #[arg(long, global = true, env = config::ENV_API_RULES_GROUP, hide_env_values = true)]
    api_rules_group: Option<String>,
    /// Route 53 Resolver requests per second (default 4).
    #[arg(long, global = true, env = config::ENV_RESOLVER_RATE, hide_env_values = true)]
    resolver_rate: Option<String>,
    /// Clusters a sweep reconciles at once (default 4).
    #[arg(long, global = true, env = config::ENV_SWEEP_CONCURRENCY, hide_env_values = true)]
    sweep_concurrency: Option<String>,
    /// apply, or plan (observe and report, change nothing); the commands
    /// plan and status never change anything whatever this says.
    #[arg(long, global = true, env = config::ENV_MODE, hide_env_values = true)]
    mode: Option<String>,
}

impl Settings {
    /// The value given for variable `name` (its flag, or the environment).
    fn value(&self, name: &str) -> Option<String> {
        let v = match name {
            config::ENV_CLIENT_VPC_IDS => &self.client_vpc_ids,
            config::ENV_ONPREM_CIDRS => &self.onprem_cidrs,
            config::ENV_DISCOVER_PEERED_VPCS => &self.discover_peered_vpcs,
            config::ENV_OUTBOUND_ENDPOINT_ID => &self.outbound_endpoint_id,
            config::ENV_OUTBOUND_VPC_ID => &self.outbound_vpc_id,
            config::ENV_TRIGGER => &self.trigger,
            config::ENV_SSM_PREFIX => &self.ssm_prefix,
            config::ENV_OWNER => &self.owner,
            config::ENV_INBOUND_IPS => &self.inbound_ips,
            config::ENV_ALLOW_WORLD => &self.allow_world,
            config::ENV_ALLOW_PUBLIC_CIDRS => &self.allow_public_cidrs,
            config::ENV_TAG_CIDR_ENVELOPE => &self.tag_cidr_envelope,
            config::ENV_API_RULES_GROUP => &self.api_rules_group,
            config::ENV_MODE => &self.mode,
            config::ENV_RESOLVER_RATE => &self.resolver_rate,
            config::ENV_SWEEP_CONCURRENCY => &self.sweep_concurrency,
            _ => return None,
        };
        v.clone()
    }

    /// The given values alone, over the defaults.
    fn config(&self) -> Result<Config> {
        Config::from_lookup(|name| self.value(name))
            .map_err(|e| anyhow!("invalid configuration: {e}"))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print the actions that apply would take; change nothing. Exit 0: nothing
    /// to do, 2: changes, 1: error.
    Plan {
        #[arg(long)]
        cluster: String,
    },
    /// Reconcile one cluster now, and wait until AWS has finished
    /// (endpoints OPERATIONAL, associations COMPLETE, a teardown done down
    /// to the security groups). Work still in progress at --timeout ends
    /// "converging": exit 0, and the next sweep finishes it.
    Apply {
        #[arg(long)]
        cluster: String,
        /// While the cluster is CREATING or UPDATING, poll until it is done.
        #[arg(long, conflicts_with = "no_wait")]
        wait: bool,
        /// Return once the calls are made, without waiting for AWS.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for EKS (--wait) and for AWS, in seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// First poll interval of --wait, in seconds (it doubles up to 30).
        #[arg(long, default_value_t = 5.0, hide = true)]
        poll: f64,
    },
    /// On-premises forwarder configuration for every cluster published under
    /// the prefix (or one), from SSM. With --out, the file is replaced
    /// atomically and only when its content changes; exit 0: unchanged,
    /// 2: changed (reload the DNS server), 1: error.
    Render {
        /// bind, bind-options, dnsmasq, unbound, coredns, powerdns or windows.
        #[arg(long)]
        format: String,
        #[arg(long)]
        cluster: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Let --out replace a file that has clusters with one that has none
        /// (otherwise that is an error, and the file is kept: a render that
        /// finds nothing is more often a wrong region or profile than a
        /// deployment with no clusters left).
        #[arg(long, requires = "out")]
        allow_empty: bool,
    },
    /// Send DNS queries for a cluster's endpoint name to each inbound IP (or to
    /// --server) over UDP and TCP, and report the answers. Exit 0 only when
    /// every server answered. With --path, walk the AWS state of every
    /// client VPC's and on-prem CIDR's path instead, hop by hop.
    Verify {
        #[arg(long)]
        cluster: String,
        /// Ask this server instead (IP or IP:PORT), e.g. your on-prem resolver.
        #[arg(long, conflicts_with = "path")]
        server: Option<String>,
        /// Check every hop of every path in AWS (rule association, targets,
        /// endpoints, security groups on 53 and 443) instead of querying.
        /// Exit 0 only when every path holds.
        #[arg(long)]
        path: bool,
        /// Per-query timeout, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Reconcile every cluster in the region, and remove what we own for
    /// clusters that no longer exist (the scheduled sweep Lambda, on demand).
    Sweep {
        /// How long to wait for AWS to finish what the sweep started, in
        /// seconds (0: do not wait).
        #[arg(long, default_value_t = 840)]
        timeout: u64,
    },
    /// Per cluster: endpoint access, trigger decision, plumbing state, inbound IPs.
    Status {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Process one EventBridge event (a file, or - for stdin) exactly as the
    /// cluster-event Lambda does.
    HandleEvent {
        file: String,
        /// How long to wait for a cluster that is CREATING or UPDATING and
        /// for AWS to finish the plumbing, in seconds (the Lambda waits for
        /// its remaining time, less a tenth, at most a minute).
        #[arg(long, default_value_t = 840)]
        timeout: u64,
        /// First poll interval, in seconds (it doubles up to 30).
        #[arg(long, default_value_t = 5.0, hide = true)]
        poll: f64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(&cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_sentence(&e));
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EKS_PRIVATE_DNS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// "context: cause: root" in one line.
fn one_sentence(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The reconciler of a CLI run: the deployment's published settings, with
/// the given ones (flags, environment) over them, and where each came from.
/// The given prefix and owner (or the defaults) find the published ones.
async fn reconciler_and_settings(
    cli: &Cli,
    mode: Mode,
) -> Result<(Reconciler, Vec<shared::settings::Setting>)> {
    let given = cli.settings.config()?;
    let mut clients = Clients::from_env(cli.region.clone(), given.resolver_rate)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    let owner = shared::owner::Owner::new(&given.owner);
    let published = shared::settings::load(&clients, &given.ssm_prefix, &owner)
        .await
        .map_err(|e| {
            anyhow!(
                "cannot read the deployment's settings at {}: {e}",
                shared::settings::parameter_name(&given.ssm_prefix)
            )
        })?;
    let (mut config, sources) =
        shared::settings::layered(|name| cli.settings.value(name), published.as_ref())
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
    if mode == Mode::Plan {
        config.mode = Mode::Plan;
    }
    if config.resolver_rate != given.resolver_rate {
        clients = Clients::from_env(cli.region.clone(), config.resolver_rate)
            .await
            .map_err(|e| anyhow!("{}", e.message))?;
    }
    let mut rec = Reconciler::new(clients, config);
    rec.role = Role::Operator { force: cli.force };
    rec.deployment_digest = published.map(|p| p.digest);
    Ok((rec, sources))
}

async fn reconciler(cli: &Cli, mode: Mode) -> Result<Reconciler> {
    Ok(reconciler_and_settings(cli, mode).await?.0)
}

async fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Plan { cluster } => {
            let (rec, settings) = reconciler_and_settings(cli, Mode::Plan).await?;
            let mut report = rec.reconcile_in(cluster, None, Mode::Plan).await;
            report.settings = settings;
            emit(cli.output, &report, || print_report(&report))?;
            if let Some(error) = &report.error {
                return Err(anyhow!("{error}"));
            }
            Ok(if report.actions.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Apply {
            cluster,
            wait,
            no_wait,
            timeout,
            poll,
        } => {
            let rec = reconciler(cli, Mode::Apply).await?;
            let deadline = Instant::now() + Duration::from_secs(*timeout);
            let report = if *wait {
                let tty = std::io::stderr().is_terminal();
                rec.reconcile_waiting(
                    cluster,
                    None,
                    deadline,
                    Duration::from_secs_f64(poll.max(0.05)),
                    |report, delay| {
                        if tty {
                            eprintln!(
                                "{}: {}; checking again in {:.0} s",
                                report.cluster,
                                report.detail.as_deref().unwrap_or("pending"),
                                delay.as_secs_f64()
                            );
                        }
                    },
                )
                .await
            } else if *no_wait {
                rec.reconcile_until(cluster, None, Patience::none()).await
            } else {
                let patience = rec.waiting.until(tokio::time::Instant::from_std(deadline));
                rec.reconcile_until(cluster, None, patience).await
            };
            emit(cli.output, &report, || print_report(&report))?;
            finish(&report)
        }
        Command::HandleEvent {
            file,
            timeout,
            poll,
        } => {
            let bytes = read_input(file)?;
            let rec = reconciler(cli, Mode::Apply).await?;
            let deadline = Instant::now() + Duration::from_secs(*timeout);
            let result = handle_event(
                &rec,
                &bytes,
                deadline,
                Duration::from_secs_f64(poll.max(0.05)),
            )
            .await
            .map_err(|e| anyhow!("{file}: {e}"))?;
            match result {
                EventResult::Ignored { reason } => {
                    #[derive(Serialize)]
                    struct Ignored<'a> {
                        ignored: bool,
                        reason: &'a str,
                    }
                    emit(
                        cli.output,
                        &Ignored {
                            ignored: true,
                            reason: &reason,
                        },
                        || println!("ignored: {reason}"),
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                EventResult::Reconciled { report, .. } => {
                    emit(cli.output, &report, || print_report(&report))?;
                    finish(&report)
                }
            }
        }
        Command::Status { cluster } => status(cli, cluster.as_deref()).await,
        Command::Render {
            format,
            cluster,
            out,
            allow_empty,
        } => {
            render(
                cli,
                format,
                cluster.as_deref(),
                out.as_deref(),
                *allow_empty,
            )
            .await
        }
        Command::Verify {
            cluster,
            path: true,
            ..
        } => verify_path(cli, cluster).await,
        Command::Verify {
            cluster,
            server,
            timeout_ms,
            ..
        } => verify(cli, cluster, server.as_deref(), *timeout_ms).await,
        Command::Sweep { timeout } => {
            let rec = reconciler(cli, Mode::Apply).await?;
            let tty = std::io::stderr().is_terminal();
            let patience = rec.waiting.from_now_for(Duration::from_secs(*timeout));
            let summary = shared::sweep::sweep(&rec, patience, |done, total, report| {
                if tty {
                    let what = if report.is_converging() {
                        format!("{} actions, converging", report.actions.len())
                    } else if report.actions.is_empty() {
                        "in sync".to_string()
                    } else {
                        format!("{} actions", report.actions.len())
                    };
                    eprintln!(
                        "[{done}/{total}] {}: {} ({what}){}",
                        report.cluster,
                        report.decision,
                        report
                            .error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                }
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
            emit(cli.output, &summary, || print_sweep(&summary))?;
            if summary.failed > 0 {
                return Err(anyhow!(
                    "{} of {} clusters failed: {}",
                    summary.failed,
                    summary.clusters_seen,
                    summary
                        .failures
                        .iter()
                        .map(|f| format!("{} ({})", f.cluster, f.error))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_sweep(s: &shared::sweep::SweepReport) {
    for report in s
        .reports
        .iter()
        .filter(|r| !r.actions.is_empty() || !r.held_back.is_empty())
    {
        print_report(report);
    }
    for held in s.held_back.iter().filter(|h| h.starts_with("(shared)")) {
        println!("held back: {held}");
    }
    println!(
        "swept {} clusters: {} managed, {} pending, {} not managed, {} invalid; {} changed, \
         {} converging, {} failed, {} orphans removed; {} API calls ({} writes, {} throttled, \
         {} polls) in {} ms",
        s.clusters_seen,
        s.managed,
        s.pending,
        s.not_managed,
        s.invalid,
        s.changed,
        s.converging,
        s.failed,
        s.orphans_removed,
        s.api_calls,
        s.write_calls,
        s.throttles,
        s.poll_calls,
        s.duration_ms
    );
    for c in &s.in_progress {
        println!(
            "{}: still in progress: {} (the next sweep finishes it)",
            c.cluster,
            c.waiting_for.join("; ")
        );
    }
}

/// Exit 1 on an error; 0 otherwise, converging included (AWS being slow is
/// not an error: the next sweep finishes it).
fn finish(report: &Report) -> Result<ExitCode> {
    if let Some(error) = &report.error {
        return Err(anyhow!("cluster {}: {error}", report.cluster));
    }
    if report.is_converging() && std::io::stderr().is_terminal() {
        eprintln!(
            "cluster {}: still in progress: {}; the next sweep finishes it",
            report.cluster,
            report.in_progress.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(file: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the event from standard input")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read event file {file}"))?;
    }
    Ok(bytes)
}

fn emit<T: Serialize>(output: Output, value: &T, text: impl FnOnce()) -> Result<()> {
    match output {
        Output::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        }
        Output::Text => text(),
    }
    Ok(())
}

fn print_report(report: &Report) {
    let detail = report
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    println!("cluster {}: {}{detail}", report.cluster, report.decision);
    for action in &report.actions {
        println!("  + {action}");
    }
    for problem in &report.problems {
        println!("  ! {problem}");
    }
    for repaired in &report.repaired {
        println!("  repaired: {repaired}");
    }
    for kept in &report.kept {
        println!("  kept: {kept}");
    }
    for warning in &report.warnings {
        println!("  warning: {warning}");
    }
    for held in &report.held_back {
        println!("  held back: {held}");
    }
    let defaults = report
        .settings
        .iter()
        .filter(|s| s.source == shared::settings::Source::Default)
        .count();
    for s in report
        .settings
        .iter()
        .filter(|s| s.source != shared::settings::Source::Default)
    {
        println!(
            "  setting {}={} ({})",
            s.variable,
            s.value,
            s.source.as_str()
        );
    }
    if !report.settings.is_empty() {
        println!(
            "  settings: {defaults} of {} at their defaults",
            report.settings.len()
        );
    }
    let verb = match report.outcome {
        Outcome::Converging => format!(
            "applied {} actions; converging (AWS is still working; the next sweep finishes it)",
            report.actions.len()
        ),
        _ if report.applied => format!("applied {} actions", report.actions.len()),
        _ if report.actions.is_empty() => "nothing to do".to_string(),
        _ if report.mode == "plan" => {
            format!("{} planned actions (nothing changed)", report.actions.len())
        }
        _ => "not applied".to_string(),
    };
    for waiting in &report.in_progress {
        println!("  in progress: {waiting}");
    }
    println!(
        "  {verb}; {} API calls ({} writes, {} polls) in {} ms",
        report.api_calls, report.write_calls, report.poll_calls, report.duration_ms
    );
}

#[derive(Serialize)]
struct StatusRow {
    cluster: String,
    status: String,
    endpoint_access: String,
    decision: String,
    detail: Option<String>,
    plumbing: String,
    pending_actions: Vec<String>,
    inbound_ips: Vec<String>,
}

async fn status(cli: &Cli, only: Option<&str>) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Plan).await?;
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => shared::sweep::list_clusters(&rec)
            .await
            .map_err(|e| anyhow!("{e}"))?,
    };
    let mut rows = Vec::new();
    for name in names {
        let (plan, obs) = rec.plan(&name, None).await.map_err(|e| anyhow!("{e}"))?;
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
        let ips_name = parameter_name(&rec.config.ssm_prefix, &name, PARAM_INBOUND_IPS);
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
            Decision::Invalid { problem } => Some(problem.clone()),
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

fn print_status(rows: &[StatusRow]) {
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

/// The clusters published under `path` by this deployment (parameters
/// with our owner tag, EKS names, private addresses), the warnings for what
/// was skipped, and how many parameters were read.
async fn published_under(
    rec: &Reconciler,
    path: &str,
) -> Result<(Vec<shared::render::Published>, Vec<String>, usize)> {
    let (parameters, owned) = tokio::try_join!(
        shared::observe::parameters_recursive(&rec.clients, path),
        shared::observe::owned_parameter_names(&rec.clients, path, &rec.owner, None),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let trust = shared::render::Trust {
        owner: rec.owner.id.clone(),
        owned,
    };
    let (clusters, warnings) = shared::render::collect(&rec.config.ssm_prefix, &parameters, &trust);
    Ok((clusters, warnings, parameters.len()))
}

/// How many clusters a file that render wrote says it has (its header
/// line); None for any other file.
fn rendered_clusters(text: &str) -> Option<usize> {
    text.lines().take(3).find_map(|line| {
        let (_, rest) = line.split_once("Do not edit: the next render replaces this file. ")?;
        rest.strip_suffix(" cluster(s).")?.parse().ok()
    })
}

async fn render(
    cli: &Cli,
    format: &str,
    cluster: Option<&str>,
    out: Option<&std::path::Path>,
    allow_empty: bool,
) -> Result<ExitCode> {
    use shared::render::{render, Format};
    let format = Format::parse(format).ok_or_else(|| {
        anyhow!(
            "'{format}' is not a format; use one of {}",
            Format::ALL.map(|f| f.name()).join(", ")
        )
    })?;
    let rec = reconciler(cli, Mode::Plan).await?;
    let prefix = rec.config.ssm_prefix.clone();
    let path = match cluster {
        Some(name) => format!("{prefix}/{name}"),
        None => prefix.clone(),
    };
    let (clusters, warnings, parameters) = published_under(&rec, &path).await?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if let (Some(name), true) = (cluster, clusters.is_empty()) {
        return Err(anyhow!(
            "no complete parameters for cluster {name} under {prefix}/{name}/"
        ));
    }
    let text = render(format, &prefix, &clusters);
    let Some(out) = out else {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    let before = std::fs::read_to_string(out).ok();
    if clusters.is_empty() && !allow_empty {
        let had =
            before.as_deref().filter(|t| !t.trim().is_empty()).map(|t| {
                match rendered_clusters(t) {
                    Some(0) => None,
                    Some(n) => Some(format!("its {n} cluster(s)")),
                    None => Some("its content".to_string()),
                }
            });
        if let Some(Some(had)) = had {
            return Err(anyhow!(
                "found no published cluster under {prefix}/ in {} ({} parameters, {} skipped), \
                 so {} keeps {had}; check the region, the profile and \
                 EKS_PRIVATE_DNS_SSM_PREFIX, or pass --allow-empty if every cluster is gone",
                rec.clients.region,
                parameters,
                warnings.len(),
                out.display()
            ));
        }
    }
    if before.as_deref() == Some(text.as_str()) {
        if cli.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"file": out, "changed": false, "clusters": clusters.len()})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Write beside the target and rename over it: readers see the old file
    // or the new one, never half of one.
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} is not a file path", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(out) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, out).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}", out.display())
    })?;
    if cli.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({"file": out, "changed": true, "clusters": clusters.len()})
        );
    } else if std::io::stderr().is_terminal() {
        eprintln!("{} updated ({} clusters)", out.display(), clusters.len());
    }
    Ok(ExitCode::from(2))
}

async fn verify_path(cli: &Cli, cluster: &str) -> Result<ExitCode> {
    let rec = reconciler(cli, Mode::Plan).await?;
    let paths = rec.paths(cluster).await.map_err(|e| anyhow!(e))?;
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

async fn verify(
    cli: &Cli,
    cluster: &str,
    server: Option<&str>,
    timeout_ms: u64,
) -> Result<ExitCode> {
    use shared::verify::{parse_server, verify};
    let explicit = server
        .map(parse_server)
        .transpose()
        .map_err(|e| anyhow!("--server: {e}"))?;
    let rec = reconciler(cli, Mode::Plan).await?;
    let prefix = rec.config.ssm_prefix.clone();
    let (clusters, warnings, _) = published_under(&rec, &format!("{prefix}/{cluster}")).await?;
    let Some(published) = clusters.into_iter().find(|c| c.cluster == cluster) else {
        let why = warnings.join("; ");
        return Err(anyhow!(
            "cluster {cluster} is not published under {prefix}/{cluster}/{}",
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
