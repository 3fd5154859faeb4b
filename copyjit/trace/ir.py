"""What a recording is made of: ops, their snapshots, and the recording.

Plain classes with slots, not dataclasses: these are imported at the first
hot loop of every program, and `dataclasses` (with the `inspect` it pulls
in) cost ~9 ms there.
"""

from __future__ import annotations

from _weakref import ref  # weakref.ref, without the weakref module

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from types import CodeType
    from typing import Final

INT64: Final = (-(2**63), 2**63 - 1)
# Ops that make no value (nothing refers to them by index).
NO_VALUE: Final = frozenset({
    "store", "store_o", "store_deref", "branch", "release", "guard_type", "guard_is", "guard_is_not",
    "guard_version", "store_subscr_list", "append", "inner_loop", "guard_done", "store_global",
    "guard_globals", "guard_size", "nested_loop", "guard_function", "guard_keys",
    "store_subscr_list_f", "store_over_f", "loop_head", "store_attr", "store_attr_f", "store_attr_i",
    "store_v", "guard_not_same", "guard_min_size", "guard_watched", "guard_same", "guard_distinct",
    "share"})
# Values that are no reference of the trace's own: a constant the trace's
# constants hold, a local the frame holds all the loop (licm). An exit that
# hands one to the frame makes one.
BORROWED: Final = frozenset({"const_b", "load_b"})
# Items read without a reference of their own (borrow.py): the container
# holds them. They live in registers like any value; an exit that hands one
# to the frame makes a reference to it. (And the value a local kept in
# the trace had at the iteration's start, opt/virtual.py: `load_v`. And
# globals, builtins and module attributes loaded once before a loop that
# runs no code, opt/licm.py: their dicts hold them all the loop.)
BORROWED_ITEMS: Final = frozenset({"subscr_list_b", "subscr_tuple_b", "list_item_b", "tuple_item_b",
                                   "list_next_b", "tuple_next_b", "attr_instance_b", "load_v",
                                   "global_b", "builtin_b", "attr_module_b"})


def shared_locals(op: Op) -> tuple[int, int]:
    """A `share` op's locals: the copy, and the local it copies (record_base, _flag_copies)."""
    pair = op.arg
    assert isinstance(pair, tuple)
    return pair[0], pair[1]


def local_name(code: CodeType, slot: int) -> str:
    """The name of a frame slot: a local, or a cell or free variable (whose
    slots come after co_varnames: LOAD_FAST reads a cell to make a closure)."""
    return code._varname_from_oparg(slot)  # type: ignore[attr-defined, no-any-return]  # what dis uses


# The reason of an abort for a MemoryError in the JIT's own work (recording,
# lowering, emitting): the program's memory is exhausted, not a bug of the
# JIT's, so the loop is tried again later, not given up.
NO_MEMORY: Final = "out of memory while compiling"


