"""Loads moved out of loops that run code (copyjit/opt/licm_code.py): the
pass as input trace -> expected trace, what it must leave in the loop, the
dict watcher's epoch (copyjit/c/objects.c), and, end to end, that every
rebinding code in the loop makes is seen where CPython sees it: of a
global, a builtin (shadowed by a new global), a module attribute, through
a key made at run time, and a globals dict cleared."""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
import threading
import time
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from copyjit.backend.runtime import runtime
from copyjit.opt import optimize
from copyjit.opt.licm import licm
from copyjit.opt.text import dump, parse
from copyjit.trace.ir import Recording
from copyjit.trace.jit import JIT
from tests.test_objects import differential, full_outcome
from tests.test_opt import recordings_of, same

# A loop calling `f = weight` (a global, identity-guarded) on `str(n)` (a
# call: code may run), and taking math.sqrt of the result.
TRACE = """trace dst=10 src=40 slots=1:f,2:i stored=2,1
n = range_next.i() | exit @10 normal
    store.i(n) 2
acc = load.f() 1
s = builtin.o() (3, 95, 7) | exit @12 stack acc
    guard_is.(s) {str} | exit @14 stack acc s
b = box.o(n) | exit @14 stack acc s n
r = call.o(s, b) (16, 1) | exit @14 normal reraise=s stack acc s b
    release.(s)
    release.(b)
    release.(r)
m = global.o() (8, 95) | exit @20 stack acc
    guard_type.(m) {module} | exit @22 stack acc m
q = attr_module.o(m) (52, 96) | exit @22 stack acc m
    release.(m)
    guard_is.(q) {sqrt} | exit @24 stack acc q
x = to_float.f(n)
y = math.f(x) 'SQRT' | exit @24 stack acc q x
    release.(q)
t = binary.f(acc, y) 'add'
    store.f(t) 1
"""


def trace(text: str = TRACE) -> Recording:
    rec = parse(text.format(str=id(str), module=id(type(math)), sqrt=id(math.sqrt)))
    rec.constants.extend([str, math.sqrt])
    return rec


def test_loads_move_and_the_loop_tests_the_epoch_where_code_may_have_run() -> None:
    # One test for `str` (code ran in the iteration before: the call) and
    # one for `math` (after the call); the module's type is checked again
    # in the loop, where its dict still holds it (no code since the test).
    same(licm(trace()), f"""trace dst=10 src=40 slots=1:f,2:i stored=2,1
e = watch_epoch.i()
s = builtin_b.o() (3, 95, 7) | exit @10
    guard_is.(s) {id(str)} | exit @10
m = global_b.o() (8, 95) | exit @10
    guard_type.(m) {id(type(math))} | exit @10
q = attr_module_b.o(m) (52, 96) | exit @10
    guard_is.(q) {id(math.sqrt)} | exit @10
    loop_head.()
n = range_next.i() | exit @10 normal
    store.i(n) 2
acc = load.f() 1
    guard_watched.(e) | exit @12 stack acc
c = const_o.o() {id(str)}
b = box.o(n) | exit @14 stack acc c n
r = call.o(c, b) (16, 1) | exit @14 normal reraise=c stack acc c b
    release.(c)
    release.(b)
    release.(r)
    guard_watched.(e) | exit @20 stack acc
    guard_type.(m) {id(type(math))} | exit @22 stack acc m
k = const_b.o() {id(math.sqrt)}
x = to_float.f(n)
y = math.f(x) 'SQRT' | exit @24 stack acc k x
t = binary.f(acc, y) 'add'
    store.f(t) 1
""")


def test_the_text_round_trips_and_verifies_after_every_pass() -> None:
    moved = optimize(trace(), check=True)
    assert dump(parse(dump(moved))) == dump(moved)
    assert [op.name for op in moved.ops].count("guard_watched") == 2


def test_a_loop_storing_a_global_moves_nothing() -> None:
    # Its own store would change the epoch at every iteration.
    rec = trace(TRACE + "g = load_o.o() 3\n    store_global.(g) 7 | exit @30 stack\n")
    assert licm(rec) is rec


def test_a_module_used_across_code_stays_in_the_loop() -> None:
    # `math` loaded before the call and its attribute read after it: the
    # call may rebind `math` and free the module the loop would borrow.
    text = TRACE.replace("    release.(r)\n", "").replace(
        "m = global.o() (8, 95) | exit @20 stack acc\n", "")
    text = text.replace("acc = load.f() 1\n",
                        "acc = load.f() 1\nm = global.o() (8, 95) | exit @12 stack acc\n")
    text = text.replace("    release.(m)\n", "    release.(m)\n    release.(r)\n")
    rec = licm(trace(text))
    head = [op.name for op in rec.ops].index("loop_head")
    names = [op.name for op in rec.ops[head:]]
    assert "global" in names and "attr_module" in names  # they stay
    assert "builtin" not in names  # str moves still
    assert names.count("guard_watched") == 1


