"""Bridges: a side exit that keeps being taken gets its own trace, linked
into the exit, so that the loop stays native on both paths."""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Callable
from typing import Any

import pytest

from copyjit.opt.bridge import known_first_branch
from copyjit.opt.text import parse
from copyjit.trace.jit import JIT
from tests.test_objects import agreeing_jit, differential
from tests.test_opt import same


def alternating(n: int) -> tuple[int, float]:
    evens, odds = 0, 0.0
    for i in range(n):
        if i % 2 == 0:
            evens += i
        else:
            odds += i * 0.5
    return evens, odds


def test_a_branch_taken_half_the_time_gets_a_bridge_and_stays_native() -> None:
    stats = differential(alternating, 100_000)
    assert stats["bridges"] >= 1
    # Without the bridge, every odd iteration would leave the trace.
    assert stats["native_entries"] < 100


def collatz(limit: int) -> int:
    longest = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            if n % 2 == 0:  # noqa: SIM108 - a branch, on purpose
                n = n // 2
            else:
                n = 3 * n + 1
            steps += 1
        longest = max(longest, steps)
    return longest


def test_while_loop_with_a_bridge() -> None:
    assert differential(collatz, 3000)["bridges"] >= 1


def bridge_on_objects(flags: list[bool], values: list[float]) -> tuple[int, float]:
    count, total = 0, 0.0
    for k in range(len(flags)):
        if flags[k]:
            count += 1
            total += math.sqrt(values[k])
        else:
            total -= values[k]
    return count, total


def test_a_bridge_starting_on_a_bool_taken_from_a_list() -> None:
    flags = [k % 3 != 0 for k in range(3000)]
    stats = differential(bridge_on_objects, flags, [k * 0.25 for k in range(3000)])
    assert stats["bridges"] >= 1


@pytest.mark.parametrize("bad", [-1.0, "text"])
def test_a_guard_failing_inside_a_bridge_exits_exactly(bad: object) -> None:
    values: list[object] = [k * 0.25 for k in range(3000)]
    values[2999] = bad  # a flag is True there: the bridge's sqrt or add fails
    flags = [k % 3 != 0 for k in range(3000)]
    differential(bridge_on_objects, flags, values)


def test_many_paths_get_several_bridges() -> None:
    def paths(n: int) -> int:
        total = 0
        for i in range(n):
            r = i % 5
            if r == 0:
                total += 1
            elif r == 1:
                total += 10
            elif r == 2:
                total -= 3
            else:
                total *= 1
        return total

    stats = differential(paths, 50_000)
    assert stats["bridges"] >= 2
    # Each backedge gets a trace whose hot exits are bridged after
    # HOT_EXIT exits each: then the 50,000 iterations stay native.
    assert stats["native_entries"] < 500


BIG = 2**40  # not a "compact" int: unboxing it takes the slow path


def bridge_guard_fails(ps: list[int], big: object) -> tuple[object, int]:
    global BIG
    BIG = big
    c, i = 1, 0
    for _ in ps:
        i += 1
        if i % 2 == 0:
            continue
        c = c + BIG
        if i == 71:
            BIG = 2.5  # the bridge's unboxing guard fails from now on
    return c, i


@pytest.mark.parametrize("big", [2**40, 7])
def test_a_bridge_exit_writes_back_the_parents_locals(big: int) -> None:
    # Found by the object fuzzer: a bridge's exits wrote only the locals the
    # bridge used, so the parent's loop counter lost its increments.
    differential(bridge_guard_fails, list(range(200)), big)


def test_a_bridge_storing_a_local_its_parent_only_reads() -> None:
    # Found by the object fuzzer: the parent's exits wrote back only the
    # locals the parent stored, so the bridge's stores to `c` were lost.
    def f(n: int) -> int:
        c = 0
        for i in range(n):
            t = c  # noqa: F841 - the parent (odd i) only reads c
            if i % 2 == 0:
                c = c + 1
        return c

    differential(f, 100)


# --- bridges the guard's exit goes to directly ------------------------------
# A guard's exit is a table that _EXIT_DATA's routine reads; once the exit
# has a bridge, the exit first jumps to the bridge's start that makes the
# table's moves, references and releases itself (lower.py's direct_start),
# the registers as the guard left them. The other exits at the same
# snapshot (shared stubs) still go through the table, to the bridge's
# later start. Each program below is taken through both starts' code.


