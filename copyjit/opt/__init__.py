"""The optimizer: passes over a recording, in an order given as data.

    recording --forward--> --fold--> --cse--> --guards--> --allocs--> --licm--> --borrow-->
              --virtual--> --guards--> --dce--> --checks--> lowering

Switch passes off with COPYJIT_OPT (`none`; `-fold,-dce`: all but those;
`none,fold`: only fold) or `python -m copyjit run --no-opt fold` (repeat
it for more; `--no-opt all`); COPYJIT_VERIFY=1 checks every
recording after every pass (the tests run with it).
"""

from __future__ import annotations

import os

from copyjit.opt.borrow import borrow
from copyjit.opt.fold import fold
from copyjit.opt.licm import licm
from copyjit.opt.passes import allocs, checks, cse, dce, forward, guards
from copyjit.opt.virtual import virtual

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from copyjit.trace.ir import Recording

PASSES: dict[str, Callable[[Recording], Recording]] = {
    "forward": forward,  # a local read after a write in the iteration is the written value
    "fold": fold,  # constants folded, identities (x * 1) simplified
    "cse": cse,  # a number computed again from the same values is the first one
    "guards": guards,  # a guard already checked, a second unbox of one object
    "allocs": allocs,  # boxes only released, or floats boxed only to be stored into a list
    "licm": licm,  # loads of globals and module attributes checked before the loop, not in it
    "virtual": virtual,  # object locals of a loop that runs no code kept in the trace, not the frame
    "borrow": borrow,  # reads of object locals the frame keeps alive take no reference
    "dce": dce,  # pure ops whose values nothing uses (snapshots count as uses)
    "checks": checks,  # a type guard right before an unbox that checks the type itself
}
# guards twice: borrow makes two reads of a local one value, whose second
# type check guards then drops.
PIPELINE: tuple[str, ...] = ("forward", "fold", "cse", "guards", "allocs", "licm", "borrow", "virtual",
                             "guards", "dce", "checks")
LOOPS_ONLY = frozenset({"licm", "virtual"})  # passes that need the recording to be a loop's (not a bridge's)


class UnknownPass(ValueError):
    pass


def disabled_passes(setting: str | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The passes COPYJIT_OPT (or `setting`) and `extra` (--no-opt) turn off."""
    setting = os.environ.get("COPYJIT_OPT", "") if setting is None else setting
    words = [w.strip() for w in setting.split(",")]
    off = set()
    for word in [*(w for w in words if w), *(f"-{name}" for name in extra)]:
        name = word.removeprefix("-")
        if word in ("none", "-all"):
            off |= set(PIPELINE)
            continue
        if word == "all":
            off.clear()
            continue
        if name not in PASSES:
            raise UnknownPass(f"copyjit: no optimizer pass {name!r}; the passes are {', '.join(PIPELINE)}")
        if word.startswith("-"):
            off.add(name)
        else:
            off.discard(name)
    return frozenset(off)


def optimize(rec: Recording, off: frozenset[str] = frozenset(), check: bool | None = None,
             loop: bool = True,
             report: Callable[[str, Recording, Recording], None] | None = None) -> Recording:
    """The recording after every pass of PIPELINE not in `off` (a bridge's,
    not `loop`, after those not in LOOPS_ONLY); `report` (COPYJIT_LOG) is
    told each pass's name, its input and its output."""
    check = os.environ.get("COPYJIT_VERIFY") == "1" if check is None else check
    if check:
        from copyjit.opt.verify import verify

        verify(rec, "recording")
    for name in PIPELINE:
        if name not in off and (loop or name not in LOOPS_ONLY):
            before, rec = rec, PASSES[name](rec)
            if check:
                verify(rec, name)
            if report is not None:
                report(name, before, rec)
    return rec
