"""From a recording to backend instructions: rows (asm.make: instructions
whose targets are labels, and the labels), then assembled.

Layout of a trace:

    pre-header   unbox every unboxed local the loop uses into its home
                 spill slot (each unbox is a type guard: a mismatch exits at
                 once); object locals stay in the frame
    loop:        the recorded ops, values in spill slots, computed in
                 registers; guards jump to exit stubs
                 _JUMP loop
    exit stubs   first jump to the exit's bridge if one is linked; else box
                 every unboxed local back into the frame, push the recorded
                 stack values, point instr_ptr at the bytecode to resume
                 at, return the exit's number

A bridge runs in its parent's activation (the parent's homes and the exit's
values are in their spill slots) and ends by jumping to the parent's loop
head. A nested loop's trace is called with the frame handed over, and the
frame is taken back when it leaves by the recorded exit.

An object in a spill slot is a reference the trace owns: the recorder
releases each one when its instruction is done with it, and an exit stub
hands the live ones to the frame's stack. A call that raised leaves through
a stub that first puts a re-raiser in place of the callable, so that the
interpreter re-executes the CALL and raises there.

Values live in registers where copyjit/trace/regalloc.py finds room for
them, else in spill slots; ops not in _ALLOCATED are barriers that find
every value in its spill slot.
"""

from __future__ import annotations

import ctypes
import math
import sys
from _struct import pack as _pack  # (struct's own code, without the struct module)

from copyjit.backend import asm
from copyjit.backend.asm import Row, make
from copyjit.backend.emitter import Instruction
from copyjit.backend.runtime import buffer_address, runtime
from copyjit.trace.faults import BRANCH, force
from copyjit.trace.frames import instruction_address
from copyjit.trace.ir import (
    BORROWED,
    BORROWED_ITEMS,
    NO_VALUE,
    Abort,
    InnerBody,
    InnerCall,
    Op,
    Recording,
    Snapshot,
    local_name,
    shared_locals,
)
from copyjit.trace.jit import ENTRY_EXIT
from copyjit.trace.record_base import LIST_ITERATOR, RANGE_ITERATOR, TUPLE_ITERATOR
from copyjit.trace.regalloc import RELOAD as _RELOAD
from copyjit.trace.regalloc import SPILL as _SPILL
from copyjit.trace.regalloc import SUFFIX as _KIND
from copyjit.trace.regalloc import Allocator
from copyjit.uops import OPARG_MAX, SPILL_SLOTS, UOPS

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Final

# What a trace returns when a nested loop's trace left the frame exact
# somewhere else: not one of its own exits (native code does not count it).
HANDED_OVER: Final = 99_999
_NEGATED: Final = {"LT": "GE", "LE": "GT", "EQ": "NE", "NE": "EQ", "GT": "LE", "GE": "LT"}
_NO_VALUE: Final = NO_VALUE | {"null"}  # ops that need no spill slot
_NONE: Final[frozenset[str]] = frozenset()
# The uops that leave no register but their outputs holding a value
# (Uop.clobbers; tests/test_regalloc.py checks this is all of them).
CLOBBERING: Final = frozenset({"_POW_FLOAT_CONST", "_SIN_FLOAT", "_COS_FLOAT", "_EXP_FLOAT", "_LOG_FLOAT"})
# Ops that cannot leave the trace or read a local's home (with no
# snapshot): what may come between an early spill to a home and the store
# it stands for (early_home).
_QUIET: Final = frozenset({"list_item_b", "tuple_item_b", "list_item", "tuple_item", "const", "const_b",
                           "null", "store", "store_v", "binary", "to_float", "neg", "share"})
# Ops whose values the allocator places; any other op is a barrier (every
# live value goes to its spill slot first, and it uses fixed registers).
_ALLOCATED: Final = frozenset({
    "load", "store", "const", "to_float", "binary", "compare_bool", "not", "unbox_bool", "neg", "branch",
    "math", "range_next", "load_o", "store_o", "deref", "store_deref", "const_o", "input", "null", "second",
    "release", "guard_type", "guard_is", "guard_is_not", "guard_version", "guard_keys", "unbox", "box",
    "global", "builtin", "guard_globals", "store_global", "attr_module", "attr", "attr_instance",
    "binary_o", "add_int_o", "compare_o", "get_iter", "guard_done", "len", "len_str", "append",
    "subscr_list", "subscr_tuple", "store_subscr_list", "list_next", "tuple_next", "enumerate_list",
    "enumerate_tuple", "inner_input", "copy_o", "guard_size", "guard_min_size", "tuple_item", "list_item",
    "store_subscr_list_f", "store_over_f", "guard_function", "range_iter", "const_b", "load_b", "store_attr",
    "store_attr_f", "store_attr_i", "store_v", "guard_not_same", "watch_epoch", "guard_watched", "guard_same",
    "guard_distinct", "share",
}) | BORROWED_ITEMS


class Lowered:
    """A trace as instructions (`text`: their text form), the snapshot of each exit
    (exit k >= 1 resumes at snapshots[k - 1]), the objects its code points
    at, how values were laid out (for bridges), the instruction a bridge
    jumps back to, and where each exit's bridge is linked (at 8 * k)."""

    def __init__(self, instructions: list[Instruction], snapshots: list[Snapshot],
                 constants: tuple[object, ...], lowering: _Lowering, loop_index: int = 0,
                 links: bytearray | None = None, inlined_exits: frozenset[int] = frozenset(),
                 forced: dict[str, int] | None = None) -> None:
        self.instructions, self.snapshots = instructions, snapshots
        self.constants, self.lowering, self.loop_index = constants, lowering, loop_index
        self.links = links if links is not None else bytearray()
        # The exits inside a nested loop run inline (_InlinedLoop): never
        # bridged, and not where the trace leaves its own loop.
        self.inlined_exits = inlined_exits
        self.forced = forced or {}  # guard kind -> how many were made to fail (faults.py)
        # A bridge's: where its code goes on from when the exit's table has
        # made its moves (0: it has no other start; run_bridge).
        self.entry_index = 0

    @property
    def text(self) -> str:
        """The text form (asm.parse reads it), made when asked for."""
        return "\n".join(self.lowering.lines) + "\n"


