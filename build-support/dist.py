#!/usr/bin/env python3
"""A release's artifacts, reproducibly: the same inputs give the same bytes.

    dist.py --version V --sam-build DIR --cli BIN --out DIR

writes into OUT/eks-private-dns-V/:
  cluster-event.zip, sweep.zip   each function's bootstrap, as Lambda takes it
  template.yaml                  sam build's template, its CodeUri pointing at
                                 the zips: `sam deploy --template-file
                                 template.yaml --resolve-s3 ...` uploads them
                                 and deploys without a Rust toolchain
  spoke-template.yaml            the spoke account's template, for a StackSet
  eks-private-dns-V-x86_64-linux-gnu.tar.gz
                                 the CLI with LICENSE
  SHA256SUMS                     `sha256sum -c SHA256SUMS` checks them all

Every archive entry has a fixed time, owner and mode, in a fixed order, and
gzip records no time or name: rebuilding a release gives the same checksums.
"""

import argparse
import gzip
import hashlib
import io
import os
import shutil
import sys
import tarfile
import zipfile

FUNCTIONS = [("ClusterEventFunction", "cluster-event"), ("SweepFunction", "sweep")]
# zip's earliest time; tar's epoch.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def fail(message):
    sys.exit(f"dist: {message}")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror} (run `make sam-build` and build the CLI first; `make dist` does)")


def function_zip(bootstrap, out):
    info = zipfile.ZipInfo("bootstrap", date_time=ZIP_TIME)
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.create_system = 3  # Unix, so that the mode is read
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(info, read(bootstrap), compresslevel=9)


def packaged_template(built, out, version):
    text = read(built).decode()
    for logical_id, name in FUNCTIONS:
        line = f"CodeUri: {logical_id}\n"
        if text.count(line) != 1:
            fail(f"{built}: expected one '{line.strip()}', found {text.count(line)}")
        text = text.replace(line, f"CodeUri: {name}.zip\n")
    header = (
        f"# eks-private-dns {version}: deploy without building, from this folder:\n"
        "#   sam deploy --template-file template.yaml --resolve-s3 --capabilities CAPABILITY_IAM \\\n"
        "#     --stack-name eks-private-dns --parameter-overrides ...\n"
    )
    with open(out, "w") as f:
        f.write(header + text)


def cli_tarball(cli, license_file, out, version):
    folder = f"eks-private-dns-{version}"
    entries = [(f"{folder}/LICENSE", read(license_file), 0o644),
               (f"{folder}/eks-private-dns", read(cli), 0o755)]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in sorted(entries):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--version", required=True)
    p.add_argument("--sam-build", required=True, help="sam build's output folder")
    p.add_argument("--cli", required=True, help="the CLI binary (Linux x86_64)")
    p.add_argument("--license", default="LICENSE")
    p.add_argument("--spoke", default="spoke/template.yaml")
    p.add_argument("--out", default="dist")
    a = p.parse_args()

    release = os.path.join(a.out, f"eks-private-dns-{a.version}")
    shutil.rmtree(release, ignore_errors=True)
    os.makedirs(release)
    for logical_id, name in FUNCTIONS:
        function_zip(os.path.join(a.sam_build, logical_id, "bootstrap"),
                     os.path.join(release, f"{name}.zip"))
    packaged_template(os.path.join(a.sam_build, "template.yaml"),
                      os.path.join(release, "template.yaml"), a.version)
    shutil.copyfile(a.spoke, os.path.join(release, "spoke-template.yaml"))
    cli_tarball(a.cli, a.license,
                os.path.join(release, f"eks-private-dns-{a.version}-x86_64-linux-gnu.tar.gz"),
                a.version)
    sums = []
    for name in sorted(os.listdir(release)):
        digest = hashlib.sha256(read(os.path.join(release, name))).hexdigest()
        sums.append(f"{digest}  {name}\n")
    with open(os.path.join(release, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    print(f"dist: {release}")
    for line in sums:
        print(f"  {line}", end="")


if __name__ == "__main__":
    main()
