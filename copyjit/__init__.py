"""copyjit: a tracing JIT for stock CPython that makes machine code by copy-and-patch.

    import copyjit
    copyjit.enable()            # all code from now on
    @copyjit.jit                # or: only this function's loops
    def kernel(n): ...
    copyjit.stats()             # what it did

Environment: COPYJIT=0 turns it off, COPYJIT_THRESHOLD=N sets how many
backedges make a loop hot (1: trace at the first).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

__all__ = ["disable", "enable", "jit", "stats"]

def _threshold() -> int:
    from copyjit.trace.jit import DEFAULT_THRESHOLD

    value = os.environ.get("COPYJIT_THRESHOLD", "")
    return int(value) if value.strip() else DEFAULT_THRESHOLD


def _off() -> bool:
    return os.environ.get("COPYJIT", "1").strip() == "0"


@functools.cache
def _jit() -> Any:
    from copyjit.trace.jit import JIT

    return JIT(_threshold())


def enable(threshold: int | None = None) -> None:
    """Compile hot loops in all code run from now on (unless COPYJIT=0)."""
    if _off():
        return
    if threshold is not None:
        _jit().threshold = max(1, threshold)
    _jit().enable()


def disable() -> None:
    """Stop compiling and entering traces; the program goes on interpreted."""
    _jit().disable()


def jit[F: Callable[..., Any]](function: F) -> F:
    """Compile the hot loops of this function only."""
    if not _off():
        _jit().enable(function.__code__)
    return function


def stats() -> dict[str, Any]:
    """traces, bridges, aborts (reason -> count), exits, native_entries, and
    seconds spent recording, optimizing and emitting."""
    return _jit().stats.as_dict()  # type: ignore[no-any-return]
