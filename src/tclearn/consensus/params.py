"""The protocol's knobs, in ticks (the driver decides how long a tick lasts).

Every timeout grows with the round (`timeout_increment_ticks` a round) up to
`timeout_max_ticks`: after the network settles, rounds eventually last longer
than a message takes, which is what liveness needs. Every buffer has a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from tclearn.errors import ConsensusError

__all__ = ["ConsensusParams"]


@dataclass(frozen=True)
class ConsensusParams:
    propose_timeout_ticks: int = 8  # wait for a round's proposal
    prevote_timeout_ticks: int = 4  # after a quorum of mixed prevotes
    precommit_timeout_ticks: int = 4  # after a quorum of mixed precommits
    timeout_increment_ticks: int = 2  # added per round
    timeout_max_ticks: int = 40
    proposal_timeout_ticks: int = 60  # before the next proposer in turn may step in
    quality_grace_ticks: int = 3  # a general waits this long for more quality votes before a rejection
    resend_ticks: int = 20  # re-send own votes of the height (lost messages)
    status_ticks: int = 100  # announce our height to every member
    catch_up_retry_ticks: int = 20
    max_clock_skew_ms: int = 10_000  # a block's timestamp may lead our clock by this much
    round_window: int = 64  # rounds ahead of ours whose messages we keep
    future_buffer_max: int = 512  # messages kept for the next height
    blocks_per_response_max: int = 32
    evidence_max: int = 256  # evidence records kept per height
    request_heights_max: int = 8  # heights a governance request is re-issued for

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConsensusError(f"ConsensusParams.{name} must be an integer ≥ 1")

    def timeout(self, base: int, round_: int) -> int:
        return min(self.timeout_max_ticks, base + self.timeout_increment_ticks * round_)
