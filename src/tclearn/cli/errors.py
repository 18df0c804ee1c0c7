"""How the `tclearn` command fails: exit codes and one-line messages.

Every command body runs under `handle_errors`, which turns the errors
TCLearn raises on purpose into a one-line message on stderr and a documented
exit code, never a traceback. Anything else is a bug: it says so, in one line,
and exits with 10 (set TCLEARN_DEBUG=1 to see the traceback).

Exit codes:

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success
1     invalid data: a block, record or signature does not verify
      (`InvalidBlockError`, `SignatureError`, `EncodingError`)
2     usage or configuration error: a bad option or argument, a config file
      that is missing, not TOML, or has a missing or wrong field (`ConfigError`)
3     store or file error: a chain file that is missing, not SQLite, not a
      TCLearn chain or damaged; a file that cannot be read or written
      (`StoreError`, other `LedgerError`, `OSError`)
4     identity or key error: a key file that is missing, unreadable, readable
      by others, or needs another passphrase (`IdentityError`)
5     transport or PKI error: TLS, certificates, an unreachable peer (`TransportError`)
6     learning or data error: a model, data set or training problem (`LearningError`)
7     protocol error: the consensus core misused, or a peer broke the protocol
      (`ConsensusError`, `RemoteProtocolError`)
9     any other TCLearn error
10    internal error: a bug in TCLearn
130   interrupted (Ctrl-C)
====  ==========================================================================

`tclearn node propose --wait` exits with 30 when no block recorded the
increment in time (`EXIT_WAIT_TIMEOUT`; the request stays queued).

The level-B vault (`tclearn vault`, `audit`, `smime`; registered by
`tclearn.cli.vault`) uses 31-39: 31 access refused by the policy
(`AccessDenied`), 32 integrity (a tampered object, metadata or audit journal:
`IntegrityError`), 33 a bad, replayed or stale S/MIME request (`RequestError`),
34 vault locked (wrong passphrase, no vault: `VaultLockedError`), 35 no such
object (`ObjectNotFound`), 39 any other vault error (`VaultError`).

The most specific class wins (an `InvalidBlockError` is a `LedgerError` but
exits with 1). A sub-command may give a subclass of its own a more specific
code with `register_exit_code`; codes 20-39 are left for that.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, NoReturn, ParamSpec, TypeVar

import typer

from tclearn.errors import (
    ConfigError,
    ConsensusError,
    EncodingError,
    IdentityError,
    InvalidBlockError,
    LearningError,
    LedgerError,
    RemoteProtocolError,
    SignatureError,
    StoreError,
    TCLearnError,
    TransportError,
)

__all__ = [
    "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_STORE", "EXIT_IDENTITY", "EXIT_TRANSPORT",
    "EXIT_LEARNING", "EXIT_PROTOCOL", "EXIT_OTHER", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_WAIT_TIMEOUT",
    "exit_code_for", "register_exit_code", "handle_errors", "fail", "one_line",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_IDENTITY = 4
EXIT_TRANSPORT = 5
EXIT_LEARNING = 6
EXIT_PROTOCOL = 7
EXIT_OTHER = 9
EXIT_INTERNAL = 10
EXIT_INTERRUPTED = 130
EXIT_WAIT_TIMEOUT = 30

_CODES: dict[type[BaseException], int] = {
    InvalidBlockError: EXIT_INVALID,
    SignatureError: EXIT_INVALID,
    EncodingError: EXIT_INVALID,
    ConfigError: EXIT_USAGE,
    StoreError: EXIT_STORE,
    LedgerError: EXIT_STORE,
    OSError: EXIT_STORE,
    IdentityError: EXIT_IDENTITY,
    TransportError: EXIT_TRANSPORT,
    LearningError: EXIT_LEARNING,
    ConsensusError: EXIT_PROTOCOL,
    RemoteProtocolError: EXIT_PROTOCOL,
    TCLearnError: EXIT_OTHER,
}

P = ParamSpec("P")
T = TypeVar("T")


def register_exit_code(error: type[BaseException], code: int) -> None:
    """Give `error` (and its subclasses without a code of their own) the exit code `code`."""
    if not 1 <= code <= 125:
        raise ValueError(f"exit code must lie in [1, 125], got {code}")
    _CODES[error] = code


def exit_code_for(error: BaseException) -> int:
    """The documented exit code of `error`: that of its most specific registered class."""
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return EXIT_INTERNAL


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, TCLearnError):
        where = f" {error.filename}" if error.filename else ""
        return one_line(f"{error.strerror or error}:{where}" if where else str(error.strerror or error))
    return one_line(str(error)) or type(error).__name__


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def handle_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Decorate a command body: TCLearn errors become a one-line message and their exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise  # typer's own ways out (usage errors exit with 2)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # the one place where every error is turned into an exit code
            code = exit_code_for(exc)
            if code == EXIT_INTERNAL:
                typer.echo(f"internal error (a bug in TCLearn, please report it): "
                           f"{type(exc).__name__}: {_describe(exc)}", err=True)
                if os.environ.get("TCLEARN_DEBUG"):
                    raise
            else:
                typer.echo(f"error: {_describe(exc)}", err=True)
                if os.environ.get("TCLEARN_DEBUG"):
                    import traceback

                    traceback.print_exc(file=sys.stderr)
            raise typer.Exit(code) from None

    return wrapper
