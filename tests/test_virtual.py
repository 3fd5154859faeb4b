"""Object locals kept in the trace, not the frame (copyjit/opt/virtual.py):
the pass as input trace -> expected trace, the loops it leaves alone, and,
end to end against CPython, loops whose lists alias (a list written is the
list a kept local's item came from, a float two lists hold), whose items
stop being floats, whose bridges read the kept locals, whose frame holds
an object only it holds when the trace is entered (its __del__ must run
when CPython runs it), and the reference counts they leave."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import pytest

from copyjit.opt import optimize
from copyjit.opt.text import parse
from copyjit.opt.virtual import virtual
from tests.test_allocs import under_the_jit
from tests.test_opt import same

FLOAT, LIST, TUPLE = id(float), id(list), id(tuple)

# `for [x], v in rows: v[0] += x` as borrow leaves it.
LOOP = f"""trace dst=10 src=40 slots=1:o,2:o,3:f stored=1,2,3
p = list_next_b.o() | exit @10 normal
    guard_type.(p) {TUPLE} | exit @12 stack p
    guard_size.(p) 2 | exit @12 stack p
r = tuple_item_b.o(p) 0
v = tuple_item.o(p) 1
    guard_type.(r) {LIST} | exit @14 stack v r
    guard_size.(r) 1 | exit @14 stack v r
x = list_item.o(r) 0
    store_o.(x) 1
    store_o.(v) 2
a = load_b.o() 1
f = unbox.f(a) | exit @20 stack a
    store.f(f) 3
w = load_b.o() 2
i = const.i() 0
    guard_type.(w) {LIST} | exit @22 stack w i
it = subscr_list_b.o(w, i) | exit @22 stack w i
g = unbox.f(it) | exit @24 stack w i it
s = binary.f(g, f) 'add' | exit @24 stack w i it
    store_over_f.(s, w, i, it) | exit @26 stack s w i
"""


def test_the_locals_live_in_the_trace_and_the_list_written_is_told_apart() -> None:
    same(virtual(parse(LOOP)), f"""trace dst=10 src=40 slots=1:o,2:o,3:f stored=1,2,3
p = list_next_b.o() | exit @10 normal
    guard_type.(p) {TUPLE} | exit @12 stack p
    guard_size.(p) 2 | exit @12 stack p
r = tuple_item_b.o(p) 0
v = tuple_item_b.o(p) 1
    guard_type.(r) {LIST} | exit @14 stack v r
    guard_size.(r) 1 | exit @14 stack v r
x = list_item_b.o(r) 0
    store_v.(x) 1
    store_v.(v) 2
f = unbox.f(x) | exit @20 stack x
    store.f(f) 3
i = const.i() 0
    guard_type.(v) {LIST} | exit @22 stack v i
it = subscr_list_b.o(v, i) | exit @22 stack v i
g = unbox.f(it) | exit @24 stack v i it
s = binary.f(g, f) 'add' | exit @24 stack v i it
    guard_not_same.(v, r) | exit @26 stack s v i
    store_over_f.(s, v, i, it) | exit @26 stack s v i
