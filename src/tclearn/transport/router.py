"""A small HTTP router: (method, path pattern) -> handler.

A handler is `handler(caller, body, query) -> (status, content_type, body)`:
`caller` is the member id the TLS layer proved (never taken from the request),
`body` the raw request bytes (already size-checked), `query` the query-string
parameters and the path's `{name}` segments in one flat `dict[str, str]`.
Keeping handlers to plain bytes and tuples keeps them testable without a
socket: a test calls `router.dispatch(...)` or the handler itself.

Path parameters match one segment of `[A-Za-z0-9._:-]` characters only, so a
value can be used as a content hash or a member id without ever reaching a
file system as `..` or `/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tclearn.transport.errors import RequestError

__all__ = ["Handler", "HandlerResult", "Query", "Route", "RouteMatch", "Router"]

HandlerResult = tuple[int, str, bytes]


class Query(dict[str, str]):
    """Query-string and path parameters, and the request's Content-Type beside them.

    The content type is an attribute, not a key, so no parameter can fake it;
    a handler that only wants parameters treats this as a plain mapping.
    """

    def __init__(self, items: Mapping[str, str] | None = None, content_type: str = "") -> None:
        super().__init__(items or {})
        self.content_type = content_type


Handler = Callable[[str, bytes, Query], HandlerResult]

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
_SEGMENT = r"[A-Za-z0-9._:-]+"
_PARAM_RE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class Route:
    """One route. `max_body_bytes` overrides the server's limit (a model upload needs more)."""

    method: str
    pattern: str
    handler: Handler
    max_body_bytes: int | None
    regex: re.Pattern[str]


@dataclass(frozen=True)
class RouteMatch:
    """A matched route and the values of its `{name}` path segments."""

    route: Route
    params: dict[str, str]

    def call(self, caller: str, body: bytes, query: Mapping[str, str]) -> HandlerResult:
        """Call the handler with the query and the path parameters merged."""
        merged = Query(query, getattr(query, "content_type", ""))
        for name, value in self.params.items():
            if name in merged:
                raise RequestError(400, f"query parameter {name!r} clashes with the path")
            merged[name] = value
        return self.route.handler(caller, body, merged)


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    parts = []
    for segment in pattern.strip("/").split("/") if pattern != "/" else []:
        param = _PARAM_RE.match(segment)
        if param:
            parts.append(f"(?P<{param.group(1)}>{_SEGMENT})")
        elif re.fullmatch(_SEGMENT, segment):
            parts.append(re.escape(segment))
        else:
            raise ValueError(f"bad segment {segment!r} in route pattern {pattern!r}")
    return re.compile("^/" + "/".join(parts) + "$")


class Router:
    """Routes by method and path; 404 for an unknown path, 405 for a known path and wrong method."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(self, method: str, pattern: str, handler: Handler, *, max_body_bytes: int | None = None) -> Route:
        """Register `handler` for `method` on `pattern` (e.g. `/v1/models/{model_hash}`)."""
        method = method.upper()
        if method not in _METHODS:
            raise ValueError(f"unsupported method {method!r}; use one of {sorted(_METHODS)}")
        if max_body_bytes is not None and max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        if any(r.method == method and r.pattern == pattern for r in self._routes):
            raise ValueError(f"{method} {pattern} is already routed")
        route = Route(method, pattern, handler, max_body_bytes, _compile(pattern))
        self._routes.append(route)
        return route

    def get(self, pattern: str, *, max_body_bytes: int | None = None) -> Callable[[Handler], Handler]:
        """Decorator form of `route("GET", pattern, ...)`."""
        return self._decorator("GET", pattern, max_body_bytes)

    def post(self, pattern: str, *, max_body_bytes: int | None = None) -> Callable[[Handler], Handler]:
        """Decorator form of `route("POST", pattern, ...)`."""
        return self._decorator("POST", pattern, max_body_bytes)

    def _decorator(self, method: str, pattern: str, max_body_bytes: int | None) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.route(method, pattern, handler, max_body_bytes=max_body_bytes)
            return handler

        return register

    def match(self, method: str, path: str) -> RouteMatch:
        """The route for `method path`, or RequestError 404 / 405."""
        allowed = []
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return RouteMatch(route, found.groupdict())
            allowed.append(route.method)
        if allowed:
            raise RequestError(405, f"{method} not allowed on {path}; allowed: {', '.join(sorted(set(allowed)))}")
        raise RequestError(404, f"no such endpoint: {path}")

    def dispatch(self, method: str, path: str, caller: str, body: bytes, query: Mapping[str, str]) -> HandlerResult:
        """Match and call, without a socket: for tests and in-process use."""
        return self.match(method, path).call(caller, body, query)
