"""The register allocator (copyjit/trace/regalloc.py), on its own: what it
spills and reloads for a given sequence of definitions and uses."""

from __future__ import annotations

from copyjit.backend.asm import Instruction, Row, make
from copyjit.trace.lower import CLOBBERING
from copyjit.trace.regalloc import Allocator
from copyjit.uops import UOPS

HOME = 3  # a local's home slot


def _spills(rows: list[Row]) -> list[tuple[str, int]]:
    return [(row.name, row.oparg) for row in rows
            if isinstance(row, Instruction) and row.name.startswith("_SPILL")]


def _pressure(stored: bool, early: bool = False, held: bool = False) -> tuple[Allocator, list[Row]]:
    """Value 0 made in a register (and, if `stored`, written to HOME as a
    store to a local is), then four more floats made while 0 is still
    needed: one of the four registers must give way, and 0's use is the
    furthest. `early`: the lowering says 0's next use stores it to HOME
    with nothing between that sees HOME (Lowering.early_home); `held`:
    value 5, a read of that local not used yet, relies on HOME's contents."""
    rows: list[Row] = []
    kinds = {value: "f" for value in range(6)}
    temp = {value: 10 + value for value in kinds}
    uses = {0: [1, 9], 1: [9], 2: [9], 3: [9], 4: [9], 5: [10]}
    alloc = Allocator(kinds, temp, uses, rows)
    if early:
        alloc.early_home = lambda value: HOME if value == 0 else None
    if held:
        alloc.in_slot(5, HOME)
    register = alloc.define(0)
    if stored:
        rows.append(make("_SPILL_FLOAT", (register,), (), HOME))
        alloc.stored(0, HOME)
    for value in range(1, 5):
        alloc.now = value
        alloc.define(value)
    return alloc, rows


def test_a_value_a_store_wrote_to_its_home_is_evicted_without_a_spill() -> None:
    alloc, rows = _pressure(stored=True)
    assert _spills(rows) == [("_SPILL_FLOAT", HOME)]  # the store's own, nothing more
    alloc.now = 9
    register = alloc.use(0)
    assert rows[-1] == make("_RELOAD_FLOAT", (), (register,), HOME)


def test_a_value_with_no_copy_in_memory_is_spilled_to_its_own_slot() -> None:
    alloc, rows = _pressure(stored=False)
    assert _spills(rows) == [("_SPILL_FLOAT", 10)]
    alloc.now = 9
    register = alloc.use(0)
    assert rows[-1] == make("_RELOAD_FLOAT", (), (register,), 10)


def test_a_store_over_the_home_moves_the_value_that_relied_on_it() -> None:
    # Value 0's only copy in memory is HOME; another store to that local
    # must not lose it: overwriting() takes it back into a register first.
    alloc, _ = _pressure(stored=True)
    alloc.now = 5
    alloc.overwriting(HOME, keep=4)
    assert alloc.slot.get(0) != HOME
    assert 0 in alloc.register


def test_the_lowering_knows_every_uop_that_clobbers_registers() -> None:
    # lower.py keeps values out of registers across these (Lowering.clobbered).
    assert {name for name, op in UOPS.items() if op.clobbers} == CLOBBERING


def test_a_value_whose_next_use_stores_it_is_spilled_to_that_home() -> None:
    # One spill, there, and the store finds it.
    alloc, rows = _pressure(stored=False, early=True)
    assert _spills(rows) == [("_SPILL_FLOAT", HOME)]
    assert alloc.slot[0] == HOME


def test_no_early_spill_over_a_home_a_live_value_relies_on() -> None:
    alloc, rows = _pressure(stored=False, early=True, held=True)
    assert _spills(rows) == [("_SPILL_FLOAT", 10)]
    assert alloc.slot[5] == HOME
