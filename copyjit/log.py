"""COPYJIT_LOG: trace events, one line each, as they happen.

    COPYJIT_LOG=1            what the compiler does: recorded, optimized,
                             emitted, aborted, invalidated, blacklisted
    COPYJIT_LOG=all          that, and entered and exited
    COPYJIT_LOG=emitted,exited   only those events
    COPYJIT_LOG_FILE=PATH    write there (appended) instead of stderr

A line reads `copyjit: EVENT LOOP: details`, LOOP being `file:line
(function)` of the loop's head, with ` bridge from exit N` for a bridge.

The JIT calls this only when it is on (JIT.log is None otherwise), and
only where it compiles or drops a trace, never from native code. Entries
and exits are counted natively; to see them the JIT asks the native
callback to call it back at every entry while `entered` or `exited` is
logged (JIT.track), so an exit is logged when the loop is next entered, or
when the JIT is disabled (the program's end), with the number of times
each exit was taken since: the trace's exits as native code counts them,
a bridge's as it counts them itself (lower.py, run_bridge). (A loop whose
trace an enclosing loop's trace runs is entered without the callback: its
exits are then logged in bulk.)
"""

from __future__ import annotations

import os
import sys
from struct import iter_unpack
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from types import CodeType

    from copyjit.backend.emitter import Trace
    from copyjit.trace.ir import Abort, Recording
    from copyjit.trace.jit import Location

COMPILER_EVENTS = ("recorded", "optimized", "emitted", "aborted", "invalidated", "blacklisted")
RUN_EVENTS = ("entered", "exited")
EVENTS = COMPILER_EVENTS + RUN_EVENTS


class UnknownEvent(ValueError):
    pass


def events(setting: str) -> frozenset[str]:
    """The events a COPYJIT_LOG value names (empty: off)."""
    chosen: set[str] = set()
    for word in (w.strip() for w in setting.split(",")):
        if word in ("", "0"):
            continue
        if word in ("1", "compile"):
            chosen |= set(COMPILER_EVENTS)
        elif word == "all":
            chosen |= set(EVENTS)
        elif word in EVENTS:
            chosen.add(word)
        else:
            raise UnknownEvent(f"copyjit: COPYJIT_LOG: no event {word!r}; the events are {', '.join(EVENTS)} "
                               "(1: the compiler's, all: every one)")
    return frozenset(chosen)


def from_environment() -> Log | None:
    """The log COPYJIT_LOG asks for, or None (a bad value is reported once, and ignored)."""
    try:
        chosen = events(os.environ.get("COPYJIT_LOG", ""))
    except UnknownEvent as error:
        print(error, file=sys.stderr)
        return None
    if not chosen:
        return None
    path = os.environ.get("COPYJIT_LOG_FILE")
    return Log(chosen, open(path, "a", buffering=1) if path else sys.stderr)  # open as long as the JIT


