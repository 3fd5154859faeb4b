"""Locals that hold float objects but are only read for arithmetic (n-body's
`x1` of `for ([x1, y1, z1], v1, m1), ... in pairs`, read by `x1 - x2`) are
kept unboxed: checked and unboxed where they are stored, never stored in the
frame as objects inside the loop (record_base.numeric, bytecode.numeric_locals);
and a type guard right before an unbox that checks the type itself is dropped
(the `checks` pass). Each as input -> expected, and under the JIT as under
CPython."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from copyjit.opt.passes import checks
from copyjit.opt.text import parse
from copyjit.trace.bytecode import numeric_locals
from tests.test_objects import differential
from tests.test_opt import recordings_of, same


def _numeric(function: Any) -> set[str]:
    code = function.__code__
    return {code.co_varnames[slot] for slot in numeric_locals(code, 0, len(code.co_code))}


# --- which locals ------------------------------------------------------------


def distances(pairs: list[tuple[list[float], list[float]]]) -> float:
    total = 0.0
    for (x1, y1), (x2, y2) in pairs:
        dx = x1 - x2
        dy = y1 - y2
        total += (dx * dx + dy * dy) ** 0.5
    return total


def test_locals_read_only_by_arithmetic_are_numeric() -> None:
    # (total is returned too: not numeric)
    assert _numeric(distances) == {"x1", "y1", "x2", "y2", "dx", "dy"}


def kept(values: list[float], out: list[float]) -> int:
    count = 0
    for a, b, c, d, e, f, g in values:  # type: ignore[misc]
        out.append(a)  # a call's argument
        count += len(out) if b is None else 0  # an identity test
        out[int(c)] = 0.0  # another call's argument
        print(-d, e if f else 0.0)  # -d: arithmetic; e: a conditional expression's
        del g  # not a value at all
    return count


def test_locals_read_any_other_way_or_never_are_not() -> None:
    assert _numeric(kept) == {"d"}


# --- the recording ---------------------------------------------------------


def pairs_main(n: int) -> float:
    points = [([float(k), k * 0.5], 1.5 + k) for k in range(8)]
    return sum(distance_sums(points, n // 8))


def distance_sums(points: list[tuple[list[float], float]], steps: int) -> list[float]:
    sums = []
    for _ in range(steps):
        total = 0.0
        for [x, y], m in points:
            total += (x * x + y * y) * m
        sums.append(total)
    return sums


def test_unpacked_floats_are_stored_unboxed() -> None:
    texts = recordings_of(Path(__file__), "pairs_main", 400)
    inner = next(t for t in texts if "list_item" in t)
    head, body = inner.split("\n", 1)
    slots = dict(pair.split(":") for pair in head.split("slots=")[1].split()[0].split(","))
    code = distance_sums.__code__
    assert all(slots[str(code.co_varnames.index(name))] == "f" for name in ("x", "y", "m")), head
    assert "store_o" not in body and "store.f" in body
    # the items are read without references of their own, and checked once, by their unbox
    assert "list_item_b" in body and "guard_type.(v" not in body.split("list_item_b")[-1].split("store")[0]


# --- under the JIT as under CPython -------------------------------------------


class Sub(float):
    pass


def unpacked(rows: list[list[Any]], n: int) -> tuple[object, ...]:
    total = 0.0
    a = b = None
    for _ in range(n):
        for a, b in rows:
            total += a * 2.0 - b
    return total, a, b, type(a).__name__, type(b).__name__


def test_unpacked_floats_give_cpythons_results() -> None:
    differential(unpacked, [[1.5, 0.25], [2.5, -1.0], [3.0, 7.5]], 200)


def test_an_item_of_another_kind_exits_where_it_is_stored() -> None:
    # an int, a float subclass, a big int: the guard at the store leaves,
    # the interpreter stores it, and the arithmetic gives CPython's answer
    for odd in (7, Sub(2.5), 2**70, True):
        rows = [[1.5, 0.25], [2.5, -1.0], [3.0, 7.5]]
        differential(unpacked, rows, 60, native=False)
        rows.append([odd, 0.5])
        differential(unpacked, rows, 60, native=False)


def _peek(name: str) -> object:
    return sys._getframe(1).f_locals[name]


def read_by_a_callee(rows: list[list[float]], n: int) -> tuple[object, ...]:
    seen = []
    for i in range(n):
        for a, b in rows:
            total = a - b
            if i % 50 == 0:
                seen.append((_peek("a"), _peek("total")))
    return seen, total, a  # type: ignore[possibly-undefined]


def test_a_callee_reading_the_frame_sees_the_unboxed_locals() -> None:
    differential(read_by_a_callee, [[1.5, 0.25], [2.5, -1.0]], 200)


def test_an_exception_in_the_loop_leaves_the_locals_as_cpython_does() -> None:
    def raising(rows: list[list[float]], n: int) -> tuple[object, ...]:
        x = y = 0.0
        done = 0
        try:
            for _ in range(n):
                for x, y in rows:
                    _ = 1.0 / (x - y)
                done += 1
        except ZeroDivisionError as error:
            return "raised", str(error), x, y, done
        return "done", x, y

    differential(raising, [[1.0, 0.5]] * 40 + [[2.0, 2.0]], 50)


# --- checks: the unbox's own type check ---------------------------------------


def test_checks_drops_a_type_guard_its_unbox_makes_again() -> None:
    float_type, int_type, list_type = id(float), id(int), id(list)
    rec = parse(f"""trace dst=0 src=0 slots=1:f stored=1
a = load_o.o() 2
    guard_type.(a) {float_type} | exit @2 stack a
x = unbox.f(a) | exit @2 stack a
    release.(a)
b = load_o.o() 3
    guard_type.(b) {int_type} | exit @4 stack b
i = unbox.i(b) | exit @4 stack b
    guard_type.(b) {int_type} | exit @6 stack b
j = unbox.i(b) | exit @8 stack b
    guard_type.(b) {list_type} | exit @10 stack b
k = unbox.f(b) | exit @10 stack b
    guard_type.(a) {float_type} | exit @12 stack a
y = unbox.f(b) | exit @12 stack a
    release.(b)
    store.f(x) 1
""")
    same(checks(rec), f"""trace dst=0 src=0 slots=1:f stored=1
a = load_o.o() 2
x = unbox.f(a) | exit @2 stack a
    release.(a)
b = load_o.o() 3
i = unbox.i(b) | exit @4 stack b
    guard_type.(b) {int_type} | exit @6 stack b
j = unbox.i(b) | exit @8 stack b
    guard_type.(b) {list_type} | exit @10 stack b
k = unbox.f(b) | exit @10 stack b
    guard_type.(a) {float_type} | exit @12 stack a
y = unbox.f(b) | exit @12 stack a
    release.(b)
    store.f(x) 1
""")
