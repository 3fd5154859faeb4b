"""Constant folding and algebraic simplification, as data.

Each rule is checked against Python's own arithmetic by
tests/test_opt_fold.py (hypothesis, every int64 and float, NaNs and
signed zeros included). Folding happens only where the machine op would
give Python's answer: an int result outside int64, a division by zero or a
negative shift count stays in the trace (it exits there, and the
interpreter gives Python's answer or raises).
"""

from __future__ import annotations

import math
import operator

from copyjit.opt.rewrite import rewrite
from copyjit.trace.ir import INT64, Op, Recording

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

# binary op name -> how Python computes it, for ints and for floats.
INT_OPS: Final[dict[str, Callable[[int, int], int]]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
    "mod": operator.mod, "and": operator.and_, "or": operator.or_, "xor": operator.xor,
    "lshift": operator.lshift, "rshift": operator.rshift,
}
FLOAT_OPS: Final[dict[str, Callable[[float, float], float]]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
}

# (op, kind, side, constant) -> what `x op c` (side "right") or `c op x`
# (side "left") is: "x", the other operand unchanged. Only identities that
# hold for every value of x, -0.0 and NaN included (x + 0.0 is not x when
# x is -0.0; x * 0.0 is not 0.0 when x is negative, infinite or NaN).
IDENTITIES: Final[dict[tuple[str, str, str, int | float], str]] = {
    ("add", "i", "right", 0): "x", ("add", "i", "left", 0): "x",
    ("sub", "i", "right", 0): "x",
    ("mul", "i", "right", 1): "x", ("mul", "i", "left", 1): "x",
    ("floordiv", "i", "right", 1): "x",
    ("or", "i", "right", 0): "x", ("or", "i", "left", 0): "x",
    ("xor", "i", "right", 0): "x", ("xor", "i", "left", 0): "x",
    ("and", "i", "right", -1): "x", ("and", "i", "left", -1): "x",
    ("lshift", "i", "right", 0): "x", ("rshift", "i", "right", 0): "x",
    ("add", "f", "right", -0.0): "x", ("add", "f", "left", -0.0): "x",
    ("sub", "f", "right", 0.0): "x",
    ("mul", "f", "right", 1.0): "x", ("mul", "f", "left", 1.0): "x",
    ("truediv", "f", "right", 1.0): "x",
}


def evaluate(name: str, kind: str, a: int | float, b: int | float) -> int | float | None:
    """Python's result of `a name b`, if the machine op gives it; else None."""
    try:
        if kind == "i":
            assert isinstance(a, int) and isinstance(b, int)
            if name in ("lshift", "rshift") and not 0 <= b < 64:
                return None
            result = INT_OPS[name](a, b)
            return result if INT64[0] <= result <= INT64[1] else None
        return FLOAT_OPS[name](a, b)
    except (KeyError, ZeroDivisionError, OverflowError):
        return None


def identity(name: str, kind: str, side: str, constant: int | float) -> bool:
    """Is `x name constant` (or `constant name x`) always x?"""
    for (rule_name, rule_kind, rule_side, value), _ in IDENTITIES.items():
        if (rule_name, rule_kind, rule_side) == (name, kind, side) and _same(value, constant):
            return True
    return False


def _same(a: int | float, b: int | float) -> bool:
    """Equal and of the same sign bit (0.0 and -0.0 differ here)."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b) and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def fold(rec: Recording) -> Recording:
    ops = list(rec.ops)
    constant: dict[int, int | float] = {}
    replace: dict[int, int] = {}
    dropped: set[int] = set()

    def value(v: int) -> int:
        while v in replace:
            v = replace[v]
        return v

    for index, op in enumerate(ops):
        args = tuple(value(a) for a in op.args)
        if op.name == "const":
            constant[index] = op.arg  # type: ignore[assignment]
        elif op.name == "binary" and len(args) == 2:
            a, b = args
            if a in constant and b in constant:
                result = evaluate(str(op.arg), op.kind, constant[a], constant[b])
                if result is not None and (op.kind == "f") == isinstance(result, float):
                    ops[index] = Op("const", op.kind, (), result)
                    constant[index] = result
            elif b in constant and identity(str(op.arg), op.kind, "right", constant[b]):
                replace[index], dropped = a, dropped | {index}
            elif a in constant and identity(str(op.arg), op.kind, "left", constant[a]):
                replace[index], dropped = b, dropped | {index}
        elif op.name == "to_float" and args[0] in constant:
            ops[index] = Op("const", "f", (), float(constant[args[0]]))
            constant[index] = ops[index].arg  # type: ignore[assignment]
        elif op.name == "neg" and args[0] in constant and constant[args[0]] != INT64[0]:
            ops[index] = Op("const", op.kind, (), -constant[args[0]])
            constant[index] = ops[index].arg  # type: ignore[assignment]
        elif op.name == "branch" and all(a in constant for a in args):
            assert isinstance(op.arg, tuple)
            comparison, outcome = op.arg
            holds = _COMPARE[comparison](constant[args[0]], constant[args[1]])
            if holds == outcome:  # it never leaves
                dropped.add(index)
    folded = Recording(rec.code, rec.dst, rec.src, ops, rec.slots, rec.stored, rec.constants, rec.positions)
    return rewrite(folded, dropped, replace)


_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "LT": operator.lt, "LE": operator.le, "EQ": operator.eq, "NE": operator.ne,
    "GT": operator.gt, "GE": operator.ge,
}
