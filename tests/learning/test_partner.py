"""The one partner (`tclearn.learning.Partner`) and an attack wrapped around it (`tclearn.attacks.AttackedPartner`)."""

from __future__ import annotations

import numpy as np
import torch

from tclearn.attacks.partner import AttackedPartner, flatten
from tclearn.data import DataPool
from tclearn.learning import DirectoryModelStore, Evaluator, get_task
from tclearn.learning.partner import Partner

KEY = b"partner-test-key-0123456789abcdef"


_DATA = None


def _partner(tmp_path, floor=None, n=None):  # type: ignore[no-untyped-def]
    global _DATA
    task = get_task("digits")
    if _DATA is None:
        _DATA = task.coalition_data(3, seed=1, test_size=150)
    data = _DATA
    pool_data = data.partners[0] if n is None else data.partners[0].subset(range(n))
    evaluator = Evaluator(task, DirectoryModelStore(tmp_path / "models"), data.test)
    return Partner(task, DataPool(pool_data, KEY), evaluator, task.default_hyperparams, seed=5,
                   self_check_floor=floor), task.initial_state(0)


def test_the_same_salt_trains_the_same_increment_and_another_salt_another(tmp_path) -> None:  # type: ignore[no-untyped-def]
    partner, head = _partner(tmp_path)
    a = partner.increment(head, (1,), partner.hyperparams())
    b = partner.increment(head, (1,), partner.hyperparams())
    c = partner.increment(head, (2,), partner.hyperparams())
    assert a is not None and b is not None and c is not None
    assert a.result.model_hash == b.result.model_hash != c.result.model_hash
    assert a.check is None and a.step == 1.0


def test_a_pool_below_the_minimum_batch_passes_and_a_small_one_trains_on_all_it_has(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hp_min = get_task("digits").default_hyperparams.min_batch_size
    tiny, head = _partner(tmp_path / "t", n=hp_min - 1)
    assert tiny.increment(head, (1,), tiny.hyperparams()) is None
    small, head = _partner(tmp_path / "s", n=hp_min + 10)
    turn = small.increment(head, (1,), small.hyperparams())
    assert turn is not None and turn.hp.batch_size == hp_min + 10 < small.hp.batch_size


def test_self_check_and_local_test_share(tmp_path) -> None:  # type: ignore[no-untyped-def]
    partner, head = _partner(tmp_path, floor=0.0)
    h = DirectoryModelStore(tmp_path / "models").put_state(head)
    turn = partner.increment(head, (1,), partner.hyperparams(), g_old=lambda: partner.evaluator.global_score(h))
    assert turn is not None and turn.check is not None and 0.0 <= turn.step <= 1.0
    partner.keep_local_test(turn.result)
    assert turn.result.local_test_ids and set(turn.result.local_test_ids) <= partner.pool.held_out


def test_an_attack_wraps_the_partner(tmp_path) -> None:  # type: ignore[no-untyped-def]
    partner, head = _partner(tmp_path, floor=0.01)
    attacker = AttackedPartner(partner, "sign-flip", rng=np.random.default_rng(0), key=KEY)
    assert partner.self_check_floor is None  # attackers never check
    hp = attacker.hyperparams()
    assert hp.distill == 0.0 and not hp.logit_adjust
    turn = partner.increment(head, (1,), hp)
    assert turn is not None
    honest = flatten(turn.result.increment)[0]
    forged = attacker.forge(honest, head, turn.hp)
    assert np.allclose(forged, -3.0 * honest)
    replay = AttackedPartner(partner, "replay", rng=np.random.default_rng(0), key=KEY)
    counted = set(partner.pool.ids[:70])
    pool, spent = replay.batch_pool(counted, started=True)
    assert len(pool) == 70 and len(spent) == 0  # counted samples, claimed as new again
    flipped = AttackedPartner(partner, "label-flip", rng=np.random.default_rng(0), key=KEY)
    before = partner.pool.data.y.clone()
    flipped.poison()
    assert not torch.equal(partner.pool.data.y, before)
