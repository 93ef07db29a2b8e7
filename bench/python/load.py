"""End-to-end load: callhook's local stack and the reference receiver, same job, same DynamoDB Local.

    bench/.venv/bin/python bench/python/load.py --endpoint http://127.0.0.1:PORT \\
        --callhook-bin target/release/callhook [--connections 32] [--duration 20] [--warmup 3] \\
        [--only callhook|reference] [--ddb-pidfile FILE] [--max-rps 5000] [--timeout 2] \
        [--drain-timeout 300] [--keep-tables] [--out bench/out/load.json]

The two servers (one at a time, each on a free 127.0.0.1 port, output in bench/out/load/):

  callhook    `callhook dev --port P --state-file bench/out/load/callhook-state.json`: the ingest
              handler behind a hyper server, tables bench-callhook-events / bench-callhook-calls,
              AND the in-process stream runner (polls the events table's DynamoDB stream every
              250 ms and merges each event into the calls table). The stream side is part of the
              stack and stays on: its CPU is in callhook's numbers, the reference has no such work.
  reference   `uvicorn app:app --app-dir bench/reference` (one process, default settings: access
              log on, FastAPI's thread pool for the boto3 puts), table bench-reference-events.

Both get the same CALLHOOK_* environment (ClawOps secret "bench-secret", Vox/Synthflow token
"bench-token", CALLHOOK_DYNAMODB_ENDPOINT, their table names; inherited CALLHOOK_* and RUST_LOG are
dropped), log one line per request at their default level to a file, and start on freshly
(re)created tables: this script deletes the side's tables first, and after the run (unless
--keep-tables), so neither side's items weigh on the other's run.

The load: wrk (`wrk -t1 -cC -dDs --latency --timeout Ts -s load.lua URL -- FILE`) at a fixed
number of connections, each connection sending its next request as soon as the previous answer
arrives (closed loop). FILE holds pre-generated, pre-signed ClawOps webhooks
(`X-ClawOps-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, ingest.sign), four per call in
the shapes of tests/fixtures/clawops/ (call.initiated and call.ringing with `event` and an ISO
created_at, call.answered with `type` and epoch seconds, call.completed with neither name, inferred
from `status`, and epoch ms), each call with its own call id: every request is a NEW event. There
are --max-rps x duration of them (default 5,000/s, far above what either side reaches here); if
wrk gets through all of them it starts over and those requests are duplicates (duplicates_sent).
The warm-up (--warmup s, default 3) uses its own set of calls, then the script waits until the
server is idle again (CPU below 5 % of a core for 1 s; for callhook this lets the stream runner
drain the warm-up's events) before the measured run.

Per side, in the JSON (--out) and as a table on stderr:

  requests, rps            responses received in the measured run / its duration (wrk's numbers)
  latency_ms               p50/p90/p99/max from wrk's --latency histogram: request written ->
                           response read, on a connection of the closed loop (so it includes the
                           time the request waits inside the server behind the others)
  non_2xx                  wrk's summary.errors.status (status > 399); no response() callback is
                           used, see load.lua
  socket_errors            connect/read/write/timeout (timeout: no answer within --timeout;
                           those requests are left out of the latency numbers by wrk)
  duplicates_sent          requests sent after the list ran out (0 means every one was new)
  server_cpu_s             utime+stime of the server process (all its threads), /proc/PID/stat,
                           read right before wrk starts and right after it exits
  cpu_s_per_request        server_cpu_s / requests: the server's CPU per answered webhook
  server_cpu_s_drained     the same up to the moment the server is idle again after the run
                           (drain_wait_s; drained=false if --drain-timeout ran out): for
                           callhook it includes the stream runner catching up on the merges it
                           could not keep pace with during the run, so it is the number for the
                           whole job; the reference has nothing left to do (~0 difference)
  server_peak_rss_kb       VmHWM of the server process at the end
  ddb_cpu_s                DynamoDB Local's CPU over the measured run (context; not counted in
                           cpu_s_per_request). On 2 cores, when server + DynamoDB Local + wrk
                           add up to ~2 CPU-seconds per second, the machine is the limit and rps
                           says little; compare cpu_s_per_request then. ddb_cpu_s_drained:
                           the same up to the end of the drain.
  loadgen_cpu_s            wrk's own utime+stime (os.wait4)
  stored_items             Scan Select=COUNT on the side's events table after the run (and
                           after the drain); check: every 2xx answer to a new event must be
                           stored (nothing lost) and there can be no more items than new events
                           whose request was started (nothing invented). The upper bound
                           exceeds the lower one by the requests still in flight when wrk
                           stopped (the server may have stored them, nobody read the answer).

callhook only: calls_items, the calls table's items after the drain (one per call the stream
runner merged), next to calls_expected_max (calls with at least one new event started).

ratios: cpu_per_request reference / callhook (the reference spends this many times callhook's
server CPU per webhook; _drained: with the drain counted) and rps callhook / reference.

Use a FRESH DynamoDB Local for every invocation (scripts/dynamodb-local.sh stop, then start):
once an instance has taken a few thousand writes on a stream-enabled table (callhook's events
table), every later write to a stream-enabled table costs it several times more CPU, even after
the tables are deleted, under new table names, and with callhook's stream reader all but off
(seen with DynamoDB Local 3.3.0: a second callhook run on the same instance got ~100 rps instead
of ~460, DynamoDB Local at ~11 ms CPU per request instead of ~2.5). The reference's table has no
stream and is not affected, which is why callhook runs first. parameters.ddb_cpu_s_at_start and
ddb_age_s show how fresh the instance was (a fresh one has a few seconds of start-up CPU).

Keep the machine otherwise idle (no cargo build, no perf): on 2 cores, everything else running
shows in every number. Ctrl-C or an error stops whatever this script started (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH / "reference"))
sys.path.insert(0, str(HERE))

import events_table  # noqa: E402
import ingest  # noqa: E402  (the sender's sign(); nothing else of it runs here)

SECRET = "bench-secret"
TOKEN = "bench-token"
WRK = "/usr/bin/wrk"
LUA = HERE / "load.lua"
OUT_DIR = BENCH / "out" / "load"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KST = timezone(timedelta(hours=9))
SIDES = ("callhook", "reference")

# Processes this script started and has not reaped yet (pid -> Popen); stopped on any exit.
_children: dict[int, subprocess.Popen] = {}


def log(message: str) -> None:
    print(f"load: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Requests


def call_bodies(call_id: str, index: int, t0: int) -> list[dict]:
    """One call's four webhooks, in the shapes of tests/fixtures/clawops/call_*.json."""
    start = t0 + index
    common = {
        "call_id": call_id,
        "direction": "inbound",
        "from": f"010{(12345678 + index) % 100_000_000:08d}",
        "to": "07052351234",
    }

    def iso(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, KST).isoformat()

    cid, frm, to = common["call_id"], common["from"], common["to"]
    return [
        {"event": "call.initiated", "call_id": cid, "status": "initiated", "direction": "inbound",
         "from": frm, "to": to, "duration": 0, "created_at": iso(start)},
        {"event": "call.ringing", "call_id": cid, "status": "ringing", "direction": "inbound",
         "from": frm, "to": to, "duration": 0, "created_at": iso(start + 1)},
        {"type": "call.answered", "call_id": cid, "status": "answered", "direction": "inbound",
         "from": frm, "to": to, "duration": 0, "created_at": start + 4},
        {"call_id": cid, "status": "completed", "direction": "inbound",
         "from": frm, "to": to, "duration": 95, "created_at": (start + 99) * 1000},
    ]  # fmt: skip


