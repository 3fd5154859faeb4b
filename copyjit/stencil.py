"""Stencils and their holes: the data the build produces and the emitter uses.

This module is on the start-up path (the runtime's own functions are
stencils), so it imports neither dataclasses (which imports inspect, ~10 ms)
nor typing (~5 ms with collections and functools, and NamedTuple classes
are slow to make) nor enum (~2 ms): holes and stencils are tuples with
named fields, written out, and hole kinds and values are enums to mypy but
a few lines of their own at run time.
"""

from __future__ import annotations

import os
from _collections_abc import Mapping  # what collections.abc exports, without importing collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from enum import Enum as _Enum
    from typing import Any

    Read = Callable[[int, int], bytes]
else:
    class _EnumType(type):
        """What this module needs of enum.EnumType: every public str
        attribute of the class body becomes a member (a singleton with
        .name and .value), found by value with Class(value) and by name
        with Class[name]; iterating the class gives the members."""

        def __new__(metacls, name, bases, namespace):
            cls = super().__new__(metacls, name, bases, namespace)
            cls._member_map_ = {}
            for key, value in namespace.items():
                if not key.startswith("_") and isinstance(value, str):
                    member = object.__new__(cls)
                    member._name_, member._value_ = key, value
                    setattr(cls, key, member)
                    cls._member_map_[key] = member
            cls._value2member_map_ = {m._value_: m for m in cls._member_map_.values()}
            return cls

        def __call__(cls, value):
            try:
                return cls._value2member_map_[value]
            except (KeyError, TypeError):
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

        def __getitem__(cls, name):
            return cls._member_map_[name]

        def __iter__(cls):
            return iter(cls._member_map_.values())

        def __len__(cls):
            return len(cls._member_map_)

    class _Enum(metaclass=_EnumType):
        @property
        def name(self):
            return self._name_

        @property
        def value(self):
            return self._value_

        def __repr__(self):
            return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

        def __str__(self):
            return f"{type(self).__name__}.{self._name_}"

        def __reduce__(self):  # copy and pickle give the member itself
            return type(self), (self._value_,)


class HoleKind(_Enum):
    """How a hole is written: the machine encoding of the patched field."""

    ABS64 = "ABS64"  # 64-bit absolute value: S + A
    REL32 = "REL32"  # 32-bit PC-relative: S + A - P
    GOT_REL32 = "GOT_REL32"  # 32-bit PC-relative to the GOT slot of symbol S
    ABS32S = "ABS32S"  # 32-bit absolute value, sign-extended: S + A (a small displacement)


class HoleValue(_Enum):
    """What a hole's symbol S stands for."""

    CONTINUE = "CONTINUE"  # the next instruction of the trace
    JUMP_TARGET = "JUMP_TARGET"  # where a taken branch goes
    EXIT_TARGET = "EXIT_TARGET"  # where a failed guard goes
    ERROR_TARGET = "ERROR_TARGET"  # where a raised exception goes
    OPARG = "OPARG"
    OPERAND0 = "OPERAND0"
    OPERAND1 = "OPERAND1"
    CODE = "CODE"  # this stencil's own code (addend: offset within it)
    DATA = "DATA"  # the shared read-only data (addend: offset within it)
    SYMBOL = "SYMBOL"  # a C symbol of the running interpreter (or libc)
    SLOT_OFFSET = "SLOT_OFFSET"  # 8 * oparg: spill slot oparg's offset (ABS32S only)


_KINDS, _VALUES = tuple(HoleKind), tuple(HoleValue)  # by their numbers in the binary stencils

# The stencil table's index names every INDEX_EVERY-th line (Table.render).
INDEX_EVERY = 32
# Values that differ from one instruction of a trace to the next.
JMP_REL32 = 0xE9
JMP_REL32_SIZE = 5


