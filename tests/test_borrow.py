"""Borrowed reads of object locals (copyjit/opt/borrow.py): the pass as
input trace -> expected trace; the conditions under which a read keeps its
reference (code may run before its release, the local is stored, the value
is taken by another op); the refined "may run code" it and guards share;
and, end to end, programs whose locals are rebound or freed by code the
loop runs, and whose borrowed values leave on exits' stacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from copyjit.opt import optimize
from copyjit.opt.borrow import borrow
from copyjit.opt.passes import runs_code
from copyjit.opt.text import parse
from copyjit.trace.ir import Recording
from tests.test_objects import differential
from tests.test_opt import recordings_of, same

FLOAT, LIST = id(float), id(list)

READ = f"""trace dst=10 src=40 slots=1:o,2:f stored=2
n = range_next.i() | exit @10 normal
x = load_o.o() 1
    guard_type.(x) {FLOAT} | exit @20 stack x
u = unbox.f(x) | exit @20 stack x
    release.(x)
    store.f(u) 2
"""


def test_a_read_released_before_anything_runs_borrows() -> None:
    same(borrow(parse(READ)), f"""trace dst=10 src=40 slots=1:o,2:f stored=2
n = range_next.i() | exit @10 normal
x = load_b.o() 1
    guard_type.(x) {FLOAT} | exit @20 stack x
u = unbox.f(x) | exit @20 stack x
    store.f(u) 2
""")


@pytest.mark.parametrize("between", [
    "f = load_o.o() 3\nr = call.o(f) | exit @12 stack x\n    release.(r)\n",  # a call
    "o = global.o() (8, 95) | exit @12 stack x\n    release.(o)\n",  # may free an object (its __del__)
    "o = load_o.o() 3\n    store_o.(o) 4\n",  # a store: the old value's release
    "    loop_head.()\n",
])
def test_a_read_keeps_its_reference_when_code_may_run_before_its_release(between: str) -> None:
    text = READ.replace("    release.(x)\n", between + "    release.(x)\n")
    rec = parse(text)
    assert "load_b" not in [op.name for op in borrow(rec).ops]


def test_a_value_stored_to_a_local_keeps_its_reference() -> None:
    text = """trace dst=10 src=40 slots=1:o,4:o stored=4
n = range_next.i() | exit @10 normal
x = load_o.o() 1
    store_o.(x) 4
"""
    rec = parse(text)
    assert borrow(rec) is rec


ITEM = f"""trace dst=10 src=40 slots=1:o,2:f stored=
n = range_next.i() | exit @10 normal
v = load_o.o() 1
i = const.i() 0
c = copy_o.o(v)
    guard_type.(c) {LIST} | exit @20 stack v i c i
it = subscr_list.o(c, i) | exit @20 stack v i c i
    release.(c)
d = load.f() 2
    guard_type.(it) {{item_type}} | exit @22 stack v i it d
f = unbox.f(it) | exit @22 stack v i it d
r = binary.f(f, d) 'sub' | exit @22 stack v i it d
    release.(it)
    store_subscr_list_f.(r, v, i) | exit @24 stack r v i
    release.(v)
v2 = load_o.o() 1
j = const.i() 1
c2 = copy_o.o(v2)
    guard_type.(c2) {LIST} | exit @26 stack v2 j c2 j
it2 = subscr_list.o(c2, j) | exit @26 stack v2 j c2 j
    release.(c2)
    guard_type.(it2) {FLOAT} | exit @28 stack v2 j it2
    release.(it2)
    release.(v2)
"""


def test_v_index_minus_equals_borrows_the_list_and_checks_its_type_once() -> None:
    # `v[0] -= d; v[1]`: the float stored over an item just read and found
    # a float frees nothing, so the list read is borrowed across it, the
    # second read of v is the first, and its type check goes (guards).
    rec = parse(ITEM.format(item_type=FLOAT))
    got = optimize(rec, frozenset({"dce", "fold", "cse", "forward", "allocs"}))
    names = [op.name for op in got.ops]
    assert names.count("load_b") == 1 and "load_o" not in names and "copy_o" not in names
    assert [op.arg for op in got.ops if op.name == "guard_type"].count(LIST) == 1
    assert "release" not in names  # the items too are borrowed (the list holds them)


def test_item_reads_released_before_any_list_write_borrow_the_list() -> None:
    off = frozenset({"dce", "fold", "cse", "forward", "allocs"})
    names = [op.name for op in optimize(parse(ITEM.format(item_type=FLOAT)), off).ops]
    # (checks reads both at once: one size check, then list_item_b)
    borrowed = names.count("subscr_list_b") + names.count("list_item_b")
    assert borrowed == 2 and "release" not in names
    assert "subscr_list" not in names and "list_item" not in names


@pytest.mark.parametrize("between", [
    "    append.(l, x)\n",  # a list write: it could replace (and free) the item
    "    store_subscr_list_f.(d, l, j) | exit @30 stack\n",
])
def test_an_item_read_keeps_its_reference_across_a_list_write(between: str) -> None:
    text = f"""trace dst=10 src=40 slots=1:o,2:o,3:f stored=
