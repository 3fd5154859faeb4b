"""Nested loops: the inner loop's trace runs from inside the outer loop's
trace, so both run natively; anything unexpected in the inner loop leaves
the frame exact for the interpreter."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from copyjit.backend import asm
from copyjit.trace.jit import JIT
from tests.conftest import interrupted
from tests.test_objects import differential


def table(n: int) -> int:
    total = 0
    for i in range(n):
        for j in range(i):
            total += (i * j) % 11 - 5
    return total


def test_both_loops_of_a_nest_run_natively() -> None:
    stats = differential(table, 400)
    assert stats["traces"] >= 2
    # Once the outer loop has its trace, it stays native: 400 outer
    # iterations would otherwise each enter the inner trace once.
    assert stats["native_entries"] < 100


def collatz(limit: int) -> int:
    longest = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            if n % 2 == 0:  # noqa: SIM108 - a branch, on purpose
                n = n // 2
            else:
                n = 3 * n + 1
            steps += 1
        if steps > longest:
            longest = steps
    return longest


def test_a_while_loop_inside_a_for_loop_leaving_through_a_bridge() -> None:
    stats = differential(collatz, 2000)
    assert stats["traces"] >= 2 and stats["native_entries"] < 200


def rows(matrix: list[list[float]]) -> tuple[float, int]:
    total, count = 0.0, 0
    for row in matrix:
        for x in row:
            total += x * 0.5
            count += 1
    return total, count


def test_lists_of_lists() -> None:
    differential(rows, [[float(i * j) for j in range(i % 7 + 1)] for i in range(300)])


def test_an_inner_loop_that_changes_a_local_of_the_outer_ones_type() -> None:
    def changes(n: int) -> object:
        total: Any = 0
        for i in range(n):
            for j in range(3):
                total += j
            if i == n - 20:
                total = total * 0.5  # a float from now on, in both loops
        return total

    differential(changes, 300)


@pytest.mark.parametrize("stop", [150, 10_000])
def test_an_inner_loop_that_breaks_or_raises(stop: int) -> None:
    def breaks(n: int) -> int:
        total = 0
        for i in range(n):
            for j in range(5):
                if i * 5 + j == stop:
                    break
                total += 10 // (j + i - 250)  # raises ZeroDivisionError at i + j == 250
        return total

    differential(breaks, 300)


# --- nested loops run inline in the outer loop's trace ----------------------


def escape_times(size: int, limit: int = 30) -> tuple[int, int, float]:
    """Mandelbrot's escape loop: leaves by `break` or by running out (else)."""
    inside, checksum, last = 0, 0, 0.0
    for y in range(size):
        ci = 2.0 * y / size - 1.0
        for x in range(size):
            cr = 2.0 * x / size - 1.5
            zr = zi = 0.0
            for _ in range(limit):
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                if zr * zr + zi * zi > 4.0:
                    break
            else:
                inside += 1
                checksum = (checksum * 31 + x * size + y) % 1_000_000_007
            last = zr + zi
    return inside, checksum, last


def test_a_nested_loop_runs_inline_in_the_outer_trace() -> None:
    stats = differential(escape_times, 40)
    assert stats["inlined_loops"] >= 1
    # 1,600 points, each a run of the escape loop: the point loop's trace
    # runs them all inline (the row loop is too short to be entered often).
    assert stats["native_entries"] < 200, stats


def numbers(rows: list[list[Any]]) -> Any:
    total: Any = 0
    for row in rows:
        scale = len(row)
        for x in row:
            total += x * scale
    return total


@pytest.mark.parametrize("depth", [0, 1, 4, 9])
@pytest.mark.parametrize("every", [3, 50])
def test_a_guard_failing_inside_an_inlined_loop(depth: int, every: int) -> None:
    # A float where the inlined loop has only seen ints, at `depth`
    # iterations into the nested loop, in every `every`-th row: rarely
    # (the exit stays cold), or often (it gets hot: the outer loop is
    # recorded again, calling the nested loop's trace).
    rows: list[list[Any]] = [list(range(10)) for _ in range(300)]
    for row in rows[20::every]:
        row[depth] = 0.5
    stats = differential(numbers, rows)
    if every == 3:  # recorded again, calling the nested trace (which gets a bridge)
        assert stats["traces"] >= 3 and stats["inlined_loops"] == 1, stats


