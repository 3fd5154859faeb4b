"""Allocation removal (copyjit/opt/passes.py: allocs): a float stored into a
list item is stored unboxed, and reuses the item's float object when only
the list holds it. Nothing may tell: objects held elsewhere (a local, an
alias, another slot of the list, a float subclass, a C container) keep
their values; out-of-range indexes raise as in CPython; the old items are
freed as in CPython, running their __del__."""

from __future__ import annotations

import math
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


def replaces_held_items(n: int) -> tuple[Any, ...]:
    """Stores over items something else holds too (n-body's pattern: a
    local bound to the item as the nested loop runs): a new float replaces
    each, made in the stencil from the freelist, and the list's reference
    to the old one is released."""
    vector = [0.5, 1.5, 2.5]
    kept = vector[0]  # held from before the loop: replaced at the first store
    held = 0.0
    for i in range(n):
        held = vector[i % 3]
        for k in range(3):
            vector[k] += 0.25
            vector[-1] -= 0.125  # (a negative index: the other variant of the uop)
    return vector, held, kept


def reruns_sound(function: Any, n: int) -> tuple[Any, JIT]:
    """`function(n)` with the JIT on it, then three times more: the same
    result each time, and no more blocks allocated (a float lost, or freed
    or released twice, would show). Returns the first result and the JIT."""
    jit = JIT(1)
    jit.enable(function.__code__)
    try:
        expected = function(n)
        blocks = sys.getallocatedblocks()
        for _ in range(3):
            assert function(n) == expected
        assert abs(sys.getallocatedblocks() - blocks) < 20
    finally:
        jit.disable()
    return expected, jit


def test_items_replaced_while_held_are_released_once() -> None:
    differential(replaces_held_items, 400)
    got, jit = reruns_sound(replaces_held_items, 400)
    assert jit.stats.native_entries >= 1, jit.stats.aborts
    plain = replaces_held_items(400)
    assert got == plain
    assert [sys.getrefcount(x) for x in got[1:]] == [sys.getrefcount(x) for x in plain[1:]]
    texts = recordings_of(Path(__file__), "replaces_held_items", 300)
    assert "store_over_f" in [op.name for text in texts for op in optimize(parse(text)).ops]


def bump(vector: list[Any], n: int) -> list[Any]:
    for i in range(n):
        vector[i % len(vector)] += 0.5
    return vector


def under_the_jit(traced: Any, function: Any, *args: object) -> dict[str, Any]:
    """`function` (which calls `traced`) with the JIT on `traced`: as under
    CPython. Returns the JIT's stats."""
    expected = full_outcome(function, *args)
    jit = JIT(1)
    jit.enable(traced.__code__)
    try:
        assert full_outcome(function, *args) == expected
    finally:
        jit.disable()
    assert jit.stats.native_entries >= 1 and jit.stats.traces >= 1, jit.stats.aborts
    return jit.stats.as_dict()


def test_items_held_elsewhere_keep_their_values() -> None:
    def held(n: int) -> tuple[Any, ...]:
        shared = 1.25
        vector = [shared, shared, 2.5, Sub(3.5)]
        first = vector[2]
        kept = (vector[2],)
        bump(vector, n)
        return vector, shared, first, kept, [type(x).__name__ for x in vector], vector[0] is vector[1]

    under_the_jit(bump, held, 400)


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


class Clobbers:
    """Freed, it runs libm (pow, exp, sin), which works in many xmm
    registers: where a trace frees one, the doubles it holds must survive."""

    def __del__(self) -> None:
        x = 1.25
        for _ in range(3):
            x = math.sin(x ** 1.37 + math.exp(x / 7.0))


def frees_while_holding_doubles(items: list[Any]) -> tuple[float, ...]:
    a, b, c, d = 0.5, 0.25, 0.125, 1.0
    for i in range(len(items)):
        x = items[i]  # the previous x, which only x held, freed by the store's decref
        a = a * 0.5 + 0.1
        b = b + a
        c = c * 0.5 + b
        d = d + c
        items[i] = a
    del x
    return a, b, c, d


