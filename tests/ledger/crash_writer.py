"""Child process of the kill -9 test: append signed blocks to a chain forever.

    python crash_writer.py CHAIN_DB RNG_SEED

Continues the chain in CHAIN_DB (or founds it), and prints each block's index,
flushed, only after `append` has returned: every printed index must survive
a SIGKILL at any instant.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from chainmaker import ChainMaker  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore  # noqa: E402


def main() -> None:
    path, rng_seed = sys.argv[1], int(sys.argv[2])
    maker = ChainMaker(rng=random.Random(rng_seed))
    store = SQLiteChainStore(path)
    if store.height() < 0:
        store.append(maker.genesis())
        print(0, flush=True)
    else:
        maker.adopt(list(store))
    print("ready", flush=True)
    while True:
        block = maker.hyperparams()
        store.append(block)
        print(block.index, flush=True)


if __name__ == "__main__":
    main()
