"""`a is b` and `a is not b` of two objects (IS_OP) in traced loops: a
guard that the two are (`guard_same`) or are not (`guard_distinct`) one
object, as they were while recording; when that changes, the trace leaves
at the IS_OP, which the interpreter runs again, or its bridge takes over.
Each program runs under plain CPython and under the JIT, which must agree."""

from __future__ import annotations

import gc
import sys

from copyjit.opt import optimize
from copyjit.opt.text import dump, parse
from copyjit.opt.verify import verify
from copyjit.trace.jit import JIT
from tests.test_objects import agreeing_jit, differential

MISSING = object()


def ops_of(jit: JIT) -> list[str]:
    """The names of the ops of every compiled trace of `jit`."""
    return [op.name for location in set(jit.locations.values()) if location.lowered is not None
            for op in location.lowered.lowering.rec.ops]


def count_missing(values: list[object]) -> tuple[int, int]:
    missing = present = 0
    for value in values:
        if value is MISSING:
            missing += 1
        if value is not MISSING:
            present += 1
    return missing, present


def test_is_and_is_not_run_natively_as_guards() -> None:
    values: list[object] = [1.5, "a", None, 7] * 500
    stats = differential(count_missing, values)
    assert stats["aborts"] == {}
    jit = agreeing_jit(count_missing, values)
    assert "guard_distinct" in ops_of(jit)


def test_identity_changing_leaves_at_the_test_and_gets_bridges() -> None:
    # Every third value is the sentinel: the guard fails, and its exit is
    # bridged; the counts must be CPython's.
    values: list[object] = [MISSING if i % 3 == 0 else i * 0.5 for i in range(3000)]
    jit = agreeing_jit(count_missing, values)
    assert jit.stats.as_dict()["bridges"] >= 1
    names = ops_of(jit)
    assert "guard_distinct" in names or "guard_same" in names


def test_identity_flipping_once_mid_loop() -> None:
    values: list[object] = [2.0] * 1500 + [MISSING] * 1500
    agreeing_jit(count_missing, values)
    values = [MISSING] * 1500 + [2.0] * 1500
    agreeing_jit(count_missing, values)


def count_same(values: list[object], wanted: object) -> int:
    count = 0
    for value in values:
        if value is wanted:
            count += 1
    return count


def test_a_guard_that_they_are_one_object_leaves_when_they_are_not() -> None:
    wanted, other = object(), object()
    values = ([wanted] * 6 + [other]) * 300
    jit = agreeing_jit(count_same, values, wanted)
    assert "guard_same" in ops_of(jit)


class Node:
    def __init__(self, value: float, after: Node | None) -> None:
        self.value, self.after = value, after


def walk(head: Node, end: Node) -> float:
    total = 0.0
    node = head
    while node is not end:
        total += node.value
        node = node.after  # type: ignore[assignment]
    return total


def test_a_linked_list_walked_to_a_sentinel_node() -> None:
    end = Node(0.0, None)
    head = end
    for i in range(2000):
        head = Node(i * 0.25, head)
    jit = agreeing_jit(walk, head, end)
    assert "guard_distinct" in ops_of(jit)


def first_repeat(values: list[object]) -> int:
    previous: object = MISSING
    for index, value in enumerate(values):
        if value is previous:
            return index
        previous = value
    return -1


def test_two_values_made_in_the_loop_compared() -> None:
    shared = [1.0]
    values: list[object] = [[float(i)] for i in range(2000)] + [shared, shared]
    agreeing_jit(first_repeat, values)
    assert first_repeat(values) == 2001


def is_default(value: object, default: object) -> bool:
    return value is default


def count_defaults(values: list[object], default: object) -> int:
    count = 0
    for value in values:
        if is_default(value, default):
            count += 1
    return count


def test_an_inlined_function_testing_identity() -> None:
    default = object()
    values: list[object] = [default if i % 5 == 0 else i for i in range(3000)]
    agreeing_jit(count_defaults, values, default)


def identity_as_a_value(values: list[object]) -> int:
    count = 0
    for value in values:
        same = value is MISSING
        count += same
    return count


def test_an_is_test_whose_result_is_a_value_is_not_compiled() -> None:
    jit = agreeing_jit(identity_as_a_value, [MISSING, 1] * 1000)
    assert "an `is` test whose result is a value, not a branch" in jit.stats.aborts


def unboxed_identity(n: int) -> int:
    count = 0
    limit = 100
    for i in range(n):
        if i is limit:
            count += 1
    return count


