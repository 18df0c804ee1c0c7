"""The level-B vault's costs: encrypted put/get against plain file I/O, and audit-journal verification.

Put/get: a model of 10 MB and one of 200 MB (random bytes), each written and
read `--repeat` times (median), in two interleaved rounds (best). *Plain* is
the same atomic write (temporary file, fsync, rename, fsync of the folder)
and a plain read (from the page cache); *plain + sha256* adds what a plain
content-addressed store does (hash on put, check on get, as level A does);
*vault* hashes on put (the object id), draws a data key, wraps it with the
KEK and runs AES-256-GCM over the bytes with the header as associated data;
on get it unwraps and decrypts (the GCM tag authenticates bytes and header).
Goal: encryption costs under 10 %.

Journal: `--entries` entries appended by a supervisor (no fsync while
building), then `verify_journal` (JSON parse, canonical re-encoding, SHA-256,
Ed25519 verify, links, signed head) against the bare cost of one SHA-256 and
one Ed25519 verification per entry, in wall and CPU (process) time: on a
shared machine the CPU ratio is the steadier figure. Goal: within 1.5x.

    python bench/vault.py [--sizes-mb 10 200] [--repeat 3] [--entries 100000] [--out bench/results/vault.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tclearn.identity import Identity, public_key_from_bytes  # noqa: E402
from tclearn.ledger.encoding import canonical_bytes  # noqa: E402
from tclearn.vault.journal import _TAG, Journal, read_journal, verify_journal  # noqa: E402
from tclearn.fsutil import atomic_write  # noqa: E402
from tclearn.vault.storage import Vault  # noqa: E402


CPU: dict[str, list[float]] = {}  # CPU seconds of the calls timed under a name (process time: what load cannot inflate)


def _median_s(fn, repeat: int, name: str = "") -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        if name:
            CPU.setdefault(name, []).append(time.process_time() - c)
    return statistics.median(times)


def bench_io(root: Path, size_mb: int, repeat: int) -> dict[str, float]:
    data = secrets.token_bytes(size_mb * 1_000_000)
    vault = Vault.create(root / f"vault-{size_mb}", b"bench passphrase", scrypt_n=2**14)
    plain_dir = root / f"plain-{size_mb}"
    plain_dir.mkdir()
    names = iter(f"m{i}" for i in range(100 * repeat))
    last: dict[str, str] = {}

    def plain_put(hashed: bool) -> None:
        name = hashlib.sha256(data).hexdigest() + next(names) if hashed else next(names)
        atomic_write(plain_dir / name, data, owner_only=True)
        last["plain"] = name

    def plain_get(hashed: bool) -> None:
        got = (plain_dir / last["plain"]).read_bytes()
        if hashed:
            hashlib.sha256(got).digest()

    def vault_put() -> None:
        last["vault"] = vault.put(data, "model", {"bench": size_mb}, object_id=secrets.token_hex(32)).object_id

    row: dict[str, float] = {"size_mb": size_mb}
    for _ in range(2):  # interleaved rounds: a burst of load hits both sides
        for name, fn in (("plain_put", lambda: plain_put(False)), ("plain_hash_put", lambda: plain_put(True)),
                         ("vault_put", vault_put)):
            row.setdefault(name + "_runs", []).append(_median_s(fn, repeat, f"{size_mb}:{name}"))  # type: ignore
        for name, fn in (("plain_get", lambda: plain_get(False)), ("plain_hash_get", lambda: plain_get(True)),
                         ("vault_get", lambda: vault.get(last["vault"]))):
            row.setdefault(name + "_runs", []).append(_median_s(fn, repeat, f"{size_mb}:{name}"))  # type: ignore
    for key in [k for k in row if k.endswith("_runs")]:
        row[key[: -len("_runs")] + "_s"] = min(row.pop(key))  # type: ignore[arg-type]
    for name in ("plain_put", "plain_hash_put", "vault_put", "plain_get", "plain_hash_get", "vault_get"):
        row[name + "_cpu_s"] = statistics.median(CPU[f"{size_mb}:{name}"])
    for op in ("put", "get"):
        row[f"{op}_cpu_over_hashed_pct"] = 100.0 * (row[f"vault_{op}_cpu_s"] / row[f"plain_hash_{op}_cpu_s"] - 1.0)
        row[f"{op}_over_plain_pct"] = 100.0 * (row[f"vault_{op}_s"] / row[f"plain_{op}_s"] - 1.0)
        row[f"{op}_over_hashed_pct"] = 100.0 * (row[f"vault_{op}_s"] / row[f"plain_hash_{op}_s"] - 1.0)
        row[f"vault_{op}_mb_s"] = size_mb / row[f"vault_{op}_s"]
    return row


def bench_journal(root: Path, entries: int) -> dict[str, float]:
    sup = Identity.generate("supervisor")
    clock = iter(range(1_790_000_000_000, 1_790_000_000_000 + 10 * entries))
    journal = Journal(root / "journal.jsonl", sup, lambda: next(clock), fsync=False)

    def row(i: int) -> tuple:  # type: ignore[type-arg]
        return (f"h{i % 7}", ("use", "download", "publish")[i % 3], "%064x" % (i // 10),
                "granted" if i % 5 else "refused", "use by partner", f"round-{i // 50}", {"n": i})

    single = min(1000, entries)
    t = time.perf_counter()
    for i in range(single):  # one entry at a time, as requests come (signed head rewritten each time)
        journal.append(*row(i))
    append_s = time.perf_counter() - t
    for start in range(single, entries, 10_000):
        journal.append_many([row(i) for i in range(start, min(entries, start + 10_000))])
    journal.close()
    parsed = read_journal(root / "journal.jsonl")
    messages = [(_TAG + canonical_bytes(e.fields()), bytes.fromhex(e.sig)) for e in parsed]
    key = public_key_from_bytes(sup.public_key)

    def bare() -> None:
        for msg, sig in messages:
            key.verify(sig, hashlib.sha256(msg).digest())

    verify_s = bare_s = float("inf")
    for _ in range(2):  # interleaved, best of two: the machine is shared
        bare_s = min(bare_s, _median_s(bare, 1, "bare"))
        verify_s = min(verify_s, _median_s(lambda: verify_journal(root / "journal.jsonl", sup.public_key), 1,
                                           "verify"))
    bare_cpu, verify_cpu = min(CPU["bare"]), min(CPU["verify"])
    return {"entries": entries, "append_us": 1e6 * append_s / single, "verify_s": verify_s, "bare_s": bare_s,
            "ratio": verify_s / bare_s, "verify_cpu_s": verify_cpu, "bare_cpu_s": bare_cpu,
            "cpu_ratio": verify_cpu / bare_cpu, "journal_mb": (root / "journal.jsonl").stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 200])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vault.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        io_rows = [bench_io(root, mb, args.repeat) for mb in args.sizes_mb]
        journal = bench_journal(root, args.entries)
    print(f"{'size':>7} {'plain':>8} {'+sha256':>8} {'vault':>8}  put overhead vs plain / +sha256 | "
          f"{'plain':>8} {'+sha256':>8} {'vault':>8}  get overhead")
    for r in io_rows:
        print(f"{r['size_mb']:>5}MB {r['plain_put_s']:>7.3f}s {r['plain_hash_put_s']:>7.3f}s {r['vault_put_s']:>7.3f}s "
              f"  {r['put_over_plain_pct']:>6.1f}% / {r['put_over_hashed_pct']:>6.1f}%       | "
              f"{r['plain_get_s']:>7.3f}s {r['plain_hash_get_s']:>7.3f}s {r['vault_get_s']:>7.3f}s "
              f"  {r['get_over_plain_pct']:>6.1f}% / {r['get_over_hashed_pct']:>6.1f}%")
    print("CPU seconds (process time), plain / +sha256 / vault:")
    for r in io_rows:
        print(f"{r['size_mb']:>5}MB put {r['plain_put_cpu_s']:.3f} / {r['plain_hash_put_cpu_s']:.3f} / "
              f"{r['vault_put_cpu_s']:.3f} ({r['put_cpu_over_hashed_pct']:+.0f} % vs +sha256)   get "
              f"{r['plain_get_cpu_s']:.3f} / {r['plain_hash_get_cpu_s']:.3f} / {r['vault_get_cpu_s']:.3f} "
              f"({r['get_cpu_over_hashed_pct']:+.0f} % vs +sha256)")
    j = journal
    print(f"journal: {j['entries']} entries ({j['journal_mb']:.1f} MB), append {j['append_us']:.0f} µs, "
          f"verify {j['verify_s']:.2f} s vs bare hash+signature {j['bare_s']:.2f} s: {j['ratio']:.2f}x wall; "
          f"CPU {j['verify_cpu_s']:.2f} s vs {j['bare_cpu_s']:.2f} s: {j['cpu_ratio']:.2f}x")
    load = os.getloadavg()
    result = {"io": io_rows, "journal": journal, "repeat": args.repeat,
              "machine": {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in load],
                          "python": platform.python_version()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} (load average {load[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
