"""Turn a `RunRecord` into `report.json`, PNG figures and a summary table.

Figures use matplotlib's Agg backend (no display needed): the score per block
with accepted and rejected increments marked, the strengths over time, and —
for segmentation tasks — one CT slice with the predicted and true contours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tclearn.demo.record import RunRecord
from tclearn.fsutil import atomic_write

__all__ = ["write_report", "report_dict", "summary_table", "write_figures", "vault_lines"]


def report_dict(run: RunRecord) -> dict[str, Any]:
    gap = None if run.centralized_score is None else run.centralized_score - run.final_score
    return {
        "task": run.task,
        "metric": run.metric,
        "partners": run.partners,
        "rounds": run.rounds,
        "committee": run.committee,
        "lambda": run.lam,
        "seed": run.seed,
        "initial_score": run.initial_score,
        "final_score": run.final_score,
        "centralized_score": run.centralized_score,
        "gap_to_centralized": gap,
        "accepted": run.accepted,
        "rejected": run.rejected,
        "honest_rejection_rate": run.honest_rejection_rate(),
        "malicious_rejection_rate": run.malicious_rejection_rate(),
        "malicious": list(run.malicious),
        "attack": run.attack,
        "chain_verified": run.chain_verified,
        "timings_s": dict(run.timings_s),
        "wall_time_s": run.wall_time_s,
        "blocks": [b.to_json() for b in run.blocks],
        **run.extra,
    }


def write_report(run: RunRecord, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    atomic_write(path, (json.dumps(report_dict(run), indent=2, sort_keys=False) + "\n").encode())
    return path


def write_figures(run: RunRecord, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    # 1. score per block, accepted and rejected marked
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [b.index for b in run.blocks]
    ax.plot([0] + xs, [run.initial_score] + [b.head_score for b in run.blocks], "-", color="#1f77b4",
            label=f"head model ({run.metric} on G)")
    acc = [b for b in run.blocks if b.kind == "increment" and b.score_new is not None]
    rej = [b for b in run.blocks if b.kind == "rejected" and b.score_new is not None]
    ax.scatter([b.index for b in acc], [b.score_new for b in acc], marker="o", color="#2ca02c", zorder=3,
               label="accepted increment")
    ax.scatter([b.index for b in rej], [b.score_new for b in rej], marker="x", color="#d62728", zorder=3,
               label="rejected candidate")
    bad = [b for b in run.blocks if b.malicious and b.score_new is not None]
    if bad:
        ax.scatter([b.index for b in bad], [b.score_new for b in bad], s=120, facecolors="none",
                   edgecolors="#9467bd", zorder=4, label="from a malicious partner")
    if run.centralized_score is not None:
        ax.axhline(run.centralized_score, ls="--", color="gray", label="centralised, trained to convergence")
    ax.set_xlabel("block")
    ax.set_ylabel(run.metric)
    ax.set_title(f"TCLearn — {run.task}: {run.metric} per block")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    p = out / "score_per_block.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    # 2. strengths over time
    members = sorted({m for b in run.blocks for m in b.strengths})
    if members:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for m in members:
            ax.plot(xs, [b.strengths.get(m, float("nan")) for b in run.blocks], label=m)
        ax.set_xlabel("block")
        ax.set_ylabel("strength S_i = 1/N + D_i/D")
        ax.set_title("Members' strengths over time")
        ax.legend(fontsize=8, ncol=2)
        ax.grid(alpha=0.3)
        p = out / "strengths.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    # 3. one CT slice with predicted and true contours
    ex = run.slice_example
    if ex is not None:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.imshow(ex.image, cmap="gray")
        if ex.true_mask.any():
            ax.contour(ex.true_mask, levels=[0.5], colors=["#2ca02c"], linewidths=2)
        if ex.predicted_mask.any():
            ax.contour(ex.predicted_mask, levels=[0.5], colors=["#d62728"], linewidths=1.5, linestyles="dashed")
        ax.set_title(f"slice {ex.slice_index}: true (green) vs predicted (red)")
        ax.axis("off")
        p = out / "ct_slice.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def summary_table(run: RunRecord) -> Table:
    t = Table(title=f"TCLearn demo — task {run.task}, {run.partners} partners, λ={run.lam}", show_lines=False)
    t.add_column("block", justify="right")
    t.add_column("kind")
    t.add_column("contributor")
    t.add_column("votes +/−", justify="center")
    t.add_column(f"{run.metric} old", justify="right")
    t.add_column(f"{run.metric} new", justify="right")
    t.add_column("head", justify="right")
    for b in run.blocks:
        style = {"increment": "green", "rejected": "red"}.get(b.kind, "")
        who = (b.contributor or "—") + (" (malicious)" if b.malicious else "")
        t.add_row(str(b.index), f"[{style}]{b.kind}[/]" if style else b.kind, who,
                  f"{b.votes_accept}/{b.votes_reject}", _fmt(b.score_old), _fmt(b.score_new), _fmt(b.head_score))
    return t


def print_summary(run: RunRecord, console: Console) -> None:
    console.print(summary_table(run))
    hr = run.honest_rejection_rate()
    lines = [
        f"accepted {run.accepted}, rejected {run.rejected}",
        f"initial {run.metric} {run.initial_score:.4f} → final {run.final_score:.4f}",
        f"centralised (converged) {_fmt(run.centralized_score)}",
        f"honest increments rejected: {'—' if hr is None else f'{100 * hr:.1f} %'}",
        f"chain verified: {'yes' if run.chain_verified else 'NO'}",
        f"wall time {run.wall_time_s:.1f} s",
    ]
    for line in lines:
        console.print(line)


def vault_lines(run: RunRecord) -> list[str]:
    """Levels B/C: what the supervisor's vault and audit journal hold after the run (for the console)."""
    v = run.extra.get("vault") or {}
    if not v:
        return []
    lines = [f"level {v['level']}: vault {v['path']}: {v['objects']} encrypted objects "
             f"({', '.join(f'{n} {k}' for k, n in sorted(v['object_kinds'].items()))}), "
             f"{v['bytes_on_disk'] / 1e6:.1f} MB on disk",
             f"audit journal: {v['journal_entries']} entries ({v['journal_bytes'] / 1e6:.2f} MB; granted "
             f"{v['granted']}, refused {v['refused']}, recorded {v['recorded']}), head {v['journal_head'][:24]}…, "
             f"{v['anchors_in_chain']} heads anchored in the chain",
             f"check it: tclearn audit verify {v['path']} --chain {Path(v['path']).parent / 'chain.db'}"]
    p = v.get("plaintext_in_memory")
    if p:
        lines.append(f"plaintext models: in memory only — {p['copies_evicted']} decrypted copies dropped after "
                     f"{p['held_s_mean']:.1f} s on average (at most {p['held_s_max']:.1f} s), {p['held_at_end']} "
                     f"held until the run ended (≤ {p['per_member_cache']} per member); none written to disk")
    if "watermarked_copies" in v:
        copies = v["watermarked_copies"]
        lines.append(f"watermarked copies handed out: {sum(copies.values())} "
                     f"({', '.join(f'{m} {n}' for m, n in sorted(copies.items()))}); "
                     f"trace a leak: tclearn trace SUSPECT.safetensors --vault {v['path']} "
                     f"--passphrase-file {v['passphrase_file']}")
    return lines