""")


def test_a_local_read_before_its_store_is_read_from_its_home() -> None:
    text = LOOP.replace("a = load_b.o() 1\n", "")
    text = text.replace("unbox.f(a) | exit @20 stack a", "unbox.f(b) | exit @20 stack b")
    text = text.replace("x = list_item.o(r) 0\n", "b = load_b.o() 1\nx = list_item.o(r) 0\n")
    rec = virtual(parse(text))
    names = [op.name for op in rec.ops]
    assert names.count("load_v") == 1 and names.index("load_v") < names.index("store_v")


@pytest.mark.parametrize("change", [
    # code in the loop: a global's release may free it
    ("    store.f(f) 3\n", "    store.f(f) 3\no = global.o() (8, 95) | exit @21 stack\n    release.(o)\n"),
    # the list written is the one x was read from
    ("store_over_f.(s, w, i, it)", "store_over_f.(s, r, i, it)"),
    # a list written before a kept local's first store in the iteration
    ("    store_o.(x) 1\n    store_o.(v) 2\n", "    store_o.(v) 2\n"),
    # a local stored with what is not an item (a read of another local)
    ("    store_o.(v) 2\n", "    store_o.(v) 2\nc = load_o.o() 1\n    store_o.(c) 4\n"),
])
def test_loops_it_leaves_alone(change: tuple[str, str]) -> None:
    text = LOOP.replace(*change).replace("stored=1,2,3", "stored=1,2,3,4")
    text = text.replace("slots=1:o,", "slots=4:o,1:o,")
    if change[1] == "    store_o.(v) 2\n":  # x stored after the list write
        text += "    store_o.(x) 1\n"
    rec = parse(text)
    assert virtual(rec) is rec


def test_the_pipeline_keeps_them_and_a_bridge_does_not() -> None:
    names = [op.name for op in optimize(parse(LOOP), check=True).ops]
    assert "store_v" in names and "store_o" not in names and "guard_not_same" in names
    names = [op.name for op in optimize(parse(LOOP), check=True, loop=False).ops]
    assert "store_v" not in names


# --- end to end -----------------------------------------------------------


def advance(pairs: list[Any], steps: int) -> tuple[Any, ...]:
    """n-body's pair loop, in two dimensions; what its locals hold after."""
    x1 = v1 = m1 = x2 = v2 = m2 = y1 = y2 = None
    for _ in range(steps):
        for ([x1, y1], v1, m1), ([x2, y2], v2, m2) in pairs:
            dx = x1 - x2
            dy = y1 - y2
            v1[0] -= dx * m2
            v1[1] -= dy * m2
            v2[0] += dx * m1
            v2[1] += dy * m1
    last = pairs[-1] if pairs else None
    held = None if last is None else (x1 is last[0][0][0], y2 is last[1][0][1], v1 is last[0][1],
                                      m2 is last[1][2])
    return x1, y1, v1, m1, x2, y2, v2, m2, held


def bodies(n: int) -> list[tuple[list[Any], list[Any], float]]:
    return [([1.0 + i, 2.0 * i], [0.5 * i, -0.25], 1.0 + 0.125 * i) for i in range(n)]


def pairs_of(system: list[Any]) -> list[Any]:
    return [(system[i], other) for i in range(len(system) - 1) for other in system[i + 1:]]


def run(system: list[Any], steps: int) -> tuple[Any, ...]:
    pairs = pairs_of(system)
    return advance(pairs, steps), [(r, v) for r, v, _ in system]


def test_nbody_pairs_as_cpython() -> None:
    stats = under_the_jit(advance, lambda: run(bodies(4), 300))
    assert stats["exits"] <= 2 * 300 + 4  # (each entry leaves once, at the loop's end)


def test_a_position_list_that_is_a_velocity_list() -> None:
    def aliased() -> tuple[Any, ...]:
        system = bodies(4)
        same_list = [3.0, 4.0]
        system[2] = (same_list, same_list, 2.0)  # v1 written is where x1, y1 came from
        return run(system, 200)

    under_the_jit(advance, aliased)


def test_a_float_two_lists_hold_is_not_overwritten() -> None:
    def shared() -> tuple[Any, ...]:
        system = bodies(3)
        f = 7.5
        system[0][0][0] = f  # x1 of the first pairs
        system[1][1][0] = f  # and the velocity the loop adds to
        result = run(system, 150)
        return result, f

    under_the_jit(advance, shared)


def test_items_that_stop_being_floats() -> None:
    def mixed() -> tuple[Any, ...]:
        system = bodies(4)
        result = run(system, 100)
        system[3][0][1] = 5  # an int: the unbox of y2 leaves
        return result, run(system, 50)

    under_the_jit(advance, mixed)


