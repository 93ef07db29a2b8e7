"""The deploy rehearsal that needs no AWS: template.yaml through SAM's own transform, offline, and
the CloudFormation it expands to checked for what callhook's code expects.

Usage: .venv/bin/python scripts/deploy_check.py   (scripts/deploy-check.sh installs the venv)

Checked on the expanded template, which is what CloudFormation would create:
- every Lambda function: the one bootstrap (functions/lambda, built once) on provided.al2023,
  arm64, a handler it serves, each handler once, JSON logs, and only environment variables the
  code reads;
- the ingest function behind POST /webhooks/{provider} of the HTTP API, throttled;
- every other function invoked by exactly one rule on the stack's bus for the canonical type its
  handler merges, allowed to by a permission for that rule, with an asynchronous invocation config
  that sends failures to the failure queue;
- no event source mapping at all: the pipe is the events stream's one reader;
- every role starting from AWS's basic execution policy (logs) and nothing wider;
- no function's environment holding a provider's secrets or tokens: ingest names the provider
  secret, and only its role may read it.
If `sam build` has run (`.aws-sam/build`), each function's artifact there is an executable
`bootstrap`.
"""
import json
import os
import pathlib
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
errors: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        errors.append(message)


class NoManagedPolicies:
    """SAM asks IAM for managed policy ARNs by name; the template names none, so nothing is asked."""

    def load(self):
        return {}


def expand() -> dict:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # What `sam package` does: code in S3, not a local folder.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://deploy-check/{name}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
              "AWS::StackName": "callhook"}
    return transform(template, pseudo, NoManagedPolicies())


def variables_the_code_reads() -> set[str]:
    names = set()
    for path in (ROOT / "shared" / "src").rglob("*.rs"):
        names |= set(re.findall(r"CALLHOOK_[A-Z0-9_]+", path.read_text()))
    # The per-provider variables are built from the provider's name.
    providers = re.findall(r'const NAME: &str = "(\w+)";',
                           "".join(p.read_text() for p in (ROOT / "shared/src/provider").glob("*.rs")))
    check(len(providers) >= 3, f"providers found in shared/src/provider: {providers}")
    for provider in providers:
        for suffix in ("AUTH", "SECRETS", "TOKENS", "PUBLIC_KEYS", "PUBLIC_URL", "SIGNATURE_HEADER",
                       "SIGNATURE_PREFIX", "TIMESTAMP_HEADER", "SIGNED_PAYLOAD", "SIGNATURE_ALGORITHM",
                       "SIGNATURE_ENCODING", "TOLERANCE_SECS", "KEY_FORMAT"):
            names.add(f"CALLHOOK_{provider.upper()}_{suffix}")
    return names


