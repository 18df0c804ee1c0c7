"""`python -m tclearn.node serve --config node.toml` (what `tclearn coalition up` starts)."""
import argparse

from tclearn.node.runtime import serve

parser = argparse.ArgumentParser(prog="python -m tclearn.node")
sub = parser.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("serve")
s.add_argument("--config", required=True)
s.add_argument("--max-seconds", type=float, default=None)
args = parser.parse_args()
serve(args.config, args.max_seconds)