def test_the_epoch_counts_changes_of_watched_keys_only() -> None:
    rt = runtime()
    namespace = {"watched": 1, "other": 2}
    rt.watch(namespace, sys.intern("watched"))
    start = rt.watch_epoch()
    namespace["other"] = 3
    namespace["new"] = 4
    del namespace["new"]
    assert rt.watch_epoch() == start
    namespace["watched"] = 5
    assert rt.watch_epoch() == start + 1
    namespace["".join(["watch", "ed"])] = 6  # an equal key made at run time: counted too
    namespace[sys.intern("watched")] = 7
    del namespace["watched"]
    namespace.update(watched=8)
    assert rt.watch_epoch() == start + 5
    namespace.clear()
    assert rt.watch_epoch() == start + 6


# --- end to end: rebinding from code the loop runs ---------------------------


def weight(x: float) -> float:
    return x * 0.5


def unweighted(x: float) -> float:
    return x


class Rebinder:
    """Made in the loop (a call: its __init__ runs as code the trace does
    not see) at one chosen iteration, where it rebinds `what`."""

    def __init__(self, i: int, at: int, what: str) -> None:
        self.i = i
        if i == at:
            REBIND[what]()


def _weight() -> None:
    global weight
    weight = unweighted


def _builtin() -> None:
    globals()["abs"] = lambda x: -1.0  # shadows the builtin from now on


def _module() -> None:
    math.sqrt = math.exp


def _key_made_at_run_time() -> None:
    globals()["".join(["wei", "ght"])] = unweighted


REBIND = {"weight": _weight, "builtin": _builtin, "module": _module, "key": _key_made_at_run_time,
          "none": lambda: None}


