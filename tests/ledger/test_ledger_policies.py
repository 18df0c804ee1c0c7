"""Genesis carries the stopping rule and the adaptive learning-rate policy; bad values are one clear error."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from tclearn.errors import ConfigError
from tclearn.ledger.genesis import GenesisConfig, parse_config
from tclearn.ledger.policies import LearningRatePolicy, StoppingRule

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coalition.toml"


def _config() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_the_example_config_carries_a_stopping_rule_through_genesis() -> None:
    cfg, _ = parse_config(_config())
    assert cfg.stopping == StoppingRule(patience=12, min_delta=0.0) and cfg.adaptive_lr is None
    back = GenesisConfig.from_payload(cfg.to_payload())
    assert back.stopping == cfg.stopping and "adaptive_lr" not in cfg.to_payload()


def test_an_adaptive_lr_table_is_recorded_and_read_back() -> None:
    data = _config()
    data["adaptive_lr"] = {"factor": 0.25, "patience": 4, "min_lr": 1e-6}
    cfg, _ = parse_config(data)
    assert cfg.adaptive_lr == LearningRatePolicy(factor=0.25, patience=4, min_lr=1e-6)
    assert GenesisConfig.from_payload(cfg.to_payload()).adaptive_lr == cfg.adaptive_lr
    assert "epochs" not in cfg.to_payload()["adaptive_lr"]  # a policy without the cap hashes as it always did


def test_the_policy_s_epochs_cap_is_recorded_and_read_back() -> None:
    data = _config()
    data["adaptive_lr"] = {"factor": 0.5, "patience": 6, "epochs": 2}
    cfg, _ = parse_config(data)
    assert cfg.adaptive_lr == LearningRatePolicy(factor=0.5, patience=6, epochs=2)
    assert cfg.to_payload()["adaptive_lr"]["epochs"] == 2
    assert GenesisConfig.from_payload(cfg.to_payload()).adaptive_lr == cfg.adaptive_lr


def test_without_the_keys_genesis_records_nothing_new() -> None:
    data = _config()
    del data["consensus"]["stop_patience"], data["consensus"]["stop_min_delta"]
    cfg, _ = parse_config(data)
    assert cfg.stopping is None and "stopping" not in cfg.to_payload()["consensus"]


@pytest.mark.parametrize("edit, message", [
    (("consensus", "stop_patience", 0), "stop_patience"),
    (("consensus", "stop_patience", "ten"), "stop_patience"),
    (("consensus", "stop_min_delta", 1.5), "stop_min_delta"),
    (("adaptive_lr", "factor", 1.0), "adaptive_lr.factor"),
    (("adaptive_lr", "patience", -1), "adaptive_lr.patience"),
    (("adaptive_lr", "min_lr", 0), "adaptive_lr.min_lr"),
    (("adaptive_lr", "bogus", 1), "unknown adaptive_lr key"),
    (("adaptive_lr", "epochs", 0), "adaptive_lr.epochs"),
    (("adaptive_lr", "epochs", 2.5), "adaptive_lr.epochs"),
    (("adaptive_lr", "epochs", True), "adaptive_lr.epochs"),
])
def test_bad_policy_values_are_refused_naming_the_field(edit: tuple, message: str) -> None:
    data = copy.deepcopy(_config())
    section, key, value = edit
    data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
