"""What a peer's message may cost: decode time and memory per byte, honest and hostile.

    .venv/bin/python bench/wire_cost.py [--repeat 5] [--bomb-levels 22]

Measures `decode_message` (the strict pre-scan `ledger.cbor_scan.scan`, then
cbor2, then the typed records) on:

* honest: a catch-up reply of 64 blocks from a 32-member coalition with a
  committee of 15 (signed proposals, quality votes, certificates), and one
  quality-vote message;
* hostile inputs the pre-scan lets through (they fail later, in the
  records): the most items a message may hold (`MAX_ITEMS` small integers),
  the deepest nesting (`MAX_DEPTH`) over and over, the longest strings
  (`MAX_STRING_BYTES` each) up to `MAX_MESSAGE_BYTES`;
* hostile inputs it refuses: a shared-reference bomb (`--bomb-levels`).

Each figure is the fastest of `--repeat` runs; memory is tracemalloc's peak
during one decode, over the message's size. Prints a table and writes
bench/results/wire_cost.json. Run the bomb alone against older code with
`--bomb-only` to see the cost before the pre-scan.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ledger"))
sys.path.insert(0, str(ROOT / "tests" / "hostile"))

from cbor_bombs import PLACEHOLDER, governance_bomb, splice  # noqa: E402

from tclearn.consensus.wire import decode_message, encode_message  # noqa: E402
from tclearn.errors import RemoteProtocolError  # noqa: E402


def _fastest(call: Callable[[], Any], repeat: int) -> tuple[float, str]:
    best, verdict = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            call()
            verdict = "decoded"
        except RemoteProtocolError as exc:
            verdict = "refused: " + str(exc)[:60]
        best = min(best, time.perf_counter() - start)
    return best, verdict


def _peak_bytes(call: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        call()
    except RemoteProtocolError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _honest_messages() -> dict[str, bytes]:
    from chainmaker import random_chain

    from tclearn.consensus.messages import BlocksResponse

    maker = random_chain(7, 65, n_members=32, committee_size=15)
    blocks = tuple(maker.blocks[1:65])
    return {"64 blocks (32 members, k=15)": encode_message(BlocksResponse(blocks))}


def _hostile_messages() -> dict[str, bytes]:
    from tclearn.consensus.messages import MAX_MESSAGE_BYTES
    from tclearn.ledger.cbor_scan import MAX_DEPTH, MAX_ITEMS, MAX_STRING_BYTES

    frame = {"type": "blocks-response", "body": {"blocks": PLACEHOLDER}}
    most_items = b"\x9a" + (MAX_ITEMS - 8).to_bytes(4, "big") + b"\x00" * (MAX_ITEMS - 8)
    deep_one = b"\x81" * (MAX_DEPTH - 4) + b"\x00"
    count = (MAX_ITEMS - 16) // len(deep_one)
    deep = b"\x9a" + count.to_bytes(4, "big") + deep_one * count
    strings = MAX_MESSAGE_BYTES // MAX_STRING_BYTES - 1
    string = b"\x5a" + MAX_STRING_BYTES.to_bytes(4, "big") + b"\x00" * MAX_STRING_BYTES
    longest = bytes((0x80 | strings,)) + string * strings
    return {
        f"{MAX_ITEMS - 8} items": splice(frame, most_items),
        f"depth {MAX_DEPTH}, {count} times": splice(frame, deep),
        f"{strings} strings of {MAX_STRING_BYTES >> 20} MiB": splice(frame, longest),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bomb-levels", type=int, default=22)
    parser.add_argument("--bomb-only", action="store_true", help="only the bomb (to run against older code)")
    args = parser.parse_args()
    bomb = governance_bomb(args.bomb_levels)
    cases: dict[str, tuple[str, bytes]] = {f"bomb, {args.bomb_levels} levels": ("hostile", bomb)}
    if not args.bomb_only:
        cases.update({name: ("honest", data) for name, data in _honest_messages().items()})
        cases.update({name: ("hostile", data) for name, data in _hostile_messages().items()})
    rows = []
    for name, (kind, data) in cases.items():
        seconds, verdict = _fastest(lambda: decode_message(data), 1 if name.startswith("bomb") else args.repeat)
        peak = _peak_bytes(lambda: decode_message(data)) if not args.bomb_only else 0
        rows.append({"case": name, "kind": kind, "bytes": len(data), "seconds": seconds,
                     "us_per_kb": seconds * 1e6 / (len(data) / 1024), "peak_bytes": peak,
                     "peak_per_byte": peak / len(data), "verdict": verdict})
    print(f"{'case':34} {'kind':8} {'bytes':>10} {'ms':>9} {'µs/KB':>8} {'mem/byte':>8}  verdict")
    for r in rows:
        print(f"{r['case']:34} {r['kind']:8} {r['bytes']:>10} {r['seconds'] * 1e3:>9.2f} {r['us_per_kb']:>8.1f} "
              f"{r['peak_per_byte']:>8.1f}  {r['verdict']}")
    if not args.bomb_only:
        out = ROOT / "bench" / "results" / "wire_cost.json"
        out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                                   "repeat": args.repeat, "rows": rows}, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
