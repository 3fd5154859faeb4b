"""A callee sees, and may rebind, its caller's unboxed locals.

A trace keeps int and float locals unboxed in its own slots; the frame's
slots hold what they held at entry. Before every call the trace writes
them to the frame, and after it unboxes them from there again (lower.py,
op_call), so that `sys._getframe(1).f_locals` (PEP 667: reads and writes
go to the frame), a debugger or a traceback see the values CPython would.
A callee that rebinds one to another type leaves the trace at once, the
frame exact after the CALL. Each program runs natively; each mutant of the
lowering (no write before the call, no read after it, the exact exit
writing the trace's values back) fails at least one of them.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from copyjit.trace.jit import JIT
from tests.test_faults import _FRAME_LOCALS as PROGRAM
from tests.test_faults import _run
from tests.test_objects import differential


def peek() -> Any:
    return sys._getframe(1).f_locals["x"]


def test_a_callee_reads_the_callers_float_local() -> None:
    def f(n: int) -> float:
        x, total = 1.0, 0.0
        for _ in range(n):
            x = x * 1.0000001 + 0.5
            total += peek()
        return total

    differential(f, 2000)


def halve() -> float:
    frame = sys._getframe(1)
    frame.f_locals["x"] = frame.f_locals["x"] / 2.0
    return 1.0


def test_a_callee_rebinds_the_callers_float_local() -> None:
    def f(n: int) -> tuple[float, float]:
        x, total = 1.0, 0.0
        for i in range(n):
            x = x * 1.0000001 + 0.5 + i
            if i % 7 == 0:
                total += x - halve()
            else:
                total += peek()
        return total, x

    differential(f, 3000)


def third() -> int:
    frame = sys._getframe(1)
    frame.f_locals["n"] = frame.f_locals["n"] // 3
    return 1


def test_a_callee_rebinds_the_callers_int_local_every_iteration() -> None:
    def f(m: int) -> tuple[int, int]:
        n, total = 1, 0
        for i in range(m):
            n = n + i * 1000
            total += third() + n
        return total, n

    differential(f, 3000)


def to_text(i: int) -> int:
    if i == 500:
        sys._getframe(1).f_locals["x"] = "rebound"
    return i


def test_a_local_rebound_to_another_type_leaves_the_trace_exactly() -> None:
    def f(n: int) -> tuple[object, float]:
        x: Any = 0.5
        total = 0.0
        for i in range(n):
            x = x + 1.0 if isinstance(x, float) else x
            total += to_text(i) * 0.5
        return x, total

    stats = differential(f, 1000)
    assert stats["exits"] >= 1


def test_a_local_rebound_to_a_big_int_leaves_the_trace_exactly() -> None:
    def big(i: int) -> int:
        if i == 300:
            sys._getframe(1).f_locals["k"] = 2**70
        return 1

    def f(n: int) -> int:
        k = 0
        for i in range(n):
            k += big(i)
        return k

    differential(f, 1000)


def test_the_loop_counter_is_seen_by_the_callee() -> None:
    seen: list[int] = []

    def record() -> None:
        seen.append(sys._getframe(1).f_locals["i"])

    def f(n: int) -> list[int]:
        seen.clear()
        for i in range(n):  # noqa: B007  (the callee reads it through f_locals)
            record()
        return list(seen)

    differential(f, 500)
    assert seen == list(range(500))


def test_a_rebinding_in_a_bridge() -> None:
    def f(n: int) -> tuple[int, float]:
        k, x = 0, 0.25
        for i in range(n):
            k += 3
            x += 0.5
            if i > 200 and i % 3 == 0:  # a side exit that gets a bridge
                k += third_of("k")
        return k, x

    differential(f, 2000)


def peek_k() -> Any:
    return sys._getframe(1).f_locals["k"]


def test_a_local_only_a_bridge_stores_is_seen_by_the_loops_next_call() -> None:
    """The loop's trace writes before a call only the locals it stores
    itself: a bridge writes back those of the loop's it stores."""
    def f(n: int) -> tuple[int, int]:
        k, total = 0, 0
        for i in range(n):
            total += peek_k() + k * 0  # (the loop reads k: unboxed)
            if i > 100 and i % 2 == 0:  # a side exit that gets a bridge
                k += 1
        return k, total

    differential(f, 2000)


