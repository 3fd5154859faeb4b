"""`python -m copyjit explain`: what the JIT did with every loop that got hot.

For each hot loop, in source order: compiled or not and why not (the abort's
reason, with the instruction and source line that stopped the recording);
its trace's entries, iterations and exits per guard; its bridges; and the
recorded trace, the optimized trace (copyjit/opt/text.py's form) and the
machine code, each uop and instruction under the op and source line it
came from.

Nothing here runs while the program does: the JIT keeps references to what
it made (Location.recorded, the lowering's marks) and native counters
(entries, iterations, exits), and this reads them afterwards.
"""

from __future__ import annotations

import linecache
import os
from dataclasses import dataclass, field
from struct import iter_unpack
from typing import TYPE_CHECKING

from copyjit.backend.runtime import EXIT
from copyjit.opt import text
from copyjit.trace.jit import BRIDGE_EXITS, Location, Why

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
    from weakref import ref

    from copyjit.backend.emitter import Trace
    from copyjit.trace.ir import Position, Recording, Snapshot
    from copyjit.trace.jit import JIT
    from copyjit.trace.lower import Lowered


@dataclass
class Place:
    """A source position: file, line, and the function (code) it is in."""

    filename: str
    line: int | None
    function: str

    def __str__(self) -> str:
        return f"{_short(self.filename)}:{self.line if self.line is not None else '?'} ({self.function})"

    @property
    def source(self) -> str:
        return _source(self.filename, self.line)


@dataclass
class TraceLine:
    """One op of a recording, with where it was recorded."""

    text: str
    place: Place | None


@dataclass
class Instruction:
    """One machine instruction of a trace, with the uop and op it belongs to."""

    address: int
    text: str  # bytes, mnemonic and holes, as disasm prints them
    uop: int  # index of its uop in the trace
    uop_text: str
    origin: str  # the op (in the optimized trace's text) or the stub it belongs to
    place: Place | None


@dataclass
class Exit:
    """One exit number of a trace: where it resumes, the guard it belongs
    to, how often it was taken, and its bridge."""

    number: int
    offset: int
    place: Place
    guard: str
    taken: int | None
    normal: bool
    bridge: int | None = None  # index into LoopReport.bridges
    why_no_bridge: Why | None = None


@dataclass
class Code:
    """A trace or a bridge: its recordings and its machine code."""

    name: str
    address: int
    size: int
    entries: int | None
    recorded: list[TraceLine]
    optimized: list[TraceLine]
    instructions: list[Instruction]
    exit_number: int = 0  # for a bridge: the parent's exit it continues
    # A bridge's own exits (each counts itself: lower.py, run_bridge); its
    # other way out goes back to the parent trace's loop head.
    exits: list[Exit] = field(default_factory=list)


@dataclass
class LoopReport:
    place: Place
    dst: int
    src: int
    compiled: bool
    why: Why | None
    dropped: list[str]
    iterations: int = 0
    entries: int = 0
    trace: Code | None = None
    exits: list[Exit] = field(default_factory=list)
    bridges: list[Code] = field(default_factory=list)
    span: tuple[int, int] = (0, 0)  # the first and last source lines of the loop's bytecode

    @property
    def key(self) -> str:
        """A name unique in a report, usable as an HTML id."""
        return f"loop-{_short(self.place.filename).replace('/', '-').replace('.', '-')}-{self.dst}-{self.src}"


# --- collecting ----------------------------------------------------------------


def collect(jit: JIT, codes: list[CodeType] | None = None) -> list[LoopReport]:
    """A report per hot loop of the JIT (of `codes` only, if given), in source order."""
    wanted = None if codes is None else {id(code) for code in codes}
    seen: set[int] = set()
    reports: list[tuple[CodeType, LoopReport]] = []
    for (code_id, src), location in list(jit.locations.items()):
        if id(location) in seen or (wanted is not None and code_id not in wanted):
            continue
        seen.add(id(location))
        code = _code(jit, code_id, location)
        if code is None:
            continue
        reports.append((code, _loop(code, src, location)))
    # A loop with several backedges (`continue`, an `if` whose arms both end
    # the body) is one loop: one report, the compiled one if any.
    by_head: dict[tuple[int, int], LoopReport] = {}
    for code, report in reports:
        kept = by_head.get((id(code), report.dst))
        if kept is None or (report.compiled and not kept.compiled):
            by_head[id(code), report.dst] = report
    return sorted(by_head.values(), key=lambda r: (r.place.filename, r.place.line or 0, r.dst))


def _code(jit: JIT, code_id: int, location: Location) -> CodeType | None:
    if location.lowered is not None:
        return location.lowered.lowering.rec.code
    found = jit._code_refs.get(code_id)
    return found() if found is not None else None


