"""The recorder's machinery: running one iteration instruction by
instruction, handing the frame back, values and their kinds, locals and
constants, and nested loops. The instructions themselves are handled in
record_numbers.py (arithmetic and control) and recorder.py (objects, calls).
"""

from __future__ import annotations

import operator
from _weakref import ref  # weakref.ref, without the weakref module
from types import CodeType  # loaded with the interpreter: costs nothing

from copyjit.backend.frames import UNBOUND
from copyjit.trace import bytecode, frames
from copyjit.trace.ir import (
    INT64,
    NO_MEMORY,
    Abort,
    BridgeStart,
    InnerCall,
    Op,
    Position,
    Recording,
    Snapshot,
    local_name,
    shared_locals,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~3 ms at the first hot loop)

if TYPE_CHECKING:
    from types import CodeType
    from typing import Final, NoReturn

    from copyjit.trace.inner import Decoded, InnerLookup  # Decoded: what copyjit.trace.bytecode decodes

MAX_INSTRUCTIONS: Final = 500
RANGE_ITERATOR: Final = type(iter(range(0)))
LIST_ITERATOR: Final[type] = type(iter([]))
TUPLE_ITERATOR: Final[type] = type(iter(()))
NULL: Final = frames.NULL
# What may follow a comparison that is branched on (POP_JUMP_IF_NONE tests
# the comparison's bool for None: a value, not a branch on it).
_BRANCHES: Final = ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "EXTENDED_ARG")
# Ops after which the trace reads the frame's locals again (code may have
# rebound them): what a local held before is not known to be its value.
_REBINDING: Final = frozenset({"call", "inner_loop", "nested_loop"})
ITERATORS: Final[tuple[type, ...]] = (RANGE_ITERATOR, LIST_ITERATOR, TUPLE_ITERATOR)
_ITERABLES: Final[tuple[type, ...]] = (list, tuple, range, enumerate, *ITERATORS)


def kind_of(value: object) -> str:
    if type(value) is int and INT64[0] <= value <= INT64[1]:
        return "i"
    if type(value) is float:
        return "f"
    return "o"


def fits(result: object, kind: str) -> bool:
    """Whether a result computed while recording is of the recorded kind."""
    return (type(result) is int and INT64[0] <= result <= INT64[1]) if kind == "i" \
        else type(result) is float




class Pending:
    """A comparison (LT ... GE of two values of `kind`), truth test, or
    `is` test ("is", "is not": kind "o"), waiting for the branch that uses
    it; `offset` is the COMPARE_OP's, TO_BOOL's or IS_OP's, `inputs` what
    that instruction took from the stack."""

    __slots__ = ("inputs", "kind", "left", "name", "offset", "outcome", "right")

    def __init__(self, name: str, kind: str, left: int, right: int, outcome: bool, offset: int,
                 inputs: tuple[tuple[int, object], ...]) -> None:
        self.name, self.kind, self.left, self.right = name, kind, left, right
        self.outcome, self.offset, self.inputs = outcome, offset, inputs


class Handback(Exception):
    """Recording stopped: hand the frame back at `offset` (the stack as it was
    before that instruction), then raise `abort`."""

    def __init__(self, abort: Abort, offset: int, stack: list[tuple[int, object]]) -> None:
        self.abort, self.offset, self.stack = abort, offset, stack


def _hold(holding: dict[int, set[int]], index: int, op: Op, stored: set[int] | frozenset[int]) -> None:
    """`holding` (stored number local -> the values it holds) after `op`."""
    if op.name in ("load", "store") and op.kind in ("i", "f") and op.arg in stored:
        slot = op.arg
        assert isinstance(slot, int)
        if op.name == "store":
            holding[slot] = {op.args[0]}
        else:
            holding.setdefault(slot, set()).add(index)
    elif op.name in _REBINDING:  # the frame's locals unboxed again after it
        holding.clear()


