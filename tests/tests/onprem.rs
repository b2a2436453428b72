//! The on-premises side with real DNS servers on loopback: a cluster is
//! published in the emulator's SSM with loopback "inbound IPs" served by a
//! stub authoritative server; each server (BIND, Unbound, dnsmasq, PowerDNS
//! Recursor, Knot Resolver) runs with the rendered file and DNSSEC
//! validation on, and `dig` through it gets the stub's answer: for an IPv4
//! cluster, and for a dual-stack one over IPv4 and IPv6 (::1), the stub
//! answering on ::1 only. `verify` passes against the stub and fails
//! clearly against a dead address.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eks_private_dns_tests::dns_stub::{DnsStub, Zone};
use eks_private_dns_tests::*;
use tokio::sync::Mutex;

/// The stubs listen on port 53 of these loopback addresses (rendered
/// forwarders always use port 53), so the tests that use them take turns.
static PORT_53: Mutex<()> = Mutex::const_new(());

const NAME: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9.gr7.eu-west-1.eks.amazonaws.com";
const ANSWER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 99);

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

/// dig through 127.0.0.1:port until the answers satisfy `want` (the server
/// is starting or reloading), or 20 s have passed; the last answers.
fn dig_until(port: u16, name: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    dig_at("127.0.0.1", port, name, want)
}

