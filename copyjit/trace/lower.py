"""From a recording to backend instructions (in the text form, then parsed).

Layout of a trace:

    pre-header   unbox every local the loop uses into its home spill slot
                 (each unbox is a type guard: a mismatch exits at once)
    loop:        the recorded ops, values in spill slots, computed in
                 registers; guards jump to exit stubs
                 _JUMP loop
    exit stubs   box the locals the loop writes back into the frame, push
                 the recorded stack values, point instr_ptr at the
                 bytecode to resume at, return the exit's number

Values live in spill slots and pass through registers only within one op
(issue 4's register allocation keeps them in registers instead).
"""

from __future__ import annotations

import dataclasses

from copyjit.backend import asm
from copyjit.backend.emitter import Instruction
from copyjit.trace.frames import instruction_address
from copyjit.trace.jit import ENTRY_EXIT
from copyjit.trace.recorder import Abort, Op, Recording, Snapshot
from copyjit.uops import SPILL_SLOTS, UOPS

_KIND = {"i": "INT", "f": "FLOAT"}
_NEGATED = {"LT": "GE", "LE": "GT", "EQ": "NE", "NE": "EQ", "GT": "LE", "GE": "LT"}


@dataclasses.dataclass
class Lowered:
    text: str
    instructions: list[Instruction]
    snapshots: list[Snapshot]  # exit k (k >= 1) resumes at snapshots[k - 1]


