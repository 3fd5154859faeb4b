"""Recording one iteration of a hot loop.

The recorder runs one iteration of the loop for real, from the loop head
(`dst`) to the backedge (`src`), on the frame's values, performing each
bytecode with Python's own operations (so its semantics are CPython's and
its side effects happen once), and writes down what happened as a list of
`Op`s: the path taken, the kind of every value and a guard, with a
`Snapshot`, wherever the next run could differ.

Kinds of values: "i" an int that fits 64 bits and "f" a float, both kept
unboxed by the trace; "o" an object the trace holds a reference to; "n" the
NULL that CALL's stack layout has in place of a missing `self`.

When the iteration is done, the locals it changed are written to the frame
and CPython jumps to `dst` as it was about to. When recording stops early
(`Abort`), the frame is handed back at the instruction that stopped it, with
every effect so far in place: the interpreter executes that instruction next.
"""

from __future__ import annotations

import math
import sys
import types

from copyjit import native
from copyjit.backend.runtime import runtime
from copyjit.trace import frames
from copyjit.trace.depth import as_program
from copyjit.trace.ir import Abort, BridgeStart, InnerCall, Op, Recording, Snapshot
from copyjit.trace.record_base import NULL, fits, kind_of
from copyjit.trace.record_inline import InlineOps

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Final

    from copyjit.trace.inner import Decoded, InnerLookup  # Decoded: what copyjit.trace.bytecode decodes

__all__ = ["Abort", "BridgeStart", "InnerCall", "Op", "Recording", "Snapshot", "record"]

_OWN_FILES: Final = __file__.rsplit("/trace/", 1)[0] + "/"  # copyjit's source files
# ... and the names the modules compiled by mypyc give their functions'
# traceback entries: their paths at the build ("copyjit/trace/recorder.py").
_OWN_COMPILED: Final = frozenset(native.source(module, "copyjit") for module in native.MODULES)
# Calls made on unboxed numbers: callable -> (uop suffix, argument kinds).
_MATH: Final[dict[int, tuple[str, tuple[str, ...]]]] = {
    id(math.sqrt): ("SQRT", ("f",)), id(math.sin): ("SIN", ("f",)), id(math.cos): ("COS", ("f",)),
    id(math.exp): ("EXP", ("f",)), id(math.log): ("LOG", ("f",)),
    id(abs): ("ABS", ("f", "i")), id(min): ("MIN", ("ff", "ii")), id(max): ("MAX", ("ff", "ii")),
}
# Callables that look at their caller's frame: inside a trace its unboxed
# locals are not written back yet, so they would see stale values.
_FRAME_READERS: Final = frozenset(id(f) for f in (locals, vars, dir, eval, exec, globals, breakpoint,
                                                  __import__, __import__("sys")._getframe))