n = range_next.i() | exit @10 normal
l = load_o.o() 1
x = load_o.o() 2
d = load.f() 3
j = const.i() 0
    guard_type.(l) {LIST} | exit @20 stack
it = subscr_list.o(l, j) | exit @20 stack
{between}    guard_type.(it) {FLOAT} | exit @22 stack it
    release.(it)
    release.(x)
    release.(l)
"""
    names = [op.name for op in borrow(parse(text)).ops]
    assert "subscr_list" in names and "subscr_list_b" not in names


def test_a_tuple_item_keeps_its_reference_across_a_list_write() -> None:
    # The tuple may itself be borrowed from a list (a for loop's row), and
    # a list write could replace (and free) it.
    text = f"""trace dst=10 src=40 slots=1:o,2:o stored=
r = list_next.o() | exit @10 normal
    guard_type.(r) {id(tuple)} | exit @12 stack r
    guard_size.(r) 2 | exit @12 stack r
a = tuple_item.o(r) 0
    release.(r)
l = load_o.o() 1
i = const.i() 0
    guard_type.(l) {LIST} | exit @14 stack a
it = subscr_list.o(l, i) | exit @14 stack a
    guard_type.(it) {FLOAT} | exit @14 stack a
u = unbox.f(it) | exit @14 stack a
    release.(it)
    store_subscr_list_f.(u, l, i) | exit @14 stack a
    guard_type.(a) {FLOAT} | exit @16 stack a
    release.(a)
    release.(l)
"""
    # (The float store frees nothing, runs_code knows: only the list write
    # ends the borrow.)
    names = [op.name for op in borrow(parse(text)).ops]
    assert "tuple_item" in names and "tuple_item_b" not in names


def test_a_list_item_of_unknown_type_replaced_may_run_code() -> None:
    # The item is not checked plain: storing over it may free an object
    # whose __del__ runs, so the list read after it is a read of its own.
    text = ITEM.format(item_type=id(object)).replace(
        "f = unbox.f(it) | exit @22 stack v i it d\nr = binary.f(f, d) 'sub'", "r = binary.f(d, d) 'sub'")
    rec = parse(text)
    code = runs_code(rec)
    store = next(i for i, op in enumerate(rec.ops) if op.name == "store_subscr_list_f")
    assert code[store]
    got = optimize(rec, frozenset({"dce", "fold", "cse", "forward", "allocs"}))
    assert [op.arg for op in got.ops if op.name == "guard_type"].count(LIST) == 2


def test_runs_code_knows_plain_releases_and_copies_still_held() -> None:
    rec = parse(ITEM.format(item_type=FLOAT))
    code = runs_code(rec)
    releases = [i for i, op in enumerate(rec.ops) if op.name == "release"]
    # c (a copy of v, held until later), it (a float): free nothing; v (a
    # list, the trace's last reference) may; c2 and it2 do not; v2 may.
    assert [code[i] for i in releases] == [False, False, True, False, False, True]


# --- end to end -----------------------------------------------------------------

def advance(steps: int) -> list[float]:
    bodies = [([i * 1.5, 0.0], [0.25 * i, -1.0], 1.0 + i) for i in range(6)]
    pairs = [(bodies[i], bodies[i + 1]) for i in range(5)]
    for _ in range(steps):
        for (x1, v1, m1), (x2, v2, m2) in pairs:
            d = x1[0] - x2[0]
            v1[0] -= d * m2
            v1[1] -= d * m1
            v2[0] += d * m1
    return [v for _, v, _ in bodies for v in v]


def test_lists_updated_in_place_give_cpythons_numbers() -> None:
    differential(advance, 200)


def test_the_loop_reads_its_locals_borrowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYJIT_OPT", "-virtual")  # (which keeps them in the trace: no reads at all)
    texts = recordings_of(Path(__file__), "advance", 50)
    ops = [op.name for text in texts for op in parse(text).ops]
    assert "load_b" in ops


class Rebinder:
    """Rebinds the calling loop's `x` when freed: the float x held is freed too."""

    def __del__(self) -> None:
        sys._getframe(1).f_locals["x"] = 1.0 + len(sys._getframe(1).f_locals)


def rebound_by_a_del(n: int) -> float:
    total = 0.0
    x = 2.5
    holders = [Rebinder() for _ in range(n)]
    for i in range(n):
        x = x * 1.0000001 + 0.5
        h = holders[i]
        holders[i] = None  # the list lets go: `h` holds it
        total += x + (h is None)
        h = None  # frees the Rebinder, whose __del__ rebinds x
        total += x
    return total