class _Lowering:
    def __init__(self, rec: Recording, counter: int) -> None:
        self.rec = rec
        self.counter = counter
        self.home = {slot: i for i, slot in enumerate(rec.slots)}
        self.temp = {v: len(self.home) + i for i, v in enumerate(
            v for v, op in enumerate(rec.ops) if op.name not in ("store", "branch"))}
        if len(self.home) + len(self.temp) > SPILL_SLOTS:
            raise Abort(f"more than {SPILL_SLOTS} values in one iteration")
        self.lines: list[str] = []
        self.snapshots: list[Snapshot] = []
        self.labels = 0

    def line(self, text: str) -> None:
        self.lines.append(f"    {text}")

    def exit_label(self, snapshot: Snapshot | None) -> str:
        assert snapshot is not None
        self.snapshots.append(snapshot)
        return f"exit{len(self.snapshots)}"

    def reload(self, value: int, register: str) -> None:
        kind = _KIND[self.rec.ops[value].kind]
        self.line(f"{register} = _RELOAD_{kind} oparg={self.temp[value]}")

    def spill(self, value: int, register: str) -> None:
        kind = _KIND[self.rec.ops[value].kind]
        self.line(f"_SPILL_{kind} {register} oparg={self.temp[value]}")

    def run(self) -> Lowered:
        dst = instruction_address(self.rec.code, self.rec.dst)
        for slot, kind in self.rec.slots.items():
            r = f"{kind}0"
            # A local bound when recording may be unbound now (bound on one
            # path only): that, or another type, leaves before anything changed.
            self.line(f"_LOAD_FAST_OR_EXIT oparg={slot} exit=unbound")
            self.line(f"{r} = _UNBOX_{_KIND[kind]} exit=entry")
            self.line(f"_SPILL_{_KIND[kind]} {r} oparg={self.home[slot]}")
        self.lines.append("loop:")
        self.line(f"_CHECK_EVAL_BREAKER exit={self.exit_label(Snapshot(self.rec.dst, (), normal=True))}")
        self.line(f"_COUNT operand0={self.counter}")  # iterations, to tell short loops
        for index, op in enumerate(self.rec.ops):
            getattr(self, f"op_{op.name}")(index, op)
        self.line("_JUMP jump=loop")
        self.lines.append("entry:")  # the unbox that failed left its value on the stack
        self.line("_POP_TOP")
        self.lines.append("unbound:")
        self.line(f"_SET_IP operand0={dst}")
        self.line(f"_EXIT_TRACE oparg={ENTRY_EXIT}")
        for number, snapshot in enumerate(self.snapshots, 1):
            self.stub(number, snapshot)
        # Boxing failed (out of memory) with the frame half written and the
        # range iterator already advanced: no state to go back to, and
        # raising from the callback is undefined behaviour on 3.13.0. Stop
        # loudly rather than run on with a wrong frame.
        self.lines.append("error:")
        self.line("_FATAL_ERROR")
        text = "\n".join(self.lines) + "\n"
        return Lowered(text, asm.parse(text), self.snapshots)

    def stub(self, number: int, snapshot: Snapshot) -> None:
        self.lines.append(f"exit{number}:")
        for slot in self.rec.stored:
            kind = _KIND[self.rec.slots[slot]]
            r = f"{self.rec.slots[slot]}0"
            self.line(f"{r} = _RELOAD_{kind} oparg={self.home[slot]}")
            self.line(f"_BOX_{kind} {r} error=error")
            self.line(f"_STORE_FAST oparg={slot}")
        for value in snapshot.stack:
            r = f"{self.rec.ops[value].kind}0"
            self.reload(value, r)
            self.line(f"_BOX_{_KIND[self.rec.ops[value].kind]} {r} error=error")
        self.line(f"_SET_IP operand0={instruction_address(self.rec.code, snapshot.offset)}")
        self.line(f"_EXIT_TRACE oparg={number}")

    # --- one method per recorded op -----------------------------------------

    def op_load(self, index: int, op: Op) -> None:
        kind = _KIND[op.kind]
        self.line(f"{op.kind}0 = _RELOAD_{kind} oparg={self.home[op.arg]}")  # type: ignore[index]
        self.spill(index, f"{op.kind}0")

    def op_store(self, index: int, op: Op) -> None:
        (value,) = op.args
        self.reload(value, f"{op.kind}0")
        self.line(f"_SPILL_{_KIND[op.kind]} {op.kind}0 oparg={self.home[op.arg]}")  # type: ignore[index]

    def op_const(self, index: int, op: Op) -> None:
        operand = op.arg if op.kind == "i" else repr(op.arg)
        if op.kind == "i" and op.arg < 0:  # type: ignore[operator]
            operand = op.arg & (2**64 - 1)  # type: ignore[operator]
        self.line(f"{op.kind}0 = _LOAD_{_KIND[op.kind]}_CONST operand0={operand}")
        self.spill(index, f"{op.kind}0")

    def op_to_float(self, index: int, op: Op) -> None:
        self.reload(op.args[0], "i0")
        self.line("f0 = _INT_TO_FLOAT i0")
        self.spill(index, "f0")

    def op_binary(self, index: int, op: Op) -> None:
        k = op.kind
        self.reload(op.args[0], f"{k}0")
        self.reload(op.args[1], f"{k}1")
        name = f"_{str(op.arg).upper()}_{_KIND[k]}".replace("TRUEDIV", "DIV")
        guard = f" exit={self.exit_label(op.snapshot)}" if UOPS[name].may_exit else ""
        self.line(f"{k}2 = {name} {k}0, {k}1{guard}")
        self.spill(index, f"{k}2")

    def op_neg(self, index: int, op: Op) -> None:
        k = op.kind
        self.reload(op.args[0], f"{k}0")
        guard = f" exit={self.exit_label(op.snapshot)}" if k == "i" else ""
        self.line(f"{k}1 = _NEG_{_KIND[k]} {k}0{guard}")
        self.spill(index, f"{k}1")

    def op_branch(self, index: int, op: Op) -> None:
        k = op.kind
        assert isinstance(op.arg, tuple)
        name, outcome = op.arg
        self.reload(op.args[0], f"{k}0")
        self.reload(op.args[1], f"{k}1")
        exit_to = self.exit_label(op.snapshot)
        if not outcome:  # leave when the comparison holds
            self.line(f"_JUMP_IF_{_KIND[k]}_{name} {k}0, {k}1 jump={exit_to}")
        elif k == "i":  # ints: "not <" is ">="
            self.line(f"_JUMP_IF_INT_{_NEGATED[name]} i0, i1 jump={exit_to}")
        else:  # floats: "not <" is not ">=" when one is a NaN
            self.labels += 1
            self.line(f"_JUMP_IF_FLOAT_{name} f0, f1 jump=holds{self.labels}")
            self.line(f"_JUMP jump={exit_to}")
            self.lines.append(f"holds{self.labels}:")

    def op_range_next(self, index: int, op: Op) -> None:
        self.line(f"i0 = _FOR_ITER_RANGE_UNBOXED exit={self.exit_label(op.snapshot)}")
        self.spill(index, "i0")


def lower(rec: Recording, counter: int) -> Lowered:
    """`counter`: the address of an int64 the trace increments per iteration."""
    return _Lowering(rec, counter).run()
