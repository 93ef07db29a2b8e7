#!/usr/bin/env python3
"""A tiny stub of the AWS Lambda Runtime API on 127.0.0.1, to measure any Lambda runtime process
(callhook's Rust functions, the Python handler under awslambdaric, ...) without AWS.

    runtime_stub.py coldstart --runs N [options] -- CMD...
        N times (after --warmup runs, default 1, not counted): spawn CMD with
        AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>, measure the time from spawn to its first
        GET /2018-06-01/runtime/invocation/next, kill it. That GET is never answered, so no
        invocation runs. Reports median, p90, min, max, mean (ms) and the RSS at that moment.

    runtime_stub.py serve --invocations N [options] -- CMD...
        Spawn CMD once and answer its first N `next` requests with an event; count responses
        and errors. When the N-th answer is in and the process asks for the next event (idle),
        sample its peak RSS (VmHWM in /proc/<pid>/status) and CPU (utime+stime in
        /proc/<pid>/stat), then kill it. Reports wall and CPU time (total, init, invocations),
        invocation latency, status codes of the answers, and peak RSS.

The event is an API Gateway HTTP API (payload v2) request carrying a signed webhook:
POST /webhooks/<provider>, pathParameters.provider, requestContext.http.method POST, lowercase
headers with the signature (ClawOps: x-clawops-signature: sha256=<HMAC-SHA256 hex of the body>;
Vox and Synthflow: ?token=), the body as text. By default every invocation gets a distinct call
id (the id in the body gets a -<salt>-<n> suffix, salt random per run unless --id-salt, and the
body is signed again), so every put stores a new event;
--same-body sends the same bytes every time (all but the first are duplicates).

The child's environment is Lambda-like and clean (PATH is kept; --inherit-env keeps everything):
AWS_LAMBDA_RUNTIME_API, AWS_REGION/AWS_DEFAULT_REGION=us-east-1, dummy AWS credentials,
AWS_LAMBDA_FUNCTION_NAME/VERSION/MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME/LOG_STREAM_NAME,
AWS_LAMBDA_INITIALIZATION_TYPE=on-demand, LAMBDA_TASK_ROOT (= --cwd), TZ=:UTC, LANG=C.UTF-8,
and the webhook credentials CALLHOOK_CLAWOPS_SECRETS=bench-secret,
CALLHOOK_VOX_TOKENS=CALLHOOK_SYNTHFLOW_TOKENS=bench-token. Repeated --env KEY=VALUE adds or
overrides (the stub signs with whatever secret/token the child ends up with).

--provider-secret moves those credentials out of the environment into a provider secret, as a
deployed stack does: the child gets CALLHOOK_PROVIDER_SECRET_ARN and
AWS_ENDPOINT_URL_SECRETS_MANAGER pointing at this stub, which answers Secrets Manager's
GetSecretValue (POST / with X-Amz-Target: secretsmanager.GetSecretValue) with a JSON secret
holding them, and counts the reads.

Also accepted: POST /2018-06-01/runtime/invocation/<id>/response and /error (202), and
POST /2018-06-01/runtime/init/error (202; the run fails). Nothing listens beyond 127.0.0.1.
Output: JSON on stdout (and in --out FILE); progress and the child's log tail on failure on
stderr. Standard library only; Linux (/proc).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
API = "/2018-06-01/runtime"
DEFAULT_BODY = {
    "clawops": REPO / "tests/fixtures/clawops/call_completed.json",
    "vox": REPO / "tests/fixtures/vox/v2_call_ended.json",
    "synthflow": REPO / "tests/fixtures/synthflow/completed.json",
}
SIGNATURE = {  # provider -> (default scheme, header, prefix), as callhook's defaults
    "clawops": ("hmac-sha256", "x-clawops-signature", "sha256="),
    "vox": ("token", "x-vox-signature", ""),
    "synthflow": ("token", "x-synthflow-signature", ""),
}
FUNCTION_NAME = "callhook-ingest-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"runtime-stub: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc sampling


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process; {} when it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> tuple[float, int, float] | None:
    """(utime + stime seconds, session id, stime seconds) of a live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK, int(rest[3]), int(rest[12]) / CLK_TCK


