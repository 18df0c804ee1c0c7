"""`python -m tclearn.node serve --config node.toml` (what `tclearn coalition up` starts).

Fails like every `tclearn` command: one line on stderr and the exit code of
`tclearn.cli.errors` (no traceback unless TCLEARN_DEBUG=1).
"""
import argparse
import sys

import typer

from tclearn.cli.errors import handle_errors
from tclearn.node.runtime import serve

parser = argparse.ArgumentParser(prog="python -m tclearn.node")
sub = parser.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("serve")
s.add_argument("--config", required=True)
s.add_argument("--max-seconds", type=float, default=None)
args = parser.parse_args()
try:
    handle_errors(serve)(args.config, args.max_seconds)
except typer.Exit as exc:  # a click exception, not a SystemExit
    sys.exit(exc.exit_code)
