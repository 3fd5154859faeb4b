"""What every pass needs: drop ops, send a value's uses to another, renumber."""

from __future__ import annotations

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
    changed = changed or {}
    inserted = inserted or {}
    # Old value -> new value (every pass rewrites the whole trace: this is
    # most of its cost). A value replaced by an earlier one takes that
    # one's new number when the loop reaches it, so uses need no chasing;
    # only a replacement by a later value (none of the passes makes one)
    # is chased.
    # The ops before the first one touched are kept as they are: they use
    # only values before them, which keep their numbers.
    first = min((*dropped, *replace, *changed, *inserted))
    old_ops = rec.ops
    count = len(old_ops)
    number = [*range(first), *[-1] * (count - first)]
    # Index tests on lists, not sets and dicts: a value number past 256 is
    # a new int object at each lookup in compiled code.
    gone = [False] * count
    for index in dropped:
        gone[index] = True
    target = [-1] * count  # -1: not replaced
    chase = False
    for value, by in replace.items():
        target[value] = by
        chase = chase or by >= value
    chased = replace if chase else None
    ops: list[Op] = old_ops[:first]
    at = list(range(first)) if inserted else []  # (with insertions) the old op whose position each op has
    for index in range(first, count):
        if inserted and index in inserted:
            for extra in inserted[index]:
                args = tuple([number[_resolved(a, replace)] for a in extra.args])
                snapshot = _renumbered(extra.snapshot, number, replace)
                ops.append(Op(extra.name, extra.kind, args, extra.arg, snapshot))
                at.append(index)
        by = target[index]
        if 0 <= by < index:
            number[index] = number[by]
        elif not gone[index]:
            number[index] = len(ops)
        if gone[index]:
            continue
        op = changed.get(index, old_ops[index]) if changed else old_ops[index]
        args = _renumbered_values(op.args, number, chased)
        snapshot = op.snapshot
        if snapshot is not None:
            stack = _renumbered_values(snapshot.stack, number, chased)
            drop = tuple([number[_resolved(v, replace)] for v in snapshot.drop]) if snapshot.drop else ()
            reraise = None if snapshot.reraise is None else number[_resolved(snapshot.reraise, replace)]
            if stack is not snapshot.stack or drop != snapshot.drop or reraise != snapshot.reraise:
                snapshot = Snapshot(snapshot.offset, stack, snapshot.normal, reraise, snapshot.on_frame, drop)
        ops.append(op if args is op.args and snapshot is op.snapshot else
                   Op(op.name, op.kind, args, op.arg, snapshot))
        if inserted:
            at.append(index)
    positions = rec.positions
    if positions is not None and inserted:
        positions = [positions[index] for index in at]
    elif positions is not None:  # each kept op's, in its new order
        positions = [position for index, position in enumerate(positions) if not gone[index]]
    return Recording(rec.code, rec.dst, rec.src, ops, dict(rec.slots), list(rec.stored), rec.constants,
                     positions)


def _renumbered(snapshot: Snapshot | None, number: list[int], replace: dict[int, int]) -> Snapshot | None:
    if snapshot is None:
        return None
    reraise = None if snapshot.reraise is None else number[_resolved(snapshot.reraise, replace)]
    return Snapshot(snapshot.offset, tuple([number[_resolved(v, replace)] for v in snapshot.stack]),
                    snapshot.normal, reraise, snapshot.on_frame,
                    tuple([number[_resolved(v, replace)] for v in snapshot.drop]))


def _renumbered_values(values: tuple[int, ...], number: list[int],
                       chased: dict[int, int] | None) -> tuple[int, ...]:
    """`values` renumbered (through the replacements `chased`, when given):
    the same tuple when no number changes, so that an op or snapshot left
    as it was stays the same object."""
    for value in values:
        if number[value if chased is None else _resolved(value, chased)] != value:
            return tuple([number[v if chased is None else _resolved(v, chased)] for v in values])
    return values


def _resolved(value: int, replace: dict[int, int]) -> int:
    while value in replace:  # a replacement may itself be replaced
        value = replace[value]
    return value


def uses(rec: Recording) -> list[int]:
    """How many times each value is used (args and snapshots)."""
    counts = [0] * len(rec.ops)
    for op in rec.ops:
        for value in op.uses():
            counts[value] += 1
    return counts
