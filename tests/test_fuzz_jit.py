"""Differential fuzzing of the JIT: random numeric loops, CPython vs copyjit.

Each seed makes a small function: a `for` over a range or a `while` loop,
with assignments of nested int or float expressions (+ - * // % /), some
under if/else, to locals; it is called three times with random arguments,
with a new JIT at a random threshold, and must give the same results or
raise the same exception at the same line as under CPython.

CI runs a fixed batch of seeds; COPYJIT_FUZZ_PROGRAMS=N runs N from a
random start (the failing seed is in the test id).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from copyjit.trace.jit import JIT
from tests.conftest import outcome

_VARIABLES = ["a", "b", "c", "x", "y"]
_PROGRAMS = int(os.environ.get("COPYJIT_FUZZ_PROGRAMS", "0"))
_START = random.randrange(10**9)
SEEDS = list(range(_START, _START + _PROGRAMS)) if _PROGRAMS else list(range(150))


def _expression(r: random.Random, depth: int, floats: bool) -> str:
    if depth == 0 or r.random() < 0.3:
        pick = r.random()
        if pick < 0.5:
            return r.choice(_VARIABLES)
        if pick < 0.8 or not floats:
            return str(r.choice([0, 1, 2, 3, 7, -1, -5, 1000003, 2**31, 2**40]))
        return repr(r.choice([0.5, -1.25, 3.0, 1e10, 0.0, -0.0]))
    operator = r.choice(["+", "-", "*", "//", "%", "/"] if floats else ["+", "-", "*", "//", "%"])
    return f"({_expression(r, depth - 1, floats)} {operator} {_expression(r, depth - 1, floats)})"


def source(seed: int) -> str:
    """A function f(n, a, b, c) with one loop; ints are kept below 1000003
    after every assignment so that no program spends its time on huge ints."""
    r = random.Random(seed)
    floats = r.random() < 0.4
    lines = ["def f(n, a, b, c):"]
    lines += (["    a, b, c = a * 1.0, b * 1.0, c * 1.0", "    x = 0.0", "    y = 1.0"] if floats
              else ["    x = 0", "    y = 1"])
    if r.random() < 0.5:
        lines.append(f"    for i in range({r.choice(['n', '-n, n, 3', 'n, -n, -2', '0, n'])}):")
    else:
        lines += ["    i = 0", "    while i < n:", "        i += 1"]
    indent = "        "
    for _ in range(r.randint(1, 4)):
        target = r.choice(["a", "b", "x", "y"])
        if r.random() < 0.4:
            comparison = r.choice(["<", "<=", "==", "!=", ">", ">="])
            lines += [
                f"{indent}if {_expression(r, 1, floats)} {comparison} {_expression(r, 1, floats)}:",
                f"{indent}    {target} = {_expression(r, 2, floats)}",
                f"{indent}else:",
                f"{indent}    {target} = {_expression(r, 1, floats)}",
            ]
        else:
            lines.append(f"{indent}{target} = {_expression(r, 2, floats)}")
        if not floats:
            lines.append(f"{indent}{target} = {target} % 1000003")
    lines.append("    return a, b, c, x, y")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", SEEDS)
def test_random_loop_gives_cpython_results(seed: int) -> None:
    text = source(seed)
    namespace: dict[str, Any] = {}
    exec(compile(text, f"<fuzz {seed}>", "exec"), namespace)
    function = namespace["f"]
    r = random.Random(-seed)
    calls = [(r.randint(0, 300), r.choice([1, 7, -3, 2**20, 0.5]), r.choice([2, -9, 3.25]),
              r.choice([5, 0, -1])) for _ in range(3)]
    expected = [outcome(function, *args) for args in calls]
    jit = JIT(threshold=r.choice([1, 2, 5]))
    jit.enable(function.__code__)
    try:
        got = [outcome(function, *args) for args in calls]
    finally:
        jit.disable()
    assert got == expected, (f"\n{text}\ncalls: {calls}\n"
                             f"shrink and save it: .venv/bin/python tests/shrink.py numeric {seed}")


def test_the_batch_exercises_the_jit() -> None:
    """The programs are worth running only if many of them get traced."""
    traced = 0
    for seed in range(60):
        namespace: dict[str, Any] = {}
        exec(compile(source(seed), f"<fuzz {seed}>", "exec"), namespace)
        jit = JIT(threshold=1)
        jit.enable(namespace["f"].__code__)
        try:
            namespace["f"](200, 7, 2, 5)
        except Exception:
            pass
        finally:
            jit.disable()
        traced += jit.stats.traces > 0
    assert traced >= 15, traced
