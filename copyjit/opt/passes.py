"""The small passes: store-to-load forwarding, guard elimination, dead code.

Each takes a recording and returns an equivalent one; copyjit/opt/__init__.py
runs them in the order its PIPELINE gives.
"""

from __future__ import annotations

import itertools

from copyjit.opt.rewrite import rewrite, uses
from copyjit.trace.ir import BORROWED, Op, Recording
from copyjit.uops import AT_OPARG_MAX

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

# Ops that may run arbitrary Python code (a call, a dunder method, a
# __del__ run by a decref, a descriptor): after one, nothing learned about
# an object's type, a type's version or a dict's keys still holds. (Not
# `append`: PyList_Append on an exact list only grows it, and its reference
# to the item is a new one; it is a list write, LIST_WRITES.)
MAY_RUN_CODE: Final = frozenset({
    "call", "binary_o", "compare_o", "attr", "release", "store_o", "store_deref", "store_global",
    "store_subscr_list", "store_subscr_list_f", "get_iter", "inner_loop", "nested_loop", "list_next",
    "tuple_next", "enumerate_list", "enumerate_tuple", "store_attr", "store_attr_f", "store_attr_i"})
# Types whose objects hold no references: freeing one runs no Python code.
# (A constant is never freed: the trace keeps it alive.)
PLAIN_TYPES: Final = frozenset({id(int), id(float), id(bool), id(str), id(type(None))})
# (store_over_f: a float stored over a float item, made last, by checks; it runs no code.)
LIST_WRITES: Final = frozenset({"store_subscr_list", "store_subscr_list_f", "store_over_f", "append"})
# Ops that only look at an object argument and keep no reference to it
# (licm's never-stored locals and borrow's borrowed reads take only these).
LOOKS: Final = frozenset({"guard_type", "guard_size", "guard_min_size", "guard_is", "guard_is_not",
                          "guard_version",
                          "guard_keys", "guard_not_same", "guard_same", "guard_distinct",
                          "unbox", "subscr_list", "subscr_tuple", "len", "len_str", "list_item", "tuple_item",
                          "copy_o", "attr_instance"})
# Reads of what an object holds: an item of a list or tuple, an attribute
# in an instance's values (owned or borrowed).
_ITEM_READS: Final = frozenset({"subscr_list", "list_item", "subscr_tuple", "tuple_item", "subscr_list_b",
                                "list_item_b", "subscr_tuple_b", "tuple_item_b", "attr_instance",
                                "attr_instance_b"})
GUARDS: Final = frozenset({"guard_type", "guard_is", "guard_is_not", "guard_version", "guard_globals",
                           "guard_function", "guard_keys", "guard_not_same", "guard_same",
                           "guard_distinct"})
# A for loop's next item, borrowed: the sequence the iterator holds holds it
# (until code runs or a list is written, like any item read).
_NEXT_BORROWED: Final = frozenset({"list_next_b", "tuple_next_b"})
# Ops runs_code looks at: any other op neither runs code nor tells it
# anything.
_HOLDING: Final = BORROWED | _NEXT_BORROWED
_NOTED: Final = MAY_RUN_CODE | LIST_WRITES | _ITEM_READS | _HOLDING | {
    "copy_o", "guard_type", "unbox", "box", "const_o", "load_o", "store", "subscr_list_b"}


def forward(rec: Recording) -> Recording:
    """A local read after it was written (or read) in the same iteration is
    the value written (or read) then. (Unboxed locals only: reading an
    object local makes a new reference, which the recorder releases.)"""
    current: dict[int, int] = {}  # slot -> the value it holds now
    replace: dict[int, int] = {}
    for index, op in enumerate(rec.ops):
        if op.name == "load":
            if op.arg in current:
                replace[index] = current[op.arg]
            else:
                current[op.arg] = index  # type: ignore[index]
        elif op.name == "store":
            current[op.arg] = op.args[0]  # type: ignore[index]
        elif op.name in ("inner_loop", "nested_loop", "call"):  # the nested loop, or the callee
            current.clear()  # (through sys._getframe(1).f_locals), may write any local
    return rewrite(rec, set(replace), replace)