def test_a_local_changes_type_inside_an_inlined_loop() -> None:
    def changes(n: int) -> object:
        acc: Any = 0
        other = 0
        for i in range(n):
            for j in range(6):
                acc += j
                if i == n // 2 and j == 3:
                    acc = acc / 2  # a float from here on, in the middle of the nested loop
            other += i
        return acc, other

    stats = differential(changes, 300)
    assert stats["inlined_loops"] >= 1


def test_a_local_only_the_nested_loop_uses_changes_type() -> None:
    def own(n: int) -> object:
        total = 0.0
        for i in range(n):
            step: Any = 0.25 if i < n - 30 else 1  # the nested loop's own local: an int at the end
            for _ in range(5):
                total += step
        return total

    differential(own, 300)


@pytest.mark.parametrize("at", [7, 1234, 2999])
def test_an_exception_inside_an_inlined_loop(at: int) -> None:
    def raises(n: int) -> int:
        total = 0
        for i in range(n):
            for j in range(5):
                total += 100 // (i * 5 + j - at)
        return total

    differential(raises, 700)


def test_an_exception_caught_around_an_inlined_loop() -> None:
    def caught(n: int) -> tuple[int, int]:
        total, errors = 0, 0
        for i in range(n):
            try:
                for j in range(6):
                    total += 100 // (j - i % 11)
            except ZeroDivisionError:
                errors += 1
        return total, errors

    differential(caught, 500)


LIMIT = 2_000


def checked(value: int) -> int:
    if value > LIMIT:
        raise ValueError(f"{value} is over the limit")
    return value


def test_a_call_raising_inside_an_inlined_loop_keeps_its_traceback() -> None:
    def calls(n: int) -> int:
        total = 0
        for i in range(n):
            for j in range(5):
                total += checked(i * 5 + j)
        return total

    differential(calls, 1000)


def test_an_object_the_inlined_loop_leaves_on_the_stack() -> None:
    def first_big(rows: list[list[int]]) -> list[object]:
        found: list[object] = []
        for row in rows:
            for x in row:
                if x > 40:
                    break
            else:
                x = -1
            found.append(x)
        return found

    differential(first_big, [[(i * 7 + j * 13) % 50 for j in range(8)] for i in range(400)])


def test_inlined_loops_in_sequence_and_nested_three_deep() -> None:
    def three(n: int) -> tuple[int, float]:
        count, total = 0, 0.0
        for i in range(n):
            for j in range(4):
                for k in range(3):
                    count += i + j * k
            for m in range(5):
                total += m * 0.5
        return count, total

    stats = differential(three, 400)
    assert stats["inlined_loops"] >= 2


def test_range_iterators_made_without_a_range_object() -> None:
    def ranges(n: int) -> tuple[int, int]:
        total, count = 0, 0
        for i in range(n):
            for j in range(i - 5, i % 9):  # empty when i >= 9, from a negative start
                total += j
            for k in range(i % 4):
                count += k
        return total, count

    differential(ranges, 300)


def test_a_range_iterator_whose_length_overflows() -> None:
    def huge(n: int) -> int:
        total = 0
        low = -(2**63) + 1
        for i in range(n):
            bound = 5 if i < n - 3 else 2**63 - 1  # a length beyond 64 bits: CPython's long range
            for j in range(low if i >= n - 3 else 0, bound):
                total += j % 7
                if j < low + 4:  # only in the long one
                    break
        return total

    differential(huge, 200)


# --- random nests ------------------------------------------------------------

_INNER_STATEMENTS = (
    "acc += j * c",
    "acc = acc + j * 0.5",  # a float from here on
    "f = f * 0.5 + j",
    "if j == t:\n    break",
    "if (i + j) % m == 0:\n    continue",
    "acc += 10 // (j - d)",  # raises ZeroDivisionError sometimes
    "if i == h and j == 1:\n    acc = acc * 0.5",
    "s += row[j % len(row)]",  # ints, with a float somewhere
    "k = j",
    "f = -f if f > 100.0 else f + 1.5",
)
_OUTER_STATEMENTS = (
    "acc += i",
    "f += 0.25",
    "acc += k",  # the nested loop's local: unbound until it has run
    "out.append(acc)",
    "c = c + 1 if i % 3 == 0 else c",
)
_INNER_ITERABLES = ("range(w)", "range(i % 7)", "range(i - 3, i % 5 + 2)", "row", "tuple(row)")


