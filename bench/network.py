"""Network benchmark: block latency over mutual TLS (node processes) vs in-process, and model transfer.

    .venv/bin/python bench/network.py [--sizes 4,8] [--blocks 8] [--transfer-mb 64]

* in-process: the same drivers, evaluators and trainers (digits task) in one
  process on a `SimCoalition` (virtual clock, 100 ms ticks, no sockets);
  wall time per committed block.
* network: `tclearn.node` processes on 127.0.0.1 over mutual TLS 1.3;
  time between commits at member m0 (from its JSON-line log), and per block
  the time the network adds beyond compute and model transfer, read off the
  nodes' logs (one clock, one machine): *delivery* = from the proposer's end
  of training to the start of the decisive validators' evaluation, minus
  their model fetch; *post* = from the decisive evaluation's end (the
  majority's last) to the first commit (quality votes, block, block votes,
  seal agreement — messages plus the protocol's own signing, checking and
  SQLite appends, so an upper bound of the network's share).
* transfer: `GET /v1/models/{hash}` of a safetensors model of `--transfer-mb`
  MB over mutual TLS, hash-checked into a directory store; MB/s.

Prints a table and writes bench/results/network.json. Timings are compared as
ratios within one run (same machine, same moment).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tclearn.consensus.params import ConsensusParams
from tclearn.data import DataPool
from tclearn.founding import generated_identities, numbered_names, plan_for_task
from tclearn.learning import DirectoryModelStore, Evaluator, get_task, model_hash, state_to_bytes
from tclearn.node import run_network_coalition, setup_coalition
from tclearn.node.data_source import data_key, partner_data
from tclearn.node.trainer import NodeTrainer
from tclearn.sim.world import SimCoalition
from tclearn.transport import MemberAllowList, NodeServer, PeerClient, Router, safetensors_response, server_context

RESULTS = Path(__file__).parent / "results" / "network.json"


def in_process(n: int, blocks: int, seed: int, tmp: Path) -> dict:
    task = get_task("digits")
    ids = generated_identities(numbered_names(n))
    _, test = partner_data("digits", n, seed, 0)
    init = task.initial_state(seed)
    # founded as `coalition up` founds it (tclearn.founding), without the revert right
    genesis = plan_for_task(task, ids, coalition_id="bench", seed=seed, lam=0.95, committee_size=min(3, n - 1),
                            test_set_hash=test.digest(), architecture="digits", initial_model_hash=model_hash(init),
                            ).genesis()
    evaluators, trainers = {}, {}
    hp = task.default_hyperparams.updated(genesis.payload["config"]["hyperparams"])
    for k, ident in enumerate(ids):
        store = DirectoryModelStore(tmp / f"inproc-{n}" / ident.member_id)
        store.put_state(init)
        pool_data, g = partner_data("digits", n, seed, k)
        ev = Evaluator(task, store, g)
        evaluators[ident.member_id] = ev
        trainers[ident.member_id] = NodeTrainer(task, DataPool(pool_data, data_key(seed)), ev, store, hp,
                                                seed * 1000 + k, tmp / f"inproc-{n}" / f"{ident.member_id}.json")
    # level A in one process: every member's store sees every model (the network fetches them instead)
    shared = DirectoryModelStore(tmp / f"inproc-{n}" / "shared")
    shared.put_state(init)
    for m in evaluators:
        evaluators[m].store = shared
        trainers[m].store = shared
    # the same timeline as the nodes log, on the wall clock of this one thread
    events: list[dict] = []

    def log(event: str, **fields: object) -> None:
        events.append({"event": event, "ts": time.time(), **fields})

    class TimedEvaluator:
        def __init__(self, inner: Evaluator) -> None:
            self.inner = inner

        def evaluate(self, parent: str, candidate: str) -> object:
            t = time.perf_counter()
            try:
                return self.inner.evaluate(parent, candidate)
            finally:
                log("evaluated", candidate=candidate, fetch_s=0.0, eval_s=time.perf_counter() - t)

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    for tr in trainers.values():
        tr.log = log
    timed = {m: TimedEvaluator(ev) for m, ev in evaluators.items()}
    coalition = SimCoalition(genesis, ids, evaluators=timed, trainers=trainers, tick_ms=100,
                             params=ConsensusParams(proposal_timeout_ticks=100),
                             on_commit=lambda member, block: log("commit", index=block.index))
    t0 = time.perf_counter()
    ok = coalition.run_until(blocks, max_ticks=20_000)
    wall = time.perf_counter() - t0
    per_block = [row for row in _rows(events, sequential=True) if row["height"] > 1]
    post = [row["post_ms"] for row in per_block]
    delivery = [row["delivery_ms"] for row in per_block]
    return {"n": n, "mode": "in-process", "blocks": min(coalition.heights().values()), "reached": ok,
            "seconds": round(wall, 3), "s_per_block": round(wall / max(1, blocks), 3),
            "protocol_ms_median": round(statistics.median(d + p for d, p in zip(delivery, post)), 1) if post else None,
            "delivery_ms_median": round(statistics.median(delivery), 1) if delivery else None,
            "post_ms_median": round(statistics.median(post), 1) if post else None}


def _timeline(out: Path) -> list[dict]:
    """Per block: delivery, post, fetch (ms) from every node's log (see the module docstring)."""
    events = []
    for log in sorted((out / "nodes").glob("*/data/node.log")):
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") in ("trained", "evaluated", "commit"):
                events.append(rec)
    return _rows(events)


