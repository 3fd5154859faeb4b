"""Leaks: loops run through native code, exits and bridges leave every
object's reference count, and the memory, where plain CPython leaves them;
the traces of code that dies are freed.

Each program's `work(n)` runs a loop (or calls one) n times in all; the
JIT compiles its traces in a first, warm-up call. Then `work` runs twice
more: across the second run, the reference counts of the objects it
touches (`watched()`: list items, a global, the functions it calls, an
exception class and an instance, the floats' list) must not move, and
the memory tracemalloc sees must not grow by more than a page's worth
(a leaked box per iteration is megabytes). Each program runs with plain
JIT and with every guard forced to fail (tests/test_faults.py), so that the
exit paths run at every iteration.

CI runs 100,000 iterations a program (seconds); the long form:

    COPYJIT_LEAK_ITERATIONS=1000000 .venv/bin/python -m pytest tests/test_leaks.py
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import pytest

from copyjit.backend.runtime import runtime
from copyjit.trace import faults
from copyjit.trace.jit import JIT

ROOT = Path(__file__).resolve().parent.parent
ITERATIONS = int(os.environ.get("COPYJIT_LEAK_ITERATIONS", "100000"))
GROWTH = 64 * 1024  # bytes tracemalloc may see grow over a whole run

_COMMON = '''
class Sentinel:
    pass
class Oops(Exception):
    pass
class P:
    def __init__(self, v):
        self.v = v
        self.w = v * 0.5
S = Sentinel()
ARG = Sentinel()
G = S
objs = [S] * 16
ys = [0.5] * 8
ts = (S, 1, 2.5)
p = P(3)
def h(x):
    return x + 1
def pure(x):
    return x * 2 + 1
def boom(i):
    if i % 16 == 3:
        raise Oops(ARG)
    return i
def watched():
    return [S, ARG, objs, ys, ts, p, h, pure, boom, Oops, P]
'''

PROGRAMS: dict[str, str] = {
    # One long loop, natively: list items, stored floats, a global, calls,
    # attributes, appends to a list that is emptied.
    "native": '''
def work(n):
    out = []
    t, k = 0.0, 0
    for i in range(n):
        o = objs[i % 16]
        if o is not None:
            k += 1
        ys[i % 8] = ys[i % 8] * 0.5 + p.w
        t += ys[i % 8] + ts[2]
        k = (k + h(i) + pure(i) + p.v) % 1000003
        out.append(o)
        if len(out) > 100:
            out.clear()
    return t, k
''',
    # A loop of 20 iterations entered and left n / 20 times.
    "exits": '''
def inner(xs, t):
    for x in xs:
        t += x * 0.5
        if x is None:
            break
    return t
def work(n):
    xs = list(range(20))
    t = 0.0
    for _ in range(n // 20):
        t = inner(xs, t) - 100.0
    return t
''',
    # A branch taken every other iteration: a bridge, left back to the trace.
    "bridges": '''
def work(n):
    t, k = 0, 0.0
    for i in range(n):
        if i % 2:
            t += i
        else:
            k += 0.5
            o = objs[i % 16]
        t %= 1000003
    return t, k
''',
    # A call raising every 16th iteration, caught inside the loop: the trace
    # leaves through the re-raiser, the interpreter raises and catches.
    "exceptions": '''
def work(n):
    t, caught = 0, 0
    for i in range(n):
        try:
            t = (t + boom(i)) % 1000003
        except Oops as error:
            caught += error.args[0] is ARG
    return t, caught
''',
    # Nested loops: inlined (small), and called (with a bridge).
    "nested": '''
def work(n):
    t, u = 0, 0.0
    for i in range(n // 16):
        for j in range(8):
            t += j
        for x in ys:
            if t % 2:
                u += x
            else:
                t += 1
        t %= 1000003
    return t, u
''',
}


def _load(name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"leaks_{name}"}
    exec(compile(_COMMON + textwrap.dedent(PROGRAMS[name]), f"<leaks {name}>", "exec"), namespace)
    return namespace


def _measure(namespace: dict[str, Any], n: int) -> tuple[list[int], int]:
    """Reference counts of the watched objects, and tracemalloc's growth in
    bytes, across one call of work(n) (after gc)."""
    gc.collect()
    watched = namespace["watched"]()
    before = [sys.getrefcount(o) for o in watched]
    tracemalloc.start()
    try:
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        namespace["work"](n)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    after = [sys.getrefcount(o) for o in watched]
    del watched
    return [a - b for a, b in zip(after, before, strict=True)], grown


@pytest.mark.parametrize("fail", ["none", "all"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_long_run_leaks_nothing(name: str, fail: str) -> None:
    expected = _load(name)["work"](ITERATIONS)
    namespace = _load(name)
    jit = JIT(1, fail_guards=faults.kinds() if fail == "all" else frozenset())
    jit.enable()
    try:
        assert namespace["work"](ITERATIONS) == expected  # warm-up: every trace and bridge made
        namespace["work"](ITERATIONS)
        moved, grown = _measure(namespace, ITERATIONS)
        stats = jit.stats
    finally:
        jit.disable()
    assert stats.traces > 0 and stats.exits > 0, stats.as_dict()
    if fail == "none" and name in ("native", "bridges", "nested"):
        assert stats.native_entries < ITERATIONS // 100, stats.as_dict()  # it did run natively
    assert moved == [0] * len(moved), list(zip(namespace["watched"](), moved, strict=True))
    assert grown < GROWTH, f"{grown} bytes more after {ITERATIONS} iterations"


def test_plain_cpython_grows_as_little() -> None:
    """The bound above means something: CPython itself stays under it."""
    for name in PROGRAMS:
        namespace = _load(name)
        namespace["work"](ITERATIONS)
        moved, grown = _measure(namespace, ITERATIONS)
        assert moved == [0] * len(moved) and grown < GROWTH // 4, (name, grown)


def test_the_measure_sees_a_leak() -> None:
    namespace = _load("native")
    leaked: list[object] = []
    work = namespace["work"]
    sentinel = namespace["S"]
    namespace["work"] = lambda n: (work(n), leaked.extend([1.5 * i for i in range(n // 10)]),
                                   leaked.append(sentinel))
    moved, grown = _measure(namespace, ITERATIONS)
    assert grown > GROWTH and moved[0] == 1


def test_resident_memory_stays_where_cpython_leaves_it() -> None:
    """In a fresh process: RSS after the warm-up and after more runs of
    every program, with the JIT and without."""
    script = f"""
