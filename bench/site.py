"""Site benchmark: three hospitals from their own kits vs one operator's `coalition up`, side by side.

    .venv/bin/python bench/site.py [--window 60] [--seed 0]

* sites: three digits members enrolled as a hospital would (`tclearn site
  init` on 127.0.0.2-4, `pki sign`, `init` in kit mode, `site join` with each
  site's own .npz data folder, G distributed as a file), each node a process
  started from its site folder;
* operator: `coalition up`'s setup (`setup_coalition`: every key made by one
  operator, data derived from the seed, all on 127.0.0.1), same task, same
  partition of the digits, same seed.

Measured per setup: seconds from the processes' start to the first commit,
blocks committed per minute over `--window` seconds after it (every member's
chain, the smallest height), and for the sites the enrolment steps' times and
`model get` / `predict` latency on block 2. Prints a table and writes
bench/results/site.json. One machine, both setups in one run: compare them as
ratios (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from tclearn.cli.app import app  # noqa: E402
from tclearn.data.arrays import save_npz  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore  # noqa: E402
from tclearn.learning import get_task  # noqa: E402
from tclearn.node import setup_coalition  # noqa: E402
from tclearn.node.launcher import free_ports, stop_process_groups  # noqa: E402

NAMES = ["hospital-a", "hospital-b", "hospital-c"]
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
RESULTS = Path(__file__).resolve().parent / "results" / "site.json"
runner = CliRunner()


def tclearn(*args: Any) -> str:
    r = runner.invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        raise SystemExit(f"tclearn {' '.join(map(str, args))}: exit {r.exit_code}: {r.output}")
    return r.output


def height(chain: Path) -> int:
    if not chain.exists():
        return 0
    try:
        with SQLiteChainStore(chain, create=False, read_only=True) as store:
            return store.height()
    except Exception:
        return 0


def run_nodes(configs: list[Path], chains: list[Path], window_s: float) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(SRC))
    procs = []
    t0 = time.monotonic()
    for cfg in configs:
        with open(cfg.parent / "bench-stdout.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "tclearn.node", "serve", "--config", str(cfg)],
                                          stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    try:
        while min(height(c) for c in chains) < 2:  # genesis + the first committed block
            if any(p.poll() is not None for p in procs) or time.monotonic() - t0 > 300:
                raise SystemExit("a node exited or no block in 300 s")
            time.sleep(0.2)
        first = time.monotonic() - t0
        h0 = min(height(c) for c in chains)
        time.sleep(window_s)
        h1 = min(height(c) for c in chains)
    finally:
        stop_process_groups(procs)
    return {"first_block_s": round(first, 2), "blocks": h1 - h0, "blocks_per_min": round((h1 - h0) * 60 / window_s, 1)}


def timed(fn: Any, *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def sites(root: Path, seed: int, window_s: float) -> dict[str, Any]:
    root.mkdir(parents=True)
    data = get_task("digits").coalition_data(3, seed=seed)
    save_npz(data.test, root / "G.npz")
    steps: dict[str, list[float]] = {"site_init_s": [], "pki_sign_s": [], "site_join_s": []}
    tclearn("pki", "init", root / "pki")
    entries = []
    for name, host, part in zip(NAMES, HOSTS, data.partners):
        (root / f"{name}-data").mkdir()
        save_npz(part, root / f"{name}-data" / "part.npz")
        steps["site_init_s"].append(timed(tclearn, "site", "init", name, "--host", host, "--port", free_ports(1, host)[0],
                                          "--dir", root / name))
        t = time.perf_counter()
        out = tclearn("pki", "sign", root / name / f"{name}.request.toml", "--ca", root / "pki")
        steps["pki_sign_s"].append(time.perf_counter() - t)
        entries.append(out[out.index("[[members]]"):])
    hp = get_task("digits").default_hyperparams.genesis_dict()
    (root / "coalition.toml").write_text(
        f'[coalition]\nid = "bench-sites"\n\n[model]\ntask = "digits"\nseed = {seed}\n\n[hyperparams]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in hp.items())
        + f'\n[consensus]\nlambda = 0.95\ncommittee_size = 2\n\n[kit]\nca = "{root / "pki" / "ca.crt"}"\n'
        f'test_set = "{root / "G.npz"}"\n\n' + "\n".join(entries))
    init_s = timed(tclearn, "init", root / "coalition.toml", "--out", root / "operator", "--founder-key",
                   root / NAMES[0] / "identity" / f"{NAMES[0]}.key")
    for name in NAMES:
        shutil.copytree(root / "operator" / "kits" / name, root / name / "kit")
        steps["site_join_s"].append(timed(tclearn, "site", "join", root / name / "kit", "--dir", root / name,
                                          "--data", root / f"{name}-data", "--data-kind", "npz"))
    run = run_nodes([root / n / "node.toml" for n in NAMES], [root / n / "state" / "chain.sqlite" for n in NAMES],
                    window_s)
    np.save(root / "digits.npy", data.test.x[:100, 0].numpy())
    get_s = timed(tclearn, "model", "get", root / "m2.safetensors", "--block", 2, "--node", root / NAMES[1])
    predict_s = timed(tclearn, "predict", root / "digits.npy", root / "p.json", "--block", 2, "--node", root / NAMES[1])
    classes = json.loads((root / "p.json").read_text())["classes"]
    accuracy = float(np.mean(np.asarray(classes) == data.test.y[:100].numpy()))
    return {**run, **{k: round(max(v), 3) for k, v in steps.items()}, "init_kits_s": round(init_s, 3),
            "model_get_s": round(get_s, 3), "predict_100_digits_s": round(predict_s, 3),
            "block2_accuracy_on_100_of_G": accuracy}


def operator(root: Path, seed: int, window_s: float) -> dict[str, Any]:
    configs = setup_coalition(root / "c", 3, task="digits", seed=seed, committee=2)
    return run_nodes([c.data_dir.parent / "node.toml" for c in configs], [c.data_dir / "chain.sqlite" for c in configs],
                     window_s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = sites(Path(tmp) / "sites", args.seed, args.window)
        op = operator(Path(tmp) / "operator", args.seed, args.window)
    print(f"{'setup':<34}{'first block (s)':>16}{'blocks/min':>12}")
    print(f"{'sites: own keys, kits, 127.0.0.2-4':<34}{site['first_block_s']:>16}{site['blocks_per_min']:>12}")
    print(f"{'operator: coalition up, 127.0.0.1':<34}{op['first_block_s']:>16}{op['blocks_per_min']:>12}")
    for k in ("site_init_s", "pki_sign_s", "init_kits_s", "site_join_s", "model_get_s", "predict_100_digits_s",
              "block2_accuracy_on_100_of_G"):
        print(f"  {k:<32}{site[k]}")
    record = {"task": "digits", "members": 3, "committee": 2, "seed": args.seed, "window_s": args.window,
              "sites": site, "operator": op, "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
              "python": platform.python_version()}
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