def guards(rec: Recording) -> Recording:
    """A guard that an earlier one already checked, with nothing between
    them that could run code, is dropped; so is a second unbox of the same
    object (ints and floats are immutable: its value cannot change)."""
    seen: set[tuple[object, ...]] = set()
    unboxed: dict[tuple[int, str], int] = {}
    replace: dict[int, int] = {}
    dropped: set[int] = set()
    same: dict[int, int] = {}  # a copy (a new reference) -> the value it copies: one object
    code = runs_code(rec)
    # Code a loop runs comes between its pre-header (licm) and its head,
    # in the iteration before: such a loop checks again what the
    # pre-header checked (licm_code keeps a module's type guard in it).
    head = next((index for index, op in enumerate(rec.ops) if op.name == "loop_head"), -1)
    wraps = head >= 0 and any(code[head + 1:])
    for index, op in enumerate(rec.ops):
        name = op.name
        if name == "copy_o":
            same[index] = _same(op.args[0], replace, same)
        elif name in GUARDS:
            key = (name, op.arg, tuple(_same(a, replace, same) for a in op.args))
            if key in seen:
                dropped.add(index)
            else:
                seen.add(key)
        elif name == "unbox":
            value = (_same(op.args[0], replace, same), op.kind)
            if value in unboxed:
                replace[index] = unboxed[value]
                dropped.add(index)
            else:
                unboxed[value] = index
        elif code[index] or (index == head and wraps):
            seen.clear()
    return rewrite(rec, dropped, replace)


def _same(value: int, replace: dict[int, int], same: dict[int, int]) -> int:
    """The value `value` stands for: its replacement's, the original of a copy."""
    if replace:  # (most often empty: no lookup, no int boxed for it)
        value = replace.get(value, value)
    return same.get(value, value) if same else value


def runs_code(rec: Recording, frees_nothing: set[int] | frozenset[int] = frozenset(),
              over: dict[int, int] | None = None) -> list[bool]:
    """For each op, whether it may run Python code: MAY_RUN_CODE, except a
    release that frees nothing or only a plain number (guards' rules, and
    the values the caller knows in `frees_nothing`), and
    a float stored unboxed over a list item the trace has just read and
    found plain (`v[0] -= d`), with no code or list write between, and a
    release of an item read from a borrowed container (whatever holds the
    container holds the item too), with none between either. `over`, when
    given, is told each such float store whose item was found a float
    (unboxed, or guarded): store -> that item."""
    # (Every pass that moves or drops ops across code calls this: it is
    # kept to one test of the op's name for most ops, and its plain form is
    # kept with the recording. The answer is not to be changed.)
    plain = not frees_nothing  # (`over` changes no answer: it is only told more)
    if plain and over is None and rec.runs is not None:
        return rec.runs
    ops = rec.ops
    harmless = set(frees_nothing)
    floats: set[int] = set()  # values known exact floats
    held: set[int] = set()  # borrowed values, and items read from them since the last code or list write
    same: dict[int, int] = {}
    copies: dict[int, list[int]] = {}
    released_at = {op.args[0]: index for index, op in enumerate(ops) if op.name == "release"}
    items: dict[tuple[int, ...], int] = {}  # (list, index value) -> the item read
    # Reads of one local with no store to it or code between are of one
    # object (`v[i] += d`: v read for the item, and again for the store).
    first_read: dict[object, int] = {}  # slot -> its first read since
    local: dict[int, int] = {}  # a read of a local -> that first read
    result = [False] * len(ops)
    float_type = id(float)
    for index, op in enumerate(ops):
        noted = _RUNS_CODE_OPS.get(op.name, 0)
        if not noted:
            continue
        case = noted & _CASE
        args = tuple(same.get(a, a) for a in op.args) if same else op.args
        if case == _COPY:
            same[index] = args[0]
            copies.setdefault(args[0], [args[0]]).append(index)
        elif case == _GUARD_TYPE:
            if op.arg in PLAIN_TYPES:
                harmless.add(args[0])
                if op.arg == float_type:
                    floats.add(args[0])
        elif case == _UNBOX:
            harmless.add(args[0])
            if op.kind == "f":
                floats.add(args[0])
        elif case == _MADE:
            harmless.add(index)
        elif case == _LOAD:
            local[index] = first_read.setdefault(op.arg, index)
        elif case == _STORE:
            first_read.pop(op.arg, None)
        elif case == _SUBSCR:
            items[(local.get(args[0], args[0]), *args[1:])] = index
        if noted & _HOLDS or (noted & _READS_ITEM and args[0] in held):
            held.add(index)
        runs = noted & _RUNS != 0
        if case == _RELEASE:
            runs = args[0] not in harmless and args[0] not in held \
                and not any(released_at.get(other, -1) > index for other in copies.get(args[0], ()))
        elif case == _STORE_ITEM and op.arg == "plain":
            runs = False  # (it leaves first when the item it replaces is not plain)
        elif case == _STORE_FLOAT:
            item = items.get((local.get(args[1], args[1]), *args[2:]), -1)
            runs = item not in harmless and op.arg != "plain"
            if over is not None and item in floats:
                over[index] = item
        if runs:
            first_read.clear()  # (through frame.f_locals)
            result[index] = True
        if runs or noted & _WRITES_LIST:
            items.clear()
            if held:
                held = {value for value in held if ops[value].name in BORROWED}
    if plain:
        rec.runs = result
    return result


