"""Bridges: a side exit that keeps being taken gets its own trace, linked
into the exit, so that the loop stays native on both paths."""

from __future__ import annotations

import math

import pytest

from tests.test_objects import differential


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
