"""`tclearn revert`, `tclearn hyperparams set`, `tclearn membership add|remove`: govern a running coalition.

Each command asks the member's own running node (mutual TLS, with the
certificate of its `node.toml`) to sign a governance request and send it to
the validators of the height it works on (`POST /v1/governance`, handled by
`tclearn.node.governance`). The request becomes a certified block like any
other; `--wait SECONDS` polls the node's chain (`GET /v1/blocks`) and prints
the block that records it.

`tclearn membership add --id ID --identity-pub ID.pub --tls-cert ID.crt --url
https://host:port` adds a site that joins the running network: the block
carries its certificate's fingerprint (checked here against the coalition's CA
and the id) and its URL, every node admits it and sends to it from that block
on, and its own node, started with genesis and the members' URLs, catches up
(`tclearn.node.joining`).

Exit codes (`tclearn.cli.errors`): 0 asked (or recorded), 2 bad arguments or
config, 5 node unreachable, 7 the node or the chain refused the request (the
reason is printed; nothing stored changed), 30 no block within --wait (the
node keeps renewing the request for a few heights).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import typer

from tclearn.cli.errors import EXIT_PROTOCOL, EXIT_TRANSPORT, EXIT_USAGE, EXIT_WAIT_TIMEOUT, fail, handle_errors

__all__ = ["hyperparams_app", "membership_app", "revert_command", "parse_assignments"]

hyperparams_app = typer.Typer(help="Change the coalition's hyper-parameters by a certified block.",
                              no_args_is_help=True)
membership_app = typer.Typer(help="Add or remove members by a certified block (the founder only).",
                             no_args_is_help=True)

_CONFIG = typer.Option(..., "--config", exists=True, dir_okay=False, help="Your node's node.toml.")
_WAIT = typer.Option(0.0, "--wait", min=0.0, help="Seconds to wait for the block that records the request "
                                                  "(0: do not wait).")
_TYPES: dict[str, type] = {"learning_rate": float, "optimizer": str, "epochs": int, "min_batch_size": int}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs, typed by key (a usage error for an unknown key or a value of the wrong type)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"expected KEY=VALUE, got {item!r}", EXIT_USAGE)
        if key not in _TYPES:
            fail(f"unknown hyper-parameter {key!r}: the chain sets {', '.join(sorted(_TYPES))}", EXIT_USAGE)
        try:
            out[key] = _TYPES[key](value.strip())
        except ValueError:
            fail(f"{key} must be {'a number' if _TYPES[key] is float else 'an integer'}, got {value!r}", EXIT_USAGE)
    if not out:
        fail("name at least one KEY=VALUE", EXIT_USAGE)
    return out


def _ask(config: Path, kind: str, fields: dict[str, Any], wait: float) -> None:
    from tclearn.cli.node import _self_client

    cfg, client = _self_client(config)
    request = {"request_id": secrets.token_hex(16), "kind": kind, **fields}
    try:
        response = client.post_json("/v1/governance", request)
        answer = response.json()
    except Exception as exc:
        fail(f"node {cfg.member_id} at {cfg.url} did not answer: {exc}", EXIT_TRANSPORT)
    if not response.ok:
        reason = answer.get("error", answer) if isinstance(answer, dict) else answer
        fail(f"{kind} refused: {reason}", EXIT_PROTOCOL if response.status in (403, 409) else EXIT_USAGE)
    typer.echo(json.dumps(answer))
    if wait:
        block = _wait_for_block(client, cfg.member_id, kind, fields, int(answer.get("head", 0)), wait)
        if block is None:
            fail(f"no {kind} block from {cfg.member_id} within {wait:g} s (the node renews the request "
                 "for a few heights)", EXIT_WAIT_TIMEOUT)
        typer.echo(json.dumps({"recorded": block}))


def _wait_for_block(client: Any, member: str, kind: str, fields: dict[str, Any], after: int,
                    wait: float) -> dict[str, Any] | None:
    """The first block after index `after` that records this request, polled from the node's chain.

    Kind and requester are not enough: the node's adaptive learning-rate
    policy asks for `hyperparams` blocks in the same member's name, and one
    of those may land first. The block must carry what was asked (`fields`).
    """
    from tclearn.ledger.block import Block

    deadline = time.monotonic() + wait
    start = after + 1
    while time.monotonic() < deadline:
        try:
            raw = client.get("/v1/blocks", {"from": str(start)}).raise_for_status().cbor()["blocks"]
        except Exception:
            raw = []  # a busy node: ask again
        for data in raw:
            block = Block.from_bytes(bytes(data))
            start = block.index + 1
            if block.kind == kind and block.contributor == member and _records(block, fields):
                return {"index": block.index, "kind": block.kind, "hash": block.block_hash,
                        "model_hash": block.model_hash, "payload": _printable(block.payload)}
        if not raw:
            time.sleep(0.5)
    return None


def _records(block: Any, fields: dict[str, Any]) -> bool:
    """Whether governance `block` carries the body of the request made with `fields`."""
    from tclearn.consensus.governance import request_of_block
    from tclearn.errors import ConsensusError

    try:
        body = request_of_block(block).body
        if "add" in fields:  # membership: additions compared by id (the block holds their keys in its own form)
            return [a["id"] for a in body["add"]] == [a["id"] for a in fields["add"]] and \
                body["remove"] == fields["remove"]
    except (ConsensusError, KeyError, TypeError):
        return False
    return bool(body == fields)


def _printable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


@handle_errors
def revert_command(
    to: int = typer.Option(..., "--to", min=0, help="Index of the block whose model becomes the head model."),
    config: Path = _CONFIG,
    wait: float = _WAIT,
) -> None:
    """Revert the head model to block INDEX's (members the genesis authorises only).

    Strengths and data ids are unchanged: the samples of the increments a revert
    outshines stay counted and spent (see `tclearn.node.governance`).
    """
    _ask(config, "revert", {"target": to}, wait)


@hyperparams_app.command("set")
@handle_errors
def hyperparams_set(
    assignments: list[str] = typer.Argument(..., help="KEY=VALUE: learning_rate, optimizer, epochs, "
                                                      "min_batch_size."),
    config: Path = _CONFIG,
    wait: float = _WAIT,
) -> None:
    """Set hyper-parameters for the increments after the block (within the genesis rules)."""
    _ask(config, "hyperparams", {"hyperparams": parse_assignments(assignments)}, wait)


def _public_key(identity_pub: Path | None, public_key: str) -> str:
    if identity_pub is not None:  # `<id>.pub`, as `save_identity` writes it: the raw key in hex
        return identity_pub.read_text().strip().lower()
    return public_key.strip().lower()


@membership_app.command("add")
@handle_errors
def membership_add(
    member: str = typer.Option(..., "--id", help="The new member's id."),
    public_key: str = typer.Option("", "--public-key", help="Its Ed25519 public key (64 hex digits)."),
    identity_pub: Path = typer.Option(None, "--identity-pub", exists=True, dir_okay=False,
                                      help="Or its public identity file."),
    tls_cert: Path = typer.Option(None, "--tls-cert", exists=True, dir_okay=False,
                                  help="A site joining the running network: its TLS certificate (PEM or DER, "
                                       "issued by the coalition's CA, CN = --id); every node admits it from "
                                       "the membership block on."),
    url: str = typer.Option("", "--url", help="With --tls-cert: the site's https://host:port."),
    config: Path = _CONFIG,
    wait: float = _WAIT,
) -> None:
    """Add a member (the founder only); with --tls-cert and --url, a site that joins without any restart."""
    key = _public_key(identity_pub, public_key)
    if not key:
        fail("give --public-key or --identity-pub", EXIT_USAGE)
    addition: dict[str, Any] = {"id": member, "public_key": key}
    if (tls_cert is None) != (not url):
        fail("give both --tls-cert and --url (a site joining the running network), or neither", EXIT_USAGE)
    if tls_cert is not None:
        addition["cert_fingerprint"] = _joining_fingerprint(tls_cert, member, config)
        addition["url"] = url
    _ask(config, "membership", {"add": [addition], "remove": []}, wait)


def _joining_fingerprint(tls_cert: Path, member: str, config: Path) -> str:
    """The fingerprint of a joining site's certificate, once it is shown to be the coalition CA's, for `member`."""
    from datetime import UTC, datetime

    from tclearn.node.config import NodeConfig
    from tclearn.pki.certs import cert_fingerprint, verify_member_cert
    from tclearn.pki.errors import PKIError

    cfg = NodeConfig.load(config)
    try:
        named = verify_member_cert(tls_cert.read_bytes(), cfg.ca_cert.read_bytes(), datetime.now(UTC))
    except (PKIError, OSError, ValueError) as exc:
        fail(f"--tls-cert {tls_cert}: not a member certificate of this coalition's CA: {exc}", EXIT_USAGE)
    if named != member:
        fail(f"--tls-cert {tls_cert} names {named!r}, not {member!r}", EXIT_USAGE)
    return str(cert_fingerprint(tls_cert.read_bytes()))


@membership_app.command("remove")
@handle_errors
def membership_remove(
    member: str = typer.Option(..., "--id", help="The member to remove."),
    config: Path = _CONFIG,
    wait: float = _WAIT,
) -> None:
    """Remove a member (the founder only); the committee must stay possible."""
    _ask(config, "membership", {"add": [], "remove": [member]}, wait)
