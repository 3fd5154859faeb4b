"""Allocation removal (copyjit/opt/passes.py: allocs): a float stored into a
list item is stored unboxed, and reuses the item's float object when only
the list holds it. Nothing may tell: objects held elsewhere (a local, an
alias, another slot of the list, a float subclass, a C container) keep
their values; out-of-range indexes raise as in CPython; the old items are
freed as in CPython, running their __del__."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from copyjit.opt import optimize
from copyjit.opt.text import parse
from copyjit.trace.jit import JIT
from tests.test_objects import differential, full_outcome
from tests.test_opt import recordings_of


class Sub(float):
    pass


def bump(vector: list[Any], n: int) -> list[Any]:
    for i in range(n):
        vector[i % len(vector)] += 0.5
    return vector


def bumped_under_the_jit(function: Any, *args: object) -> None:
    """`function` (which calls bump) with the JIT on bump: as under CPython."""
    expected = full_outcome(function, *args)
    jit = JIT(1)
    jit.enable(bump.__code__)
    try:
        assert full_outcome(function, *args) == expected
    finally:
        jit.disable()
    assert jit.stats.native_entries >= 1 and jit.stats.traces >= 1


def test_items_held_elsewhere_keep_their_values() -> None:
    def held(n: int) -> tuple[Any, ...]:
        shared = 1.25
        vector = [shared, shared, 2.5, Sub(3.5)]
        first = vector[2]
        kept = (vector[2],)
        bump(vector, n)
        return vector, shared, first, kept, [type(x).__name__ for x in vector], vector[0] is vector[1]

    bumped_under_the_jit(held, 400)


def test_a_reused_item_is_not_a_new_object_to_anyone_holding_the_old_one() -> None:
    def keeps(n: int) -> tuple[Any, ...]:
        vector = [0.0, 1.0]
        olds = []
        for i in range(n):
            vector[i % 2] += 0.5
            if i % 7 == 0:  # a second reference: the next store must make a new float
                olds.append(vector[0])
        return vector, olds

    differential(keeps, 400)


@pytest.mark.parametrize("item", [7, "s", None, 2**70, Sub(1.5), [1.0]])
def test_an_item_of_another_type_is_replaced_and_released(item: object) -> None:
    def replaces(n: int) -> list[Any]:
        vector: list[Any] = [0.0, 1.0, 2.0]
        for i in range(n):
            vector[1] = i * 0.5
            if i == n // 2:
                vector[1] = item
                vector[1] = 9.0
        return vector

    differential(replaces, 400)


def test_an_old_item_with_del_is_freed_where_cpython_frees_it() -> None:
    def frees(n: int) -> list[Any]:
        log: list[Any] = []

        class Noisy:
            def __del__(self) -> None:
                log.append(len(log))

        vector: list[Any] = [0.0, 1.0]
        for i in range(n):
            vector[0] = i * 1.5
            if i % 50 == 0:
                vector[0] = Noisy()
        return [log, vector]

    differential(frees, 400)


def test_an_index_out_of_range_raises_as_in_cpython() -> None:
    def shrinks(n: int) -> list[Any]:
        vector = [0.0, 1.0, 2.0]
        for i in range(n):
            vector[2] = i * 0.25
            if i == n // 2:
                vector.pop()
        return vector

    differential(shrinks, 400)


def test_refcounts_of_items_are_cpythons() -> None:
    jit = JIT(1)
    jit.enable(bump.__code__)
    try:
        vector = [0.5, 1.5, 2.5]
        bump(vector, 5000)
    finally:
        jit.disable()
    plain = bump([0.5, 1.5, 2.5], 5000)
    assert vector == plain
    assert [sys.getrefcount(x) for x in vector] == [sys.getrefcount(x) for x in plain]


def test_the_pass_rewrites_the_stores_of_bump() -> None:
    texts = recordings_of(Path(__file__), "bump_main", 300)
    ops = [op.name for text in texts for op in optimize(parse(text)).ops]
    assert "store_subscr_list_f" in ops and "store_subscr_list" not in ops


def bump_main(n: int) -> list[Any]:
    return bump([0.0, 1.0, 2.0], n)