def nested_program(seed: int) -> str:
    """A function `g(n, w, t, m, d, h, rows)` with a loop nested in another,
    built from the statements above."""
    rng = random.Random(seed)
    inner = [rng.choice(_INNER_STATEMENTS) for _ in range(rng.randint(1, 4))]
    outer = [rng.choice(_OUTER_STATEMENTS) for _ in range(rng.randint(0, 2))]
    body = "\n".join(textwrap.indent(statement, " " * 12) for statement in inner)
    iterable = rng.choice(_INNER_ITERABLES)
    loop_variable = "j" if "row" not in iterable else "x"
    lines = [
        "def g(n, w, t, m, d, h, rows):",
        "    acc, f, s, c = 0, 0.5, 0, 3",
        "    out = []",
        "    for i in range(n):",
        "        row = rows[i % len(rows)]",
        f"        for {loop_variable} in {iterable}:",
    ]
    if loop_variable == "x":
        lines.append("            j = int(x)")
    lines.append(body)
    if rng.random() < 0.3:
        lines += ["        else:", "            acc += 1"]
    lines += [textwrap.indent(statement, " " * 8) for statement in outer]
    lines.append("    return acc, f, s, c, out[-3:]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(60))
def test_random_nests(seed: int) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(nested_program(seed), f"<nest {seed}>", "exec"), namespace)
    rng = random.Random(seed * 7 + 1)
    rows = [[rng.randint(-3, 9) for _ in range(rng.randint(1, 8))] for _ in range(5)]
    rows[rng.randrange(5)][0] = 2.5
    differential(namespace["g"], rng.choice((150, 400)), rng.randint(2, 9), rng.randint(1, 12),
                 rng.randint(2, 7), rng.randint(-2, 12), rng.randint(0, 300), rows, native=False)


def test_ctrl_c_interrupts_an_inlined_loop(tmp_path: Path) -> None:
    script = tmp_path / "spin.py"
    script.write_text(textwrap.dedent("""
        def spin():
            total = 0.0
            for i in range(10**12):
                for j in range(50):
                    total = (total + j) * 0.5
            return total
        print("spinning", flush=True)
        spin()
    """))
    err = interrupted(script, tmp_path / "s.json")
    assert "in spin" in err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["inlined_loops"] >= 1 and stats["native_entries"] >= 1


def _escape_times_lowered() -> list[Any]:
    """The lowerings of escape_times(12)'s traces, at threshold 1."""
    jit = JIT(1)
    jit.enable(escape_times.__code__)
    try:
        escape_times(12)
    finally:
        jit.disable()
    return [location.lowered for location in jit.locations.values() if location.lowered is not None]


def test_the_escape_loop_inlined_spills_nothing() -> None:
    # zr's register is free between `2.0 * zr` and the store to zr: the new
    # zr need not go through a spill slot (docs/optimizer.md).
    texts = [lowered.text for lowered in _escape_times_lowered() if lowered.lowering.inlined_loops]
    assert texts
    loop = texts[0].split("\ninner", 1)[1].split("_JUMP jump=inner", 1)[0]
    assert "_MUL_FLOAT" in loop and "_SPILL" not in loop, loop


def test_the_text_of_a_trace_parses_to_its_instructions() -> None:
    # The lowering makes instructions directly (asm.make rows); the text
    # form that explain and the log show must be what they are.
    lowered = _escape_times_lowered()
    assert any(each.lowering.inlined_loops for each in lowered)
    for each in lowered:
        assert asm.parse(each.text) == each.instructions


def test_a_big_nested_loop_is_called_not_inlined() -> None:
    body = "\n".join(f"            t = t * 0.5 + x * {k}.25 - y" for k in range(15))
    source = (f"def big(n):\n    t = 0.0\n    for x in range(n):\n        y = x * 0.5\n"
              f"        for _ in range(3):\n{body}\n    return t\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<big>", "exec"), namespace)
    stats = differential(namespace["big"], 300)
    assert stats["inlined_loops"] == 0 and stats["traces"] >= 2


