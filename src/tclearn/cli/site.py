"""`tclearn site`: a member at its own site — its keys and enrolment request, then its kit.

    tclearn site init NAME --host H --port P [--dir D]
    tclearn site join KIT --dir D --data PATH --data-kind nifti|npz|builtin
    tclearn site kit ENTRY --node NODE_TOML --out KIT   (the operator: a kit for a NEW member of a running
                                                         coalition, from its node's verified chain)

Exit codes (`tclearn.cli.errors`): 2 a bad option, a kit that is not this
site's (another coalition, another member, another key) or a malformed kit;
3 a folder that already holds a site, or a site that has joined already;
4 a key file problem; 6 data that do not fit the task or a G whose hash is not
genesis's.
`site kit`: 2 a member the chain already holds, a certificate the chain already
records or not issued by the node's CA, a bad entry or node.toml; 3 an OUT that
exists, or a node without a chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tclearn.cli.errors import handle_errors

app = typer.Typer(help="A member at its own site: keys, enrolment request, kit.", no_args_is_help=True)


@app.command("init")
@handle_errors
def init_command(
    name: Annotated[str, typer.Argument(help="This member's id (lower-case letters, digits, '.', '_', '-').")],
    host: Annotated[str, typer.Option("--host", help="Host name or IP address the node will answer on.")],
    port: Annotated[int, typer.Option("--port", help="TCP port the node will answer on.")],
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Site folder (default: ./NAME).")] = None,
) -> None:
    """Make this site's Ed25519 identity and TLS key here, and the request to send the operator."""
    from tclearn.site.enrol import init_site

    site = init_site(name, host, port, directory if directory is not None else Path(name))
    typer.echo(f"site {site.member_id} at {site.url}")
    typer.echo(f"  identity key: {site.identity_key} (stays here)")
    typer.echo(f"  TLS key:      {site.tls_key} (stays here)")
    typer.echo(f"  request:      {site.request}  <- send this file to the coalition's operator")


@app.command("join")
@handle_errors
def join_command(
    kit: Annotated[Path, typer.Argument(help="The kit folder the operator sent (with node.toml).")],
    directory: Annotated[Path, typer.Option("--dir", help="This site's folder (from `tclearn site init`).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="This member's own data: a folder or file.")] = None,
    data_kind: Annotated[str, typer.Option("--data-kind", help="nifti (Decathlon folder), npz, or builtin "
                                                               "(trials: the task's own set).")] = "nifti",
) -> None:
    """Check the kit against this site's keys and data, then write DIR/node.toml."""
    from tclearn.errors import ConfigError
    from tclearn.node.data_spec import DataSpec
    from tclearn.site.join import join_kit

    if (data_kind == "builtin") != (data is None):
        raise ConfigError("--data PATH is needed, except with --data-kind builtin (which takes none)")
    node_toml = join_kit(kit, directory, DataSpec(data_kind, data))
    typer.echo(f"kit checked; node settings in {node_toml}")
    typer.echo(f"start the node: tclearn node serve --config {node_toml}")


@app.command("kit")
@handle_errors
def kit_command(
    entry: Annotated[Path, typer.Argument(help="The new member's entry from `tclearn pki sign` "
                                               "(PKI/members/NAME.toml: id, public_key, certificate, url).")],
    node: Annotated[Path, typer.Option("--node", help="node.toml of one of the operator's running nodes "
                                                      "(its chain, genesis, CA certificate and G are used).")],
    out: Annotated[Path, typer.Option("--out", help="The kit folder to write (must not exist).")],
) -> None:
    """Write a joining kit for a NEW member of a running coalition: the current members from the verified chain."""
    from tclearn.site.joining_kit import write_joining_kit

    mark = write_joining_kit(entry, node, out)
    typer.echo(f"joining kit for {mark.member_id} in {out} (chain at block {mark.chain_height}, "
               f"fingerprint {mark.fingerprint})")
    typer.echo("  the site: tclearn site join KIT --dir SITE --data PATH --data-kind KIND, then starts its node")
    typer.echo(f"  then add it: tclearn membership add --id {mark.member_id} --identity-pub SITE_PUB "
               f"--tls-cert CERT --url URL --config {node}")
