"""The JIT: sys.monitoring JUMP events find hot loops, which are recorded,
lowered, emitted, and from then on entered natively at their backedge."""

from __future__ import annotations

import ctypes
import struct
import sys
import time
import weakref
from collections import Counter
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from copyjit.backend.runtime import runtime

if TYPE_CHECKING:
    from copyjit.backend.emitter import Trace
    from copyjit.trace.lower import Lowered

TOOL = sys.monitoring.OPTIMIZER_ID
ENTRY_EXIT = 0  # the exit taken when the frame's locals do not fit the trace
# Recording, lowering and emitting a trace takes ~2 ms, about as long as tens
# of thousands of interpreted iterations: loops shorter than that are not
# worth it. (Measured with benchmarks/kernels.py; 16 made big_ints 5x slower.)
DEFAULT_THRESHOLD = 1000
# A trace that keeps leaving by the same side exit does not fit the loop
# any more (a branch went the other way): re-record it, a few times at most.
EARLY_EXITS_BEFORE_RERECORD = 64
MAX_RECORDINGS = 4
# Recordings that failed for a passing reason (a value too big for 64 bits
# this time, the loop ending mid-recording) have a budget of their own.
MAX_TRANSIENT_ABORTS = 32
# Entering a trace costs ~3 us of Python (the handler), a native iteration
# saves ~25 ns: a loop that averages fewer iterations than this per entry is
# faster in the interpreter. Judged after ENTRIES_BEFORE_JUDGING entries.
MIN_ITERATIONS_PER_ENTRY = 150
ENTRIES_BEFORE_JUDGING = 256


class Stats:
    """What the JIT did; `as_dict()` is what --stats-json and stats() give."""

    def __init__(self) -> None:
        self.traces = 0
        self.bridges = 0
        self.aborts: Counter[str] = Counter()
        self.exits = 0
        self.native_entries = 0
        self.recording_seconds = 0.0
        self.optimizing_seconds = 0.0
        self.emitting_seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        result = dict(vars(self))
        result["aborts"] = dict(self.aborts)
        return result


class Location:
    """A backedge: (code, src). Does not keep the code alive (its trace does)."""

    def __init__(self, code_id: int) -> None:
        self.code_id = code_id
        self.recordings = 0  # traces made, or MAX_RECORDINGS once given up
        self.transient_aborts = 0
        self.trace: Trace | None = None
        self.lowered: Lowered | None = None
        self.early_exits: Counter[int] = Counter()
        self.entries = 0
        self.iterations = bytearray(8)  # an int64 the trace increments, at a fixed address


