"""Differential fuzzing of the backend: random uop chains, native vs a Python model.

Hypothesis writes straight-line programs with forward branches over unboxed
registers, spill slots, boxed locals and the value stack; each runs natively
and in `Model`, which states each uop's meaning in Python. Exit code,
locals, stack and exception must agree, and refcounts must come back.

CI runs a fixed, derandomized batch; COPYJIT_FUZZ_EXAMPLES=N runs more.
"""

from __future__ import annotations

import math
import operator
import os
import struct
import sys
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copyjit.backend import asm
from copyjit.backend.asm import float_bits
from copyjit.backend.emitter import Instruction, emit
from copyjit.uops import REGISTERS
from tests.conftest import NB, run

NLOCALS, STACK, SLOTS = 4, 6, 4
INT64 = (-(2**63), 2**63 - 1)
EXAMPLES = int(os.environ.get("COPYJIT_FUZZ_EXAMPLES", "300"))


class Exit(Exception):
    """A guard failed: the trace leaves by the exit of instruction `index`."""

    def __init__(self, index: int) -> None:
        self.index = index


def _fits(value: int) -> bool:
    return INT64[0] <= value <= INT64[1]


def _bits_to_float(bits: int) -> float:
    return float(struct.unpack("<d", (bits & (2**64 - 1)).to_bytes(8, "little"))[0])


