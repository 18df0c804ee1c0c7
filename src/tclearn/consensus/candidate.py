"""What a trainer produces from the head model: the fields of a proposal.

The seam between learning and the protocol: `member.driver` turns a `Train`
action into a call to the member's trainer and hands the core the
`Candidate` it returns (or None: the member passes its turn).
"""

from __future__ import annotations

from dataclasses import dataclass

from tclearn.errors import ConsensusError, EncodingError
from tclearn.ledger.records import EMPTY_IDS_ROOT, check_batch_counts, check_hash, check_vault_head

__all__ = ["Candidate"]


@dataclass(frozen=True)
class Candidate:
    """What a trainer produces from the head model: the fields of a proposal."""

    model_hash: str
    increment_hash: str
    sample_count: int  # new contributions (they count towards D_i)
    data_ids_root: str
    reused_count: int = 0  # samples contributed before and trained on again
    reused_ids_root: str = EMPTY_IDS_ROOT
    vault_head: str = ""  # levels B/C: the vault journal's head after the candidate was published (SEQ:HASH)

    def __post_init__(self) -> None:
        try:
            check_vault_head(self.vault_head)
            check_hash(self.model_hash, "model_hash")
            check_hash(self.increment_hash, "increment_hash")
            check_batch_counts(self.sample_count, self.data_ids_root, self.reused_count, self.reused_ids_root)
        except EncodingError as exc:
            raise ConsensusError(f"candidate: {exc}") from None
