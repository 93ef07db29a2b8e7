"""Writes per event: every DynamoDB request the ingest path makes, counted on the wire.

    bench/.venv/bin/python bench/python/writes.py --endpoint http://127.0.0.1:PORT \
        --rust target/release/callhook-lambda [--invocations 200] [--out FILE]

A counting proxy on 127.0.0.1 sits between the function and DynamoDB Local: it forwards every
request unchanged and tallies it by operation (the `X-Amz-Target` header, e.g. `PutItem`) and by
outcome (200, or the error `__type` such as `ConditionalCheckFailedException`). Each Lambda
(callhook's `ingest` bootstrap, and the Python handler under awslambdaric) is run twice under
`runtime_stub.py serve` with the same `--id-salt`: first N invocations that each carry a new event,
then the very same N bodies again, which are all duplicates. Requests per event = requests of a
run / N. Reads count too: a receiver that reads before it writes shows up here.

Both sides write to their own events table (created here), so the second run meets exactly the
first run's items.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(HERE))

from events_table import ensure_events_table  # noqa: E402


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, operation: str, outcome: str) -> None:
        with self.lock:
            self.counts[f"{operation} {outcome}"] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            counts = dict(self.counts)
            self.counts.clear()
        return counts


def proxy(upstream: str, tally: Tally) -> ThreadingHTTPServer:
    target = urlsplit(upstream)
    local = threading.local()  # one upstream connection per client connection's thread

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            operation = self.headers.get("X-Amz-Target", "?").rsplit(".", 1)[-1]
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            headers["Host"] = target.netloc
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            outcome = str(response.status)
            if response.status != 200:
                try:
                    outcome = json.loads(answer).get("__type", outcome).rsplit("#", 1)[-1]
                except ValueError:
                    pass
            tally.add(operation, outcome)
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(stub_args: list[str], command: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(BENCH / "runtime_stub.py"), "serve", *stub_args, "--", *command],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def per_event(counts: dict[str, int], events: int) -> dict:
    total = sum(counts.values())
    return {"requests": counts, "requests_per_event": round(total / events, 3)}


def measure(name: str, endpoint: str, proxy_url: str, tally: Tally, n: int, command: list[str],
            cwd: str | None) -> dict:
    run = uuid.uuid4().hex[:8]  # fresh table and ids: the first run must meet nothing
    table = f"bench-writes-{name}-{run}"
    ensure_events_table(endpoint, table)
    stub = ["--invocations", str(n), "--id-salt", f"writes-{run}",
            "--env", f"CALLHOOK_DYNAMODB_ENDPOINT={proxy_url}", "--env", f"CALLHOOK_EVENTS_TABLE={table}"]
    if cwd:
        stub += ["--cwd", cwd]
    tally.take()
    first = serve(stub, command)
    new = tally.take()
    second = serve(stub, command)
    duplicate = tally.take()
    return {
        "invocations": n,
        "new": per_event(new, n) | {"statuses": first["statuses"], "duplicates_answered": first["duplicates"]},
        "duplicate": per_event(duplicate, n)
        | {"statuses": second["statuses"], "duplicates_answered": second["duplicates"]},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local URL")
    parser.add_argument("--rust", required=True, help="callhook's ingest bootstrap")
    parser.add_argument("--invocations", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    tally = Tally()
    server = proxy(args.endpoint, tally)
    proxy_url = f"http://127.0.0.1:{server.server_address[1]}"
    python = str(BENCH / ".venv" / "bin" / "python")
    report = {
        "callhook": measure("callhook", args.endpoint, proxy_url, tally, args.invocations,
                            [str(Path(args.rust).resolve())], None),
        "reference": measure("reference", args.endpoint, proxy_url, tally, args.invocations,
                             [python, "-m", "awslambdaric", "handler.handler"], str(HERE / "coldstart")),
    }
    server.shutdown()
    for side, result in report.items():
        for kind in ("new", "duplicate"):
            print(f"{side:10} {kind:9} {result[kind]['requests_per_event']} requests/event "
                  f"{result[kind]['requests']}", file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
