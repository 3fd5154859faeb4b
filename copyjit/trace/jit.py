"""The JIT: sys.monitoring JUMP events find hot loops, which are recorded,
lowered, emitted, and from then on entered natively at their backedge.

The counting and the entering are native (copyjit_on_jump in runtime.c);
this module holds the policy, and is called only when a decision is due."""

from __future__ import annotations

import _signal  # builtin, loaded with the interpreter (signal would import enum)
import os
import sys
import time
from _struct import pack_into  # struct's own code, without the struct module
from _weakref import ref  # weakref.ref, without the weakref module (~1 ms of start-up)

from copyjit.backend.runtime import (
    EXIT,
    RECORD,
    RECORD_FIELDS,
    TOTALS,
    buffer_address,
    check_monitoring_layout,
    runtime,
    started,
)
from copyjit.native import status as native_status
from copyjit.trace import depth

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable, Sized
    from types import CodeType, FrameType
    from typing import Any

    from copyjit.backend.emitter import Trace
    from copyjit.trace.inner import Decoded, InnerLookup, InnerLoop
    from copyjit.trace.ir import Abort, InnerBody, Recording, Snapshot
    from copyjit.trace.lower import Lowered

TOOL = sys.monitoring.OPTIMIZER_ID
_OWN_FILES = __file__.rsplit("/trace/", 1)[0] + "/"  # copyjit's own source files
_compiler_aged = False  # _age_the_compiler ran (once a process)
_TOOL_NAME = "copyjit"  # the object use_tool_id keeps (the layout check looks for it)
_JUMP_EVENT = 7  # bit of sys.monitoring.events.JUMP
ENTRY_EXIT = 0  # the exit taken when the frame's locals do not fit the trace
# Recording, lowering and emitting a trace takes ~2 ms, about as long as tens
# of thousands of interpreted iterations: loops shorter than that are not
# worth it. (Measured with tools/kernels.py; 16 made big_ints 5x slower.)
DEFAULT_THRESHOLD = 1000
# A side exit taken this often is hot: it gets a bridge (the rest of the
# iteration from there, linked into the exit) or, if it cannot have one,
# the trace is re-recorded, a few times at most.
HOT_EXIT = 16
MAX_RECORDINGS = 4
# Bridges per loop trace, and how their exits are numbered (from BRIDGE_EXITS
# times the bridge's number): beyond the parent's, so native code does not
# count them as the parent's.
MAX_BRIDGES = 16
BRIDGE_EXITS = 100_000
# Recordings that failed for a passing reason (a value too big for 64 bits
# this time, the loop ending mid-recording) have a budget of their own.
MAX_TRANSIENT_ABORTS = 32
# Entering a trace and leaving it costs ~90 ns more than one interpreted
# iteration (the JUMP event's dispatch, the callback's lookup, unboxing and
# boxing the locals), a native iteration saves ~20 ns: a loop that averages
# fewer iterations than this per entry is no faster than the interpreter
# (measured: 8 to 10 break even). Judged after ENTRIES_BEFORE_JUDGING entries.
MIN_ITERATIONS_PER_ENTRY = 10
ENTRIES_BEFORE_JUDGING = 256
# Except for a loop nested in another: the enclosing loop's trace runs it
# without an entry's cost, so it is kept while that one may still be
# traced, for up to this many entries (the enclosing loop gets hot later).
MAX_ENTRIES_WAITING = 16 * ENTRIES_BEFORE_JUDGING
# A `for` loop over a list, tuple or range of fewer items than that (plus
# the one iteration before the first native entry) is short before it is
# compiled: it is given up after SHORT_SAMPLES hot backedges, a threshold
# apart, each finding its sequence that short (none from a loop nested in
# another of its code, which may run it without entries). A backedge found
# at random among the loop's iterations falls in a long sequence as often
# as long sequences make up its iterations, so two short ones say that
# most iterations run in short entries. (A range's iterator shows only the
# items left: _short_sequence then samples the next entry's second
# backedge.) Not below a threshold of
# ENTRIES_BEFORE_JUDGING, where every loop is meant to be traced (tests).
SHORT_SAMPLES = 2
# A recording that starts at a hot backedge and finds the loop ending (its
# last iteration was the one just run) is retried at the very next one.
# When that keeps happening, backedge after backedge, each entry runs one
# iteration: after this many in a row the loop is given up as short, not
# retried up to MAX_TRANSIENT_ABORTS times (same threshold rule as above).
LOOP_ENDED = "the loop ended while recording"
MAX_ENDED_IN_A_ROW = 4
# A trace dropped for exits taken early is recorded again, in the hope of a
# more common path; a recording the same as the one dropped (same ops, same
# exits) would leave there again, and is given up instead of compiled,
# unless the trace dropped ran this many iterations (a compile costs about
# what 100,000 iterations save; a trace that ran that long repays another).
REPAYS_RECORDING = 100_000
# A nested loop's recording of at most this many ops is run inline by the
# enclosing loop's trace (lower.py, _InlinedLoop). What inlining saves is
# fixed per outer iteration (boxing and unboxing the locals, the call),
# what it costs is compiling the nested loop again: n-body's 182-op pairs
# loop made the enclosing trace take 20 ms more to compile, for nothing
# measurable at run time; mandelbrot's escape loop has 21 ops.
MAX_INLINED_OPS = 100
# A call of a Python function that a trace does not inline goes through
# PyObject_Vectorcall into a new evaluation loop: ~160 instructions more
# than the interpreter's own call, which pushes the frame in place. A loop
# recorded with fewer ops than this per such call saves less than its calls
# lose, and is given up (DeltaBlue's `for constraint in plan:
# constraint.execute()`, 12 ops: 9% more instructions a run traced than
# not). Loops above it that gain: chaos's `play` (143 ops, 5 calls), go's
# `playout` (52 ops, 2 calls). Not below a threshold of ENTRIES_BEFORE_JUDGING
# (tests, where every loop is meant to be traced).
MIN_OPS_PER_CALL = 20
CALLS_COST_MORE = ("the loop's iterations are mostly calls of Python functions the trace cannot inline, "
                   "which cost more from a trace than from the interpreter")


def _mostly_calls(recording: Recording) -> bool:
    """Whether the recording has fewer than MIN_OPS_PER_CALL ops per call
    of a Python function it did not inline (the recorder notes each with
    why, record_inline.py)."""
    calls = sum(count for what, count in recording.inlining.items() if what.startswith("not inlined"))
    return len(recording.ops) < MIN_OPS_PER_CALL * calls


class _Counter(dict[str, int]):
    """collections.Counter's `counts[key] += 1`, without importing collections at start-up."""

    def __missing__(self, key: str) -> int:
        return 0


