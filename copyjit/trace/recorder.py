"""Recording one iteration of a hot loop.

The recorder interprets CPython 3.13 bytecode from the loop head (`dst`) to
the backedge (`src`) on the frame's current values, using Python's own
operations, and writes down what happened as a list of `Op`s: the path
taken, the kind of every value (an int that fits 64 bits, or a float), and
a guard with a `Snapshot` wherever the next run could differ.

This first version is a dry run: it supports only operations without side
effects (int and float arithmetic and comparisons, branches, locals,
constants, iteration over `range`), changes nothing, and leaves the
iteration itself to the interpreter. Anything else aborts the recording
with a reason.
"""

from __future__ import annotations

import dataclasses
import dis
import itertools
import operator
from collections.abc import Callable
from types import CodeType
from typing import Any

from copyjit.backend.frames import UNBOUND
from copyjit.trace.frames import read_local, read_stack

INT64 = (-(2**63), 2**63 - 1)
MAX_INSTRUCTIONS = 500
RANGE_ITERATOR = type(iter(range(0)))

# BINARY_OP's oparg, without its in-place flavour (+13), to what is supported.
_BINARY = {0: "add", 2: "floordiv", 5: "mul", 6: "mod", 10: "sub", 11: "truediv"}
_INT_OPS = {"add", "sub", "mul", "floordiv", "mod"}
_FLOAT_OPS = {"add", "sub", "mul", "truediv"}
_COMPARE = ("LT", "LE", "EQ", "NE", "GT", "GE")  # COMPARE_OP's oparg >> 5
_PYTHON: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
    "mod": operator.mod, "truediv": operator.truediv,
    "LT": operator.lt, "LE": operator.le, "EQ": operator.eq,
    "NE": operator.ne, "GT": operator.gt, "GE": operator.ge,
}


