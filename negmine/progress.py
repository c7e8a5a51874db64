"""Progress bars: tqdm on stderr (`tqdm.auto`, so notebooks get widgets), imported only when a bar
is shown: importing tqdm costs ~0.1 s (it looks its own version up in the installed packages),
which a --quiet run need not pay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