class Stats:
    """What the JIT did; `as_dict()` is what --stats-json and stats() give."""

    def __init__(self) -> None:
        self.traces = 0
        self.bridges = 0
        self.inlined_loops = 0  # nested loops that traces run inline (lower.py, _InlinedLoop)
        self.aborts = _Counter()
        self.calls = _Counter()  # calls in traces made: "inlined", or "not inlined: why"
        # Guards made to fail (COPYJIT_FAIL_GUARDS, faults.py), by kind, in
        # the traces and bridges made.
        self.guards_forced = _Counter()
        self.exits = 0
        self.native_entries = 0
        # The emergency reserve (copyjit.h), the process's: how often an exit
        # that could not box released it, and the native entries refused
        # (the interpreter ran the loop) until it could be mapped again.
        self.reserve_released = 0
        self.entries_refused = 0
        # Boxes exits took from the pool (copyjit.h) when even the reserve
        # was spent already.
        self.pool_taken = 0
        self.recording_seconds = 0.0
        self.optimizing_seconds = 0.0
        self.emitting_seconds = 0.0
        self.code_bytes = 0  # machine code emitted for traces and bridges (freed ones too)
        # time.perf_counter() when the first trace was installed: the program's
        # first native iteration follows at once (benchmarks' warm-up).
        self.first_trace_at: float | None = None
        # One per trace and per bridge made: from the moment its loop (or
        # exit) was found hot to its native code installed, whatever that
        # took (imports and the first read of the stencil table included).
        self.compile_seconds: list[float] = []
        # The part of each of those spent importing the JIT's own modules
        # (its recorder, optimizer, lowering and emitter) and reading its
        # stencil file: once a process, in its first traces; and all of it:
        # a process's cost, not a trace's.
        self.compile_import_seconds: list[float] = []
        self.import_seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        result = dict(vars(self))
        result["aborts"] = dict(self.aborts)
        result["calls"] = dict(self.calls)
        result["guards_forced"] = dict(self.guards_forced)
        result["compile_seconds"] = list(self.compile_seconds)
        result["compile_import_seconds"] = list(self.compile_import_seconds)
        result["compiler"] = native_status()  # its modules native (mypyc) or Python, and why
        return result


_FIELD_OFFSETS = {field: 8 * i for i, field in enumerate(RECORD_FIELDS)}


class Why:
    """Why a loop (or an exit's bridge) has no trace: the last reason, how
    many recordings ended for it, and where: the file, line, bytecode offset
    and instruction being recorded (None where no instruction was: the
    lowering ran out of spill slots, a judgement of the trace). Kept for
    `python -m copyjit explain`; made only when a recording fails."""

    __slots__ = ("count", "filename", "line", "offset", "opname", "reason")

    def __init__(self, reason: str, where: tuple[CodeType, int] | None = None) -> None:
        self.reason, self.count = reason, 1
        self.filename: str | None = None
        self.line: int | None = None
        self.offset: int | None = None
        self.opname: str | None = None
        if where is not None:
            code, offset = where
            self.filename, self.offset = code.co_filename, offset
            self.line = _line_of(code, offset)
            self.opname = _opname_at(code, offset)

    def again(self, reason: str, where: tuple[CodeType, int] | None) -> Why:
        """This, or the newer reason, counted."""
        same = reason == self.reason and (where is None or where[1] == self.offset)
        newer = self if same else Why(reason, where)
        newer.count = self.count + 1
        return newer


def _line_of(code: CodeType, offset: int) -> int | None:
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line
    return None


def _opname_at(code: CodeType, offset: int) -> str:
    """The instruction at `offset` (past its EXTENDED_ARG prefixes)."""
    import opcode  # loaded by the recorder already

    raw = code.co_code
    while offset + 2 < len(raw) and raw[offset] == opcode.EXTENDED_ARG:
        offset += 2
    return opcode.opname[raw[offset]]


def _why(previous: Why | None, reason: str, where: tuple[CodeType, int] | None) -> Why:
    return Why(reason, where) if previous is None else previous.again(reason, where)


def _raised_by_a_signal_handler(error: BaseException) -> bool:
    """Whether one of the program's signal handlers raised `error`: the
    interpreter runs handlers at eval-breaker checks of whatever Python code
    runs, the JIT's own included, and their exceptions are the program's
    (an alarm's timeout), not internal errors of the JIT's."""
    handlers = set()
    for signum in _signal.valid_signals():
        try:
            handler = _signal.getsignal(signum)
        except (ValueError, OSError):
            continue
        handler = getattr(handler, "__func__", handler)  # a bound method's function
        code = getattr(handler, "__code__", None)
        if code is not None:
            handlers.add(code)
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handlers:
            return True
        tb = tb.tb_next
    return False


