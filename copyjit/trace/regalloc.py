"""Where a trace's values live between uops: machine registers, else spill slots.

Every stencil takes i0..i3 and f0..f3 as arguments and passes the ones it
does not write on to the next (docs/backend.md §2), so a value left in a
register stays there, untouched, across any number of uops. This allocator
walks the trace once, in order (a trace is a straight line: linear scan is
exact), and gives each value a register when it is made, reloading it into
one when a uop needs it and it is not in one. When a register is needed and
none is free, the value whose next use is furthest away leaves (Belady's
choice): spilled to its slot first unless a copy is there already.

A value's *slot* is where a valid copy of it is in memory, if any: its own
temp slot, or, for a local read and not yet used, the local's home slot
(read only when first used: `load` costs nothing until then). A store to a
home makes every value that still relies on the old contents take a copy
first.

Exits see the state of the uop that leaves: an exit stub first spills what
it needs from registers to its canonical place (a value on the snapshot's
stack: its temp slot), then does what it did when every value lived in
memory. Bridges and nested loops therefore see the same memory layout as
before. An op the lowering does not allocate for (a *barrier*: calls,
nested loops) finds every live value in its temp slot and no register in
use.

Registers reserved for locals (the lowering's pinned ones) are not
allocated, except at the ops where the lowering says their local's value
is dead (`borrowable`: up to the next store to the local, which vacates it).
"""

from __future__ import annotations

from copyjit.backend.asm import Row, make

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

INT_REGISTERS: Final = ("i0", "i1", "i2", "i3")
FLOAT_REGISTERS: Final = ("f0", "f1", "f2", "f3")
_BANK: Final = {"i": "i", "o": "i", "f": "f"}
SUFFIX: Final = {"i": "INT", "o": "INT", "f": "FLOAT"}  # of spill and reload uops; objects spill as words
# The spill and reload uops by kind: constant names, not f-strings, since
# make() hashes and compares the name of every row it is asked for (a new
# string's hash is computed anew each time).
SPILL: Final = {kind: f"_SPILL_{suffix}" for kind, suffix in SUFFIX.items()}
RELOAD: Final = {kind: f"_RELOAD_{suffix}" for kind, suffix in SUFFIX.items()}