def calls_in_the_loop(n: int, what: str) -> list[Any]:
    saved = weight, math.sqrt
    out = []
    try:
        for i in range(n):
            item = Rebinder(i, n // 2, what)
            out.append(weight(float(item.i)) + abs(-1.5) + math.sqrt(2.0))
    finally:
        globals()["weight"], math.sqrt = saved
        globals().pop("abs", None)
    return [*out[n // 2 - 2: n // 2 + 3], sum(out)]


@pytest.mark.parametrize("what", list(REBIND))
def test_a_rebinding_by_code_in_the_loop_is_seen_where_cpython_sees_it(what: str) -> None:
    stats = differential(calls_in_the_loop, 400, what)
    assert stats["native_entries"] >= 1


def calls_and_rebinds_nothing(n: int) -> list[Any]:
    saved = weight, math.sqrt
    out = []
    try:
        for i in range(n):
            item = Rebinder(i, -1, "none")
            out.append(weight(float(item.i)) + abs(-1.5) + math.sqrt(2.0))
    finally:
        globals()["weight"], math.sqrt = saved
    return out


def test_the_loads_of_a_loop_that_calls_move() -> None:
    differential(calls_and_rebinds_nothing, 400)
    texts = recordings_of(Path(__file__), "calls_and_rebinds_nothing", 400)
    ops = [op.name for op in optimize(parse(texts[0])).ops]
    head = ops.index("loop_head")
    assert {"global_b", "builtin_b", "attr_module_b", "watch_epoch"} <= set(ops[:head])
    assert not {"global", "builtin", "attr_module"} & set(ops[head:])
    assert "guard_watched" in ops[head:]


def test_unrelated_globals_changing_do_not_make_the_loop_leave() -> None:
    jit = JIT(1)
    jit.enable(counts_calls.__code__)
    try:
        got = counts_calls(2000)
    finally:
        jit.disable()
    assert got == 2000 * 0.5 * 1999 / 2
    assert jit.stats.native_entries == 1  # never left before the loop's end
    (location,) = [location for location in jit.locations.values() if location.trace is not None]
    assert "guard_watched" in [op.name for op in location.lowered.lowering.rec.ops]


CALLS = 0


class Counted:
    def __init__(self) -> None:
        global CALLS
        CALLS += 1  # a global no loop loads


def counts_calls(n: int) -> float:
    total = 0.0
    for i in range(n):
        Counted()
        total += weight(float(i))
    return total


# A loop in a namespace of its own, which code it calls clears: the next
# load of `math` fails, with CPython's NameError.
_CLEARED = compile("""
def loop(n, clear):
    out = []
    for i in range(n):
        out.append(math.sqrt(float(i)))
        clear(i)
    return out
""", "<cleared>", "exec")


def clears_its_globals(n: int) -> Any:
    namespace: dict[str, Any] = {"math": math}
    exec(_CLEARED, namespace)

    def clear(i: int) -> None:
        if i == n // 2:
            namespace.clear()

    return namespace["loop"](n, clear)


def test_a_globals_dict_cleared_is_seen() -> None:
    expected = full_outcome(clears_its_globals, 300)
    assert "NameError" in repr(expected)
    jit = JIT(1)
    jit.enable(next(c for c in _CLEARED.co_consts if isinstance(c, CodeType)))
    try:
        got = full_outcome(clears_its_globals, 300)
    finally:
        jit.disable()
    assert got == expected
    assert jit.stats.native_entries >= 1


def test_with_no_dict_watcher_left_a_loop_loading_globals_is_not_compiled() -> None:
    # Other tools took every dict watcher: nothing the loop loads could be
    # watched, so it is not compiled (and says why), and runs as CPython.
    rt = runtime()
    assert rt.watch({}, sys.intern("x"))  # ours, added
    # The other tools' watchers: ours again (a ctypes callback would map
    # memory both writable and executable, which tests/test_memory.py forbids).
    callback = rt.functions["copyjit_on_dict_event"]
    add, clear = ctypes.pythonapi.PyDict_AddWatcher, ctypes.pythonapi.PyDict_ClearWatcher
    add.argtypes, add.restype, clear.argtypes = [ctypes.c_void_p], ctypes.c_int, [ctypes.c_int]
    ours = ctypes.c_int64.from_address(rt.watching + 8)  # watch_state.watcher: its id + 1
    saved, taken = ours.value, []
    try:
        with contextlib.suppress(RuntimeError):  # (no more ids)
            while True:
                taken.append(add(callback))
        ours.value = 0  # as if ours were never added: adding it now fails
        stats = differential(calls_and_rebinds_nothing, 400, native=False)
    finally:
        ours.value = saved
        for number in taken:
            clear(number)
    assert stats["traces"] == 0
    assert any("no dict watcher left" in reason for reason in stats["aborts"]), stats["aborts"]


def spins_sleeping(seconds: float) -> tuple[float, float]:
    """Sum weight(1.0), calling time.sleep(0) (code, and the GIL let go)
    each time, until weight gives a negative number."""
    total, deadline = 0.0, time.monotonic() + seconds
    i = 0
    while True:
        time.sleep(0)
        w = weight(1.0)
        if w < 0.0:
            return total, w
        total += w
        i += 1
        if i % 1024 == 0 and time.monotonic() > deadline:
            return total, 0.0


def test_a_rebinding_by_another_thread_during_a_call_is_seen() -> None:
    original = weight
    jit = JIT(1)
    jit.enable(spins_sleeping.__code__)

    def rebind() -> None:
        time.sleep(0.2)
        globals()["weight"] = lambda x: -5.0

    thread = threading.Thread(target=rebind)
    thread.start()
    try:
        _, last = spins_sleeping(30.0)
    finally:
        thread.join()
        globals()["weight"] = original
        jit.disable()
    assert last == -5.0
    assert jit.stats.native_entries >= 1
    (location,) = [location for location in jit.locations.values() if location.trace is not None]
    assert "guard_watched" in [op.name for op in location.lowered.lowering.rec.ops]


def test_the_type_guard_kept_in_the_loop_survives_the_guards_pass() -> None:
    # The call last in the iteration: no code between loop_head and the
    # module's type guard in the loop, but the call of the iteration before.
    text = TRACE.replace("    release.(r)\n", "").replace("t = binary.f(acc, y) 'add'\n",
                                                            "t = binary.f(acc, y) 'add'\n    release.(r)\n")
    moves = ["s = builtin.o() (3, 95, 7) | exit @12 stack acc\n",
             "    guard_is.(s) {str} | exit @14 stack acc s\n", "b = box.o(n) | exit @14 stack acc s n\n",
             "r = call.o(s, b) (16, 1) | exit @14 normal reraise=s stack acc s b\n",
             "    release.(s)\n", "    release.(b)\n"]
    for line in moves:
        text = text.replace(line, "")
    text = text.replace("    release.(r)\n", "".join(moves) + "    release.(r)\n")
    rec = optimize(trace(text), check=True)
    names = [op.name for op in rec.ops]
    head = names.index("loop_head")
    assert "guard_type" in names[:head] and "guard_type" in names[head:]
