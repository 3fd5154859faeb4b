"""The compiler's modules compiled by mypyc (copyjit/native.py): used when
built and current, their source otherwise (COPYJIT_PURE=1, an edit since
the build), never a mix; CI (COPYJIT_REQUIRE_NATIVE=1) requires the build."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import copyjit
from copyjit import native

PACKAGE = Path(copyjit.__file__).parent
SHOW = ("import copyjit.native as n, importlib; modules = [importlib.import_module(m) for m in n.MODULES]; "
        "print(n.status()); print(*[m.__file__ for m in modules], sep='\\n')")


def _built() -> bool:
    return (PACKAGE / "_native_sources.py").exists()


def _require_build() -> None:
    """Skip where mypyc did not build the modules, unless CI requires it."""
    if os.environ.get("COPYJIT_REQUIRE_NATIVE") != "1" and not _built():
        pytest.skip("not built with mypyc here (CI sets COPYJIT_REQUIRE_NATIVE=1)")


def _show(env: dict[str, str] | None = None, path: Path | None = None) -> tuple[str, list[str]]:
    """What a fresh interpreter says of the compiler's modules: the status, their files."""
    environment = {**os.environ, **(env or {})}
    if path is not None:
        environment["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", SHOW], env=environment, capture_output=True, text=True,
                          check=True, cwd=path or Path.cwd())
    status, *files = done.stdout.splitlines()
    return status, files


def test_the_digest_tells_an_edit_from_none() -> None:
    source = (PACKAGE / "opt" / "passes.py").read_bytes()
    assert native.digest(source) == native.digest(bytes(source))
    assert native.digest(source) != native.digest(source.replace(b"a", b"b", 1))  # same length
    assert native.digest(source) != native.digest(source + b"\n")


def test_ci_has_the_native_build() -> None:
    _require_build()
    status, files = _show({"COPYJIT_PURE": ""})
    assert status == "native (mypyc)"
    assert all(importlib.machinery.EXTENSION_SUFFIXES[0] in file for file in files), files


def test_copyjit_pure_runs_every_module_from_its_source() -> None:
    status, files = _show({"COPYJIT_PURE": "1"})
    assert status == "pure Python: COPYJIT_PURE=1"
    assert all(file.endswith(".py") for file in files), files


def _built_copy(tmp_path: Path) -> Path:
    """The package as built (extensions, digests, stamps), with the group's
    library beside it, copied into tmp_path (skip where not built)."""
    if not _built():
        pytest.skip("not built with mypyc here")
    shutil.copytree(PACKAGE, tmp_path / "copyjit", ignore=shutil.ignore_patterns("__pycache__"))
    for library in PACKAGE.parent.glob("copyjit__mypyc.*"):
        shutil.copy(library, tmp_path)
    return tmp_path / "copyjit"


def test_a_module_edited_since_the_build_sends_all_to_their_source(tmp_path: Path) -> None:
    fold = _built_copy(tmp_path) / "opt" / "fold.py"
    fold.write_text(fold.read_text() + "\n# edited\n")
    status, files = _show({"COPYJIT_PURE": ""}, tmp_path)
    assert status.startswith("pure Python: ") and "fold.py changed since it was compiled" in status
    assert files == [str(tmp_path / "copyjit" / Path(*m.split(".")[1:])) + ".py" for m in native.MODULES]


def test_a_source_written_again_unchanged_keeps_the_build(tmp_path: Path) -> None:
    # Its stamp (size, modification time) is no longer the build's: the
    # digest of what it holds decides, and it is the build's.
    fold = _built_copy(tmp_path) / "opt" / "fold.py"
    fold.write_bytes(fold.read_bytes())
    os.utime(fold, ns=(1, 1))
    assert native.stamp(str(fold)) != native.stamp(native.source("copyjit.opt.fold"))
    status, files = _show({"COPYJIT_PURE": ""}, tmp_path)
    assert status == "native (mypyc)"
    assert all(importlib.machinery.EXTENSION_SUFFIXES[0] in file for file in files), files


def test_sources_stamped_as_built_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout built in place: every source's stamp is the build's, so
    # the first hot loop reads and digests none of them.
    _require_build()
    from copyjit import _native_sources  # type: ignore[attr-defined]

    if any(native.stamp(native.source(m)) != _native_sources.STAMPS[m] for m in native.MODULES):
        pytest.skip("a source was written since the build")

    def unread(data: bytes) -> str:
        raise AssertionError("a source stamped as built was read")

    monkeypatch.setattr(native, "digest", unread)
    monkeypatch.delenv("COPYJIT_PURE", raising=False)  # (CI runs this file again with it)
    assert native._decide() == ""


def test_an_extension_left_by_an_older_build_does_not_shadow_its_source(tmp_path: Path) -> None:
    # A checkout built when a module was in MODULES, then no longer: its
    # extension stays beside the source, and the path finder prefers it.
    shutil.copytree(PACKAGE, tmp_path / "copyjit", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / "copyjit" / "trace" / f"bytecode{suffix}").write_bytes(b"not a library")
    done = subprocess.run([sys.executable, "-c", "import copyjit.trace.bytecode as b; print(b.__file__)"],
                          env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(tmp_path / "copyjit" / "trace" / "bytecode.py")


def test_the_stats_say_how_the_compiler_runs() -> None:
    assert copyjit.stats()["compiler"] == native.status()


def test_instructions_are_immutable_in_the_native_build() -> None:
    # Rows are shared between traces (asm's caches): an instruction changed
    # in one would change the others. mypy refuses the assignment
    # statically (Final), the native build at run time too.
    _require_build()
    done = subprocess.run([sys.executable, "-c", (
        "from copyjit.backend.emitter import Instruction\n"
        "i = Instruction('_JUMP', jump=0)\n"
        "for field in ('name', 'oparg', 'jump', 'stencil'):\n"
        "    try:\n"
        "        setattr(i, field, 1)\n"
        "    except AttributeError:\n"
        "        print('refused', field)\n")],
        env={**os.environ, "COPYJIT_PURE": ""}, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:-1] == [f"refused {f}" for f in ("name", "oparg", "jump", "stencil")]
