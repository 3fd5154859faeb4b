"""Every uop, declared once.

Everything else is derived from this table: the C source of each stencil
(one variant per choice of machine registers), the names used in dumps, and
the properties the emitter and, later, the optimizer rely on (may it exit,
raise, branch; which operands does it read).

A declaration has:

* ``stack``: boxed values taken from and pushed onto the frame's value stack,
  as ``"inputs -- outputs"`` (CPython's ``bytecodes.c`` notation). A name on
  both sides at the same depth is left in place.
* ``regs``: unboxed values in machine registers, as ``"a:i b:f -- res:f"``
  where ``:i`` is a 64-bit int register, ``:f`` a double register and ``:o``
  an object pointer (in an int register). Each register operand becomes one
  of ``REGISTERS[kind]`` in each variant. Unless its doc says otherwise, a
  uop borrows its ``:o`` inputs and returns new references.
* ``body``: C, run with the inputs bound to local variables, that assigns the
  outputs. It may use ``oparg``, ``operand0``, ``operand1`` (patched holes),
  ``EXIT_IF(cond)`` (guard: leave to the exit target with nothing changed),
  ``ERROR_IF(cond)`` (an exception is set and the stack inputs are already
  released), ``JUMP_IF(cond)`` / ``JUMP()`` (branch to the jump target).

Guards come before effects: a body decides every ``EXIT_IF`` before it
releases an input or writes any state, so an exit resumes an untouched frame.
"""

from __future__ import annotations

import itertools

# Neither re nor textwrap here: lower.py imports this table at the first hot
# loop of every program, and they cost ~8 ms there (re with enum and
# functools). Only `escapes`, for the build and its tests, uses re.

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator

SPILL_SLOTS = 128  # per activation of a trace, on the C stack (see runtime.c)
OPARG_MAX = 2**32 - 1
# A body that indexes by AT_OPARG (copyjit.h) has 8 * oparg as a signed 32-bit displacement.
AT_OPARG_MAX = 2**28 - 1

REGISTERS: dict[str, tuple[str, ...]] = {
    "i": ("i0", "i1", "i2", "i3"),
    "f": ("f0", "f1", "f2", "f3"),
    # An object pointer travels in the int registers: one register file
    # for words, one for doubles, as in the machine.
    "o": ("i0", "i1", "i2", "i3"),
}
C_TYPES = {"i": "intptr_t", "f": "double", "o": "PyObject *"}
# The C type of the machine register an operand of each kind lives in.
REGISTER_TYPES = {"i": "intptr_t", "f": "double", "o": "intptr_t"}


# Calls a body may make that never run Python code, free objects or start
# the GC. Any other call, and any call through a pointer, "escapes".
_NON_ESCAPING = frozenset({
    "if", "while", "for", "switch", "return", "sizeof",  # not calls at all
    "EXIT_IF", "ERROR_IF", "JUMP_IF", "JUMP", "SYNC_SP", "TAIL",
    "Py_NewRef", "Py_XNewRef", "Py_TYPE", "Py_IsTrue", "Py_IsFalse",
    "PyLong_CheckExact", "PyFloat_CheckExact", "PyFloat_AS_DOUBLE",
    "_PyLong_IsCompact", "_PyLong_CompactValue", "_Py_atomic_load_uintptr_relaxed",
    "__builtin_add_overflow", "__builtin_sub_overflow", "__builtin_mul_overflow",
    "__builtin_memcpy",
    "Py_INCREF", "PyList_GET_SIZE", "PyList_GET_ITEM", "PyTuple_GET_SIZE", "PyTuple_GET_ITEM", "AT_OPARG",
    "PyUnicode_GET_LENGTH", "Py_SIZE",
    "DK_UNICODE_ENTRIES", "PyList_SET_ITEM", "PyCell_GET", "PyCell_SET",
    "__builtin_elementwise_sqrt", "__builtin_fabs", "isinf", "isnan", "isfinite",
    "isnormal", "__builtin_copysign", "Py_REFCNT", "__builtin_expect", "copyjit_untraced", "CLOBBER",
})
# C library functions that run no Python code (so calling them does not escape).
PURE_C_FUNCTIONS = frozenset({"sin", "cos", "exp", "log", "pow", "fmod", "floor", "copyjit_pow_finite"})
_NON_ESCAPING |= PURE_C_FUNCTIONS
# Calls that escape but publish the stack depth themselves, when they call out.
_SELF_SYNCING = frozenset({"Py_DECREF", "Py_XDECREF"})
_CALL = r"(\b[A-Za-z_]\w*|[\])])\s*\("
_CAST = r"\s*(const\s+)?((unsigned|signed)\s+)?[A-Za-z_]\w*[\s*]*"
# \w in ASCII: anything else separates words.
_WORD_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_NOT_WORDS = {c: " " for c in range(128) if chr(c) not in _WORD_CHARACTERS}


def _words(text: str) -> frozenset[str]:
    r"""The words of `text`, as re.findall(r"\w+", text) finds them."""
    if not text.isascii():
        import re

        return frozenset(re.findall(r"\w+", text))
    return frozenset(text.translate(_NOT_WORDS).split())


def dedent(text: str) -> str:
    """textwrap.dedent(text), without importing textwrap (and re): the
    common leading whitespace of the lines that have text is removed, and
    lines of whitespace only become empty."""
    if "\n" not in text:  # most bodies
        return text.lstrip(" \t")
    lines = text.split("\n")
    margins = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip(" \t")]
    margin = margins[0] if margins else ""
    for other in margins[1:]:
        while not other.startswith(margin):
            margin = margin[:-1]
    return "\n".join(line.removeprefix(margin) if line.strip(" \t") else "" for line in lines)


def _is_cast(body: str, close: int) -> bool:
    """Whether the `)` at `close` ends a cast such as `(long)` or `(PyObject *)`."""
    depth = 0
    for start in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(body[start], 0)
        if depth == 0:
            import re

            return re.fullmatch(_CAST, body[start + 1 : close]) is not None
    return False