def test_an_is_test_of_an_unboxed_int_is_not_compiled() -> None:
    jit = agreeing_jit(unboxed_identity, 3000)
    assert "an `is` test of an unboxed number" in jit.stats.aborts


def test_references_are_unchanged() -> None:
    values: list[object] = [MISSING if i % 4 == 0 else float(i) for i in range(3000)]
    gc.collect()
    before = sys.getrefcount(MISSING), [sys.getrefcount(value) for value in values[:8]]
    for _ in range(3):
        agreeing_jit(count_missing, values)
    gc.collect()
    assert (sys.getrefcount(MISSING), [sys.getrefcount(value) for value in values[:8]]) == before


TRACE = """trace dst=10 src=40 slots=0:o,1:o
a = load_o.o() 0
b = load_o.o() 1
    guard_distinct.(a, b) | exit @12 stack a b
    guard_distinct.(a, b) | exit @12 stack a b
    guard_same.(a, a) | exit @14 stack a a
    release.(a)
    release.(b)
"""


def test_the_guards_round_trip_and_a_repeated_one_is_dropped() -> None:
    text = dump(parse(TRACE))
    assert dump(parse(text)) == text
    rec = parse(TRACE)
    verify(rec)
    names = [op.name for op in optimize(rec, check=True).ops]
    assert names.count("guard_distinct") == 1


# --- numbers a loop only reads keep their objects ----------------------------
# An unboxed local the trace never stores is not written back at its exits:
# the frame's box stays the one CPython has (before, every exit boxed each
# unboxed local anew, so `x is x0` became False after the loop).


def reads_numbers_only(x: float, k: int, n: int) -> tuple[bool, bool, float]:
    x0, k0 = x, k
    t = 0.0
    for i in range(n):
        if i % 3 == 0:  # (a hot side exit: a bridge that reads them too)
            t += x * k
        else:
            t -= x
    return x is x0, k is k0, t


def reads_numbers_only_nested(x: float, k: int, n: int) -> tuple[bool, bool, float]:
    x0, k0 = x, k
    t = 0.0
    for _ in range(n):
        for j in range(7):
            t += x * j + k
    return x is x0, k is k0, t


def test_a_number_only_read_keeps_its_object() -> None:
    for function in (reads_numbers_only, reads_numbers_only_nested):
        for n in (1, 500, 3000):
            jit = agreeing_jit(function, 1.5e30, 10**12 + 7, n)
            assert function(1.5e30, 10**12 + 7, n)[:2] == (True, True)
        assert jit.stats.as_dict()["native_entries"] >= 1


def test_a_number_stored_by_a_bridge_only_still_reaches_the_frame() -> None:
    def f(n: int) -> tuple[float, float]:
        c = 0.5
        d = 0.0
        for i in range(n):
            d += c  # the loop only reads c
            if i % 5 == 0:
                c = c * 1.5  # (its bridge stores it)
        return c, d

    stats = differential(f, 2000)
    assert stats["bridges"] >= 1


def appends_a_number_only_read(x: float, n: int) -> tuple[int, bool, bool]:
    log = []
    row = [0.0, 0.0]
    t = 0.0
    for i in range(n):
        t += x * 2.0  # (x: a number local)
        log.append(x)
        row[i % 2] = x
    return sum(1 for item in log if item is x), row[0] is x, row[1] is x


def appends_in_a_bridge(x: float, n: int) -> tuple[int, float]:
    log = []
    t = 0.0
    for i in range(n):
        if i % 3 == 0:  # (a hot side exit: its bridge appends)
            log.append(x)
        else:
            t += x
    return sum(1 for item in log if item is x), t


def appends_in_a_bridge_what_the_loop_stores(n: int) -> tuple[list[float], float]:
    x = 0.5
    log = []
    for i in range(n):
        x = x * 1.0001 + 0.25  # (stored by the loop: the frame's box is stale)
        if i % 3 == 0:
            log.append(x)
    return log[-5:], x


def copies_a_number_only_read(x: float, k: int, n: int) -> tuple[bool, bool, float]:
    t = 0.0
    for _ in range(n):
        y = x
        j = k
        t += y * 2.0 + j
    return y is x, j is k, t  # type: ignore[possibly-undefined]