def sample(pid: int, session: bool = True) -> dict:
    """The process's own numbers and, when it has descendants in its session (a wrapper
    script, a forked worker), the session's sums."""
    own = proc_status(pid)
    cpu = proc_cpu(pid)
    result = {
        "rss_kb": own.get("VmRSS"),
        "hwm_kb": own.get("VmHWM"),
        "cpu_s": cpu[0] if cpu else None,
        "sys_s": cpu[2] if cpu else None,
    }
    if not session:
        return result
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_cpu(int(entry))
            if info and info[1] == pid:
                members.append(int(entry))
    if len(members) > 1:
        statuses = [proc_status(p) for p in members]
        result["session"] = {
            "processes": len(members),
            "rss_kb": sum(s.get("VmRSS", 0) for s in statuses),
            "hwm_kb": sum(s.get("VmHWM", 0) for s in statuses),
            "cpu_s": sum((proc_cpu(p) or (0.0, 0, 0.0))[0] for p in members),
        }
    return result


def summary(values: list[float], digits: int = 3) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    out = {
        "median": statistics.median(ordered),
        "p90": statistics.quantiles(ordered, n=10, method="inclusive")[8] if len(ordered) > 1 else ordered[0],
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }
    if len(ordered) >= 20:
        out["p99"] = statistics.quantiles(ordered, n=100, method="inclusive")[98]
    return {k: round(v, digits) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Events


class EventFactory:
    """API Gateway HTTP API v2 requests carrying a signed webhook."""

    def __init__(self, provider: str, body: bytes, env: dict, unique: bool, salt: str):
        self.provider = provider
        self.body = body
        self.unique = unique
        self.salt = salt
        prefix = f"CALLHOOK_{provider.upper()}"
        default_scheme, header, sig_prefix = SIGNATURE[provider]
        self.scheme = (env.get(f"{prefix}_AUTH") or default_scheme).strip().lower()
        self.header = (env.get(f"{prefix}_SIGNATURE_HEADER") or header).strip().lower()
        self.sig_prefix = env.get(f"{prefix}_SIGNATURE_PREFIX") or sig_prefix
        first = lambda key: next((s.strip() for s in env.get(key, "").split(",") if s.strip()), None)  # noqa: E731
        self.secret = first(f"{prefix}_SECRETS")
        self.token = first(f"{prefix}_TOKENS")
        if self.scheme == "hmac-sha256" and not self.secret:
            raise SystemExit(f"{prefix}_SECRETS is empty: nothing to sign {provider} webhooks with")
        if self.scheme == "token" and not self.token:
            raise SystemExit(f"{prefix}_TOKENS is empty: no ?token= for {provider} webhooks")
        self.call_id = self._find_id(body) if unique else None
        if unique and self.call_id is None:
            log("no call id found in the body: every invocation sends the same bytes")

    def _find_id(self, body: bytes) -> str | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        candidates = [payload.get("call_id"), payload.get("message_id")]
        for key in ("call", "mid_call"):
            if isinstance(payload.get(key), dict):
                candidates.append(payload[key].get("call_id"))
        for value in candidates:
            if isinstance(value, str) and value and f'"{value}"'.encode() in body:
                return value
        return None

    def body_for(self, n: int) -> bytes:
        if self.call_id is None:
            return self.body
        new_id = f"{self.call_id}-{self.salt}-{n:06d}"
        return self.body.replace(f'"{self.call_id}"'.encode(), f'"{new_id}"'.encode())

    def event(self, n: int, request_id: str) -> bytes:
        body = self.body_for(n)
        now = time.time()
        path = f"/webhooks/{self.provider}"
        headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            "host": "bench.execute-api.us-east-1.amazonaws.com",
            "user-agent": f"{self.provider}-webhooks/1.0",
            "x-amzn-trace-id": f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
        query = {}
        if self.scheme == "hmac-sha256":
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[self.header] = f"{self.sig_prefix}{digest}"
        elif self.scheme == "token":
            query["token"] = self.token
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        event = {
            "version": "2.0",
            "routeKey": "POST /webhooks/{provider}",
            "rawPath": path,
            "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "bench",
                "domainName": "bench.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "bench",
                "http": {
                    "method": "POST",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers["user-agent"],
                },
                "requestId": request_id,
                "routeKey": "POST /webhooks/{provider}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "pathParameters": {"provider": self.provider},
            "body": text,
            "isBase64Encoded": encoded,
        }
        if query:
            event["queryStringParameters"] = query
        return json.dumps(event).encode()


# ---------------------------------------------------------------------------------------------
# The Runtime API


class Run:
    """One child process's state, shared with the server threads."""

    def __init__(self, mode: str, invocations: int = 0, factory: EventFactory | None = None):
        self.mode = mode
        self.invocations = invocations
        self.factory = factory
        self.lock = threading.Lock()
        self.wake = threading.Event()  # first GET (coldstart), done, init error, or child exit
        self.release = threading.Event()  # frees the GETs that are held
        self.pid: int | None = None
        self.t_spawn = 0
        self.t_first_get: int | None = None
        self.t_done: int | None = None
        self.at_first_get: dict = {}
        self.issued: dict[str, int] = {}  # request id -> time the event was handed out
        self.latencies_ns: list[int] = []
        self.responses = 0
        self.errors = 0
        self.init_errors = 0
        self.statuses: dict[str, int] = {}
        self.duplicates = 0
        self.secret_reads = 0
        self.error_sample: str | None = None
        self.idle = threading.Event()  # asked for more after the last invocation
        self.exited = False

    def finished(self) -> bool:
        return self.responses + self.errors >= self.invocations


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lambda-runtime-stub"
    # TCP_NODELAY, and each answer goes out in one write: otherwise Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self._headers_buffer.append(b"\r\n" + body)  # end_headers() + body, one write
        self.flush_headers()

    def _hold(self, run: Run) -> None:
        """Never answer: wait until the run is over, then drop the connection."""
        run.release.wait()
        self.close_connection = True

    def do_GET(self):  # noqa: N802
        now = time.monotonic_ns()
        run: Run = self.server.run
        if self.path != f"{API}/invocation/next" or run is None:
            return self._send(404, b'{"errorMessage":"not found"}')
        with run.lock:
            first = run.t_first_get is None
            if first:
                run.t_first_get = now
                if run.pid:
                    run.at_first_get = sample(run.pid, session=False)
            if run.mode == "coldstart":
                run.wake.set()
                hold = True
            else:
                number = len(run.issued)
                hold = number >= run.invocations
                if hold:
                    run.idle.set()
                    run.wake.set()
                else:
                    request_id = str(uuid.uuid4())
                    run.issued[request_id] = time.monotonic_ns()
        if hold:
            return self._hold(run)
        body = run.factory.event(number + 1, request_id)
        deadline_ms = int(time.time() * 1000) + self.server.deadline_ms
        self._send(200, body, {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn":
                f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}",
            "Lambda-Runtime-Trace-Id":
                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
        })
        with run.lock:  # restart the clock once the event is on the wire
            if request_id in run.issued:
                run.issued[request_id] = time.monotonic_ns()

    def do_POST(self):  # noqa: N802
        now = time.monotonic_ns()
        run: Run = self.server.run
        body = self._read_body()
        parts = self.path.split("/")
        # /2018-06-01/runtime/invocation/<id>/response|error, /2018-06-01/runtime/init/error
        if self.headers.get("X-Amz-Target") == "secretsmanager.GetSecretValue":
            return self._secret(run)
        if run is None or not self.path.startswith(API + "/"):
            return self._send(404, b'{"errorMessage":"not found"}')
        if self.path == f"{API}/init/error":
            with run.lock:
                run.init_errors += 1
                run.error_sample = body[:2000].decode("utf-8", "replace")
                run.wake.set()
            return self._send(202, b'{"status":"OK"}')
        if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
            request_id = parts[4]
            with run.lock:
                issued = run.issued.get(request_id)
                if issued is None:
                    known = False
                else:
                    known = True
                    run.latencies_ns.append(now - issued)
                    if parts[5] == "response":
                        run.responses += 1
                        self._tally(run, body)
                    else:
                        run.errors += 1
                        if run.error_sample is None:
                            run.error_sample = body[:2000].decode("utf-8", "replace")
                    if run.finished() and run.t_done is None:
                        run.t_done = now
                        run.wake.set()
            if not known:
                return self._send(400, b'{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}')
            return self._send(202, b'{"status":"OK"}')
        return self._send(404, b'{"errorMessage":"not found"}')

    def _secret(self, run: Run | None) -> None:
        """Secrets Manager's GetSecretValue answer, with the credentials child_env would set."""
        if run is not None:
            with run.lock:
                run.secret_reads += 1
        answer = {"ARN": SECRET_ARN, "Name": "callhook-bench-providers", "VersionId": "bench-1",
                  "SecretString": json.dumps(CREDENTIALS), "VersionStages": ["AWSCURRENT"],
                  "CreatedDate": time.time()}
        self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/x-amz-json-1.1"})

    @staticmethod
    def _tally(run: Run, body: bytes) -> None:
        """Counts the HTTP status of an API Gateway proxy answer, and duplicates."""
        try:
            answer = json.loads(body)
            status = str(answer.get("statusCode", "?"))
            inner = answer.get("body")
            if isinstance(inner, str) and json.loads(inner).get("duplicate") is True:
                run.duplicates += 1
        except (ValueError, AttributeError):
            status = "unparsed"
        run.statuses[status] = run.statuses.get(status, 0) + 1


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, deadline_ms: int):
        super().__init__(("127.0.0.1", 0), Handler)
        self.run: Run | None = None
        self.deadline_ms = deadline_ms


