# One entry point for set-up, local run, tests and deployment. See README.md.
SHELL := /bin/bash
# The Lambda runtime is python3.13; pyenv machines select it with PYENV_VERSION.
export PYENV_VERSION ?= 3.13.0
export SAM_CLI_TELEMETRY := 0
PYTHON ?= python3.13
VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
SAM := $(TOOLS)/bin/sam
AWSCLI := .awscli

.PHONY: install run test lint build deploy bench lock clean admin

install: $(VENV)/.installed $(TOOLS)/.installed $(AWSCLI)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The SAM CLI pins boto3 and Flask versions that clash with moto's, so it lives in its own venv.
$(TOOLS)/.installed: tools-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r tools-requirements.txt
	touch $@

# The AWS CLI the deploy walkthrough's test runs (tests/e2e/test_deploy_steps.py): its botocore pin
# clashes with both venvs above, so it has its own.
$(AWSCLI)/.installed: Makefile
	test -x $(AWSCLI)/bin/python || $(PYTHON) -m venv $(AWSCLI)
	$(AWSCLI)/bin/python -m pip install --quiet awscli==1.46.3
	touch $@

run: install
	$(PY) -m scripts.local_run

test: install
	# Three workers on the 2 cores the suite is sized for: its tests wait on sockets (moto, the
	# sandbox, subprocesses) more than they compute; work stealing evens out the long ones.
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(PY) -m pytest -n 3 --dist worksteal

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/connectwise functions sandbox scripts

# The operator's command for connections: make admin ARGS="list" (python -m tasks.admin --help).
admin: install
	PYTHONPATH=layers/connectwise $(PY) -m tasks.admin $(ARGS)

# Benchmarks print ratios against a baseline measured in the same run; not part of make test.
bench: install
	$(PY) -m scripts.bench

# The layer is built from a lock of every transitive dependency with its hashes, resolved for
# the Lambda runtime (python3.13, arm64): a rebuild installs exactly these files or fails.
# botocore (the X-Ray SDK's) is left out: the runtime's boto3 brings its own, which must win.
lock: $(TOOLS)/.installed
	$(TOOLS)/bin/uv pip compile layers/connectwise/requirements.txt --generate-hashes --quiet \
		--python-version 3.13 --python-platform aarch64-manylinux2014 \
		--no-emit-package botocore --no-emit-package boto3 \
		--custom-compile-command "make lock" -o layers/connectwise/requirements.lock

build: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM) build

# The settings of samconfig.toml; ARGS adds to them (ARGS=--guided, or --parameter-overrides ...).
deploy: build
	$(SAM) deploy $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) $(AWSCLI) .aws-sam out
