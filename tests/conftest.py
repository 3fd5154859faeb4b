from __future__ import annotations

import dis
import functools
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from copyjit.backend import asm
from copyjit.backend.emitter import Trace, emit
from copyjit.backend.frames import RawFrame

# Every recording is verified after every optimizer pass, in every test
# (and in the subprocesses tests start, which inherit the environment).
os.environ["COPYJIT_VERIFY"] = "1"

# A suite started in the background by a non-interactive shell (`cmd &`,
# as a CI runner may) inherits SIGINT ignored: Python then installs no
# KeyboardInterrupt handler, `_thread.interrupt_main()` does nothing (the
# Ctrl-C test of a native loop spun for ever) and the children the tests
# start ignore SIGINT too. The tests of Ctrl-C need a terminal's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# NB_* numbers of BINARY_OP, by operator symbol ("+", "//", "**", ...).
NB = {symbol: index for index, (_, symbol) in enumerate(dis._nb_ops)}  # type: ignore[attr-defined]


def outcome(function: Callable[..., object], *args: object) -> tuple[object, ...]:
    """What a call did, comparable between CPython and the JIT: the repr of
    its result (so that NaN equals NaN), or the exception with the line it
    was raised at."""
    try:
        return ("returned", repr(function(*args)))
    except Exception as e:
        last = traceback.extract_tb(e.__traceback__)[-1]
        return ("raised", type(e).__name__, str(e), last.lineno, last.line)


def cached_trace(text: str, **env: int) -> Trace:
    """One trace per text and env for the whole session (for hypothesis tests)."""
    return _cached(text, tuple(sorted(env.items())))


@functools.cache
def _cached(text: str, env: tuple[tuple[str, int], ...]) -> Trace:
    return emit(asm.parse(text, dict(env)))


@pytest.fixture
def compile_trace() -> Iterator[Callable[..., Trace]]:
    """Emit a trace from its text form; the test's traces are freed afterwards."""
    traces: list[Trace] = []

    def make(text: str, **env: int) -> Trace:
        trace = emit(asm.parse(text, env))
        traces.append(trace)
        return trace

    yield make
    for trace in traces:
        trace.free()


def run(
    trace: Trace, values: Sequence[object], nlocals: int | None = None, stacksize: int = 8
) -> tuple[int, list[object], list[object]]:
    """Run `trace` on a fresh frame whose first locals are `values`.

    Returns the exit code, the locals afterwards (None where unbound) and
    what is left on the value stack.
    """
    with RawFrame(nlocals if nlocals is not None else len(values), stacksize) as frame:
        for index, value in enumerate(values):
            frame[index] = value
        status = trace(frame.address)
        final = []
        for index in range(frame.nlocals):
            try:
                final.append(frame[index])
            except UnboundLocalError:
                final.append(None)
        return status, final, frame.stack()


def interrupted(script: Path, stats_json: Path) -> str:
    """Run `script` under the JIT at threshold 1 until it prints "spinning",
    send it SIGINT half a second later, check that it dies of the
    KeyboardInterrupt, and return its stderr (the traceback)."""
    root = Path(__file__).parent.parent
    child = subprocess.Popen(
        [sys.executable, "-m", "copyjit", "run", "--stats-json", str(stats_json), "--threshold", "1",
         str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert child.stdout is not None and child.stdout.readline() == "spinning\n"
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()  # a lost SIGINT must not leave it spinning (once, under load, for 40 minutes)
        child.communicate()
        raise
    assert child.returncode == -signal.SIGINT
    assert err.rstrip().endswith("KeyboardInterrupt")
    return err