class Hole(tuple[int, HoleKind, HoleValue, str, int]):
    """(offset, kind, value, symbol, addend); symbol is the C symbol of
    SYMBOL and GOT holes, else ""."""

    __slots__ = ()

    def __new__(cls, offset: int, kind: HoleKind, value: HoleValue, symbol: str, addend: int) -> Hole:
        return super().__new__(cls, (offset, kind, value, symbol, addend))

    def __getnewargs__(self) -> tuple[int, HoleKind, HoleValue, str, int]:  # copy, pickle
        return (*self,)

    def __repr__(self) -> str:
        return "Hole(offset={!r}, kind={!r}, value={!r}, symbol={!r}, addend={!r})".format(*self)

    @property
    def offset(self) -> int:
        return self[0]

    @property
    def kind(self) -> HoleKind:
        return self[1]

    @property
    def value(self) -> HoleValue:
        return self[2]

    @property
    def symbol(self) -> str:
        return self[3]

    @property
    def addend(self) -> int:
        return self[4]

    def describe(self) -> str:
        """e.g. `REL32 CONTINUE`, `GOT_REL32 GOT[_Py_Dealloc]`, `ABS64 DATA+0x10`."""
        what = self.symbol if self.symbol else self.value.name
        # A PC-relative field is 4 bytes before the end of its instruction
        # here, so -4 is the usual addend and not worth showing.
        usual = -4 if self.kind in (HoleKind.REL32, HoleKind.GOT_REL32) else 0
        if self.kind is HoleKind.GOT_REL32:
            what = f"GOT[{what}]"
        if self.value in (HoleValue.DATA, HoleValue.CODE):
            what = f"{what}+{self.addend - usual:#x}"
        elif self.addend != usual:
            what = f"{what}{self.addend - usual:+#x}"
        return f"{self.kind.value} {what}"

    def as_tuple(self) -> tuple[int, str, str, str, int]:
        return (self.offset, self.kind.value, self.value.value, self.symbol, self.addend)

    @classmethod
    def from_tuple(cls, row: tuple[int, str, str, str, int]) -> Hole:
        offset, kind, value, symbol, addend = row
        return cls(offset, HoleKind(kind), HoleValue(value), symbol, addend)


class Stencil(tuple[str, bytes, tuple[Hole, ...]]):
    """(name, code, holes)."""

    __slots__ = ()

    def __new__(cls, name: str, code: bytes, holes: tuple[Hole, ...]) -> Stencil:
        return super().__new__(cls, (name, code, holes))

    def __getnewargs__(self) -> tuple[str, bytes, tuple[Hole, ...]]:  # copy, pickle
        return (*self,)

    def __repr__(self) -> str:
        return "Stencil(name={!r}, code={!r}, holes={!r})".format(*self)

    @property
    def name(self) -> str:
        return self[0]

    @property
    def code(self) -> bytes:
        return self[1]

    @property
    def holes(self) -> tuple[Hole, ...]:
        return self[2]

    @property
    def tail_jump(self) -> Hole | None:
        """The hole of a final `jmp CONTINUE`, which fall-through can drop."""
        index = tail_jump_index(self.code, self.holes)
        return None if index is None else self.holes[index]

    def without_tail_jump(self) -> Stencil:
        """This stencil as laid out when its continuation follows it directly."""
        tail = self.tail_jump
        if tail is None:
            return self
        holes = tuple(h for h in self.holes if h is not tail)
        return Stencil(self.name, self.code[:-JMP_REL32_SIZE], holes)


# A hole as the emitter reads it at a stencil's first use, without a Hole
# made: (offset, kind, value, symbol's number in Table.symbols or
# NO_SYMBOL, addend).
Row = tuple[int, HoleKind, HoleValue, int, int]


def tail_jump_index(code: bytes, holes: tuple[Hole, ...] | list[Row]) -> int | None:
    """Which of `holes` (Holes or Rows: the same fields but the symbol's)
    is a final `jmp CONTINUE`'s, which fall-through can drop."""
    if len(code) < JMP_REL32_SIZE or code[-JMP_REL32_SIZE] != JMP_REL32:
        return None
    for index, (offset, kind, value, _, addend) in enumerate(holes):
        if offset == len(code) - 4 and kind is HoleKind.REL32 and value is HoleValue.CONTINUE \
                and addend == -4:
            return index
    return None