class RegOperand:
    """A register operand: its name in the body, and a key of REGISTERS."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RegOperand) and (self.name, self.kind) == (other.name, other.kind)

    def __hash__(self) -> int:
        return hash((self.name, self.kind))

    def __repr__(self) -> str:
        return f"RegOperand(name={self.name!r}, kind={self.kind!r})"


class Uop:
    """One declared uop. (Plain classes here, not dataclasses: this table is
    imported at the first hot loop of every program.)

    A uop declared with `uop()` keeps its body and operands as text until
    one of them is first used: a process uses a few dozen uops, and
    dedenting and parsing all of them was three quarters of building the
    table (~0.5 ms of the first hot loop). The build and the tests use every
    uop, so a declaration that does not parse still fails there at once."""

    __slots__ = (
        "_body",
        "_declared",
        "_reg_in",
        "_reg_out",
        "_stack_in",
        "_stack_out",
        "_words",
        "doc",
        "ends_trace",
        "name",
        "oparg_max",
    )

    def __init__(self, name: str, body: str, stack_in: tuple[str, ...] = (), stack_out: tuple[str, ...] = (),
                 reg_in: tuple[RegOperand, ...] = (), reg_out: tuple[RegOperand, ...] = (),
                 ends_trace: bool = False, oparg_max: int = OPARG_MAX, doc: str = "") -> None:
        self.name, self._body, self.doc = name, body, doc
        self._stack_in, self._stack_out, self._reg_in, self._reg_out = stack_in, stack_out, reg_in, reg_out
        self.ends_trace = ends_trace  # never falls through to a continuation
        self.oparg_max = oparg_max  # opargs above are refused when emitting
        self._declared: tuple[str, str] | None = None  # uop()'s stack and regs, until parsed
        self._words: frozenset[str] | None = None

    @classmethod
    def declared(cls, name: str, body: str, stack: str, regs: str, ends_trace: bool, oparg_max: int,
                 doc: str) -> Uop:
        """As uop() declares it: `body` to dedent, `stack` and `regs` to parse."""
        op = cls(name, body, (), (), (), (), ends_trace, oparg_max, doc)
        op._declared = (stack, regs)
        return op

    def _parse(self) -> None:
        declared = self._declared
        if declared is not None:
            self._stack_in, self._stack_out = _parse_stack(declared[0])
            self._reg_in, self._reg_out = _parse_regs(declared[1])
            self._body = dedent(self._body).strip()
            self._declared = None

    @property
    def body(self) -> str:
        self._parse()
        return self._body

    @property
    def stack_in(self) -> tuple[str, ...]:
        self._parse()
        return self._stack_in

    @property
    def stack_out(self) -> tuple[str, ...]:
        self._parse()
        return self._stack_out

    @property
    def reg_in(self) -> tuple[RegOperand, ...]:
        self._parse()
        return self._reg_in

    @property
    def reg_out(self) -> tuple[RegOperand, ...]:
        self._parse()
        return self._reg_out

    def __repr__(self) -> str:
        return f"Uop({self.name!r})"

    def uses(self, word: str) -> bool:
        if self._words is None:
            self._words = _words(self.body)
        return word in self._words

    @property
    def kept(self) -> int:
        """How many bottom stack inputs are left in place (`a b -- a c` keeps 1)."""
        count = 0
        for name_in, name_out in zip(self.stack_in, self.stack_out, strict=False):
            if name_in != name_out:
                break
            count += 1
        return count

    @property
    def escapes(self) -> bool:
        """May run arbitrary code (a decref, a C API call, a call through a
        pointer)."""
        return self._calls_out(_NON_ESCAPING)

    @property
    def needs_sync(self) -> bool:
        """Must publish the stack depth before its body runs: it calls out
        other than by a decref (a stencil's decref publishes the depth
        itself, only when it frees: copyjit_decref in copyjit.h), and its
        body does not publish it itself (SYNC_SP on its slow path only)."""
        return "SYNC_SP" not in _words(self.body) and self._calls_out(_NON_ESCAPING | _SELF_SYNCING)

    def _calls_out(self, harmless: frozenset[str]) -> bool:
        import re  # build time only (see the imports above)

        for call in re.finditer(_CALL, self.body):
            callee = call[1]
            if callee == ")" and _is_cast(self.body, call.start(1)):
                continue
            if callee not in harmless:
                return True
        return False

    @property
    def clobbers(self) -> bool:
        """Leaves no register but its outputs holding a value (CLOBBER(),
        cgen.py): the lowering keeps nothing else in one across it. Only
        after its last exit, so an exit still finds every register as the
        uop found it."""
        return self.uses("CLOBBER")

    @property
    def may_exit(self) -> bool:
        return self.uses("EXIT_IF")

    @property
    def may_error(self) -> bool:
        return self.uses("ERROR_IF")

    @property
    def may_jump(self) -> bool:
        return self.uses("JUMP_IF") or self.uses("JUMP")

    @property
    def uses_oparg(self) -> bool:
        return self.uses("oparg")

    @property
    def uses_operand0(self) -> bool:
        return self.uses("operand0")

    @property
    def uses_operand1(self) -> bool:
        return self.uses("operand1")

    def variants(self) -> Iterator[Variant]:
        """One variant per assignment of machine registers to operands."""
        operands = self.reg_in + self.reg_out
        choices = [REGISTERS[op.kind] for op in operands]
        for regs in itertools.product(*choices):
            yield Variant(self, regs[: len(self.reg_in)], regs[len(self.reg_in) :])


class Variant:
    """A uop with machine registers chosen for its register operands."""

    __slots__ = ("ins", "outs", "uop")

    def __init__(self, uop: Uop, ins: tuple[str, ...], outs: tuple[str, ...]) -> None:
        self.uop, self.ins, self.outs = uop, ins, outs

    @property
    def name(self) -> str:
        return variant_name(self.uop.name, self.ins, self.outs)


def variant_name(uop: str, ins: tuple[str, ...], outs: tuple[str, ...]) -> str:
    """``_ADD_INT`` with i0, i1 -> i2 is ``_ADD_INT__i0_i1_to_i2``."""
    parts = list(ins) + (["to", *outs] if outs else [])
    return f"{uop}__{'_'.join(parts)}" if parts else uop


def _parse_stack(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if text == "--":
        return (), ()
    ins, _, outs = text.partition("--")
    return tuple(ins.split()), tuple(outs.split())


def _parse_regs(text: str) -> tuple[tuple[RegOperand, ...], tuple[RegOperand, ...]]:
    if text == "--":
        return (), ()
    ins, _, outs = text.partition("--")
    return _reg_operands(ins), _reg_operands(outs)


def _reg_operands(text: str) -> tuple[RegOperand, ...]:
    result = []
    for word in text.split():
        name, _, kind = word.partition(":")
        if kind not in REGISTERS:
            raise ValueError(f"register operand {word!r} needs :i, :f or :o")
        result.append(RegOperand(name, kind))
    return tuple(result)


def uop(
    name: str,
    body: str,
    *,
    stack: str = "--",
    regs: str = "--",
    ends_trace: bool = False,
    oparg_max: int = OPARG_MAX,
    doc: str = "",
) -> Uop:
    if "AT_OPARG" in body or "OPARG_IMM32" in body:  # (not _words: every uop is made at import, ~1 ms)
        oparg_max = min(oparg_max, AT_OPARG_MAX)
    return Uop.declared(name, body, stack, regs, ends_trace, oparg_max, doc)


def _int_binary(name: str, builtin: str, law: str) -> Uop:
    return uop(
        name,
        f"EXIT_IF({builtin}(a, b, &res));",
        regs="a:i b:i -- res:i",
        doc=f"{law}; exits when the result leaves the 64-bit range",
    )


def _compare_bool(kind: str, name: str) -> Uop:
    doc = "res = the bool of comparison `oparg` (Py_LT ... Py_GE) of a and b"
    if kind == "f":
        doc += " (False with a NaN, but True for !=)"
    return uop(
        f"_COMPARE_{name}_BOOL",
        """
        int holds;
        switch (oparg) {
            case Py_LT: holds = a < b; break;
            case Py_LE: holds = a <= b; break;
            case Py_EQ: holds = a == b; break;
            case Py_NE: holds = a != b; break;
            case Py_GT: holds = a > b; break;
            default: holds = a >= b; break;
        }
        res = holds ? Py_True : Py_False;
        """,
        regs=f"a:{kind} b:{kind} -- res:o",
        doc=doc,
    )


def _bitwise() -> list[Uop]:
    ops = [uop(f"_{name}_INT", f"res = a {op} b;", regs="a:i b:i -- res:i", doc=f"res = a {op} b")
           for name, op in (("AND", "&"), ("OR", "|"), ("XOR", "^"))]
    # x // 2**k and x % 2**k, 1 <= k <= 62: Python's floor division and
    # modulo by a positive power of two are the arithmetic shift and the
    # mask, for negative x too (no idiv, nothing to exit for). (The mask is
    # an operand: made from a shift count hole, it took five instructions.)
    ops.append(uop("_FLOORDIV_INT_POW2", "res = a >> oparg;", regs="a:i -- res:i", oparg_max=62,
                   doc="res = a // 2**oparg"))
    ops.append(uop("_MOD_INT_POW2", "res = a & (intptr_t)operand0;", regs="a:i -- res:i",
                   doc="res = a % (operand0 + 1), operand0 = 2**k - 1 (1 <= k <= 62)"))
    ops.append(uop(
        "_RSHIFT_INT",
        "EXIT_IF(b < 0);\nres = b > 63 ? (a < 0 ? -1 : 0) : a >> b;",
        regs="a:i b:i -- res:i",
        doc="res = a >> b (arithmetic, as Python's); exits on a negative count (Python raises)",
    ))
    ops.append(uop(
        "_LSHIFT_INT",
        """
        EXIT_IF(b < 0 || b > 63);
        res = (intptr_t)((uintptr_t)a << b);
        EXIT_IF((res >> b) != a);
        """,
        regs="a:i b:i -- res:i",
        doc="res = a << b; exits on a negative count or when the result leaves 64 bits",
    ))
    ops.append(uop("_NOT_O", "res = a == Py_True ? Py_False : Py_True;", regs="a:o -- res:o",
                   doc="res = not a, for a guarded bool"))
    ops.append(uop("_UNBOX_BOOL_O", "res = a == Py_True;", regs="a:o -- res:i",
                   doc="res = int(a), for a guarded bool"))
    ops += [_compare_bool(kind, name) for kind, name in (("i", "INT"), ("f", "FLOAT"))]
    return ops


def _float_binary(name: str, op: str) -> Uop:
    return uop(name, f"res = a {op} b;", regs="a:f b:f -- res:f", doc=f"res = a {op} b")


def _float_power() -> Uop:
    # CPython's float_pow (Objects/floatobject.c) case by case, where it
    # returns a float. It raises ZeroDivisionError for 0.0 ** -x, returns a
    # complex for a negative base and a fractional exponent, and raises
    # OverflowError where libm's pow sets ERANGE (an infinite result, or a
    # subnormal one): those exit, for the interpreter to do it.
    return uop(
        "_POW_FLOAT",
        """
        if (a > 0.0 && a != 1.0 && isfinite(a) && b != 0.0 && isfinite(b)) {
            // The common case, first: libm's pow.
            double power = pow(a, b);
            EXIT_IF(isinf(power) || (power != 0.0 && !isnormal(power)));
            res = power;
        }
        else if (b == 0.0) {
            res = 1.0;
        }
        else if (isnan(a)) {
            res = a;
        }
        else if (isnan(b)) {
            res = a == 1.0 ? 1.0 : b;
        }
        else if (isinf(b)) {
            double size = __builtin_fabs(a);
            res = size == 1.0 ? 1.0 : ((b > 0.0) == (size > 1.0) ? __builtin_fabs(b) : 0.0);
        }
        else if (isinf(a)) {
            int odd = fmod(__builtin_fabs(b), 2.0) == 1.0;
            res = b > 0.0 ? (odd ? a : __builtin_fabs(a)) : (odd ? __builtin_copysign(0.0, a) : 0.0);
        }
        else if (a == 0.0) {
            EXIT_IF(b < 0.0);
            res = fmod(__builtin_fabs(b), 2.0) == 1.0 ? a : 0.0;
        }
        else if (a == 1.0) {
            res = 1.0;
        }
        else {  // a < 0.0: an integer power of -a, negated when odd
            EXIT_IF(b != floor(b));
            int negate = fmod(__builtin_fabs(b), 2.0) == 1.0;
            double power = a == -1.0 ? 1.0 : pow(-a, b);
            EXIT_IF(isinf(power) || (power != 0.0 && !isnormal(power)));
            res = negate ? -power : power;
        }
        """,
        regs="a:f b:f -- res:f",
        doc="res = a ** b; exits where Python raises or gives a complex",
    )


def _float_power_const() -> Uop:
    # a ** b for a constant b that is finite and not an integer (no
    # negative base has a float power then), with the bases whose power is
    # finite and normal, [operand0, operand1] (lower.py, _power_bounds):
    # there CPython's float_pow is libm's pow and cannot raise, and any
    # other base (0, a negative one, NaN, infinities, the extremes) exits
    # before the call. So nothing exits after it, and the call need not
    # keep a register of the trace's: CLOBBER() spares the ~25 moves that
    # saving them took around each call (n-body: one a pair).
    return uop(
        "_POW_FLOAT_CONST",
        """
        double lo, hi;
        uint64_t low = operand0, high = operand1;
        __builtin_memcpy(&lo, &low, sizeof(lo));
        __builtin_memcpy(&hi, &high, sizeof(hi));
        EXIT_IF(!(a >= lo && a <= hi));
        double power = copyjit_pow_finite(a, b);  // (finite and normal: no errno to set)
        CLOBBER();
        res = power;
        """,
        regs="a:f b:f -- res:f",
        doc="res = a ** b, b a constant, a within [operand0, operand1]; clobbers the other registers",
    )


def _sequences() -> list[Uop]:
    """Unpacking a tuple or list whose type is guarded: its length is
    guarded once, then each item is read without a bounds check."""
    return [
        uop(
            "_GUARD_SIZE_O",
            "EXIT_IF(((PyVarObject *)a)->ob_size != OPARG_IMM32);",
            regs="a:o --",
            doc="exit unless a (a guarded tuple or list) has `oparg` items",
        ),
        uop(
            "_GUARD_MIN_SIZE_O",
            "EXIT_IF(((PyVarObject *)a)->ob_size < OPARG_IMM32);",
            regs="a:o --",
            doc="exit unless a (a guarded list) has at least `oparg` items",
        ),
        uop("_TUPLE_ITEM_O", "res = Py_NewRef(AT_OPARG(((PyTupleObject *)a)->ob_item));", regs="a:o -- res:o",
            doc="res = a[oparg] for a tuple with more than `oparg` items"),
        uop("_LIST_ITEM_O", "res = Py_NewRef(AT_OPARG(((PyListObject *)a)->ob_item));", regs="a:o -- res:o",
            doc="res = a[oparg] for a list with more than `oparg` items"),
        uop("_TUPLE_ITEM_B", "res = AT_OPARG(((PyTupleObject *)a)->ob_item);", regs="a:o -- res:o",
            doc="res = a[oparg] for a tuple with more than `oparg` items, borrowed (the tuple holds it)"),
        uop("_LIST_ITEM_B", "res = AT_OPARG(((PyListObject *)a)->ob_item);", regs="a:o -- res:o",
            doc="res = a[oparg] for a list with more than `oparg` items, borrowed (the list holds it)"),
        uop("_NEW_REF_O", "res = Py_NewRef(a);", regs="a:o -- res:o",
            doc="res = a, one more reference (a copy of a value the trace owns)"),
    ]


# A global, a builtin, a module's attribute: the entry `oparg` of dict
# keys whose version is checked (LOAD_GLOBAL_MODULE, LOAD_GLOBAL_BUILTIN,
# LOAD_ATTR_MODULE); the _O uops make a reference, the _B ones borrow (licm).
_GLOBAL = """
PyDictKeysObject *keys = ((PyDictObject *)frame->f_globals)->ma_keys;
EXIT_IF(keys->dk_version != (uint32_t)operand0);
res = DK_UNICODE_ENTRIES(keys)[oparg].me_value;
EXIT_IF(res == NULL);
"""
_BUILTIN = """
PyDictKeysObject *globals = ((PyDictObject *)frame->f_globals)->ma_keys;
PyDictKeysObject *keys = ((PyDictObject *)frame->f_builtins)->ma_keys;
EXIT_IF(globals->dk_version != (uint32_t)operand0);
EXIT_IF(keys->dk_version != (uint32_t)operand1);
res = DK_UNICODE_ENTRIES(keys)[oparg].me_value;
EXIT_IF(res == NULL);
"""
_MODULE_ATTRIBUTE = """
PyDictKeysObject *keys = ((PyDictObject *)((PyModuleObject *)a)->md_dict)->ma_keys;
EXIT_IF(keys->dk_version != (uint32_t)operand0);
res = DK_UNICODE_ENTRIES(keys)[oparg].me_value;
EXIT_IF(res == NULL);
"""
# An attribute in an instance's inline values (CPython 3.13's
# LOAD_ATTR_INSTANCE_VALUE): the values `operand0` bytes into a, entry `oparg`.
_INSTANCE_VALUE = """
PyDictValues *values = (PyDictValues *)((char *)a + operand0);
EXIT_IF(!values->valid);
res = values->values[oparg];
EXIT_IF(res == NULL);
"""
# The attribute store of CPython's STORE_ATTR_INSTANCE_VALUE: no dict of
# a's own (not even one sharing the values: a store must then go through
# it), the values valid, entry `oparg` set (a new attribute, which CPython
# adds to the values' insertion order, is the interpreter's).
_INSTANCE_SLOT = """
EXIT_IF(_PyObject_GetManagedDict(a) != NULL);
PyDictValues *values = (PyDictValues *)((char *)a + operand0);
EXIT_IF(!values->valid);
PyObject *old = values->values[oparg];
EXIT_IF(old == NULL);
"""
_CONDITIONS = {"LT": "<", "LE": "<=", "EQ": "==", "NE": "!=", "GT": ">", "GE": ">="}


def _number_attribute_store(kind: str, number: str, reuse: str, when: str) -> Uop:
    """_STORE_ATTR_INSTANCE_`kind` of an unboxed `number`: `reuse` (an `if`
    without its `else`) overwrites the old object in place; otherwise a new
    one, made out of line (copyjit_store_`number`_attr, objects.c)."""
    return uop(
        f"_STORE_ATTR_INSTANCE_{kind}",
        _INSTANCE_SLOT + dedent(reuse).strip() + f"""
