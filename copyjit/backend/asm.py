"""A text form of backend instruction lists, with a parser: parse(dump(x)) == x.

    # sum(range(n)) with unboxed ints
        _LOAD_FAST oparg=0
        i1 = _UNBOX_INT exit=bail
        i0 = _LOAD_INT_CONST operand0=0
    loop:
        i2 = _ADD_INT i2, i0 exit=bail

A line is `[outs =] NAME [ins, ...] [key=value ...]`; `label:` names the next
instruction. Keys are oparg, operand0, operand1 (ints; a float literal means
its IEEE bits; `@name` looks the value up in `env`) and jump, exit, error
(labels).
"""

from __future__ import annotations

import struct

from copyjit.backend.emitter import Instruction

# No re: lower.py parses every trace it makes with this, at the first hot
# loop of every program, where importing re costs ~8 ms.
_INT_KEYS = ("oparg", "operand0", "operand1")
_TARGET_KEYS = ("jump", "exit", "error")
_KEYS = frozenset(_INT_KEYS + _TARGET_KEYS)
_LABEL_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


class AsmError(ValueError):
    pass


def float_bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def _number(text: str, env: dict[str, int], line: int) -> int:
    if text.startswith("@"):
        if text[1:] not in env:
            raise AsmError(f"line {line}: {text} is not defined")
        return env[text[1:]]
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float_bits(float(text))
    except ValueError:
        raise AsmError(f"line {line}: {text!r} is not a number") from None


def _label(line: str) -> str | None:
    """The label `line` defines (it matches `[A-Za-z_][\\w.]*:`), else None."""
    if not line.endswith(":") or line[0] not in _LABEL_START:
        return None
    name = line[:-1]
    # [\w.]: what str.isalnum() accepts, "_" and "."
    return name if name.replace(".", "_").replace("_", "a").isalnum() else None


