"""Recording one iteration of a hot loop.

The recorder runs one iteration of the loop for real, from the loop head
(`dst`) to the backedge (`src`), on the frame's values, performing each
bytecode with Python's own operations (so its semantics are CPython's and
its side effects happen once), and writes down what happened as a list of
`Op`s: the path taken, the kind of every value and a guard, with a
`Snapshot`, wherever the next run could differ.

Kinds of values: "i" an int that fits 64 bits and "f" a float, both kept
unboxed by the trace; "o" an object the trace holds a reference to; "n" the
NULL that CALL's stack layout has in place of a missing `self`.

When the iteration is done, the locals it changed are written to the frame
and CPython jumps to `dst` as it was about to. When recording stops early
(`Abort`), the frame is handed back at the instruction that stopped it, with
every effect so far in place: the interpreter executes that instruction next.
"""

from __future__ import annotations

import dis
import itertools
import math
import operator
import types

from copyjit.backend.frames import UNBOUND
from copyjit.backend.runtime import runtime
from copyjit.trace import frames
from copyjit.trace.ir import INT64, Abort, BridgeStart, InnerCall, Op, Recording, Snapshot

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~3 ms at the first hot loop)
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
    from typing import Any, NoReturn

    from copyjit.trace.ir import InnerLookup

__all__ = ["Abort", "BridgeStart", "InnerCall", "Op", "Recording", "Snapshot", "record"]

MAX_INSTRUCTIONS = 500
RANGE_ITERATOR = type(iter(range(0)))
LIST_ITERATOR: type = type(iter([]))
TUPLE_ITERATOR: type = type(iter(()))
NULL = frames.NULL

# BINARY_OP's oparg, without its in-place flavour (+13), to what is supported.
_BINARY = {0: "add", 1: "and", 2: "floordiv", 3: "lshift", 5: "mul", 6: "mod", 7: "or", 8: "pow", 9: "rshift",
           10: "sub", 11: "truediv", 12: "xor"}
_INT_OPS = {"add", "sub", "mul", "floordiv", "mod", "and", "or", "xor", "lshift", "rshift"}
_FLOAT_OPS = {"add", "sub", "mul", "truediv"}
_COMPARE = ("LT", "LE", "EQ", "NE", "GT", "GE")  # COMPARE_OP's oparg >> 5
_BRANCHES = ("POP_JUMP_IF_", "EXTENDED_ARG")  # what may follow a comparison that is branched on
_PYTHON: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
    "mod": operator.mod, "truediv": operator.truediv, "pow": operator.pow,
    "and": operator.and_, "or": operator.or_, "xor": operator.xor, "lshift": operator.lshift,
    "rshift": operator.rshift,
    "LT": operator.lt, "LE": operator.le, "EQ": operator.eq,
    "NE": operator.ne, "GT": operator.gt, "GE": operator.ge,
}
_ITERATORS: tuple[type, ...] = (RANGE_ITERATOR, LIST_ITERATOR, TUPLE_ITERATOR)
_ITERABLES: tuple[type, ...] = (list, tuple, range, enumerate, *_ITERATORS)
# Calls made on unboxed numbers: callable -> (uop suffix, argument kinds).
_MATH: dict[int, tuple[str, tuple[str, ...]]] = {
    id(math.sqrt): ("SQRT", ("f",)), id(math.sin): ("SIN", ("f",)), id(math.cos): ("COS", ("f",)),
    id(math.exp): ("EXP", ("f",)), id(math.log): ("LOG", ("f",)),
    id(abs): ("ABS", ("f", "i")), id(min): ("MIN", ("ff", "ii")), id(max): ("MAX", ("ff", "ii")),
}
# Callables that look at their caller's frame: inside a trace its unboxed
# locals are not written back yet, so they would see stale values.
_FRAME_READERS = frozenset(id(f) for f in (locals, vars, dir, eval, exec, globals, breakpoint,
                                           __import__, __import__("sys")._getframe))


def kind_of(value: object) -> str:
    if type(value) is int and INT64[0] <= value <= INT64[1]:
        return "i"
    if type(value) is float:
        return "f"
    return "o"


def _int_result(name: str, a: int, b: int) -> int:
    """What an int operator gives (0 where it raises: decided later)."""
    try:
        return int(_PYTHON[name](a, b))
    except ArithmeticError:
        return 0


def _fits(result: object, kind: str) -> bool:
    """Whether a result computed while recording is of the recorded kind."""
    return (type(result) is int and INT64[0] <= result <= INT64[1]) if kind == "i" \
        else type(result) is float


class _Pending:
    """A comparison (LT ... GE of two values of `kind`), or truth test,
    waiting for the branch that uses it; `offset` is the COMPARE_OP's or
    TO_BOOL's, `inputs` what that instruction took from the stack."""

    __slots__ = ("inputs", "kind", "left", "name", "offset", "outcome", "right")

    def __init__(self, name: str, kind: str, left: int, right: int, outcome: bool, offset: int,
                 inputs: tuple[tuple[int, object], ...]) -> None:
        self.name, self.kind, self.left, self.right = name, kind, left, right
        self.outcome, self.offset, self.inputs = outcome, offset, inputs


