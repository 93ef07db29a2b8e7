#!/usr/bin/env bash
# The deploy rehearsal that needs no AWS (`make deploy-check`, also in `make test`): the template
# linted by SAM (`sam validate --lint`), then expanded by SAM's own transform, offline, and the
# CloudFormation it expands to checked for what the code expects (scripts/deploy_check.py). After
# a `sam build`, its output is checked too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/sam-validate.sh
exec .venv/bin/python scripts/deploy_check.py