# What runs_code does with each op of _NOTED, found with one dict lookup per
# op (not a set test per category and a string test per case): a case (the
# low bits) and the op's categories.
# (Final: compiled code reads a constant, not the module's dict.)
_COPY: Final = 1
_GUARD_TYPE: Final = 2
_UNBOX: Final = 3
_MADE: Final = 4
_LOAD: Final = 5
_STORE: Final = 6
_SUBSCR: Final = 7
_RELEASE: Final = 8
_STORE_ITEM: Final = 9
_STORE_FLOAT: Final = 10
_CASE: Final = 15
_HOLDS: Final = 16
_READS_ITEM: Final = 32
_RUNS: Final = 64
_WRITES_LIST: Final = 128
_IS_NOTED: Final = 256
_CASES: Final = {"copy_o": _COPY, "guard_type": _GUARD_TYPE, "unbox": _UNBOX, "box": _MADE, "const_o": _MADE,
                 "const_b": _MADE, "load_o": _LOAD, "load_b": _LOAD, "store_o": _STORE, "store": _STORE,
                 "subscr_list": _SUBSCR, "subscr_list_b": _SUBSCR, "release": _RELEASE,
                 "store_subscr_list": _STORE_ITEM, "store_subscr_list_f": _STORE_FLOAT}
_RUNS_CODE_OPS: Final = {
    name: _IS_NOTED | _CASES.get(name, 0) | (_HOLDS if name in _HOLDING else 0)
    | (_READS_ITEM if name in _ITEM_READS else 0) | (_RUNS if name in MAY_RUN_CODE else 0)
    | (_WRITES_LIST if name in LIST_WRITES else 0) for name in _NOTED}


def allocs(rec: Recording) -> Recording:
    """Allocation removal. A number boxed only to be released (and seen by
    exits) is never boxed: the exits box it themselves. A float boxed only
    to be stored into a list item or an attribute is stored unboxed
    (store_subscr_list_f, store_attr_f: they reuse the old float object
    when only the list or the instance holds it), and so is an int into an
    attribute (store_attr_i); not a local's value (its box is the local's
    object: `row[k] is x`, lower.py's `shadow`)."""
    users: list[list[int]] = [[] for _ in rec.ops]  # value -> the ops taking it as an argument
    for index, op in enumerate(rec.ops):
        for value in op.args:
            users[value].append(index)
    # An exit inside an inlined call releases these references itself.
    dropped_by_exits = {value for op in rec.ops if op.snapshot is not None for value in op.snapshot.drop}
    dropped: set[int] = set()
    replace: dict[int, int] = {}
    changed: dict[int, Op] = {}
    last_use = _last_uses(rec)
    for index, op in enumerate(rec.ops):
        if op.name != "box" or index in dropped_by_exits:
            continue
        number, taking = op.args[0], users[index]
        adding = _adds_in_place(rec, index, users, last_use, dropped_by_exits)
        if adding is not None:
            add, taken, releases = adding
            changed[add] = Op("add_int_o", "o", (taken, number), None, rec.ops[add].snapshot)
            dropped |= {index, *releases}
            replace[index] = number
        elif all(rec.ops[user].name == "release" for user in taking):
            dropped |= {index, *taking}
            replace[index] = number
        elif len(taking) == 1 and op.arg is None \
                and _stores_item(rec.ops[taking[0]], index, rec.ops[number].kind):
            store = rec.ops[taking[0]]
            changed[taking[0]] = Op(_UNBOXED_STORES[store.name, rec.ops[number].kind], store.kind,
                                    (number, *store.args[1:]), store.arg, store.snapshot)
            dropped.add(index)
            replace[index] = number
    return rewrite(rec, dropped, replace, changed)


