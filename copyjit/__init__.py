"""copyjit: a tracing JIT for stock CPython that makes machine code by copy-and-patch.

    import copyjit
    copyjit.enable()            # all code from now on
    @copyjit.jit                # or: only this function's loops
    def kernel(n): ...
    copyjit.stats()             # what it did
    print(copyjit.explain(kernel))  # and with each loop: compiled or why not, exits, code

Environment: COPYJIT=0 turns it off, COPYJIT_THRESHOLD=N sets how many
backedges make a loop hot (1: trace at the first), COPYJIT_OPT switches
optimizer passes off (see copyjit/opt/__init__.py), COPYJIT_LOG streams
trace events (copyjit/log.py), COPYJIT_PERF_MAP=1 writes a perf map
(copyjit/perfmap.py), COPYJIT_PURE=1 runs the compiler's modules as Python
even where they were compiled (copyjit/native.py).
"""

from __future__ import annotations

import os

from copyjit import native as _native

# Start-up imports as little as it can (tests/test_startup.py): typing alone
# costs ~3 ms, the JIT's modules are imported by enable() or the first jit.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from copyjit.trace.jit import JIT

__all__ = ["disable", "enable", "explain", "jit", "stats"]

# Before any of the compiler's modules is imported: their source, not their
# compiled form, when that is stale or COPYJIT_PURE=1 (copyjit/native.py).
_native.install()


def _threshold() -> int:
    from copyjit.trace.jit import DEFAULT_THRESHOLD

    value = os.environ.get("COPYJIT_THRESHOLD", "")
    return int(value) if value.strip() else DEFAULT_THRESHOLD


def _off() -> bool:
    return os.environ.get("COPYJIT", "1").strip() == "0"


_the_jit: JIT | None = None


def _jit() -> JIT:
    global _the_jit
    if _the_jit is None:
        from copyjit.trace.jit import JIT

        _the_jit = JIT(_threshold())
    return _the_jit


def enable(threshold: int | None = None, no_opt: Iterable[str] = ()) -> None:
    """Compile hot loops in all code run from now on (unless COPYJIT=0);
    `no_opt`: optimizer passes to switch off (names, or "all")."""
    if _off():
        return
    if threshold is not None:
        _jit().threshold = max(1, threshold)
    if no_opt:
        from copyjit.opt import disabled_passes

        _jit().opt_off |= disabled_passes("", no_opt)
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
    """traces, bridges, aborts (reason -> count), exits, native_entries,
    seconds spent recording, optimizing and emitting, and compile_seconds:
    for each trace and bridge, from its loop found hot to native code; and
    compiler: whether its modules run native (copyjit/native.py)."""
    return _jit().stats.as_dict()


def explain(function: object = None, code: bool = True) -> str:
    """What the JIT did with the hot loops of `function` (and the functions
    defined in it), or with every hot loop so far: compiled or why not,
    entries, exits per guard, bridges, and (`code`) the recorded and
    optimized traces and the machine code. Plain text, as
    `python -m copyjit explain` prints it."""
    from copyjit import explainer as explaining

    codes = None if function is None else explaining.codes_of(function)
    return explaining.render(explaining.collect(_jit(), codes), code)
