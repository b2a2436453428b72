//! The deployable artifacts end to end: the `bootstrap` binaries that `sam
//! build` made (`.aws-sam/build/*/bootstrap`, built by `cargo lambda build
//! --release`), run against a Lambda runtime API on loopback
//! (tests/src/runtime_api.rs, which hands out each event with a deadline
//! 900 s away, as Lambda does for the template's functions), invoked with
//! the events/ fixtures, against the AWS emulator. The same story told
//! through the CLI (`handle-event`, `sweep`) in a second emulator must
//! leave the same AWS state at every step.
//!
//! `make test` runs `sam build` first; run it (or `make sam-build`) before
//! `cargo test` on its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use eks_private_dns_tests::runtime_api::cold_start;
use eks_private_dns_tests::*;

/// A function's artifact from `sam build`.
fn artifact(logical_id: &str) -> PathBuf {
    let dir = std::env::var_os("EKS_PRIVATE_DNS_SAM_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".aws-sam/build"));
    let bin = dir.join(logical_id).join("bootstrap");
    assert!(
        bin.is_file(),
        "{} is missing: run `make sam-build` first (`make test` does)",
        bin.display()
    );
    bin
}

/// Start a function's bootstrap, as Lambda does (with the function's
/// environment and the runtime's variables), hand it one events/ fixture,
/// and return its response.
async fn invoke(logical_id: &str, env: &[(String, String)], fixture: &str) -> serde_json::Value {
    let mut cmd = Command::new(artifact(logical_id));
    cmd.env_clear()
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let event = serde_json::to_vec(&fixture_json(fixture)).unwrap();
    let run = cold_start(cmd, &[event], Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("{logical_id} with {fixture}: {e:#}"));
    let (error, body) = &run.responses[0];
    assert!(!error, "{logical_id} with {fixture} failed: {body}");
    let result: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{logical_id} with {fixture}: not JSON ({e}): {body}"));
    check_metrics(logical_id, &run.stdout, &result);
    check_ready_line(logical_id, &run.stdout);
    result
}

/// The function said it was ready, with the release it runs (the
/// workspace's one version), so that an operator finds it in the log.
fn check_ready_line(logical_id: &str, stdout: &str) {
    let version = format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" ready\"") && l.contains(&version)),
        "{logical_id}: no ready line with {version} in {stdout}"
    );
}

/// The invocation printed one embedded-metric document, in our namespace,
/// with every metric it names as a number, and figures that agree with the
/// result it returned.
fn check_metrics(logical_id: &str, stdout: &str, result: &serde_json::Value) {
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|d| d.get("_aws").is_some())
        .collect();
    if result.get("ignored").is_some() || result.get("rejected").is_some() {
        assert!(
            docs.is_empty(),
            "{logical_id}: no reconcile, no metrics: {stdout}"
        );
        return;
    }
    assert_eq!(docs.len(), 1, "{logical_id}: one metrics line in {stdout}");
    let doc = &docs[0];
    let meta = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(meta["Namespace"], "eks-private-dns", "{doc}");
    for metric in meta["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(doc[name].is_u64(), "{logical_id}: {name} in {doc}");
    }
    for dim in meta["Dimensions"][0].as_array().unwrap() {
        assert!(doc[dim.as_str().unwrap()].is_string(), "{doc}");
    }
    // The account comes from the function's own ARN (the runtime API's
    // invocation header), the region from its environment: no call made.
    assert_eq!(doc["Account"], "123456789012", "{doc}");
    assert_eq!(doc["Region"], REGION, "{doc}");
    if let Some(races) = result.get("lost_races") {
        assert_eq!(&doc["LostRaces"], races, "{logical_id}: {doc} vs {result}");
    }
    // Actions by kind: each published only when some, and together the
    // Actions figure.
    let kind = |name: &str| doc.get(name).map(|v| v.as_u64().unwrap());
    let kinds = ["Creates", "Changes", "Deletes"];
    for name in kinds {
        assert_ne!(
            kind(name),
            Some(0),
            "{logical_id}: {name} published at zero: {doc}"
        );
    }
    let sum: u64 = kinds.iter().filter_map(|n| kind(n)).sum();
    assert_eq!(
        doc["Actions"], sum,
        "{logical_id}: actions by kind in {doc}"
    );
    if let Some(by_kind) = result.get("actions_by_kind") {
        for (key, name) in [
            ("create", "Creates"),
            ("change", "Changes"),
            ("delete", "Deletes"),
        ] {
            assert_eq!(
                by_kind.get(key).and_then(|v| v.as_u64()),
                kind(name),
                "{logical_id}: {name} in {doc} vs {result}"
            );
        }
    }
    if let Some(calls) = result.get("api_calls") {
        assert_eq!(&doc["ApiCalls"], calls, "{logical_id}: {doc} vs {result}");
    }
    if let Some(seen) = result.get("clusters_seen") {
        assert_eq!(&doc["Reconciles"], seen, "{doc}");
    } else if result.get("outcome").is_some() {
        assert_eq!(doc["Reconciles"], 1, "{doc}");
        let failed = u64::from(result["outcome"] == "error");
        assert_eq!(doc["ReconcileFailures"], failed, "{doc}");
    }
}

