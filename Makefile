# Three virtualenvs: .venv runs the application and its tests on Python 3.13 (the Lambda runtime);
# .venv-sam holds aws-sam-cli and cfn-lint, which pin older boto3/pydantic; .venv-checkov holds Checkov
# (requirements-checkov.txt), which pins older boto3/networkx.
SHELL := /bin/bash
PYTHON313 := $(shell (pyenv prefix 3.13 2>/dev/null | head -1 | sed 's|$$|/bin/python3.13|') || true)
ifeq ($(wildcard $(PYTHON313)),)
PYTHON313 := $(shell command -v python3.13)
endif
VENV := .venv
SAMVENV := .venv-sam
CHECKOVVENV := .venv-checkov
PY := $(VENV)/bin/python
ARGS ?= --approve all

.PHONY: setup setup-sam setup-checkov demo test test-fast lint validate build bench clean lambda-image console \
	setup-browser

$(VENV)/.installed: requirements-dev.txt pyproject.toml layers/*/requirements.txt functions/*/requirements.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv prefix 3.13 / python3.13)"; exit 2; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(SAMVENV)/.installed: requirements-sam.txt
	$(PYTHON313) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --upgrade pip
	$(SAMVENV)/bin/pip install -q -r requirements-sam.txt
	touch $@

$(CHECKOVVENV)/.installed: requirements-checkov.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv prefix 3.13 / python3.13)"; exit 2; }
	$(PYTHON313) -m venv $(CHECKOVVENV)
	$(CHECKOVVENV)/bin/pip install -q --upgrade pip
	$(CHECKOVVENV)/bin/pip install -q -r requirements-checkov.txt
	touch $@

setup: $(VENV)/.installed
setup-sam: $(SAMVENV)/.installed
setup-checkov: $(CHECKOVVENV)/.installed

# The operator console (console/): npm ci and the static build into console/dist, plus roles.json from template.yaml.
# aegis_local.console.build does nothing when no input changed since the last build. npm (Debian's nodejs, 18 or
# later) is installed when missing and running as root.
console: setup
	@if ! command -v npm >/dev/null 2>&1; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "console: npm is missing and only root installs it (apt-get install nodejs npm)" >&2; exit 2; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
	fi
	$(PY) -m aegis_local.console.build

# Debian's Chromium for the browser tests (tests/e2e/console: Playwright drives it, no browser is downloaded). Installed
# when missing and running as root; otherwise those tests skip with the reason, and fail under CI.
setup-browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "setup-browser: chromium is missing and only root installs it (apt-get install chromium)" >&2; \
		else apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi; \
	fi

demo: setup
	$(VENV)/bin/aegis-local demo $(ARGS)

test: setup setup-sam setup-checkov console setup-browser
	PATH="$(CURDIR)/$(SAMVENV)/bin:$(dir $(PYTHON313)):$$PATH" $(PY) -m pytest -n 2 -q

test-fast: setup
	$(PY) -m pytest -q -x -m "not e2e"

lint: setup setup-checkov
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/aegis/aegis layers/jwt/aegis_jwt layers/auth/aegis_auth local/aegis_local functions/*/aegis_*
	@# Every function's handler is called app.py; each is checked on its own.
	@for app in functions/*/app.py; do $(VENV)/bin/mypy $$app || exit 1; done
	@# Any failed check fails lint; a check that does not fit is skipped in the resource's Metadata, with its reason.
	$(CHECKOVVENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --quiet --compact
	@# The member accounts' stack (StackSets) is held to the same checks.
	$(CHECKOVVENV)/bin/checkov --file member/template.yaml --framework cloudformation --skip-download --quiet --compact

validate: setup-sam
	$(SAMVENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(SAMVENV)/bin/cfn-lint template.yaml
	@# The member accounts' stack, deployed by StackSets (member/template.yaml).
	$(SAMVENV)/bin/sam validate --lint --template member/template.yaml --region us-east-1
	$(SAMVENV)/bin/cfn-lint member/template.yaml

build: setup-sam
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAMVENV)/bin/sam build --template template.yaml

bench: setup setup-sam
	PATH="$(CURDIR)/$(SAMVENV)/bin:$(dir $(PYTHON313)):$$PATH" $(PY) -m bench.all

# The image `sam local` runs the functions in, built here (debootstrap, this Python, awslambdaric; no registry). Needs
# root and a Docker daemon; does nothing when the image of the same inputs exists (aegis_local/lambda_image.py).
lambda-image: setup
	$(PY) -m aegis_local.lambda_image --python "$(PYTHON313)"

clean:
	rm -rf $(VENV) $(SAMVENV) $(CHECKOVVENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache console/node_modules console/dist
