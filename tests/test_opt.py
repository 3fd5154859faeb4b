"""The optimizer: the text form, the verifier, and each pass as input trace
-> expected trace (compared up to renaming), plus every example under the
JIT with each pass switched off giving plain CPython's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from copyjit.opt import PIPELINE, UnknownPass, disabled_passes, optimize
from copyjit.opt.fold import fold
from copyjit.opt.passes import allocs, dce, forward, guards
from copyjit.opt.text import TextError, dump, normalized, parse
from copyjit.opt.verify import VerifyError, verify
from copyjit.trace.ir import Recording

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def same(got: Recording, expected: str) -> None:
    assert dump(got) == normalized(expected), f"got:\n{dump(got)}\nexpected:\n{normalized(expected)}"


# --- text ----------------------------------------------------------------------

TRACE = """\
trace dst=10 src=40 slots=1:f,2:i stored=2,1
n = range_next.i() | exit @28 normal
    store.i(n) 2
acc = load.f() 1
half = const.f() 0.5
x = to_float.f(n)
y = binary.f(x, half) 'mul' | exit @38 stack acc x half
z = binary.f(acc, y) 'add'
    store.f(z) 1
nan = const.f() nan
    branch.f(z, nan) ('LT', False) | exit @44 stack z
"""


def test_text_round_trips_and_renames() -> None:
    text = dump(parse(TRACE))
    assert dump(parse(text)) == text
    assert "v0 = range_next.i() | exit @28 normal" in text
    assert "v5 = binary.f(v4, v3) 'mul' | exit @38 stack v2 v4 v3" in text
    rec = parse(TRACE)
    assert rec.slots == {1: "f", 2: "i"} and rec.stored == [2, 1] and rec.dst == 10 and rec.src == 40
    assert rec.ops[8].arg != rec.ops[8].arg  # nan
    verify(rec)


def recordings_of(path: Path, function: str, argument: int) -> list[str]:
    """The text of every recording made running an example's function."""
    script = f"""
import importlib.util, sys
from copyjit.trace import lower as L
from copyjit.opt import text
seen = []
original, original_bridge = L.lower, L.lower_bridge
def lower(rec, *args):
    seen.append(text.dump(rec)); return original(rec, *args)
def lower_bridge(rec, *args):
    seen.append(text.dump(rec)); return original_bridge(rec, *args)
L.lower, L.lower_bridge = lower, lower_bridge
import copyjit
spec = importlib.util.spec_from_file_location("m", {str(path)!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
copyjit.enable(1)
m.{function}({argument})
copyjit.disable()
print("\\0".join(seen))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return [t.strip("\n") + "\n" for t in done.stdout.split("\0") if t.strip()]


KERNELS = {"examples/float_accumulation.py": ("total", 300), "examples/int_loop.py": ("checksum", 300),
           "examples/nested_loops.py": ("table", 30), "examples/big_ints.py": ("grow", 300),
           "examples/branchy.py": ("collatz_steps", 300), "examples/lists.py": ("sieve", 3000),
           "examples/calls.py": ("integrate", 300), "benchmarks/nbody.py": ("nbody", 200),
           "benchmarks/spectral_norm.py": ("spectral_norm", 12),
           "benchmarks/mandelbrot.py": ("mandelbrot", 24)}


@pytest.mark.parametrize("path", sorted(KERNELS))
def test_every_recorded_trace_round_trips_and_verifies(path: str) -> None:
    texts = recordings_of(ROOT / path, *KERNELS[path])
    assert texts
    for text in texts:
        assert dump(parse(text)) == text
        rec = parse(text)
        verify(rec)
        optimized = optimize(rec, check=True)
        assert len(optimized.ops) <= len(rec.ops)


@pytest.mark.parametrize("bad, message", [
    ("x = const.i() 1\n    store.i(y) 1", "y is not defined above"),
    ("x = const.i() 1\nx = const.i() 2", "x defined twice"),
    ("x = const.i 1", "cannot read"),
    ("x = const.i() @", "is not a literal"),
    ("x = const.i() 1 | exit 12", "a snapshot reads"),
])
def test_text_errors_name_the_line(bad: str, message: str) -> None:
    with pytest.raises(TextError, match=message):
        parse("trace dst=0 src=0 slots=1:i stored=1\n" + bad)


@pytest.mark.parametrize("body, message", [
    ("x = frobnicate.i()", "no such op"),
    ("x = const.f() 1.0\ny = binary.i(x, x) 'add'", "kind 'f' where 'i' is taken"),
    ("x = const.i() 1\n    store.f(x) 1", "where 'f' is taken"),
    ("x = load.f() 1", "local 1 is 'i'"),
    ("x = const.i() 1\n    store.i(x) 2", "local 2 is None"),
    ("x = load_o.o() 1\ny = second.i(x)", "does not follow an enumerate"),
    ("x = const.i() 1\ny = input.o()", "input after other ops"),
    ("x = const.i() 1\ny = binary.i(x) 'add'", "takes 2 arguments, has 1"),
    ("x = const.i() 1\n    release.(x)", "kind 'i' where 'o' is taken"),
])
def test_verifier_rejects_broken_traces(body: str, message: str) -> None:
    rec = parse("trace dst=0 src=0 slots=1:i stored=1\n" + body)
    with pytest.raises(VerifyError, match=message):
        verify(rec, "a test")


def test_verifier_rejects_a_snapshot_of_a_later_value() -> None:
    rec = parse("trace dst=0 src=0 slots=1:i stored=1\nx = const.i() 1\ny = const.i() 2")
    rec.ops[0].snapshot = rec.ops[1].snapshot = None
    from copyjit.trace.ir import Snapshot

    rec.ops[0].snapshot = Snapshot(4, (1,))
    with pytest.raises(VerifyError, match="snapshot holds v1"):
        verify(rec)


# --- passes: input -> expected -------------------------------------------------

def test_forward_reads_the_value_written_this_iteration() -> None:
    rec = parse("""trace dst=0 src=0 slots=1:i,2:f stored=1
