"""The benchmark suite that `python -m copyjit bench` runs: each program,
the function it times, its sizes and the results every implementation
must give at those sizes.

Each program is a module of this directory with a function of one size
argument; the worker (copyjit/bench_worker.py) calls it and checks what
it returns against EXPECTED (floats to 9 significant digits, see
`same`). Written for Python 3.9 too, so that pypy3 runs the same files.
"""

from typing import Any, NamedTuple


class Benchmark(NamedTuple):
    module: str       # benchmarks/<module>.py
    function: str     # called with the size
    tiny: int         # the size for tests (milliseconds)
    quick: int        # the size for --quick (~0.1-0.2 s per call under CPython here)
    full: int         # the size otherwise (~4x that)
    stresses: str     # what it is made of, for the table"s readers


SUITE = {
    "nbody": Benchmark("nbody", "nbody", 200, 20_000, 80_000, "floats in lists, tuple unpacking"),
    "spectral_norm": Benchmark("spectral_norm", "spectral_norm", 20, 130, 260,
                               "floats, a small inlined call"),
    "mandelbrot": Benchmark("mandelbrot", "mandelbrot", 30, 200, 400, "floats, nested loops, break"),
    "fannkuch": Benchmark("fannkuch", "run", 6, 8, 9, "int lists, swaps"),
    "nqueens": Benchmark("nqueens", "run", 6, 11, 12, "a generator, bool lists"),
    "float": Benchmark("float", "run", 1_000, 100_000, 400_000, "float attributes, math, allocation"),
    "richards": Benchmark("richards", "run", 1, 3, 12, "objects, methods, linked lists"),
    "deltablue": Benchmark("deltablue", "run", 100, 4_000, 12_000, "objects, polymorphic methods"),
    "raytrace": Benchmark("raytrace", "run", 10, 60, 120, "vector objects, floats, methods"),
    "chaos": Benchmark("chaos", "run", 5_000, 100_000, 400_000, "small objects, operator methods"),
    "go": Benchmark("go", "run", 1, 8, 32, "objects, sets, list comprehensions"),
    "calls": Benchmark("calls", "run", 2_000, 100_000, 400_000, "function and method calls"),
    "attrs": Benchmark("attrs", "run", 200, 6_000, 24_000, "attribute reads and writes"),
    "dicts": Benchmark("dicts", "run", 5_000, 200_000, 800_000, "dicts with str and int keys"),
    "strings": Benchmark("strings", "run", 1_000, 20_000, 80_000, "string methods, formatting"),
}

# What each benchmark"s function returns, by size: any implementation
# that returns something else is wrong.
EXPECTED: "dict[str, dict[int, Any]]" = {
    "nbody": {
        200: (-0.1690751638285245, -0.16902690858133146),
        20000: (-0.1690751638285245, -0.16908926275527172),
        80000: (-0.1690751638285245, -0.16902307738080888),
    },
    "spectral_norm": {
        20: 1.2738398405412965,
        130: 1.2742222097429006,
        260: 1.2742238978625582,
    },
    "mandelbrot": {
        30: (349, 270604191),
        200: (15899, 862301602),
        400: (63528, 945739731),
    },
    "fannkuch": {
        6: (49, 10),
        8: (1616, 22),
        9: (8629, 30),
    },
    "nqueens": {
        6: (4, 189634819),
        11: (2680, 32654762),
        12: (14200, 344603495),
    },
    "float": {
        1000: (0.894367538568, 1.0, 0.447179508317),
        100000: (0.8944271891, 1.0, 0.447213595446),
        400000: (0.894427190979, 1.0, 0.447213595488),
    },
    "richards": {
        1: ((23246, 9297), 1),
        3: ((23246, 9297), 3),
        12: ((23246, 9297), 12),
    },
    "deltablue": {
        100: (4950, 224280),
        4000: (4950, 47970030),
        12000: (4950, 383910030),
    },
    "raytrace": {
        10: 125389752,
        60: 684210344,
        120: 672891976,
    },
    "chaos": {
        5000: (2855, 101904838),
        100000: (6541, 572784626),
        400000: (6682, 600561403),
    },
    "go": {
        1: (9, 102),
        8: (-2, 1001),
        32: (186, 4110),
    },
    "calls": {
        2000: 22015880,
        100000: 793615,
        400000: 3169840,
    },
    "attrs": {
        200: 255187173,
        6000: 535767382,
        24000: 701903607,
    },
    "dicts": {
        5000: (712018247, 2314),
        200000: (36308159, 91506),
        800000: (901660457, 367063),
    },
    "strings": {
        1000: (434178763, 10000, 300),
        20000: (887572130, 200000, 18000),
        80000: (733919274, 800000, 42000),
    },
}


def same(got: Any, expected: Any) -> bool:
    """Equal, floats to 9 significant digits (libm"s last bit may differ)."""
    if isinstance(expected, float) and isinstance(got, float):
        return abs(got - expected) <= 1e-9 * max(abs(expected), 1e-300)
    if isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)):
        return len(got) == len(expected) and all(same(got[i], e) for i, e in enumerate(expected))
    return type(got) is type(expected) and got == expected