import gc, sys
sys.path.insert(0, {str(ROOT)!r})
from tests.test_leaks import PROGRAMS, _load, ITERATIONS
from copyjit.trace.jit import JIT

def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

jit = JIT(1) if sys.argv[1] == "jit" else None
if jit:
    jit.enable()
spaces = [_load(name) for name in sorted(PROGRAMS)]
for space in spaces:
    space["work"](ITERATIONS)
before = rss()
for _ in range(3):
    for space in spaces:
        space["work"](ITERATIONS)
print(rss() - before)
"""
    grown = {}
    for mode in ("jit", "plain"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                              timeout=600, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        grown[mode] = int(done.stdout)
    # A box leaked per iteration would be 3 * 5 * ITERATIONS * 32 bytes.
    assert grown["jit"] <= grown["plain"] + 2 * 1024 * 1024, grown


def test_traces_of_code_that_dies_are_freed() -> None:
    from copyjit.trace import bytecode

    jit = JIT(1)
    jit.enable()
    arena = runtime().arena
    codes: list[tuple[weakref.ref[Any], int, list[Any]]] = []  # each code, its id, its traces and bridges
    try:
        for k in range(40):
            namespace: dict[str, Any] = {}
            exec(f"def f(n):\n    t = {k}\n    for i in range(n):\n        if i % 2:\n            t += i\n"
                 f"        else:\n            t -= 1\n    return t\n", namespace)
            code = namespace["f"].__code__
            assert namespace["f"](200) == 9900 + k
            traces = [trace for key, location in list(jit.locations.items()) if key[0] == id(code)
                      for trace in (location.trace, *location.bridges) if trace is not None]
            assert traces
            codes.append((weakref.ref(code), id(code), traces))
            del namespace, code
        gc.collect()
        in_use = arena.in_use
        # The recorder keeps the last few codes it decoded (bytecode._DECODED).
        dead = [(code_id, traces) for code, code_id, traces in codes if code() is None]
        assert len(dead) >= 40 - bytecode._DECODED_CODES, len(dead)
        assert all(trace.freed for _, traces in dead for trace in traces)
        # Every code the JIT's tables name is alive (an id may be a new code's
        # already). (A weak reference reads dead a moment before its
        # callback has run: look again.)
        dead_refs = [r for r in list(jit._code_refs.values()) if r() is None]
        gc.collect()
        assert not [r for r in dead_refs if r in list(jit._code_refs.values())]
        assert {key[0] for key in list(jit.locations)} <= set(jit._code_refs) == set(jit.counters)
        for _, _, traces in codes:
            del traces[:]
        gc.collect()
        assert arena.in_use <= in_use  # nothing kept the freed blocks
    finally:
        jit.disable()