def test_a_local_rebound_by_a_del_is_read_again() -> None:
    differential(rebound_by_a_del, 300, native=False)


def swap() -> int:
    """Rebinds the calling loop's `lst` to a new list: the old one is freed
    unless the loop's read of it holds a reference."""
    frame = sys._getframe(1)
    frame.f_locals["lst"] = [frame.f_locals["lst"][0] + 1.0]
    return 0


def rebound_under_a_read(n: int) -> float:
    lst = [0.5]
    total = 0.0
    for _ in range(n):
        total += lst[swap()]  # lst is read, then swap() runs, then the read list is subscripted
    return total


def test_a_local_rebound_by_a_call_while_its_read_is_in_use_keeps_its_object() -> None:
    differential(rebound_under_a_read, 300)


def with_an_exit(items: list[object]) -> float:
    total = 0.0
    for item in items:
        total += item  # an int at the end: the float guard exits with item on the stack
    return total


def test_a_borrowed_value_on_an_exit_stack_has_a_reference_of_its_own() -> None:
    items: list[object] = [0.5] * 300 + [7, 0.25, 3]
    before = [sys.getrefcount(x) for x in items[-3:]]
    for _ in range(3):
        differential(with_an_exit, items)
    assert [sys.getrefcount(x) for x in items[-3:]] == before


def sum_items(lists: list[list[object]]) -> float:
    total = 0.0
    for values in lists:
        total += values[0] * 2.0  # not a float at the end: the exit has the borrowed item on its stack
    return total


def test_a_borrowed_item_on_an_exit_stack_has_a_reference_of_its_own() -> None:
    ends = [10**30, 7, "s"]
    lists: list[list[object]] = [[0.5 + i] for i in range(300)] + [[end] for end in ends]
    before = [sys.getrefcount(end) for end in ends]
    for _ in range(3):
        differential(sum_items, lists)
    assert [sys.getrefcount(end) for end in ends] == before


def nested_unpack(rows: list[object]) -> float:
    total = 0.0
    for (a, b), c in rows:  # the row and its first item: borrowed (only unpacked)
        total += a * c - b
    return total


@pytest.mark.parametrize("end", [
    ([1.5, 2.0], 3.0),  # the inner item a list, not a tuple: guard_type exits with it on the stack
    ((1.5, 2.0, 9.0), 3.0),  # three items, not two: guard_size exits
    [(1.5, 2.0), 3.0],  # the row a list
    ((1.5, 2.0),),  # a row of one item: ValueError
])
def test_borrowed_rows_and_items_on_exit_stacks_keep_their_counts(end: object) -> None:
    rows: list[object] = [((0.5 * i, 1.0), 2.0) for i in range(300)] + [end]
    inner = end[0]  # type: ignore[index]
    before = sys.getrefcount(end), sys.getrefcount(inner)
    for _ in range(3):
        differential(nested_unpack, rows)
    assert (sys.getrefcount(end), sys.getrefcount(inner)) == before


def test_a_recording_round_trips_through_the_pass_with_the_verifier() -> None:
    rec: Recording = parse(ITEM.format(item_type=FLOAT))
    optimize(rec, check=True)


def test_a_release_of_an_item_a_borrowed_list_holds_does_not_end_another_borrow() -> None:
    # x's span holds the release of bk, a list item of b (borrowed: the
    # frame holds b all the loop): that release frees nothing, so x too borrows.
    text = f"""trace dst=0 src=40 slots=1:o,2:i stored=2
k = range_next.i() | exit @0 normal
    store.i(k) 2
row = load_b.o() 1
x = subscr_list.o(row, k) | exit @8 stack row k
b = load_b.o() 1
bk = subscr_list.o(b, k) | exit @10 stack x b k
    guard_type.(bk) {id(list)} | exit @12 stack x bk
y = len.i(bk)
    release.(bk)
    guard_type.(x) {id(float)} | exit @14 stack x
z = unbox.f(x) | exit @14 stack x
    release.(x)
"""
    rec = parse(text)
    assert runs_code(rec) == [False] * len(rec.ops)
    names = [op.name for op in borrow(rec).ops]
    assert names.count("subscr_list_b") == 2 and "release" not in names
    # After a list write, the release of an item (of a type whose freeing
    # may run code) may free it.
    checked = f"    guard_type.(bk) {id(list)} | exit @12 stack x bk\ny = len.i(bk)\n"
    written = parse(text.replace(checked, "w = box.o(k)\n    store_subscr_list.(w, b, k) | exit @12 stack\n"))
    at = next(index for index, op in enumerate(written.ops) if op.name == "release")
    assert written.ops[at].args == (5,) and runs_code(written)[at]