def exit_holders(rec: Recording, snapshot: Snapshot, stored: set[int] | frozenset[int]) -> tuple[int, ...]:
    """Per value on the stack of the exit at `snapshot`, the number local of
    `stored` that holds it there, or -1 (for its bridge: BridgeStart.holders)."""
    at = next((index for index, op in enumerate(rec.ops) if op.snapshot is snapshot), None)
    if at is None:  # (an exit the lowering made: the loop's head, a nested loop's)
        return (-1,) * len(snapshot.stack)
    holding: dict[int, set[int]] = {}
    for index, op in enumerate(rec.ops[:at]):
        _hold(holding, index, op, stored)
    return tuple(next((slot for slot, values in holding.items() if value in values), -1)
                 for value in snapshot.stack)


def _flag_copies(ops: list[Op], stored: set[int]) -> None:
    """Decide each copy `y = x` of a stored number local (a `share` op, arg
    (y, x, the address of the code's constant both are bound to, or 0)).
    Where the program may see x and y bound to one object (_both_seen),
    y gets x's object, made then if none exists: arg (y, x, True, c).
    Else, where x may have an object already (it is boxed or shared
    elsewhere, so it has a flag, lower.py's `shadow`), y gets that one if
    it exists: (y, x, False, c), and then y has a flag too. Else nothing
    (arg None): `a, b = b, a + b` costs nothing."""
    flagged = {op.arg for op in ops if op.name == "box" and op.arg is not None}
    copies: list[tuple[int, int, int, bool]] = []
    for index, op in enumerate(ops):
        if op.name == "share" and op.arg is not None:
            copy, original = shared_locals(op)
            if original in stored:
                seen = _both_seen(ops, index, copy, original)
                copies.append((index, copy, original, seen))
                if seen:
                    flagged |= {copy, original}
    grown = True
    while grown:  # (a copy of a copy)
        grown = False
        for _, copy, original, seen in copies:
            if not seen and original in flagged and copy not in flagged:
                flagged.add(copy)
                grown = True
    kept = {index: seen for index, _, original, seen in copies if seen or original in flagged}
    for index, op in enumerate(ops):
        if op.name == "share" and op.arg is not None:
            constant = op.arg[2]  # type: ignore[index]
            decided = (*shared_locals(op), kept[index], constant) if index in kept else None
            ops[index] = Op("share", "", op.args, decided)


def _both_seen(ops: list[Op], index: int, local: int, source: int) -> bool:
    """Whether the program may see `local` and `source` bound to one object
    after the copy at `index`: an op that may leave (an exit writes both
    back), box or run code comes before either is stored again, or none
    does before the iteration ends (the next one starts with both).
    (`a, b = b, a + b` stores b right after a: no one can tell.)"""
    for op in ops[index + 1:]:
        if op.name == "store" and op.arg in (local, source):
            return False
        if op.snapshot is not None or op.name in _REBINDING:
            return True
    return True


