"""Loop-invariant code motion (copyjit/opt/licm.py): loads of globals,
builtins and module attributes, and their guards, before the loop. The pass
as input trace -> expected trace; the conditions under which it must not
move anything, or only loads (a loop that runs code: tests/test_licm_code.py);
and, end to end, that no rebinding of a global, a builtin or a module
attribute is ever missed: between runs, from a call in the loop, from a
__del__, from another thread, from a signal handler."""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from copyjit import explainer
from copyjit.opt import optimize
from copyjit.opt.licm import licm
from copyjit.opt.text import dump, parse
from copyjit.trace.ir import Recording
from copyjit.trace.jit import JIT
from tests.test_kernels import ROOT, load
from tests.test_objects import differential, full_outcome
from tests.test_opt import recordings_of, same


def weight(x: float) -> float:
    return x * x + 1.0


TRACE = """trace dst=10 src=40 slots=1:f,2:i stored=2,1
n = range_next.i() | exit @10 normal
    store.i(n) 2
acc = load.f() 1
m = global.o() (8, 95) | exit @20 stack acc
    guard_type.(m) {module} | exit @22 stack acc m
s = attr_module.o(m) (52, 96) | exit @22 stack acc m
    release.(m)
    guard_is.(s) {sqrt} | exit @24 stack acc s
x = to_float.f(n)
r = math.f(x) 'SQRT' | exit @24 stack acc s x
    release.(s)
t = binary.f(acc, r) 'add'
    store.f(t) 1
"""


def with_constants(text: str, *objects: object) -> Recording:
    rec = parse(text)
    rec.constants.extend(objects)
    return rec


def trace(tail: str = "") -> Recording:
    text = TRACE.format(module=id(type(math)), sqrt=id(math.sqrt)) + tail
    return with_constants(text, math.sqrt)


def test_loads_and_guards_move_before_the_loop_and_the_guarded_object_is_a_constant() -> None:
    # The loads borrow (their dicts hold what they find while no code
    # runs): nothing to release before the loop, or at its exits there.
    same(licm(trace()), f"""trace dst=10 src=40 slots=1:f,2:i stored=2,1
m = global_b.o() (8, 95) | exit @10
    guard_type.(m) {id(type(math))} | exit @10
s = attr_module_b.o(m) (52, 96) | exit @10
    guard_is.(s) {id(math.sqrt)} | exit @10
    loop_head.()
n = range_next.i() | exit @10 normal
    store.i(n) 2
acc = load.f() 1
c = const_b.o() {id(math.sqrt)}
x = to_float.f(n)
r = math.f(x) 'SQRT' | exit @24 stack acc c x
t = binary.f(acc, r) 'add'
    store.f(t) 1
""")


def test_a_constant_the_loop_passes_on_is_a_reference_of_its_own() -> None:
    text = TRACE.format(module=id(type(math)), sqrt=id(math.sqrt)).replace(
        "    release.(s)\n", "k = copy_o.o(s)\n    release.(s)\n    release.(k)\n")
    passed = licm(with_constants(text, math.sqrt))
    names = [op.name for op in passed.ops]
    assert "const_o" in names and "const_b" not in names
    assert names[names.index("loop_head"):].count("release") == 2  # s's own, and the copy's


def test_the_text_of_a_moved_trace_round_trips_and_verifies() -> None:
    moved = optimize(trace(), check=True)
    assert dump(parse(dump(moved))) == dump(moved)
    assert [op.name for op in moved.ops].count("loop_head") == 1


def test_nothing_moves_when_the_loop_stores_a_global() -> None:
    rec = trace("g = load_o.o() 3\n    store_global.(g) 7 | exit @30 stack\n")
    assert licm(rec) is rec


def only_loads_moved(rec: Recording) -> None:
    """licm moved `rec`'s loads as in a loop that runs code (licm_code.py:
    with an epoch to test), and nothing else."""
    moved = licm(rec)
    names = [op.name for op in moved.ops]
    head = names.index("loop_head")
    assert set(names[:head]) == {"watch_epoch", "global_b", "guard_type", "attr_module_b", "guard_is"}
    assert "guard_watched" in names[head:]