class Table:
    """Everything one build produces, and the shipped file holds."""

    def __init__(self, *, python: str, target: str, compiler: str, layout: dict[str, int], data: bytes,
                 symbols: tuple[str, ...], stencils: Mapping[str, Stencil],
                 runtime: Mapping[str, Stencil]) -> None:
        self.python = python  # the CPython whose headers the stencils were compiled against
        self.target = target
        self.compiler = compiler
        self.layout = layout  # frame field offsets and ABI constants
        self.data = data  # read-only data shared by every stencil
        self.symbols = symbols  # every external C symbol, in GOT order
        self.stencils = stencils
        self.runtime = runtime  # normal-ABI helpers, emitted once per process
        self._numbers: dict[str, int] | None = None  # symbol -> its number in `symbols`

    def rows(self, name: str) -> tuple[bytes, list[Row]]:
        """Stencil `name`'s code and holes as Rows (KeyError if there is
        none): from the binary file, without making the Stencil and its
        Holes (which cost ~10 µs a stencil, at each one's first use in a
        process)."""
        stencils = self.stencils
        found = stencils.rows(name) if isinstance(stencils, _Records) else None
        if found is not None:
            return found
        stencil = stencils[name]
        return stencil.code, self.numbered(stencil.holes)

    def numbered(self, holes: tuple[Hole, ...]) -> list[Row]:
        """`holes` as Rows."""
        if self._numbers is None:
            self._numbers = {symbol: number for number, symbol in enumerate(self.symbols)}
        numbers = self._numbers
        return [(h.offset, h.kind, h.value, numbers[h.symbol] if h.symbol else NO_SYMBOL, h.addend)
                for h in holes]

    def render(self) -> str:
        """JSON Lines: a header (everything but the stencils), then one line
        per stencil, sorted by name, so that start-up parses only the header
        and a stencil is read and parsed when first used: the header's
        `index` has the name and byte offset of every INDEX_EVERY-th line
        (offsets from the first stencil line; the last one is where the
        lines end), so a lookup reads one block of lines.
        Byte-identical for identical builds."""
        import json

        lines = [json.dumps([name, *_row(self.stencils[name])]) for name in sorted(self.stencils)]
        names, offsets, offset = [], [], 0
        for number, line in enumerate(lines):
            if number % INDEX_EVERY == 0:
                names.append(line[2 : line.index('"', 2)])
                offsets.append(offset)
            offset += len(line) + 1  # json.dumps writes ASCII: one byte a character
        header = {
            "generated": "by `python -m copyjit stencils --build` from copyjit/uops.py and "
                         "copyjit/c/; do not edit",
            "python": self.python,
            "target": self.target,
            "compiler": self.compiler,
            "layout": self.layout,
            "symbols": list(self.symbols),
            "data": self.data.hex(),
            "runtime": {name: _row(s) for name, s in self.runtime.items()},
            "index": {"names": names, "offsets": [*offsets, offset]},
            "records": _digest(self.render_records()),
        }
        return "\n".join([json.dumps(header), *lines]) + "\n"

    def render_records(self) -> bytes:
        """The stencils as the binary file a process reads them from
        (_Records: the JSON lines cost ~40 µs a stencil at first use, a
        millisecond or more of a fresh process's first trace). Byte-identical
        for identical builds."""
        import hashlib
        import struct

        symbols = {name: number for number, name in enumerate(self.symbols)}
        kinds, values = {k: i for i, k in enumerate(HoleKind)}, {v: i for i, v in enumerate(HoleValue)}
        names = sorted(self.stencils)
        slots = 1 << (2 * len(names)).bit_length()  # at most half full
        hashes, offsets = [0] * slots, [0] * slots
        body = bytearray()
        head, hole_format = struct.Struct(_HEAD), struct.Struct(_HOLE)
        start = head.size + 8 * slots
        for name in names:
            stencil, encoded = self.stencils[name], name.encode()
            slot = _home(_hash(encoded), slots)
            while offsets[slot]:
                slot = (slot + 1) & (slots - 1)
            hashes[slot], offsets[slot] = _hash(encoded), start + len(body)
            body += struct.pack("<H", len(encoded)) + encoded
            body += struct.pack("<I", len(stencil.code)) + stencil.code
            body += struct.pack("<H", len(stencil.holes))
            for hole in stencil.holes:
                symbol = symbols[hole.symbol] if hole.symbol else NO_SYMBOL
                body += hole_format.pack(hole.offset, kinds[hole.kind], values[hole.value], symbol,
                                         hole.addend)
        table = struct.pack(f"<{slots}I{slots}I", *hashes, *offsets)
        digest = hashlib.sha256(table + body).digest()[:16]
        return head.pack(_MAGIC, digest, slots) + table + bytes(body)

    @classmethod
    def from_jsonl(cls, text: str) -> Table:
        header, _, rest = text.partition("\n")
        lines = rest.encode()
        return cls.from_header(header, lambda start, stop: lines[start:stop])

    @classmethod
    def read(cls, path: str) -> Table:
        """The table in the file at `path`; the stencil lines are read when a
        stencil is first used (a process that compiles nothing needs none),
        a block of them at a time: a trace uses a few dozen of thousands,
        and reading all 640 KB into fresh memory took ~1 ms (of page faults),
        mapping the file ~0.6 ms (mostly importing mmap)."""
        with open(path, "rb") as file:
            header = file.readline()
            seen = _identity(os.fstat(file.fileno()))
        records = os.path.splitext(path)[0] + ".stencils"

        def read(start: int, stop: int) -> bytes:
            descriptor = os.open(path, os.O_RDONLY)  # not kept: a process's descriptors are its own
            try:
                # The header's offsets hold for this file only: one replaced
                # since (copyjit upgraded under a running program) is refused.
                if _identity(os.fstat(descriptor)) != seen:
                    raise RuntimeError(f"copyjit: {path} changed since this process read its header")
                return os.pread(descriptor, stop - start, len(header) + start)
            finally:
                os.close(descriptor)

        return cls.from_header(header.decode(), read, records)

    @classmethod
    def from_header(cls, line: str, read: Read, records: str | None = None) -> Table:
        """The table from its header line; `read(start, stop)` gives the
        bytes of the stencil lines from offset `start` to `stop`. With
        `records`, the stencils are read from that binary file (its
        render_records) when it is there, else from the lines."""
        header = _loads(line.rstrip("\n"))
        symbols = tuple(header["symbols"])
        stencils: Mapping[str, Stencil] = _LazyStencils(read, header["index"]["names"],
                                                        header["index"]["offsets"])
        if records is not None and "records" in header:
            stencils = _Records(records, header["records"], symbols, stencils)
        return cls(
            python=header["python"],
            target=header["target"],
            compiler=header["compiler"],
            layout=header["layout"],
            data=bytes.fromhex(header["data"]),
            symbols=symbols,
            stencils=stencils,
            runtime={name: _stencil(name, code, holes) for name, (code, holes) in header["runtime"].items()},
        )