/// The same through `server` (an address the server listens on).
fn dig_at(server: &str, port: u16, name: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(tool("dig"))
            .args([
                "+short",
                "+tries=1",
                "+time=2",
                "-p",
                &port.to_string(),
                &format!("@{server}"),
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
        if (out.status.success() && want(&answers)) || Instant::now() > deadline {
            return answers;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// dig until the server answers at all.
fn dig(port: u16, name: &str) -> Vec<String> {
    dig_until(port, name, |a| !a.is_empty())
}

/// Publish a cluster under the default prefix, the way the apply step does,
/// with the cluster VPC's blocks outside the private ranges recorded as
/// loopback (the only addresses a test may send to), so that `render`
/// accepts the addresses.
async fn publish(emulator: &Emulator, cluster: &str, name: &str, ips: &[&str], ipv6: &[&str]) {
    let vpc_cidrs = ["127.0.0.0/8", "::1/128"];
    publish_as_apply(emulator, REGION, cluster, name, ips, ipv6, &vpc_cidrs).await;
}

/// Remove a cluster's parameters, the way the teardown does.
async fn unpublish(emulator: &Emulator, cluster: &str) {
    let ssm = emulator.aws().ssm;
    for leaf in ["endpoint", "inbound-ips", "inbound-ipv6", "state"] {
        let _ = ssm
            .delete_parameter()
            .name(format!("/eks-private-dns/{cluster}/{leaf}"))
            .send()
            .await;
    }
}

/// A stub on port 53 of each of `ips` (retried for a moment: a stub just
/// dropped may still hold the port while its tasks wind down).
async fn stub(ips: &[&str], zone: Zone) -> DnsStub {
    let binds: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| SocketAddr::new(ip.parse().unwrap(), 53))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match DnsStub::start(&binds, zone.clone()).await {
            Ok(stub) => return stub,
            Err(e) if Instant::now() > deadline => {
                // Name whatever holds the port, if anything does.
                let holders = Command::new("ss")
                    .args(["-Hlnptu", "sport = :53"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default();
                panic!("stub binds port 53 of {ips:?} (run as root): {e}; port 53 is held by: {holders}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Publish a cluster whose inbound IPs are loopback addresses, and start the
/// stub there on port 53.
async fn published(emulator: &Emulator, cluster: &str, ips: &[&str]) -> DnsStub {
    publish(emulator, cluster, NAME, ips, &[]).await;
    stub(ips, vec![(NAME.to_string(), vec![ANSWER.into()])]).await
}

/// The cluster a server forwards for: IPv4 only, its two inbound addresses
/// answering; or dual-stack (127.0.0.2 and ::1), where only the IPv6 one
/// answers, so that an answer proves the server forwarded over IPv6.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stack {
    V4,
    Dual,
}

impl Stack {
    /// Publish the cluster and start the stub where it answers.
    async fn cluster(self, emulator: &Emulator) -> DnsStub {
        match self {
            Stack::V4 => published(emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await,
            Stack::Dual => {
                publish(emulator, "demo", NAME, &["127.0.0.2"], &["::1"]).await;
                stub(&["::1"], vec![(NAME.to_string(), vec![ANSWER.into()])]).await
            }
        }
    }

    /// The addresses the server listens on: over IPv6 as well for a
    /// dual-stack cluster, as a site with IPv6 clients runs it.
    fn listen(self) -> &'static [&'static str] {
        match self {
            Stack::V4 => &["127.0.0.1"],
            Stack::Dual => &["127.0.0.1", "::1"],
        }
    }

    /// dig through every address the server listens on: each gets the
    /// stub's answer, which the stub (`inbound`, on ::1 only for a
    /// dual-stack cluster) was asked for.
    fn assert_answers(self, port: u16, inbound: &DnsStub) {
        for server in self.listen() {
            let answers = dig_at(server, port, NAME, |a| !a.is_empty());
            assert_eq!(answers, vec![ANSWER.to_string()], "through {server}");
        }
        assert!(inbound.queries(NAME) > 0, "the inbound stub was asked");
    }
}

/// Run the CLI against the emulator.
fn cli(emulator: &Emulator, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(workspace_bin("eks-private-dns").unwrap());
    cmd.args(args);
    for (k, v) in emulator.env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `verify --cluster` in JSON, which must pass.
fn verified(emulator: &Emulator, cluster: &str) -> serde_json::Value {
    let out = cli(
        emulator,
        &["--output", "json", "verify", "--cluster", cluster],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Render `format` into `out`; whether the file changed (exit 2) or not (0).
fn render(emulator: &Emulator, format: &str, out: &Path) -> bool {
    let out = cli(
        emulator,
        &["render", "--format", format, "--out", out.to_str().unwrap()],
    );
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "render {format}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code() == Some(2)
}

/// The upstream every test server forwards all other names to: a stub on
/// loopback that knows no names, so that no server ever sends a query
/// off this machine (to the root servers, say).
const UPSTREAM: &str = "127.0.0.4";

/// A named.conf on a free loopback port, with DNSSEC validation on, that
/// includes the rendered eks-options.conf and eks-zones.conf in `dir`.
fn named_conf(dir: &Path) -> (u16, std::path::PathBuf) {
    named_conf_for(dir, Stack::V4)
}

/// The same, listening on ::1 as well for a dual-stack cluster.
fn named_conf_for(dir: &Path, stack: Stack) -> (u16, std::path::PathBuf) {
    let port = free_port();
    let conf = dir.join("named.conf");
    let v6 = match stack {
        Stack::V4 => "none;".to_string(),
        Stack::Dual => "::1;".to_string(),
    };
    std::fs::write(
        &conf,
        format!(
            "options {{\n\tdirectory \"{d}\";\n\tpid-file none;\n\tlisten-on port {port} {{ 127.0.0.1; }};\n\
             \tlisten-on-v6 port {port} {{ {v6} }};\n\trecursion yes;\n\tallow-query {{ 127.0.0.1; ::1; }};\n\
             \tforwarders {{ {UPSTREAM}; }};\n\tforward only;\n\
             \tdnssec-validation auto;\n\tinclude \"{d}/eks-options.conf\";\n}};\n\
             include \"{d}/eks-zones.conf\";\n",
            d = dir.display()
        ),
    )
    .unwrap();
    (port, conf)
}

/// A test of each server, for an IPv4 cluster and for a dual-stack one.
macro_rules! both_stacks {
    ($run:ident, $v4:ident, $dual:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $v4() {
            $run(Stack::V4).await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $dual() {
            $run(Stack::Dual).await;
        }
    };
}

both_stacks!(
    bind,
    bind_forwards_the_name_with_validation_on,
    bind_forwards_over_ipv6_for_a_dual_stack_cluster
);
both_stacks!(
    unbound,
    unbound_forwards_the_name_with_validation_on,
    unbound_forwards_over_ipv6_for_a_dual_stack_cluster
);
both_stacks!(
    dnsmasq,
    dnsmasq_forwards_the_name_with_rebind_protection_on,
    dnsmasq_forwards_over_ipv6_for_a_dual_stack_cluster
);
both_stacks!(
    powerdns,
    powerdns_forwards_the_name_with_validation_on,
    powerdns_forwards_over_ipv6_for_a_dual_stack_cluster
);
both_stacks!(
    knot_resolver,
    knot_resolver_forwards_the_name_with_validation_on,
    knot_resolver_forwards_over_ipv6_for_a_dual_stack_cluster
);

async fn bind(stack: Stack) {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let inbound = stack.cluster(&emulator).await;
    let _upstream = stub(&[UPSTREAM], Vec::new()).await;
    let dir = scratch("onprem-bind");
    render(&emulator, "bind", &dir.join("eks-zones.conf"));
    render(&emulator, "bind-options", &dir.join("eks-options.conf"));
    let (port, conf) = named_conf_for(&dir, stack);
    let _named = spawn(Command::new(tool("named")).args(["-g", "-c"]).arg(&conf));
    stack.assert_answers(port, &inbound);
}

async fn unbound(stack: Stack) {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let inbound = stack.cluster(&emulator).await;
    let dir = scratch("onprem-unbound");
    render(&emulator, "unbound", &dir.join("eks.conf"));
    let port = free_port();
    let conf = dir.join("unbound.conf");
    let (interfaces, ip6): (String, &str) = match stack {
        Stack::V4 => ("\tinterface: 127.0.0.1\n".into(), "no"),
        Stack::Dual => (
            "\tinterface: 127.0.0.1\n\tinterface: ::1\n\taccess-control: ::1 allow\n".into(),
            "yes",
        ),
    };
    std::fs::write(
        &conf,
        format!(
            "server:\n{interfaces}\tport: {port}\n\tdo-ip6: {ip6}\n\tchroot: \"\"\n\tusername: \"\"\n\
             \tdirectory: \"{d}\"\n\tpidfile: \"\"\n\tuse-syslog: no\n\taccess-control: 127.0.0.0/8 allow\n\
             \tdo-not-query-localhost: no\n\tmodule-config: \"validator iterator\"\n\
             \tprivate-address: 10.0.0.0/8\n\ttrust-anchor: \". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\"\n\
             include: \"{d}/eks.conf\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _unbound = spawn(Command::new(tool("unbound")).args(["-d", "-c"]).arg(&conf));
    stack.assert_answers(port, &inbound);
}

async fn dnsmasq(stack: Stack) {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let inbound = stack.cluster(&emulator).await;
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
            .arg("--bind-interfaces")
            .arg(format!("--listen-address={}", stack.listen().join(",")))
            .arg("--user=root")
            .arg(format!("--port={port}"))
            .arg("--pid-file")
            .arg(format!("--conf-file={}", file.display())),
    );
    stack.assert_answers(port, &inbound);
}

/// PowerDNS Recursor, as an air-gapped site runs it: DNSSEC validation on,
/// root hints that name only the loopback upstream (so that priming never
/// leaves this machine), the rendered forward-zones-file and the rendered
/// Lua file whose negative trust anchors let the private names through.
async fn powerdns(stack: Stack) {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let inbound = stack.cluster(&emulator).await;
    let _upstream = stub(&[UPSTREAM], Vec::new()).await;
    let dir = scratch("onprem-powerdns");
    render(&emulator, "powerdns", &dir.join("eks-forward-zones"));
    render(&emulator, "powerdns-lua", &dir.join("eks-nta.lua"));
    let hints = dir.join("root.hints");
    std::fs::write(
        &hints,
        format!(".\t3600000\tIN\tNS\tlocal-root.\nlocal-root.\t3600000\tIN\tA\t{UPSTREAM}\n"),
    )
    .unwrap();
    let port = free_port();
    let listen = stack.listen().join(", ");
    let (allow, query_from) = match stack {
        Stack::V4 => ("127.0.0.0/8", "127.0.0.1"),
        Stack::Dual => ("127.0.0.0/8, ::1/128", "127.0.0.1, ::1"),
    };
    std::fs::write(
        dir.join("recursor.conf"),
        format!(
            "local-address={listen}\nlocal-port={port}\nallow-from={allow}\n\
             dont-query=\nquery-local-address={query_from}\nhint-file={d}/root.hints\n\
             dnssec=validate\nforward-zones-file={d}/eks-forward-zones\n\
             lua-config-file={d}/eks-nta.lua\nsocket-dir={d}\ndaemon=no\nwrite-pid=no\n\
             disable-syslog=yes\nquiet=yes\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _recursor =
        spawn(Command::new(tool("pdns_recursor")).arg(format!("--config-dir={}", dir.display())));
    stack.assert_answers(port, &inbound);
}

/// Knot Resolver, as an air-gapped site runs it: validating with the root's
/// trust anchor, root hints that name only the loopback upstream, and the
/// rendered file loaded with dofile(), whose stub policy is what sends the
/// private name to the inbound addresses (without it the name goes to the
/// upstream, which knows nothing).
async fn knot_resolver(stack: Stack) {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let inbound = stack.cluster(&emulator).await;
    let _upstream = stub(&[UPSTREAM], Vec::new()).await;
    let dir = scratch("onprem-knot");
    render(&emulator, "knot", &dir.join("eks-forwarders.lua"));
    let port = free_port();
    let conf = dir.join("kresd.conf");
    let listen: String = stack
        .listen()
        .iter()
        .map(|a| format!("net.listen('{a}', {port}, {{ kind = 'dns' }})\n"))
        .collect();
    let ipv6 = stack == Stack::Dual;
    std::fs::write(
        &conf,
        format!(
            "net.ipv6 = {ipv6}\n{listen}\
             modules = {{ 'hints > iterate' }}\n\
             hints.root({{ ['local-root.'] = '{UPSTREAM}' }})\n\
             trust_anchors.add_file('/usr/share/dns/root.key', true)\n\
             cache.open(10 * MB, 'lmdb://{d}/cache')\n\
             dofile('{d}/eks-forwarders.lua')\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _kresd = spawn(
        Command::new(tool("kresd"))
            .args(["-n", "-c"])
            .arg(&conf)
            .arg(&dir),
    );
    stack.assert_answers(port, &inbound);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_against_the_stub_and_fails_against_a_dead_address() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _stub = published(&emulator, "demo", &["127.0.0.2", "127.0.0.3"]).await;
    let run = |args: &[&str]| cli(&emulator, args);
    let checks = verified(&emulator, "demo");
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

const NAME2: &str = "f9e8d7c6b5a4938271605f4e3d2c1b0a.yl4.eu-west-1.eks.amazonaws.com";
const ANSWER2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 99);

/// What a cron job or timer does: render both files, and reload the
/// server (SIGHUP makes named re-read its configuration) only when one
/// of them changed. Whether one did.
fn render_and_reload(emulator: &Emulator, dir: &Path, named: Option<&Server>) -> bool {
    let zones = render(emulator, "bind", &dir.join("eks-zones.conf"));
    let options = render(emulator, "bind-options", &dir.join("eks-options.conf"));
    if let Some(named) = named.filter(|_| zones || options) {
        let status = Command::new("kill")
            .args(["-HUP", &named.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    zones || options
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_follows_a_second_cluster_that_appears_and_disappears() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let _upstream = stub(&[UPSTREAM], Vec::new()).await;
    let _first = published(&emulator, "demo", &["127.0.0.2"]).await;
    // The second cluster's inbound endpoint answers before it is published.
    let second = stub(
        &["127.0.0.3"],
        vec![(NAME2.to_string(), vec![ANSWER2.into()])],
    )
    .await;
    let dir = scratch("onprem-follow");
    let (port, conf) = named_conf(&dir);
    assert!(render_and_reload(&emulator, &dir, None));
    let named = spawn(Command::new(tool("named")).args(["-g", "-c"]).arg(&conf));
    assert_eq!(dig(port, NAME), vec![ANSWER.to_string()]);
    assert_ne!(
        dig_until(port, NAME2, |_| true),
        vec![ANSWER2.to_string()],
        "not forwarded before it is published"
    );
    assert_eq!(second.queries(NAME2), 0);

    // It appears: the next render changes the files, the reload forwards it.
    publish(&emulator, "second", NAME2, &["127.0.0.3"], &[]).await;
    assert!(render_and_reload(&emulator, &dir, Some(&named)));
    assert_eq!(
        dig_until(port, NAME2, |a| a == [ANSWER2.to_string()]),
        vec![ANSWER2.to_string()]
    );
    assert!(second.queries(NAME2) > 0);
    assert!(
        !render_and_reload(&emulator, &dir, Some(&named)),
        "nothing changed, so no reload"
    );

    // It disappears: forwarding stops once the reload is done and the 1 s
    // TTL of the last answer has run out; the first cluster is unaffected.
    unpublish(&emulator, "second").await;
    assert!(render_and_reload(&emulator, &dir, Some(&named)));
    let gone = dig_until(port, NAME2, |a| a.is_empty());
    assert!(gone.is_empty(), "still answered after removal: {gone:?}");
    let asked = second.queries(NAME2);
    dig_until(port, NAME2, |_| true);
    assert_eq!(
        second.queries(NAME2),
        asked,
        "the removed cluster's resolver is no longer asked"
    );
    assert_eq!(dig(port, NAME), vec![ANSWER.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_asks_a_dual_stack_endpoint_for_aaaa_too() {
    let _turn = PORT_53.lock().await;
    let emulator = Emulator::start().unwrap();
    let v6: std::net::Ipv6Addr = "fd00:ec2::99".parse().unwrap();
    publish(&emulator, "dual", NAME, &["127.0.0.2"], &["::1"]).await;
    let run = |args: &[&str]| cli(&emulator, args);
    let servers = ["127.0.0.2", "::1"];
    {
        let both = stub(
            &servers,
            vec![(NAME.to_string(), vec![ANSWER.into(), v6.into()])],
        )
        .await;
        let checks = verified(&emulator, "dual");
        let checks = checks.as_array().unwrap();
        assert_eq!(checks.len(), 8, "two servers, UDP and TCP, A and AAAA");
        let servers: std::collections::BTreeSet<&str> = checks
            .iter()
            .map(|c| c["server"].as_str().unwrap())
            .collect();
        assert_eq!(servers, ["127.0.0.2:53", "[::1]:53"].into());
        for c in checks {
            let want = match c["record_type"].as_str().unwrap() {
                "A" => ANSWER.to_string(),
                "AAAA" => v6.to_string(),
                other => panic!("unexpected record type {other}"),
            };
            assert_eq!(c["addresses"], serde_json::json!([want]), "{c}");
        }
        both.stop().await;
    }
    // The same servers without the AAAA record: the AAAA queries fail.
    let _stub = stub(&servers, vec![(NAME.to_string(), vec![ANSWER.into()])]).await;
    let out = run(&["verify", "--cluster", "dual"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 of 8 queries"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("AAAA: FAILED: no AAAA record").count(),
        4,
        "{text}"
    );
}

/// Wait until `check` holds (20 s at most); whether it did.
async fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// The on-premises agent: `render --watch 1 --reload CMD` writes the file
/// and reloads once; a pass with nothing new writes and reloads nothing; a
/// change of the addresses does both once more; a malformed parameter, and
/// then SSM being away, keep the last good file while the agent goes on.
#[tokio::test(flavor = "multi_thread")]
async fn the_watching_render_reloads_only_on_change_and_survives_ssm_going_away() {
    let emulator = Emulator::start().unwrap();
    publish(&emulator, "demo", NAME, &["127.0.0.2"], &[]).await;
    let dir = scratch("onprem-watch");
    let (out, reloads, log) = (
        dir.join("eks.conf"),
        dir.join("reloads"),
        dir.join("stderr"),
    );
    let mut cmd = Command::new(workspace_bin("eks-private-dns").unwrap());
    cmd.args(["render", "--format", "unbound", "--out"])
        .arg(&out)
        .args(["--watch", "1", "--reload"])
        .arg(format!("echo reloaded >> {}", reloads.display()))
        .envs(emulator.env())
        // Each pass says so in the log.
        .env("EKS_PRIVATE_DNS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut agent = Server(cmd.spawn().unwrap());
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let count = || read(&reloads).lines().count();
    let passes = || read(&log).matches("render pass").count();
    assert!(eventually(|| count() == 1).await, "{}", read(&log));
    assert!(read(&out).contains("forward-addr: 127.0.0.2"));
    // Two passes with nothing new: no write, no reload.
    let seen = passes();
    assert!(eventually(|| passes() >= seen + 2).await, "{}", read(&log));
    assert_eq!(count(), 1, "{}", read(&log));

    // New addresses: the file follows, and the server is reloaded once more.
    publish(&emulator, "demo", NAME, &["127.0.0.2", "127.0.0.3"], &[]).await;
    assert!(eventually(|| count() == 2).await, "{}", read(&log));
    let good = read(&out);
    assert!(good.contains("forward-addr: 127.0.0.3"), "{good}");

    // A malformed parameter: the last good forwarders stay, with a warning.
    publish(&emulator, "demo", NAME, &["not-an-address"], &[]).await;
    assert!(
        eventually(|| read(&log).contains("keeping the last good forwarders of cluster demo"))
            .await,
        "{}",
        read(&log)
    );
    assert_eq!(read(&out), good);
    assert_eq!(count(), 2);

    // SSM away: the file stays, the agent goes on and says why.
    drop(emulator);
    let before = read(&log).len();
    assert!(
        eventually(|| read(&log)[before..].contains(&format!("keeping {}", out.display()))).await,
        "{}",
        read(&log)
    );
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent is still running"
    );
    assert_eq!(read(&out), good);
    assert_eq!(count(), 2);
}

/// The shipped systemd units, checked as systemd would load them (with the
/// binary's path where the units expect it installed).
#[test]
fn the_systemd_units_verify() {
    let dir = scratch("onprem-systemd");
    let units = workspace_root().join("contrib/systemd");
    let bin = workspace_bin("eks-private-dns").unwrap();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".service") || name.ends_with(".timer") {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("/usr/local/bin/eks-private-dns", bin.to_str().unwrap());
            std::fs::write(dir.join(&name), text).unwrap();
        }
    }
    let instances = [
        "eks-private-dns-render@bind.service",
        "eks-private-dns-render-once@bind.service",
        "eks-private-dns-render-once@bind.timer",
    ];
    let out = Command::new(tool("systemd-analyze"))
        .args(["verify", "--man=no"])
        .args(instances.iter().map(|u| dir.join(u)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