@dataclass
class Model:
    """What each uop means, in Python. Registers start at 0 and 0.0."""

    locals: list[object]
    stack: list[object] = field(default_factory=list)
    regs: dict[str, object] = field(default_factory=lambda: {
        **dict.fromkeys(REGISTERS["i"], 0), **dict.fromkeys(REGISTERS["f"], 0.0)})
    slots: dict[int, object] = field(default_factory=dict)

    def step(self, index: int, inst: Instruction) -> int | None:
        """Run one instruction; the index of a taken branch, or None."""
        name, r = inst.name, self.regs
        ins = [r[x] for x in inst.ins]
        if name == "_LOAD_INT_CONST":
            r[inst.outs[0]] = inst.operand0 - 2**64 if inst.operand0 > INT64[1] else inst.operand0
        elif name == "_LOAD_FLOAT_CONST":
            r[inst.outs[0]] = _bits_to_float(inst.operand0)
        elif name in ("_COPY_INT", "_COPY_FLOAT"):
            r[inst.outs[0]] = ins[0]
        elif name in ("_ADD_INT", "_SUB_INT", "_MUL_INT"):
            a, b = ins
            result = {"_ADD_INT": a + b, "_SUB_INT": a - b, "_MUL_INT": a * b}[name]  # type: ignore[operator]
            if not _fits(result):
                raise Exit(index)
            r[inst.outs[0]] = result
        elif name in ("_FLOORDIV_INT", "_MOD_INT"):
            a, b = ins
            if b == 0 or (name == "_FLOORDIV_INT" and not _fits(a // b)):  # type: ignore[operator]
                raise Exit(index)
            r[inst.outs[0]] = a // b if name == "_FLOORDIV_INT" else a % b  # type: ignore[operator]
        elif name == "_NEG_INT":
            if ins[0] == INT64[0]:
                raise Exit(index)
            r[inst.outs[0]] = -ins[0]  # type: ignore[operator]
        elif name in ("_ADD_FLOAT", "_SUB_FLOAT", "_MUL_FLOAT", "_DIV_FLOAT"):
            a, b = ins
            if name == "_DIV_FLOAT" and b == 0.0:
                raise Exit(index)
            r[inst.outs[0]] = {"_ADD_FLOAT": lambda: a + b, "_SUB_FLOAT": lambda: a - b,  # type: ignore[operator]
                               "_MUL_FLOAT": lambda: a * b, "_DIV_FLOAT": lambda: a / b}[name]()  # type: ignore[operator]
        elif name == "_NEG_FLOAT":
            r[inst.outs[0]] = -ins[0]  # type: ignore[operator]
        elif name == "_INT_TO_FLOAT":
            r[inst.outs[0]] = float(ins[0])  # type: ignore[arg-type]
        elif name in ("_SPILL_INT", "_SPILL_FLOAT"):
            self.slots[inst.oparg] = ins[0]
        elif name in ("_RELOAD_INT", "_RELOAD_FLOAT"):
            r[inst.outs[0]] = self.slots[inst.oparg]
        elif name.startswith("_JUMP_IF_"):
            a, b = ins
            ops = {"LT": a < b, "LE": a <= b, "EQ": a == b, "NE": a != b, "GT": a > b, "GE": a >= b}  # type: ignore[operator]
            return inst.jump if ops[name[-2:]] else None
        else:
            self._boxed(index, inst, ins)
        return None

    def _boxed(self, index: int, inst: Instruction, ins: list[object]) -> None:
        name, stack = inst.name, self.stack
        if name == "_NOP":
            pass
        elif name == "_LOAD_FAST":
            stack.append(self.locals[inst.oparg])
        elif name == "_STORE_FAST":
            self.locals[inst.oparg] = stack.pop()
        elif name == "_POP_TOP":
            stack.pop()
        elif name == "_UNBOX_INT":
            value = stack[-1]
            if type(value) is not int or not _fits(value):
                raise Exit(index)
            self.regs[inst.outs[0]] = stack.pop()
        elif name == "_UNBOX_FLOAT":
            if type(stack[-1]) is not float:
                raise Exit(index)
            self.regs[inst.outs[0]] = stack.pop()
        elif name in ("_BOX_INT", "_BOX_FLOAT"):
            stack.append(ins[0])
        elif name == "_BINARY_OP":
            right, left = stack.pop(), stack.pop()
            stack.append(_BINARY[inst.oparg](left, right))  # the model is Python itself
        else:
            raise AssertionError(f"no model for {name}")

    def run(self, program: list[Instruction], body: int) -> int:
        """Run the body; the exit code the native trace should return."""
        index = 0
        while index < body:
            try:
                taken = self.step(index, program[index])
            except Exit as e:
                return e.index + 1
            index = taken if taken is not None else index + 1
        return 0


_BINARY = {NB["+"]: operator.add, NB["-"]: operator.sub, NB["*"]: operator.mul, NB["/"]: operator.truediv}
INT_BINARY = ("_ADD_INT", "_SUB_INT", "_MUL_INT", "_FLOORDIV_INT", "_MOD_INT")
FLOAT_BINARY = ("_ADD_FLOAT", "_SUB_FLOAT", "_MUL_FLOAT", "_DIV_FLOAT")
CONDITIONS = ("LT", "LE", "EQ", "NE", "GT", "GE")
interesting_ints = st.one_of(st.integers(-5, 5), st.integers(*INT64),
                             st.sampled_from([INT64[0], INT64[1], 2**31, 3037000500]))
interesting_floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1.5, math.inf]))
values = st.one_of(interesting_ints, interesting_floats, st.integers(2**63, 2**70), st.just("s"))


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[Instruction], int, list[object]]:
    """A body of random uops (stack depth tracked, slots reloaded only once
    spilled, branches forward only), then an epilogue that boxes every
    register into the stack, then one exit per body instruction."""
    length = draw(st.integers(1, 24))
    body: list[Instruction] = []
    depth, spilled = 0, {"i": set(), "f": set()}  # type: ignore[var-annotated]
    reg = {k: st.sampled_from(REGISTERS[k]) for k in "if"}
    for index in range(length):
        choices = ["const", "int_op", "float_op", "neg", "convert", "copy", "spill", "load"]
        if spilled["i"] or spilled["f"]:
            choices.append("reload")
        if index + 1 < length:
            choices.append("branch")
        if depth:
            choices += ["store", "unbox", "pop"]
        if depth >= 2:
            choices.append("binary")
        if depth < STACK - 1:
            choices += ["box"]
        kind = draw(st.sampled_from(choices))
        exit = length + 8 + 1 + index  # this instruction's own exit (see below)
        if kind == "const":
            k = draw(st.sampled_from("if"))
            if k == "i":
                body.append(Instruction("_LOAD_INT_CONST", (), (draw(reg["i"]),),
                                        operand0=draw(interesting_ints) & (2**64 - 1)))
            else:
                body.append(Instruction("_LOAD_FLOAT_CONST", (), (draw(reg["f"]),),
                                        operand0=float_bits(draw(interesting_floats))))
        elif kind == "int_op":
            body.append(Instruction(draw(st.sampled_from(INT_BINARY)), (draw(reg["i"]), draw(reg["i"])),
                                    (draw(reg["i"]),), exit=exit))
        elif kind == "float_op":
            body.append(Instruction(draw(st.sampled_from(FLOAT_BINARY)), (draw(reg["f"]), draw(reg["f"])),
                                    (draw(reg["f"]),), exit=exit))
        elif kind == "neg":
            k = draw(st.sampled_from("if"))
            body.append(Instruction("_NEG_INT" if k == "i" else "_NEG_FLOAT", (draw(reg[k]),),
                                    (draw(reg[k]),), exit=exit if k == "i" else None))
        elif kind == "convert":
            body.append(Instruction("_INT_TO_FLOAT", (draw(reg["i"]),), (draw(reg["f"]),)))
        elif kind == "copy":
            k = draw(st.sampled_from("if"))
            body.append(Instruction("_COPY_INT" if k == "i" else "_COPY_FLOAT", (draw(reg[k]),),
                                    (draw(reg[k]),)))
        elif kind == "spill":
            k, slot = draw(st.sampled_from("if")), draw(st.integers(0, SLOTS - 1))
            spilled["i" if k == "i" else "f"].add(slot)
            spilled["f" if k == "i" else "i"].discard(slot)
            body.append(Instruction("_SPILL_INT" if k == "i" else "_SPILL_FLOAT", (draw(reg[k]),),
                                    oparg=slot))
        elif kind == "reload":
            k = draw(st.sampled_from([k for k in "if" if spilled[k]]))
            body.append(Instruction("_RELOAD_INT" if k == "i" else "_RELOAD_FLOAT", (),
                                    (draw(reg[k]),), oparg=draw(st.sampled_from(sorted(spilled[k])))))
        elif kind == "branch":
            k = draw(st.sampled_from("if"))
            name = f"_JUMP_IF_{'INT' if k == 'i' else 'FLOAT'}_{draw(st.sampled_from(CONDITIONS))}"
            body.append(Instruction(name, (draw(reg[k]), draw(reg[k])),
                                    jump=draw(st.integers(index + 1, length))))
        elif kind == "load":
            if depth >= STACK - 1:
                body.append(Instruction("_NOP"))
                continue
            body.append(Instruction("_LOAD_FAST", oparg=draw(st.integers(0, NLOCALS - 1))))
            depth += 1
        elif kind == "store":
            body.append(Instruction("_STORE_FAST", oparg=draw(st.integers(0, NLOCALS - 1))))
            depth -= 1
        elif kind == "pop":
            body.append(Instruction("_POP_TOP"))
            depth -= 1
        elif kind == "unbox":
            k = draw(st.sampled_from("if"))
            body.append(Instruction("_UNBOX_INT" if k == "i" else "_UNBOX_FLOAT", (), (draw(reg[k]),),
                                    exit=exit))
            depth -= 1
        elif kind == "box":
            k = draw(st.sampled_from("if"))
            body.append(Instruction("_BOX_INT" if k == "i" else "_BOX_FLOAT", (draw(reg[k]),),
                                    error=length + 8 + 1 + length))
            depth += 1
        elif kind == "binary":
            body.append(Instruction("_BINARY_OP", oparg=draw(st.sampled_from([NB[s] for s in "+-*/"])),
                                    error=length + 8 + 1 + length))
            depth -= 1
    # A branch that skipped a stack uop would make the stack depth depend on
    # the path, and one that skipped a spill could leave a slot unwritten for
    # a later reload: branches may skip register arithmetic only.
    for index, inst in enumerate(body):
        if inst.jump is not None and any(i.name in _UNSKIPPABLE for i in body[index + 1 : inst.jump]):
            body[index] = Instruction("_NOP")
    epilogue = [Instruction("_BOX_INT", (r,), error=length + 8 + 1 + length) for r in REGISTERS["i"]]
    epilogue += [Instruction("_BOX_FLOAT", (r,), error=length + 8 + 1 + length) for r in REGISTERS["f"]]
    exits = [Instruction("_EXIT_TRACE", oparg=0)]
    exits += [Instruction("_EXIT_TRACE", oparg=i + 1) for i in range(length)]
    exits += [Instruction("_ERROR_TRACE")]
    locals_ = draw(st.lists(values, min_size=NLOCALS, max_size=NLOCALS))
    return body + epilogue + exits, length, locals_