def replaces_while_holding_doubles(items: list[Any]) -> tuple[float, ...]:
    a, b, c, d = 0.5, 0.25, 0.125, 1.0
    for i in range(len(items)):
        a = a * 0.5 + 0.1
        b = b + a
        c = c * 0.5 + b
        d = d + c
        items[i] = a  # the item, which only the list held, freed by the store's slow half
    return a, b, c, d


@pytest.mark.parametrize("function", [frees_while_holding_doubles, replaces_while_holding_doubles])
def test_doubles_in_registers_survive_a_free_that_runs_libm(function: Any) -> None:
    # copyjit_dealloc_rax keeps only xmm0..xmm3 (the decref's assembly
    # declares the others clobbered), and the slow halves are preserve_most
    # (the stencil saves its doubles around the call). Not restoring xmm2
    # and xmm3 in copyjit_dealloc_rax made the first of these nan.
    under_the_jit(function, lambda: function([Clobbers() for _ in range(600)]))


def test_an_index_out_of_range_raises_as_in_cpython() -> None:
    def shrinks(n: int) -> list[Any]:
        vector = [0.0, 1.0, 2.0]
        for i in range(n):
            vector[2] = i * 0.25
            if i == n // 2:
                vector.pop()
        return vector

    differential(shrinks, 400)


def stores_over_items(n: int) -> tuple[Any, ...]:
    """`v[k] op= d` stores over the float just read (store_over_f): in
    place only when the list alone holds it."""
    x = 0.25
    v = [x, x, 1.5, -2.5, Sub(3.0)]  # one float twice; a subclass
    held = v[2]
    for i in range(n):
        v[0] -= 0.5  # a float two items hold, at first
        v[i % 4] += i * 0.125
        v[-2] *= 1.0001  # a negative index
        if i == n // 2:
            v[3] = x  # held by x too, now
        if i > n - 5:
            v[4] += 1.0  # not an exact float: leaves, then a float
    return v, held, x


def test_stores_over_items_give_cpythons_values_and_refcounts() -> None:
    differential(stores_over_items, 400)
    jit = JIT(1)
    jit.enable(stores_over_items.__code__)
    try:
        got = stores_over_items(400)
    finally:
        jit.disable()
    # (counted here: while a loop is recorded, the recorder holds references too)
    plain = stores_over_items(400)[0]
    assert [sys.getrefcount(item) for item in got[0]] == [sys.getrefcount(item) for item in plain]


class Sub(float):
    pass


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
    # The unboxed store (allocs), over the item just read (checks: tests/test_checks.py).
    assert "store_over_f" in ops and "store_subscr_list" not in ops


def bump_main(n: int) -> list[Any]:
    return bump([0.0, 1.0, 2.0], n)


# --- big ints added in place (add_int_o) ------------------------------------

MASK = (1 << 30) - 1  # one digit of CPython's ints


def grows(n: int) -> tuple[int, int]:
    x, i = 1, 0
    while i < n:
        x = x * 3 + i
        i += 1
    return x.bit_length(), x % 1_000_000_007


def carries(start: int, step: int, n: int) -> list[int]:
    """`x * 1 + step`: every carry a positive big int's digits can make."""
    x, seen = start, []
    for _ in range(n):
        x = x * 1 + step
        seen.append(x)
    return seen


@pytest.mark.parametrize("start, step", [  # (starts beyond 64 bits: boxed from the first iteration)
    ((1 << 90) - 7, 1),                  # the carry reaches a new top digit: a new int
    ((((1 << 120) - 1) ^ (1 << 100)) - 9, 1),  # ... stops two digits below the top (not at once:
    ((((1 << 120) - 1) ^ (1 << 100)) - 9 * MASK, MASK),  # the first add is the interpreter's)
    ((1 << 64) + 17, MASK),              # the largest one-digit step: carries often
    ((1 << 64) + 17, MASK + 1),          # a two-digit step: not in place
    ((1 << 64) + 17, -3),                # a negative step
    (-(1 << 64) - 17, 5),                # a negative int
    (7, 5),                              # small ints: unboxed, not this op
    ((1 << 64) - 3, 0),
])
def test_in_place_adds_give_pythons_ints(start: int, step: int) -> None:
    differential(carries, start, step, 300)


