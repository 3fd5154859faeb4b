"""Loop-invariant code motion in a loop that runs code (licm.py does the
rest): loads of globals, builtins and module attributes, checked once
before the loop, and in the loop one test of an epoch where they were.

Code the loop runs (a call, a `__del__`) may rebind any global. The
recorder watches the dict and key of every load it records (CPython's dict
watchers; copyjit.h's watch_state): a change of a watched key, or anything
else done to a watched dict, changes one epoch. So the loads and their
guards move before `loop_head`, with an op that reads the epoch there
(`watch_epoch`), and where the loop made the first load after code ran it
tests that the epoch is still the one read (`guard_watched`, leaving where
that load was, for the interpreter to load it). (Not in a loop that stores
a global itself: the store would change the epoch at every iteration.)

    v0 = range_next.i() | exit @20 normal          v0 = watch_epoch.i()
    v1 = global.o() (3, 95) | exit @24 ...         v1 = global_b.o() (3, 95) | exit @16
         guard_is.(v1) 1234 | exit @30 ...              guard_is.(v1) 1234 | exit @16
    v3 = call.o(v1, ...) ...               =>           loop_head.()
                                               v3 = range_next.i() | exit @20 normal
                                                    guard_watched.(v0) | exit @24 ...
                                               v5 = const_o.o() 1234
                                               v6 = call.o(v5, ...) ...

What the load found keeps the identity its guard checked: it is a
constant in the loop. A loaded object that is not one (a module, whose
attribute is the load after it) moves only when the loop uses it (its type
guard, kept in the loop too; an exit's stack) with no code between the
first load of its chain and the use: its dict still holds it there, since
the epoch was tested at that first load with no code since. Guards that
code can make fail without touching a dict (a function's version, a type's)
stay in the loop, on the constant.
"""

from __future__ import annotations

from copyjit.opt.licm import _hoisted, _invariant_loads, _renumbered, borrowed_constants, identities
from copyjit.opt.passes import runs_code
from copyjit.trace.ir import Op, Recording

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

_EPOCH: Final = 0  # the epoch's op, first in the recording that `_with_epoch` makes


def licm_code(rec: Recording) -> Recording:
    """The recording with its invariant loads before `loop_head` and the
    epoch tested in the loop (unchanged when none can move)."""
    ops = rec.ops
    if any(op.name == "store_global" for op in ops):
        return rec  # its own store would change the epoch at every iteration
    chain = _invariant_loads(rec)
    fixed = identities(rec, chain)
    moving = _movable(rec, chain, set(fixed))
    if not moving:
        return rec
    roots = {value for value in moving if not ops[value].args}
    # Once moved, a load's release frees nothing: a constant's the trace's
    # constants hold, another's is dropped (_movable judged by every release).
    code = runs_code(rec, moving)
    guarded, dirty = [], True  # (the loop runs code: some ran before its head, in the iteration before)
    for index in range(len(ops)):
        if index in roots and dirty:
            guarded.append(index)
            dirty = False
        dirty = dirty or code[index]
    rec, number = _with_epoch(rec, guarded, {value for value in moving if value not in fixed})
    ops = rec.ops
    chain = {number[value] for value in moving}
    fixed = {number[value]: obj for value, obj in fixed.items() if value in moving}
    moved = {_EPOCH, *chain}
    firsts = set(number.values())  # (not the second of a type guard made twice)
    for index in firsts:
        op = ops[index]
        if not op.args or op.args[0] not in chain:
            continue
        # A constant's identity guard; another load's type guard, and its
        # release (a borrowed load's: dropped).
        if op.name == "guard_is" if op.args[0] in fixed else op.name in ("guard_type", "release"):
            moved.add(index)
    borrowed, releases = borrowed_constants(ops, fixed, moved)
    return _hoisted(rec, moved | releases, chain, fixed, borrowed, {}, {}, {})


def _movable(rec: Recording, chain: set[int], fixed: set[int]) -> set[int]:
    """The loads of `chain` that can move: each whose object is a constant
    (in `fixed`), and each other whose uses in the loop are its type guard
    and exits' stacks, with no code between its chain's first load and
    them; and the loads they are made from, which must move too."""
    ops = rec.ops
    code = runs_code(rec)
    before = [0]
    for runs in code:
        before.append(before[-1] + runs)
    uses: dict[int, list[tuple[int, Op]]] = {}
    seen: dict[int, list[int]] = {}
    for index, op in enumerate(ops):
        for value in op.args:
            uses.setdefault(value, []).append((index, op))
        if op.snapshot is not None:
            for value in (*op.snapshot.stack, *op.snapshot.drop):
                seen.setdefault(value, []).append(index)
            if op.snapshot.reraise is not None:
                seen.setdefault(op.snapshot.reraise, []).append(index)

    def root(value: int) -> int:
        while ops[value].args:
            value = ops[value].args[0]
        return value

    moving = set(chain)
    while True:
        keep = set()
        for value in moving:
            start = before[root(value)]
            if any(arg not in moving for arg in ops[value].args) or before[value] != start:
                continue  # its object stays in the loop, or code runs between its chain's loads
            if value not in fixed and not all(
                    (op.name in ("guard_type", "release") or index in moving) and before[index] == start
                    for index, op in uses.get(value, ())):
                continue
            if value not in fixed and any(before[index + 1] != start for index in seen.get(value, ())):
                continue  # an exit's stack holds it where code may have run (a call's exit: after it)
            keep.add(value)
        if keep == moving:
            return moving
        moving = keep


def _with_epoch(rec: Recording, guarded: list[int], kept: set[int]) -> tuple[Recording, dict[int, int]]:
    """The recording with `watch_epoch` first, a `guard_watched` of it
    before each op in `guarded` (with its snapshot), and each type guard
    of a `kept` load twice: one to move, one to stay in the loop; and the
    number of each old op in it (the first of a twice guard)."""
    ops: list[Op] = [Op("watch_epoch", "i")]
    origin = [0]
    number: dict[int, int] = {}
    at = set(guarded)
    for index, op in enumerate(rec.ops):
        if index in at:
            load = _renumbered(op, number)  # (a chain's first load: no args)
            ops.append(Op("guard_watched", "", (_EPOCH,), None, load.snapshot))
            origin.append(index)
        number[index] = len(ops)
        ops.append(_renumbered(op, number))
        origin.append(index)
        if op.name == "guard_type" and op.args[0] in kept:
            ops.append(_renumbered(op, number))  # the one that stays
            origin.append(index)
    positions = None if rec.positions is None else [rec.positions[index] for index in origin]
    return Recording(rec.code, rec.dst, rec.src, ops, dict(rec.slots), list(rec.stored), rec.constants,
                     positions), number
