"""The one exception users see: every bad input becomes an EIEError with a one-line message.

Command-line entry points catch it, print ``error: <message>`` on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager


class EIEError(Exception):
    """Bad user input: unknown name, wrong shape, NaN, missing file, a layer that does not fit."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with a one-line error: ``<prog>: error: <message>`` on stderr and exit
    code 2, without the usage block argparse prints first (``--help`` still prints it)."""

    def error(self, message):
        msg = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {msg} (--help lists the options)\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup that handles an interrupt runs."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextmanager
def cli_errors(prog: str):
    """Turn EIEError into one stderr line and exit code 2; Ctrl-C and SIGTERM into one line and
    exit code 130 / 143, after the cleanups of the interrupted code have run."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        yield
    except EIEError as e:
        msg = " ".join(str(e).split())
        print(f"{prog}: error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        raise SystemExit(143) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)
