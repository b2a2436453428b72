//! The deployable artifacts end to end: the `bootstrap` binaries that `sam
//! build` made (`.aws-sam/build/*/bootstrap`, built by `cargo lambda build
//! --release`), run against cargo lambda's local Lambda runtime API on
//! loopback (`cargo lambda watch --only-lambda-apis -A 127.0.0.1`), invoked
//! with the events/ fixtures through `cargo lambda invoke`, against the AWS
//! emulator. The same story told through the CLI (`handle-event`, `sweep`)
//! in a second emulator must leave the same AWS state at every step.
//!
//! `make test` runs `sam build` first; run it (or `make sam-build`) before
//! `cargo test` on its own.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eks_private_dns_tests::*;

/// A child process that dies with its handle.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// cargo-lambda from the SAM tools' virtualenv (or $CARGO_LAMBDA).
fn cargo_lambda() -> PathBuf {
    let bin = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-sam/bin/cargo-lambda"));
    assert!(
        bin.is_file(),
        "{} is missing: run `make sam-venv` first (`make test` does)",
        bin.display()
    );
    bin
}

/// cargo lambda's runtime API emulator, and the function running against it.
struct LocalLambda {
    port: u16,
    _api: Proc,
    function: Option<Proc>,
}

impl LocalLambda {
    fn start() -> LocalLambda {
        let port = free_port();
        let api = Proc(
            Command::new(cargo_lambda())
                .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
                .args(["-P", &port.to_string()])
                .current_dir(workspace_root())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cargo lambda watch starts"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on 127.0.0.1:{port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        LocalLambda {
            port,
            _api: api,
            function: None,
        }
    }

    /// Run a function's bootstrap against the runtime API, as Lambda does:
    /// with the function's environment and the runtime's variables.
    fn run(&mut self, logical_id: &str, env: &[(String, String)]) {
        self.function = None;
        let mut cmd = Command::new(artifact(logical_id));
        cmd.env_clear()
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.function = Some(Proc(cmd.spawn().expect("the bootstrap runs")));
    }

    /// Invoke the running function with an events/ fixture; its response.
    fn invoke(&self, fixture: &str) -> serde_json::Value {
        let out = Command::new(cargo_lambda())
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .arg("--data-file")
            .arg(workspace_root().join("events").join(fixture))
            .current_dir(workspace_root())
            .output()
            .expect("cargo lambda invoke runs");
        assert!(
            out.status.success(),
            "invoke with {fixture}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "invoke with {fixture}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// How the story's events reach eks-private-dns.
enum Driver {
    Lambda(LocalLambda),
    Cli,
}

impl Driver {
    /// Deliver an EKS event (cluster-event) and return its JSON result.
    fn event(&mut self, env: &[(String, String)], fixture: &str) -> serde_json::Value {
        match self {
            Driver::Lambda(lambda) => {
                lambda.run("ClusterEventFunction", env);
                lambda.invoke(fixture)
            }
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
    fn sweep(&mut self, env: &[(String, String)]) -> serde_json::Value {
        match self {
            Driver::Lambda(lambda) => {
                lambda.run("SweepFunction", env);
                lambda.invoke("scheduled-sweep.json")
            }
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
        .cluster("demo", &w.cluster_vpc, true, false, &[])
        .await
        .unwrap();
    let host = w.host("demo").await;
    let names = [
        (w.cluster_vpc.id.as_str(), "cluster-vpc"),
        (w.client_vpc.id.as_str(), "client-vpc"),
        (host.as_str(), "demo-endpoint"),
    ];
    let mut steps = Vec::new();
    let mut step = |name: &str, result: serde_json::Value, snap: Snapshot| {
        steps.push((name.to_string(), snap.canonical(&names), result));
    };

    let result = driver.event(&env, "create-cluster.json");
    step("created", result, w.aws.snapshot().await.unwrap());

    w.aws.set_access("demo", true, true).await.unwrap();
    let result = driver.event(&env, "update-cluster-config-public.json");
    step("made public", result, w.aws.snapshot().await.unwrap());

    w.aws.set_access("demo", true, false).await.unwrap();
    let result = driver.event(&env, "update-cluster-config-private.json");
    step("made private", result, w.aws.snapshot().await.unwrap());

    let result = driver.sweep(&env);
    step("swept", result, w.aws.snapshot().await.unwrap());

    let result = driver.event(&env, "update-cluster-config-failed.json");
    step("failed call", result, w.aws.snapshot().await.unwrap());

    for fixture in ["create-nodegroup.json", "tag-resource-nodegroup.json"] {
        let result = driver.event(&env, fixture);
        step(fixture, result, w.aws.snapshot().await.unwrap());
    }

    w.aws
        .tag_cluster("demo", "eks-private-dns/enabled", "false")
        .await
        .unwrap();
    let result = driver.event(&env, "tag-resource.json");
    step("opted out", result, w.aws.snapshot().await.unwrap());

    w.aws
        .untag_cluster("demo", "eks-private-dns/enabled")
        .await
        .unwrap();
    let result = driver.event(&env, "untag-resource.json");
    step("opted in again", result, w.aws.snapshot().await.unwrap());

    w.aws.delete_cluster("demo").await.unwrap();
    let result = driver.event(&env, "delete-cluster.json");
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
    let lambda = story(Driver::Lambda(LocalLambda::start())).await;
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
    assert!(ours(created) > 5, "{created:#?}");
    let (_, public, result) = state("made public");
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(ours(public), 0, "{public:#?}");
    let (_, private, _) = state("made private");
    assert_eq!(ours(private), ours(created));
    let (_, swept, result) = state("swept");
    assert_eq!(swept, private, "the sweep found nothing to do");
    assert_eq!(result["managed"], 1, "{result}");
    assert_eq!(result["write_calls"], 0, "{result}");
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
}
