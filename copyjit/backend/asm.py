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


# Instructions already parsed from lines that name no label and no @name,
# so mean the same in any text: the traces of one program repeat most of
# their lines (reloads, spills, exit stubs), and parsing was most of the
# time lower() took. Bounded: emptied when full.
_PARSED: dict[str, Instruction] = {}
_PARSED_MAX = 8192


def parse(text: str, env: dict[str, int] | None = None) -> list[Instruction]:
    env = env or {}
    rows: list[tuple[int, str, tuple[tuple[str, ...], str, list[str], dict[str, str]] | None]] = []
    labels: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = (raw.partition("#")[0] if "#" in raw else raw).strip()
        if not line:
            continue
        label = _label(line) if line[-1] == ":" else None
        if label is not None:
            if label in labels:
                raise AsmError(f"line {number}: label {label} defined twice")
            labels[label] = len(rows)
            continue
        rows.append((number, line, None if line in _PARSED else _split(line)))
    if any(index == len(rows) for index in labels.values()):
        raise AsmError("a label at the end names no instruction")
    result = []
    for number, line, split in rows:
        if split is None:
            made = _PARSED.get(line)
            if made is not None:
                result.append(made)
                continue
            split = _split(line)  # another thread emptied the cache since
        result.append(_instruction(number, line, *split, labels, env))
    return result


def _instruction(number: int, line: str, outs: tuple[str, ...], name: str, ins: list[str],
                 keys: dict[str, str], labels: dict[str, int], env: dict[str, int]) -> Instruction:
    if not keys:
        made = Instruction(name, tuple(ins), outs)
    else:
        if not _KEYS.issuperset(keys):
            raise AsmError(f"line {number}: unknown key {sorted(set(keys) - _KEYS)[0]!r}")
        get = keys.get
        # oparg, operand0, operand1, then jump, exit, error: Instruction's order.
        values: list[int | None] = [0, 0, 0, None, None, None]
        for i, key in enumerate(_INT_KEYS):
            if (value := get(key)) is not None:
                values[i] = _number(value, env, number)
        for i, key in enumerate(_TARGET_KEYS, 3):
            if (label := get(key)) is not None:
                if label not in labels:
                    raise AsmError(f"line {number}: no label {label!r}")
                values[i] = labels[label]
        made = Instruction(name, tuple(ins), outs, *values)  # type: ignore[arg-type]
        if values[3:] != [None, None, None] or "@" in line:
            return made  # means something else in another text
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[line] = made
    return made


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

