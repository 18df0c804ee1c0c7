"""Entry point of the `tclearn` command: sub-commands are added by their modules."""
import typer

app = typer.Typer(help="TCLearn: trusted coalitions for blockchained distributed learning.", no_args_is_help=True)

from tclearn.cli import pki as _pki; app.add_typer(_pki.app, name="pki")  # noqa: E402,E702


def main() -> None:
    app()
