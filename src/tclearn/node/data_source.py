"""What a node trains and validates on: this partner's pool data and G.

Trials derive both from the coalition seed (`partner_data`: the same on every
node); `data_key` keys the pool's sample ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tclearn.learning import get_task

__all__ = ["data_key", "partner_data"]


def data_key(seed: int) -> bytes:
    return hashlib.sha256(f"tclearn-node-data-key/{seed}".encode()).digest()


def partner_data(task_name: str, partners: int, seed: int, index: int) -> tuple[Any, Any]:
    """(this partner's pool data, G): derived from the coalition seed, the same on every node."""
    data = get_task(task_name).coalition_data(partners, seed=seed)
    return data.partners[index], data.test
