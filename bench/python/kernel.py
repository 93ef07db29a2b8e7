"""CPU per event in Python: what the reference receiver spends on one webhook before any I/O.

    bench/.venv/bin/python bench/python/kernel.py [--out FILE] [--repeat N] [--only SUBSTR]
                                                  [--auth hmac|default] [--no-stages]

For every payload of bench/out/bodies/manifest.json (each seed fixture and the synthetic Vox
call_ended bodies of ~1 KiB, 6.7 KiB, 64 KiB and 1 MiB; the directory is (re)written first by
bodies.py, so the Rust side can read the same files), one "event" is one delivery through:

    authenticate    HMAC-SHA256 over the raw body, constant-time compare (ingest.verify)
    parse           json.loads + the field mapping to canonical events + SHA-256 dedupe keys
    item            the events-table item(s) as DynamoDB attribute values via boto3's
                    TypeSerializer (bodies > 16 KiB gzip-compressed, as callhook stores them)

exactly the code bench/reference/app.py and bench/python/coldstart/handler.py run (ingest.py).
No network, no clock: received_at is fixed, so the output is deterministic.

--auth hmac (default) authenticates every provider with HMAC-SHA256 over the body (callhook
configured with CALLHOOK_<P>_AUTH=hmac-sha256, the provider's default header and prefix, secret
"bench-secret"), so the cost grows with the body as it does for ClawOps; --auth default uses each
provider's own scheme (Vox and Synthflow: ?token=, whose cost does not depend on the body).

Timing: timeit.Timer.autorange() picks a loop count that takes >= 0.2 s, then the best of
--repeat such runs (default 5) is reported (timeit turns the GC off while timing). Per payload:
bytes, events (canonical events of the delivery: a Vox v1 call_ended and the Synthflow seed give
2), us_per_event (microseconds per delivery, all its events included), mb_per_s (body bytes per
second / 1e6), loops, and unless --no-stages the same for each stage alone (auth, json =
json.loads alone, map = the mapping on an already decoded payload, item).

Output: JSON on stdout, or in --out FILE; a readable table on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
sys.path.insert(0, str(HERE))

import bodies  # noqa: E402
import ingest  # noqa: E402

SECRET = "bench-secret"
TOKEN = "bench-token"
RECEIVED_AT = 1_800_000_000_000


def make_auth(provider: str, mode: str) -> tuple[ingest.ProviderAuth, dict, str | None]:
    """The provider's verifier and what a sender attaches (headers, ?token=)."""
    default_scheme, header, prefix = ingest.DEFAULT_AUTH[provider]
    scheme = "hmac-sha256" if mode == "hmac" else default_scheme
    if scheme == "hmac-sha256":
        auth = ingest.ProviderAuth(scheme, header=header.lower(), prefix=prefix, secrets=[SECRET.encode()])
        return auth, {}, None
    import hashlib

    auth = ingest.ProviderAuth(scheme, token_digests=[hashlib.sha256(TOKEN.encode()).digest()])
    return auth, {}, TOKEN


def time_callable(fn, repeat: int) -> tuple[float, int]:
    """Best seconds per call over ``repeat`` runs of an autoranged loop count, and that count."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    best = min(timer.repeat(repeat=repeat, number=number))
    return best / number, number


def measure(name: str, provider: str, body: bytes, mode: str, repeat: int, stages: bool) -> dict:
    auth, headers, token = make_auth(provider, mode)
    if auth.scheme == "hmac-sha256":
        headers = {auth.header: ingest.sign(SECRET, body, auth.prefix)}
    verify, parse, event_items = ingest.verify, ingest.parse, ingest.event_items

    def one_event():
        verify(auth, headers, token, body)
        for event in parse(provider, body, RECEIVED_AT):
            event_items(event, body)

    one_event()  # fails loudly if the payload is refused
    events = parse(provider, body, RECEIVED_AT)
    seconds, loops = time_callable(one_event, repeat)
    result = {
        "name": name,
        "provider": provider,
        "auth": auth.scheme,
        "bytes": len(body),
        "events": len(events),
        "us_per_event": round(seconds * 1e6, 3),
        "mb_per_s": round(len(body) / seconds / 1e6, 3),
        "loops": loops,
    }
    if stages:
        payload = json.loads(body)
        mapper = ingest.PARSERS[provider]
        parts = {
            "auth": lambda: verify(auth, headers, token, body),
            "json": lambda: json.loads(body),
            "map": lambda: mapper(body, payload, RECEIVED_AT),
            "item": lambda: [event_items(e, body) for e in events],
        }
        result["stages_us"] = {
            stage: round(time_callable(fn, repeat)[0] * 1e6, 3) for stage, fn in parts.items()
        }
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="CPU per event of the Python reference receiver (see the module docstring)."
    )
    parser.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    parser.add_argument("--bodies", type=Path, default=bodies.DEFAULT_OUT,
                        help="payload directory, (re)written first (default bench/out/bodies)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per payload (best kept)")
    parser.add_argument("--only", action="append", default=[],
                        help="only payloads whose name contains this (repeatable)")
    parser.add_argument("--auth", choices=("hmac", "default"), default="hmac")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage timings")
    args = parser.parse_args(argv)

    manifest = bodies.write(args.bodies)
    results = []
    for entry in manifest:
        if args.only and not any(s in entry["name"] for s in args.only):
            continue
        body = (args.bodies / entry["file"]).read_bytes()
        if entry["provider"] not in ingest.PARSERS:
            # The reference receiver knows the first three providers only.
            results.append({"name": entry["name"], "provider": entry["provider"],
                            "bytes": entry["bytes"], "reference": False})
            continue
        result = measure(entry["name"], entry["provider"], body, args.auth, args.repeat, not args.no_stages)
        results.append(result)
        stage_text = ""
        if "stages_us" in result:
            stage_text = "  " + " ".join(f"{k}={v:.1f}" for k, v in result["stages_us"].items())
        print(f"{result['name']:<32} {result['bytes']:>9} B {result['events']} ev "
              f"{result['us_per_event']:>11.2f} us {result['mb_per_s']:>8.2f} MB/s{stage_text}",
              file=sys.stderr)

    import boto3

    report = {
        "kernel": "python",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "boto3": boto3.__version__,
        "machine": platform.machine(),
        "auth_mode": args.auth,
        "repeat": args.repeat,
        "timer": "timeit autorange (>= 0.2 s per run), best of repeat, GC off",
        "received_at": RECEIVED_AT,
        "payloads": results,
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