def _adds_in_place(rec: Recording, box: int, users: list[list[int]], last_use: list[int],
                   dropped_by_exits: set[int]) -> tuple[int, int, tuple[int, int]] | None:
    """(the add, its left operand, the releases of both) when the boxed int `box` is only added to
    an int the trace then releases and never sees again (a temporary, as
    `x * 3` in `x * 3 + i`): add_int_o takes that operand, and adds in place
    when the trace holds its only reference."""
    if rec.ops[rec.ops[box].args[0]].kind != "i" or len(users[box]) != 2:
        return None
    add, release = users[box]
    op = rec.ops[add]
    if op.name != "binary_o" or op.arg not in (_NB_ADD, _NB_INPLACE_ADD) or op.args[1] != box \
            or op.args[0] == box or rec.ops[release].name != "release":
        return None
    taken = op.args[0]
    after = [user for user in users[taken] if user > add]
    if taken in dropped_by_exits or len(after) != 1 or rec.ops[after[0]].name != "release" \
            or last_use[taken] != after[0]:
        return None
    return add, taken, (release, after[0])


def _last_uses(rec: Recording) -> list[int]:
    """Each value's last use (an argument or a snapshot), or -1."""
    last = [-1] * len(rec.ops)
    for index, op in enumerate(rec.ops):
        for value in op.args:  # (op.uses() without the tuples it builds)
            last[value] = index
        snapshot = op.snapshot
        if snapshot is not None:
            for value in snapshot.stack:
                last[value] = index
            if snapshot.reraise is not None:
                last[snapshot.reraise] = index
            for value in snapshot.drop:
                last[value] = index
    return last


_NB_ADD, _NB_INPLACE_ADD = 0, 13  # BINARY_OP's opargs for + and +=


# Stores of an object into a list item or an attribute, and their forms
# that take a number of a kind unboxed (and reuse the old number object
# if they can).
_UNBOXED_STORES: Final = {("store_subscr_list", "f"): "store_subscr_list_f",
                          ("store_attr", "f"): "store_attr_f", ("store_attr", "i"): "store_attr_i"}


def _stores_item(op: Op, value: int, kind: str) -> bool:
    """`op` stores `value`, a box of a `kind` number, into a list or an
    attribute, and takes it for nothing else."""
    return (op.name, kind) in _UNBOXED_STORES and op.args[0] == value and value not in op.args[1:]


# Ops whose number depends only on their arguments and `arg` (no memory, no
# effects, no reference made): a second one with the same inputs has the
# first one's value. Where the second would exit (an int overflow, a
# division by zero), the first has exited already.
_VALUE_ONLY: Final = frozenset({"binary", "to_float", "neg", "math", "unbox_bool"})


def cse(rec: Recording) -> Recording:
    """A number computed again from the same values (`(i + j) * (i + j + 1)`,
    an inlined function's body repeating its caller's work) is the one
    computed first."""
    seen: dict[tuple[object, ...], int] = {}
    replace: dict[int, int] = {}
    for index, op in enumerate(rec.ops):
        if op.name not in _VALUE_ONLY or op.kind not in ("i", "f"):
            continue
        key = (op.name, op.kind, op.arg, tuple(replace.get(a, a) for a in op.args))
        if key in seen:
            replace[index] = seen[key]
        else:
            seen[key] = index
    return rewrite(rec, set(replace), replace)


# Ops with no effect but their value, which may go when nothing uses it. A
# binary op that may leave for Python's answer (an int overflow) is pure;
# one that may leave because Python raises (division by zero, a negative
# shift, math.sqrt(-1)) is not: dropping it would drop the exception.
_PURE: Final = frozenset({"load", "const", "to_float", "compare_bool", "not", "unbox_bool", "neg", "null",
                          "len_str", "load_b", "const_b"})  # (the last two: borrowed, nothing to release)
_PURE_BINARY: Final = frozenset({"add", "sub", "mul", "and", "or", "xor"})
_PURE_MATH: Final = frozenset({"ABS", "MIN", "MAX"})


