"""`tclearn data hash PATH`: the hash genesis records for G (a file or a folder), see `tclearn.data.content_hash`.

Exit codes: 0, or 6 when the path holds no readable file (`tclearn.cli.errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tclearn.cli.errors import handle_errors

app = typer.Typer(help="Data sets: the hash of G.", no_args_is_help=True)


@app.command("hash")
@handle_errors
def hash_command(path: Annotated[Path, typer.Argument(help="A data file or folder (G, as distributed).")]) -> None:
    """Print the SHA-256 genesis records as [test_set] hash for this file or folder."""
    from tclearn.data.content_hash import data_hash

    typer.echo(data_hash(path))
