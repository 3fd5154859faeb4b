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

    v3 = global.o() (10, 95) | exit @86 stack v2       v0 = global_b.o() (10, 95) | exit @78
         guard_is.(v3) 1234 | exit @98 stack ...  =>        guard_is.(v0) 1234 | exit @78
         ...                                                loop_head.()
         release.(v3)                                  v3 = const_b.o() 1234
                                                            ...

A load moved borrows what it finds (`global_b`, `builtin_b`,
`attr_module_b`): its dict holds the object as long as no code runs.

A constant the loop only releases (and exits see: they make a reference
to it) is `const_b`, borrowed from the trace's constants, which hold it:
no reference count pair per iteration. One the loop passes on is `const_o`
(a reference of the trace's own, released as the load's was).

A loaded object that is not a constant (no identity guard: a float global,
`math.pi`, a global list the loop indexes or stores into) moves too when
the loop only looks at it (guards, unboxes, reads or stores an item of it,
puts it on an exit's stack, which makes a reference to it; _looks_at): the
loop goes on using the borrowed value, which lives in its spill slot across
`loop_head`, and its unbox moves after it (_computed). One the loop gives
away (appends, stores) stays in the loop, and so do the loads made from it.

An item read the same every iteration (`a[i]` in `for k in range(n): s +=
a[i][k]`, with `a` a local the loop only reads and `i` an int local it never
stores; `T[0]` of a tuple global) moves too when the loop writes no list: it
is read once, with its type check, before the loop, and the loop goes on
using that value (in its spill slot: the one value that outlives the
lowering's pre-header). The container holds the item all the loop, so the
read borrows it (subscr_list_b); an exit that hands it to the frame makes a
reference. (A release of an item whose container is held that way frees
nothing either: it does not stop the loop from moving its loads.)

A store into a list item may free the item it replaces, whatever object
that was: with a guard to move, the store becomes its `plain` form, which
leaves the trace first when that item is not a float, int, str or immortal
(_plain_stores); the interpreter stores it, and any `__del__` runs there.

A moved op leaves, when it fails, at the loop's head with nothing on the
stack (nothing of the iteration has run yet), releasing the loads before it.
The interpreter, and the eval breaker (which leaves the trace before any
other thread or signal handler runs), see globals change only outside.
Bridges are not loops: the optimizer runs this pass on loop traces only.
"""

from __future__ import annotations

from copyjit.opt.passes import LIST_WRITES, LOOKS, PLAIN_TYPES, runs_code
from copyjit.trace.ir import Op, Recording, Snapshot

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

_LOADS: Final = frozenset({"global", "builtin", "attr_module"})  # what they find changes only if code runs
_GUARDS: Final = frozenset({"guard_type", "guard_is", "guard_function"})
# Item reads that check their index themselves (exit when out of range),
# by the type their container must have; the same read, borrowed.
_READS: Final = {"subscr_list": list, "subscr_tuple": tuple}
_BORROWED_READS: Final = {"subscr_list": "subscr_list_b", "subscr_tuple": "subscr_tuple_b",
                          "attr_instance": "attr_instance_b"}


def licm(rec: Recording) -> Recording:
    """The recording with its invariant loads and guards before `loop_head`
    (unchanged when there are none); in a loop that may run code, licm_code's."""
    if any(op.name == "loop_head" for op in rec.ops):
        return rec
    chain = _invariant_loads(rec)
    constants = {id(c): c for c in rec.constants}
    fixed = identities(rec, chain)
    chain = _closed(rec, chain, set(fixed))
    fixed = {value: obj for value, obj in fixed.items() if value in chain}
    slots = _borrowed_locals(rec)
    versions = _versions(rec, slots)
    reads = _invariant_reads(rec, {value: constants[obj] for value, obj in fixed.items()}, slots, versions)
    if not chain and not reads and all(type_id is None for type_id in slots.values()):
        # No guard to move (borrow makes the reads of locals load_b). (Nor
        # what the loop computes from invariants: ops before its loop would
        # cost its inlined copy their run at each entry; not measured since
        # inlined loops run pre-headers.)
        return rec
    plain = _plain_stores(rec, set(chain) | set(fixed) | set(reads.values()), constants)
    if plain is None:  # the loop may run code: only loads move, with an epoch to test (licm_code.py)
        from copyjit.opt.licm_code import licm_code  # (it builds on this module)
        return licm_code(rec)
    rec = plain
    moved = {index for index, op in enumerate(rec.ops)
             if index in chain or (op.name in _GUARDS and op.args[0] in chain)
             or (op.name == "release" and op.args[0] in chain and op.args[0] not in fixed)}
    borrowed, releases = borrowed_constants(rec.ops, fixed, moved)
    moved |= releases
    rec = _hoisted(rec, moved, chain, fixed, borrowed, slots, versions, reads)
    return _computed(rec) or rec


def identities(rec: Recording, chain: set[int]) -> dict[int, int]:
    """The loads of `chain` whose object an identity guard fixes to one of
    the trace's constants: load -> that constant's id."""
    constants = {id(c) for c in rec.constants}
    return {op.args[0]: op.arg for op in rec.ops
            if op.name == "guard_is" and op.args[0] in chain and op.arg in constants}


def borrowed_constants(ops: list[Op], fixed: dict[int, int], moved: set[int]) -> tuple[set[int], set[int]]:
    """The identity-guarded loads (`fixed`) the loop only releases (and
    exits see), which it borrows from the trace's constants (no reference
    count pair per iteration), and those releases, dropped with the other
    `moved` ops."""
    taking: dict[int, list[int]] = {value: [] for value in fixed}
    for index, op in enumerate(ops):
        for value in op.args:
            if value in taking and index not in moved:
                taking[value].append(index)
    borrowed = {value for value, users in taking.items() if all(ops[u].name == "release" for u in users)}
    return borrowed, {user for value in borrowed for user in taking[value]}


# What may be done with an object the trace borrows (holds no reference to):
# read it, guard it, make a reference of its own (copy_o), store into it
# (a list: _STORES); nothing that takes or stores it.
_READ_ONLY: Final = LOOKS | {"release"}
_STORES: Final = frozenset({"store_subscr_list", "store_subscr_list_f"})


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
        if any(not _looks_at(user, position) for user in taking
               for position, arg in enumerate(user.args) if arg == index) or len(types) > 1 \
                or (types and known is not None and known not in types):
            refused.add(slot)
            candidates.pop(slot, None)
            continue
        type_id = next(iter(types)) if types else known
        candidates[slot] = type_id if isinstance(type_id, int) else None
    return candidates


def _versions(rec: Recording, slots: dict[int, int | None]) -> dict[int, int]:
    """The type version each borrowed local of a known type is guarded to
    have (one version: a type's version changes only when code runs, and
    the loop runs none), checked once before the loop with its type."""
    found: dict[int, set[object]] = {}
    for op in rec.ops:
        if op.name == "guard_version":
            owner = rec.ops[op.args[0]]
            if owner.name == "load_o" and isinstance(owner.arg, int) and slots.get(owner.arg) is not None:
                found.setdefault(owner.arg, set()).add(op.arg)
    return {slot: next(iter(seen)) for slot, seen in found.items()  # type: ignore[misc]
            if len(seen) == 1 and isinstance(next(iter(seen)), int)}


def _invariant_reads(rec: Recording, fixed: dict[int, object], slots: dict[int, int | None],
                     versions: dict[int, int]) -> dict[int, int]:
    """Item reads the loop makes of the same item every iteration, and the
    guards and unboxes of those items: op -> the read it is of. A read is
    invariant when its container is (a global the loop takes as a
    constant, a local it only reads, an invariant read), the container is
    checked to be a list or tuple before the loop, its index is a constant
    or an int local the loop never stores, and the loop writes no list (a
    tuple never changes). An attribute an instance holds in its values
    (attr_instance) is invariant when the instance is a local the loop only
    reads, of a type whose version is checked before the loop: only code
    could set it. The loop only looks at the item: the container holds it,
    and the loop runs no code that could free it, so the read before the
    loop borrows it."""
    ops = rec.ops
    writes = any(op.name in LIST_WRITES for op in ops)
    types: dict[int, type] = {value: type(obj) for value, obj in fixed.items()}
    for index, op in enumerate(ops):
        if op.name == "load_o" and op.arg in slots and slots[op.arg] is not None:
            types[index] = _TYPE_IDS.get(slots[op.arg], object)
    numbers = {index for index, op in enumerate(ops) if op.kind == "i" and (
        op.name == "const" or (op.name == "load" and op.arg not in rec.stored))}
    # Each value only read: every op taking it is _READ_ONLY. (A list per
    # value, not a list of its users: one name test per op.)
    read_only = [True] * len(ops)
    for op in ops:
        if op.args and op.name not in _READ_ONLY:
            for value in op.args:
                read_only[value] = False
    hoisted: dict[int, int] = {}
    for index, op in enumerate(ops):
        if op.name in _READS and types.get(op.args[0]) is _READS[op.name] and op.args[1] in numbers \
                and not (writes and op.name == "subscr_list") and read_only[index]:
            hoisted[index] = index
            types[index] = object  # (until a guard before the loop says)
        elif op.name == "attr_instance" and _borrowing(ops[op.args[0]], versions) and read_only[index]:
            hoisted[index] = index
            types[index] = object
        elif op.name in ("guard_type", "unbox") and hoisted.get(op.args[0], -1) == op.args[0]:
            hoisted[index] = op.args[0]
            if op.name == "guard_type":
                types[op.args[0]] = _TYPE_IDS.get(op.arg, object)
    return hoisted


def _borrowing(op: Op, versions: dict[int, int]) -> bool:
    """Whether `op` reads a borrowed local whose type's version is checked before the loop."""
    return op.name == "load_o" and isinstance(op.arg, int) and op.arg in versions


_TYPE_IDS: Final[dict[object, type]] = {id(list): list, id(tuple): tuple}
# Reads of an item, by the type of their container.
_ITEM_READS: Final = {"subscr_list": list, "list_item": list, "subscr_tuple": tuple, "tuple_item": tuple,
                      "attr_instance": object}  # (only code sets an attribute)


def _invariant_loads(rec: Recording) -> set[int]:
    """Loads whose objects (if any) are invariant loads too."""
    chain: set[int] = set()
    for index, op in enumerate(rec.ops):
        if op.name in _LOADS and all(arg in chain for arg in op.args):
            chain.add(index)
    return chain


_ON_LOADS: Final = _GUARDS | {"release"}  # what moves with a load it guards or releases


def _looks_at(op: Op, position: int) -> bool:
    """Whether `op` only looks at its argument at `position` (may be given
    a borrowed object there: a local, _borrowed_locals; a load, _closed)."""
    return op.name in _READ_ONLY or (op.name in _STORES and position > 0)


def _closed(rec: Recording, chain: set[int], fixed: set[int]) -> set[int]:
    """The loads that can all move: a load whose object is not a constant
    in the loop (not identity-guarded) is borrowed in the loop (its dict
    holds it), so the loop may only look at it (unbox it, read an item,
    guard it, give it to an exit, which makes a reference); a load
    depending on one that cannot move cannot either."""
    while chain:
        moving = {index for index, op in enumerate(rec.ops)
                  if index in chain or (op.name in _ON_LOADS and op.args and op.args[0] in chain)}
        keep = set(chain)
        for index, op in enumerate(rec.ops):
            if index in moving:
                continue
            snapshot = op.snapshot
            taken = [] if snapshot is None else \
                [*snapshot.drop, *(() if snapshot.reraise is None else (snapshot.reraise,))]
            for position, value in enumerate(op.args):
                if not _looks_at(op, position):
                    taken.append(value)
            for value in taken:
                if value in keep and value not in fixed:
                    keep.discard(value)
        keep = {value for value in keep if all(arg in keep for arg in rec.ops[value].args)}
        if keep == chain:
            break
        chain = keep
    return chain


def _plain_stores(rec: Recording, invariant: set[int], constants: dict[int, object]) -> Recording | None:
    """The recording, if no op of the loop can run Python code (None if one
    can): none that runs_code says may (a float stored over a list item the
    loop has just read and found plain, `v[i] += d`, frees only that float),
    except releases of objects whose release frees nothing (plain numbers
    and strings, constants, what a local or a global still holds), and
    list stores, which may free any object the item was: those become
    their `plain` form, which leaves the trace (before storing) when the
    item is not a float, int, str or immortal object."""
    runs = runs_code(rec, _frees_nothing(rec, invariant))
    stores = {index for index, op in enumerate(rec.ops)
              if runs[index] and op.name in _STORES and _plain_value(rec.ops[op.args[0]], constants)}
    if any(runs[index] for index in range(len(rec.ops)) if index not in stores):
        return None
    if not stores:
        return rec
    ops = [Op(op.name, op.kind, op.args, "plain", op.snapshot) if index in stores else op
           for index, op in enumerate(rec.ops)]
    return Recording(rec.code, rec.dst, rec.src, ops, dict(rec.slots), list(rec.stored), rec.constants,
                     rec.positions)


def _plain_value(op: Op, constants: dict[int, object]) -> bool:
    """Whether the value `op` makes is a number (or a plain constant): what a
    loop stores over plain items (a list of numbers), not over objects that
    would make the plain store leave at every iteration (a list of tuples
    copied). `constants`: the trace's, by id."""
    if op.kind in ("i", "f") or op.name == "box":
        return True
    return op.name in ("const_o", "const_b") and op.arg in constants \
        and id(type(constants[op.arg])) in PLAIN_TYPES


def _frees_nothing(rec: Recording, invariant: set[int]) -> set[int]:
    """Objects whose release frees nothing (`invariant` loads: their dicts
    hold them; copies of those), or only an int, float, bool, str or None
    (whose freeing runs no code)."""
    stored = set(rec.stored)
    writes = any(op.name in LIST_WRITES for op in rec.ops)
    harmless = set(invariant)
    held = set(invariant)  # what the frame, a global or a container it holds keeps alive all the loop
    for index, op in enumerate(rec.ops):
        if op.name in _LOADS:  # its dict holds it, as long as no code runs (else nothing moves)
            harmless.add(index)
            held.add(index)
        elif op.name == "box":
            harmless.add(index)
        elif op.name == "const_o" or (op.name == "load_o" and op.arg not in stored):
            harmless.add(index)  # the frame holds a local it never stores all the iteration
            held.add(index)
        elif op.name == "copy_o" and op.args[0] in harmless:
            harmless.add(index)
        elif op.name in _ITEM_READS and op.args[0] in held and not (writes and _ITEM_READS[op.name] is list):
            harmless.add(index)  # its container holds it: no list is written, no code runs
            held.add(index)
        elif (op.name == "guard_type" and op.arg in PLAIN_TYPES) or op.name == "unbox":
            harmless.add(op.args[0])
    return harmless


def _hoisted(rec: Recording, moved: set[int], chain: set[int], fixed: dict[int, int],
             borrowed: set[int], slots: dict[int, int | None], versions: dict[int, int],
             reads: dict[int, int]) -> Recording:
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
        snapshot = None if op.snapshot is None else \
            Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))
        number[index] = len(ops)
        # A load borrows: its dict holds what it finds as long as no code runs.
        name = f"{op.name}_b" if index in chain else op.name
        ops.append(Op(name, op.kind, tuple(number[a] for a in op.args), op.arg, snapshot))
        origin.append(index)
    # Each borrowed local, read and its type checked once (it may be unbound:
    # leave before the loop then).
    borrowing = {index for index, op in enumerate(rec.ops) if op.name == "load_o" and op.arg in slots}
    dropped = {index for index, op in enumerate(rec.ops)
               if (op.name in ("release", "guard_type") and op.args[0] in borrowing)
               or (op.name == "guard_version" and _borrowing(rec.ops[op.args[0]], versions))}
    dropped |= set(reads) | {index for index, op in enumerate(rec.ops)
                             if op.name == "release" and op.args[0] in reads}
    first_reads: dict[object, int] = {}
    for slot, type_id in slots.items():
        first = first_reads[slot] = min(index for index in borrowing if rec.ops[index].arg == slot)
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
        if slot in versions:
            ops.append(Op("guard_version", "", (number[first],), versions[slot],
                          Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))))
            origin.append(first)
    # The invariant reads, their guards and unboxes, borrowing the items.
    # (Each a value the loop goes on using: it lives in its spill slot.)
    for index, read in reads.items():
        op = rec.ops[index]
        container = op.args[0]
        args = [number[first_reads[rec.ops[container].arg] if container in borrowing else container]]
        if index == read and op.name in _READS:  # its index: a constant, or an int local never stored
            position = rec.ops[op.args[1]]
            args.append(len(ops))
            ops.append(Op(position.name, position.kind, (), position.arg))
            origin.append(op.args[1])
        number[index] = len(ops)
        name = _BORROWED_READS.get(op.name, op.name) if index == read else op.name
        ops.append(Op(name, op.kind, tuple(args), op.arg,
                      Snapshot(rec.dst, (), drop=tuple(number[v] for v in loaded))))
        origin.append(index)
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