class _Handback(Exception):
    """Recording stopped: hand the frame back at `offset` (the stack as it was
    before that instruction), then raise `abort`."""

    def __init__(self, abort: Abort, offset: int, stack: list[tuple[int, object]]) -> None:
        self.abort, self.offset, self.stack = abort, offset, stack


class _Recorder:
    def __init__(self, code: CodeType, dst: int, src: int, raw_frame: int,
                 bridge: BridgeStart | None = None, inner: InnerLookup | None = None) -> None:
        self.code, self.dst, self.src, self.raw = code, dst, src, raw_frame
        self.bridge = bridge
        self.inner = inner
        self.on_frame = len(bridge.kinds) if bridge else 0  # bridge inputs still on the frame's stack
        self.moved = False  # an inner loop ran: the frame's IP is not at the backedge any more
        self.after_inner: int | None = None
        self.instructions = {i.offset: i for i in dis.get_instructions(code)}
        offsets = sorted(self.instructions)
        self.following = dict(itertools.pairwise(offsets))
        # The loop runs from dst to its last backedge: with `continue` there
        # are several, and recording may have started at any of them.
        self.end = max(i.offset for i in self.instructions.values()
                       if i.opname == "JUMP_BACKWARD" and i.argval == dst)
        # Heads of loops nested in this one: run by their own traces.
        self.inner_heads = {i.argval for i in self.instructions.values() if i.opname == "JUMP_BACKWARD"
                            and dst < i.argval <= i.offset <= self.end}
        self.ops: list[Op] = []
        self.slots: dict[int, str] = {}
        self.stored: list[int] = []
        self.constants: list[object] = []
        self.current: dict[int, tuple[int, object]] = {}  # slot -> (value, concrete)
        self.entry_stack = frames.read_stack(raw_frame, code)
        self.stack: list[tuple[int, object]] = []  # recorded values above the entry stack
        self.types: dict[int, type] = {}  # values whose type the trace knows (guarded or made so)
        if bridge is not None:
            # The parent's exit pushed these; the bridge finds them unboxed
            # in the parent's spill slots.
            count = len(bridge.kinds)
            inputs = self.entry_stack[len(self.entry_stack) - count:]
            self.entry_stack = self.entry_stack[:len(self.entry_stack) - count]
            for kind, concrete in zip(bridge.kinds, inputs, strict=True):
                self.push(self.emit(Op("input", kind)), NULL if concrete is UNBOUND else concrete)
        self.pending: _Pending | None = None
        self.offset = dst

    def emit(self, op: Op, known: type | None = None) -> int:
        self.ops.append(op)
        index = len(self.ops) - 1
        if op.kind in ("i", "f"):
            self.types[index] = int if op.kind == "i" else float
        elif known is not None:
            self.types[index] = known
        return index

    def keep(self, obj: object) -> int:
        """The address of `obj`, kept alive as long as the trace."""
        if not any(k is obj for k in self.constants):
            self.constants.append(obj)
        return id(obj)

    def snapshot(self, offset: int | None = None, stack: list[tuple[int, object]] | None = None,
                 normal: bool = False, reraise: int | None = None) -> Snapshot:
        entries = self.stack if stack is None else stack
        # An exception is the program's business, not a sign of a bad trace.
        return Snapshot(self.offset if offset is None else offset,
                        tuple(value for value, _ in entries), normal or reraise is not None, reraise)

    # --- running --------------------------------------------------------------

    def run(self) -> Recording:
        try:
            self._run()
        except _Handback as stop:
            if stop.offset >= 0:  # else the frame is exact already (an inner trace left it so)
                self.hand_back(stop.offset, stop.stack)
            raise stop.abort from None
        self.hand_back(None, [])
        return Recording(self.code, self.dst, self.src, self.ops, self.slots, self.stored, self.constants)

    def _run(self) -> None:
        offset = self.dst if self.bridge is None else self.bridge.offset
        for _ in range(MAX_INSTRUCTIONS):
            instruction = self.instructions.get(offset)
            if instruction is None:
                self.stop(Abort(f"no instruction at offset {offset}"))
            # An exit resumes at the instruction's EXTENDED_ARG prefix, if any:
            # without it the instruction would read a truncated oparg.
            self.offset = instruction.start_offset
            before = list(self.stack)
            try:
                pending = self.pending
                if pending is not None and not instruction.opname.startswith(_BRANCHES):
                    # Hand back at the comparison, its operands on the stack again.
                    raise _Handback(Abort("a comparison whose result is not a branch"), pending.offset,
                                    [*self.stack, *pending.inputs])
                if offset in self.inner_heads and self.after_inner != offset:
                    offset = self.run_inner(instruction)
                    continue
                self.after_inner = None
                handler = getattr(self, f"op_{instruction.opname}", None)
                if handler is None:
                    raise Abort(f"unsupported instruction {instruction.opname}")
                next_offset = handler(instruction)
            except Abort as abort:
                raise _Handback(abort, self.offset, before) from None
            except _Handback:
                raise
            except Exception as error:  # a bug of the recorder's: still hand the frame back whole
                # (handlers make their effects last, after anything that can fail)
                internal = Abort(f"internal error: {type(error).__name__}: {error}")
                raise _Handback(internal, self.offset, before) from error
            if next_offset is None:
                return
            offset = next_offset
        self.stop(Abort(f"more than {MAX_INSTRUCTIONS} instructions in one iteration"))

    def stop(self, abort: Abort) -> NoReturn:
        raise _Handback(abort, self.offset, list(self.stack))

    def hand_back(self, offset: int | None, stack: list[tuple[int, object]]) -> None:
        """Write what the iteration changed into the frame; with an offset,
        also push `stack` and point the frame at that instruction."""
        for slot, (_, concrete) in self.current.items():
            frames.write_local(self.raw, slot, concrete)
        frames.drop(self.raw, self.on_frame)  # what the recording took from the stack
        self.on_frame = 0
        if offset is None and (self.bridge is not None or self.moved):
            offset = self.dst  # the frame is not at the backedge: go on at the loop's head
        if offset is not None and (offset != self.dst or stack or self.current or self.bridge or self.moved):
            frames.push(self.raw, [concrete for _, concrete in stack])
            frames.set_instruction(self.raw, self.code, offset)

    # --- nested loops ---------------------------------------------------------

    def run_inner(self, ins: dis.Instruction) -> int:
        """Run a nested loop by its own trace, for real, and record a call of
        it: the frame is handed over at the loop's head, the inner trace runs
        to its exit, and recording goes on where that exit left the frame."""
        found = self.inner(ins.offset) if self.inner is not None else None
        if found is None:
            raise Abort("an inner loop without a trace (yet)", final=False)
        if self.pending is not None:
            raise Abort("a comparison whose result is not a branch")
        stack = list(self.stack)
        self.hand_back(ins.start_offset, stack)
        self.current, self.moved, self.stack = {}, True, []
        status = found.run(self.raw)
        snapshot = found.snapshot(status)
        if snapshot is None or not snapshot.normal or snapshot.reraise is not None or \
                not self.dst <= snapshot.offset <= self.end:
            raise _Handback(Abort("an inner loop left its trace early", final=False), -1, [])
        depth = len(snapshot.stack)
        pushed = frames.read_stack(self.raw, self.code)[len(self.entry_stack):]
        if len(pushed) != len(stack) + depth:
            raise _Handback(Abort("an inner loop changed the stack"), -1, [])
        if snapshot.offset == ins.start_offset and not (
                ins.opname == "FOR_ITER" and stack and depth == 0
                and type(pushed[-1]) in _ITERATORS and operator.length_hint(pushed[-1]) == 0):
            # At its head, a nested loop is over only if its iterator is.
            raise _Handback(Abort("an inner loop left its trace at its head", final=False), -1, [])
        inputs = [NULL if value is UNBOUND else value for value in pushed[len(stack):]]
        kinds = tuple("n" if value is NULL else "o" for value in inputs)
        call = InnerCall(found.record, found.cell, status, ins.start_offset, kinds, found.keep)
        self.emit(Op("inner_loop", args=tuple(value for value, _ in stack), arg=call,
                     snapshot=Snapshot(ins.start_offset, tuple(value for value, _ in stack))))
        frames.drop(self.raw, len(stack) + depth)  # the recording holds them again
        self.stack = list(stack)
        for kind, concrete in zip(kinds, inputs, strict=True):
            self.push(self.emit(Op("inner_input", kind)), concrete)
        self.after_inner = snapshot.offset
        return snapshot.offset

    def op_GET_ITER(self, ins: dis.Instruction) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) != "o" or type(concrete) not in _ITERABLES:
            raise Abort(f"iteration over a {type(concrete).__name__}")
        self.guard_type(value, concrete)
        iterator = iter(concrete)  # type: ignore[call-overload]
        index = self.emit(Op("get_iter", "o", (value,), snapshot=self.snapshot()), known=type(iterator))
        self.pop()
        self.release(value)
        self.push(index, iterator)
        return self.following[ins.offset]

    def op_END_FOR(self, ins: dis.Instruction) -> int:
        raise Abort("a loop that ends inside this one's iteration")

    # --- values ------------------------------------------------------------

    def push(self, value: int, concrete: object) -> None:
        self.stack.append((value, concrete))

    def pop(self) -> tuple[int, object]:
        if not self.stack:
            raise Abort("an instruction that takes values from the loop's own stack")
        return self.stack.pop()

    def kind(self, value: int) -> str:
        return self.ops[value].kind

    def release(self, *values: int) -> None:
        """The instruction is done with these: drop the trace's references."""
        for value in values:
            if self.kind(value) == "o":
                self.emit(Op("release", args=(value,)))

    def guard_type(self, value: int, concrete: object) -> type:
        """Make the trace check the type recorded for `value` (once)."""
        known = self.types.get(value)
        if known is None:
            known = type(concrete)
            self.emit(Op("guard_type", args=(value,), arg=self.keep(known), snapshot=self.snapshot()))
            self.types[value] = known
        return known

    def number(self, value: int, concrete: object) -> int:
        """`value` as an unboxed int or float value (guarded and unboxed when boxed)."""
        kind = self.kind(value)
        if kind in ("i", "f"):
            return value
        known = self.guard_type(value, concrete) if kind == "o" else None
        if known is bool:
            return self.emit(Op("unbox_bool", "i", (value,)))
        if known is int and kind_of(concrete) == "i":
            return self.emit(Op("unbox", "i", (value,), snapshot=self.snapshot()))
        if known is float:
            return self.emit(Op("unbox", "f", (value,), snapshot=self.snapshot()))
        if known is int:
            raise Abort("an int that does not fit 64 bits", final=False)
        raise Abort(f"arithmetic on {type(concrete).__name__}")

    def boxed(self, value: int) -> int:
        """`value` as an object (boxing an unboxed one); release it after use."""
        kind = self.kind(value)
        if kind == "o":
            return value
        if kind == "n":
            raise Abort("NULL where an object is needed")
        return self.emit(Op("box", "o", (value,), snapshot=self.snapshot()),
                         known=int if kind == "i" else float)

    # --- locals and constants ----------------------------------------------

    def load(self, slot: int, checked: bool = False) -> None:
        name = self.code.co_varnames[slot]
        if slot in self.current:
            stored, concrete = self.current[slot]
        else:
            stored, concrete = -1, frames.read_local(self.raw, slot)
            if concrete is UNBOUND:
                raise Abort(f"local {name!r} is unbound")
        kind = self.slots.setdefault(slot, kind_of(concrete))
        if kind == "o":
            # Loaded from the frame, where the trace keeps object locals.
            # Only LOAD_FAST_CHECK can find it unbound (the compiler proved
            # the others bound), and it loads one value: its exit is exact.
            op = Op("load_o", "o", arg=slot, snapshot=self.snapshot() if checked else None)
            index = self.emit(op, known=self.types.get(stored))
        elif kind_of(concrete) != kind:
            raise Abort(f"local {name!r} changes type in the loop")
        else:
            index = self.emit(Op("load", kind, arg=slot))
        self.push(index, concrete)

    def home(self, slot: int, concrete: object) -> str:
        """The kind of a local: unboxed ("i", "f") or an object in the frame."""
        if slot not in self.slots:
            entry = frames.read_local(self.raw, slot)
            # An unboxed local is unboxed at the trace's entry too.
            self.slots[slot] = kind_of(concrete if entry is UNBOUND else entry)
        home = self.slots[slot]
        if home != "o" and kind_of(concrete) != home:
            raise Abort(f"local {self.code.co_varnames[slot]!r} changes type in the loop")
        return home

    def prepare_store(self, slot: int, value: int, concrete: object) -> int:
        """Guard and convert a value about to be stored (nothing changes yet:
        the STORE instruction is still whole if a guard fails)."""
        if self.kind(value) == "n":
            raise Abort("storing NULL")
        if self.home(slot, concrete) == "o":
            return self.boxed(value)
        return self.number(value, concrete)

    def finish_store(self, slot: int, value: int, stored: int, concrete: object) -> None:
        if self.slots[slot] == "o":
            self.emit(Op("store_o", args=(stored,), arg=slot))  # takes the reference
            if stored != value:
                self.release(value)
        else:
            self.emit(Op("store", self.slots[slot], (stored,), arg=slot))
            self.release(value)
        if slot not in self.stored:
            self.stored.append(slot)
        self.current[slot] = (stored, concrete)

    def store(self, slot: int) -> None:
        value, concrete = self.stack[-1]
        stored = self.prepare_store(slot, value, concrete)
        self.pop()
        self.finish_store(slot, value, stored, concrete)

    def op_NOP(self, ins: dis.Instruction) -> int:
        return self.following[ins.offset]

    op_EXTENDED_ARG = op_NOP  # dis folds it into the next instruction's arg

    def op_LOAD_FAST(self, ins: dis.Instruction) -> int:
        self.load(ins.arg)  # type: ignore[arg-type]
        return self.following[ins.offset]

    def op_LOAD_FAST_CHECK(self, ins: dis.Instruction) -> int:
        self.load(ins.arg, checked=True)  # type: ignore[arg-type]
        return self.following[ins.offset]

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
        # Both guarded before either is stored, so that an exit finds the
        # instruction whole.
        (first, a), (second, b) = self.stack[-1], self.stack[-2]
        slot_a, slot_b = ins.arg >> 4, ins.arg & 15  # type: ignore[operator]
        stored_a = self.prepare_store(slot_a, first, a)
        stored_b = self.prepare_store(slot_b, second, b)
        self.pop(), self.pop()
        self.finish_store(slot_a, first, stored_a, a)
        self.finish_store(slot_b, second, stored_b, b)
        return self.following[ins.offset]

    def op_LOAD_CONST(self, ins: dis.Instruction) -> int:
        value = ins.argval
        kind = kind_of(value)
        if kind == "o":
            index = self.emit(Op("const_o", "o", arg=self.keep(value)), known=type(value))
        else:
            index = self.emit(Op("const", kind, arg=value))
        self.push(index, value)
        return self.following[ins.offset]

    def op_LOAD_DEREF(self, ins: dis.Instruction) -> int:
        cell = frames.read_local(self.raw, ins.arg)  # type: ignore[arg-type]
        try:
            value = cell.cell_contents  # type: ignore[attr-defined]
        except ValueError:
            raise Abort(f"free variable {ins.argval!r} is empty", final=False) from None
        self.push(self.emit(Op("deref", "o", arg=ins.arg, snapshot=self.snapshot())), value)
        return self.following[ins.offset]

    def op_STORE_DEREF(self, ins: dis.Instruction) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) == "n":
            raise Abort("storing NULL")
        boxed = self.boxed(value)
        self.pop()
        self.emit(Op("store_deref", args=(boxed,), arg=ins.arg))  # takes the reference
        if boxed != value:
            self.release(value)
        cell = frames.read_local(self.raw, ins.arg)  # type: ignore[arg-type]
        cell.cell_contents = concrete  # type: ignore[attr-defined]
        return self.following[ins.offset]

    def op_POP_TOP(self, ins: dis.Instruction) -> int:
        value, _ = self.pop()
        self.release(value)
        return self.following[ins.offset]

    def op_PUSH_NULL(self, ins: dis.Instruction) -> int:
        self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    # --- arithmetic ---------------------------------------------------------

    def op_BINARY_OP(self, ins: dis.Instruction) -> int:
        name = _BINARY.get(ins.arg % 13) if ins.arg is not None and ins.arg < 26 else None
        if name is None:
            raise Abort(f"binary operator {ins.argrepr}")
        (right, b), (left, a) = self.stack[-1], self.stack[-2]
        if type(a) not in (int, float, bool) or type(b) not in (int, float, bool) or \
                (type(a) is bool and type(b) is bool and name in ("and", "or", "xor")):  # a bool, not an int
            raise Abort(f"{ins.argrepr} on {type(a).__name__} and {type(b).__name__}")
        if name == "pow":  # its result's type depends on the values: boxed, guarded where used
            return self._boxed_arithmetic(ins, (left, a), (right, b), known=None)
        if type(a) is int and type(b) is int and name in _INT_OPS and \
                not (_fits(a, "i") and _fits(b, "i") and _fits(_int_result(name, a, b), "i")):
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
        except ArithmeticError:
            raise Abort(f"{ins.argrepr} raised while recording", final=False) from None
        if not _fits(result, kind):
            raise Abort(f"{ins.argrepr} left the 64-bit range while recording", final=False)
        snapshot = self.snapshot(stack=[*self.stack, (left, a), (right, b)])
        index = self.emit(Op("binary", kind, (x, y), arg=name, snapshot=snapshot))
        self.release(left, right)
        self.push(index, result)
        return self.following[ins.offset]

    def _boxed_arithmetic(self, ins: dis.Instruction, left: tuple[int, object], right: tuple[int, object],
                          known: type | None) -> int:
        """Int arithmetic beyond 64 bits, and `**`: boxed, through CPython's
        own operator (exact ints and floats are guarded, so it has no side
        effects and an error exits to the interpreter, which raises it)."""
        operands = [self.number_object(value, concrete) for value, concrete in (left, right)]
        try:
            result = _PYTHON[_BINARY[ins.arg % 13]](left[1], right[1])  # type: ignore[operator]
        except ArithmeticError:
            raise Abort(f"{ins.argrepr} raised while recording", final=False) from None
        index = self.emit(Op("binary_o", "o", tuple(operands), arg=ins.arg, snapshot=self.snapshot()),
                          known=known)
        self.pop(), self.pop()
        self.release(*(box for box, (value, _) in zip(operands, (left, right), strict=True) if box != value))
        self.release(left[0], right[0])
        self.push(index, result)
        return self.following[ins.offset]

    def number_object(self, value: int, concrete: object) -> int:
        """An int or float value as a guarded object (boxed if unboxed)."""
        if self.kind(value) == "o":
            self.guard_type(value, concrete)
            return value
        return self.boxed(value)

    def op_UNARY_NEGATIVE(self, ins: dis.Instruction) -> int:
        value, concrete = self.stack[-1]
        if type(concrete) not in (int, float):
            raise Abort(f"negation of {type(concrete).__name__}")
        number = self.number(value, concrete)
        snapshot = self.snapshot()
        self.pop()
        result = -concrete  # type: ignore[operator]
        kind = self.kind(number)
        if not _fits(result, kind):
            raise Abort("negation left the 64-bit range while recording", final=False)
        index = self.emit(Op("neg", kind, (number,), snapshot=snapshot))
        self.release(value)
        self.push(index, result)
        return self.following[ins.offset]

    # --- control ------------------------------------------------------------

    def op_COMPARE_OP(self, ins: dis.Instruction) -> int:
        (right, b), (left, a) = self.stack[-1], self.stack[-2]
        if type(a) not in (int, float) or type(b) not in (int, float):
            raise Abort(f"a comparison of {type(a).__name__} with {type(b).__name__}")
        if type(a) is not type(b):
            raise Abort("a comparison of an int with a float")  # Python compares them exactly
        name = _COMPARE[ins.arg >> 5]  # type: ignore[operator]
        if type(a) is int and not (_fits(a, "i") and _fits(b, "i")):
            operands = [self.number_object(value, concrete) for value, concrete in ((left, a), (right, b))]
            outcome = bool(_PYTHON[name](a, b))
            index = self.emit(Op("compare_o", "o", tuple(operands), arg=_COMPARE.index(name),
                                 snapshot=self.snapshot()), known=bool)
            self.pop(), self.pop()
            self.release(*(box for box, value in zip(operands, (left, right), strict=True) if box != value))
            self.release(left, right)
            self.push(index, outcome)
            return self.following[ins.offset]
        x, y = self.number(left, a), self.number(right, b)
        inputs = (self.pop(), self.pop())[::-1]
        outcome = bool(_PYTHON[name](a, b))
        following = self.instructions[self.following[ins.offset]]
        if following.opname == "EXTENDED_ARG":
            following = self.instructions[self.following[following.offset]]
        if not following.opname.startswith("POP_JUMP_IF_"):
            # Its result is a value: a bool (immortal, so never released in fact).
            index = self.emit(Op("compare_bool", "o", (x, y), arg=_COMPARE.index(name)), known=bool)
            self.release(*(value for value, _ in inputs))
            self.push(index, outcome)
            return self.following[ins.offset]
        self.pending = _Pending(name, self.kind(x), x, y, outcome, ins.start_offset, inputs)
        return self.following[ins.offset]

    def op_UNARY_NOT(self, ins: dis.Instruction) -> int:
        value, concrete = self.stack[-1]
        if self.kind(value) != "o" or self.guard_type(value, concrete) is not bool:
            raise Abort(f"`not` of a {type(concrete).__name__}")  # TO_BOOL comes first: a bool
        index = self.emit(Op("not", "o", (value,)), known=bool)
        self.pop()
        self.release(value)
        self.push(index, not concrete)
        return self.following[ins.offset]

    def op_TO_BOOL(self, ins: dis.Instruction) -> int:
        value, concrete = self.stack[-1]
        kind = self.kind(value)
        if kind == "o":
            known = self.guard_type(value, concrete)
            if known is bool:
                return self.following[ins.offset]  # the branch guards which bool
            if known not in (list, tuple):
                raise Abort(f"the truth of a {known.__name__}")
            self.pop()
            length = self.emit(Op("len", "i", (value,)))
            zero = self.emit(Op("const", "i", arg=0))
            self.pending = _Pending("NE", "i", length, zero, bool(concrete), ins.start_offset,
                                    ((value, concrete),))
            return self.following[ins.offset]
        if kind == "n":
            raise Abort("the truth of NULL")
        self.pop()
        zero = self.emit(Op("const", kind, arg=0 if kind == "i" else 0.0))
        self.pending = _Pending("NE", kind, value, zero, bool(concrete), ins.start_offset,
                                ((value, concrete),))
        return self.following[ins.offset]

    def _branch(self, ins: dis.Instruction, jump_if: bool) -> int:
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
        self.emit(Op("branch", pending.kind, (pending.left, pending.right),
                     arg=(pending.name, pending.outcome), snapshot=snapshot))
        self.release(*(value for value, _ in pending.inputs))
        return self._within_loop(ins.argval if taken else self.following[ins.offset])

    def _branch_on_bool(self, ins: dis.Instruction, jump_if: bool) -> int:
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

    def op_POP_JUMP_IF_FALSE(self, ins: dis.Instruction) -> int:
        return self._branch(ins, jump_if=False)

    def op_POP_JUMP_IF_TRUE(self, ins: dis.Instruction) -> int:
        return self._branch(ins, jump_if=True)

    def _branch_on_none(self, ins: dis.Instruction, jump_if_none: bool) -> int:
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

    def op_POP_JUMP_IF_NONE(self, ins: dis.Instruction) -> int:
        return self._branch_on_none(ins, jump_if_none=True)

    def op_POP_JUMP_IF_NOT_NONE(self, ins: dis.Instruction) -> int:
        return self._branch_on_none(ins, jump_if_none=False)

    def op_JUMP_FORWARD(self, ins: dis.Instruction) -> int:
        return self._within_loop(ins.argval)

    def op_JUMP_BACKWARD(self, ins: dis.Instruction) -> int | None:
        if ins.argval != self.dst:  # any backedge to the head closes the loop (`continue`)
            raise Abort("an inner loop")
        if self.stack:
            raise Abort("values left on the stack at the backedge")
        return None

    def op_FOR_ITER(self, ins: dis.Instruction) -> int:
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

    def inner_for_done(self, ins: dis.Instruction) -> int:
        """A nested `for` whose trace ran it to the end: its FOR_ITER pops the
        exhausted iterator and skips the END_FOR and POP_TOP after its target."""
        value, iterator = self.stack[-1]
        if self.kind(value) != "o" or type(iterator) not in _ITERATORS or operator.length_hint(iterator):
            raise Abort("a nested for loop that is not over")
        self.guard_type(value, iterator)
        self.emit(Op("guard_done", args=(value,), snapshot=self.snapshot()))
        self.pop()
        self.release(value)
        return self.following[self.following[ins.argval]]

    def _enumerate(self, ins: dis.Instruction, iterator: Any) -> int:
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

    # --- globals and attributes ---------------------------------------------

    def op_LOAD_GLOBAL(self, ins: dis.Instruction) -> int:
        name = self.code.co_names[ins.arg >> 1]  # type: ignore[operator]
        frame_globals, frame_builtins = frames.read_globals(self.raw)
        rt = runtime()
        version = rt.keys_version(frame_globals)
        if not version:
            raise Abort("globals without a keys version")
        index = rt.key_index(frame_globals, name)
        if index >= 0:
            concrete = frame_globals[name]
            op = Op("global", "o", arg=(index, version), snapshot=self.snapshot())
        else:
            builtins_version = rt.keys_version(frame_builtins)
            index = rt.key_index(frame_builtins, name)
            if not builtins_version or index < 0:
                raise Abort(f"the global {name!r} is not defined")
            concrete = frame_builtins[name]
            op = Op("builtin", "o", arg=(index, version, builtins_version), snapshot=self.snapshot())
        self.push(self.emit(op), concrete)
        if ins.arg & 1:  # type: ignore[operator]
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    def op_LOAD_ATTR(self, ins: dis.Instruction) -> int:
        name = self.code.co_names[ins.arg >> 1]  # type: ignore[operator]
        method = bool(ins.arg & 1)  # type: ignore[operator]
        owner, concrete = self.stack[-1]
        if self.kind(owner) != "o":
            raise Abort(f"attribute {name!r} of an unboxed {type(concrete).__name__}")
        known = self.guard_type(owner, concrete)
        if known is types.ModuleType:
            return self._module_attribute(ins, name, method, owner, concrete)
        version = self._type_version(known)
        descriptor = _class_attribute(known, name)
        self.emit(Op("guard_version", args=(owner,), arg=version, snapshot=self.snapshot()))
        if method and isinstance(descriptor, (types.FunctionType, types.MethodDescriptorType)) and \
                not _instance_has(concrete, name):
            # A method: the function itself (constant while the type's
            # version holds) with the owner as `self`.
            self.pop()
            self.push(self.emit(Op("const_o", "o", arg=self.keep(descriptor)),
                                known=type(descriptor)), descriptor)
            self.push(owner, concrete)
            return self.following[ins.offset]
        if _has_effects(known, descriptor):
            raise Abort(f"attribute {name!r} of {known.__name__} may run code")
        try:
            result = getattr(concrete, name)
        except AttributeError:
            raise Abort(f"attribute {name!r} raised while recording", final=False) from None
        value = self.emit(Op("attr", "o", (owner,), arg=self.keep(name), snapshot=self.snapshot()))
        self.pop()
        self.release(owner)
        self.push(value, result)
        if method:
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    def _module_attribute(self, ins: dis.Instruction, name: str, method: bool,
                          owner: int, module: Any) -> int:
        rt = runtime()
        namespace = vars(module)
        version, index = rt.keys_version(namespace), rt.key_index(namespace, name)
        if not version or index < 0:
            raise Abort(f"module attribute {name!r} not found")
        value = self.emit(Op("attr_module", "o", (owner,), arg=(index, version), snapshot=self.snapshot()))
        self.pop()
        self.release(owner)
        self.push(value, namespace[name])
        if method:
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    @staticmethod
    def _type_version(known: type) -> int:
        version = frames.type_version(known)
        if not version:
            raise Abort(f"type {known.__name__} has no version tag")
        return version

    # --- containers -----------------------------------------------------------

    def op_BINARY_SUBSCR(self, ins: dis.Instruction) -> int:
        (index, i), (seq, container) = self.stack[-1], self.stack[-2]
        if self.kind(seq) != "o" or type(container) not in (list, tuple):
            raise Abort(f"subscript of a {type(container).__name__}")
        if type(i) is not int:
            raise Abort(f"a {type(i).__name__} subscript")
        known = self.guard_type(seq, container)
        number = self.number(index, i)
        if not -len(container) <= i < len(container):  # type: ignore[arg-type]
            raise Abort("an index out of range while recording", final=False)
        name = "subscr_list" if known is list else "subscr_tuple"
        value = self.emit(Op(name, "o", (seq, number), snapshot=self.snapshot()))
        result = container[i]  # type: ignore[index]
        self.pop(), self.pop()
        self.release(seq, index)
        self.push(value, result)
        return self.following[ins.offset]

    def op_STORE_SUBSCR(self, ins: dis.Instruction) -> int:
        (index, i), (seq, container), (item, concrete) = self.stack[-1], self.stack[-2], self.stack[-3]
        if self.kind(seq) != "o" or type(container) is not list:
            raise Abort(f"item assignment to a {type(container).__name__}")
        if type(i) is not int:
            raise Abort(f"a {type(i).__name__} subscript")
        self.guard_type(seq, container)
        number = self.number(index, i)
        if not -len(container) <= i < len(container):
            raise Abort("an index out of range while recording", final=False)
        boxed = self.boxed(item)
        self.emit(Op("store_subscr_list", args=(boxed, seq, number), snapshot=self.snapshot()))
        self.stack[-3:] = []
        self.release(seq, index)
        container[i] = concrete
        return self.following[ins.offset]

    # --- calls ----------------------------------------------------------------

    def op_CALL(self, ins: dis.Instruction) -> int:
        count = ins.arg
        assert count is not None
        if len(self.stack) < count + 2:
            raise Abort("a call whose callable is on the loop's own stack")
        callable_, function = self.stack[-count - 2]
        self_or_null, self_concrete = self.stack[-count - 1]
        arguments = self.stack[len(self.stack) - count:]
        if self.kind(callable_) != "o":
            raise Abort("a call of an unboxed value")
        if id(function) in _FRAME_READERS or (type(function) is type and issubclass(function, super)):
            raise Abort(f"a call of {getattr(function, '__name__', function)!r}, which reads the frame")
        self.emit(Op("guard_is", args=(callable_,), arg=self.keep(function), snapshot=self.snapshot()))
        receiver = [] if self.kind(self_or_null) == "n" else [(self_or_null, self_concrete)]
        values = [*receiver, *arguments]
        if function is len and len(values) == 1 and type(values[0][1]) in (list, tuple):
            return self._len(ins, values[0])
        if function is list.append and len(values) == 2 and type(values[0][1]) is list:
            return self._append(ins, values)
        if id(function) in _MATH and all(type(c) in (int, float) for _, c in values):
            return self._math(ins, function, values)
        boxed = [self.boxed(value) for value, _ in values]
        snapshot = self.snapshot(reraise=callable_)
        result_index = self.emit(Op("call", "o", (callable_, *boxed), snapshot=snapshot))
        concrete_args = [concrete for _, concrete in values]
        try:
            result = function(*concrete_args)  # type: ignore[operator]
        except BaseException as error:  # the program's: raised again by the interpreter at the CALL
            # Without this frame of the recorder's, as if the interpreter had made the call.
            error.__traceback__ = error.__traceback__.tb_next if error.__traceback__ else None
            self.stack[-count - 2] = (callable_, runtime().reraiser(error))
            self.stop(Abort("a call raised while recording", final=False))
        self.stack[-count - 2:] = []
        for value, box in zip([v for v, _ in values], boxed, strict=True):
            if box != value:
                self.release(box)
        self.release(callable_, *(v for v, _ in values))
        self.push(result_index, result)
        return self.following[ins.offset]

    def _math(self, ins: dis.Instruction, function: Any, values: list[tuple[int, object]]) -> int:
        name, signatures = _MATH[id(function)]
        kinds = "".join(kind_of(concrete) for _, concrete in values)
        # math's functions take ints as floats, converted as int.__float__
        # rounds (exact below 2**53); `log` of an int has its own algorithm.
        wanted = kinds if kinds in signatures else None
        if wanted is None and signatures == ("f",) and kinds == "i" and name != "LOG":
            wanted = "f"
        if wanted is None:
            raise Abort(f"{name.lower()}() of {kinds.replace('i', 'int ').replace('f', 'float ').strip()}")
        try:
            result = function(*(concrete for _, concrete in values))
        except (ValueError, OverflowError):
            raise Abort(f"{name.lower()}() raised while recording", final=False) from None
        if not _fits(result, wanted[0]):
            raise Abort(f"{name.lower()}() left the 64-bit range while recording", final=False)
        numbers = [self.number(value, concrete) for value, concrete in values]
        numbers = [n if self.kind(n) == wanted[0] else self.emit(Op("to_float", "f", (n,))) for n in numbers]
        callable_ = self.stack[-len(values) - 2][0]
        index = self.emit(Op("math", wanted[0], tuple(numbers), arg=name, snapshot=self.snapshot()))
        self.stack[-len(values) - 2:] = []
        self.release(callable_, *(value for value, _ in values))
        self.push(index, result)
        return self.following[ins.offset]

    def _len(self, ins: dis.Instruction, value: tuple[int, object]) -> int:
        seq, container = value
        self.guard_type(seq, container)
        index = self.emit(Op("len", "i", (seq,)))
        callable_ = self.stack[-3][0]
        self.stack[-3:] = []
        self.release(callable_, seq)
        self.push(index, len(container))  # type: ignore[arg-type]
        return self.following[ins.offset]

    def _append(self, ins: dis.Instruction, values: list[tuple[int, object]]) -> int:
        (seq, container), (item, concrete) = values
        self.guard_type(seq, container)
        boxed = self.boxed(item)
        callable_ = self.stack[-3][0]
        self.emit(Op("append", args=(seq, boxed), snapshot=self.snapshot(reraise=callable_)))
        container.append(concrete)  # type: ignore[attr-defined]
        self.stack[-3:] = []
        if boxed != item:
            self.release(boxed)
        self.release(callable_, seq, item)
        self.push(self.emit(Op("const_o", "o", arg=id(None)), known=type(None)), None)
        return self.following[ins.offset]


def _class_attribute(known: type, name: str) -> object:
    for klass in known.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _instance_has(obj: object, name: str) -> bool:
    return name in getattr(obj, "__dict__", {})


def _has_effects(known: type, descriptor: object) -> bool:
    """Whether a generic attribute lookup on instances of `known` may run code
    (besides plain functions becoming bound methods)."""
    overridden = known.__getattribute__ is not object.__getattribute__  # type: ignore[comparison-overlap]
    if overridden or hasattr(known, "__getattr__"):
        return True
    if descriptor is None or isinstance(descriptor, (types.FunctionType, int, float, str, tuple)):
        return False
    return hasattr(type(descriptor), "__get__")


def record(code: CodeType, dst: int, src: int, raw_frame: int,
           bridge: BridgeStart | None = None, inner: InnerLookup | None = None) -> Recording:
    """Run and record the iteration from `dst` (or the bridge's start) to
    the backedge at `src`."""
    return _Recorder(code, dst, src, raw_frame, bridge, inner).run()

