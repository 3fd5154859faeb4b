"""Start-up stays cheap: `run`'s fast argument parsing agrees with argparse,
and starting copyjit imports no heavy module (no timing is asserted)."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copyjit import __main__ as cli
from copyjit import run, uops

ROOT = Path(__file__).parent.parent

WORDS = ["--stats", "--stats-json", "--threshold", "-m", "--", "-", "--stat", "--threshold=3", "-mmod",
         "-h", "--help", "-x", "3", "-5", "1_0", "x", "s.py", "", "a b", "--s", "--stat=1", "--t", "--he",
         "--stats-json=f", "--stats=1", "-mx", "--threshold=-1"]


def _argparse(argv: list[str]) -> dict[str, object] | None:
    """What the argparse parser makes of `run ARGV` (None: it exits)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = cli._parser().parse_args(["run", *argv])
    except SystemExit:
        return None
    return {name: getattr(args, name) for name in vars(cli.RunOptions())}


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(WORDS), max_size=6))
def test_run_arguments_parse_as_argparse_parses_them(argv: list[str]) -> None:
    fast = cli.parse_run(argv)
    if fast is not None:  # None: argparse decides
        assert vars(fast) == _argparse(argv)


@pytest.mark.parametrize("argv", [["s.py"], ["--stats", "--threshold", "3", "s.py", "--stats", "-m"],
                                  ["--stats-json", "f", "-m", "mod", "arg"], ["-m", "mod"],
                                  ["s.py", "--stats=1", "--he", "-mx", "--threshold=-1"]])
def test_the_usual_run_arguments_take_the_fast_path(argv: list[str]) -> None:
    fast = cli.parse_run(argv)
    assert fast is not None and vars(fast) == _argparse(argv)


@pytest.mark.parametrize("argv", [["s.py", "--", "a"], ["s.py", "--stat"], ["s.py", "--s=1"], [],
                                  ["--threshold", "x", "s.py"], ["--stats-json"], ["-h"]])
def test_argparse_parses_the_rest(argv: list[str]) -> None:
    assert cli.parse_run(argv) is None


# Modules that no part of copyjit imports, up to its first traces: each
# costs milliseconds (re with enum and functools ~8, json ~10, typing ~7).
NEVER = {"argparse", "ast", "dataclasses", "difflib", "enum", "functools", "glob", "inspect", "json",
         "pathlib", "platform", "re", "shutil", "signal", "textwrap", "threading", "tokenize", "typing",
         "weakref", "bisect", "mmap"}
# Modules that copyjit's start-up must not import either: the JIT needs them
# only when it compiles a loop (ctypes: lower.py; dis and collections: the
# recorder), the CLI only for other commands.
HEAVY = NEVER | {"collections", "ctypes", "dis", "struct", "copyjit.uops", "copyjit.trace.recorder",
                 "copyjit.trace.lower", "copyjit.backend.emitter"}

SHOW_MODULES = "import sys; print('modules:', *sorted(sys.modules), file=sys.stderr)"


