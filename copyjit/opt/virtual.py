"""Object locals kept in the trace, not the frame, while a loop runs no code.

`for ([x1, y1, z1], v1, m1), ... in pairs:` stores ten objects into the
frame at every iteration, each an incref of the new item and a decref of
the old one (n-body: 11 instructions a store, a tenth of its pair loop),
and reads them back at once. When nothing in the iteration can run Python
code, nothing can look at the frame's locals either (f_locals, a
debugger, sys._getframe all take code), so only the trace's exits need
them there. Here such a local lives in a spill slot of the trace (its
*home*), holding a borrowed pointer, and the frame keeps its old value
until an exit writes the new one back (with a reference):

    v12 = list_item.o(v7) 0                 v12 = list_item_b.o(v7) 0
          store_o.(v12) 5           -->           store_v.(v12) 5
    v37 = load_o.o() 5                      (v37 is v12)
    v39 = unbox.f(v37)                      v39 = unbox.f(v12)
          release.(v37)

A local is kept so when every store to it in the loop stores an item read
from a list or a tuple, and every read of it only looks at the object (a
guard, an unbox, an item read: LOOKS) and releases it. A read after a
store in the iteration is the stored item; a read before one is the home
(`load_v`). All stored object locals must qualify, and then no op of the
iteration may run code (passes.runs_code): if one may, nothing changes.

Why the borrowed items stay alive. Without code, a list write replaces
only a plain number (a float over a float; a `plain` store leaves first
when the item is anything else), and a release frees only one: no list or
tuple a home's item hangs from goes away. What a list write can do is
replace, or overwrite in place (reference count 1), a number a home holds
that was read from that very list. So before each list write, for every
home whose current item was read from a list, a guard checks that the list
written is another one (`guard_not_same`; n-body: v1 and v2 are not the
position lists x1 and x2 come from, four guards an iteration), and no list
write may come before a local's first store in the iteration (the item of
the iteration before would be unguarded there). A float that two lists
hold has two references, so it is never overwritten in place.

The lowering (lower.py) loads each home from the frame at the trace's
entry and after every bridge, and first checks that releasing the frame's
old values at an exit runs no code either (`_CHECK_VIRTUAL_LOCAL`, one each:
unbound, a plain number or string, or an object something else holds too
that no other kept local is bound to); every exit writes the homes back (`_STORE_VIRTUAL_LEAVING`),
a bridge does so before it starts (it reads the frame).
"""

from __future__ import annotations

from copyjit.opt.borrow import borrow, only_looked_at
from copyjit.opt.passes import LIST_WRITES, runs_code
from copyjit.opt.rewrite import rewrite
from copyjit.trace.ir import Op, Recording

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

# Item reads whose item the container holds: owned -> borrowed form.
_SOURCES: Final = {"list_item": "list_item_b", "tuple_item": "tuple_item_b", "subscr_list": "subscr_list_b",
                   "subscr_tuple": "subscr_tuple_b", "list_item_b": "list_item_b",
                   "tuple_item_b": "tuple_item_b", "subscr_list_b": "subscr_list_b",
                   "subscr_tuple_b": "subscr_tuple_b"}
# Of those, the items a list write can replace: a list's.
_FROM_LIST: Final = frozenset({"list_item", "list_item_b", "subscr_list", "subscr_list_b"})
# The argument that is the list written.
_WRITTEN: Final = {"store_subscr_list": 1, "store_subscr_list_f": 1, "store_over_f": 1, "append": 0}
# Ops that name a local slot in `arg`.
_LOCAL_OPS: Final = frozenset({"load_o", "load_b", "store_o", "deref", "store_deref", "load", "store"})


def virtual(rec: Recording) -> Recording:
    ops = rec.ops
    users: list[list[int]] = [[] for _ in ops]
    for index, op in enumerate(ops):
        for value in op.args:
            users[value].append(index)
    slots = _kept_slots(rec, users)
    if not slots:
        return rec
    first_store: dict[object, int] = {}
    for index, op in enumerate(ops):
        if op.name == "store_o":
            first_store.setdefault(op.arg, index)
    first_write = next((i for i, op in enumerate(ops) if op.name in LIST_WRITES), len(ops))
    if any(at > first_write for at in first_store.values()):
        return rec
    new = _rewritten(rec, slots, users)
    if new is None:
        return rec
    new = borrow(new)  # what the stores stopped from borrowing (they ran code)
    return rec if any(runs_code(new)) else new


def _kept_slots(rec: Recording, users: list[list[int]]) -> set[int]:
    """The object locals the loop stores, if every one can be kept (else none)."""
    ops = rec.ops
    stored = {op.arg for op in ops if op.name == "store_o"}
    if not stored:
        return set()
    for index, op in enumerate(ops):
        if op.name not in _LOCAL_OPS or op.arg not in stored:
            continue
        if op.name == "store_o":
            (value,) = op.args
            if ops[value].name not in _SOURCES \
                    or not only_looked_at(ops, value, [user for user in users[value] if user != index]):
                return set()
        elif op.name == "load_o":
            if op.snapshot is not None:  # a checked read: the local may be unbound
                return set()
            if not only_looked_at(ops, index, users[index]):
                return set()
        elif op.name == "load_b":
            pass  # (borrow's: its release is gone already)
        else:  # a cell, or a number local of the same slot
            return set()
    return stored  # type: ignore[return-value]


def _rewritten(rec: Recording, slots: set[int], users: list[list[int]]) -> Recording | None:
    """The recording with `slots` kept in homes and the list writes guarded,
    or None when a list written is the very list a home's item came from."""
    ops = rec.ops
    dropped: set[int] = set()
    replace: dict[int, int] = {}
    changed: dict[int, Op] = {}
    current: dict[int, int] = {}  # slot -> the value stored last in the iteration
    # Before a list write, with its snapshot (leaving, the interpreter writes):
    # the list written is not the one a kept item came from.
    guards: dict[int, list[Op]] = {}
    told_apart: set[tuple[int, int]] = set()
    for index, op in enumerate(ops):
        if op.name == "store_o" and op.arg in slots:
            (value,) = op.args
            source = ops[value]
            changed[value] = Op(_SOURCES[source.name], source.kind, source.args, source.arg, source.snapshot)
            changed[index] = Op("store_v", "", op.args, op.arg)
            current[op.arg] = value
        elif op.name in ("load_o", "load_b") and op.arg in slots:
            for user in users[index]:
                if ops[user].name == "release":
                    dropped.add(user)
            stored = current.get(op.arg)
            if stored is not None:
                replace[index] = stored
                dropped.add(index)
            else:
                changed[index] = Op("load_v", "o", (), op.arg)
                current[op.arg] = index
        elif op.name in _WRITTEN:
            written = replace.get(op.args[_WRITTEN[op.name]], op.args[_WRITTEN[op.name]])
            for value in current.values():
                if ops[value].name not in _FROM_LIST:
                    continue
                container = ops[value].args[0]
                container = replace.get(container, container)
                if container == written:
                    return None
                if (written, container) not in told_apart:
                    told_apart.add((written, container))
                    guards.setdefault(index, []).append(
                        Op("guard_not_same", "", (written, container), None, op.snapshot))
    return rewrite(rec, dropped, replace, changed, guards)
