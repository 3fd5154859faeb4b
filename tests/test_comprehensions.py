"""List comprehensions (PEP 709 runs them inline, their list on the frame's
stack below the loop's iterator): their loops are traced, LIST_APPEND as an
append to that list (`stack_b`, `append ... 'retry'`), and give what
CPython gives: numbers, objects, branches (bridges), an exception midway,
nested comprehensions, and the list's reference count."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.test_objects import differential


class Point:
    def __init__(self, x: float) -> None:
        self.x = x


def numbers(n: int) -> tuple[list[int], list[float]]:
    squares = [i * i for i in range(n)]
    halves = [x * 0.5 for x in squares]
    return squares[::97], halves[::89]


def objects(n: int) -> list[float]:
    points = [Point(float(i)) for i in range(n)]
    return [p.x for p in points][::31]


def branches(n: int) -> list[int]:
    return [x if x % 3 else -x for x in range(n)]


def raises(n: int) -> list[float]:
    return [1.0 / (i - n // 2) for i in range(n)]  # ZeroDivisionError at n // 2


def nested(n: int) -> list[list[int]]:
    return [[i * j for j in range(8)] for i in range(n)]


def inside_a_loop(n: int) -> int:
    total = 0
    for k in range(n):
        total += sum([k * j for j in range(30)])
    return total


@pytest.mark.parametrize("function", [numbers, objects, branches, raises, nested, inside_a_loop])
def test_a_comprehension_gives_what_cpython_gives(function: Any) -> None:
    stats = differential(function, 300)
    assert stats["traces"] >= 1


def test_the_comprehensions_loop_runs_natively_with_its_appends() -> None:
    stats = differential(numbers, 3000)
    assert not any("LIST_APPEND" in reason for reason in stats["aborts"]), stats["aborts"]
    assert stats["native_entries"] >= 2  # both comprehensions


def kept(n: int) -> tuple[int, int]:
    out = [i + 1 for i in range(n)]
    return sys.getrefcount(out), len(out)


def test_the_list_keeps_its_references() -> None:
    differential(kept, 500)
