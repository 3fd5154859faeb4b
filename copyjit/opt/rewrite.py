"""What every pass needs: drop ops, send a value's uses to another, renumber."""

from __future__ import annotations

import itertools

from copyjit.trace.ir import Op, Recording, Snapshot


def rewrite(rec: Recording, dropped: set[int], replace: dict[int, int],
            changed: dict[int, Op] | None = None, inserted: dict[int, list[Op]] | None = None) -> Recording:
    """The recording without the `dropped` ops, the `changed` ones replaced
    (their args still in the old numbering), every use of a value in
    `replace` (args, snapshot stacks) sent to its replacement (chased: a
    replacement may itself be replaced), the `inserted` ops (no values,
    in the old numbering) put before the op at their index, with its
    position, and values renumbered."""
    if not dropped and not replace and not changed and not inserted:
        return rec
    old_ops = rec.ops
    count = len(old_ops)
    # Old value -> new value (every pass rewrites the whole trace: this is
    # most of its cost). A value replaced by an earlier one takes that
    # one's new number when the loop reaches it, so uses need no chasing;
    # only a replacement by a later value (none of the passes makes one)
    # is chased.
    # The ops before the first one touched are kept as they are: they use
    # only values before them, which keep their numbers. (Loops, not min()
    # of the four joined: that builds a tuple and calls a builtin.)
    first = count
    for index in dropped:
        first = index if index < first else first
    for index in replace:
        first = index if index < first else first
    for index in changed or ():
        first = index if index < first else first
    for index in inserted or ():
        first = index if index < first else first
    number = [*range(first), *[-1] * (count - first)]
    # Index tests on lists, not sets and dicts: a value number past 256 is
    # a new int object at each lookup in compiled code.
    kept = [True] * count
    for index in dropped:
        kept[index] = False
    target = [-1] * count  # -1: not replaced
    chase = False
    for value, by in replace.items():
        target[value] = by
        chase = chase or by >= value
    chased = replace if chase else None
    # The op at each index, the `changed` one in place of the old (a list:
    # a dict lookup per op costs more than the copy).
    source = old_ops
    if changed:
        source = list(old_ops)
        for index, op in changed.items():
            source[index] = op
    before: list[list[Op] | None] = []  # (with insertions) per old op, the ops put before it
    if inserted:
        before = [None] * count
        for index, put in inserted.items():
            before[index] = put
    ops: list[Op] = old_ops[:first]
    at = list(range(first)) if inserted else []  # (with insertions) the old op whose position each op has
    for index in range(first, count):
        if inserted:
            extras = before[index]
            if extras is not None:
                for extra in extras:
                    args = tuple(number[_resolved(a, replace)] for a in extra.args)
                    snapshot = _renumbered(extra.snapshot, number, replace)
                    ops.append(Op(extra.name, extra.kind, args, extra.arg, snapshot))
                    at.append(index)
        by = target[index]
        if 0 <= by < index:
            number[index] = number[by]
        elif kept[index]:
            number[index] = len(ops)
        if not kept[index]:
            continue
        op = source[index]
        args = _renumbered_values(op.args, number, chased)
        snapshot = op.snapshot
        if snapshot is not None:
            stack = _renumbered_values(snapshot.stack, number, chased)
            # (A dropped value's number is its final replacement's, as
            # _resolved would find it: drop and reraise need no chasing
            # either.)
            drop = _renumbered_values(snapshot.drop, number, chased)
            reraise = None if snapshot.reraise is None else number[_resolved(snapshot.reraise, replace)]
            if stack is not snapshot.stack or drop is not snapshot.drop or reraise != snapshot.reraise:
                snapshot = Snapshot(snapshot.offset, stack, snapshot.normal, reraise, snapshot.on_frame, drop)
        ops.append(op if args is op.args and snapshot is op.snapshot else
                   Op(op.name, op.kind, args, op.arg, snapshot))
        if inserted:
            at.append(index)
    positions = rec.positions
    # (Copied through itertools and map, not a comprehension: compiled code
    # would unpack each position tuple and pack it again into a new one.)
    if positions is not None and inserted:
        positions = list(map(positions.__getitem__, at))
    elif positions is not None:  # each kept op's, in its new order
        positions = list(itertools.compress(positions, kept))
    return Recording(rec.code, rec.dst, rec.src, ops, dict(rec.slots), list(rec.stored), rec.constants,
                     positions)


def _renumbered(snapshot: Snapshot | None, number: list[int], replace: dict[int, int]) -> Snapshot | None:
    if snapshot is None:
        return None
    reraise = None if snapshot.reraise is None else number[_resolved(snapshot.reraise, replace)]
    return Snapshot(snapshot.offset, tuple(number[_resolved(v, replace)] for v in snapshot.stack),
                    snapshot.normal, reraise, snapshot.on_frame,
                    tuple(number[_resolved(v, replace)] for v in snapshot.drop))


def _renumbered_values(values: tuple[int, ...], number: list[int],
                       chased: dict[int, int] | None) -> tuple[int, ...]:
    """`values` renumbered (through the replacements `chased`, when given):
    the same tuple when no number changes, so that an op or snapshot left
    as it was stays the same object. (tuple() of a generator over a tuple:
    compiled, it fills a tuple of the right size, with no list between.)"""
    if chased is None:
        for value in values:
            if number[value] != value:
                return tuple(number[v] for v in values)
        return values
    for value in values:
        if number[_resolved(value, chased)] != value:
            return tuple(number[_resolved(v, chased)] for v in values)
    return values


def _resolved(value: int, replace: dict[int, int]) -> int:
    while value in replace:  # a replacement may itself be replaced
        value = replace[value]
    return value


def uses(rec: Recording) -> list[int]:
    """How many times each value is used (args and snapshots)."""
    counts = [0] * len(rec.ops)
    for op in rec.ops:
        for value in op.args:  # (op.uses() without the tuples it builds)
            counts[value] += 1
        snapshot = op.snapshot
        if snapshot is not None:
            for value in snapshot.stack:
                counts[value] += 1
            if snapshot.reraise is not None:
                counts[snapshot.reraise] += 1
            for value in snapshot.drop:
                counts[value] += 1
    return counts
