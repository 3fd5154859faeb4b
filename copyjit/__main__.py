"""python -m copyjit: the command line."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    import argparse
    import pathlib
    from types import ModuleType

    from copyjit.stencil import Table


def _stencil_module_path() -> pathlib.Path:
    import pathlib

    from copyjit import stencils

    return pathlib.Path(stencils.path())


def _builder() -> tuple[ModuleType, ModuleType]:
    """The build-time modules, which need the `build` extra."""
    try:
        from copyjit.build import builder, targets
    except ImportError as e:
        raise SystemExit(f"copyjit: rebuilding stencils needs `pip install 'copyjit[build]'` ({e})") from None
    return builder, targets


def _rebuild_table() -> Table:
    builder, targets = _builder()
    return builder.build(targets.host())  # type: ignore[no-any-return]


def _records_path(path: pathlib.Path) -> pathlib.Path:
    """The binary stencils beside the table (Table.render_records)."""
    return path.with_suffix(".stencils")


def cmd_stencils(args: argparse.Namespace) -> int:
    from copyjit import stencils

    if args.emit_c:
        import pathlib

        builder, _ = _builder()
        out = pathlib.Path(args.emit_c)
        out.mkdir(parents=True, exist_ok=True)
        for unit, source in builder.sources().items():
            (out / f"{unit}.c").write_text(source)
        print(f"wrote {len(builder.sources())} translation units to {out}")
        return 0
    if args.build:
        path = _stencil_module_path()
        table = _rebuild_table()
        path.write_text(table.render())
        _records_path(path).write_bytes(table.render_records())
        print(f"wrote {path} and {_records_path(path).name}")
        return 0
    if args.check:
        return _check(_stencil_module_path())
    table = stencils.table()
    if args.show:
        from copyjit.backend import disasm

        for name in args.show:
            if name not in table.stencils:
                print(f"no stencil named {name!r}", file=sys.stderr)
                return 2
            print(disasm.stencil(table.stencils[name]))
        return 0
    print(f"# {len(table.stencils)} stencils for Python {table.python} on {table.target}, "
          f"built by {table.compiler}")
    print(f"# {'name':<40} {'bytes':>5} {'laid':>5}  holes (laid: size when the next uop follows)")
    for name, stencil in table.stencils.items():
        laid = len(stencil.without_tail_jump().code)
        holes = ", ".join(h.describe() for h in stencil.holes)
        print(f"{name:<42} {len(stencil.code):>5} {laid:>5}  {holes}")
    return 0


def _check(path: pathlib.Path) -> int:
    import difflib

    shipped = path.read_text() if path.exists() else ""
    table = _rebuild_table()
    rebuilt = table.render()
    records = _records_path(path)
    if shipped == rebuilt and records.exists() and records.read_bytes() == table.render_records():
        print(f"stencils are up to date: {path.name} and {records.name} match a rebuild from the C sources")
        return 0
    if shipped == rebuilt:
        print(f"stencils are stale: {records.name} differs from a rebuild; "
              "run `python -m copyjit stencils --build`", file=sys.stderr)
        return 1
    diff = difflib.unified_diff(shipped.splitlines(), rebuilt.splitlines(),
                                f"shipped/{path.name}", f"rebuilt/{path.name}", lineterm="", n=0)
    changed = [line for line in diff if line.startswith(("+", "-"))]
    print(f"stencils are stale: {path.name} differs from a rebuild "
          f"({len(changed)} lines); run `python -m copyjit stencils --build`", file=sys.stderr)
    for line in changed[:20]:
        print(line[:200], file=sys.stderr)
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    from copyjit import demo

    return 0 if demo.main(args.n) else 1


class RunOptions:
    """`run`'s arguments, as its argparse parser names them."""

    def __init__(self) -> None:
        self.stats = False
        self.perf_map = False
        self.stats_json: str | None = None
        self.threshold: int | None = None
        self.module: str | None = None
        self.no_opt: list[str] | None = None
        self.target: str | None = None
        self.args: list[str] = []


# `run`'s options that take a value: option -> (attribute, type).
_RUN_VALUES: dict[str, tuple[str, type]] = {
    "--stats-json": ("stats_json", str), "--threshold": ("threshold", int), "-m": ("module", str),
}
_RUN_LONG = ("--help", "--no-opt", "--perf-map", "--stats", "--stats-json", "--threshold")


