"""A node's HTTP API (connection threads): they only validate and queue, never wait for the core.

`POST /v1/messages` decodes the wire message first: a malformed body is
refused with 400 and never reaches the core. `GET /v1/status` answers from a
snapshot the core thread refreshes, so it never waits for training.
`build_router` is where a routed feature (a dashboard, say) adds its routes.
"""

from __future__ import annotations

import hashlib
import queue
import re
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from tclearn.consensus.messages import MAX_MESSAGE_BYTES
from tclearn.consensus.wire import decode_message
from tclearn.errors import RemoteProtocolError
from tclearn.learning.errors import HashMismatchError, InvalidModelError
from tclearn.node.batch_ids import ids_to_wire
from tclearn.node.governance import GOVERNANCE_BODY_MAX_BYTES, GovernanceRefused
from tclearn.transport import RequestError, Router, cbor_response, json_response, safetensors_response

if TYPE_CHECKING:
    from tclearn.node.runtime import Node

__all__ = ["BLOCKS_PER_ANSWER", "NodeAPI", "build_router"]

BLOCKS_PER_ANSWER = 32  # GET /v1/blocks?from=i answers blocks i..i+31 at most
GOVERNANCE_ANSWER_S = 20.0  # a governance request waits this long for the core thread's answer, then is left queued


class NodeAPI:
    """The handlers of one node's routes; they read the node's stores and queue into its inbox."""

    def __init__(self, node: "Node") -> None:
        self.node = node

    def on_message(self, caller: str, body: bytes, query: Any) -> Any:
        node = self.node
        try:
            message = decode_message(body)
        except RemoteProtocolError as exc:
            node.log("message_refused", sender=caller, reason=str(exc)[:200])
            raise RequestError(400, "invalid message") from None
        if node.trace:
            node.log("msg_in", sender=caller, kind=type(message).__name__, id=hashlib.sha256(body).hexdigest()[:12])
        try:
            node.inbox.put_nowait((caller, message))
        except queue.Full:
            raise RequestError(503, "inbox full") from None
        return json_response({"accepted": True}, 202)

    def on_model(self, caller: str, body: bytes, query: Any) -> Any:
        h = query.get("model_hash", "")
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            raise RequestError(400, "a model hash is 64 lowercase hex digits")
        if getattr(self.node, "vault", None) is not None:  # level B: only the supervisor's vault serves models
            raise RequestError(404, "level B: models are served by the supervisor's vault only")
        models = self.node.models
        try:
            if not models.has(h):
                raise RequestError(404, "no such model")
            return safetensors_response(models.get(h))
        except (ValueError, OSError, InvalidModelError, HashMismatchError):
            raise RequestError(404, "no such model") from None

    def on_blocks(self, caller: str, body: bytes, query: Any) -> Any:
        try:
            start = int(query.get("from", "0"))
        except ValueError:
            raise RequestError(400, "from must be an integer") from None
        # a ranged read of at most BLOCKS_PER_ANSWER blocks, outside the core lock (the store has its own)
        blocks = self.node.store.blocks_range(max(0, start), BLOCKS_PER_ANSWER)
        return cbor_response({"blocks": [b.to_bytes() for b in blocks]})

    def on_batch_ids(self, caller: str, body: bytes, query: Any) -> Any:
        """The id lists of one of our proposals or of a committed increment (node/batch_ids.py)."""
        h = query.get("model_hash", "")
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            raise RequestError(400, "a model hash is 64 lowercase hex digits")
        ids = self.node.batch_ids.get(h)
        if ids is None:
            raise RequestError(404, "no id lists for this model")
        return cbor_response(ids_to_wire(ids))

    def on_status(self, caller: str, body: bytes, query: Any) -> Any:
        return json_response(self.node.status())

    def on_propose(self, caller: str, body: bytes, query: Any) -> Any:
        """`tclearn node propose`: only the node's own operator (its own certificate) may ask."""
        node = self.node
        if caller != node.config.member_id:
            node.log("propose_refused", caller=caller)
            raise RequestError(403, "only this node's own certificate may ask it to propose")
        if node.config.propose == "never":
            raise RequestError(409, "this node does not propose (node.propose = \"never\")")
        return json_response(node.request_proposal(), 202)

    def on_governance(self, caller: str, body: bytes, query: Any) -> Any:
        """`tclearn revert|hyperparams|membership`: the node's own certificate only; see node/governance.py."""
        node = self.node
        if caller != node.config.member_id:
            node.log("governance_refused", caller=caller, reason="not this node's own certificate")
            raise RequestError(403, "only this node's own certificate may ask it for a governance request")
        try:
            answer = node.governance.accept(body).result(timeout=GOVERNANCE_ANSWER_S)
        except GovernanceRefused as exc:
            raise RequestError(exc.status, str(exc)) from None
        except FutureTimeout:
            return json_response({"queued": True, "detail": "the core is busy: the request is queued"}, 202)
        return json_response(answer, 202)


def build_router(node: "Node") -> Router:
    """Every route of a node, with its body limit."""
    api = NodeAPI(node)
    router = Router()
    router.route("POST", "/v1/messages", api.on_message, max_body_bytes=MAX_MESSAGE_BYTES)
    router.route("GET", "/v1/models/{model_hash}", api.on_model)
    router.route("GET", "/v1/blocks", api.on_blocks)
    router.route("GET", "/v1/status", api.on_status)
    router.route("GET", "/v1/batches/{model_hash}", api.on_batch_ids)
    router.route("POST", "/v1/propose", api.on_propose, max_body_bytes=1024)
    router.route("POST", "/v1/governance", api.on_governance, max_body_bytes=GOVERNANCE_BODY_MAX_BYTES)
    from tclearn.dashboard.for_node import mount_node  # the read-only dashboard's pages (GET /, /blocks/…)
    mount_node(router, node)
    return router
