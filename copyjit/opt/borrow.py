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

An item read from a list or tuple (`v1[0]`, subscr_list) that is released
before any code runs or any list is written borrows the container's
reference the same way (subscr_list_b): an exit that hands it to the
frame makes a reference to it.

The same for a copy of a local's read (`v1[0] -= d`: the list read, copied,
subscripted, stored into). Two borrowed reads of one local with nothing
between them that could rebind it are one value, so guards then drops the
second read's type check (PIPELINE runs guards again after borrow). An exit that puts a borrowed value on the
frame's stack reads the local again, with a reference (lower.py's stubs).
"""

from __future__ import annotations

from copyjit.opt.passes import LIST_WRITES, runs_code
from copyjit.opt.rewrite import rewrite
from copyjit.trace.ir import Op, Recording

# Ops that only look at an object argument: they keep no reference to it.
_LOOKS = frozenset({"guard_type", "guard_size", "guard_is", "guard_is_not", "guard_version", "guard_function",
                    "unbox", "copy_o", "subscr_list", "subscr_tuple", "tuple_item", "list_item", "len",
                    "len_str"})
# Ops that look at some arguments and take (steal) the one at position 0.
_TAKE_FIRST = frozenset({"store_subscr_list", "store_subscr_list_f"})
_ITEM_READS = frozenset({"subscr_list", "subscr_tuple"})


def borrow(rec: Recording) -> Recording:
    code = runs_code(rec)
    ops = rec.ops
    released: dict[int, int] = {op.args[0]: index for index, op in enumerate(ops) if op.name == "release"}
    last_use = [-1] * len(ops)
    users: list[list[int]] = [[] for _ in ops]
    for index, op in enumerate(ops):
        for value in op.uses():
            last_use[value] = index
        for value in op.args:
            users[value].append(index)
    dropped: set[int] = set()
    replace: dict[int, int] = {}
    changed: dict[int, Op] = {}
    held: dict[int, int] = {}  # slot -> the first borrowed read of it still valid
    for index, op in enumerate(ops):
        slot, origin = _local_read(rec, index)
        if slot is not None and origin is not None:
            end = released.get(index)
            if end is not None and last_use[index] <= end and _only_looked_at(ops, index, users[index]) \
                    and _quiet(ops, code, origin, end, slot, dropped) \
                    and not _dropped_by_exits(ops, index, end):
                dropped.add(end)
                first = held.get(slot)
                if first is not None and _quiet(ops, code, first, end, slot, dropped):
                    replace[index] = first
                    dropped.add(index)
                else:
                    changed[index] = Op("load_b", "o", (), slot)
                    held[slot] = index
                continue
        if op.name in _ITEM_READS and _item_borrows(ops, code, index, released.get(index), last_use,
                                                   users[index], dropped):
            dropped.add(released[index])
            changed[index] = Op(f"{op.name}_b", op.kind, op.args, op.arg, op.snapshot)
            continue
        if op.name == "load_b" and isinstance(op.arg, int):
            held.setdefault(op.arg, index)
        if index not in dropped and (code[index] or op.name in ("store_o", "loop_head")):
            held.clear()
    if not dropped:
        return rec
    return rewrite(rec, dropped, replace, changed)


def _item_borrows(ops: list[Op], code: list[bool], index: int, end: int | None, last_use: list[int],
                  taking: list[int], dropped: set[int]) -> bool:
    """The item read at `index` is released (at `end`) before any code runs
    or any list is written (it could be the one read): the container,
    which the trace holds or borrows all that time, keeps the item alive."""
    if end is None or last_use[index] > end or not _only_looked_at(ops, index, taking) \
            or _dropped_by_exits(ops, index, end):
        return False
    lists = ops[index].name == "subscr_list"
    for between in range(index + 1, end):
        op = ops[between]
        if between not in dropped and (code[between] or op.name == "loop_head"
                                       or (lists and op.name in LIST_WRITES)):
            return False
    return True


def _local_read(rec: Recording, index: int) -> tuple[int | None, int | None]:
    """(slot, the index of the read) when value `index` is a read of an
    object local (load_o) or a copy of one."""
    op = rec.ops[index]
    while op.name == "copy_o":
        index = op.args[0]
        op = rec.ops[index]
    if op.name in ("load_o", "load_b") and isinstance(op.arg, int):
        return op.arg, index
    return None, None


def _only_looked_at(ops: list[Op], value: int, taking: list[int]) -> bool:
    return all(ops[user].name in _LOOKS or ops[user].name == "release"
               or (ops[user].name in _TAKE_FIRST and ops[user].args[0] != value) for user in taking)


def _quiet(ops: list[Op], code: list[bool], start: int, end: int, slot: int, dropped: set[int]) -> bool:
    """Nothing strictly between `start` and `end` (but the releases already
    `dropped`) runs code, stores `slot`, or is the loop's head (before which
    ops run once, not per iteration)."""
    for index in range(start + 1, end):
        op = ops[index]
        if index in dropped:
            continue
        if code[index] or op.name == "loop_head" or (op.name in ("store_o", "store") and op.arg == slot):
            return False
    return True


def _dropped_by_exits(ops: list[Op], value: int, end: int) -> bool:
    """Some exit (of an inlined call) releases the value itself."""
    return any(op.snapshot is not None and value in op.snapshot.drop for op in ops[value:end])