class _Lowering:
    def __init__(self, rec: Recording, counter: int, parent: _Lowering | None = None,
                 exit_number: int = 0, first_exit: int = 1, fail: frozenset[str] = frozenset(),
                 flagged: frozenset[int] = frozenset()) -> None:
        self.rec = rec
        # The guard kinds made to fail (COPYJIT_FAIL_GUARDS, faults.py), and
        # how many of each were.
        self.fail = fail
        self.forced: dict[str, int] = {}
        self.counter = counter
        self.parent, self.exit_number, self.first_exit = parent, exit_number, first_exit
        self.home: dict[int, int] = {}  # unboxed local -> its spill slot
        self.temp: dict[int, int] = {}  # value -> its spill slot
        top = self._bridge_layout() if parent is not None else 0
        self.own_homes = [slot for slot, kind in rec.slots.items() if kind != "o" and slot not in self.home]
        for slot in self.own_homes:
            self.home[slot], top = top, top + 1
        # Object locals kept in the trace (opt/virtual.py; a loop's, never
        # a bridge's) -> their spill slots, and the list the entry checks.
        self.virtual: dict[int, int] = {}
        for slot in dict.fromkeys(_arg(op) for op in rec.ops if op.name in ("store_v", "load_v")):
            self.virtual[slot], top = top, top + 1
        # For each, the kept locals after it (its length, then the slots), one after another.
        kept = list(self.virtual)
        self.virtual_list = bytearray(b"".join(n.to_bytes(8, "little") for k in range(len(kept))
                                               for n in (len(kept) - k - 1, *kept[k + 1:])))
        # Number locals whose value the program may keep as an object (a box
        # the recording marked with the local: record_base, frame_boxes) ->
        # the spill slot of a flag: 1 while the frame holds the very object
        # of the local's value (from the entry, a box, a write before a call,
        # an unbox after one), 0 from a store on (no object of it exists
        # yet). A box then gives that object, and an exit writes none. A
        # bridge and a nested loop run inline use their loop's flags, and
        # have flags of their own for their own homes; the locals `flagged`
        # have one too (those its bridges box: wanted_flags).
        self.shadow: dict[int, int] = {} if parent is None else dict(parent.shadow)
        for slot in dict.fromkeys([*_flagged_locals(rec), *sorted(flagged)]):
            if slot in self.home and slot not in self.shadow and (parent is None or slot in self.own_homes):
                self.shadow[slot], top = top, top + 1
        self.calls, self.top = _value_slots(rec, self.temp, top)
        # The unboxed locals an exit writes back: those an iteration may
        # store (nested loops run inline included), and in a bridge its
        # parent's too. Not one only read: the frame's box stays, as in
        # CPython (`x is y` after the loop; a bridge that stores a local its
        # parent only reads writes it back before the loop goes on: run_bridge).
        stored = rec.may_store()
        self.written: list[int] = [slot for slot in self.home if slot in stored
                                   or (parent is not None and slot in parent.written)]
        self.written_rows: dict[int, tuple[Row, Row]] = {}  # slot -> what write_back writes
        self.rows: list[Row] = []
        # (row, recording, op): the rows from there on are that op's; a
        # recording of None ends the body (what follows is exit stubs).
        # Only read by `python -m copyjit explain`, to tie code to its op.
        self.marks: list[tuple[int, Recording | None, int]] = []
        self.snapshots: list[Snapshot] = []
        self.exit_spills: list[list[Row]] = []  # per snapshot: what its stub spills first
        # Side exits that resume at a snapshot equal to an earlier one's
        # (every exit inside an inlined call resumes at its CALL) share that
        # exit's number and stub: exit number -> (label, spills) of the others.
        self.exit_numbers: dict[tuple[object, ...], int] = {}  # by the snapshot's fields
        self.sites: dict[int, list[tuple[str, list[Row]]]] = {}
        # Per snapshot, the lowering whose values its stub hands back (this
        # one, or a nested loop's it runs inline), and the numbers of those
        # exits that are inside such a loop.
        self.exit_owner: list[_Lowering] = []
        self.inlined_exits: set[int] = set()
        self.inlined_loops = 0
        # Locals that live in a register for the whole loop (a loop trace's
        # most used ones, at most two of each bank): slot -> register.
        self.pinned = _pinned(rec, self.own_homes) if parent is None else {}
        self.to_homes: tuple[Row, ...] | None = None  # pinned_to_homes()
        self.alloc = Allocator({v: rec.ops[v].kind for v in self.temp}, self.temp, _uses(rec.ops), self.rows,
                               frozenset(self.pinned.values()), _borrowable(rec, self.pinned))
        self.alloc.early_home = self.early_home
        self.labels = 0
        self.leave_label, self.leave_used = "leave", False  # the end exit stubs share
        self.before_loop = False  # lowering the ops before loop_head
        # The type of the loop's iterator, checked where the trace enters the
        # loop (check_iterator); a bridge runs in its parent's activation,
        # on the iterator the parent checked.
        self.checked_iterator: type | None = None if parent is None else parent.checked_iterator
        self.loop_index = 0
        self.handed: list[int] = []  # labels of nested loop calls
        self.tails: list[Row] = []  # after the body: the exact exits after calls (homes_from_frame)
        # Snapshots (by id) whose exits find the frame with every unboxed
        # local already (a call's that raised): they end without writing back.
        self.exact_snapshots: set[int] = set()
        self.exact_used = False
        # Unboxed locals the frame may not have as they are (op_call writes
        # them before a call): at the loop's head those the loop stores (a
        # bridge writes back those it stores that the loop does not:
        # run_bridge); in a bridge, the parent's (stored before its exit,
        # maybe).
        self.stored = stored
        self.dirty: set[int] = set(parent.home) if parent is not None else \
            {slot for slot in self.home if slot in self.stored}
        self.exit_counts = bytearray()  # a bridge's: how often each of its exits was taken
        # What the exit stubs made as data read (data_row), in 8-byte words
        # (a nested loop run inline adds to its outer trace's).
        self.exit_words: list[int] = []
        self.table_base = 0  # their address, once made (finish)
        self.data_rows = [0]  # how many exits read it (shared, as the words)
        self.data_exits: dict[int, tuple[list[int], int | None]] = {}  # id(snapshot) -> (tail, link)

    def _bridge_layout(self) -> int:
        """A bridge runs in its parent's activation: the parent's homes and
        the values of its exit's snapshot are in their spill slots already."""
        parent = self.parent
        assert parent is not None
        # Every parent home, used by the bridge or not: the bridge's exits
        # write them all back (the parent's exit would have).
        for slot, home in parent.home.items():
            kind = self.rec.slots.get(slot)
            if kind is not None and kind != parent.rec.slots[slot]:
                raise Abort(f"local {local_name(self.rec.code, slot)!r} has another type in the bridge")
            self.home[slot] = home
        for slot, kind in self.rec.slots.items():  # (the JIT records bridges so: not expected)
            if kind != "o" and parent.rec.slots.get(slot) == "o":
                raise Abort(f"local {local_name(self.rec.code, slot)!r} is unboxed in the bridge only")
        inputs = [v for v, op in enumerate(self.rec.ops) if op.name == "input"]
        snapshot = parent.snapshots[self.exit_number - 1]
        for value, parent_value in zip(inputs, snapshot.stack, strict=True):
            if self.rec.ops[value].kind != "n":
                self.temp[value] = parent.temp[parent_value]
        return parent.top

    def add(self, name: str, ins: tuple[str, ...] = (), outs: tuple[str, ...] = (), oparg: int = 0,
            operand0: int = 0, operand1: int = 0, jump: str | None = None, exit: str | None = None,
            error: str | None = None) -> None:
        """One instruction (its targets: labels)."""
        self.rows.append(make(name, ins, outs, oparg, operand0, operand1, jump, exit, error))

    @property
    def lines(self) -> list[str]:
        """The rows as lines of the text form (for explain and the log);
        an exit's table at its address, as in its instruction (finish)."""
        base = self.table_base
        if not base:
            return [asm.row_text(row) for row in self.rows]
        return [asm.row_text(asm.at_table(row, _DATA_EXITS, base)) for row in self.rows]

    def exit_label(self, snapshot: Snapshot | None) -> str:
        """A new exit at the uop being lowered (values where they are now)."""
        assert snapshot is not None
        needed = [value for value in snapshot.values() if self.rec.ops[value].name not in BORROWED]
        # Pinned locals to their homes first: the copies in exit_spills may
        # use any register as scratch. (Before the loop, the homes are
        # current and the pinned registers not loaded yet.)
        spills = self.alloc.exit_spills(needed)
        if not self.before_loop:
            spills[:0] = self.pinned_to_homes()
        if snapshot.normal or snapshot.reraise is not None:  # (a guard's: a table, exit_tail; not paired)
            spills = _paired(spills)
        # (Not normal exits: the JIT tells them apart by number, the
        # eval-breaker check from the loop's end, a nested loop's status.
        # Nor exits of a nested loop run inline: its snapshots name its
        # own recording's values.)
        shares = not snapshot.normal and not isinstance(self, _InlinedLoop)
        # (Keyed by the fields, made once here: hashing a Snapshot makes them
        # at each hash and each comparison.)
        key = snapshot._fields() if shares else ()
        number = self.exit_numbers.get(key) if shares else None
        if number is not None:
            sites = self.sites.setdefault(number, [])
            sites.append((f"exit{number}_{len(sites) + 1}", spills))
            return sites[-1][0]
        self.snapshots.append(snapshot)
        self.exit_spills.append(spills)
        self.exit_owner.append(self)
        if shares:
            self.exit_numbers[key] = len(self.snapshots)
        return f"exit{len(self.snapshots)}"

    def shared(self, stub: list[Row], number: int) -> list[Row]:
        """Stub `number` (this trace's), and the other exits that resume at
        its snapshot: each spills what its registers hold, then goes on
        with the stub after its own spills."""
        sites = self.sites.get(number)
        if not sites:
            return stub
        snapshot = self.snapshots[number - 1]
        data = self.exit_owner[number - 1].data_exits.get(id(snapshot))
        if data is not None:  # a table each, with its own moves
            rows = list(stub)
            # (A bridge's _COUNT; not the stub's try of its bridge's direct
            # start, which makes the moves of the stub's own guard.)
            counts = [row for row in stub[1:-1] if type(row) is Instruction and row.name == "_COUNT"]
            for label, spills in sites:
                moves = _moves(spills)
                if moves is None:  # (not expected: its stub's were moves)
                    raise Abort(f"an exit's spills are not moves: {spills}")
                rows.append(label)
                rows += counts
                rows.append(self.data_row(moves, *data, snapshot))
            return rows
        at = 1 + len(self.exit_spills[number - 1])
        rest = f"exit{number}_rest"
        rows = [*stub[:at], rest, *stub[at:]]
        for label, spills in sites:
            rows += [label, *spills, make("_JUMP", jump=rest)]
        return rows

    def reload(self, value: int, register: str) -> None:
        """Into a fixed register, in a barrier op (the value is in its slot)."""
        self.add(_RELOAD[self.rec.ops[value].kind], outs=(register,), oparg=self.temp[value])

    def spill(self, value: int, register: str) -> None:
        """A barrier op's result, from a fixed register to its slot."""
        self.add(_SPILL[self.rec.ops[value].kind], (register,), oparg=self.temp[value])
        self.alloc.in_slot(value, self.temp[value])

    def uop(self, name: str, ins: tuple[int, ...] = (), outs: tuple[int, ...] = (), oparg: int = 0,
            operand0: int = 0, operand1: int = 0, exit_op: Op | None = None,
            error_op: Op | None = None) -> None:
        """One uop on allocated registers: inputs where they are (reloaded
        if need be), the exit at that state, outputs in free registers."""
        registers: list[str] = []
        for value in ins:  # (each kept from being evicted by the next's reload)
            register = self.alloc.use(value, frozenset(registers) if registers else _NONE)
            registers.append(register)
        exit = None if exit_op is None else self.exit_label(exit_op.snapshot)
        error = None if error_op is None else self.exit_label(error_op.snapshot)
        self.alloc.release_dead(self.alloc.now + 1)
        kept = self.clobbered() if name in CLOBBERING else None
        written: set[str] = set()
        results = []
        for value in outs:
            home_register = self.store_target(value) if len(outs) == 1 else None
            if home_register is not None:  # made right where its local lives
                self.alloc.place(value, home_register)
                results.append(home_register)
                continue
            register = self.alloc.define(value, frozenset(written))
            written.add(register)
            results.append(register)
        self.rows.append(make(name, tuple(registers), tuple(results), oparg, operand0, operand1, None, exit,
                              error))
        if kept:  # the pinned locals the uop clobbered, back in their registers
            self.rows += [make(_RELOAD[self.rec.slots[slot]], (), (register,), self.home[slot])
                          for slot, register in kept if register not in results]

    def clobbered(self) -> list[tuple[int, str]]:
        """Before a uop that clobbers every register but its outputs (after
        its exits, which find them intact): every live value in a register
        is in memory after this, and no value is in a register. The pinned
        locals whose register holds their value here are written to their
        homes; they are returned, for the uop's caller to load them back."""
        alloc, now = self.alloc, self.alloc.now
        # (Before the loop, the pinned registers hold nothing yet. Where a
        # local's value is dead, its register may hold a value of the allocator's.)
        dead_here = alloc.borrowed.get(("i", now), ()) + alloc.borrowed.get(("f", now), ())
        kept = [] if self.before_loop else \
            [(slot, register) for slot, register in self.pinned.items() if register not in dead_here]
        pinned = {register for _, register in kept}
        self.rows += [make(_SPILL[self.rec.slots[slot]], (register,), (), self.home[slot])
                      for slot, register in kept]
        for register, value in list(alloc.holder.items()):
            if register in pinned:
                continue
            if alloc.last_use(value) > now:  # (an input used by this uop only: its exits come first)
                alloc.evict(register)
            else:
                alloc.drop_register(value)
        return kept

    def instruction_count(self) -> int:
        return sum(1 for row in self.rows if type(row) is not str)

    def pinned_to_homes(self) -> tuple[Row, ...]:
        """Rows that write the pinned locals' registers to their homes (at
        every exit: made once)."""
        made = self.to_homes
        if made is None:
            made = self.to_homes = tuple(_paired([
                make(f"_SPILL_{_KIND[self.rec.slots[slot]]}", (register,), oparg=self.home[slot])
                for slot, register in self.pinned.items()]))
        return made

    def pinned_from_homes(self) -> None:
        for slot, register in self.pinned.items():
            self.add(f"_RELOAD_{_KIND[self.rec.slots[slot]]}", outs=(register,), oparg=self.home[slot])

    def store_target(self, value: int) -> str | None:
        """The pinned register of the local the very next op stores `value`
        in (nothing can leave between: the local's old value is intact at
        every exit before the store), if any."""
        following = value + 1
        if following < len(self.rec.ops):
            op = self.rec.ops[following]
            if op.name == "store" and op.args == (value,):
                return self.pinned.get(op.arg)  # type: ignore[call-overload, no-any-return]
        return None

    def wanted_flags(self, bridge: Recording) -> frozenset[int]:
        """The locals of this loop's that a bridge's recording boxes for
        the program to keep (not only to pass to a call: the callee keeping
        it is rare, and calls are many) or shares, and that have no flag:
        its code would box them anew."""
        passed = {"call", "release"}
        taken: dict[int, set[str]] = {}
        for op in bridge.ops:
            for value in op.args:
                taken.setdefault(value, set()).add(op.name)
        wanted: set[int] = set()
        for index, op in enumerate(bridge.ops):
            if op.name == "box" and op.arg is not None and not taken.get(index, passed) <= passed:
                wanted.add(_arg(op))
            elif op.name == "share" and op.arg is not None:
                wanted.update(shared_locals(op))
        return frozenset(slot for slot in wanted if slot in self.home and slot not in self.shadow)

    def mark_shadows(self, slots: Iterable[int]) -> None:
        """The frame holds the object of these locals' values (their homes
        were just unboxed from it): their flags, if they have one, are set."""
        for slot in slots:
            flag = self.shadow.get(slot)
            if flag is not None:
                self.add("_MARK_SLOT", oparg=flag)

    def unbox_homes(self, unbound: str = "unbound") -> None:
        for slot in self.own_homes:
            kind = self.rec.slots[slot]
            r = f"{kind}0"
            # A local bound when recording may be unbound now (bound on one
            # path only): that, or another type, leaves before anything changed.
            self.add(f"_UNBOX_LOCAL_{_KIND[kind]}", outs=(r,), oparg=slot, exit=unbound)
            self.add(f"_SPILL_{_KIND[kind]}", (r,), oparg=self.home[slot])
        # (Its own only: a bridge's parent's and an inlined loop's outer's
        # flags are as they were left; where bridges come back, after this,
        # they keep theirs.)
        self.mark_shadows(self.own_homes)

    def check_iterator(self, unbound: str) -> None:
        """Where the trace enters its loop, before its first iteration: that
        the iterator its FOR_ITER steps (the top of the frame's stack) is of
        the type its iterations step (range_next, list_next, tuple_next).
        They then step it unchecked (_KNOWN): while the trace runs, that
        stack slot is its own (a bridge comes back to the same iterator)."""
        for op in self.rec.ops:
            kind = _ITERATED.get(op.name)
            if kind is not None:
                self.add("_GUARD_TOS_TYPE", operand0=id(kind), exit=unbound)
                self.checked_iterator = kind
                return

    def iteration(self, name: str, op: Op) -> str:
        """`name`, a _KNOWN uop that steps the loop's iterator unchecked:
        only where check_iterator checked it to be of the type `op` steps
        (a bridge that starts at the loop's head steps it too, in its
        parent's activation)."""
        if self.checked_iterator is not _ITERATED[op.name]:
            raise Abort("a loop's iterator stepped where its type was not checked")
        return name

    def run(self) -> Lowered:
        self.unbox_homes()
        self.check_iterator("unbound")
        self.loop_index = self.instruction_count()  # where bridges come back
        self.virtual_from_frame()
        # Ops before loop_head (licm) run here, once and after each bridge.
        head = self.pre_header()
        self.pinned_from_homes()
        self.rows.append("loop")
        self.add("_CHECK_EVAL_BREAKER", exit=self.exit_label(Snapshot(self.rec.dst, (), normal=True)))
        self.add("_COUNT", operand0=self.counter)  # iterations, to tell short loops
        self.body(head + 1)
        self.add("_JUMP", jump="loop")
        self.rows.append("unbound")  # (or not the type recorded)
        self.add("_SET_IP", operand0=instruction_address(self.rec.code, self.rec.dst))
        self.add("_EXIT_TRACE", oparg=ENTRY_EXIT)
        # Per exit, where its bridge is linked: at 8 * k, its start after
        # the exit's table made its moves; at 8 * (count + k), its start
        # that makes them itself (a guard's exit tries that one first).
        count = len(self.snapshots) + 1
        links = bytearray(16 * count)
        for number, snapshot in enumerate(self.snapshots, 1):
            bridged = not snapshot.normal and number not in self.inlined_exits
            link = buffer_address(links) + 8 * number if bridged else None
            direct = buffer_address(links) + 8 * (count + number) if bridged else None
            stub = self.exit_owner[number - 1].stub(number, snapshot, link, self.exit_spills[number - 1],
                                                    direct=direct)
            self.rows += self.shared(stub, number)
        return self.finish(links)

    def pre_header(self) -> int:
        """Lower the ops before loop_head, if any (licm); the pinned
        registers are not loaded yet: their exits leave them be. Returns
        loop_head's index (-1: none)."""
        head = next((i for i, op in enumerate(self.rec.ops) if op.name == "loop_head"), -1)
        if head >= 0:
            self.before_loop = True
            self.body(0, head)
            self.before_loop = False
            self.alloc.flush()  # (what they made lives on in its spill slot)
        return head

    def virtual_from_frame(self) -> None:
        """The kept object locals' homes from the frame (at the entry, and
        after a bridge, which wrote them back), then the check that writing
        them back at an exit releases nothing that runs code (else leave at
        the loop's head: the homes are what the frame holds)."""
        if not self.virtual:
            return
        for slot, home in self.virtual.items():
            self.add("_LOAD_FAST_BORROW_O", outs=("i0",), oparg=slot)
            self.add("_SPILL_INT", ("i0",), oparg=home)
        self.before_loop = True
        leave = self.exit_label(Snapshot(self.rec.dst, (), normal=True))
        self.before_loop = False
        later = buffer_address(self.virtual_list)
        for k, slot in enumerate(self.virtual):  # (all homes loaded: the exit writes them back)
            self.add("_CHECK_VIRTUAL_LOCAL", oparg=slot, operand0=later, exit=leave)
            later += 8 * (len(self.virtual) - k)  # (past its length and the later slots)

    def virtual_to_frame(self, rows: list[Row], lowering: _Lowering) -> None:
        for slot, home in lowering.virtual.items():
            rows += _reload_i0(home), make("_STORE_VIRTUAL_LEAVING", ("i0",), oparg=slot)

    def run_bridge(self, loop_address: int) -> Lowered:
        """The rest of an iteration from a parent's exit, then back to the
        parent's loop (its homes up to date in their slots)."""
        assert self.parent is not None
        entry = self.direct_start()
        self.add("_COUNT", operand0=self.counter)  # its entries (explain)
        self.virtual_to_frame(self.rows, self.parent)  # (the bridge reads them there)
        self.unbox_homes()
        self.body()
        # The parent reads these from the frame; and it takes the frame to
        # have its homes it never stores itself (op_call), so a store of
        # one of those is written back too (not of the others: a box at
        # every pass through a bridge, as in `n = 3 * n + 1`).
        assert self.parent is not None
        for slot in self.home:
            if slot in self.rec.stored and (slot in self.own_homes or slot not in self.parent.stored):
                self.write_back(self.rows, slot)
        self.add("_GOTO", operand0=loop_address)
        self.rows.append("unbound")  # (or not the type recorded) leave as the parent's exit would have
        parent_snapshot = self.parent.snapshots[self.exit_number - 1]
        stub = self.parent.stub(self.exit_number, parent_snapshot, None, released=True, shared=False)
        self.rows += stub[1:]
        # Native code counts a loop trace's exits by the number it returns,
        # but not a bridge's (beyond its record's): each of its exits counts
        # itself, for `python -m copyjit explain` (the trace keeps the counters).
        self.exit_counts = bytearray(8 * len(self.snapshots))
        # (A bridge may have no exit: its one guard was decided, opt/bridge.py.)
        counts = buffer_address(self.exit_counts) if self.snapshots else 0
        for number, snapshot in enumerate(self.snapshots):
            # After the spills, where the exits sharing this stub join it.
            count = make("_COUNT", operand0=counts + 8 * number)
            stub = self.stub(self.first_exit + number, snapshot, None, self.exit_spills[number], count=count)
            stub[0] = f"exit{number + 1}"
            self.rows += self.shared(stub, number + 1)
        lowered = self.finish(bytearray())
        lowered.entry_index = entry
        return lowered

    def direct_start(self) -> int:
        """If the parent's exit is a table's (_EXIT_DATA), what its
        table would do before the bridge runs, as code (the exit's moves,
        then its references and releases), for the exit to jump to with the
        registers as the guard left them; returns where the bridge starts
        after the table's moves, otherwise (its other exits at that
        snapshot, which make other moves: shared). A hot guard then costs
        three instructions and its moves, not a call of the table's routine."""
        parent = self.parent
        assert parent is not None
        snapshot = parent.snapshots[self.exit_number - 1]
        if id(snapshot) not in parent.data_exits:
            return 0
        self.rows += _paired(parent.exit_spills[self.exit_number - 1])
        parent.own_stack(self.rows, snapshot.stack)
        parent.release_drops(self.rows, snapshot)
        return self.instruction_count()

    def body(self, start: int = 0, end: int | None = None) -> None:
        marks, rows, rec = self.marks, self.rows, self.rec
        for index in range(start, len(rec.ops) if end is None else end):
            op = rec.ops[index]
            marks.append((len(rows), rec, index))
            self.alloc.now = index
            self.alloc.release_dead(index)
            if op.name in _ALLOCATED:
                getattr(self, f"op_{op.name}")(index, op)
                continue
            self.alloc.flush()
            rows += self.pinned_to_homes()
            getattr(self, f"op_{op.name}")(index, op)
            self.pinned_from_homes()
        marks.append((len(rows), None, -1))

    def finish(self, links: bytearray) -> Lowered:
        self.handed_stubs()
        self.rows += self.tails
        for owner in dict.fromkeys([self, *self.exit_owner]):  # this lowering's, a nested loop's run inline
            if owner.leave_used:
                self.rows += owner.leave()
            if owner.exact_used:
                self.rows += [f"{owner.leave_label}_exact", make("_EXIT_TRACE_I", ("i1",))]
        # Unboxing a value this trace has just boxed failed (pop_value): it
        # cannot, and there is no state to go back to. (Boxing while the
        # frame is written back spends the emergency reserve instead:
        # _BOX_*_LEAVING_O, _STORE_*_LEAVING.) Stop loudly rather than run on
        # with a wrong frame.
        self.rows.append("error")
        self.add("_FATAL_ERROR")
        nested = [op.arg.keep for op in self.rec.ops if isinstance(op.arg, InnerCall)]
        # What the code of nested loops run inline points at (their traces
        # may be freed before this one).
        inlined = [op.arg.body.rec.constants for op in self.rec.ops
                   if isinstance(op.arg, InnerCall) and op.arg.body is not None]
        instructions = asm.assemble(self.rows)
        table = bytearray()
        if self.exit_words:  # the exits' tables, one array: each exit's operand0 is its offset till now
            table = bytearray(_pack(f"{len(self.exit_words)}q", *self.exit_words))
            base = self.table_base = buffer_address(table)
            left = self.data_rows[0]
            for at in range(len(instructions) - 1, -1, -1):  # (the stubs: after the body)
                instruction = instructions[at]
                if instruction.name in _DATA_EXITS:
                    instructions[at] = instruction.moved(base + 8 * instruction.operand0)
                    left -= 1
                    if left == 0:
                        break
        constants = (*self.rec.constants, *nested, *inlined, links, self.virtual_list, table)
        if self.fail:
            instructions = force(instructions, self.fail, self.forced)
        return Lowered(instructions, self.snapshots, constants, self, self.loop_index, links,
                       frozenset(self.inlined_exits), self.forced)

    def boxes_at_exits(self) -> int:
        """The most boxes one activation of this code may make to hand the
        frame over (copyjit.h's pool): every unboxed local and every number
        on the stack, at each hand-over to a nested loop's trace and at the
        exit it leaves by."""
        owners = dict.fromkeys([self, *self.exit_owner])  # (a nested loop's run inline: its own)
        handovers = [(owner, op) for owner in owners for op in owner.rec.ops
                     if op.name in ("inner_loop", "nested_loop")]
        numbers = [sum(1 for value in snapshot.stack if owner.rec.ops[value].kind in ("i", "f"))
                   for owner, snapshot in zip(self.exit_owner, self.snapshots, strict=True)]
        numbers += [sum(1 for value in op.args if owner.rec.ops[value].kind in ("i", "f"))
                    for owner, op in handovers]
        homes = max(len(owner.written) for owner in owners)
        return (homes + max(numbers, default=0)) * (1 + len(handovers))

    def value_kind(self, value: int) -> str:
        return self.rec.ops[value].kind

    def write_back(self, rows: list[Row], slot: int) -> None:
        # The same rows in every exit stub: made once per local. Boxed in
        # a register, not pushed: an exit's stack may fill the frame's value
        # stack already (co_stacksize), and a slot past it is the next
        # frame's first word, or past a generator's own memory. In place
        # when only the frame holds the local's number (no box made, none
        # freed: n-body's pair loop leaves at every step). A box that fails
        # here spends the emergency reserve (_STORE_*_LEAVING): the frame is
        # half written, there is no state to exit to.
        made = self.written_rows.get(slot)
        if made is None:
            kind = self.home_kind(slot)
            register = f"{kind}0"
            flag = self.shadow.get(slot)
            store = make(f"_STORE_{_KIND[kind]}_LEAVING", (register,), oparg=slot) if flag is None else \
                make(f"_STORE_{_KIND[kind]}_LEAVING_FLAGGED", (register,), oparg=slot, operand0=flag)
            made = (make(f"_RELOAD_{_KIND[kind]}", (), (register,), self.home[slot]), store)
            self.written_rows[slot] = made
        rows += made

    def parent_kind(self, slot: int) -> str:
        assert self.parent is not None
        return self.parent.rec.slots[slot]

    def stub(self, number: int, snapshot: Snapshot, link: int | None,
             spills: list[Row] | None = None, released: bool = False, shared: bool = True,
             count: Row | None = None, direct: int | None = None) -> list[Row]:
        """The code of exit `number`: put the values it needs from registers
        in their slots (`spills`), release the snapshot's `drop` values
        (unless `released` already), then hand the frame back at the snapshot
        (after trying the bridge linked at address `link`, if any). The
        locals are written back by this lowering's shared end of an exit
        (`leave`), unless not `shared` (a parent's stub copied into a bridge).
        A bridge's exits `count` themselves, after their spills.
        A guard's exit is one uop that reads a row of a table (exit_tail,
        data_row), unless its stack holds a kind the table has no code for;
        if it may have a bridge, a uop before it tries the one linked at
        `direct` (run_bridge's start that makes the moves itself)."""
        if shared and snapshot.reraise is None and not snapshot.normal:
            tail = self.exit_tail(number, snapshot)
            moves = _moves(spills or ())
            if tail is not None and moves is not None:
                self.data_exits[id(snapshot)] = (tail, link)
                # (A uop of its own: folded into _EXIT_DATA's, clang kept
                # that one's set-up for its call on the way to the bridge.)
                first = make("_BRIDGE_OR_CONTINUE", operand0=direct) if direct is not None else None
                return [f"exit{number}", *((count,) if count is not None else ()),
                        *((first,) if first is not None else ()), self.data_row(moves, tail, link, snapshot)]
        rows: list[Row] = [f"exit{number}", *(spills or ()), *((count,) if count is not None else ())]
        if not released:  # (a copy of a parent's stub in a bridge: done before the bridge)
            self.own_stack(rows, snapshot.stack)
            self.release_drops(rows, snapshot)
        if link is not None:
            rows.append(make("_BRIDGE_OR_CONTINUE", operand0=link))
        if snapshot.reraise is not None:
            # First, while the exception is still the one set: the callable
            # becomes a builtin that raises it.
            reraiser = ctypes.addressof(runtime().reraise_def)
            slot = self.temp[snapshot.reraise]
            rows += (_reload_i0(slot), make("_RERAISER_O", ("i0",), ("i1",), operand0=reraiser),
                     make("_SPILL_INT", ("i1",), oparg=slot))
        if not shared:
            for slot in self.written:
                self.write_back(rows, slot)
        pushes: list[Row] = []
        for value in snapshot.stack:
            self.push_value(pushes, value)
        rows += _paired(pushes)
        resume = instruction_address(self.rec.code, snapshot.offset)
        if not shared:
            rows += make("_SET_IP", operand0=resume), make("_EXIT_TRACE", oparg=number)
            return rows
        # The stack pushed before the locals are written back: independent
        # parts of the frame, and i1 (the exit number) survives the boxing.
        rows.append(make("_SET_IP_I_JUMP", operand0=resume, operand1=number, jump=self.end_of(snapshot)))
        return rows

    def exit_tail(self, number: int, snapshot: Snapshot) -> list[int] | None:
        """A guard exit's row of the table _EXIT_DATA reads (objects.c,
        copyjit_exit_data) but its link and moves: where it resumes, its
        number, the references it takes and its pushes; or None if its stack
        holds a kind the table has no code for. Guard exits are cold (a hot
        one gets a bridge): a shared routine reading a table costs a
        compile less than ~10 uops of code each, to lower, copy and patch."""
        ops, temp = self.rec.ops, self.temp
        own: list[int] = []
        for value in snapshot.stack:  # (as own_stack)
            op = ops[value]
            if op.name == "const_b":
                own.append((temp[value] << 2) | 1)
                own.append(_arg(op))
            elif op.name == "load_b":
                own.append((temp[value] << 2) | 2)
                own.append(_arg(op))
            elif op.name in BORROWED_ITEMS:
                own.append(temp[value] << 2)
                own.append(0)
        for value in snapshot.drop:  # (as stub's)
            if ops[value].name not in _NOT_OWNED:
                own.append((temp[value] << 2) | 3)
                own.append(0)
        pushes: list[int] = []
        for value in snapshot.stack:
            code = _PUSH_CODE.get(ops[value].kind)
            if code is None:
                return None
            pushes.append((temp[value] << 2) | code if code else 0)
        resume = instruction_address(self.rec.code, snapshot.offset)
        return [resume, number, len(own) // 2, *own, len(pushes), *pushes]

    def data_row(self, moves: list[int], tail: list[int], link: int | None, snapshot: Snapshot) -> Row:
        """The exit's one uop, and its table (kept with the trace's constants)."""
        # (One table per trace, made by finish: operand0 is an offset till then.)
        words = self.exit_words
        offset = len(words)
        self.data_rows[0] += 1
        words.append(tail[0])
        words.append(tail[1])
        words.append(0 if link is None else link)
        words.append(len(moves) // 2)
        words.extend(moves)
        words.extend(tail[2:])
        return make("_EXIT_DATA", operand0=offset, jump=self.end_of(snapshot))

    def end_of(self, snapshot: Snapshot) -> str:
        """The label of the shared end an exit at `snapshot` goes on to
        (which writes the locals back, unless the frame has them: exact)."""
        if id(snapshot) in self.exact_snapshots:
            self.exact_used = True
            return f"{self.leave_label}_exact"
        self.leave_used = True
        return self.leave_label

    def release_drops(self, rows: list[Row], snapshot: Snapshot) -> None:
        """An inlined call's values an exit releases (before a bridge, which
        does not know them)."""
        for value in snapshot.drop:
            if self.rec.ops[value].name not in _NOT_OWNED:
                rows += _reload_i0(self.temp[value]), _DECREF_I0

    def own_stack(self, rows: list[Row], stack: tuple[int, ...]) -> None:
        """A reference of the trace's own to each borrowed value of an exit's
        stack (a constant, a local, a container's item), for the frame (or a
        bridge) to take."""
        for value in stack:
            op = self.rec.ops[value]
            if op.name == "const_b":
                rows.append(make("_SPILL_CONST_O", oparg=self.temp[value], operand0=_arg(op)))
            elif op.name == "load_b":
                rows.append(make("_SPILL_FAST_O", oparg=self.temp[value], operand0=_arg(op)))
            elif op.name in BORROWED_ITEMS:  # in its slot already (exit_spills): a reference to it
                rows.append(make("_NEW_REF_SLOT", oparg=self.temp[value]))

    def leave(self) -> list[Row]:
        """The end every exit stub of this lowering shares: the unboxed
        locals written back to the frame (three uops each, the same in
        every stub: once per trace, not once per exit), then leave with the
        exit number in i1."""
        rows: list[Row] = [self.leave_label]
        for slot in self.written:
            self.write_back(rows, slot)
        self.virtual_to_frame(rows, self)
        rows.append(make("_EXIT_TRACE_I", ("i1",)))
        return rows

    # --- numbers ------------------------------------------------------------

    def op_load(self, index: int, op: Op) -> None:
        if op.arg in self.pinned and not self.before_loop:  # (before, only the home is loaded)
            self.alloc.place(index, self.pinned[op.arg])
        else:
            self.alloc.in_slot(index, self.home[op.arg])  # type: ignore[index]  # read when first used

    def op_store(self, index: int, op: Op) -> None:
        (value,) = op.args
        self.dirty.add(op.arg)  # type: ignore[arg-type]
        flag = self.shadow.get(op.arg)  # type: ignore[call-overload]
        if flag is not None:  # a new value: no object of it yet
            self.add("_CLEAR_SLOT", oparg=flag)
        pinned = self.pinned.get(op.arg)  # type: ignore[call-overload]
        if pinned is not None:
            if self.alloc.register.get(value) != pinned:
                register = self.alloc.use(value)
                self.alloc.vacate(pinned)
                self.add(f"_COPY_{_KIND[op.kind]}", (register,), (pinned,))
            return
        home = self.home[op.arg]  # type: ignore[index]
        if self.alloc.slot.get(value) == home:
            return  # `x = x`: already there
        self.alloc.overwriting(home, value)
        register = self.alloc.use(value)
        self.add(f"_SPILL_{_KIND[op.kind]}", (register,), oparg=home)
        self.alloc.stored(value, home)

    def op_const(self, index: int, op: Op) -> None:
        if op.kind == "i":
            operand = _arg(op) & (2**64 - 1)  # (a negative one: its two's complement)
        else:
            assert isinstance(op.arg, float), op
            operand = asm.float_bits(op.arg)
        self.uop(f"_LOAD_{_KIND[op.kind]}_CONST", (), (index,), operand0=operand)

    def op_to_float(self, index: int, op: Op) -> None:
        self.uop("_INT_TO_FLOAT", op.args, (index,))

    def op_binary(self, index: int, op: Op) -> None:
        shift = self.power_of_two(op)
        if shift and op.arg == "mod":
            self.uop("_MOD_INT_POW2", op.args[:1], (index,), operand0=(1 << shift) - 1)
            return
        if shift:
            self.uop("_FLOORDIV_INT_POW2", op.args[:1], (index,), oparg=shift)
            return
        if op.arg == "pow" and op.kind == "f" and self.rec.ops[op.args[1]].name == "const":
            bounds = power_bounds(self.rec.ops[op.args[1]].arg)  # type: ignore[arg-type]
            if bounds is not None:
                self.uop("_POW_FLOAT_CONST", op.args, (index,), operand0=asm.float_bits(bounds[0]),
                         operand1=asm.float_bits(bounds[1]), exit_op=op)
                return
        name = _binary_uop(op)
        self.uop(name, op.args, (index,), exit_op=op if UOPS[name].may_exit else None)

    def power_of_two(self, op: Op) -> int:
        """k when `op` is an int `x // 2**k` or `x % 2**k` (1 <= k <= 62), else 0."""
        if op.kind != "i" or op.arg not in ("floordiv", "mod"):
            return 0
        divisor = self.rec.ops[op.args[1]]
        if divisor.name != "const" or type(divisor.arg) is not int or divisor.arg < 2:
            return 0
        k = divisor.arg.bit_length() - 1
        return k if divisor.arg == 1 << k and k <= 62 else 0

    def op_compare_bool(self, index: int, op: Op) -> None:
        k = self.rec.ops[op.args[0]].kind
        self.uop(f"_COMPARE_{_KIND[k]}_BOOL", op.args, (index,), _arg(op))

    def op_not(self, index: int, op: Op) -> None:
        self.uop("_NOT_O", op.args, (index,))

    def op_unbox_bool(self, index: int, op: Op) -> None:
        self.uop("_UNBOX_BOOL_O", op.args, (index,))

    def op_neg(self, index: int, op: Op) -> None:
        self.uop(f"_NEG_{_KIND[op.kind]}", op.args, (index,), exit_op=op if op.kind == "i" else None)

    def op_branch(self, index: int, op: Op) -> None:
        k = op.kind
        assert isinstance(op.arg, tuple)
        name, outcome = op.arg
        a = self.alloc.use(op.args[0])
        b = self.alloc.use(op.args[1], frozenset({a}))
        exit_to = self.exit_label(op.snapshot)
        if BRANCH in self.fail:  # as if it went the way not recorded
            self.add("_JUMP", jump=exit_to)
            self.forced[BRANCH] = self.forced.get(BRANCH, 0) + 1
        elif not outcome:  # leave when the comparison holds
            self.add(f"_JUMP_IF_{_KIND[k]}_{name}", (a, b), jump=exit_to)
        elif k == "i":  # ints: "not <" is ">="
            self.add(f"_JUMP_IF_INT_{_NEGATED[name]}", (a, b), jump=exit_to)
        else:  # floats: "not <" is not ">=" when one is a NaN
            self.labels += 1
            self.add(f"_JUMP_IF_FLOAT_{name}", (a, b), jump=f"holds{self.labels}")
            self.add("_JUMP", jump=exit_to)
            self.rows.append(f"holds{self.labels}")

    def op_math(self, index: int, op: Op) -> None:
        name = f"_{op.arg}_{_KIND[op.kind]}"
        self.uop(name, op.args, (index,), exit_op=op if UOPS[name].may_exit else None)

    def op_range_next(self, index: int, op: Op) -> None:
        self.uop(self.iteration("_FOR_ITER_RANGE_UNBOXED_KNOWN", op), (), (index,), exit_op=op)

    # --- objects ------------------------------------------------------------

    def op_load_o(self, index: int, op: Op) -> None:
        if op.snapshot is None:
            self.uop("_LOAD_FAST_O", (), (index,), oparg=_arg(op))
        else:
            self.uop("_LOAD_FAST_CHECK_O", (), (index,), oparg=_arg(op), exit_op=op)

    def op_store_o(self, index: int, op: Op) -> None:
        self.uop("_STORE_FAST_O", op.args, (), oparg=_arg(op))

    def op_deref(self, index: int, op: Op) -> None:
        self.uop("_LOAD_DEREF_O", (), (index,), oparg=_arg(op), exit_op=op)

    def op_store_deref(self, index: int, op: Op) -> None:
        self.uop("_STORE_DEREF_O", op.args, (), oparg=_arg(op))

    def op_const_o(self, index: int, op: Op) -> None:
        self.uop("_LOAD_CONST_O", (), (index,), operand0=_arg(op))

    def op_load_b(self, index: int, op: Op) -> None:
        self.uop("_LOAD_FAST_BORROW_O", (), (index,), oparg=_arg(op))

    def op_store_v(self, index: int, op: Op) -> None:
        (value,) = op.args
        home = self.virtual[op.arg]  # type: ignore[index]
        if self.alloc.slot.get(value) == home:
            return
        self.alloc.overwriting(home, value)
        register = self.alloc.use(value)
        self.add("_SPILL_INT", (register,), oparg=home)
        self.alloc.stored(value, home)

    def early_home(self, value: int) -> int | None:
        """The home a value being evicted (at op `alloc.now`) can be spilled
        to right away: its next use stores it to a local that is not pinned,
        and no op before that store can leave (an exit stub writes the homes
        back: it would give the frame the new value early) or read the home.
        (n-body: `v1` and `m1`, unpacked before the list items `x1, y1, z1`
        that evict them: spilled to their homes, not to temp slots to be
        reloaded for the stores.)"""
        alloc, ops = self.alloc, self.rec.ops
        at = alloc.next_use(value)
        if not alloc.now < at < len(ops):
            return None
        store = ops[at]
        if store.args != (value,) or (store.name == "store" and store.arg in self.pinned):
            return None
        home = self.virtual.get(_arg(store)) if store.name == "store_v" else \
            self.home.get(_arg(store)) if store.name == "store" else None
        if home is None:
            return None
        for op in ops[alloc.now:at]:
            if op.snapshot is not None or op.name not in _QUIET \
                    or (op.name in ("store", "store_v") and op.arg == store.arg):
                return None
        return home

    def op_load_v(self, index: int, op: Op) -> None:
        self.alloc.in_slot(index, self.virtual[op.arg])  # type: ignore[index]  # read when first used

    def op_guard_not_same(self, index: int, op: Op) -> None:
        self.uop("_GUARD_NOT_SAME_O", op.args, (), exit_op=op)

    def op_guard_same(self, index: int, op: Op) -> None:
        self.uop("_GUARD_SAME_O", op.args, (), exit_op=op)

    def op_guard_distinct(self, index: int, op: Op) -> None:
        self.uop("_GUARD_NOT_SAME_O", op.args, (), exit_op=op)

    def op_const_b(self, index: int, op: Op) -> None:
        pass  # nothing to compute: an exit that needs it makes a reference itself (stub)

    def op_input(self, index: int, op: Op) -> None:
        if index in self.temp:  # a bridge's input: in the spill slot the parent left it in
            self.alloc.in_slot(index, self.temp[index])

    def op_null(self, index: int, op: Op) -> None:
        pass  # nothing to compute: an exit pushes NULL for it

    def op_second(self, index: int, op: Op) -> None:
        pass  # the op before made it

    def op_release(self, index: int, op: Op) -> None:
        made_by = self.rec.ops[op.args[0]].name
        self.uop("_RELEASE_ITER_O" if made_by == "get_iter" else "_DECREF_O", op.args)

    def op_guard_type(self, index: int, op: Op) -> None:
        self.uop("_GUARD_TYPE_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_guard_is(self, index: int, op: Op) -> None:
        self.uop("_GUARD_IS_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_guard_is_not(self, index: int, op: Op) -> None:
        self.uop("_GUARD_IS_NOT_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_guard_function(self, index: int, op: Op) -> None:
        self.uop("_GUARD_FUNCTION_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_guard_version(self, index: int, op: Op) -> None:
        self.uop("_GUARD_TYPE_VERSION_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_guard_keys(self, index: int, op: Op) -> None:
        self.uop("_GUARD_KEYS_VERSION_O", op.args, (), operand0=_arg(op), exit_op=op)

    def op_unbox(self, index: int, op: Op) -> None:
        self.uop(f"_UNBOX_{_KIND[op.kind]}_O", op.args, (index,), exit_op=op)

    def op_box(self, index: int, op: Op) -> None:
        kind = self.rec.ops[op.args[0]].kind
        flag = None if op.arg is None else self.shadow.get(op.arg)  # type: ignore[call-overload]
        if flag is not None:  # the value of local `arg`: its object
            self.uop(f"_BOX_{_KIND[kind]}_LOCAL", op.args, (index,), oparg=_arg(op), operand0=flag,
                     exit_op=op)
        else:
            self.uop(f"_BOX_{_KIND[kind]}_O", op.args, (index,), exit_op=op)

    def op_share(self, index: int, op: Op) -> None:
        if op.arg is None:
            return  # (no one can tell: record_base, frame_boxes)
        local, source = shared_locals(op)
        flag, source_flag = self.shadow.get(local), self.shadow.get(source)
        if flag is None or source_flag is None:  # (a bridge's, of locals its loop has no flag for)
            return
        flags = source_flag | flag << 32
        constant = op.arg[3]  # type: ignore[index]
        if constant:  # (both bound to the code's constant, as in CPython: nothing made)
            self.add("_SHARE_CONST_LOCAL", oparg=local, operand0=constant,
                     operand1=source | source_flag << 16 | flag << 32)
        elif op.arg[2]:  # type: ignore[index]  # (the program may see both: made now if need be)
            kind = self.rec.ops[op.args[0]].kind
            self.uop(f"_SHARE_{_KIND[kind]}_LOCAL", op.args, (), oparg=local, operand0=source, operand1=flags)
        else:
            self.add("_ADOPT_LOCAL", oparg=local, operand0=source, operand1=flags)

    def op_global(self, index: int, op: Op) -> None:
        entry, version = _ints(op.arg)
        self.uop(f"_LOAD_GLOBAL_MODULE_{_owned(op)}", (), (index,), oparg=entry, operand0=version, exit_op=op)

    def op_global_b(self, index: int, op: Op) -> None:  # (methods, not aliases: mypyc)
        self.op_global(index, op)

    def op_builtin(self, index: int, op: Op) -> None:
        entry, globals_version, version = _ints(op.arg)
        self.uop(f"_LOAD_GLOBAL_BUILTIN_{_owned(op)}", (), (index,),
                 oparg=entry, operand0=globals_version, operand1=version, exit_op=op)

    def op_builtin_b(self, index: int, op: Op) -> None:
        self.op_builtin(index, op)

    def op_guard_globals(self, index: int, op: Op) -> None:
        self.uop("_GUARD_GLOBALS_VERSION", (), (), operand0=_arg(op), exit_op=op)

    def op_store_global(self, index: int, op: Op) -> None:
        self.uop("_STORE_GLOBAL_O", op.args, (), operand0=_arg(op))

    def op_attr_module(self, index: int, op: Op) -> None:
        entry, version = _ints(op.arg)
        self.uop(f"_LOAD_ATTR_MODULE_{_owned(op)}", op.args, (index,), oparg=entry, operand0=version,
                 exit_op=op)

    def op_attr_module_b(self, index: int, op: Op) -> None:
        self.op_attr_module(index, op)

    def op_attr_instance(self, index: int, op: Op) -> None:
        entry, offset = _ints(op.arg)
        self.uop(f"_LOAD_ATTR_INSTANCE_{_owned(op)}", op.args, (index,), oparg=entry, operand0=offset,
                 exit_op=op)

    def op_attr_instance_b(self, index: int, op: Op) -> None:
        self.op_attr_instance(index, op)

    def op_store_attr(self, index: int, op: Op) -> None:
        entry, offset = _ints(op.arg)
        self.uop("_STORE_ATTR_INSTANCE_O", op.args, (), oparg=entry, operand0=offset, exit_op=op)

    def op_store_attr_f(self, index: int, op: Op) -> None:
        entry, offset = _ints(op.arg)
        self.uop("_STORE_ATTR_INSTANCE_F", op.args, (), oparg=entry, operand0=offset, exit_op=op)

    def op_store_attr_i(self, index: int, op: Op) -> None:
        entry, offset = _ints(op.arg)
        self.uop("_STORE_ATTR_INSTANCE_I", op.args, (), oparg=entry, operand0=offset, exit_op=op)

    def op_attr(self, index: int, op: Op) -> None:
        self.uop("_LOAD_ATTR_GENERIC_O", op.args, (index,), operand0=_arg(op), exit_op=op)

    def op_call(self, index: int, op: Op) -> None:
        base = self.calls[index]
        for k, value in enumerate(op.args[1:]):
            self.reload(value, "i0")
            self.add("_SPILL_INT", ("i0",), oparg=base + k)
        assert op.snapshot is not None
        # The callee may read its caller's locals, or rebind them
        # (sys._getframe(1).f_locals, a debugger): the unboxed ones go to
        # the frame first, those stored since the frame last had them (a
        # box that fails leaves at the CALL, before it)...
        dirty = [slot for slot in self.home if slot in self.dirty]
        if dirty:
            before = self.exit_label(Snapshot(op.snapshot.offset, op.snapshot.stack))
            for slot in dirty:
                kind = self.home_kind(slot)
                self.add(f"_RELOAD_{_KIND[kind]}", outs=(f"{kind}0",), oparg=self.home[slot])
                flag = self.shadow.get(slot)
                if flag is None:
                    self.add(f"_SYNC_{_KIND[kind]}_O", (f"{kind}0",), oparg=slot, exit=before)
                else:
                    self.add(f"_SYNC_{_KIND[kind]}_FLAGGED_O", (f"{kind}0",), oparg=slot, operand0=flag,
                             exit=before)
        self.reload(op.args[0], "i0")
        # The callee's caller is at this CALL (sys._getframe(1).f_lineno).
        self.add("_SET_IP", operand0=instruction_address(self.rec.code, op.snapshot.offset))
        # If it raised, the frame has every unboxed local already (written
        # before, and maybe rebound by the callee): that exit writes none back.
        self.exact_snapshots.add(id(op.snapshot))
        self.add("_CALL_O", ("i0",), ("i1",), oparg=base, operand0=len(op.args) - 1,
                 error=self.exit_label(op.snapshot))
        self.spill(index, "i1")
        self.homes_from_frame(index, op)

    def homes_from_frame(self, index: int, op: Op) -> None:
        """...and are unboxed from it again after the call, if the frame has
        a frame object (nothing can reach its locals without one). One the
        callee rebound to another type leaves the trace with the frame
        exact: after the CALL, its result pushed, no local written back;
        so does a callee that set a tracer, a profiler or a tool's events
        (pdb.set_trace(), a breakpoint): the interpreter sends them."""
        self.dirty.clear()
        assert op.snapshot is not None
        after, depth = _ints(op.arg)
        self.labels += 1
        exact, unboxing = f"called{self.labels}", f"calledunbox{self.labels}"
        unseen = f"unseen{self.labels}"
        self.add("_EXIT_IF_WATCHED", exit=exact)
        if self.home:
            self.add("_JUMP_IF_FRAME_UNSEEN", jump=unseen)
            self.homes_from_locals(exact, unboxing)
            self.rows.append(unseen)
        tail: list[Row] = [unboxing, make("_DECREF_O", ("i1",)), exact]
        # The callable and arguments the trace still holds (released after
        # the call, unless borrowed).
        released = {o.args[0] for o in self.rec.ops[index + 1:] if o.name == "release"}
        for value in dict.fromkeys(op.args):
            if value in released:
                tail += [_reload_i0(self.temp[value]), _DECREF_I0]
        stack = (*op.snapshot.stack[:depth], index)
        self.own_stack(tail, stack)
        for value in stack:
            self.push_value(tail, value)
        tail.append(make("_SET_IP", operand0=instruction_address(self.rec.code, after)))
        tail.append(make("_EXIT_TRACE", oparg=HANDED_OVER))
        self.tails += tail

    def homes_from_locals(self, unbound: str, other: str) -> None:
        """Every unboxed local unboxed again from the frame into its home
        (code that ran meanwhile may have rebound it), through a register,
        not the frame's stack (which the values an exit pushed may fill
        already). One unbound goes to `unbound`, one of another type to
        `other`, holding it in i1."""
        for slot, home in self.home.items():
            kind = self.home_kind(slot)
            self.add("_LOAD_FAST_CHECK_O", outs=("i1",), oparg=slot, exit=unbound)
            self.add(f"_UNBOX_{_KIND[kind]}_O", ("i1",), (f"{kind}0",), exit=other)
            self.add("_DECREF_O", ("i1",))
            self.add(f"_SPILL_{_KIND[kind]}", (f"{kind}0",), oparg=home)
        self.mark_shadows(self.home)

    def home_kind(self, slot: int) -> str:
        return self.rec.slots[slot] if slot in self.rec.slots else self.parent_kind(slot)

    def op_binary_o(self, index: int, op: Op) -> None:
        self.uop("_BINARY_OP_O", op.args, (index,), oparg=_arg(op), exit_op=op)

    def op_add_int_o(self, index: int, op: Op) -> None:
        self.uop("_ADD_INT_O_I", op.args, (index,), exit_op=op)

    def op_compare_o(self, index: int, op: Op) -> None:
        self.uop("_COMPARE_OP_O", op.args, (index,), oparg=_arg(op), exit_op=op)

    def op_get_iter(self, index: int, op: Op) -> None:
        self.uop("_GET_ITER_O", op.args, (index,), exit_op=op)

    def op_range_iter(self, index: int, op: Op) -> None:
        self.uop("_RANGE_ITER_O", op.args, (index,), exit_op=op)

    def op_guard_done(self, index: int, op: Op) -> None:
        self.uop("_GUARD_DONE_O", op.args, (), exit_op=op)

    def op_inner_input(self, index: int, op: Op) -> None:
        pass  # popped by the inner_loop op before it

    def push_value(self, rows: list[Row], value: int) -> None:
        """Push a value onto the frame's stack (handing over its reference)."""
        kind = self.rec.ops[value].kind
        if kind == "n":
            rows.append(make("_PUSH_NULL"))
        elif kind == "o":
            rows.append(make("_PUSH_SLOT_O", oparg=self.temp[value]))
        else:
            rows.append(make(_PUSH_LEAVING[kind], oparg=self.temp[value]))  # (see write_back)

    def pop_value(self, value: int) -> None:
        """Take a value back from the frame's stack (pushed by push_value)."""
        kind = self.rec.ops[value].kind
        if kind == "n":
            self.add("_POP_NULL")
        elif kind == "o":
            self.add("_POP_O", outs=("i0",))
            self.spill(value, "i0")
        else:  # boxed by this trace a moment ago: unboxing cannot fail
            self.add(f"_UNBOX_{_KIND[kind]}", outs=(f"{kind}0",), exit="error")
            self.spill(value, f"{kind}0")

    def handed_stubs(self) -> None:
        """Exits for when a nested loop's trace did not leave by its loop's
        end: the frame is exact where that trace left it."""
        for label in self.handed:
            self.rows.append(f"handedunbox{label}")
            self.add("_DECREF_O", ("i1",))  # the value that failed to unbox
            self.rows.append(f"handed{label}")
            self.add("_EXIT_TRACE", oparg=HANDED_OVER)

    def op_len(self, index: int, op: Op) -> None:
        self.uop("_LEN_O", op.args, (index,))

    def op_len_str(self, index: int, op: Op) -> None:
        self.uop("_LEN_STR_O", op.args, (index,))

    def op_append(self, index: int, op: Op) -> None:
        self.uop("_LIST_APPEND_O", op.args, (), error_op=op)

    def op_subscr_list(self, index: int, op: Op) -> None:
        self.subscript("_BINARY_SUBSCR_LIST_INT_O", index, op)

    def op_subscr_list_b(self, index: int, op: Op) -> None:
        self.subscript("_BINARY_SUBSCR_LIST_INT_B", index, op)

    def op_subscr_tuple_b(self, index: int, op: Op) -> None:
        self.subscript("_BINARY_SUBSCR_TUPLE_INT_B", index, op)

    def op_list_item_b(self, index: int, op: Op) -> None:
        self.uop("_LIST_ITEM_B", op.args, (index,), oparg=_arg(op))

    def op_tuple_item_b(self, index: int, op: Op) -> None:
        self.uop("_TUPLE_ITEM_B", op.args, (index,), oparg=_arg(op))

    def op_list_next_b(self, index: int, op: Op) -> None:
        self.uop(self.iteration("_FOR_ITER_LIST_B_KNOWN", op), (), (index,), exit_op=op)

    def op_tuple_next_b(self, index: int, op: Op) -> None:
        self.uop(self.iteration("_FOR_ITER_TUPLE_B_KNOWN", op), (), (index,), exit_op=op)

    def op_subscr_tuple(self, index: int, op: Op) -> None:
        self.subscript("_BINARY_SUBSCR_TUPLE_INT_O", index, op)

    def op_store_subscr_list(self, index: int, op: Op) -> None:
        self.subscript("_STORE_SUBSCR_LIST_INT_O", index, op)

    def op_store_subscr_list_f(self, index: int, op: Op) -> None:
        self.subscript("_STORE_SUBSCR_LIST_INT_F", index, op)

    def op_store_over_f(self, index: int, op: Op) -> None:
        """A float stored over the item just read (checks): its _CONST_ form
        when the index is a constant k >= 0."""
        value, seq, at, item = op.args
        constant = self.rec.ops[at]
        if constant.name == "const" and type(constant.arg) is int and 0 <= constant.arg <= OPARG_MAX:
            self.uop("_STORE_SUBSCR_LIST_CONST_F_OVER", (value, seq, item), (), oparg=constant.arg,
                     exit_op=op)
        else:
            self.uop("_STORE_SUBSCR_LIST_INT_F_OVER", (value, seq, at, item), (), exit_op=op)

    def subscript(self, name: str, index: int, op: Op) -> None:
        """`name`, whose last operand is the index; or, when the index is a
        constant k >= 0 (`v[0]`), its _CONST_ form, k in the oparg: no
        register holds k, no negative index is turned around. A store licm
        made `plain` is the _PLAIN form."""
        if op.arg == "plain":
            name += "_PLAIN"
        outs = () if name.startswith("_STORE") else (index,)
        at = self.rec.ops[op.args[-1]]
        if at.name == "const" and type(at.arg) is int and 0 <= at.arg <= OPARG_MAX:
            self.uop(name.replace("_INT_", "_CONST_"), op.args[:-1], outs, oparg=at.arg, exit_op=op)
        else:
            self.uop(name, op.args, outs, exit_op=op)

    def op_list_next(self, index: int, op: Op) -> None:
        self.uop(self.iteration("_FOR_ITER_LIST_O_KNOWN", op), (), (index,), exit_op=op)

    def op_tuple_next(self, index: int, op: Op) -> None:
        self.uop(self.iteration("_FOR_ITER_TUPLE_O_KNOWN", op), (), (index,), exit_op=op)

    def op_enumerate_list(self, index: int, op: Op) -> None:
        # The index first, then the item; the index is the next op's ("second").
        self.uop("_FOR_ITER_ENUMERATE_LIST_O", (), (index + 1, index), exit_op=op)

    def op_enumerate_tuple(self, index: int, op: Op) -> None:
        self.uop("_FOR_ITER_ENUMERATE_TUPLE_O", (), (index + 1, index), exit_op=op)

    def op_copy_o(self, index: int, op: Op) -> None:
        self.uop("_NEW_REF_O", op.args, (index,))

    def op_guard_size(self, index: int, op: Op) -> None:
        self.uop("_GUARD_SIZE_O", op.args, (), oparg=_arg(op), exit_op=op)

    def op_guard_min_size(self, index: int, op: Op) -> None:
        self.uop("_GUARD_MIN_SIZE_O", op.args, (), oparg=_arg(op), exit_op=op)

    def op_watch_epoch(self, index: int, op: Op) -> None:
        self.uop("_LOAD_WATCH_EPOCH", (), (index,))

    def op_guard_watched(self, index: int, op: Op) -> None:
        self.uop("_GUARD_WATCH_EPOCH", op.args, (), exit_op=op)

    def op_tuple_item(self, index: int, op: Op) -> None:
        self.uop("_TUPLE_ITEM_O", op.args, (index,), oparg=_arg(op))

    def op_list_item(self, index: int, op: Op) -> None:
        self.uop("_LIST_ITEM_O", op.args, (index,), oparg=_arg(op))

    def op_inner_loop(self, index: int, op: Op) -> None:
        """Hand the frame over at a nested loop's head, run the nested loop's
        trace, and take the frame back where its loop-leaving exit left it.
        If that trace has other exits out of its loop than the recorded one
        (call.alternatives: a `nested_loop` op), after one of those take the
        locals back from the frame and leave by an exit of this trace's own,
        where the nested trace's exit resumes, with its values still on the
        frame's stack; when hot, that exit gets a bridge, which pops them
        (op_frame_input). Any other outcome leaves this trace too: the frame
        is exact then."""
        call = op.arg
        assert isinstance(call, InnerCall)
        if self.inline_loop(index, op):
            return
        self.labels += 1
        handed, unboxing = f"handed{self.labels}", f"handedunbox{self.labels}"

        for slot in self.written:
            self.write_back(self.rows, slot)
        for value in op.args:
            self.push_value(self.rows, value)
        self.add("_SET_IP", operand0=instruction_address(self.rec.code, call.head))
        self.add("_CALL_TRACE", outs=("i0",), operand0=call.record, operand1=call.cell, exit=handed)
        self.add("_LOAD_INT_CONST", outs=("i1",), operand0=call.status)
        if not call.alternatives:
            self.add("_JUMP_IF_INT_NE", ("i0", "i1"), jump=handed)
        else:
            self.add("_JUMP_IF_INT_EQ", ("i0", "i1"), jump=f"recorded{self.labels}")
            for number, (status, _) in enumerate(call.alternatives):
                self.add("_LOAD_INT_CONST", outs=("i1",), operand0=status)
                self.add("_JUMP_IF_INT_EQ", ("i0", "i1"), jump=f"other{self.labels}_{number}")
            self.add("_JUMP", jump=handed)
            for number, (_, snapshot) in enumerate(call.alternatives):
                self.rows.append(f"other{self.labels}_{number}")
                self.homes_from_locals(handed, unboxing)  # the nested loop may have rebound any
                # The exit's stub first writes the pinned registers to their
                # homes: give them the values just reloaded there.
                self.pinned_from_homes()
                self.add("_JUMP", jump=self.exit_label(snapshot))
            self.rows.append(f"recorded{self.labels}")
        self.homes_from_locals(handed, unboxing)  # the nested loop may have rebound any
        self.dirty.clear()
        inputs = range(index + 1, index + 1 + len(call.inputs))
        for value in [*op.args, *inputs][::-1]:
            self.pop_value(value)
        self.handed.append(self.labels)

    def op_nested_loop(self, index: int, op: Op) -> None:  # the same op, with alternatives (a method:
        # mypyc, copyjit/native.py, compiles no alias of one)
        self.op_inner_loop(index, op)

    def inline_loop(self, index: int, op: Op) -> bool:
        """Run a nested loop inside this trace's code, if its recording is
        at hand and fits (see _InlinedLoop); else the caller calls its trace."""
        call = op.arg
        assert isinstance(call, InnerCall)
        body = call.body
        if body is None or self.parent is not None:
            return False
        own = []  # the nested loop's unboxed locals this trace keeps in the frame
        for slot, kind in body.rec.slots.items():
            if slot in self.home and kind != self.rec.slots[slot]:
                return False  # another kind in each loop (or the nested loop reads it from the frame)
            if slot not in self.home and kind != "o":
                own.append(slot)
        done = body.snapshots[call.status - 1]
        if tuple(body.rec.ops[value].kind for value in done.stack) != call.inputs:
            return False  # the recording took the values it leaves as boxes
        try:
            loop = _InlinedLoop(self, call, body, own)
            loop.run(op.args, range(index + 1, index + 1 + len(call.inputs)))
        except Abort:  # too many values for the spill slots
            return False
        # Nothing of it is kept but its code, exits and labels.
        base = len(self.rows)
        self.marks += [(base + row, rec, op_index) for row, rec, op_index in loop.marks]
        self.rows += loop.rows
        self.marks.append((len(self.rows), self.rec, index))  # the rest is this op's again
        self.snapshots[:] = loop.snapshots
        self.exit_spills[:], self.exit_owner[:] = loop.exit_spills, loop.exit_owner
        self.inlined_exits |= loop.inlined_exits
        self.labels = loop.labels
        self.inlined_loops += 1
        self.tails += loop.tails
        self.dirty = set(self.home)  # (the nested loop may have stored any)
        for value in op.args[::-1]:  # back from the frame's stack, as after a call
            self.pop_value(value)
        for value, kind in zip(range(index + 1, index + 1 + len(call.inputs)), call.inputs, strict=True):
            if kind != "n":  # moved into its slot by the loop's way out
                self.alloc.in_slot(value, self.temp[value])
        return True

    def op_frame_input(self, index: int, op: Op) -> None:
        """A value of the iteration that a nested loop's trace left on the
        frame's stack (a bridge from an exit with Snapshot.on_frame)."""
        if op.kind == "n":
            self.add("_POP_NULL")
        else:
            self.add("_POP_O", outs=("i0",))
            self.spill(index, "i0")


class _InlinedLoop(_Lowering):
    """A nested loop's trace, lowered inside the trace of the loop around
    it (`outer`): the nested loop runs with its own backedge in the outer
    trace's code, on the outer trace's homes, where a call of its trace
    would box every local into the frame, unbox them in the nested trace,
    and box and unbox them back at its exit. (docs/design-tracing.md §5.)

        outer ops...                  (every value in its slot: a barrier)
        push the outer's stack values for the nested loop (its iterator)
        unbox the nested loop's own locals (those the outer keeps in the
        frame) into homes of their own; a mismatch exits at its head
      innerN:
        _CHECK_EVAL_BREAKER           exit at its head, the frame exact
        the nested trace's ops        on shared homes; exits write back
                                      the homes of both loops
        _JUMP innerN
      the recorded way out:           its values into the outer's
        inner_input slots, own locals written back, the outer's stack
        values popped; the outer trace goes on
      other ways out (alternatives):  their values pushed, then the outer
        trace's exit for them (bridged when hot)

    Its exits are the outer trace's, numbered with them; they are not
    bridged (the nested loop's own trace gets those): when one gets hot,
    the outer loop is recorded again and calls the nested trace instead."""

    def __init__(self, outer: _Lowering, call: InnerCall, body: InnerBody, own: list[int]) -> None:
        self.outer, self.call = outer, call
        self.rec = rec = body.rec
        self.fail, self.forced = outer.fail, outer.forced
        self.counter, self.parent, self.exit_number, self.first_exit = 0, None, 0, 1
        top = outer.top
        self.home = dict(outer.home)  # exits inside write the outer's homes back too
        self.own_homes = own
        for slot in own:
            self.home[slot], top = top, top + 1
        self.virtual, self.virtual_list = {}, bytearray()  # (a loop that keeps some is not inlined)
        # The outer's flags (it gave the outer homes the body flags one),
        # and flags of its own for its own homes, set at each entry.
        self.shadow = dict(outer.shadow)
        for slot in _flagged_locals(rec):
            if slot in own:
                self.shadow[slot], top = top, top + 1
        self.temp: dict[int, int] = {}
        self.calls, self.top = _value_slots(rec, self.temp, top)
        stored = rec.may_store()  # an exit inside leaves the frame whole
        self.written = [*outer.written, *(slot for slot in own if slot in stored)]
        self.written_rows: dict[int, tuple[Row, Row]] = {}  # its own homes: not the outer's rows
        self.rows: list[Row] = []
        self.marks: list[tuple[int, Recording | None, int]] = []
        # The outer trace's exits, continued here.
        self.snapshots, self.exit_spills = list(outer.snapshots), list(outer.exit_spills)
        self.exit_owner, self.inlined_exits = list(outer.exit_owner), set(outer.inlined_exits)
        self.pinned = _pinned(rec, [slot for slot, kind in rec.slots.items() if kind != "o"])
        self.to_homes = None
        self.alloc = Allocator({v: rec.ops[v].kind for v in self.temp}, self.temp, _uses(rec.ops), self.rows,
                               frozenset(self.pinned.values()), _borrowable(rec, self.pinned))
        self.alloc.early_home = self.early_home
        self.labels = outer.labels + 1
        self.leave_label, self.leave_used = f"leave{self.labels}", False
        self.before_loop = False
        self.checked_iterator = None
        self.loop_index = 0
        self.handed: list[int] = []
        self.tails: list[Row] = []
        self.exact_snapshots = set()
        self.exit_words, self.data_rows = outer.exit_words, outer.data_rows
        self.data_exits = {}
        self.exact_used = False
        self.dirty = set(self.home)  # at its head, after the outer's stores and its own
        # The nested trace's ways out of its loop, by snapshot: the recorded
        # one (None) goes on in the outer trace, the others to the outer
        # trace's exits for them.
        self.done = body.snapshots[call.status - 1]
        self.leaving: dict[int, Snapshot | None] = {id(self.done): None}
        for number, snapshot in call.alternatives:
            self.leaving[id(body.snapshots[number - 1])] = snapshot
        self.ways_out: list[tuple[str, list[Row], Snapshot]] = []  # label, its spills, the nested snapshot

    def parent_kind(self, slot: int) -> str:
        return self.outer.rec.slots[slot]

    def exit_label(self, snapshot: Snapshot | None) -> str:
        assert snapshot is not None
        if id(snapshot) in self.leaving:
            label = f"out{self.labels}_{len(self.ways_out)}"
            spills = _paired([*self.pinned_to_homes(), *self.alloc.exit_spills(list(snapshot.values()))])
            self.ways_out.append((label, spills, snapshot))
            return label
        label = super().exit_label(snapshot)
        self.inlined_exits.add(len(self.snapshots))
        return label

    def outer_exit(self, snapshot: Snapshot, spills: list[Row] | None = None) -> str:
        """An exit of the outer trace's (its stub writes back the outer's
        homes only), its values in their slots already."""
        self.snapshots.append(snapshot)
        self.exit_spills.append(spills or [])
        self.exit_owner.append(self.outer)
        return f"exit{len(self.snapshots)}"

    def run(self, pushed: tuple[int, ...], inputs: range) -> None:  # type: ignore[override]
        """`pushed`: the outer's values the nested loop finds on the frame's
        stack; `inputs`: the outer's inner_input values, which its recorded
        way out leaves."""
        n, outer, at_head = self.labels, self.outer, ""
        for value in pushed:
            outer.push_value(self.rows, value)
        checks = self.own_homes or any(op.name in _ITERATED for op in self.rec.ops)
        if checks:  # (what its entry finds: leave at its head, the frame exact)
            at_head = self.outer_exit(Snapshot(self.call.head, ()))
            self.inlined_exits.add(len(self.snapshots))
            if self.own_homes:
                self.unbox_homes(f"unbound{n}")
            self.check_iterator(f"unbound{n}")
        # Its ops before loop_head (licm) run at each entry, as a trace's
        # do (its exits are not bridged: nothing comes back to its head).
        head = self.pre_header()
        self.pinned_from_homes()
        self.rows.append(f"inner{n}")
        self.add("_CHECK_EVAL_BREAKER", exit=self.exit_label(Snapshot(self.call.head, (), normal=True)))
        self.body(head + 1)
        self.add("_JUMP", jump=f"inner{n}")
        if checks:
            self.rows.append(f"unbound{n}")
            self.add("_JUMP", jump=at_head)
        stored = [slot for slot in self.own_homes if slot in self.rec.stored]
        done = f"done{n}"
        for label, spills, snapshot in self.ways_out:
            self.rows += [label, *spills]
            for slot in stored:
                self.write_back(self.rows, slot)
            target = self.leaving[id(snapshot)]
            if target is None:
                self.add("_JUMP", jump=done)
                continue
            for value in snapshot.stack:
                self.push_value(self.rows, value)
            # The outer exit's stub begins by writing the outer's pinned
            # registers to their homes: give them what is there.
            self.rows += [make(f"_RELOAD_{_KIND[outer.rec.slots[slot]]}", (), (register,), outer.home[slot])
                          for slot, register in outer.pinned.items()]
            self.add("_JUMP", jump=self.outer_exit(target, list(outer.pinned_to_homes())))
        self.rows.append(done)
        for value, input_value in zip(self.done.stack, inputs, strict=True):
            kind = self.rec.ops[value].kind
            if kind != "n":
                register = "f0" if kind == "f" else "i0"
                self.add(f"_RELOAD_{_KIND[kind]}", outs=(register,), oparg=self.temp[value])
                self.add(f"_SPILL_{_KIND[kind]}", (register,), oparg=outer.temp[input_value])
        self.labels += 1


def _reload_i0(slot: int) -> Row:
    return make("_RELOAD_INT", (), ("i0",), slot)


_DECREF_I0: Final = make("_DECREF_O", ("i0",))
# (Constant names: see regalloc.SPILL.)
_PUSH_LEAVING: Final = {"i": "_PUSH_INT_SLOT_LEAVING", "f": "_PUSH_FLOAT_SLOT_LEAVING"}
# The ops that step a loop's own iterator -> the type it must have
# (check_iterator).
_ITERATED: Final = {"range_next": RANGE_ITERATOR, "list_next": LIST_ITERATOR, "list_next_b": LIST_ITERATOR,
                    "tuple_next": TUPLE_ITERATOR, "tuple_next_b": TUPLE_ITERATOR}
# A pushed value's kind -> its code in an exit's table (exit_tail).
_PUSH_CODE: Final = {"n": 0, "o": 1, "i": 2, "f": 3}


def _moves(spills: Sequence[Row]) -> list[int] | None:
    """An exit's spills as the (slot, source) pairs of its table (source:
    0-3 registers i0-i3, 4-7 f0-f3, 8 + k spill slot k), in their order;
    or None if they are not all spills and reloads."""
    moves: list[int] = []
    held: dict[str, int] = {}  # a scratch register -> the source reloaded into it
    for row in spills:
        if not isinstance(row, Instruction):
            return None
        name = row.name
        if name in _RELOADS:
            held[row.outs[0]] = 8 + row.oparg
            continue
        if name not in _SPILLS:
            return None
        ins = row.ins
        for at in range(len(ins)):
            register = ins[at]
            source = held.get(register, _REGISTER_CODE.get(register, -1))
            if source < 0:
                return None
            moves.append(row.oparg if at == 0 else row.operand0)
            moves.append(source)
    return moves


_NOT_OWNED: Final = BORROWED | BORROWED_ITEMS  # values an exit holds no reference to
_DATA_EXITS: Final = frozenset({"_EXIT_DATA"})
_SPILLS: Final = frozenset({"_SPILL_INT", "_SPILL_FLOAT", "_SPILL_INT2", "_SPILL_FLOAT2"})
_RELOADS: Final = frozenset({"_RELOAD_INT", "_RELOAD_FLOAT"})
_REGISTER_CODE: Final = {name: code for code, name in enumerate(
    ("i0", "i1", "i2", "i3", "f0", "f1", "f2", "f3"))}


def _flagged_locals(rec: Recording) -> list[int]:
    """The number locals whose objects the recording boxes or shares (and
    the nested loops it may run inline, on its homes)."""
    slots: dict[int, None] = {}
    for op in rec.ops:
        if op.arg is not None and op.name == "box":
            slots[_arg(op)] = None
        elif op.arg is not None and op.name == "share":
            slots.update(dict.fromkeys(shared_locals(op)))
        elif isinstance(op.arg, InnerCall) and op.arg.body is not None:
            slots.update(dict.fromkeys(_flagged_locals(op.arg.body.rec)))
    return list(slots)


def _arg(op: Op) -> int:
    """The op's arg, where a uop takes it as is (a slot, an id, a version...)."""
    assert isinstance(op.arg, int), op
    return op.arg


def _ints(arg: object) -> tuple[int, ...]:
    assert isinstance(arg, tuple)
    return arg


def _value_slots(rec: Recording, temp: dict[int, int], top: int) -> tuple[dict[int, int], int]:
    """Spill slots from `top` on: one per value not in `temp` yet (added
    there), then a run per call for its arguments. Returns each call's
    first argument slot, and the next free slot."""
    for v, op in enumerate(rec.ops):
        if op.name not in _NO_VALUE and op.kind != "n" and v not in temp:
            temp[v], top = top, top + 1
    calls: dict[int, int] = {}
    for v, op in enumerate(rec.ops):
        if op.name == "call":
            calls[v] = top
            top += len(op.args) - 1
    if top > SPILL_SLOTS:
        raise Abort(f"more than {SPILL_SLOTS} values in one iteration")
    return calls, top


_PAIRS: Final = {"_SPILL_INT": "_SPILL_INT2", "_SPILL_FLOAT": "_SPILL_FLOAT2",
                 "_PUSH_SLOT_O": "_PUSH_SLOT_O2"}


def _paired(rows: list[Row]) -> list[Row]:
    """Two spills of one kind in a row as one uop (_SPILL_INT2,
    _SPILL_FLOAT2), and two pushes of objects from slots (_PUSH_SLOT_O2): an
    exit stub begins with its spills and ends with its stack, and stubs are
    most of a trace's uops, each one to lower, copy and patch."""
    result: list[Row] = []
    for row in rows:
        last = result[-1] if result else None
        if type(row) is Instruction and type(last) is Instruction and row.name in _PAIRS \
                and last.name == row.name:
            result[-1] = make(_PAIRS[row.name], (*last.ins, *row.ins), (), last.oparg, row.oparg)
        else:
            result.append(row)
    return result


def _pinned(rec: Recording, homes: list[int]) -> dict[int, str]:
    """Which locals live in registers for the whole loop: the int local and
    the two float locals read or written most often. (A uop takes up to
    three int registers, two float ones: that many stay for the values.)"""
    counts = {slot: 0 for slot in homes}
    for op in rec.ops:
        if op.name in ("load", "store") and op.arg in counts:
            counts[op.arg] += 1
    pinned: dict[int, str] = {}
    for kind, registers in (("i", ("i3",)), ("f", ("f3", "f2"))):
        ranked = sorted((slot for slot in homes if rec.slots[slot] == kind), key=lambda s: -counts[s])
        pinned.update(zip(ranked, registers, strict=False))
    return pinned


def _borrowable(rec: Recording, pinned: dict[int, str]) -> dict[str, frozenset[int]]:
    """Where a pinned local's register may hold other values: the ops just
    before a store to the local, back to the last one that reads the value
    it holds, may leave (an exit writes the register to the local's home)
    or is a barrier (which does too). The store vacates the register.

        zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
        # after `2.0 * zr`, zr's register holds a dead value until the store:
        # one more register for the five values live then (no spill)."""
    windows: dict[str, frozenset[int]] = {}
    for slot, register in pinned.items():
        loads = {v for v, op in enumerate(rec.ops) if op.name == "load" and op.arg == slot}
        free: set[int] = set()
        for store, op in enumerate(rec.ops):
            if op.name != "store" or op.arg != slot:
                continue
            for index in range(store - 1, -1, -1):
                before = rec.ops[index]
                if _may_leave(before) or before.name not in _ALLOCATED or index in loads \
                        or any(value in loads for value in before.args):
                    break
                free.add(index)
        windows[register] = frozenset(free)
    return windows


def _may_leave(op: Op) -> bool:
    """Whether the lowering gives the op an exit (ops that cannot fail, such
    as float arithmetic, have a snapshot all the same)."""
    if op.snapshot is None:
        return False
    if op.name == "binary":
        return UOPS[_binary_uop(op)].may_exit
    if op.name == "math":
        return UOPS[f"_{op.arg}_{_KIND[op.kind]}"].may_exit
    if op.name == "neg":
        return op.kind == "i"
    return True


def power_bounds(exponent: float) -> tuple[float, float] | None:
    """For a constant exponent b that is finite and not an integer, the
    bases a (all positive, normal) whose a ** b is surely finite and normal:
    log2(a ** b) = b * log2(a) is kept within (-1021, 1023), a factor of two
    inside the range of normal doubles, far more than pow's rounding. None
    for another exponent (an integer one has powers of negative bases)."""
    if not math.isfinite(exponent) or exponent == math.floor(exponent):
        return None
    low, high = sorted((-1021.0 / exponent, 1023.0 / exponent))
    lowest = 2.0 ** max(low, -1022.0)  # (no subnormal base)
    highest = 2.0 ** high if high < 1023.0 else sys.float_info.max
    return lowest, highest


def _owned(op: Op) -> str:
    """The suffix of a load's uop: B for its borrowed form (`global_b`), else O."""
    return "B" if op.name.endswith("_b") else "O"


def _binary_uop(op: Op) -> str:
    return f"_{str(op.arg).upper()}_{_KIND[op.kind]}".replace("TRUEDIV", "DIV")


def _uses(ops: list[Op]) -> dict[int, list[int]]:
    """value -> the ops that use it, ascending (an exit's snapshot uses its values)."""
    uses: dict[int, list[int]] = {}
    for index, op in enumerate(ops):
        for value in op.args:
            _used(uses, value, index)
        snapshot = op.snapshot
        if snapshot is not None:  # (its values, without the tuple Snapshot.values() makes)
            for value in snapshot.stack:
                _used(uses, value, index)
            if snapshot.reraise is not None:
                _used(uses, snapshot.reraise, index)
            for value in snapshot.drop:
                _used(uses, value, index)
    return uses


def _used(uses: dict[int, list[int]], value: int, index: int) -> None:
    at = uses.get(value)
    if at is None:
        uses[value] = [index]
    elif at[-1] != index:
        at.append(index)


def lower(rec: Recording, counter: int, fail: frozenset[str] = frozenset(),
          flagged: frozenset[int] = frozenset()) -> Lowered:
    """`counter`: the address of an int64 the trace increments per
    iteration; `fail`: the guard kinds to make fail (faults.py); `flagged`:
    number locals its bridges box (_Lowering.shadow)."""
    return _Lowering(rec, counter, fail=fail, flagged=flagged).run()


def lower_bridge(rec: Recording, parent: Lowered, exit_number: int, first_exit: int,
                 loop_address: int, counter: int, fail: frozenset[str] = frozenset()) -> Lowered:
    """A bridge from the parent's exit `exit_number`; its own exits are
    numbered from `first_exit`; `counter`: an int64 it increments per entry;
    `fail`: the guard kinds forced to fail (faults.py)."""
    return _Lowering(rec, counter, parent.lowering, exit_number, first_exit, fail).run_bridge(loop_address)
