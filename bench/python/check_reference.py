"""End-to-end check of the reference receiver (bench/reference/app.py) on DynamoDB Local.

    bench/.venv/bin/python bench/python/check_reference.py --endpoint http://127.0.0.1:PORT

Creates a fresh events table, starts uvicorn on a socket this script bound on 127.0.0.1 (so no
waiting for the server to come up: connections queue in the listen backlog until it accepts),
posts signed ClawOps and tokened Vox webhooks, and checks the answers (200 / duplicate, 400, 401,
404, 405, 422, 503) and the stored items (key layout, attributes, gzip for a 1 MiB body,
quarantine). Exits non-zero on the first failed check; prints "N passed, 0 failed".
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH / "reference"))
sys.path.insert(0, str(HERE))

import bodies  # noqa: E402
import events_table  # noqa: E402
import ingest  # noqa: E402

SECRET = "whsec_reference_check"
TOKEN = "vox-reference-token"
FIXTURES = REPO / "tests" / "fixtures"
passed = 0


def check(condition: bool, what: str) -> None:
    global passed
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok  {what}", file=sys.stderr)


class Receiver:
    """uvicorn serving app.py on a socket bound here."""

    def __init__(self, env: dict):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.log = open(os.devnull, "wb") if not os.environ.get("CHECK_VERBOSE") else None
        self.proc = subprocess.Popen(
            [str(BENCH / ".venv/bin/uvicorn"), "app:app", "--app-dir", str(BENCH / "reference"),
             "--fd", str(self.sock.fileno()), "--no-access-log", "--log-level", "warning"],
            env={**os.environ, **env},
            pass_fds=(self.sock.fileno(),),
            stdout=self.log,
            stderr=self.log,
        )

    def post(self, path: str, body: bytes, headers: dict | None = None, method: str = "POST"):
        request = urllib.request.Request(self.base + path, data=body if method == "POST" else None,
                                         headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.sock.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check the reference receiver on DynamoDB Local.")
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local URL")
    args = parser.parse_args(argv)

    table = f"refcheck-{uuid.uuid4().hex[:8]}"
    events_table.ensure_events_table(args.endpoint, table)
    ddb = events_table.client(args.endpoint)
    env = {
        "CALLHOOK_CLAWOPS_SECRETS": SECRET,
        "CALLHOOK_VOX_TOKENS": TOKEN,
        "CALLHOOK_DYNAMODB_ENDPOINT": args.endpoint,
        "CALLHOOK_EVENTS_TABLE": table,
    }
    app = Receiver(env)
    broken = Receiver({**env, "CALLHOOK_EVENTS_TABLE": "no-such-table"})
    try:
        signed = lambda body: {"X-ClawOps-Signature": ingest.sign(SECRET, body),  # noqa: E731
                               "Content-Type": "application/json"}

        completed = (FIXTURES / "clawops/call_completed.json").read_bytes()
        status, answer = app.post("/webhooks/clawops", completed, signed(completed))
        check(status == 200 and answer["received"] is True and answer["duplicate"] is False,
              f"ClawOps call_completed stored: {status} {answer}")
        key = answer["events"][0]["dedupe_key"]
        check(answer["events"][0]["type"] == "call_ended", "mapped to call_ended")
        expected = ingest.dedupe_key("clawops", "call_ended", "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d", completed)
        check(key == expected, "dedupe key = SHA-256 recipe of callhook's event.rs")

        status, answer = app.post("/webhooks/clawops", completed, signed(completed))
        check(status == 200 and answer["duplicate"] is True, f"redelivery is a duplicate: {answer}")

        item = ddb.get_item(TableName=table, Key={
            "pk": {"S": "clawops#CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d"}, "sk": {"S": f"ev#{key}"}})["Item"]
        check(item["type"] == {"S": "call_ended"} and item["provider"] == {"S": "clawops"}
              and item["provider_event"] == {"S": "call.completed"}
              and item["call_id"] == {"S": "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d"}
              and item["dedupe_key"] == {"S": key} and item["occurred_at"] == {"N": "1779323499000"}
              and item["body"] == {"S": completed.decode()} and item["parts"] == {"N": "0"}
              and "received_at" in item, f"events-table item as callhook writes it: {sorted(item)}")
        count = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "clawops#CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d"}})["Count"]
        check(count == 1, "one item after two deliveries")

        for name in ("call_initiated", "call_ringing", "call_answered", "message_received",
                     "missed_call_initiated", "missed_call_completed"):
            body = (FIXTURES / f"clawops/{name}.json").read_bytes()
            status, answer = app.post("/webhooks/clawops", body, signed(body))
            check(status == 200 and answer["duplicate"] is False, f"ClawOps {name}: {status}")
        msg = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                        ExpressionAttributeValues={":pk": {"S": "clawops#msg#SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"}})
        check(msg["Count"] == 1 and msg["Items"][0]["type"] == {"S": "message_received"},
              "message keyed clawops#msg#<message id>")

        status, answer = app.post("/webhooks/clawops", completed, {"X-ClawOps-Signature": "sha256=" + "0" * 64})
        check(status == 401 and answer["error"] == "unauthorized", f"wrong signature: {status} {answer}")
        status, answer = app.post("/webhooks/clawops", completed)
        check(status == 401 and answer["message"] == ingest.MISSING_CREDENTIAL, f"no signature: {answer}")
        tampered = completed.replace(b"95", b"96")
        status, _ = app.post("/webhooks/clawops", tampered, {"X-ClawOps-Signature": ingest.sign(SECRET, completed)})
        check(status == 401, "a body changed after signing is refused")

        bad_json = b'{"call_id": "x", "status": '
        status, answer = app.post("/webhooks/clawops", bad_json, signed(bad_json))
        check(status == 400 and answer["error"] == "malformed_request", f"invalid JSON: {answer}")
        no_id = b'{"event": "call.completed", "status": "completed"}'
        status, answer = app.post("/webhooks/clawops", no_id, signed(no_id))
        check(status == 422 and answer["error"] == "unusable_payload"
              and "call_id" in answer["message"], f"missing call id: {answer}")
        quarantined = ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                                ExpressionAttributeValues={":pk": {"S": "quarantine#clawops"}})["Count"]
        check(quarantined == 2, "authenticated but unusable bodies are quarantined")

        status, answer = app.post("/webhooks/acme", completed, signed(completed))
        check(status == 404 and answer["error"] == "unknown_provider", f"unknown provider: {answer}")
        status, answer = app.post("/webhooks/synthflow", completed)
        check(status == 404, "an unconfigured provider answers 404")
        status, answer = app.post("/webhooks/clawops", b"", method="GET")
        check(status == 405 and answer["error"] == "method_not_allowed", f"GET: {status} {answer}")

        v1 = (FIXTURES / "vox/v1_call_ended.json").read_bytes()
        status, answer = app.post(f"/webhooks/vox?token={TOKEN}", v1)
        check(status == 200 and [e["type"] for e in answer["events"]] == ["call_ended", "call_analyzed"],
              f"Vox v1 call_ended -> call_ended + call_analyzed: {answer}")
        status, answer = app.post("/webhooks/vox?token=nope", v1)
        check(status == 401, "Vox with a wrong token")
        status, answer = app.post("/webhooks/vox", v1)
        check(status == 401, "Vox without a token")
        for name in ("v2_call_started", "v2_mid_call", "v2_call_ended", "v2_call_analyzed",
                     "v1_call_started", "v1_mid_call"):
            body = (FIXTURES / f"vox/{name}.json").read_bytes()
            status, answer = app.post(f"/webhooks/vox?token={TOKEN}", body)
            check(status == 200 and answer["duplicate"] is False, f"Vox {name}: {status}")

        big, _ = bodies.synthetic(1048576)
        status, answer = app.post(f"/webhooks/vox?token={TOKEN}", big)
        check(status == 200 and answer["duplicate"] is False, f"1 MiB Vox body stored: {status}")
        big_key = answer["events"][0]["dedupe_key"]
        item = ddb.get_item(TableName=table, Key={
            "pk": {"S": "vox#3079f46c-d141-4cd9-805f-69f212136b66"}, "sk": {"S": f"ev#{big_key}"}})["Item"]
        check(item["body_encoding"] == {"S": "gzip"} and "body" not in item
              and gzip.decompress(item["body_gz"]["B"]) == big, "large bodies are stored gzip-compressed")

        status, answer = broken.post("/webhooks/clawops", completed, signed(completed))
        check(status == 503 and answer["error"] == "storage_unavailable", f"storage failure: {status} {answer}")
    finally:
        app.close()
        broken.close()
        ddb.delete_table(TableName=table)
    print(f"{passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