# ---------------------------------------------------------------------------------------------
# Children


# The webhook credentials the child verifies with: in its environment, or in the provider secret.
CREDENTIALS = {
    "CALLHOOK_CLAWOPS_SECRETS": "bench-secret",
    "CALLHOOK_VOX_TOKENS": "bench-token",
    "CALLHOOK_SYNTHFLOW_TOKENS": "bench-token",
}
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:callhook-bench-providers-AbCdEf"


def child_env(args, port: int) -> dict:
    env = dict(os.environ) if args.inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    cwd = str(Path(args.cwd).resolve()) if args.cwd else os.getcwd()
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDLAMBDASTUB000000",
        "AWS_SECRET_ACCESS_KEY": "lambda-runtime-stub-dummy-secret",
        "AWS_SESSION_TOKEN": "lambda-runtime-stub-dummy-session",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        # The function's Handler, as Lambda passes it: which function callhook's bootstrap runs.
        "_HANDLER": args.handler,
        "LAMBDA_TASK_ROOT": cwd,
        "TZ": ":UTC",
        "LANG": "C.UTF-8",
    })
    if args.provider_secret:
        env["CALLHOOK_PROVIDER_SECRET_ARN"] = SECRET_ARN
        env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://127.0.0.1:{port}"
    else:
        env.update(CREDENTIALS)
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def spawn(args, env: dict, run: Run, log_file) -> subprocess.Popen:
    run.t_spawn = time.monotonic_ns()
    proc = subprocess.Popen(
        args.command,
        env=env,
        cwd=args.cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed as one, and only it
    )
    run.pid = proc.pid

    def watch():
        proc.wait()
        run.exited = True
        run.wake.set()

    threading.Thread(target=watch, daemon=True).start()
    return proc


