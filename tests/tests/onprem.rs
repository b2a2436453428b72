//! The on-premises side with real DNS servers on loopback: a cluster is
//! published in the emulator's SSM with loopback "inbound IPs" served by a
//! stub authoritative server; each server (BIND, Unbound, dnsmasq) runs
//! with the rendered file and DNSSEC validation on, and `dig` through it
//! gets the stub's answer. `verify` passes against the stub and fails
//! clearly against a dead address.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::ParameterType;
use eks_private_dns_tests::dns_stub::DnsStub;
use eks_private_dns_tests::*;
use tokio::sync::Mutex;

/// The stubs listen on port 53 of these loopback addresses (rendered
/// forwarders always use port 53), so the tests that use them take turns.
static PORT_53: Mutex<()> = Mutex::const_new(());

const NAME: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9.gr7.eu-west-1.eks.amazonaws.com";
const ANSWER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 99);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Server {
    Server(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    )
}

/// dig through 127.0.0.1:port until it answers (the server is starting).
fn dig(port: u16, name: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(tool("dig"))
            .args([
                "+short",
                "+tries=1",
                "+time=2",
                "-p",
                &port.to_string(),
                "@127.0.0.1",
                name,
                "A",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let answers: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(str::to_string)
            .collect();
        if out.status.success() && !answers.is_empty() {
            return answers;
        }
        if Instant::now() > deadline {
            return answers;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publish a cluster whose inbound IPs are loopback addresses, and start the
/// stub there on port 53.
async fn published(emulator: &Emulator, cluster: &str, ips: &[&str]) -> DnsStub {
    let ssm = emulator.aws().ssm;
    for (leaf, value, kind) in [
        ("endpoint", NAME.to_string(), ParameterType::String),
        ("inbound-ips", ips.join(","), ParameterType::StringList),
    ] {
        ssm.put_parameter()
            .name(format!("/eks-private-dns/{cluster}/{leaf}"))
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
    let binds: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| format!("{ip}:53").parse().unwrap())
        .collect();
    DnsStub::start(&binds, NAME, vec![ANSWER])
        .await
        .expect("stub binds port 53 (run as root)")
}

fn render(emulator: &Emulator, format: &str, out: &Path) {
    let bin = workspace_bin("eks-private-dns").unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["render", "--format", format, "--out", out.to_str().unwrap()]);
    for (k, v) in emulator.env() {
        cmd.env(k, v);
    }
    let status = cmd.status().unwrap();
    assert!(
        matches!(status.code(), Some(0) | Some(2)),
        "render {format}: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_forwards_the_name_with_validation_on() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _stub = published(&emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await;
    let dir = scratch("onprem-bind");
    render(&emulator, "bind", &dir.join("eks-zones.conf"));
    render(&emulator, "bind-options", &dir.join("eks-options.conf"));
    let port = free_port();
    let conf = dir.join("named.conf");
    std::fs::write(
        &conf,
        format!(
            "options {{\n\tdirectory \"{d}\";\n\tpid-file none;\n\tlisten-on port {port} {{ 127.0.0.1; }};\n\
             \tlisten-on-v6 {{ none; }};\n\trecursion yes;\n\tallow-query {{ 127.0.0.1; }};\n\
             \tdnssec-validation auto;\n\tinclude \"{d}/eks-options.conf\";\n}};\n\
             include \"{d}/eks-zones.conf\";\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _named = spawn(Command::new(tool("named")).args(["-g", "-c"]).arg(&conf));
    assert_eq!(dig(port, NAME), vec![ANSWER.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_forwards_the_name_with_validation_on() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _stub = published(&emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await;
    let dir = scratch("onprem-unbound");
    render(&emulator, "unbound", &dir.join("eks.conf"));
    let port = free_port();
    let conf = dir.join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n\tinterface: 127.0.0.1\n\tport: {port}\n\tdo-ip6: no\n\tchroot: \"\"\n\tusername: \"\"\n\
             \tdirectory: \"{d}\"\n\tpidfile: \"\"\n\tuse-syslog: no\n\taccess-control: 127.0.0.0/8 allow\n\
             \tdo-not-query-localhost: no\n\tmodule-config: \"validator iterator\"\n\
             \tprivate-address: 10.0.0.0/8\n\ttrust-anchor: \". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\"\n\
             include: \"{d}/eks.conf\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _unbound = spawn(Command::new(tool("unbound")).args(["-d", "-c"]).arg(&conf));
    assert_eq!(dig(port, NAME), vec![ANSWER.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dnsmasq_forwards_the_name_with_rebind_protection_on() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _stub = published(&emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await;
    let dir = scratch("onprem-dnsmasq");
    let file = dir.join("eks.conf");
    render(&emulator, "dnsmasq", &file);
    let port = free_port();
    let _dnsmasq = spawn(
        Command::new(tool("dnsmasq"))
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--stop-dns-rebind",
            ])
            .args([
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .arg("--pid-file")
            .arg(format!("--conf-file={}", file.display())),
    );
    assert_eq!(dig(port, NAME), vec![ANSWER.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_against_the_stub_and_fails_against_a_dead_address() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _stub = published(&emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await;
    let bin = workspace_bin("eks-private-dns").unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.args(args);
        for (k, v) in emulator.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&["--output", "json", "verify", "--cluster", "demo"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 4, "two servers, UDP and TCP");
    for c in checks {
        assert_eq!(c["addresses"][0], ANSWER.to_string());
    }
    let dead = free_port();
    let out = run(&[
        "verify",
        "--cluster",
        "demo",
        "--server",
        &format!("127.0.0.1:{dead}"),
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("queries") && err.contains("failed"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}
