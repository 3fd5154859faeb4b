"""A bridge's first guard, when the parent's guard that left decided it.

A bridge starts where its parent's exit resumes, with the exit's stack as
its inputs, and records the instruction the guard was for again: for a
branch on numbers, the same comparison, now expecting the other outcome
(`if n % 2 == 0` recorded odd, its bridge even). Every entry into the
bridge comes from that guard having failed, so the comparison holds:

    parent:  branch.i(v2, v3) ('EQ', False) | exit @64 stack v2 v3
    bridge:  v0 = input.i()                       v0 = input.i()
             v1 = input.i()               -->     v1 = input.i()
             branch.i(v0, v1) ('EQ', True)

Only when no other guard shares the exit (they resume at an equal
snapshot for other reasons) and guards are not being made to fail
(faults.py), the caller's checks. Numbers only: comparing objects may run
code, which could answer differently the second time.
"""

from __future__ import annotations

from copyjit.opt.rewrite import rewrite
from copyjit.trace.ir import Op, Recording


def known_first_branch(rec: Recording, parent: Op, stack: tuple[int, ...]) -> Recording:
    """The bridge `rec` without its first op if that is `parent`'s branch
    on the same values (the bridge's inputs are the exit's `stack`),
    expecting the outcome that made the parent leave."""
    if parent.name != "branch" or not isinstance(parent.arg, tuple):
        return rec
    ops = rec.ops
    inputs = 0
    while inputs < len(ops) and ops[inputs].name == "input":
        inputs += 1
    if inputs != len(stack) or inputs == len(ops) or any(a not in stack for a in parent.args):
        return rec
    first = ops[inputs]
    comparison, outcome = parent.arg
    if first.name != "branch" or first.kind != parent.kind or first.arg != (comparison, not outcome) \
            or first.args != tuple(stack.index(a) for a in parent.args):
        return rec
    return rewrite(rec, {inputs}, {})
