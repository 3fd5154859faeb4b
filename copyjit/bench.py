"""`python -m copyjit bench`: the benchmark suite under CPython with the JIT
off and under copyjit (and pypy3, numba when installed), interleaved.

Every sample is a fresh process (copyjit/bench_worker.py) that calls the
benchmark's function `loops` times: the first call is the warm-up (the
JIT's compiles happen there), the others the steady state. A round runs
every benchmark once under every implementation, the order of the
implementations turning from round to round; ratios pair the samples of a
round. The time of a sample is the sum of its calls, warm-up included;
the start-up of the process and of copyjit (`setup_seconds`, in the JSON)
are not part of it.

The programs are found in `--dir` (default: the benchmarks/ directory of
the checkout copyjit is imported from), whose suite.py names them, with
their sizes and expected results.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("bench_worker.py")
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@dataclass(frozen=True)
class Implementation:
    name: str            # the column: "CPython", "copyjit", "pypy3", "numba"
    executable: str
    mode: str            # the worker's mode


@dataclass(frozen=True)
class Settings:
    names: list[str]
    directory: Path
    quick: bool
    repeats: int
    loops: int
    timeout: float
    sizes: dict[str, int]


@dataclass
class Results:
    """Every sample: results.samples[benchmark][implementation] in round order."""

    samples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, benchmark: str, implementation: str, sample: dict[str, Any]) -> None:
        self.samples.setdefault(benchmark, {}).setdefault(implementation, []).append(sample)


# --- running ----------------------------------------------------------------


def load_suite(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """suite.py's SUITE and EXPECTED."""
    spec = importlib.util.spec_from_file_location("copyjit_bench_suite", directory / "suite.py")
    if spec is None or spec.loader is None or not (directory / "suite.py").exists():
        raise SystemExit(f"python -m copyjit bench: no suite.py in {directory} (give --dir)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SUITE, module.EXPECTED


def implementations(pypy: bool, numba: bool) -> list[Implementation]:
    """CPython and copyjit; pypy3 and numba when found (and not refused)."""
    found = [Implementation("CPython", sys.executable, "cpython"),
             Implementation("copyjit", sys.executable, "copyjit")]
    pypy3 = shutil.which("pypy3") if pypy else None
    if pypy3:
        found.append(Implementation("pypy3", pypy3, "cpython"))
    if numba and importlib.util.find_spec("numba") is not None:
        found.append(Implementation("numba", sys.executable, "numba"))
    return found


def compile_copyjit() -> None:
    """copyjit's bytecode, as an installed copyjit has it (pip compiles it):
    otherwise a checkout run with PYTHONDONTWRITEBYTECODE would compile
    copyjit from source in every sample (see tools/bytecode.py)."""
    import compileall

    compileall.compile_dir(str(Path(__file__).parent), quiet=1)


def run_sample(impl: Implementation, settings: Settings, name: str) -> dict[str, Any]:
    """One fresh process; its measurements, or {"error": why}."""
    config = {"mode": impl.mode, "dir": str(settings.directory), "name": name,
              "size": settings.sizes[name], "loops": settings.loops}
    try:
        done = subprocess.run([impl.executable, str(WORKER), json.dumps(config)], capture_output=True,
                              text=True, timeout=settings.timeout, cwd=settings.directory)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {settings.timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def rounds(settings: Settings, impls: list[Implementation], results: Results) -> None:
    """Every benchmark under every implementation, `repeats` times, with a
    progress line on stderr for each sample."""
    total, count = settings.repeats * len(settings.names) * len(impls), 0
    started = time.perf_counter()
    unsupported: dict[tuple[str, str], dict[str, Any]] = {}  # what numba could not compile, once is enough
    for round_number in range(settings.repeats):
        shift = round_number % len(impls)
        order = impls[shift:] + impls[:shift]
        for name in settings.names:
            for impl in order:
                sample = unsupported.get((name, impl.name)) or run_sample(impl, settings, name)
                if "unsupported" in sample:
                    unsupported[name, impl.name] = sample
                results.add(name, impl.name, sample)
                count += 1
                print(f"[{count:>3}/{total}] {time.perf_counter() - started:6.0f} s  round {round_number + 1}"
                      f"  {name:<14} {impl.name:<8} {describe(sample)}", file=sys.stderr, flush=True)


def describe(sample: dict[str, Any]) -> str:
    if "times" in sample:
        return f"{sum(sample['times']):.3f} s"
    return str(sample.get("error") or f"unsupported ({sample['unsupported']})")


# --- statistics ---------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def total(sample: dict[str, Any]) -> float:
    return float(sum(sample["times"]))


def steady(sample: dict[str, Any]) -> float:
    """The median call after the first (the first alone if there is one call)."""
    return float(statistics.median(sample["times"][1:] or sample["times"]))


def paired_ratios(base: list[dict[str, Any]], other: list[dict[str, Any]], measure: Any) -> list[float]:
    """measure(base) / measure(other), round by round, where both ran."""
    both = [(b, o) for b, o in zip(base, other, strict=True) if "times" in b and "times" in o]
    return [measure(b) / measure(o) for b, o in both]


def jit_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The JIT's own stats, median over the samples."""
    stats = [s["jit"] for s in samples if s.get("jit")]
    if not stats:
        return {}

    def median(key: str) -> float:
        return float(statistics.median(s[key] for s in stats))

    aborts: dict[str, int] = {}
    for s in stats:
        for reason, n in s["aborts"].items():
            aborts[reason] = max(aborts.get(reason, 0), n)
    seconds = {key: median(key) for key in ("recording_seconds", "optimizing_seconds", "emitting_seconds")}
    return {"traces": median("traces"), "bridges": median("bridges"), "code_bytes": median("code_bytes"),
            "aborts": median_aborts(stats), "abort_reasons": aborts, **seconds,
            "compile_seconds": float(statistics.median(sum(s["compile_seconds"]) for s in stats)),
            "first_native_seconds": median_of([s.get("first_native_seconds") for s in samples]),
            "setup_seconds": float(statistics.median(s["setup_seconds"] for s in samples if "times" in s))}


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def median_aborts(stats: list[dict[str, Any]]) -> float:
    return float(statistics.median(sum(s["aborts"].values()) for s in stats))


Samples = list[dict[str, Any]]


def implementation_summary(samples: Samples, base: Samples | None) -> dict[str, Any]:
    """Spreads of one implementation's figures, and its ratios to `base`'s (CPython's) by round."""
    ok = [s for s in samples if "times" in s]
    if not ok:
        problems = [s.get("error") or f"unsupported: {s.get('unsupported')}" for s in samples]
        return {"error": problems[0] if problems else "no samples"}
    summary: dict[str, Any] = {
        "total_seconds": spread([total(s) for s in ok]),
        "warmup_seconds": spread([s["times"][0] for s in ok]),
        "steady_seconds": spread([steady(s) for s in ok]),
        "peak_rss_kb": spread([float(s["peak_rss_kb"]) for s in ok]),
    }
    ratios = paired_ratios(base, samples, total) if base is not None else []
    if base is not None and ratios:
        summary["ratio"] = spread(ratios)
        summary["steady_ratio"] = spread(paired_ratios(base, samples, steady))
    return summary


def summarize(results: Results, settings: Settings, impls: list[Implementation]) -> dict[str, Any]:
    """The JSON report: figures per benchmark, geometric means, raw samples."""
    benchmarks: dict[str, Any] = {}
    for name in settings.names:
        samples = results.samples.get(name, {})
        base = samples.get("CPython", [])
        entry: dict[str, Any] = {"size": settings.sizes[name]}
        for impl in impls:
            entry[impl.name] = implementation_summary(samples.get(impl.name, []),
                                                      base if impl.name != "CPython" else None)
        copyjit = entry["copyjit"]
        entry["ratio"] = copyjit["ratio"]["median"] if "ratio" in copyjit else None
        entry["ratio_min"] = copyjit["ratio"]["min"] if "ratio" in copyjit else None
        entry["ratio_max"] = copyjit["ratio"]["max"] if "ratio" in copyjit else None
        entry["steady_ratio"] = copyjit["steady_ratio"]["median"] if "ratio" in copyjit else None
        entry["jit"] = jit_figures(samples.get("copyjit", []))
        entry["samples"] = samples
        benchmarks[name] = entry
    report: dict[str, Any] = {"geomean": geomean([b["ratio"] for b in benchmarks.values()]),
                              "geomean_steady": geomean([b["steady_ratio"] for b in benchmarks.values()])}
    for impl in impls[2:]:
        report[f"geomean_{impl.name}"] = geomean(
            [b[impl.name]["ratio"]["median"] for b in benchmarks.values() if "ratio" in b[impl.name]])
    report.update(machine=machine(impls), settings=settings_dict(settings), benchmarks=benchmarks)
    return report


def geomean(ratios: list[float | None]) -> float | None:
    present = [r for r in ratios if r]
    return math.exp(sum(map(math.log, present)) / len(present)) if present else None


def machine(impls: list[Implementation]) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu, "cores": os.cpu_count(),
            "load_average": os.getloadavg(), "platform": platform.platform(),
            "python": sys.version, "python_config": sysconfig.get_config_var("CONFIG_ARGS"),
            "implementations": {impl.name: impl.executable for impl in impls}}


def settings_dict(settings: Settings) -> dict[str, Any]:
    return {"quick": settings.quick, "repeats": settings.repeats, "loops": settings.loops,
            "directory": str(settings.directory), "sizes": settings.sizes}


# --- output -----------------------------------------------------------------


def table(report: dict[str, Any], impls: list[Implementation]) -> str:
    """The report as a Markdown table, and its geometric means."""
    extra = [impl.name for impl in impls[2:]]
    head = ["benchmark", "CPython s", "copyjit s", "ratio (median, min–max)", "steady ratio",
            "warm-up ms CPython / copyjit (to first native)", "JIT ms: hot to native (rec / opt / emit)",
            "traces / bridges / aborts", "code KB", "peak RSS MB CPython / copyjit",
            *[f"{name} ratio" for name in extra]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, entry in report["benchmarks"].items():
        lines.append("| " + " | ".join([name, *row(entry, extra)]) + " |")
    means = [f"geometric mean of the ratios: {fmt(report['geomean'])} "
             f"(steady state: {fmt(report['geomean_steady'])})"]
    means += [f"{name}: {fmt(report.get(f'geomean_{name}'))}" for name in extra]
    return "\n".join(lines) + "\n\n" + "; ".join(means) + "\n"


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def row(entry: dict[str, Any], extra: list[str]) -> list[str]:
    plain, jitted, jit = entry["CPython"], entry["copyjit"], entry["jit"]
    if "error" in plain or "error" in jitted:
        return [plain.get("error", ""), jitted.get("error", ""), *["–"] * (8 + len(extra))]
    cells = [f"{plain['total_seconds']['median']:.3f}", f"{jitted['total_seconds']['median']:.3f}",
             f"{fmt(entry['ratio'])} ({fmt(entry['ratio_min'])}–{fmt(entry['ratio_max'])})",
             fmt(entry["steady_ratio"]),
             pair(plain, jitted, "warmup_seconds", 1e3) + first_native(jit)]
    if jit:
        cells += [f"{jit['compile_seconds'] * 1e3:.0f} ({jit['recording_seconds'] * 1e3:.0f} / "
                  f"{jit['optimizing_seconds'] * 1e3:.0f} / {jit['emitting_seconds'] * 1e3:.0f})",
                  f"{jit['traces']:g} / {jit['bridges']:g} / {jit['aborts']:g}",
                  f"{jit['code_bytes'] / 1024:.0f}"]
    else:
        cells += ["–", "–", "–"]
    cells.append(pair(plain, jitted, "peak_rss_kb", 1 / 1024))
    for name in extra:
        other = entry[name]
        cells.append(f"{other['ratio']['median']:.2f}" if "ratio" in other else "n/a")
    return cells


def first_native(jit: dict[str, Any]) -> str:
    """ (ms from the first call to the first trace installed), if there was one."""
    seconds = jit.get("first_native_seconds")
    return "" if seconds is None else f" ({seconds * 1e3:.0f})"


def pair(plain: dict[str, Any], jitted: dict[str, Any], key: str, scale: float) -> str:
    """A figure's medians under CPython and copyjit, scaled, as "a / b"."""
    return f"{plain[key]['median'] * scale:.0f} / {jitted[key]['median'] * scale:.0f}"


def plot(report: dict[str, Any], impls: list[Implementation], path: str) -> None:
    """Each benchmark's ratio (median, with min–max as error bars), per implementation."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["benchmarks"])
    shown = [impl.name for impl in impls[1:]]
    figure, axes = plt.subplots(figsize=(9, 0.25 * len(names) * len(shown) + 1.5))
    height = 0.8 / len(shown)
    for k, impl in enumerate(shown):
        medians, low, high, ys = [], [], [], []
        for i, name in enumerate(names):
            ratio = report["benchmarks"][name][impl].get("ratio")
            if ratio:
                ys.append(i + k * height)
                medians.append(ratio["median"])
                low.append(ratio["median"] - ratio["min"])
                high.append(ratio["max"] - ratio["median"])
        axes.barh(ys, medians, height, xerr=[low, high], label=impl, capsize=2)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_yticks([i + height * (len(shown) - 1) / 2 for i in range(len(names))], names)
    axes.invert_yaxis()
    axes.set_xlabel("time with the JIT off / time under each (above 1: faster); bars: min–max")
    axes.set_title(f"copyjit bench: geometric mean {fmt(report['geomean'])}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- the command ----------------------------------------------------------------


def main(names: list[str], directory: str | None, quick: bool, repeats: int | None, loops: int | None,
         json_path: str | None, plot_path: str | None, pypy: bool = True, numba: bool = True,
         size: int | None = None, timeout: float = 600.0, tiny: bool = False) -> int:
    where = Path(directory) if directory else DEFAULT_DIR
    suite, expected = load_suite(where)
    unknown = [n for n in names if n not in suite]
    if unknown:
        raise SystemExit(f"python -m copyjit bench: no benchmark named {', '.join(unknown)} "
                         f"(there are: {', '.join(suite)})")
    chosen = names or list(suite)
    kind = "tiny" if tiny else "quick" if quick else "full"
    sizes = {n: size or getattr(suite[n], kind) for n in chosen}
    missing = [n for n in chosen if sizes[n] not in expected.get(n, {})]
    if missing:
        raise SystemExit(f"python -m copyjit bench: no expected result for {', '.join(missing)} at that size")
    settings = Settings(chosen, where.resolve(), quick, repeats or 5,
                        loops or (4 if quick else 5), timeout, sizes)
    impls = implementations(pypy, numba)
    compile_copyjit()
    print(f"copyjit bench: {len(chosen)} benchmarks x {', '.join(i.name for i in impls)}; "
          f"{settings.repeats} rounds of fresh processes, {settings.loops} calls each "
          f"(the first is the warm-up)", file=sys.stderr)
    results = Results()
    rounds(settings, impls, results)
    report = summarize(results, settings, impls)
    print(table(report, impls))
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    if plot_path:
        plot(report, impls, plot_path)
    failed = [n for n, b in report["benchmarks"].items() if any("error" in b[i.name] for i in impls[:2])]
    return 1 if failed else 0