def _loop(code: CodeType, src: int, location: Location) -> LoopReport:
    lowered, trace = location.lowered, location.trace
    dst = lowered.lowering.rec.dst if lowered is not None else _target(code, src)
    report = LoopReport(_place_in(code, dst), dst, src, trace is not None, location.why,
                        list(location.dropped))
    lines = [line for start, end, line in code.co_lines() if line is not None and start <= src and end > dst]
    report.span = (min(lines), max(lines)) if lines else (report.place.line or 0, report.place.line or 0)
    if trace is None or lowered is None:
        return report
    report.iterations, report.entries = location["iterations"], location["entries"]
    assert location.recorded is not None
    report.trace = _trace_code(f"trace of the loop at {report.place}", trace, lowered, location.recorded,
                               report.entries)
    counts = list(EXIT.iter_unpack(location.exits))
    guards = _guards(lowered)
    for number, snapshot in enumerate(lowered.snapshots, 1):
        taken = counts[number][0] if number < len(counts) else None
        guard = guards(number) \
            or (_HEAD_CHECK if snapshot.offset == dst else _LOWERED_EXIT)
        report.exits.append(Exit(number, snapshot.offset, _place_in(code, snapshot.offset), guard,
                                 taken, snapshot.normal, why_no_bridge=location.bridge_why.get(number)))
    for index, (number, bridge, bridge_lowered, recorded, entries) in enumerate(zip(
            location.bridge_exits, location.bridges, location.bridge_lowered, location.bridge_recorded,
            location.bridge_entries, strict=True)):
        count = int.from_bytes(entries, "little", signed=True)
        made = _trace_code(f"bridge {index + 1} from exit {number}", bridge, bridge_lowered, recorded, count)
        made.exit_number = number
        bridge_guards = _guards(bridge_lowered)
        taken = [count for (count,) in iter_unpack("<q", bridge_lowered.lowering.exit_counts)]
        for own, snapshot in enumerate(bridge_lowered.snapshots):
            guard = bridge_guards(own + 1) or _LOWERED_EXIT
            made.exits.append(Exit(BRIDGE_EXITS * (index + 1) + own, snapshot.offset,
                                   _place_in(code, snapshot.offset), guard,
                                   taken[own] if own < len(taken) else None, snapshot.normal))
        report.bridges.append(made)
        if number - 1 < len(report.exits):
            report.exits[number - 1].bridge = index
    return report


_HEAD_CHECK = "the check at the loop's head (signals, pending calls)"
_LOWERED_EXIT = "an exit of the lowering (a nested loop's head or its way out)"


def _target(code: CodeType, src: int) -> int:
    """The head of the loop whose backedge is at `src` (JUMP_BACKWARD's target)."""
    from copyjit.trace.bytecode import instructions

    for ins in instructions(code):
        if ins.offset == src:
            return int(ins.argval)
    return src


def _guards(lowered: Lowered) -> Callable[[int], str | None]:
    """Exit number -> the ops whose guards exit there, as text (the trace's
    ops, and those of nested loops it runs inline): the op whose snapshot
    the exit was made for and, since the trace's side exits with equal
    snapshots share one exit number (lower.py, exit_label: a type guard and
    the branch after it, say), the ops of its recording with an equal one."""
    lowering = lowered.lowering
    recs = {id(rec): rec for _, rec, _ in lowering.marks if rec is not None}
    recs[id(lowering.rec)] = lowering.rec
    by_identity: dict[int, list[str]] = {}
    by_value: dict[tuple[int, Snapshot], list[str]] = {}
    for rec in recs.values():
        lines = text.dump(rec).splitlines()[1:]
        for index, op in enumerate(rec.ops):
            snapshot = op.snapshot
            if snapshot is not None:
                by_identity.setdefault(id(snapshot), []).append(_op_text(lines[index]))
                by_value.setdefault((id(rec), snapshot), []).append(_op_text(lines[index]))

    def guard(number: int) -> str | None:
        snapshot = lowered.snapshots[number - 1]
        owner = lowering.exit_owner[number - 1] if number <= len(lowering.exit_owner) else lowering
        ops = list(by_identity.get(id(snapshot), ()))
        if ops and not snapshot.normal and owner is lowering:  # shared with equal snapshots
            ops += [op for op in by_value.get((id(owner.rec), snapshot), ()) if op not in ops]
        return " or ".join(ops) if ops else None

    return guard


def _op_text(line: str) -> str:
    """An op's line of the text form, without its snapshot."""
    return line.partition(" | ")[0].strip()


