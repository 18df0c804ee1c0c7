"""The HTTP API between nodes: mutual TLS 1.3, member allow-list, bounded requests.

    router = Router()
    router.route("POST", "/v1/messages", handler)      # handler(caller, body, query)
    server = NodeServer(router, server_context(ca, crt, key), allowlist, member_id="alice").start()
    client = PeerClient(server.url, ca, other_crt, other_key, allowlist)
    client.post_cbor("/v1/messages", {...}).raise_for_status()

Modules: `tls` (contexts, allow-list), `router`, `schema` (body validation,
response helpers), `handler` (one connection's HTTP), `server`, `client`.
"""

from tclearn.transport.client import PeerClient, Response
from tclearn.transport.errors import (
    HTTPStatusError,
    PeerNotAllowedError,
    PeerUnavailableError,
    RequestError,
    ResponseTooLargeError,
    TLSConfigError,
)
from tclearn.transport.router import Handler, HandlerResult, Query, Route, Router
from tclearn.transport.schema import (
    CBOR,
    JSON,
    OCTET,
    Field,
    PayloadHandler,
    Schema,
    Validator,
    cbor_response,
    check_safetensors,
    decode_body,
    json_response,
    safetensors_response,
    validated,
)
from tclearn.transport.server import EventLog, NodeServer, ServerLimits, log_json_line
from tclearn.transport.tls import MemberAllowList, client_context, server_context

__all__ = [
    "CBOR",
    "JSON",
    "OCTET",
    "EventLog",
    "Field",
    "HTTPStatusError",
    "Handler",
    "HandlerResult",
    "MemberAllowList",
    "NodeServer",
    "PayloadHandler",
    "PeerClient",
    "PeerNotAllowedError",
    "PeerUnavailableError",
    "Query",
    "RequestError",
    "Response",
    "ResponseTooLargeError",
    "Route",
    "Router",
    "Schema",
    "ServerLimits",
    "TLSConfigError",
    "Validator",
    "cbor_response",
    "check_safetensors",
    "client_context",
    "decode_body",
    "json_response",
    "log_json_line",
    "safetensors_response",
    "server_context",
    "validated",
]
