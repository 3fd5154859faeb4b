"""Start-up stays cheap: `run`'s fast argument parsing agrees with argparse,
and starting copyjit imports no heavy module (no timing is asserted)."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copyjit import __main__ as cli

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