# What the loop computes from invariant values, and may compute once before
# it: numbers from numbers (an op that may leave, an int overflow or a
# division by zero, leaves before the loop instead, where the interpreter
# runs the iteration and meets it itself), the tests of invariant objects
# and numbers. (`len`: of a list, unless the loop appends; a loop that
# appends is not moved from at all today, since append may run code.)
_COMPUTED: Final = frozenset({"binary", "to_float", "neg", "math", "compare_bool", "not", "unbox_bool",
                              "unbox", "len_str"})
_TESTS: Final = frozenset({"guard_type", "guard_is", "guard_is_not", "branch"})
# Values the same in every iteration that cost nothing to make again before
# the loop: constants, the borrowed reads of locals the loop never stores.
_FREE: Final = frozenset({"const", "const_b", "load_b"})


def _invariant_values(rec: Recording, start: int, known: set[int]) -> list[int]:
    """The ops from `start` on (in order) that _COMPUTED or _TESTS values the
    same in every iteration: from `known` ones, the loop's constants and
    borrowed locals, its unboxed locals it never stores, and each other."""
    ops, stored = rec.ops, set(rec.stored)
    appends = any(op.name == "append" for op in ops)
    invariant = set(known)
    found: list[int] = []
    for index in range(start, len(ops)):
        op = ops[index]
        name = op.name
        if name in _FREE or (name == "load" and op.arg not in stored):
            invariant.add(index)
        elif op.args and all(arg in invariant for arg in op.args) and (
                name in _TESTS or (op.kind in ("i", "f") and (
                    name in _COMPUTED or (name == "len" and not appends)))):
            found.append(index)
            invariant.add(index)
    return found


