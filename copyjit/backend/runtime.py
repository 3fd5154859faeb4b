"""The per-process part of the backend: arena, GOT, shared data, runtime helpers.

Bootstrapped once, on first use, before any trace exists:

    arena:  [ data pages (R):   stencil data | GOT          ]
            [ code pages (RX):  copyjit_enter | write_code  ]
            [ traces (RX) ... ]

Every external C symbol a stencil uses is resolved here, from the running
interpreter (and the libc it links), into one GOT shared by all traces.
"""

from __future__ import annotations

import _thread  # not threading: its import costs ~2 ms of start-up, for a Lock
import _tracemalloc  # (built in: no start-up cost)
import sys
from _struct import Struct, pack_into  # struct's own code, without the struct module

from copyjit import stencils
from copyjit.backend import memory, native  # native: not ctypes, ~1.5 ms of start-up
from copyjit.stencil import HoleKind, HoleValue, Stencil, Table

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import CodeType

# copyjit.h's structs, as the Python side reads and writes them (checked
# against the compiled layout by check_own_layout).
# trace_cell: the trace's entry address, and its activations in progress
# (over all threads), read by copyjit_enter and copyjit_on_jump.
CELL = Struct("<Qq")
# exit_counter: times taken, and the count at which the JIT judges it (0: never).
EXIT = Struct("<qq")
# entry_totals: native entries and exits, for stats().
TOTALS = Struct("<qq")
# location_record: one per backedge with a trace, all 64-bit fields.
RECORD_FIELDS = ("iterations", "cell", "exits", "exit_count", "totals", "entries", "judge_at", "due",
                 "enclosing")
RECORD = Struct("<" + "q" * len(RECORD_FIELDS))

# reserve_state: the emergency reserve's address (0: released), the times an
# exit released it and the native entries refused while it (or the pool)
# could not be made; the pool's chains of floats and ints, how many of each
# it has, what the activations in progress hold of it, what each holds, and
# how many boxes exits took from it.
IDLE_ITERS = 8  # copyjit.h's COPYJIT_IDLE_ITERS
RESERVE = Struct(f"<QqqQQqqqqQqqQqq{8 * IDLE_ITERS}s")
RESERVE_FIELDS = ("address", "released", "refused", "floats", "ints", "pooled", "held", "per_activation",
                  "taken", "reraisers", "reraisers_pooled", "activations", "reraise_def", "pool_only",
                  "idle_iters_count", "idle_iters")

# watch_state: the epoch of watched dict keys, the dict watcher's id + 1,
# how many keys the set holds and whether it is full, then the set.
WATCH_KEYS = 1024  # copyjit.h's COPYJIT_WATCH_KEYS
WATCH = Struct(f"<Qqqq{8 * WATCH_KEYS}s")
WATCH_FIELDS = ("epoch", "watcher", "count", "full", "keys")

_WORD = Struct("<Q")
METH_O = 0x0008
METH_FASTCALL = 0x0080


class PyMethodDef(native.Structure):
    _fields_ = (
        ("ml_name", native.c_char_p),
        ("ml_meth", native.c_void_p),
        ("ml_flags", native.c_int),
        ("ml_doc", native.c_char_p),
    )


class SymbolNotFound(LookupError):
    pass


def resolve_symbol(name: str) -> int:
    """The address of a C symbol of the running process."""
    try:
        return native.symbol(name)
    except LookupError:
        raise SymbolNotFound(f"copyjit: the running interpreter has no symbol {name!r}") from None


def pow_finite() -> int:
    """copyjit.h's copyjit_pow_finite: glibc's __pow_finite, the core its pow
    calls and returns the result of (setting errno when that is infinite or
    zero), else pow itself."""
    try:
        return native.versioned_symbol("__pow_finite", "GLIBC_2.15")
    except LookupError:
        return resolve_symbol("pow")


_new_cfunction = native.function(resolve_symbol("PyCFunction_NewEx"), native.py_object,
                                 native.c_void_p, native.py_object, native.c_void_p)
_thread_state = native.function(resolve_symbol("PyThreadState_Get"), native.c_void_p)
_raw_calloc = native.function(resolve_symbol("PyMem_RawCalloc"), native.c_void_p, native.c_size_t,
                              native.c_size_t, python=False)
