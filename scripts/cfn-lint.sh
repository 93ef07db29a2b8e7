#!/usr/bin/env bash
# Lint template.yaml with cfn-lint from a repo-local venv (.venv, git-ignored), so the
# same pinned linter runs on every developer machine and in CI without touching the system.
# Usage: scripts/cfn-lint.sh [extra cfn-lint args...]   (default target: template.yaml)
set -euo pipefail

# Pinned: bump deliberately; new releases add rules that can turn a clean template red.
CFN_LINT_VERSION="1.58.0"

# Work from the repo root whatever the caller's cwd is.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "cfn-lint.sh: creating $VENV" >&2
  python3 -m venv "$VENV"
fi

# Install/upgrade only when the pinned version is not already there (keeps reruns instant).
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("cfn-lint"))' 2>/dev/null || true)"
if [[ "$installed" != "$CFN_LINT_VERSION" ]]; then
  echo "cfn-lint.sh: installing cfn-lint==$CFN_LINT_VERSION into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2
fi

if [[ $# -eq 0 ]]; then
  set -- template.yaml
fi
# exec: cfn-lint's exit code (non-zero on any finding, warnings included) is ours.
exec "$VENV/bin/cfn-lint" "$@"
