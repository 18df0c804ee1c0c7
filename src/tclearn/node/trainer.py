"""A node's trainer: the head model trained on a fresh batch of this partner's pool, as a `Candidate`.

Contribution follows the chain: a batch's new ids count as contributed
only once an accepted increment carrying them is committed (the node calls
`contributed`, and hands the trainer its spent-id registry, the coalition's
counted ids). A rejected proposal's samples stay fresh: the next batch claims
them as new again. A sample any member contributed before is never claimed as
new; it is trained on again as re-used (the validators' rule: re-used ids must
be spent, by anyone — `tclearn.data.accounting`, as the demo's partners do).

Recovery: the local-test ids (never trained on) are kept in `trained.json`;
the contributed ones are rebuilt from the chain by the node.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from collections.abc import Container, Iterable
from typing import Any, Callable

from tclearn.consensus.candidate import Candidate
from tclearn.data import DataPool
from tclearn.learning import DirectoryModelStore, Evaluator, HyperParams
from tclearn.learning.partner import Partner

__all__ = ["NodeTrainer"]


class NodeTrainer:
    """Trains the head model on a fresh batch of this partner's pool; remembers what it used.

    `wanted` (None: always) says whether to train when the turn comes: a node
    in `propose = "on-demand"` mode passes its turn until `tclearn node
    propose` asked for an increment. `self_check_floor` (the chain's max_drop;
    None: off): score the candidate on G first and shorten an increment the
    floor would refuse (`tclearn.learning.backtrack_to_floor`).
    """

    def __init__(self, task: Any, pool: DataPool, evaluator: Evaluator, store: DirectoryModelStore, hp: HyperParams,
                 seed: int, record: Path, fetch: Callable[[str], bool] | None = None,
                 wanted: Callable[[], bool] | None = None, proposed: Callable[[], None] | None = None,
                 log: Callable[..., None] | None = None, self_check_floor: float | None = None,
                 converged: Callable[[], bool] | None = None,
                 on_batch: Callable[[str, tuple[str, ...], tuple[str, ...]], None] | None = None,
                 spent: Container[str] = ()) -> None:
        self.task, self.pool, self.evaluator, self.store, self.hp = task, pool, evaluator, store, hp
        # the batch policy, seeds, training, self-check and local-test share: the one partner of tclearn.learning
        self.partner = Partner(task, pool, evaluator, hp, seed=seed, self_check_floor=self_check_floor)
        self.spent = spent  # the coalition's counted ids (the node's SpentIds), following its chain
        self.converged = converged
        self.on_batch = on_batch  # (candidate hash, new ids, re-used ids): the lists this node serves its validators
        self.self_check_floor = self_check_floor
        self.seed, self.record, self.fetch = seed, record, fetch
        self.wanted, self.proposed, self.log = wanted, proposed, log
        self.used: list[str] = []  # new ids of every proposal made (accepted or not): salts the next draw
        self.local: list[str] = []
        if record.exists():  # recovery: what we trained on before a crash (contributions come from the chain)
            saved = json.loads(record.read_text())
            self.used, self.local = list(saved["used"]), list(saved["local"])
            self.pool.hold_out(self.local)
            if self.local:
                index = {i: n for n, i in enumerate(pool.ids)}
                self.evaluator.add_local_test(pool.data.subset([index[i] for i in self.local]))

    def train(self, parent_model_hash: str, height: int, hyperparams: dict[str, Any] | None = None) -> Candidate | None:
        if self.wanted is not None and not self.wanted():
            if self.log is not None:
                self.log("turn_passed", height=height, reason="on-demand: no `tclearn node propose` request")
            return None  # on-demand: nobody asked for an increment, pass the turn
        if self.converged is not None and self.converged():
            if self.log is not None:
                self.log("turn_passed", height=height, reason="converged: the genesis stopping rule says so")
            return None
        hp = self.partner.hyperparams(hyperparams)
        # ids count contributions, they do not ration training: samples proposed before are trained
        # again (declared as re-used); only the local-test share is never trained on
        fitted = self.partner.fits(hp, spent=self.spent)
        if fitted is None:
            return None  # too few samples for the coalition's minimum batch: pass the turn
        hp = fitted
        if not self.store.has(parent_model_hash):  # a head we never evaluated (not on its committee)
            if self.fetch is None or not self.fetch(parent_model_hash):
                return None  # cannot train on a model we cannot get: pass the turn
        head = self.store.get_state(parent_model_hash)
        t0 = time.perf_counter()
        # the training seed is drawn from (seed, height, proposals made): a retried height draws anew
        turn = self.partner.increment(head, (height, len(self.used)), hp, spent=self.spent,
                                      g_old=lambda: self.evaluator.global_score(parent_model_hash))
        if turn is None:
            return None  # cannot happen: the batch fits (checked above)
        res, step = turn.result, turn.step
        if self.log is not None:
            self.log("trained", height=height, model=res.model_hash, train_s=round(time.perf_counter() - t0, 6),
                     step=step, learning_rate=hp.learning_rate, epochs=hp.epochs, parent=parent_model_hash)
        publish = getattr(self.store, "publish_candidate", None)  # level B: through the vault (node/vault_link.py)
        published = (publish(parent_model_hash, res.candidate, res.increment) if publish is not None
                     else (self.store.put_state(res.candidate), ""))
        if published is None:
            return None  # the vault refused or could not be reached (logged there): pass the turn
        h, vault_head = published
        if self.on_batch is not None:
            self.on_batch(h, res.new_ids, res.reused_ids)
        self.partner.keep_local_test(res)  # held out for good, and part of this node's L
        self.used += list(res.new_ids)  # contributed only when committed in an accepted increment (`contributed`)
        self.local += list(res.local_test_ids)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"used": self.used, "local": self.local}))
        os.replace(tmp, self.record)
        if self.proposed is not None:
            self.proposed()
        return Candidate(model_hash=h, increment_hash=res.increment_hash, sample_count=res.sample_count,
                         data_ids_root=res.data_ids_root, reused_count=res.reused_count,
                         reused_ids_root=res.reused_ids_root, vault_head=vault_head)

    def contributed(self, new_ids: Iterable[str]) -> None:
        """An accepted increment of ours carrying `new_ids` was committed: they count as contributed from now on."""
        own = set(self.pool.ids)
        self.pool.mark_contributed(i for i in new_ids if i in own)
