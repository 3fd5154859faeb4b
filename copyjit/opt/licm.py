"""Loop-invariant code motion: loads of globals, builtins and module
attributes, and their guards, checked once before the loop instead of in
every iteration.

A loop's recording is one iteration. When nothing in it can run Python code
(no call, no dunder method, no store to a global, no release that could
free an object and run its `__del__`), nothing in it can rebind a global or
a module attribute either, so what a load of one found in the first
iteration, it finds in every one. The loads and their guards move before
`loop_head` (the lowering runs those ops once, at the trace's entry and
after each bridge, whose code may have run anything) and a loaded object
whose identity was guarded is a constant inside the loop:

    v3 = global.o() (10, 95) | exit @86 stack v2       v0 = global.o() (10, 95) | exit @78
         guard_is.(v3) 1234 | exit @98 stack ...  =>        guard_is.(v0) 1234 | exit @78 drop v0
         ...                                                release.(v0)
         release.(v3)                                       loop_head.()
                                                       v3 = const_b.o() 1234
                                                            ...

A constant the loop only releases (and exits see: they make a reference
to it) is `const_b`, borrowed from the trace's constants, which hold it:
no reference count pair per iteration. One the loop passes on is `const_o`
(a reference of the trace's own, released as the load's was).

A moved op leaves, when it fails, at the loop's head with nothing on the
stack (nothing of the iteration has run yet), releasing the loads before it.
The interpreter, and the eval breaker (which leaves the trace before any
other thread or signal handler runs), see globals change only outside.
Bridges are not loops: the optimizer runs this pass on loop traces only.
"""

from __future__ import annotations

from copyjit.opt.passes import LOOKS, MAY_RUN_CODE, PLAIN_TYPES
from copyjit.trace.ir import Op, Recording, Snapshot

_LOADS = frozenset({"global", "builtin", "attr_module"})  # what they find changes only if code runs
_GUARDS = frozenset({"guard_type", "guard_is", "guard_function"})


def licm(rec: Recording) -> Recording:
    """The recording with its invariant loads and guards before `loop_head`
    (unchanged when there are none, or when the loop may run code)."""
    if any(op.name == "loop_head" for op in rec.ops):
        return rec
    chain = _invariant_loads(rec)
    constants = {id(c): c for c in rec.constants}
    fixed = {value: op.arg for value in chain for op in rec.ops
             if op.name == "guard_is" and op.args[0] == value and op.arg in constants}
    chain = _closed(rec, chain, set(fixed))
    fixed = {value: obj for value, obj in fixed.items() if value in chain}
    if not _runs_no_code(rec, set(chain) | set(fixed)):
        return rec
    slots = _borrowed_locals(rec)
    if not fixed and not slots:
        return rec
    moved = {index for index, op in enumerate(rec.ops)
             if index in chain or (op.name in _GUARDS and op.args[0] in chain)
             or (op.name == "release" and op.args[0] in chain and op.args[0] not in fixed)}
    # A constant the loop only releases (and exits see) is borrowed from
    # the trace's constants: no reference count pair per iteration.
    taking: dict[int, list[int]] = {value: [] for value in fixed}
    for index, op in enumerate(rec.ops):
        for value in op.args:
            if value in taking and index not in moved:
                taking[value].append(index)
    borrowed = {value for value, users in taking.items() if all(rec.ops[u].name == "release" for u in users)}
    moved |= {user for value in borrowed for user in taking[value]}
    return _hoisted(rec, moved, chain, fixed, borrowed, slots)


# What may be done with an object the trace borrows (holds no reference to):
# read it, guard it, make a reference of its own (copy_o); nothing that
# takes or stores it.
_READ_ONLY = LOOKS | {"release"}


def _borrowed_locals(rec: Recording) -> dict[int, int | None]:
    """Object locals the loop only reads (never stores), and only reads
    from: slot -> the type every read of it is guarded to (None: not
    guarded). The frame holds such a local for the whole loop, and no code
    runs in it, so the loop reads it without a reference of its own
    (load_b), its type checked once before the loop."""
    users: dict[int, list[Op]] = {}
    for op in rec.ops:
        for value in op.args:
            users.setdefault(value, []).append(op)
    candidates: dict[int, int | None] = {}
    refused: set[int] = set(rec.stored)
    for index, op in enumerate(rec.ops):
        slot = op.arg
        if op.name != "load_o" or not isinstance(slot, int) or slot in refused:
            continue
        taking = users.get(index, [])
        types = {user.arg for user in taking if user.name == "guard_type"}
        known = candidates.get(slot)
        if any(user.name not in _READ_ONLY for user in taking) or len(types) > 1 \
                or (types and known is not None and known not in types):
            refused.add(slot)
            candidates.pop(slot, None)
            continue
        type_id = next(iter(types)) if types else known
        candidates[slot] = type_id if isinstance(type_id, int) else None
    return candidates


def _invariant_loads(rec: Recording) -> set[int]:
    """Loads whose objects (if any) are invariant loads too."""
    chain: set[int] = set()
    for index, op in enumerate(rec.ops):
        if op.name in _LOADS and all(arg in chain for arg in op.args):
            chain.add(index)
    return chain


