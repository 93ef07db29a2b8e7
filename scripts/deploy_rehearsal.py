"""The deploy rehearsal's driver: template.yaml deployed into the fakecloud emulator as
`sam package` + `sam deploy` would deploy it, every provider's example sent through its HTTP API,
the records read back with `callhook`, then the provider secret rotated under the running stack.

Usage: .venv/bin/python scripts/deploy_rehearsal.py --endpoint URL --bootstraps DIR --callhook BIN
(scripts/deploy-rehearsal.sh starts the emulator and builds what this needs.)

What this changes in the template it deploys, and why (everything else is deployed as written):
- each function's `CodeUri` becomes the S3 object its zipped bootstrap was uploaded to, as
  `sam package` does;
- each bus rule selects its type by `detail.type` instead of `detail-type`: the emulator's pipe
  sets the bus event's detail-type to the template's `$.dynamodb.NewImage.type.S` literally
  instead of resolving the path, so no `detail-type` pattern would ever match. The pipe's input
  transformation puts the same `type` in the detail, so the routing is the same.
Exit status 0 when every check passed; the summary is printed either way.
"""
import argparse
import copy
import io
import json
import pathlib
import subprocess
import sys
import time
import zipfile

import boto3
from botocore.config import Config
from samtranslator.yaml_helper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
STACK = "callhook-rehearsal"
BUCKET = "callhook-rehearsal-artifacts"
# The credentials the rehearsal's stack is deployed with (its provider secret's first content).
VOX_TOKEN = "rehearsal-vox-token"
SYNTHFLOW_TOKEN = "rehearsal-synthflow-token"
# The later providers' credentials; Telnyx signs with a private key whose public key the stack
# holds (RFC 8032's first test key pair).
LATER_SECRETS = {p: f"rehearsal-{p.lower()}-secret" for p in ("Retell", "Vapi", "Bland", "ElevenLabs", "Twilio")}
TELNYX_SIGNING_KEY = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
TELNYX_PUBLIC_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
CLAWOPS_OLD = "rehearsal-clawops-secret-2025"
CLAWOPS_NEW = "rehearsal-clawops-secret-2026"
SECRET_REFRESH = 60
# The records the seed fixtures make: (provider, call id, snapshot under tests/fixtures/expected/e2e),
# read from the end-to-end harness's list so the two never drift.
SEED_CALLS = [
    tuple(m) for m in __import__("re").findall(
        r'\(\s*"(\w+)",\s*"([^"]+)",\s*"(\w+)",?\s*\)',
        (ROOT / "tests/src/lib.rs").read_text().split("pub const SEED_CALLS", 1)[1].split("];", 1)[0])
]

failures: list[str] = []


def log(message: str) -> None:
    print(f"rehearsal: {message}", file=sys.stderr, flush=True)


def check(ok: bool, message: str) -> bool:
    log(("ok     " if ok else "FAILED ") + message)
    if not ok:
        failures.append(message)
    return ok


