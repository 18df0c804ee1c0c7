"""Markdown tables for the README from `bench/results/attacks.json`.

Kept apart from `bench/attacks.py` so the README's figures can be regenerated
from the stored results without rerunning the grid:

    python bench/attacks_report.py [bench/results/attacks.json] [--all] [--plot]
    python bench/attacks_report.py --paired BEFORE.json AFTER.json   # the same jobs under two settings

(`--all`: every attack in the baseline table, not only label-flip, sign-flip and scale;
`--plot`: also redraw the file's figure beside it, `attacks.png` or, for a
TCLearn-only file such as `attacks_converged.json`, each attack's difference
from the clean run: `plot_deltas`.)

Cells are means over the seeds in the file. A TCLearn cell is starred when
the mean is more than 2 points under the mean clean run of the same split and
partner count; the goal lines count runs (one per attack, fraction and seed).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from centralized_vs_tclearn import _ci  # the 95 % t-interval of the sibling bench (bench/ is on the path)

FRACTIONS = [("20%", "20%"), ("30%/10", "30% (3 of 10)"), ("40%", "40%")]
WIDE = ("30%/10 k7", "30% (3 of 10), k = 7")
SPLITS = ["iid", "non-iid"]
CLEAN_OF = {"20%": "0%", "40%": "0%", "30%/10": "0%/10", "30%/10 k7": "0%/10 k7"}


def _wide(r: dict[str, Any]) -> bool:
    return r["fraction"].endswith(" k7")
BASELINES = ["none", "fedavg", "krum", "multi-krum", "median", "trimmed-mean", "fltrust"]
LE30 = ("20%", "30%/10")


def _load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = json.loads(path.read_text())
    return out, [r for r in out["runs"] if "error" not in r]


def _share(rows: list[dict[str, Any]], num: str, den: str) -> str:
    n, d = sum(r[num] for r in rows), sum(r[den] for r in rows)
    return f"{n} of {d} ({100 * n / d:.1f} %)" if d else "none"


def score_table(runs: list[dict[str, Any]]) -> str:
    tc = [r for r in runs if r["system"] == "tclearn"]
    cell: dict[tuple, list[float]] = defaultdict(list)
    for r in tc:
        cell[(str(r["attack"]), bool(r.get("collude")), r["fraction"], r["split"])].append(r["final_score"])
    attacks = sorted({str(r["attack"]) for r in tc if r["attack"]}, key=lambda a: ATTACK_ORDER.index(a)
                     if a in ATTACK_ORDER else 99)
    fractions = FRACTIONS + ([WIDE] if any(_wide(r) for r in tc) else [])
    cols = [(fr, name, sp) for sp in SPLITS for fr, name in fractions]
    head = "| attack | " + " | ".join(f"{name} {sp}" for _, name, sp in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]

    def clean(fr: str, sp: str) -> float | None:
        v = cell.get(("None", False, CLEAN_OF[fr], sp))
        return mean(v) if v else None

    lines.append("| clean (0 %) | " + " | ".join(
        f"{clean(fr, sp):.3f}" if clean(fr, sp) is not None else "-" for fr, _, sp in cols) + " |")
    for collude in (False, True):
        for at in attacks:
            vals = [cell.get((at, collude, fr, sp)) for fr, _, sp in cols]
            if not any(vals):
                continue
            cells = []
            for (fr, _, sp), v in zip(cols, vals):
                if not v:
                    cells.append("-")
                    continue
                c = clean(fr, sp)
                star = "*" if c is not None and mean(v) < c - 0.02 else ""
                cells.append(f"{mean(v):.3f}{star}")
            label = at + (" + colluding validators" if collude else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_attack_table(runs: list[dict[str, Any]]) -> str:
    """Per attack and split, all fractions and seeds together: the issue's three per-run measures."""
    tc = [r for r in runs if r["system"] == "tclearn"]
    lines = ["| attack | split | degrading candidates rejected | honest increments rejected "
             "| rounds to 95 % of clean (mean; never) |", "|---|---|---|---|---|"]
    keys = sorted({(str(r["attack"]), bool(r.get("collude")), _wide(r)) for r in tc},
                  key=lambda k: (k[2], k[1], ATTACK_ORDER.index(k[0]) if k[0] in ATTACK_ORDER else -1))
    for at, collude, wide in keys:
        for sp in SPLITS:
            rows = [r for r in tc if str(r["attack"]) == at and bool(r.get("collude")) == collude
                    and _wide(r) == wide and r["split"] == sp]
            if not rows:
                continue
            r95 = [r.get("rounds_to_95pct_clean") for r in rows]
            reached = [x for x in r95 if x is not None]
            label = ("clean" if at == "None" else at + (" + colluding" if collude else "")) + (
                ", 10 partners, k = 7" if wide else "")
            deg = (f"{sum(r['degrading_rejected'] for r in rows)} of {sum(r['degrading'] for r in rows)}"
                   if any(r["degrading"] for r in rows) else "none proposed")
            lines.append(f"| {label} | {sp} | {deg} | {sum(r['honest_rejected'] for r in rows)} of "
                         f"{sum(r['honest_proposals'] for r in rows)} | "
                         f"{mean(reached) if reached else float('nan'):.1f}; {len(r95) - len(reached)} of {len(r95)} |")
    return "\n".join(lines)