def test_only_loads_move_when_the_loop_may_run_code() -> None:
    only_loads_moved(trace("f = global.o() (9, 95) | exit @30 stack\nr2 = call.o(f) | exit @30 stack\n"
                           "    release.(r2)\n"))


def test_an_item_whose_release_may_free_it_keeps_the_loop_as_it_is() -> None:
    # The item of a list in a local the loop stores (l: in `stored`):
    # nothing is known to hold it, and its release may free it (and run
    # code): only the loads move.
    tail = "l = load_o.o() 3\nit = list_item.o(l) 0\n    release.(l)\n    release.(it)\n"
    rec = trace(tail)
    rec.slots[3], rec.stored = "o", [*rec.stored, 3]
    only_loads_moved(rec)
    # The same with l only read: the frame holds l, l holds its item.
    only_read = trace(tail)
    assert licm(only_read) is not only_read


STORES = """out = load_o.o() 3
    guard_type.(out) {list_type}
    store_subscr_list_f.(t, out, n) | exit @30 stack t out n
    release.(out)
"""


def moved_with_a_list(tail: str) -> tuple[Recording, list[str]]:
    """licm on trace() with `tail`, whose local 3 is a list (`{list_type}`),
    and the names of its ops; its text round-trips."""
    rec = trace(tail.format(list_type=id(list)))
    rec.slots[3] = "o"
    moved = licm(rec)
    assert dump(parse(dump(moved))) == dump(moved)
    return moved, [op.name for op in moved.ops]


def test_a_list_store_becomes_plain_and_lets_the_loads_move() -> None:
    # The item it replaces could be any object, whose __del__ could rebind
    # a global: the store leaves first when it is not plain, and the loads
    # move. The list, a local the loop only stores into, is borrowed.
    moved, names = moved_with_a_list(STORES)
    assert names.index("loop_head") < names.index("store_subscr_list_f")
    store = moved.ops[names.index("store_subscr_list_f")]
    assert store.arg == "plain" and moved.ops[store.args[1]].name == "load_b"
    assert "guard_type" not in names[names.index("loop_head"):]


APPENDS = """out = load_o.o() 3
    guard_type.(out) {list_type}
b = box.o(n)
    append.(out, b) | exit @30 stack out b
    release.(out)
    release.(b)
"""


def test_an_append_lets_the_loads_move() -> None:
    # list.append only grows an exact list: it runs no code, and the item
    # it takes a reference to frees nothing.
    _, names = moved_with_a_list(APPENDS)
    assert names.index("global_b") < names.index("loop_head") < names.index("append")
    assert "guard_is" not in names[names.index("loop_head"):]


def copies(n: int) -> list[Any]:
    source = [(i, i) for i in range(n)]
    target: list[Any] = [(0, 0)] * n
    for i in range(n):
        target[i] = source[i]  # over tuples: a plain store would leave at every iteration
    return target[::9]


def test_a_loop_storing_objects_over_objects_keeps_its_stores() -> None:
    jit = JIT(1)
    jit.enable(copies.__code__)
    try:
        assert copies(300) == [(i, i) for i in range(0, 300, 9)]
    finally:
        jit.disable()
    (location,) = [location for location in jit.locations.values() if location.trace is not None]
    stores = [op for op in location.lowered.lowering.rec.ops if op.name == "store_subscr_list"]
    assert stores and all(op.arg is None for op in stores)
    assert jit.stats.exits <= 2


UNGUARDED = TRACE.replace("    guard_is.(s) {sqrt} | exit @24 stack acc s\n", "")
# The module appended to a list, local 3, which the loop stores too: the list
# takes a reference to it, so its load is not borrowed, and stays (and so
# does sqrt's, made from it); the list is not borrowed either.
TAKES = """out = load_o.o() 3
    guard_type.(out) {list_type}
    append.(out, m) | exit @30 stack out m
    store_o.(out) 3
"""


def unguarded(tail: str = "") -> Recording:
    rec = with_constants(UNGUARDED.format(module=id(type(math)), sqrt=0) + tail.format(list_type=id(list)))
    rec.slots[3] = "o"
    return rec


def test_a_list_store_stays_as_it_is_when_nothing_moves() -> None:
    store = "    store_subscr_list_f.(t, out, n) | exit @30 stack t out n\n"
    rec = unguarded(TAKES.replace("    store_o.(out) 3\n", store))
    rec.stored.append(3)
    assert licm(rec) is rec