# The binary stencils (Table.render_records): a head (_HEAD), a hash table
# of `slots` record offsets (open addressing, linear probing; 0: empty)
# after the names' hashes, then the records. A record: u16 name length, the
# name, u32 code length, the code, u16 hole count, the holes (_HOLE:
# offset, kind and value as their indices in HoleKind and HoleValue, the
# symbol's index in the table's symbols or NO_SYMBOL, addend).
_MAGIC = b"copyjit\x01"
_HEAD = "<8s16sI"  # magic, digest (of the rest; the table's header has it too), slots
_HOLE = "<IBBHq"
NO_SYMBOL = 0xFFFF


def _hash(name: bytes) -> int:
    """A 32-bit hash that is the same in every process (hash() of bytes is
    not), with nothing to import (binascii.crc32 cost ~0.3 ms, the first
    time); a slot is its top bits. (The remainder alone, whose low bits a
    slot was, hardly depends on two bytes of every four of a name: 9
    probes a lookup on average, up to 181, against 1.5 and 16.)"""
    remainder = int.from_bytes(name, "little") % 4294967291  # the largest 32-bit prime
    return remainder * 2654435761 & 0xFFFF_FFFF  # Fibonacci hashing: 2**32 / the golden ratio


def _home(hashed: int, slots: int) -> int:
    """The first slot to look in, of a power of two: the hash's top bits."""
    return hashed >> (33 - slots.bit_length())