def pure(name: str, arg: object, kind: str) -> bool:
    if name in _PURE:
        return True
    if name == "binary":
        return arg in _PURE_BINARY
    return name == "math" and arg in _PURE_MATH


def dce(rec: Recording) -> Recording:
    """Drop pure ops whose values nothing uses (a snapshot is a use: an
    exit needs the values it puts back on the frame's stack)."""
    counts = uses(rec)
    dropped: set[int] = set()
    for index in range(len(rec.ops) - 1, -1, -1):
        op = rec.ops[index]
        if counts[index] == 0 and pure(op.name, op.arg, op.kind):
            dropped.add(index)
            for value in op.uses():  # what it used may now be dead too
                counts[value] -= 1
    return rewrite(rec, dropped, {})


# The kind an unbox makes of an object of each type it checks itself
# (_UNBOX_FLOAT_O: exits unless an exact float; _UNBOX_INT_O: unless an
# exact int of 64 bits).
_UNBOXED_KINDS: Final = {id(float): "f", id(int): "i"}


def checks(rec: Recording) -> Recording:
    """Checks made again, dropped. A type guard right before the unbox of
    the same value, leaving for the same place: the unbox checks the type
    itself. (Last: licm and borrow read a local's type from its guard.)
    One exit less to make, and one check less at run time. And a float
    stored over a list item the trace has just read and found a float,
    with no code or list write between (`v[0] -= d`): the store need not
    read the item again, nor check the index and the item's type, so it
    takes the item (`store_over_f`, the item its last argument)."""
    ops = rec.ops
    dropped = {index for index, (op, after) in enumerate(itertools.pairwise(ops))
               if op.name == "guard_type" and after.name == "unbox" and after.args == op.args
               and _UNBOXED_KINDS.get(op.arg) == after.kind  # type: ignore[call-overload]
               and after.snapshot == op.snapshot}
    over: dict[int, int] = {}
    if any(op.name == "store_subscr_list_f" for op in ops):  # (runs_code is a pass of its own)
        runs_code(rec, over=over)  # (its answer kept for _constant_reads)
    changed = {store: Op("store_over_f", "", (*ops[store].args, item), None, ops[store].snapshot)
               for store, item in over.items()}
    inserted: dict[int, list[Op]] = {}
    for reads in _constant_reads(rec):
        first, size = ops[reads[0]], 1 + max(_constant(ops, ops[read].args[1]) for read in reads)
        inserted[reads[0]] = [Op("guard_min_size", "", first.args[:1], size, first.snapshot)]
        changed.update({read: Op(_ITEM_AT[ops[read].name], "o", ops[read].args[:1],
                                 _constant(ops, ops[read].args[1]), None) for read in reads})
    return rewrite(rec, dropped, {}, changed, inserted) if dropped or changed else rec


# A list read at an index the trace knows, and the read of that item.
_ITEM_AT: Final = {"subscr_list": "list_item", "subscr_list_b": "list_item_b"}


def _constant(ops: list[Op], value: int) -> int:
    """The int constant `value` is, if it is one >= 0 (an index that needs
    no turning around) that the unchecked read and the size guard take in
    their oparg (at most AT_OPARG_MAX), else -1."""
    op = ops[value]
    return op.arg if op.name == "const" and op.kind == "i" and type(op.arg) is int \
        and 0 <= op.arg < AT_OPARG_MAX else -1


def _constant_reads(rec: Recording) -> list[list[int]]:
    """Runs of reads of one list at constant indices (`r[0] += dt * vx`,
    `r[1] += ...`) with no code run between them: the first checks the
    list has items enough for all (one guard_min_size, leaving where it
    would), and each reads its item unchecked (list_item_b). Only code can
    shrink a list (the trace's own list writes replace items, or append),
    so the size found at the first holds for the others. (Not across the
    loop's head, nor into the pre-header's reads: their iterations differ.)"""
    code = runs_code(rec)
    runs: list[list[int]] = []
    reads: dict[int, list[int]] = {}  # list -> its reads since the last code
    for index, op in enumerate(rec.ops):
        if op.name in _ITEM_AT and _constant(rec.ops, op.args[1]) >= 0:
            reads.setdefault(op.args[0], []).append(index)
        elif code[index] or op.name == "loop_head":
            runs += [found for found in reads.values() if len(found) > 1]
            reads.clear()
    return runs + [found for found in reads.values() if len(found) > 1]