def test_a_number_only_read_is_stored_as_its_own_object() -> None:
    # Found in review: boxing a number local for a list (append, an item
    # store) made a new float, so `log[i] is x` was False after the trace
    # took over, and `y = x` bound y to a box made at the exit.
    nan = float("nan")
    for x in (1.5e30, nan):
        jit = agreeing_jit(appends_a_number_only_read, x, 3000)
        assert appends_a_number_only_read(x, 3000) == (3000, True, True)
        assert jit.stats.as_dict()["native_entries"] >= 1
        jit = agreeing_jit(copies_a_number_only_read, x, 10**12 + 7, 3000)
        assert jit.stats.as_dict()["native_entries"] >= 1
        jit = agreeing_jit(appends_in_a_bridge, x, 3000)
        assert jit.stats.as_dict()["bridges"] >= 1
    jit = agreeing_jit(appends_in_a_bridge_what_the_loop_stores, 3000)
    assert jit.stats.as_dict()["bridges"] >= 1
    assert copies_a_number_only_read(1.5e30, 10**12 + 7, 3000)[:2] == (True, True)


def rebinds_to_itself(x: float, n: int) -> tuple[bool, float]:
    x0 = x
    t = 0.0
    for _ in range(n):
        x = x  # (on purpose: the binding is unchanged)
        t += x * 0.5
    return x is x0, t


def test_a_number_rebound_to_itself_keeps_its_object() -> None:
    # Found by a random generator of such loops: `x = x` counted as a
    # store, so every exit boxed x anew.
    jit = agreeing_jit(rebinds_to_itself, 1.5e30, 3000)
    assert jit.stats.as_dict()["native_entries"] >= 1
    assert rebinds_to_itself(1.5e30, 3000)[0]


def keeps_what_it_boxes(a: float, n: int) -> tuple[object, ...]:
    d = 2.5
    log = []
    row = [0.0, 0.0, 0.0]
    for i in range(n):
        log.append(d)  # (the iteration before's d: the box appended then)
        d = a + 1.0
        row[i % 3] = d
        log.append(d)
        log.append(d)
        a = d * 0.5
    return (d in log, log[-1] is d, row[(n - 1) % 3] is d, [log[k] is log[k + 1] for k in range(-7, -1)],
            log[-4:], a)


def appends_its_counter(n: int, every: int) -> tuple[bool, bool, int]:
    found = []
    k = 0
    for k in range(10**6, 10**6 + n):
        if k % every == 0:
            found.append(k)
            if len(found) == 50:
                break
    return found[-1] is k, found[-1] == k, len(found)


def appends_what_its_bridge_stores(n: int) -> tuple[object, ...]:
    x = 0.5
    log = []
    for i in range(n):
        if i % 3 == 0:  # noqa: SIM108 - a hot side exit: its bridge stores x, then appends it
            x = x * 0.5 + 1.0
        else:
            x = x + 0.25
        log.append(x)
    return [log[k] is log[k + 1] for k in range(-6, -1)], log[-1] is x, log[-3:]


def peek() -> bool:
    caller = sys._getframe(1)
    return caller.f_locals["x"] is caller.f_locals["log"][-1]


def appends_then_calls(n: int) -> tuple[int, bool]:
    x = 0.0
    log = []
    same = 0
    for _ in range(n):
        x = x + 1.5
        log.append(x)
        same += peek()
    return same, log[-1] is x


def test_a_stored_number_boxed_for_a_list_is_the_object_the_local_holds() -> None:
    # Found by a random generator of loops (2026-11-24): an exit boxed a
    # stored number local anew, so `log[-1] is d` was False after the loop
    # (a NaN appended then not found in the list), and each box of one value
    # (two appends, an item) was an object of its own.
    nan = float("nan")
    for a in (1.5, nan):
        jit = agreeing_jit(keeps_what_it_boxes, a, 3000)
        assert jit.stats.as_dict()["native_entries"] >= 1
    assert keeps_what_it_boxes(nan, 3000)[:3] == (True, True, True)
    jit = agreeing_jit(appends_its_counter, 3000, 1)
    assert jit.stats.as_dict()["native_entries"] >= 1
    assert appends_its_counter(3000, 1)[0]


def test_a_number_only_a_bridge_boxes_or_copies_keeps_its_object() -> None:
    # The loop's trace had no flag for k (its own path does not append):
    # the bridge's box was a new int. Now the loop is recorded again at
    # once, keeping k's object.
    jit = agreeing_jit(appends_its_counter, 3000, 7)
    assert jit.stats.as_dict()["bridges"] >= 1
    assert any(location.flagged for location in jit.locations.values())
    assert appends_its_counter(3000, 7)[0]
    # A copy in a bridge, to a local only the bridge stores (b: a flag of
    # the bridge's own), from one the loop has a flag for.
    jit = agreeing_jit(copies_in_a_bridge, 1.5, 3000)
    assert jit.stats.as_dict()["bridges"] >= 1
    assert copies_in_a_bridge(1.5, 3000) == (True, True, True)


