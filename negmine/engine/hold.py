"""Hold points: a run that stops at a known state, so that a test can interrupt it there.

Tests of Ctrl-C, SIGKILL and `--resume` need a run that is past its start and not yet finished.
Waiting a number of seconds for that decides the outcome by the machine's speed (a busy CI
machine finishes the run before the signal, or signals it while it is still planning). With
``NEGMINE_HOLD=DIR`` (or ``DIR:N``) in the environment, the N-th journal write (default the 1st)
writes ``DIR/held`` (the process id) after the entries are on disk and then waits until
``DIR/release`` exists: the run is held in the middle of its draw for as long as the test needs.
Unset (every real run), a hold point costs one environment look-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "NEGMINE_HOLD"
_count = 0


def reached(what: str = "journal") -> None:
    """Count one journal write; at the N-th, hold (see the module docstring).

    `what`: recorded in DIR/held beside the pid, for a failing test's message. Returns at once when
    ``NEGMINE_HOLD`` is unset or names no usable folder. A signal delivered while held interrupts the
    wait as it would interrupt the run (KeyboardInterrupt for SIGINT)."""
    global _count
    spec = os.environ.get(ENV)
    if not spec:
        return
    folder, sep, nth = spec.rpartition(":")
    if not (sep and nth.isdigit()):
        folder, nth = spec, "1"
    _count += 1
    if _count != int(nth):
        return
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"held.{os.getpid()}.tmp"
        tmp.write_text(f"{os.getpid()} {what} {_count}\n")
        os.replace(tmp, folder / "held")        # appears whole: the test reads it as soon as it exists
    except OSError:
        return
    while not (folder / "release").exists():
        time.sleep(0.05)


__all__ = ["ENV", "reached"]
