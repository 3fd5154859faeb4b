"""Bytecode for copyjit's own modules, as an installed copyjit has it.

`pip install .` compiles every module into __pycache__ (even with
PYTHONDONTWRITEBYTECODE set), so users never compile copyjit from source.
An editable checkout run with PYTHONDONTWRITEBYTECODE=1 would compile it on
every run, a cost users do not pay (~10 ms per start, ~20 ms more at the
first hot loop): benchmarks that time whole processes call `compile_copyjit()`
first. Python reads existing .pyc files whatever PYTHONDONTWRITEBYTECODE says.
"""

from __future__ import annotations

import compileall
import importlib.util


def compile_copyjit() -> str:
    """Write (or refresh) the bytecode of the copyjit that `python -m copyjit`
    runs; returns its directory."""
    spec = importlib.util.find_spec("copyjit")
    assert spec is not None and spec.submodule_search_locations, "copyjit is not importable"
    directory = next(iter(spec.submodule_search_locations))
    # py_compile writes regardless of sys.dont_write_bytecode.
    if not compileall.compile_dir(directory, quiet=1):
        raise SystemExit(f"cannot compile {directory}")
    return directory