def _trace_code(name: str, trace: Trace, lowered: Lowered, recorded: Recording, entries: int | None) -> Code:
    optimized = lowered.lowering.rec
    return Code(name, trace.address, trace.size, entries, _lines(recorded), _lines(optimized),
                _instructions(trace, lowered))


def _lines(rec: Recording) -> list[TraceLine]:
    dumped = text.dump(rec).splitlines()
    positions = rec.positions or []
    lines = [TraceLine(dumped[0], None)]
    for index, line in enumerate(dumped[1:]):
        where = positions[index] if index < len(positions) else None
        lines.append(TraceLine(line, None if where is None else _place(*where)))
    return lines


def _place(code_ref: ref[CodeType], offset: int) -> Place:
    code = code_ref()
    if code is None:  # (a recording holds its codes weakly)
        return Place("<code freed>", None, "?")
    return _place_in(code, offset)


def _place_in(code: CodeType, offset: int) -> Place:
    from copyjit.trace.jit import _line_of

    return Place(code.co_filename, _line_of(code, offset), code.co_qualname)


def _origins(lowered: Lowered) -> list[tuple[str, Place | None]]:
    """Per instruction of the lowered trace: the op it was lowered from (its
    text, and where it was recorded), or the stub or section it is in."""
    lowering = lowered.lowering
    marks = sorted(lowering.marks, key=lambda mark: mark[0])  # stable: same-line marks keep their order
    dumps: dict[int, tuple[list[str], list[Position]]] = {}
    origin: tuple[str, Place | None] = ("entry: the locals unboxed into their homes", None)
    in_body = False
    result: list[tuple[str, Place | None]] = []
    at = 0
    for number, raw in enumerate(lowering.lines):
        while at < len(marks) and marks[at][0] == number:
            _, rec, op = marks[at]
            at += 1
            if rec is None:  # the body is done: what follows goes back to the head, or leaves
                origin, in_body = ("the end of the iteration", None), False
                continue
            if id(rec) not in dumps:
                dumps[id(rec)] = (text.dump(rec).splitlines()[1:], rec.positions or [])
            lines, positions = dumps[id(rec)]
            where = _place(*positions[op]) if op < len(positions) else None
            origin, in_body = (_op_text(lines[op]), where), True
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        if line.endswith(":") and " " not in line:
            if not in_body:
                origin = (_section(line[:-1], lowered), None)
            continue
        result.append(origin)
    return result


def _section(label: str, lowered: Lowered) -> str:
    """What the code after a label outside the body does."""
    if label.startswith("exit") and label[4:].split("_")[0].isdigit():
        number = int(label[4:].split("_")[0])
        snapshots = lowered.snapshots
        snapshot: Snapshot | None = snapshots[number - 1] if number <= len(snapshots) else None
        where = f", resumes at bytecode {snapshot.offset}" if snapshot is not None else ""
        return f"exit {number}: its stub{where}"
    return {"loop": "the loop's head", "entry": "entry: a local of another type",
            "unbound": "entry: a local unbound", "error": "out of memory while boxing",
            "leave": "every exit: the locals written back"}.get(label, label)


def _instructions(trace: Trace, lowered: Lowered) -> list[Instruction]:
    from copyjit.backend import asm, disasm

    origins = _origins(lowered)
    if len(origins) != len(trace.instructions):  # should not happen: code without its ops then
        origins = [("?", None)] * len(trace.instructions)
    code = trace.code() if not trace.freed else b""
    result = []
    for index, (inst, prepared) in enumerate(zip(trace.instructions, trace.prepared, strict=True)):
        start, end = trace.offsets[index], trace.offsets[index + 1]
        uop_text = asm.dump([inst]).strip()
        origin, place = origins[index]
        for insn in disasm._md.disasm(code[start:end], trace.address + start):
            local = insn.address - trace.address - start
            notes = [disasm._describe(h, inst) for h in disasm._holes_in(prepared.holes, local, insn.size)]
            result.append(Instruction(insn.address, disasm._line(insn, notes).strip(), index, uop_text,
                                      origin, place))
    return result


# --- text ----------------------------------------------------------------------


def render(reports: list[LoopReport], code: bool = True) -> str:
    """The report as plain text; `code`: with the traces and machine code."""
    if not reports:
        return "copyjit explain: no loop got hot (raise the work, or lower the threshold: --threshold 1)\n"
    out = [_summary(reports)]
    for loop in reports:
        out.append(_loop_text(loop, code))
    return "\n".join(out)


def _summary(reports: list[LoopReport]) -> str:
    compiled = sum(r.compiled for r in reports)
    lines = [f"copyjit explain: {len(reports)} hot loops, {compiled} compiled, "
             f"{len(reports) - compiled} not compiled", ""]
    for report in reports:
        state = "compiled" if report.compiled else f"NOT COMPILED: {_why_text(report.why)}"
        lines.append(f"  {report.place}  {state}")
    return "\n".join(lines) + "\n"


