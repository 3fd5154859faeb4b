"""The numeric kernels of benchmarks/ (n-body, spectral norm, mandelbrot),
and the recorder's features they need: unpacking tuples and lists, COPY
and SWAP (`v[0] += x`), float powers, floats stored into lists, names
reused with another type (`_`), short loops nested in others, a nested
loop leaving by several exits, and calls from a trace to functions with
hot loops. Each kernel gives the same result and output as CPython, with
its hot loops traced and entered natively; each feature is also tested
where its guards fail mid-loop."""

from __future__ import annotations

import ctypes
import dis
import importlib.util
import itertools
import json
import math
import platform
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copyjit.backend import native, runtime
from copyjit.backend.asm import float_bits
from copyjit.backend.emitter import Instruction
from copyjit.trace.ir import Op, Recording, Snapshot
from copyjit.trace.jit import ENTRIES_BEFORE_JUDGING, JIT, MAX_RECORDINGS
from copyjit.trace.lower import CLOBBERING, power_bounds
from copyjit.uops import UOPS
from tests.conftest import cached_trace, run
from tests.test_objects import differential, full_outcome
from tests.test_unboxed import FLOAT_BINARY

ROOT = Path(__file__).parent.parent


def traced_loops(jit: JIT) -> set[tuple[str, int]]:
    """(function, line of the loop's head) of every loop with a trace."""
    loops = set()
    for location in jit.locations.values():
        if location.lowered is not None:
            rec = location.lowered.lowering.rec
            lines = {i.offset: i.positions.lineno for i in dis.get_instructions(rec.code) if i.positions}
            loops.add((rec.code.co_name, lines[rec.dst]))
    return loops


Outcome = tuple[int, str, str]  # exit code, stdout, stderr


