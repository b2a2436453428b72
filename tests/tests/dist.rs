//! `make dist`'s packaging (build-support/dist.py) on the artifacts `sam
//! build` made and a build of the CLI: every file is in SHA256SUMS, the
//! template deploys the zips, each zip holds an executable bootstrap, the
//! tarball's CLI runs, and packaging again gives the same bytes. `make
//! dist` itself adds the CLI's release build (minutes), which CI leaves out.

use std::path::{Path, PathBuf};
use std::process::Command;

use eks_private_dns_tests::{scratch, workspace_root};

/// The CLI that `cargo test --workspace` built beside this test.
fn cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    let cli = debug.join("eks-private-dns");
    assert!(
        cli.is_file(),
        "{} is missing: `cargo test --workspace` builds it",
        cli.display()
    );
    cli
}

fn package(out: &Path) -> PathBuf {
    let root = workspace_root();
    let sam = root.join(".aws-sam/build");
    assert!(
        sam.join("template.yaml").is_file(),
        "run `make sam-build` first (`make test` does)"
    );
    let status = Command::new("python3")
        .arg(root.join("build-support/dist.py"))
        .args(["--version", env!("CARGO_PKG_VERSION"), "--sam-build"])
        .arg(&sam)
        .arg("--cli")
        .arg(cli())
        .arg("--out")
        .arg(out)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    out.join(format!("eks-private-dns-{}", env!("CARGO_PKG_VERSION")))
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_release_is_complete_checked_and_reproducible() {
    let tmp = scratch("dist");
    let first = package(&tmp.join("one"));
    let second = package(&tmp.join("two"));
    let sums = std::fs::read_to_string(first.join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums,
        std::fs::read_to_string(second.join("SHA256SUMS")).unwrap(),
        "packaging again changed the bytes"
    );
    let version = env!("CARGO_PKG_VERSION");
    let tarball = format!("eks-private-dns-{version}-x86_64-linux-gnu.tar.gz");
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split("  ").nth(1).unwrap())
        .collect();
    listed.sort();
    let mut expected = vec![
        "cluster-event.zip",
        "spoke-template.yaml",
        "sweep.zip",
        "template.yaml",
        tarball.as_str(),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    run(&first, "sha256sum", &["--check", "--strict", "SHA256SUMS"]);

    let template = std::fs::read_to_string(first.join("template.yaml")).unwrap();
    assert!(template.contains("CodeUri: cluster-event.zip\n"));
    assert!(template.contains("CodeUri: sweep.zip\n"));
    // Each zip: one executable bootstrap, as the provided runtime runs it.
    let listing = run(
        &first,
        "python3",
        &[
            "-c",
            "import sys, zipfile\n\
             for name in sys.argv[1:]:\n\
             \x20   z = zipfile.ZipFile(name)\n\
             \x20   print(name, [(i.filename, oct(i.external_attr >> 16)) for i in z.infolist()])",
            "cluster-event.zip",
            "sweep.zip",
        ],
    );
    assert_eq!(
        listing,
        "cluster-event.zip [('bootstrap', '0o100755')]\nsweep.zip [('bootstrap', '0o100755')]\n"
    );
    run(&first, "tar", &["-xzf", &tarball]);
    let folder = first.join(format!("eks-private-dns-{version}"));
    assert!(folder.join("LICENSE").is_file());
    let said = run(&folder, "./eks-private-dns", &["--version"]);
    assert_eq!(said.trim(), format!("eks-private-dns {version}"));
    let _ = std::fs::remove_dir_all(&tmp);
}
