"""Recording arithmetic and control: int, float and bool operators,
comparisons and branches, `for` over ranges, lists, tuples and enumerate."""

from __future__ import annotations

import operator

from copyjit.trace.ir import Abort, Op, Snapshot
from copyjit.trace.record_base import (
    ITERATORS,
    LIST_ITERATOR,
    RANGE_ITERATOR,
    TUPLE_ITERATOR,
    Pending,
    RecorderBase,
    fits,
    kind_of,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

    from copyjit.trace.inner import Decoded  # what copyjit.trace.bytecode decodes

# BINARY_OP's oparg, without its in-place flavour (+13), to what is supported.
_BINARY: Final = {0: "add", 1: "and", 2: "floordiv", 3: "lshift", 5: "mul", 6: "mod", 7: "or", 8: "pow",
                  9: "rshift", 10: "sub", 11: "truediv", 12: "xor"}
_INT_OPS: Final = {"add", "sub", "mul", "floordiv", "mod", "and", "or", "xor", "lshift", "rshift"}
_FLOAT_OPS: Final = {"add", "sub", "mul", "truediv", "pow"}
_COMPARE: Final = ("LT", "LE", "EQ", "NE", "GT", "GE")  # COMPARE_OP's oparg >> 5
_PYTHON: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
    "mod": operator.mod, "truediv": operator.truediv, "pow": operator.pow,
    "and": operator.and_, "or": operator.or_, "xor": operator.xor, "lshift": operator.lshift,
    "rshift": operator.rshift,
    "LT": operator.lt, "LE": operator.le, "EQ": operator.eq,
    "NE": operator.ne, "GT": operator.gt, "GE": operator.ge,
}


def _int_result(name: str, a: int, b: int) -> int:
    """What an int operator gives (0 where it raises: decided later)."""
    try:
        return int(_PYTHON[name](a, b))
    except (ArithmeticError, ValueError):
        return 0