def ref(value) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def get_att(value) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def statements(role: dict) -> list[dict]:
    """Every statement of a role's inline policies (conditional ones with their `Fn::If` kept)."""
    found = []
    for policy in role.get("Properties", {}).get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if isinstance(statement, dict) and "Fn::If" in statement:
                found += [s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
            else:
                found.append(statement)
    return found


def reads_secret(role: dict) -> list[dict]:
    return [s for s in statements(role)
            if any(str(a).startswith("secretsmanager:") for a in
                   (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]


def main() -> int:
    resources = expand()["Resources"]
    by_type: dict[str, list[tuple[str, dict]]] = {}
    for name, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append((name, resource))
    manifest = (ROOT / "functions" / "lambda" / "Cargo.toml").read_text()
    bootstrap_crate = re.search(r'^name = "([^"]+)"', manifest, re.M).group(1)
    readable = variables_the_code_reads()
    canonical = {"call-started": "call_started", "mid-call": "mid_call", "call-ended": "call_ended",
                 "call-analyzed": "call_analyzed", "message-received": "message_received"}

    check(not by_type.get("AWS::Lambda::EventSourceMapping"),
          "an event source mapping reads the stream besides the pipe")
    functions = by_type.get("AWS::Lambda::Function", [])
    handlers = []
    for name, function in functions:
        props = function["Properties"]
        binary = function.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        check(binary == bootstrap_crate, f"{name}: builds {binary}, not the bootstrap {bootstrap_crate}")
        handler = props.get("Handler")
        handlers.append(handler)
        check(handler == "ingest" or handler in canonical, f"{name}: the bootstrap serves no handler {handler}")
        check(props.get("Runtime") == "provided.al2023", f"{name}: runtime")
        check(props.get("Architectures") == ["arm64"], f"{name}: architecture")
        check(props.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{name}: JSON logs")
        variables = props.get("Environment", {}).get("Variables", {})
        for variable in variables:
            check(variable in readable, f"{name}: the code never reads {variable}")
        check(ref(variables.get("CALLHOOK_EVENTS_TABLE")) == "EventsTable", f"{name}: events table")
        check(ref(variables.get("CALLHOOK_CALLS_TABLE")) == "CallsTable", f"{name}: calls table")
        check(not [v for v in variables if v.endswith(("_SECRETS", "_TOKENS"))],
              f"{name}: a provider's credentials in the environment")
        role = resources.get(get_att(props.get("Role")) or "", {})
        check(role.get("Type") == "AWS::IAM::Role", f"{name}: no role of its own")
        check(role.get("Properties", {}).get("ManagedPolicyArns") == [BASIC_EXECUTION],
              f"{name}: managed policies other than basic execution")

        if handler == "ingest":
            secret = variables.get("CALLHOOK_PROVIDER_SECRET_ARN")
            check(secret is not None, f"{name}: no provider secret")
            grants = reads_secret(role)
            check(len(grants) == 1 and grants[0]["Action"] == "secretsmanager:GetSecretValue"
                  and grants[0]["Resource"] == secret,
                  f"{name}: reads the provider secret with {grants}, not GetSecretValue on it alone")
            api = resources["ServerlessHttpApi"]["Properties"]["Body"]["paths"]
            route = api.get("/webhooks/{provider}", {}).get("post", {})
            uri = json.dumps(route.get("x-amazon-apigateway-integration", {}).get("uri"))
            check(name in uri, f"{name}: not behind POST /webhooks/{{provider}}")
            stage = resources["ServerlessHttpApiApiGatewayDefaultStage"]["Properties"]
            settings = stage.get("DefaultRouteSettings", {})
            check("ThrottlingRateLimit" in settings and "ThrottlingBurstLimit" in settings,
                  "the HTTP API is not throttled")
            continue

        check(not reads_secret(role), f"{name}: may read a secret")
        check(ref(variables.get("CALLHOOK_EVENT_BUS")) == "EventBus", f"{name}: no bus to put call events on")
        rules = [(r, res) for r, res in by_type.get("AWS::Events::Rule", [])
                 if any(get_att(t["Arn"]) == name for t in res["Properties"]["Targets"])]
        check(len(rules) == 1, f"{name}: {len(rules)} rules invoke it")
        for rule_name, rule in rules:
            rule_props = rule["Properties"]
            check(ref(rule_props.get("EventBusName")) == "EventBus", f"{rule_name}: not on the stack's bus")
            check(rule_props["EventPattern"].get("detail-type") == [canonical.get(handler)],
                  f"{rule_name}: does not select {canonical.get(handler)}")
            target = rule_props["Targets"][0]
            check("DeadLetterConfig" in target and "RetryPolicy" in target, f"{rule_name}: no retries or DLQ")
            permitted = [p for _, p in by_type.get("AWS::Lambda::Permission", [])
                         if ref(p["Properties"]["FunctionName"]) == name
                         and p["Properties"]["Principal"] == "events.amazonaws.com"
                         and get_att(p["Properties"].get("SourceArn")) == rule_name]
            check(len(permitted) == 1, f"{rule_name}: EventBridge may not invoke {name}")
        configs = [c for _, c in by_type.get("AWS::Lambda::EventInvokeConfig", [])
                   if ref(c["Properties"]["FunctionName"]) == name]
        check(len(configs) == 1, f"{name}: no asynchronous invocation config")
        for config in configs:
            destination = config["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
            check(get_att(destination.get("Destination")) == "FailureQueue", f"{name}: failures go nowhere")
            check(config["Properties"].get("MaximumRetryAttempts", 2) <= 2, f"{name}: unbounded retries")

    check(sorted(handlers) == sorted(["ingest", *canonical]),
          f"functions with handlers {sorted(handlers)}: one each of ingest and {sorted(canonical)}")

    build = ROOT / ".aws-sam" / "build"
    if (build / "template.yaml").exists():
        built = yaml_parse((build / "template.yaml").read_text())
        for name, resource in built["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            bootstrap = build / resource["Properties"]["CodeUri"] / "bootstrap"
            check(bootstrap.is_file() and os.access(bootstrap, os.X_OK),
                  f"sam build: {name} has no executable bootstrap")
        built_note = "and the sam build output"
    else:
        built_note = "(no sam build output to check)"

    if errors:
        for error in errors:
            print(f"deploy-check: {error}", file=sys.stderr)
        return 1
    print(f"deploy-check: {len(resources)} resources expanded by SAM, {len(functions)} functions "
          f"checked {built_note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
