"""Access policy: members, roles, revocation, per-version grants, use vs download, quotas by strength."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tclearn.vault.errors import VaultError
from tclearn.vault.policy import POLICY_FORMAT, check_policy, decide, quota_for

V1, V2 = "a1" * 32, "b2" * 32
NOW = 1_000_000


def policy() -> dict[str, Any]:
    return check_policy({
        "format": POLICY_FORMAT,
        "roles": {"partner": ["use", "publish"], "validator": ["use"], "exporter": ["use", "download"]},
        "members": {"h1": {"roles": ["partner"]}, "h2": {"roles": ["validator"]}, "h3": {"roles": ["exporter"]},
                    "h4": {"roles": ["exporter"], "revoked": True}, "h5": {"roles": []}},
        "grants": [{"member": "h1", "version": V1, "actions": ["download"]},
                   {"member": "h5", "version": "*", "actions": ["use"], "until_ms": NOW + 10}],
        "quotas": {"download": {"base": 1, "per_strength": 10}},
    })


def test_roles_separate_use_from_download() -> None:
    p = policy()
    assert decide(p, "h2", "use", V1, NOW, 0.2, 0).granted
    d = decide(p, "h2", "download", V1, NOW, 0.2, 0)
    assert not d.granted and "no right to download" in d.reason
    assert not decide(p, "h2", "publish", V1, NOW, 0.2, 0).granted
    assert decide(p, "h1", "publish", V1, NOW, 0.2, 0).granted


def test_per_version_grants() -> None:
    p = policy()
    assert decide(p, "h1", "download", V1, NOW, 0.2, 0).granted
    assert not decide(p, "h1", "download", V2, NOW, 0.2, 0).granted  # granted on V1 only


def test_grants_expire() -> None:
    p = policy()
    assert decide(p, "h5", "use", V2, NOW, 0.2, 0).granted
    assert not decide(p, "h5", "use", V2, NOW + 10, 0.2, 0).granted


def test_revoked_and_unknown_members_may_do_nothing() -> None:
    p = policy()
    for action in ("use", "download", "publish"):
        assert decide(p, "h4", action, V1, NOW, 0.5, 0).reason == "h4 is revoked"
        assert not decide(p, "mallory", action, V1, NOW, 0.5, 0).granted
    assert not decide(p, "h3", "delete", V1, NOW, 0.5, 0).granted


def test_quotas_follow_strength() -> None:
    p = policy()
    assert quota_for(p, "download", 0.1) == 2 and quota_for(p, "download", 0.5) == 6
    assert quota_for(p, "use", 0.5) is None  # no quota on use
    assert decide(p, "h3", "download", V1, NOW, 0.1, 1).granted
    weak = decide(p, "h3", "download", V1, NOW, 0.1, 2)
    assert not weak.granted and "quota" in weak.reason
    assert decide(p, "h3", "download", V1, NOW, 0.5, 2).granted  # a stronger contributor may download more


@pytest.mark.parametrize("edit", [
    lambda p: p.pop("format"),
    lambda p: p.__setitem__("extra", 1),
    lambda p: p["roles"].__setitem__("partner", ["use", "steal"]),
    lambda p: p["members"]["h1"].__setitem__("roles", ["king"]),
    lambda p: p["members"].__setitem__("Bad Id", {"roles": []}),
    lambda p: p["members"]["h1"].__setitem__("revoked", "yes"),
    lambda p: p["grants"].append({"member": "zed", "version": V1, "actions": ["use"]}),
    lambda p: p["grants"].append({"member": "h1", "version": "v1", "actions": ["use"]}),
    lambda p: p["quotas"].__setitem__("download", {"base": -1}),
])
def test_invalid_policies_are_refused(edit: Any) -> None:
    p = copy.deepcopy(policy())
    edit(p)
    with pytest.raises(VaultError):
        check_policy(p)


def test_the_example_policy_is_valid() -> None:
    from pathlib import Path

    from tclearn.vault.policy import load_policy_text

    p = load_policy_text((Path(__file__).parents[2] / "examples" / "vault" / "policy.json").read_text())
    assert decide(p, "hospital-c", "use", V1, NOW, 0.5, 0).reason == "hospital-c is revoked"
    assert not decide(p, "hospital-b", "download", V1, NOW, 0.5, 0).granted
    assert decide(p, "hospital-a", "download", V1, NOW, 0.5, 0).granted
