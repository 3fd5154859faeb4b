"""Nested loops: the inner loop's trace runs from inside the outer loop's
trace, so both run natively; anything unexpected in the inner loop leaves
the frame exact for the interpreter."""

from __future__ import annotations

from typing import Any

import pytest

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