def python_and_copyjit(script: str, *options: str, args: tuple[str, ...] = ()) -> tuple[Outcome, Outcome]:
    """What `python SCRIPT ARGS` did, then `python -m copyjit run OPTIONS SCRIPT ARGS`."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    jit = ["-m", "copyjit", "run", *options]

    def outcome(*command: str) -> Outcome:
        done = subprocess.run([sys.executable, *command, script, *args], capture_output=True, text=True,
                              timeout=120, env=env)
        return done.returncode, done.stdout, done.stderr

    return outcome(), outcome(*jit)


# --- UNPACK_SEQUENCE ---------------------------------------------------------

def sum_pairs(pairs: list[Any]) -> tuple[float, float]:
    sx = sy = 0.0
    for x, y in pairs:
        sx += x
        sy += y * 0.5
    return sx, sy


def points() -> list[Any]:
    return [(i * 0.5, i * 0.25) for i in range(300)]


def test_unpacking_tuples_and_lists() -> None:
    differential(sum_pairs, points())
    differential(sum_pairs, [[i * 0.5, -i * 1.5] for i in range(300)])


@pytest.mark.parametrize("odd", [(1.0, 2.0, 3.0), (4.0,), [1.0, 2.0, 3.0], "ab", {1.0: 2.0, 3.0: 4.0},
                                 (1, 2), (1.0, None), 7])
def test_unpacking_something_else_mid_loop(odd: object) -> None:
    """Another length (raises ValueError), another type of sequence or item
    (exits, and the interpreter unpacks it), or no sequence (raises)."""
    items = points()
    items[150] = odd
    differential(sum_pairs, items)


def nested_unpacking(rows: list[Any]) -> float:
    total = 0.0
    for (a, b), [c, d, e], f in rows:
        total += a * b - c * d + e * f
    return total


def test_nested_unpacking_with_a_short_list_mid_loop() -> None:
    rows = [((i * 1.0, 2.0), [3.0, i * 0.5, 1.0], 0.5) for i in range(200)]
    differential(nested_unpacking, rows)
    rows[120] = ((1.0, 2.0), [3.0, 4.0], 0.5)
    differential(nested_unpacking, rows)


# --- COPY, SWAP: augmented assignment of items ---------------------------------

def accumulate_into(vector: list[Any], n: int) -> list[Any]:
    for i in range(n):
        vector[i % 3] += i * 0.5
        vector[(i + 1) % 3] -= 0.25
    return vector


def accumulate(n: int) -> list[Any]:
    return accumulate_into([0.0, 1.0, 2.0], n)


def test_augmented_assignment_of_list_items_stores_boxed_floats() -> None:
    expected = accumulate(600)
    jit = JIT(1)
    jit.enable(accumulate_into.__code__)
    try:
        assert accumulate(600) == expected
    finally:
        jit.disable()
    assert jit.stats.native_entries == 1 and jit.stats.traces == 1


@pytest.mark.parametrize("item", [7, "s", None, 2**70])
def test_a_list_item_of_another_type_mid_loop(item: object) -> None:
    def changes(n: int) -> list[Any]:
        vector: list[Any] = [0.0, 1.0, 2.0]
        for i in range(n):
            vector[i % 3] += 1.5
            if i == n // 2:
                vector[1] = item
        return vector

    differential(changes, 400)


def test_copied_objects_are_released_once() -> None:
    vector = [0.5, 1.5, 2.5]
    before = sys.getrefcount(vector)
    jit = JIT(1)
    jit.enable(accumulate_into.__code__)
    try:
        accumulate_into(vector, 5000)
    finally:
        jit.disable()
    assert jit.stats.native_entries == 1
    assert sys.getrefcount(vector) == before
    plain = accumulate_into([0.5, 1.5, 2.5], 5000)
    assert [sys.getrefcount(vector[k]) for k in range(3)] == [sys.getrefcount(plain[k]) for k in range(3)]


def chained_assignment(n: int) -> tuple[float, float]:
    a = b = 0.0
    for i in range(n):
        a = b = a + i * 0.5
        b += 1.0
    return a, b


def test_chained_assignment() -> None:
    differential(chained_assignment, 500)


# --- float ** ------------------------------------------------------------------

def powers(xs: list[Any]) -> float:
    total = 0.0
    for x in xs:
        total += x ** 2 + abs(x) ** 0.5 + (x * x + 1.0) ** -1.5
    return total


def test_float_powers_are_native() -> None:
    stats = differential(powers, [i * 0.37 - 20.0 for i in range(300)])
    assert stats["exits"] <= 2


@pytest.mark.parametrize("odd", [-2.5, 0.0, 1e200, float("inf"), float("nan"), 3])
def test_a_power_python_raises_or_makes_complex_mid_loop(odd: float) -> None:
    """(-2.5) ** 0.5 is a complex, 0.0 ** -1.5 raises ZeroDivisionError and
    1e200 ** 2 OverflowError: the trace exits there, CPython does it."""
    def odd_powers(xs: list[Any]) -> object:
        total: Any = 0.0
        for x in xs:
            total += x ** 0.5 + x ** 2 + x ** -1.5
        return total

    xs = [1.0 + i * 0.25 for i in range(300)]
    xs[200] = odd
    differential(odd_powers, xs)


def test_int_powers_stay_exact() -> None:
    def int_powers(n: int) -> object:
        total = 0
        for i in range(n):
            total += i ** 2 + 2 ** (i % 70)
        return total

    differential(int_powers, 300)


def _same(x: float, y: float) -> bool:
    return math.copysign(1.0, x) == math.copysign(1.0, y) and (x == y or (math.isnan(x) and math.isnan(y)))


SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1e308, -1e308, 5e-324,
           math.inf, -math.inf, math.nan, 1e16, -1e16, 2.5]


@given(a=st.one_of(st.floats(), st.sampled_from(SPECIAL)), b=st.one_of(st.floats(), st.sampled_from(SPECIAL)))
def test_pow_float_is_pythons_or_exits(a: float, b: float) -> None:
    """_POW_FLOAT gives Python's float ** float bit for bit, and exits where
    Python raises, returns a complex, or libm may report a range error."""
    status, final, stack = run(cached_trace(FLOAT_BINARY.format(op="_POW_FLOAT")), [a, b, None])
    try:
        expected: object = a ** b
    except (ZeroDivisionError, OverflowError) as error:
        expected = error
    if status == 0:
        assert isinstance(expected, float) and _same(final[2], expected), (a, b, final[2], expected)
        assert stack == []
    else:
        assert status == 2 and final[2] is None
        # Exits only where the interpreter must act, or for a subnormal result.
        assert not isinstance(expected, float) or expected == 0.0 or abs(expected) < sys.float_info.min


# Local 0 unboxed into f2; `ops` leave f(x) in f1, stored boxed into local
# 2 (status 0), or leave by `out` (status 2).
FLOAT_FUNCTION = """
    _LOAD_FAST oparg=0
    f2 = _UNBOX_FLOAT exit=bail
{ops}
    _BOX_FLOAT f1 error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
out:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""
EXPONENTS = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([-1.5, 0.5, 1e-300, -1e300, 2.5, -0.75]))


@given(a=st.one_of(st.floats(), st.sampled_from(SPECIAL)), b=EXPONENTS)
def test_pow_float_const_is_pythons_within_its_bounds_and_exits_outside(a: float, b: float) -> None:
    """_POW_FLOAT_CONST, for the bounds the lowering gives a constant
    exponent: Python's a ** b bit for bit for every base within them (where
    Python never raises), an exit for every other."""
    bounds = power_bounds(b)
    if bounds is None:  # an integer exponent: _POW_FLOAT's
        assert b == math.floor(b)
        return
    lo, hi = bounds
    assert 0.0 < lo <= hi
    for edge in (lo, hi):  # the bounds' own powers are finite and normal
        assert math.isfinite(edge ** b) and abs(edge ** b) >= sys.float_info.min
    trace = cached_trace(FLOAT_FUNCTION.format(ops=f"""\
    f0 = _LOAD_FLOAT_CONST operand0={float_bits(b)}
    f1 = _POW_FLOAT_CONST f2, f0 operand0={float_bits(lo)} operand1={float_bits(hi)} exit=out"""))
    status, final, stack = run(trace, [a, None, None])
    if lo <= a <= hi:
        assert status == 0 and stack == [] and _same(final[2], a ** b), (a, b, final[2])
    else:
        assert status == 2 and final[2] is None


_POW_FINITE = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_double)(runtime.pow_finite())


@given(fraction=st.floats(0.0, 1.0), b=EXPONENTS)
def test_the_pow_stencils_call_is_pythons_pow_within_the_bounds(fraction: float, b: float) -> None:
    """copyjit_pow_finite (glibc's core of pow, without the wrapper that
    sets errno) gives Python's a ** b bit for bit for bases within the
    bounds, spread over them by their logarithms."""
    bounds = power_bounds(b)
    if bounds is None:
        return
    lo, hi = bounds
    a = min(max(math.exp(math.log(lo) + fraction * (math.log(hi) - math.log(lo))), lo), hi)
    assert _same(_POW_FINITE(a, b), a ** b), (a, b)


