"""A guard's exit as one uop and a table (lower.py's exit_tail and data_row,
objects.c's copyjit_exit_data): the table's moves follow
the spill rows they replace, and exits taken through it hand the frame
back as CPython would have it (numbers boxed, borrowed values referenced,
an inlined call's values released, NULLs pushed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from copyjit import explainer
from copyjit.backend.asm import make
from copyjit.trace.jit import JIT
from copyjit.trace.lower import _moves
from tests.conftest import outcome


def test_moves_follow_the_spill_rows_in_order() -> None:
    rows = [make("_SPILL_INT", ("i2",), oparg=5),
            make("_SPILL_FLOAT2", ("f0", "f1"), oparg=6, operand0=7),
            make("_RELOAD_INT", (), ("i0",), oparg=3),  # a copy from a home slot, through i0
            make("_SPILL_INT", ("i0",), oparg=8),
            make("_SPILL_INT2", ("i3", "i0"), oparg=9, operand0=10)]  # i0 is slot 3's value by now
    assert _moves(rows) == [5, 2, 6, 4, 7, 5, 8, 8 + 3, 9, 3, 10, 8 + 3]


def test_rows_other_than_spills_and_reloads_are_no_moves() -> None:
    assert _moves([make("_SPILL_INT", ("i1",), oparg=2), make("_DECREF_O", ("i0",))]) is None
    assert _moves([]) == []


def overflow(n: int) -> tuple[int, float]:
    """Ints and floats on the stack when a guard fails (the overflow)."""
    total, x = 1, 0.5
    for i in range(n):
        x = x * 1.0001 + i
        total = total * 3 + i  # leaves the 64-bit range: exits with numbers to box
        total %= 10**30
    return total, x


def items(n: int) -> float:
    """Borrowed items on the stack when a type guard fails."""
    values: list[Any] = [float(i) for i in range(1000)]
    values[400] = 7  # an int where floats were: the guard on the item fails
    values[700] = 2**70
    s = 0.0
    for i in range(n):
        s += values[i % 1000] * 2.0 + values[(i + 1) % 1000]
    return s


def twice(a: Any, b: Any) -> Any:
    return a * 2 + b


def calls(n: int) -> Any:
    """An inlined call's values to release, and NULL pushed before the callable."""
    s: Any = 0
    for i in range(n):
        v: Any = i if i % 97 else 1.5  # a float now and then: guards in the inlined body fail
        s = s + twice(v, i) + abs(v - 50)
    return s


def constants(n: int) -> Any:
    """A borrowed constant and local on the stack when a guard fails."""
    k = 3
    s: Any = 0
    for i in range(n):
        s = 7 + (k * (i if i % 101 else 2**70))  # the big int fails a guard mid-expression
    return s


PROGRAMS: list[tuple[Callable[[int], Any], int]] = [
    (overflow, 200), (items, 3000), (calls, 3000), (constants, 3000)]


@pytest.mark.parametrize(("function", "n"), PROGRAMS, ids=[f.__name__ for f, _ in PROGRAMS])
def test_exits_through_a_table_give_cpython_results(function: Callable[[int], Any], n: int) -> None:
    expected = outcome(function, n)
    jit = JIT(1)
    jit.enable(function.__code__)
    try:
        got = outcome(function, n)
    finally:
        jit.disable()
    assert got == expected
    reports = explainer.collect(jit, explainer.codes_of(function))
    traces = [report.trace for report in reports if report.trace is not None]
    assert traces, [report.why for report in reports]
    # The guards' exits are each one uop that reads a table, and some were taken.
    assert any("_EXIT_DATA" in ins.uop_text for trace in traces for ins in trace.instructions)
    taken = [exit for report in reports for exit in report.exits if not exit.normal and exit.taken]
    assert taken, [(exit.guard, exit.taken) for report in reports for exit in report.exits]
