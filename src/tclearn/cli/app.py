"""Entry point of the `tclearn` command: sub-commands are added by their modules."""
import typer

app = typer.Typer(help="TCLearn: trusted coalitions for blockchained distributed learning.", no_args_is_help=True)


def main() -> None:
    app()
