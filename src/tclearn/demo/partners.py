"""A partner's trainer for the coalition: real training, honest or malicious.

`PartnerTrainer` implements the driver's `Trainer` seam with
`tclearn.learning.train_increment`: it fetches the head model from the
content-addressed store, trains on a fresh batch of its own pool, keeps a
share as local test data (it joins its evaluator's L), publishes the
candidate and returns the proposal fields. A malicious partner runs one of the
attacks of `tclearn.attacks` on its data or on its increment. An honest one,
given the coalition's floor (`self_check_floor`), first scores its candidate
on G and shortens an increment the floor would refuse
(`tclearn.learning.backtrack_to_floor`).

Data ids: every batch's anonymised ids (new contributions and re-used
samples) are published to an `IdRegistry` (the list the vault keeps, DESIGN.md
§3); a validator whose check of them fails (a spent sample claimed as new, a
count that does not match, a sample of G) votes the candidate down
(`DuplicateCheckingEvaluator`). Ids account for contribution only: once its
fresh samples are contributed, a partner keeps training on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tclearn.attacks.partner import DATA_ATTACKS, MODEL_ATTACKS, AttackedPartner, flatten, unflatten
from tclearn.consensus.candidate import Candidate
from tclearn.data import DataPool
from tclearn.meter import PhaseMeter
from tclearn.data.accounting import BatchIds, BatchRefused, SpentIds, check_batch_ids
from tclearn.learning import HyperParams, ModelStore, SelfCheck, Task
from tclearn.learning.partner import Partner
from tclearn.learning.errors import InvalidModelError
from tclearn.learning.serialize import apply_increment, canonical_state, increment_hash, model_hash
from tclearn.quality import PairedScores

__all__ = ["PartnerTrainer", "IdRegistry", "DuplicateCheckingEvaluator", "CollusiveEvaluator", "Timer", "MODEL_ATTACKS", "DATA_ATTACKS"]



# The demo times its phases with the meter the driver is handed (wall time per phase, messages per type).
Timer = PhaseMeter


class IdRegistry:
    """The id lists behind every proposed candidate, and the ids counted by accepted increments.

    It stands for the off-chain list DESIGN.md §3 keeps (every node's store at
    level A): partners publish their batch's lists with the proposal's claimed
    counts and roots; validators check them (`tclearn.data.accounting`) before
    scoring; committed increments add their new ids to `spent`.
    """

    def __init__(self, test_ids: frozenset[str] = frozenset()) -> None:
        self.claims: dict[str, tuple[BatchIds, Candidate]] = {}  # by candidate model hash
        self.spent = SpentIds()
        self.test_ids = test_ids
        self.refusals: list[dict[str, Any]] = []  # what validators refused, with the id named

    def publish(self, ids: BatchIds, candidate: Candidate) -> None:
        self.claims[candidate.model_hash] = (ids, candidate)

    def accept(self, block: Any) -> None:
        """A committed increment: its new contributions are counted from now on."""
        claim = self.claims.get(block.model_hash)
        if claim is not None:
            self.spent.accept(claim[0].new)

    def check(self, model_hash: str) -> None:
        """Raise `BatchRefused` if the candidate's published lists break the accounting rules."""
        claim = self.claims.get(model_hash)
        if claim is None:
            raise BatchRefused(f"no id lists were published for candidate {model_hash}")
        ids, c = claim
        try:
            check_batch_ids(ids, sample_count=c.sample_count, data_ids_root=c.data_ids_root,
                            reused_count=c.reused_count, reused_ids_root=c.reused_ids_root,
                            spent=self.spent, test_ids=self.test_ids)
        except BatchRefused as exc:
            self.refusals.append({"model_hash": model_hash, "reason": str(exc), "data_id": exc.data_id})
            raise


