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

The lowering does not write text: it makes *rows*, what lines parse to
(`make`: an instruction whose targets are labels; a str: a label), and
`assemble`s them. `row_text` gives a row's line, for explain and the log.
"""

from __future__ import annotations

import struct

from copyjit.backend.emitter import Instruction

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

# No re: lower.py makes every trace's rows with this module, at the first
# hot loop of every program, where importing re costs ~8 ms.
_INT_KEYS: Final = ("oparg", "operand0", "operand1")
_TARGET_KEYS: Final = ("jump", "exit", "error")
_KEYS: Final = frozenset(_INT_KEYS + _TARGET_KEYS)
_LABEL_START: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


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
    # `a, b = NAME ...`: before the first "=", registers and commas only
    # (in `NAME oparg=1`, a name and a key).
    left, eq, right = line.partition("=")
    if eq and all(len(piece.split()) == 1 for piece in left.split(",")):
        outs, line = tuple(piece.strip() for piece in left.split(",")), right
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

    def resolve(self, labels: dict[str, int]) -> Instruction:
        """The instruction, its labels looked up (KeyError: one is not there)."""
        jump, exit, error = self.jump, self.exit, self.error
        return self.base.retargeted(None if jump is None else labels[jump],
                                    None if exit is None else labels[exit],
                                    None if error is None else labels[error])

    def missing(self, labels: dict[str, int]) -> str:
        return next(label for label in (self.jump, self.exit, self.error)
                    if label is not None and label not in labels)


_BLANK: Final = ()  # the meaning of a blank or comment line
_Meaning = Instruction | _Targets | str | tuple[()]  # str: the label the line defines

# What each line already parsed means, in any text (the line as given,
# indentation and all): its instruction if it names no label; if it does,
# the instruction but for its targets (_Targets), whose labels each text
# resolves; the label a label line defines. Lines that name an @name are
# not kept (their env may differ). Texts repeat lines (reloads, spills,
# exit stubs). Bounded: emptied when full.
_PARSED: Final[dict[str, _Meaning]] = {}
_PARSED_MAX: Final = 8192


def parse(text: str, env: dict[str, int] | None = None) -> list[Instruction]:
    return parse_lines(text.splitlines(), env)


def parse_lines(lines: list[str], env: dict[str, int] | None = None) -> list[Instruction]:
    """parse("\\n".join(lines), env), without joining and splitting again."""
    env = env or {}
    rows: list[Row] = []
    numbers: list[int] = []  # each row's line number
    get = _PARSED.get
    for number, raw in enumerate(lines, 1):
        meaning = get(raw)
        if meaning is None:
            meaning = _meaning(raw, number, env)
        if meaning is not _BLANK:
            rows.append(meaning)  # type: ignore[arg-type]
            numbers.append(number)
    return assemble(rows, numbers.__getitem__)


Row = Instruction | _Targets | str  # str: a label, naming the next row's instruction


def assemble(rows: list[Row], where: Callable[[int], int] | None = None) -> list[Instruction]:
    """The instructions of `rows`, each label resolved to the index of the
    instruction after it. `where(row)`: the line number to report a row's
    error at (default: the row's number, from 1)."""
    instructions: list[Instruction | _Targets] = []
    append = instructions.append
    labels: dict[str, int] = {}
    pending: list[tuple[int, int]] = []  # (instruction, row) of those that name labels
    for number, row in enumerate(rows):
        kind = type(row)
        if kind is Instruction:
            append(row)  # type: ignore[arg-type]
        elif kind is _Targets:
            pending.append((len(instructions), number))
            append(row)  # type: ignore[arg-type]
        else:
            if row in labels:
                raise AsmError(f"line {_at(where, number)}: label {row} defined twice")
            labels[row] = len(instructions)  # type: ignore[index]
    if any(index == len(instructions) for index in labels.values()):
        raise AsmError("a label at the end names no instruction")
    # A row made once means one thing: resolve each distinct one once.
    resolved: dict[_Targets, Instruction] = {}
    for index, number in pending:
        targets = instructions[index]
        made = resolved.get(targets)  # type: ignore[arg-type]
        if made is None:
            try:
                made = resolved[targets] = targets.resolve(labels)  # type: ignore[union-attr,index]
            except KeyError:
                raise AsmError(f"line {_at(where, number)}: no label "
                               f"{targets.missing(labels)!r}") from None  # type: ignore[union-attr]
        instructions[index] = made
    return instructions  # type: ignore[return-value]  # every _Targets resolved


def _at(where: Callable[[int], int] | None, row: int) -> int:
    return row + 1 if where is None else where(row)


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


# The instructions made before, by what they were made of: a trace's rows
# are mostly the same few (reloads, spills, the exit stubs' write-backs),
# and the traces of a program repeat each other's. Bounded: emptied when
# full. Keyed without the labels (an exit's is its own) and, when both
# operands are 0 (most rows), without them: hashing and comparing the key
# is most of what a row costs.
_MADE: Final[dict[tuple[object, ...], Instruction]] = {}


def make(name: str, ins: tuple[str, ...] = (), outs: tuple[str, ...] = (), oparg: int = 0, operand0: int = 0,
         operand1: int = 0, jump: str | None = None, exit: str | None = None,
         error: str | None = None) -> Instruction | _Targets:
    """A row of an instruction whose targets are labels (what the line
    `outs = name ins key=value...` parses to), for assemble()."""
    key = (name, ins, outs, oparg) if operand0 == 0 and operand1 == 0 else \
        (name, ins, outs, oparg, operand0, operand1)
    base = _MADE.get(key)
    if base is None:
        if len(_MADE) >= _PARSED_MAX:
            _MADE.clear()
        base = _MADE[key] = Instruction(name, ins, outs, oparg, operand0, operand1)
    if jump is None and exit is None and error is None:
        return base
    return _Targets(base, jump, exit, error)


def at_table(row: Row, names: frozenset[str], base: int) -> Row:
    """`row`, or if its instruction is named in `names`, the row with its
    operand0 (an offset in 8-byte words) made an address in the table at
    `base`."""
    if isinstance(row, str):
        return row
    made = row.base if isinstance(row, _Targets) else row
    if made.name not in names:
        return row
    targets = (row.jump, row.exit, row.error) if isinstance(row, _Targets) else (None, None, None)
    return make(made.name, made.ins, made.outs, made.oparg, base + 8 * made.operand0, made.operand1, *targets)


def row_text(row: Row) -> str:
    """The line of the text form that parses to `row`."""
    if isinstance(row, str):
        return f"{row}:"
    if isinstance(row, _Targets):
        return _line(row.base, (row.jump, row.exit, row.error))
    return _line(row, (None, None, None))


def _line(inst: Instruction, labels: tuple[str | None, str | None, str | None]) -> str:
    """The instruction's line, its jump, exit and error named by `labels`."""
    text = f"{', '.join(inst.outs)} = " if inst.outs else ""
    text += inst.name
    if inst.ins:
        text += " " + ", ".join(inst.ins)
    for key in _INT_KEYS:
        if getattr(inst, key):
            text += f" {key}={_show(getattr(inst, key))}"
    for key, label in zip(_TARGET_KEYS, labels, strict=True):
        if label is not None:
            text += f" {key}={label}"
    return "    " + text


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
        jump, exit, error = (None if target is None else names.get(target, f"L{target}")
                             for target in (inst.jump, inst.exit, inst.error))
        lines.append(_line(inst, (jump, exit, error)))
    return "\n".join(lines) + "\n"

