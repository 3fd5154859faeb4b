"""Chains of boxed uops, run natively, against CPython's own arithmetic."""

from __future__ import annotations

import operator
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import NB, cached_trace, run

BINARY = """
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _BINARY_OP oparg=@op error=error
    _STORE_FAST oparg=2
    _EXIT_TRACE
error:
    _ERROR_TRACE
"""

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
       "%": operator.mod, "/": operator.truediv, "**": operator.pow, "&": operator.and_,
       "<<": operator.lshift}

numbers = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans())


def _python(op: str, a: object, b: object) -> tuple[str, object]:
    try:
        return "ok", OPS[op](a, b)  # type: ignore[operator]
    except Exception as e:
        return type(e).__name__, str(e)


def _native(trace, a: object, b: object) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        status, final, stack = run(trace, [a, b, None])
    except Exception as e:
        return type(e).__name__, str(e)
    assert status == 0 and stack == []
    return "ok", final[2]


@pytest.mark.parametrize("op", ["+", "-", "*", "//", "%", "/"])
@given(a=numbers, b=numbers)
def test_binary_op_matches_python(op: str, a: object, b: object) -> None:
    trace = cached_trace(BINARY, op=NB[op])
    expected, got = _python(op, a, b), _native(trace, a, b)
    if expected[0] == "ok" and isinstance(expected[1], float) and expected[1] != expected[1]:
        assert got[0] == "ok" and got[1] != got[1]
    else:
        assert got == expected
        assert type(got[1]) is type(expected[1])


def test_big_int_results_are_exact(compile_trace) -> None:
    trace = compile_trace(BINARY, op=NB["**"])
    assert run(trace, [3, 100, None])[1][2] == 3**100
    trace = compile_trace(BINARY, op=NB["*"])
    assert run(trace, [2**63, 2**63, None])[1][2] == 2**126


def test_division_by_zero_raises_and_releases_everything(compile_trace) -> None:
    trace = compile_trace(BINARY, op=NB["/"])
    numerator = 10**30  # not cached or immortal: its refcount is visible
    before = sys.getrefcount(numerator)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        run(trace, [numerator, 0, None])
    assert sys.getrefcount(numerator) == before


COMPARE_AND_BRANCH = """
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _COMPARE_OP oparg=@cmp error=error
    _TO_BOOL error=error
    _POP_JUMP_IF_TRUE jump=yes
    _EXIT_TRACE oparg=10
yes:
    _EXIT_TRACE oparg=11
error:
    _ERROR_TRACE
"""


@pytest.mark.parametrize("cmp, op", list(enumerate([operator.lt, operator.le, operator.eq,
                                                    operator.ne, operator.gt, operator.ge])))
@given(a=numbers, b=numbers)
def test_boxed_compare_and_branch(cmp: int, op, a: object, b: object) -> None:  # type: ignore[no-untyped-def]
    trace = cached_trace(COMPARE_AND_BRANCH, cmp=cmp)
    assert run(trace, [a, b])[0] == (11 if op(a, b) else 10)


def test_comparison_error_propagates(compile_trace) -> None:
    trace = compile_trace(COMPARE_AND_BRANCH, cmp=0)
    with pytest.raises(TypeError, match="'<' not supported"):
        run(trace, [1, "x"])


BOXED_LOOP = """
    # i = 0; acc = 0; while i < n: acc = acc + i * step; i = i + 1
loop:
    _LOAD_FAST oparg=1
    _LOAD_FAST oparg=0
    _COMPARE_OP oparg=0 error=error
    _POP_JUMP_IF_FALSE jump=done
    _LOAD_FAST oparg=2
    _LOAD_FAST oparg=1
    _LOAD_FAST oparg=3
    _BINARY_OP oparg=@mul error=error
    _BINARY_OP oparg=@add error=error
    _STORE_FAST oparg=2
    _LOAD_FAST oparg=1
    _LOAD_CONST operand0=@one
    _BINARY_OP oparg=@add error=error
    _STORE_FAST oparg=1
    _JUMP jump=loop
done:
    _EXIT_TRACE
error:
    _ERROR_TRACE
"""


@pytest.mark.parametrize("n, step", [(0, 1), (1, 3), (1000, 7), (1000, 2**64), (100, 0.25)])
def test_boxed_counted_loop(compile_trace, n: int, step: object) -> None:
    one = 1
    trace = compile_trace(BOXED_LOOP, mul=NB["*"], add=NB["+"], one=id(one))
    status, final, stack = run(trace, [n, 0, 0, step])
    assert (status, stack) == (0, [])
    assert final == [n, n, sum(i * step for i in range(n)), step]  # type: ignore[operator]