def kill(proc: subprocess.Popen, grace: float = 0.0) -> None:
    """SIGTERM and up to `grace` seconds to exit (a profiler wrapping the runtime writes its data
    then), else straight to SIGKILL."""
    if grace > 0:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def log_tail(log_file, limit: int = 3000) -> str:
    log_file.flush()
    log_file.seek(0, os.SEEK_END)
    size = log_file.tell()
    log_file.seek(max(0, size - limit))
    return log_file.read().decode("utf-8", "replace")


def coldstart(args, server: Server) -> tuple[dict, int]:
    port = server.server_address[1]
    samples, rss = [], []
    total = args.warmup + args.runs
    for index in range(total):
        run = Run("coldstart")
        server.run = run
        env = child_env(args, port)
        with tempfile.TemporaryFile() as log_file:
            proc = spawn(args, env, run, log_file)
            run.wake.wait(args.timeout)
            with run.lock:
                t_first = run.t_first_get
                reads = run.secret_reads
            exited = run.exited
            kill(proc)
            run.release.set()
            if t_first is None:
                why = (f"exited with status {proc.returncode}" if exited
                       else f"did not ask for an event within {args.timeout} s")
                if run.init_errors:
                    why = f"reported an init error: {run.error_sample}"
                log(f"run {index + 1}: the process {why}; its output:\n{log_tail(log_file)}")
                return {"mode": "coldstart", "command": args.command, "error": why}, 1
        if args.provider_secret and reads != 1:
            why = f"read the provider secret {reads} times before its first next, not once"
            log(f"run {index + 1}: {why}")
            return {"mode": "coldstart", "command": args.command, "error": why}, 1
        ms = (t_first - run.t_spawn) / 1e6
        if index >= args.warmup:
            samples.append(ms)
            if run.at_first_get.get("rss_kb"):
                rss.append(run.at_first_get["rss_kb"])
        log(f"run {index + 1}/{total}{' (warm-up)' if index < args.warmup else ''}: {ms:.1f} ms")
    stats = summary(samples)
    report = {
        "mode": "coldstart",
        "command": args.command,
        "runs": len(samples),
        "warmup": args.warmup,
        "unit": "ms",
        "measures": "spawn to the first GET /2018-06-01/runtime/invocation/next",
        "provider_secret": bool(args.provider_secret),
        **stats,
        "rss_at_ready_kb": summary(rss, 0) if rss else None,
        "samples_ms": [round(s, 3) for s in samples],
    }
    return report, 0