def test_a_big_int_held_elsewhere_keeps_its_value() -> None:
    def held(n: int) -> tuple[Any, ...]:
        x, kept = 1 << 80, []
        for i in range(n):
            y = x * 1
            kept.append(y)
            x = y + i  # y is a local and in a list: never changed in place
        return x, kept[:5], kept[-5:]

    differential(held, 400)


def test_a_failing_add_exits_and_raises_as_in_cpython() -> None:
    def fails(n: int) -> Any:
        x = 1 << 80
        for i in range(n):
            x = x * 1 + (i if i < n // 2 else "no")  # type: ignore[operator]
        return x

    differential(fails, 400)


def test_grow_is_added_in_place_and_gives_pythons_answer() -> None:
    differential(grows, 3000)
    texts = recordings_of(Path(__file__), "grows", 300)
    ops = [op.name for text in texts for op in optimize(parse(text)).ops]
    assert "add_int_o" in ops


def test_the_pass_takes_only_a_temporary_released_right_after() -> None:
    trace = """trace dst=0 src=10 slots=0:o,1:i stored=0
v0 = load_o.o() 0
     guard_type.(v0) {int_id} | exit @2 stack v0
v2 = load.i() 1
v3 = box.o(v2) | exit @4 stack v0 v2
v4 = binary_o.o(v0, v3) 0 | exit @4 stack v0 v3
     {tail}
     release.(v3)
     store_o.(v4) 0
"""
    int_id = id(int)
    taken = optimize(parse(trace.format(int_id=int_id, tail="release.(v0)")))
    names = [op.name for op in taken.ops]
    assert "add_int_o" in names and "box" not in names and names.count("release") == 0
    # v0 seen by an exit after the add: it must not be taken (nor changed).
    later_exit = "v9 = load.i() 1\n     branch.i(v9, v9) ('LT', True) | exit @8 stack v0\n"
    kept = trace.format(int_id=int_id, tail="release.(v0)").replace(
        "     store_o.(v4) 0\n", "     store_o.(v4) 0\n" + later_exit)
    assert "add_int_o" not in [op.name for op in optimize(parse(kept)).ops]


def test_the_float_freelist_and_tracer_fields_fit_this_interpreter() -> None:
    """copyjit.h frees and makes floats through CPython's freelist itself,
    reading the reference tracer and tracemalloc's flag from _PyRuntime:
    the start-up check finds each where the stencils read it."""
    import tracemalloc

    from copyjit.backend.runtime import runtime

    check = runtime().check_floats
    assert not tracemalloc.is_tracing()
    assert check(0) == 1 and check(1) == 0  # (a wrong flag is told apart)
    tracemalloc.start()
    try:
        assert check(1) == 1 and check(0) == 0
    finally:
        tracemalloc.stop()


def shuffles(n: int) -> tuple[Any, ...]:
    """Floats freed inside the trace (the locals' old values, released at
    its exits; items replaced while a local holds them) and made there."""
    total = 0.0
    vector = [0.5, 1.5, 2.5]
    first = second = 0.0
    for _ in range(n):
        for i in range(3):
            first = vector[i]
            vector[i] += 0.25 * i
            second = vector[i] * 2.0
            total += first - second / 4.0
    made = [x + 0.5 for x in range(300)]  # the freelist, after: still CPython's
    return total, vector, first, second, sum(made), len({id(x) for x in made})


@pytest.mark.parametrize("tracing", [False, True])
def test_floats_freed_and_made_in_traces_leave_the_freelist_sound(tracing: bool) -> None:
    import tracemalloc

    if tracing:  # (floats are then made by PyFloat_FromDouble, which tells tracemalloc)
        tracemalloc.start()
    try:
        differential(shuffles, 3000)
        reruns_sound(shuffles, 3000)
    finally:
        if tracing:
            tracemalloc.stop()
