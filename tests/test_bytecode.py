"""copyjit.trace.bytecode decodes code objects as dis.get_instructions does."""

from __future__ import annotations

import dis
import importlib.util
import types

import pytest

from copyjit import native
from copyjit.trace.bytecode import instructions

# The fields the recorder reads (decoded eagerly or not), and others (from dis).
FIELDS = ("opname", "opcode", "arg", "oparg", "argval", "argrepr", "offset", "start_offset", "label",
          "line_number", "baseopname", "is_jump_target")


def _codes(code: types.CodeType) -> list[types.CodeType]:
    nested = [c for k in code.co_consts if isinstance(k, types.CodeType) for c in _codes(k)]
    return [code, *nested]


def _compiled(module: str) -> types.CodeType:
    """The module's source compiled (its source, also where mypyc built it)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    path = spec.origin if spec.origin.endswith(".py") else native.source(module)
    with open(path) as file:
        return compile(file.read(), path, "exec")


def _same_as_dis(code: types.CodeType) -> None:
    expected, got = list(dis.get_instructions(code)), instructions(code)
    assert [i.offset for i in got] == [i.offset for i in expected]
    for want, have in zip(expected, got, strict=True):
        for field in FIELDS:
            assert getattr(have, field) == getattr(want, field), (code, want, field)


@pytest.mark.parametrize("module", ["dis", "json.decoder", "argparse", "copyjit.trace.record_base",
                                    "copyjit.trace.record_numbers", "copyjit.trace.recorder"])
def test_every_function_of_a_module_decodes_as_dis_does(module: str) -> None:
    for code in _codes(_compiled(module)):
        _same_as_dis(code)


def test_extended_args_and_long_jumps() -> None:
    # More than 256 constants and names (EXTENDED_ARG prefixes), and jumps
    # over more than 256 code units both ways.
    body = "\n".join(f"    x{n} = {n}.5 + y" for n in range(300))
    source = f"def f(y):\n  for i in range(3):\n    if y:\n{body}\n  return y\n"
    source = source.replace("\n    x", "\n      x")
    _same_as_dis(compile(source, "<test>", "exec").co_consts[0])
    assert any(i.opname == "EXTENDED_ARG" for i in instructions(compile(source, "<t>", "exec").co_consts[0]))


def test_binary_op_describes_its_operator_without_dis() -> None:
    (add,) = [i for i in instructions((lambda a, b: a + b).__code__) if i.opname == "BINARY_OP"]
    assert add.argrepr == "+" and add.decoded.full is None  # type: ignore[attr-defined]