_interpreter_state = native.function(resolve_symbol("PyInterpreterState_Get"), native.c_void_p)
buffer_address = native.address


class LayoutMismatch(RuntimeError):
    """The shipped stencils do not fit the running interpreter's frames."""


def check_layout(layout: dict[str, int]) -> None:
    """Probe a live frame: stencils built against other headers would
    silently corrupt frames (a later 3.13.x loads the same table)."""
    marker = object()
    frame = sys._getframe()
    raw = native.word(id(frame) + layout["frame_object.f_frame"])
    slot = frame.f_code.co_varnames.index("marker")

    def at(offset: int) -> int:
        return native.word(raw + offset)

    tstate = _thread_state() or 0
    # Read here, not through a Python helper, whose frame would be the current one.
    current = native.c_void_p.from_address(tstate + layout["tstate.current_frame"]).value
    if not raw or at(layout["frame.f_executable"]) != id(frame.f_code) or \
            at(layout["frame.localsplus"] + 8 * slot) != id(marker) or current != raw:
        raise LayoutMismatch(
            f"copyjit: its stencils were built for CPython {stencils.table().python} and do not "
            f"fit the frames of this {sys.version.split()[0]}; rebuild them with "
            "`python -m copyjit stencils --build`"
        )


def check_monitoring_layout(layout: dict[str, int], tool: int, name: str, event: int,
                            code: CodeType | None) -> None:
    """copyjit_on_jump reads which tools are in use and their events from the
    interpreter's structs. Called once `tool` is in use under the object
    `name` with `event` set for it (on `code`, or globally), to check that
    it finds them there."""
    interp = _interpreter_state() or 0
    names = interp + layout["interp.monitoring_tool_names"]
    if code is None:
        tools = interp + layout["interp.monitors"]
    else:
        data = native.word(id(code) + layout["code._co_monitoring"])
        tools = data + layout["co_monitoring.local_monitors"] if data else 0
    if native.word(names + 8 * tool) != id(name) or not tools or \
            not native.c_uint8.from_address(tools + event).value >> tool & 1:
        raise LayoutMismatch(
            f"copyjit: its stencils were built for CPython {stencils.table().python} and do not "
            f"fit the monitoring state of this {sys.version.split()[0]}; rebuild them with "
            "`python -m copyjit stencils --build`"
        )


def check_own_layout(layout: dict[str, int]) -> None:
    """The struct formats above describe copyjit.h's structs as compiled."""
    expected = {"cell.trace": 0, "cell.active": 8, "cell.size": CELL.size,
                "exit.taken": 0, "exit.limit": 8, "exit.size": EXIT.size,
                "totals.entries": 0, "totals.exits": 8, "totals.size": TOTALS.size,
                "record.size": RECORD.size,
                **{f"reserve.{field}": 8 * i for i, field in enumerate(RESERVE_FIELDS)},
                "reserve.size": RESERVE.size,
                **{f"watch.{field}": 8 * i for i, field in enumerate(WATCH_FIELDS)},
                "watch.size": WATCH.size,
                **{f"record.{field}": 8 * i for i, field in enumerate(RECORD_FIELDS)}}
    wrong = {name: (offset, layout.get(name)) for name, offset in expected.items()
             if layout.get(name) != offset}
    if wrong:
        raise LayoutMismatch(f"copyjit: runtime.py's structs disagree with copyjit.h "
                             f"(name: (python, C)): {wrong}; rebuild the stencils")