else {{  // out of line, keeping every register (objects.c)
    SYNC_SP();
    EXIT_IF(copyjit_store_{number}_attr(&values->values[oparg], value) < 0);
}}
""",
        regs=f"value:{kind.lower()} a:o --",
        doc=f"_STORE_ATTR_INSTANCE_O of {number}(value), reusing the attribute's {number} object when only "
            f"a holds it{when}",
    )


def _branches(kind: str, type_name: str) -> list[Uop]:
    return [
        uop(
            f"_JUMP_IF_{type_name}_{cond}",
            f"JUMP_IF(a {op} b);",
            regs=f"a:{kind} b:{kind} --",
            doc=f"jump if a {op} b",
        )
        for cond, op in _CONDITIONS.items()
    ]


def _boxed_binary(name: str, call: str, doc: str) -> list[Uop]:
    """`name` raises what the operation raises; `name`_OR_EXIT, for traces on
    live frames, exits with the inputs in place so that the interpreter
    re-executes the instruction and raises there: on 3.13.0 an exception
    must not be raised from a monitoring callback (docs/cpython-facts.md).
    Exact only where the operation has no side effects before it fails
    (operands guarded to builtin types)."""
    release = "Py_DECREF(left);\nPy_DECREF(right);"
    return [
        uop(name, f"res = {call};\n{release}\nERROR_IF(res == NULL);",
            stack="left right -- res", doc=doc),
        uop(f"{name}_OR_EXIT",
            f"res = {call};\nif (res == NULL) {{\n    PyErr_Clear();\n}}\nEXIT_IF(res == NULL);\n{release}",
            stack="left right -- res", doc=f"{doc}; if it fails, exit with the inputs in place"),
    ]


def _range_iteration() -> list[Uop]:
    """Step CPython's range iterator in place, pushing the value boxed or
    leaving it in a register; exit when exhausted (or not a range iterator)."""
    guards = """
        EXIT_IF(Py_TYPE(iter) != &PyRangeIter_Type);
        _PyRangeIterObject *r = (_PyRangeIterObject *)iter;
        EXIT_IF(r->len <= 0);
    """
    # CPython only makes this iterator when every step fits in a long;
    # unsigned arithmetic keeps it defined behaviour all the same.
    step = """
        r->start = (long)((unsigned long)r->start + (unsigned long)r->step);
        r->len--;
    """
    boxed = """
        next = PyLong_FromLong(r->start);
        if (next == NULL) {
            PyErr_Clear();
        }
        EXIT_IF(next == NULL);
    """
    def body(*parts: str) -> str:
        return "\n".join(dedent(part).strip() for part in parts)

    # Where a trace enters its loop the iterator is checked once
    # (_GUARD_TOS_TYPE): the frame's stack is the trace's own while it
    # runs, so nothing replaces it, and each iteration steps it unchecked
    # (3 instructions of the 27 of float_accumulation's iteration). The
    # exit is the likely path to clang: it then lays it out of the way with
    # the iteration last, where the emitter drops its jump to the next uop.
    known = """
        _PyRangeIterObject *r = (_PyRangeIterObject *)iter;
        EXIT_IF(__builtin_expect(r->len <= 0, 1));
    """
    return [
        uop("_FOR_ITER_RANGE", body(guards, boxed, step), stack="iter -- iter next",
            doc="push the next value of a range iterator; exit when exhausted (or not one)"),
        uop("_FOR_ITER_RANGE_UNBOXED", body(guards, "next = r->start;", step), stack="iter -- iter",
            regs="-- next:i", doc="the next value of a range iterator, in a register; exit when exhausted"),
        uop("_FOR_ITER_RANGE_UNBOXED_KNOWN", body(known, "next = r->start;", step), stack="iter -- iter",
            regs="-- next:i", doc="_FOR_ITER_RANGE_UNBOXED of an iterator _GUARD_TOS_TYPE checked "
                                  "where the trace entered the loop"),
        # iter(range(start, stop)) as CPython's range_iter makes it when its
        # bounds fit a long (fast_range_iter), without the range object.
        uop(
            "_RANGE_ITER_O",
            """
            intptr_t len;
            EXIT_IF(__builtin_sub_overflow(stop, start, &len));
            _PyRangeIterObject *r = PyObject_New(_PyRangeIterObject, &PyRangeIter_Type);
            if (r == NULL) {
                PyErr_Clear();
            }
            EXIT_IF(r == NULL);
            r->start = start;
            r->step = 1;
            r->len = len > 0 ? len : 0;
            res = (PyObject *)r;
            """,
            regs="start:i stop:i -- res:o",
            doc="res = iter(range(start, stop)); exits if its length overflows, or out of memory",
        ),
    ]


def _floor_division() -> list[Uop]:
    # Python rounds the quotient toward minus infinity and gives the
    # remainder the divisor's sign; C truncates, and traps on MIN / -1.
    # Exits where Python raises (b == 0) or needs a big int (MIN // -1).
    return [
        uop(
            "_FLOORDIV_INT",
            """
            EXIT_IF(b == 0 || (a == INTPTR_MIN && b == -1));
            intptr_t quotient = a / b, remainder = a % b;
            res = quotient - (remainder != 0 && (remainder < 0) != (b < 0));
            """,
            regs="a:i b:i -- res:i",
            doc="res = a // b",
        ),
        uop(
            "_MOD_INT",
            """
            EXIT_IF(b == 0);
            intptr_t remainder = b == -1 ? 0 : a % b;
            res = remainder + ((remainder != 0 && (remainder < 0) != (b < 0)) ? b : 0);
            """,
            regs="a:i b:i -- res:i",
            doc="res = a % b",
        ),
    ]


def _spills() -> list[Uop]:
    # (SLOT: spill slot `oparg`, addressed by one 32-bit displacement: copyjit.h)
    slot, last = "SLOT", SPILL_SLOTS - 1
    return [
        uop("_SPILL_INT", f"{slot} = a;", regs="a:i --", oparg_max=last, doc="spill slot `oparg` = a"),
        uop("_RELOAD_INT", f"res = {slot};", regs="-- res:i", oparg_max=last,
            doc="res = spill slot `oparg`"),
        uop("_SPILL_FLOAT", f"__builtin_memcpy(&{slot}, &a, sizeof(a));", regs="a:f --",
            oparg_max=last, doc="spill slot `oparg` = a"),
        uop("_RELOAD_FLOAT", f"__builtin_memcpy(&res, &{slot}, sizeof(res));", regs="-- res:f",
            oparg_max=last, doc="res = spill slot `oparg`"),
        # Two spills in one uop: an exit stub begins with the pinned locals'
        # and its values' spills (a third of a trace's uops; lower.py, _paired).
        uop("_SPILL_INT2", f"{slot} = a;\nslots[operand0] = b;", regs="a:i b:i --", oparg_max=last,
            doc="spill slot `oparg` = a, spill slot `operand0` = b"),
        uop("_SPILL_FLOAT2", f"__builtin_memcpy(&{slot}, &a, sizeof(a));\n"
                             "__builtin_memcpy(&slots[operand0], &b, sizeof(b));", regs="a:f b:f --",
            oparg_max=last, doc="spill slot `oparg` = a, spill slot `operand0` = b"),
        # An exit stub's: one uop where _RELOAD_INT and _PUSH_O, or
        # _LOAD_*_O and _SPILL_INT, were two (most of a trace's uops are
        # its exit stubs': fewer to lower, copy and patch).
        uop("_PUSH_SLOT_O", f"value = (PyObject *){slot};", stack="-- value", oparg_max=last,
            doc="push the object in spill slot `oparg` onto the frame's stack (hands over the reference)"),
        uop("_PUSH_SLOT_O2", f"first = (PyObject *){slot};\nsecond = (PyObject *)slots[operand0];",
            stack="-- first second", oparg_max=last,
            doc="push the objects in spill slots `oparg` and `operand0` onto the frame's stack, in that "
                "order (hands over the references)"),
        # An exit's reference to a borrowed item on its stack: one uop where
        # _RELOAD_INT and _NEW_REF_O were two.
        uop("_NEW_REF_SLOT", f"Py_INCREF((PyObject *){slot});", oparg_max=last,
            doc="one more reference to the object in spill slot `oparg`"),
        uop("_SPILL_FAST_O", f"{slot} = (intptr_t)Py_NewRef(frame->localsplus[operand0]);", oparg_max=last,
            doc="spill slot `oparg` = a new reference to local `operand0` (must be bound)"),
        uop("_SPILL_CONST_O", f"{slot} = (intptr_t)Py_NewRef((PyObject *)operand0);", oparg_max=last,
            doc="spill slot `oparg` = a new reference to the object at `operand0`"),
        # A number local's flag (lower.py, `shadow`): whether the frame
        # holds its value's very object (1), or no object of it exists yet (0).
        uop("_CLEAR_SLOT", f"{slot} = 0;", oparg_max=last, doc="spill slot `oparg` = 0"),
        uop("_MARK_SLOT", f"{slot} = 1;", oparg_max=last, doc="spill slot `oparg` = 1"),
    ]


def _math() -> list[Uop]:
    """Builtins and `math` functions on unboxed numbers. Each exits where
    CPython raises (the interpreter then re-executes the call and raises)."""
    unary_float = {
        "_SQRT_FLOAT": ("EXIT_IF(a < 0.0);\nres = __builtin_elementwise_sqrt(a);", "math.sqrt(a)"),
        # libm's: every exit before the call, and no register kept across
        # it (CLOBBER(): clang need not save eight around it).
        "_SIN_FLOAT": ("EXIT_IF(isinf(a));\ndouble r = sin(a);\nCLOBBER();\nres = r;", "math.sin(a)"),
        "_COS_FLOAT": ("EXIT_IF(isinf(a));\ndouble r = cos(a);\nCLOBBER();\nres = r;", "math.cos(a)"),
        # (e ** 709.78 is finite; Python raises OverflowError from ~709.7827.)
        "_EXP_FLOAT": ("EXIT_IF(a > 709.78);\ndouble r = exp(a);\nCLOBBER();\nres = r;",
                       "math.exp(a); exits above 709.78 (near where it overflows), +inf included"),
        "_LOG_FLOAT": ("EXIT_IF(!(a > 0.0) && !isnan(a));\ndouble r = log(a);\nCLOBBER();\nres = r;",
                       "math.log(a)"),
        "_ABS_FLOAT": ("res = __builtin_fabs(a);", "abs(a)"),
    }
    ops = [uop(name, body, regs="a:f -- res:f", doc=doc) for name, (body, doc) in unary_float.items()]
    ops.append(uop("_ABS_INT", "EXIT_IF(a == INTPTR_MIN);\nres = a < 0 ? -a : a;", regs="a:i -- res:i",
                   doc="abs(a); exits for the one value whose result needs 65 bits"))
    for kind, name in (("i", "INT"), ("f", "FLOAT")):
        # min keeps the first of equals (and a NaN first), as Python's does.
        ops.append(uop(f"_MIN_{name}", "res = b < a ? b : a;", regs=f"a:{kind} b:{kind} -- res:{kind}",
                       doc="min(a, b)"))
        ops.append(uop(f"_MAX_{name}", "res = b > a ? b : a;", regs=f"a:{kind} b:{kind} -- res:{kind}",
                       doc="max(a, b)"))
    return ops


_CLEAR_AND_EXIT = "if (res == NULL) {\n    PyErr_Clear();\n}\nEXIT_IF(res == NULL);"


# When the number a local holds can be overwritten in place (only the
# frame holds it; never a small int, whose identity `is` may test), and how.
_FLOAT_REUSABLE = "Py_REFCNT(old) == 1 && PyFloat_CheckExact(old)"
_FLOAT_REUSE = "((PyFloatObject *)old)->ob_fval = a;"
_MAGNITUDE = "uint64_t magnitude = a < 0 ? 0 - (uint64_t)a : (uint64_t)a;\n"
_INT_REUSABLE = ("Py_REFCNT(old) == 1 && PyLong_CheckExact(old) &&\n"
                 "    _PyLong_IsCompact((PyLongObject *)old) && (a < -5 || a > 256) &&\n"
                 "    magnitude < ((uint64_t)1 << PyLong_SHIFT)")
_INT_REUSE = ("((PyLongObject *)old)->long_value.ob_digit[0] = (digit)magnitude;\n"
              "_PyLong_SetSignAndDigitCount((PyLongObject *)old, a < 0 ? -1 : 1, 1);")
_LOCAL = "PyObject *value = AT_OPARG(frame->localsplus);\nEXIT_IF(value == NULL);\n"


def _unbox_int(a: str) -> str:
    return f"""
