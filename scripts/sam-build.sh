#!/usr/bin/env bash
# `sam build` as a user runs it (SAM CLI and cargo-lambda from PyPI, arm64, every function of
# template.yaml), timed, then each function's artifact measured as `sam deploy` ships it: the
# built `bootstrap`, and the zip SAM makes of the function's folder.
#
# Usage: scripts/sam-build.sh [--out FILE.json]
# Installs what it needs: the SAM CLI (scripts/sam-validate.sh's pinned venv, .venv),
# cargo-lambda into .local/tools/cargo-lambda, the Rust target aarch64-unknown-linux-gnu.
# Cold (no target/lambda), about 14 minutes on 2 cores. Not part of `make test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_LAMBDA_VERSION="1.9.2"
TOOLS=.local/tools
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: scripts/sam-build.sh [--out FILE.json]" >&2; exit 2 ;;
  esac
done

# The SAM CLI (installed and the template validated on the way).
scripts/sam-validate.sh >/dev/null
if [[ ! -x "$TOOLS/cargo-lambda/bin/cargo-lambda" ]]; then
  echo "sam-build: installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI into $TOOLS/cargo-lambda" >&2
  mkdir -p "$TOOLS"
  python3 -m venv "$TOOLS/cargo-lambda"
  "$TOOLS/cargo-lambda/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null

unset AWS_PROFILE AWS_DEFAULT_PROFILE
export SAM_CLI_TELEMETRY=0
export PATH="$PWD/$TOOLS/cargo-lambda/bin:$PATH"
# Cold when nothing of an earlier arm64 release build is there to reuse.
cold=true
[[ -d target/aarch64-unknown-linux-gnu/release/deps ]] && cold=false
started="$(date +%s.%N)"
# --beta-features: the Rust builder (rust-cargolambda) is a beta feature of SAM CLI.
.venv/bin/sam build --beta-features --template template.yaml >&2
finished="$(date +%s.%N)"

.venv/bin/python - "$started" "$finished" "$cold" "$OUT" <<'EOF'
"""Each function's bootstrap in .aws-sam/build, and its zip made as SAM makes it."""
import io
import json
import pathlib
import sys
import zipfile

from samcli.lib.package.utils import make_zip_with_lambda_permissions
from samtranslator.yaml_helper import yaml_parse

started, finished, cold, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "true", sys.argv[4]
build = pathlib.Path(".aws-sam/build")
template = yaml_parse((build / "template.yaml").read_text())
functions = {}
for name, resource in template["Resources"].items():
    if resource["Type"] != "AWS::Serverless::Function":
        continue
    folder = build / resource["Properties"]["CodeUri"]
    binary = resource["Metadata"]["BuildProperties"]["Binary"]
    handler = resource["Properties"].get("Handler", binary)
    bootstrap = folder / "bootstrap"
    zip_path = make_zip_with_lambda_permissions(str(pathlib.Path("target") / f"sam-{name}"), str(folder))
    zip_file = pathlib.Path(zip_path)
    with zipfile.ZipFile(zip_file) as z:
        names = z.namelist()
    functions[handler] = {"logical_id": name, "binary": binary, "bootstrap_bytes": bootstrap.stat().st_size,
                         "zip_bytes": zip_file.stat().st_size, "zip_entries": names}
    zip_file.unlink()
default = template.get("Globals", {}).get("Function", {}).get("Architectures", ["x86_64"])
architectures = {r["Properties"].get("Architectures", default)[0]
                 for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"}
report = {"tool": "sam build --beta-features", "seconds": round(finished - started, 1), "cold": cold,
          "arch": "/".join(sorted(architectures)), "functions": functions}
text = json.dumps(report, indent=2) + "\n"
if out:
    pathlib.Path(out).write_text(text)
print(text, end="")
EOF