class _Recorder(InlineOps):
    """The whole recorder: RecorderBase's machinery, NumberOps' arithmetic
    and control, InlineOps' calls recorded through, and here globals,
    attributes, containers and calls."""

    # --- globals and attributes ---------------------------------------------

    def op_LOAD_GLOBAL(self, ins: Decoded) -> int:
        name = self.code.co_names[ins.arg >> 1]  # type: ignore[operator]
        frame_globals, frame_builtins = frames.read_globals(self.raw)
        rt = runtime()
        version = rt.keys_version(frame_globals)
        if not version:
            raise Abort("globals without a keys version")
        index = rt.key_index(frame_globals, name)
        # A loop that runs code may load it once, before the loop (opt/licm.py),
        # if every change of it is seen: adding it to the globals shadows a builtin.
        self.watch(frame_globals, name)
        if index >= 0:
            concrete = frame_globals[name]
            op = Op("global", "o", arg=(index, version), snapshot=self.snapshot())
        else:
            builtins_version = rt.keys_version(frame_builtins)
            index = rt.key_index(frame_builtins, name)
            if not builtins_version or index < 0:
                raise Abort(f"the global {name!r} is not defined")
            concrete = frame_builtins[name]
            self.watch(frame_builtins, name)
            op = Op("builtin", "o", arg=(index, version, builtins_version), snapshot=self.snapshot())
        self.push(self.emit(op), concrete)
        if ins.arg & 1:  # type: ignore[operator]
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    @staticmethod
    def watch(namespace: dict[str, Any], name: str) -> None:
        """Watch `name` in `namespace` (opt/licm_code.py moves loads out of
        loops that run code, trusting every change of it to be seen)."""
        if not runtime().watch(namespace, name):
            raise Abort("no dict watcher left for copyjit (other tools took CPython's)")

    def op_STORE_GLOBAL(self, ins: Decoded) -> int:
        name = self.code.co_names[ins.arg]  # type: ignore[index]
        frame_globals, _ = frames.read_globals(self.raw)
        rt = runtime()
        version = rt.keys_version(frame_globals)
        if not version or rt.key_index(frame_globals, name) < 0:
            raise Abort(f"a store to the global {name!r}, which is not defined yet")
        if self.kind(self.stack[-1][0]) == "n":
            raise Abort("storing NULL")
        self.emit(Op("guard_globals", arg=version, snapshot=self.snapshot()))  # the key is still there
        boxed = self.box_on_stack(len(self.stack) - 1)
        self.emit(Op("store_global", args=(boxed,), arg=self.keep(name)))
        _, concrete = self.pop()
        self.release(boxed)
        frame_globals[name] = concrete
        return self.following[ins.offset]

    def op_LOAD_ATTR(self, ins: Decoded) -> int:
        name = self.code.co_names[ins.arg >> 1]  # type: ignore[operator]
        method = bool(ins.arg & 1)  # type: ignore[operator]
        owner, concrete = self.stack[-1]
        if self.kind(owner) != "o":
            raise Abort(f"attribute {name!r} of an unboxed {type(concrete).__name__}")
        known = self.guard_type(owner, concrete)
        if known is types.ModuleType:
            return self._module_attribute(ins, name, method, owner, concrete)
        version = self._type_version(known)
        descriptor = _class_attribute(known, name)
        self.emit(Op("guard_version", args=(owner,), arg=version, snapshot=self.snapshot()))
        if method and isinstance(descriptor, (types.FunctionType, types.MethodDescriptorType)) and \
                frames.generic_getattr(known) and self._class_wins(owner, concrete, name):
            # A method: the function itself (constant while the type's
            # version holds) with the owner as `self`. (Where an instance
            # may have an attribute of that name, the generic lookup below
            # makes a bound method, or finds the instance's attribute.)
            self.pop()
            self.push(self.emit(Op("const_o", "o", arg=self.keep(descriptor)),
                                known=type(descriptor)), descriptor)
            self.push(owner, concrete)
            return self.following[ins.offset]
        if _has_effects(known, descriptor):
            raise Abort(f"attribute {name!r} of {known.__name__} may run code")
        if descriptor is not None and not hasattr(type(descriptor), "__get__") \
                and self._class_wins(owner, concrete, name):
            # A plain class attribute (`b.mass`): constant while the type's
            # version holds, and no instance can shadow it.
            self.pop()
            self.release(owner)
            self.push(self.emit(Op("const_o", "o", arg=self.keep(descriptor)), known=type(descriptor)),
                      descriptor)
            if method:
                self.push(self.emit(Op("null", "n")), NULL)
            return self.following[ins.offset]
        try:
            result = getattr(concrete, name)
        except AttributeError:
            raise Abort(f"attribute {name!r} raised while recording", final=False) from None
        value = self.emit(self._attribute_read(owner, concrete, name))
        self.pop()
        self.release(owner)
        self.push(value, result)
        if method:
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    def op_STORE_ATTR(self, ins: Decoded) -> int:
        """`owner.name = value` into the inline values of an instance whose
        attribute is already set (store_attr, CPython's
        STORE_ATTR_INSTANCE_VALUE); anything else stops the recording."""
        name = self.code.co_names[ins.arg]  # type: ignore[index]
        (owner, concrete), (value, stored) = self.stack[-1], self.stack[-2]
        if self.kind(owner) != "o":
            raise Abort(f"attribute {name!r} set on an unboxed {type(concrete).__name__}")
        if self.kind(value) == "n":
            raise Abort("storing NULL")
        known = self.guard_type(owner, concrete)
        descriptor = _class_attribute(known, name)
        if hasattr(type(descriptor), "__set__") or hasattr(type(descriptor), "__delete__"):
            raise Abort(f"a store to attribute {name!r} of {known.__name__}, which its class's "
                        f"{type(descriptor).__name__} handles")
        index = runtime().instance_index(concrete, name, 1)
        if index < 0:
            raise Abort(f"a store to attribute {name!r} of {known.__name__} not in inline values (a "
                        "__setattr__, a dict of the object's own, or an attribute not set yet)")
        self.emit(Op("guard_version", args=(owner,), arg=self._type_version(known), snapshot=self.snapshot()))
        boxed = self.box_on_stack(len(self.stack) - 2)
        self.emit(Op("store_attr", args=(boxed, owner), arg=(index, known.__basicsize__),
                     snapshot=self.snapshot()))
        self.stack[-2:] = []
        self.release(owner)
        setattr(concrete, name, stored)
        return self.following[ins.offset]

    def _module_attribute(self, ins: Decoded, name: str, method: bool,
                          owner: int, module: Any) -> int:
        rt = runtime()
        namespace = vars(module)
        version, index = rt.keys_version(namespace), rt.key_index(namespace, name)
        if not version or index < 0:
            raise Abort(f"module attribute {name!r} not found")
        self.watch(namespace, name)  # (as op_LOAD_GLOBAL's)
        value = self.emit(Op("attr_module", "o", (owner,), arg=(index, version), snapshot=self.snapshot()))
        self.pop()
        self.release(owner)
        self.push(value, namespace[name])
        if method:
            self.push(self.emit(Op("null", "n")), NULL)
        return self.following[ins.offset]

    def _class_wins(self, owner: int, concrete: object, name: str) -> bool:
        """Whether `concrete.name` finds its class's attribute in every
        iteration the guards let through: the object can hold no attribute
        of its own, or (guard_keys) it keeps them in inline values whose
        keys, guarded unchanged, have no `name`."""
        if not frames.has_instance_dict(type(concrete)):
            return True
        version = runtime().shared_keys_version(concrete, name)
        if not version:
            return False
        self.emit(Op("guard_keys", args=(owner,), arg=version, snapshot=self.snapshot()))
        return True

    def _attribute_read(self, owner: int, concrete: object, name: str) -> Op:
        """The read of an attribute the object holds itself: from its inline
        values (attr_instance: the index and where they are) when it keeps
        them there, else by generic lookup. (Its type's version is guarded,
        and the type has no data descriptor of that name: the object's own
        value is the attribute.)"""
        index = runtime().instance_index(concrete, name, 0)
        if index >= 0:
            where = (index, type(concrete).__basicsize__)
            return Op("attr_instance", "o", (owner,), arg=where, snapshot=self.snapshot())
        return Op("attr", "o", (owner,), arg=self.keep(name), snapshot=self.snapshot())

    @staticmethod
    def _type_version(known: type) -> int:
        version = frames.type_version(known)
        if not version:
            raise Abort(f"type {known.__name__} has no version tag")
        return version

    # --- containers -----------------------------------------------------------

    def op_BINARY_SUBSCR(self, ins: Decoded) -> int:
        (index, i), (seq, container) = self.stack[-1], self.stack[-2]
        if self.kind(seq) != "o" or type(container) not in (list, tuple):
            raise Abort(f"subscript of a {type(container).__name__}")
        if type(i) is not int:
            raise Abort(f"a {type(i).__name__} subscript")
        known = self.guard_type(seq, container)
        number = self.number(index, i)
        if not -len(container) <= i < len(container):  # type: ignore[arg-type]
            raise Abort("an index out of range while recording", final=False)
        name = "subscr_list" if known is list else "subscr_tuple"
        value = self.emit(Op(name, "o", (seq, number), snapshot=self.snapshot()))
        result = container[i]  # type: ignore[index]
        self.pop(), self.pop()
        self.release(seq, index)
        self.push(value, result)
        return self.following[ins.offset]

    def op_UNPACK_SEQUENCE(self, ins: Decoded) -> int:
        count = ins.arg
        assert count is not None
        if not self.stack:
            raise Abort("an instruction that takes values from the loop's own stack")
        seq, container = self.stack[-1]
        if self.kind(seq) != "o" or type(container) not in (list, tuple):
            raise Abort(f"unpacking a {type(container).__name__}")
        if len(container) != count:  # type: ignore[arg-type]
            raise Abort("unpacking a sequence of another length (raises)", final=False)
        known = self.guard_type(seq, container)
        self.emit(Op("guard_size", args=(seq,), arg=count, snapshot=self.snapshot()))
        # Nothing runs between the size guard and the reads: a list cannot change.
        name = "list_item" if known is list else "tuple_item"
        items = [self.emit(Op(name, "o", (seq,), arg=k)) for k in range(count)]
        self.pop()
        self.release(seq)
        for k in reversed(range(count)):  # the first item on top
            self.push(items[k], container[k])  # type: ignore[index]
        return self.following[ins.offset]

    def op_STORE_SUBSCR(self, ins: Decoded) -> int:
        (index, i), (seq, container), (_, concrete) = self.stack[-1], self.stack[-2], self.stack[-3]
        if self.kind(seq) != "o" or type(container) is not list:
            raise Abort(f"item assignment to a {type(container).__name__}")
        if type(i) is not int:
            raise Abort(f"a {type(i).__name__} subscript")
        self.guard_type(seq, container)
        number = self.number(index, i)
        if not -len(container) <= i < len(container):
            raise Abort("an index out of range while recording", final=False)
        boxed = self.box_on_stack(len(self.stack) - 3)
        self.emit(Op("store_subscr_list", args=(boxed, seq, number), snapshot=self.snapshot()))
        self.stack[-3:] = []
        self.release(seq, index)
        container[i] = concrete
        return self.following[ins.offset]

    # --- calls ----------------------------------------------------------------

    def op_CALL(self, ins: Decoded) -> int:
        count = ins.arg
        assert count is not None
        base = len(self.stack) - count - 2  # where the callable is: [callable, self or NULL, args...]
        if base < 0:
            raise Abort("a call whose callable is on the loop's own stack")
        callable_, function = self.stack[base]
        if self.kind(callable_) != "o":
            raise Abort("a call of an unboxed value")
        if id(function) in _FRAME_READERS or (type(function) is type and issubclass(function, super)):
            raise Abort(f"a call of {getattr(function, '__name__', function)!r}, which reads the frame")
        if type(function) is types.MethodType and self.ops[callable_].name == "attr":
            # Looked up in this iteration on an instance with a dict of its
            # own (op_LOAD_ATTR's generic lookup): a new method object every
            # time, which the guard below would never match again. Such a
            # trace leaves there at every iteration, and so would a bridge.
            raise Abort("a call of a method bound afresh at every iteration")
        self.emit(Op("guard_is", args=(callable_,), arg=self.keep(function), snapshot=self.snapshot()))
        values = [entry for entry in self.stack[base + 1:] if self.kind(entry[0]) != "n"]
        if function is len and len(values) == 1 and type(values[0][1]) in (list, tuple, str):
            return self._len(ins, base, values[0])
        if id(function) in _MATH and all(type(c) in (int, float) for _, c in values):
            return self._math(ins, base, function, values)
        inlined = self.inline(ins, base, function)
        if inlined is not None:
            return inlined
        self.no_effects(f"a call of {getattr(function, '__qualname__', type(function).__name__)}")
        if function is list.append and len(values) == 2 and type(values[0][1]) is list:
            return self._append(ins, base, values)
        if function is range and len(values) in (1, 2) and all(kind_of(c) == "i" for _, c in values) \
                and self.instructions[self.following[ins.offset]].opname == "GET_ITER":
            return self._range_iter(ins, base, values)
        for position in range(base + 1, len(self.stack)):
            if self.kind(self.stack[position][0]) != "n":
                self.box_on_stack(position)
        values = [entry for entry in self.stack[base + 1:] if self.kind(entry[0]) != "n"]
        snapshot = self.snapshot(reraise=callable_)
        # arg: where the iteration goes on after the call, and how deep the
        # stack is below its callable (lower.py: op_call's exact exit).
        result_index = self.emit(Op("call", "o", (callable_, *(v for v, _ in values)),
                                    arg=(self.following[ins.offset], base), snapshot=snapshot))
        self.calls += 1
        self.unboxed_to_frame()
        try:
            result = self.call(ins, function, [concrete for _, concrete in values])
        except BaseException as error:  # the program's: raised again by the interpreter at the CALL
            # Without the recorder's own frames, which it passed through.
            tb = error.__traceback__
            while tb is not None and (tb.tb_frame.f_code.co_filename.startswith(_OWN_FILES)
                                      or tb.tb_frame.f_code.co_filename in _OWN_COMPILED):
                tb = tb.tb_next
            error.__traceback__ = tb
            self.stack[base] = (callable_, runtime().reraiser(error))
            self.stop(Abort("a call raised while recording", final=False))
        self.stack[base:] = []
        self.release(callable_, *(v for v, _ in values))
        self.push(result_index, result)
        return self.following[ins.offset]

    def _range_iter(self, ins: Decoded, base: int, values: list[tuple[int, object]]) -> int:
        """`for ... in range(stop)` or `range(start, stop)`: the CALL and the
        GET_ITER after it as one op that makes the iterator, with no range
        object (a nested loop's, made once per iteration of the outer one)."""
        callable_ = self.stack[base][0]
        numbers = [self.number(value, concrete) for value, concrete in values]
        if len(numbers) == 1:
            numbers.insert(0, self.emit(Op("const", "i", arg=0)))
        iterator = iter(range(*(concrete for _, concrete in values)))  # type: ignore[call-overload]
        index = self.emit(Op("range_iter", "o", tuple(numbers), snapshot=self.snapshot()),
                          known=type(iterator))
        self.stack[base:] = []
        self.release(callable_, *(value for value, _ in values))
        self.push(index, iterator)
        return self.following[self.following[ins.offset]]  # after the GET_ITER

    def call(self, ins: Decoded, function: object, args: list[object]) -> object:
        """Make the call being recorded, from the program's frame (see
        copyjit_call_in_frame in copyjit/c/objects.c)."""
        at = frames.instruction_address(self.code, ins.start_offset)
        # With the program's recursion budget, not the JIT's (depth.py): how
        # many frames up the program's is.
        frame: types.FrameType | None = sys._getframe()
        levels = 0
        while frame is not None and frames.raw(frame) != self.raw:
            frame, levels = frame.f_back, levels + 1
        with as_program(levels if frame is not None else None):
            return runtime().call_in_frame(self.raw, at, function, tuple(args))

    def _math(self, ins: Decoded, base: int, function: Any, values: list[tuple[int, object]]) -> int:
        name, signatures = _MATH[id(function)]
        kinds = "".join(kind_of(concrete) for _, concrete in values)
        # math's functions take ints as floats, converted as int.__float__
        # rounds (exact below 2**53); `log` of an int has its own algorithm.
        wanted = kinds if kinds in signatures else None
        if wanted is None and signatures == ("f",) and kinds == "i" and name != "LOG":
            wanted = "f"
        if wanted is None:
            raise Abort(f"{name.lower()}() of {kinds.replace('i', 'int ').replace('f', 'float ').strip()}")
        try:
            result = function(*(concrete for _, concrete in values))
        except (ValueError, OverflowError):
            raise Abort(f"{name.lower()}() raised while recording", final=False) from None
        if not fits(result, wanted[0]):
            raise Abort(f"{name.lower()}() left the 64-bit range while recording", final=False)
        numbers = [self.number(value, concrete) for value, concrete in values]
        numbers = [n if self.kind(n) == wanted[0] else self.emit(Op("to_float", "f", (n,))) for n in numbers]
        callable_ = self.stack[base][0]
        index = self.emit(Op("math", wanted[0], tuple(numbers), arg=name, snapshot=self.snapshot()))
        self.stack[base:] = []
        self.release(callable_, *(value for value, _ in values))
        self.push(index, result)
        return self.following[ins.offset]

    def _len(self, ins: Decoded, base: int, value: tuple[int, object]) -> int:
        seq, container = value
        known = self.guard_type(seq, container)
        index = self.emit(Op("len_str" if known is str else "len", "i", (seq,)))
        callable_ = self.stack[base][0]
        self.stack[base:] = []
        self.release(callable_, seq)
        self.push(index, len(container))  # type: ignore[arg-type]
        return self.following[ins.offset]

    def _append(self, ins: Decoded, base: int, values: list[tuple[int, object]]) -> int:
        (seq, container), (_, concrete) = values
        self.guard_type(seq, container)
        item = self.box_on_stack(len(self.stack) - 1)
        callable_ = self.stack[base][0]
        self.emit(Op("append", args=(seq, item), snapshot=self.snapshot(reraise=callable_)))
        container.append(concrete)  # type: ignore[attr-defined]
        self.stack[base:] = []
        self.release(callable_, seq, item)
        self.push(self.emit(Op("const_o", "o", arg=id(None)), known=type(None)), None)
        return self.following[ins.offset]


def _class_attribute(known: type, name: str) -> object:
    for klass in known.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _has_effects(known: type, descriptor: object) -> bool:
    """Whether a generic attribute lookup on instances of `known` may run code
    (besides plain functions becoming bound methods)."""
    if not frames.generic_getattr(known):  # __getattribute__ or __getattr__ of its own
        return True
    if descriptor is None or type(descriptor) in (types.FunctionType, int, float, str, tuple):
        return False
    return hasattr(type(descriptor), "__get__")


def record(code: CodeType, dst: int, src: int, raw_frame: int,
           bridge: BridgeStart | None = None, inner: InnerLookup | None = None,
           objects: frozenset[int] = frozenset()) -> Recording:
    """Run and record the iteration from `dst` (or the bridge's start) to
    the backedge at `src`; `objects`: local slots to keep as objects."""
    recorder = _Recorder(code, dst, src, raw_frame, bridge, inner)
    recorder.objects = objects
    recording = recorder.run()
    recording.inlining = recorder.inlining or {}
    return recording
