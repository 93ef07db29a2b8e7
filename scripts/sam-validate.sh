#!/usr/bin/env bash
# `sam validate --lint` on template.yaml with a pinned SAM CLI in the same repo-local venv as
# scripts/cfn-lint.sh (.venv, git-ignored). With --lint, SAM runs cfn-lint (with its SAM
# transform) and calls no AWS API: it passes with no credentials and no network (checked with
# `env -i ... unshare -rn`). Only the install needs PyPI: about 40 s on top of cfn-lint's
# (about a minute into an empty venv, which grows to ~340 MB); then a validation takes ~3 s.
# Usage: scripts/sam-validate.sh [extra sam validate args...]
set -euo pipefail

# Pinned: bump deliberately. aws-sam-cli 1.170.0 accepts cfn-lint >=1.52,<1.59, so both are
# installed together and pip keeps scripts/cfn-lint.sh's pin (one cfn-lint in the venv).
SAM_CLI_VERSION="1.170.0"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CFN_LINT_VERSION="$(sed -n 's/^CFN_LINT_VERSION="\(.*\)"$/\1/p' scripts/cfn-lint.sh)"
[[ -n "$CFN_LINT_VERSION" ]] || { echo "sam-validate.sh: no CFN_LINT_VERSION in scripts/cfn-lint.sh" >&2; exit 1; }

VENV=.venv
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "sam-validate.sh: creating $VENV" >&2
  python3 -m venv "$VENV"
fi

version() { "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if [[ "$(version aws-sam-cli)" != "$SAM_CLI_VERSION" || "$(version cfn-lint)" != "$CFN_LINT_VERSION" ]]; then
  echo "sam-validate.sh: installing aws-sam-cli==$SAM_CLI_VERSION (with cfn-lint==$CFN_LINT_VERSION) into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" >&2
fi

# No credentials are needed, but a profile named in the environment that this machine lacks
# makes SAM fail before linting ("The config profile (x) could not be found").
unset AWS_PROFILE AWS_DEFAULT_PROFILE
export SAM_CLI_TELEMETRY=0

exec "$VENV/bin/sam" validate --lint --template template.yaml --region us-east-1 "$@"
