"""Unboxed ints and floats in registers: every variant, exact Python semantics."""

from __future__ import annotations

import itertools
import math
import operator
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copyjit import demo
from copyjit.backend.asm import float_bits
from copyjit.uops import REGISTERS, UOPS
from tests.conftest import cached_trace, run

INT64 = st.integers(-(2**63), 2**63 - 1)
ANY_INT = st.one_of(INT64, st.integers(), st.sampled_from([2**63, -(2**63) - 1, 2**64]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
DISTINCT = {"i": [11, -7, 5, 3], "f": [1.5, -2.25, 8.0, 0.125]}  # one per register

INT_OPS = {"_ADD_INT": operator.add, "_SUB_INT": operator.sub, "_MUL_INT": operator.mul}
FLOAT_OPS = {"_ADD_FLOAT": operator.add, "_SUB_FLOAT": operator.sub,
             "_MUL_FLOAT": operator.mul, "_DIV_FLOAT": operator.truediv}
CONDITIONS = {"LT": operator.lt, "LE": operator.le, "EQ": operator.eq,
              "NE": operator.ne, "GT": operator.gt, "GE": operator.ge}


def _load_all(kind: str) -> str:
    """Give every register of `kind` a different value."""
    if kind == "i":
        return "".join(f"    {r} = _LOAD_INT_CONST operand0={v}\n"
                       for r, v in zip(REGISTERS["i"], DISTINCT["i"], strict=False))
    return "".join(f"    {r} = _LOAD_FLOAT_CONST operand0={v!r}\n"
                   for r, v in zip(REGISTERS["f"], DISTINCT["f"], strict=False))


def _box(kind: str) -> str:
    return "_BOX_INT" if kind == "i" else "_BOX_FLOAT"


@pytest.mark.parametrize("name", [*INT_OPS, *FLOAT_OPS])
def test_every_register_variant_of_binary_ops(compile_trace, name: str) -> None:
    kind = UOPS[name].reg_in[0].kind
    python = {**INT_OPS, **FLOAT_OPS}[name]
    values = dict(zip(REGISTERS[kind], DISTINCT[kind], strict=False))
    for a, b, out in itertools.product(REGISTERS[kind], repeat=3):
        trace = compile_trace(f"""
{_load_all(kind)}
    {out} = {name} {a}, {b} exit=bail
    {_box(kind)} {out} error=error
    _STORE_FAST oparg=0
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
error:
    _ERROR_TRACE
""")
        status, final, _ = run(trace, [None])
        assert (status, final[0]) == (0, python(values[a], values[b])), (a, b, out)
        trace.free()


@pytest.mark.parametrize("kind, cond", list(itertools.product("if", CONDITIONS)))
def test_every_register_variant_of_branches(compile_trace, kind: str, cond: str) -> None:
    name = f"_JUMP_IF_{'INT' if kind == 'i' else 'FLOAT'}_{cond}"
    values = dict(zip(REGISTERS[kind], DISTINCT[kind], strict=False))
    for a, b in itertools.product(REGISTERS[kind], repeat=2):
        trace = compile_trace(f"""
{_load_all(kind)}
    {name} {a}, {b} jump=taken
    _EXIT_TRACE oparg=0
taken:
    _EXIT_TRACE oparg=1
""")
        assert run(trace, [])[0] == int(CONDITIONS[cond](values[a], values[b])), (a, b)
        trace.free()


INT_BINARY = """
    _LOAD_FAST oparg=0
    i1 = _UNBOX_INT exit=first_not_unboxable
    _LOAD_FAST oparg=1
    i3 = _UNBOX_INT exit=second_not_unboxable
    i0 = {op} i1, i3 exit=overflow
    _BOX_INT i0 error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
first_not_unboxable:
    _EXIT_TRACE oparg=1
second_not_unboxable:
    _EXIT_TRACE oparg=3
overflow:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""


def _fits(value: int) -> bool:
    return -(2**63) <= value < 2**63


@pytest.mark.parametrize("name", INT_OPS)
@given(a=ANY_INT, b=ANY_INT)
def test_int_ops_exit_exactly_when_python_needs_a_big_int(name: str, a: int, b: int) -> None:
    status, final, stack = run(cached_trace(INT_BINARY.format(op=name)), [a, b, None])
    expected = INT_OPS[name](a, b)
    if not _fits(a):  # guard before effect: the value is still on the stack
        assert (status, stack, final) == (1, [a], [a, b, None])
    elif not _fits(b):
        assert (status, stack, final) == (3, [b], [a, b, None])
    elif not _fits(expected):
        assert (status, stack, final) == (2, [], [a, b, None])
    else:
        assert (status, stack, final) == (0, [], [a, b, expected])


def test_unbox_int_refuses_non_ints() -> None:
    trace = cached_trace(INT_BINARY.format(op="_ADD_INT"))
    for value in (True, 1.0, "1"):
        assert run(trace, [value, 1, None])[:3] == (1, [value, 1, None], [value])


@given(a=INT64)
def test_neg_and_int_to_float(a: int) -> None:
    trace = cached_trace("""
    _LOAD_FAST oparg=0
    i2 = _UNBOX_INT exit=bail
    i1 = _NEG_INT i2 exit=overflow
    f3 = _INT_TO_FLOAT i2
    _BOX_INT i1 error=error
    _STORE_FAST oparg=1
    _BOX_FLOAT f3 error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
overflow:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
""")
    status, final, _ = run(trace, [a, None, None])
    if a == -(2**63):
        assert (status, final) == (2, [a, None, None])
    else:
        assert (status, final) == (0, [a, -a, float(a)])


FLOAT_BINARY = """
    _LOAD_FAST oparg=0
    f2 = _UNBOX_FLOAT exit=bail
    _LOAD_FAST oparg=1
    f0 = _UNBOX_FLOAT exit=bail
    f1 = {op} f2, f0 exit=zero
    _BOX_FLOAT f1 error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
zero:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""


def _same_float(x: float, y: float) -> bool:
    return struct.pack("<d", x) == struct.pack("<d", y) or (math.isnan(x) and math.isnan(y))


@pytest.mark.parametrize("name", FLOAT_OPS)
@given(a=FLOATS, b=FLOATS)
def test_float_ops_match_python(name: str, a: float, b: float) -> None:
    status, final, stack = run(cached_trace(FLOAT_BINARY.format(op=name)), [a, b, None])
    if name == "_DIV_FLOAT" and b == 0.0:  # Python raises ZeroDivisionError: leave it to it
        assert (status, final[2]) == (2, None)
        return
    assert (status, stack) == (0, [])
    assert _same_float(final[2], FLOAT_OPS[name](a, b))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind, cond", list(itertools.product("if", CONDITIONS)))
@given(data=st.data())
def test_compare_and_branch_matches_python(kind: str, cond: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(INT64 if kind == "i" else FLOATS, min_size=2, max_size=2))
    unbox = "_UNBOX_INT" if kind == "i" else "_UNBOX_FLOAT"
    trace = cached_trace(f"""
    _LOAD_FAST oparg=0
    {kind}0 = {unbox} exit=bail
    _LOAD_FAST oparg=1
    {kind}1 = {unbox} exit=bail
    _JUMP_IF_{'INT' if kind == 'i' else 'FLOAT'}_{cond} {kind}0, {kind}1 jump=taken
    _EXIT_TRACE oparg=10
taken:
    _EXIT_TRACE oparg=11
bail:
    _EXIT_TRACE oparg=1
""")
    assert run(trace, values)[0] == (11 if CONDITIONS[cond](*values) else 10)


def test_spill_and_reload_keep_values(compile_trace) -> None:
    trace = compile_trace(f"""
    i0 = _LOAD_INT_CONST operand0=-123456789012
    f0 = _LOAD_FLOAT_CONST operand0={float_bits(-0.0)}
    _SPILL_INT i0 oparg=63
    _SPILL_FLOAT f0 oparg=0
    i0 = _LOAD_INT_CONST operand0=0
    f0 = _LOAD_FLOAT_CONST operand0=1.0
    i3 = _RELOAD_INT oparg=63
    f2 = _RELOAD_FLOAT oparg=0
    _BOX_INT i3 error=error
    _STORE_FAST oparg=0
    _BOX_FLOAT f2 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
error:
    _ERROR_TRACE
""")
    status, final, _ = run(trace, [None, None])
    assert status == 0 and final[0] == -123456789012
    assert math.copysign(1.0, final[1]) == -1.0 and final[1] == 0.0


SUM_RANGE = """
    # acc = sum(range(n)) with i, n, acc unboxed
    _LOAD_FAST oparg=0
    i1 = _UNBOX_INT exit=bail
    i0 = _LOAD_INT_CONST operand0=0
    i2 = _LOAD_INT_CONST operand0=0
    i3 = _LOAD_INT_CONST operand0=1
    _JUMP_IF_INT_GE i0, i1 jump=done
loop:
    _CHECK_EVAL_BREAKER exit=bail
    i2 = _ADD_INT i2, i0 exit=overflow
    i0 = _ADD_INT i0, i3 exit=overflow
    _JUMP_IF_INT_LT i0, i1 jump=loop
done:
    _BOX_INT i2 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
overflow:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""


@pytest.mark.parametrize("n", [-5, 0, 1, 2, 1000, 1_000_000])
def test_unboxed_counted_loop(compile_trace, n: int) -> None:
    status, final, _ = run(compile_trace(SUM_RANGE), [n, None])
    assert (status, final) == (0, [n, sum(range(n))])


def test_unboxed_counted_loop_overflow_exits(compile_trace) -> None:
    start = "i2 = _LOAD_INT_CONST operand0=0"
    near_max = SUM_RANGE.replace(start, f"i2 = _LOAD_INT_CONST operand0={2**63 - 10}")
    trace = compile_trace(near_max)
    assert run(trace, [100, None])[:2] == (2, [100, None])


@pytest.mark.parametrize("n, start", [(0, 0.0), (10, 1.25), (100_000, -3.0)])
def test_unboxed_float_loop_of_the_demo(compile_trace, n: int, start: float) -> None:
    expected = start
    for i in range(n):
        expected += i * 0.5
    assert run(compile_trace(demo.TRACE), [n, start])[:2] == (0, [n, expected])


FLOOR = """
    _LOAD_FAST oparg=0
    i0 = _UNBOX_INT exit=bail
    _LOAD_FAST oparg=1
    i1 = _UNBOX_INT exit=bail
    i2 = {op} i0, i1 exit=python_raises_or_grows
    _BOX_INT i2 error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
python_raises_or_grows:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""


@pytest.mark.parametrize("name, python", [("_FLOORDIV_INT", operator.floordiv), ("_MOD_INT", operator.mod)])
@given(a=st.one_of(INT64, st.sampled_from([-(2**63), -7, 7, 0])), b=st.one_of(INT64, st.integers(-9, 9)))
def test_floor_division_matches_python(name: str, python, a: int, b: int) -> None:  # type: ignore[no-untyped-def]
    status, final, _ = run(cached_trace(FLOOR.format(op=name)), [a, b, None])
    if b == 0 or not _fits(python(a, b)):
        assert (status, final[2]) == (2, None)
    else:
        assert (status, final[2]) == (0, python(a, b))
