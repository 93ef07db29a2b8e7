"""Writes the figures table of docs/RELIABILITY.md from a reliability run's JSON lines.

Usage: python3 scripts/reliability-doc.py RUN_DIR docs/RELIABILITY.md
The table goes between the `<!-- figures -->` and `<!-- /figures -->` markers.
"""
import datetime
import json
import pathlib
import sys

run, doc = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])


def lines(name):
    path = run / name
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


suites = {s["suite"]: s for s in lines("suites.jsonl")}
fuzz = lines("fuzz.jsonl")
today = datetime.date.today().isoformat()
rows = []


def row(name, size, injected, result, command):
    rows.append(f"| {name} | {size} | {injected} | {result} | `{command}` | {today} |")


def f(suite):
    return suites.get(suite, {}).get("figures")


long = "scripts/reliability.sh"
if s := f("duplicate_storm"):
    row("1. Duplicate storm", f"{s['calls']} calls, {s['bodies']} webhooks ({s['events']} events), "
        f"{s['deliveries']} deliveries by {s['senders']} senders",
        f"each webhook 1–5 times; {s['racing_groups']} groups of copies sent at the same instant",
        f"{s['answered_2xx']}/{s['deliveries']} answered 2xx; {s['answered_new']} answered new (one per event); "
        f"stored {s['stored']}, lost {s['lost']}, duplicated {s['duplicated']}; "
        f"{s['records_differing_from_clean']} of {s['records']} records differ from a clean delivery", long)
if s := f("reordering"):
    row("2. Reordering", f"{s['calls']} calls ({s['seed_calls']} seed, {s['generated_calls']} generated), "
        f"{s['orders']} orders, {s['deliveries']} deliveries",
        "every order (all of them up to 200, else 200 random ones incl. the reverse), merged one event at a time",
        f"{s['records_equal']}/{s['orders']} records equal (seed calls: equal to their snapshots); "
        f"{s['records_differing']} differ", long)
if s := f("faults"):
    row("3. Faults: outage", f"{s['calls']} calls, {s['bodies']} webhooks ({s['events']} events) at {s['rate_per_second']}/s",
        f"DynamoDB Local (persisted) stopped and restarted: {s['outage_ms']} ms without storage "
        "(stop signal to accepting connections again); senders retry non-2xx with backoff",
        f"{s['answered_503']} answers 503, {s['unanswered']} unanswered, {s['attempts']} attempts; "
        f"recovery: first 2xx {s['storage_back_to_first_2xx_ms']} ms after storage accepted connections, "
        f"{s['failed_sent_after_storage_back']} requests sent after that failed, "
        f"{s['failed_sent_after_first_2xx']} after the first 2xx; "
        f"stored {s['stored']}, lost {s['lost']}, duplicated {s['duplicated']}; "
        f"{s['records_differing_from_clean']} records differ from a clean delivery", long)
if s := f("poison"):
    row("3. Faults: permanent failure", f"{s['events']} events, one of them stored with a body its parser rejects",
        "one stored event that can never merge",
        f"{s['recorded']} recorded as a failure, {s['queued']} queued, {s['retries']} retries "
        f"({s['invocations']} invocations); {s['neighbours_merged']} neighbours merged", long)
if s := f("transient_failure"):
    row("3. Faults: transient failure", f"{s['events']} events",
        "the calls table unreachable for the functions",
        f"{s['invocations']} invocations ({s['retries_each']} retries each), then {s['queued']} on the "
        f"failure queue with their keys; {s['recorded']} recorded as permanent", long)
if s := f("outage_while_failing"):
    row("3. Faults: outage while failing", f"{s['events']} events in flight",
        "DynamoDB down for the functions and the local failure queue while their retries run out",
        f"{s['letters_waiting']} letters waited in memory, {s['queued_after']} on the queue once storage was back; "
        f"lost {s['lost']}", long)
if s := f("concurrent_functions"):
    row("3b. Racing functions", f"{s['calls']} calls, {s['events']} events released at once",
        f"the per-type functions invoked concurrently (peak {s['peak_concurrency']} at once)",
        f"every record equal to a sequential delivery; {s['lost_races_retried']} lost races retried; "
        f"{s['call_events']} call events due, put with {s['call_event_duplicates']} duplicates (same ids)", long)
if s := f("latency"):
    row("3c. 2xx to merged record", f"{s['events']} events at {s['per_second']:.0f}/s over HTTP",
        f"the pipe polled every {s['poll_ms']} ms (as `callhook dev`)",
        f"median {s['median_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms; "
        f"{s['lost_races_retried']} lost races retried", long)
if s := f("hostile_input"):
    by = ", ".join(f"{k}: {v}" for k, v in sorted(s["by_status"].items()))
    row("4. Hostile input", f"{s['cases']} cases over HTTP (and base64 via API Gateway events)",
        "signatures, tokens, timestamps, routes, methods, bodies (see the list below)",
        f"{s['passed']}/{s['cases']} gave their documented status and code ({by}); "
        "nothing written for refusals; 0 panics", long)
if fuzz:
    total = sum(t["executions"] for t in fuzz)
    detail = "; ".join(f"{t['target']} {t['executions']:,} ({t['verdict']})" for t in fuzz)
    row("5. Fuzzing", f"{len(fuzz)} targets × {fuzz[0]['seconds']} s",
        "libFuzzer mutations of the fixtures (verify, each parser, merge)",
        f"{total:,} executions, {sum(t['verdict'] != 'ok' for t in fuzz)} failures: {detail}",
        f"scripts/fuzz.sh run {fuzz[0]['seconds']}")
secrets = [(name, s["figures"]["logs"]) for name, s in suites.items() if "logs" in s["figures"]]
if secrets:
    lines_total = sum(l["log_lines"] for _, l in secrets)
    hits = sum(l["secret_hits"] for _, l in secrets)
    row("6. Secrets in logs", f"{lines_total:,} log lines from {len(secrets)} suites",
        "4 configured secrets and tokens searched for in everything logged",
        f"{hits} hits", long)

table = ["| suite | size | injected | result | reproduce | date |", "| --- | --- | --- | --- | --- | --- |", *rows]
text = doc.read_text()
start, end = "<!-- figures -->", "<!-- /figures -->"
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
doc.write_text(head + start + "\n" + "\n".join(table) + "\n" + end + tail)