class JIT:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.threshold = max(1, threshold)
        self.locations: dict[tuple[int, int], Location] = {}
        self.stats = Stats()
        self.enabled = False
        self.watched: list[CodeType] = []  # codes with local events, to clear
        # Backedge counts, kept by the native callback: id(code) -> one
        # uint32 per code unit, dropped when the code object dies.
        self.counters: dict[int, bytearray] = {}
        self._registered_threshold = 0

    # --- sys.monitoring -----------------------------------------------------

    def enable(self, code: CodeType | None = None) -> None:
        """Watch all code, or only `code`."""
        monitoring = sys.monitoring
        if not self.enabled:
            if monitoring.get_tool(TOOL) is not None:
                raise RuntimeError(f"copyjit: sys.monitoring tool {TOOL} is taken by "
                                   f"{monitoring.get_tool(TOOL)!r}")
            monitoring.use_tool_id(TOOL, "copyjit")
            self.enabled = True
        if self._registered_threshold != self.threshold:  # the native counter keeps its own copy
            callback = runtime().jump_callback(self.on_jump, self.counters, self.threshold)
            monitoring.register_callback(TOOL, monitoring.events.JUMP, callback)  # type: ignore[arg-type]
            self._registered_threshold = self.threshold
        if code is None:
            monitoring.set_events(TOOL, monitoring.events.JUMP)
        else:
            monitoring.set_local_events(TOOL, code, monitoring.events.JUMP)
            self.watched.append(code)

    def disable(self) -> None:
        """Stop watching. (In 3.13 free_tool_id leaves events and callbacks in
        place, so they are cleared one by one.)"""
        if not self.enabled:
            return
        monitoring = sys.monitoring
        monitoring.set_events(TOOL, 0)
        for code in self.watched:
            monitoring.set_local_events(TOOL, code, 0)
        self.watched.clear()
        monitoring.register_callback(TOOL, monitoring.events.JUMP, None)
        monitoring.free_tool_id(TOOL)
        self.enabled = False
        self._registered_threshold = 0

    def on_jump(self, code: CodeType, src: int, dst: int) -> object:
        # Called from native code (runtime().jump_callback), so the caller's
        # frame is the program's. Exceptions are not caught here: internal
        # errors are caught where the JIT's own work is done (compile), and
        # anything else (a signal handler's exception, raised at an
        # eval-breaker check after a trace exits) is the program's, which
        # the native callback hands to the interpreter.
        return self._on_jump(code, src, dst, sys._getframe(1))

    def _on_jump(self, code: CodeType, src: int, dst: int, frame: FrameType) -> object:
        """Called by the native callback for a code it has no counters for, or
        a backedge that reached the threshold."""
        if dst > src:
            return sys.monitoring.DISABLE  # a forward jump: never a loop
        if id(code) not in self.counters:
            self.counters[id(code)] = bytearray(4 * (len(code.co_code) // 2 + 1))
            weakref.finalize(code, self._forget, id(code))
            if self.threshold > 1:
                self._set_count(id(code), src, 1)
                return None
        location = self.locations.get((id(code), src))
        if location is None:
            location = self.locations[(id(code), src)] = Location(id(code))
        if location.trace is None:
            if location.recordings >= MAX_RECORDINGS:
                return sys.monitoring.DISABLE  # given up: this backedge costs nothing now
            if not _alone(frame, code):
                self._set_count(id(code), src, 0)
                return None
            soon = self.compile(location, code, frame, src, dst)
            if location.trace is None:
                # After the loop ended mid-recording, retry at the next
                # backedge: a whole threshold later could be the same (last)
                # iteration again. Otherwise wait a whole threshold.
                self._set_count(id(code), src, self.threshold - 1 if soon else 0)
                return None
        if _alone(frame, code):
            self.enter(location, frame, src)
        return None

    # --- recording and running ----------------------------------------------

    def _forget(self, code_id: int) -> None:
        """The code object died: so did its locations (none had a trace,
        which would have kept it alive)."""
        self.counters.pop(code_id, None)
        for key in [key for key in self.locations if key[0] == code_id]:
            del self.locations[key]

    def compile(self, location: Location, code: CodeType, frame: FrameType, src: int, dst: int) -> bool:
        """Record, lower and emit a trace for the location. Without a trace
        afterwards, returns whether to retry at the next backedge."""
        # Imported at the first hot loop, not at start-up: a program with
        # no hot loop should not pay for them.
        from copyjit.backend.emitter import emit
        from copyjit.trace import frames
        from copyjit.trace.lower import lower
        from copyjit.trace.recorder import Abort, record

        start = time.perf_counter()
        try:
            recording = record(code, dst, src, frames.raw(frame))
            lap = time.perf_counter()
            self.stats.recording_seconds += lap - start
            counter = ctypes.addressof(ctypes.c_int64.from_buffer(location.iterations))
            lowered = lower(recording, counter)
            start, lap = lap, time.perf_counter()
            self.stats.optimizing_seconds += lap - start
            trace = emit(lowered.instructions, constants=(code, location.iterations, *lowered.constants))
            self.stats.emitting_seconds += time.perf_counter() - lap
        except Abort as abort:
            self.stats.aborts[abort.reason] += 1
            location.transient_aborts += not abort.final
            if abort.final or location.transient_aborts >= MAX_TRANSIENT_ABORTS:
                location.recordings = MAX_RECORDINGS
            return abort.soon
        except Exception as error:  # an internal error must not take the program down
            self.stats.aborts[f"internal error: {type(error).__name__}: {error}"] += 1
            location.recordings = MAX_RECORDINGS
            return False
        location.trace, location.lowered = trace, lowered
        location.recordings += 1
        location.early_exits.clear()
        location.entries = 0
        location.iterations[:] = bytes(8)
        self.stats.traces += 1
        return False

    def enter(self, location: Location, frame: FrameType, src: int) -> None:
        trace, lowered = location.trace, location.lowered  # another thread may discard them
        assert trace is not None and lowered is not None
        self.stats.native_entries += 1  # counted first: a signal may interrupt what follows
        status = trace(frame)
        self.stats.exits += 1
        location.entries += 1
        if location.entries == ENTRIES_BEFORE_JUDGING and self._too_short(location):
            self.discard(location, src)
            location.recordings = MAX_RECORDINGS
            self.stats.aborts["the loop runs too few iterations per entry"] += 1
            return
        if status == ENTRY_EXIT or not lowered.snapshots[status - 1].normal:
            location.early_exits[status] += 1
            if location.early_exits[status] >= EARLY_EXITS_BEFORE_RERECORD:
                self.discard(location, src)

    @staticmethod
    def _too_short(location: Location) -> bool:
        iterations = int.from_bytes(location.iterations, "little", signed=True)
        return iterations < MIN_ITERATIONS_PER_ENTRY * location.entries

    def _set_count(self, code_id: int, src: int, count: int) -> None:
        struct.pack_into("<I", self.counters[code_id], 4 * (src // 2), count)

    def discard(self, location: Location, src: int) -> None:
        if location.trace is not None:
            location.trace.free()
        location.trace = location.lowered = None
        self._set_count(location.code_id, src, 0)
        if location.recordings >= MAX_RECORDINGS:
            self.stats.aborts["the loop keeps leaving its trace early"] += 1


def _alone(frame: FrameType, code: CodeType) -> bool:
    """No tracer or other monitoring tool watches this code: native code
    would run past their events."""
    if sys.gettrace() is not None or frame.f_trace is not None:
        return False
    monitoring = sys.monitoring
    for tool in range(6):
        if tool != TOOL and monitoring.get_tool(tool) is not None and (
                monitoring.get_events(tool) or monitoring.get_local_events(tool, code)):
            return False
    return True