def _ambiguous(word: str) -> bool:
    """An abbreviation of two of `run`'s options: argparse stops with an
    error on it even among the script's arguments."""
    key = word.partition("=")[0]
    return word.startswith("--") and key not in _RUN_LONG and \
        sum(option.startswith(key) for option in _RUN_LONG) > 1


def parse_run(argv: list[str]) -> RunOptions | None:
    """`run`'s arguments when argparse would read them plainly: options
    spelled out in full, each value a word of its own that does not start
    with "-", and no "--" anywhere (argparse drops one after the script)
    nor an ambiguous abbreviation.
    None for anything else (help, errors, abbreviations, `--option=value`),
    which argparse then parses: importing it and building the parser costs
    more than the rest of copyjit's start-up."""
    if "--" in argv or any(_ambiguous(word) for word in argv):
        return None
    options = RunOptions()
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            options.target, options.args = word, list(words)
            return options
        if word in ("--stats", "--perf-map"):
            setattr(options, word[2:].replace("-", "_"), True)
            continue
        value = next(words, "-")
        if word not in _RUN_VALUES or value.startswith("-"):
            return None
        name, convert = _RUN_VALUES[word]
        try:
            setattr(options, name, convert(value))  # int() as argparse's type=int
        except ValueError:
            return None
    return options if options.module is not None else None


def _program(command: str, args: argparse.Namespace | RunOptions) -> tuple[str, list[str], bool]:
    """`run`'s and `diff`'s program: (script or module, its arguments, is a
    module), after checking the --no-opt names; a clear error otherwise."""
    if args.module is None and args.target is None:
        raise SystemExit(f"python -m copyjit {command}: give a script, or -m MODULE")
    if args.no_opt:
        from copyjit.opt import UnknownPass, disabled_passes

        try:
            disabled_passes("", args.no_opt)
        except UnknownPass as error:
            raise SystemExit(f"python -m copyjit {command}: --no-opt: {error}") from None
    rest = list(args.args)
    if args.module is not None:
        return args.module, ([args.target] if args.target is not None else []) + rest, True
    assert args.target is not None
    return args.target, rest, False


def cmd_run(args: argparse.Namespace | RunOptions) -> int:
    from copyjit import run

    target, rest, module = _program("run", args)
    if args.perf_map:
        _perf_map()
    return run.run(target, rest, module, args.threshold, args.stats, args.stats_json, args.no_opt or ())


def _perf_map() -> None:
    """--perf-map: as COPYJIT_PERF_MAP=1, for this process only."""
    import copyjit
    from copyjit.perfmap import PerfMap

    if not copyjit._off():
        copyjit._jit().perf_map = PerfMap()


def cmd_explain(args: argparse.Namespace) -> int:
    """Run the program with the JIT, then report on every loop that got hot."""
    import copyjit
    from copyjit import run

    target, rest, module = _program("explain", args)
    jit = copyjit._jit()
    jit.codes = []  # keep every code alive: a module's own loops die with it otherwise

    def report() -> None:
        from copyjit import explainer as explain

        reports = explain.collect(jit)
        if args.html:
            from copyjit import explainer_html as explain_html

            with open(args.html, "w") as file:
                file.write(explain_html.render(reports))
            print(f"copyjit explain: wrote {args.html}", file=sys.stderr)
        if args.html and not args.output:
            return
        written = explain.render(reports, code=not args.summary)
        if args.output:
            with open(args.output, "w") as file:
                file.write(written)
        else:
            sys.stdout.flush()
            print(written, end="")

    return run.run(target, rest, module, args.threshold, False, None, args.no_opt or (), report)


def cmd_diff(args: argparse.Namespace) -> int:
    from copyjit import diff

    target, rest, module = _program("diff", args)
    return diff.main(target, rest, module, args.threshold, tuple(args.no_opt or ()), args.timeout)


def cmd_bench(args: argparse.Namespace) -> int:
    from copyjit import bench

    return bench.main(args.names, args.dir, args.quick, args.repeat, args.loops, args.json, args.plot,
                      pypy=not args.no_pypy, numba=not args.no_numba, size=args.size, timeout=args.timeout,
                      tiny=args.tiny)


