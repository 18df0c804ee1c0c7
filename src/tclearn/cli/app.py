"""Entry point of the `tclearn` command: sub-commands are added by their modules."""
import typer

app = typer.Typer(help="TCLearn: trusted coalitions for blockchained distributed learning.", no_args_is_help=True)

from tclearn.cli import pki as _pki; app.add_typer(_pki.app, name="pki")  # noqa: E402,E702
from tclearn.cli import chain as _chain; app.add_typer(_chain.app, name="chain")  # noqa: E402,E702
from tclearn.cli.init import init_command as _init; app.command("init")(_init)  # noqa: E402,E702
from tclearn.cli import sim as _sim; app.add_typer(_sim.app, name="sim")  # noqa: E402,E702
from tclearn.cli.demo import demo_command as _demo; app.command("demo")(_demo)  # noqa: E402,E702
from tclearn.cli import node as _node; app.add_typer(_node.app, name="node")  # noqa: E402,E702
from tclearn.cli import coalition as _coalition; app.add_typer(_coalition.app, name="coalition")  # noqa: E402,E702
from tclearn.cli import vault as _vault; app.add_typer(_vault.app, name="vault"); app.add_typer(_vault.audit_app, name="audit")  # noqa: E402,E702
from tclearn.cli import smime as _smime; app.add_typer(_smime.app, name="smime")  # noqa: E402,E702
from tclearn.cli.trace import trace_command as _trace; app.command("trace")(_trace)  # noqa: E402,E702
from tclearn.cli import governance as _gov; app.command("revert")(_gov.revert_command); app.add_typer(_gov.hyperparams_app, name="hyperparams"); app.add_typer(_gov.membership_app, name="membership")  # noqa: E402,E702
from tclearn.cli import site as _site; app.add_typer(_site.app, name="site")  # noqa: E402,E702
from tclearn.cli import data as _data; app.add_typer(_data.app, name="data")  # noqa: E402,E702
from tclearn.cli import model as _model; app.add_typer(_model.app, name="model"); app.command("predict")(_model.predict_command)  # noqa: E402,E702
from tclearn.cli import he as _he; app.add_typer(_he.app, name="he")  # noqa: E402,E702


def main() -> None:
    app()