def _why_text(why: Why | None) -> str:
    if why is None:
        return "not recorded yet"
    text = why.reason + (f" ({why.count} times)" if why.count > 1 else "")
    if why.line is not None:
        text += f"; at line {why.line}, {why.opname} (bytecode {why.offset})"
    return text


def _loop_text(report: LoopReport, code: bool) -> str:
    rule = "=" * 78
    out = [rule, f"loop at {report.place}, bytecode {report.dst}..{report.src}", f"    {report.place.source}"]
    if not report.compiled:
        out.append(f"  not compiled: {_why_text(report.why)}")
        if report.why is not None and report.why.line is not None and report.why.filename:
            out.append(f"    line {report.why.line}: {_source(report.why.filename, report.why.line)}")
    if report.compiled and report.why is not None:  # transient: the int too big that time, say
        out.append(f"  compiled after recordings that failed: {_why_text(report.why)}")
    for dropped in report.dropped:
        out.append(f"  a trace was dropped: {dropped}")
    if report.trace is None:
        return "\n".join(out) + "\n"
    per_entry = report.iterations / report.entries if report.entries else 0.0
    out.append(f"  compiled: {report.entries} native entries, {report.iterations} iterations "
               f"({per_entry:.1f} per entry), {report.trace.size} bytes at {report.trace.address:#x}, "
               f"{len(report.bridges)} bridges")
    out.append("  exits (number: times taken, where it resumes, the guard):")
    for ex in report.exits:
        taken = "?" if ex.taken is None else str(ex.taken)
        kind = "leaves the loop" if ex.normal else "side exit"
        linked = f"  -> bridge {ex.bridge + 1}" if ex.bridge is not None else ""
        if ex.bridge is None and ex.why_no_bridge is not None:
            linked = f"  (no bridge: {_why_text(ex.why_no_bridge)})"
        out.append(f"    {ex.number:>3}: {taken:>8}  line {ex.place.line} ({kind}): {ex.guard}{linked}")
    for number, made in enumerate(report.bridges, 1):
        out.append(f"  bridge {number} from exit {made.exit_number}: {made.entries} entries, "
                   f"{made.size} bytes; its exits:")
        for ex in made.exits:
            kind = "leaves the loop" if ex.normal else "side exit"
            taken = "?" if ex.taken is None else str(ex.taken)
            out.append(f"    {ex.number:>6}: {taken:>8}  line {ex.place.line} ({kind}): {ex.guard}")
    if code:
        out.append(_code_text(report.trace))
        for made in report.bridges:
            out.append(_code_text(made))
    return "\n".join(out) + "\n"


def _code_text(made: Code) -> str:
    out = [f"--- {made.name}: recorded ({len(made.recorded) - 1} ops)"]
    out += _trace_lines(made.recorded)
    out.append(f"--- {made.name}: optimized ({len(made.optimized) - 1} ops)")
    out += _trace_lines(made.optimized)
    out.append(f"--- {made.name}: machine code ({made.size} bytes at {made.address:#x})")
    origin, uop = None, -1
    for inst in made.instructions:
        if inst.origin != origin:
            origin = inst.origin
            where = f"    # line {inst.place.line}: {inst.place.source}" if inst.place is not None else ""
            out.append(f"  {origin}{where}")
        if inst.uop != uop:
            uop = inst.uop
            out.append(f"      #{uop} {inst.uop_text}")
        out.append(f"        {inst.text}")
    return "\n".join(out)


def _trace_lines(lines: list[TraceLine]) -> list[str]:
    """The text form, with a comment line wherever the source line changes."""
    out = [f"  {lines[0].text}"]
    last: tuple[str, int | None, str] | None = None
    for line in lines[1:]:
        place = line.place
        if place is not None and (place.filename, place.line, place.function) != last:
            last = (place.filename, place.line, place.function)
            out.append(f"  # line {place.line} ({place.function}): {place.source}")
        out.append(f"    {line.text}")
    return out


def _source(filename: str, line: int | None) -> str:
    return linecache.getline(filename, line).strip() if line else ""


def _short(filename: str) -> str:
    """A file name relative to the working directory, when it is under it."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def codes_of(function: object) -> list[CodeType]:
    """The code of a function and of every function, class body and
    comprehension defined in it."""
    code: CodeType = getattr(function, "__code__", function)  # type: ignore[arg-type]
    found: list[CodeType] = []
    todo = [code]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += [const for const in current.co_consts if isinstance(const, type(current))]
    return found