class Log:
    def __init__(self, chosen: frozenset[str], out: IO[str]) -> None:
        self.chosen, self.out = chosen, out
        self.entries = bool(chosen & set(RUN_EVENTS))  # the JIT must call back at every entry
        self._names: dict[int, str] = {}  # id(location) -> its loop's name
        # id(location) -> its exit counters when last looked at: the trace's, then each bridge's
        self._seen: dict[int, tuple[bytes, ...]] = {}
        self._passes: list[str] = []
        self._ops_before = 0

    def _line(self, event: str, location: Location, text: str, bridge: int | None = None) -> None:
        if event in self.chosen:
            where = self._names.get(id(location), "a loop")
            if bridge is not None:
                where += f" bridge from exit {bridge}"
            self.out.write(f"copyjit: {event} {where}: {text}\n")

    def name(self, code: CodeType, location: Location, dst: int) -> None:
        """Name the loop (once) by the file, line and function of its head."""
        if id(location) not in self._names:
            from copyjit.trace.jit import _line_of

            filename = code.co_filename
            relative = os.path.relpath(filename) if filename.startswith("/") else filename
            filename = filename if relative.startswith("..") else relative
            self._names[id(location)] = f"{filename}:{_line_of(code, dst)} ({code.co_qualname})"

    # --- the compiler's events (JIT.compile, compile_bridge, discard, judge) --

    def recorded(self, code: CodeType, location: Location, recording: Recording,
                 bridge: int | None = None) -> None:
        self.name(code, location, recording.dst)
        self._passes, self._ops_before = [], len(recording.ops)
        span = f"bytecode {recording.dst}..{recording.src}"
        self._line("recorded", location, f"{len(recording.ops)} ops, {span}", bridge)

    def pass_done(self, name: str, before: Recording, after: Recording) -> None:
        self._passes.append(f"{name} {len(after.ops) - len(before.ops):+d}")

    def optimized(self, location: Location, optimized: Recording, bridge: int | None = None) -> None:
        passes = ", ".join(self._passes) or "no passes"
        ops = f"{self._ops_before} -> {len(optimized.ops)} ops"
        self._line("optimized", location, f"{ops} ({passes})", bridge)

    def emitted(self, code: CodeType, location: Location, trace: Trace, bridge: int | None) -> None:
        where = f"{trace.size} bytes at {trace.address:#x}"
        self._line("emitted", location, f"{where}, {len(trace.instructions)} uops", bridge)
        if bridge is None:
            self._seen.pop(id(location), None)

    def aborted(self, code: CodeType, location: Location, abort: Abort, bridge: int | None = None) -> None:
        where = ""
        if abort.where is not None:
            from copyjit.trace.jit import _line_of, _opname_at

            at, offset = abort.where
            where = f" (line {_line_of(at, offset)}, {_opname_at(at, offset)} at bytecode {offset})"
        self._line("aborted", location, abort.reason + where, bridge)

    def invalidated(self, location: Location, reason: str) -> None:
        self._seen.pop(id(location), None)
        self._line("invalidated", location, reason)

    def blacklisted(self, location: Location, reason: str) -> None:
        self._line("blacklisted", location, f"{reason}; stays in the interpreter")

    # --- entries and exits (JIT._on_jump, when self.entries) -----------------

    def entering(self, location: Location) -> None:
        """The loop is about to be entered natively: first the exits taken
        since it was last looked at."""
        self.exits(location)
        self._line("entered", location, f"entry {location['entries'] + 1}")

    def exits(self, location: Location) -> None:
        """Log the exits taken since the last look: the trace's (counted by
        native code per exit number) and its bridges' (each counts itself)."""
        bridges = [bytes(bridge.lowering.exit_counts) for bridge in location.bridge_lowered]
        now = (bytes(location.exits), *bridges)
        before = self._seen.get(id(location), ())
        self._seen[id(location)] = now
        if "exited" not in self.chosen:
            return
        for part, counts in enumerate(now):
            same = part < len(before) and len(before[part]) == len(counts)  # else new: from zero
            old = before[part] if same else bytes(len(counts))
            for number, (was, taken) in enumerate(zip(_taken(part, old), _taken(part, counts), strict=True)):
                if taken > was:
                    text = _exit_text(location, number, taken - was) if part == 0 else \
                        _bridge_exit_text(location, part - 1, number, taken - was)
                    self._line("exited", location, text)


    def finish(self, locations: list[Location]) -> None:
        """The program's end: the exits not logged yet."""
        for location in locations:
            if location.trace is not None:
                self.exits(location)
        self.out.flush()


def _taken(part: int, counts: bytes) -> list[int]:
    """Times taken per exit: the trace's exit_counters (taken, limit), or a bridge's int64s."""
    from copyjit.backend.runtime import EXIT

    if part == 0:
        return [taken for taken, _ in EXIT.iter_unpack(counts)]
    return [taken for (taken,) in iter_unpack("<q", counts)]


def _bridge_exit_text(location: Location, index: int, own: int, times: int) -> str:
    from copyjit.trace.jit import BRIDGE_EXITS, _line_of

    bridge = location.bridge_lowered[index]
    snapshot = bridge.snapshots[own]
    kind = "leaving the loop" if snapshot.normal else "side exit"
    line = _line_of(bridge.lowering.rec.code, snapshot.offset)
    text = (f"exit {BRIDGE_EXITS * (index + 1) + own} of bridge {index + 1} (from exit "
            f"{location.bridge_exits[index]}; line {line}, {kind}, resumes at bytecode {snapshot.offset})")
    return text + (f", {times} times" if times > 1 else "")


def _exit_text(location: Location, number: int, times: int) -> str:
    text = f"exit {number}"
    lowered = location.lowered
    if number == 0:
        text += " (a local of another type at entry)"
    elif lowered is not None and number <= len(lowered.snapshots):
        snapshot = lowered.snapshots[number - 1]
        code = lowered.lowering.rec.code
        from copyjit.trace.jit import _line_of

        kind = "leaving the loop" if snapshot.normal else "side exit"
        text += f" (line {_line_of(code, snapshot.offset)}, {kind}, resumes at bytecode {snapshot.offset})"
    return text + (f", {times} times" if times > 1 else "")