def test_inlined_loops_leak_no_references() -> None:
    key = 2**70 + 1  # an int beyond 64 bits: an object all the way

    def find(rows: list[list[object]], n: int) -> tuple[int, object]:
        found, last = 0, 0
        for i in range(n):
            for item in rows[i % len(rows)]:
                if item == key:
                    break
            else:
                item = 0
            if item == key:
                found += 1
            last = item
        return found, last

    rows: list[list[object]] = [[2**70, 2**71, key, 2**72], [5, 2**73], [key], [2**74, 1, 2, 3, 4]]
    before = [sys.getrefcount(key), *(sys.getrefcount(row) for row in rows)]
    stats = differential(find, rows, 20_000)
    assert stats["inlined_loops"] >= 1
    # The items stored and compared, the iterators pushed and popped.
    assert [sys.getrefcount(key), *(sys.getrefcount(row) for row in rows)] == before


# --- nested loops with ops before their loop (licm) -------------------------

RATE = 0.5


def set_rate(k: int) -> None:
    global RATE
    RATE = k if k % 50 == 49 else k * 0.25  # an int at times: the moved type guard leaves


def invariant_loads(n: int, m: int) -> tuple[float, float]:
    """The inner loop's loads of RATE, math.pi and math.sqrt move before its
    loop (licm); run inline, that pre-header runs at each of its entries."""
    total, last = 0.0, 0.0
    for _ in range(n):
        for i in range(m):
            total += RATE * i + math.pi + math.sqrt(i)
        last = total
    return total, last


def rebinds_between_entries(n: int, m: int) -> float:
    total = 0.0
    for k in range(n):
        set_rate(k)
        for i in range(m):
            total += RATE * i + math.pi
    return total


def test_a_nested_loop_with_a_pre_header_runs_inline() -> None:
    stats = differential(invariant_loads, 300, 20)
    assert stats["inlined_loops"] >= 1, stats
    assert stats["native_entries"] < 100, stats


@pytest.mark.parametrize("m", [3, 20])
def test_a_global_rebound_between_entries_of_an_inlined_loop(m: int) -> None:
    global RATE
    saved = RATE
    try:
        stats = differential(rebinds_between_entries, 300, m)
    finally:
        RATE = saved
    assert stats["inlined_loops"] >= 1 and stats["exits"] >= 1, stats


# --- list iterators a trace releases, kept idle for its next iter() --------


def weighted(rows: list[list[float]], passes: int) -> tuple[float, int]:
    total, count = 0.0, 0
    for p in range(passes):
        for row in rows:  # iter(rows) at every pass, iter(row) at every row
            for x in row:
                total += x * p
                count += 1
    return total, count


WEIGHTED_ROWS = [[float(i * j) for j in range(i % 4)] for i in range(9)]  # (some empty)


def _exhausted() -> object:
    it = iter([])
    next(it, None)
    return it


def check_made_again() -> None:
    from copyjit.backend.runtime import runtime

    differential(weighted, WEIGHTED_ROWS, 400)
    made = runtime().idle_iterators()
    assert made, "no list iterator was kept idle"
    for it in made:  # idle as an exhausted one: no list, nothing left
        assert type(it) is type(_exhausted())
        assert it.__reduce__() == _exhausted().__reduce__() and it.__length_hint__() == 0
        assert next(it, None) is None


def check_held_elsewhere() -> None:
    # The idle iterators stay tracked by the GC (gc.get_objects() finds
    # them): one that something holds is left to it, and stays exhausted.
    from copyjit.backend.runtime import runtime

    differential(weighted, WEIGHTED_ROWS, 50)
    held = runtime().idle_iterators()
    assert held
    differential(weighted, WEIGHTED_ROWS, 400)
    for it in held:
        assert it.__reduce__() == _exhausted().__reduce__() and next(it, None) is None
    assert any(all(it is not old for old in held) for it in runtime().idle_iterators())


@pytest.mark.parametrize("check", ["check_made_again", "check_held_elsewhere"])
def test_list_iterators_a_trace_releases_are_made_again(check: str) -> None:
    # In a process of its own: once tracemalloc has run, CPython 3.13 keeps
    # its reference tracer set, and traces then reuse no object (copyjit.h's
    # copyjit_untraced).
    done = subprocess.run([sys.executable, "-c", f"from tests.test_nested import {check}; {check}()"],
                          cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