def _rows(events: list[dict], sequential: bool = False) -> list[dict]:
    """The per-block rows; `sequential` (one thread): take out training and evaluation run inside a window."""
    def busy(lo: float, hi: float) -> float:
        if not sequential:
            return 0.0
        total = 0.0
        for e in events:
            if e["event"] in ("evaluated", "trained"):
                d = e.get("eval_s", e.get("train_s", 0.0))
                if lo < e["ts"] - d and e["ts"] <= hi + 1e-9:
                    total += d
        return total

    trained = {r["model"]: r for r in events if r["event"] == "trained"}
    evals: dict[str, list[dict]] = {}
    commits: dict[int, list[float]] = {}
    for r in events:
        if r["event"] == "evaluated":
            evals.setdefault(r["candidate"], []).append(r)
        elif r["event"] == "commit":
            commits.setdefault(r["index"], []).append(r["ts"])
    rows = []
    for model, t in trained.items():
        h = t["height"]
        if model not in evals or h not in commits:
            continue  # a candidate that was not committed at its height (or never evaluated)
        done = sorted(evals[model], key=lambda e: e["ts"])
        decisive = done[: min(len(done), 2)]  # committee 3: two accepting votes decide
        delivery = max(e["ts"] - e["eval_s"] - e["fetch_s"] - t["ts"] - busy(t["ts"], e["ts"] - e["eval_s"])
                       for e in decisive)
        post = min(commits[h]) - decisive[-1]["ts"] - busy(decisive[-1]["ts"], min(commits[h]))
        rows.append({"height": h, "delivery_ms": round(1000 * delivery, 1), "post_ms": round(1000 * post, 1),
                     "fetch_ms": round(1000 * max(e["fetch_s"] for e in decisive), 1),
                     "train_ms": round(1000 * t["train_s"], 1),
                     "eval_ms": round(1000 * max(e["eval_s"] for e in decisive), 1)})
    return sorted(rows, key=lambda r: r["height"])


def network(n: int, blocks: int, seed: int, tmp: Path) -> dict:
    out = tmp / f"net-{n}"
    r = run_network_coalition(out, partners=n, rounds=blocks, task="digits", seed=seed, timeout_s=300)
    commits = []
    for line in (out / "nodes" / "m0" / "data" / "node.log").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") in ("node_started", "commit"):
            commits.append((rec["event"], rec["ts"]))
    started = next(ts for e, ts in commits if e == "node_started")
    times = [ts for e, ts in commits if e == "commit"][:blocks]
    gaps = [b - a for a, b in zip(times, times[1:])]
    per_block = [row for row in _timeline(out) if row["height"] > 1]  # block 1 waits for the nodes' warm-up

    def med(key: str) -> float | None:
        return round(statistics.median(row[key] for row in per_block), 1) if per_block else None

    added = [row["delivery_ms"] + row["post_ms"] for row in per_block]
    return {"n": n, "mode": "network (mTLS)", "blocks": len(times), "reached": r["reached"], "agree": r["agree"],
            "seconds": round(times[-1] - times[0], 3) if len(times) > 1 else None,
            "s_per_block": round(statistics.median(gaps), 3) if gaps else None,
            "first_block_after_start_s": round(times[0] - started, 3) if times else None,
            "added_ms_median": round(statistics.median(added), 1) if added else None,
            "added_ms_max": round(max(added), 1) if added else None,
            "delivery_ms_median": med("delivery_ms"), "post_ms_median": med("post_ms"),
            "fetch_ms_median": med("fetch_ms"), "train_ms_median": med("train_ms"), "eval_ms_median": med("eval_ms"),
            "per_block": per_block}


