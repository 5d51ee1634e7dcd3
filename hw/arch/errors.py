"""The one exception users see: every bad input becomes an EIEError with a one-line message.

Command-line entry points catch it, print ``error: <message>`` on stderr and exit with code 2.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager


class EIEError(Exception):
    """Bad user input: unknown name, wrong shape, NaN, missing file, a layer that does not fit."""


@contextmanager
def cli_errors(prog: str):
    """Turn EIEError (and KeyboardInterrupt) into one stderr line and exit code 2."""
    try:
        yield
    except EIEError as e:
        msg = " ".join(str(e).split())
        print(f"{prog}: error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
