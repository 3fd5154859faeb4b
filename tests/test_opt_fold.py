"""Every folding rule against Python's own arithmetic (hypothesis)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copyjit.opt.fold import FLOAT_OPS, IDENTITIES, INT_OPS, evaluate, fold
from copyjit.opt.text import parse
from copyjit.trace.ir import INT64

int64 = st.integers(*INT64)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, math.nan, math.inf])


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def python(name: str, a: int | float, b: int | float) -> object:
    """Python's answer, or the exception it raises."""
    table = INT_OPS if isinstance(a, int) and isinstance(b, int) else FLOAT_OPS
    if name == "lshift" and b >= 64:  # not computed: a << 10**11 takes seconds
        return OverflowError if a else 0
    try:
        return table[name](a, b)  # type: ignore[arg-type]
    except (ZeroDivisionError, ValueError, OverflowError) as error:
        return type(error)


@pytest.mark.parametrize("rule", sorted(IDENTITIES, key=repr), ids=repr)
@settings(max_examples=300)
@given(x_int=int64, x_float=floats)
def test_identity_holds_for_every_operand(rule: tuple[str, str, str, int | float], x_int: int,
                                          x_float: float) -> None:
    name, kind, side, constant = rule
    x = x_int if kind == "i" else x_float
    result = python(name, x, constant) if side == "right" else python(name, constant, x)
    if kind == "i":
        assert result == x and type(result) is int
    else:
        assert isinstance(result, float)
        assert bits(result) == bits(x) or (math.isnan(result) and math.isnan(x))


@pytest.mark.parametrize("name", sorted(INT_OPS))
@settings(max_examples=300)
@given(a=int64 | st.integers(-70, 70), b=int64 | st.integers(-70, 70))
def test_int_folding_gives_python_or_declines(name: str, a: int, b: int) -> None:
    folded = evaluate(name, "i", a, b)
    expected = python(name, a, b)
    if folded is None:  # declined: Python raises, or the result leaves int64, or a shift >= 64
        assert not isinstance(expected, int) or not INT64[0] <= expected <= INT64[1] or \
            (name in ("lshift", "rshift") and not 0 <= b < 64)
    else:
        assert folded == expected and type(folded) is int


@pytest.mark.parametrize("name", sorted(FLOAT_OPS))
@settings(max_examples=300)
@given(a=floats, b=floats)
def test_float_folding_gives_python_or_declines(name: str, a: float, b: float) -> None:
    folded = evaluate(name, "f", a, b)
    expected = python(name, a, b)
    if folded is None:
        assert expected is ZeroDivisionError
    else:
        assert isinstance(expected, float) and isinstance(folded, float)
        assert bits(folded) == bits(expected) or (math.isnan(folded) and math.isnan(expected))


@settings(max_examples=200)
@given(st.sampled_from(sorted(INT_OPS)), int64, int64)
def test_a_folded_trace_computes_what_python_does(name: str, a: int, b: int) -> None:
    rec = fold(parse(f"""trace dst=0 src=0 slots= stored=
a = const.i() {a}
b = const.i() {b}
c = binary.i(a, b) {name!r} | exit @2
"""))
    last = rec.ops[-1]
    expected = python(name, a, b)
    if last.name == "const":
        assert last.arg == expected
    else:  # left for the machine op (which exits): Python raises or leaves int64
        assert last.name == "binary"
        assert not isinstance(expected, int) or not INT64[0] <= expected <= INT64[1] or not 0 <= b < 64