def _closed(rec: Recording, chain: set[int], fixed: set[int]) -> set[int]:
    """The loads that can all move: a load whose object is not a constant
    in the loop (not identity-guarded) may only be used by moved ops, so
    that the loop never needs it; a load depending on one that cannot move
    cannot either."""
    while True:
        moving = {index for index, op in enumerate(rec.ops)
                  if index in chain or (op.name in _GUARDS | {"release"} and op.args and op.args[0] in chain)}
        keep = set(chain)
        for index, op in enumerate(rec.ops):
            if index in moving:
                continue
            for value in op.uses():
                if value in keep and value not in fixed:
                    keep.discard(value)
        keep = {value for value in keep if all(arg in keep for arg in rec.ops[value].args)}
        if keep == chain:
            return chain
        chain = keep


def _runs_no_code(rec: Recording, invariant: set[int]) -> bool:
    """Whether no op of the loop can run Python code: the only ones that
    could are releases of objects whose release frees nothing (plain
    numbers and strings, constants, what a local or a global still holds)."""
    harmless = _frees_nothing(rec, invariant)
    return all(op.name not in MAY_RUN_CODE or (op.name == "release" and op.args[0] in harmless)
               for op in rec.ops)


def _frees_nothing(rec: Recording, invariant: set[int]) -> set[int]:
    """Objects whose release frees nothing (`invariant` loads: their dicts
    hold them; copies of those), or only an int, float, bool, str or None
    (whose freeing runs no code)."""
    stored = set(rec.stored)
    harmless = set(invariant)
    for index, op in enumerate(rec.ops):
        if op.name in ("box", "const_o") or (op.name == "load_o" and op.arg not in stored):
            harmless.add(index)  # the frame holds a local it never stores all the iteration
        elif op.name == "copy_o" and op.args[0] in harmless:
            harmless.add(index)
        elif (op.name == "guard_type" and op.arg in PLAIN_TYPES) or op.name == "unbox":
            harmless.add(op.args[0])
    return harmless


def _hoisted(rec: Recording, moved: set[int], chain: set[int], fixed: dict[int, int],
             borrowed: set[int], slots: dict[int, int | None]) -> Recording:
    """The `moved` ops before loop_head (leaving at the loop's head,
    releasing the loads made before), releases of their loads after them,
    and the identity-guarded loads as constants in the loop (`borrowed`
    ones as const_b: the trace's constants hold them; the loop's releases
    of them are among the `moved` ops, dropped)."""
    number: dict[int, int] = {}
    ops: list[Op] = []
    origin: list[int] = []  # per new op, the op it comes from (for positions)
    loaded: list[int] = []
    for index in sorted(moved):
        op = rec.ops[index]
        if op.name == "release":
            continue  # released all together at the end (or a borrowed constant's: none)
        snapshot = Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))
        number[index] = len(ops)
        ops.append(Op(op.name, op.kind, tuple(number[a] for a in op.args), op.arg, snapshot))
        origin.append(index)
        if index in chain:
            loaded.append(index)
    # Each borrowed local, read and its type checked once (it may be unbound:
    # leave before the loop then).
    borrowing = {index for index, op in enumerate(rec.ops) if op.name == "load_o" and op.arg in slots}
    dropped = {index for index, op in enumerate(rec.ops)
               if op.name in ("release", "guard_type") and op.args[0] in borrowing}
    for slot, type_id in slots.items():
        first = min(index for index in borrowing if rec.ops[index].arg == slot)
        unbound_exit = Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))
        check = None if rec.ops[first].snapshot is None else unbound_exit
        number[first] = len(ops)
        ops.append(Op("load_o", "o", (), slot, check))
        origin.append(first)
        loaded.append(first)
        if type_id is not None:
            ops.append(Op("guard_type", "", (number[first],), type_id,
                          Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))))
            origin.append(first)
    ops += [Op("release", "", (number[v],)) for v in loaded]
    origin += loaded
    ops.append(Op("loop_head", ""))
    origin.append(0)
    for index, op in enumerate(rec.ops):
        if index in dropped:
            continue
        if index in borrowing:
            number[index] = len(ops)
            ops.append(Op("load_b", "o", (), op.arg))
            origin.append(index)
        elif index in fixed:
            number[index] = len(ops)
            ops.append(Op("const_b" if index in borrowed else "const_o", "o", (), fixed[index]))
            origin.append(index)
        elif index not in moved:
            number[index] = len(ops)
            ops.append(_renumbered(op, number))
            origin.append(index)
    positions = None if rec.positions is None else [rec.positions[index] for index in origin]
    return Recording(rec.code, rec.dst, rec.src, ops, dict(rec.slots), list(rec.stored), rec.constants,
                     positions)


def _renumbered(op: Op, number: dict[int, int]) -> Op:
    args = tuple(number[a] for a in op.args)
    snapshot = op.snapshot
    if snapshot is not None:
        snapshot = Snapshot(snapshot.offset, tuple(number[v] for v in snapshot.stack), snapshot.normal,
                            None if snapshot.reraise is None else number[snapshot.reraise], snapshot.on_frame,
                            tuple(number[v] for v in snapshot.drop))
    return Op(op.name, op.kind, args, op.arg, snapshot)