def goal_lines(out: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    tc = [r for r in runs if r["system"] == "tclearn" and not _wide(r)]
    wide = [r for r in runs if r["system"] == "tclearn" and _wide(r) and r.get("collude")]
    lines = []
    for sp in SPLITS:
        rows = [r for r in tc if r["split"] == sp]
        wrows = [r for r in wide if r["split"] == sp]
        plain = [r for r in rows if not r.get("collude")]
        coll = [r for r in rows if r.get("collude")]
        le30 = [r for r in plain if r["malicious_count"] and r["fraction"] in LE30]
        coll30 = [r for r in coll if r["fraction"] in LE30]
        clean = [r for r in plain if r["malicious_count"] == 0]
        missed = sorted(f"{r['attack']} {r['fraction']} seed {r['seed']} ({100 * r['delta_vs_clean']:+.1f})"
                        for r in le30 if not r.get("within_2_points"))
        lines += [
            f"**{sp}** ({len(rows)} TCLearn runs, {out['seeds']} seed(s)):",
            f"* degrading candidates rejected: {_share(rows, 'degrading_rejected', 'degrading')}"
            f" (collusion runs alone: {_share(coll, 'degrading_rejected', 'degrading')})",
            f"* within 2 points of clean, ≤ 30 % malicious: {sum(bool(r.get('within_2_points')) for r in le30)}"
            f" of {len(le30)}; of the honest-only reference: "
            f"{sum(bool(r.get('within_2_points_of_honest_only')) for r in le30)} of "
            f"{sum('within_2_points_of_honest_only' in r for r in le30)}; with colluding validators: "
            f"{sum(bool(r.get('within_2_points')) for r in coll30)} of {len(coll30)}",
            f"* runs more than 2 points under clean (≤ 30 %): {', '.join(missed) or 'none'}",
            f"* honest increments rejected: all runs without collusion {_share(plain, 'honest_rejected', 'honest_proposals')};"
            f" clean runs {_share(clean, 'honest_rejected', 'honest_proposals')};"
            f" with collusion {_share(coll, 'honest_rejected', 'honest_proposals')}",
            f"* of those (without collusion) that did *not* lower G by more than 1 point: "
            f"{_share(plain, 'honest_rejected_not_degrading', 'honest_proposals')}",
            *([f"* colluding validators, 3 of 10, committee 7: degrading rejected "
               f"{_share(wrows, 'degrading_rejected', 'degrading')}; within 2 points of clean "
               f"{sum(bool(r.get('within_2_points')) for r in wrows)} of {len(wrows)}; honest rejected "
               f"{_share(wrows, 'honest_rejected', 'honest_proposals')}"] if wrows else []),
            "",
        ]
    return "\n".join(lines)


def baseline_table(runs: list[dict[str, Any]], attacks: tuple[str, ...] | None = None) -> str:
    bl = [r for r in runs if r["system"] != "tclearn" and (attacks is None or r["attack"] in (None, *attacks))]
    tc = [r for r in runs if r["system"] == "tclearn" and not r.get("collude")]
    keys = sorted({(r["split"], r["fraction"], r["partners"], r["malicious_count"], str(r["attack"])) for r in bl},
                  key=lambda k: (SPLITS.index(k[0]), k[2], k[3], k[4]))
    lines = ["| split, case | " + " / ".join(["TCLearn"] + BASELINES) + " |", "|---|---|"]
    for sp, fr, _n, m, at in keys:
        cells = []
        for s in ["tclearn"] + BASELINES:
            pool = tc if s == "tclearn" else [r for r in bl if r["system"] == s]
            v = [r["final_score"] for r in pool if r["split"] == sp and r["fraction"] == fr and str(r["attack"]) == at]
            cells.append(f"{mean(v):.3f}".lstrip("0") if v else "-")
        case = "clean" if m == 0 else at
        lines.append(f"| {sp}, {fr} {case} | " + " / ".join(cells) + " |")
    return "\n".join(lines)


ATTACK_ORDER = ["label-flip", "random-labels", "off-task", "noise", "sign-flip", "scale", "alie", "lazy", "replay"]


def plot_deltas(out: dict[str, Any], path: Path) -> None:
    """Each attack's final score minus the clean run's of the same seed, in points: mean and 95 % interval.

    For a TCLearn-only file (the runs at convergence): final scores near 1.0
    drawn as bars show nothing, while the goal is a difference of at most 1
    point, so the differences are what is drawn, against the clean run
    (filled) and against the honest-only run (open: the `lazy` attack's run
    of the same seed, whose attackers' data never trains), with the goal's
    band of ±1 point.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in out["runs"] if "error" not in r and r["system"] == "tclearn" and not r.get("collude")
            and r["malicious_count"]]
    fractions = [(fr, name) for fr, name in FRACTIONS if any(r["fraction"] == fr for r in runs)]
    splits = [sp for sp in SPLITS if any(r["split"] == sp for r in runs)]
    if not runs or not fractions:
        return
    attacks = sorted({str(r["attack"]) for r in runs},
                     key=lambda a: ATTACK_ORDER.index(a) if a in ATTACK_ORDER else 99)
    fig, axes = plt.subplots(len(splits), 1, figsize=(12, 3.6 * len(splits)), squeeze=False)
    colours = ["tab:blue", "tab:red", "tab:green"]
    for ax, sp in zip(axes[:, 0], splits):
        ax.axhspan(-1, 1, color="0.9", zorder=0, label="goal: within 1 point of the clean run")
        ax.axhline(0, color="k", lw=0.6)
        for j, (fr, name) in enumerate(fractions):
            x0 = [i + (j - (len(fractions) - 1) / 2) * 0.3 for i in range(len(attacks))]
            for key, marker, face, dx, what in (("clean_final_score", "o", colours[j], -0.06, "clean"),
                                                ("honest_only_final_score", "s", "none", 0.06, "honest-only")):
                xs, ms, hs = [], [], []
                for x, at in zip(x0, attacks):
                    d = [100 * (r["final_score"] - r[key]) for r in runs
                         if r["split"] == sp and r["fraction"] == fr and str(r["attack"]) == at and key in r]
                    if d and not (key == "honest_only_final_score" and at == "lazy"):
                        m, h = _ci(d)
                        xs.append(x + dx)
                        ms.append(m)
                        hs.append(0.0 if h != h else h)
                if xs:
                    ax.errorbar(xs, ms, yerr=hs, fmt=marker, color=colours[j], mfc=face, capsize=3, lw=1,
                                label=f"{name}: vs the {what} run")
        ax.set_xticks(range(len(attacks)))
        ax.set_xticklabels(attacks)
        ax.set_ylabel("final score − reference (points)")
        ax.set_title(f"{out.get('task', 'digits')}, {sp}: each attack against the clean and the honest-only run "
                     f"of the same seed (mean, 95 % interval, {out['seeds']} seeds)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncol=5, loc="lower center")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def converge_table(runs: list[dict[str, Any]]) -> str:
    """The goal of `attacks.py --converge`: each attack's final score minus the clean and the honest-only run of
    its seed (mean ± 95 % interval over the seeds, points), at 20 % and 30 %, and how many means lie within 1 point.

    The honest-only run is the `lazy` attack of the same fraction and seed (its candidates are refused).
    """
    tc = [r for r in runs if r["system"] == "tclearn" and not r.get("collude") and not _wide(r)]
    attacks = sorted({str(r["attack"]) for r in tc if r["malicious_count"]},
                     key=lambda a: ATTACK_ORDER.index(a) if a in ATTACK_ORDER else 99)
    lines = ["| split, fraction | " + " | ".join(attacks) + " | means within 1 point of clean |",
             "|---" * (len(attacks) + 2) + "|"]
    for sp in SPLITS:
        for fr in LE30:
            cells, within = [], 0
            for at in attacks:
                rows = [r for r in tc if r["split"] == sp and r["fraction"] == fr and str(r["attack"]) == at
                        and "clean_final_score" in r]
                if not rows:
                    cells.append("–")
                    continue
                m, h = _ci([100 * (r["final_score"] - r["clean_final_score"]) for r in rows])
                within += m >= -1.0 - 1e-9  # a mean of whole G samples may land on the line
                honest = [100 * (r["final_score"] - r["honest_only_final_score"]) for r in rows
                          if "honest_only_final_score" in r]
                vs_honest = f" ({_ci(honest)[0]:+.2f})" if honest and at != "lazy" else ""
                cells.append(f"{m:+.2f} ± {h:.2f}{vs_honest}")
            if any(c != "–" for c in cells):
                lines.append(f"| {sp} {fr} | " + " | ".join(cells) + f" | {within} of {len(attacks)} |")
    lines.append("\n(each cell: minus the clean run of the same seed, mean ± 95 % interval; in brackets: minus the "
                 "honest-only run)")
    return "\n".join(lines)


def paired_table(before: Path, after: Path) -> str:
    """Two runs of the same jobs under two settings (`attacks.py --adaptive-lr` and without), seed by seed.

    Per split, fraction and attack held by both files: each run's final score minus the clean run of its seed
    under either setting, and the change of that difference and of the clean run itself, in points (mean ±
    95 % interval over the seeds both files hold). Paired differences cancel what a seed's split does to both.
    """
    def finals(path: Path) -> dict[tuple[str, str, str, int], float]:
        return {(r["split"], r["fraction"], str(r["attack"]), r["seed"]): 100 * r["final_score"]
                for r in _load(path)[1] if r["system"] == "tclearn" and not r.get("collude")}

    a, b = finals(before), finals(after)
    lines = [f"<!-- paired: {before} → {after} -->",
             "| split, fraction, attack | seeds | − clean, before | − clean, after | change | clean's own change |",
             "|---|---|---|---|---|---|"]
    for split, fraction, attack in sorted({k[:3] for k in a} & {k[:3] for k in b}):
        clean = CLEAN_OF.get(fraction)
        if attack == "None" or clean is None:
            continue
        seeds = sorted(s for (sp, fr, at, s) in a if (sp, fr, at) == (split, fraction, attack)
                       and all((sp, f, x, s) in d for d in (a, b) for f, x in ((fr, at), (clean, "None"))))
        if len(seeds) < 2:
            continue
        da = [a[(split, fraction, attack, s)] - a[(split, clean, "None", s)] for s in seeds]
        db = [b[(split, fraction, attack, s)] - b[(split, clean, "None", s)] for s in seeds]
        dc = [b[(split, clean, "None", s)] - a[(split, clean, "None", s)] for s in seeds]
        cells = [_ci(da), _ci(db), _ci([y - x for x, y in zip(da, db)]), _ci(dc)]
        lines.append(f"| {split} {fraction} {attack} | {len(seeds)} | "
                     + " | ".join(f"{m:+.2f} ± {h:.2f}" for m, h in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--paired" in sys.argv:  # bench/attacks_report.py --paired BEFORE.json AFTER.json
        if len(args) != 2:
            raise SystemExit("--paired needs two result files: before and after")
        print(paired_table(Path(args[0]), Path(args[1])))
        return
    path = Path(args[0]) if args else Path("bench/results/attacks.json")
    out, runs = _load(path)
    print(f"<!-- generated by bench/attacks_report.py from {path} ({out['seeds']} seed(s)) -->\n")
    print(score_table(runs), "\n")
    print(per_attack_table(runs), "\n")
    print(goal_lines(out, runs))
    if out.get("converge"):
        print(converge_table(runs), "\n")
    print(baseline_table(runs, None if "--all" in sys.argv else ("label-flip", "sign-flip", "scale")))
    if "--plot" in sys.argv:
        if any(r["system"] != "tclearn" for r in runs):
            from attacks import plot  # the grid's own figure (imports torch)

            plot(out, path.with_suffix(".png"))
        else:
            plot_deltas(out, path.with_suffix(".png"))
        print(f"wrote {path.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
