# eks-private-dns: the two commands a new user needs.
#   make demo   the local demo against the AWS emulator (no AWS account needed)
#   make test   the whole test suite, including the template checks and the
#               end-to-end test of the Lambda binaries that `sam build` makes
# Both set up what they need in Python virtualenvs: the emulator (moto), and
# for `make test` the SAM CLI, cfn-lint, cargo-lambda (with zig) and checkov.

PYTHON ?= python3
VENV ?= .venv
SAM_VENV ?= .venv-sam
CHECKOV_VENV ?= .venv-checkov
CARGO ?= cargo
PIP = bin/pip install --quiet --disable-pip-version-check

# No AWS account is used by the checks and the build: keep the tools from
# looking for credentials (the instance metadata service) or sending telemetry.
OFFLINE = AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 AWS_ACCESS_KEY_ID=offline \
	AWS_SECRET_ACCESS_KEY=offline AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH"

TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)

.PHONY: demo test venv sam-venv checkov-venv build sam-build check-template bench bench-check bench-hello dist lint prune-target clean

$(VENV)/.installed: tests/emulator/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP) -r tests/emulator/requirements.txt
	touch $@

$(SAM_VENV)/.installed: tests/sam/requirements.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/$(PIP) -r tests/sam/requirements.txt
	touch $@

$(CHECKOV_VENV)/.installed: tests/sam/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/$(PIP) -r tests/sam/checkov.txt
	touch $@

venv: $(VENV)/.installed
sam-venv: $(SAM_VENV)/.installed
checkov-venv: $(CHECKOV_VENV)/.installed

# One build of every binary, with the features of the whole workspace (a
# `cargo run -p` of one package would select other features and build the
# AWS SDK again); the demo and the benchmarks run from it. With the tests,
# whose dev-dependencies add features (tokio's test-util), it selects what
# `cargo test` does, and the two share one build of the SDK instead of two.
BUILD = $(CARGO) build --workspace --bins --tests
build:
	$(BUILD)

demo: venv build
	$(TARGET_DIR)/debug/demo

# sam validate --lint on template.yaml, cfn-lint and checkov on it and on
# the spoke's spoke/template.yaml (checkov's skipped checks are listed with
# their reasons at the top of each), and parliament on their IAM policies
# and the on-premises host's policy (the findings it gets wrong are listed,
# with the reason, in tests/sam/iam_lint.py).
check-template: sam-venv checkov-venv
	$(OFFLINE) sam validate --lint --template template.yaml
	$(OFFLINE) cfn-lint template.yaml spoke/template.yaml
	$(OFFLINE) $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download \
		--framework cloudformation --file template.yaml --file spoke/template.yaml
	$(OFFLINE) $(CHECKOV_VENV)/bin/python tests/sam/iam_lint.py template.yaml \
		spoke/template.yaml contrib/iam/onprem-render.json

# The deployable artifacts: .aws-sam/build/{ClusterEvent,Sweep}Function/bootstrap.
# SAM_CACHE: a cache folder for the build's tools (cargo-zigbuild, zig) in
# place of ~/.cache; CI gives an empty one every run, so that the first
# build on a fresh machine is the one it tests.
SAM_CACHE ?=
sam-build: sam-venv
	$(OFFLINE) $(if $(SAM_CACHE),XDG_CACHE_HOME="$(SAM_CACHE)") sam build --template template.yaml
	test -x .aws-sam/build/ClusterEventFunction/bootstrap
	test -x .aws-sam/build/SweepFunction/bootstrap

# The reliability report (figures of tests/tests/faults.rs) closes the run;
# it fails when any family leaked, doubled, missed or touched anything.
test: venv check-template sam-build
	rm -rf $(TARGET_DIR)/tmp/reliability
	$(CARGO) test --workspace
	$(TARGET_DIR)/debug/reliability $(TARGET_DIR)/tmp

# A release: dist/eks-private-dns-VERSION/ with both Lambda zips, a template
# that deploys them without a Rust toolchain, the spoke's template, the CLI
# for Linux x86_64 (glibc 2.30 or later: built like the functions, with
# cargo-lambda's zig) and SHA256SUMS; build-support/dist.py says how it stays
# reproducible. The version is the workspace's, in Cargo.toml.
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
BUILD_CLI = $(CARGO) lambda build --release --package eks-private-dns --bin eks-private-dns
dist: sam-build
	$(OFFLINE) $(BUILD_CLI)
	$(PYTHON) build-support/dist.py --version $(VERSION) --sam-build .aws-sam/build \
		--cli $(TARGET_DIR)/lambda/eks-private-dns/bootstrap --out dist

# The floor of the cold-start benchmark, built like the functions.
BUILD_HELLO = $(CARGO) lambda build --release --package bench-hello
bench-hello: sam-venv
	$(OFFLINE) $(BUILD_HELLO)

BENCH = $(TARGET_DIR)/debug/bench \
	--hello $(TARGET_DIR)/lambda/hello/bootstrap \
	--hello-current-thread $(TARGET_DIR)/lambda/hello-current-thread/bootstrap \
	--python $(SAM_VENV)/bin/python

# Benchmarks: a table, and bench/results.json with each figure and budget.
bench: venv build sam-build bench-hello
	$(BENCH)

# The short mode CI runs: fails only on the deterministic budgets (package
# sizes, API calls, rounds), not on timing.
bench-check: venv build sam-build bench-hello
	$(BENCH) --short --out $(TARGET_DIR)/bench-short.json

CLIPPY = $(CARGO) clippy --workspace --all-targets
lint:
	$(CARGO) fmt --all -- --check
	$(CLIPPY) -- -D warnings

# Removes from the build directory every unit that lint, test and bench-check
# no longer use (older commits, other features or dependency versions): cargo
# never does, and each change of the AWS SDK's features or version left
# another copy of it. `sam build` runs `cargo lambda build --release --bin B`
# in each function's CodeUri, where cargo selects that package's features
# only. $(BUILD) names the units of `cargo test` too. CI runs this after a
# green run (.ci/run).
prune-target: sam-venv
	$(OFFLINE) $(PYTHON) .ci/prune-target $(TARGET_DIR) "$(CLIPPY) -- -D warnings" \
		"$(BUILD)" "$(BUILD_HELLO)" \
		"cd functions/cluster-event && $(CARGO) lambda build --release --bin cluster-event" \
		"cd functions/sweep && $(CARGO) lambda build --release --bin sweep"

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam
	$(CARGO) clean