_UNSKIPPABLE = frozenset({"_LOAD_FAST", "_STORE_FAST", "_POP_TOP", "_UNBOX_INT", "_UNBOX_FLOAT",
                          "_BOX_INT", "_BOX_FLOAT", "_BINARY_OP", "_SPILL_INT", "_SPILL_FLOAT"})


def _fresh(value: object) -> object:
    """A copy only this test refers to: hypothesis keeps references to what it
    generates and releases them when the GC runs, which would move refcounts."""
    if isinstance(value, float):
        return struct.unpack("<d", struct.pack("<d", value))[0]
    if isinstance(value, int):
        return int(str(value))
    return value  # one-character strings are immortal


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


@settings(max_examples=EXAMPLES, derandomize="COPYJIT_FUZZ_EXAMPLES" not in os.environ,
          deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_native_chains_match_the_model(case: tuple[list[Instruction], int, list[object]]) -> None:
    program, length, drawn = case
    initial = [_fresh(v) for v in drawn]
    model = Model(list(initial))
    try:
        expected: tuple[str, object] = ("exit", model.run(program, length))
    except (ZeroDivisionError, TypeError, OverflowError, MemoryError) as e:
        expected = ("raise", f"{type(e).__name__}: {e}")
    if expected == ("exit", 0):
        model.stack += [model.regs[r] for r in (*REGISTERS["i"], *REGISTERS["f"])]
    trace = emit(program)
    refs = [sys.getrefcount(v) for v in initial]  # after the model: it holds references too
    try:
        status, final, stack = run(trace, initial, stacksize=STACK + 16)
        got: tuple[str, object] = ("exit", status)
    except (ZeroDivisionError, TypeError, OverflowError, MemoryError) as e:
        got, final, stack = ("raise", f"{type(e).__name__}: {e}"), [], []
    finally:
        trace.free()
    assert got == expected
    if got[0] == "exit":
        assert all(map(_same, final, model.locals)), (final, model.locals)
        assert len(stack) == len(model.stack) and all(map(_same, stack, model.stack)), (stack, model.stack)
    del final, stack
    assert [sys.getrefcount(v) for v in initial] == refs, (initial, asm.dump(program))