fn fixture_json(name: &str) -> serde_json::Value {
    fixture(name).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// How the story's events reach eks-private-dns.
enum Driver {
    Lambda,
    Cli,
}

impl Driver {
    /// Deliver an EKS event (cluster-event) and return its JSON result.
    async fn event(&mut self, env: &[(String, String)], fixture: &str) -> serde_json::Value {
        match self {
            Driver::Lambda => invoke("ClusterEventFunction", env, fixture).await,
            Driver::Cli => cli(
                env,
                &[
                    "handle-event",
                    workspace_root()
                        .join("events")
                        .join(fixture)
                        .to_str()
                        .unwrap(),
                ],
            ),
        }
    }

    /// The scheduled sweep, and its summary.
    async fn sweep(&mut self, env: &[(String, String)]) -> serde_json::Value {
        match self {
            Driver::Lambda => invoke("SweepFunction", env, "scheduled-sweep.json").await,
            Driver::Cli => cli(env, &["sweep"]),
        }
    }
}

fn cli(env: &[(String, String)], args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(workspace_bin("eks-private-dns").unwrap());
    cmd.args(["--output", "json"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "eks-private-dns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The story: a private cluster is created, made public, made private
/// again, swept; a failed call and nodegroup events come; it is opted out
/// by tag and in again; it is deleted. The canonical AWS state after each
/// step.
async fn story(mut driver: Driver) -> Vec<(String, Vec<String>, serde_json::Value)> {
    let w = World::new(EmulatorOptions::slow_resolver(), &[]).await;
    let mut env = w.emulator.env();
    env.push((
        "EKS_PRIVATE_DNS_CLIENT_VPC_IDS".into(),
        w.client_vpc.id.clone(),
    ));
    env.push(("EKS_PRIVATE_DNS_ONPREM_CIDRS".into(), ONPREM.into()));
    w.aws
        .cluster("demo", &w.cluster_vpc, Access::Private, &[])
        .await
        .unwrap();
    let host = w.host("demo").await;
    let names = [
        (w.cluster_vpc.id.as_str(), "cluster-vpc"),
        (w.client_vpc.id.as_str(), "client-vpc"),
        (host.as_str(), "demo-endpoint"),
    ];
    let mut steps = Vec::new();
    // The plumbing, without the deployment's own record of its settings
    // (which the sweep Lambda publishes and the CLI does not).
    let mut step = |name: &str, result: serde_json::Value, snap: Snapshot| {
        let lines = snap
            .canonical(&names)
            .into_iter()
            .filter(|l| !l.contains("/eks-private-dns/_deployment/"))
            .collect();
        steps.push((name.to_string(), lines, result));
    };

    // The oracle: every DNS path holds once a step that builds returns.
    let rec = w.emulator.reconciler(w.config());
    let result = driver.event(&env, "create-cluster.json").await;
    assert_paths(&rec, "demo").await;
    step("created", result, w.aws.snapshot().await.unwrap());

    w.aws
        .set_access("demo", Access::PublicAndPrivate)
        .await
        .unwrap();
    let result = driver
        .event(&env, "update-cluster-config-public.json")
        .await;
    step("made public", result, w.aws.snapshot().await.unwrap());

    w.aws.set_access("demo", Access::Private).await.unwrap();
    let result = driver
        .event(&env, "update-cluster-config-private.json")
        .await;
    assert_paths(&rec, "demo").await;
    step("made private", result, w.aws.snapshot().await.unwrap());

    let result = driver.sweep(&env).await;
    step("swept", result, w.aws.snapshot().await.unwrap());

    let result = driver
        .event(&env, "update-cluster-config-failed.json")
        .await;
    step("failed call", result, w.aws.snapshot().await.unwrap());

    for fixture in ["create-nodegroup.json", "tag-resource-nodegroup.json"] {
        let result = driver.event(&env, fixture).await;
        step(fixture, result, w.aws.snapshot().await.unwrap());
    }

    w.aws
        .tag_cluster("demo", "eks-private-dns/enabled", "false")
        .await
        .unwrap();
    let result = driver.event(&env, "tag-resource.json").await;
    step("opted out", result, w.aws.snapshot().await.unwrap());

    w.aws
        .untag_cluster("demo", "eks-private-dns/enabled")
        .await
        .unwrap();
    let result = driver.event(&env, "untag-resource.json").await;
    assert_paths(&rec, "demo").await;
    step("opted in again", result, w.aws.snapshot().await.unwrap());

    w.aws.delete_cluster("demo").await.unwrap();
    let result = driver.event(&env, "delete-cluster.json").await;
    step("deleted", result, w.aws.snapshot().await.unwrap());
    steps
}

/// Lines of resources we own: endpoints, rules and associations (the world
/// has no others), our parameters, and whatever carries our owner tag.
fn ours(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| {
            [
                "endpoint ",
                "rule ",
                "association ",
                "parameter /eks-private-dns/",
            ]
            .iter()
            .any(|p| l.starts_with(p))
                || l.contains("eks-private-dns:owner=eks-private-dns")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sam_artifacts_make_the_same_state_as_the_cli() {
    let lambda = story(Driver::Lambda).await;
    let cli = story(Driver::Cli).await;
    assert_eq!(lambda.len(), cli.len());
    for ((step, by_lambda, result), (_, by_cli, cli_result)) in lambda.iter().zip(&cli) {
        assert_eq!(
            by_lambda, by_cli,
            "after '{step}' the Lambda left a different state than the CLI\n\
             Lambda returned {result}\nthe CLI returned {cli_result}"
        );
    }
    let state = |name: &str| {
        lambda
            .iter()
            .find(|(step, _, _)| step == name)
            .unwrap_or_else(|| panic!("step {name}"))
    };
    // The story did something: built, removed, rebuilt, left alone, removed.
    let (_, created, result) = state("created");
    assert_eq!(result["decision"], "managed", "{result}");
    assert_eq!(result["applied"], true, "{result}");
    // Returned once AWS had finished: nothing CREATING or DELETING is left.
    for (step, lines, result) in &lambda {
        if result.get("outcome").is_some() {
            assert_ne!(result["outcome"], "converging", "{step}: {result}");
        }
        for line in lines {
            assert!(
                !line.contains("Creating") && !line.contains("Deleting"),
                "{step}: {line}"
            );
        }
    }
    assert!(ours(created) > 5, "{created:#?}");
    let (_, public, result) = state("made public");
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(ours(public), 0, "{public:#?}");
    let (_, private, _) = state("made private");
    assert_eq!(ours(private), ours(created));
    let (_, swept, result) = state("swept");
    assert_eq!(swept, private, "the sweep found nothing to do");
    assert_eq!(result["managed"], 1, "{result}");
    // Its one write: the deployment's settings, published for the CLI.
    assert_eq!(result["settings_published"], true, "{result}");
    assert_eq!(result["write_calls"], 1, "{result}");
    let (_, failed, result) = state("failed call");
    assert_eq!(result["ignored"], true, "{result}");
    assert_eq!(failed, private);
    for fixture in ["create-nodegroup.json", "tag-resource-nodegroup.json"] {
        let (_, after, result) = state(fixture);
        assert_eq!(result["ignored"], true, "{result}");
        assert_eq!(after, private, "{fixture} changed nothing");
    }
    let (_, opted_out, result) = state("opted out");
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(ours(opted_out), 0, "{opted_out:#?}");
    let (_, opted_in, result) = state("opted in again");
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(ours(opted_in), ours(created));
    let (_, deleted, _) = state("deleted");
    assert_eq!(ours(deleted), 0, "{deleted:#?}");

    // Each step's own metrics, as the cluster-event function published
    // them: what it made, and what it took away.
    let published = |name: &str, metric: &str| {
        let (_, _, result) = state(name);
        result["metrics"].get(metric).and_then(|v| v.as_u64())
    };
    for building in ["created", "made private", "opted in again"] {
        assert!(
            published(building, "Creates").is_some_and(|n| n > 0),
            "{building}: {}",
            state(building).2
        );
        assert_eq!(published(building, "Deletes"), None, "{building}");
    }
    for removing in ["made public", "opted out", "deleted"] {
        assert!(
            published(removing, "Deletes").is_some_and(|n| n > 0),
            "{removing}: {}",
            state(removing).2
        );
        assert_eq!(published(removing, "Creates"), None, "{removing}");
    }
    // Made again as it was made the first time.
    assert_eq!(
        published("made private", "Creates"),
        published("created", "Creates")
    );
}
