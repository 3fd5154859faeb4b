"""Calls of small Python functions inlined into traces (record_inline.py).

Each loop runs under CPython and under the JIT (threshold 1) and must give
the same result, or the same exception with the same traceback (the
callee's frames included: an exit inside an inlined body resumes at the
CALL, and the interpreter makes the call); each also checks whether the
call was inlined, from stats()["calls"]."""

from __future__ import annotations

import gc
import sys
import types
from textwrap import dedent
from typing import Any

from test_objects import differential

from copyjit.trace import bytecode
from copyjit.trace.jit import JIT


def inlined(stats: dict[str, Any]) -> int:
    return int(stats["calls"].get("inlined", 0))


def not_inlined(stats: dict[str, Any]) -> list[str]:
    return [what for what in stats["calls"] if what.startswith("not inlined")]


# --- inlined, and the same answers ------------------------------------------

def eval_a(i: int, j: int) -> float:
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def spectral_row(n: int) -> float:
    total = 0.0
    for j in range(n):
        total += eval_a(3, j) * 0.5
    return total


def test_a_pure_function_is_inlined() -> None:
    stats = differential(spectral_row, 1000)
    assert inlined(stats) >= 1, stats["calls"]


def poly(x: float, a: float = 2.0, b: int = 3) -> float:
    return a * x * x + b


def hypot_of(x: float, y: float) -> float:
    return sqrt_of(x * x + y * y)


def sqrt_of(v: float) -> float:
    return v ** 0.5 if v >= 0.0 else -1.0


def nested_and_defaults(n: int) -> float:
    total = 0.0
    for i in range(n):
        x = i * 0.25
        total += poly(x) + poly(x, 1.5) + hypot_of(x, 1.0)
    return total


def test_defaults_and_nested_calls_are_inlined() -> None:
    stats = differential(nested_and_defaults, 500)
    assert inlined(stats) >= 4, stats["calls"]  # poly twice, hypot_of, sqrt_of in it


class Scaler:
    def __init__(self, factor: float) -> None:
        self.factor = factor


def scale(scaler: Scaler, x: float) -> float:
    return scaler.factor * x


def reads_an_attribute(n: int, scaler: Scaler) -> float:
    total = 0.0
    for i in range(n):
        total += scale(scaler, i)
    return total


def test_a_function_reading_an_attribute_is_inlined() -> None:
    stats = differential(reads_an_attribute, 500, Scaler(0.5))
    assert inlined(stats) >= 1, stats["calls"]


def sign(x: int) -> int:
    if x % 3 == 0:
        return -1
    return 1


def alternating(n: int) -> int:
    total = 0
    for i in range(n):
        total += sign(i) * i
    return total


def test_a_branch_inside_an_inlined_function_gets_a_bridge() -> None:
    stats = differential(alternating, 3000)
    assert inlined(stats) >= 2 and stats["bridges"] >= 1, stats


def squares(x: int) -> int:
    return x * x * x


def overflows(n: int) -> int:
    total = 0
    for i in range(n):
        total += squares(i * 1000)  # beyond 64 bits from i = 2098
    return total


def test_an_overflow_inside_an_inlined_function() -> None:
    differential(overflows, 3000)


# --- exceptions: the callee's own frame, from the interpreter ----------------

def reciprocal(x: int) -> float:
    return 1.0 / x


def through(x: int) -> float:
    return reciprocal(x - 400) * 2.0


