"""A loop's own iterator is type-checked once, where its trace enters the
loop (`_GUARD_TOS_TYPE`); the iterations step it unchecked (the `_KNOWN`
uops of range, list and tuple iteration). An iterator of another type at
an entry leaves there, before anything ran, and the interpreter runs the
loop: a list trace entered with a tuple, a range trace with a range too
big for a machine word, a nested loop run inline with either."""

from __future__ import annotations

from collections.abc import Sequence

from copyjit.trace.jit import JIT


def uop_names(jit: JIT) -> list[str]:
    return [ins.name for location in set(jit.locations.values()) if location.lowered is not None
            for ins in location.lowered.instructions]


def total(items: object) -> float:
    t = 0.0
    for item in items:  # type: ignore[attr-defined]
        t += item * 0.5
    return t


def ranged(start: int, stop: int) -> int:
    t = 0
    for i in range(start, stop):
        t += i % 7
    return t


def nested(groups: Sequence[Sequence[float]]) -> float:
    t = 0.0
    for group in groups:
        for value in group:  # run inline
            t += value
    return t


def test_a_loop_steps_its_iterator_unchecked_after_one_check_at_the_entry() -> None:
    jit = JIT(100)
    jit.enable(total.__code__)
    jit.enable(ranged.__code__)
    try:
        assert total([1.5] * 3000) == 2250.0
        assert ranged(0, 3000) == sum(i % 7 for i in range(3000))
    finally:
        jit.disable()
    names = uop_names(jit)
    assert names.count("_GUARD_TOS_TYPE") == 2
    steps = [name for name in names if name.startswith("_FOR_ITER_")]
    assert sorted(steps) == ["_FOR_ITER_LIST_O_KNOWN", "_FOR_ITER_RANGE_UNBOXED_KNOWN"]


def test_an_iterator_of_another_type_leaves_at_the_entry() -> None:
    jit = JIT(100)
    jit.enable(total.__code__)
    jit.enable(ranged.__code__)
    big = 2**70
    try:
        assert total([1.5] * 3000) == 2250.0
        assert ranged(0, 3000) == sum(i % 7 for i in range(3000))
        entries = jit.stats.as_dict()["native_entries"]
        for _ in range(3):
            assert total(tuple([2.5] * 3000)) == 3750.0
            assert total(iter([0.5] * 500)) == 125.0
            assert ranged(big, big + 2000) == sum(i % 7 for i in range(big, big + 2000))
        assert total([1.5] * 3000) == 2250.0
    finally:
        jit.disable()
    assert jit.stats.as_dict()["native_entries"] > entries


def test_a_nested_loop_run_inline_agrees_when_its_iterator_changes_type() -> None:
    # Its entry checks the iterator too; today the outer trace's own guard
    # on `group` (before GET_ITER) leaves first when it changes, so this is
    # a differential test of the nest, not of that check alone.
    lists = [[0.5] * 40 for _ in range(300)]
    mixed = [(0.25,) * 40 if k % 3 == 0 else [0.75] * 40 for k in range(300)]
    jit = JIT(100)
    jit.enable(nested.__code__)
    try:
        assert nested(lists) == 6000.0
        inlined, names = jit.stats.inlined_loops, uop_names(jit)
        for _ in range(3):
            assert nested(mixed) == sum(sum(group) for group in mixed)
        assert nested(lists) == 6000.0
    finally:
        jit.disable()
    assert inlined >= 1
    assert names.count("_GUARD_TOS_TYPE") == 3  # the nested trace, the outer, and its copy inline
    assert not [name for name in names if name.startswith("_FOR_ITER_") and not name.endswith("_KNOWN")]
