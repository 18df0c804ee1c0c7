"""`tclearn node serve --config node.toml`: run one member (its chain, data, keys, peers) until stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from tclearn.cli.errors import EXIT_TRANSPORT, EXIT_WAIT_TIMEOUT, fail, handle_errors

app = typer.Typer(help="Run and inspect one coalition member's node.", no_args_is_help=True)


@app.command("serve")
@handle_errors
def serve(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="The node's node.toml."),
    max_seconds: float = typer.Option(0.0, "--max-seconds", min=0.0, help="Stop after this long (0: run until SIGTERM)."),
) -> None:
    """Serve the node's HTTPS API (mutual TLS) and take part in consensus until SIGTERM / Ctrl-C.

    The node also stops (exit 0, after a line naming the block) once it commits
    a membership block that removes its member: the peers refuse it from then on.
    """
    from tclearn.node.runtime import serve as run

    run(config, max_seconds or None)


def _self_client(config: Path) -> tuple[Any, Any]:
    """The node's config and a mutual-TLS client that talks to the node as the node itself."""
    from tclearn.node.config import NodeConfig
    from tclearn.transport import MemberAllowList, PeerClient

    cfg = NodeConfig.load(config)
    allow = MemberAllowList({p.fingerprint: p.member_id for p in cfg.peers if p.fingerprint})
    client = PeerClient(cfg.url, cfg.ca_cert, cfg.tls_cert, cfg.tls_key, allow, expected_member=cfg.member_id,
                        timeout_s=5, retries=0)
    return cfg, client


@app.command("propose")
@handle_errors
def propose(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="The node's node.toml."),
    wait: float = typer.Option(0.0, "--wait", min=0.0,
                               help="Seconds to wait for the block that records the increment (0: do not wait)."),
) -> None:
    """Ask the running node to train an increment and propose it when its turn comes.

    Authenticated with the node's own certificate: only its operator can ask.
    With --wait, prints the block (increment or rejected) that records it.
    Exit codes: 0 queued (or recorded), 2 bad config, 5 node unreachable or refused,
    30 no block within --wait (the request stays queued); see `tclearn.cli.errors`.
    """
    cfg, client = _self_client(config)
    try:
        before = client.get_json("/v1/status").get("propose", {})
        response = client.post_json("/v1/propose", {})
        answer = response.json()
    except Exception as exc:
        fail(f"node {cfg.member_id} at {cfg.url} did not answer: {exc}", EXIT_TRANSPORT)
    if not response.ok:
        fail(f"node {cfg.member_id} refused: {answer.get('error', answer) if isinstance(answer, dict) else answer}",
             EXIT_TRANSPORT)
    typer.echo(json.dumps(answer))
    if not wait:
        return
    seen = int(before.get("own_blocks", 0))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            state = client.get_json("/v1/status").get("propose", {})
        except Exception:
            continue  # a busy node: ask again
        if int(state.get("own_blocks", 0)) > seen and state.get("last_own_block"):
            typer.echo(json.dumps({"recorded": state["last_own_block"]}))
            return
    fail(f"no block from {cfg.member_id} within {wait:g} s (the request stays queued)", EXIT_WAIT_TIMEOUT)


@app.command("status")
@handle_errors
def status(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="The node's node.toml."),
) -> None:
    """Ask a running node (as itself, over mutual TLS) for its head block and round."""
    cfg, client = _self_client(config)
    try:
        answer = client.get_json("/v1/status")
    except Exception as exc:
        fail(f"node {cfg.member_id} at {cfg.url} did not answer: {exc}", EXIT_TRANSPORT)
    typer.echo(json.dumps(answer, indent=2))