def test_the_values_the_locals_leave_the_frame_and_reference_counts() -> None:
    def counts() -> tuple[Any, ...]:
        system = bodies(3)
        items = [r[0] for r, _, _ in system] + [v for _, v, _ in system]
        before = [sys.getrefcount(item) for item in items]
        for _ in range(50):
            run(system, 3)
        return [sys.getrefcount(item) - b for item, b in zip(items, before, strict=True)]

    under_the_jit(advance, counts)


class Noisy:
    """Logs, when freed, the state of the lists the loop writes."""

    log: ClassVar[list[Any]] = []
    watched: ClassVar[list[list[float]]] = []

    def __init__(self, name: int) -> None:
        self.name = name

    def __del__(self) -> None:
        Noisy.log.append((self.name, [v[0] for v in Noisy.watched]))


def walk(rows: list[Any], limit: float) -> int:
    i = -1
    for _a, v in rows:  # (_a: only the frame holds it once its tuple goes)
        i += 1
        v[0] += 1.0
        if v[0] > limit:
            rows[i] = None  # the tuple goes: only the frame holds `a` now
    return i


def freed_as_cpython_frees(walker: Any, row: Any) -> None:
    """`walker` over rows of `row(Noisy(k), v)`, each tuple dropped as it goes:
    the Noisy objects' __del__ logs what CPython's order logs."""
    def freeing() -> tuple[Any, ...]:
        Noisy.log = []
        vs = [[float(k % 7)] for k in range(60)]
        Noisy.watched = vs
        for _ in range(3):
            rows = [row(Noisy(k), vs[k]) for k in range(60)]
            walker(rows, 6.5)
            del rows
        return Noisy.log, vs

    under_the_jit(walker, freeing)


def test_an_object_only_the_frame_holds_is_freed_when_cpython_frees_it() -> None:
    freed_as_cpython_frees(walk, lambda noisy, v: (noisy, v))


def walk_two(rows: list[Any], limit: float) -> int:
    i = -1
    for _a, _b, v in rows:  # (_a and _b: one object, only the frame holds it once its tuple goes)
        i += 1
        v[0] += 1.0
        if v[0] > limit:
            rows[i] = None
    return i


def test_an_object_two_kept_locals_hold_is_freed_when_cpython_frees_it() -> None:
    # Each passes the check alone (something else holds it: the other);
    # released at an exit, both would free it there.
    freed_as_cpython_frees(walk_two, lambda noisy, v: (noisy, noisy, v))


def logged(rows: list[Any], log: list[Any]) -> float:
    total = 0.0
    for [x, y], w in rows:
        d = x - y
        w[0] += d
        if d > 2.0:
            log.append(x)  # in a bridge: the kept locals, from the frame
            log.append(w)
        total += d
    return total


def test_a_bridge_reads_the_kept_locals() -> None:
    def bridged() -> tuple[Any, ...]:
        out = []
        for _ in range(30):
            log: list[Any] = []
            rows = [([float(k % 5), 1.0], [0.0]) for k in range(40)]
            total = logged(rows, log)
            pairs = list(zip(log[::2], log[1::2], strict=True))
            out.append((total, [(x, w[0], any(x is r[0][0] and w is r[1] for r in rows)) for x, w in pairs]))
        return out

    stats = under_the_jit(logged, bridged)
    assert stats["bridges"] >= 1


def trailing(rows: list[Any]) -> float:
    total = 0.0
    last = 0.0
    for row in rows:
        total += last  # read before the store: the item of the iteration before
        last = row[0]
    return total


def test_a_local_read_before_it_is_stored() -> None:
    def trail() -> tuple[Any, ...]:
        rows = [(float(k), k) for k in range(100)]
        return trailing(rows), trailing(rows[:3]), trailing([(1.0,), (2,), (3.0,)])

    under_the_jit(trailing, trail)