def _split(line: str) -> tuple[tuple[str, ...], str, list[str], dict[str, str]]:
    outs: tuple[str, ...] = ()
    words = line.split(None, 2)
    if "=" in words[0] or (len(words) > 1 and words[1] == "="):
        left, _, line = line.partition("=")
        outs = tuple(r.strip() for r in left.split(",") if r.strip())
    words = line.replace(",", " ").split()
    name, args, keys = words[0], [], {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if eq:
            keys[key] = value
        else:
            args.append(word)
    return outs, name, args, keys


class _Targets:
    """A line that names labels: its instruction but for its targets
    (`base`), and the labels of its jump, exit and error (or None)."""

    __slots__ = ("base", "error", "exit", "jump")

    def __init__(self, base: Instruction, jump: str | None, exit: str | None, error: str | None) -> None:
        self.base, self.jump, self.exit, self.error = base, jump, exit, error

    def resolve(self, labels: dict[str, int], number: int) -> Instruction:
        targets: list[int | None] = []
        for label in (self.jump, self.exit, self.error):
            if label is None:
                targets.append(None)
            elif label in labels:
                targets.append(labels[label])
            else:
                raise AsmError(f"line {number}: no label {label!r}")
        return self.base.retargeted(*targets)


_BLANK = ()  # the meaning of a blank or comment line
_Meaning = Instruction | _Targets | str | tuple[()]  # str: the label the line defines

# What each line already parsed means, in any text (the line as given,
# indentation and all): its instruction if it names no label; if it does,
# the instruction but for its targets (_Targets), whose labels each text
# resolves; the label a label line defines. Lines that name an @name are
# not kept (their env may differ). A trace's lines are mostly the same few
# (reloads, spills, the exit stubs' write-backs), and the traces of a
# program repeat each other's: parsing was most of the time lower() took.
# Bounded: emptied when full.
_PARSED: dict[str, _Meaning] = {}
_PARSED_MAX = 8192


def parse(text: str, env: dict[str, int] | None = None) -> list[Instruction]:
    return parse_lines(text.splitlines(), env)


def parse_lines(lines: list[str], env: dict[str, int] | None = None) -> list[Instruction]:
    """parse("\\n".join(lines), env), without joining and splitting again."""
    env = env or {}
    rows: list[Instruction | _Targets] = []
    append = rows.append
    labels: dict[str, int] = {}
    pending: list[tuple[int, int]] = []  # (row, line number) of the rows that name labels
    get = _PARSED.get
    # Kept flat: this runs for every line of every trace (~0.1 us a line).
    for number, raw in enumerate(lines, 1):
        meaning = get(raw)
        if meaning is None:
            meaning = _meaning(raw, number, env)
        kind = type(meaning)
        if kind is Instruction:
            append(meaning)  # type: ignore[arg-type]
        elif kind is _Targets:
            pending.append((len(rows), number))
            append(meaning)  # type: ignore[arg-type]
        elif kind is str:
            if meaning in labels:
                raise AsmError(f"line {number}: label {meaning} defined twice")
            labels[meaning] = len(rows)  # type: ignore[index]
    if any(index == len(rows) for index in labels.values()):
        raise AsmError("a label at the end names no instruction")
    # In one text a line means one thing: resolve each distinct one once.
    resolved: dict[_Targets, Instruction] = {}
    for row, number in pending:
        targets = rows[row]
        made = resolved.get(targets)  # type: ignore[arg-type]
        if made is None:
            made = resolved[targets] = targets.resolve(labels, number)  # type: ignore[union-attr,index]
        rows[row] = made
    return rows  # type: ignore[return-value]  # every _Targets resolved


def _meaning(raw: str, number: int, env: dict[str, int]) -> _Meaning:
    """What a line not parsed before means (and remember it if it means
    the same in any text)."""
    line = (raw.partition("#")[0] if "#" in raw else raw).strip()
    if not line:
        return _BLANK
    meaning: _Meaning | None = _label(line) if line[-1] == ":" else None
    if meaning is None:
        meaning = _instruction(number, line, *_split(line), env)
        if "@" in line:
            return meaning  # means something else with another env
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[raw] = meaning
    return meaning


def _instruction(number: int, line: str, outs: tuple[str, ...], name: str, ins: list[str],
                 keys: dict[str, str], env: dict[str, int]) -> Instruction | _Targets:
    if not keys:
        return Instruction(name, tuple(ins), outs)
    if not _KEYS.issuperset(keys):
        raise AsmError(f"line {number}: unknown key {sorted(set(keys) - _KEYS)[0]!r}")
    get = keys.get
    # oparg, operand0, operand1: Instruction's order.
    values = [0, 0, 0]
    for i, key in enumerate(_INT_KEYS):
        if (value := get(key)) is not None:
            values[i] = _number(value, env, number)
    made = Instruction(name, tuple(ins), outs, *values)
    jump, exit, error = get("jump"), get("exit"), get("error")
    if jump is None and exit is None and error is None:
        return made
    return _Targets(made, jump, exit, error)


def _show(value: int) -> str:
    return str(value) if -1024 <= value <= 1024 else hex(value)


def dump(instructions: list[Instruction] | tuple[Instruction, ...]) -> str:
    """One instruction a line; instructions that are targets get a label."""
    targets = sorted(
        {t for i in instructions for t in (i.jump, i.exit, i.error) if t is not None}
    )
    names = {t: f"L{t}" for t in targets}
    lines = []
    for index, inst in enumerate(instructions):
        if index in names:
            lines.append(f"{names[index]}:")
        text = f"{', '.join(inst.outs)} = " if inst.outs else ""
        text += inst.name
        if inst.ins:
            text += " " + ", ".join(inst.ins)
        for key in _INT_KEYS:
            if getattr(inst, key):
                text += f" {key}={_show(getattr(inst, key))}"
        for key in _TARGET_KEYS:
            target = getattr(inst, key)
            if target is not None:
                text += f" {key}={names.get(target, f'L{target}')}"
        lines.append("    " + text)
    return "\n".join(lines) + "\n"