def zipped(bootstrap: pathlib.Path) -> bytes:
    """A Lambda zip holding `bootstrap`, executable, as `sam package` makes it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, bootstrap.read_bytes())
    return buffer.getvalue()


def rehearsal_template(bootstraps: pathlib.Path, s3) -> dict:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    s3.create_bucket(Bucket=BUCKET)
    uploaded = set()
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        key = f"{binary}.zip"
        if key not in uploaded:  # every function runs the same bootstrap: one zip, as sam package
            s3.put_object(Bucket=BUCKET, Key=key, Body=zipped(bootstraps / binary))
            uploaded.add(key)
        resource["Properties"]["CodeUri"] = f"s3://{BUCKET}/{key}"
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "EventBridgeRule":
                pattern = event["Properties"]["Pattern"]
                pattern["detail"] = {"type": pattern.pop("detail-type")}
    return template


def deploy(cfn, template: dict) -> dict:
    parameters = {
        "VoxTokens": VOX_TOKEN,
        "SynthflowTokens": SYNTHFLOW_TOKEN,
        "ClawOpsSecrets": CLAWOPS_OLD,
        "SecretRefreshSeconds": str(SECRET_REFRESH),
        "TelnyxPublicKeys": TELNYX_PUBLIC_KEY,
        **{f"{p}Secrets": v for p, v in LATER_SECRETS.items()},
    }
    started = time.monotonic()
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    while True:
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() - started > 600:
            raise SystemExit("rehearsal: the stack was not created within 10 minutes")
        time.sleep(2)
    resources = cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    if not check(status == "CREATE_COMPLETE",
                 f"stack created: {status} in {time.monotonic() - started:.0f} s, {len(resources)} resources"):
        for event in cfn.describe_stack_events(StackName=STACK)["StackEvents"][:20]:
            log(f"  {event['LogicalResourceId']}: {event['ResourceStatus']} {event.get('ResourceStatusReason', '')}")
        raise SystemExit(1)
    by_type: dict[str, int] = {}
    for resource in resources:
        by_type[resource["ResourceType"]] = by_type.get(resource["ResourceType"], 0) + 1
    log("  " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def update(cfn, changed: dict) -> None:
    """A stack update that changes `changed` and keeps every other parameter."""
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    parameters = [{"ParameterKey": p["ParameterKey"], "ParameterValue": changed[p["ParameterKey"]]}
                  if p["ParameterKey"] in changed else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                  for p in stack["Parameters"]]
    cfn.update_stack(StackName=STACK, UsePreviousTemplate=True, Parameters=parameters,
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(2)
    check(status == "UPDATE_COMPLETE", f"stack updated (TwilioPublicUrl): {status}")


def callhook(binary: str, *args: str, env: dict, ok_codes=(0,)) -> subprocess.CompletedProcess:
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode not in ok_codes:
        log(f"`callhook {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[:2000]}")
    return done


def send(binary: str, base_url: str, env: dict, provider: str, fixture: str, secret: str | None = None) -> int:
    """One fixture through the HTTP API; the HTTP status (0 when none came back)."""
    args = ["send", provider, fixture, "--url", base_url, "--json"]
    if secret:
        args += ["--secret", secret]
    done = callhook(binary, *args, env=env, ok_codes=(0, 1))
    try:
        return int(json.loads(done.stdout)[0]["status"])
    except (ValueError, IndexError, KeyError, TypeError):
        log(f"unparsed answer: {done.stdout[:500]} {done.stderr[:500]}")
        return 0


def comparable(record: dict) -> dict:
    record = copy.deepcopy(record)
    record["first_event_at"] = None
    record["last_event_at"] = None
    return record


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bootstraps", required=True, type=pathlib.Path)
    parser.add_argument("--callhook", required=True)
    args = parser.parse_args()

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    client = lambda service: session.client(service, endpoint_url=args.endpoint,  # noqa: E731
                                            config=Config(retries={"max_attempts": 2}))
    timings = {}
    started = time.monotonic()
    template = rehearsal_template(args.bootstraps, client("s3"))
    outputs = deploy(client("cloudformation"), template)
    timings["deploy"] = time.monotonic() - started

    api = outputs["VoxWebhookUrl"].split("//", 1)[1].split(".", 1)[0]
    base_url = f"{args.endpoint}/_aws/execute-api/{api}/$default"
    # Twilio signs the URL it calls: here the emulator's, known once the API exists. A stack
    # update gives it to ingest, as a user behind a custom domain would (TwilioPublicUrl).
    started_update = time.monotonic()
    update(client("cloudformation"), {"TwilioPublicUrl": f"{base_url}/webhooks/twilio"})
    timings["update"] = time.monotonic() - started_update
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "CALLHOOK_VOX_TOKENS": VOX_TOKEN,
        "CALLHOOK_SYNTHFLOW_TOKENS": SYNTHFLOW_TOKEN,
        "CALLHOOK_CLAWOPS_SECRETS": CLAWOPS_OLD,
        **{f"CALLHOOK_{p.upper()}_SECRETS": v for p, v in LATER_SECRETS.items()},
        "CALLHOOK_TELNYX_SIGNING_KEY": TELNYX_SIGNING_KEY,
        "CALLHOOK_EVENTS_TABLE": outputs["EventsTableName"],
        "CALLHOOK_CALLS_TABLE": outputs["CallsTableName"],
        "CALLHOOK_DYNAMODB_ENDPOINT": args.endpoint,
        "CALLHOOK_STATE": "/nonexistent/callhook-state.json",
    }

    # Every provider's example, through the HTTP API, as the provider would send it.
    started = time.monotonic()
    done = callhook(args.callhook, "send", "--all", "--url", base_url, "--json", env=env, ok_codes=(0, 1))
    try:
        answers = json.loads(done.stdout)
    except ValueError:
        answers = []
    statuses = [a.get("status") for a in answers]
    check(len(answers) > 0 and all(200 <= int(s) < 300 for s in statuses),
          f"every provider example answered 2xx through the HTTP API: {len(answers)} sent, statuses {sorted(set(statuses))}")

    # The records, read back with `callhook` once the stream, the pipe, the bus and the functions
    # have merged them.
    deadline = time.monotonic() + 180
    expected = {(p, c): json.loads((ROOT / f"tests/fixtures/expected/e2e/{s}.json").read_text())
                for p, c, s in SEED_CALLS}
    records: dict = {}
    while time.monotonic() < deadline:
        for provider, call_id in expected:
            shown = callhook(args.callhook, "calls", "show", provider, call_id, "--json", env=env, ok_codes=(0, 3))
            if shown.returncode == 0:
                records[(provider, call_id)] = json.loads(shown.stdout)
        if all(k in records and comparable(records[k]) == v for k, v in expected.items()):
            break
        time.sleep(3)
    timings["records"] = time.monotonic() - started
    for key, want in expected.items():
        got = records.get(key)
        same = got is not None and comparable(got) == want
        if not check(same, f"record {key[0]}/{key[1]} read back, equal to the local stack's snapshot"):
            if got is not None:
                diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                        if k not in ("first_event_at", "last_event_at") and got.get(k) != want.get(k)}
                log(f"  differs in {json.dumps(diff)[:1500]}")
    listed = callhook(args.callhook, "calls", "list", "--json", env=env)
    if listed.returncode == 0:
        check(len(json.loads(listed.stdout)) == len(expected), f"`callhook calls list` lists the {len(expected)} calls")

    # The provider secret rotated under the running stack: the next ClawOps secret added beside
    # the old one, a minute's wait, both accepted; the old removed, refused after a refresh.
    started = time.monotonic()
    secrets = client("secretsmanager")
    secret_id = outputs["ProviderSecret"]
    secret = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    check(secret.get("CALLHOOK_CLAWOPS_SECRETS") == CLAWOPS_OLD, "the stack's provider secret holds its parameters")
    lambdas = client("lambda")
    environments = {f["FunctionName"]: f.get("Environment", {}).get("Variables", {})
                    for f in lambdas.list_functions()["Functions"]}
    leaked = [n for n, e in environments.items() if any(v in (CLAWOPS_OLD, VOX_TOKEN, SYNTHFLOW_TOKEN) for v in e.values())]
    check(not leaked, f"no function's configuration holds a credential ({len(environments)} functions)")
    fixture = "call_initiated"
    check(send(args.callhook, base_url, env, "clawops", fixture, CLAWOPS_NEW) == 401, "a webhook signed with the next secret, not yet added: 401")
    secret["CALLHOOK_CLAWOPS_SECRETS"] = [CLAWOPS_OLD, CLAWOPS_NEW]
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(secret))
    time.sleep(61)
    overlap = [send(args.callhook, base_url, env, "clawops", fixture, s) for s in (CLAWOPS_NEW, CLAWOPS_OLD) * 3]
    check(overlap == [200] * 6, f"during the overlap, webhooks signed with either secret: {overlap}")
    secret["CALLHOOK_CLAWOPS_SECRETS"] = [CLAWOPS_NEW]
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(secret))
    after = []
    until = time.monotonic() + SECRET_REFRESH + 15
    while time.monotonic() < until:
        after.append(send(args.callhook, base_url, env, "clawops", fixture, CLAWOPS_NEW))
        time.sleep(5)
    check(after and all(s == 200 for s in after), f"after the removal, the new secret accepted throughout: {after}")
    old = send(args.callhook, base_url, env, "clawops", fixture, CLAWOPS_OLD)
    check(old == 401, f"after the removal and a refresh period, the old secret refused: {old}")
    timings["rotation"] = time.monotonic() - started

    log("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if failures:
        log(f"{len(failures)} check(s) failed")
        return 1
    log("every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
