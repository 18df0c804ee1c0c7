"""The `tclearn` command."""
from tclearn.cli.app import app, main

__all__ = ["app", "main"]
