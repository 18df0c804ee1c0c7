"""Building blocks for the site tests: sites enrolled through the CLI, exactly as a hospital would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.node.launcher import free_ports

runner = CliRunner()

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def tclearn(*args: str | Path) -> tuple[int, str]:
    """Run `tclearn ARGS` in-process; (exit code, stdout + stderr). A traceback fails the test."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes: to show that a refused command changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def coalition_toml(coalition_id: str, task: str, model_config: dict[str, Any], hyperparams: dict[str, Any],
                   members: str, ca: Path, test_set: Path, committee: int = 2, tick_ms: int = 100) -> str:
    def value(v: Any) -> str:
        return json.dumps(v)

    config = "\n".join(f"{k} = {value(v)}" for k, v in model_config.items())
    hp = "\n".join(f"{k} = {value(v)}" for k, v in hyperparams.items())
    return (f'[coalition]\nid = "{coalition_id}"\n\n[model]\ntask = "{task}"\nseed = 5\n[model.config]\n{config}\n\n'
            f"[hyperparams]\n{hp}\n\n[consensus]\nlambda = 0.9\ncommittee_size = {committee}\n\n"
            f'[kit]\nca = "{ca}"\ntest_set = "{test_set}"\ntick_ms = {tick_ms}\n\n{members}')


DIGITS_HP = {"learning_rate": 0.003, "optimizer": "adam", "epochs": 4, "min_batch_size": 64}


def enrol(root: Path, names: list[str], hosts: tuple[str, ...] = HOSTS, pki: Path | None = None) -> tuple[Path, str]:
    """`site init` for each name, `pki sign` of each request; (the PKI dir, the [[members]] entries)."""
    pki = pki or root / "pki"
    if not (pki / "ca.crt").exists():
        code, out = tclearn("pki", "init", pki)
        assert code == 0, out
    entries = []
    for name, host in zip(names, hosts):
        code, out = tclearn("site", "init", name, "--host", host, "--port", str(free_ports(1, host)[0]),
                            "--dir", root / name)
        assert code == 0, out
        code, out = tclearn("pki", "sign", root / name / f"{name}.request.toml", "--ca", pki)
        assert code == 0, out
        entries.append(out[out.index("[[members]]"):])
    return pki, "\n".join(entries)


def write_decathlon(root: Path, cases: int, seed: int, shape: tuple[int, int, int] = (20, 18, 12)) -> Path:
    """A small synthetic Decathlon folder: a bright-edged dark block in noise, labelled 1."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(seed)
    for i in range(cases):
        img = rng.normal(40.0, 20.0, size=shape).astype(np.float32)
        lab = np.zeros(shape, dtype=np.uint8)
        x0, y0, z0 = (int(rng.integers(2, s // 3)) for s in shape)
        lab[x0: x0 + shape[0] // 2, y0: y0 + shape[1] // 2, z0: z0 + shape[2] // 2] = 1
        img[lab == 1] = -40.0
        nib.save(nib.Nifti1Image(img, np.eye(4)), str(root / "imagesTr" / f"case_{i:03d}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, np.eye(4)), str(root / "labelsTr" / f"case_{i:03d}.nii.gz"))
    return root
