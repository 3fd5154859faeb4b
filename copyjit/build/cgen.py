"""C source for the stencils, generated from the uop table.

One translation unit per uop holds every register variant of it, so the
variants share their constant data and the build compiles ~40 files, not
~800.
"""

from __future__ import annotations

import textwrap

from copyjit.uops import C_TYPES, REGISTER_TYPES, Uop, Variant

HEADER = '#include "copyjit.h"\n'

# CPython's internal headers #define its own uop names (_LOAD_FAST is 414):
# the C function of a stencil is its name behind this prefix.
C_PREFIX = "stencil"

# The holes a body may name, bound to locals only when used so that an unused
# one leaves no relocation behind.
#
# A hole's value is the address of an extern, which C says is never 0: clang
# uses that (a `switch (oparg)` lost its `case 0`). The empty asm hides where
# the value came from, so 0 is a value like any other; it emits no code.
_OPERANDS = {
    name: f"uintptr_t {name};\n    __asm__(\"\" : \"=r\"({name}) : \"0\"((uintptr_t){hole}));"
    for name, hole in (("oparg", "_JIT_OPARG"), ("operand0", "_JIT_OPERAND0"), ("operand1", "_JIT_OPERAND1"))
}


def _macros(op: Uop) -> str:
    popped = len(op.stack_in) - op.kept
    # No __builtin_expect on EXIT_IF: with it clang lays the exit path last,
    # which keeps the `jmp CONTINUE` off the end (346 of 777 stencils ended
    # in one, against 606 without it, and the code is 9% larger).
    return (
        # A guard leaves with the stack as it found it: the popped inputs
        # are still in their slots.
        f"#define EXIT_IF(COND) do {{ if (COND) {{ sp += {popped}; TAIL(_JIT_EXIT_TARGET); }} }} while (0)\n"
        # The body released the inputs before failing; they are popped already.
        "#define ERROR_IF(COND) do { if (__builtin_expect(!!(COND), 0)) "
        "{ TAIL(_JIT_ERROR_TARGET); } } while (0)\n"
        "#define JUMP_IF(COND) do { if (COND) { TAIL(_JIT_JUMP_TARGET); } } while (0)\n"
        "#define JUMP() TAIL(_JIT_JUMP_TARGET)\n"
        # Every register value dead from here (Uop.clobbers): what the body
        # calls need not keep them, and the outputs are assigned after it.
        '#define CLOBBER() __asm__("" : "=r"(i0), "=r"(i1), "=r"(i2), "=r"(i3), '
        '"=x"(f0), "=x"(f1), "=x"(f2), "=x"(f3))\n'
        # A decref publishes the stack depth only when it frees (so a body
        # whose only calls out are decrefs has no SYNC_SP: Uop.needs_sync).
        "#undef Py_DECREF\n"
        "#define Py_DECREF(OP) copyjit_decref(_PyObject_CAST(OP), frame, sp, tstate)\n"
        "#undef Py_XDECREF\n"
        "#define Py_XDECREF(OP) do { PyObject *xop_ = _PyObject_CAST(OP); "
        "if (xop_ != NULL) { copyjit_decref(xop_, frame, sp, tstate); } } while (0)\n"
    )


_UNDEF = ("#undef EXIT_IF\n#undef ERROR_IF\n#undef JUMP_IF\n#undef JUMP\n#undef CLOBBER\n"
          "#undef Py_DECREF\n#undef Py_XDECREF\n")


def _check(op: Uop) -> None:
    if op.may_jump and (op.stack_out or op.reg_out or op.may_exit or op.may_error):
        # A branch decides last, so it can neither produce values nor fail
        # after deciding without breaking guards-before-effects.
        raise ValueError(f"{op.name}: a branching uop may only consume inputs")


def variant_source(variant: Variant) -> str:
    """The C function of one variant.

    before the body: inputs read into locals, consumed inputs popped, and
                     if the body may call out other than by a decref, the
                     depth published (SYNC_SP) for the GC, which walks frames
                     up to it (a decref publishes it itself when it frees)
    after the body:  outputs pushed, register outputs assigned, continue
    """
    op = variant.uop
    lines = [f"STENCIL({C_PREFIX}{variant.name})", "{"]
    lines += [f"    {decl}" for word, decl in _OPERANDS.items() if op.uses(word)]
    depth = len(op.stack_in)
    for index, name in enumerate(op.stack_in):
        lines.append(f"    PyObject *{name} = sp[{index - depth}];")
    for operand, reg in zip(op.reg_in, variant.ins, strict=True):
        ctype = C_TYPES[operand.kind]
        lines.append(f"    {ctype} {operand.name} = ({ctype}){reg};")
    pushed = op.stack_out[op.kept :]
    lines += [f"    PyObject *{name};" for name in pushed]
    lines += [f"    {C_TYPES[o.kind]} {o.name};" for o in op.reg_out]
    if depth > op.kept:
        lines.append(f"    sp -= {depth - op.kept};")
    if op.needs_sync:
        lines.append("    SYNC_SP();")
    lines += ["    {", textwrap.indent(op.body, " " * 8), "    }"]
    for index, name in enumerate(pushed):
        lines.append(f"    sp[{index}] = {name};")
    if pushed:
        lines.append(f"    sp += {len(pushed)};")
    for operand, reg in zip(op.reg_out, variant.outs, strict=True):
        lines.append(f"    {reg} = ({REGISTER_TYPES[operand.kind]}){operand.name};")
    if not op.ends_trace:
        lines.append("    TAIL(_JIT_CONTINUE);")
    lines.append("}")
    return "\n".join(lines) + "\n"


def uop_source(op: Uop) -> str:
    """The translation unit of one uop: all its register variants."""
    _check(op)
    parts = [HEADER, _macros(op)]
    parts += [variant_source(v) for v in op.variants()]
    parts.append(_UNDEF)
    return "\n".join(parts)
