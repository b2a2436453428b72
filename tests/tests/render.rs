//! On-premises configuration: golden files for every format, the real
//! servers' own checkers (named-checkconf, unbound-checkconf, dnsmasq
//! --test) on what is rendered, and `render --out` against SSM in the
//! emulator (atomic replace, exit status says whether it changed).

use std::path::PathBuf;
use std::process::Command;

use eks_private_dns_tests::*;
use shared::render::{render, render_from, Format, Published, Source, WindowsScope};

fn clusters() -> Vec<Published> {
    vec![
        Published {
            cluster: "prod".into(),
            name: "0a1b2c3d4e5f60718293a4b5c6d7e8f9.gr7.eu-west-1.eks.amazonaws.com".into(),
            ips: vec!["10.0.1.10".into(), "10.0.2.10".into()],
            ipv6: vec![],
        },
        Published {
            cluster: "dual".into(),
            name: "f9e8d7c6b5a4.yl4.eu-west-1.api.aws".into(),
            ips: vec!["10.3.1.5".into(), "10.3.2.5".into()],
            ipv6: vec!["fd00:3::5".into()],
        },
    ]
}

fn golden_dir() -> PathBuf {
    workspace_root().join("tests/golden")
}

#[test]
fn every_format_matches_its_golden_file() {
    // As the CLI reads them: one account, one region.
    let source = Source {
        prefix: "/eks-private-dns".into(),
        account: "123456789012".into(),
        regions: vec!["eu-west-1".into()],
        windows_scope: WindowsScope::Local,
    };
    for format in Format::ALL {
        let text = render_from(format, &source, &clusters());
        let path = golden_dir().join(format!("render.{}", format.name()));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(
            text,
            want,
            "{} differs from {}",
            format.name(),
            path.display()
        );
    }
}

/// The Windows script keeps one record per prefix, account and set of
/// regions (two scheduled tasks never remove each other's zones), takes
/// over the record of an earlier version, and makes zones in Active
/// Directory when asked.
#[test]
fn the_windows_script_records_per_source_and_takes_a_replication_scope() {
    let source = |account: &str, regions: &[&str], scope| Source {
        prefix: "/eks-private-dns".into(),
        account: account.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        windows_scope: scope,
    };
    let record = |text: &str| -> String {
        text.lines()
            .find(|l| l.starts_with("$StateFile"))
            .expect("a record")
            .to_string()
    };
    let local = source("123456789012", &["eu-west-1"], WindowsScope::Local);
    let text = render_from(Format::Windows, &local, &clusters());
    assert!(text.contains("$ZoneArgs = @{}"), "{text}");
    assert!(text.contains("-MasterServers $Servers @ZoneArgs"), "{text}");
    assert!(text.contains("Move-Item $Legacy $StateFile"), "{text}");
    let keys: Vec<String> = [
        source("123456789012", &["eu-west-1"], WindowsScope::Local),
        source("210987654321", &["eu-west-1"], WindowsScope::Local),
        source("123456789012", &["us-east-1"], WindowsScope::Local),
        source(
            "123456789012",
            &["eu-west-1", "us-east-1"],
            WindowsScope::Local,
        ),
    ]
    .iter()
    .map(|s| record(&render_from(Format::Windows, s, &clusters())))
    .collect();
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "{keys:#?}");
    // The same regions in another order are the same source.
    let reordered = source(
        "123456789012",
        &["us-east-1", "eu-west-1"],
        WindowsScope::Forest,
    );
    assert_eq!(
        record(&render_from(Format::Windows, &reordered, &clusters())),
        keys[3]
    );
    let forest = render_from(Format::Windows, &reordered, &clusters());
    assert!(
        forest.contains("$ZoneArgs = @{ ReplicationScope = 'Forest' }"),
        "{forest}"
    );
}