def _modules(*command: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `command` printed
    them (SHOW_MODULES), less those a plain one has. Without `site`, whose
    .pth files (an editable install's) import some of the heavy ones."""
    def loaded(*args: str) -> set[str]:
        done = subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, timeout=60,
                              cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("modules: ")]
        return set(line.split()[1:])

    return loaded(*command) - loaded("-c", SHOW_MODULES)


def test_import_copyjit_and_enable_imports_no_heavy_module() -> None:
    new = _modules("-c", f"import copyjit; copyjit.enable(); {SHOW_MODULES}")
    assert "copyjit.trace.jit" in new  # enable() really ran
    assert not new & HEAVY, sorted(new & HEAVY)


def test_copyjit_run_imports_no_heavy_module(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text(SHOW_MODULES + "\n")
    new = _modules("-m", "copyjit", "run", "--stats", str(script))
    assert "copyjit.run" in new
    assert not new & (HEAVY | {"pkgutil"}), sorted(new & (HEAVY | {"pkgutil"}))


def test_the_first_traces_import_no_heavy_module(tmp_path: Path) -> None:
    # big_ints' loop (a trace of boxed ints), and a loop with a bridge.
    script = tmp_path / "loops.py"
    script.write_text(textwrap.dedent("""
        def grow(n):
            x, i = 1, 0
            while i < n:
                x = x * 3 + i
                i += 1
            return x

        def branchy(n):
            t = 0
            for i in range(n):
                if i % 3:
                    t += i
                else:
                    t -= 1
            return t

        grow(2000)
        branchy(5000)
        import copyjit
        assert copyjit.stats()["bridges"] >= 1
        """) + SHOW_MODULES + "\n")
    new = _modules("-m", "copyjit", "run", str(script))
    assert {"copyjit.trace.lower", "copyjit.backend.emitter"} <= new  # traces were made
    # Nor dis, with collections (2 to 5 ms): copyjit.trace.bytecode decodes.
    assert not new & (NEVER | {"dis", "collections"}), sorted(new & (NEVER | {"dis", "collections"}))


def test_start_ups_c_types_are_ctypes_own() -> None:
    import ctypes
    import mmap

    from copyjit.backend import memory, native

    for name in ("c_void_p", "c_char", "c_char_p", "c_uint8", "c_int", "c_uint32", "c_long", "c_size_t",
                 "c_ssize_t", "py_object"):
        assert getattr(native, name)._type_ == getattr(ctypes, name)._type_, name
    assert (memory.PROT_READ, memory.PROT_WRITE, memory.PROT_EXEC) == (mmap.PROT_READ, mmap.PROT_WRITE,
                                                                        mmap.PROT_EXEC)
    assert (memory.MAP_PRIVATE, memory.MAP_ANONYMOUS) == (mmap.MAP_PRIVATE, mmap.MAP_ANONYMOUS)
    assert memory.PAGE_SIZE == mmap.PAGESIZE
    function = ctypes.pythonapi.PyLong_FromLong
    assert native.symbol("PyLong_FromLong") == ctypes.cast(function, ctypes.c_void_p).value
    with pytest.raises(LookupError):
        native.symbol("copyjit_no_such_symbol")
    buffer = bytearray(b"abc")
    assert native.address(buffer) == ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    word = bytearray((7).to_bytes(8, "little"))
    assert native.word(native.address(word)) == 7


def test_enable_reads_only_the_header_of_the_stencil_table() -> None:
    check = ("import copyjit; copyjit.enable(); from copyjit import stencils; "
             "found = stencils.table().stencils; "
             "assert found._data is None and not found._lines._blocks, 'stencils read'")
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, timeout=60)


def test_the_start_up_json_reader_reads_the_table_as_json_does() -> None:
    import json

    from copyjit import stencil, stencils

    with open(stencils.path()) as file:
        lines = file.read().splitlines()
    assert stencil._scan is not None  # CPython's scanner: json is not imported
    assert [stencil._loads(line) for line in lines] == [json.loads(line) for line in lines]


def test_stencils_are_found_through_the_index_as_their_lines_say() -> None:
    import json

    from copyjit import stencils
    from copyjit.stencil import Table, _stencil

    with open(stencils.path()) as file:
        lines = file.read().splitlines()[1:]
    rows = [json.loads(line) for line in lines]
    names = [row[0] for row in rows]
    assert names == sorted(names)  # what the index needs (Table.render sorts)
    table = Table.read(stencils.path())
    assert list(table.stencils) == names and len(table.stencils) == len(names)
    for row in rows:
        assert table.stencils[row[0]] == _stencil(*row)
    for missing in ("", "_", "_A", "_ZZZ", "~", names[0][:-1], names[-1] + "_", names[100] + "0"):
        assert missing not in table.stencils


def test_a_table_replaced_on_disk_is_not_read_with_the_old_header(tmp_path: Path) -> None:
    import shutil

    from copyjit import stencils
    from copyjit.stencil import Table

    path = tmp_path / "table.jsonl"
    shutil.copyfile(stencils.path(), path)
    table = Table.read(str(path))
    assert table.stencils["_NOP"].name == "_NOP"
    path.write_text(path.read_text().replace('"_EXIT_TRACE"', '"_EXIT_TRACE_"'))  # another build
    with pytest.raises(RuntimeError, match="changed since"):
        table.stencils["_EXIT_TRACE"]


def test_the_binary_stencils_are_the_lines() -> None:
    """What a process reads (the .stencils file) is what the table's lines say."""
    import json

    from copyjit import stencils
    from copyjit.stencil import Table, _Records, _stencil

    with open(stencils.path()) as file:
        rows = [json.loads(line) for line in file.read().splitlines()[1:]]
    table = Table.read(stencils.path())
    assert isinstance(table.stencils, _Records)
    for row in rows:
        assert table.stencils[row[0]] == _stencil(*row)
    assert table.stencils._data is not None  # (read from the binary file, not the lines)
    for missing in ("", "_", "_A", "_ZZZ", "~", rows[0][0][:-1], rows[-1][0] + "_", rows[100][0] + "0"):
        assert missing not in table.stencils


def test_binary_stencils_of_another_build_are_refused_and_absent_ones_are_the_lines(tmp_path: Path) -> None:
    import shutil

    from copyjit import stencils
    from copyjit.stencil import Table

    path = tmp_path / "table.jsonl"
    shutil.copyfile(stencils.path(), path)
    assert Table.read(str(path)).stencils["_NOP"].name == "_NOP"  # no .stencils: the lines
    records = bytearray(Path(stencils.path()).with_suffix(".stencils").read_bytes())
    records[8] ^= 1  # its digest: another build's
    path.with_suffix(".stencils").write_bytes(records)
    with pytest.raises(RuntimeError, match="not of the build"):
        Table.read(str(path)).stencils["_NOP"]


@given(st.lists(st.sampled_from(["_A", "_B", "_B_C", "_BB", "_C__x", "a", "~"]), unique=True),
       st.integers(1, 4))
def test_the_index_finds_every_stencil_of_any_table(names: list[str], every: int) -> None:
    from copyjit import stencil
    from copyjit.stencil import Stencil, Table

    made = {name: Stencil(name, name.encode(), ()) for name in names}
    table = Table(python="3.13.0", target="t", compiler="c", layout={}, data=b"", symbols=(),
                  stencils=dict(reversed(made.items())), runtime={})
    shipped, stencil.INDEX_EVERY = stencil.INDEX_EVERY, every  # blocks of `every` lines
    try:
        text = table.render()
    finally:
        stencil.INDEX_EVERY = shipped
    read = Table.from_jsonl(text)
    assert dict(read.stencils) == dict(sorted(made.items())) and len(read.stencils) == len(made)
    for name in ["_A", "_B", "_B_C", "_BB", "_C__x", "a", "~", "_", "_AB", "b"]:
        assert (name in read.stencils) == (name in made)
    # The binary file, whatever the names' hashes collide on.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "table.jsonl"
        path.write_text(text)
        path.with_suffix(".stencils").write_bytes(table.render_records())
        binary = Table.read(str(path)).stencils
        for name in ["_A", "_B", "_B_C", "_BB", "_C__x", "a", "~", "_", "_AB", "b"]:
            assert binary.get(name) == made.get(name)
        assert binary._data is not None


def test_hole_kinds_and_values_behave_as_enums() -> None:
    import copy
    import enum
    import pickle

    from copyjit.stencil import HoleKind, HoleValue

    for kind in (HoleKind, HoleValue):
        real = enum.Enum(kind.__name__, [(m.name, m.value) for m in kind])  # type: ignore[misc]
        assert [(m.name, m.value, repr(m), str(m)) for m in kind] == \
            [(m.name, m.value, repr(m), str(m)) for m in real]
        assert len(kind) == len(real)
        for member in kind:
            assert kind(member.value) is member and kind[member.name] is member
            assert copy.copy(member) is member and pickle.loads(pickle.dumps(member)) is member
        with pytest.raises(ValueError, match="is not a valid"):
            kind("NOT_A_MEMBER")
        with pytest.raises(KeyError):
            kind["NOT_A_MEMBER"]


def test_a_loop_that_cannot_be_recorded_does_not_import_the_back_end(tmp_path: Path) -> None:
    # A generator's loop: recording stops at its yield.
    script = tmp_path / "generator.py"
    script.write_text("def numbers(n):\n    i = 0\n    while i < n:\n        yield i\n        i += 1\n"
                      f"sum(numbers(5000))\n{SHOW_MODULES}\n")
    new = _modules("-m", "copyjit", "run", str(script))
    assert "copyjit.trace.recorder" in new  # it was recorded
    assert not new & {"copyjit.uops", "copyjit.backend.emitter", "copyjit.trace.lower"}, sorted(new)


SHOW_STATE = """
import sys
state = (__name__, __file__, __cached__, __doc__, __loader__, __package__, __spec__, sorted(globals()),
         sys.argv[0], sys.modules["__main__"].__dict__ is globals())
with open({out!r}, "a") as file:
    print(repr(state), file=file)
"""


@pytest.mark.parametrize("source", ["", "# -*- coding: latin-1 -*-\ns = 'caf\\xe9'\n"])
def test_run_runs_a_script_as_runpy_run_path_does(tmp_path: Path, source: str) -> None:
    out = tmp_path / "state.txt"
    script = tmp_path / "script.py"
    script.write_bytes(source.encode("latin-1") + SHOW_STATE.format(out=str(out)).encode())
    assert run._source_code(str(script)) is not None  # not left to run_path
    runpy.run_path(str(script), run_name="__main__")
    run._run_path(str(script))
    by_runpy, ours = out.read_text().splitlines()
    assert ours == by_runpy


def test_directories_archives_bytecode_and_errors_are_left_to_run_path(tmp_path: Path) -> None:
    import py_compile
    import zipfile

    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("x = = 1\n")
    pyc = py_compile.compile(str(tmp_path / "ok.py"), cfile=str(tmp_path / "ok.pyc"))
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as archive:
        archive.writestr("__main__.py", "x = 1\n")
    assert run._importer(str(tmp_path)) is not None
    assert run._importer(str(tmp_path / "app.zip")) is not None
    assert run._importer(str(tmp_path / "ok.py")) is None
    assert run._source_code(str(tmp_path / "ok.py")) is not None
    for path in (pyc, tmp_path / "bad.py", tmp_path / "missing.py"):
        assert run._source_code(str(path)) is None


@settings(max_examples=500)
@given(st.text(alphabet=" \t\nax(", max_size=40))
def test_the_uop_tables_dedent_is_textwraps(text: str) -> None:
    import textwrap

    assert uops.dedent(text) == textwrap.dedent(text)


@given(st.text(alphabet=st.sampled_from(list("a_Z9 (){}*;,.-\n\té")), max_size=40))
def test_the_uop_tables_words_are_those_re_finds(text: str) -> None:
    import re

    assert uops._words(text) == frozenset(re.findall(r"\w+", text))