def raises_deep_inside(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += through(i)
    return total


def test_an_exception_inside_inlined_calls_has_the_same_traceback() -> None:
    stats = differential(raises_deep_inside, 1000)  # ZeroDivisionError at i = 400, two calls deep
    assert inlined(stats) >= 1, stats["calls"]


def item_times(xs: list[Any], i: int) -> float:
    return xs[i] * 2.0


def exits_holding_objects(n: int, xs: list[Any]) -> float:
    total = 0.0
    for i in range(n):
        total += item_times(xs, i % len(xs))
    return total


def test_exits_inside_an_inlined_function_release_its_values() -> None:
    # Every tenth item is a str: the trace leaves inside item_times with the
    # list and the item on the callee's stack; the interpreter then raises.
    xs: list[Any] = [float(k) for k in range(10)]
    sentinel = 1.5
    xs[3] = sentinel
    # (The last codes decoded are kept, with their traces, whose constants
    # may be this float: a module's equal constants are one object.)
    bytecode._DECODED.clear()
    gc.collect()
    before_list, before_item = sys.getrefcount(xs), sys.getrefcount(sentinel)
    differential(exits_holding_objects, 1000, xs)
    xs[7] = "x"
    differential(exits_holding_objects, 1000, xs)
    xs[7] = 7  # an int: exits, and the interpreter goes on
    stats = differential(exits_holding_objects, 1000, xs)
    assert inlined(stats) >= 1, stats["calls"]
    bytecode._DECODED.clear()
    gc.collect()
    assert (sys.getrefcount(xs), sys.getrefcount(sentinel)) == (before_list, before_item)


# --- never stale ---------------------------------------------------------------

def double(x: int) -> int:
    return 2 * x


def triple(x: int) -> int:
    return 3 * x


def rebinds_the_function(n: int) -> int:
    global double
    total = 0
    original = double
    for i in range(n):
        total += double(i)
        if i == n // 2:
            double = triple  # the trace must call the new one
    double = original
    return total


def test_rebinding_the_function_global_is_seen() -> None:
    differential(rebinds_the_function, 1000)


def fresh_functions() -> dict[str, Any]:
    """New function objects (as MAKE_FUNCTION makes them: with a version;
    one whose __code__ was ever reassigned has none, and is not inlined)."""
    namespace: dict[str, Any] = {}
    exec("def weight(x):\n"
         "    return x + 1\n"
         "def swap_code():\n"
         "    weight.__code__ = (lambda x: 3 * x).__code__\n"
         "def changes_code_midway(n):\n"
         "    total = 0\n"
         "    for i in range(n):\n"
         "        total += weight(i)\n"
         "        if i == n // 2:\n"
         "            swap_code()\n"
         "    return total\n", namespace)
    return namespace


def test_changing_the_code_of_an_inlined_function_is_seen() -> None:
    expected = fresh_functions()["changes_code_midway"](1000)
    loop = fresh_functions()["changes_code_midway"]
    jit = JIT(1)
    jit.enable(loop.__code__)
    try:
        got = loop(1000)
    finally:
        jit.disable()
    assert got == expected
    assert inlined(jit.stats.as_dict()) >= 1


def offset(x: int, by: int = 1) -> int:
    return x + by


def sums_offsets(n: int) -> int:
    total = 0
    for i in range(n):
        total += offset(i)
    return total


def test_changing_code_or_defaults_between_runs_is_seen() -> None:
    jit = JIT(1)
    jit.enable(sums_offsets.__code__)
    try:
        assert sums_offsets(1000) == sum(i + 1 for i in range(1000))
        assert inlined(jit.stats.as_dict()) >= 1
        offset.__defaults__ = (5,)
        assert sums_offsets(1000) == sum(i + 5 for i in range(1000))
        original = offset.__code__
        offset.__code__ = (lambda x, by=1: x - by).__code__
        assert sums_offsets(1000) == sum(i - 5 for i in range(1000))
        offset.__code__ = original
        assert sums_offsets(1000) == sum(i + 5 for i in range(1000))
    finally:
        jit.disable()
        offset.__defaults__ = (1,)


# --- not inlined, and still right ------------------------------------------------

def fib(k: int) -> int:
    return k if k < 2 else fib(k - 1) + fib(k - 2)


def calls_a_recursive_function(n: int) -> int:
    total = 0
    for i in range(n):
        total += fib(i % 8)
    return total


def test_recursion_is_not_inlined_forever() -> None:
    stats = differential(calls_a_recursive_function, 300)
    assert "not inlined: recursion" in stats["calls"] or not_inlined(stats), stats["calls"]


SEEN: list[int] = []


def remembers(x: int) -> int:
    SEEN.append(x)
    return x


def counter_add(x: int) -> int:
    global COUNT
    COUNT += x
    return COUNT


COUNT = 0


def calls_functions_with_effects(n: int) -> int:
    total = 0
    for i in range(n):
        total += remembers(i) + counter_add(i)
    return total


def test_functions_with_effects_are_called() -> None:
    global COUNT
    SEEN.clear()
    COUNT = 0
    expected = calls_functions_with_effects(500), list(SEEN), COUNT
    SEEN.clear()
    COUNT = 0
    jit = JIT(1)
    jit.enable(calls_functions_with_effects.__code__)
    try:
        got = calls_functions_with_effects(500), list(SEEN), COUNT
    finally:
        jit.disable()
    assert got == expected
    calls = jit.stats.as_dict()["calls"]
    assert not calls.get("inlined") and len(not_inlined(jit.stats.as_dict())) == 2, calls


def gen_sum(k: int) -> int:
    return sum(x for x in range(k))


def star_args(*xs: int) -> int:
    return xs[0]


def calls_unsupported_kinds(n: int) -> int:
    total = 0
    for i in range(n):
        total += gen_sum(3) + star_args(i)
    return total


def test_unsupported_functions_are_called() -> None:
    stats = differential(calls_unsupported_kinds, 300)
    assert not stats["calls"].get("inlined"), stats["calls"]


def test_a_function_of_another_module_is_called() -> None:
    other = types.ModuleType("other")
    exec("K = 7\ndef f(x):\n    return x * K\n", vars(other))
    namespace = {"f": other.f}
    exec("def loop(n):\n"
         "    total = 0\n"
         "    for i in range(n):\n"
         "        total += f(i)\n"
         "    return total\n", namespace)
    stats = differential(namespace["loop"], 300)
    assert "not inlined: a function of another module" in stats["calls"], stats["calls"]


# --- tools ---------------------------------------------------------------------------

def test_a_tool_with_local_events_on_the_callee_sees_every_call() -> None:
    monitoring = sys.monitoring
    tool = monitoring.DEBUGGER_ID
    starts: list[int] = []
    jit = JIT(1)
    jit.enable(spectral_row.__code__)
    try:
        first = spectral_row(300)
        assert inlined(jit.stats.as_dict()) >= 1
        monitoring.use_tool_id(tool, "test")
        try:
            started = lambda code, offset: starts.append(1)  # noqa: E731
            monitoring.register_callback(tool, monitoring.events.PY_START, started)
            monitoring.set_local_events(tool, eval_a.__code__, monitoring.events.PY_START)
            assert spectral_row(300) == first
        finally:
            monitoring.set_local_events(tool, eval_a.__code__, 0)
            monitoring.register_callback(tool, monitoring.events.PY_START, None)
            monitoring.free_tool_id(tool)
    finally:
        jit.disable()
    assert len(starts) == 300 - recorded_calls(jit)


def test_a_profiler_sees_every_call() -> None:
    calls: list[str] = []

    def profiler(frame: Any, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is eval_a.__code__:
            calls.append(event)

    jit = JIT(1)
    jit.enable(spectral_row.__code__)
    try:
        first = spectral_row(300)
        sys.setprofile(profiler)
        try:
            assert spectral_row(300) == first
        finally:
            sys.setprofile(None)
    finally:
        jit.disable()
    assert len(calls) == 300 - recorded_calls(jit)


def recorded_calls(jit: JIT) -> int:
    """The calls made while recording a bridge from the inlined call's exit
    (hot, since it exits at every iteration while the tool watches): the
    recording makes the call with events paused (a known gap, not
    inlining's: docs/design-tracing.md), and records it as a call."""
    made = int(jit.stats.calls["not inlined: a function another tool or a profiler watches"])
    assert made <= 2  # one bridge, perhaps a re-recording
    return made


# --- what inlined bodies need of the optimizer and the lowering ----------------

def test_cse_reuses_a_number_computed_from_the_same_values() -> None:
    from copyjit.opt.passes import cse
    from copyjit.opt.text import dump, normalized, parse

    before = """
    trace dst=0 src=10 slots=1:i,2:i stored=
    v0 = load.i() 1
    v1 = load.i() 2
    v2 = binary.i(v0, v1) 'add' | exit @4 stack v0 v1
    v3 = binary.i(v0, v1) 'add' | exit @8 stack v0 v1
    v4 = binary.i(v2, v3) 'mul' | exit @12 stack v2 v3
    v5 = binary.i(v1, v0) 'add' | exit @14 stack v1 v0
    v6 = to_float.f(v4)
    v7 = to_float.f(v4)
    v8 = binary.f(v6, v7) 'add' | exit @16
    """
    after = """
    trace dst=0 src=10 slots=1:i,2:i stored=
    v0 = load.i() 1
    v1 = load.i() 2
    v2 = binary.i(v0, v1) 'add' | exit @4 stack v0 v1
    v4 = binary.i(v2, v2) 'mul' | exit @12 stack v2 v2
    v5 = binary.i(v1, v0) 'add' | exit @14 stack v1 v0
    v6 = to_float.f(v4)
    v8 = binary.f(v6, v6) 'add' | exit @16
    """
    assert dump(cse(parse(dedent(before)))) == normalized(dedent(after))


def test_a_snapshot_drop_list_round_trips() -> None:
    from copyjit.opt.text import normalized

    text = """
    trace dst=0 src=10 slots= stored=
    v0 = const_o.o() 7
    v1 = const_o.o() 8
         guard_type.(v1) 9 | exit @4 stack v0 drop v1
    """
    assert "stack v0 drop v1" in normalized(dedent(text))


def halves(x: int) -> tuple[int, int, int, int]:
    return x // 2, x % 8, x // 1024, (x - 5000) % 4


def powers_of_two(n: int) -> int:
    total = 0
    for i in range(-n, n):
        a, b, c, d = halves(i * 7)
        total += a + b + c + d
    return total


def test_floor_division_and_modulo_by_powers_of_two() -> None:
    differential(powers_of_two, 2000)
