"""`tclearn hyperparams set --wait` reports the block that records *its* request.

The node's adaptive learning-rate policy asks for `hyperparams` blocks in the
same member's name; when one lands first, the command must keep waiting for
the block carrying what the operator asked (a fresh-clone CI run once read
the policy's block as the operator's and checked training against it).
"""

from __future__ import annotations

from typing import Any

from tclearn.cli.governance import _wait_for_block
from tclearn.ledger.block import Block

H = "ab" * 32


def _block(index: int, kind: str, payload: dict[str, Any], contributor: str = "m1") -> bytes:
    return Block(index=index, timestamp=index, kind=kind, prev_hash=H, model_hash=H, contributor=contributor,
                 strengths={"m1": 1.0}, data_ids_root=H, quality_votes=(), block_votes=(), general="m0",
                 payload={**payload, "requester": contributor, "request_signature": b"s"}).to_bytes()


class _Chain:
    """A node's `GET /v1/blocks?from=` over fixed blocks."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks

    def get(self, path: str, query: dict[str, str]) -> Any:
        assert path == "/v1/blocks"
        start = int(query["from"])
        chain = self

        class _Response:
            def raise_for_status(self) -> "_Response":
                return self

            def cbor(self) -> dict[str, Any]:
                return {"blocks": [b for b in chain.blocks if Block.from_bytes(b).index >= start]}

        return _Response()


def test_the_policys_block_in_the_same_name_is_not_taken_for_the_operators() -> None:
    chain = _Chain([
        _block(5, "hyperparams", {"hyperparams": {"learning_rate": 0.00075}}),  # the adaptive policy's
        _block(6, "hyperparams", {"hyperparams": {"learning_rate": 0.0123}}, contributor="m2"),  # someone else's
        _block(7, "hyperparams", {"hyperparams": {"learning_rate": 0.0123, "epochs": 2}}),
    ])
    asked = {"hyperparams": {"learning_rate": 0.0123, "epochs": 2}}
    found = _wait_for_block(chain, "m1", "hyperparams", asked, 4, wait=2.0)
    assert found is not None and found["index"] == 7


def test_revert_and_membership_blocks_are_matched_on_what_was_asked() -> None:
    chain = _Chain([
        _block(3, "revert", {"target": 1}),
        _block(4, "revert", {"target": 2}),
        _block(5, "membership", {"add": [], "remove": ["m2"]}),
        _block(6, "membership", {"add": [], "remove": ["m3"]}),
    ])
    assert _wait_for_block(chain, "m1", "revert", {"target": 2}, 0, wait=2.0)["index"] == 4  # type: ignore[index]
    removal = {"add": [], "remove": ["m3"]}
    assert _wait_for_block(chain, "m1", "membership", removal, 0, wait=2.0)["index"] == 6  # type: ignore[index]


def test_no_matching_block_times_out() -> None:
    chain = _Chain([_block(5, "hyperparams", {"hyperparams": {"learning_rate": 0.00075}})])
    assert _wait_for_block(chain, "m1", "hyperparams", {"hyperparams": {"epochs": 2}}, 0, wait=0.6) is None