def transfer(mb: int, tmp: Path) -> dict:
    out = tmp / "xfer"
    setup_coalition(out, 2, task="digits", seed=0)
    rows = json.loads((out / "coalition.json").read_text())
    a, b = rows
    n = mb * (1 << 20) // 4
    state = {"w": torch.randn(n // 2, generator=torch.Generator().manual_seed(0)),
             "v": torch.randn(n - n // 2, generator=torch.Generator().manual_seed(1))}
    data = state_to_bytes(state)
    h = model_hash(state)
    router = Router()
    router.route("GET", "/v1/models/{model_hash}", lambda caller, body, q: safetensors_response(data))
    allow = MemberAllowList.from_certs([Path(r["cert"]) for r in rows])
    server = NodeServer(router, server_context(Path(a["ca"]), Path(a["cert"]), Path(a["key"])), allow,
                        member_id="m0").start()
    try:
        client = PeerClient(server.url, Path(b["ca"]), Path(b["cert"]), Path(b["key"]), allow, expected_member="m0",
                            timeout_s=60, retries=0)
        store = DirectoryModelStore(tmp / "xfer-store")
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            got = client.get_model(f"/v1/models/{h}")
            t1 = time.perf_counter()
            store.put(got, expected_hash=h) if not store.has(h) else None
            t2 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1))
    finally:
        server.stop()
    best = min(r[0] for r in runs)
    return {"megabytes": round(len(data) / (1 << 20), 1), "transfer_s": round(best, 3),
            "mb_per_s": round(len(data) / (1 << 20) / best, 1),
            "store_check_s": round(runs[0][1], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="4,8,16")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transfer-mb", type=int, default=64)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tclearn-bench-net-") as d:
        tmp = Path(d)
        for n in [int(x) for x in args.sizes.split(",")]:
            ip = in_process(n, args.blocks, args.seed, tmp)
            nw = network(n, args.blocks, args.seed, tmp)
            if ip["s_per_block"] and nw["s_per_block"]:
                nw["ratio_vs_in_process"] = round(nw["s_per_block"] / ip["s_per_block"], 2)
            rows += [ip, nw]
            print(ip, nw, file=sys.stderr, flush=True)
        xfer = transfer(args.transfer_mb, tmp)
    print(f"{'members':>7}  {'mode':<16} {'blocks':>6}  {'s/block':>8}  {'ratio':>6}  {'added ms (median/max)':>22}  "
          f"{'delivery':>8}  {'post':>6}  {'fetch':>6}")
    for r in rows:
        added = f"{r['added_ms_median']}/{r['added_ms_max']}" if r.get("added_ms_median") is not None else ""
        print(f"{r['n']:>7}  {r['mode']:<16} {r['blocks']:>6}  {r['s_per_block']!s:>8}  "
              f"{r.get('ratio_vs_in_process', ''):>6}  {added:>22}  {r.get('delivery_ms_median', '')!s:>8}  "
              f"{r.get('post_ms_median', '')!s:>6}  {r.get('fetch_ms_median', '')!s:>6}")
    print(f"model transfer over mTLS: {xfer['megabytes']} MB in {xfer['transfer_s']} s = {xfer['mb_per_s']} MB/s "
          f"(hash + format check into the store: {xfer['store_check_s']} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                   "cpus": __import__("os").cpu_count(), "task": "digits", "blocks": args.blocks,
                                   "latency": rows, "transfer": xfer}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