def direct_entries(jit: JIT) -> tuple[int, int]:
    """(bridges, those linked to be entered directly from their guard)."""
    bridges = direct = 0
    for location in set(jit.locations.values()):
        if location.lowered is None:
            continue
        links = location.lowered.links
        for number in location.bridge_exits:
            bridges += 1
            direct += int.from_bytes(links[8 * (len(links) // 16 + number):][:8], "little") != 0
    return bridges, direct


def direct_differential(function: Callable[..., Any], *args: object) -> tuple[int, int]:
    return direct_entries(agreeing_jit(function, *args))


def floats_in_registers(n: int) -> tuple[float, float, int]:
    """Pinned float locals and a float compared at the guard that fails half the time."""
    s, x, flips = 0.0, 0.25, 0
    for _ in range(n):
        x = x * 1.5
        if x > 1.0:
            x -= 0.75
            flips += 1
        s += x
    return s, x, flips


def sum_items(values: list[float], n: int) -> float:
    """A list's float item (borrowed) and a constant on the stack at the
    branch's exit: the direct start takes the references the table would."""
    s = 0.0
    for i in range(n):
        if values[i % 100] > 3.0:
            s += values[i % 100]
        else:
            s -= 1.0
    return s


def differences(pairs: list[tuple[Any, Any]], n: int) -> float:
    """`a - b` unboxes a, then b, two guards at one snapshot: the second
    fails (an int b), so it goes to the bridge through the table."""
    s = 0.0
    for i in range(n):
        a, b = pairs[i % 4]
        s += a - b
    return s


@pytest.mark.parametrize(("function", "n"), [(collatz, 3000), (alternating, 20_000),
                                             (floats_in_registers, 20_000)])
def test_a_hot_guard_enters_its_bridge_directly(function: Callable[[int], Any], n: int) -> None:
    bridges, direct = direct_differential(function, n)
    assert bridges >= 1 and direct >= 1, (bridges, direct)


def test_a_bridge_at_a_shared_snapshot_gives_cpython_results() -> None:
    pairs = [(1.5, 0.25), (1.5, 0.25), (1.25, 3), (0.5, 7)]
    jit = agreeing_jit(differences, pairs, 20_000)
    assert direct_entries(jit)[0] >= 1
    # Only the guard whose moves the bridge's direct start makes tries it.
    (location,) = {location for location in jit.locations.values() if location.lowered is not None}
    tried = [ins.operand0 for ins in location.lowered.instructions if ins.name == "_BRIDGE_OR_CONTINUE"]
    assert tried and len(tried) == len(set(tried))


def test_the_direct_start_takes_the_references_the_table_would() -> None:
    values = [float(k % 7) for k in range(100)]
    references = [sys.getrefcount(v) for v in values]
    jit = agreeing_jit(sum_items, values, 20_000)
    bridges, direct = direct_entries(jit)
    assert bridges >= 1 and direct >= 1, (bridges, direct)
    del jit  # (its traces' constants)
    gc.collect()
    assert [sys.getrefcount(v) for v in values] == references


# --- a bridge's first guard, decided by its parent's (opt/bridge.py) --------

PARENT = """trace dst=54 src=122 slots=3:i stored=3
n = load.i() 3
two = const.i() 2
r = binary.i(n, two) 'mod' | exit @58 stack n two
zero = const.i() 0
     branch.i(r, zero) ('EQ', False) | exit @64 stack r zero
"""
BRIDGE = """trace dst=54 src=122 slots=3:i stored=3
r = input.i()
zero = input.i()
     branch.i(r, zero) ('EQ', True) | exit @64 stack r zero
n = load.i() 3
two = const.i() 2
h = binary.i(n, two) 'floordiv' | exit @76 stack n two
    store.i(h) 3
"""


def test_a_bridge_drops_the_branch_its_parents_guard_decided() -> None:
    parent = parse(PARENT)
    guard = parent.ops[4]
    assert guard.snapshot is not None
    dropped = known_first_branch(parse(BRIDGE), guard, guard.snapshot.stack)
    same(dropped, """trace dst=54 src=122 slots=3:i stored=3
r = input.i()
zero = input.i()
n = load.i() 3
two = const.i() 2
h = binary.i(n, two) 'floordiv' | exit @76 stack n two
    store.i(h) 3
""")


@pytest.mark.parametrize("first", [
    "branch.i(r, zero) ('EQ', False)",  # the outcome the parent stayed on: not decided
    "branch.i(zero, r) ('EQ', True)",  # other values
    "branch.i(r, zero) ('NE', True)",  # another comparison
])
def test_a_bridge_keeps_a_first_branch_its_parent_did_not_decide(first: str) -> None:
    guard = parse(PARENT).ops[4]
    assert guard.snapshot is not None
    bridge = BRIDGE.replace("branch.i(r, zero) ('EQ', True)", first)
    same(known_first_branch(parse(bridge), guard, guard.snapshot.stack), bridge)


def last_multiple(n: int) -> int:
    """The bridge (a multiple of 3) is one store: with its branch decided,
    it has no exit at all (found by the object fuzzer: seed 300055)."""
    last = 0
    for i in range(n):
        if i % 3 == 0:
            last = i
    return last


def test_a_bridge_with_no_exit() -> None:
    bridges, direct = direct_differential(last_multiple, 20_000)
    assert bridges >= 1 and direct >= 1, (bridges, direct)