def test_a_local_stored_late_in_one_iteration_is_seen_early_in_the_next() -> None:
    def f(n: int) -> int:
        k, total = 0, 0
        for _ in range(n):
            total += peek_k()
            k += 3
        return total

    differential(f, 1000)


def test_a_nested_loop_run_inline_sees_what_the_outer_loop_stored() -> None:
    def f(n: int) -> int:
        k, total = 0, 0
        for _ in range(n):
            k += 2
            for _ in range(3):
                total += peek_k()
        return total

    stats = differential(f, 300)
    assert stats["inlined_loops"] >= 1, stats


def test_the_outer_loop_sees_what_a_nested_loop_run_inline_stored() -> None:
    def f(n: int) -> int:
        k, total = 0, 0
        for _ in range(n):
            total += peek_k() + k * 0  # (the outer loop reads k: unboxed)
            for j in range(3):
                k += j
            total += peek_k()
        return total

    stats = differential(f, 300)
    assert stats["inlined_loops"] >= 1, stats


def look() -> None:
    sys._getframe(1)  # a frame object: the trace unboxes its locals again after the call


def test_a_local_only_a_nested_loop_run_inline_stores_is_written_before_the_next_call() -> None:
    """Found by the last frame-locals campaign (genfl2 seed 20142): the
    loop took `b` for clean at its head, as its own ops never store it,
    but the nested loop it runs inline does; the next call did not write
    it, and after it `b` was unboxed from the frame's stale value (6, not
    20: every iteration's increments lost)."""
    def f(n: int, b: int) -> tuple[int, int]:
        u = 0
        for _ in range(n):
            u = b
            look()
            for _ in range(2):
                b = b + 1
        return b, u

    stats = differential(f, 10, 0)
    assert stats["inlined_loops"] >= 1, stats
    differential(f, 3000, 5)


def third_of(name: str) -> int:
    frame = sys._getframe(1)
    frame.f_locals[name] = frame.f_locals[name] // 3
    return 0


def test_a_rebinding_inside_a_nested_loop() -> None:
    def f(n: int) -> tuple[int, float]:
        k, x = 0, 0.0
        for _ in range(n):
            x += 1.5
            for j in range(10):
                k += j
                if j == 5:
                    k += third_of("k")
        return k, x

    differential(f, 300)


def test_a_callee_that_rebinds_then_raises() -> None:
    def fail(i: int) -> None:
        sys._getframe(1).f_locals["x"] = -1.0
        if i == 400:
            raise ValueError(i)

    def f(n: int) -> tuple[float, int]:
        x, caught = 0.0, 0
        for i in range(n):
            x += 2.0
            try:
                fail(i)
            except ValueError:
                caught += 1
        return x, caught

    differential(f, 1000)


# Found by the frame-locals campaign (docs/correctness.md, bug 14): a
# callee that rebinds and then raises, its write lost at the call's exit.
def rebind_then_raise(i: int) -> None:
    sys._getframe(1).f_locals["x"] += 100
    if i % 4 == 0:
        raise ValueError(i)


def test_a_callee_that_rebinds_then_raises_keeps_its_write() -> None:
    def f(n: int) -> int:
        x = 0
        for i in range(n):
            x = x + 1
            try:  # noqa: SIM105  (a `with` is not traced: the loop would stay interpreted)
                rebind_then_raise(i)
            except ValueError:
                pass
        return x

    differential(f, 20)
    differential(f, 3000)


def test_a_rebinding_before_an_exception_that_leaves_the_function() -> None:
    def set_then_raise(i: int) -> None:
        sys._getframe(1).f_locals["y"] = 1000.5
        if i == 30:
            raise ValueError(i)

    def f(n: int) -> float:
        y = 0.0
        for i in range(n):
            y = y + 1.0
            set_then_raise(i)
        return y

    def g(n: int) -> object:
        try:
            f(n)
        except ValueError as e:
            assert e.__traceback__ is not None and e.__traceback__.tb_next is not None
            return e.__traceback__.tb_next.tb_frame.f_locals["y"]
        return None

    expected = g(100)
    jit = JIT(1)
    jit.enable(f.__code__)
    try:
        got = g(100)
    finally:
        jit.disable()
    assert got == expected == 1000.5
    assert jit.stats.native_entries >= 1


