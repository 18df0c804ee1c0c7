"""Fixtures of the transport tests; they live in `tls_coalition` so tests can import its types."""

from tls_coalition import alice_server, coalition

__all__ = ["alice_server", "coalition"]
