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
    aws.cluster("demo", &cluster_vpc, true, false, &[])
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
    aws.set_dns(&bad.id, false, true).await.unwrap();
    aws.cluster("nodns", &bad, true, false, &[]).await.unwrap();
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
    let emulator = Emulator::start_with(EmulatorOptions::slow_resolver()).unwrap();
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
    emulator.aws().set_access("demo", true, true).await.unwrap();
    let out = run(&emulator, &env, &["apply", "--cluster", "demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    emulator.aws().snapshot().await.unwrap().assert_clean();
}