def test_a_rebinding_to_another_type_before_an_exception() -> None:
    def to_text_then_raise(i: int) -> None:
        if i == 10:
            sys._getframe(1).f_locals["x"] = "text"
            raise ValueError(i)

    def f(n: int) -> object:
        x: Any = 0
        for i in range(n):
            try:  # noqa: SIM105  (a `with` is not traced: the loop would stay interpreted)
                to_text_then_raise(i)
            except ValueError:
                pass
            x = x + 1 if isinstance(x, int) else x
        return x

    differential(f, 20)


def test_a_tracer_set_from_inside_the_loop_gets_its_events() -> None:
    """pdb.set_trace() in a callee: the loop's trace leaves after the call,
    and the interpreter sends the tracer its events (and the tracer's
    write to the frame's locals counts)."""
    events: list[str] = []

    def tracer(frame: Any, event: str, arg: object) -> Any:
        if frame.f_code.co_name == "f":
            events.append(event)
            if event == "line" and frame.f_locals["i"] == 150:
                frame.f_locals["x"] = -1000
        return tracer

    def arm(i: int) -> None:
        if i == 100:
            sys._getframe(1).f_trace = tracer
            sys.settrace(tracer)

    def f(n: int) -> tuple[int, int]:
        events.clear()
        x = 0
        for i in range(n):
            x = x + 1
            arm(i)
        sys.settrace(None)
        return x, len(events)

    differential(f, 200)


def test_a_traceback_shows_the_unboxed_locals() -> None:
    def fail(i: int) -> None:
        if i == 700:
            raise KeyError(i)

    def f(n: int) -> tuple[object, ...]:
        x, k = 0.0, 0
        try:
            for i in range(n):
                x += 0.25
                k += 2
                fail(i)
        except KeyError as e:
            tb = e.__traceback__
            assert tb is not None
            return tuple(sorted((name, v) for name, v in tb.tb_frame.f_locals.items()
                                if name in ("x", "k", "i")))
        return ()

    differential(f, 1000)




@pytest.mark.parametrize("kind", ["_LOAD_FAST_CHECK_O", "_UNBOX_FLOAT_O", "_UNBOX_INT_O", "_SYNC_FLOAT_O",
                                  "_SYNC_INT_O", "_EXIT_IF_WATCHED"])
def test_the_exits_around_a_call_when_forced(kind: str) -> None:
    expected, _ = _run(PROGRAM, None)
    got, stats = _run(PROGRAM, frozenset({kind}))
    assert stats is not None
    assert got == expected
    assert stats["guards_forced"].get(kind, 0) > 0, stats


def test_a_native_loop_with_a_call_boxes_no_more_than_it_must() -> None:
    """The write before a call is of the unboxed locals only: a loop whose
    locals are all objects writes nothing (and stays native)."""
    def f(n: int) -> int:
        s = "ab"
        total = 0
        for _ in range(n):
            total += len(str(s))
        return total

    stats = differential(f, 300)
    assert stats["native_entries"] >= 1


def test_the_jit_is_left_as_found() -> None:
    assert sys.gettrace() is None
    jit = JIT(1)
    jit.enable()
    jit.disable()


def test_an_exit_writes_in_place_only_a_number_the_frame_alone_holds() -> None:
    """An exit overwrites the float (or one-digit int) a local holds in
    place when only the frame holds it (_STORE_*_LEAVING). Here the
    interpreter keeps each one the inner loop's trace left in the frame
    (the outer loop, with its `with`, is not traced), and the entries and
    exits after that must not change them: each kept number is its own.
    Nor does an int object become a small int's value: `is` would tell."""
    import contextlib

    def f(n: int) -> tuple[list[object], float, int]:
        seen: list[object] = []
        x, k, small = 0.5, 1000, 3
        for j in range(n):
            m = 1000 + j  # the frame's alone, and no small int: but m ends small
            for i in range(12):
                x = x * 0.75 + i
                k = k * 3 % 1000003 + 300
                small = (small + i) % 200
                m = i + j % 2
            with contextlib.nullcontext():
                seen += [x, k, small, m is m + 0]  # (a small int is the one object)
            if j % 3 == 0:
                x, k = x + 0.0, k + 0  # the same values, the frame's own objects
        return seen, x, k

    stats = differential(f, 40)
    assert stats["native_entries"] >= 20, stats
