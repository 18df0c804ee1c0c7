"""Messages, bytes and CPU per committed block, for committees of 4 to 100 validators.

Usage: .venv/bin/python bench/consensus.py [--sizes 4,7,16,31,64,100] [--blocks N] [--out PATH]

Each size runs a coalition of k + 3 members in one process through the real
drivers and cores, messages encoded to bytes by the sender and decoded by the
receiver (wire mode), real Ed25519 signatures, every member with its own
signature cache (nothing shared), no faults. CPU is attributed to the member
whose driver call spent it (sending includes encoding, receiving decoding).

In the same run it measures one Ed25519 check and one signing on this machine
and prices the *bare* cost: the checks and signings no member can avoid to
certify a block — for a validator, the proposal, the other validators' quality
votes in the block, the general's signature and the other block votes of the
certificate, plus signing its own quality vote and block vote; for any other
member, the proposal, the quality votes, the general's signature and the block
votes. `ratio` is a member's CPU per certified block over that bare cost
(goal: ≤ 2). It also reports the checks and signings the protocol actually ran
(the agreement's own signed votes come on top of the certificate's: about
k + 4q + 3 checks for a validator, against k + q + 1 for the bare
certificate) and `ratio_to_protocol_crypto`, the CPU over that crypto work.

Writes bench/results/consensus.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import tclearn.consensus.verifier as verifier_module  # noqa: E402
import tclearn.identity as identity_module  # noqa: E402
from tclearn.consensus.committee import committee_for  # noqa: E402
from tclearn.identity import Identity  # noqa: E402
from tclearn.ledger.verify import verify_genesis  # noqa: E402
from tclearn.sim.build import synthetic_coalition  # noqa: E402
from tclearn.sim.network import FaultModel  # noqa: E402

CURRENT: list[str] = [""]  # the member whose driver call is running
CHECKS: dict[str, int] = defaultdict(int)
SIGNS: dict[str, int] = defaultdict(int)


def _instrument() -> None:
    """Count every Ed25519 check and signing, by the member doing it."""
    check, ledger_check, sign = verifier_module._check, identity_module.verify_signature, Identity.sign

    def counted_check(*args):  # type: ignore[no-untyped-def]
        CHECKS[CURRENT[0]] += 1
        return check(*args)

    def counted_ledger_check(*args):  # type: ignore[no-untyped-def]
        CHECKS[CURRENT[0]] += 1
        return ledger_check(*args)

    def counted_sign(self, message):  # type: ignore[no-untyped-def]
        SIGNS[CURRENT[0]] += 1
        return sign(self, message)

    verifier_module._check = counted_check
    for name, module in list(sys.modules.items()):  # every ledger module that imported the check
        if name.startswith("tclearn.") and getattr(module, "verify_signature", None) is ledger_check:
            module.verify_signature = counted_ledger_check  # type: ignore[attr-defined]
    Identity.sign = counted_sign  # type: ignore[method-assign]


def crypto_unit_costs(n: int = 2000) -> tuple[float, float]:
    """Seconds for one Ed25519 check and one signing (median of 5 runs of n)."""
    ident = Identity.from_seed("bench", b"bench")
    msg = b"x" * 180
    sig = ident.private_key.sign(msg)
    key = identity_module.public_key_from_bytes(ident.public_key)
    checks, signs = [], []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            key.verify(sig, msg)
        checks.append((time.perf_counter() - t) / n)
        t = time.perf_counter()
        for _ in range(n):
            ident.private_key.sign(msg)
        signs.append((time.perf_counter() - t) / n)
    return statistics.median(checks), statistics.median(signs)


def run_size(k: int, blocks: int, t_check: float, t_sign: float) -> dict:
    members = k + 3
    CHECKS.clear()
    SIGNS.clear()
    setup = synthetic_coalition(members, k, seed=k, wire=True, faults=FaultModel(delay_min=1, delay_max=1),
                                shared_verifier=False)
    c = setup.coalition
    cpu: dict[str, float] = defaultdict(float)
    for name, d in c.drivers.items():
        assert d is not None
        for method in ("receive_bytes", "tick"):
            inner = getattr(d, method)

            def timed(*args, _inner=inner, _name=name):  # type: ignore[no-untyped-def]
                CURRENT[0] = _name
                t = time.perf_counter()
                try:
                    return _inner(*args)
                finally:
                    cpu[_name] += time.perf_counter() - t
                    CURRENT[0] = ""

            setattr(d, method, timed)
    start_net = (c.network.stats.sent, c.network.stats.bytes)
    wall = time.perf_counter()
    ok = c.run_until(blocks, 200 * blocks)
    wall = time.perf_counter() - wall
    chain = c.chain("m0")[1: blocks + 1]
    committed = len(chain)
    if not ok or committed < blocks:
        raise SystemExit(f"k={k}: only {committed} of {blocks} blocks committed")
    # bare cost per member per block, from the certificates actually committed
    state = verify_genesis(c.genesis)
    bare: dict[str, float] = defaultdict(float)
    for block in chain:
        committee = committee_for(state)
        certificate_checks = len(block.quality_votes) + len(block.block_votes) + 2
        for m in c.members:
            if m in committee.validators:
                own = int(m in {v.validator for v in block.quality_votes}) + int(
                    m in {v.validator for v in block.block_votes})
                bare[m] += (certificate_checks - own) * t_check + 2 * t_sign
            else:
                bare[m] += certificate_checks * t_check
        state = state.apply(block)
    per_member = {m: cpu[m] / committed for m in c.members}
    ratios = {m: per_member[m] / (bare[m] / committed) for m in c.members}
    crypto = {m: (CHECKS[m] * t_check + SIGNS[m] * t_sign) / committed for m in c.members}
    own_ratios = {m: per_member[m] / crypto[m] for m in c.members if crypto[m] > 0}
    sent, nbytes = c.network.stats.sent - start_net[0], c.network.stats.bytes - start_net[1]
    return {
        "committee": k,
        "members": members,
        "blocks": committed,
        "messages_per_block": round(sent / committed),
        "bytes_per_block": round(nbytes / committed),
        "cpu_ms_per_block_mean_member": round(1000 * statistics.mean(per_member.values()), 3),
        "cpu_ms_per_block_max_member": round(1000 * max(per_member.values()), 3),
        "bare_ms_per_block_mean_member": round(1000 * statistics.mean(bare.values()) / committed, 3),
        "bare_ms_per_block_max_member": round(1000 * max(bare.values()) / committed, 3),
        "ratio_mean": round(statistics.mean(ratios.values()), 2),
        "ratio_max": round(max(ratios.values()), 2),
        "checks_per_block_mean_member": round(statistics.mean(CHECKS[m] for m in c.members) / committed, 1),
        "signings_per_block_mean_member": round(statistics.mean(SIGNS[m] for m in c.members) / committed, 1),
        "crypto_ms_per_block_mean_member": round(1000 * statistics.mean(crypto.values()), 3),
        "ratio_to_protocol_crypto_mean": round(statistics.mean(own_ratios.values()), 2),
        "ratio_to_protocol_crypto_max": round(max(own_ratios.values()), 2),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,7,16,31,64,100")
    parser.add_argument("--blocks", type=int, default=0, help="blocks per size (default: 5, or 3 from k = 64)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "consensus.json"))
    args = parser.parse_args()
    _instrument()
    t_check, t_sign = crypto_unit_costs()
    rows = []
    for k in [int(x) for x in args.sizes.split(",")]:
        rows.append(run_size(k, args.blocks or (3 if k >= 64 else 5), t_check, t_sign))
        print(f"k={k} done in {rows[-1]['wall_s']} s", file=sys.stderr)
    result = {"ed25519_check_us": round(1e6 * t_check, 1), "ed25519_sign_us": round(1e6 * t_sign, 1),
              "python": sys.version.split()[0], "sizes": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"consensus per committed block (Ed25519 check {result['ed25519_check_us']} µs, "
                            f"sign {result['ed25519_sign_us']} µs)")
        cols = ["committee", "messages_per_block", "bytes_per_block", "cpu_ms_per_block_mean_member",
                "cpu_ms_per_block_max_member", "bare_ms_per_block_mean_member", "ratio_mean", "ratio_max",
                "checks_per_block_mean_member", "signings_per_block_mean_member", "crypto_ms_per_block_mean_member",
                "ratio_to_protocol_crypto_mean"]
        heads = ["k", "msgs", "KB", "cpu ms", "cpu max", "bare ms", "×bare", "×bare max", "checks", "signs",
                 "crypto ms", "×crypto"]
        for h in heads:
            table.add_column(h, justify="right")
        for r in rows:
            table.add_row(*[str(round(r[c] / 1024)) if c == "bytes_per_block" else str(r[c]) for c in cols])
        Console(width=200).print(table)
    except ImportError:
        print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
