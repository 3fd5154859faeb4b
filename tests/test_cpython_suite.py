"""The quick part of CPython's regression tests under the JIT (the whole
list: `python tests/cpython_suite.py`). Each quick module passes under
`python -m copyjit run --threshold 1`, as it does without the JIT."""

from __future__ import annotations

import importlib.util

import pytest

from tests.cpython_suite import modules, result


def test_every_listed_module_is_in_the_installed_test_suite() -> None:
    listed = modules()
    assert len(listed) == len(set(listed)) and modules(quick=True)
    missing = [name for name in listed if importlib.util.find_spec(f"test.{name}") is None]
    assert missing == []


@pytest.mark.parametrize("module", modules(quick=True))
def test_a_quick_module_passes_under_the_jit(module: str) -> None:
    assert result(module, jit=True, timeout=600) == "SUCCESS"


def test_a_left_out_module_still_fails_for_its_reason() -> None:
    # Listed in modules.txt as left out: if it passes one day, list it.
    assert "test_genexps" not in modules()
    assert result("test_genexps", jit=False) == "SUCCESS"
    assert result("test_genexps", jit=True) == "FAILURE"
