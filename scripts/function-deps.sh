#!/usr/bin/env bash
# What the Lambda functions are built with, as `sam build` builds them (`cargo lambda build --bin
# callhook-lambda` at the workspace root, which selects the workspace's default members): fails if
# their dependency tree holds what only the local stack, the tests or the CLI need, the local
# stack's code (the `callhook-local` crate), hyper's server, the DynamoDB Streams client, the SSO
# credential providers, or a second TLS stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tree="$(cargo tree --locked -e normal,features --prefix none --format '{p} {f}' | sort -u)"
fail=0
for crate in $(ls functions); do
  name="$(sed -n 's/^name = "\(.*\)"/\1/p' "functions/$crate/Cargo.toml" | head -1)"
  grep -q "^$name v" <<<"$tree" || { echo "function-deps: $name is not among what a root build selects" >&2; fail=1; }
done
forbid() {
  local what="$1" pattern="$2" found
  found="$(grep -E "$pattern" <<<"$tree" | head -3 || true)"
  if [[ -n "$found" ]]; then
    echo "function-deps: the functions are built with $what:" >&2
    sed 's/^/  /' <<<"$found" >&2
    fail=1
  fi
}
forbid "the local stack's code" '^callhook-local v'
forbid "hyper's server" '^hyper v[^ ]+ .*\bserver\b'
forbid "the DynamoDB Streams client" '^aws-sdk-dynamodbstreams v'
forbid "SSO credentials" '^aws-sdk-sso(oidc)? v'
forbid "a TLS stack other than rustls 0.23 on aws-lc" '^(rustls v0\.(1|2[0-2])\.|hyper-rustls v0\.2[0-4]\.|native-tls v|openssl v|ring v)'
if [[ "$(grep -cE '^rustls v' <<<"$tree" | head -1)" != "0" && "$(grep -E '^rustls v' <<<"$tree" | awk '{print $2}' | sort -u | wc -l)" -gt 1 ]]; then
  echo "function-deps: more than one rustls version" >&2
  fail=1
fi
[[ "$fail" == 0 ]] && echo "function-deps: the functions' tree holds none of the local stack, the CLI's credentials or a second TLS stack" >&2
exit "$fail"
