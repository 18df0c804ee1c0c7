"""A real node process that ignores the coalition's spent ids: `python duplicating_node.py node.toml`.

The node is the production one (`tclearn.node.runtime.serve`); only its
trainer is handed an empty spent-id registry instead of the node's, the way a
member running a modified node would: samples another member already
contributed are claimed as new. The honest nodes' validators must refuse such
a batch, naming the sample (`tclearn.node.batch_ids.IdCheckingEvaluator`).
"""

from __future__ import annotations

import sys
from typing import Any

from tclearn.node import runtime
from tclearn.node.trainer import NodeTrainer


def _forgetful_trainer(*args: Any, **kwargs: Any) -> NodeTrainer:
    kwargs["spent"] = ()  # the coalition's counted ids are not consulted
    return NodeTrainer(*args, **kwargs)


def main(config: str) -> None:
    runtime.NodeTrainer = _forgetful_trainer  # type: ignore[misc,assignment]
    runtime.serve(config)


if __name__ == "__main__":
    main(sys.argv[1])