class Abort(Exception):
    """The loop cannot be traced (`final`) or not right now; `soon`: try again
    at the very next backedge, not after another threshold's worth."""

    def __init__(self, reason: str, final: bool = True, soon: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final
        self.soon = soon
        # The code and bytecode offset being recorded when it stopped (set by
        # the recorder; None for an abort of the lowering): explain's "why not".
        self.where: tuple[CodeType, int] | None = None
        # A local slot the loop's next recordings must keep as an object
        # (record_base.prepare_store): the JIT remembers it per loop.
        self.keep_object: int | None = None


class _Record:
    """Equality and repr by fields, for the immutable records below."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Record) and type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Snapshot(_Record):
    """Where an exit resumes: the bytecode, and the recorded values on the
    stack above the loop's own (bottom first). `normal`: leaving the loop,
    or a pending signal, not a sign of a bad trace. `reraise`: a call
    raised, and this value (its callable, on the stack) becomes a builtin
    that raises the exception when the interpreter re-executes the CALL.
    `on_frame`: a nested loop's trace left the frame there, with values of
    these kinds ("o", "n") of this iteration on its stack already, below
    `stack` (see InnerCall.alternatives). `drop`: objects the trace owns
    that the frame does not get back (an exit inside an inlined call
    resumes at the CALL: the callee's values are released)."""

    __slots__ = ("drop", "normal", "offset", "on_frame", "reraise", "stack")

    def __init__(self, offset: int, stack: tuple[int, ...], normal: bool = False,
                 reraise: int | None = None, on_frame: tuple[str, ...] | None = None,
                 drop: tuple[int, ...] = ()) -> None:
        self.offset, self.stack, self.normal, self.reraise = offset, stack, normal, reraise
        self.on_frame, self.drop = on_frame, drop

    def _fields(self) -> tuple[object, ...]:  # (hashed at every exit the lowering makes)
        return self.drop, self.normal, self.offset, self.on_frame, self.reraise, self.stack

    def values(self) -> tuple[int, ...]:
        """The values an exit here needs: the stack's, the re-raised one,
        and those it releases."""
        values = self.stack if self.reraise is None else (*self.stack, self.reraise)
        return (*values, *self.drop) if self.drop else values


class Op(_Record):
    """One recorded step; ops that make a value are referred to by index.
    `name`: one of the lowering's op_* methods; `kind`: of the result ("i",
    "f", "o", "n"), or of a branch's operands; `arg`: the local slot,
    constant, operator, version..."""

    __slots__ = ("arg", "args", "kind", "name", "snapshot")

    def __init__(self, name: str, kind: str = "", args: tuple[int, ...] = (), arg: object = None,
                 snapshot: Snapshot | None = None) -> None:
        self.name, self.kind, self.args, self.arg, self.snapshot = name, kind, args, arg, snapshot

    def uses(self) -> tuple[int, ...]:
        """The values this op uses: its arguments, and its snapshot's values
        (an exit puts them back on the frame's stack)."""
        return self.args if self.snapshot is None else (*self.args, *self.snapshot.values())


# Where an op was recorded: its code (weakly: explain's records must not keep
# a code alive, so that its traces go when it dies) and bytecode offset.
Position = tuple["ref[CodeType]", int]


class Recording:
    """One iteration: its ops, every local it reads or writes (slot -> kind),
    the locals it writes (in order of first store), and the objects the
    trace's code will point at. `positions`, when known: per op, the code
    and bytecode offset of the instruction that recorded it (an inlined
    callee's own), for `python -m copyjit explain` to name its source line."""

    def __init__(self, code: CodeType, dst: int, src: int, ops: list[Op], slots: dict[int, str],
                 stored: list[int], constants: list[object],
                 positions: list[Position] | None = None) -> None:
        # Weakly: the JIT keeps recordings as long as their traces, and a
        # code object must be free to die (its traces are then freed:
        # jit.py, _forget). A trace only runs, and a bridge is only recorded,
        # in a frame of its code, which keeps it alive meanwhile.
        self._code = None if code is None else ref(code)
        self.dst, self.src = dst, src
        self.ops, self.slots, self.stored, self.constants = ops, slots, stored, constants
        self.positions = positions
        self.inlining: dict[str, int] = {}  # calls inlined, or why not -> count (for the stats)
        # opt.passes.runs_code's answer (its plain form), once asked: a
        # recording's ops do not change once it is made, and several passes
        # ask it of the same one.
        self.runs: list[bool] | None = None

    @property
    def code(self) -> CodeType:
        return None if self._code is None else self._code()  # type: ignore[return-value]

    def may_store(self) -> set[int]:
        """The locals an iteration may store: this recording's, and those
        of the nested loops its trace may run inline (on the same homes)."""
        stored = set(self.stored)
        for op in self.ops:
            if isinstance(op.arg, InnerCall) and op.arg.body is not None:
                stored |= op.arg.body.rec.may_store()
        return stored


class BridgeStart(_Record):
    """Where a bridge starts: a parent trace's exit, which left the frame at
    `offset` with values of these kinds on top of its stack (in the parent's
    spill slots), and below them values of the `on_frame` kinds (on the
    frame's stack: the bridge pops them), if it is the exit of a nested
    loop's trace (Snapshot.on_frame)."""

    __slots__ = ("holders", "kinds", "offset", "on_frame", "parent_stored")

    def __init__(self, offset: int, kinds: tuple[str, ...], on_frame: tuple[str, ...] | None = None,
                 parent_stored: frozenset[int] = frozenset(), holders: tuple[int, ...] = ()) -> None:
        self.offset, self.kinds, self.on_frame = offset, kinds, on_frame
        # Per value of `kinds`, the number local the parent stores that
        # holds it at the exit, or -1 (record_base, exit_holders).
        self.holders = holders
        # The unboxed locals the parent's loop may store (the frame's box
        # of one of those is not its home's number).
        self.parent_stored = parent_stored


class InnerCall(_Record):
    """A nested loop run by its own trace from inside this one's: its
    location_record's address, the trace_cell it had when recorded, the
    exit it took then (it left its loop there), its head's offset, the kinds
    of the values that exit pushed, and what must live as long as the outer
    trace does."""

    __slots__ = ("alternatives", "body", "cell", "head", "inputs", "keep", "record", "status")

    def __init__(self, record: int, cell: int, status: int, head: int, inputs: tuple[str, ...],
                 keep: object, alternatives: tuple[tuple[int, Snapshot], ...] = (),
                 body: InnerBody | None = None) -> None:
        self.record, self.cell, self.status, self.head = record, cell, status, head
        self.inputs, self.keep = inputs, keep
        # The nested trace's other exits that leave its loop (a `break` where
        # the recording saw it run out, say), each as its status and a
        # snapshot of this trace's: where that exit resumes, with what is on
        # the frame's stack then (`on_frame`). The outer trace goes on from
        # there through exits of its own, which get bridges when hot, rather
        # than leave for good.
        self.alternatives = alternatives
        # The nested trace's recording, when the lowering may run the nested
        # loop inside this trace's code rather than call its trace (lower.py,
        # _InlinedLoop); None: always call it.
        self.body = body


class InnerBody:
    """A nested loop's trace as the loop around it may inline it: its
    (optimized) recording, and the snapshot of each of its exits (exit k
    resumes at snapshots[k - 1]), by which the inlined copy's exits are
    matched to the statuses of InnerCall. Compared by identity."""

    __slots__ = ("rec", "snapshots")

    def __init__(self, rec: Recording, snapshots: tuple[Snapshot, ...]) -> None:
        self.rec, self.snapshots = rec, snapshots