a = load.i() 1
b = load.i() 1
one = const.i() 1
c = binary.i(b, one) 'add' | exit @4 stack b one
    store.i(c) 1
d = load.i() 1
e = load.f() 2
x = binary.i(a, d) 'add' | exit @8 stack a d
""")
    same(forward(rec), """trace dst=0 src=0 slots=1:i,2:f stored=1
a = load.i() 1
one = const.i() 1
c = binary.i(a, one) 'add' | exit @4 stack a one
    store.i(c) 1
e = load.f() 2
x = binary.i(a, c) 'add' | exit @8 stack a c
""")


def test_forward_forgets_across_a_nested_loop() -> None:
    text = """trace dst=0 src=0 slots=1:i stored=1
c = const.i() 3
    store.i(c) 1
    inner_loop.() inner(record=1, cell=2, status=3, head=4, inputs=())
d = load.i() 1
"""
    same(forward(parse(text)), text)


def test_fold_folds_constants_and_identities() -> None:
    rec = parse("""trace dst=0 src=0 slots=1:i,2:f stored=1
a = const.i() 6
b = const.i() -4
c = binary.i(a, b) 'floordiv' | exit @2
x = load.i() 1
zero = const.i() 0
y = binary.i(x, zero) 'add' | exit @4 stack x zero
z = binary.i(y, c) 'mul' | exit @6 stack y c
big = const.i() 9223372036854775807
w = binary.i(big, a) 'add' | exit @8
    store.i(z) 1
f = load.f() 2
mz = const.f() 0.0
g = binary.f(f, mz) 'add'
h = binary.f(f, mz) 'sub'
k = to_float.f(a)
    branch.i(a, b) ('GT', True) | exit @10
    branch.i(a, b) ('LT', True) | exit @12
dz = binary.i(a, zero) 'floordiv' | exit @14
""")
    same(fold(rec), """trace dst=0 src=0 slots=1:i,2:f stored=1
a = const.i() 6
b = const.i() -4
c = const.i() -2
x = load.i() 1
zero = const.i() 0
z = binary.i(x, c) 'mul' | exit @6 stack x c
big = const.i() 9223372036854775807
w = binary.i(big, a) 'add' | exit @8
    store.i(z) 1
