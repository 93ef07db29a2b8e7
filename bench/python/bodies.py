"""The benchmark payloads: every seed fixture, and synthetic Vox ``call_ended`` bodies of about
1 KiB, 6.7 KiB, 64 KiB and 1 MiB, written to ``bench/out/bodies/`` so that the Python and the
Rust benchmarks read the very same bytes.

    bench/.venv/bin/python bench/python/bodies.py [--out DIR]     (default bench/out/bodies)

Writes ``<name>.json`` per payload and ``manifest.json`` (name, file, provider, bytes, sha256;
for the synthetic ones also the number of added turns). Standard library only.

The synthetic recipe (byte-exact, so any language can reproduce it and check the sha256):

1. F = the bytes of tests/fixtures/vox/v2_call_ended.json (832 bytes, UTF-8, as committed).
2. The insertion point P = the offset of the first occurrence of the bytes ``\\n],\\n"recording_url"``
   in F: right after the ``}`` that closes the fixture's last transcript turn.
3. Turn k (k = 1, 2, 3, ...) is the UTF-8 bytes of
       ``,\\n{ "role" : "<ROLE>" , "content" : "<TEXT> [<k>]" }``
   where (ROLE, TEXT) = TURNS[(k - 1) % 6] below and <k> is k in decimal (no padding).
4. For a target size T, take the smallest n >= 1 such that len(F) + sum(len(turn k), k=1..n) >= T;
   the body is F[:P] + turn 1 + ... + turn n + F[P:].
Targets: vox_call_ended_1k T=1024, vox_call_ended_6k7 T=6861 (6.7 KiB), vox_call_ended_64k
T=65536, vox_call_ended_1m T=1048576. Each body is valid JSON and a valid Vox v2 call_ended.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_OUT = REPO / "bench" / "out" / "bodies"

BASE_FIXTURE = FIXTURES / "vox" / "v2_call_ended.json"
INSERT_BEFORE = b'\n],\n"recording_url"'
TURNS = [
    ("agent", "안녕하세요. 무엇을 도와드릴까요?"),
    ("user", "주문 상태를 확인하고 싶습니다."),
    ("agent", "주문 번호를 말씀해 주시겠어요?"),
    ("user", "네, 주문 번호는 A-20250311-0042입니다."),
    ("agent", "확인해 보니 내일 오전 중에 배송될 예정입니다."),
    ("user", "감사합니다. 배송지를 변경할 수 있을까요?"),
]
SYNTHETIC = [
    ("vox_call_ended_1k", 1024),
    ("vox_call_ended_6k7", 6861),
    ("vox_call_ended_64k", 65536),
    ("vox_call_ended_1m", 1048576),
]


def turn(k: int) -> bytes:
    role, text = TURNS[(k - 1) % len(TURNS)]
    return f',\n{{ "role" : "{role}" , "content" : "{text} [{k}]" }}'.encode()


def synthetic(target: int, base: bytes | None = None) -> tuple[bytes, int]:
    """The body for ``target`` bytes and the number of turns added (see the module's recipe)."""
    base = BASE_FIXTURE.read_bytes() if base is None else base
    at = base.index(INSERT_BEFORE)
    added, size, k = [], len(base), 0
    while k == 0 or size < target:
        k += 1
        added.append(turn(k))
        size += len(added[-1])
    return base[:at] + b"".join(added) + base[at:], k


# The first providers, in the order earlier reports listed them; the later ones follow by name.
FIRST = ("clawops", "vox", "synthflow")


def seed_fixtures() -> list[tuple[str, str, bytes, str]]:
    """(name, provider, body, source path) of every seed fixture (JSON, or a form body), in a
    stable order."""
    later = sorted(p.name for p in FIXTURES.iterdir()
                   if p.is_dir() and p.name not in FIRST and p.name != "expected")
    out = []
    for provider in (*FIRST, *later):
        paths = sorted([*(FIXTURES / provider).glob("*.json"), *(FIXTURES / provider).glob("*.form")])
        for path in paths:
            out.append((f"{provider}/{path.stem}", provider, path.read_bytes(),
                        str(path.relative_to(REPO))))
    return out


def payloads() -> list[tuple[str, str, bytes, dict]]:
    """(name, provider, body, extra manifest fields) of every benchmark payload."""
    out = [(name, provider, body, {"source": source})
           for name, provider, body, source in seed_fixtures()]
    base = BASE_FIXTURE.read_bytes()
    for name, target in SYNTHETIC:
        body, turns = synthetic(target, base)
        json.loads(body)  # the recipe keeps it valid JSON
        out.append((name, "vox", body, {"target_bytes": target, "added_turns": turns}))
    return out


def write(out_dir: Path) -> list[dict]:
    """Writes the bodies (only files whose bytes changed) and the manifest; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, provider, body, extra in payloads():
        suffix = Path(extra["source"]).suffix if "source" in extra else ".json"
        file_name = name.replace("/", "__") + suffix
        path = out_dir / file_name
        if not path.exists() or path.read_bytes() != body:
            path.write_bytes(body)
        manifest.append({
            "name": name,
            "file": file_name,
            "provider": provider,
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            **extra,
        })
    text = json.dumps({"payloads": manifest}, indent=2, ensure_ascii=False) + "\n"
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.exists() or manifest_path.read_text() != text:
        manifest_path.write_text(text)
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory (default bench/out/bodies)")
    args = parser.parse_args(argv)
    for entry in write(args.out):
        print(f"{entry['bytes']:>9}  {entry['sha256'][:16]}  {entry['file']}", file=sys.stderr)
    print(args.out / "manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