EXIT_IF(!PyLong_CheckExact({a}));
if (_PyLong_IsCompact((PyLongObject *){a})) {{
    res = _PyLong_CompactValue((PyLongObject *){a});
}}
else {{  // (runs no code for an exact int; the depth published all the same, off the fast path)
    SYNC_SP();
    int overflow;
    res = PyLong_AsLongAndOverflow({a}, &overflow);
    EXIT_IF(overflow);
}}
"""


def _unbox_float(a: str) -> str:
    return f"EXIT_IF(!PyFloat_CheckExact({a}));\nres = PyFloat_AS_DOUBLE({a});"


def _into_local(reusable: str, reuse: str, slow: str) -> str:
    """The number `a` into local `oparg`: written into the object the frame
    holds when `reusable` (only the frame holds it), else `slow`, a call
    out of line (objects.c) that keeps every register, so that the fast
    half needs no stack frame (a box replaces the object)."""
    indent = chr(10) + "    "
    return f"""
PyObject *old = AT_OPARG(frame->localsplus);
if (__builtin_expect(old != NULL && {reusable}, 1)) {{
    {reuse.replace(chr(10), indent)}
}}
else {{
    SYNC_SP();
    {slow}
}}
"""


def _leaving(kind: str, reusable: str, reuse: str) -> str:
    """The body of _STORE_*_LEAVING: cannot fail (as _BOX_*_LEAVING_O).
    Every exit of a trace that stores numbers in locals runs one per local."""
    return _into_local(f"!copyjit_reserve.pool_only && {reusable}", reuse,
                       f"copyjit_store_{kind.lower()}_leaving(frame, tstate, oparg, a);")


def _flagged(body: str) -> str:
    """`body`, run only when the flag in spill slot `operand0` is clear."""
    indent = chr(10) + "    "
    return f"if (slots[operand0] == 0) {{{indent}{body.strip().replace(chr(10), indent)}\n}}\n"


def _sync(kind: str, reusable: str, reuse: str) -> str:
    """The body of _SYNC_*_O: a box that fails exits (nothing is lost)."""
    return _into_local(reusable, reuse, f"EXIT_IF(copyjit_sync_{kind.lower()}(frame, oparg, a) < 0);")


def _checked_position(kind: str, constant: bool) -> str:
    """C that sets `at`, a position in `seq` (a guarded list or tuple), from
    the index operand (a negative one counts from the end), or exits when
    it is out of range. A `constant` index k >= 0 (`v[0]`) is the oparg:
    no register holds it and no negative index is turned around (its
    `index` is a local, for what follows)."""
    size = f"Py{kind.title()}_GET_SIZE(seq)"
    if constant:
        return f"Py_ssize_t index = (Py_ssize_t)oparg, at = index;\nEXIT_IF((size_t)at >= (size_t){size});\n"
    return (f"Py_ssize_t size = {size};\nPy_ssize_t at = index < 0 ? index + size : index;\n"
            "EXIT_IF((size_t)at >= (size_t)size);\n")


def _subscript(kind: str, borrowed: bool, constant: bool) -> Uop:
    item = f"Py{kind.title()}_GET_ITEM(seq, at)"
    index = "oparg" if constant else "index"
    return uop(
        f"_BINARY_SUBSCR_{kind}_{'CONST' if constant else 'INT'}_{'B' if borrowed else 'O'}",
        _checked_position(kind, constant) + f"res = {item if borrowed else f'Py_NewRef({item})'};",
        regs="seq:o -- res:o" if constant else "seq:o index:i -- res:o",
        doc=f"res = seq[{index}] for a guarded {kind.lower()}; exits when out of range"
            + ("; borrowed: no reference of its own (the container must hold the item)" if borrowed else ""),
    )


_STORE_ITEM = {  # after _checked_position: seq[at] = value
    "O": """
        PyObject *old = PyList_GET_ITEM(seq, at);
        PyList_SET_ITEM(seq, at, value);
        Py_DECREF(old);
        """,
    "F": """
        PyObject *old = PyList_GET_ITEM(seq, at);
        if (Py_IS_TYPE(old, &PyFloat_Type) && Py_REFCNT(old) == 1) {
            // Only the list holds the old float: nothing can tell it
            // from a new one, so it becomes the new one (no allocation).
            ((PyFloatObject *)old)->ob_fval = value;
        }
        else {  // out of line, keeping every register (objects.c)
            SYNC_SP();  // here, not before the body: the in-place path calls nothing
            EXIT_IF(copyjit_store_float_item(seq, index, value, tstate) < 0);
        }
        """,
}
_STORE_DOC = {
    "O": "seq[{}] = value for a guarded list (takes value); exits when out of range",
    "F": "seq[{}] = float(value) for a guarded list, reusing the item's float object when only the list "
         "holds it; exits when out of range",
}


# The _PLAIN stores exit first when the item they replace is not a float,
# an int, a str or immortal (None, a bool, a small int): releasing it then
# runs no code, and licm may move loads out of a loop that stores.
_PLAIN_OLD = """
    PyObject *replaced = PyList_GET_ITEM(seq, at);
    EXIT_IF(!Py_IS_TYPE(replaced, &PyFloat_Type) && !PyLong_CheckExact(replaced)
            && !PyUnicode_CheckExact(replaced) && !_Py_IsImmortal(replaced));
    """


def _list_store(kind: str, constant: bool, plain: bool = False) -> Uop:
    return uop(
        f"_STORE_SUBSCR_LIST_{'CONST' if constant else 'INT'}_{kind}{'_PLAIN' if plain else ''}",
        _checked_position("LIST", constant) + (dedent(_PLAIN_OLD).strip() + "\n" if plain else "")
        + dedent(_STORE_ITEM[kind]).strip(),
        regs=f"value:{kind.lower()} seq:o --" if constant else f"value:{kind.lower()} seq:o index:i --",
        doc=_STORE_DOC[kind].format("oparg" if constant else "index")
            + ("; and when the item it replaces is not a float, int, str or immortal" if plain else ""),
    )


def _float_store_over(constant: bool) -> Uop:
    """`v[k] op= x` for a float item just read and unboxed, with no code or
    list write since (checks, passes.py): the item is still seq[index], an
    exact float, and the index in range, so nothing is checked or read
    again. The slow half (another reference to the float) replaces it."""
    return uop(
        f"_STORE_SUBSCR_LIST_{'CONST' if constant else 'INT'}_F_OVER",
        dedent("""
        // (The slow path "expected": clang lays the other last, where it
        // falls through to the next uop; and the index is made on the slow
        // path only. In place: 3 instructions, not 5.)
        if (__builtin_expect(Py_REFCNT(item) != 1, 1)) {
            // Something else holds the float too (n-body: a local bound to
            // it as its loop ended), so a new float replaces it. One from
            // the freelist is made here, calling nothing: the release of
            // the old one frees nothing (a count of 2 or more).
            INDEX
            PyObject *box = copyjit_pop_float(tstate, value);
            if (box != NULL) {
                PyList_SET_ITEM(seq, POSITION, box);
                copyjit_release_shared(item);
            }
            else {  // out of line, keeping every register (objects.c)
                SYNC_SP();
                EXIT_IF(copyjit_store_float_item(seq, index, value, tstate) < 0);
            }
            TAIL(_JIT_CONTINUE);
        }
        ((PyFloatObject *)item)->ob_fval = value;  // only the list holds it: it becomes the new float
        """).strip().replace("POSITION",
                             "index" if constant else "index < 0 ? index + PyList_GET_SIZE(seq) : index")
        .replace("INDEX", "Py_ssize_t index;\n    OPARG_HERE(index);" if constant else ""),
        regs="value:f seq:o item:o --" if constant else "value:f seq:o index:i item:o --",
        doc=f"seq[{'oparg' if constant else 'index'}] = float(value) over `item`, the exact float the trace "
            "has just read there (none of the three checked again), in place when only the list holds it, "
            "else a float from the freelist replaces it (out of line when the list is empty); "
            "exits when out of memory",
    )


def _sequence_iteration(kind: str, borrowed: bool = False, known: bool = False) -> Uop:
    """`known`: the iterator's type was checked where the trace entered
    the loop (_GUARD_TOS_TYPE; see _range_iteration)."""
    title = kind.title()
    item = f"Py{title}_GET_ITEM(seq, it->it_index)"
    check = "" if known else f"EXIT_IF(Py_TYPE(iter) != &Py{title}Iter_Type);"
    ended = f"seq == NULL || it->it_index >= Py{title}_GET_SIZE(seq)"
    if known:  # (the exit "likely": laid out of the way, see _range_iteration)
        ended = f"__builtin_expect({ended}, 1)"
    return uop(
        f"_FOR_ITER_{kind}_{'B' if borrowed else 'O'}{'_KNOWN' if known else ''}",
        f"""
        {check}
        _Py{title}IterObject *it = (_Py{title}IterObject *)iter;
        Py{title}Object *seq = it->it_seq;
        EXIT_IF({ended});
        next = {item if borrowed else f"Py_NewRef({item})"};
        it->it_index++;
        """,
        stack="iter -- iter",
        regs="-- next:o",
        doc=f"the next item of a {kind.lower()} iterator; exits when exhausted"
            + (" (its type checked where the trace entered the loop)" if known else " (or not one)")
            + ("; borrowed (the sequence holds it)" if borrowed else ""),
    )


def _enumerate(kind: str) -> Uop:
    """`for i, item in enumerate(seq)` without the pair: FOR_ITER and
    UNPACK_SEQUENCE 2 in one step that allocates nothing, so cannot fail
    after it has advanced anything."""
    seq = f"Py{kind.title()}Object"
    return uop(
        f"_FOR_ITER_ENUMERATE_{kind}_O",
        f"""
        // enumobject's first fields (Objects/enumobject.c, 3.13).
        typedef struct {{
            PyObject_HEAD
            Py_ssize_t en_index;
            PyObject *en_sit;
            PyObject *en_result;
            PyObject *en_longindex;
        }} enum_head;
        EXIT_IF(Py_TYPE(iter) != &PyEnum_Type);
        enum_head *en = (enum_head *)iter;
        EXIT_IF(Py_TYPE(en->en_sit) != &Py{kind.title()}Iter_Type);
        EXIT_IF(en->en_longindex != NULL || en->en_index == PY_SSIZE_T_MAX);
        _Py{kind.title()}IterObject *it = (_Py{kind.title()}IterObject *)en->en_sit;
        {seq} *seq = it->it_seq;
        EXIT_IF(seq == NULL || it->it_index >= Py{kind.title()}_GET_SIZE(seq));
        item = Py_NewRef(Py{kind.title()}_GET_ITEM(seq, it->it_index));
        it->it_index++;
        index = en->en_index++;
        """,
        stack="iter -- iter",
        regs="-- index:i item:o",
        doc=f"the next (index, item) of an enumerate over a {kind.lower()} iterator, "
            "unpacked; exits when exhausted (or not one)",
    )


def _objects() -> list[Uop]:
    """Boxed values in registers. A trace owns one reference to each object
    in a register or spill slot; `_DECREF_O` releases it, `_PUSH_O` hands it
    to the frame's stack at an exit."""
    return [
        uop("_LOAD_FAST_O", "res = Py_NewRef(AT_OPARG(frame->localsplus));",
            regs="-- res:o", doc="res = local `oparg` (must be bound)"),
        uop("_LOAD_FAST_BORROW_O", "res = AT_OPARG(frame->localsplus);", regs="-- res:o",
            doc="res = local `oparg`, borrowed: no reference of its own (the frame holds it; must be bound)"),
        uop("_LOAD_FAST_CHECK_O",
            """
            EXIT_IF(AT_OPARG(frame->localsplus) == NULL);
            res = Py_NewRef(AT_OPARG(frame->localsplus));
            """,
            regs="-- res:o", doc="res = local `oparg`; exit if it is unbound"),
        uop("_STORE_FAST_O",
            """
            PyObject *old = AT_OPARG(frame->localsplus);
            AT_OPARG(frame->localsplus) = a;
            Py_XDECREF(old);
            """,
            regs="a:o --", doc="local `oparg` = a (takes the reference)"),
        uop("_LOAD_CONST_O", "res = Py_NewRef((PyObject *)operand0);", regs="-- res:o",
            doc="res = the object at `operand0` (keep it alive with the trace's constants)"),
        uop("_DECREF_O", "Py_DECREF(a);", regs="a:o --", doc="release a"),
        uop(
            "_LOAD_DEREF_O",
            """
            PyObject *value = PyCell_GET(AT_OPARG(frame->localsplus));
            EXIT_IF(value == NULL);
            res = Py_NewRef(value);
            """,
            regs="-- res:o",
            doc="res = the contents of the cell in local `oparg`; exit if it is empty",
        ),
        uop(
            "_STORE_DEREF_O",
            """
            PyObject *cell = AT_OPARG(frame->localsplus);
            PyObject *old = PyCell_GET(cell);
            PyCell_SET(cell, a);
            Py_XDECREF(old);
            """,
            regs="a:o --",
            doc="set the contents of the cell in local `oparg` to a (takes the reference)",
        ),
        uop("_PUSH_O", "value = a;", stack="-- value", regs="a:o --",
            doc="push a onto the frame's stack (hands over the reference)"),
        uop("_PUSH_NULL", "value = NULL;", stack="-- value", doc="push NULL (CALL's empty self slot)"),
        uop("_GUARD_TYPE_O", "EXIT_IF(Py_TYPE(a) != (PyTypeObject *)operand0);", regs="a:o --",
            doc="exit unless a's type is `operand0`"),
        uop("_GUARD_IS_O", "EXIT_IF(a != (PyObject *)operand0);", regs="a:o --",
            doc="exit unless a is the object `operand0`"),
        uop("_GUARD_IS_NOT_O", "EXIT_IF(a == (PyObject *)operand0);", regs="a:o --",
            doc="exit if a is the object `operand0`"),
        uop("_GUARD_NOT_SAME_O", "EXIT_IF(a == b);", regs="a:o b:o --",
            doc="exit if a and b are one object"),
        uop("_GUARD_SAME_O", "EXIT_IF(a != b);", regs="a:o b:o --",
            doc="exit unless a and b are one object (`a is b`)"),
        uop(
            "_GUARD_TYPE_VERSION_O",
            "EXIT_IF(Py_TYPE(a)->tp_version_tag != (unsigned int)operand0);",
            regs="a:o --",
            doc="exit unless a's type is unchanged since version `operand0` was taken",
        ),
        uop(
            "_GUARD_KEYS_VERSION_O",
            """
            EXIT_IF(!_PyObject_InlineValues(a)->valid);
            EXIT_IF(((PyHeapTypeObject *)Py_TYPE(a))->ht_cached_keys->dk_version != (uint32_t)operand0);
            """,
            regs="a:o --",
            doc="exit unless a keeps its attributes in inline values and its type's shared keys are "
                "unchanged since version `operand0` (a's type guarded by version: it has them)",
        ),
        uop(
            "_GUARD_FUNCTION_O",
            """
            PyFunctionObject *function = (PyFunctionObject *)a;
            EXIT_IF(function->func_version != (uint32_t)operand0);
            EXIT_IF(tstate->c_profilefunc != NULL);  // sys.setprofile: it sees the call
            // Another tool's local events on the code: the interpreter runs it.
            EXIT_IF(copyjit_watched_locally((PyCodeObject *)function->func_code));
            """,
            regs="a:o --",
            doc="exit unless the function a still has version `operand0` (its __code__, "
                "__defaults__, __kwdefaults__ unchanged), no profiler is set (sys.setprofile) "
                "and no other tool has local events on its code",
        ),
        uop("_UNBOX_INT_O", _unbox_int("a"), regs="a:o -- res:i",
            doc="res = a as a machine int; exits unless a is an exact int that fits 64 bits"),
        uop("_UNBOX_FLOAT_O", _unbox_float("a"),
            regs="a:o -- res:f", doc="res = a as a double; exits unless a is an exact float"),
        # A trace's entry reads the locals it keeps unboxed where they are:
        # no reference taken, none given back.
        uop("_UNBOX_LOCAL_INT", _LOCAL + _unbox_int("value"), regs="-- res:i",
            doc="res = local `oparg` as a machine int; exits unless it is bound to an exact int "
                "that fits 64 bits"),
        uop("_UNBOX_LOCAL_FLOAT", _LOCAL + _unbox_float("value"), regs="-- res:f",
            doc="res = local `oparg` as a double; exits unless it is bound to an exact float"),
        # Boxing fails only when memory is exhausted: nothing has changed
        # yet, so exit and let the interpreter run out of memory itself.
        *[uop(f"_BOX_{kind}_O", f"res = {make}(a);\n{_CLEAR_AND_EXIT}", regs=f"a:{k} -- res:o",
              doc=f"res = {kind.lower()}(a)")
          for kind, k, make in (("INT", "i", "PyLong_FromSsize_t"), ("FLOAT", "f", "PyFloat_FromDouble"))],
        # A box of a number local's value that the program may keep (an
        # append, an item): the local's object, as in CPython (`log[-1] is
        # x`, a NaN found in a list by identity). The flag in spill slot
        # `operand0` says the frame holds it already; else the box made is
        # bound in the frame too, for the exits and the next box.
        *[uop(f"_BOX_{kind}_LOCAL",
              f"""
              PyObject *old = AT_OPARG(frame->localsplus);
              if (slots[operand0] != 0) {{
                  res = Py_NewRef(old);
              }}
              else {{
                  res = {make}(a);
                  {_CLEAR_AND_EXIT.replace(chr(10), chr(10) + "    ")}
                  AT_OPARG(frame->localsplus) = Py_NewRef(res);
                  Py_XDECREF(old);  // (an exact number: runs no code)
                  slots[operand0] = 1;
              }}
              """,
              regs=f"a:{k} -- res:o",
              doc=f"res = local `oparg`'s object if the flag in spill slot `operand0` is set, else "
                  f"{kind.lower()}(a), then bound to the local too and the flag set")
          for kind, k, make in (("INT", "i", "PyLong_FromSsize_t"), ("FLOAT", "f", "PyFloat_FromDouble"))],
        # `y = x` of two number locals the loop stores, where the program
        # may see both bound to one object (an exit, a box, a call before
        # either is stored again): y is bound to x's object, made now if
        # the frame holds none (lower.py, `shadow`). When memory is
        # exhausted, each keeps an object of its own: no exit.
        *[uop(f"_SHARE_{kind}_LOCAL",
              f"""
              intptr_t *flag_of_x = &slots[operand1 & 0xFFFFFFFF], *flag_of_y = &slots[operand1 >> 32];
              PyObject *object = frame->localsplus[operand0];
              if (*flag_of_x == 0) {{
                  object = {make}(a);
                  if (object == NULL) {{
                      PyErr_Clear();
                  }}
                  else {{
                      PyObject *old = frame->localsplus[operand0];
                      frame->localsplus[operand0] = object;
                      Py_XDECREF(old);  // (an exact number: runs no code)
                      *flag_of_x = 1;
                  }}
              }}
              if (object != NULL) {{
                  PyObject *old = AT_OPARG(frame->localsplus);
                  AT_OPARG(frame->localsplus) = Py_NewRef(object);
                  Py_XDECREF(old);
                  *flag_of_y = 1;
              }}
              """,
              regs=f"a:{k} --",
              doc="bind local `oparg` to local `operand0`'s object (its value a), made now and bound to "
                  "`operand0` too unless the flag in spill slot `operand1` & 0xFFFFFFFF is set; then sets "
                  "it and the flag in spill slot `operand1` >> 32")
          for kind, k, make in (("INT", "i", "PyLong_FromSsize_t"), ("FLOAT", "f", "PyFloat_FromDouble"))],
        # `y = x = 0.0`: both bound to the code's constant, unless x has an
        # object already (a box made before y's store), which y takes.
        uop("_SHARE_CONST_LOCAL",
            """
            PyObject *constant = (PyObject *)operand0, *old;
            Py_ssize_t x = (Py_ssize_t)(operand1 & 0xFFFF);
            intptr_t *flag_of_x = &slots[(operand1 >> 16) & 0xFFFF], *flag_of_y = &slots[operand1 >> 32];
            if (*flag_of_x == 0) {
                old = frame->localsplus[x];
                if (old != constant) {
                    frame->localsplus[x] = Py_NewRef(constant);
                    Py_XDECREF(old);  // (an exact number: runs no code)
                }
                *flag_of_x = 1;
            }
            PyObject *object = frame->localsplus[x];
            old = AT_OPARG(frame->localsplus);
            if (old != object) {
                AT_OPARG(frame->localsplus) = Py_NewRef(object);
                Py_XDECREF(old);
            }
            *flag_of_y = 1;
            """,
            doc="bind local `oparg` to local x's object (x: `operand1` & 0xFFFF, its flag in spill slot "
                "(`operand1` >> 16) & 0xFFFF), binding x to the constant at `operand0` first unless its flag "
                "is set; set both flags (`oparg`'s in spill slot `operand1` >> 32)"),
        # The same where no one can see the two bound to one object unless
        # it exists already (record_base, _flag_copies): made by no one.
        uop("_ADOPT_LOCAL",
            """
            if (slots[operand1 & 0xFFFFFFFF] != 0) {
                PyObject *old = AT_OPARG(frame->localsplus);
                AT_OPARG(frame->localsplus) = Py_NewRef(frame->localsplus[operand0]);
                Py_XDECREF(old);  // (an exact number: runs no code)
                slots[operand1 >> 32] = 1;
            }
            """,
            doc="bind local `oparg` to local `operand0`'s object if the flag in spill slot "
                "`operand1` & 0xFFFFFFFF is set, and set the flag in spill slot `operand1` >> 32"),
        # Before a call, the frame gets the unboxed locals its callee may
        # read (sys._getframe(1).f_locals). The number the frame holds is
        # overwritten in place when only the frame holds it (nothing can see
        # it change; never a small int, whose identity `is` may test), else
        # a new box replaces it. Fails only when memory is exhausted, with
        # nothing lost (the trace still has the value): exit.
        uop("_SYNC_FLOAT_O", _sync("FLOAT", _FLOAT_REUSABLE, _FLOAT_REUSE),
            regs="a:f --", doc="local `oparg` = float(a), in place when only the frame holds its float"),
        uop("_SYNC_INT_O",
            _MAGNITUDE + _sync("INT", _INT_REUSABLE, _INT_REUSE),
            regs="a:i --", doc="local `oparg` = int(a), in place when only the frame holds its one-digit int "
                               "(and a is no small int)"),
        # The same for a local with a flag (_BOX_*_LOCAL): none when it is set.
        uop("_SYNC_FLOAT_FLAGGED_O",
            _flagged(_sync("FLOAT", _FLOAT_REUSABLE, _FLOAT_REUSE)) + "slots[operand0] = 1;",
            regs="a:f --", doc="_SYNC_FLOAT_O unless the flag in spill slot `operand0` is set; then sets it"),
        uop("_SYNC_INT_FLAGGED_O",
            _flagged(_MAGNITUDE + _sync("INT", _INT_REUSABLE, _INT_REUSE)) + "slots[operand0] = 1;",
            regs="a:i --", doc="_SYNC_INT_O unless the flag in spill slot `operand0` is set; then sets it"),
        uop("_EXIT_IF_WATCHED",
            """
            // Code the trace called set a tracer or a profiler (tools 6 and
            // 7), or another tool's events, globally or on this code (a
            // debugger: pdb.set_trace(), a breakpoint): none were when the
            // trace was entered (runtime.c, alone). The 15 global events'
            // tool bits read as 8 bytes twice (overlapping), every bit but
            // copyjit's (tool 5) in each byte.
            uint8_t *global = tstate->interp->monitors.tools;
            uint64_t head, tail;
            __builtin_memcpy(&head, global, 8);
            __builtin_memcpy(&tail, global + _PY_MONITORING_UNGROUPED_EVENTS - 8, 8);
            EXIT_IF(((head | tail) & 0xDFDFDFDFDFDFDFDFull) != 0);
            EXIT_IF(copyjit_watched_locally((PyCodeObject *)frame->f_executable));
            """,
            doc="exit if a tracer, a profiler or a tool other than copyjit's has events, globally or on "
                "the frame's code"),
        uop("_JUMP_IF_FRAME_UNSEEN", "JUMP_IF(frame->frame_obj == NULL);",
            doc="jump if the frame has no frame object: nothing outside it can have read or "
                "rebound its locals"),
        # Boxing to write the frame back (an exit, a nested loop's frame
        # handed over) has no way out: the frame is half written. On failure,
        # give the emergency reserve back (copyjit.h) and box again; the
        # interpreter, which runs the loops until the reserve can be mapped
        # again (runtime.c), then raises MemoryError itself.
        *[uop(f"_BOX_{kind}_LEAVING_O",
              f"""
              res = copyjit_reserve.pool_only ? NULL : {make}(a);
              if (res == NULL) {{
                  res = copyjit_{kind.lower()}_for_exit(tstate, a);
              }}
              """,
              regs=f"a:{k} -- res:o",
              doc=f"res = {kind.lower()}(a), for the frame: on failure the emergency reserve is "
                  "released and the box made again, else taken from the pool (copyjit.h)")
          for kind, k, make in (("INT", "i", "PyLong_FromSsize_t"), ("FLOAT", "f", "PyFloat_FromDouble"))],
        # An exit stub's push of a number on the recorded stack: one uop
        # where _RELOAD_*, _BOX_*_LEAVING_O and _PUSH_O were three.
        *[uop(f"_PUSH_{kind}_SLOT_LEAVING",
              f"""
              {ctype} a;
              __builtin_memcpy(&a, &slots[oparg], sizeof(a));
              PyObject *box = copyjit_reserve.pool_only ? NULL : {make}(a);
              if (box == NULL) {{
                  box = copyjit_{kind.lower()}_for_exit(tstate, a);
              }}
              value = box;
              """,
              stack="-- value", oparg_max=SPILL_SLOTS - 1,
              doc=f"push {kind.lower()}(spill slot `oparg`) onto the frame's stack, boxed as by "
                  f"_BOX_{kind}_LEAVING_O")
          for kind, ctype, make in (("INT", "intptr_t", "PyLong_FromSsize_t"),
                                    ("FLOAT", "double", "PyFloat_FromDouble"))],
        # A local written back as the trace leaves: in place when only the
        # frame holds its number (as _SYNC_*_O; not when boxing from the
        # pool is what a test is after), else boxed as _BOX_*_LEAVING_O.
        uop("_STORE_FLOAT_LEAVING",
            _leaving("FLOAT", _FLOAT_REUSABLE, _FLOAT_REUSE),
            regs="a:f --", doc="local `oparg` = float(a), in place when only the frame holds its float; "
                               "cannot fail (as _BOX_FLOAT_LEAVING_O)"),
        uop("_STORE_INT_LEAVING",
            _MAGNITUDE + _leaving("INT", _INT_REUSABLE, _INT_REUSE),
            regs="a:i --", doc="local `oparg` = int(a), in place when only the frame holds its one-digit "
                               "int (and a is no small int); cannot fail (as _BOX_INT_LEAVING_O)"),
        uop("_STORE_FLOAT_LEAVING_FLAGGED", _flagged(_leaving("FLOAT", _FLOAT_REUSABLE, _FLOAT_REUSE)),
            regs="a:f --", doc="_STORE_FLOAT_LEAVING unless the flag in spill slot `operand0` is set (the "
                               "frame holds the local's object)"),
        uop("_STORE_INT_LEAVING_FLAGGED", _flagged(_MAGNITUDE + _leaving("INT", _INT_REUSABLE, _INT_REUSE)),
            regs="a:i --", doc="_STORE_INT_LEAVING unless the flag in spill slot `operand0` is set (the "
                               "frame holds the local's object)"),
        # Object locals a loop keeps in spill slots (opt/virtual.py), each
        # a borrowed pointer: at the entry, releasing the frame's old values
        # when an exit writes the new ones must run no code; an exit writes
        # them back with a reference.
        uop(
            "_CHECK_VIRTUAL_LOCAL",
            """
            // One for each kept local, not one loop over them all: most are
            // numbers, and the loop cost n-body 2.5% of a step. (Not a count
            // of the locals bound to each object: that scan cost it 3%. Two
            // kept locals bound to one object that is not a number are rare
            // enough to leave for.)
            PyObject *value = AT_OPARG(frame->localsplus);
            PyTypeObject *type = value == NULL ? &PyFloat_Type : Py_TYPE(value);
            if (__builtin_expect(type != &PyFloat_Type, 0)) {
                if (type != &PyLong_Type && type != &PyUnicode_Type) {
                    EXIT_IF(Py_REFCNT(value) < 2);
                    const int64_t *later = (const int64_t *)operand0;
                    for (int64_t j = 1; j <= later[0]; j++) {
                        EXIT_IF(frame->localsplus[later[j]] == value);
                    }
                }
            }
            """,
            doc="exit unless local `oparg` is unbound, an exact float, int or str, or an object "
                "something else holds too and none of the locals of the list at `operand0` (its length, "
                "then the slots) is bound to",
        ),
        uop(
            "_STORE_VIRTUAL_LEAVING",
            """
            PyObject *old = AT_OPARG(frame->localsplus);
            if (old != a) {
                AT_OPARG(frame->localsplus) = Py_XNewRef(a);
                Py_XDECREF(old);
            }
            """,
            regs="a:o --",
            doc="local `oparg` = a (borrowed: a reference is made), unless it is a already",
        ),
        uop("_LOAD_GLOBAL_MODULE_O", f"{_GLOBAL}Py_INCREF(res);", regs="-- res:o",
            doc="res = the global in entry `oparg` of the globals' keys, version `operand0`"),
        uop("_LOAD_GLOBAL_MODULE_B", _GLOBAL, regs="-- res:o",
            doc="_LOAD_GLOBAL_MODULE_O's global, borrowed (the globals hold it while no code runs)"),
        uop("_LOAD_GLOBAL_BUILTIN_O", f"{_BUILTIN}Py_INCREF(res);", regs="-- res:o",
            doc="res = the builtin in entry `oparg` of the builtins' keys (version `operand1`), "
                "not shadowed by a global (globals' keys version `operand0`)"),
        uop("_LOAD_GLOBAL_BUILTIN_B", _BUILTIN, regs="-- res:o",
            doc="_LOAD_GLOBAL_BUILTIN_O's builtin, borrowed (the builtins hold it while no code runs)"),
        uop(
            "_STORE_GLOBAL_O",
            """
            // The key is there (its keys version was guarded): no resize, no
            // allocation, so no failure.
            if (PyDict_SetItem(frame->f_globals, (PyObject *)operand0, a) < 0) {
                Py_FatalError("copyjit: storing an existing global failed");
            }
            """,
            regs="a:o --",
            doc="the global named `operand0` = a (borrowed); guard the globals' keys version first",
        ),
        uop(
            "_GUARD_GLOBALS_VERSION",
            "EXIT_IF(((PyDictObject *)frame->f_globals)->ma_keys->dk_version != (uint32_t)operand0);",
            doc="exit unless the globals' keys are at version `operand0` (no key added or removed)",
        ),
        uop("_LOAD_WATCH_EPOCH", "res = (intptr_t)copyjit_watch.epoch;", regs="-- res:i",
            doc="res = the epoch of watched dict keys (copyjit.h's watch_state), before a loop whose "
                "loads of globals moved before it"),
        uop("_GUARD_WATCH_EPOCH", "EXIT_IF((intptr_t)copyjit_watch.epoch != a);", regs="a:i --",
            doc="exit if a watched dict key may have changed since the epoch was a (_LOAD_WATCH_EPOCH)"),
        uop("_LOAD_ATTR_MODULE_O", f"{_MODULE_ATTRIBUTE}Py_INCREF(res);", regs="a:o -- res:o",
            doc="res = the attribute in entry `oparg` of module a's dict keys, version `operand0` "
                "(a guarded to be a module)"),
        uop("_LOAD_ATTR_MODULE_B", _MODULE_ATTRIBUTE, regs="a:o -- res:o",
            doc="_LOAD_ATTR_MODULE_O's attribute, borrowed (the module's dict holds it while no code runs)"),
        uop("_LOAD_ATTR_INSTANCE_O", f"{_INSTANCE_VALUE}Py_INCREF(res);", regs="a:o -- res:o",
            doc="res = the attribute in entry `oparg` of a's inline values, `operand0` bytes into a "
                "(a's type guarded by version); exits when a dict of a's own holds them or it is unset"),
        uop("_LOAD_ATTR_INSTANCE_B", _INSTANCE_VALUE, regs="a:o -- res:o",
            doc="_LOAD_ATTR_INSTANCE_O's attribute, borrowed (a holds it)"),
        uop("_STORE_ATTR_INSTANCE_O", f"{_INSTANCE_SLOT}values->values[oparg] = value;\nPy_DECREF(old);",
            regs="value:o a:o --",
            doc="a's attribute in entry `oparg` of its inline values, `operand0` bytes into a, = value "
                "(takes it; a's type guarded by version); exits when a has a dict of its own or the "
                "attribute is unset"),
        _number_attribute_store("F", "float", """
            if (Py_IS_TYPE(old, &PyFloat_Type) && Py_REFCNT(old) == 1) {
                // Only a holds the old float: it becomes the new one.
                ((PyFloatObject *)old)->ob_fval = value;
            }
            """, ""),
        _number_attribute_store("I", "int", """
            PyLongObject *number = (PyLongObject *)old;
            uint64_t size = value < 0 ? -(uint64_t)value : (uint64_t)value;
            // Only a holds the old int, of one digit at most (room for one):
            // it becomes the new one if that fits one digit too and is not
            // one of CPython's small ints (those are its cached objects).
            if (PyLong_CheckExact(old) && Py_REFCNT(old) == 1 && _PyLong_IsCompact(number)
                && size < PyLong_BASE && (value < -_PY_NSMALLNEGINTS || value >= _PY_NSMALLPOSINTS)) {
                _PyLong_SetSignAndDigitCount(number, value < 0 ? -1 : 1, 1);
                number->long_value.ob_digit[0] = (digit)size;
            }
            """, " and both fit one digit (not a small int)"),
        uop(
            "_LOAD_ATTR_GENERIC_O",
            """
            res = PyObject_GenericGetAttr(a, (PyObject *)operand0);
            if (res == NULL) {
                PyErr_Clear();
            }
            EXIT_IF(res == NULL);
            """,
            regs="a:o -- res:o",
            doc="res = a.`operand0` by generic lookup; exits if it fails (a's type is guarded to "
                "one whose lookup has no side effects)",
        ),
        uop(
            "_BINARY_OP_O",
            f"res = _PyEval_BinaryOps[oparg](a, b);\n{_CLEAR_AND_EXIT}",
            regs="a:o b:o -- res:o",
            doc="res = a (binary operator `oparg`, an NB_* number) b, for guarded exact ints; "
                "exits if it fails (the interpreter re-executes it and raises)",
        ),
        uop(
            "_ADD_INT_O_I",
            """
            PyLongObject *big = (PyLongObject *)a;
            PyObject *sum_object = NULL;
            // Only the trace holds a, a positive int of two digits or more,
            // and b is one digit: nothing can tell a from a new int, so it
            // becomes a + b in place unless the carry would need a new top
            // digit (no allocation, and O(1) digits touched on average).
            if (Py_REFCNT(a) == 1 && (uint64_t)b < PyLong_BASE && PyLong_CheckExact(a)
                && !_PyLong_IsCompact(big) && _PyLong_IsPositive(big)) {
                digit *digits = big->long_value.ob_digit;
                Py_ssize_t count = _PyLong_DigitCount(big), i = 0;
                twodigits sum = (twodigits)digits[0] + (twodigits)b;
                if (sum >= PyLong_BASE) {
                    for (i = 1; i < count && digits[i] == PyLong_MASK; i++) {
                    }
                }
                if (i < count) {
                    digits[0] = (digit)(sum & PyLong_MASK);
                    if (sum >= PyLong_BASE) {
                        for (Py_ssize_t j = 1; j < i; j++) {
                            digits[j] = 0;
                        }
                        digits[i] += 1;
                    }
                    sum_object = a;
                }
            }
            if (sum_object == NULL) {
                PyObject *other = PyLong_FromSsize_t(b);
                if (other != NULL) {
                    sum_object = PyNumber_Add(a, other);
                    Py_DECREF(other);
                }
                if (sum_object == NULL) {
                    PyErr_Clear();  // a is still the trace's: the interpreter redoes it and raises
                }
                EXIT_IF(sum_object == NULL);
                Py_DECREF(a);
            }
            res = sum_object;
            """,
            regs="a:o b:i -- res:o",
            doc="res = a + b for a guarded exact int a (taken) and a machine int b, in place when only "
                "the trace holds a; exits (a not taken) if it fails",
        ),
        uop(
            "_COMPARE_OP_O",
            f"res = PyObject_RichCompare(a, b, (int)oparg);\n{_CLEAR_AND_EXIT}",
            regs="a:o b:o -- res:o",
            doc="res = a (comparison `oparg`, Py_LT ... Py_GE) b, for guarded exact ints; "
                "exits if it fails",
        ),
        uop(
            "_CALL_O",
            """
            // A trace runs inside the JIT's sys.monitoring callback, where
            // CPython sends no events (tstate->tracing): code it calls gets
            // them again, so that its own hot loops enter their traces. Only
            // near the bottom of the C stack: a trace entered so nests a
            // callback, a trace (with its spill slots) and an evaluation loop
            // (3 of the C recursion limit's levels). Deeper, the callee runs
            // in the interpreter, where Python recursion uses no C stack.
            int tracing = tstate->tracing;
            if (tstate->c_recursion_remaining > Py_C_RECURSION_LIMIT - 300) {
                tstate->tracing = 0;
            }
            res = PyObject_Vectorcall(f, (PyObject *const *)&slots[oparg], operand0, NULL);
            tstate->tracing = tracing;
            ERROR_IF(res == NULL);
            """,
            regs="f:o -- res:o",
            doc="res = f(*spill slots `oparg` .. `oparg + operand0`), with monitoring events on",
        ),
        uop(
            "_RERAISER_O",
            """
            PyObject *raised = PyErr_GetRaisedException();
            res = copyjit_reserve.pool_only ? NULL : PyCFunction_NewEx((PyMethodDef *)operand0, raised, NULL);
            if (res == NULL) {  // as _BOX_INT_LEAVING_O: the frame must be handed back
                res = copyjit_reraiser_for_exit(tstate, (PyMethodDef *)operand0, raised);
            }
            Py_DECREF(raised);
            Py_DECREF(f);
            """,
            regs="f:o -- res:o",
            doc="replace callable f by a builtin (method def `operand0`) that raises the exception "
                "that is set, for the interpreter to call at the CALL that raised",
        ),
        uop(
            "_GET_ITER_O",
            """
            int64_t idle = copyjit_reserve.idle_iters_count;
            PyObject *kept = idle > 0 ? copyjit_reserve.idle_iters[idle - 1] : NULL;
            // (expected: else clang saves the registers for the call on both paths)
            if (__builtin_expect(kept != NULL && Py_TYPE(a) == &PyList_Type && Py_REFCNT(kept) == 1
                                 && copyjit_untraced(), 1)) {
                // One a trace released (_RELEASE_ITER_O).
                copyjit_reserve.idle_iters[idle - 1] = NULL;
                copyjit_reserve.idle_iters_count = idle - 1;
                _PyListIterObject *it = (_PyListIterObject *)kept;
                it->it_index = 0;
                it->it_seq = (PyListObject *)Py_NewRef(a);
                res = kept;
            }
            else {
                if (kept != NULL && Py_REFCNT(kept) != 1) {
                    // Something took it from the GC's lists: it keeps it.
                    copyjit_reserve.idle_iters[idle - 1] = NULL;
                    copyjit_reserve.idle_iters_count = idle - 1;
                    Py_DECREF(kept);  // (not its last reference)
                }
                SYNC_SP();
                res = PyObject_GetIter(a);
                if (res == NULL) {
                    PyErr_Clear();
                }
                EXIT_IF(res == NULL);
            }
            """,
            regs="a:o -- res:o",
            doc="res = iter(a) for a guarded list, tuple, range or iterator (no side effects), a list's "
                "an idle one when there is; exits if it fails",
        ),
        uop(
            "_RELEASE_ITER_O",
            """
            int64_t idle = copyjit_reserve.idle_iters_count;
            if (Py_REFCNT(a) == 1 && Py_TYPE(a) == &PyListIter_Type && idle < COPYJIT_IDLE_ITERS
                && copyjit_untraced()) {
                // Kept for _GET_ITER_O, idle as an exhausted one (3.13: an
                // index of -1 and no list; next() and len() look at those).
                _PyListIterObject *it = (_PyListIterObject *)a;
                PyListObject *seq = it->it_seq;
                it->it_seq = NULL;
                it->it_index = -1;
                copyjit_reserve.idle_iters[idle] = a;
                copyjit_reserve.idle_iters_count = idle + 1;
                Py_XDECREF(seq);
            }
            else {
                Py_DECREF(a);
            }
            """,
            regs="a:o --",
            doc="release a, an iterator a get_iter made: kept idle when it is a list's and this was its "
                "last reference",
        ),
        uop(
            "_GUARD_DONE_O",
            """
            int done;
            if (Py_TYPE(a) == &PyRangeIter_Type) {
                done = ((_PyRangeIterObject *)a)->len <= 0;
            }
            else if (Py_TYPE(a) == &PyListIter_Type) {
                _PyListIterObject *it = (_PyListIterObject *)a;
                done = it->it_seq == NULL || it->it_index >= PyList_GET_SIZE(it->it_seq);
            }
            else if (Py_TYPE(a) == &PyTupleIter_Type) {
                _PyTupleIterObject *it = (_PyTupleIterObject *)a;
                done = it->it_seq == NULL || it->it_index >= PyTuple_GET_SIZE(it->it_seq);
            }
            else {
                done = 0;
            }
            EXIT_IF(!done);
            """,
            regs="a:o --",
            doc="exit unless a is an exhausted range, list or tuple iterator",
        ),
        uop("_POP_O", "res = value;", stack="value --", regs="-- res:o",
            doc="pop the top of the frame's stack into a register (takes the reference)"),
        uop("_POP_NULL", "(void)value;", stack="value --", doc="pop the NULL on top of the frame's stack"),
        uop(
            "_CALL_TRACE",
            """
            // A loop nested in this trace's: run its trace on the frame, which
            // this trace has handed over (locals written, stack pushed, IP
            // set). Exit if the inner loop's trace is not the one recorded,
            // or if the emergency reserve is gone (released while handing the
            // frame over, or by a trace that code this one called ran): native
            // code runs only while an exit can have it (copyjit.h).
            location_record *record = (location_record *)operand0;
            trace_cell *cell = record->cell;
            EXIT_IF(cell != (trace_cell *)operand1 || cell->trace == NULL ||
                    copyjit_reserve.address == NULL);
            // It holds its share of the pool too (copyjit.h); made by the
            // next entry from the interpreter, not here.
            int64_t held = copyjit_reserve.per_activation;
            EXIT_IF(copyjit_reserve.pooled < copyjit_reserve.held + held ||
                    copyjit_reserve.reraisers_pooled <= copyjit_reserve.activations);
            copyjit_reserve.held += held;
            copyjit_reserve.activations++;
            intptr_t inner_slots[SPILL_SLOTS];
            cell->active++;
            status = cell->trace(frame, sp, tstate, inner_slots, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0);
            cell->active--;
            copyjit_reserve.held -= held;
            copyjit_reserve.activations--;
            // The inner trace left the frame exact, its stack depth saved.
            sp = frame->localsplus + frame->stacktop;
            if (copyjit_reserve.address == NULL) {
                status = -1;  // its exit spent the reserve: no exit's number, so leave as it left
            }
            """,
            regs="-- status:i",
            doc="run the trace in location record `operand0` (its cell must be `operand1`) on this "
                "frame; status = the exit it took (-1 if the emergency reserve is gone after it)",
        ),
        uop(
            "_LEN_O",
            "res = Py_SIZE(a);",
            regs="a:o -- res:i",
            doc="res = len(a) for a guarded list or tuple",
        ),
        uop(
            "_LEN_STR_O",
            "res = PyUnicode_GET_LENGTH(a);",
            regs="a:o -- res:i",
            doc="res = len(a) for a guarded str (its length in code points)",
        ),
        uop(
            "_LIST_APPEND_O",
            "ERROR_IF(PyList_Append(list, item) < 0);",
            regs="list:o item:o --",
            doc="list.append(item) (borrows both)",
        ),
        *[_subscript(kind, borrowed, constant) for constant in (False, True) for kind in ("LIST", "TUPLE")
          for borrowed in (False, True)],
        *[_list_store(kind, constant, plain) for kind in ("O", "F") for constant in (False, True)
          for plain in (False, True)],
        *[_float_store_over(constant) for constant in (False, True)],
        uop(
            "_UNPACK_TUPLE2_O",
            """
            EXIT_IF(!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2);
            a = Py_NewRef(PyTuple_GET_ITEM(t, 0));
            b = Py_NewRef(PyTuple_GET_ITEM(t, 1));
            """,
            regs="t:o -- a:o b:o",
            doc="a, b = t for a tuple of two; exits otherwise",
        ),
        *[_sequence_iteration(kind, borrowed, known) for kind in ("LIST", "TUPLE")
          for borrowed in (False, True) for known in (False, True)],
        *[_enumerate(kind) for kind in ("LIST", "TUPLE")],
    ]