f = load.f() 2
mz = const.f() 0.0
g = binary.f(f, mz) 'add'
k = const.f() 6.0
    branch.i(a, b) ('LT', True) | exit @12
dz = binary.i(a, zero) 'floordiv' | exit @14
""")


def test_guards_drops_a_guard_checked_already_unless_code_ran_between() -> None:
    int_type = id(int)
    rec = parse(f"""trace dst=0 src=0 slots= stored=
a = load_o.o() 1
    guard_type.(a) {int_type} | exit @2
u = unbox.i(a) | exit @2
    guard_type.(a) {int_type} | exit @4
v = unbox.i(a) | exit @4
w = binary.i(u, v) 'add' | exit @6
b = load_o.o() 2
    guard_version.(b) 77 | exit @8
    release.(a)
    guard_version.(b) 77 | exit @10
c = attr.o(b) 5 | exit @12
    guard_version.(b) 77 | exit @14
    release.(b)
    release.(c)
""")
    same(guards(rec), f"""trace dst=0 src=0 slots= stored=
a = load_o.o() 1
    guard_type.(a) {int_type} | exit @2
u = unbox.i(a) | exit @2
w = binary.i(u, u) 'add' | exit @6
b = load_o.o() 2
    guard_version.(b) 77 | exit @8
    release.(a)
c = attr.o(b) 5 | exit @12
    guard_version.(b) 77 | exit @14
    release.(b)
    release.(c)
""")


def test_guards_keeps_a_guard_after_a_release_that_may_run_code() -> None:
    text = """trace dst=0 src=0 slots= stored=
a = load_o.o() 1
b = load_o.o() 2
    guard_version.(b) 77 | exit @8
    release.(a)
    guard_version.(b) 77 | exit @10
    release.(b)
"""
    same(guards(parse(text)), text)



def test_guards_sees_through_copies_and_releases_of_a_copy_still_held() -> None:
    list_type = id(list)
    rec = parse(f"""trace dst=0 src=0 slots= stored=
a = load_o.o() 1
c = copy_o.o(a)
    guard_type.(c) {list_type} | exit @2
    release.(c)
    guard_type.(a) {list_type} | exit @4
    release.(a)
    guard_type.(a) {list_type} | exit @6
""")
    same(guards(rec), f"""trace dst=0 src=0 slots= stored=
a = load_o.o() 1
c = copy_o.o(a)
    guard_type.(c) {list_type} | exit @2
    release.(c)
    release.(a)
    guard_type.(a) {list_type} | exit @6
""")


def test_allocs_drops_boxes_only_released_and_stores_floats_into_lists_unboxed() -> None:
    rec = parse("""trace dst=0 src=0 slots=1:f,2:i stored=
x = load.f() 1
n = load.i() 2
bx = box.o(x) | exit @2 stack x
    release.(bx)
bn = box.o(n) | exit @4 stack n
g = guard_is.(bn) 5 | exit @6 stack bn
    release.(bn)
seq = load_o.o() 3
i = const.i() 0
by = box.o(x) | exit @8 stack x seq i
     store_subscr_list.(by, seq, i) | exit @8 stack by seq i
     release.(seq)
""")
    same(allocs(rec), """trace dst=0 src=0 slots=1:f,2:i stored=
x = load.f() 1
n = load.i() 2
bn = box.o(n) | exit @4 stack n
g = guard_is.(bn) 5 | exit @6 stack bn
    release.(bn)
seq = load_o.o() 3
i = const.i() 0
     store_subscr_list_f.(x, seq, i) | exit @8 stack x seq i
     release.(seq)
""")


def test_allocs_keeps_a_box_stored_and_used_again() -> None:
    text = """trace dst=0 src=0 slots=1:f stored=
x = load.f() 1
seq = load_o.o() 3
i = const.i() 0
b = box.o(x) | exit @8 stack x seq i
c = copy_o.o(b)
    store_subscr_list.(b, seq, i) | exit @8 stack b seq i
    store_o.(c) 4
    release.(seq)
"""
    same(allocs(parse(text)), text)


def test_dce_drops_unused_pure_values_but_keeps_exits_and_raising_ops() -> None:
    rec = parse("""trace dst=0 src=0 slots=1:i,2:f stored=1