fn check(cmd: &mut Command) {
    let out = cmd.output().expect("checker runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bind_accepts_the_zones_and_the_options_part() {
    for set in [clusters(), vec![]] {
        let dir = scratch("render-bind");
        std::fs::write(dir.join("eks-zones.conf"), render(Format::Bind, "/p", &set)).unwrap();
        std::fs::write(
            dir.join("eks-options.conf"),
            render(Format::BindOptions, "/p", &set),
        )
        .unwrap();
        std::fs::write(
            dir.join("named.conf"),
            format!(
                "options {{\n\tdirectory \"{d}\";\n\tdnssec-validation auto;\n\tinclude \"{d}/eks-options.conf\";\n}};\ninclude \"{d}/eks-zones.conf\";\n",
                d = dir.display()
            ),
        )
        .unwrap();
        check(Command::new(tool("named-checkconf")).arg(dir.join("named.conf")));
    }
}

#[test]
fn unbound_accepts_the_include() {
    for set in [clusters(), vec![]] {
        let dir = scratch("render-unbound");
        std::fs::write(dir.join("eks.conf"), render(Format::Unbound, "/p", &set)).unwrap();
        std::fs::write(
            dir.join("unbound.conf"),
            format!(
                "server:\n\tdirectory: \"{d}\"\n\tchroot: \"\"\n\tusername: \"\"\n\tmodule-config: \"validator iterator\"\n\tprivate-address: 10.0.0.0/8\ninclude: \"{d}/eks.conf\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        check(Command::new(tool("unbound-checkconf")).arg(dir.join("unbound.conf")));
    }
}

#[test]
fn dnsmasq_accepts_the_file() {
    for set in [clusters(), vec![]] {
        let dir = scratch("render-dnsmasq");
        let file = dir.join("eks.conf");
        std::fs::write(&file, render(Format::Dnsmasq, "/p", &set)).unwrap();
        check(
            Command::new(tool("dnsmasq"))
                .arg("--test")
                .arg("--stop-dns-rebind")
                .arg(format!("--conf-file={}", file.display())),
        );
    }
}

fn cli(emulator: &Emulator, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(workspace_bin("eks-private-dns").unwrap());
    cmd.args(args).current_dir(workspace_root());
    for (k, v) in emulator.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn render_out_follows_what_is_published() {
    let emulator = Emulator::start().unwrap();
    let aws = emulator.aws();
    let vpc = aws.vpc("10.0.0.0/16", &[], &["a", "b"]).await.unwrap();
    aws.cluster("one", &vpc, Access::Private, &[])
        .await
        .unwrap();
    let rec = emulator.reconciler(config(&[(
        "EKS_PRIVATE_DNS_ONPREM_CIDRS",
        "192.168.0.0/16",
    )]));
    assert_eq!(rec.reconcile("one").await.error, None);
    let dir = scratch("render-out");
    let out = dir.join("eks.conf");
    let out_s = out.to_str().unwrap();

    let (code, _, err) = cli(
        &emulator,
        &["render", "--format", "dnsmasq", "--out", out_s],
    );
    assert_eq!(code, 2, "changed: {err}");
    let first = std::fs::read_to_string(&out).unwrap();
    let one = shared::model::endpoint_host(aws.describe("one").await.unwrap().endpoint().unwrap())
        .unwrap();
    assert!(first.contains(&format!("server=/{one}/")));
    let (code, _, _) = cli(
        &emulator,
        &["render", "--format", "dnsmasq", "--out", out_s],
    );
    assert_eq!(code, 0, "unchanged");

    // A second cluster appears, then the first goes: the file follows.
    aws.cluster("two", &vpc, Access::Private, &[])
        .await
        .unwrap();
    assert_eq!(rec.reconcile("two").await.error, None);
    let (code, _, _) = cli(
        &emulator,
        &["render", "--format", "dnsmasq", "--out", out_s],
    );
    assert_eq!(code, 2);
    let two = shared::model::endpoint_host(aws.describe("two").await.unwrap().endpoint().unwrap())
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(&one) && text.contains(&two));
    aws.delete_cluster("one").await.unwrap();
    assert_eq!(rec.reconcile("one").await.error, None);
    let (code, _, _) = cli(
        &emulator,
        &["render", "--format", "dnsmasq", "--out", out_s],
    );
    assert_eq!(code, 2);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(&one) && text.contains(&two));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary files left"
    );

    // One cluster, to stdout; an unknown one is an error.
    let (code, stdout, _) = cli(
        &emulator,
        &["render", "--format", "bind", "--cluster", "two"],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("zone \"{two}\"")));
    let (code, _, err) = cli(
        &emulator,
        &["render", "--format", "bind", "--cluster", "nope"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = cli(&emulator, &["render", "--format", "djbdns"]);
    assert_eq!(code, 1);
    assert!(err.contains("djbdns"), "{err}");

    // The last cluster goes: a render that finds none keeps the file (a
    // wrong region or profile finds none too), unless told otherwise.
    let kept = std::fs::read_to_string(&out).unwrap();
    let (code, _, err) = cli(
        &emulator,
        &[
            "--region",
            "eu-central-1",
            "render",
            "--format",
            "dnsmasq",
            "--out",
            out_s,
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("found no published cluster") && err.contains("--allow-empty"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "file kept");
    aws.delete_cluster("two").await.unwrap();
    assert_eq!(rec.reconcile("two").await.error, None);
    let (code, _, err) = cli(
        &emulator,
        &["render", "--format", "dnsmasq", "--out", out_s],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 cluster(s)"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "file kept");
    let args = [
        "render",
        "--format",
        "dnsmasq",
        "--out",
        out_s,
        "--allow-empty",
    ];
    let (code, _, err) = cli(&emulator, &args);
    assert_eq!(code, 2, "{err}");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("0 cluster(s)"));
    // An empty file may follow an empty one without the flag.
    let (code, _, err) = cli(&emulator, &["render", "--format", "bind", "--out", out_s]);
    assert_eq!(code, 2, "{err}");
}

/// Parameters under the prefix that we did not publish, or that name
/// something other than an EKS endpoint, or a public address, render
/// nothing, and each is named in a warning.
#[tokio::test]
async fn render_writes_only_what_we_published() {
    use aws_sdk_ssm::types::{ParameterType, Tag};
    let emulator = Emulator::start().unwrap();
    let ssm = emulator.aws().ssm;
    let ours = Tag::builder()
        .key("eks-private-dns:owner")
        .value("eks-private-dns")
        .build()
        .unwrap();
    let hostile: [(&str, &str, &str, bool); 5] = [
        // No owner tag: anyone who may write under the prefix.
        (
            "corp",
            "0a1b2c3d.gr7.eu-west-1.eks.amazonaws.com",
            "10.0.0.9",
            false,
        ),
        // Tagged, but not an EKS endpoint name, or one that only ends like it.
        ("name", "corp.example.com", "10.0.0.9", true),
        ("suffix", "eu-west-1.eks.amazonaws.com", "10.0.0.9", true),
        (
            "endslike",
            "abc.gr7.eu-west-1.eks.amazonaws.com.example.com",
            "10.0.0.9",
            true,
        ),
        // Tagged, an EKS name, but a public address.
        (
            "public",
            "abc.gr7.eu-west-1.eks.amazonaws.com",
            "203.0.113.9",
            true,
        ),
    ];
    for (cluster, name, ip, tagged) in hostile {
        for (leaf, value, kind) in [
            ("endpoint", name, ParameterType::String),
            ("inbound-ips", ip, ParameterType::StringList),
        ] {
            let mut put = ssm
                .put_parameter()
                .name(format!("/eks-private-dns/{cluster}/{leaf}"))
                .value(value)
                .r#type(kind);
            if tagged {
                put = put.tags(ours.clone());
            }
            put.send().await.unwrap();
        }
    }
    for format in ["bind", "bind-options", "unbound", "dnsmasq"] {
        let (code, stdout, err) = cli(&emulator, &["render", "--format", format]);
        assert_eq!(code, 0, "{err}");
        assert!(stdout.contains("0 cluster(s)"), "{format}: {stdout}");
        for bad in [
            "example.com",
            "203.0.113.9",
            "10.0.0.9",
            "eks.amazonaws.com\"",
        ] {
            assert!(!stdout.contains(bad), "{format} has {bad}: {stdout}");
        }
        assert!(
            err.contains("parameter /eks-private-dns/corp/endpoint") && err.contains("owner tag"),
            "{err}"
        );
        for cluster in ["name", "suffix", "endslike", "public"] {
            assert!(
                err.contains(&format!("cluster {cluster} ")),
                "{cluster}: {err}"
            );
        }
    }
    // verify will not send a query to what it does not trust either.
    let (code, _, err) = cli(&emulator, &["verify", "--cluster", "public"]);
    assert_eq!(code, 1);
    assert!(err.contains("203.0.113.9"), "{err}");
}

/// Publish a cluster in `region`, as its deployment's apply step would.
async fn publish_in(emulator: &Emulator, region: &str, cluster: &str, name: &str, ip: &str) {
    publish_as_apply(emulator, region, cluster, name, &[ip], &[], &[]).await;
}

/// `--region` twice: one file with the clusters of both, each once; the
/// Windows script names both regions and the account in its record; any
/// other command refuses more than one region.
#[tokio::test]
async fn render_reads_several_regions_into_one_file() {
    let emulator = Emulator::start().unwrap();
    let west = "0a1b2c3d4e5f60718293a4b5c6d7e8f9.gr7.eu-west-1.eks.amazonaws.com";
    let east = "f9e8d7c6b5a40718293a4b5c6d7e8f90.yl4.us-east-1.eks.amazonaws.com";
    publish_in(&emulator, "eu-west-1", "west", west, "10.0.1.10").await;
    publish_in(&emulator, "us-east-1", "east", east, "10.9.1.10").await;
    let both = [
        "--region",
        "eu-west-1",
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
    ];
    let mut args = both.to_vec();
    args.extend(["render", "--format", "unbound"]);
    let (code, text, err) = cli(&emulator, &args);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("2 cluster(s)"), "{text}");
    assert_eq!(
        text.matches(&format!("name: \"{west}\"")).count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("name: \"{east}\"")).count(),
        1,
        "{text}"
    );
    let mut args = both.to_vec();
    args.extend([
        "render",
        "--format",
        "windows",
        "--windows-replication-scope",
        "domain",
    ]);
    let (code, text, err) = cli(&emulator, &args);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("of account 123456789012 in eu-west-1, us-east-1"),
        "{text}"
    );
    assert!(text.contains("ReplicationScope = 'Domain'"), "{text}");
    let (code, _, err) = cli(
        &emulator,
        &["--region", "eu-west-1", "--region", "us-east-1", "status"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("only render reads several regions"), "{err}");
}