def _computed(rec: Recording) -> Recording | None:
    """The recording (with its loop_head) with what the loop computes from
    invariants moved before loop_head, after the other moved ops and before
    the releases of their loads (None when there is nothing). An op moved
    leaves, when it fails, at the loop's head, as licm's others do; the
    constants and borrowed locals it uses are made again there."""
    ops = rec.ops
    head = next(index for index, op in enumerate(ops) if op.name == "loop_head")
    found = _invariant_values(rec, head + 1, set(range(head)))
    if not found:
        return None
    releases = head
    while releases > 0 and ops[releases - 1].name == "release":
        releases -= 1
    new: list[Op] = list(ops[:releases])
    origin = list(range(releases))
    number = {index: index for index in range(releases)}  # the body's value -> its number before the loop
    exit_ = Snapshot(rec.dst, (), drop=tuple(ops[index].args[0] for index in range(releases, head)))
    read = {op.arg: index for index, op in enumerate(ops[:releases]) if op.name == "load_o"}
    for index in found:
        op = ops[index]
        for arg in op.args:
            if arg in number:
                continue
            if ops[arg].name == "load_b" and ops[arg].arg in read:  # the local, read before the loop
                number[arg] = read[ops[arg].arg]
            else:  # a constant or a local, made again
                number[arg] = len(new)
                new.append(Op(ops[arg].name, ops[arg].kind, (), ops[arg].arg))
                origin.append(arg)
        number[index] = len(new)
        new.append(Op(op.name, op.kind, tuple(number[arg] for arg in op.args), op.arg,
                      None if op.snapshot is None else exit_))
        origin.append(index)
    new += ops[releases:head + 1]
    origin += range(releases, head + 1)
    moved = set(found)
    body = {**{index: index for index in range(releases)}, **{index: number[index] for index in found}}
    for index in range(head + 1, len(ops)):
        if index not in moved:
            body[index] = len(new)
            new.append(_renumbered(ops[index], body))
            origin.append(index)
    positions = None if rec.positions is None else [rec.positions[index] for index in origin]
    return Recording(rec.code, rec.dst, rec.src, new, dict(rec.slots), list(rec.stored), rec.constants,
                     positions)