class NumberOps(RecorderBase):
    # --- arithmetic ---------------------------------------------------------

    def op_BINARY_OP(self, ins: Decoded) -> int:
        name = _BINARY.get(ins.arg % 13) if ins.arg is not None and ins.arg < 26 else None
        if name is None:
            raise Abort(f"binary operator {ins.argrepr}")
        (right, b), (left, a) = self.stack[-1], self.stack[-2]
        if type(a) not in (int, float, bool) or type(b) not in (int, float, bool) or \
                (type(a) is bool and type(b) is bool and name in ("and", "or", "xor")):  # a bool, not an int
            raise Abort(f"{ins.argrepr} on {type(a).__name__} and {type(b).__name__}")
        if name == "pow" and type(a) is not float and type(b) is not float:
            # An int's power is an int or a float depending on the values:
            # boxed, its type guarded where used.
            return self._boxed_arithmetic(ins, (left, a), (right, b), known=None)
        if type(a) is int and type(b) is int and name in _INT_OPS and \
                not (fits(a, "i") and fits(b, "i") and fits(_int_result(name, a, b), "i")):
            return self._boxed_arithmetic(ins, (left, a), (right, b), known=int)
        x, y = self.number(left, a), self.number(right, b)
        self.pop(), self.pop()
        kinds = self.kind(x) + self.kind(y)
        if kinds == "ii" and name in _INT_OPS:
            kind = "i"
        elif kinds != "ii" and name in _FLOAT_OPS:
            kind = "f"
            x = x if kinds[0] == "f" else self.emit(Op("to_float", "f", (x,)))
            y = y if kinds[1] == "f" else self.emit(Op("to_float", "f", (y,)))
        else:
            raise Abort(f"{ins.argrepr} on {kinds.replace('i', 'int ').replace('f', 'float ').strip()}")
        try:
            result = _PYTHON[name](a, b)
        except (ArithmeticError, ValueError):  # a negative shift count raises ValueError
            raise Abort(f"{ins.argrepr} raised while recording", final=False) from None
        if not fits(result, kind):
            raise Abort(f"{ins.argrepr} left the 64-bit range while recording" if kind == "i"
                        else f"{ins.argrepr} gave a {type(result).__name__} while recording", final=False)
        snapshot = self.snapshot(stack=[*self.stack, (left, a), (right, b)])
        index = self.emit(Op("binary", kind, (x, y), arg=name, snapshot=snapshot))
        self.release(left, right)
        self.push(index, result)
        return self.following[ins.offset]

    def _boxed_arithmetic(self, ins: Decoded, left: tuple[int, object], right: tuple[int, object],
                          known: type | None) -> int:
        """Int arithmetic beyond 64 bits, and `**`: boxed, through CPython's
        own operator (exact ints and floats are guarded, so it has no side
        effects and an error exits to the interpreter, which raises it)."""
        try:
            result = _PYTHON[_BINARY[ins.arg % 13]](left[1], right[1])  # type: ignore[operator]
        except (ArithmeticError, ValueError):  # a negative shift count raises ValueError
            raise Abort(f"{ins.argrepr} raised while recording", final=False) from None
        operands = [self.number_object(len(self.stack) - 2), self.number_object(len(self.stack) - 1)]
        index = self.emit(Op("binary_o", "o", tuple(operands), arg=ins.arg, snapshot=self.snapshot()),
                          known=known)
        self.pop(), self.pop()
        self.release(*operands)
        self.push(index, result)
        return self.following[ins.offset]

    def number_object(self, position: int) -> int:
        """The int or float at `position` of the stack as a guarded object
        (boxed in place if unboxed)."""
        value, concrete = self.stack[position]
        if self.kind(value) == "o":
            self.guard_type(value, concrete)
            return value
        return self.box_on_stack(position)

    def op_UNARY_NEGATIVE(self, ins: Decoded) -> int:
        value, concrete = self.stack[-1]
        if type(concrete) not in (int, float):
            raise Abort(f"negation of {type(concrete).__name__}")
        number = self.number(value, concrete)
        snapshot = self.snapshot()
        self.pop()
        result = -concrete  # type: ignore[operator]
        kind = self.kind(number)
        if not fits(result, kind):
            raise Abort("negation left the 64-bit range while recording", final=False)
        index = self.emit(Op("neg", kind, (number,), snapshot=snapshot))
        self.release(value)
        self.push(index, result)
        return self.following[ins.offset]

    # --- control ------------------------------------------------------------

    def op_COMPARE_OP(self, ins: Decoded) -> int:
        (right, b), (left, a) = self.stack[-1], self.stack[-2]
        if type(a) not in (int, float) or type(b) not in (int, float):
            raise Abort(f"a comparison of {type(a).__name__} with {type(b).__name__}")
        if type(a) is not type(b):
            raise Abort("a comparison of an int with a float")  # Python compares them exactly
        name = _COMPARE[ins.arg >> 5]  # type: ignore[operator]
        if type(a) is int and not (fits(a, "i") and fits(b, "i")):
            operands = [self.number_object(len(self.stack) - 2), self.number_object(len(self.stack) - 1)]
            outcome = bool(_PYTHON[name](a, b))
            index = self.emit(Op("compare_o", "o", tuple(operands), arg=_COMPARE.index(name),
                                 snapshot=self.snapshot()), known=bool)
            self.pop(), self.pop()
            self.release(*operands)
            self.push(index, outcome)
            return self.following[ins.offset]
        x, y = self.number(left, a), self.number(right, b)
        inputs = (self.pop(), self.pop())[::-1]
        outcome = bool(_PYTHON[name](a, b))
        following = self.instructions[self.following[ins.offset]]
        if following.opname == "EXTENDED_ARG":
            following = self.instructions[self.following[following.offset]]
        if following.opname not in ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE"):
            # Its result is a value: a bool (immortal, so never released in fact).
            index = self.emit(Op("compare_bool", "o", (x, y), arg=_COMPARE.index(name)), known=bool)
            self.release(*(value for value, _ in inputs))
            self.push(index, outcome)
            return self.following[ins.offset]
        self.pending = Pending(name, self.kind(x), x, y, outcome, ins.start_offset, inputs)
        return self.following[ins.offset]

    def op_IS_OP(self, ins: Decoded) -> int:
        """`a is b` (oparg 1: `is not`) of two objects, for the branch after
        it: a guard that they are (or are not) one object, as they were."""
        (right, b), (left, a) = self.stack[-1], self.stack[-2]
        if self.kind(left) != "o" or self.kind(right) != "o":
            # An unboxed number has no object of its own to compare.
            raise Abort("an `is` test of an unboxed number")
        following = self.instructions[self.following[ins.offset]]
        if following.opname == "EXTENDED_ARG":
            following = self.instructions[self.following[following.offset]]
        if following.opname not in ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE"):
            raise Abort("an `is` test whose result is a value, not a branch")
        inputs = (self.pop(), self.pop())[::-1]
        name = "is not" if ins.arg else "is"
        self.pending = Pending(name, "o", left, right, (a is b) != bool(ins.arg), ins.start_offset, inputs)
        return self.following[ins.offset]

    def op_UNARY_NOT(self, ins: Decoded) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) != "o" or self.guard_type(value, concrete) is not bool:
            raise Abort(f"`not` of a {type(concrete).__name__}")  # TO_BOOL comes first: a bool
        index = self.emit(Op("not", "o", (value,)), known=bool)
        self.pop()
        self.release(value)
        self.push(index, not concrete)
        return self.following[ins.offset]

    def op_TO_BOOL(self, ins: Decoded) -> int:
        value, concrete = self.stack[-1]
        kind = self.kind(value)
        if kind == "o":
            known = self.guard_type(value, concrete)
            if known is bool:
                return self.following[ins.offset]  # the branch guards which bool
            if known not in (list, tuple, str):
                raise Abort(f"the truth of a {known.__name__}")
            self.pop()
            length = self.emit(Op("len_str" if known is str else "len", "i", (value,)))
            zero = self.emit(Op("const", "i", arg=0))
            self.pending = Pending("NE", "i", length, zero, bool(concrete), ins.start_offset,
                                    ((value, concrete),))
            return self.following[ins.offset]
        if kind == "n":
            raise Abort("the truth of NULL")
        self.pop()
        zero = self.emit(Op("const", kind, arg=0 if kind == "i" else 0.0))
        self.pending = Pending("NE", kind, value, zero, bool(concrete), ins.start_offset,
                                ((value, concrete),))
        return self.following[ins.offset]

    def _branch(self, ins: Decoded, jump_if: bool) -> int:
        pending = self.pending
        if pending is None:
            return self._branch_on_bool(ins, jump_if)
        self.pending = None
        taken = pending.outcome == jump_if
        other = self.following[ins.offset] if taken else ins.argval
        leaves = not self.dst <= other <= self.end
        # An exit re-executes the comparison (or TO_BOOL) in the interpreter,
        # so its inputs stay alive until the branch is decided.
        snapshot = self.snapshot(pending.offset, stack=[*self.stack, *pending.inputs], normal=leaves)
        if pending.kind == "o":  # an `is` test: the guard is on the identity it found
            same = pending.outcome == (pending.name == "is")
            self.emit(Op("guard_same" if same else "guard_distinct", "", (pending.left, pending.right),
                         snapshot=snapshot))
        else:
            self.emit(Op("branch", pending.kind, (pending.left, pending.right),
                         arg=(pending.name, pending.outcome), snapshot=snapshot))
        self.release(*(value for value, _ in pending.inputs))
        return self._within_loop(ins.argval if taken else self.following[ins.offset])

    def _branch_on_bool(self, ins: Decoded, jump_if: bool) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) != "o" or self.guard_type(value, concrete) is not bool:
            raise Abort("a branch on something other than a comparison or a bool")
        assert isinstance(concrete, bool)
        taken = concrete == jump_if
        other = self.following[ins.offset] if taken else ins.argval
        leaves = not self.dst <= other <= self.end
        snapshot = self.snapshot(normal=leaves)
        self.pop()
        self.emit(Op("guard_is", args=(value,), arg=self.keep(concrete), snapshot=snapshot))
        self.release(value)  # True and False are immortal: a no-op, kept for the rule
        return self._within_loop(ins.argval if taken else self.following[ins.offset])

    def _within_loop(self, offset: int) -> int:
        # Leaving the loop while recording (its last iteration, or a break)
        # says nothing about the loop: try again on a later iteration.
        if not self.dst <= offset <= self.end:
            self.offset = offset
            self.stop(Abort("the loop ended while recording", final=False, soon=True))
        return offset

    def op_POP_JUMP_IF_FALSE(self, ins: Decoded) -> int:
        return self._branch(ins, jump_if=False)

    def op_POP_JUMP_IF_TRUE(self, ins: Decoded) -> int:
        return self._branch(ins, jump_if=True)

    def _branch_on_none(self, ins: Decoded, jump_if_none: bool) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) != "o":
            raise Abort("an `is None` test of an unboxed value")
        is_none = concrete is None
        taken = is_none == jump_if_none
        other = self.following[ins.offset] if taken else ins.argval
        snapshot = self.snapshot(normal=not self.dst <= other <= self.end)
        self.pop()
        self.emit(Op("guard_is" if is_none else "guard_is_not", args=(value,), arg=id(None),
                     snapshot=snapshot))
        self.release(value)
        return self._within_loop(ins.argval if taken else self.following[ins.offset])

    def op_POP_JUMP_IF_NONE(self, ins: Decoded) -> int:
        return self._branch_on_none(ins, jump_if_none=True)

    def op_POP_JUMP_IF_NOT_NONE(self, ins: Decoded) -> int:
        return self._branch_on_none(ins, jump_if_none=False)

    def op_JUMP_FORWARD(self, ins: Decoded) -> int:
        return self._within_loop(ins.argval)

    def op_JUMP_BACKWARD(self, ins: Decoded) -> int | None:
        if ins.argval != self.dst:  # any backedge to the head closes the loop (`continue`)
            raise Abort("an inner loop")
        if self.stack:
            raise Abort("values left on the stack at the backedge")
        return None

    def op_FOR_ITER(self, ins: Decoded) -> int:
        if ins.start_offset != self.dst:
            return self.inner_for_done(ins)
        if self.stack or not self.entry_stack:
            raise Abort("a for loop inside an expression")
        iterator: Any = self.entry_stack[-1]
        kind = type(iterator)
        if kind is enumerate:
            return self._enumerate(ins, iterator)
        if kind not in (RANGE_ITERATOR, LIST_ITERATOR, TUPLE_ITERATOR):
            raise Abort(f"a for loop over a {kind.__name__}")
        if operator.length_hint(iterator) == 0:
            raise Abort("the loop ended while recording", final=False, soon=True)
        snapshot = Snapshot(ins.start_offset, (), normal=True)
        item = next(iterator)
        if kind is RANGE_ITERATOR:
            index = self.emit(Op("range_next", "i", snapshot=snapshot))
        else:
            index = self.emit(Op("list_next" if kind is LIST_ITERATOR else "tuple_next", "o",
                                 snapshot=snapshot))
        self.push(index, item)
        return self.following[ins.offset]

    def inner_for_done(self, ins: Decoded) -> int:
        """A nested `for` whose trace ran it to the end: its FOR_ITER pops the
        exhausted iterator and skips the END_FOR and POP_TOP after its target."""
        value, iterator = self.stack[-1]
        if self.kind(value) != "o" or type(iterator) not in ITERATORS or operator.length_hint(iterator):
            raise Abort("a nested for loop that is not over")
        self.guard_type(value, iterator)
        self.emit(Op("guard_done", args=(value,), snapshot=self.snapshot()))
        self.pop()
        self.release(value)
        return self.following[self.following[ins.argval]]

    def _enumerate(self, ins: Decoded, iterator: Any) -> int:
        unpack = self.instructions[self.following[ins.offset]]
        inner, start = iterator.__reduce__()[1]
        if unpack.opname != "UNPACK_SEQUENCE" or unpack.arg != 2:
            raise Abort("enumerate() whose pairs are not unpacked at once")
        if type(inner) not in (LIST_ITERATOR, TUPLE_ITERATOR) or kind_of(start) != "i":
            raise Abort(f"enumerate() over a {type(inner).__name__}")
        if operator.length_hint(inner) == 0:
            raise Abort("the loop ended while recording", final=False, soon=True)
        count, item = next(iterator)
        name = "enumerate_list" if type(inner) is LIST_ITERATOR else "enumerate_tuple"
        value = self.emit(Op(name, "o", snapshot=Snapshot(ins.start_offset, (), normal=True)))
        counter = self.emit(Op("second", "i", (value,)))
        self.push(value, item)
        self.push(counter, count)  # as UNPACK_SEQUENCE leaves them: the first on top
        return self.following[unpack.offset]
