"""Borrowed reads of object locals: no reference pair where the frame holds one.

A read of an object local makes a reference (load_o), which the recorder
releases once the bytecode is done with it: an incref and a decref for
every `x1 - x2`. Where nothing between the read and its release can run
Python code or store the local, the frame's own reference keeps the object
alive and the local bound to it, so the read borrows (load_b) and the
release goes:

    v5 = load_o.o() 5                      v5 = load_b.o() 5
         guard_type.(v5) <float>   -->           guard_type.(v5) <float>
    v7 = unbox.f(v5)                       v7 = unbox.f(v5)
         release.(v5)

An item read from a list or tuple (`v1[0]`, subscr_list; an unpacked
item, list_item; a for loop's next item, list_next) that is released
before any code runs or any list is written borrows the container's
reference the same way (subscr_list_b, list_item_b, list_next_b, and the
tuple ones): an exit that hands it to the frame makes a reference to it.
(Nothing can free the container either: that too would take code, or a
list write.)

The same for a copy of a local's read (`v1[0] -= d`: the list read,
copied, subscripted, stored into). Two borrowed reads of one local with
nothing between them that could rebind it are one value, so guards then
drops the second read's type check (PIPELINE runs guards again after
borrow). An exit that puts a borrowed local on the frame's stack reads the
local again, with a reference (lower.py's stubs).
"""

from __future__ import annotations

from copyjit.opt.passes import LIST_WRITES, LOOKS, runs_code
from copyjit.opt.rewrite import rewrite
from copyjit.trace.ir import Op, Recording

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

# (A function guard only reads the function too; so does an item read
# without a reference, whose item lives as long as the container: a
# borrowed container is held by what it was read from.)
_LOOKS: Final = LOOKS | {"guard_function", "subscr_list_b", "subscr_tuple_b", "list_item_b", "tuple_item_b",
                         "attr_instance_b"}
# Ops that look at some arguments and take (steal) the one at position 0.
_TAKE_FIRST: Final = frozenset({"store_subscr_list", "store_subscr_list_f", "store_attr", "store_attr_f",
                                "store_attr_i"})
# Reads of an item its container holds (an iterator's sequence; an
# instance, its attribute), and their borrowed forms. A list write ends a
# borrow of any of them: it could replace the item, or (for a tuple's item,
# an attribute) its holder, when that was itself borrowed from a list.
_ITEM_READS: Final = {"subscr_list": "subscr_list_b", "list_item": "list_item_b", "list_next": "list_next_b",
                      "subscr_tuple": "subscr_tuple_b", "tuple_item": "tuple_item_b",
                      "tuple_next": "tuple_next_b", "attr_instance": "attr_instance_b"}
# The ops that can be a read of an object local (_local_read).
_READS: Final = frozenset({"load_o", "load_b", "copy_o"})
# What borrow's first pass needs to know of an op, by its name (flags).
_LOOKS_ONLY: Final = 1  # in _LOOKS, or a release
_TAKES_FIRST: Final = 2
_READ: Final = 4
_ITEM_READ: Final = 8
_STOP: Final = 16  # a store_o, or the loop's head
_WRITES_LIST: Final = 32
_RELEASE: Final = 64
_COMPARES: Final = 128  # guard_not_same
_KINDS: Final = {
    name: (_LOOKS_ONLY if name in _LOOKS or name == "release" else 0)
    | (_TAKES_FIRST if name in _TAKE_FIRST else 0) | (_READ if name in _READS else 0)
    | (_ITEM_READ if name in _ITEM_READS else 0) | (_STOP if name in ("store_o", "loop_head") else 0)
    | (_WRITES_LIST if name in LIST_WRITES else 0) | (_RELEASE if name == "release" else 0)
    | (_COMPARES if name == "guard_not_same" else 0)
    for name in (*_LOOKS, *_TAKE_FIRST, *_READS, *_ITEM_READS, *LIST_WRITES, "release", "store_o",
                 "loop_head", "guard_not_same")}


