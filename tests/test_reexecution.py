"""Uops for traces on live frames: failures exit with the inputs in place, so
the interpreter re-executes the instruction and raises there itself."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import NB, cached_trace, run

BINARY = """
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _BINARY_OP_OR_EXIT oparg=@op exit=fail
    _STORE_FAST oparg=2
    _EXIT_TRACE
fail:
    _EXIT_TRACE oparg=1
"""


@pytest.mark.parametrize("op", ["//", "%", "/", "**", "<<"])
@given(a=st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=False)),
       b=st.one_of(st.integers(-3, 3), st.floats(-2, 2)))
def test_failures_exit_with_inputs_in_place_and_no_exception(op: str, a: object, b: object) -> None:
    if op in ("**", "<<") and (isinstance(b, float) or abs(a) > 10**6):  # type: ignore[arg-type]
        return  # keep the results small
    trace = cached_trace(BINARY, op=NB[op])
    try:
        expected = eval(f"a {op} b")
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        expected = None
    status, final, stack = run(trace, [a, b, None])
    if expected is None:
        assert (status, final, stack) == (1, [a, b, None], [a, b])
        assert sys.exc_info() == (None, None, None)
    else:
        assert (status, stack) == (0, [])
        assert final[2] == expected or final[2] != final[2]


def test_compare_failure_exits_with_inputs_in_place() -> None:
    trace = cached_trace("""
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _COMPARE_OP_OR_EXIT oparg=0 exit=fail
    _STORE_FAST oparg=0
    _EXIT_TRACE
fail:
    _EXIT_TRACE oparg=1
""")
    assert run(trace, [1, 2.5]) == (0, [True, 2.5], [])
    assert run(trace, [1, "x"]) == (1, [1, "x"], [1, "x"])


BRANCH = """
    _LOAD_FAST oparg=0
    _GUARD_IS_{which}_POP exit=other_way
    _EXIT_TRACE oparg=0
other_way:
    _EXIT_TRACE oparg=1
"""


@pytest.mark.parametrize("which, value, status", [
    ("TRUE", True, 0), ("TRUE", False, 1), ("TRUE", 1, 1),
    ("FALSE", False, 0), ("FALSE", True, 1), ("FALSE", None, 1),
])
def test_branch_guards(which: str, value: object, status: int) -> None:
    left = [] if status == 0 else [value]  # an exit leaves the condition for the interpreter
    assert run(cached_trace(BRANCH.format(which=which)), [value]) == (status, [value], left)


RANGE_SUM = """
    # acc = sum of what the iterator in local 0 yields, boxed or unboxed
    _LOAD_FAST oparg=0
    i1 = _LOAD_INT_CONST operand0=0
loop:
    {next}
    i1 = _ADD_INT i1, i0 exit=overflow
    _JUMP jump=loop
done:
    _POP_TOP
    _BOX_INT i1 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
overflow:
    _EXIT_TRACE oparg=2
error:
    _ERROR_TRACE
"""
UNBOXED = "i0 = _FOR_ITER_RANGE_UNBOXED exit=done"
BOXED = "_FOR_ITER_RANGE exit=done\n    i0 = _UNBOX_INT exit=overflow"


@pytest.mark.parametrize("next_value", [UNBOXED, BOXED])
@given(start=st.integers(-1000, 1000), stop=st.integers(-1000, 1000),
       step=st.integers(-7, 7).filter(bool), used=st.integers(0, 3))
def test_range_iteration(next_value: str, start: int, stop: int, step: int, used: int) -> None:
    iterator = iter(range(start, stop, step))
    consumed = [next(iterator, None) for _ in range(used)]
    rest = list(range(start, stop, step))[len([c for c in consumed if c is not None]):]
    status, final, stack = run(cached_trace(RANGE_SUM.format(next=next_value)), [iterator, None])
    assert (status, final[1], stack) == (0, sum(rest), [])
    assert next(iterator, "exhausted") == "exhausted"


def test_range_iteration_exits_for_other_iterators() -> None:
    trace = cached_trace(RANGE_SUM.format(next=UNBOXED))
    iterator = iter([1, 2, 3])
    status, final, stack = run(trace, [iterator, None])
    # "done" pops the iterator: the interpreter would see FOR_ITER's exit.
    assert (status, final[1], stack) == (0, 0, [])
    assert list(iterator) == [1, 2, 3]  # untouched


def test_range_iterators_near_the_end_of_long() -> None:
    top = 2**63 - 1
    trace = cached_trace(RANGE_SUM.format(next=UNBOXED))
    fast = type(iter(range(1)))
    # Values that fit, whose sum does not: the trace leaves it to the interpreter.
    iterator = iter(range(top - 2, top))
    assert type(iterator) is fast
    assert run(trace, [iterator, None])[0] == 2
    # Where a step would leave a C long CPython uses another iterator: not ours.
    iterator = iter(range(top - 1, top, 5))
    assert type(iterator) is not fast
    iterator = iter(range(top - 1, top + 2))
    assert type(iterator) is not fast
    assert run(trace, [iterator, None])[:2] == (0, [iterator, 0])
    assert list(iterator) == [top - 1, top, top + 1]
