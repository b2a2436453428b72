//! The eks-private-dns binary against the AWS emulator: exit codes, JSON
//! output, stdin events, and one-sentence errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use eks_private_dns_tests::*;

fn run(emulator: &Emulator, env: &[(&str, &str)], args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eks-private-dns"));
    cmd.args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in emulator.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the CLI runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

async fn world(emulator: &Emulator) -> (Vpc, Vpc) {
    let aws = emulator.aws();
    let cluster_vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b", "c"]).await.unwrap();
    let client_vpc = aws.vpc("10.1.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("demo", &cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    (cluster_vpc, client_vpc)
}

#[tokio::test]
async fn plan_apply_plan_exit_codes_and_json() {
    let emulator = Emulator::start().unwrap();
    let (_, client) = world(&emulator).await;
    let env = [("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.as_str())];

    let out = run(&emulator, &env, &["plan", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("create forward rule"));
    // plan changed nothing.
    assert!(emulator
        .aws()
        .snapshot()
        .await
        .unwrap()
        .endpoints
        .is_empty());

    let out = run(
        &emulator,
        &env,
        &["--output", "json", "apply", "--cluster", "demo"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["decision"], "managed");
    assert_eq!(report["applied"], true);
    assert!(report["api_calls"].as_u64().unwrap() > 0);

    let out = run(&emulator, &env, &["plan", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let out = run(&emulator, &env, &["--output", "json", "status"], None);
    assert_eq!(out.status.code(), Some(0));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["cluster"], "demo");
    assert_eq!(rows[0]["plumbing"], "in place");
    assert_eq!(rows[0]["inbound_ips"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn handle_event_from_stdin_and_ignored_events() {
    let emulator = Emulator::start().unwrap();
    let (_, client) = world(&emulator).await;
    let env = [("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.as_str())];
    let event = std::fs::read(workspace_root().join("events/create-cluster.json")).unwrap();
    let out = run(&emulator, &env, &["handle-event", "-"], Some(&event));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(emulator.aws().snapshot().await.unwrap().rules.len(), 1);

    let out = run(
        &emulator,
        &env,
        &[
            "--output",
            "json",
            "handle-event",
            "events/update-cluster-config-failed.json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ignored"], true);
}

#[tokio::test]
async fn errors_are_one_sentence_on_stderr_with_exit_1() {
    let emulator = Emulator::start().unwrap();
    world(&emulator).await;
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        Vec<&'a str>,
        Option<&'a [u8]>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            vec![("EKS_PRIVATE_DNS_ONPREM_CIDRS", "10.0.0/8")],
            vec!["plan", "--cluster", "demo"],
            None,
            "EKS_PRIVATE_DNS_ONPREM_CIDRS",
        ),
        (
            vec![],
            vec!["--inbound-ips", "9", "plan", "--cluster", "demo"],
            None,
            "EKS_PRIVATE_DNS_INBOUND_IPS",
        ),
        (
            vec![],
            vec!["handle-event", "-"],
            Some(b"{not json"),
            "not valid JSON",
        ),
        (
            vec![],
            vec!["handle-event", "events/no-such-file.json"],
            None,
            "no-such-file",
        ),
    ];
    for (env, args, stdin, needle) in cases {
        let out = run(&emulator, &env, &args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    // A prerequisite problem names the VPC.
    let aws = emulator.aws();
    let bad = aws.vpc("10.9.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.set_dns(
        &bad.id,
        shared::model::VpcDns {
            support: false,
            hostnames: true,
        },
    )
    .await
    .unwrap();
    aws.cluster("nodns", &bad, Access::Private, &[])
        .await
        .unwrap();
    let out = run(
        &emulator,
        &[("EKS_PRIVATE_DNS_ONPREM_CIDRS", "192.168.0.0/16")],
        &["apply", "--cluster", "nodns"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&bad.id), "{}", text(&out.stderr));
}

/// Region and credentials from a named profile, none in the environment: the
/// standard chains still find them (the environment is only a shortcut when
/// it has them, as in Lambda). With the profile's files gone, the CLI says
/// it found no credentials.
#[tokio::test]
async fn region_and_credentials_from_a_profile() {
    let emulator = Emulator::start().unwrap();
    let (_, client) = world(&emulator).await;
    let home = scratch("profile");
    let config = home.join("config");
    let credentials = home.join("credentials");
    std::fs::write(&config, format!("[profile team]\nregion = {REGION}\n")).unwrap();
    std::fs::write(
        &credentials,
        "[team]\naws_access_key_id = profile\naws_secret_access_key = profile\n",
    )
    .unwrap();
    let plan = |with_files: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eks-private-dns"));
        cmd.args(["plan", "--cluster", "demo"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_ENDPOINT_URL", &emulator.url)
            // No instance metadata: nothing may leave loopback.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PROFILE", "team")
            .env("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", &client.id);
        if with_files {
            cmd.env("AWS_CONFIG_FILE", &config)
                .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        } else {
            cmd.env("AWS_CONFIG_FILE", home.join("none"))
                .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
                .env("AWS_REGION", REGION);
        }
        cmd.output().expect("the CLI runs")
    };
    let out = plan(true);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("create forward rule"));

    let out = plan(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).to_lowercase().contains("credentials"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn apply_waits_for_aws_no_wait_is_converging_and_verify_path_checks_every_hop() {
    // Long enough that the path is surely not there yet when verify looks
    // right after a --no-wait apply.
    let emulator = Emulator::start_with(EmulatorOptions {
        resolver_seconds: 6.0,
        ..EmulatorOptions::slow_resolver()
    })
    .unwrap();
    let (_, client) = world(&emulator).await;
    let env = [
        ("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.as_str()),
        ("EKS_PRIVATE_DNS_ONPREM_CIDRS", "192.168.0.0/16"),
    ];
    // Without waiting: the calls are made, AWS is still CREATING: exit 0.
    let out = run(
        &emulator,
        &env,
        &[
            "--output",
            "json",
            "apply",
            "--cluster",
            "demo",
            "--no-wait",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "converging", "{report}");
    assert!(
        report["in_progress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("CREATING")),
        "{report}"
    );
    // Not there yet: the path fails, exit 1, naming the hop.
    let out = run(
        &emulator,
        &env,
        &["verify", "--cluster", "demo", "--path"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("FAIL"), "{}", text(&out.stdout));

    // Waiting: it returns when AWS has finished, and every path holds.
    let out = run(
        &emulator,
        &env,
        &["--output", "json", "apply", "--cluster", "demo"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["outcome"] == "applied" || report["outcome"] == "nothing to do",
        "{report}"
    );
    let out = run(
        &emulator,
        &env,
        &["verify", "--cluster", "demo", "--path"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let shown = text(&out.stdout);
    for hop in [
        "cluster VPC DNS attributes",
        "rule associated",
        "rule targets = live inbound IPs on 53",
        "outbound endpoint live",
        "inbound group admits the outbound IPs on 53",
        "control-plane group admits the VPC on 443",
        "published IPs = live inbound IPs",
        "inbound group admits the CIDR on 53",
    ] {
        assert!(shown.contains(&format!("pass {hop}")), "{hop}: {shown}");
    }
    assert!(!shown.contains("FAIL"), "{shown}");
    let out = run(
        &emulator,
        &env,
        &["--output", "json", "verify", "--cluster", "demo", "--path"],
        None,
    );
    let paths: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clients: Vec<&str> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients, vec![client.id.as_str(), "on-prem 192.168.0.0/16"]);

    // A teardown waits too, down to the security groups.
    emulator
        .aws()
        .set_access("demo", Access::PublicAndPrivate)
        .await
        .unwrap();
    let out = run(&emulator, &env, &["apply", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    emulator.aws().snapshot().await.unwrap().assert_clean();
}

/// What of ours is there: endpoint, rule and group ids, associations,
/// group rules and parameter names (the deployment's settings aside).
async fn plumbing(emulator: &Emulator) -> Vec<String> {
    let snap = emulator.aws().snapshot().await.unwrap();
    let mut ids: Vec<String> = Vec::new();
    ids.extend(
        snap.endpoints
            .iter()
            .map(|e| e.id().unwrap_or_default().to_string()),
    );
    ids.extend(
        snap.rules
            .iter()
            .map(|r| r.id().unwrap_or_default().to_string()),
    );
    ids.extend(snap.associations.iter().map(|a| {
        format!(
            "{}@{}",
            a.resolver_rule_id().unwrap_or_default(),
            a.vpc_id().unwrap_or_default()
        )
    }));
    ids.extend(
        snap.group_rules
            .iter()
            .map(|r| r.security_group_rule_id().unwrap_or_default().to_string()),
    );
    ids.extend(
        snap.parameters
            .keys()
            .filter(|name| !name.contains("/_deployment/"))
            .cloned(),
    );
    ids.sort();
    ids
}

/// Safe by default: a shell without the deployment's settings (an operator
/// checking from a laptop) plans and sweeps with the published settings
/// and finds nothing to do; without those too, or with other settings, it
/// takes nothing away and says what it holds back; --force applies it.
#[tokio::test]
async fn a_shell_without_the_settings_takes_nothing_away() {
    let emulator = Emulator::start().unwrap();
    let (_, client) = world(&emulator).await;
    let settings = [
        ("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.as_str()),
        ("EKS_PRIVATE_DNS_ONPREM_CIDRS", "192.168.0.0/16"),
    ];
    // The deployment (the sweep Lambda's settings) builds the plumbing and
    // publishes its settings.
    let mut rec = emulator.reconciler(config(&settings));
    rec.publishes_settings = true;
    let summary = shared::sweep::sweep(&rec, rec.patience(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert!(summary.settings_published);
    let built = plumbing(&emulator).await;
    assert!(built.iter().any(|id| id.contains('@')), "{built:?}");

    // A bare shell plans and sweeps as the deployment would: nothing to do.
    let out = run(&emulator, &[], &["plan", "--cluster", "demo"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "setting EKS_PRIVATE_DNS_CLIENT_VPC_IDS={} (published by the deployment)",
            client.id
        )),
        "{stdout}"
    );
    let out = run(
        &emulator,
        &[],
        &["--output", "json", "plan", "--cluster", "demo"],
        None,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources: Vec<&str> = report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["variable"] == "EKS_PRIVATE_DNS_ONPREM_CIDRS")
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, vec!["published"]);
    let out = run(&emulator, &[], &["sweep"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(plumbing(&emulator).await, built);

    // A flag overrides one value: the run's settings differ from those the
    // plumbing was made with, so what it would take away is held back.
    let narrower = [
        "--onprem-cidrs",
        "192.168.1.0/24",
        "plan",
        "--cluster",
        "demo",
    ];
    let out = run(&emulator, &[], &narrower, None);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "it would add the narrower rule: {stdout}"
    );
    assert!(
        stdout.contains("held back: ") && stdout.contains("--force"),
        "{stdout}"
    );
    assert!(stdout.contains("(flag or environment)"), "{stdout}");

    // Without the published settings too (a parameter we cannot see, as
    // with another owner or prefix): a bare shell would tear everything
    // down, and holds all of it back, in plan and in sweep.
    emulator
        .aws()
        .ssm
        .delete_parameter()
        .name("/eks-private-dns/_deployment/settings")
        .send()
        .await
        .unwrap();
    let out = run(&emulator, &[], &["plan", "--cluster", "demo"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("not-managed"), "{stdout}");
    assert!(stdout.contains("held back: "), "{stdout}");
    let out = run(&emulator, &[], &["sweep"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("held back"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        plumbing(&emulator).await,
        built,
        "a bare sweep deleted nothing"
    );

    // Other settings: the same without --force; with it, they converge.
    let other = [("EKS_PRIVATE_DNS_ONPREM_CIDRS", "192.168.0.0/16")];
    let out = run(&emulator, &other, &["sweep"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // It may add (here the outbound endpoint's addresses on 53, its VPC no
    // longer being a client), never take away.
    let now = plumbing(&emulator).await;
    let gone: Vec<&String> = built.iter().filter(|id| !now.contains(id)).collect();
    assert!(gone.is_empty(), "taken away without --force: {gone:?}");
    let out = run(&emulator, &other, &["--force", "sweep"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = plumbing(&emulator).await;
    assert!(
        !after.iter().any(|id| id.contains('@')),
        "disassociated: {after:?}"
    );
    let out = run(&emulator, &other, &["plan", "--cluster", "demo"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "converged: {}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("held back"),
        "{}",
        text(&out.stdout)
    );
}

/// A hub's operator: plan, apply, verify and status name a spoke's cluster
/// with --account; status lists every served account with an ACCOUNT
/// column; render names a spoke's cluster ACCOUNT:NAME.
#[tokio::test]
async fn a_hub_plans_applies_and_shows_a_spokes_clusters() {
    let org = org::Org::new(EmulatorOptions::default()).await;
    org.clusters(Access::Private).await;
    let settings = org.settings_with(&[]);
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let w = org.workload_id.as_str();
    let spoke = ["--cluster", "orders", "--account", w];
    let out = run(&org.emulator, &env, &[&["plan"][..], &spoke].concat(), None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("(account {w})")),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        &org.emulator,
        &env,
        &[&["apply"][..], &spoke].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(
        &org.emulator,
        &env,
        &[&["verify", "--path"][..], &spoke].concat(),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let out = run(&org.emulator, &env, &["status"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("ACCOUNT"), "{table}");
    let orders = table.lines().find(|l| l.contains("orders")).unwrap();
    assert!(
        orders.starts_with(w) && orders.contains("in place"),
        "{table}"
    );
    let out = run(&org.emulator, &env, &["--output", "json", "status"], None);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        3,
        "the workload account's three"
    );
    assert!(rows.as_array().unwrap().iter().all(|r| r["account"] == w));

    let out = run(&org.emulator, &env, &["render", "--format", "bind"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("cluster {w}:orders")),
        "{}",
        text(&out.stdout)
    );
}

/// The release an operator runs is one version, the workspace's.
#[test]
fn version_is_the_workspaces() {
    let out = Command::new(env!("CARGO_BIN_EXE_eks-private-dns"))
        .arg("--version")
        .output()
        .expect("the CLI runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("eks-private-dns {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A rollback never takes apart what a newer release made: a record of a
/// newer schema fails the cluster's run, naming the record, and writes
/// nothing, even once the cluster is gone.
#[tokio::test]
async fn a_record_of_a_newer_release_is_refused_and_kept() {
    let emulator = Emulator::start().unwrap();
    let (_, client) = world(&emulator).await;
    let env = [("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.as_str())];
    let out = run(&emulator, &env, &["apply", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let aws = emulator.aws();
    let name = "/eks-private-dns/demo/state";
    let (value, _) = aws.snapshot().await.unwrap().parameters[name].clone();
    let mut doc: serde_json::Value = serde_json::from_str(&value).unwrap();
    doc["schema"] = 99.into();
    aws.ssm
        .put_parameter()
        .name(name)
        .value(doc.to_string())
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let before = aws.snapshot().await.unwrap();

    let out = run(&emulator, &env, &["apply", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains(name) && said.contains("state schema 99"),
        "{said}"
    );
    aws.delete_cluster("demo").await.unwrap();
    let out = run(&emulator, &env, &["sweep"], None);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("state schema 99"), "{said}");
    let after = aws.snapshot().await.unwrap();
    assert_eq!(after.endpoints.len(), before.endpoints.len());
    assert_eq!(after.rules.len(), before.rules.len());
    assert_eq!(after.associations.len(), before.associations.len());
    assert_eq!(after.parameters, before.parameters);
}

type Settings = Vec<(&'static str, String)>;

/// Two deployments serving cluster demo, each with its plumbing applied:
/// the default owner's settings, and another owner's (its own prefix and
/// client VPC: a VPC has one rule for a name).
async fn two_owners(emulator: &Emulator) -> (Settings, Settings) {
    let (_, client) = world(emulator).await;
    let their_client = emulator
        .aws()
        .vpc("10.2.0.0/16", &[], &["a", "b"])
        .await
        .unwrap();
    let ours = vec![("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", client.id.clone())];
    let theirs = vec![
        ("EKS_PRIVATE_DNS_CLIENT_VPC_IDS", their_client.id.clone()),
        ("EKS_PRIVATE_DNS_OWNER", "other".to_string()),
        ("EKS_PRIVATE_DNS_SSM_PREFIX", "/other".to_string()),
    ];
    for settings in [&ours, &theirs] {
        let env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run(emulator, &env, &["apply", "--cluster", "demo"], None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    (ours, theirs)
}

/// Each deployment reads its own opt-out tag: the default owner's opts the
/// cluster out of the default deployment only, and another owner's key out
/// of that one only.
#[tokio::test]
async fn an_opt_out_tag_is_its_owners_alone() {
    let emulator = Emulator::start().unwrap();
    let (ours, theirs) = two_owners(&emulator).await;
    let ours: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let theirs: Vec<(&str, &str)> = theirs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let aws = emulator.aws();
    let params = |s: &Snapshot, prefix: &str| {
        s.parameters
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    };

    aws.tag_cluster("demo", "eks-private-dns/enabled", "false")
        .await
        .unwrap();
    for env in [&ours, &theirs] {
        let out = run(&emulator, env, &["apply", "--cluster", "demo"], None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let s = aws.snapshot().await.unwrap();
    assert_eq!(params(&s, "/eks-private-dns/"), 0);
    assert_eq!(params(&s, "/other/"), 3);
    assert_eq!((s.rules.len(), s.associations.len()), (1, 1));

    aws.tag_cluster("demo", "eks-private-dns/other/enabled", "false")
        .await
        .unwrap();
    let out = run(&emulator, &theirs, &["apply", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("eks-private-dns/other/enabled=false"),
        "{said}"
    );
    let s = aws.snapshot().await.unwrap();
    assert_eq!(params(&s, "/other/"), 0);
    assert!(s.endpoints.is_empty() && s.rules.is_empty());
}

/// `teardown` plans, then removes everything of its owner (the cluster's
/// plumbing, the shared endpoints, the deployment's settings) and proves
/// nothing is left, leaving another owner's plumbing of the same cluster
/// as it was; run again, it writes nothing.
#[tokio::test]
async fn teardown_removes_everything_of_its_owner_and_proves_it() {
    let emulator = Emulator::start().unwrap();
    let (ours, theirs) = two_owners(&emulator).await;
    let env: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let theirs: Vec<(&str, &str)> = theirs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The deployment's sweep publishes its settings.
    let mut rec = emulator.reconciler(config(&env));
    rec.publishes_settings = true;
    shared::sweep::sweep(&rec, rec.patience(), |_, _, _| {})
        .await
        .unwrap();
    let aws = emulator.aws();
    let before = aws.snapshot().await.unwrap();
    assert!(before
        .parameters
        .contains_key("/eks-private-dns/_deployment/settings"));
    let ours = |s: &Snapshot| {
        s.parameters
            .keys()
            .filter(|k| k.starts_with("/eks-private-dns/"))
            .count()
    };
    assert_eq!(ours(&before), 4, "{:?}", before.parameters.keys());

    let out = run(&emulator, &[], &["teardown"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("of this owner now: this account: forward rule"),
        "{said}"
    );
    let planned = aws.snapshot().await.unwrap();
    assert_eq!(planned.endpoints.len(), before.endpoints.len());
    assert_eq!(planned.parameters, before.parameters);

    let out = run(&emulator, &[], &["teardown", "--apply"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("removed the deployment's settings parameter"),
        "{said}"
    );
    assert!(said.contains("left: nothing"), "{said}");
    let after = aws.snapshot().await.unwrap();
    assert_eq!(ours(&after), 0, "{:?}", after.parameters.keys());
    // Exactly the other owner's half is left: its endpoints (inbound and
    // outbound), its rule and association, and its plan finds it whole.
    assert_eq!(after.endpoints.len(), before.endpoints.len() / 2);
    assert_eq!(after.rules.len(), 1);
    assert_eq!(after.associations.len(), 1);
    let out = run(&emulator, &theirs, &["plan", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let out = run(
        &emulator,
        &[],
        &["--output", "json", "teardown", "--apply"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["sweep"]["write_calls"], 0, "{doc}");
    assert_eq!(doc["left"], serde_json::json!([]));
}