a = load.i() 1
b = load.i() 1
one = const.i() 1
c = binary.i(b, one) 'add' | exit @4 stack b one
zero = const.i() 0
d = binary.i(a, zero) 'floordiv' | exit @6 stack a zero
e = load.f() 2
s = math.f(e) 'SQRT' | exit @8 stack e
t = math.f(e) 'ABS'
kept = const.i() 5
n = neg.i(kept) | exit @10
    branch.i(a, kept) ('LT', True) | exit @12 stack kept
""")
    same(dce(rec), """trace dst=0 src=0 slots=1:i,2:f stored=1
a = load.i() 1
zero = const.i() 0
d = binary.i(a, zero) 'floordiv' | exit @6 stack a zero
e = load.f() 2
s = math.f(e) 'SQRT' | exit @8 stack e
kept = const.i() 5
    branch.i(a, kept) ('LT', True) | exit @12 stack kept
""")


# --- the knobs -----------------------------------------------------------------

def test_pass_knobs() -> None:
    assert disabled_passes("") == frozenset()
    assert disabled_passes("none") == frozenset(PIPELINE)
    assert disabled_passes("-fold,-dce") == {"fold", "dce"}
    assert disabled_passes("none,fold") == frozenset(PIPELINE) - {"fold"}
    assert disabled_passes("", ["all"]) == frozenset(PIPELINE)
    assert disabled_passes("", ["forward", "guards"]) == {"forward", "guards"}
    with pytest.raises(UnknownPass, match="no optimizer pass 'folding'"):
        disabled_passes("-folding")


def test_no_opt_with_a_bad_name_is_a_clear_error() -> None:
    done = subprocess.run([sys.executable, "-m", "copyjit", "run", "--no-opt", "bogus", str(EXAMPLES[0])],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "no optimizer pass 'bogus'" in done.stderr and "Traceback" not in done.stderr


# --- end to end: each pass off, all on, none ------------------------------------

CONFIGS = [[], ["--no-opt", "all"], *[["--no-opt", name] for name in PIPELINE]]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_give_cpython_output_with_each_pass_off(example: Path) -> None:
    env = {**os.environ, "COPYJIT_VERIFY": "1"}
    plain = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True)
    for config in CONFIGS:
        jitted = subprocess.run([sys.executable, "-m", "copyjit", "run", "--stats", *config, str(example)],
                                capture_output=True, text=True, env=env, cwd=ROOT)
        assert (jitted.returncode, jitted.stdout) == (0, plain.stdout), (config, jitted.stderr)
        assert "internal error" not in jitted.stderr, (config, jitted.stderr)
        assert "0 traces" not in jitted.stderr, (config, jitted.stderr)


def test_rewrite_keeps_where_an_exit_finds_the_frame_and_what_it_releases() -> None:
    # A nested loop's exit (on_frame: values already on the frame's stack)
    # and an inlined call's (drop: values it releases) survive a pass that
    # renumbers: dce drops `dead`, before both.
    rec = parse("""trace dst=0 src=20 slots=1:i stored=
dead = const.i() 7
n = load.i() 1
b = box.o(n) | exit @2 stack n
    guard_is.(b) 5 | exit @4 on_frame=o,n stack b drop b
    release.(b)
""")
    same(dce(rec), """trace dst=0 src=20 slots=1:i stored=
n = load.i() 1
b = box.o(n) | exit @2 stack n
    guard_is.(b) 5 | exit @4 on_frame=o,n stack b drop b
    release.(b)
""")


def test_allocs_keeps_a_box_an_inlined_exit_releases() -> None:
    # The exit inside the inlined call releases b itself: b must exist.
    text = """trace dst=0 src=20 slots=1:i stored=
n = load.i() 1
b = box.o(n) | exit @2 stack n
x = const.i() 1
y = binary.i(n, x) 'add' | exit @4 stack drop b
    release.(b)
"""
    same(allocs(parse(text)), text)
    no_drop = text.replace(" drop b", "")
    assert "box" not in [op.name for op in allocs(parse(no_drop)).ops]