def _program_arguments(p: argparse.ArgumentParser) -> None:
    """What run, explain and diff take alike: passes off, and the program
    (a script or -m MODULE, and its arguments)."""
    import argparse  # (as _parser: not at start-up)

    p.add_argument("--no-opt", action="append", metavar="PASS",
                   help="switch an optimizer pass off (repeatable; `all`: every pass; env COPYJIT_OPT)")
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m")
    p.add_argument("target", nargs="?", metavar="SCRIPT")
    p.add_argument("args", nargs=argparse.REMAINDER)


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m copyjit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("stencils", help="list, show, check or rebuild the stencil table")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="every stencil with its size and holes (default)")
    group.add_argument("--check", action="store_true",
                       help="rebuild from the C sources; exit 1 if the shipped table differs")
    group.add_argument("--build", action="store_true", help="rebuild and write the shipped table")
    group.add_argument("--show", nargs="+", metavar="NAME", help="bytes, holes and disassembly of stencils")
    group.add_argument("--emit-c", metavar="DIR", help="write the generated C sources to DIR")
    p.set_defaults(func=cmd_stencils)

    p = commands.add_parser("demo", help="emit a loop as native code, run it, show the machine code")
    p.add_argument("-n", type=int, default=10_000_000, help="loop iterations (default 10,000,000)")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser("run", help="run a script (or -m MODULE) as python would, with the JIT on")
    p.add_argument("--stats", action="store_true", help="print what the JIT did to stderr at exit")
    p.add_argument("--perf-map", action="store_true",
                   help="write /tmp/perf-PID.map for Linux perf (env COPYJIT_PERF_MAP=1)")
    p.add_argument("--stats-json", metavar="FILE", help="write the same as JSON")
    p.add_argument("--threshold", type=int, metavar="N",
                   help="backedges before a loop is traced (1: the first; env COPYJIT_THRESHOLD)")
    _program_arguments(p)
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("explain", help="run a script (or -m MODULE) with the JIT, then show for "
                                            "every hot loop whether it was compiled (and why not), its "
                                            "traces, exits, bridges and machine code")
    p.add_argument("--threshold", type=int, metavar="N",
                   help="backedges before a loop is traced (1: the first; env COPYJIT_THRESHOLD)")
    p.add_argument("--summary", action="store_true", help="only the loops, their state, exits and bridges: "
                                                          "no traces or machine code")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE, not stdout")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page (and no text, unless -o)")
    _program_arguments(p)
    p.set_defaults(func=cmd_explain)

    p = commands.add_parser("diff", help="run a script (or -m MODULE) under CPython and under the JIT, and "
                                         "show the first difference in exit code, output or files written")
    p.add_argument("--threshold", type=int, metavar="N", help="the JIT run's threshold (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per run (default 600)")
    _program_arguments(p)
    p.set_defaults(func=cmd_diff)

    p = commands.add_parser("bench", help="the benchmark suite under CPython and copyjit (and pypy3, numba "
                                          "when installed): ratios, warm-up, JIT figures, memory")
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument("--quick", action="store_true", help="the smaller sizes and 4 calls per process")
    p.add_argument("--tiny", action="store_true", help="the tests' sizes (milliseconds: checks the command "
                                                       "works, measures nothing)")
    p.add_argument("--repeat", type=int, metavar="N", help="rounds: fresh processes per benchmark and "
                                                            "implementation (default 5)")
    p.add_argument("--loops", type=int, metavar="N", help="calls per process, the first being the warm-up "
                                                           "(default 5, --quick 4)")
    p.add_argument("--size", type=int, metavar="N", help="this size for every benchmark named (its expected "
                                                          "result must be in suite.py)")
    p.add_argument("--json", metavar="FILE", help="write every figure and raw sample as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot each benchmark's ratio with its spread")
    p.add_argument("--dir", metavar="DIR", help="the benchmark programs and their suite.py "
                                                "(default: the checkout's benchmarks/)")
    p.add_argument("--no-pypy", action="store_true", help="leave pypy3 out even if installed")
    p.add_argument("--no-numba", action="store_true", help="leave numba out even if installed")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per process")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse_run(argv[1:]) if argv[:1] == ["run"] else None
    args: argparse.Namespace | RunOptions
    if options is not None:
        command, args = cmd_run, options
    else:
        args = _parser().parse_args(argv)
        command = args.func
    try:
        return int(command(args))
    except BrokenPipeError:  # `... | head`: stop quietly, as Unix tools do
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
