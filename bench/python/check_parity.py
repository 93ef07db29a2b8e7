"""Proves that a Lambda ingest process stores exactly the items the Python code builds.

    bench/.venv/bin/python bench/python/check_parity.py --endpoint http://127.0.0.1:PORT -- CMD...

CMD is any ingest runtime process, for example callhook's own ``target/release/callhook-lambda`` or the
Python one (``bench/.venv/bin/python -m awslambdaric handler.handler`` with
``--cwd bench/python/coldstart``). For every payload of bench/out/bodies (seed fixtures and the
synthetic Vox bodies), runtime_stub.py serve delivers it twice (the same bytes: stored, then a
duplicate) to CMD against a fresh events table on DynamoDB Local; then each stored item is
compared with ingest.event_items() for the same body: same keys, same attributes, same values
(received_at aside; gzip-compressed bodies are compared decompressed, since compressors differ
in their bytes). --edge-cases adds the bodies of EDGE_CASES below (wrong types, odd timestamps,
unknown events, invalid JSON, ...): the answer's status must be the one ingest.py predicts, and
refused bodies must land in quarantine with the same error text. Prints "N passed, M failed".
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH / "reference"))
sys.path.insert(0, str(HERE))

import bodies  # noqa: E402
import events_table  # noqa: E402
import ingest  # noqa: E402

# (provider, body): what the seed fixtures do not exercise.
EDGE_CASES = [
    ("clawops", b'{"event":"call.completed","call_id":"c1","status":"completed","duration":"12.5","created_at":"2026-05-21T09:30:00Z"}'),
    ("clawops", b'{"event":"call.completed","call_id":"c1","status":"completed","duration":true}'),
    ("clawops", b'{"event":"call.completed","call_id":"c1","created_at":"yesterday"}'),
    ("clawops", b'{"event":"call.completed","call_id":"c1","created_at":1.5}'),
    ("clawops", b'{"status":"no-answer","call_id":123}'),
    ("clawops", b'{"status":"weird"}'),
    ("clawops", b'{"text":"hi","id":"m1"}'),
    ("clawops", b'{"event":"call.transferred","call_id":"c9"}'),
    ("clawops", b'{"event":"call.answered","call_id":"  "}'),
    ("clawops", b'{"event":"call.answered","call_id":"c1","from":1.5}'),
    ("clawops", b'[1,2]'),
    ("clawops", b'  '),
    ("clawops", b'{"event":"call.answered","call_id":"c1"} x'),
    ("clawops", b'{"event":"call.answered","call_id":"c1","created_at":"2026-05-21 09:30:00"}'),
    ("clawops", b'{"event":"call.answered","call_id":"c1","created_at":-5}'),
    ("vox", b'{"event":"call_ended","webhook_version":"v2","call":{"call_id":"v1","start_at":1.0e12,"end_at":"x"}}'),
    ("vox", b'{"event":"call_ended","webhook_version":"v2","call":{"call_id":"v1","duration_ms":-1}}'),
    ("vox", b'{"event":"call_ended","webhook_version":"v2"}'),
    ("vox", b'{"event":"agent_transfer","call":{"timestamp":5}}'),
    ("vox", b'{"event":"call_started","call":{"call_id":"v1","agent":{"agent_version":3}}}'),
    ("vox", b'{"event":5}'),
    ("vox", b'{"call":{}}'),
    ("vox", b'{"event":"mid_call","mid_call":{"call_id":"v1","timestamp":1742158401445,"event_type":"call_message","event_data":{"role":"bot","name":"lookup","arguments":{"b":1,"a":[1,2]}}}}'),
    ("vox", b'{"event":"call_ended","call":{"call_id":"v1","transcript":[{"role":1}]}}'),
    ("vox", b'{"event":"call_ended","call":{"call_id":"v1","call_analysis":{"custom_analysis_data":[{"value":1}]}}}'),
    ("vox", b'{"event":"call_analyzed","webhook_version":"v2","call":{"call_id":"v1","call_cost":{"total_cost":"12"}}}'),
    ("vox", b'{"event":"call_ended","call":{"call_id":"v1","call_cost":{"total_credits_used":1.25},"call_analysis":{"summary":""}}}'),
    ("synthflow", b'{"call":{"call_id":"s1","duration":"7","start_time":1711646266}}'),
    ("synthflow", b'{"status":"failed","call":{"call_id":"s1","transcript":[{"role":"human","text":"yo"}]},"executed_actions":{"b":{"return_value":3},"a":{"name":"x","return_value":{"k":"v"}}}}'),
    ("synthflow", b'{"call":{"call_id":"s1","duration":[1]}}'),
    ("synthflow", b'{"status":"x"}'),
    ("synthflow", b'{"call":{"call_id":"s1"},"lead":[1]}'),
]


def expected_items(provider: str, body: bytes) -> tuple[int, list[dict]]:
    """The status ingest.py answers and the items it writes (quarantine for refused bodies)."""
    try:
        events = ingest.parse(provider, body, 0)
    except (ingest.Malformed, ingest.Unusable) as error:
        return error.status, [ingest.quarantine_items(provider, error, body, 0)[0]]
    return 200, [ingest.event_items(event, body)[0] for event in events]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(description="Compare a Lambda ingest's items with ingest.py's.")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--cwd", help="CMD's working directory")
    parser.add_argument("--only", action="append", default=[], help="payload name substring")
    parser.add_argument("--edge-cases", action="store_true", help="also run EDGE_CASES")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]

    table = f"parity-{uuid.uuid4().hex[:8]}"
    events_table.ensure_events_table(args.endpoint, table)
    ddb = events_table.client(args.endpoint)
    cases = [(e["name"], e["provider"], bodies.DEFAULT_OUT / e["file"]) for e in bodies.write(bodies.DEFAULT_OUT)]
    edge_dir = bodies.DEFAULT_OUT.parent / "edge-cases"
    if args.edge_cases:
        edge_dir.mkdir(parents=True, exist_ok=True)
        for index, (provider, body) in enumerate(EDGE_CASES):
            path = edge_dir / f"{provider}_{index:02d}.json"
            path.write_bytes(body)
            cases.append((f"edge/{path.stem}", provider, path))
    passed = failed = 0
    try:
        for name, provider, path in cases:
            if args.only and not any(s in name for s in args.only):
                continue
            stub = [sys.executable, str(BENCH / "runtime_stub.py"), "serve", "--invocations", "2",
                    "--same-body", "--allow-errors", "--provider", provider, "--body", str(path),
                    "--env", f"CALLHOOK_DYNAMODB_ENDPOINT={args.endpoint}",
                    "--env", f"CALLHOOK_EVENTS_TABLE={table}"]
            if args.cwd:
                stub += ["--cwd", args.cwd]
            result = subprocess.run(stub + ["--"] + command, capture_output=True, text=True)
            report = json.loads(result.stdout or "{}")
            body = path.read_bytes()
            status, items = expected_items(provider, body)
            problems = []
            if (result.returncode != 0 or report.get("statuses") != {str(status): 2}
                    or report.get("duplicates") != (1 if status == 200 else 0)):
                problems.append(f"stub run: rc={result.returncode} statuses={report.get('statuses')} "
                                f"(expected {status}) duplicates={report.get('duplicates')} {report.get('error', '')}")
            for expected in items:
                what = expected["type"]["S"]
                got = ddb.get_item(TableName=table, Key={"pk": expected["pk"], "sk": expected["sk"]},
                                   ConsistentRead=True).get("Item")
                if got is None:
                    problems.append(f"{what}: no item {expected['pk']['S']} {expected['sk']['S']}")
                    continue
                for key in sorted(set(got) | set(expected)):
                    if key == "received_at":
                        continue
                    if key == "body_gz" and expected.get("body_encoding") == {"S": "gzip"}:
                        if key in got and gzip.decompress(got[key]["B"]) == body:
                            continue
                    if got.get(key) != expected.get(key):
                        problems.append(f"{what}: {key} differs: {str(got.get(key))[:80]} "
                                        f"!= {str(expected.get(key))[:80]}")
            if problems:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(problems), file=sys.stderr)
            else:
                passed += 1
                print(f"ok   {name} ({status})", file=sys.stderr)
    finally:
        ddb.delete_table(TableName=table)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