class RecorderBase:
    def __init__(self, code: CodeType, dst: int, src: int, raw_frame: int,
                 bridge: BridgeStart | None = None, inner: InnerLookup | None = None) -> None:
        self.code, self.dst, self.src, self.raw = code, dst, src, raw_frame
        self.offset = dst if bridge is None else bridge.offset  # the instruction being recorded
        self.bridge = bridge
        self.inner = inner
        # Bridge inputs still on the frame's stack (while recording).
        self.on_frame = len(bridge.kinds) + len(bridge.on_frame or ()) if bridge else 0
        self.moved = False  # an inner loop ran: the frame's IP is not at the backedge any more
        self.after_inner: int | None = None
        self.instructions, self.following = bytecode.decoded(code)
        # The loop runs from dst to its last backedge: with `continue` there
        # are several, and recording may have started at any of them.
        edges = bytecode.backedges(code)
        self.end = max(offset for offset, target in edges if target == dst)
        # Heads of loops nested in this one: run by their own traces.
        self.inner_heads = {target for offset, target in edges if dst < target <= offset <= self.end}
        self.ops: list[Op] = []
        self.positions: list[Position] = []  # per op: where it was recorded (explain)
        self.code_refs: dict[int, ref[CodeType]] = {}  # code id -> a weak reference to it
        self.slots: dict[int, str] = {}
        self.stored: list[int] = []
        self.constants: list[object] = []
        self.current: dict[int, tuple[int, object]] = {}  # slot -> (value, concrete)
        self.entry_stack = frames.read_stack(raw_frame, code)
        self.stack: list[tuple[int, object]] = []  # recorded values above the entry stack
        self.types: dict[int, type] = {}  # values whose type the trace knows (guarded or made so)
        if bridge is not None:
            # The parent's exit pushed these; the bridge finds them unboxed
            # in the parent's spill slots. Below them, after a nested loop's
            # trace, values of the iteration on the frame's stack: the
            # bridge pops them (the top one first).
            inputs = self.entry_stack[len(self.entry_stack) - self.on_frame:]
            self.entry_stack = self.entry_stack[:len(self.entry_stack) - self.on_frame]
            popped = [self.emit(Op("frame_input", kind)) for kind in reversed(bridge.on_frame or ())]
            values = [*reversed(popped), *(self.emit(Op("input", kind)) for kind in bridge.kinds)]
            for value, concrete in zip(values, inputs, strict=True):
                self.push(value, NULL if concrete is UNBOUND else concrete)
            if bridge.on_frame is not None:
                self.after_inner = bridge.offset  # the nested loop has run
        self.pending: Pending | None = None
        self.calls = 0  # calls recorded so far: any may rebind an object local (frame.f_locals)
        self.stored_at: dict[int, int] = {}  # object local -> self.calls when it was stored
        # Locals kept as objects whatever they hold: an earlier recording of
        # the loop found one bound to an object the program has (prepare_store).
        self.objects: frozenset[int] = frozenset()
        self.offset = dst

    def emit(self, op: Op, known: type | None = None) -> int:
        self.ops.append(op)
        code_ref = self.code_refs.get(id(self.code))
        if code_ref is None:
            code_ref = self.code_refs[id(self.code)] = ref(self.code)
        self.positions.append((code_ref, self.offset))
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
        abort: Abort | None = None
        try:
            self._run()
        except Handback as stop:
            if stop.offset >= 0:  # else the frame is exact already (an inner trace left it so)
                self.hand_back(stop.offset, stop.stack)
            abort = stop.abort
            abort.where = (self.code, self.offset)
        if abort is not None:
            # Raised here, not in the handler, where `stop` would become its
            # __context__ (stop.abort and that make a cycle), and no longer a
            # local once raised (this frame, in its traceback, would hold it):
            # either cycle, through the traceback, kept the recorder and
            # every value the recording saw alive until the cyclic GC ran
            # (10 MB more peak memory on benchmarks/dicts.py; finalizers late).
            try:
                raise abort
            finally:
                del abort
        self.hand_back(None, [])
        recording = Recording(self.code, self.dst, self.src, self.ops, self.slots, self.stored,
                              self.constants, self.positions)
        self.frame_boxes(recording)
        return recording

    def frame_boxes(self, recording: Recording) -> None:
        """A number local no iteration stores is the frame's object all
        along: boxing it gives that object, not a new one (`log.append(x)`,
        `row[k] = x`: `row[k] is x`, a NaN found in a list by identity, as
        in CPython). Done when the recording is whole, which knows every
        store (a later one in the iteration, a nested loop's, a bridge's
        parent's)."""
        stored = recording.may_store()
        if self.bridge is not None:
            stored |= self.bridge.parent_stored
        ops = recording.ops
        for op in ops:
            slot = op.arg
            if op.name != "store" or not isinstance(slot, int):
                continue
            source = ops[op.args[0]]
            if source.name == "load" and source.arg not in stored and source.arg != slot:
                # `y = x`: y is x's very object, which an exit would box
                # anew. Recorded again with y an object local, bound to the
                # frame's object of x (as a box of x is, here).
                abort = Abort(f"local {local_name(self.code, slot)!r} bound to an object, kept unboxed",
                              final=False, soon=True)
                abort.keep_object = slot
                raise abort
        # The values each stored number local holds at this point of the
        # iteration (its last store's, its loads since; a bridge's, the
        # values the parent's exit hands it that one held).
        holding: dict[int, set[int]] = {}
        if self.bridge is not None:
            inputs = [index for index, op in enumerate(ops) if op.name == "input"]
            for value, slot in zip(inputs, self.bridge.holders, strict=False):
                if slot >= 0:
                    holding.setdefault(slot, set()).add(value)
        for index, op in enumerate(ops):
            if op.name == "box":
                load = ops[op.args[0]]
                if load.name == "load" and load.kind in ("i", "f") and load.arg not in stored:
                    ops[index] = Op("load_o", "o", (), load.arg)
                    continue
                # A box of what a local the loop stores holds: that local's
                # object, bound in the frame (lower.py, `shadow`).
                local = next((slot for slot, values in holding.items() if op.args[0] in values), None)
                if local is not None:
                    ops[index] = Op("box", "o", op.args, local, op.snapshot)
            else:
                _hold(holding, index, op, stored)
        _flag_copies(ops, stored)

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
                    raise Handback(Abort("a comparison whose result is not a branch"), pending.offset,
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
                raise Handback(abort, self.offset, before) from None
            except Handback:
                raise
            except MemoryError:  # the program's memory is exhausted: try again later
                raise Handback(Abort(NO_MEMORY, final=False), self.offset, before) from None
            except Exception as error:  # a bug of the recorder's: still hand the frame back whole
                # (handlers make their effects last, after anything that can fail)
                internal = Abort(f"internal error: {type(error).__name__}: {error}")
                raise Handback(internal, self.offset, before) from error
            if next_offset is None:
                return
            offset = next_offset
        # Handed back at the next instruction, which has not run.
        raise Handback(Abort(f"more than {MAX_INSTRUCTIONS} instructions in one iteration"), offset,
                       list(self.stack))

    def stop(self, abort: Abort) -> NoReturn:
        raise Handback(abort, self.offset, list(self.stack))

    def hand_back(self, offset: int | None, stack: list[tuple[int, object]]) -> None:
        """Write what the iteration changed into the frame; with an offset,
        also push `stack` and point the frame at that instruction."""
        for slot, (_, concrete) in self.current.items():
            if self.slots.get(slot) != "o":  # object locals are written when stored
                frames.write_local(self.raw, slot, concrete)
        frames.drop(self.raw, self.on_frame)  # what the recording took from the stack
        self.on_frame = 0
        if offset is None and (self.bridge is not None or self.moved):
            offset = self.dst  # the frame is not at the backedge: go on at the loop's head
        if offset is not None and (offset != self.dst or stack or self.current or self.bridge or self.moved):
            frames.push(self.raw, [concrete for _, concrete in stack])
            frames.set_instruction(self.raw, self.code, offset)

    # --- nested loops ---------------------------------------------------------

    def run_inner(self, ins: Decoded) -> int:
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
        try:
            status = found.run(self.raw)
        except MemoryError:
            # Not entered (the emergency reserve is spent: runtime.c), or its
            # status not boxed: either way the frame is exact where it is.
            raise Handback(Abort("no memory to run a nested loop's trace", final=False), -1, []) from None
        snapshot = found.snapshot(status)
        if snapshot is None or not snapshot.normal or snapshot.reraise is not None or \
                not self.dst <= snapshot.offset <= self.end:
            raise Handback(Abort("an inner loop left its trace early", final=False), -1, [])
        depth = len(snapshot.stack)
        pushed = frames.read_stack(self.raw, self.code)[len(self.entry_stack):]
        if len(pushed) != len(stack) + depth:
            raise Handback(Abort("an inner loop changed the stack"), -1, [])
        if snapshot.offset == ins.start_offset and not (
                ins.opname == "FOR_ITER" and stack and depth == 0
                and type(pushed[-1]) in ITERATORS and operator.length_hint(pushed[-1]) == 0):
            # At its head, a nested loop is over only if its iterator is.
            raise Handback(Abort("an inner loop left its trace at its head", final=False), -1, [])
        inputs = [NULL if value is UNBOUND else value for value in pushed[len(stack):]]
        # Numbers the nested trace's exit boxed are taken back unboxed: that
        # exit always boxes them from values of those kinds.
        kinds = found.pushed_kinds(status) or ()
        if len(kinds) != len(inputs) or any(kind in "if" and kind_of(value) != kind
                                            for kind, value in zip(kinds, inputs, strict=False)):
            kinds = tuple("n" if value is NULL else "o" for value in inputs)
        # The nested trace's other ways out of its loop, each continued by
        # an exit of this trace (found on the frame: this iteration's values
        # pushed for the nested trace, and what its exit pushed).
        ours = tuple("n" if self.kind(value) == "n" else "o" for value, _ in stack)
        alternatives = tuple((number, Snapshot(exit.offset, (), on_frame=ours + pushed_kinds))
                             for number, exit, pushed_kinds in found.leaving_exits()
                             if number != status and self.dst <= exit.offset <= self.end)
        call = InnerCall(found.record, found.cell, status, ins.start_offset, kinds, found.keep, alternatives,
                         found.inline_body(status))
        self.emit(Op("nested_loop" if alternatives else "inner_loop", args=tuple(value for value, _ in stack),
                     arg=call, snapshot=Snapshot(ins.start_offset, tuple(value for value, _ in stack))))
        frames.drop(self.raw, len(stack) + depth)  # the recording holds them again
        self.stack = list(stack)
        for kind, concrete in zip(kinds, inputs, strict=True):
            self.push(self.emit(Op("inner_input", kind)), concrete)
        self.after_inner = snapshot.offset
        return snapshot.offset

    def op_GET_ITER(self, ins: Decoded) -> int:
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

    def op_END_FOR(self, ins: Decoded) -> int:
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

    def box_on_stack(self, position: int) -> int:
        """Box the value at `position` of the recorded stack, in place: from
        here on, exits of this instruction hand over the box (rather than box
        the number again and leak this one)."""
        value, concrete = self.stack[position]
        boxed = self.boxed(value)
        self.stack[position] = (boxed, concrete)
        return boxed

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
        name = local_name(self.code, slot)
        if slot in self.current and self.slots.get(slot) != "o":
            stored, concrete = self.current[slot]
        else:  # object locals are in the frame, where a callee may rebind them (f_locals)
            stored, concrete = -1, frames.read_local(self.raw, slot)
            if concrete is UNBOUND:
                raise Abort(f"local {name!r} is unbound")
            if slot in self.current and self.current[slot][1] is concrete and \
                    self.stored_at.get(slot) == self.calls:
                # What this iteration stored, with no call in between that
                # could have rebound it: its type is known.
                stored = self.current[slot][0]
        kind = self.slots.setdefault(slot, "o" if slot in self.objects else kind_of(concrete))
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

    def unboxed_to_frame(self) -> None:
        """Before a call: this iteration's unboxed locals into the frame,
        where the callee may read or rebind them (`sys._getframe(1).f_locals`,
        a debugger); after it, they are read from the frame again, as the
        trace does (lower.py, op_call)."""
        for slot in [slot for slot in self.current if self.slots.get(slot) != "o"]:
            frames.write_local(self.raw, slot, self.current.pop(slot)[1])

    def home(self, slot: int, concrete: object, boxed: bool = False) -> str:
        """The kind of a local: unboxed ("i", "f") or an object in the frame.
        `boxed`: the value stored is an object already."""
        if slot not in self.slots:
            # Stored before it is read: its value at the trace's entry is not
            # used, but an unboxed local is unboxed (and so type-checked) at
            # the entry too. Kept in the frame instead when that value has
            # another kind (a name reused, like `_`), or when what is stored
            # is an object anyway: unboxing it would only check, at every
            # entry, the type of a value left over from other code.
            entry = frames.read_local(self.raw, slot)
            kind = kind_of(concrete)
            if (entry is not UNBOUND and kind_of(entry) != kind) or (boxed and self.bridge is None) \
                    or slot in self.objects:
                kind = "o"
            self.slots[slot] = kind
        home = self.slots[slot]
        if home != "o" and kind_of(concrete) != home:
            raise Abort(f"local {local_name(self.code, slot)!r} changes type in the loop")
        return home

    def prepare_store(self, slot: int, position: int) -> int:
        """Guard and convert the stack value at `position`, about to be stored
        (nothing changes yet: the STORE instruction is still whole if a guard
        fails)."""
        value, concrete = self.stack[position]
        if self.kind(value) == "n":
            raise Abort("storing NULL")
        if self.home(slot, concrete, boxed=self.kind(value) == "o") == "o":
            return self.box_on_stack(position)
        if self.kind(value) == "o":
            # An object the program has (an item, another local's, a call's
            # result), bound to a local the trace keeps unboxed: the local
            # must stay that very object (`x is item`; a NaN found in a list
            # by identity), and an exit would box a new one. The loop is
            # recorded again with the local kept as an object.
            abort = Abort(f"local {local_name(self.code, slot)!r} bound to an object, kept unboxed",
                          final=False, soon=True)
            abort.keep_object = slot
            raise abort
        return self.number(value, concrete)

    def finish_store(self, slot: int, value: int, stored: int, concrete: object) -> None:
        if self.slots[slot] == "o":
            self.emit(Op("store_o", args=(stored,), arg=slot))  # takes the reference
            frames.write_local(self.raw, slot, concrete)  # the trace too stores object locals at once
            self.stored_at[slot] = self.calls
            if stored != value:
                self.release(value)
        else:
            self.emit(Op("store", self.slots[slot], (stored,), arg=slot))
            self.release(value)
            source = self.copied(slot, stored)
            if source is not None:  # `y = x`: y is x's object (frame_boxes drops it if none can tell)
                # (`y = x = 0.0`: the code's constant, which both are bound to.)
                constant = self.keep(concrete) if self.ops[stored].name == "const" and \
                    any(concrete is item for item in self.code.co_consts) else 0
                self.emit(Op("share", "", (stored,), (slot, source, constant)))
        if slot not in self.stored:
            self.stored.append(slot)
        self.current[slot] = (stored, concrete)

    def copied(self, slot: int, value: int) -> int | None:
        """The number local other than `slot` that holds `value` now (its
        last store's, or a load of it since), if any."""
        for other, (held, _) in self.current.items():
            if held == value and other != slot and self.slots.get(other, "o") != "o":
                return other
        op = self.ops[value]
        if op.name != "load" or op.arg == slot or not self.held(op.arg, value):  # type: ignore[arg-type]
            return None
        return op.arg  # type: ignore[return-value]

    def held(self, slot: int, value: int) -> bool:
        """Whether `value` is a load of number local `slot` that still holds
        it (not stored again since, nor rebound by code that ran)."""
        op = self.ops[value]
        if op.name != "load" or op.arg != slot:
            return False
        return not any(later.name in _REBINDING or (later.name == "store" and later.arg == slot)
                       for later in self.ops[value + 1:])

    def store(self, slot: int) -> None:
        if self.stack and self.slots.get(slot, "o") != "o" and self.held(slot, self.stack[-1][0]):
            # `x = x` of a number local: its binding, the frame's box, is
            # unchanged (a store would box it anew at the exits).
            self.pop()
            return
        stored = self.prepare_store(slot, len(self.stack) - 1)
        value, concrete = self.pop()
        self.finish_store(slot, value, stored, concrete)

    def op_NOP(self, ins: Decoded) -> int:
        return self.following[ins.offset]

    def op_EXTENDED_ARG(self, ins: Decoded) -> int:  # dis folds it into the next instruction's arg
        return self.op_NOP(ins)  # (a method, not an alias of one: mypyc compiles no alias)

    def op_LOAD_FAST(self, ins: Decoded) -> int:
        self.load(ins.arg)  # type: ignore[arg-type]
        return self.following[ins.offset]

    def op_LOAD_FAST_CHECK(self, ins: Decoded) -> int:
        self.load(ins.arg, checked=True)  # type: ignore[arg-type]
        return self.following[ins.offset]

    def op_LOAD_FAST_LOAD_FAST(self, ins: Decoded) -> int:
        self.load(ins.arg >> 4)  # type: ignore[operator]
        self.load(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_STORE_FAST(self, ins: Decoded) -> int:
        self.store(ins.arg)  # type: ignore[arg-type]
        return self.following[ins.offset]

    def op_STORE_FAST_LOAD_FAST(self, ins: Decoded) -> int:
        self.store(ins.arg >> 4)  # type: ignore[operator]
        self.load(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_STORE_FAST_STORE_FAST(self, ins: Decoded) -> int:
        # Both guarded before either is stored, so that an exit finds the
        # instruction whole.
        slot_a, slot_b = ins.arg >> 4, ins.arg & 15  # type: ignore[operator]
        if len(self.stack) < 2:
            raise Abort("an instruction that takes values from the loop's own stack")
        stored_a = self.prepare_store(slot_a, len(self.stack) - 1)
        stored_b = self.prepare_store(slot_b, len(self.stack) - 2)
        (first, a), (second, b) = self.pop(), self.pop()
        self.finish_store(slot_a, first, stored_a, a)
        self.finish_store(slot_b, second, stored_b, b)
        return self.following[ins.offset]

    def op_LOAD_CONST(self, ins: Decoded) -> int:
        value = ins.argval
        kind = kind_of(value)
        if kind == "o":
            index = self.emit(Op("const_o", "o", arg=self.keep(value)), known=type(value))
        else:
            index = self.emit(Op("const", kind, arg=value))
        self.push(index, value)
        return self.following[ins.offset]

    def op_LOAD_DEREF(self, ins: Decoded) -> int:
        cell = frames.read_local(self.raw, ins.arg)  # type: ignore[arg-type]
        try:
            value = cell.cell_contents  # type: ignore[attr-defined]
        except ValueError:
            raise Abort(f"free variable {ins.argval!r} is empty", final=False) from None
        self.push(self.emit(Op("deref", "o", arg=ins.arg, snapshot=self.snapshot())), value)
        return self.following[ins.offset]

    def op_STORE_DEREF(self, ins: Decoded) -> int:
        if self.kind(self.stack[-1][0]) == "n":
            raise Abort("storing NULL")
        boxed = self.box_on_stack(len(self.stack) - 1)
        _, concrete = self.pop()
        self.emit(Op("store_deref", args=(boxed,), arg=ins.arg))  # takes the reference
        cell = frames.read_local(self.raw, ins.arg)  # type: ignore[arg-type]
        cell.cell_contents = concrete  # type: ignore[attr-defined]
        return self.following[ins.offset]

    def op_POP_TOP(self, ins: Decoded) -> int:
        value, _ = self.pop()
        self.release(value)
        return self.following[ins.offset]

    def op_PUSH_NULL(self, ins: Decoded) -> int:
        self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    def op_COPY(self, ins: Decoded) -> int:
        depth = ins.arg
        assert depth is not None
        if depth > len(self.stack):
            raise Abort("an instruction that takes values from the loop's own stack")
        value, concrete = self.stack[-depth]
        kind = self.kind(value)
        if kind == "n":
            raise Abort("a copy of NULL")
        if kind == "o":  # one more reference, which the copy owns (and releases)
            value = self.emit(Op("copy_o", "o", (value,)), known=self.types.get(value))
        self.push(value, concrete)  # an unboxed number is a value like any other: used twice
        return self.following[ins.offset]

    def op_SWAP(self, ins: Decoded) -> int:
        depth = ins.arg
        assert depth is not None
        if depth > len(self.stack):
            raise Abort("an instruction that takes values from the loop's own stack")
        self.stack[-1], self.stack[-depth] = self.stack[-depth], self.stack[-1]
        return self.following[ins.offset]
