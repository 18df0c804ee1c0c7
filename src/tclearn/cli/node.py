"""`tclearn node serve --config node.toml`: run one member (its chain, data, keys, peers) until stopped."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Run and inspect one coalition member's node.", no_args_is_help=True)


@app.command("serve")
def serve(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="The node's node.toml."),
    max_seconds: float = typer.Option(0.0, "--max-seconds", min=0.0, help="Stop after this long (0: run until SIGTERM)."),
) -> None:
    """Serve the node's HTTPS API (mutual TLS) and take part in consensus until SIGTERM / Ctrl-C."""
    from tclearn.node.runtime import serve as run

    run(config, max_seconds or None)


@app.command("status")
def status(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="The node's node.toml."),
) -> None:
    """Ask a running node (as itself, over mutual TLS) for its head block and round."""
    from tclearn.node.config import NodeConfig
    from tclearn.transport import MemberAllowList, PeerClient

    cfg = NodeConfig.load(config)
    allow = MemberAllowList({p.fingerprint: p.member_id for p in cfg.peers if p.fingerprint})
    client = PeerClient(cfg.url, cfg.ca_cert, cfg.tls_cert, cfg.tls_key, allow, expected_member=cfg.member_id,
                        timeout_s=5, retries=0)
    try:
        typer.echo(json.dumps(client.get_json("/v1/status"), indent=2))
    except Exception as exc:
        typer.echo(f"error: node {cfg.member_id} at {cfg.url} did not answer: {exc}", err=True)
        raise typer.Exit(1) from None