class _SigintHeld:
    """Around the JIT's first import of its compiler (while `module` is not
    imported yet), in the main thread: a SIGINT then is held, and raised
    again once the import is done. Imports run Python code in weak reference
    callbacks (importlib's module locks), and a KeyboardInterrupt raised in
    one is printed as "Exception ignored" and lost: Ctrl-C at the first hot
    loop's import did not stop the program (2 in 200 tries)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.previous: object = None
        self.held = False

    def __enter__(self) -> None:
        if self.module in sys.modules:
            return
        try:
            previous = _signal.getsignal(_signal.SIGINT)
            if callable(previous):
                _signal.signal(_signal.SIGINT, self.hold)
                self.previous = previous
        except ValueError:  # not the main thread, which alone runs signal handlers
            pass

    def hold(self, signum: int, frame: object) -> None:
        self.held = True

    def __exit__(self, *exception: object) -> None:
        if self.previous is None:
            return
        _signal.signal(_signal.SIGINT, self.previous)
        if self.held:
            _signal.raise_signal(_signal.SIGINT)  # the program's handler, at the next check


class Location:
    """A backedge: (code, src). Does not keep the code alive (its trace does)."""

    def __init__(self, code_id: int, totals: int) -> None:
        self.code_id = code_id
        self.recordings = 0  # traces made, or MAX_RECORDINGS once given up
        self.transient_aborts = 0
        self.trace: Trace | None = None
        self.lowered: Lowered | None = None
        self.bridges: list[Trace] = []
        self.bridge_lowered: list[Lowered] = []  # bridge k's exits are numbered from BRIDGE_EXITS * (k + 1)
        # For `python -m copyjit explain` (references only, made at compile
        # time): the trace's recording before the optimizer; per bridge, its
        # parent's exit number, its recording and its entry counter (the
        # bridge's _COUNT adds to it); why the last recording, or a bridge's
        # per exit number, failed; and what became of traces dropped.
        self.recorded: Recording | None = None
        self.bridge_exits: list[int] = []
        self.bridge_recorded: list[Recording] = []
        self.bridge_entries: list[bytearray] = []
        self.why: Why | None = None
        self.bridge_why: dict[int, Why] = {}
        self.dropped: list[str] = []
        # While COPYJIT_LOG shows entries: the record's judge_at is borrowed
        # to have the native callback call the handler at every entry
        # (JIT.track), and the real one is kept here.
        self.log_judge_at = 0
        # Whether this loop's trace may run the loops nested in it inline
        # (given up when an exit of an inlined copy gets hot: _on_hot_exit).
        self.inline = True
        self.head: int | None = None  # the loop's first instruction (its backedge's target)
        # runtime.c's location_record, through which copyjit_on_jump enters
        # the trace and counts: it never moves (the trace's _COUNT adds to
        # its first field), and is written whole or one field at a time, so
        # that a thread switch never shows native code a half-made record.
        self.record = bytearray(RECORD.size)
        self.address = buffer_address(self.record)
        self.exits = bytearray(EXIT.size)  # the trace's exit_counters, one per exit number
        # (entries, iterations) when a short trace was last kept because the
        # loop around it had a trace: judged again over the entries after.
        self.judged = (0, 0)
        self.short_samples = 0  # hot backedges that found the loop's sequence short
        self.probing = False  # the next hot backedge is an entry's second (_short_sequence)
        self.ended_in_a_row = 0  # recordings in a row that found the loop ending (LOOP_ENDED)
        # The shape (_shape) of the recording of the trace last dropped for
        # exits taken early, while that is the last thing that happened.
        self.dropped_shape: tuple[object, ...] | None = None
        # Local slots this loop's recordings keep as objects (Abort.keep_object).
        self.objects: frozenset[int] = frozenset()
        # Number locals its bridges box: its trace keeps their objects too
        # (lower.py, `shadow`; compile_bridge).
        self.flagged: frozenset[int] = frozenset()
        self["totals"] = totals

    def __getitem__(self, field: str) -> int:
        return int.from_bytes(self.record[_FIELD_OFFSETS[field]:][:8], "little", signed=True)

    def __setitem__(self, field: str, value: int) -> None:
        pack_into("<q", self.record, _FIELD_OFFSETS[field], value)

    def install(self, trace: Trace, lowered: Lowered, judge_after: int) -> None:
        """Make `trace` the one copyjit_on_jump enters, with fresh counters."""
        # Exit 0 (ENTRY_EXIT) and the exits that do not leave the loop tell
        # that the trace no longer fits it: judged after a few; others never.
        normal = [False] + [snapshot.normal for snapshot in lowered.snapshots]
        self.exits = bytearray(b"".join(EXIT.pack(0, 0 if n else HOT_EXIT)
                                        for n in normal))
        values = {"iterations": 0, "cell": trace.cell_address, "exits": buffer_address(self.exits),
                  "exit_count": len(normal), "totals": self["totals"], "entries": 0,
                  "judge_at": judge_after, "due": 0, "enclosing": self["enclosing"]}
        RECORD.pack_into(self.record, 0, *[values[field] for field in RECORD_FIELDS])
        self.trace, self.lowered = trace, lowered
        self.judged = (0, 0)
        self.ended_in_a_row = 0  # "in a row": since the last recording that made a trace

    def early_exit_due(self) -> bool:
        return any(limit and taken >= limit for taken, limit in EXIT.iter_unpack(self.exits))


class JIT:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD, opt_off: frozenset[str] | None = None,
                 fail_guards: frozenset[str] | None = None) -> None:
        self.threshold = max(1, threshold)
        # The optimizer passes switched off (COPYJIT_OPT, --no-opt).
        self.opt_off = _opt_off_from_environment() if opt_off is None else opt_off
        # The guard kinds every trace fails (COPYJIT_FAIL_GUARDS; faults.py).
        self.fail_guards = _fail_guards_from_environment() if fail_guards is None else fail_guards
        self.locations: dict[tuple[int, int], Location] = {}
        self._stats = Stats()
        self.enabled = False
        self.watched: list[CodeType] = []  # codes with local events, to clear
        # The native callback's tables: id(code) -> one 64-bit slot per code
        # unit (runtime.c: a cold backedge's count << 1, or its location
        # record's address | 1), dropped when the code object dies.
        self.counters: dict[int, bytearray] = {}
        self._code_refs: dict[int, ref[CodeType]] = {}  # drop a dead code's counters
        # runtime.c's entry_totals, counted natively over all locations.
        self.totals = bytearray(TOTALS.size)
        self._registered_threshold = 0
        self._layout_checked = False
        # Off unless asked for (None): looked at only when a trace is compiled,
        # dropped or given up, never per entry. `log`: COPYJIT_LOG's events
        # (copyjit/log.py); `perf_map`: COPYJIT_PERF_MAP's file (copyjit/perfmap.py);
        # `codes`: every code seen, kept alive for `explain` (its module-level
        # loops' codes would die with the module before the report).
        self.log: Any = _log_from_environment()
        self.perf_map: Any = _perf_map_from_environment()
        self.codes: list[CodeType] | None = None

    @property
    def stats(self) -> Stats:
        self._stats.native_entries, self._stats.exits = TOTALS.unpack(self.totals)
        rt = started()
        if rt is not None:
            _, self._stats.reserve_released, self._stats.entries_refused = rt.reserve_counts()
            self._stats.pool_taken = rt.pool_counts()["taken"]
        return self._stats

    # --- sys.monitoring -----------------------------------------------------

    def enable(self, code: CodeType | None = None) -> None:
        """Watch all code, or only `code`."""
        monitoring = sys.monitoring
        if not self.enabled:
            if monitoring.get_tool(TOOL) is not None:
                raise RuntimeError(f"copyjit: sys.monitoring tool {TOOL} is taken by "
                                   f"{monitoring.get_tool(TOOL)!r}")
            monitoring.use_tool_id(TOOL, _TOOL_NAME)
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
        depth.prepare()
        if not self._layout_checked:
            check_monitoring_layout(runtime().layout, TOOL, _TOOL_NAME, _JUMP_EVENT, code)
            self._layout_checked = True

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
        if self.log is not None:  # the exits taken since the last entry
            self.log.finish(list({id(location): location for location in self.locations.values()}.values()))
        self.enabled = False
        self._registered_threshold = 0

    def on_jump(self, code: CodeType, src: int, dst: int, hot_exit: int = -1) -> object:
        # Called from native code (runtime().jump_callback), so the caller's
        # frame is the program's. An internal error is caught (here, or in
        # compile()) and gives the backedge up; a signal handler's
        # exception, raised at an eval-breaker check in this Python code, is
        # the program's, which the native callback hands to the interpreter.
        # With room of its own above the program's recursion budget, made
        # before calling any Python function: the loop may be deep in the
        # program's recursion (depth.py). The native callback lent this
        # frame its level.
        budget = None if depth.offset is None else \
            depth.counter_type.from_address(depth.thread_state() + depth.offset)
        if budget is not None:
            budget.value += depth.HEADROOM - depth.LENT
            depth.handlers += 1
        try:
            if hot_exit >= 0:
                self._on_hot_exit(code, src, dst, hot_exit, sys._getframe(1))
                return None
            return self._on_jump(code, src, dst, sys._getframe(1))
        except Exception as error:
            if _raised_by_a_signal_handler(error):
                raise
            # A bug of the JIT's outside compile() (counting, judging,
            # looking at the frame): this backedge is given up, and the
            # program goes on as without the JIT.
            return self._internal_error(code, src, error, hot_exit)
        finally:
            if budget is not None:
                budget.value -= depth.HEADROOM - depth.LENT
                depth.handlers -= 1

    def _internal_error(self, code: CodeType, src: int, error: Exception, hot_exit: int) -> object:
        """Count an internal error raised in the JUMP callback outside the
        compiles (which catch their own), and give the backedge up: its
        trace, if it has one, is no longer entered, nor the backedge counted."""
        where = "at a hot exit" if hot_exit >= 0 else "at a backedge"
        reason = f"internal error {where}: {type(error).__name__}: {error}"
        self.stats.aborts[reason] += 1
        location = self.locations.get((id(code), src))
        if location is not None:
            location.why = _why(location.why, reason, None)
            location.recordings = MAX_RECORDINGS
            if location.trace is not None and id(code) in self.counters:
                self._set_slot(id(code), src, 0)  # the native callback no longer enters it
        return None if hot_exit >= 0 else sys.monitoring.DISABLE

    def _on_jump(self, code: CodeType, src: int, dst: int, frame: FrameType) -> object:
        """Called by the native callback for a code it has no counters for, a
        backedge that reached the threshold, or a trace due to be judged.
        When this returns None, the native callback enters the backedge's
        trace, if it has one."""
        if dst > src or code.co_filename.startswith(_OWN_FILES):
            # A forward jump is never a loop; and the JIT never compiles
            # itself (its own code runs inside the JUMP callback, or from
            # weakref callbacks at any time, even while the interpreter
            # exits and modules like time are already torn down).
            return sys.monitoring.DISABLE
        found, imported = time.perf_counter(), self.stats.import_seconds
        if id(code) not in self.counters:
            self.counters[id(code)] = bytearray(8 * (len(code.co_code) // 2 + 1))
            # A plain weak reference, not weakref.finalize: finalize's
            # registry is walked at exit, and atexit code has loops too
            # (registering one then made it fail, on stderr).
            self._code_refs[id(code)] = ref(code, self._forgetter(id(code)))
            if self.codes is not None:
                self.codes.append(code)
            if self.threshold > 1:
                self._set_count(id(code), src, 1)
                return None
        location = self.locations.get((id(code), src))
        if location is None:
            # Another backedge of a loop with a trace (`continue`, or both
            # arms of an `if` at the end of its body) enters that trace: one
            # trace per loop, whose exits are counted, and bridged, whichever
            # backedge entered it (and which an enclosing loop's trace runs).
            location = self._traced_loop(code, dst) or Location(id(code), buffer_address(self.totals))
            location.head = dst
            location["enclosing"] = _enclosing_unit(code, src, dst)
            self.locations[(id(code), src)] = location
        if location.trace is not None:
            self.judge(location, src)
            if location.trace is not None:
                self._set_slot(id(code), src, location.address | 1)
                if self.log is not None and self.log.entries:
                    self.log.entering(location)
            return None
        if location.recordings >= MAX_RECORDINGS:
            return sys.monitoring.DISABLE  # given up: this backedge costs nothing now
        if not _alone(frame, code):
            self._set_count(id(code), src, 0)
            return None
        if self.threshold >= ENTRIES_BEFORE_JUDGING and self._short_sequence(location, code, frame, src, dst):
            return sys.monitoring.DISABLE if location.recordings >= MAX_RECORDINGS else None
        if self.threshold >= ENTRIES_BEFORE_JUDGING and _items_left(_iterator_at_head(code, frame, dst)) == 0:
            # The iteration just run was the last: a recording would find the
            # loop ending at its head, after setting itself up (~0.2 ms, twice
            # in each n-body run, whose 10 pairs and 5 bodies divide the
            # threshold). Counted as that abort, without recording.
            soon = self._loop_ended(location, code, dst)
        else:
            soon = self.compile(location, code, frame, src, dst)
        if location.trace is None:
            # After the loop ended mid-recording, retry at the next
            # backedge: a whole threshold later could be the same (last)
            # iteration again. Otherwise wait a whole threshold.
            self._set_count(id(code), src, self.threshold - 1 if soon else 0)
        else:
            self._set_slot(id(code), src, location.address | 1)  # native code enters it from now on
            if self.log is not None and self.log.entries:
                self.track(location)
                self.log.entering(location)
            now = time.perf_counter()
            self.stats.compile_seconds.append(now - found)
            if self.stats.first_trace_at is None:
                self.stats.first_trace_at = now
            self.stats.compile_import_seconds.append(self.stats.import_seconds - imported)
        return None

    def _short_sequence(self, location: Location, code: CodeType, frame: FrameType, src: int,
                        dst: int) -> bool:
        """Whether the loop is a `for` over a sequence too short to be worth
        entering natively (SHORT_SAMPLES); if so, it waits another threshold,
        or is given up."""
        # The compiler's first imports (compile() makes the rest): timed as
        # such, so that --stats tells them from the time to native code.
        start = time.perf_counter()
        with _SigintHeld("copyjit.trace.frames"):
            import opcode  # noqa: F401  (_opname_at's)

            from copyjit.trace import bytecode, frames  # noqa: F401  (bytecode: _enclosing_loop's)
        self.stats.import_seconds += time.perf_counter() - start
        sample = _sequence_length(_iterator_at_head(code, frame, dst))
        if sample is None:
            return False
        length, whole = sample
        if location.probing:  # an entry's second backedge: two items taken, `length` left
            location.probing, length, whole = False, length + 2, True
        if length - 1 >= MIN_ITERATIONS_PER_ENTRY or self._enclosing_loop(code, src, dst) != "none":
            return False
        if not whole:
            # What is left of a range: this backedge may be among the last
            # of a long entry, and a threshold later the same one again (a
            # loop of 1,000 iterations, a threshold of 1,000). The second
            # backedge of the next entry, `length` + 2 backedges from here,
            # tells the range's length.
            location.probing = True
            self._set_count(id(code), src, self.threshold - (length + 2))
            return True
        location.short_samples += 1
        if location.short_samples < SHORT_SAMPLES:
            self._set_count(id(code), src, 0)  # another sample, a threshold later
            return True
        if self.log is not None:
            self.log.name(code, location, dst)
        self._give_up(location, "the loop runs too few iterations per entry")
        return True

    def _loop_ended(self, location: Location, code: CodeType, dst: int) -> bool:
        """The abort a recording started here would have ended in, counted
        as if it had; returns its `soon`."""
        from copyjit.trace.ir import Abort

        if self.log is not None:
            self.log.name(code, location, dst)
        abort = Abort(LOOP_ENDED, final=False, soon=True)
        abort.where = (code, dst)
        return self._aborted(location, code, abort)

    def _give_up(self, location: Location, reason: str) -> None:
        """No trace for this loop, for good: its backedge is disabled next."""
        location.recordings = MAX_RECORDINGS
        location.why = _why(location.why, reason, None)
        self.stats.aborts[reason] += 1
        if self.log is not None:
            self.log.blacklisted(location, reason)

    def _traced_loop(self, code: CodeType, dst: int) -> Location | None:
        for (code_id, _), location in self.locations.items():
            lowered = location.lowered
            if code_id == id(code) and lowered is not None and lowered.lowering.rec.dst == dst:
                return location
        return None

    def _on_hot_exit(self, code: CodeType, src: int, dst: int, number: int, frame: FrameType) -> None:
        """Exit `number` of the location's trace has just become hot; the
        frame is as that exit left it. A side exit gets a bridge: the rest
        of the iteration from there, recorded now, linked into the exit."""
        found = time.perf_counter()
        location = self.locations.get((id(code), src))
        if location is None or location.trace is None or location.lowered is None:
            return None
        location["due"] = 0
        if number in location.lowered.inlined_exits:
            # Inside a nested loop this trace runs inline: no bridge from
            # there (the nested loop's own trace gets those). Re-recorded
            # without inlining, the trace calls that trace instead.
            location.inline = False
            self.discard(location, src, f"exit {number}, inside a nested loop run inline, got hot: "
                                        "recorded again calling that loop's trace")
            return None
        if number != ENTRY_EXIT and len(location.bridges) < MAX_BRIDGES and _alone(frame, code) \
                and self.compile_bridge(location, code, frame, src, dst, number):
            pack_into("<q", location.exits, EXIT.size * number + 8, 0)  # bridged: no limit
            self.stats.compile_seconds.append(time.perf_counter() - found)
            self.stats.compile_import_seconds.append(0.0)  # a trace made the imports
            return None
        if location.lowered is None:  # (dropped by compile_bridge, to be recorded again)
            return None
        if number != ENTRY_EXIT and location.lowered.snapshots[number - 1].on_frame is not None:
            # Where a nested loop's trace left its loop by another exit than
            # the recorded one: without a bridge, the trace leaves there, as
            # it would have had it not had this exit. Not a reason to discard it.
            pack_into("<q", location.exits, EXIT.size * number + 8, 0)
            return None
        self.judge(location, src)
        return None

    # --- recording and running ----------------------------------------------

    def _forgetter(self, code_id: int) -> Callable[[object], None]:
        # Held here, not read from this module's globals: at interpreter
        # exit, a code may die after those were cleared (to None).
        finalizing = sys.is_finalizing

        def forget(_: object) -> None:
            if finalizing():
                return  # the process's memory goes with it, and this module may be gone
            # A code may die at any depth: room first, as in on_jump.
            budget = None if depth.offset is None else \
                depth.counter_type.from_address(depth.thread_state() + depth.offset)
            if budget is not None:
                budget.value += depth.HEADROOM
                depth.handlers += 1
            try:
                self._forget(code_id)
            finally:
                if budget is not None:
                    budget.value -= depth.HEADROOM
                    depth.handlers -= 1

        return forget

    def _forget(self, code_id: int) -> None:
        """The code object died: so did its locations, and their traces'
        code goes back to the arena (no frame of it can run them now)."""
        self.counters.pop(code_id, None)
        self._code_refs.pop(code_id, None)
        # list() runs no bytecode: this JIT's own loops must not call it back.
        for key in list(self.locations):
            if key[0] == code_id:
                location = self.locations.pop(key)
                if location.trace is not None:
                    self.discard(location, key[1], forget=True)

    def compile(self, location: Location, code: CodeType, frame: FrameType, src: int, dst: int) -> bool:
        """Record, lower and emit a trace for the location. Without a trace
        afterwards, returns whether to retry at the next backedge."""
        # Imported at the first hot loop, not at start-up: a program with
        # no hot loop should not pay for them.
        start = time.perf_counter()
        with _SigintHeld("copyjit.trace.recorder"):
            from copyjit.trace import frames
            from copyjit.trace.ir import NO_MEMORY
            from copyjit.trace.recorder import Abort, record

        self.stats.import_seconds += time.perf_counter() - start
        if self.log is not None:
            self.log.name(code, location, dst)
        start = time.perf_counter()
        try:
            inner = self._inner_lookup(code, location.inline)
            recording = record(code, dst, src, frames.raw(frame), inner=inner, objects=location.objects)
            self.stats.recording_seconds += time.perf_counter() - start
            dropped, location.dropped_shape = location.dropped_shape, None
            if dropped is not None and _shape(recording) == dropped:
                self._give_up(location, "recorded the trace just dropped for exits taken early again")
                return False
            if self.threshold >= ENTRIES_BEFORE_JUDGING and _mostly_calls(recording):
                self._give_up(location, CALLS_COST_MORE)
                return False
            # Imported once a recording succeeds: a program whose loops all
            # abort does not pay for the uop table, the emitter and the
            # lowering (~3 ms).
            lap = time.perf_counter()
            with _SigintHeld("copyjit.trace.lower"):
                from copyjit.backend.emitter import emit, load_stencils
                from copyjit.opt import optimize
                from copyjit.trace.lower import lower

                load_stencils()  # the compiler's code, as its modules are: once a process

            _age_the_compiler()
            self.stats.import_seconds += time.perf_counter() - lap
            lap = time.perf_counter()
            counter = location.address + _FIELD_OFFSETS["iterations"]
            log = self.log
            if log is not None:
                log.recorded(code, location, recording)
            optimized = optimize(recording, self.opt_off, report=None if log is None else log.pass_done)
            if log is not None:
                log.optimized(location, optimized)
            lowered = lower(optimized, counter, self.fail_guards, location.flagged)
            self._count_forced(lowered)
            runtime().hold_for_exits(lowered.lowering.boxes_at_exits())
            for what, count in recording.inlining.items():
                self.stats.calls[what] += count
            start, lap = lap, time.perf_counter()
            self.stats.optimizing_seconds += lap - start
            # (Not the code: a trace must not keep its code alive, see _forget.)
            trace = emit(lowered.instructions, constants=(location.record, *lowered.constants))
            self.stats.emitting_seconds += time.perf_counter() - lap
            if log is not None:
                log.emitted(code, location, trace, None)
            if self.perf_map is not None:
                self.perf_map.add(trace, code, dst, None)
            self.stats.code_bytes += trace.size
        except Abort as abort:
            return self._aborted(location, code, abort)
        except MemoryError:  # the program's memory is exhausted, not a bug of the JIT's: try again later
            return self._aborted(location, code, Abort(NO_MEMORY, final=False))
        except Exception as error:  # an internal error must not take the program down
            if _raised_by_a_signal_handler(error):
                raise
            reason = f"internal error: {type(error).__name__}: {error}"
            self.stats.aborts[reason] += 1
            location.why = _why(location.why, reason, None)
            location.recordings = MAX_RECORDINGS
            if self.log is not None:
                self.log.blacklisted(location, reason)
            return False
        location.recorded = recording
        location.install(trace, lowered, ENTRIES_BEFORE_JUDGING)
        location.recordings += 1
        self.stats.traces += 1
        self.stats.inlined_loops += lowered.lowering.inlined_loops
        return False

    def _aborted(self, location: Location, code: CodeType, abort: Abort) -> bool:
        """Count a recording or lowering that stopped; give the location up
        if the abort is final or it has had too many. Returns abort.soon."""
        self.stats.aborts[abort.reason] += 1
        if abort.keep_object is not None:
            location.objects |= {abort.keep_object}
        location.why = _why(location.why, abort.reason, abort.where)
        if self.log is not None:
            self.log.aborted(code, location, abort)
        location.transient_aborts += not abort.final
        location.ended_in_a_row = location.ended_in_a_row + 1 if abort.reason == LOOP_ENDED else 0
        if location.ended_in_a_row >= MAX_ENDED_IN_A_ROW and self.threshold >= ENTRIES_BEFORE_JUDGING:
            self._give_up(location, "the loop runs too few iterations per entry")
            return False
        if abort.final or location.transient_aborts >= MAX_TRANSIENT_ABORTS:
            location.recordings = MAX_RECORDINGS
            if self.log is not None:
                self.log.blacklisted(location, abort.reason)
        return abort.soon

    def compile_bridge(self, location: Location, code: CodeType, frame: FrameType, src: int, dst: int,
                       number: int) -> bool:
        """Record, lower, emit and link a bridge for exit `number`."""
        from copyjit.backend.emitter import emit
        from copyjit.opt import optimize
        from copyjit.trace import frames
        from copyjit.trace.ir import NO_MEMORY
        from copyjit.trace.lower import lower_bridge
        from copyjit.trace.record_base import exit_holders
        from copyjit.trace.recorder import Abort, BridgeStart, record

        parent, lowered = location.trace, location.lowered
        assert parent is not None and lowered is not None
        snapshot = lowered.snapshots[number - 1]
        kinds = tuple(lowered.lowering.rec.ops[value].kind for value in snapshot.stack)
        start = time.perf_counter()
        try:
            stored = frozenset(lowered.lowering.stored)
            start_at = BridgeStart(snapshot.offset, kinds, snapshot.on_frame, stored,
                                   exit_holders(lowered.lowering.rec, snapshot, stored))
            # (A bridge calls the nested loops it runs into: the lowering
            # inlines none in bridges.)
            # The locals the loop keeps as objects stay objects in the bridge:
            # one it unboxed would be boxed anew at its exits (`x is
            # rows[k][0]` false), or passed on as a new float (log.append(x)).
            kept = {slot for slot, kind in lowered.lowering.rec.slots.items() if kind == "o"}
            objects = location.objects | kept
            recording = record(code, dst, src, frames.raw(frame), start_at, self._inner_lookup(code, False),
                               frozenset(objects))
            lap = time.perf_counter()
            self.stats.recording_seconds += lap - start
            first_exit = BRIDGE_EXITS * (len(location.bridges) + 1)
            loop_address = parent.address + parent.offsets[lowered.loop_index]
            log = self.log
            if log is not None:
                log.recorded(code, location, recording, number)
            optimized = optimize(self._known_start(recording, lowered, number), self.opt_off, loop=False,
                                 report=None if log is None else log.pass_done)
            wanted = lowered.lowering.wanted_flags(optimized)
            if wanted and location.recordings < MAX_RECORDINGS:
                # Its boxes of those would be new objects, not the locals'
                # (`primes.append(k)` on a side exit: `primes[-1] is k`):
                # recorded again, keeping them, when it is hot again (not
                # at the next backedge: that one ends the bridge's path,
                # and recorded from there lists.py's loop took the primes'
                # path as its own, and a bridge at every other number).
                location.flagged |= wanted
                self.discard(location, src, "a bridge keeps a number local the trace keeps no object of: "
                                            "recorded again keeping it")
                return False
            if log is not None:
                log.optimized(location, optimized, number)
            entries = bytearray(8)
            bridge = lower_bridge(optimized, lowered, number, first_exit, loop_address,
                                  buffer_address(entries), self.fail_guards)
            self._count_forced(bridge)
            runtime().hold_for_exits(bridge.lowering.boxes_at_exits())
            for what, count in recording.inlining.items():
                self.stats.calls[what] += count
            start, lap = lap, time.perf_counter()
            self.stats.optimizing_seconds += lap - start
            counters = (entries, bridge.lowering.exit_counts)  # written by its code: live as long
            trace = emit(bridge.instructions, constants=(*bridge.constants, *counters))
            self.stats.emitting_seconds += time.perf_counter() - lap
            if log is not None:
                log.emitted(code, location, trace, number)
            if self.perf_map is not None:
                self.perf_map.add(trace, code, dst, number)
            self.stats.code_bytes += trace.size
        except (Abort, MemoryError) as stop:  # (memory exhausted: not a bug of the JIT's)
            abort = stop if isinstance(stop, Abort) else Abort(NO_MEMORY, final=False)
            if abort.keep_object is not None:  # for the parent's next recording
                location.objects |= {abort.keep_object}
            self.stats.aborts[f"bridge: {abort.reason}"] += 1
            if self.log is not None:
                self.log.aborted(code, location, abort, number)
            location.bridge_why[number] = _why(location.bridge_why.get(number), abort.reason, abort.where)
            return False
        except Exception as error:  # an internal error must not take the program down
            if _raised_by_a_signal_handler(error):
                raise
            reason = f"internal error in a bridge: {type(error).__name__}: {error}"
            self.stats.aborts[reason] += 1
            location.bridge_why[number] = _why(location.bridge_why.get(number), reason, None)
            return False
        location.bridges.append(trace)
        location.bridge_lowered.append(bridge)
        location.bridge_exits.append(number)
        location.bridge_recorded.append(recording)
        location.bridge_entries.append(entries)
        # Where the exit's table goes on to it (after its moves), and where
        # its guard goes directly (lower.py's direct_start).
        pack_into("<Q", lowered.links, 8 * number, trace.address + trace.offsets[bridge.entry_index])
        if bridge.entry_index:
            pack_into("<Q", lowered.links, 8 * (len(lowered.links) // 16 + number), trace.address)
        self.stats.bridges += 1
        return True

    def _known_start(self, recording: Recording, lowered: Lowered, number: int) -> Recording:
        """The bridge for exit `number` without a first guard that exit's
        own guard decided (opt/bridge.py): when no other guard shares the
        exit, guards are not made to fail, and the guards pass is on (whose
        work this is: --no-opt guards switches it off too)."""
        from copyjit.trace.faults import BRANCH

        snapshot = lowered.snapshots[number - 1]
        guard = next((op for op in lowered.lowering.rec.ops if op.snapshot is snapshot), None)
        if guard is None or number in lowered.lowering.sites or BRANCH in self.fail_guards \
                or "guards" in self.opt_off:
            return recording
        from copyjit.opt.bridge import known_first_branch

        return known_first_branch(recording, guard, snapshot.stack)

    def _count_forced(self, lowered: Lowered) -> None:
        for kind, count in lowered.forced.items():
            self.stats.guards_forced[kind] += count

    def _inner_lookup(self, code: CodeType, inline: bool) -> InnerLookup:
        """Finds the trace of a loop nested in the one being recorded
        (`inline`: which that one's trace may run inline)."""
        def find(head: int) -> InnerLoop | None:
            given_up = False
            for (code_id, _), location in self.locations.items():
                lowered = location.lowered
                if code_id == id(code) and location.trace is not None and lowered is not None \
                        and lowered.lowering.rec.dst == head:
                    return _InnerTrace(location, inline)
                given_up |= code_id == id(code) and location.head == head and location.trace is None \
                    and location.recordings >= MAX_RECORDINGS
            if given_up:
                # It never gets a trace: neither can this loop, which runs it
                # by its trace (not a passing reason, to be retried 32 times).
                from copyjit.trace.ir import Abort

                raise Abort("an inner loop that stays in the interpreter")
            return None

        return find

    def judge(self, location: Location, src: int) -> None:
        """The native counters of the location's trace asked for a decision:
        it runs too few iterations per entry, or keeps leaving early."""
        location["due"] = 0
        tracking = self.log is not None and self.log.entries
        if tracking:
            location["judge_at"] = location.log_judge_at
        judge_at = location["judge_at"]
        if judge_at and location["entries"] >= judge_at:
            location["judge_at"] = 0  # judged once per trace, unless said below
            entries, iterations = location["entries"], location["iterations"]
            since_entries, since_iterations = entries - location.judged[0], iterations - location.judged[1]
            short = since_iterations < MIN_ITERATIONS_PER_ENTRY * since_entries
            outer = self._enclosing(location, src) if short else "none"
            if outer == "pending" and entries < MAX_ENTRIES_WAITING:
                location["judge_at"] = entries + ENTRIES_BEFORE_JUDGING  # judged again later
            elif outer == "traced":
                # The enclosing loop's trace runs this one without entries'
                # cost (they are not counted then). Should that trace go
                # (discarded when it keeps leaving early), entries come back:
                # judged again over those (fannkuch's two-iteration swap
                # loop was otherwise entered 120,000 times a call).
                location.judged = (entries, iterations)
                location["judge_at"] = entries + ENTRIES_BEFORE_JUDGING
            elif short:
                reason = "the loop runs too few iterations per entry"
                self.discard(location, src, f"{reason} ({since_iterations} in {since_entries})")
                location.recordings = MAX_RECORDINGS
                location.why = _why(location.why, reason, None)
                self.stats.aborts[reason] += 1
                if self.log is not None:
                    self.log.blacklisted(location, reason)
                return
        if location.early_exit_due():
            hot = [number for number, (taken, limit) in enumerate(EXIT.iter_unpack(location.exits))
                   if limit and taken >= limit]
            names = ", ".join("0 (a local of another type at entry)" if number == ENTRY_EXIT else str(number)
                              for number in hot)
            if location.recorded is not None and location["iterations"] < REPAYS_RECORDING:
                location.dropped_shape = _shape(location.recorded)
            self.discard(location, src, f"exit {names} taken {HOT_EXIT} times without a bridge: "
                                        "recorded again")
        if tracking and location.trace is not None:
            self.track(location)

    def track(self, location: Location) -> None:
        """Have the native callback call the handler before the next entry
        (COPYJIT_LOG's entered and exited): the next exit reaches judge_at,
        which marks the record due. judge() puts the real one back first."""
        location.log_judge_at = location["judge_at"]
        location["judge_at"] = location["entries"] + 1

    def _enclosing(self, location: Location, src: int) -> str:
        """Whether a loop around this one in its code has a trace ("traced"),
        may still get one ("pending"), or there is none that can ("none")."""
        lowered = location.lowered
        assert lowered is not None
        return self._enclosing_loop(lowered.lowering.rec.code, src, lowered.lowering.rec.dst)

    def _enclosing_loop(self, code: CodeType, src: int, dst: int) -> str:
        """_enclosing, for the loop from `dst` to its backedge at `src`."""
        state = "none"
        for ins in _backedges_around(code, src, dst):
            outer = self.locations.get((id(code), ins.offset))
            if outer is not None and outer.trace is not None:
                return "traced"
            if outer is None or outer.recordings < MAX_RECORDINGS:
                state = "pending"
        return state

    def _set_count(self, code_id: int, src: int, count: int) -> None:
        self._set_slot(code_id, src, count << 1)

    def _set_slot(self, code_id: int, src: int, value: int) -> None:
        pack_into("<Q", self.counters[code_id], 8 * (src // 2), value)

    def discard(self, location: Location, src: int, reason: str = "discarded", forget: bool = False) -> None:
        # Native code stops entering first: the slot, then the record
        # (`forget`: the code died, its slots with it).
        if not forget:
            self._set_count(location.code_id, src, 0)
        location["cell"] = 0
        if location.trace is not None:
            # Bridges run inside their parent's activations: their code is
            # released with the parent's, once none is running.
            for bridge in location.bridges:
                bridge.free_with(location.trace)
            location.bridges.clear()
            location.bridge_lowered.clear()
            location.bridge_exits.clear()
            location.bridge_recorded.clear()
            location.bridge_entries.clear()
            location.trace.free()
            location.dropped.append(reason)
            if self.log is not None:
                self.log.invalidated(location, reason)
        location.trace = location.lowered = location.recorded = None
        if location.recordings >= MAX_RECORDINGS and not forget:
            reason = "the loop keeps leaving its trace early"
            self.stats.aborts[reason] += 1
            location.why = _why(location.why, reason, None)
            if self.log is not None:
                self.log.blacklisted(location, reason)


class _InnerTrace:
    """A nested loop's trace, as the recorder of the loop around it sees it."""

    def __init__(self, location: Location, inline: bool = True) -> None:
        trace, lowered = location.trace, location.lowered
        assert trace is not None and lowered is not None
        self.trace, self.snapshots, self.lowered = trace, lowered.snapshots, lowered
        self.inline = inline  # may the enclosing loop's trace run this loop inline?
        self.bridges = list(location.bridge_lowered)
        self.record, self.cell = location.address, trace.cell_address
        self.keep: object = (location.record, trace)  # read by the outer trace's _CALL_TRACE

    def run(self, raw_frame: int) -> int:
        return self.trace(raw_frame)

    def leaving_exits(self) -> list[tuple[int, Snapshot, tuple[str, ...]]]:
        """The trace's own exits that leave its loop (not its bridges'), with
        the kinds of the values each pushes. (Not the check of the eval
        breaker at its head, which is no recorded op's.)"""
        rec = self.lowered.lowering.rec
        recorded = {id(op.snapshot) for op in rec.ops if op.snapshot is not None}
        return [(number, snapshot, tuple("n" if rec.ops[v].kind == "n" else "o" for v in snapshot.stack))
                for number, snapshot in enumerate(self.snapshots, 1)
                if snapshot.normal and snapshot.reraise is None and id(snapshot) in recorded]

    def snapshot(self, status: int) -> Snapshot | None:
        """Where exit `status` (of the trace or one of its bridges) resumes.
        (None for the exits of a loop nested in this one that its trace runs
        inline: they leave that loop's iteration half done.)"""
        found = self._exit(status)
        return None if found is None or status in self.lowered.inlined_exits else found[1]

    def _exit(self, status: int) -> tuple[Lowered, Snapshot] | None:
        """The trace or bridge that has exit `status`, and its snapshot."""
        bridge, number = divmod(status, BRIDGE_EXITS)
        if bridge == 0:
            return (self.lowered, self.snapshots[status - 1]) if 1 <= status <= len(self.snapshots) else None
        if bridge > len(self.bridges):
            return None
        snapshots = self.bridges[bridge - 1].snapshots
        return (self.bridges[bridge - 1], snapshots[number]) if number < len(snapshots) else None

    def pushed_kinds(self, status: int) -> tuple[str, ...] | None:
        """The kinds of the values exit `status` pushes (boxed, if numbers)."""
        found = self._exit(status)
        if found is None or status in self.lowered.inlined_exits:
            return None
        lowered, snapshot = found
        return tuple(lowered.lowering.value_kind(value) for value in snapshot.stack)

    def inline_body(self, status: int) -> InnerBody | None:
        """The trace's recording, for the loop around it to run inline, if
        it can: its exit `status` is one of its recorded ops' (not a
        bridge's, nor the eval breaker's), it has no bridges (an inlined copy
        would leave where they go on), it runs no loop nested in it, it has no
        object locals kept in the trace (virtual: its inlined copy has no
        place for their homes), it is
        small (MAX_INLINED_OPS), and the location has not given inlining up
        (_on_hot_exit)."""
        rec = self.lowered.lowering.rec
        if not self.inline or self.bridges or not 1 <= status <= len(self.snapshots) \
                or len(rec.ops) > MAX_INLINED_OPS \
                or all(op.snapshot is not self.snapshots[status - 1] for op in rec.ops) \
                or any(op.name in ("inner_loop", "nested_loop", "store_v", "load_v")
                       for op in rec.ops):
            return None
        from copyjit.trace.ir import InnerBody

        return InnerBody(rec, tuple(self.snapshots))


def _log_from_environment() -> Any:
    """COPYJIT_LOG's log (copyjit/log.py), or None: its module is imported only then."""
    if not os.environ.get("COPYJIT_LOG"):
        return None
    from copyjit.log import from_environment

    return from_environment()


def _perf_map_from_environment() -> Any:
    """COPYJIT_PERF_MAP's map (copyjit/perfmap.py), or None."""
    if os.environ.get("COPYJIT_PERF_MAP", "0") in ("", "0"):
        return None
    from copyjit.perfmap import PerfMap

    return PerfMap()


def _opt_off_from_environment() -> frozenset[str]:
    """COPYJIT_OPT's passes to switch off (a bad name is reported once, and ignored)."""
    if not os.environ.get("COPYJIT_OPT"):
        return frozenset()
    from copyjit.opt import UnknownPass, disabled_passes

    try:
        return disabled_passes()
    except UnknownPass as error:
        print(error, file=sys.stderr)
        return frozenset()


def _fail_guards_from_environment() -> frozenset[str]:
    if not os.environ.get("COPYJIT_FAIL_GUARDS"):
        return frozenset()
    from copyjit.trace.faults import from_environment

    return from_environment()


_SEQUENCE_ITERATORS: tuple[type, ...] = (type(iter([])), type(iter(())), type(iter(range(0))))
_PLAIN = (int, float, str, bool, bytes, type(None))


def _iterated(iterator: object) -> tuple[Sized, int] | None:
    """The list, tuple or range a `for` loop's iterator steps through, and
    its index in it; None for another iterator, or an exhausted one. Their
    iterators pickle as (iter, (sequence,), index); a range's, as the range
    of the items left (index None, taken as 0)."""
    if type(iterator) not in _SEQUENCE_ITERATORS:
        return None
    reduced: Any = iterator.__reduce__()
    if len(reduced) != 3:  # exhausted: no sequence any more, (iter, ((),))
        return None
    return reduced[1][0], int(reduced[2] or 0)


def _sequence_length(iterator: object) -> tuple[int, bool] | None:
    """The length of the list or tuple a `for` loop iterates (whole: True),
    or of what is left of its range (False), or None."""
    found = _iterated(iterator)
    return None if found is None else (len(found[0]), type(found[0]) is not range)


def _iterator_at_head(code: CodeType, frame: FrameType, dst: int) -> object:
    """At a backedge to a `for` loop's head, the iterator its FOR_ITER
    takes the next item from; else None. (After _short_sequence, which
    imports frames.)"""
    from copyjit.trace import frames

    if _opname_at(code, dst) != "FOR_ITER":
        return None
    raw = frames.raw(frame)
    return frames.read_stack(raw, code)[-1] if frames.stack_depth(raw, code) >= 1 else None


def _items_left(iterator: object) -> int | None:
    """How many items a list's, tuple's or range's iterator has left to
    give (0 when exhausted), or None for another iterator."""
    if type(iterator) not in _SEQUENCE_ITERATORS:
        return None
    found = _iterated(iterator)
    return 0 if found is None else max(len(found[0]) - found[1], 0)


def _backedges_around(code: CodeType, src: int, dst: int) -> list[Decoded]:
    """The backedges of the loops around the one from `dst` to its backedge at `src`."""
    from copyjit.trace.bytecode import decoded  # (imported by _short_sequence, timed)

    return [ins for ins in decoded(code)[0].values()
            if ins.opname == "JUMP_BACKWARD" and ins.argval < dst and ins.offset > src]


def _enclosing_unit(code: CodeType, src: int, dst: int) -> int:
    """1 + the code unit of the backedge of the innermost loop around the
    one from `dst` to its backedge at `src`, or 0: the native callback
    counts each entry of this loop's trace as a backedge of that one
    (runtime.c, count_enclosing)."""
    heads = [(ins.argval, ins.offset) for ins in _backedges_around(code, src, dst)]
    return max(heads)[1] // 2 + 1 if heads else 0


def _age_the_compiler() -> None:
    """Once a process, right after the compiler is loaded (and timed as
    loading it): one young collection, which moves the compiler's objects
    (~5,600: its modules' functions and classes, the stencil table) to the
    oldest generation. Left to the collector's schedule, the same
    collection came a few traces later, in the middle of one: n-body's
    second trace took 5.4 ms from hot to native instead of 1.9."""
    global _compiler_aged
    if not _compiler_aged:
        _compiler_aged = True
        import gc  # builtin

        gc.collect(1)


def _shape(recording: Recording) -> tuple[object, ...]:
    """The recording's ops and exits, comparable with another's; objects
    by identity, so that it keeps none alive."""
    return tuple((op.name, op.kind, op.args, _arg_shape(op.arg),
                  None if op.snapshot is None else op.snapshot._fields()) for op in recording.ops)


def _arg_shape(arg: object) -> object:
    if type(arg) is tuple:
        return tuple(_arg_shape(item) for item in arg)
    if type(arg).__module__ == "copyjit.trace.ir":  # InnerCall, Snapshot, InnerBody: by their fields
        slots: tuple[str, ...] = getattr(type(arg), "__slots__", ())
        return (type(arg).__name__, *(_arg_shape(getattr(arg, name)) for name in slots))
    return arg if type(arg) in _PLAIN else id(arg)


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
