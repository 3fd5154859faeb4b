"""`python -m copyjit bench` and its suite: every benchmark gives its
expected result under CPython and under the JIT, and the command makes
its table, JSON and plot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from copyjit import bench

ROOT = Path(__file__).parent.parent
BENCHMARKS = ROOT / "benchmarks"
SUITE, EXPECTED = bench.load_suite(BENCHMARKS)


def worker(mode: str, name: str, size: int, loops: int = 1, **env: str) -> dict[str, Any]:
    config = {"mode": mode, "dir": str(BENCHMARKS), "name": name, "size": size, "loops": loops}
    done = subprocess.run([sys.executable, str(bench.WORKER), json.dumps(config)], capture_output=True,
                          text=True, check=True, env={**os.environ, **env}, timeout=120)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_suite_has_the_issue_s_benchmarks_each_with_its_expected_results() -> None:
    assert set(SUITE) >= {"nbody", "spectral_norm", "fannkuch", "richards", "raytrace", "float", "nqueens",
                          "chaos", "go", "deltablue", "mandelbrot", "calls", "attrs", "dicts", "strings"}
    for name, benchmark in SUITE.items():
        assert set(EXPECTED[name]) == {benchmark.tiny, benchmark.quick, benchmark.full}, name


@pytest.mark.parametrize("name", sorted(SUITE))
def test_each_benchmark_gives_its_expected_result_under_cpython_and_the_jit(name: str) -> None:
    """The worker checks every call's result against EXPECTED (and reports
    an error otherwise). Under the JIT, with a low threshold, so that the
    tiny sizes are compiled: the JIT's result must be CPython's."""
    size = SUITE[name].tiny
    assert "times" in worker("cpython", name, size)
    jitted = worker("copyjit", name, size, loops=2, COPYJIT_THRESHOLD="20")
    assert "times" in jitted, jitted
    assert jitted["jit"]["traces"] + sum(jitted["jit"]["aborts"].values()) >= 1  # the JIT saw its loops


def test_a_wrong_result_is_an_error(tmp_path: Path) -> None:
    shutil.copy(BENCHMARKS / "nqueens.py", tmp_path)
    suite = (BENCHMARKS / "suite.py").read_text().replace("6: (4, 189634819)", "6: (4, 0)")
    (tmp_path / "suite.py").write_text(suite)
    config = {"mode": "cpython", "dir": str(tmp_path), "name": "nqueens", "size": 6, "loops": 1}
    done = subprocess.run([sys.executable, str(bench.WORKER), json.dumps(config)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout)["error"].startswith("wrong result: (4, 189634819)")


def fake_sample(*times: float, jit: bool = False) -> dict[str, Any]:
    stats = {"traces": 1, "bridges": 0, "aborts": {"x": 2}, "code_bytes": 1000, "recording_seconds": 0.001,
             "optimizing_seconds": 0.002, "emitting_seconds": 0.003, "compile_seconds": [0.006]}
    return {"times": list(times), "setup_seconds": 0.005, "peak_rss_kb": 20_000,
            "first_native_seconds": 0.012 if jit else None,
            "compile_seconds_per_call": [0.0] * len(times), "jit": stats if jit else None}


def test_ratios_pair_the_samples_of_each_round_and_the_geomean_is_over_benchmarks() -> None:
    results = bench.Results()
    for cpython, copyjit in ((2.0, 1.0), (3.0, 1.0), (2.0, 2.0)):  # ratios 2, 3, 1 (warm-up included)
        results.add("a", "CPython", fake_sample(cpython / 2, cpython / 2))
        results.add("a", "copyjit", fake_sample(copyjit * 0.75, copyjit * 0.25, jit=True))
    results.add("b", "CPython", fake_sample(1.0, 1.0))
    results.add("b", "copyjit", fake_sample(4.0, 4.0, jit=True))  # ratio 0.25
    settings = bench.Settings(["a", "b"], BENCHMARKS, True, 3, 2, 60.0, {"a": 1, "b": 1})
    impls = bench.implementations(pypy=False, numba=False)
    report = bench.summarize(results, settings, impls)
    a = report["benchmarks"]["a"]
    assert (a["ratio"], a["ratio_min"], a["ratio_max"]) == (2.0, 1.0, 3.0)
    assert a["steady_ratio"] == pytest.approx(4.0)  # 1.0 / 0.25: the calls after the first
    assert report["benchmarks"]["b"]["ratio"] == 0.25
    assert report["geomean"] == pytest.approx((2.0 * 0.25) ** 0.5)
    assert a["jit"]["traces"] == 1 and a["jit"]["aborts"] == 2 and a["jit"]["code_bytes"] == 1000
    assert len(a["samples"]["copyjit"]) == 3  # the raw samples are kept
    text = bench.table(report, impls)
    assert "| a | 2.000 | 1.000 | 2.00 (1.00–3.00) | 4.00 | 1000 / 750 (12) |" in text
    assert "geometric mean of the ratios: 0.71" in text


def bench_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copyjit", "bench", *args], capture_output=True, text=True,
                          timeout=300)


def test_the_bench_command_makes_its_table_json_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    done = bench_command("--tiny", "--repeat", "1", "--loops", "2", "--no-pypy", "--no-numba",
                         "--json", str(out), "--plot", str(plot), "nbody", "richards")
    assert done.returncode == 0, done.stderr
    assert "| nbody |" in done.stdout and "| richards |" in done.stdout
    assert "geometric mean of the ratios" in done.stdout
    assert "[  4/4]" in done.stderr  # progress, one line a sample
    report = json.loads(out.read_text())
    assert report["geomean"] > 0
    for name in ("nbody", "richards"):
        entry = report["benchmarks"][name]
        assert entry["ratio"] > 0
        assert {"CPython", "copyjit", "jit", "steady_ratio", "samples"} <= set(entry)
        assert len(entry["samples"]["copyjit"][0]["times"]) == 2
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("pypy3") is None, reason="pypy3 is not installed")
def test_pypy3_is_a_column_when_installed(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = bench_command("--tiny", "--repeat", "1", "--loops", "1", "--no-numba", "--json", str(out),
                         "fannkuch")
    assert done.returncode == 0, done.stderr
    assert "pypy3 ratio" in done.stdout
    assert json.loads(out.read_text())["benchmarks"]["fannkuch"]["pypy3"]["ratio"]["median"] > 0


def test_an_unknown_benchmark_is_named() -> None:
    done = bench_command("nosuch")
    assert done.returncode != 0 and "no benchmark named nosuch" in done.stderr