class Runtime:
    def __init__(self, table: Table) -> None:
        check_layout(table.layout)
        check_own_layout(table.layout)
        self.table = table
        self.layout = table.layout
        self.arena = memory.Arena()
        # copyjit.h's `copyjit_reserve`, the process's one: unmapped at first
        # (runtime.c maps it at the first native entry).
        self.reserve = bytearray(RESERVE.size)
        # copyjit.h's `copyjit_watch`: never freed, since the dict watcher
        # writes it as long as dicts change, to the interpreter's very end.
        self.watching = _raw_calloc(1, WATCH.size)
        if not self.watching:
            raise MemoryError("copyjit: no memory for the dict watcher's state")
        # Stencils call some runtime functions (copyjit_dealloc_rax): those are
        # placed first, so that the GOT can hold their addresses too.
        self.functions = self._lay_out_functions(table.runtime)
        own = {"copyjit_reserve": buffer_address(self.reserve),
               "copyjit_watch": self.watching, "copyjit_pow_finite": pow_finite(), **self.functions}
        self.symbols = {name: own.get(name) or resolve_symbol(name) for name in table.symbols}
        self._place_data()
        self._write_functions(table.runtime)
        self._install_writer()
        self._method = PyMethodDef(b"copyjit_trace", self.functions["copyjit_enter"], METH_O, None)
        self._frame_defs: dict[str, PyMethodDef] = {}
        self._on_jump = PyMethodDef(b"copyjit_on_jump", self.functions["copyjit_on_jump"],
                                    METH_FASTCALL, None)
        # Raises its `self` when called: the CALL that raised inside a trace
        # re-executes in the interpreter with this in place of the callable.
        self.reraise_def = PyMethodDef(b"copyjit_reraise", self.functions["copyjit_reraise"],
                                       METH_FASTCALL, None)
        at = 8 * RESERVE_FIELDS.index("reraise_def")  # for the pool's reraisers (copyjit.h)
        self.reserve[at:at + 8] = native.addressof(self.reraise_def).to_bytes(8, "little")
        self.keys_version = native.function(self.functions["copyjit_keys_version"], native.c_uint32,
                                            native.py_object)
        self.key_index = native.function(self.functions["copyjit_key_index"], native.c_ssize_t,
                                         native.py_object, native.py_object)
        # watch(dict, key): a change of `key` in `dict` changes the epoch
        # that loops with loads moved before them check (opt/licm.py).
        self._watch = native.function(self.functions["copyjit_watch_dict_key"], native.c_int,
                                      native.py_object, native.py_object, native.c_void_p)
        self.instance_index = native.function(self.functions["copyjit_instance_index"], native.c_ssize_t,
                                              native.py_object, native.py_object, native.c_int)
        self.shared_keys_version = native.function(self.functions["copyjit_shared_keys_version"],
                                                   native.c_uint32, native.py_object, native.py_object)
        # 1 if copyjit.h's direct uses of the float freelist, the reference
        # tracer and tracemalloc's flag (given: 0 or 1) fit this interpreter.
        self.check_floats = native.function(self.functions["copyjit_check_floats"], native.c_int,
                                            native.c_int)
        if not self.check_floats(int(_tracemalloc.is_tracing())):
            raise LayoutMismatch(
                f"copyjit: its stencils were built for CPython {table.python} and do not fit the float "
                f"freelist or the tracers of this {sys.version.split()[0]}; rebuild them with "
                "`python -m copyjit stencils --build`"
            )
        self.call_in_frame = native.function(self.functions["copyjit_call_in_frame"], native.py_object,
                                             native.c_void_p, native.c_void_p, native.py_object,
                                             native.py_object)
        # Freed traces still running: (cell, address, size), released by reap().
        self._zombies: list[tuple[bytearray, int, int, object]] = []
        self._zombies_lock = _thread.allocate_lock()  # held by the reap under way

    def watch(self, namespace: dict[str, object], key: str) -> bool:
        """Count every later change of `key` in `namespace` in the epoch
        (copyjit.h's watch_state); False if it cannot be watched (another
        tool took every dict watcher CPython has)."""
        try:
            return bool(self._watch(namespace, key, self.functions["copyjit_on_dict_event"]) == 0)
        except (RuntimeError, ValueError):  # (ctypes raises what PyDict_AddWatcher or PyDict_Watch set)
            return False

    def watch_epoch(self) -> int:
        """The epoch of watched keys: it changes when one may have changed."""
        return native.word(self.watching)

    def reserve_counts(self) -> tuple[bool, int, int]:
        """Whether the emergency reserve is mapped, how often an exit
        released it, and how many native entries were refused meanwhile."""
        address, released, refused, *_ = RESERVE.unpack(self.reserve)
        return address != 0, released, refused

    def pool_counts(self) -> dict[str, int]:
        """The pool's state (copyjit.h): boxes pooled (of each kind), held by
        the activations in progress, held by each, taken by exits; the
        reraisers pooled, and the activations in progress."""
        fields = dict(zip(RESERVE_FIELDS, RESERVE.unpack(self.reserve), strict=True))
        names = ("pooled", "held", "per_activation", "taken", "reraisers_pooled", "activations")
        return {name: fields[name] for name in names}

    def idle_iterators(self) -> list[object]:
        """The list iterators traces keep idle for their next iter() of a
        list (copyjit.h's `idle_iters`), each as a new reference: while one
        is held, no trace makes it again."""
        count = dict(zip(RESERVE_FIELDS, RESERVE.unpack(self.reserve), strict=True))["idle_iters_count"]
        base = buffer_address(self.reserve) + 8 * RESERVE_FIELDS.index("idle_iters")
        return [native.py_object.from_address(base + 8 * k).value for k in range(count)]

    def pool_only(self, on: bool) -> None:
        """Make exits box from the pool alone, as when memory and the reserve
        are both gone (tests: the pool's boxes must be right)."""
        at = 8 * RESERVE_FIELDS.index("pool_only")
        self.reserve[at:at + 8] = int(on).to_bytes(8, "little")

    def hold_for_exits(self, boxes: int) -> None:
        """Make every activation of native code hold at least `boxes` of the
        pool: what a new trace's exits may take from it."""
        at = 8 * RESERVE_FIELDS.index("per_activation")
        if boxes > int.from_bytes(self.reserve[at:at + 8], "little", signed=True):
            self.reserve[at:at + 8] = boxes.to_bytes(8, "little", signed=True)

    def release(self, cell: bytearray, address: int, size: int, keep: object = None) -> None:
        """Free a trace's code once no call of it is in progress; until then
        keep `keep` alive too (the objects the code points at)."""
        self._zombies.append((cell, address, size, keep))  # (atomic: no lock, see reap)
        self.reap()

    def reap(self) -> None:
        """Free the code of freed traces that nothing runs any more.

        A trace is freed by its __del__ or its code's weak reference
        callback, which run wherever the garbage collector does: inside
        another reap, or while the arena's lock is held (a write of code
        allocates). Waiting for either lock there deadlocked; so a reap
        that finds one taken leaves the zombies to the next reap."""
        if not self._zombies or not self._zombies_lock.acquire(False):
            return
        try:
            zombies, self._zombies = self._zombies, []  # a release meanwhile goes to the new list
            later = []
            for zombie in zombies:
                cell, address, size, _ = zombie
                # Still running somewhere, or the arena busy (this thread's
                # allocation or free, under the collector; or another's).
                if CELL.unpack(cell)[1] or not self.arena.free(address, size, wait=False):
                    later.append(zombie)
            self._zombies.extend(later)
        finally:
            self._zombies_lock.release()

    def _place_data(self) -> None:
        data = self.table.data + bytes(-len(self.table.data) % 8)
        got = b"".join(_WORD.pack(self.symbols[name]) for name in self.table.symbols)
        self.data_address = self.arena.reserve_pages(len(data) + len(got))
        got_address = self.data_address + len(data)
        # By symbol number (a Row's): its GOT slot, and its address.
        self.got = [got_address + 8 * i for i in range(len(self.table.symbols))]
        self.addresses = [self.symbols[name] for name in self.table.symbols]
        memory.write_unsynchronized(self.data_address, data + got, memory.PROT_READ)

    def fixed_value(self, kind: HoleKind, value: HoleValue, symbol: int, addend: int) -> int | None:
        """S + A for a hole (a Row's fields but the offset) whose value is
        the same in every copy, else None."""
        if kind is HoleKind.GOT_REL32:
            return self.got[symbol] + addend
        if value is HoleValue.SYMBOL:
            return self.addresses[symbol] + addend
        if value is HoleValue.DATA:
            return self.data_address + addend
        return None

    def _lay_out_functions(self, functions: Mapping[str, Stencil]) -> dict[str, int]:
        """Reserve the runtime functions' pages: their addresses, by name."""
        self._functions_size = sum(memory.round_up(len(s.code), 16) for s in functions.values())
        self._functions_base = base = self.arena.reserve_pages(self._functions_size)
        addresses = {}
        for name, stencil in functions.items():
            addresses[name] = base
            base += memory.round_up(len(stencil.code), 16)
        return addresses

    def _write_functions(self, functions: Mapping[str, Stencil]) -> None:
        code = bytearray()
        for name, stencil in functions.items():
            code += bytes(self.functions[name] - self._functions_base - len(code))
            code += self.patch_fixed(stencil, self.functions[name])
        memory.write_unsynchronized(self._functions_base, bytes(code), memory.PROT_READ | memory.PROT_EXEC)

    def patch_fixed(self, stencil: Stencil, address: int) -> bytes:
        """The stencil's code at `address` with every fixed hole patched."""
        code = bytearray(stencil.code)
        for offset, kind, what, symbol, addend in self.table.numbered(stencil.holes):
            value = self.fixed_value(kind, what, symbol, addend)
            if value is None and what is HoleValue.CODE:
                value = address + addend
            if value is not None:
                write_hole(code, offset, kind, value, address)
        return bytes(code)

    def _install_writer(self) -> None:
        write_code = native.function(  # as PYFUNCTYPE: the GIL stays held
            self.functions["copyjit_write_code"],
            native.c_int, native.c_void_p, native.c_char_p, native.c_size_t, native.c_size_t,
        )
        page = memory.PAGE_SIZE

        def write(address: int, data: bytes) -> None:
            if write_code(address, data, len(data), page):
                raise OSError(native.get_errno(), f"copyjit: cannot write code at {address:#x}")

        self.arena.writer = write

    def jump_callback(self, handler: object, counters: dict[int, bytearray], threshold: int) -> object:
        """A builtin for sys.monitoring JUMP events that counts cold backedges
        in `counters` and calls `handler` for the rest, never letting an
        exception out (see copyjit_on_jump in runtime.c)."""
        return _new_cfunction(native.addressof(self._on_jump), (handler, counters, threshold), None)

    def frame_functions(self, unbound: object) -> dict[str, Callable[..., object]]:
        """objects.c's builtins that read and write a live frame (for
        copyjit/trace/frames.py), by name: read, write, stack, depth, push,
        drop; an empty slot reads (and pushes) as `unbound`."""
        made = {}
        for name in ("read", "write", "stack", "depth", "push", "drop"):
            definition = self._frame_defs.get(name)
            if definition is None:  # (kept: the builtins point at them)
                function = f"copyjit_frame_{name}"
                definition = self._frame_defs[name] = PyMethodDef(
                    function.encode(), self.functions[function], METH_FASTCALL, None)
            made[name] = _new_cfunction(native.addressof(definition), unbound, None)
        return made

    def reraiser(self, exception: BaseException) -> object:
        """A builtin that raises `exception` when called (see copyjit_reraise)."""
        return _new_cfunction(native.addressof(self.reraise_def), exception, None)

    def entry_function(self, cell: bytearray) -> object:
        """A builtin function whose C implementation enters the trace in `cell`."""
        return _new_cfunction(native.addressof(self._method), cell, None)


def write_hole(code: bytearray, offset: int, kind: HoleKind, value: int, base: int) -> None:
    """Patch S + A (`value`) into `code`, which will live at `base`."""
    if kind is HoleKind.ABS64:
        pack_into("<Q", code, offset, value & 0xFFFF_FFFF_FFFF_FFFF)
    elif kind is HoleKind.ABS32S:
        pack_into("<i", code, offset, value)  # (struct.error when it does not fit)
    else:
        displacement = value - (base + offset)
        if not -(1 << 31) <= displacement < 1 << 31:
            raise OverflowError(f"copyjit: rel32 displacement {displacement:#x} out of range")
        pack_into("<i", code, offset, displacement)


_lock = _thread.allocate_lock()
_the_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, bootstrapped on first use (once, even if two
    threads ask at the same time)."""
    return _the_runtime or _bootstrap()


def started() -> Runtime | None:
    """The process's runtime if it was bootstrapped, without doing so."""
    return _the_runtime


def _bootstrap() -> Runtime:
    global _the_runtime
    with _lock:
        if _the_runtime is None:
            _the_runtime = Runtime(stencils.table())
        return _the_runtime