def test_nothing_moves_for_a_bridge() -> None:
    assert "loop_head" not in [op.name for op in optimize(trace(), loop=False).ops]


def test_a_load_without_an_identity_guard_moves_and_is_borrowed() -> None:
    # sqrt is not a constant in the loop: the loop goes on using what the
    # load before it found (an exit hands the frame a reference to it).
    moved = licm(unguarded())
    names = [op.name for op in moved.ops]
    head = names.index("loop_head")
    assert names[:head] == ["global_b", "guard_type", "attr_module_b"]
    assert "release" not in names
    (exit_op,) = [op for op in moved.ops[head:] if op.name == "math"]
    assert exit_op.snapshot is not None and names[exit_op.snapshot.stack[1]] == "attr_module_b"


@pytest.mark.parametrize("tail", ["u = copy_o.o(m)\n    release.(u)\n", "n2 = len.i(m)\n"])
def test_a_load_the_loop_only_looks_at_is_borrowed_there(tail: str) -> None:
    names = [op.name for op in licm(unguarded(tail)).ops]
    assert names.index("global_b") < names.index("loop_head")
    assert "global" not in names and "attr_module" not in names


def test_a_load_the_loop_gives_away_stays() -> None:
    rec = unguarded(TAKES)
    rec.stored.append(3)
    assert licm(rec) is rec


# --- end to end -----------------------------------------------------------------

def integrate(n: int) -> float:
    total = 0.0
    for i in range(n):
        x = (i + 0.5) / n
        total += math.sqrt(weight(x)) + abs(math.sin(x))
    return total


def runs_with_its_loads_moved(function: Any, n: int) -> list[str]:
    """Runs `function(n)` differentially; its loop's optimized ops from
    loop_head on, once it is checked that its loads are before it."""
    differential(function, n)
    texts = recordings_of(Path(__file__), function.__name__, n)
    ops = [op.name for op in optimize(parse(texts[0])).ops]
    head = ops.index("loop_head")
    assert "global_b" in ops[:head]
    assert not {"global", "global_b", "attr_module", "attr_module_b"} & set(ops[head:])
    return ops[head:]


def test_the_loop_runs_with_its_loads_moved() -> None:
    runs_with_its_loads_moved(integrate, 3000)


def roots(n: int) -> list[float]:
    out = []
    for i in range(n):
        out.append(math.sqrt(i) + math.sin(i * 0.5))
    return out


def test_a_loop_appending_to_a_list_runs_with_its_loads_moved() -> None:
    assert "append" in runs_with_its_loads_moved(roots, 3000)


def test_rebinding_between_runs_is_seen() -> None:
    global weight
    jit = JIT(1)
    jit.enable(integrate.__code__)
    original = weight
    try:
        first = integrate(2000)
        weight = lambda x: x + 2.0  # noqa: E731
        second = integrate(2000)
        math.sqrt, saved = math.exp, math.sqrt  # type: ignore[assignment]
        try:
            third = integrate(2000)
        finally:
            math.sqrt = saved
    finally:
        weight = original
        jit.disable()
    expected = [integrate(2000)]
    weight = lambda x: x + 2.0  # noqa: E731
    expected.append(integrate(2000))
    math.sqrt, saved = math.exp, math.sqrt  # type: ignore[assignment]
    try:
        expected.append(integrate(2000))
    finally:
        math.sqrt = saved
        weight = original
    assert [first, second, third] == expected
    assert jit.stats.native_entries >= 3


def rebinds_in_the_loop(n: int) -> list[float]:
    global weight
    original, seen = weight, []
    try:
        for i in range(n):
            seen.append(weight(i * 0.5))
            if i == n // 2:
                weight = lambda x: -x  # noqa: E731
    finally:
        weight = original
    return seen


class Rebinds:
    def __del__(self) -> None:
        global weight
        weight = lambda x: 2 * x  # noqa: E731