def serve(args, server: Server) -> tuple[dict, int]:
    port = server.server_address[1]
    env = child_env(args, port)
    body = Path(args.body).read_bytes() if args.body else DEFAULT_BODY[args.provider].read_bytes()
    factory = EventFactory(args.provider, body, {**CREDENTIALS, **env}, not args.same_body, args.id_salt or uuid.uuid4().hex[:8])
    run = Run("serve", args.invocations, factory)
    server.run = run
    with tempfile.TemporaryFile() as log_file:
        proc = spawn(args, env, run, log_file)
        deadline = time.monotonic() + args.timeout
        failure = None
        while True:
            run.wake.wait(max(0.0, deadline - time.monotonic()))
            with run.lock:
                run.wake.clear()
                done, init_errors = run.finished(), run.init_errors
            if done:
                # Wait for the process to come back for more (idle), so the numbers include the
                # end of its last invocation, then sample it alive.
                run.idle.wait(max(0.0, min(10.0, deadline - time.monotonic())))
                break
            if init_errors:
                failure = f"init error: {run.error_sample}"
                break
            if run.exited:
                failure = f"exited with status {proc.returncode} after {run.responses + run.errors} invocations"
                break
            if time.monotonic() >= deadline:
                failure = f"timed out after {args.timeout} s ({run.responses + run.errors} answers)"
                break
        end = sample(proc.pid) if not run.exited else {}
        t_end = time.monotonic_ns()
        kill(proc, args.grace)
        run.release.set()
        tail = log_tail(log_file)
    if failure:
        log(f"{failure}; the process's output:\n{tail}")
    elif run.errors:
        log(f"{run.errors} invocation errors; first: {run.error_sample}")
    t_first = run.t_first_get or t_end
    t_done = run.t_done or t_end
    cpu_init = run.at_first_get.get("cpu_s")
    cpu_end = end.get("cpu_s")
    report = {
        "mode": "serve",
        "command": args.command,
        "provider": args.provider,
        "unique_bodies": factory.call_id is not None,
        "id_salt": factory.salt if factory.call_id is not None else None,
        "body_bytes": len(body),
        "invocations": args.invocations,
        "responses": run.responses,
        "errors": run.errors,
        "init_errors": run.init_errors,
        "statuses": run.statuses,
        "duplicates": run.duplicates,
        "init_ms": round((t_first - run.t_spawn) / 1e6, 3) if run.t_first_get else None,
        "wall_s": round((t_done - run.t_spawn) / 1e9, 4),
        "invoke_wall_s": round((t_done - t_first) / 1e9, 4),
        "invocations_per_s": round(run.responses / ((t_done - t_first) / 1e9), 1) if t_done > t_first else None,
        "cpu_s": cpu_end,
        "cpu_init_s": cpu_init,
        "cpu_invoke_s": round(cpu_end - cpu_init, 4) if cpu_end is not None and cpu_init is not None else None,
        "cpu_ms_per_invocation": round((cpu_end - cpu_init) * 1000 / run.responses, 4)
        if cpu_end is not None and cpu_init is not None and run.responses else None,
        # The kernel's part of it (system time: the loopback sockets to the stub and DynamoDB).
        "sys_ms_per_invocation": round((end["sys_s"] - run.at_first_get["sys_s"]) * 1000 / run.responses, 4)
        if end.get("sys_s") is not None and run.at_first_get.get("sys_s") is not None and run.responses else None,
        "peak_rss_kb": end.get("hwm_kb"),
        "rss_after_init_kb": run.at_first_get.get("rss_kb"),
        "rss_end_kb": end.get("rss_kb"),
        "latency_ms": summary([ns / 1e6 for ns in run.latencies_ns]),
        "clock_ticks_per_s": CLK_TCK,
    }
    if "session" in end:
        report["session"] = end["session"]
    if run.error_sample:
        report["error_sample"] = run.error_sample
    if failure:
        report["error"] = failure
    ok = not failure and run.responses == args.invocations and (run.errors == 0 or args.allow_errors)
    return report, 0 if ok else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        print("error: give the command to run after --", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    if not command:
        print("error: no command after --", file=sys.stderr)
        return 2

    parser = argparse.ArgumentParser(prog="runtime_stub.py", description="A stub of the Lambda Runtime API.")
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the child (repeatable)")
    common.add_argument("--inherit-env", action="store_true",
                        help="start from this process's whole environment instead of a clean one")
    common.add_argument("--cwd", help="the child's working directory (and LAMBDA_TASK_ROOT)")
    common.add_argument("--handler", default="ingest",
                        help="the function's Handler, passed as _HANDLER (default: ingest)")
    common.add_argument("--memory", type=int, default=128, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    common.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up a run")
    common.add_argument("--out", type=Path, help="also write the JSON report here")
    common.add_argument("--provider-secret", action="store_true",
                        help="the webhook credentials in a provider secret served by this stub")
    common.add_argument("--grace", type=float, default=0.0,
                        help="serve: SIGTERM and this many seconds before SIGKILL (for profilers)")
    cold = sub.add_parser("coldstart", parents=[common], help="time from spawn to the first next")
    cold.add_argument("--runs", type=int, required=True)
    cold.add_argument("--warmup", type=int, default=1, help="uncounted runs first (default 1)")
    srv = sub.add_parser("serve", parents=[common], help="serve N invocations, report RSS and CPU")
    srv.add_argument("--invocations", type=int, required=True)
    srv.add_argument("--provider", choices=sorted(SIGNATURE), default="clawops")
    srv.add_argument("--body", help="webhook body file (default: the provider's seed fixture)")
    srv.add_argument("--same-body", action="store_true", help="send identical bytes every time")
    srv.add_argument("--id-salt", help="the call id suffix is -<salt>-<n> (default: random per run)")
    srv.add_argument("--deadline-ms", type=int, default=30_000, help="Lambda-Runtime-Deadline-Ms offset")
    srv.add_argument("--allow-errors", action="store_true", help="exit 0 even if invocations errored")
    args = parser.parse_args(own)
    args.command = command
    if args.mode == "coldstart" and args.runs < 1 or args.mode == "serve" and args.invocations < 1:
        parser.error("--runs / --invocations must be at least 1")

    server = Server(getattr(args, "deadline_ms", 30_000))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log(f"Runtime API on 127.0.0.1:{server.server_address[1]}")
    try:
        if args.mode == "coldstart":
            report, status = coldstart(args, server)
        else:
            report, status = serve(args, server)
    finally:
        server.shutdown()
        server.server_close()
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