def test_the_pow_stencils_call_skips_glibcs_wrapper_else_is_pow(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform == "linux" and platform.libc_ver()[0] == "glibc":
        assert runtime.pow_finite() != native.symbol("pow")

    def missing(name: str, version: str) -> int:
        raise LookupError(name)

    monkeypatch.setattr(native, "versioned_symbol", missing)
    assert runtime.pow_finite() == native.symbol("pow")


LIBM = {"_SIN_FLOAT": math.sin, "_COS_FLOAT": math.cos, "_EXP_FLOAT": math.exp, "_LOG_FLOAT": math.log}


@pytest.mark.parametrize("op", sorted(LIBM))
@given(a=st.one_of(st.floats(), st.sampled_from([*SPECIAL, 709.78, 709.79, 709.7827, -745.2])))
def test_libm_uops_are_pythons_or_exit_where_it_raises(op: str, a: float) -> None:
    """math.sin, cos, exp and log bit for bit; an exit wherever Python
    raises (and for exp, from 709.78 on, a little before it overflows)."""
    trace = cached_trace(FLOAT_FUNCTION.format(ops=f"    f1 = {op} f2 exit=out"))
    status, final, stack = run(trace, [a, None, None])
    try:
        expected: object = LIBM[op](a)
    except (ValueError, OverflowError) as error:
        expected = error
    if status == 0:
        assert isinstance(expected, float) and _same(final[2], expected), (a, final[2], expected)
        assert stack == []
    else:
        assert status == 2 and final[2] is None
        assert not isinstance(expected, float) or (op == "_EXP_FLOAT" and a > 709.78), (a, expected)


def powers_with_values_live_across(xs: list[float]) -> object:
    """Values in registers before x ** 1.5 and used after it: float and int
    locals (pinned in registers by the lowering) and temporaries."""
    a, b, c = 0.5, 1.0, 2.0
    i, j = 0, 1
    for x in xs:
        p = a * 2.0 + b
        q = c - a
        r = i + 7
        s = j * 3
        y = x ** 1.5 + x ** -0.5 + math.sin(x) * math.log(x)
        a = (p + y + a) * 0.001
        b = q * 0.5 - y + b * 1e-3
        c += a * 1e-3
        i = (r + i) % 1013
        j = (s + i + j) % 1009
    return a, b, c, i, j


def reads_after_clobbering(instructions: list[Instruction]) -> list[tuple[int, int, str]]:
    """(clobbering uop, reader, register) for each register some path of
    fall-throughs and jumps reads after a uop that clobbers every register
    but its outputs (lower.CLOBBERING), before an instruction writes it.
    Whether pow, at run time, happens to leave that register alone, no
    reader may count on it."""
    found = []
    for start, clobbering in enumerate(instructions):
        if clobbering.name not in CLOBBERING:
            continue
        todo, seen = [(start + 1, frozenset(clobbering.outs))], set()
        while todo:
            at, written = todo.pop()
            if (at, written) in seen or at >= len(instructions):
                continue
            seen.add((at, written))
            here = instructions[at]
            found += [(start, at, register) for register in here.ins if register not in written]
            if at == start:  # around the loop and back
                continue
            written |= frozenset(here.outs)
            if isinstance(here.jump, int):
                todo.append((here.jump, written))
            if here.name != "_JUMP" and not UOPS[here.name].ends_trace:
                todo.append((at + 1, written))
    return found


def _lowered(function: Callable[..., Any], *args: object,
             traced: Callable[..., Any] | None = None) -> list[Any]:
    """The lowerings of the traces of `traced` (default: `function`) that
    calling `function` makes, at threshold 1."""
    jit = JIT(1)
    jit.enable((traced or function).__code__)
    try:
        function(*args)
    finally:
        jit.disable()
    return [location.lowered for location in jit.locations.values() if location.lowered is not None]


def test_values_live_across_a_constant_power_survive_it() -> None:
    xs = [0.25 + k * 0.5 for k in range(400)]
    stats = differential(powers_with_values_live_across, xs)
    assert stats["exits"] <= 2, stats
    lowered = _lowered(powers_with_values_live_across, xs[:50])
    assert any(each.text.count("_POW_FLOAT_CONST") == 2 and "_SIN_FLOAT" in each.text for each in lowered)
    for each in lowered:
        assert not reads_after_clobbering(each.instructions), each.text


def unpacks(rows: list[Any]) -> list[Any]:
    # `for [x, y], a, b, c, d in rows` stores a to d after x and y: a row
    # whose list is not of two items raises there, with a to d as the row
    # before left them. (Five items for four registers: some are evicted
    # before the list's checks, which leave with the frame's old a to d.)
    seen: list[Any] = []
    a = b = c = d = None
    try:
        for [x, y], a, b, c, d in rows:
            seen.append(x * a + y * b - c * d)
    except ValueError:
        seen.append(("bad", a, b, c, d))
    return seen


def test_a_row_that_fails_to_unpack_leaves_the_locals_as_cpython_does() -> None:
    rows: list[Any] = [([k * 0.5, 1.0], float(k), k + 0.25, 2.0, -k * 1.0) for k in range(300)]
    rows[250] = ([1.0], -1.0, -2.0, -3.0, -4.0)
    differential(unpacks, rows)


def _nbody_pairs() -> Any:
    """The lowering of n-body's pair loop (the trace with its one power)."""
    nbody = load("nbody")
    (pairs,) = [each for each in _lowered(nbody.nbody, 30, traced=nbody.advance)
                if each.text.count("_POW_FLOAT_CONST") == 1]
    return pairs


def test_an_early_spill_to_a_home_never_crosses_an_exit() -> None:
    # An exit stub writes the kept locals' homes back to the frame: with a
    # home written before an exit, the frame would get the new value early.
    lowering = _nbody_pairs().lowering
    alloc, ops = lowering.alloc, lowering.rec.ops
    windows = []  # (op evicting, the store, the value) where an early spill is taken
    for at, store in enumerate(ops):
        if store.name != "store_v":
            continue
        (value,) = store.args
        for now in range(value + 1, at):
            alloc.now = now
            if alloc.next_use(value) == at and lowering.early_home(value) is not None:
                assert lowering.early_home(value) == lowering.virtual[store.arg]
                assert all(op.snapshot is None for op in ops[now:at])
                windows.append((now, at, value))
    assert windows
    # The same windows with an exit anywhere in them: no early spill.
    recorded = lowering.rec
    try:
        for now, at, value in windows:
            for where in range(now, at):
                op = ops[where]
                exit_op = Op(op.name, op.kind, op.args, op.arg, Snapshot(0, ()))
                leaving = [*ops[:where], exit_op, *ops[where + 1:]]
                lowering.rec = Recording(recorded.code, recorded.dst, recorded.src, leaving, recorded.slots,
                                         recorded.stored, recorded.constants, recorded.positions)
                alloc.now = now
                assert lowering.early_home(value) is None, (now, where, at)
    finally:
        lowering.rec = recorded


def test_nbody_stores_its_unpacked_lists_with_no_reload() -> None:
    # v1 and m1 (unpacked before x1, y1, z1, whose reads evict them) go
    # straight to their homes (Lowering.early_home), not to temp slots
    # reloaded for the stores.
    pairs = _nbody_pairs()
    homes = set(pairs.lowering.virtual.values())
    names = [(row.name, row.oparg) for row in pairs.instructions if isinstance(row, Instruction)]
    reloaded_to_store = [pair for pair in itertools.pairwise(names)
                         if pair[0][0] == "_RELOAD_INT" and pair[1] == ("_SPILL_INT", pair[1][1])
                         and pair[1][1] in homes]
    assert not reloaded_to_store


def test_nbody_reads_no_register_its_powers_clobber() -> None:
    nbody = load("nbody")
    lowered = _lowered(nbody.nbody, 30, traced=nbody.advance)
    assert any("_POW_FLOAT_CONST" in each.text for each in lowered)
    for each in lowered:
        assert not reads_after_clobbering(each.instructions), each.text


# --- names reused with another type --------------------------------------------

def reuses_underscore(rows: list[Any], n: int) -> float:
    total = 0.0
    for _ in range(n):
        for x, _ in rows:
            total += x
    return total


def test_a_name_reused_with_another_type_in_a_nested_loop() -> None:
    stats = differential(reuses_underscore, [(i * 0.5, "label") for i in range(5)], 400)
    assert stats["native_entries"] <= 8, stats


def test_a_local_stored_before_it_is_read_may_change_type_between_entries() -> None:
    def retyped(rows: list[Any]) -> float:
        total = 0.0
        for row in rows:
            label = None
            for x in row:
                label = x  # a float here; None, or a str, when the loop is entered
                total += label
            label = "done"
        return total

    differential(retyped, [[i * 0.5, 1.0, 2.0] for i in range(300)])


# --- one trace per loop; short loops nested in others ----------------------------

def short_inner(n: int) -> float:
    total = 0.0
    for i in range(n):
        for j in range(3):  # too short to enter from the interpreter, not from the outer trace
            total += i * j * 0.5
    return total


@pytest.mark.parametrize("threshold", [1, 1000])
def test_a_short_nested_loop_is_kept_for_its_enclosing_loops_trace(threshold: int) -> None:
    expected = short_inner(20_000)
    jit = JIT(threshold)
    jit.enable(short_inner.__code__)
    try:
        assert short_inner(20_000) == expected
    finally:
        jit.disable()
    assert len(traced_loops(jit)) == 2, jit.stats.aborts
    assert "the loop runs too few iterations per entry" not in jit.stats.aborts


def test_a_short_nested_loop_kept_for_its_enclosing_trace_is_given_up_when_that_trace_goes() -> None:
    """Judged short while the loop around it had a trace, the nested loop's
    trace was kept for good; when the enclosing trace was discarded later
    (one that keeps leaving early, as fannkuch's), the interpreter entered
    the nested trace for two iterations at a time, 120,000 times a call."""
    expected = short_inner(20_000)
    jit = JIT(1000)
    jit.enable(short_inner.__code__)
    try:
        assert short_inner(20_000) == expected
        by_src = {src: location for (_, src), location in jit.locations.items() if location.trace is not None}
        assert len(by_src) == 2
        (inner_src, inner), (outer_src, outer) = sorted(by_src.items())  # the inner backedge comes first
        inner["judge_at"] = inner["entries"]  # judged now, while the enclosing loop has its trace:
        jit.judge(inner, inner_src)
        assert inner.trace is not None  # kept, for the enclosing trace runs it
        outer.recordings = MAX_RECORDINGS
        jit.discard(outer, outer_src)  # that trace goes
        before = jit.stats.native_entries
        assert short_inner(20_000) == expected  # the interpreter enters the nested trace 20,000 times, or 256
    finally:
        jit.disable()
    assert inner.trace is None
    assert jit.stats.aborts["the loop runs too few iterations per entry"] == 1
    assert jit.stats.native_entries - before == ENTRIES_BEFORE_JUDGING


def two_backedges(n: int) -> int:
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += i
            continue
        total -= 1
    return total


def test_a_loop_with_two_backedges_has_one_trace() -> None:
    stats = differential(two_backedges, 3000)
    assert stats["traces"] == 1, stats


# --- the other ways out of a nested loop -----------------------------------------

def escape_times(points: list[Any], limit: int) -> tuple[int, int]:
    inside = total = 0
    for c in points:
        z = 0.0
        for _ in range(limit):
            z = z * z + c
            if z > 2.0 or z < -2.0:
                break
        else:
            inside += 1
            continue
        total += 1
    return inside, total


def alternating(n: int) -> list[float]:
    return [(-1.5 + 0.5 * ((i * 7) % 5)) for i in range(n)]


@pytest.mark.parametrize("threshold", [1, 1000])
def test_a_nested_loop_leaving_by_break_or_by_running_out(threshold: int) -> None:
    """The nested trace's two ways out of its loop: the outer trace goes on
    after the one it recorded, and through a bridge after the other."""
    points = alternating(6000)
    expected = escape_times(points, 30)
    jit = JIT(threshold)
    jit.enable(escape_times.__code__)
    try:
        assert escape_times(points, 30) == expected
    finally:
        jit.disable()
    assert jit.stats.bridges >= 1
    # Once entered, the outer loop's trace runs to the end (after 16 exits
    # at most, which make the other way out hot).
    outer = min((location for location in jit.locations.values() if location.lowered is not None),
                key=lambda location: location.lowered.lowering.rec.dst)  # type: ignore[union-attr]
    assert outer["entries"] <= 20, jit.stats.as_dict()


def test_a_nested_loops_other_exit_whose_bridge_cannot_be_recorded() -> None:
    def unsupported_after(points: list[float], limit: int) -> tuple[int, dict[int, int]]:
        inside, seen = 0, {}
        for k, c in enumerate(points):
            z = 0.0
            for _ in range(limit):
                z = z * z + c
                if z > 2.0:
                    break
            else:
                inside += 1
                continue
            seen[k] = 1  # not traced: the outer trace leaves here
        return inside, seen

    stats = differential(unsupported_after, alternating(3000), 20)
    assert stats["traces"] >= 2


def test_the_other_ways_out_leak_nothing() -> None:
    """The alternatives' exits and bridges hand the values on the frame's
    stack over exactly once (the inner loop's iterator, the comparison's
    operands): memory does not grow with the iterations."""
    import gc

    points = alternating(3000)
    jit = JIT(1)
    jit.enable(escape_times.__code__)
    try:
        escape_times(points, 30)  # recorded, bridged
        gc.collect()
        blocks = sys.getallocatedblocks()
        for _ in range(5):
            escape_times(points, 30)
        gc.collect()
        grown = sys.getallocatedblocks() - blocks
    finally:
        jit.disable()
    assert jit.stats.bridges >= 1
    assert grown < 100, grown


# --- calls from a trace to functions with loops ---------------------------------

def inner_work(xs: list[float]) -> float:
    total = 0.0
    for x in xs:
        total += x * x
    return total


def calls_a_looping_function(xs: list[float], n: int) -> float:
    grand = 0.0
    for _ in range(n):
        grand += inner_work(xs)
    return grand


def test_a_function_called_from_a_trace_runs_its_loops_natively() -> None:
    xs = [i * 0.25 for i in range(200)]
    expected = calls_a_looping_function(xs, 50)
    jit = JIT(1)
    jit.enable(calls_a_looping_function.__code__)
    jit.enable(inner_work.__code__)
    try:
        assert calls_a_looping_function(xs, 50) == expected
    finally:
        jit.disable()
    inner = next(location for location in jit.locations.values() if location.lowered is not None
                 and location.lowered.lowering.rec.code is inner_work.__code__)
    assert inner["iterations"] >= 49 * 199, "the callee's loop ran in the interpreter"


def fails_inside(xs: list[Any]) -> float:
    total = 0.0
    for x in xs:
        total += 1.0 / x
    return total


def calls_one_that_fails(rows: list[list[Any]]) -> float:
    grand = 0.0
    for row in rows:
        grand += fails_inside(row)
    return grand


def test_a_function_called_from_a_trace_raising_in_its_own_trace() -> None:
    """The callee's trace exits at the division by zero, the interpreter
    raises it in the callee, and the caller's trace re-raises it at its
    CALL: the same traceback as CPython's."""
    rows = [[1.0 + i, 2.0, 4.0] * 10 for i in range(100)]
    rows[70][25] = 0.0
    expected = full_outcome(calls_one_that_fails, rows)
    jit = JIT(1)
    jit.enable(calls_one_that_fails.__code__)
    jit.enable(fails_inside.__code__)
    try:
        assert full_outcome(calls_one_that_fails, rows) == expected
    finally:
        jit.disable()
    assert expected[0] == "raised" and jit.stats.traces >= 2


RECURSION = """
import sys
sys.setrecursionlimit(100_000)

def child(depth, i):
    return walk(depth - 1) if i == 1 and depth > 0 else 1

def walk(depth):
    total = 0
    for i in range(2):
        total += child(depth, i)
    return total

for _ in range(3):
    walk(1)  # the loop's trace, before the recursion
print(walk(8000))
"""


def test_deep_recursion_through_a_traced_loop(tmp_path: Path) -> None:
    """A call from a trace lets the callee's loops enter their traces only
    near the bottom of the C stack: deeper, the recursion goes on in the
    interpreter, as deep as without the JIT."""
    script = tmp_path / "recursion.py"
    script.write_text(RECURSION)
    plain, jitted = python_and_copyjit(str(script), "--threshold", "1")
    assert jitted == plain and plain[1] == "8002\n"


# --- the kernels -------------------------------------------------------------

# Aborts that say nothing about a kernel's hot loops: recording met the
# loop's last iteration, or an enclosing loop got hot before its nested one.
TRANSIENT = {"the loop ended while recording", "an inner loop without a trace (yet)"}


def load(name: str, folder: str = "benchmarks") -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def line_of(function: Callable[..., Any], text: str) -> int:
    """The line of `function` whose source contains `text`."""
    lines, first = __import__("inspect").getsourcelines(function)
    matches = [first + n for n, line in enumerate(lines) if text in line]
    assert len(matches) == 1, (text, matches)
    return matches[0]


def run_kernel(module: types.ModuleType, function: str, argument: int,
               threshold: int) -> tuple[object, JIT]:
    """The kernel's result under a JIT that watches its module's functions."""
    jit = JIT(threshold)
    for value in vars(module).values():
        if isinstance(value, types.FunctionType):
            jit.enable(value.__code__)
    try:
        return getattr(module, function)(argument), jit
    finally:
        jit.disable()


# name: (function, size, hot loops at threshold 1, and those hot at the
# default threshold too at that size, as (function, text of the loop's line)).
KERNELS: dict[str, tuple[str, int, list[tuple[str, str]], list[tuple[str, str]]]] = {
    "nbody": ("nbody", 300, [("advance", "for _ in range(steps)")],
              [("advance", "in pairs:"), ("advance", "in bodies:")]),
    "spectral_norm": ("spectral_norm", 60, [],
                      [(owner, f"for {i} in range(n)") for owner in ("times_A", "times_At") for i in "ij"]),
    "mandelbrot": ("mandelbrot", 60, [("mandelbrot", "for y in range(size)")],
                   [("mandelbrot", "for _ in range(limit)"), ("mandelbrot", "for x in range(size)")]),
}


@pytest.mark.parametrize("threshold", [1, 1000])
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_same_result_with_its_hot_loops_native(name: str, threshold: int) -> None:
    function, size, at_first, always = KERNELS[name]
    module = load(name)
    expected = getattr(module, function)(size)
    got, jit = run_kernel(module, function, size, threshold)
    assert got == expected
    stats = jit.stats.as_dict()
    assert stats["traces"] >= 1 and stats["native_entries"] >= 1
    hot = always + at_first if threshold == 1 else always
    wanted = {(owner, line_of(getattr(module, owner), text)) for owner, text in hot}
    assert wanted <= traced_loops(jit), stats["aborts"]
    # (n-body's make_system builds tuples and slices: not traced, and not hot.)
    allowed = TRANSIENT | ({"unsupported instruction BUILD_TUPLE", "unsupported instruction BINARY_SLICE"}
                           if name == "nbody" else {"a for loop over a zip"})
    assert set(stats["aborts"]) <= allowed, stats["aborts"]


def test_kernel_loops_run_natively_to_the_end() -> None:
    """Once traced, the kernels' loops stay native: few entries, few exits."""
    for name, argument, most in (("nbody", 2000, 20), ("mandelbrot", 120, 80)):
        function = KERNELS[name][0]
        _, jit = run_kernel(load(name), function, argument, 1)
        stats = jit.stats
        assert stats.native_entries <= most and stats.exits <= most, (name, stats.as_dict())


@pytest.mark.parametrize("threshold", ["1", "1000"])
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_script_output_is_pythons(tmp_path: Path, name: str, threshold: str) -> None:
    stats_file = tmp_path / "stats.json"
    plain, jitted = python_and_copyjit(str(ROOT / "benchmarks" / f"{name}.py"), "--threshold", threshold,
                                       "--stats-json", str(stats_file), args=(str(KERNELS[name][1]),))
    assert jitted == plain and plain[0] == 0 and plain[1].strip()
    stats = json.loads(stats_file.read_text())
    assert stats["traces"] >= 1 and stats["native_entries"] >= 1