def copies_in_a_bridge(a: float, n: int) -> tuple[bool, bool, bool]:
    b = 3.25
    c = a
    log = []
    for i in range(n):
        if i % 5 == 0:  # (a hot side exit: its bridge copies)
            b = c
        if i % 4 == 1:
            log.append(a)
        if i % 5 == 0:
            c = b
        if i % 2 == 1:
            log.append(c)
    return b is c, log[-1] is c, a is b


def test_a_boxed_number_stays_the_local_through_bridges_and_calls() -> None:
    jit = agreeing_jit(appends_what_its_bridge_stores, 3000)
    assert jit.stats.as_dict()["bridges"] >= 1
    assert appends_what_its_bridge_stores(3000)[:2] == ([False, False, False, False, False], True)
    jit = agreeing_jit(appends_then_calls, 3000)
    assert jit.stats.as_dict()["native_entries"] >= 1
    assert appends_then_calls(3000) == (3000, True)


def copies_stored_numbers(c: float, n: int) -> tuple[object, ...]:
    d = 2.5
    a = b = 0.0
    log = []
    t = 0.0
    for _ in range(n):
        d = c  # (both stored: one object, as the loop goes round)
        t = t + d * 0.5
        c = d
        log.append(d)
        a = c  # (a copy of a local that has an object: that one)
        b = a
        b = b  # (no store)
        a = c + 1.0
    return c is d, log[-1] is c, b is c, log[-1] is log[-2], a is b, t, a, b


def swaps(n: int) -> tuple[int, int, bool]:
    a, b = 1, 2
    for _ in range(n):
        a, b = b, (a + b) % 1_000_003 + 1_000  # (nothing can tell the copy: no object made)
    return a, b, a is b


def test_a_copy_of_a_stored_number_is_bound_to_the_same_object() -> None:
    # Found by a random generator of loops (2026-11-24): `d = c; c = d`
    # left two objects where CPython has one.
    for c in (1.5, float("nan")):
        jit = agreeing_jit(copies_stored_numbers, c, 3000)
        assert jit.stats.as_dict()["native_entries"] >= 1
    assert copies_stored_numbers(1.5, 3000)[:5] == (True, True, True, True, False)
    jit = agreeing_jit(swaps, 3000)
    assert jit.stats.as_dict()["native_entries"] >= 1
    uops = [row for location in set(jit.locations.values()) if location.lowered is not None
            for row in location.lowered.text.split("\n")]
    assert not [row for row in uops if any(name in row for name in ("_SHARE_", "_ADOPT_", "_MARK_SLOT"))]


def shares_a_constant(n: int) -> tuple[bool, bool, float, int]:
    out = 0
    zr = zi = 1.0
    for i in range(n):
        zr = zi = 0.0  # (both the code's constant)
        for _ in range(3):
            zr, zi = zr * zr + 0.5, zi + 1.0
        if zr > 0.6:
            out += 1
        if i == n - 1:
            zr = zi = 0.0
            break
    return zr is zi, zi is zr, zr + zi, out


def test_locals_bound_to_one_constant_are_that_object() -> None:
    # mandelbrot.py's `zr = zi = 0.0`: both are bound to the code's
    # constant, with no box made for them.
    jit = agreeing_jit(shares_a_constant, 3000)
    assert jit.stats.as_dict()["native_entries"] >= 1
    assert shares_a_constant(3000)[:2] == (True, True)


def rebinds_x() -> float:
    sys._getframe(1).f_locals["x"] = 99.5
    return 0.25


def copies_a_load_made_before_a_call(n: int) -> tuple[float, float, float]:
    x = 1.5
    y = t = 0.0
    log = []
    for _ in range(n):
        log.append(x)  # (x has a flag)
        y, z = x, rebinds_x()  # (y: x's value before the call rebinds x)
        t += y + z
        x = x + 1.0
    return y, x, t  # (not `log[-1] is y`: y gets a box of its own, docs/correctness.md bug 18)


def test_a_copy_of_a_value_read_before_a_call_is_that_value() -> None:
    # Found reading the change: the load of x came before a call that
    # rebinds x, and y could be bound to x's new object.
    jit = agreeing_jit(copies_a_load_made_before_a_call, 3000)
    assert jit.stats.as_dict()["native_entries"] >= 1