def _digest(records: bytes) -> str:
    return records[8:24].hex()


class _Found(Mapping[str, Stencil]):
    """Stencils made from their stored form at the first lookup of each
    (`_find`), and kept."""

    def __init__(self) -> None:
        self._made: dict[str, Stencil] = {}

    def _find(self, name: str) -> Stencil | None:
        raise NotImplementedError

    def __getitem__(self, name: str) -> Stencil:
        stencil = self._made.get(name)
        if stencil is None:
            stencil = self._find(name)
            if stencil is None:
                raise KeyError(name)
            self._made[name] = stencil
        return stencil


class _Records(_Found):
    """The stencils of a binary file (Table.render_records), read whole at
    the first lookup (~0.3 ms, one read) and each parsed at its first use
    (a few µs); the header's digest must be the file's, else the file is of
    another build. Without the file, the JSON lines (`lines`)."""

    def __init__(self, path: str, digest: str, symbols: tuple[str, ...],
                 lines: Mapping[str, Stencil]) -> None:
        super().__init__()
        self._path, self._digest, self._symbols, self._lines = path, digest, symbols, lines
        self._data: bytes | None = None
        self._absent = False  # no file: the lines
        self._slots: Any = None  # memoryview of u32: the hashes, then the offsets
        self._u16: Any = None  # struct.Structs, made at the first lookup
        self._u32: Any = None
        self._hole: Any = None

    def load(self) -> None:
        """Read the file, if not yet (if it is not there: the lines)."""
        if self._data is not None or self._absent:
            return
        import struct  # (not at start-up, which reads no stencil: ~0.3 ms)

        try:
            with open(self._path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            self._absent = True
            return
        head = struct.Struct(_HEAD)
        magic, digest, slots = head.unpack_from(data)
        if magic != _MAGIC or digest.hex() != self._digest:
            raise RuntimeError(f"copyjit: {self._path} is not of the build its table's header describes")
        self._slots = memoryview(data)[head.size : head.size + 8 * slots].cast("I")
        self._u16, self._u32, self._hole = struct.Struct("<H"), struct.Struct("<I"), struct.Struct(_HOLE)
        self._data = data

    def _find(self, name: str) -> Stencil | None:
        self.load()
        data = self._data
        if data is None:
            return self._lines.get(name)
        at = self._locate(name)
        return None if at is None else self._parse(name, data, at)

    def rows(self, name: str) -> tuple[bytes, list[Row]] | None:
        """Table.rows's, from the file (None: no file, or no such stencil)."""
        self.load()
        data = self._data
        if data is None:
            return None
        at = self._locate(name)
        if at is None:
            return None
        code, rows = self._record(data, at)
        kinds, values = _KINDS, _VALUES
        return code, [(offset, kinds[kind], values[value], symbol, addend)
                      for offset, kind, value, symbol, addend in rows]

    def _locate(self, name: str) -> int | None:
        """Where stencil `name`'s record goes on after its name."""
        data = self._data
        assert data is not None
        encoded = name.encode()
        wanted, slots, size = _hash(encoded), self._slots, len(encoded)
        mask = len(slots) // 2 - 1
        slot = _home(wanted, mask + 1)
        while True:
            at: int = slots[mask + 1 + slot]
            if not at:
                return None
            if slots[slot] == wanted and self._u16.unpack_from(data, at)[0] == size \
                    and data[at + 2 : at + 2 + size] == encoded:
                return at + 2 + size
            slot = (slot + 1) & mask

    def _record(self, data: bytes, at: int) -> tuple[bytes, Iterator[tuple[int, int, int, int, int]]]:
        """The code and the holes as stored (kinds, values and symbols by number)."""
        (size,) = self._u32.unpack_from(data, at)
        code = data[at + 4 : at + 4 + size]
        at += 4 + size
        (count,) = self._u16.unpack_from(data, at)
        return code, self._hole.iter_unpack(data[at + 2 : at + 2 + 16 * count])

    def _parse(self, name: str, data: bytes, at: int) -> Stencil:
        code, rows = self._record(data, at)
        kinds, values, symbols = _KINDS, _VALUES, self._symbols
        holes = tuple(Hole(offset, kinds[kind], values[value],
                           symbols[symbol] if symbol != NO_SYMBOL else "", addend)
                      for offset, kind, value, symbol, addend in rows)
        return Stencil(name, code, holes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _row(stencil: Stencil) -> list[Any]:
    return [stencil.code.hex(), [h.as_tuple() for h in stencil.holes]]


def _stencil(name: str, code: str, holes: list[list[Any]]) -> Stencil:
    return Stencil(name, bytes.fromhex(code), tuple(Hole.from_tuple(tuple(h)) for h in holes))


class _JSONContext:
    """The settings json.loads gives the scanner (JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN and Infinity; the table has none


_scan: Callable[[str, int], tuple[Any, int]] | None
try:  # CPython's JSON scanner, which json.loads uses
    from _json import make_scanner
except ImportError:
    _scan = None
else:
    _scan = make_scanner(_JSONContext())  # type: ignore[arg-type]


def _loads(line: str) -> Any:
    """json.loads(line) without importing json, which imports re: ~10 ms of
    start-up, to read one header line. Anything unusual goes to json.loads."""
    if _scan is not None:
        try:
            value, end = _scan(line, 0)
        except StopIteration:
            end = -1
        if end == len(line):
            return value
    import json

    return json.loads(line)


class _LazyStencils(_Found):
    """Stencils parsed from their JSON lines on first use: a trace uses a few
    dozen of the thousands, and a process that compiles nothing needs none.
    The lines are sorted by name; the index (see Table.render) says which
    block of them holds a name, and each block is read once."""

    def __init__(self, read: Read, names: list[str], offsets: list[int]) -> None:
        super().__init__()
        self._read = read
        self._names, self._offsets = names, offsets  # of the first line of each block, then the end
        self._blocks: dict[int, bytes] = {}

    def _block(self, number: int) -> bytes:
        block = self._blocks.get(number)
        if block is None:
            block = self._blocks[number] = self._read(self._offsets[number], self._offsets[number + 1])
        return block

    def _line(self, name: str) -> bytes | None:
        """The line of stencil `name`; each is `["name", "code", [holes]]`."""
        names = self._names
        low, high = 0, len(names)  # bisect.bisect_right(names, name), without bisect
        while low < high:
            middle = (low + high) // 2
            if names[middle] <= name:
                low = middle + 1
            else:
                high = middle
        if low == 0:
            return None  # before the first line
        block = self._block(low - 1)
        start = b'["' + name.encode() + b'", '
        if not block.startswith(start):
            found = block.find(b"\n" + start)
            if found < 0:
                return None
            block = block[found + 1 :]
        return block[: block.find(b"\n")]

    def _find(self, name: str) -> Stencil | None:
        line = self._line(name)
        if line is None:
            return None
        _, code, holes = _loads(line.decode())
        return _stencil(name, code, holes)

    def __iter__(self) -> Iterator[str]:
        for number in range(len(self._names)):
            for line in self._block(number).splitlines():
                yield line[2 : line.index(b'"', 2)].decode()

    def __len__(self) -> int:
        return sum(self._block(number).count(b"\n") for number in range(len(self._names)))
