"""Progress on stderr: tqdm bars (`tqdm.auto`, so notebooks get widgets), imported only when a bar
is shown: importing tqdm costs ~0.1 s (it looks its own version up in the installed packages),
which a --quiet run need not pay; and warnings said while a run goes (`warn`), remembered so that
the summary printed at the end does not say them twice (`warnings_said`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_said: set[str] | None = None        # the warnings printed inside the innermost `warnings_said`


def warn(text: str, show: bool = True) -> None:
    """Print ``warning: text`` on stderr now (unless `show` is False: --quiet), before the work it
    concerns, and remember it for `warnings_said`."""
    if show:
        print(f"warning: {text}", file=sys.stderr, flush=True)
        if _said is not None:
            _said.add(text)


@contextmanager
def warnings_said() -> Iterator[set[str]]:
    """The set of warnings `warn` prints while the block runs: a summary printed after it skips them."""
    global _said
    outer, _said = _said, set()
    try:
        yield _said
    finally:
        _said = outer


class _Silent:
    """What --quiet gets: the parts of tqdm's interface negmine uses, doing nothing."""

    def __init__(self, iterable: Iterable | None = None):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc) -> bool:
        return False


def bar(iterable: Iterable | None = None, *, show: bool = True, **kw: Any):
    """A tqdm bar when `show` (tqdm still hides it when stderr is not a terminal), else a silent one."""
    if not show:
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None, **kw)