def borrow(rec: Recording) -> Recording:
    ops = rec.ops
    count = len(ops)
    code = runs_code(rec)
    # What the loops below need, found in one pass, each op's name looked
    # up once (_KINDS), and lists indexed by value rather than sets and
    # dicts: the next op at or after each index that a borrow may not span
    # (stops: one that may run code, a store_o, which releases the old
    # value, or the loop's head; for an item, also one that writes a
    # list); each value's (last) release, its last use, whether an exit
    # releases it and whether every op taking it only looks at it
    # (only_looked_at); the ops that may be reads of locals, or of items.
    kinds = [0] * count
    local_marks = [False] * count
    item_marks = [False] * count
    released = [-1] * count
    last_use = [-1] * count
    by_exits = [False] * count
    looked_at = [True] * count
    item_reads: list[int] = []
    for index, op in enumerate(ops):
        kind = kinds[index] = _KINDS.get(op.name, 0)
        stop = code[index] or kind & _STOP != 0
        local_marks[index] = stop
        item_marks[index] = stop or kind & _WRITES_LIST != 0
        args = op.args
        for value in args:
            if not (kind & _LOOKS_ONLY or (kind & _TAKES_FIRST and args[0] != value)):
                looked_at[value] = False
        if kind & _RELEASE:
            released[args[0]] = index
        if kind & _ITEM_READ:
            item_reads.append(index)
        snapshot = op.snapshot
        if snapshot is not None:
            for value in snapshot.drop:
                by_exits[value] = True
        if kind & _COMPARES:  # (it compares addresses only, in a loop that frees no list)
            continue
        for value in args:
            last_use[value] = index
        if snapshot is not None:  # (snapshot.values() without the tuples it builds)
            for value in snapshot.stack:
                last_use[value] = index
            if snapshot.reraise is not None:
                last_use[snapshot.reraise] = index
            for value in snapshot.drop:
                last_use[value] = index
    local_stop = _next_mark(local_marks)
    item_stop = _next_mark(item_marks)

    dropped: set[int] = set()
    replace: dict[int, int] = {}
    changed: dict[int, Op] = {}
    held: dict[int, int] = {}  # slot -> the first borrowed read of it still valid
    for index in range(count):
        if kinds[index] & _READ:
            op = ops[index]
            slot, origin = _local_read(rec, index)
            end = released[index]
            if slot is not None and origin is not None \
                    and _borrows(index, end, last_use, by_exits, looked_at) \
                    and _clear(local_stop, origin, end, dropped):
                dropped.add(end)
                first = held.get(slot)
                if first is not None and _clear(local_stop, first, end, dropped):
                    replace[index] = first
                    dropped.add(index)
                else:
                    changed[index] = Op("load_b", "o", (), slot)
                    held[slot] = index
                continue
            if op.name == "load_b" and isinstance(op.arg, int):
                held.setdefault(op.arg, index)
        if local_marks[index] and index not in dropped:
            held.clear()
    # Items after locals: a borrowed local's release, dropped, no longer
    # ends an item's borrow (b.x, then b's read again for b.mass).
    for index in item_reads:
        end = released[index]
        if _borrows(index, end, last_use, by_exits, looked_at) and _clear(item_stop, index, end, dropped):
            op = ops[index]
            dropped.add(end)
            changed[index] = Op(_ITEM_READS[op.name], op.kind, op.args, op.arg, op.snapshot)
    if not dropped:
        return rec
    return rewrite(rec, dropped, replace, changed)


def _borrows(value: int, end: int, last_use: list[int], by_exits: list[bool], looked_at: list[bool]) -> bool:
    """Whether `value` is released at `end` (>= 0), used last there, not
    released by an exit, and only looked at by every op taking it."""
    return end >= 0 and last_use[value] <= end and not by_exits[value] and looked_at[value]


def _next_mark(marks: list[bool]) -> list[int]:
    """For each index, the first marked index at or after it (len: none)."""
    following = [len(marks)] * (len(marks) + 1)
    for index in range(len(marks) - 1, -1, -1):
        following[index] = index if marks[index] else following[index + 1]
    return following


def _clear(stop: list[int], start: int, end: int, dropped: set[int]) -> bool:
    """No op strictly between `start` and `end` is a stop, but releases
    already dropped (borrowed reads' releases free nothing)."""
    at = stop[start + 1]
    while at < end:
        if at not in dropped:
            return False
        at = stop[at + 1]
    return True


def _local_read(rec: Recording, index: int) -> tuple[int | None, int | None]:
    """(slot, the index of the read) when value `index` is a read of an
    object local (load_o) or a copy of one."""
    op = rec.ops[index]
    while op.name == "copy_o":
        index = op.args[0]
        op = rec.ops[index]
    # (Not a checked read, which exits when the local is unbound: its
    # snapshot is that check, and load_b has none.)
    if op.name in ("load_o", "load_b") and isinstance(op.arg, int) and op.snapshot is None:
        return op.arg, index
    return None, None


def only_looked_at(ops: list[Op], value: int, taking: list[int]) -> bool:
    return all(ops[user].name in _LOOKS or ops[user].name == "release"
               or (ops[user].name in _TAKE_FIRST and ops[user].args[0] != value) for user in taking)