class DuplicateCheckingEvaluator:
    """Wraps a learning evaluator: a candidate whose id lists break the accounting rules is invalid."""

    def __init__(self, inner: Any, registry: IdRegistry, timer: Timer) -> None:
        self.inner, self.registry, self.timer = inner, registry, timer

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores:
        try:
            self.registry.check(candidate_model_hash)
        except BatchRefused as exc:
            raise InvalidModelError(f"batch refused: {exc}") from None
        return self.timer.timed("evaluation", self.inner.evaluate, parent_model_hash, candidate_model_hash)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PartnerTrainer:
    """Trains increments for one partner (see the module docstring): the driver's `Trainer` seam around
    `tclearn.learning.Partner` (wrapped by `tclearn.attacks.AttackedPartner` for a malicious one)."""

    def __init__(self, member_id: str, task: Task, pool: DataPool, evaluator: Any, store: ModelStore,
                 hp: HyperParams, *, seed: int, registry: IdRegistry, timer: Timer, key: bytes,
                 attack: str | None = None, n_partners: int = 1, n_malicious: int = 0,
                 self_check_floor: float | None = None) -> None:
        self.member_id, self.task, self.evaluator, self.store = member_id, task, evaluator, store
        self.partner = Partner(task, pool, evaluator, hp, seed=seed, self_check_floor=self_check_floor,
                               timed=timer.timed)
        self.attacker = None if attack is None else AttackedPartner(
            self.partner, attack, rng=np.random.default_rng([seed, 0xA77AC]), key=key, n_partners=n_partners,
            n_malicious=n_malicious)
        self.self_checks: list[SelfCheck] = []  # one per proposal, for reports and tests
        self.registry, self.timer, self.attack = registry, timer, attack
        self.first_batch_ids: tuple[str, ...] | None = None
        self.proposed = 0
        self.malicious_models: set[str] = set()

    @property
    def pool(self) -> DataPool:
        return self.partner.pool

    def _hp(self, hyperparams: dict[str, Any] | None) -> HyperParams:
        return self.partner.hyperparams(hyperparams) if self.attacker is None else self.attacker.hyperparams(hyperparams)

    def train(self, parent_model_hash: str, height: int, hyperparams: dict[str, Any] | None = None) -> Candidate | None:
        hp = self._hp(hyperparams)
        pool, spent = self.pool, self.registry.spent
        if self.attacker is not None:
            if self.first_batch_ids is None:
                self.attacker.poison()
            pool, spent = self.attacker.batch_pool(spent, started=self.first_batch_ids is not None)
        fitted = self.partner.fits(hp, pool, spent)
        if fitted is None:
            return None  # too few samples to fill the coalition's minimum batch: pass the turn
        head = self.timer.timed("storage", self.store.get_state, parent_model_hash)
        turn = self.partner.increment(head, (height,), fitted, pool=pool, spent=spent,
                                      g_old=lambda: self.evaluator.global_score(parent_model_hash))
        assert turn is not None  # the batch fits (checked above)
        res = turn.result
        if self.first_batch_ids is None:
            self.first_batch_ids = res.data_ids
        if turn.check is not None:
            self.self_checks.append(turn.check)
        candidate, inc = res.candidate, res.increment
        if self.attacker is not None and self.attack in MODEL_ATTACKS:
            vec, layout = flatten(res.increment)
            inc = canonical_state(unflatten(self.attacker.forge(vec, head, turn.hp), layout))
            candidate = apply_increment(canonical_state(head), inc)
        cand_hash, vault_head = self.timer.timed("storage", self._publish, parent_model_hash, head, candidate, inc)
        # the partner's local test share joins its L (a poisoned one stays out of it) and is never trained on
        if pool is self.pool:
            self.partner.keep_local_test(res, into_l=self.attack is None)
        if self.attack is not None:
            self.malicious_models.add(cand_hash)
        self.proposed += 1
        proposal = Candidate(model_hash=cand_hash, increment_hash=increment_hash(inc), sample_count=res.sample_count,
                             data_ids_root=res.data_ids_root, reused_count=res.reused_count,
                             reused_ids_root=res.reused_ids_root, vault_head=vault_head)
        self.registry.publish(BatchIds(res.new_ids, res.reused_ids), proposal)
        return proposal

    def _publish(self, parent_model_hash: str, head: dict[str, torch.Tensor], candidate: dict[str, torch.Tensor],
                 inc: dict[str, torch.Tensor]) -> tuple[str, str]:
        """Store the candidate; (its hash, the vault journal head to anchor: "" at level A).

        Levels B/C: a vault view (`tclearn.demo.vault_models`) publishes the
        increment and the candidate through the supervisor (at C, merged into
        the clean parent: `head` is then this partner's watermarked copy).
        """
        publish = getattr(self.store, "publish_candidate", None)
        if publish is not None:
            cand_hash, vault_head = publish(parent_model_hash, head, candidate, inc)
            return str(cand_hash), str(vault_head)
        self.store.put_state(candidate)
        return model_hash(candidate), ""


class CollusiveEvaluator:
    """A colluding validator's evaluation: forged so its vote serves the malicious partners.

    It stands for a member who runs a modified node. For a candidate of a
    fellow malicious partner it reports the head's own scores as the
    candidate's (G and L: "no change", so its vote accepts); for an honest
    candidate it reports true G scores, which nobody can fault, and a
    collapse on its private L, which nobody can check (so its vote rejects).
    What stops the first trick is that G is shared: forged G scores differ
    from the honest validators' and do not count (`consensus.rules`); the
    second is the limit of what a committee can know, bounded by its size.
    """

    L_SIZE = 32

    def __init__(self, inner: Any, malicious_models: set[str]) -> None:
        self.inner, self.malicious_models = inner, malicious_models

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores:
        true = self.inner.evaluate(parent_model_hash, candidate_model_hash)
        ones = (1.0,) * self.L_SIZE
        if candidate_model_hash in self.malicious_models:
            return PairedScores(g_old=true.g_old, g_new=true.g_old, l_old=ones, l_new=ones)
        return PairedScores(g_old=true.g_old, g_new=true.g_new, l_old=ones, l_new=(0.0,) * self.L_SIZE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