_TABLE: list[Uop] = [
    # --- boxed values on the frame's value stack -------------------------
    uop("_NOP", "", doc="does nothing"),
    uop(
        "_LOAD_FAST",
        "value = Py_NewRef(AT_OPARG(frame->localsplus));",
        stack="-- value",
        doc="push local `oparg` (must be bound)",
    ),
    uop(
        "_LOAD_FAST_OR_EXIT",
        """
        EXIT_IF(AT_OPARG(frame->localsplus) == NULL);
        value = Py_NewRef(AT_OPARG(frame->localsplus));
        """,
        stack="-- value",
        doc="push local `oparg`; exit if it is unbound",
    ),
    uop(
        "_STORE_FAST",
        """
        PyObject *old = AT_OPARG(frame->localsplus);
        AT_OPARG(frame->localsplus) = value;
        Py_XDECREF(old);
        """,
        stack="value --",
        doc="pop into local `oparg`",
    ),
    uop(
        "_LOAD_CONST",
        "value = Py_NewRef((PyObject *)operand0);",
        stack="-- value",
        doc="push the object at `operand0` (pass it to emit(constants=...) to keep it alive)",
    ),
    uop("_POP_TOP", "Py_DECREF(value);", stack="value --", doc="drop the top of stack"),
    uop(
        "_GUARD_TOS_TYPE",
        "EXIT_IF(Py_TYPE(value) != (PyTypeObject *)operand0);",
        stack="value -- value",
        doc="exit unless the top of stack has type `operand0`",
    ),
    uop(
        "_GUARD_NOS_TYPE",
        "EXIT_IF(Py_TYPE(value) != (PyTypeObject *)operand0);",
        stack="value top -- value top",
        doc="exit unless the second of stack has type `operand0`",
    ),
    *_boxed_binary("_BINARY_OP", "_PyEval_BinaryOps[oparg](left, right)",
                   "boxed binary operator `oparg` (an NB_* number, as BINARY_OP)"),
    *_boxed_binary("_COMPARE_OP", "PyObject_RichCompare(left, right, (int)oparg)",
                   "boxed rich comparison `oparg` (Py_LT ... Py_GE)"),
    uop(
        "_TO_BOOL",
        """
        int truth = PyObject_IsTrue(value);
        Py_DECREF(value);
        ERROR_IF(truth < 0);
        res = truth ? Py_True : Py_False;
        """,
        stack="value -- res",
        doc="replace the top of stack by its truth value",
    ),
    uop(
        "_POP_JUMP_IF_TRUE",
        "int taken = Py_IsTrue(cond); Py_DECREF(cond); JUMP_IF(taken);",
        stack="cond --",
        doc="pop a bool (guard or _TO_BOOL first: any other object counts as false); jump if True",
    ),
    uop(
        "_POP_JUMP_IF_FALSE",
        "int taken = Py_IsFalse(cond); Py_DECREF(cond); JUMP_IF(taken);",
        stack="cond --",
        doc="pop a bool (guard or _TO_BOOL first: any other object counts as true); jump if False",
    ),
    # --- boxed, for traces on live frames ---------------------------------
    uop(
        "_GUARD_IS_TRUE_POP",
        "EXIT_IF(cond != Py_True);",  # True is immortal: nothing to release
        stack="cond --",
        doc="pop the top of stack, which must be True (the branch the trace recorded)",
    ),
    uop(
        "_GUARD_IS_FALSE_POP",
        "EXIT_IF(cond != Py_False);",
        stack="cond --",
        doc="pop the top of stack, which must be False (the branch the trace recorded)",
    ),
    *_range_iteration(),
    # --- between boxed and unboxed ---------------------------------------
    uop(
        "_UNBOX_INT",
        _unbox_int("value") + "Py_DECREF(value);\n",
        stack="value --",
        regs="-- res:i",
        doc="pop an exact int into a register; exits if it is not one or needs >64 bits",
    ),
    uop(
        "_BOX_INT",
        "value = PyLong_FromSsize_t(a); ERROR_IF(value == NULL);",
        stack="-- value",
        regs="a:i --",
        doc="push the int in a register",
    ),
    uop(
        "_UNBOX_FLOAT",
        """
        EXIT_IF(!PyFloat_CheckExact(value));
        res = PyFloat_AS_DOUBLE(value);
        Py_DECREF(value);
        """,
        stack="value --",
        regs="-- res:f",
        doc="pop an exact float into a register; exits if it is not one",
    ),
    uop(
        "_BOX_FLOAT",
        "value = PyFloat_FromDouble(a); ERROR_IF(value == NULL);",
        stack="-- value",
        regs="a:f --",
        doc="push the float in a register",
    ),
    # --- unboxed values in registers -------------------------------------
    uop("_LOAD_INT_CONST", "res = (intptr_t)operand0;", regs="-- res:i", doc="res = operand0"),
    uop(
        "_LOAD_FLOAT_CONST",
        "uint64_t bits = operand0; __builtin_memcpy(&res, &bits, sizeof(res));",
        regs="-- res:f",
        doc="res = the double whose bits are operand0",
    ),
    uop("_COPY_INT", "res = a;", regs="a:i -- res:i", doc="res = a"),
    uop("_COPY_FLOAT", "res = a;", regs="a:f -- res:f", doc="res = a"),
    _int_binary("_ADD_INT", "__builtin_add_overflow", "res = a + b"),
    _int_binary("_SUB_INT", "__builtin_sub_overflow", "res = a - b"),
    _int_binary("_MUL_INT", "__builtin_mul_overflow", "res = a * b"),
    *_bitwise(),
    *_floor_division(),
    uop(
        "_NEG_INT",
        "EXIT_IF(a == INTPTR_MIN); res = -a;",
        regs="a:i -- res:i",
        doc="res = -a; exits for the one value whose negation overflows",
    ),
    _float_binary("_ADD_FLOAT", "+"),
    _float_binary("_SUB_FLOAT", "-"),
    _float_binary("_MUL_FLOAT", "*"),
    _float_power(),
    _float_power_const(),
    uop(
        "_DIV_FLOAT",
        "EXIT_IF(b == 0.0); res = a / b;",
        regs="a:f b:f -- res:f",
        doc="res = a / b; exits on a zero divisor (Python raises there)",
    ),
    uop("_NEG_FLOAT", "res = -a;", regs="a:f -- res:f", doc="res = -a"),
    uop(
        "_INT_TO_FLOAT",
        "res = (double)a;",
        regs="a:i -- res:f",
        doc="res = float(a), rounded to nearest as Python does",
    ),
    *_branches("i", "INT"),
    *_branches("f", "FLOAT"),
    *_spills(),
    *_objects(),
    *_math(),
    *_sequences(),
    # --- control ---------------------------------------------------------
    uop(
        "_CHECK_EVAL_BREAKER",
        "EXIT_IF(_Py_atomic_load_uintptr_relaxed(&tstate->eval_breaker)"
        " & _PY_EVAL_EVENTS_MASK);",
        doc="exit when a signal, pending call or GIL drop request is waiting",
    ),
    uop(
        "_COUNT",
        "*(int64_t *)operand0 += 1;",
        doc="add one to the 64-bit counter at `operand0` (a trace's iterations)",
    ),
    uop(
        "_SET_IP",
        "frame->instr_ptr = (_Py_CODEUNIT *)operand0;",
        doc="point the frame's instruction pointer at `operand0`",
    ),
    uop("_JUMP", "JUMP();", ends_trace=True, doc="jump to the jump target"),
    uop(
        "_SET_IP_I_JUMP",
        # (i1 written as the register it is: a branching uop declares no
        # outputs, but the shared end of the exit stubs reads the number there.)
        "frame->instr_ptr = (_Py_CODEUNIT *)operand0;\ni1 = (intptr_t)operand1;\nJUMP();",
        ends_trace=True,
        doc="point the frame's instruction pointer at `operand0`, i1 = operand1 (an exit stub's number), "
            "jump to the jump target: an exit stub's end, in one uop",
    ),
    # A guard's exit as data (objects.c's copyjit_exit_data says the layout
    # of the table at `operand0`): the values from the registers the guard
    # left them in to their slots, the references the exit takes, its
    # bridge if one is linked (nothing lives in a register then: the
    # bridge reads the slots), else its pushes and the resume point; then
    # on to the shared end with the exit's number in i1.
    uop(
        "_EXIT_DATA",
        """
        const int64_t *data = (const int64_t *)operand0;
        copyjit_exit_result done = copyjit_exit_data(frame, sp, tstate, slots, data, i0, i1, i2, i3,
                                                     f0, f1, f2, f3);
        i0 = 0; i2 = 0; i3 = 0; f0 = 0.0; f1 = 0.0; f2 = 0.0; f3 = 0.0;  // (none kept across the call)
        if (done.bridge != NULL) {
            TAIL(done.bridge);
        }
        sp = done.sp;
        i1 = (intptr_t)data[1];
        JUMP();
        """,
        ends_trace=True,
        doc="a guard's exit, from the table at `operand0`: moves to spill slots, new references, "
            "releases, the bridge if one is linked, else pushes, the resume point, i1 = the exit's "
            "number, jump to the jump target",
    ),
    uop("_GOTO", "TAIL(operand0);", ends_trace=True,
        doc="continue at the code at `operand0` (a bridge's way back into its loop)"),
    uop(
        "_BRIDGE_OR_CONTINUE",
        "jit_func bridge = *(jit_func *)operand0;\nif (bridge != NULL) {\n    TAIL(bridge);\n}",
        doc="continue at the bridge whose address is stored at `operand0`, if one is linked",
    ),
    uop(
        "_EXIT_TRACE",
        "SYNC_SP(); return (intptr_t)oparg;",
        ends_trace=True,
        oparg_max=2**31 - 1,  # negative statuses mean an error
        doc="save the stack depth in the frame and return exit code `oparg`",
    ),
    uop(
        "_EXIT_TRACE_I",
        "SYNC_SP(); return (intptr_t)status;",
        regs="status:i --",
        ends_trace=True,
        doc="save the stack depth in the frame and return exit code `status` (the shared end of exit stubs)",
    ),
    uop(
        "_FATAL_ERROR",
        'Py_FatalError("copyjit: a value this trace boxed could not be unboxed; '
        'the frame cannot be restored");',
        ends_trace=True,
        doc="stop the process: the one failure an exit cannot undo (unboxing what the trace "
            "has just boxed, which cannot fail)",
    ),
    uop(
        "_ERROR_TRACE",
        "SYNC_SP(); return -1;",
        ends_trace=True,
        doc="save the stack depth and return with the exception that is set",
    ),
]

UOPS: dict[str, Uop] = {op.name: op for op in _TABLE}
if len(UOPS) != len(_TABLE):
    raise AssertionError("a uop is declared twice")
