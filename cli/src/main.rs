//! eks-private-dns: the operator's and on-premises host's command line, a
//! thin shell over the same core as the Lambdas.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use shared::reconcile::Report;

mod output;
mod reconcile;
mod render;
mod settings;
mod status;
mod verify;

use output::*;
use reconcile::*;
use render::*;
use settings::*;
use status::*;
use verify::*;

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
    /// AWS region (default: AWS_REGION / the profile's region). `render`
    /// takes it more than once, to read several regions into one file.
    #[arg(long, global = true, action = clap::ArgAction::Append)]
    region: Vec<String>,
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

#[derive(Subcommand)]
enum Command {
    /// Print the actions that apply would take; change nothing. Exit 0: nothing
    /// to do, 2: changes, 1: error.
    Plan {
        #[arg(long)]
        cluster: String,
        /// The account the cluster runs in (a spoke of this hub);
        /// default: the caller's.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Reconcile one cluster now, and wait until AWS has finished
    /// (endpoints OPERATIONAL, associations COMPLETE, a teardown done down
    /// to the security groups). Work still in progress at --timeout ends
    /// "converging": exit 0, and the next sweep finishes it.
    Apply {
        #[arg(long)]
        cluster: String,
        /// The account the cluster runs in (a spoke of this hub);
        /// default: the caller's.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// While the cluster is CREATING or UPDATING, poll until it is done.
        #[arg(long, conflicts_with = "no_wait")]
        wait: bool,
        /// Return once the calls are made, without waiting for AWS.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for EKS (--wait) and for AWS, in seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// First poll interval of --wait, in seconds (it doubles after each look).
        #[arg(long, default_value_t = 5.0, hide = true)]
        poll: f64,
    },
    /// On-premises forwarder configuration for every cluster published under
    /// the prefix (or one), from SSM. With --out, the file is replaced
    /// atomically and only when its content changes; exit 0: unchanged,
    /// 2: changed (reload the DNS server), 1: error.
    Render {
        /// bind, bind-options, dnsmasq, unbound, coredns, powerdns, powerdns-lua, knot or windows.
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
        /// Render again every SECONDS, replacing --out only when it changes,
        /// until stopped; a pass that cannot read SSM, or finds a cluster's
        /// parameters malformed, keeps the last good forwarders and warns.
        #[arg(long, value_name = "SECONDS", requires = "out")]
        watch: Option<u64>,
        /// Run this shell command after --out changed (and again after a
        /// pass that follows a failed one), e.g. 'rndc reload'.
        #[arg(long, value_name = "COMMAND", requires = "out")]
        reload: Option<String>,
        /// For --format windows: where new zones are kept, local (a file of
        /// the DNS server), or forest, domain or legacy (Active Directory).
        #[arg(long, value_name = "SCOPE", default_value = "local")]
        windows_replication_scope: String,
    },
    /// Send DNS queries for a cluster's endpoint name to each inbound IP (or to
    /// --server) over UDP and TCP, and report the answers. Exit 0 only when
    /// every server answered. With --path, walk the AWS state of every
    /// client VPC's and on-prem CIDR's path instead, hop by hop.
    Verify {
        #[arg(long)]
        cluster: String,
        /// The account the cluster runs in (a spoke of this hub);
        /// default: the caller's.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
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
        #[arg(long, default_value_t = shared::reconcile::DEFAULT_WAIT.as_secs())]
        timeout: u64,
    },
    /// Remove everything of this owner in the account and region and in the
    /// accounts a hub serves: every cluster's plumbing (whatever its tags
    /// say), the shared endpoints, the orphans and the deployment's
    /// published settings; then list what still carries the owner tag.
    /// Without --apply, say what would go. Exit 0: nothing (left), 2: plan
    /// with something to remove, 1: something left or an error.
    Teardown {
        /// Carry it out (otherwise plan only).
        #[arg(long)]
        apply: bool,
        /// How long to wait for AWS to finish the deletes, in seconds.
        #[arg(long, default_value_t = shared::reconcile::DEFAULT_WAIT.as_secs())]
        timeout: u64,
    },
    /// Per cluster: endpoint access, trigger decision, plumbing state, inbound IPs
    /// (of every account a hub serves, with an ACCOUNT column).
    Status {
        #[arg(long)]
        cluster: Option<String>,
        /// The account the cluster runs in (a spoke of this hub);
        /// default: the caller's.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Process one EventBridge event (a file, or - for stdin) exactly as the
    /// cluster-event Lambda does.
    HandleEvent {
        file: String,
        /// How long to wait for a cluster that is CREATING or UPDATING and
        /// for AWS to finish the plumbing, in seconds (the Lambda waits for
        /// its remaining time, less a tenth, at most a minute).
        #[arg(long, default_value_t = shared::reconcile::DEFAULT_WAIT.as_secs())]
        timeout: u64,
        /// First poll interval, in seconds (it doubles after each look).
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

async fn run(cli: &Cli) -> Result<ExitCode> {
    if cli.region.len() > 1 && !matches!(cli.command, Command::Render { .. }) {
        return Err(anyhow!(
            "--region is given {} times; only render reads several regions",
            cli.region.len()
        ));
    }
    match &cli.command {
        Command::Plan { cluster, account } => plan(cli, cluster, account.as_deref()).await,
        Command::Apply {
            cluster,
            account,
            wait,
            no_wait,
            timeout,
            poll,
        } => {
            let how = ApplyHow {
                wait: *wait,
                no_wait: *no_wait,
                timeout: *timeout,
                poll: *poll,
            };
            apply(cli, cluster, account.as_deref(), how).await
        }
        Command::HandleEvent {
            file,
            timeout,
            poll,
        } => handle_event_file(cli, file, *timeout, *poll).await,
        Command::Status { cluster, account } => {
            status(cli, cluster.as_deref(), account.as_deref()).await
        }
        Command::Render {
            format,
            cluster,
            out,
            allow_empty,
            watch,
            reload,
            windows_replication_scope,
        } => {
            let target = RenderTarget {
                cluster: cluster.as_deref(),
                out: out.as_deref(),
                allow_empty: *allow_empty,
                reload: reload.as_deref(),
                windows_scope: windows_scope(windows_replication_scope)?,
            };
            match watch {
                Some(seconds) => render_watch(cli, format, &target, *seconds).await,
                None => render(cli, format, &target).await,
            }
        }
        Command::Verify {
            cluster,
            account,
            path: true,
            ..
        } => verify_path(cli, cluster, account.as_deref()).await,
        Command::Verify {
            cluster,
            account,
            server,
            timeout_ms,
            ..
        } => {
            verify(
                cli,
                cluster,
                account.as_deref(),
                server.as_deref(),
                *timeout_ms,
            )
            .await
        }
        Command::Sweep { timeout } => sweep(cli, *timeout).await,
        Command::Teardown { apply, timeout } => teardown(cli, *apply, *timeout).await,
    }
}

/// The cluster `name` of `account` (default: the caller's): an account
/// given is compared with the caller's own (one STS GetCallerIdentity).
async fn cluster_id(
    rec: &shared::Reconciler,
    name: &str,
    account: Option<&str>,
) -> Result<shared::model::ClusterId> {
    use shared::model::{Account, ClusterId};
    let Some(account) = account else {
        return Ok(ClusterId::home(name));
    };
    if !shared::config::is_account_id(account) {
        return Err(anyhow!(
            "--account: '{account}' is not a 12-digit account id"
        ));
    }
    let home = match rec.home_id() {
        Some(home) => Some(home.to_string()),
        None => {
            let out = rec
                .clients
                .sts()
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| anyhow!("cannot tell which account the credentials are of: {e}"))?;
            out.account().map(str::to_string)
        }
    };
    if let Some(home) = &home {
        let _ = rec.account.set(home.clone());
    }
    Ok(ClusterId {
        account: Account::of(account, home.as_deref()),
        name: name.to_string(),
    })
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
