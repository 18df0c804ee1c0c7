"""Ledger benchmark: durable appends, and chain verification against its bare cryptographic cost.

    .venv/bin/python bench/ledger.py [--blocks 10000] [--members 4] [--committee 3] [--repeat 5]

Builds a valid chain of mixed kinds (increments and rejected candidates with
signed proposals and quality votes, hyper-parameter, membership and revert
blocks, each with a ≥ 2/3 certificate), then measures in one run:

* append: every block appended to an SQLite store, one durable commit each
  (WAL, synchronous=FULL);
* read: the whole chain read back and decoded;
* verify: `verify_chain` over the decoded blocks (the ledger's check:
  hashes, links, signatures, strengths, the rules of each kind);
* bare: exactly the Ed25519 verifications and SHA-256 digests that
  verification cannot avoid, over the same bytes, in a plain loop with the
  key objects made beforehand: no decoding, no encoding, no TCLearn code.

Verify and bare runs alternate and each keeps its fastest run, so a busy
machine slows both alike; the figure that matters is their ratio (goal ≤ 1.2),
given on wall-clock time and on CPU time (steadier when others share the CPU).
Prints a table and writes bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "ledger"))  # the chain builder the tests use

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chainmaker import ChainMaker  # noqa: E402
from tclearn.ledger import Block, Proposal, verify_chain  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore  # noqa: E402
from tclearn.ledger.verify import revert_request_bytes  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ledger.json"

Work = tuple[list[tuple[Ed25519PublicKey, bytes, bytes]], list[bytes]]


def build_chain(n_blocks: int, members: int, committee: int, seed: int) -> list[Block]:
    maker = ChainMaker(rng=random.Random(seed), n_members=members, committee_size=committee)
    maker.genesis()
    while len(maker.blocks) < n_blocks:
        maker.random_block()
    return maker.blocks


def unavoidable_work(blocks: list[Block], keys: dict[str, Ed25519PublicKey]) -> Work:
    """(key, signature, message) of every signature verification checks, and every byte string it hashes.

    Computed with our code, outside the timed loop: the loop then does only
    what any verifier of this chain format must do.
    """
    signatures: list[tuple[Ed25519PublicKey, bytes, bytes]] = []
    hashed: list[bytes] = []
    for b in blocks:
        block_bytes, signing = b.hash_and_signing_bytes()
        hashed.append(block_bytes)  # block_hash
        signatures.append((keys[b.general], b.general_signature, signing))
        if b.block_votes:
            hashed.append(signing)  # signing_hash, which the block votes sign
        for v in (*b.quality_votes, *b.block_votes):
            signatures.append((keys[v.validator], v.signature, v.signing_bytes()))
        if b.kind in ("increment", "rejected"):
            p = Proposal.from_dict(b.payload["proposal"])
            signatures.append((keys[p.proposer], p.signature, p.signing_bytes()))
            hashed.append(p.encoded())  # proposal_hash, which the quality votes name
        elif b.kind == "revert":
            who = b.payload["requester"]
            request = revert_request_bytes(who, b.payload["target"], b.index)
            signatures.append((keys[who], b.payload["request_signature"], request))
    return signatures, hashed


def bare(work: Work) -> None:
    signatures, hashed = work
    for key, signature, message in signatures:
        key.verify(signature, message)
    for data in hashed:
        hashlib.sha256(data).hexdigest()


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    return timed_both(fn)[0]


def timed_both(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (CPU time is steadier on a shared machine)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(args: argparse.Namespace) -> dict[str, Any]:
    t = time.perf_counter()
    blocks = build_chain(args.blocks, args.members, args.committee, args.seed)
    build_s = time.perf_counter() - t
    kinds = Counter(b.kind for b in blocks)

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "chain.db"
        with SQLiteChainStore(path) as store:
            def append_all() -> None:
                for b in blocks:
                    store.append(b)
            append_s = timed(append_all)
        size = path.stat().st_size
        with SQLiteChainStore(path, read_only=True) as store:
            read_s = timed(lambda: list(store))
            decoded = list(store)
            assert decoded == blocks and verify_chain(decoded).height == len(blocks) - 1
            end_to_end_s = timed(lambda: verify_chain(store))  # read, decode and verify, as `chain verify`

    identities = ChainMaker(rng=random.Random(args.seed), n_members=args.members).identities
    keys = {}
    for b in blocks:  # every member ever, joined later included
        for m in b.payload.get("add", []):
            keys[m["id"]] = Ed25519PublicKey.from_public_bytes(m["public_key"])
    keys.update({m: i.private_key.public_key() for m, i in identities.items()})
    work = unavoidable_work(decoded, keys)

    verify_runs, bare_runs, verify_cpu, bare_cpu = [], [], [], []
    for _ in range(args.repeat):
        wall, cpu = timed_both(lambda: bare(work))
        bare_runs.append(wall)
        bare_cpu.append(cpu)
        fresh = [Block.from_bytes(b.to_bytes()) for b in blocks]  # as read from a store: nothing cached
        wall, cpu = timed_both(lambda: verify_chain(fresh))
        verify_runs.append(wall)
        verify_cpu.append(cpu)
    sig_only = min(timed(lambda: [k.verify(s, m) for k, s, m in work[0]]) for _ in range(2))
    n = len(blocks)
    return {
        "parameters": {"blocks": n, "members": args.members, "committee": args.committee, "seed": args.seed,
                       "repeat": args.repeat},
        "chain": {"kinds": dict(sorted(kinds.items())), "signatures": len(work[0]), "hashes": len(work[1]),
                  "signatures_per_block": round(len(work[0]) / n, 3),
                  "bytes_hashed": sum(len(h) for h in work[1]), "db_bytes": size, "build_s": round(build_s, 3)},
        "append": {"total_s": append_s, "per_block_ms": append_s / n * 1e3, "blocks_per_s": n / append_s,
                   "durability": "WAL, synchronous=FULL, one transaction per block"},
        "read": {"total_s": read_s, "per_block_us": read_s / n * 1e6},
        "verify": {"best_s": min(verify_runs), "runs_s": verify_runs, "per_block_us": min(verify_runs) / n * 1e6},
        "bare": {"best_s": min(bare_runs), "runs_s": bare_runs, "per_block_us": min(bare_runs) / n * 1e6,
                 "signatures_only_s": sig_only},
        "read_decode_verify_s": end_to_end_s,
        "ratio_verify_to_bare": min(verify_runs) / min(bare_runs),
        "ratio_paired_median": statistics.median(v / b for v, b in zip(verify_runs, bare_runs)),
        "ratio_cpu_time": min(verify_cpu) / min(bare_cpu),
        "cpu_s": {"verify": verify_cpu, "bare": bare_cpu},
        "ratio_read_decode_verify_to_bare": end_to_end_s / min(bare_runs),
        "goal_ratio": 1.2,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "load_avg_1min": os.getloadavg()[0]},
    }


def report(r: dict[str, Any]) -> None:
    n = r["parameters"]["blocks"]
    p = r["parameters"]
    table = Table(title=f"TCLearn ledger — {n} blocks, {p['members']} members, committee {p['committee']}, "
                        f"{r['chain']['signatures_per_block']} signatures/block")
    for col in ("what", "total", "per block", "note"):
        table.add_column(col, justify="left" if col in ("what", "note") else "right")
    table.add_row("append (durable)", f"{r['append']['total_s']:.2f} s", f"{r['append']['per_block_ms']:.3f} ms",
                  f"{r['append']['blocks_per_s']:.0f} blocks/s, fsync per commit")
    table.add_row("read + decode", f"{r['read']['total_s']:.2f} s", f"{r['read']['per_block_us']:.0f} µs", "")
    table.add_row("verify_chain", f"{r['verify']['best_s']:.2f} s", f"{r['verify']['per_block_us']:.0f} µs",
                  f"best of {r['parameters']['repeat']}")
    table.add_row("bare Ed25519 + SHA-256", f"{r['bare']['best_s']:.2f} s", f"{r['bare']['per_block_us']:.0f} µs",
                  f"{r['chain']['signatures']} verifications, {r['chain']['hashes']} digests")
    table.add_row("verify / bare", f"{r['ratio_verify_to_bare']:.3f}", "",
                  f"wall clock; paired median {r['ratio_paired_median']:.3f}; goal ≤ {r['goal_ratio']}")
    table.add_row("verify / bare (CPU time)", f"{r['ratio_cpu_time']:.3f}", "", "best CPU time of each")
    table.add_row("read+decode+verify / bare", f"{r['ratio_read_decode_verify_to_bare']:.3f}", "",
                  f"{r['read_decode_verify_s']:.2f} s, as `tclearn chain verify`")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--committee", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tmp", default=None, help="Directory for the benchmark's chain file (default: system temp).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args)
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
