# eks-private-dns: the two commands a new user needs.
#   make demo   the local demo against the AWS emulator (no AWS account needed)
#   make test   the whole test suite
# Both set up what they need: a Python virtualenv with the emulator (moto).

PYTHON ?= python3
VENV ?= .venv
CARGO ?= cargo

.PHONY: demo test venv build lint clean

$(VENV)/.installed: tests/emulator/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

venv: $(VENV)/.installed

build:
	$(CARGO) build --workspace --bins

demo: venv build
	$(CARGO) run --quiet -p eks-private-dns-tests --bin demo

test: venv
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf $(VENV)
	$(CARGO) clean