class Abort(Exception):
    """The loop cannot be traced (`final`) or not right now; `soon`: try again
    at the very next backedge, not after another threshold's worth."""

    def __init__(self, reason: str, final: bool = True, soon: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final
        self.soon = soon


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Where an exit resumes: the bytecode, and the recorded values on the
    stack above the loop's own (bottom first)."""

    offset: int
    stack: tuple[int, ...]
    normal: bool = False  # leaving the loop, or a pending signal: not a sign of a bad trace


@dataclasses.dataclass(frozen=True)
class Op:
    """One recorded step. Ops that make a value are referred to by index."""

    name: str  # load, const, binary, to_float, neg, branch, range_next, store
    kind: str = ""  # "i" or "f": of the result, or of the operands of a branch
    args: tuple[int, ...] = ()
    arg: object = None  # the local slot, constant, operator or comparison
    snapshot: Snapshot | None = None


@dataclasses.dataclass
class Recording:
    code: CodeType
    dst: int
    src: int
    ops: list[Op]
    slots: dict[int, str]  # every local the trace reads or writes: its kind
    stored: list[int]  # locals the trace writes, in order of first store


def kind_of(value: object) -> str:
    if type(value) is int and INT64[0] <= value <= INT64[1]:
        return "i"
    if type(value) is float:
        return "f"
    raise Abort(f"a value of type {type(value).__name__} (only ints that fit 64 bits and floats)")


def _fits(result: object, kind: str) -> bool:
    """Whether a result computed while recording is of the recorded kind.
    (Not kind_of: a big int here is a passing state, not a final abort.)"""
    return (type(result) is int and INT64[0] <= result <= INT64[1]) if kind == "i" \
        else type(result) is float


class _Recorder:
    def __init__(self, code: CodeType, dst: int, src: int, raw_frame: int) -> None:
        if code.co_cellvars or code.co_freevars:
            raise Abort("a function with closure cells")
        self.code, self.dst, self.src, self.raw = code, dst, src, raw_frame
        self.instructions = {i.offset: i for i in dis.get_instructions(code)}
        offsets = sorted(self.instructions)
        self.following = dict(itertools.pairwise(offsets))
        # The loop runs from dst to its last backedge: with `continue` there
        # are several, and recording may have started at any of them.
        self.end = max(i.offset for i in self.instructions.values()
                       if i.opname == "JUMP_BACKWARD" and i.argval == dst)
        self.ops: list[Op] = []
        self.slots: dict[int, str] = {}
        self.stored: list[int] = []
        self.current: dict[int, tuple[int, object]] = {}  # slot -> (value, concrete)
        self.entry_stack = read_stack(raw_frame, code)
        self.stack: list[tuple[int, object]] = []  # recorded values above the entry stack
        self.pending: tuple[str, str, int, int, bool, int] | None = None  # a comparison

    def emit(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def snapshot(self, offset: int, depth: int | None = None, normal: bool = False) -> Snapshot:
        stack = self.stack if depth is None else self.stack[:depth]
        return Snapshot(offset, tuple(value for value, _ in stack), normal)

    def run(self) -> Recording:
        offset = self.dst
        for _ in range(MAX_INSTRUCTIONS):
            instruction = self.instructions.get(offset)
            if instruction is None:
                raise Abort(f"no instruction at offset {offset}")
            handler = getattr(self, f"op_{instruction.opname}", None)
            if handler is None:
                raise Abort(f"unsupported instruction {instruction.opname}")
            if self.pending is not None and not instruction.opname.startswith("POP_JUMP_IF_"):
                raise Abort("a comparison whose result is not a branch")
            next_offset = handler(instruction)
            if next_offset is None:
                return Recording(self.code, self.dst, self.src, self.ops, self.slots, self.stored)
            offset = next_offset
        raise Abort(f"more than {MAX_INSTRUCTIONS} instructions in one iteration")

    # --- locals and constants ----------------------------------------------

    def _slot_kind(self, slot: int, kind: str) -> None:
        known = self.slots.setdefault(slot, kind)
        if known != kind:
            raise Abort(f"local {self.code.co_varnames[slot]!r} changes type in the loop")

    def load(self, slot: int) -> None:
        if slot not in self.current:
            value = read_local(self.raw, slot)
            if value is UNBOUND:
                raise Abort(f"local {self.code.co_varnames[slot]!r} is unbound")
            self._slot_kind(slot, kind_of(value))
            concrete = value
        else:
            concrete = self.current[slot][1]
        index = self.emit(Op("load", self.slots[slot], arg=slot))
        self.stack.append((index, concrete))

    def store(self, slot: int) -> None:
        value, concrete = self.pop()
        kind = self.ops[value].kind
        if slot not in self.current and slot not in self.slots:
            entry = read_local(self.raw, slot)  # the trace's entry checks this kind too
            if entry is UNBOUND or kind_of(entry) != kind:
                raise Abort(f"local {self.code.co_varnames[slot]!r} changes type in the loop")
        self._slot_kind(slot, kind)
        if slot not in self.stored:
            self.stored.append(slot)
        self.emit(Op("store", kind, (value,), arg=slot))
        self.current[slot] = (value, concrete)

    def pop(self) -> tuple[int, object]:
        if not self.stack:
            raise Abort("an instruction that takes values from the loop's own stack")
        return self.stack.pop()

    def op_NOP(self, ins: dis.Instruction) -> int:
        return self.following[ins.offset]

    def op_LOAD_FAST(self, ins: dis.Instruction) -> int:
        self.load(ins.arg)  # type: ignore[arg-type]
        return self.following[ins.offset]

    op_LOAD_FAST_CHECK = op_LOAD_FAST

    def op_LOAD_FAST_LOAD_FAST(self, ins: dis.Instruction) -> int:
        self.load(ins.arg >> 4)  # type: ignore[operator]
        self.load(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_STORE_FAST(self, ins: dis.Instruction) -> int:
        self.store(ins.arg)  # type: ignore[arg-type]
        return self.following[ins.offset]

    def op_STORE_FAST_LOAD_FAST(self, ins: dis.Instruction) -> int:
        self.store(ins.arg >> 4)  # type: ignore[operator]
        self.load(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_STORE_FAST_STORE_FAST(self, ins: dis.Instruction) -> int:
        self.store(ins.arg >> 4)  # type: ignore[operator]
        self.store(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_LOAD_CONST(self, ins: dis.Instruction) -> int:
        kind = kind_of(ins.argval)
        index = self.emit(Op("const", kind, arg=ins.argval))
        self.stack.append((index, ins.argval))
        return self.following[ins.offset]

    def op_POP_TOP(self, ins: dis.Instruction) -> int:
        self.pop()
        return self.following[ins.offset]

    # --- arithmetic ---------------------------------------------------------

    def op_BINARY_OP(self, ins: dis.Instruction) -> int:
        name = _BINARY.get(ins.arg % 13) if ins.arg is not None and ins.arg < 26 else None
        if name is None:
            raise Abort(f"binary operator {ins.argrepr}")
        snapshot = self.snapshot(ins.offset)
        (right, b), (left, a) = self.pop(), self.pop()
        kinds = self.ops[left].kind + self.ops[right].kind
        if kinds == "ii" and name in _INT_OPS:
            kind = "i"
        elif kinds != "ii" and name in _FLOAT_OPS:
            kind = "f"
            left = left if kinds[0] == "f" else self.emit(Op("to_float", "f", (left,)))
            right = right if kinds[1] == "f" else self.emit(Op("to_float", "f", (right,)))
        else:
            raise Abort(f"{ins.argrepr} on {kinds.replace('i', 'int ').replace('f', 'float ').strip()}")
        try:
            result = _PYTHON[name](a, b)
        except ArithmeticError:
            raise Abort(f"{ins.argrepr} raised while recording", final=False) from None
        if not _fits(result, kind):
            raise Abort(f"{ins.argrepr} left the 64-bit range while recording", final=False)
        index = self.emit(Op("binary", kind, (left, right), arg=name, snapshot=snapshot))
        self.stack.append((index, result))
        return self.following[ins.offset]

    def op_UNARY_NEGATIVE(self, ins: dis.Instruction) -> int:
        snapshot = self.snapshot(ins.offset)
        value, concrete = self.pop()
        result = -concrete  # type: ignore[operator]
        kind = self.ops[value].kind
        if not _fits(result, kind):
            raise Abort("negation left the 64-bit range while recording", final=False)
        index = self.emit(Op("neg", kind, (value,), snapshot=snapshot))
        self.stack.append((index, result))
        return self.following[ins.offset]

    # --- control ------------------------------------------------------------

    def op_COMPARE_OP(self, ins: dis.Instruction) -> int:
        (right, b), (left, a) = self.pop(), self.pop()
        kinds = self.ops[left].kind + self.ops[right].kind
        if kinds not in ("ii", "ff"):
            raise Abort("a comparison of an int with a float")  # Python compares them exactly
        name = _COMPARE[ins.arg >> 5]  # type: ignore[operator]
        outcome = bool(_PYTHON[name](a, b))
        self.pending = (name, kinds[0], left, right, outcome, ins.offset)
        return self.following[ins.offset]

    def _branch(self, ins: dis.Instruction, jump_if: bool) -> int:
        if self.pending is None:
            raise Abort("a branch on something other than a comparison")
        name, kind, left, right, outcome, compare_offset = self.pending
        self.pending = None
        taken = outcome == jump_if
        other = self.following[ins.offset] if taken else ins.argval
        leaves = not self.dst <= other <= self.end
        # An exit re-executes the comparison in the interpreter.
        stack = (*self.snapshot(compare_offset).stack, left, right)
        snapshot = Snapshot(compare_offset, stack, leaves)
        self.emit(Op("branch", kind, (left, right), arg=(name, outcome), snapshot=snapshot))
        return self._within_loop(ins.argval if taken else self.following[ins.offset])

    def _within_loop(self, offset: int) -> int:
        # Leaving the loop while recording (its last iteration, or a break)
        # says nothing about the loop: try again on a later iteration.
        if not self.dst <= offset <= self.end:
            raise Abort("the loop ended while recording", final=False, soon=True)
        return offset

    def op_POP_JUMP_IF_FALSE(self, ins: dis.Instruction) -> int:
        return self._branch(ins, jump_if=False)

    def op_POP_JUMP_IF_TRUE(self, ins: dis.Instruction) -> int:
        return self._branch(ins, jump_if=True)

    def op_JUMP_FORWARD(self, ins: dis.Instruction) -> int:
        return self._within_loop(ins.argval)

    def op_JUMP_BACKWARD(self, ins: dis.Instruction) -> int | None:
        if ins.argval != self.dst:  # any backedge to the head closes the loop (`continue`)
            raise Abort("an inner loop")
        if self.stack:
            raise Abort("values left on the stack at the backedge")
        return None

    def op_FOR_ITER(self, ins: dis.Instruction) -> int:
        if self.stack or not self.entry_stack or type(self.entry_stack[-1]) is not RANGE_ITERATOR:
            raise Abort("a for loop over something other than range()")
        # range_iterator.__reduce__() gives the range still to come, without advancing it.
        reduced = self.entry_stack[-1].__reduce__()
        assert isinstance(reduced, tuple)
        remaining: range = reduced[1][0]
        if not remaining:
            raise Abort("the loop ended while recording", final=False, soon=True)
        index = self.emit(Op("range_next", kind_of(remaining[0]),
                             snapshot=Snapshot(ins.offset, (), normal=True)))
        self.stack.append((index, remaining[0]))
        return self.following[ins.offset]


def record(code: CodeType, dst: int, src: int, raw_frame: int) -> Recording:
    """Record the iteration from `dst` to the backedge at `src`."""
    return _Recorder(code, dst, src, raw_frame).run()
