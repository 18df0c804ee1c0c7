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


def _members(data: dict) -> list[str]:
    return [m["id"] for m in data["members"]]


def test_turn_weights_are_recorded_and_read_back_and_absent_by_default() -> None:
    data = _config()
    assert "turn_weights" not in parse_config(data)[0].to_payload()["consensus"]  # equal turns: nothing recorded
    weights = {m: 3 * (i + 1) for i, m in enumerate(_members(data))}
    data["consensus"]["turn_weights"] = weights
    cfg, _ = parse_config(data)
    assert cfg.turn_weights == weights and cfg.to_payload()["consensus"]["turn_weights"] == weights
    assert GenesisConfig.from_payload(cfg.to_payload()).turn_weights == weights


def test_the_example_s_commented_turn_weights_line_is_a_valid_config() -> None:
    text = EXAMPLE.read_text()
    assert "# turn_weights = " in text
    cfg, _ = parse_config(tomllib.loads(text.replace("# turn_weights = ", "turn_weights = ")))
    assert cfg.turn_weights is not None and set(cfg.turn_weights) == {m.member_id for m in cfg.members}


@pytest.mark.parametrize("weights, message", [
    ("heavy", "must be a table"),
    ({1: 1}, "keyed by member ids"),
    ({"nobody": 1}, "names 'nobody', not a member"),
    ("first:0", "must be a positive integer"),
    ("first:2.5", "must be a positive integer"),
    ("first:True", "must be a positive integer"),
    ("first:-3", "must be a positive integer"),
    ("drop-last", "must name every member; missing"),
    ("first:10001", "sum to 10"),
])
def test_bad_turn_weights_are_refused_naming_the_field(weights: object, message: str) -> None:
    data = copy.deepcopy(_config())
    members = _members(data)
    table: object = weights
    if isinstance(weights, str) and weights.startswith("first:"):
        table = {m: 1 for m in members}
        table[members[0]] = {"0": 0, "2.5": 2.5, "True": True, "-3": -3, "10001": 10001}[weights.split(":")[1]]
    elif weights == "drop-last":
        table = {m: 1 for m in members[:-1]}
    data["consensus"]["turn_weights"] = table
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
    payload = parse_config(_config())[0].to_payload()
    payload["consensus"]["turn_weights"] = table  # a peer's genesis payload is checked the same way
    with pytest.raises(ConfigError, match=message):
        GenesisConfig.from_payload(payload)


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
