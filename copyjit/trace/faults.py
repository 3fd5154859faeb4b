"""Fault injection: guards forced to fail, so that every exit path runs.

    COPYJIT_FAIL_GUARDS=_GUARD_TYPE_O,branch     (or `all`; or JIT(fail_guards=...))

Every guard of the named kinds, in every trace and bridge the JIT makes,
becomes an unconditional jump to its exit, as if it had failed there.
A kind is the name of a uop that may exit (its body has an EXIT_IF), or
`branch`: a recorded branch, whose exit is the path not recorded.

Why this is sound: a guard decides before any effect (uops.py), so the
exit stub of a uop expects the registers and the frame as they were just
before it, which is what a jump in its place leaves. The program then goes
on in the interpreter from the exit's instruction, and must give the same
answer as without the JIT: what the tests check for each kind
(tests/test_faults.py).

Bridges honour the knob too: a forced side exit gets hot and is bridged
like any other, and the bridge's own guards of those kinds fail as well
(they leave to the interpreter). So a forced kind costs speed, never
progress: each exit hands the interpreter at least one instruction.

Not forced: an `exit` that leads to `_FATAL_ERROR` (unboxing a value the
trace boxed a moment before, which cannot fail: there is no way back to
the interpreter from there).
"""

from __future__ import annotations

import os

from copyjit.backend.emitter import Instruction

BRANCH = "branch"
ALL = "all"
ENVIRONMENT = "COPYJIT_FAIL_GUARDS"


class UnknownGuard(ValueError):
    pass


def kinds() -> frozenset[str]:
    """Every guard kind the knob may name."""
    from copyjit.uops import UOPS

    return frozenset(name for name, op in UOPS.items() if op.may_exit) | {BRANCH}


def parse(text: str) -> frozenset[str]:
    """`kind1,kind2` or `all` (with the kinds, if any): the kinds to fail."""
    names = {word.strip() for word in text.split(",") if word.strip()}
    known = kinds()
    if ALL in names:
        return known
    unknown = sorted(names - known)
    if unknown:
        raise UnknownGuard(f"copyjit: {ENVIRONMENT}: no guard kind {unknown[0]!r} "
                           f"(the uops that may exit, `{BRANCH}`, or `{ALL}`)")
    return frozenset(names)


def from_environment() -> frozenset[str]:
    """COPYJIT_FAIL_GUARDS's kinds (a bad name is reported, and nothing forced)."""
    text = os.environ.get(ENVIRONMENT, "")
    if not text:
        return frozenset()
    try:
        return parse(text)
    except UnknownGuard as error:
        import sys

        print(error, file=sys.stderr)
        return frozenset()


def force(instructions: list[Instruction], fail: frozenset[str], counts: dict[str, int]) -> list[Instruction]:
    """The instructions, each guard of a kind in `fail` a jump to its exit
    instead (counted by kind in `counts`)."""
    result = instructions
    for index, instruction in enumerate(instructions):
        target = instruction.exit
        if target is None or instruction.name not in fail or instructions[target].name == "_FATAL_ERROR":
            continue
        if result is instructions:
            result = list(instructions)
        # before: i2 = _ADD_INT i0, i1 exit=exit3
        # after:  _JUMP jump=exit3
        result[index] = Instruction("_JUMP", jump=target)
        counts[instruction.name] = counts.get(instruction.name, 0) + 1
    return result
