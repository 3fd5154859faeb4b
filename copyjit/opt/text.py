"""The text form of a recording, with a parser: dump(parse(t)) == t for any dump t.

    trace dst=10 src=40 slots=1:f,2:i stored=2,1
    v0 = range_next.i() | exit @28 normal
         store.i(v0) 2
    v2 = load.f() 1
    v3 = const.f() 0.5
    v4 = binary.f(v2, v3) 'mul' | exit @38 stack v2 v3

A line is one op: `[name =] op.kind(args) [arg] [| exit @offset [normal]
[reraise=name] [on_frame=kinds] [stack names...]]`. Ops that make no value have no name
(their position still counts). `arg` is a Python literal (nan and inf
spelled so). Names are any identifiers: tests write traces by hand, and
compare them after a dump, which renames every value v<position>.
"""

from __future__ import annotations

import ast
import math
import re

from copyjit.trace.ir import NO_VALUE, InnerCall, Op, Recording, Snapshot

_LINE = re.compile(r"^(?:(\w+) = )?\s*(\w+)\.(\w*)\(([^)]*)\)(?: (.+))?$")


class TextError(ValueError):
    pass


def _literal(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf, -inf
    if isinstance(value, InnerCall):
        text = (f"inner(record={value.record}, cell={value.cell}, status={value.status}, "
                f"head={value.head}, inputs={value.inputs!r}")
        if value.alternatives:  # (status, offset, on_frame kinds): see record_base.nested
            text += f", alternatives={tuple((n, s.offset, s.on_frame) for n, s in value.alternatives)!r}"
        return text + ")"
    return repr(value)


def _parse_literal(text: str, where: str) -> object:
    if text in ("nan", "inf", "-inf"):
        return float(text)
    if text.startswith("inner("):
        try:
            call = ast.parse(text, mode="eval").body
            assert isinstance(call, ast.Call)
            fields = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            alternatives = tuple((n, Snapshot(offset, (), on_frame=kinds))
                                 for n, offset, kinds in fields.get("alternatives", ()))
            return InnerCall(fields["record"], fields["cell"], fields["status"], fields["head"],
                             fields["inputs"], None, alternatives)
        except (ValueError, SyntaxError, AssertionError, KeyError, TypeError):
            raise TextError(f"{where}: {text!r} is not an inner(...) call") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise TextError(f"{where}: {text!r} is not a literal") from None


def dump(rec: Recording) -> str:
    slots = ",".join(f"{slot}:{kind}" for slot, kind in sorted(rec.slots.items()))
    stored = ",".join(map(str, rec.stored))
    lines = [f"trace dst={rec.dst} src={rec.src} slots={slots} stored={stored}"]
    for index, op in enumerate(rec.ops):
        head = f"v{index} = " if op.name not in NO_VALUE else " " * len(f"v{index} = ")
        text = f"{head}{op.name}.{op.kind}({', '.join(f'v{a}' for a in op.args)})"
        if op.arg is not None:
            text += f" {_literal(op.arg)}"
        if op.snapshot is not None:
            text += " | " + _dump_snapshot(op.snapshot)
        lines.append(text)
    return "\n".join(lines) + "\n"


def _dump_snapshot(snapshot: Snapshot) -> str:
    text = f"exit @{snapshot.offset}"
    if snapshot.normal:
        text += " normal"
    if snapshot.reraise is not None:
        text += f" reraise=v{snapshot.reraise}"
    if snapshot.on_frame is not None:
        text += f" on_frame={','.join(snapshot.on_frame)}"
    if snapshot.stack:
        text += " stack " + " ".join(f"v{v}" for v in snapshot.stack)
    if snapshot.drop:
        text += " drop " + " ".join(f"v{v}" for v in snapshot.drop)
    return text


def parse(text: str, code: object = None) -> Recording:
    """A recording from its text (`code`: the code object, if it is to be lowered)."""
    lines = [line.rstrip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines or not lines[0].startswith("trace"):
        raise TextError("line 1: expected `trace dst=N src=N slots=... stored=...`")
    header = dict(word.split("=", 1) for word in lines[0].split()[1:])
    names: dict[str, int] = {}
    ops: list[Op] = []
    for number, line in enumerate(lines[1:], 2):
        where = f"line {number}"
        head, bar, snapshot = line.strip().partition(" | ")
        match = _LINE.match(head)
        if match is None:
            raise TextError(f"{where}: cannot read {line.strip()!r}")
        name, op_name, kind, args, arg = match.groups()
        if name is not None:
            if name in names:
                raise TextError(f"{where}: {name} defined twice")
            names[name] = len(ops)

        def value(word: str, where: str = where) -> int:
            if word not in names:
                raise TextError(f"{where}: {word} is not defined above")
            return names[word]

        ops.append(Op(op_name, kind, tuple(value(w.strip()) for w in args.split(",") if w.strip()),
                      None if arg is None else _parse_literal(arg, where),
                      _parse_snapshot(snapshot, value, where) if bar else None))
    slots = {int(s): k for s, _, k in (p.partition(":") for p in header.get("slots", "").split(",") if p)}
    stored = [int(s) for s in header.get("stored", "").split(",") if s]
    return Recording(code, int(header.get("dst", 0)), int(header.get("src", 0)),  # type: ignore[arg-type]
                     ops, slots, stored, [])


def _parse_snapshot(text: str, value: object, where: str) -> Snapshot:
    words = text.split()
    if len(words) < 2 or words[0] != "exit" or not words[1].startswith("@"):
        raise TextError(f"{where}: a snapshot reads `exit @offset ...`, not {text!r}")
    normal, reraise, stack = False, None, ()
    rest = words[2:]
    if rest and rest[0] == "normal":
        normal, rest = True, rest[1:]
    if rest and rest[0].startswith("reraise="):
        reraise, rest = value(rest[0][8:]), rest[1:]  # type: ignore[operator]
    on_frame = None
    if rest and rest[0].startswith("on_frame="):
        on_frame, rest = tuple(k for k in rest[0][9:].split(",") if k), rest[1:]
    drop: tuple[int, ...] = ()
    if "drop" in rest:
        at = rest.index("drop")
        drop, rest = tuple(value(w) for w in rest[at + 1:]), rest[:at]  # type: ignore[operator]
    if rest:
        if rest[0] != "stack":
            raise TextError(f"{where}: unexpected {rest[0]!r} in a snapshot")
        stack = tuple(value(w) for w in rest[1:])  # type: ignore[operator]
    return Snapshot(int(words[1][1:]), stack, normal, reraise, on_frame, drop)


def normalized(text: str) -> str:
    """The dump of a trace's text: equal for traces equal up to renaming."""
    return dump(parse(text))