def write_requests(path: Path, count: int, nonce: str, tag: int) -> int:
    """`count` signed requests (rounded up to whole calls), one `signature TAB body` per line.
    Call ids are CA + 32 hex: the run's nonce (8), the set's tag (2), the call's index (22)."""
    calls = -(-count // 4)
    t0 = int(time.time()) - 86_400
    with path.open("w", encoding="utf-8") as out:
        for i in range(calls):
            call_id = f"CA{nonce}{tag:02x}{i:022x}"
            for body in call_bodies(call_id, i, t0):
                raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                out.write(f"{ingest.sign(SECRET, raw)}\t{raw.decode()}\n")
    return calls * 4


# ---------------------------------------------------------------------------------------------
# Processes


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read().decode()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1/any :port (DynamoDB Local), via /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            continue
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in targets:
                    return int(entry)
        except OSError:
            continue
    return None


def ddb_pid(endpoint: str, pidfile: str | None) -> int | None:
    if pidfile:
        pid = int(Path(pidfile).read_text().strip())
        if "DynamoDBLocal" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            raise SystemExit(f"load: pid {pid} from {pidfile} is not DynamoDB Local")
        return pid
    port = int(endpoint.rstrip("/").rsplit(":", 1)[1])
    return listener_pid(port)


def start_server(argv: list[str], env: dict, logfile: Path) -> subprocess.Popen:
    out = logfile.open("wb")
    process = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C at the terminal reaches this script, which stops it
    )
    out.close()
    _children[process.pid] = process
    return process


def stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps it."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        except ProcessLookupError:
            pass
    _children.pop(process.pid, None)


def stop_all() -> None:
    for process in list(_children.values()):
        stop(process)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def wait_ready(process: subprocess.Popen, port: int, logfile: Path, timeout: float = 60.0) -> float:
    """Until the server answers any HTTP request; returns the seconds it took."""
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited with status {process.returncode}:\n{tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the server did not answer on port {port} within {timeout:.0f} s")
        time.sleep(0.1)


def settle(pid: int, timeout: float, window: float = 0.5, idle_share: float = 0.05) -> tuple[float, bool]:
    """Waits until the process spends less than idle_share of a core for two windows in a row
    (1 s); returns the seconds waited and whether it got idle within `timeout`."""
    started = time.monotonic()
    quiet, last = 0, proc_cpu_s(pid)
    while quiet < 2:
        if time.monotonic() - started > timeout:
            return time.monotonic() - started, False
        time.sleep(window)
        now = proc_cpu_s(pid)
        quiet = quiet + 1 if now - last < idle_share * window else 0
        last = now
    return time.monotonic() - started, True


# ---------------------------------------------------------------------------------------------
# wrk


def run_wrk(url: str, requests_file: Path, connections: int, duration: int, timeout: int,
            output: Path) -> tuple[dict, float]:
    """One wrk run; its JSON line from load.lua and its own CPU seconds (rusage of the child)."""
    argv = [WRK, "-t1", f"-c{connections}", f"-d{duration}s", f"--timeout", f"{timeout}s",
            "--latency", "-s", str(LUA), url, "--", str(requests_file)]
    with output.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    _children[process.pid] = process
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        stop(process)
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    _children.pop(process.pid, None)
    text = output.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with status {process.returncode}:\n{text[-2000:]}")
    lines = [line for line in text.splitlines() if line.startswith("LOADJSON ")]
    if not lines:
        raise RuntimeError(f"no result line from load.lua in wrk's output:\n{text[-2000:]}")
    return json.loads(lines[-1][len("LOADJSON "):]), usage.ru_utime + usage.ru_stime


def accounting(result: dict) -> dict:
    """What one wrk run implies for the events table: bounds on the items it must have added."""
    ok = result["requests"] - result["errors"]["status"]  # these servers answer 200 or >= 400
    duplicates = max(0, result["sent"] - result["loaded"])
    return {
        "answered_2xx": ok,
        "duplicates_sent": duplicates,
        "new_started": min(result["sent"], result["loaded"]),
        # a duplicate's answer is 200 too; at worst every duplicate was answered 2xx
        "new_answered_2xx_min": max(0, ok - duplicates),
        "in_flight_at_stop": result["sent"] - result["requests"],
    }


# ---------------------------------------------------------------------------------------------
# DynamoDB


def count_items(ddb, table: str) -> int:
    total, kwargs = 0, {"TableName": table, "Select": "COUNT", "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def drop_tables(ddb, tables: list[str]) -> None:
    for table in tables:
        try:
            ddb.delete_table(TableName=table)
        except ddb.exceptions.ResourceNotFoundException:
            continue
        ddb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


# ---------------------------------------------------------------------------------------------
# One side


def side_config(side: str, args, port: int) -> tuple[list[str], dict, list[str], str]:
    """argv, the CALLHOOK_* environment, its tables (events first) and the state file (or "")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLHOOK_") and k != "RUST_LOG"}
    env.update({
        "CALLHOOK_DYNAMODB_ENDPOINT": args.endpoint,
        "CALLHOOK_CLAWOPS_SECRETS": SECRET,
        "CALLHOOK_VOX_TOKENS": TOKEN,
        "CALLHOOK_SYNTHFLOW_TOKENS": TOKEN,
    })
    if side == "callhook":
        tables = ["bench-callhook-events", "bench-callhook-calls"]
        state = str(OUT_DIR / "callhook-state.json")
        env.update({"CALLHOOK_EVENTS_TABLE": tables[0], "CALLHOOK_CALLS_TABLE": tables[1],
                    "CALLHOOK_STATE": state})
        argv = [str(Path(args.callhook_bin).resolve()), "dev", "--port", str(port), "--state-file", state]
        if args.poll_ms is not None:
            argv += ["--poll-ms", str(args.poll_ms)]
        return argv, env, tables, state
    tables = ["bench-reference-events"]
    env["CALLHOOK_EVENTS_TABLE"] = tables[0]
    argv = [str(BENCH / ".venv" / "bin" / "uvicorn"), "app:app", "--app-dir", str(BENCH / "reference"),
            "--host", "127.0.0.1", "--port", str(port)]
    return argv, env, tables, ""


def run_side(side: str, args, ddb, ddb_process: int | None, nonce: str) -> dict:
    port = free_port()
    argv, env, tables, state = side_config(side, args, port)
    url = f"http://127.0.0.1:{port}/webhooks/clawops"
    tag = SIDES.index(side) * 2

    warm_file, main_file = OUT_DIR / f"{side}-warmup.tsv", OUT_DIR / f"{side}-requests.tsv"
    warm_n = write_requests(warm_file, args.max_rps * args.warmup, nonce, tag)
    main_n = write_requests(main_file, args.max_rps * args.duration, nonce, tag + 1)
    log(f"{side}: {main_n} requests generated ({warm_n} for the warm-up)")

    drop_tables(ddb, tables)
    if side == "reference":
        events_table.ensure_events_table(args.endpoint, tables[0])  # callhook dev creates its own

    logfile = OUT_DIR / f"{side}.log"
    server = start_server(argv, env, logfile)
    try:
        ready_s = wait_ready(server, port, logfile)
        log(f"{side}: pid {server.pid} on port {port}, ready in {ready_s:.2f} s; warm-up {args.warmup} s")
        warm, _ = run_wrk(url, warm_file, args.connections, args.warmup, args.timeout,
                          OUT_DIR / f"{side}-warmup.wrk.txt")
        warm_settle_s, warm_idle = settle(server.pid, timeout=120)
        if not warm_idle:
            log(f"{side}: still busy {warm_settle_s:.0f} s after the warm-up; measuring anyway")

        log(f"{side}: measuring {args.duration} s at {args.connections} connections")
        load_before = os.getloadavg()
        cpu0 = proc_cpu_s(server.pid)
        ddb0 = proc_cpu_s(ddb_process) if ddb_process else None
        result, loadgen_cpu = run_wrk(url, main_file, args.connections, args.duration, args.timeout,
                                      OUT_DIR / f"{side}.wrk.txt")
        cpu1 = proc_cpu_s(server.pid)
        ddb1 = proc_cpu_s(ddb_process) if ddb_process else None
        drain_s, drained = settle(server.pid, timeout=args.drain_timeout)
        cpu2 = proc_cpu_s(server.pid)
        ddb2 = proc_cpu_s(ddb_process) if ddb_process else None
        if not drained:
            log(f"{side}: still busy {drain_s:.0f} s after the run; counting anyway")
        peak_rss = proc_status_kb(server.pid, "VmHWM")
        if server.poll() is not None:
            raise RuntimeError(f"{side} exited during the run (status {server.returncode}); see {logfile}")

        stored = count_items(ddb, tables[0])
        calls_items = count_items(ddb, tables[1]) if side == "callhook" else None
    finally:
        stop(server)
        if state:
            Path(state).unlink(missing_ok=True)  # callhook removes it on SIGINT only
        for path in (warm_file, main_file):
            path.unlink(missing_ok=True)

    if not args.keep_tables:
        drop_tables(ddb, tables)

    w, m = accounting(warm), accounting(result)
    expected_min = w["new_answered_2xx_min"] + m["new_answered_2xx_min"]
    expected_max = w["new_started"] + m["new_started"]
    seconds = result["duration_us"] / 1e6
    requests = result["requests"]
    server_cpu = cpu1 - cpu0
    lat = result["latency_us"]
    errors = result["errors"]
    out = {
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else None,
        "duration_s": round(seconds, 3),
        "latency_ms": {k: round(lat[k] / 1000, 3) for k in ("p50", "p90", "p99", "max")},
        "non_2xx": errors["status"],
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "duplicates_sent": m["duplicates_sent"],
        "server_cpu_s": round(server_cpu, 3),
        "cpu_s_per_request": server_cpu / requests if requests else None,
        "server_cpu_s_drained": round(cpu2 - cpu0, 3),
        "drain_wait_s": round(drain_s, 2),
        "drained": drained,
        "server_peak_rss_kb": peak_rss,
        "ddb_cpu_s": round(ddb1 - ddb0, 3) if ddb_process else None,
        "ddb_cpu_s_drained": round(ddb2 - ddb0, 3) if ddb_process else None,
        "loadgen_cpu_s": round(loadgen_cpu, 3),
        "stored_items": stored,
        "store_check": {
            "expected_min": expected_min,
            "expected_max": expected_max,
            "ok": expected_min <= stored <= expected_max,
            "measured": m,
            "warmup": w,
        },
        "warmup": {"requests": warm["requests"], "settle_s": round(warm_settle_s, 2), "non_2xx": warm["errors"]["status"],
                   "rps": round(warm["requests"] / (warm["duration_us"] / 1e6), 1)},
        "loadavg_before": [round(x, 2) for x in load_before],
        "bytes_read": result["bytes"],
        "requests_generated": main_n,
        "events_table": tables[0],
        "server": " ".join(argv),
        "server_ready_s": round(ready_s, 2),
        "server_log": str(logfile.relative_to(ROOT)),
    }
    if side == "callhook":
        out["stream_runner"] = "on (in-process, polls every 250 ms, merges into the calls table)"
        out["calls_table"] = tables[1]
        out["calls_items"] = calls_items
        out["calls_expected_max"] = -(-w["new_started"] // 4) + -(-m["new_started"] // 4)
    return out


# ---------------------------------------------------------------------------------------------
# Output


def table(report: dict) -> str:
    sides = [s for s in SIDES if s in report]
    rows = [
        ("requests", lambda r: f"{r['requests']}"),
        ("rps", lambda r: f"{r['rps']:.0f}"),
        ("latency p50 ms", lambda r: f"{r['latency_ms']['p50']:.2f}"),
        ("latency p90 ms", lambda r: f"{r['latency_ms']['p90']:.2f}"),
        ("latency p99 ms", lambda r: f"{r['latency_ms']['p99']:.2f}"),
        ("latency max ms", lambda r: f"{r['latency_ms']['max']:.2f}"),
        ("non-2xx", lambda r: f"{r['non_2xx']}"),
        ("socket errors", lambda r: f"{sum(r['socket_errors'].values())}"),
        ("duplicates sent", lambda r: f"{r['duplicates_sent']}"),
        ("server CPU s", lambda r: f"{r['server_cpu_s']:.2f}"),
        ("server CPU µs/request", lambda r: f"{r['cpu_s_per_request'] * 1e6:.0f}"),
        ("  incl. drain, µs/req", lambda r: f"{r['server_cpu_s_drained'] / r['requests'] * 1e6:.0f}"),
        ("server peak RSS MiB", lambda r: f"{(r['server_peak_rss_kb'] or 0) / 1024:.1f}"),
        ("DynamoDB Local CPU s", lambda r: "-" if r["ddb_cpu_s"] is None else f"{r['ddb_cpu_s']:.2f}"),
        ("  incl. drain", lambda r: "-" if r["ddb_cpu_s_drained"] is None else f"{r['ddb_cpu_s_drained']:.2f}"),
        ("drain wait s", lambda r: f"{r['drain_wait_s']:.1f}" + ("" if r["drained"] else " (busy)")),
        ("wrk CPU s", lambda r: f"{r['loadgen_cpu_s']:.2f}"),
        ("stored items", lambda r: f"{r['stored_items']}"),
        ("expected", lambda r: f"{r['store_check']['expected_min']}..{r['store_check']['expected_max']}"),
        ("store check", lambda r: "ok" if r["store_check"]["ok"] else "MISMATCH"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{s:>12}" for s in sides)]
    for name, cell in rows:
        lines.append(f"{name:{width}}  " + "  ".join(f"{cell(report[s]):>12}" for s in sides))
    for name, value in report.get("ratios", {}).items():
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="End-to-end load: callhook dev vs the reference receiver.")
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local, e.g. http://127.0.0.1:8000")
    parser.add_argument("--callhook-bin", default=str(ROOT / "target" / "release" / "callhook"))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20, help="seconds of the measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of the warm-up run")
    parser.add_argument("--timeout", type=int, default=2, help="wrk --timeout, seconds (wrk's default)")
    parser.add_argument("--max-rps", type=int, default=5000,
                        help="requests generated per second of run (upper bound of the throughput)")
    parser.add_argument("--drain-timeout", type=int, default=300,
                        help="seconds to wait for the server to get idle after the run")
    parser.add_argument("--poll-ms", type=int,
                        help="callhook dev --poll-ms (stream poll interval; default callhook's 250). "
                             "For diagnosis only: a huge value all but turns the stream side off")
    parser.add_argument("--only", choices=SIDES)
    parser.add_argument("--ddb-pidfile", help="DynamoDB Local's pidfile (default: found by its port)")
    parser.add_argument("--keep-tables", action="store_true", help="leave the tables after the run")
    parser.add_argument("--out", help="JSON file (default: stdout)")
    args = parser.parse_args(argv)

    if not os.access(WRK, os.X_OK):
        raise SystemExit(f"load: {WRK} not found; install it with: apt-get install wrk")
    sides = [args.only] if args.only else list(SIDES)
    if "callhook" in sides and not os.access(args.callhook_bin, os.X_OK):
        raise SystemExit(f"load: {args.callhook_bin} is not an executable (cargo build --release -p callhook-cli)")
    if "reference" in sides and not (BENCH / ".venv" / "bin" / "uvicorn").exists():
        raise SystemExit("load: bench/.venv has no uvicorn; run bench/setup-python.sh")
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    ddb = events_table.client(args.endpoint)
    ddb.list_tables(Limit=1)  # fails early when the endpoint does not answer
    ddb_process = ddb_pid(args.endpoint, args.ddb_pidfile)
    if ddb_process is None:
        log("DynamoDB Local's pid not found (give --ddb-pidfile): ddb_cpu_s will be null")
    ddb_cpu_at_start = round(proc_cpu_s(ddb_process), 2) if ddb_process else None
    ddb_age = None
    if ddb_process:
        with open(f"/proc/{ddb_process}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            ddb_age = round(float(f.read().split()[0]) - start_ticks / CLK_TCK, 1)
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.splitlines()[0]

    report: dict = {
        "parameters": {
            "connections": args.connections, "threads": 1, "duration_s": args.duration,
            "warmup_s": args.warmup, "wrk_timeout_s": args.timeout, "max_rps": args.max_rps,
            "callhook_poll_ms": args.poll_ms or 250, "endpoint": args.endpoint, "ddb_pid": ddb_process,
            "ddb_cpu_s_at_start": ddb_cpu_at_start, "ddb_age_s": ddb_age, "callhook_bin": args.callhook_bin,
            "wrk": wrk_version.strip(), "payload": "ClawOps call.* webhooks, HMAC-SHA256 signed, ~200 B",
            "non_2xx_source": "wrk summary.errors.status (status > 399), no response() callback",
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    nonce = f"{random.getrandbits(32):08x}"
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        for side in sides:
            report[side] = run_side(side, args, ddb, ddb_process, nonce)
    except KeyboardInterrupt:
        log("interrupted; stopping what was started")
        return 130
    finally:
        stop_all()

    if "callhook" in report and "reference" in report:
        c, r = report["callhook"], report["reference"]
        report["ratios"] = {
            "cpu_per_request_reference_over_callhook":
                round(r["cpu_s_per_request"] / c["cpu_s_per_request"], 2) if c["cpu_s_per_request"] else None,
            "cpu_per_request_drained_reference_over_callhook":
                round((r["server_cpu_s_drained"] / r["requests"]) / (c["server_cpu_s_drained"] / c["requests"]), 2)
                if c["requests"] and r["requests"] and c["server_cpu_s_drained"] else None,
            "rps_callhook_over_reference": round(c["rps"] / r["rps"], 2) if r["rps"] else None,
        }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    print(table(report), file=sys.stderr)
    bad = [s for s in sides if not report[s]["store_check"]["ok"]]
    if bad:
        log(f"store check failed for {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