def rebinds_from_del(n: int) -> list[float]:
    global weight
    original, seen = weight, []
    items: list[Any] = [0] * n
    items[n // 2] = Rebinds()
    try:
        for i in range(n):
            seen.append(weight(float(i)))
            items[i] = 0  # frees the Rebinds at n // 2: its __del__ rebinds weight
    finally:
        weight = original
    return seen


class Noisy:
    def __init__(self, name: str) -> None:
        self.name = name

    def __del__(self) -> None:
        print("freed", self.name)


def stores_over_objects(n: int) -> tuple[list[Any], list[Any], list[Any]]:
    # Each store leaves the trace where the item it replaces is no plain
    # object (the interpreter stores it, and the __del__ prints in order).
    xs = [float(i) for i in range(n)]
    out: list[Any] = [None] * n
    counts: list[Any] = [0] * n
    last: list[Any] = [0.0, 0]
    out[n // 2], counts[n // 3], last[1] = Noisy("out"), Noisy("counts"), Noisy("last")
    for i in range(n):
        out[i] = math.sqrt(xs[i]) * 0.5
        counts[i] = i * 3
        last[0] = weight(out[i])
        last[1] = i
    return out[::7], counts[::11], last


def stores_over_items_read(n: int) -> list[Any]:
    out: list[Any] = [float(i) for i in range(n)]
    out[n // 2] = 7  # an int: the unboxed float store's own slow path
    for i in range(n):
        out[i] += math.sqrt(i * 0.5)
    return out[::5]


@pytest.mark.parametrize("function", [rebinds_in_the_loop, rebinds_from_del, stores_over_objects,
                                      stores_over_items_read])
def test_a_rebinding_inside_the_loop_is_seen_at_once(function: Any) -> None:
    differential(function, 400)


def test_a_loop_storing_into_lists_runs_with_its_loads_moved(capsys: pytest.CaptureFixture[str]) -> None:
    expected = stores_over_objects(300)
    jit = JIT(1)
    jit.enable(stores_over_objects.__code__)
    try:
        assert stores_over_objects(300) == expected
    finally:
        jit.disable()
    assert capsys.readouterr().out == "freed last\nfreed counts\nfreed out\n" * 2  # i = 0, n // 3, n // 2
    (location,) = [location for location in jit.locations.values() if location.trace is not None]
    ops = location.lowered.lowering.rec.ops
    names = [op.name for op in ops]
    assert "loop_head" in names
    assert [op.arg for op in ops if op.name.startswith("store_subscr_list")] == ["plain"] * 4
    assert jit.stats.native_entries >= 3  # entered again after the exits at n // 3 and n // 2


def spins(seconds: float) -> tuple[float, float]:
    """Sum weight(1.0) until weight gives a negative number."""
    total, deadline = 0.0, time.monotonic() + seconds
    i = 0
    while True:
        w = weight(1.0)
        if w < 0.0:
            return total, w
        total += w
        i += 1
        if i % 4096 == 0 and time.monotonic() > deadline:
            return total, 0.0


def test_a_rebinding_by_another_thread_is_seen() -> None:
    global weight
    original = weight
    jit = JIT(1)
    jit.enable(spins.__code__)

    def rebind() -> None:
        global weight
        time.sleep(0.2)
        weight = lambda x: -5.0  # noqa: E731

    thread = threading.Thread(target=rebind)
    thread.start()
    try:
        _, last = spins(30.0)
    finally:
        thread.join()
        weight = original
        jit.disable()
    assert last == -5.0
    assert jit.stats.native_entries >= 1


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timers")
def test_a_rebinding_by_a_signal_handler_is_seen() -> None:
    global weight
    original = weight

    def handler(signum: int, frame: object) -> None:
        global weight
        weight = lambda x: -7.0  # noqa: E731

    previous = signal.signal(signal.SIGALRM, handler)
    jit = JIT(1)
    jit.enable(spins.__code__)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        _, last = spins(30.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        weight = original
        jit.disable()
    assert last == -7.0


def mixed(n: int) -> float:
    """weight's argument an int or a float in turn: the inlined call's type
    guard leaves (resuming at the CALL, the constants on the stack), often
    enough to get a bridge."""
    total = 0.0
    for i in range(n):
        x = i * 0.5 if i % 2 else i
        total += math.sqrt(weight(x)) + abs(x)
    return total


def raises(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += math.sqrt(n // 2 - i)  # ValueError at i = n // 2 + 1
    return total


@pytest.mark.parametrize("function", [mixed, raises])
def test_exits_with_constants_on_the_stack_hand_over_references(function: Any) -> None:
    def counts() -> tuple[int, int]:
        gc.collect()
        return sys.getrefcount(weight), sys.getrefcount(math.sqrt)

    before = counts()
    stats = differential(function, 2000)
    assert counts() == before  # the traces (which hold both) are freed with the JIT
    if function is mixed:
        assert stats["bridges"] >= 1 and stats["exits"] >= 1
    jit = JIT(1)
    jit.enable(function.__code__)
    try:
        runs = []
        for _ in range(3):
            with contextlib.suppress(ValueError):
                function(2000)
            runs.append(counts())
    finally:
        jit.disable()
    assert runs[0] == runs[1] == runs[2]  # each run's exits hand over what they took


# --- globals and module attributes that are not constants: borrowed (global_b) ---

RATE = 0.25
BIG = 2**61
TABLE = [1.5, -2.0, 0.5, 4.0]


class Scaled:
    def __init__(self) -> None:
        self.scale = 2.0


def scaled(p: Scaled, n: int) -> float:
    total = 0.0
    for i in range(n):
        total += p.scale * i + RATE + math.pi + TABLE[i % 4]
    return total


def scaled_fresh(n: int) -> float:
    return scaled(Scaled(), n)


def test_number_globals_are_loaded_and_unboxed_once_before_the_loop() -> None:
    differential(scaled, Scaled(), 3000)
    texts = recordings_of(Path(__file__), "scaled_fresh", 3000)
    ops = optimize(parse(texts[0])).ops
    head = [op.name for op in ops].index("loop_head")
    assert {"global_b", "attr_module_b", "attr_instance_b"} <= {op.name for op in ops[:head]}
    assert [op.name for op in ops[head:]].count("unbox") == 1  # TABLE's item's, read in the loop
    assert not {"global", "global_b", "attr_module", "attr_module_b"} & {op.name for op in ops[head:]}


def test_a_number_global_rebound_between_runs_is_seen() -> None:
    global RATE, TABLE
    jit = JIT(1)
    jit.enable(scaled.__code__)
    saved, table = RATE, TABLE
    try:
        got = [scaled(Scaled(), 2000)]
        RATE = -1.0
        got.append(scaled(Scaled(), 2000))
        TABLE = [0.0, 1.0, 2.0, 3.0]
        got.append(scaled(Scaled(), 2000))
        RATE = 7  # an int now: the guard before the loop leaves, the loop runs as CPython runs it
        got.append(scaled(Scaled(), 2000))
    finally:
        jit.disable()
        RATE, TABLE = saved, table
    expected = [scaled(Scaled(), 2000)]
    try:
        RATE = -1.0
        expected.append(scaled(Scaled(), 2000))
        TABLE = [0.0, 1.0, 2.0, 3.0]
        expected.append(scaled(Scaled(), 2000))
        RATE = 7
        expected.append(scaled(Scaled(), 2000))
    finally:
        RATE, TABLE = saved, table
    assert got == expected
    assert jit.stats.native_entries >= 3


def overflows(n: int) -> int:
    """BIG * i leaves the int machine word at i = 4: the exit puts BIG, which
    the loop borrows, back on the frame's stack."""
    total = 0
    for i in range(n):
        total = BIG * (i % 5)
    return total


def rotates(n: int) -> list[float]:
    """Stores into a global list the loop borrows."""
    for i in range(n):
        TABLE[i % 4] = TABLE[(i + 1) % 4] * 0.5 + 1.0
    return list(TABLE)


@pytest.mark.parametrize("function", [overflows, rotates])
def test_exits_with_a_borrowed_global_on_the_stack_hand_over_references(function: Any) -> None:
    def counts() -> tuple[int, int]:
        gc.collect()
        return sys.getrefcount(BIG), sys.getrefcount(TABLE)

    saved = list(TABLE)
    before = counts()
    try:
        stats = differential(function, 2000)
        assert counts() == before
        if function is overflows:
            assert stats["exits"] >= 1
        jit = JIT(1)
        jit.enable(function.__code__)
        try:
            runs = []
            for _ in range(3):
                function(2000)
                runs.append(counts())
        finally:
            jit.disable()
        assert runs[0] == runs[1] == runs[2] == before
    finally:
        TABLE[:] = saved


# --- object locals the loop only reads: borrowed (load_b) -----------------------

def dot(u: list[float], n: int) -> float:
    total = 0.0
    for i in range(n):
        total += u[i] * 0.5  # u: read, never stored: the frame holds it all the loop
    return total


def test_a_local_only_read_is_borrowed_and_its_type_checked_once() -> None:
    texts = recordings_of(Path(__file__), "dot_main", 300)
    ops = [op.name for op in optimize(parse(texts[0])).ops]
    head = ops.index("loop_head")
    assert "load_b" in ops[head:] and "load_o" not in ops[head:]
    # u's type is checked before the loop; the item's by its unbox (checks
    # drops the guard before it)
    assert ops[head:].count("guard_type") == 0 and ops[:head].count("guard_type") == 1
    assert ops[head:].count("unbox") == 1


def dot_main(n: int) -> float:
    return dot([float(k) for k in range(n)], n)


@pytest.mark.parametrize("size, n", [(500, 500), (300, 301), (300, 450)])  # the last two: IndexError
def test_a_borrowed_local_on_an_exits_stack_is_handed_over(size: int, n: int) -> None:
    u = [float(k) for k in range(size)]
    before = sys.getrefcount(u)
    differential(dot, u, n)
    jit = JIT(1)
    jit.enable(dot.__code__)
    try:
        for _ in range(3):
            with contextlib.suppress(IndexError):
                dot(u, n)
    finally:
        jit.disable()
    gc.collect()
    assert sys.getrefcount(u) == before


def test_a_local_stored_or_passed_on_is_not_borrowed() -> None:
    def stores(u: list[float], n: int) -> float:
        total = 0.0
        for i in range(n):
            total += u[i]
            u = u  # a store: the frame's reference changes hands
        return total

    differential(stores, [0.5] * 300, 300)
    rec = parse("""trace dst=0 src=20 slots=0:o stored=0
u = load_o.o() 0
    guard_type.(u) 5 | exit @2 stack u
    store_o.(u) 0
""")
    assert licm(rec) is rec


# --- invariant item reads ---------------------------------------------------------

READS = """trace dst=10 src=40 slots=0:o,1:i,2:f,3:i stored=3,2
k = range_next.i() | exit @10 normal
    store.i(k) 3
s = load.f() 2
a = load_o.o() 0
i = load.i() 1
    guard_type.(a) {list} | exit @12 stack s a i
row = subscr_list.o(a, i) | exit @12 stack s a i
    release.(a)
    guard_type.(row) {list} | exit @14 stack s row k
x = subscr_list.o(row, k) | exit @14 stack s row k
    release.(row)
    guard_type.(x) {float} | exit @16 stack s x
y = unbox.f(x) | exit @16 stack s x
    release.(x)
t = binary.f(s, y) 'add'
    store.f(t) 2
"""


def test_an_item_read_the_same_every_iteration_is_read_once_before_the_loop() -> None:
    # a[i], with a only read and i never stored: the row is read, and its
    # type checked, before the loop; the loop borrows it (a holds it).
    rec = parse(READS.format(list=id(list), float=id(float)))
    same(licm(rec), f"""trace dst=10 src=40 slots=0:o,1:i,2:f,3:i stored=3,2
a = load_o.o() 0
    guard_type.(a) {id(list)} | exit @10 drop a
i = load.i() 1
row = subscr_list_b.o(a, i) | exit @10 drop a
    guard_type.(row) {id(list)} | exit @10 drop a
    release.(a)
    loop_head.()
k = range_next.i() | exit @10 normal
    store.i(k) 3
s = load.f() 2
b = load_b.o() 0
i2 = load.i() 1
x = subscr_list.o(row, k) | exit @14 stack s row k
    guard_type.(x) {id(float)} | exit @16 stack s x
y = unbox.f(x) | exit @16 stack s x
    release.(x)
t = binary.f(s, y) 'add'
    store.f(t) 2
""")


@pytest.mark.parametrize("change", [
    "    store.i(k) 1\n",  # i stored: a[i] changes
    "    store_subscr_list_f.(s, a2, k) | exit @18 stack\n",  # a list written
])
def test_an_item_read_that_may_change_stays_in_the_loop(change: str) -> None:
    text = READS.format(list=id(list), float=id(float)) + "a2 = load_o.o() 0\n" + change
    rec = parse(text.replace("stored=3,2", "stored=3,2,1" if "store.i" in change else "stored=3,2"))
    names = [op.name for op in licm(rec).ops]
    assert "subscr_list_b" not in names[:names.index("loop_head")] if "loop_head" in names else True


def row_sums(a: Any, i: int, n: int) -> float:
    s = 0.0
    for k in range(n):
        s += a[i][k] * 0.5  # a[i]: the same list all the loop
    return s


def test_a_row_read_in_an_inner_loop_is_read_before_it() -> None:
    example = load("matmul", "examples")
    a, b = [[0.5 * (i - j) for j in range(30)] for i in range(30)], [[1.0 + j] * 30 for j in range(30)]
    differential(example.matmul, a, b, 30)
    texts = recordings_of(ROOT / "examples" / "matmul.py", "checksum", 30)
    inner = [optimize(parse(text)).ops for text in texts if "loop_head" in text]
    assert inner, texts
    names = [op.name for op in inner[0]]
    head = names.index("loop_head")
    assert "subscr_list_b" in names[:head] and names[head:].count("guard_type") <= 1


@pytest.mark.parametrize("a, i, n", [
    ([[0.5 * k for k in range(300)]], 0, 300),
    ([[0.5 * k for k in range(300)], [1.0] * 300], 1, 300),
    ([[0.5 * k for k in range(300)]], 1, 300),  # a[1]: IndexError, before the loop's first iteration
    ([[0.5 * k for k in range(300)]], -1, 300),  # a negative index
    ([[0.5 * k for k in range(200)]], 0, 300),  # a[0][200]: IndexError inside
    ([tuple(0.5 * k for k in range(300))], 0, 300),  # a tuple row
    ([[0.5] * 150 + [1] * 150], 0, 300),  # ints half way: the unbox leaves
    ((tuple(0.5 * k for k in range(300)),), 0, 300),  # a tuple of tuples
])
def test_invariant_rows_give_what_cpython_gives(a: Any, i: int, n: int) -> None:
    # Compiled on a valid row first, then run on this one (a guard or read
    # before the loop that fails leaves at its head).
    warm = [[0.25] * 300]
    before = [sys.getrefcount(row) for row in a]
    expected = full_outcome(row_sums, a, i, n)
    jit = JIT(1)
    jit.enable(row_sums.__code__)
    try:
        assert row_sums(warm, 0, 300) == 37.5
        got = full_outcome(row_sums, a, i, n)
    finally:
        jit.disable()
    assert got == expected
    gc.collect()
    assert [sys.getrefcount(row) for row in a] == before


def test_a_row_replaced_between_runs_is_read_again() -> None:
    a = [[1.0] * 300, [2.0] * 300]
    jit = JIT(1)
    jit.enable(row_sums.__code__)
    try:
        first = row_sums(a, 0, 300)
        a[0] = [3.0] * 300
        second = row_sums(a, 0, 300)
        a[0] = tuple([4.0] * 300)
        third = row_sums(a, 0, 300)
    finally:
        jit.disable()
    assert (first, second, third) == (150.0, 450.0, 600.0)
    assert jit.stats.as_dict()["native_entries"] >= 2


# --- what the loop computes from invariants -----------------------------------------

COMPUTES = """trace dst=10 src=40 slots=0:o,1:i,2:f,3:i,4:f,5:o stored=3,2
k = range_next.i() | exit @10 normal
    store.i(k) 3
a = load_o.o() 0
    guard_type.(a) {list} | exit @12 stack a
f = load_o.o() 5
    guard_is.(f) {true} | exit @13 stack f
    release.(f)
n = len.i(a)
    release.(a)
w = load.f() 4
r = math.f(w) 'SQRT' | exit @14 stack w
i = load.i() 1
one = const.i() 1
j = binary.i(i, one) 'add' | exit @16 stack i one
m = binary.i(j, n) 'mul' | exit @18 stack j n
x = to_float.f(m)
y = binary.f(x, r) 'mul'
kf = to_float.f(k)
z = binary.f(kf, y) 'add'
s = load.f() 2
t = binary.f(s, z) 'add'
    store.f(t) 2
"""


def test_what_the_loop_computes_from_invariants_is_computed_before_it() -> None:
    # `if flag:` and `(i + 1) * len(a) * math.sqrt(w)`, with flag, a, i and w
    # locals the loop never stores: their tests and values once, before the
    # loop, leaving at its head when one fails; only `k * ...` stays.
    rec = parse(COMPUTES.format(list=id(list), true=id(True)))
    same(licm(rec), f"""trace dst=10 src=40 slots=0:o,1:i,2:f,3:i,4:f,5:o stored=3,2
a = load_o.o() 0
    guard_type.(a) {id(list)} | exit @10 drop a
f = load_o.o() 5
    guard_is.(f) {id(True)} | exit @10 drop a f
n = len.i(a)
w = load.f() 4
r = math.f(w) 'SQRT' | exit @10 drop a f
i = load.i() 1
one = const.i() 1
j = binary.i(i, one) 'add' | exit @10 drop a f
m = binary.i(j, n) 'mul' | exit @10 drop a f
x = to_float.f(m)
y = binary.f(x, r) 'mul'
    release.(a)
    release.(f)
    loop_head.()
k = range_next.i() | exit @10 normal
    store.i(k) 3
a2 = load_b.o() 0
f2 = load_b.o() 5
w2 = load.f() 4
i2 = load.i() 1
one2 = const.i() 1
kf = to_float.f(k)
z = binary.f(kf, y) 'add'
s = load.f() 2
t = binary.f(s, z) 'add'
    store.f(t) 2
""")


def computes(n: int, k: int, w: float, d: int, flag: bool, data: list[float]) -> tuple[float, int]:
    total, count = 0.0, 0
    for i in range(n):
        if flag:
            total += i * (k + 1) * 0.5
        total += data[k % 3] * math.sqrt(w) + w / len(data) + 1.0 / d
        count += k * 1152921504606846976 % 1000 - i  # k * 2**60: past 64 bits from k = 8 on
    return total, count


# Run one after another in one JIT: each changes what the loop computed
# before it (its ops leave at the loop's head, and the interpreter runs the
# loop, or raises where CPython raises: math.sqrt(-1.0), 1.0 / 0).
RUNS: list[tuple[Any, ...]] = [
    (300, 1, 2.0, 4, True, [1.0, 2.0, 3.0]),
    (300, 1, 2.0, 4, False, [1.0, 2.0, 3.0]),
    (300, 2, 3.5, -7, True, [1.0, 2.0, 3.0, 4.0]),
    (300, 9, 2.0, 4, True, [1.0, 2.0, 3.0]),
    (300, 1, -1.0, 4, True, [1.0, 2.0, 3.0]),
    (300, 1, 2.0, 0, True, [1.0, 2.0, 3.0]),
    (0, 1, -1.0, 0, True, [1.0, 2.0, 3.0]),
    (300, 1, 2.0, 4, 1, [1.0, 2.0, 3.0]),
    (300, 1, 2.0, 4, True, [1.0, 2.0, 3.0]),
]


def test_a_loop_computing_from_invariants_gives_what_cpython_gives() -> None:
    expected = [full_outcome(computes, *args) for args in RUNS]
    jit = JIT(1)
    jit.enable(computes.__code__)
    try:
        got = [full_outcome(computes, *RUNS[0])]
        reports = explainer.collect(jit, [computes.__code__])
        got += [full_outcome(computes, *args) for args in RUNS[1:]]
    finally:
        jit.disable()
    assert got == expected
    assert [outcome[1] for outcome in got if outcome[0] == "raised"] == ["ValueError", "ZeroDivisionError"]
    optimized = [line.text for report in reports if report.trace is not None
                 for line in report.trace.optimized]
    head = next(i for i, text in enumerate(optimized) if "loop_head" in text)
    assert any("'SQRT'" in text for text in optimized[:head]), optimized
    assert not any("'SQRT'" in text or "len." in text for text in optimized[head:]), optimized
    assert jit.stats.native_entries >= 3