class Allocator:
    """`kinds[v]`: the kind of value v ("i", "f", "o"; others have no
    location); `temp[v]`: its own spill slot; `uses[v]`: the ops that use
    it (ascending; an op's snapshot counts as a use at that op)."""

    def __init__(self, kinds: dict[int, str], temp: dict[int, int], uses: dict[int, list[int]],
                 emit: list[Row], reserved: frozenset[str] = frozenset(),
                 borrowable: dict[str, frozenset[int]] | None = None) -> None:
        self.kinds, self.temp, self.uses = kinds, temp, uses
        self.last = {value: at[-1] for value, at in uses.items() if at}  # value -> its last use
        # release_dead's schedule: the values whose last use is at each op.
        # It forgets, at each call, the values that died since the one
        # before (and those placed after their last use, `late`), instead
        # of testing every value in a place.
        dying: dict[int, list[int]] = {}
        for value, last_use in self.last.items():
            dying.setdefault(last_use, []).append(value)
        self.dying = dying
        self.released = 0  # every value whose last use is before this was forgotten
        self.late: list[int] = []
        # The registers values are allocated to (`reserved` ones hold locals
        # for the whole loop: the lowering places values there itself).
        self.pools = {bank: tuple(r for r in names if r not in reserved)
                      for bank, names in (("i", INT_REGISTERS), ("f", FLOAT_REGISTERS))}
        # A reserved register may take values at these ops too: its local's
        # value is dead there, until a store to it (which vacates it).
        self.borrowable = borrowable or {}
        # (bank, op) -> the reserved registers of that bank it may take there
        self.borrowed: dict[tuple[str, int], tuple[str, ...]] = {}
        for register, at in self.borrowable.items():
            for index in at:
                key = (register[0], index)
                self.borrowed[key] = (*self.borrowed.get(key, ()), register)
        self.rows = emit  # where spills and reloads go (the lowering's rows)
        self.register: dict[int, str] = {}  # value -> register holding it
        self.holder: dict[str, int] = {}  # register -> value
        self.slot: dict[int, int] = {}  # value -> a slot with a valid copy
        self.now = 0  # index of the op being lowered
        # The lowering's: the home a value being evicted may be spilled to
        # at once (its next use stores it there, and nothing between can
        # see that home: Lowering.early_home), or None.
        self.early_home: Callable[[int], int | None] | None = None

    # --- queries -------------------------------------------------------------

    def last_use(self, value: int) -> int:
        return self.last.get(value, -1)

    def next_use(self, value: int) -> int:
        for use in self.uses.get(value, ()):
            if use >= self.now:
                return use
        return 1 << 60

    def live(self) -> list[int]:
        return [v for v in {*self.register, *self.slot} if self.last_use(v) >= self.now]

    # --- definitions ---------------------------------------------------------

    def in_slot(self, value: int, slot: int) -> None:
        """The value is in memory at `slot` (and in no register)."""
        self.drop_register(value)
        self.slot[value] = slot
        self.placed(value)

    def define(self, value: int, pinned: frozenset[str] = frozenset()) -> str:
        """A register for a value the current uop writes."""
        self.drop_register(value)
        self.slot.pop(value, None)
        register = self.free_register(_BANK[self.kinds[value]], pinned)
        self.register[value], self.holder[register] = register, value
        self.placed(value)
        return register

    def use(self, value: int, pinned: frozenset[str] = frozenset()) -> str:
        """A register holding the value, reloading it into one if need be."""
        register = self.register.get(value)
        if register is not None:
            return register
        register = self.free_register(_BANK[self.kinds[value]], pinned)
        self.rows.append(make(RELOAD[self.kinds[value]], (), (register,), self.slot[value]))
        self.register[value], self.holder[register] = register, value
        self.placed(value)
        return register

    def release_dead(self, after: int) -> None:
        """Forget the values no op from `after` on uses."""
        # Twice per op: over the values that died since the last call, not
        # over every value in a place.
        last, slot = self.last.get, self.slot
        if after < self.released:  # (an earlier op again: not the lowering's order)
            for value in [v for v in self.register if last(v, -1) < after]:
                self.drop_register(value)
            for value in [v for v in slot if last(v, -1) < after]:
                del slot[value]
            return
        dying = self.dying
        for at in range(self.released, after):
            died = dying.get(at)
            if died is not None:
                for value in died:
                    self.drop_register(value)
                    slot.pop(value, None)
        self.released = after
        if self.late:  # (all dead: their last use was behind `released` already)
            for value in self.late:
                self.drop_register(value)
                slot.pop(value, None)
            self.late = []

    def placed(self, value: int) -> None:
        """The value was just put in a place: if its last use is behind
        release_dead already, the next call forgets it."""
        if self.last.get(value, -1) < self.released:
            self.late.append(value)

    def drop_register(self, value: int) -> None:
        register = self.register.pop(value, None)
        if register is not None:
            del self.holder[register]

    def free_register(self, bank: str, pinned: frozenset[str]) -> str:
        names = self.pools[bank] + self.borrowed.get((bank, self.now), ())
        for name in names:
            if name not in self.holder:
                return name
        candidates = [name for name in names if name not in pinned]
        victim = max(candidates, key=lambda name: self.next_use(self.holder[name]))
        self.evict(victim)
        return victim

    def place(self, value: int, register: str) -> None:
        """The value is (now) in `register` (a reserved one), and only there."""
        self.vacate(register)
        self.drop_register(value)
        self.slot.pop(value, None)
        self.register[value], self.holder[register] = register, value
        self.placed(value)

    def vacate(self, register: str) -> None:
        """Whatever value the register holds leaves it (to memory if still needed)."""
        value = self.holder.get(register)
        if value is None:
            return
        if self.last_use(value) >= self.now:
            self.evict(register)
        else:
            self.drop_register(value)

    def evict(self, register: str) -> None:
        value = self.holder[register]
        if value not in self.slot:
            slot = self.temp[value]
            home = self.early_home(value) if self.early_home is not None else None
            if home is not None and not self.relying_on(home, value):
                slot = home  # the store that comes next finds it there: one spill, no reload
            self.rows.append(make(SPILL[self.kinds[value]], (register,), (), slot))
            self.slot[value] = slot
            self.placed(value)
        self.drop_register(value)

    # --- memory --------------------------------------------------------------

    def relying_on(self, home: int, keep: int) -> list[int]:
        """The live values other than `keep` whose copy in memory is the
        home slot `home` (forgetting the dead ones whose copy it was)."""
        live = []
        for value, slot in list(self.slot.items()):
            if slot == home and value != keep:
                if self.last_use(value) < self.now:
                    del self.slot[value]
                else:
                    live.append(value)
        return live

    def overwriting(self, home: int, keep: int) -> None:
        """A store is about to write the home slot `home`: values that rely
        on its old contents (other than `keep`, the value being stored) move."""
        for value in self.relying_on(home, keep):
            self.use(value)
            del self.slot[value]

    def stored(self, value: int, home: int) -> None:
        """The value was just written to the home slot `home`: a copy of it
        is there (until a store to that home moves it: overwriting), so
        evicting it later needs no spill of its own."""
        if value not in self.slot:
            self.slot[value] = home
            self.placed(value)

    def materialize(self, value: int) -> None:
        """Make the value's temp slot hold it."""
        temp = self.temp[value]
        if self.slot.get(value) == temp:
            return
        register = self.use(value)
        self.rows.append(make(SPILL[self.kinds[value]], (register,), (), temp))
        self.slot[value] = temp
        self.placed(value)

    def flush(self) -> None:
        """Before a barrier: every live value in its temp slot, no register used."""
        for value in sorted(self.live()):
            self.materialize(value)
        for value in list(self.register):
            self.drop_register(value)

    def exit_spills(self, values: list[int]) -> list[Row]:
        """What an exit stub must run first so that each of `values` is in
        its temp slot, given where they are now (at the uop that leaves)."""
        rows: list[Row] = []
        copies: list[Row] = []
        for value in values:
            if value not in self.kinds or self.slot.get(value) == self.temp[value]:
                continue
            kind = self.kinds[value]
            register = self.register.get(value)
            if register is not None:
                rows.append(make(SPILL[kind], (register,), (), self.temp[value]))
            else:  # still in a local's home slot: copy it, after the registers are out
                scratch = "f0" if kind == "f" else "i0"
                copies += [make(RELOAD[kind], (), (scratch,), self.slot[value]),
                           make(SPILL[kind], (scratch,), (), self.temp[value])]
        return rows + copies
